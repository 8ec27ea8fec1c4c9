"""The Predict page: one input panel per modality, the result, the degradation explorer and sweep.

The page never runs model code. It reads the model's manifest from the file header (no torch) to
build its panels, and sends every load, prediction and sweep to its `PredictionService`, whose
worker thread answers with typed messages; the service drops answers to superseded requests, so the
page only ever draws the answer to its latest request. Status lines go out through `statusMessage`
(the window shows them in its status bar); menus are declared in `app.gui.actions`, and their
handlers here are plain methods.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QScrollArea,
    QSplitter,
    QWidget,
)

from app.gui.actions import Action
from app.gui.collector import freeze_long_lived_objects
from app.gui.predict import files as dialogs
from app.gui.predict.demo import demo_actions
from app.gui.predict.dialogs import PageDialogsMixin
from app.gui.predict.inputs import InputColumn
from app.gui.predict.messages import (
    PartlyDecoded,
    Predicted,
    PredictFailed,
)
from app.gui.predict.model_card import model_card_dialog
from app.gui.predict.model_life import ModelLife
from app.gui.predict.recent import RecentPairs
from app.gui.predict.service import PredictionService
from app.gui.predict.sweep_control import PageSweepMixin
from app.resources import read_demo_samples

if TYPE_CHECKING:  # pragma: no cover - pyqtgraph is imported by build_views, after the first paint
    from app.gui.panels import InputPanel
    from app.gui.predict.sweep import SweepBox
    from app.gui.result_view import ResultView

DEBOUNCE_MS = 40
FREEZE_DELAY_MS = 1000
SWEEP_PLOT_AT_THE_LATEST_MS = 1500  # a deferred sweep plot is built by then even without a result
STATUS_MS = 15000


class PredictPage(PageDialogsMixin, PageSweepMixin, QWidget):
    """The Predict tab. `open_model(None)` opens the bundled model.

    `defer_views=True`: the charts, previews and input panels are built later, by
    `build_views()` (the window calls it after its first paint). Until then the page shows the model
    line and the status widgets, the model loads in the worker, and the service holds its answers
    to predictions, so every receiver below sees a page with its views.
    """

    resultShown = Signal(object)  # the prediction JSON, after the charts are updated
    inputFailed = Signal(str, str)  # modality name ("" = general), message
    sweepShown = Signal(object)  # the sweep as JSON (SweepDone.as_json)
    modelReady = Signal(object)  # the manifest
    modelFailed = Signal(str)  # message: no model could be loaded
    statusMessage = Signal(str, int)  # text, milliseconds ("" clears)
    titleChanged = Signal(str)  # the open model's name ("" = none)
    inputsChanged = Signal()  # the panels were rebuilt for another model

    result_view: ResultView
    sweep_box: SweepBox

    def __init__(self, settings: QSettings, parent: QWidget | None = None, defer_views: bool = False):
        super().__init__(parent)
        self.views_built = False
        self.settings = settings
        self.recent = RecentPairs(settings)
        self.panels: dict[str, InputPanel] = {}
        self.last_result: Predicted | None = None
        self.last_sweep: dict[str, Any] | None = None
        self._sweep_files: dict[str, str | None] | None = None  # the pair the sweep was run on
        self._request_started: dict[int, float] = {}
        self._freeze_after_result = False
        self._defer_sweep_plot = defer_views  # start-up: the first prediction is drawn before the sweep plot

        self.service = PredictionService(self)
        self.service.predicted.connect(self._on_predicted)
        self.service.failed.connect(self._on_failed)
        self.service.partlyDecoded.connect(self._on_partly_decoded)
        self.service.sweepDone.connect(self._on_sweep)
        self.service.sweepFailed.connect(lambda failed: self.sweep_box.show_failure(failed))
        self.service.busyChanged.connect(self._on_busy)
        self.model = ModelLife(self)
        self.service.hold()  # until build_views: answers to predictions need the panels and charts
        self.service.start()

        self._debounce = QTimer(self, singleShot=True, interval=DEBOUNCE_MS, timeout=self.request_prediction)
        self._build()
        if not defer_views:
            self.build_views()

    # --- construction ---------------------------------------------------------------------------------
    def _build(self) -> None:
        outer = QHBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        # Below the content's minimum size (a 1366×768 screen at 2× scale is 683×384 pixels) the page
        # scrolls instead of pushing the window, its status bar and sweep off the screen.
        self.scroll = QScrollArea(widgetResizable=True, frameShape=QScrollArea.Shape.NoFrame)
        content = QWidget()
        inner = QHBoxLayout(content)
        inner.setContentsMargins(4, 4, 4, 4)
        self.main_splitter = QSplitter(Qt.Orientation.Horizontal)
        inner.addWidget(self.main_splitter)
        self.scroll.setWidget(content)
        outer.addWidget(self.scroll)

        self.inputs = InputColumn()
        self.model_banner = self.inputs.model_banner
        self.main_splitter.addWidget(self.inputs)

        self.right_splitter = QSplitter(Qt.Orientation.Vertical)
        self._views_placeholder = QLabel("Loading charts…", alignment=Qt.AlignmentFlag.AlignCenter)
        self.right_splitter.addWidget(self._views_placeholder)
        self.main_splitter.addWidget(self.right_splitter)
        self.main_splitter.setStretchFactor(0, 2)
        self.main_splitter.setStretchFactor(1, 3)
        self.main_splitter.setSizes([470, 890])

        # the page's part of the window's status bar
        self.model_status = QLabel("")
        self.busy_bar = QProgressBar(maximumWidth=90, maximumHeight=14, visible=False)
        self.busy_bar.setRange(0, 0)
        self.time_label = QLabel("")

    def build_views(self) -> None:
        """The result view, the sweep box and the model's input panels (what imports pyqtgraph)."""
        if self.views_built:
            return
        from app.gui.predict.sweep import SweepBox
        from app.gui.result_view import ResultView

        self.result_view = ResultView(show_previews=False)
        self.sweep_box = SweepBox(defer_plot=self._defer_sweep_plot)
        self.sweep_box.requested.connect(self.run_sweep)
        if not self.sweep_box.plot_built:  # the turn after the first result, or a moment after start-up
            self.resultShown.connect(self._build_sweep_plot_soon)
            QTimer.singleShot(SWEEP_PLOT_AT_THE_LATEST_MS, self, self._build_sweep_plot)
        self._views_placeholder.setParent(None)  # out of the splitter now: its sizes are for the views
        self._views_placeholder.deleteLater()
        self.right_splitter.addWidget(self.result_view)
        self.right_splitter.addWidget(self.sweep_box)
        self.right_splitter.setStretchFactor(0, 3)
        self.right_splitter.setStretchFactor(1, 1)
        self.right_splitter.setSizes([560, 240])
        self.views_built = True
        if self.manifest is not None:
            self._build_panels(self.manifest["model"]["modalities"])
            self.result_view.clear("Model ready: open or drop input files" if self.model_ready else "Loading model…")
        else:
            self.result_view.clear("Loading model…" if self.model.opening else "No model loaded")
        self.service.release()

    def status_widgets(self) -> list[QWidget]:
        """Busy indicator, model name, timing: the window puts them in its status bar."""
        return [self.busy_bar, self.model_status, self.time_label]

    def _route_drops_to_page(self) -> None:
        """Plots (QGraphicsView) and text views accept drops themselves and would swallow files
        dropped on them; switch that off so every drop reaches the window, which hands it to `open_files`."""
        for view in self.findChildren(QAbstractScrollArea):
            if view is not None and view.acceptDrops():
                view.setAcceptDrops(False)
                view.viewport().setAcceptDrops(False)

    def _say(self, text: str, ms: int = STATUS_MS) -> None:
        self.statusMessage.emit(text, ms)

    # --- model: app.gui.predict.model_life ---------------------------------------------------------------
    @property
    def manifest(self) -> dict[str, Any] | None:
        return self.model.manifest

    @property
    def model_path(self) -> str | None:
        return self.model.path

    @property
    def model_ready(self) -> bool:
        return self.model.ready

    def open_model(self, path: str | Path | None) -> bool:
        """Read the model's manifest (header only), rebuild the panels, load it in the worker."""
        return self.model.open(path)

    def open_model_in_worker(self, path: str | Path | None, prefetch: dict[str, str | None] | None = None) -> None:
        """The window's first model: its header is read in the worker too (`ModelLife.open_in_worker`)."""
        self.model.open_in_worker(path, prefetch)

    def open_bundled_model(self) -> bool:
        return self.model.open(None)

    def _build_panels(self, specs: list[dict[str, Any]]) -> None:
        """New panels for another model's inputs; the files of inputs with the same name and kind stay."""
        if not self.views_built:
            return  # build_views builds them
        previous = {name: p.path for name, p in self.panels.items()}
        self.panels = self.inputs.build_panels(specs, self.panels, self.open_input_dialog,
                                               self._on_degradation_changed)
        kinds = {s["name"]: s.get("kind") for s in specs}
        for name, file in previous.items():
            if name in self.panels and file and self.panels[name].kind == kinds.get(name):
                self.panels[name].set_file(file)
        self.result_view.set_modalities(specs, self.manifest["model"].get("labels") if self.manifest else None)
        self.sweep_box.set_modalities([s["name"] for s in specs])
        self._route_drops_to_page()
        self.last_result = None
        self.inputsChanged.emit()

    # --- inputs -------------------------------------------------------------------------------------------
    def _has_files(self) -> bool:
        return any(p.path for p in self.panels.values())

    def set_files(self, files: dict[str, str | Path | None], predict: bool = True) -> None:
        """Put files into panels by input name (unknown names are reported, not fatal)."""
        unknown = [n for n in files if n not in self.panels]
        for name, panel in self.panels.items():
            if name not in files and panel.error is not None and panel.path is not None:
                panel.clear_error()  # the note about an earlier failed open: the user has moved on
        for name, path in files.items():
            if name in self.panels:
                self.panels[name].set_file(path)
                if path:
                    dialogs.remember_folder(self.settings, path)
        if unknown:
            self._say(f"This model has no input named {', '.join(unknown)}; its inputs: {', '.join(self.panels)}",
                      10000)
        if predict:
            self.request_prediction()

    def open_files(self, paths: list[str | Path]) -> list[str]:
        """Route files to panels by type (app.modalities.routing); returns the problems, one line each."""
        from app.modalities.routing import route_files  # the decoders: loaded beside the first paint

        inputs = [{"name": p.name, "kind": p.kind} for p in self.panels.values()]
        assigned, problems = route_files(inputs, paths)
        if assigned:
            self.set_files(assigned)
        messages = [p.message for p in problems]
        if messages:
            self._say("; ".join(messages))
            for message in messages:
                self.inputFailed.emit("", message)
        return messages

    def load_pair(self, files: dict[str, str]) -> None:
        """Load a pair: inputs not in it become empty."""
        self.set_files({name: files.get(name) for name in self.panels} | {
            k: v for k, v in files.items() if k not in self.panels})

    def open_input_actions(self) -> list[Action | None]:
        """File ▸ Open input: one entry per input, Ctrl+1… in the model's order."""
        return [Action(f"Open {p.name} ({p.kind or '?'})…", lambda n=p.name: self.open_input_dialog(n),
                       f"Ctrl+{i + 1}" if i < 9 else None) for i, p in enumerate(self.panels.values())]

    def recent_pair_actions(self) -> list[Action | None]:
        return self.recent.actions(self.load_pair)

    def demo_sample_actions(self) -> list[Action | None]:
        return demo_actions(self.load_pair)

    def load_first_demo(self) -> bool:
        try:
            samples = read_demo_samples()
        except ValueError as exc:
            self._say(str(exc))
            return False
        self.load_pair(samples[0]["files"])
        return True

    # --- prediction ---------------------------------------------------------------------------------------
    def current_files(self) -> dict[str, str | None]:
        return {name: panel.path for name, panel in self.panels.items()}

    def current_corruptions(self) -> list[tuple[str, str, float]]:
        out = []
        for name, panel in self.panels.items():
            kind, level = panel.corruption()
            if kind and level > 0:
                out.append((name, kind, level))
        return out

    def request_prediction(self) -> int | None:
        """Ask the worker for a prediction of the current inputs; supersedes any pending one."""
        self._debounce.stop()
        if self.manifest is None or not self.panels:
            return None
        if not self._has_files():
            self.result_view.clear("Open or drop input files")
            return None
        blocked = [p for p in self.panels.values() if p.blocks_prediction()]
        if blocked:  # never predict on a blank because an open failed
            self.result_view.clear(f"No prediction: the {blocked[0].name} input cannot be read",
                                   f"{blocked[0].error} — open another {blocked[0].kind or 'file'} for it.")
            return None
        request_id = self.service.predict(self.current_files(), self.current_corruptions())
        self._request_started = {request_id: time.perf_counter()}
        return request_id

    def _on_degradation_changed(self, _name: str) -> None:
        # Throttle, not a restartable debounce: a continuous drag still re-predicts every
        # DEBOUNCE_MS with the slider's latest value (the worker drops superseded requests).
        if not self._debounce.isActive():
            self._debounce.start()

    def reset_degradation(self) -> None:
        for panel in self.panels.values():
            panel.slider.blockSignals(True)
            panel.reset_degradation()
            panel.level_label.setText("0.0")
            panel.slider.blockSignals(False)
        self.request_prediction()

    def _on_busy(self, busy: bool) -> None:
        if self.model_ready:
            self.busy_bar.setVisible(busy)

    def _on_predicted(self, result: Predicted) -> None:
        started = self._request_started.pop(result.request_id, None)
        for name, panel in self.panels.items():
            if panel.path is not None or name in result.raw:
                info = result.info.get(name, "") if panel.path is not None else "no file: a blank input is used"
                panel.show_input(result.raw.get(name), info, result.clean.get(name))
                if panel.path is not None and panel.path == result.files.get(name):
                    panel.mark_good()
        self.result_view.show_result(result.prediction)
        self.last_result = result
        round_trip = (time.perf_counter() - started) if started is not None else result.seconds
        self.time_label.setText(f"predicted in {result.seconds * 1000:.0f} ms "
                                f"(model {result.model_seconds * 1000:.0f} ms, "
                                f"shown after {round_trip * 1000:.0f} ms)")
        self.recent.remember(result.files)
        self._follow_sweep(result.files)
        self._say("", 0)  # an error about an earlier input no longer applies
        self.resultShown.emit(result.prediction)
        if self._freeze_after_result:  # a second later: the first result is painted before the 0.1 s collection
            self._freeze_after_result = False
            QTimer.singleShot(FREEZE_DELAY_MS, freeze_long_lived_objects)

    def _on_partly_decoded(self, decoded: PartlyDecoded) -> None:
        """Another input of this request cannot be read: still show the ones that can."""
        for name, raw in decoded.raw.items():
            if name in self.panels:
                self.panels[name].show_input(raw, decoded.info.get(name, ""))

    def _on_failed(self, failed: PredictFailed) -> None:
        self._request_started.pop(failed.request_id, None)
        self.time_label.setText("")  # the last timing belongs to a result no longer shown
        name = failed.modality or ""
        if name in self.panels:
            kept = self.panels[name].show_error(failed.message)
            self._say(failed.message)
            if kept:  # the previous good file is back in the panel: its result applies again
                if self.last_result is not None and self.last_result.files == self.current_files():
                    self.result_view.show_result(self.last_result.prediction)
                else:
                    self.request_prediction()
            else:
                self.result_view.clear(f"No prediction: the {name} input cannot be read", failed.message)
        else:
            self.result_view.clear("No prediction")
            self._say(f"Prediction failed: {failed.message}")
        self.inputFailed.emit(name, failed.message)

    # --- the model card (file dialogs and export: PageDialogsMixin) ----------------------------------
    def show_model_card(self) -> None:
        if self.manifest is None:
            QMessageBox.information(self, "Model card", "No model is open.")
            return
        self.model_card_dialog = model_card_dialog(self.manifest, self)
        self.model_card_dialog.show()

    # --- palette and shutdown ---------------------------------------------------------------------------
    def apply_palette(self) -> None:
        if not self.views_built:
            return
        self.result_view.apply_palette()
        self.sweep_box.apply_palette()
        for panel in self.panels.values():
            panel.apply_palette()

    def save_state(self) -> None:
        self.settings.setValue("window/splitter", self.main_splitter.saveState())

    def restore_state(self) -> None:
        state = self.settings.value("window/splitter")
        if state is not None:
            self.main_splitter.restoreState(state)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if self.settings.value("window/splitter") is None and not getattr(self, "_split_once", False):
            # The first time, split the width the page really has (a 2x-scaled laptop screen is
            # ~790 pixels wide): the inputs 40 %, the charts the rest.
            # Once the window's layout has given the splitter its width (not yet, inside showEvent).
            self._split_once = True
            QTimer.singleShot(0, self._first_split)

    def _first_split(self) -> None:
        width = max(self.main_splitter.width(), 1)
        self.main_splitter.setSizes([width * 40 // 100, width - width * 40 // 100])

    def shutdown(self) -> None:
        self.service.stop()
