"""Writing a manifest CSV that :func:`app.data.manifest.read_manifest` reads back.

Kept apart from the reader: it shares only the column names and :class:`PairRow`
(from :mod:`app.data.manifest_cells`), and is re-exported by
:mod:`app.data.manifest`, where callers import it.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from app.data.manifest_cells import ID_COLUMN, LABEL_COLUMN, RESERVED_COLUMNS, PairRow
from app.util.files import atomic_open

__all__ = ["write_manifest"]


def _row_as_parts(
    row: PairRow | Mapping[str, object], modalities: list[str]
) -> tuple[str | None, dict, str | None]:
    if isinstance(row, PairRow):
        return row.id, dict(row.files), row.label
    files_obj = row.get("files")
    files = dict(files_obj) if isinstance(files_obj, Mapping) else {m: row.get(m) for m in modalities}
    row_id = row.get(ID_COLUMN)
    label = row.get(LABEL_COLUMN)
    return (
        None if row_id is None else str(row_id),
        files,
        None if label is None else str(label),
    )


def write_manifest(
    csv_path: str | os.PathLike[str],
    rows: Iterable[PairRow | Mapping[str, object]],
    modalities: list[str],
    relative_to_csv: bool = True,
) -> Path:
    """Write a manifest that :func:`read_manifest` reads back to the same rows.

    Rows are :class:`PairRow` objects or dicts (``{"id": ..., "image": path,
    "audio": path, "label": ...}`` or ``{"id": ..., "files": {...}, ...}``).
    Columns are ``id``, the modalities in the given order, then ``label`` (only
    if some row has one). Relative paths in rows are taken relative to the
    current directory. With ``relative_to_csv`` paths are written relative to
    the CSV's folder with forward slashes, so the data folder stays portable
    across machines and operating systems. The file is replaced atomically so a
    crash never leaves half a manifest.

    Returns the absolute path written.
    """
    path = Path(os.path.normpath(Path(csv_path).expanduser().absolute()))
    base = path.parent
    for m in modalities:
        if m.lower() in RESERVED_COLUMNS or not m or m != m.strip():
            raise ValueError(f"invalid modality name {m!r}")

    out_rows: list[list[str]] = []
    any_label = False
    for n, row in enumerate(rows, start=1):
        row_id, files, label = _row_as_parts(row, modalities)
        cells = [row_id if row_id is not None else f"row{n}"]
        for m in modalities:
            f = files.get(m)
            if f is None or f == "":
                cells.append("")
                continue
            p = Path(os.path.normpath(Path(f).expanduser().absolute()))
            if relative_to_csv:
                try:
                    cells.append(Path(os.path.relpath(p, base)).as_posix())
                except ValueError:  # e.g. another drive on Windows
                    cells.append(str(p))
            else:
                cells.append(str(p))
        any_label = any_label or label is not None
        cells.append("" if label is None else label)
        out_rows.append(cells)

    header = [ID_COLUMN, *modalities, LABEL_COLUMN]
    if not any_label:
        header.pop()
        out_rows = [r[:-1] for r in out_rows]

    with atomic_open(path, newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(out_rows)
    return path
