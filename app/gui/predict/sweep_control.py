"""The Predict page's degradation sweep: run it for the open pair, follow the pair, show the result.

`PredictPage` takes these methods from `PageSweepMixin`; they use its sweep box, panels, service and
signals (app/gui/predict/page.py builds them). The sweep's plot is built late at start-up (after the
first result is drawn) or on first use.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QTimer

from app.gui.predict.messages import SweepDone

__all__ = ["PageSweepMixin"]


class PageSweepMixin:
    charts_import_pending = False  # `MainWindow` imports pyqtgraph in a thread: the plot waits for `charts_imported`
    _sweep_plot_wanted = False

    @property
    def sweep_plot(self) -> Any:
        """The sweep's chart (`app.gui.sweep_chart.SweepPlot`), built now if it is not yet."""
        return self.sweep_box.plot

    def _build_sweep_plot_soon(self, _prediction: Any = None) -> None:
        self.resultShown.disconnect(self._build_sweep_plot_soon)
        if not self.charts_import_pending:  # after the result's frame
            QTimer.singleShot(0, self, self._build_sweep_plot)
        else:  # the window imports it in a thread: `charts_imported` builds the plot (no 0.4 s freeze here)
            self._sweep_plot_wanted = True

    def charts_imported(self) -> None:
        """pyqtgraph is imported (the window's import thread is done): the sweep's plot, if it is wanted."""
        self.charts_import_pending = False
        if self._sweep_plot_wanted:
            self._sweep_plot_wanted = False
            QTimer.singleShot(0, self, self._build_sweep_plot)

    def _build_sweep_plot(self) -> None:
        if not self.sweep_box.plot_built:
            self.sweep_box.build_plot()
            self._route_drops_to_page()

    def run_sweep(self) -> int | None:
        if self.manifest is None or not self._has_files():
            self.sweep_box.status.setText("Open an input pair first.")
            return None
        kinds = {name: panel.corruption()[0] for name, panel in self.panels.items()}
        self.sweep_box.status.setText("Sweeping…")
        self._sweep_files = self.current_files()
        return self.service.sweep(self.current_files(), kinds)

    def _follow_sweep(self, files: dict[str, str | None]) -> None:
        """The sweep belongs to one pair: another pair re-runs it (the box is visible) or clears it."""
        self.sweep_box.set_current_levels({name: panel.level() for name, panel in self.panels.items()})
        if self._sweep_files is None or files == self._sweep_files:
            return
        self.sweep_box.clear_values()
        self.last_sweep = None
        if self.sweep_box.isVisible():
            self.run_sweep()
        else:
            self._sweep_files = None
            self.sweep_box.status.setText("Another pair is open: press Sweep to sweep it.")

    def _on_sweep(self, sweep: SweepDone) -> None:
        self.last_sweep = sweep.as_json()
        self.sweep_box.show_sweep(sweep)
        self.sweepShown.emit(self.last_sweep)

    def show_sweep(self, checked: bool) -> None:
        if self.views_built:
            self.sweep_box.setVisible(checked)
