"""Readers refuse from the header what would take too much memory to decode, and decode the rest lean.

Every fixture is generated here: headers that claim huge pictures or absurd sample rates, a WAV that
promises more samples than it holds. None of them is decoded to find out.
"""

from __future__ import annotations

import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from app.modalities import AudioModality, ImageModality, InputError
from app.modalities import audio as audio_mod
from app.modalities import image as image_mod


def _png_header_only(path: Path, width: int, height: int, bit_depth: int, colour_type: int) -> Path:
    """A PNG whose IHDR claims width x height but whose pixel data is a few bytes of nothing."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
                     + chunk(b"IEND", b""))
    return path


def test_rgba_picture_over_the_decoded_byte_limit_is_refused_from_its_header(tmp_path: Path) -> None:
    # 9000 x 9000 RGBA = 81 Mpx x 4 bytes = 309 MiB decoded; the file is under 100 bytes.
    path = _png_header_only(tmp_path / "huge.png", 9000, 9000, 8, 6)
    modality = ImageModality({"max_pixels": 100_000_000})  # the pixel limit alone would let it through
    with pytest.raises(InputError) as err:
        modality.load(path)
    message = str(err.value)
    assert str(path) in message and "MiB once decoded" in message and "256 MiB" in message


def test_pixel_limit_still_refuses_first(tmp_path: Path) -> None:
    path = _png_header_only(tmp_path / "huge.png", 9000, 9000, 8, 6)
    with pytest.raises(InputError, match="above the limit of 50,000,000"):
        ImageModality().load(path)


def test_large_float_tiff_is_read_without_a_full_size_float_copy(tmp_path: Path) -> None:
    # 4000 x 4000 float = 64 MB decoded inside Pillow; a float64 copy of it would be 128 MB more.
    values = np.zeros((4000, 4000), dtype=np.float32)
    values[800:3200, 1700:2300] = 1.0  # a bright stroke: the digit
    path = tmp_path / "float.tif"
    Image.fromarray(values, mode="F").save(path, compression="tiff_deflate")
    tracemalloc.start()
    try:
        raw = ImageModality().load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert raw.shape == (28, 28) and raw[14, 14] > 200 and raw[:, :3].max() < 30
    assert peak < 40 * 2**20, f"numpy peaked at {peak / 2**20:.0f} MiB while reading a 64 MB float picture"


def test_large_sixteen_bit_png_keeps_its_range(tmp_path: Path) -> None:
    values = np.zeros((2500, 2500), dtype=np.uint16)
    values[500:2000, 1100:1400] = 40000  # bright in 16-bit units: must come out white, not clipped grey
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    raw = ImageModality().load(path)
    assert raw[14, 14] > 120 and raw[:, :3].max() < 30


def _wav_bytes(rate: int, channels: int, frames_claimed: int, frames_held: int) -> bytes:
    data_size = frames_claimed * channels * 2
    fmt = struct.pack("<HHIIHH", 1, channels, rate, (rate * channels * 2) & 0xFFFFFFFF, channels * 2, 16)
    samples = (np.sin(np.arange(frames_held * channels) / 3.0) * 8000).astype("<i2").tobytes()
    return (b"RIFF" + struct.pack("<I", (36 + data_size) & 0xFFFFFFFF) + b"WAVE" + b"fmt " + struct.pack("<I", 16)
            + fmt + b"data" + struct.pack("<I", data_size & 0xFFFFFFFF) + samples)


def test_wav_that_promises_more_than_it_holds_is_refused_as_truncated(tmp_path: Path) -> None:
    # The header says 0.92 s at 8 kHz, the file holds 1 ms (libsndfile alone would read the 8 samples).
    path = tmp_path / "cut.wav"
    path.write_bytes(_wav_bytes(8000, 1, 7360, 8))
    with pytest.raises(InputError) as err:
        AudioModality().load(path)
    assert str(path) in str(err.value) and "truncated" in str(err.value) and "7,360" in str(err.value)


def test_streamed_wav_with_unknown_length_is_still_read(tmp_path: Path) -> None:
    # Writers that stream to a pipe put 0xFFFFFFFF in the data length: that is not truncation.
    data = bytearray(_wav_bytes(8000, 1, 4000, 4000))
    data[40:44] = struct.pack("<I", 0xFFFFFFFF)
    path = tmp_path / "streamed.wav"
    path.write_bytes(bytes(data))
    assert AudioModality().load(path).size == 4000


@pytest.mark.parametrize("rate", [2_147_483_647, 655_350, 500])
def test_implausible_sample_rate_is_refused(tmp_path: Path, rate: int) -> None:
    path = tmp_path / "odd.wav"
    path.write_bytes(_wav_bytes(rate, 1, 8000, 8000))
    with pytest.raises(InputError) as err:
        AudioModality().load(path)
    assert str(path) in str(err.value) and f"{rate:,} Hz" in str(err.value) and "384,000" in str(err.value)


def test_many_channels_are_limited_on_decoded_bytes_not_seconds(tmp_path: Path, monkeypatch) -> None:
    # 8 channels x 48 kHz x 2 s: short, but 3 MiB of float32; with a 1 MiB limit it must be refused
    # from the header (the seconds limit is far away).
    path = tmp_path / "eight.flac"
    sf.write(path, np.zeros((96_000, 8), dtype=np.float32), 48_000, subtype="PCM_16")
    monkeypatch.setattr(audio_mod, "MAX_DECODED_BYTES", 1 << 20)
    with pytest.raises(InputError, match=r"8 channels x 96,000 frames .* above the limit of 1 MiB"):
        AudioModality().load(path)


def test_many_channels_under_the_limit_are_mixed_down(tmp_path: Path) -> None:
    path = tmp_path / "eight.flac"
    tone = (0.5 * np.sin(np.arange(16_000) * 2 * np.pi * 440 / 16_000)).astype(np.float32)
    sf.write(path, np.repeat(tone[:, None], 8, axis=1), 16_000, subtype="PCM_16")
    raw = AudioModality().load(path)
    assert raw.shape == (8000,) and 0.4 < np.abs(raw).max() < 0.6


def test_truncated_flac_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cut.flac"
    sf.write(path, (0.3 * np.random.default_rng(0).standard_normal(40_000)).astype(np.float32), 8000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError) as err:
        AudioModality().load(path)
    assert str(path) in str(err.value)


def test_limits_are_what_the_docs_say() -> None:
    assert (audio_mod.MIN_SAMPLE_RATE, audio_mod.MAX_SAMPLE_RATE) == (1_000, 384_000)
    assert image_mod.MAX_DECODED_BYTES == 256 * 2**20


def test_text_with_one_enormous_word_among_many_is_refused(tmp_path: Path) -> None:
    from app.modalities import TextModality

    path = tmp_path / "caption.txt"
    path.write_text("x" * 200_000 + " a" * 1_000_000, encoding="utf-8")  # 2.2 MB: would need 800 GB as tokens
    with pytest.raises(InputError, match="too large to hold as tokens"):
        TextModality().load(path)


def test_large_decodes_take_turns_across_threads_small_ones_do_not():
    import threading
    import time

    from app.modalities.base import LARGE_DECODE_BYTES, decode_budget

    def concurrency(nbytes: int) -> int:
        inside, most = [0], [0]
        lock = threading.Lock()
        barrier = threading.Barrier(4)

        def work() -> None:
            barrier.wait()
            with decode_budget(nbytes):
                with lock:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                time.sleep(0.05)
                with lock:
                    inside[0] -= 1

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return most[0]

    assert concurrency(2 * LARGE_DECODE_BYTES) == 1
    assert concurrency(1024) > 1
