"""Run by tests/gui/test_screen_fit.py in a child process whose offscreen screen has a given size:
opens the main window on the bundled model and prints, as JSON, what of it the screen shows."""

from __future__ import annotations

import json
import sys

from PySide6.QtCore import QEventLoop, QPoint, QRect, QTimer
from PySide6.QtWidgets import QApplication, QWidget


def shown_rect(widget: QWidget) -> QRect:
    """The part of `widget` not clipped by any of its parents (scroll viewports included), in window coordinates."""
    window = widget.window()
    rect = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
    parent = widget.parentWidget()
    while parent is not None:
        rect &= QRect(parent.mapTo(window, QPoint(0, 0)) if parent is not window else QPoint(0, 0), parent.size())
        parent = parent.parentWidget()
    return rect


def main() -> None:
    app = QApplication([])
    from app.gui.window import MainWindow

    window = MainWindow()
    window.show()
    page = window.predict
    if "--demo" in sys.argv:  # as a new user sees it: the first demo pair loaded and predicted
        loop = QEventLoop()
        page.resultShown.connect(lambda _p: loop.quit())
        QTimer.singleShot(120_000, loop.quit)
        page.load_first_demo()
        loop.exec()
    for _ in range(30):
        app.processEvents()

    def seen(widget: QWidget) -> float:
        r = shown_rect(widget)
        return (max(r.width(), 0) * max(r.height(), 0)) / max(widget.width() * widget.height(), 1)

    avail = window.screen().availableGeometry()
    print(json.dumps({
        "available": list(avail.getRect()),
        "frame": list(window.frameGeometry().getRect()),
        "fits": avail.contains(window.frameGeometry()),
        "status_bar": seen(window.statusBar()),
        "audio_degrade": seen(page.panels["audio"].slider),
        "image_degrade": seen(page.panels["image"].slider),
        "sweep": seen(page.sweep_box),
        "page_scrolls": page.scroll.verticalScrollBar().maximum() > 0,
        "page_scrolls_sideways": page.scroll.horizontalScrollBar().maximum() > 0,
        "inputs_scroll_sideways": page.inputs.scroll.horizontalScrollBar().maximum() > 0,
        "inputs_width": page.inputs.width(),
        "predicted": page.last_result is not None,
    }))
    page.shutdown()


if __name__ == "__main__":
    main()
