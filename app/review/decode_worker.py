"""What a decoding process of the batch runner runs: files -> model inputs (and, given the model file's
ONNX graph, the model's outputs), a batch at a time.

Kept apart from app/review/runner.py so that a worker process imports only what decoding and its
onnxruntime session need (numpy, the modality readers, onnxruntime): not the session store, SQLite,
the runner's pool machinery or the flags. A `spawn` worker imports this module when it unpickles its
initializer; a `fork` worker (`qmf batch`, started before this process has imported onnxruntime or
started a thread) has it already and imports only onnxruntime. The runner re-exports these names.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.modalities import InputError, Modality, get_modality
from app.modalities.base import reuse_freed_memory
from app.qmf.predictor import load_pair

__all__ = ["MODEL_SLICE", "DecodedBatch", "ScoredBatch", "decode_batch", "decode_in_worker", "error_text",
           "init_worker", "run_sliced", "score_in_worker"]

Decoded = tuple[dict[str, np.ndarray] | None, str | None, float]  # (model inputs, error text, seconds)
# (stacked model inputs of the pairs that decoded, in order; (error text or None, seconds) per pair)
DecodedBatch = tuple[dict[str, np.ndarray], list[tuple[str | None, float]]]


@dataclass
class ScoredBatch:
    """What a scoring worker process sends back for one batch: the model's outputs for the pairs that
    decoded (``Predictor.predict_arrays``'s numbers, batch first, in order) or why the model failed on
    them, and one (error text or None, decode seconds) per pair."""

    outcome: list[tuple[str | None, float]]
    numbers: dict[str, Any] | None = None
    model_seconds: float = 0.0
    model_error: str | None = None


class WorkerModelError(Exception):
    """The model failed on a batch in a worker process; the text is `error_text` of what it raised."""


def error_text(exc: BaseException) -> str:
    """One pair's error row text: an InputError's own line, else the exception's type and text."""
    if isinstance(exc, InputError | WorkerModelError):
        return str(exc)
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def decode(modalities: Mapping[str, Modality], files: Mapping[str, Any], open_uri: Any = None) -> dict[str, np.ndarray]:
    raw = load_pair(modalities, files, open_uri)
    return {name: m.to_array(raw[name]) for name, m in modalities.items()}


def timed_decode(modalities: Mapping[str, Modality], files: Mapping[str, Any]) -> Decoded:
    start = time.perf_counter()
    try:
        return decode(modalities, files), None, time.perf_counter() - start
    except Exception as exc:  # noqa: BLE001 - any failure of one file becomes that pair's error row
        return None, error_text(exc), time.perf_counter() - start


def decode_batch(modalities: Mapping[str, Modality], files: list[Mapping[str, Any]]) -> DecodedBatch:
    """Files of several pairs -> (model inputs of the pairs that decoded, stacked per modality, in
    order; one (error text or None, seconds) per pair).

    Each file is read on its own (a bad one becomes its pair's error), then each modality's inputs
    are preprocessed as one batch (`Modality.to_arrays`: an FFT call and a matrix product per 8
    recordings instead of per recording, fewer numpy calls a pair); the numbers are the same.
    """
    raws: list[dict[str, np.ndarray]] = []
    outcome: list[tuple[str | None, float]] = []
    for f in files:
        start = time.perf_counter()
        try:
            raws.append(load_pair(modalities, f))
            outcome.append((None, time.perf_counter() - start))
        except Exception as exc:  # noqa: BLE001 - any failure of one file becomes that pair's error row
            outcome.append((error_text(exc), time.perf_counter() - start))
    if not raws:
        return {}, outcome
    start = time.perf_counter()
    try:
        arrays = {name: m.to_arrays([r[name] for r in raws]) for name, m in modalities.items()}
    except Exception:  # noqa: BLE001 - one pair's input the batch cannot take: pair by pair, errors named
        return _one_by_one(modalities, files, outcome)
    share = (time.perf_counter() - start) / len(raws)
    return arrays, [(err, s + share if err is None else s) for err, s in outcome]


def _one_by_one(modalities: Mapping[str, Modality], files: list[Mapping[str, Any]],
                outcome: list[tuple[str | None, float]]) -> DecodedBatch:
    decoded = [timed_decode(modalities, f) if err is None else (None, err, s)
               for f, (err, s) in zip(files, outcome, strict=True)]
    good = [d for d, _, _ in decoded if d is not None]
    arrays = {name: np.stack([d[name] for d in good]) for name in modalities} if good else {}
    return arrays, [(err, s) for _, err, s in decoded]


# --- the worker process's state: the model's modality readers, built once from the manifest, and, given
# the model file's ONNX graph, its own inference session -----------------------------------------------
WORKER_MODALITIES: dict[str, Modality] = {}
WORKER_ENGINE: list[Any] = []  # [OnnxModel] in a worker that scores, else empty


def _end_with(parent: int) -> None:
    """Linux: this process is sent SIGTERM when ``parent`` (the run's process, whose main thread started
    it) ends, killed included; without it a killed run left its workers waiting for work forever."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6").prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not glibc Linux: the workers end with the pool's shutdown only
        return
    if os.getppid() != parent:  # the parent ended before the request was made
        os._exit(0)


def init_worker(specs: list[tuple[str, str, dict[str, Any]]], graph: bytes | None = None,
                model_path: str = "<model>", parent: int | None = None) -> None:
    """A worker process's initializer: ``specs`` (name, kind, preprocessing) per modality; ``graph``
    the model file's ONNX bytes when the worker also runs the model (one onnxruntime thread);
    ``parent``: the process id of the run, whose end ends this worker too."""
    if parent is not None:
        _end_with(parent)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    reuse_freed_memory()
    WORKER_MODALITIES.clear()
    WORKER_MODALITIES.update({name: get_modality(kind, params) for name, kind, params in specs})
    WORKER_ENGINE.clear()
    if graph is not None:
        from app.qmf.onnx_graph import OnnxModel

        WORKER_ENGINE.append(OnnxModel(graph, list(WORKER_MODALITIES),
                                       {n: m.input_shape for n, m in WORKER_MODALITIES.items()}, model_path))


def decode_chunk(files: list[dict[str, Any]]) -> list[Decoded]:
    """Each pair decoded on its own: (model inputs, error, seconds) per pair."""
    return [timed_decode(WORKER_MODALITIES, f) for f in files]


def decode_in_worker(files: list[dict[str, Any]]) -> DecodedBatch:
    """`decode_batch` in a worker process, with the readers `init_worker` built."""
    return decode_batch(WORKER_MODALITIES, files)


def score_in_worker(files: list[dict[str, Any]]) -> ScoredBatch:
    """`decode_batch`, then the model on the pairs that decoded, in a worker process that `init_worker`
    gave the graph: only the outputs travel back (a few hundred bytes a pair instead of its inputs)."""
    arrays, outcome = decode_batch(WORKER_MODALITIES, files)
    if not arrays:  # no pair of the batch decoded
        return ScoredBatch(outcome)
    start = time.perf_counter()
    try:
        numbers = run_sliced(WORKER_ENGINE[0], arrays)
    except Exception as exc:  # noqa: BLE001 - a model failure is recorded on each pair of the batch
        return ScoredBatch(outcome, model_error=error_text(exc))
    return ScoredBatch(outcome, numbers, time.perf_counter() - start)


# A scoring process runs the model on its batch this many pairs at a time: the convolutions' working
# set then stays in the core's cache (a batch of 64 at once cost 5-10 % more CPU a pair on the bundled
# model, more on a busy machine). Each pair's outputs depend on its own inputs alone: the same numbers,
# bit for bit (tests/review/test_runner_processes.py compares them with one run over the whole batch).
MODEL_SLICE = 32


def run_sliced(engine: Any, arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """``engine.run(arrays)`` (batch first), `MODEL_SLICE` pairs at a time, the outputs joined in order."""
    count = len(next(iter(arrays.values())))
    if count <= MODEL_SLICE:
        return engine.run(arrays)
    parts = [engine.run({name: a[i : i + MODEL_SLICE] for name, a in arrays.items()})
             for i in range(0, count, MODEL_SLICE)]

    def joined(values: list[Any]) -> Any:
        if isinstance(values[0], dict):
            return {key: joined([v[key] for v in values]) for key in values[0]}
        return np.concatenate(values)

    return joined(parts)


def ready() -> None:
    """A task that only makes a worker process start."""
