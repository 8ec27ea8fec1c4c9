"""A long review run decodes in worker processes: the rows it writes are the rows the thread pool writes,
a broken file is still one error row naming it, and the workers' decoding never needs torch."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.qmf.predictor import Predictor
from app.review import runner as runner_mod
from app.review.runner import BatchRunner
from app.review.session import ReviewSession, RowFilter
from app.review.workflow import prepare_session
from tests.review.conftest import make_review_folder


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
