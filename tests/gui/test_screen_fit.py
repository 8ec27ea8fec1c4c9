"""The window fits the screen it opens on: the first geometry and every restored one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QMargins, QRect

from app.gui.window import fit_rect

ROOT = Path(__file__).resolve().parents[2]


def _open_on_screen(tmp_path, width: int, height: int, scale: str | None = None, demo: bool = False) -> dict:
    config = tmp_path / "screen.json"
    config.write_text(json.dumps({"screens": [{"name": "s", "x": 0, "y": 0, "width": width, "height": height,
                                               "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1}]}))
    env = {**os.environ, "QT_QPA_PLATFORM": f"offscreen:configfile={config}", "PYTHONPATH": str(ROOT),
           "QMF_STUDIO_SETTINGS": str(tmp_path / "settings.ini")}
    env.pop("QT_SCALE_FACTOR", None)
    if scale:
        env["QT_SCALE_FACTOR"] = scale
    proc = subprocess.run([sys.executable, "-m", "tests.gui.screen_probe", *(["--demo"] if demo else [])], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_first_window_fits_a_1366x768_laptop_with_everything_in_view(tmp_path):
    shown = _open_on_screen(tmp_path, 1366, 768, demo=True)
    assert shown["fits"] and shown["predicted"], shown
    for part in ("status_bar", "audio_degrade", "image_degrade", "sweep"):
        assert shown[part] == 1.0, (part, shown)
    assert not shown["page_scrolls"], shown


def test_first_window_fits_a_1600x1000_screen_at_twice_the_scale(tmp_path):
    shown = _open_on_screen(tmp_path, 1600, 1000, scale="2")
    assert shown["available"][2:] == [800, 500]  # device-independent pixels
    assert shown["fits"], shown
    assert shown["status_bar"] == 1.0, shown
    assert shown["page_scrolls"], "below its minimum size the Predict page scrolls"


def test_the_inputs_fit_sideways_on_a_1366x768_laptop_at_twice_the_scale(tmp_path):
    """683x384 device-independent pixels, the smallest screen the window is made for: the input
    column is as wide as its panels (no sideways scroll bar in it) and the page fits the width."""
    shown = _open_on_screen(tmp_path, 1366, 768, scale="2", demo=True)
    assert shown["available"][2:] == [683, 384]
    assert shown["fits"] and shown["predicted"], shown
    assert not shown["inputs_scroll_sideways"], shown
    assert not shown["page_scrolls_sideways"], shown


def test_a_restored_geometry_larger_than_the_screen_is_fitted(qtbot, tmp_path):
    """A geometry saved on a big monitor, restored on a small one."""
    from PySide6.QtCore import QSettings

    from app.gui.window import MainWindow

    settings = QSettings(str(tmp_path / "big.ini"), QSettings.Format.IniFormat)
    big = MainWindow(settings=settings)
    qtbot.addWidget(big)
    available = big.screen().availableGeometry()
    big.setGeometry(available.x() + 50, available.y() + 50, available.width() + 900, available.height() + 700)
    big.show()
    big.close()
    again = MainWindow(settings=settings)
    qtbot.addWidget(again)
    again.show()
    assert available.contains(again.frameGeometry())
    again.close()


@pytest.mark.parametrize(("want", "available", "frame", "expected"), [
    (QRect(0, 0, 1360, 860), QRect(0, 0, 1366, 740), QMargins(4, 32, 4, 4), QRect(4, 32, 1358, 704)),
    (QRect(3000, 50, 600, 400), QRect(0, 0, 1366, 768), QMargins(), QRect(766, 50, 600, 400)),
    (QRect(100, 100, 300, 200), QRect(0, 0, 1366, 768), QMargins(4, 32, 4, 4), QRect(100, 100, 300, 200)),
    (QRect(0, 0, 2720, 1720), QRect(1600, 0, 800, 500), QMargins(), QRect(1600, 0, 800, 500)),
])
def test_fit_rect_keeps_the_frame_inside_the_available_area(want, available, frame, expected):
    assert fit_rect(want, available, frame) == expected
