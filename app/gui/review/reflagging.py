"""The Review page's flag thresholds: applying new ones to the session, in a thread for a big one.

`ReviewView` takes these methods from `ReflagMixin`; they use its session, threshold bar, table model,
run and background re-flagger (app/gui/review/view.py builds them).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from app.gui.review import background
from app.review.flags import FlagThresholds
from app.review.session import ReviewSession

__all__ = ["ReflagMixin"]


class ReflagMixin:
    def _apply_thresholds(self) -> None:
        if self.session is None:
            return
        th = self.threshold_bar.thresholds()
        if th == self.session.thresholds:
            return
        if self.session.result_count() >= background.REFLAG_IN_BACKGROUND_FROM:  # touches every result: in a thread
            if self.running:  # its one long transaction would hold up the run's writes: after the run
                self.run.thresholds_changed_during_run = True
                self.statusMessage.emit("The new thresholds apply when the run ends.", 5000)
            elif not self.reflagger.running:
                self.reflagger.start(self.session.path, lambda path, progress: _set_thresholds(path, th, progress))
            return  # (a change made meanwhile is applied when this one is done: _reflagged)
        self.session.set_thresholds(th)
        self._thresholds_applied()

    def _reflag_progress(self, done: int, total: int) -> None:
        self.statusMessage.emit(f"Recomputing flags: {done:,} of {total:,} pairs", 0)

    def _reflagged(self, path: str, error: str) -> None:
        if self.session is None or str(self.session.path) != path:
            return
        self.session.reload()
        self.statusMessage.emit(f"Flags not recomputed: {error}" if error else "Flags recomputed.", 5000)
        self._thresholds_applied()
        if not error:
            self._apply_thresholds()  # thresholds changed again while it ran

    def _thresholds_applied(self) -> None:
        if self.running:
            self.run.thresholds_changed_during_run = True
        self._fill_filter_choices()
        self.table_model.refresh()
        if self.tabs.currentIndex() == 1:
            self.refresh_summary()
        if self._current_id:
            self._show_pair(self.session.row(self._current_id))

    def set_thresholds(self, thresholds: FlagThresholds) -> None:
        self.threshold_bar.show_thresholds(thresholds)
        self._apply_thresholds()


def _set_thresholds(path: Path, thresholds: FlagThresholds, progress: Callable[[int, int], None]) -> None:
    """Re-flag the session file at ``path`` (a FileJob's work: its own connection, in its thread)."""
    with ReviewSession.open(path) as s:
        s.set_thresholds(thresholds, progress=progress)
