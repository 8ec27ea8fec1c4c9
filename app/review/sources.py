"""Where the pairs of a review come from: a manifest CSV or a folder.

A review never silently drops a file: what the folder pairing could not match and what the manifest
reader rejected are kept on the :class:`PairSource` so the CLI can print them and the app can show them.
Labels may come from a manifest column or from the parent folder name (see ``app.data.pairing``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.data.manifest import PairRow, iter_manifest
from app.data.pairing import pair_folder
from app.modalities import kind_for_path
from app.util.errors import UserError

__all__ = ["SOURCE_FOLDER", "SOURCE_MANIFEST", "SESSION_SUFFIX", "PairSource", "load_source", "may_hold", "source_kind"]

SOURCE_FOLDER = "folder"
SOURCE_MANIFEST = "manifest"
SESSION_SUFFIX = ".qmfreview"


@dataclass
class PairSource:
    """The pairs to review plus everything that could not become a pair.

    ``unmatched`` holds ``(path, reason)`` for folder files without a partner; ``problems`` holds one
    line per manifest row that was left out (line, column, reason).

    For a manifest, ``pairs`` is read from the file as it is iterated (a million rows never sit in
    memory); ``problems`` and the label ``notes`` are filled in by each complete pass.
    """

    kind: str
    path: Path
    pairs: Iterable[PairRow]
    unmatched: list[tuple[Path, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    layout: str | None = None
    notes: list[str] = field(default_factory=list)  # about the labels: shown as warnings, nothing is left out

    @property
    def labelled(self) -> bool:
        return any(p.label is not None for p in self.pairs)


def source_kind(path: str | os.PathLike[str]) -> str:
    """"folder" or "manifest" for a path; ValueError for anything else (a session is opened, not scanned)."""
    p = Path(path)
    if p.is_dir():
        return SOURCE_FOLDER
    if p.suffix.lower() in (".csv", ".parquet"):
        return SOURCE_MANIFEST
    if p.suffix.lower() == SESSION_SUFFIX:
        raise UserError(f"{p}: a review session, not a source of pairs (open it as a session)")
    if not p.exists():
        raise FileNotFoundError(f"{p}: not found (give a folder of pairs or a manifest .csv)")
    raise UserError(f"{p}: not a folder or a manifest (.csv or .parquet)")


def may_hold(path: str | os.PathLike[str], modalities: int, pairs: int) -> bool:
    """Whether the folder or CSV manifest at ``path`` may hold ``pairs`` pairs or more, told cheaply,
    before it is read: a folder with at least ``modalities`` x ``pairs`` visible files (counted until
    there are that many), a CSV with at least ``pairs`` lines. Never less than what `load_source` finds,
    so False is sure; True may be too many (unmatched files, rows left out). `qmf batch` asks it to
    start its decoding processes before anything else; anything it cannot tell (a Parquet manifest,
    an unreadable folder) is False."""
    p = Path(path).expanduser()
    try:
        if p.is_dir():
            wanted, seen = max(1, modalities) * pairs, 0
            folders = [os.fspath(p)]
            while folders:
                with os.scandir(folders.pop()) as entries:
                    for entry in entries:
                        if entry.name.startswith("."):
                            continue
                        if entry.is_dir(follow_symlinks=False):
                            folders.append(entry.path)
                        else:
                            seen += 1
                            if seen >= wanted:
                                return True
            return False
        if p.suffix.lower() == ".csv" and p.is_file():
            lines = 0
            with open(p, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    lines += chunk.count(b"\n")
                    if lines >= pairs:
                        return True
            return False
    except OSError:
        return False
    return False


def _normalise_label(label: str | None, labels: Sequence[str]) -> str | None:
    """A manifest may give a class by index ("3"); turn that into the model's name when unambiguous."""
    if label is None or label in labels:
        return label
    try:
        idx = int(label)
    except ValueError:
        return label
    return labels[idx] if 0 <= idx < len(labels) else label


def load_source(
    path: str | os.PathLike[str],
    modality_kinds: Mapping[str, str],
    labels: Sequence[str] = (),
    uris: bool = False,
) -> PairSource:
    """Build the pair list for a review from a folder or a manifest.

    Manifest rows are read without checking that files exist: a missing or unreadable file is found
    when the pair is decoded and becomes an error row in the session, which the analyst can see and
    sort, rather than a row that quietly vanished. Manifest labels the model does not know are kept
    (they count as a label mismatch), because the analyst's data is allowed to disagree with the
    model; a folder name the model does not know leaves that pair unlabelled (a folder is often
    named for a date or a site, a manifest's label column is written on purpose).

    ``uris``: a manifest cell ``s3://…``, ``gs://…``, ``file://…`` stays that URI (the Ray engine reads
    it through pyarrow.fs); without it such a row is a problem naming the engine that reads URIs.
    """
    kind = source_kind(path)
    p = Path(os.path.normpath(Path(path).expanduser().absolute()))
    if kind == SOURCE_FOLDER:
        pairing = pair_folder(p, dict(modality_kinds), kind_for_path)
        pairs = [PairRow(r.line, r.id, r.files, _normalise_label(r.label, labels)) for r in pairing.pairs]
        notes = []
        if labels:
            # Per pair: a folder named after a class gives that class; any other folder name (a date, a
            # site, "samples") is no class, and scoring it as one would count the pair as a mismatch.
            others = sorted({r.label for r in pairs if r.label is not None and r.label not in labels})
            if others:
                left = sum(1 for r in pairs if r.label in others)
                shown = ", ".join(others[:3]) + (" …" if len(others) > 3 else "")
                notes.append(f"folder names ({shown}) are none of the model's labels: "
                             f"the {left} pair(s) in them are left unlabelled")
                pairs = [r if r.label is None or r.label in labels else PairRow(r.line, r.id, r.files, None)
                         for r in pairs]
        return PairSource(SOURCE_FOLDER, p, pairs, unmatched=list(pairing.unmatched), layout=pairing.layout,
                          notes=notes)
    if p.suffix.lower() == ".parquet":
        return _parquet_source(p, list(modality_kinds), labels, uris)
    iter_manifest(p, modalities=list(modality_kinds), check_files=False).close()  # whole-file problems: now
    source = PairSource(SOURCE_MANIFEST, p, [])
    source.pairs = _ManifestPairs(source, list(modality_kinds), labels, uris)
    return source


class _ManifestPairs:
    """The pairs of a manifest, re-read from the file on each iteration (memory does not grow with it)."""

    def __init__(self, source: PairSource, modalities: list[str], labels: Sequence[str], uris: bool = False) -> None:
        self.source = source
        self.modalities = modalities
        self.labels = labels
        self.uris = uris

    def __iter__(self) -> Iterator[PairRow]:
        p, labels = self.source.path, self.labels
        stream = iter_manifest(p, modalities=self.modalities, check_files=False, uris=self.uris)
        notes: list[str] = []
        unknown = 0
        for r in stream:
            row = PairRow(r.line, r.id, r.files, _normalise_label(r.label, labels))
            if labels and row.label is not None and row.label not in labels:
                unknown += 1
                if unknown <= 5:
                    notes.append(f"{p}:{row.line}: label {row.label!r} is not one of the model's labels "
                                 "(kept; it counts as a mismatch)")
            yield row
        if unknown > 5:
            notes.append(f"{p}: {unknown - 5} more rows with labels the model does not know")
        problems = [str(pr) for pr in stream.problems]
        if stream.problem_count > len(problems):
            problems.append(f"{p}: and {stream.problem_count - len(problems):,} more rows left out")
        self.source.problems = problems
        self.source.notes = notes


def _parquet_source(p: Path, modalities: list[str], labels: Sequence[str], uris: bool = False) -> PairSource:
    """A Parquet manifest (app.review.parquet, the CSV reader's rules): read whole, as pyarrow reads it."""
    from app.review.parquet import read_parquet_manifest

    manifest = read_parquet_manifest(p, modalities=modalities, uris=uris)
    pairs = [PairRow(r.line, r.id, r.files, _normalise_label(r.label, labels)) for r in manifest.rows]
    unknown = [r for r in pairs if labels and r.label is not None and r.label not in labels]
    notes = [f"{p}:{r.line}: label {r.label!r} is not one of the model's labels (kept; it counts as a mismatch)"
             for r in unknown[:5]]
    if len(unknown) > 5:
        notes.append(f"{p}: {len(unknown) - 5} more rows with labels the model does not know")
    return PairSource(SOURCE_MANIFEST, p, pairs, problems=[str(pr) for pr in manifest.problems], notes=notes)
