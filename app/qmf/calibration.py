"""A quality score a person can read: its percentile among clean validation inputs, and an
"unfamiliar input" mark below a calibrated threshold.

A raw quality score (QMF's -energy * scale) has no unit: 1.2 means nothing until compared with what
clean inputs score. At training (or `qmf calibrate`) time the quality of every clean validation input
is measured per modality and a table of its quantiles is stored in the bundle's manifest under
"calibration":

    {"version": 1, "source": "val_small.csv: 2,000 clean pairs", "unfamiliar_percentile": 1.0,
     "modalities": {"image": {"n": 2000, "percentiles": [0, 0.1, ...], "quality": [...],
                              "unfamiliar_below": 1.02}, ...}}

`percentile(table, q)` reads the table back by linear interpolation: 3.0 means "lower than 97 % of
clean inputs". An input is *unfamiliar* when its quality is below `unfamiliar_below`, the quality at
`unfamiliar_percentile` (by default the 1st percentile: about 1 clean input in 100 is marked, which is
the price of the mark). A bundle without the table keeps working: no percentile, no mark (None).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

CALIBRATION_KEY = "calibration"
CALIBRATION_VERSION = 1
DEFAULT_UNFAMILIAR_PERCENTILE = 1.0
# dense in the low tail, where the mark and "lower than 99 %" live
PERCENTILES: tuple[float, ...] = (0.0, 0.1, 0.2, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, *range(10, 91, 5), 92.5, 95.0, 97.5,
                                  99.0, 100.0)

__all__ = ["CALIBRATION_KEY", "UNFAMILIAR_MEANING", "build_calibration", "percentile", "is_unfamiliar", "modality_table", "read_calibration",
           "unfamiliar_text"]


def build_calibration(
    quality: Mapping[str, np.ndarray],
    source: str,
    unfamiliar_percentile: float = DEFAULT_UNFAMILIAR_PERCENTILE,
) -> dict[str, Any]:
    """The manifest entry from each modality's clean-input quality scores."""
    if not 0 < unfamiliar_percentile < 100:
        raise ValueError(f"unfamiliar_percentile must be between 0 and 100, got {unfamiliar_percentile}")
    mods = {}
    for name, values in quality.items():
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        if v.size < 2:
            raise ValueError(f"calibration needs at least 2 clean {name} inputs, got {v.size}")
        mods[name] = {
            "n": int(v.size),
            "percentiles": [float(p) for p in PERCENTILES],
            "quality": [round(float(x), 6) for x in np.percentile(v, PERCENTILES)],
            "unfamiliar_below": round(float(np.percentile(v, unfamiliar_percentile)), 6),
        }
    return {"version": CALIBRATION_VERSION, "source": source, "unfamiliar_percentile": float(unfamiliar_percentile),
            "modalities": mods}


def read_calibration(manifest: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The calibration entry of a bundle manifest, or None when it has none (or one this code cannot read)."""
    cal = (manifest or {}).get(CALIBRATION_KEY)
    if not isinstance(cal, Mapping) or cal.get("version") != CALIBRATION_VERSION:
        return None
    return dict(cal)


def modality_table(calibration: Mapping[str, Any] | None, modality: str) -> Mapping[str, Any] | None:
    if not calibration:
        return None
    table = calibration.get("modalities", {}).get(modality)
    return table if isinstance(table, Mapping) else None


def percentile(table: Mapping[str, Any] | None, quality: float) -> float | None:
    """Percentile (0..100) of `quality` among the clean validation inputs; None without a table.

    Below the lowest clean score: 0; above the highest: 100; in between, linear between the stored
    quantiles (ties in the table resolve to the highest percentile with that score)."""
    return None if table is None else percentiles(table, [quality])[0]


def percentiles(table: Mapping[str, Any], qualities: Sequence[float]) -> list[float]:
    """`percentile` of each of `qualities` (np.interp gives each element what it gives it alone)."""
    return Lookup(table).percentiles(qualities)


class Lookup:
    """One modality's table in the form the look-ups read, made once per model: a prediction then
    pays for the interpolation only, not for turning the table's lists into arrays every time."""

    __slots__ = ("_q", "_p", "_lowest", "_highest", "_below")

    def __init__(self, table: Mapping[str, Any]):
        q = np.asarray(table["quality"], dtype=np.float64)
        p = np.asarray(table["percentiles"], dtype=np.float64)
        # np.interp needs increasing x; quantiles are non-decreasing: take the last of equal runs
        keep = np.append(q[1:] > q[:-1], True)
        self._q, self._p = q[keep], p[keep]
        self._lowest, self._highest = float(q[0]), float(q[-1])
        self._below = float(table["unfamiliar_below"])

    def percentiles(self, qualities: Sequence[float]) -> list[float]:
        if len(qualities) == 1:  # one prediction (`qmf predict`, the app): no array work
            x = float(qualities[0])
            if not np.isfinite(x) or x < self._lowest:
                return [0.0]
            if x >= self._highest:
                return [100.0]
            return [min(100.0, max(0.0, float(np.interp(x, self._q, self._p))))]
        x = np.asarray(qualities, dtype=np.float64)
        finite = np.isfinite(x)
        out = np.clip(np.interp(np.where(finite, x, self._lowest), self._q, self._p), 0.0, 100.0)
        out[x >= self._highest] = 100.0
        out[(x < self._lowest) | ~finite] = 0.0
        return out.tolist()

    def marks(self, qualities: Sequence[float]) -> list[bool]:
        """True for each quality below the calibrated threshold (NaN and infinities too)."""
        if len(qualities) == 1:
            x = float(qualities[0])
            return [not np.isfinite(x) or x < self._below]
        x = np.asarray(qualities, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            return (~np.isfinite(x) | (x < self._below)).tolist()


def is_unfamiliar(table: Mapping[str, Any] | None, quality: float) -> bool | None:
    """True when `quality` is below the calibrated threshold; None without a table."""
    return None if table is None else unfamiliar_marks(table, [quality])[0]


def unfamiliar_marks(table: Mapping[str, Any], qualities: Sequence[float]) -> list[bool]:
    """`is_unfamiliar` of each of `qualities` (NaN and infinities are unfamiliar)."""
    return Lookup(table).marks(qualities)


# What the mark says about an input, wherever it is shown (qmf predict, the app's tooltips). Not only foreign or
# damaged inputs: a clean recording by a voice the model never met is marked far more often than the 1 in 100
# clean validation inputs (docs/report/README.md, "The unfamiliar mark on voices the model never met").
UNFAMILIAR_MEANING = ("unlike the clean inputs the model knows (another kind of input, heavy damage, or a voice or "
                      "handwriting it has not met)")


def unfamiliar_text(name: str, quality_percentile: float | None) -> str:
    """The sentence a person reads about an input with the unfamiliar mark (qmf predict and the app)."""
    return (f"unfamiliar input: {name}: quality lower than {100 - (quality_percentile or 0.0):.1f} % of clean "
            f"validation inputs; {UNFAMILIAR_MEANING}")


def clean_quality(predictor: Any, raws: list[Mapping[str, np.ndarray]], batch_size: int = 256) -> dict[str, np.ndarray]:
    """Each modality's quality score on clean decoded pairs (the input to `build_calibration`)."""
    out: dict[str, list[np.ndarray]] = {n: [] for n in predictor.modalities}
    for start in range(0, len(raws), batch_size):
        numbers = predictor.predict_arrays(predictor.to_batch(raws[start : start + batch_size]))
        for n in out:
            out[n].append(numbers["quality"][n])
    return {n: np.concatenate(v) for n, v in out.items()}


def calibrate_bundle(path: Any, rows: list[Any], source: str,
                     unfamiliar_percentile: float = DEFAULT_UNFAMILIAR_PERCENTILE, out: Any = None) -> dict[str, Any]:
    """Measure the bundle at `path` on the clean pairs `rows` (manifest rows) and write the calibration
    into its manifest (in place, or to `out`). The weights are untouched. Returns the entry."""
    from app.qmf.bundle import load_bundle, save_bundle
    from app.qmf.evaluate import decode_rows
    from app.qmf.predictor import Predictor

    bundle = load_bundle(path)
    predictor = Predictor(bundle)
    data = decode_rows(predictor, rows)
    if len(data.raws) < 2:
        raise ValueError(f"{source}: calibration needs at least 2 readable labelled pairs, got {len(data.raws)}")
    entry = build_calibration(clean_quality(predictor, data.raws), source, unfamiliar_percentile)
    manifest = dict(bundle.manifest)
    manifest[CALIBRATION_KEY] = entry
    save_bundle(out if out is not None else path, bundle.model, manifest)
    return entry
