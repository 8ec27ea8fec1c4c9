"""The shared API: InputError, get_modality, kind_for_path, params handling, corrupt() validation."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

from app.modalities import (
    MODALITY_KINDS,
    AudioModality,
    ImageModality,
    InputError,
    Modality,
    TextModality,
    get_modality,
    kind_for_path,
)


def test_input_error_is_one_line_with_parts() -> None:
    err = InputError("/tmp/x.png", "not an image\nat all", "use PNG")
    assert str(err) == "/tmp/x.png: not an image at all (use PNG)"
    assert (err.path, err.reason, err.hint) == ("/tmp/x.png", "not an image at all", "use PNG")
    assert isinstance(err, ValueError)
    assert str(InputError("a.wav", "empty")) == "a.wav: empty"
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err)


def test_get_modality_kinds_and_unknown_kind() -> None:
    assert MODALITY_KINDS == ("image", "audio", "text")
    assert isinstance(get_modality("image"), ImageModality)
    assert isinstance(get_modality("audio", {}), AudioModality)
    assert isinstance(get_modality("text", None), TextModality)
    with pytest.raises(ValueError, match="image, audio, text"):
        get_modality("video")


@pytest.mark.parametrize("kind", MODALITY_KINDS)
def test_params_defaults_filled_and_json(kind: str) -> None:
    m = get_modality(kind, {})
    assert isinstance(m, Modality)
    assert m.kind == kind
    assert m.params == type(m).default_params()
    assert json.loads(json.dumps(m.params)) == m.params
    assert all(e.startswith(".") and e == e.lower() for e in m.extensions)
    assert tuple(m.to_tensor(m.blank()).shape) == m.input_shape
    assert "missing" in m.corruption_kinds


def test_params_override_and_normalise() -> None:
    m = get_modality("image", {"size": (32, 16), "channels": 3, "mean": [0.5, 0.5, 0.5], "std": [0.5] * 3})
    assert m.params["size"] == [32, 16]
    assert m.params["max_pixels"] == 50_000_000
    assert m.input_shape == (3, 32, 16)
    # defaults are fresh copies, not shared state
    ImageModality.default_params()["size"].append(1)
    assert ImageModality.default_params()["size"] == [28, 28]


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("image", {"size": [0, 28]}),
        ("image", {"channels": 2}),
        ("image", {"std": 0}),
        ("audio", {"f_max": 9000.0}),
        ("audio", {"sample_rate": "8k"}),
        ("text", {"vocab": ["a", "a"]}),
        ("text", {"max_tokens": 0}),
        ("text", {"vocab": [object()]}),
    ],
)
def test_bad_params_are_value_errors(kind: str, params: dict) -> None:
    with pytest.raises(ValueError):
        get_modality(kind, params)


def test_kind_for_path() -> None:
    assert kind_for_path("a/b/photo.JPG") == "image"
    assert kind_for_path("x.jpeg") == "image"
    assert kind_for_path("x.webp") == "image"
    assert kind_for_path("x.Wav") == "audio"
    assert kind_for_path("x.flac") == "audio"
    assert kind_for_path("notes.TXT") == "text"
    assert kind_for_path("archive.zip") is None
    assert kind_for_path("README") is None


@pytest.mark.parametrize("kind", MODALITY_KINDS)
def test_corrupt_validates_kind_and_level(kind: str) -> None:
    m = get_modality(kind)
    raw = m.blank()
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="missing"):
        m.corrupt(raw, "no_such_kind", 1, rng)
    for level in (-0.1, 10.5, float("nan"), "x"):
        with pytest.raises(ValueError, match="0"):
            m.corrupt(raw, "missing", level, rng)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        m.corrupt(raw, "missing", 1, 0)  # type: ignore[arg-type]


def test_import_needs_neither_qt_nor_torch() -> None:
    code = (
        "import sys, app.modalities\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'PyQt5', 'PyQt6', 'torch')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_read_small_file_reads_whole_small_files_only(tmp_path) -> None:
    """The fast readers' file read: a small file's every byte, and None (the general reader's turn, with
    its messages) for a larger file, a folder or a missing one."""
    from app.modalities.base import read_small_file

    data = bytes(range(256)) * 40
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert read_small_file(path, len(data)) == data
    assert read_small_file(str(path), len(data) + 100) == data
    assert read_small_file(path, len(data) - 1) is None
    (tmp_path / "empty").write_bytes(b"")
    assert read_small_file(tmp_path / "empty", 10) == b""
    assert read_small_file(tmp_path, 10**6) is None
    assert read_small_file(tmp_path / "missing", 10) is None


def test_read_input_refuses_what_require_file_refuses_with_its_words(tmp_path) -> None:
    """The image and audio readers open a file once (`read_input`): a missing file, a folder, an empty
    file and a FIFO get the same one-line messages as `require_file` gives (a FIFO without waiting for
    a writer), and a small file comes back with its bytes, a larger one without, its path as given."""
    import os
    import threading

    from app.modalities.base import InputError, read_input, require_file

    data = bytes(range(256)) * 4
    small = tmp_path / "f.png"
    small.write_bytes(data)
    assert read_input(small, "hint", len(data)) == (small, data)
    assert read_input(str(small), "hint", len(data) - 1) == (str(small), None)
    (tmp_path / "empty.png").write_bytes(b"")
    cases = [tmp_path / "missing.png", tmp_path, tmp_path / "empty.png", tmp_path / "missing" / "x.png",
             str(tmp_path / "nul\0.png"), f"{tmp_path}//./empty.png", f"{tmp_path}/"]
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.wav")
        cases.append(tmp_path / "pipe.wav")
    for case in cases:
        with pytest.raises(InputError) as expected:
            require_file(case, "hint")
        done = []
        reader = threading.Thread(target=lambda case=case, done=done: done.append(_error_text(read_input, case)), daemon=True)
        reader.start()
        reader.join(10)
        assert done == [str(expected.value)], case


def _error_text(fn, *args) -> str | None:
    from app.modalities.base import InputError

    try:
        fn(*args, "hint", 100)
    except InputError as exc:
        return str(exc)
    return None
