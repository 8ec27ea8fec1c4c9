"""The image modality's corruptions (the robustness report's kinds): pure functions of (raw uint8
image, level 0..10, numpy Generator). `ImageModality.corrupt` (app/modalities/image.py) applies them.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from .base import check_level, check_rng


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Round and clip to 0..255 *before* casting, so negative noise never wraps to white."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _scale(raw: np.ndarray) -> float:
    """Image size relative to the 28x28 model scale, so pixel radii mean the same at any size."""
    return min(raw.shape[0], raw.shape[1]) / 28.0


def gaussian_noise(raw: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    """Additive Gaussian noise with standard deviation 10*level (0-255 units)."""
    level = check_level(level)
    check_rng(rng)
    if level == 0:
        return raw.copy()
    noise = rng.normal(0.0, 10.0 * level, size=raw.shape)
    return _to_uint8(raw.astype(np.float64) + noise)


def salt_pepper(raw: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    """A fraction 0.05*level of the pixels set to black or white (all channels of a pixel)."""
    level = check_level(level)
    check_rng(rng)
    out = raw.copy()
    if level == 0:
        return out
    h, w = raw.shape[:2]
    hit = rng.random((h, w)) < 0.05 * level
    white = rng.random((h, w)) < 0.5
    out[hit & white] = 255
    out[hit & ~white] = 0
    return out


def blur(raw: np.ndarray, level: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """Gaussian blur of radius 0.25*level px at 28x28, scaled with the image size (deterministic)."""
    level = check_level(level)
    if level == 0:
        return raw.copy()
    from PIL import ImageFilter

    radius = 0.25 * level * _scale(raw)
    img = Image.fromarray(np.ascontiguousarray(raw))
    return np.asarray(img.filter(ImageFilter.GaussianBlur(radius)), dtype=np.uint8).copy()


def occlusion(raw: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    """A random square covering a fraction 0.06*level of the area, filled with grey noise."""
    level = check_level(level)
    check_rng(rng)
    out = raw.copy()
    if level == 0:
        return out
    h, w = raw.shape[:2]
    side = int(round(math.sqrt(0.06 * level * h * w)))
    side = max(1, min(side, h, w))
    top = int(rng.integers(0, h - side + 1))
    left = int(rng.integers(0, w - side + 1))
    fill = rng.integers(0, 256, size=(side, side), dtype=np.uint8)
    if raw.ndim == 3:
        fill = np.repeat(fill[:, :, None], raw.shape[2], axis=2)
    out[top : top + side, left : left + side] = fill
    return out


def contrast(raw: np.ndarray, level: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """Contrast shrunk towards the image mean by a factor 1 - 0.095*level (deterministic)."""
    level = check_level(level)
    if level == 0:
        return raw.copy()
    values = raw.astype(np.float64)
    mean = values.mean()
    return _to_uint8(mean + (values - mean) * (1.0 - 0.095 * level))


_CORRUPTIONS = {
    "gaussian": gaussian_noise,
    "salt_pepper": salt_pepper,
    "blur": blur,
    "occlusion": occlusion,
    "contrast": contrast,
}
