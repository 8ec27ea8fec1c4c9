"""Prediction for people: files in, a labelled answer and per-modality quality scores out.

`Predictor` owns a loaded bundle and the modality readers its manifest describes. The command line,
the desktop app's worker thread and the batch reviewer all go through it, so the numbers they show
for the same files and model are the same numbers.

Two backends compute those numbers. A model file that carries its ONNX graph runs it with
onnxruntime (app/qmf/onnx_graph.py) on numpy preprocessing: this path never imports torch, so a
prediction process starts in a fraction of a second and the installed app needs no torch. A file
without a graph (or `backend="torch"`) builds the torch model; both return the same numbers (within
1e-4, tests/qmf/test_onnx.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from app.data.manifest_cells import URI_PROBLEM, is_uri
from app.modalities import InputError, Modality, get_modality
from app.qmf.bundle import Bundle, BundleError, load_bundle, read_bundle
from app.qmf.calibration import Lookup, modality_table, read_calibration
from app.qmf.config import ModelConfig
from app.qmf.corruption import Corruption, parse_corruption  # the parser lives apart from torch; re-exported
from app.qmf.prediction import ModalityResult, Prediction

__all__ = ["BACKENDS", "Corruption", "ModalityResult", "Prediction", "Predictor", "load_pair", "parse_corruption"]

BACKENDS = ("auto", "onnx", "torch")


def load_pair(modalities: Mapping[str, Modality], files: Mapping[str, str | Path | None],
              open_uri: Callable[[str], AbstractContextManager[BinaryIO]] | None = None) -> dict[str, np.ndarray]:
    """Decode one pair with these readers. A modality left out (or None) is missing: its blank input.

    ``open_uri``: opens a ``scheme://`` file (the Ray engine's `app.review.uris.UriOpener`), decoded by
    the modality's ``load_file`` with the same limits; without it a URI is an InputError saying so."""
    unknown = sorted(set(files) - set(modalities))
    if unknown:
        raise KeyError(f"the model has no modality {unknown[0]!r}; it has {list(modalities)}")
    raw = {}
    for name, modality in modalities.items():
        path = files.get(name)
        if path is None:
            raw[name] = modality.blank()
        elif isinstance(path, str) and is_uri(path):
            if open_uri is None:
                raise InputError(path, URI_PROBLEM)
            with open_uri(path) as fh:
                raw[name] = modality.load_file(fh, path)
        else:
            raw[name] = modality.load(path)
    return raw


class TorchModel:
    """The fallback backend: the bundle's torch model, giving the same numbers as `OnnxModel.run`."""

    backend = "torch"

    def __init__(self, model: Any):
        import torch

        from app.qmf.fusion import fuse_late

        self.model = model
        self.device = next(model.parameters()).device
        self._torch, self._fuse_late = torch, fuse_late

    def run(self, batch: Mapping[str, np.ndarray]) -> dict[str, Any]:
        torch = self._torch
        with torch.inference_mode():
            out = self.model({n: torch.from_numpy(np.ascontiguousarray(v)).to(self.device) for n, v in batch.items()})
            late = self._fuse_late(out.logits)
            return {
                "fused": torch.softmax(out.fused, -1).cpu().numpy(),
                "late": torch.softmax(late, -1).cpu().numpy(),
                "per_modality": {n: torch.softmax(z, -1).cpu().numpy() for n, z in out.logits.items()},
                "logits": {n: z.cpu().numpy() for n, z in out.logits.items()},
                "energy": {n: v.cpu().numpy() for n, v in out.energy.items()},
                "quality": {n: v.cpu().numpy() for n, v in out.quality.items()},
                "share": {n: v.cpu().numpy() for n, v in out.share.items()},
            }


class Predictor:
    """A loaded model plus its modality readers. Not thread-safe: give each thread its own."""

    def __init__(self, bundle: Bundle, engine: Any = None):
        self.bundle = bundle
        try:
            self.config = ModelConfig.from_dict(bundle.manifest["model"])
            self.modalities: dict[str, Modality] = {
                m.name: get_modality(m.kind, m.preprocessing) for m in self.config.modalities
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(bundle.path or "<model>", f"the model's architecture entry is invalid: {exc}") from None
        if engine is None:
            engine = TorchModel(bundle.model) if bundle.model is not None else self._open_graph()
        self.engine = engine
        self.calibration = read_calibration(bundle.manifest)  # None: no percentiles, no marks

    @property
    def calibration(self) -> dict[str, Any] | None:
        return self._calibration

    @calibration.setter
    def calibration(self, value: dict[str, Any] | None) -> None:
        """The percentile tables, and their look-up form per modality (built once, not per prediction)."""
        self._calibration = value
        self._lookups = {name: None if (t := modality_table(value, name)) is None else Lookup(t)
                         for name in self.modalities}

    def _open_graph(self) -> Any:
        from app.qmf.onnx_graph import GraphError, OnnxModel

        path = self.bundle.path or "<model>"
        if self.bundle.graph is None:
            raise BundleError(path, "the model file has neither a torch model nor an ONNX graph loaded")
        try:
            return OnnxModel(self.bundle.graph, list(self.modalities),
                             {n: m.input_shape for n, m in self.modalities.items()}, path)
        except GraphError as exc:
            raise BundleError(path, f"its ONNX graph cannot be used: {exc}") from None
        except ImportError:
            raise BundleError(path, "the ONNX graph needs the onnxruntime package (pip install onnxruntime)") from None

    @classmethod
    def load(cls, path: str | Path | None = None, device: str = "cpu", backend: str = "auto") -> Predictor:
        """Open a model file. `auto`: its ONNX graph with onnxruntime when it has one (and device is
        the CPU), else torch; `onnx` insists on the graph; `torch` always builds the torch model."""
        if backend not in BACKENDS:
            raise ValueError(f"backend {backend!r}: choose one of {', '.join(BACKENDS)}")
        if backend == "torch" or (backend == "auto" and device != "cpu"):
            return cls(load_bundle(path, device=device))
        bundle = read_bundle(path)
        if bundle.graph is None:
            if backend == "onnx":
                raise BundleError(bundle.path, "the model file has no ONNX graph; add one with "
                                               f"`qmf export-onnx {bundle.path}`")
            import importlib.util

            if importlib.util.find_spec("torch") is None:
                raise BundleError(bundle.path, "the model file has no ONNX graph and this installation has no torch "
                                               "to run it without one; add the graph with `qmf export-onnx` where "
                                               "QMF Studio is installed with torch (a source install)")
            return cls(load_bundle(path, device=device))
        return cls(bundle)

    @property
    def backend(self) -> str:
        """'onnxruntime' or 'torch': which engine computes the numbers."""
        return self.engine.backend

    @property
    def model(self) -> Any:
        """The torch model (the torch backend only; None on the ONNX path)."""
        return self.bundle.model

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
        return load_pair(self.modalities, files)

    def corrupt(self, raw: Mapping[str, np.ndarray], corruptions: Iterable[Corruption], seed: int = 0) -> dict[str, np.ndarray]:
        """Degrade inputs; each modality gets its own generator derived from `seed` and its name."""
        out = dict(raw)
        for i, (name, kind, level) in enumerate(corruptions):
            if name not in self.modalities:
                raise KeyError(f"the model has no modality {name!r}; it has {list(self.modalities)}")
            rng = np.random.default_rng([seed, i, *name.encode()])
            out[name] = self.modalities[name].corrupt(out[name], kind, level, rng)
        return out

    def to_batch(self, raws: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """Decoded pairs -> one batched model-input array per modality."""
        return {name: m.to_arrays([r[name] for r in raws]) for name, m in self.modalities.items()}

    def predict_arrays(self, batch: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """Raw numbers for a batch of model inputs (numpy arrays), shared by predict_many and evaluation:
        fused, late, per_modality (probabilities), logits, energy, quality, share."""
        return self.engine.run(batch)

    def predict_many(
        self,
        raws: Sequence[Mapping[str, np.ndarray]],
        files: Sequence[Mapping[str, str | Path | None]] | None = None,
    ) -> list[Prediction]:
        """Predict decoded pairs in one batch."""
        if not raws:
            return []
        start = time.perf_counter()
        numbers = self.predict_arrays(self.to_batch(raws))
        return self._predictions(numbers, len(raws), files, (time.perf_counter() - start) / len(raws))

    def predict_from_arrays(
        self,
        arrays: Sequence[Mapping[str, Any]],
        files: Sequence[Mapping[str, str | Path | None]] | None = None,
    ) -> list[Prediction]:
        """Predict pairs already turned into model inputs (`Modality.to_array`, one dict per pair, no
        batch dimension).

        Split from predict_many so a batch runner can preprocess on other threads or processes while
        this one runs the model; both paths assemble results here, so their numbers are the same.
        """
        if not arrays:
            return []
        return self.predict_batch({name: np.stack([np.asarray(a[name]) for a in arrays]) for name in self.modalities},
                                  files)

    def predict_batch(
        self,
        batch: Mapping[str, np.ndarray],
        files: Sequence[Mapping[str, str | Path | None]] | None = None,
    ) -> list[Prediction]:
        """Predict pairs whose model inputs are already stacked, one [B, ...] array per modality (what
        `Modality.to_arrays` makes; the batch runner's decoding processes send these)."""
        count = len(next(iter(batch.values()))) if batch else 0
        if not count:
            return []
        start = time.perf_counter()
        numbers = self.predict_arrays(batch)
        return self._predictions(numbers, count, files, (time.perf_counter() - start) / count)

    predict_from_tensors = predict_from_arrays  # the name before the ONNX path (torch tensors work too)

    def predictions(self, numbers: Mapping[str, Any], files: Sequence[Mapping[str, str | Path | None]] | None = None,
                    seconds: float = 0.0) -> list[Prediction]:
        """The predictions of `predict_arrays`'s ``numbers`` for a batch (computed elsewhere: the batch
        runner's scoring processes run the same graph); ``seconds``: each one's model time."""
        count = len(numbers["fused"]) if numbers else 0
        return self._predictions(dict(numbers), count, files, seconds) if count else []

    def _predictions(self, numbers: dict[str, Any], count: int,
                     files: Sequence[Mapping[str, str | Path | None]] | None, per_item: float) -> list[Prediction]:
        labels = self.labels
        # Whole arrays to Python numbers at once (`tolist` gives the same floats as float() of each
        # element, for a fraction of the per-element cost); the argmax (np.argmax: the first largest,
        # NaN counting as the largest) and the calibration marks a batch at a time too.
        fused_np = np.asarray(numbers["fused"])
        fused_all = fused_np.tolist()
        fused_k = fused_np.argmax(axis=1).tolist() if count else []
        late_all = np.asarray(numbers["late"]).tolist()
        per_mod = {}
        for name in self.modalities:
            probs_np = np.asarray(numbers["per_modality"][name])
            quality_all = np.asarray(numbers["quality"][name]).reshape(-1).tolist()
            lookup = self._lookups[name]
            per_mod[name] = (probs_np.tolist(), probs_np.argmax(axis=1).tolist() if count else [],
                             np.asarray(numbers["energy"][name]).reshape(-1).tolist(), quality_all,
                             np.asarray(numbers["share"][name]).reshape(-1).tolist(),
                             [None] * count if lookup is None else lookup.percentiles(quality_all[:count]),
                             [None] * count if lookup is None else lookup.marks(quality_all[:count]))
        preds = []
        for i in range(count):
            mods = {}
            for name, m in self.modalities.items():
                probs_all, argmax, energy, quality_all, share, pct, marks = per_mod[name]
                probs = probs_all[i]
                k = argmax[i]
                file = (files[i].get(name) if files is not None else None) or None
                mods[name] = ModalityResult(
                    name=name,
                    kind=m.kind,
                    file=str(file) if file is not None else None,
                    label=labels[k],
                    index=k,
                    probability=probs[k],
                    probabilities=probs,
                    energy=energy[i],
                    quality=quality_all[i],
                    share=share[i],
                    quality_percentile=pct[i],
                    unfamiliar=marks[i],
                )
            fused = fused_all[i]
            k = fused_k[i]
            preds.append(
                Prediction(
                    model_name=self.name,
                    model_sha256=self.sha256,
                    labels=labels,
                    label=labels[k],
                    index=k,
                    probability=fused[k],
                    probabilities=fused,
                    modalities=mods,
                    late_fusion_probabilities=late_all[i],
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
        raw = self.load_inputs(files)
        if corruptions:  # none (the usual case): the decoded inputs as they are
            raw = self.corrupt(raw, corruptions, seed)
        pred = self.predict(raw, files)
        pred.seconds = time.perf_counter() - start
        return pred
