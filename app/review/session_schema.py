"""What a review session file holds: its SQLite tables, the records that go in and come out, and
how a connection to it is opened.

``ReviewSession`` (app/review/session.py) is the one class callers use; that module re-exports (its
``__all__``) the records, errors and constants defined here. This module is the shape of the data it
stores, kept apart from making and opening the file (session_file.py), the indexed listing and its
triggers (session_listing.py), paging (session_paging.py), the queries (session_queries.py), the
verdicts (session_verdicts.py) and the summary (session_summary.py) so each is read on its own.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.review.flags import FLAG_ERROR, FlagThresholds, compute_flags
from app.util.errors import UserError

# 1: the first format; 2: results.late_probabilities (the late-fusion comparison's probabilities, so a
# stored prediction is the whole of Prediction.to_json()); 3: the listing (session_listing.py: one
# indexed row per pair and the counts per filter group, kept by triggers), so the table, counts and
# summary of a million-pair session read indexes. An older file is upgraded when opened (one
# transaction: all of it or none); a read-only format-2 file gets its listing as a TEMP table.
SCHEMA_VERSION = 3
ANY_FLAG = "(any flag)"  # RowFilter.flag values that mean "has some flag" / "a result without flags"
NO_FLAG = "(no flag)"
VERDICTS = ("accept", "reject", "relabel")

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pairs (
    idx   INTEGER PRIMARY KEY,
    id    TEXT NOT NULL UNIQUE,
    files TEXT NOT NULL,
    label TEXT
);
CREATE TABLE IF NOT EXISTS results (
    pair_idx        INTEGER PRIMARY KEY REFERENCES pairs(idx),
    status          TEXT NOT NULL,
    error           TEXT,
    prediction      TEXT,
    probability     REAL,
    probabilities   TEXT,
    correct         INTEGER,
    flags           TEXT NOT NULL DEFAULT '',
    decode_seconds  REAL,
    predict_seconds REAL,
    model_sha256    TEXT,
    created         REAL NOT NULL,
    late_probabilities TEXT
);
CREATE TABLE IF NOT EXISTS modality_results (
    pair_idx    INTEGER NOT NULL REFERENCES pairs(idx),
    modality    TEXT NOT NULL,
    label       TEXT,
    probability REAL,
    probabilities TEXT,
    energy      REAL,
    quality     REAL,
    share       REAL,
    PRIMARY KEY (pair_idx, modality)
);
CREATE TABLE IF NOT EXISTS verdicts (
    pair_id TEXT PRIMARY KEY,
    verdict TEXT,
    relabel TEXT,
    note    TEXT NOT NULL DEFAULT '',
    updated REAL NOT NULL
);
"""


class SessionError(UserError):
    """A session file cannot be used as asked (damaged, not a session, read-only, in use); one line."""


class SessionBusyError(SessionError):
    """Another run is processing this session now."""


class ModelMismatchError(SessionError):
    """The session was made by a different model file than the one given now.

    The facts are attributes (the app builds its own message and button from them); `reason` is
    the one line of what is wrong, str(err) adds what would work on the command line."""

    def __init__(self, path: Path | str, session_model: str, session_sha256: str, given_model: str,
                 given_sha256: str):
        self.path = str(path)
        self.session_model, self.session_sha256 = session_model, session_sha256
        self.given_model, self.given_sha256 = given_model, given_sha256
        self.reason = (f"{path}: made by model {session_model} (sha256 {session_sha256[:12]}), "
                       f"not by {given_model} (sha256 {given_sha256[:12]})")
        super().__init__(f"{self.reason}; re-run with --rerun to replace the results with this model's "
                         "(verdicts and notes are kept)")


# The tables and key columns every session has; a file whose schema differs is damaged.
_REQUIRED_COLUMNS = {
    "meta": {"key": "TEXT", "value": "TEXT"},
    "pairs": {"idx": "INTEGER", "id": "TEXT", "files": "TEXT", "label": "TEXT"},
    "results": {"pair_idx": "INTEGER", "status": "TEXT"},
    "modality_results": {"pair_idx": "INTEGER", "modality": "TEXT"},
    "verdicts": {"pair_id": "TEXT"},
}


@dataclass
class PendingPair:
    """A pair still waiting for a result."""

    idx: int
    id: str
    files: dict[str, str]
    label: str | None


@dataclass
class ResultRecord:
    """What the runner hands the session for one pair: a prediction (``Prediction.to_json()``) or an error."""

    pair_idx: int
    label: str | None
    prediction: dict[str, Any] | None = None
    error: str | None = None
    decode_seconds: float = 0.0
    predict_seconds: float = 0.0


@dataclass
class RowFilter:
    """What the table shows. Empty fields do not filter.

    ``status``: "done" (has a result), "ok", "error", "pending"; ``correctness``: "correct", "wrong",
    "unlabelled"; ``verdict``: one of VERDICTS or "none"; ``search``: a substring of the pair id.
    """

    flag: str | None = None
    label: str | None = None
    prediction: str | None = None
    correctness: str | None = None
    status: str | None = None
    verdict: str | None = None
    search: str | None = None


@dataclass
class ReviewRow:
    idx: int
    id: str
    files: dict[str, str]
    label: str | None
    status: str  # "pending", "ok", "error"
    error: str | None = None
    prediction: str | None = None
    probability: float | None = None
    correct: bool | None = None
    flags: list[str] = field(default_factory=list)
    modalities: dict[str, dict[str, Any]] = field(default_factory=dict)
    verdict: str | None = None
    relabel: str | None = None
    note: str = ""
    seconds: float | None = None


def flags_text(flags: Sequence[str]) -> str:
    """How a pair's flags are stored: '|a|b|', so that a filter is a plain LIKE '%|a|%' and
    'low-quality image' never matches 'image2'."""
    return "|" + "|".join(flags) + "|" if flags else ""


def flags_list(text: str | None) -> list[str]:
    return [f for f in (text or "").split("|") if f]


def finite_or_none(x: Any) -> float | None:
    """A float for a REAL column; NaN and infinities are stored as NULL (SQLite has no NaN)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


_FLOAT_REPR = float.__repr__


def json_numbers(values: Sequence[Any]) -> str:
    """``json.dumps(values)`` of a list of floats, the same text at half the cost: each float as its
    repr (what json writes for a finite float), joined; a value that is not a float, or not finite
    (json writes NaN and Infinity, repr nan and inf: the only reprs with an 'n'), takes json.dumps."""
    try:
        text = ", ".join(map(_FLOAT_REPR, values))
    except TypeError:
        return json.dumps(values)
    return json.dumps(values) if "n" in text else f"[{text}]"


INSERT_RESULT = (
    "INSERT OR REPLACE INTO results(pair_idx, status, error, prediction, probability, probabilities, correct, "
    "flags, decode_seconds, predict_seconds, model_sha256, created, late_probabilities) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
INSERT_MODALITY_RESULT = (
    "INSERT INTO modality_results(pair_idx, modality, label, probability, probabilities, energy, quality, share) "
    "VALUES (?,?,?,?,?,?,?,?)"
)


def record_rows(records: Sequence[ResultRecord], thresholds: FlagThresholds,
                now: float) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The ``results`` and ``modality_results`` rows (for INSERT_RESULT / INSERT_MODALITY_RESULT) of a
    batch of records; flags are computed here from the prediction's numbers."""
    result_rows: list[tuple[Any, ...]] = []
    modality_rows: list[tuple[Any, ...]] = []
    for rec in records:
        if rec.error is not None or rec.prediction is None:
            result_rows.append((rec.pair_idx, "error", rec.error or "no prediction", None, None, None, None,
                                flags_text([FLAG_ERROR]), rec.decode_seconds, rec.predict_seconds, None, now, None))
            continue
        pred = rec.prediction
        mods = pred["modalities"]
        flags = compute_flags(pred["probability"], pred["label"], mods, rec.label, thresholds)
        correct = None if rec.label is None else int(rec.label == pred["label"])
        late = (pred.get("late_fusion") or {}).get("probabilities") or []
        result_rows.append((rec.pair_idx, "ok", None, pred["label"], float(pred["probability"]),
                            json_numbers(pred["probabilities"]), correct, flags_text(flags),
                            rec.decode_seconds, rec.predict_seconds, pred["model"]["sha256"], now, json_numbers(late)))
        for name, m in mods.items():
            modality_rows.append((rec.pair_idx, name, m["label"], finite_or_none(m["probability"]),
                                  json_numbers(m["probabilities"]), finite_or_none(m["energy"]),
                                  finite_or_none(m["quality"]), finite_or_none(m["share"])))
    return result_rows, modality_rows


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit, see :class:`Transaction`).

    ``readonly`` opens with SQLite's ``mode=ro`` (a file the user may not write can still be read and
    exported); when even the WAL index cannot be made next to it (a read-only folder), the file is
    opened as immutable, which is right for a session nobody is writing.
    """
    if readonly:
        uri = path.absolute().as_uri()
        try:
            conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None, timeout=30.0)
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            conn = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, isolation_level=None, timeout=30.0)
        conn.execute("PRAGMA busy_timeout=30000")
        conn.text_factory = _text
        return conn
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=30.0)
    conn.text_factory = _text
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # a committed batch survives a power cut too, not only a crash
        conn.execute("PRAGMA busy_timeout=30000")
    except BaseException:
        conn.close()
        raise
    return conn


def _text(data: bytes) -> str:
    """TEXT values as str; bytes that are not UTF-8 (a damaged page) become U+FFFD instead of an exception."""
    return data.decode("utf-8", "replace")


def check_tables(conn: sqlite3.Connection) -> str | None:
    """What is wrong with the file's tables (a missing table or key column, a changed type), or None."""
    for table, columns in _REQUIRED_COLUMNS.items():
        found = {row[1]: (row[2] or "").upper() for row in conn.execute(f"PRAGMA table_info({table})")}
        if not found:
            return f"no {table} table"
        for name, kind in columns.items():
            if found.get(name) != kind:
                return f"the {table} table's {name} column is {found.get(name) or 'missing'!r}, not {kind}"
    return None


def upgrade(conn: sqlite3.Connection, version: int, modality_names: Sequence[str]) -> None:
    """Bring a session file of an older format `version` up to SCHEMA_VERSION, in one transaction
    (a crash or an error leaves the file as it was). Only columns and tables are added, so nothing
    stored before is lost; a format-3 file whose listing is missing or damaged gets it rebuilt."""
    from app.review import session_listing

    if version >= SCHEMA_VERSION and session_listing.has_listing(conn, modality_names):
        if not session_listing.indexes_complete(conn, modality_names):
            with Transaction(conn):  # indexes a bulk load dropped (its process killed meanwhile) are made again
                session_listing.create_indexes(conn, modality_names)
        return
    with Transaction(conn):
        if version < 2:
            columns = {row[1] for row in conn.execute("PRAGMA table_info(results)")}
            if "late_probabilities" not in columns:
                conn.execute("ALTER TABLE results ADD COLUMN late_probabilities TEXT")
        session_listing.rebuild(conn, modality_names)
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))


class Transaction:
    """``with Transaction(conn):`` — BEGIN IMMEDIATE, then COMMIT, or ROLLBACK when the block raised."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
