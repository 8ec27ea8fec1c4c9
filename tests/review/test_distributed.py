"""`qmf batch --engine ray`, Parquet results and `qmf review import`, on a local Ray started in the test.

Ray starts once for the module (``ray.init(num_cpus=2)``, no cluster, no dashboard); the 400-pair runs
(one interrupted, then resumed) are made once and shared by the tests that read them, so Ray runs
two pipelines in all. Without Ray (or pyarrow) the Ray tests are skipped with the reason; the tests that check what a
user without the extra sees run either way.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.cli import main as qmf
from tests.review.conftest import write_manifest
from tests.synthetic import CLASSES, write_pair

HAVE_ARROW = importlib.util.find_spec("pyarrow") is not None
HAVE_RAY = HAVE_ARROW and importlib.util.find_spec("ray") is not None
needs_arrow = pytest.mark.skipif(not HAVE_ARROW, reason="pyarrow not installed (pip install qmf-studio[distributed])")
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="Ray not installed (pip install qmf-studio[distributed])")

PAIRS = 400
BROKEN = "pair_0137"   # its image is not a PNG
MISSING = "pair_0250"  # its recording does not exist
TIMINGS = ("decode_seconds", "predict_seconds")
ROOT = Path(__file__).resolve().parents[2]


def make_manifest(root: Path, n: int = PAIRS) -> Path:
    rng = np.random.default_rng(7)
    rows = []
    for i in range(n):
        label = CLASSES[i % len(CLASSES)]
        img, wav = write_pair(root / "files", f"pair_{i:04d}", label, rng)
        rows.append((f"pair_{i:04d}", img.relative_to(root), wav.relative_to(root), label))
    (root / "files" / f"{BROKEN}.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image at all")
    (root / "files" / f"{MISSING}.wav").unlink()
    return write_manifest(root / "pairs.csv", rows)


def same_values(a: dict, b: dict) -> bool:
    """Equal rows: text, flags and booleans exactly; numbers up to float32 rounding (the model computes in
    float32, and a batch of another size may round the last bit differently)."""
    if a.keys() != b.keys():
        return False
    for k, x in a.items():
        y = b[k]
        if isinstance(x, float) or (isinstance(x, list) and x and isinstance(x[0], float)):
            if y is None or y != pytest.approx(x, rel=1e-6, abs=1e-7):
                return False
        elif x != y:
            return False
    return True


def read_rows(path: Path) -> dict[str, dict]:
    """Result rows (one file or a results folder) by pair id, without the timings (wall-clock)."""
    import pyarrow.dataset as ds

    rows = ds.dataset(path, format="parquet").to_table().to_pylist()
    return {r["id"]: {k: v for k, v in r.items() if k not in TIMINGS} for r in rows}


@pytest.fixture(scope="module")
def ray_local():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    return make_manifest(tmp_path_factory.mktemp("ray-pairs"))


@pytest.fixture(scope="module")
def runs(ray_local, tiny_model: Path, manifest: Path, tmp_path_factory) -> dict:
    """The same 400 pairs through a local `qmf batch` (session + Parquet export) and `--engine ray`.

    The Ray run is interrupted after two shards (what Ctrl-C in the driver does: the shards in flight
    are lost) and then run again with the same command, so every test below reads a resumed run.
    """
    from app.review.distributed import run_on_ray

    out = tmp_path_factory.mktemp("ray-runs")
    local_session, local_parquet, results = out / "local.qmfreview", out / "local.parquet", out / "results"
    assert qmf(["batch", "--model", str(tiny_model), "--manifest", str(manifest), "--session", str(local_session),
                "--parquet", str(local_parquet), "--quiet"]) == 0

    written: list[int] = []

    def stop_after_two(shard: int, rows: int, errors: int) -> None:
        written.append(shard)
        if len(written) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_on_ray(manifest, results, tiny_model, shard_size=50, batch_size=16, concurrency=2,
                   on_shard=stop_after_two)
    before = {p.name: p.stat().st_mtime_ns for p in results.glob("shard-*.parquet")}
    (results / ".shard-000007.parquet.x1.tmp").write_bytes(b"half a file from a killed writer")

    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        code = qmf(["batch", "--engine", "ray", "--model", str(tiny_model), "--manifest", str(manifest),
                    "--out", str(results), "--concurrency", "2", "--quiet"])
    assert code == 0
    return {"local_session": local_session, "local_parquet": local_parquet, "results": results, "dir": out,
            "before": before, "summary": summary.getvalue()}


@needs_ray
def test_ray_rows_equal_a_local_batch(runs: dict) -> None:
    local = read_rows(runs["local_parquet"])
    ray_rows = read_rows(runs["results"])
    assert len(ray_rows) == len(local) == PAIRS
    for pid, row in local.items():
        for col in ("verdict", "relabel", "note"):  # a session's export has the analyst's columns; shards do not
            row.pop(col)
        assert same_values(ray_rows[pid], row), (pid, ray_rows[pid], row)
    # the numbers are a real model's, not empty columns
    ok = [r for r in ray_rows.values() if r["status"] == "ok"]
    assert len(ok) == PAIRS - 2 and all(len(r["probabilities"]) == 3 and r["audio_share"] is not None for r in ok)


@needs_ray
def test_interrupted_run_resumes_with_exactly_one_row_per_pair(runs: dict, tiny_model: Path, manifest: Path,
                                                               tmp_path: Path) -> None:
    import pyarrow.dataset

    from app.review.distributed import run_on_ray

    results = runs["results"]
    assert len(runs["before"]) == 2  # the interrupted run left two whole shards
    assert "8 shards (2 already written, 6 written now, 0 missing)" in runs["summary"]
    assert {n: (results / n).stat().st_mtime_ns for n in runs["before"]} == runs["before"]  # not written again
    assert sorted(p.name for p in results.glob("shard-*.parquet")) == [f"shard-{k:06d}.parquet" for k in range(8)]
    ids = [r["id"] for r in pyarrow.dataset.dataset(results).to_table(columns=["id"]).to_pylist()]
    assert sorted(ids) == [f"pair_{i:04d}" for i in range(PAIRS)]  # every pair once, none twice
    assert not list(results.glob(".*.tmp"))

    # a re-run over a changed pair list is refused instead of mixing results
    files = manifest.parent / "files"
    other = write_manifest(tmp_path / "other.csv", [("other", files / "pair_0000.png", files / "pair_0000.wav", "low")])
    with pytest.raises(ValueError, match="different pair list"):
        run_on_ray(other, results, tiny_model)


@needs_ray
def test_unreadable_files_are_error_rows_not_a_failed_job(runs: dict) -> None:
    rows = read_rows(runs["results"])
    broken, missing = rows[BROKEN], rows[MISSING]
    assert broken["status"] == missing["status"] == "error"
    assert f"{BROKEN}.png" in broken["error"] and f"{MISSING}.wav" in missing["error"]
    assert broken["flags"] == ["error"] and broken["prediction"] is None and broken["image_share"] is None
    assert sum(r["status"] == "error" for r in rows.values()) == 2


@needs_ray
def test_shards_carry_a_versioned_schema(runs: dict) -> None:
    import pyarrow.parquet as pq

    from app.review.parquet import RESULTS_SCHEMA_VERSION, SCHEMA_VERSION_KEY, read_results

    shard = runs["results"] / "shard-000003.parquet"
    meta = pq.read_schema(shard).metadata
    assert int(meta[SCHEMA_VERSION_KEY.encode()]) == RESULTS_SCHEMA_VERSION
    assert int(meta[b"qmf.first_row"]) == 150
    assert [r["id"] for r in read_results(shard)] == [f"pair_{i:04d}" for i in range(150, 200)]


@needs_ray
def test_import_makes_the_same_session_as_a_local_run(runs: dict, capsys) -> None:
    from app.review.export import export_parquet
    from app.review.session import ReviewSession

    imported = runs["dir"] / "imported.qmfreview"
    assert qmf(["review", "import", str(runs["results"]), "--session", str(imported)]) == 0
    assert f"imported {PAIRS} pairs (2 error rows) from 8 shards" in capsys.readouterr().out
    with ReviewSession.open(imported) as s, ReviewSession.open(runs["local_session"]) as local:
        assert s.summary() == local.summary()
        assert s.pending_count() == 0
        s.set_verdict("pair_0001", "reject", note="checked by hand")
        export_parquet(s, runs["dir"] / "imported.parquet")
    rows, want = read_rows(runs["dir"] / "imported.parquet"), read_rows(runs["local_parquet"])
    assert rows["pair_0001"]["verdict"] == "reject" and rows["pair_0001"]["note"] == "checked by hand"
    rows["pair_0001"].update(verdict=None, note="")
    assert rows.keys() == want.keys() and all(same_values(rows[k], want[k]) for k in want)
    # importing again adds nothing and keeps the verdict
    assert qmf(["review", "import", str(runs["results"]), "--session", str(imported)]) == 0
    with ReviewSession.open(imported) as s:
        assert s.pair_count() == PAIRS and s.verdict("pair_0001")["verdict"] == "reject"


@needs_ray
def test_imported_session_opens_in_the_review_view(qtbot, runs: dict, tiny_model: Path) -> None:
    from app.gui.review import ReviewView

    imported = runs["dir"] / "for-view.qmfreview"
    assert qmf(["review", "import", str(runs["results"]), "--session", str(imported)]) == 0
    view = ReviewView(model_path_provider=lambda: tiny_model)
    qtbot.addWidget(view)
    view.open_session(imported)
    assert view.table_model.rowCount() == PAIRS
    view.select_row(3)
    pair = view.current_pair()
    assert pair is not None and pair.id == "pair_0003" and pair.status == "ok"
    assert pair.prediction == read_rows(runs["results"])["pair_0003"]["prediction"]


@needs_arrow
def test_parquet_manifest_gives_the_same_review_as_the_csv(tiny_model: Path, manifest: Path, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.csv
    import pyarrow.parquet as pq

    as_parquet = manifest.with_suffix(".parquet")
    pq.write_table(pyarrow.csv.read_csv(manifest, convert_options=pyarrow.csv.ConvertOptions(
        column_types={"id": pa.string(), "image": pa.string(), "audio": pa.string(), "label": pa.string()})),
        as_parquet)
    for src, name in ((manifest, "csv"), (as_parquet, "parquet")):
        assert qmf(["batch", "--model", str(tiny_model), "--manifest", str(src), "--session",
                    str(tmp_path / f"{name}.qmfreview"), "--parquet", str(tmp_path / f"{name}.parquet"),
                    "--quiet"]) == 0
    assert read_rows(tmp_path / "parquet.parquet") == read_rows(tmp_path / "csv.parquet")


def test_without_the_extra_the_user_is_told_what_to_install(monkeypatch, capsys, tiny_model: Path,
                                                             tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as on a base install
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    folder = tmp_path / "pairs"
    write_pair(folder, "a", "low", np.random.default_rng(0))
    code = qmf(["batch", "--engine", "ray", "--folder", str(folder), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "pip install qmf-studio[distributed]" in err
    code = qmf(["batch", "--model", str(tiny_model), "--folder", str(folder), "--session", str(tmp_path / "s.qmfreview"),
                "--parquet", str(tmp_path / "r.parquet")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "pyarrow" in err
    assert not (tmp_path / "s.qmfreview").exists()  # refused before the run, not after it


def test_base_install_never_imports_ray_or_pyarrow() -> None:
    code = ("import sys, app.cli, app.review.distributed, app.review.parquet, app.review.results_dir, app.review.export;"
            "app.cli.build_parser();"
            "bad = [m for m in ('ray', 'pyarrow') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env={"PYTHONPATH": str(ROOT), "PATH": ""})


@needs_ray
def test_ray_reads_pairs_named_by_file_uris_through_pyarrow(runs: dict, tiny_model: Path, manifest: Path,
                                                            tmp_path: Path) -> None:
    """The same pairs named by file:// URIs (what s3:// or gs:// go through: pyarrow.fs) score to the
    rows of the local paths; only the file columns differ, and they keep the URI as written."""
    from app.review.distributed import run_on_ray

    root = manifest.parent
    every = manifest.read_text().splitlines()[1:]
    lines = [*every[:39], every[137]]  # 40 pairs, the broken image among them
    rows = []
    for line in lines:
        pid, img, wav, label = line.split(",")
        rows.append((pid, (root / img).as_uri(), (root / wav).as_uri(), label))
    uris = write_manifest(tmp_path / "uris.csv", rows)
    stats = run_on_ray(uris, tmp_path / "results", tiny_model, shard_size=20, batch_size=8, concurrency=2)
    assert stats.rows_written == 40
    got, local = read_rows(tmp_path / "results"), read_rows(runs["results"])
    assert len(got) == 40
    for pid, row in got.items():
        assert row["image_file"] == (root / f"files/{pid}.png").as_uri()
        want = {k: v for k, v in local[pid].items() if not k.endswith("_file")}
        have = {k: v for k, v in row.items() if not k.endswith("_file")}
        if pid == BROKEN:  # its error names the URI, not the path
            assert have.pop("error") == want.pop("error").replace(str(root / f"files/{BROKEN}.png"), row["image_file"])
        assert same_values(have, want), pid
