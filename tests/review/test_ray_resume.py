"""A real `qmf batch --engine ray` process killed with SIGKILL mid-run, then run again.

The run is a subprocess (its own local Ray, ``ray.init(num_cpus=2)``, then the CLI's ``main``), so
the kill is what a lost driver or a pulled plug does: no Python clean-up, no ``finally``. The test
waits for shard files to appear (polling the folder), kills the process group, and checks what a
shard commit promises: every shard file left is whole (written to a hidden temporary name, fsynced,
renamed). Then it damages one of them (cut in half, as a failed copy would) and leaves a temporary
file as a writer killed mid-write does; the same command run again rewrites exactly the missing and
damaged shards, and the folder ends with one row per pair, none twice.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.review.results_dirs import make_pairs_manifest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None or importlib.util.find_spec("pyarrow") is None,
    reason="Ray not installed (pip install qmf-studio[distributed])")

ROOT = Path(__file__).resolve().parents[2]
PAIRS, SHARD = 200, 5  # 40 shards; one actor in the killed run writes them one after another
START = ("import logging, sys, ray; "
         "ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING); "
         "from app.cli import main; sys.exit(main(sys.argv[1:]))")
LIMIT_S = 300  # a hung Ray start fails the test instead of blocking CI; no timing is asserted


def qmf_ray(model: Path, manifest: Path, out: Path, concurrency: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.Popen(
        [sys.executable, "-c", START, "batch", "--engine", "ray", "--model", str(model), "--manifest", str(manifest),
         "--out", str(out), "--shard-size", str(SHARD), "--batch-size", "5", "--concurrency", str(concurrency),
         "--quiet"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)  # its own process group: the kill reaches Ray's processes it started too


def shards(out: Path) -> list[Path]:
    return sorted(out.glob("shard-*.parquet")) if out.is_dir() else []


def test_killed_run_resumes_with_exactly_one_row_per_pair(tmp_path: Path, tiny_model: Path) -> None:
    import pyarrow.parquet as pq

    manifest = make_pairs_manifest(tmp_path / "in", PAIRS)
    out = tmp_path / "results"
    proc = qmf_ray(tiny_model, manifest, out, concurrency=1)
    deadline = time.monotonic() + LIMIT_S
    try:
        while len(shards(out)) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        output = proc.communicate()[0]
    assert proc.returncode == -signal.SIGKILL, output  # killed, not finished
    left = shards(out)
    assert 3 <= len(left) < PAIRS // SHARD, [p.name for p in left]
    for p in left:  # every committed shard is whole, with its own rows
        k = int(p.stem.split("-")[1])
        assert pq.read_table(p).column("id").to_pylist() == [f"pair_{i:03d}" for i in range(k * SHARD, k * SHARD + SHARD)]

    kept, cut = left[0], left[1]
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])  # damaged after the commit
    (out / ".shard-000039.parquet.k1ll3d.tmp").write_bytes(b"PAR1 half a shard")  # a writer killed mid-write
    kept_mtime = kept.stat().st_mtime_ns

    proc = qmf_ray(tiny_model, manifest, out, concurrency=2)
    try:
        output = proc.communicate(timeout=LIMIT_S)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, output
    assert f"({len(left) - 1} already written, {PAIRS // SHARD - len(left) + 1} written now, 0 missing)" in output
    assert f"damaged shard file(s) set aside as .shard-K.parquet.damaged and scored again: {cut.name}" in output
    assert kept.stat().st_mtime_ns == kept_mtime  # a whole shard is not scored again
    ids = pq.read_table(out, columns=["id"]).column("id").to_pylist()  # the folder as pandas/DuckDB read it
    assert sorted(ids) == [f"pair_{i:03d}" for i in range(PAIRS)]  # every pair once, none twice
    assert not list(out.glob(".*.tmp")) and (out / f".{cut.name}.damaged").is_file()
