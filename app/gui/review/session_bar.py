"""The Review page's top rows: open a folder, manifest or session; run controls; export; progress.

The bar asks the user for files and says what was chosen through signals; the page does the work.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.review.sources import SESSION_SUFFIX


def default_session_path(source: Path) -> Path:
    """Where a new review of ``source`` is saved unless the user says otherwise: next to it."""
    source = Path(source).absolute()
    if source.is_dir():
        return source.parent / f"{source.name}{SESSION_SUFFIX}"
    return source.with_suffix(SESSION_SUFFIX)


class SessionBar(QWidget):
    sourceChosen = Signal(object, object)  # folder or manifest, the session file to write
    sessionChosen = Signal(object)  # a session file
    exportChosen = Signal(object, str)  # path, "csv" | "json"
    resumeClicked = Signal()
    pauseClicked = Signal()
    cancelClicked = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        self.open_folder_button = QPushButton("Open folder…", clicked=self._open_folder_dialog)
        self.open_manifest_button = QPushButton("Open manifest…", clicked=self._open_manifest_dialog)
        self.open_session_button = QPushButton("Open session…", clicked=self._open_session_dialog)
        self.run_button = QPushButton("Resume", clicked=lambda: self.resumeClicked.emit())
        self.pause_button = QPushButton("Pause", clicked=lambda: self.pauseClicked.emit())
        self.cancel_button = QPushButton("Cancel", clicked=lambda: self.cancelClicked.emit())
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
        self.session_path: Path | None = None  # the open session (the export dialog starts next to it)

    def set_running(self, running: bool, can_resume: bool) -> None:
        self.pause_button.setEnabled(running)
        self.cancel_button.setEnabled(running)
        self.pause_button.setText("Pause")
        self.run_button.setEnabled(not running and can_resume)
        for b in (self.open_folder_button, self.open_manifest_button, self.open_session_button):
            b.setEnabled(not running)

    def _export_dialog(self, fmt: str) -> None:
        if self.session_path is None:
            return
        default = str(self.session_path.with_suffix(f".{fmt}"))
        path, _ = QFileDialog.getSaveFileName(self, f"Export {fmt.upper()}", default, f"{fmt.upper()} (*.{fmt})")
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
