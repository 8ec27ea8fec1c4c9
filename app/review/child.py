"""Run a review in a child process and report through a pipe (used by the app).

Why a process and not only a thread: the decoding threads and the result bookkeeping are partly
Python, and a GUI thread competing with them for the GIL stalls for tens to hundreds of
milliseconds (PySide releases and re-takes the GIL on every Qt call). In a child process the run
cannot slow the window down; the window only reads the session file (WAL allows that) and gets
progress messages. The child writes the same session format through the same BatchRunner as
``qmf batch``.

Messages sent (tuples): ("prepared", info), ("progress", done, total, rate, left or -1),
("finished", stats), ("failed", message, kind) with kind "model_mismatch" or "error".
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["run_review"]


def run_review(conn: Any, cancel: Any, running: Any, params: dict[str, Any]) -> None:
    """Target of the child process. ``cancel``/``running`` are multiprocessing Events shared with the app."""
    session = None
    try:
        if params.get("nice"):
            # background work: let the window (another process) have the CPU first when it needs it
            try:
                os.nice(int(params["nice"]))
            except (AttributeError, OSError):
                pass
        from app.qmf.predictor import Predictor
        from app.review.runner import BatchRunner
        from app.review.session import ModelMismatchError
        from app.review.workflow import prepare_session

        model_path = Path(params["model_path"])
        predictor = Predictor.load(model_path)
        source = params.get("source_path")
        try:
            prepared = prepare_session(params["session_path"], predictor, Path(source) if source else None,
                                       model_path, rerun=bool(params.get("rerun")))
        except ModelMismatchError as exc:
            conn.send(("failed", str(exc), "model_mismatch"))
            return
        session = prepared.session
        src = prepared.source
        conn.send(("prepared", {
            "session": str(session.path), "created": prepared.created, "new_pairs": prepared.new_pairs,
            "warnings": list(prepared.warnings),
            "unmatched": [(str(p), r) for p, r in (src.unmatched if src else [])],
            "problems": list(src.problems if src else []),
        }))

        def progress(done: int, total: int, rate: float, left: float | None) -> None:
            conn.send(("progress", done, total, rate, -1.0 if left is None else left))

        runner = BatchRunner(predictor, session, batch_size=int(params.get("batch_size") or 64),
                             workers=params.get("workers"), progress=progress,
                             cancel_event=cancel, running_event=running)
        stats = runner.run()
        conn.send(("finished", {
            "processed": stats.processed, "errors": stats.errors, "seconds": stats.seconds,
            "cancelled": stats.cancelled, "done": stats.done, "total": stats.total, "rate": stats.rate,
        }))
    except Exception as exc:  # noqa: BLE001 - reported to the app as a message, never a traceback
        try:
            conn.send(("failed", str(exc) or type(exc).__name__, "error"))
        except OSError:
            pass
    finally:
        if session is not None:
            session.close()
        conn.close()
