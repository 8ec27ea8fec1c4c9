"""The Review page's bars: filters over the table, flag thresholds, and the message bar.

Each bar owns its widgets and says what changed through one signal; the page decides what to do.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from app.review.flags import FlagThresholds
from app.review.session import ANY_FLAG, NO_FLAG, ReviewSession, RowFilter

ALL = "(all)"
SEARCH_QUIET_MS = 200
THRESHOLD_QUIET_MS = 300


class FilterBar(QWidget):
    """flag / label / prediction / correct / status / verdict choices and an id search (SQL filters)."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.combos: dict[str, QComboBox] = {name: QComboBox() for name in
                                             ("flag", "label", "prediction", "correct", "status", "verdict")}
        self.combos["correct"].addItems([ALL, "correct", "wrong", "unlabelled"])
        self.combos["status"].addItems([ALL, "done", "ok", "error", "pending"])
        self.combos["verdict"].addItems([ALL, "none", "accept", "reject", "relabel"])
        for name, combo in self.combos.items():
            layout.addWidget(QLabel(name))
            layout.addWidget(combo)
            combo.currentIndexChanged.connect(lambda _i: self.changed.emit())
        self.search = QLineEdit(placeholderText="search id…", clearButtonEnabled=True)
        layout.addWidget(self.search, 1)
        self._search_timer = QTimer(self, singleShot=True, interval=SEARCH_QUIET_MS)
        self._search_timer.timeout.connect(self.changed.emit)
        self.search.textChanged.connect(lambda _t: self._search_timer.start())

    def current_filter(self) -> RowFilter:
        def val(name: str) -> str | None:
            t = self.combos[name].currentText()
            return None if t in ("", ALL) else t

        return RowFilter(flag=val("flag"), label=val("label"), prediction=val("prediction"),
                         correctness=val("correct"), status=val("status"), verdict=val("verdict"),
                         search=self.search.text().strip() or None)

    def set_values(self, **values: str) -> None:
        """Set filters by name (flag, label, prediction, correct, status, verdict, search), quietly."""
        for name, value in values.items():
            if name == "search":
                self.search.blockSignals(True)
                self.search.setText(value)
                self.search.blockSignals(False)
                continue
            combo = self.combos[name]
            combo.blockSignals(True)
            if combo.findText(value) < 0:
                combo.addItem(value)
            combo.setCurrentText(value)
            combo.blockSignals(False)

    def fill_choices(self, session: ReviewSession) -> None:
        """The flags, labels and predictions the session holds (keeping the current choice if it still exists)."""
        for name, values in (("flag", [ANY_FLAG, NO_FLAG, *session.distinct("flag")]),
                             ("label", session.distinct("label")), ("prediction", session.distinct("prediction"))):
            combo = self.combos[name]
            current = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            combo.addItems([ALL, *values])
            combo.setCurrentText(current if current in values else ALL)
            combo.blockSignals(False)


class ThresholdBar(QWidget):
    """When a pair is flagged; `changed` comes once the user has stopped turning the knobs."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.low_share = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.05, decimals=2, value=0.25)
        self.low_confidence = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.05, decimals=2, value=0.6)
        self.flag_disagreement = QCheckBox("inputs disagree", checked=True)
        self.flag_mismatch = QCheckBox("label mismatch", checked=True)
        layout.addWidget(QLabel("Flag: an input's share below"))
        layout.addWidget(self.low_share)
        layout.addWidget(QLabel("fused probability below"))
        layout.addWidget(self.low_confidence)
        layout.addWidget(self.flag_disagreement)
        layout.addWidget(self.flag_mismatch)
        layout.addStretch(1)
        self._timer = QTimer(self, singleShot=True, interval=THRESHOLD_QUIET_MS)
        self._timer.timeout.connect(self.changed.emit)
        for w in (self.low_share, self.low_confidence):
            w.valueChanged.connect(lambda _v: self._timer.start())
        for w in (self.flag_disagreement, self.flag_mismatch):
            w.toggled.connect(lambda _v: self._timer.start())

    def thresholds(self) -> FlagThresholds:
        return FlagThresholds(low_share=self.low_share.value(), low_confidence=self.low_confidence.value(),
                              disagreement=self.flag_disagreement.isChecked(),
                              label_mismatch=self.flag_mismatch.isChecked())

    def show_thresholds(self, th: FlagThresholds) -> None:
        """Show these thresholds without announcing a change."""
        for w, v in ((self.low_share, th.low_share), (self.low_confidence, th.low_confidence)):
            w.blockSignals(True)
            w.setValue(v)
            w.blockSignals(False)
        for w, v in ((self.flag_disagreement, th.disagreement), (self.flag_mismatch, th.label_mismatch)):
            w.blockSignals(True)
            w.setChecked(v)
            w.blockSignals(False)


class MessageBar(QWidget):
    """One line about the session (pairs missing, a model mismatch, a failure) with an optional button."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel("", wordWrap=True)
        self.button = QPushButton("")
        self.button.clicked.connect(lambda: self._action() if self._action else None)
        self._action: Callable[[], None] | None = None
        layout.addWidget(self.label, 1)
        layout.addWidget(self.button)
        self.setVisible(False)

    def show_message(self, text: str, button: str = "", action: Callable[[], None] | None = None) -> None:
        self.label.setText(text)
        self.button.setText(button)
        self.button.setVisible(bool(button))
        self._action = action
        self.setVisible(True)

    def hide_message(self) -> None:
        self.setVisible(False)
        self._action = None
