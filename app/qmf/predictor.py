"""Prediction for people: files in, a labelled answer and per-modality quality scores out.

`Predictor` owns a loaded bundle and the modality readers its manifest describes. The command line,
the desktop app's worker thread and the batch reviewer all go through it, so the numbers they show
for the same files and model are the same numbers.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.modalities import Modality, get_modality
from app.qmf.bundle import Bundle, load_bundle
from app.qmf.calibration import is_unfamiliar, modality_table, percentile, read_calibration
from app.qmf.fusion import fuse_late


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
    # Among clean validation inputs (the bundle's calibration table; None for a bundle without one):
    # the percentile of this quality (3.0 = lower than 97 % of clean inputs) and the "unfamiliar" mark.
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
    # {"percentile": 1.0, "unfamiliar_below": {modality: quality}} from the bundle; None without calibration
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


Corruption = tuple[str, str, float]  # (modality name, corruption kind, level 0..10)


def parse_corruption(text: str) -> Corruption:
    """Parse `MODALITY:KIND:LEVEL`, e.g. `audio:white_noise:5`."""
    parts = text.split(":")
    if len(parts) != 3:
        raise ValueError(f"corruption {text!r} should look like MODALITY:KIND:LEVEL, e.g. audio:white_noise:5")
    name, kind, level_text = parts
    try:
        level = float(level_text)
    except ValueError:
        raise ValueError(f"corruption {text!r}: level {level_text!r} is not a number (0 to 10)") from None
    if not 0 <= level <= 10:
        raise ValueError(f"corruption {text!r}: level must be between 0 and 10")
    return name, kind, level


class Predictor:
    """A loaded model plus its modality readers. Not thread-safe: give each thread its own."""

    def __init__(self, bundle: Bundle):
        self.bundle = bundle
        self.model = bundle.model
        self.config = bundle.model.config
        self.modalities: dict[str, Modality] = {
            m.name: get_modality(m.kind, m.preprocessing) for m in self.config.modalities
        }
        self.device = next(self.model.parameters()).device
        self.calibration = read_calibration(bundle.manifest)  # None: no percentiles, no marks
        self._calibration_summary = None if self.calibration is None else {
            "percentile": self.calibration.get("unfamiliar_percentile"),
            "unfamiliar_below": {n: t["unfamiliar_below"] for n, t in self.calibration.get("modalities", {}).items()},
        }

    @classmethod
    def load(cls, path: str | Path | None = None, device: str = "cpu") -> Predictor:
        return cls(load_bundle(path, device=device))

    @property
    def name(self) -> str:
        return self.bundle.name

    @property
    def sha256(self) -> str:
        return self.bundle.sha256

    @property
    def labels(self) -> list[str]:
        return list(self.config.labels)

    @property
    def manifest(self) -> dict[str, Any]:
        return self.bundle.manifest

    def load_inputs(self, files: Mapping[str, str | Path | None]) -> dict[str, np.ndarray]:
        """Decode one pair. A modality left out (or None) is treated as missing: its blank input."""
        unknown = sorted(set(files) - set(self.modalities))
        if unknown:
            raise KeyError(f"the model has no modality {unknown[0]!r}; it has {list(self.modalities)}")
        raw = {}
        for name, modality in self.modalities.items():
            path = files.get(name)
            raw[name] = modality.load(path) if path is not None else modality.blank()
        return raw

    def corrupt(self, raw: Mapping[str, np.ndarray], corruptions: Iterable[Corruption], seed: int = 0) -> dict[str, np.ndarray]:
        """Degrade inputs; each modality gets its own generator derived from `seed` and its name."""
        out = dict(raw)
        for i, (name, kind, level) in enumerate(corruptions):
            if name not in self.modalities:
                raise KeyError(f"the model has no modality {name!r}; it has {list(self.modalities)}")
            rng = np.random.default_rng([seed, i, *name.encode()])
            out[name] = self.modalities[name].corrupt(out[name], kind, level, rng)
        return out

    def to_batch(self, raws: Sequence[Mapping[str, np.ndarray]]) -> dict[str, torch.Tensor]:
        """Decoded pairs -> one batched tensor per modality, on the model's device."""
        return {
            name: torch.stack([m.to_tensor(r[name]) for r in raws]).to(self.device)
            for name, m in self.modalities.items()
        }

    @torch.inference_mode()
    def predict_tensors(self, batch: Mapping[str, torch.Tensor]) -> dict[str, Any]:
        """Raw numbers for a batch of tensors (numpy arrays), shared by predict_many and evaluation."""
        out = self.model(dict(batch))
        late = fuse_late(out.logits)
        return {
            "fused": torch.softmax(out.fused, -1).cpu().numpy(),
            "late": torch.softmax(late, -1).cpu().numpy(),
            "per_modality": {n: torch.softmax(z, -1).cpu().numpy() for n, z in out.logits.items()},
            "energy": {n: v.cpu().numpy() for n, v in out.energy.items()},
            "quality": {n: v.cpu().numpy() for n, v in out.quality.items()},
            "share": {n: v.cpu().numpy() for n, v in out.share.items()},
        }

    def predict_many(
        self,
        raws: Sequence[Mapping[str, np.ndarray]],
        files: Sequence[Mapping[str, str | Path | None]] | None = None,
    ) -> list[Prediction]:
        """Predict decoded pairs in one batch."""
        tensors = [{name: m.to_tensor(r[name]) for name, m in self.modalities.items()} for r in raws]
        return self.predict_from_tensors(tensors, files)

    def predict_from_tensors(
        self,
        tensors: Sequence[Mapping[str, torch.Tensor]],
        files: Sequence[Mapping[str, str | Path | None]] | None = None,
    ) -> list[Prediction]:
        """Predict pairs already turned into model tensors (one dict per pair, no batch dimension).

        Split from predict_many so a batch runner can build tensors on other threads while this one
        runs the model; both paths assemble results here, so their numbers are the same.
        """
        if not tensors:
            return []
        start = time.perf_counter()
        batch = {name: torch.stack([t[name] for t in tensors]).to(self.device) for name in self.modalities}
        numbers = self.predict_tensors(batch)
        per_item = (time.perf_counter() - start) / len(tensors)
        labels = self.labels
        preds = []
        for i in range(len(tensors)):
            fused = numbers["fused"][i]
            mods = {}
            for name, m in self.modalities.items():
                probs = numbers["per_modality"][name][i]
                k = int(probs.argmax())
                file = (files[i].get(name) if files is not None else None) or None
                quality = float(numbers["quality"][name][i])
                table = modality_table(self.calibration, name)
                mods[name] = ModalityResult(
                    name=name,
                    kind=m.kind,
                    file=str(file) if file is not None else None,
                    label=labels[k],
                    index=k,
                    probability=float(probs[k]),
                    probabilities=[float(p) for p in probs],
                    energy=float(numbers["energy"][name][i]),
                    quality=quality,
                    share=float(numbers["share"][name][i]),
                    quality_percentile=percentile(table, quality),
                    unfamiliar=is_unfamiliar(table, quality),
                )
            k = int(fused.argmax())
            preds.append(
                Prediction(
                    model_name=self.name,
                    model_sha256=self.sha256,
                    labels=labels,
                    label=labels[k],
                    index=k,
                    probability=float(fused[k]),
                    probabilities=[float(p) for p in fused],
                    modalities=mods,
                    late_fusion_probabilities=[float(p) for p in numbers["late"][i]],
                    seconds=per_item,
                    calibration=self._calibration_summary,
                )
            )
        return preds

    def predict(self, raw: Mapping[str, np.ndarray], files: Mapping[str, str | Path | None] | None = None) -> Prediction:
        return self.predict_many([raw], [files] if files is not None else None)[0]

    def predict_files(
        self, files: Mapping[str, str | Path | None], corruptions: Iterable[Corruption] = (), seed: int = 0
    ) -> Prediction:
        start = time.perf_counter()
        raw = self.corrupt(self.load_inputs(files), corruptions, seed)
        pred = self.predict(raw, files)
        pred.seconds = time.perf_counter() - start
        return pred
