"""Fixtures for the review tests: small labelled folders of generated pairs (no file from outside)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.synthetic import CLASSES, write_pair


def make_review_folder(root: Path, per_class: int = 5, seed: int = 1) -> Path:
    """``root/<label>/<label>_NNN.png|.wav``: pairs by name, labelled by their folder."""
    rng = np.random.default_rng(seed)
    for label in CLASSES:
        for i in range(per_class):
            write_pair(root / label, f"{label}_{i:03d}", label, rng)
    return root


@pytest.fixture
def review_folder(tmp_path: Path) -> Path:
    return make_review_folder(tmp_path / "pairs")
