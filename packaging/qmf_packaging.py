"""Shared facts for the packaging recipes (the spec file, the build scripts and their tests).

Importable without PyInstaller, torch or Qt. `python3 packaging/qmf_packaging.py version` prints the
version; `... name` the application id and so on (used by the shell scripts).
"""

from __future__ import annotations

import os
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


# The installed app predicts with onnxruntime from the model file's ONNX graph and ships without
# torch (about 450 MiB of libraries): training, `qmf export-onnx` and opening a model file that has
# no ONNX graph need a source install (see packaging/README.md). QMF_PACKAGING_TORCH=1 builds the
# old, torch-carrying app instead.
WITH_TORCH = os.environ.get("QMF_PACKAGING_TORCH", "0") == "1"
TORCH_MODULES = ["torch", "torchgen", "functorch", "safetensors", "onnx", "onnxscript", "ml_dtypes"]

# Python modules the app never uses. Several are only reachable through torch's optional,
# compile-time or developer code paths (torch.compile/inductor, tensorboard, ONNX export), which
# the app does not call; the frozen self-test and screenshot run prove the rest still works.
EXCLUDED_MODULES = ([] if WITH_TORCH else TORCH_MODULES) + [
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
    "onnxscript",
    "onnxruntime.tools",  # model conversion scripts, not the runtime
    "onnxruntime.transformers",
    "onnxruntime.quantization",
    "torchvision",
    "scipy",
    "pandas",
    # the `distributed` extra (qmf batch --engine ray, Parquet): imported lazily, not part of the installers
    "ray",
    "pyarrow",
    # sympy (+ mpmath) and networkx are imported only by torch.compile / symbolic-shape tracing.
    "sympy",
    "mpmath",
    "networkx",
    # PySide6 binding modules outside QT_BINDINGS_USED are added by the spec (`pyside6_excludes`).
    "pyqtgraph.opengl",
    "pyqtgraph.examples",
    "pyqtgraph.jupyter",
    "OpenGL",
    # Reached only through code the app never runs: numpy.__config__.show() (yaml), numpy.f2py
    # (charset_normalizer), the interactive prompts cmd/pdb/code (readline), Pillow's AVIF and Tk
    # support (the app opens png/jpeg/bmp/tiff/webp/gif: app/modalities/image.py).
    "yaml",
    "numpy.f2py",
    "charset_normalizer",
    "readline",
    "PIL._avif",
    "PIL.AvifImagePlugin",
    "PIL._imagingtk",
    "PIL.ImageTk",
]

# The Qt the installed app ships: an allow-list, so a new PySide6 wheel's extra modules stay out.
# Bindings: app/gui imports QtCore, QtGui, QtWidgets and QtSvg (charts.py: SVG export); pyqtgraph
# imports QtOpenGL and QtOpenGLWidgets unconditionally (pyqtgraph/Qt/OpenGLHelpers.py) and QtSvg /
# QtTest inside try/except. tests/packaging/test_slim.py checks every PySide6 import in app/.
QT_BINDINGS_USED = ["QtCore", "QtGui", "QtWidgets", "QtSvg", "QtOpenGL", "QtOpenGLWidgets"]


def pyside6_excludes(pyside_dir: str | Path) -> list[str]:
    """`PySide6.QtXxx` binding modules found in `pyside_dir` that are not in QT_BINDINGS_USED."""
    names = set()
    for f in Path(pyside_dir).iterdir():
        stem = f.name.split(".")[0]
        if stem.startswith("Qt") and f.suffix in (".so", ".pyd") and stem not in QT_BINDINGS_USED:
            names.add(f"PySide6.{stem}")
    return sorted(names)


# Linux: the Qt libraries (PySide6/Qt/lib) and plugins (PySide6/Qt/plugins) kept; every other file
# there is left out. The libraries are the bindings' own plus what the kept plugins link to
# (DBus: Qt Gui itself, ibus, the XDG portal; X11: XcbQpa; Wayland: WaylandClient, WlShellIntegration)
# and ICU (Qt Core). Plugins: the desktop platforms (X11, Wayland; offscreen for --screenshot and
# servers), their GL/shell/decoration helpers, input methods, the XDG desktop portal (native file
# dialogs in Flatpak/Snap sandboxes), the SVG icon engine, and SVG/JPEG image formats (icons; PNG is
# built into Qt Gui; user images are decoded by Pillow, not Qt). Left out: the embedded-Linux
# platforms (eglfs, linuxfb, vnc, vkkhrdisplay, minimal) and their evdev/tuio input plugins, which
# also pulled in Qt Network and Kerberos. `check_needed_closure` fails the build if a kept file links
# to a library that was left out.
QT_LIBRARIES_KEPT = [
    "libQt6Core.so.*", "libQt6Gui.so.*", "libQt6Widgets.so.*", "libQt6Svg.so.*", "libQt6OpenGL.so.*",
    "libQt6OpenGLWidgets.so.*", "libQt6DBus.so.*", "libQt6XcbQpa.so.*", "libQt6WaylandClient.so.*",
    "libQt6WlShellIntegration.so.*", "libQt6WaylandEglClientHwIntegration.so.*",
    "libicudata.so.*", "libicuuc.so.*", "libicui18n.so.*",
]
QT_PLUGINS_KEPT = [
    "platforms/libqxcb.so", "platforms/libqoffscreen.so", "platforms/libqwayland*.so",
    "xcbglintegrations/*", "wayland-decoration-client/*", "wayland-graphics-integration-client/*",
    "wayland-shell-integration/*", "platforminputcontexts/*", "platformthemes/libqxdgdesktopportal.so",
    "iconengines/libqsvgicon.so", "imageformats/libqsvg.so", "imageformats/libqjpeg.so",
]
QT_LIB_DIR = "PySide6/Qt/lib/"
QT_PLUGIN_DIR = "PySide6/Qt/plugins/"


def qt_file_kept(dest: str) -> bool:
    """Linux: whether a bundle file under PySide6/Qt/lib or PySide6/Qt/plugins is on the allow-list."""
    from fnmatch import fnmatch

    dest = dest.replace("\\", "/")
    if dest.startswith(QT_LIB_DIR):
        return any(fnmatch(dest[len(QT_LIB_DIR):], p) for p in QT_LIBRARIES_KEPT)
    if dest.startswith(QT_PLUGIN_DIR):
        return any(fnmatch(dest[len(QT_PLUGIN_DIR):], p) for p in QT_PLUGINS_KEPT)
    return True

# Collected files (destination paths inside the bundle) that nothing loads at run time. Both lists
# apply to data files and binaries alike (PyInstaller files ELF "data" such as torch/test/* under
# binaries). KEEP_PATTERNS wins over both.
KEEP_PATTERNS = [
    "torch/bin/torch_shm_manager",  # `import torch` checks that it exists
]

DROP_DATA_PATTERNS = [
    "torch/include/*",
    "torch/share/*",
    "torch/test/*",
    "torch/bin/*",
    "*.h",
    "*.hpp",
    "*.cuh",
    "*.cpp",
    "*.pyi",
    "*.a",
    "*/__pycache__/*",
    "PySide6/Qt/qml/*",
    # Qt's own translations: the app is English only and installs no QTranslator.
    "PySide6/Qt/translations/*",
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
    # The GTK 3 platform theme would load the desktop's GTK against the (older) cairo/pango/atk
    # copied from the build machine; without it Qt uses its own Fusion style on every desktop.
    "PySide6/Qt/plugins/platformthemes/libqgtk3.so",
]


def _needed(path: str) -> list[str]:
    """DT_NEEDED sonames of an ELF file (objdump -p); [] if it cannot be read."""
    import subprocess

    try:
        out = subprocess.run(["objdump", "-p", path], capture_output=True, text=True, check=False).stdout
    except OSError:
        return []
    return [line.split()[1] for line in out.splitlines() if line.strip().startswith("NEEDED")]


def drop_orphan_libraries(binaries: list, log=print) -> list:
    """Linux: remove top-level shared libraries that no remaining collected binary links to.

    PyInstaller copies every library the collected binaries link to. Once files are dropped (the
    GTK theme plugin, test libraries), the libraries only they needed stay behind; this removes
    them, repeating until nothing changes. Only plain top-level `lib*.so*` files are candidates:
    extension modules, Qt plugins and packages' own library folders are never touched.
    """
    import os

    entries = list(binaries)
    needed_by: dict[str, list[str]] = {}
    for dest, src, typ in entries:
        if typ in ("BINARY", "EXTENSION") and os.path.isfile(src):
            needed_by[dest] = _needed(src)
    dropped_total = []
    while True:
        wanted: set[str] = set()
        for dest, _src, _typ in entries:
            wanted.update(needed_by.get(dest, []))
        orphans = [
            e for e in entries
            if e[2] == "BINARY" and "/" not in e[0] and e[0].startswith("lib") and ".so" in e[0]
            and e[0] not in wanted and not e[0].startswith("libpython")
        ]
        if not orphans:
            break
        names = {e[0] for e in orphans}
        entries = [e for e in entries if e[0] not in names]
        dropped_total.extend(sorted(names))
    if dropped_total:
        log(f"qmf-packaging: dropped {len(dropped_total)} libraries nothing links to any more: {', '.join(dropped_total)}")
    return entries



def drop_dangling_symlinks(datas: list, binaries: list, log=print) -> list:
    """Remove SYMLINK entries (PyInstaller's top-level links into package folders) whose target is gone."""
    import posixpath

    present = {e[0].replace("\\", "/") for e in binaries} | {e[0].replace("\\", "/") for e in datas if e[2] != "SYMLINK"}
    kept, dropped = [], []
    for e in datas:
        if e[2] == "SYMLINK":
            target = posixpath.normpath(posixpath.join(posixpath.dirname(e[0]), e[1].replace("\\", "/")))
            if target not in present:
                dropped.append(e[0])
                continue
        kept.append(e)
    if dropped:
        log(f"qmf-packaging: dropped {len(dropped)} links to files left out: {', '.join(sorted(dropped))}")
    return kept


def check_needed_closure(before: list, after: list) -> None:
    """Linux: fail if a kept binary links to a library that trimming left out of the bundle.

    `before`/`after` are the binaries TOC before and after trimming; a soname that was bundled before
    and is gone now, yet still NEEDED by a kept file, means an allow-list or pattern is wrong.
    """
    import os

    names_before = {os.path.basename(e[0]) for e in before}
    names_after = {os.path.basename(e[0]) for e in after}
    gone = names_before - names_after
    broken = []
    for dest, src, typ in after:
        if typ in ("BINARY", "EXTENSION") and os.path.isfile(src):
            for soname in _needed(src):
                if soname in gone:
                    broken.append(f"{dest} needs {soname}")
    if broken:
        raise SystemExit("qmf-packaging: trimming left out libraries that kept files link to: " + "; ".join(sorted(broken)))


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "version"
    values = {"version": read_version(), "name": APP_NAME, "id": APP_ID, "package": PACKAGE}
    if what not in values:
        raise SystemExit(f"usage: {sys.argv[0]} {'|'.join(values)}")
    print(values[what])
