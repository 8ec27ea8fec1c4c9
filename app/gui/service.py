"""The prediction service: a QObject that lives in a worker thread and owns the model.

Why a worker: importing torch and loading a model take seconds, and decoding a file or running the
model takes tens of milliseconds, both too long for the GUI thread (a slider drag would stutter).
Everything that touches torch, the model or the files on disk happens here; the GUI thread only
sends requests and draws what comes back through queued signals.

Supersede, not queue: requests are stored in one lock-protected slot per job kind; a new request
overwrites a pending one, and the worker always takes the latest. Dragging a slider therefore never
builds a backlog: at most one prediction runs while the newest waits.

torch is imported lazily, inside the worker thread, the first time a model is loaded, so the
window shows before torch has finished loading.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.gui.collector import install_gui_thread_collector

SWEEP_LEVELS = tuple(float(v) for v in np.linspace(0.0, 10.0, 11))
_DECODE_CACHE_SIZE = 16
TORCH_THREADS_ENV = "QMF_STUDIO_TORCH_THREADS"
_LINGERING: list[PredictionService] = []


@dataclass
class PredictRequest:
    """One prediction: files per modality (None = missing) and the corruptions to apply."""

    request_id: int
    files: dict[str, str | None]
    corruptions: list[tuple[str, str, float]] = field(default_factory=list)
    seed: int = 0


@dataclass
class SweepRequest:
    """Degrade one modality at a time over the whole severity range with the given kinds."""

    request_id: int
    files: dict[str, str | None]
    kinds: dict[str, str]
    levels: tuple[float, ...] = SWEEP_LEVELS
    seed: int = 0


def effective_corruptions(corruptions: list[tuple[str, str, float]]) -> list[tuple[str, str, float]]:
    """Drop level-0 entries.

    `Predictor.corrupt` derives each corruption's generator from its position in the list, so a
    level-0 entry in front would change the noise drawn for the next one; dropping them keeps the
    numbers equal to `qmf predict --corrupt ...` given only the active corruptions.
    """
    return [(n, k, float(lv)) for n, k, lv in corruptions if float(lv) > 0.0]


class PredictionService(QObject):
    """Owns the Predictor in its own thread. Create it, then call `start()`; talk to it by methods.

    Signals are emitted from the worker thread; Qt delivers them to receivers in the GUI thread
    through queued connections.
    """

    modelLoading = Signal(str)  # path
    # Payloads are Signal(object), not Signal(dict): a dict would be converted to a QVariantMap,
    # which sorts the keys (the modality order matters) and may copy numpy arrays.
    modelLoaded = Signal(object)  # manifest dict (+ "path", "sha256")
    modelFailed = Signal(str, str)  # path, message
    predicted = Signal(int, object)  # request id, result
    failed = Signal(int, str, str)  # request id, modality name ("" = not one input), message
    # before `failed` for an unreadable input: the inputs of that request that did decode, so their
    # previews show ({"raw": {name: array}, "info": {name: text}})
    partlyDecoded = Signal(int, object)
    sweepDone = Signal(int, object)
    sweepFailed = Signal(int, str)
    busyChanged = Signal(bool)
    _wake = Signal()

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._pending_model: str | None = None
        self._pending_predict: PredictRequest | None = None
        self._pending_sweep: SweepRequest | None = None
        self._predictor: Any = None
        self._decoded: OrderedDict[tuple, tuple[np.ndarray, str]] = OrderedDict()
        self._thread = QThread()
        self._thread.setObjectName("qmf-prediction-worker")
        self.moveToThread(self._thread)
        self._wake.connect(self._process)  # queued: self lives in the worker thread

    # --- GUI-thread API ---------------------------------------------------------------------------
    def start(self) -> None:
        # Python code now runs in a second thread: keep the cycle collector in the GUI thread, where
        # it may destroy Qt objects safely (see app.gui.collector).
        install_gui_thread_collector()
        self._thread.start()

    def stop(self, timeout_ms: int = 60000) -> None:
        """Drop pending work and end the thread (waits for a running job, e.g. a model load, to finish)."""
        with self._lock:
            self._pending_model = self._pending_predict = self._pending_sweep = None
        self._thread.quit()
        if not self._thread.wait(timeout_ms):
            _LINGERING.append(self)  # never let a running QThread be garbage-collected

    def is_running(self) -> bool:
        return self._thread.isRunning()

    def load_model(self, path: str | Path) -> None:
        """Load a bundle; pending predictions for the old model are dropped."""
        with self._lock:
            self._pending_model = str(path)
            self._pending_predict = None
            self._pending_sweep = None
        self._wake.emit()

    def submit(self, request: PredictRequest) -> None:
        """Queue a prediction, replacing any pending (not yet started) one."""
        with self._lock:
            self._pending_predict = request
        self._wake.emit()

    def submit_sweep(self, request: SweepRequest) -> None:
        with self._lock:
            self._pending_sweep = request
        self._wake.emit()

    # --- worker thread ------------------------------------------------------------------------------
    @Slot()
    def _process(self) -> None:
        while True:
            with self._lock:
                model, self._pending_model = self._pending_model, None
                request = None
                sweep = None
                if model is None:
                    request, self._pending_predict = self._pending_predict, None
                    if request is None:
                        sweep, self._pending_sweep = self._pending_sweep, None
            if model is None and request is None and sweep is None:
                return
            self.busyChanged.emit(True)
            try:
                if model is not None:
                    self._load(model)
                elif request is not None:
                    self._predict(request)
                elif sweep is not None:
                    self._sweep(sweep)
            finally:
                self.busyChanged.emit(False)

    def _load(self, path: str) -> None:
        self.modelLoading.emit(path)
        try:
            from app.qmf.predictor import Predictor  # torch only for a model file without its ONNX graph

            predictor = Predictor.load(path)
            if predictor.backend == "torch":
                _limit_torch_threads()
        except Exception as exc:  # BundleError, or anything a damaged file provokes
            self._predictor = None
            message = str(exc) if exc.__class__.__name__ == "BundleError" else _describe(exc)
            self.modelFailed.emit(path, message)
            return
        self._predictor = predictor
        self._decoded.clear()
        manifest = dict(predictor.manifest)
        manifest["path"] = path
        manifest["sha256"] = predictor.sha256
        self.modelLoaded.emit(manifest)

    def _decode(self, name: str, path: str) -> tuple[np.ndarray, str]:
        """Decode one file (cached by path, size and modification time) and describe it."""
        p = Path(path)
        try:
            st = p.stat()
            key = (name, str(p.resolve()), st.st_size, st.st_mtime_ns)
        except OSError:
            key = None
        if key is not None and key in self._decoded:
            self._decoded.move_to_end(key)
            return self._decoded[key]
        modality = self._predictor.modalities[name]
        raw = modality.load(path)  # InputError names the file
        info = describe_file(modality.kind, p, raw, modality.params)
        if key is not None:
            self._decoded[key] = (raw, info)
            while len(self._decoded) > _DECODE_CACHE_SIZE:
                self._decoded.popitem(last=False)
        return raw, info

    def _inputs(self, request_id: int, files: dict[str, str | None]) -> tuple[dict, dict] | None:
        from app.modalities import InputError

        raw: dict[str, np.ndarray] = {}
        info: dict[str, str] = {}
        errors: list[tuple[str, str]] = []
        for name, modality in self._predictor.modalities.items():
            path = files.get(name)
            if path is None:
                raw[name] = modality.blank()
                info[name] = "missing: a blank input is used"
                continue
            try:
                raw[name], info[name] = self._decode(name, path)
            except InputError as exc:
                errors.append((name, str(exc)))
            except Exception as exc:  # a decoder bug must not kill the worker
                errors.append((name, f"{path}: cannot read this file: {_describe(exc)}"))
        if not errors:
            return raw, info
        readable = {n: r for n, r in raw.items() if files.get(n) is not None}
        if readable:
            self.partlyDecoded.emit(request_id, {"raw": readable, "info": {n: info[n] for n in readable}})
        for name, message in errors:
            self.failed.emit(request_id, name, message)
        return None

    def _predict(self, request: PredictRequest) -> None:
        if self._predictor is None:
            self.failed.emit(request.request_id, "", "no model is loaded")
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
        except Exception as exc:
            self.failed.emit(request.request_id, "", _describe(exc, with_traceback=True))
            return
        seconds = time.perf_counter() - start
        self.predicted.emit(
            request.request_id,
            {
                "prediction": prediction.to_json(),
                "raw": raw,
                "info": info,
                "files": files,
                "corruptions": [{"modality": n, "kind": k, "level": lv} for n, k, lv in corruptions],
                "seed": request.seed,
                "seconds": seconds,
                "model_seconds": prediction.seconds,
            },
        )

    def _sweep(self, request: SweepRequest) -> None:
        if self._predictor is None:
            self.sweepFailed.emit(request.request_id, "no model is loaded")
            return
        try:
            inputs = self._inputs(request.request_id, request.files)
            if inputs is None:
                self.sweepFailed.emit(request.request_id, "an input could not be read")
                return
            clean, _ = inputs
            names = list(self._predictor.modalities)
            raws = []
            for name in names:
                kind = request.kinds.get(name) or self._predictor.modalities[name].corruption_kinds[0]
                for level in request.levels:
                    raws.append(self._predictor.corrupt(clean, effective_corruptions([(name, kind, level)]),
                                                        seed=request.seed))
            preds = self._predictor.predict_many(raws)
        except Exception as exc:
            self.sweepFailed.emit(request.request_id, _describe(exc, with_traceback=True))
            return
        n = len(request.levels)
        result: dict[str, Any] = {"levels": list(request.levels), "modalities": {}}
        for i, name in enumerate(names):
            chunk = preds[i * n : (i + 1) * n]
            result["modalities"][name] = {
                "kind": request.kinds.get(name) or self._predictor.modalities[name].corruption_kinds[0],
                "quality": [p.modalities[name].quality for p in chunk],
                "share": [p.modalities[name].share for p in chunk],
                "confidence": [p.probability for p in chunk],
                "label": [p.label for p in chunk],
            }
        self.sweepDone.emit(request.request_id, result)


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


def describe_file(kind: str, path: Path, raw: np.ndarray, params: dict[str, Any]) -> str:
    """One line about the file as it is on disk (size, format), for the panel's caption."""
    try:
        if kind == "image":
            from PIL import Image

            with Image.open(path) as im:
                w, h, fmt, mode = im.width, im.height, im.format or "?", im.mode
            shape = "×".join(str(v) for v in np.asarray(raw).shape[:2][::-1])
            return f"{w}×{h} {fmt} ({mode}); the model sees {shape}"
        if kind == "audio":
            import soundfile as sf

            i = sf.info(str(path))
            return (f"{i.duration:.2f} s, {i.samplerate} Hz, {i.channels} ch {i.format}"
                    f" → {params.get('sample_rate', '?')} Hz mono")
        if kind == "text":
            return f"{len(raw)} words"
    except Exception:  # the caption is a nicety; the decode already succeeded
        pass
    return f"{path.suffix.lstrip('.').upper() or 'file'}, {path.stat().st_size} bytes"


def _describe(exc: BaseException, with_traceback: bool = False) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if with_traceback:
        text += "\n\n" + "".join(traceback.format_exception(exc))
    return text
