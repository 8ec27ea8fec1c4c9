"""Training a QMF model on paired data described by manifests.

A run is described by a recipe (TOML or JSON): the modalities with their preprocessing and encoder
sizes, and the training settings. The recipe is stored whole in the resulting bundle, so a model file
says how it was made. Randomness flows from the recipe's seed through explicit generators only.
"""

from __future__ import annotations

import json
import math
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from app.data.manifest import PairRow
from app.modalities import Modality, get_modality
from app.qmf.fusion import fuse_late
from app.qmf.losses import MARGIN_FORMS, RANKING_TARGETS, LossHistory, normalise_batch, qmf_loss
from app.qmf.model import ModalityConfig, ModelConfig, QMFModel

FUSION_LOSSES = ("qmf", "late")
VALIDATION_EPOCH = 1_000_000  # seeds validation corruption apart from any training epoch


@dataclass
class AugmentSpec:
    """Corrupt `modality` during training with `probability`, kind drawn from `kinds`, level uniform in `levels`."""

    modality: str
    kinds: list[str]
    levels: tuple[float, float] = (0.0, 10.0)
    probability: float = 0.5


@dataclass
class TrainingSettings:
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 1e-2
    rank_weight: float = 1.0  # lambda
    ranking_target: str = "history"  # see app.qmf.losses
    ranking_margin: str = "official"  # "official" or "paper": see app.qmf.losses.ranking_loss
    fusion_loss: str = "qmf"  # "late" trains a static late-fusion comparison model
    seed: int = 0
    patience: int = 3
    val_fraction: float = 0.1  # used when no validation manifest is given
    repair_each_epoch: bool = True
    samples_per_epoch: int | None = None
    workers: int = 0
    augment: list[AugmentSpec] = field(default_factory=list)
    modality_augment: dict[str, dict[str, Any]] = field(default_factory=dict)
    # outlier exposure and what evaluation holds out: app/qmf/outlier_exposure.py
    outliers: dict[str, Any] = field(default_factory=dict)
    energy_bound: dict[str, Any] = field(default_factory=dict)
    held_out: dict[str, Any] = field(default_factory=dict)
    # Start from the weights of this bundle (same architecture) instead of a random initialisation: Liu et al.
    # fine-tune a trained classifier with the energy bound. Relative paths are from the working directory.
    # The bundle's file name, SHA-256 and recipe are stored in the new bundle's manifest (training.init).
    init_from: str | None = None

    def __post_init__(self) -> None:
        if self.ranking_target not in RANKING_TARGETS:
            raise ValueError(f"ranking_target must be one of {RANKING_TARGETS}, got {self.ranking_target!r}")
        if self.ranking_margin not in MARGIN_FORMS:
            raise ValueError(f"ranking_margin must be one of {MARGIN_FORMS}, got {self.ranking_margin!r}")
        if self.fusion_loss not in FUSION_LOSSES:
            raise ValueError(f"fusion_loss must be one of {FUSION_LOSSES}, got {self.fusion_loss!r}")
        self.augment = [a if isinstance(a, AugmentSpec) else AugmentSpec(**a) for a in self.augment]
        for a in self.augment:
            a.levels = (float(a.levels[0]), float(a.levels[1]))
        from app.qmf.outlier_exposure import EnergyBound, HeldOut, OutlierSettings

        self.outlier_settings = OutlierSettings.from_dict(self.outliers)
        self.energy_settings = EnergyBound.from_dict(self.energy_bound)
        self.held_out_settings = HeldOut.from_dict(self.held_out)


@dataclass
class Recipe:
    name: str
    modalities: list[ModalityConfig]
    training: TrainingSettings
    labels: list[str] | None = None
    confidence_scale: float = 0.1
    detach_weights: bool = True
    description: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        known = {"name", "modalities", "training", "labels", "confidence_scale", "detach_weights", "description"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown recipe entries {unknown}; known: {sorted(known)}")
        if "modalities" not in data:
            raise ValueError("the recipe has no [[modalities]] entries")
        try:
            training = TrainingSettings(**data.get("training", {}))
        except TypeError as exc:
            raise ValueError(f"[training]: {exc}") from None
        return cls(
            name=str(data.get("name", "qmf-model")),
            modalities=[ModalityConfig(**m) for m in data["modalities"]],
            training=training,
            labels=[str(x) for x in data["labels"]] if data.get("labels") else None,
            confidence_scale=float(data.get("confidence_scale", 0.1)),
            detach_weights=bool(data.get("detach_weights", True)),
            description=str(data.get("description", "")),
        )

    @classmethod
    def from_file(cls, path: str | Path) -> Recipe:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ValueError(f"{path}: recipe file not found") from None
        try:
            data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not a valid recipe ({exc})") from None
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def choose_device() -> torch.device:
    """CUDA when present, else CPU: the same code runs on both."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class PairedData:
    """Decoded inputs of a manifest, held in memory once per unique file.

    Each modality keeps a list of unique raw inputs; each row points at one item per modality. Re-pairing
    shuffles the item a row uses within rows of the same label, which turns a fixed list of pairs into a
    fresh pairing every epoch (as AV-MNIST is built).
    """

    def __init__(
        self,
        rows: Sequence[PairRow],
        modalities: dict[str, Modality],
        labels: list[str],
        progress: Callable[[int, int], None] | None = None,
    ):
        self.modalities = modalities
        self.labels = labels
        label_index = {name: i for i, name in enumerate(labels)}
        self.items: dict[str, list[np.ndarray]] = {n: [] for n in modalities}
        self.item_files: dict[str, list[str]] = {n: [] for n in modalities}
        index_of: dict[str, dict[str, int]] = {n: {} for n in modalities}
        ids = {n: np.zeros(len(rows), dtype=np.int64) for n in modalities}
        y = np.zeros(len(rows), dtype=np.int64)
        total = len(rows)
        for r, row in enumerate(rows):
            if row.label is None:
                raise ValueError(f"row {row.line} ({row.id}) has no label; training needs labels")
            if row.label not in label_index:
                raise ValueError(f"row {row.line} ({row.id}): label {row.label!r} is not one of {labels}")
            y[r] = label_index[row.label]
            for name, modality in modalities.items():
                path = row.files.get(name)
                key = str(path) if path is not None else ""
                if key not in index_of[name]:
                    index_of[name][key] = len(self.items[name])
                    self.items[name].append(modality.load(path) if path is not None else modality.blank())
                    self.item_files[name].append(key)
                ids[name][r] = index_of[name][key]
            if progress is not None and (r % 500 == 0 or r == total - 1):
                progress(r + 1, total)
        self.base_ids = ids
        self.ids = {n: v.copy() for n, v in ids.items()}
        self.y = y

    def __len__(self) -> int:
        return len(self.y)

    def repair(self, rng: np.random.Generator) -> None:
        """New pairing: for every modality but the first, shuffle items among rows of the same label."""
        names = list(self.modalities)
        self.ids = {names[0]: self.base_ids[names[0]].copy()}
        for name in names[1:]:
            new = self.base_ids[name].copy()
            for label in np.unique(self.y):
                rows = np.flatnonzero(self.y == label)
                new[rows] = self.base_ids[name][rng.permutation(rows)]
            self.ids[name] = new


class EpochView(torch.utils.data.Dataset):
    """One epoch's samples: re-paired, augmented with a per-sample generator, turned into tensors."""

    def __init__(self, data: PairedData, order: np.ndarray, settings: TrainingSettings, epoch: int, augment: bool):
        self.data, self.order, self.settings, self.epoch, self.augment = data, order, settings, epoch, augment

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, k: int):
        r = int(self.order[k])
        rng = np.random.default_rng([self.settings.seed, self.epoch, r, 1 if self.augment else 0])
        tensors, ids, corrupted, foreign = {}, {}, {}, {}
        replaced = None
        if self.augment:
            from app.qmf.outlier_exposure import pick_foreign

            replaced = pick_foreign(self.settings.outlier_settings, self.data.modalities, rng, self._source)
        for name, modality in self.data.modalities.items():
            if replaced is not None and replaced[0] == name:
                tensors[name] = modality.to_tensor(replaced[1])
                ids[name] = int(self.data.ids[name][r])
                corrupted[name], foreign[name] = 0.0, True
                continue
            item = int(self.data.ids[name][r])
            raw = self.data.items[name][item]
            extra = self.settings.modality_augment.get(name)
            if self.augment and extra:
                from app.modalities.augment import augment_raw  # the modality's own augment() wins

                raw = augment_raw(modality, raw, rng, **extra)
            flag = 0.0
            for spec in self.settings.augment if self.augment else ():  # augment=False: clean (validation)
                if spec.modality == name and rng.random() < spec.probability:
                    from app.modalities.zoo import degrade

                    kind = spec.kinds[int(rng.integers(len(spec.kinds)))]
                    level = float(rng.uniform(*spec.levels))
                    raw = degrade(modality, raw, kind, level, rng)
                    flag = level
            tensors[name] = modality.to_tensor(raw)
            ids[name] = item
            corrupted[name], foreign[name] = flag, False
        return tensors, int(self.data.y[r]), ids, corrupted, foreign

    def _source(self, name: str, rng: np.random.Generator) -> np.ndarray:
        """A random real input of modality `name`, for foreign families that transform one."""
        items = self.data.items[name]
        return items[int(rng.integers(len(items)))]


def _collate(batch):
    """Batch of samples -> (tensors, labels, input ids, degradation levels (0 = clean), foreign flags)."""
    names = list(batch[0][0])
    tensors = {n: torch.stack([b[0][n] for b in batch]) for n in names}
    y = torch.tensor([b[1] for b in batch], dtype=torch.long)
    ids = {n: torch.tensor([b[2][n] for b in batch], dtype=torch.long) for n in names}
    levels = {n: torch.tensor([float(b[3][n]) for b in batch], dtype=torch.float32) for n in names}
    foreign = {n: torch.tensor([b[4][n] for b in batch], dtype=torch.bool) for n in names}
    return tensors, y, ids, levels, foreign


@dataclass
class TrainResult:
    model: QMFModel
    recipe: Recipe
    history: list[dict[str, float]]
    best_epoch: int
    validation: dict[str, float]
    seconds: float
    device: str
    init: dict[str, Any] | None = None  # the bundle the weights started from (training.init_from)


def _loader(view: EpochView, batch_size: int, workers: int) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        view, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=_collate,
        persistent_workers=False,
    )


def _validate(model: QMFModel, data: PairedData, settings: TrainingSettings, device: torch.device) -> dict[str, float]:
    """Validation on clean pairs and on pairs corrupted as in training (fixed generator): model selection
    looks at both, so a model that is right on clean data but brittle is not picked."""
    model.eval()
    totals = {"loss": 0.0, "clean_accuracy": 0.0, "corrupted_accuracy": 0.0}
    n = len(data)
    order = np.arange(n)
    with torch.inference_mode():
        for augment, key in ((False, "clean_accuracy"), (True, "corrupted_accuracy")):
            view = EpochView(data, order, settings, epoch=VALIDATION_EPOCH, augment=augment)
            for tensors, y, *_ in _loader(view, 512, 0):
                tensors = {k: v.to(device) for k, v in tensors.items()}
                y = y.to(device)
                out = model(tensors)
                fused = out.fused if settings.fusion_loss == "qmf" else fuse_late(out.logits)
                totals[key] += (fused.argmax(-1) == y).sum().item()
                totals["loss"] += F.cross_entropy(fused, y, reduction="sum").item()
    return {
        "loss": totals["loss"] / (2 * n),
        "clean_accuracy": totals["clean_accuracy"] / n,
        "corrupted_accuracy": totals["corrupted_accuracy"] / n,
    }


def _checkpoint_path(out: Path) -> Path:
    return out.with_name(out.name + ".ckpt")


def train(
    recipe: Recipe,
    train_rows: Sequence[PairRow],
    val_rows: Sequence[PairRow] | None = None,
    out: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train; early-stop on validation (never on test); checkpoint each epoch next to `out`."""
    from tqdm import tqdm

    settings = recipe.training
    start = time.perf_counter()
    labels = recipe.labels or sorted({r.label for r in train_rows if r.label is not None}, key=_label_sort_key)
    recipe.labels = labels
    build_text_vocabularies(recipe, train_rows)
    modalities = {m.name: get_modality(m.kind, m.preprocessing) for m in recipe.modalities}
    for m in recipe.modalities:  # store the full preprocessing (defaults filled in) in the bundle
        m.preprocessing = dict(modalities[m.name].params)
    check_training_kinds(settings, modalities)
    rng = np.random.default_rng(settings.seed)
    train_rows = list(train_rows)
    if val_rows is None:
        order = rng.permutation(len(train_rows))
        n_val = max(1, int(round(settings.val_fraction * len(train_rows))))
        val_rows = [train_rows[i] for i in order[:n_val]]
        train_rows = [train_rows[i] for i in order[n_val:]]
    log(f"decoding {len(train_rows)} training and {len(val_rows)} validation pairs")
    train_data = PairedData(train_rows, modalities, labels)
    val_data = PairedData(val_rows, modalities, labels)

    device = choose_device()
    torch.manual_seed(settings.seed)  # parameter initialisation; the one global seed, set by the trainer itself
    config = ModelConfig(
        name=recipe.name, labels=labels, modalities=recipe.modalities,
        confidence_scale=recipe.confidence_scale, detach_weights=recipe.detach_weights,
    )
    model = QMFModel(config).to(device)
    init = _initialise_from(model, settings.init_from, log) if settings.init_from else None
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    steps_per_epoch = math.ceil((settings.samples_per_epoch or len(train_data)) / settings.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=settings.learning_rate, total_steps=max(1, steps_per_epoch * settings.epochs)
    )
    histories = {n: LossHistory(len(train_data.items[n])) for n in modalities}
    epoch_log: list[dict[str, float]] = []
    best = {"loss": math.inf, "epoch": -1, "state": None, "validation": {}}
    first_epoch = 0

    ckpt = _checkpoint_path(out) if out is not None else None
    if resume and ckpt is not None and ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=True)  # our own file; weights_only executes nothing
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        scheduler.load_state_dict(state["scheduler"])
        for n in histories:
            histories[n].load_state(state["histories"][n].numpy())
        epoch_log = json.loads(state["log"])
        best = {"loss": float(state["best_loss"]), "epoch": int(state["best_epoch"]),
                "state": state["best_state"], "validation": json.loads(state["best_validation"])}
        first_epoch = int(state["epoch"]) + 1
        log(f"resuming from {ckpt} at epoch {first_epoch + 1}")

    bad_epochs = sum(1 for e in epoch_log if e["epoch"] > best["epoch"])
    for epoch in range(first_epoch, settings.epochs):
        if bad_epochs >= settings.patience:
            break
        epoch_rng = np.random.default_rng([settings.seed, epoch])
        if settings.repair_each_epoch:
            train_data.repair(epoch_rng)
        order = epoch_rng.permutation(len(train_data))
        if settings.samples_per_epoch:
            order = order[: settings.samples_per_epoch]
        view = EpochView(train_data, order, settings, epoch, augment=True)
        model.train()
        running = 0.0
        bar = tqdm(_loader(view, settings.batch_size, settings.workers), total=steps_per_epoch,
                   desc=f"epoch {epoch + 1}/{settings.epochs}", disable=not progress, leave=False)
        for step, (tensors, y, ids, levels, foreign) in enumerate(bar):
            tensors = {k: v.to(device) for k, v in tensors.items()}
            y = y.to(device)
            foreign = {k: v.to(device) for k, v in foreign.items()}
            out_ = model(tensors)
            records = None
            if settings.rank_weight > 0:
                if settings.ranking_target == "history":
                    records = {n: histories[n].normalised(ids[n].to(device)) for n in modalities}
                else:
                    records = {n: normalise_batch(F.cross_entropy(out_.logits[n], y, reduction="none"))
                               for n in modalities}
                # a foreign input is the worst input there is, whatever its cross-entropy happens to be
                records = {n: torch.where(foreign[n], torch.ones_like(r), r) for n, r in records.items()}
            fused_for_loss = fuse_late(out_.logits) if settings.fusion_loss == "late" else None
            any_foreign = any(bool(v.any()) for v in foreign.values())
            loss, per_sample = qmf_loss(out_.logits, out_.fused, out_.quality, y, records,
                                        settings.rank_weight, fused_for_loss, settings.ranking_margin,
                                        branch_mask={n: ~v for n, v in foreign.items()} if any_foreign else None)
            if settings.energy_settings.weight > 0:
                from app.qmf.outlier_exposure import outlier_loss

                loss = loss + outlier_loss(out_.energy, foreign, {k: v.to(device) for k, v in levels.items()},
                                           settings.energy_settings)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            if scheduler.last_epoch < scheduler.total_steps - 1:
                scheduler.step()
            for n in modalities:
                histories[n].update(ids[n], per_sample[n])
            running += loss.item()
            bar.set_postfix(loss=f"{running / (step + 1):.4f}")
        bar.close()
        validation = _validate(model, val_data, settings, device)
        entry = {"epoch": epoch, "train_loss": running / max(1, step + 1), **{f"val_{k}": v for k, v in validation.items()}}
        epoch_log.append(entry)
        improved = validation["loss"] < best["loss"]
        if improved:
            best = {"loss": validation["loss"], "epoch": epoch,
                    "state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                    "validation": validation}
            bad_epochs = 0
        else:
            bad_epochs += 1
        log(f"epoch {epoch + 1}: train loss {entry['train_loss']:.4f}, val loss {validation['loss']:.4f}, "
            f"val accuracy clean {validation['clean_accuracy']:.4f} corrupted {validation['corrupted_accuracy']:.4f}"
            f"{' (best)' if improved else ''}")
        if ckpt is not None:
            tmp = ckpt.with_name(ckpt.name + ".tmp")
            torch.save({
                "model": model.state_dict(), "optimiser": optimiser.state_dict(), "scheduler": scheduler.state_dict(),
                "histories": {n: torch.from_numpy(h.state()) for n, h in histories.items()},
                "log": json.dumps(epoch_log), "best_loss": best["loss"], "best_epoch": best["epoch"],
                "best_state": best["state"], "best_validation": json.dumps(best["validation"]), "epoch": epoch,
            }, tmp)
            tmp.replace(ckpt)
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    model.eval()
    return TrainResult(model=model.cpu(), recipe=recipe, history=epoch_log, best_epoch=best["epoch"] + 1,
                       validation=best["validation"], seconds=time.perf_counter() - start, device=str(device),
                       init=init)


def _initialise_from(model: QMFModel, path: str, log: Callable[[str], None]) -> dict[str, Any]:
    """Load a bundle's weights into `model` (the architectures must match); returns its provenance."""
    from app.qmf.bundle import load_bundle

    bundle = load_bundle(path)
    state = bundle.model.state_dict()
    mine = model.state_dict()
    wrong = sorted(k for k in mine if k not in state or tuple(state[k].shape) != tuple(mine[k].shape))
    if wrong or set(state) - set(mine):
        raise ValueError(f"init_from {path}: its architecture differs from the recipe's (first difference: "
                         f"{(wrong or sorted(set(state) - set(mine)))[0]})")
    model.load_state_dict(state)
    log(f"initialised from {path} (sha256 {bundle.sha256[:12]})")
    training = bundle.manifest.get("training", {})
    return {"file": Path(path).name, "sha256": bundle.sha256, "recipe": training.get("recipe"),
            "best_epoch": training.get("best_epoch"), "epochs_run": training.get("epochs_run")}


def check_training_kinds(settings: TrainingSettings, modalities: dict[str, Modality]) -> None:
    """Every degradation kind, foreign family and held-out name exists, and none is both trained on and held out."""
    from app.modalities.zoo import check_kinds
    from app.qmf.outlier_exposure import check_against_modalities

    kinds: dict[str, list[str]] = {}
    for spec in settings.augment:
        if spec.modality not in modalities:
            raise ValueError(f"[[training.augment]] names modality {spec.modality!r}, not one of {list(modalities)}")
        check_kinds(modalities[spec.modality], spec.kinds, training=True)
        kinds.setdefault(spec.modality, []).extend(spec.kinds)
    check_against_modalities(settings.outlier_settings, settings.held_out_settings, kinds, modalities)


def build_text_vocabularies(recipe: Recipe, rows: Sequence[PairRow]) -> None:
    """A text input without a vocabulary gets one from the training texts; it is stored in the bundle."""
    from app.modalities.text import TextModality

    for m in recipe.modalities:
        if m.kind != "text" or m.preprocessing.get("vocab"):
            continue
        reader = get_modality("text", m.preprocessing)
        texts = [" ".join(reader.load(r.files[m.name])) for r in rows if r.files.get(m.name)]
        m.preprocessing = {**m.preprocessing, "vocab": TextModality.build_vocabulary(texts)}


def _label_sort_key(label: str) -> tuple[int, Any]:
    return (0, int(label)) if label.isdigit() else (1, label)


def bundle_manifest(result: TrainResult, provenance: dict[str, Any] | None = None,
                    evaluation: dict[str, Any] | None = None) -> dict[str, Any]:
    """The manifest stored with a trained model: recipe, training log, figures, provenance."""
    from app import __version__

    return {
        "name": result.recipe.name,
        "description": result.recipe.description,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "app_version": __version__,
        "training": {
            "recipe": result.recipe.to_dict(),
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "seconds": round(result.seconds, 1),
            "device": result.device,
            "log": result.history,
            **({"init": result.init} if result.init else {}),
        },
        "evaluation": {"validation": result.validation, **(evaluation or {})},
        "provenance": provenance or {},
    }
