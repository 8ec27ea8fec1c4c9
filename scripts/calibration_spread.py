"""How far the unfamiliar mark's threshold moves with the clean validation recordings it is computed from.

    .venv/bin/python scripts/calibration_spread.py --model resources/models/avmnist-qmf.safetensors [--model ...] \\
        [--calibration-manifest work/avmnist/val_small.csv] [--manifest work/avmnist/test.csv] \\
        [--resamples 300] [--json-out work/calibration_spread.json]

The threshold is the 1st percentile of the clean validation inputs' quality (app/qmf/calibration.py). The
audio side has only 250 distinct validation recordings (FSDD index 45-49 of five speakers), so the threshold
rests on the two or three lowest of them. For each model and modality this prints, on the DISTINCT inputs of
each manifest (a recording that several pairs share counts once):

* the threshold computed as `qmf calibrate` computes it (`build_calibration`) on the calibration inputs, and
  the share of clean test inputs below it (nominally the unfamiliar percentile, 1 %);
* the same after resampling the calibration inputs with replacement (`--resamples` times, fixed seed): the
  mean and standard deviation of that share, i.e. how much of a model's figure is the luck of its
  calibration set.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.data.manifest import read_manifest  # noqa: E402
from app.qmf.calibration import DEFAULT_UNFAMILIAR_PERCENTILE, build_calibration, clean_quality  # noqa: E402
from app.qmf.evaluate import decode_rows  # noqa: E402
from app.qmf.predictor import Predictor  # noqa: E402


def distinct_quality(pred: Predictor, manifest: Path) -> dict[str, np.ndarray]:
    """Each modality's clean quality on the manifest's distinct files of that modality."""
    rows = read_manifest(manifest, modalities=list(pred.modalities)).rows
    out = {}
    for name in pred.modalities:
        first = list({str(r.files[name]): r for r in reversed(rows)}.values())  # one row per distinct file
        out[name] = clean_quality(pred, decode_rows(pred, first).raws)[name]
    return out


def spread(cal: np.ndarray, test: np.ndarray, percentile: float, resamples: int, seed: int) -> dict:
    def threshold(values: np.ndarray) -> float:
        return build_calibration({"x": values}, "", percentile)["modalities"]["x"]["unfamiliar_below"]

    rng = np.random.default_rng(seed)
    boot = [float((test < threshold(rng.choice(cal, cal.size))).mean()) for _ in range(resamples)]
    shipped = threshold(cal)
    return {"calibration_inputs": int(cal.size), "test_inputs": int(test.size), "threshold": shipped,
            "test_below": float((test < shipped).mean()), "resampled_mean": float(np.mean(boot)),
            "resampled_std": float(np.std(boot))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--calibration-manifest", default=str(ROOT / "work" / "avmnist" / "val_small.csv"))
    ap.add_argument("--manifest", default=str(ROOT / "work" / "avmnist" / "test.csv"))
    ap.add_argument("--percentile", type=float, default=DEFAULT_UNFAMILIAR_PERCENTILE)
    ap.add_argument("--resamples", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json-out")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = {}
    for path in args.model:
        pred = Predictor.load(path, backend="torch")
        cal = distinct_quality(pred, Path(args.calibration_manifest))
        test = distinct_quality(pred, Path(args.manifest))
        result[path] = {m: spread(cal[m], test[m], args.percentile, args.resamples, args.seed) for m in cal}
        for m, s in result[path].items():
            print(f"{Path(path).name} {m}: {s['calibration_inputs']} calibration / {s['test_inputs']} test inputs; "
                  f"threshold {s['threshold']:.3f}; clean test inputs below it {100 * s['test_below']:.1f} % "
                  f"(nominal {args.percentile:g} %); resampled calibration {100 * s['resampled_mean']:.2f} "
                  f"+- {100 * s['resampled_std']:.2f} %", flush=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
