"""Atomic output files: a failed write leaves the old file whole; finished files are readable by others."""

from __future__ import annotations

import stat

import numpy as np
import pytest

from app.data.manifest import PairRow, write_manifest
from app.util.files import atomic_open, atomic_path


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old content\n")
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write("half of the new")
        raise RuntimeError("disk full")
    assert target.read_text() == "old content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_the_finished_file_replaces_the_old_one_and_is_0644(tmp_path):
    target = tmp_path / "new" / "folder" / "out.bin"
    with atomic_open(target, "wb") as fh:
        fh.write(b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    with atomic_path(target) as tmp:
        np.save(tmp.open("wb"), np.arange(3))
    assert np.array_equal(np.load(target), np.arange(3))
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.bin"]


def test_manifests_and_bundles_get_the_same_permissions(tmp_path, tiny_model):
    manifest = write_manifest(tmp_path / "m.csv", [PairRow(2, "a", {"image": tmp_path / "a.png"}, "x")], ["image"])
    assert stat.S_IMODE(manifest.stat().st_mode) == 0o644
    assert stat.S_IMODE(tiny_model.stat().st_mode) == 0o644
