"""The result charts: each input's quality score and fusion share, and the class probabilities.

Painted with QPainter into one cached pixmap each, as the input previews are (app/gui/previews.py),
not as pyqtgraph plots: a plot is a scene with a view box, axes, a legend and a text item per number,
and a Review click spent 10-20 ms of GUI-thread time laying out and painting the two of them (the
scene's queued update also repainted the window a second time in the same turn). Here new values
re-render the pixmap once (about a millisecond), and any other repaint, a sibling's or the parent's,
is a blit. What the plots offered is kept: a title, a legend row, a value axis with faint grid lines,
category names, the numbers on the bars, the values under the mouse (`hover_text`), a context menu
(copy, SVG, PNG). The quality chart also marks an input the model file's calibration calls
unfamiliar: "unfamiliar" under its name and its numbers in the detail line's red.

The degradation sweep's chart (app/gui/sweep_chart.py) stays a pyqtgraph plot: it pans and zooms.
The painting base class is `BarChart` (app/gui/bar_chart.py), the context menu `ChartActions`
(app/gui/chart_actions.py); both are re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QWidget

from app.gui import style
from app.gui.bar_chart import (  # noqa: F401 - re-exported: their import path before the split
    MARGIN,
    SMALL_FONT,
    TITLE_FONT,
    UNFAMILIAR_TEXT,
    BarChart,
    _Layout,
    mixed,
    nice_step,
    tick_text,
)
from app.gui.chart_actions import ChartActions  # noqa: F401 - re-exported (app/gui/sweep_chart.py)

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
RANGE_STEP = 0.5  # the quality chart's y-range moves in these steps, and only outwards, for one pair


def __getattr__(name: str) -> Any:
    """The sweep chart's pieces lived here; they import pyqtgraph, so only on request."""
    if name in ("SWEEP_TOOLTIP", "_Chart"):
        from app.gui import sweep_chart

        return getattr(sweep_chart, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _numbers(values: Sequence[float], n: int) -> np.ndarray:
    """`values` as n floats; missing entries and ones that are not numbers are NaN (no bar)."""
    out = np.full(n, np.nan)
    for i, v in enumerate(list(values)[:n]):
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            pass
    return out


def _share_text(value: float) -> str:
    return f"{value:.0%}"


class QualityChart(BarChart):
    """Two bars per modality: its quality score and its share of the fusion weight."""

    default_name = "quality"
    mark_rows = 1
    group_width = 0.76

    def __init__(self, parent: QWidget | None = None):
        # A short title: the chart's room is half the detail pane's width in the Review tab.
        super().__init__("Quality and share", QUALITY_TOOLTIP, parent)
        self.names: list[str] = []
        self.series = [("quality −E/10", QColor(style.QUALITY)), ("share", QColor(style.SHARE))]
        self.values = np.zeros((2, 0))
        self.y_base_step = RANGE_STEP
        self._range_key: object = None

    def set_modalities(self, names: list[str]) -> None:
        self.names = list(names)
        self.categories = list(self.names)
        self.clear_values()

    def clear_values(self) -> None:
        self.values = np.zeros((2, len(self.names)))
        self.marked = frozenset()
        self._range_key, self.y_range = None, (0.0, 1.0)
        self._changed()

    def set_values(self, quality: dict[str, float], share: dict[str, float], range_key: object = None,
                   unfamiliar: Sequence[str] = ()) -> None:
        """Show one prediction's bars; `unfamiliar` names the inputs to mark. For the same `range_key`
        (the same pair of files) the y-range only grows, in RANGE_STEP steps: dragging a slider does
        not make the axis jump."""
        q = np.array([_numbers([quality.get(n)], 1)[0] for n in self.names])
        s = np.array([_numbers([share.get(n)], 1)[0] for n in self.names])
        self.values = np.vstack([q, s]) if self.names else np.zeros((2, 0))
        finite = q[np.isfinite(q)]
        bottom = min(0.0, math.floor(float(np.min(finite, initial=0.0)) * 1.18 / RANGE_STEP) * RANGE_STEP)
        top = max(1.0, math.ceil(float(np.max(finite, initial=0.0)) / RANGE_STEP) * RANGE_STEP)
        if range_key is not None and range_key == self._range_key:
            bottom, top = min(bottom, self.y_range[0]), max(top, self.y_range[1])
        self._range_key, self.y_range = range_key, (bottom, top)
        self.marked = frozenset(i for i, n in enumerate(self.names) if n in set(unfamiliar))
        self._changed()

    def _number_specs(self) -> list[tuple[int, int, str]]:
        specs = []
        for c in range(len(self.names)):
            q, s = self.values[0, c], self.values[1, c]
            if math.isfinite(q):
                specs.append((0, c, f"{q:.3f}"))
            if math.isfinite(s):
                specs.append((1, c, _share_text(s)))
        return specs

    def hover_text(self, x: float, y: float) -> str | None:
        i = self._category_at(x)
        if i is None:
            return None
        v = self.bar_heights()[self.names[i]]
        quality = "n/a" if not math.isfinite(v["quality"]) else f"{v['quality']:.3f}"
        share = "n/a" if not math.isfinite(v["share"]) else f"{v['share']:.1%}"
        mark = f" ({UNFAMILIAR_TEXT})" if i in self.marked else ""
        return f"{self.names[i]}: quality {quality}, share {share}{mark}"

    def bar_heights(self) -> dict[str, dict[str, float]]:
        """What the bars show, by modality (for tests and export)."""
        return {n: {"quality": float(self.values[0, i]), "share": float(self.values[1, i])}
                for i, n in enumerate(self.names)}

    def marked_names(self) -> list[str]:
        """The inputs shown with the unfamiliar mark."""
        return [self.names[i] for i in sorted(self.marked)]


class ProbabilityChart(BarChart):
    """Per class: each modality's probability and the fused one, side by side."""

    default_name = "probabilities"

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Class probabilities", PROBABILITY_TOOLTIP, parent)
        self.labels: list[str] = []
        self.names: list[str] = []

    def set_modalities(self, names: list[str], labels: list[str]) -> None:
        self.names, self.labels = list(names), [str(lb) for lb in labels]
        self.categories = list(self.labels)
        self._recolour()
        self.clear_values()

    def _recolour(self) -> None:
        self.series = [(n, QColor(style.series_colour(i))) for i, n in enumerate(self.names)]
        self.series.append(("fused", QColor(style.fused_colour())))

    def apply_palette(self) -> None:
        if "names" in self.__dict__:  # palette events can arrive inside __init__
            self._recolour()
        super().apply_palette()

    def clear_values(self) -> None:
        self.values = np.zeros((len(self.names) + 1, len(self.labels)))
        self._changed()

    def set_values(self, per_modality: dict[str, list[float]], fused: list[float]) -> None:
        n = len(self.labels)
        rows = [_numbers(per_modality.get(name, [0.0] * n), n) for name in self.names]
        rows.append(_numbers(fused, n))
        self.values = np.vstack(rows)
        self._changed()

    def _number_specs(self) -> list[tuple[int, int, str]]:
        """The fused probabilities of 0.05 or more, the likeliest class first (it wins a tight spot)."""
        if not len(self.values):
            return []
        fused = self.values[-1]
        order = sorted((c for c in range(len(self.labels)) if math.isfinite(fused[c]) and fused[c] >= 0.05),
                       key=lambda c: -fused[c])
        return [(len(self.series) - 1, c, f"{fused[c]:.2f}") for c in order]

    def hover_text(self, x: float, y: float) -> str | None:
        i = self._category_at(x)
        if i is None:
            return None
        parts = [f"{name} {self.values[s, i]:.3f}" for s, (name, _) in enumerate(self.series)
                 if math.isfinite(self.values[s, i])]
        return f"class {self.labels[i]}: " + " · ".join(parts) if parts else None

    def bar_heights(self) -> dict[str, list[float]]:
        """What the bars show, by series (each input, then "fused"), one value per class."""
        return {name: [float(v) for v in self.values[s]] for s, (name, _) in enumerate(self.series)}
