"""The result view tells a person when an input is unfamiliar: the mark the model file's calibration gives."""

from __future__ import annotations

import pytest

from app.gui.result_view import TABLE_COLUMNS, ResultView
from app.qmf.predictor import Predictor
from app.resources import default_model_path, samples_dir


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor.load(default_model_path())


def _shown(qtbot, predictor: Predictor, image: str, audio: str) -> ResultView:
    files = {"image": samples_dir() / image, "audio": samples_dir() / audio}
    prediction = predictor.predict(predictor.load_inputs(files), files=files).to_json()
    view = ResultView(show_previews=False)
    qtbot.addWidget(view)
    view.set_modalities([{"name": n, "kind": m.kind} for n, m in predictor.modalities.items()], predictor.labels)
    view.show_result(prediction, None)
    return view


def _percentile_cell(view: ResultView, row: int) -> str:
    return view.table.item(row, TABLE_COLUMNS.index("percentile")).text()


def test_a_foreign_image_is_marked_unfamiliar_in_the_detail_and_the_table(qtbot, predictor) -> None:
    view = _shown(qtbot, predictor, "checkerboard.png", "three.wav")
    assert "image: unfamiliar" in view.detail.text()
    assert "audio: unfamiliar" not in view.detail.text()
    image_cell = view.table.item(0, TABLE_COLUMNS.index("percentile"))
    audio_cell = view.table.item(1, TABLE_COLUMNS.index("percentile"))
    assert "This input is marked unfamiliar." in image_cell.toolTip()
    assert "This input is marked unfamiliar." not in audio_cell.toolTip()
    assert image_cell.foreground().color() != audio_cell.foreground().color()


def test_a_clean_pair_shows_percentiles_without_a_mark(qtbot, predictor) -> None:
    view = _shown(qtbot, predictor, "three.png", "three.wav")
    assert "unfamiliar" not in view.detail.text()
    assert "model avmnist-qmf" in view.detail.text()
    for row in (0, 1):
        assert _percentile_cell(view, row).endswith("%")
