"""`SteadyLabel` as a person sees it: a new text that fits moves nothing below it; a long one is shown
whole, and the room goes back when it is gone. `ElidedLabel`: a long name cut where it does not fit."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication, QVBoxLayout, QWidget

from app.gui.labels import ElidedLabel, SteadyLabel

LONG = ("photos/2024/unreadable_scan_0042.png: not an image this program can read (the file ends after "
        "1,024 of 88,000 bytes); re-export it as PNG or JPEG and run the pair again ") * 3


def _pane(qtbot, lines: int):
    pane = QWidget()
    qtbot.addWidget(pane)
    layout = QVBoxLayout(pane)
    label = SteadyLabel("", lines=lines)
    below = QWidget()
    below.setMinimumHeight(100)
    layout.addWidget(label)
    layout.addWidget(below, 1)
    pane.resize(320, 400)
    pane.show()
    qtbot.waitExposed(pane)
    return pane, label, below


def _settle() -> None:
    for _ in range(5):
        QApplication.processEvents()


def test_a_text_that_fits_moves_nothing_and_a_long_one_is_shown_whole(qtbot) -> None:
    _pane_widget, label, below = _pane(qtbot, lines=2)
    line = label.fontMetrics().lineSpacing()
    label.setText("<b>pair 1</b> · given label 3 · no flags")
    _settle()
    top = below.geometry().top()
    assert 2 * line <= label.height() < 3 * line + 4  # room for its two lines, not more
    label.setText("<b>pair 2</b> · given label 7 · low confidence, label mismatch · accept")  # two lines
    _settle()
    assert below.geometry().top() == top  # the widget below stays where it was
    label.setText(LONG)
    _settle()
    needed = label.fontMetrics().boundingRect(0, 0, label.width(), 10_000, int(label.alignment()) | 0x1000,
                                              LONG).height()  # 0x1000: Qt.TextWordWrap
    assert label.height() >= needed  # every line of the message is on screen
    assert below.geometry().top() > top
    label.setText("short again")
    _settle()
    assert below.geometry().top() == top and label.lines() == 2


def test_the_label_never_asks_for_the_width_of_its_text(qtbot) -> None:
    """A long line wraps in the room it is given: it does not widen the pane (or the window)."""
    pane, label, _below = _pane(qtbot, lines=1)
    before = pane.minimumSizeHint().width()
    label.setText(LONG)
    _settle()
    assert pane.minimumSizeHint().width() == before
    assert label.width() <= pane.width()


def test_an_elided_label_keeps_the_start_and_the_extension_of_a_long_name_and_its_whole_text(qtbot):
    name = "recording_2026-12-04_speaker-three_take-2.wav"
    label = ElidedLabel(name)
    qtbot.addWidget(label)
    label.resize(120, 24)
    label.show()
    qtbot.waitUntil(lambda: label.shown_text() != name)
    shown = label.shown_text()
    assert "…" in shown and shown.startswith("rec") and shown.endswith(".wav")
    assert label.fontMetrics().horizontalAdvance(shown) <= label.contentsRect().width()
    assert label.text() == name  # what the code reads (and tests) is the whole name
    label.resize(2000, 24)
    qtbot.waitUntil(lambda: label.shown_text() == name)
    label.setText("short.png")
    assert label.shown_text() == "short.png" and label.text() == "short.png"
