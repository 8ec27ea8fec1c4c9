"""Training: the ranking term teaches the model to distrust inputs with a bad loss record; runs resume."""

import csv
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from app.data.manifest import read_manifest
from app.qmf.predictor import Predictor
from app.qmf.train import Recipe, checkpoint_path, train
from tests.synthetic import TINY_RECIPE


def noisy_image_copy(pairs, tmp_path, fraction=1 / 3):
    """Copy the training set; replace the images of a known subset of rows by pure noise."""
    rng = np.random.default_rng(1)
    root = tmp_path / "noisy"
    shutil.copytree(pairs.root, root)
    rows = list(csv.DictReader(open(root / "train.csv")))
    noisy_ids = set()
    for i, row in enumerate(rows):
        if i % round(1 / fraction) == 0:
            Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(root / row["image"])
            noisy_ids.add(row["id"])
    return root, noisy_ids


def recipe(**training):
    data = {**TINY_RECIPE, "training": {**TINY_RECIPE["training"], "augment": [], **training}}
    return Recipe.from_dict(data)


def test_ranking_on_loss_history_lowers_quality_of_the_noisy_subset(synthetic_pairs, tmp_path):
    root, noisy_ids = noisy_image_copy(synthetic_pairs, tmp_path)
    rows = read_manifest(root / "train.csv", modalities=["image", "audio"]).rows
    val = read_manifest(root / "val.csv", modalities=["image", "audio"]).rows
    result = train(recipe(epochs=15, batch_size=12, learning_rate=0.02, rank_weight=1.0,
                          ranking_target="history", repair_each_epoch=False),
                   rows, val, progress=False, log=lambda s: None)
    from app.qmf.bundle import save_bundle
    from app.qmf.train import bundle_manifest

    path = save_bundle(tmp_path / "m.safetensors", result.model, bundle_manifest(result))
    predictor = Predictor.load(path)
    preds = predictor.predict_many([predictor.load_inputs(r.files) for r in rows])
    quality = np.array([p.modalities["image"].quality for p in preds])
    noisy = np.array([r.id in noisy_ids for r in rows])
    assert noisy.sum() >= 10
    assert quality[noisy].mean() < quality[~noisy].mean()
    from app.qmf.evaluate import auroc

    assert auroc(quality[~noisy], quality[noisy]) > 0.8


def test_resume_continues_from_the_checkpoint(synthetic_pairs, tmp_path):
    rows = read_manifest(synthetic_pairs.train_csv, modalities=["image", "audio"]).rows
    val = read_manifest(synthetic_pairs.val_csv, modalities=["image", "audio"]).rows
    out = tmp_path / "m.safetensors"
    first = train(recipe(epochs=2, patience=10), rows, val, out=out, progress=False, log=lambda s: None)
    assert checkpoint_path(out) == tmp_path / "m.safetensors.ckpt" and checkpoint_path(out).exists()  # OUT.ckpt (--help)
    assert [e["epoch"] for e in first.history] == [0, 1]
    r = recipe(epochs=4, patience=10)
    messages = []
    second = train(r, rows, val, out=out, resume=True, progress=False, log=messages.append)
    assert any("resuming" in m for m in messages)
    assert [e["epoch"] for e in second.history] == [0, 1, 2, 3]
    assert second.history[:2] == first.history


def test_recipe_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="ranking_target"):
        recipe(ranking_target="nonsense")
    bad = tmp_path / "r.toml"
    bad.write_text("name = 'x'\n[training]\nepochs = 1\n")
    with pytest.raises(ValueError, match="modalities"):
        Recipe.from_file(bad)
    with pytest.raises(ValueError, match="not found"):
        Recipe.from_file(tmp_path / "missing.toml")


def test_text_input_gets_a_vocabulary_from_training_data(synthetic_pairs, tmp_path):
    """An image+audio+caption model: the caption vocabulary is built from the training texts and stored."""
    words = {"low": "a flat line across", "mid": "a line standing up", "high": "a slanted line"}
    rows = []
    for split in ("train", "val"):
        for r in read_manifest(getattr(synthetic_pairs, f"{split}_csv"), modalities=["image", "audio"]).rows:
            caption = tmp_path / f"{r.id}.txt"
            caption.write_text(words[r.label] + " zebra" * (hash(r.id) % 2), encoding="utf-8")
            rows.append((split, {**r.files, "caption": caption}, r.label))
    from app.data.manifest import PairRow

    def as_rows(split):
        return [PairRow(i + 2, f"{split}{i}", files, label) for i, (s, files, label) in enumerate(rows) if s == split]

    data = {**TINY_RECIPE, "modalities": [*TINY_RECIPE["modalities"],
                                          {"name": "caption", "kind": "text", "encoder": {"embedding": 8, "hidden": 16}}],
            "training": {**TINY_RECIPE["training"], "augment": [], "epochs": 2}}
    data["labels"] = None
    given = Recipe.from_dict(data)
    before = given.to_dict()
    result = train(given, as_rows("train"), as_rows("val"), progress=False, log=lambda s: None)
    vocab = result.model.config.modalities[2].preprocessing["vocab"]
    # the recipe handed in is left as it was; the one the model was made with is a new object
    assert given.to_dict() == before and given.labels is None and "vocab" not in given.modalities[2].preprocessing
    assert result.recipe.labels == ["high", "low", "mid"] and result.recipe.modalities[2].preprocessing["vocab"] == vocab
    assert "line" in vocab and "slanted" in vocab
    from app.qmf.bundle import save_bundle
    from app.qmf.train import bundle_manifest

    path = save_bundle(tmp_path / "three.safetensors", result.model, bundle_manifest(result))
    predictor = Predictor.load(path)
    files = rows[0][1]
    pred = predictor.predict_files(files)
    assert set(pred.modalities) == {"image", "audio", "caption"}
    assert sum(m.share for m in pred.modalities.values()) == pytest.approx(1.0)


def test_init_from_starts_at_a_bundles_weights_and_records_it(synthetic_pairs, tmp_path):
    from app.qmf.bundle import read_bundle_manifest, save_bundle
    from app.qmf.train import bundle_manifest
    from tests.synthetic import train_tiny_model

    base = train_tiny_model(synthetic_pairs, tmp_path / "base.safetensors", epochs=2)
    rows = read_manifest(synthetic_pairs.train_csv, modalities=["image", "audio"]).rows
    val = read_manifest(synthetic_pairs.val_csv, modalities=["image", "audio"]).rows
    messages = []
    # one epoch at a vanishing learning rate: the weights are still the base model's
    tuned = train(recipe(epochs=1, learning_rate=1e-12, init_from=str(base)), rows, val, progress=False,
                  log=messages.append)
    from app.qmf.bundle import load_bundle

    base_pred = Predictor.load(base)
    base_state = load_bundle(base).model.state_dict()
    for name, p in tuned.model.named_parameters():
        assert torch.allclose(p.detach(), base_state[name], atol=1e-6), name
    path = save_bundle(tmp_path / "tuned.safetensors", tuned.model, bundle_manifest(tuned))
    init = read_bundle_manifest(path)["training"]["init"]
    assert init["sha256"] == base_pred.sha256 and init["file"] == "base.safetensors"
    assert init["recipe"]["training"]["epochs"] == 2  # the start bundle's own recipe comes along
    assert any("initialised from" in m for m in messages)
    # another architecture is refused with the difference named
    with pytest.raises(ValueError, match="architecture differs"):
        other = recipe(epochs=1, init_from=str(base))
        other.modalities[0].encoder = {"channels": [4], "hidden": 8, "dropout": 0.0}
        train(other, rows, val, progress=False, log=lambda s: None)


def test_temporal_pooling_added_to_a_bundle_starts_from_its_answers_and_runs_without_torch(
        synthetic_pairs, tiny_model, tmp_path):
    from app.qmf.bundle import read_bundle_manifest, save_bundle
    from app.qmf.train import bundle_manifest

    rows = read_manifest(synthetic_pairs.train_csv, modalities=["image", "audio"]).rows
    val = read_manifest(synthetic_pairs.val_csv, modalities=["image", "audio"]).rows
    timed = recipe(epochs=1, learning_rate=1e-12, init_from=str(tiny_model))
    timed.modalities[1].encoder = {**timed.modalities[1].encoder, "temporal": 3}
    messages = []
    tuned = train(timed, rows, val, progress=False, log=messages.append)
    path = save_bundle(tmp_path / "timed.safetensors", tuned.model, bundle_manifest(tuned))
    assert read_bundle_manifest(path)["training"]["init"]["added"] == [
        "branches.audio.encoder.pool.mix.bias", "branches.audio.encoder.pool.mix.weight",
        "branches.audio.encoder.pool.out.bias", "branches.audio.encoder.pool.out.weight"]
    assert any("temporal pooling start fresh" in m for m in messages)
    before, after = Predictor.load(tiny_model), Predictor.load(path)
    assert after.backend == "onnxruntime"
    torch_path = Predictor.load(path, backend="torch")
    # the weights are the base model's (only batch-norm statistics moved during the epoch), so the answers are too
    for row in rows[:12]:
        old, new, slow = (p.predict_files(row.files) for p in (before, after, torch_path))
        assert new.label == old.label
        for name in ("image", "audio"):
            assert new.modalities[name].quality == pytest.approx(old.modalities[name].quality, rel=0.05)
            assert abs(new.modalities[name].quality - slow.modalities[name].quality) < 1e-4
