"""A Qt table model over a review session's SQLite file, lazy by construction.

Nothing is copied into widgets: the model knows the row count under the current filter and fetches
rows a page at a time by position as the view asks for them, keeping a few pages cached. Sorting and
filtering are the session's (an index per column, counts per filter group, each page found by keyset
from the nearest known row: app/review/session_paging.py) followed by a reset, so a session of a
million pairs costs the same to show as one of a hundred.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor

from app.review.session import ReviewRow, ReviewSession, RowFilter

__all__ = ["CellPainter", "ReviewTableModel", "VerdictDelegate", "pairs_table", "parse_verdict_text", "verdict_text"]

Index = QModelIndex | QPersistentModelIndex
RELABEL_PREFIX = "relabel → "


def verdict_text(verdict: str | None, relabel: str | None) -> str:
    if verdict == "relabel":
        return f"{RELABEL_PREFIX}{relabel}"
    return verdict or ""


def parse_verdict_text(text: str) -> tuple[str | None, str | None]:
    """"accept" -> ("accept", None); "relabel → cat" or "relabel:cat" -> ("relabel", "cat"); "" -> (None, None)."""
    text = (text or "").strip()
    if not text:
        return None, None
    for prefix in (RELABEL_PREFIX, "relabel:", "relabel "):
        if text.startswith(prefix):
            return "relabel", text[len(prefix):].strip()
    return text, None


# A repaint calls data() for every visible cell and ~7 roles (as plain ints) and flags() once per
# cell: ~3,000 calls for a screenful. Everything they compare with or return is made once here,
# since building a Qt enum value or flag in Python costs microseconds each time.
_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_EDIT = int(Qt.ItemDataRole.EditRole)
_USER = int(Qt.ItemDataRole.UserRole)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
_ALIGNMENT = int(Qt.ItemDataRole.TextAlignmentRole)
_FOREGROUND = int(Qt.ItemDataRole.ForegroundRole)
_ROLES = frozenset({_DISPLAY, _EDIT, _USER, _TOOLTIP, _ALIGNMENT, _FOREGROUND})  # the roles data() answers
_RIGHT_ALIGNED = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
_READ_ONLY_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
_EDITABLE_FLAGS = _READ_ONLY_FLAGS | Qt.ItemFlag.ItemIsEditable
_HORIZONTAL = Qt.Orientation.Horizontal
_ERROR_BRUSH = QBrush(QColor(200, 40, 40))
_CORRECT_BRUSH = QBrush(QColor(30, 140, 60))


class ReviewTableModel(QAbstractTableModel):
    """Rows of a :class:`ReviewSession`; verdict and note cells are editable and saved at once."""

    # A run's refresh announces at most this many changed rows per event-loop turn, the next ones
    # ANNOUNCE_MS later: a screenful of rows whose results came in together is drawn in a few short
    # turns (~0.2 ms of drawing a row) rather than one long one.
    ANNOUNCE_ROWS = 12
    ANNOUNCE_MS = 1
    PAGE = 200  # rows cached per page (MAX_PAGES pages, least recently used dropped)
    FETCH = 50  # rows read per query: a screenful and some
    MAX_PAGES = 16
    verdictEdited = Signal(str)  # pair id

    def __init__(self, parent: Any = None):
        super().__init__(parent)
        self.session: ReviewSession | None = None
        self.filter = RowFilter()
        self.order_by = "index"
        self.descending = False
        self._count = 0
        # pages of rows by position; an entry is None where only part of a page was read (refresh)
        self._pages: OrderedDict[int, list[ReviewRow | None]] = OrderedDict()
        self._texts: dict[int, tuple[ReviewRow, tuple[str, ...]]] = {}  # id(row) -> (row, each column's text)
        self.columns: list[tuple[str, str]] = []
        self._editable_columns: frozenset[int] = frozenset()
        self._right_aligned_columns: frozenset[int] = frozenset()
        # (pair id, verdict, relabel, note or None to keep it) -> writes it; the page's undoable writer.
        # None: the model writes to the session itself.
        self.write_verdict: Any = None
        self._unannounced: list[int] = []  # changed rows a refresh has not announced yet
        self._announce_timer = QTimer(self, singleShot=True, interval=self.ANNOUNCE_MS,
                                      timeout=self._announce_next)

    # ------------------------------------------------------------------ setup
    def set_session(self, session: ReviewSession | None) -> None:
        self.beginResetModel()
        self.session = session
        # what a reviewer judges first, then the numbers (which may scroll off to the right)
        self.columns = [("id", "id"), ("label", "label"), ("prediction", "prediction"), ("correct", "correct"),
                        ("flags", "flags"), ("verdict", "verdict"), ("note", "note"), ("status", "status"),
                        ("probability", "fused prob.")]
        if session is not None:
            for m in session.modality_names:
                self.columns += [(f"{m}.quality", f"{m} quality"), (f"{m}.share", f"{m} share")]
        keys = [k for k, _ in self.columns]
        self._editable_columns = frozenset(i for i, k in enumerate(keys) if k in ("verdict", "note"))
        self._right_aligned_columns = frozenset(i for i, k in enumerate(keys) if "." in k or k == "probability")
        self._forget_rows()
        self._count = session.count(self.filter) if session is not None else 0
        self.endResetModel()

    def set_filter(self, flt: RowFilter) -> None:
        self.filter = flt
        self.reset()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if not 0 <= column < len(self.columns):
            return
        key = self.columns[column][0]
        self.order_by = key
        self.descending = order == Qt.SortOrder.DescendingOrder
        self.reset()

    def _forget_rows(self) -> None:
        self._pages.clear()
        self._texts.clear()
        self._unannounced = []

    def reset(self) -> None:
        self.beginResetModel()
        self._forget_rows()
        self._count = self.session.count(self.filter) if self.session is not None else 0
        self.endResetModel()

    def refresh(self, visible: tuple[int, int] | None = None) -> None:
        """New results arrived: re-read the count and the visible rows, keeping the view's state
        when the count did not change (the common case when every pair is listed).

        `visible` (first, last row the view shows; last < first: none): only those rows are read
        again now, and only the ones that changed are announced, in runs of neighbouring rows, at
        most ANNOUNCE_ROWS in one event-loop turn. A run's refresh then repaints a few rows instead
        of every visible one. Without it every row is announced."""
        if self.session is None:
            return
        count = self.session.count(self.filter)
        if count != self._count:
            self._forget_rows()
            self.reset()
            return
        if not count:
            return
        if visible is None:
            self._forget_rows()
            self.dataChanged.emit(self.index(0, 0), self.index(count - 1, len(self.columns) - 1))
            return
        first, last = max(visible[0], 0), min(visible[1], count - 1)
        before = {n: self._cached(n) for n in range(first, last + 1)}
        waiting = {n for n in self._unannounced if first <= n <= last}  # changed at the last refresh, not yet shown
        # Only the rows in view are read again (one query for the window, not a page of PAGE rows
        # per page it touches); the other cached rows may be stale and are dropped.
        fresh = self.session.rows(self.filter, self.order_by, self.descending, limit=max(0, last - first + 1),
                                  offset=first) if last >= first else []
        self._forget_rows()
        for n, row in enumerate(fresh, start=first):
            page = self._pages.setdefault(n // self.PAGE, [None] * self.PAGE)
            page[n - (n // self.PAGE) * self.PAGE] = row
        self._unannounced = [n for n in range(first, last + 1) if n in waiting or self._cached(n) != before[n]]
        self._announce_next()

    def _announce_next(self) -> None:
        """Announce the next ANNOUNCE_ROWS changed rows, one signal per run of neighbours; the
        timer brings the rest in later turns."""
        changed, self._unannounced = self._unannounced[:self.ANNOUNCE_ROWS], self._unannounced[self.ANNOUNCE_ROWS:]
        last_column = len(self.columns) - 1
        count = self._count
        while changed:
            start = end = changed.pop(0)
            while changed and changed[0] == end + 1:
                end = changed.pop(0)
            if end < count:
                self.dataChanged.emit(self.index(start, 0), self.index(end, last_column))
        if self._unannounced:
            self._announce_timer.start()

    def _cached(self, row: int) -> ReviewRow | None:
        """The row as the view last got it (None when its page is not cached): no SQL."""
        rows = self._pages.get(row // self.PAGE)
        i = row - (row // self.PAGE) * self.PAGE
        return rows[i] if rows is not None and i < len(rows) else None

    # ------------------------------------------------------------------ rows
    def row_at(self, row: int) -> ReviewRow | None:
        if self.session is None or not 0 <= row < self._count:
            return None
        page = row // self.PAGE
        i = row - page * self.PAGE
        rows = self._pages.get(page)
        if rows is None or rows[i] is None:  # not read yet, or dropped by a refresh
            rows = self._read_chunk(page, i)
        elif next(reversed(self._pages)) != page:  # the most recent page already: no reordering per cell
            self._pages.move_to_end(page)
        return rows[i]

    def _read_chunk(self, page: int, i: int) -> list[ReviewRow | None]:
        """Read the FETCH rows around position `i` of `page` into it (a screenful or so: a click on a
        row out of view costs one small query, not a page's)."""
        rows = self._pages.get(page)
        if rows is None:
            rows = self._pages[page] = [None] * self.PAGE
            while len(self._pages) > self.MAX_PAGES:
                for old in self._pages.popitem(last=False)[1]:
                    if old is not None:
                        self._texts.pop(id(old), None)
        start = (i // self.FETCH) * self.FETCH
        fetched = self.session.rows(self.filter, self.order_by, self.descending, limit=self.FETCH,
                                    offset=page * self.PAGE + start)
        rows[start:start + len(fetched)] = fetched
        self._pages.move_to_end(page)
        return rows

    def _cell_text(self, row: ReviewRow, column: int) -> str:
        """The text of one cell, worked out once per row (a repaint asks for it again and again)."""
        cached = self._texts.get(id(row))
        if cached is None or cached[0] is not row:
            cached = (row, tuple(self._text(row, key) for key, _ in self.columns))
            self._texts[id(row)] = cached
        return cached[1][column]

    def row_texts(self, position: int) -> tuple[str, ...] | None:
        """Every cell text of the row at `position` (None: no row there). They fix all the row shows,
        colours included (the status and correct columns are among them): `PairsTable` keeps a
        row's picture under them."""
        row = self.row_at(position)
        if row is None:
            return None
        self._cell_text(row, 0)
        return self._texts[id(row)][1]

    def cached_row_of(self, pair_id: str) -> int | None:
        for page, rows in self._pages.items():
            for i, r in enumerate(rows):
                if r is not None and r.id == pair_id:
                    return page * self.PAGE + i
        return None

    # ------------------------------------------------------------------ Qt API
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else self._count

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = _DISPLAY) -> Any:
        # The row numbers' header asks for ~8 roles per row at every repaint: ints, not Qt enums.
        if role != _DISPLAY:
            return None
        if orientation == _HORIZONTAL:
            return self.columns[section][1] if 0 <= section < len(self.columns) else None
        return str(section + 1)

    def flags(self, index: Index) -> Qt.ItemFlag:
        return _EDITABLE_FLAGS if index.column() in self._editable_columns else _READ_ONLY_FLAGS

    def data(self, index: Index, role: int = _DISPLAY) -> Any:
        # Most roles a repaint asks for are not ours: answer them first, cheaply.
        if role not in _ROLES:
            return None
        column = index.column()
        row = self.row_at(index.row())  # None for an invalid index (row -1)
        if row is None or not 0 <= column < len(self.columns):
            return None
        if role == _DISPLAY or role == _EDIT:
            return self._cell_text(row, column)
        if role == _ALIGNMENT:
            return _RIGHT_ALIGNED if column in self._right_aligned_columns else None
        if role == _FOREGROUND:
            return self._foreground(row, column)
        if role == _USER:
            return row
        if row.error:  # the tooltip
            return row.error
        if self.columns[column][0] == "flags" and row.flags:
            return "\n".join(row.flags)
        return None

    def _foreground(self, row: ReviewRow, column: int) -> QBrush | None:
        """The cell's text colour when it is not the palette's: errors red, the correct column's mark."""
        if row.status == "error":
            return _ERROR_BRUSH
        if row.correct is not None and self.columns[column][0] == "correct":
            return _CORRECT_BRUSH if row.correct else _ERROR_BRUSH
        return None

    def cell_look(self, position: int, column: int) -> tuple[str, bool, QBrush | None] | None:
        """What `CellPainter` draws in one cell: its text, whether it is right-aligned, its colour
        (None: the palette's); None for a row that is not there. The same values `data()` gives."""
        row = self.row_at(position)
        if row is None or not 0 <= column < len(self.columns):
            return None
        return self._cell_text(row, column), column in self._right_aligned_columns, self._foreground(row, column)

    def row_looks(self, position: int) -> list[tuple[str, bool, QBrush | None]] | None:
        """`cell_look` of every column of the row at `position`, in column order (None: no row there)."""
        row = self.row_at(position)
        if row is None:
            return None
        texts = self.row_texts(position)
        right = self._right_aligned_columns
        return [(text, column in right, self._foreground(row, column)) for column, text in enumerate(texts)]

    @staticmethod
    def _text(row: ReviewRow, key: str) -> str:
        if key == "id":
            return row.id
        if key == "label":
            return row.label or ""
        if key == "prediction":
            return row.prediction or ""
        if key == "probability":
            return "" if row.probability is None else f"{row.probability:.3f}"
        if key == "correct":
            return "" if row.correct is None else ("✓" if row.correct else "✗")
        if key == "flags":
            return ", ".join(row.flags)
        if key == "verdict":
            return verdict_text(row.verdict, row.relabel)
        if key == "note":
            return row.note
        if key == "status":
            return row.status
        name, _, what = key.partition(".")
        value = row.modalities.get(name, {}).get(what)
        if value is None:
            return ""
        return f"{value:.1%}" if what == "share" else f"{value:.3f}"

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.EditRole or not index.isValid() or self.session is None:
            return False
        row = self.row_at(index.row())
        key = self.columns[index.column()][0]
        if row is None or key not in ("verdict", "note"):
            return False
        if key == "note":
            verdict, relabel, note = row.verdict, row.relabel, str(value)
        else:
            (verdict, relabel), note = parse_verdict_text(str(value)), row.note
        if self.write_verdict is not None:
            self.write_verdict(row.id, verdict, relabel, note)
        elif verdict is None:
            self.session.clear_verdict(row.id)
            self.session.set_verdict(row.id, note=note)
        else:
            self.session.set_verdict(row.id, verdict, relabel=relabel, note=note)
        row.verdict, row.relabel, row.note = verdict, relabel, note
        self._texts.pop(id(row), None)
        self.dataChanged.emit(index, index)
        self.verdictEdited.emit(row.id)
        return True

    def rows_as_tsv(self, rows: list[int]) -> str:
        """These rows (table order) as tab-separated text with a header line, as the table shows them."""
        def clean(text: str) -> str:
            return text.replace("\t", " ").replace("\n", " ")

        lines = ["\t".join(title for _, title in self.columns)]
        for r in sorted(rows):
            row = self.row_at(r)
            if row is not None:
                lines.append("\t".join(clean(self._text(row, key)) for key, _ in self.columns))
        return "\n".join(lines) + "\n"

    def update_row(self, pair_id: str) -> None:
        """Re-read one pair (after a verdict was set elsewhere) in the cache and repaint it."""
        if self.session is None:
            return
        fresh = self.session.row(pair_id)
        for page, rows in self._pages.items():
            for i, r in enumerate(rows):
                if r is not None and r.id == pair_id and fresh is not None:
                    rows[i] = fresh
                    n = page * self.PAGE + i
                    self.dataChanged.emit(self.index(n, 0), self.index(n, len(self.columns) - 1))
                    return


# the pairs table's painting and the view itself, importable from here as before
from app.gui.review.table_view import CellPainter, VerdictDelegate, pairs_table  # noqa: E402
