"""Run a review in a child process and report through a pipe (used by the app).

Why a process and not only a thread: the decoding threads and the result bookkeeping are partly
Python, and a GUI thread competing with them for the GIL stalls for tens to hundreds of
milliseconds (PySide releases and re-takes the GIL on every Qt call). In a child process the run
cannot slow the window down; the window only reads the session file (WAL allows that) and gets
progress messages. The child writes the same session format through the same BatchRunner as
``qmf batch``.

Messages sent: the dataclasses of ``app.review.messages`` — `Prepared`, then `Progress` after each
batch, then `Finished` or `Failed` (whose `kind` says what went wrong; a different model than the
session's is `ErrorKind.MODEL_MISMATCH`, which the app answers with a re-run button).
"""

from __future__ import annotations

import contextlib
import os
import traceback
from pathlib import Path
from typing import Any

from app.review.messages import ErrorKind, Failed, Finished, Prepared, Progress

__all__ = ["run_review"]


def _failure(exc: BaseException, params: dict[str, Any]) -> Failed:
    """The exception as a message: known kinds keep their one-line text; anything else is INTERNAL."""
    from app.data.manifest import ManifestError
    from app.modalities import InputError
    from app.qmf.bundle import BundleError
    from app.review.session import ModelMismatchError
    from app.util.errors import os_error_text

    if isinstance(exc, ModelMismatchError):
        return Failed(ErrorKind.MODEL_MISMATCH, exc.path, exc.reason)
    if isinstance(exc, BundleError):
        return Failed(ErrorKind.BAD_MODEL, exc.path, str(exc))
    if isinstance(exc, OSError):  # disk full, permission denied ...: the file and the reason
        return Failed(ErrorKind.BAD_INPUT, exc.filename and str(exc.filename), os_error_text(exc))
    if isinstance(exc, InputError | ManifestError | ValueError):  # UserError (a busy session ...) included
        return Failed(ErrorKind.BAD_INPUT, params.get("source_path") or params.get("session_path"),
                      str(exc) or type(exc).__name__)
    return Failed(ErrorKind.INTERNAL, params.get("session_path"), f"{type(exc).__name__}: {exc}",
                  "".join(traceback.format_exception(exc)))


def run_review(conn: Any, cancel: Any, running: Any, params: dict[str, Any]) -> None:
    """Target of the child process. ``cancel``/``running`` are multiprocessing Events shared with the app."""
    session = None
    stack = contextlib.ExitStack()
    try:
        if params.get("nice"):
            # background work: let the window (another process) have the CPU first when it needs it
            try:
                os.nice(int(params["nice"]))
            except (AttributeError, OSError):
                pass
        from app.qmf.predictor import Predictor
        from app.review.collector import quiet_collector
        from app.review.runner import BatchRunner
        from app.review.workflow import prepare_session

        model_path = Path(params["model_path"])
        predictor = Predictor.load(model_path)
        source = params.get("source_path")
        settled = stack.enter_context(quiet_collector())
        prepared = prepare_session(params["session_path"], predictor, Path(source) if source else None,
                                   model_path, rerun=bool(params.get("rerun")),
                                   retry_errors=bool(params.get("retry_errors")))
        session = prepared.session
        settled()
        src = prepared.source
        conn.send(Prepared(
            session=str(session.path), created=prepared.created, new_pairs=prepared.new_pairs,
            warnings=list(prepared.warnings),
            unmatched=[(str(p), r) for p, r in (src.unmatched if src else [])],
            problems=list(src.problems if src else []),
        ))

        def progress(done: int, total: int, rate: float, left: float | None) -> None:
            conn.send(Progress(done, total, rate, left))

        runner = BatchRunner(predictor, session, batch_size=int(params.get("batch_size") or 64),
                             workers=params.get("workers"), progress=progress,
                             cancel_event=cancel, running_event=running)
        stats = runner.run()
        conn.send(Finished(processed=stats.processed, errors=stats.errors, seconds=stats.seconds,
                           cancelled=stats.cancelled, done=stats.done, total=stats.total, rate=stats.rate))
    except Exception as exc:  # noqa: BLE001 - reported to the app as a message, never a traceback
        try:
            conn.send(_failure(exc, params))
        except OSError:
            pass
    finally:
        if session is not None:
            session.close()
        stack.close()
        conn.close()
