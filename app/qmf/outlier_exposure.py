"""Outlier exposure for QMF training: foreign inputs in every batch and Liu et al.'s energy bounds.

A recipe turns it on with two tables (both stored in the bundle with the rest of the recipe):

    [training.outliers]
    probability = 0.25                       # per pair: one input replaced by a foreign one
    families.image = ["uniform_noise", ...]  # app/modalities/outliers.py; the others are held out
    families.audio = ["tone", ...]
    weights.audio = { shuffled_speech = 3.0 }  # optional: a family drawn 3x as often as one of weight 1
    pools.audio.spoken_words = "work/words/train"  # a pooled family's folder of recordings (outliers.POOLED)

    [training.energy_bound]
    weight = 0.1              # w in CE + w * (relu(E_in - m_in)^2 + relu(m_out - E_out)^2), per branch
    m_in = -14.0              # or a table per modality: m_in = { image = -14.0, audio = -12.0 }
    m_out = -3.0
    degraded_out_level = 0    # > 0: a degraded input at this level or above counts as an outlier too
    graded = false            # true: a degraded input below that level gets a floor between the margins
    flat_weight = 0.0         # > 0: Hendrycks et al.'s uniform-target term on foreign inputs' logits

and declares what evaluation alone uses:

    [training.held_out]
    foreign.image = ["checkerboard", "fractal", "letters"]
    degradations.image = ["salt_pepper", "blur", "occlusion", "contrast"]

In a pair whose input m was replaced, the label is still the partner's: the fused cross-entropy keeps
it (QMF must follow the partner), branch m's own cross-entropy is left out (its input has no digit),
its ranking record is the batch's worst, and its energy is pushed above `m_out`. Clean, undegraded
inputs are pushed below `m_in`; degraded ones are left to QMF's ranking term unless
`degraded_out_level` says otherwise.

`graded = true` gives a degraded input at level l below `degraded_out_level` (L) a floor of its own,
relu(m(l) - E)^2 with m(l) = m_in + (m_out - m_in) * l / L: the more damage, the less confidence it may
keep, so the quality falls with the level instead of only past L. `flat_weight` adds Outlier Exposure's
own term (Hendrycks et al., ICLR 2019): the cross-entropy from a foreign input's branch logits to the
uniform distribution, logsumexp(z) - mean(z), so a foreign input that keeps a little weight still leans
towards no class and the fused answer stays the partner's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.modalities import outliers as foreign_inputs
from app.qmf.losses import energy_bound_loss
from app.util.errors import UserError

__all__ = ["OutlierSettings", "EnergyBound", "HeldOut", "load_pools", "pick_foreign", "outlier_loss", "read_pool"]


def _names(where: str, value: Any) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: expected a list of names, got {value!r}")
    return [str(v) for v in value]


def _name_table(where: str, value: Any) -> dict[str, list[str]]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a table of input name = [names], got {value!r}")
    return {str(k): _names(f"{where}.{k}", v) for k, v in value.items()}


def _per_family(what: str, value: Any, families: Mapping[str, list[str]], check: Any) -> dict[str, dict[str, Any]]:
    """A table of input name = {family = value} (`weights`, `pools`): every family one of that input's
    families, every value as `check(where, family, value)` returns it (it raises ValueError when wrong)."""
    if not isinstance(value, Mapping):
        raise ValueError(f"outliers {what}: expected a table of input name = {{family = value}}, got {value!r}")
    out: dict[str, dict[str, Any]] = {}
    for name, table in value.items():
        where = f"outliers {what}.{name}"
        if name not in families:
            raise ValueError(f"{where}: {name!r} has no families; inputs with families: {sorted(families)}")
        if not isinstance(table, Mapping):
            raise ValueError(f"{where}: expected a table of family = value, got {table!r}")
        for fam in table:
            if fam not in families[name]:
                raise ValueError(f"{where}: {fam!r} is not one of its families {families[name]}")
        out[str(name)] = {str(f): check(f"{where}.{f}", f, v) for f, v in table.items()}
    return out


def _weight(where: str, family: str, w: Any) -> float:
    if isinstance(w, bool) or not isinstance(w, int | float) or not 0 < w < 1e6:
        raise ValueError(f"{where}: expected a weight > 0, got {w!r}")
    return float(w)


def _pool_folder(where: str, family: str, folder: Any) -> str:
    if family not in foreign_inputs.POOLED:
        raise ValueError(f"{where}: {family!r} takes no pool; families drawn from a pool: {sorted(foreign_inputs.POOLED)}")
    if not isinstance(folder, str) or not folder:
        raise ValueError(f"{where}: expected a folder path, got {folder!r}")
    return folder


def _pools(value: Any, families: Mapping[str, list[str]]) -> dict[str, dict[str, str]]:
    out = _per_family("pools", value, families, _pool_folder)
    for name, fams in families.items():
        for fam in fams:
            if fam in foreign_inputs.POOLED and fam not in out.get(name, {}):
                raise ValueError(f"outliers families.{name}: {fam!r} is drawn from a folder of recordings; "
                                 f"name it in [training.outliers] pools.{name}.{fam} = \"folder\"")
    return out


def _margin(where: str, value: Any) -> float | dict[str, float]:
    if isinstance(value, Mapping):
        return {str(k): float(v) for k, v in value.items()}
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: expected a number or a table of input name = number, got {value!r}")
    return float(value)


@dataclass
class OutlierSettings:
    """``[training.outliers]``: per pair, with `probability`, one input replaced by a foreign one of `families`.

    `weights` (optional, per input): a family's relative chance of being drawn among that input's
    families (default 1 each), so the families a branch finds hard can be shown more often.
    `pools` (per input): the folder of recordings a pooled family (outliers.POOLED, e.g. spoken_words)
    plays, relative to the folder training runs in; every file in it is read once, at the start."""

    probability: float = 0.0
    families: dict[str, list[str]] = field(default_factory=dict)
    weights: dict[str, dict[str, float]] = field(default_factory=dict)
    pools: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        p = self.probability
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1:
            raise ValueError(f"outliers probability must be between 0 and 1, got {p!r}")
        self.probability = float(p)
        self.families = _name_table("outliers families", self.families)
        self.weights = _per_family("weights", self.weights, self.families, _weight)
        self.pools = _pools(self.pools, self.families)

    def draw_family(self, name: str, rng: np.random.Generator) -> str:
        """One of input `name`'s families, uniformly or by its `weights`."""
        fams = self.families[name]
        weights = self.weights.get(name)
        if not weights:  # the uniform draw of recipes without weights, kept so they train as before
            return fams[int(rng.integers(len(fams)))]
        w = np.array([weights.get(f, 1.0) for f in fams], dtype=np.float64)
        return fams[int(rng.choice(len(fams), p=w / w.sum()))]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> OutlierSettings:
        from app.qmf.recipe import from_table

        return from_table(cls, dict(data or {}), "training.outliers")

    @property
    def active(self) -> bool:
        return self.probability > 0 and any(self.families.values())


@dataclass
class EnergyBound:
    """``[training.energy_bound]``: weight * (relu(E_clean - m_in)^2 + relu(m_out - E_foreign)^2) per branch."""

    weight: float = 0.0
    m_in: float | dict[str, float] = -14.0
    m_out: float | dict[str, float] = -3.0
    degraded_out_level: float = 0.0
    graded: bool = False
    flat_weight: float = 0.0

    def __post_init__(self) -> None:
        self.m_in = _margin("energy_bound m_in", self.m_in)
        self.m_out = _margin("energy_bound m_out", self.m_out)
        self.weight = float(self.weight)
        self.degraded_out_level = float(self.degraded_out_level)
        self.flat_weight = float(self.flat_weight)
        if not isinstance(self.graded, bool):
            raise ValueError(f"energy_bound graded must be true or false, got {self.graded!r}")
        if self.weight < 0 or self.flat_weight < 0:
            raise ValueError(f"energy_bound weight and flat_weight must be >= 0, got {self.weight}, {self.flat_weight}")
        if self.graded and self.degraded_out_level <= 0:
            raise ValueError("energy_bound graded needs degraded_out_level > 0 (the level that counts as an outlier)")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> EnergyBound:
        from app.qmf.recipe import from_table

        return from_table(cls, dict(data or {}), "training.energy_bound")

    def margin(self, which: str, modality: str) -> float:
        v = getattr(self, which)
        if isinstance(v, dict):
            if modality not in v:
                raise ValueError(f"[training.energy_bound] {which} has no entry for modality {modality!r}")
            return v[modality]
        return float(v)


@dataclass
class HeldOut:
    """``[training.held_out]``: what the recipe keeps out of training on purpose, for evaluation (declarative)."""

    foreign: dict[str, list[str]] = field(default_factory=dict)
    degradations: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.foreign = _name_table("held_out foreign", self.foreign)
        self.degradations = _name_table("held_out degradations", self.degradations)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> HeldOut:
        from app.qmf.recipe import from_table

        return from_table(cls, dict(data or {}), "training.held_out")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_against_modalities(
    outliers: OutlierSettings, held_out: HeldOut, augment_kinds: Mapping[str, list[str]], modalities: Mapping[str, Any]
) -> None:
    """Names exist for each modality's kind, and nothing held out is trained on."""
    from app.modalities.zoo import check_kinds

    for name, fams in {**outliers.families, **held_out.foreign}.items():
        if name not in modalities:
            raise ValueError(f"foreign families given for {name!r}, which is not a modality of the recipe")
        valid = foreign_inputs.families_for(modalities[name].kind)
        for f in fams:
            if f not in valid:
                raise ValueError(f"unknown {modalities[name].kind} foreign family {f!r}; valid: {', '.join(valid)}")
    for name, fams in held_out.foreign.items():
        clash = sorted(set(fams) & set(outliers.families.get(name, [])))
        if clash:
            raise ValueError(f"foreign families {clash} of {name!r} are both trained on and held out")
    for name, kinds in held_out.degradations.items():
        if name not in modalities:
            raise ValueError(f"held-out degradations given for {name!r}, which is not a modality of the recipe")
        check_kinds(modalities[name], kinds, training=False)
        trained = {part for k in augment_kinds.get(name, []) for part in k.split("+")}
        clash = sorted(trained & set(kinds))
        if clash:
            raise ValueError(f"degradations {clash} of {name!r} are both trained on and held out")


def read_pool(modality: Any, folder: str | Path, where: str) -> list[np.ndarray]:
    """Every file of `folder` (name order, hidden ones left out) read by `modality`'s reader. A folder that
    is missing or holds no file is a UserError naming `where` and how to make one."""
    d = Path(folder)
    files = sorted(p for p in d.iterdir() if p.is_file() and not p.name.startswith(".")) if d.is_dir() else []
    if not files:
        raise UserError(f"{where}: {str(folder)!r} is not a folder with files in it "
                        "(spoken words: .venv/bin/python scripts/make_word_recordings.py)")
    return [modality.load(p) for p in files]


def load_pools(settings: OutlierSettings, modalities: Mapping[str, Any]) -> dict[tuple[str, str], list[np.ndarray]]:
    """Every pooled family's recordings (`read_pool`): {(input name, family): [raw, ...]}."""
    return {(name, fam): read_pool(modalities[name], folder, f"[training.outliers] pools.{name}.{fam}")
            for name, table in settings.pools.items() for fam, folder in table.items()}


def pick_foreign(
    settings: OutlierSettings,
    modalities: Mapping[str, Any],
    rng: np.random.Generator,
    source_for: Any = None,
) -> tuple[str, np.ndarray] | None:
    """With the settings' probability: (modality name, a foreign raw input for it) for one pair, else None.

    `source_for(name, family, rng)` returns the input a source-based family uses: a real input of that
    modality (reversed_speech) or one of the family's pool (spoken_words); it is only called when such a
    family is drawn.
    """
    if not settings.active or rng.random() >= settings.probability:
        return None
    names = [n for n in modalities if settings.families.get(n)]
    name = names[int(rng.integers(len(names)))]
    family = settings.draw_family(name, rng)
    m = modalities[name]
    source = source_for(name, family, rng) if family in foreign_inputs.NEEDS_SOURCE and source_for is not None else None
    return name, foreign_inputs.generate(m.kind, family, rng, m.params, source=source)


def outlier_loss(
    energies: Mapping[str, torch.Tensor],
    foreign: Mapping[str, torch.Tensor],
    levels: Mapping[str, torch.Tensor],
    bound: EnergyBound,
    logits: Mapping[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Sum over branches of `energy_bound_loss` (plus the graded floors), times the weight, plus
    `flat_weight` times the uniform-target term on foreign inputs (needs `logits`). `levels[m]` is each
    input's degradation level (0 = clean), `foreign[m]` whether it was replaced by a foreign input."""
    total = None
    for name, e in energies.items():
        is_foreign = foreign[name].bool()
        out_mask = is_foreign
        degraded = levels[name] > 0
        if bound.degraded_out_level > 0:
            out_mask = out_mask | (levels[name] >= bound.degraded_out_level)
        in_mask = ~is_foreign & ~degraded
        m_in, m_out = bound.margin("m_in", name), bound.margin("m_out", name)
        term = bound.weight * energy_bound_loss(e, in_mask, out_mask, m_in, m_out)
        if bound.graded:
            mid = degraded & ~out_mask
            if bool(mid.any()):
                floor = m_in + (m_out - m_in) * levels[name][mid] / bound.degraded_out_level
                term = term + bound.weight * torch.relu(floor - e[mid]).square().mean()
        if bound.flat_weight > 0 and logits is not None and bool(is_foreign.any()):
            z = logits[name][is_foreign]
            term = term + bound.flat_weight * (torch.logsumexp(z, dim=1) - z.mean(dim=1)).mean()
        total = term if total is None else total + term
    assert total is not None
    return total
