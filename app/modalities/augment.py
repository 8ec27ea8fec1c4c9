"""Training-time augmentation of raw inputs (not corruptions: these keep the input *good*).

Corruptions (`Modality.corrupt`) make an input worse so that QMF learns to distrust it. The
augmentations here do the opposite job: they vary an input the way real inputs vary (another
speaker, another microphone level, another position of the word in the clip; another pen, another
slant) so that the model recognises the digit anyway and keeps trusting the input. They act on the
raw representation (uint8 image, float32 8 kHz waveform), are pure functions of their arguments
and draw only from the caller's numpy Generator.

Deliberately left out, because they would be the *unseen* corruption kinds of the robustness
report under another name: chunk dropouts / time masking (audio `dropout`), band-limiting or
frequency masking (`bandlimit`), clipping, mixing in other speech (`babble`); for images blur,
salt-and-pepper, occlusion and contrast loss.

A recipe turns them on per modality with `[training.modality_augment.<name>]` tables, for example

    [training.modality_augment.audio]
    probability = 0.8
    speed = [0.8, 1.25]      # resampling factor range: tempo and pitch together (vocal-tract length)
    gain_db = [-12.0, 6.0]
    shift = true             # random position of a short recording inside the model window
    noise_snr_db = [30.0, 50.0]
    noise_probability = 0.3
    tilt = 0.3               # first-order spectral tilt coefficient range [-tilt, tilt] (microphone colour)
    formant = [0.87, 1.15]   # optional, off by default: vocal-tract-length perturbation at constant tempo
    tempo = [0.85, 1.18]     # optional, off by default: speaking rate at constant pitch (WSOLA time stretch)

Such a table is read into an :class:`AudioAugment` or :class:`ImageAugment` when the recipe is read
(:func:`augment_spec`), so a misspelt key or a range the wrong way round stops the run before any
data is decoded. A range that is on by default is turned off with an empty list (``speed = []``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
from PIL import Image


def _uniform(rng: np.random.Generator, bounds: Sequence[float] | float | None, default: float) -> float:
    if bounds is None:
        return default
    if isinstance(bounds, int | float):
        return float(bounds)
    lo, hi = float(bounds[0]), float(bounds[1])
    return float(rng.uniform(lo, hi)) if hi > lo else lo


# --- audio ------------------------------------------------------------------------------------


def resample_speed(x: np.ndarray, factor: float) -> np.ndarray:
    """Play `x` `factor` times faster (factor > 1: shorter and higher), by linear interpolation.

    Changing tempo and pitch together is the cheap cousin of vocal-tract-length perturbation: a
    child's or a woman's voice is roughly a man's played faster.
    """
    if factor == 1.0 or x.size < 2:
        return x.astype(np.float32, copy=True)
    n_out = max(2, int(round(x.size / factor)))
    positions = np.linspace(0.0, x.size - 1, n_out)
    return np.interp(positions, np.arange(x.size), x).astype(np.float32)


def time_stretch(x: np.ndarray, rate: float, frame: int = 256, hop: int = 64, tolerance: int = 64) -> np.ndarray:
    """Change the duration by 1/`rate` (rate > 1: shorter) keeping pitch and spectrum (WSOLA): Hann-windowed frames
    written every `hop` samples, each read near `k * hop * rate`, shifted by up to `tolerance` samples to the
    position most similar to the natural continuation of the previous frame (so waveform periods line up;
    plain overlap-add would shift the pitch)."""
    if rate == 1.0 or x.size < frame:
        return x.astype(np.float32, copy=True)
    w = np.hanning(frame)
    n_out = max(frame, int(round(x.size / rate)))
    n_frames = 1 + max(0, (n_out - frame) // hop)
    pad = tolerance + frame
    src = np.concatenate([np.zeros(pad), x.astype(np.float64), np.zeros(pad + frame)])
    y = np.zeros(n_out + frame, dtype=np.float64)
    norm = np.zeros(n_out + frame, dtype=np.float64)
    prev = None
    for k in range(n_frames):
        a = pad + min(int(round(k * hop * rate)), x.size - 1)
        if prev is not None:
            target = src[prev + hop : prev + hop + frame]
            region = src[a - tolerance : a + tolerance + frame]
            if np.any(target) and np.any(region):
                corr = np.correlate(region, target, mode="valid")
                a = a - tolerance + int(np.argmax(corr))
        y[k * hop : k * hop + frame] += src[a : a + frame] * w
        norm[k * hop : k * hop + frame] += w
        prev = a
    y = y[:n_out] / np.maximum(norm[:n_out], 1e-3)
    return y.astype(np.float32)


def formant_shift(x: np.ndarray, factor: float) -> np.ndarray:
    """Vocal-tract-length perturbation in the waveform: scale every frequency (formants and pitch) by `factor`
    by resampling, then restore the duration with a pitch-preserving time stretch, so tempo is unchanged."""
    if factor == 1.0 or x.size < 2:
        return x.astype(np.float32, copy=True)
    y = resample_speed(x, factor)  # frequencies x factor, duration / factor
    return time_stretch(y, 1.0 / factor)


def spectral_tilt(x: np.ndarray, coefficient: float) -> np.ndarray:
    """y[n] = x[n] - c*x[n-1]: c > 0 brightens (pre-emphasis), c < 0 darkens; a mild microphone colour."""
    if coefficient == 0.0 or x.size < 2:
        return x.astype(np.float32, copy=True)
    y = x.astype(np.float64).copy()
    y[1:] -= coefficient * x[:-1]
    peak_in, peak_out = float(np.max(np.abs(x))), float(np.max(np.abs(y)))
    if peak_out > 0:
        y *= peak_in / peak_out
    return y.astype(np.float32)


def place_in_window(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A recording shorter than the model window put at a random offset (the model centres it at test time)."""
    if x.size >= n:
        return x
    out = np.zeros(n, dtype=np.float32)
    start = int(rng.integers(0, n - x.size + 1))
    out[start : start + x.size] = x
    return out


def augment_audio(
    raw: np.ndarray,
    rng: np.random.Generator,
    *,
    sample_rate: int = 8000,
    window_seconds: float = 1.0,
    probability: float = 1.0,
    speed: Sequence[float] | None = (0.8, 1.25),
    gain_db: Sequence[float] | None = (-12.0, 6.0),
    shift: bool = True,
    shift_fraction: float = 0.5,
    noise_snr_db: Sequence[float] | None = (30.0, 50.0),
    noise_probability: float = 0.3,
    tilt: float = 0.0,
    formant: Sequence[float] | None = None,
    tempo: Sequence[float] | None = None,
) -> np.ndarray:
    """Speaker/microphone variation of one raw waveform (float32 mono in [-1, 1]).

    `formant` (factor range, log-uniform; off by default): vocal-tract-length perturbation at constant tempo
    (`formant_shift`). `tempo` (rate range, log-uniform; off by default): speaking rate at constant pitch
    (`time_stretch`). Both are applied after `speed`, so the three vary independently."""
    x = np.asarray(raw, dtype=np.float32).reshape(-1)
    if rng.random() >= probability or x.size == 0 or not np.any(x):
        return x.copy()
    if speed is not None:
        # log-uniform, so 0.8 and 1.25 are equally likely
        lo, hi = np.log(float(speed[0])), np.log(float(speed[1]))
        x = resample_speed(x, float(np.exp(rng.uniform(lo, hi))))
    if formant is not None:
        x = formant_shift(x, float(np.exp(rng.uniform(np.log(float(formant[0])), np.log(float(formant[1]))))))
    if tempo is not None:
        x = time_stretch(x, float(np.exp(rng.uniform(np.log(float(tempo[0])), np.log(float(tempo[1]))))))
    if tilt > 0:
        x = spectral_tilt(x, float(rng.uniform(-tilt, tilt)))
    if gain_db is not None:
        x = x * np.float32(10.0 ** (_uniform(rng, gain_db, 0.0) / 20.0))
    if noise_snr_db is not None and rng.random() < noise_probability:
        peak = float(np.max(np.abs(x)))
        loud = x[np.abs(x) > 0.01 * peak] if peak > 0 else x
        rms = float(np.sqrt(np.mean(loud.astype(np.float64) ** 2))) if loud.size else 0.0
        if rms > 0:
            snr = _uniform(rng, noise_snr_db, 40.0)
            x = x + rng.normal(0.0, rms / 10.0 ** (snr / 20.0), size=x.shape).astype(np.float32)
    if shift:
        n = int(round(window_seconds * sample_rate))
        if x.size < n and rng.random() < shift_fraction:
            x = place_in_window(x, n, rng)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


# --- image ------------------------------------------------------------------------------------


def augment_image(
    raw: np.ndarray,
    rng: np.random.Generator,
    *,
    probability: float = 0.5,
    rotate: float = 12.0,
    scale: Sequence[float] = (0.85, 1.1),
    shear: float = 0.2,
    translate: float = 2.0,
    thickness: Sequence[float] | None = None,
    elastic: float = 0.0,
) -> np.ndarray:
    """A small random affine warp (rotation, scale, shear, shift) of a uint8 HxW image: other handwriting.

    Writing style, off by default: `thickness` = [lo, hi] pen-width change in pixels at the 28x28 scale
    (negative thins the strokes; `stroke_width`), `elastic` = standard deviation in pixels of a smooth
    random displacement field (`elastic_warp`), the wobble of a hand rather than a ruler. Both apply,
    like the affine warp, with `probability`.
    """
    arr = np.asarray(raw, dtype=np.uint8)
    if rng.random() >= probability or arr.ndim != 2:
        return arr.copy()
    if thickness is not None:
        arr = stroke_width(arr, _uniform(rng, thickness, 0.0))
    if elastic > 0:
        arr = elastic_warp(arr, rng, elastic)
    h, w = arr.shape
    angle = np.deg2rad(rng.uniform(-rotate, rotate))
    s = rng.uniform(float(scale[0]), float(scale[1]))
    sh = rng.uniform(-shear, shear)
    tx, ty = rng.uniform(-translate, translate, size=2)
    cos, sin = np.cos(angle), np.sin(angle)
    # forward map A = R * Shear * S; PIL wants the inverse (output -> input)
    forward = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, sh], [0.0, 1.0]]) * s
    inverse = np.linalg.inv(forward)
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    centre_out = np.array([cx + tx, cy + ty])
    offset = np.array([cx, cy]) - inverse @ centre_out
    coeffs = (inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1])
    img = Image.fromarray(arr).transform((w, h), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8).copy()


def stroke_width(raw: np.ndarray, change: float) -> np.ndarray:
    """Thicker (change > 0) or thinner strokes by `change` pixels at the 28x28 scale: a grey-level
    dilation or erosion at 4x the resolution, so fractions of a pixel are possible."""
    from PIL import ImageFilter

    arr = np.asarray(raw, dtype=np.uint8)
    h, w = arr.shape
    k = int(round(abs(change) * 4 * min(h, w) / 28.0))
    if k == 0:
        return arr.copy()
    big = Image.fromarray(arr).resize((4 * w, 4 * h), Image.Resampling.BICUBIC)
    filt = ImageFilter.MaxFilter(2 * k + 1) if change > 0 else ImageFilter.MinFilter(2 * k + 1)
    return np.asarray(big.filter(filt).resize((w, h), Image.Resampling.LANCZOS), dtype=np.uint8).copy()


def elastic_warp(raw: np.ndarray, rng: np.random.Generator, sigma: float, grid: int = 4) -> np.ndarray:
    """Smooth random displacement (a `grid` x `grid` normal field of std `sigma` px at 28x28, upsampled
    bicubically), sampled bilinearly: Simard et al.'s elastic distortion, cheaply."""
    arr = np.asarray(raw, dtype=np.uint8)
    h, w = arr.shape
    k = min(h, w) / 28.0
    coarse = rng.normal(0.0, sigma * k, size=(2, grid, grid)).astype(np.float32)
    dy, dx = (np.asarray(Image.fromarray(c).resize((w, h), Image.Resampling.BICUBIC)) for c in coarse)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    sy, sx = np.clip(yy + dy, 0, h - 1), np.clip(xx + dx, 0, w - 1)
    y0, x0 = np.floor(sy).astype(int), np.floor(sx).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = sy - y0, sx - x0
    a = arr.astype(np.float32)
    top = a[y0, x0] * (1 - fx) + a[y0, x1] * fx
    bottom = a[y1, x0] * (1 - fx) + a[y1, x1] * fx
    return np.clip(np.rint(top * (1 - fy) + bottom * fy), 0, 255).astype(np.uint8)


# --- typed settings (one recipe table each) ----------------------------------------------------

Range = tuple[float, float]


def _range(name: str, value: Any, *, optional: bool, positive: bool = False) -> Range | None:
    """A [lo, hi] pair from a recipe; None (or an empty list) turns an optional range off."""
    if value is None or (optional and isinstance(value, list | tuple) and len(value) == 0):
        if not optional:
            raise ValueError(f"{name}: needs a range [low, high]")
        return None
    if not isinstance(value, list | tuple) or len(value) != 2 or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise ValueError(f"{name}: expected a range [low, high] of two numbers, got {value!r}"
                         + (" (or [] for off)" if optional else ""))
    lo, hi = float(value[0]), float(value[1])
    if lo > hi:
        raise ValueError(f"{name}: low {lo:g} is above high {hi:g}")
    if positive and lo <= 0:
        raise ValueError(f"{name}: factors must be above 0, got {lo:g}")
    return (lo, hi)


def _fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name}: expected a probability between 0 and 1, got {value!r}")
    return float(value)


def _non_negative(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or float(value) < 0:
        raise ValueError(f"{name}: expected a number of at least 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class AudioAugment:
    """``[training.modality_augment.<audio input>]``: the arguments of :func:`augment_audio`, checked."""

    probability: float = 1.0
    speed: Range | None = (0.8, 1.25)
    gain_db: Range | None = (-12.0, 6.0)
    shift: bool = True
    shift_fraction: float = 0.5
    noise_snr_db: Range | None = (30.0, 50.0)
    noise_probability: float = 0.3
    tilt: float = 0.0
    formant: Range | None = None
    tempo: Range | None = None

    def __post_init__(self) -> None:
        for name in ("probability", "shift_fraction", "noise_probability"):
            object.__setattr__(self, name, _fraction(name, getattr(self, name)))
        object.__setattr__(self, "tilt", _non_negative("tilt", self.tilt))
        for name, positive in (("speed", True), ("gain_db", False), ("noise_snr_db", False),
                               ("formant", True), ("tempo", True)):
            object.__setattr__(self, name, _range(name, getattr(self, name), optional=True, positive=positive))
        if not isinstance(self.shift, bool):
            raise ValueError(f"shift: expected true or false, got {self.shift!r}")


@dataclass(frozen=True)
class ImageAugment:
    """``[training.modality_augment.<image input>]``: the arguments of :func:`augment_image`, checked."""

    probability: float = 0.5
    rotate: float = 12.0
    scale: Range = (0.85, 1.1)
    shear: float = 0.2
    translate: float = 2.0
    thickness: Range | None = None  # writing style: pen-width change range in px at 28x28 (stroke_width)
    elastic: float = 0.0  # writing style: elastic wobble, std in px (elastic_warp)

    def __post_init__(self) -> None:
        object.__setattr__(self, "probability", _fraction("probability", self.probability))
        for name in ("rotate", "shear", "translate", "elastic"):
            object.__setattr__(self, name, _non_negative(name, getattr(self, name)))
        object.__setattr__(self, "scale", _range("scale", self.scale, optional=False, positive=True))
        object.__setattr__(self, "thickness", _range("thickness", self.thickness, optional=True))


AUGMENT_SPECS: dict[str, type[AudioAugment] | type[ImageAugment]] = {"audio": AudioAugment, "image": ImageAugment}


def augment_spec(kind: str, table: Mapping[str, Any] | AudioAugment | ImageAugment) -> AudioAugment | ImageAugment:
    """The typed settings for an input of `kind` from a recipe table; ValueError naming the bad key or value."""
    spec_type = AUGMENT_SPECS.get(kind)
    if spec_type is None:
        raise ValueError(f"{kind} inputs have no input augmentation (augmentable kinds: {', '.join(AUGMENT_SPECS)})")
    if isinstance(table, spec_type):
        return table
    if not isinstance(table, Mapping):
        raise ValueError(f"expected a table of settings, got {table!r}")
    known = [f.name for f in fields(spec_type)]
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ValueError(f"unknown {kind} augmentation settings {unknown}; known: {known}")
    return spec_type(**table)


def augment_raw(modality: Any, raw: np.ndarray, rng: np.random.Generator,
                spec: AudioAugment | ImageAugment) -> np.ndarray:
    """Apply `spec` (see :func:`augment_spec`) to one raw input of `modality`."""
    params = asdict(spec)
    if isinstance(spec, AudioAugment):
        return augment_audio(raw, rng, sample_rate=int(modality.params["sample_rate"]),
                             window_seconds=float(modality.params["duration"]), **params)
    return augment_image(raw, rng, **params)
