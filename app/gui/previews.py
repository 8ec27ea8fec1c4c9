"""Pictures of one input as the model sees it: image, waveform + log-mel spectrogram, text.

Used by the input panels (live, degraded previews) and by `ResultView` (the Review tab's pictures of
a stored pair). They draw raw arrays the worker sends back; nothing here runs model code. The log-mel
picture is `app.modalities.audio.log_mel` (numpy, the model's framing and filterbank, cheap
enough for the GUI thread).

The image and audio pictures are painted with QPainter from one cached pixmap each, not as
pyqtgraph plots: numpy turns the arrays into `QImage`s when an input arrives (the spectrogram
through the viridis map, the waveform as one peak-to-peak line per pixel column), and a repaint is
a blit. As plots (a scene, view boxes and axes, three of them for an image + audio pair) each new
input cost several milliseconds of GUI-thread time to lay out and paint, at every Review click and
every step of a slider drag. The audio picture keeps what the plot offered: the wheel zooms the time
axis around the pointer, dragging pans it, a double-click shows the whole recording again, and
`set_play_position` draws the playback line. The arrays become QImages in app/gui/preview_images.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QSizePolicy, QVBoxLayout, QWidget

from app.gui import style
from app.gui.preview_images import (  # noqa: F401 - re-exported: their import path before the split
    _viridis,
    colour_image,
    gray_or_rgb_image,
    waveform_image,
    waveform_peaks,
)
from app.modalities.audio import AudioModality, log_mel


def _mel_ticks(n_mels: int, f_min: float, f_max: float) -> list[tuple[float, str]]:
    def hz_to_mel(f: float) -> float:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    lo, hi = hz_to_mel(f_min), hz_to_mel(f_max)
    ticks = []
    for hz in (100, 250, 500, 1000, 2000, 4000, 8000, 16000):
        if f_min <= hz <= f_max:
            pos = (hz_to_mel(hz) - lo) / (hi - lo) * n_mels
            ticks.append((pos, f"{hz / 1000:g}k" if hz >= 1000 else str(hz)))
    return ticks


class Preview(QWidget):
    """Base: shows one raw input; `show_raw(None)` clears it."""

    def __init__(self, params: dict[str, Any] | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.params = dict(params or {})

    def show_raw(self, raw: np.ndarray | None) -> None:
        raise NotImplementedError

    def apply_palette(self) -> None:
        """Re-colour plots after a light/dark palette change."""


AXIS_WIDTH = 48  # left margin for the tick labels: the waveform's and the spectrogram's time axes align
TIME_AXIS_HEIGHT = 30  # tick labels and the axis title
SPECTROGRAM_RANGE = 14.0  # the colour scale spans this much of log power below the loudest bin
MIN_VISIBLE_SECONDS = 0.005  # zooming in stops at this much of the recording


class _Picture(Preview):
    """A preview painted from cached pixmaps; subclasses say what to draw for a size."""

    def __init__(self, params: dict[str, Any] | None = None, parent: QWidget | None = None):
        super().__init__(params, parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)  # every pixel is painted: Qt clears nothing
        self._cache: QPixmap | None = None
        self._cache_key: tuple | None = None
        self._background = style.plot_background()
        self._text = style.text_colour()

    def apply_palette(self) -> None:
        self._background = style.plot_background()
        self._text = style.text_colour()
        self._invalidate()

    def _invalidate(self) -> None:
        self._cache_key = None
        self.update()

    def _key(self) -> tuple:
        return (self.width(), self.height(), self.devicePixelRatioF())

    def _render(self, painter: QPainter) -> None:
        raise NotImplementedError

    def paintEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        key = self._key()
        if self._cache is None or key != self._cache_key:
            pixmap = style.widget_pixmap(self, self._background)
            painter = QPainter(pixmap)
            self._render(painter)
            painter.end()
            self._cache, self._cache_key = pixmap, key
        painter = QPainter(self)
        painter.drawPixmap(0, 0, self._cache)
        self._paint_over(painter)
        painter.end()

    def _paint_over(self, painter: QPainter) -> None:
        """What changes without the picture changing (the playback line)."""


class ImagePreview(_Picture):
    """The image the model gets, pixel-exact (no smoothing), aspect kept, centred."""

    def __init__(self, params=None, parent=None):
        super().__init__(params, parent)
        self.setMinimumHeight(100)
        self.setMaximumHeight(180)
        self.shown: np.ndarray | None = None  # the array on screen (None: empty)
        self._image: QImage | None = None

    def show_raw(self, raw: np.ndarray | None) -> None:
        self._image = None if raw is None else gray_or_rgb_image(raw)
        self.shown = None if self._image is None else np.asarray(raw)
        self._invalidate()

    def _key(self) -> tuple:
        return (*super()._key(), id(self._image))

    def image_rect(self) -> QRectF:
        """Where the image is drawn: the largest rectangle of its aspect inside 96 % of the widget."""
        if self._image is None:
            return QRectF()
        w, h = self._image.width(), self._image.height()
        room_w, room_h = self.width() * 0.96, self.height() * 0.96
        scale = min(room_w / w, room_h / h)
        return QRectF((self.width() - w * scale) / 2, (self.height() - h * scale) / 2, w * scale, h * scale)

    def _render(self, painter: QPainter) -> None:
        if self._image is not None:
            painter.drawImage(self.image_rect(), self._image)  # no SmoothPixmapTransform: nearest pixels


class AudioPreview(_Picture):
    """Waveform over time (top) and the log-mel spectrogram (below), time in s, frequency in Hz."""

    def __init__(self, params=None, parent=None):
        super().__init__(params, parent)
        self.setMinimumHeight(130)
        self.setMaximumHeight(250)
        self.setMouseTracking(False)
        self.sample_rate = int(self.params.get("sample_rate", 8000))
        self.wave: np.ndarray | None = None
        self.mel: np.ndarray | None = None
        self.levels: tuple[float, float] = (0.0, 1.0)
        self.seconds = 1.0
        self.view = (0.0, 1.0)  # the time range shown, seconds
        self._spectrogram: QImage | None = None
        self._play: float | None = None
        self._drag: tuple[float, tuple[float, float]] | None = None
        n_mels = int(self.params.get("n_mels", 40))
        self._freq_ticks = _mel_ticks(n_mels, float(self.params.get("f_min", 20.0)),
                                      float(self.params.get("f_max", self.sample_rate / 2)))
        self._n_mels = n_mels

    # --- data ------------------------------------------------------------------------------------------
    def show_raw(self, raw: np.ndarray | None) -> None:
        if raw is None:
            self.wave = self.mel = None
            self._spectrogram = None
            self._invalidate()
            return
        x = np.asarray(raw, dtype=np.float32).reshape(-1)
        self.wave = x
        self.mel = log_mel(x, {**AudioModality.default_params(), **self.params})
        floor = float(np.log(float(self.params.get("log_floor", 1e-5))))
        hi = max(float(self.mel.max()), floor + 1.0)
        self.levels = (max(floor, hi - SPECTROGRAM_RANGE), hi)  # fixed-ish: silence is dark, not rescaled noise
        self._spectrogram = colour_image(self.mel, *self.levels)
        self._n_mels = self.mel.shape[0]
        self.seconds = x.size / self.sample_rate if x.size else 1.0 / self.sample_rate
        self.view = (0.0, self.seconds)
        self._invalidate()

    def set_play_position(self, seconds: float | None) -> None:
        self._play = None if seconds is None else float(seconds)
        self.update()

    def play_position(self) -> float | None:
        return self._play

    # --- layout ----------------------------------------------------------------------------------------
    def areas(self) -> tuple[QRect, QRect]:
        """(waveform, spectrogram) rectangles inside the widget: 2 : 3 of the height above the time axis."""
        usable = max(2, self.height() - TIME_AXIS_HEIGHT - 4)
        wave_h = usable * 2 // 5
        left, width = AXIS_WIDTH, max(1, self.width() - AXIS_WIDTH - 4)
        return QRect(left, 2, width, wave_h - 2), QRect(left, wave_h + 2, width, usable - wave_h)

    def _x_of(self, seconds: float, area: QRect) -> float:
        t0, t1 = self.view
        return area.left() + (seconds - t0) / max(t1 - t0, 1e-12) * area.width()

    def _seconds_at(self, x: float) -> float:
        area = self.areas()[0]
        t0, t1 = self.view
        return t0 + (x - area.left()) / max(area.width(), 1) * (t1 - t0)

    def _key(self) -> tuple:
        return (*super()._key(), id(self.wave), self.view)

    # --- painting --------------------------------------------------------------------------------------
    def _render(self, painter: QPainter) -> None:
        wave_area, spec_area = self.areas()
        painter.setPen(QPen(self._text))
        font = painter.font()
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.8))
        painter.setFont(font)
        self._left_axis(painter, wave_area, [(1.0, "1"), (0.0, "0"), (-1.0, "-1")], -1.05, 1.05, ("amplitude", "amp."))
        self._left_axis(painter, spec_area, list(self._freq_ticks), 0.0, float(self._n_mels), ("frequency (Hz)", "Hz"))
        self._time_axis(painter, spec_area)
        if self.wave is None or self.wave.size == 0:
            return
        t0, t1 = self.view
        start = max(0, int(np.floor(t0 * self.sample_rate)))
        stop = min(self.wave.size, int(np.ceil(t1 * self.sample_rate)) + 1)
        ratio = self.devicePixelRatioF()
        image = waveform_image(self.wave, start, stop, round(wave_area.width() * ratio),
                               round(wave_area.height() * ratio), QColor(style.SERIES[1]))
        x_from, x_to = self._x_of(start / self.sample_rate, wave_area), self._x_of(stop / self.sample_rate, wave_area)
        painter.save()
        painter.setClipRect(wave_area)
        painter.drawImage(QRectF(x_from, wave_area.top(), x_to - x_from, wave_area.height()), image)
        painter.restore()
        if self._spectrogram is not None:
            frames = self._spectrogram.width()
            # the spectrogram spans [0, seconds] like the waveform; show the part in view
            f0 = t0 / self.seconds * frames
            f1 = t1 / self.seconds * frames
            painter.drawImage(QRectF(spec_area), self._spectrogram, QRectF(f0, 0.0, f1 - f0, self._spectrogram.height()))

    def _left_axis(self, painter: QPainter, area: QRect, ticks: list[tuple[float, str]], lo: float, hi: float,
                   titles: tuple[str, ...]) -> None:
        """Tick marks and labels left of `area` (labels kept inside its height, so neighbours never
        overlap), and the axis title turned on its side along the widget's left edge: the first of
        `titles` that fits the area's height with a line's height to spare (so the titles of two
        stacked areas never run into each other), or none."""
        metrics = painter.fontMetrics()
        painter.drawLine(area.left() - 1, area.top(), area.left() - 1, area.bottom())
        label_h = metrics.height()
        taken: list[float] = []  # the tops of the labels drawn: one that would overlap them is left out
        for value, text in ticks:
            y = area.bottom() - (value - lo) / (hi - lo) * area.height()
            if area.top() - 1 <= y <= area.bottom() + 1:
                painter.drawLine(QPointF(area.left() - 4, y), QPointF(area.left() - 1, y))
                top = min(max(y - label_h / 2, area.top()), area.bottom() - label_h)
                if all(abs(top - other) >= label_h for other in taken):
                    taken.append(top)
                    painter.drawText(QRectF(label_h, top, area.left() - 6 - label_h, label_h),
                                     int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), text)
        title = next((t for t in titles if metrics.horizontalAdvance(t) + label_h <= area.height()), None)
        if title is not None:  # a title cut short would say nothing
            painter.save()
            painter.translate(0, area.bottom())
            painter.rotate(-90)
            painter.drawText(QRectF(0, 0, area.height(), label_h), int(Qt.AlignmentFlag.AlignCenter), title)
            painter.restore()

    def _time_axis(self, painter: QPainter, area: QRect) -> None:
        t0, t1 = self.view
        span = max(t1 - t0, 1e-9)
        step = 10 ** np.floor(np.log10(span / 4))
        for factor in (1, 2, 5, 10):
            if span / (step * factor) <= 6:
                step *= factor
                break
        y = area.bottom() + 1
        painter.drawLine(area.left(), y, area.right(), y)
        metrics = painter.fontMetrics()
        first = np.ceil(t0 / step) * step
        decimals = max(0, int(-np.floor(np.log10(step) + 1e-9)))
        for tick in np.arange(first, t1 + step * 1e-6, step):
            x = self._x_of(float(tick), area)
            painter.drawLine(QPointF(x, y), QPointF(x, y + 3))
            text = f"{tick:.{decimals}f}"
            w = metrics.horizontalAdvance(text)
            painter.drawText(QPointF(min(max(x - w / 2, area.left()), area.right() - w), y + 3 + metrics.ascent()), text)
        painter.drawText(QRectF(area.left(), y + 3 + metrics.height(), area.width(), metrics.height()),
                         int(Qt.AlignmentFlag.AlignCenter), "time (s)")

    def _paint_over(self, painter: QPainter) -> None:
        if self._play is None or self.wave is None:
            return
        painter.setPen(QPen(QColor("#D81B60"), 2))
        wave_area, spec_area = self.areas()
        x = self._x_of(self._play, wave_area)
        if wave_area.left() <= x <= wave_area.right():
            painter.drawLine(QPointF(x, wave_area.top()), QPointF(x, spec_area.bottom()))

    # --- zoom and pan of the time axis ---------------------------------------------------------------------
    def set_view(self, t0: float, t1: float) -> None:
        """Show the time range [t0, t1] (seconds), kept inside the recording."""
        span = min(max(t1 - t0, MIN_VISIBLE_SECONDS), self.seconds)
        t0 = min(max(t0, 0.0), self.seconds - span)
        if (t0, t0 + span) != self.view:
            self.view = (t0, t0 + span)
            self._invalidate()

    def wheelEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        if self.wave is None:
            return
        at = self._seconds_at(event.position().x())
        factor = 0.8 ** (event.angleDelta().y() / 120.0)
        t0, t1 = self.view
        self.set_view(at - (at - t0) * factor, at + (t1 - at) * factor)
        event.accept()

    def mousePressEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        if event.button() == Qt.MouseButton.LeftButton and self.wave is not None:
            self._drag = (event.position().x(), self.view)
            event.accept()

    def mouseMoveEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        if self._drag is None:
            return
        x0, (t0, t1) = self._drag
        shift = (event.position().x() - x0) / max(self.areas()[0].width(), 1) * (t1 - t0)
        self.set_view(t0 - shift, t1 - shift)

    def mouseReleaseEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        self._drag = None

    def mouseDoubleClickEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        self.set_view(0.0, self.seconds)


class TextPreview(Preview):
    """The words the model reads; blanked words show as ▢."""

    def __init__(self, params=None, parent=None):
        super().__init__(params, parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setMinimumHeight(80)
        layout.addWidget(self.text)

    def show_raw(self, raw):
        if raw is None:
            self.text.setPlainText("")
            return
        words = [str(w) if str(w) else "▢" for w in np.asarray(raw).reshape(-1)]
        self.text.setPlainText(" ".join(words))


class GenericPreview(Preview):
    """Any other kind: the array's shape and value range."""

    def __init__(self, params=None, parent=None):
        super().__init__(params, parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel("")
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setWordWrap(True)
        layout.addWidget(self.label)

    def show_raw(self, raw):
        if raw is None:
            self.label.setText("")
            return
        a = np.asarray(raw)
        text = f"array {a.dtype} {tuple(a.shape)}"
        if a.size and np.issubdtype(a.dtype, np.number):
            text += f", values {float(a.min()):.3g} … {float(a.max()):.3g}"
        self.label.setText(text)


PREVIEWS: dict[str, type[Preview]] = {"image": ImagePreview, "audio": AudioPreview, "text": TextPreview}


def make_preview(kind: str, params: dict[str, Any] | None = None, parent: QWidget | None = None) -> Preview:
    return PREVIEWS.get(kind, GenericPreview)(params, parent)
