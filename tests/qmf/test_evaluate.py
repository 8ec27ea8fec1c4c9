"""Evaluation: the paper's protocol corrupts about half of each input independently; a corrupted input
lowers its own branch's accuracy and leaves the other branch's answers alone."""

from __future__ import annotations

import numpy as np
import pytest

from app.data.manifest import PairRow, read_manifest
from app.qmf.evaluate import auroc, corruption_masks, decode_rows, parse_kinds, patterns, protocol, sweep
from app.qmf.predictor import Predictor


@pytest.fixture(scope="module")
def predictor(tiny_model):
    return Predictor.load(tiny_model)


@pytest.fixture(scope="module")
def data(predictor, synthetic_pairs):
    return decode_rows(predictor, read_manifest(synthetic_pairs.test_csv, modalities=["image", "audio"]).rows)


def test_the_protocol_corrupts_about_half_of_each_input_independently():
    n = 8000
    masks = corruption_masks(["image", "audio"], n, 0.5, seed=0)
    image, audio = masks["image"], masks["audio"]
    assert abs(image.mean() - 0.5) < 0.02 and abs(audio.mean() - 0.5) < 0.02
    for share in ((image & audio).mean(), (image & ~audio).mean(), (~image & audio).mean(), (~image & ~audio).mean()):
        assert abs(share - 0.25) < 0.02
    again = corruption_masks(["image", "audio"], n, 0.5, seed=0)
    other = corruption_masks(["image", "audio"], n, 0.5, seed=1)
    assert np.array_equal(again["image"], image) and not np.array_equal(other["image"], image)


def test_a_corrupted_input_lowers_its_branch_and_leaves_the_other_branch_alone(predictor, data):
    clean, noisy = sweep(predictor, data, "image", "gaussian", [0, 10])
    assert clean["accuracy"]["image"] == 1.0  # the tiny model reads clean image bars without fault
    assert noisy["accuracy"]["image"] < clean["accuracy"]["image"] - 0.3
    assert noisy["accuracy"]["audio"] == clean["accuracy"]["audio"]
    assert noisy["quality_auroc"] is not None and clean["quality_auroc"] is None


def test_patterns_damage_only_the_named_inputs(predictor, data):
    rows = patterns(predictor, data, 10, {"image": "gaussian", "audio": "white_noise"}, seeds=2)
    assert [r["damaged"] for r in rows] == [["image"], ["audio"], ["image", "audio"]]
    by = {tuple(r["damaged"]): r["accuracy"] for r in rows}
    assert all(r["pairs"] == 2 * len(data.labels) for r in rows)
    # the undamaged branch reads as it does clean; the damaged one loses what the sweep says it loses
    clean = protocol(predictor, data, levels=[0], seeds=1)["levels"][0]["accuracy"]
    noisy_image = sweep(predictor, data, "image", "gaussian", [10])[0]["accuracy"]["image"]
    assert by[("image",)]["audio"] == clean["audio"]["mean"] and by[("audio",)]["image"] == clean["image"]["mean"]
    assert by[("image",)]["image"] < clean["image"]["mean"] - 0.3 and abs(by[("image",)]["image"] - noisy_image) < 0.2
    # with one input damaged the oracle is the clean branch alone
    assert by[("image",)]["oracle"] == by[("image",)]["audio"]
    with pytest.raises(ValueError, match="names the model's modalities"):
        patterns(predictor, data, 10, damaged=[["video"]])


def test_level_zero_is_the_clean_result_for_every_seed(predictor, data):
    result = protocol(predictor, data, levels=[0], seeds=2)
    level = result["levels"][0]
    assert result["pairs"] == len(data.labels)
    for rule in ("qmf", "late_fusion", "oracle", "image", "audio"):
        assert level["accuracy"][rule]["std"] == 0.0
    assert level["accuracy"]["qmf"]["mean"] == level["accuracy"]["oracle"]["mean"] == 1.0


def test_rows_that_cannot_be_scored_are_skipped_and_named(predictor, synthetic_pairs, tmp_path):
    good = read_manifest(synthetic_pairs.test_csv, modalities=["image", "audio"]).rows[0]
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....")
    rows = [good,
            PairRow(3, "unlabelled", dict(good.files), None),
            PairRow(4, "unknown", dict(good.files), "seven"),
            PairRow(5, "unreadable", {**good.files, "audio": broken}, good.label)]
    decoded = decode_rows(predictor, rows)
    assert len(decoded.raws) == 1 and decoded.labels.tolist() == [predictor.labels.index(good.label)]
    assert [s.split(":")[0] for s in decoded.skipped] == ["row 3 (unlabelled)", "row 4 (unknown)", "row 5 (unreadable)"]
    assert "no label" in decoded.skipped[0] and "'seven'" in decoded.skipped[1] and "broken.wav" in decoded.skipped[2]


def test_auroc_and_kind_parsing(predictor):
    assert auroc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert auroc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 0.0
    assert auroc(np.array([1.0, 1.0]), np.array([1.0])) == 0.5
    assert auroc(np.array([]), np.array([1.0])) is None
    assert parse_kinds("image:blur", predictor) == {"image": "blur", "audio": "white_noise"}
    with pytest.raises(ValueError, match="no corruption 'wobble'"):
        parse_kinds("image:wobble", predictor)
