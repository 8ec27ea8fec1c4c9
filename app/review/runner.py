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
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np

from app.data.manifest import PairRow
from app.modalities.base import reuse_freed_memory
from app.qmf.predictor import Predictor
from app.review import decode_worker, worker_start
from app.review.control import RunControl
from app.review.decode_worker import DecodedBatch, ScoredBatch, decode_batch
from app.review.session import PendingPair, ResultRecord, ReviewSession

__all__ = ["BatchRunner", "DecodedBatch", "Progress", "RunStats", "ScoredBatch", "decode_batch", "decode_pair",
           "decoding_processes", "default_workers", "fork_is_safe", "start_decoding_processes", "submit_ahead"]

# Test hook: seconds to sleep after each batch, so a test can kill a run mid-way deterministically.
_DELAY_ENV = "QMF_REVIEW_BATCH_DELAY"
MIN_PAIRS_FOR_PROCESSES = 1000
COMMIT_SECONDS = 0.5  # results are written (one transaction) at least this often, and at the end
# Batches in flight per scoring process: a write of COMMIT_SECONDS of results (~2,000) takes this process
# ~0.1 s, in which it hands out no batch; with 2 a process (4 in all) each worker ran dry after ~30 ms of it.
# A scored batch is a few kB of outputs, so a deeper queue costs no memory to speak of.
SCORED_AHEAD = 8

Progress = Callable[[int, int, float, float | None], None]  # (done, total, pairs per second, seconds left)

# The worker side lives in app/review/decode_worker.py (a worker imports only it); the names it had here
_WorkerModelError = decode_worker.WorkerModelError
_error_text = decode_worker.error_text
_init_worker = decode_worker.init_worker
_decode_chunk = decode_worker.decode_chunk
_decode_batch = decode_worker.decode_in_worker
_score_batch = decode_worker.score_in_worker
_WORKER_MODALITIES = decode_worker.WORKER_MODALITIES
_WORKER_ENGINE = decode_worker.WORKER_ENGINE


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


def decode_pair(predictor: Predictor, files: dict[str, Any], open_uri: Any = None) -> dict[str, np.ndarray]:
    """Files -> one model input per modality (what the model needs, minus batching).

    Uses only the predictor's modality readers, which hold no mutable state, so it is safe to call
    from several threads at once while another thread runs the model. ``open_uri`` opens URI files
    (`load_pair`; the Ray engine's `app.review.uris.UriOpener`).
    """
    return decode_worker.decode(predictor.modalities, files, open_uri)


def _graph_for_workers(predictor: Predictor) -> bytes | None:
    """The ONNX graph scoring workers run, when this predictor runs one (None: the model runs here)."""
    from app.qmf.onnx_graph import OnnxModel

    return predictor.bundle.graph if isinstance(predictor.engine, OnnxModel) else None


def _can_use_processes() -> bool:
    return not multiprocessing.current_process().daemon


_NOT_FORKED = ("onnxruntime", "torch", "PySide6", "shiboken6", "pyarrow", "ray")  # a process with these loaded


def fork_is_safe() -> bool:
    """Whether this process may start its workers by `fork` (no interpreter start, no re-import of what
    it has loaded): only on Linux (macOS's system libraries are not fork-safe), and only while it runs no
    other thread (the OS's count: a native library's too) and has loaded none of ``_NOT_FORKED``
    (onnxruntime, torch, Qt, pyarrow: thread pools and locks would be copied in whatever state they are
    in). `qmf batch` asks before it loads the model."""
    import sys

    if not sys.platform.startswith("linux") or any(name in sys.modules for name in _NOT_FORKED):
        return False
    try:
        return len(os.listdir("/proc/self/task")) == 1  # the OS's threads, those of native libraries included
    except OSError:
        return False


def start_decoding_processes(specs: list[tuple[str, str, dict[str, Any]]], graph: bytes | None,
                             model_path: str, processes: int | None = None,
                             method: str = "spawn") -> ProcessPoolExecutor | None:
    """``processes`` decoding processes (None: one per CPU, at most 8), started now, each with the
    readers of ``specs`` and, given ``graph``, its own onnxruntime session; None where threads must do
    it (fewer than 2, a daemonic process, no process support). ``method``: "spawn", or "fork" where
    `fork_is_safe` said so (then the graph is not pickled to each child: they inherit it)."""
    count = default_workers() if processes is None else max(0, int(processes))
    if count < 2 or not _can_use_processes():
        return None
    try:
        pool = ProcessPoolExecutor(max_workers=count, mp_context=multiprocessing.get_context(method),
                                   initializer=worker_start.init_worker,
                                   initargs=(specs, graph, model_path, os.getpid()))
    except (OSError, ValueError, NotImplementedError):  # no process support here: threads do it
        return None
    try:
        for _ in range(count):  # a spawn pool starts one process per task submitted while none is idle
            pool.submit(decode_worker.ready)
    except OSError:  # a process could not be started (no memory, too many open files): threads do it
        pool.shutdown(wait=False, cancel_futures=True)
        return None
    return pool


def decoding_processes(predictor: Predictor, todo: int, processes: int | None = None) -> ProcessPoolExecutor | None:
    """The decoding processes of a run of ``todo`` pairs, or None where threads do it (a short run, a
    single CPU, a daemonic process, no process support); ``processes``: as BatchRunner's.

    They are started now (spawned: this process may run threads and onnxruntime): a caller with other
    work before the run lets them import and build their readers meanwhile, on the cores that work
    leaves idle, then hands the pool to ``BatchRunner(pool=...)``."""
    if todo < MIN_PAIRS_FOR_PROCESSES:
        return None
    specs = [(name, m.kind, m.params) for name, m in predictor.modalities.items()]
    return start_decoding_processes(specs, _graph_for_workers(predictor), str(predictor.bundle.path or "<model>"),
                                    processes)


def _pool_task(predictor: Predictor) -> Callable[[list[dict[str, Any]]], DecodedBatch | ScoredBatch]:
    """What a decoding process does with a batch's files for this predictor: decode and score them
    (the model file's ONNX graph) or only decode them (the model runs here)."""
    return _score_batch if _graph_for_workers(predictor) is not None else _decode_batch


Ahead = list[tuple[list[PendingPair], list[Future]]]  # batches handed to the pool before the run, in order
AHEAD_PAIRS = 1024  # pairs a new session's workers may score before its run (their outputs: ~0.5 kB a pair)


def submit_ahead(pool: ProcessPoolExecutor, predictor: Predictor, pairs: Sequence[PairRow], batch_size: int) -> Ahead:
    """The first batches of a new session's ``pairs`` (as `ReviewSession.add_pairs` will store them, from
    index 0), handed to ``pool`` now, before they are stored, so its workers decode and score while this
    process fills the session; ``BatchRunner(ahead=...)`` takes each whose pairs are the pending pairs it
    reads from the session (the same indexes, ids, files and labels) and drops any other. At most
    ``AHEAD_PAIRS`` pairs, or 4 batches where the workers only decode (their inputs are ~1.5 MB a batch)."""
    task = _pool_task(predictor)
    count = AHEAD_PAIRS if task is _score_batch else 4 * batch_size
    out: Ahead = []
    for start in range(0, min(count, len(pairs)), batch_size):
        batch = [PendingPair(start + i, p.id, {k: str(v) for k, v in p.files.items()}, p.label)
                 for i, p in enumerate(pairs[start : start + batch_size])]
        out.append((batch, [pool.submit(task, [q.files for q in batch])]))
    return out


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
        ahead: Ahead | None = None,
    ):
        """``cancel_event``/``running_event``: optional Event-like objects (threading or multiprocessing)
        so another process can pause or cancel the run; fresh threading Events by default.
        ``workers``: decoding threads when threads are used; ``processes``: decoding processes for a long
        run (None: one per CPU, at most 8; 0 or 1: always threads). ``pool``: decoding processes started
        before (`decoding_processes`, with the same ``processes``); the run uses them and shuts them down
        at its end. ``ahead``: batches already handed to that pool (`submit_ahead`); a batch the run
        reads from the session takes the first of them when its pairs are equal, else they are dropped."""
        if batch_size < 1:
            raise ValueError("batch size must be at least 1")
        self.predictor = predictor
        self.session = session
        self.batch_size = batch_size
        self.workers = workers if workers and workers > 0 else default_workers()
        self._pool = pool
        self._ahead = deque(ahead or []) if pool is not None else deque()
        self.processes = default_workers() if processes is None else max(0, int(processes))
        # batches decoded ahead: enough that the decoders never wait for the model (each is ~1.5 MB of inputs)
        # or, with scoring processes, for this process's write (`SCORED_AHEAD`); None: chosen by `run`
        self.prefetch = prefetch
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
            decode = _pool_task(self.predictor)
        else:
            pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="qmf-decode")
            chunks, decode = self.workers, functools.partial(decode_batch, self.predictor.modalities)
        modalities = self.predictor.modalities
        prefetch = self.prefetch or max(4, 2 * max(self.workers, self.processes),
                                        SCORED_AHEAD * stats.processes if decode is _score_batch else 0)

        ahead = self._ahead

        def submit(batch: list[PendingPair]) -> list[Future]:
            if ahead:
                early, futures = ahead.popleft()
                if early == batch:  # the pairs the session holds, handed to the workers before the run
                    return futures
                for _, dropped in [(early, futures), *ahead]:  # not these pairs: none of those batches is used
                    for f in dropped:
                        f.cancel()
                ahead.clear()
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
                while len(in_flight) < prefetch and not self._cancel.is_set():
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
            for _, futures in [*in_flight, *ahead]:
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
