"""The cells of a manifest CSV: column names, the row they make, and path cells.

Shared by the reader (:mod:`app.data.manifest`) and the writer
(:mod:`app.data.manifest_write`): what the reserved columns are called, the
:class:`PairRow` both speak, the size limit on a cell, and how a path cell
becomes a path (backslashes, ``~``, NUL bytes, names the file system refuses).
Pure Python, like the rest of :mod:`app.data`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ID_COLUMN",
    "LABEL_COLUMN",
    "MAX_CELL_CHARS",
    "RESERVED_COLUMNS",
    "PairRow",
    "cell_path",
    "URI_PROBLEM",
    "cell_text_problem",
    "file_problem",
    "is_uri",
    "uri_stem",
    "shorten",
]

ID_COLUMN = "id"
LABEL_COLUMN = "label"
RESERVED_COLUMNS = (ID_COLUMN, LABEL_COLUMN)
MAX_CELL_CHARS = 131_072  # Python's csv limit; a longer cell is a row problem, not a crash
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")  # s3://, gs://, file://... (never a Windows "C:\\")
# what a reader that takes local paths only says of a URI cell (a row problem)
URI_PROBLEM = ("is a URI: a local qmf batch reads local files only; object storage (s3://, gs://, file://) "
               "is read by qmf batch --engine ray through pyarrow (pip install qmf-studio[distributed])")


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
    files: dict[str, Path]  # a URI cell (read with uris=True, for the Ray engine) stays the str as written
    label: str | None = None


def is_uri(cell: str) -> bool:
    """Whether a path cell is a URI (``scheme://...``) rather than a local path."""
    return bool(_URI.match(cell))


def uri_stem(uri: str) -> str:
    """The stem of a URI's last path segment ("s3://b/x/pair_7.png" -> "pair_7"): a derived pair id."""
    name = uri.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name[1:] else name


def cell_text_problem(cell: str) -> str | None:
    """Why a non-empty path cell cannot name any file (a NUL byte), or None."""
    if "\0" in cell:
        return "the file name contains a NUL byte"
    return None


def cell_path(cell: str, base: Path) -> Path:
    """Turn a path cell into an absolute, normalised path.

    Backslashes are treated as separators on POSIX, because manifests are often
    written on Windows; symlinks are deliberately not resolved so file names
    (and the ids derived from them) stay what the user wrote. Only ``~`` and
    ``~/...`` mean the home folder: ``~name/x.png`` or an office lock file
    ``~$x.png`` are ordinary relative names (expanding them would look up a
    user account, and fail when there is none).
    """
    text = cell
    if os.sep == "/" and "\\" in text:
        text = text.replace("\\", "/")
    if text == "~" or text.startswith("~/"):
        try:
            text = os.path.expanduser(text)
        except (RuntimeError, KeyError):  # no home folder: keep the name as written
            pass
    p = Path(text)
    if not p.is_absolute():
        p = base / p
    return Path(os.path.normpath(p))


def file_problem(p: Path) -> str | None:
    """Why a path cell cannot be used as a file, or None; never raises."""
    try:
        if p.is_dir():
            return f"is a folder, not a file: {p}"
        if not p.is_file():
            return f"file not found: {p}"
    except OSError as exc:  # e.g. a name longer than the file system allows
        return f"cannot use this path ({exc.strerror or exc}): {shorten(str(p))}"
    return None


def shorten(text: str, limit: int = 300) -> str:
    """``text`` cut in the middle to at most ``limit`` characters, so a huge cell cannot flood a message."""
    return text if len(text) <= limit else text[: limit - 61] + "…" + text[-60:]
