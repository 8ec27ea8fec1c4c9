"""Font-drawn digits for training (TRAIN fonts only) and a manifest that adds them to the training pairs.

    .venv/bin/python scripts/make_font_training.py [--avmnist work/avmnist] [--out work/fonts]

Writes work/fonts/{digit}_{font}_{k}.png (drawn, warped and framed like MNIST by scripts/make_samples.py's
`draw_digit`) and work/avmnist/train_tts_fonts.csv (or --manifest NAME) = train_tts.csv plus one row per drawing, paired with a
random training recording of the same digit. The fonts are every installed TrueType/OpenType font of a
family that scripts/make_samples.py does NOT use for the demo samples and the drawn-digit measurement
(DejaVu, Free*, Liberation Sans), so the font-drawn accuracy is measured on type designs never drawn in
training. Nothing here is committed (work/ is git-ignored).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from make_samples import FONT_DIRS, draw_digit  # noqa: E402
from training_rows import files_by_label, read_rows, write_rows  # noqa: E402

# families of the measurement fonts (make_samples.FONT_NAMES): none of their faces is drawn for training
HELD_OUT_PREFIXES = ("DejaVu", "Free", "LiberationSans-", "DroidSans", "StandardSymbols", "D050000L")


def training_fonts() -> list[Path]:
    fonts = {}
    for d in FONT_DIRS + [Path("/usr/share/fonts/opentype")]:
        for p in sorted(d.rglob("*")):
            if p.suffix.lower() in (".ttf", ".otf") and not p.name.startswith(HELD_OUT_PREFIXES):
                fonts.setdefault(p.stem, p)
    return list(fonts.values())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--avmnist", type=Path, default=ROOT / "work" / "avmnist")
    ap.add_argument("--out", type=Path, default=ROOT / "work" / "fonts")
    ap.add_argument("--per-font", type=int, default=6, help="drawings per digit and font (random warps)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--manifest", default="train_tts_fonts.csv",
                    help="name of the manifest written next to train_tts.csv (the bundle: --per-font 15, then "
                         "--per-font 60 --manifest train_tts_fonts60.csv; docs/report/README.md, step 2b)")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    fonts = training_fonts()
    made = []
    for font in fonts:
        for digit in range(10):
            for k in range(args.per_font):
                path = args.out / f"{digit}_{font.stem}_{k}.png"
                if not path.exists():
                    draw_digit(digit, str(font), np.random.default_rng([args.seed, digit, k, len(made)])).save(path)
                made.append((path, digit))
    print(f"{len(made)} drawings from {len(fonts)} fonts in {args.out}: {', '.join(f.stem for f in fonts)}")
    rows = read_rows(args.avmnist / "train_tts.csv")
    by_digit = files_by_label(rows, "audio")
    extra = []
    for i, (path, digit) in enumerate(made):
        audios = by_digit[str(digit)]
        extra.append({"id": f"font{i:05d}", "image": str(Path("..") / ".." / path.relative_to(ROOT)),
                      "audio": audios[int(rng.integers(len(audios)))], "label": str(digit)})
    write_rows(args.avmnist / args.manifest, rows, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
