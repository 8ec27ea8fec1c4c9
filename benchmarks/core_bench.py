"""Speed of the core: one prediction in process, `qmf predict` as a whole process, evaluation throughput.

    .venv/bin/python benchmarks/core_bench.py [--model M] [--pairs 300]

Uses the bundled model when present (else trains the tiny test model) on generated pairs. Figures are
printed; nothing is asserted (the tests never time anything).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model file (default: bundled model, else a tiny model trained here)")
    parser.add_argument("--pairs", type=int, default=300, help="pairs for the throughput figures")
    parser.add_argument("--runs", type=int, default=200, help="repetitions for the in-process median")
    args = parser.parse_args()

    import torch

    from app.data.manifest import read_manifest
    from app.qmf import evaluate
    from app.qmf.bundle import default_model_path
    from app.qmf.predictor import Predictor
    from tests.synthetic import make_synthetic_pairs, train_tiny_model

    tmp = Path(tempfile.mkdtemp(prefix="qmf-bench-"))
    pairs = make_synthetic_pairs(tmp / "pairs", per_class=max(4, args.pairs // 3))
    model = Path(args.model) if args.model else default_model_path()
    if not model.exists():
        print(f"no model at {model}; training the tiny test model", file=sys.stderr)
        model = train_tiny_model(pairs, tmp / "tiny.safetensors", epochs=5)
    rows = read_manifest(pairs.train_csv, modalities=None).rows[: args.pairs]

    predictor = Predictor.load(model)
    if any(r.label not in predictor.labels for r in rows):  # the generated classes are not the model's:
        rows = [dataclasses.replace(r, label=predictor.labels[0]) for r in rows]  # throughput only
    files = dict(rows[0].files)
    predictor.predict_files(files)  # warm-up
    decode_predict, predict_only = [], []
    raw = predictor.load_inputs(files)
    for _ in range(args.runs):
        t0 = time.perf_counter()
        predictor.predict_files(files)
        decode_predict.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        predictor.predict(raw)
        predict_only.append(time.perf_counter() - t0)
    print(f"model: {predictor.name} ({model}), torch threads {torch.get_num_threads()}")
    print(f"in-process, one pair, decode + predict: median {1000 * statistics.median(decode_predict):.2f} ms "
          f"(p90 {1000 * sorted(decode_predict)[int(0.9 * len(decode_predict))]:.2f} ms, {args.runs} runs)")
    print(f"in-process, one pair, predict only (decoded): median {1000 * statistics.median(predict_only):.2f} ms")

    cmd = [sys.executable, "-m", "app.cli", "predict", "--model", str(model), "--json",
           *[f"--{k}={v}" for k, v in files.items()]]
    wall = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
        wall.append(time.perf_counter() - t0)
    print(f"whole process `qmf predict --json`: median {statistics.median(wall):.2f} s over 5 runs")

    t0 = time.perf_counter()
    for row in rows:
        predictor.load_inputs(row.files)
    decode_rate = len(rows) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    data = evaluate.decode_rows(predictor, rows)
    evaluate.protocol(predictor, data, levels=[5.0], seeds=1)
    eval_rate = len(rows) / (time.perf_counter() - t0)
    print(f"evaluation (decode + corrupt + predict, one level, one seed): {eval_rate:.0f} pairs/s; "
          f"decoding the same files alone: {decode_rate:.0f} pairs/s ({len(rows)} pairs)")


if __name__ == "__main__":
    main()
