"""The Review page's export (saying what was written) and its recent sessions (the Review menu).

A mixin of `ReviewView` (app/gui/review/view.py), which owns the widgets and the session these use.
"""

from __future__ import annotations

from pathlib import Path

from app.gui.actions import Action
from app.review.session import RowFilter

__all__ = ["ExportMixin"]


class ExportMixin:
    # ================================================================== export + dialogs
    def export(self, path: str | Path, fmt: str | None = None) -> Path:
        """Export the table as shown (filter and sort) to CSV, JSON or Parquet, with verdicts and notes.

        Parquet is `app.review.export.export_parquet`, the writer behind `qmf batch --parquet`: one
        results schema (app/review/parquet.py) for both. It needs pyarrow (the `distributed` extra)."""
        from app.review.export import export_csv, export_json, export_parquet

        if self.session is None:
            raise ValueError("no review session is open: open a folder, manifest or session first")
        fmt = fmt or Path(path).suffix.lower().lstrip(".")
        fn = {"json": export_json, "parquet": export_parquet}.get(fmt, export_csv)
        return fn(self.session, path, self.current_filter(), self.table_model.order_by, self.table_model.descending)

    @staticmethod
    def export_problem(fmt: str) -> str | None:
        """Why ``fmt`` cannot be exported on this install (one line saying what to install), or None.
        Asked before the file dialog, so a missing pyarrow is said at once, not after choosing a file."""
        if fmt != "parquet":
            return None
        from app.review.parquet import MissingExtraError, require_pyarrow

        try:
            require_pyarrow("Export as Parquet")
        except MissingExtraError as exc:
            return str(exc)
        return None

    def export_refused(self, text: str) -> None:
        self.message_bar.show_message(text)
        self.say(text, 10_000)

    def export_chosen(self, path: Path | None, fmt: str) -> str:
        """Export and say what was written (where, how many rows, whether the filter applied); returns that."""
        try:
            if self.session is None or path is None:
                raise ValueError("no review session is open: open a folder, manifest or session first")
            written = self.export(path, fmt)
        except (OSError, ValueError) as exc:
            text = f"Export failed: {exc}"
            self.message_bar.show_message(text)
            return text
        shown, total = self.session.count(self.current_filter()), self.session.pair_count()
        which = (f"{shown} of {total} pairs (the filter applied)" if self.current_filter() != RowFilter()
                 else f"all {total} pairs")
        text = f"Exported {which} to {written}"
        self.message_bar.show_message(text)
        self.say(text, 10_000)
        return text

    def _export_chosen(self, path: Path | None, fmt: str) -> None:
        self.export_chosen(path, fmt)

    def export_csv_dialog(self) -> None:
        self.session_bar.export_dialog("csv")

    def export_parquet_dialog(self) -> None:
        self.session_bar.export_dialog("parquet")

    def say(self, text: str, ms: int = 8000) -> None:
        self.statusMessage.emit(text, ms)

    # ================================================================== recent sessions (menus)
    def recent_session_actions(self) -> list[Action]:
        paths = self.state.recent_sessions()
        if not paths:
            return [Action("(no review sessions yet)", enabled=False)]
        return [Action(f"&{i} {p.name}" if i < 10 else p.name, lambda p=p: self._guard(lambda: self._reopen(p)),
                       tip=str(p)) for i, p in enumerate(paths, start=1)]

    def reopen_last_session(self) -> None:
        paths = self.state.recent_sessions()
        if not paths:
            self.say("No review session opened yet.")
            return
        self._guard(lambda: self._reopen(paths[0]))

    def _reopen(self, path: Path) -> None:
        if self.running:
            raise ValueError("a run is going on: pause or cancel it before opening another session")
        self.open_session(path)
