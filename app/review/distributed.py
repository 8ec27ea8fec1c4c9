"""`qmf batch --engine ray`: the same review, scored on a Ray cluster, written as Parquet shards.

Why Ray Data and no scheduler of our own: teams that audit millions of pairs already run an engine;
Ray Data gives the actor pool, backpressure, retries and progress. What stays ours is what must be
the same as a local ``qmf batch``: the pair list (read on the driver by ``load_source``, the same
reader, so ids, labels and paths follow the same rules), the decoding (``decode_pair``, the model's
own readers) and the row values (``app.review.parquet.result_row``).

The pipeline: the driver splits the pair list into shards of contiguous rows (``shard-K`` always
holds rows K·S … K·S+S−1) and skips those already in the results directory; ``ray.data.from_items``
of the missing shards goes through ``map_batches`` with :class:`ShardScorer`, a stateful class that
loads the bundle once per actor (its bytes come through the object store, so workers need no shared
model path) and scores one shard per call in model batches of ``batch_size``; the driver writes each
shard it gets back atomically. A file that cannot be read is an error row, never a failed job.

Ray and pyarrow are optional (``pip install qmf-studio[distributed]``) and imported only here, lazily.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.review.flags import FlagThresholds
from app.review.parquet import (
    INSTALL_HINT,
    RESULTS_SCHEMA_VERSION,
    MissingExtraError,
    arrow_schema,
    require_pyarrow,
    result_row,
    results_table,
    table_bytes,
    write_bytes_atomically,
)
from app.review.results_dir import (
    done_shards,
    pairs_fingerprint,
    prepare_results_dir,
    shard_count,
    shard_path,
)
from app.util.errors import UserError

__all__ = ["DEFAULT_SHARD_SIZE", "RayRunStats", "ShardScorer", "require_ray", "run_info", "run_on_ray", "score_pairs",
           "score_shard", "shard_metadata"]

DEFAULT_SHARD_SIZE = 1000

ShardDone = Callable[[int, int, int], None]  # (shard, rows, errors) after the shard's file is written


def require_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401 - the Data library is the part this engine needs
    except ImportError:
        raise MissingExtraError(f"--engine ray needs Ray and pyarrow, which are not installed: {INSTALL_HINT}") from None
    require_pyarrow("--engine ray")
    return ray


@dataclass
class RayRunStats:
    pairs: int = 0               # in the pair list
    shards: int = 0              # in the whole run
    shards_before: int = 0       # already written when this run started (skipped)
    shards_written: int = 0      # by this run
    rows_written: int = 0
    errors: int = 0
    startup_seconds: float = 0.0  # connecting to / starting Ray
    seconds: float = 0.0          # from submitting the dataset to the last shard written
    decode_seconds: float = 0.0   # summed over workers
    predict_seconds: float = 0.0
    cpu_seconds: float = 0.0      # the workers' process CPU time for their shards: rows / this is the
                                  # per-core rate, true even on a machine shared with other work
    unmatched: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.rows_written / self.seconds if self.seconds > 0 else 0.0


def score_pairs(predictor: Any, pairs: Sequence[tuple[str, Mapping[str, str], str | None]], batch_size: int,
                thresholds: FlagThresholds, open_uri: Any = None) -> list[dict[str, Any]]:
    """Result rows for ``pairs`` (id, files, label), in order: decode each pair with the model's readers,
    predict the readable ones in batches, an unreadable pair becomes an error row (as ``BatchRunner``).
    ``open_uri`` (a `UriOpener`'s ``open``) reads files named by URI (s3://, gs://, file://)."""
    from app.review.runner import _error_text, decode_pair

    names = list(predictor.modalities)
    rows: list[dict[str, Any]] = []
    for at in range(0, len(pairs), batch_size):
        chunk = pairs[at:at + batch_size]
        out: list[dict[str, Any] | None] = [None] * len(chunk)
        good = []
        for i, (pid, files, label) in enumerate(chunk):
            t0 = time.perf_counter()
            try:
                tensors = decode_pair(predictor, files, open_uri)
            except Exception as exc:  # noqa: BLE001 - one unreadable file is that pair's error row
                out[i] = result_row(pid, files, label, names, error=_error_text(exc),
                                    decode_seconds=time.perf_counter() - t0, thresholds=thresholds)
            else:
                good.append((i, tensors, time.perf_counter() - t0))
        if good:
            t0 = time.perf_counter()
            try:
                preds = predictor.predict_from_arrays([t for _, t, _ in good], [chunk[i][1] for i, _, _ in good])
            except Exception as exc:  # noqa: BLE001 - a model failure is recorded on each pair, not fatal
                msg = f"model failed on this batch: {_error_text(exc)}"
                for i, _, d in good:
                    pid, files, label = chunk[i]
                    out[i] = result_row(pid, files, label, names, error=msg, decode_seconds=d, thresholds=thresholds)
            else:
                each = (time.perf_counter() - t0) / len(good)
                for (i, _, d), pred in zip(good, preds, strict=True):
                    pid, files, label = chunk[i]
                    out[i] = result_row(pid, files, label, names, prediction=pred.to_json(), decode_seconds=d,
                                        predict_seconds=each, thresholds=thresholds)
        rows.extend(r for r in out if r is not None)
    return rows


def score_shard(predictor: Any, shard: int, first_row: int, pairs: Sequence[tuple[str, Mapping[str, str], str | None]],
                batch_size: int, thresholds: FlagThresholds, metadata: Mapping[str, Any],
                open_uri: Any = None) -> tuple[bytes, list[dict[str, Any]]]:
    """One shard's Parquet file (bytes, results schema without verdicts) and its rows."""
    rows = score_pairs(predictor, pairs, batch_size, thresholds, open_uri)
    schema = arrow_schema(list(predictor.modalities), verdicts=False,
                          metadata={**metadata, "qmf.shard": shard, "qmf.first_row": first_row})
    return table_bytes(results_table(rows, schema)), rows


def run_info(predictor: Any, model_file: Path, source: Any, pairs: Sequence[Any], thresholds: FlagThresholds,
             shard_size: int) -> dict[str, Any]:
    """The run file (``_qmf_run.json``) of a results folder for these pairs: what a re-run must match."""
    kinds = {name: m.kind for name, m in predictor.modalities.items()}
    return {
        "format": "qmf-results", "results_schema_version": RESULTS_SCHEMA_VERSION, "created": time.time(),
        "model": {"name": predictor.name, "sha256": predictor.sha256, "path": str(model_file.absolute())},
        "modalities": kinds, "labels": predictor.labels,
        "manifest_modalities": predictor.manifest["model"]["modalities"],
        "source": {"kind": source.kind, "path": str(source.path)},
        "thresholds": thresholds.to_dict(), "pairs": len(pairs), "pairs_sha256": pairs_fingerprint(pairs, list(kinds)),
        "shard_size": shard_size, "shards": shard_count(len(pairs), shard_size),
        "unmatched": [[str(p), r] for p, r in source.unmatched],
    }


def shard_metadata(predictor: Any) -> dict[str, Any]:
    """The key-value metadata every shard of this model carries (besides its shard number and first row)."""
    return {"qmf.model.name": predictor.name, "qmf.model.sha256": predictor.sha256, "qmf.labels": predictor.labels}


class ShardScorer:
    """The Ray Data actor: loads the model once, then scores one shard per call into Parquet bytes."""

    def __init__(self, model: Any, model_sha256: str, batch_size: int, thresholds: dict[str, Any],
                 metadata: dict[str, Any]):
        if not isinstance(model, bytes | bytearray):
            import ray

            model = ray.get(model)
        from app.qmf.predictor import Predictor

        # the model file lives as long as the actor (a backend may read it lazily)
        self._model_dir = tempfile.TemporaryDirectory(prefix="qmf-model-")
        path = Path(self._model_dir.name) / "model.safetensors"
        path.write_bytes(model)
        self.predictor = Predictor.load(path)
        if self.predictor.backend == "torch":
            import torch

            torch.set_num_threads(1)  # Ray gives each actor one CPU; more threads would fight the other actors
        if self.predictor.sha256 != model_sha256:
            raise RuntimeError(f"the model reached this worker damaged (sha256 {self.predictor.sha256[:12]}, "
                               f"expected {model_sha256[:12]})")
        self.batch_size = batch_size
        self.thresholds = FlagThresholds.from_dict(thresholds)
        self.metadata = metadata
        from app.review.uris import UriOpener

        self.uris = UriOpener()  # input files named s3://, gs://, file:// (one client per bucket and actor)

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        import numpy as np

        out: dict[str, list[Any]] = {k: [] for k in ("shard", "parquet", "rows", "errors", "decode_seconds",
                                                    "predict_seconds", "cpu_seconds")}
        for shard, first, pairs_json in zip(batch["shard"], batch["first_row"], batch["pairs"], strict=True):
            cpu = time.process_time()
            pairs = [(pid, files, label) for pid, files, label in json.loads(pairs_json)]
            data, rows = score_shard(self.predictor, int(shard), int(first), pairs, self.batch_size,
                                     self.thresholds, self.metadata, self.uris.open)
            out["shard"].append(int(shard))
            out["parquet"].append(data)
            out["rows"].append(len(rows))
            out["errors"].append(sum(1 for r in rows if r["status"] == "error"))
            out["decode_seconds"].append(sum(r["decode_seconds"] for r in rows))
            out["predict_seconds"].append(sum(r["predict_seconds"] for r in rows))
            out["cpu_seconds"].append(time.process_time() - cpu)
        result = {k: np.asarray(v) for k, v in out.items() if k != "parquet"}
        result["parquet"] = np.asarray(out["parquet"], dtype=object)
        return result


def _connect(ray: Any, address: str | None) -> float:
    """Join the cluster at ``address`` (None: start a local Ray); seconds it took. Reuses an existing connection."""
    if ray.is_initialized():
        return 0.0
    t0 = time.perf_counter()
    try:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError ...: one line for the user
        where = address or "a local Ray instance"
        raise UserError(f"cannot start or reach Ray at {where}: {str(exc).splitlines()[0] if str(exc) else exc}") from None
    return time.perf_counter() - t0


def run_on_ray(
    source_path: str | os.PathLike[str],
    results_dir: str | os.PathLike[str],
    model_path: str | os.PathLike[str] | None = None,
    *,
    address: str | None = None,
    batch_size: int = 64,
    concurrency: int | None = None,
    shard_size: int | None = None,
    thresholds: FlagThresholds | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_shard: ShardDone | None = None,
    show_ray_progress: bool = False,
) -> RayRunStats:
    """Score every pair of ``source_path`` (folder, manifest .csv or .parquet) into ``results_dir``.

    Resumable: shards already in ``results_dir`` are skipped. ``progress(done_pairs, total_pairs)``
    and ``on_shard`` are called on the driver after each shard is written.
    """
    ray = require_ray()
    from app.qmf.bundle import default_model_path
    from app.qmf.predictor import Predictor
    from app.review.sources import load_source

    if batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    if concurrency is not None and concurrency < 1:
        raise UserError("--concurrency must be at least 1")
    if shard_size is not None and shard_size < 1:
        raise UserError("--shard-size must be at least 1")
    model_file = Path(model_path) if model_path else default_model_path()
    predictor = Predictor.load(model_file)  # validates the file before any cluster work
    kinds = {name: m.kind for name, m in predictor.modalities.items()}
    source = load_source(source_path, kinds, predictor.labels, uris=True)  # files may be s3://, gs://, file://
    pairs = list(source.pairs)  # a manifest's pairs stream from the file; shards need positions (and len)
    th = thresholds or FlagThresholds()
    if shard_size is None:  # a resumed run keeps the first run's shards; a new one takes the default
        from app.review.results_dir import RUN_FILE, read_run_info

        existing = Path(results_dir).expanduser() / RUN_FILE
        shard_size = int(read_run_info(results_dir)["shard_size"]) if existing.is_file() else DEFAULT_SHARD_SIZE
    info = prepare_results_dir(results_dir, run_info(predictor, model_file, source, pairs, th, shard_size))
    size = int(info["shard_size"])
    if thresholds is not None and info["thresholds"] != th.to_dict():
        raise UserError(f"{results_dir}: flagged with thresholds {info['thresholds']}; a re-run keeps them "
                         "(change them after the import, in the session)")
    th = FlagThresholds.from_dict(info["thresholds"])
    out_dir = Path(results_dir).expanduser().absolute()
    n_shards = shard_count(len(pairs), size)
    already, damaged = _whole_shards(out_dir, done_shards(out_dir) & set(range(n_shards)), size, len(pairs))
    stats = RayRunStats(pairs=len(pairs), shards=n_shards, shards_before=len(already),
                        unmatched=[(str(p), r) for p, r in source.unmatched], problems=list(source.problems),
                        notes=list(source.notes))
    if damaged:
        stats.notes.append(f"{len(damaged)} damaged shard file(s) set aside as .shard-K.parquet.damaged and "
                           f"scored again: {', '.join(shard_path(out_dir, k).name for k in damaged[:5])}")
    for stale in out_dir.glob(".shard-*.tmp"):  # left by a killed run; never read, removed for tidiness
        stale.unlink(missing_ok=True)
    todo = [k for k in range(n_shards) if k not in already]
    done_pairs = sum(min(size, len(pairs) - k * size) for k in already)
    if progress:
        progress(done_pairs, len(pairs))
    if not todo:
        return stats

    stats.startup_seconds = _connect(ray, address)
    import ray.data

    # our own bar counts pairs on the driver; Ray's (per operator, in blocks) is there on request
    logging.getLogger("ray.data").setLevel(logging.INFO if show_ray_progress else logging.ERROR)
    ray.data.DataContext.get_current().enable_progress_bars = show_ray_progress
    workers = concurrency or max(1, int(ray.cluster_resources().get("CPU", 1)))
    workers = min(workers, len(todo))
    items = [{"shard": k, "first_row": k * size,
              "pairs": json.dumps([[p.id, {m: str(f) for m, f in p.files.items()}, p.label]
                                   for p in pairs[k * size:(k + 1) * size]])}
             for k in todo]
    meta = shard_metadata(predictor)
    t0 = time.perf_counter()
    ds = ray.data.from_items(items).map_batches(
        ShardScorer, batch_size=1, compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1,
        fn_constructor_kwargs={"model": ray.put(model_file.read_bytes()), "model_sha256": predictor.sha256,
                               "batch_size": batch_size, "thresholds": th.to_dict(), "metadata": meta},
    )
    rows = ds.iter_rows()
    try:
        _collect(rows, out_dir, stats, t0, done_pairs, len(pairs), progress, on_shard)
    finally:
        close = getattr(rows, "close", None)
        if close is not None:  # stop the pipeline now (an interrupted driver frees the actors at once)
            close()
    stats.seconds = time.perf_counter() - t0
    return stats


def _whole_shards(out_dir: Path, found: set[int], size: int, pairs: int) -> tuple[set[int], list[int]]:
    """The shards of a resumed run that are whole: each file's Parquet footer read, and its row count
    the shard's. Our writer commits a shard by rename after fsync, so a half-written file under the
    real name means outside damage (a disk fault, a copy cut short); it is renamed aside (hidden, so no
    dataset reader sees it) and scored again rather than trusted or deleted. Returns (whole, damaged)."""
    _, pq = require_pyarrow("--engine ray")
    whole, damaged = set(), []
    for k in sorted(found):
        path = shard_path(out_dir, k)
        try:
            rows = pq.read_metadata(path).num_rows
        except (OSError, ValueError):
            rows = -1
        if rows == min(size, pairs - k * size):
            whole.add(k)
        else:
            os.replace(path, path.with_name(f".{path.name}.damaged"))
            damaged.append(k)
    return whole, damaged


def _collect(rows: Any, out_dir: Path, stats: RayRunStats, t0: float, done_pairs: int, total: int,
             progress: Callable[[int, int], None] | None, on_shard: ShardDone | None) -> None:
    """Write each shard the workers hand back, as it arrives."""
    for rec in rows:
        k = int(rec["shard"])
        write_bytes_atomically(shard_path(out_dir, k), bytes(rec["parquet"]))
        stats.shards_written += 1
        stats.rows_written += int(rec["rows"])
        stats.errors += int(rec["errors"])
        stats.decode_seconds += float(rec["decode_seconds"])
        stats.predict_seconds += float(rec["predict_seconds"])
        stats.cpu_seconds += float(rec["cpu_seconds"])
        stats.seconds = time.perf_counter() - t0
        done_pairs += int(rec["rows"])
        if progress:
            progress(done_pairs, total)
        if on_shard:
            on_shard(k, int(rec["rows"]), int(rec["errors"]))
