"""Build AV-MNIST-style image+audio pairs from MNIST and the Free Spoken Digit Dataset.

AV-MNIST pairs a handwritten digit with a spoken recording of the same digit.
The two sources are independent, so a pair is just "same label"; the trainer
re-pairs within a label every epoch. This module writes the images once as PNG
files and writes manifests (``train.csv``, ``val.csv``, ``test.csv``) whose audio
cells point at the original FSDD WAV files.

Splits keep evaluation honest:

* images: MNIST train (minus a per-digit validation subset) for train/val, MNIST
  t10k for test;
* audio: FSDD's official test recordings (index 0-4) only in test; of the official
  training recordings, index 45-49 are held out for validation and the rest
  (5-44, and any index >= 50 in larger FSDD versions) are for training, so
  validation never hears a training recording;
* ``holdout_speaker`` removes one speaker from every pool and writes
  ``test_<speaker>.csv`` with all of that speaker's recordings, to measure
  accuracy on a voice the model has never heard.

Run ``python -m app.data.avmnist [--data DIR] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from app.data.idx import read_idx, write_idx
from app.data.manifest import PairRow, write_manifest
from app.util.files import atomic_path

__all__ = [
    "FsddRecording",
    "AvmnistBuild",
    "audio_split",
    "build_avmnist",
    "default_data_dir",
    "default_out_dir",
    "list_fsdd",
    "load_mnist",
    "main",
    "read_idx",
    "write_idx",
]

REPO_ROOT = Path(__file__).resolve().parents[2]

_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

_FSDD_NAME = re.compile(r"^(\d)_([A-Za-z0-9-]+)_(\d+)\.wav$", re.IGNORECASE)

TEST_AUDIO_INDICES = range(0, 5)  # FSDD's official test set
VAL_AUDIO_INDICES = range(45, 50)  # held out from FSDD's training set for validation


def default_data_dir() -> Path:
    """``shared/data`` next to the repository (where the project keeps downloaded data)."""
    return REPO_ROOT.parent / "shared" / "data"


def default_out_dir() -> Path:
    """``work/avmnist`` inside the repository (git-ignored)."""
    return REPO_ROOT / "work" / "avmnist"


def load_mnist(data_dir: str | os.PathLike[str], split: str) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST images (uint8 [N,28,28]) and labels (int64 [N]) for ``train`` or ``test``.

    ``data_dir`` is the folder holding ``mnist/`` (and ``fsdd/``).
    """
    key = {"t10k": "test"}.get(split, split)
    if key not in _MNIST_FILES:
        raise ValueError(f"unknown MNIST split {split!r} (use 'train' or 'test')")
    img_name, lab_name = _MNIST_FILES[key]
    folder = Path(data_dir) / "mnist"
    images = read_idx(folder / img_name)
    labels = read_idx(folder / lab_name)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"{folder / img_name}: expected uint8 images [N,H,W], got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1:
        raise ValueError(f"{folder / lab_name}: expected a 1-D label array, got shape {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{folder}: {len(images)} images but {len(labels)} labels in the {key} split")
    labels = labels.astype(np.int64)
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{folder / lab_name}: labels outside 0-9")
    return images, labels


# --------------------------------------------------------------------------- FSDD


@dataclass(frozen=True)
class FsddRecording:
    """One FSDD recording, parsed from its ``{digit}_{speaker}_{index}.wav`` name."""

    path: Path
    digit: int
    speaker: str
    index: int


def list_fsdd(data_dir: str | os.PathLike[str]) -> list[FsddRecording]:
    """List ``data_dir/fsdd/recordings/*.wav``, sorted by (speaker, digit, index).

    Files whose names do not follow the FSDD pattern are skipped (there are none
    in the real dataset), so a stray file cannot inject a wrong label.
    """
    folder = Path(data_dir) / "fsdd" / "recordings"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: FSDD recordings folder not found")
    out: list[FsddRecording] = []
    with os.scandir(folder) as it:
        for entry in it:
            m = _FSDD_NAME.match(entry.name)
            if m and entry.is_file():
                out.append(FsddRecording(Path(entry.path).absolute(), int(m[1]), m[2], int(m[3])))
    out.sort(key=lambda r: (r.speaker, r.digit, r.index))
    return out


def audio_split(index: int) -> str:
    """Which split a recording index belongs to: 'test' (0-4), 'val' (45-49) or 'train'."""
    if index in TEST_AUDIO_INDICES:
        return "test"
    if index in VAL_AUDIO_INDICES:
        return "val"
    return "train"


# --------------------------------------------------------------------------- build


@dataclass
class AvmnistBuild:
    """What :func:`build_avmnist` wrote, for callers and for the progress report."""

    out_dir: Path
    manifests: dict[str, Path] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    images_written: int = 0
    images_skipped: int = 0
    speakers: list[str] = field(default_factory=list)
    holdout_speaker: str | None = None
    seconds: float = 0.0


def _write_pngs(
    images: np.ndarray, labels: np.ndarray, folder: Path, log: Callable[[str], None]
) -> tuple[list[Path], int, int]:
    """Write ``folder/<label>/<n>.png`` for every image, skipping files that exist.

    Files are written under a temporary name and renamed, so an interrupted run
    never leaves a truncated PNG that a re-run would then skip.
    """
    paths: list[Path] = []
    existing: dict[int, set[str]] = {}
    for d in np.unique(labels):
        sub = folder / str(int(d))
        sub.mkdir(parents=True, exist_ok=True)
        existing[int(d)] = {e.name for e in os.scandir(sub) if e.is_file()}
    written = skipped = 0
    total = len(images)
    step = max(1, total // 5)
    for n in range(total):
        d = int(labels[n])
        name = f"{n}.png"
        p = folder / str(d) / name
        paths.append(p)
        if name in existing[d]:
            skipped += 1
        else:
            with atomic_path(p) as tmp:
                Image.fromarray(np.ascontiguousarray(images[n])).save(tmp, format="PNG")
            written += 1
        if (n + 1) % step == 0 and total >= 1000:
            log(f"  {folder.name}: {n + 1}/{total} images")
    return paths, written, skipped


def _assign_audio(
    labels: np.ndarray, pools: dict[int, list[FsddRecording]], rng: np.random.Generator, what: str
) -> list[FsddRecording]:
    """Pick a recording of the same digit for each image.

    Within a digit every recording is used equally often (a shuffled pool is
    cycled), which keeps the pairing balanced while staying random.
    """
    chosen: list[FsddRecording | None] = [None] * len(labels)
    for d in np.unique(labels):
        d = int(d)
        pool = pools.get(d, [])
        idx = np.flatnonzero(labels == d)
        if not pool:
            raise ValueError(f"no {what} recordings of digit {d} to pair with {len(idx)} images")
        reps = -(-len(idx) // len(pool))
        order = np.concatenate([rng.permutation(len(pool)) for _ in range(reps)])[: len(idx)]
        for i, k in zip(idx, order, strict=True):
            chosen[i] = pool[k]
    return [c for c in chosen if c is not None]


def _pools(recs: list[FsddRecording]) -> dict[int, list[FsddRecording]]:
    pools: dict[int, list[FsddRecording]] = {}
    for r in recs:
        pools.setdefault(r.digit, []).append(r)
    return pools


_README = """\
AV-MNIST-style pairs built by QMF Studio (app/data/avmnist.py)
=============================================================

Images: MNIST handwritten digits (Y. LeCun, C. Cortes, C. J. C. Burges),
licensed CC BY-SA 3.0. Written here as PNG files images/<split>/<label>/<n>.png,
n = index in the original idx file.

Audio: Free Spoken Digit Dataset (Zohar Jackson et al., doi:10.5281/zenodo.1342401),
licensed CC BY-SA 4.0. The manifests point at the original WAV files (8 kHz mono);
they are not copied here.

This derived collection is shared under CC BY-SA 4.0 with the attributions above.

Splits (seed {seed}, validation fraction {val_fraction}):
  train.csv  MNIST train images (minus validation) + FSDD recordings index 5-44
  val.csv    held-out MNIST train images            + FSDD recordings index 45-49
  test.csv   MNIST t10k images                       + FSDD recordings index 0-4 (official test)
{holdout}
An image and a recording form a pair only because they share a label; the
trainer may re-pair within a label every epoch.
"""


def build_avmnist(
    data_dir: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    holdout_speaker: str | None = None,
    log: Callable[[str], None] | None = None,
) -> AvmnistBuild:
    """Write AV-MNIST-style images and manifests into ``out_dir``.

    Args:
        data_dir: folder with ``mnist/`` idx .gz files and ``fsdd/recordings``.
        out_dir: where to write ``images/``, ``{train,val,test}.csv``,
            ``README.txt`` and ``speakers.json``.
        val_fraction: share of each digit's MNIST training images used for validation.
        seed: seed of the numpy Generator choosing the validation images and the pairing.
        holdout_speaker: remove this speaker from train/val/test audio and write
            ``test_<speaker>.csv`` pairing test images with all of their recordings.
        log: progress callback (``print`` from the command line); None is silent.

    PNG files that already exist are not rewritten, so a re-run (e.g. with another
    seed or held-out speaker) only rewrites the manifests.
    """
    t0 = time.perf_counter()
    say = log or (lambda _msg: None)
    data = Path(data_dir) if data_dir is not None else default_data_dir()
    out = Path(out_dir) if out_dir is not None else default_out_dir()
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)

    recs = list_fsdd(data)
    if not recs:
        raise ValueError(f"{data / 'fsdd' / 'recordings'}: no FSDD recordings found")
    speakers = sorted({r.speaker for r in recs})
    if holdout_speaker is not None and holdout_speaker not in speakers:
        raise ValueError(f"unknown speaker {holdout_speaker!r} (speakers: {', '.join(speakers)})")
    say(f"FSDD: {len(recs)} recordings, speakers: {', '.join(speakers)}")

    train_x, train_y = load_mnist(data, "train")
    test_x, test_y = load_mnist(data, "test")
    say(f"MNIST: {len(train_x)} training and {len(test_x)} test images")

    out.mkdir(parents=True, exist_ok=True)
    train_paths, w1, s1 = _write_pngs(train_x, train_y, out / "images" / "train", say)
    test_paths, w2, s2 = _write_pngs(test_x, test_y, out / "images" / "test", say)
    say(f"PNG files: {w1 + w2} written, {s1 + s2} already there")

    # Stratified validation subset: the same share of every digit.
    is_val = np.zeros(len(train_y), dtype=bool)
    for d in np.unique(train_y):
        idx = np.flatnonzero(train_y == d)
        k = int(round(len(idx) * val_fraction))
        is_val[rng.choice(idx, size=k, replace=False)] = True

    seen = [r for r in recs if r.speaker != holdout_speaker]
    pools = {s: _pools([r for r in seen if audio_split(r.index) == s]) for s in ("train", "val", "test")}

    def pairs(
        idx: np.ndarray,
        paths: list[Path],
        y: np.ndarray,
        pool: dict[int, list[FsddRecording]],
        split: str,
        what: str,
    ) -> list[PairRow]:
        audio = _assign_audio(y[idx], pool, rng, what)
        return [
            PairRow(
                line=i + 1,
                id=f"{split}{int(n):05d}",
                files={"image": paths[n], "audio": a.path},
                label=str(int(y[n])),
            )
            for i, (n, a) in enumerate(zip(idx, audio, strict=True))
        ]

    tr_idx = np.flatnonzero(~is_val)
    va_idx = np.flatnonzero(is_val)
    te_idx = np.arange(len(test_y))
    splits = {
        "train": pairs(tr_idx, train_paths, train_y, pools["train"], "train", "training"),
        "val": pairs(va_idx, train_paths, train_y, pools["val"], "train", "validation"),
        "test": pairs(te_idx, test_paths, test_y, pools["test"], "test", "test"),
    }
    if holdout_speaker is not None:
        held = _pools([r for r in recs if r.speaker == holdout_speaker])
        splits[f"test_{holdout_speaker}"] = pairs(
            te_idx, test_paths, test_y, held, "test", f"{holdout_speaker}'s"
        )

    result = AvmnistBuild(out_dir=out.absolute(), speakers=speakers, holdout_speaker=holdout_speaker)
    result.images_written, result.images_skipped = w1 + w2, s1 + s2
    for name, rows in splits.items():
        result.manifests[name] = write_manifest(out / f"{name}.csv", rows, ["image", "audio"])
        result.counts[name] = len(rows)
        n_audio = len({r.files["audio"] for r in rows})
        say(f"{name}.csv: {len(rows)} pairs using {n_audio} distinct recordings")
    stale = [p for p in out.glob("test_*.csv") if p.stem not in splits]
    for p in stale:  # a previous run's held-out speaker would otherwise look current
        p.unlink()

    per_speaker = {
        s: {
            "recordings": sum(r.speaker == s for r in recs),
            "role": "held out (test only)" if s == holdout_speaker else "train/val/test",
        }
        for s in speakers
    }
    info = {
        "speakers": speakers,
        "holdout_speaker": holdout_speaker,
        "per_speaker": per_speaker,
        "audio_indices": {"train": "5-44 (and >= 50)", "val": "45-49", "test": "0-4"},
        "seed": seed,
        "val_fraction": val_fraction,
        "counts": result.counts,
    }
    (out / "speakers.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    holdout_note = (
        f"  test_{holdout_speaker}.csv  MNIST t10k images + every recording of the held-out speaker "
        f"'{holdout_speaker}'\n  (that speaker is absent from train/val/test.csv)\n"
        if holdout_speaker
        else ""
    )
    (out / "README.txt").write_text(
        _README.format(seed=seed, val_fraction=val_fraction, holdout=holdout_note), encoding="utf-8"
    )
    result.seconds = time.perf_counter() - t0
    say(f"done in {result.seconds:.1f} s -> {out}")
    return result


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: ``python -m app.data.avmnist``."""
    ap = argparse.ArgumentParser(prog="python -m app.data.avmnist", description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=default_data_dir(), help="folder with mnist/ and fsdd/")
    ap.add_argument("--out", type=Path, default=default_out_dir(), help="output folder")
    ap.add_argument("--val-fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--holdout-speaker", default=None, help="leave this speaker out (writes test_<speaker>.csv)"
    )
    args = ap.parse_args(argv)
    try:
        build_avmnist(args.data, args.out, args.val_fraction, args.seed, args.holdout_speaker, log=print)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
