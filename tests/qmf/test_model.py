"""The QMF model: one branch per input, fused by each branch's own confidence."""

from __future__ import annotations

import pytest
import torch

from app.qmf.model import ModalityConfig, ModelConfig, QMFModel


def small_model(seed: int = 0) -> QMFModel:
    torch.manual_seed(seed)
    return QMFModel(ModelConfig("m", ["a", "b", "c"], [
        ModalityConfig("image", "image", {"size": [12, 12]}, {"channels": [4, 8], "hidden": 8}),
        ModalityConfig("audio", "audio", {"duration": 0.25}, {"channels": [4], "hidden": 8}),
        ModalityConfig("caption", "text", {"vocab": ["red", "blue", "green"], "max_tokens": 6},
                       {"embedding": 4, "hidden": 8}),
    ])).eval()


def inputs(n: int, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"image": torch.randn(n, 1, 12, 12, generator=g), "audio": torch.randn(n, 1, 40, 16, generator=g),
            "caption": torch.randint(0, 5, (n, 6), generator=g)}


def test_a_pair_gets_the_same_answer_alone_and_in_a_batch():
    model, x = small_model(), inputs(5)
    together = model(x)
    for i in range(5):
        alone = model({k: v[i: i + 1] for k, v in x.items()})
        assert torch.allclose(alone.fused, together.fused[i: i + 1], atol=1e-5)
        for name in x:
            assert torch.allclose(alone.share[name], together.share[name][i: i + 1], atol=1e-6)


def test_changing_one_input_changes_only_its_branch_and_the_fusion():
    model, x = small_model(), inputs(3)
    before = model(x)
    after = model({**x, "audio": torch.zeros_like(x["audio"])})
    assert torch.equal(before.logits["image"], after.logits["image"])
    assert torch.equal(before.logits["caption"], after.logits["caption"])
    assert not torch.allclose(before.logits["audio"], after.logits["audio"])
    assert not torch.allclose(before.fused, after.fused)
    assert torch.allclose(sum(after.share.values()), torch.ones(3))


def test_padding_does_not_dilute_a_short_caption():
    """The text branch averages the words it was given: padding to max_tokens is not counted as words."""
    model = small_model()
    x = inputs(1)

    def caption(tokens):
        return model({**x, "caption": torch.tensor([tokens])}).logits["caption"]

    assert torch.allclose(caption([2, 3, 0, 0, 0, 0]), caption([2, 3, 2, 3, 2, 3]), atol=1e-6)
    assert not torch.allclose(caption([2, 3, 0, 0, 0, 0]), caption([2, 3, 4, 0, 0, 0]))


def test_a_missing_input_is_named():
    model, x = small_model(), inputs(1)
    with pytest.raises(KeyError, match="caption"):
        model({"image": x["image"], "audio": x["audio"]})


def test_the_config_rebuilds_the_same_model():
    model, x = small_model(seed=3), inputs(4)
    again = QMFModel(ModelConfig.from_dict(model.config.to_dict())).eval()
    again.load_state_dict(model.state_dict())
    assert torch.equal(again(x).fused, model(x).fused)
    assert again.parameter_count() == model.parameter_count()


def _with_temporal(model: QMFModel, kernel: int) -> QMFModel:
    config = ModelConfig.from_dict(model.config.to_dict())
    for m in config.modalities:
        if m.kind == "audio":
            m.encoder["temporal"] = kernel
    return QMFModel(config).eval()


def test_temporal_pooling_starts_as_the_model_without_it_then_hears_the_order_of_sounds():
    plain, x = small_model(seed=4), inputs(3)
    timed = _with_temporal(plain, 3)
    assert timed.parameter_count() > plain.parameter_count()
    timed.load_state_dict({**timed.state_dict(), **plain.state_dict()})
    assert torch.allclose(timed(x).fused, plain(x).fused, atol=1e-6)  # a fine-tune starts from the old model
    # once trained (weights made non-zero here), the pooled features depend on the order of the time steps,
    # where global average pooling gives the same for any shuffle of them
    from app.qmf.model import TemporalBlock

    torch.manual_seed(0)
    block = TemporalBlock(6, 3)
    for p in block.parameters():
        torch.nn.init.normal_(p, std=0.5)
    features = torch.randn(2, 6, 5, 7)
    reversed_in_time = features.flip(-1)
    assert torch.allclose(features.mean(dim=(2, 3)), reversed_in_time.mean(dim=(2, 3)), atol=1e-6)
    assert not torch.allclose(block(features), block(reversed_in_time), atol=1e-3)
