"""The training manifests the data scripts extend: read one, group its files by label, write one.

Used by scripts/make_tts_training.py (spoken digits added to train.csv) and
scripts/make_font_training.py (drawn digits added to train_tts.csv). Paths in the rows are relative to
the manifest's folder, as `python -m app.data.avmnist` writes them.
"""

from __future__ import annotations

import csv
from pathlib import Path

COLUMNS = ["id", "image", "audio", "label"]


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def files_by_label(rows: list[dict[str, str]], column: str) -> dict[str, list[str]]:
    """The `column` file of every row, grouped by the row's label."""
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(r["label"], []).append(r[column])
    return out


def write_rows(path: Path, rows: list[dict[str, str]], extra: list[dict[str, str]]) -> None:
    """`rows` then `extra` as a manifest at `path`, and one line saying so."""
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows + extra)
    print(f"wrote {path}: {len(rows)} + {len(extra)} rows")
