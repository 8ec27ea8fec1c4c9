"""The selected pair: its title line, the shared result view, the verdict buttons and the note."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.gui.labels import SteadyLabel
from app.gui.result_view import ResultView
from app.review.session import ReviewRow

NOTE_QUIET_MS = 300
TITLE_LINES = 2  # id, label, flags and verdict: two lines as a rule
DETAIL_LINES = 3  # the per-input line (wrapped once) and the unfamiliar mark or the model line
STALE_PREVIEWS_MS = 150  # the previous pair's previews stay this long at most, waiting for this pair's


class _FitScroll(QScrollArea):
    """Gives its widget the viewport's size, or its minimum height when the viewport is shorter (then
    it scrolls). QScrollArea's own resizing follows word-wrapped labels' height-for-width, which asks
    for the preferred height and scrolls long before the charts have reached their minimum."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def setWidget(self, widget: QWidget) -> None:  # noqa: N802 - Qt's name
        super().setWidget(widget)
        widget.installEventFilter(self)  # its minimum can grow later (previews added): fit it again then

    def eventFilter(self, watched: Any, event: Any) -> bool:  # noqa: N802 - Qt's name
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self._fit()  # the same size as a rule (the pane's lines keep their height): then a no-op
        return False

    def _fit(self) -> None:
        widget = self.widget()
        if widget is not None:
            viewport = self.viewport().size()
            widget.resize(viewport.width(), max(viewport.height(), widget.minimumSizeHint().height()))

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._fit()

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self._fit()


class PairDetail(QWidget):
    """Shows one `ReviewRow`; asks for verdicts and notes through signals (the page writes them)."""

    verdictChosen = Signal(object)  # "accept" | "reject" | "relabel" | None (clear)
    noteEdited = Signal(str)
    openInPredict = Signal()  # the page knows the pair's files

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        # Opaque: a repaint of its title or buttons (every click) stops here instead of painting the
        # splitter, the tab widget's frame and the page beneath them again.
        self.setAutoFillBackground(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.title = SteadyLabel("", lines=TITLE_LINES)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.title)
        self.result_view = ResultView(show_previews=True)
        # Room for TITLE_LINES and DETAIL_LINES lines whatever the pair: a title or a result line that
        # wraps onto one more line for the next pair would otherwise resize the charts and previews
        # below it, and a click would lay out and repaint the whole pane instead of its numbers.
        self.result_view.detail.set_lines(DETAIL_LINES)
        # on a short screen the pair's pictures and charts scroll; the verdict buttons and note stay in view
        self.scroll = _FitScroll()
        self.scroll.setWidget(self.result_view)
        self.scroll.setMinimumHeight(240)
        layout.addWidget(self.scroll, 1)
        row = QHBoxLayout()
        self.accept_button = QPushButton("Accept (A)", clicked=lambda: self.verdictChosen.emit("accept"))
        self.reject_button = QPushButton("Reject (R)", clicked=lambda: self.verdictChosen.emit("reject"))
        self.relabel_button = QPushButton("Relabel (L) as", clicked=lambda: self.verdictChosen.emit("relabel"))
        self.relabel_combo = QComboBox()
        self.clear_verdict_button = QPushButton("Clear", clicked=lambda: self.verdictChosen.emit(None))
        self.predict_button = QPushButton("Open in Predict", clicked=lambda: self.openInPredict.emit(),
                                          toolTip="Open this pair's files in the Predict tab")
        for w in (self.accept_button, self.reject_button, self.relabel_button, self.relabel_combo,
                  self.clear_verdict_button):
            row.addWidget(w)
        row.addStretch(1)
        row.addWidget(self.predict_button)
        layout.addLayout(row)
        self.note_edit = QLineEdit(placeholderText="note (saved as you type)")
        # saved as typed, once typing pauses; Enter, leaving the field or another pair save it at once
        self._note_timer = QTimer(self, singleShot=True, interval=NOTE_QUIET_MS, timeout=self.flush_note)
        self._note_typed = False  # typed since last announced: another pair's click writes nothing otherwise
        self.note_edit.textEdited.connect(self._note_typed_now)
        self.note_edit.editingFinished.connect(self.flush_note)
        layout.addWidget(self.note_edit)
        # Another pair's previews are cleared only if its own have not come by then: its files are
        # decoded in a few milliseconds as a rule, and clearing first would repaint every preview twice.
        self._stale_previews = QTimer(self, singleShot=True, interval=STALE_PREVIEWS_MS,
                                      timeout=lambda: self.result_view.show_inputs({}))
        self.set_enabled(False)

    def _note_typed_now(self, _text: str) -> None:
        self._note_typed = True
        self._note_timer.start()

    def flush_note(self) -> None:
        """Announce the note now if it was edited since it was last announced."""
        self._note_timer.stop()
        if self.note_edit.isEnabled() and self._note_typed:
            self._note_typed = False
            self.noteEdited.emit(self.note_edit.text())

    def set_enabled(self, enabled: bool) -> None:
        for w in (self.accept_button, self.reject_button, self.relabel_button, self.relabel_combo,
                  self.clear_verdict_button, self.note_edit, self.predict_button):
            w.setEnabled(enabled)

    def set_labels(self, labels: list[str]) -> None:
        self.relabel_combo.clear()
        self.relabel_combo.addItems(labels)

    def show_title(self, row: ReviewRow) -> None:
        verdict = row.verdict or "no verdict"
        if row.verdict == "relabel":
            verdict = f"relabel → {row.relabel}"
        flags = ", ".join(row.flags) or "no flags"
        self.title.setText(f"<b>{row.id}</b> · given label {row.label or '—'} · {flags} · {verdict}")

    def show_row(self, row: ReviewRow, labels: list[str], prediction: dict[str, Any] | None) -> None:
        """The row's facts and numbers now; the previews come later (`show_inputs`), decoded off the GUI thread."""
        self.set_enabled(True)
        self.show_title(row)
        self._note_timer.stop()
        self._note_typed = False
        self.note_edit.setText(row.note)
        if row.relabel:
            self.relabel_combo.setCurrentText(row.relabel)
        elif row.label and row.label in labels and row.label != row.prediction:
            self.relabel_combo.setCurrentText(row.label)
        if prediction is None:
            self._stale_previews.stop()
            if row.status == "error":
                self.result_view.clear("This pair could not be predicted", row.error or "")
            else:
                self.result_view.clear("Not processed yet")
            return
        self.result_view.show_result(prediction)
        self._stale_previews.start()  # the previous pair's pictures must not stay under this pair's numbers

    def show_inputs(self, raw: dict[str, Any]) -> None:
        self._stale_previews.stop()
        self.result_view.show_inputs(raw)

    def clear(self) -> None:
        self._stale_previews.stop()
        self._note_timer.stop()
        self._note_typed = False
        self.title.setText("")
        self.note_edit.setText("")
        self.set_enabled(False)
        self.result_view.clear()
