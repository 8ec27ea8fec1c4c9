"""Small Ray results folders made without Ray: the same run file and shards `run_on_ray` writes.

The driver's part of `app.review.distributed.run_on_ray` (pair list, run file, shard k = rows
k·S … k·S+S−1, atomic shard writes) with the actor's part (`score_shard`, the real model) called
here in the test process, so the app's results-folder tests need pyarrow but not a Ray cluster.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.review.conftest import write_manifest
from tests.synthetic import CLASSES, write_pair


def make_pairs_manifest(root: Path, n: int, seed: int = 3) -> Path:
    """``n`` labelled pairs under ``root/files`` and their manifest ``root/pairs.csv``."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = CLASSES[i % len(CLASSES)]
        img, wav = write_pair(root / "files", f"pair_{i:03d}", label, rng)
        rows.append((f"pair_{i:03d}", img, wav, label))
    return write_manifest(root / "pairs.csv", rows)


def write_results_dir(out: Path, model: Path, manifest: Path, shard_size: int,
                      shards: list[int] | None = None) -> list[int]:
    """Write the run file and the given shards (None: all) of ``manifest`` into ``out``; the shards written."""
    from app.qmf.predictor import Predictor
    from app.review.distributed import run_info, score_shard, shard_metadata
    from app.review.flags import FlagThresholds
    from app.review.parquet import write_bytes_atomically
    from app.review.results_dir import prepare_results_dir, shard_count, shard_path
    from app.review.sources import load_source

    predictor = Predictor.load(model)
    source = load_source(manifest, {n: m.kind for n, m in predictor.modalities.items()}, predictor.labels, uris=True)
    pairs = list(source.pairs)
    prepare_results_dir(out, run_info(predictor, model, source, pairs, FlagThresholds(), shard_size))
    todo = list(range(shard_count(len(pairs), shard_size))) if shards is None else shards
    for k in todo:
        chunk = [(p.id, {m: str(f) for m, f in p.files.items()}, p.label)
                 for p in pairs[k * shard_size:(k + 1) * shard_size]]
        data, _ = score_shard(predictor, k, k * shard_size, chunk, 16, FlagThresholds(), shard_metadata(predictor))
        write_bytes_atomically(shard_path(out, k), data)
    return todo
