"""The Review view driven end to end with pytest-qt: open a folder, run, browse, judge, export, reopen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.gui.review import ReviewView
from app.review.export import read_csv_export
from app.review.session import ReviewSession
from tests.review.conftest import make_review_folder

TIMEOUT_MS = 90_000


def make_view(qtbot, model: Path, in_process: bool = False) -> ReviewView:
    view = ReviewView(model_path_provider=lambda: model, batch_size=4, workers=1, in_process=in_process)
    qtbot.addWidget(view)
    view.resize(1200, 800)
    view.show()
    return view


def column(view: ReviewView, key: str) -> int:
    return [k for k, _ in view.table_model.columns].index(key)


def test_review_view_end_to_end(qtbot, tiny_model: Path, review_folder: Path, tmp_path: Path) -> None:
    view = make_view(qtbot, tiny_model)
    session_path = tmp_path / "gui.qmfreview"
    with qtbot.waitSignal(view.run_finished, timeout=TIMEOUT_MS) as finished:
        view.open_source(review_folder, session_path)
    assert finished.args[0]["done"] == 15 and finished.args[0]["errors"] == 0
    assert view.table_model.rowCount() == 15
    assert "15 / 15" in view.progress_label.text() or "finished" in view.progress_label.text()

    # selecting a row shows that pair with the shared result view
    view.table.setFocus()
    view.select_row(4)
    pair = view.current_pair()
    assert pair is not None and pair.id == view.table_model.row_at(4).id
    assert view.detail.result_view.prediction["label"] == pair.prediction
    assert set(view.detail.result_view.table_values()) >= {"image", "audio", "fused"}

    # verdict and note are saved at once; the table shows them
    qtbot.keyClick(view.table, Qt.Key.Key_R)
    view.set_note("blurry bar")
    assert view.table_model.index(4, column(view, "verdict")).data() == "reject"
    assert view.table_model.index(4, column(view, "note")).data() == "blurry bar"
    # in-place editing through the model (what the delegate does)
    view.table_model.setData(view.table_model.index(5, column(view, "verdict")), "relabel → high")
    relabelled = view.table_model.row_at(5).id

    # N goes to the next flagged pair (all pairs of the tiny model are flagged "low confidence")
    qtbot.keyClick(view.table, Qt.Key.Key_N)
    assert view.table.currentIndex().row() == 5
    qtbot.keyClick(view.table, Qt.Key.Key_N, Qt.KeyboardModifier.ShiftModifier)
    assert view.table.currentIndex().row() == 4

    # filters and search are SQL; sorting by a column too
    view.set_filter(label="mid")
    assert view.table_model.rowCount() == 5
    view.set_filter(label="(all)", search="high_00")
    assert view.table_model.rowCount() == 5
    view.set_filter(search="")
    view.table.sortByColumn(column(view, "probability"), Qt.SortOrder.DescendingOrder)
    probs = [float(view.table_model.index(r, column(view, "probability")).data()) for r in range(15)]
    assert probs == sorted(probs, reverse=True)
    view.set_filter(verdict="reject")
    assert view.table_model.rowCount() == 1

    # thresholds: turning flags off empties the flag filter
    view.set_filter(verdict="(all)", flag="(any flag)")
    assert view.table_model.rowCount() == 15
    view.threshold_bar.low_confidence.setValue(0.0)
    view.threshold_bar.flag_disagreement.setChecked(False)
    view.threshold_bar.flag_mismatch.setChecked(False)
    view.threshold_bar.low_share.setValue(0.0)
    qtbot.waitUntil(lambda: view.table_model.rowCount() == 0, timeout=5000)
    view.set_filter(flag="(all)")

    # summary: accuracy, confusion matrix, one histogram per input, counts
    view.tabs.setCurrentIndex(1)
    summary = view.summary_panel.summary
    assert summary["done"] == 15 and summary["labelled"] == 15
    assert view.summary_panel.confusion.rowCount() == 3
    qtbot.waitUntil(lambda: not view.summary_panel.histograms_pending, timeout=10000)  # counted off the GUI thread
    assert sum(view.summary_panel.histogram_counts("image")) == 15
    assert sum(view.summary_panel.histogram_counts("audio")) == 15

    # export what the table shows
    out = view.export(tmp_path / "table.csv")
    rows = read_csv_export(out)
    assert len(rows) == 15 and sorted(r["verdict"] or "" for r in rows)[-2:] == ["reject", "relabel"]
    data = json.loads(view.export(tmp_path / "table.json").read_text())
    assert len(data["pairs"]) == 15
    rejected = pair.id
    view.shutdown()

    # reopen: the verdicts are still there
    again = make_view(qtbot, tiny_model)
    again.open_session(session_path)
    assert again.table_model.rowCount() == 15
    assert not again.message_bar.isVisible()
    with ReviewSession.open(session_path) as s:
        assert s.verdict(rejected) == {"verdict": "reject", "relabel": None, "note": "blurry bar"}
        assert s.verdict(relabelled)["relabel"] == "high"
    again.set_filter(verdict="reject")
    assert again.table_model.rowCount() == 1
    again.select_row(0)
    assert again.detail.note_edit.text() == "blurry bar"
    again.shutdown()


def test_review_view_pause_cancel_resume_and_model_mismatch(qtbot, tiny_model: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    folder = make_review_folder(tmp_path / "pairs", per_class=8)
    monkeypatch.setenv("QMF_REVIEW_BATCH_DELAY", "0.1")
    view = make_view(qtbot, tiny_model)
    session_path = tmp_path / "run.qmfreview"
    view.open_source(folder, session_path)
    qtbot.waitUntil(lambda: view.progress_bar.value() >= 4, timeout=TIMEOUT_MS)
    view.toggle_pause()
    assert view.worker.control.paused and view.pause_button.text() == "Continue"
    qtbot.wait(400)
    paused_at = view.progress_bar.value()
    qtbot.wait(400)
    assert view.progress_bar.value() <= paused_at + 4  # at most the batch in hand finishes
    with qtbot.waitSignal(view.run_finished, timeout=TIMEOUT_MS) as finished:
        view.cancel_run()
    assert finished.args[0]["cancelled"]
    done = finished.args[0]["done"]
    assert 4 <= done < 24
    assert view.message_bar.isVisible() and view.message_bar.button.text() == "Resume"

    monkeypatch.delenv("QMF_REVIEW_BATCH_DELAY")
    with qtbot.waitSignal(view.run_finished, timeout=TIMEOUT_MS) as finished:
        qtbot.mouseClick(view.message_bar.button, Qt.MouseButton.LeftButton)
    assert finished.args[0]["done"] == 24 and finished.args[0]["processed"] == 24 - done
    with ReviewSession.open(session_path) as s:
        assert s.result_count() == 24
        s.set_verdict(s.rows(limit=1)[0].id, "accept", note="kept")
        # pretend another version of the model made this session
        s.conn.execute("UPDATE meta SET value = ? WHERE key = 'model_sha256'", (json.dumps("f" * 64),))
    view.shutdown()

    other = make_view(qtbot, tiny_model, in_process=True)  # the same run in a thread of the app
    other.open_session(session_path)
    with qtbot.waitSignal(other.run_failed, timeout=TIMEOUT_MS):
        other.start_run()
    assert other.message_bar.isVisible() and other.message_bar.button.text() == "Re-run with this model"
    with qtbot.waitSignal(other.run_finished, timeout=TIMEOUT_MS) as finished:
        qtbot.mouseClick(other.message_bar.button, Qt.MouseButton.LeftButton)
    assert finished.args[0]["processed"] == 24
    assert other.session.verdict(other.session.rows(limit=1)[0].id)["note"] == "kept"
    other.shutdown()


def test_error_row_shows_the_reason_without_widening_the_window(qtbot, tiny_model: Path, tmp_path: Path) -> None:
    folder = make_review_folder(tmp_path / "pairs", per_class=2)
    broken = folder / "mid" / "mid_001.wav"
    broken.write_bytes(b"RIFF" + b"\x00" * 40 + b" not a recording, and a long enough name " * 4)
    view = make_view(qtbot, tiny_model, in_process=True)
    with qtbot.waitSignal(view.run_finished, timeout=TIMEOUT_MS) as finished:
        view.open_source(folder, tmp_path / "errors.qmfreview")
    assert finished.args[0]["errors"] == 1 and finished.args[0]["done"] == 6
    width = view.window().width()
    ids = [view.table_model.row_at(r).id for r in range(view.table_model.rowCount())]
    view.select_row(ids.index("mid/mid_001"))
    qtbot.wait(50)
    result = view.detail.result_view
    assert result.prediction is None
    assert "could not be predicted" in result.headline.text()
    assert "mid_001.wav" in result.detail.text() and "&#" not in result.detail.text()  # file and reason, in full
    assert view.minimumSizeHint().width() <= width and view.window().width() == width
    view.shutdown()


def test_a_row_click_decodes_the_pair_off_the_gui_thread(qtbot, tiny_model: Path, review_folder: Path,
                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The numbers show at once; the previews follow from the decoder's thread, never the GUI thread's."""
    import threading

    from app.modalities.image import ImageModality

    view = make_view(qtbot, tiny_model, in_process=True)
    with qtbot.waitSignal(view.run_finished, timeout=TIMEOUT_MS):
        view.open_source(review_folder, tmp_path / "p.qmfreview")
    readers: list[str] = []
    real_load = ImageModality.load
    monkeypatch.setattr(ImageModality, "load",
                        lambda self, path: readers.append(threading.current_thread().name) or real_load(self, path))
    previews = view.detail.result_view.previews

    def shows(expected) -> bool:
        shown = previews["image"].shown
        return shown is not None and shown.shape == expected.shape and bool((shown == expected).all())

    for row in (2, 7):
        view.select_row(row)
        pair = view.current_pair()
        assert view.detail.result_view.prediction["label"] == pair.prediction  # at once, no decoding
        expected = real_load(ImageModality(view.session.manifest_modalities[0].get("preprocessing")), pair.files["image"])
        qtbot.waitUntil(lambda expected=expected: shows(expected), timeout=10_000)
    assert readers and threading.main_thread().name not in readers
    view.shutdown()


def test_the_previous_pairs_previews_do_not_stay_when_the_new_ones_do_not_come(qtbot, tiny_model: Path,
                                                                              review_folder: Path, tmp_path: Path):
    """They stay a moment (the new pair's come within it as a rule, and clearing first repaints them
    twice), then go: a pair's numbers never sit under another pair's pictures for long."""
    view = make_view(qtbot, tiny_model, in_process=True)
    with qtbot.waitSignal(view.run_finished, timeout=TIMEOUT_MS):
        view.open_source(review_folder, tmp_path / "p.qmfreview")
    previews = view.detail.result_view.previews
    view.select_row(2)
    qtbot.waitUntil(lambda: previews["image"].shown is not None, timeout=10_000)
    view.decoder.decode = lambda *args: None  # this pair's files are never decoded
    view.select_row(7)
    assert view.detail.result_view.prediction["label"] == view.current_pair().prediction
    qtbot.waitUntil(lambda: previews["image"].shown is None, timeout=5_000)
    view.shutdown()


def test_the_table_paints_its_cells_as_qts_own_delegate_would(qtbot, tiny_model: Path, tmp_path: Path) -> None:
    """`CellPainter` draws each cell in one Python call; what a person sees is what Qt's delegate draws
    from `data()`: the texts, right-aligned numbers, the error row and the correct column's colours,
    the selected row's highlight."""
    from PySide6.QtWidgets import QStyledItemDelegate

    from app.gui.review.table_model import CellPainter

    folder = make_review_folder(tmp_path / "pairs", per_class=2)
    (folder / "mid" / "mid_001.wav").write_bytes(b"RIFF" + b"\x00" * 40)  # one error row, drawn in red
    view = make_view(qtbot, tiny_model, in_process=True)
    with qtbot.waitSignal(view.run_finished, timeout=TIMEOUT_MS):
        view.open_source(folder, tmp_path / "paint.qmfreview")
    view.select_row(1)
    qtbot.wait(50)
    table = view.table
    assert isinstance(table.itemDelegate(), CellPainter)
    ours = table.viewport().grab().toImage()
    verdict = column(view, "verdict")
    table.setItemDelegate(QStyledItemDelegate(table))
    table.setItemDelegateForColumn(verdict, QStyledItemDelegate(table))
    qtbot.wait(50)
    qts = table.viewport().grab().toImage()
    assert ours.size() == qts.size()
    differ = 0  # pixels not the same (sampled)
    for y in range(0, qts.height(), 2):
        for x in range(0, qts.width(), 2):
            a, b = ours.pixelColor(x, y), qts.pixelColor(x, y)
            if abs(a.red() - b.red()) + abs(a.green() - b.green()) + abs(a.blue() - b.blue()) > 90:
                differ += 1
    assert differ <= 0.001 * (qts.width() // 2) * (qts.height() // 2), differ
    view.shutdown()


def test_on_a_narrow_window_the_session_bar_takes_two_rows_and_every_button_stays_in_view(qtbot, tiny_model: Path) -> None:
    """1366 pixels at 125 % scaling is about 1,090 wide: the buttons wrap instead of the page scrolling sideways."""
    view = make_view(qtbot, tiny_model)
    bar = view.session_bar
    buttons = [w for group in bar._groups() for w in group]
    view.resize(bar.one_row_width() + 60, 700)
    qtbot.waitUntil(lambda: bar.two_rows is False and len({b.geometry().center().y() for b in buttons}) == 1)  # one row
    assert view.minimumSizeHint().width() <= 1000
    view.resize(1000, 700)
    qtbot.waitUntil(lambda: bar.two_rows is True and len({b.geometry().center().y() for b in buttons}) == 2)
    for b in buttons + [bar.progress_bar, bar.progress_label]:
        assert bar.rect().contains(b.geometry()), b.text() if hasattr(b, "text") else b
    rects = [b.geometry() for b in buttons]
    assert not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1:])
    assert bar.export_csv_button.geometry().top() == bar.open_folder_button.geometry().top()
    assert bar.run_button.geometry().top() > bar.open_folder_button.geometry().top()
    view.resize(1400, 700)
    qtbot.waitUntil(lambda: bar.two_rows is False)
    view.shutdown()
