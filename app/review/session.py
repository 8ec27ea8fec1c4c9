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

import json
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.data.manifest import PairRow
from app.review.flags import FLAG_ERROR, FlagThresholds, compute_flags

__all__ = [
    "ANY_FLAG",
    "NO_FLAG",
    "SCHEMA_VERSION",
    "VERDICTS",
    "ModelMismatchError",
    "PendingPair",
    "ResultRecord",
    "ReviewRow",
    "ReviewSession",
    "RowFilter",
]

SCHEMA_VERSION = 1
ANY_FLAG = "(any flag)"  # RowFilter.flag values that mean "has some flag" / "a result without flags"
NO_FLAG = "(no flag)"
VERDICTS = ("accept", "reject", "relabel")

_SCHEMA = """
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
    created         REAL NOT NULL
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


class ModelMismatchError(ValueError):
    """The session was made by a different model file than the one given now."""


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


def _flags_text(flags: Sequence[str]) -> str:
    # '|a|b|' so that a filter is a plain LIKE '%|a|%' and 'low-quality image' never matches 'image2'
    return "|" + "|".join(flags) + "|" if flags else ""


def _flags_list(text: str | None) -> list[str]:
    return [f for f in (text or "").split("|") if f]


def _finite(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


class ReviewSession:
    """One open review session file. Use :meth:`create` for a new one and :meth:`open` for an existing one."""

    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path = path
        self.conn = conn
        self._meta_cache: dict[str, Any] | None = None

    # ------------------------------------------------------------------ opening
    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(str(path), isolation_level=None, timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # a committed batch survives a power cut too, not only a crash
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

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
        """
        p = Path(path).expanduser().absolute()
        if p.exists():
            raise FileExistsError(f"{p}: already exists (open it to resume, or choose another name)")
        p.parent.mkdir(parents=True, exist_ok=True)
        conn = cls._connect(p)
        session = cls(p, conn)
        with session.transaction():
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            session._set_meta_many(
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
        return session

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> ReviewSession:
        """Open an existing session; ValueError naming the file when it is not one."""
        p = Path(path).expanduser().absolute()
        if not p.is_file():
            raise FileNotFoundError(f"{p}: review session not found")
        try:
            conn = cls._connect(p)
            rows = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"{p}: not a QMF review session ({exc})") from None
        version = json.loads(rows.get("schema_version", "null"))
        if version is None:
            conn.close()
            raise ValueError(f"{p}: not a QMF review session (no schema version)")
        if version > SCHEMA_VERSION:
            conn.close()
            raise ValueError(f"{p}: made by a newer QMF Studio (session format {version}, this one reads {SCHEMA_VERSION})")
        return cls(p, conn)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> ReviewSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    class _Transaction:
        def __init__(self, conn: sqlite3.Connection):
            self.conn = conn

        def __enter__(self) -> None:
            self.conn.execute("BEGIN IMMEDIATE")

        def __exit__(self, exc_type: object, *rest: object) -> None:
            self.conn.execute("ROLLBACK" if exc_type else "COMMIT")

    def transaction(self) -> ReviewSession._Transaction:
        return ReviewSession._Transaction(self.conn)

    # ------------------------------------------------------------------ meta
    def _set_meta_many(self, values: Mapping[str, Any]) -> None:
        self.conn.executemany(
            "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            [(k, json.dumps(v)) for k, v in values.items()],
        )
        self._meta_cache = None

    def meta(self) -> dict[str, Any]:
        if self._meta_cache is None:
            self._meta_cache = {k: json.loads(v) for k, v in self.conn.execute("SELECT key, value FROM meta")}
        return dict(self._meta_cache)

    @property
    def model_name(self) -> str:
        return self.meta()["model_name"]

    @property
    def model_sha256(self) -> str:
        return self.meta()["model_sha256"]

    @property
    def model_path(self) -> str | None:
        return self.meta().get("model_path")

    @property
    def modality_names(self) -> list[str]:
        return list(self.meta()["modalities"])

    @property
    def labels(self) -> list[str]:
        return list(self.meta()["labels"])

    @property
    def source_path(self) -> Path:
        return Path(self.meta()["source_path"])

    @property
    def source_kind(self) -> str:
        return self.meta()["source_kind"]

    @property
    def thresholds(self) -> FlagThresholds:
        return FlagThresholds.from_dict(self.meta().get("thresholds"))

    @property
    def manifest_modalities(self) -> list[dict[str, Any]]:
        stored = self.meta().get("manifest_modalities") or []
        return stored or [{"name": n, "kind": k, "preprocessing": {}} for n, k in self.meta()["modalities"].items()]

    def stored_thresholds(self) -> FlagThresholds:
        """The thresholds as saved now (bypasses the cache: another connection may have changed them)."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'thresholds'").fetchone()
        return FlagThresholds.from_dict(json.loads(row[0]) if row else None)

    def reload(self) -> None:
        """Forget cached metadata (another connection, e.g. the app's worker, may have changed it)."""
        self._meta_cache = None

    @property
    def unmatched(self) -> list[tuple[str, str]]:
        return [tuple(u) for u in self.meta().get("unmatched", [])]

    def set_unmatched(self, unmatched: Iterable[tuple[Path | str, str]]) -> None:
        with self.transaction():
            self._set_meta_many({"unmatched": [[str(p), r] for p, r in unmatched]})

    def check_model(self, name: str, sha256: str) -> None:
        """ModelMismatchError when the session's results were made by another model."""
        if sha256 != self.model_sha256:
            raise ModelMismatchError(
                f"{self.path}: made by model {self.model_name} (sha256 {self.model_sha256[:12]}), "
                f"not by {name} (sha256 {sha256[:12]}); re-run with --rerun to replace the results "
                "with this model's (verdicts and notes are kept)"
            )

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
    def add_pairs(self, pairs: Iterable[PairRow]) -> int:
        """Add pairs not yet in the session (by id); returns how many were new. Idempotent."""
        start = self.conn.execute("SELECT COALESCE(MAX(idx), -1) + 1 FROM pairs").fetchone()[0]
        before = self.pair_count()
        with self.transaction():
            self.conn.executemany(
                "INSERT OR IGNORE INTO pairs(idx, id, files, label) VALUES(?, ?, ?, ?)",
                (
                    (start + i, p.id, json.dumps({k: str(v) for k, v in p.files.items()}), p.label)
                    for i, p in enumerate(pairs)
                ),
            )
        return self.pair_count() - before

    def pair_count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM pairs").fetchone()[0]

    def result_count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def pending_count(self) -> int:
        return self.pair_count() - self.result_count()

    def iter_pending(self, page: int = 512) -> Iterator[PendingPair]:
        """Pairs without a result, in source order, read a page at a time (bounded memory).

        Each page is a fresh query after the last index seen, so the caller may write results between
        pages on the same connection.
        """
        last = -1
        while True:
            rows = self.conn.execute(
                "SELECT p.idx, p.id, p.files, p.label FROM pairs p LEFT JOIN results r ON r.pair_idx = p.idx "
                "WHERE r.pair_idx IS NULL AND p.idx > ? ORDER BY p.idx LIMIT ?",
                (last, page),
            ).fetchall()
            if not rows:
                return
            for idx, pid, files, label in rows:
                yield PendingPair(idx, pid, json.loads(files), label)
            last = rows[-1][0]

    # ------------------------------------------------------------------ results
    def write_results(self, records: Sequence[ResultRecord], thresholds: FlagThresholds | None = None) -> None:
        """Store a batch of results in one transaction (all or nothing)."""
        th = thresholds or self.thresholds
        now = time.time()
        result_rows = []
        modality_rows = []
        for rec in records:
            if rec.error is not None or rec.prediction is None:
                error = rec.error or "no prediction"
                result_rows.append((rec.pair_idx, "error", error, None, None, None, None,
                                    _flags_text([FLAG_ERROR]), rec.decode_seconds, rec.predict_seconds, None, now))
                continue
            pred = rec.prediction
            mods = pred["modalities"]
            flags = compute_flags(pred["probability"], pred["label"], mods, rec.label, th)
            correct = None if rec.label is None else int(rec.label == pred["label"])
            result_rows.append((rec.pair_idx, "ok", None, pred["label"], float(pred["probability"]),
                                json.dumps(pred["probabilities"]), correct, _flags_text(flags),
                                rec.decode_seconds, rec.predict_seconds, pred["model"]["sha256"], now))
            for name, m in mods.items():
                modality_rows.append((rec.pair_idx, name, m["label"], _finite(m["probability"]),
                                      json.dumps(m["probabilities"]), _finite(m["energy"]),
                                      _finite(m["quality"]), _finite(m["share"])))
        calibrated = next((r.prediction.get("calibration") for r in records if r.prediction), None)
        with self.transaction():
            if calibrated and "unfamiliar_below" not in self.meta():  # one model per session: stored once, for re-flagging
                self._set_meta_many({"unfamiliar_below": calibrated.get("unfamiliar_below") or {}})
            idxs = [(r[0],) for r in result_rows]
            self.conn.executemany("DELETE FROM modality_results WHERE pair_idx = ?", idxs)
            self.conn.executemany("INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", result_rows)
            self.conn.executemany("INSERT INTO modality_results VALUES (?,?,?,?,?,?,?,?)", modality_rows)

    def set_thresholds(self, thresholds: FlagThresholds) -> None:
        """Save new thresholds and recompute every stored pair's flags from its stored numbers."""
        per_pair: dict[int, dict[str, dict[str, Any]]] = {}
        below = self.meta().get("unfamiliar_below") or {}  # the model's calibration, when it has one
        for idx, name, label, share, quality in self.conn.execute(
            "SELECT pair_idx, modality, label, share, quality FROM modality_results ORDER BY pair_idx"
        ):
            mark = None if name not in below or quality is None else bool(quality < below[name])
            per_pair.setdefault(idx, {})[name] = {"label": label, "share": share, "unfamiliar": mark}
        order = self.modality_names
        updates = []
        for idx, status, error, prediction, probability, label in self.conn.execute(
            "SELECT r.pair_idx, r.status, r.error, r.prediction, r.probability, p.label "
            "FROM results r JOIN pairs p ON p.idx = r.pair_idx"
        ).fetchall():
            mods = per_pair.get(idx, {})
            mods = {n: mods[n] for n in order if n in mods}
            flags = compute_flags(probability, prediction, mods, label, thresholds,
                                  error=error if status == "error" else None)
            updates.append((_flags_text(flags), idx))
        with self.transaction():
            self.conn.executemany("UPDATE results SET flags = ? WHERE pair_idx = ?", updates)
            self._set_meta_many({"thresholds": thresholds.to_dict()})

    # ------------------------------------------------------------------ verdicts
    def set_verdict(self, pair_id: str, verdict: str | None = None, relabel: str | None = None,
                    note: str | None = None) -> None:
        """Record the analyst's verdict and/or note for a pair now (own transaction, durable at once).

        ``note=None`` keeps the current note; ``verdict=None`` with a note only changes the note.
        Use ``clear_verdict`` to remove a verdict.
        """
        if verdict is not None and verdict not in VERDICTS:
            raise ValueError(f"verdict {verdict!r}: expected one of {', '.join(VERDICTS)}")
        if verdict == "relabel" and not relabel:
            raise ValueError("a relabel verdict needs the new label")
        cur = self.verdict(pair_id)
        new_verdict = verdict if verdict is not None else cur["verdict"]
        new_relabel = relabel if verdict == "relabel" else (None if verdict is not None else cur["relabel"])
        new_note = note if note is not None else cur["note"]
        with self.transaction():
            self.conn.execute(
                "INSERT INTO verdicts(pair_id, verdict, relabel, note, updated) VALUES(?,?,?,?,?) "
                "ON CONFLICT(pair_id) DO UPDATE SET verdict=excluded.verdict, relabel=excluded.relabel, "
                "note=excluded.note, updated=excluded.updated",
                (pair_id, new_verdict, new_relabel, new_note, time.time()),
            )

    def clear_verdict(self, pair_id: str) -> None:
        with self.transaction():
            self.conn.execute("UPDATE verdicts SET verdict=NULL, relabel=NULL, updated=? WHERE pair_id=?",
                              (time.time(), pair_id))

    def verdict(self, pair_id: str) -> dict[str, Any]:
        row = self.conn.execute("SELECT verdict, relabel, note FROM verdicts WHERE pair_id=?", (pair_id,)).fetchone()
        if row is None:
            return {"verdict": None, "relabel": None, "note": ""}
        return {"verdict": row[0], "relabel": row[1], "note": row[2] or ""}

    # ------------------------------------------------------------------ reading rows
    SORT_KEYS = ("index", "id", "label", "prediction", "probability", "correct", "flags", "verdict", "note",
                 "status", "seconds")

    def _sort_expr(self, key: str) -> str:
        simple = {
            "index": "p.idx", "id": "p.id", "label": "p.label", "prediction": "r.prediction",
            "probability": "r.probability", "correct": "r.correct", "flags": "r.flags",
            "verdict": "v.verdict", "note": "v.note", "status": "COALESCE(r.status, 'pending')",
            "seconds": "(r.decode_seconds + r.predict_seconds)",
        }
        if key in simple:
            return simple[key]
        # "<modality>.<quality|share|label|probability>"
        name, _, what = key.partition(".")
        if name in self.modality_names and what in ("quality", "share", "label", "probability", "energy"):
            i = self.modality_names.index(name)
            return f"m{i}.{what}"
        raise ValueError(f"cannot sort by {key!r}")

    def _where(self, flt: RowFilter | None) -> tuple[str, list[Any]]:
        if flt is None:
            return "", []
        clauses, params = [], []
        if flt.flag == ANY_FLAG:
            clauses.append("r.flags != ''")
        elif flt.flag == NO_FLAG:
            clauses.append("r.flags = ''")
        elif flt.flag:
            clauses.append("r.flags LIKE ?")
            params.append(f"%|{flt.flag}|%")
        if flt.label:
            clauses.append("p.label = ?")
            params.append(flt.label)
        if flt.prediction:
            clauses.append("r.prediction = ?")
            params.append(flt.prediction)
        if flt.correctness == "correct":
            clauses.append("r.correct = 1")
        elif flt.correctness == "wrong":
            clauses.append("r.correct = 0")
        elif flt.correctness == "unlabelled":
            clauses.append("p.label IS NULL")
        if flt.status == "done":
            clauses.append("r.pair_idx IS NOT NULL")
        elif flt.status == "pending":
            clauses.append("r.pair_idx IS NULL")
        elif flt.status in ("ok", "error"):
            clauses.append("r.status = ?")
            params.append(flt.status)
        if flt.verdict == "none":
            clauses.append("v.verdict IS NULL")
        elif flt.verdict:
            clauses.append("v.verdict = ?")
            params.append(flt.verdict)
        if flt.search:
            clauses.append("p.id LIKE ? ESCAPE '\\'")
            escaped = flt.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params.append(f"%{escaped}%")
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def _from(self) -> str:
        joins = "".join(
            f" LEFT JOIN modality_results m{i} ON m{i}.pair_idx = p.idx AND m{i}.modality = ?"
            for i in range(len(self.modality_names))
        )
        return ("FROM pairs p LEFT JOIN results r ON r.pair_idx = p.idx "
                "LEFT JOIN verdicts v ON v.pair_id = p.id" + joins)

    def count(self, flt: RowFilter | None = None) -> int:
        where, params = self._where(flt)
        if not where:
            return self.pair_count()
        return self.conn.execute(f"SELECT COUNT(*) {self._from()}{where}",
                                 [*self.modality_names, *params]).fetchone()[0]

    def rows(self, flt: RowFilter | None = None, order_by: str = "index", descending: bool = False,
             limit: int = -1, offset: int = 0) -> list[ReviewRow]:
        """A window of rows, filtered and sorted in SQL (the table never loads them all)."""
        where, params = self._where(flt)
        direction = "DESC" if descending else "ASC"
        tail = f" ORDER BY {self._sort_expr(order_by)} {direction} NULLS LAST, p.idx LIMIT ? OFFSET ?"
        return self._select(where + tail, [*params, limit, offset])

    def row(self, pair_id: str) -> ReviewRow | None:
        found = self._select(" WHERE p.id = ?", [pair_id])
        return found[0] if found else None

    def _select(self, tail: str, params: list[Any]) -> list[ReviewRow]:
        names = self.modality_names
        mod_cols = "".join(f", m{i}.label, m{i}.probability, m{i}.energy, m{i}.quality, m{i}.share"
                           for i in range(len(names)))
        sql = (
            "SELECT p.idx, p.id, p.files, p.label, r.status, r.error, r.prediction, r.probability, r.correct, "
            "r.flags, r.decode_seconds + r.predict_seconds, v.verdict, v.relabel, v.note"
            f"{mod_cols} {self._from()}{tail}"
        )
        out = []
        for rec in self.conn.execute(sql, [*names, *params]):
            mods = {}
            for i, name in enumerate(names):
                lab, prob, en, q, s = rec[14 + 5 * i: 19 + 5 * i]
                if lab is not None:
                    mods[name] = {"label": lab, "probability": prob, "energy": en, "quality": q, "share": s}
            out.append(ReviewRow(
                idx=rec[0], id=rec[1], files=json.loads(rec[2]), label=rec[3], status=rec[4] or "pending",
                error=rec[5], prediction=rec[6], probability=rec[7],
                correct=None if rec[8] is None else bool(rec[8]), flags=_flags_list(rec[9]),
                seconds=rec[10], verdict=rec[11], relabel=rec[12], note=rec[13] or "", modalities=mods,
            ))
        return out

    def prediction_json(self, pair_id: str) -> dict[str, Any] | None:
        """The stored result in ``Prediction.to_json()`` shape (for the result view), or None."""
        row = self.row(pair_id)
        if row is None or row.status != "ok":
            return None
        (probs,) = self.conn.execute("SELECT probabilities FROM results WHERE pair_idx = ?", (row.idx,)).fetchone()
        mprobs = dict(self.conn.execute(
            "SELECT modality, probabilities FROM modality_results WHERE pair_idx = ?", (row.idx,)
        ).fetchall())
        labels = self.labels
        return {
            "model": {"name": self.model_name, "sha256": self.model_sha256},
            "labels": labels,
            "label": row.prediction,
            "index": labels.index(row.prediction) if row.prediction in labels else -1,
            "probability": row.probability,
            "probabilities": json.loads(probs),
            "modalities": {
                name: {
                    "file": row.files.get(name),
                    "label": m["label"],
                    "index": labels.index(m["label"]) if m["label"] in labels else -1,
                    "probability": m["probability"],
                    "probabilities": json.loads(mprobs.get(name) or "[]"),
                    "energy": m["energy"],
                    "quality": m["quality"],
                    "share": m["share"],
                }
                for name, m in row.modalities.items()
            },
            "seconds": row.seconds,
        }

    # ------------------------------------------------------------------ summary
    def distinct(self, column: str) -> list[str]:
        """Distinct values of "label", "prediction" or "flag" for filter menus."""
        if column == "label":
            q = "SELECT DISTINCT label FROM pairs WHERE label IS NOT NULL ORDER BY label"
        elif column == "prediction":
            q = "SELECT DISTINCT prediction FROM results WHERE prediction IS NOT NULL ORDER BY prediction"
        elif column == "flag":
            return sorted(self.flag_counts())
        else:
            raise ValueError(column)
        return [r[0] for r in self.conn.execute(q)]

    def flag_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for (text,) in self.conn.execute("SELECT flags FROM results WHERE flags != ''"):
            for f in _flags_list(text):
                counts[f] = counts.get(f, 0) + 1
        return counts

    def modality_values(self, modality: str, what: str = "quality") -> list[float]:
        if what not in ("quality", "share", "energy", "probability"):
            raise ValueError(what)
        return [r[0] for r in self.conn.execute(
            f"SELECT {what} FROM modality_results WHERE modality = ? AND {what} IS NOT NULL", (modality,))]

    def summary(self) -> dict[str, Any]:
        """Counts, accuracy and the confusion matrix (rows: given label, columns: prediction)."""
        total = self.pair_count()
        done = self.result_count()
        errors = self.conn.execute("SELECT COUNT(*) FROM results WHERE status = 'error'").fetchone()[0]
        labels = list(self.labels)
        given = [r[0] for r in self.conn.execute("SELECT DISTINCT label FROM pairs WHERE label IS NOT NULL")]
        row_labels = labels + sorted(set(given) - set(labels))
        matrix = [[0] * len(labels) for _ in row_labels]
        correct = labelled = 0
        for label, pred, n in self.conn.execute(
            "SELECT p.label, r.prediction, COUNT(*) FROM results r JOIN pairs p ON p.idx = r.pair_idx "
            "WHERE r.status = 'ok' AND p.label IS NOT NULL GROUP BY p.label, r.prediction"
        ):
            labelled += n
            if label == pred:
                correct += n
            if pred in labels:
                matrix[row_labels.index(label)][labels.index(pred)] += n
        verdicts = dict(self.conn.execute(
            "SELECT verdict, COUNT(*) FROM verdicts WHERE verdict IS NOT NULL GROUP BY verdict").fetchall())
        return {
            "pairs": total, "done": done, "pending": total - done, "errors": errors,
            "labelled": labelled, "correct": correct, "accuracy": (correct / labelled) if labelled else None,
            "confusion": {"labels": row_labels, "predictions": labels, "matrix": matrix},
            "flags": self.flag_counts(), "verdicts": verdicts,
        }
