"""Pair the files of a folder into multimodal samples for batch review.

Users rarely have a manifest; they have a folder. Two common layouts are
recognised automatically:

``modality_folders``
    one sub-folder per model modality, with the same relative names inside::

        image/0042.png   audio/0042.wav
        image/3/0042.png audio/3/0042.wav

    The key of a file is its path relative to the modality folder, without suffix.

``by_name``
    files of different kinds side by side, paired by stem (anywhere in the tree)::

        0042.png 0042.wav
        3/0042.png 3/0042.wav

    The key of a file is its folder relative to the root plus its stem.

Nothing is silently dropped except hidden files and folders (``.DS_Store``,
``.git``, macOS ``._*`` files): every other file that does not end up in a pair
is listed in :attr:`FolderPairing.unmatched` with the reason, so the user can see
why a file was not reviewed. That includes a file whose name is not valid UTF-8
(it could not be stored or shown; it is listed with the bad bytes replaced by
"\ufffd") and a folder that cannot be listed (no permission, or a path longer
than the system allows), which is listed itself.

The kind of a file is decided by the ``kind_for_path`` callable passed in (in the
app, ``app.modalities.kind_for_path``), which keeps this module free of the
modality layer and testable on its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from app.data.manifest import PairRow
from app.util.errors import UserError

__all__ = ["LAYOUT_BY_NAME", "LAYOUT_MODALITY_FOLDERS", "FolderPairing", "pair_folder"]

LAYOUT_MODALITY_FOLDERS = "modality_folders"
LAYOUT_BY_NAME = "by_name"


@dataclass
class FolderPairing:
    """The result of :func:`pair_folder`.

    ``pairs`` are sorted by key (their ``id``); ``unmatched`` lists every
    non-hidden file that is not part of a pair, with a human-readable reason,
    sorted by path; ``layout`` is :data:`LAYOUT_MODALITY_FOLDERS` or
    :data:`LAYOUT_BY_NAME`.
    """

    folder: Path
    layout: str
    pairs: list[PairRow] = field(default_factory=list)
    unmatched: list[tuple[Path, str]] = field(default_factory=list)


def displayable(path: Path | str) -> Path:
    """The path with bytes that are not UTF-8 (surrogate escapes) shown as U+FFFD, safe to print and store."""
    text = str(path)
    return Path(text.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_File = tuple[Path, str, str, str]  # (its folder, its name, its path relative to the root, its suffix)


def _walk(root: Path) -> tuple[list[_File], list[tuple[Path, str]]]:
    """All non-hidden files under ``root``, sorted, skipping hidden folders, each with its path relative
    to ``root`` ('/'-separated) and its suffix (pathlib's); plus what could not be used.

    Strings throughout: each folder's Path and relative part are made once, a file's Path only when
    a pair or an unmatched entry takes it (parsing a Path per file was most of the cost of pairing
    10,000 pairs)."""
    out: list[_File] = []
    refused: list[tuple[Path, str]] = []

    def unreadable(exc: OSError) -> None:
        where = displayable(exc.filename) if exc.filename is not None else root
        refused.append((where, f"cannot list this folder ({exc.strerror or exc}); its files are not reviewed"))

    top = os.fspath(root)
    for dirpath, dirnames, filenames in os.walk(top, onerror=unreadable):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        folder = Path(dirpath)
        inside = os.path.relpath(dirpath, top)
        prefix = "" if inside == os.curdir else Path(inside).as_posix() + "/"
        folder_ok = _is_utf8(dirpath)
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            if not (folder_ok and _is_utf8(name)):
                refused.append((displayable(folder / name), "the file name is not valid UTF-8: rename the file to review it"))
                continue
            dot = name.rfind(".")
            out.append((folder, name, prefix + name, name[dot:] if 0 < dot < len(name) - 1 else ""))
    return out, refused


def _key_and_folder(rel: str) -> tuple[str, str]:
    """A '/'-separated relative path -> (its key: the path without the name's suffix; its folder, "" at
    the top), as PurePosixPath's ``with_suffix("")`` and ``parent`` give them."""
    folder, _, name = rel.rpartition("/")
    dot = name.rfind(".")
    if 0 < dot < len(name) - 1:  # pathlib's suffix: not a leading dot, not a trailing one
        name = name[:dot]
    return (f"{folder}/{name}" if folder else name), folder


def _article(kind: str) -> str:
    return "an" if kind[:1].lower() in "aeiou" else "a"


def _find_modality_folders(root: Path, names: list[str]) -> dict[str, Path] | None:
    """Map each modality to a direct sub-folder with its name (case-insensitive), if all exist."""
    try:
        subdirs = {p.name.lower(): p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    except OSError:
        return None
    found = {m: subdirs.get(m.lower()) for m in names}
    if all(v is not None for v in found.values()):
        return {m: v for m, v in found.items() if v is not None}
    return None


def pair_folder(
    folder: str | os.PathLike[str],
    modality_kinds: Mapping[str, str],
    kind_for_path: Callable[[Path], str | None],
) -> FolderPairing:
    """Pair the files under ``folder`` for the model's modalities.

    Args:
        folder: the folder to scan (recursively).
        modality_kinds: modality name -> kind, e.g. ``{"image": "image", "audio": "audio"}``,
            in the model's order.
        kind_for_path: returns a file's kind ("image", "audio", "text") or None if
            no modality can open it, by its suffix: it is asked once per distinct suffix
            (pathlib's, case kept), with the first file that has it.

    The ``modality_folders`` layout is used when the folder has a sub-folder named
    after every modality; otherwise files are paired by name. A pair's label is
    the name of the folder it sits in, but only when *every* pair sits in a
    sub-folder (below the modality folder for ``modality_folders``), because a
    mix of labelled and unlabelled pairs is more likely an accident than intent.

    Raises:
        FileNotFoundError / NotADirectoryError: ``folder`` is not a folder.
        ValueError: no modalities, or pairing by name is needed but two modalities
            have the same kind (files cannot then be told apart by type; put them
            in sub-folders named after the modalities instead).
    """
    root = Path(os.path.normpath(Path(folder).expanduser().absolute()))
    if not root.exists():
        raise FileNotFoundError(f"{root}: folder not found")
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a folder")
    names = list(modality_kinds)
    if not names:
        raise UserError("no modalities given")

    files, unmatched = _walk(root)
    # key -> modality -> list of (folder, name, path relative to root); keys with a modality's second file
    grouped: dict[str, dict[str, list[tuple[Path, str, str]]]] = {}
    repeated: set[str] = set()
    # key -> folder part of the key ("" for the root), for labels
    key_dirs: dict[str, str] = {}
    kinds: dict[str, str | None] = {}  # suffix -> kind: `kind_for_path` decides by the suffix

    def kind_of(f: _File) -> str | None:
        suffix = f[3]
        if suffix not in kinds:
            kinds[suffix] = kind_for_path(f[0] / f[1])
        return kinds[suffix]

    def add(key: str, folder: str, modality: str, f: _File) -> None:
        per_mod = grouped.get(key)
        if per_mod is None:
            grouped[key] = {modality: [f[:3]]}
            key_dirs[key] = folder
            return
        fs = per_mod.get(modality)
        if fs is None:
            per_mod[modality] = [f[:3]]
        else:
            fs.append(f[:3])
            repeated.add(key)

    mod_folders = _find_modality_folders(root, names)
    if mod_folders is not None:
        layout = LAYOUT_MODALITY_FOLDERS
        owner = {folder_path.name: m for m, folder_path in mod_folders.items()}
        for f in files:
            top, _, inside = f[2].partition("/")
            modality = owner.get(top) if inside else None
            kind = kind_of(f)
            if modality is None:
                shown = ", ".join(f"{p.name}/" for p in mod_folders.values())
                reason = (
                    "unsupported file type" if kind is None else f"not inside a modality folder ({shown})"
                )
                unmatched.append((f[0] / f[1], reason))
                continue
            want = modality_kinds[modality]
            if kind is None:
                unmatched.append((f[0] / f[1], "unsupported file type"))
                continue
            if kind != want:
                unmatched.append((f[0] / f[1], f"{_article(kind)} {kind} file in the {modality} folder"))
                continue
            add(*_key_and_folder(inside), modality, f)
    else:
        layout = LAYOUT_BY_NAME
        by_kind: dict[str, str] = {}
        for m, k in modality_kinds.items():
            if k in by_kind:
                raise UserError(
                    f"modalities '{by_kind[k]}' and '{m}' are both {k} files, so files cannot be paired by "
                    f"name; put them in sub-folders named {by_kind[k]}/ and {m}/"
                )
            by_kind[k] = m
        for f in files:
            kind = kind_of(f)
            if kind is None:
                unmatched.append((f[0] / f[1], "unsupported file type"))
                continue
            modality = by_kind.get(kind)
            if modality is None:
                unmatched.append((f[0] / f[1], f"this model takes no {kind} input"))
                continue
            add(*_key_and_folder(f[2]), modality, f)

    candidates: list[tuple[str, dict[str, Path]]] = []
    whole = len(names)
    for key in sorted(grouped):
        per_mod = grouped[key]
        if key not in repeated and len(per_mod) == whole:  # the usual key: one file of each modality
            candidates.append((key, {m: per_mod[m][0][0] / per_mod[m][0][1] for m in names}))
            continue
        ambiguous = {m for m, fs in per_mod.items() if len(fs) > 1}
        for m in sorted(ambiguous):
            fs = per_mod[m]
            for f in fs:
                others = ", ".join(o[2] for o in fs if o is not f)
                unmatched.append((f[0] / f[1], f"ambiguous: also {others}"))
        if ambiguous:
            shown = " and ".join(sorted(ambiguous))
            for m, fs in per_mod.items():
                if m not in ambiguous:
                    unmatched.append((fs[0][0] / fs[0][1], f"ambiguous {shown} files with the same name"))
            continue
        missing = [m for m in names if m not in per_mod]
        what = " or ".join(modality_kinds[m] for m in missing)
        reason = f"no {what} file with the same name"
        if layout == LAYOUT_MODALITY_FOLDERS and mod_folders is not None:
            reason += " (in " + ", ".join(f"{mod_folders[m].name}/" for m in missing) + ")"
        for fs in per_mod.values():
            unmatched.append((fs[0][0] / fs[0][1], reason))

    labelled = bool(candidates) and all(key_dirs[k] for k, _ in candidates)
    pairs = [
        PairRow(line=i, id=key, files=fmap, label=key_dirs[key].rpartition("/")[2] if labelled else None)
        for i, (key, fmap) in enumerate(candidates, start=1)
    ]
    unmatched.sort(key=lambda t: (str(t[0]), t[1]))
    return FolderPairing(folder=root, layout=layout, pairs=pairs, unmatched=unmatched)
