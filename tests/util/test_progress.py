"""Command-line progress in a log: plain lines, no carriage returns; a terminal gets the live bar."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from app.util.progress import ProgressReporter


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_not_a_terminal_gets_a_line_per_tenth_and_per_period_and_one_at_the_end() -> None:
    out, clock = io.StringIO(), _Clock()
    bar = ProgressReporter("reviewing", total=100, unit="pair", stream=out, every_s=30, clock=clock)
    for done in range(1, 101):
        bar.update(done, 100)
    bar.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert lines[0] == "reviewing: 10 / 100 pairs (10 %)" and lines[-1] == "reviewing: 100 / 100 pairs (100 %)"
    assert len(lines) == 10
    slow = io.StringIO()
    bar = ProgressReporter("reviewing", total=1000, stream=slow, every_s=30, clock=clock)
    bar.update(1)
    clock.t += 31
    bar.update(2)  # a slow run still says something every period
    bar.close()
    assert slow.getvalue().splitlines() == ["reviewing: 2 / 1000 items (0 %)"]


def test_quiet_writes_nothing() -> None:
    out = io.StringIO()
    with ProgressReporter("x", total=3, stream=out, quiet=True) as bar:
        bar.update(3)
    assert out.getvalue() == ""


def test_qmf_batch_into_a_log_has_no_carriage_returns(tmp_path: Path) -> None:
    """The real command with its stderr going to a file, as in a CI log."""
    root = Path(__file__).resolve().parents[2]
    log = tmp_path / "batch.log"
    with log.open("w") as err:
        proc = subprocess.run([sys.executable, "-m", "app.cli", "batch", "--folder", str(root / "resources" / "samples"),
                               "--session", str(tmp_path / "s.qmfreview"), "--workers", "1"],
                              cwd=root, stdout=subprocess.PIPE, stderr=err, text=True, timeout=300,
                              env={"PYTHONPATH": str(root), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    text = log.read_bytes().decode()  # as bytes: text mode reads a carriage return as a newline
    assert proc.returncode == 0, text
    assert "\r" not in text and "reviewing:" in text
