"""What the Predict tab asks its worker and what comes back: typed, one dataclass per message.

Requests carry an id the service assigns; every answer carries the id of the request it answers, so
the service can drop answers to superseded requests in one place (`PredictionService._deliver`).
Failures carry an `ErrorKind` (the same enum as the review run's messages): receivers branch on the
kind and show the message; they never compare class names or parse the sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from app.review.messages import ErrorKind

if TYPE_CHECKING:  # pragma: no cover - numpy is imported by the worker, not before the window shows
    import numpy as np

__all__ = [
    "SWEEP_LEVELS", "ErrorKind", "ModelFailed", "ModelLoaded", "ModelLoading", "ModelOpened", "PartlyDecoded",
    "PredictFailed",
    "PredictRequest", "Predicted", "SweepCurve", "SweepDone", "SweepFailed", "SweepRequest",
]

SWEEP_LEVELS = tuple(float(v) for v in range(11))  # severities 0, 1, ..., 10
Corruption = tuple[str, str, float]  # (input name, corruption kind, level 0..10)


@dataclass(frozen=True)
class PredictRequest:
    """One prediction: files per input (None = missing) and the corruptions to apply."""

    job: ClassVar[str] = "predict"
    request_id: int
    files: dict[str, str | None]
    corruptions: list[Corruption] = field(default_factory=list)
    seed: int = 0


@dataclass(frozen=True)
class SweepRequest:
    """Degrade one input at a time over the whole severity range with the given kinds."""

    job: ClassVar[str] = "sweep"
    request_id: int
    files: dict[str, str | None]
    kinds: dict[str, str]
    levels: tuple[float, ...] = SWEEP_LEVELS
    seed: int = 0


@dataclass(frozen=True)
class ModelLoading:
    job: ClassVar[str] = "model"
    request_id: int
    path: str


@dataclass(frozen=True)
class ModelOpened:
    """The model file's header was read and checked in the worker (`PredictionService.open_model`), before
    its weights: the page builds its panels from `manifest` while the weights load."""

    job: ClassVar[str] = "model"
    request_id: int
    path: str
    manifest: dict[str, Any]


@dataclass(frozen=True)
class ModelLoaded:
    """The worker holds the model now. `manifest` is the bundle's manifest plus "path" and "sha256"."""

    job: ClassVar[str] = "model"
    request_id: int
    path: str
    manifest: dict[str, Any]


@dataclass(frozen=True)
class ModelFailed:
    job: ClassVar[str] = "model"
    request_id: int
    path: str
    kind: ErrorKind
    message: str  # one line naming the file
    detail: str = ""
    header: bool = False  # True: the header itself was refused (open_model), so nothing of this file was used


@dataclass(frozen=True)
class Predicted:
    """The answer to a PredictRequest: the prediction as `qmf predict --json` prints it, and the
    degraded raw inputs the model saw (for the previews)."""

    job: ClassVar[str] = "predict"
    request_id: int
    prediction: dict[str, Any]
    raw: dict[str, np.ndarray]
    info: dict[str, str]  # one line per input about the file on disk
    files: dict[str, str | None]
    corruptions: list[dict[str, Any]]
    seed: int
    seconds: float  # decode + degrade + model, in the worker
    model_seconds: float
    clean: dict[str, np.ndarray] = field(default_factory=dict)  # the inputs as read, before degrading


@dataclass(frozen=True)
class PartlyDecoded:
    """Sent before a PredictFailed for an unreadable input: the inputs of that request that did decode."""

    job: ClassVar[str] = "predict"
    request_id: int
    raw: dict[str, np.ndarray]
    info: dict[str, str]


@dataclass(frozen=True)
class PredictFailed:
    """No prediction. `modality` names the input at fault (None: not one input's fault)."""

    job: ClassVar[str] = "predict"
    request_id: int
    kind: ErrorKind
    modality: str | None
    message: str
    detail: str = ""


@dataclass(frozen=True)
class SweepCurve:
    kind: str  # the corruption swept
    quality: list[float]
    share: list[float]
    confidence: list[float]  # the fused probability
    label: list[str]


@dataclass(frozen=True)
class SweepDone:
    job: ClassVar[str] = "sweep"
    request_id: int
    levels: list[float]
    curves: dict[str, SweepCurve]

    def as_json(self) -> dict[str, Any]:
        """{"levels": [...], "modalities": {name: {"kind", "quality", "share", "confidence", "label"}}}"""
        return {"levels": list(self.levels),
                "modalities": {n: {"kind": c.kind, "quality": c.quality, "share": c.share,
                                   "confidence": c.confidence, "label": c.label} for n, c in self.curves.items()}}


@dataclass(frozen=True)
class SweepFailed:
    job: ClassVar[str] = "sweep"
    request_id: int
    kind: ErrorKind
    message: str
    detail: str = ""
