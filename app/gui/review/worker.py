"""The review run, off the GUI thread.

One QThread per run. The thread loads its own Predictor (not thread-safe) and opens its own SQLite
connection (sqlite3's rule); the GUI reads the same file through its connection while this one writes
(WAL). Signals emitted here reach GUI-thread slots through queued connections.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QThread, Signal

__all__ = ["ReviewWorker"]


class ReviewWorker(QThread):
    prepared = Signal(dict)  # {"session", "created", "new_pairs", "warnings", "unmatched", "problems"}
    progress = Signal(int, int, float, float)  # done, total, pairs/s, seconds left (-1: unknown)
    run_finished = Signal(dict)  # RunStats as a dict
    failed = Signal(str, str)  # message, kind: "model_mismatch" or "error"

    def __init__(self, model_path: Path, session_path: Path, source_path: Path | None = None, rerun: bool = False,
                 batch_size: int = 64, workers: int | None = None, parent: Any = None):
        super().__init__(parent)
        self.model_path = Path(model_path)
        self.session_path = Path(session_path)
        self.source_path = Path(source_path) if source_path is not None else None
        self.rerun = rerun
        self.batch_size = batch_size
        self.workers = workers
        self._lock = threading.Lock()
        self._runner: Any = None
        self._cancelled = False
        self._paused = False

    # -------------------------------------------------------------- control (GUI thread)
    def pause(self) -> None:
        with self._lock:
            self._paused = True
            if self._runner is not None:
                self._runner.pause()

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            if self._runner is not None:
                self._runner.resume()

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            if self._runner is not None:
                self._runner.cancel()

    @property
    def paused(self) -> bool:
        return self._paused

    # -------------------------------------------------------------- the run (worker thread)
    def run(self) -> None:
        session = None
        try:
            from app.qmf.predictor import Predictor
            from app.review.runner import BatchRunner
            from app.review.session import ModelMismatchError
            from app.review.workflow import prepare_session

            predictor = Predictor.load(self.model_path)
            try:
                prepared = prepare_session(self.session_path, predictor, self.source_path, self.model_path,
                                           rerun=self.rerun)
            except ModelMismatchError as exc:
                self.failed.emit(str(exc), "model_mismatch")
                return
            session = prepared.session
            src = prepared.source
            self.prepared.emit({
                "session": str(session.path), "created": prepared.created, "new_pairs": prepared.new_pairs,
                "warnings": list(prepared.warnings),
                "unmatched": [(str(p), r) for p, r in (src.unmatched if src else [])],
                "problems": list(src.problems if src else []),
            })

            def progress(done: int, total: int, rate: float, left: float | None) -> None:
                self.progress.emit(done, total, rate, -1.0 if left is None else left)

            runner = BatchRunner(predictor, session, batch_size=self.batch_size, workers=self.workers,
                                 progress=progress)
            with self._lock:
                self._runner = runner
                if self._cancelled:
                    runner.cancel()
                elif self._paused:
                    runner.pause()
            stats = runner.run()
            self.run_finished.emit({
                "processed": stats.processed, "errors": stats.errors, "seconds": stats.seconds,
                "cancelled": stats.cancelled, "done": stats.done, "total": stats.total, "rate": stats.rate,
            })
        except Exception as exc:  # noqa: BLE001 - shown to the user, never a crash of the app
            self.failed.emit(str(exc) or type(exc).__name__, "error")
        finally:
            if session is not None:
                session.close()
