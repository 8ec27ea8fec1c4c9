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
can all use it cheaply. It reads; :mod:`app.data.manifest_cells` holds the column
names, :class:`PairRow` and the path-cell checks, :mod:`app.data.manifest_write`
the writer; every public name is importable from here.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from app.data.manifest_cells import (
    ID_COLUMN,
    LABEL_COLUMN,
    MAX_CELL_CHARS,
    RESERVED_COLUMNS,
    URI_PROBLEM,
    PairRow,
    cell_path,
    cell_text_problem,
    file_problem,
    is_uri,
    shorten,
    uri_stem,
)
from app.data.manifest_write import write_manifest
from app.util.errors import UserError

__all__ = [
    "ID_COLUMN",
    "LABEL_COLUMN",
    "Manifest",
    "ManifestError",
    "ManifestProblem",
    "ManifestStream",
    "PairRow",
    "iter_manifest",
    "read_manifest",
    "write_manifest",
]


class ManifestError(UserError):
    """The manifest cannot be read at all (missing, not UTF-8, bad header).

    Row-level problems are *not* errors: they are reported in
    :attr:`Manifest.problems` so that one bad row does not hide the good ones.
    """


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
    more_problems: int = 0  # problems counted but not kept (beyond MAX_PROBLEMS_KEPT)

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


MAX_PROBLEMS_KEPT = 10_000  # problems beyond this are counted, not kept (a million bad rows stay small)


class ManifestStream:
    """A manifest read row by row: iterate for the usable :class:`PairRow` objects.

    The header is read (and whole-file problems raised as :class:`ManifestError`)
    when the stream is made; rows are read lazily, so a manifest of a million rows
    never sits in memory (only the ids seen so far, to catch duplicates). Row
    problems collect in :attr:`problems` as the rows are read (the first
    MAX_PROBLEMS_KEPT of them; :attr:`problem_count` counts all). Iterate once.
    """

    def __init__(self, csv_path: str | os.PathLike[str], modalities: list[str] | None = None,
                 check_files: bool = True, allow_missing_modalities: bool = False,
                 labels: list[str] | None = None, uris: bool = False) -> None:
        path = Path(csv_path)
        try:
            path = path.expanduser()
        except RuntimeError:  # "~" with no home folder: the name as written
            pass
        path = Path(os.path.normpath(path.absolute()))
        self.path = path
        self.check_files = check_files
        self.uris = uris
        self.allow_missing_modalities = allow_missing_modalities
        self.labels = labels
        self.problems: list[ManifestProblem] = []
        self.problem_count = 0
        self._fh = _open_text(path)
        try:
            self._reader = csv.reader(self._fh)
            self._prev_end = 0
            self._read_header(modalities)
        except BaseException:
            self._fh.close()
            raise

    def _records(self) -> Iterable[tuple[int, list[str] | None, str | None]]:
        """(first line, cells or None, problem) for each CSV record; a too-long cell is a problem."""
        while True:
            start = self._prev_end + 1
            try:
                record = next(self._reader)
            except StopIteration:
                return
            except csv.Error as exc:
                self._prev_end = self._reader.line_num
                yield start, None, f"cannot read this row ({exc}); cells may hold at most {MAX_CELL_CHARS:,} characters"
                continue
            except UnicodeDecodeError:
                raise ManifestError(
                    f"{self.path}: not UTF-8 text (a bad byte after line {self._prev_end}); save the CSV as UTF-8"
                ) from None
            except OSError as exc:
                raise ManifestError(f"{self.path}: cannot read manifest ({exc.strerror or exc})") from None
            self._prev_end = self._reader.line_num
            yield start, record, None

    def _read_header(self, modalities: list[str] | None) -> None:
        path = self.path
        header: list[str] | None = None
        header_line = 0
        self._records_iter = iter(self._records())
        for start, record, trouble in self._records_iter:
            if record is None:
                raise ManifestError(f"{path}:{start}: the header row cannot be read: {trouble}")
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
            key = name.lower() if name.lower() in RESERVED_COLUMNS else name
            if key in seen:
                dups.append(name)
            seen[key] = i
        if dups:
            raise ManifestError(f"{path}:{header_line}: duplicate column name(s): {', '.join(sorted(set(dups)))}")
        self._id_col = seen.get(ID_COLUMN)
        self._label_col = seen.get(LABEL_COLUMN)
        found = [h for h in header if h]
        if modalities is None:
            mods = [h for h in header if h and h.lower() not in RESERVED_COLUMNS]
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
        self.modalities = mods
        self._mod_cols = {m: seen[m] for m in mods}
        self._width = len(header)

    def _problem(self, line: int, column: str | None, message: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(ManifestProblem(line, column, message, self.path))

    def __iter__(self) -> Iterator[PairRow]:
        try:
            yield from self._rows()
        finally:
            self._fh.close()

    def close(self) -> None:
        self._fh.close()

    def _rows(self) -> Iterator[PairRow]:
        base = self.path.parent
        labels = self.labels
        width = self._width
        ids_seen: dict[str, int] = {}
        for line, record, trouble in self._records_iter:
            if record is None:
                self._problem(line, None, trouble or "cannot read this row")
                continue
            cells = [c.strip() for c in record]
            if not any(cells):
                continue  # blank line (or only commas)
            row_problems: list[tuple[str | None, str]] = []
            if len(cells) > width and any(cells[width:]):
                row_problems.append((None, f"{len(cells)} cells but the header has {width} columns"))
            cells += [""] * (width - len(cells))

            files: dict[str, Path] = {}
            first_stem: str | None = None
            for m in self.modalities:
                cell = cells[self._mod_cols[m]]
                if not cell:
                    if not self.allow_missing_modalities:
                        row_problems.append((m, "empty cell (a file is required)"))
                    continue
                trouble = cell_text_problem(cell)
                if trouble is not None:
                    row_problems.append((m, trouble))
                    continue
                if is_uri(cell):
                    if not self.uris:
                        row_problems.append((m, f"{shorten(cell, 200)} {URI_PROBLEM}"))
                        continue
                    if first_stem is None:
                        first_stem = uri_stem(cell)
                    files[m] = cell  # kept as written (a Path would fold "//"); never checked here
                    continue
                p = cell_path(cell, base)
                if first_stem is None:
                    first_stem = p.stem
                if self.check_files:
                    trouble = file_problem(p)
                    if trouble is not None:
                        row_problems.append((m, trouble))
                        continue
                files[m] = p

            label: str | None = None
            if self._label_col is not None and cells[self._label_col]:
                raw = cells[self._label_col]
                label = raw
                if labels is not None and raw not in labels:
                    idx = _as_int(raw)
                    if idx is None:
                        shown = ", ".join(labels[:12]) + (", ..." if len(labels) > 12 else "")
                        row_problems.append((LABEL_COLUMN, f"unknown label '{shorten(raw, 80)}' (expected one of: {shown})"))
                    elif 0 <= idx < len(labels):
                        label = labels[idx]
                    else:
                        row_problems.append((LABEL_COLUMN, f"label index {idx} out of range (0-{len(labels) - 1})"))

            if self._id_col is not None and cells[self._id_col]:
                row_id = cells[self._id_col]
                if row_id in ids_seen:
                    row_problems.append(
                        (ID_COLUMN, f"duplicate id '{shorten(row_id, 80)}' (first used on line {ids_seen[row_id]})")
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
                row_problems.append((None, "no file in any modality column"))

            if row_problems:
                for column, message in row_problems:
                    self._problem(line, column, message)
            else:
                yield PairRow(line=line, id=row_id, files=files, label=label)


def _open_text(path: Path) -> io.TextIOWrapper:
    try:
        return open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed by ManifestStream
    except FileNotFoundError:
        raise ManifestError(f"{path}: manifest not found") from None
    except IsADirectoryError:
        raise ManifestError(f"{path}: is a folder, not a CSV file") from None
    except OSError as exc:
        raise ManifestError(f"{shorten(str(path))}: cannot read manifest ({exc.strerror or exc})") from None


def iter_manifest(
    csv_path: str | os.PathLike[str],
    modalities: list[str] | None = None,
    check_files: bool = True,
    allow_missing_modalities: bool = False,
    labels: list[str] | None = None,
    uris: bool = False,
) -> ManifestStream:
    """Read a manifest row by row (same arguments and checks as :func:`read_manifest`)."""
    return ManifestStream(csv_path, modalities, check_files, allow_missing_modalities, labels, uris)


def read_manifest(
    csv_path: str | os.PathLike[str],
    modalities: list[str] | None = None,
    check_files: bool = True,
    allow_missing_modalities: bool = False,
    labels: list[str] | None = None,
    uris: bool = False,
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
        uris: a cell ``scheme://...`` (s3, gs, file ...) is kept as that string, unchecked
            (the Ray engine reads it through pyarrow.fs); False: it is a row problem
            saying which engine reads URIs.

    Returns:
        A :class:`Manifest`; rows with any problem are left out of ``rows`` and
        their problems listed in ``problems``. All rows are in memory: use
        :func:`iter_manifest` to stream a large manifest.

    Raises:
        ManifestError: for whole-file problems (not found, not UTF-8, no header,
            no modality column, duplicate or missing column names).
    """
    stream = iter_manifest(csv_path, modalities, check_files, allow_missing_modalities, labels, uris)
    rows = list(stream)
    return Manifest(path=stream.path, modalities=stream.modalities, rows=rows, problems=stream.problems,
                    more_problems=stream.problem_count - len(stream.problems))

