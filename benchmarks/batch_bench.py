"""`qmf batch`'s runner against decoding alone in two processes, on the same generated files, in one run.

    .venv/bin/python benchmarks/batch_bench.py [--pairs 10000] [--batch-size 64]
    .venv/bin/python benchmarks/batch_bench.py --command-only --commands 3 --peer /work/main   # old vs new

Prints, each including the start of its worker pool, with the load average when it finished:
  * decode-only, two processes   files -> model inputs (read + preprocess, the runner's own
                                 `decode_batch` on slices of a batch) in a spawn pool of 2, no model
  * BatchRunner, processes       decode + onnxruntime (one thread) in worker processes, SQLite writes here
                                 = x decode-only (target >= 0.8) and pairs/s (target >= 1,500 quiet)
  * BatchRunner, threads         the same with the thread pool (what short runs and the app's child use)
  * the CPU a pair costs in each part (decoding and, with a graph, the model in the workers),
    which bounds the ratio: on N cores the runner cannot beat N / (decode + model + the rest) pairs/s.
  * the whole `qmf batch` command (a fresh process: start-up, scanning the folder, filling the session,
    the run, building the listing's indexes, the summary) into a new session: its pairs/s from start to
    exit next to the rate the runner printed, and its user + system CPU a pair (workers included;
    steadier than wall time on a shared machine). With ``--peer TREE`` the same command from that source
    tree (e.g. the main branch) runs alternately with this one, so both see the same load. With ``--why``
    each command's phases (seconds from launch to handler start, model loaded, folder read, session filled,
    run done, indexes built, summary printed, closed; the command's own CPU at each; its workers' CPU),
    for a tree that marks them (QMF_BATCH_TIMING=1).
Pairs: 28x28 PNG + 1 s 8 kHz WAV (benchmarks/review_bench.py's generator). Model: the bundled one.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.review_bench import generate, pick_model  # noqa: E402


def cpu_seconds() -> float:
    """User + system CPU of this process and of its finished children (the pools' workers, once shut down)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def decode_only(predictor, files: list[dict], processes: int, chunk: int) -> float:
    from app.review import runner

    specs = [(name, m.kind, m.params) for name, m in predictor.modalities.items()]
    start = time.perf_counter()
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                             initializer=runner._init_worker, initargs=(specs,)) as pool:
        chunks = [files[i : i + chunk] for i in range(0, len(files), chunk)]
        errors = sum(1 for _, out in pool.map(runner._decode_batch, chunks) for err, _ in out if err)
    assert errors == 0, errors
    return len(files) / (time.perf_counter() - start)


def runner_rate(predictor, model: Path, folder: Path, session: Path, batch_size: int, processes: int):
    from app.review.runner import BatchRunner
    from app.review.workflow import prepare_session

    prepared = prepare_session(session, predictor, folder, model)
    with prepared.session as s:
        c0, start = cpu_seconds(), time.perf_counter()
        stats = BatchRunner(predictor, s, batch_size=batch_size, processes=processes).run()
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - c0
        assert s.result_count() == s.pair_count() and stats.errors == 0
    return stats.processed / seconds, stats, cpu


def whole_command(tree: Path, model: Path, folder: Path, session: Path, batch_size: int,
                  why: bool = False) -> tuple[float, float, str, str]:
    """One `qmf batch` of ``folder`` into a new ``session`` by the code in ``tree``: (pairs/s from start to
    exit, user + system CPU seconds of it and its workers a pair, the rate the runner printed, and with
    ``why`` its phases: seconds from launch to each ``QMF_BATCH_TIMING`` mark, with the command's own CPU
    seconds then, or a note that the tree prints none)."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", **({"QMF_BATCH_TIMING": "1"} if why else {})}
    cmd = [sys.executable, "-m", "app.cli", "batch", "--model", str(model), "--folder", str(folder), "--session",
           str(session), "--quiet", "--batch-size", str(batch_size)]
    c0, launched, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.time(), time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True, check=True)
    seconds, c1 = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime
    out = done.stdout
    printed = re.search(r"\(([\d.]+) pairs/s\)", out)
    pairs = int(re.search(r"this run (\d+)", out).group(1))
    phases = ""
    if why:
        marks = re.findall(r"^qmf-batch-timing (\S+) ([\d.]+) ([\d.]+)$", done.stderr, re.MULTILINE)
        phases = ("; ".join(f"{name} {float(t) - launched:.2f} s (CPU {float(c):.2f})" for name, t, c in marks)
                  + f"; exit {seconds:.2f} s, workers' CPU {cpu - float(marks[-1][2]):.2f} s") if marks else \
            f"no phase marks (that code prints none); exit {seconds:.2f} s"
    return pairs / seconds, cpu / pairs, printed.group(1) if printed else "?", phases


def commands(args: argparse.Namespace, model: Path, folder: Path, tmp: Path) -> None:
    trees = [("this tree", ROOT)] + ([("peer " + str(args.peer), Path(args.peer).resolve())] if args.peer else [])
    for run in range(args.commands):
        for i, (name, tree) in enumerate(trees):
            rate, cpu, printed, phases = whole_command(tree, model, folder, tmp / f"cmd-{run}-{i}.qmfreview",
                                                       args.batch_size, args.why)
            print(f"qmf batch, whole command ({name}) {rate:8.1f} pairs/s start to exit (the runner printed {printed}; "
                  f"target >= 1,500 on a quiet machine); {1000 * cpu:.2f} ms CPU a pair; "
                  f"load average {os.getloadavg()[0]:.1f}", flush=True)
            if phases:
                print(f"    phases ({name}): {phases}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=10_000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--no-threads", action="store_true", help="skip the thread-pool runner")
    ap.add_argument("--commands", type=int, default=1, help="whole `qmf batch` runs (each into a new session)")
    ap.add_argument("--peer", help="a source tree (e.g. /work/main) whose `qmf batch` runs alternately with this one's")
    ap.add_argument("--command-only", action="store_true", help="only the whole-command runs")
    ap.add_argument("--folder", help="pairs this benchmark generated before (skips generating them)")
    ap.add_argument("--why", action="store_true",
                    help="with each whole command, where its time went: the phases it marks (QMF_BATCH_TIMING=1)")
    args = ap.parse_args()

    from app.qmf.predictor import Predictor
    from app.review import runner as runner_mod
    from app.review.sources import load_source

    tmp_ctx = tempfile.TemporaryDirectory(prefix="qmf-batch-bench-")
    tmp = Path(tmp_ctx.name)
    model = pick_model(tmp, None)
    predictor = Predictor.load(model)
    folder = Path(args.folder) if args.folder else tmp / "pairs"
    t0 = time.perf_counter()
    if not args.folder:
        generate(folder, args.pairs, predictor.labels[:3], workers=2)
    print(f"{'generated' if not args.folder else 'reusing'} {args.pairs if not args.folder else folder} pairs in "
          f"{time.perf_counter() - t0:.1f} s; model {predictor.name}, backend "
          f"{predictor.backend}, CPUs {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    if args.command_only:
        commands(args, model.absolute(), folder, tmp)
        tmp_ctx.cleanup()
        return 0
    source = load_source(folder, {n: m.kind for n, m in predictor.modalities.items()}, predictor.labels)
    files = [p.files for p in source.pairs]

    def load() -> str:
        return f"load average {os.getloadavg()[0]:.1f}"

    n, cores = len(files), os.cpu_count() or 1
    # CPU seconds do not count the time other processes on a shared machine held the cores, so
    # cores / (CPU a pair) bounds the rate on a quiet machine
    c0 = cpu_seconds()
    decode = decode_only(predictor, files, args.processes, -(-args.batch_size // args.processes))
    decode_cpu = cpu_seconds() - c0
    print(f"decode-only, {args.processes} processes  {decode:8.1f} pairs/s; {1000 * decode_cpu / n:.2f} ms CPU a pair "
          f"({load()})")
    rate, stats, run_cpu = runner_rate(predictor, model, folder, tmp / "procs.qmfreview", args.batch_size,
                                       args.processes)
    print(f"BatchRunner, {stats.processes} processes  {rate:8.1f} pairs/s = {rate / decode:.2f} x decode-only "
          f"(target >= 0.8; >= 1,500 pairs/s on a quiet machine; {load()}); {1000 * run_cpu / n:.2f} ms CPU a pair, "
          f"so at most {cores * n / run_cpu:,.0f} pairs/s on {cores} idle cores = {decode_cpu / run_cpu:.2f} x "
          "decode-only's CPU per pair")
    per_decode = 1000 * stats.decode_seconds / max(1, stats.processed)
    per_model = 1000 * stats.model_seconds / max(1, stats.processed)
    where = "in the workers" if runner_mod._graph_for_workers(predictor) is not None else "in the runner's process"
    print(f"    per pair: decoding {per_decode:.2f} ms in a worker, model {per_model:.2f} ms {where} "
          f"(wall, as the runner times them)")
    if not args.no_threads:
        rate_t, _, thread_cpu = runner_rate(predictor, model, folder, tmp / "threads.qmfreview", args.batch_size, 0)
        print(f"BatchRunner, threads      {rate_t:8.1f} pairs/s = {rate_t / decode:.2f} x decode-only ({load()}); "
              f"{1000 * thread_cpu / n:.2f} ms CPU a pair")
    commands(args, model.absolute(), folder, tmp)
    tmp_ctx.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
