"""A long review run decodes in worker processes: the rows it writes are the rows the thread pool writes,
a broken file is still one error row naming it, and the workers' decoding never needs torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.qmf.predictor import Predictor
from app.review import runner as runner_mod
from app.review.runner import BatchRunner
from app.review.session import ReviewSession, RowFilter
from app.review.workflow import prepare_session
from tests.review.conftest import kill_once_committed, make_review_folder, run_batch


def _run(model: Path, folder: Path, session: Path, processes: int) -> tuple[dict, object]:
    predictor = Predictor.load(model)
    prepared = prepare_session(session, predictor, folder, model)
    with prepared.session as s:
        stats = BatchRunner(predictor, s, batch_size=8, workers=2, processes=processes).run()
    with ReviewSession.open(session) as s:
        rows = {r.id: r for r in s.rows(RowFilter())}
    return rows, stats


def test_process_pool_writes_the_same_rows_as_threads(tiny_model: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    folder = make_review_folder(tmp_path / "pairs", per_class=6)
    (folder / "mid" / "mid_003.wav").write_bytes(b"RIFF not really a wave file")
    monkeypatch.setattr(runner_mod, "MIN_PAIRS_FOR_PROCESSES", 1)  # a short run, as if it were long
    by_threads, t_stats = _run(tiny_model, folder, tmp_path / "threads.qmfreview", processes=0)
    by_procs, p_stats = _run(tiny_model, folder, tmp_path / "procs.qmfreview", processes=2)
    assert t_stats.processes == 0 and p_stats.processes == 2
    assert p_stats.processed == 18 and p_stats.errors == 1
    assert sorted(by_threads) == sorted(by_procs)
    for pid, a in by_threads.items():
        b = by_procs[pid]
        assert (a.status, a.prediction, a.flags) == (b.status, b.prediction, b.flags), pid
        if a.status == "ok":
            assert abs(a.probability - b.probability) < 1e-6
            for name in a.modalities:
                assert a.modalities[name] == pytest.approx(b.modalities[name], abs=1e-6)
    assert "mid_003.wav" in by_procs["mid/mid_003"].error


def test_worker_decoding_imports_no_torch() -> None:
    import subprocess
    import sys

    code = ("import sys\n"
            "from app.review import runner\n"
            "runner._init_worker([('image', 'image', {}), ('audio', 'audio', {})])\n"
            "out = runner._decode_chunk([{'image': None, 'audio': None}])\n"
            "assert out[0][1] is None and out[0][0]['audio'].dtype.name == 'float32'\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))\n")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root,
                         env={"PYTHONPATH": str(root), "PATH": ""}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_batch_decoding_gives_the_numbers_of_pair_by_pair_decoding(tiny_model: Path, tmp_path: Path) -> None:
    folder = make_review_folder(tmp_path / "pairs", per_class=3)
    broken = folder / "mid" / "mid_001.wav"
    broken.write_bytes(b"RIFF not really a wave file")
    predictor = Predictor.load(tiny_model)
    files = [{"image": png, "audio": png.with_suffix(".wav")} for png in sorted(folder.glob("*/*.png"))]
    arrays, outcome = runner_mod.decode_batch(predictor.modalities, files)
    errors = [err for err, _ in outcome]
    assert sum(e is not None for e in errors) == 1 and "mid_001.wav" in errors[files.index(
        next(f for f in files if f["audio"] == broken))]
    good = [runner_mod.decode_pair(predictor, f) for f, e in zip(files, errors, strict=True) if e is None]
    for name in predictor.modalities:
        assert arrays[name].shape[0] == len(good) == 8
        np.testing.assert_allclose(arrays[name], np.stack([g[name] for g in good]), rtol=0, atol=1e-6)


def test_scoring_workers_send_the_models_outputs_and_name_a_model_failure(tiny_model: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker given the model's graph decodes and scores a batch (the model run a slice of it at a
    time): its outputs are the numbers this process's own session gives for the whole batch at once, bit
    for bit, the predictions made of them are the thread pool's, a broken file stays its pair's error,
    and a model failure there becomes the same error rows."""
    from app.review import decode_worker
    from app.review.session import PendingPair

    monkeypatch.setattr(decode_worker, "MODEL_SLICE", 3)  # 8 pairs that decode: slices of 3, 3 and 2

    folder = make_review_folder(tmp_path / "pairs", per_class=3)
    broken = folder / "mid" / "mid_001.wav"
    broken.write_bytes(b"RIFF not really a wave file")
    predictor = Predictor.load(tiny_model)
    assert predictor.backend == "onnxruntime"
    files = [{"image": png, "audio": png.with_suffix(".wav")} for png in sorted(folder.glob("*/*.png"))]
    specs = [(name, m.kind, m.params) for name, m in predictor.modalities.items()]
    try:
        runner_mod._init_worker(specs, runner_mod._graph_for_workers(predictor), str(tiny_model))
        scored = runner_mod._score_batch(files)
        arrays, outcome = runner_mod.decode_batch(predictor.modalities, files)
        assert [e for e, _ in scored.outcome] == [e for e, _ in outcome]
        assert scored.model_error is None and scored.model_seconds > 0
        here = predictor.predict_arrays(arrays)
        for key, value in here.items():
            for sub, got in (value.items() if isinstance(value, dict) else [(None, value)]):
                np.testing.assert_array_equal(scored.numbers[key] if sub is None else scored.numbers[key][sub], got)
        good = [f for f, (e, _) in zip(files, outcome, strict=True) if e is None]
        by_worker = [p.to_json() for p in predictor.predictions(scored.numbers, good)]
        by_here = [p.to_json() for p in predictor.predict_batch(arrays, good)]
        assert [{**j, "seconds": 0} for j in by_worker] == [{**j, "seconds": 0} for j in by_here]

        class Failing:
            def run(self, batch):
                raise RuntimeError("out of memory in the worker")

        runner_mod._WORKER_ENGINE[:] = [Failing()]
        failed = runner_mod._score_batch(files)
    finally:
        runner_mod._WORKER_ENGINE.clear()
        runner_mod._WORKER_MODALITIES.clear()
    pending = [PendingPair(i, f"p{i}", {k: str(v) for k, v in f.items()}, None) for i, f in enumerate(files)]
    stats = runner_mod.RunStats()
    records = BatchRunner(predictor, None, processes=0)._process(pending, failed, stats)  # type: ignore[arg-type]
    assert stats.errors == len(files)
    texts = {r.error for r in records}
    assert "model failed on this batch: RuntimeError: out of memory in the worker" in texts
    assert any("mid_001.wav" in t for t in texts)


def test_results_are_written_the_first_batch_at_once_then_together(tiny_model: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    folder = make_review_folder(tmp_path / "pairs", per_class=4)
    monkeypatch.setattr(runner_mod, "COMMIT_SECONDS", 1e9)  # as if every batch came within the interval
    writes: list[int] = []
    real = ReviewSession.write_results

    def counting(self, records, thresholds=None):
        writes.append(len(records))
        real(self, records, thresholds)

    monkeypatch.setattr(ReviewSession, "write_results", counting)
    predictor = Predictor.load(tiny_model)
    prepared = prepare_session(tmp_path / "s.qmfreview", predictor, folder, tiny_model)
    with prepared.session as s:
        stats = BatchRunner(predictor, s, batch_size=3, workers=1, processes=0).run()
    assert stats.processed == 12 and writes == [3, 9]  # the first rows show at once; one transaction after
    with ReviewSession.open(tmp_path / "s.qmfreview") as s:
        assert s.result_count() == 12


def test_qmf_batch_starts_its_decoding_processes_while_it_stores_a_new_sessions_pairs(
        tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """A long `qmf batch` into a new session starts its workers once the folder is read (they start up
    while the pairs are stored), the run decodes with those same workers and they are gone at the end;
    the rows are the thread pool's. A command that fails after starting them leaves none behind."""
    import multiprocessing

    folder = make_review_folder(tmp_path / "pairs", per_class=6)
    by_threads, _ = _run(tiny_model, folder, tmp_path / "threads.qmfreview", processes=0)
    monkeypatch.setattr(runner_mod, "MIN_PAIRS_FOR_PROCESSES", 1)  # a short run, as if it were long
    started: list[tuple[int, object]] = []
    real = runner_mod.decoding_processes

    def spy(predictor, todo, processes=None):
        pool = real(predictor, todo, processes)
        started.append((todo, pool))
        return pool

    monkeypatch.setattr(runner_mod, "decoding_processes", spy)
    before = set(multiprocessing.active_children())
    assert run_batch(tiny_model, folder, tmp_path / "cli.qmfreview") == 0
    assert [todo for todo, _ in started] == [18] and started[0][1] is not None  # once, before the run: reused
    assert set(multiprocessing.active_children()) <= before
    with ReviewSession.open(tmp_path / "cli.qmfreview") as s:
        by_cli = {r.id: r for r in s.rows(RowFilter())}
    assert {k: (r.status, r.prediction, r.flags) for k, r in by_cli.items()} == {
        k: (r.status, r.prediction, r.flags) for k, r in by_threads.items()}

    started.clear()
    monkeypatch.setattr(ReviewSession, "add_pairs",
                        lambda self, pairs, **options: (_ for _ in ()).throw(OSError("disk gone")))
    assert run_batch(tiny_model, folder, tmp_path / "failed.qmfreview") != 0  # one line: "disk gone"
    assert "disk gone" in capsys.readouterr().err
    assert len(started) == 1 and started[0][1] is not None
    assert set(multiprocessing.active_children()) <= before


class _CountingPool:
    """A thread pool standing in for the decoding processes (the worker functions run in this process,
    after `init_worker`), counting the batches handed to it."""

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(1)
        self.submitted = 0

    def submit(self, fn, *args):
        self.submitted += 1
        return self._pool.submit(fn, *args)

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


@pytest.mark.parametrize("order", ["as stored", "another order"])
def test_batches_scored_before_the_session_is_filled_are_used_only_for_the_same_pairs(
        tiny_model: Path, tmp_path: Path, order: str) -> None:
    """`qmf batch` hands its workers a new session's first batches as soon as the folder is read: the run
    takes them (no batch is scored twice) when they are the session's pending pairs, and drops them and
    scores every pair from the session when they are not; either way each pair gets its own result,
    the rows of the thread pool, a broken file its error row."""
    folder = make_review_folder(tmp_path / "pairs", per_class=6)
    (folder / "mid" / "mid_003.wav").write_bytes(b"RIFF not really a wave file")
    by_threads, _ = _run(tiny_model, folder, tmp_path / "threads.qmfreview", processes=0)
    predictor = Predictor.load(tiny_model)
    specs = [(name, m.kind, m.params) for name, m in predictor.modalities.items()]
    pool = _CountingPool()
    ahead: list = []

    def on_source(pairs) -> None:
        pairs = list(pairs) if order == "as stored" else list(reversed(pairs))
        ahead.extend(runner_mod.submit_ahead(pool, predictor, pairs, 4))

    try:
        runner_mod._init_worker(specs, runner_mod._graph_for_workers(predictor), str(tiny_model))
        prepared = prepare_session(tmp_path / "early.qmfreview", predictor, folder, tiny_model, on_source=on_source)
        assert len(ahead) == pool.submitted == 5  # 18 pairs, 4 a batch: all of them before the run
        with prepared.session as s:
            stats = BatchRunner(predictor, s, batch_size=4, processes=2, pool=pool, ahead=ahead).run()  # type: ignore[arg-type]
    finally:
        runner_mod._WORKER_ENGINE.clear()
        runner_mod._WORKER_MODALITIES.clear()
    assert stats.processed == 18 and stats.errors == 1
    assert pool.submitted == (5 if order == "as stored" else 10)
    with ReviewSession.open(tmp_path / "early.qmfreview") as s:
        rows = {r.id: r for r in s.rows(RowFilter())}
    assert {k: (r.status, r.prediction, r.flags) for k, r in rows.items()} == {
        k: (r.status, r.prediction, r.flags) for k, r in by_threads.items()}
    assert "mid_003.wav" in rows["mid/mid_003"].error


_FORKED_RUN = """
import sys
from app.review import runner
runner.MIN_PAIRS_FOR_PROCESSES = 1  # a short run, as if it were long
real = runner.start_decoding_processes
def start(*args, **options):
    pool = real(*args, **options)
    print("workers", options.get("method", "spawn"), pool is not None, flush=True)
    return pool
runner.start_decoding_processes = start
import app.cli
sys.exit(app.cli.main(sys.argv[1:]))
"""


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(c) for c in (task / "children").read_text().split())
    return found


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="forked workers: Linux only")
def test_qmf_batch_forks_its_workers_first_and_a_killed_run_leaves_none_and_resumes(tiny_model: Path,
                                                                                  tmp_path: Path) -> None:
    """A long `qmf batch` into a new session forks its workers before it loads the model; killed mid-run,
    its workers end with it, every result committed before is kept, and the same command finishes
    the rest: one row per pair, the broken file's error row among them."""
    import os
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[2]
    folder = make_review_folder(tmp_path / "pairs", per_class=12)
    (folder / "mid" / "mid_005.wav").write_bytes(b"RIFF not really a wave file")
    session = tmp_path / "forked.qmfreview"
    cmd = [sys.executable, "-c", _FORKED_RUN, "batch", "--model", str(tiny_model), "--folder", str(folder),
           "--session", str(session), "--batch-size", "2", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(root), "QMF_REVIEW_BATCH_DELAY": "0.1"}
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().split() == ["workers", "fork", "True"]
        workers = _children(proc.pid)
        assert len(workers) >= 2
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    kill_once_committed(proc, session, 6)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(Path(f"/proc/{w}").exists() for w in workers):
        time.sleep(0.05)
    assert not any(Path(f"/proc/{w}").exists() for w in workers)
    with ReviewSession.open(session) as s:
        assert 6 <= s.result_count() < 36
    env.pop("QMF_REVIEW_BATCH_DELAY")
    again = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stderr
    with ReviewSession.open(session) as s:
        rows = s.rows(RowFilter())
        assert s.pair_count() == s.result_count() == len(rows) == len({r.id for r in rows}) == 36
        assert [r.id for r in rows if r.status == "error"] == ["mid/mid_005"]
