"""Run a model over every pending pair of a review session, with bounded memory.

The pipeline: a thread pool decodes files into model tensors (Pillow, soundfile, soxr and torch's
STFT release the GIL, so decoding really runs in parallel) a few batches ahead, while the calling
thread runs the model on one batch at a time and writes that batch's results in one transaction.
At most ``prefetch`` batches are in flight, so memory does not grow with the number of pairs.

Between batches the runner honours pause and cancel; a file that cannot be read becomes an error row
naming the file and the run goes on. The runner never touches Qt: the app wraps it in a QThread, the
CLI calls it directly.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import Any

import torch

from app.qmf.predictor import Predictor
from app.review.control import RunControl
from app.review.session import PendingPair, ResultRecord, ReviewSession

__all__ = ["BatchRunner", "Progress", "RunStats", "decode_pair", "default_workers"]

# Test hook: seconds to sleep after each batch, so a test can kill a run mid-way deterministically.
_DELAY_ENV = "QMF_REVIEW_BATCH_DELAY"

Progress = Callable[[int, int, float, float | None], None]  # (done, total, pairs per second, seconds left)


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

    @property
    def rate(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0


def _error_text(exc: BaseException) -> str:
    from app.modalities import InputError

    if isinstance(exc, InputError):
        return str(exc)
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def decode_pair(predictor: Predictor, files: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Files -> one model tensor per modality (what the model needs, minus batching).

    Uses only the predictor's modality readers, which hold no mutable state, so it is safe to call
    from several threads at once while another thread runs the model.
    """
    raw = predictor.load_inputs(files)
    return {name: m.to_tensor(raw[name]) for name, m in predictor.modalities.items()}


def _timed_decode(predictor: Predictor, pair: PendingPair) -> tuple[dict[str, torch.Tensor] | None, str | None, float]:
    start = time.perf_counter()
    try:
        tensors = decode_pair(predictor, pair.files)
        return tensors, None, time.perf_counter() - start
    except Exception as exc:  # noqa: BLE001 - any failure of one file becomes that pair's error row
        return None, _error_text(exc), time.perf_counter() - start


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
    ):
        """``cancel_event``/``running_event``: optional Event-like objects (threading or multiprocessing)
        so another process can pause or cancel the run; fresh threading Events by default."""
        if batch_size < 1:
            raise ValueError("batch size must be at least 1")
        self.predictor = predictor
        self.session = session
        self.batch_size = batch_size
        self.workers = workers if workers and workers > 0 else default_workers()
        self.prefetch = prefetch or max(2, self.workers)
        self.progress = progress
        RunControl.__init__(self, cancel_event, running_event)
        self._delay = float(os.environ.get(_DELAY_ENV, "0") or 0)

    # ------------------------------------------------------------------ run (owner thread)
    def _batches(self) -> Iterator[list[PendingPair]]:
        pending = self.session.iter_pending(page=max(256, self.batch_size))
        pairs = list(islice(pending, self.batch_size))
        # iter_pending reads a page at a time; materialise ahead so writes do not disturb the cursor
        while pairs:
            yield pairs
            pairs = list(islice(pending, self.batch_size))

    def run(self) -> RunStats:
        session = self.session
        stats = RunStats(total=session.pair_count())
        already = session.result_count()
        todo = stats.total - already
        start = time.perf_counter()
        in_flight: deque[tuple[list[PendingPair], list[Future]]] = deque()
        batches = self._batches()

        def report() -> None:
            stats.seconds = time.perf_counter() - start
            stats.done = already + stats.processed
            if self.progress:
                rate = stats.rate
                left = (todo - stats.processed) / rate if rate > 0 else None
                self.progress(stats.done, stats.total, rate, left)

        report()
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="qmf-decode") as pool:
            try:
                while True:
                    while len(in_flight) < self.prefetch and not self._cancel.is_set():
                        batch = next(batches, None)
                        if batch is None:
                            break
                        in_flight.append((batch, [pool.submit(_timed_decode, self.predictor, p) for p in batch]))
                    if not in_flight or self._cancel.is_set():
                        break
                    batch, futures = in_flight.popleft()
                    # read per batch: the analyst may change thresholds in the app while a run goes on
                    self._process(batch, [f.result() for f in futures], session.stored_thresholds(), stats)
                    report()
                    if self._delay:
                        time.sleep(self._delay)
                    while not self._running.is_set() and not self._cancel.is_set():
                        self._running.wait(0.1)
            finally:
                for _, futures in in_flight:
                    for f in futures:
                        f.cancel()
        stats.cancelled = self._cancel.is_set()
        report()
        return stats

    def _process(self, batch: list[PendingPair], decoded: list[tuple[Any, str | None, float]], thresholds: Any,
                 stats: RunStats) -> None:
        records: list[ResultRecord] = []
        good = [(p, t, d) for p, (t, err, d) in zip(batch, decoded, strict=True) if err is None]
        for p, (_, err, d) in zip(batch, decoded, strict=True):
            stats.decode_seconds += d
            if err is not None:
                records.append(ResultRecord(p.idx, p.label, error=err, decode_seconds=d))
        if good:
            t0 = time.perf_counter()
            try:
                preds = self.predictor.predict_from_tensors([t for _, t, _ in good], [p.files for p, _, _ in good])
            except Exception as exc:  # noqa: BLE001 - a model failure is recorded on each pair, not fatal
                msg = f"model failed on this batch: {_error_text(exc)}"
                records.extend(ResultRecord(p.idx, p.label, error=msg, decode_seconds=d) for p, _, d in good)
            else:
                model_s = time.perf_counter() - t0
                stats.model_seconds += model_s
                for (p, _, d), pred in zip(good, preds, strict=True):
                    records.append(ResultRecord(p.idx, p.label, prediction=pred.to_json(), decode_seconds=d,
                                                predict_seconds=model_s / len(good)))
        self.session.write_results(records, thresholds)
        stats.processed += len(records)
        stats.errors += sum(1 for r in records if r.error is not None)
