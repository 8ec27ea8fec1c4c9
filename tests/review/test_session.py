"""Review sessions: verdicts survive reopen and rerun, thresholds re-flag from stored numbers, filters and sorting, format upgrades."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from app.qmf.predictor import Predictor
from app.review.flags import FlagThresholds
from app.review.session import SCHEMA_VERSION, ReviewSession, RowFilter
from app.review.sources import load_source
from tests.review.conftest import run_batch, write_manifest
from tests.synthetic import CLASSES


def test_verdicts_persist_across_reopen_and_survive_rerun(tiny_model: Path, review_folder: Path, tmp_path: Path,
                                                         capsys) -> None:
    session_path = tmp_path / "s.qmfreview"
    assert run_batch(tiny_model, review_folder, session_path) == 0
    with ReviewSession.open(session_path) as s:
        s.set_verdict("low/low_001", "accept", note="looks right")
        s.set_verdict("mid/mid_003", "relabel", relabel="high", note="it is diagonal")
        s.set_verdict("high/high_000", "reject")
    with ReviewSession.open(session_path) as s:
        assert s.verdict("low/low_001") == {"verdict": "accept", "relabel": None, "note": "looks right"}
        assert s.verdict("mid/mid_003") == {"verdict": "relabel", "relabel": "high", "note": "it is diagonal"}
        assert s.row("high/high_000").verdict == "reject"
        # pretend the session was made by another version of the model
        s.conn.execute("UPDATE meta SET value = ? WHERE key = 'model_sha256'", (json.dumps("0" * 64),))
    capsys.readouterr()
    assert run_batch(tiny_model, review_folder, session_path) == 1
    assert "--rerun" in capsys.readouterr().err
    assert run_batch(tiny_model, review_folder, session_path, "--rerun") == 0
    with ReviewSession.open(session_path) as s:
        assert s.model_sha256 == Predictor.load(tiny_model).sha256
        assert s.result_count() == 15
        assert s.verdict("mid/mid_003")["relabel"] == "high"
        assert s.summary()["verdicts"] == {"accept": 1, "relabel": 1, "reject": 1}


def test_changing_thresholds_recomputes_flags_without_the_model(tiny_model: Path, review_folder: Path,
                                                                tmp_path: Path) -> None:
    session_path = tmp_path / "s.qmfreview"
    assert run_batch(tiny_model, review_folder, session_path) == 0
    with ReviewSession.open(session_path) as s:
        s.set_thresholds(FlagThresholds(low_share=0.0, low_confidence=0.0, disagreement=False, label_mismatch=False))
        assert s.flag_counts() == {}
        s.set_thresholds(FlagThresholds(low_share=1.01, low_confidence=1.01))
        counts = s.flag_counts()
        assert counts["low-quality image"] == counts["low-quality audio"] == counts["low confidence"] == 15
        assert s.count(RowFilter(flag="low-quality image")) == 15
    with ReviewSession.open(session_path) as s:
        assert s.thresholds.low_share == 1.01


def test_filters_sorting_and_search(tiny_model: Path, review_folder: Path, tmp_path: Path) -> None:
    session_path = tmp_path / "s.qmfreview"
    assert run_batch(tiny_model, review_folder, session_path) == 0
    with ReviewSession.open(session_path) as s:
        assert s.count(RowFilter(label="mid")) == 5
        assert [r.id for r in s.rows(RowFilter(search="high_00"), limit=2)] == ["high/high_000", "high/high_001"]
        q = [r.modalities["image"]["quality"] for r in s.rows(order_by="image.quality", descending=True)]
        assert q == sorted(q, reverse=True)
        right = s.count(RowFilter(correctness="correct"))
        assert right + s.count(RowFilter(correctness="wrong")) == 15
        assert s.count(RowFilter(status="pending")) == 0


def test_a_format_1_session_is_upgraded_when_opened_and_keeps_its_results(tiny_model: Path, review_folder: Path,
                                                                           tmp_path: Path) -> None:
    session_path = tmp_path / "old.qmfreview"
    assert run_batch(tiny_model, review_folder, session_path) == 0
    with ReviewSession.open(session_path) as s:
        before = s.prediction_json("low/low_001")
        s.set_verdict("low/low_001", "accept")
    conn = sqlite3.connect(session_path)  # as QMF Studio wrote it before results kept late fusion
    conn.execute("ALTER TABLE results DROP COLUMN late_probabilities")
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with ReviewSession.open(session_path) as s:
        after = s.prediction_json("low/low_001")
        assert s.meta()["schema_version"] == SCHEMA_VERSION and s.verdict("low/low_001")["verdict"] == "accept"
        assert after["late_fusion"] == {"probabilities": []}
        assert {**after, "late_fusion": None} == {**before, "late_fusion": None}
        assert s.result_count() == 15
    # the upgraded file takes new results with late fusion
    assert run_batch(tiny_model, review_folder, session_path, "--rerun") == 0
    with ReviewSession.open(session_path) as s:
        assert len(s.prediction_json("low/low_001")["late_fusion"]["probabilities"]) == len(CLASSES)


def test_calibrated_model_flags_unfamiliar_inputs_instead_of_low_share(tiny_model: Path, review_folder: Path,
                                                                       tmp_path: Path) -> None:
    """With a calibrated model the flag follows the unfamiliar mark (also when re-flagged without the model)."""
    from app.data.manifest import read_manifest
    from app.qmf.calibration import calibrate_bundle

    src = load_source(review_folder, {"image": "image", "audio": "audio"}, CLASSES)
    rows = write_manifest(tmp_path / "cal.csv", [(p.id.replace("/", "_"), p.files["image"], p.files["audio"], p.label)
                                                  for p in src.pairs])
    calibrated = tmp_path / "cal.safetensors"
    # calibrated on the same clean pairs at the 50th percentile, so about half of the images are marked
    calibrate_bundle(tiny_model, read_manifest(rows, modalities=["image", "audio"]).rows, "cal.csv", 50.0, out=calibrated)
    session_path = tmp_path / "s.qmfreview"
    assert run_batch(calibrated, review_folder, session_path) == 0
    with ReviewSession.open(session_path) as s:
        counts = s.flag_counts()
        assert 0 < counts.get("unfamiliar image", 0) < 15
        assert "low-quality image" not in counts  # the share threshold is not used for a calibrated model
        before = counts["unfamiliar image"]
        s.set_thresholds(FlagThresholds(low_share=1.01, low_confidence=0.0))  # re-flag from stored numbers
        counts = s.flag_counts()
        assert counts["unfamiliar image"] == before and "low-quality image" not in counts
        s.set_thresholds(FlagThresholds(low_share=1.01, unfamiliar=False))  # mark off: back to the share threshold
        assert s.flag_counts()["low-quality image"] == 15
        # the stored JSON rebuilds the percentile and the mark from the stored quality and calibration
        row = s.row("low/low_000")
        stored = s.prediction_json("low/low_000")
        fresh = Predictor.load(calibrated).predict_files(row.files).to_json()
        for name in ("image", "audio"):
            assert stored["modalities"][name]["unfamiliar"] == fresh["modalities"][name]["unfamiliar"]
            assert abs(stored["modalities"][name]["quality_percentile"] - fresh["modalities"][name]["quality_percentile"]) < 1e-3
