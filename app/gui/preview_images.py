"""The previews' arrays as QImages, made with numpy (app/gui/previews.py paints them): the spectrogram
through the viridis map, an image input as gray or RGB, the waveform as one peak-to-peak line per
pixel column.
"""

from __future__ import annotations

import functools

import numpy as np
from PySide6.QtGui import QColor, QImage


@functools.cache
def _viridis() -> np.ndarray:
    """The spectrogram's 256-entry colour map, as 0xAARRGGBB words for QImage.Format_ARGB32."""
    from app.gui.viridis import VIRIDIS_RGB

    rgb = np.frombuffer(VIRIDIS_RGB, np.uint8).reshape(256, 3).astype(np.uint32)
    return (0xFF000000 | (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]).astype(np.uint32)


def colour_image(values: np.ndarray, low: float, high: float) -> QImage:
    """A float [rows, cols] array as an ARGB32 QImage through the viridis map, `low`..`high` spanning
    it (clipped), the first row at the bottom as in a plot whose y axis points up."""
    scaled = (np.asarray(values, dtype=np.float32) - low) * (255.0 / max(high - low, 1e-12))
    index = np.clip(scaled, 0, 255).astype(np.uint8)[::-1]
    words = np.ascontiguousarray(_viridis()[index])
    rows, cols = words.shape
    image = QImage(words.data, cols, rows, cols * 4, QImage.Format.Format_ARGB32)
    return image.copy()  # owns its pixels: `words` goes away


def gray_or_rgb_image(raw: np.ndarray) -> QImage | None:
    """An image input (uint8 HxW, HxWx1 or HxWx3, as the model sees it) as a QImage; None when empty."""
    a = np.asarray(raw)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or a.size == 0 or (a.ndim == 3 and a.shape[2] != 3):
        return None
    if a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)  # the same levels (0, 255) the plot used
    a = np.ascontiguousarray(a)
    h, w = a.shape[:2]
    fmt = QImage.Format.Format_Grayscale8 if a.ndim == 2 else QImage.Format.Format_RGB888
    return QImage(a.data, w, h, a.strides[0], fmt).copy()


def waveform_peaks(wave: np.ndarray, start: int, stop: int, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """(lowest, highest) sample of each of `columns` equal slices of wave[start:stop] (peak
    downsampling: a click or a burst of noise stays visible however far out the view is)."""
    part = np.asarray(wave[start:stop], dtype=np.float32)
    columns = max(1, min(columns, part.size))
    if part.size == 0:
        return np.zeros(columns, np.float32), np.zeros(columns, np.float32)
    edges = np.linspace(0, part.size, columns + 1).astype(np.int64)
    edges[-1] = part.size
    starts = edges[:-1]
    lows = np.minimum.reduceat(part, starts)
    highs = np.maximum.reduceat(part, starts)
    return lows, highs


def waveform_image(wave: np.ndarray, start: int, stop: int, width: int, height: int, colour: QColor) -> QImage:
    """wave[start:stop] as a `width` x `height` transparent picture: one vertical line per pixel column
    from its lowest to its highest sample (y = 1 at the top, -1 at the bottom, with a little room)."""
    width, height = max(1, width), max(1, height)
    lows, highs = waveform_peaks(wave, start, stop, width)
    if lows.size < width:  # fewer samples than columns: each sample as wide as its share
        spread = np.linspace(0, lows.size, width, endpoint=False).astype(np.int64)
        lows, highs = lows[spread], highs[spread]
    mid, half = (height - 1) / 2.0, (height - 1) / 2.1
    top = np.floor(mid - highs * half)[None, :]
    bottom = np.ceil(mid - lows * half)[None, :]
    rows = np.arange(height, dtype=np.float32)[:, None]
    mask = (rows >= top) & (rows <= np.maximum(bottom, top))
    words = np.where(mask, np.uint32(colour.rgba()), np.uint32(0)).astype(np.uint32)
    image = QImage(np.ascontiguousarray(words).data, width, height, width * 4, QImage.Format.Format_ARGB32)
    return image.copy()

