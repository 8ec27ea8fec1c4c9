"""The core layers never load Qt: they must run headless, in batch jobs and in the installer's self-test."""

import subprocess
import sys


def test_core_layers_import_without_qt():
    code = (
        "import sys, app.qmf.fusion, app.qmf.model, app.qmf.bundle, app.qmf.predictor, app.qmf.train, "
        "app.qmf.evaluate, app.modalities, app.data.manifest, app.data.pairing, app.data.avmnist, app.cli\n"
        "import importlib.util\n"
        "if importlib.util.find_spec('app.review'):\n"
        "    import app.review\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph', 'shiboken')))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
