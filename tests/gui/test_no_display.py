"""Without a screen the app says so plainly instead of aborting inside Qt."""

import os
import subprocess
import sys

import pytest


def test_no_display_gives_a_clear_message_and_exit_code():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    proc = subprocess.run([sys.executable, "-m", "app", "--no-demo"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert "no display found" in proc.stderr
    assert "Aborted" not in proc.stderr and "Traceback" not in proc.stderr


def _x11(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)


def test_every_missing_x11_library_is_named_in_one_install_command(tmp_path):
    """The hint comes from the plugin's real dependency list: hide two libraries, both are named (with any
    that this machine lacks already: a machine without the X11 libraries installed names them too)."""
    from app.gui import xcb_libs

    plugin = xcb_libs.xcb_plugin_path()
    if plugin is None or not sys.platform.startswith("linux"):
        pytest.skip("PySide6's X11 plugin is not installed here")
    full = xcb_libs.dependency_closure(plugin)
    hidden = {"libxcb-icccm.so.4", "libxcb-keysyms.so.1"}
    assert hidden <= set(full.found) | set(full.missing), "the plugin's dependency list should include both"
    # A library folder holding everything the plugin needs except the two hidden ones.
    for name, path in full.found.items():
        if name not in hidden and "PySide6" not in path:
            (tmp_path / name).symlink_to(path)
    partial = xcb_libs.dependency_closure(plugin, ld_library_path="", cache={}, default_dirs=(str(tmp_path),))
    assert set(partial.missing) == hidden | set(full.missing)
    hint = xcb_libs.install_hint(sorted(hidden))
    assert "sudo apt install libxcb-icccm4 libxcb-keysyms1;" in hint
    assert hint.count("sudo apt install") == 1


def test_missing_x11_libraries_stop_the_start_with_the_hint_before_qt(monkeypatch, capsys):
    from app.gui import main as gui_main
    from app.gui import xcb_libs

    _x11(monkeypatch)
    monkeypatch.setattr(xcb_libs, "missing_xcb_libraries", lambda: ["libxcb-icccm.so.4", "libxcb-cursor.so.0"])
    assert gui_main.main(["--no-demo"]) == 2
    err = capsys.readouterr().err
    assert "sudo apt install libxcb-cursor0 libxcb-icccm4" in err
    monkeypatch.setattr(xcb_libs, "missing_xcb_libraries", lambda: [])
    assert gui_main._missing_x11_library() is None
    monkeypatch.setattr(xcb_libs, "missing_xcb_libraries", lambda: ["libxcb-icccm.so.4"])
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")  # not X11: nothing to say
    assert gui_main._missing_x11_library() is None


def test_a_file_that_is_not_elf_has_no_dependency_list(tmp_path):
    from app.gui.xcb_libs import dependency_closure, read_elf

    junk = tmp_path / "libjunk.so"
    junk.write_bytes(b"\x7fELF" + b"\0" * 10)
    assert read_elf(junk) is None
    assert dependency_closure(junk).missing == {}
