"""`SteadyLabel`: a word-wrapped label whose new text moves nothing unless it needs another height; and
`ElidedLabel`: a one-line label that shows what fits with an ellipsis where it is cut.

A word-wrapped `QLabel` answers the layout with height-for-width, so every `setText` (a Review
click sets three: the pair's title, the headline and the per-input line) made the layouts of the
whole detail pane ask each label to lay its text out again at several widths: ~4 ms of GUI-thread
time per click, in the same event-loop turn as the repaint. This label keeps room for a number of
lines and shows the layout a fixed height and no height-for-width: the layout still hears of each
new text (`QLabel.setText` tells it), but its pass lays no text out and moves nothing. The label
works out the height its text needs at its width once per text (and per resize), from its plain
words in the bold face, and only when that differs from the room it has does its height change
(more for a long error message, which still shows in full; back down to its lines after).
"""

from __future__ import annotations

import html
import re
from typing import Any

from PySide6.QtCore import QEvent, QRect, QSize, Qt
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtGui import Qt as GuiQt  # Qt.mightBeRichText lives in QtGui's Qt namespace
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_WRAP = int(Qt.TextFlag.TextWordWrap)


class SteadyLabel(QLabel):
    def __init__(self, text: str = "", parent: QWidget | None = None, lines: int = 1):
        super().__init__(text, parent)
        self.setWordWrap(True)
        self._lines = max(1, lines)
        self._measure: tuple[int, QFontMetrics] | None = None  # (room for the lines, bold metrics) per font
        self._height = self._room()
        self._fit(update=False)

    def set_lines(self, lines: int) -> None:
        """Keep room for at least this many lines whatever the text."""
        self._lines = max(1, lines)
        self._measure = None
        self._fit()

    def lines(self) -> int:
        return self._lines

    def _measures(self) -> tuple[int, QFontMetrics]:
        if self._measure is None:
            margins = self.contentsMargins()
            room = self._lines * self.fontMetrics().lineSpacing() + 2 + margins.top() + margins.bottom()
            bold = QFont(self.font())
            bold.setBold(True)
            self._measure = (room, QFontMetrics(bold))
        return self._measure

    def _room(self) -> int:
        return self._measures()[0]

    def _needed(self) -> int:
        """The height the text needs at the label's width, measured on its plain words in the bold
        face (at least as wide as the label's mix of faces): a QLabel's own height-for-width lays the
        rich text out as a document, ~0.7 ms a text."""
        margins = self.contentsMargins()
        width = self.width() - margins.left() - margins.right()
        text = self.text()
        if width <= 0 or not text:
            return 0
        rich = self.textFormat() == Qt.TextFormat.RichText or (
            self.textFormat() == Qt.TextFormat.AutoText and GuiQt.mightBeRichText(text))
        if rich:
            text = html.unescape(_TAG.sub("", _BREAK.sub("\n", text)))
        box = self._measures()[1].boundingRect(QRect(0, 0, width, 1 << 20), _WRAP, text)
        return box.height() + 2 + margins.top() + margins.bottom()

    def _fit(self, update: bool = True) -> None:
        height = max(self._room(), self._needed())
        if height != self._height:
            self._height = height
            if update:
                self.updateGeometry()

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        if text == self.text():
            return
        super().setText(text)
        self._fit()

    def changeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange) and "_lines" in self.__dict__:
            self._measure = None
            self._fit()

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self._fit()

    # the layout sees a fixed height (no height-for-width), and a width that does not follow the text
    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt's name
        return False

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(self.fontMetrics().averageCharWidth() * 40, self._height)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(self.fontMetrics().averageCharWidth() * 8, self._height)


class ElidedLabel(QLabel):
    """A one-line label as wide as its layout gives it, never wider: where its text does not fit it shows
    an ellipsis where the text is cut (in the middle by default, so a file name keeps its start and its
    extension: "recording_2…speaker3.wav", not "recording_2026-12-0"). `text()` is the whole text."""

    def __init__(self, text: str = "", parent: QWidget | None = None,
                 mode: Qt.TextElideMode = Qt.TextElideMode.ElideMiddle):
        super().__init__(parent)
        self._full = ""
        self._mode = mode
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def text(self) -> str:
        return self._full

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        self._full = str(text)
        self._show()

    def shown_text(self) -> str:
        """What the label shows at its width now (the whole text, or the text with an ellipsis)."""
        return super().text()

    def _show(self) -> None:
        width = self.contentsRect().width()
        shown = self._full if width <= 0 else self.fontMetrics().elidedText(self._full, self._mode, width)
        if shown != super().text():
            super().setText(shown)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._show()

    def changeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:
            self._show()
