"""The command line tells a person's mistake from the app's own bug."""

from __future__ import annotations

import argparse
import errno

from app.cli import EXIT_BROKEN_PIPE, EXIT_BUG, EXIT_INPUT, EXIT_USAGE, UsageError, run_handler
from app.modalities import InputError


def _run(capsys, exc: BaseException) -> tuple[int, str]:
    def handler(args):
        raise exc

    code = run_handler("qmf predict", handler, argparse.Namespace())
    return code, capsys.readouterr().err


def test_user_errors_and_os_errors_are_one_line(capsys):
    code, err = _run(capsys, InputError("a.png", "not an image file Pillow can read"))
    assert (code, err) == (EXIT_INPUT, "qmf predict: error: a.png: not an image file Pillow can read\n")
    code, err = _run(capsys, UsageError("--levels: give numbers between 0 and 10"))
    assert code == EXIT_USAGE and err.count("\n") == 1
    code, err = _run(capsys, OSError(errno.ENOSPC, "No space left on device", "/data/out.csv"))
    assert (code, err) == (EXIT_INPUT, "qmf predict: error: /data/out.csv: No space left on device\n")


def test_a_closed_pipe_ends_quietly(capsys):
    # `qmf info | head -3`: head stops reading; that is neither the user's mistake nor a bug
    code, err = _run(capsys, BrokenPipeError(errno.EPIPE, "Broken pipe"))
    assert (code, err) == (EXIT_BROKEN_PIPE, "")


def test_a_bug_is_reported_as_a_bug_not_as_a_problem_with_the_input(capsys, monkeypatch):
    monkeypatch.delenv("QMF_DEBUG", raising=False)
    code, err = _run(capsys, KeyError("modalities"))
    assert code == EXIT_BUG
    first, second = err.strip().split("\n")
    assert "a bug in QMF Studio" in first and "KeyError: 'modalities'" in first
    assert "Please report it" in second and "QMF_DEBUG=1" in second and "Traceback" not in err


def test_qmf_debug_adds_the_traceback(capsys, monkeypatch):
    monkeypatch.setenv("QMF_DEBUG", "1")
    code, err = _run(capsys, ZeroDivisionError("division by zero"))
    assert code == EXIT_BUG and "Traceback (most recent call last)" in err
