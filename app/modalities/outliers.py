"""Foreign inputs made by code: things that are not a digit (image) or not speech (audio).

Outlier exposure (Hendrycks et al., ICLR 2019; Liu et al., NeurIPS 2020) teaches each branch to give
a *low* quality score to inputs that are not its modality's content. The inputs here come in families
broad enough that a branch learns "not a digit / not speech" rather than a list of tricks; a recipe
names the families used in training, and the ones it does not name are held out for evaluation
(`scripts/eval_foreign.py`). Everything is a pure function of a numpy Generator passed explicitly, and
returns a *raw* input as the modality's `load` would have produced it (image: uint8 HxW, light strokes
on black, i.e. after the light-background inversion; audio: float32 mono in [-1, 1] at the model's
sample rate).

Image families (28x28 at the MNIST scale, any size works):
    uniform_noise, smooth_field, gratings, shapes, strokes, constant, checkerboard, fractal, letters, symbols
Audio families (about 0.3-1.0 s):
    tone, chord, chirp, pink_noise, clicks, melody, syllables, brown_noise, hum, reversed_speech,
    shuffled_speech, spoken_words

`reversed_speech` and `shuffled_speech` transform a real recording of the modality's own content
(`source=`); `spoken_words` plays a recording of words that are not digits, which the caller draws from a
pool of its own (POOLED: training's `[training.outliers] pools`, scripts/make_word_recordings.py); every
other family needs only the generator.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from .base import check_rng
from .outliers_audio import (
    au_brown_noise,
    au_chirp,
    au_chord,
    au_clicks,
    au_hum,
    au_melody,
    au_pink_noise,
    au_reversed_speech,
    au_shuffled_speech,
    au_spoken_words,
    au_syllables,
    au_tone,
)

__all__ = [
    "AUDIO_FAMILIES",
    "IMAGE_FAMILIES",
    "FAMILIES",
    "generate",
    "families_for",
    "NEEDS_SOURCE",
    "POOLED",
]

# --- image --------------------------------------------------------------------------------------

# Letters whose shapes are not read as a digit (no O/o, I/l, S/s, Z/z, B, G/g/q, b, D, T/7-like).
_LETTERS = "ACEFHKMNPRUVWXYacefhkmnpruvwxy#@%&*+=?!"


def _as_loaded(arr: np.ndarray) -> np.ndarray:
    """Apply the image reader's polarity rule: a light border means a light background, inverted."""
    arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    h, w = arr.shape
    band = max(1, round(0.03 * min(w, h)))
    border = np.concatenate([arr[:band].ravel(), arr[-band:].ravel(), arr[:, :band].ravel(), arr[:, -band:].ravel()])
    if float(np.median(border)) > 127:
        arr = 255 - arr
    return arr


def _smooth(noise: np.ndarray, sigma: float) -> np.ndarray:
    img = Image.fromarray(np.clip(noise * 127.5 + 127.5, 0, 255).astype(np.uint8))
    out = np.asarray(img.filter(ImageFilter.GaussianBlur(sigma)), dtype=np.float64)
    out = out - out.mean()
    spread = out.std()
    return out / spread if spread > 0 else out


def img_uniform_noise(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    lo = rng.uniform(0, 128)
    hi = rng.uniform(lo + 40, 256)
    return _as_loaded(rng.uniform(lo, hi, size=size))


def img_smooth_field(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A blurred random field: blobs and clouds at a random scale."""
    field = _smooth(rng.normal(size=size), rng.uniform(1.0, 5.0) * min(size) / 28.0)
    return _as_loaded(rng.uniform(60, 160) + rng.uniform(30, 90) * field)


def img_gratings(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Sine or square stripes at a random angle, period and phase."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w] * (28.0 / min(h, w))
    angle = rng.uniform(0, math.pi)
    period = rng.uniform(3.0, 14.0)
    phase = rng.uniform(0, 2 * math.pi)
    wave = np.sin(2 * math.pi * (xx * math.cos(angle) + yy * math.sin(angle)) / period + phase)
    if rng.random() < 0.5:
        wave = np.sign(wave)
    return _as_loaded(127.5 + rng.uniform(50, 127.5) * wave)


def img_shapes(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Filled or outlined polygons, ellipses and rectangles."""
    h, w = size
    img = Image.new("L", (w, h), int(rng.integers(0, 60)))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(1, 5))):
        fill = int(rng.integers(120, 256))
        outline_only = rng.random() < 0.4
        width = max(1, int(rng.integers(1, 4) * min(h, w) / 28))
        shape = int(rng.integers(3))
        if shape == 0:
            n = int(rng.integers(3, 8))
            pts = [(float(rng.uniform(0, w)), float(rng.uniform(0, h))) for _ in range(n)]
            draw.polygon(pts, fill=None if outline_only else fill, outline=fill, width=width)
        else:
            x0, x1 = sorted(rng.uniform(0, w, 2))
            y0, y1 = sorted(rng.uniform(0, h, 2))
            box = (float(x0), float(y0), float(x1) + 2, float(y1) + 2)
            if shape == 1:  # always filled: an outlined ellipse is a zero
                draw.ellipse(box, fill=fill)
            else:
                draw.rectangle(box, fill=None if outline_only else fill, outline=fill, width=width)
    return _as_loaded(np.asarray(img, dtype=np.float64))


def img_strokes(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Pen-like random scribbles of digit-like thickness; two or more strokes of 12+ segments, so that
    no single short bar (a one) comes out."""
    h, w = size
    img = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(img)
    k = min(h, w) / 28.0
    for _ in range(int(rng.integers(2, 5))):
        n = int(rng.integers(12, 30))
        steps = rng.normal(0, rng.uniform(1.5, 5.0), size=(n, 2)).cumsum(axis=0)
        start = rng.uniform([4, 4], [w - 4, h - 4])
        pts = [tuple(float(v) for v in np.clip(start + s * k, 0, [w - 1, h - 1])) for s in steps]
        draw.line(pts, fill=int(rng.integers(150, 256)), width=max(1, int(rng.integers(1, 4) * k)), joint="curve")
    out = np.asarray(img.filter(ImageFilter.GaussianBlur(0.5 * k)), dtype=np.float64)
    return _as_loaded(out * (255.0 / max(out.max(), 1.0)))


def img_constant(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A flat field (grey, or near-white before the reader's inversion) with faint noise."""
    value = rng.uniform(20, 255)
    return _as_loaded(value + rng.normal(0, rng.uniform(0, 4), size=size))


def img_checkerboard(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    cell = rng.uniform(2.0, 9.0) * min(h, w) / 28.0
    yy, xx = np.mgrid[0:h, 0:w]
    if rng.random() < 0.5:  # rotated board
        a = rng.uniform(0, math.pi / 2)
        xx, yy = xx * math.cos(a) - yy * math.sin(a), xx * math.sin(a) + yy * math.cos(a)
    board = (np.floor(xx / cell) + np.floor(yy / cell)) % 2
    lo, hi = rng.uniform(0, 90), rng.uniform(160, 255)
    return _as_loaded(lo + (hi - lo) * board)


def img_fractal(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """1/f^beta noise: the power spectrum of natural photographs (beta about 2)."""
    h, w = size
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    beta = rng.uniform(1.5, 3.0)
    spectrum = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f ** (beta / 2)
    spectrum[0, 0] = 0
    field = np.fft.irfft2(spectrum, s=(h, w))
    field = (field - field.mean()) / (field.std() + 1e-12)
    return _as_loaded(rng.uniform(80, 170) + rng.uniform(35, 70) * field)


def _font(size: int) -> Any:
    try:
        return ImageFont.load_default(size=size)  # FreeType build of Pillow: a scalable font
    except (TypeError, OSError):  # pragma: no cover - Pillow without FreeType
        return ImageFont.load_default()


def _glyphs(rng: np.random.Generator, size: tuple[int, int], alphabet: str, max_chars: int, font_for: Callable,
            min_stroke: int, max_angle: float) -> np.ndarray:
    """1..max_chars characters of `alphabet`, centred, light on black, drawn 4x larger and reduced; pen width
    min_stroke..5, half of them turned by up to +-max_angle degrees."""
    h, w = size
    big = 4 * max(h, w)
    img = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(img)
    n = int(rng.integers(1, max_chars + 1))
    text = "".join(alphabet[int(rng.integers(len(alphabet)))] for _ in range(n))
    font = font_for(int(big * rng.uniform(0.45, 0.8) / max(1, n) ** 0.5), rng)
    box = draw.textbbox((0, 0), text, font=font)
    tw, th = box[2] - box[0], box[3] - box[1]
    pos = ((big - tw) / 2 - box[0], (big - th) / 2 - box[1])
    draw.text(pos, text, fill=255, font=font, stroke_width=int(rng.integers(min_stroke, 6)), stroke_fill=255)
    if rng.random() < 0.5:
        img = img.rotate(float(rng.uniform(-max_angle, max_angle)), resample=Image.Resampling.BILINEAR)
    small = img.resize((w, h), Image.Resampling.LANCZOS)
    return _as_loaded(np.asarray(small, dtype=np.float64))


def img_letters(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """One to three characters that are not digits (nor digit look-alikes), light on black."""
    return _glyphs(rng, size, _LETTERS, 3, lambda px, _rng: _font(px), min_stroke=2, max_angle=20.0)


# Symbols that are neither digits nor Latin letters nor the letters family's signs: arrows, maths, shapes,
# currency, box drawing, and a few CJK and Devanagari characters (what a scan of a form or a label holds).
_SYMBOLS = ("\u2190\u2191\u2192\u2194\u21d2\u2200\u2202\u2203\u2207\u2208\u220f\u2211\u221a\u221e\u222b"
            "\u2248\u2260\u2264\u2265\u2295\u2297\u25a0\u25b2\u25c6\u25cb\u2605\u2663\u2665\u266a\u20ac\u00a3"
            "\u00a5\u00a7\u00b6\u2500\u2502\u253c\u2592\u6c34\u706b\u5c71\u4eba\u5927\u4e2d\u0915\u0916")
_SYMBOL_FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "FreeSerif.ttf", "DroidSansFallbackFull.ttf")


def _symbol_font(size: int, rng: np.random.Generator) -> Any:
    """A system font that has the symbols (DejaVu, FreeFont, Droid), else Pillow's own scalable font."""
    names = list(_SYMBOL_FONTS)
    rng.shuffle(names)
    for name in names:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return _font(size)


def img_symbols(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """One or two non-alphanumeric symbols (arrows, maths, shapes, CJK), light on black, any pen width."""
    return _glyphs(rng, size, _SYMBOLS, 2, _symbol_font, min_stroke=0, max_angle=25.0)


IMAGE_FAMILIES: dict[str, Callable[[np.random.Generator, tuple[int, int]], np.ndarray]] = {
    "uniform_noise": img_uniform_noise,
    "smooth_field": img_smooth_field,
    "gratings": img_gratings,
    "shapes": img_shapes,
    "strokes": img_strokes,
    "constant": img_constant,
    "checkerboard": img_checkerboard,
    "fractal": img_fractal,
    "letters": img_letters,
    "symbols": img_symbols,
}


AUDIO_FAMILIES: dict[str, Callable[..., np.ndarray]] = {
    "tone": au_tone,
    "chord": au_chord,
    "chirp": au_chirp,
    "pink_noise": au_pink_noise,
    "clicks": au_clicks,
    "melody": au_melody,
    "syllables": au_syllables,
    "brown_noise": au_brown_noise,
    "hum": au_hum,
    "reversed_speech": au_reversed_speech,
    "shuffled_speech": au_shuffled_speech,
    "spoken_words": au_spoken_words,
}

FAMILIES: dict[str, dict[str, Callable[..., np.ndarray]]] = {"image": IMAGE_FAMILIES, "audio": AUDIO_FAMILIES}
NEEDS_SOURCE = frozenset({"reversed_speech", "shuffled_speech", "spoken_words"})
# source-based families whose source is not the modality's own content but a recording from a pool of
# foreign material (a folder of files), which a recipe names per family in [training.outliers] pools
POOLED = frozenset({"spoken_words"})


def families_for(kind: str) -> tuple[str, ...]:
    """The family names a modality kind has (empty for kinds without generators, e.g. text)."""
    return tuple(FAMILIES.get(kind, {}))


def generate(
    kind: str, family: str, rng: np.random.Generator, params: dict[str, Any], source: np.ndarray | None = None
) -> np.ndarray:
    """One foreign raw input of `family` for a modality of `kind` with preprocessing `params`.

    `params` is the modality's full preprocessing (image: `size`, `channels`; audio: `sample_rate`).
    `source` is the recording a source-based family (NEEDS_SOURCE: reversed_speech, spoken_words ...) uses.
    """
    check_rng(rng)
    table = FAMILIES.get(kind)
    if table is None:
        raise ValueError(f"no foreign-input generators for modality kind {kind!r}; kinds: {sorted(FAMILIES)}")
    if family not in table:
        raise ValueError(f"unknown {kind} foreign family {family!r}; valid: {', '.join(table)}")
    if kind == "image":
        h, w = (int(v) for v in params.get("size", (28, 28)))
        out = table[family](rng, (h, w))
        if int(params.get("channels", 1)) == 3:
            out = np.repeat(out[:, :, None], 3, axis=2)
        return out
    sr = int(params.get("sample_rate", 8000))
    if family in NEEDS_SOURCE:
        return table[family](rng, sr, source=source)
    return table[family](rng, sr)
