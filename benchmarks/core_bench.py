"""Speed of the core, each figure next to its peer or limit measured in the same run:

  * batched forward (onnxruntime, one thread) against the core's compute limit: a single-threaded
    float32 matrix-multiply probe (numpy/OpenBLAS sgemm) gives the FLOP rate, the model's FLOPs per
    pair (counted from its convolutions and linear layers) turn it into pairs/s; target >= 0.8x.
    The torch forward on the same batch is printed as a second peer.
  * one pair in process, decode + predict, onnxruntime path against the torch path (target <= 1.5 ms).
  * whole-process `qmf predict --json` median, the model file with its ONNX graph (torch never
    imported) against the same weights without a graph (the torch fallback); target <= 0.5 s.

    .venv/bin/python benchmarks/core_bench.py [--model M] [--runs 200] [--processes 7]

Uses the bundled model (else trains the tiny test model) on generated pairs. One inference thread
everywhere (the product's default). Figures are printed; nothing is asserted (the tests never time).
See also benchmarks/eval_bench.py (qmf eval before/after) and benchmarks/batch_bench.py (qmf batch
against two-process decoding).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy is imported: the probe measures one core

import argparse  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def best_seconds(fn, repeats: int) -> float:
    """The least CPU time of `repeats` calls (process CPU time: everything here runs on one thread, so
    this is the core's work, not the time other processes on a shared machine held it)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def matmul_flops(n: int = 384, repeats: int = 30) -> float:
    """FLOP/s of one core on float32 matrix multiplication (2 n^3 per product)."""
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    return 2 * n**3 / best_seconds(lambda: a @ b, repeats)


def model_flops(torch_model, batch) -> float:
    """FLOPs per pair of the convolutions and linear layers (2 per multiply-add; the rest is small)."""
    import torch

    macs = [0]

    def conv(mod, inputs, out):
        k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
        macs[0] += out[0].numel() * k

    def linear(mod, inputs, out):
        macs[0] += out[0].numel() * mod.in_features

    hooks = []
    for mod in torch_model.modules():
        if isinstance(mod, torch.nn.Conv2d):
            hooks.append(mod.register_forward_hook(conv))
        elif isinstance(mod, torch.nn.Linear):
            hooks.append(mod.register_forward_hook(linear))
    with torch.inference_mode():
        torch_model({k: torch.from_numpy(v[:1]) for k, v in batch.items()})
    for h in hooks:
        h.remove()
    return 2.0 * macs[0]


def run_measured(cmd: list[str]) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of one command. The peak comes from GNU time when present: a child
    forked from this (torch-sized) process would otherwise report this process's pages as its own."""
    timer = ["/usr/bin/time", "-f", "QMF_PEAK_KB=%M"] if Path("/usr/bin/time").exists() else []
    t0 = time.perf_counter()
    proc = subprocess.Popen([*timer, *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"{' '.join(cmd)} failed: {err[-500:]}")
    peak = [line for line in err.splitlines() if line.startswith("QMF_PEAK_KB=")]
    rss = int(peak[-1].split("=")[1]) / 1024 if peak else float("nan")
    return wall, usage.ru_utime + usage.ru_stime, rss


def whole_process(cmds: dict[str, list[str]], runs: int) -> dict[str, tuple[float, float, float]]:
    """Median wall time, CPU time (user + system) and peak RSS (MB) of each command; runs interleaved
    so both see the same machine. On a loaded machine wall time includes waiting for a core; CPU time
    does not."""
    times: dict[str, list[tuple[float, float, float]]] = {k: [] for k in cmds}
    for _ in range(runs):
        for k, cmd in cmds.items():
            wall, cpu, rss_mb = run_measured(cmd)
            times[k].append((wall, cpu, rss_mb))
    return {k: tuple(statistics.median(x[i] for x in v) for i in range(3)) for k, v in times.items()}


def one_pair(backend: str, model: str, files: dict[str, str], runs: int) -> None:
    """Decode + predict one pair `runs` times in this (fresh) process; prints one line."""
    if backend == "torch":
        import torch

        torch.set_num_threads(1)
    from app.qmf.predictor import Predictor

    p = Predictor.load(model, backend=backend)
    p.predict_files(files)
    wall, cpu, predict_only = [], [], []
    raw = p.load_inputs(files)
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        p.predict_files(files)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        c0 = time.process_time()
        p.predict(raw)
        predict_only.append(time.process_time() - c0)
    torch_loaded = "torch" in sys.modules
    print(f"in-process, one pair, {p.backend:>11}: decode + predict median {1000 * statistics.median(cpu):.2f} ms CPU "
          f"(least {1000 * min(cpu):.2f}), {1000 * statistics.median(wall):.2f} ms wall; predict only "
          f"{1000 * statistics.median(predict_only):.2f} ms CPU ({runs} runs, torch imported: {torch_loaded}; "
          "target decode + predict <= 1.5 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--one-pair", choices=["onnx", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--file", action="append", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--model", help="model file with an ONNX graph (default: bundled model, else a tiny one)")
    parser.add_argument("--runs", type=int, default=200, help="repetitions for the in-process medians")
    parser.add_argument("--processes", type=int, default=7, help="whole-process runs of each path")
    parser.add_argument("--batch", type=int, default=256, help="batch size of the batched forward")
    args = parser.parse_args()
    if args.one_pair:
        one_pair(args.one_pair, args.model, dict(f.split("=", 1) for f in args.file), args.runs)
        return

    import torch

    torch.set_num_threads(1)
    from app.data.manifest import read_manifest
    from app.qmf.bundle import default_model_path, load_bundle, save_bundle
    from app.qmf.predictor import Predictor
    from tests.synthetic import make_synthetic_pairs, train_tiny_model

    tmp = Path(tempfile.mkdtemp(prefix="qmf-bench-"))
    pairs = make_synthetic_pairs(tmp / "pairs", per_class=max(4, args.batch // 3 + 1))
    model = Path(args.model) if args.model else default_model_path()
    if not model.exists():
        print(f"no model at {model}; training the tiny test model", file=sys.stderr)
        model = train_tiny_model(pairs, tmp / "tiny.safetensors", epochs=5)
    fast = Predictor.load(model)
    slow = Predictor.load(model, backend="torch")
    if fast.backend != "onnxruntime":
        sys.exit(f"{model} has no ONNX graph; add one with `qmf export-onnx {model}`")
    rows = read_manifest(pairs.train_csv, modalities=None).rows
    print(f"model: {fast.name} ({model}); one inference thread; CPUs {os.cpu_count()}; "
          f"load average {os.getloadavg()[0]:.1f}")

    # --- batched forward against the compute limit
    raws = [fast.load_inputs(r.files) for r in rows[: args.batch]]
    batch = fast.to_batch(raws)
    n = len(raws)
    flops = model_flops(slow.model, batch)
    probe = matmul_flops()
    ort_s = best_seconds(lambda: fast.predict_arrays(batch), 10)
    torch_s = best_seconds(lambda: slow.predict_arrays(batch), 5)
    probe_again = matmul_flops()  # again after: the limit is the better of the two probes
    limit = max(probe, probe_again) / flops
    ort_rate, torch_rate = n / ort_s, n / torch_s
    print(f"batched forward, batch {n}: onnxruntime {ort_rate:,.0f} pairs/s = {ort_rate / limit:.2f} x the compute "
          f"limit {limit:,.0f} pairs/s (sgemm probe {max(probe, probe_again) / 1e9:.1f} GFLOP/s, "
          f"{flops / 1e6:.1f} MFLOP per pair; target >= 0.8); torch {torch_rate:,.0f} pairs/s "
          f"(onnxruntime {ort_rate / torch_rate:.1f} x torch)")

    # --- one pair in process: each backend in a fresh process of its own (the ONNX one never imports
    # torch, as in `qmf predict`), timed on the same files
    files = dict(rows[0].files)
    for name in ("onnx", "torch"):
        out = subprocess.run([sys.executable, __file__, "--one-pair", name, "--model", str(model), "--runs", str(args.runs),
                              *[f"--file={k}={v}" for k, v in files.items()]], capture_output=True, text=True,
                             cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
        print(out.stdout.strip())

    # --- whole process
    plain = save_bundle(tmp / "no-graph.safetensors", load_bundle(model).model, fast.manifest, graph=False)
    cli = [sys.executable, "-m", "app.cli", "predict", "--json", *[f"--{k}={v}" for k, v in files.items()]]
    med = whole_process({"onnx": [*cli, "--model", str(model)], "torch": [*cli, "--model", str(plain)]},
                        args.processes)
    (ow, oc, om), (tw, tc, tm) = med["onnx"], med["torch"]
    print(f"whole process `qmf predict --json`, medians of {args.processes} interleaved runs: with the ONNX graph "
          f"{ow:.2f} s wall, {oc:.2f} s CPU, {om:.0f} MB; torch path {tw:.2f} s wall, {tc:.2f} s CPU, {tm:.0f} MB "
          f"({tw / ow:.1f} x the wall time, {tc / oc:.1f} x the CPU time; target <= 0.5 s)")


if __name__ == "__main__":
    main()
