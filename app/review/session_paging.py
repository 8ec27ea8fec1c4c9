"""Windows of the Review table over the listing (session_listing.py) without reading the pairs before
them: filters become a set of listing groups, counts are sums over those groups, and a window at any
offset is found by keyset from the nearest row whose position is already known.

The order of a sort key ``c`` (ascending): the pairs with a value, by ``(c, idx)``, then the pairs
without one (NULL), by ``idx``. Descending is the exact reverse of each part, NULLs still last.
Each part is one range of the index ``(c, idx, grp)``, walked forwards or backwards; the filter's
group test reads ``grp`` from the same index entry, so a page costs the rows it returns plus the
filtered-out rows between them, never the rows before it. Where the filter keeps so few pairs that
walking would pass many others, those pairs are read by group (``listing_by_grp``) and sorted.

``Pager`` remembers, for one filter and order, the key of every row at the edge of a window it
returned (its anchors); a window is read from the nearest anchor, the start or the end, so scrolling
and jumping to the last page cost a page each. A pager is valid for one state of the file: the
session drops its pagers and counts when anything is written.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.review import session_listing
from app.review.session_schema import ANY_FLAG, NO_FLAG, RowFilter

__all__ = ["SEARCH_LISTED", "CompiledFilter", "Pager", "compile_filter", "count", "group_conditions", "search_matches"]

# Reading and sorting the pairs of a filter costs about this many index steps per pair (each is a
# look-up in the table) against one step per pair a walk passes (the index holds grp); measured on the
# million-pair benchmark. Below it, a filtered page reads its pairs by group and sorts them.
_SORT_COST = 50


@dataclass(frozen=True)
class CompiledFilter:
    """A RowFilter as listing SQL: ``groups`` the listing groups it keeps (None: every group),
    ``group_count`` the pairs in them (the filter's count when it has no search), ``search`` the LIKE
    pattern on the pair id (None: none)."""

    groups: tuple[int, ...] | None
    group_count: int
    search: str | None

    @property
    def empty(self) -> bool:
        return self.groups is not None and not self.groups

    def where(self, alias: str = "") -> tuple[list[str], list[Any]]:
        a = f"{alias}." if alias else ""
        clauses: list[str] = []
        params: list[Any] = []
        if self.groups is not None:
            clauses.append(f"{a}grp IN ({','.join(str(g) for g in self.groups) or 'NULL'})")
        if self.search is not None:
            clauses.append(f"{a}id LIKE ? ESCAPE '\\'")
            params.append(self.search)
        return clauses, params


def group_conditions(flt: RowFilter | None) -> tuple[list[str], list[Any]]:
    """The filter's conditions on the group columns (the same names in listing and listing_groups)."""
    if flt is None:
        return [], []
    clauses: list[str] = []
    params: list[Any] = []
    if flt.flag == ANY_FLAG:
        clauses.append("flags IS NOT NULL")
    elif flt.flag == NO_FLAG:  # a result without flags (a pending pair has no result)
        clauses.append("flags IS NULL AND status != 'pending'")
    elif flt.flag:
        clauses.append("instr(flags, ?) > 0")
        params.append(f"|{flt.flag}|")
    if flt.label:
        clauses.append("label = ?")
        params.append(flt.label)
    if flt.prediction:
        clauses.append("prediction = ?")
        params.append(flt.prediction)
    if flt.correctness == "correct":
        clauses.append("correct = 1")
    elif flt.correctness == "wrong":
        clauses.append("correct = 0")
    elif flt.correctness == "unlabelled":
        clauses.append("label IS NULL")
    if flt.status == "done":
        clauses.append("status != 'pending'")
    elif flt.status in ("pending", "ok", "error"):
        clauses.append("status = ?")
        params.append(flt.status)
    if flt.verdict == "none":
        clauses.append("verdict IS NULL")
    elif flt.verdict:
        clauses.append("verdict = ?")
        params.append(flt.verdict)
    return clauses, params


def compile_filter(conn: sqlite3.Connection, flt: RowFilter | None) -> CompiledFilter:
    clauses, params = group_conditions(flt)
    search = None
    if flt is not None and flt.search:
        escaped = flt.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        search = f"%{escaped}%"
    where = " AND ".join(["n > 0", *clauses])
    rows = conn.execute(f"SELECT grp, n FROM listing_groups WHERE {where}", params).fetchall()
    groups = tuple(sorted(g for g, _ in rows)) if clauses else None
    return CompiledFilter(groups, sum(n for _, n in rows), search)


# A search keeping at most this many pairs is listed once (one walk of the id index) and its pages are
# slices of that list; a larger one (dense in every order) is walked like any filter.
SEARCH_LISTED = 50_000


def count(conn: sqlite3.Connection, cf: CompiledFilter) -> int:
    """Pairs the filter keeps: a sum over groups, or (with a search) one walk of the id index."""
    if cf.search is None or cf.empty:
        return cf.group_count
    clauses, params = cf.where()
    return conn.execute(f"SELECT COUNT(*) FROM listing INDEXED BY {session_listing.index_name('id')} "
                        f"WHERE {' AND '.join(clauses)}", params).fetchone()[0]


def search_matches(conn: sqlite3.Connection, cf: CompiledFilter, hints: bool = True) -> list[int] | None:
    """The pairs a search keeps (source order), from one walk of the id index; None when there are more
    than SEARCH_LISTED (then only their count is worth keeping: ``count``)."""
    clauses, params = cf.where()
    hint = f" INDEXED BY {session_listing.index_name('id')}" if hints else ""
    found: list[int] = []
    for (idx,) in conn.execute(f"SELECT idx FROM listing{hint} WHERE {' AND '.join(clauses)}", params):
        found.append(idx)
        if len(found) > SEARCH_LISTED:
            return None
    found.sort()
    return found


class Pager:
    """Windows of one filter in one order (see the module's docstring). ``total``: the filter's count;
    ``pairs``: every pair in the session (how far a walk goes to fill a page)."""

    def __init__(self, conn: sqlite3.Connection, cf: CompiledFilter, column: str, descending: bool,
                 indexed: bool, nullable: bool, total: int, pairs: int, hints: bool = True,
                 matches: list[int] | None = None):
        self.conn, self.cf, self.col, self.desc = conn, cf, column, descending
        self.indexed, self.total, self.pairs = indexed and hints, total, pairs
        self.hints = hints  # False while a bulk load has dropped the sort indexes: SQLite plans alone
        # a search's pairs (search_matches), sorted here once: its windows are slices
        self.listed = None if matches is None else self._sorted(matches)
        self.nulls = self._count_nulls() if nullable and total and self.listed is None else 0
        # per part (0: with a value, 1: NULL): offset in the part -> (value, idx) of the row there
        self.anchors: tuple[dict[int, tuple[Any, int]], dict[int, tuple[Any, int]]] = ({}, {})

    # ------------------------------------------------------------------ public
    def window(self, offset: int, limit: int) -> list[int]:
        """The pair indexes at positions offset .. offset+limit-1 (fewer at the end)."""
        return [r[0] for r in self.window_groups(offset, limit)]

    def window_groups(self, offset: int, limit: int) -> list[tuple[int, int | None]]:
        """``(idx, grp)`` of the pairs at positions offset .. offset+limit-1 (grp None for a listed search)."""
        if limit < 0:
            limit = self.total
        offset = max(0, offset)
        if self.listed is not None:
            return [(i, None) for i in self.listed[offset:offset + limit]]
        n_valued = self.total - self.nulls
        out: list[tuple[int, int | None]] = []
        if offset < n_valued and limit > 0:
            out += self._part(0, n_valued, offset, min(limit, n_valued - offset))
        rest = limit - len(out)
        if rest > 0 and self.nulls:
            start = max(0, offset - n_valued)
            if start < self.nulls:
                out += self._part(1, self.nulls, start, min(rest, self.nulls - start))
        return out

    def _sorted(self, idxs: list[int]) -> list[int]:
        if self.col == "idx":
            return idxs[::-1] if self.desc else list(idxs)
        values: dict[int, Any] = {}
        for start in range(0, len(idxs), 500):
            chunk = idxs[start:start + 500]
            values.update(self.conn.execute(f"SELECT idx, {self.col} FROM listing WHERE idx IN "
                                            f"({','.join('?' * len(chunk))})", chunk).fetchall())
        # SQLite's order: TEXT by its UTF-8 bytes, which is Python's code-point order
        valued = sorted(((v, i) for i, v in values.items() if v is not None), reverse=self.desc)
        nulls = sorted((i for i, v in values.items() if v is None), reverse=self.desc)
        return [i for _, i in valued] + nulls

    # ------------------------------------------------------------------ parts
    def _count_nulls(self) -> int:
        if self.cf.empty:
            return 0
        if self.cf.search is None:  # a sum over the filter's groups
            groups = "" if self.cf.groups is None else f" AND grp IN ({','.join(map(str, self.cf.groups))})"
            if self.col in session_listing.GROUP_COLUMNS:
                return self.conn.execute(f"SELECT COALESCE(SUM(n), 0) FROM listing_groups WHERE n > 0 AND "
                                         f"{self.col} IS NULL{groups}").fetchone()[0]
            return self.conn.execute(f"SELECT COALESCE(SUM(n - nn_{self.col}), 0) FROM listing_groups WHERE n > 0"
                                     f"{groups}").fetchone()[0]
        clauses, params = self.cf.where()
        hint = f" INDEXED BY {session_listing.index_name(self.col)}" if self.indexed else ""
        return self.conn.execute(f"SELECT COUNT(*) FROM listing{hint} WHERE {self.col} IS NULL"
                                 + "".join(f" AND {c}" for c in clauses), params).fetchone()[0]

    def _part(self, part: int, size: int, offset: int, limit: int) -> list[tuple[int, int | None]]:
        """``limit`` rows of one part from ``offset``, read from the cheapest known starting point."""
        anchors = self.anchors[part]
        # (cost in rows skipped, start key or None, reading forwards, rows to skip)
        plans: list[tuple[int, tuple[Any, int] | None, bool, int]] = [(offset, None, True, offset)]
        end_skip = size - offset - limit
        plans.append((end_skip, None, False, end_skip))
        for at, key in anchors.items():
            if at < offset:
                plans.append((offset - at - 1, key, True, offset - at - 1))
            elif at >= offset + limit:
                plans.append((at - offset - limit, key, False, at - offset - limit))
        _, key, forwards, skip = min(plans, key=lambda p: p[0])
        rows = self._read(part, key, forwards, skip, limit)
        if not forwards:
            rows.reverse()
        if rows:
            anchors[offset] = (rows[0][1], rows[0][0])
            anchors[offset + len(rows) - 1] = (rows[-1][1], rows[-1][0])
        return [(r[0], r[2]) for r in rows]

    def _read(self, part: int, key: tuple[Any, int] | None, forwards: bool, skip: int,
              limit: int) -> list[tuple[int, Any, int]]:
        """(idx, value, grp) rows of a part after ``key`` (in reading direction), skipping ``skip``."""
        down = self.desc == forwards  # walking the index from high to low
        if self.col == "idx" or part == 1:
            cond = [] if self.col == "idx" else [f"{self.col} IS NULL"]
            if key is not None:
                cond.append(f"idx {'<' if down else '>'} {int(key[1])}")
            return self._query(cond, [], "idx", down, skip, limit)
        base = [f"{self.col} IS NOT NULL"]
        if key is None:
            return self._query(base, [], f"{self.col}, idx", down, skip, limit)
        # after (v, i): first the rows with value v past i, then the rows past v (two index ranges)
        value, idx = key
        same = self._query([f"{self.col} = ?", f"idx {'<' if down else '>'} {int(idx)}"], [value],
                           f"{self.col}, idx", down, skip, limit)
        if len(same) == limit:
            return same
        if not same and skip:
            clauses, params = self.cf.where()
            n_same = self.conn.execute(
                f"SELECT COUNT(*) FROM listing{self._hint(False)} WHERE {self.col} = ? AND idx {'<' if down else '>'} "
                f"{int(idx)}" + "".join(f" AND {c}" for c in clauses), [value, *params]).fetchone()[0]
            skip = max(0, skip - n_same)
        else:
            skip = 0
        return same + self._query([*base, f"{self.col} {'<' if down else '>'} ?"], [value], f"{self.col}, idx",
                                  down, skip, limit - len(same))

    def _hint(self, sort_first: bool) -> str:
        if not self.hints:
            return ""
        if sort_first:
            return " INDEXED BY listing_by_grp"
        if self.indexed or self.col == "idx":
            return f" INDEXED BY {session_listing.index_name(self.col)}"
        return ""

    def _query(self, cond: Sequence[str], params: Sequence[Any], order: str, down: bool, skip: int,
               limit: int) -> list[tuple[int, Any, int]]:
        if self.cf.empty or limit <= 0:
            return []
        clauses, fparams = self.cf.where()
        # a filter that keeps few pairs: read them by group and sort, rather than walk past the rest
        walk_cost = (skip + limit) * self.pairs // max(1, self.total)
        sort_first = self.cf.groups is not None and self.total * _SORT_COST < walk_cost
        direction = " DESC" if down else ""
        order_sql = ", ".join(f"{c.strip()}{direction}" for c in order.split(","))
        value = self.col if self.col != "idx" else "NULL"
        sql = (f"SELECT idx, {value}, grp FROM listing{self._hint(sort_first)} WHERE "
               + (" AND ".join([*cond, *clauses]) or "1") + f" ORDER BY {order_sql} LIMIT ? OFFSET ?")
        return self.conn.execute(sql, [*params, *fparams, limit, skip]).fetchall()
