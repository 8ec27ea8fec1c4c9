"""The Review view and the cluster's formats: the Parquet export, and opening a Ray results folder
(File ▸ Open results folder…, or dropped on the window) into a session, with progress and Cancel.

The results folders are made by `tests.review.results_dirs` (the run file and shards `qmf batch
--engine ray` writes, scored by the real model in this process): pyarrow is needed, Ray is not.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from app.review.export import read_csv_export
from app.review.session import ReviewSession
from tests.review.results_dirs import make_pairs_manifest, write_results_dir

needs_arrow = pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None,
                                 reason="pyarrow not installed (pip install qmf-studio[distributed])")
TIMEOUT_MS = 60_000
PAIRS, SHARD = 12, 4  # three shards


def make_view(qtbot, model: Path):
    from app.gui.review import ReviewView

    view = ReviewView(model_path_provider=lambda: model, batch_size=4, workers=1)
    qtbot.addWidget(view)
    view.resize(1200, 800)
    view.show()
    return view


@pytest.fixture
def results(tmp_path: Path, tiny_model: Path) -> dict:
    manifest = make_pairs_manifest(tmp_path / "in", PAIRS)
    return {"dir": tmp_path / "results", "manifest": manifest, "model": tiny_model}


def open_and_wait(qtbot, view, folder: Path, session: Path | None = None) -> None:
    with qtbot.waitSignal(view.session_opened, timeout=TIMEOUT_MS):
        assert view.results_folder.open(folder, session) is None


@needs_arrow
def test_parquet_export_button_writes_the_csv_rows_with_the_batch_schema(qtbot, results, monkeypatch, tmp_path):
    import pyarrow.parquet as pq

    from app.gui.review import session_bar
    from app.review.parquet import result_columns

    write_results_dir(results["dir"], results["model"], results["manifest"], SHARD)
    view = make_view(qtbot, results["model"])
    open_and_wait(qtbot, view, results["dir"])
    view.session.set_verdict("pair_004", "reject", note="smudged")
    view.set_filter(label="mid")  # the export writes the table as shown
    out = tmp_path / "table.parquet"
    asked = []
    monkeypatch.setattr(session_bar.QFileDialog, "getSaveFileName",
                        lambda *a, **k: (asked.append(a[3]), (str(out), ""))[1])
    qtbot.mouseClick(view.session_bar.export_parquet_button, Qt.MouseButton.LeftButton)
    assert asked == ["Parquet (*.parquet)"]
    assert f"Exported 4 of {PAIRS} pairs (the filter applied) to {out}" in view.message_bar.label.text()
    view.export_chosen(tmp_path / "table.csv", "csv")

    table = pq.read_table(out)
    assert table.column_names == result_columns(["image", "audio"])  # the columns of qmf batch --parquet
    rows, csv_rows = table.to_pylist(), read_csv_export(tmp_path / "table.csv")
    assert [r["id"] for r in rows] == [r["id"] for r in csv_rows] == ["pair_001", "pair_004", "pair_007", "pair_010"]
    for got, want in zip(rows, csv_rows, strict=True):
        for col, value in want.items():  # every CSV column, with the CSV's value
            assert got[col] == (pytest.approx(value) if isinstance(value, float) else value), (got["id"], col)
    assert rows[1]["verdict"] == "reject" and rows[1]["note"] == "smudged"
    view.shutdown()


def test_without_pyarrow_the_parquet_export_says_what_to_install(qtbot, tiny_model, review_folder, monkeypatch,
                                                                 tmp_path):
    from app.gui.review import session_bar

    view = make_view(qtbot, tiny_model)
    with qtbot.waitSignal(view.run_finished, timeout=90_000):
        view.open_source(review_folder, tmp_path / "s.qmfreview")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow -> ImportError, as on a base install
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    dialogs = []
    monkeypatch.setattr(session_bar.QFileDialog, "getSaveFileName", lambda *a, **k: dialogs.append(a) or ("", ""))
    qtbot.mouseClick(view.session_bar.export_parquet_button, Qt.MouseButton.LeftButton)
    text = view.message_bar.label.text()
    assert "pip install qmf-studio[distributed]" in text and "\n" not in text
    assert dialogs == []  # said before asking for a file, not after
    assert view.export_chosen(tmp_path / "t.csv", "csv").startswith("Exported")  # CSV still works
    view.shutdown()


@needs_arrow
def test_dropping_a_results_folder_opens_it_and_a_grown_folder_adds_only_new_shards(qtbot, window, results,
                                                                                     monkeypatch):
    from app.gui.actions import MENUS

    assert any(getattr(a, "slot", None) == "window.open_results_folder_dialog" for a in MENUS[0].items)
    folder = results["dir"]
    write_results_dir(folder, results["model"], results["manifest"], SHARD, shards=[0, 2])  # a killed run
    session_path = folder.parent / "results.qmfreview"  # beside the folder

    def drop() -> None:
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(folder))])
        window.dropEvent(QDropEvent(QPointF(200, 200), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                    Qt.KeyboardModifier.NoModifier))

    with qtbot.waitSignal(window.review.session_opened, timeout=TIMEOUT_MS):
        drop()
    view = window.review
    assert window.tabs.currentIndex() == 1 and view.session.path == session_path
    assert view.table_model.rowCount() == 8
    assert "unfinished: 1 shards are not written yet" in view.message_bar.label.text()
    view.session.set_verdict("pair_001", "accept", note="fine")

    # opened again unchanged: the session as it is, no shard read
    from app.review import results_dir as rd

    read = []
    real_read, real_first = rd.read_results, rd._first_id
    monkeypatch.setattr(rd, "read_results", lambda p: read.append(Path(p).name) or real_read(p))
    monkeypatch.setattr(rd, "_first_id", lambda p: read.append(f"id of {Path(p).name}") or real_first(p))
    assert view.results_folder.open(folder) is None
    assert view.results_folder.worker is None and read == []
    assert view.table_model.rowCount() == 8 and "is up to date" in window.statusBar().currentMessage()

    # the run was resumed and wrote the missing shard: only that one is read and added
    write_results_dir(folder, results["model"], results["manifest"], SHARD, shards=[1])
    with qtbot.waitSignal(view.session_opened, timeout=TIMEOUT_MS):
        drop()
    assert [n for n in read if not n.startswith("id of")] == ["shard-000001.parquet"]
    assert view.table_model.rowCount() == PAIRS and view.session.pending_count() == 0
    assert f"Imported {SHARD} pairs" in window.statusBar().currentMessage()
    assert view.session.verdict("pair_001") == {"verdict": "accept", "relabel": None, "note": "fine"}
    ids = [r.id for r in view.session.rows(limit=100)]
    assert sorted(ids) == [f"pair_{i:03d}" for i in range(PAIRS)]  # each pair once (the late shard comes last)


@needs_arrow
def test_cancel_stops_between_shards_and_opening_again_imports_the_rest(qtbot, results, tmp_path, monkeypatch):
    from app.gui.review import results_folder

    class CancelledAfterOneShard(results_folder.ResultsImport):
        """Cancel as soon as the first shard is in, in the import's own thread (no second shard slips in)."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.progress.connect(lambda *_: self.cancel(), Qt.ConnectionType.DirectConnection)

    write_results_dir(results["dir"], results["model"], results["manifest"], SHARD)
    view = make_view(qtbot, results["model"])
    session = tmp_path / "chosen.qmfreview"  # where the dialog's answer would put it
    monkeypatch.setattr(results_folder, "ResultsImport", CancelledAfterOneShard)
    assert view.results_folder.open(results["dir"], session) is None
    assert view.message_bar.button.text() == "Cancel" and view.message_bar._action == view.results_folder.cancel
    with qtbot.waitSignal(view.session_opened, timeout=TIMEOUT_MS):
        pass
    assert "Import cancelled after 1 shards (4 pairs added)" in view.message_bar.label.text()
    assert view.table_model.rowCount() == SHARD
    monkeypatch.undo()  # the next import runs to its end
    open_and_wait(qtbot, view, results["dir"], session)
    assert view.table_model.rowCount() == PAIRS
    with ReviewSession.open(session) as s:
        assert s.pair_count() == PAIRS and s.pending_count() == 0
    view.shutdown()


@needs_arrow
def test_a_folder_that_is_not_a_results_folder_or_of_a_newer_schema_is_one_line(qtbot, results, tmp_path):
    from app.review.results_dir import RUN_FILE

    view = make_view(qtbot, results["model"])
    plain = tmp_path / "plain"
    plain.mkdir()
    text = view.results_folder.open(plain)
    assert text == f"{plain}: not a QMF results folder (no {RUN_FILE}); make one with qmf batch --engine ray --out DIR"
    assert view.message_bar.label.text() == f"Cannot open the results folder: {text}"
    write_results_dir(results["dir"], results["model"], results["manifest"], SHARD, shards=[0])
    run = results["dir"] / RUN_FILE
    info = json.loads(run.read_text())
    run.write_text(json.dumps({**info, "results_schema_version": 99}))
    text = view.results_folder.open(results["dir"])
    assert "results schema 99 is newer than this QMF Studio reads (1); update QMF Studio" in text
    assert "\n" not in text and view.session is None
    assert not (tmp_path / "results.qmfreview").exists()
    view.shutdown()


@needs_arrow
def test_closing_the_page_during_an_import_stops_it_and_keeps_whole_shards(qtbot, results, tmp_path):
    write_results_dir(results["dir"], results["model"], results["manifest"], SHARD)
    view = make_view(qtbot, results["model"])
    session = tmp_path / "closing.qmfreview"
    assert view.results_folder.open(results["dir"], session) is None
    view.shutdown()  # what quitting the app does
    assert view.results_folder.worker is None and view.session is None
    qtbot.wait(50)  # nothing queued by the stopped import reopens a session afterwards
    assert view.session is None
    if session.exists():  # the shards imported before the stop are whole
        with ReviewSession.open(session) as s:
            assert s.pair_count() % SHARD == 0 and s.pending_count() == 0
