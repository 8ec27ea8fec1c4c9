"""The cycle collector runs in the GUI thread only: a collection started by a worker thread's
allocations would destroy Qt objects from that thread and crash the app."""

from __future__ import annotations

import gc
import threading

from app.gui.collector import install_gui_thread_collector


class _Node:
    """A reference cycle that records which thread finally freed it."""

    def __init__(self, freed_in: list[threading.Thread]) -> None:
        self.freed_in = freed_in
        self.me = self

    def __del__(self) -> None:
        self.freed_in.append(threading.current_thread())


def test_cycles_are_freed_in_the_gui_thread_not_in_a_worker(qtbot, qapp):
    collector = install_gui_thread_collector()
    assert collector is not None
    assert install_gui_thread_collector() is collector  # once per application
    assert not gc.isenabled()

    freed_in: list[threading.Thread] = []
    _Node(freed_in)  # unreachable at once, but only the cycle collector can free it
    kept: list = []

    def allocate_like_a_model_load() -> None:
        # Far past Python's generation-0 threshold: with automatic collection on, this thread
        # would run a collection and free the cycle here.
        kept.append([[] for _ in range(50 * gc.get_threshold()[0])])

    worker = threading.Thread(target=allocate_like_a_model_load)
    worker.start()
    worker.join()
    assert freed_in == []

    qtbot.waitUntil(lambda: bool(freed_in), timeout=10000)  # the GUI thread's timer collects it
    assert freed_in == [threading.main_thread()]
    kept.clear()


def test_not_installed_outside_the_gui_thread(qapp):
    result: list = []
    worker = threading.Thread(target=lambda: result.append(install_gui_thread_collector()))
    worker.start()
    worker.join()
    assert result == [None]


def test_a_start_up_hold_keeps_collections_back_until_the_freeze(qapp):
    """`qmf-studio` holds the collector while the window and the model are built; the collection and
    freeze after the first result end the hold, and the timer collects again after it."""
    collector = install_gui_thread_collector()
    freed_in: list[threading.Thread] = []
    collector.hold(60)
    try:
        _Node(freed_in)
        kept = [[] for _ in range(50 * gc.get_threshold()[0])]  # past every generation's threshold
        collector.check()
        assert freed_in == []
        collector.freeze_long_lived()
        assert freed_in == [threading.main_thread()]
        _Node(freed_in)
        kept.append([[] for _ in range(50 * gc.get_threshold()[0])])
        collector.check()  # no hold any more: the timer's check collects
        assert len(freed_in) == 2
        kept.clear()
    finally:
        collector.hold(0)
