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
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The full objective. Returns (loss, per-modality per-sample CE for updating histories)."""
    per_sample = {n: F.cross_entropy(z, labels, reduction="none") for n, z in logits.items()}
    loss = sum(v.mean() for v in per_sample.values())
    target_logits = fused if fused_logits_for_loss is None else fused_logits_for_loss
    loss = loss + F.cross_entropy(target_logits, labels)
    if rank_weight > 0 and records is not None:
        rank = sum(ranking_loss(quality[n], records[n], margin_form) for n in logits)
        loss = loss + rank_weight * rank
    return loss, per_sample
