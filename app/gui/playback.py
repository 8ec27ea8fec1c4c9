"""Audio playback for the previews: `AudioPlayer`, a row of buttons that plays a waveform.

    player = AudioPlayer()
    player.set_audio(waveform, sample_rate)       # the recording (float in [-1, 1], mono)
    player.set_degraded(degraded_waveform)        # what the model heard (same rate); None: not degraded
    player.positionChanged.connect(preview.set_play_position)   # seconds; None when it stops
    player.play("original" | "degraded"); player.stop(); player.is_playing()

Output goes through `miniaudio` (a 0.6 MB wheel that bundles its C library; PulseAudio, ALSA or JACK
are opened at run time, WASAPI/DirectSound on Windows, Core Audio on macOS). Its null backend plays
into nothing at the real rate: `QMF_STUDIO_AUDIO=null` (tests, machines without sound) picks it. When
no output device opens, the buttons are disabled and say why; playback never raises.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QWidget

AUDIO_ENV = "QMF_STUDIO_AUDIO"  # "null": play into miniaudio's null device
TICK_MS = 30
ORIGINAL, DEGRADED = "original", "degraded"


def output_backends():
    """miniaudio backends to try, in order: the platform's real ones, never the silent null device
    (miniaudio would fall back to it and 'play' with no sound) unless QMF_STUDIO_AUDIO=null asks for it."""
    import miniaudio

    b = miniaudio.Backend
    if os.environ.get(AUDIO_ENV, "").lower() == "null":
        return [b.NULL]
    if sys.platform.startswith("win"):
        return [b.WASAPI, b.DSOUND, b.WINMM]
    if sys.platform == "darwin":
        return [b.COREAUDIO]
    return [b.PULSEAUDIO, b.ALSA, b.JACK]


class AudioPlayer(QWidget):
    """'▶ Play' (the recording) and '▶ Degraded' (what the model heard); each turns into '■ Stop'."""

    positionChanged = Signal(object)  # seconds into what is playing; None when playback stops
    playingChanged = Signal(bool)

    def __init__(self, parent: QWidget | None = None, backends=None):
        super().__init__(parent)
        self._backends = backends
        self._audio: dict[str, np.ndarray | None] = {ORIGINAL: None, DEGRADED: None}
        self._rate = 0
        self._device = None
        self._playing: str | None = None
        self._frames = 0  # frames handed to the device (written by its thread)
        self._total = 0
        self._exhausted = False
        self._stop_request = False
        self.unavailable: str | None = None  # why nothing can play here (None: not known to fail)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        self.play_button = QPushButton("▶ Play")
        self.play_button.setToolTip("Play the recording")
        self.play_button.clicked.connect(lambda: self._toggle(ORIGINAL))
        self.degraded_button = QPushButton("▶ Degraded")
        self.degraded_button.setToolTip("Play the degraded version, as the model heard it")
        self.degraded_button.clicked.connect(lambda: self._toggle(DEGRADED))
        layout.addWidget(self.play_button)
        layout.addWidget(self.degraded_button)
        self._timer = QTimer(self, interval=TICK_MS, timeout=self._tick)
        if importlib.util.find_spec("miniaudio") is None:  # imported on first play: it costs ~50 ms at start-up
            self._disable("Playback needs the Python package miniaudio (pip install miniaudio)")
        self._refresh()

    # --- the API ---------------------------------------------------------------------------------------
    def set_audio(self, waveform: np.ndarray | None, sample_rate: int) -> None:
        """The recording to play (mono float in [-1, 1]); None: nothing to play. Stops any playback."""
        self.stop()
        self._rate = int(sample_rate)
        self._audio[ORIGINAL] = self._pcm(waveform)
        self._audio[DEGRADED] = None
        self._refresh()

    def set_degraded(self, waveform: np.ndarray | None) -> None:
        """What the model heard, at the same rate; None when the input is not degraded."""
        if self._playing == DEGRADED:
            self.stop()
        self._audio[DEGRADED] = self._pcm(waveform)
        self._refresh()

    def play(self, which: str = ORIGINAL) -> bool:
        """Start playing `which`; False (and the buttons say why) when it cannot."""
        self.stop()
        samples = self._audio.get(which)
        if samples is None or self.unavailable is not None:
            return False
        try:
            import miniaudio

            self._device = miniaudio.PlaybackDevice(
                output_format=miniaudio.SampleFormat.SIGNED16, nchannels=1, sample_rate=self._rate,
                buffersize_msec=60, backends=self._backends or output_backends(), app_name="QMF Studio")
            self._frames, self._total, self._exhausted, self._stop_request = 0, len(samples), False, False
            stream = self._stream(samples)
            next(stream)
            self._device.start(stream)
        except Exception as exc:  # noqa: BLE001 - miniaudio raises its own errors for every missing device
            self._close_device()
            self._disable(f"No audio output could be opened ({exc}); playback is off")
            return False
        self._playing = which
        self._timer.start()
        self._refresh()
        self.playingChanged.emit(True)
        return True

    def stop(self) -> None:
        if self._playing is None:
            return
        self._stop_request = True
        self._timer.stop()
        self._close_device()
        self._playing = None
        self._refresh()
        self.positionChanged.emit(None)
        self.playingChanged.emit(False)

    def is_playing(self) -> bool:
        return self._playing is not None

    def playing(self) -> str | None:
        return self._playing

    def position(self) -> float:
        """Seconds into what is playing (frames handed to the device, less its buffer)."""
        if self._playing is None or self._rate <= 0:
            return 0.0
        latency = int(self._rate * 0.06)
        return max(0, min(self._frames - latency, self._total)) / self._rate

    # --- inside ------------------------------------------------------------------------------------------
    @staticmethod
    def _pcm(waveform: np.ndarray | None) -> np.ndarray | None:
        if waveform is None:
            return None
        x = np.asarray(waveform, dtype=np.float32).reshape(-1)
        if x.size == 0:
            return None
        return (np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16)

    def _stream(self, samples: np.ndarray):
        """miniaudio's callback generator (runs on its thread): the next `wanted` frames each time."""
        wanted = yield b""
        pos = 0
        while pos < len(samples) and not self._stop_request:
            chunk = samples[pos:pos + wanted]
            pos += len(chunk)
            self._frames = pos
            wanted = yield chunk.tobytes()
        self._exhausted = True
        while not self._stop_request:  # silence until the GUI thread closes the device
            wanted = yield bytes(2 * wanted)

    def _tick(self) -> None:
        if self._playing is None:
            return
        if self._exhausted and self._frames >= self._total and self.position() >= self._total / self._rate:
            self.positionChanged.emit(self._total / self._rate)
            self.stop()
            return
        if self._exhausted:
            self._frames += int(self._rate * TICK_MS / 1000)  # the device drains its buffer
        self.positionChanged.emit(self.position())

    def _close_device(self) -> None:
        device, self._device = self._device, None
        if device is not None:
            try:
                device.close()
            except Exception:  # noqa: BLE001 - closing a device that failed half-way must not raise
                pass

    def _disable(self, reason: str) -> None:
        self.unavailable = reason
        self._refresh()

    def _toggle(self, which: str) -> None:
        if self._playing == which:
            self.stop()
        else:
            self.play(which)

    def _refresh(self) -> None:
        for which, button, idle, tip in (
                (ORIGINAL, self.play_button, "▶ Play", "Play the recording"),
                (DEGRADED, self.degraded_button, "▶ Degraded", "Play the degraded version, as the model heard it")):
            has = self._audio[which] is not None
            if self.unavailable is not None:
                button.setText("No audio output" if which == ORIGINAL else idle)
                button.setToolTip(self.unavailable)
                button.setEnabled(False)
                continue
            button.setText("■ Stop" if self._playing == which else idle)
            button.setEnabled(has)
            button.setToolTip(tip if has else ("Not degraded: move the slider to hear what the model hears"
                                               if which == DEGRADED else "No recording open"))
