"""`qmf batch` lists large writes of results set by set (session_listing.unlist_results / list_results)
and keeps the cycle collector quiet while it runs (app.review.collector): a session written that way
opens, lists, sorts, filters, counts and resumes as one written by the per-row triggers, a run killed
mid-way leaves a session that opens whole and resumes, and the process collects as before after it
(what was frozen stays frozen)."""

from __future__ import annotations

import gc
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app.review import session_listing
from app.review.collector import quiet_collector
from app.review.session import ReviewSession, RowFilter
from tests.review.conftest import kill_once_committed, make_review_folder, run_batch
from tests.review.test_session_scale import SORT_KEYS, assert_listing_is_what_a_rebuild_makes

_FILTERS = [RowFilter(), RowFilter(status="error"), RowFilter(status="ok"), RowFilter(flag="low confidence"),
            RowFilter(correctness="wrong"), RowFilter(label="mid"), RowFilter(search="_00")]


def _view(path: Path) -> dict:
    """What the Review table and the summary show of a session: every sort order both ways, the
    filters' counts and rows, each row's values, the summary."""
    with ReviewSession.open(path) as s:
        assert session_listing.has_listing(s.conn, s.modality_names)
        assert session_listing.indexes_complete(s.conn, s.modality_names)
        assert_listing_is_what_a_rebuild_makes(s)
        rows = {r.id: (r.status, r.error, r.prediction, r.probability, r.correct, r.flags, r.modalities, r.label)
                for r in s.rows()}
        orders = {(key, desc): [r.id for r in s.rows(order_by=key, descending=desc)]
                  for key in SORT_KEYS if key != "seconds" for desc in (False, True)}
        counts = {repr(f): (s.count(f), [r.id for r in s.rows(f)]) for f in _FILTERS}
        summary = s.summary()
    return {"rows": rows, "orders": orders, "counts": counts, "summary": summary}


def test_a_session_listed_set_by_set_shows_what_the_triggers_show(tiny_model: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    folder = make_review_folder(tmp_path / "pairs", per_class=8)
    (folder / "mid" / "mid_003.wav").write_bytes(b"RIFF not really a wave file")
    monkeypatch.setattr(session_listing, "SET_RESULTS", 10**9)  # every write listed by the triggers
    assert run_batch(tiny_model, folder, tmp_path / "rows.qmfreview", "--batch-size", "4") == 0
    monkeypatch.setattr(session_listing, "SET_RESULTS", 1)  # every write listed set by set
    assert run_batch(tiny_model, folder, tmp_path / "sets.qmfreview", "--batch-size", "4") == 0
    by_rows, by_sets = _view(tmp_path / "rows.qmfreview"), _view(tmp_path / "sets.qmfreview")
    assert by_sets == by_rows
    assert by_sets["counts"][repr(RowFilter(status="error"))][1] == ["mid/mid_003"]


_KILLED_RUN = """
import sys
from app.review import runner, session_listing
runner.MIN_PAIRS_FOR_PROCESSES = 1  # a short run, as if it were long
session_listing.SET_RESULTS = 1  # each batch's write listed set by set
import app.cli
sys.exit(app.cli.main(sys.argv[1:]))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_bulk_run_killed_mid_way_leaves_a_whole_session_that_resumes(tiny_model: Path, tmp_path: Path) -> None:
    """Killed between (or inside) its set-by-set writes, a new session's bulk run leaves a file whose
    listing is whole (its triggers there, its counts those of the committed results); the same command
    finishes it, and the session then shows what an uninterrupted run's shows."""
    root = Path(__file__).resolve().parents[2]
    folder = make_review_folder(tmp_path / "pairs", per_class=12)
    session = tmp_path / "killed.qmfreview"
    cmd = [sys.executable, "-c", _KILLED_RUN, "batch", "--model", str(tiny_model), "--folder", str(folder),
           "--session", str(session), "--batch-size", "2", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(root), "QMF_REVIEW_BATCH_DELAY": "0.1"}
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kill_once_committed(proc, session, 6)
    with sqlite3.connect(session) as db:  # as the kill left it, before any open repairs it
        triggers = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert {"listing_result_added", "listing_m0_added", "listing_group_changed"} <= triggers
    with ReviewSession.open(session) as s:  # builds the sort indexes the bulk run had dropped, nothing else
        assert 6 <= s.result_count() < 36
        assert s.count(RowFilter(status="pending")) == 36 - s.result_count()
        assert_listing_is_what_a_rebuild_makes(s)
    env.pop("QMF_REVIEW_BATCH_DELAY")
    again = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stderr
    assert run_batch(tiny_model, folder, tmp_path / "whole.qmfreview", "--batch-size", "2") == 0
    resumed, whole = _view(session), _view(tmp_path / "whole.qmfreview")
    assert resumed == whole
    assert resumed["summary"]["done"] == 36


def test_the_collector_is_as_it_was_after_a_run() -> None:
    before = (gc.get_threshold(), gc.isenabled(), gc.get_freeze_count())
    with quiet_collector() as settled:
        assert not gc.isenabled()  # no collection while the pairs are read and stored
        kept = [[i] for i in range(1000)]
        settled()
        assert gc.get_freeze_count() >= len(kept)  # what lives now is never walked again
        assert gc.get_threshold()[0] >= before[0][0]
        assert gc.isenabled() == before[1]
    assert (gc.get_threshold(), gc.isenabled()) == before[:2]
    with pytest.raises(OSError), quiet_collector():
        raise OSError("the source went away")
    assert (gc.get_threshold(), gc.isenabled()) == before[:2]
