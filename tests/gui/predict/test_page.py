"""The Predict page, driven through its real widgets (inside the main window) on the offscreen platform."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog

from app.gui.panels import AudioPanel, ImagePanel
from app.gui.result_view import format_number

TIMEOUT = 60000


def assert_shows(window, expected) -> None:
    """The label, the table and the quality chart show the core's numbers."""
    e = expected.to_json()
    assert window.predict.result_view.headline.text().startswith(f"Prediction: {e['label']} ")
    assert f"{e['probability']:.3f}" in window.predict.result_view.headline.text()
    table = window.predict.result_view.table_values()
    bars = window.predict.result_view.quality_chart.bar_heights()
    for name, r in e["modalities"].items():
        assert table[name]["prediction"] == r["label"]
        for key in ("probability", "energy", "quality", "share"):
            assert table[name][key] == format_number(key, r[key]), (name, key)
        assert bars[name]["quality"] == pytest.approx(r["quality"], abs=1e-6)
        assert bars[name]["share"] == pytest.approx(r["share"], abs=1e-6)
    assert table["fused"]["prediction"] == e["label"]
    shown = window.predict.result_json()
    assert shown["label"] == e["label"]
    assert shown["probabilities"] == pytest.approx(e["probabilities"], abs=1e-6)


def test_panels_follow_the_model_manifest(window):
    assert list(window.predict.panels) == ["image", "audio"]
    assert isinstance(window.predict.panels["image"], ImagePanel)
    assert isinstance(window.predict.panels["audio"], AudioPanel)
    assert window.predict.model_ready
    assert "tiny-test-model" in window.predict.model_status.text()


def test_open_through_panel_buttons_shows_the_core_prediction(qtbot, window, pair, core_predictor, monkeypatch):
    for name in ("image", "audio"):
        monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, n=name, **k: (pair[n], ""))
        with qtbot.waitSignal(window.predict.resultShown, timeout=TIMEOUT):
            qtbot.mouseClick(window.predict.panels[name].open_button, Qt.MouseButton.LeftButton)
    assert window.predict.panels["image"].path == pair["image"]
    assert_shows(window, core_predictor.predict_files(pair))
    assert "28×28 PNG" in window.predict.panels["image"].info_label.text()
    assert "8000 Hz" in window.predict.panels["audio"].info_label.text()
    assert "predicted in" in window.predict.time_label.text()


def test_severity_slider_moves_weight_away_from_the_degraded_input(qtbot, window, pair, core_predictor):
    with qtbot.waitSignal(window.predict.resultShown, timeout=TIMEOUT):
        window.predict.set_files(pair)
    clean_share = window.predict.result_json()["modalities"]["image"]["share"]
    panel = window.predict.panels["image"]
    panel.set_corruption_kind("gaussian")
    with qtbot.waitSignal(window.predict.resultShown, timeout=TIMEOUT):
        for value in range(0, 101, 5):  # a drag: many values, debounced into few predictions
            panel.slider.setValue(value)
    degraded = window.predict.result_json()
    assert degraded["corruptions"] == [{"modality": "image", "kind": "gaussian", "level": 10.0}]
    assert degraded["modalities"]["image"]["share"] < clean_share
    assert_shows(window, core_predictor.predict_files(pair, [("image", "gaussian", 10.0)]))
    # The preview shows the degraded picture the model saw, not the clean file.
    shown = panel.preview.shown
    clean = core_predictor.load_inputs(pair)["image"]
    assert shown.shape == clean.shape and not np.array_equal(shown, clean)


def test_bad_file_shows_an_error_and_the_next_pair_predicts(qtbot, window, pair, tmp_path, core_predictor):
    bad = tmp_path / "not-a-picture.png"
    bad.write_text("hello, I am text")
    with qtbot.waitSignal(window.predict.inputFailed, timeout=TIMEOUT) as blocker:
        window.predict.set_files({"image": str(bad), "audio": pair["audio"]})
    assert blocker.args[0] == "image"
    panel = window.predict.panels["image"]
    assert not panel.error_label.isHidden()
    assert "not-a-picture.png" in panel.error_label.text()
    assert "No prediction" in window.predict.result_view.headline.text()
    # the readable recording is still shown, not left "reading…"
    audio = window.predict.panels["audio"]
    assert audio.info_label.text() not in ("", "reading…")
    shown = audio.preview.wave
    assert shown is not None and len(shown) > 0
    with qtbot.waitSignal(window.predict.resultShown, timeout=TIMEOUT):
        window.predict.set_files(pair)
    assert panel.error_label.isHidden()
    assert_shows(window, core_predictor.predict_files(pair))


def test_unknown_file_type_dropped_is_reported(qtbot, window, tmp_path):
    odd = tmp_path / "notes.xyz"
    odd.write_text("?")
    with qtbot.waitSignal(window.predict.inputFailed, timeout=TIMEOUT) as blocker:
        problems = window.predict.open_files([str(odd)])
    assert problems and "notes.xyz" in blocker.args[1]


def test_sweep_plots_quality_and_confidence_over_severity(qtbot, window, pair):
    with qtbot.waitSignal(window.predict.resultShown, timeout=TIMEOUT):
        window.predict.set_files(pair)
    with qtbot.waitSignal(window.predict.sweepShown, timeout=TIMEOUT) as blocker:
        window.predict.run_sweep()
    result = blocker.args[0]
    assert result["levels"][0] == 0 and result["levels"][-1] == 10
    image = result["modalities"]["image"]
    assert image["quality"][0] == pytest.approx(window.predict.result_json()["modalities"]["image"]["quality"], abs=1e-6)
    xs, ys = window.predict.sweep_plot.curves["image"][0].getData()
    assert len(xs) == len(result["levels"]) and ys == pytest.approx(image["quality"])


def test_export_json_and_png(qtbot, window, pair, tmp_path, core_predictor):
    import json

    with qtbot.waitSignal(window.predict.resultShown, timeout=TIMEOUT):
        window.predict.set_files(pair)
    window.predict.export_json(tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    expected = core_predictor.predict_files(pair).to_json()
    assert data["label"] == expected["label"]
    assert data["modalities"]["audio"]["quality"] == pytest.approx(expected["modalities"]["audio"]["quality"])
    assert window.predict.export_charts_png(tmp_path / "charts.png")
    assert not QImage(str(tmp_path / "charts.png")).isNull()


def test_recent_pairs_are_remembered(qtbot, window, pair):
    with qtbot.waitSignal(window.predict.resultShown, timeout=TIMEOUT):
        window.predict.set_files(pair)
    assert window.predict.recent.pairs()[0] == pair
    assert any("test_mid_000" in a.text() for a in window.fill_menu("recent").actions())


def test_missing_model_gives_a_message_not_a_crash(qtbot, tmp_path, monkeypatch):
    from app.gui.predict import model_life
    from app.gui.window import MainWindow

    monkeypatch.setattr(model_life, "default_model_path", lambda: tmp_path / "no-bundled.safetensors")
    w = MainWindow(tmp_path / "nowhere.safetensors")
    qtbot.addWidget(w)
    assert "not found" in w.predict.model_banner.text()
    assert w.predict.panels == {}
    assert w.predict.request_prediction() is None
    w.close()


@pytest.mark.parametrize("content", [b"this is not a model", None], ids=["damaged", "missing"])
def test_a_bad_model_file_is_named_and_the_bundled_model_opens_instead(qtbot, tmp_path, content):
    """`qmf-studio --model FILE` with a file that cannot be used: one line says what is wrong with
    it, and the window works with the bundled model rather than showing "No model loaded"."""
    from app.gui.window import MainWindow
    from app.resources import default_model_path

    bad = tmp_path / "bad.safetensors"
    if content is not None:
        bad.write_bytes(content)
    w = MainWindow(bad)
    qtbot.addWidget(w)
    note = w.predict.model.fallback_note
    assert note is not None and "\n" not in note, note
    assert str(bad) in note and "bundled model" in note
    assert ("not a model file" if content else "not found") in note
    assert "bad.safetensors" in w.predict.model_banner.text()
    assert w.predict.model_path == str(default_model_path())
    assert list(w.predict.panels) == ["image", "audio"]
    with qtbot.waitSignal(w.predict.modelReady, timeout=TIMEOUT):
        pass
    assert "bundled" in w.predict.model_status.text()
    assert "No model" not in w.predict.model_banner.text()
    w.close()


def _absurd_model(path: Path) -> Path:
    """A well-sealed model file whose manifest asks for 20000x20000 images (the readers refuse it)."""
    from app.qmf.bundle import read_bundle_manifest, save_bundle, seal_bundle
    from tests.qmf.test_bundle import small_model

    model = small_model()
    good = save_bundle(path.with_name("good.safetensors"), model, {"name": "m", "provenance": {"source": "test"}})
    manifest = read_bundle_manifest(good)
    manifest["model"]["modalities"][0]["preprocessing"]["size"] = [20000, 20000]
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    return seal_bundle(path, state, manifest)


@pytest.mark.parametrize("kind", ["damaged", "absurd"])
def test_a_refused_model_file_is_said_in_the_shown_window(qtbot, tmp_path, monkeypatch, kind):
    """`qmf-studio`'s first model is checked in the worker, after the window is up: a file it refuses
    (no bundled model to fall back to) is named in the page, in one line without a traceback, and the
    window stays up and refuses to predict."""
    from app.gui.predict import model_life
    from app.gui.window import MainWindow

    monkeypatch.setattr(model_life, "default_model_path", lambda: tmp_path / "no-bundled.safetensors")
    bad = tmp_path / "bad.safetensors"
    if kind == "damaged":
        bad.write_bytes(b"\xff" * 64)
    else:
        _absurd_model(bad)
    w = MainWindow(bad, header_in_worker=True)
    qtbot.addWidget(w)
    w.show()
    assert w.isVisible() and w.predict.panels == {}
    failed = []
    w.predict.inputFailed.connect(lambda name, message: failed.append(message))
    qtbot.waitUntil(lambda: bool(failed), timeout=TIMEOUT)
    (message,) = failed
    assert message.startswith("Cannot open the model: ") and str(bad) in message and "\n" not in message
    assert "Traceback" not in message and ("20,000" in message if kind == "absurd" else "not a model file" in message)
    assert str(bad) in w.predict.model_banner.text()
    assert w.predict.model_status.text() == "No model" and w.predict.model_path is None
    assert w.isVisible() and w.predict.panels == {} and w.predict.request_prediction() is None
    w.close()


def test_the_first_models_header_is_read_off_the_gui_thread(qtbot, gui_model, monkeypatch):
    """Checking a manifest imports the decoders (numpy, PIL, soundfile): at start-up the worker does it,
    so the window need not wait for them; the panels follow when the header is in."""
    import threading

    import app.qmf.bundle
    from app.gui.predict import model_life
    from app.gui.window import MainWindow

    readers = []
    real = app.qmf.bundle.read_bundle_manifest

    def spy(path):
        readers.append(threading.current_thread().name)
        return real(path)

    monkeypatch.setattr(app.qmf.bundle, "read_bundle_manifest", spy)
    monkeypatch.setattr(model_life, "read_bundle_manifest", spy)
    w = MainWindow(gui_model, header_in_worker=True)
    qtbot.addWidget(w)
    assert w.predict.panels == {} and w.predict.model.opening
    with qtbot.waitSignal(w.predict.modelReady, timeout=TIMEOUT):
        w.show()
    assert readers and threading.main_thread().name not in readers
    assert list(w.predict.panels) == ["image", "audio"] and "tiny-test-model" in w.predict.model_banner.text()
    w.close()


def test_a_damaged_first_model_read_in_the_worker_falls_back_to_the_bundled_one(qtbot, tmp_path, monkeypatch):
    """As `qmf-studio --model FILE` opens it: the window is shown first, then says what is wrong with
    the file and works with the bundled model."""
    from PySide6.QtWidgets import QLabel, QMessageBox

    from app.gui.window import MainWindow
    from app.resources import default_model_path

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"this is not a model")
    w = MainWindow(bad, header_in_worker=True)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.predict.model_ready, timeout=TIMEOUT)
    note = w.predict.model.fallback_note
    assert note is not None and "\n" not in note and str(bad) in note and "not a model file" in note, note
    banner = w.predict.model_banner
    assert "bad.safetensors" in banner.text() and "bundled" in w.predict.model_status.text()
    assert w.predict.model_path == str(default_model_path()) and list(w.predict.panels) == ["image", "audio"]
    # the line under the model names the file, not its whole path and reason: those are behind "Details…"
    # and in the tooltip, so a long path does not push the input panels down
    assert str(bad.parent) not in banner.text() and "Details" in banner.text() and banner.toolTip() == note
    model_line = QLabel(banner.text().split("<br>")[0], wordWrap=True)
    model_line.setFont(banner.font())
    assert banner.heightForWidth(460) - model_line.heightForWidth(460) <= 2 * banner.fontMetrics().lineSpacing()
    shown = []
    monkeypatch.setattr(QMessageBox, "information", lambda parent, title, text: shown.append(text))
    banner.linkActivated.emit("details")
    assert shown == [note]
    w.close()


def test_model_card_shows_the_manifest(window):
    from app.gui.predict.model_card import model_card_html

    page = model_card_html(window.predict.manifest)
    for text in ("tiny-test-model", "low", "sample_rate", "Training", "Evaluation", "encoder: CNN 8-16, hidden 32"):
        assert text in page


def test_panel_kinds_for_other_models(qtbot):
    from app.gui.panels import GenericPanel, TextPanel, make_panel

    text = make_panel({"name": "caption", "kind": "text"})
    other = make_panel({"name": "depth", "kind": "lidar"})
    qtbot.addWidget(text)
    qtbot.addWidget(other)
    assert isinstance(text, TextPanel) and "blank_words" in [
        text.corruption_box.itemText(i) for i in range(text.corruption_box.count())]
    assert isinstance(other, GenericPanel) and not other.slider.isEnabled()


def test_opening_another_model_rebuilds_the_panels(qtbot, window, pair, other_pair, three_input_model):
    from app.qmf.predictor import Predictor

    with qtbot.waitSignal(window.predict.modelReady, timeout=TIMEOUT):
        window.predict.open_model(three_input_model)
    assert list(window.predict.panels) == ["front", "side", "voice"]
    assert [type(p).__name__ for p in window.predict.panels.values()] == ["ImagePanel", "ImagePanel", "AudioPanel"]
    assert window.predict.result_view.quality_chart.names == ["front", "side", "voice"]
    files = {"front": pair["image"], "side": other_pair["image"], "voice": pair["audio"]}
    with qtbot.waitSignal(window.predict.resultShown, timeout=TIMEOUT):
        window.predict.open_files([pair["audio"], pair["image"], other_pair["image"]])  # routed by type, in order
    assert window.predict.current_files() == files
    assert_shows(window, Predictor.load(three_input_model).predict_files(files))


def test_starts_with_the_first_demo_pair(qtbot, window, pair, tmp_path, monkeypatch, core_predictor):
    import json
    import shutil

    import app.resources

    for kind in ("image", "audio"):
        shutil.copy(pair[kind], tmp_path / Path(pair[kind]).name)
    entries = [{"id": "d1", "title": "A bar and a tone", "expected": "mid",
                "files": {k: Path(v).name for k, v in pair.items()}}]
    (tmp_path / "samples.json").write_text(json.dumps(entries))
    monkeypatch.setattr(app.resources, "samples_dir", lambda: tmp_path)
    assert [a.text() for a in window.fill_menu("demo").actions()] == ["A bar and a tone  (expected: mid)"]
    with qtbot.waitSignal(window.predict.resultShown, timeout=TIMEOUT):
        assert window.predict.load_first_demo()
    expected = {k: str(tmp_path / Path(v).name) for k, v in pair.items()}
    assert_shows(window, core_predictor.predict_files(expected))


def test_no_demo_samples_is_said_in_the_menu(window, tmp_path, monkeypatch):
    import app.resources

    monkeypatch.setattr(app.resources, "samples_dir", lambda: tmp_path / "none")
    (action,) = window.fill_menu("demo").actions()
    assert "no demo samples" in action.text() and not action.isEnabled()
    assert not window.predict.load_first_demo()


def test_shown_figures_equal_the_command_line_json(qtbot, window, pair, capsys):
    """What the window shows (and exports) is what `qmf predict --json` prints, corruption included."""
    import json

    from app.cli import main as cli_main

    panel = window.predict.panels["audio"]
    panel.set_corruption_kind("white_noise")
    panel.set_level(6.0)
    with qtbot.waitSignal(window.predict.resultShown, timeout=TIMEOUT):
        window.predict.set_files(pair)
    capsys.readouterr()
    assert cli_main(["predict", "--json", "--model", str(window.predict.model_path), "--image", pair["image"],
                     "--audio", pair["audio"], "--corrupt", "audio:white_noise:6"]) == 0
    printed = json.loads(capsys.readouterr().out)
    shown = window.predict.result_json()
    for data in (printed, shown):
        data.pop("seconds")
        data.pop("seed", None)
    assert shown == printed


def test_a_bad_model_file_keeps_the_current_model(qtbot, window, pair, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    bad = tmp_path / "bad.safetensors"
    bad.write_text("not a model")
    assert not window.predict.open_model(bad)
    assert shown and "bad.safetensors" in shown[0] and "Still using tiny-test-model" in shown[0]
    assert list(window.predict.panels) == ["image", "audio"] and window.predict.model_ready
    with qtbot.waitSignal(window.predict.resultShown, timeout=TIMEOUT):
        window.predict.set_files(pair)


def test_a_model_whose_weights_fail_to_load_falls_back_to_the_working_one(qtbot, window, gui_model, pair, tmp_path,
                                                                          monkeypatch):
    """The header reads cleanly (panels could be built) but the weights are cut short: the window must
    not end up with no model; it says why and goes back to the model that worked, files kept."""
    from PySide6.QtWidgets import QMessageBox

    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    with qtbot.waitSignal(window.predict.resultShown, timeout=TIMEOUT):
        window.predict.set_files(pair)
    data = Path(gui_model).read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    with qtbot.waitSignal(window.predict.modelReady, timeout=TIMEOUT):
        assert window.predict.open_model(truncated)  # the header is fine; the worker finds the rest
    assert shown and "truncated.safetensors" in shown[0] and "truncated" in shown[0]
    assert "Still using tiny-test-model" in shown[0]
    assert window.predict.model_ready and window.predict.model_path == str(gui_model)
    assert window.predict.panels["image"].path == pair["image"]
    with qtbot.waitSignal(window.predict.resultShown, timeout=TIMEOUT):
        window.predict.request_prediction()
    assert window.predict.result_view.prediction is not None


def test_model_card_credits_come_from_the_models_own_provenance():
    from app.gui.predict.model_card import model_card_html

    base = {"name": "mine", "model": {"labels": ["a"], "modalities": []}}
    own = model_card_html({**base, "description": "digits like MNIST",
                           "provenance": {"credits": ["My recordings (CC0)"], "data": {"rows": 3}},
                           "evaluation": {"clean_accuracy": {"qmf": 0.97, "late": 0.95, "pairs": 10000},
                                          "test_pairs": 10000, "notes": ["x"]}})
    assert "My recordings (CC0)" in own and "Free Spoken Digit" not in own  # no borrowed credit line
    assert "qmf 0.97, late 0.95, pairs 10,000" in own  # headline figures as a line, not only a JSON dump
    assert "<td>10,000</td>" in own and "1e+04" not in own  # counts in full
    assert "no data credits recorded" in model_card_html(base)


def test_model_card_reads_held_out_speaker_figures_as_one_line():
    from app.gui.predict.model_card import model_card_html

    loso = {"method": "audio branch trained alone", "per_speaker": {
        "theo": {"audio_branch_accuracy": 0.856, "fused_accuracy_unseen_speaker_approx": 0.996, "confusion": [[1]]},
        "anna": {"audio_branch_accuracy": 0.9, "seconds": 12.5},
        "broken": "not a table"}}
    page = model_card_html({"name": "mine", "model": {"labels": ["a"], "modalities": []},
                            "evaluation": {"leave_one_speaker_out": loso}})
    assert "<td><b>leave one speaker out</b></td><td>anna: branch 0.9; theo: branch 0.856, fused 0.996</td>" in page
