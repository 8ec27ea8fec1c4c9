"""The Predict page's model life cycle: which model is open, loading it, and what a failed choice leaves.

A model the user picks (`open`) has its header read here (no torch) so the page can build its panels
at once; the weights load in the page's service. The window's first model (`open_in_worker`) has its
header read and checked in the worker as well: checking it imports the decoders (numpy, PIL,
soundfile), which the GUI thread need not wait for before the window is shown; the page builds its
panels when the header arrives (`ModelOpened`) and says what is wrong when it is refused. A choice
that fails keeps the model that works: a header that cannot be read leaves the open model untouched,
and weights that fail to load (truncated, tampered) send the page back to the last model that loaded,
with the same files. Only when there is no model at all does the page show the problem in place of
the panels.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QMessageBox

from app.gui.collector import freeze_long_lived_objects
from app.gui.predict.messages import ModelFailed, ModelLoaded, ModelLoading, ModelOpened
from app.qmf.bundle import BundleError, read_bundle_manifest
from app.resources import default_model_path

if TYPE_CHECKING:  # pragma: no cover
    from app.gui.predict.page import PredictPage



def _sentence(text: str) -> str:
    """`text` ending with a full stop, so another sentence can follow it."""
    text = text.rstrip()
    return text if text.endswith((".", "!", "?")) else text + "."

class ModelLife:
    def __init__(self, page: PredictPage):
        self.page = page
        self.manifest: dict[str, Any] | None = None
        self.path: str | None = None
        self.ready = False
        self._working: tuple[str, str] | None = None  # (path, name) of the last model that loaded
        self.fallback_note: str | None = None  # why the bundled model is open instead of the one asked for
        self.opening = False  # open_in_worker: the header is being read in the worker
        self.loading = False  # a model was asked of the worker and has neither loaded nor failed yet
        self._when_opened: list[Callable[[], None]] = []
        self._when_settled: list[Callable[[], None]] = []
        page.service.modelLoading.connect(self._on_loading)
        page.service.modelOpened.connect(self._on_opened)
        page.service.modelLoaded.connect(self._on_loaded)
        page.service.modelFailed.connect(self._on_failed)

    def open(self, path: str | Path | None) -> bool:
        """Read the model's manifest (header only), rebuild the panels, load it in the worker."""
        opened = self._open_now(path)
        self._opened()
        return opened

    def _open_now(self, path: str | Path | None) -> bool:
        path = Path(path) if path is not None else default_model_path()
        try:
            manifest = read_bundle_manifest(path)
        except BundleError as exc:
            self._header_refused(path, str(exc))
            return False
        self.page.service.load_model(path)  # first: the worker loads while the panels are built
        self.loading = True
        self._adopt(path, manifest)
        return True

    def open_in_worker(self, path: str | Path | None, prefetch: dict[str, str | None] | None = None) -> None:
        """`open`, with the header read and checked in the worker: the window's first model, before the
        window is shown. The panels are built when the header arrives; a refused file is reported then,
        as `open` reports it. `prefetch`: the files the window opens with, decoded beside the load."""
        path = Path(path) if path is not None else default_model_path()
        if not path.exists():  # nothing to read: say so now (and fall back to the bundled model), as `open` does
            self.open(path)
            return
        self.opening = self.loading = True
        self.ready = False
        self.page.model_status.setText("Loading model…")
        self.page.busy_bar.setVisible(True)
        from PySide6.QtCore import QTimer
        QTimer.singleShot(0, lambda: self.page.service.open_model(path, prefetch))

    def when_opened(self, then: Callable[[], None]) -> None:
        """Call `then` once the model being opened has its header read (or refused): now, unless
        `open_in_worker`'s answer is still to come."""
        if self.opening:
            self._when_opened.append(then)
        else:
            then()

    def _opened(self) -> None:
        self.opening = False
        waiting, self._when_opened = self._when_opened, []
        for then in waiting:
            then()

    def when_settled(self, then: Callable[[], None]) -> None:
        """Call `then` once no model load is in flight: now, or when the one loading has loaded or failed
        (after any fallback it leads to)."""
        if self.loading:
            self._when_settled.append(then)
        else:
            then()

    def _settled(self) -> None:
        if self.loading:  # a fallback asked for another model
            return
        waiting, self._when_settled = self._when_settled, []
        for then in waiting:
            then()

    def _adopt(self, path: Path, manifest: dict[str, Any]) -> None:
        """The header of `path` is read and checked: it is the open model now (its weights are loading)."""
        page = self.page
        self.ready = False
        self.manifest = manifest
        self.path = str(path)
        self.fallback_note = None
        page._build_panels(manifest["model"]["modalities"])
        if page.views_built:
            page.result_view.clear("Loading model…")
        page.inputs.show_model(manifest, path.name)
        page.model_status.setText("Loading model…")
        page.busy_bar.setVisible(True)
        if page._has_files():
            page.request_prediction()

    def _header_refused(self, path: Path, reason: str) -> None:
        """The file's header cannot be read or is refused (`reason` names the file)."""
        if not path.exists():
            text = (f"No model: {path} not found. Open a QMF Studio model (.safetensors) with "
                    "Model ▸ Open model… (or pass --model FILE).")
        else:
            text = f"Cannot open the model: {_sentence(reason)}"
        if self.manifest is not None:  # keep working with the model already open
            self._warn(f"{text} Still using {self.manifest.get('name', 'the current model')}.")
        elif not self._fall_back_to_bundled(path, text):
            self._problem(text)

    def _on_opened(self, message: ModelOpened) -> None:
        self._adopt(Path(message.path), message.manifest)
        self._opened()

    def _fall_back_to_bundled(self, failed: Path | str, text: str) -> bool:
        """The model asked for (e.g. `--model FILE`) cannot be used and none is open: open the bundled
        one, and say in the status bar and the model line what was wrong with that file."""
        bundled = default_model_path()
        if Path(failed) == bundled or not bundled.exists() or not self._open_now(None):
            return False
        if not text.startswith("No model:"):
            text = _sentence(text)
        else:
            text = f"{failed}: file not found."
        name = self.manifest.get('name', bundled.name)
        note = f"{text} Using the bundled model {name} instead."
        self.fallback_note = " ".join(note.split())  # one line
        # the page's line names the file and says what is open; the whole reason is behind its link
        verdict = "not found" if text.endswith("file not found.") else "could not be used"
        self.page.inputs.show_note(f"{Path(failed).name} {verdict}: the bundled model {name} is open instead.",
                                   details=self.fallback_note)
        self.page._say(self.fallback_note, 0)
        return True

    def _warn(self, text: str) -> None:
        """The user's model choice failed but a working model stays: say so without ending anything."""
        page = self.page
        page._say(text)
        page.inputFailed.emit("", text)
        if page.isVisible():
            QMessageBox.warning(page.window(), "Open model", text)

    def _problem(self, text: str) -> None:
        page = self.page
        page.inputs.show_problem(text)
        page.model_status.setText("No model")
        page.busy_bar.setVisible(False)
        if self.manifest is None and page.views_built:
            page.result_view.clear("No model loaded")
        page._say(text)
        page.inputFailed.emit("", text)

    def _on_loading(self, message: ModelLoading) -> None:
        self.page.model_status.setText(f"Loading model {Path(message.path).name}…")
        self.page.busy_bar.setVisible(True)

    def _on_loaded(self, message: ModelLoaded) -> None:
        page = self.page
        manifest = message.manifest
        self.ready = True
        self.loading = False
        self._working = (message.path, str(manifest.get("name", Path(message.path).name)))
        self.manifest = {**(self.manifest or {}), **manifest}
        page.model_status.setText(f"Model: {manifest.get('name', '?')}"
                                  + (" (bundled instead)" if self.fallback_note else ""))
        page.model_status.setToolTip(self.fallback_note or "")
        page.titleChanged.emit(str(manifest.get("name", "?")))
        page.busy_bar.setVisible(False)
        if page.views_built and page.last_result is None and not page._has_files():
            page.result_view.clear("Model ready: open or drop input files")
        # The model is in: one collection, then later ones skip it. It holds the GIL for ~0.1 s, so
        # with the first prediction queued (or, during start-up, the views still to build) it waits
        # until a result is shown.
        page._freeze_after_result = page._has_files() or not page.views_built
        if not page._freeze_after_result:
            freeze_long_lived_objects()
        page.modelReady.emit(manifest)
        self._settled()

    def _on_failed(self, failed: ModelFailed) -> None:
        self.loading = False  # until a fallback below asks for another model
        try:
            self._failed(failed)
        finally:
            self._settled()

    def _failed(self, failed: ModelFailed) -> None:
        page = self.page
        if failed.header:  # open_in_worker: the file was refused before anything of it was used
            self._header_refused(Path(failed.path), failed.message)
            self._opened()
            return
        self.ready = False
        page.time_label.setText("")
        good = self._working
        if good is not None and good[0] != failed.path and Path(good[0]).exists():
            # The header read cleanly but the weights did not load: go back to the model that worked.
            self.open(good[0])
            self._warn(f"Cannot load the model: {_sentence(failed.message)} Still using {good[1]}.")
            return
        page.titleChanged.emit("")
        if good is None and self._fall_back_to_bundled(failed.path, f"Cannot load the model: {failed.message}"):
            return
        self._problem(f"Cannot load the model: {failed.message}")
        if page.views_built:
            page.result_view.clear("No model loaded")
        page.modelFailed.emit(failed.message)
