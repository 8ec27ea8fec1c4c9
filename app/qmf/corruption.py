"""The `MODALITY:KIND:LEVEL` degradation spec of `qmf predict --corrupt` and `qmf-studio --corrupt`.

Apart from the predictor (which imports torch) so the desktop app can parse its command line
before torch is loaded.
"""

from __future__ import annotations

__all__ = ["Corruption", "parse_corruption"]

Corruption = tuple[str, str, float]  # (modality name, corruption kind, level 0..10)


def parse_corruption(text: str) -> Corruption:
    """Parse `MODALITY:KIND:LEVEL`, e.g. `audio:white_noise:5`."""
    parts = text.split(":")
    if len(parts) != 3:
        raise ValueError(f"corruption {text!r} should look like MODALITY:KIND:LEVEL, e.g. audio:white_noise:5")
    name, kind, level_text = parts
    try:
        level = float(level_text)
    except ValueError:
        raise ValueError(f"corruption {text!r}: level {level_text!r} is not a number (0 to 10)") from None
    if not 0 <= level <= 10:
        raise ValueError(f"corruption {text!r}: level must be between 0 and 10")
    return name, kind, level
