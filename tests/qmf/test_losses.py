"""The ranking term: confidence is pushed below its neighbour's when the loss record is worse."""

import numpy as np
import pytest
import torch

from app.qmf.losses import LossHistory, normalise_batch, qmf_loss, ranking_loss


def test_ranking_loss_is_zero_when_order_already_right_and_positive_when_wrong():
    record = torch.tensor([1.0, 0.0])  # sample 0 is worse
    right = torch.tensor([0.0, 2.0], requires_grad=True)  # worse sample has lower confidence (by > margin)
    wrong = torch.tensor([2.0, 0.0], requires_grad=True)
    assert ranking_loss(right, record).item() == pytest.approx(0.0)
    loss = ranking_loss(wrong, record)
    assert loss.item() > 0
    loss.backward()
    # gradient descent lowers the worse sample's confidence and raises the better one's
    assert wrong.grad[0] > 0 and wrong.grad[1] < 0


def test_gradient_steps_on_the_ranking_loss_order_confidence_by_record():
    record = torch.tensor([0.9, 0.1, 0.5, 0.0])
    conf = torch.zeros(4, requires_grad=True)
    opt = torch.optim.SGD([conf], lr=0.5)
    for _ in range(200):
        opt.zero_grad()
        ranking_loss(conf, record).backward()
        opt.step()
    order = conf.detach().argsort().tolist()  # ascending confidence
    assert order[0] == 0  # the worst record ends with the lowest confidence


def test_history_accumulates_and_normalises_without_dividing_by_zero():
    h = LossHistory(3)
    ids = torch.tensor([0, 1, 2])
    assert torch.all(torch.isfinite(h.normalised(ids)))  # all zeros on the first batch: no 0/0
    h.update(torch.tensor([0, 0, 2]), torch.tensor([1.0, 2.0, 1.0]))
    assert h.total.tolist() == [3.0, 0.0, 1.0]
    assert h.normalised(ids).tolist() == pytest.approx([1.0, 0.0, 1 / 3], rel=1e-6)


def test_history_state_round_trip_and_size_check():
    h = LossHistory(2)
    h.update(torch.tensor([1]), torch.tensor([0.5]))
    other = LossHistory(2)
    other.load_state(h.state())
    assert other.total.tolist() == [0.0, 0.5]
    with pytest.raises(ValueError):
        LossHistory(3).load_state(np.zeros(2))


def test_normalise_batch_maps_to_unit_range():
    v = normalise_batch(torch.tensor([2.0, 4.0, 3.0]))
    assert v.tolist() == pytest.approx([0.0, 1.0, 0.5], abs=1e-6)


def test_qmf_loss_adds_every_term():
    torch.manual_seed(0)
    logits = {"a": torch.randn(4, 3), "b": torch.randn(4, 3)}
    fused = logits["a"] + logits["b"]
    y = torch.tensor([0, 1, 2, 0])
    quality = {n: torch.logsumexp(z, -1) / 10 for n, z in logits.items()}
    records = {n: torch.tensor([1.0, 0.0, 0.5, 0.2]) for n in logits}
    base, per_sample = qmf_loss(logits, fused, quality, y, None, 0.0)
    ce = torch.nn.functional.cross_entropy
    expected = ce(logits["a"], y) + ce(logits["b"], y) + ce(fused, y)
    assert base.item() == pytest.approx(expected.item(), rel=1e-6)
    assert set(per_sample) == {"a", "b"} and per_sample["a"].shape == (4,)
    with_rank, _ = qmf_loss(logits, fused, quality, y, records, 1.0)
    rank = sum(ranking_loss(quality[n], records[n]) for n in logits)
    assert with_rank.item() == pytest.approx(base.item() + rank.item(), rel=1e-6)


def test_official_and_paper_margin_forms_differ_as_documented():
    record = torch.tensor([1.0, 0.5])  # sample 0 is worse by a margin of 0.5
    slightly_lower = torch.tensor([0.9, 1.0])  # worse sample below the better one, but by less than the margin
    # official form: max(0, (0.9 - 1.0) - 0.5) = 0 -> satisfied
    assert ranking_loss(slightly_lower, record, "official").item() == pytest.approx(0.0)
    # paper form: needs c0 <= c1 - 0.5: max(0, -0.1 + 0.5) = 0.4 on pair (0,1); pair (1,0) is the mirror, mean of both
    assert ranking_loss(slightly_lower, record, "paper").item() == pytest.approx(0.4, abs=1e-6)
    with pytest.raises(ValueError):
        ranking_loss(slightly_lower, record, "other")
