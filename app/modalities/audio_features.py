"""Audio features: the numpy log-mel picture the model sees, and the window of samples it is taken from.

Split out of `audio.py` (which re-exports every name that was defined there before the split) so the file-reading, the
feature computation and the corruptions each sit in a module of their own. Numpy only: no torch on
this import path (`qmf predict` runs without torch; tests/qmf/test_onnx.py checks).

The log-mel features use a FIXED normalisation (mean/std from the params, never per utterance):
the point of QMF Studio is to show how a model trusts noisy or silent inputs, and per-utterance
normalisation would make silence and loud noise look alike.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np


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
    """`log_mel` of K equal-length waveforms [K, n] at once: float32 [K, n_mels, frames] (a few FFT calls and
    matrix products for the batch instead of one per recording, which is what makes batched
    preprocessing cheap).

    The work goes `_LOG_MEL_SLICE` recordings at a time: one FFT call over a whole batch of 64 was
    measured 4-5x slower per frame than over 8 recordings (its temporaries, megabytes each, no longer
    fit in the core's cache and are page-faulted in fresh every call). Every step is per frame or per
    recording, so the numbers are those of one call over everything.
    """
    x = np.asarray(waveforms, dtype=np.float32)
    count, n = x.shape
    n_fft = int(params["n_fft"])
    hop = int(params["hop_length"])
    pad = n_fft // 2
    n_frames = 1 + (n + 2 * pad - n_fft) // hop
    filterbank = _mel_filterbank_np(*_feature_key(params))
    window = _hann_window(n_fft)
    out = np.empty((count, filterbank.shape[0], n_frames), np.float32)
    for begin in range(0, count, _LOG_MEL_SLICE):
        part = x[begin : begin + _LOG_MEL_SLICE]
        padded = np.zeros((part.shape[0], n + 2 * pad), np.float32)
        padded[:, pad : pad + n] = part
        item, step = padded.strides
        frames = np.lib.stride_tricks.as_strided(padded, (part.shape[0], n_frames, n_fft), (item, hop * step, step),
                                                 writeable=False)  # a view: [k, frames, n_fft]
        spec = np.fft.rfft(frames * window, axis=-1)  # [k, frames, freq]
        power = np.square(spec.real, dtype=np.float32)
        power += np.square(spec.imag, dtype=np.float32)
        np.matmul(filterbank, power.transpose(0, 2, 1), out=out[begin : begin + part.shape[0]])  # [k, n_mels, frames]
    out += np.float32(params["log_floor"])
    return np.log(out, out=out)


_LOG_MEL_SLICE = 8  # recordings per FFT call in log_mel_batch


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


def model_arrays(raws: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    """Model input of K (at least one) recordings, float32 [K, C, n_mels, frames], as one batch: the log-mel
    of each `waveform_window`, fixed mean/std, and with `utterance_norm_channel` the band-centred second
    channel (see `AudioModality.to_array`)."""
    n = int(round(float(params["duration"]) * int(params["sample_rate"])))
    # a recording of exactly the window's length is stacked as it is (waveform_window would copy it first)
    logmel = log_mel_batch(np.stack([r if r.ndim == 1 and r.size == n and r.dtype == np.float32 else
                                     waveform_window(r, params) for r in map(np.asarray, raws)]), params)
    std = np.float32(params["std"])
    two = bool(params.get("utterance_norm_channel"))
    out = np.empty((logmel.shape[0], 2 if two else 1, *logmel.shape[1:]), np.float32)  # written in place
    first = out[:, 0]
    np.subtract(logmel, np.float32(params["mean"]), out=first)
    np.divide(first, std, out=first)
    if two:
        frame_energy = logmel.mean(axis=1)  # [K, frames]
        k = max(1, logmel.shape[2] // 2)
        loud = np.argpartition(-frame_energy, k - 1, axis=1)[:, :k]  # the k loudest frames (any order)
        band_mean = np.take_along_axis(logmel, loud[:, None, :], axis=2).mean(axis=2, keepdims=True)
        centred = out[:, 1]
        np.subtract(logmel, band_mean, out=centred)
        np.divide(centred, std, out=centred)
    return out
