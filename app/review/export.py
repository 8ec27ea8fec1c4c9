"""Export a review (CSV, JSON or Parquet) with verdicts and notes, and read a CSV export back.

The CSV is meant to be opened in a spreadsheet and also to come back. Text that a spreadsheet would
run as a formula (ids from file names like `=HYPERLINK(...)`, notes like `=cmd|' /C calc'!A0`) is
neutralised as OWASP recommends: a text cell starting with = + - @ TAB or CR, or with the quote
itself, gets a leading `'`; numbers are written as numbers. Reading the export back removes that
quote again, so :func:`read_csv_export` parses
it into the same values, and :func:`import_verdicts` applies its verdict/note columns to a session
(e.g. after an analyst edited notes in a spreadsheet). Rows are streamed a page at a time so exporting
a large session does not load it into memory. Files are written to a temporary name and renamed, so
an interrupted export never leaves half a file under the real name.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.review.session import ReviewRow, ReviewSession, RowFilter
from app.util.files import atomic_open

__all__ = ["csv_columns", "export_csv", "export_json", "export_parquet", "import_verdicts", "iter_rows",
           "read_csv_export", "row_dict"]

_MOD_FIELDS = ("file", "label", "probability", "quality", "share", "energy")
_FLAG_SEPARATOR = "; "
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")  # "'" too, so the quote added is always the app's


def csv_columns(modalities: list[str]) -> list[str]:
    cols = ["id", "label", "status", "prediction", "probability", "correct", "flags", "verdict", "relabel", "note"]
    for m in modalities:
        cols += [f"{m}_{f}" for f in _MOD_FIELDS]
    return [*cols, "error"]


def iter_rows(session: ReviewSession, flt: RowFilter | None = None, order_by: str = "index",
              descending: bool = False, page: int = 1000) -> Iterator[ReviewRow]:
    offset = 0
    while True:
        rows = session.rows(flt, order_by, descending, limit=page, offset=offset)
        yield from rows
        if len(rows) < page:
            return
        offset += page


def row_dict(row: ReviewRow, modalities: list[str]) -> dict[str, Any]:
    """One row as plain values (None for "not applicable"); the JSON export's record."""
    out: dict[str, Any] = {
        "id": row.id, "label": row.label, "status": row.status, "prediction": row.prediction,
        "probability": row.probability, "correct": row.correct, "flags": list(row.flags),
        "verdict": row.verdict, "relabel": row.relabel, "note": row.note,
        "modalities": {
            m: {"file": row.files.get(m), **{k: row.modalities.get(m, {}).get(k) for k in _MOD_FIELDS[1:]}}
            for m in modalities
        },
        "error": row.error,
    }
    return out


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back to the same float
    if isinstance(value, int):
        return str(value)
    return neutralise(str(value))


def neutralise(text: str) -> str:
    """A text cell a spreadsheet will show as text, never evaluate (OWASP CSV injection advice)."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _unneutralise(text: str) -> str:
    return text[1:] if text.startswith("'") else text


def _write_atomically(path: str | os.PathLike[str], write: Any) -> Path:
    target = Path(path).expanduser().absolute()
    with atomic_open(target, newline="") as fh:
        write(fh)
    return target


def export_csv(session: ReviewSession, path: str | os.PathLike[str], flt: RowFilter | None = None,
               order_by: str = "index", descending: bool = False) -> Path:
    """Write the (filtered, sorted) table as CSV; returns the path."""
    mods = session.modality_names
    cols = csv_columns(mods)

    def write(fh: Any) -> None:
        w = csv.writer(fh)
        w.writerow(cols)
        for row in iter_rows(session, flt, order_by, descending):
            d = row_dict(row, mods)
            values = {k: d[k] for k in cols if k in d}
            values["flags"] = _FLAG_SEPARATOR.join(d["flags"])
            for m in mods:
                for f in _MOD_FIELDS:
                    values[f"{m}_{f}"] = d["modalities"][m][f]
            w.writerow([_cell(values[c]) for c in cols])

    return _write_atomically(path, write)


def export_json(session: ReviewSession, path: str | os.PathLike[str], flt: RowFilter | None = None,
                order_by: str = "index", descending: bool = False) -> Path:
    """Write the session as JSON: model, source, thresholds, summary and one record per pair."""
    mods = session.modality_names

    def clean(x: Any) -> Any:
        return None if isinstance(x, float) and not math.isfinite(x) else x

    def write(fh: Any) -> None:
        head = {
            "model": {"name": session.model_name, "sha256": session.model_sha256},
            "source": {"kind": session.source_kind, "path": str(session.source_path)},
            "thresholds": session.thresholds.to_dict(),
            "summary": session.summary(),
            "unmatched": [{"file": f, "reason": r} for f, r in session.unmatched],
        }
        fh.write(json.dumps(head, indent=1)[:-2] + ',\n "pairs": [\n')
        first = True
        for row in iter_rows(session, flt, order_by, descending):
            d = row_dict(row, mods)
            d["probability"] = clean(d["probability"])
            fh.write(("" if first else ",\n") + "  " + json.dumps(d))
            first = False
        fh.write("\n ]\n}\n")

    return _write_atomically(path, write)


def _parquet_rows(session: ReviewSession, rows: list[ReviewRow], mods: list[str]) -> list[dict[str, Any]]:
    """Rows in the Parquet layout (app.review.parquet): the CSV's values plus the probability vectors and
    timings, read for the whole page in two queries rather than one per row."""
    idxs = [r.idx for r in rows]
    marks = ",".join("?" * len(idxs))
    details = {i: (json.loads(p) if p else None, json.loads(lp) if lp else None, d, s)
               for i, p, lp, d, s in session.conn.execute(
                   "SELECT pair_idx, probabilities, late_probabilities, decode_seconds, predict_seconds FROM results "
                   f"WHERE pair_idx IN ({marks})", idxs)}
    mod_probs = {(i, m): json.loads(p) if p else None for i, m, p in session.conn.execute(
        f"SELECT pair_idx, modality, probabilities FROM modality_results WHERE pair_idx IN ({marks})", idxs)}
    out = []
    for row in rows:
        probs, late, decode_s, predict_s = details.get(row.idx, (None, None, None, None))
        d: dict[str, Any] = {
            "id": row.id, "label": row.label, "status": row.status, "prediction": row.prediction,
            "probability": row.probability, "probabilities": probs, "late_probabilities": late,
            "correct": row.correct,
            "flags": list(row.flags), "verdict": row.verdict, "relabel": row.relabel, "note": row.note,
            "decode_seconds": decode_s, "predict_seconds": predict_s, "error": row.error,
        }
        for m in mods:
            values = row.modalities.get(m, {})
            d[f"{m}_file"] = row.files.get(m)
            d[f"{m}_probabilities"] = mod_probs.get((row.idx, m))
            for f in ("label", "probability", "quality", "share", "energy"):
                d[f"{m}_{f}"] = values.get(f)
        out.append(d)
    return out


def export_parquet(session: ReviewSession, path: str | os.PathLike[str], flt: RowFilter | None = None,
                   order_by: str = "index", descending: bool = False, page: int = 1000) -> Path:
    """Write the (filtered, sorted) table as Parquet (results schema, with verdicts); needs pyarrow."""
    from app.review.parquet import require_pyarrow, write_results_parquet

    require_pyarrow("a Parquet export")
    mods = session.modality_names

    def pages() -> Iterator[list[dict[str, Any]]]:
        rows: list[ReviewRow] = []
        for row in iter_rows(session, flt, order_by, descending, page=page):
            rows.append(row)
            if len(rows) == page:
                yield _parquet_rows(session, rows, mods)
                rows = []
        if rows:
            yield _parquet_rows(session, rows, mods)

    meta = {"qmf.model.name": session.model_name, "qmf.model.sha256": session.model_sha256,
            "qmf.labels": session.labels}
    return write_results_parquet(path, pages(), mods, verdicts=True, metadata=meta)


def _parse(col: str, text: str) -> Any:
    if text == "":
        return None if col != "note" else ""
    if col == "correct":
        return text == "true"
    if col == "probability" or col.rsplit("_", 1)[-1] in ("probability", "quality", "share", "energy"):
        return float(text)
    text = _unneutralise(text)
    if col == "flags":
        return [f for f in text.split(_FLAG_SEPARATOR) if f]
    return text


def read_csv_export(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a CSV written by :func:`export_csv` back into typed values (the round trip)."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return [{k: _parse(k, v) for k, v in rec.items()} for rec in reader]


def import_verdicts(session: ReviewSession, path: str | os.PathLike[str]) -> int:
    """Apply the verdict/relabel/note columns of a CSV export to ``session`` (by pair id); returns the count.

    Rows whose id the session does not know are skipped (they belong to another review).
    """
    n = 0
    for rec in read_csv_export(path):
        pid = rec.get("id")
        if not pid or session.row(pid) is None:
            continue
        verdict = rec.get("verdict")
        if verdict:
            session.set_verdict(pid, verdict, relabel=rec.get("relabel"), note=rec.get("note") or "")
        else:
            session.clear_verdict(pid)
            session.set_verdict(pid, note=rec.get("note") or "")
        n += 1
    return n
