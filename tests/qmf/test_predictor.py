"""The predictor: the same pair gives the same answer however it arrives; inputs are checked and named."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from app.data.manifest import read_manifest
from app.modalities import InputError
from app.qmf.predictor import Predictor


@pytest.fixture(scope="module")
def predictor(tiny_model):
    return Predictor.load(tiny_model)


@pytest.fixture(scope="module")
def test_rows(synthetic_pairs):
    return read_manifest(synthetic_pairs.test_csv, modalities=["image", "audio"]).rows


def test_a_pair_from_files_and_from_raw_arrays_gets_the_same_answer(predictor, test_rows):
    for row in test_rows:
        from_files = predictor.predict_files(row.files)
        arrays = {"image": np.asarray(Image.open(row.files["image"])),
                  "audio": sf.read(row.files["audio"], dtype="float32")[0]}
        from_arrays = predictor.predict(arrays)
        assert from_arrays.label == from_files.label
        assert from_arrays.probabilities == pytest.approx(from_files.probabilities, abs=1e-6)
        for name in ("image", "audio"):
            assert from_arrays.modalities[name].quality == pytest.approx(from_files.modalities[name].quality, abs=1e-6)
        assert from_files.modalities["image"].file == str(row.files["image"])


def test_a_batch_gives_each_pair_the_answer_it_gets_alone(predictor, test_rows):
    raws = [predictor.load_inputs(r.files) for r in test_rows]
    together = predictor.predict_many(raws)
    for raw, pred in zip(raws, together, strict=True):
        alone = predictor.predict(raw)
        assert alone.label == pred.label
        assert alone.probabilities == pytest.approx(pred.probabilities, abs=1e-5)
        assert alone.late_fusion_probabilities == pytest.approx(pred.late_fusion_probabilities, abs=1e-5)


def test_an_input_left_out_is_blank_and_the_other_carries_the_answer(predictor, test_rows):
    right = 0
    for row in test_rows:
        pred = predictor.predict_files({"image": row.files["image"]})
        assert pred.modalities["audio"].file is None
        right += pred.label == row.label
    assert right >= 0.8 * len(test_rows)  # the tiny model reads the image bars; silence is not a digit


def test_degrading_is_repeatable_and_leaves_the_decoded_pair_alone(predictor, test_rows):
    raw = predictor.load_inputs(test_rows[0].files)
    original = {k: v.copy() for k, v in raw.items()}
    a = predictor.corrupt(raw, [("image", "gaussian", 8.0)], seed=4)
    b = predictor.corrupt(raw, [("image", "gaussian", 8.0)], seed=4)
    c = predictor.corrupt(raw, [("image", "gaussian", 8.0)], seed=5)
    assert np.array_equal(a["image"], b["image"]) and not np.array_equal(a["image"], c["image"])
    assert np.array_equal(a["audio"], raw["audio"])
    assert all(np.array_equal(raw[k], original[k]) for k in raw)
    with pytest.raises(KeyError, match="voice"):
        predictor.corrupt(raw, [("voice", "white_noise", 5.0)])


def test_bad_inputs_are_named(predictor, test_rows, tmp_path):
    with pytest.raises(KeyError, match=r"no modality 'caption'.*\['image', 'audio'\]"):
        predictor.load_inputs({"caption": "x.txt"})
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(InputError) as err:
        predictor.load_inputs({"image": broken, "audio": test_rows[0].files["audio"]})
    assert str(broken) in str(err.value) and "\n" not in str(err.value)


def test_the_json_shares_and_probabilities_add_up(predictor, test_rows):
    data = predictor.predict_files(test_rows[0].files).to_json()
    assert sum(data["probabilities"]) == pytest.approx(1.0, abs=1e-5)
    assert sum(m["share"] for m in data["modalities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert sum(data["late_fusion"]["probabilities"]) == pytest.approx(1.0, abs=1e-5)
    assert data["label"] == data["labels"][data["index"]] and data["model"]["sha256"] == predictor.sha256


def test_a_tie_goes_to_the_first_class_and_nan_counts_as_the_largest(predictor, test_rows):
    """The labels of a batch are read a batch at a time (np.argmax): a tie is the first of the tied
    classes, a NaN probability wins (as a result the analyst can see is broken, not a silent pick)."""
    raws = [predictor.load_inputs(r.files) for r in test_rows[:3]]
    numbers = predictor.predict_arrays(predictor.to_batch(raws))
    k = len(predictor.labels)
    numbers["fused"] = np.full((3, k), 1.0 / k, np.float32)  # pair 0: every class tied
    numbers["fused"][1, :] = 0.1
    numbers["fused"][1, k - 1] = 0.5  # pair 1: the last is largest
    numbers["fused"][2, 2] = np.nan  # pair 2: a NaN
    image = numbers["per_modality"]["image"]
    image[0] = 0.0
    image[0, [k - 2, k - 1]] = 0.5  # a tie between the last two classes
    preds = predictor._predictions(numbers, 3, None, 0.0)
    assert [p.index for p in preds] == [0, k - 1, 2]
    assert [p.label for p in preds] == [predictor.labels[0], predictor.labels[k - 1], predictor.labels[2]]
    assert preds[0].modalities["image"].index == k - 2 and preds[0].modalities["image"].probability == 0.5
