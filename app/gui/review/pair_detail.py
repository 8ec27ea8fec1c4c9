"""The selected pair: its title line, the shared result view, the verdict buttons and the note."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from app.gui.result_view import ResultView
from app.review.session import ReviewRow


class PairDetail(QWidget):
    """Shows one `ReviewRow`; asks for verdicts and notes through signals (the page writes them)."""

    verdictChosen = Signal(object)  # "accept" | "reject" | "relabel" | None (clear)
    noteEdited = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.title = QLabel("", wordWrap=True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.title)
        self.result_view = ResultView(show_previews=True)
        layout.addWidget(self.result_view, 1)
        row = QHBoxLayout()
        self.accept_button = QPushButton("Accept (A)", clicked=lambda: self.verdictChosen.emit("accept"))
        self.reject_button = QPushButton("Reject (R)", clicked=lambda: self.verdictChosen.emit("reject"))
        self.relabel_button = QPushButton("Relabel (L) as", clicked=lambda: self.verdictChosen.emit("relabel"))
        self.relabel_combo = QComboBox()
        self.clear_verdict_button = QPushButton("Clear", clicked=lambda: self.verdictChosen.emit(None))
        for w in (self.accept_button, self.reject_button, self.relabel_button, self.relabel_combo,
                  self.clear_verdict_button):
            row.addWidget(w)
        row.addStretch(1)
        layout.addLayout(row)
        self.note_edit = QLineEdit(placeholderText="note (saved when you press Enter or leave the field)")
        self.note_edit.editingFinished.connect(lambda: self.noteEdited.emit(self.note_edit.text()))
        layout.addWidget(self.note_edit)
        self.set_enabled(False)

    def set_enabled(self, enabled: bool) -> None:
        for w in (self.accept_button, self.reject_button, self.relabel_button, self.relabel_combo,
                  self.clear_verdict_button, self.note_edit):
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
        self.note_edit.setText(row.note)
        if row.relabel:
            self.relabel_combo.setCurrentText(row.relabel)
        elif row.label and row.label in labels and row.label != row.prediction:
            self.relabel_combo.setCurrentText(row.label)
        if prediction is None:
            if row.status == "error":
                self.result_view.clear("This pair could not be predicted", row.error or "")
            else:
                self.result_view.clear("Not processed yet")
            return
        self.result_view.show_result(prediction)
        self.result_view.show_inputs({})  # the previous pair's pictures must not stay under this pair's numbers

    def show_inputs(self, raw: dict[str, Any]) -> None:
        self.result_view.show_inputs(raw)

    def clear(self) -> None:
        self.title.setText("")
        self.note_edit.setText("")
        self.set_enabled(False)
        self.result_view.clear()
