"""Synthesised spoken digits for training (espeak-ng, TRAIN_* voices only) and a manifest that adds them.

    .venv/bin/python scripts/make_tts_training.py [--avmnist work/avmnist] [--out work/tts]

Writes work/tts/train/{digit}_{voice}_{k}.wav (8 kHz, trimmed like FSDD) and
work/avmnist/train_tts.csv = train.csv plus rows pairing each synthetic recording with
`--images-per-recording` random MNIST training images of the same digit. Also writes
work/tts/heldout/... (HELDOUT_* voices, untrimmed) for measuring accuracy on unseen synthetic voices.
Nothing here is committed (work/ is git-ignored).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training_rows import files_by_label, read_rows, write_rows  # noqa: E402
from tts import HELDOUT_ACCENTS, HELDOUT_VARIANTS, TRAIN_ACCENTS, TRAIN_VARIANTS, WORDS, synthesise  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--avmnist", type=Path, default=ROOT / "work" / "avmnist")
    ap.add_argument("--out", type=Path, default=ROOT / "work" / "tts")
    ap.add_argument("--per-voice", type=int, default=2, help="recordings per digit and voice (random speed/pitch)")
    ap.add_argument("--images-per-recording", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    train_dir, held_dir = args.out / "train", args.out / "heldout"
    train_dir.mkdir(parents=True, exist_ok=True)
    held_dir.mkdir(parents=True, exist_ok=True)
    made: list[tuple[Path, int]] = []
    for accent in TRAIN_ACCENTS:
        for variant in TRAIN_VARIANTS:
            for digit, word in enumerate(WORDS):
                for k in range(args.per_voice):
                    speed, pitch = int(rng.integers(110, 200)), int(rng.integers(25, 80))
                    path = train_dir / f"{digit}_{accent}+{variant}_{k}.wav"
                    if not path.exists():
                        sf.write(path, synthesise(word, f"{accent}+{variant}", speed, pitch, trim=True), 8000, subtype="PCM_16")
                    made.append((path, digit))
    for accent in HELDOUT_ACCENTS:
        for variant in HELDOUT_VARIANTS:
            for digit, word in enumerate(WORDS):
                path = held_dir / f"{digit}_{accent}+{variant}_0.wav"
                if not path.exists():
                    sf.write(path, synthesise(word, f"{accent}+{variant}", 150, 50, trim=False), 8000, subtype="PCM_16")
    print(f"{len(made)} training recordings in {train_dir}; held-out voices in {held_dir}")
    # extra manifest rows
    rows = read_rows(args.avmnist / "train.csv")
    by_digit = files_by_label(rows, "image")
    extra = []
    for i, (path, digit) in enumerate(made):
        images = by_digit[str(digit)]
        for j in range(args.images_per_recording):
            img = images[int(rng.integers(len(images)))]
            extra.append({"id": f"tts{i:05d}_{j}", "image": img,
                          "audio": str(Path("..") / ".." / path.relative_to(ROOT)), "label": str(digit)})
    write_rows(args.avmnist / "train_tts.csv", rows, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
