"""Evaluation: accuracy of every fusion rule under the paper's corruption protocol, and how well each
modality's quality score tells its clean inputs from its corrupted ones.

Protocol (Zhang et al., 2023): at noise level epsilon, each modality of each test sample is corrupted
independently with probability 0.5 (25% clean, 25% only A, 25% only B, 25% both for two modalities);
the whole run is repeated for several seeds and reported as mean and standard deviation.

The evaluation streams: rows are decoded a batch at a time, every condition (level x seed) is applied
to that batch and predicted, and only counts and the per-pair quality scores the AUROC needs are kept,
so memory does not grow with the decoded inputs. Within a batch the clean model inputs are made once and
reused for every pair a condition leaves clean (and level 0 is predicted once for all seeds).

Randomness: whether pair i's modality m is corrupted under seed s is the i-th draw of
`default_rng([s, 7919, j])` (j = m's position in the model); the corruption itself draws from
`default_rng([s, i, j])`. i counts the pairs that were decoded, in manifest order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.qmf.predictor import Predictor

DEFAULT_KINDS = {"image": "gaussian", "audio": "white_noise", "text": "blank_words"}
BATCH_SIZE = 64  # onnxruntime's activations for 256 pairs take ~100 MB; 64 is as fast per pair


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


def oracle_logits(logits: Mapping[str, np.ndarray], corrupted: Mapping[str, np.ndarray]) -> np.ndarray:
    """The oracle rule in numpy, as app.qmf.fusion.fuse_oracle: late fusion over only the modalities
    known to be clean (all of them where every one is corrupted)."""
    names = list(logits)
    z = np.stack([logits[n] for n in names])  # [M, B, K]
    clean = np.stack([~np.asarray(corrupted[n], bool) for n in names]).astype(z.dtype)  # [M, B]
    clean[:, clean.sum(axis=0) == 0] = 1.0
    return (z * clean[..., None]).sum(axis=0) / clean.sum(axis=0)[:, None]


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


# --- the decoded pairs ----------------------------------------------------------------------------


@dataclass
class EvalData:
    """Decoded test pairs (raw inputs) and their label indices (the in-memory form; `Pairs` streams)."""

    raws: list[dict[str, np.ndarray]]
    labels: np.ndarray
    skipped: list[str] = field(default_factory=list)  # one line per row left out, saying why


class Pairs:
    """The usable pairs of manifest rows, decoded lazily, a batch at a time, each time they are iterated.

    Rows without a usable label or with a file that cannot be read are skipped and listed in `skipped`
    (one line each, saying why; one unreadable recording among thousands should not end an
    evaluation). `count` is the number of pairs decoded by the last complete pass.
    """

    def __init__(self, predictor: Predictor, rows: Sequence[Any],
                 progress: Callable[[int, int], None] | None = None):
        self.predictor, self.rows, self.progress = predictor, rows, progress
        self.skipped: list[str] = []
        self.count = 0

    def batches(self, size: int) -> Iterator[tuple[list[dict[str, np.ndarray]], np.ndarray]]:
        from app.modalities import InputError

        label_index = {name: i for i, name in enumerate(self.predictor.labels)}
        skipped: list[str] = []
        raws: list[dict[str, np.ndarray]] = []
        labels: list[int] = []
        count = 0
        for i, row in enumerate(self.rows):
            if self.progress is not None:
                self.progress(i + 1, len(self.rows))
            if row.label is None:
                skipped.append(f"row {row.line} ({row.id}): no label")
                continue
            if row.label not in label_index:
                skipped.append(f"row {row.line} ({row.id}): label {row.label!r} is not one of the model's labels")
                continue
            try:
                raws.append(self.predictor.load_inputs(row.files))
            except InputError as exc:
                skipped.append(f"row {row.line} ({row.id}): {exc}")
                continue
            labels.append(label_index[row.label])
            if len(raws) == size:
                count += len(raws)
                yield raws, np.asarray(labels, np.int64)
                raws, labels = [], []
        if raws:
            count += len(raws)
            yield raws, np.asarray(labels, np.int64)
        self.skipped, self.count = skipped, count


class _InMemory:
    """EvalData behind the `Pairs` interface."""

    def __init__(self, data: EvalData):
        self.data, self.skipped, self.count = data, data.skipped, len(data.labels)

    def batches(self, size: int) -> Iterator[tuple[list[dict[str, np.ndarray]], np.ndarray]]:
        for start in range(0, len(self.data.raws), size):
            yield self.data.raws[start : start + size], self.data.labels[start : start + size]


def decode_rows(predictor: Predictor, rows: Sequence[Any], progress: Callable[[int, int], None] | None = None) -> EvalData:
    """Decode every usable row into memory (see `Pairs` for the streaming form and the skip rules)."""
    pairs = Pairs(predictor, rows, progress)
    raws: list[dict[str, np.ndarray]] = []
    labels: list[np.ndarray] = []
    for r, y in pairs.batches(BATCH_SIZE):
        raws += r
        labels.append(y)
    return EvalData(raws, np.concatenate(labels) if labels else np.zeros(0, np.int64), pairs.skipped)


def _source(data: EvalData | Pairs) -> Pairs | _InMemory:
    return _InMemory(data) if isinstance(data, EvalData) else data


# --- one pass over the pairs, every condition at once ---------------------------------------------


def _mask_rng(seed: int, j: int) -> np.random.Generator:
    return np.random.default_rng([seed, 7919, j])


def corruption_masks(names: Sequence[str], n: int, probability: float, seed: int) -> dict[str, np.ndarray]:
    """Which samples get which modality corrupted in one seed of the protocol: each modality of each
    sample independently with `probability` (0.5: a quarter clean, a quarter each modality alone, a
    quarter both), from a generator of its own so the masks do not depend on the corruption drawn.
    The streaming evaluation draws the same values a batch at a time."""
    return {m: _mask_rng(seed, j).random(n) < probability for j, m in enumerate(names)}


@dataclass
class _Condition:
    """One (level, seed, corrupted modalities) setting and what has been counted for it so far."""

    level: float
    seed: int
    kinds: Mapping[str, str]
    probability: float | None  # per-modality chance of corruption; None: `always` decides
    always: frozenset[str] = frozenset()  # modalities corrupted in every pair (the sweep)
    keep_quality: bool = True
    correct: dict[str, int] = field(default_factory=dict)
    n: int = 0
    quality: dict[str, list[np.ndarray]] = field(default_factory=dict)  # per-pair scores, for the AUROC
    bad: dict[str, list[np.ndarray]] = field(default_factory=dict)
    sums: dict[str, float] = field(default_factory=dict)
    _mask_rngs: dict[str, np.random.Generator] = field(default_factory=dict)

    def masks(self, names: Sequence[str], count: int) -> dict[str, np.ndarray]:
        out = {}
        for j, m in enumerate(names):
            if self.probability is None:
                out[m] = np.full(count, m in self.always)
                continue
            rng = self._mask_rngs.setdefault(m, _mask_rng(self.seed, j))
            out[m] = rng.random(count) < self.probability
        if self.level <= 0:
            out = {m: np.zeros(count, bool) for m in names}
        return out


def _accumulate(cond: _Condition, names: Sequence[str], numbers: Mapping[str, Any], bad: Mapping[str, np.ndarray],
                labels: np.ndarray) -> None:
    def count(rule: str, predicted: np.ndarray) -> None:
        cond.correct[rule] = cond.correct.get(rule, 0) + int((predicted == labels).sum())

    count("qmf", numbers["fused"].argmax(-1))
    count("late_fusion", numbers["late"].argmax(-1))
    count("oracle", oracle_logits(numbers["logits"], bad).argmax(-1))
    for m in names:
        count(m, numbers["per_modality"][m].argmax(-1))
        q, s = np.asarray(numbers["quality"][m], np.float64), np.asarray(numbers["share"][m], np.float64)
        b = bad[m]
        if cond.keep_quality:
            cond.quality.setdefault(m, []).append(q.astype(np.float32))
            cond.bad.setdefault(m, []).append(b)
        for key, values in ((f"quality:{m}", q), (f"share:{m}", s)):
            cond.sums[key] = cond.sums.get(key, 0.0) + float(values.sum())
        for side, sel in (("bad", b), ("clean", ~b)):
            cond.sums[f"share_{side}:{m}"] = cond.sums.get(f"share_{side}:{m}", 0.0) + float(s[sel].sum())
            cond.sums[f"n_{side}:{m}"] = cond.sums.get(f"n_{side}:{m}", 0.0) + float(sel.sum())
    cond.n += len(labels)


def _run(predictor: Predictor, source: Pairs | _InMemory, conditions: Sequence[_Condition],
         batch_size: int = BATCH_SIZE) -> None:
    """Decode, corrupt and predict batch by batch, adding each condition's counts."""
    names = list(predictor.modalities)
    offset = 0
    for raws, labels in source.batches(batch_size):
        count = len(raws)
        clean = predictor.to_batch(raws)
        clean_numbers = None
        for cond in conditions:
            bad = cond.masks(names, count)
            if not any(b.any() for b in bad.values()):
                if clean_numbers is None:
                    clean_numbers = predictor.predict_arrays(clean)
                numbers = clean_numbers
            else:
                arrays = {}
                for j, m in enumerate(names):
                    modality = predictor.modalities[m]
                    idx = np.flatnonzero(bad[m])
                    if not len(idx):
                        arrays[m] = clean[m]
                        continue
                    arr = clean[m].copy()
                    arr[idx] = modality.to_arrays([
                        modality.corrupt(raws[k][m], cond.kinds[m], cond.level,
                                         np.random.default_rng([cond.seed, offset + int(k), j]))
                        for k in idx])
                    arrays[m] = arr
                numbers = predictor.predict_arrays(arrays)
            _accumulate(cond, names, numbers, bad, labels)
        offset += count


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0)


def _mean_std(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, float)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0}


def protocol(
    predictor: Predictor,
    data: EvalData | Pairs,
    levels: Sequence[float] = (0, 5, 10),
    kinds: Mapping[str, str] | None = None,
    seeds: int = 3,
    probability: float = 0.5,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> dict[str, Any]:
    """The paper's robustness table: accuracy of QMF, late fusion, the oracle and every single modality.

    `data` is decoded pairs in memory (`decode_rows`) or a `Pairs` stream (decoded here, once, whatever
    the number of levels and seeds); `progress` then counts manifest rows.
    """
    kinds = dict(kinds or default_kinds(predictor))
    names = list(predictor.modalities)
    source = _source(data)
    if progress is not None and isinstance(source, Pairs) and source.progress is None:
        source.progress = progress
    grid = [[_Condition(float(level), seed, kinds, probability) for seed in range(seeds)] for level in levels]
    _run(predictor, source, [c for row in grid for c in row], batch_size)
    result: dict[str, Any] = {"kinds": kinds, "seeds": seeds, "pairs": source.count, "probability": probability,
                              "levels": []}
    for level, row in zip(levels, grid, strict=True):
        acc = {rule: _mean_std([c.correct.get(rule, 0) / max(1, c.n) for c in row])
               for rule in ("qmf", "late_fusion", "oracle", *names)}
        aurocs: dict[str, float | None] = {}
        mean_share: dict[str, dict[str, float | None]] = {}
        for m in names:
            values = []
            for c in row:
                q, b = _joined(c.quality.get(m, [])), _joined(c.bad.get(m, [])).astype(bool)
                a = auroc(q[~b], q[b])
                if a is not None:
                    values.append(a)
            aurocs[m] = float(np.mean(values)) if values else None
            mean_share[m] = {}
            for side, key in (("clean", "clean"), ("corrupted", "bad")):
                per_seed = [c.sums[f"share_{key}:{m}"] / c.sums[f"n_{key}:{m}"] for c in row
                            if c.sums.get(f"n_{key}:{m}")]
                mean_share[m][side] = float(np.mean(per_seed)) if per_seed else None
        result["levels"].append({"level": float(level), "accuracy": acc, "quality_auroc": aurocs,
                                 "mean_share": mean_share})
    return result


def patterns(
    predictor: Predictor,
    data: EvalData | Pairs,
    level: float,
    kinds: Mapping[str, str] | None = None,
    seeds: int = 3,
    damaged: Sequence[Sequence[str]] | None = None,
    batch_size: int = BATCH_SIZE,
) -> list[dict[str, Any]]:
    """Accuracy per corruption pattern: every pair with the same modalities damaged at `level`.

    The protocol corrupts each input with a probability, so its figure mixes the patterns (a quarter clean,
    a quarter each modality alone, a quarter both for two modalities); this separates them. `damaged` lists
    the patterns (default: each modality alone, then all of them); each gets `seeds` corruption streams, the
    same ones the protocol's conditions use. Returns one row per pattern: its modalities, the pairs counted
    over the seeds, and the accuracy (0..1) of QMF, the late-fusion rule, the oracle and each branch alone."""
    names = list(predictor.modalities)
    kinds = dict(kinds or default_kinds(predictor))
    wanted = [tuple(p) for p in damaged] if damaged is not None else [(m,) for m in names] + [tuple(names)]
    for p in wanted:
        unknown = [m for m in p if m not in names]
        if unknown or not p:
            raise ValueError(f"a pattern names the model's modalities ({', '.join(names)}), got {list(p)}")
    grid = [[_Condition(float(level), s, kinds, None, frozenset(p), keep_quality=False) for s in range(seeds)]
            for p in wanted]
    _run(predictor, _source(data), [c for row in grid for c in row], batch_size)
    out = []
    for p, row in zip(wanted, grid, strict=True):
        n = sum(c.n for c in row)
        out.append({"damaged": list(p), "pairs": n,
                    "accuracy": {rule: sum(c.correct.get(rule, 0) for c in row) / max(1, n)
                                 for rule in ("qmf", "late_fusion", "oracle", *names)}})
    return out


def sweep(
    predictor: Predictor,
    data: EvalData | Pairs,
    modality: str,
    kind: str,
    levels: Sequence[float],
    seed: int = 0,
    batch_size: int = BATCH_SIZE,
) -> list[dict[str, Any]]:
    """Corrupt one modality of every sample at each level: accuracy, mean quality and share, and AUROC
    of that modality's quality score, clean inputs against their corrupted versions."""
    names = list(predictor.modalities)
    kinds = {m: kind for m in names}
    clean = _Condition(0.0, seed, kinds, None)
    conds = [_Condition(float(level), seed, kinds, None, frozenset([modality])) for level in levels]
    source = _source(data)
    _run(predictor, source, [clean, *conds], batch_size)
    clean_q = _joined(clean.quality.get(modality, []))
    rows = []
    for level, c in zip(levels, conds, strict=True):
        n = max(1, c.n)
        rows.append({
            "level": float(level),
            "accuracy": {rule: c.correct.get(rule, 0) / n for rule in ("qmf", "late_fusion", *names)},
            "mean_quality": {m: c.sums.get(f"quality:{m}", 0.0) / n for m in names},
            "mean_share": {m: c.sums.get(f"share:{m}", 0.0) / n for m in names},
            "quality_auroc": auroc(clean_q, _joined(c.quality.get(modality, []))) if level > 0 else None,
        })
    return rows
