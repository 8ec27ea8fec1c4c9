"""Reading a session's rows: filters and sort orders turned into SQL, and result rows turned into
:class:`ReviewRow` objects.

The table's rows are read from the listing (session_listing.py: one row per pair, the modalities'
numbers in columns ``m0_*``, ``m1_*`` … in the session's modality order) by primary key, once
session_paging.py has chosen which pairs a window holds; a stored prediction is rebuilt from the
base tables.
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
    PendingPair,
    ReviewRow,
    flags_list,
    flags_text,
)

__all__ = ["SORT_KEYS", "DamagedRowError", "pending_pairs", "reflagged", "row_by_id", "rows_by_idx",
           "stored_prediction"]


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


def _listing_columns(n_modalities: int) -> str:
    mods = "".join(f", l.m{i}_label, l.m{i}_probability, l.m{i}_energy, l.m{i}_quality, l.m{i}_share"
                   for i in range(n_modalities))
    return ("l.idx, l.id, p.files, l.label, l.status, l.error, l.prediction, l.probability, l.correct, l.flags, "
            "l.seconds, l.verdict, l.relabel, l.note" + mods)


def _review_row(rec: Sequence[Any], names: Sequence[str]) -> ReviewRow:
    mods = {}
    for i, name in enumerate(names):
        lab, prob, en, q, s = rec[14 + 5 * i: 19 + 5 * i]
        if lab is not None:
            mods[name] = {"label": lab, "probability": prob, "energy": en, "quality": q, "share": s}
    return ReviewRow(
        idx=rec[0], id=rec[1], files=_loads(rec[2], f"the files of pair {rec[1]!r}", dict), label=rec[3],
        status=rec[4] or "pending",
        error=rec[5], prediction=rec[6], probability=rec[7],
        correct=None if rec[8] is None else bool(rec[8]), flags=flags_list(rec[9]),
        seconds=rec[10], verdict=rec[11], relabel=rec[12], note=rec[13] or "", modalities=mods,
    )


def rows_by_idx(conn: sqlite3.Connection, modality_names: Sequence[str], idxs: Sequence[int]) -> list[ReviewRow]:
    """The rows of these pairs (listing + their files), in the order given: one primary-key look-up each."""
    if not idxs:
        return []
    names = list(modality_names)
    found: dict[int, Any] = {}
    for start in range(0, len(idxs), 500):
        chunk = idxs[start:start + 500]
        for rec in conn.execute(
            f"SELECT {_listing_columns(len(names))} FROM listing l JOIN pairs p ON p.idx = l.idx "
            f"WHERE l.idx IN ({','.join('?' * len(chunk))})", list(chunk)):
            found[rec[0]] = rec
    return [_review_row(found[i], names) for i in idxs if i in found]


def row_by_id(conn: sqlite3.Connection, modality_names: Sequence[str], pair_id: str) -> ReviewRow | None:
    names = list(modality_names)
    rec = conn.execute(f"SELECT {_listing_columns(len(names))} FROM listing l JOIN pairs p ON p.idx = l.idx "
                       "WHERE l.id = ?", (pair_id,)).fetchone()
    return None if rec is None else _review_row(rec, names)


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
              order: Sequence[str], chunk: int = 5000) -> Iterator[list[tuple[str, int]]]:
    """``(flags_text, pair_idx)`` for every stored result, its flags recomputed from its stored numbers,
    ``chunk`` results at a time in pair order (memory does not grow with the session; each chunk is a
    fresh primary-key range query, so the caller may write the updates between chunks).

    ``calibration`` is the model's calibration table when it has one (each modality's unfamiliar
    mark comes from it); ``order`` is the session's modality order.
    """
    last = -1
    while True:
        results = conn.execute(
            "SELECT r.pair_idx, r.status, r.error, r.prediction, r.probability, p.label "
            "FROM results r JOIN pairs p ON p.idx = r.pair_idx WHERE r.pair_idx > ? ORDER BY r.pair_idx LIMIT ?",
            (last, chunk)).fetchall()
        if not results:
            return
        per_pair: dict[int, dict[str, dict[str, Any]]] = {}
        for idx, name, label, share, quality in conn.execute(
            "SELECT pair_idx, modality, label, share, quality FROM modality_results WHERE pair_idx BETWEEN ? AND ?",
            (results[0][0], results[-1][0]),
        ):
            table = modality_table(calibration, name)
            mark = None if quality is None else is_unfamiliar(table, quality)
            per_pair.setdefault(idx, {})[name] = {"label": label, "share": share, "unfamiliar": mark}
        updates = []
        for idx, status, error, prediction, probability, label in results:
            mods = per_pair.get(idx, {})
            mods = {n: mods[n] for n in order if n in mods}
            flags = compute_flags(probability, prediction, mods, label, thresholds,
                                  error=error if status == "error" else None)
            updates.append((flags_text(flags), idx))
        yield updates
        last = results[-1][0]
