"""The model's architecture as plain, JSON-serialisable data (no torch).

A model file's manifest carries this config, so the torch-free prediction path (app/qmf/onnx_graph.py)
reads labels, modalities and the fusion scale from it without importing torch; app/qmf/model.py builds
the torch modules from the same config for training and the fallback path.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from app.qmf.manifest_schema import DEFAULT_ENCODER  # documented with its ranges there; re-exported here

DEFAULT_CONFIDENCE_SCALE = 0.1


@dataclass
class ModalityConfig:
    """One input of the model: its name (the CSV column / CLI option), kind and preprocessing."""

    name: str
    kind: str
    preprocessing: dict[str, Any] = field(default_factory=dict)
    encoder: dict[str, Any] = field(default_factory=dict)

    def encoder_settings(self) -> dict[str, Any]:
        return {**DEFAULT_ENCODER.get(self.kind, {}), **self.encoder}

    def describe_encoder(self) -> str:
        """The encoder in a few words, for model cards: "CNN 16-32-64-64, hidden 128, temporal pooling (kernel 3)"."""
        s = self.encoder_settings()
        if self.kind == "text":
            return f"bag of words, embedding {s.get('embedding')}, hidden {s.get('hidden')}"
        pooling = f"temporal pooling (kernel {s['temporal']})" if s.get("temporal") else "global average pooling"
        return f"CNN {'-'.join(str(c) for c in s.get('channels', []))}, hidden {s.get('hidden')}, {pooling}"


@dataclass
class ModelConfig:
    name: str
    labels: list[str]
    modalities: list[ModalityConfig]
    confidence_scale: float = DEFAULT_CONFIDENCE_SCALE
    detach_weights: bool = True
    weight_floor: float = 0.0  # added to every input's fusion weight (app/qmf/fusion.py, fuse_by_energy)

    def __post_init__(self) -> None:
        names = [m.name for m in self.modalities]
        if len(names) < 2:
            raise ValueError(f"a QMF model needs at least two modalities, got {names}")
        if len(set(names)) != len(names):
            raise ValueError(f"modality names must be unique, got {names}")
        if len(self.labels) < 2:
            raise ValueError("a classifier needs at least two labels")
        if not 0.0 <= self.weight_floor <= 1000.0:
            raise ValueError(f"weight_floor must be between 0 and 1000, got {self.weight_floor}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        mods = [ModalityConfig(**m) for m in data["modalities"]]
        return cls(
            name=data["name"],
            labels=list(data["labels"]),
            modalities=mods,
            confidence_scale=float(data.get("confidence_scale", DEFAULT_CONFIDENCE_SCALE)),
            detach_weights=bool(data.get("detach_weights", True)),
            weight_floor=float(data.get("weight_floor", 0.0)),
        )
