"""File dialogs and exports of the Predict page: where the last folder is remembered, what is written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog, QWidget

LAST_FOLDER_KEY = "last_folder"


def last_folder(settings: QSettings) -> str:
    return str(settings.value(LAST_FOLDER_KEY, str(Path.home())))


def remember_folder(settings: QSettings, path: str | Path) -> None:
    """The folder of `path` is where the next file dialog opens."""
    settings.setValue(LAST_FOLDER_KEY, str(Path(path).parent))


def open_file(parent: QWidget, settings: QSettings, title: str, file_filter: str) -> str | None:
    path, _ = QFileDialog.getOpenFileName(parent, title, last_folder(settings), file_filter)
    if path:
        remember_folder(settings, path)
    return path or None


def open_files(parent: QWidget, settings: QSettings, title: str, file_filter: str = "") -> list[str]:
    paths, _ = QFileDialog.getOpenFileNames(parent, title, last_folder(settings), file_filter)
    if paths:
        remember_folder(settings, paths[0])
    return list(paths)


def save_file(parent: QWidget, settings: QSettings, title: str, name: str, file_filter: str) -> str | None:
    path, _ = QFileDialog.getSaveFileName(parent, title, str(Path(last_folder(settings)) / name), file_filter)
    if path:
        remember_folder(settings, path)
    return path or None


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    """The shown result, as `qmf predict --json` prints it (plus the corruptions and seed)."""
    Path(path).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
