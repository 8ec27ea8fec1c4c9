"""The Review page's selection and detail: choosing a row, showing its pair, N / Shift+N between flags.

`ReviewView` takes these methods from `SelectionMixin`; they use its session, table, table model,
pair detail and preview decoder (app/gui/review/view.py builds them). A pair's numbers are shown at
once; its decoded previews in a turn of their own after the click's repaint (`PREVIEWS_AFTER_MS`).
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QItemSelectionModel

from app.gui.review.preview_decoder import DecodedPair
from app.review.session import ANY_FLAG, ReviewRow, RowFilter

__all__ = ["SelectionMixin"]


class SelectionMixin:
    def select_row(self, row: int) -> None:
        self._select_row(row, show=True)

    def _select_row(self, row: int, show: bool) -> None:
        if not 0 <= row < self.table_model.rowCount():
            return
        index = self.table_model.index(row, 0)
        sel = self.table.selectionModel()
        sel.setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect
                            | QItemSelectionModel.SelectionFlag.Rows)
        self.table.scrollTo(index)
        row_data = self.table_model.row_at(row)
        if show and row_data is not None and row_data.id != self._current_id:
            self._show_pair(row_data)

    def _on_current_changed(self, current: Any, _previous: Any) -> None:
        if current.isValid():
            row = self.table_model.row_at(current.row())
            if row is not None and row.id != self._current_id:
                self._show_pair(row)

    def current_pair(self) -> ReviewRow | None:
        if self.session is None or self._current_id is None:
            return None
        return self.session.row(self._current_id)

    def _show_pair(self, row: ReviewRow | None) -> None:
        """The pair's numbers at once (one SQLite read); its previews when the decoder has read its files."""
        self.detail.flush_note()  # a note still being typed belongs to the pair shown until now
        if row is None or self.session is None:
            self._current_id = None
            self.decoder.cancel()
            self.detail.clear()
            return
        self._current_id = row.id
        self._shown_at = time.monotonic()
        prediction = self.session.prediction_json(row.id) if row.status == "ok" else None
        self.detail.show_row(row, self.session.labels, prediction)
        if prediction is None:
            self.decoder.cancel()
        else:
            self.decoder.decode(row.id, self.session.manifest_modalities, row.files)

    def _on_decoded(self, decoded: DecodedPair) -> None:
        if decoded.pair_id == self._current_id:
            self._decoded = decoded
            self._decoded_timer.start()  # after the click's repaint (PREVIEWS_AFTER_MS)

    def _show_decoded(self) -> None:
        decoded, self._decoded = self._decoded, None
        if decoded is not None and decoded.pair_id == self._current_id:
            self.detail.show_inputs(decoded.raw)

    def goto_flagged(self, step: int = 1) -> int | None:
        """Select the next (step=+1) or previous (-1) flagged row in the table's order; returns its row."""
        n = self.table_model.rowCount()
        if n == 0:
            return None
        current = self.table.currentIndex().row() if self.table.currentIndex().isValid() else (-1 if step > 0 else n)
        model = self.table_model
        r = self.session.next_position(model.filter, model.order_by, model.descending, current, step,
                                       RowFilter(flag=ANY_FLAG))  # the session's index, not row by row
        if r is not None:
            self.select_row(r)
        return r
