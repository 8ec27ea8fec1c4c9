"""QMF against the late-fusion rule per corruption pattern: only the image damaged, only the audio, or both.

    .venv/bin/python scripts/fusion_patterns.py --model resources/models/avmnist-qmf.safetensors [--model ...] \\
        [--manifest work/avmnist/val_small.csv] [--kinds image:gaussian,audio:white_noise] [--level 10] [--seeds 3]

The protocol (`qmf eval`) corrupts each input with probability 0.5, so its figure mixes four patterns. This
corrupts every pair in one pattern at a time (the same corruption streams as `qmf eval`'s conditions) and
prints, per pattern, the accuracy of QMF, of the late-fusion rule on the same branches, of each branch alone
and of the oracle (late fusion of the undamaged inputs only). Where QMF falls below the better branch alone,
the damaged input's weight overrode a partner that was right.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.data.manifest import read_manifest  # noqa: E402
from app.qmf.evaluate import decode_rows, parse_kinds, patterns  # noqa: E402
from app.qmf.predictor import Predictor  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--manifest", default=str(ROOT / "work" / "avmnist" / "val_small.csv"))
    ap.add_argument("--kinds", default="image:gaussian,audio:white_noise")
    ap.add_argument("--level", type=float, default=10.0)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    for path in args.model:
        pred = Predictor.load(path, backend="torch")
        names = list(pred.modalities)
        kinds = parse_kinds(args.kinds, pred)
        data = decode_rows(pred, read_manifest(args.manifest, modalities=names).rows)
        print(f"{Path(path).name}: {len(data.raws)} pairs x {args.seeds} seeds, level {args.level:g}, {args.kinds}")
        for row in patterns(pred, data, args.level, kinds, args.seeds):
            acc = {rule: 100 * v for rule, v in row["accuracy"].items()}
            alone = ", ".join(f"{m} alone {acc[m]:.2f}" for m in names)
            print(f"  damaged {'+'.join(row['damaged']):<12} QMF {acc['qmf']:.2f}  late rule {acc['late_fusion']:.2f} "
                  f"({acc['qmf'] - acc['late_fusion']:+.2f})  {alone}  oracle {acc['oracle']:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
