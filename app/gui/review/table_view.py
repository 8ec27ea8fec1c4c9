"""The pairs table's view: `CellPainter` (each cell painted in one Python call from the model's cached
texts), `VerdictDelegate` (the verdict cell's drop-down) and `pairs_table` (the QTableView itself).
The model is `app.gui.review.table_model.ReviewTableModel`."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QPainter, QPalette, QStaticText
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

__all__ = ["CellPainter", "VerdictDelegate", "pairs_table"]

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
        text, right, brush = look
        state, palette, rect = option.state._value_, option.palette, option.rect
        group = (_ACTIVE_GROUP if state & _ACTIVE else _INACTIVE_GROUP) if state & _ENABLED else _DISABLED_GROUP
        if self._margin is None:
            widget = option.widget
            style = widget.style() if widget is not None else QApplication.style()
            self._margin = style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, widget) + 1
        margin = self._margin
        if state & _SELECTED:
            painter.fillRect(rect, palette.brush(group, _HIGHLIGHT))
            painter.setPen(palette.color(group, _HIGHLIGHTED_TEXT))
        else:
            painter.setPen(brush.color() if brush is not None else palette.color(group, _TEXT))
        if text:
            metrics = option.fontMetrics
            width = rect.width() - 2 * margin
            key = (text, width, metrics.height())
            laid = self._layouts.get(key)
            if laid is None:
                if len(self._layouts) >= self.MAX_LAYOUTS:
                    self._layouts.clear()
                static = QStaticText(metrics.elidedText(text, option.textElideMode, width))
                static.setTextFormat(Qt.TextFormat.PlainText)
                laid = self._layouts[key] = (static, static.size().width())
            static, text_width = laid
            x = rect.right() + 1 - margin - text_width if right else rect.left() + margin
            painter.drawStaticText(QPointF(x, rect.top() + (rect.height() - metrics.height()) // 2), static)
        if state & _HAS_FOCUS:  # the current cell, after keyboard navigation (as the style draws it)
            focus = QStyleOptionFocusRect()
            focus.rect, focus.palette = rect, palette
            focus.state = option.state | QStyle.StateFlag.State_KeyboardFocusChange | QStyle.StateFlag.State_Item
            focus.backgroundColor = palette.color(group, _HIGHLIGHT if state & _SELECTED else _BASE)
            widget = option.widget
            (widget.style() if widget is not None else QApplication.style()).drawPrimitive(
                QStyle.PrimitiveElement.PE_FrameFocusRect, focus, painter, widget)


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


def pairs_table(model: ReviewTableModel) -> QTableView:
    """The table of pairs: sortable by column (SQL), rows selected together (Ctrl+C copies them; a verdict
    acts on the current one), verdicts editable in place."""
    table = QTableView()
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
