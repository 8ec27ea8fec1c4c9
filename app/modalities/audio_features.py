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
from dataclasses import dataclass
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
    preprocessing cheap)."""
    x = np.asarray(waveforms, dtype=np.float32)
    count, n = x.shape
    n_fft = int(params["n_fft"])
    pad = n_fft // 2
    padded = np.zeros((count, n + 2 * pad), np.float32)
    padded[:, pad : pad + n] = x
    hop = int(params["hop_length"])
    filterbank = _mel_filterbank_np(*_feature_key(params))
    out = np.empty((count, filterbank.shape[0], 1 + (n + 2 * pad - n_fft) // hop), np.float32)
    _log_mel_into(out, padded, n_fft, hop, filterbank, _hann_window(n_fft), np.float32(params["log_floor"]))
    return out


def _log_mel_into(out: np.ndarray, padded: np.ndarray, n_fft: int, hop: int, filterbank: np.ndarray,
                  window: np.ndarray, floor: np.float32) -> None:
    """Write the log-mel of each row of ``padded`` (float32 [K, n + 2 * (n_fft // 2)], C-contiguous: the recordings
    with n_fft // 2 zeros on either side, as torch.stft(center=True) pads) into ``out`` [K, n_mels, frames] (a
    view may do, e.g. one channel of the model input).

    The work goes `_LOG_MEL_SLICE` recordings at a time: one FFT call over a whole batch of 64 was
    measured 4-5x slower per frame than over 8 recordings (its temporaries, megabytes each, no longer
    fit in the core's cache and are page-faulted in fresh every call). Every step is per frame or per
    recording, so a recording's numbers are the same alone and in a batch of any size (bit for bit,
    tests/modalities/test_audio.py)."""
    count, n_frames = padded.shape[0], out.shape[2]
    item = padded.strides[0]
    for begin in range(0, count, _LOG_MEL_SLICE):
        end = min(count, begin + _LOG_MEL_SLICE)
        # the frames as a view [k, frames, n_fft] (the ndarray constructor: as_strided's Python wrapper
        # cost more than the view is worth for one recording)
        frames = np.ndarray((end - begin, n_frames, n_fft), np.float32, padded, begin * item, (item, hop * 4, 4))
        spec = np.fft.rfft(frames * window, axis=-1)  # [k, frames, freq]
        power = np.square(spec.real, dtype=np.float32)
        power += np.square(spec.imag, dtype=np.float32)
        np.matmul(filterbank, power.transpose(0, 2, 1), out=out[begin:end])  # [k, n_mels, frames]
    out += floor
    np.log(out, out=out)


_LOG_MEL_SLICE = 8  # recordings per FFT call in _log_mel_into


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


@dataclass(frozen=True)
class _ModelInput:
    """What `model_arrays` needs from the params, converted once per distinct params (`_model_input`)."""

    samples: int  # the model's window, duration x sample_rate
    n_fft: int
    hop: int
    frames: int
    filterbank: np.ndarray
    window: np.ndarray
    floor: np.float32
    mean: np.float32
    std: np.float32
    utterance_channel: bool
    loud_frames: int  # frames averaged for the second channel's band means


@functools.lru_cache(maxsize=16)
def _model_input_for(key: tuple[Any, ...]) -> _ModelInput:
    sample_rate, duration, n_fft, hop, n_mels, f_min, f_max, floor, mean, std, two = key
    samples = int(round(float(duration) * int(sample_rate)))
    frames = 1 + (samples + 2 * (int(n_fft) // 2) - int(n_fft)) // int(hop)
    return _ModelInput(samples, int(n_fft), int(hop), frames,
                       _mel_filterbank_np(int(sample_rate), int(n_fft), int(n_mels), float(f_min), float(f_max)),
                       _hann_window(int(n_fft)), np.float32(floor), np.float32(mean), np.float32(std), bool(two),
                       max(1, frames // 2))


def _model_input(params: dict[str, Any]) -> _ModelInput:
    return _model_input_for((params["sample_rate"], params["duration"], params["n_fft"], params["hop_length"],
                             params["n_mels"], params["f_min"], params["f_max"], params["log_floor"],
                             params["mean"], params["std"], bool(params.get("utterance_norm_channel"))))


def model_arrays(raws: Sequence[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    """Model input of K (at least one) recordings, float32 [K, C, n_mels, frames], as one batch: the log-mel
    of each `waveform_window`, fixed mean/std, and with `utterance_norm_channel` the band-centred second
    channel (see `AudioModality.to_array`).

    Written for one recording as much as for a batch (the app and `qmf predict` call it with one): the
    params are read once per distinct params (`_model_input`), each recording is copied once, straight
    into the zero-padded rows the frames are cut from, and the log-mel is computed in place of the
    channel that keeps it, so one recording costs a few dozen numpy calls in all."""
    return _model_arrays(raws, params, _model_input(params))


def _model_arrays(raws: Sequence[np.ndarray], params: dict[str, Any], f: _ModelInput) -> np.ndarray:
    """`model_arrays` with its params already converted (`AudioModality` keeps them from its construction)."""
    count, n, pad = len(raws), f.samples, f.n_fft // 2
    padded = np.zeros((count, n + 2 * pad), np.float32)
    for i, r in enumerate(raws):
        r = np.asarray(r)
        # a recording of exactly the window's length is copied in as it is (waveform_window would copy it first)
        padded[i, pad : pad + n] = r if r.ndim == 1 and r.size == n else waveform_window(r, params)
    out = np.empty((count, 2 if f.utterance_channel else 1, f.filterbank.shape[0], f.frames), np.float32)
    logmel = out[:, -1]  # the log-mel, until the last channel is made from it
    _log_mel_into(logmel, padded, f.n_fft, f.hop, f.filterbank, f.window, f.floor)
    first = out[:, 0]
    if f.utterance_channel:
        frame_energy = np.add.reduce(logmel, axis=1)  # [K, frames]: the mean over the bands, as ndarray.mean
        frame_energy /= np.float32(logmel.shape[1])
        k = f.loud_frames
        loud = np.argpartition(-frame_energy, k - 1, axis=1)[:, :k]  # the k loudest frames (any order)
        # the band means over those frames: for one recording np.take (take_along_axis builds index
        # arrays in Python); both give the same contiguous [n_mels, k] values, summed the same way
        band = (np.take(logmel[0], loud[0], axis=1)[None] if count == 1 else
                np.take_along_axis(logmel, loud[:, None, :], axis=2))
        band_mean = np.add.reduce(band, axis=2, keepdims=True)
        band_mean /= np.float32(k)
        np.subtract(logmel, f.mean, out=first)
        first /= f.std
        logmel -= band_mean  # the second channel, in place of the log-mel
        logmel /= f.std
    else:
        first -= f.mean
        first /= f.std
    return out
