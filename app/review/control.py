"""Steering a running batch from outside it. Light on purpose: the GUI imports it without torch."""

from __future__ import annotations

import threading
from typing import Any


class RunControl:
    """Pause, resume and cancel for a run: callable from any thread, and from another process when the
    events are multiprocessing events. Fresh threading events (running) by default."""

    def __init__(self, cancel_event: Any = None, running_event: Any = None):
        self._cancel = cancel_event if cancel_event is not None else threading.Event()
        self._running = running_event if running_event is not None else threading.Event()
        if running_event is None:
            self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def cancel(self) -> None:
        self._cancel.set()
        self._running.set()

    @property
    def cancel_event(self) -> Any:
        """The event a run checks between batches (share it with the process that runs)."""
        return self._cancel

    @property
    def running_event(self) -> Any:
        """Set while the run may go on; cleared while paused."""
        return self._running

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()
