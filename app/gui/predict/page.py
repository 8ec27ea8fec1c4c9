"""The Predict page: one input panel per modality, the result, the degradation explorer and sweep.

The page never runs model code. It reads the model's manifest from the file header (no torch) to
build its panels, and sends every load, prediction and sweep to its `PredictionService`, whose
worker thread answers with typed messages; the service drops answers to superseded requests, so the
page only ever draws the answer to its latest request. Status lines go out through `statusMessage`
(the window shows them in its status bar); menus are declared in `app.gui.actions`, and their
handlers here are plain methods.
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.gui.actions import Action
from app.gui.charts import SweepPlot
from app.gui.collector import freeze_long_lived_objects
from app.gui.panels import InputPanel, make_panel
from app.gui.predict import files as dialogs
from app.gui.predict.messages import (
    ModelFailed,
    ModelLoaded,
    ModelLoading,
    PartlyDecoded,
    Predicted,
    PredictFailed,
    SweepDone,
    SweepFailed,
)
from app.gui.predict.model_card import model_card_dialog
from app.gui.predict.recent import RecentPairs
from app.gui.predict.service import PredictionService
from app.gui.result_view import ResultView
from app.modalities.routing import route_files
from app.qmf.bundle import BundleError, read_bundle_manifest
from app.resources import default_model_path, read_demo_samples

DEBOUNCE_MS = 40
STATUS_MS = 15000


class PredictPage(QWidget):
    """The Predict tab. `open_model(None)` opens the bundled model."""

    resultShown = Signal(object)  # the prediction JSON, after the charts are updated
    inputFailed = Signal(str, str)  # modality name ("" = general), message
    sweepShown = Signal(object)  # the sweep as JSON (SweepDone.as_json)
    modelReady = Signal(object)  # the manifest
    modelFailed = Signal(str)  # message: no model could be loaded
    statusMessage = Signal(str, int)  # text, milliseconds ("" clears)
    titleChanged = Signal(str)  # the open model's name ("" = none)
    inputsChanged = Signal()  # the panels were rebuilt for another model

    def __init__(self, settings: QSettings, parent: QWidget | None = None):
        super().__init__(parent)
        self.settings = settings
        self.recent = RecentPairs(settings)
        self.manifest: dict[str, Any] | None = None
        self.model_path: str | None = None
        self.model_ready = False
        self.panels: dict[str, InputPanel] = {}
        self.last_result: Predicted | None = None
        self.last_sweep: dict[str, Any] | None = None
        self._request_started: dict[int, float] = {}
        self._freeze_after_result = False
        self._working_model: tuple[str, str] | None = None  # (path, name) of the last model that loaded

        self.service = PredictionService(self)
        self.service.modelLoading.connect(self._on_model_loading)
        self.service.modelLoaded.connect(self._on_model_loaded)
        self.service.modelFailed.connect(self._on_model_failed)
        self.service.predicted.connect(self._on_predicted)
        self.service.failed.connect(self._on_failed)
        self.service.partlyDecoded.connect(self._on_partly_decoded)
        self.service.sweepDone.connect(self._on_sweep)
        self.service.sweepFailed.connect(self._on_sweep_failed)
        self.service.busyChanged.connect(self._on_busy)
        self.service.start()

        self._debounce = QTimer(self, singleShot=True, interval=DEBOUNCE_MS, timeout=self.request_prediction)
        self._build()

    # --- construction ---------------------------------------------------------------------------------
    def _build(self) -> None:
        outer = QHBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        self.main_splitter = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(self.main_splitter)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        self.model_banner = QLabel("", wordWrap=True)
        self.model_banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        left_layout.addWidget(self.model_banner)
        self.panel_host = QWidget()
        self.panel_layout = QVBoxLayout(self.panel_host)
        self.panel_layout.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea(widgetResizable=True, frameShape=QScrollArea.Shape.NoFrame)
        scroll.setWidget(self.panel_host)
        left_layout.addWidget(scroll, 1)
        hint = QLabel("Drop files here or use File ▸ Open; move a slider to degrade an input.", wordWrap=True)
        hint.setStyleSheet("color: gray")
        left_layout.addWidget(hint)
        self.main_splitter.addWidget(left)

        self.right_splitter = QSplitter(Qt.Orientation.Vertical)
        self.result_view = ResultView(show_previews=False)
        self.right_splitter.addWidget(self.result_view)
        self.sweep_box = QGroupBox("Degradation sweep")
        sweep_layout = QVBoxLayout(self.sweep_box)
        row = QHBoxLayout()
        self.sweep_button = QPushButton("Sweep", clicked=self.run_sweep)
        self.sweep_button.setToolTip("Degrade each input over the whole severity range with its chosen corruption")
        self.sweep_status = QLabel("Plot each input's quality and the fused confidence over severity 0–10.")
        self.sweep_status.setStyleSheet("color: gray")
        row.addWidget(self.sweep_button)
        row.addWidget(self.sweep_status, 1)
        sweep_layout.addLayout(row)
        self.sweep_plot = SweepPlot()
        sweep_layout.addWidget(self.sweep_plot, 1)
        self.right_splitter.addWidget(self.sweep_box)
        self.right_splitter.setStretchFactor(0, 3)
        self.right_splitter.setStretchFactor(1, 1)
        self.main_splitter.addWidget(self.right_splitter)
        self.main_splitter.setStretchFactor(0, 2)
        self.main_splitter.setStretchFactor(1, 3)
        self.main_splitter.setSizes([470, 890])
        self.right_splitter.setSizes([560, 240])

        # the page's part of the window's status bar
        self.model_status = QLabel("")
        self.busy_bar = QProgressBar(maximumWidth=90, maximumHeight=14, visible=False)
        self.busy_bar.setRange(0, 0)
        self.time_label = QLabel("")

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

    # --- model life cycle ------------------------------------------------------------------------------
    def open_bundled_model(self) -> bool:
        return self.open_model(None)

    def open_model(self, path: str | Path | None) -> bool:
        """Read the model's manifest (header only), rebuild the panels, load it in the worker."""
        path = Path(path) if path is not None else default_model_path()
        try:
            manifest = read_bundle_manifest(path)
        except BundleError as exc:
            if not path.exists():
                text = (f"No model: {path} not found. Open a QMF Studio model (.safetensors) with "
                        "Model ▸ Open model… (or pass --model FILE).")
            else:
                text = f"Cannot open the model: {exc}"
            if self.manifest is not None:  # keep working with the model already open
                self._warn_model_not_opened(f"{text} Still using {self.manifest.get('name', 'the current model')}.")
                return False
            self._show_model_problem(text)
            return False
        self.model_ready = False
        previous_files = {name: p.path for name, p in self.panels.items()}
        self.manifest = manifest
        self.model_path = str(path)
        specs = manifest["model"]["modalities"]
        self._build_panels(specs)
        for name, file in previous_files.items():
            if name in self.panels and file and self.panels[name].kind == next(
                    (s["kind"] for s in specs if s["name"] == name), None):
                self.panels[name].set_file(file)
        self.result_view.set_modalities(specs, manifest["model"].get("labels"))
        self.result_view.clear("Loading model…")
        self.sweep_plot.set_modalities([s["name"] for s in specs])
        self._route_drops_to_page()
        self.last_result = None
        e = html.escape
        self.model_banner.setText(f"<b>Model:</b> {e(str(manifest.get('name', path.name)))} "
                                  f"— inputs: {', '.join(e(s['name']) for s in specs)}; "
                                  f"labels: {e(', '.join(map(str, manifest['model'].get('labels', []))))}")
        self.model_status.setText("Loading model…")
        self.busy_bar.setVisible(True)
        self.service.load_model(path)
        if self._has_files():
            self.request_prediction()
        return True

    def _warn_model_not_opened(self, text: str) -> None:
        """The user's model choice failed but a working model stays: say so without ending anything."""
        self._say(text)
        self.inputFailed.emit("", text)
        if self.isVisible():
            QMessageBox.warning(self.window(), "Open model", text)

    def _show_model_problem(self, text: str) -> None:
        self.model_banner.setText(f"<span style='color:#C62828'><b>{html.escape(text)}</b></span>")
        self.model_status.setText("No model")
        self.busy_bar.setVisible(False)
        if self.manifest is None:
            self.result_view.clear("No model loaded")
        self._say(text)
        self.inputFailed.emit("", text)

    def _build_panels(self, specs: list[dict[str, Any]]) -> None:
        for panel in self.panels.values():
            self.panel_layout.removeWidget(panel)
            panel.deleteLater()
        self.panels = {}
        while self.panel_layout.count():
            self.panel_layout.takeAt(0)
        for spec in specs:
            panel = make_panel(spec)
            panel.openRequested.connect(self.open_input_dialog)
            panel.degradationChanged.connect(self._on_degradation_changed)
            self.panel_layout.addWidget(panel, 1)
            self.panels[spec["name"]] = panel
        self.inputsChanged.emit()

    def _on_model_loading(self, message: ModelLoading) -> None:
        self.model_status.setText(f"Loading model {Path(message.path).name}…")
        self.busy_bar.setVisible(True)

    def _on_model_loaded(self, message: ModelLoaded) -> None:
        manifest = message.manifest
        self.model_ready = True
        self._working_model = (message.path, str(manifest.get("name", Path(message.path).name)))
        self.manifest = {**(self.manifest or {}), **manifest}
        self.model_status.setText(f"Model: {manifest.get('name', '?')}")
        self.titleChanged.emit(str(manifest.get("name", "?")))
        self.busy_bar.setVisible(False)
        if self.last_result is None and not self._has_files():
            self.result_view.clear("Model ready: open or drop input files")
        # torch and the model are in: one collection, then later ones skip them. It holds the GIL for
        # ~0.1 s, so with the first prediction already queued it waits until that one is shown.
        self._freeze_after_result = self._has_files()
        if not self._freeze_after_result:
            freeze_long_lived_objects()
        self.modelReady.emit(manifest)

    def _on_model_failed(self, failed: ModelFailed) -> None:
        self.model_ready = False
        self.time_label.setText("")
        good = self._working_model
        if good is not None and good[0] != failed.path and Path(good[0]).exists():
            # The header read cleanly but the weights did not load (truncated, tampered): go back to
            # the model that worked, with the same files, rather than leave the user with none.
            self.open_model(good[0])
            self._warn_model_not_opened(f"Cannot load the model: {failed.message} Still using {good[1]}.")
            return
        self.titleChanged.emit("")
        self._show_model_problem(f"Cannot load the model: {failed.message}")
        self.result_view.clear("No model loaded")
        self.modelFailed.emit(failed.message)

    # --- inputs -------------------------------------------------------------------------------------------
    def _has_files(self) -> bool:
        return any(p.path for p in self.panels.values())

    def set_files(self, files: dict[str, str | Path | None], predict: bool = True) -> None:
        """Put files into panels by input name (unknown names are reported, not fatal)."""
        unknown = [n for n in files if n not in self.panels]
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

    def open_input_dialog(self, name: str) -> None:
        panel = self.panels.get(name)
        if panel is not None and (path := dialogs.open_file(self, self.settings, f"Open {name}", panel.file_filter())):
            self.set_files({name: path})

    def open_files_dialog(self) -> None:
        if paths := dialogs.open_files(self, self.settings, "Open input files"):
            self.open_files(paths)

    def open_model_dialog(self) -> None:
        if path := dialogs.open_file(self, self.settings, "Open model",
                                     "QMF Studio models (*.safetensors);;All files (*)"):
            self.open_model(path)

    def open_input_actions(self) -> list[Action | None]:
        """File ▸ Open input: one entry per input, Ctrl+1… in the model's order."""
        return [Action(f"Open {p.name} ({p.kind or '?'})…", lambda n=p.name: self.open_input_dialog(n),
                       f"Ctrl+{i + 1}" if i < 9 else None) for i, p in enumerate(self.panels.values())]

    def recent_pair_actions(self) -> list[Action | None]:
        return self.recent.actions(self.load_pair)

    def demo_sample_actions(self) -> list[Action | None]:
        try:
            samples = read_demo_samples()
        except ValueError as exc:
            return [Action(str(exc), enabled=False)]
        out: list[Action | None] = []
        for sample in samples:
            title = sample.get("title") or sample.get("id") or "sample"
            if sample.get("expected") is not None:
                title += f"  (expected: {sample['expected']})"
            out.append(Action(title, lambda s=sample: self.load_pair(s["files"]),
                              tip=str(sample["note"]) if sample.get("note") else None))
        return out

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
                panel.show_input(result.raw.get(name), info)
        self.result_view.show_result(result.prediction)
        self.last_result = result
        round_trip = (time.perf_counter() - started) if started is not None else result.seconds
        self.time_label.setText(f"predicted in {result.seconds * 1000:.0f} ms "
                                f"(model {result.model_seconds * 1000:.0f} ms, "
                                f"shown after {round_trip * 1000:.0f} ms)")
        self.recent.remember(result.files)
        self._say("", 0)  # an error about an earlier input no longer applies
        self.resultShown.emit(result.prediction)
        if self._freeze_after_result:
            self._freeze_after_result = False
            freeze_long_lived_objects()

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
            self.panels[name].show_error(failed.message)
            self.result_view.clear(f"No prediction: the {name} input cannot be read")
            self._say(failed.message)
        else:
            self.result_view.clear("No prediction")
            self._say(f"Prediction failed: {failed.message}")
        self.inputFailed.emit(name, failed.message)

    # --- sweep ----------------------------------------------------------------------------------------------
    def run_sweep(self) -> int | None:
        if self.manifest is None or not self._has_files():
            self.sweep_status.setText("Open an input pair first.")
            return None
        kinds = {name: panel.corruption()[0] for name, panel in self.panels.items()}
        self.sweep_status.setText("Sweeping…")
        return self.service.sweep(self.current_files(), kinds)

    def _on_sweep(self, sweep: SweepDone) -> None:
        self.last_sweep = sweep.as_json()
        self.sweep_plot.set_sweep(self.last_sweep)
        kinds = ", ".join(f"{n}: {c.kind}" for n, c in sweep.curves.items())
        self.sweep_status.setText(f"One input degraded at a time ({kinds}); the others clean.")
        self.sweepShown.emit(self.last_sweep)

    def _on_sweep_failed(self, failed: SweepFailed) -> None:
        self.sweep_status.setText(f"Sweep failed: {failed.message}")

    def show_sweep(self, checked: bool) -> None:
        self.sweep_box.setVisible(checked)

    # --- export and the model card ---------------------------------------------------------------------
    def result_json(self) -> dict[str, Any] | None:
        """The shown result as `qmf predict --json` prints it (plus the corruptions and seed)."""
        if self.last_result is None:
            return None
        return {**self.last_result.prediction, "corruptions": self.last_result.corruptions,
                "seed": self.last_result.seed}

    def export_json(self, path: str | Path) -> None:
        data = self.result_json()
        if data is None:
            raise ValueError("there is no result to export yet")
        dialogs.write_json(path, data)

    def export_charts_png(self, path: str | Path) -> bool:
        return self.right_splitter.grab().save(str(path))

    def export_json_dialog(self) -> None:
        if self.last_result is None:
            QMessageBox.information(self, "Export", "There is no result to export yet.")
        elif path := dialogs.save_file(self, self.settings, "Export result", "prediction.json", "JSON (*.json)"):
            self.export_json(path)
            self._say(f"Saved {path}", 8000)

    def export_charts_dialog(self) -> None:
        if path := dialogs.save_file(self, self.settings, "Export charts", "qmf-charts.png", "PNG images (*.png)"):
            self._say(f"Saved {path}" if self.export_charts_png(path) else f"Could not write {path}", 8000)

    def show_model_card(self) -> None:
        if self.manifest is None:
            QMessageBox.information(self, "Model card", "No model is open.")
            return
        self.model_card_dialog = model_card_dialog(self.manifest, self)
        self.model_card_dialog.show()

    # --- palette and shutdown ---------------------------------------------------------------------------
    def apply_palette(self) -> None:
        self.result_view.apply_palette()
        self.sweep_plot.apply_palette()
        for panel in self.panels.values():
            panel.apply_palette()

    def save_state(self) -> None:
        self.settings.setValue("window/splitter", self.main_splitter.saveState())

    def restore_state(self) -> None:
        state = self.settings.value("window/splitter")
        if state is not None:
            self.main_splitter.restoreState(state)

    def shutdown(self) -> None:
        self.service.stop()
