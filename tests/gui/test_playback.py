"""Playback: the recording and what the model heard, against miniaudio's null device."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("miniaudio")

from app.gui.playback import AUDIO_ENV, AudioPlayer  # noqa: E402

RATE = 8000


@pytest.fixture
def null_audio(monkeypatch):
    monkeypatch.setenv(AUDIO_ENV, "null")


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(int(RATE * seconds), dtype=np.float32) / RATE
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def test_position_advances_and_playback_ends_by_itself(qtbot, null_audio):
    player = AudioPlayer()
    qtbot.addWidget(player)
    player.set_audio(_tone(0.4), RATE)
    positions = []
    player.positionChanged.connect(positions.append)
    with qtbot.waitSignal(player.playingChanged, timeout=5000, check_params_cb=lambda p: p is False):
        qtbot.mouseClick(player.play_button, qtbot_button())
        assert player.is_playing() and player.play_button.text() == "■ Stop"
    seconds = [p for p in positions if p is not None]
    assert len(seconds) >= 2 and seconds == sorted(seconds)
    assert seconds[-1] == pytest.approx(0.4, abs=1e-6)
    assert positions[-1] is None  # the marker goes away when it stops
    assert player.play_button.text() == "▶ Play"


def test_stop_ends_playback_at_once(qtbot, null_audio):
    player = AudioPlayer()
    qtbot.addWidget(player)
    player.set_audio(_tone(30.0), RATE)
    assert player.play()
    qtbot.waitUntil(lambda: player.position() > 0, timeout=5000)
    qtbot.mouseClick(player.play_button, qtbot_button())  # the same button stops
    assert not player.is_playing()
    assert player.play_button.text() == "▶ Play"


def test_degraded_version_plays_only_when_there_is_one(qtbot, null_audio):
    player = AudioPlayer()
    qtbot.addWidget(player)
    player.set_audio(_tone(10.0), RATE)
    assert not player.degraded_button.isEnabled()
    player.set_degraded(_tone(10.0) * 0.5)
    assert player.degraded_button.isEnabled()
    assert player.play("degraded") and player.playing() == "degraded"
    assert player.degraded_button.text() == "■ Stop" and player.play_button.text() == "▶ Play"
    player.set_degraded(None)  # no longer degraded: what was playing is gone
    assert not player.is_playing() and not player.degraded_button.isEnabled()


def test_no_output_device_disables_the_button_and_says_why(qtbot, monkeypatch):
    import miniaudio

    other_os = miniaudio.Backend.WASAPI if not __import__("sys").platform.startswith("win") else miniaudio.Backend.COREAUDIO
    player = AudioPlayer(backends=[other_os])  # a backend this system does not have: no device opens
    qtbot.addWidget(player)
    player.set_audio(_tone(0.2), RATE)
    assert player.play_button.isEnabled()
    qtbot.mouseClick(player.play_button, qtbot_button())
    assert not player.is_playing()
    assert not player.play_button.isEnabled()
    assert player.play_button.text() == "No audio output"
    assert "No audio output could be opened" in player.play_button.toolTip()


def test_audio_panel_plays_the_recording_and_moves_the_marker(qtbot, window, pair, null_audio):
    page = window.predict
    with qtbot.waitSignal(page.resultShown, timeout=60000):
        page.set_files(pair)
    panel = page.panels["audio"]
    assert panel.play_button.isVisible() and panel.play_button.isEnabled()
    assert not panel.player.degraded_button.isEnabled()
    with qtbot.waitSignal(page.resultShown, timeout=60000):
        panel.set_level(6.0)
    assert panel.player.degraded_button.isEnabled()  # now there is something degraded to hear
    seen = []
    panel.player.positionChanged.connect(lambda s: seen.append(panel.preview.play_position()))
    with qtbot.waitSignal(panel.player.playingChanged, timeout=10000, check_params_cb=lambda p: p is False):
        qtbot.mouseClick(panel.play_button, qtbot_button())
    assert any(s is not None and s > 0 for s in seen)
    assert panel.preview.play_position() is None


def qtbot_button():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton
