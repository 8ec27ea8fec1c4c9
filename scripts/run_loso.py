"""Leave-one-speaker-out for the audio branch: each FSDD speaker held out of training in turn.

    .venv/bin/python scripts/run_loso.py [--epochs 4 --samples-per-epoch 10000] [--speakers jackson,...]

For speaker S: training pairs = work/avmnist/train_tts.csv without S's recordings (synthetic voices
stay), validation = val_small.csv without S; a model is trained with the bundle's recipe (shorter
schedule, see the options) and then measured on ALL 500 of S's recordings (audio branch alone, each
recording once) and on test images paired with S's recordings (clean fused accuracy, unseen speaker).
Results go to work/loso/results.json and are merged into work/report_extra.json for the report.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SPEAKERS = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]


def speaker_of(audio: str) -> str | None:
    name = Path(audio).name
    parts = name[:-4].split("_")
    return parts[1] if len(parts) == 3 and "fsdd" in audio else None


def read(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["id", "image", "audio", "label"])
        w.writeheader()
        w.writerows(rows)


def rel(from_dir: Path, target: Path) -> str:
    import os

    return os.path.relpath(target, from_dir)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT / "work" / "avmnist")
    ap.add_argument("--fsdd", type=Path, default=ROOT.parent / "shared" / "data" / "fsdd" / "recordings")
    ap.add_argument("--out", type=Path, default=ROOT / "work" / "loso")
    ap.add_argument("--config", default=str(ROOT / "recipes" / "avmnist-qmf.toml"))
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--samples-per-epoch", type=int, default=10000)
    ap.add_argument("--speakers", help="comma-separated (default: every speaker in the data)")
    ap.add_argument("--test-pairs", type=int, default=2000)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from app.qmf.predictor import Predictor

    train_rows, val_rows, test_rows = read(args.data / "train_tts.csv"), read(args.data / "val_small.csv"), read(args.data / "test.csv")
    recs = sorted(args.fsdd.glob("*.wav"))
    speakers = sorted({r.name.split("_")[1] for r in recs})
    if args.speakers:
        speakers = args.speakers.split(",")
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for s in speakers:
        if s in results:
            print(f"{s}: done already", flush=True)
            continue
        d = args.out / s
        keep = lambda rows: [r for r in rows if speaker_of(r["audio"]) != s]  # noqa: E731
        write(d / "train.csv", [{**r, "audio": rel(d, (args.data / r["audio"]).resolve()), "image": rel(d, (args.data / r["image"]).resolve())} for r in keep(train_rows)])
        write(d / "val.csv", [{**r, "audio": rel(d, (args.data / r["audio"]).resolve()), "image": rel(d, (args.data / r["image"]).resolve())} for r in keep(val_rows)])
        mine = {dg: sorted(p for p in recs if p.name.startswith(f"{dg}_{s}_")) for dg in range(10)}
        rng = np.random.default_rng(0)
        pick = rng.choice(len(test_rows), size=min(args.test_pairs, len(test_rows)), replace=False)
        test = []
        for k, i in enumerate(pick):
            r = test_rows[i]
            pool = mine[int(r["label"])]
            test.append({**r, "image": rel(d, (args.data / r["image"]).resolve()), "audio": rel(d, pool[k % len(pool)])})
        write(d / "test.csv", test)
        model = d / "model.safetensors"
        if not model.exists():
            cmd = [sys.executable, str(ROOT / "scripts" / "train_bundled.py"), "--quiet", "--config", args.config,
                   "--manifest", str(d / "train.csv"), "--val", str(d / "val.csv"), "--out", str(model),
                   "--epochs", str(args.epochs), "--samples-per-epoch", str(args.samples_per_epoch), "--name", f"loso-{s}"]
            subprocess.run(cmd, check=True)
        p = Predictor.load(model)
        audio_m, image_m = p.modalities["audio"], p.modalities["image"]
        hits, n = 0, 0
        for dg in range(10):
            raws = [{"image": image_m.blank(), "audio": audio_m.load(f)} for f in mine[dg]]
            preds = p.predict_many(raws)
            hits += sum(pr.modalities["audio"].label == str(dg) for pr in preds)
            n += len(raws)
        fused_hits = 0
        for start in range(0, len(test), 250):
            chunk = test[start:start + 250]
            raws = [p.load_inputs({"image": d / r["image"], "audio": d / r["audio"]}) for r in chunk]
            preds = p.predict_many(raws)
            fused_hits += sum(pr.label == r["label"] for pr, r in zip(preds, chunk, strict=True))
        results[s] = {"audio_branch_accuracy": hits / n, "recordings": n,
                      "clean_fused_accuracy": fused_hits / len(test), "test_pairs": len(test),
                      "schedule": f"{args.epochs} epochs x {args.samples_per_epoch} samples"}
        print(s, results[s], flush=True)
        results_path.write_text(json.dumps(results, indent=1))
    extra_path = ROOT / "work" / "report_extra.json"
    extra = json.loads(extra_path.read_text()) if extra_path.exists() else {}
    extra["leave_one_speaker_out"] = results
    extra_path.write_text(json.dumps(extra, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
