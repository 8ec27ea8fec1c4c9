"""The degradation sweep box: a button, a status line and the plot of quality and confidence over severity.

At start-up the plot (two pyqtgraph panels, about a third of what building the Predict page's views
costs) can be left for later (`defer_plot=True`): the first prediction is drawn first, and the plot
is built in the event-loop turn after it (`build_plot()`, or on first use of `plot`). Until then the
box keeps the inputs and levels it is told, and gives them to the plot when it is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.gui.predict.messages import SweepDone, SweepFailed

if TYPE_CHECKING:  # pragma: no cover
    from app.gui.sweep_chart import SweepPlot

PLOT_MINIMUM_HEIGHT = 220  # the room kept for the plot before it is built: the page does not move


class SweepBox(QGroupBox):
    requested = Signal()

    def __init__(self, parent: QWidget | None = None, defer_plot: bool = False):
        super().__init__("Degradation sweep", parent)
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.button = QPushButton("Sweep", clicked=lambda: self.requested.emit())
        self.button.setToolTip("Degrade each input over the whole severity range with its chosen corruption")
        self.status = QLabel("Plot each input's quality and the fused confidence over severity 0–10.")
        self.status.setStyleSheet("color: gray")
        self.status.setWordWrap(True)  # a long line would set the page's minimum width
        row.addWidget(self.button)
        row.addWidget(self.status, 1)
        layout.addLayout(row)
        self._plot: SweepPlot | None = None
        self._names: list[str] = []
        self._levels: dict[str, float] | None = None
        self._placeholder: QWidget | None = QWidget(minimumHeight=PLOT_MINIMUM_HEIGHT)
        layout.addWidget(self._placeholder, 1)
        if not defer_plot:
            self.build_plot()

    @property
    def plot_built(self) -> bool:
        return self._plot is not None

    @property
    def plot(self) -> SweepPlot:
        """The plot, built now if it was left for later."""
        return self._plot if self._plot is not None else self.build_plot()

    def build_plot(self) -> SweepPlot:
        """Build the plot (once) in the place kept for it, with the inputs and levels set so far."""
        if self._plot is not None:
            return self._plot
        from app.gui.sweep_chart import SweepPlot

        plot = SweepPlot()
        plot.set_modalities(self._names)
        if self._levels is not None:
            plot.set_current_levels(self._levels)
        layout = self.layout()
        layout.replaceWidget(self._placeholder, plot)
        self._placeholder.deleteLater()
        self._placeholder = None
        self._plot = plot
        return plot

    # --- what the page tells the plot (kept until it is built) ---------------------------------------
    def set_modalities(self, names: list[str]) -> None:
        self._names = list(names)
        self._levels = None
        if self._plot is not None:
            self._plot.set_modalities(self._names)

    def set_current_levels(self, levels: dict[str, float]) -> None:
        self._levels = dict(levels)
        if self._plot is not None:
            self._plot.set_current_levels(levels)

    def clear_values(self) -> None:
        if self._plot is not None:
            self._plot.clear_values()

    def apply_palette(self) -> None:
        if self._plot is not None:
            self._plot.apply_palette()

    # --- results -------------------------------------------------------------------------------------
    def show_sweep(self, sweep: SweepDone) -> None:
        self.plot.set_sweep(sweep.as_json())
        kinds = ", ".join(f"{n}: {c.kind}" for n, c in sweep.curves.items())
        self.status.setText(f"One input degraded at a time ({kinds}); the others clean.")

    def show_failure(self, failed: SweepFailed) -> None:
        self.status.setText(f"Sweep failed: {failed.message}")
