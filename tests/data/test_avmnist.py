"""Tests for app.data.avmnist on a tiny synthetic MNIST + FSDD folder (never the real data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from app.data.avmnist import (
    audio_split,
    build_avmnist,
    list_fsdd,
    load_mnist,
    main,
)
from app.data.idx import write_idx
from app.data.manifest import read_manifest

DIGITS = (0, 1, 2)
SPEAKERS = ("alice", "bob")


def make_data(root: Path, n_train: int = 30, n_test: int = 12, indices: range = range(50)) -> Path:
    """A miniature data folder: mnist/ idx files with digits 0-2, fsdd/ WAVs for two speakers."""
    rng = np.random.default_rng(1)
    mn = root / "mnist"
    mn.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.array([DIGITS[i % len(DIGITS)] for i in range(n)], dtype=np.uint8)
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        # Encode the label in a pixel so the test can check the PNG matches its label.
        images[:, 0, 0] = labels * 10
        write_idx(mn / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(mn / f"{prefix}-labels-idx1-ubyte.gz", labels)
    rec = root / "fsdd" / "recordings"
    rec.mkdir(parents=True)
    tone = np.zeros(80, dtype=np.float32)
    for d in DIGITS:
        for s in SPEAKERS:
            for i in indices:
                sf.write(rec / f"{d}_{s}_{i}.wav", tone, 8000, subtype="PCM_16")
    (rec / "README.md").write_text("not a recording")
    return root


def test_load_mnist_and_list_fsdd(tmp_path: Path) -> None:
    data = make_data(tmp_path / "data", indices=range(3))
    x, y = load_mnist(data, "train")
    assert x.shape == (30, 28, 28) and x.dtype == np.uint8 and y.dtype == np.int64
    assert load_mnist(data, "t10k")[0].shape == (12, 28, 28)
    with pytest.raises(ValueError):
        load_mnist(data, "dev")
    recs = list_fsdd(data)
    assert len(recs) == len(DIGITS) * len(SPEAKERS) * 3
    assert recs[0].speaker == "alice" and recs[0].digit == 0 and recs[0].index == 0
    assert [r.index for r in recs[:3]] == [0, 1, 2]
    assert audio_split(0) == audio_split(4) == "test"
    assert audio_split(5) == audio_split(44) == "train"
    assert audio_split(45) == audio_split(49) == "val"


def test_load_mnist_count_mismatch(tmp_path: Path) -> None:
    data = make_data(tmp_path / "data", indices=range(1))
    write_idx(data / "mnist" / "t10k-labels-idx1-ubyte.gz", np.zeros(3, dtype=np.uint8))
    with pytest.raises(ValueError, match="12 images but 3 labels"):
        load_mnist(data, "test")


def check_manifest(csv: Path, split_images: str) -> list:
    m = read_manifest(csv, ["image", "audio"], labels=[str(d) for d in range(10)])
    assert m.problems == []
    for r in m.rows:
        assert r.files["image"].is_file() and r.files["audio"].is_file()
        digit = int(r.files["audio"].name.split("_")[0])
        assert r.label == str(digit)
        assert r.files["image"].parent.name == r.label
        assert r.files["image"].parent.parent.name == split_images
        px = np.asarray(Image.open(r.files["image"]))
        assert px.shape == (28, 28) and px[0, 0] == digit * 10
    return m.rows


def audio_index(row) -> int:
    return int(row.files["audio"].stem.split("_")[2])


def test_build_avmnist(tmp_path: Path) -> None:
    data = make_data(tmp_path / "data")
    out = tmp_path / "out"
    res = build_avmnist(data, out, val_fraction=0.2, seed=3)
    assert res.counts == {"train": 24, "val": 6, "test": 12}
    assert res.images_written == 42 and res.images_skipped == 0

    train = check_manifest(out / "train.csv", "train")
    val = check_manifest(out / "val.csv", "train")
    test = check_manifest(out / "test.csv", "test")
    assert {r.id for r in train}.isdisjoint({r.id for r in val})
    assert {r.files["image"] for r in train}.isdisjoint({r.files["image"] for r in val})
    train_idx = {audio_index(r) for r in train}
    val_idx = {audio_index(r) for r in val}
    assert train_idx <= set(range(5, 45)) and val_idx <= set(range(45, 50))
    assert {audio_index(r) for r in test} <= set(range(5))
    # stratified validation: two of each digit's ten images
    assert sorted(r.label for r in val) == ["0", "0", "1", "1", "2", "2"]

    header = (out / "train.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == "id,image,audio,label"
    info = json.loads((out / "speakers.json").read_text(encoding="utf-8"))
    assert info["speakers"] == list(SPEAKERS) and info["holdout_speaker"] is None
    readme = (out / "README.txt").read_text(encoding="utf-8")
    assert "CC BY-SA 3.0" in readme and "CC BY-SA 4.0" in readme

    # Same seed -> same manifests; re-run skips the PNGs.
    before = (out / "train.csv").read_text(encoding="utf-8")
    res2 = build_avmnist(data, out, val_fraction=0.2, seed=3)
    assert res2.images_written == 0 and res2.images_skipped == 42
    assert (out / "train.csv").read_text(encoding="utf-8") == before


def test_build_avmnist_holdout_speaker(tmp_path: Path) -> None:
    data = make_data(tmp_path / "data")
    out = tmp_path / "out"
    res = build_avmnist(data, out, holdout_speaker="bob")
    assert res.counts["test_bob"] == 12
    for name in ("train", "val", "test"):
        rows = check_manifest(out / f"{name}.csv", "test" if name == "test" else "train")
        assert all("_bob_" not in r.files["audio"].name for r in rows)
    held = check_manifest(out / "test_bob.csv", "test")
    assert all("_bob_" in r.files["audio"].name for r in held)
    assert json.loads((out / "speakers.json").read_text())["holdout_speaker"] == "bob"
    # A later run without hold-out removes the stale test_bob.csv.
    build_avmnist(data, out)
    assert not (out / "test_bob.csv").exists()
    with pytest.raises(ValueError, match="unknown speaker"):
        build_avmnist(data, out, holdout_speaker="carol")


def test_build_avmnist_missing_pool_is_a_clear_error(tmp_path: Path) -> None:
    data = make_data(tmp_path / "data", indices=range(10))  # nothing in 45-49 for validation
    with pytest.raises(ValueError, match="no validation recordings of digit 0"):
        build_avmnist(data, tmp_path / "out")


def test_main_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_data(tmp_path / "data")
    assert main(["--data", str(data), "--out", str(tmp_path / "out")]) == 0
    assert "train.csv: 27 pairs" in capsys.readouterr().out
    assert main(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o2")]) == 1
    assert "error:" in capsys.readouterr().err
