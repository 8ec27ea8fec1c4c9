"""Write the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/ (small, generated).

    PYTHONPATH=$PWD python -m tests.fuzz.make_seeds

Every seed is made here from nothing (no file from outside the repository): small valid inputs of
each kind, plus the edge cases the reliability audit found (headers that claim huge sizes, absurd
sample rates, truncated files, odd manifest cells). The campaign starts from these; the test run
replays them together with the reproducers saved under the same folders.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from tests.fuzz.targets import _WORK, CORPUS, _base


def _save(target: str, name: str, data: bytes) -> None:
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def image_seeds() -> None:
    from PIL import Image

    digit = np.zeros((20, 20), np.uint8)
    digit[4:16, 8:12] = 255
    for name, img, fmt in [
        ("l.png", Image.fromarray(digit), "PNG"),
        ("rgba.png", Image.fromarray(np.dstack([digit] * 3 + [digit])), "PNG"),
        ("p.gif", Image.fromarray(digit).convert("P"), "GIF"),
        ("i16.png", Image.fromarray(digit.astype(np.uint16) * 257), "PNG"),
        ("f.tif", Image.fromarray(digit.astype(np.float32) / 255.0, mode="F"), "TIFF"),
        ("rgb.jpg", Image.fromarray(np.dstack([255 - digit] * 3)), "JPEG"),
        ("l.bmp", Image.fromarray(digit), "BMP"),
    ]:
        buf = io.BytesIO()
        img.save(buf, fmt)
        _save("image", name, buf.getvalue())
    ihdr = struct.pack(">IIBBBBB", 9000, 9000, 8, 6, 0, 0, 0)
    _save("image", "huge_header.png", b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
          + _png_chunk(b"IDAT", zlib.compress(b"\0" * 8)) + _png_chunk(b"IEND", b""))


def _wav(rate: int, channels: int, claimed: int, held: int, bits: int = 16) -> bytes:
    width = bits // 8
    data = (np.sin(np.arange(held * channels) / 5.0) * 2000).astype("<i2").tobytes()[: held * channels * width]
    size = claimed * channels * width
    fmt = struct.pack("<HHIIHH", 1, channels, rate, (rate * channels * width) & 0xFFFFFFFF, channels * width, bits)
    return (b"RIFF" + struct.pack("<I", (36 + size) & 0xFFFFFFFF) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", size & 0xFFFFFFFF) + data)


def audio_seeds() -> None:
    import soundfile as sf

    _save("audio", "mono8k.wav", _wav(8000, 1, 800, 800))
    _save("audio", "stereo16k.wav", _wav(16000, 2, 400, 400))
    _save("audio", "truncated.wav", _wav(8000, 1, 7360, 8))
    _save("audio", "rate_2ghz.wav", _wav(2_147_483_647, 1, 400, 400))
    buf = io.BytesIO()
    sf.write(buf, (0.2 * np.sin(np.arange(1600) / 4.0)).astype(np.float32), 8000, format="FLAC")
    _save("audio", "tone.flac", buf.getvalue())
    buf = io.BytesIO()
    sf.write(buf, np.zeros((200, 8), np.float32), 48000, format="WAV", subtype="FLOAT")
    _save("audio", "eight_channels_float.wav", buf.getvalue())


def manifest_seeds() -> None:
    rows = {
        "plain.csv": "id,image,audio,label\nx,a.png,a.wav,1\ny,a.png,,0\n",
        "tilde.csv": "id,image,audio,label\nx,~nosuchuser/a.png,a.wav,3\ny,~$lock.png,a.wav,1\n",
        "nul.csv": "id,image,audio,label\nx,a\0.png,a.wav,1\n",
        "quoted.csv": 'id,image,audio,label\n"x,1","a.png","a\n.wav",2\n,,,\n',
        "bigcell.csv": "id,image,audio,label\nx,a.png,a.wav," + "L" * 140_000 + "\ny,a.png,a.wav,2\n",
        "long_name.csv": "image,audio\n" + "n" * 5000 + ".png,a.wav\n",
        "header_only.csv": "image,audio\n",
    }
    for name, text in rows.items():
        _save("manifest", name, text.encode("utf-8"))
    _save("manifest", "latin1.csv", "image,audio\ncafé.png,a.wav\n".encode("latin-1"))


def bundle_seeds() -> None:
    base = _base()
    data = (_WORK / "base.safetensors").read_bytes()
    _save("bundle", "small_model.safetensors", data)
    _save("bundle", "truncated.safetensors", data[: len(data) // 2])
    (n,) = struct.unpack("<Q", data[:8])
    deep = b'{"x": ' + b"[" * 3000 + b"]" * 3000 + b"}"
    _save("bundle", "deep_header.safetensors", struct.pack("<Q", len(deep)) + deep)
    _save("bundle", "huge_header_length.safetensors", struct.pack("<Q", 2**40) + data[8:64])
    assert base["manifest"]["name"] == "fuzz"
    rng = np.random.default_rng(0)
    for i in range(6):
        _save("bundle_schema", f"seed{i}", rng.bytes(48))


def session_seeds() -> None:
    from app.data.manifest import PairRow
    from app.review.session import ReviewSession
    from app.review.session_schema import ResultRecord

    path = _WORK / "seed.qmfreview"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    with ReviewSession.create(path, model_name="m", model_sha256="0" * 64, model_path=None,
                              modalities={"image": "image", "audio": "audio"}, labels=["a", "b"],
                              source_kind="folder", source_path=_WORK) as s:
        s.add_pairs(PairRow(i, f"p{i}", {"image": f"/x/{i}.png", "audio": f"/x/{i}.wav"}, "a") for i in range(1, 6))
        s.write_results([ResultRecord(1, "a", error="broken")])
        s.set_verdict("p2", "reject", note="=1+2")
        s.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    _save("session", "small.qmfreview", path.read_bytes())


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    image_seeds()
    audio_seeds()
    manifest_seeds()
    bundle_seeds()
    session_seeds()
    total = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    print(f"wrote {sum(1 for p in CORPUS.rglob('*') if p.is_file())} seed files, {total / 1024:.0f} KB, under {CORPUS}")


if __name__ == "__main__":
    main()
