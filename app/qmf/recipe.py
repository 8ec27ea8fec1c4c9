"""A training recipe: what a run trains (the inputs, their preprocessing and encoder sizes, the
labels) and how (the training settings), read from TOML or JSON and checked when it is read.

Every setting is a dataclass field with its default, so a new training option is one field (plus its
check in ``__post_init__`` when values can be wrong); a nested table is one more dataclass, read by
:func:`from_table` like the others. Unknown keys are refused with the list of known ones, so a typo
never trains silently with a default.

A recipe file may start from another one: ``base = "../avmnist-qmf.toml"`` (a path relative to the
file) reads that recipe first and lays this file's entries over it. Tables merge key by key; a list
of tables whose entries have a ``name`` (``[[modalities]]``) merges entry by entry, matched by name;
any other value (``[[training.augment]]`` included) replaces the base's whole. So an experiment
states only what differs from the recipe it varies.

The recipe is stored whole in the resulting bundle (``Recipe.to_dict()``), so a model file says how
it was made.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import tomllib
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.modalities import get_modality
from app.modalities.augment import AudioAugment, ImageAugment, augment_spec
from app.qmf.losses import MARGIN_FORMS, RANKING_TARGETS
from app.qmf.model import ModalityConfig
from app.qmf.outlier_exposure import EnergyBound, HeldOut, OutlierSettings

__all__ = [
    "FUSION_LOSSES",
    "AugmentSpec",
    "Recipe",
    "TrainingSettings",
    "from_table",
    "merge_recipe_data",
    "read_recipe_data",
]

FUSION_LOSSES = ("qmf", "late")


def _one_of(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


@dataclass
class AugmentSpec:
    """Corrupt `modality` during training with `probability`, kind drawn from `kinds`, level uniform in `levels`
    (the 0-10 corruption scale). Whether the kinds exist for that input is checked by :class:`Recipe`."""

    modality: str
    kinds: list[str]
    levels: tuple[float, float] = (0.0, 10.0)
    probability: float = 0.5

    def __post_init__(self) -> None:
        if not self.kinds or not all(isinstance(k, str) for k in self.kinds):
            raise ValueError(f"augment for {self.modality!r}: kinds must be a non-empty list of corruption names")
        self.kinds = list(self.kinds)
        levels = self.levels
        if not isinstance(levels, list | tuple) or len(levels) != 2:
            raise ValueError(f"augment for {self.modality!r}: levels must be [low, high], got {levels!r}")
        lo, hi = float(levels[0]), float(levels[1])
        if not 0.0 <= lo <= hi <= 10.0:
            raise ValueError(f"augment for {self.modality!r}: levels must satisfy 0 <= low <= high <= 10, got {levels!r}")
        self.levels = (lo, hi)
        if not 0.0 <= float(self.probability) <= 1.0:
            raise ValueError(f"augment for {self.modality!r}: probability must be between 0 and 1, "
                             f"got {self.probability!r}")
        self.probability = float(self.probability)


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
    # input name -> its typed settings; Recipe turns each table into the spec for that input's kind
    modality_augment: dict[str, AudioAugment | ImageAugment] = field(default_factory=dict)
    # outlier exposure and what evaluation holds out: app/qmf/outlier_exposure.py
    outliers: OutlierSettings = field(default_factory=OutlierSettings)
    energy_bound: EnergyBound = field(default_factory=EnergyBound)
    held_out: HeldOut = field(default_factory=HeldOut)
    # Start from the weights of this bundle (same architecture) instead of a random initialisation: Liu et al.
    # fine-tune a trained classifier with the energy bound. A relative path is from the working directory. The
    # bundle's file name, SHA-256 and recipe are stored in the new bundle's manifest (training.init).
    init_from: str | None = None

    def __post_init__(self) -> None:
        _one_of("ranking_target", self.ranking_target, RANKING_TARGETS)
        _one_of("ranking_margin", self.ranking_margin, MARGIN_FORMS)
        _one_of("fusion_loss", self.fusion_loss, FUSION_LOSSES)
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        if not 0.0 < float(self.val_fraction) < 1.0:
            raise ValueError(f"val_fraction must be between 0 and 1, got {self.val_fraction!r}")
        self.augment = [a if isinstance(a, AugmentSpec) else from_table(AugmentSpec, a, "augment")
                        for a in self.augment]


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def from_table(cls: type, table: Any, where: str) -> Any:
    """Build dataclass `cls` from a recipe table: unknown keys refused (naming the known ones),
    fields typed as dataclasses, lists of dataclasses or dicts of dataclasses read the same way.
    ValueError names the table (`where`)."""
    if isinstance(table, cls):
        return table
    if not isinstance(table, dict):
        raise ValueError(f"[{where}]: expected a table, got {table!r}")
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ValueError(f"[{where}]: unknown entries {unknown}; known: {known}")
    required = [f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [name for name in required if name not in table]
    if missing:
        raise ValueError(f"[{where}]: missing entries {missing}")
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in table.items():
        tp = hints[key]
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if _is_dataclass_type(tp):
            value = from_table(tp, value, f"{where}.{key}")
        elif origin is list and args and _is_dataclass_type(args[0]) and isinstance(value, list):
            value = [from_table(args[0], v, f"{where}.{key}") for v in value]
        elif origin is dict and len(args) == 2 and _is_dataclass_type(args[1]) and isinstance(value, dict):
            value = {k: from_table(args[1], v, f"{where}.{key}.{k}") for k, v in value.items()}
        values[key] = value
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:  # a value of the wrong type or out of range
        raise ValueError(f"[{where}]: {exc}") from None


@dataclass
class Recipe:
    name: str
    modalities: list[ModalityConfig]
    training: TrainingSettings
    labels: list[str] | None = None
    confidence_scale: float = 0.1
    detach_weights: bool = True
    weight_floor: float = 0.0  # added to every fusion weight, in training and prediction (app/qmf/fusion.py)
    description: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            hint = " ('base' is read by Recipe.from_file)" if "base" in unknown else ""
            raise ValueError(f"unknown recipe entries {unknown}; known: {sorted(known)}{hint}")
        if "modalities" not in data:
            raise ValueError("the recipe has no [[modalities]] entries")
        modalities = []
        for i, m in enumerate(data["modalities"]):
            config = from_table(ModalityConfig, m, f"modalities {i + 1}")
            modalities.append(ModalityConfig(config.name, config.kind, dict(config.preprocessing),
                                             dict(config.encoder)))
        training_table = dict(data.get("training", {}))
        extra = training_table.pop("modality_augment", {}) or {}
        training = from_table(TrainingSettings, training_table, "training")
        training.modality_augment = _modality_augment(extra, modalities)
        _check_corruptions(training, modalities)
        return cls(
            name=str(data.get("name", "qmf-model")),
            modalities=modalities,
            training=training,
            labels=[str(x) for x in data["labels"]] if data.get("labels") else None,
            confidence_scale=float(data.get("confidence_scale", 0.1)),
            detach_weights=bool(data.get("detach_weights", True)),
            weight_floor=float(data.get("weight_floor", 0.0)),
            description=str(data.get("description", "")),
        )

    @classmethod
    def from_file(cls, path: str | Path) -> Recipe:
        """Read a recipe (following ``base``); ValueError naming the file and what is wrong."""
        path = Path(path)
        data = read_recipe_data(path)
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _modality_augment(tables: Any, modalities: list[ModalityConfig]) -> dict[str, AudioAugment | ImageAugment]:
    if not isinstance(tables, dict):
        raise ValueError(f"[training.modality_augment]: expected a table per input, got {tables!r}")
    kinds = {m.name: m.kind for m in modalities}
    out = {}
    for name, table in tables.items():
        if name not in kinds:
            raise ValueError(f"[training.modality_augment.{name}]: no input named {name!r}; inputs: {list(kinds)}")
        try:
            out[name] = augment_spec(kinds[name], table)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"[training.modality_augment.{name}]: {exc}") from None
    return out


def _check_corruptions(training: TrainingSettings, modalities: list[ModalityConfig]) -> None:
    """Every training degradation (a corruption, a zoo kind of app/modalities/zoo.py or an 'a+b' composition),
    foreign family and held-out name exists for its input, and nothing is both trained on and held out."""
    from app.modalities.zoo import check_kinds
    from app.qmf.outlier_exposure import check_against_modalities

    by_name = {m.name: m for m in modalities}
    readers = {m.name: get_modality(m.kind, m.preprocessing) for m in modalities}
    kinds: dict[str, list[str]] = {}
    for spec in training.augment:
        m = by_name.get(spec.modality)
        if m is None:
            raise ValueError(f"[[training.augment]]: no input named {spec.modality!r}; inputs: {list(by_name)}")
        try:
            check_kinds(readers[spec.modality], spec.kinds, training=True)
        except ValueError as exc:
            raise ValueError(f"[[training.augment]] for {spec.modality!r}: {exc}") from None
        kinds.setdefault(spec.modality, []).extend(spec.kinds)
    check_against_modalities(training.outliers, training.held_out, kinds, readers)


# --------------------------------------------------------------------------- files and `base`

def _parse(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{path}: recipe file not found") from None
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a valid recipe ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a valid recipe (expected a table at the top)")
    return data


def _named_tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) and "name" in v for v in value)


def merge_recipe_data(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` laid on `base` (neither is changed): tables merge by key, named lists of tables by name,
    everything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            out[key] = merge_recipe_data(old, value)
        elif _named_tables(old) and _named_tables(value):
            merged = {entry["name"]: entry for entry in old}
            for entry in value:
                merged[entry["name"]] = merge_recipe_data(merged.get(entry["name"], {}), entry)
            out[key] = list(merged.values())
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_recipe_data(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The recipe file's table with its ``base`` chain applied (the ``base`` key itself removed)."""
    path = Path(path)
    resolved = path.resolve()
    if resolved in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, resolved))
        raise ValueError(f"{path}: recipe bases form a loop ({chain})")
    data = _parse(path)
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise ValueError(f"{path}: base must be the path of another recipe file, got {base!r}")
    base_path = path.parent / base
    if not base_path.is_file():
        raise ValueError(f"{path}: base recipe {base_path} not found (the path is relative to this file)")
    return merge_recipe_data(read_recipe_data(base_path, (*_seen, resolved)), data)
