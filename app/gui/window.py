"""The main window: input panels per modality, the result, the degradation explorer, menus.

The window never runs model code. It reads the model's manifest from the file header (no torch) to
build its panels, and sends every load, prediction and sweep to `PredictionService` in its worker
thread; results come back as signals. A prediction request carries an id; only the answer to the
latest request is shown, so superseded answers never flash on screen.
"""

from __future__ import annotations

import html
import inspect
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

import app
from app.gui.charts import SweepPlot
from app.gui.collector import freeze_long_lived_objects
from app.gui.panels import InputPanel, make_panel
from app.gui.result_view import ResultView
from app.gui.service import PredictionService, PredictRequest, SweepRequest

SETTINGS_ENV = "QMF_STUDIO_SETTINGS"
MAX_RECENT = 10
DEBOUNCE_MS = 40
DEFAULT_SIZE = (1360, 860)

CREDITS_HTML = (
    "<p>The bundled model is trained on <b>AV-MNIST</b>, built from "
    "<b>MNIST</b> handwritten digits (Y. LeCun, C. Cortes, C. J. C. Burges; CC BY-SA 3.0) and the "
    "<b>Free Spoken Digit Dataset</b> (Zohar Jackson et al.; CC BY-SA 4.0).</p>"
)


def make_settings() -> QSettings:
    """The app's settings; `QMF_STUDIO_SETTINGS=/path/file.ini` redirects them (tests, portable use)."""
    path = os.environ.get(SETTINGS_ENV)
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings("QMF Studio", "QMF Studio")


def samples_dir() -> Path:
    from app.qmf.bundle import resources_dir

    return resources_dir() / "samples"


def read_demo_samples() -> tuple[list[dict[str, Any]], str | None]:
    """The demo pairs from resources/samples/samples.json, with absolute paths; or a reason there are none."""
    index = samples_dir() / "samples.json"
    if not index.exists():
        return [], f"no demo samples: {index} not found"
    try:
        entries = json.loads(index.read_text(encoding="utf-8"))
        if isinstance(entries, dict):
            entries = entries.get("samples", [])
        out = []
        for e in entries:
            files = {k: str(index.parent / v) for k, v in (e.get("files") or {}).items()}
            out.append({**e, "files": files})
        return out, None
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        return [], f"demo samples unreadable: {index}: {exc}"


class MainWindow(QMainWindow):
    """QMF Studio's main window. `model_path=None` opens the bundled model."""

    resultShown = Signal(object)  # the prediction JSON, after the charts are updated
    inputFailed = Signal(str, str)  # modality name ("" = general), message
    sweepShown = Signal(object)
    modelReady = Signal(object)
    closed = Signal()

    def __init__(self, model_path: str | Path | None = None, settings: QSettings | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.settings = settings if settings is not None else make_settings()
        self.setWindowTitle("QMF Studio")
        self.setAcceptDrops(True)
        self.manifest: dict[str, Any] | None = None
        self.model_path: str | None = None
        self.model_ready = False
        self.panels: dict[str, InputPanel] = {}
        self.last_result: dict[str, Any] | None = None
        self.last_sweep: dict[str, Any] | None = None
        self._request_id = 0
        self.latest_request_id = 0
        self._sweep_id = 0
        self._request_started: dict[int, float] = {}
        self.review_view: QWidget | None = None
        self._freeze_after_result = False
        self._working_model: tuple[str, str] | None = None  # (path, name) of the last model that loaded

        self.service = PredictionService()
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

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.request_prediction)

        self._build_ui()
        self._build_menus()
        self._route_drops_to_window()
        self._restore_settings()
        self.open_model(model_path)

    # --- construction ---------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        predict = QWidget()
        outer = QHBoxLayout(predict)
        outer.setContentsMargins(4, 4, 4, 4)
        self.main_splitter = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(self.main_splitter)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        self.model_banner = QLabel("")
        self.model_banner.setWordWrap(True)
        self.model_banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        left_layout.addWidget(self.model_banner)
        self.panel_host = QWidget()
        self.panel_layout = QVBoxLayout(self.panel_host)
        self.panel_layout.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.panel_host)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        left_layout.addWidget(scroll, 1)
        hint = QLabel("Drop files here or use File ▸ Open; move a slider to degrade an input.")
        hint.setWordWrap(True)
        hint.setStyleSheet("color: gray")
        left_layout.addWidget(hint)
        self.main_splitter.addWidget(left)

        self.right_splitter = QSplitter(Qt.Orientation.Vertical)
        self.result_view = ResultView(show_previews=False)
        self.right_splitter.addWidget(self.result_view)
        self.sweep_box = QGroupBox("Degradation sweep")
        sweep_layout = QVBoxLayout(self.sweep_box)
        row = QHBoxLayout()
        self.sweep_button = QPushButton("Sweep")
        self.sweep_button.setToolTip("Degrade each input over the whole severity range with its chosen corruption")
        self.sweep_button.clicked.connect(self.run_sweep)
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

        self.predict_page = predict
        self.tabs: QTabWidget | None = None
        review = self._make_review_view()
        if review is not None:
            self.tabs = QTabWidget()
            self.tabs.addTab(predict, "Predict")
            self.tabs.addTab(review, "Review")
            self.setCentralWidget(self.tabs)
        else:
            self.setCentralWidget(predict)

        status = self.statusBar()
        self.model_status = QLabel("")
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setMaximumWidth(90)
        self.busy_bar.setMaximumHeight(14)
        self.busy_bar.setVisible(False)
        self.time_label = QLabel("")
        status.addPermanentWidget(self.busy_bar)
        status.addPermanentWidget(self.model_status)
        status.addPermanentWidget(self.time_label)

    def _make_review_view(self) -> QWidget | None:
        """The Review tab, if `app.gui.review.ReviewView` is importable; tolerant of its signature."""
        try:
            from app.gui.review import ReviewView  # type: ignore[attr-defined]
        except Exception:
            return None
        offered = {"model_path": None, "settings": self.settings, "parent": None, "main_window": self}
        try:
            params = inspect.signature(ReviewView).parameters
            kwargs = {k: v for k, v in offered.items() if k in params}
            self.review_view = ReviewView(**kwargs)
        except Exception as exc:  # the Review view is optional: the predict view still works
            print(f"QMF Studio: the Review view is unavailable: {exc}", file=sys.stderr)
            return None
        return self.review_view

    def _action(self, menu, text: str, slot, shortcut=None, tip: str | None = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        self.file_menu = bar.addMenu("&File")
        self._action(self.file_menu, "&Open files…", self.open_files_dialog, QKeySequence.StandardKey.Open,
                     "Open one or several input files; each goes to the panel for its type")
        self.open_input_menu = self.file_menu.addMenu("Open &input")
        self.recent_menu = self.file_menu.addMenu("&Recent pairs")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self.demo_menu = self.file_menu.addMenu("&Demo samples")
        self.demo_menu.aboutToShow.connect(self._fill_demo_menu)
        self.file_menu.addSeparator()
        self._action(self.file_menu, "&Export result as JSON…", self.export_json_dialog, "Ctrl+E")
        self._action(self.file_menu, "Export &charts as PNG…", self.export_charts_dialog, "Ctrl+Shift+E")
        self._action(self.file_menu, "Export &window as PNG…", self.export_window_dialog, "F12")
        self.file_menu.addSeparator()
        self._action(self.file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        self.model_menu = bar.addMenu("&Model")
        self._action(self.model_menu, "&Open model…", self.open_model_dialog, "Ctrl+Shift+O",
                     "Open another QMF Studio model (.safetensors)")
        self._action(self.model_menu, "Use the &bundled model", lambda: self.open_model(None))
        self._action(self.model_menu, "Model &card…", self.show_model_card, "Ctrl+I")
        self.model_menu.addSeparator()
        self._action(self.model_menu, "&Predict again", self.request_prediction, "F5")
        self._action(self.model_menu, "&Sweep severity", self.run_sweep, "Ctrl+Shift+S")
        self._action(self.model_menu, "&Reset degradation", self.reset_degradation, "Ctrl+R")

        self.view_menu = bar.addMenu("&View")
        self.sweep_toggle = self._action(self.view_menu, "Show &sweep plot", self._toggle_sweep, "Ctrl+Shift+W")
        self.sweep_toggle.setCheckable(True)
        self.sweep_toggle.setChecked(True)
        self._action(self.view_menu, "&Full screen", self._toggle_full_screen, QKeySequence.StandardKey.FullScreen)

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&About QMF Studio", self.show_about)

    def _restore_settings(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None and not self.restoreGeometry(geometry):
            geometry = None
        if geometry is None:
            self.resize(*DEFAULT_SIZE)
        state = self.settings.value("window/splitter")
        if state is not None:
            self.main_splitter.restoreState(state)

    # --- model --------------------------------------------------------------------------------------------
    def open_model(self, path: str | Path | None) -> bool:
        """Read the model's manifest (header only), rebuild the panels, load it in the worker."""
        from app.qmf.bundle import BundleError, default_model_path, read_bundle_manifest

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
        self._route_drops_to_window()
        self.last_result = None
        self.model_banner.setText(f"<b>Model:</b> {html.escape(str(manifest.get('name', path.name)))} "
                                  f"— inputs: {', '.join(html.escape(s['name']) for s in specs)}; "
                                  f"labels: {html.escape(', '.join(map(str, manifest['model'].get('labels', []))))}")
        self.model_status.setText("Loading model…")
        self.busy_bar.setVisible(True)
        self.service.load_model(path)
        if any(p.path for p in self.panels.values()):
            self.request_prediction()
        return True

    def _route_drops_to_window(self) -> None:
        """Plots (QGraphicsView) and text views accept drops themselves and would swallow files
        dropped on them; switch that off so every drop reaches the window's router."""
        for view in self.predict_page.findChildren(QAbstractScrollArea):  # not the Review tab: its own business
            if view is not None and view.acceptDrops():
                view.setAcceptDrops(False)
                view.viewport().setAcceptDrops(False)

    def _warn_model_not_opened(self, text: str) -> None:
        """The user's model choice failed but a working model stays: say so without ending anything."""
        self.statusBar().showMessage(text, 15000)
        self.inputFailed.emit("", text)
        if self.isVisible():
            QMessageBox.warning(self, "Open model", text)

    def _show_model_problem(self, text: str) -> None:
        self.model_banner.setText(f"<span style='color:#C62828'><b>{html.escape(text)}</b></span>")
        self.model_status.setText("No model")
        self.busy_bar.setVisible(False)
        if self.manifest is None:
            self.result_view.clear("No model loaded")
        self.statusBar().showMessage(text, 15000)
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
        self.open_input_menu.clear()
        for i, spec in enumerate(specs):
            shortcut = f"Ctrl+{i + 1}" if i < 9 else None
            self._action(self.open_input_menu, f"Open {spec['name']} ({spec.get('kind', '?')})…",
                         lambda _=False, n=spec["name"]: self.open_input_dialog(n), shortcut)

    def _on_model_loading(self, path: str) -> None:
        self.model_status.setText(f"Loading model {Path(path).name}…")
        self.busy_bar.setVisible(True)

    def _on_model_loaded(self, manifest: dict) -> None:
        if manifest.get("path") != self.model_path:
            return  # a model the user has since replaced
        self.model_ready = True
        self._working_model = (str(manifest["path"]), str(manifest.get("name", Path(manifest["path"]).name)))
        self.manifest = {**(self.manifest or {}), **manifest}
        self.model_status.setText(f"Model: {manifest.get('name', '?')}")
        self.setWindowTitle(f"QMF Studio — {manifest.get('name', '?')}")
        self.busy_bar.setVisible(False)
        if self.last_result is None and not any(p.path for p in self.panels.values()):
            self.result_view.clear("Model ready: open or drop input files")
        # torch and the model are in: one collection, then later ones skip them. It holds the GIL for
        # ~0.1 s, so with the first prediction already queued it waits until that one is shown.
        self._freeze_after_result = any(p.path for p in self.panels.values())
        if not self._freeze_after_result:
            freeze_long_lived_objects()
        self.modelReady.emit(manifest)

    def _on_model_failed(self, path: str, message: str) -> None:
        if path != self.model_path:
            return
        self.model_ready = False
        self.time_label.setText("")
        good = self._working_model
        if good is not None and good[0] != path and Path(good[0]).exists():
            # The header read cleanly but the weights did not load (truncated, tampered): go back to
            # the model that worked, with the same files, rather than leave the user with none.
            self.open_model(good[0])
            self._warn_model_not_opened(f"Cannot load the model: {message} Still using {good[1]}.")
            return
        self.setWindowTitle("QMF Studio")
        self._show_model_problem(f"Cannot load the model: {message}")
        self.result_view.clear("No model loaded")

    # --- inputs -------------------------------------------------------------------------------------------
    def set_files(self, files: dict[str, str | Path | None], predict: bool = True) -> None:
        """Put files into panels by modality name (unknown names are reported, not fatal)."""
        unknown = [n for n in files if n not in self.panels]
        for name, path in files.items():
            if name in self.panels:
                self.panels[name].set_file(path)
                if path:
                    self.settings.setValue("last_folder", str(Path(path).parent))
        if unknown:
            self.statusBar().showMessage(
                f"This model has no input named {', '.join(unknown)}; its inputs: {', '.join(self.panels)}", 10000)
        if predict:
            self.request_prediction()

    def open_files(self, paths: list[str | Path]) -> list[str]:
        """Route files to panels by type (first free panel of that kind); returns problems."""
        from app.modalities import kind_for_path

        assigned: dict[str, str] = {}
        problems = []
        for path in paths:
            kind = kind_for_path(path)
            if kind is None:
                problems.append(f"{path}: not a file type QMF Studio opens "
                                f"(inputs: {', '.join(f'{p.name} ({p.kind})' for p in self.panels.values())})")
                continue
            targets = [n for n, p in self.panels.items() if p.kind == kind and n not in assigned]
            if not targets:
                if any(p.kind == kind for p in self.panels.values()):
                    problems.append(f"{path}: more {kind} files than {kind} inputs; ignored")
                else:
                    problems.append(f"{path}: a {kind} file, but this model's inputs are "
                                    f"{', '.join(p.kind for p in self.panels.values()) or 'unknown'}")
                continue
            assigned[targets[0]] = str(path)
        if assigned:
            self.set_files(assigned)
        if problems:
            self.statusBar().showMessage("; ".join(problems), 15000)
            for problem in problems:
                self.inputFailed.emit("", problem)
        return problems

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.open_files(paths)

    def _last_folder(self) -> str:
        return str(self.settings.value("last_folder", str(Path.home())))

    def open_input_dialog(self, name: str) -> None:
        panel = self.panels.get(name)
        if panel is None:
            return
        path, _ = QFileDialog.getOpenFileName(self, f"Open {name}", self._last_folder(), panel.file_filter())
        if path:
            self.set_files({name: path})

    def open_files_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open input files", self._last_folder())
        if paths:
            self.settings.setValue("last_folder", str(Path(paths[0]).parent))
            self.open_files(paths)

    def open_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open model", self._last_folder(),
                                              "QMF Studio models (*.safetensors);;All files (*)")
        if path:
            self.settings.setValue("last_folder", str(Path(path).parent))
            self.open_model(path)

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
        if not any(p.path for p in self.panels.values()):
            self.result_view.clear("Open or drop input files")
            return None
        self._request_id += 1
        self.latest_request_id = self._request_id
        self._request_started = {self._request_id: time.perf_counter()}
        self.service.submit(PredictRequest(self._request_id, self.current_files(), self.current_corruptions()))
        return self._request_id

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

    def _on_predicted(self, request_id: int, result: dict) -> None:
        if request_id != self.latest_request_id:
            return
        started = self._request_started.pop(request_id, None)
        prediction = result["prediction"]
        raw = result.get("raw") or {}
        for name, panel in self.panels.items():
            if panel.path is not None or name in raw:
                info = (result.get("info") or {}).get(name, "")
                if panel.path is None:
                    info = "no file: a blank input is used"
                panel.show_input(raw.get(name), info)
        self.result_view.show_result(prediction)
        self.last_result = result
        round_trip = (time.perf_counter() - started) if started is not None else result["seconds"]
        self.time_label.setText(f"predicted in {result['seconds'] * 1000:.0f} ms "
                                f"(model {result['model_seconds'] * 1000:.0f} ms, "
                                f"shown after {round_trip * 1000:.0f} ms)")
        self._remember_pair(result.get("files") or {})
        self.statusBar().clearMessage()  # an error about an earlier input no longer applies
        self.resultShown.emit(prediction)
        if self._freeze_after_result:
            self._freeze_after_result = False
            freeze_long_lived_objects()

    def _on_partly_decoded(self, request_id: int, decoded: dict) -> None:
        """Another input of this request cannot be read: still show the ones that can."""
        if request_id != self.latest_request_id:
            return
        for name, raw in decoded["raw"].items():
            if name in self.panels:
                self.panels[name].show_input(raw, decoded["info"].get(name, ""))

    def _on_failed(self, request_id: int, name: str, message: str) -> None:
        if request_id != self.latest_request_id:
            return
        self._request_started.pop(request_id, None)
        self.time_label.setText("")  # the last timing belongs to a result no longer shown
        if name in self.panels:
            self.panels[name].show_error(message)
            self.result_view.clear(f"No prediction: the {name} input cannot be read")
            self.statusBar().showMessage(message, 15000)
        else:
            first = message.splitlines()[0] if message else "unknown error"
            self.result_view.clear("No prediction")
            self.statusBar().showMessage(f"Prediction failed: {first}", 15000)
        self.inputFailed.emit(name, message)

    # --- sweep ----------------------------------------------------------------------------------------------
    def run_sweep(self) -> int | None:
        if self.manifest is None or not any(p.path for p in self.panels.values()):
            self.sweep_status.setText("Open an input pair first.")
            return None
        self._sweep_id += 1
        kinds = {name: panel.corruption()[0] for name, panel in self.panels.items()}
        self.sweep_status.setText("Sweeping…")
        self.service.submit_sweep(SweepRequest(self._sweep_id, self.current_files(), kinds))
        return self._sweep_id

    def _on_sweep(self, sweep_id: int, result: dict) -> None:
        if sweep_id != self._sweep_id:
            return
        self.last_sweep = result
        self.sweep_plot.set_sweep(result)
        kinds = ", ".join(f"{n}: {d['kind']}" for n, d in result["modalities"].items())
        self.sweep_status.setText(f"One input degraded at a time ({kinds}); the others clean.")
        self.sweepShown.emit(result)

    def _on_sweep_failed(self, sweep_id: int, message: str) -> None:
        if sweep_id == self._sweep_id:
            self.sweep_status.setText(f"Sweep failed: {message.splitlines()[0]}")

    # --- recent pairs and demo samples --------------------------------------------------------------
    def recent_pairs(self) -> list[dict[str, str]]:
        try:
            value = json.loads(str(self.settings.value("recent_pairs", "[]")))
            return [p for p in value if isinstance(p, dict)]
        except ValueError:
            return []

    def _remember_pair(self, files: dict[str, str | None]) -> None:
        pair = {k: v for k, v in files.items() if v}
        recent = self.recent_pairs()
        if not pair or (recent and recent[0] == pair):
            return
        pairs = [pair] + [p for p in recent if p != pair]
        self.settings.setValue("recent_pairs", json.dumps(pairs[:MAX_RECENT]))

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        pairs = self.recent_pairs()
        if not pairs:
            self.recent_menu.addAction("(none yet)").setEnabled(False)
            return
        for pair in pairs:
            text = " + ".join(Path(v).name for v in pair.values())
            action = self.recent_menu.addAction(text)
            action.setToolTip("\n".join(f"{k}: {v}" for k, v in pair.items()))
            action.triggered.connect(lambda _=False, p=pair: self.load_pair(p))
        self.recent_menu.addSeparator()
        self.recent_menu.addAction("Clear recent pairs").triggered.connect(
            lambda: self.settings.setValue("recent_pairs", "[]"))

    def load_pair(self, files: dict[str, str]) -> None:
        """Load a pair: inputs not in it become empty."""
        self.set_files({name: files.get(name) for name in self.panels} | {
            k: v for k, v in files.items() if k not in self.panels})

    def _fill_demo_menu(self) -> None:
        self.demo_menu.clear()
        samples, problem = read_demo_samples()
        if problem:
            self.demo_menu.addAction(problem).setEnabled(False)
            return
        for sample in samples:
            title = sample.get("title") or sample.get("id") or "sample"
            if sample.get("expected") is not None:
                title += f"  (expected: {sample['expected']})"
            action = self.demo_menu.addAction(title)
            if sample.get("note"):
                action.setToolTip(str(sample["note"]))
            action.triggered.connect(lambda _=False, s=sample: self.load_pair(s["files"]))

    def load_first_demo(self) -> bool:
        samples, problem = read_demo_samples()
        if not samples:
            self.statusBar().showMessage(problem or "no demo samples", 15000)
            return False
        self.load_pair(samples[0]["files"])
        return True

    # --- export -----------------------------------------------------------------------------------------
    def result_json(self) -> dict[str, Any] | None:
        """The shown result as `qmf predict --json` prints it (plus the corruptions and seed)."""
        if self.last_result is None:
            return None
        data = dict(self.last_result["prediction"])
        data["corruptions"] = self.last_result.get("corruptions", [])
        data["seed"] = self.last_result.get("seed", 0)
        return data

    def export_json(self, path: str | Path) -> None:
        data = self.result_json()
        if data is None:
            raise ValueError("there is no result to export yet")
        Path(path).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

    def export_charts_png(self, path: str | Path) -> bool:
        return self.right_splitter.grab().save(str(path))

    def export_window_png(self, path: str | Path) -> bool:
        return self.grab().save(str(path))

    def _save_dialog(self, title: str, name: str, filt: str) -> str | None:
        path, _ = QFileDialog.getSaveFileName(self, title, str(Path(self._last_folder()) / name), filt)
        if path:
            self.settings.setValue("last_folder", str(Path(path).parent))
        return path or None

    def export_json_dialog(self) -> None:
        if self.last_result is None:
            QMessageBox.information(self, "Export", "There is no result to export yet.")
            return
        path = self._save_dialog("Export result", "prediction.json", "JSON (*.json)")
        if path:
            self.export_json(path)
            self.statusBar().showMessage(f"Saved {path}", 8000)

    def export_charts_dialog(self) -> None:
        path = self._save_dialog("Export charts", "qmf-charts.png", "PNG images (*.png)")
        if path:
            ok = self.export_charts_png(path)
            self.statusBar().showMessage(f"Saved {path}" if ok else f"Could not write {path}", 8000)

    def export_window_dialog(self) -> None:
        path = self._save_dialog("Export window", "qmf-studio.png", "PNG images (*.png)")
        if path:
            ok = self.export_window_png(path)
            self.statusBar().showMessage(f"Saved {path}" if ok else f"Could not write {path}", 8000)

    # --- dialogs ----------------------------------------------------------------------------------------
    def show_model_card(self) -> None:
        if self.manifest is None:
            QMessageBox.information(self, "Model card", "No model is open.")
            return
        dialog = QDialog(self)
        dialog.setWindowTitle(f"Model card: {self.manifest.get('name', '?')}")
        dialog.resize(720, 640)
        layout = QVBoxLayout(dialog)
        browser = QTextBrowser()
        browser.setHtml(model_card_html(self.manifest))
        layout.addWidget(browser)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dialog.reject)
        layout.addWidget(buttons)
        self.model_card_dialog = dialog
        dialog.show()

    def show_about(self) -> None:
        QMessageBox.about(
            self,
            "About QMF Studio",
            f"<h3>QMF Studio {app.__version__}</h3>"
            "<p>See how a multimodal model trusts each of its inputs: Quality-aware Multimodal Fusion "
            "(Zhang et al., <i>Provable Dynamic Fusion for Low-Quality Multimodal Data</i>, ICML 2023).</p>"
            + CREDITS_HTML,
        )

    def _toggle_sweep(self, checked: bool) -> None:
        self.sweep_box.setVisible(checked)

    def _toggle_full_screen(self) -> None:
        self.showNormal() if self.isFullScreen() else self.showFullScreen()

    # --- palette and shutdown ---------------------------------------------------------------------------
    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.apply_palette()
        super().changeEvent(event)

    def apply_palette(self) -> None:
        if not hasattr(self, "result_view"):
            return
        self.result_view.apply_palette()
        self.sweep_plot.apply_palette()
        for panel in self.panels.values():
            panel.apply_palette()

    def closeEvent(self, event) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/splitter", self.main_splitter.saveState())
        self.settings.sync()
        self.service.stop()
        super().closeEvent(event)
        self.closed.emit()


def model_card_html(manifest: dict[str, Any]) -> str:
    """The manifest as a readable page: labels, inputs, training recipe, figures, data credits."""
    e = html.escape
    m = manifest.get("model", {})
    parts = [f"<h2>{e(str(manifest.get('name', '?')))}</h2>"]
    if manifest.get("description"):
        parts.append(f"<p>{e(str(manifest['description']))}</p>")
    meta = [("file", manifest.get("path")), ("sha256", manifest.get("sha256")),
            ("created", manifest.get("created")), ("app version", manifest.get("app_version")),
            ("format", f"{manifest.get('format')} v{manifest.get('format_version')}")]
    parts.append("<table>" + "".join(f"<tr><td><b>{e(k)}</b></td><td>{e(str(v))}</td></tr>"
                                     for k, v in meta if v) + "</table>")
    labels = m.get("labels", [])
    parts.append(f"<h3>Labels ({len(labels)})</h3><p>{e(', '.join(map(str, labels)))}</p>")
    parts.append("<h3>Inputs and preprocessing</h3><ul>")
    for spec in m.get("modalities", []):
        pre = ", ".join(f"{k}={v}" for k, v in (spec.get("preprocessing") or {}).items())
        parts.append(f"<li><b>{e(spec['name'])}</b> ({e(spec.get('kind', '?'))}): {e(pre)}</li>")
    parts.append("</ul>")
    parts.append(f"<p>Fusion: energy-weighted (QMF), confidence scale {e(str(m.get('confidence_scale', '?')))}, "
                 f"weights detached: {e(str(m.get('detach_weights', '?')))}</p>")
    training = manifest.get("training") or {}
    if training:
        recipe = training.get("recipe") or {}
        t = recipe.get("training") or {}
        summary = {k: v for k, v in t.items() if not isinstance(v, list | dict)}
        parts.append("<h3>Training</h3><table>")
        for k, v in {**summary, "best epoch": training.get("best_epoch"), "epochs run": training.get("epochs_run"),
                     "seconds": training.get("seconds"), "device": training.get("device")}.items():
            if v is not None:
                parts.append(f"<tr><td><b>{e(str(k))}</b></td><td>{e(str(v))}</td></tr>")
        parts.append("</table>")
        if t.get("augment"):
            parts.append(f"<p>Augmentation: <code>{e(json.dumps(t['augment']))}</code></p>")
    evaluation = manifest.get("evaluation")
    if evaluation:
        parts.append("<h3>Evaluation</h3>")
        headline = _headline_figures(evaluation) if isinstance(evaluation, dict) else []
        if headline:
            parts.append("<table>")
            parts += [f"<tr><td><b>{e(k)}</b></td><td>{e(v)}</td></tr>" for k, v in headline]
            parts.append("</table><p>All figures:</p>")
        parts.append(f"<pre>{e(json.dumps(evaluation, indent=1))}</pre>")
    provenance = manifest.get("provenance")
    parts.append("<h3>Data and credits</h3>")
    credits = provenance.get("credits") if isinstance(provenance, dict) else None
    if isinstance(credits, list) and credits:
        parts.append("<ul>" + "".join(f"<li>{e(str(c))}</li>" for c in credits) + "</ul>")
    if provenance:
        rest = {k: v for k, v in provenance.items() if k != "credits"} if isinstance(provenance, dict) else provenance
        if rest:
            parts.append(f"<pre>{e(json.dumps(rest, indent=1))}</pre>")
    else:
        parts.append("<p>(no data credits recorded in this model)</p>")
    return "".join(parts)


def _headline_figures(evaluation: dict[str, Any]) -> list[tuple[str, str]]:
    """The figures that read as one line each: numbers, and small tables of numbers."""
    def number(v: int | float) -> str:  # counts in full (10,000, not 1e+04), measurements to 4 digits
        return f"{v:,}" if isinstance(v, int) else f"{v:.4g}"

    rows = []
    for key, value in evaluation.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            rows.append((key.replace("_", " "), number(value)))
        elif (isinstance(value, dict) and 0 < len(value) <= 12
              and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value.values())):
            rows.append((key.replace("_", " "), ", ".join(f"{k} {number(v)}" for k, v in value.items())))
    return rows
