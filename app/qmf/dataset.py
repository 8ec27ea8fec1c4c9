"""The training data of one run: a manifest's pairs decoded once, re-paired each epoch, and each epoch's
samples augmented (input variation and corruption) with a generator per sample, so a run is the same
on any number of loader workers and when resumed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from app.data.manifest import PairRow
from app.modalities import Modality
from app.modalities.augment import augment_raw
from app.modalities.outliers import POOLED
from app.modalities.zoo import degrade
from app.qmf.outlier_exposure import pick_foreign
from app.qmf.recipe import TrainingSettings

__all__ = ["VALIDATION_EPOCH", "EpochView", "PairedData", "make_loader"]

VALIDATION_EPOCH = 1_000_000  # seeds validation corruption apart from any training epoch


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
        # foreign recordings of pooled outlier families (outlier_exposure.load_pools), set by the trainer
        self.pools: dict[tuple[str, str], list[np.ndarray]] = {}

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
        # outlier exposure: one input of the pair may be replaced by a foreign one (app/qmf/outlier_exposure.py)
        replaced = pick_foreign(self.settings.outliers, self.data.modalities, rng, self._source) if self.augment else None
        for name, modality in self.data.modalities.items():
            if replaced is not None and replaced[0] == name:
                tensors[name] = modality.to_tensor(replaced[1])
                ids[name] = int(self.data.ids[name][r])
                corrupted[name], foreign[name] = 0.0, True
                continue
            item = int(self.data.ids[name][r])
            raw = self.data.items[name][item]
            extra = self.settings.modality_augment.get(name)
            if self.augment and extra is not None:
                raw = augment_raw(modality, raw, rng, extra)
            flag = 0.0
            for spec in self.settings.augment if self.augment else ():  # augment=False: clean (validation)
                if spec.modality == name and rng.random() < spec.probability:
                    kind = spec.kinds[int(rng.integers(len(spec.kinds)))]
                    level = float(rng.uniform(*spec.levels))
                    raw = degrade(modality, raw, kind, level, rng)  # a corruption, a zoo kind or 'a+b'
                    flag = level
            tensors[name] = modality.to_tensor(raw)
            ids[name] = item
            corrupted[name], foreign[name] = flag, False
        return tensors, int(self.data.y[r]), ids, corrupted, foreign

    def _source(self, name: str, family: str, rng: np.random.Generator) -> np.ndarray:
        """What a source-based foreign family uses: a random item of its pool (pooled families), else a
        random real input of modality `name`."""
        if family in POOLED:
            items = self.data.pools.get((name, family))
            if not items:  # a real input instead would be a digit passed off as foreign
                raise ValueError(f"no recordings loaded for the pooled foreign family {name}/{family}")
        else:
            items = self.data.items[name]
        return items[int(rng.integers(len(items)))]


def _collate(batch):
    """Samples -> (tensors, labels, input ids, degradation levels (0 = clean), foreign-input flags)."""
    names = list(batch[0][0])
    tensors = {n: torch.stack([b[0][n] for b in batch]) for n in names}
    y = torch.tensor([b[1] for b in batch], dtype=torch.long)
    ids = {n: torch.tensor([b[2][n] for b in batch], dtype=torch.long) for n in names}
    levels = {n: torch.tensor([float(b[3][n]) for b in batch], dtype=torch.float32) for n in names}
    foreign = {n: torch.tensor([b[4][n] for b in batch], dtype=torch.bool) for n in names}
    return tensors, y, ids, levels, foreign


def make_loader(view: EpochView, batch_size: int, workers: int) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        view, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=_collate,
        persistent_workers=False,
    )
