"""Work on a whole session file done off the GUI thread: recomputing every pair's flags after new
thresholds, and upgrading an older large session file when it is opened.

``FileJob.start(path, work)`` runs ``work(path, progress)`` in a thread; the work opens its own
connection to the file (sqlite3 connections stay in their thread) and does one transaction, so the
file holds the old state or the new one, never a mix, and the page keeps showing the old state
meanwhile. ``progress(done, total)`` and ``finished(path, error)`` (``error`` "" on success, else one
line) arrive on the GUI thread as queued signals.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

__all__ = ["REFLAG_IN_BACKGROUND_FROM", "UPGRADE_IN_BACKGROUND_FROM_BYTES", "FileJob"]

# Sessions with at least this many results are re-flagged in the thread (~1 s of work and up).
REFLAG_IN_BACKGROUND_FROM = 20_000
# Older session files at least this large are upgraded in the thread (~20,000 pairs; 2 min at 1,000,000).
UPGRADE_IN_BACKGROUND_FROM_BYTES = 32 * 2**20


class FileJob(QObject):
    progress = Signal(int, int)
    finished = Signal(str, str)  # session path, error ("" when the work is committed)

    def __init__(self, parent: Any = None):
        super().__init__(parent)
        self._thread: threading.Thread | None = None
        self._busy = False

    @property
    def running(self) -> bool:
        """True from `start` until the work is done. Cleared before `finished` is emitted, not when the
        thread ends: a slot of `finished` may start the next job (or open the file) while the thread is
        still returning, and must not find this one running (under load it did, and the upgraded
        session was never shown)."""
        return self._busy

    def start(self, path: Path, work: Callable[[Path, Callable[[int, int], None]], None]) -> None:
        self._busy = True
        self._thread = threading.Thread(target=self._run, args=(path, work), daemon=True, name="session-job")
        self._thread.start()

    def wait(self, seconds: float) -> None:
        if self._thread is not None:
            self._thread.join(seconds)

    def _run(self, path: Path, work: Callable[[Path, Callable[[int, int], None]], None]) -> None:
        error = ""
        try:
            work(path, self.progress.emit)
        except (ValueError, OSError, sqlite3.Error) as exc:  # SessionError is a ValueError
            error = " ".join(str(exc).split())
        except BaseException:
            self._busy = False
            raise
        self._busy = False
        self.finished.emit(str(path), error)
