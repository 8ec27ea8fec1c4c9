"""A failed open never leaves a stale or wrong result; the small things a new user notices."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

TIMEOUT = 60000


def _predict(qtbot, page, files):
    with qtbot.waitSignal(page.resultShown, timeout=TIMEOUT):
        page.set_files(files)


def test_a_text_file_opened_as_the_image_keeps_the_good_image_and_its_prediction(qtbot, window, pair, other_pair,
                                                                                 tmp_path):
    page = window.predict
    _predict(qtbot, page, pair)
    shown = page.result_json()
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture")
    with qtbot.waitSignal(page.inputFailed, timeout=TIMEOUT):
        page.set_files({"image": str(notes)})
    image = page.panels["image"]
    assert image.path == pair["image"]  # the previous good file is back
    assert image.file_label.text() == pair["image"].rsplit("/", 1)[-1]
    assert image._shown_raw is not None  # its picture is still shown
    assert image.error_label.isVisible() and "notes.png" in image.error_label.text()
    assert page.result_view.headline.text().startswith("Prediction:")
    assert page.result_json()["label"] == shown["label"]
    # a good recording next: the image's note no longer applies, and the good image is used
    with qtbot.waitSignal(page.resultShown, timeout=TIMEOUT) as blocker:
        page.set_files({"audio": other_pair["audio"]})
    assert not image.error_label.isVisible()
    assert "blank" not in image.info_label.text()
    assert blocker.args[0]["modalities"]["image"]["file"] == pair["image"]


def test_a_failed_first_open_never_predicts_on_a_blank_image(qtbot, window, pair, tmp_path):
    page = window.predict
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture")
    with qtbot.waitSignal(page.inputFailed, timeout=TIMEOUT):
        page.set_files({"image": str(notes), "audio": pair["audio"]})
    image = page.panels["image"]
    results = []
    page.resultShown.connect(results.append)
    page.set_files({"audio": pair["audio"]})  # a good recording: still no prediction on a blank image
    qtbot.wait(300)
    assert results == []
    assert page.result_view.headline.text().startswith("No prediction: the image input cannot be read")
    assert image.error_label.isVisible()
    assert "blank" not in image.info_label.text()  # never the red error and "a blank input is used" together
    _predict(qtbot, page, {"image": pair["image"]})  # a good image: the error goes away
    assert not image.error_label.isVisible()


def test_an_animated_gif_says_only_its_first_frame_is_used(qtbot, window, pair, tmp_path):
    frames = [Image.fromarray(np.full((28, 28), v, dtype=np.uint8)) for v in (0, 128, 255)]
    gif = tmp_path / "moving.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100)
    page = window.predict
    _predict(qtbot, page, {"image": str(gif), "audio": pair["audio"]})
    assert "only the first frame is used" in page.panels["image"].info_label.text()
    assert "3 frames" in page.panels["image"].info_label.text()


def test_missing_is_an_on_off_switch_not_a_slider(qtbot, window, pair):
    page = window.predict
    _predict(qtbot, page, pair)
    panel = page.panels["image"]
    panel.set_corruption_kind("missing")
    assert panel.missing_box.isVisible() and not panel.slider.isVisible()
    with qtbot.waitSignal(page.resultShown, timeout=TIMEOUT):
        panel.missing_box.setChecked(True)
    assert page.current_corruptions() == [("image", "missing", 10.0)]
    with qtbot.waitSignal(page.resultShown, timeout=TIMEOUT):
        panel.missing_box.setChecked(False)
    assert page.current_corruptions() == []
    panel.set_corruption_kind("gaussian")
    assert panel.slider.isVisible() and not panel.missing_box.isVisible()


def test_title_names_the_app_once(window, qapp):
    from app.gui.window import window_title

    title = window.windowTitle()
    display = "QMF Studio"
    # what Qt shows where the application display name is set: the name appended unless the title ends with it
    shown = title if title.endswith(display) else f"{title} — {display}"
    assert shown.count(display) == 1 and window.predict.manifest["name"] in shown
    assert window_title("") == display


def test_model_failure_message_has_a_full_stop_between_sentences(qtbot, window, monkeypatch):
    from app.gui.predict.messages import ErrorKind, ModelFailed

    warned = []
    monkeypatch.setattr(window.predict.model, "_warn", warned.append)
    monkeypatch.setattr(window.predict.model, "open", lambda path: True)
    window.predict.model._working = (window.predict.model_path, "good-model")
    window.predict.model._on_failed(ModelFailed(1, "/x/broken.safetensors", ErrorKind.BAD_INPUT,
                                                "/x/broken.safetensors: weights do not match the manifest"))
    assert warned == ["Cannot load the model: /x/broken.safetensors: weights do not match the manifest. "
                      "Still using good-model."]


def test_recent_pairs_tell_folders_apart_and_show_their_paths(window, tmp_path):
    page = window.predict
    a = {"image": str(tmp_path / "a" / "three.png"), "audio": str(tmp_path / "a" / "three.wav")}
    b = {"image": str(tmp_path / "b" / "three.png"), "audio": str(tmp_path / "b" / "three.wav")}
    page.recent.remember(a)
    page.recent.remember(b)
    menu = window.fill_menu("recent")
    entries = [act for act in menu.actions() if act.text() and "three" in act.text()]
    assert [e.text() for e in entries] == ["three.png + three.wav — in b/", "three.png + three.wav — in a/"]
    assert menu.toolTipsVisible()
    assert entries[0].toolTip() == f"image: {b['image']}\naudio: {b['audio']}"


def test_open_dialogs_offer_the_models_file_types(window, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    asked = {}

    def fake(parent, title, folder, file_filter=""):
        asked["filter"] = file_filter
        return [], ""

    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(fake))
    window.predict.open_files_dialog()
    filters = asked["filter"].split(";;")
    assert filters[0].startswith("Model inputs (") and "*.png" in filters[0] and "*.wav" in filters[0]
    assert any(f.startswith("Image files (") for f in filters) and filters[-1] == "All files (*)"


@pytest.mark.parametrize("kind", ["image", "audio"])
def test_panel_open_dialog_filter_names_its_kind(window, kind):
    assert window.predict.panels[kind].file_filter().startswith(f"{kind.capitalize()} files (")
