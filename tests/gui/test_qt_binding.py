"""The installed Qt binding keeps Python's reference counts straight.

PySide6 6.12.0 returns True from every ``Signal.emit()`` without taking a reference. On Python 3.12+
True is immortal and nothing happens; on 3.11 each emit takes one reference away, and after a few
thousand (a slider drag, a review run) Python frees True and the app dies in a later garbage
collection. pyproject.toml keeps that release away from 3.11; this test catches any release that
brings the fault back.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    value = Signal(int)
    payload = Signal(object)


def test_emitting_signals_leaves_true_false_and_none_alone(qapp):
    emitter = _Emitter()
    received: list = []
    emitter.value.connect(received.append)
    emitter.payload.connect(received.append)
    before = [sys.getrefcount(v) for v in (True, False, None)]
    for i in range(500):
        emitter.value.emit(i)
        emitter.payload.emit({"i": i})
    after = [sys.getrefcount(v) for v in (True, False, None)]
    assert len(received) == 1000
    lost = [b - a for b, a in zip(before, after, strict=True)]
    # A few references may come and go with the interpreter's own bookkeeping; 1000 emits that each
    # drop one would show up as hundreds.
    assert max(lost) < 50, f"references to True/False/None lost over 1000 emits: {lost}"
