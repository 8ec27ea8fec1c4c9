"""Exports: CSV round-trips and restores verdicts, JSON holds every pair, files are shared 0644."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.qmf.predictor import Predictor
from app.review.export import export_csv, export_json, import_verdicts, read_csv_export, row_dict
from app.review.session import ReviewSession
from app.review.workflow import prepare_session
from tests.review.conftest import run_batch


def test_csv_export_round_trips_and_json_export(tiny_model: Path, review_folder: Path, tmp_path: Path) -> None:
    session_path = tmp_path / "s.qmfreview"
    csv_path = tmp_path / "out.csv"
    assert run_batch(tiny_model, review_folder, session_path) == 0
    with ReviewSession.open(session_path) as s:
        s.set_verdict("low/low_002", "reject", note='comma, "quotes"\nand a newline')
        s.set_verdict("high/high_004", "relabel", relabel="mid")
        export_csv(s, csv_path)
        back = read_csv_export(csv_path)
        rows = s.rows()
        assert len(back) == len(rows) == 15
        for rec, row in zip(back, rows, strict=True):
            d = row_dict(row, s.modality_names)
            assert rec["id"] == d["id"] and rec["label"] == d["label"] and rec["prediction"] == d["prediction"]
            assert rec["probability"] == d["probability"]  # exact: floats are written with repr
            assert rec["correct"] == d["correct"] and rec["flags"] == d["flags"]
            assert (rec["verdict"], rec["relabel"], rec["note"]) == (d["verdict"], d["relabel"], d["note"])
            for m in s.modality_names:
                assert rec[f"{m}_quality"] == d["modalities"][m]["quality"]
                assert rec[f"{m}_file"] == d["modalities"][m]["file"]
        data = json.loads(export_json(s, tmp_path / "out.json").read_text())
        assert len(data["pairs"]) == 15 and data["model"]["sha256"] == s.model_sha256
    # exports are ordinary shared files like every other output (they were once created 0600)
    assert {(tmp_path / n).stat().st_mode & 0o777 for n in ("out.csv", "out.json")} == {0o644}
    # the exported verdicts and notes restore a fresh session of the same pairs
    predictor = Predictor.load(tiny_model)
    with prepare_session(tmp_path / "fresh.qmfreview", predictor, review_folder, tiny_model).session as fresh:
        assert import_verdicts(fresh, csv_path) == 15
        assert fresh.verdict("low/low_002") == {"verdict": "reject", "relabel": None,
                                                "note": 'comma, "quotes"\nand a newline'}
        assert fresh.verdict("high/high_004")["relabel"] == "mid"


def test_the_exported_numbers_are_the_predictors(tiny_model: Path, review_folder: Path, tmp_path: Path) -> None:
    """What an analyst exports is what `qmf predict` says for the same files and model."""
    session_path = tmp_path / "s.qmfreview"
    assert run_batch(tiny_model, review_folder, session_path) == 0
    with ReviewSession.open(session_path) as s:
        data = json.loads(export_json(s, tmp_path / "out.json").read_text())
    predictor = Predictor.load(tiny_model)
    assert len(data["pairs"]) == 15
    for pair in data["pairs"]:
        want = predictor.predict_files({m: pair["modalities"][m]["file"] for m in ("image", "audio")}).to_json()
        assert pair["prediction"] == want["label"]
        assert pair["probability"] == pytest.approx(want["probability"], abs=1e-5)
        for m in ("image", "audio"):
            for key in ("label", "file"):
                assert pair["modalities"][m][key] == want["modalities"][m][key]
            for key in ("probability", "quality", "share", "energy"):
                assert pair["modalities"][m][key] == pytest.approx(want["modalities"][m][key], abs=1e-5)


def test_a_large_command_line_run_writes_without_sort_indexes_and_builds_them_at_the_end(
        tiny_model, review_folder, tmp_path, monkeypatch):
    import sqlite3

    from app.review import cli as review_cli
    from app.review.session import ReviewSession

    def listing_indexes(path):
        with sqlite3.connect(path) as conn:
            return sorted(r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'listing' AND sql IS NOT NULL"))

    seen = []
    real = ReviewSession.bulk_writes

    def spy(self):
        seen.append(self.pending_count())
        return real(self)

    monkeypatch.setattr(ReviewSession, "bulk_writes", spy)
    small = tmp_path / "small.qmfreview"
    assert run_batch(tiny_model, review_folder, small) == 0  # a new session: its pairs stored unindexed, one bulk run
    assert len(seen) == 1 and seen[0] > 0
    seen.clear()
    assert run_batch(tiny_model, review_folder, small, "--rerun") == 0  # an existing session, under BULK_PAIRS:
    assert seen == []                                                   # its indexes kept row by row
    monkeypatch.setattr(review_cli, "BULK_PAIRS", 1)
    big = tmp_path / "big.qmfreview"
    assert run_batch(tiny_model, review_folder, big) == 0
    assert run_batch(tiny_model, review_folder, big, "--rerun") == 0
    assert len(seen) == 2 and seen[0] == seen[1] > 0  # the bulk path ran both times, over every pending pair
    assert listing_indexes(big) == listing_indexes(small) != []  # the same indexes are there afterwards
    with ReviewSession.open(small) as a, ReviewSession.open(big) as b:
        assert a.result_count() == b.result_count() == a.pair_count()
        for key in ("id", "prediction", "probability", "flags"):
            for desc in (False, True):
                rows_a = [(r.idx, r.prediction) for r in a.rows(order_by=key, descending=desc)]
                rows_b = [(r.idx, r.prediction) for r in b.rows(order_by=key, descending=desc)]
                assert rows_a == rows_b, key
