"""The context menu every chart shares: copy to the clipboard, save as SVG or PNG, reset the view.

Mixed into the painted result charts (app/gui/bar_chart.py, app/gui/charts.py) and the sweep's
pyqtgraph plots (app/gui/sweep_chart.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtGui import QAction, QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QApplication, QFileDialog, QMenu


class ChartActions:
    """The context menu of every chart: copy to the clipboard, save as SVG or PNG, and, where zooming
    is on, reset the view. Mixed into QWidget subclasses (these bar charts, the sweep's plots)."""

    zoomable = False
    default_name = "chart"

    def chart_title(self) -> str:
        return self.default_name

    def chart_menu(self) -> QMenu:
        menu = QMenu(self)
        menu.addAction(QAction("&Copy chart", menu, triggered=self.copy_to_clipboard))
        menu.addAction(QAction("Save as &SVG…", menu, triggered=lambda: self._save_dialog("svg")))
        menu.addAction(QAction("Save as &PNG…", menu, triggered=lambda: self._save_dialog("png")))
        if self.zoomable:
            menu.addSeparator()
            menu.addAction(QAction("&Reset zoom", menu, triggered=self.reset_view))
        return menu

    def contextMenuEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        self.chart_menu().exec(event.globalPos())
        event.accept()

    def copy_to_clipboard(self) -> None:
        QApplication.clipboard().setImage(self.grab().toImage())

    def paint_vectors(self, painter: QPainter) -> None:
        """Draw the chart on `painter` as vectors (the SVG export)."""
        self.render(painter)

    def export_svg(self, path: str | Path) -> bool:
        """The chart as vectors (Qt's SVG generator: pyqtgraph's own exporter fails on this Qt's paths)."""
        generator = QSvgGenerator()
        generator.setFileName(str(path))
        generator.setSize(self.size())
        generator.setViewBox(self.rect())
        generator.setTitle(self.chart_title() or self.default_name)
        painter = QPainter()
        if not painter.begin(generator):
            return False
        self.paint_vectors(painter)
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
