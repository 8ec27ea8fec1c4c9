"""Reading a session's rows: counts, windows, positions and single rows, over the listing's indexes.

`ReviewSession` takes these from `SessionRows`; they use its connection (`self.conn`), its input names
and the per-filter caches it keeps (dropped by `_fresh` after a write or another connection's commit).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import astuple
from typing import Any

from app.review import session_listing, session_paging, session_queries
from app.review.session_schema import ReviewRow, RowFilter


class SessionRows:
    """The row-reading half of `ReviewSession` (app/review/session.py)."""

    SORT_KEYS = session_queries.SORT_KEYS

    def count(self, flt: RowFilter | None = None) -> int:
        """Pairs the filter lets through: a sum over the listing's groups (no pair is read), or one walk
        of the id index for a search; remembered until the next write."""
        self._fresh()
        key = self._filter_key(flt)
        if key not in self._counts:
            cf = self._compiled(flt)
            matches = self._search_matches(flt)
            self._counts[key] = session_paging.count(self.conn, cf) if matches is None else len(matches)
        return self._counts[key]

    def _search_matches(self, flt: RowFilter | None, hints: bool = True) -> list[int] | None:
        """A search filter's pairs when there are few enough to list (session_paging.search_matches)."""
        cf = self._compiled(flt)
        if cf.search is None or cf.empty:
            return None
        key = self._filter_key(flt)
        if key not in self._matches:
            self._matches[key] = session_paging.search_matches(self.conn, cf, hints)
        return self._matches[key]

    def rows(self, flt: RowFilter | None = None, order_by: str = "index", descending: bool = False,
             limit: int = -1, offset: int = 0) -> list[ReviewRow]:
        """A window of rows, filtered and sorted by the listing's indexes (session_paging.py): a window
        costs its own rows wherever it is, the table never loads them all.

        Order: pairs with a value by (value, index), then those without one by index; ``descending``
        reverses each part (pairs without a value stay last)."""
        names = self.modality_names
        column = session_listing.column_for(order_by, names)
        window = self._windowed(flt, column, descending, lambda pager: pager.window(offset, limit))
        with self._damage_is_session_error():
            return session_queries.rows_by_idx(self.conn, names, window)

    def _windowed(self, flt: RowFilter | None, column: str, descending: bool,
                  read: Callable[[session_paging.Pager], Any]) -> Any:
        """``read(pager)`` with the view's pager (cached per filter and order until the next write)."""
        self._fresh()
        key = (self._filter_key(flt), column, descending)
        try:
            pager = self._pagers.get(key)
            if pager is None:
                pager = self._pagers[key] = self._pager(flt, column, descending, hints=True)
                while len(self._pagers) > 16:
                    self._pagers.popitem(last=False)
            else:
                self._pagers.move_to_end(key)
            return read(pager)
        except sqlite3.OperationalError as exc:
            if not str(exc).startswith("no such index"):
                raise
            # a bulk load (here or in another process) has dropped the sort indexes for now
            pager = self._pagers[key] = self._pager(flt, column, descending, hints=False)
            return read(pager)

    def next_position(self, flt: RowFilter | None, order_by: str, descending: bool, start: int, step: int,
                      wanted: RowFilter) -> int | None:
        """The position of the first row after ``start`` (step +1) or before it (-1) in this view
        (``rows(flt, order_by, descending)``) that ``wanted`` lets through too, or None: what N /
        Shift+N jump to. Reads the view's index in chunks of pair indexes, no rows."""
        total = self.count(flt)
        column = session_listing.column_for(order_by, self.modality_names)
        wanted_cf = self._compiled(wanted)
        if wanted_cf.empty:
            return None
        if wanted_cf.groups is None and wanted_cf.search is None:
            pos = start + step
            return pos if 0 <= pos < total else None
        groups = set(wanted_cf.groups or ())
        chunk = 2000  # doubled each round (to 64,000): a near hit costs little, a long walk few queries
        pos = start + step
        while 0 <= pos < total:
            lo, hi = (pos, min(total, pos + chunk)) if step > 0 else (max(0, pos - chunk + 1), pos + 1)
            keys = self._windowed(flt, column, descending, lambda pager, lo=lo, n=hi - lo: pager.window_groups(lo, n))
            order = range(len(keys)) if step > 0 else range(len(keys) - 1, -1, -1)
            if wanted_cf.search is not None or any(g is None for _, g in keys):  # a search: ask the listing
                hits = set(self._keeps([i for i, _ in keys], wanted))
                found = next((lo + i for i in order if keys[i][0] in hits), None)
            else:
                found = next((lo + i for i in order if keys[i][1] in groups), None)
            if found is not None:
                return found
            pos = hi if step > 0 else lo - 1
            chunk = min(64_000, chunk * 2)
        return None

    def _keeps(self, idxs: list[int], flt: RowFilter) -> list[int]:
        clauses, params = self._compiled(flt).where()
        out: list[int] = []
        for start in range(0, len(idxs), 500):
            chunk = idxs[start:start + 500]
            out += [r[0] for r in self.conn.execute(
                f"SELECT idx FROM listing WHERE idx IN ({','.join('?' * len(chunk))})"
                + "".join(f" AND {c}" for c in clauses), [*chunk, *params])]
        return out

    def _pager(self, flt: RowFilter | None, column: str, descending: bool, hints: bool) -> session_paging.Pager:
        return session_paging.Pager(self.conn, self._compiled(flt), column, descending,
                                    indexed=column in session_listing.sort_columns(self.modality_names),
                                    nullable=column not in ("idx", "id", "status"), total=self.count(flt),
                                    pairs=self.count(), hints=hints, matches=self._search_matches(flt, hints))

    def row(self, pair_id: str) -> ReviewRow | None:
        with self._damage_is_session_error():
            return session_queries.row_by_id(self.conn, self.modality_names, pair_id)

    def shows(self, pair_id: str, flt: RowFilter | None = None) -> bool:
        """Whether the filter lets this pair through (the table lists it)."""
        self._fresh()
        clauses, params = self._compiled(flt).where()
        return self.conn.execute("SELECT 1 FROM listing WHERE id = ?" + "".join(f" AND {c}" for c in clauses),
                                 [pair_id, *params]).fetchone() is not None

    def _fresh(self) -> None:
        """Drop cached counts, filters and pagers when the file changed: a write through this session
        or a commit by another connection (the run's process; ``PRAGMA data_version`` tells)."""
        state = (self._writes, self.conn.execute("PRAGMA data_version").fetchone()[0])
        if state != self._state:
            self._state = state
            self._counts.clear()
            self._filters.clear()
            self._matches.clear()
            self._pagers.clear()

    @staticmethod
    def _filter_key(flt: RowFilter | None) -> tuple[Any, ...]:
        return astuple(flt) if flt is not None else astuple(RowFilter())

    def _compiled(self, flt: RowFilter | None) -> session_paging.CompiledFilter:
        key = self._filter_key(flt)
        if key not in self._filters:
            self._filters[key] = session_paging.compile_filter(self.conn, flt)
        return self._filters[key]
