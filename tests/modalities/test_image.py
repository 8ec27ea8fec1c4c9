"""Image loading (formats, modes, EXIF, polarity, refusals) and image corruptions."""

from __future__ import annotations

import random
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, features

from app.modalities import ImageModality, InputError, get_modality
from app.modalities import image as image_mod


def _digit(size: tuple[int, int] = (40, 40), fg: int = 255, bg: int = 0) -> Image.Image:
    """A crude 'digit': a thick vertical stroke in the middle."""
    w, h = size
    arr = np.full((h, w), bg, dtype=np.uint8)
    arr[h // 5 : h - h // 5, w // 2 - w // 10 : w // 2 + w // 10] = fg
    return Image.fromarray(arr, "L")


def _check_digit(raw: np.ndarray) -> None:
    """White stroke in the centre on a black background, at 28x28."""
    assert raw.dtype == np.uint8 and raw.shape == (28, 28)
    assert raw[14, 14] > 200
    assert raw[:, :4].max() < 30 and raw[:2, :].max() < 30


@pytest.mark.parametrize(
    ("fmt", "suffix"),
    [
        ("PNG", ".png"),
        ("JPEG", ".jpg"),
        ("BMP", ".bmp"),
        ("TIFF", ".tiff"),
        ("GIF", ".gif"),
        ("WEBP", ".webp"),
    ],
)
def test_formats(tmp_path: Path, fmt: str, suffix: str) -> None:
    if fmt == "WEBP" and not features.check("webp"):
        pytest.skip("Pillow without WebP")
    path = tmp_path / f"digit{suffix}"
    _digit().save(path, fmt)
    _check_digit(ImageModality().load(path))


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "LA", "1", "I;16", "CMYK"])
def test_modes(tmp_path: Path, mode: str) -> None:
    img = _digit()
    if mode == "I;16":
        img = Image.fromarray(np.asarray(img).astype(np.uint16) * 257)
        assert img.mode.startswith("I;16")
    else:
        img = img.convert(mode)
    path = tmp_path / "digit.tiff"
    img.save(path)
    _check_digit(ImageModality().load(path))


def test_alpha_is_composited_onto_black(tmp_path: Path) -> None:
    # Transparent pixels hold white colour values: only the alpha decides what shows.
    arr = np.zeros((40, 40, 4), dtype=np.uint8)
    arr[..., :3] = 255
    arr[10:30, 16:24, 3] = 255
    path = tmp_path / "alpha.png"
    Image.fromarray(arr, "RGBA").save(path)
    _check_digit(ImageModality().load(path))


def test_palette_with_transparency(tmp_path: Path) -> None:
    img = _digit().convert("P")
    path = tmp_path / "p.gif"
    img.save(path, transparency=0)
    _check_digit(ImageModality().load(path))


def test_light_background_is_inverted(tmp_path: Path) -> None:
    path = tmp_path / "drawing.png"
    _digit(fg=0, bg=255).convert("RGB").save(path)
    _check_digit(ImageModality().load(path))
    kept = ImageModality({"invert_light_background": False}).load(path)
    assert kept[0, 0] > 200 and kept[14, 14] < 50


def test_aspect_ratio_kept_and_centred(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    Image.fromarray(np.full((28, 56), 200, dtype=np.uint8)).save(path)
    raw = ImageModality({"invert_light_background": False}).load(path)
    assert raw[:6].max() == 0 and raw[-6:].max() == 0  # black bars top and bottom
    assert raw[8:20].min() > 150


def test_exif_orientation_applied(tmp_path: Path) -> None:
    # Stored landscape 40x20 with a bright marker top-left; orientation 6 shows it portrait,
    # marker top-right.
    arr = np.full((20, 40), 60, dtype=np.uint8)
    arr[:8, :8] = 255
    img = Image.fromarray(arr).convert("RGB")
    exif = img.getexif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    img.save(path, "JPEG", exif=exif.tobytes(), quality=95)
    raw = ImageModality().load(path)
    # Portrait fitted into 28x28: 14 columns wide, black bars left and right.
    assert raw[:, :6].max() < 20 and raw[:, -6:].max() < 20
    assert raw[10:20, 9:19].mean() == pytest.approx(60, abs=15)
    assert raw[0:5, 15:20].mean() > 180  # marker at the visual top-right
    assert raw[0:5, 8:12].mean() < 120


def test_rgb_channels_and_tensor(tmp_path: Path) -> None:
    arr = np.zeros((30, 30, 3), dtype=np.uint8)
    arr[10:20, 10:20] = (255, 0, 0)
    path = tmp_path / "red.png"
    Image.fromarray(arr).save(path)
    m = ImageModality({"channels": 3, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "size": [30, 30]})
    raw = m.load(path)
    assert raw.shape == (30, 30, 3)
    x = m.to_tensor(raw)
    assert x.shape == (3, 30, 30) and x.dtype == torch.float32
    assert x[0, 15, 15].item() == pytest.approx(2.0)  # (1 - 0.5) / 0.25
    assert x[1, 15, 15].item() == pytest.approx(-2.0)


def test_to_tensor_normalisation() -> None:
    m = ImageModality()
    raw = np.full((28, 28), 255, dtype=np.uint8)
    x = m.to_tensor(raw)
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32
    assert x[0, 0, 0].item() == pytest.approx((1 - 0.1307) / 0.3081, rel=1e-5)
    with pytest.raises(ValueError):
        m.to_tensor(np.zeros((10, 10), dtype=np.uint8))


def test_big_photo_is_fast(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    _digit((3000, 2000)).save(path, quality=90)
    raw = ImageModality().load(path)
    assert raw.shape == (28, 28) and raw[14, 14] > 200


# --- refusals -----------------------------------------------------------------------------


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def test_decompression_bomb_refused(tmp_path: Path) -> None:
    # A 100 kB-claiming header: 100000 x 100000 pixels, with a few bytes of data.
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 100))
        + _png_chunk(b"IEND", b"")
    )
    path = tmp_path / "bomb.png"
    path.write_bytes(data)
    with pytest.raises(InputError, match="decompression bomb") as info:
        ImageModality().load(path)
    assert str(path) in str(info.value)


def test_max_pixels_param(tmp_path: Path) -> None:
    path = tmp_path / "ok.png"
    _digit((100, 100)).save(path)
    with pytest.raises(InputError, match="limit"):
        ImageModality({"max_pixels": 5000}).load(path)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_refused(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"cut.{fmt.lower()}"
    noise = np.random.default_rng(0).integers(0, 256, (200, 200), dtype=np.uint8)
    Image.fromarray(noise).save(path, fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as info:
        ImageModality().load(path)
    assert str(path) in str(info.value)


def _through_image_open(m: ImageModality, path: Path) -> np.ndarray:
    """What `load` gave before the plain-PNG reader: Image.open and the general preparation."""
    return m._decode(path, path)


@pytest.mark.parametrize("channels", [1, 3])
def test_plain_png_reads_as_image_open_does(tmp_path: Path, channels: int) -> None:
    """Small PNGs at the model's size (the batch run's usual input) are read without Image.open; the
    pixels, the inversion of light backgrounds and the array's type are what Image.open gave, for
    pictures that make Pillow's encoder use every PNG row filter and at every compression level."""
    rng = np.random.default_rng(5)
    m = ImageModality({"channels": channels})
    shape = (28, 28) if channels == 1 else (28, 28, 3)
    ramp = (np.add.outer(np.arange(28), 3 * np.arange(28)) % 256).astype(np.uint8)
    pictures = [rng.integers(0, 256, shape, dtype=np.uint8), np.full(shape, 230, np.uint8),
                np.clip(rng.normal(200, 40, shape), 0, 255).astype(np.uint8),
                ramp if channels == 1 else np.stack([ramp, ramp.T, 255 - ramp], axis=-1)]
    filters: set[int] = set()
    for i, picture in enumerate(pictures * 3):
        path = tmp_path / f"p{i}.png"
        Image.fromarray(picture).save(path, compress_level=i % 10)
        data = zlib.decompress(b"".join(_png_chunks(path.read_bytes(), b"IDAT")))
        filters |= {data[r * (1 + 28 * channels)] for r in range(28)}
        assert m._plain_png(path.read_bytes()) is not None  # the fast reader took it
        got = m.load(path)
        want = _through_image_open(m, path)
        assert got.dtype == want.dtype == np.uint8 and got.flags.writeable
        np.testing.assert_array_equal(got, want)
    assert filters >= {0, 1, 2, 4}  # Pillow's encoder does not pick "average" here: the next test does


def test_plain_png_every_row_filter(tmp_path: Path) -> None:
    """A PNG written row by row with each of the five filters gives back its pixels exactly."""
    picture = np.random.default_rng(9).integers(0, 256, (28, 28), dtype=np.uint8)
    path = tmp_path / "filters.png"
    path.write_bytes(_png_rows(picture, [r % 5 for r in range(28)]))
    m = ImageModality({"invert_light_background": False})
    assert m._plain_png(path.read_bytes()) is not None
    np.testing.assert_array_equal(m.load(path), picture)
    np.testing.assert_array_equal(_through_image_open(m, path), picture)


def _png_rows(picture: np.ndarray, filters: list[int]) -> bytes:
    """An 8-bit grey PNG of ``picture`` with row r filtered by ``filters[r]`` (0 none ... 4 Paeth)."""
    def paeth(a: int, b: int, c: int) -> int:
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        return a if pa <= pb and pa <= pc else b if pb <= pc else c

    height, width = picture.shape
    raw = bytearray()
    previous = [0] * width
    for r in range(height):
        row = [int(v) for v in picture[r]]
        kind = filters[r]
        out = []
        for x in range(width):
            a, b, c = (row[x - 1] if x else 0), previous[x], (previous[x - 1] if x else 0)
            predictor = [0, a, b, (a + b) // 2, paeth(a, b, c)][kind]
            out.append((row[x] - predictor) % 256)
        raw += bytes([kind, *out])
        previous = row
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(bytes(raw)))
            + _png_chunk(b"IEND", b""))


def _png_chunks(data: bytes, tag: bytes) -> list[bytes]:
    out, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        if data[offset + 4 : offset + 8] == tag:
            out.append(data[offset + 8 : offset + 8 + length])
        offset += 12 + length
    return out


def test_png_the_plain_reader_leaves_to_image_open(tmp_path: Path) -> None:
    """PNGs with anything the plain reader does not decide (EXIF orientation, text, transparency, another
    size or mode, a damaged chunk) are read as before, with the same result or the same error."""
    m = ImageModality()
    digit = _digit((28, 28))
    rotated = tmp_path / "rotated.png"
    exif = Image.Exif()
    exif[0x0112] = 6
    digit.save(rotated, exif=exif)
    texted = tmp_path / "text.png"
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "test")
    digit.save(texted, pnginfo=info)
    transparent = tmp_path / "trns.png"
    digit.save(transparent, transparency=0)
    larger = tmp_path / "larger.png"
    _digit((40, 40)).save(larger)
    rgb = tmp_path / "rgb.png"
    digit.convert("RGB").save(rgb)
    for path in (rotated, texted, transparent, larger, rgb):
        assert m._plain_png(path.read_bytes()) is None, path
        np.testing.assert_array_equal(m.load(path), _through_image_open(m, path))
    assert not np.array_equal(m.load(rotated), m.load(texted))  # the orientation was applied
    plain = tmp_path / "plain.png"
    digit.save(plain)
    data = bytearray(plain.read_bytes())
    data[-20] ^= 0xFF  # inside the IDAT chunk: its CRC no longer matches
    damaged = tmp_path / "damaged.png"
    damaged.write_bytes(bytes(data))
    assert m._plain_png(damaged.read_bytes()) is None
    cut = tmp_path / "cut.png"
    cut.write_bytes(plain.read_bytes()[:-12])  # no IEND
    assert m._plain_png(cut.read_bytes()) is None
    for path in (damaged, cut):
        try:
            want = _through_image_open(m, path)
        except InputError as exc:
            with pytest.raises(InputError) as info_:
                m.load(path)
            assert str(info_.value) == str(exc)
        else:
            np.testing.assert_array_equal(m.load(path), want)


def test_not_an_image_empty_and_missing(tmp_path: Path) -> None:
    fake = tmp_path / "notes.png"
    fake.write_text("hello, I am text")
    with pytest.raises(InputError, match="PNG, JPEG") as info:
        ImageModality().load(fake)
    assert str(info.value).startswith(str(fake))
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        ImageModality().load(empty)
    with pytest.raises(InputError, match="not found"):
        ImageModality().load(tmp_path / "nope.png")


# --- corruptions --------------------------------------------------------------------------

KINDS = ImageModality.corruption_kinds
STOCHASTIC = ("gaussian", "salt_pepper", "occlusion")


@pytest.fixture
def picture() -> np.ndarray:
    return np.random.default_rng(123).integers(0, 256, (28, 28), dtype=np.uint8)


@pytest.mark.parametrize("kind", KINDS)
def test_corruption_contract(kind: str, picture: np.ndarray) -> None:
    m = get_modality("image")
    np_state, py_state, torch_state = np.random.get_state(), random.getstate(), torch.get_rng_state()
    zero = m.corrupt(picture, kind, 0, np.random.default_rng(1))
    assert np.array_equal(zero, picture)
    a = m.corrupt(picture, kind, 5, np.random.default_rng(1))
    b = m.corrupt(picture, kind, 5, np.random.default_rng(1))
    assert np.array_equal(a, b)
    assert a.dtype == np.uint8 and a.shape == picture.shape
    assert not np.array_equal(a, picture)
    if kind in STOCHASTIC:
        c = m.corrupt(picture, kind, 5, np.random.default_rng(2))
        assert not np.array_equal(a, c)
    rgb = np.stack([picture] * 3, axis=-1)
    assert m.corrupt(rgb, kind, 5, np.random.default_rng(1)).shape == rgb.shape
    assert np.array_equal(np.random.get_state()[1], np_state[1])
    assert random.getstate() == py_state
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(picture, np.random.default_rng(123).integers(0, 256, (28, 28), dtype=np.uint8))


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "missing"])
def test_corruption_grows_with_level(kind: str, picture: np.ndarray) -> None:
    def mse(level: float) -> float:
        errs = []
        for seed in range(4):
            out = get_modality("image").corrupt(picture, kind, level, np.random.default_rng(seed))
            errs.append(np.mean((out.astype(float) - picture) ** 2))
        return float(np.mean(errs))

    values = [mse(level) for level in (1, 4, 10)]
    assert values[0] < values[1] < values[2], values


def test_gaussian_noise_does_not_wrap() -> None:
    black = np.zeros((64, 64), dtype=np.uint8)
    out = image_mod.gaussian_noise(black, 5, np.random.default_rng(0))
    assert (out == 255).sum() == 0
    assert out.mean() < 30  # about sigma/sqrt(2 pi) = 20 when negatives clip to 0
    white = np.full((64, 64), 255, dtype=np.uint8)
    assert image_mod.gaussian_noise(white, 5, np.random.default_rng(0)).mean() > 225


def test_level_mappings() -> None:
    rng = np.random.default_rng(0)
    grey = np.full((100, 100), 128, dtype=np.uint8)
    noisy = image_mod.gaussian_noise(grey, 3, rng).astype(float)
    assert noisy.std() == pytest.approx(30, rel=0.05)
    sp = image_mod.salt_pepper(grey, 4, rng)
    assert np.mean(sp != 128) == pytest.approx(0.2, abs=0.02)
    occ = image_mod.occlusion(np.zeros((100, 100), np.uint8), 5, rng)
    assert np.mean(occ != 0) == pytest.approx(0.3, abs=0.02)
    two = np.zeros((10, 10), np.uint8)
    two[:, 5:] = 200
    low = image_mod.contrast(two, 10)
    assert int(low.max()) - int(low.min()) == 10  # 200 * 0.05
    missing = get_modality("image").corrupt(grey[:28, :28], "missing", 0.5, rng)
    assert missing.max() == 0


def test_blur_scales_with_image_size() -> None:
    small = np.zeros((28, 28), np.uint8)
    small[:, 14:] = 255
    big = np.asarray(Image.fromarray(small).resize((112, 112), Image.Resampling.NEAREST))
    b_small = image_mod.blur(small, 8)
    b_big = image_mod.blur(big, 8)
    down = np.asarray(Image.fromarray(b_big).resize((28, 28), Image.Resampling.BOX)).astype(float)
    assert np.abs(down - b_small).mean() < 12


@pytest.mark.parametrize("channels", [1, 3])
def test_model_input_alone_equals_its_row_in_a_batch_and_leaves_the_picture_alone(channels: int) -> None:
    """One picture's model input (`to_array`, the app's and `qmf predict`'s path) is its row of a batch's
    (`to_arrays`) bit for bit, is (raw/255 - mean)/std per channel, and the caller's picture (uint8, or a
    float32 array the normalisation could have been done in) is left as it was."""
    mean, std = ([0.1, 0.2, 0.3], [0.3, 0.25, 0.2]) if channels == 3 else (0.13, 0.31)
    m = ImageModality({"channels": channels, "mean": mean, "std": std})
    shape = (28, 28) if channels == 1 else (28, 28, 3)
    rng = np.random.default_rng(2)
    raws = [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(3)]
    batch = m.to_arrays(raws)
    assert batch.shape == (3, *m.input_shape) and batch.dtype == np.float32 and batch.flags.c_contiguous
    chw = np.moveaxis(raws[1].reshape(28, 28, channels), -1, 0).astype(np.float64)
    want = (chw / 255 - np.reshape(mean, (-1, 1, 1))) / np.reshape(std, (-1, 1, 1))
    np.testing.assert_allclose(batch[1], want, atol=1e-5)
    for i, raw in enumerate(raws):
        np.testing.assert_array_equal(m.to_array(raw), batch[i])
        np.testing.assert_array_equal(m.to_arrays([raw])[0], batch[i])
    picture = raws[0].astype(np.float32)
    np.testing.assert_array_equal(m.to_array(picture), batch[0])
    np.testing.assert_array_equal(picture, raws[0])
