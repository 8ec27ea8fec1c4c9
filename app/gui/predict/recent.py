"""Recent input pairs, kept in the app's settings (File ▸ Recent pairs)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings

from app.gui.actions import Action

MAX_RECENT = 10
KEY = "recent_pairs"


def _tail(path: Path, parts: int) -> str:
    return "/".join(path.parts[-parts:]) if parts > 0 else ""


def _label(pair: dict[str, str], depth: int) -> str:
    paths = [Path(v) for v in pair.values()]
    parents = {p.parent for p in paths}
    if len(parents) == 1:  # "three.png + three.wav — in samples/"
        folder = _tail(paths[0].parent, depth)
        return " + ".join(p.name for p in paths) + (f" — in {folder}/" if folder else "")
    return " + ".join(_tail(p, depth + 1) for p in paths)


def pair_labels(pairs: list[dict[str, str]]) -> list[str]:
    """Menu text per pair: the file names and their folder, with as many folder levels as it takes
    for two pairs never to read the same (the full paths are in the tooltip)."""
    depths = [1] * len(pairs)
    for _ in range(6):
        labels = [_label(p, d) for p, d in zip(pairs, depths, strict=True)]
        clashes = {lb for lb in labels if labels.count(lb) > 1}
        if not clashes:
            break
        depths = [d + 1 if lb in clashes else d for lb, d in zip(labels, depths, strict=True)]
    return labels


class RecentPairs:
    """The last MAX_RECENT pairs that were predicted, newest first, as {input name: file}."""

    def __init__(self, settings: QSettings):
        self.settings = settings

    def pairs(self) -> list[dict[str, str]]:
        try:
            value = json.loads(str(self.settings.value(KEY, "[]")))
            return [p for p in value if isinstance(p, dict)]
        except ValueError:
            return []

    def remember(self, files: dict[str, str | None]) -> None:
        pair = {k: v for k, v in files.items() if v}
        recent = self.pairs()
        if not pair or (recent and recent[0] == pair):
            return
        pairs = [pair] + [p for p in recent if p != pair]
        self.settings.setValue(KEY, json.dumps(pairs[:MAX_RECENT]))

    def clear(self) -> None:
        self.settings.setValue(KEY, "[]")

    def actions(self, load: Callable[[dict[str, str]], None]) -> list[Action | None]:
        """The submenu's entries: one per pair (it loads that pair), then "Clear"."""
        pairs = self.pairs()
        if not pairs:
            return [Action("(none yet)", enabled=False)]
        entries: list[Action | None] = [
            Action(label, lambda p=pair: load(p), tip="\n".join(f"{k}: {v}" for k, v in pair.items()))
            for pair, label in zip(pairs, pair_labels(pairs), strict=True)]
        return [*entries, None, Action("Clear recent pairs", self.clear)]
