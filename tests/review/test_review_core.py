"""Review core: sources, batch results equal to `qmf predict`, resume, verdicts, export, flags, errors."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.cli import main as qmf
from app.data.pairing import LAYOUT_BY_NAME, LAYOUT_MODALITY_FOLDERS
from app.qmf.predictor import Predictor
from app.review.export import export_csv, export_json, import_verdicts, read_csv_export, row_dict
from app.review.flags import FlagThresholds
from app.review.runner import BatchRunner
from app.review.session import ReviewSession, RowFilter
from app.review.sources import load_source
from app.review.workflow import prepare_session
from tests.review.conftest import make_review_folder
from tests.synthetic import CLASSES

KINDS = {"image": "image", "audio": "audio"}
ROOT = Path(__file__).resolve().parents[2]


def write_manifest(path: Path, rows: list[tuple]) -> Path:
    """A pairs manifest: one (id, image, audio, label) tuple per row."""
    path.write_text("id,image,audio,label\n" + "".join(",".join(map(str, row)) + "\n" for row in rows))
    return path


def run_batch(model: Path, folder: Path, session: Path, *extra: str) -> int:
    return qmf(["batch", "--model", str(model), "--folder", str(folder), "--session", str(session), "--quiet", *extra])


# ---------------------------------------------------------------------------------------- sources

def test_folder_by_name_pairs_labels_and_lists_unmatched(review_folder: Path) -> None:
    (review_folder / "low" / "stray.png").write_bytes((review_folder / "low" / "low_000.png").read_bytes())
    (review_folder / "readme.txt.bak").write_text("notes")
    src = load_source(review_folder, KINDS, CLASSES)
    assert src.kind == "folder" and src.layout == LAYOUT_BY_NAME
    assert len(src.pairs) == 15
    assert {p.label for p in src.pairs} == set(CLASSES)
    pair = next(p for p in src.pairs if p.id == "mid/mid_002")
    assert pair.files == {"image": review_folder / "mid" / "mid_002.png", "audio": review_folder / "mid" / "mid_002.wav"}
    unmatched = {p.name: why for p, why in src.unmatched}
    assert "no audio file" in unmatched["stray.png"]
    assert unmatched["readme.txt.bak"] == "unsupported file type"


def test_folder_with_modality_subfolders(tmp_path: Path) -> None:
    flat = make_review_folder(tmp_path / "flat", per_class=2)
    root = tmp_path / "mod"
    for f in sorted(flat.rglob("*.*")):
        sub = "image" if f.suffix == ".png" else "audio"
        dest = root / sub / f.relative_to(flat)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(f.read_bytes())
    (root / "audio" / "low" / "low_000.wav").unlink()
    src = load_source(root, KINDS, CLASSES)
    assert src.layout == LAYOUT_MODALITY_FOLDERS
    assert len(src.pairs) == 5
    assert {p.label for p in src.pairs} == set(CLASSES)
    assert [p.name for p, _ in src.unmatched] == ["low_000.png"]


def test_manifest_source_keeps_rows_with_missing_files_and_index_labels(tmp_path: Path, review_folder: Path) -> None:
    csv_path = write_manifest(tmp_path / "pairs.csv", [
        ("a", review_folder / "low/low_000.png", review_folder / "low/low_000.wav", "low"),
        ("b", review_folder / "mid/mid_000.png", review_folder / "mid/mid_000.wav", "1"),
        ("c", review_folder / "nope.png", review_folder / "mid/mid_001.wav", "mid"),
        ("d", "", "x.wav", "low"),
    ])
    src = load_source(csv_path, KINDS, CLASSES)
    assert [p.id for p in src.pairs] == ["a", "b", "c"]
    assert [p.label for p in src.pairs] == ["low", "mid", "mid"]
    assert len(src.problems) == 1 and "empty cell" in src.problems[0]


def test_folder_names_that_are_no_labels_leave_pairs_unlabelled(tmp_path: Path) -> None:
    """`day/2024-05-01/...` is a date, not a class: it must not turn every pair into a mismatch."""
    flat = make_review_folder(tmp_path / "flat", per_class=1)
    root = tmp_path / "by-day"
    for i, f in enumerate(sorted(flat.rglob("*.png"))):
        for src_file in (f, f.with_suffix(".wav")):
            dest = root / f"2024-05-0{i + 1}" / src_file.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(src_file.read_bytes())
    src = load_source(root, KINDS, CLASSES)
    assert len(src.pairs) == 3 and all(p.label is None for p in src.pairs)
    assert src.notes and "2024-05-01" in src.notes[0] and "unlabelled" in src.notes[0]
    assert load_source(flat, KINDS, CLASSES).notes == []  # class-named folders stay labels


def test_manifest_labels_the_model_does_not_know_are_kept_and_named(tmp_path: Path, review_folder: Path) -> None:
    csv_path = write_manifest(tmp_path / "pairs.csv", [
        ("a", review_folder / "low/low_000.png", review_folder / "low/low_000.wav", "three"),
        ("b", review_folder / "mid/mid_000.png", review_folder / "mid/mid_000.wav", "mid"),
    ])
    src = load_source(csv_path, KINDS, CLASSES)
    assert [p.label for p in src.pairs] == ["three", "mid"]
    assert len(src.notes) == 1 and "pairs.csv:2" in src.notes[0] and "'three'" in src.notes[0]


# ---------------------------------------------------------------------------------------- batch

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
            assert got["label"] == want["label"]
            assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-5)
            for name in ("image", "audio"):
                for key in ("quality", "share", "energy", "probability"):
                    assert got["modalities"][name][key] == pytest.approx(want["modalities"][name][key], abs=1e-5)
                assert got["modalities"][name]["label"] == want["modalities"][name]["label"]
                assert got["modalities"][name]["file"] == want["modalities"][name]["file"]
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
    # the exported verdicts and notes restore a fresh session of the same pairs
    predictor = Predictor.load(tiny_model)
    with prepare_session(tmp_path / "fresh.qmfreview", predictor, review_folder, tiny_model).session as fresh:
        assert import_verdicts(fresh, csv_path) == 15
        assert fresh.verdict("low/low_002") == {"verdict": "reject", "relabel": None,
                                                "note": 'comma, "quotes"\nand a newline'}
        assert fresh.verdict("high/high_004")["relabel"] == "mid"


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


def test_review_core_never_imports_qt() -> None:
    code = ("import sys, app.review, app.review.session, app.review.runner, app.review.cli, app.review.export, "
            "app.review.workflow, app.review.flags, app.review.sources; "
            "print([m for m in sys.modules if m.startswith('PySide6') or m.startswith('pyqtgraph')])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_calibrated_model_flags_unfamiliar_inputs_instead_of_low_share(tiny_model: Path, review_folder: Path,
                                                                       tmp_path: Path) -> None:
    """With a calibrated model the flag follows the unfamiliar mark (also when re-flagged without the model)."""
    from app.data.manifest import read_manifest
    from app.qmf.calibration import calibrate_bundle

    src = load_source(review_folder, KINDS, CLASSES)
    rows = write_manifest(tmp_path / "cal.csv", [(p.id.replace("/", "_"), p.files["image"], p.files["audio"], p.label)
                                                  for p in src.pairs])
    calibrated = tmp_path / "cal.safetensors"
    # calibrate on a *noisy-image* version of nothing: the clean pairs themselves, at the 50th percentile, so about
    # half of the images fall below the threshold and are marked
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
