"""Readable quality: percentile among clean validation inputs and the unfamiliar mark, stored in the bundle."""

import json
import math

import numpy as np
import pytest

from app.qmf.calibration import (
    build_calibration,
    is_unfamiliar,
    modality_table,
    percentile,
    percentiles,
    read_calibration,
    unfamiliar_marks,
)


def table(values, pct=1.0):
    return build_calibration({"image": np.asarray(values, float)}, "test", pct)["modalities"]["image"]


def test_percentile_reads_the_clean_distribution():
    t = table(np.arange(1, 1001) / 100.0)  # clean qualities 0.01 .. 10.00, uniform
    assert percentile(t, 5.005) == pytest.approx(50.0, abs=0.2)
    assert percentile(t, 0.1) == pytest.approx(0.9, abs=0.2)
    assert percentile(t, -3.0) == 0.0  # below every clean input
    assert percentile(t, 50.0) == 100.0
    assert percentile(t, float("nan")) == 0.0
    ps = [percentile(t, q) for q in np.linspace(-1, 11, 50)]
    assert all(b >= a for a, b in zip(ps, ps[1:], strict=False))  # monotone in the quality


def test_unfamiliar_mark_at_the_calibrated_percentile():
    t = table(np.arange(1, 1001) / 100.0, pct=1.0)
    assert t["unfamiliar_below"] == pytest.approx(0.1099, abs=1e-3)
    assert is_unfamiliar(t, 0.05) is True
    assert is_unfamiliar(t, 0.2) is False
    t5 = table(np.arange(1, 1001) / 100.0, pct=5.0)
    assert is_unfamiliar(t5, 0.3) is True  # a stricter threshold marks more
    with pytest.raises(ValueError, match="between 0 and 100"):
        build_calibration({"image": np.ones(10)}, "x", 0.0)


def test_no_calibration_means_no_percentile_and_no_mark():
    assert read_calibration({"name": "old"}) is None
    assert read_calibration({"calibration": {"version": 99}}) is None
    assert modality_table(None, "image") is None
    assert percentile(None, 1.0) is None and is_unfamiliar(None, 1.0) is None


def test_ties_in_the_table_do_not_break_interpolation():
    t = table([1.0] * 50 + [2.0] * 50)
    assert percentile(t, 1.0) == pytest.approx(percentile(t, 1.0))
    assert 0.0 < percentile(t, 1.5) < 100.0
    json.dumps(t)  # stored in a JSON manifest


def test_calibrated_bundle_shows_percentile_and_mark_and_old_bundles_keep_working(synthetic_pairs, tmp_path):
    from app.data.manifest import read_manifest
    from app.qmf.calibration import calibrate_bundle
    from app.qmf.predictor import Predictor
    from tests.synthetic import train_tiny_model

    path = train_tiny_model(synthetic_pairs, tmp_path / "m.safetensors", epochs=3)
    rows = read_manifest(synthetic_pairs.val_csv, modalities=["image", "audio"]).rows
    plain = Predictor.load(path).predict_files(rows[0].files)
    assert all(m.quality_percentile is None and m.unfamiliar is None for m in plain.modalities.values())
    assert plain.to_json()["modalities"]["image"]["unfamiliar"] is None

    out = tmp_path / "cal.safetensors"
    entry = calibrate_bundle(path, rows, "val.csv: clean pairs", out=out)
    assert entry["modalities"]["image"]["n"] == len(rows)
    predictor = Predictor.load(out)
    assert predictor.manifest["calibration"]["source"] == "val.csv: clean pairs"
    pred = predictor.predict_files(rows[0].files)
    img = pred.modalities["image"]
    assert 0.0 <= img.quality_percentile <= 100.0 and img.unfamiliar in (True, False)
    assert pred.to_json()["modalities"]["audio"]["quality_percentile"] == pred.modalities["audio"].quality_percentile
    # the quality itself is unchanged by calibration: the same weights
    assert img.quality == pytest.approx(plain.modalities["image"].quality)
    # an input whose quality is below every clean validation input gets the mark
    table_ = modality_table(predictor.calibration, "image")
    assert is_unfamiliar(table_, min(table_["quality"]) - 1.0) is True


def test_a_batch_of_qualities_gets_the_percentile_and_mark_each_gets_alone():
    """Results are marked a batch at a time (percentiles, unfamiliar_marks); each must read exactly what
    the one-quality rule written out here gives it: below the table 0, at or above its top 100, NaN and
    infinities 0 and unfamiliar, in between the interpolation over the last of each run of ties."""
    t = table(np.r_[np.linspace(0.0, 5.0, 60), [5.0] * 20, np.linspace(5.0, 9.0, 20)])
    q, p = np.asarray(t["quality"], float), np.asarray(t["percentiles"], float)
    keep = np.append(q[1:] > q[:-1], True)

    def alone(x: float) -> float:
        if not math.isfinite(x) or x < q[0]:
            return 0.0
        if x >= q[-1]:
            return 100.0
        return float(np.clip(np.interp(x, q[keep], p[keep]), 0.0, 100.0))

    xs = [*np.random.default_rng(0).uniform(-1.0, 10.0, 500).tolist(), *q.tolist(), float(t["unfamiliar_below"]),
          math.nan, math.inf, -math.inf, -0.0]
    assert percentiles(t, xs) == [alone(x) for x in xs]  # exactly, not approximately
    assert [percentile(t, x) for x in xs] == [alone(x) for x in xs]
    marks = unfamiliar_marks(t, xs)
    assert marks == [not math.isfinite(x) or x < float(t["unfamiliar_below"]) for x in xs]
    assert all(type(m) is bool for m in marks) and is_unfamiliar(t, math.nan) is True
