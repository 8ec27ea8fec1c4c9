"""The listing: one row per pair with every column the Review table shows, sorts or filters by, kept
in step with the session's own tables by SQLite triggers (format 3).

Why it exists: the truth of a session is spread over ``pairs``, ``results``, ``modality_results`` and
``verdicts``; sorting or filtering the four-way join cannot use an index, so each page of a million-row
session cost seconds. ``listing`` holds the same values on one row per pair, so every sortable
column has its own index, and ``listing_groups`` counts the pairs of each combination of the filter
columns (status, label, prediction, correct, flags, verdict), so a count, the summary and the filter
menus read a few hundred group rows instead of the pairs. Each listing row carries its group's id
(``grp``) and every sort index ends in ``grp``: a filtered page walks one index without touching the
table (``session_paging.py``).

Nothing writes the listing but its triggers, so every writer (the batch runner's process, the app,
``qmf review import``, an older helper's plain SQL) keeps it true; ``rebuild`` makes it from the
base tables (the format-2 upgrade, and a read-only format-2 file, which gets it as a TEMP table).
A large write does the triggers' work set by set instead, inside its own transaction, which drops
the triggers it would fire and makes them again before it commits (a session's first pairs:
`drop_pair_triggers` / `list_first_pairs`; results: `unlist_results` / `list_results`), so outside
that transaction they are always there.

Stored differently from the base tables, on purpose: ``flags`` and ``note`` are NULL rather than
``''`` when empty, so sorting by them puts the pairs that have some first in both directions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

__all__ = ["GROUP_COLUMNS", "INDEXED_SORT", "MODALITY_FIELDS", "SET_RESULTS", "column_for", "create",
           "create_indexes", "drop_indexes", "has_listing", "indexes_complete", "index_name", "list_results",
           "rebuild", "sort_columns", "unlist_results", "value_columns"]

# The filter columns; one listing_groups row per combination that occurs.
GROUP_COLUMNS = ("status", "label", "prediction", "correct", "flags", "verdict")
MODALITY_FIELDS = ("label", "probability", "energy", "quality", "share")
# Sort keys (ReviewSession.SORT_KEYS) -> listing column; "index" is the row id itself.
_SIMPLE = {"index": "idx", "id": "id", "label": "label", "prediction": "prediction", "probability": "probability",
           "correct": "correct", "flags": "flags", "verdict": "verdict", "note": "note", "status": "status",
           "seconds": "seconds"}
# The columns that get an index: every column the Review table shows (it sorts by any of them).
INDEXED_SORT = ("id", "label", "prediction", "probability", "correct", "flags", "verdict", "note", "status")
INDEXED_MODALITY = ("quality", "share")


def _lit(text: str) -> str:
    """A SQL string literal (modality names come from a model's manifest: any text)."""
    return "'" + text.replace("'", "''") + "'"


def column_for(key: str, modality_names: Sequence[str]) -> str:
    """The listing column of a sort key: one of SORT_KEYS or "<modality>.<label|probability|energy|quality|share>"."""
    if key in _SIMPLE:
        return _SIMPLE[key]
    name, _, what = key.partition(".")
    if name in modality_names and what in MODALITY_FIELDS:
        return f"m{list(modality_names).index(name)}_{what}"
    raise ValueError(f"cannot sort by {key!r}")


def sort_columns(modality_names: Sequence[str]) -> list[str]:
    """The listing columns that have an index (besides idx)."""
    return [*INDEXED_SORT, *(f"m{i}_{w}" for i in range(len(modality_names)) for w in INDEXED_MODALITY)]


def index_name(column: str) -> str:
    return f"listing_by_{column}"


def _modality_columns(n: int) -> list[str]:
    return [f"m{i}_{w}" for i in range(n) for w in MODALITY_FIELDS]


def value_columns(n_modalities: int) -> list[str]:
    """The sortable columns that may be NULL and are not group columns: listing_groups counts, per
    group, the pairs that have a value in each (``nn_<column>``), so where a sort's NULLs start is a
    sum over groups too."""
    return ["probability", "seconds", "note", *_modality_columns(n_modalities)]


def _modality_join(names: Sequence[str], pair_idx: str) -> tuple[str, str, str]:
    """The listing's modality columns (", m0_label, ..."), their values ("m0.label", ...) and the joins
    that give them for the pair ``pair_idx`` (one ``?`` per modality name, in order)."""
    cols = "".join(f", {c}" for c in _modality_columns(len(names)))
    vals = "".join(f", m{i}.{w}" for i in range(len(names)) for w in MODALITY_FIELDS)
    joins = "".join(f" LEFT JOIN main.modality_results m{i} ON m{i}.pair_idx = {pair_idx} AND m{i}.modality = ?"
                    for i in range(len(names)))
    return cols, vals, joins


def _tables_sql(n_modalities: int, schema: str = "main") -> list[str]:
    mods = "".join(f", {c} {'TEXT' if c.endswith('_label') else 'REAL'}" for c in _modality_columns(n_modalities))
    return [
        f"CREATE TABLE {schema}.listing (idx INTEGER PRIMARY KEY, id TEXT NOT NULL, label TEXT, "
        "status TEXT NOT NULL DEFAULT 'pending', error TEXT, prediction TEXT, probability REAL, correct INTEGER, "
        "flags TEXT, seconds REAL, verdict TEXT, relabel TEXT, note TEXT, grp INTEGER" + mods + ")",
        f"CREATE TABLE {schema}.listing_groups (grp INTEGER PRIMARY KEY, gkey TEXT NOT NULL UNIQUE, status TEXT, "
        "label TEXT, prediction TEXT, correct INTEGER, flags TEXT, verdict TEXT, n INTEGER NOT NULL"
        + "".join(f", nn_{c} INTEGER NOT NULL DEFAULT 0" for c in value_columns(n_modalities)) + ")",
    ]


def _key(row: str) -> str:
    """The SQL of a row's group key (quote() tells NULL from 'NULL' and needs no escaping of its own)."""
    return "||','||".join(f"quote({row}.{c})" for c in GROUP_COLUMNS)


def _join_group(row: str, values: Sequence[str]) -> list[str]:
    """Statements that count ``row`` (NEW) in its group and point its grp at it."""
    cols = ", ".join([*GROUP_COLUMNS, "n", *(f"nn_{c}" for c in values)])
    vals = ", ".join([*(f"{row}.{c}" for c in GROUP_COLUMNS), "1", *(f"({row}.{c} IS NOT NULL)" for c in values)])
    adds = ", ".join(["n = n + 1", *(f"nn_{c} = nn_{c} + ({row}.{c} IS NOT NULL)" for c in values)])
    return [
        f"INSERT INTO listing_groups(gkey, {cols}) VALUES ({_key(row)}, {vals}) ON CONFLICT(gkey) DO UPDATE SET {adds}",
        f"UPDATE listing SET grp = (SELECT grp FROM listing_groups WHERE gkey = {_key(row)}) WHERE idx = {row}.idx",
    ]


def _leave_group(row: str, values: Sequence[str]) -> str:
    subs = ", ".join(["n = n - 1", *(f"nn_{c} = nn_{c} - ({row}.{c} IS NOT NULL)" for c in values)])
    return f"UPDATE listing_groups SET {subs} WHERE gkey = {_key(row)}"


def _triggers_sql(modality_names: Sequence[str]) -> list[str]:
    result_set = ("status = NEW.status, error = NEW.error, prediction = NEW.prediction, probability = NEW.probability, "
                  "correct = NEW.correct, flags = NULLIF(NEW.flags, ''), "
                  "seconds = NEW.decode_seconds + NEW.predict_seconds")
    verdict_set = "verdict = NEW.verdict, relabel = NEW.relabel, note = NULLIF(NEW.note, '')"
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in GROUP_COLUMNS)
    values = value_columns(len(modality_names))

    def trigger(name: str, when: str, body: list[str]) -> str:
        return f"CREATE TRIGGER listing_{name} {when} BEGIN " + "; ".join(body) + "; END"

    out = [
        trigger("pair_added", "AFTER INSERT ON pairs", [
            "INSERT INTO listing(idx, id, label, verdict, relabel, note) VALUES (NEW.idx, NEW.id, NEW.label, "
            "(SELECT verdict FROM verdicts WHERE pair_id = NEW.id), (SELECT relabel FROM verdicts WHERE pair_id = NEW.id), "
            "(SELECT NULLIF(note, '') FROM verdicts WHERE pair_id = NEW.id))"]),
        trigger("pair_changed", "AFTER UPDATE OF id, label ON pairs", [
            "UPDATE listing SET id = NEW.id, label = NEW.label, "
            "verdict = (SELECT verdict FROM verdicts WHERE pair_id = NEW.id), "
            "relabel = (SELECT relabel FROM verdicts WHERE pair_id = NEW.id), "
            "note = (SELECT NULLIF(note, '') FROM verdicts WHERE pair_id = NEW.id) WHERE idx = NEW.idx"]),
        trigger("pair_removed", "AFTER DELETE ON pairs", ["DELETE FROM listing WHERE idx = OLD.idx"]),
        # INSERT OR REPLACE deletes the old result without a delete trigger; the insert sets every column
        trigger("result_added", "AFTER INSERT ON results", [f"UPDATE listing SET {result_set} WHERE idx = NEW.pair_idx"]),
        trigger("result_changed", "AFTER UPDATE ON results", [f"UPDATE listing SET {result_set} WHERE idx = NEW.pair_idx"]),
        trigger("result_removed", "AFTER DELETE ON results", [
            "UPDATE listing SET status = 'pending', error = NULL, prediction = NULL, probability = NULL, correct = NULL, "
            "flags = NULL, seconds = NULL WHERE idx = OLD.pair_idx"]),
        trigger("verdict_added", "AFTER INSERT ON verdicts", [f"UPDATE listing SET {verdict_set} WHERE id = NEW.pair_id"]),
        trigger("verdict_changed", "AFTER UPDATE ON verdicts", [
            "UPDATE listing SET verdict = NULL, relabel = NULL, note = NULL WHERE id = OLD.pair_id AND OLD.pair_id != NEW.pair_id",
            f"UPDATE listing SET {verdict_set} WHERE id = NEW.pair_id"]),
        trigger("verdict_removed", "AFTER DELETE ON verdicts", [
            "UPDATE listing SET verdict = NULL, relabel = NULL, note = NULL WHERE id = OLD.pair_id"]),
        trigger("group_added", "AFTER INSERT ON listing", _join_group("NEW", values)),
        trigger("group_removed", "AFTER DELETE ON listing", [_leave_group("OLD", values)]),
        trigger("group_changed", f"AFTER UPDATE OF {', '.join(GROUP_COLUMNS)} ON listing WHEN {changed}", [
            _leave_group("OLD", values), *_join_group("NEW", values)]),
        # same group, a value appeared or went (a modality's numbers arrive after the result's row)
        trigger("values_changed", f"AFTER UPDATE OF {', '.join(values)} ON listing WHEN NOT ({changed}) AND ("
                + " OR ".join(f"(OLD.{c} IS NULL) != (NEW.{c} IS NULL)" for c in values) + ")", [
            "UPDATE listing_groups SET " + ", ".join(
                f"nn_{c} = nn_{c} + (NEW.{c} IS NOT NULL) - (OLD.{c} IS NOT NULL)" for c in values)
            + f" WHERE gkey = {_key('NEW')}"]),
    ]
    for i, name in enumerate(modality_names):
        cols = [f"m{i}_{w}" for w in MODALITY_FIELDS]
        set_new = ", ".join(f"{c} = NEW.{w}" for c, w in zip(cols, MODALITY_FIELDS, strict=True))
        set_null = ", ".join(f"{c} = NULL" for c in cols)
        out += [
            trigger(f"m{i}_added", f"AFTER INSERT ON modality_results WHEN NEW.modality = {_lit(name)}",
                    [f"UPDATE listing SET {set_new} WHERE idx = NEW.pair_idx"]),
            trigger(f"m{i}_changed", "AFTER UPDATE ON modality_results", [
                f"UPDATE listing SET {set_null} WHERE idx = OLD.pair_idx AND OLD.modality = {_lit(name)}",
                f"UPDATE listing SET {set_new} WHERE idx = NEW.pair_idx AND NEW.modality = {_lit(name)}"]),
            trigger(f"m{i}_removed", f"AFTER DELETE ON modality_results WHEN OLD.modality = {_lit(name)}",
                    [f"UPDATE listing SET {set_null} WHERE idx = OLD.pair_idx"]),
        ]
    return out


def _indexes_sql(modality_names: Sequence[str], schema: str = "main") -> list[str]:
    # (column, idx, grp): the order a sort needs (ties by idx) and the group a filter checks, so a
    # filtered page walks the index alone; listing_by_grp serves a filter that matches few pairs.
    out = [f"CREATE INDEX IF NOT EXISTS {schema}.{index_name(c)} ON listing({c}, idx, grp)"
           for c in sort_columns(modality_names)]
    out.append(f"CREATE INDEX IF NOT EXISTS {schema}.{index_name('idx')} ON listing(idx, grp)")
    out.append(f"CREATE INDEX IF NOT EXISTS {schema}.listing_by_grp ON listing(grp, idx)")
    return out


def create_indexes(conn: sqlite3.Connection, modality_names: Sequence[str], schema: str = "main") -> None:
    for stmt in _indexes_sql(modality_names, schema):
        conn.execute(stmt)


def drop_indexes(conn: sqlite3.Connection, modality_names: Sequence[str]) -> None:
    """Drop the sort indexes (a bulk load builds them once at the end; the id index stays: writes need it)."""
    for c in sort_columns(modality_names):
        if c != "id":
            conn.execute(f"DROP INDEX IF EXISTS {index_name(c)}")
    conn.execute(f"DROP INDEX IF EXISTS {index_name('idx')}")
    conn.execute("DROP INDEX IF EXISTS listing_by_grp")


def has_listing(conn: sqlite3.Connection, modality_names: Sequence[str]) -> bool:
    """Whether the file's listing is whole: both tables with this version's columns and every trigger
    (a damaged or partial one is rebuilt from the base tables, which are the truth)."""
    n = len(modality_names)
    want = {
        "listing": ["idx", "id", "label", "status", "error", "prediction", "probability", "correct", "flags",
                    "seconds", "verdict", "relabel", "note", "grp", *_modality_columns(n)],
        "listing_groups": ["grp", "gkey", *GROUP_COLUMNS, "n", *(f"nn_{c}" for c in value_columns(n))],
    }
    for table, columns in want.items():
        if [r[1] for r in conn.execute(f"PRAGMA main.table_info({table})")] != columns:
            return False
    triggers = {r[0] for r in conn.execute("SELECT name FROM main.sqlite_master WHERE type = 'trigger'")}
    return {t.split()[2] for t in _triggers_sql(modality_names)} <= triggers


def indexes_complete(conn: sqlite3.Connection, modality_names: Sequence[str]) -> bool:
    """Whether every index the pager names is there (a bulk load killed midway leaves some out)."""
    found = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'listing'")}
    wanted = {index_name(c) for c in [*sort_columns(modality_names), "idx"]} | {"listing_by_grp"}
    return wanted <= found


# The triggers that list each inserted pair; `list_first_pairs` does their work once for all of them.
_PAIR_TRIGGERS = ("listing_pair_added", "listing_group_added")


def drop_pair_triggers(conn: sqlite3.Connection) -> None:
    """Before a new session's first pairs are inserted (inside the caller's transaction, which then
    calls `list_first_pairs`): a row's trigger work for 10,000 pairs cost ~0.3 s of CPU."""
    for name in _PAIR_TRIGGERS:
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")


def _count_in_groups(conn: sqlite3.Connection, modality_names: Sequence[str], where: str, sign: str = "") -> None:
    """Add the listing rows ``where`` (SQL on ``l``) to the counts of their groups (made when new), or,
    with ``sign="-"``, take them out: what the group triggers do row by row, set by set."""
    cols = ", ".join(GROUP_COLUMNS)
    values = value_columns(len(modality_names))
    key = _key("l")
    adds = ", ".join(["n = n + excluded.n", *(f"nn_{c} = nn_{c} + excluded.nn_{c}" for c in values)])
    conn.execute(f"INSERT INTO listing_groups(gkey, {cols}, n{''.join(f', nn_{c}' for c in values)}) "
                 f"SELECT {key}, {cols}, {sign}COUNT(*){''.join(f', {sign}COUNT({c})' for c in values)} "
                 f"FROM listing l WHERE {where} GROUP BY {key} ON CONFLICT(gkey) DO UPDATE SET {adds}")


def _point_at_groups(conn: sqlite3.Connection, where: str) -> None:
    """Each listing row ``where`` (SQL on ``listing``) gets the id of its group."""
    conn.execute(f"UPDATE listing SET grp = (SELECT g.grp FROM listing_groups g WHERE g.gkey = {_key('listing')}) "
                 f"WHERE {where}")


def _restore_triggers(conn: sqlite3.Connection, modality_names: Sequence[str], names: Sequence[str]) -> None:
    for stmt in _triggers_sql(modality_names):
        if stmt.split()[2] in names:
            conn.execute(stmt)


def list_first_pairs(conn: sqlite3.Connection, modality_names: Sequence[str]) -> None:
    """The listing rows and group counts of pairs inserted after `drop_pair_triggers` into a session
    that had none (what those triggers would have made, set by set), then the triggers again, in the
    caller's transaction. Pairs the listing already has are left as they are."""
    conn.execute(
        "INSERT INTO listing(idx, id, label, verdict, relabel, note) SELECT p.idx, p.id, p.label, v.verdict, "
        "v.relabel, NULLIF(v.note, '') FROM pairs p LEFT JOIN verdicts v ON v.pair_id = p.id "
        "WHERE p.idx NOT IN (SELECT idx FROM listing) ORDER BY p.idx")
    _count_in_groups(conn, modality_names, "l.grp IS NULL")
    _point_at_groups(conn, "grp IS NULL")
    _restore_triggers(conn, modality_names, _PAIR_TRIGGERS)


# A write of at least this many results lists them set by set (`unlist_results` / `list_results`)
# rather than by the triggers row by row: ~27 us a pair of trigger work against ~10 (10,000 results).
SET_RESULTS = 256
_WRITTEN = "temp.listing_written"  # the pair indexes of that write, in a table of this connection's own
_IN_WRITTEN = f"IN (SELECT idx FROM {_WRITTEN})"


def _result_triggers(n_modalities: int) -> tuple[str, ...]:
    """The triggers a write of results fires (results and modality_results inserted, the pairs' old
    modality rows deleted) and those their listing updates fire."""
    return ("listing_result_added", "listing_group_changed", "listing_values_changed",
            *(f"listing_m{i}_{what}" for i in range(n_modalities) for what in ("added", "removed")))


def unlist_results(conn: sqlite3.Connection, modality_names: Sequence[str], idxs: Sequence[int]) -> None:
    """Before a write of the results of pairs ``idxs`` (inside its transaction, which then calls
    `list_results`): the triggers it would fire are dropped and these pairs' listing rows leave their
    groups' counts. Between transactions the triggers are always there, so every other writer, and a
    process killed at any moment, leaves the listing true."""
    conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_WRITTEN.split('.')[1]}(idx INTEGER PRIMARY KEY)")
    conn.execute(f"DELETE FROM {_WRITTEN}")
    conn.executemany(f"INSERT OR IGNORE INTO {_WRITTEN}(idx) VALUES (?)", ((i,) for i in idxs))
    for name in _result_triggers(len(modality_names)):
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    _count_in_groups(conn, modality_names, f"l.idx {_IN_WRITTEN}", sign="-")


def list_results(conn: sqlite3.Connection, modality_names: Sequence[str]) -> None:
    """After the write `unlist_results` began: the written pairs' listing rows made from the base
    tables (what the result and modality triggers set), counted in their groups, and the triggers
    made again."""
    names = list(modality_names)
    cols, vals, joins = _modality_join(names, "r.pair_idx")
    conn.execute(
        f"UPDATE listing SET (status, error, prediction, probability, correct, flags, seconds{cols}) = "
        f"(SELECT r.status, r.error, r.prediction, r.probability, r.correct, NULLIF(r.flags, ''), "
        f"r.decode_seconds + r.predict_seconds{vals} FROM main.results r{joins} WHERE r.pair_idx = listing.idx) "
        f"WHERE idx {_IN_WRITTEN}", names)
    _count_in_groups(conn, names, f"l.idx {_IN_WRITTEN}")
    _point_at_groups(conn, f"idx {_IN_WRITTEN}")
    conn.execute(f"DELETE FROM {_WRITTEN}")
    _restore_triggers(conn, names, _result_triggers(len(names)))


def create(conn: sqlite3.Connection, modality_names: Sequence[str]) -> None:
    """The listing of a new, empty session: tables, triggers, indexes (inside the caller's transaction)."""
    for stmt in [*_tables_sql(len(modality_names)), *_indexes_sql(modality_names), *_triggers_sql(modality_names)]:
        conn.execute(stmt)


def rebuild(conn: sqlite3.Connection, modality_names: Sequence[str], schema: str = "main") -> None:
    """Make the listing from the base tables (inside the caller's transaction).

    ``schema="temp"``: a TEMP copy without triggers, for a read-only file of an older format (what
    it shows is what the file holds; nothing can change it while it is read-only).
    """
    if schema == "main":
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'listing\\_%' "
                                    "ESCAPE '\\'").fetchall():
            conn.execute(f"DROP TRIGGER {name}")
    conn.execute(f"DROP TABLE IF EXISTS {schema}.listing")
    conn.execute(f"DROP TABLE IF EXISTS {schema}.listing_groups")
    for stmt in _tables_sql(len(modality_names), schema):
        conn.execute(stmt)
    names = list(modality_names)
    cols, vals, joins = _modality_join(names, "p.idx")
    conn.execute(
        f"INSERT INTO {schema}.listing(idx, id, label, status, error, prediction, probability, correct, flags, seconds, "
        f"verdict, relabel, note{cols}) "
        "SELECT p.idx, p.id, p.label, COALESCE(r.status, 'pending'), r.error, r.prediction, r.probability, r.correct, "
        f"NULLIF(r.flags, ''), r.decode_seconds + r.predict_seconds, v.verdict, v.relabel, NULLIF(v.note, ''){vals} "
        "FROM main.pairs p LEFT JOIN main.results r ON r.pair_idx = p.idx LEFT JOIN main.verdicts v ON v.pair_id = p.id"
        f"{joins} ORDER BY p.idx", names)
    cols = ", ".join(GROUP_COLUMNS)
    key = _key("l")
    values = value_columns(len(names))
    conn.execute(f"INSERT INTO {schema}.listing_groups(gkey, {cols}, n{''.join(f', nn_{c}' for c in values)}) "
                 f"SELECT {key}, {cols}, COUNT(*){''.join(f', COUNT({c})' for c in values)} "
                 f"FROM {schema}.listing l GROUP BY {key}")
    conn.execute(f"UPDATE {schema}.listing SET grp = (SELECT g.grp FROM {schema}.listing_groups g "
                 f"WHERE g.gkey = {_key(schema + '.listing')})")
    create_indexes(conn, names, schema)
    if schema == "main":
        for stmt in _triggers_sql(names):
            conn.execute(stmt)
