"""Python's cyclic garbage collector, run only in the GUI thread.

Why: the collector runs in whichever thread happens to allocate when a generation's threshold is
crossed. In this app that is often the prediction worker (building a model allocates thousands of
objects). If the collection then finds a reference cycle that holds a Qt object created in the GUI
thread (a closed window, a pyqtgraph item, a lambda connected to a widget), Qt destroys that object
from the worker thread, which crashes the process ("Fatal Python error: Segmentation fault ...
Garbage-collecting" with the worker's stack). Reference counting still frees everything that is not
in a cycle at once; only the cycle collector is moved.

The cure is pyqtgraph's (``pyqtgraph.util.garbage_collector``): switch automatic collection off and
let a timer in the GUI thread collect each generation when its count is over the threshold Python
itself would have used. Installed once per process, by the first window; it lives as long as the
QApplication.

A full collection walks every tracked object; with torch, numpy, Qt and pyqtgraph loaded that is
several hundred thousand objects and 40-100 ms of frozen window. `freeze_long_lived()` (called once
the model is loaded and when a review run starts) collects once and then moves the survivors, which
live as long as the app, into the permanent generation (`gc.freeze`), so later full collections walk
only what was made since. The price: a cycle among those frozen objects that becomes garbage later
is not freed; they are imported modules, the model and the window, which stay anyway.

During start-up (`hold`, called by `qmf-studio`'s main) the timer does not collect: the window, the
charts and the model are being built, nearly everything allocated stays, and each check would walk
the hundred thousand objects made since the last freeze (~40 ms, twice before the first result).
The collection and freeze after the first result (`freeze_long_lived`) ends the hold.
"""

from __future__ import annotations

import gc
import time

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer

__all__ = ["GuiThreadCollector", "freeze_long_lived_objects", "install_gui_thread_collector", "installed_collector"]

CHECK_INTERVAL_MS = 500


class GuiThreadCollector(QObject):
    """Owns the timer that collects in the GUI thread; lives as long as its parent, the application."""

    def __init__(self, parent: QObject, interval_ms: int = CHECK_INTERVAL_MS) -> None:
        super().__init__(parent)
        self.threshold = gc.get_threshold()
        self._held_until = 0.0  # time.monotonic(): no collections before then (start-up)
        gc.disable()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)
        self._timer.start()

    def hold(self, seconds: float) -> None:
        """No collections for `seconds` (0: collect again from the next check), or until `freeze_long_lived`."""
        self._held_until = time.monotonic() + seconds

    def check(self) -> None:
        """Collect the generations whose counts passed Python's thresholds (GUI thread only)."""
        if time.monotonic() < self._held_until:
            return
        count0, count1, count2 = gc.get_count()
        t0, t1, t2 = self.threshold
        if count0 <= t0:
            return
        generation = 0
        if count1 > t1:
            generation = 2 if count2 > t2 else 1
        gc.collect(generation)

    def freeze_long_lived(self) -> None:
        """Collect now, then keep the survivors out of later collections (see the module's text)."""
        self._held_until = 0.0
        gc.collect()
        gc.freeze()


def installed_collector() -> GuiThreadCollector | None:
    """The application's collector if one was installed, else None (installs nothing)."""
    app = QCoreApplication.instance()
    return app.findChild(GuiThreadCollector) if app is not None else None


def install_gui_thread_collector() -> GuiThreadCollector | None:
    """Install the collector on the running QApplication (once); call from the GUI thread.

    Returns None when there is no application yet or when called from another thread.
    """
    app = QCoreApplication.instance()
    if app is None or QThread.currentThread() is not app.thread():
        return None
    return installed_collector() or GuiThreadCollector(app)


def freeze_long_lived_objects() -> None:
    """`GuiThreadCollector.freeze_long_lived()` on this application's collector; GUI thread only."""
    collector = install_gui_thread_collector()
    if collector is not None:
        collector.freeze_long_lived()
