"""Fusion rules: how per-modality logits become one prediction.

QMF reads each modality's confidence off its own logits as a negated, scaled energy score
(Liu et al.'s energy, as used by Zhang et al., ICML 2023):

    E_m = -logsumexp(z_m)            (temperature 1)
    w_m = -E_m * scale               (scale = 1/10 by default): the quality score
    z   = sum_m max(w_m, 0).detach() * z_m   (the official code detaches the weights)

One departure from the paper's formula: a weight below zero counts as zero. The energy is unbounded
above, so a branch that is sure of nothing (all its logits negative: an input outlier-aware training has
pushed past its margin) gets a negative quality, and in the plain sum it would vote *against* its own
best class, with more force the less it knows. Clamped, it abstains. Where every weight clamps to zero,
the fused logits are late fusion's (the mean), as the display's shares then split evenly. Measured on the
bundled model (validation, QMF minus late fusion of the same branches at eps 7.5, salt-and-pepper image
with dropped-out audio): -6.6 points with the plain sum, -2.9 clamped; unchanged for kinds whose quality
stays positive (docs/report/README.md, round 6).

A second, optional departure: a floor c (`ModelConfig.weight_floor`, 0 by default) added to every input's
weight, w_m' = max(w_m, 0) + c. Where one input is clean its weight (about 1) dwarfs c, and QMF is as
before; where every input is damaged and all weights are small, the fused answer leans towards late fusion,
which then reads each branch's remaining evidence instead of following whichever tiny weight is a little
larger. The order of the weights, and so which input holds the larger share, is unchanged. Measured on the
bundled model (validation, both inputs damaged): docs/report/README.md, "A floor under the fusion weights".

The static late-fusion rule (equal weights) and single-modality rules are here too, so that one
trained model can be compared against its own branches.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from app.qmf.config import DEFAULT_CONFIDENCE_SCALE

__all__ = ["DEFAULT_CONFIDENCE_SCALE", "FusionOutput", "confidence", "energy", "fuse_by_energy", "fuse_late",
           "fuse_oracle", "fuse_single", "shares"]


@dataclass
class FusionOutput:
    """Everything one forward pass says about a batch, per modality and fused.

    Tensors have a leading batch dimension B; per-modality dicts keep the model's modality order.
    """

    logits: dict[str, torch.Tensor]  # [B, K] per modality
    energy: dict[str, torch.Tensor]  # [B]  -logsumexp(z_m)
    quality: dict[str, torch.Tensor]  # [B]  w_m = -E_m * scale, the quality score
    share: dict[str, torch.Tensor]  # [B]  w_m / sum(w), for display
    fused: torch.Tensor  # [B, K]  sum_m w_m * z_m


def energy(logits: torch.Tensor) -> torch.Tensor:
    """Free energy at temperature 1; logsumexp is the numerically stable form of log(sum(exp))."""
    return -torch.logsumexp(logits, dim=-1)


def confidence(logits: torch.Tensor, scale: float = DEFAULT_CONFIDENCE_SCALE) -> torch.Tensor:
    """QMF's quality score: the negated energy, scaled. Larger means the branch is surer."""
    return -energy(logits) * scale


def shares(quality: dict[str, torch.Tensor], floor: float = 0.0) -> dict[str, torch.Tensor]:
    """Each modality's share of the fusion weight, w_m / sum(w) (w_m with the floor added, as fused).

    The energy score is unbounded below, so a branch can get a negative weight; for a share that
    a person can read (0..1, summing to 1) negative weights count as zero, and a sample whose
    weights are all zero splits evenly.
    """
    names = list(quality)
    weights, total = _positive(quality, floor)
    stacked = torch.stack([weights[n] for n in names], dim=-1)
    even = torch.full_like(stacked, 1.0 / len(names))
    share = torch.where(total.unsqueeze(-1) > 0, stacked / total.unsqueeze(-1).clamp(min=1e-12), even)
    return {n: share[..., i] for i, n in enumerate(names)}


def _positive(quality: dict[str, torch.Tensor], floor: float = 0.0) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The fusion weights from the quality scores, a negative one counting as zero, plus the floor, and
    their sum [B] (0 where none is positive and there is no floor: the fused logits and the shares then
    treat every input alike)."""
    weights = {n: q.clamp(min=0) + floor for n, q in quality.items()}
    return weights, torch.stack(list(weights.values()), dim=-1).sum(dim=-1)


def fuse_by_energy(
    logits: dict[str, torch.Tensor],
    scale: float = DEFAULT_CONFIDENCE_SCALE,
    detach_weights: bool = True,
    floor: float = 0.0,
) -> FusionOutput:
    """QMF's dynamic fusion: weight each modality's logits by its own energy confidence, a negative
    confidence counting as zero (late fusion where every one does), plus `floor` (see the module docstring)."""
    if len(logits) < 1:
        raise ValueError("fusion needs at least one modality")
    energies = {n: energy(z) for n, z in logits.items()}
    quality = {n: -e * scale for n, e in energies.items()}
    held = {n: q.detach() if detach_weights else q for n, q in quality.items()}
    _, total = _positive(held)  # 0 where every confidence is zero or below: late fusion there, floor or not
    weights, _ = _positive(held, floor)
    fused = None
    for n, z in logits.items():
        term = weights[n].unsqueeze(-1) * z
        fused = term if fused is None else fused + term
    assert fused is not None
    fused = torch.where((total > 0).unsqueeze(-1), fused, fuse_late(logits))
    return FusionOutput(logits=dict(logits), energy=energies, quality=quality, share=shares(quality, floor),
                        fused=fused)


def fuse_late(logits: dict[str, torch.Tensor]) -> torch.Tensor:
    """Static late fusion: every modality's logits with the same weight (their mean)."""
    return torch.stack(list(logits.values()), dim=0).mean(dim=0)


def fuse_single(logits: dict[str, torch.Tensor], modality: str) -> torch.Tensor:
    """One modality alone: the branch's own logits."""
    return logits[modality]


def fuse_oracle(logits: dict[str, torch.Tensor], corrupted: dict[str, torch.Tensor]) -> torch.Tensor:
    """The oracle rule: late fusion over only the modalities known to be clean.

    `corrupted[m]` is a bool tensor [B]. Where every modality of a sample is corrupted, the oracle
    has nothing better to do than plain late fusion.
    """
    names = list(logits)
    z = torch.stack([logits[n] for n in names], dim=0)  # [M, B, K]
    clean = torch.stack([~corrupted[n].bool() for n in names], dim=0).to(z.dtype)  # [M, B]
    none_clean = clean.sum(dim=0) == 0
    clean = torch.where(none_clean.unsqueeze(0), torch.ones_like(clean), clean)
    return (z * clean.unsqueeze(-1)).sum(dim=0) / clean.sum(dim=0).unsqueeze(-1)
