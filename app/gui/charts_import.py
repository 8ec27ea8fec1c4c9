"""pyqtgraph imported in a thread of its own (`charts_importer()`), for the sweep's plot: the one
part of the window that still needs it (app/gui/window.py starts it after the first result)."""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, QTimer, Signal

__all__ = ["CHARTS_IMPORT_POLL_MS", "charts_importer"]

CHARTS_IMPORT_POLL_MS = 15  # how often the GUI thread looks whether that import is done


class _ChartsImport(QObject):
    """Imports pyqtgraph in a thread of its own and says so: `done`, emitted in the GUI thread.

    The thread makes no Qt call at all: it sets an event, which a timer of the GUI thread looks at every
    CHARTS_IMPORT_POLL_MS. A signal emitted from the thread could deadlock: its emission takes Qt's
    connection locks and then needs Python's lock, while the GUI thread, holding Python's lock, waits
    for the same Qt locks to connect or disconnect any signal of the objects involved (seen in the test
    suite when the emission met a disconnect). One per process, never deleted. A failed import fails
    again, with its message, when `build_views` imports it.
    """

    done = Signal()

    def __init__(self) -> None:
        super().__init__()
        self._finished = threading.Event()
        self._poll = QTimer(self)
        self._poll.setInterval(CHARTS_IMPORT_POLL_MS)
        self._poll.timeout.connect(self._check)

    def start(self) -> None:
        threading.Thread(target=self._run, name="qmf-import-charts", daemon=True).start()
        self._poll.start()

    def _run(self) -> None:
        try:
            import pyqtgraph  # noqa: F401
        except Exception:  # noqa: BLE001 - said by build_views
            pass
        self._finished.set()

    def _check(self) -> None:
        if self._finished.is_set():
            self._poll.stop()
            self.done.emit()


_CHARTS_IMPORT: list[_ChartsImport] = []


def charts_importer() -> _ChartsImport:
    if not _CHARTS_IMPORT:
        _CHARTS_IMPORT.append(_ChartsImport())
    return _CHARTS_IMPORT[0]
