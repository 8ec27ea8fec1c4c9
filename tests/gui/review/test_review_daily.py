"""The Review page as a daily tool: what a reviewer noticed going wrong (issue 14), each driven as a user would."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QItemSelectionModel, QSettings, Qt
from PySide6.QtGui import QGuiApplication

from app.gui import style
from app.gui.review import ReviewView
from app.review.export import read_csv_export
from tests.gui.review.test_review_view import TIMEOUT_MS, column
from tests.review.conftest import make_review_folder, write_manifest

BROKEN_WAV = b"RIFF" + b"\x00" * 40 + b" not a recording " * 8


def make_view(qtbot, model: Path, settings: QSettings | None = None, size=(1366, 720)) -> ReviewView:
    extra = {"settings": settings} if settings is not None else {}
    view = ReviewView(model_path_provider=lambda: model, batch_size=4, workers=1, in_process=True, **extra)
    qtbot.addWidget(view)
    view.resize(*size)
    view.show()
    return view


def reviewed(qtbot, view: ReviewView, source: Path, session: Path) -> dict:
    with qtbot.waitSignal(view.run_finished, timeout=TIMEOUT_MS) as finished:
        view.open_source(source, session)
    return finished.args[0]


def test_a_verdict_key_acts_only_on_a_pair_the_filter_shows(qtbot, tiny_model, review_folder, tmp_path) -> None:
    view = make_view(qtbot, tiny_model)
    reviewed(qtbot, view, review_folder, tmp_path / "s.qmfreview")
    view.table.setFocus()
    view.select_row(0)
    hidden = view.current_pair()
    other = next(label for label in ("low", "mid", "high") if label != hidden.label)
    view.set_filter(label=other)
    assert view.table_model.rowCount() == 5
    assert view.detail.title.text() == "" and not view.detail.accept_button.isEnabled()  # the detail let it go
    qtbot.keyClick(view.table, Qt.Key.Key_A)
    assert view.session.verdict(hidden.id)["verdict"] is None
    view.select_row(1)
    shown = view.current_pair()
    qtbot.keyClick(view.table, Qt.Key.Key_A)
    assert view.session.verdict(shown.id)["verdict"] == "accept"
    view.shutdown()


def test_every_manifest_problem_is_listed_and_a_failed_open_leaves_no_full_bar(qtbot, tiny_model, review_folder,
                                                                               tmp_path) -> None:
    good = [("a", review_folder / "low/low_000.png", review_folder / "low/low_000.wav", "low"),
            ("b", review_folder / "mid/mid_000.png", review_folder / "mid/mid_000.wav", "mid")]
    bad = [("c", "", review_folder / "mid/mid_001.wav", "mid"),
           ("d", review_folder / "mid/mid_002.png", "", "mid"),
           ("e", "", "", "high")]
    manifest = write_manifest(tmp_path / "pairs.csv", good + bad)
    view = make_view(qtbot, tiny_model)
    stats = reviewed(qtbot, view, manifest, tmp_path / "m.qmfreview")
    assert stats["done"] == 2
    listed = view.message_bar.detail_lines()
    assert view.message_bar.isVisible() and f"{len(listed)} manifest problem" in view.message_bar.label.text()
    assert all("pairs.csv" in line for line in listed)
    assert {line.split(":")[1] for line in listed} == {"4", "5", "6"}  # every row left out, by line
    qtbot.mouseClick(view.message_bar.details_button, Qt.MouseButton.LeftButton)
    assert view.message_bar.details.isVisible()
    assert view.progress_bar.value() == view.progress_bar.maximum()  # that session is complete

    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"\xff\xfe\x00 not a manifest")
    with qtbot.waitSignal(view.run_failed, timeout=TIMEOUT_MS):
        view.open_source(broken, tmp_path / "broken.qmfreview")
    assert view.progress_label.text() == "stopped"
    assert view.progress_bar.value() < view.progress_bar.maximum()
    view.shutdown()


def test_a_session_left_unfinished_can_be_resumed_from_the_toolbar_too(qtbot, tiny_model, review_folder,
                                                                       tmp_path) -> None:
    """A session whose run was killed: its pairs are listed, some have no result."""
    from app.qmf.predictor import Predictor
    from app.review.workflow import prepare_session

    session_path = tmp_path / "killed.qmfreview"
    prepared = prepare_session(session_path, Predictor.load(tiny_model), review_folder, tiny_model)
    prepared.session.close()  # the run never wrote a result: as if killed at once
    view = make_view(qtbot, tiny_model)
    view.open_session(session_path)
    assert view.message_bar.isVisible() and view.message_bar.button.text() == "Resume"
    assert view.session_bar.run_button.isEnabled()
    with qtbot.waitSignal(view.run_finished, timeout=TIMEOUT_MS) as finished:
        qtbot.mouseClick(view.session_bar.run_button, Qt.MouseButton.LeftButton)
    assert finished.args[0]["done"] == 15
    assert not view.session_bar.run_button.isEnabled() and not view.message_bar.isVisible()
    view.shutdown()


def test_errors_are_counted_for_the_session_and_retried_from_the_button(qtbot, tiny_model, tmp_path) -> None:
    folder = make_review_folder(tmp_path / "pairs", per_class=2)
    spare = tmp_path / "spare.wav"
    shutil.copy(folder / "mid" / "mid_001.wav", spare)
    (folder / "mid" / "mid_001.wav").write_bytes(BROKEN_WAV)
    view = make_view(qtbot, tiny_model)
    session_path = tmp_path / "e.qmfreview"
    assert reviewed(qtbot, view, folder, session_path)["errors"] == 1
    # two more pairs arrive, one of them broken: this run makes one error, the session holds two
    shutil.copy(folder / "low" / "low_000.png", folder / "low" / "low_009.png")
    shutil.copy(folder / "low" / "low_000.wav", folder / "low" / "low_009.wav")
    shutil.copy(folder / "low" / "low_000.png", folder / "low" / "low_010.png")
    (folder / "low" / "low_010.wav").write_bytes(BROKEN_WAV)
    stats = reviewed(qtbot, view, folder, session_path)
    assert stats["processed"] == 2 and stats["errors"] == 1
    assert "2 errors in the session (1 this run)" in view.progress_label.text()

    assert view.session_bar.retry_button.isEnabled()
    shutil.copy(spare, folder / "mid" / "mid_001.wav")
    shutil.copy(folder / "low" / "low_000.wav", folder / "low" / "low_010.wav")
    with qtbot.waitSignal(view.run_finished, timeout=TIMEOUT_MS) as finished:
        qtbot.mouseClick(view.session_bar.retry_button, Qt.MouseButton.LeftButton)
    assert finished.args[0]["processed"] == 2 and finished.args[0]["errors"] == 0
    assert view.session.summary()["errors"] == 0 and not view.session_bar.retry_button.isEnabled()
    view.shutdown()


def test_filters_do_not_carry_into_another_session(qtbot, tiny_model, review_folder, tmp_path) -> None:
    view = make_view(qtbot, tiny_model)
    reviewed(qtbot, view, review_folder, tmp_path / "one.qmfreview")
    view.set_filter(status="error")
    assert view.table_model.rowCount() == 0
    other = make_review_folder(tmp_path / "other", per_class=1)
    reviewed(qtbot, view, other, tmp_path / "two.qmfreview")
    assert view.filter_bar.combos["status"].currentText() == "(all)"
    assert view.table_model.rowCount() == 3
    view.set_filter(status="ok")
    view.open_session(tmp_path / "two.qmfreview")  # the same session again keeps what the user chose
    assert view.filter_bar.combos["status"].currentText() == "ok"
    view.shutdown()


def test_notes_save_as_typed_and_verdicts_and_notes_undo(qtbot, tiny_model, review_folder, tmp_path) -> None:
    view = make_view(qtbot, tiny_model)
    reviewed(qtbot, view, review_folder, tmp_path / "n.qmfreview")
    view.select_row(2)
    pair = view.current_pair().id
    view.detail.note_edit.setFocus()
    qtbot.keyClicks(view.detail.note_edit, "smudged")  # no Enter, the field keeps the focus
    qtbot.waitUntil(lambda: view.session.verdict(pair)["note"] == "smudged", timeout=5000)
    assert view.detail.note_edit.hasFocus()
    view.table.setFocus()
    qtbot.keyClick(view.table, Qt.Key.Key_R)
    assert view.session.verdict(pair) == {"verdict": "reject", "relabel": None, "note": "smudged"}

    view.undo()
    assert view.session.verdict(pair)["verdict"] is None
    assert view.table_model.index(2, column(view, "verdict")).data() == ""
    view.undo()  # the typed note is one step, not seven
    assert view.session.verdict(pair)["note"] == "" and view.detail.note_edit.text() == ""
    view.redo()
    view.redo()
    assert view.session.verdict(pair) == {"verdict": "reject", "relabel": None, "note": "smudged"}
    # an edit in the table's cell is undoable too
    view.table_model.setData(view.table_model.index(2, column(view, "verdict")), "accept")
    view.undo()
    assert view.session.verdict(pair)["verdict"] == "reject"
    view.shutdown()


def test_copy_rows_as_tsv_and_export_says_what_it_wrote(qtbot, tiny_model, review_folder, tmp_path) -> None:
    view = make_view(qtbot, tiny_model)
    assert "no review session is open" in view.export_chosen(None, "csv")
    assert view.message_bar.isVisible()
    reviewed(qtbot, view, review_folder, tmp_path / "c.qmfreview")
    sel = view.table.selectionModel()
    view.select_row(1)
    for r in (3, 4):
        sel.select(view.table_model.index(r, 0), QItemSelectionModel.SelectionFlag.Select
                   | QItemSelectionModel.SelectionFlag.Rows)
    view.table.setFocus()
    qtbot.keyClick(view.table, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    lines = QGuiApplication.clipboard().text().splitlines()
    assert lines[0].split("\t")[:3] == ["id", "label", "prediction"]
    assert [line.split("\t")[0] for line in lines[1:]] == [view.table_model.row_at(r).id for r in (1, 3, 4)]

    view.set_filter(label="mid")
    text = view.export_chosen(tmp_path / "mid.csv", "csv")
    assert str(tmp_path / "mid.csv") in text and "5 of 15 pairs" in text and "filter" in text
    assert len(read_csv_export(tmp_path / "mid.csv")) == 5
    view.set_filter(label="(all)")
    assert "all 15 pairs" in view.export_chosen(tmp_path / "all.json", "json")
    view.shutdown()


def test_layout_columns_sort_and_recent_sessions_are_remembered(qtbot, tiny_model, review_folder, tmp_path) -> None:
    settings = QSettings(str(tmp_path / "review.ini"), QSettings.Format.IniFormat)
    view = make_view(qtbot, tiny_model, settings)
    reviewed(qtbot, view, review_folder, tmp_path / "first.qmfreview")
    # at the default split every column of the table is on screen (no horizontal scrolling needed)
    header = view.table.horizontalHeader()
    assert view.table.width() >= 0.45 * view.splitter.width()
    status = column(view, "status")  # what a reviewer judges by is on screen, the numbers may scroll
    assert header.sectionPosition(status) + header.sectionSize(status) <= view.table.viewport().width()
    # the user widens the id column, sorts by fused probability and moves the split
    header.resizeSection(0, 231)
    view.table.sortByColumn(column(view, "probability"), Qt.SortOrder.DescendingOrder)
    view.splitter.setSizes([700, 600])
    view.splitter.splitterMoved.emit(700, 1)
    sizes = view.splitter.sizes()
    other = make_review_folder(tmp_path / "other", per_class=1)
    reviewed(qtbot, view, other, tmp_path / "second.qmfreview")
    view.shutdown()
    settings.sync()

    again = make_view(qtbot, tiny_model, QSettings(str(tmp_path / "review.ini"), QSettings.Format.IniFormat))
    assert [a.text for a in again.recent_session_actions()] == ["&1 second.qmfreview", "&2 first.qmfreview"]
    again.reopen_last_session()
    assert again.session.path.name == "second.qmfreview"
    assert again.table.horizontalHeader().sectionSize(0) == 231
    assert again.table_model.order_by == "probability" and again.table_model.descending
    assert again.splitter.sizes() == sizes
    again.shutdown()


def test_open_in_predict_hands_over_the_pair_and_the_run_reports_its_progress(qtbot, tiny_model, review_folder,
                                                                             tmp_path) -> None:
    view = make_view(qtbot, tiny_model)
    seen: list[str] = []
    view.runStatus.connect(seen.append)
    reviewed(qtbot, view, review_folder, tmp_path / "p.qmfreview")
    assert any(s.startswith("Review: ") and "/ 15 pairs" in s for s in seen) and seen[-1] == ""
    view.select_row(0)
    pair = view.current_pair()
    with qtbot.waitSignal(view.openPairInPredict) as sent:
        qtbot.mouseClick(view.detail.predict_button, Qt.MouseButton.LeftButton)
    assert sent.args[0] == {name: str(path) for name, path in pair.files.items()}
    view.shutdown()


def test_summary_histograms_use_the_themes_background(qtbot, tiny_model, review_folder, tmp_path) -> None:
    view = make_view(qtbot, tiny_model)
    reviewed(qtbot, view, review_folder, tmp_path / "h.qmfreview")
    view.tabs.setCurrentIndex(1)
    for plot, _bars in view.summary_panel.histograms.values():
        assert plot.backgroundBrush().color() == style.plot_background()
    view.shutdown()


@pytest.mark.parametrize("size", [(1352, 750), (1600, 900)])  # the default window's page, a larger screen's
def test_the_detail_pane_shows_its_charts_and_numbers_whole(qtbot, tiny_model, review_folder, tmp_path,
                                                            size) -> None:
    view = make_view(qtbot, tiny_model, size=size)
    reviewed(qtbot, view, review_folder, tmp_path / "d.qmfreview")
    view.select_row(0)
    qtbot.wait(50)
    result = view.detail.result_view
    table = result.table
    rows = sum(table.rowHeight(r) for r in range(table.rowCount()))
    assert table.rowCount() == 3 and table.viewport().height() >= rows  # every row of numbers, unscrolled
    columns = sum(table.columnWidth(c) for c in range(table.columnCount()))
    assert columns <= table.viewport().width()
    # the quality chart gets half the charts' row (its title and legend are cut when squeezed)
    assert result.quality_chart.width() >= 0.45 * result.charts.width()
    # and the pair's charts and numbers are on screen without scrolling the detail
    bottom = table.mapTo(view.detail.scroll.viewport(), table.rect().bottomLeft()).y()
    assert bottom <= view.detail.scroll.viewport().height() + 2
    assert view.detail.width() >= 0.4 * view.splitter.width()
    view.shutdown()
