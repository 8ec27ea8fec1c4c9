"""The Review page opens a Ray results folder (`qmf batch --engine ray --out DIR`) directly.

File ▸ Open results folder… and a folder dropped on the window come here. The folder is imported
into a review session (beside it by default: ``DIR.qmfreview``) by `app.review.results_dir`'s
`import_results`, in a thread of its own with progress and Cancel, and the session then opens in
the page like any other. A session that already holds every written shard opens at once, without
reading a shard (`plan_import`); a folder that grew since (a resumed run) adds only its new shards.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QThread, Signal
from PySide6.QtWidgets import QFileDialog

from app.gui.collector import install_gui_thread_collector
from app.gui.review.session_bar import default_session_path
from app.review.sources import SESSION_SUFFIX

if TYPE_CHECKING:  # pragma: no cover
    from app.gui.review.view import ReviewView
    from app.review.results_dir import ImportReport

__all__ = ["ResultsFolderOpener", "ResultsImport"]


class ResultsImport(QThread):
    """One import, off the GUI thread: the session's SQLite connection lives in this thread only."""

    progress = Signal(int, int)  # shards done, shards
    imported = Signal(object)  # ImportReport (cancelled or complete)
    failed = Signal(str)  # one line

    def __init__(self, results_dir: Path, session_path: Path, parent=None):
        super().__init__(parent)
        install_gui_thread_collector()  # this thread runs Python code: collect cycles in the GUI thread only
        self.results_dir, self.session_path = results_dir, session_path
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def run(self) -> None:
        from app.review.results_dir import import_results

        try:
            report = import_results(self.results_dir, self.session_path,
                                    progress=lambda done, total: self.progress.emit(done, total),
                                    cancelled=self._cancel.is_set)
        except (OSError, ValueError) as exc:  # UserError, SessionError, a damaged shard: one line
            self.failed.emit(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the thread silently
            self.failed.emit(f"the import failed unexpectedly ({type(exc).__name__}: {exc})")
        else:
            self.imported.emit(report)


class ResultsFolderOpener:
    """At most one import at a time for one Review page (``view.results_folder``)."""

    def __init__(self, view: ReviewView):
        self.view = view
        self.worker: ResultsImport | None = None

    @property
    def importing(self) -> bool:
        return self.worker is not None and self.worker.isRunning()

    def dialog(self) -> None:
        """Ask for the folder, then where the session goes (beside the folder, as proposed)."""
        folder = QFileDialog.getExistingDirectory(self.view, "Open results folder (qmf batch --engine ray --out)")
        if not folder:
            return
        default = default_session_path(Path(folder))
        path, _ = QFileDialog.getSaveFileName(
            self.view, "Review session for these results", str(default), f"Review session (*{SESSION_SUFFIX})",
            options=QFileDialog.Option.DontConfirmOverwrite)
        if path:
            self.open(Path(folder), Path(path if path.endswith(SESSION_SUFFIX) else path + SESSION_SUFFIX))

    def open(self, folder: str | Path, session_path: str | Path | None = None) -> str | None:
        """Open ``folder`` in the page: at once when ``session_path`` (default: beside the folder) is up
        to date, else after an import in the background. Returns the one-line refusal shown, or None."""
        try:
            self._open(Path(folder), Path(session_path) if session_path else None)
        except (OSError, ValueError) as exc:
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.view.message_bar.show_message(f"Cannot open the results folder: {text}")
            self.view.say(text, 10_000)
            return text
        return None

    def _open(self, folder: Path, session_path: Path | None) -> None:
        from app.review.parquet import require_pyarrow
        from app.review.results_dir import plan_import

        view = self.view
        if view.running:
            raise ValueError("a review run is going on: pause or cancel it before opening a results folder")
        if self.importing:
            raise ValueError("an import is going on: wait for it or cancel it first")
        require_pyarrow("Opening a results folder")  # says what to install
        folder = folder.expanduser().absolute()
        target = (session_path or default_session_path(folder)).expanduser().absolute()
        plan = plan_import(folder, target)  # the one-line refusals: not a results folder, newer schema, ...
        if plan.up_to_date:
            view.open_session(target)
            self._say_unfinished(plan.missing_shards, f"{target.name} is up to date with {folder.name}")
            return
        view._close_session()  # the import may write into the session shown now
        view.progress_bar.setRange(0, max(1, plan.written_shards))
        view.progress_bar.setValue(0)
        what = "Adding the new shards of" if plan.exists else "Importing"
        view.progress_label.setText(f"{what} {folder.name} into {target.name}: {plan.new_pairs} pairs…")
        view.message_bar.show_message(f"{what} {folder} into {target}…", "Cancel", self.cancel)
        self.worker = ResultsImport(folder, target, view)
        self.worker.progress.connect(self._on_progress)
        self.worker.imported.connect(self._on_imported)
        self.worker.failed.connect(self._on_failed)
        self.worker.start()

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def wait(self) -> None:
        """Cancel a running import and wait for its thread (closing the page); what it would still
        report is dropped (the shards imported so far stay in the session file)."""
        if self.worker is not None:
            for signal in (self.worker.progress, self.worker.imported, self.worker.failed):
                signal.disconnect()
            self.worker.cancel()
            self.worker.wait()
            self.worker = None

    def _on_progress(self, done: int, total: int) -> None:
        self.view.session_bar.show_progress(done, total)

    def _finish(self) -> None:
        if self.worker is not None:
            self.worker.wait()
            self.worker = None

    def _on_failed(self, text: str) -> None:
        self._finish()
        self.view.show_session_progress()
        self.view.message_bar.show_message(f"Import failed: {text}")
        self.view.say(f"Import failed: {text}", 10_000)

    def _on_imported(self, report: ImportReport) -> None:
        self._finish()
        try:
            self.view.open_session(report.session)
        except (OSError, ValueError) as exc:
            self._on_failed(str(exc))
            return
        if report.cancelled:
            text = (f"Import cancelled after {report.shards} shards ({report.pairs} pairs added); open the "
                    "results folder again to import the rest")
            self.view.message_bar.show_message(text)
            self.view.say(text, 10_000)
            return
        errors = f", {report.errors} error rows" if report.errors else ""
        self._say_unfinished(report.missing_shards, f"Imported {report.pairs} pairs{errors} into {report.session.name}")

    def _say_unfinished(self, missing: int, text: str) -> None:
        if missing:
            self.view.message_bar.show_message(
                f"{text}. The run is unfinished: {missing} shards are not written yet (open the folder again "
                "after resuming the run to add them).")
        else:
            self.view.message_bar.hide_message()
        self.view.say(text, 10_000)
