"""Images: any file Pillow opens, turned into an MNIST-style picture (light strokes on black).

Users bring photos and drawings of all shapes: rotated phone JPEGs, black-on-white sketches,
transparent PNGs, 16-bit TIFFs. `ImageModality.load` normalises all of them to the model's size and
polarity, and refuses what cannot be decoded safely (decompression bombs, truncated files) with an
`InputError` that says which file and what would work.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import numpy as np
from PIL import Image, UnidentifiedImageError  # ImageFilter, ImageChops: imported where used

from .base import (
    InputError,
    InputWarning,
    Modality,
    decode_budget,
    positive_number,
    read_input,
)
from .image_corruptions import (  # noqa: F401 - the corruptions stay importable from here
    _CORRUPTIONS,
    _to_uint8,
    blur,
    contrast,
    gaussian_noise,
    occlusion,
    salt_pepper,
)
from .plain_png import PLAIN_PNG_MAX_BYTES as _PLAIN_PNG_MAX_BYTES
from .plain_png import plain_png_data as _plain_png_data

SUPPORTED_HINT = "supported image formats: PNG, JPEG, BMP, TIFF, WebP, GIF"

_BACKGROUND = 0  # alpha is composited onto black, the model's background
_GREY_MODES_HIGH_DEPTH = ("I", "F", "I;16", "I;16L", "I;16B", "I;16N")

# Decoding limits, checked from the header before any pixel is decoded. `max_pixels` (a model
# param) bounds the picture; MAX_DECODED_BYTES bounds the memory the decoded picture takes in
# Pillow (pixels x bytes per pixel: Pillow keeps RGB, LA and 32-bit modes in 4 bytes a pixel), so
# that a 7000x7000 float TIFF of 300 KB cannot turn into gigabytes. After decoding, a large picture
# is brought to 8 bits and reduced towards the model's size before any further copy is made.
MAX_DECODED_BYTES = 256 * 1024 * 1024
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 4, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}  # others: 4
_EARLY_REDUCE_PIXELS = 1 << 22  # above 4 Mpx, reduce right after decoding (smaller ones as before)
_REDUCIBLE_MODES = ("L", "LA", "RGB", "RGBA")
_STRIP_ROWS = 64  # high-depth pictures are converted to 8 bits this many rows at a time
_EXIF_ORIENTATION = 0x0112
_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class ImageModality(Modality):
    """Images as uint8 arrays HxW (one channel) or HxWx3 at the model's size, white-on-black."""

    kind: ClassVar[str] = "image"
    extensions: ClassVar[tuple[str, ...]] = (
        ".png",
        ".jpg",
        ".jpeg",
        ".bmp",
        ".tif",
        ".tiff",
        ".webp",
        ".gif",
    )
    corruption_kinds: ClassVar[tuple[str, ...]] = (*_CORRUPTIONS, "missing")

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        """MNIST defaults; `size` is [height, width]; mean/std may be per channel lists."""
        return {
            "size": [28, 28],
            "channels": 1,
            "invert_light_background": True,
            "mean": 0.1307,
            "std": 0.3081,
            "max_pixels": 50_000_000,
        }

    def _validate_params(self) -> None:
        p = self.params
        size = p["size"]
        if (
            not isinstance(size, list)
            or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
        ):
            raise ValueError(f"image param 'size' must be [height, width] positive integers, got {size!r}")
        if p["channels"] not in (1, 3):
            raise ValueError(f"image param 'channels' must be 1 or 3, got {p['channels']!r}")
        positive_number(p, "max_pixels", "image")
        channels = p["channels"]
        for key in ("mean", "std"):
            value = p[key]
            values = value if isinstance(value, list) else [value]
            if len(values) not in (1, channels) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values
            ):
                raise ValueError(f"image param {key!r} must be a number or {channels} numbers, got {value!r}")
        std = p["std"] if isinstance(p["std"], list) else [p["std"]]
        if any(v <= 0 for v in std):
            raise ValueError(f"image param 'std' must be > 0, got {p['std']!r}")
        self._mean = np.asarray(p["mean"], dtype=np.float32).reshape(-1, 1, 1)
        self._std = np.asarray(p["std"], dtype=np.float32).reshape(-1, 1, 1)
        height, width = size
        self._raw_shape = (height, width) if channels == 1 else (height, width, 3)  # blank()'s, without making it

    # --- reading ---------------------------------------------------------------------------
    def load(self, path: str | Path) -> np.ndarray:
        """Decode any Pillow image, fix orientation and polarity, fit it into the model size."""
        p, data = read_input(path, SUPPORTED_HINT, _PLAIN_PNG_MAX_BYTES)  # data: None for a larger file
        plain = None if data is None else self._plain_png(data)
        if plain is not None:
            return plain
        p = Path(p)  # the name its messages give
        return self._decode(p, p)

    def load_file(self, fh: BinaryIO, name: str) -> np.ndarray:
        """`load` of an open, seekable binary file (an object in storage opened by pyarrow.fs): the same
        header checks (pixels, decoded bytes) before decoding; errors name ``name`` (its URI)."""
        return self._decode(fh, name)

    def _decode(self, source: Path | BinaryIO, p: str | Path) -> np.ndarray:
        try:
            with warnings.catch_warnings():
                # Pillow only warns between MAX_IMAGE_PIXELS and twice that; treat it as the error it is.
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(source) as im:
                    decoded = self._check_size(p, im)
                    frames = int(getattr(im, "n_frames", 1) or 1)
                    if frames > 1:
                        warnings.warn(InputWarning(p, f"an animated image with {frames} frames: only the first "
                                                      "frame is used"), stacklevel=2)
                    with decode_budget(decoded):
                        try:
                            return self._prepare(im)
                        finally:
                            im.close()  # frees the decoded picture inside the budget
        except InputError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise InputError(
                p,
                "image dimensions are too large to decode safely: possibly a decompression bomb",
                f"use an image of at most {int(self.params['max_pixels']):,} pixels",
            ) from None
        except UnidentifiedImageError:
            raise InputError(p, "not an image file Pillow can read", SUPPORTED_HINT) from None
        except MemoryError:
            raise InputError(p, "image is too large to decode in memory", "use a smaller image") from None
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise InputError(p, f"image data is truncated or corrupt ({exc})", SUPPORTED_HINT) from None

    def _plain_png(self, data: bytes) -> np.ndarray | None:
        """The raw array of a small, plain PNG file (its bytes ``data``) already at the model's size and mode
        (the usual batch input), decoded by Pillow's own PNG decoder (`Image.frombytes` with "zip", what
        Image.open's load calls) without Image.open's chunk reading in Python; None for any other file,
        which `_decode` reads as before (its checks and its messages: a damaged file is never decided here)."""
        height, width = self.params["size"]
        mode = "L" if self.params["channels"] == 1 else "RGB"
        if width * height > min(int(self.params["max_pixels"]), 1 << 20):
            return None
        idat = _plain_png_data(data, width, height, mode)
        if idat is None:
            return None
        try:
            im = Image.frombytes(mode, (width, height), idat, "zip", mode)
        except (ValueError, OSError, MemoryError):  # truncated or corrupt data: Image.open says what
            return None
        # the decoded bytes as a writable array (a third cheaper than np.array(im), which goes through
        # the array interface)
        out = np.frombuffer(bytearray(im.tobytes()), np.uint8).reshape((height, width) if mode == "L" else
                                                                       (height, width, 3))
        if self.params["invert_light_background"] and _border_median(im, out) > 127:
            np.subtract(255, out, out=out)
        return out

    def _check_size(self, path: str | Path, im: Image.Image) -> int:
        """Refuse from the header alone what would take too many pixels or bytes to decode; the bytes."""
        width, height = im.size
        limit = int(self.params["max_pixels"])
        if width * height > limit:
            raise InputError(
                path,
                f"image is {width}x{height} = {width * height:,} pixels, above the limit of {limit:,}: "
                "possibly a decompression bomb",
                "scale the image down first",
            )
        if width == 0 or height == 0:
            raise InputError(path, "image has no pixels", SUPPORTED_HINT)
        decoded = width * height * _BYTES_PER_PIXEL.get(im.mode, 4)  # only the first frame is decoded
        if decoded > MAX_DECODED_BYTES:
            raise InputError(
                path,
                f"image is {width}x{height} in mode {im.mode}: {decoded / 2**20:,.0f} MiB once decoded, above "
                f"the limit of {MAX_DECODED_BYTES / 2**20:,.0f} MiB",
                "scale the image down or save it with 8 bits per channel",
            )
        return decoded

    def _prepare(self, im: Image.Image) -> np.ndarray:
        height, width = self.params["size"]
        channels = self.params["channels"]
        if im.format == "JPEG":
            # Decode JPEGs at a reduced scale when they are much larger than needed (fast, less memory).
            target = 4 * max(height, width)
            im.draft("RGB" if channels == 3 else "L", (target, target))
        orientation = _orientation(im)
        im.load()
        if im.size[0] * im.size[1] > _EARLY_REDUCE_PIXELS:
            # A large picture: 8 bits first (in strips), then reduced towards the model's size, so
            # no full-size float or RGBA copy is ever made.
            if im.mode in _GREY_MODES_HIGH_DEPTH:
                im = _high_depth_to_l(im)
            if im.mode not in _REDUCIBLE_MODES:
                im = _flatten(im, channels)
            im = _reduce(im, width, height)
        else:
            orientation = _orientation(im)  # again after decoding, as ImageOps.exif_transpose reads it
        transpose = _ORIENTATION_TRANSPOSE.get(orientation)
        if transpose is not None:
            im = im.transpose(transpose)
        im = _flatten(im, channels)
        invert = self.params["invert_light_background"]
        if im.size == (width, height):
            # Already the model's size (the usual batch input): one copy out of Pillow, and the border
            # check and the inversion on that array.
            out = np.array(im, dtype=np.uint8)
            if invert and _border_median(im, out) > 127:
                np.subtract(255, out, out=out)
            return out
        if invert and _border_median(im) > 127:
            from PIL import ImageChops

            im = ImageChops.invert(im)  # 255 - v, as ImageOps.invert, without building a Python lookup table
        return np.array(_fit(im, width, height), dtype=np.uint8)

    def blank(self) -> np.ndarray:
        """A black image: 'nothing drawn' in MNIST polarity."""
        height, width = self.params["size"]
        shape = (height, width) if self.params["channels"] == 1 else (height, width, 3)
        return np.zeros(shape, dtype=np.uint8)

    # --- model input -----------------------------------------------------------------------
    def to_array(self, raw: np.ndarray) -> np.ndarray:
        """float32 [C, H, W] = (raw/255 - mean)/std."""
        arr = np.asarray(raw)
        if arr.shape != self._raw_shape:
            raise ValueError(f"image raw array has shape {arr.shape}, expected {self._raw_shape}")
        return self._normalised(arr[None])[0]

    def to_arrays(self, raws: Sequence[np.ndarray]) -> np.ndarray:
        """`to_array` of several uint8 pictures as one stacked computation (the same numbers, element by
        element); anything else pair by pair, with `to_array`'s checks and messages."""
        expected = self._raw_shape
        if not len(raws) or not all(isinstance(r, np.ndarray) and r.dtype == np.uint8 and r.shape == expected
                                    for r in raws):
            return super().to_arrays(raws)
        return self._normalised(np.stack(raws) if len(raws) > 1 else raws[0][None])

    def _normalised(self, stacked: np.ndarray) -> np.ndarray:
        """(raw/255 - mean)/std of pictures [K, H, W] or [K, H, W, 3] as float32 [K, C, H, W], C-contiguous:
        one cast-and-copy into the layout, then the arithmetic in place (the same operations in the
        same order, so the same numbers, without three temporaries)."""
        chw = stacked[:, None] if stacked.ndim == 3 else stacked.transpose(0, 3, 1, 2)
        x = np.ascontiguousarray(chw, dtype=np.float32)
        if x is chw:  # already float32 and contiguous (a float picture): not the caller's array
            x = x.copy()
        x /= np.float32(255.0)
        x -= self._mean
        x /= self._std
        return x

    @property
    def input_shape(self) -> tuple[int, ...]:
        """(channels, height, width)."""
        height, width = self.params["size"]
        return (int(self.params["channels"]), int(height), int(width))

    def _missing(self, raw: np.ndarray) -> np.ndarray:
        # Black, in the shape given (equal to blank() for a raw at the model's size).
        return np.zeros_like(np.asarray(raw, dtype=np.uint8))

    def _corrupt(self, raw: np.ndarray, kind: str, level: float, rng: np.random.Generator) -> np.ndarray:
        return _CORRUPTIONS[kind](np.asarray(raw, dtype=np.uint8), level, rng)


# --- decoding helpers -----------------------------------------------------------------------


def _flatten(im: Image.Image, channels: int) -> Image.Image:
    """Any Pillow mode -> 'L' or 'RGB', alpha composited onto black, high bit depths rescaled."""
    if im.mode in _GREY_MODES_HIGH_DEPTH:
        im = _high_depth_to_l(im)
    elif im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode == "PA":
        im = im.convert("RGBA")
    elif im.mode in ("La", "RGBa"):
        im = im.convert("RGBA")
    alpha = None
    if im.mode in ("LA", "RGBA"):
        alpha = im.getchannel("A")
        im = im.convert("L" if im.mode == "LA" else "RGB")
    target = "L" if channels == 1 else "RGB"
    if im.mode != target:
        im = im.convert(target)
    if alpha is not None:
        background = Image.new(target, im.size, _BACKGROUND)
        background.paste(im, mask=alpha)
        im = background
    return im


def _orientation(im: Image.Image) -> int | None:
    """The EXIF orientation tag (1-8), read before decoding; None when absent or unreadable."""
    try:
        value = im.getexif().get(_EXIF_ORIENTATION)
    except Exception:  # noqa: BLE001 - a damaged EXIF block only loses the rotation, as in Pillow
        return None
    return value if isinstance(value, int) else None


def _strips(im: Image.Image) -> list[tuple[int, int]]:
    return [(top, min(im.size[1], top + _STRIP_ROWS)) for top in range(0, im.size[1], _STRIP_ROWS)]


def _strip_values(im: Image.Image, top: int, bottom: int) -> np.ndarray:
    return np.asarray(im.crop((0, top, im.size[0], bottom)), dtype=np.float64)


def _high_depth_to_l(im: Image.Image) -> Image.Image:
    """16-bit / 32-bit / float greyscale to 8 bits by range (Pillow's convert would just clip).

    Works a strip of rows at a time, so a large picture never exists as a float64 copy.
    """
    top = -math.inf
    for a, b in _strips(im):
        values = _strip_values(im, a, b)
        finite = values[np.isfinite(values)]
        if finite.size:
            top = max(top, float(finite.max()))
    top = 0.0 if top == -math.inf else top
    if im.mode == "F" and top <= 1.0:
        full = 1.0  # float images are usually 0..1
    elif top <= 255:
        full = 255.0
    else:
        full = 65535.0 if top <= 65535 else top
    out = np.empty((im.size[1], im.size[0]), dtype=np.uint8)
    for a, b in _strips(im):
        values = np.nan_to_num(_strip_values(im, a, b), nan=0.0, posinf=full, neginf=0.0)
        out[a:b] = _to_uint8(values * (255.0 / full))
    return Image.fromarray(out, mode="L")


def _reduce(im: Image.Image, width: int, height: int) -> Image.Image:
    """Box-reduce by the integer factor Pillow's resize would use (reducing_gap 3), or not at all."""
    w, h = im.size
    factor = int(max(w / width, h / height) // 3)
    return im.reduce(factor) if factor >= 2 else im


def _border_median(im: Image.Image, pixels: np.ndarray | None = None) -> float:
    """Median brightness of a thin band along the edges: the drawing's background colour.

    Runs on every image decode, so it is kept cheap: a small image is read once as an array and
    sliced (`pixels`, when the caller already holds the 'L' image's array), a large one has only its
    four bands cropped and converted to grey; the median of the uint8 values comes from a 256-bin
    histogram (the same value as np.median, without the sort).
    """
    w, h = im.size
    band = max(1, round(0.03 * min(w, h)))
    if w * h <= 256 * 256:
        a = pixels if pixels is not None and pixels.ndim == 2 else np.asarray(im if im.mode == "L" else im.convert("L"))
        if a.dtype == np.uint8 and a.shape == (h, w):  # the usual case, a 28x28 picture: one take of the bands
            return _median_u8(a.take(_band_indices(h, w, band)))
        strips = [a[:band], a[h - band :], a[:, :band], a[:, w - band :]]
    else:
        boxes = [(0, 0, w, band), (0, h - band, w, h), (0, 0, band, h), (w - band, 0, w, h)]
        strips = [np.asarray(im.crop(box).convert("L")) for box in boxes]
    return _median_u8(np.concatenate([np.asarray(s, dtype=np.uint8).ravel() for s in strips]))


@functools.lru_cache(maxsize=32)
def _band_indices(h: int, w: int, band: int) -> np.ndarray:
    """Flat indices of the four edge bands of an h x w picture (top, bottom, left, right rows and columns,
    the corners in two bands, as `_border_median` takes them), read-only."""
    at = np.arange(h * w).reshape(h, w)
    idx = np.concatenate((at[:band].ravel(), at[h - band :].ravel(), at[:, :band].ravel(), at[:, w - band :].ravel()))
    idx.setflags(write=False)
    return idx


def _median_u8(values: np.ndarray) -> float:
    """np.median of uint8 values (the mean of the two middle ones for an even count): by sorting for a
    few values (a 28x28 picture's band), by a 256-bin histogram for many (no sort of a large band)."""
    n = values.size
    if n <= 1024:
        ordered = np.sort(values)
        return (int(ordered[(n - 1) // 2]) + int(ordered[n // 2])) / 2.0
    cumulative = np.cumsum(np.bincount(values, minlength=256))
    n = int(cumulative[-1])
    lower = int(np.searchsorted(cumulative, (n - 1) // 2, side="right"))
    upper = int(np.searchsorted(cumulative, n // 2, side="right"))
    return (lower + upper) / 2.0


def _fit(im: Image.Image, width: int, height: int) -> Image.Image:
    """Resize keeping the aspect ratio, centred on a black canvas of exactly width x height."""
    w, h = im.size
    if (w, h) == (width, height):
        return im
    scale = min(width / w, height / h)
    new_w = max(1, min(width, round(w * scale)))
    new_h = max(1, min(height, round(h * scale)))
    resample = Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC
    resized = im.resize((new_w, new_h), resample, reducing_gap=3.0 if scale < 0.5 else None)
    canvas = Image.new(im.mode, (width, height), _BACKGROUND)
    canvas.paste(resized, ((width - new_w) // 2, (height - new_h) // 2))
    return canvas
