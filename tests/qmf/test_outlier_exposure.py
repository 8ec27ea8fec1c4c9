"""Energy-bounded outlier exposure: the loss by hand, masks, and recipe options that reach the bundle."""

import numpy as np
import pytest
import torch

from app.qmf.losses import energy_bound_loss, qmf_loss
from app.qmf.outlier_exposure import EnergyBound, outlier_loss


def test_energy_bound_loss_by_hand():
    # logits whose energies are known: E = -logsumexp(z)
    z = torch.tensor([[10.0, 0.0], [2.0, 2.0], [0.0, 0.0], [5.0, 5.0]])
    e = -torch.logsumexp(z, -1)  # [-10.0000454, -2.6931, -0.6931, -5.6931]
    inlier = torch.tensor([True, True, False, False])
    outlier = torch.tensor([False, False, True, True])
    m_in, m_out = -8.0, -3.0
    # inliers: sample 0 is below m_in (no loss), sample 1 is 5.3069 above it
    expected_in = (0.0 + (e[1].item() - m_in) ** 2) / 2
    # outliers: sample 2 is above m_out (no loss), sample 3 is 2.6931 below it
    expected_out = (0.0 + (m_out - e[3].item()) ** 2) / 2
    got = energy_bound_loss(e, inlier, outlier, m_in, m_out)
    assert got.item() == pytest.approx(expected_in + expected_out, rel=1e-5)
    assert got.item() == pytest.approx((5.30685 ** 2) / 2 + (2.69315 ** 2) / 2, rel=1e-4)


def test_energy_bound_gradients_make_foreign_inputs_less_confident_and_clean_ones_more():
    z = torch.tensor([[1.0, 0.0], [6.0, 0.0]], requires_grad=True)
    e = -torch.logsumexp(z, -1)
    loss = energy_bound_loss(e, torch.tensor([True, False]), torch.tensor([False, True]), m_in=-5.0, m_out=-2.0)
    loss.backward()
    assert z.grad[0, 0] < 0  # descent raises the clean input's top logit (lower energy, higher quality)
    assert z.grad[1, 0] > 0  # and lowers the foreign input's


def test_an_empty_side_contributes_nothing_and_no_nan():
    e = torch.tensor([-1.0, -2.0])
    none = torch.tensor([False, False])
    assert energy_bound_loss(e, none, none, -5.0, -3.0).item() == 0.0
    assert energy_bound_loss(e, torch.tensor([True, True]), none, -5.0, -3.0).item() == pytest.approx((16 + 9) / 2)


def test_outlier_loss_sums_branches_with_per_modality_margins_and_degraded_level():
    energies = {"image": torch.tensor([-1.0, -1.0]), "audio": torch.tensor([-1.0, -9.0])}
    foreign = {"image": torch.tensor([False, False]), "audio": torch.tensor([False, True])}
    levels = {"image": torch.tensor([0.0, 9.0]), "audio": torch.tensor([0.0, 0.0])}
    bound = EnergyBound.from_dict({"weight": 0.5, "m_in": {"image": -3.0, "audio": -2.0}, "m_out": -4.0})
    # image: sample 0 clean (E -1 vs m_in -3: 4), sample 1 degraded: neither side; audio: clean 1 -> 1; foreign -9 -> 25
    assert outlier_loss(energies, foreign, levels, bound).item() == pytest.approx(0.5 * (4.0 + 1.0 + 25.0))
    bound.degraded_out_level = 8.0  # the degraded image now counts as an outlier: relu(-4 - -1) = 0
    assert outlier_loss(energies, foreign, levels, bound).item() == pytest.approx(0.5 * (4.0 + 1.0 + 25.0))
    bound.m_out = -0.5  # image: relu(-0.5 + 1)^2 = 0.25 for the degraded one; audio foreign: relu(-0.5 + 9)^2 = 72.25
    assert outlier_loss(energies, foreign, levels, bound).item() == pytest.approx(0.5 * (4.0 + 0.25 + 1.0 + 72.25))


def test_branch_mask_leaves_a_foreign_input_out_of_its_branch_cross_entropy():
    logits = {"image": torch.tensor([[5.0, 0.0], [0.0, 5.0]]), "audio": torch.tensor([[5.0, 0.0], [5.0, 0.0]])}
    y = torch.tensor([0, 0])
    fused = logits["image"] + logits["audio"]
    q = {n: torch.zeros(2) for n in logits}
    full, _ = qmf_loss(logits, fused, q, y, None, 0.0)
    masked, _ = qmf_loss(logits, fused, q, y, None, 0.0,
                         branch_mask={"image": torch.tensor([True, False]), "audio": torch.tensor([True, True])})
    wrong = torch.nn.functional.cross_entropy(logits["image"][1:], y[1:]).item()
    assert full.item() - masked.item() == pytest.approx(wrong / 2, rel=1e-5)
    assert np.isfinite(masked.item())
