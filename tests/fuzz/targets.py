"""Fuzz targets: bytes a user could hand QMF Studio, fed to the readers the app uses.

Each target writes the bytes to a file and opens it the way the app does. The outcome is "loaded"
(the reader accepted it and produced what it promises) or "refused" (a UserError: one line naming
the file). Anything else is a finding and propagates. The same functions run under atheris in a
campaign (tests/fuzz/campaign.py) and in the normal test run, which replays the saved corpus
(tests/fuzz/test_corpus.py).

Targets: image, audio (the modality readers), manifest (CSV pairs), bundle (raw model-file bytes),
bundle_schema (structure-aware: a valid model re-sealed around mutated manifest values), session
(a review session file).
"""

from __future__ import annotations

import copy
import json
import os
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

LOADED = "loaded"
REFUSED = "refused"  # a UserError: one line naming the file
REFUSED_SQLITE = "refused_sqlite"  # SQLite said the session file is damaged; the CLI turns it into one line

_WORK = Path(tempfile.mkdtemp(prefix="qmf-fuzz-"))


def _file(name: str, data: bytes) -> Path:
    path = _WORK / name
    path.write_bytes(data)
    return path


def _user_error() -> type[BaseException]:
    from app.util.errors import UserError

    return UserError


def image(data: bytes) -> str:
    import numpy as np

    from app.modalities import ImageModality

    try:
        raw = ImageModality().load(_file("input.png", data))
    except _user_error():
        return REFUSED
    assert raw.dtype == np.uint8 and raw.shape == (28, 28), raw.shape
    return LOADED


def audio(data: bytes) -> str:
    import numpy as np

    from app.modalities import AudioModality

    try:
        raw = AudioModality().load(_file("input.wav", data))
    except _user_error():
        return REFUSED
    assert raw.dtype == np.float32 and raw.ndim == 1 and np.all(np.abs(raw) <= 1.0)
    return LOADED


def manifest(data: bytes) -> str:
    from app.data.manifest import read_manifest

    (_WORK / "a.png").write_bytes(b"x")
    (_WORK / "a.wav").write_bytes(b"x")
    try:
        m = read_manifest(_file("pairs.csv", data), ["image", "audio"], labels=["0", "1", "2"])
    except _user_error():
        return REFUSED
    for row in m.rows:
        assert set(row.files) <= {"image", "audio"} and row.id
    return LOADED


def bundle(data: bytes) -> str:
    from app.qmf.bundle import load_bundle, read_bundle_manifest

    path = _file("model.safetensors", data)
    try:
        read_bundle_manifest(path)
    except _user_error():
        pass
    try:
        load_bundle(path)
    except _user_error():
        return REFUSED
    return LOADED


# --- structure-aware bundle target ------------------------------------------------------------

_BASE: dict[str, Any] = {}
_INTERESTING_INTS = [0, 1, -1, 2, 3, 7, 8, 16, 255, 256, 1023, 1024, 1025, 4096, 8192, 16384, 65535, 2**24,
                     2**31, 2**31 - 1, 2**63, -(2**31), 10**12]
_INTERESTING_FLOATS = [0.0, -0.0, 1e-300, 1e-5, 0.5, 1.0, 59.9, 60.0, 61.0, 600.0, 1e12, -1.0, float("inf"),
                       float("nan")]


def _base() -> dict[str, Any]:
    """A small valid model (state dict and manifest), made once per process."""
    if not _BASE:
        import torch

        from app.qmf.bundle import read_bundle_manifest, save_bundle
        from app.qmf.model import ModalityConfig, ModelConfig, QMFModel

        torch.manual_seed(0)
        enc = {"channels": [4], "hidden": 8, "dropout": 0.0}
        model = QMFModel(ModelConfig(name="fuzz", labels=["a", "b"], modalities=[
            ModalityConfig("image", "image", {"size": [12, 12]}, enc),
            ModalityConfig("audio", "audio", {"duration": 0.25}, enc)]))
        path = save_bundle(_WORK / "base.safetensors", model, {"name": "fuzz", "provenance": {"credits": ["x"]}})
        _BASE["state"] = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        _BASE["manifest"] = read_bundle_manifest(path)
        _BASE["leaves"] = _leaf_paths(_BASE["manifest"])
    return _BASE


def _leaf_paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _leaf_paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _leaf_paths(v, (*prefix, i))
    return out


def _fuzzed_value(fdp: Any) -> Any:
    choice = fdp.ConsumeIntInRange(0, 9)
    if choice == 0:
        return fdp.PickValueInList(_INTERESTING_INTS)
    if choice == 1:
        return fdp.PickValueInList(_INTERESTING_FLOATS)
    if choice == 2:
        return fdp.ConsumeInt(8)
    if choice == 3:
        return fdp.ConsumeRegularFloat()
    if choice == 4:
        return fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 40))
    if choice == 5:
        return [fdp.PickValueInList(_INTERESTING_INTS) for _ in range(fdp.ConsumeIntInRange(0, 8))]
    if choice == 6:
        return None
    if choice == 7:
        return fdp.ConsumeBool()
    if choice == 8:
        return {}
    depth = fdp.ConsumeIntInRange(1, 2000)
    return json.loads("[" * depth + "]" * depth) if depth < 900 else "[" * depth


def mutate_manifest(data: bytes) -> dict[str, Any]:
    """The base manifest with 1-4 values replaced or removed, chosen by the fuzzer's bytes."""
    import atheris

    base = _base()
    fdp = atheris.FuzzedDataProvider(data)
    manifest = copy.deepcopy(base["manifest"])
    for _ in range(fdp.ConsumeIntInRange(1, 4)):
        where = fdp.PickValueInList(base["leaves"])
        parent = manifest
        try:
            for key in where[:-1]:
                parent = parent[key]
            if fdp.ConsumeIntInRange(0, 5) == 0:
                del parent[where[-1]]
            else:
                parent[where[-1]] = _fuzzed_value(fdp)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this place
    return manifest


def bundle_schema(data: bytes) -> str:
    """A well-sealed model (valid checksums) around a mutated manifest: only validation stands guard."""
    from app.qmf.bundle import load_bundle, read_bundle_manifest, seal_bundle

    manifest_value = mutate_manifest(data)
    try:
        path = seal_bundle(_WORK / "mutated.safetensors", _base()["state"], manifest_value)
    except (ValueError, TypeError, RecursionError):
        return REFUSED  # json cannot even write it (NaN is written; deep nesting, odd keys are not)
    try:
        read_bundle_manifest(path)
    except _user_error():
        pass
    try:
        load_bundle(path)
    except _user_error():
        return REFUSED
    return LOADED


def session(data: bytes) -> str:
    from app.review.export import export_csv
    from app.review.session import ReviewSession

    path = _file("session.qmfreview", data)
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    try:
        with ReviewSession.open(path, readonly=True) as s:
            s.summary()
            s.rows(limit=50)
            for _ in zip(range(50), s.iter_pending(page=7), strict=False):
                pass
            export_csv(s, _WORK / "export.csv")
    except _user_error():
        return REFUSED
    except sqlite3.DatabaseError:
        return REFUSED_SQLITE  # one line at the CLI boundary (app/review/cli.py sqlite_error_text)
    return LOADED


TARGETS: dict[str, Callable[[bytes], str]] = {
    "image": image,
    "audio": audio,
    "manifest": manifest,
    "bundle": bundle,
    "bundle_schema": bundle_schema,
    "session": session,
}

CORPUS = Path(__file__).parent / "corpus"


def corpus_files(target: str) -> list[Path]:
    folder = CORPUS / target
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


if os.environ.get("QMF_FUZZ_DEBUG"):  # pragma: no cover - for reading a reproducer by hand
    print(f"fuzz work folder: {_WORK}")
