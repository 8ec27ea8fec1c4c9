"""Model files: round trip, and refusal of anything damaged, edited, foreign or mismatched."""

import json
import pickle
import struct

import pytest
import torch

from app.qmf.bundle import (
    FORMAT_VERSION,
    MANIFEST_HASH_KEY,
    MANIFEST_KEY,
    WEIGHTS_HASH_KEY,
    BundleError,
    load_bundle,
    manifest_digest,
    read_bundle_manifest,
    save_bundle,
)
from app.qmf.model import ModalityConfig, ModelConfig, QMFModel


def small_model(hidden: int = 8) -> QMFModel:
    torch.manual_seed(0)
    enc = {"channels": [4], "hidden": hidden, "dropout": 0.0}
    return QMFModel(ModelConfig(
        name="m", labels=["a", "b"],
        modalities=[ModalityConfig("image", "image", {"size": [12, 12]}, enc),
                    ModalityConfig("audio", "audio", {"duration": 0.25}, enc)],
    ))


def rewrite_header(path, edit, reseal: bool = False):
    """Edit the header in place; `reseal` recomputes the manifest checksum, as a consistent but
    mistaken writer would (to reach the checks behind it)."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    edit(header)
    if reseal:
        meta = header["__metadata__"]
        meta[MANIFEST_HASH_KEY] = manifest_digest(meta[MANIFEST_KEY], meta[WEIGHTS_HASH_KEY])
    new = json.dumps(header).encode()
    new += b" " * ((8 - len(new) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(new)) + new + data[8 + n :])


@pytest.fixture
def saved(tmp_path):
    model = small_model()
    path = save_bundle(tmp_path / "m.safetensors", model, {"name": "m", "provenance": {"credits": ["x"]}})
    return path, model


def test_round_trip_keeps_weights_manifest_and_outputs(saved):
    path, model = saved
    bundle = load_bundle(path)
    assert bundle.manifest["format_version"] == FORMAT_VERSION
    assert bundle.manifest["provenance"]["credits"] == ["x"]
    assert [m["name"] for m in bundle.manifest["model"]["modalities"]] == ["image", "audio"]
    for k, v in model.state_dict().items():
        assert torch.equal(bundle.model.state_dict()[k], v)
    assert len(bundle.sha256) == 64
    assert read_bundle_manifest(path) == bundle.manifest


def test_truncated_file_is_refused(saved):
    path, _ = saved
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(BundleError, match="truncated"):
        load_bundle(path)


def test_flipped_weight_byte_is_refused(saved):
    path, _ = saved
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="checksum"):
        load_bundle(path)


def test_wrong_format_version_is_refused_with_both_versions_named(saved):
    path, _ = saved

    def bump(header):
        manifest = json.loads(header["__metadata__"][MANIFEST_KEY])
        manifest["format_version"] = 99
        header["__metadata__"][MANIFEST_KEY] = json.dumps(manifest)

    rewrite_header(path, bump)
    with pytest.raises(BundleError, match="version 99"):
        load_bundle(path)


def test_architecture_that_does_not_fit_the_weights_is_refused(saved):
    path, _ = saved

    def widen(header):
        manifest = json.loads(header["__metadata__"][MANIFEST_KEY])
        manifest["model"]["modalities"][0]["encoder"]["hidden"] = 16
        header["__metadata__"][MANIFEST_KEY] = json.dumps(manifest)

    rewrite_header(path, widen, reseal=True)
    with pytest.raises(BundleError, match="shape mismatch"):
        load_bundle(path)


def test_missing_checksum_is_refused(saved):
    path, _ = saved
    rewrite_header(path, lambda h: h["__metadata__"].pop(WEIGHTS_HASH_KEY))
    with pytest.raises(BundleError, match="checksum"):
        load_bundle(path)


def test_foreign_files_are_refused_and_never_unpickled(tmp_path):
    pickled = tmp_path / "evil.safetensors"
    pickled.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(BundleError, match="not a model file"):
        load_bundle(pickled)
    plain = tmp_path / "plain.safetensors"
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(BundleError, match="not a QMF Studio model"):
        load_bundle(plain)
    with pytest.raises(BundleError, match="not found"):
        load_bundle(tmp_path / "nothing.safetensors")
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(BundleError, match="too short"):
        read_bundle_manifest(empty)


def test_model_config_needs_two_distinct_modalities():
    with pytest.raises(ValueError, match="at least two"):
        ModelConfig("m", ["a", "b"], [ModalityConfig("image", "image")])
    with pytest.raises(ValueError, match="unique"):
        ModelConfig("m", ["a", "b"], [ModalityConfig("x", "image"), ModalityConfig("x", "audio")])


def test_three_modality_model_with_text_runs():
    cfg = ModelConfig("three", ["a", "b"], [
        ModalityConfig("image", "image", {"size": [12, 12]}, {"channels": [4], "hidden": 8}),
        ModalityConfig("audio", "audio", {"duration": 0.25}, {"channels": [4], "hidden": 8}),
        ModalityConfig("caption", "text", {"vocab": ["red", "blue"]}, {"embedding": 4, "hidden": 8}),
    ])
    model = QMFModel(cfg).eval()
    out = model({"image": torch.zeros(2, 1, 12, 12), "audio": torch.zeros(2, 1, 40, 32),
                 "caption": torch.tensor([[2, 3, 0], [1, 0, 0]])})
    assert out.fused.shape == (2, 2)
    assert set(out.share) == {"image", "audio", "caption"}
    total = sum(out.share.values())
    assert torch.allclose(total, torch.ones(2))


@pytest.mark.parametrize("edit", ["swap_labels", "preprocessing", "drop_checksum"])
def test_edited_manifest_is_refused_even_with_the_weights_intact(saved, edit):
    """Swapped labels would make every prediction wrong without a word; the manifest checksum says so."""
    path, _ = saved

    def change(header):
        meta = header["__metadata__"]
        if edit == "drop_checksum":
            meta.pop(MANIFEST_HASH_KEY)
            return
        manifest = json.loads(meta[MANIFEST_KEY])
        if edit == "swap_labels":
            manifest["model"]["labels"] = manifest["model"]["labels"][::-1]
        else:
            manifest["model"]["modalities"][0]["preprocessing"]["size"] = [14, 14]
        meta[MANIFEST_KEY] = json.dumps(manifest, sort_keys=True)

    rewrite_header(path, change)
    with pytest.raises(BundleError, match="m.safetensors: the model's manifest .*checksum"):
        read_bundle_manifest(path)
    with pytest.raises(BundleError, match="checksum"):
        load_bundle(path)


@pytest.mark.parametrize("edit", ["manifest_list", "metadata_number", "no_offsets"])
def test_malformed_headers_give_a_message_naming_the_file(saved, edit):
    path, _ = saved

    def change(header):
        if edit == "manifest_list":
            header["__metadata__"][MANIFEST_KEY] = "[1, 2]"
        elif edit == "metadata_number":
            header["__metadata__"] = 7
        else:
            name = next(k for k in header if k != "__metadata__")
            del header[name]["data_offsets"]

    rewrite_header(path, change, reseal=edit == "manifest_list")
    with pytest.raises(BundleError, match="m.safetensors: "):
        load_bundle(path)
