"""The degradation sweep's chart: each input's quality and the fused confidence over severity 0-10.

Two pyqtgraph plots (they pan and zoom, unlike the painted result charts of app/gui/charts.py), with
the same context menu as those (`ChartActions`: copy, SVG, PNG, and here reset zoom).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QVBoxLayout, QWidget

from app.gui import style
from app.gui.charts import ChartActions

pg.setConfigOptions(antialias=True)

SWEEP_TOOLTIP = (
    "For the current pair, each input in turn is degraded with its chosen corruption over the whole "
    "severity range (0–10) while the others stay clean. Top: that input's quality score. Bottom: the "
    "fused prediction's probability (confidence) at that severity. The vertical lines mark each "
    "input's current level. Drag to pan, wheel to zoom; right-click to copy, export or reset."
)


class _Chart(ChartActions, pg.PlotWidget):
    """A pyqtgraph plot with a value under the mouse (`hover_text`) and the charts' context menu."""

    def __init__(self, title: str, tooltip: str, parent=None, minimum_height: int = 170):
        super().__init__(parent, enableMenu=False)  # our chart_menu instead; pyqtgraph's costs ~12 ms to build
        self.setTitle(title)
        self.setToolTip(tooltip)
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=self.zoomable, y=self.zoomable)
        self.hideButtons()
        self.setMinimumHeight(minimum_height)
        self.legend = self.addLegend(offset=(-4, 4), labelTextSize="8pt")
        self.hover_label = pg.TextItem("", anchor=(0, 1), color=style.text_colour(), fill=pg.mkBrush(0, 0, 0, 0))
        self.hover_label.setZValue(100)
        self.hover_label.setVisible(False)
        self.addItem(self.hover_label, ignoreBounds=True)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.apply_palette()

    def chart_title(self) -> str:
        return self.getPlotItem().titleLabel.text or self.default_name

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

    def apply_palette(self) -> None:
        style.style_plot(self)
        if self.legend is not None:
            self.legend.setLabelTextColor(style.text_colour())
            for _, label in self.legend.items:
                label.setText(label.text, color=style.text_colour())
        hover = self.__dict__.get("hover_label")  # palette events can arrive inside __init__
        if hover is not None:
            hover.setColor(style.text_colour())
            hover.fill = pg.mkBrush(style.plot_background())


class _SweepPanel(_Chart):
    zoomable = True
    default_name = "sweep"

    def __init__(self, title: str, y_label: str, owner: SweepPlot):
        super().__init__(title, SWEEP_TOOLTIP, minimum_height=110)
        self._owner = owner
        self.setLabel("left", y_label)
        self.showGrid(x=True, y=True, alpha=0.2)
        self.setXRange(0, 10, padding=0.02)
        self.getViewBox().setLimits(xMin=-0.5, xMax=10.5)

    def hover_text(self, x: float, y: float) -> str | None:
        return self._owner.hover_text(x, self)

    def reset_view(self) -> None:
        self._owner.reset_view()


class SweepPlot(QWidget):
    """The severity sweep in two panels sharing the severity axis: each input's quality (top) and the
    fused confidence when that input is degraded (bottom); one colour per input, a legend in each,
    and a vertical line at each input's current level."""

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.quality_plot = _SweepPanel("Quality of the degraded input", "quality −E/10", self)
        self.confidence_plot = _SweepPanel("Fused confidence with that input degraded", "probability", self)
        self.confidence_plot.setLabel("bottom", "severity (0–10)")
        self.confidence_plot.setXLink(self.quality_plot)
        for panel in self.panels():
            panel.getAxis("left").setWidth(48)  # aligned severity axes
            layout.addWidget(panel, 1)
        self.setToolTip(SWEEP_TOOLTIP)
        self.curves: dict[str, tuple[pg.PlotDataItem, pg.PlotDataItem]] = {}
        self.level_lines: dict[str, tuple[pg.InfiniteLine, pg.InfiniteLine]] = {}
        self.sweep: dict[str, Any] | None = None
        self.reset_view()

    def panels(self) -> tuple[_SweepPanel, _SweepPanel]:
        return self.quality_plot, self.confidence_plot

    def set_modalities(self, names: list[str]) -> None:
        for name in list(self.curves):
            for panel, item in zip(self.panels(), self.curves[name], strict=True):
                panel.removeItem(item)
            for panel, line in zip(self.panels(), self.level_lines[name], strict=True):
                panel.removeItem(line)
        for panel in self.panels():
            panel.legend.clear()
        self.curves, self.level_lines = {}, {}
        for i, name in enumerate(names):
            colour = style.series_colour(i)
            q = self.quality_plot.plot([], [], pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=5,
                                       symbolBrush=colour, name=f"{name}")
            c = self.confidence_plot.plot([], [], pen=pg.mkPen(colour, width=2), symbol="t", symbolSize=6,
                                          symbolBrush=colour, name=f"{name} degraded")
            self.curves[name] = (q, c)
            lines = []
            for panel in self.panels():
                line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine))
                line.setVisible(False)
                panel.addItem(line, ignoreBounds=True)
                lines.append(line)
            self.level_lines[name] = (lines[0], lines[1])
        for panel in self.panels():
            panel.legend.setColumnCount(max(len(names), 1))
        self.sweep = None
        self.apply_palette()

    def clear_values(self) -> None:
        """No curves (a new pair: the previous pair's sweep no longer applies)."""
        for q, c in self.curves.values():
            q.setData([], [])
            c.setData([], [])
        self.sweep = None

    def has_curves(self) -> bool:
        return any(len(q.getData()[0] or []) for q, _ in self.curves.values())

    def set_sweep(self, result: dict[str, Any]) -> None:
        self.sweep = result
        levels = np.asarray(result["levels"], dtype=float)
        for name, data in result["modalities"].items():
            if name not in self.curves:
                continue
            q, c = self.curves[name]
            q.setData(levels, np.asarray(data["quality"], dtype=float))
            c.setData(levels, np.asarray(data["confidence"], dtype=float))
        self.reset_view()

    def set_current_levels(self, levels: dict[str, float]) -> None:
        """Mark each input's current severity (a line in its colour in both panels)."""
        for name, lines in self.level_lines.items():
            level = levels.get(name)
            for line in lines:
                line.setVisible(level is not None)
                if level is not None:
                    line.setValue(float(level))

    def current_levels(self) -> dict[str, float]:
        return {n: float(lines[0].value()) for n, lines in self.level_lines.items() if lines[0].isVisible()}

    def reset_view(self) -> None:
        self.quality_plot.setXRange(0, 10, padding=0.02)
        top = 1.0
        if self.sweep:
            top = max([top] + [float(np.max(d["quality"], initial=0.0)) for d in self.sweep["modalities"].values()])
        self.quality_plot.setYRange(0, top * 1.15, padding=0)
        self.confidence_plot.setYRange(0, 1.15, padding=0)

    def hover_text(self, x: float, panel: _SweepPanel) -> str | None:
        if not self.sweep:
            return None
        levels = list(self.sweep["levels"])
        i = int(np.argmin([abs(x - lv) for lv in levels]))
        key = "quality" if panel is self.quality_plot else "confidence"
        parts = [f"{n} {d[key][i]:.3f}" for n, d in self.sweep["modalities"].items() if n in self.curves]
        what = "quality" if key == "quality" else "fused confidence with"
        return f"severity {levels[i]:g}: {what} " + " · ".join(parts)

    def apply_palette(self) -> None:
        for panel in self.panels():
            panel.apply_palette()
            background = style.plot_background()
            background.setAlpha(215)  # the legend stays readable over a curve and the curve shows through
            panel.legend.setBrush(pg.mkBrush(background))
