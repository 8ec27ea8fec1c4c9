"""Model files with absurd but well-sealed values are refused when opened, with one line, cheaply.

Each fixture is a small model written by the project's own sealing code (`seal_bundle`, valid
checksums) around a manifest value from the reliability audit: the checksums pass, so only the
schema and the header's tensor shapes stand between such a file and gigabytes of allocations.
"""

from __future__ import annotations

import copy
import json
import struct

import pytest
import torch

from app.cli import main
from app.qmf import model as model_mod
from app.qmf.bundle import BundleError, load_bundle, read_bundle_manifest, save_bundle, seal_bundle
from app.qmf.manifest_schema import SchemaError, validate_manifest
from tests.qmf.test_bundle import small_model


@pytest.fixture
def good(tmp_path):
    model = small_model()
    path = save_bundle(tmp_path / "good.safetensors", model, {"name": "m", "provenance": {"credits": ["x"]}})
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    return path, state, read_bundle_manifest(path)


def _sealed(tmp_path, state, manifest, edit, name="bad.safetensors"):
    manifest = copy.deepcopy(manifest)
    edit(manifest)
    return seal_bundle(tmp_path / name, state, manifest)


def _image(m):
    return m["model"]["modalities"][0]


def _audio(m):
    return m["model"]["modalities"][1]


ABSURD = {
    "image_size_20000": (lambda m: _image(m)["preprocessing"].update(size=[20000, 20000]), "size"),
    "n_fft_2p24": (lambda m: _audio(m)["preprocessing"].update(n_fft=2**24), "n_fft"),
    "n_fft_2p31": (lambda m: _audio(m)["preprocessing"].update(n_fft=2**31), "n_fft"),
    "hop_1_duration_600": (lambda m: _audio(m)["preprocessing"].update(hop_length=1, duration=600), "duration"),
    "hop_1_long_frames": (lambda m: _audio(m)["preprocessing"].update(hop_length=1, duration=10), "frames"),
    "sample_rate_1e12": (lambda m: _audio(m)["preprocessing"].update(sample_rate=10**12), "sample_rate"),
    "sample_rate_float": (lambda m: _audio(m)["preprocessing"].update(sample_rate=1e12), "sample_rate"),
    "channels_4096x6": (lambda m: _image(m)["encoder"].update(channels=[4096] * 6), "channels"),
    "hidden_negative": (lambda m: _image(m)["encoder"].update(hidden=-1), "hidden"),
    "temporal_even": (lambda m: _audio(m)["encoder"].update(temporal=4), "temporal"),
    "temporal_huge": (lambda m: _audio(m)["encoder"].update(temporal=10**6), "temporal"),
    "no_modalities": (lambda m: m["model"].pop("modalities"), "modalities"),
    "input_without_name": (lambda m: _image(m).pop("name"), "name"),
    "modalities_not_a_list": (lambda m: m["model"].update(modalities={"a": 1}), "modalities"),
    "labels_numbers": (lambda m: m["model"].update(labels=[1, 2]), "labels"),
    "first_layer_too_wide": (lambda m: (_image(m)["preprocessing"].update(size=[1024, 1024]),
                                        _image(m)["encoder"].update(channels=[64])), "first layer"),
    "validation_text": (lambda m: m.setdefault("evaluation", {}).update(validation={"accuracy": "high"}),
                        "validation"),
}


@pytest.mark.parametrize("case", sorted(ABSURD))
def test_absurd_manifest_values_are_refused_by_both_readers_with_the_value_named(tmp_path, good, case):
    _, state, manifest = good
    edit, word = ABSURD[case]
    path = _sealed(tmp_path, state, manifest, edit)
    for reader in (read_bundle_manifest, load_bundle):
        with pytest.raises(BundleError) as err:
            reader(path)
        text = str(err.value)
        assert text.startswith(str(path)) and "\n" not in text
        assert word in text, text


@pytest.mark.parametrize("where", ["header", "manifest"])
def test_json_nested_100k_deep_is_a_bundle_error_not_a_recursion_error(tmp_path, good, where):
    path, _, _ = good
    deep = "[" * 100_000 + "]" * 100_000
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    if where == "header":
        text = json.dumps(header)[:-1] + ', "deep": ' + deep + "}"
    else:
        meta = header["__metadata__"]
        manifest = json.loads(meta["qmf.manifest"])
        manifest["extra"] = "DEEP"
        meta["qmf.manifest"] = json.dumps(manifest).replace('"DEEP"', deep)
        text = json.dumps(header)
    raw = text.encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :])
    for reader in (read_bundle_manifest, load_bundle):
        with pytest.raises(BundleError, match="nested more than 32 levels deep"):
            reader(path)


def test_tensor_shapes_are_compared_before_the_model_is_built(tmp_path, good, monkeypatch):
    # Channels inside the documented range but not those of the weights in the file: the file is
    # small, the architecture it describes is not; it must be refused without building it for real.
    _, state, manifest = good
    path = _sealed(tmp_path, state, manifest, lambda m: _image(m)["encoder"].update(channels=[1024] * 4))
    built_on: list[str] = []
    real = model_mod.QMFModel.__init__

    def spy(self, config):
        built_on.append(torch.empty(0).device.type)
        real(self, config)

    monkeypatch.setattr(model_mod.QMFModel, "__init__", spy)
    with pytest.raises(BundleError, match="weights do not fit the architecture: .*shape mismatch"):
        load_bundle(path)
    assert built_on == ["meta"]


def test_the_good_model_still_loads_and_the_schema_accepts_the_shipped_manifest(good):
    from app.qmf.bundle import default_model_path

    path, _, _ = good
    assert load_bundle(path).manifest["name"] == "m"
    validate_manifest(read_bundle_manifest(default_model_path()))


def test_save_bundle_refuses_to_write_a_model_that_could_not_be_opened(tmp_path):
    model = small_model()
    model.config.labels = ["same", "same"]
    with pytest.raises(BundleError, match="refusing to write .*duplicate labels"):
        save_bundle(tmp_path / "x.safetensors", model, {"name": "x"})
    assert not (tmp_path / "x.safetensors").exists()


def test_schema_error_names_the_value_and_the_range():
    with pytest.raises(SchemaError) as err:
        validate_manifest({"name": "m", "model": {"name": "m", "labels": ["a", "b"], "modalities": [
            {"name": "image", "kind": "image", "preprocessing": {"size": [28, 28]}},
            {"name": "audio", "kind": "audio", "preprocessing": {"sample_rate": 2_100_000_000}}]}})
    assert str(err.value) == ("model.modalities[1].preprocessing.sample_rate: must be an integer from 1,000 to "
                              "384,000, got 2,100,000,000")


def test_a_negative_weight_floor_is_refused_and_a_saved_floor_comes_back_with_the_model(tmp_path):
    with pytest.raises(SchemaError, match="model.weight_floor"):
        validate_manifest({"name": "m", "model": {"name": "m", "labels": ["a", "b"], "weight_floor": -0.1,
                                                  "modalities": [
            {"name": "image", "kind": "image", "preprocessing": {"size": [28, 28]}},
            {"name": "audio", "kind": "audio", "preprocessing": {"sample_rate": 8000}}]}})
    model = small_model()
    model.config.weight_floor = 0.05
    save_bundle(tmp_path / "f.safetensors", model, {"name": "f"})
    assert load_bundle(tmp_path / "f.safetensors").model.config.weight_floor == 0.05


@pytest.mark.parametrize("command", ["info", "predict"])
@pytest.mark.parametrize("case", ["no_modalities", "input_without_name", "channels_4096x6", "sample_rate_1e12"])
def test_cli_gives_one_line_for_a_bad_model(tmp_path, good, capsys, command, case):
    _, state, manifest = good
    path = _sealed(tmp_path, state, manifest, ABSURD[case][0])
    image = tmp_path / "x.png"
    from PIL import Image

    Image.new("L", (12, 12)).save(image)
    argv = ["info", str(path)] if command == "info" else ["predict", "--model", str(path), str(image)]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"qmf {command}: error: {path}: ")
