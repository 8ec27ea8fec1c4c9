"""Read a file, validate it, turn it into a model tensor, degrade it: one class per input kind.

Never imports Qt. See docs/architecture.md ("app/modalities").
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

from .audio import AudioModality
from .base import InputError, InputWarning, Modality
from .image import ImageModality
from .text import TextModality

_CLASSES: dict[str, type[Modality]] = {cls.kind: cls for cls in (ImageModality, AudioModality, TextModality)}
MODALITY_KINDS: tuple[str, ...] = tuple(_CLASSES)


def modality_class(kind: str) -> type[Modality]:
    """The class for a kind name; ValueError naming the valid kinds otherwise."""
    try:
        return _CLASSES[kind]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown modality kind {kind!r}; valid kinds: {', '.join(MODALITY_KINDS)}"
        ) from None


def get_modality(kind: str, params: Mapping[str, Any] | None = None) -> Modality:
    """A modality of `kind` with `params` (missing keys take the class defaults)."""
    return modality_class(kind)(params)


def kind_for_path(path: str | Path) -> str | None:
    """The modality kind that opens this file, by its suffix (case-insensitive); None if none does."""
    name = path.name if isinstance(path, PurePath) else PurePath(path).name  # a Path is parsed already
    dot = name.rfind(".")
    if not 0 < dot < len(name) - 1:  # no suffix, as pathlib's: not a leading dot, not a trailing one
        return None
    suffix = name[dot:].lower()
    for kind, cls in _CLASSES.items():
        if suffix in cls.extensions:
            return kind
    return None


__all__ = [
    "MODALITY_KINDS",
    "AudioModality",
    "ImageModality",
    "InputError",
    "InputWarning",
    "Modality",
    "TextModality",
    "get_modality",
    "kind_for_path",
    "modality_class",
]
