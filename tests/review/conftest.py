"""Fixtures for the review tests: small labelled folders of generated pairs (no file from outside)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.cli import main as qmf
from tests.synthetic import CLASSES, write_pair

KINDS = {"image": "image", "audio": "audio"}


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


def assert_same_json(got, want, where="prediction"):
    """Same keys all the way down, same strings, numbers equal to float32 precision."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), f"{where}: keys {sorted(got)} != {sorted(want)}"
        for k in want:
            assert_same_json(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same_json(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, abs=1e-5), where
    else:
        assert got == want, where


def write_manifest(path: Path, rows: list[tuple]) -> Path:
    """A pairs manifest: one (id, image, audio, label) tuple per row."""
    path.write_text("id,image,audio,label\n" + "".join(",".join(map(str, row)) + "\n" for row in rows))
    return path


def run_batch(model: Path, folder: Path, session: Path, *extra: str) -> int:
    return qmf(["batch", "--model", str(model), "--folder", str(folder), "--session", str(session), "--quiet", *extra])


def kill_once_committed(proc: Any, session: Path, results: int, timeout: float = 120) -> None:
    """SIGKILL ``proc`` (a `qmf batch` into ``session``, still running) once ``results`` results are
    committed to the file; AssertionError with its stderr if it ended first."""
    import signal
    import sqlite3
    import time

    try:
        deadline, done = time.monotonic() + timeout, 0
        while time.monotonic() < deadline and proc.poll() is None and done < results:
            if session.exists():  # (connecting to a missing file would create it)
                with sqlite3.connect(session, timeout=5) as db:
                    done = db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
