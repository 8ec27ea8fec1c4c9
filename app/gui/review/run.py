"""The Review page's run life cycle: start a run in a `ReviewWorker`, pause, cancel, and show what it reports.

The worker's messages are the typed ones of `app.review.messages`; a failure is handled by its kind
(a model mismatch offers a re-run), never by its wording.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer

from app.gui.collector import freeze_long_lived_objects
from app.gui.review.worker import ReviewWorker
from app.qmf.bundle import BundleError, read_bundle_manifest
from app.review.messages import ErrorKind, Failed, Finished, Prepared, Progress
from app.review.session import ReviewSession, RowFilter

if TYPE_CHECKING:  # pragma: no cover
    from app.gui.review.view import ReviewView


def _format_seconds(s: float) -> str:
    if s < 0:
        return "—"
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"



PROGRESS_MS = 100  # the bar, the line and the status bar follow a run at ~10 Hz, however fast it reports



class ReviewRun:
    """At most one run at a time for one Review page."""

    def __init__(self, view: ReviewView):
        self.view = view
        self.worker: ReviewWorker | None = None
        self.thresholds_changed_during_run = False
        self._last_run: dict[str, Any] | None = None
        self._run_over = True
        # The child reports once a batch (tens of times a second on a fast machine): the first report
        # is shown at once, later ones at most every PROGRESS_MS, the latest one winning.
        self._progress: Progress | None = None
        self._progress_timer = QTimer(view, singleShot=True, interval=PROGRESS_MS, timeout=self._show_progress)

    def start(self, source: Path | None = None, session_path: Path | None = None, rerun: bool = False,
              retry_errors: bool = False) -> None:
        view = self.view
        if self.worker is not None and self.worker.isRunning():
            if not self._run_over:
                return
            self.worker.wait()  # the last run has reported; its thread is only tidying up
        self._run_over = False
        if session_path is None:
            if view.session is None:
                return
            session_path = view.session.path
        model = view.current_model_path()
        view.message_bar.hide_message()
        try:  # build the detail charts for the model's inputs now, on the click, not mid-run
            manifest = read_bundle_manifest(model)
            view._prepare_result_view(manifest["model"]["modalities"], manifest["model"]["labels"])
        except (BundleError, KeyError, TypeError):
            pass  # the worker reports a bad model
        freeze_long_lived_objects()  # one collection now, on the click, instead of long ones mid-run
        self.worker = ReviewWorker(model, Path(session_path), source, rerun=rerun, batch_size=view.batch_size,
                                   workers=view.workers, in_process=view.in_process, parent=view,
                                   retry_errors=retry_errors)
        self.worker.prepared.connect(self._on_prepared)
        self.worker.progress.connect(self._on_progress)
        self.worker.run_finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.worker.finished.connect(lambda: view._set_running(False))
        view._set_running(True)
        view.progress_label.setText(f"loading {model.name}…")
        view.runStatus.emit(f"Review: loading {model.name}…")
        self.worker.start()
        view.run_started.emit()

    def toggle_pause(self) -> None:
        view = self.view
        if self.worker is None or not self.worker.isRunning():
            return
        if self.worker.control.paused:
            self.worker.control.resume()
            view.pause_button.setText("Pause")
        else:
            self.worker.control.pause()
            view.pause_button.setText("Continue")
            view.progress_label.setText(view.progress_label.text() + " · paused")

    def cancel_run(self, wait: bool = False) -> None:
        if self.worker is not None and self.worker.isRunning():
            self.worker.control.cancel()
            if wait:
                self.worker.wait()

    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.isRunning() and not self._run_over

    def _on_prepared(self, info: Prepared) -> None:
        view = self.view
        path = Path(info.session)
        if view.session is None or view.session.path != path:
            view._close_session_only()
            view._attach(ReviewSession.open(path))
        else:
            view.session.reload()
            view._attach(view.session)
        self._show_source_report(info)

    def _show_source_report(self, info: Prepared) -> None:
        """Every warning, manifest problem and unpaired file: counted in one line, all listed on request."""
        unmatched = [f"{p}: {r}" for p, r in info.unmatched]
        lines = [*info.warnings, *info.problems, *unmatched]
        if not lines:
            return
        if len(lines) == 1:
            headline = lines[0]
        else:
            parts = []
            if info.warnings:
                parts.append(f"{len(info.warnings)} warning(s): {info.warnings[0]}"
                             + (" …" if len(info.warnings) > 1 else ""))
            if info.problems:
                parts.append(f"{len(info.problems)} manifest problem(s), rows left out and not reviewed")
            if unmatched:
                parts.append(f"{len(unmatched)} file(s) could not be paired and are not reviewed")
            headline = " · ".join(parts)
        self.view.message_bar.show_message(headline, details=lines if len(lines) > 1 else None)

    def _on_progress(self, p: Progress) -> None:
        self._progress = p
        if not self._progress_timer.isActive():
            self._show_progress()

    def _show_progress(self) -> None:
        p, self._progress = self._progress, None
        if p is None or self._run_over:
            return
        self._progress_timer.start()  # the next one waits at least PROGRESS_MS
        view = self.view
        view.session_bar.show_progress(p.done, p.total)
        paused = " · paused" if self.worker is not None and self.worker.control.paused else ""
        left = _format_seconds(p.seconds_left) if p.seconds_left is not None else "—"
        view.progress_label.setText(f"{p.done} / {p.total} pairs · {p.rate:.0f} pairs/s · {left} left{paused}")
        view.runStatus.emit(f"Review: {p.done} / {p.total} pairs · {left} left{paused}")
        if not view._refresh_timer.isActive():
            view._refresh_timer.start()

    def _on_finished(self, finished: Finished) -> None:
        view = self.view
        stats = finished.as_dict()
        self._progress_timer.stop()
        self._show_progress()  # a report still held back by the ~10 Hz limit: the bar ends where the run did
        self._run_over = True
        self._last_run = stats
        if self.thresholds_changed_during_run:
            self.thresholds_changed_during_run = False
            view._apply_thresholds()
        view._refresh_now()
        view._fill_filter_choices()
        if view.tabs.currentIndex() == 1:
            view.refresh_summary()
        word = "cancelled" if stats["cancelled"] else "finished"
        # the run's errors and the session's: a resumed session holds the earlier runs' errors too
        held = view.session.count(RowFilter(status="error")) if view.session is not None else stats["errors"]
        errors = (f"{held} errors in the session ({stats['errors']} this run)" if held != stats["errors"]
                  else f"{held} errors")
        view.progress_label.setText(  # the errors before the speed: a short row cuts the end
            f"{word}: {stats['done']} / {stats['total']} pairs · {errors} · {stats['processed']} this run in "
            f"{stats['seconds']:.1f} s ({stats['rate']:.0f} pairs/s)")
        view.runStatus.emit("")
        view.say(f"Review {word}: {stats['done']} / {stats['total']} pairs · {errors}", 10_000)
        if stats["cancelled"] and view.session is not None and view.session.pending_count():
            view.message_bar.show_message(f"{view.session.pending_count()} pairs have no result yet.", "Resume",
                                          lambda: self.start())
        view._set_running(False)
        view.run_finished.emit(stats)

    def _on_failed(self, failed: Failed) -> None:
        view = self.view
        message = failed.message
        self._run_over = True
        view._set_running(False)
        if failed.kind is ErrorKind.MODEL_MISMATCH:
            path = self.worker.session_path if self.worker else None
            view.message_bar.show_message(message + ".", "Re-run with this model",
                                          lambda: self.start(session_path=path, rerun=True))
            if path is not None and (view.session is None or view.session.path != path.absolute()):
                view._close_session_only()
                view._attach(ReviewSession.open(path))
        else:
            view.message_bar.show_message(message, "", None)
        view.show_session_progress()  # the session's own results, or an empty bar: never a full one
        view.progress_label.setText("stopped" if view.session is None else f"stopped · {view.progress_label.text()}")
        view.runStatus.emit("")
        view.run_failed.emit(message)

