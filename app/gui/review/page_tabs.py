"""The Review page's Pairs / Summary tabs (`PageTabs`)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QTabWidget, QWidget

__all__ = ["PageTabs"]


class PageTabs(QTabWidget):
    """The Pairs / Summary tabs. A `QTabWidget` answers every LayoutRequest by placing its tab bar and
    page again and repainting itself whole, frame and tab bar; a Review click's new texts send one up
    through the detail pane each time (~2 ms of GUI-thread time). A request that would place them
    where they are only passes the page's size hints on to the window."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._placed: tuple | None = None

    def _placement(self) -> tuple:
        bar = self.tabBar()
        return (self.size(), bar.sizeHint(), bar.isVisible(), self.count(), self.currentIndex(),
                self.tabPosition(), self.documentMode())

    def event(self, event: Any) -> bool:
        if event.type() == QEvent.Type.LayoutRequest and self.isVisible():
            placement = self._placement()
            if placement == self._placed:
                self.updateGeometry()
                return True
            self._placed = placement
        return super().event(event)
