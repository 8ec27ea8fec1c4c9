"""The pairs table keeps each painted row as a pixmap (`PairsTable`): what a person sees after every
change they can make must be what QTableView paints from the model itself, never a stale row."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtWidgets import QApplication

from app.gui.review import ReviewView
from app.gui.review.table_view import PairsTable
from app.review.session import ReviewSession
from tests.review.test_session_scale import _make


@pytest.fixture()
def view(qtbot, tmp_path: Path):
    path = tmp_path / "s.qmfreview"
    _make(path, n=150).close()
    v = ReviewView(model_path_provider=lambda: None)
    qtbot.addWidget(v)
    v.resize(1200, 700)
    v.show()
    qtbot.waitExposed(v)
    v.open_session(path)
    qtbot.wait(20)
    yield v
    v.shutdown()


def picture(table: PairsTable, cached: bool = True) -> QImage:
    table.row_cache_enabled = cached
    try:
        return table.viewport().grab().toImage()
    finally:
        table.row_cache_enabled = True


def differing(a: QImage, b: QImage) -> int:
    """Pixels that a person could tell apart (painting into a pixmap first may round a blended
    pixel of the focus frame by one step)."""
    assert a.size() == b.size()
    out = 0
    for y in range(a.height()):
        for x in range(a.width()):
            p, q = a.pixelColor(x, y), b.pixelColor(x, y)
            if abs(p.red() - q.red()) + abs(p.green() - q.green()) + abs(p.blue() - q.blue()) > 12:
                out += 1
    return out


def assert_shows_what_qt_paints(table: PairsTable, before: QImage | None = None) -> QImage:
    """The kept rows give the same picture as QTableView painting every cell; and, when `before` is
    given, the change did show (the test would pass by construction otherwise)."""
    ours = picture(table)
    assert differing(ours, picture(table, cached=False)) == 0
    if before is not None:  # a bigger font makes the headers, so the viewport, another size
        assert ours.size() != before.size() or differing(ours, before) > 0
    return ours


def column(view: ReviewView, key: str) -> int:
    return [k for k, _ in view.table_model.columns].index(key)


def test_a_repaint_with_nothing_changed_copies_the_kept_rows(view: ReviewView) -> None:
    table = view.table
    assert isinstance(table, PairsTable)
    first = assert_shows_what_qt_paints(table)
    drawn = table.rows_rendered
    assert drawn > 10  # a screenful of rows
    again = picture(table)
    assert table.rows_rendered == drawn and differing(again, first) == 0


def test_selection_and_the_focus_frame_move_with_the_click(qtbot, view: ReviewView) -> None:
    table = view.table
    before = assert_shows_what_qt_paints(table)
    view.select_row(3)
    before = assert_shows_what_qt_paints(table, before)
    view.select_row(7)
    before = assert_shows_what_qt_paints(table, before)
    table.setFocus()
    qtbot.waitUntil(table.hasFocus, timeout=2000)
    before = assert_shows_what_qt_paints(table, before)  # the current cell's focus frame
    sel = table.selectionModel()  # Ctrl+click: two rows selected
    sel.select(view.table_model.index(2, 0), QItemSelectionModel.SelectionFlag.Select
               | QItemSelectionModel.SelectionFlag.Rows)
    assert_shows_what_qt_paints(table, before)


def test_a_verdict_or_note_edited_shows_at_once(qtbot, view: ReviewView) -> None:
    table = view.table
    view.select_row(4)
    before = assert_shows_what_qt_paints(table)
    model = view.table_model
    verdict = model.index(4, column(view, "verdict"))
    new = "reject" if verdict.data() != "reject" else "accept"
    assert model.setData(verdict, new)  # what the verdict cell's drop-down does
    before = assert_shows_what_qt_paints(table, before)
    view.set_note("a new note, seen in the table")
    assert model.index(4, column(view, "note")).data() == "a new note, seen in the table"
    before = assert_shows_what_qt_paints(table, before)
    view.set_verdict("accept" if new == "reject" else "reject")  # the A / R keys
    assert_shows_what_qt_paints(table, before)


def test_results_written_elsewhere_show_after_a_refresh(view: ReviewView) -> None:
    """A run writes results (here: a verdict from another connection, as `qmf` would) and the page
    refreshes the rows in view."""
    table = view.table
    before = assert_shows_what_qt_paints(table)
    row = view.table_model.row_at(1)
    with ReviewSession.open(view.session.path) as other:
        other.set_verdict(row.id, "relabel", relabel="b", note="from the command line")
    view._refresh_now()
    assert_shows_what_qt_paints(table, before)


def test_sorting_resizing_moving_and_scrolling_columns(view: ReviewView) -> None:
    table = view.table
    header = table.horizontalHeader()
    before = assert_shows_what_qt_paints(table)
    table.sortByColumn(column(view, "note"), Qt.SortOrder.DescendingOrder)
    before = assert_shows_what_qt_paints(table, before)
    header.resizeSection(column(view, "id"), header.sectionSize(column(view, "id")) + 60)
    before = assert_shows_what_qt_paints(table, before)
    header.moveSection(header.visualIndex(column(view, "label")), 0)
    before = assert_shows_what_qt_paints(table, before)
    table.horizontalScrollBar().setValue(table.horizontalScrollBar().maximum())
    before = assert_shows_what_qt_paints(table, before)
    table.verticalScrollBar().setValue(40)  # far down: other rows
    assert_shows_what_qt_paints(table, before)


def test_a_palette_or_font_change_repaints_every_row(view: ReviewView) -> None:
    table = view.table
    before = assert_shows_what_qt_paints(table)
    dark = QPalette(table.palette())
    dark.setColor(QPalette.ColorRole.Base, QColor(30, 30, 30))
    dark.setColor(QPalette.ColorRole.Text, QColor(230, 230, 230))
    dark.setColor(QPalette.ColorRole.Highlight, QColor(200, 120, 0))
    table.setPalette(dark)
    QApplication.processEvents()
    before = assert_shows_what_qt_paints(table, before)
    font = table.font()
    font.setPointSizeF(font.pointSizeF() + 3)
    table.setFont(font)
    QApplication.processEvents()
    assert_shows_what_qt_paints(table, before)


def test_rows_are_drawn_again_at_a_new_device_pixel_ratio(view: ReviewView, monkeypatch) -> None:
    """Moving the window to a screen of another scale: no row keeps its picture of the old one."""
    table = view.table
    picture(table)
    assert {p.devicePixelRatio() for p in table._row_pixmaps.values()} == {1.0}
    drawn = table.rows_rendered
    monkeypatch.setattr(PairsTable, "device_ratio", lambda self: 2.0)
    picture(table)
    assert table.rows_rendered > drawn
    sharp = [p for p in table._row_pixmaps.values() if p.devicePixelRatio() == 2.0]
    assert sharp and all(p.height() == 2 * table.rowHeight(0) for p in sharp)


def test_rows_next_to_the_view_are_drawn_ahead_so_a_short_scroll_copies_them(qtbot, view: ReviewView) -> None:
    table = view.table
    picture(table)
    in_view = table.rowAt(table.viewport().height() - 1) - table.rowAt(0) + 1
    # the rows in view, then the AHEAD_ROWS below them (none above the first row)
    qtbot.waitUntil(lambda: table.rows_rendered >= in_view + PairsTable.AHEAD_ROWS, timeout=5000)
    qtbot.waitUntil(lambda: not table._ahead_timer.isActive(), timeout=5000)
    drawn = table.rows_rendered
    table.verticalScrollBar().setValue(table.verticalScrollBar().value() + 3)
    ours = picture(table)
    assert table.rows_rendered == drawn  # the three rows that came into view were drawn already
    assert differing(ours, picture(table, cached=False)) == 0
    assert table.rowAt(0) == 3 and in_view > 3
