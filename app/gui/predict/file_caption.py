"""The one-line caption under an input's preview: the file as it is on disk (size, format) and what the
model sees of it (`describe_file`, run by the prediction worker after a file decoded)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["describe_file"]


def describe_file(kind: str, path: Path, raw: np.ndarray, params: dict[str, Any]) -> str:
    """One line about the file as it is on disk (size, format), for the panel's caption."""
    try:
        if kind == "image":
            from PIL import Image

            with Image.open(path) as im:
                w, h, fmt, mode = im.width, im.height, im.format or "?", im.mode
            shape = "×".join(str(v) for v in getattr(raw, "shape", ())[:2][::-1])
            return f"{w}×{h} {fmt} ({mode}); the model sees {shape}"
        if kind == "audio":
            import soundfile as sf

            i = sf.info(str(path))
            return (f"{i.duration:.2f} s, {i.samplerate} Hz, {i.channels} ch {i.format}"
                    f" → {params.get('sample_rate', '?')} Hz mono")
        if kind == "text":
            return f"{len(raw)} words"
    except Exception:  # noqa: BLE001 - the caption is a nicety; the decode already succeeded
        pass
    return f"{path.suffix.lstrip('.').upper() or 'file'}, {path.stat().st_size} bytes"
