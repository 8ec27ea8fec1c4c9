"""Reading a session's rows: filters and sort orders turned into SQL, and result rows turned into
:class:`ReviewRow` objects.

The table view asks for one window of rows at a time (``LIMIT``/``OFFSET``), filtered and sorted in
SQL, so a session of a hundred thousand pairs is never loaded whole. Each modality's numbers come
from its own ``LEFT JOIN`` on ``modality_results`` (aliased ``m0``, ``m1`` … in the session's
modality order), which lets a sort key such as ``"audio.quality"`` be a plain column.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from app.qmf.calibration import is_unfamiliar, modality_table, percentile
from app.qmf.prediction import ModalityResult, Prediction
from app.review.flags import FlagThresholds, compute_flags
from app.review.session_schema import (
    ANY_FLAG,
    NO_FLAG,
    PendingPair,
    ReviewRow,
    RowFilter,
    flags_list,
    flags_text,
)

__all__ = ["SORT_KEYS", "DamagedRowError", "count_rows", "pending_pairs", "reflagged", "select_rows", "sort_expr",
           "stored_prediction", "where_clause"]


class DamagedRowError(ValueError):
    """A stored row whose JSON cannot be read (a damaged file); ReviewSession turns it into a SessionError."""


def _loads(text: Any, what: str, kind: type) -> Any:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        value = None
    if not isinstance(value, kind):
        raise DamagedRowError(f"{what} cannot be read")
    return value

SORT_KEYS = ("index", "id", "label", "prediction", "probability", "correct", "flags", "verdict", "note",
             "status", "seconds")
_SIMPLE_SORT = {
    "index": "p.idx", "id": "p.id", "label": "p.label", "prediction": "r.prediction",
    "probability": "r.probability", "correct": "r.correct", "flags": "r.flags",
    "verdict": "v.verdict", "note": "v.note", "status": "COALESCE(r.status, 'pending')",
    "seconds": "(r.decode_seconds + r.predict_seconds)",
}
_MODALITY_SORT = ("quality", "share", "label", "probability", "energy")


def sort_expr(key: str, modality_names: Sequence[str]) -> str:
    """The SQL expression for a sort key: one of SORT_KEYS or "<modality>.<quality|share|label|probability|energy>"."""
    if key in _SIMPLE_SORT:
        return _SIMPLE_SORT[key]
    name, _, what = key.partition(".")
    if name in modality_names and what in _MODALITY_SORT:
        return f"m{list(modality_names).index(name)}.{what}"
    raise ValueError(f"cannot sort by {key!r}")


def where_clause(flt: RowFilter | None) -> tuple[str, list[Any]]:
    """``(" WHERE ...", params)`` for a filter; ``("", [])`` when nothing filters."""
    if flt is None:
        return "", []
    clauses: list[str] = []
    params: list[Any] = []
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


def _from(n_modalities: int) -> str:
    # one join per modality; each takes the modality's name as a parameter, in session order
    joins = "".join(
        f" LEFT JOIN modality_results m{i} ON m{i}.pair_idx = p.idx AND m{i}.modality = ?"
        for i in range(n_modalities)
    )
    return ("FROM pairs p LEFT JOIN results r ON r.pair_idx = p.idx "
            "LEFT JOIN verdicts v ON v.pair_id = p.id" + joins)


def count_rows(conn: sqlite3.Connection, modality_names: Sequence[str], where: str, params: list[Any]) -> int:
    return conn.execute(f"SELECT COUNT(*) {_from(len(modality_names))}{where}",
                        [*modality_names, *params]).fetchone()[0]


def select_rows(conn: sqlite3.Connection, modality_names: Sequence[str], tail: str,
                params: list[Any]) -> list[ReviewRow]:
    """Rows for ``SELECT ... FROM <pairs, results, verdicts, modalities>{tail}``."""
    names = list(modality_names)
    mod_cols = "".join(f", m{i}.label, m{i}.probability, m{i}.energy, m{i}.quality, m{i}.share"
                       for i in range(len(names)))
    sql = (
        "SELECT p.idx, p.id, p.files, p.label, r.status, r.error, r.prediction, r.probability, r.correct, "
        "r.flags, r.decode_seconds + r.predict_seconds, v.verdict, v.relabel, v.note"
        f"{mod_cols} {_from(len(names))}{tail}"
    )
    out = []
    for rec in conn.execute(sql, [*names, *params]):
        mods = {}
        for i, name in enumerate(names):
            lab, prob, en, q, s = rec[14 + 5 * i: 19 + 5 * i]
            if lab is not None:
                mods[name] = {"label": lab, "probability": prob, "energy": en, "quality": q, "share": s}
        out.append(ReviewRow(
            idx=rec[0], id=rec[1], files=_loads(rec[2], f"the files of pair {rec[1]!r}", dict), label=rec[3],
            status=rec[4] or "pending",
            error=rec[5], prediction=rec[6], probability=rec[7],
            correct=None if rec[8] is None else bool(rec[8]), flags=flags_list(rec[9]),
            seconds=rec[10], verdict=rec[11], relabel=rec[12], note=rec[13] or "", modalities=mods,
        ))
    return out


def stored_prediction(conn: sqlite3.Connection, row: ReviewRow, meta: dict[str, Any]) -> dict[str, Any]:
    """An "ok" row's stored numbers rebuilt into ``Prediction.to_json()`` (the one builder of that JSON)."""
    probs, late = conn.execute(
        "SELECT probabilities, late_probabilities FROM results WHERE pair_idx = ?", (row.idx,)).fetchone()
    mprobs = dict(conn.execute(
        "SELECT modality, probabilities FROM modality_results WHERE pair_idx = ?", (row.idx,)).fetchall())
    labels = list(meta["labels"])
    kinds = meta["modalities"]
    calibration = meta.get("calibration")  # stored with the first results of a calibrated model

    def index(label: str | None) -> int:
        return labels.index(label) if label in labels else -1

    return Prediction(
        model_name=meta["model_name"], model_sha256=meta["model_sha256"], labels=labels,
        label=row.prediction, index=index(row.prediction), probability=row.probability,
        probabilities=_loads(probs, f"the probabilities of pair {row.id!r}", list),
        modalities={
            name: ModalityResult(
                name=name, kind=kinds.get(name, ""), file=row.files.get(name), label=m["label"],
                index=index(m["label"]), probability=m["probability"],
                probabilities=_loads(mprobs.get(name) or "[]", f"the {name} probabilities of pair {row.id!r}", list),
                energy=m["energy"], quality=m["quality"], share=m["share"],
                quality_percentile=None if m["quality"] is None else percentile(modality_table(calibration, name), m["quality"]),
                unfamiliar=None if m["quality"] is None else is_unfamiliar(modality_table(calibration, name), m["quality"]),
            )
            for name, m in row.modalities.items()
        },
        late_fusion_probabilities=_loads(late, f"the late-fusion probabilities of pair {row.id!r}", list) if late else [],
        seconds=row.seconds or 0.0,
        calibration=calibration,
    ).to_json()


def pending_pairs(conn: sqlite3.Connection, page: int) -> Iterator[PendingPair]:
    """Pairs without a result, in source order, ``page`` rows per query (DamagedRowError for a damaged row).

    Each page is a fresh query after the last index seen, so the caller may write results between
    pages on the same connection.
    """
    last = -1
    while True:
        rows = conn.execute(
            "SELECT p.idx, p.id, p.files, p.label FROM pairs p LEFT JOIN results r ON r.pair_idx = p.idx "
            "WHERE r.pair_idx IS NULL AND p.idx > ? ORDER BY p.idx LIMIT ?",
            (last, page),
        ).fetchall()
        if not rows:
            return
        for idx, pid, files, label in rows:
            if not isinstance(idx, int) or idx <= last:  # the key must grow, or this would never end
                raise DamagedRowError(f"pair index {idx!r} out of order")
            try:
                decoded = json.loads(files)
            except (TypeError, ValueError):
                decoded = None
            if not isinstance(decoded, dict) or not all(isinstance(v, str) for v in decoded.values()):
                raise DamagedRowError(f"the files of pair {pid!r} cannot be read")
            yield PendingPair(idx, str(pid), decoded, label)
            last = idx


def reflagged(conn: sqlite3.Connection, thresholds: FlagThresholds, calibration: dict[str, Any] | None,
              order: Sequence[str]) -> list[tuple[str, int]]:
    """``(flags_text, pair_idx)`` for every stored result, its flags recomputed from its stored numbers.

    ``calibration`` is the model's calibration table when it has one (each modality's unfamiliar
    mark comes from it); ``order`` is the session's modality order.
    """
    per_pair: dict[int, dict[str, dict[str, Any]]] = {}
    for idx, name, label, share, quality in conn.execute(
        "SELECT pair_idx, modality, label, share, quality FROM modality_results ORDER BY pair_idx"
    ):
        table = modality_table(calibration, name)
        mark = None if quality is None else is_unfamiliar(table, quality)
        per_pair.setdefault(idx, {})[name] = {"label": label, "share": share, "unfamiliar": mark}
    updates = []
    for idx, status, error, prediction, probability, label in conn.execute(
        "SELECT r.pair_idx, r.status, r.error, r.prediction, r.probability, p.label "
        "FROM results r JOIN pairs p ON p.idx = r.pair_idx"
    ).fetchall():
        mods = per_pair.get(idx, {})
        mods = {n: mods[n] for n in order if n in mods}
        flags = compute_flags(probability, prediction, mods, label, thresholds,
                              error=error if status == "error" else None)
        updates.append((flags_text(flags), idx))
    return updates
