"""Recomputing a large session's flags off the GUI thread (new thresholds touch every result).

``Reflagger.start(path, thresholds)`` opens its own connection to the session file in a thread and
calls ``ReviewSession.set_thresholds`` there (one transaction: the file has the old flags or the new
ones, never a mix); ``progress(done, total)`` as it goes, ``finished(path, error)`` when committed
(``error`` "" on success, else one line). The page keeps showing the old flags meanwhile.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.review.flags import FlagThresholds
from app.review.session import ReviewSession

__all__ = ["IN_BACKGROUND_FROM", "Reflagger"]

# Sessions with at least this many results are re-flagged in the thread (~1 s of work and up).
IN_BACKGROUND_FROM = 20_000


class Reflagger(QObject):
    progress = Signal(int, int)
    finished = Signal(str, str)  # session path, error ("" when the new flags are in the file)

    def __init__(self, parent: Any = None):
        super().__init__(parent)
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, path: Path, thresholds: FlagThresholds) -> None:
        self._thread = threading.Thread(target=self._run, args=(path, thresholds), daemon=True, name="reflag")
        self._thread.start()

    def wait(self, seconds: float) -> None:
        if self._thread is not None:
            self._thread.join(seconds)

    def _run(self, path: Path, thresholds: FlagThresholds) -> None:
        error = ""
        try:
            with ReviewSession.open(path) as s:
                s.set_thresholds(thresholds, progress=self.progress.emit)
        except (ValueError, OSError, sqlite3.Error) as exc:  # SessionError is a ValueError
            error = " ".join(str(exc).split())
        self.finished.emit(str(path), error)
