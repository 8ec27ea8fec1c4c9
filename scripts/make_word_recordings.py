"""Spoken words that are not digits, for the spoken_words foreign family (app/modalities/outliers.py).

    .venv/bin/python scripts/make_word_recordings.py [--out work/words] [--per-word 6]

Writes work/words/train/*.wav: every TRAIN_WORDS entry of scripts/tts.py spoken `--per-word` times, by
random TRAIN_* espeak-ng voices at a random speed and pitch and (where Flite is installed) by one of
Flite's voices, trimmed like FSDD or left with the synthesiser's pauses, at random. That folder is what
the bundle's recipe names in `[training.outliers] pools.audio.spoken_words`. Also writes
work/words/heldout/*.wav: every HELDOUT_WORDS entry spoken by HELDOUT_* voices only (never used in
training), which scripts/eval_foreign.py reads as the family's evaluation pool, and work/words/val/*.wav:
VALIDATION_WORDS by the same voices, for screening runs (eval_foreign.py --pool) without looking at the
held-out words. 8 kHz, 16-bit. Nothing
here is committed (work/ is git-ignored); a file that exists is kept, so a second run is quick, and a file
of an earlier word list is removed, so each folder holds what the lists say now.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tts import (  # noqa: E402
    FLITE_TRAIN_VOICES,
    HELDOUT_ACCENTS,
    HELDOUT_VARIANTS,
    HELDOUT_WORDS,
    TRAIN_ACCENTS,
    TRAIN_VARIANTS,
    TRAIN_WORDS,
    VALIDATION_WORDS,
    espeak_available,
    flite_available,
    synthesise,
    synthesise_flite,
)

ROOT = Path(__file__).resolve().parents[1]


def _slug(text: str) -> str:
    return text.replace(" ", "-")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "work" / "words")
    ap.add_argument("--per-word", type=int, default=6, help="training recordings per word (one of them Flite's, if installed)")
    ap.add_argument("--heldout-per-word", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not espeak_available():
        print("espeak-ng is not installed (apt-get install espeak-ng)", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    use_flite = flite_available()
    written: set[Path] = set()

    def record(path: Path, make: Callable[[], np.ndarray]) -> None:  # synthesise only what is not on disk yet; remember it either way
        if not path.exists():
            sf.write(path, make(), 8000, subtype="PCM_16")
        written.add(path)

    train, held, val = args.out / "train", args.out / "heldout", args.out / "val"
    for d in (train, held, val):
        d.mkdir(parents=True, exist_ok=True)
    for word in TRAIN_WORDS:
        for k in range(args.per_word):
            speed, pitch, trim = int(rng.integers(110, 200)), int(rng.integers(25, 80)), bool(rng.random() < 0.5)
            if use_flite and k == args.per_word - 1:
                voice = FLITE_TRAIN_VOICES[int(rng.integers(len(FLITE_TRAIN_VOICES)))]
                stretch, f0 = float(np.exp(rng.uniform(np.log(0.8), np.log(1.3)))), float(rng.uniform(85, 190))
                record(train / f"{_slug(word)}_flite-{voice}_{k}.wav",
                       partial(synthesise_flite, word, voice, stretch, f0, trim=trim))
                continue
            voice = f"{TRAIN_ACCENTS[int(rng.integers(len(TRAIN_ACCENTS)))]}+{TRAIN_VARIANTS[int(rng.integers(len(TRAIN_VARIANTS)))]}"
            record(train / f"{_slug(word)}_{voice}_{k}.wav", partial(synthesise, word, voice, speed, pitch, trim=trim))
    for folder, words in ((held, HELDOUT_WORDS), (val, VALIDATION_WORDS)):
        for w, word in enumerate(words):
            for k in range(args.heldout_per_word):
                voice = f"{HELDOUT_ACCENTS[(w + k) % len(HELDOUT_ACCENTS)]}+{HELDOUT_VARIANTS[(3 * w + k) % len(HELDOUT_VARIANTS)]}"
                speed, pitch, trim = int(rng.integers(110, 200)), int(rng.integers(25, 80)), bool(rng.random() < 0.5)
                record(folder / f"{_slug(word)}_{voice}_{k}.wav", partial(synthesise, word, voice, speed, pitch, trim=trim))
    for stale in (p for d in (train, held, val) for p in d.glob("*.wav") if p not in written):
        stale.unlink()
    print(f"{len(list(train.glob('*.wav')))} training recordings in {train}; {len(list(held.glob('*.wav')))} held-out "
          f"ones in {held}; {len(list(val.glob('*.wav')))} for screening in {val}" + ("" if use_flite else " (Flite not installed)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
