"""Benchmark `qmf batch --engine ray` against the local engine, and a million-row imported session.

    .venv/bin/python benchmarks/ray_bench.py                       # 10,000 pairs, then a 1,000,000-row session
    .venv/bin/python benchmarks/ray_bench.py --pairs 2000 --session-rows 0

Prints, from one process and the same files (each figure next to its peer):
  * decoding-only pairs/s   files -> model tensors (decode_pair), on 1 thread and on --workers threads;
                            and on 1 thread through file:// URIs (app.review.uris: pyarrow.fs, what s3://
                            and gs:// inputs go through), next to the same pairs by path
  * local pairs/s           BatchRunner (what `qmf batch --workers N` runs) into a fresh session
  * ray pairs/s             run_on_ray with --workers actors on a local Ray (ray.init(num_cpus=N)):
                            the whole run, and the steady rate once the actors are up (shards
                            written between the first and the last round of arrivals)
  * Ray's fixed cost        ray.init, and a one-shard run (actor start + model load + one shard)
  * per-core rate           the steady Ray rate / actors, and pairs per CPU second of an actor (its
                            process CPU time): the figure docs/distributed.md scales from, because
                            it holds on a machine shared with other work, where wall-clock rates do not
Then, with --session-rows R: R generated result rows written as shards, `qmf review import` of them,
and the Review view's queries on the imported session (open, count, first page, sorts, a filter,
the flag menu, the summary), each timed once.

Pairs: 28x28 PNG + 1 s 8 kHz WAV (benchmarks/review_bench.py's generator). Model: the bundled one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from benchmarks.review_bench import generate, pick_model, pool_rate  # noqa: E402


def engines(args: argparse.Namespace, tmp: Path) -> None:
    import logging

    import ray

    from app.qmf.predictor import Predictor
    from app.review.distributed import run_on_ray
    from app.review.runner import BatchRunner, decode_pair
    from app.review.sources import load_source
    from app.review.uris import UriOpener
    from app.review.workflow import prepare_session

    model = pick_model(tmp, args.model)
    predictor = Predictor.load(model)
    folder = tmp / "pairs"
    t0 = time.perf_counter()
    generate(folder, args.pairs, predictor.labels[:3], workers=2)
    print(f"generated {args.pairs} pairs in {time.perf_counter() - t0:.1f} s; model {predictor.name} "
          f"({predictor.backend}); CPUs {os.cpu_count()}, workers {args.workers}, load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    files = [p.files for p in load_source(folder, {n: m.kind for n, m in predictor.modalities.items()}).pairs]
    decode_pair(predictor, files[0])
    cpu = time.process_time()  # one thread, as in a Ray actor (onnxruntime and numpy run one thread each)
    decode_1 = pool_rate(lambda f: decode_pair(predictor, f), files, 1)
    decode_cpu = len(files) / (time.process_time() - cpu)
    decode_n = pool_rate(lambda f: decode_pair(predictor, f), files, args.workers)
    some = files[:2000]
    opener = UriOpener()
    as_uris = [{m: Path(f).as_uri() for m, f in pair.items()} for pair in some]
    by_path = pool_rate(lambda f: decode_pair(predictor, f), some, 1)
    by_uri = pool_rate(lambda f: decode_pair(predictor, f, opener.open), as_uris, 1)

    prepared = prepare_session(tmp / "local.qmfreview", predictor, folder, model)
    with prepared.session as session:
        start = time.perf_counter()
        BatchRunner(predictor, session, batch_size=64, workers=args.workers).run()
        local_rate = args.pairs / (time.perf_counter() - start)

    t0 = time.perf_counter()
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    init_s = time.perf_counter() - t0
    small = tmp / "one-shard"
    small.mkdir()
    generate(small, 100, predictor.labels[:3], workers=2)
    t0 = time.perf_counter()
    run_on_ray(small, tmp / "one-shard-results", model, shard_size=100, concurrency=args.workers)
    fixed_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    arrivals: list[float] = []
    stats = run_on_ray(folder, tmp / "results", model, shard_size=args.shard_size, concurrency=args.workers,
                       on_shard=lambda *_: arrivals.append(time.perf_counter()))
    total_s = time.perf_counter() - t0
    ray_rate = args.pairs / total_s
    # shards come back about `workers` at a time; between the first and the last arrival the actors
    # scored all shards but the first round: the rate with the actors up, start-up excluded
    rounds_after = len(arrivals) - args.workers
    steady = rounds_after * args.shard_size / (arrivals[-1] - arrivals[0]) if rounds_after > 0 else float("nan")
    busy = stats.rows_written / (stats.decode_seconds + stats.predict_seconds)
    shard_bytes = sum(p.stat().st_size for p in (tmp / "results").glob("shard-*.parquet"))
    per_cpu = stats.rows_written / stats.cpu_seconds
    ray.shutdown()

    print()
    print(f"decoding-only  {decode_1:9.1f} pairs/s on 1 thread, {decode_n:.1f} on {args.workers} threads")
    print(f"decoding URIs  {by_uri:9.1f} pairs/s on 1 thread through file:// (pyarrow.fs), {by_path:.1f} by path "
          f"(the same {len(some)} pairs) = {by_uri / by_path:.2f} x")
    print(f"local          {local_rate:9.1f} pairs/s  (BatchRunner, --workers {args.workers}) "
          f"= {local_rate / decode_n:.2f} x decoding-only on {args.workers} threads")
    print(f"ray            {ray_rate:9.1f} pairs/s  whole run ({total_s:.1f} s, {stats.errors} errors, "
          f"{args.workers} actors, shards of {args.shard_size}) = {ray_rate / local_rate:.2f} x local")
    print(f"ray steady     {steady:9.1f} pairs/s  after the first shard = {steady / local_rate:.2f} x local, "
          f"{steady / decode_n:.2f} x decoding-only")
    print(f"per core       {steady / args.workers:9.1f} pairs/s  (ray steady / actors; decoding-only on 1 thread "
          f"{decode_1:.1f}; an actor's own decode+predict wall time gives {busy:.1f})")
    print(f"per CPU second {per_cpu:9.1f} pairs    (an actor's CPU time: decode + model + Parquet; decoding-only "
          f"{decode_cpu:.1f}) - the rate of one uncontended core")
    print(f"results        {shard_bytes / args.pairs:9.0f} bytes a pair in Parquet shards (what the driver receives "
          f"and writes)")
    print(f"Ray fixed cost {init_s:9.1f} s ray.init (once per driver) + {fixed_s:.1f} s for a 100-pair, one-shard "
          f"run (actor start, model load, one shard)")
    cores = 10 * 8 - 1  # one core of the head node left to the driver, the GCS and the raylet
    print(f"on paper       {cores * per_cpu:9.0f} pairs/s on 10 nodes x 8 cores ({cores} actors x {per_cpu:.0f} pairs "
          f"per CPU second); {0.8 * cores * per_cpu:.0f} with 20 % lost to scheduling and stragglers")


def generate_results(out: Path, rows: int, shard: int = 10_000) -> None:
    """A results folder of ``rows`` made-up rows (what a cluster run of that size leaves), in seconds."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from app.review.parquet import RESULTS_SCHEMA_VERSION, arrow_schema, write_bytes_atomically
    from app.review.results_dir import RUN_FILE, shard_path

    labels = [str(i) for i in range(10)]
    mods = ["image", "audio"]
    out.mkdir(parents=True)
    rng = np.random.default_rng(0)
    schema = arrow_schema(mods, verdicts=False)
    t0 = time.perf_counter()
    for k in range(-(-rows // shard)):
        n = min(shard, rows - k * shard)
        ids = [f"p{k * shard + i:08d}" for i in range(n)]
        probs = rng.dirichlet(np.ones(10), n)
        pred = probs.argmax(1)
        given = rng.integers(0, 10, n)
        cols = {
            "id": ids, "label": [labels[g] for g in given], "status": ["ok"] * n,
            "prediction": [labels[p] for p in pred], "probability": probs.max(1), "probabilities": probs.tolist(),
            "correct": (given == pred).tolist(), "flags": [["low confidence"]] * n,
            "decode_seconds": np.full(n, 0.002), "predict_seconds": np.full(n, 0.0005), "error": [None] * n,
        }
        for m in mods:
            mp = rng.dirichlet(np.ones(10), n)
            q = rng.uniform(0.05, 0.5, n)
            cols.update({f"{m}_file": [f"/data/{m}/{i}" for i in ids], f"{m}_label": [labels[p] for p in mp.argmax(1)],
                         f"{m}_probability": mp.max(1), f"{m}_probabilities": mp.tolist(), f"{m}_quality": q,
                         f"{m}_share": q / 0.55, f"{m}_energy": -10 * q})
        table = pa.table({c: cols[c] for c in schema.names}, schema=schema)
        pq.write_table(table, shard_path(out, k))
    run = {"format": "qmf-results", "results_schema_version": RESULTS_SCHEMA_VERSION,
           "model": {"name": "generated", "sha256": "0" * 64, "path": None},
           "modalities": {"image": "image", "audio": "audio"}, "labels": labels, "manifest_modalities": [],
           "source": {"kind": "manifest", "path": "/data/pairs.parquet"}, "thresholds": {}, "pairs": rows,
           "pairs_sha256": "", "shard_size": shard, "shards": -(-rows // shard), "unmatched": []}
    write_bytes_atomically(out / RUN_FILE, json.dumps(run).encode())
    print(f"\ngenerated {rows} result rows in {-(-rows // shard)} shards in {time.perf_counter() - t0:.1f} s", flush=True)


def session_bench(rows: int, tmp: Path) -> None:
    from app.review.results_dir import import_results
    from app.review.session import ReviewSession, RowFilter

    out = tmp / "million"
    generate_results(out, rows)

    path = tmp / "million.qmfreview"
    rep = import_results(out, path)
    print(f"import         {rep.pairs} pairs in {rep.seconds:.1f} s ({rep.pairs / rep.seconds:.0f} pairs/s); "
          f"session file {path.stat().st_size / 1e6:.0f} MB", flush=True)

    def timed(what: str, fn) -> None:
        t = time.perf_counter()
        fn()
        print(f"  {what:<44} {1000 * (time.perf_counter() - t):9.1f} ms", flush=True)

    print("the Review view's queries on it (a page is 200 rows, as the table model asks):")
    s = ReviewSession.open(path)
    timed("open the session", lambda: ReviewSession.open(path).close())
    timed("count (no filter)", lambda: s.count())
    timed("first page, by index", lambda: s.rows(limit=200))
    timed("page at row 500,000, by index", lambda: s.rows(limit=200, offset=min(rows - 1, 500_000)))
    timed("first page, by fused probability", lambda: s.rows(order_by="probability", limit=200))
    timed("first page, by audio quality descending", lambda: s.rows(order_by="audio.quality", descending=True,
                                                                    limit=200))
    timed("first page, by verdict", lambda: s.rows(order_by="verdict", limit=200))
    flt = RowFilter(correctness="wrong")
    timed("count, filter 'wrong'", lambda: s.count(flt))
    timed("first page, filter 'wrong', by probability", lambda: s.rows(flt, order_by="probability", limit=200))
    timed("flag menu (distinct flags)", lambda: s.distinct("flag"))
    timed("summary tab (counts, confusion matrix)", lambda: s.summary())
    s.close()
    try:
        from PySide6.QtWidgets import QApplication

        from app.gui.review.table_model import ReviewTableModel
    except ImportError:
        return
    app = QApplication.instance() or QApplication([])
    model = ReviewTableModel()
    s = ReviewSession.open(path)

    def first_cells() -> None:
        for r in range(40):
            model.index(r, 0).data()

    timed("table model: set_session + first 40 rows", lambda: (model.set_session(s), first_cells()))
    col = [k for k, _ in model.columns].index("probability")
    timed("table model: sort by fused prob. + first 40 rows", lambda: (model.sort(col), first_cells()))
    model.set_session(None)
    s.close()
    del app


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2, help="decoding threads / Ray actors (default 2)")
    ap.add_argument("--shard-size", type=int, default=500)
    ap.add_argument("--session-rows", type=int, default=1_000_000, help="0: skip the imported-session part")
    ap.add_argument("--model", help="model file; default: the bundled one")
    ap.add_argument("--keep", help="work in this folder and keep it")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="qmf-ray-bench-") as tmp_name:
        tmp = Path(args.keep) if args.keep else Path(tmp_name)
        tmp.mkdir(parents=True, exist_ok=True)
        if args.pairs:
            engines(args, tmp)
        if args.session_rows:
            session_bench(args.session_rows, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
