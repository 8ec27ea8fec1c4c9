"""Shared facts for the packaging recipes (the spec file, the build scripts and their tests).

Importable without PyInstaller, torch or Qt. `python3 packaging/qmf_packaging.py version` prints the
version; `... name` the application id and so on (used by the shell scripts).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

APP_NAME = "QMF Studio"
APP_ID = "io.github.qmfstudio.QMFStudio"  # reverse-DNS id: AppStream, macOS bundle id
PACKAGE = "qmf-studio"  # Debian package, folder under /opt, executable
ROOT = Path(__file__).resolve().parents[1]


def read_version(root: str | Path = ROOT) -> str:
    """`app.__version__`, read from app/__init__.py as text (the one place the version lives)."""
    text = (Path(root) / "app" / "__init__.py").read_text(encoding="utf-8")
    m = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', text, re.M)
    if not m:
        raise SystemExit(f"no __version__ in {Path(root) / 'app' / '__init__.py'}")
    return m.group(1)


# Python modules the app never uses. Several are only reachable through torch's optional,
# compile-time or developer code paths (torch.compile/inductor, tensorboard, ONNX export), which
# the app does not call; the frozen self-test and screenshot run prove the rest still works.
EXCLUDED_MODULES = [
    "tkinter",
    "_tkinter",
    "matplotlib",
    "IPython",
    "jupyter_client",
    "notebook",
    "pytest",
    "_pytest",
    "pytestqt",
    "hypothesis",
    "PyInstaller",
    "pip",
    "setuptools",
    "pkg_resources",
    "tensorboard",
    "torch.utils.tensorboard",
    "torch.utils.benchmark",
    "torch.onnx._internal.exporter",
    "onnx",
    "onnxruntime",
    "onnxscript",
    "torchvision",
    "scipy",
    "pandas",
    # sympy (+ mpmath) and networkx are imported only by torch.compile / symbolic-shape tracing.
    "sympy",
    "mpmath",
    "networkx",
    # Qt modules neither the GUI nor pyqtgraph imports (pyqtgraph does import QtOpenGL,
    # QtOpenGLWidgets, QtSvg and QtTest, so those stay).
    "PySide6.QtQml",
    "PySide6.QtQuick",
    "PySide6.QtQuickWidgets",
    "PySide6.QtQuickControls2",
    "PySide6.Qt3DCore",
    "PySide6.QtWebEngineCore",
    "PySide6.QtWebEngineWidgets",
    "PySide6.QtDesigner",
    "PySide6.QtHelp",
    "PySide6.QtUiTools",
    "PySide6.QtSql",
    "PySide6.QtNetwork",
    "PySide6.QtPrintSupport",
    "PySide6.QtSvgWidgets",
    "PySide6.QtXml",
    "PySide6.QtConcurrent",
    "PySide6.QtDBus",
    "pyqtgraph.opengl",
    "pyqtgraph.examples",
    "pyqtgraph.jupyter",
    "OpenGL",
]

# Collected files (destination paths inside the bundle) that nothing loads at run time.
DROP_DATA_PATTERNS = [
    "torch/include/*",
    "torch/share/*",
    "torch/test/*",
    "torch/bin/*",
    "torch/testing/_internal/data/*",
    "torch/utils/model_dump/*",
    "torch/_inductor/*",
    "torch/_export/*",
    "torchgen/packaged/*",
    "*.h",
    "*.hpp",
    "*.cuh",
    "*.cpp",
    "*.pyi",
    "*.a",
    "*/__pycache__/*",
    "PySide6/Qt/qml/*",
    "PySide6/Qt/translations/qtwebengine*",
    "PySide6/Qt/translations/assistant*",
    "PySide6/Qt/translations/designer*",
    "PySide6/Qt/translations/linguist*",
    "PySide6/Qt/translations/qtdeclarative*",
    "PySide6/Qt/translations/qtquick*",
]

DROP_BINARY_PATTERNS = [
    "torch/bin/*",
    "torch/lib/libtorchbind_test.so",
    "torch/lib/libjitbackend_test.so",
    "torch/lib/libbackend_with_compiler.so",
    "torch/lib/libaoti_custom_ops.so",
    "torch/lib/*_test.*",
    "torch/lib/*.a",
    "torch/lib/*.lib",
    "PySide6/Qt/plugins/qmltooling/*",
    "PySide6/Qt/plugins/designer/*",
    "PySide6/Qt/plugins/sqldrivers/*",
    "PySide6/Qt/plugins/webview/*",
    "PySide6/Qt/plugins/sceneparsers/*",
    "PySide6/Qt/plugins/renderers/*",
    "PySide6/Qt/plugins/geometryloaders/*",
    "PySide6/Qt/qml/*",
]


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "version"
    values = {"version": read_version(), "name": APP_NAME, "id": APP_ID, "package": PACKAGE}
    if what not in values:
        raise SystemExit(f"usage: {sys.argv[0]} {'|'.join(values)}")
    print(values[what])
