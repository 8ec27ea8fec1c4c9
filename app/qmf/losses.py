"""QMF's training objective: per-branch and fused cross-entropy plus a confidence ranking term.

    loss = sum_m CE(z_m, y) + CE(z, y) + lambda * sum_m rank_m

`rank_m` is a margin ranking loss between each sample and its neighbour in the batch (torch.roll):
the sample whose input has the worse loss record should get the lower confidence, by a margin equal
to the difference of their normalised records. The record comes from a `LossHistory`:

* "history" (the official recipe): each input's cross-entropy accumulated over training, min-max
  normalised over the whole history (with an epsilon; the official code divides 0 by 0 on the first
  batch);
* "current": the input's cross-entropy in this very batch. When training corrupts inputs at random,
  the same file is clean in one epoch and destroyed in the next; an accumulated record then averages
  the corruptions away and gives the ranking term little to rank, while the current loss reflects the
  corruption actually applied.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

RANKING_TARGETS = ("history", "current")
MARGIN_FORMS = ("official", "paper")
NORMALISE_EPS = 1e-8


class LossHistory:
    """Accumulated per-input cross-entropy for one modality over training (the official record).

    Inputs are identified by an integer id per modality (for example the index of the image file),
    so that re-pairing the modalities each epoch does not mix up whose record is whose.
    """

    def __init__(self, size: int):
        self.total = np.zeros(size, dtype=np.float64)

    def update(self, ids: torch.Tensor, losses: torch.Tensor) -> None:
        idx = ids.detach().cpu().numpy()
        np.add.at(self.total, idx, losses.detach().cpu().double().numpy())

    def normalised(self, ids: torch.Tensor) -> torch.Tensor:
        lo, hi = self.total.min(), self.total.max()
        values = (self.total[ids.detach().cpu().numpy()] - lo) / (hi - lo + NORMALISE_EPS)
        return torch.from_numpy(values).float().to(ids.device)

    def state(self) -> np.ndarray:
        return self.total.copy()

    def load_state(self, total: np.ndarray) -> None:
        if total.shape != self.total.shape:
            raise ValueError(f"loss history has {total.shape[0]} entries, the data set {self.total.shape[0]}")
        self.total = total.astype(np.float64).copy()


def normalise_batch(losses: torch.Tensor) -> torch.Tensor:
    losses = losses.detach()
    lo, hi = losses.min(), losses.max()
    return (losses - lo) / (hi - lo + NORMALISE_EPS)


def ranking_loss(confidence: torch.Tensor, record: torch.Tensor, margin_form: str = "official") -> torch.Tensor:
    """Margin ranking loss between each sample i and its neighbour j = torch.roll(-1).

    `record` is a normalised badness per sample (larger = worse); t = sign(r_i - r_j), m = |r_i - r_j|.

    * "official" (the official QMF code: nn.MarginRankingLoss with the margin added to the neighbour's
      confidence): max(0, t (c_i - c_j) - m). A worse input is penalised only when it out-scores a better
      one by more than the margin, so the term is rarely active.
    * "paper" (as the paper and CRL, which it adapts, write it): max(0, t (c_i - c_j) + m). A worse input
      must score at least the margin below the better one.
    """
    if margin_form not in MARGIN_FORMS:
        raise ValueError(f"margin form must be one of {MARGIN_FORMS}, got {margin_form!r}")
    if confidence.numel() < 2:
        return confidence.sum() * 0.0
    diff_record = record - torch.roll(record, -1)
    diff_conf = confidence - torch.roll(confidence, -1)
    sign = 1.0 if margin_form == "paper" else -1.0
    return F.relu(torch.sign(diff_record) * diff_conf + sign * diff_record.abs()).mean()


def qmf_loss(
    logits: dict[str, torch.Tensor],
    fused: torch.Tensor,
    quality: dict[str, torch.Tensor],
    labels: torch.Tensor,
    records: dict[str, torch.Tensor] | None,
    rank_weight: float,
    fused_logits_for_loss: torch.Tensor | None = None,
    margin_form: str = "official",
    branch_mask: dict[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The full objective. Returns (loss, per-modality per-sample CE for updating histories).

    `branch_mask[m]` (bool [B], optional) selects the samples whose branch-m cross-entropy counts: an
    input replaced by a foreign one (outlier exposure) has no label of its own. The fused term and the
    ranking term always use every sample."""
    per_sample = {n: F.cross_entropy(z, labels, reduction="none") for n, z in logits.items()}
    if branch_mask is None:
        loss = sum(v.mean() for v in per_sample.values())
    else:
        loss = sum((v * branch_mask[n].to(v.dtype)).sum() / v.numel() for n, v in per_sample.items())
    target_logits = fused if fused_logits_for_loss is None else fused_logits_for_loss
    loss = loss + F.cross_entropy(target_logits, labels)
    if rank_weight > 0 and records is not None:
        rank = sum(ranking_loss(quality[n], records[n], margin_form) for n in logits)
        loss = loss + rank_weight * rank
    return loss, per_sample


def energy_bound_loss(
    energy: torch.Tensor,
    inlier: torch.Tensor,
    outlier: torch.Tensor,
    m_in: float,
    m_out: float,
) -> torch.Tensor:
    """Liu et al.'s energy-bounded outlier-exposure term (NeurIPS 2020, eq. 5) for one branch:

        mean over inliers of relu(E - m_in)^2  +  mean over outliers of relu(m_out - E)^2

    `energy` is the branch's free energy -logsumexp(z) per sample [B]; `inlier` / `outlier` are bool
    masks [B] (a sample may be neither: a degraded input is left to the ranking term). Clean inputs
    are pushed to energy at most `m_in` (confident), foreign ones to at least `m_out` (QMF's weight
    -E * scale near zero or below). A side with no samples in the batch contributes 0.
    """
    zero = energy.sum() * 0.0
    e_in = energy[inlier]
    e_out = energy[outlier]
    term_in = F.relu(e_in - m_in).square().mean() if e_in.numel() else zero
    term_out = F.relu(m_out - e_out).square().mean() if e_out.numel() else zero
    return term_in + term_out
