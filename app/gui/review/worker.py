"""The review run, off the GUI thread — by default in a child process.

A QThread per run relays messages from a child process (``app.review.child.run_review``) as Qt
signals, delivered to GUI-thread slots by queued connections. The child loads its own Predictor and
opens its own SQLite connection; the GUI reads the same file through its connection (WAL).

Why a process: a run's Python work (decoding glue, bookkeeping) competing for the GIL made the window
stall for hundreds of milliseconds; in a child process it cannot. ``in_process=True`` runs the same
BatchRunner inside this thread instead (no process start-up; for environments without
multiprocessing). A frozen (PyInstaller) app must call ``multiprocessing.freeze_support()`` first
thing in its entry point for the child process to start.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

from PySide6.QtCore import QThread, Signal

from app.gui.collector import install_gui_thread_collector
from app.review.control import RunControl
from app.review.messages import ErrorKind, Failed, Finished, Prepared, Progress

__all__ = ["ReviewWorker"]


class ReviewWorker(QThread):
    """One review run. Pause, resume and cancel through `control` (a `RunControl` whose events the
    child process shares); the run's messages arrive as the typed signals below."""

    prepared = Signal(object)  # app.review.messages.Prepared
    progress = Signal(object)  # Progress
    run_finished = Signal(object)  # Finished
    failed = Signal(object)  # Failed: branch on its kind, show its message

    def __init__(self, model_path: Path, session_path: Path, source_path: Path | None = None, rerun: bool = False,
                 batch_size: int = 64, workers: int | None = None, in_process: bool = False, parent: Any = None):
        super().__init__(parent)
        install_gui_thread_collector()  # this thread runs Python code: collect cycles in the GUI thread only
        self.model_path = Path(model_path)
        self.session_path = Path(session_path)
        self.source_path = Path(source_path) if source_path is not None else None
        self.rerun = rerun
        self.batch_size = batch_size
        self.workers = workers
        self.in_process = in_process
        if in_process:
            self.control = RunControl()
        else:
            self._ctx = multiprocessing.get_context("spawn")
            self.control = RunControl(self._ctx.Event(), self._ctx.Event())
            self.control.resume()

    # -------------------------------------------------------------- the run (worker thread)
    def _params(self) -> dict[str, Any]:
        return {"model_path": str(self.model_path), "session_path": str(self.session_path),
                "source_path": str(self.source_path) if self.source_path else None, "rerun": self.rerun,
                "batch_size": self.batch_size, "workers": self.workers, "nice": 0 if self.in_process else 10}

    def _dispatch(self, msg: object) -> bool:
        """Emit one message as its signal; True when the run is over."""
        if isinstance(msg, Progress):
            self.progress.emit(msg)
        elif isinstance(msg, Prepared):
            self.prepared.emit(msg)
        elif isinstance(msg, Finished):
            self.run_finished.emit(msg)
            return True
        elif isinstance(msg, Failed):
            self.failed.emit(msg)
            return True
        return False

    def run(self) -> None:
        if self.in_process:
            self._run_here()
        else:
            self._run_child()

    def _run_here(self) -> None:
        from app.review.child import run_review

        worker = self

        class _Conn:
            def send(self, msg: object) -> None:
                worker._dispatch(msg)

            def close(self) -> None:
                pass

        run_review(_Conn(), self.control.cancel_event, self.control.running_event, self._params())

    def _run_child(self) -> None:
        from app.review.child import run_review

        receiver, sender = self._ctx.Pipe(duplex=False)
        try:
            proc = self._ctx.Process(target=run_review, name="qmf-review", daemon=True,
                                     args=(sender, self.control.cancel_event, self.control.running_event,
                                           self._params()))
            proc.start()
        except Exception as exc:  # noqa: BLE001 - e.g. no way to start a process: say so
            self.failed.emit(Failed(ErrorKind.PROCESS, str(self.session_path),
                                    f"cannot start the review process: {exc}"))
            return
        sender.close()
        over = False
        try:
            while not over:
                if receiver.poll(0.1):
                    try:
                        over = self._dispatch(receiver.recv())
                    except EOFError:
                        break
                elif not proc.is_alive() and not receiver.poll(0):
                    break
        finally:
            receiver.close()
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
                proc.join()
        if not over:
            self.failed.emit(Failed(ErrorKind.PROCESS, str(self.session_path),
                                    f"the review process stopped unexpectedly (exit code {proc.exitcode}); "
                                    "the results written so far are in the session — resume to finish"))
