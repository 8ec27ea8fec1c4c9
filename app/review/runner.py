"""Run a model over every pending pair of a review session, with bounded memory.

The pipeline: workers decode files into model inputs a few batches ahead (each process whole batches,
each thread a slice of one: the files read one by one, then preprocessed as one batch per modality,
`decode_batch`), while the calling thread runs the model on one batch at a time (or, with worker
processes and an ONNX graph, takes the model's outputs they computed) and writes the
results: the first batch at once, then one transaction per ``COMMIT_SECONDS`` of results (and before a pause, a cancel and the end). At most ``prefetch`` batches
are in flight, so memory does not grow with the number of pairs.

Decoding is mostly Python holding the global lock (two decoding threads were measured slower than one,
issue 13), so a long run decodes in worker processes: ``processes`` of them (default: one per CPU, at
most 8), each sent whole batches. With a model file's ONNX graph each worker also runs the model on the
batches it decoded (its own onnxruntime session, one thread, the same graph and options as this
process's, so the same numbers) and sends back only the model's outputs; this process turns them into
results and writes them. A model run here instead (as the thread pool does) capped the run at this one
process's rate, about 1,700 pairs/s whatever the number of cores, with the other cores partly idle.
A torch model (no graph) is run here, on the decoded inputs the workers send.
Processes cost a start-up of a fraction of a second each, so runs of fewer than
``MIN_PAIRS_FOR_PROCESSES`` pending pairs, a single CPU, and daemonic processes (the app's review
child, which may not have children) use a pool of threads instead.

Between batches the runner honours pause and cancel; a file that cannot be read becomes an error row
naming the file and the run goes on. The runner never touches Qt: the app wraps it in a QThread, the
CLI calls it directly.
"""

from __future__ import annotations

import functools
import math
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np

from app.modalities import Modality, get_modality
from app.modalities.base import reuse_freed_memory
from app.qmf.predictor import Predictor, load_pair
from app.review.control import RunControl
from app.review.session import PendingPair, ResultRecord, ReviewSession

__all__ = ["BatchRunner", "Progress", "RunStats", "decode_pair", "decoding_processes", "default_workers"]

# Test hook: seconds to sleep after each batch, so a test can kill a run mid-way deterministically.
_DELAY_ENV = "QMF_REVIEW_BATCH_DELAY"
MIN_PAIRS_FOR_PROCESSES = 1000
COMMIT_SECONDS = 0.5  # results are written (one transaction) at least this often, and at the end

Progress = Callable[[int, int, float, float | None], None]  # (done, total, pairs per second, seconds left)
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


def default_workers() -> int:
    return max(1, min(8, (os.cpu_count() or 2)))


@dataclass
class RunStats:
    processed: int = 0
    errors: int = 0
    seconds: float = 0.0
    decode_seconds: float = 0.0
    model_seconds: float = 0.0
    cancelled: bool = False
    total: int = 0
    done: int = 0
    processes: int = 0  # decoding processes used (0: threads)

    @property
    def rate(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0


class _WorkerModelError(Exception):
    """The model failed on a batch in a worker process; the text is `_error_text` of what it raised."""


def _error_text(exc: BaseException) -> str:
    from app.modalities import InputError

    if isinstance(exc, InputError | _WorkerModelError):
        return str(exc)
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _decode(modalities: Mapping[str, Modality], files: Mapping[str, Any], open_uri: Any = None) -> dict[str, np.ndarray]:
    raw = load_pair(modalities, files, open_uri)
    return {name: m.to_array(raw[name]) for name, m in modalities.items()}


def decode_pair(predictor: Predictor, files: dict[str, Any], open_uri: Any = None) -> dict[str, np.ndarray]:
    """Files -> one model input per modality (what the model needs, minus batching).

    Uses only the predictor's modality readers, which hold no mutable state, so it is safe to call
    from several threads at once while another thread runs the model. ``open_uri`` opens URI files
    (`load_pair`; the Ray engine's `app.review.uris.UriOpener`).
    """
    return _decode(predictor.modalities, files, open_uri)


def _timed_decode(modalities: Mapping[str, Modality], files: Mapping[str, Any]) -> Decoded:
    start = time.perf_counter()
    try:
        return _decode(modalities, files), None, time.perf_counter() - start
    except Exception as exc:  # noqa: BLE001 - any failure of one file becomes that pair's error row
        return None, _error_text(exc), time.perf_counter() - start


# --- decoding processes: each builds the model's modality readers once, from the manifest, and, given
# the model file's ONNX graph, its own inference session ---------------------------------------------
_WORKER_MODALITIES: dict[str, Modality] = {}
_WORKER_ENGINE: list[Any] = []  # [OnnxModel] in a worker that scores, else empty


def _init_worker(specs: list[tuple[str, str, dict[str, Any]]], graph: bytes | None = None,
                 model_path: str = "<model>") -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    reuse_freed_memory()
    _WORKER_MODALITIES.clear()
    _WORKER_MODALITIES.update({name: get_modality(kind, params) for name, kind, params in specs})
    _WORKER_ENGINE.clear()
    if graph is not None:
        from app.qmf.onnx_graph import OnnxModel

        _WORKER_ENGINE.append(OnnxModel(graph, list(_WORKER_MODALITIES),
                                        {n: m.input_shape for n, m in _WORKER_MODALITIES.items()}, model_path))


def _decode_chunk(files: list[dict[str, Any]]) -> list[Decoded]:
    """Each pair decoded on its own: (model inputs, error, seconds) per pair."""
    return [_timed_decode(_WORKER_MODALITIES, f) for f in files]


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
            outcome.append((_error_text(exc), time.perf_counter() - start))
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
    decoded = [_timed_decode(modalities, f) if err is None else (None, err, s)
               for f, (err, s) in zip(files, outcome, strict=True)]
    good = [d for d, _, _ in decoded if d is not None]
    arrays = {name: np.stack([d[name] for d in good]) for name in modalities} if good else {}
    return arrays, [(err, s) for _, err, s in decoded]


def _decode_batch(files: list[dict[str, Any]]) -> DecodedBatch:
    """`decode_batch` in a worker process, with the readers `_init_worker` built."""
    return decode_batch(_WORKER_MODALITIES, files)


def _score_batch(files: list[dict[str, Any]]) -> ScoredBatch:
    """`decode_batch`, then the model on the pairs that decoded, in a worker process that `_init_worker`
    gave the graph: only the outputs travel back (a few hundred bytes a pair instead of its inputs)."""
    arrays, outcome = decode_batch(_WORKER_MODALITIES, files)
    if not arrays:  # no pair of the batch decoded
        return ScoredBatch(outcome)
    start = time.perf_counter()
    try:
        numbers = _WORKER_ENGINE[0].run(arrays)
    except Exception as exc:  # noqa: BLE001 - a model failure is recorded on each pair of the batch
        return ScoredBatch(outcome, model_error=_error_text(exc))
    return ScoredBatch(outcome, numbers, time.perf_counter() - start)


def _graph_for_workers(predictor: Predictor) -> bytes | None:
    """The ONNX graph scoring workers run, when this predictor runs one (None: the model runs here)."""
    from app.qmf.onnx_graph import OnnxModel

    return predictor.bundle.graph if isinstance(predictor.engine, OnnxModel) else None


def _can_use_processes() -> bool:
    return not multiprocessing.current_process().daemon


def _ready() -> None:
    """A task that only makes a worker process start."""


def decoding_processes(predictor: Predictor, todo: int, processes: int | None = None) -> ProcessPoolExecutor | None:
    """The decoding processes of a run of ``todo`` pairs, or None where threads do it (a short run, a
    single CPU, a daemonic process, no process support); ``processes``: as BatchRunner's.

    They are started now: a caller with other work before the run (`qmf batch` storing a new
    session's pairs) lets them import and build their readers meanwhile, on the cores that work leaves
    idle, then hands the pool to ``BatchRunner(pool=...)``."""
    count = default_workers() if processes is None else max(0, int(processes))
    if count < 2 or todo < MIN_PAIRS_FOR_PROCESSES or not _can_use_processes():
        return None
    specs = [(name, m.kind, m.params) for name, m in predictor.modalities.items()]
    graph = _graph_for_workers(predictor)
    try:
        pool = ProcessPoolExecutor(max_workers=count, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker,
                                   initargs=(specs, graph, str(predictor.bundle.path or "<model>")))
    except (OSError, ValueError, NotImplementedError):  # no process support here: threads do it
        return None
    try:
        for _ in range(count):  # a spawn pool starts one process per task submitted while none is idle
            pool.submit(_ready)
    except OSError:  # a process could not be started (no memory, too many open files): threads do it
        pool.shutdown(wait=False, cancel_futures=True)
        return None
    return pool


class BatchRunner(RunControl):
    """Process the pending pairs of ``session`` with ``predictor``.

    Create it (and the session and predictor) on the thread that calls :meth:`run`; :meth:`pause`,
    :meth:`resume` and :meth:`cancel` may be called from any thread.
    """

    def __init__(
        self,
        predictor: Predictor,
        session: ReviewSession,
        batch_size: int = 64,
        workers: int | None = None,
        progress: Progress | None = None,
        prefetch: int | None = None,
        cancel_event: Any = None,
        running_event: Any = None,
        processes: int | None = None,
        pool: ProcessPoolExecutor | None = None,
    ):
        """``cancel_event``/``running_event``: optional Event-like objects (threading or multiprocessing)
        so another process can pause or cancel the run; fresh threading Events by default.
        ``workers``: decoding threads when threads are used; ``processes``: decoding processes for a long
        run (None: one per CPU, at most 8; 0 or 1: always threads). ``pool``: decoding processes started
        before (`decoding_processes`, with the same ``processes``); the run uses them and shuts them down
        at its end."""
        if batch_size < 1:
            raise ValueError("batch size must be at least 1")
        self.predictor = predictor
        self.session = session
        self.batch_size = batch_size
        self.workers = workers if workers and workers > 0 else default_workers()
        self._pool = pool
        self.processes = default_workers() if processes is None else max(0, int(processes))
        # batches decoded ahead: enough that the decoders never wait for the model (each is ~1.5 MB of inputs)
        self.prefetch = prefetch or max(4, 2 * max(self.workers, self.processes))
        self.progress = progress
        RunControl.__init__(self, cancel_event, running_event)
        self._delay = float(os.environ.get(_DELAY_ENV, "0") or 0)

    def _process_pool(self, todo: int) -> ProcessPoolExecutor | None:
        """A pool of decoding processes when the run is long enough to repay starting them."""
        if self._pool is not None:
            return self._pool
        return decoding_processes(self.predictor, todo, self.processes)

    # ------------------------------------------------------------------ run (owner thread)
    def _batches(self) -> Iterator[list[PendingPair]]:
        pending = self.session.iter_pending(page=max(256, self.batch_size))
        pairs = list(islice(pending, self.batch_size))
        # iter_pending reads a page at a time; materialise ahead so writes do not disturb the cursor
        while pairs:
            yield pairs
            pairs = list(islice(pending, self.batch_size))

    def run(self) -> RunStats:
        reuse_freed_memory()  # this process stacks every batch (and decodes them, with threads)
        session = self.session
        stats = RunStats(total=session.pair_count())
        already = session.result_count()
        todo = stats.total - already
        start = time.perf_counter()
        in_flight: deque[tuple[list[PendingPair], list[Future]]] = deque()
        batches = self._batches()
        unwritten: list[ResultRecord] = []
        last_write = -math.inf  # the first batch is written at once: its rows show while the run goes on

        def report() -> None:
            stats.seconds = time.perf_counter() - start
            stats.done = already + stats.processed
            if self.progress:
                rate = stats.rate
                left = (todo - stats.processed) / rate if rate > 0 else None
                self.progress(stats.done, stats.total, rate, left)

        def write() -> None:
            nonlocal last_write
            if unwritten:
                # thresholds read per write: the analyst may change them in the app while a run goes on
                session.write_results(unwritten, session.stored_thresholds())
                unwritten.clear()
            last_write = time.perf_counter()

        report()
        pool: Executor | None = self._process_pool(todo)
        if pool is not None:
            stats.processes = self.processes
            # each process decodes (and, with a graph, scores) whole batches, several in flight: one
            # message a batch and no stitching of slices in this process, whose CPU bounds the run's rate
            chunks = 1
            decode = _score_batch if _graph_for_workers(self.predictor) is not None else _decode_batch
        else:
            pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="qmf-decode")
            chunks, decode = self.workers, functools.partial(decode_batch, self.predictor.modalities)
        modalities = self.predictor.modalities

        def submit(batch: list[PendingPair]) -> list[Future]:
            size = -(-len(batch) // chunks)
            return [pool.submit(decode, [p.files for p in batch[i : i + size]]) for i in range(0, len(batch), size)]

        def results(futures: list[Future]) -> DecodedBatch | ScoredBatch:
            parts = [f.result() for f in futures]
            if len(parts) == 1:
                return parts[0]
            filled = [a for a, _ in parts if a]
            arrays = {name: np.concatenate([a[name] for a in filled]) for name in modalities} if filled else {}
            return arrays, [o for _, out in parts for o in out]

        try:
            while True:
                while len(in_flight) < self.prefetch and not self._cancel.is_set():
                    batch = next(batches, None)
                    if batch is None:
                        break
                    in_flight.append((batch, submit(batch)))
                if not in_flight or self._cancel.is_set():
                    break
                batch, futures = in_flight.popleft()
                unwritten.extend(self._process(batch, results(futures), stats))
                # One transaction (one fsync: the session is synchronous=FULL) per COMMIT_SECONDS of
                # results rather than per batch; a crash loses at most that much work, which a
                # resumed run redoes.
                if time.perf_counter() - last_write >= COMMIT_SECONDS or self._delay or not self._running.is_set():
                    write()
                report()
                if self._delay:
                    time.sleep(self._delay)
                while not self._running.is_set() and not self._cancel.is_set():
                    self._running.wait(0.1)
            write()
        finally:
            for _, futures in in_flight:
                for f in futures:
                    f.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
        stats.cancelled = self._cancel.is_set()
        report()
        return stats

    def _process(self, batch: list[PendingPair], decoded: DecodedBatch | ScoredBatch,
                 stats: RunStats) -> list[ResultRecord]:
        """The result records of one batch: decoded (the model runs here, on the pairs that decoded) or
        scored by a worker process (its outputs become predictions here)."""
        outcome = decoded.outcome if isinstance(decoded, ScoredBatch) else decoded[1]
        records: list[ResultRecord] = []
        good = [(p, d) for p, (err, d) in zip(batch, outcome, strict=True) if err is None]
        for p, (err, d) in zip(batch, outcome, strict=True):
            stats.decode_seconds += d
            if err is not None:
                records.append(ResultRecord(p.idx, p.label, error=err, decode_seconds=d))
        if good:
            t0 = time.perf_counter()
            try:
                files = [p.files for p, _ in good]
                if not isinstance(decoded, ScoredBatch):
                    preds = self.predictor.predict_batch(decoded[0], files)
                elif decoded.model_error is not None:
                    raise _WorkerModelError(decoded.model_error)
                else:
                    preds = self.predictor.predictions(decoded.numbers or {}, files,
                                                       decoded.model_seconds / len(good))
            except Exception as exc:  # noqa: BLE001 - a model failure is recorded on each pair, not fatal
                msg = f"model failed on this batch: {_error_text(exc)}"
                records.extend(ResultRecord(p.idx, p.label, error=msg, decode_seconds=d) for p, d in good)
            else:
                model_s = time.perf_counter() - t0
                if isinstance(decoded, ScoredBatch):
                    model_s += decoded.model_seconds
                stats.model_seconds += model_s
                for (p, d), pred in zip(good, preds, strict=True):
                    records.append(ResultRecord(p.idx, p.label, prediction=pred.to_json(), decode_seconds=d,
                                                predict_seconds=model_s / len(good)))
        stats.processed += len(records)
        stats.errors += sum(1 for r in records if r.error is not None)
        return records
