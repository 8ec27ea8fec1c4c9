"""The analyst's verdicts and notes in a review session: read, set and clear one pair's.

``ReviewSession.verdict``, ``set_verdict`` and ``clear_verdict`` (app/review/session.py) delegate
here. Verdicts are keyed by the pair's id, not its row number, so re-running the model or re-scanning
the source never wipes them; each write is its own transaction, durable at once.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from app.review.session_schema import VERDICTS


def verdict(conn: sqlite3.Connection, pair_id: str) -> dict[str, Any]:
    """The pair's verdict, relabel and note (``None``, ``None``, ``""`` when it has none)."""
    row = conn.execute("SELECT verdict, relabel, note FROM verdicts WHERE pair_id=?", (pair_id,)).fetchone()
    if row is None:
        return {"verdict": None, "relabel": None, "note": ""}
    return {"verdict": row[0], "relabel": row[1], "note": row[2] or ""}


def set_verdict(conn: sqlite3.Connection, transaction: Callable[[], AbstractContextManager[None]], pair_id: str,
                verdict_: str | None, relabel: str | None, note: str | None) -> None:
    """Record a verdict and/or note (``None`` keeps what is there; ValueError for an unknown verdict)."""
    if verdict_ is not None and verdict_ not in VERDICTS:
        raise ValueError(f"verdict {verdict_!r}: expected one of {', '.join(VERDICTS)}")
    if verdict_ == "relabel" and not relabel:
        raise ValueError("a relabel verdict needs the new label")
    cur = verdict(conn, pair_id)
    new_verdict = verdict_ if verdict_ is not None else cur["verdict"]
    new_relabel = relabel if verdict_ == "relabel" else (None if verdict_ is not None else cur["relabel"])
    new_note = note if note is not None else cur["note"]
    with transaction():
        conn.execute(
            "INSERT INTO verdicts(pair_id, verdict, relabel, note, updated) VALUES(?,?,?,?,?) "
            "ON CONFLICT(pair_id) DO UPDATE SET verdict=excluded.verdict, relabel=excluded.relabel, "
            "note=excluded.note, updated=excluded.updated",
            (pair_id, new_verdict, new_relabel, new_note, time.time()),
        )


def clear_verdict(conn: sqlite3.Connection, transaction: Callable[[], AbstractContextManager[None]], pair_id: str) -> None:
    """Remove the pair's verdict and relabel; its note stays."""
    with transaction():
        conn.execute("UPDATE verdicts SET verdict=NULL, relabel=NULL, updated=? WHERE pair_id=?",
                     (time.time(), pair_id))
