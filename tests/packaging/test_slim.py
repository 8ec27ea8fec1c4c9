"""The installer's size cuts: what packaging/linux/slim.py keeps of ICU's data, and the Qt allow-list."""

from __future__ import annotations

import ast
import importlib.util
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "packaging"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


slim = _load("qmf_slim", PKG / "linux" / "slim.py")
qp = _load("qmf_packaging_for_slim", PKG / "qmf_packaging.py")


def _header() -> bytes:
    """A common-data header as ICU writes it: size, magic, UDataInfo with format CmnD, padded."""
    info = struct.pack("<HHBBBB4s4s4s", 20, 0, 0, 0, 2, 0, b"CmnD", bytes([1, 0, 0, 0]), bytes([3, 0, 0, 0]))
    head = struct.pack("<HBB", 32, 0xDA, 0x27) + info
    return head + b"\0" * (32 - len(head))


ITEMS = sorted([  # ICU sorts the table of contents by name
    ("icudt73l/cnvalias.icu", b"A" * 40),
    ("icudt73l/coll/de.res", b"D" * 3),
    ("icudt73l/coll/root.res", b"R" * 100),
    ("icudt73l/coll/ucadata.icu", b"U" * 70),
    ("icudt73l/brkitr/cjdict.dict", b"J" * 500),
    ("icudt73l/de.res", b"d" * 30),
    ("icudt73l/en.res", b"e" * 30),
    ("icudt73l/en_GB.res", b"g" * 17),
    ("icudt73l/gb18030.cnv", b"G" * 300),
    ("icudt73l/pool.res", b"P" * 50),
    ("icudt73l/root.res", b"r" * 60),
    ("icudt73l/supplementalData.res", b"S" * 20),
    ("icudt73l/ucase.icu", b"C" * 33),
    ("icudt73l/unames.icu", b"N" * 90),
    ("icudt73l/zone/fr.res", b"f" * 9),
    ("icudt73l/zone/root.res", b"z" * 9),
    ("icudt73l/zoneinfo64.res", b"Z" * 45),
])


def test_icu_package_round_trips_and_keeps_items_aligned():
    pkg = slim.build_icu_package(_header(), ITEMS)
    header, items = slim.icu_package_items(pkg)
    assert header == _header()
    # each item comes back at least whole (ICU pads items to 16 bytes; the padding is part of the slot)
    assert [n for n, _ in items] == [n for n, _ in ITEMS]
    for (_, got), (_, want) in zip(items, ITEMS, strict=True):
        assert got[:len(want)] == want and set(got[len(want):]) <= {0} and len(got) - len(want) < 16
    count, = struct.unpack_from("<I", pkg, len(header))
    for i in range(count):
        _, data_off = struct.unpack_from("<II", pkg, len(header) + 4 + 8 * i)
        assert (len(header) + data_off) % 16 == 0
    with pytest.raises(ValueError):
        slim.icu_package_items(b"\x20\x00\xda\x27" + b"\0" * 60)  # right magic, wrong format


def test_icu_keeps_what_qt_calls_and_drops_the_rest():
    kept = {n.split("/", 1)[1] for n, _ in ITEMS if slim.icu_item_kept(n)}
    # every language's collation, case mapping, codec aliases, time zones, English and root bundles
    assert kept == {"cnvalias.icu", "coll/de.res", "coll/root.res", "coll/ucadata.icu", "en.res", "en_GB.res",
                    "pool.res", "root.res", "supplementalData.res", "ucase.icu", "zone/root.res", "zoneinfo64.res"}
    # other languages' locale and time-zone bundles, dictionaries, table codecs and character names go
    for gone in ("icudt73l/de.res", "icudt73l/zone/fr.res", "icudt73l/brkitr/cjdict.dict",
                 "icudt73l/gb18030.cnv", "icudt73l/unames.icu", "icudt73l/curr/en.res", "icudt73l/translit/root.res"):
        assert not slim.icu_item_kept(gone), gone


@pytest.mark.skipif(not (shutil.which("as") and shutil.which("ld")), reason="needs binutils (as, ld)")
def test_shrink_icu_data_rewrites_the_data_library(tmp_path):
    """A stand-in libicudata built the way ICU's is (one symbol icudt73_dat) comes back with the kept items."""
    (tmp_path / "icu.dat").write_bytes(slim.build_icu_package(_header(), ITEMS))
    (tmp_path / "icu.s").write_text("\t.section .rodata\n\t.globl icudt73_dat\n\t.type icudt73_dat, @object\n"
                                    "\t.balign 16\nicudt73_dat:\n\t.incbin \"icu.dat\"\n"
                                    "\t.size icudt73_dat, . - icudt73_dat\n")
    subprocess.run(["as", "-o", "icu.o", "icu.s"], cwd=tmp_path, check=True)
    lib = tmp_path / "libicudata.so.73"
    subprocess.run(["ld", "-shared", "-soname", lib.name, "-o", str(lib), "icu.o"], cwd=tmp_path, check=True)
    before, after = slim.shrink_icu_data(lib, log=lambda *_: None)
    assert after < before
    data = lib.read_bytes()
    _, off, size = slim.elf_symbol(data, r"icudt\d+_dat")
    _, items = slim.icu_package_items(data[off:off + size])
    assert [n for n, _ in items] == [n for n, _ in ITEMS if slim.icu_item_kept(n)]
    assert dict(items)["icudt73l/coll/root.res"][:100] == b"R" * 100
    assert b"libicudata.so.73" in data  # the soname Qt6Core links to
    assert slim.shrink_icu_data(lib, log=lambda *_: None) == (after, after)  # a second run changes nothing


def _pyside6_modules_imported_by(folder: Path) -> set[str]:
    found = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("PySide6"):
                parts = node.module.split(".")
                if len(parts) > 1:
                    found.add(parts[1])
                else:
                    found.update(a.name for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("PySide6."))
    return found


def test_every_qt_module_the_app_imports_is_packaged():
    used = _pyside6_modules_imported_by(ROOT / "app")
    assert {"QtCore", "QtGui", "QtWidgets"} <= used  # the scan sees the GUI's imports
    assert used <= set(qp.QT_BINDINGS_USED), f"add to QT_BINDINGS_USED: {sorted(used - set(qp.QT_BINDINGS_USED))}"


def test_pyside6_excludes_lists_bindings_outside_the_allow_list(tmp_path):
    for name in ("QtCore.abi3.so", "QtGui.abi3.so", "QtQml.abi3.so", "QtQml.pyi", "QtWebEngineCore.pyd",
                 "QtNetwork.abi3.so", "libpyside6.abi3.so.6.11"):
        (tmp_path / name).write_bytes(b"")
    assert qp.pyside6_excludes(tmp_path) == ["PySide6.QtNetwork", "PySide6.QtQml", "PySide6.QtWebEngineCore"]


def test_qt_allow_list_keeps_the_desktop_platforms_only():
    keep = qp.qt_file_kept
    for path in ("PySide6/Qt/lib/libQt6Core.so.6", "PySide6/Qt/lib/libQt6Widgets.so.6", "PySide6/Qt/lib/libicudata.so.73",
                 "PySide6/Qt/plugins/platforms/libqxcb.so", "PySide6/Qt/plugins/platforms/libqoffscreen.so",
                 "PySide6/Qt/plugins/platforms/libqwayland.so", "PySide6/Qt/plugins/iconengines/libqsvgicon.so",
                 "PySide6/Qt/plugins/xcbglintegrations/libqxcb-glx-integration.so",
                 "PySide6/QtCore.abi3.so", "numpy/_core/_multiarray_umath.so"):
        assert keep(path), path
    for path in ("PySide6/Qt/lib/libQt6Network.so.6", "PySide6/Qt/lib/libQt6Qml.so.6", "PySide6/Qt/lib/libQt6Test.so.6",
                 "PySide6/Qt/lib/libQt6EglFSDeviceIntegration.so.6", "PySide6/Qt/plugins/platforms/libqvnc.so",
                 "PySide6/Qt/plugins/platforms/libqeglfs.so", "PySide6/Qt/plugins/generic/libqevdevmouseplugin.so",
                 "PySide6/Qt/plugins/imageformats/libqtiff.so", "PySide6/Qt/plugins/platformthemes/libqgtk3.so"):
        assert not keep(path), path


def test_dangling_links_to_left_out_files_are_dropped():
    binaries = [("PySide6/Qt/lib/libQt6Core.so.6", "/x/libQt6Core.so.6", "BINARY")]
    datas = [("libQt6Core.so.6", "PySide6/Qt/lib/libQt6Core.so.6", "SYMLINK"),
             ("libQt6Network.so.6", "PySide6/Qt/lib/libQt6Network.so.6", "SYMLINK"),
             ("docs/user-guide.md", "/x/user-guide.md", "DATA")]
    kept = qp.drop_dangling_symlinks(datas, binaries, log=lambda *_: None)
    assert [e[0] for e in kept] == ["libQt6Core.so.6", "docs/user-guide.md"]


def test_build_fails_when_a_kept_file_links_to_a_left_out_library(tmp_path, monkeypatch):
    for name in ("libqvnc.so", "libqxcb.so", "libQt6Network.so.6", "libQt6XcbQpa.so.6"):
        (tmp_path / name).write_bytes(b"")
    links = {"libqvnc.so": ["libQt6Network.so.6"], "libqxcb.so": ["libQt6XcbQpa.so.6", "libc.so.6"]}
    monkeypatch.setattr(qp, "_needed", lambda src: links.get(Path(src).name, []))
    toc = {n: (f"PySide6/Qt/x/{n}", str(tmp_path / n), "BINARY") for n in links | {"libQt6Network.so.6": 0, "libQt6XcbQpa.so.6": 0}}
    before = list(toc.values())
    # dropping the VNC plugin with the library only it needs is consistent ...
    qp.check_needed_closure(before, [toc["libqxcb.so"], toc["libQt6XcbQpa.so.6"]])
    # ... dropping a library a kept plugin links to is not
    with pytest.raises(SystemExit, match="libqxcb.so needs libQt6XcbQpa.so.6"):
        qp.check_needed_closure(before, [toc["libqxcb.so"], toc["libqvnc.so"], toc["libQt6Network.so.6"]])
