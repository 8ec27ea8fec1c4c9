"""Train a model from a recipe and write a bundle with provenance (dataset credits) in its manifest.

    .venv/bin/python scripts/train_bundled.py                         # the bundled model
    .venv/bin/python scripts/train_bundled.py --out work/models/late-s0.safetensors --fusion-loss late
    .venv/bin/python scripts/train_bundled.py --manifest work/loso/jackson/train.csv --val ... --out ...

The recipe's [training] entries can be overridden from the command line (comparison models are the
same recipe with one thing changed). The bundle's manifest gets `provenance.credits` (shown by
`qmf info` and the app's About box), `calibration` (clean-validation quality percentiles, measured on
--val right after training: app/qmf/calibration.py) and, later, `evaluation` figures from
scripts/make_report.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.data.manifest import read_manifest  # noqa: E402
from app.qmf.bundle import save_bundle  # noqa: E402
from app.qmf.calibration import calibrate_bundle  # noqa: E402
from app.qmf.train import Recipe, bundle_manifest, checkpoint_path, train  # noqa: E402

CREDITS = [
    "MNIST database of handwritten digits - Y. LeCun, C. Cortes, C. J. C. Burges (CC BY-SA 3.0)",
    "Free Spoken Digit Dataset (FSDD) - Zohar Jackson et al., doi:10.5281/zenodo.1342401, "
    "github.com/Jakobovski/free-spoken-digit-dataset (CC BY-SA 4.0); speakers jackson, nicolas, theo, yweweler, lucas",
    "Synthesised spoken digits made with espeak-ng (GPL-3.0 program; generated audio used as training data, not redistributed)",
]
WORD_CREDIT = ("Spoken words that are not digits, synthesised with espeak-ng and Flite (CMU speech synthesiser, BSD-style "
               "licence) by scripts/make_word_recordings.py: foreign inputs for outlier exposure, not redistributed")


def provenance(args: argparse.Namespace, train_rows: int, pools: dict[str, dict[str, str]]) -> dict:
    return {
        "credits": CREDITS + ([WORD_CREDIT] if any("spoken_words" in t for t in pools.values()) else []),
        "data": {
            "images": "MNIST train (minus a stratified 10% validation subset) / t10k for test",
            "audio": "FSDD recordings index 5-44 for training, 45-49 validation, 0-4 (official test split) for test; "
                     "plus espeak-ng synthesised digits (TRAIN voices of scripts/tts.py) when the manifest is train_tts.csv",
            "font_digits": "with a train_tts_fonts*.csv manifest: digits drawn with fonts of families not used by scripts/make_samples.py "
                           "(scripts/make_font_training.py), each paired with a training recording of the same digit",
            "pairing": "AV-MNIST style: each image with a recording of the same digit, re-paired every epoch",
            "foreign_words": "with [training.outliers] pools.audio.spoken_words: recordings of the TRAIN_WORDS of scripts/tts.py "
                             "by its TRAIN voices (espeak-ng, Flite), never a digit; HELDOUT_WORDS and voices kept for evaluation",
            "built_by": "python -m app.data.avmnist (+ scripts/make_tts_training.py, scripts/make_font_training.py, "
                        "scripts/make_word_recordings.py)",
        },
        "train_manifest": Path(args.manifest).name,
        "train_rows": train_rows,
        "val_manifest": Path(args.val).name if args.val else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "recipes" / "avmnist-qmf.toml"))
    ap.add_argument("--manifest", default=str(ROOT / "work" / "avmnist" / "train_tts_fonts60.csv"),
                    help="the bundle's: 60 font drawings per font and digit (docs/report/README.md, step 2b)")
    ap.add_argument("--val", default=str(ROOT / "work" / "avmnist" / "val_small.csv"))
    ap.add_argument("--out", default=str(ROOT / "resources" / "models" / "avmnist-qmf.safetensors"))
    ap.add_argument("--name", help="model name (default: the recipe's)")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--init-from", help="start from this bundle's weights instead of the recipe's init_from ('' = from scratch)")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--samples-per-epoch", type=int)
    ap.add_argument("--rank-weight", type=float)
    ap.add_argument("--ranking-target", choices=["history", "current"])
    ap.add_argument("--ranking-margin", choices=["official", "paper"])
    ap.add_argument("--fusion-loss", choices=["qmf", "late"])
    ap.add_argument("--no-corruption", action="store_true", help="train on clean pairs only")
    ap.add_argument("--threads", type=int, default=1, help="1 is fastest on a shared 2-core machine: 2 threads spin-wait on each other")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    recipe = Recipe.from_file(args.config)
    t = recipe.training
    for key in ("seed", "init_from", "epochs", "samples_per_epoch", "rank_weight", "ranking_target", "ranking_margin",
                "fusion_loss"):
        value = getattr(args, key)
        if value is not None:
            setattr(t, key, value)
    if args.no_corruption:
        t.augment = []
    if args.name:
        recipe.name = args.name
    names = [m.name for m in recipe.modalities]
    train_m = read_manifest(args.manifest, modalities=names, labels=recipe.labels)
    val_m = read_manifest(args.val, modalities=names, labels=recipe.labels) if args.val else None
    for p in train_m.problems + (val_m.problems if val_m else []):
        print(f"warning: skipped {p}", file=sys.stderr)
    out = Path(args.out)
    start = time.time()
    result = train(recipe, train_m.rows, val_m.rows if val_m else None, out=out, progress=not args.quiet,
                   log=lambda s: print(s, file=sys.stderr, flush=True))
    save_bundle(out, result.model, bundle_manifest(result, provenance(args, len(train_m.rows), t.outliers.pools)))
    if val_m is not None and val_m.rows:  # clean-validation quality percentiles and the unfamiliar-input threshold
        calibrate_bundle(out, val_m.rows, f"{Path(args.val).name}: clean pairs")
    ckpt = checkpoint_path(out)
    if ckpt.exists():
        ckpt.unlink()
    print(json.dumps({"out": str(out), "seconds": round(time.time() - start, 1), "best_epoch": result.best_epoch,
                      "validation": result.validation, "bytes": out.stat().st_size}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
