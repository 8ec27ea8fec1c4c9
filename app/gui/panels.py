"""Input panels: one per modality of the loaded model, chosen by the modality's kind.

A panel holds the file for its input, shows what the model sees (the degraded raw array the worker
returns), the file's size and format, a per-input error message, and the degradation explorer's
controls for that input (corruption kind + severity slider). It holds no model code: it emits
signals and the window asks the worker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.gui.labels import ElidedLabel
from app.gui.playback import AudioPlayer
from app.gui.previews import AudioPreview, GenericPreview, ImagePreview, Preview, TextPreview
from app.modalities import modality_class

SLIDER_STEPS_PER_LEVEL = 10  # slider 0..100 -> severity 0.0..10.0


def corruption_kinds_for(kind: str) -> tuple[str, ...]:
    """The corruptions a kind offers; none for a kind this version does not know (a newer model's)."""
    try:
        return tuple(modality_class(kind).corruption_kinds)
    except ValueError:
        return ()


def extensions_for(kind: str) -> tuple[str, ...]:
    try:
        return tuple(modality_class(kind).extensions)
    except ValueError:
        return ()


class InputPanel(QGroupBox):
    """Base panel: file, preview, info, error and degradation controls for one modality."""

    preview_class: type[Preview] = GenericPreview
    openRequested = Signal(str)  # modality name
    degradationChanged = Signal(str)  # modality name

    def __init__(self, spec: dict[str, Any], parent: QWidget | None = None):
        self.name: str = spec["name"]
        self.kind: str = spec.get("kind", "")
        self.params: dict[str, Any] = dict(spec.get("preprocessing") or {})
        super().__init__(f"{self.name}  ({self.kind or 'unknown kind'})", parent)
        self.path: str | None = None
        self.good_path: str | None = None  # the last file of this input that was read and predicted
        self.error: str | None = None
        self._shown_raw: np.ndarray | None = None
        self.extensions = extensions_for(self.kind)

        layout = QVBoxLayout(self)
        layout.setSpacing(4)
        top = QHBoxLayout()
        self.file_label = ElidedLabel("no file (a blank input is used)")  # cut in the middle: the extension stays
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_button = QPushButton(f"Open {self.name}…")
        self.open_button.setToolTip(f"Open a {self.kind} file for the '{self.name}' input "
                                    f"({', '.join(self.extensions) or 'any file'}); or drop it on the window")
        self.open_button.clicked.connect(lambda: self.openRequested.emit(self.name))
        top.addWidget(self.file_label, 1)
        self._add_extra_buttons(top)
        top.addWidget(self.open_button)
        layout.addLayout(top)

        self.preview = self.preview_class(self.params)
        layout.addWidget(self.preview, 1)
        self.info_label = QLabel("")
        self.info_label.setWordWrap(True)
        self.info_label.setStyleSheet("color: gray")
        layout.addWidget(self.info_label)
        self.error_label = QLabel("")
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.setStyleSheet("color: #C62828; font-weight: bold")
        self.error_label.setVisible(False)
        layout.addWidget(self.error_label)

        degrade = QHBoxLayout()
        degrade.addWidget(QLabel("Degrade:"))
        self.corruption_box = QComboBox()
        self.corruption_box.addItems(list(corruption_kinds_for(self.kind)))
        self.corruption_box.setToolTip("Corruption applied to this input before the model sees it")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 10 * SLIDER_STEPS_PER_LEVEL)
        self.slider.setPageStep(SLIDER_STEPS_PER_LEVEL)
        self.slider.setToolTip("Severity, 0 (clean) to 10 (worst). Moving it re-predicts live.")
        self.level_label = QLabel("0.0")
        self.level_label.setMinimumWidth(30)
        # "missing" is on or off, not a severity: a check box stands in for the slider (it sets the
        # level to 0 or 10, which is all the corruption distinguishes).
        self.missing_box = QCheckBox("leave this input out")
        self.missing_box.setToolTip("The model gets a blank input instead, as if the file were missing")
        self.missing_box.setVisible(False)
        degrade.addWidget(self.corruption_box)
        degrade.addWidget(self.slider, 1)
        degrade.addWidget(self.missing_box, 1)
        degrade.addWidget(self.level_label)
        layout.addLayout(degrade)
        if self.corruption_box.count() == 0:
            for w in (self.corruption_box, self.slider):
                w.setEnabled(False)
        self.slider.valueChanged.connect(self._on_slider)
        self.missing_box.toggled.connect(lambda on: self.set_level(10.0 if on else 0.0))
        self.corruption_box.currentTextChanged.connect(self._on_kind)

    def _add_extra_buttons(self, layout: QHBoxLayout) -> None:
        """Subclasses add buttons next to 'Open' (e.g. audio playback)."""

    # --- state ---------------------------------------------------------------------------------------
    def set_file(self, path: str | Path | None) -> None:
        self.path = str(path) if path is not None else None
        if self.path is None:
            self.good_path = None  # emptied on purpose: nothing to go back to
        self.clear_error()
        self.file_label.setText(Path(self.path).name if self.path else "no file (a blank input is used)")
        self.file_label.setToolTip(self.path or "")
        self.info_label.setText("reading…" if self.path else "")

    def mark_good(self) -> None:
        """The current file was read and predicted: a later file that fails goes back to this one."""
        self.good_path = self.path
        self._good_info = self.info_label.text()

    def show_error(self, message: str) -> bool:
        """A bad file: say what is wrong. Returns True when the panel went back to its previous good
        file (kept with its preview); False when there is none (the input is then unusable, and the
        page does not predict with a blank in its place)."""
        self.error = message
        self.error_label.setText(message)
        self.error_label.setVisible(True)
        if self.good_path is not None and self.good_path != self.path:
            self.path = self.good_path
            self.file_label.setText(Path(self.path).name)
            self.file_label.setToolTip(self.path)
            self.info_label.setText(getattr(self, "_good_info", ""))
            return True
        self.path = None
        self.good_path = None
        self.file_label.setText("no usable file")
        self.file_label.setToolTip("")
        self.info_label.setText("")
        self.preview.show_raw(None)
        self._shown_raw = None
        return False

    def blocks_prediction(self) -> bool:
        """An open failed and no good file is left: predicting now would use a blank instead."""
        return self.error is not None and self.path is None

    def clear_error(self) -> None:
        self.error = None
        self.error_label.setVisible(False)
        self.error_label.setText("")

    def show_input(self, raw: np.ndarray | None, info: str = "", clean: np.ndarray | None = None) -> None:
        """Show what the model sees (`raw`, degraded); `clean` is the input as read, before degrading."""
        # The worker hands back the same (cached) array for an input that was not degraded: skip
        # redrawing it, so dragging one input's slider does not redraw the others.
        if raw is None or raw is not self._shown_raw:
            self.preview.show_raw(raw)
            self._shown_raw = raw
        self.info_label.setText(info)

    def corruption(self) -> tuple[str, float]:
        return self.corruption_box.currentText(), self.level()

    def corruption_kinds(self) -> list[str]:
        return [self.corruption_box.itemText(i) for i in range(self.corruption_box.count())]

    def level(self) -> float:
        return self.slider.value() / SLIDER_STEPS_PER_LEVEL

    def set_level(self, level: float) -> None:
        self.slider.setValue(int(round(level * SLIDER_STEPS_PER_LEVEL)))

    def set_corruption_kind(self, kind: str) -> None:
        self.corruption_box.setCurrentText(kind)

    def reset_degradation(self) -> None:
        self.slider.setValue(0)
        self.missing_box.blockSignals(True)
        self.missing_box.setChecked(False)
        self.missing_box.blockSignals(False)

    def file_filter(self) -> str:
        return ";;".join(f for f in (self.type_filter(), "All files (*)") if f)

    def type_filter(self) -> str:
        """'Image files (*.png *.PNG …)' for a file dialog; '' for a kind with no known suffixes."""
        pattern = " ".join(f"*{e}" for e in self.extensions)
        if pattern:  # upper-case too: file dialogs match case-sensitively on Linux
            pattern += " " + " ".join(f"*{e.upper()}" for e in self.extensions)
        return f"{self.kind.capitalize() or 'Input'} files ({pattern})" if pattern else ""

    def apply_palette(self) -> None:
        self.preview.apply_palette()

    def is_on_off(self) -> bool:
        """The chosen corruption has no severity (it is either applied or not)."""
        return self.corruption_box.currentText() == "missing"

    def _on_slider(self, value: int) -> None:
        self.level_label.setText(f"{value / SLIDER_STEPS_PER_LEVEL:.1f}")
        self.missing_box.blockSignals(True)
        self.missing_box.setChecked(value > 0)
        self.missing_box.blockSignals(False)
        self.degradationChanged.emit(self.name)

    def _on_kind(self, _text: str) -> None:
        on_off = self.is_on_off()
        self.slider.setVisible(not on_off)
        self.level_label.setVisible(not on_off)
        self.missing_box.setVisible(on_off)
        if on_off and 0 < self.level() < 10:
            self.set_level(10.0)  # a level in between means "missing" too: say it as it is
            return
        if self.level() > 0:
            self.degradationChanged.emit(self.name)


class ImagePanel(InputPanel):
    preview_class = ImagePreview


class AudioPanel(InputPanel):
    """Waveform + spectrogram, and playback of the recording and of what the model heard."""

    preview_class = AudioPreview

    def _add_extra_buttons(self, layout: QHBoxLayout) -> None:
        self.player = AudioPlayer()
        self.play_button = self.player.play_button
        self.player.positionChanged.connect(lambda seconds: self.preview.set_play_position(seconds))
        self._clean = None
        layout.addWidget(self.player)

    def set_file(self, path):
        super().set_file(path)
        if self.path is None:
            self._clean = None
            self.player.set_audio(None, self._rate())

    def show_error(self, message: str) -> bool:
        kept = super().show_error(message)
        if not kept:
            self._clean = None
            self.player.set_audio(None, self._rate())
        return kept

    def show_input(self, raw: np.ndarray | None, info: str = "", clean: np.ndarray | None = None) -> None:
        super().show_input(raw, info, clean)
        if self.path is None:  # a blank input: nothing worth playing
            self._clean = None
            self.player.set_audio(None, self._rate())
            return
        clean = raw if clean is None else clean
        if clean is not self._clean:
            self._clean = clean
            self.player.set_audio(clean, self._rate())
        self.player.set_degraded(None if raw is None or raw is clean else raw)

    def _rate(self) -> int:
        return int(self.params.get("sample_rate", 8000))


class TextPanel(InputPanel):
    preview_class = TextPreview


class GenericPanel(InputPanel):
    """A modality kind this version of the app has no special view for."""

    preview_class = GenericPreview


PANELS: dict[str, type[InputPanel]] = {"image": ImagePanel, "audio": AudioPanel, "text": TextPanel}


def make_panel(spec: dict[str, Any], parent: QWidget | None = None) -> InputPanel:
    """The panel for one entry of the manifest's `model.modalities` list."""
    return PANELS.get(spec.get("kind", ""), GenericPanel)(spec, parent)
