"""The batch runner: results equal `qmf predict`, a broken file is one error row, a killed run resumes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from app.cli import main as qmf
from app.qmf.predictor import Predictor
from app.review.runner import BatchRunner
from app.review.session import ReviewSession, RowFilter
from app.review.workflow import prepare_session
from tests.review.conftest import assert_same_json, make_review_folder, run_batch
from tests.synthetic import CLASSES

ROOT = Path(__file__).resolve().parents[2]


def test_batch_rows_equal_qmf_predict(tiny_model: Path, review_folder: Path, tmp_path: Path, capsys) -> None:
    session_path = tmp_path / "s.qmfreview"
    assert run_batch(tiny_model, review_folder, session_path, "--batch-size", "4", "--workers", "2") == 0
    out = capsys.readouterr().out
    assert "15 done" in out
    predictor = Predictor.load(tiny_model)
    with ReviewSession.open(session_path) as s:
        rows = s.rows()
        assert len(rows) == 15 and all(r.status == "ok" for r in rows)
        assert len({r.id for r in rows}) == 15
        for r in rows:
            want = predictor.predict_files(r.files).to_json()
            got = s.prediction_json(r.id)
            # the whole JSON, late fusion included; only the time differs (batch vs one pair)
            assert got.pop("seconds") > 0 and want.pop("seconds") > 0
            assert_same_json(got, want)
            assert len(got["late_fusion"]["probabilities"]) == len(CLASSES)
            assert r.correct == (r.label == want["label"])
        summary = s.summary()
        assert summary["labelled"] == 15
        assert sum(map(sum, summary["confusion"]["matrix"])) == 15
    # the same command again resumes: nothing new, no duplicates
    assert run_batch(tiny_model, review_folder, session_path) == 0
    with ReviewSession.open(session_path) as s:
        assert s.result_count() == 15 and s.pair_count() == 15


def test_corrupt_file_mid_batch_is_an_error_row_and_the_batch_goes_on(tiny_model: Path, review_folder: Path,
                                                                      tmp_path: Path) -> None:
    bad = review_folder / "mid" / "mid_002.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not really an image")
    predictor = Predictor.load(tiny_model)
    prepared = prepare_session(tmp_path / "s.qmfreview", predictor, review_folder, tiny_model)
    with prepared.session as s:
        stats = BatchRunner(predictor, s, batch_size=4, workers=2).run()
        assert stats.processed == 15 and stats.errors == 1
        errors = s.rows(RowFilter(status="error"))
        assert [r.id for r in errors] == ["mid/mid_002"]
        assert "mid_002.png" in errors[0].error and errors[0].flags == ["error"]
        assert s.count(RowFilter(status="ok")) == 14
        s.set_verdict("mid/mid_002", "reject", note="broken scan")

    # the analyst replaces the broken file: a plain resume leaves the error, --retry-errors redoes it
    bad.write_bytes((review_folder / "mid" / "mid_001.png").read_bytes())
    session_path = tmp_path / "s.qmfreview"
    assert qmf(["batch", "--model", str(tiny_model), "--folder", str(review_folder), "--session", str(session_path),
                "--quiet"]) == 0
    with ReviewSession.open(session_path) as s:
        assert s.count(RowFilter(status="error")) == 1
    assert qmf(["batch", "--model", str(tiny_model), "--folder", str(review_folder), "--session", str(session_path),
                "--quiet", "--retry-errors"]) == 0
    with ReviewSession.open(session_path) as s:
        assert s.count(RowFilter(status="error")) == 0 and s.count(RowFilter(status="ok")) == 15
        assert s.pair_count() == 15 and s.result_count() == 15
        assert s.verdict("mid/mid_002")["note"] == "broken scan"  # the analyst's words survive the retry


def test_sigkill_mid_run_then_resume_gives_exactly_one_row_per_pair(tiny_model: Path, tmp_path: Path) -> None:
    folder = make_review_folder(tmp_path / "many", per_class=20)
    session_path = tmp_path / "killed.qmfreview"
    cmd = [sys.executable, "-m", "app.cli", "batch", "--model", str(tiny_model), "--folder", str(folder),
           "--session", str(session_path), "--batch-size", "3", "--workers", "1", "--quiet"]
    env = {**os.environ, "QMF_REVIEW_BATCH_DELAY": "0.15", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    done = 0
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if session_path.exists():
                try:
                    with sqlite3.connect(session_path, timeout=5) as db:
                        done = db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
                except sqlite3.OperationalError:
                    done = 0  # schema not created yet
                if done >= 9:
                    break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    with ReviewSession.open(session_path) as s:
        partial = s.result_count()
    assert 9 <= partial < 60
    env.pop("QMF_REVIEW_BATCH_DELAY")
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "resuming" in result.stderr
    with ReviewSession.open(session_path) as s:
        assert s.pair_count() == 60 and s.result_count() == 60
        ids = [r.id for r in s.rows()]
        assert len(ids) == len(set(ids)) == 60
        assert all(r.status == "ok" for r in s.rows())
