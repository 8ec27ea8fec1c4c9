"""The Predict page's left column: the model line, one panel per input, the hint."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QLabel, QMessageBox, QScrollArea, QVBoxLayout, QWidget

if TYPE_CHECKING:  # pragma: no cover - the panels import pyqtgraph, which waits for the first paint
    from app.gui.panels import InputPanel


class _PanelHost(QWidget):
    """The panels' container. Its wrapped captions give its layout a height-for-width, and the
    scroll area then makes it as tall as its *preferred* height (previews at their largest): on a
    768-pixel screen the audio panel's controls were scrolled away although the panels fit at their
    minimum. Answering with the minimum height lets the previews shrink first."""

    def heightForWidth(self, width: int) -> int:  # noqa: N802 - Qt's name
        return self.minimumSizeHint().height()


class InputColumn(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.model_banner = QLabel("", wordWrap=True)
        self.model_banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                                  | Qt.TextInteractionFlag.LinksAccessibleByMouse
                                                  | Qt.TextInteractionFlag.LinksAccessibleByKeyboard)
        self.model_banner.linkActivated.connect(self._show_note_details)
        self.note_details: str | None = None
        layout.addWidget(self.model_banner)
        self.panel_host = _PanelHost()
        self.panel_layout = QVBoxLayout(self.panel_host)
        self.panel_layout.setContentsMargins(0, 0, 0, 0)
        self.scroll = scroll = QScrollArea(widgetResizable=True, frameShape=QScrollArea.Shape.NoFrame)
        scroll.setWidget(self.panel_host)
        layout.addWidget(scroll, 1)
        hint = QLabel("Drop files here or use File ▸ Open; move a slider to degrade an input.", wordWrap=True)
        hint.setStyleSheet("color: gray")
        layout.addWidget(hint)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        """As wide as the panels need, their vertical scroll bar included: the page's splitter then
        never squeezes the column into scrolling sideways (it did at 2x scale on a 1366x768 screen);
        a window narrower than both columns scrolls the whole page instead."""
        hint = super().minimumSizeHint()
        need = self.panel_host.minimumSizeHint().width() + self.scroll.verticalScrollBar().sizeHint().width()
        return QSize(max(hint.width(), need), hint.height())

    def show_model(self, manifest: dict[str, Any], fallback_name: str) -> None:
        e = html.escape
        model = manifest["model"]
        self.note_details = None
        self.model_banner.setToolTip("")
        self.model_banner.setText(f"<b>Model:</b> {e(str(manifest.get('name', fallback_name)))} "
                                  f"— inputs: {', '.join(e(s['name']) for s in model['modalities'])}; "
                                  f"labels: {e(', '.join(map(str, model.get('labels', []))))}")

    def show_note(self, text: str, details: str | None = None) -> None:
        """A red line under the model line (the model asked for could not be used, another is open).
        With `details` (the whole reason, which can run to several lines: a long path, a field's
        name and limits) the line stays short and ends in a "Details" link that shows them; they
        are the line's tooltip too, so the input panels below keep their room."""
        self.note_details = details
        link = " <a href='details'>Details…</a>" if details else ""
        self.model_banner.setText(f"{self.model_banner.text()}<br><span style='color:#C62828'>"
                                  f"{html.escape(text)}</span>{link}")
        self.model_banner.setToolTip(details or "")

    def _show_note_details(self, _link: str) -> None:
        if self.note_details:
            QMessageBox.information(self.window(), "Model", self.note_details)

    def show_problem(self, text: str) -> None:
        self.model_banner.setText(f"<span style='color:#C62828'><b>{html.escape(text)}</b></span>")

    def build_panels(self, specs: list[dict[str, Any]], old: dict[str, InputPanel],
                     on_open: Callable[[str], None], on_degrade: Callable[[str], None]) -> dict[str, InputPanel]:
        """Replace the `old` panels by one per spec, in the manifest's order."""
        from app.gui.panels import make_panel

        for panel in old.values():
            self.panel_layout.removeWidget(panel)
            panel.deleteLater()
        while self.panel_layout.count():
            self.panel_layout.takeAt(0)
        panels = {}
        for spec in specs:
            panel = make_panel(spec)
            panel.openRequested.connect(on_open)
            panel.degradationChanged.connect(on_degrade)
            self.panel_layout.addWidget(panel, 1)
            panels[spec["name"]] = panel
        self.updateGeometry()  # another minimum width (minimumSizeHint)
        return panels
