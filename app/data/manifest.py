"""Paired-sample manifests: a CSV that says which files belong together.

A manifest is a CSV file with a header row. Every column other than ``id`` and
``label`` names a modality (``image``, ``audio``, ...) and holds a file path;
relative paths are relative to the CSV's own folder, so a data folder can be
moved or zipped as a whole. ``label`` (a class name, or an integer index into
the model's labels) and ``id`` are optional.

Reading never stops at the first bad row: every row-level problem (empty cell,
missing file, duplicate id, unknown label) is collected as a
:class:`ManifestProblem` naming the line and column, so the user can fix the
whole file in one go. Only whole-file problems raise :class:`ManifestError`.

This module is pure Python (no Qt, no torch) so the CLI, the GUI and the trainer
can all use it cheaply.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from app.util.files import atomic_open

__all__ = [
    "ID_COLUMN",
    "LABEL_COLUMN",
    "Manifest",
    "ManifestError",
    "ManifestProblem",
    "PairRow",
    "read_manifest",
    "write_manifest",
]

ID_COLUMN = "id"
LABEL_COLUMN = "label"
_RESERVED = (ID_COLUMN, LABEL_COLUMN)


class ManifestError(ValueError):
    """The manifest cannot be read at all (missing, not UTF-8, bad header).

    Row-level problems are *not* errors: they are reported in
    :attr:`Manifest.problems` so that one bad row does not hide the good ones.
    """


@dataclass(frozen=True)
class PairRow:
    """One paired sample: the files of each modality that belong together.

    ``line`` is the 1-based line of the CSV file the row came from (the header is
    line 1), so messages can point the user at the right place in their editor.
    ``id`` comes from the ``id`` column, else the stem of the first modality's
    file, else ``row<line>``; a derived id that repeats an earlier one gets
    ``@<line>`` appended so ids stay unique.
    For rows that did not come from a CSV (e.g. folder pairing) it is the 1-based
    position in the list.
    """

    line: int
    id: str
    files: dict[str, Path]
    label: str | None = None


@dataclass(frozen=True)
class ManifestProblem:
    """A row-level problem, located precisely enough to fix it by hand."""

    line: int
    column: str | None
    message: str
    path: Path | None = field(default=None, compare=False)

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.path is not None else f"line {self.line}"
        if self.column is not None:
            return f"{where}: column '{self.column}': {self.message}"
        return f"{where}: {self.message}"


@dataclass
class Manifest:
    """A read manifest: the usable rows plus everything that was wrong."""

    path: Path
    modalities: list[str]
    rows: list[PairRow]
    problems: list[ManifestProblem] = field(default_factory=list)

    def labels(self) -> list[str]:
        """Distinct labels of the usable rows, sorted.

        Integer labels ("2", "10") are sorted numerically when every label is an
        integer, because string order ("10" < "2") surprises people.
        """
        distinct = {r.label for r in self.rows if r.label is not None}
        if distinct and all(_as_int(x) is not None for x in distinct):
            return sorted(distinct, key=lambda x: int(x))
        return sorted(distinct)

    def __len__(self) -> int:
        return len(self.rows)


def _as_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _cell_path(cell: str, base: Path) -> Path:
    """Turn a path cell into an absolute, normalised path.

    Backslashes are treated as separators on POSIX, because manifests are often
    written on Windows; symlinks are deliberately not resolved so file names
    (and the ids derived from them) stay what the user wrote.
    """
    text = cell
    if os.sep == "/" and "\\" in text:
        text = text.replace("\\", "/")
    p = Path(text).expanduser()
    if not p.is_absolute():
        p = base / p
    return Path(os.path.normpath(p))


def _decode(csv_path: Path) -> str:
    try:
        data = csv_path.read_bytes()
    except FileNotFoundError:
        raise ManifestError(f"{csv_path}: manifest not found") from None
    except IsADirectoryError:
        raise ManifestError(f"{csv_path}: is a folder, not a CSV file") from None
    except OSError as exc:
        raise ManifestError(f"{csv_path}: cannot read manifest ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{csv_path}: not UTF-8 text (byte {exc.start}); save the CSV as UTF-8") from None


def read_manifest(
    csv_path: str | os.PathLike[str],
    modalities: list[str] | None = None,
    check_files: bool = True,
    allow_missing_modalities: bool = False,
    labels: list[str] | None = None,
) -> Manifest:
    """Read and validate a manifest.

    Args:
        csv_path: the CSV file.
        modalities: the modality columns the caller needs, in the caller's order.
            None means every column other than ``id``/``label`` is a modality.
            Extra columns are ignored when given.
        check_files: report missing files and folders (off for speed or when
            the files live elsewhere).
        allow_missing_modalities: an empty modality cell is fine (the model
            will see a blank input) instead of being a problem.
        labels: the model's class names; when given, a label must be one of them
            or an integer index into them (converted to the name).

    Returns:
        A :class:`Manifest`; rows with any problem are left out of ``rows`` and
        their problems listed in ``problems``.

    Raises:
        ManifestError: for whole-file problems (not found, not UTF-8, no header,
            no modality column, duplicate or missing column names).
    """
    path = Path(csv_path).expanduser()
    path = Path(os.path.normpath(path.absolute()))
    text = _decode(path)
    base = path.parent

    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    header_line = 0
    prev_end = 0
    # Find the header: the first non-blank record.
    for record in reader:
        start = prev_end + 1
        prev_end = reader.line_num
        if any(c.strip() for c in record):
            header = [c.strip() for c in record]
            header_line = start
            break
    if header is None:
        raise ManifestError(f"{path}: empty file, expected a header row such as 'id,image,audio,label'")

    seen: dict[str, int] = {}
    dups: list[str] = []
    for i, name in enumerate(header):
        if not name:
            continue  # trailing comma from spreadsheet exports: an unnamed, ignored column
        key = name.lower() if name.lower() in _RESERVED else name
        if key in seen:
            dups.append(name)
        seen[key] = i
    if dups:
        raise ManifestError(f"{path}:{header_line}: duplicate column name(s): {', '.join(sorted(set(dups)))}")

    id_col = seen.get(ID_COLUMN)
    label_col = seen.get(LABEL_COLUMN)
    found = [h for h in header if h]
    if modalities is None:
        mods = [h for h in header if h and h.lower() not in _RESERVED]
        if not mods:
            raise ManifestError(
                f"{path}:{header_line}: no modality column (found: {', '.join(found) or 'nothing'}); "
                "expected e.g. 'id,image,audio,label'"
            )
    else:
        mods = list(modalities)
        if not mods:
            raise ManifestError(f"{path}: no modality requested")
        missing = [m for m in mods if m not in seen]
        if missing:
            raise ManifestError(
                f"{path}:{header_line}: missing column(s) {', '.join(missing)} "
                f"(found: {', '.join(found) or 'nothing'})"
            )
    mod_cols = {m: seen[m] for m in mods}
    width = len(header)

    rows: list[PairRow] = []
    problems: list[ManifestProblem] = []
    ids_seen: dict[str, int] = {}

    def problem(line: int, column: str | None, message: str) -> ManifestProblem:
        return ManifestProblem(line, column, message, path)

    for record in reader:
        line = prev_end + 1
        prev_end = reader.line_num
        cells = [c.strip() for c in record]
        if not any(cells):
            continue  # blank line (or only commas)
        row_problems: list[ManifestProblem] = []
        if len(cells) > width and any(cells[width:]):
            row_problems.append(problem(line, None, f"{len(cells)} cells but the header has {width} columns"))
        cells += [""] * (width - len(cells))

        files: dict[str, Path] = {}
        first_stem: str | None = None
        for m in mods:
            cell = cells[mod_cols[m]]
            if not cell:
                if not allow_missing_modalities:
                    row_problems.append(problem(line, m, "empty cell (a file is required)"))
                continue
            p = _cell_path(cell, base)
            if first_stem is None:
                first_stem = p.stem
            if check_files:
                if p.is_dir():
                    row_problems.append(problem(line, m, f"is a folder, not a file: {p}"))
                    continue
                if not p.is_file():
                    row_problems.append(problem(line, m, f"file not found: {p}"))
                    continue
            files[m] = p

        label: str | None = None
        if label_col is not None and cells[label_col]:
            raw = cells[label_col]
            label = raw
            if labels is not None and raw not in labels:
                idx = _as_int(raw)
                if idx is None:
                    shown = ", ".join(labels[:12]) + (", ..." if len(labels) > 12 else "")
                    row_problems.append(
                        problem(line, LABEL_COLUMN, f"unknown label '{raw}' (expected one of: {shown})")
                    )
                elif 0 <= idx < len(labels):
                    label = labels[idx]
                else:
                    row_problems.append(
                        problem(line, LABEL_COLUMN, f"label index {idx} out of range (0-{len(labels) - 1})")
                    )

        if id_col is not None and cells[id_col]:
            row_id = cells[id_col]
            if row_id in ids_seen:
                row_problems.append(
                    problem(
                        line, ID_COLUMN, f"duplicate id '{row_id}' (first used on line {ids_seen[row_id]})"
                    )
                )
        else:
            # Derived ids (file stem, else the line) are a convenience, so two files
            # named 0.png in different class folders must not reject a row: a
            # colliding derived id is made unique with the line number instead.
            row_id = first_stem if first_stem is not None else f"row{line}"
            if row_id in ids_seen:
                row_id = f"{row_id}@{line}"
        ids_seen.setdefault(row_id, line)

        if not files and not row_problems:
            row_problems.append(problem(line, None, "no file in any modality column"))

        if row_problems:
            problems.extend(row_problems)
        else:
            rows.append(PairRow(line=line, id=row_id, files=files, label=label))

    return Manifest(path=path, modalities=mods, rows=rows, problems=problems)


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
        if m.lower() in _RESERVED or not m or m != m.strip():
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
