"""Evaluation: accuracy of every fusion rule under the paper's corruption protocol, and how well each
modality's quality score tells its clean inputs from its corrupted ones.

Protocol (Zhang et al., 2023): at noise level epsilon, each modality of each test sample is corrupted
independently with probability 0.5 (25% clean, 25% only A, 25% only B, 25% both for two modalities);
the whole run is repeated for several seeds and reported as mean and standard deviation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from app.qmf.fusion import fuse_late, fuse_oracle
from app.qmf.predictor import Predictor

DEFAULT_KINDS = {"image": "gaussian", "audio": "white_noise", "text": "blank_words"}


def auroc(positive: np.ndarray, negative: np.ndarray) -> float | None:
    """Area under the ROC curve: the chance a random positive scores above a random negative (ties count half).

    Computed from average ranks (Mann-Whitney U); None when either side is empty.
    """
    positive, negative = np.asarray(positive, float), np.asarray(negative, float)
    if len(positive) == 0 or len(negative) == 0:
        return None
    scores = np.concatenate([positive, negative])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks for ties
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(scores)]])
    for s, e in zip(starts, ends, strict=True):
        ranks[order[s:e]] = (s + e + 1) / 2.0
    u = ranks[: len(positive)].sum() - len(positive) * (len(positive) + 1) / 2.0
    return float(u / (len(positive) * len(negative)))


def default_kinds(predictor: Predictor) -> dict[str, str]:
    return {n: DEFAULT_KINDS.get(m.kind, m.corruption_kinds[0]) for n, m in predictor.modalities.items()}


def parse_kinds(text: str | None, predictor: Predictor) -> dict[str, str]:
    """`image:gaussian,audio:white_noise` -> {"image": "gaussian", "audio": "white_noise"} (others default)."""
    kinds = default_kinds(predictor)
    if not text:
        return kinds
    for part in text.split(","):
        if ":" not in part:
            raise ValueError(f"--kinds entry {part!r} should look like MODALITY:KIND")
        name, kind = (s.strip() for s in part.split(":", 1))
        if name not in predictor.modalities:
            raise ValueError(f"--kinds: the model has no modality {name!r}; it has {list(predictor.modalities)}")
        valid = predictor.modalities[name].corruption_kinds
        if kind not in valid:
            raise ValueError(f"--kinds: {name} has no corruption {kind!r}; choose from {', '.join(valid)}")
        kinds[name] = kind
    return kinds


@dataclass
class EvalData:
    """Decoded test pairs (raw inputs) and their label indices."""

    raws: list[dict[str, np.ndarray]]
    labels: np.ndarray
    skipped: list[str] = field(default_factory=list)  # one line per row left out, saying why


def decode_rows(predictor: Predictor, rows: Sequence[Any], progress: Callable[[int, int], None] | None = None) -> EvalData:
    """Decode every row with a usable label and readable files; the others are skipped and listed
    (one unreadable recording among thousands should not end an evaluation)."""
    from app.modalities import InputError

    label_index = {name: i for i, name in enumerate(predictor.labels)}
    raws, labels, skipped = [], [], []
    for i, row in enumerate(rows):
        if progress is not None:
            progress(i + 1, len(rows))
        if row.label is None:
            skipped.append(f"row {row.line} ({row.id}): no label")
            continue
        if row.label not in label_index:
            skipped.append(f"row {row.line} ({row.id}): label {row.label!r} is not one of the model's labels")
            continue
        try:
            raws.append(predictor.load_inputs(row.files))
        except InputError as exc:
            skipped.append(f"row {row.line} ({row.id}): {exc}")
            continue
        labels.append(label_index[row.label])
    return EvalData(raws, np.asarray(labels, dtype=np.int64), skipped)


def run_condition(
    predictor: Predictor,
    data: EvalData,
    corrupt_mask: Mapping[str, np.ndarray],
    kinds: Mapping[str, str],
    level: float,
    seed: int,
    batch_size: int = 256,
) -> dict[str, np.ndarray]:
    """Predict every sample with the chosen modalities corrupted; return per-sample arrays."""
    names = list(predictor.modalities)
    out: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(data.raws), batch_size):
        batch = []
        for i in range(start, min(start + batch_size, len(data.raws))):
            raw = dict(data.raws[i])
            for n in names:
                if corrupt_mask[n][i] and level > 0:
                    rng = np.random.default_rng([seed, i, names.index(n)])
                    raw[n] = predictor.modalities[n].corrupt(raw[n], kinds[n], level, rng)
            batch.append(raw)
        tensors = predictor.to_batch(batch)
        with torch.inference_mode():
            res = predictor.model(tensors)
            corrupted = {n: torch.from_numpy(corrupt_mask[n][start : start + len(batch)] & (level > 0)) for n in names}
            oracle = fuse_oracle(res.logits, corrupted)
            late = fuse_late(res.logits)
        parts = {
            "qmf": res.fused.argmax(-1).numpy(),
            "late_fusion": late.argmax(-1).numpy(),
            "oracle": oracle.argmax(-1).numpy(),
            **{f"pred:{n}": res.logits[n].argmax(-1).numpy() for n in names},
            **{f"quality:{n}": res.quality[n].numpy() for n in names},
            **{f"share:{n}": res.share[n].numpy() for n in names},
        }
        for k, v in parts.items():
            out.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in out.items()}


def corruption_masks(names: Sequence[str], n: int, probability: float, seed: int) -> dict[str, np.ndarray]:
    """Which samples get which modality corrupted in one seed of the protocol: each modality of each
    sample independently with `probability` (0.5: a quarter clean, a quarter each modality alone, a
    quarter both), from a generator of its own so the masks do not depend on the corruption drawn."""
    rng = np.random.default_rng([seed, 7919])
    return {m: rng.random(n) < probability for m in names}


def _mean_std(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, float)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0}


def protocol(
    predictor: Predictor,
    data: EvalData,
    levels: Sequence[float] = (0, 5, 10),
    kinds: Mapping[str, str] | None = None,
    seeds: int = 3,
    probability: float = 0.5,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """The paper's robustness table: accuracy of QMF, late fusion, the oracle and every single modality."""
    kinds = dict(kinds or default_kinds(predictor))
    names = list(predictor.modalities)
    n = len(data.labels)
    result = {"kinds": kinds, "seeds": seeds, "pairs": n, "probability": probability, "levels": []}
    total, done = len(levels) * seeds, 0
    for level in levels:
        acc: dict[str, list[float]] = {}
        aurocs: dict[str, list[float]] = {m: [] for m in names}
        share_clean: dict[str, list[float]] = {m: [] for m in names}
        share_bad: dict[str, list[float]] = {m: [] for m in names}
        for seed in range(seeds):
            mask = corruption_masks(names, n, probability, seed)
            res = run_condition(predictor, data, mask, kinds, float(level), seed)
            for rule in ("qmf", "late_fusion", "oracle", *names):
                key = rule if rule not in names else f"pred:{rule}"
                acc.setdefault(rule, []).append(float((res[key] == data.labels).mean()))
            for m in names:
                bad = mask[m] & (level > 0)
                a = auroc(res[f"quality:{m}"][~bad], res[f"quality:{m}"][bad])
                if a is not None:
                    aurocs[m].append(a)
                share_clean[m].append(float(res[f"share:{m}"][~bad].mean()) if (~bad).any() else float("nan"))
                share_bad[m].append(float(res[f"share:{m}"][bad].mean()) if bad.any() else float("nan"))
            done += 1
            if progress is not None:
                progress(done, total)
        result["levels"].append({
            "level": float(level),
            "accuracy": {rule: _mean_std(v) for rule, v in acc.items()},
            "quality_auroc": {m: (float(np.mean(v)) if v else None) for m, v in aurocs.items()},
            "mean_share": {m: {"clean": float(np.nanmean(share_clean[m])) if not np.all(np.isnan(share_clean[m])) else None,
                               "corrupted": float(np.nanmean(share_bad[m])) if not np.all(np.isnan(share_bad[m])) else None}
                           for m in names},
        })
    return result


def sweep(
    predictor: Predictor,
    data: EvalData,
    modality: str,
    kind: str,
    levels: Sequence[float],
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Corrupt one modality of every sample at each level: accuracy, mean quality and share, and AUROC
    of that modality's quality score, clean inputs against their corrupted versions."""
    names = list(predictor.modalities)
    n = len(data.labels)
    none = {m: np.zeros(n, bool) for m in names}
    clean = run_condition(predictor, data, none, {m: kind for m in names}, 0.0, seed)
    rows = []
    for level in levels:
        mask = {m: (np.ones(n, bool) if m == modality else np.zeros(n, bool)) for m in names}
        res = run_condition(predictor, data, mask, {m: kind for m in names}, float(level), seed)
        rows.append({
            "level": float(level),
            "accuracy": {rule: float((res[rule if rule not in names else f"pred:{rule}"] == data.labels).mean())
                         for rule in ("qmf", "late_fusion", *names)},
            "mean_quality": {m: float(res[f"quality:{m}"].mean()) for m in names},
            "mean_share": {m: float(res[f"share:{m}"].mean()) for m in names},
            "quality_auroc": auroc(clean[f"quality:{modality}"], res[f"quality:{modality}"]) if level > 0 else None,
        })
    return rows
