"""The Review view: run a model over a folder or manifest of pairs, then sort, filter, judge, export.

The session file is the truth: the worker writes results to it, the table reads it through a lazy
model, verdicts and notes are written to it the moment they change. Opening the same file later (or
one made by ``qmf batch``) shows the same review and offers to resume what is missing.

Keys (when the view has focus) are declared in `app.gui.actions.REVIEW_KEYS`: N / Shift+N next /
previous flagged pair, A accept, R reject, L relabel (to the label chosen next to the buttons),
Ctrl+F search, Ctrl+C copy the selected rows. Verdicts and notes act only on the pair that is
selected and that the current filter shows; each is undoable (`undo_stack`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut, QUndoStack
from PySide6.QtWidgets import (
    QApplication,
    QMessageBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.gui.actions import REVIEW_KEYS
from app.gui.review import background
from app.gui.review.bars import FilterBar, MessageBar, ThresholdBar
from app.gui.review.exports import ExportMixin
from app.gui.review.judging import JudgingMixin
from app.gui.review.page_state import ReviewPageState
from app.gui.review.page_tabs import PageTabs
from app.gui.review.pair_detail import PairDetail
from app.gui.review.preview_decoder import DecodedPair, PreviewDecoder
from app.gui.review.reflagging import ReflagMixin
from app.gui.review.results_folder import ResultsFolderOpener
from app.gui.review.run import ReviewRun
from app.gui.review.selection import SelectionMixin
from app.gui.review.session_bar import SessionBar, default_session_path
from app.gui.review.summary import SummaryPanel
from app.gui.review.table_model import ReviewTableModel
from app.gui.review.table_view import VerdictDelegate, pairs_table
from app.gui.review.worker import ReviewWorker
from app.review.models import session_model_path
from app.review.session import ReviewSession, RowFilter
from app.review.sources import SESSION_SUFFIX

__all__ = ["ReviewView", "default_session_path"]

REFRESH_MS = 300
# A pair's previews are shown by a timer this long after their files are decoded, never inside the
# event-loop turn that paints the click's numbers: decoded within a few milliseconds, they used to
# arrive (a queued call, which Qt delivers before the lower-priority repaint) in time to be painted
# with the click, making one turn of both (~20-30 ms of GUI-thread time) instead of two.
PREVIEWS_AFTER_MS = 1
# A run's refresh of the rows in view waits this long after a click (the click's repaint comes first)
REFRESH_AFTER_CLICK_MS = 60


class ReviewView(JudgingMixin, ExportMixin, ReflagMixin, SelectionMixin, QWidget):
    """Embeddable (a tab of the main window) and usable standalone (tests construct it directly)."""

    session_opened = Signal(str)
    run_started = Signal()
    run_finished = Signal(dict)
    run_failed = Signal(str)
    statusMessage = Signal(str, int)  # text, milliseconds (0: until replaced)
    runStatus = Signal(str)  # the run's progress in one line ("" when no run): the window's status bar
    openPairInPredict = Signal(dict)  # modality -> file of the selected pair

    def __init__(self, model_path_provider: Callable[[], Path | None] | None = None, parent: QWidget | None = None,
                 batch_size: int = 64, workers: int | None = None, in_process: bool = False,
                 settings: QSettings | None = None):
        """``model_path_provider``: the model the user has chosen (the Predict tab's), or None.
        ``settings``: where the splitter, columns, sort and recent sessions are remembered (None: nowhere)."""
        super().__init__(parent)
        self.state = ReviewPageState(settings)
        self.undo_stack = QUndoStack(self)
        self.model_path_provider = model_path_provider
        self.batch_size = batch_size
        self.workers = workers
        self.in_process = in_process  # True: run in a thread of this process (see worker.py for why not)
        self.session: ReviewSession | None = None
        self.decoder = PreviewDecoder(self)
        self.decoder.decoded.connect(self._on_decoded)
        self._current_id: str | None = None
        self._decoded: DecodedPair | None = None  # decoded previews waiting for their own turn
        self._decoded_timer = QTimer(self, singleShot=True, interval=PREVIEWS_AFTER_MS, timeout=self._show_decoded)
        self._shown_at = 0.0  # time.monotonic() of the last pair shown by a click
        self.run = ReviewRun(self)
        self.reflagger = background.FileJob(self)
        self.reflagger.progress.connect(self._reflag_progress)
        self.reflagger.finished.connect(self._reflagged)
        self.upgrader = background.FileJob(self)
        self.upgrader.finished.connect(self._upgraded)
        self.results_folder = ResultsFolderOpener(self)  # File ▸ Open results folder…, dropped results folders
        self._result_view_key: str | None = None  # the inputs and labels the detail charts are built for
        self._splitter_restored = False
        self._build()
        self._refresh_timer = QTimer(self, singleShot=True, interval=REFRESH_MS, timeout=self._refresh_now)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        self._set_running(False)

    # ================================================================== layout
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(3)

        self.session_bar = SessionBar()
        self.session_bar.sourceChosen.connect(lambda source, path: self._guard(lambda: self.open_source(source, path)))
        self.session_bar.sessionChosen.connect(lambda path: self._guard(lambda: self.open_session(path)))
        self.session_bar.exportChosen.connect(self._export_chosen)
        self.session_bar.export_problem = self.export_problem
        self.session_bar.exportRefused.connect(self.export_refused)
        self.session_bar.resumeClicked.connect(lambda: self.start_run())
        self.session_bar.retryClicked.connect(self.retry_errors)
        self.session_bar.pauseClicked.connect(self.toggle_pause)
        self.session_bar.cancelClicked.connect(self.cancel_run)
        layout.addWidget(self.session_bar)
        self.progress_bar = self.session_bar.progress_bar
        self.progress_label = self.session_bar.progress_label
        self.pause_button = self.session_bar.pause_button

        self.message_bar = MessageBar()
        layout.addWidget(self.message_bar)
        self.filter_bar = FilterBar()
        self.filter_bar.changed.connect(self._apply_filter)
        layout.addWidget(self.filter_bar)
        self.threshold_bar = ThresholdBar()
        self.threshold_bar.changed.connect(self._apply_thresholds)
        layout.addWidget(self.threshold_bar)

        self.tabs = PageTabs()
        pairs_page = self.splitter = QSplitter(Qt.Orientation.Horizontal)
        pairs_page.setChildrenCollapsible(False)
        pairs_page.splitterMoved.connect(lambda *_: self.state.save_splitter(pairs_page))
        self.table_model = ReviewTableModel(self)
        self.table = pairs_table(self.table_model)
        self.table.horizontalHeader().sectionResized.connect(lambda *_: self._save_columns())
        self.table.horizontalHeader().sortIndicatorChanged.connect(lambda *_: self._save_columns())
        self._columns_restored = False  # no saving while a session's columns are being set up
        self.table.selectionModel().currentRowChanged.connect(self._on_current_changed)
        self.verdict_delegate = VerdictDelegate(lambda: self.session.labels if self.session else [], self.table)
        self.table_model.modelReset.connect(self._after_reset)
        self.table_model.verdictEdited.connect(self._verdict_edited)
        self.table_model.write_verdict = self._write_from_table
        pairs_page.addWidget(self.table)

        self.detail = PairDetail()
        self.detail.verdictChosen.connect(self.set_verdict)
        self.detail.noteEdited.connect(lambda _text: self._save_note())
        self.detail.openInPredict.connect(self.open_pair_in_predict)
        pairs_page.addWidget(self.detail)
        pairs_page.setStretchFactor(0, 3)
        pairs_page.setStretchFactor(1, 2)
        self.tabs.addTab(pairs_page, "Pairs")
        self.summary_panel = SummaryPanel()
        self.tabs.addTab(self.summary_panel, "Summary")
        self.tabs.currentChanged.connect(lambda i: self.refresh_summary() if i == 1 else None)
        layout.addWidget(self.tabs, 1)

        commands: dict[str, Callable[[], Any]] = {
            "next_flagged": lambda: self.goto_flagged(+1), "previous_flagged": lambda: self.goto_flagged(-1),
            "accept": lambda: self.set_verdict("accept"), "reject": lambda: self.set_verdict("reject"),
            "relabel": lambda: self.set_verdict("relabel"), "search": lambda: self.filter_bar.search.setFocus(),
            "copy_rows": self.copy_selected_rows,
        }
        for key in REVIEW_KEYS:  # the table the Help ▸ Keyboard shortcuts sheet is made from
            on_table = key.command == "copy_rows"  # Ctrl+C elsewhere (the note) copies text as usual
            sc = QShortcut(QKeySequence(key.keys), self.table if on_table else self, activated=commands[key.command])
            sc.setContext(Qt.ShortcutContext.WidgetShortcut if on_table
                          else Qt.ShortcutContext.WidgetWithChildrenShortcut)

    # ================================================================== opening
    def current_model_path(self) -> Path:
        chosen = self.model_path_provider() if self.model_path_provider else None
        return session_model_path(chosen, self.session.path if self.session is not None else None)

    def open_source(self, path: str | Path, session_path: str | Path | None = None) -> Path:
        """Review a folder or manifest: create (or resume) its session and start the run. Returns the session path."""
        path = Path(path)
        if path.suffix.lower() == SESSION_SUFFIX:
            self.open_session(path)
            return path
        target = Path(session_path) if session_path else default_session_path(path)
        if self.session is not None and self.session.path != target.absolute():
            self._close_session()
        self.start_run(source=path, session_path=target)
        return target

    def open_session(self, path: str | Path) -> None:
        """Show an existing session; offer to resume when pairs are missing. A large file of an older
        format is upgraded in a thread first (the busy bar runs meanwhile) and shown when it is done."""
        if self.upgrader.running:
            return
        if ReviewSession.needs_upgrade(path) and os.path.getsize(path) >= background.UPGRADE_IN_BACKGROUND_FROM_BYTES:
            self._close_session()
            self.progress_bar.setRange(0, 0)
            self.progress_label.setText(f"Upgrading {Path(path).name} to this version's session format…")
            self.upgrader.start(Path(path).absolute(), lambda p, _progress: ReviewSession.open(p).close())
            return
        self._close_session()
        session = ReviewSession.open(path)
        self._attach(session)
        pending = session.pending_count()
        if pending:
            self.message_bar.show_message(f"{pending} of {session.pair_count()} pairs have no result yet.", "Resume",
                                          lambda: self.start_run())
        else:
            self.message_bar.hide_message()
        self.show_session_progress()

    def show_session_progress(self) -> None:
        """The bar and line for the open session's results (an empty bar when none is open)."""
        session = self.session
        if session is None:
            self.progress_bar.setRange(0, 1)
            self.progress_bar.reset()
            return
        self.session_bar.show_progress(session.result_count(), session.pair_count())
        self.progress_label.setText(f"{session.result_count()} / {session.pair_count()} pairs · "
                                    f"model {session.model_name}")

    def _attach(self, session: ReviewSession) -> None:
        another = session.path != self.session_bar.session_path
        if another:  # filters and undo steps belong to the session they were made in
            self.filter_bar.reset()
            self.table_model.filter = self.current_filter()
            self.undo_stack.clear()
        self.session = session
        self.state.add_recent(session.path)
        self.session_bar.session_path = session.path
        self.threshold_bar.show_thresholds(session.thresholds)
        self.table_model.set_session(session)
        verdict_col = [k for k, _ in self.table_model.columns].index("verdict")
        self.table.setItemDelegateForColumn(verdict_col, self.verdict_delegate)
        self._columns_restored = False
        self.state.restore_columns(self.table, [k for k, _ in self.table_model.columns])
        self._columns_restored = True
        self.detail.set_labels(session.labels)
        self._prepare_result_view(session.manifest_modalities, session.labels)
        self._fill_filter_choices()
        if self.tabs.currentIndex() == 1:
            self.refresh_summary()
        self._set_running(self.running)  # one state for the toolbar's Resume and the banner's
        self.session_opened.emit(str(session.path))

    def _close_session(self) -> None:
        if self.worker is not None and self.worker.isRunning():
            self.cancel_run(wait=True)
        if self.session is not None:
            self.table_model.set_session(None)
            self.session.close()
            self.session = None
            self._current_id = None
            self._show_pair(None)
        self.show_session_progress()  # nothing open: an empty bar, not the last session's

    # ================================================================== running
    # ================================================================== running: app.gui.review.run
    def start_run(self, source: Path | None = None, session_path: Path | None = None, rerun: bool = False,
                  retry_errors: bool = False) -> None:
        self.run.start(source, session_path, rerun, retry_errors)

    def retry_errors(self) -> None:
        """Run again the pairs that ended in an error (after their files were replaced): `--retry-errors`."""
        if self.session is None:
            self.say("No review session is open.")
        elif not self.running:
            self.start_run(retry_errors=True)

    def toggle_pause(self) -> None:
        self.run.toggle_pause()

    def cancel_run(self, wait: bool = False) -> None:
        self.run.cancel_run(wait)

    @property
    def worker(self) -> ReviewWorker | None:
        return self.run.worker

    @property
    def running(self) -> bool:
        return self.run.running

    def _prepare_result_view(self, modalities: list[dict[str, Any]], labels: list[str]) -> None:
        """(Re)build the detail view's previews and charts only when the inputs or labels changed."""
        key = json.dumps([modalities, list(labels)], sort_keys=True, default=str)
        if key != self._result_view_key:
            self.detail.result_view.set_modalities(modalities, labels)
            self._result_view_key = key

    def _save_columns(self) -> None:
        if self._columns_restored and self.session is not None:
            self.state.save_columns(self.table)

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if not self._splitter_restored:
            self._splitter_restored = True
            self.state.restore_splitter(self.splitter, max(self.splitter.width(), self.width() - 8))

    def shutdown(self) -> None:
        """Stop a run cleanly (the results so far are in the file) and close the session."""
        try:
            self.cancel_run(wait=True)
            self.results_folder.wait()
            self.reflagger.wait(60)  # their transactions commit or roll back whole either way
            self.upgrader.wait(60)
            self.decoder.stop()
            self._close_session_only()
        except RuntimeError:  # the C++ side is already gone at interpreter exit
            pass

    def _set_running(self, running: bool) -> None:
        session = self.session
        self.session_bar.set_running(running, session is not None and session.pending_count() > 0,
                                     session is not None and session.count(RowFilter(status="error")) > 0)
        if session is not None and not running:
            banner = self.message_bar.isVisible() and self.message_bar.button.text() == "Resume"
            if banner and not session.pending_count():
                self.message_bar.hide_message()

    def _close_session_only(self) -> None:
        if self.session is not None:
            self.table_model.set_session(None)
            self.session.close()
            self.session = None

    # ================================================================== table
    def _refresh_now(self) -> None:
        if self.session is None:
            return
        self._refresh_timer.setInterval(REFRESH_MS)  # a refresh put off after a click shortened it
        wait = self._shown_at + REFRESH_AFTER_CLICK_MS / 1000 - time.monotonic()
        if self.running and wait > 0:  # a click was just shown: its repaint first, in a turn of its own
            self._refresh_timer.start(max(1, round(wait * 1000)))
            return
        self.table_model.refresh(self._visible_rows())
        if self.tabs.currentIndex() == 1 and not self.running:
            self.refresh_summary()

    def _visible_rows(self) -> tuple[int, int]:
        """(first, last) row the table shows; (0, -1) when it shows none (another tab, no rows)."""
        if not self.table.isVisible():
            return 0, -1
        first = self.table.rowAt(0)
        if first < 0:
            return 0, -1
        last = self.table.rowAt(self.table.viewport().height() - 1)
        return first, last if last >= 0 else self.table_model.rowCount() - 1

    def _after_reset(self) -> None:
        if self._current_id is None or self.session is None:
            return
        if not self.session.shows(self._current_id, self.table_model.filter):
            self._show_pair(None)  # filtered out: the detail must not keep showing (and judging) it
            return
        row = self.table_model.cached_row_of(self._current_id)
        if row is None:
            for r in range(min(self.table_model.rowCount(), self.table_model.PAGE)):
                if (rr := self.table_model.row_at(r)) is not None and rr.id == self._current_id:
                    row = r
                    break
        if row is not None:
            QTimer.singleShot(0, lambda: self._select_row(row, show=False))

    def _fill_filter_choices(self) -> None:
        if self.session is not None:
            self.filter_bar.fill_choices(self.session)

    def current_filter(self) -> RowFilter:
        return self.filter_bar.current_filter()

    def _apply_filter(self) -> None:
        self.table_model.set_filter(self.current_filter())

    def set_filter(self, **values: str) -> None:
        """Set filters by name (flag, label, prediction, correct, status, verdict, search) and apply them."""
        self.filter_bar.set_values(**values)
        self._apply_filter()

    def _upgraded(self, path: str, error: str) -> None:
        self.show_session_progress()
        if error:
            QMessageBox.warning(self, "Cannot open", error)
        else:
            self._guard(lambda: self.open_session(path))

    def refresh_summary(self) -> None:
        self.summary_panel.update_from(self.session)

    # ================================================================== selection + detail: SelectionMixin
    def _guard(self, fn: Callable[[], Any]) -> None:
        try:
            fn()
        except (OSError, ValueError) as exc:
            QMessageBox.warning(self, "Cannot open", str(exc))

