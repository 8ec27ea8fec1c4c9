"""The Predict tab's service: a worker thread that owns the model, and the one place stale answers die.

Why a worker: importing torch and loading a model take seconds, and decoding a file or running the
model takes tens of milliseconds, both too long for the GUI thread (a slider drag would stutter).
Everything that touches torch, the model or the files on disk happens in `_Worker`, in its own
thread; the GUI thread only sends requests and draws what comes back.

Supersede, not queue: requests wait in one lock-protected slot per job kind; a new request
overwrites a pending one and the worker always takes the latest, so dragging a slider never builds
a backlog. Answers to a request that was superseded while it ran are dropped by `_deliver`, in the
GUI thread, before any receiver sees them (as Orange's ConcurrentMixin drops a replaced task's
result): the page only ever gets answers to its latest request of each kind.

torch is imported lazily, inside the worker thread, the first time a model is loaded, so the
window shows before torch has finished loading.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.gui.collector import install_gui_thread_collector
from app.gui.predict.file_caption import describe_file
from app.gui.predict.messages import (
    ErrorKind,
    ModelFailed,
    ModelLoaded,
    ModelLoading,
    ModelOpened,
    PartlyDecoded,
    Predicted,
    PredictFailed,
    PredictRequest,
    SweepCurve,
    SweepDone,
    SweepFailed,
    SweepRequest,
)

if TYPE_CHECKING:  # pragma: no cover - numpy and the modalities load in the worker, beside the window
    import numpy as np

_DECODE_CACHE_SIZE = 16
TORCH_THREADS_ENV = "QMF_STUDIO_TORCH_THREADS"
_LINGERING: list[QThread] = []


def effective_corruptions(corruptions: list[tuple[str, str, float]]) -> list[tuple[str, str, float]]:
    """Drop level-0 entries.

    `Predictor.corrupt` derives each corruption's generator from its position in the list, so a
    level-0 entry in front would change the noise drawn for the next one; dropping them keeps the
    numbers equal to `qmf predict --corrupt ...` given only the active corruptions.
    """
    return [(n, k, float(lv)) for n, k, lv in corruptions if float(lv) > 0.0]


class PredictionService(QObject):
    """Lives in the GUI thread; call `start()`, then `load_model`, `predict`, `sweep`.

    Its signals carry the dataclasses of `app.gui.predict.messages` and only ever answer the latest
    request of their kind. Payloads are Signal(object): a dict would become a QVariantMap, which
    sorts the keys (the input order matters) and may copy numpy arrays.
    """

    modelLoading = Signal(object)  # ModelLoading
    modelOpened = Signal(object)  # ModelOpened (open_model only)
    modelLoaded = Signal(object)  # ModelLoaded
    modelFailed = Signal(object)  # ModelFailed
    predicted = Signal(object)  # Predicted
    partlyDecoded = Signal(object)  # PartlyDecoded, before the PredictFailed of that request
    failed = Signal(object)  # PredictFailed
    sweepDone = Signal(object)  # SweepDone
    sweepFailed = Signal(object)  # SweepFailed
    busyChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._latest = {"model": 0, "predict": 0, "sweep": 0}
        self._held: list[Any] | None = None  # answers kept back while the page builds its views
        self._worker = _Worker()
        self._thread = QThread()
        self._thread.setObjectName("qmf-prediction-worker")
        self._worker.moveToThread(self._thread)
        self._worker.answered.connect(self._deliver)  # queued: the worker emits from its thread
        self._worker.busyChanged.connect(self.busyChanged)

    # --- GUI-thread API ---------------------------------------------------------------------------
    def start(self) -> None:
        # Python code now runs in a second thread: keep the cycle collector in the GUI thread, where
        # it may destroy Qt objects safely (see app.gui.collector).
        install_gui_thread_collector()
        self._thread.start()

    def stop(self, timeout_ms: int = 60000) -> None:
        """Drop pending work and end the thread (waits for a running job, e.g. a model load, to finish)."""
        self._worker.drop_pending()
        self._thread.quit()
        if not self._thread.wait(timeout_ms):
            _LINGERING.append(self._thread)  # never let a running QThread be garbage-collected

    def is_running(self) -> bool:
        return self._thread.isRunning()

    def hold(self) -> None:
        """Keep answers about predictions and sweeps back (the model's own pass) until `release()`."""
        if self._held is None:
            self._held = []

    def release(self) -> None:
        """Deliver what was held, in order (still dropping what was superseded meanwhile)."""
        held, self._held = self._held or [], None
        for message in held:
            self._deliver(message)

    def prefetch(self, specs: list[dict[str, Any]], files: dict[str, str | None]) -> None:
        """Decode these files now, in a thread of their own, while the model loads.

        `specs` are the manifest header's modalities (name, kind, preprocessing): decoding needs
        only those, not the weights. The results land in the worker's decode cache, where the first
        prediction of the same files finds them.
        """
        self._worker.prefetch(specs, files)

    def latest(self, job: str) -> int:
        """The id of the latest request of this kind ("model", "predict", "sweep"); 0 before any."""
        return self._latest[job]

    def load_model(self, path: str | Path) -> int:
        """Load a bundle whose header the caller has read; pending predictions and sweeps (for the old
        model) are dropped."""
        self._latest["model"] += 1
        self._worker.put_model(self._latest["model"], str(path))
        return self._latest["model"]

    def open_model(self, path: str | Path, prefetch: dict[str, str | None] | None = None) -> int:
        """`load_model`, with the header read and checked in the worker too: `modelOpened` (its manifest)
        comes before the weights load, or `modelFailed` with `header=True` when the file is refused.

        The window opens its first model this way, so the GUI thread never imports the decoders (numpy,
        PIL, soundfile: what checking the manifest needs) before it is shown. `prefetch`: files by
        input name, decoded in a thread of their own once the header says how (see `prefetch`).
        """
        self._latest["model"] += 1
        self._worker.put_model(self._latest["model"], str(path), read_header=True, prefetch=prefetch)
        return self._latest["model"]

    def predict(self, files: dict[str, str | None], corruptions: list[tuple[str, str, float]] = (),
                seed: int = 0) -> int:
        """Ask for a prediction; it supersedes every earlier one. Returns its request id."""
        self._latest["predict"] += 1
        self._worker.put(PredictRequest(self._latest["predict"], dict(files), list(corruptions), seed))
        return self._latest["predict"]

    def sweep(self, files: dict[str, str | None], kinds: dict[str, str], seed: int = 0) -> int:
        self._latest["sweep"] += 1
        self._worker.put(SweepRequest(self._latest["sweep"], dict(files), dict(kinds), seed=seed))
        return self._latest["sweep"]

    @Slot(object)
    def _deliver(self, message: Any) -> None:
        """The one place answers to superseded requests are dropped."""
        if message.request_id != self._latest[message.job]:
            return
        if self._held is not None and message.job != "model":
            self._held.append(message)
            return
        signal = {ModelLoading: self.modelLoading, ModelOpened: self.modelOpened, ModelLoaded: self.modelLoaded,
                  ModelFailed: self.modelFailed,
                  Predicted: self.predicted, PartlyDecoded: self.partlyDecoded, PredictFailed: self.failed,
                  SweepDone: self.sweepDone, SweepFailed: self.sweepFailed}[type(message)]
        signal.emit(message)


class _Worker(QObject):
    """Owns the Predictor, in the worker thread. Talks only through `answered` (typed messages)."""

    answered = Signal(object)
    busyChanged = Signal(bool)
    _wake = Signal()

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._pending: dict[str, Any] = {"model": None, "predict": None, "sweep": None}
        self._predictor: Any = None
        self._decoded: OrderedDict[tuple, tuple[np.ndarray, str]] = OrderedDict()
        self._decoded_lock = threading.Lock()  # the prefetch thread fills the cache too
        self._prefetching: threading.Thread | None = None
        self._wake.connect(self._process)  # queued once moved: _process runs in the worker thread

    # --- any thread ---------------------------------------------------------------------------------
    def put_model(self, request_id: int, path: str, read_header: bool = False,
                  prefetch: dict[str, str | None] | None = None) -> None:
        with self._lock:
            self._pending = {"model": (request_id, path, read_header, prefetch), "predict": None, "sweep": None}
        self._wake.emit()

    def put(self, request: PredictRequest | SweepRequest) -> None:
        with self._lock:
            self._pending[request.job] = request
        self._wake.emit()

    def prefetch(self, specs: list[dict[str, Any]], files: dict[str, str | None]) -> None:
        def decode_all() -> None:  # imports numpy and the decoders itself: the GUI thread need not wait
            from app.modalities import get_modality

            modalities = {}
            for spec in specs:
                try:
                    modalities[spec["name"]] = get_modality(spec["kind"], spec.get("preprocessing") or {})
                except (KeyError, ValueError):
                    continue  # a kind this version cannot decode: the model load will say so
            for name, path in files.items():
                if path is not None and name in modalities:
                    try:
                        self._decode_with(modalities[name], name, path)
                    except Exception:  # noqa: BLE001 - the prediction decodes it again and reports it
                        pass

        self._prefetching = threading.Thread(target=decode_all, name="qmf-prefetch", daemon=True)
        self._prefetching.start()

    def drop_pending(self) -> None:
        with self._lock:
            self._pending = {"model": None, "predict": None, "sweep": None}

    # --- worker thread ------------------------------------------------------------------------------
    @Slot()
    def _process(self) -> None:
        while True:
            with self._lock:  # a model load first; then the latest prediction; then the latest sweep
                job = next((k for k in ("model", "predict", "sweep") if self._pending[k] is not None), None)
                if job is None:
                    return
                work, self._pending[job] = self._pending[job], None
            self.busyChanged.emit(True)
            try:
                if job == "model":
                    self._load(*work)
                elif job == "predict":
                    self._predict(work)
                else:
                    self._sweep(work)
            finally:
                self.busyChanged.emit(False)

    def _load(self, request_id: int, path: str, read_header: bool = False,
              prefetch: dict[str, str | None] | None = None) -> None:
        if read_header and not self._open_header(request_id, path, prefetch):
            return
        self.answered.emit(ModelLoading(request_id, path))  # after ModelOpened: the page's line names the file
        try:
            from app.qmf.bundle import BundleError
            from app.qmf.predictor import Predictor  # torch only for a model file without its ONNX graph

            predictor = Predictor.load(path)
            if predictor.backend == "torch":
                _limit_torch_threads()
        except BundleError as exc:  # the file names itself and what is wrong with it
            self._predictor = None
            self.answered.emit(ModelFailed(request_id, path, ErrorKind.BAD_MODEL, str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - anything a damaged file provokes: reported (INTERNAL), worker kept
            self._predictor = None
            self.answered.emit(ModelFailed(request_id, path, ErrorKind.INTERNAL, f"{path}: {_describe(exc)}",
                                           _traceback(exc)))
            return
        self._predictor = predictor  # the decode cache stays: its keys hold each modality's parameters
        manifest = dict(predictor.manifest)
        manifest["path"] = path
        manifest["sha256"] = predictor.sha256
        self.answered.emit(ModelLoaded(request_id, path, manifest))

    def _open_header(self, request_id: int, path: str, prefetch: dict[str, str | None] | None) -> bool:
        """Read and check the header (`read_bundle_manifest`: every manifest value against its range) and
        announce it; False after reporting a file that is refused. Any exception is reported, never raised:
        the file is the user's, and the window must say what is wrong with it."""
        try:
            from app.qmf.bundle import BundleError, read_bundle_manifest

            manifest = read_bundle_manifest(path)
        except BundleError as exc:
            self.answered.emit(ModelFailed(request_id, path, ErrorKind.BAD_MODEL, str(exc), header=True))
            return False
        except Exception as exc:  # noqa: BLE001 - whatever a damaged header provokes: reported, worker kept
            self.answered.emit(ModelFailed(request_id, path, ErrorKind.INTERNAL, f"{path}: {_describe(exc)}",
                                           _traceback(exc), header=True))
            return False
        self.answered.emit(ModelOpened(request_id, path, manifest))
        if prefetch:
            self.prefetch(manifest["model"]["modalities"], prefetch)
        return True

    def _decode(self, name: str, path: str) -> tuple[np.ndarray, str]:
        prefetching = self._prefetching
        if prefetching is not None:  # started with the model load; done long before it, as a rule
            prefetching.join()
            self._prefetching = None
        return self._decode_with(self._predictor.modalities[name], name, path)

    def _decode_with(self, modality: Any, name: str, path: str) -> tuple[np.ndarray, str]:
        """Decode one file (cached by path, size, modification time and the modality's parameters)
        and describe it."""
        p = Path(path)
        try:
            st = p.stat()
            key = (name, modality.kind, repr(sorted(modality.params.items())), str(p.resolve()),
                   st.st_size, st.st_mtime_ns)
        except OSError:
            key = None
        with self._decoded_lock:
            if key is not None and key in self._decoded:
                self._decoded.move_to_end(key)
                return self._decoded[key]
        from app.modalities.base import InputWarning

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", InputWarning)
            raw = modality.load(path)  # InputError names the file
        info = describe_file(modality.kind, p, raw, modality.params)
        notes = [w.message.reason for w in caught if isinstance(w.message, InputWarning)]
        if notes:
            info = f"{info} — ⚠ {'; '.join(notes)}"
        if key is not None:
            with self._decoded_lock:
                self._decoded[key] = (raw, info)
                while len(self._decoded) > _DECODE_CACHE_SIZE:
                    self._decoded.popitem(last=False)
        return raw, info

    def _inputs(self, request_id: int, files: dict[str, str | None]) -> tuple[dict, dict] | None:
        """The decoded inputs, or None after reporting each unreadable one (and the readable ones)."""
        from app.modalities import InputError

        raw: dict[str, np.ndarray] = {}
        info: dict[str, str] = {}
        errors: list[PredictFailed] = []
        for name, modality in self._predictor.modalities.items():
            path = files.get(name)
            if path is None:
                raw[name] = modality.blank()
                info[name] = "missing: a blank input is used"
                continue
            try:
                raw[name], info[name] = self._decode(name, path)
            except InputError as exc:
                errors.append(PredictFailed(request_id, ErrorKind.BAD_INPUT, name, str(exc)))
            except Exception as exc:  # noqa: BLE001 - a decoder bug: reported on that input's panel, worker kept
                errors.append(PredictFailed(request_id, ErrorKind.INTERNAL, name,
                                            f"{path}: cannot read this file: {_describe(exc)}", _traceback(exc)))
        if not errors:
            return raw, info
        readable = {n: r for n, r in raw.items() if files.get(n) is not None}
        if readable:
            self.answered.emit(PartlyDecoded(request_id, readable, {n: info[n] for n in readable}))
        for error in errors:
            self.answered.emit(error)
        return None

    def _predict(self, request: PredictRequest) -> None:
        if self._predictor is None:
            self.answered.emit(PredictFailed(request.request_id, ErrorKind.NO_MODEL, None, "no model is loaded"))
            return
        start = time.perf_counter()
        try:
            inputs = self._inputs(request.request_id, request.files)
            if inputs is None:
                return
            clean, info = inputs
            corruptions = effective_corruptions(request.corruptions)
            raw = self._predictor.corrupt(clean, corruptions, seed=request.seed)
            files = {n: request.files.get(n) for n in self._predictor.modalities}
            prediction = self._predictor.predict(raw, files)
        except Exception as exc:  # noqa: BLE001 - reported with its traceback; the worker stays up
            self.answered.emit(PredictFailed(request.request_id, ErrorKind.INTERNAL, None, _describe(exc),
                                             _traceback(exc)))
            return
        self.answered.emit(Predicted(
            request.request_id, prediction.to_json(), raw, info, files,
            [{"modality": n, "kind": k, "level": lv} for n, k, lv in corruptions], request.seed,
            time.perf_counter() - start, prediction.seconds, clean,
        ))

    def _sweep(self, request: SweepRequest) -> None:
        if self._predictor is None:
            self.answered.emit(SweepFailed(request.request_id, ErrorKind.NO_MODEL, "no model is loaded"))
            return
        try:
            inputs = self._inputs(request.request_id, request.files)
            if inputs is None:
                self.answered.emit(SweepFailed(request.request_id, ErrorKind.BAD_INPUT, "an input could not be read"))
                return
            clean, _ = inputs
            names = list(self._predictor.modalities)
            kinds = {n: request.kinds.get(n) or self._predictor.modalities[n].corruption_kinds[0] for n in names}
            raws = [self._predictor.corrupt(clean, effective_corruptions([(name, kinds[name], level)]),
                                            seed=request.seed)
                    for name in names for level in request.levels]
            preds = self._predictor.predict_many(raws)
        except Exception as exc:  # noqa: BLE001 - reported with its traceback; the worker stays up
            self.answered.emit(SweepFailed(request.request_id, ErrorKind.INTERNAL, _describe(exc), _traceback(exc)))
            return
        n = len(request.levels)
        curves = {}
        for i, name in enumerate(names):
            chunk = preds[i * n : (i + 1) * n]
            curves[name] = SweepCurve(kinds[name], [p.modalities[name].quality for p in chunk],
                                      [p.modalities[name].share for p in chunk], [p.probability for p in chunk],
                                      [p.label for p in chunk])
        self.answered.emit(SweepDone(request.request_id, list(request.levels), curves))


def _limit_torch_threads() -> None:
    """One intra-op thread for interactive predictions (QMF_STUDIO_TORCH_THREADS overrides).

    A single sample through a small network gains nothing from more threads, and on a busy machine
    a parallel region waits for every one of its threads to be scheduled: with two threads on two
    loaded cores a 2 ms forward pass was seen to take 300 ms. Set in the worker thread, before the
    first forward pass.
    """
    import torch

    try:
        threads = int(os.environ.get(TORCH_THREADS_ENV, "1"))
    except ValueError:
        threads = 1
    if threads > 0 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))
