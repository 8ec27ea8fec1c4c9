"""The Predict page's file dialogs (open inputs, open a model) and exports (result JSON, charts PNG).

`PredictPage` takes these methods from `PageDialogsMixin`; they use its panels, settings, last result,
status line and chart splitter (app/gui/predict/page.py builds them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QMessageBox

from app.gui.predict import files as dialogs

__all__ = ["PageDialogsMixin"]


class PageDialogsMixin:
    def open_input_dialog(self, name: str) -> None:
        panel = self.panels.get(name)
        if panel is not None and (path := dialogs.open_file(self, self.settings, f"Open {name}", panel.file_filter())):
            self.set_files({name: path})

    def open_files_dialog(self) -> None:
        if paths := dialogs.open_files(self, self.settings, "Open input files", self.input_file_filter()):
            self.open_files(paths)

    def input_file_filter(self) -> str:
        """All the model's input types first, then one entry per input, then any file."""
        types = [p.type_filter() for p in self.panels.values() if p.type_filter()]
        patterns = " ".join(dict.fromkeys(t[t.index("(") + 1:-1] for t in types).keys())
        first = [f"Model inputs ({patterns})"] if patterns else []
        return ";;".join([*first, *dict.fromkeys(types), "All files (*)"])

    def open_model_dialog(self) -> None:
        if path := dialogs.open_file(self, self.settings, "Open model",
                                     "QMF Studio models (*.safetensors);;All files (*)"):
            self.open_model(path)

    def result_json(self) -> dict[str, Any] | None:
        """The shown result as `qmf predict --json` prints it (plus the corruptions and seed)."""
        if self.last_result is None:
            return None
        return {**self.last_result.prediction, "corruptions": self.last_result.corruptions,
                "seed": self.last_result.seed}

    def export_json(self, path: str | Path) -> None:
        data = self.result_json()
        if data is None:
            raise ValueError("there is no result to export yet")
        dialogs.write_json(path, data)

    def export_charts_png(self, path: str | Path) -> bool:
        return self.right_splitter.grab().save(str(path))

    def export_json_dialog(self) -> None:
        if self.last_result is None:
            QMessageBox.information(self, "Export", "There is no result to export yet.")
        elif path := dialogs.save_file(self, self.settings, "Export result", "prediction.json", "JSON (*.json)"):
            self.export_json(path)
            self._say(f"Saved {path}", 8000)

    def export_charts_dialog(self) -> None:
        if path := dialogs.save_file(self, self.settings, "Export charts", "qmf-charts.png", "PNG images (*.png)"):
            self._say(f"Saved {path}" if self.export_charts_png(path) else f"Could not write {path}", 8000)
