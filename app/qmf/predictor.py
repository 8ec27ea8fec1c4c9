"""Prediction for people: files in, a labelled answer and per-modality quality scores out.

`Predictor` owns a loaded bundle and the modality readers its manifest describes. The command line,
the desktop app's worker thread and the batch reviewer all go through it, so the numbers they show
for the same files and model are the same numbers.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.modalities import Modality, get_modality
from app.qmf.bundle import Bundle, load_bundle
from app.qmf.calibration import is_unfamiliar, modality_table, percentile, read_calibration
from app.qmf.corruption import Corruption, parse_corruption  # the parser lives apart from torch; re-exported
from app.qmf.fusion import fuse_late
from app.qmf.prediction import ModalityResult, Prediction

__all__ = ["Corruption", "ModalityResult", "Prediction", "Predictor", "parse_corruption"]


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
                    calibration=self.calibration,
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
