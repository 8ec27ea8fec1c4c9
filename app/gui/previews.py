"""Pictures of one input as the model sees it: image, waveform + log-mel spectrogram, text.

Used by the input panels (live, degraded previews) and by `ResultView` (previews of a stored
result). They draw raw arrays the worker sends back; nothing here runs model code. The log-mel
picture is `app.modalities.audio.log_mel` (numpy, the model's framing and filterbank, cheap
enough for the GUI thread).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from app.gui import style
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


class ImagePreview(Preview):
    """The image the model gets (after resizing and any degradation), pixel-exact, aspect kept."""

    def __init__(self, params=None, parent=None):
        super().__init__(params, parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setMinimumHeight(100)
        self.view.setMaximumHeight(180)
        self.box = self.view.addViewBox(lockAspect=True, invertY=True, enableMouse=False, enableMenu=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.box.addItem(self.image)
        layout.addWidget(self.view)
        self.apply_palette()

    def apply_palette(self) -> None:
        self.view.setBackground(style.plot_background())

    def show_raw(self, raw):
        if raw is None:
            self.image.clear()
            return
        a = np.asarray(raw)
        self.image.setImage(a, levels=(0, 255), autoLevels=False)
        self.box.autoRange(padding=0.02)


class AudioPreview(Preview):
    """Waveform over time and the log-mel spectrogram (time in s, frequency in Hz)."""

    def __init__(self, params=None, parent=None):
        super().__init__(params, parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.wave_plot = pg.PlotWidget(enableMenu=False)  # never built: pyqtgraph's menu costs ~12 ms a plot
        self.wave_plot.setMinimumHeight(55)
        self.wave_plot.setMaximumHeight(105)
        self.wave_plot.setLabel("left", "amplitude")
        self.wave_plot.setYRange(-1, 1, padding=0.05)
        self.wave_plot.setMouseEnabled(x=True, y=False)
        self.wave_plot.setMenuEnabled(False)
        self.wave_curve = self.wave_plot.plot(pen=pg.mkPen(style.SERIES[1], width=1))
        self.wave_curve.setDownsampling(auto=True, method="peak")
        self.wave_curve.setClipToView(True)
        self.spec_plot = pg.PlotWidget(enableMenu=False)
        self.spec_plot.setMinimumHeight(75)
        self.spec_plot.setMaximumHeight(145)
        self.spec_plot.setLabel("bottom", "time", units="s")
        self.spec_plot.setLabel("left", "frequency (Hz)")
        self.spec_plot.getAxis("left").enableAutoSIPrefix(False)  # ticks are named in Hz; no "(x0.001)"
        self.spec_plot.setMouseEnabled(x=False, y=False)
        self.spec_plot.setMenuEnabled(False)
        self.spec_plot.setXLink(self.wave_plot)
        self.spec = pg.ImageItem(axisOrder="row-major")
        self.spec.setLookupTable(pg.colormap.get("viridis").getLookupTable(nPts=256))
        self.spec_plot.addItem(self.spec)
        n_mels = int(self.params.get("n_mels", 40))
        self.spec_plot.getAxis("left").setTicks(
            [_mel_ticks(n_mels, float(self.params.get("f_min", 20.0)),
                        float(self.params.get("f_max", self.params.get("sample_rate", 8000) / 2)))]
        )
        for plot in (self.wave_plot, self.spec_plot):
            plot.getAxis("left").setWidth(48)  # aligned time axes
        layout.addWidget(self.wave_plot, 2)
        layout.addWidget(self.spec_plot, 3)
        # Where playback is: one line across the waveform and the spectrogram, hidden when idle.
        self.play_markers = []
        for plot in (self.wave_plot, self.spec_plot):
            marker = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#D81B60", width=2))
            marker.setVisible(False)
            marker.setZValue(10)
            plot.addItem(marker, ignoreBounds=True)
            self.play_markers.append(marker)
        self.apply_palette()

    def set_play_position(self, seconds: float | None) -> None:
        """Move the playback marker to `seconds`; None hides it."""
        for marker in self.play_markers:
            marker.setVisible(seconds is not None)
            if seconds is not None:
                marker.setValue(float(seconds))

    def play_position(self) -> float | None:
        marker = self.play_markers[0]
        return float(marker.value()) if marker.isVisible() else None

    def apply_palette(self) -> None:
        for plot in (self.wave_plot, self.spec_plot):
            style.style_plot(plot)

    def show_raw(self, raw):
        if raw is None:
            self.wave_curve.setData([], [])
            self.spec.clear()
            return
        x = np.asarray(raw, dtype=np.float32).reshape(-1)
        sr = int(self.params.get("sample_rate", 8000))
        t = np.arange(x.size, dtype=np.float32) / sr
        self.wave_curve.setData(t, x)
        mel = log_mel(x, {**AudioModality.default_params(), **self.params})
        floor = float(np.log(float(self.params.get("log_floor", 1e-5))))
        hi = max(float(mel.max()), floor + 1.0)
        # Fixed-ish levels: silence shows as dark, not as rescaled noise.
        self.spec.setImage(mel, levels=(max(floor, hi - 14.0), hi), autoLevels=False)
        seconds = x.size / sr if x.size else 1.0 / sr
        self.spec.setRect(0.0, 0.0, seconds, mel.shape[0])
        self.wave_plot.setXRange(0, seconds, padding=0)
        self.spec_plot.setYRange(0, mel.shape[0], padding=0)


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
