"""Colours and plot styling that follow the system's light or dark palette.

pyqtgraph draws on black by default; here plots take the window's base colour and text colour from
the application palette, and `apply_palette` is called again when the palette changes.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtGui import QColor, QPalette, QPixmap
from PySide6.QtWidgets import QApplication, QWidget

# Colour-blind-safe series colours (Okabe–Ito); the last one is for "fused".
SERIES = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442"]
FUSED = "#555555"
QUALITY = "#0072B2"
SHARE = "#E69F00"
UNFAMILIAR = "#c0392b"  # the unfamiliar mark: the detail line, the numbers table, the quality chart


def series_colour(i: int) -> str:
    return SERIES[i % len(SERIES)]


def _palette() -> QPalette:
    app = QApplication.instance()
    return app.palette() if app is not None else QPalette()


def is_dark() -> bool:
    return _palette().color(QPalette.ColorRole.Window).lightness() < 128


def plot_background() -> QColor:
    return _palette().color(QPalette.ColorRole.Base)


def text_colour() -> QColor:
    return _palette().color(QPalette.ColorRole.Text)


def widget_pixmap(widget: QWidget, background: QColor) -> QPixmap:
    """A pixmap, filled with `background`, that covers every device pixel of `widget` at its device pixel ratio:
    what the opaque painted widgets (the result charts, the input previews) draw into and blit.

    Its size is rounded up, not to the nearest pixel: at a fractional ratio (125 % display scaling) a rounded
    size falls a device row or column short of the widget, and an opaque widget (WA_OpaquePaintEvent) leaves
    that strip unpainted, showing whatever the window held there before (a sliver of the numbers table's
    header under the charts)."""
    ratio = widget.devicePixelRatioF()
    pixmap = QPixmap(max(1, math.ceil(widget.width() * ratio - 1e-9)), max(1, math.ceil(widget.height() * ratio - 1e-9)))
    pixmap.setDevicePixelRatio(ratio)
    pixmap.fill(background)
    return pixmap


def fused_colour() -> str:
    return "#BBBBBB" if is_dark() else FUSED


def style_plot(plot: Any) -> None:
    """Background, axis and label colours from the palette."""
    import pyqtgraph as pg  # here: the painted charts and previews use this module without pyqtgraph

    plot.setBackground(plot_background())
    fg = text_colour()
    item = plot.getPlotItem()
    for name in ("left", "bottom", "right", "top"):
        axis = item.getAxis(name)
        axis.setPen(pg.mkPen(fg))
        axis.setTextPen(pg.mkPen(fg))
    item.titleLabel.setAttr("color", fg.name())
    if item.titleLabel.text:
        item.titleLabel.setText(item.titleLabel.text)
