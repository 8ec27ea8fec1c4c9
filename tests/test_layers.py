"""The layers hold: the import-linter contracts in pyproject.toml (gui | cli above review, above qmf,
above data | modalities, above util; Qt only in app.gui) and, at run time, a core that never loads Qt."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> str:
    beside = Path(sys.executable).with_name("lint-imports")  # the test interpreter's own environment first
    found = str(beside) if beside.exists() else shutil.which("lint-imports")
    assert found, "lint-imports not found: install the dev extra (pip install -e '.[dev]')"
    return found


def test_import_contracts_are_kept():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this tree's app, not an installed copy
    proc = subprocess.run([_lint_imports(), "--no-cache"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_core_layers_import_without_qt():
    code = (
        "import sys, app.qmf.fusion, app.qmf.model, app.qmf.bundle, app.qmf.predictor, app.qmf.train, "
        "app.qmf.evaluate, app.modalities, app.data.manifest, app.data.pairing, app.data.avmnist, app.cli, "
        "app.review, app.review.session, app.review.runner, app.review.cli, app.review.export, app.review.workflow, "
        "app.review.flags, app.review.sources, app.util.files\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph', 'shiboken')))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
