"""`qmf-studio --self-test` (app/selftest.py) against a tiny model and generated demo pairs."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.selftest import run

ROOT = Path(__file__).resolve().parents[2]


def _samples(pairs, folder: Path, wrong: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(pairs.test_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    entries, seen = [], set()
    for row in rows:
        if row["label"] in seen:
            continue
        seen.add(row["label"])
        files = {}
        for kind in ("image", "audio"):
            src = pairs.root / row[kind]
            shutil.copy2(src, folder / src.name)
            files[kind] = src.name
        expected = row["label"]
        if wrong and not entries:
            expected = next(lab for lab in pairs.labels if lab != expected)
        entries.append({"id": row["id"], "title": row["id"], "files": files, "expected": expected, "note": ""})
    (folder / "samples.json").write_text(json.dumps(entries))
    return folder


@pytest.fixture(scope="module")
def demo(synthetic_pairs, tmp_path_factory):
    return _samples(synthetic_pairs, tmp_path_factory.mktemp("demo"))


def _report(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def test_passes_and_reports_every_pair(tiny_model, demo, capsys, tmp_path):
    out = tmp_path / "report.json"
    code = run(["--self-test", "--model", str(tiny_model), "--samples", str(demo), "--output", str(out)])
    report = _report(capsys)
    assert code == 0, report
    assert report["ok"] is True and report["failed"] == 0
    assert report["passed"] == len(report["results"]) == 3
    assert report["frozen"] is False
    import app

    assert report["version"] == app.__version__
    first = report["results"][0]
    assert set(first) >= {"id", "expected", "label", "probability", "ok", "modalities"}
    assert set(first["modalities"]) == {"image", "audio"}
    assert set(first["modalities"]["image"]) >= {"quality", "share"}
    assert json.loads(out.read_text()) == report


def test_wrong_label_fails(tiny_model, synthetic_pairs, capsys, tmp_path):
    samples = _samples(synthetic_pairs, tmp_path / "s", wrong=True)
    code = run(["--self-test", "--model", str(tiny_model), "--samples", str(samples)])
    report = _report(capsys)
    assert code == 1
    assert report["ok"] is False and report["failed"] >= 1
    assert report["results"][0]["ok"] is False


def test_missing_model_is_a_clear_failure(demo, capsys, tmp_path):
    code = run(["--self-test", "--model", str(tmp_path / "nope.safetensors"), "--samples", str(demo)])
    captured = capsys.readouterr()
    assert code == 1
    assert "cannot load the model" in json.loads(captured.out)["error"]
    assert "FAILED" in captured.err and "nope.safetensors" in captured.err


def test_missing_samples_is_a_clear_failure(tiny_model, capsys, tmp_path):
    code = run(["--self-test", "--model", str(tiny_model), "--samples", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 1
    assert "samples.json" in json.loads(captured.out)["error"]


def test_empty_samples_list_fails(tiny_model, capsys, tmp_path):
    (tmp_path / "samples.json").write_text("[]")
    assert run(["--self-test", "--model", str(tiny_model), "--samples", str(tmp_path)]) == 1
    assert "no demo pairs" in json.loads(capsys.readouterr().out)["error"]


def test_missing_pair_file_fails_that_pair_only(tiny_model, demo, capsys, tmp_path):
    data = json.loads((demo / "samples.json").read_text())
    folder = tmp_path / "s"
    shutil.copytree(demo, folder)
    data[0]["files"]["image"] = "gone.png"
    (folder / "samples.json").write_text(json.dumps(data))
    assert run(["--self-test", "--model", str(tiny_model), "--samples", str(folder)]) == 1
    report = _report(capsys)
    assert report["results"][0]["ok"] is False and report["results"][0]["error"]
    assert report["passed"] == 2


def test_self_test_via_the_desktop_entry_point_imports_no_qt(tiny_model, demo, tmp_path):
    """`python -m app --self-test` in a fresh process: the dispatch before Qt works and Qt stays out."""
    code = (
        "import sys; from app.gui.main import main; rc = main(sys.argv[1:]); "
        "assert not any(m.startswith('PySide6') for m in sys.modules), 'Qt imported'; sys.exit(rc)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, "--self-test", "--model", str(tiny_model), "--samples", str(demo)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["ok"] is True
