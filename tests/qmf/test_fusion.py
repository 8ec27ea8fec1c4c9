"""Fusion arithmetic against values computed by hand."""

import math

import pytest
import torch

from app.qmf.fusion import confidence, energy, fuse_by_energy, fuse_late, fuse_oracle, shares


def test_energy_is_negative_logsumexp_computed_by_hand():
    z = torch.tensor([[1.0, 2.0, 3.0]])
    expected = -math.log(math.exp(1) + math.exp(2) + math.exp(3))
    assert energy(z).item() == pytest.approx(expected, rel=1e-6)


def test_energy_is_stable_for_large_logits():
    # log(sum(exp)) overflows at 1000; logsumexp does not
    z = torch.tensor([[1000.0, 1000.0]])
    assert energy(z).item() == pytest.approx(-(1000 + math.log(2)), rel=1e-6)


def test_confidence_is_scaled_negative_energy():
    z = torch.tensor([[0.0, 0.0]])  # logsumexp = log 2
    assert confidence(z).item() == pytest.approx(math.log(2) / 10)
    assert confidence(z, scale=1.0).item() == pytest.approx(math.log(2))


def test_fused_logits_are_confidence_weighted_sum():
    a = torch.tensor([[2.0, 0.0]])
    b = torch.tensor([[0.0, 1.0]])
    w_a = math.log(math.exp(2) + 1) / 10
    w_b = math.log(1 + math.e) / 10
    out = fuse_by_energy({"a": a, "b": b})
    assert out.fused[0, 0].item() == pytest.approx(w_a * 2.0, rel=1e-6)
    assert out.fused[0, 1].item() == pytest.approx(w_b * 1.0, rel=1e-6)
    assert out.quality["a"].item() == pytest.approx(w_a, rel=1e-6)
    assert out.share["a"].item() == pytest.approx(w_a / (w_a + w_b), rel=1e-6)
    assert out.share["a"].item() + out.share["b"].item() == pytest.approx(1.0)


def test_weights_are_detached_by_default_and_can_carry_gradient():
    a = torch.tensor([[2.0, 0.0]], requires_grad=True)
    b = torch.tensor([[0.0, 1.0]], requires_grad=True)
    fuse_by_energy({"a": a, "b": b}).fused.sum().backward()
    detached_grad = a.grad.clone()
    a.grad = None
    fuse_by_energy({"a": a, "b": b}, detach_weights=False).fused.sum().backward()
    # with detached weights the gradient is just w_a for each logit
    w_a = math.log(math.exp(2) + 1) / 10
    assert detached_grad[0].tolist() == pytest.approx([w_a, w_a], rel=1e-6)
    assert not torch.allclose(a.grad, detached_grad)


def test_a_branch_with_negative_quality_abstains_instead_of_voting_against_its_own_answer():
    sure = torch.tensor([[0.0, 3.0, 0.0]])  # says class 1
    lost = torch.tensor([[-2.0, -5.0, -6.0]])  # all logits negative: quality < 0, its best guess is class 0
    out = fuse_by_energy({"a": sure, "b": lost})
    assert out.quality["b"].item() < 0
    w_a = out.quality["a"].item()
    assert out.fused[0].tolist() == pytest.approx((w_a * sure[0]).tolist())  # b adds nothing, for or against
    # both lost: the plain mean (late fusion) decides, so the fused answer is still the branches' joint best
    both = fuse_by_energy({"a": lost, "b": torch.tensor([[-6.0, -2.5, -7.0]])})
    assert both.fused[0].tolist() == pytest.approx([-4.0, -3.75, -6.5])
    assert both.fused.argmax(-1).item() == 1


def test_shares_ignore_negative_weights_and_split_evenly_when_none_positive():
    s = shares({"a": torch.tensor([-0.5, -1.0]), "b": torch.tensor([0.5, -2.0])})
    assert s["a"].tolist() == pytest.approx([0.0, 0.5])
    assert s["b"].tolist() == pytest.approx([1.0, 0.5])


def test_late_fusion_is_the_mean_and_oracle_drops_corrupted_modalities():
    a = torch.tensor([[4.0, 0.0], [4.0, 0.0]])
    b = torch.tensor([[0.0, 2.0], [0.0, 2.0]])
    assert fuse_late({"a": a, "b": b}).tolist() == [[2.0, 1.0], [2.0, 1.0]]
    oracle = fuse_oracle({"a": a, "b": b}, {"a": torch.tensor([True, True]), "b": torch.tensor([False, True])})
    assert oracle[0].tolist() == [0.0, 2.0]  # only b is clean
    assert oracle[1].tolist() == [2.0, 1.0]  # nothing clean: plain late fusion


def test_weight_floor_lets_two_damaged_inputs_pool_their_evidence_and_leaves_a_clean_one_in_charge():
    # both damaged: a is barely surer (small positive weight) of class 0, b is sure of nothing but leans strongly
    # to class 1. Without a floor a's tiny weight decides; with one, b's evidence counts as late fusion would.
    a = torch.tensor([[-20.0, -20.3]])  # quality 0.1 * logsumexp, a little above zero
    a = a + (1.0 - torch.logsumexp(a, -1, keepdim=True))  # logsumexp 1.0: weight 0.1
    b = torch.tensor([[-40.0, -10.0]])  # logsumexp about -10: quality below zero, clamped
    plain = fuse_by_energy({"a": a, "b": b})
    floored = fuse_by_energy({"a": a, "b": b}, floor=0.05)
    assert plain.fused.argmax(-1).item() == 0
    assert floored.fused.argmax(-1).item() == fuse_late({"a": a, "b": b}).argmax(-1).item() == 1
    # which input holds the larger share does not change, and the shares still add up to one
    assert floored.share["a"].item() > floored.share["b"].item()
    assert floored.share["a"].item() + floored.share["b"].item() == pytest.approx(1.0)
    assert floored.share["b"].item() == pytest.approx(0.05 / (0.1 + 0.05 + 0.05), rel=1e-5)
    # a clean input (weight about 1) keeps the decision against a foreign one leaning the other way
    clean = torch.tensor([[12.0, 0.0]])
    foreign = torch.tensor([[-5.0, -1.0]])
    assert fuse_by_energy({"a": clean, "b": foreign}, floor=0.05).fused.argmax(-1).item() == 0


def test_weight_floor_zero_is_the_plain_rule_and_all_abstaining_inputs_still_fall_back_to_late_fusion():
    torch.manual_seed(0)
    a, b = torch.randn(16, 4) * 5, torch.randn(16, 4) * 5
    plain, zero = fuse_by_energy({"a": a, "b": b}), fuse_by_energy({"a": a, "b": b}, floor=0.0)
    assert torch.equal(plain.fused, zero.fused)
    low = {"a": torch.full((1, 3), -50.0), "b": torch.tensor([[-60.0, -40.0, -70.0]])}
    out = fuse_by_energy(low, floor=0.05)
    assert torch.allclose(out.fused, fuse_late(low))
    assert out.share["a"].item() == pytest.approx(0.5)
