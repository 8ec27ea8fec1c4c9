"""Generated paired data for tests: no file comes from outside the repository.

Three classes. The image of class c is a bright bar (horizontal, vertical, diagonal) on black; the
sound of class c is a tone at a class-specific pitch. Both are easy, so either modality alone can
tell the class, which is what lets a test degrade one and watch the other take over.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

CLASSES = ["low", "mid", "high"]
TONES = {"low": 300.0, "mid": 800.0, "high": 1800.0}
SAMPLE_RATE = 8000


@dataclass
class SyntheticPairs:
    root: Path
    train_csv: Path
    val_csv: Path
    test_csv: Path
    labels: list[str]


def class_image(label: str, rng: np.random.Generator, size: int = 28) -> np.ndarray:
    img = np.zeros((size, size), np.float32)
    c = size // 2 + int(rng.integers(-4, 5))
    w = int(rng.integers(2, 4))
    if label == "low":
        img[c - w : c + w, 4:-4] = 255
    elif label == "mid":
        img[4:-4, c - w : c + w] = 255
    else:
        for i in range(4, size - 4):
            img[max(0, i - w) : i + w, i] = 255
    img += rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def class_sound(label: str, rng: np.random.Generator, seconds: float = 0.6) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f = TONES[label] * float(rng.uniform(0.95, 1.05))
    envelope = np.minimum(1.0, 8 * np.minimum(t, t[-1] - t) / seconds)
    wave = float(rng.uniform(0.3, 0.6)) * envelope * np.sin(2 * np.pi * f * t)
    return (wave + rng.normal(0, 0.005, t.shape)).astype(np.float32)


def write_pair(folder: Path, stem: str, label: str, rng: np.random.Generator) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    image_path = folder / f"{stem}.png"
    audio_path = folder / f"{stem}.wav"
    Image.fromarray(class_image(label, rng)).save(image_path)
    sf.write(audio_path, class_sound(label, rng), SAMPLE_RATE)
    return image_path, audio_path


def make_synthetic_pairs(root: Path, per_class: int = 24, seed: int = 0) -> SyntheticPairs:
    rng = np.random.default_rng(seed)
    paths = {}
    for split, n in (("train", per_class), ("val", max(3, per_class // 4)), ("test", max(3, per_class // 4))):
        rows = []
        for label in CLASSES:
            for i in range(n):
                stem = f"{split}_{label}_{i:03d}"
                img, wav = write_pair(root / split, stem, label, rng)
                rows.append({"id": stem, "image": img.relative_to(root).as_posix(),
                             "audio": wav.relative_to(root).as_posix(), "label": label})
        csv_path = root / f"{split}.csv"
        with open(csv_path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["id", "image", "audio", "label"])
            writer.writeheader()
            writer.writerows(rows)
        paths[split] = csv_path
    return SyntheticPairs(root, paths["train"], paths["val"], paths["test"], list(CLASSES))


TINY_RECIPE = {
    "name": "tiny-test-model",
    "labels": CLASSES,
    "modalities": [
        {"name": "image", "kind": "image", "preprocessing": {"size": [28, 28]},
         "encoder": {"channels": [8, 16], "hidden": 32, "dropout": 0.0}},
        {"name": "audio", "kind": "audio", "preprocessing": {"sample_rate": 8000, "duration": 0.6},
         "encoder": {"channels": [8, 16], "hidden": 32, "dropout": 0.0}},
    ],
    "training": {"epochs": 6, "batch_size": 16, "learning_rate": 0.01, "seed": 0, "patience": 6,
                 "augment": [{"modality": "image", "kinds": ["gaussian"], "levels": [0, 10], "probability": 0.3},
                             {"modality": "audio", "kinds": ["white_noise"], "levels": [0, 10], "probability": 0.3}]},
}


def train_tiny_model(pairs: SyntheticPairs, out: Path, **overrides) -> Path:
    """Train and save a tiny model in a few seconds; returns the bundle's path."""
    import copy

    from app.data.manifest import read_manifest
    from app.qmf.bundle import save_bundle
    from app.qmf.train import Recipe, bundle_manifest, train

    data = copy.deepcopy(TINY_RECIPE)
    data["training"].update(overrides)
    recipe = Recipe.from_dict(data)
    train_rows = read_manifest(pairs.train_csv, modalities=["image", "audio"]).rows
    val_rows = read_manifest(pairs.val_csv, modalities=["image", "audio"]).rows
    result = train(recipe, train_rows, val_rows, out=None, progress=False, log=lambda s: None)
    save_bundle(out, result.model, bundle_manifest(result, {"source": "generated test data"}))
    return out
