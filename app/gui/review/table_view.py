"""The pairs table's view: `CellPainter` (each cell painted in one Python call from the model's cached
texts), `VerdictDelegate` (the verdict cell's drop-down), `PairsTable` (the QTableView, its rows kept
as pixmaps) and `pairs_table` (the table set up for the Review page).
The model is `app.gui.review.table_model.ReviewTableModel`."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QLineF, QPointF, QRect, Qt, QTimer
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFontMetrics,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
    QPixmap,
    QRegion,
    QStaticText,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QHeaderView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionFocusRect,
    QStyleOptionViewItem,
    QTableView,
    QWidget,
)

from app.gui.review.table_model import RELABEL_PREFIX, Index, ReviewTableModel

__all__ = ["CellPainter", "PairsTable", "VerdictDelegate", "pairs_table"]

# The view item's state as an int (`state._value_`): an `&` of two Python Flag members costs ~5 µs.
_SELECTED = QStyle.StateFlag.State_Selected.value
_ENABLED = QStyle.StateFlag.State_Enabled.value
_ACTIVE = QStyle.StateFlag.State_Active.value
_HAS_FOCUS = QStyle.StateFlag.State_HasFocus.value
_ACTIVE_GROUP = QPalette.ColorGroup.Active
_INACTIVE_GROUP = QPalette.ColorGroup.Inactive
_DISABLED_GROUP = QPalette.ColorGroup.Disabled
_HIGHLIGHT = QPalette.ColorRole.Highlight
_HIGHLIGHTED_TEXT = QPalette.ColorRole.HighlightedText
_TEXT = QPalette.ColorRole.Text
_BASE = QPalette.ColorRole.Base


class CellPainter(QStyledItemDelegate):
    """Paints a cell of the pairs table in one Python call, from `ReviewTableModel.cell_look`.

    Qt's own delegate asks the model for seven roles per cell (seven calls from C++ into Python, ~8 µs
    each) and lays the text out again at every repaint; a screenful is ~450 cells, so a click that
    scrolls the table by a page cost ~25 ms of GUI-thread time. Here each text is laid out once per
    column width (a `QStaticText`, kept for the last MAX_LAYOUTS texts) and drawn as Qt's delegate
    draws it: the selection in the palette's highlight, elided at the right, the style's text margin
    and focus frame. Tooltips and the editor (`VerdictDelegate`) are Qt's, from `data()`.
    """

    MAX_LAYOUTS = 8192

    def __init__(self, parent: Any = None):
        super().__init__(parent)
        self._layouts: dict[tuple[str, int, int], tuple[QStaticText, float]] = {}
        self._margin: int | None = None

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        model = index.model()
        look = model.cell_look(index.row(), index.column()) if isinstance(model, ReviewTableModel) else None
        if look is None:
            super().paint(painter, option, index)
            return
        self.paint_look(painter, option.rect, option.state, option.palette, option.fontMetrics,
                        option.textElideMode, option.widget, look)

    def paint_look(self, painter: QPainter, rect: QRect, flags: QStyle.StateFlag, palette: QPalette,
                   metrics: QFontMetrics, elide: Qt.TextElideMode, widget: QWidget | None,
                   look: tuple[str, bool, QBrush | None]) -> None:
        """One cell from its look (`ReviewTableModel.cell_look`) in `rect`, in the view item's state
        `flags`: what `paint` draws, without a model index or a style option (`PairsTable` draws
        its rows with it)."""
        text, right, brush = look
        state = flags._value_
        group = (_ACTIVE_GROUP if state & _ACTIVE else _INACTIVE_GROUP) if state & _ENABLED else _DISABLED_GROUP
        margin = self.margin(widget)
        if state & _SELECTED:
            painter.fillRect(rect, palette.brush(group, _HIGHLIGHT))
            painter.setPen(palette.color(group, _HIGHLIGHTED_TEXT))
        else:
            painter.setPen(brush.color() if brush is not None else palette.color(group, _TEXT))
        if text:
            width = rect.width() - 2 * margin
            key = (text, width, metrics.height())
            laid = self._layouts.get(key) or self.laid_out(key, metrics, elide)
            static, text_width = laid
            x = rect.right() + 1 - margin - text_width if right else rect.left() + margin
            painter.drawStaticText(QPointF(x, rect.top() + (rect.height() - metrics.height()) // 2), static)
        if state & _HAS_FOCUS:  # the current cell, after keyboard navigation (as the style draws it)
            focus = QStyleOptionFocusRect()
            focus.rect, focus.palette = rect, palette
            focus.state = flags | QStyle.StateFlag.State_KeyboardFocusChange | QStyle.StateFlag.State_Item
            focus.backgroundColor = palette.color(group, _HIGHLIGHT if state & _SELECTED else _BASE)
            (widget.style() if widget is not None else QApplication.style()).drawPrimitive(
                QStyle.PrimitiveElement.PE_FrameFocusRect, focus, painter, widget)


    def laid_out(self, key: tuple[str, int, int], metrics: QFontMetrics,
                 elide: Qt.TextElideMode) -> tuple[QStaticText, float]:
        """The text of `key` (text, room, font height) elided to its room and laid out, kept."""
        if len(self._layouts) >= self.MAX_LAYOUTS:
            self._layouts.clear()
        static = QStaticText(metrics.elidedText(key[0], elide, key[1]))
        static.setTextFormat(Qt.TextFormat.PlainText)
        laid = self._layouts[key] = (static, static.size().width())
        return laid

    def margin(self, widget: QWidget | None) -> int:
        """The text's distance from the cell's edge, as the style's item delegate keeps it."""
        if self._margin is None:
            style = widget.style() if widget is not None else QApplication.style()
            self._margin = style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, widget) + 1
        return self._margin


class VerdictDelegate(CellPainter):
    """A drop-down for the verdict cell: accept, reject or relabel to one of the model's labels."""

    def __init__(self, labels_provider: Any, parent: Any = None):
        super().__init__(parent)
        self.labels_provider = labels_provider

    def createEditor(self, parent: QWidget, option: Any, index: Index) -> QWidget:
        combo = QComboBox(parent)
        combo.addItems(["", "accept", "reject", *[f"{RELABEL_PREFIX}{lab}" for lab in self.labels_provider()]])
        return combo

    def setEditorData(self, editor: QWidget, index: Index) -> None:
        assert isinstance(editor, QComboBox)
        editor.setCurrentText(str(index.data(Qt.ItemDataRole.EditRole) or ""))

    def setModelData(self, editor: QWidget, model: Any, index: Index) -> None:
        assert isinstance(editor, QComboBox)
        model.setData(index, editor.currentText(), Qt.ItemDataRole.EditRole)


class PairsTable(QTableView):
    """A QTableView whose rows are painted once into pixmaps and then copied.

    A repaint of the whole viewport (a click that scrolls far, a scroll by a page, a run's results
    arriving for the rows in view) painted every cell: ~280 cells, 12-25 ms of GUI-thread time, most
    of it the C++-to-Python call and the style option per cell. Here each row in view is one
    `drawPixmap`; a row is drawn into its pixmap as `QTableView.paintEvent` draws it (each cell in
    view through `QTableViewPrivate::drawCell`'s steps: the row panel, then the cell's delegate; the
    grid last, in the style's grid colour) and drawn again only when what it shows changes. Its
    picture is found by the row's cell texts (which also fix its colours:
    `ReviewTableModel.row_texts`), its selected columns, the current cell's column when the table has
    focus, and `paint_context()`: the viewport's width, horizontal scroll, column order and widths,
    row height, palette, font, style, device pixel ratio, active/enabled state and grid. A model
    without row texts, or right to left, is painted as QTableView paints it (`row_cache_enabled`
    False: always). Pixmaps are kept least recently used first out, up to MAX_CACHE_BYTES.
    """

    MAX_CACHE_BYTES = 24 << 20
    # Rows just outside the view are drawn ahead, AHEAD_ROWS on each side, AHEAD_PER_TURN rows in a
    # turn, from AHEAD_AFTER_MS after a paint: a scroll by a few rows (a click on a row near the edge,
    # the wheel, the arrow keys) then copies pictures instead of drawing rows in its own turn.
    AHEAD_ROWS = 8
    AHEAD_PER_TURN = 4
    AHEAD_AFTER_MS = 40

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.row_cache_enabled = True  # False: QTableView paints every cell (tests compare the two)
        self._row_pixmaps: OrderedDict[tuple, QPixmap] = OrderedDict()
        self._cache_bytes = 0
        self.rows_rendered = 0  # rows drawn into pixmaps so far (tests: a repaint that copies draws none)
        self._font_generation = 0  # counts font changes (QFont.key() costs ~0.4 ms a paint)
        self._ahead_timer = QTimer(self, singleShot=True, interval=self.AHEAD_AFTER_MS, timeout=self._draw_ahead)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:
            self._font_generation += 1

    # --- the key of a row's picture -----------------------------------------------------------------
    def device_ratio(self) -> float:
        return self.viewport().devicePixelRatioF()

    def paint_context(self) -> tuple:
        """What every row's picture depends on besides the row itself."""
        header = self.horizontalHeader()
        viewport = self.viewport()
        columns = tuple((logical, header.sectionSize(logical)) for logical in
                        (header.logicalIndex(v) for v in range(header.count())) if not header.isSectionHidden(logical))
        return (viewport.width(), header.offset(), columns, self.verticalHeader().defaultSectionSize(),
                viewport.palette().cacheKey(), self.palette().cacheKey(), self._font_generation,
                self.style().name(), self.device_ratio(), self.isActiveWindow(), self.isEnabled(),
                self.showGrid(), int(self.gridStyle().value), self.wordWrap(), int(self.textElideMode().value))

    def _selected_cells(self) -> list[tuple[int, int, int, int]]:
        """The selection as (top, bottom, left, right) ranges: asking the selection model row by row
        costs ~40 µs a row (it checks each column)."""
        selection = self.selectionModel()
        if selection is None:
            return []
        return [(r.top(), r.bottom(), r.left(), r.right()) for r in selection.selection()]

    @staticmethod
    def _row_selection(ranges: list[tuple[int, int, int, int]], row: int) -> tuple[tuple[int, int], ...]:
        """The selected columns of `row` as (left, right) spans (the rows are selected whole as a rule)."""
        return tuple((left, right) for top, bottom, left, right in ranges if top <= row <= bottom)

    def _row_key(self, context: tuple, model: ReviewTableModel, row: int, current_row: int, focus_column: int,
                 ranges: list[tuple[int, int, int, int]]) -> tuple | None:
        texts = model.row_texts(row)
        if texts is None:
            return None
        return (context, texts, self._row_selection(ranges, row) if ranges else (),
                focus_column if row == current_row else -1)

    def _cacheable(self) -> bool:
        return self.row_cache_enabled and isinstance(self.model(), ReviewTableModel) and not self.isRightToLeft()

    def _rows_between(self, model: ReviewTableModel, top: int, bottom: int) -> tuple[int, int] | None:
        """The first and last rows between viewport heights `top` and `bottom`; None below the last row."""
        first = self.rowAt(top)
        if first < 0:
            return None
        last = self.rowAt(bottom)
        return first, model.rowCount() - 1 if last < 0 else last

    def _row_keys(self, model: ReviewTableModel) -> Callable[[int], tuple | None]:
        """Row -> its picture's key as the view paints now (context, current cell and selection read once)."""
        context = self.paint_context()
        current = self.currentIndex()
        focus_column = current.column() if self.hasFocus() or self.viewport().hasFocus() else -1
        current_row = current.row()
        ranges = self._selected_cells()
        return lambda row: self._row_key(context, model, row, current_row, focus_column, ranges)

    # --- painting -----------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        model = self.model()
        if not self._cacheable():
            super().paintEvent(event)
            return
        assert isinstance(model, ReviewTableModel)
        region = event.region()
        bounds = region.boundingRect()
        span = self._rows_between(model, bounds.top(), bounds.bottom())
        if span is None:  # nothing but the empty space below the last row
            super().paintEvent(event)
            return
        first, last = span
        key_of = self._row_keys(model)
        width = self.viewport().width()
        rows: list[tuple[int, int, int, tuple | None]] = []  # (row, y, height, key)
        vertical = self.verticalHeader()
        for row in range(first, last + 1):
            if vertical.isSectionHidden(row):
                continue
            rows.append((row, vertical.sectionViewportPosition(row), vertical.sectionSize(row), key_of(row)))
        missing = [r for r in rows if r[3] is None or r[3] not in self._row_pixmaps]
        pictures = self._render_rows(missing, width) if missing else {}
        covered = QRegion()
        for _row, y, height, _key in rows:
            covered += QRect(0, y, width, height)
        rest = region - covered
        if not rest.isEmpty():  # below the last row: Qt's background (and grid ends)
            super().paintEvent(QPaintEvent(rest))
        if not self._ahead_timer.isActive():
            self._ahead_timer.start(self.AHEAD_AFTER_MS)
        painter = QPainter(self.viewport())
        try:
            for row, y, _height, key in rows:
                picture = pictures.get(row)
                if picture is None:
                    picture = self._row_pixmaps[key]
                    self._row_pixmaps.move_to_end(key)
                painter.drawPixmap(0, y, picture)
        finally:
            painter.end()

    def _render_rows(self, missing: list[tuple[int, int, int, tuple | None]], width: int) -> dict[int, QPixmap]:
        """Draw the missing rows as `QTableView.paintEvent` draws them (`QTableViewPrivate::drawCell`
        for each cell in view, then the grid); keep those that have a key. Returns row -> pixmap."""
        model = self.model()
        ratio = self.device_ratio()
        header = self.horizontalHeader()
        first_visual = header.visualIndexAt(0)
        last_visual = header.visualIndexAt(width - 1)
        first_visual = 0 if first_visual < 0 else first_visual
        last_visual = header.count() - 1 if last_visual < 0 else last_visual
        columns = []  # (logical column, x, width without the grid line)
        grid = 1 if self.showGrid() else 0
        for visual in range(first_visual, last_visual + 1):
            logical = header.logicalIndex(visual)
            if not header.isSectionHidden(logical):
                columns.append((logical, self.columnViewportPosition(logical), self.columnWidth(logical) - grid))
        option = QStyleOptionViewItem()
        self.initViewItemOption(option)
        style = self.style()
        grid_pen = QPen(QColor.fromRgba(style.styleHint(QStyle.StyleHint.SH_Table_GridLineColor, option, self)
                                        & 0xFFFFFFFF), 1, self.gridStyle())
        base_state = option.state
        current = self.currentIndex()
        focused = (self.hasFocus() or self.viewport().hasFocus()) and current.isValid()
        current_row, current_column = current.row(), current.column()
        ranges = self._selected_cells()
        viewport = self.viewport()
        background = viewport.palette().brush(viewport.backgroundRole())
        font, pen = viewport.font(), QPen(viewport.palette().color(viewport.foregroundRole()))
        flags = {False: base_state, True: base_state | QStyle.StateFlag.State_Selected}  # Flag | costs µs: once
        focus_flags = {k: v | QStyle.StateFlag.State_HasFocus for k, v in flags.items()}
        # Unselected, without alternating colours, the row panel paints nothing (QCommonStyle)
        panel_always = self.alternatingRowColors()
        delegates = {column: self.itemDelegateForColumn(column) or self.itemDelegate() for column, _x, _w in columns}
        palette, metrics, elide = option.palette, option.fontMetrics, option.textElideMode
        font_height = metrics.height()
        group = (_ACTIVE_GROUP if base_state._value_ & _ACTIVE else _INACTIVE_GROUP) \
            if base_state._value_ & _ENABLED else _DISABLED_GROUP
        text_colour = palette.color(group, _TEXT)
        fast_columns = {column: (delegate._layouts, delegate.margin(self)) for column, delegate in delegates.items()
                        if isinstance(delegate, CellPainter)}
        out: dict[int, QPixmap] = {}
        for row, _y, height, key in missing:
            picture = QPixmap(max(1, round(width * ratio)), max(1, round(height * ratio)))
            picture.setDevicePixelRatio(ratio)
            painter = QPainter(picture)
            try:  # as a painter on the viewport starts: its font and text colour
                painter.setFont(font)
                painter.setPen(pen)
                pen_colour = None
                painter.fillRect(QRect(0, 0, width, height), background)
                cell_height = height - grid
                looks = model.row_looks(row)
                spans = PairsTable._row_selection(ranges, row) if ranges else ()
                text_y = (cell_height - font_height) // 2
                for column, x, cell_width in columns:
                    selected = bool(spans) and any(left <= column <= right for left, right in spans)
                    has_focus = focused and row == current_row and column == current_column
                    fast = fast_columns.get(column)
                    if fast is not None and looks is not None and not (selected or has_focus or panel_always):
                        # the common cell, inline: what CellPainter.paint_look draws for it (~4x faster)
                        text, right, brush = looks[column]
                        colour = brush.color() if brush is not None else text_colour
                        if colour != pen_colour:
                            painter.setPen(colour)
                            pen_colour = colour
                        if text:
                            room = cell_width - 2 * fast[1]
                            layout_key = (text, room, font_height)
                            static, text_width = (fast[0].get(layout_key)
                                                  or delegates[column].laid_out(layout_key, metrics, elide))
                            painter.drawStaticText(QPointF(x + cell_width - fast[1] - text_width if right
                                                           else x + fast[1], text_y), static)
                        continue
                    pen_colour = None
                    state = (focus_flags if has_focus else flags)[selected]
                    rect = QRect(x, 0, cell_width, cell_height)
                    delegate = delegates[column]
                    index = model.index(row, column)
                    option.rect, option.state = rect, state
                    if panel_always:
                        option.features = (option.features | QStyleOptionViewItem.ViewItemFeature.Alternate
                                           if row % 2 else option.features
                                           & ~QStyleOptionViewItem.ViewItemFeature.Alternate)
                    style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewRow, option, painter, self)
                    if looks is not None and isinstance(delegate, CellPainter):
                        delegate.paint_look(painter, rect, state, palette, metrics, elide, self, looks[column])
                    else:
                        delegate.paint(painter, option, index)
                if grid:
                    painter.setPen(grid_pen)
                    painter.drawLine(QLineF(0, cell_height, width - 1, cell_height).translated(0.5, 0.5))
                    for _column, x, cell_width in columns:
                        painter.drawLine(QLineF(x + cell_width, 0, x + cell_width, height - 1).translated(0.5, 0.5))
            finally:  # a pixmap left with an active painter takes the process down with it
                painter.end()
            self.rows_rendered += 1
            out[row] = picture
            if key is not None:
                self._keep(key, picture)
        return out

    def _draw_ahead(self) -> None:
        """Draw the pictures of up to AHEAD_PER_TURN rows within AHEAD_ROWS of the view that have
        none, nearest first; again in the next turn while some are missing."""
        model = self.model()
        if not self._cacheable() or not self.isVisible() or model.rowCount() == 0:
            return
        assert isinstance(model, ReviewTableModel)
        span = self._rows_between(model, 0, self.viewport().height() - 1)
        if span is None:
            return
        first, last = span
        key_of = self._row_keys(model)
        vertical = self.verticalHeader()
        wanted = []
        for step in range(1, self.AHEAD_ROWS + 1):
            for row in (last + step, first - step):
                if 0 <= row < model.rowCount() and not vertical.isSectionHidden(row):
                    key = key_of(row)
                    if key is not None and key not in self._row_pixmaps:
                        wanted.append((row, 0, vertical.sectionSize(row), key))
        if wanted:
            self._render_rows(wanted[:self.AHEAD_PER_TURN], self.viewport().width())
            if len(wanted) > self.AHEAD_PER_TURN:
                self._ahead_timer.start(1)

    def _keep(self, key: tuple, picture: QPixmap) -> None:
        old = self._row_pixmaps.pop(key, None)
        if old is not None:
            self._cache_bytes -= old.width() * old.height() * 4
        self._row_pixmaps[key] = picture
        self._cache_bytes += picture.width() * picture.height() * 4
        while self._cache_bytes > self.MAX_CACHE_BYTES and len(self._row_pixmaps) > 1:
            _, dropped = self._row_pixmaps.popitem(last=False)
            self._cache_bytes -= dropped.width() * dropped.height() * 4

    def forget_row_pixmaps(self) -> None:
        """Drop every kept row picture (what they show is found again from the model on the next paint)."""
        self._row_pixmaps.clear()
        self._cache_bytes = 0


def pairs_table(model: ReviewTableModel) -> PairsTable:
    """The table of pairs: sortable by column (SQL), rows selected together (Ctrl+C copies them; a verdict
    acts on the current one), verdicts editable in place."""
    table = PairsTable()
    table.setModel(model)
    table.setItemDelegate(CellPainter(table))
    table.setAutoFillBackground(True)  # opaque: its scroll bars' and frame's repaints stop here, not at the page
    table.setSortingEnabled(True)
    table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked | QAbstractItemView.EditTrigger.EditKeyPressed
                          | QAbstractItemView.EditTrigger.SelectedClicked)
    table.verticalHeader().setDefaultSectionSize(22)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    table.horizontalHeader().setStretchLastSection(True)
    return table
