"""Fast checks of the packaging recipes (the full build is packaging/verify_linux.sh, not run here)."""

from __future__ import annotations

import ast
import configparser
import importlib.util
import shutil
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "packaging"


def _qmf_packaging():
    spec = importlib.util.spec_from_file_location("qmf_packaging", PKG / "qmf_packaging.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_version_has_one_source():
    import app

    qp = _qmf_packaging()
    assert qp.read_version(ROOT) == app.__version__
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]
    if "version" in project:  # a static copy must agree (or pyproject reads it dynamically from app)
        assert project["version"] == app.__version__
    else:
        assert "version" in project.get("dynamic", [])
    out = subprocess.run([sys.executable, str(PKG / "qmf_packaging.py"), "version"], capture_output=True, text=True)
    assert out.stdout.strip() == app.__version__


def test_installer_scripts_take_the_version_from_the_package():
    import app

    iss = (PKG / "windows" / "qmf-studio.iss").read_text()
    assert "{#AppVersion}" in iss and "OutputBaseFilename=qmf-studio-{#AppVersion}" in iss
    assert app.__version__ not in iss  # no hard-coded copy
    for script in ("build_linux.sh", "linux/build_deb.sh", "macos/build.sh", "windows/build.ps1"):
        text = (PKG / script).read_text()
        assert "qmf_packaging.py" in text, script
        assert app.__version__ not in text, f"{script} hard-codes the version"


def test_spec_parses_and_refers_to_existing_files():
    text = (PKG / "qmf-studio.spec").read_text()
    tree = ast.parse(text)
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert {"Analysis", "PYZ", "EXE", "COLLECT", "BUNDLE"} <= calls
    assert (PKG / "launcher.py").is_file()
    assert (PKG / "hooks").is_dir()
    for icon in ("qmf-studio.svg", "qmf-studio.png", "qmf-studio.ico", "qmf-studio.icns"):
        assert (PKG / "icons" / icon).is_file(), icon
    for s in (16, 32, 48, 64, 128, 256, 512):
        assert (PKG / "icons" / f"qmf-studio-{s}.png").is_file()
    for mod in ("app.selftest", "app.cli", "app.gui.main"):
        assert f'"{mod}"' in text
        assert importlib.util.find_spec(mod) is not None, mod


def test_excludes_spare_what_the_app_imports():
    qp = _qmf_packaging()
    used = {"PySide6.QtCore", "PySide6.QtGui", "PySide6.QtWidgets", "PySide6.QtOpenGL", "PySide6.QtOpenGLWidgets",
            "PySide6.QtSvg", "onnxruntime", "numpy", "soundfile", "soxr", "PIL", "pyqtgraph", "tqdm"}
    assert not used & set(qp.EXCLUDED_MODULES)
    # the default build leaves torch out (the app predicts with onnxruntime); QMF_PACKAGING_TORCH=1 keeps it
    assert ("torch" in qp.EXCLUDED_MODULES) != qp.WITH_TORCH
    import fnmatch

    for needed in ("torch/lib/libtorch_cpu.so", "torch/lib/libc10.so", "PySide6/Qt/plugins/platforms/libqoffscreen.so",
                   "PySide6/Qt/plugins/platforms/libqxcb.so", "resources/models/avmnist-qmf.safetensors"):
        assert not any(fnmatch.fnmatch(needed, p) for p in qp.DROP_BINARY_PATTERNS + qp.DROP_DATA_PATTERNS), needed


def test_launcher_dispatches_by_name(monkeypatch):
    spec = importlib.util.spec_from_file_location("qmf_launcher", PKG / "launcher.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.delenv("QMF_STUDIO_ENTRY", raising=False)
    for argv0, entry in (("/usr/bin/qmf", "cli"), ("qmf.exe", "cli"), ("/opt/qmf-studio/qmf-studio", "gui"),
                         ("C:\\Program Files\\QMF Studio\\qmf-studio.exe", "gui")):
        monkeypatch.setattr(sys, "argv", [argv0])
        assert mod._entry() == entry, argv0
    monkeypatch.setenv("QMF_STUDIO_ENTRY", "cli")
    monkeypatch.setattr(sys, "argv", ["qmf-studio"])
    assert mod._entry() == "cli"


def test_desktop_entry_has_the_required_keys():
    cp = configparser.ConfigParser(interpolation=None, strict=True)
    cp.optionxform = str
    cp.read(PKG / "linux" / "qmf-studio.desktop")
    entry = cp["Desktop Entry"]
    for key in ("Type", "Name", "Comment", "Exec", "Icon", "Categories", "Terminal"):
        assert entry.get(key), key
    assert entry["Type"] == "Application"
    assert entry["Exec"].split()[0] == "qmf-studio"
    assert entry["Icon"] == "qmf-studio"
    assert entry["Categories"].endswith(";") and entry["MimeType"].endswith(";")
    if shutil.which("desktop-file-validate"):
        r = subprocess.run(["desktop-file-validate", str(PKG / "linux" / "qmf-studio.desktop")], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


def test_appstream_metadata_is_consistent():
    qp = _qmf_packaging()
    path = PKG / "linux" / f"{qp.APP_ID}.metainfo.xml.in"
    root = ET.parse(path).getroot()
    assert root.tag == "component" and root.get("type") == "desktop-application"
    assert root.findtext("id") == qp.APP_ID
    assert root.findtext("launchable") == "qmf-studio.desktop"
    assert root.findtext("metadata_license") and root.findtext("project_license") == "MIT"
    assert root.find("releases/release").get("version") == "@VERSION@"
    binaries = {b.text for b in root.findall("provides/binary")}
    assert binaries == {"qmf-studio", "qmf"}


@pytest.mark.parametrize("script", ["build_linux.sh", "verify_linux.sh", "linux/build_deb.sh", "macos/build.sh"])
def test_shell_scripts_parse(script):
    path = PKG / script
    assert path.stat().st_mode & 0o111, f"{script} is not executable"
    r = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_deb_depends_on_what_qt_opens_at_run_time():
    """Qt's X11 plugin dlopens libxcb-cursor (no NEEDED entry): the .deb must still depend on it."""
    spec = importlib.util.spec_from_file_location("qmf_shlib_depends", PKG / "linux" / "shlib_depends.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with_x11 = ["qmf-studio", "_internal/PySide6/Qt/plugins/platforms/libqxcb.so",
                "_internal/PySide6/Qt/plugins/platforms/libqoffscreen.so"]
    assert module.runtime_loaded_packages(with_x11) == {
        "libxcb-cursor0": "_internal/PySide6/Qt/plugins/platforms/libqxcb.so"}
    assert module.runtime_loaded_packages(with_x11[::2]) == {}


@pytest.mark.skipif(not (shutil.which("ldd") and shutil.which("objdump") and shutil.which("dpkg")),
                    reason="needs ldd, objdump and dpkg (a Debian build machine)")
def test_deb_depends_on_every_system_library_of_the_x11_plugin(tmp_path):
    """The .deb's Depends cover what the app's start-up check asks for (the plugin's own and Qt's xcb library's)."""
    from app.gui import xcb_libs

    plugin = xcb_libs.xcb_plugin_path()
    if plugin is None:
        pytest.skip("PySide6's X11 plugin is not installed here")
    spec = importlib.util.spec_from_file_location("qmf_shlib_depends", PKG / "linux" / "shlib_depends.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    qpa = plugin.parents[2] / "lib" / "libQt6XcbQpa.so.6"
    (tmp_path / "qt" / "plugins" / "platforms").mkdir(parents=True)
    (tmp_path / "qt" / "lib").mkdir()
    shutil.copy(plugin, tmp_path / "qt" / "plugins" / "platforms" / plugin.name)
    shutil.copy(qpa, tmp_path / "qt" / "lib" / qpa.name)
    deps, _recs, _explain = module.analyse(tmp_path)
    names = {d.split()[0] for d in deps}
    direct = set(xcb_libs.read_elf(plugin).needed) | set(xcb_libs.read_elf(qpa).needed)
    wanted = {xcb_libs.DEBIAN_PACKAGES[n] for n in direct if n in xcb_libs.DEBIAN_PACKAGES}
    assert {"libxcb-icccm4", "libxcb-keysyms1", "libxcb-cursor0"} <= wanted
    assert wanted <= names, f"missing from Depends: {sorted(wanted - names)}"
