"""The checks packaging/verify_linux.sh applies to a packaged build's self-test report."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _checks():
    spec = importlib.util.spec_from_file_location("verify_checks", ROOT / "packaging" / "verify_checks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _report(tmp_path: Path, install: Path, **changes) -> Path:
    internal = install / "opt" / "qmf-studio" / "_internal"
    report = {
        "frozen": True,
        "ok": True,
        "passed": 1,
        "failed": 0,
        "executable": str(install / "opt" / "qmf-studio" / "qmf-studio"),
        "app_dir": str(internal / "app"),
        "resources": str(internal / "resources"),
        "model": {"path": str(internal / "resources" / "models" / "m.safetensors")},
        "results": [{"id": "a", "expected": "3", "label": "3", "ok": True,
                     "files": {"image": str(internal / "resources" / "samples" / "a.png")}}],
        "modules": {"app": str(internal / "app" / "__init__.pyc"), "torch": str(internal / "torch" / "__init__.pyc")},
        "qt_imported": ["PySide6.QtCore"],
    }
    report.update(changes)
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    return path


def test_a_good_report_passes(tmp_path):
    install = tmp_path / "root"
    assert _checks().check_selftest(str(_report(tmp_path, install)), str(install), str(ROOT)) == []


def test_paths_into_the_checkout_are_caught(tmp_path):
    install = tmp_path / "root"
    problems = _checks().check_selftest(
        str(_report(tmp_path, install, app_dir=str(ROOT / "app"), modules={"app": str(ROOT / "app" / "__init__.py")})),
        str(install), str(ROOT),
    )
    assert any("app_dir" in p for p in problems)
    assert any("module app" in p for p in problems)
    assert any("source tree" in p for p in problems)


def test_not_frozen_failed_pairs_and_qt_gui_are_caught(tmp_path):
    install = tmp_path / "root"
    bad = _report(tmp_path, install, frozen=False, ok=False, failed=1,
                  results=[{"id": "a", "expected": "3", "label": "5", "ok": False}],
                  qt_imported=["PySide6.QtCore", "PySide6.QtWidgets"])
    problems = _checks().check_selftest(str(bad), str(install), str(ROOT))
    text = "\n".join(problems)
    assert "frozen" in text and "pair a" in text and "QtWidgets" in text


def test_png_check(tmp_path):
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.new("RGB", (1360, 860), "white").save(blank)
    assert _checks().check_png(str(blank))  # blank (and tiny) -> problems
    import numpy as np

    rng = np.random.default_rng(0)
    busy = tmp_path / "busy.png"
    Image.fromarray(rng.integers(0, 255, (860, 1360, 3), dtype=np.uint8)).save(busy)
    assert _checks().check_png(str(busy)) == []
