"""A session's totals: counts, accuracy, the confusion matrix, how often each flag fired, and the
values behind the filter menus and histograms. Read-only queries over a session's connection."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from app.review.session_schema import flags_list

__all__ = ["distinct", "flag_counts", "modality_values", "summary"]


def flag_counts(conn: sqlite3.Connection) -> dict[str, int]:
    counts: dict[str, int] = {}
    for (text,) in conn.execute("SELECT flags FROM results WHERE flags != ''"):
        for f in flags_list(text):
            counts[f] = counts.get(f, 0) + 1
    return counts


def distinct(conn: sqlite3.Connection, column: str) -> list[str]:
    """Distinct values of "label", "prediction" or "flag" for filter menus."""
    if column == "label":
        q = "SELECT DISTINCT label FROM pairs WHERE label IS NOT NULL ORDER BY label"
    elif column == "prediction":
        q = "SELECT DISTINCT prediction FROM results WHERE prediction IS NOT NULL ORDER BY prediction"
    elif column == "flag":
        return sorted(flag_counts(conn))
    else:
        raise ValueError(column)
    return [r[0] for r in conn.execute(q)]


def modality_values(conn: sqlite3.Connection, modality: str, what: str = "quality") -> list[float]:
    """Every stored value of one modality's number (for histograms)."""
    if what not in ("quality", "share", "energy", "probability"):
        raise ValueError(what)
    return [r[0] for r in conn.execute(
        f"SELECT {what} FROM modality_results WHERE modality = ? AND {what} IS NOT NULL", (modality,))]


def summary(conn: sqlite3.Connection, labels: Sequence[str]) -> dict[str, Any]:
    """Counts, accuracy and the confusion matrix (rows: given label, columns: prediction).

    Given labels the model does not know get rows of their own after the model's labels."""
    total = conn.execute("SELECT COUNT(*) FROM pairs").fetchone()[0]
    done = conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    errors = conn.execute("SELECT COUNT(*) FROM results WHERE status = 'error'").fetchone()[0]
    labels = list(labels)
    given = [r[0] for r in conn.execute("SELECT DISTINCT label FROM pairs WHERE label IS NOT NULL")]
    row_labels = labels + sorted(set(given) - set(labels))
    matrix = [[0] * len(labels) for _ in row_labels]
    correct = labelled = 0
    for label, pred, n in conn.execute(
        "SELECT p.label, r.prediction, COUNT(*) FROM results r JOIN pairs p ON p.idx = r.pair_idx "
        "WHERE r.status = 'ok' AND p.label IS NOT NULL GROUP BY p.label, r.prediction"
    ):
        labelled += n
        if label == pred:
            correct += n
        if pred in labels:
            matrix[row_labels.index(label)][labels.index(pred)] += n
    verdicts = dict(conn.execute(
        "SELECT verdict, COUNT(*) FROM verdicts WHERE verdict IS NOT NULL GROUP BY verdict").fetchall())
    return {
        "pairs": total, "done": done, "pending": total - done, "errors": errors,
        "labelled": labelled, "correct": correct, "accuracy": (correct / labelled) if labelled else None,
        "confusion": {"labels": row_labels, "predictions": labels, "matrix": matrix},
        "flags": flag_counts(conn), "verdicts": verdicts,
    }
