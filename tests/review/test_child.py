"""The review run's child process reports typed messages; a model mismatch is a kind, not a sentence."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from app.qmf.predictor import Predictor
from app.review.child import run_review
from app.review.messages import ErrorKind, Failed, Finished, Prepared, Progress
from app.review.session import ModelMismatchError, ReviewSession
from app.review.workflow import prepare_session


class _Pipe:
    """Stands in for the pipe's sending end: keeps what the child sends."""

    def __init__(self) -> None:
        self.sent: list[object] = []

    def send(self, msg: object) -> None:
        self.sent.append(msg)

    def close(self) -> None:
        pass


def _run(tiny_model: Path, session: Path, source: Path | None) -> list[object]:
    running = threading.Event()
    running.set()
    pipe = _Pipe()
    run_review(pipe, threading.Event(), running, {"model_path": str(tiny_model), "session_path": str(session),
                                                   "source_path": str(source) if source else None,
                                                   "batch_size": 4, "workers": 1})
    return pipe.sent


def test_a_run_reports_prepared_progress_and_finished(tiny_model: Path, review_folder: Path, tmp_path: Path) -> None:
    sent = _run(tiny_model, tmp_path / "s.qmfreview", review_folder)
    assert isinstance(sent[0], Prepared) and sent[0].created and sent[0].new_pairs == 15
    assert any(isinstance(m, Progress) and m.done == 15 for m in sent)
    assert isinstance(sent[-1], Finished) and sent[-1].as_dict()["done"] == 15


def test_another_models_session_is_a_model_mismatch_with_the_facts(tiny_model: Path, review_folder: Path,
                                                                   tmp_path: Path) -> None:
    path = tmp_path / "s.qmfreview"
    prepare_session(path, Predictor.load(tiny_model), review_folder, tiny_model).session.close()
    with ReviewSession.open(path) as s:
        s.conn.execute("UPDATE meta SET value = ? WHERE key = 'model_sha256'", (json.dumps("f" * 64),))
    (failed,) = _run(tiny_model, path, None)
    assert isinstance(failed, Failed) and failed.kind is ErrorKind.MODEL_MISMATCH
    assert failed.path == str(path.absolute())
    # the sentence for the app names the file and both models, without the command line's advice
    assert str(path.name) in failed.message and "ffffffffffff" in failed.message
    assert "--rerun" not in failed.message


def test_the_mismatch_error_keeps_its_command_line_sentence() -> None:
    err = ModelMismatchError("/x/s.qmfreview", "old", "a" * 64, "new", "b" * 64)
    assert (err.session_model, err.given_model, err.given_sha256) == ("old", "new", "b" * 64)
    assert str(err).startswith(err.reason + "; re-run with --rerun")


def test_a_missing_source_is_bad_input_naming_the_file(tiny_model: Path, tmp_path: Path) -> None:
    (failed,) = _run(tiny_model, tmp_path / "new.qmfreview", tmp_path / "nowhere")
    assert isinstance(failed, Failed) and failed.kind is ErrorKind.BAD_INPUT
    assert "nowhere" in failed.message
