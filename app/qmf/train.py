"""Training a QMF model on paired data described by manifests: the loop, validation, checkpoints.

The recipe (app/qmf/recipe.py) says what to train and how; the data (app/qmf/dataset.py) decodes the
pairs once and serves each epoch's augmented samples. :func:`train` reads the recipe it is given and
never changes it: the recipe the model was made with (labels found in the data, full preprocessing,
text vocabularies) is a new object, returned in ``TrainResult.recipe`` and stored in the bundle.
Randomness flows from the recipe's seed through explicit generators only.
"""

from __future__ import annotations

import copy
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from app.data.manifest import PairRow
from app.modalities import get_modality
from app.modalities.text import TextModality
from app.qmf.dataset import VALIDATION_EPOCH, EpochView, PairedData, make_loader
from app.qmf.fusion import fuse_late
from app.qmf.losses import LossHistory, normalise_batch, qmf_loss
from app.qmf.model import ModelConfig, QMFModel, TemporalBlock
from app.qmf.outlier_exposure import load_pools, outlier_loss
from app.qmf.recipe import FUSION_LOSSES, AugmentSpec, Recipe, TrainingSettings
from app.util.errors import UserError
from app.util.files import atomic_path

__all__ = [
    "FUSION_LOSSES",
    "VALIDATION_EPOCH",
    "AugmentSpec",
    "EpochView",
    "PairedData",
    "Recipe",
    "TrainResult",
    "TrainingSettings",
    "build_text_vocabularies",
    "bundle_manifest",
    "checkpoint_path",
    "choose_device",
    "prepare_recipe",
    "train",
]


def choose_device() -> torch.device:
    """CUDA when present, else CPU: the same code runs on both."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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
            for tensors, y, *_ in make_loader(view, 512, 0):
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


def checkpoint_path(out: Path) -> Path:
    """Where a run that writes `out` keeps its per-epoch checkpoint (``--resume`` reads it; ``qmf train``
    deletes it after the bundle is written unless told to keep it)."""
    out = Path(out)
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

    start = time.perf_counter()
    recipe = prepare_recipe(recipe, train_rows)
    settings = recipe.training
    labels = recipe.labels
    modalities = {m.name: get_modality(m.kind, m.preprocessing) for m in recipe.modalities}
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
    # validation's corrupted pairs get foreign inputs as training's do, so both read the same pools
    train_data.pools = val_data.pools = load_pools(settings.outliers, modalities)
    if train_data.pools:
        log("foreign pools: " + ", ".join(f"{n}/{f} {len(v)} files" for (n, f), v in train_data.pools.items()))

    device = choose_device()
    torch.manual_seed(settings.seed)  # parameter initialisation; the one global seed, set by the trainer itself
    config = ModelConfig(
        name=recipe.name, labels=labels, modalities=recipe.modalities,
        confidence_scale=recipe.confidence_scale, detach_weights=recipe.detach_weights,
        weight_floor=recipe.weight_floor,
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

    ckpt = checkpoint_path(out) if out is not None else None
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
        bar = tqdm(make_loader(view, settings.batch_size, settings.workers), total=steps_per_epoch,
                   desc=f"epoch {epoch + 1}/{settings.epochs}", leave=False,
                   disable=not progress or not sys.stderr.isatty())  # a log gets the epoch lines, not redraws
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
            if settings.energy_bound.weight > 0 or settings.energy_bound.flat_weight > 0:  # outlier exposure
                loss = loss + outlier_loss(out_.energy, foreign, {k: v.to(device) for k, v in levels.items()},
                                           settings.energy_bound, out_.logits)
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
            with atomic_path(ckpt) as tmp:
                torch.save({
                    "model": model.state_dict(), "optimiser": optimiser.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "histories": {n: torch.from_numpy(h.state()) for n, h in histories.items()},
                    "log": json.dumps(epoch_log), "best_loss": best["loss"], "best_epoch": best["epoch"],
                    "best_state": best["state"], "best_validation": json.dumps(best["validation"]), "epoch": epoch,
                }, tmp)
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    model.eval()
    return TrainResult(model=model.cpu(), recipe=recipe, history=epoch_log, best_epoch=best["epoch"] + 1,
                       validation=best["validation"], seconds=time.perf_counter() - start, device=str(device),
                       init=init)


def _initialise_from(model: QMFModel, path: str, log: Callable[[str], None]) -> dict[str, Any]:
    """Load a bundle's weights into `model` (the architectures must match); returns its provenance.

    The one difference allowed: `model` may have TemporalBlocks the bundle lacks. They keep their fresh
    initialisation, which leaves the model computing what the bundle computed (see TemporalBlock).
    """
    from app.qmf.bundle import load_bundle

    bundle = load_bundle(path)
    state = bundle.model.state_dict()
    mine = model.state_dict()
    blocks = [name + "." for name, module in model.named_modules() if isinstance(module, TemporalBlock)]
    added = sorted(k for k in mine if k not in state and k.startswith(tuple(blocks)))
    wrong = sorted(k for k in mine if k not in added and (k not in state or tuple(state[k].shape) != tuple(mine[k].shape)))
    if wrong or set(state) - set(mine):
        raise UserError(f"init_from {path}: its architecture differs from the recipe's (first difference: "
                         f"{(wrong or sorted(set(state) - set(mine)))[0]})")
    model.load_state_dict({**mine, **state})
    log(f"initialised from {path} (sha256 {bundle.sha256[:12]})"
        + (f"; {len(added)} tensors of new temporal pooling start fresh" if added else ""))
    training = bundle.manifest.get("training", {})
    return {"file": Path(path).name, "sha256": bundle.sha256, "recipe": training.get("recipe"),
            "best_epoch": training.get("best_epoch"), "epochs_run": training.get("epochs_run"),
            **({"added": added} if added else {})}


def prepare_recipe(recipe: Recipe, train_rows: Sequence[PairRow]) -> Recipe:
    """The recipe as the model is made with it (a copy; `recipe` is left as it was): labels from the
    training rows when the recipe names none, text vocabularies built from the training texts, and every
    input's full preprocessing (defaults filled in), which the bundle stores."""
    recipe = copy.deepcopy(recipe)
    if not recipe.labels:
        recipe.labels = sorted({r.label for r in train_rows if r.label is not None}, key=_label_sort_key)
    build_text_vocabularies(recipe, train_rows)
    for m in recipe.modalities:
        m.preprocessing = dict(get_modality(m.kind, m.preprocessing).params)
    return recipe


def build_text_vocabularies(recipe: Recipe, rows: Sequence[PairRow]) -> None:
    """A text input without a vocabulary gets one from the training texts (in place: called on
    :func:`prepare_recipe`'s copy)."""

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
