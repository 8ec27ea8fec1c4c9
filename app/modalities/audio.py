"""Audio: any file soundfile opens, as a mono waveform at the model's rate, then a log-mel picture.

This module holds `AudioModality` and the corruptions. Reading files (header limits, bounded block
decoding, truncation checks, resampling) lives in `audio_read.py`, the numpy log-mel features and
the model's window in `audio_features.py`; every name of theirs that was defined here before is
re-exported below, so `from app.modalities.audio import log_mel, MAX_SAMPLE_RATE, ...` keeps working.

The log-mel features use a FIXED normalisation (mean/std from the params, never per utterance):
the point of QMF Studio is to show how a model trusts noisy or silent inputs, and per-utterance
normalisation would make silence and loud noise look alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import numpy as np

from .audio_features import _feature_key as _feature_key
from .audio_features import _hann_window as _hann_window
from .audio_features import _hz_to_mel as _hz_to_mel
from .audio_features import _mel_filterbank_np as _mel_filterbank_np
from .audio_features import _mel_to_hz as _mel_to_hz
from .audio_features import _model_arrays, _model_input
from .audio_features import log_mel as log_mel
from .audio_features import log_mel_batch as log_mel_batch
from .audio_features import mel_filterbank as mel_filterbank
from .audio_features import model_arrays as model_arrays
from .audio_features import waveform_window as waveform_window
from .audio_read import _BLOCK_FRAMES as _BLOCK_FRAMES
from .audio_read import _EXACT_LENGTH_FORMATS as _EXACT_LENGTH_FORMATS
from .audio_read import AUDIO_EXTENSIONS as AUDIO_EXTENSIONS
from .audio_read import MAX_DECODED_BYTES as MAX_DECODED_BYTES
from .audio_read import MAX_SAMPLE_RATE as MAX_SAMPLE_RATE
from .audio_read import MIN_SAMPLE_RATE as MIN_SAMPLE_RATE
from .audio_read import SUPPORTED_HINT as SUPPORTED_HINT
from .audio_read import _audio_extensions as _audio_extensions
from .audio_read import _check_riff_length as _check_riff_length
from .audio_read import _sample_bytes as _sample_bytes
from .audio_read import read_audio, read_audio_file
from .base import Modality, check_level, check_rng, positive_number

_LOUD_FRACTION = 0.01  # samples above 1% of the peak count as "the loud part" for SNR
_DROPOUT_CHUNK_S = 0.03


# --- corruptions: pure functions of (raw float32 mono, level 0..10, numpy Generator) -----------


def _finish(x: np.ndarray) -> np.ndarray:
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def loud_rms(raw: np.ndarray) -> float:
    """RMS of the loud part (samples above 1% of the peak), so leading silence does not count."""
    x = np.asarray(raw, dtype=np.float64).reshape(-1)
    if x.size == 0:
        return 0.0
    peak = float(np.max(np.abs(x)))
    if peak == 0.0:
        return 0.0
    loud = x[np.abs(x) > _LOUD_FRACTION * peak]
    if loud.size == 0:
        loud = x
    return float(np.sqrt(np.mean(loud**2)))


def add_white_noise_snr(
    raw: np.ndarray, snr_db: float, rng: np.random.Generator, silent_std: float = 0.0
) -> np.ndarray:
    """Add white Gaussian noise at `snr_db` relative to the loud-part RMS, clipped to [-1, 1].

    An SNR is undefined for silence; then the noise has the absolute standard deviation
    `silent_std` (0 keeps silence silent).
    """
    check_rng(rng)
    x = np.asarray(raw, dtype=np.float32).reshape(-1)
    rms = loud_rms(x)
    std = rms / (10.0 ** (float(snr_db) / 20.0)) if rms > 0 else float(silent_std)
    if std == 0.0 or x.size == 0:
        return _finish(x)
    return _finish(x + rng.normal(0.0, std, size=x.shape))


def white_noise(raw: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    """White noise at SNR 25 - 3.5*level dB (silence: absolute std 0.01*level)."""
    level = check_level(level)
    check_rng(rng)
    if level == 0:
        return np.array(raw, dtype=np.float32, copy=True)
    return add_white_noise_snr(raw, 25.0 - 3.5 * level, rng, silent_std=0.01 * level)


def dropout(raw: np.ndarray, level: float, rng: np.random.Generator, sample_rate: int = 8000) -> np.ndarray:
    """A fraction 0.07*level of the signal zeroed, in random ~30 ms chunks."""
    level = check_level(level)
    check_rng(rng)
    x = np.array(raw, dtype=np.float32, copy=True).reshape(-1)
    if level == 0 or x.size == 0:
        return x
    chunk = max(1, int(round(_DROPOUT_CHUNK_S * sample_rate)))
    n_chunks = math.ceil(x.size / chunk)
    k = min(n_chunks, int(round(0.07 * level * n_chunks)))
    for i in rng.choice(n_chunks, size=k, replace=False):
        x[int(i) * chunk : (int(i) + 1) * chunk] = 0.0
    return _finish(x)


def clipping(raw: np.ndarray, level: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """Hard clipping at (1 - 0.095*level) of the peak, not rescaled (deterministic)."""
    level = check_level(level)
    x = np.asarray(raw, dtype=np.float32).reshape(-1)
    if x.size == 0 or level == 0:
        return x.copy()
    limit = (1.0 - 0.095 * level) * float(np.max(np.abs(x)))
    return _finish(np.clip(x, -limit, limit))


def bandlimit_cutoff(level: float, sample_rate: int) -> float:
    """Cutoff in Hz: Nyquist at level 0 down to 300 Hz at level 10, log-spaced."""
    nyquist = sample_rate / 2.0
    low = min(300.0, nyquist)
    return nyquist * (low / nyquist) ** (check_level(level) / 10.0)


def bandlimit(
    raw: np.ndarray, level: float, rng: np.random.Generator | None = None, sample_rate: int = 8000
) -> np.ndarray:
    """Brick-wall FFT low-pass at `bandlimit_cutoff(level)` (deterministic)."""
    level = check_level(level)
    x = np.asarray(raw, dtype=np.float32).reshape(-1)
    if x.size == 0 or level == 0:
        return x.copy()
    spectrum = np.fft.rfft(x.astype(np.float64))
    freqs = np.fft.rfftfreq(x.size, d=1.0 / sample_rate)
    spectrum[freqs > bandlimit_cutoff(level, sample_rate)] = 0.0
    return _finish(np.fft.irfft(spectrum, n=x.size))


def babble(raw: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    """Mix in an interfering 'voice' (the signal reversed, circularly shifted) at SNR 20 - 3*level dB."""
    level = check_level(level)
    check_rng(rng)
    x = np.asarray(raw, dtype=np.float32).reshape(-1)
    if x.size == 0 or level == 0:
        return x.copy()
    shift = int(rng.integers(0, x.size))
    interferer = np.roll(x[::-1], shift).astype(np.float64)
    rms_signal, rms_interferer = loud_rms(x), loud_rms(interferer)
    if rms_interferer == 0.0:
        return x.copy()
    gain = rms_signal / rms_interferer / (10.0 ** ((20.0 - 3.0 * level) / 20.0))
    return _finish(x + gain * interferer)


class AudioModality(Modality):
    """Audio as float32 mono waveforms at `sample_rate` in [-1, 1]; log-mel tensors for the model."""

    kind: ClassVar[str] = "audio"
    extensions: ClassVar[tuple[str, ...]] = AUDIO_EXTENSIONS
    corruption_kinds: ClassVar[tuple[str, ...]] = (
        "white_noise",
        "dropout",
        "clipping",
        "bandlimit",
        "babble",
        "missing",
    )

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        """Spoken digits at 8 kHz: 1 s windows, 40 mels; fixed (dataset) mean/std."""
        return {
            "sample_rate": 8000,
            "duration": 1.0,
            "n_fft": 256,
            "hop_length": 64,
            "n_mels": 40,
            "f_min": 20.0,
            "f_max": 4000.0,
            "max_seconds": 60.0,
            "log_floor": 1e-5,
            "mean": 0.0,
            "std": 1.0,
        }

    def _validate_params(self) -> None:
        p = self.params
        for key in ("sample_rate", "n_fft", "hop_length", "n_mels"):
            if not isinstance(p[key], int) or isinstance(p[key], bool) or p[key] <= 0:
                raise ValueError(f"audio param {key!r} must be a positive integer, got {p[key]!r}")
        for key in ("duration", "max_seconds", "log_floor", "std"):
            positive_number(p, key, "audio")
        positive_number(p, "f_min", "audio", allow_zero=True)
        positive_number(p, "f_max", "audio")
        if (
            not isinstance(p["mean"], int | float)
            or isinstance(p["mean"], bool)
            or not math.isfinite(p["mean"])
        ):
            raise ValueError(f"audio param 'mean' must be a number, got {p['mean']!r}")
        if not p["f_min"] < p["f_max"] <= p["sample_rate"] / 2:
            raise ValueError(
                f"audio params need f_min < f_max <= sample_rate/2, got f_min={p['f_min']}, "
                f"f_max={p['f_max']}, sample_rate={p['sample_rate']}"
            )
        self._features = _model_input(p)  # what to_arrays needs from the params, converted once

    @property
    def sample_rate(self) -> int:
        """The model's sample rate in Hz."""
        return int(self.params["sample_rate"])

    @property
    def n_samples(self) -> int:
        """Samples in the model's window (duration * sample_rate)."""
        return int(round(float(self.params["duration"]) * self.sample_rate))

    # --- reading ---------------------------------------------------------------------------
    def load(self, path: str | Path) -> np.ndarray:
        """Decode, mix to mono, resample to the model's rate; refuse empty, over-long, truncated or NaN audio.

        Rate, length and decoded size are checked from the header before decoding; the samples are
        then read in blocks and mixed down as they come (`audio_read.read_audio`). The decoded-size
        limit is this module's `MAX_DECODED_BYTES`, read at call time.
        """
        return read_audio(path, self.sample_rate, float(self.params["max_seconds"]), MAX_DECODED_BYTES)

    def load_file(self, fh: BinaryIO, name: str) -> np.ndarray:
        """`load` of an open, seekable binary file (an object in storage opened by pyarrow.fs): the same
        limits, checked from the header before decoding; errors name ``name`` (its URI)."""
        return read_audio_file(fh, name, self.sample_rate, float(self.params["max_seconds"]), MAX_DECODED_BYTES)

    def blank(self) -> np.ndarray:
        """Silence of the model's window length."""
        return np.zeros(self.n_samples, dtype=np.float32)

    # --- model input -----------------------------------------------------------------------
    def waveform_window(self, raw: np.ndarray) -> np.ndarray:
        """The exact samples the model sees (see module-level `waveform_window`)."""
        return waveform_window(raw, self.params)

    def log_mel(self, raw: np.ndarray) -> np.ndarray:
        """Un-normalised log-mel [n_mels, frames] of any-length raw audio, for display."""
        return log_mel(raw, self.params)

    def to_array(self, raw: np.ndarray) -> np.ndarray:
        """float32 [C, n_mels, frames]: log-mel of the model window, fixed mean/std normalisation.

        With the `utterance_norm_channel` parameter (the bundled model's recipe sets it) a second channel holds the same
        log-mel with each band's mean over the utterance's louder half of frames subtracted: the
        recording's stationary colour (microphone, room, a speaker's average timbre) removed, while
        the first channel keeps the absolute level that tells silence and noise apart.
        """
        return self.to_arrays([raw])[0]

    def to_arrays(self, raws: Sequence[np.ndarray]) -> np.ndarray:
        """`to_array` of several recordings, stacked [K, C, n_mels, frames], computed as one batch."""
        if not len(raws):
            return np.zeros((0, *self.input_shape), np.float32)
        return _model_arrays(raws, self.params, self._features)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """(C, n_mels, 1 + n_samples // hop_length): torch.stft with center=True; C = 2 with
        `utterance_norm_channel`, else 1."""
        channels = 2 if self.params.get("utterance_norm_channel") else 1
        return (channels, int(self.params["n_mels"]), 1 + self.n_samples // int(self.params["hop_length"]))

    def _missing(self, raw: np.ndarray) -> np.ndarray:
        x = np.asarray(raw).reshape(-1)
        return np.zeros(x.size, dtype=np.float32) if x.size else self.blank()

    def _corrupt(self, raw: np.ndarray, kind: str, level: float, rng: np.random.Generator) -> np.ndarray:
        x = np.asarray(raw, dtype=np.float32).reshape(-1)
        if kind == "white_noise":
            return white_noise(x, level, rng)
        if kind == "dropout":
            return dropout(x, level, rng, sample_rate=self.sample_rate)
        if kind == "clipping":
            return clipping(x, level, rng)
        if kind == "bandlimit":
            return bandlimit(x, level, rng, sample_rate=self.sample_rate)
        if kind == "babble":
            return babble(x, level, rng)
        raise AssertionError(kind)  # pragma: no cover - corrupt() validated the kind
