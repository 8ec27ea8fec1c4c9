"""The prediction service on its own: one worker thread, latest request wins."""

from __future__ import annotations

from app.gui.service import PredictionService, PredictRequest, SweepRequest, effective_corruptions

TIMEOUT = 60000


def test_a_new_request_supersedes_pending_ones(qtbot, gui_model, pair, core_predictor):
    service = PredictionService()
    service.start()
    try:
        with qtbot.waitSignal(service.modelLoaded, timeout=TIMEOUT):
            service.load_model(gui_model)
        answered: list[int] = []
        service.predicted.connect(lambda rid, _r: answered.append(rid))
        n = 30
        with qtbot.waitSignal(service.predicted, timeout=TIMEOUT,
                              check_params_cb=lambda rid, _r: rid == n) as blocker:
            for rid in range(1, n + 1):
                level = rid / 3.0
                service.submit(PredictRequest(rid, dict(pair), [("image", "gaussian", level)]))
        assert answered[-1] == n
        assert len(answered) < n  # the ones overtaken while waiting were never computed
        result = blocker.args[1]
        expected = core_predictor.predict_files(pair, [("image", "gaussian", n / 3.0)]).to_json()
        assert result["prediction"]["modalities"] == expected["modalities"]
        assert result["raw"]["image"].shape == (28, 28)
    finally:
        service.stop()


def test_bad_input_and_missing_model_come_back_as_signals(qtbot, gui_model, pair, tmp_path):
    service = PredictionService()
    service.start()
    try:
        with qtbot.waitSignal(service.failed, timeout=TIMEOUT) as blocker:
            service.submit(PredictRequest(1, dict(pair)))
        assert blocker.args[:2] == [1, ""] and "no model" in blocker.args[2]
        broken = tmp_path / "broken.safetensors"
        broken.write_bytes(b"\x00" * 4)
        with qtbot.waitSignal(service.modelFailed, timeout=TIMEOUT) as blocker:
            service.load_model(broken)
        assert "broken.safetensors" in blocker.args[1]
        with qtbot.waitSignal(service.modelLoaded, timeout=TIMEOUT):
            service.load_model(gui_model)
        with qtbot.waitSignal(service.failed, timeout=TIMEOUT) as blocker:
            service.submit(PredictRequest(2, {"image": pair["image"], "audio": str(tmp_path / "gone.wav")}))
        assert blocker.args[:2] == [2, "audio"] and "gone.wav" in blocker.args[2]
        with qtbot.waitSignal(service.sweepDone, timeout=TIMEOUT) as blocker:
            service.submit_sweep(SweepRequest(3, dict(pair), {"image": "gaussian", "audio": "white_noise"}))
        sweep = blocker.args[1]
        assert len(sweep["modalities"]["audio"]["quality"]) == len(sweep["levels"]) == 11
    finally:
        service.stop()


def test_level_zero_corruptions_do_not_shift_the_noise_of_later_ones():
    assert effective_corruptions([("image", "gaussian", 0.0), ("audio", "white_noise", 5)]) == [
        ("audio", "white_noise", 5.0)]
