"""The charts: per-modality quality and fusion share, class probabilities, severity sweeps.

Bars are `BarGraphItem`s created once per model and updated with `setOpts` (no re-creation per
prediction), with the numbers drawn on them as `TextItem`s; category names are axis ticks.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QAction, QColor, QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QApplication, QFileDialog, QMenu

from app.gui import style

pg.setConfigOptions(antialias=True)

QUALITY_TOOLTIP = (
    "<b>Quality</b> is QMF's confidence score for one input: w = −E/10, where the energy "
    "E = −logsumexp(logits) is read off that input's own classifier. Higher means the model is surer "
    "of this input; a noisy, blank or unfamiliar input gets a low score.<br><br>"
    "<b>Share</b> is w divided by the sum over all inputs (negative scores count as 0): the part of "
    "the fused decision that this input contributes."
)
PROBABILITY_TOOLTIP = (
    "Class probabilities of each input's own classifier (softmax of its logits) next to the fused "
    "prediction, whose logits are the quality-weighted sum of the inputs' logits."
)
SWEEP_TOOLTIP = (
    "For the current pair, each input in turn is degraded with its chosen corruption over the whole "
    "severity range (0–10) while the others stay clean. Top: that input's quality score. Bottom: the "
    "fused prediction's probability (confidence) at that severity. The vertical lines mark each "
    "input's current level. Drag to pan, wheel to zoom; right-click to copy, export or reset."
)
RANGE_STEP = 0.5  # the quality chart's y-range moves in these steps, and only outwards, for one pair


LEGEND_ROOM_PX = 56  # the legend's row plus a bar's number: kept clear above the tallest bar


class _Chart(pg.PlotWidget):
    """A chart with a value under the mouse (`hover_text`), and a context menu: copy to the
    clipboard, save as SVG or PNG, and, where zooming is on, reset the view."""

    zoomable = False
    default_name = "chart"

    def __init__(self, title: str, tooltip: str, parent=None, minimum_height: int = 170):
        super().__init__(parent, enableMenu=False)  # our chart_menu instead; pyqtgraph's costs ~12 ms to build
        self.setTitle(title)
        self.setToolTip(tooltip)
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=self.zoomable, y=self.zoomable)
        self.hideButtons()
        self.setMinimumHeight(minimum_height)
        self.legend = self.addLegend(offset=(-4, 4), labelTextSize="8pt")
        self._texts: list[pg.TextItem] = []
        self._y_request: tuple[float, float] | None = None
        self.hover_label = pg.TextItem("", anchor=(0, 1), color=style.text_colour(), fill=pg.mkBrush(0, 0, 0, 0))
        self.hover_label.setZValue(100)
        self.hover_label.setVisible(False)
        self.addItem(self.hover_label, ignoreBounds=True)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.apply_palette()

    # --- hover ---------------------------------------------------------------------------------------
    def hover_text(self, x: float, y: float) -> str | None:
        """The values at data point (x, y), as one short line; None: nothing there."""
        return None

    def _on_mouse_moved(self, scene_pos) -> None:
        box = self.getViewBox()
        if not box.sceneBoundingRect().contains(scene_pos):
            self.hover_label.setVisible(False)
            return
        point = box.mapSceneToView(scene_pos)
        text = self.hover_text(point.x(), point.y())
        if not text:
            self.hover_label.setVisible(False)
            return
        self.hover_label.setText(text)
        (x0, x1), (y0, y1) = box.viewRange()
        # keep the label inside the plot: to the left of the pointer on the right half
        self.hover_label.setAnchor((1, 1) if point.x() > (x0 + x1) / 2 else (0, 1))
        self.hover_label.setPos(point.x(), min(max(point.y(), y0 + 0.12 * (y1 - y0)), y1))
        self.hover_label.setVisible(True)

    # --- context menu: copy, export, reset ----------------------------------------------------------------
    def chart_menu(self) -> QMenu:
        menu = QMenu(self)
        menu.addAction(QAction("&Copy chart", menu, triggered=self.copy_to_clipboard))
        menu.addAction(QAction("Save as &SVG…", menu, triggered=lambda: self._save_dialog("svg")))
        menu.addAction(QAction("Save as &PNG…", menu, triggered=lambda: self._save_dialog("png")))
        if self.zoomable:
            menu.addSeparator()
            menu.addAction(QAction("&Reset zoom", menu, triggered=self.reset_view))
        return menu

    def contextMenuEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.chart_menu().exec(event.globalPos())
        event.accept()

    def copy_to_clipboard(self) -> None:
        QApplication.clipboard().setImage(self.grab().toImage())

    def export_svg(self, path: str | Path) -> bool:
        """The chart as vectors (Qt's SVG generator: pyqtgraph's own exporter fails on this Qt's paths)."""
        generator = QSvgGenerator()
        generator.setFileName(str(path))
        generator.setSize(self.size())
        generator.setViewBox(self.rect())
        generator.setTitle(self.getPlotItem().titleLabel.text or self.default_name)
        painter = QPainter()
        if not painter.begin(generator):
            return False
        self.render(painter)
        return painter.end()

    def export_png(self, path: str | Path) -> bool:
        return self.grab().save(str(path))

    def _save_dialog(self, kind: str) -> None:
        path, _ = QFileDialog.getSaveFileName(self, f"Save chart as {kind.upper()}", f"{self.default_name}.{kind}",
                                              f"{kind.upper()} files (*.{kind})")
        if path:
            self.export_svg(path) if kind == "svg" else self.export_png(path)

    def reset_view(self) -> None:
        """Back to the whole data range (after zooming or panning)."""

    def set_y_range_below_legend(self, bottom: float, data_top: float) -> None:
        """Show [bottom, data_top] with LEGEND_ROOM_PX of the plot's height left free above data_top.

        The legend and the numbers on the bars have a fixed size in pixels, so a fixed fraction of
        headroom is too little on a short chart (the review tab's) and too much on a tall one. The
        range is worked out again whenever the chart is resized.
        """
        self._y_request = (bottom, data_top)
        height = self.getViewBox().height()
        room = LEGEND_ROOM_PX / height if height > 2.5 * LEGEND_ROOM_PX else 0.4
        top = (data_top - room * bottom) / (1.0 - room)
        self.setYRange(bottom, max(top, data_top * 1.05), padding=0)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        request = self.__dict__.get("_y_request")  # pyqtgraph resizes once inside __init__, before it is set
        if request is not None:
            self.set_y_range_below_legend(*request)

    def apply_palette(self) -> None:
        style.style_plot(self)
        if self.legend is not None:
            self.legend.setLabelTextColor(style.text_colour())
            for _, label in self.legend.items:
                label.setText(label.text, color=style.text_colour())
        for t in self._texts:
            t.setColor(style.text_colour())
        hover = self.__dict__.get("hover_label")  # palette events can arrive inside __init__
        if hover is not None:
            hover.setColor(style.text_colour())
            hover.fill = pg.mkBrush(style.plot_background())

    def _set_texts(self, specs: list[tuple[float, float, str]]) -> None:
        """Numbers on bars: (x, y, text); text items are reused."""
        while len(self._texts) < len(specs):
            t = pg.TextItem("", color=style.text_colour(), anchor=(0.5, 1.0))
            self.addItem(t)
            self._texts.append(t)
        for t, (x, y, text) in zip(self._texts, specs, strict=False):
            # each change re-lays out the item's text and moves it in the scene: skip what is the same
            if t.textItem.toPlainText() != text:
                t.setText(text)
            if (t.pos().x(), t.pos().y()) != (x, y):
                t.setPos(x, y)
            if not t.isVisible():
                t.setVisible(True)
        for t in self._texts[len(specs):]:
            if t.isVisible():
                t.setVisible(False)

    def text_values(self) -> list[str]:
        return [t.textItem.toPlainText() for t in self._texts if t.isVisible()]


class QualityChart(_Chart):
    """Two bars per modality: its quality score and its share of the fusion weight."""

    default_name = "quality"

    def __init__(self, parent=None):
        # A short title: the title sets the plot's minimum width, and a narrower chart (at 2× scale,
        # in the Review detail pane) is clipped, not shrunk. The tooltip says what the bars are.
        super().__init__("Quality and share", QUALITY_TOOLTIP, parent)
        self.names: list[str] = []
        self._range_key: object = None
        self._range: tuple[float, float] = (0.0, 1.0)
        self.quality_bars = pg.BarGraphItem(x=[], height=[], width=0.36, brush=style.QUALITY)
        self.share_bars = pg.BarGraphItem(x=[], height=[], width=0.36, brush=style.SHARE)
        self.addItem(self.quality_bars)
        self.addItem(self.share_bars)
        self.legend.addItem(self.quality_bars, "quality −E/10")
        self.legend.addItem(self.share_bars, "share")
        self.legend.setColumnCount(2)  # one row along the top, clear of the bars' numbers
        # The grid as lines of their own, not pyqtgraph's showGrid: that one is drawn by the left axis
        # across the plot, so every change of the bars repainted the axis with its text (~8 ms a frame).
        self._grid: list[pg.InfiniteLine] = []
        self.apply_palette()

    def set_modalities(self, names: list[str]) -> None:
        self.names = list(names)
        self.getAxis("bottom").setTicks([[(i, n) for i, n in enumerate(self.names)]])
        self.clear_values()

    def clear_values(self) -> None:
        x = np.arange(len(self.names), dtype=float)
        self.quality_bars.setOpts(x=x - 0.19, height=np.zeros(len(x)))
        self.share_bars.setOpts(x=x + 0.19, height=np.zeros(len(x)))
        self._set_texts([])
        self.setXRange(-0.6, max(len(self.names), 1) - 0.4, padding=0)
        self._range_key, self._range = None, (0.0, 1.0)
        self.set_y_range_below_legend(0.0, 1.0)
        self._set_grid(0.0, 1.0)

    def set_values(self, quality: dict[str, float], share: dict[str, float], range_key: object = None) -> None:
        """Show one prediction's bars. For the same `range_key` (the same pair of files) the y-range
        only grows, in RANGE_STEP steps: dragging a slider does not make the axis jump."""
        x = np.arange(len(self.names), dtype=float)
        q = np.array([quality.get(n, 0.0) for n in self.names], dtype=float)
        s = np.array([share.get(n, 0.0) for n in self.names], dtype=float)
        self.quality_bars.setOpts(x=x - 0.19, height=q)
        self.share_bars.setOpts(x=x + 0.19, height=s)
        bottom = min(0.0, math.floor(float(np.min(q, initial=0.0)) * 1.18 / RANGE_STEP) * RANGE_STEP)
        top = max(1.0, math.ceil(float(np.max(q, initial=0.0)) / RANGE_STEP) * RANGE_STEP)
        if range_key is not None and range_key == self._range_key:
            bottom, top = min(bottom, self._range[0]), max(top, self._range[1])
        self._range_key, self._range = range_key, (bottom, top)
        self.set_y_range_below_legend(bottom, top)
        self._set_grid(bottom, top)
        specs = [(xi - 0.19, max(qi, 0.0), f"{qi:.3f}") for xi, qi in zip(x, q, strict=True)]
        specs += [(xi + 0.19, si, f"{si:.0%}") for xi, si in zip(x, s, strict=True)]
        self._set_texts(specs)

    def _set_grid(self, bottom: float, top: float) -> None:
        """Faint horizontal lines every RANGE_STEP over the y-range (the range moves in those steps)."""
        levels = [bottom + i * RANGE_STEP for i in range(int(round((top - bottom) / RANGE_STEP)) + 1)]
        while len(self._grid) < len(levels):
            line = pg.InfiniteLine(angle=0, movable=False, pen=self._grid_pen())
            line.setZValue(-10)  # under the bars
            self.addItem(line, ignoreBounds=True)
            self._grid.append(line)
        for line, level in zip(self._grid, levels, strict=False):
            if line.value() != level:
                line.setValue(level)
            line.setVisible(True)
        for line in self._grid[len(levels):]:
            line.setVisible(False)

    def _grid_pen(self):
        colour = QColor(style.text_colour())
        colour.setAlphaF(0.2)
        return pg.mkPen(colour, width=1)

    def apply_palette(self) -> None:
        super().apply_palette()
        for line in self.__dict__.get("_grid", []):  # palette events can arrive inside __init__
            line.setPen(self._grid_pen())

    def hover_text(self, x: float, y: float) -> str | None:
        i = int(round(x))
        if not 0 <= i < len(self.names) or abs(x - i) > 0.45:
            return None
        v = self.bar_heights()[self.names[i]]
        return f"{self.names[i]}: quality {v['quality']:.3f}, share {v['share']:.1%}"

    def bar_heights(self) -> dict[str, dict[str, float]]:
        """What the bars show, by modality (for tests and export)."""
        q = self.quality_bars.opts["height"]
        s = self.share_bars.opts["height"]
        return {n: {"quality": float(q[i]), "share": float(s[i])} for i, n in enumerate(self.names)}


class ProbabilityChart(_Chart):
    """Per class: each modality's probability and the fused one, side by side."""

    default_name = "probabilities"

    def __init__(self, parent=None):
        super().__init__("Class probabilities", PROBABILITY_TOOLTIP, parent)
        self.labels: list[str] = []
        self.names: list[str] = []
        self.bars: dict[str, pg.BarGraphItem] = {}
        self.set_y_range_below_legend(0.0, 1.0)

    def set_modalities(self, names: list[str], labels: list[str]) -> None:
        for bar in self.bars.values():
            self.removeItem(bar)
        self.legend.clear()
        self.names, self.labels = list(names), list(labels)
        series = [*self.names, "fused"]
        width = 0.8 / len(series)
        self.bars = {}
        for i, name in enumerate(series):
            colour = style.fused_colour() if name == "fused" else style.series_colour(i)
            bar = pg.BarGraphItem(x=[], height=[], width=width, brush=colour, pen=pg.mkPen(None))
            self.addItem(bar)
            self.legend.addItem(bar, name)
            self.bars[name] = bar
        self.legend.setColumnCount(len(series))  # one row along the top, clear of the bars' numbers
        self.getAxis("bottom").setTicks([[(i, str(lb)) for i, lb in enumerate(self.labels)]])
        self.setXRange(-0.6, max(len(self.labels), 1) - 0.4, padding=0)
        self.clear_values()
        self.apply_palette()

    def _offsets(self) -> dict[str, float]:
        series = list(self.bars)
        width = 0.8 / max(len(series), 1)
        return {n: (i - (len(series) - 1) / 2) * width for i, n in enumerate(series)}

    def clear_values(self) -> None:
        x = np.arange(len(self.labels), dtype=float)
        for name, off in self._offsets().items():
            self.bars[name].setOpts(x=x + off, height=np.zeros(len(x)))
        self._set_texts([])

    def set_values(self, per_modality: dict[str, list[float]], fused: list[float]) -> None:
        x = np.arange(len(self.labels), dtype=float)
        offsets = self._offsets()
        for name in self.names:
            p = np.asarray(per_modality.get(name, np.zeros(len(x))), dtype=float)
            self.bars[name].setOpts(x=x + offsets[name], height=p)
        f = np.asarray(fused, dtype=float)
        self.bars["fused"].setOpts(x=x + offsets["fused"], height=f)
        self._set_texts([(xi + offsets["fused"], fi, f"{fi:.2f}") for xi, fi in zip(x, f, strict=True) if fi >= 0.05])

    def hover_text(self, x: float, y: float) -> str | None:
        i = int(round(x))
        if not 0 <= i < len(self.labels) or abs(x - i) > 0.45:
            return None
        parts = []
        for name, bar in self.bars.items():
            heights = bar.opts.get("height")
            if heights is not None and len(heights) > i:
                parts.append(f"{name} {float(heights[i]):.3f}")
        return f"class {self.labels[i]}: " + " · ".join(parts) if parts else None
