"""Unexpected exceptions: show a dialog with the details, keep the app running.

PySide6 hands an exception raised in a slot or event handler to `sys.excepthook` and carries on;
by default that prints a traceback nobody sees. `install_excepthook` replaces the hook with one that
prints the traceback to stderr and shows it in a dialog. An exception raised in another thread is
marshalled to the GUI thread through a queued signal, since widgets may only be touched there.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from types import TracebackType

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget


class ErrorReporter(QObject):
    report = Signal(str, str)  # summary, details

    def __init__(self, parent_widget: Callable[[], QWidget | None] = lambda: None, show_dialogs: bool = True):
        super().__init__()
        app = QApplication.instance()
        if app is not None:
            self.moveToThread(app.thread())
        self.parent_widget = parent_widget
        self.show_dialogs = show_dialogs
        self.reports: list[tuple[str, str]] = []
        self.report.connect(self._show, Qt.ConnectionType.QueuedConnection)
        self._previous: Callable | None = None

    def excepthook(self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            QApplication.quit()
            return
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        print(details, file=sys.stderr, flush=True)
        self.report.emit(f"{exc_type.__name__}: {exc}", details)

    def install(self) -> None:
        self._previous = sys.excepthook
        sys.excepthook = self.excepthook

    def uninstall(self) -> None:
        if self._previous is not None and sys.excepthook == self.excepthook:
            sys.excepthook = self._previous
            self._previous = None

    @Slot(str, str)
    def _show(self, summary: str, details: str) -> None:
        self.reports.append((summary, details))
        if not self.show_dialogs:
            return
        box = QMessageBox(self.parent_widget())
        box.setIcon(QMessageBox.Icon.Critical)
        box.setWindowTitle("QMF Studio: unexpected error")
        box.setText("Something went wrong. QMF Studio keeps running; the last action may not have finished.")
        box.setInformativeText(summary)
        box.setDetailedText(details)
        box.setStandardButtons(QMessageBox.StandardButton.Ok)
        box.setModal(False)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.show()


def install_excepthook(parent_widget: Callable[[], QWidget | None] = lambda: None,
                       show_dialogs: bool = True) -> ErrorReporter:
    reporter = ErrorReporter(parent_widget, show_dialogs)
    reporter.install()
    return reporter
