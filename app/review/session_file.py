"""Making and opening a review session's file: the checks that stand between a path and a connection.

``ReviewSession.create`` and ``ReviewSession.open`` (app/review/session.py) delegate here. Creating is
atomic: the schema and settings are committed in a temporary file next to the session, which is then
linked into place, so a kill in between leaves no half-made session under the real name. Opening
refuses, with one line naming the file, anything that is not a whole session of a format this
version reads (missing or damaged tables or meta entries, a newer format, an upgrade a read-only file
cannot take) and upgrades an older format in place.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from app.review import session_listing
from app.review.session_schema import SCHEMA_VERSION, SessionError, check_tables, connect, upgrade

# Meta entries every session has, with the JSON type each must have.
_REQUIRED_META = {"schema_version": int, "model_name": str, "model_sha256": str, "modalities": dict,
                  "labels": list, "source_kind": str, "source_path": str}


def create_file(p: Path, write_new: Callable[[Path, sqlite3.Connection], None]) -> None:
    """Make the session file ``p`` whole or not at all; ``write_new(tmp, conn)`` fills the temporary file.

    Refuses (FileExistsError) to overwrite an existing session; an empty file under that name (left by
    an older version killed while creating) is replaced.
    """
    if p.exists() and not _is_empty_file(p):
        raise FileExistsError(f"{p}: already exists (open it to resume, or choose another name)")
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.creating")
    _remove_db(tmp)
    conn = connect(tmp)
    try:
        write_new(tmp, conn)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except BaseException:
        conn.close()
        _remove_db(tmp)
        raise
    conn.close()
    try:
        if _is_empty_file(p):
            os.replace(tmp, p)
        else:
            try:
                os.link(tmp, p)  # fails if another process created the session meanwhile
            except FileExistsError:
                raise
            except OSError:  # a file system without hard links: rename (re-checked just before)
                if p.exists():
                    raise FileExistsError(p) from None
                os.replace(tmp, p)
    except FileExistsError:
        raise FileExistsError(f"{p}: already exists (open it to resume, or choose another name)") from None
    finally:
        _remove_db(tmp)


def open_file(p: Path, readonly: bool | None) -> tuple[sqlite3.Connection, bool]:
    """A checked (and, when older, upgraded) connection to the session file ``p``, and whether it is read-only.

    ``readonly`` None: read-only when the user may not write the file. SessionError naming the file
    when it is not a session or is damaged; FileNotFoundError when there is none.
    """
    try:
        if not p.is_file():
            raise FileNotFoundError(f"{p}: review session not found")
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise SessionError(f"{p}: cannot open ({exc.strerror or exc})") from None
    if _is_empty_file(p):
        raise SessionError(f"{p}: an empty file, not a QMF review session (a session being created when it was "
                           "interrupted): start the batch again to create it")
    if readonly is None:
        readonly = not os.access(p, os.W_OK)
    conn: sqlite3.Connection | None = None
    try:
        conn = connect(p, readonly=readonly)
        trouble = check_tables(conn)
        if trouble is not None:
            raise SessionError(f"{p}: not a QMF review session, or a damaged one ({trouble})")
        version = _check_meta(p, dict(conn.execute("SELECT key, value FROM meta").fetchall()))
        if version > SCHEMA_VERSION:
            raise SessionError(f"{p}: made by a newer QMF Studio (session format {version}, this one reads "
                               f"{SCHEMA_VERSION})")
        names = _modality_names(p, conn)
        if readonly:
            if version < 2:
                raise SessionError(f"{p}: session format {version} needs upgrading to {SCHEMA_VERSION} and the file "
                                   "is read-only; open a writable copy")
            if not (session_listing.has_listing(conn, names) and session_listing.indexes_complete(conn, names)):
                # format 2 (or a 3 missing a part): a listing of its own, for this connection
                session_listing.rebuild(conn, names, schema="temp")
            return conn, readonly
        try:
            upgrade(conn, version, names)
        except sqlite3.DatabaseError as exc:
            raise SessionError(f"{p}: session format {version} needs upgrading to {SCHEMA_VERSION} and the file "
                               f"could not be changed ({exc}); open a writable copy") from None
    except SessionError:
        if conn is not None:
            conn.close()
        raise
    except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
        if conn is not None:
            conn.close()
        raise SessionError(f"{p}: not a QMF review session, or a damaged one ({_one_line(exc)})") from None
    except BaseException:
        if conn is not None:
            conn.close()
        raise
    return conn, readonly


def needs_upgrade(p: Path) -> bool:
    """Whether opening ``p`` writable would upgrade it (an older format, or a listing to build or
    complete); False when it cannot tell (opening then says what is wrong)."""
    try:
        conn = connect(p, readonly=True)
    except (sqlite3.Error, OSError):
        return False
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta WHERE key IN ('schema_version', 'modalities')"))
        version = json.loads(meta["schema_version"])
        names = list(json.loads(meta["modalities"]))
        return bool(version < SCHEMA_VERSION or not session_listing.has_listing(conn, names)
                    or not session_listing.indexes_complete(conn, names))
    except (sqlite3.Error, KeyError, TypeError, ValueError):
        return False
    finally:
        conn.close()


def _is_empty_file(p: Path) -> bool:
    try:
        return p.is_file() and p.stat().st_size == 0
    except OSError:
        return False


def _remove_db(p: Path) -> None:
    """Remove a temporary SQLite file and its WAL companions."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(p) + suffix).unlink(missing_ok=True)


def _check_meta(p: Path, rows: Mapping[str, str]) -> int:
    """The schema version, after checking every required meta entry is there, is JSON and has its type."""
    values: dict[str, Any] = {}
    for key, kind in _REQUIRED_META.items():
        if key not in rows:
            raise SessionError(f"{p}: not a QMF review session, or a damaged one (no {key!r} entry)")
        try:
            values[key] = json.loads(rows[key])
        except (TypeError, ValueError):
            raise SessionError(f"{p}: damaged session (its {key!r} entry is not readable)") from None
        if not isinstance(values[key], kind) or (kind is int and isinstance(values[key], bool)):
            raise SessionError(f"{p}: damaged session (its {key!r} entry is {type(values[key]).__name__}, "
                               f"not {kind.__name__})")
    for key, text in rows.items():  # meta() parses every entry: each must be JSON
        try:
            json.loads(text)
        except (TypeError, ValueError):
            raise SessionError(f"{p}: damaged session (its {_one_line(key)[:60]!r} entry is not readable)") from None
    return values["schema_version"]


def _modality_names(p: Path, conn: sqlite3.Connection) -> list[str]:
    """The session's modality names in order (the listing's modality columns), as _check_meta read them."""
    (text,) = conn.execute("SELECT value FROM meta WHERE key = 'modalities'").fetchone()
    return list(json.loads(text))


def _one_line(value: object) -> str:
    return " ".join(str(value).split())
