"""Recent input pairs, kept in the app's settings (File ▸ Recent pairs)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings

from app.gui.actions import Action

MAX_RECENT = 10
KEY = "recent_pairs"


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
            Action(" + ".join(Path(v).name for v in pair.values()), lambda p=pair: load(p),
                   tip="\n".join(f"{k}: {v}" for k, v in pair.items()))
            for pair in pairs]
        return [*entries, None, Action("Clear recent pairs", self.clear)]
