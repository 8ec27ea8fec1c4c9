"""The charts: per-modality quality and fusion share, class probabilities, severity sweeps.

Bars are `BarGraphItem`s created once per model and updated with `setOpts` (no re-creation per
prediction), with the numbers drawn on them as `TextItem`s; category names are axis ticks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

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
    "severity range (0–10) while the others stay clean. Solid: that input's quality score. "
    "Dashed: the fused prediction's probability (confidence) at that severity."
)


LEGEND_ROOM_PX = 56  # the legend's row plus a bar's number: kept clear above the tallest bar


class _Chart(pg.PlotWidget):
    def __init__(self, title: str, tooltip: str, parent=None):
        super().__init__(parent)
        self.setTitle(title)
        self.setToolTip(tooltip)
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.setMinimumHeight(170)
        self.legend = self.addLegend(offset=(-4, 4), labelTextSize="8pt")
        self._texts: list[pg.TextItem] = []
        self._y_request: tuple[float, float] | None = None
        self.apply_palette()

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

    def _set_texts(self, specs: list[tuple[float, float, str]]) -> None:
        """Numbers on bars: (x, y, text); text items are reused."""
        while len(self._texts) < len(specs):
            t = pg.TextItem("", color=style.text_colour(), anchor=(0.5, 1.0))
            self.addItem(t)
            self._texts.append(t)
        for t, (x, y, text) in zip(self._texts, specs, strict=False):
            t.setText(text)
            t.setPos(x, y)
            t.setVisible(True)
        for t in self._texts[len(specs):]:
            t.setVisible(False)

    def text_values(self) -> list[str]:
        return [t.textItem.toPlainText() for t in self._texts if t.isVisible()]


class QualityChart(_Chart):
    """Two bars per modality: its quality score and its share of the fusion weight."""

    def __init__(self, parent=None):
        super().__init__("Quality and share of the fusion weight", QUALITY_TOOLTIP, parent)
        self.names: list[str] = []
        self.quality_bars = pg.BarGraphItem(x=[], height=[], width=0.36, brush=style.QUALITY)
        self.share_bars = pg.BarGraphItem(x=[], height=[], width=0.36, brush=style.SHARE)
        self.addItem(self.quality_bars)
        self.addItem(self.share_bars)
        self.legend.addItem(self.quality_bars, "quality −E/10")
        self.legend.addItem(self.share_bars, "share")
        self.legend.setColumnCount(2)  # one row along the top, clear of the bars' numbers
        self.showGrid(y=True, alpha=0.2)
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
        self.set_y_range_below_legend(0.0, 1.0)

    def set_values(self, quality: dict[str, float], share: dict[str, float]) -> None:
        x = np.arange(len(self.names), dtype=float)
        q = np.array([quality.get(n, 0.0) for n in self.names], dtype=float)
        s = np.array([share.get(n, 0.0) for n in self.names], dtype=float)
        self.quality_bars.setOpts(x=x - 0.19, height=q)
        self.share_bars.setOpts(x=x + 0.19, height=s)
        bottom = min(0.0, float(np.min(q, initial=0.0)) * 1.18)
        self.set_y_range_below_legend(bottom, max(1.0, float(np.max(q, initial=0.0))))
        specs = [(xi - 0.19, max(qi, 0.0), f"{qi:.3f}") for xi, qi in zip(x, q, strict=True)]
        specs += [(xi + 0.19, si, f"{si:.0%}") for xi, si in zip(x, s, strict=True)]
        self._set_texts(specs)

    def bar_heights(self) -> dict[str, dict[str, float]]:
        """What the bars show, by modality (for tests and export)."""
        q = self.quality_bars.opts["height"]
        s = self.share_bars.opts["height"]
        return {n: {"quality": float(q[i]), "share": float(s[i])} for i, n in enumerate(self.names)}


class ProbabilityChart(_Chart):
    """Per class: each modality's probability and the fused one, side by side."""

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


class SweepPlot(_Chart):
    """Quality (solid) and fused confidence (dashed) against severity, one colour per modality."""

    def __init__(self, parent=None):
        super().__init__("Severity sweep", SWEEP_TOOLTIP, parent)
        self.setLabel("bottom", "severity (0–10)")
        self.setLabel("left", "score")
        self.showGrid(x=True, y=True, alpha=0.2)
        self.curves: dict[str, tuple[pg.PlotDataItem, pg.PlotDataItem]] = {}
        self.legend.setColumnCount(2)
        self.setXRange(0, 10, padding=0.02)
        self.setYRange(0, 1.05, padding=0)
        self.key_html = ""

    def set_modalities(self, names: list[str]) -> None:
        for quality, confidence in self.curves.values():
            self.removeItem(quality)
            self.removeItem(confidence)
        self.legend.clear()
        self.legend.setVisible(False)  # the key is in the title: a legend box would cover the curves
        self.curves = {}
        keys = []
        for i, name in enumerate(names):
            colour = style.series_colour(i)
            q = self.plot([], [], pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=5, symbolBrush=colour)
            c = self.plot([], [], pen=pg.mkPen(colour, width=2, style=Qt.PenStyle.DashLine))
            self.curves[name] = (q, c)
            keys.append(f"<span style='color:{colour}'>━ {name} quality &nbsp;╍ fused confidence</span>")
        self.key_html = " &nbsp; ".join(keys)
        self.setTitle(f"Severity sweep (one input degraded at a time): {self.key_html}", size="9pt")
        self.apply_palette()

    def clear_values(self) -> None:
        for q, c in self.curves.values():
            q.setData([], [])
            c.setData([], [])

    def set_sweep(self, result: dict[str, Any]) -> None:
        levels = np.asarray(result["levels"], dtype=float)
        top = 1.0
        for name, data in result["modalities"].items():
            if name not in self.curves:
                continue
            q, c = self.curves[name]
            q.setData(levels, np.asarray(data["quality"], dtype=float))
            c.setData(levels, np.asarray(data["confidence"], dtype=float))
            top = max(top, float(np.max(data["quality"], initial=0.0)))
        self.setYRange(0, top * 1.05, padding=0)
