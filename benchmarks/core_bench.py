"""Speed of the core, each figure next to its peer or limit measured in the same run (and the load
average when it was taken: the machine is shared, so ratios are the figures to read):

  * batched forward (onnxruntime, one thread) against the core's compute limit: a single-threaded
    float32 matrix-multiply probe (numpy/OpenBLAS sgemm, n = 384) gives the FLOP rate, the model's
    FLOPs per pair (counted from its convolutions and linear layers) turn it into pairs/s; target
    >= 0.8x. Probe and forward are timed in five interleaved rounds (the probe's best, the forward's
    least time). The ratio is printed twice: with the usual count (every output position times every
    kernel tap) and with the taps on zero padding left out, which onnxruntime's blocked convolutions
    skip (about 11 % of the usual count for the bundled model; the stricter figure). The torch
    forward on the same batch is printed as a second peer.
  * one pair in process, decode + predict, onnxruntime path (with where the time goes: image decode,
    audio decode, preprocessing, session.run, result assembly) against the torch path; target <= 1.5 ms.
    With --peer DIR (another checkout of the project, e.g. older code): the same figure for this tree and
    each peer, measured in fresh processes taking turns (--rounds rounds, the order reversed every
    other round) on the same files and the same model file, each tree's median CPU time per pair and
    its ratio to this tree's, with the load average of every round: on a shared machine the figures
    of one run move together, so the ratio is what holds from run to run.
  * single-prediction p99 with one competing CPU-bound process against its value without it, in the
    same process (target ratio <= 3); the same for a session with two spinning threads (onnxruntime's
    defaults) as the peer that shows why the product uses one thread and no spinning.
  * whole-process `qmf predict IMAGE AUDIO` median against `python -c pass` and
    `python -c "import onnxruntime, numpy"` (the floor a torch-free predictor cannot go below), and
    the same weights without a graph (the torch fallback); target <= 0.5 s. Bytecode is cached (as
    in an installed app) in a temporary PYTHONPYCACHEPREFIX, warmed by one untimed run of each.

    .venv/bin/python benchmarks/core_bench.py [--model M] [--runs 200] [--processes 7] [--no-torch]
                                               [--batch 64] [--forward-only] [--profile] [--batch-sweep]
                                               [--peer DIR ...] [--rounds 6] [--one-pair-only]

--forward-only prints the batched-forward line alone (a few seconds; for comparing graph or session
changes, run it several times, alternating old and new: on a shared machine single figures vary).
--profile adds onnxruntime's per-node profile of that forward (which nodes take the time);
--batch-sweep the forward's throughput at batch sizes 16 to 128 on the same pairs.
--one-pair-only prints the one-pair lines alone (with --peer, the alternated comparison too).

Uses the bundled model (else trains the tiny test model) on generated pairs (28x28 PNG, 1 s 8 kHz
16-bit WAV). One inference thread everywhere (the product's default). Figures are printed; nothing is
asserted (the tests never time). See also benchmarks/eval_bench.py (qmf eval, torch era against now)
and benchmarks/batch_bench.py (qmf batch against two-process decoding).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy is imported: the probe measures one core

import argparse  # noqa: E402
import json  # noqa: E402
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


def _taps_inside(length: int, out: int, kernel: int, stride: int, pad: int, dilation: int) -> int:
    """Along one axis: the (output position, kernel tap) pairs whose input lies inside the input,
    not on its zero padding."""
    return sum(0 <= o * stride - pad + k * dilation < length for o in range(out) for k in range(kernel))


def model_flops(torch_model, batch) -> tuple[float, float]:
    """FLOPs per pair of the convolutions and linear layers (2 per multiply-add; the rest is small),
    counted two ways: every output position times every kernel tap (the usual count, and issue 13's
    26.6 MFLOP for the bundled model), and without the taps that fall on the zero padding, which are
    multiplications by zero that onnxruntime's convolution kernels skip (the work that must be done;
    by the usual count the bundled model's 5x7 convolution would run faster than the core's FMA peak)."""
    import torch

    macs = [0, 0]

    def conv(mod, inputs, out):
        per_tap = mod.in_channels // mod.groups * out.shape[1]
        macs[0] += out[0].numel() * mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
        taps = 1
        for axis in (0, 1):
            taps *= _taps_inside(inputs[0].shape[2 + axis], out.shape[2 + axis], mod.kernel_size[axis],
                                 mod.stride[axis], mod.padding[axis], mod.dilation[axis])
        macs[1] += taps * per_tap

    def linear(mod, inputs, out):
        macs[0] += out[0].numel() * mod.in_features
        macs[1] += out[0].numel() * mod.in_features

    hooks = []
    for mod in torch_model.modules():
        if isinstance(mod, torch.nn.Conv2d):
            if isinstance(mod.padding, str):
                raise ValueError("model_flops counts convolutions with numeric padding only")
            hooks.append(mod.register_forward_hook(conv))
        elif isinstance(mod, torch.nn.Linear):
            hooks.append(mod.register_forward_hook(linear))
    with torch.inference_mode():
        torch_model({k: torch.from_numpy(v[:1]) for k, v in batch.items()})
    for h in hooks:
        h.remove()
    return 2.0 * macs[0], 2.0 * macs[1]


def _conv_node_flops(args: dict) -> float | None:
    """FLOPs of the taps on the input (not on zero padding) of one profiled Conv node with stride 1
    and symmetric padding (every convolution of the bundled model); None for any other."""
    shapes = [next(iter(s.values()), []) for s in args.get("input_type_shape") or []]
    out = next(iter((args.get("output_type_shape") or [{}])[0].values()), [])
    if len(shapes) < 2 or len(shapes[1]) != 4 or len(out) != 4 or list(out[2:]) != list(shapes[0][2:]):
        return None
    c_out, c_in, kh, kw = shapes[1]
    taps = _taps_inside(out[2], out[2], kh, 1, (kh - 1) // 2, 1) * _taps_inside(out[3], out[3], kw, 1, (kw - 1) // 2, 1)
    return 2.0 * out[0] * taps * c_in * c_out


def forward_profile(graph: bytes, batch, folder: Path, probe: float, runs: int = 100, top: int = 12) -> None:
    """onnxruntime's per-node profile of the batched forward in the product's session options: each
    node's least time over `runs` runs (the least, as everywhere here: the machine is shared), the
    nodes that take the most (a convolution's rate counts the taps on its input, next to the probe's),
    and the share of each operator type. Node names are after the graph optimiser (Conv nodes carry
    the fused ReLU's output name; "_nchwc" marks the blocked layout)."""
    import json
    from collections import defaultdict

    import onnxruntime as ort

    from app.qmf.onnx_graph import inference_threads, session_options

    options = session_options(ort, inference_threads())
    options.enable_profiling = True
    options.profile_file_prefix = str(folder / "forward")
    session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    feeds = {i.name: batch[i.name] for i in session.get_inputs()}
    for _ in range(runs):
        session.run(None, feeds)
    least: dict[str, float] = {}
    kinds: dict[str, tuple[str, str, float | None]] = {}
    for event in json.loads(Path(session.end_profiling()).read_text()):
        name = event.get("name", "")
        if event.get("cat") == "Node" and name.endswith("_kernel_time"):
            node = name[: -len("_kernel_time")]
            least[node] = min(least.get(node, float("inf")), event["dur"])
            args = event["args"]
            shape = args.get("output_type_shape") or [{}]
            op = args.get("op_name", "?")
            kinds[node] = (op, str(next(iter(shape[0].values()), "")), _conv_node_flops(args) if op == "Conv" else None)
    total = sum(least.values())
    print(f"    per-node profile ({runs} runs, least time of each node, summed {total / 1000:.2f} ms "
          f"= {len(next(iter(batch.values()))) / total * 1e6:,.0f} pairs/s; sgemm probe {probe / 1e9:.1f} GFLOP/s):")
    for node, us in sorted(least.items(), key=lambda x: -x[1])[:top]:
        op, shape, flops = kinds[node]
        rate = f"{flops / us / 1e3:5.1f} GFLOP/s" if flops else " " * 13
        print(f"    {us:8.0f} us {100 * us / total:5.1f} %  {op:<10} {rate}  out {shape:<18} {node}")
    by_op: dict[str, float] = defaultdict(float)
    for node, us in least.items():
        by_op[kinds[node][0]] += us
    print("    by operator: " + ", ".join(f"{op} {100 * us / total:.1f} %" for op, us in
                                        sorted(by_op.items(), key=lambda x: -x[1]) if us >= 0.001 * total))


SWEEP = (16, 32, 64, 128)


def batch_sweep(predictor, pairs, peer: int, rounds: int = 5) -> None:
    """Forward throughput per batch size on the same pairs: each timing covers all of them (so every
    size does the same work per timed run), sizes interleaved over `rounds` rounds, the least time;
    the ratios are to batch `peer` (the runner's)."""
    count = len(next(iter(pairs.values())))
    best: dict[int, float] = {b: float("inf") for b in SWEEP}
    for r in range(rounds):
        for size in SWEEP if r % 2 == 0 else SWEEP[::-1]:
            chunks = [{k: v[at:at + size] for k, v in pairs.items()} for at in range(0, count, size)]
            best[size] = min(best[size], best_seconds(lambda chunks=chunks: [predictor.predict_arrays(c)
                                                                             for c in chunks], 3))
    rates = {b: count / t for b, t in best.items()}
    ref = rates.get(peer)
    print(f"    batch sizes ({count} pairs per timed run, {rounds} interleaved rounds; {load()}): " + ", ".join(
        f"{b}: {r:,.0f} pairs/s" + (f" ({r / ref:.2f} x batch {peer})" if ref and b != peer else "")
        for b, r in rates.items()))


def load() -> str:
    return f"load average {os.getloadavg()[0]:.1f}"


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of one command. The peak comes from GNU time when present: a child
    forked from this (torch-sized) process would otherwise report this process's pages as its own."""
    timer = ["/usr/bin/time", "-f", "QMF_PEAK_KB=%M"] if Path("/usr/bin/time").exists() else []
    t0 = time.perf_counter()
    proc = subprocess.Popen([*timer, *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT,
                            env=env or {**os.environ, "PYTHONPATH": str(ROOT)})
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"{' '.join(cmd)} failed: {err[-500:]}")
    peak = [line for line in err.splitlines() if line.startswith("QMF_PEAK_KB=")]
    rss = int(peak[-1].split("=")[1]) / 1024 if peak else float("nan")
    return wall, usage.ru_utime + usage.ru_stime, rss


def whole_process(cmds: dict[str, list[str]], runs: int, env: dict[str, str] | None = None,
                  ) -> dict[str, tuple[float, float, float]]:
    """Median wall time, CPU time (user + system) and peak RSS (MB) of each command; runs interleaved
    so all see the same machine (one untimed run of each first: bytecode, page cache). On a loaded
    machine wall time includes waiting for a core; CPU time does not."""
    for cmd in cmds.values():
        run_measured(cmd, env)
    times: dict[str, list[tuple[float, float, float]]] = {k: [] for k in cmds}
    for _ in range(runs):
        for k, cmd in cmds.items():
            times[k].append(run_measured(cmd, env))
    return {k: tuple(statistics.median(x[i] for x in v) for i in range(3)) for k, v in times.items()}


def _stages(p, files: dict[str, str], runs: int) -> str:
    """Median CPU ms of each step of one prediction, timed inside the same loop."""
    steps: dict[str, list[float]] = {"image decode": [], "audio decode": [], "preprocessing": [],
                                     "session.run": [], "assembly": []}
    names = list(p.modalities)
    for _ in range(runs):
        t = [time.process_time()]
        raw = {}
        for name in names:
            raw[name] = p.modalities[name].load(files[name])
            t.append(time.process_time())
        batch = p.to_batch([raw])
        t.append(time.process_time())
        numbers = p.predict_arrays(batch)
        t.append(time.process_time())
        p._predictions(numbers, 1, [files], 0.0)
        t.append(time.process_time())
        for key, a, b in zip(steps, t, t[1:], strict=False):
            steps[key].append(b - a)
    labels = [f"{n} decode" for n in names] + ["preprocessing", "session.run", "assembly"]
    return ", ".join(f"{label} {1000 * statistics.median(v):.3f}" for label, v in zip(labels, steps.values(),
                                                                                       strict=True))


def one_pair(backend: str, model: str, files: dict[str, str], runs: int) -> None:
    """Decode + predict one pair `runs` times in this (fresh) process; prints one line (two on ONNX)."""
    if backend == "torch":
        import torch

        torch.set_num_threads(1)
    from app.qmf.predictor import Predictor

    p = Predictor.load(model, backend=backend)
    for _ in range(20):
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
          f"target decode + predict <= 1.5 ms; {load()})")
    if backend == "onnx":
        print(f"    where it goes (median ms CPU): {_stages(p, files, runs)}")


# Run in a peer's checkout (its own `app`, imported from the working directory): only the calls every
# version of the project has, Predictor.load(path) and predict_files(files); prints the CPU seconds of
# each decode + predict as JSON.
_PEER_CHILD = """
import json, sys, time
sys.path.insert(0, ".")
from app.qmf.predictor import Predictor
model, files, runs = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
p = Predictor.load(model)
for _ in range(20):
    p.predict_files(files)
cpu = []
for _ in range(runs):
    c0 = time.process_time()
    p.predict_files(files)
    cpu.append(time.process_time() - c0)
print(json.dumps({"backend": p.backend, "cpu": cpu}))
"""


def one_pair_peers(trees: list[Path], model: str, files: dict[str, str], runs: int, rounds: int) -> None:
    """Decode + predict of one pair for this tree (trees[0]) and its peers, each round a fresh process per
    tree in turn (the order reversed every other round); prints each tree's median CPU time per pair over
    all its rounds, the spread of its round medians and the ratio to this tree, and each round's load."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    cpu: dict[Path, list[float]] = {t: [] for t in trees}
    per_round: dict[Path, list[float]] = {t: [] for t in trees}
    loads = []
    for r in range(rounds):
        loads.append(os.getloadavg()[0])
        for tree in trees if r % 2 == 0 else trees[::-1]:
            out = subprocess.run([sys.executable, "-c", _PEER_CHILD, model, json.dumps(files), str(runs)],
                                 capture_output=True, text=True, cwd=tree, env={**env, "PYTHONPATH": str(tree)})
            if out.returncode:
                sys.exit(f"one pair in {tree} failed: {out.stderr.strip()[-500:]}")
            got = json.loads(out.stdout.strip().splitlines()[-1])
            if got["backend"] != "onnxruntime":
                sys.exit(f"{tree} predicts with {got['backend']}, not onnxruntime")
            cpu[tree] += got["cpu"]
            per_round[tree].append(statistics.median(got["cpu"]))
    base = statistics.median(cpu[trees[0]])
    print(f"one pair, decode + predict, this tree and its peers taking turns ({rounds} rounds x {runs} pairs in a "
          f"fresh process each; load average per round {' '.join(f'{x:.1f}' for x in loads)}, {load()} after):")
    for i, tree in enumerate(trees):
        med = statistics.median(cpu[tree])
        rounds_text = " ".join(f"{1000 * x:.2f}" for x in per_round[tree])
        print(f"    {'this tree' if i == 0 else 'peer':>9} {str(tree):<28} median {1000 * med:.2f} ms CPU "
              f"(rounds {rounds_text}){'' if i == 0 else f' = {med / base:.2f} x this tree'}"
              f"{'; target <= 1.5 ms' if i == 0 else ''}")


def _p99_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return 1000 * times[min(len(times) - 1, int(0.99 * len(times)))]


def contention(model: str, files: dict[str, str], runs: int) -> None:
    """p99 wall time of one prediction without and with one competing CPU-bound process, for the
    product's session (one thread, no spinning) and for onnxruntime's defaults (a thread per core,
    spinning); prints one line each."""
    import onnxruntime as ort

    from app.qmf.onnx_graph import OnnxModel
    from app.qmf.predictor import Predictor

    product = Predictor.load(model)
    default = Predictor(product.bundle, engine=OnnxModel(product.bundle.graph, list(product.modalities),
                                                         {n: m.input_shape for n, m in product.modalities.items()}))
    options = ort.SessionOptions()  # onnxruntime's defaults: intra-op threads = cores, spinning on
    default.engine.session = ort.InferenceSession(product.bundle.graph, options, providers=["CPUExecutionProvider"])
    cores = os.cpu_count()
    for p in (product, default):
        for _ in range(20):
            p.predict_files(files)
    idle = {id(p): _p99_ms(lambda p=p: p.predict_files(files), runs) for p in (product, default)}
    load_idle = load()
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        loaded = {id(p): _p99_ms(lambda p=p: p.predict_files(files), runs) for p in (product, default)}
    finally:
        busy.kill()
        busy.wait()
    for p, what in ((product, "product session (1 thread, no spinning)"),
                    (default, f"onnxruntime defaults ({cores} threads, spinning)")):
        a, b = idle[id(p)], loaded[id(p)]
        print(f"single prediction p99, {what}: {a:.2f} ms without, {b:.2f} ms with one competing busy "
              f"process = {b / a:.2f} x (target <= 3; {runs} predictions each; {load_idle} before, {load()} after)")


def one_pair_section(args: argparse.Namespace, model: Path, files: dict[str, str], with_torch: bool,
                     contention_too: bool = False) -> None:
    """Each backend in a fresh process of its own (the ONNX one never imports torch, as in `qmf
    predict`), timed on the same files; with --peer the alternated comparison; then the p99 under
    competition."""
    file_args = [f"--file={k}={v}" for k, v in files.items()]
    child = [sys.executable, __file__, "--model", str(model), "--runs", str(args.runs), *file_args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for extra in (["--one-pair", "onnx"], *([["--one-pair", "torch"]] if with_torch else [])):
        out = subprocess.run([*child, *extra], capture_output=True, text=True, cwd=ROOT, env=env, check=True)
        print(out.stdout.strip())
    if args.peer:
        one_pair_peers([ROOT, *(p.resolve() for p in args.peer)], str(model), files, args.runs, args.rounds)
    if contention_too:
        out = subprocess.run([*child, "--contention"], capture_output=True, text=True, cwd=ROOT, env=env, check=True)
        print(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--one-pair", choices=["onnx", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--contention", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--file", action="append", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--model", help="model file with an ONNX graph (default: bundled model, else a tiny one)")
    parser.add_argument("--runs", type=int, default=200, help="repetitions for the in-process medians and p99")
    parser.add_argument("--processes", type=int, default=7, help="whole-process runs of each command")
    parser.add_argument("--batch", type=int, default=64, help="batch size of the batched forward (the runner's)")
    parser.add_argument("--no-torch", action="store_true", help="leave out the torch peers (faster)")
    parser.add_argument("--forward-only", action="store_true", help="print the batched-forward figure alone")
    parser.add_argument("--profile", action="store_true", help="after the batched forward, its per-node profile")
    parser.add_argument("--batch-sweep", action="store_true", help=f"after the batched forward, batch sizes {SWEEP}")
    parser.add_argument("--peer", action="append", default=[], type=Path, metavar="DIR",
                        help="another checkout of the project whose one-pair figure is measured in turns with this one")
    parser.add_argument("--rounds", type=int, default=6, help="rounds of the alternated one-pair comparison (--peer)")
    parser.add_argument("--one-pair-only", action="store_true", help="print the one-pair figures alone")
    args = parser.parse_args()
    if args.one_pair or args.contention:
        files = dict(f.split("=", 1) for f in args.file)
        if args.contention:
            contention(args.model, files, args.runs)
        else:
            one_pair(args.one_pair, args.model, files, args.runs)
        return

    import torch

    torch.set_num_threads(1)
    from app.data.manifest import read_manifest
    from app.qmf.bundle import default_model_path, load_bundle, save_bundle
    from app.qmf.predictor import Predictor
    from tests.synthetic import make_synthetic_pairs, train_tiny_model

    tmp = Path(tempfile.mkdtemp(prefix="qmf-bench-"))
    needed_pairs = max(args.batch, max(SWEEP) if args.batch_sweep else 0)
    pairs = make_synthetic_pairs(tmp / "pairs", per_class=max(4, needed_pairs // 3 + 1))
    model = Path(args.model) if args.model else default_model_path()
    if not model.exists():
        print(f"no model at {model}; training the tiny test model", file=sys.stderr)
        model = train_tiny_model(pairs, tmp / "tiny.safetensors", epochs=5)
    fast = Predictor.load(model)
    slow = Predictor.load(model, backend="torch")
    if fast.backend != "onnxruntime":
        sys.exit(f"{model} has no ONNX graph; add one with `qmf export-onnx {model}`")
    rows = read_manifest(pairs.train_csv, modalities=None).rows
    print(f"model: {fast.name} ({model}); one inference thread; CPUs {os.cpu_count()}; {load()}")
    if args.one_pair_only:
        one_pair_section(args, model, {k: str(v) for k, v in rows[0].files.items()}, with_torch=not args.no_torch)
        return

    # --- batched forward against the compute limit
    raws = [fast.load_inputs(r.files) for r in rows[: args.batch]]
    batch = fast.to_batch(raws)
    n = len(raws)
    flops, needed = model_flops(slow.model, batch)
    probe, ort_s = 0.0, float("inf")
    for _ in range(5):  # interleaved rounds: the probe and the forward see the same states of the machine,
        probe = max(probe, matmul_flops())  # and the forward is timed as often as the probe (60 runs)
        ort_s = min(ort_s, best_seconds(lambda: fast.predict_arrays(batch), 12))
    torch_s = best_seconds(lambda: slow.predict_arrays(batch), 5)
    limit = probe / flops
    ort_rate, torch_rate = n / ort_s, n / torch_s
    print(f"batched forward, batch {n}: onnxruntime {ort_rate:,.0f} pairs/s = {ort_rate / limit:.2f} x the compute "
          f"limit {limit:,.0f} pairs/s (sgemm probe {probe / 1e9:.1f} GFLOP/s, {flops / 1e6:.1f} MFLOP per pair; "
          f"target >= 0.8); {ort_rate / (probe / needed):.2f} x by the {needed / 1e6:.1f} MFLOP per pair that fall "
          f"on the input (not on zero padding); torch {torch_rate:,.0f} pairs/s "
          f"(onnxruntime {ort_rate / torch_rate:.1f} x torch; {load()})")
    if args.profile:
        forward_profile(fast.bundle.graph, batch, tmp, probe)
    if args.batch_sweep:
        batch_sweep(fast, fast.to_batch([fast.load_inputs(r.files) for r in rows[: max(SWEEP)]]), args.batch)
    if args.forward_only:
        return

    # --- one pair in process (and against the peers), then the p99 under competition
    files = {k: str(v) for k, v in rows[0].files.items()}
    one_pair_section(args, model, files, with_torch=not args.no_torch, contention_too=True)

    # --- whole process, bytecode cached as in an installed app
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPATH=str(ROOT), PYTHONPYCACHEPREFIX=str(tmp / "pycache"))
    cli = [sys.executable, "-m", "app.cli", "predict", *files.values()]
    cmds = {"pass": [sys.executable, "-c", "pass"],
            "ort": [sys.executable, "-c", "import onnxruntime, numpy"],
            "onnx": [*cli, "--model", str(model)]}
    if not args.no_torch:
        plain = save_bundle(tmp / "no-graph.safetensors", load_bundle(model).model, fast.manifest, graph=False)
        cmds["torch"] = [*cli, "--model", str(plain)]
    load_before = load()
    med = whole_process(cmds, args.processes, env)
    (pw, pc, _), (iw, ic, im), (ow, oc, om) = med["pass"], med["ort"], med["onnx"]
    print(f"whole process, medians of {args.processes} interleaved runs ({load_before} before, {load()} after): "
          f"`qmf predict IMAGE AUDIO` {ow:.3f} s wall, {oc:.3f} s CPU, {om:.0f} MB (target <= 0.5 s); "
          f"`python -c pass` {pw:.3f} s wall, {pc:.3f} s CPU; `python -c \"import onnxruntime, numpy\"` {iw:.3f} s "
          f"wall, {ic:.3f} s CPU, {im:.0f} MB; qmf predict = {ow / iw:.2f} x the import floor's wall time, "
          f"{ow - iw:+.3f} s beyond it")
    if "torch" in med:
        tw, tc, tm = med["torch"]
        print(f"    torch fallback (same weights, no graph): {tw:.2f} s wall, {tc:.2f} s CPU, {tm:.0f} MB "
              f"({tw / ow:.1f} x the ONNX path's wall time)")


if __name__ == "__main__":
    main()
