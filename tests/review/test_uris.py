"""Input files named by URI (s3://, gs://, file://) for the Ray engine, read through pyarrow.fs by the
project's own decoders with the same limits; a local `qmf batch` refuses them with the way that works.

Only ``file://`` URIs are used (no network); they go through the same `pyarrow.fs` code as S3 or GCS.
"""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.cli import main as qmf
from app.modalities import InputError, get_modality
from tests.review.conftest import write_manifest
from tests.review.results_dirs import make_pairs_manifest

needs_arrow = pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None,
                                 reason="pyarrow not installed (pip install qmf-studio[distributed])")


def uri_manifest(manifest: Path, out: Path, extra: list[tuple] = ()) -> Path:
    """The same pairs as ``manifest``, every file named by its file:// URI."""
    lines = manifest.read_text().splitlines()[1:]
    rows = []
    for line in lines:
        pid, img, wav, label = line.split(",")
        rows.append((pid, Path(img).as_uri(), Path(wav).as_uri(), label))
    return write_manifest(out, [*rows, *extra])


@needs_arrow
def test_load_file_through_pyarrow_gives_what_load_gives(tmp_path: Path) -> None:
    from app.review.uris import UriOpener

    img, wav = make_pairs_manifest(tmp_path, 1).parent / "files" / "pair_000.png", tmp_path / "files" / "pair_000.wav"
    text = tmp_path / "words.txt"
    text.write_text("a few words here")
    opener = UriOpener()
    for kind, path in (("image", img), ("audio", wav), ("text", text)):
        m = get_modality(kind, {})
        with opener.open(path.as_uri()) as fh:
            np.testing.assert_array_equal(m.load_file(fh, path.as_uri()), m.load(path))
    # a file no reader takes: the message a path gets (Pillow tries every reader, some call readline)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not an image at all")
    with pytest.raises(InputError) as by_path:
        get_modality("image", {}).load(bad)
    with opener.open(bad.as_uri()) as fh, pytest.raises(InputError) as by_uri:
        get_modality("image", {}).load_file(fh, bad.as_uri())
    assert by_uri.value.reason == by_path.value.reason == "not an image file Pillow can read"
    assert by_uri.value.path == bad.as_uri()
    with pytest.raises(InputError, match=r"^file://.*/nothing\.png: file not found$"):
        with opener.open((tmp_path / "nothing.png").as_uri()):
            pass
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.wav: empty file \(0 bytes\)"):
        with opener.open((tmp_path / "empty.wav").as_uri()):
            pass
    with pytest.raises(InputError, match="cannot open this URI"):
        opener.open("nosuchscheme://bucket/x.png").__enter__()


@needs_arrow
def test_decode_limits_hold_for_files_read_by_uri(tmp_path: Path, monkeypatch) -> None:
    from PIL import Image

    import app.modalities.audio as audio_mod
    from app.review.uris import UriOpener

    opener = UriOpener()
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((300, 400), np.uint8)).save(big)
    with opener.open(big.as_uri()) as fh, pytest.raises(InputError, match=r"big\.png: image is 400x300 = 120,000 pixels, "
                                                                          "above the limit of 50,000"):
        get_modality("image", {"max_pixels": 50_000}).load_file(fh, big.as_uri())

    long = tmp_path / "long.wav"
    sf.write(long, np.zeros((8000 * 4, 2), np.float32), 8000)
    monkeypatch.setattr(audio_mod, "MAX_DECODED_BYTES", 100_000)
    with opener.open(long.as_uri()) as fh, pytest.raises(InputError, match=r"long\.wav: 2 channels x 32,000 frames.*"
                                                                           "above the limit"):
        get_modality("audio", {"max_seconds": 10}).load_file(fh, long.as_uri())
    monkeypatch.undo()

    buf = io.BytesIO()
    sf.write(buf, np.zeros(8000, np.float32), 8000, format="WAV", subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(buf.getvalue()[:-4000])  # the header promises 8,000 frames, the file holds 6,000
    with opener.open(cut.as_uri()) as fh, pytest.raises(InputError, match=r"cut\.wav: truncated"):
        get_modality("audio", {}).load_file(fh, cut.as_uri())


@needs_arrow
def test_scorer_reads_uri_pairs_into_the_rows_of_local_paths(tmp_path: Path, tiny_model: Path) -> None:
    from app.qmf.predictor import Predictor
    from app.review.distributed import score_pairs
    from app.review.flags import FlagThresholds
    from app.review.sources import load_source
    from app.review.uris import UriOpener

    manifest = make_pairs_manifest(tmp_path / "in", 6)
    gone = (tmp_path / "gone.wav").as_uri()
    uris = uri_manifest(manifest, tmp_path / "uris.csv", [("gone", (tmp_path / "in/files/pair_000.png").as_uri(),
                                                           gone, "low")])
    predictor = Predictor.load(tiny_model)
    kinds = {n: m.kind for n, m in predictor.modalities.items()}

    def rows(path: Path) -> list[dict]:
        pairs = [(p.id, {m: str(f) for m, f in p.files.items()}, p.label)
                 for p in load_source(path, kinds, predictor.labels, uris=True).pairs]
        out = score_pairs(predictor, pairs, 4, FlagThresholds(), UriOpener().open)
        return [{k: v for k, v in r.items() if not k.endswith(("_seconds", "_file"))} for r in out]

    local, remote = rows(manifest), rows(uris)
    assert remote[:6] == local and all(r["status"] == "ok" for r in local)
    pairs = load_source(uris, kinds, predictor.labels, uris=True).pairs
    assert [str(p.files["image"]) for p in pairs][0].startswith("file:///")  # kept as written, not folded to file:/
    assert remote[6]["status"] == "error" and remote[6]["error"] == f"{gone}: file not found"


def test_local_batch_refuses_uris_with_the_engine_that_reads_them(tmp_path: Path, tiny_model: Path, capsys) -> None:
    manifest = make_pairs_manifest(tmp_path / "in", 2)
    uris = uri_manifest(manifest, tmp_path / "uris.csv")
    session = tmp_path / "s.qmfreview"
    qmf(["batch", "--model", str(tiny_model), "--manifest", str(uris), "--session", str(session), "--quiet"])
    out = capsys.readouterr()
    text = out.out + out.err
    assert "is a URI: a local qmf batch reads local files only" in text and "--engine ray" in text
    assert "pip install qmf-studio[distributed]" in text
    from app.review.session import ReviewSession

    if session.exists():
        with ReviewSession.open(session) as s:
            assert s.pair_count() == 0  # no row was scored as a missing file
