"""The prediction service on its own: one worker thread, latest request wins, typed answers."""

from __future__ import annotations

import threading

from app.gui.predict.messages import ErrorKind, ModelFailed, Predicted, PredictFailed, SweepDone
from app.gui.predict.service import PredictionService, effective_corruptions

TIMEOUT = 60000


def started_service(qtbot, model=None) -> PredictionService:
    service = PredictionService()
    service.start()
    if model is not None:
        with qtbot.waitSignal(service.modelLoaded, timeout=TIMEOUT):
            service.load_model(model)
    return service


def test_a_new_request_supersedes_pending_ones(qtbot, gui_model, pair, core_predictor):
    service = started_service(qtbot, gui_model)
    try:
        answered: list[int] = []
        service.predicted.connect(lambda p: answered.append(p.request_id))
        n = 30
        with qtbot.waitSignal(service.predicted, timeout=TIMEOUT) as blocker:
            for i in range(1, n + 1):
                last = service.predict(dict(pair), [("image", "gaussian", i / 3.0)])
        qtbot.wait(200)  # room for any answer to an earlier request to arrive (none must)
        assert answered == [last]  # only the latest request is ever answered
        result = blocker.args[0]
        assert isinstance(result, Predicted)
        expected = core_predictor.predict_files(pair, [("image", "gaussian", n / 3.0)]).to_json()
        assert result.prediction["modalities"] == expected["modalities"]
        assert result.raw["image"].shape == (28, 28)
    finally:
        service.stop()


def test_the_answer_to_a_request_superseded_while_it_ran_is_dropped(qtbot, gui_model, pair):
    """Request 1 is already running when request 2 comes: 1 is computed but never reaches a receiver."""
    service = started_service(qtbot, gui_model)
    worker_predictor = service._worker._predictor
    entered, release = threading.Event(), threading.Event()
    real_predict = worker_predictor.predict

    def held_predict(*args, **kwargs):
        entered.set()
        release.wait(30)
        return real_predict(*args, **kwargs)

    worker_predictor.predict = held_predict
    try:
        answered: list[int] = []
        service.predicted.connect(lambda p: answered.append(p.request_id))
        first = service.predict(dict(pair))
        assert entered.wait(30)  # the worker is inside request 1
        second = service.predict(dict(pair), [("audio", "white_noise", 5.0)])
        with qtbot.waitSignal(service.predicted, timeout=TIMEOUT):
            release.set()
        qtbot.wait(200)
        assert first != second and answered == [second]
    finally:
        release.set()
        service.stop()


def test_failures_come_back_typed_with_a_kind(qtbot, gui_model, pair, tmp_path):
    service = started_service(qtbot)
    try:
        with qtbot.waitSignal(service.failed, timeout=TIMEOUT) as blocker:
            service.predict(dict(pair))
        failed = blocker.args[0]
        assert isinstance(failed, PredictFailed) and failed.kind is ErrorKind.NO_MODEL and failed.modality is None
        broken = tmp_path / "broken.safetensors"
        broken.write_bytes(b"\x00" * 4)
        with qtbot.waitSignal(service.modelFailed, timeout=TIMEOUT) as blocker:
            service.load_model(broken)
        failed = blocker.args[0]
        assert isinstance(failed, ModelFailed) and failed.kind is ErrorKind.BAD_MODEL
        assert failed.message.startswith(str(broken))  # the file's own one line, no class name in front
        with qtbot.waitSignal(service.modelLoaded, timeout=TIMEOUT):
            service.load_model(gui_model)
        with qtbot.waitSignal(service.failed, timeout=TIMEOUT) as blocker:
            service.predict({"image": pair["image"], "audio": str(tmp_path / "gone.wav")})
        failed = blocker.args[0]
        assert (failed.kind, failed.modality) == (ErrorKind.BAD_INPUT, "audio") and "gone.wav" in failed.message
        with qtbot.waitSignal(service.sweepDone, timeout=TIMEOUT) as blocker:
            service.sweep(dict(pair), {"image": "gaussian", "audio": "white_noise"})
        sweep = blocker.args[0]
        assert isinstance(sweep, SweepDone)
        assert len(sweep.curves["audio"].quality) == len(sweep.levels) == 11
    finally:
        service.stop()


def test_a_model_error_subclass_is_still_a_bad_model_not_a_crash_report(qtbot, tmp_path, monkeypatch):
    """The kind follows the exception's type, not its class name (the old code compared names)."""
    from app.qmf import predictor as predictor_module
    from app.qmf.bundle import BundleError

    class TruncatedBundle(BundleError):
        pass

    def refuse(path, *a, **k):
        raise TruncatedBundle(path, "cut short after 100 bytes")

    monkeypatch.setattr(predictor_module.Predictor, "load", staticmethod(refuse))
    service = started_service(qtbot)
    try:
        with qtbot.waitSignal(service.modelFailed, timeout=TIMEOUT) as blocker:
            service.load_model(tmp_path / "m.safetensors")
        failed = blocker.args[0]
        assert failed.kind is ErrorKind.BAD_MODEL
        assert failed.message == f"{tmp_path / 'm.safetensors'}: cut short after 100 bytes"
    finally:
        service.stop()


def test_level_zero_corruptions_do_not_shift_the_noise_of_later_ones():
    assert effective_corruptions([("image", "gaussian", 0.0), ("audio", "white_noise", 5)]) == [
        ("audio", "white_noise", 5.0)]


def test_the_first_pair_is_decoded_while_the_model_loads_and_not_again(qtbot, gui_model, pair, core_predictor,
                                                                       monkeypatch):
    """What `qmf-studio` does at start-up: the pair is decoded in a thread of its own from the
    header's preprocessing while the worker loads the weights; the first prediction uses it."""
    from app.modalities.image import ImageModality
    from app.qmf.bundle import read_bundle_manifest

    readers: list[str] = []
    real_load = ImageModality.load
    monkeypatch.setattr(ImageModality, "load",
                        lambda self, path: readers.append(threading.current_thread().name) or real_load(self, path))
    service = PredictionService()
    service.start()
    try:
        service.prefetch(read_bundle_manifest(gui_model)["model"]["modalities"], dict(pair))
        service.load_model(gui_model)
        with qtbot.waitSignal(service.predicted, timeout=TIMEOUT) as blocker:
            service.predict(dict(pair))
        assert readers == ["qmf-prefetch"]  # decoded once, beside the model load
        expected = core_predictor.predict_files(pair).to_json()
        assert blocker.args[0].prediction["modalities"] == expected["modalities"]
    finally:
        service.stop()


def test_answers_held_while_the_page_builds_its_views_come_in_order(qtbot, gui_model, pair):
    service = started_service(qtbot, gui_model)
    try:
        seen: list[str] = []
        service.predicted.connect(lambda p: seen.append("predicted"))
        service.hold()
        service.predict(dict(pair))
        qtbot.waitUntil(lambda: bool(service._held), timeout=TIMEOUT)  # the worker has answered
        qtbot.wait(50)
        assert seen == []  # kept back
        service.release()
        assert seen == ["predicted"]
    finally:
        service.stop()


def test_open_model_reads_the_header_in_the_worker_then_loads_and_decodes_the_first_pair(
        qtbot, gui_model, pair, core_predictor, monkeypatch):
    """`qmf-studio` at start-up: the header's manifest comes first (the page builds its panels from it),
    then the weights load while the named pair is decoded beside them, once; the prediction uses it."""
    from app.modalities.image import ImageModality

    readers: list[str] = []
    real_load = ImageModality.load
    monkeypatch.setattr(ImageModality, "load",
                        lambda self, path: readers.append(threading.current_thread().name) or real_load(self, path))
    service = PredictionService()
    seen: list[str] = []
    for name in ("modelOpened", "modelLoading", "modelLoaded", "modelFailed"):
        getattr(service, name).connect(lambda _m, n=name: seen.append(n))
    service.start()
    try:
        with qtbot.waitSignal(service.modelLoaded, timeout=TIMEOUT):
            service.open_model(gui_model, prefetch=dict(pair))
        assert seen == ["modelOpened", "modelLoading", "modelLoaded"]
        with qtbot.waitSignal(service.predicted, timeout=TIMEOUT) as blocker:
            service.predict(dict(pair))
        assert readers == ["qmf-prefetch"]
        assert blocker.args[0].prediction["modalities"] == core_predictor.predict_files(pair).to_json()["modalities"]
    finally:
        service.stop()


def test_open_model_reports_a_refused_header_and_loads_nothing(qtbot, tmp_path, gui_model, pair):
    """A header the readers refuse is a BAD_MODEL failure marked `header`, one line naming the file; the
    worker stays up and the model it had stays."""
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 40)
    service = started_service(qtbot, gui_model)
    seen: list[object] = []
    service.modelLoading.connect(seen.append)
    service.modelOpened.connect(seen.append)
    try:
        with qtbot.waitSignal(service.modelFailed, timeout=TIMEOUT) as blocker:
            service.open_model(bad, prefetch=dict(pair))
        failed = blocker.args[0]
        assert isinstance(failed, ModelFailed) and failed.header and failed.kind is ErrorKind.BAD_MODEL
        assert failed.message.startswith(f"{bad}: ") and "\n" not in failed.message
        assert seen == []
        with qtbot.waitSignal(service.predicted, timeout=TIMEOUT):
            service.predict(dict(pair))  # the model that loaded before still answers
    finally:
        service.stop()
