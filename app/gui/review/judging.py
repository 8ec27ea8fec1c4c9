"""The Review page's judging: verdicts and notes on the pair shown (only while the filter shows it),
each an undoable step (`app.gui.review.undo`), copying rows, handing a pair to the Predict tab.

A mixin of `ReviewView` (app/gui/review/view.py), which owns the widgets and the session these use.
"""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication

from app.gui.review.undo import VerdictChange, VerdictState, read_state, write_state

__all__ = ["JudgingMixin"]


class JudgingMixin:
    def judged_pair_id(self) -> str | None:
        """The pair a verdict or note acts on: the one shown, if the current filter shows it."""
        if self.session is None or self._current_id is None:
            return None
        if not self.session.shows(self._current_id, self.table_model.filter):
            return None
        return self._current_id

    def set_verdict(self, verdict: str | None) -> None:
        """Record a verdict for the selected pair now (relabel uses the label chosen next to the buttons)."""
        pair_id = self.judged_pair_id()
        if pair_id is None or self.session is None:
            return
        before = read_state(self.session, pair_id)
        if verdict is None:
            after = VerdictState(None, None, before.note)
        else:
            relabel = self.detail.relabel_combo.currentText() if verdict == "relabel" else None
            if verdict == "relabel" and not relabel:
                return
            after = VerdictState(verdict, relabel, before.note)
        self._change(pair_id, before, after)

    def set_note(self, note: str) -> None:
        self.detail.note_edit.setText(note)
        self._save_note()

    def _save_note(self) -> None:
        pair_id = self.judged_pair_id()
        if pair_id is None or self.session is None:
            return
        before = read_state(self.session, pair_id)
        note = self.detail.note_edit.text()
        if note != before.note:
            self._change(pair_id, before, VerdictState(before.verdict, before.relabel, note))

    def _write_from_table(self, pair_id: str, verdict: str | None, relabel: str | None, note: str) -> None:
        if self.session is not None:
            self._change(pair_id, read_state(self.session, pair_id), VerdictState(verdict, relabel, note))

    def _change(self, pair_id: str, before: VerdictState, after: VerdictState) -> None:
        if before != after:
            self.undo_stack.push(VerdictChange(pair_id, before, after, self._apply_state))

    def _apply_state(self, pair_id: str, state: VerdictState) -> None:
        """Write one pair's verdict and note (an edit, its undo or its redo) and show it everywhere."""
        if self.session is None:
            return
        write_state(self.session, pair_id, state)
        self.table_model.update_row(pair_id)
        if pair_id == self._current_id:
            if self.detail.note_edit.text() != state.note:
                self.detail.note_edit.setText(state.note)
            self._verdict_edited(pair_id)

    def undo(self) -> None:
        self.undo_stack.undo()

    def redo(self) -> None:
        self.undo_stack.redo()

    def copy_selected_rows(self) -> str:
        """The selected rows as tab-separated text (with the header) on the clipboard; returns it."""
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        if not rows:
            return ""
        text = self.table_model.rows_as_tsv(rows)
        QGuiApplication.clipboard().setText(text)
        self.say(f"Copied {len(rows)} row(s) as tab-separated text.", 4000)
        return text

    def open_pair_in_predict(self) -> None:
        row = self.current_pair()
        if row is not None:
            self.openPairInPredict.emit({name: str(path) for name, path in row.files.items()})

    def _verdict_edited(self, pair_id: str) -> None:
        self.table_model.update_row(pair_id)
        if pair_id == self._current_id and self.session is not None:
            row = self.session.row(pair_id)
            if row is not None:
                self.detail.show_title(row)

