"""Recipes: read and checked before any data is decoded; `base` lets an experiment state only what differs."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.modalities.augment import AudioAugment
from app.qmf.recipe import Recipe, from_table
from tests.synthetic import TINY_RECIPE

ROOT = Path(__file__).resolve().parents[2]


def full_recipe():
    data = copy.deepcopy(TINY_RECIPE)
    data["training"]["modality_augment"] = {"audio": {"probability": 0.8, "formant": [0.9, 1.1], "tempo": [0.9, 1.1]},
                                            "image": {"rotate": 5.0}}
    return data


def write(path, data):
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_a_recipe_with_a_base_reads_like_the_same_recipe_written_out(tmp_path):
    base = write(tmp_path / "base.json", full_recipe())
    (tmp_path / "exp").mkdir()
    child = write(tmp_path / "exp" / "child.json", {
        "base": "../base.json",
        "modalities": [{"name": "audio", "preprocessing": {"utterance_norm_channel": True}}],
        "training": {"epochs": 2, "modality_augment": {"audio": {"tempo": []}}},
    })
    expected = full_recipe()
    expected["modalities"][1]["preprocessing"]["utterance_norm_channel"] = True
    expected["training"]["epochs"] = 2
    expected["training"]["modality_augment"]["audio"]["tempo"] = []
    got = Recipe.from_file(child)
    assert got.to_dict() == Recipe.from_dict(expected).to_dict()
    # untouched entries come from the base: the image input, its encoder, the corruption augmentation
    assert [m.name for m in got.modalities] == ["image", "audio"]
    assert got.modalities[1].preprocessing["sample_rate"] == 8000
    assert got.training.augment == Recipe.from_file(base).training.augment
    assert got.training.modality_augment["audio"].tempo is None
    assert got.training.modality_augment["audio"].formant == (0.9, 1.1)


def test_a_list_without_names_replaces_the_base_list(tmp_path):
    write(tmp_path / "base.json", full_recipe())
    child = write(tmp_path / "child.json", {
        "base": "base.json",
        "training": {"augment": [{"modality": "audio", "kinds": ["missing"]}]},
    })
    assert [(a.modality, a.kinds) for a in Recipe.from_file(child).training.augment] == [("audio", ["missing"])]


@pytest.mark.parametrize(("change", "message"), [
    ({"modality_augment": {"audio": {"formnt": [0.9, 1.1]}}}, r"unknown audio augmentation settings \['formnt'\]"),
    ({"modality_augment": {"audio": {"speed": [1.25, 0.8]}}}, "speed: low 1.25 is above high 0.8"),
    ({"modality_augment": {"audio": {"probability": 2}}}, "probability between 0 and 1"),
    ({"modality_augment": {"voice": {"speed": [0.9, 1.1]}}}, "no input named 'voice'"),
    ({"augment": [{"modality": "image", "kinds": ["gausian"]}]}, r"unknown image corruptions \['gausian'\]"),
    ({"augment": [{"modality": "image", "kinds": ["gaussian"], "levels": [0, 11]}]}, "levels must satisfy"),
    ({"epoch": 3}, r"\[training\]: unknown entries \['epoch'\]"),
    ({"augment": [{"modality": "image"}]}, r"\[training.augment\]: missing entries \[.kinds.\]"),
])
def test_a_wrong_setting_stops_the_read_naming_the_file_and_the_setting(tmp_path, change, message):
    data = full_recipe()
    data["training"].update(change)
    path = write(tmp_path / "r.json", data)
    with pytest.raises(ValueError, match=message) as err:
        Recipe.from_file(path)
    assert str(err.value).startswith(str(path))


def test_base_problems_are_named(tmp_path):
    a = write(tmp_path / "a.json", {"base": "b.json"})
    write(tmp_path / "b.json", {"base": "a.json"})
    with pytest.raises(ValueError, match="loop"):
        Recipe.from_file(a)
    lone = write(tmp_path / "lone.json", {"base": "nowhere.json"})
    with pytest.raises(ValueError, match=r"base recipe .*nowhere.json not found"):
        Recipe.from_file(lone)
    with pytest.raises(ValueError, match="'base' is read by Recipe.from_file"):
        Recipe.from_dict({**full_recipe(), "base": "a.json"})


def test_shipped_experiments_differ_from_the_bundle_recipe_only_where_they_say():
    bundle = Recipe.from_file(ROOT / "recipes" / "avmnist-qmf.toml")
    uttnorm = Recipe.from_file(ROOT / "recipes" / "experiments" / "avmnist-qmf-uttnorm.toml")
    vtlp = Recipe.from_file(ROOT / "recipes" / "experiments" / "avmnist-qmf-vtlp.toml")
    audio = bundle.training.modality_augment["audio"]
    assert isinstance(audio, AudioAugment) and audio.formant and audio.tempo
    assert uttnorm.training.modality_augment["audio"].formant is None
    assert uttnorm.training.modality_augment["audio"].tempo is None
    assert uttnorm.modalities == bundle.modalities
    assert vtlp.modalities[1].preprocessing["utterance_norm_channel"] is False
    assert bundle.modalities[1].preprocessing["utterance_norm_channel"] is True
    assert vtlp.training == bundle.training
    exp = ROOT / "recipes" / "experiments"
    temporal = Recipe.from_file(exp / "avmnist-qmf-temporal.toml")
    assert temporal.modalities[1].encoder == {**bundle.modalities[1].encoder, "temporal": 3}
    assert temporal.training == bundle.training and temporal.modalities[0] == bundle.modalities[0]
    no_graded = Recipe.from_file(exp / "avmnist-qmf-no-graded.toml")
    no_out = Recipe.from_file(exp / "avmnist-qmf-no-degraded-out.toml")
    assert bundle.training.energy_bound.graded and not no_graded.training.energy_bound.graded
    assert no_out.training.energy_bound.degraded_out_level == 0.0 and not no_out.training.energy_bound.graded
    for ablation in (no_graded, no_out):
        assert ablation.modalities == bundle.modalities
        assert ablation.training.outliers == bundle.training.outliers and ablation.training.epochs == bundle.training.epochs


@dataclass
class _Exposure:
    weight: float = 0.5


@dataclass
class _Settings:
    epochs: int = 1
    exposure: _Exposure = field(default_factory=_Exposure)


def test_a_new_nested_option_is_one_dataclass_read_like_the_others():
    """How the next training option is added: a field (here a nested table) on a settings dataclass."""
    assert from_table(_Settings, {"exposure": {"weight": 1.0}}, "training") == _Settings(1, _Exposure(1.0))
    with pytest.raises(ValueError, match=r"\[training.exposure\]: unknown entries \['wieght'\]"):
        from_table(_Settings, {"exposure": {"wieght": 1.0}}, "training")


def test_the_recipe_stored_in_a_bundle_reads_back_the_same():
    """A model file's recipe (Recipe.to_dict, written as JSON) can train the same model again."""
    recipe = Recipe.from_file(ROOT / "recipes" / "avmnist-qmf.toml")
    stored = json.loads(json.dumps(recipe.to_dict()))
    assert Recipe.from_dict(stored).to_dict() == recipe.to_dict()
