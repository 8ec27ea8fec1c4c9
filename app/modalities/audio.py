"""Audio: any file soundfile opens, as a mono waveform at the model's rate, then a log-mel picture.

The log-mel features use a FIXED normalisation (mean/std from the params, never per utterance):
the point of QMF Studio is to show how a model trusts noisy or silent inputs, and per-utterance
normalisation would make silence and loud noise look alike.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import soundfile as sf

from .base import InputError, Modality, check_level, check_rng, decode_budget, positive_number, require_file


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

# Decoding limits, checked from the header before any sample is decoded (see AudioModality.load):
# file sample rates outside 1 kHz-384 kHz are refused (a header claiming 2.1 GHz would otherwise
# resample 8,000 samples to 3.7 µs of "audio" and be predicted as silence), and so is audio whose
# decoded samples (frames x channels x 4 bytes of float32) exceed MAX_DECODED_BYTES, whatever its
# length in seconds. The file is decoded in blocks and mixed to mono as it goes, so memory follows
# the mono length, not the channel count.
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 384_000
MAX_DECODED_BYTES = 192 * 1024 * 1024
_BLOCK_FRAMES = 65_536
_EXACT_LENGTH_FORMATS = ("WAV", "WAVEX", "RF64", "W64", "FLAC", "AIFF", "CAF")  # headers give the exact length

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


def log_mel(waveform: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Log-mel power spectrogram float32 [n_mels, frames] of any-length mono audio (for display, too).

    Not normalised: `log(mel + log_floor)` only; `AudioModality.to_array` applies the fixed
    mean/std. Short or empty waveforms are zero-padded so this never fails. Numpy only: the same
    frames as `torch.stft(center=True, pad_mode="constant")` with a periodic Hann window (1 + n // hop
    frames), which the training code used before and tests/qmf/test_onnx.py compares against.
    """
    x = np.asarray(waveform, dtype=np.float32).reshape(-1)
    if x.size == 0:
        x = np.zeros(1, np.float32)
    return log_mel_batch(x[None], params)[0]


def log_mel_batch(waveforms: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """`log_mel` of K equal-length waveforms [K, n] at once: float32 [K, n_mels, frames] (one FFT call and
    one matrix product for the batch, which is what makes batched preprocessing cheap)."""
    x = np.asarray(waveforms, dtype=np.float32)
    count, n = x.shape
    n_fft = int(params["n_fft"])
    hop = int(params["hop_length"])
    pad = n_fft // 2
    padded = np.zeros((count, n + 2 * pad), np.float32)
    padded[:, pad : pad + n] = x
    n_frames = 1 + (n + 2 * pad - n_fft) // hop
    item, step = padded.strides
    frames = np.lib.stride_tricks.as_strided(padded, (count, n_frames, n_fft), (item, hop * step, step),
                                             writeable=False)  # a view: [K, frames, n_fft]
    spec = np.fft.rfft(frames * _hann_window(n_fft), axis=-1)  # [K, frames, freq]
    power = np.square(spec.real, dtype=np.float32)
    power += np.square(spec.imag, dtype=np.float32)
    mel = _mel_filterbank_np(*_feature_key(params)) @ power.transpose(0, 2, 1)  # [K, n_mels, frames]
    mel += np.float32(params["log_floor"])
    return np.log(mel, out=mel)


@functools.lru_cache(maxsize=8)
def _hann_window(n: int) -> np.ndarray:
    """Periodic Hann window (as torch.hann_window(n, periodic=True)), float32, read-only."""
    w = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)
    w.setflags(write=False)
    return w


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


def _sample_bytes(subtype: str) -> int:
    """Bytes per sample of a WAV subtype (PCM_16 -> 2, FLOAT -> 4, ...); 0 when unknown."""
    sizes = {"PCM_U8": 1, "PCM_S8": 1, "ULAW": 1, "ALAW": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4,
             "FLOAT": 4, "DOUBLE": 8}
    return sizes.get(subtype, 0)


def _check_riff_length(p: Path, frame_bytes: int) -> None:
    """Refuse a WAV whose data chunk is shorter than its header says (libsndfile quietly clamps it).

    Streaming writers that do not know the length write 0 or 0xFFFFFFFF; those are accepted.
    """
    if frame_bytes <= 0:
        return
    with open(p, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        size = p.stat().st_size
        offset = 12
        while offset + 8 <= size:
            fh.seek(offset)
            chunk = fh.read(8)
            if len(chunk) < 8:
                return
            length = int.from_bytes(chunk[4:8], "little")
            if chunk[:4] == b"data":
                available = size - offset - 8
                if length in (0, 0xFFFFFFFF) or available >= length:
                    return
                promised, held = length // frame_bytes, available // frame_bytes
                if promised - held >= 1:
                    raise InputError(
                        p,
                        f"truncated: the header promises {promised:,} frames, the file holds {held:,}",
                        "re-export or re-copy the recording",
                    )
                return
            offset += 8 + length + (length & 1)


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
        """Decode, mix to mono, resample to the model's rate; refuse empty, over-long, truncated or NaN audio.

        Rate, length and decoded size are checked from the header before decoding; the samples are
        then read in blocks and mixed down as they come.
        """
        import soxr

        p = require_file(path, SUPPORTED_HINT)
        try:
            with sf.SoundFile(p) as f:
                frames, rate, channels = f.frames, f.samplerate, f.channels
                self._check_header(p, frames, rate, channels)
                if f.format in ("WAV", "WAVEX"):
                    _check_riff_length(p, f.channels * _sample_bytes(f.subtype))
                with decode_budget(frames * 4):  # large files take turns across decoding threads
                    mono = np.empty(frames, dtype=np.float32)
                    done = 0
                    while done < frames:
                        block = f.read(min(_BLOCK_FRAMES, frames - done), dtype="float32", always_2d=True)
                        if block.shape[0] == 0:
                            break
                        if not np.all(np.isfinite(block)):
                            raise InputError(
                                p, "contains NaN or infinite samples", "re-export the audio as PCM WAV or FLAC"
                            )
                        n = block.shape[0]
                        mono[done : done + n] = block.mean(axis=1, dtype=np.float32) if channels > 1 else block[:, 0]
                        done += n
                    if done < frames and (f.format in _EXACT_LENGTH_FORMATS or done == 0):
                        raise InputError(
                            p,
                            f"truncated: the header promises {frames:,} frames ({frames / rate:.3g} s), "
                            f"the file holds {done:,}",
                            "re-export or re-copy the recording",
                        )
                    mono = mono[:done]
        except InputError:
            raise
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
            raise InputError(p, f"not a readable audio file: {exc}", SUPPORTED_HINT) from None
        except MemoryError:
            raise InputError(p, "audio is too large to decode in memory", "use a shorter file") from None
        if rate != self.sample_rate:
            mono = soxr.resample(mono, rate, self.sample_rate, quality="HQ")
        return np.clip(np.asarray(mono, dtype=np.float32), -1.0, 1.0)

    def _check_header(self, p: Path, frames: int, rate: int, channels: int) -> None:
        if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
            raise InputError(
                p,
                f"implausible sample rate {rate:,} Hz (QMF Studio reads {MIN_SAMPLE_RATE:,} to {MAX_SAMPLE_RATE:,} Hz)",
                "re-export the recording at a standard rate such as 16 or 48 kHz",
            )
        if frames <= 0:
            raise InputError(p, "empty: header only, no samples", "record at least a fraction of a second")
        max_seconds = float(self.params["max_seconds"])
        seconds = frames / rate
        if seconds > max_seconds:
            raise InputError(
                p,
                f"too long: {seconds:.1f} s, the limit is {max_seconds:g} s",
                "trim the recording to the part with the sound",
            )
        decoded = frames * channels * 4
        if decoded > MAX_DECODED_BYTES:
            raise InputError(
                p,
                f"{channels} channels x {frames:,} frames at {rate:,} Hz: {decoded / 2**20:,.0f} MiB once decoded, "
                f"above the limit of {MAX_DECODED_BYTES / 2**20:,.0f} MiB",
                "mix down to mono or stereo, or use a lower sample rate",
            )

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
        logmel = log_mel_batch(np.stack([waveform_window(r, self.params) for r in raws]), self.params)
        std = np.float32(self.params["std"])
        first = (logmel - np.float32(self.params["mean"])) / std
        if not self.params.get("utterance_norm_channel"):
            return np.ascontiguousarray(first[:, None], dtype=np.float32)
        frame_energy = logmel.mean(axis=1)  # [K, frames]
        k = max(1, logmel.shape[2] // 2)
        loud = np.argpartition(-frame_energy, k - 1, axis=1)[:, :k]  # the k loudest frames (any order)
        band_mean = np.take_along_axis(logmel, loud[:, None, :], axis=2).mean(axis=2, keepdims=True)
        centred = (logmel - band_mean) / std
        return np.ascontiguousarray(np.stack([first, centred], axis=1), dtype=np.float32)

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
