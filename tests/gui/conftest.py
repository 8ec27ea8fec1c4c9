"""GUI test fixtures: isolated settings, a model that has learnt to distrust noise, a window."""

from __future__ import annotations

import pytest

from tests.synthetic import train_tiny_model


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    """Never touch the user's real QSettings: point the app at a throw-away ini file."""
    path = tmp_path / "settings.ini"
    monkeypatch.setenv("QMF_STUDIO_SETTINGS", str(path))
    return path


@pytest.fixture(scope="session")
def gui_model(synthetic_pairs, tmp_path_factory):
    """A tiny bundle trained a little longer than `tiny_model`, so that its quality scores react to
    the noise it was trained with (image Gaussian noise lowers the image's share)."""
    out = tmp_path_factory.mktemp("gui-model") / "gui.safetensors"
    return train_tiny_model(synthetic_pairs, out, epochs=15, batch_size=12, learning_rate=0.02)


@pytest.fixture(scope="session")
def core_predictor(gui_model):
    from app.qmf.predictor import Predictor

    return Predictor.load(gui_model)


@pytest.fixture
def pair(synthetic_pairs):
    root = synthetic_pairs.root / "test"
    return {"image": str(root / "test_mid_000.png"), "audio": str(root / "test_mid_000.wav")}


@pytest.fixture
def other_pair(synthetic_pairs):
    root = synthetic_pairs.root / "test"
    return {"image": str(root / "test_high_001.png"), "audio": str(root / "test_high_001.wav")}


@pytest.fixture
def window(qtbot, gui_model):
    from app.gui.window import MainWindow

    w = MainWindow(gui_model)
    qtbot.addWidget(w)
    w.show()
    if not w.predict.model_ready:
        with qtbot.waitSignal(w.predict.modelReady, timeout=60000):
            pass
    yield w
    w.close()


@pytest.fixture(scope="session")
def three_input_model(tmp_path_factory):
    """An untrained bundle with three inputs (two images, one audio): panels must follow the
    manifest, never assume two. Untrained is enough: the GUI only has to show what the core says."""
    import torch

    from app.qmf.bundle import save_bundle
    from app.qmf.model import ModalityConfig, ModelConfig, QMFModel

    torch.manual_seed(0)
    small = {"channels": [4], "hidden": 8, "dropout": 0.0}
    config = ModelConfig(
        name="three-inputs",
        labels=["a", "b", "c", "d"],
        modalities=[
            ModalityConfig("front", "image", {"size": [28, 28]}, small),
            ModalityConfig("side", "image", {"size": [28, 28]}, small),
            ModalityConfig("voice", "audio", {"sample_rate": 8000, "duration": 0.6}, small),
        ],
    )
    out = tmp_path_factory.mktemp("three") / "three.safetensors"
    return save_bundle(out, QMFModel(config).eval(), {"name": "three-inputs", "provenance": {"source": "test"}})
