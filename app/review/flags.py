"""Per-pair flags that tell an analyst where to look first.

Flags are computed from the numbers a session stores (fused probability, each modality's label and
share, the given label), never from the model, so changing a threshold re-flags ten thousand pairs in a
moment without re-running anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = [
    "FLAG_DISAGREEMENT",
    "FLAG_ERROR",
    "FLAG_LABEL_MISMATCH",
    "FLAG_LOW_CONFIDENCE",
    "FlagThresholds",
    "unfamiliar_flag",
    "compute_flags",
    "low_quality_flag",
]

FLAG_DISAGREEMENT = "disagreement"
FLAG_LOW_CONFIDENCE = "low confidence"
FLAG_LABEL_MISMATCH = "label mismatch"
FLAG_ERROR = "error"


def low_quality_flag(modality: str) -> str:
    return f"low-quality {modality}"


def unfamiliar_flag(modality: str) -> str:
    return f"unfamiliar {modality}"


@dataclass
class FlagThresholds:
    """What counts as suspicious. ``low_confidence``: fused probability below it.

    An input's own quality: with a calibrated model (its results carry the ``unfamiliar`` mark, quality
    below the model's calibrated percentile of clean validation inputs: app/qmf/calibration.py) and
    ``unfamiliar`` on, a marked input is flagged "unfamiliar <modality>" and the share threshold is not
    used. Otherwise (a model without calibration, or ``unfamiliar`` off) a modality whose share of the fused
    decision falls below ``low_share`` is flagged "low-quality <modality>".
    A threshold of 0 (or a switch set to False) turns that flag off."""

    low_share: float = 0.25
    low_confidence: float = 0.6
    disagreement: bool = True
    label_mismatch: bool = True
    unfamiliar: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> FlagThresholds:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in names})


def compute_flags(
    probability: float | None,
    prediction: str | None,
    modalities: Mapping[str, Mapping[str, Any]],
    label: str | None,
    thresholds: FlagThresholds,
    error: str | None = None,
) -> list[str]:
    """The flags of one pair, in a fixed order.

    ``modalities`` maps a modality name to at least ``{"label": str, "share": float}``, and for a
    calibrated model ``"unfamiliar": bool`` (None or absent: the model has no calibration).
    An error row has just the "error" flag: it has no numbers to judge.
    """
    if error is not None:
        return [FLAG_ERROR]
    flags = []
    for name, m in modalities.items():
        if thresholds.unfamiliar and m.get("unfamiliar") is not None:
            if m["unfamiliar"]:
                flags.append(unfamiliar_flag(name))
        elif m.get("share") is not None and float(m["share"]) < thresholds.low_share:
            flags.append(low_quality_flag(name))
    if thresholds.disagreement and len({m.get("label") for m in modalities.values()}) > 1:
        flags.append(FLAG_DISAGREEMENT)
    if probability is not None and probability < thresholds.low_confidence:
        flags.append(FLAG_LOW_CONFIDENCE)
    if thresholds.label_mismatch and label is not None and prediction is not None and label != prediction:
        flags.append(FLAG_LABEL_MISMATCH)
    return flags
