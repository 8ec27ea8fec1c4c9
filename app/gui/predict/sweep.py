"""The degradation sweep box: a button, a status line and the plot of quality and confidence over severity."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.gui.predict.messages import SweepDone, SweepFailed
from app.gui.sweep_chart import SweepPlot


class SweepBox(QGroupBox):
    requested = Signal()

    def __init__(self, parent: QWidget | None = None):
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
        self.plot = SweepPlot()
        layout.addWidget(self.plot, 1)

    def show_sweep(self, sweep: SweepDone) -> None:
        self.plot.set_sweep(sweep.as_json())
        kinds = ", ".join(f"{n}: {c.kind}" for n, c in sweep.curves.items())
        self.status.setText(f"One input degraded at a time ({kinds}); the others clean.")

    def show_failure(self, failed: SweepFailed) -> None:
        self.status.setText(f"Sweep failed: {failed.message}")
