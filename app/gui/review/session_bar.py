"""The Review page's top rows: open a folder, manifest or session; run controls; export; progress.

The bar asks the user for files and says what was chosen through signals; the page does the work.
Where the window is wide enough it is one row; below that (a 1366-pixel screen at 125 % scaling, 1920 at
150 %) it becomes two: the open and export buttons above, the run controls and the progress below, so the
page never scrolls sideways to reach a button.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLayout,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.gui.labels import ElidedLabel
from app.review.sources import SESSION_SUFFIX


def default_session_path(source: Path) -> Path:
    """Where a new review of ``source`` is saved unless the user says otherwise: next to it."""
    source = Path(source).absolute()
    if source.is_dir():
        return source.parent / f"{source.name}{SESSION_SUFFIX}"
    return source.with_suffix(SESSION_SUFFIX)


_FORMAT_NAMES = {"csv": "CSV", "json": "JSON", "parquet": "Parquet"}


class _CutLabel(ElidedLabel):
    """A one-line label cut with an ellipsis at the row's end; its tooltip always holds the whole line."""

    def __init__(self, text: str = "", parent: QWidget | None = None):
        super().__init__(text, parent, Qt.TextElideMode.ElideRight)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        super().setText(text)
        self.setToolTip(text)


class SessionBar(QWidget):
    sourceChosen = Signal(object, object)  # folder or manifest, the session file to write
    sessionChosen = Signal(object)  # a session file
    exportChosen = Signal(object, str)  # path (None: no session is open), "csv" | "json" | "parquet"
    exportRefused = Signal(str)  # the format cannot be written here (pyarrow missing): what to install
    resumeClicked = Signal()
    retryClicked = Signal()
    pauseClicked = Signal()
    cancelClicked = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        # the bar's minimum width is its two-row arrangement's (minimumSizeHint), not the row it shows now
        layout.setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)
        self._rows = (QHBoxLayout(), QHBoxLayout())
        self.open_folder_button = QPushButton("Open folder…", clicked=self._open_folder_dialog)
        self.open_manifest_button = QPushButton("Open manifest…", clicked=self._open_manifest_dialog)
        self.open_session_button = QPushButton("Open session…", clicked=self._open_session_dialog)
        self.run_button = QPushButton("Resume", clicked=lambda: self.resumeClicked.emit())
        self.pause_button = QPushButton("Pause", clicked=lambda: self.pauseClicked.emit())
        self.cancel_button = QPushButton("Cancel", clicked=lambda: self.cancelClicked.emit())
        self.retry_button = QPushButton("Retry errors", clicked=lambda: self.retryClicked.emit(),
                                        toolTip="Run again the pairs that ended in an error (after fixing their files)")
        self.export_csv_button = QPushButton("Export CSV…", clicked=lambda: self.export_dialog("csv"))
        self.export_json_button = QPushButton("Export JSON…", clicked=lambda: self.export_dialog("json"))
        self.export_parquet_button = QPushButton(
            "Export Parquet…", clicked=lambda: self.export_dialog("parquet"),
            toolTip="The results schema of qmf batch --parquet, for pandas, polars or DuckDB (needs pyarrow)")
        # progress on the buttons' row where it fits: one row less above the table and the pair's charts
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setFixedWidth(130)
        self.progress_label = _CutLabel("Open a folder of pairs, a manifest or a review session.")
        # a long line must not widen the window (ElidedLabel): it is cut at the row's end (in full as its tooltip)
        self.progress_label.setMinimumWidth(160)
        for row in self._rows:
            layout.addLayout(row)
        self.two_rows: bool | None = None
        self._arrange(False)
        self.session_path: Path | None = None  # the open session (the export dialog starts next to it)
        # set by the page: why a format cannot be exported here (None: it can), asked before the dialog
        self.export_problem: Callable[[str], str | None] = lambda fmt: None

    # --- one row or two ----------------------------------------------------------------------------
    def _groups(self) -> tuple[list[QWidget], list[QWidget], list[QWidget]]:
        """The open buttons, the run controls, the export buttons (the progress bar and line go with the run controls)."""
        return ([self.open_folder_button, self.open_manifest_button, self.open_session_button],
                [self.run_button, self.pause_button, self.cancel_button, self.retry_button],
                [self.export_csv_button, self.export_json_button, self.export_parquet_button])

    def _width(self, widgets: list[QWidget], progress: bool) -> int:
        """The least width of a row of `widgets` (and the progress bar and line, if `progress`)."""
        spacing = max(0, self._rows[0].spacing())
        widths = [w.sizeHint().width() for w in widgets]
        if progress:
            widths += [self.progress_bar.minimumWidth(), self.progress_label.minimumWidth()]
        return sum(widths) + spacing * (len(widths) - 1)

    def one_row_width(self) -> int:
        opens, runs, exports = self._groups()
        return self._width(opens + runs + exports, progress=True)

    def _two_row_width(self) -> int:
        opens, runs, exports = self._groups()
        return max(self._width(opens + exports, progress=False), self._width(runs, progress=True))

    def _arrange(self, two_rows: bool) -> None:
        if two_rows == self.two_rows:
            return
        for row in self._rows:
            while row.count():
                row.takeAt(0)
        opens, runs, exports = self._groups()
        first, second = self._rows
        for w in opens + ([] if two_rows else runs):
            first.addWidget(w)
        progress_row = second if two_rows else first
        if two_rows:
            first.addStretch(1)
            for w in runs:
                second.addWidget(w)
        progress_row.addWidget(self.progress_bar)
        progress_row.addWidget(self.progress_label, 1)
        for w in exports:
            first.addWidget(w)
        self.two_rows = two_rows
        self.updateGeometry()

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(self._two_row_width(), self.layout().minimumSize().height())

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self._arrange(event.size().width() < self.one_row_width())
        super().resizeEvent(event)

    def show_progress(self, done: int, total: int) -> None:
        """Move the bar without painting now: `QProgressBar.setValue` repaints at once whenever the
        bar's text or length changes, and a repaint paints every widget of the window waiting to be
        painted with it (a run's changed table rows, a click's detail) inside that one call; here the
        bar is painted in the next paint, with the rest."""
        bar = self.progress_bar
        bar.setUpdatesEnabled(False)
        try:
            bar.setRange(0, max(1, total))
            bar.setValue(done)
        finally:
            bar.setUpdatesEnabled(True)  # schedules the bar's paint

    def set_running(self, running: bool, can_resume: bool, can_retry: bool = False) -> None:
        self.pause_button.setEnabled(running)
        self.cancel_button.setEnabled(running)
        self.pause_button.setText("Pause")
        self.run_button.setEnabled(not running and can_resume)
        self.retry_button.setEnabled(not running and can_retry)
        for b in (self.open_folder_button, self.open_manifest_button, self.open_session_button):
            b.setEnabled(not running)

    def export_dialog(self, fmt: str) -> None:
        if self.session_path is None:
            self.exportChosen.emit(None, fmt)  # the page says that there is nothing to export
            return
        if problem := self.export_problem(fmt):
            self.exportRefused.emit(problem)
            return
        default = str(self.session_path.with_suffix(f".{fmt}"))
        name = _FORMAT_NAMES.get(fmt, fmt.upper())
        path, _ = QFileDialog.getSaveFileName(self, f"Export {name}", default, f"{name} (*.{fmt})")
        if path:
            self.exportChosen.emit(Path(path), fmt)

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
            self.sourceChosen.emit(source, Path(path))

    def _open_session_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open review session", "", f"Review session (*{SESSION_SUFFIX})")
        if path:
            self.sessionChosen.emit(Path(path))
