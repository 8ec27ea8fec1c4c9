"""A session's totals: counts, accuracy, the confusion matrix, how often each flag fired, and the
values behind the filter menus and histograms. Read-only queries over a session's connection.

Everything but the histograms reads ``listing_groups`` (session_listing.py: the pairs counted per
combination of status, label, prediction, correct, flags and verdict, kept by triggers), a few
hundred rows whatever the session's size. A histogram reads each pair's value from one covering
index; the app computes it off the GUI thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from app.review import session_listing
from app.review.session_schema import flags_list

__all__ = ["distinct", "flag_counts", "modality_histogram", "modality_values", "summary"]


def _groups(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT status, label, prediction, correct, flags, verdict, n FROM listing_groups "
                        "WHERE n > 0").fetchall()


def _flag_counts(groups: Sequence[tuple[Any, ...]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for *_, flags, _verdict, n in groups:
        for f in flags_list(flags):
            counts[f] = counts.get(f, 0) + n
    return counts


def flag_counts(conn: sqlite3.Connection) -> dict[str, int]:
    return _flag_counts(_groups(conn))


def distinct(conn: sqlite3.Connection, column: str) -> list[str]:
    """Distinct values of "label", "prediction" or "flag" for filter menus."""
    if column in ("label", "prediction"):
        return [r[0] for r in conn.execute(
            f"SELECT DISTINCT {column} FROM listing_groups WHERE n > 0 AND {column} IS NOT NULL ORDER BY {column}")]
    if column == "flag":
        return sorted(flag_counts(conn))
    raise ValueError(column)


def modality_values(conn: sqlite3.Connection, modality: str, what: str = "quality") -> list[float]:
    """Every stored value of one modality's number (a full read: for small sessions and tests;
    the app's histograms use :func:`modality_histogram`)."""
    if what not in ("quality", "share", "energy", "probability"):
        raise ValueError(what)
    return [r[0] for r in conn.execute(
        f"SELECT {what} FROM modality_results WHERE modality = ? AND {what} IS NOT NULL", (modality,))]


def modality_histogram(conn: sqlite3.Connection, modality: str, modality_names: Sequence[str],
                       what: str = "quality", bins: int = 30) -> tuple[list[int], float, float]:
    """``(counts, low, high)``: one modality's values counted in ``bins`` equal bins from the lowest to
    the highest value, as ``numpy.histogram(values, bins)`` (a single value: the bins span it ± 0.5).
    No values: ``([], 0.0, 0.0)``."""
    if what not in ("quality", "share", "energy", "probability") or modality not in modality_names:
        raise ValueError(f"{modality}.{what}")
    col = session_listing.column_for(f"{modality}.{what}", modality_names)
    lo, hi = conn.execute(f"SELECT MIN({col}), MAX({col}) FROM listing").fetchone()
    if lo is None:
        return [], 0.0, 0.0
    lo, hi = float(lo), float(hi)
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    counts = [0] * bins
    index = session_listing.index_name(col)
    indexed = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (index,)).fetchone()
    hint = f" INDEXED BY {index}" if indexed else ""  # (a bulk load drops the index for a while)
    norm = bins / (hi - lo)  # numpy's own bin arithmetic: (value - low) * (bins / (high - low))
    for b, n in conn.execute(
        f"SELECT MIN(CAST(({col} - ?) * ? AS INTEGER), ?), COUNT(*) FROM listing{hint} "
        f"WHERE {col} IS NOT NULL GROUP BY 1", (lo, norm, bins - 1)):
        counts[max(0, int(b))] += n
    return counts, lo, hi


def summary(conn: sqlite3.Connection, labels: Sequence[str]) -> dict[str, Any]:
    """Counts, accuracy and the confusion matrix (rows: given label, columns: prediction).

    Given labels the model does not know get rows of their own after the model's labels."""
    groups = _groups(conn)
    total = done = errors = correct = labelled = 0
    labels = list(labels)
    given = {g[1] for g in groups if g[1] is not None}
    row_labels = labels + sorted(given - set(labels))
    matrix = [[0] * len(labels) for _ in row_labels]
    verdicts: dict[str, int] = {}
    for status, label, pred, _correct, _flags, verdict, n in groups:
        total += n
        if status != "pending":
            done += n
        if status == "error":
            errors += n
        if verdict is not None:
            verdicts[verdict] = verdicts.get(verdict, 0) + n
        if status == "ok" and label is not None:
            labelled += n
            if label == pred:
                correct += n
            if pred in labels:
                matrix[row_labels.index(label)][labels.index(pred)] += n
    return {
        "pairs": total, "done": done, "pending": total - done, "errors": errors,
        "labelled": labelled, "correct": correct, "accuracy": (correct / labelled) if labelled else None,
        "confusion": {"labels": row_labels, "predictions": labels, "matrix": matrix},
        "flags": _flag_counts(groups), "verdicts": dict(sorted(verdicts.items())),
    }
