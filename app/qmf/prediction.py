"""One prediction as numbers and as the JSON every consumer reads.

``Prediction.to_json()`` is the one builder of the prediction JSON: ``qmf predict --json`` prints it,
the desktop app's result view draws it, a review session stores its numbers and rebuilds the same
JSON from them (``ReviewSession.prediction_json``), so the shapes cannot drift apart. No torch here:
a session is read without loading the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ModalityResult", "Prediction"]


@dataclass
class ModalityResult:
    name: str
    kind: str
    file: str | None
    label: str
    index: int
    probability: float
    probabilities: list[float]
    energy: float
    quality: float
    share: float
    # Among clean validation inputs (the bundle's calibration table, app/qmf/calibration.py; None for a bundle
    # without one): the percentile of this quality (3.0 = lower than 97 % of clean inputs) and the unfamiliar mark.
    quality_percentile: float | None = None
    unfamiliar: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "label": self.label,
            "index": self.index,
            "probability": self.probability,
            "probabilities": self.probabilities,
            "energy": self.energy,
            "quality": self.quality,
            "share": self.share,
            "quality_percentile": self.quality_percentile,
            "unfamiliar": self.unfamiliar,
        }


@dataclass
class Prediction:
    model_name: str
    model_sha256: str
    labels: list[str]
    label: str
    index: int
    probability: float
    probabilities: list[float]
    modalities: dict[str, ModalityResult]
    late_fusion_probabilities: list[float] = field(default_factory=list)
    seconds: float = 0.0
    # the bundle's calibration table (app/qmf/calibration.py), so the JSON says what its percentiles are of;
    # None for a bundle without one
    calibration: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "model": {"name": self.model_name, "sha256": self.model_sha256},
            "labels": self.labels,
            "label": self.label,
            "index": self.index,
            "probability": self.probability,
            "probabilities": self.probabilities,
            "modalities": {n: r.to_json() for n, r in self.modalities.items()},
            "late_fusion": {"probabilities": self.late_fusion_probabilities},
            "seconds": self.seconds,
            "calibration": self.calibration,
        }
