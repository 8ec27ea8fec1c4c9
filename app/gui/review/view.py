"""The Review view: run a model over a folder or manifest of pairs, then sort, filter, judge, export.

The session file is the truth: the worker writes results to it, the table reads it through a lazy
model, verdicts and notes are written to it the moment they change. Opening the same file later (or
one made by ``qmf batch``) shows the same review and offers to resume what is missing.

Keys (when the view has focus): N / Shift+N next / previous flagged pair, A accept, R reject,
L relabel (to the label chosen next to the buttons), Ctrl+F search.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QItemSelectionModel, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.gui.collector import freeze_long_lived_objects
from app.gui.review.bars import FilterBar, MessageBar, ThresholdBar
from app.gui.review.pair_detail import PairDetail
from app.gui.review.preview_decoder import DecodedPair, PreviewDecoder
from app.gui.review.summary import SummaryPanel
from app.gui.review.table_model import ReviewTableModel, VerdictDelegate
from app.gui.review.worker import ReviewWorker
from app.qmf.bundle import BundleError, read_bundle_manifest
from app.review.flags import FlagThresholds
from app.review.messages import ErrorKind, Failed, Finished, Prepared, Progress
from app.review.models import session_model_path
from app.review.session import ReviewRow, ReviewSession, RowFilter
from app.review.sources import SESSION_SUFFIX

__all__ = ["ReviewView", "default_session_path"]

REFRESH_MS = 300


def default_session_path(source: Path) -> Path:
    """Where a new review of ``source`` is saved unless the user says otherwise: next to it."""
    source = Path(source).absolute()
    if source.is_dir():
        return source.parent / f"{source.name}{SESSION_SUFFIX}"
    return source.with_suffix(SESSION_SUFFIX)


def _format_seconds(s: float) -> str:
    if s < 0:
        return "—"
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class ReviewView(QWidget):
    """Embeddable (a tab of the main window) and usable standalone (tests construct it directly)."""

    session_opened = Signal(str)
    run_started = Signal()
    run_finished = Signal(dict)
    run_failed = Signal(str)

    def __init__(self, model_path_provider: Callable[[], Path | None] | None = None, parent: QWidget | None = None,
                 batch_size: int = 64, workers: int | None = None, in_process: bool = False):
        """``model_path_provider``: the model the user has chosen (the Predict tab's), or None."""
        super().__init__(parent)
        self.model_path_provider = model_path_provider
        self.batch_size = batch_size
        self.workers = workers
        self.in_process = in_process  # True: run in a thread of this process (see worker.py for why not)
        self.session: ReviewSession | None = None
        self.worker: ReviewWorker | None = None
        self.decoder = PreviewDecoder(self)
        self.decoder.decoded.connect(self._on_decoded)
        self._current_id: str | None = None
        self._thresholds_changed_during_run = False
        self._last_run: dict[str, Any] | None = None
        self._run_over = True
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

        bar = QHBoxLayout()
        self.open_folder_button = QPushButton("Open folder…", clicked=self._open_folder_dialog)
        self.open_manifest_button = QPushButton("Open manifest…", clicked=self._open_manifest_dialog)
        self.open_session_button = QPushButton("Open session…", clicked=self._open_session_dialog)
        self.run_button = QPushButton("Resume", clicked=lambda: self.start_run())
        self.pause_button = QPushButton("Pause", clicked=self.toggle_pause)
        self.cancel_button = QPushButton("Cancel", clicked=self.cancel_run)
        self.export_csv_button = QPushButton("Export CSV…", clicked=lambda: self._export_dialog("csv"))
        self.export_json_button = QPushButton("Export JSON…", clicked=lambda: self._export_dialog("json"))
        for w in (self.open_folder_button, self.open_manifest_button, self.open_session_button, self.run_button,
                  self.pause_button, self.cancel_button):
            bar.addWidget(w)
        bar.addStretch(1)
        bar.addWidget(self.export_csv_button)
        bar.addWidget(self.export_json_button)
        layout.addLayout(bar)

        prog = QHBoxLayout()
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_label = QLabel("Open a folder of pairs, a manifest or a review session.")
        prog.addWidget(self.progress_bar, 2)
        prog.addWidget(self.progress_label, 3)
        layout.addLayout(prog)

        self.message_bar = MessageBar()
        layout.addWidget(self.message_bar)
        self.filter_bar = FilterBar()
        self.filter_bar.changed.connect(self._apply_filter)
        layout.addWidget(self.filter_bar)
        self.threshold_bar = ThresholdBar()
        self.threshold_bar.changed.connect(self._apply_thresholds)
        layout.addWidget(self.threshold_bar)

        self.tabs = QTabWidget()
        pairs_page = QSplitter(Qt.Orientation.Horizontal)
        self.table_model = ReviewTableModel(self)
        self.table = QTableView()
        self.table.setModel(self.table_model)
        self.table.setSortingEnabled(True)
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                   | QAbstractItemView.EditTrigger.EditKeyPressed
                                   | QAbstractItemView.EditTrigger.SelectedClicked)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_changed)
        self.verdict_delegate = VerdictDelegate(lambda: self.session.labels if self.session else [], self.table)
        self.table_model.modelReset.connect(self._after_reset)
        self.table_model.verdictEdited.connect(self._verdict_edited)
        pairs_page.addWidget(self.table)

        self.detail = PairDetail()
        self.detail.verdictChosen.connect(self.set_verdict)
        self.detail.noteEdited.connect(lambda _text: self._save_note())
        pairs_page.addWidget(self.detail)
        pairs_page.setStretchFactor(0, 3)
        pairs_page.setStretchFactor(1, 2)
        self.tabs.addTab(pairs_page, "Pairs")
        self.summary_panel = SummaryPanel()
        self.tabs.addTab(self.summary_panel, "Summary")
        self.tabs.currentChanged.connect(lambda i: self.refresh_summary() if i == 1 else None)
        layout.addWidget(self.tabs, 1)

        def key(seq: str, fn: Callable[[], Any]) -> None:
            sc = QShortcut(QKeySequence(seq), self, activated=fn)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)

        key("N", lambda: self.goto_flagged(+1))
        key("Shift+N", lambda: self.goto_flagged(-1))
        key("A", lambda: self.set_verdict("accept"))
        key("R", lambda: self.set_verdict("reject"))
        key("L", lambda: self.set_verdict("relabel"))
        key("Ctrl+F", lambda: self.filter_bar.search.setFocus())

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
        """Show an existing session; offer to resume when pairs are missing."""
        self._close_session()
        session = ReviewSession.open(path)
        self._attach(session)
        pending = session.pending_count()
        if pending:
            self.message_bar.show_message(f"{pending} of {session.pair_count()} pairs have no result yet.", "Resume",
                              lambda: self.start_run())
        else:
            self.message_bar.hide_message()
        self.progress_bar.setRange(0, max(1, session.pair_count()))
        self.progress_bar.setValue(session.result_count())
        self.progress_label.setText(f"{session.result_count()} / {session.pair_count()} pairs · "
                                    f"model {session.model_name}")

    def _attach(self, session: ReviewSession) -> None:
        self.session = session
        self.threshold_bar.show_thresholds(session.thresholds)
        self.table_model.set_session(session)
        verdict_col = [k for k, _ in self.table_model.columns].index("verdict")
        self.table.setItemDelegateForColumn(verdict_col, self.verdict_delegate)
        self.detail.set_labels(session.labels)
        self._prepare_result_view(session.manifest_modalities, session.labels)
        self._fill_filter_choices()
        if self.tabs.currentIndex() == 1:
            self.refresh_summary()
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

    # ================================================================== running
    def start_run(self, source: Path | None = None, session_path: Path | None = None, rerun: bool = False) -> None:
        if self.worker is not None and self.worker.isRunning():
            if not self._run_over:
                return
            self.worker.wait()  # the last run has reported; its thread is only tidying up
        self._run_over = False
        if session_path is None:
            if self.session is None:
                return
            session_path = self.session.path
        model = self.current_model_path()
        self.message_bar.hide_message()
        try:  # build the detail charts for the model's inputs now, on the click, not mid-run
            manifest = read_bundle_manifest(model)
            self._prepare_result_view(manifest["model"]["modalities"], manifest["model"]["labels"])
        except (BundleError, KeyError, TypeError):
            pass  # the worker reports a bad model
        freeze_long_lived_objects()  # one collection now, on the click, instead of long ones mid-run
        self.worker = ReviewWorker(model, Path(session_path), source, rerun=rerun, batch_size=self.batch_size,
                                   workers=self.workers, in_process=self.in_process, parent=self)
        self.worker.prepared.connect(self._on_prepared)
        self.worker.progress.connect(self._on_progress)
        self.worker.run_finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.worker.finished.connect(lambda: self._set_running(False))
        self._set_running(True)
        self.progress_label.setText(f"loading {model.name}…")
        self.worker.start()
        self.run_started.emit()

    def _prepare_result_view(self, modalities: list[dict[str, Any]], labels: list[str]) -> None:
        """(Re)build the detail view's previews and charts only when the inputs or labels changed."""
        key = json.dumps([modalities, list(labels)], sort_keys=True, default=str)
        if key != getattr(self, "_result_view_key", None):
            self.detail.result_view.set_modalities(modalities, labels)
            self._result_view_key = key

    def toggle_pause(self) -> None:
        if self.worker is None or not self.worker.isRunning():
            return
        if self.worker.control.paused:
            self.worker.control.resume()
            self.pause_button.setText("Pause")
        else:
            self.worker.control.pause()
            self.pause_button.setText("Continue")
            self.progress_label.setText(self.progress_label.text() + " · paused")

    def cancel_run(self, wait: bool = False) -> None:
        if self.worker is not None and self.worker.isRunning():
            self.worker.control.cancel()
            if wait:
                self.worker.wait()

    def shutdown(self) -> None:
        """Stop a run cleanly (the results so far are in the file) and close the session."""
        try:
            self.cancel_run(wait=True)
            self.decoder.stop()
            self._close_session_only()
        except RuntimeError:  # the C++ side is already gone at interpreter exit
            pass

    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.isRunning() and not self._run_over

    def _set_running(self, running: bool) -> None:
        self.pause_button.setEnabled(running)
        self.cancel_button.setEnabled(running)
        self.pause_button.setText("Pause")
        self.run_button.setEnabled(not running and self.session is not None and self.session.pending_count() > 0)
        for b in (self.open_folder_button, self.open_manifest_button, self.open_session_button):
            b.setEnabled(not running)

    def _on_prepared(self, info: Prepared) -> None:
        path = Path(info.session)
        if self.session is None or self.session.path != path:
            self._close_session_only()
            self._attach(ReviewSession.open(path))
        else:
            self.session.reload()
            self._attach(self.session)
        for w in info.warnings:
            self.message_bar.show_message(w, "", None)
        unmatched = info.unmatched
        if unmatched:
            shown = "\n".join(f"{p}: {r}" for p, r in unmatched[:50])
            self.message_bar.label.setToolTip(shown)
            self.message_bar.show_message(f"{len(unmatched)} file(s) could not be paired and are not reviewed "
                              "(hover to see which and why).", "", None)

    def _close_session_only(self) -> None:
        if self.session is not None:
            self.table_model.set_session(None)
            self.session.close()
            self.session = None

    def _on_progress(self, p: Progress) -> None:
        self.progress_bar.setRange(0, max(1, p.total))
        self.progress_bar.setValue(p.done)
        paused = " · paused" if self.worker is not None and self.worker.control.paused else ""
        left = _format_seconds(p.seconds_left) if p.seconds_left is not None else "—"
        self.progress_label.setText(f"{p.done} / {p.total} pairs · {p.rate:.0f} pairs/s · {left} left{paused}")
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def _on_finished(self, finished: Finished) -> None:
        stats = finished.as_dict()
        self._run_over = True
        self._last_run = stats
        if self._thresholds_changed_during_run:
            self._thresholds_changed_during_run = False
            self._apply_thresholds()
        self._refresh_now()
        self._fill_filter_choices()
        if self.tabs.currentIndex() == 1:
            self.refresh_summary()
        word = "cancelled" if stats["cancelled"] else "finished"
        self.progress_label.setText(
            f"{word}: {stats['done']} / {stats['total']} pairs · {stats['processed']} this run in "
            f"{stats['seconds']:.1f} s ({stats['rate']:.0f} pairs/s) · {stats['errors']} errors")
        if stats["cancelled"] and self.session is not None and self.session.pending_count():
            self.message_bar.show_message(f"{self.session.pending_count()} pairs have no result yet.", "Resume",
                              lambda: self.start_run())
        self._set_running(False)
        self.run_finished.emit(stats)

    def _on_failed(self, failed: Failed) -> None:
        message = failed.message
        self._run_over = True
        self._set_running(False)
        if failed.kind is ErrorKind.MODEL_MISMATCH:
            path = self.worker.session_path if self.worker else None
            self.message_bar.show_message(message + ".", "Re-run with this model",
                              lambda: self.start_run(session_path=path, rerun=True))
            if path is not None and (self.session is None or self.session.path != path.absolute()):
                self._close_session_only()
                self._attach(ReviewSession.open(path))
        else:
            self.message_bar.show_message(message, "", None)
        self.progress_label.setText("stopped")
        self.run_failed.emit(message)

    # ================================================================== table
    def _refresh_now(self) -> None:
        if self.session is None:
            return
        self.table_model.refresh()
        if self.tabs.currentIndex() == 1 and not self.running:
            self.refresh_summary()

    def _after_reset(self) -> None:
        if self._current_id is None:
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

    def _apply_thresholds(self) -> None:
        if self.session is None:
            return
        th = self.threshold_bar.thresholds()
        if th == self.session.thresholds:
            return
        self.session.set_thresholds(th)
        if self.running:
            self._thresholds_changed_during_run = True
        self._fill_filter_choices()
        self.table_model.refresh()
        if self.tabs.currentIndex() == 1:
            self.refresh_summary()
        if self._current_id:
            self._show_pair(self.session.row(self._current_id))

    def set_thresholds(self, thresholds: FlagThresholds) -> None:
        self.threshold_bar.show_thresholds(thresholds)
        self._apply_thresholds()

    def refresh_summary(self) -> None:
        self.summary_panel.update_from(self.session)

    # ================================================================== selection + detail
    def select_row(self, row: int) -> None:
        self._select_row(row, show=True)

    def _select_row(self, row: int, show: bool) -> None:
        if not 0 <= row < self.table_model.rowCount():
            return
        index = self.table_model.index(row, 0)
        sel = self.table.selectionModel()
        sel.setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect
                            | QItemSelectionModel.SelectionFlag.Rows)
        self.table.scrollTo(index)
        row_data = self.table_model.row_at(row)
        if show and row_data is not None and row_data.id != self._current_id:
            self._show_pair(row_data)

    def _on_current_changed(self, current: Any, _previous: Any) -> None:
        if current.isValid():
            row = self.table_model.row_at(current.row())
            if row is not None and row.id != self._current_id:
                self._show_pair(row)

    def current_pair(self) -> ReviewRow | None:
        if self.session is None or self._current_id is None:
            return None
        return self.session.row(self._current_id)

    def _show_pair(self, row: ReviewRow | None) -> None:
        """The pair's numbers at once (one SQLite read); its previews when the decoder has read its files."""
        if row is None or self.session is None:
            self._current_id = None
            self.decoder.cancel()
            self.detail.clear()
            return
        self._current_id = row.id
        prediction = self.session.prediction_json(row.id) if row.status == "ok" else None
        self.detail.show_row(row, self.session.labels, prediction)
        if prediction is None:
            self.decoder.cancel()
        else:
            self.decoder.decode(row.id, self.session.manifest_modalities, row.files)

    def _on_decoded(self, decoded: DecodedPair) -> None:
        if decoded.pair_id == self._current_id:
            self.detail.show_inputs(decoded.raw)

    def goto_flagged(self, step: int = 1) -> int | None:
        """Select the next (step=+1) or previous (-1) flagged row in the table's order; returns its row."""
        n = self.table_model.rowCount()
        if n == 0:
            return None
        current = self.table.currentIndex().row() if self.table.currentIndex().isValid() else (-1 if step > 0 else n)
        r = current + step
        while 0 <= r < n:
            row = self.table_model.row_at(r)
            if row is not None and row.flags:
                self.select_row(r)
                return r
            r += step
        return None

    def set_verdict(self, verdict: str | None) -> None:
        """Record a verdict for the selected pair now (relabel uses the label chosen next to the buttons)."""
        if self.session is None or self._current_id is None:
            return
        if verdict is None:
            self.session.clear_verdict(self._current_id)
        else:
            relabel = self.detail.relabel_combo.currentText() if verdict == "relabel" else None
            self.session.set_verdict(self._current_id, verdict, relabel=relabel)
        self._verdict_edited(self._current_id)

    def set_note(self, note: str) -> None:
        self.detail.note_edit.setText(note)
        self._save_note()

    def _save_note(self) -> None:
        if self.session is None or self._current_id is None:
            return
        note = self.detail.note_edit.text()
        if note != self.session.verdict(self._current_id)["note"]:
            self.session.set_verdict(self._current_id, note=note)
            self._verdict_edited(self._current_id)

    def _verdict_edited(self, pair_id: str) -> None:
        self.table_model.update_row(pair_id)
        if pair_id == self._current_id and self.session is not None:
            row = self.session.row(pair_id)
            if row is not None:
                self.detail.show_title(row)

    # ================================================================== export + dialogs
    def export(self, path: str | Path, fmt: str | None = None) -> Path:
        """Export the table as shown (filter and sort) to CSV or JSON, with verdicts and notes."""
        from app.review.export import export_csv, export_json

        if self.session is None:
            raise ValueError("no session open")
        fmt = fmt or Path(path).suffix.lower().lstrip(".")
        fn = export_json if fmt == "json" else export_csv
        return fn(self.session, path, self.current_filter(), self.table_model.order_by, self.table_model.descending)

    def _export_dialog(self, fmt: str) -> None:
        if self.session is None:
            return
        default = str(self.session.path.with_suffix(f".{fmt}"))
        path, _ = QFileDialog.getSaveFileName(self, f"Export {fmt.upper()}", default, f"{fmt.upper()} (*.{fmt})")
        if path:
            try:
                self.export(path, fmt)
            except (OSError, ValueError) as exc:
                QMessageBox.warning(self, "Export failed", str(exc))

    def _open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of pairs")
        if folder:
            self._ask_session_and_open(Path(folder))

    def _open_manifest_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Manifest of pairs", "", "Manifest (*.csv)")
        if path:
            self._ask_session_and_open(Path(path))

    def _ask_session_and_open(self, source: Path) -> None:
        default = default_session_path(source)
        path, _ = QFileDialog.getSaveFileName(
            self, "Save the review session as", str(default), f"Review session (*{SESSION_SUFFIX})",
            options=QFileDialog.Option.DontConfirmOverwrite)
        if path:
            if not path.endswith(SESSION_SUFFIX):
                path += SESSION_SUFFIX
            self._guard(lambda: self.open_source(source, Path(path)))

    def _open_session_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open review session", "", f"Review session (*{SESSION_SUFFIX})")
        if path:
            self._guard(lambda: self.open_session(path))

    def _guard(self, fn: Callable[[], Any]) -> None:
        try:
            fn()
        except (OSError, ValueError) as exc:
            QMessageBox.warning(self, "Cannot open", str(exc))
