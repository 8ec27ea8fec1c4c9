"""Which model input a file goes to, by its type: one rule for `qmf predict FILES` and the app's drops.

A file goes to the first input of its kind that has no file yet, in the model's input order; files
named for an input (`--image F`) are placed first and win. What cannot be placed is reported, one
line per file naming it, and the caller decides whether that stops it (the CLI) or not (a drop).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.modalities import kind_for_path

__all__ = ["RoutingProblem", "route_files"]


@dataclass(frozen=True)
class RoutingProblem:
    path: str
    kind: str | None  # the file's kind; None: no input kind opens this type of file
    message: str  # one line: '<file>: <what is wrong>'


def route_files(inputs: Sequence[Mapping[str, Any]], paths: Iterable[str | Path],
                given: Mapping[str, str] | None = None) -> tuple[dict[str, str], list[RoutingProblem]]:
    """Place `paths` on `inputs` (the manifest's modality entries: "name", "kind") after the `given`
    ones. Returns ({input name: file}, the files that could not be placed)."""
    files = {name: str(path) for name, path in (given or {}).items()}
    problems: list[RoutingProblem] = []
    for path in paths:
        path = str(path)
        kind = kind_for_path(path)
        if kind is None:
            listed = ", ".join(f"{m['name']} ({m.get('kind', '?')})" for m in inputs) or "none"
            problems.append(RoutingProblem(path, None, f"{path}: not a file type QMF Studio opens (this model's "
                                                       f"inputs: {listed})"))
            continue
        same_kind = [m["name"] for m in inputs if m.get("kind") == kind]
        a_kind = f"{'an' if kind[:1] in 'aeiou' else 'a'} {kind}"
        free = [name for name in same_kind if name not in files]
        if free:
            files[free[0]] = path
        elif same_kind:
            problems.append(RoutingProblem(path, kind, f"{path}: {a_kind} file, but the {kind} input "
                                                       f"({', '.join(same_kind)}) is already given"))
        else:
            takes = ", ".join(m.get("kind", "?") for m in inputs) or "nothing"
            problems.append(RoutingProblem(path, kind, f"{path}: {a_kind} file, but the model takes {takes}"))
    return files, problems
