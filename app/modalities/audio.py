"""Audio: any file soundfile opens, as a mono waveform at the model's rate, then a log-mel picture.

The log-mel features use a FIXED normalisation (mean/std from the params, never per utterance):
the point of QMF Studio is to show how a model trusts noisy or silent inputs, and per-utterance
normalisation would make silence and loud noise look alike.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import soundfile as sf

from .base import InputError, Modality, check_level, check_rng, positive_number, require_file

if TYPE_CHECKING:  # pragma: no cover
    import torch


def _audio_extensions() -> tuple[str, ...]:
    """Suffixes for the formats this libsndfile build can actually decode."""
    formats = sf.available_formats()
    exts = [".wav", ".flac"]
    if "OGG" in formats:
        exts += [".ogg", ".oga"]
    if "AIFF" in formats:
        exts += [".aiff", ".aif"]
    if "MP3" in formats:
        exts.append(".mp3")
    return tuple(exts)


AUDIO_EXTENSIONS = _audio_extensions()
SUPPORTED_HINT = "supported audio formats: " + ", ".join(
    e.lstrip(".").upper() for e in AUDIO_EXTENSIONS if e not in (".oga", ".aif")
)

_LOUD_FRACTION = 0.01  # samples above 1% of the peak count as "the loud part" for SNR
_DROPOUT_CHUNK_S = 0.03


# --- features -----------------------------------------------------------------------------------


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + f / 700.0)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


@functools.lru_cache(maxsize=16)
def _mel_filterbank_np(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float) -> np.ndarray:
    fb = mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max)
    fb.setflags(write=False)
    return fb


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float) -> np.ndarray:
    """Triangular HTK-mel filters, float32 [n_mels, n_fft//2 + 1] (as torchaudio, norm=None)."""
    freqs = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    mel_points = np.linspace(_hz_to_mel(np.float64(f_min)), _hz_to_mel(np.float64(f_max)), n_mels + 2)
    hz_points = _mel_to_hz(mel_points)
    lower, centre, upper = hz_points[:-2, None], hz_points[1:-1, None], hz_points[2:, None]
    rising = (freqs[None, :] - lower) / (centre - lower)
    falling = (upper - freqs[None, :]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


def _feature_key(params: dict[str, Any]) -> tuple[int, int, int, float, float]:
    return (
        int(params["sample_rate"]),
        int(params["n_fft"]),
        int(params["n_mels"]),
        float(params["f_min"]),
        float(params["f_max"]),
    )


def log_mel(waveform: np.ndarray | torch.Tensor, params: dict[str, Any]) -> np.ndarray:
    """Log-mel power spectrogram [n_mels, frames] of any-length mono audio, in numpy (no torch).

    The picture of a recording the app shows (its previews are drawn before torch is loaded): the
    same framing, window and filterbank as the model's features (`_log_mel_tensor`, torch.stft with
    center=True, zero padding, periodic Hann; a test holds the two equal). Not normalised:
    `log(mel + log_floor)` only. Short or empty waveforms are zero-padded so this never fails.
    """
    x = np.asarray(waveform, dtype=np.float32).reshape(-1)
    if x.size == 0:
        x = np.zeros(1, np.float32)
    n_fft, hop = int(params["n_fft"]), int(params["hop_length"])
    padded = np.pad(x, (n_fft // 2, n_fft // 2))
    if padded.size < n_fft:
        padded = np.pad(padded, (0, n_fft - padded.size))
    frames = 1 + (padded.size - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    spec = np.fft.rfft(padded[idx] * window, axis=1)
    power = (spec.real**2 + spec.imag**2).T.astype(np.float32)
    return np.log(_mel_filterbank_np(*_feature_key(params)) @ power + float(params["log_floor"])).astype(np.float32)


def _log_mel_tensor(waveform: np.ndarray | torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
    import torch

    if isinstance(waveform, torch.Tensor):
        x = waveform.detach().to(torch.float32).reshape(-1)
    else:
        x = torch.tensor(np.asarray(waveform, dtype=np.float32).reshape(-1))
    if x.numel() == 0:
        x = torch.zeros(1)
    n_fft = int(params["n_fft"])
    spec = torch.stft(
        x,
        n_fft=n_fft,
        hop_length=int(params["hop_length"]),
        win_length=n_fft,
        window=torch.hann_window(n_fft, periodic=True),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    power = spec.real.square() + spec.imag.square()  # [freq, frames]
    fb = torch.from_numpy(np.array(_mel_filterbank_np(*_feature_key(params))))
    mel = fb @ power
    return torch.log(mel + float(params["log_floor"]))


def waveform_window(raw: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Exactly duration*sample_rate samples: the loudest window of a long input, or zero-padded.

    A digit recorded with a second of silence in front must still land in the model's window, so a
    longer input is cut to the window with the most energy (among equally loud windows, the
    middle one, which centres a short sound; windows may overhang the ends by half a window of
    zeros). A shorter input is padded with zeros on both sides, centred.
    """
    x = np.asarray(raw, dtype=np.float32).reshape(-1)
    n = int(round(float(params["duration"]) * int(params["sample_rate"])))
    if x.size == n:
        return x.copy()
    if x.size < n:
        out = np.zeros(n, dtype=np.float32)
        left = (n - x.size) // 2
        out[left : left + x.size] = x
        return out
    # Windows may reach half a window past either end (zeros there), so a short sound near the
    # start or end of a recording can still be centred, as in training data.
    pad = n // 2
    padded = np.concatenate([np.zeros(pad, np.float32), x, np.zeros(pad, np.float32)])
    energy = np.concatenate([[0.0], np.cumsum(padded.astype(np.float64) ** 2)])
    window_energy = energy[n:] - energy[:-n]
    best = window_energy.max()
    candidates = np.flatnonzero(window_energy >= best * (1.0 - 1e-3) - 1e-12)
    start = int(candidates[len(candidates) // 2])
    return padded[start : start + n].copy()


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
        """Decode, mix to mono, resample to the model's rate; refuse empty, over-long or NaN audio."""
        import soxr

        p = require_file(path, SUPPORTED_HINT)
        max_seconds = float(self.params["max_seconds"])
        try:
            with sf.SoundFile(p) as f:
                frames, rate = f.frames, f.samplerate
                if frames <= 0:
                    raise InputError(
                        p, "empty: header only, no samples", "record at least a fraction of a second"
                    )
                seconds = frames / rate
                if seconds > max_seconds:
                    raise InputError(
                        p,
                        f"too long: {seconds:.1f} s, the limit is {max_seconds:g} s",
                        "trim the recording to the part with the sound",
                    )
                data = f.read(dtype="float32", always_2d=True)
        except InputError:
            raise
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
            raise InputError(p, f"not a readable audio file: {exc}", SUPPORTED_HINT) from None
        except MemoryError:
            raise InputError(p, "audio is too large to decode in memory", "use a shorter file") from None
        if data.shape[0] == 0:
            raise InputError(p, "empty: header only, no samples", "record at least a fraction of a second")
        if not np.all(np.isfinite(data)):
            raise InputError(p, "contains NaN or infinite samples", "re-export the audio as PCM WAV or FLAC")
        mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
        if rate != self.sample_rate:
            mono = soxr.resample(mono, rate, self.sample_rate, quality="HQ")
        return np.clip(np.asarray(mono, dtype=np.float32), -1.0, 1.0)

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

    def to_tensor(self, raw: np.ndarray) -> torch.Tensor:
        """float32 [C, n_mels, frames]: log-mel of the model window, fixed mean/std normalisation.

        With the `utterance_norm_channel` parameter (the bundled model's recipe sets it) a second channel holds the same
        log-mel with each band's mean over the utterance's louder half of frames subtracted: the
        recording's stationary colour (microphone, room, a speaker's average timbre) removed, while
        the first channel keeps the absolute level that tells silence and noise apart.
        """
        import torch

        logmel = _log_mel_tensor(waveform_window(raw, self.params), self.params)
        std = float(self.params["std"])
        x = ((logmel - float(self.params["mean"])) / std).unsqueeze(0)
        if self.params.get("utterance_norm_channel"):
            frame_energy = logmel.mean(dim=0)
            loud = frame_energy.topk(max(1, logmel.shape[1] // 2)).indices
            centred = (logmel - logmel[:, loud].mean(dim=1, keepdim=True)) / std
            x = torch.cat([x, centred.unsqueeze(0)], dim=0)
        return x.contiguous()

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
