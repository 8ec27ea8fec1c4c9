"""A review session: one SQLite file (``*.qmfreview``) that holds a whole offline review.

What is in it: the model's identity (name, sha256), the source, the settings (flag thresholds), one
row per pair (id, files, given label), the result of each pair (prediction, probabilities, every
modality's numbers, flags, timings, or the error that stopped it) and the analyst's verdicts.

Why it survives a crash: WAL journal with ``synchronous=FULL`` and one transaction per batch of
results, so a killed process, or a machine that loses power, leaves every committed batch in the file
and nothing half-written (NORMAL would survive the first, not always the second; FULL costs one
fsync per batch).
``results.pair_idx`` is the primary key, so resuming can never duplicate a pair; the runner only
asks for pairs without a result. Verdicts live in their own table keyed by the pair's id (not by a
row number), so re-running the model (``--rerun``) or re-scanning the source never wipes them.

One connection per thread (sqlite3's rule); the app's worker and the GUI each open their own, and
WAL lets the GUI read while the worker writes.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from app.data.manifest import PairRow
from app.review import (
    session_file,
    session_listing,
    session_paging,
    session_queries,
    session_summary,
    session_verdicts,
)
from app.review.flags import FlagThresholds
from app.review.session_meta import SessionMeta
from app.review.session_rows import SessionRows
from app.review.session_schema import (
    ANY_FLAG,
    INSERT_MODALITY_RESULT,
    INSERT_RESULT,
    NO_FLAG,
    SCHEMA_SQL,
    SCHEMA_VERSION,
    VERDICTS,
    ModelMismatchError,
    PendingPair,
    ResultRecord,
    ReviewRow,
    RowFilter,
    SessionBusyError,
    SessionError,
    Transaction,
    record_rows,
)

# The review API callers import from here: the class, and the records, errors and constants it takes
# and gives (defined in session_schema.py, whose other names are the session modules' own).
__all__ = ["ANY_FLAG", "NO_FLAG", "SCHEMA_VERSION", "VERDICTS", "ModelMismatchError", "PendingPair", "ResultRecord",
           "ReviewRow", "ReviewSession", "RowFilter", "SessionBusyError", "SessionError"]


class ReviewSession(SessionMeta, SessionRows):
    """One open review session file. Use :meth:`create` for a new one and :meth:`open` for an existing one."""

    def __init__(self, path: Path, conn: sqlite3.Connection, readonly: bool = False):
        self.path = path
        self.conn = conn
        self.readonly = readonly
        self._meta_cache: dict[str, Any] | None = None
        self._run_lock: Any = None
        # counts and pagers per filter/order, valid while nothing is written (see _fresh)
        self._writes = 0
        self._state: tuple[int, int] | None = None
        self._counts: dict[Any, int] = {}
        self._filters: dict[Any, session_paging.CompiledFilter] = {}
        self._matches: dict[Any, list[int] | None] = {}
        self._pagers: OrderedDict[Any, session_paging.Pager] = OrderedDict()

    # ------------------------------------------------------------------ opening
    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        model_name: str,
        model_sha256: str,
        model_path: str | None,
        modalities: Mapping[str, str],
        labels: Sequence[str],
        source_kind: str,
        source_path: str | os.PathLike[str],
        thresholds: FlagThresholds | None = None,
        manifest_modalities: Sequence[Mapping[str, Any]] = (),
    ) -> ReviewSession:
        """A new, empty session file. Refuses to overwrite an existing file.

        ``manifest_modalities`` (the model manifest's input list, with preprocessing) lets the app
        show a pair's inputs as the model saw them without loading the model.

        The file appears whole or not at all, even when the process is killed meanwhile; an empty file
        under that name (left by an older version killed at that moment) is replaced
        (``session_file.create_file``).
        """
        p = Path(path).expanduser().absolute()
        session_file.create_file(p, lambda tmp, conn: cls(tmp, conn)._write_new(
            model_name, model_sha256, model_path, modalities, labels, source_kind, source_path, thresholds,
            manifest_modalities))
        return cls.open(p)

    def _write_new(self, model_name: str, model_sha256: str, model_path: str | None, modalities: Mapping[str, str],
                   labels: Sequence[str], source_kind: str, source_path: str | os.PathLike[str],
                   thresholds: FlagThresholds | None, manifest_modalities: Sequence[Mapping[str, Any]]) -> None:
        with self.transaction():
            for stmt in SCHEMA_SQL.split(";"):
                if stmt.strip():
                    self.conn.execute(stmt)
            session_listing.create(self.conn, list(modalities))
            self._set_meta_many(
                {
                    "schema_version": SCHEMA_VERSION,
                    "created": time.time(),
                    "model_name": model_name,
                    "model_sha256": model_sha256,
                    "model_path": str(model_path) if model_path else None,
                    "modalities": dict(modalities),
                    "labels": list(labels),
                    "source_kind": source_kind,
                    "source_path": str(Path(source_path).absolute()),
                    "thresholds": (thresholds or FlagThresholds()).to_dict(),
                    "unmatched": [],
                    "manifest_modalities": [dict(m) for m in manifest_modalities],
                }
            )

    @classmethod
    def open(cls, path: str | os.PathLike[str], readonly: bool | None = None) -> ReviewSession:
        """Open an existing session; SessionError naming the file when it is not one or is damaged.

        ``readonly`` None: read-only when the user may not write the file (it can still be viewed and
        exported); writing to such a session raises a SessionError saying so.
        """
        p = Path(path).expanduser().absolute()
        conn, readonly = session_file.open_file(p, readonly)
        return cls(p, conn, readonly=readonly)

    @staticmethod
    def needs_upgrade(path: str | os.PathLike[str]) -> bool:
        """Whether opening this file writable upgrades it first (an older format: minutes for a
        million pairs, so the app does it in a thread)."""
        return session_file.needs_upgrade(Path(path).expanduser().absolute())

    def close(self) -> None:
        self.conn.close()
        if self._run_lock is not None:
            self._run_lock.release()
            self._run_lock = None

    def hold_run_lock(self) -> None:
        """Claim this session for one batch run until :meth:`close` (SessionBusyError if another run has it).

        A read-only session needs no lock: nothing can be written to it.
        """
        from app.review.runlock import RunLock

        if self.readonly or self._run_lock is not None:
            return
        lock = RunLock(self.path)
        try:
            lock.acquire()
        except OSError as exc:  # the folder refuses the lock file: say so rather than run unguarded
            raise SessionError(f"{self.path}: cannot create the run lock next to the session "
                               f"({exc.strerror or exc})") from None
        self._run_lock = lock

    def __enter__(self) -> ReviewSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """``with session.transaction():`` — one all-or-nothing write (SessionError on a read-only session)."""
        if self.readonly:
            raise SessionError(f"{self.path}: the session file is read-only; it can be viewed and exported, but "
                               "continuing it needs a writable copy")
        # every write passes here: cached counts and pagers are dropped before and after it
        self._writes += 1
        try:
            with Transaction(self.conn):
                yield
        finally:
            self._writes += 1

    @contextlib.contextmanager
    def bulk_writes(self) -> Iterator[None]:
        """``with session.bulk_writes():`` many results at once (an import of millions): the listing's
        sort indexes are dropped meanwhile and built once at the end, which is several times faster
        than keeping them up to date row by row. Reading works meanwhile, unindexed (slow); a process
        killed inside leaves them out, and the next writable open builds them again."""
        names = self.modality_names
        with self.transaction():
            session_listing.drop_indexes(self.conn, names)
        try:
            yield
        finally:
            with self.transaction():
                session_listing.create_indexes(self.conn, names)
                self.conn.execute("PRAGMA analysis_limit = 1000")
                self.conn.execute("ANALYZE listing")

    # ------------------------------------------------------------------ meta: SessionMeta (session_meta.py)
    def check_model(self, name: str, sha256: str) -> None:
        """ModelMismatchError when the session's results were made by another model."""
        if sha256 != self.model_sha256:
            raise ModelMismatchError(self.path, self.model_name, self.model_sha256, name, sha256)

    def start_rerun(self, model_name: str, model_sha256: str, model_path: str | None,
                    manifest_modalities: Sequence[Mapping[str, Any]] | None = None) -> None:
        """Forget every result (not the verdicts) and adopt a new model."""
        with self.transaction():
            self.conn.execute("DELETE FROM modality_results")
            self.conn.execute("DELETE FROM results")
            self._set_meta_many(
                {"model_name": model_name, "model_sha256": model_sha256,
                 "model_path": str(model_path) if model_path else None,
                 **({"manifest_modalities": [dict(m) for m in manifest_modalities]} if manifest_modalities else {})}
            )

    def forget_errors(self) -> int:
        """Drop the error rows' results (verdicts stay), so the next run tries those pairs again:
        the analyst may have replaced the broken file. Returns how many."""
        with self.transaction():
            self.conn.execute("DELETE FROM modality_results WHERE pair_idx IN "
                              "(SELECT pair_idx FROM results WHERE status = 'error')")
            return self.conn.execute("DELETE FROM results WHERE status = 'error'").rowcount

    # ------------------------------------------------------------------ pairs
    def add_pairs(self, pairs: Iterable[PairRow], build_indexes: bool = True) -> int:
        """Add pairs not yet in the session (by id); returns how many were new. Idempotent.

        ``build_indexes=False``, into a session without pairs: the listing's sort indexes are left for
        a `bulk_writes` that follows (`qmf batch` into a new session), which builds them at its end,
        instead of being built here and dropped again at once (a writable open builds missing ones)."""
        if self.readonly:
            new = [p for p in pairs if self.conn.execute("SELECT 1 FROM pairs WHERE id = ?", (p.id,)).fetchone() is None]
            if not new:
                return 0
            pairs = new
        start = self.conn.execute("SELECT COALESCE(MAX(idx), -1) + 1 FROM pairs").fetchone()[0]
        before = self.pair_count()
        names = self.modality_names
        with self.transaction():
            if not before:
                # The first pairs of a session: the listing's sort indexes are built once after the
                # inserts, in the same transaction, rather than kept up to date row by row (10,000 pairs:
                # 1.5-1.7 s of CPU -> 0.3-0.45 s; `bulk_writes` does the same for results), and their
                # listing rows and group counts are made set by set, not by a trigger per row.
                session_listing.drop_indexes(self.conn, names)
                session_listing.drop_pair_triggers(self.conn)  # listed set by set after the inserts
            self.conn.executemany(
                "INSERT OR IGNORE INTO pairs(idx, id, files, label) VALUES(?, ?, ?, ?)",
                (
                    (start + i, p.id, json.dumps({k: str(v) for k, v in p.files.items()}), p.label)
                    for i, p in enumerate(pairs)
                ),
            )
            if not before:
                session_listing.list_first_pairs(self.conn, names)
                if build_indexes:
                    session_listing.create_indexes(self.conn, names)
        return self.pair_count() - before

    def pair_count(self) -> int:
        return self.count()

    def result_count(self) -> int:
        return self.count(RowFilter(status="done"))

    def pending_count(self) -> int:
        return self.pair_count() - self.result_count()

    def iter_pending(self, page: int = 512) -> Iterator[PendingPair]:
        """Pairs without a result, in source order, read a page at a time (bounded memory).

        Each page is a fresh query after the last index seen, so the caller may write results between
        pages on the same connection.
        """
        with self._damage_is_session_error():
            yield from session_queries.pending_pairs(self.conn, page)

    # ------------------------------------------------------------------ results
    def write_results(self, records: Sequence[ResultRecord], thresholds: FlagThresholds | None = None) -> None:
        """Store a batch of results in one transaction (all or nothing)."""
        result_rows, modality_rows = record_rows(records, thresholds or self.thresholds, time.time())
        calibration = next((r.prediction.get("calibration") for r in records if r.prediction), None)
        idxs = [r[0] for r in result_rows]
        names = self.modality_names
        by_set = len(idxs) >= session_listing.SET_RESULTS  # listed set by set, not by a trigger per row
        with self.transaction():
            if calibration and "calibration" not in self.meta():  # one model per session: stored once, for re-flagging
                self._set_meta_many({"calibration": calibration})
            if by_set:
                session_listing.unlist_results(self.conn, names, idxs)
            # a pair scored again (a --rerun's results are deleted first; an import may replace) loses its old
            # inputs' numbers: one statement per 500 pairs (a DELETE per pair was a fifth of the writes' CPU)
            for i in range(0, len(idxs), 500):
                part = idxs[i : i + 500]
                self.conn.execute(f"DELETE FROM modality_results WHERE pair_idx IN ({','.join('?' * len(part))})", part)
            self.conn.executemany(INSERT_RESULT, result_rows)
            self.conn.executemany(INSERT_MODALITY_RESULT, modality_rows)
            if by_set:
                session_listing.list_results(self.conn, names)

    def set_thresholds(self, thresholds: FlagThresholds,
                       progress: Callable[[int, int], None] | None = None) -> None:
        """Save new thresholds and recompute every stored pair's flags from its stored numbers, in one
        transaction; ``progress(done, total)`` after each chunk (it touches every result: the app calls it
        off the GUI thread for a large session)."""
        total = self.result_count()
        done = 0
        with self.transaction():
            for updates in session_queries.reflagged(self.conn, thresholds, self.meta().get("calibration"),
                                                     self.modality_names):
                self.conn.executemany("UPDATE results SET flags = ? WHERE pair_idx = ? AND flags IS NOT ?",
                                      [(f, i, f) for f, i in updates])
                done += len(updates)
                if progress is not None:
                    progress(done, total)
            self._set_meta_many({"thresholds": thresholds.to_dict()})

    # ------------------------------------------------------------------ verdicts
    def set_verdict(self, pair_id: str, verdict: str | None = None, relabel: str | None = None,
                    note: str | None = None) -> None:
        """Record the analyst's verdict and/or note for a pair now (own transaction, durable at once).

        ``note=None`` keeps the current note; ``verdict=None`` with a note only changes the note.
        Use ``clear_verdict`` to remove a verdict.
        """
        session_verdicts.set_verdict(self.conn, self.transaction, pair_id, verdict, relabel, note)

    def clear_verdict(self, pair_id: str) -> None:
        session_verdicts.clear_verdict(self.conn, self.transaction, pair_id)

    def verdict(self, pair_id: str) -> dict[str, Any]:
        return session_verdicts.verdict(self.conn, pair_id)
    def prediction_json(self, pair_id: str) -> dict[str, Any] | None:
        """The stored result as ``Prediction.to_json()`` (the same builder as ``qmf predict --json``), or None.

        ``seconds`` is the pair's decode + predict time in the batch; a result stored by a format-1
        session has no late-fusion probabilities (an empty list)."""
        row = self.row(pair_id)
        if row is None or row.status != "ok":
            return None
        with self._damage_is_session_error():
            return session_queries.stored_prediction(self.conn, row, self.meta())

    @contextlib.contextmanager
    def _damage_is_session_error(self) -> Iterator[None]:
        try:
            yield
        except session_queries.DamagedRowError as exc:
            raise SessionError(f"{self.path}: damaged session ({exc})") from None

    # ------------------------------------------------------------------ summary (session_summary.py)
    def distinct(self, column: str) -> list[str]:
        """Distinct values of "label", "prediction" or "flag" for filter menus."""
        return session_summary.distinct(self.conn, column)

    def flag_counts(self) -> dict[str, int]:
        return session_summary.flag_counts(self.conn)

    def modality_histogram(self, modality: str, what: str = "quality", bins: int = 30) -> tuple[list[int], float, float]:
        """(counts, low, high) of one modality's number in ``bins`` equal bins (numpy.histogram's edges),
        counted in SQL; it reads every pair's value, so the app calls it off the GUI thread."""
        return session_summary.modality_histogram(self.conn, modality, self.modality_names, what, bins)

    def modality_values(self, modality: str, what: str = "quality") -> list[float]:
        return session_summary.modality_values(self.conn, modality, what)

    def summary(self) -> dict[str, Any]:
        """Counts, accuracy and the confusion matrix (rows: given label, columns: prediction)."""
        return session_summary.summary(self.conn, self.labels)
