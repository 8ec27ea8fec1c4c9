"""The Summary tab: accuracy, confusion matrix, quality-score histograms and counts per flag.

The counts come from the session's group table (a few hundred rows whatever its size) on the GUI
thread; the histograms read every pair's quality, so a thread with its own read-only connection
counts them and the plots fill in when it is done (the latest request wins).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.gui import style
from app.review.session import ReviewSession

__all__ = ["SummaryPanel"]

BINS = 30


def _readonly_table() -> QTableWidget:
    t = QTableWidget()
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    return t


class _HistogramJob(QObject):
    """Counts the histograms of a session file in a thread; ``done(generation, {name: (counts, lo, hi)} | str)``."""

    done = Signal(int, object)

    def start(self, generation: int, path: Any, names: list[str]) -> None:
        threading.Thread(target=self._run, args=(generation, path, names), daemon=True,
                         name="summary-histograms").start()

    def _run(self, generation: int, path: Any, names: list[str]) -> None:
        try:
            with ReviewSession.open(path, readonly=True) as s:
                result: Any = {name: s.modality_histogram(name, "quality", BINS) for name in names}
        except Exception as exc:  # noqa: BLE001 - shown in the headline, never a crash of the window
            result = str(exc)
        self.done.emit(generation, result)


class SummaryPanel(QWidget):
    def __init__(self, parent: Any = None):
        super().__init__(parent)
        self._job = _HistogramJob(self)
        self._job.done.connect(self._show_histograms)
        self._generation = 0
        self.histograms_pending = False
        self._counting = False  # one count at a time; a request made meanwhile waits here (latest wins)
        self._waiting: tuple[int, Any, list[str]] | None = None
        layout = QVBoxLayout(self)
        self.headline = QLabel("No session")
        self.headline.setWordWrap(True)
        layout.addWidget(self.headline)
        top = QHBoxLayout()
        conf_box = QGroupBox("Confusion matrix (rows: given label, columns: prediction)")
        QVBoxLayout(conf_box).addWidget(conf := _readonly_table())
        self.confusion = conf
        flag_box = QGroupBox("Pairs per flag")
        QVBoxLayout(flag_box).addWidget(flags := _readonly_table())
        self.flag_table = flags
        self.flag_table.setColumnCount(2)
        self.flag_table.setHorizontalHeaderLabels(["flag", "pairs"])
        top.addWidget(conf_box, 3)
        top.addWidget(flag_box, 2)
        layout.addLayout(top, 2)
        self.hist_box = QGroupBox("Quality score per input (higher = the model trusted it more)")
        self.hist_layout = QGridLayout(self.hist_box)
        layout.addWidget(self.hist_box, 3)
        self.histograms: dict[str, tuple[pg.PlotWidget, pg.BarGraphItem]] = {}
        self.summary: dict[str, Any] | None = None
        self.counts: dict[str, list[float]] = {}

    def apply_palette(self) -> None:
        """Restyle the histograms after the light/dark palette changed."""
        for plot, _ in self.histograms.values():
            style.style_plot(plot)

    def _ensure_histograms(self, names: list[str]) -> None:
        if list(self.histograms) == names:
            return
        for plot, _ in self.histograms.values():
            self.hist_layout.removeWidget(plot)
            plot.deleteLater()
        self.histograms = {}
        for i, name in enumerate(names):
            plot = pg.PlotWidget(title=f"{name} quality")
            plot.setMenuEnabled(False)
            plot.setLabel("left", "pairs")
            style.style_plot(plot)  # the theme's background, not pyqtgraph's black
            bars = pg.BarGraphItem(x=[], height=[], width=1.0, brush=pg.mkBrush(70, 130, 200, 180))
            plot.addItem(bars)
            self.hist_layout.addWidget(plot, 0, i)
            self.histograms[name] = (plot, bars)

    def histogram_counts(self, name: str) -> list[float]:
        """Bar heights shown for an input (for tests and for reading the chart as numbers)."""
        return list(self.counts.get(name, []))

    def update_from(self, session: ReviewSession | None) -> None:
        if session is None:
            self._generation += 1  # a count still running is for a session no longer shown
            self.histograms_pending = False
            self.headline.setText("No session")
            self.confusion.setRowCount(0)
            self.flag_table.setRowCount(0)
            return
        s = session.summary()
        self.summary = s
        acc = "no labels" if s["accuracy"] is None else f"accuracy <b>{s['accuracy']:.1%}</b> on {s['labelled']} labelled pairs"
        verdicts = ", ".join(f"{k} {v}" for k, v in sorted(s["verdicts"].items())) or "none yet"
        self.headline.setText(
            f"<b>{s['pairs']}</b> pairs: {s['done']} done, {s['pending']} pending, {s['errors']} errors · {acc}"
            f" · verdicts: {verdicts}<br><span style='color:gray'>model {session.model_name} "
            f"(sha256 {session.model_sha256[:12]}) · source {session.source_path}</span>"
        )
        conf = s["confusion"]
        self.confusion.setRowCount(len(conf["labels"]))
        self.confusion.setColumnCount(len(conf["predictions"]))
        self.confusion.setVerticalHeaderLabels(conf["labels"])
        self.confusion.setHorizontalHeaderLabels(conf["predictions"])
        peak = max((max(r) for r in conf["matrix"] if r), default=0) or 1
        for i, row in enumerate(conf["matrix"]):
            for j, n in enumerate(row):
                item = QTableWidgetItem(str(n))
                if n:
                    shade = int(255 - 120 * n / peak)
                    item.setBackground(pg.mkColor(shade, shade, 255) if i < len(conf["predictions"]) and
                                       conf["labels"][i] == conf["predictions"][j] else pg.mkColor(255, shade, shade))
                    item.setForeground(pg.mkColor(0, 0, 0))
                self.confusion.setItem(i, j, item)
        flags = sorted(s["flags"].items(), key=lambda kv: (-kv[1], kv[0]))
        self.flag_table.setRowCount(len(flags))
        for i, (name, n) in enumerate(flags):
            self.flag_table.setItem(i, 0, QTableWidgetItem(name))
            self.flag_table.setItem(i, 1, QTableWidgetItem(str(n)))
        names = session.modality_names
        self._ensure_histograms(names)
        self._generation += 1
        self.histograms_pending = True
        for name in names:
            self.histograms[name][0].setTitle(f"{name} quality (counting…)")
        self._count(self._generation, session.path, names)

    def _count(self, generation: int, path: Any, names: list[str]) -> None:
        if self._counting:
            self._waiting = (generation, path, names)
            return
        self._counting = True
        self._job.start(generation, path, names)

    def _show_histograms(self, generation: int, result: Any) -> None:
        self._counting = False
        if self._waiting is not None:
            waiting, self._waiting = self._waiting, None
            if waiting[0] == self._generation:
                self._count(*waiting)
        if generation != self._generation:
            return  # a newer summary was asked for meanwhile
        self.histograms_pending = False
        if isinstance(result, str):
            self.headline.setText(self.headline.text() + f"<br><span style='color:gray'>histograms: {result}</span>")
            return
        for name, (counts, lo, hi) in result.items():
            if name not in self.histograms:
                continue
            plot, bars = self.histograms[name]
            plot.setTitle(f"{name} quality")
            if not counts:
                self.counts[name] = []
                bars.setOpts(x=[], height=[], width=1.0)
                continue
            edges = np.linspace(lo, hi, len(counts) + 1)
            width = float(edges[1] - edges[0]) or 1.0
            self.counts[name] = [float(c) for c in counts]
            bars.setOpts(x=(edges[:-1] + edges[1:]) / 2, height=np.asarray(counts, dtype=float), width=width * 0.9)
