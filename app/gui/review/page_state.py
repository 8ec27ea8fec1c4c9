"""What the Review page remembers per user (QSettings): the splitter between table and detail, the
table's column widths and sort, and the recently opened review sessions.

Column widths are kept per column count, since sessions whose models have other inputs have other
columns. Without a settings object (tests that build the page alone) nothing is remembered.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtWidgets import QHeaderView, QSplitter, QTableView

__all__ = ["RECENT_MAX", "ReviewPageState", "default_column_width"]

RECENT_MAX = 8
TABLE_SHARE = 0.5  # of the Pairs tab's width on first start: the judging columns fit at 1366 px, the numbers scroll
_WIDTHS = {"id": 110, "label": 50, "prediction": 70, "probability": 78, "correct": 56, "flags": 120,
           "verdict": 80, "note": 100, "status": 50}


def default_column_width(key: str) -> int:
    """A column's first width: enough for its header and usual contents."""
    if key in _WIDTHS:
        return _WIDTHS[key]
    return 84 if key.endswith(".quality") else 72  # "<input>.share"


class ReviewPageState:
    def __init__(self, settings: QSettings | None):
        self.settings = settings

    # --- splitter -----------------------------------------------------------------------------------
    def restore_splitter(self, splitter: QSplitter, width: int) -> None:
        state = self.settings.value("review/splitter") if self.settings is not None else None
        if not (isinstance(state, QByteArray) and splitter.restoreState(state)):
            table = int(width * TABLE_SHARE)
            splitter.setSizes([table, max(1, width - table)])

    def save_splitter(self, splitter: QSplitter) -> None:
        if self.settings is not None:
            self.settings.setValue("review/splitter", splitter.saveState())

    # --- columns and sort ---------------------------------------------------------------------------
    def restore_columns(self, table: QTableView, keys: list[str]) -> None:
        header = table.horizontalHeader()
        state = self.settings.value(f"review/header/{len(keys)}") if self.settings is not None else None
        if isinstance(state, QByteArray) and header.restoreState(state) and header.count() == len(keys):
            header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
            section = header.sortIndicatorSection()
            if 0 <= section < len(keys):
                table.sortByColumn(section, header.sortIndicatorOrder())
            return
        for i, key in enumerate(keys):
            header.resizeSection(i, default_column_width(key))
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)

    def save_columns(self, table: QTableView) -> None:
        if self.settings is not None:
            header = table.horizontalHeader()
            self.settings.setValue(f"review/header/{header.count()}", header.saveState())

    # --- recent sessions ----------------------------------------------------------------------------
    def recent_sessions(self) -> list[Path]:
        if self.settings is None:
            return []
        value = self.settings.value("review/recent_sessions") or []
        paths = [value] if isinstance(value, str) else list(value)
        return [Path(p) for p in paths if p]

    def add_recent(self, path: Path) -> None:
        if self.settings is None:
            return
        path = Path(path).absolute()
        paths = [path, *[p for p in self.recent_sessions() if p != path]][:RECENT_MAX]
        self.settings.setValue("review/recent_sessions", [str(p) for p in paths])
