"""The model and demo samples a user gets: the bundled model must load, label every demo pair as its
samples.json says, and give a degraded input a lower quality score than the same input undegraded.

These are the pairs the app opens first, so a retrained bundle that breaks them is caught here."""

from __future__ import annotations

import json

import pytest

from app.qmf.bundle import default_model_path, resources_dir
from app.qmf.predictor import Predictor

SAMPLES = resources_dir() / "samples"


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    if not default_model_path().exists():
        pytest.fail(f"the bundled model is missing: {default_model_path()}")
    return Predictor.load(default_model_path())


@pytest.fixture(scope="module")
def shipped(predictor):
    pairs = json.loads((SAMPLES / "samples.json").read_text(encoding="utf-8"))
    results = {}
    for pair in pairs:
        files = {name: str(SAMPLES / rel) for name, rel in pair["files"].items()}
        results[pair["id"]] = (pair, predictor.predict_files(files))
    return results


def test_every_demo_pair_gets_its_expected_label(shipped) -> None:
    wrong = {pid: (pair["expected"], pred.label) for pid, (pair, pred) in shipped.items() if pred.label != pair["expected"]}
    assert len(shipped) >= 8
    assert not wrong, f"demo pairs labelled wrongly (expected, got): {wrong}"


def _degraded_input(pair: dict, clean: dict) -> str:
    """The one input whose file differs from the clean pair's."""
    changed = [name for name, rel in pair["files"].items() if rel != clean["files"][name]]
    assert len(changed) == 1, pair["id"]
    return changed[0]


def test_a_degraded_input_scores_lower_quality_than_the_same_input_clean(shipped) -> None:
    checked = []
    for pid, (pair, pred) in shipped.items():
        base = pid.split("-")[0]
        if base == pid or base not in shipped:
            continue
        clean_pair, clean_pred = shipped[base]
        name = _degraded_input(pair, clean_pair)
        other = next(n for n in pair["files"] if n != name)
        degraded_q, clean_q = pred.modalities[name].quality, clean_pred.modalities[name].quality
        assert degraded_q < clean_q, f"{pid}: {name} quality {degraded_q:.3f} is not below the clean {clean_q:.3f}"
        # the other input now carries more of the decision
        assert pred.modalities[other].share > clean_pred.modalities[other].share, pid
        checked.append(pid)
    assert len(checked) >= 4, checked


def test_the_bundled_model_is_small_and_credits_its_data(predictor) -> None:
    assert default_model_path().stat().st_size < 5 * 1024 * 1024, "the bundled weights must stay under 5 MB"
    credits = " ".join(predictor.manifest["provenance"]["credits"])
    assert "MNIST" in credits and "Free Spoken Digit Dataset" in credits


def test_foreign_demo_inputs_are_marked_unfamiliar_and_clean_ones_are_not(predictor, shipped) -> None:
    """The bundle is calibrated: a demo input that is not a digit / not speech gets the unfamiliar mark and
    the lower share; the clean demo pairs (drawn digits, synthetic voices never heard) get no mark."""
    assert predictor.calibration is not None, "the bundled model has no calibration table (scripts/train_bundled.py)"
    foreign = {pid: (pair, pred) for pid, (pair, pred) in shipped.items() if pair.get("foreign")}
    assert len(foreign) >= 2 and {pair["foreign"] for pair, _ in foreign.values()} == {"image", "audio"}
    for pid, (pair, pred) in foreign.items():
        name = pair["foreign"]
        other = next(n for n in pair["files"] if n != name)
        assert pred.modalities[name].unfamiliar is True, f"{pid}: {name} not marked unfamiliar"
        assert pred.modalities[other].unfamiliar is False, f"{pid}: the clean {other} is marked unfamiliar"
        assert pred.modalities[name].share < pred.modalities[other].share, pid
    clean = [pid for pid, (pair, _) in shipped.items() if "-" not in pid]
    assert len(clean) >= 6
    for pid in clean:
        marked = [n for n, r in shipped[pid][1].modalities.items() if r.unfamiliar]
        assert not marked, f"clean demo pair {pid}: {marked} marked unfamiliar"
