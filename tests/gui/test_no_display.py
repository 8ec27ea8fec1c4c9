"""Without a screen the app says so plainly instead of aborting inside Qt."""

import os
import subprocess
import sys


def test_no_display_gives_a_clear_message_and_exit_code():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    proc = subprocess.run([sys.executable, "-m", "app", "--no-demo"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert "no display found" in proc.stderr
    assert "Aborted" not in proc.stderr and "Traceback" not in proc.stderr


def test_missing_x11_cursor_library_is_named_before_qt_aborts(monkeypatch):
    import ctypes.util

    from app.gui import main as gui_main

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    hint = gui_main._missing_x11_library()
    assert hint is not None and "libxcb-cursor0" in hint
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: f"lib{name}.so.0")
    assert gui_main._missing_x11_library() is None
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")  # not X11: nothing to say
    assert gui_main._missing_x11_library() is None
