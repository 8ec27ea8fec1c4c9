"""Synthesised spoken digits for training (espeak-ng, TRAIN_* voices only) and a manifest that adds them.

    .venv/bin/python scripts/make_tts_training.py [--avmnist work/avmnist] [--out work/tts]
    .venv/bin/python scripts/make_tts_training.py --flite-per-voice 12 --base train_tts_fonts60.csv \
        --manifest train_tts_fonts60_flite.csv      # Flite's four voices added to another manifest

Writes work/tts/train/{digit}_{voice}_{k}.wav (8 kHz, trimmed like FSDD) and
work/avmnist/train_tts.csv = train.csv plus rows pairing each synthetic recording with
`--images-per-recording` random MNIST training images of the same digit. Also writes
work/tts/heldout/... (HELDOUT_* voices, untrimmed) for measuring accuracy on unseen synthetic voices.
With `--accented-per-voice N`, foreign-accented digits (tts.py's ACCENT_SPELLINGS by TRAIN_LANGUAGES voices;
HELDOUT_LANGUAGES into the held-out folder), e.g. `--out work/tts_accented --manifest train_tts_accented.csv`.
With `--flite-per-voice N` it writes N recordings per digit of each of Flite's voices instead
(work/tts/train/{digit}_flite-{voice}_{k}.wav, random speaking rate) and adds those to `--base`.
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
from tts import (  # noqa: E402
    ACCENT_SPELLINGS,
    ACCENT_VARIANTS,
    FLITE_TRAIN_VOICES,
    HELDOUT_ACCENTS,
    HELDOUT_LANGUAGES,
    HELDOUT_VARIANTS,
    TRAIN_ACCENTS,
    TRAIN_LANGUAGES,
    TRAIN_VARIANTS,
    WORDS,
    accent_voice,
    synthesise,
    synthesise_flite,
)

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--avmnist", type=Path, default=ROOT / "work" / "avmnist")
    ap.add_argument("--out", type=Path, default=ROOT / "work" / "tts")
    ap.add_argument("--per-voice", type=int, default=2, help="recordings per digit and voice (random speed/pitch)")
    ap.add_argument("--images-per-recording", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--flite-per-voice", type=int, default=0,
                    help="N > 0: Flite's voices instead of espeak-ng's, N recordings per digit and voice")
    ap.add_argument("--accented-per-voice", type=int, default=0,
                    help="N > 0: foreign-accented digits (tts.py's TRAIN_LANGUAGES) instead, N recordings per digit and "
                         "voice, and HELDOUT_LANGUAGES' recordings in the held-out folder")
    ap.add_argument("--base", default="train.csv", help="the manifest the rows are added to (in --avmnist)")
    ap.add_argument("--manifest", default="train_tts.csv", help="the manifest written (in --avmnist)")
    args = ap.parse_args()
    args.out = args.out.absolute()  # the rows name the recordings relative to the project folder
    rng = np.random.default_rng(args.seed)
    train_dir, held_dir = args.out / "train", args.out / "heldout"
    train_dir.mkdir(parents=True, exist_ok=True)
    held_dir.mkdir(parents=True, exist_ok=True)
    if args.flite_per_voice > 0:
        made = flite_recordings(train_dir, args.flite_per_voice, rng)
        print(f"{len(made)} Flite training recordings in {train_dir}")
        add_rows(args, made, rng, prefix="flite")
        return 0
    if args.accented_per_voice > 0:
        made = accented_recordings(train_dir, held_dir, args.accented_per_voice, rng)
        print(f"{len(made)} foreign-accented training recordings in {train_dir}; held-out languages in {held_dir}")
        add_rows(args, made, rng, prefix="accent")
        return 0
    made = espeak_recordings(train_dir, [(v, v) for v in (f"{a}+{t}" for a in TRAIN_ACCENTS for t in TRAIN_VARIANTS)],
                             WORDS, args.per_voice, rng)
    heldout_recordings(held_dir, [(v, v) for v in (f"{a}+{t}" for a in HELDOUT_ACCENTS for t in HELDOUT_VARIANTS)], WORDS)
    print(f"{len(made)} training recordings in {train_dir}; held-out voices in {held_dir}")
    add_rows(args, made, rng, prefix="tts")
    return 0


def flite_recordings(train_dir: Path, per_voice: int, rng: np.random.Generator) -> list[tuple[Path, int]]:
    """`per_voice` recordings of every digit by each Flite training voice: speaking rate 0.8-1.3x
    (log-uniform); the diphone voice's pitch 85-190 Hz."""
    made = []
    for voice in FLITE_TRAIN_VOICES:
        for digit, word in enumerate(WORDS):
            for k in range(per_voice):
                stretch, f0 = float(np.exp(rng.uniform(np.log(0.8), np.log(1.3)))), float(rng.uniform(85, 190))
                path = train_dir / f"{digit}_flite-{voice}_{k}.wav"
                if not path.exists():
                    sf.write(path, synthesise_flite(word, voice, stretch, f0, trim=True), 8000, subtype="PCM_16")
                made.append((path, digit))
    return made


def espeak_recordings(train_dir: Path, voices: list[tuple[str, str]], words: list[str], per_voice: int,
                      rng: np.random.Generator) -> list[tuple[Path, int]]:
    """`per_voice` recordings of every digit (`words[d]` spoken) by each espeak-ng voice of `voices` ((file name
    part, voice) pairs), random speed and pitch, trimmed like FSDD: {digit}_{name}_{k}.wav; files already there
    are kept (the draws are made all the same, so the same seed names the same recordings)."""
    made = []
    for name, voice in voices:
        for digit, word in enumerate(words):
            for k in range(per_voice):
                speed, pitch = int(rng.integers(110, 200)), int(rng.integers(25, 80))
                path = train_dir / f"{digit}_{name}_{k}.wav"
                if not path.exists():
                    sf.write(path, synthesise(word, voice, speed, pitch, trim=True), 8000, subtype="PCM_16")
                made.append((path, digit))
    return made


def heldout_recordings(held_dir: Path, voices: list[tuple[str, str]], words: list[str]) -> None:
    """One untrimmed recording of every digit by each held-out voice, at espeak-ng's default speed and pitch:
    {digit}_{name}_0.wav."""
    for name, voice in voices:
        for digit, word in enumerate(words):
            path = held_dir / f"{digit}_{name}_0.wav"
            if not path.exists():
                sf.write(path, synthesise(word, voice, 150, 50, trim=False), 8000, subtype="PCM_16")


def accented_recordings(train_dir: Path, held_dir: Path, per_voice: int, rng: np.random.Generator) -> list[tuple[Path, int]]:
    """`per_voice` recordings of every digit, respelled (ACCENT_SPELLINGS), by each TRAIN_LANGUAGES voice and
    variant; one per HELDOUT_LANGUAGES voice and variant into `held_dir`. File names:
    {digit}_accent-{language}[+{variant}]_{k}.wav."""
    def voices(languages: list[str]) -> list[tuple[str, str]]:
        return [(f"accent-{accent_voice(lang, v)}", accent_voice(lang, v)) for lang in languages for v in ACCENT_VARIANTS]

    made = espeak_recordings(train_dir, voices(TRAIN_LANGUAGES), ACCENT_SPELLINGS, per_voice, rng)
    heldout_recordings(held_dir, voices(HELDOUT_LANGUAGES), ACCENT_SPELLINGS)
    return made


def add_rows(args: argparse.Namespace, made: list[tuple[Path, int]], rng: np.random.Generator, prefix: str) -> None:
    """`--base` plus rows pairing each recording with `--images-per-recording` random training images
    of the same digit (train.csv's), written to `--manifest`."""
    rows = read_rows(args.avmnist / args.base)
    by_digit = files_by_label(read_rows(args.avmnist / "train.csv"), "image")
    extra = []
    for i, (path, digit) in enumerate(made):
        images = by_digit[str(digit)]
        for j in range(args.images_per_recording):
            img = images[int(rng.integers(len(images)))]
            extra.append({"id": f"{prefix}{i:05d}_{j}", "image": img,
                          "audio": str(Path("..") / ".." / path.relative_to(ROOT)), "label": str(digit)})
    write_rows(args.avmnist / args.manifest, rows, extra)


if __name__ == "__main__":
    sys.exit(main())
