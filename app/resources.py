"""Where the app's own files are, and the demo pairs: one locator for the app, the self-test and the CLI.

`resources/` sits next to `app/` in a checkout and under `sys._MEIPASS` in a frozen (PyInstaller)
build. The demo index `resources/samples/samples.json` is a list of
`{"id", "title", "files": {input: file name}, "expected", "note"}` (or `{"samples": [...]}`), file
names relative to the index; `read_demo_samples` returns the entries with absolute paths. No Qt,
no torch.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_MODEL_NAME", "default_model_path", "icon_path", "read_demo_samples", "resources_dir",
           "samples_dir"]

DEFAULT_MODEL_NAME = "avmnist-qmf.safetensors"
SAMPLES_INDEX = "samples.json"


def resources_dir() -> Path:
    """The folder with bundled models, samples and icons."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parents[1] / "resources"


def default_model_path() -> Path:
    """The bundled model (opened when the user names none)."""
    return resources_dir() / "models" / DEFAULT_MODEL_NAME


def samples_dir() -> Path:
    """The folder of the demo pairs and their index."""
    return resources_dir() / "samples"


def icon_path() -> Path:
    return resources_dir() / "icons" / "qmf-studio.png"


def read_demo_samples(folder: str | Path | None = None) -> list[dict[str, Any]]:
    """The demo pairs listed in `folder/samples.json` (default: the bundled ones), file paths made
    absolute. ValueError, one line naming the index, when it is missing, unreadable or lists none."""
    folder = Path(folder).resolve() if folder is not None else samples_dir()
    index = folder / SAMPLES_INDEX
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{index}: not found (no demo samples installed)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{index}: cannot be read: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("samples"), list):
        data = data["samples"]
    if not isinstance(data, list):
        raise ValueError(f"{index}: expected a list of demo pairs")
    pairs = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("files"), dict):
            raise ValueError(f"{index}: entry {i} has no 'files' object")
        files = {name: str((folder / rel).resolve()) for name, rel in item["files"].items() if rel}
        pairs.append({**item, "files": files})
    if not pairs:
        raise ValueError(f"{index}: lists no demo pairs")
    return pairs
