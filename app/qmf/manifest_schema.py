"""What a model file's manifest may say: every value the app acts on, with its documented range.

A model file is a file a user hands the app, so its manifest is input, not configuration: a value
that the checksums accept can still be absurd (an image size of 20000x20000, an FFT of 2^24 points,
a sample rate of 10^12 Hz, six layers of 4096 channels) and would make the first prediction
allocate gigabytes. `validate_manifest` checks the whole manifest when the file is opened
(`read_bundle_manifest` and `load_bundle`, so `qmf info`, `qmf predict`, batch review and the
desktop app all refuse the same files) and `save_bundle` checks before writing, so a model that
cannot be opened is never written. Nothing here imports torch.

The ranges (inclusive), generous for the models this app trains and small enough that one
prediction stays far below a gigabyte:

==============================  =============================================================
model.name, top-level name      text, 1-200 characters
model.labels                    2-10,000 distinct non-empty texts of at most 200 characters
model.modalities                2-16 inputs, names distinct, 1-64 of ``A-Z a-z 0-9 _ - .``
                                starting with a letter or digit, kind image, audio or text
model.confidence_scale          a number > 0 and <= 1000
model.weight_floor              a number >= 0 and <= 1000
encoder.channels                1-8 convolution layers of 1-1024 channels
encoder.hidden, .embedding      1-4096
encoder.dropout                 0 <= dropout < 1
encoder.temporal                0 (global pooling) or an odd kernel size 1-9 (image and audio)
image size [height, width]      1-1024 each
image max_pixels                1-100,000,000 (decoding has its own byte limit as well)
image mean / std                finite, |mean| <= 1000, 0 < std <= 1000
audio sample_rate               1,000-384,000 Hz (the range the audio reader accepts from files)
audio duration                  > 0 and <= 60 s; max_seconds > 0 and <= 3600 s
audio n_fft                     16-8192; hop_length 1-n_fft; n_mels 1-512 and <= n_fft/2 + 1
audio frames                    1 + duration*sample_rate/hop_length <= 20,000
audio STFT size                 (n_fft/2 + 1) x frames <= 4,000,000 values
audio f_min, f_max              0 <= f_min < f_max <= sample_rate/2
audio log_floor                 > 0 and <= 1; mean finite, |mean| <= 1e6, 0 < std <= 1e6
text vocab                      at most 200,000 distinct words of 1-100 characters
text max_tokens                 1-4096
one sample's model input        at most 1,048,576 values (C x H x W)
first convolution's output      at most 8,388,608 values (channels[0] x H x W) for one sample
text embedding table            at most 50,000,000 values (vocabulary x embedding)
==============================  =============================================================

Keys a modality does not know are ignored (as the modality ignores them); the free-form sections
(description, provenance, evaluation, training) are checked only where the app reads them; a version-1
`calibration` table (app/qmf/calibration.py) must name inputs of the model, with non-decreasing finite
percentiles and qualities of equal length and a finite threshold. The
manifest's nesting depth is bounded by MAX_JSON_DEPTH.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "DEFAULT_ENCODER",
    "MAX_JSON_DEPTH",
    "SchemaError",
    "json_depth",
    "validate_manifest",
]

# The encoder each kind gets when the manifest leaves settings out (app.qmf.model builds from it).
DEFAULT_ENCODER: dict[str, dict[str, Any]] = {
    "image": {"channels": [32, 64, 64], "hidden": 128, "dropout": 0.2},
    "audio": {"channels": [32, 64, 64], "hidden": 128, "dropout": 0.2},
    "text": {"embedding": 64, "hidden": 128, "dropout": 0.2},
}

MAX_JSON_DEPTH = 32
MAX_TEXT = 200
MAX_LABELS = 10_000
MAX_MODALITIES = 16
MAX_LAYERS = 8
MAX_TEMPORAL_KERNEL = 9
MAX_CHANNELS = 1024
MAX_HIDDEN = 4096
MAX_IMAGE_SIDE = 1024
MAX_IMAGE_PIXELS_PARAM = 100_000_000
MAX_DURATION_S = 60.0
MAX_SECONDS_PARAM = 3600.0
MIN_N_FFT, MAX_N_FFT = 16, 8192
MAX_N_MELS = 512
MAX_FRAMES = 20_000
MAX_STFT_VALUES = 4_000_000
MAX_VOCAB = 200_000
MAX_WORD = 100
MAX_TOKENS = 4096
MAX_INPUT_VALUES = 1 << 20
MAX_FIRST_LAYER_VALUES = 1 << 23
MAX_EMBEDDING_VALUES = 50_000_000

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class SchemaError(ValueError):
    """A manifest value outside its documented range; `where` is its path, e.g. model.labels[3]."""

    def __init__(self, where: str, message: str) -> None:
        self.where = where
        self.message = message
        super().__init__(f"{where}: {message}")


def json_depth(value: Any) -> int:
    """Nesting depth of parsed JSON (a scalar is 0, [] is 1), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            items = item.values()
        elif isinstance(item, list):
            items = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if depth > MAX_JSON_DEPTH:
            return depth
        stack.extend((child, depth) for child in items)
    return deepest


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _dict(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise SchemaError(where, f"must be a JSON object, got {_show(value)}")
    return value


def _list(value: Any, where: str, lo: int, hi: int) -> list[Any]:
    if not isinstance(value, list):
        raise SchemaError(where, f"must be a list, got {_show(value)}")
    if not lo <= len(value) <= hi:
        raise SchemaError(where, f"must have {lo} to {hi:,} entries, has {len(value):,}")
    return value


def _text(value: Any, where: str, hi: int = MAX_TEXT, lo: int = 1) -> str:
    if not isinstance(value, str):
        raise SchemaError(where, f"must be text, got {_show(value)}")
    if not lo <= len(value) <= hi:
        raise SchemaError(where, f"must be {lo} to {hi:,} characters long, is {len(value):,}")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise SchemaError(where, f"must be true or false, got {_show(value)}")
    return value


def _int(value: Any, where: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SchemaError(where, f"must be an integer from {lo:,} to {hi:,}, got {_show(value)}")
    if not lo <= value <= hi:
        raise SchemaError(where, f"must be an integer from {lo:,} to {hi:,}, got {value:,}")
    return value


def _number(value: Any, where: str, lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> float:
    left = "(" if lo_open else "["
    right = ")" if hi_open else "]"
    span = f"a number in {left}{lo:g}, {hi:g}{right}"
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SchemaError(where, f"must be {span}, got {_show(value)}")
    if value < lo or value > hi or (lo_open and value == lo) or (hi_open and value == hi):
        raise SchemaError(where, f"must be {span}, got {value:g}")
    return float(value)


def _numbers(value: Any, where: str, count: int, lo: float, hi: float, lo_open: bool = False) -> None:
    values = value if isinstance(value, list) else [value]
    if isinstance(value, list) and len(value) not in (1, count):
        raise SchemaError(where, f"must be a number or {count} numbers, got {_show(value)}")
    for i, v in enumerate(values):
        _number(v, f"{where}[{i}]" if isinstance(value, list) else where, lo, hi, lo_open=lo_open)


def _image(p: Mapping[str, Any], where: str) -> None:
    size = _list(p["size"], f"{where}.size", 2, 2)
    for i, side in enumerate(size):
        _int(side, f"{where}.size[{i}]", 1, MAX_IMAGE_SIDE)
    channels = p["channels"]
    if isinstance(channels, bool) or channels not in (1, 3):
        raise SchemaError(f"{where}.channels", f"must be 1 or 3, got {_show(channels)}")
    _bool(p["invert_light_background"], f"{where}.invert_light_background")
    _int(p["max_pixels"], f"{where}.max_pixels", 1, MAX_IMAGE_PIXELS_PARAM)
    _numbers(p["mean"], f"{where}.mean", channels, -1000.0, 1000.0)
    _numbers(p["std"], f"{where}.std", channels, 0.0, 1000.0, lo_open=True)


def _audio(p: Mapping[str, Any], where: str) -> None:
    from app.modalities.audio import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE

    rate = _int(p["sample_rate"], f"{where}.sample_rate", MIN_SAMPLE_RATE, MAX_SAMPLE_RATE)
    duration = _number(p["duration"], f"{where}.duration", 0.0, MAX_DURATION_S, lo_open=True)
    _number(p["max_seconds"], f"{where}.max_seconds", 0.0, MAX_SECONDS_PARAM, lo_open=True)
    n_fft = _int(p["n_fft"], f"{where}.n_fft", MIN_N_FFT, MAX_N_FFT)
    hop = _int(p["hop_length"], f"{where}.hop_length", 1, n_fft)
    _int(p["n_mels"], f"{where}.n_mels", 1, min(MAX_N_MELS, n_fft // 2 + 1))
    f_max = _number(p["f_max"], f"{where}.f_max", 0.0, rate / 2, lo_open=True)
    _number(p["f_min"], f"{where}.f_min", 0.0, f_max, hi_open=True)
    _number(p["log_floor"], f"{where}.log_floor", 0.0, 1.0, lo_open=True)
    _number(p["mean"], f"{where}.mean", -1e6, 1e6)
    _number(p["std"], f"{where}.std", 0.0, 1e6, lo_open=True)
    if "utterance_norm_channel" in p:
        _bool(p["utterance_norm_channel"], f"{where}.utterance_norm_channel")
    frames = 1 + int(round(duration * rate)) // hop
    if frames > MAX_FRAMES:
        raise SchemaError(where, f"duration x sample_rate / hop_length gives {frames:,} frames, above {MAX_FRAMES:,}")
    stft = (n_fft // 2 + 1) * frames
    if stft > MAX_STFT_VALUES:
        raise SchemaError(where, f"the spectrogram would hold {stft:,} values, above {MAX_STFT_VALUES:,}")


def _text_params(p: Mapping[str, Any], where: str) -> None:
    vocab = _list(p["vocab"], f"{where}.vocab", 0, MAX_VOCAB)
    for i, word in enumerate(vocab):
        _text(word, f"{where}.vocab[{i}]", MAX_WORD)
    if len(set(vocab)) != len(vocab):
        raise SchemaError(f"{where}.vocab", "has duplicate words")
    _int(p["max_tokens"], f"{where}.max_tokens", 1, MAX_TOKENS)
    _bool(p["lowercase"], f"{where}.lowercase")


_PREPROCESSING = {"image": _image, "audio": _audio, "text": _text_params}


def _modality(entry: Any, where: str) -> str:
    from app.modalities import modality_class

    m = _dict(entry, where)
    for key in ("name", "kind"):
        if key not in m:
            raise SchemaError(where, f"has no {key!r}")
    name = _text(m["name"], f"{where}.name", 64)
    if not _NAME_RE.fullmatch(name):
        raise SchemaError(f"{where}.name", f"{_show(name)} is not a usable input name (letters, digits, _ - .)")
    kind = m["kind"]
    if not isinstance(kind, str) or kind not in _PREPROCESSING:
        raise SchemaError(f"{where}.kind", f"must be one of {', '.join(_PREPROCESSING)}, got {_show(kind)}")
    given = _dict(m.get("preprocessing", {}), f"{where}.preprocessing")
    cls = modality_class(kind)
    params = {**cls.default_params(), **given}
    _PREPROCESSING[kind](params, f"{where}.preprocessing")
    try:
        modality = cls(given)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"{where}.preprocessing", str(exc)) from None

    encoder = {**DEFAULT_ENCODER[kind], **_dict(m.get("encoder", {}), f"{where}.encoder")}
    _int(encoder["hidden"], f"{where}.encoder.hidden", 1, MAX_HIDDEN)
    _number(encoder["dropout"], f"{where}.encoder.dropout", 0.0, 1.0, hi_open=True)
    shape = modality.input_shape
    values = math.prod(shape)
    if kind == "text":
        embedding = _int(encoder["embedding"], f"{where}.encoder.embedding", 1, MAX_HIDDEN)
        table = (len(params["vocab"]) + 2) * embedding
        if table > MAX_EMBEDDING_VALUES:
            raise SchemaError(f"{where}.encoder", f"the embedding table would hold {table:,} values, above {MAX_EMBEDDING_VALUES:,}")
        return name
    channels = _list(encoder["channels"], f"{where}.encoder.channels", 1, MAX_LAYERS)
    for i, c in enumerate(channels):
        _int(c, f"{where}.encoder.channels[{i}]", 1, MAX_CHANNELS)
    temporal = _int(encoder.get("temporal", 0), f"{where}.encoder.temporal", 0, MAX_TEMPORAL_KERNEL)
    if temporal and temporal % 2 == 0:
        raise SchemaError(f"{where}.encoder.temporal", f"must be 0 or an odd kernel size, got {temporal}")
    if values > MAX_INPUT_VALUES:
        raise SchemaError(f"{where}.preprocessing", f"one input holds {values:,} values {shape}, above {MAX_INPUT_VALUES:,}")
    first = channels[0] * math.prod(shape[1:])
    if first > MAX_FIRST_LAYER_VALUES:
        raise SchemaError(f"{where}.encoder.channels",
                          f"the first layer's output would hold {first:,} values per sample, above {MAX_FIRST_LAYER_VALUES:,}")
    return name


def validate_manifest(manifest: Any) -> None:
    """Raise SchemaError naming the first value outside its documented range (see the module doc)."""
    top = _dict(manifest, "manifest")
    depth = json_depth(top)
    if depth > MAX_JSON_DEPTH:
        raise SchemaError("manifest", f"nested more than {MAX_JSON_DEPTH} levels deep")
    if "name" not in top:
        raise SchemaError("manifest", "has no 'name'")
    _text(top["name"], "name")
    if "model" not in top:
        raise SchemaError("manifest", "has no 'model' entry")
    model = _dict(top["model"], "model")
    for key in ("name", "labels", "modalities"):
        if key not in model:
            raise SchemaError("model", f"has no {key!r}")
    _text(model["name"], "model.name")
    labels = _list(model["labels"], "model.labels", 2, MAX_LABELS)
    for i, label in enumerate(labels):
        _text(label, f"model.labels[{i}]")
    if len(set(labels)) != len(labels):
        raise SchemaError("model.labels", "has duplicate labels")
    mods = _list(model["modalities"], "model.modalities", 2, MAX_MODALITIES)
    names = [_modality(m, f"model.modalities[{i}]") for i, m in enumerate(mods)]
    if len(set(names)) != len(names):
        raise SchemaError("model.modalities", f"input names must be distinct, got {names}")
    if "confidence_scale" in model:
        _number(model["confidence_scale"], "model.confidence_scale", 0.0, 1000.0, lo_open=True)
    if "detach_weights" in model:
        _bool(model["detach_weights"], "model.detach_weights")
    if "weight_floor" in model:
        _number(model["weight_floor"], "model.weight_floor", 0.0, 1000.0)
    # The free-form sections, where the app reads them (qmf info prints these).
    for key in ("description", "app_version", "created"):
        if key in top:
            _text(top[key], key, 100_000, lo=0)
    if "evaluation" in top:
        evaluation = _dict(top["evaluation"], "evaluation")
        if "validation" in evaluation:
            for k, v in _dict(evaluation["validation"], "evaluation.validation").items():
                _number(v, f"evaluation.validation.{k}", -math.inf, math.inf)
    if "provenance" in top:
        provenance = _dict(top["provenance"], "provenance")
        if "credits" in provenance:
            for i, credit in enumerate(_list(provenance["credits"], "provenance.credits", 0, 1000)):
                _text(credit, f"provenance.credits[{i}]", 10_000, lo=0)
    if "calibration" in top:  # read by the predictor (app/qmf/calibration.py): percentiles and the unfamiliar mark
        _calibration(top["calibration"], names)


def _calibration(value: Any, inputs: list[str]) -> None:
    cal = _dict(value, "calibration")
    if cal.get("version") != 1:
        return  # another version: the predictor ignores it (no percentile, no mark)
    _number(cal.get("unfamiliar_percentile"), "calibration.unfamiliar_percentile", 0.0, 100.0, lo_open=True, hi_open=True)
    for name, table in _dict(cal.get("modalities"), "calibration.modalities").items():
        where = f"calibration.modalities.{name}"
        if name not in inputs:
            raise SchemaError(where, f"is not an input of the model; inputs: {inputs}")
        t = _dict(table, where)
        pct = _list(t.get("percentiles"), f"{where}.percentiles", 2, 1001)
        quality = _list(t.get("quality"), f"{where}.quality", len(pct), len(pct))
        for i, (p, q) in enumerate(zip(pct, quality, strict=True)):
            _number(p, f"{where}.percentiles[{i}]", 0.0, 100.0)
            _number(q, f"{where}.quality[{i}]", -1e9, 1e9)
        if any(b < a for a, b in zip(pct, pct[1:], strict=False)) or any(b < a for a, b in zip(quality, quality[1:], strict=False)):
            raise SchemaError(where, "percentiles and quality must be non-decreasing")
        _number(t.get("unfamiliar_below"), f"{where}.unfamiliar_below", -1e9, 1e9)
