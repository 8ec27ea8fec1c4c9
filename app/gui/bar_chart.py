"""The QPainter bar chart the result charts (app/gui/charts.py) are made of: layout, value axis,
legend, numbers on the bars, the values under the mouse, one cached pixmap (why: app/gui/charts.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen, QPixmap, QStaticText
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.gui import style
from app.gui.chart_actions import ChartActions

UNFAMILIAR_TEXT = "unfamiliar"
MARGIN = 4  # pixels around the drawing
SMALL_FONT = 0.85  # legend, numbers, axis labels: this much of the widget's font
TITLE_FONT = 1.25


def mixed(base: QColor, over: QColor, amount: float) -> QColor:
    """`over` laid on `base` at opacity `amount`, as one opaque colour: a line drawn with a
    translucent pen costs the raster engine ~100 µs, an opaque one ~5 µs."""
    return QColor(round(base.red() + (over.red() - base.red()) * amount),
                  round(base.green() + (over.green() - base.green()) * amount),
                  round(base.blue() + (over.blue() - base.blue()) * amount))


def nice_step(span: float, most: int, base: float = 0.0) -> float:
    """A tick step of 1, 2 or 5 times a power of ten (or a multiple of `base`, when given) that puts at
    most `most` steps in `span`."""
    span, most = max(span, 1e-9), max(most, 1)
    step = base if base > 0 else 10.0 ** math.floor(math.log10(span / most))
    for factor in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000):
        if span / (step * factor) <= most + 1e-9:
            return step * factor
    return span


def tick_text(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step < 1 else 0
    if step < 1 and abs(round(step * 10 ** decimals) - step * 10 ** decimals) > 1e-6:
        decimals += 1  # 0.25 and the like
    text = f"{value:.{decimals}f}"
    return "0" if text.strip("-0.") == "" else text


@dataclass(frozen=True)
class _Layout:
    area: QRectF  # the bars' rectangle
    ticks: list[tuple[float, str]]  # the value axis' ticks and their labels
    title_font: QFont
    small_font: QFont
    title_height: float
    line: float  # a line of the small font
    small: QFontMetricsF


class BarChart(ChartActions, QWidget):
    """Groups of bars over named categories: a title, a legend row under it, a value axis with faint
    grid lines, the categories' names below, numbers over chosen bars, the values under the mouse.

    Subclasses fill `categories`, `series` (name, colour) and `values` (series x categories; NaN: no
    bar), choose the numbers (`_number_specs`) and the y-range, then call `_changed()`.
    """

    mark_rows = 0  # lines under the category names kept for a mark (the quality chart's "unfamiliar")
    group_width = 0.8  # of a category's room, shared by its bars

    def __init__(self, title: str, tooltip: str, parent: QWidget | None = None, minimum_height: int = 170):
        super().__init__(parent)
        self.title = title
        self.setToolTip(tooltip)
        self.setMinimumHeight(minimum_height)
        self.setMinimumWidth(160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)  # every pixel is painted: Qt clears nothing
        self.setMouseTracking(True)  # the values under the mouse
        self.categories: list[str] = []
        self.series: list[tuple[str, QColor]] = []
        self.values = np.zeros((0, 0))
        self.marked: frozenset[int] = frozenset()  # categories drawn with the mark
        self.y_range: tuple[float, float] = (0.0, 1.0)
        self.y_base_step = 0.0  # ticks at multiples of this (0: 1, 2, 5 x 10^k)
        self._cache: QPixmap | None = None  # the whole chart, as shown
        self._cache_key: tuple | None = None
        self._frame: QPixmap | None = None  # all but the bars and their numbers
        self._frame_key_drawn: tuple | None = None
        self._static_texts: dict[str, QStaticText] = {}  # the numbers, laid out once each
        self._generation = 0  # bumped by every change of what is drawn
        self._look = 0  # bumped by a palette or font change
        self._hover: tuple[str, QPointF] | None = None
        self.apply_palette()

    # --- data ----------------------------------------------------------------------------------------
    def _changed(self) -> None:
        self._generation += 1
        if self._hover is not None:  # the values under a still mouse changed with the data
            self._hover = None
        self.update()

    def apply_palette(self) -> None:
        self._background = style.plot_background()
        self._text = style.text_colour()
        self._grid = mixed(self._background, self._text, 0.2)
        self._look = self.__dict__.get("_look", 0) + 1
        self._changed()

    def chart_title(self) -> str:
        return self.title

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(320, 240)  # the same for both charts: a splitter gives them equal halves

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(self.minimumWidth(), self.minimumHeight())

    # --- geometry --------------------------------------------------------------------------------------
    def _fonts(self) -> tuple[QFont, QFont]:
        """(title, small) fonts from the widget's, made once per font change."""
        fonts = self.__dict__.get("_font_pair")
        if fonts is None:
            title = QFont(self.font())
            title.setPointSizeF(self.font().pointSizeF() * TITLE_FONT)
            small = QFont(self.font())
            small.setPointSizeF(max(6.0, self.font().pointSizeF() * SMALL_FONT))
            fonts = self._font_pair = (title, small)
        return fonts

    def changeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.FontChange and "_look" in self.__dict__:  # not inside __init__
            self._font_pair = None
            self._static_texts = {}
            self._look += 1
            self._changed()
        super().changeEvent(event)

    def _layout(self, width: float | None = None, height: float | None = None) -> _Layout:
        """Where everything goes for a size, worked out once per size, y-range and look (not per value)."""
        width = self.width() if width is None else width
        height = self.height() if height is None else height
        key = (width, height, self._look, self.y_range)
        cached = self.__dict__.get("_layout_cache")
        if cached is not None and cached[0] == key:
            return cached[1]
        title_font, small_font = self._fonts()
        title_h = QFontMetricsF(title_font).height()
        small = QFontMetricsF(small_font)
        line = small.height()
        top = MARGIN + title_h + 2 + line + 4 + line + 2  # title, legend, room for a number over the tallest bar
        bottom = height - MARGIN - line * (1 + self.mark_rows) - 3
        low, high = self.y_range
        step = nice_step(high - low, max(1, int(max(bottom - top, 1.0) / (1.8 * line))), self.y_base_step)
        first = math.ceil(low / step - 1e-9) * step
        ticks = [first + i * step for i in range(int(math.floor((high - first) / step + 1e-9)) + 1)]
        labels = [tick_text(v, step) for v in ticks]
        left = MARGIN + line + max([small.horizontalAdvance(t) for t in labels] or [0.0]) + 6
        area = QRectF(left, top, max(width - MARGIN - left, 1.0), max(bottom - top, 1.0))
        layout = _Layout(area, list(zip(ticks, labels, strict=True)), title_font, small_font, title_h, line, small)
        self._layout_cache = (key, layout)
        return layout

    def plot_area(self, width: float | None = None, height: float | None = None) -> QRectF:
        """Where the bars are drawn: below the title, legend and a number's room, right of the value
        axis, above the category names (widget pixels)."""
        return self._layout(width, height).area

    def y_of(self, value: float, area: QRectF | None = None) -> float:
        area = self.plot_area() if area is None else area
        bottom, top = self.y_range
        return area.bottom() - (value - bottom) / max(top - bottom, 1e-12) * area.height()

    def x_of(self, x: float, area: QRectF | None = None) -> float:
        """Pixel of data x (category i is centred at x = i)."""
        area = self.plot_area() if area is None else area
        n = max(len(self.categories), 1)
        return area.left() + (x + 0.5) / n * area.width()

    def data_x(self, pixel: float) -> float:
        area = self.plot_area()
        n = max(len(self.categories), 1)
        return (pixel - area.left()) / max(area.width(), 1e-12) * n - 0.5

    def data_y(self, pixel: float) -> float:
        area = self.plot_area()
        bottom, top = self.y_range
        return bottom + (area.bottom() - pixel) / max(area.height(), 1e-12) * (top - bottom)

    def bar_offsets(self) -> list[float]:
        """Each series' bar centre relative to its category, in category units."""
        n = max(len(self.series), 1)
        width = self.group_width / n
        return [(i - (n - 1) / 2) * width for i in range(len(self.series))]

    def bar_rects(self, area: QRectF | None = None) -> np.ndarray:
        """Every bar's (left, top, width, height) in pixels, [series, category, 4]; NaN for no bar."""
        area = self.plot_area() if area is None else area
        key = (area.left(), area.top(), area.width(), area.height(), self._generation, self.y_range)
        cached = self.__dict__.get("_bars_cache")
        if cached is not None and cached[0] == key:
            return cached[1]
        n_series, n = max(len(self.series), 1), max(len(self.categories), 1)
        values = np.asarray(self.values, dtype=float).reshape(len(self.series), len(self.categories))
        bottom, top = self.y_range
        centres = area.left() + (np.arange(len(self.categories))[None, :] + 0.5
                                 + np.asarray(self.bar_offsets())[:, None]) / n * area.width()
        half = self.group_width / n_series / 2 * area.width() / n
        scale = area.height() / max(top - bottom, 1e-12)
        y0 = area.bottom() - (min(max(0.0, bottom), top) - bottom) * scale
        y1 = area.bottom() - (np.clip(values, bottom, top) - bottom) * scale
        lefts = np.broadcast_to(centres - half, y1.shape)
        rects = np.stack([lefts, np.minimum(y0, y1), np.full_like(y1, 2 * half), np.abs(y1 - y0)], axis=-1)
        rects[~np.isfinite(values)] = np.nan
        self._bars_cache = (key, rects)
        return rects

    def bar_rect(self, series: int, category: int, area: QRectF | None = None) -> QRectF:
        """Where one bar is drawn (empty for a NaN value)."""
        left, top, width, height = self.bar_rects(area)[series, category]
        return QRectF() if not math.isfinite(left) else QRectF(left, top, width, height)

    # --- numbers over the bars ----------------------------------------------------------------------------
    def _number_specs(self) -> list[tuple[int, int, str]]:
        """(series, category, text) of the numbers to draw, most important first."""
        return []

    def _numbers_drawn(self, width: float | None = None, height: float | None = None) -> list[tuple[QRectF, str, int]]:
        """The numbers drawn, where, and their category: each over its bar (over the zero line for a
        negative one); one that would touch a number placed before it is left out (the mouse and the
        numbers table give it)."""
        width = self.width() if width is None else width
        layout = self._layout(width, height)
        area, metrics = layout.area, layout.small
        placed: list[tuple[QRectF, str, int]] = []
        for series, category, text in self._number_specs():
            bar = self.bar_rect(series, category, area)
            if bar.width() <= 0:
                continue
            w = metrics.horizontalAdvance(text) + 2
            rect = QRectF(bar.center().x() - w / 2, bar.top() - metrics.height(), w, metrics.height())
            rect.moveLeft(min(max(rect.left(), 0.0), width - w))
            room = rect.adjusted(-2, 0, 2, 0)
            if all(not room.intersects(other) for other, _, _ in placed):
                placed.append((rect, text, category))
        return placed

    def text_values(self) -> list[str]:
        """The numbers a person reads on the bars now."""
        return [text for _, text, _ in self._numbers_drawn()]

    # --- painting ------------------------------------------------------------------------------------
    def _frame_key(self) -> tuple:
        """What the frame (all but the bars and their numbers) is drawn from."""
        return (self._look, self.title, self.y_range, tuple(self.categories),
                tuple((name, colour.rgba()) for name, colour in self.series), self.marked)

    def paintEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        ratio = self.devicePixelRatioF()
        size = (self.width(), self.height(), ratio)
        key = (*size, self._generation)
        if self._cache is None or key != self._cache_key:
            frame_key = (*size, self._frame_key())
            if self._frame is None or frame_key != self._frame_key_drawn:
                self._frame = self._drawn(self._draw_frame, ratio)
                self._frame_key_drawn = frame_key
            self._cache, self._cache_key = self._drawn(self._draw_data, ratio, self._frame), key
        painter = QPainter(self)
        painter.drawPixmap(0, 0, self._cache)
        if self._hover is not None:
            self._draw_hover(painter, *self._hover)
        painter.end()

    def _drawn(self, draw: Any, ratio: float, base: QPixmap | None = None) -> QPixmap:
        """A pixmap of the widget's size with `draw` done on it (over a copy of `base`)."""
        if base is not None:
            pixmap = base.copy()
            pixmap.setDevicePixelRatio(ratio)
        else:
            pixmap = style.widget_pixmap(self, self._background)
        painter = QPainter(pixmap)
        try:
            draw(painter, self.width(), self.height())
        finally:  # a pixmap left with an active painter takes the process down with it
            painter.end()
        return pixmap

    def paint_vectors(self, painter: QPainter) -> None:
        self._draw_frame(painter, self.width(), self.height())
        self._draw_data(painter, self.width(), self.height(), vectors=True)

    def _draw_frame(self, painter: QPainter, width: int, height: int) -> None:
        """Background, title, legend, value axis with its grid, the categories' names and marks:
        drawn again only when the y-range, the categories, the palette or the size change."""
        layout = self._layout(width, height)
        area, line, small = layout.area, layout.line, layout.small
        painter.fillRect(QRectF(0, 0, width, height), self._background)
        text_pen = QPen(self._text, 0)
        painter.setFont(layout.title_font)
        painter.setPen(text_pen)
        painter.drawText(QRectF(0, MARGIN, width, layout.title_height), int(Qt.AlignmentFlag.AlignCenter), self.title)
        painter.setFont(layout.small_font)
        self._draw_legend(painter, QRectF(0, MARGIN + layout.title_height + 2, width, line), small)
        right_aligned = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        left, right = round(area.left()), round(area.right())
        grid_pen = QPen(self._grid, 0)
        for value, label in layout.ticks:
            y = round(self.y_of(value, area))
            painter.setPen(grid_pen)
            painter.drawLine(left, y, right, y)
            painter.setPen(text_pen)
            painter.drawLine(left - 4, y, left, y)
            painter.drawText(QRectF(MARGIN, y - line / 2, area.left() - MARGIN - 6, line), right_aligned, label)
        painter.drawLine(left, round(area.top()), left, round(area.bottom()))
        room = area.width() / max(len(self.categories), 1)
        top_centred = int(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        for c, name in enumerate(self.categories):
            rect = QRectF(self.x_of(c, area) - room / 2, area.bottom() + 3, room, line)
            painter.drawText(rect, top_centred, small.elidedText(name, Qt.TextElideMode.ElideRight, room))
        if self.marked and self.mark_rows:
            bold = QFont(layout.small_font)
            bold.setBold(True)
            painter.setFont(bold)
            painter.setPen(QPen(QColor(style.UNFAMILIAR), 0))
            text = QFontMetricsF(bold).elidedText(UNFAMILIAR_TEXT, Qt.TextElideMode.ElideRight, room)
            for c in sorted(self.marked):
                rect = QRectF(self.x_of(c, area) - room / 2, area.bottom() + 3 + line, room, line)
                painter.drawText(rect, top_centred, text)

    def _draw_data(self, painter: QPainter, width: int, height: int, vectors: bool = False) -> None:
        """The bars, the zero line over them and the numbers (in the mark's red for a marked input)."""
        layout = self._layout(width, height)
        area = layout.area
        rects = self.bar_rects(area)
        for s, (_name, colour) in enumerate(self.series):
            for x, y, w, h in rects[s].tolist():
                if w > 0:  # NaN (no bar) compares False
                    painter.fillRect(QRectF(x, y, w, h), colour)
        bottom, top = self.y_range
        zero = round(self.y_of(min(max(0.0, bottom), top), area))
        text_pen, mark_pen = QPen(self._text, 0), QPen(QColor(style.UNFAMILIAR), 0)
        painter.setPen(text_pen)
        painter.drawLine(round(area.left()), zero, round(area.right()), zero)
        painter.setFont(layout.small_font)
        for rect, text, category in self._numbers_drawn(width, height):
            painter.setPen(mark_pen if category in self.marked else text_pen)
            if vectors:  # text in the SVG, not glyph runs
                painter.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), text)
                continue
            static = self._static_texts.get(text)
            if static is None:
                if len(self._static_texts) > 512:
                    self._static_texts.clear()
                static = self._static_texts[text] = QStaticText(text)
                static.setTextFormat(Qt.TextFormat.PlainText)
            size = static.size()
            painter.drawStaticText(QPointF(rect.center().x() - size.width() / 2, rect.center().y() - size.height() / 2),
                                   static)

    def _draw_legend(self, painter: QPainter, row: QRectF, metrics: QFontMetricsF) -> None:
        """One row, centred: a colour square and the series' name each."""
        box = metrics.height() * 0.75
        gap = metrics.horizontalAdvance("  ")
        widths = [box + 4 + metrics.horizontalAdvance(name) for name, _ in self.series]
        total = sum(widths) + gap * max(len(widths) - 1, 0)
        x = row.left() + max((row.width() - total) / 2, MARGIN)
        painter.setPen(QPen(self._text))
        for (name, colour), w in zip(self.series, widths, strict=True):
            painter.fillRect(QRectF(x, row.center().y() - box / 2, box, box), colour)
            painter.drawText(QRectF(x + box + 4, row.top(), w - box - 4, row.height()),
                             int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), name)
            x += w + gap

    # --- hover ---------------------------------------------------------------------------------------
    def hover_text(self, x: float, y: float) -> str | None:
        """The values at data point (x, y), as one short line; None: nothing there."""
        return None

    def hover_label(self) -> str | None:
        """The line shown under the mouse now (None: none)."""
        return self._hover[0] if self._hover is not None else None

    def mouseMoveEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        pos = event.position()
        text = self.hover_text(self.data_x(pos.x()), self.data_y(pos.y())) if self.plot_area().contains(pos) else None
        hover = (text, QPointF(pos)) if text else None
        if hover != self._hover:
            self._hover = hover
            self.update()

    def leaveEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        if self._hover is not None:
            self._hover = None
            self.update()

    def _draw_hover(self, painter: QPainter, text: str, pos: QPointF) -> None:
        """The label next to the pointer, kept inside the widget (left of it on the right half)."""
        painter.setFont(self._fonts()[1])
        metrics = QFontMetricsF(painter.font())
        w, h = metrics.horizontalAdvance(text) + 8, metrics.height() + 4
        x = pos.x() - w - 6 if pos.x() > self.width() / 2 else pos.x() + 10
        x = min(max(x, 0.0), max(self.width() - w, 0.0))
        y = min(max(pos.y() - h - 4, 0.0), self.height() - h)
        fill = QColor(self._background)
        fill.setAlpha(230)
        painter.fillRect(QRectF(x, y, w, h), fill)
        painter.setPen(QPen(self._grid))
        painter.drawRect(QRectF(x, y, w, h))
        painter.setPen(QPen(self._text))
        painter.drawText(QRectF(x, y, w, h), int(Qt.AlignmentFlag.AlignCenter), text)

    def _category_at(self, x: float) -> int | None:
        i = int(round(x))
        if not 0 <= i < len(self.categories) or abs(x - i) > 0.45:
            return None
        return i


