"""A zoo of training degradations, and compositions of them, beyond each modality's own corruptions.

`Modality.corrupt` holds the corruption kinds the robustness report measures. A recipe trains on some
of them (the "seen" kinds) and holds the rest out; this module adds degradations that exist only for
training, so a branch learns that a damaged input deserves less trust without having seen the
held-out kinds, even under another name. Kept apart on purpose:

* image: nothing here blurs, adds salt-and-pepper, covers a block, or shrinks the contrast
  (the report's held-out `blur`, `salt_pepper`, `occlusion`, `contrast`);
* audio: nothing here zeroes chunks, clips, low-passes or mixes in speech (`dropout`, `clipping`,
  `bandlimit`, `babble`); the nearest to clipping are `wavefold` and `rectify`, memoryless distortions
  that hold nothing flat at a limit. `hum` and `brown_noise` mixes are here for *evaluation only*
  (`EVAL_ONLY`): they are held-out degradations and must not appear in a recipe's training kinds.

A kind may be a composition, `"jpeg+gaussian"`: each part applied in turn at the same level.
`degrade(modality, raw, kind, level, rng)` accepts the modality's own kinds, the zoo's, and
compositions of both. All functions are pure and draw only from the Generator they are given.
Level 0 returns the input unchanged; 10 is the worst.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from .audio import loud_rms
from .base import check_level, check_rng
from .outliers_audio import _colored_noise, au_melody

__all__ = ["IMAGE_ZOO", "AUDIO_ZOO", "EVAL_ONLY", "degrade", "zoo_kinds", "check_kinds"]


# --- image ---------------------------------------------------------------------------------------


def _u8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def speckle(raw: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative noise plus a noisy background: x * (1 + n1) + |n2|, std 0.12*level and 8*level."""
    x = raw.astype(np.float64)
    return _u8(x * (1 + rng.normal(0, 0.12 * level, x.shape)) + np.abs(rng.normal(0, 8 * level, x.shape)))


def jpeg(raw: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    """JPEG compression at quality 95 - 9.3*level (level 10: quality 2, heavy blocking), after a small
    random shift so the 8x8 blocks do not always fall on the same pixels."""
    quality = max(1, int(round(95 - 9.3 * level)))
    shift = tuple(int(v) for v in rng.integers(0, 8, size=2))
    shifted = np.roll(raw, shift, axis=(0, 1))
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(shifted)).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as im:
        out = np.asarray(im.convert("L" if raw.ndim == 2 else "RGB"), dtype=np.uint8)
    return np.roll(out, (-shift[0], -shift[1]), axis=(0, 1)).copy()


def scratches(raw: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    """round(1.2*level) thin bright or dark lines across the picture (a scratched scan, crossed out)."""
    h, w = raw.shape[:2]
    img = Image.fromarray(np.ascontiguousarray(raw))
    draw = ImageDraw.Draw(img)
    k = max(1.0, min(h, w) / 28.0)
    for _ in range(int(round(1.2 * level))):
        x0, x1 = rng.uniform(0, w, 2)
        y0, y1 = rng.uniform(0, h, 2)
        value = int(rng.choice([0, 255])) if rng.random() < 0.5 else int(rng.integers(100, 256))
        fill = value if raw.ndim == 2 else (value,) * 3
        draw.line([(float(x0), float(y0)), (float(x1), float(y1))], fill=fill, width=max(1, int(k)))
    return np.asarray(img, dtype=np.uint8).copy()


def grating_overlay(raw: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    """Additive stripes of amplitude 12*level (0-255 units) at a random angle and period (moire, scan lines)."""
    h, w = raw.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w] * (28.0 / min(h, w))
    a = rng.uniform(0, math.pi)
    wave = np.sin(2 * math.pi * (xx * math.cos(a) + yy * math.sin(a)) / rng.uniform(2.5, 8.0) + rng.uniform(0, 6.3))
    if raw.ndim == 3:
        wave = wave[:, :, None]
    return _u8(raw.astype(np.float64) + 12 * level * wave)


def uniform_noise(raw: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    """Additive uniform noise in +-17*level (not Gaussian: a different histogram from the seen kind)."""
    return _u8(raw.astype(np.float64) + rng.uniform(-17 * level, 17 * level, raw.shape))


IMAGE_ZOO: dict[str, Callable[[np.ndarray, float, np.random.Generator], np.ndarray]] = {
    "speckle": speckle,
    "jpeg": jpeg,
    "scratches": scratches,
    "grating_overlay": grating_overlay,
    "uniform_noise": uniform_noise,
}


# --- audio ---------------------------------------------------------------------------------------


def _snr_db(level: float) -> float:
    """The white-noise kind's scale: 25 dB at level 0 down to -10 dB at level 10."""
    return 25.0 - 3.5 * level


def _mix(x: np.ndarray, noise: np.ndarray, level: float, silent: float) -> np.ndarray:
    rms, n_rms = loud_rms(x), float(np.sqrt(np.mean(noise**2))) if noise.size else 0.0
    if n_rms == 0:
        return x.copy()
    target = rms / 10 ** (_snr_db(level) / 20) if rms > 0 else silent * level
    return np.clip(x + noise * (target / n_rms), -1, 1).astype(np.float32)


def pink_noise(raw: np.ndarray, level: float, rng: np.random.Generator, sample_rate: int = 8000) -> np.ndarray:
    """Pink (1/f) noise at the white-noise kind's SNR for the same level."""
    x = np.asarray(raw, dtype=np.float32).reshape(-1)
    return _mix(x, _colored_noise(rng, x.size, 1.0), level, 0.01)


def brown_noise(raw: np.ndarray, level: float, rng: np.random.Generator, sample_rate: int = 8000) -> np.ndarray:
    """Brownian (1/f^2) rumble at the white-noise kind's SNR. Evaluation only (held out)."""
    x = np.asarray(raw, dtype=np.float32).reshape(-1)
    return _mix(x, _colored_noise(rng, x.size, 2.0), level, 0.01)


def tone_mix(raw: np.ndarray, level: float, rng: np.random.Generator, sample_rate: int = 8000) -> np.ndarray:
    """An interfering whistle or beep (one to three sine tones, 200-3500 Hz) at the white-noise SNR."""
    x = np.asarray(raw, dtype=np.float32).reshape(-1)
    t = np.arange(x.size) / sample_rate
    tone = sum(np.sin(2 * math.pi * rng.uniform(200, min(3500, sample_rate / 2.3)) * t + rng.uniform(0, 6.3))
               for _ in range(int(rng.integers(1, 4))))
    return _mix(x, np.asarray(tone, dtype=np.float64), level, 0.01)


def hum(raw: np.ndarray, level: float, rng: np.random.Generator, sample_rate: int = 8000) -> np.ndarray:
    """Mains hum (50/60 Hz and harmonics) at the white-noise SNR. Evaluation only (held out)."""
    x = np.asarray(raw, dtype=np.float32).reshape(-1)
    t = np.arange(x.size) / sample_rate
    base = 50.0 if rng.random() < 0.5 else 60.0
    noise = sum(np.sin(2 * math.pi * base * k * t + rng.uniform(0, 6.3)) / k for k in range(1, 8))
    return _mix(x, np.asarray(noise, dtype=np.float64), level, 0.01)


def quantise(raw: np.ndarray, level: float, rng: np.random.Generator | None = None, sample_rate: int = 8000) -> np.ndarray:
    """Bit-depth reduction to 12 - level bits (level 10: 2 bits, i.e. 4 steps) of the recording's peak."""
    x = np.asarray(raw, dtype=np.float32).reshape(-1)
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak == 0:
        return x.copy()
    steps = 2 ** max(1.0, 12.0 - level) / 2
    return (np.round(x / peak * steps) / steps * peak).astype(np.float32)


def reverb(raw: np.ndarray, level: float, rng: np.random.Generator, sample_rate: int = 8000) -> np.ndarray:
    """A room: convolution with decaying noise, RT60 0.1*level s, wet/dry 0.1*level (level 10: all wet)."""
    x = np.asarray(raw, dtype=np.float32).reshape(-1)
    rt60 = 0.1 * level
    n = max(2, int(rt60 * sample_rate))
    ir = rng.normal(size=n) * np.exp(-6.9 * np.arange(n) / n)
    size = x.size + n - 1
    wet = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(ir, size), size)[: x.size]  # fast convolution
    wet_rms, rms = float(np.sqrt(np.mean(wet**2))), float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    if wet_rms == 0:
        return x.copy()
    mix = min(1.0, 0.1 * level)
    return np.clip((1 - mix) * x + mix * wet * (rms / wet_rms), -1, 1).astype(np.float32)


def clicks_mix(raw: np.ndarray, level: float, rng: np.random.Generator, sample_rate: int = 8000) -> np.ndarray:
    """Crackle: 3*level random impulses of up to the recording's peak (vinyl, a bad cable)."""
    x = np.array(raw, dtype=np.float32, copy=True).reshape(-1)
    if x.size == 0:
        return x
    peak = max(float(np.abs(x).max()), 0.05)
    pos = rng.integers(0, x.size, size=int(round(3 * level)))
    x[pos] += rng.uniform(-1, 1, pos.size).astype(np.float32) * peak * min(1.0, 0.15 * level)
    return np.clip(x, -1, 1).astype(np.float32)


def colored_noise(raw: np.ndarray, level: float, rng: np.random.Generator, sample_rate: int = 8000) -> np.ndarray:
    """Noise of a random colour, power ~ 1/f^a with a drawn from [-2, 1.5] (violet and blue through white to
    between pink and brown; brown itself, a = 2, is held out), at the white-noise SNR."""
    x = np.asarray(raw, dtype=np.float32).reshape(-1)
    return _mix(x, _colored_noise(rng, x.size, float(rng.uniform(-2.0, 1.5))), level, 0.01)


def ring_mod(raw: np.ndarray, level: float, rng: np.random.Generator, sample_rate: int = 8000) -> np.ndarray:
    """Ring modulation (a "robot" voice, a faulty radio link): x * (1 - d + d*sin(2 pi f t)), f 30-600 Hz,
    depth d = 0.1*level."""
    x = np.asarray(raw, dtype=np.float32).reshape(-1)
    t = np.arange(x.size) / sample_rate
    depth = min(1.0, 0.1 * level)
    carrier = np.sin(2 * math.pi * rng.uniform(30, 600) * t + rng.uniform(0, 6.3))
    return np.clip(x * (1 - depth + depth * carrier), -1, 1).astype(np.float32)


def sample_hold(raw: np.ndarray, level: float, rng: np.random.Generator, sample_rate: int = 8000) -> np.ndarray:
    """Sample-rate reduction with no anti-alias filter (each sample held for 1 + 0.7*level samples): the
    aliasing and imaging of a cheap resampler."""
    x = np.asarray(raw, dtype=np.float32).reshape(-1)
    step = 1.0 + 0.7 * level
    idx = np.minimum((np.floor(np.arange(x.size) / step) * step).astype(np.int64), max(0, x.size - 1))
    return x[idx].astype(np.float32) if x.size else x.copy()


def melody_mix(raw: np.ndarray, level: float, rng: np.random.Generator, sample_rate: int = 8000) -> np.ndarray:
    """Music in the background: a generated melody (the `melody` foreign family) at the white-noise SNR."""
    x = np.asarray(raw, dtype=np.float32).reshape(-1)
    music = np.resize(au_melody(rng, sample_rate).astype(np.float64), x.size) if x.size else np.zeros(0)
    return _mix(x, music, level, 0.01)


def spectral_holes(raw: np.ndarray, level: float, rng: np.random.Generator, sample_rate: int = 8000) -> np.ndarray:
    """What a low-bitrate codec does: in 32 ms frames, only the strongest spectral bins are kept (the fraction
    kept falls from 100 % to 6 % with level) and their magnitudes are coarsely quantised; overlap-added."""
    x = np.asarray(raw, dtype=np.float64).reshape(-1)
    n = 256
    if x.size < n or level == 0:
        return x.astype(np.float32)
    hop = n // 2
    window = np.sqrt(np.hanning(n + 1)[:-1])  # square-root Hann in and out: overlap-adds to exactly 1
    pad = np.concatenate([x, np.zeros((-(x.size - n)) % hop + n)])
    frames = np.lib.stride_tricks.sliding_window_view(pad, n)[::hop] * window
    spec = np.fft.rfft(frames, axis=1)
    mag = np.abs(spec)
    keep = max(1, int(round(mag.shape[1] * (1 - 0.094 * level))))
    thresh = -np.sort(-mag, axis=1)[:, keep - 1: keep]
    steps = 2 ** max(1.0, 8 - 0.6 * level)
    peak = mag.max(axis=1, keepdims=True) + 1e-12
    qmag = np.round(mag / peak * steps) / steps * peak
    spec = np.where(mag >= thresh, spec / (mag + 1e-12) * qmag, 0)
    out = np.zeros(pad.size)
    for i, frame in enumerate(np.fft.irfft(spec, n=n, axis=1)):
        out[i * hop: i * hop + n] += frame * window
    return np.clip(out[: x.size], -1, 1).astype(np.float32)


def wavefold(raw: np.ndarray, level: float, rng: np.random.Generator | None = None, sample_rate: int = 8000) -> np.ndarray:
    """A wave folder (an overdriven analogue stage, a synthesiser effect): the waveform is amplified by
    1 + 0.2*level and whatever passes the recording's peak is reflected back below it, so nothing is held
    flat at a limit (that is clipping, held out) but the loud parts fold over into harmonics (deterministic)."""
    x = np.asarray(raw, dtype=np.float64).reshape(-1)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak == 0.0:
        return x.astype(np.float32)
    u = x / peak * (1.0 + 0.2 * level)
    return (peak * (1.0 - np.abs(np.mod(u + 1.0, 4.0) - 2.0))).astype(np.float32)


def rectify(raw: np.ndarray, level: float, rng: np.random.Generator | None = None, sample_rate: int = 8000) -> np.ndarray:
    """Partial half-wave rectification (a failing diode, a bad amplifier), mix d = 0.1*level of the rectified
    signal: (1 - d)*x + d*max(x, 0)*2, mean removed and scaled back to the recording's peak; even harmonics
    and a buzz (deterministic)."""
    x = np.asarray(raw, dtype=np.float64).reshape(-1)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak == 0.0:
        return x.astype(np.float32)
    d = min(1.0, 0.1 * level)
    y = (1.0 - d) * x + d * 2.0 * np.maximum(x, 0.0)
    y -= y.mean()
    return (y * (peak / max(float(np.max(np.abs(y))), 1e-12))).astype(np.float32)


AUDIO_ZOO: dict[str, Callable[..., np.ndarray]] = {
    "pink_noise": pink_noise,
    "tone_mix": tone_mix,
    "quantise": quantise,
    "reverb": reverb,
    "clicks_mix": clicks_mix,
    "colored_noise": colored_noise,
    "ring_mod": ring_mod,
    "sample_hold": sample_hold,
    "melody_mix": melody_mix,
    "spectral_holes": spectral_holes,
    "wavefold": wavefold,
    "rectify": rectify,
    "brown_noise": brown_noise,
    "hum": hum,
}

# Degradations here that are held out from training: evaluation only.
EVAL_ONLY: dict[str, frozenset[str]] = {"image": frozenset(), "audio": frozenset({"brown_noise", "hum"})}
ZOO: dict[str, dict[str, Callable[..., np.ndarray]]] = {"image": IMAGE_ZOO, "audio": AUDIO_ZOO}


def zoo_kinds(kind: str) -> tuple[str, ...]:
    return tuple(ZOO.get(kind, {}))


def check_kinds(modality: Any, kinds: list[str], training: bool = True) -> None:
    """Raise ValueError naming the kinds (or parts of compositions) the modality cannot apply;
    with `training`, an evaluation-only kind is refused too."""
    table = ZOO.get(modality.kind, {})
    bad = [part for kind in kinds for part in kind.split("+")
           if part not in modality.corruption_kinds and part not in table]
    if bad:
        valid = [*modality.corruption_kinds, *table]
        raise ValueError(f"unknown {modality.kind} corruptions {bad}; valid: {valid} (or 'a+b' compositions of them)")
    for kind in kinds:
        for part in kind.split("+"):
            if training and part in EVAL_ONLY.get(modality.kind, ()):
                raise ValueError(f"{modality.kind} degradation {part!r} is held out for evaluation; "
                                 f"it cannot be a training kind")


def degrade(modality: Any, raw: np.ndarray, kind: str, level: float, rng: np.random.Generator) -> np.ndarray:
    """Apply a modality corruption, a zoo degradation, or a '+'-composition of them, at `level` 0..10."""
    level = check_level(level)
    check_rng(rng)
    out = raw
    for part in kind.split("+"):
        if part in modality.corruption_kinds:
            out = modality.corrupt(out, part, level, rng)
            continue
        table = ZOO.get(modality.kind, {})
        if part not in table:
            check_kinds(modality, [kind], training=False)  # raises with the valid names
        if level == 0:
            continue
        if modality.kind == "audio":
            out = table[part](np.asarray(out, dtype=np.float32).reshape(-1), level, rng,
                              sample_rate=int(modality.params["sample_rate"]))
        else:
            out = table[part](np.asarray(out, dtype=np.uint8), level, rng)
    return np.array(out, copy=True) if out is raw else out
