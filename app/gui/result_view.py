"""`ResultView`: one prediction, shown as a person reads it.

The predicted label with its fused probability, the quality chart (each input's quality score and
share of the fusion weight), the probability chart and a table of the raw numbers; optionally small
previews of the inputs. Shared by the main window and the Review view, so its API is kept stable:

    view.set_modalities(manifest_modalities, labels=None)
    view.show_result(prediction_json, raw_inputs=None)
    view.clear()

`prediction_json` is exactly `Prediction.to_json()` (what `qmf predict --json` prints), so what the
view shows is what the command line prints.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.gui import style
from app.gui.charts import QUALITY_TOOLTIP, ProbabilityChart, QualityChart
from app.gui.labels import SteadyLabel
from app.gui.previews import Preview, make_preview
from app.qmf.calibration import UNFAMILIAR_MEANING

TABLE_COLUMNS = ["input", "prediction", "probability", "energy", "quality", "share", "percentile", "file"]
PERCENTILE_TOOLTIP = ("Where this quality falls among clean validation inputs (stored in the model file): "
                      "3 % = lower than 97 % of clean inputs. Below the model's threshold the input is marked "
                      f"unfamiliar: {UNFAMILIAR_MEANING}.")



def format_number(key: str, value: float) -> str:
    """How each figure is written in the table (tests compare against the same format)."""
    if key == "share":
        return f"{value:.1%}"
    return f"{value:.3f}"


class ResultView(QWidget):
    def __init__(self, parent: QWidget | None = None, show_previews: bool = True):
        super().__init__(parent)
        self.show_previews = show_previews
        self.modalities: list[dict[str, Any]] = []
        self.labels: list[str] = []
        self.prediction: dict[str, Any] | None = None
        self.previews: dict[str, Preview] = {}

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.headline = SteadyLabel("No prediction yet")
        font = QFont(self.headline.font())
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        self.headline.setFont(font)
        self.headline.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # a long message wraps instead of widening the window; a new text re-lays out nothing
        # unless it needs another height (SteadyLabel)
        self.detail = SteadyLabel("")
        self.detail.setTextFormat(Qt.TextFormat.RichText)  # always: plain messages are escaped, not guessed at
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.headline)
        layout.addWidget(self.detail)

        self.preview_box = QGroupBox("Inputs")
        self.preview_layout = QHBoxLayout(self.preview_box)
        self.preview_box.setVisible(show_previews)
        layout.addWidget(self.preview_box, 2)

        self.quality_chart = QualityChart()
        self.probability_chart = ProbabilityChart()
        charts = QSplitter(Qt.Orientation.Horizontal)
        charts.addWidget(self.quality_chart)
        charts.addWidget(self.probability_chart)
        charts.setChildrenCollapsible(False)
        charts.setStretchFactor(0, 1)  # equal halves: the quality chart's title and legend need the room
        charts.setStretchFactor(1, 1)
        self.charts = charts
        layout.addWidget(charts, 3)

        self.table = QTableWidget(0, len(TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels(TABLE_COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # the file column takes the room left and elides in the middle (the full path is its tooltip),
        # and the table is exactly as tall as its rows: the numbers are read without scrolling
        header.setSectionResizeMode(TABLE_COLUMNS.index("file"), QHeaderView.ResizeMode.Stretch)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.horizontalHeaderItem(TABLE_COLUMNS.index("quality")).setToolTip(QUALITY_TOOLTIP)
        self.table.horizontalHeaderItem(TABLE_COLUMNS.index("share")).setToolTip(QUALITY_TOOLTIP)
        layout.addWidget(self.table, 0)
        self._fit_table_height()

    # --- API ---------------------------------------------------------------------------------------
    def set_modalities(self, manifest_modalities: list[dict[str, Any]], labels: list[str] | None = None) -> None:
        """Rebuild for a model's inputs (the manifest's `model.modalities` list) and labels."""
        self.modalities = [dict(m) for m in manifest_modalities]
        names = [m["name"] for m in self.modalities]
        if labels is not None:
            self.labels = list(labels)
        self.quality_chart.set_modalities(names)
        self.probability_chart.set_modalities(names, self.labels)
        for preview in self.previews.values():
            self.preview_layout.removeWidget(preview)
            preview.deleteLater()
        self.previews = {}
        if self.show_previews:
            for m in self.modalities:
                preview = make_preview(m.get("kind", ""), m.get("preprocessing") or {})
                preview.setToolTip(f"{m['name']} ({m.get('kind', '?')}), as the model sees it")
                self.preview_layout.addWidget(preview)
                self.previews[m["name"]] = preview
        self.table.setRowCount(len(names) + 1)
        self._fit_table_height()
        self.clear()

    def _fit_table_height(self) -> None:
        rows = self.table.rowCount()
        height = self.table.horizontalHeader().sizeHint().height() + 2 * self.table.frameWidth()
        height += sum(self.table.verticalHeader().sectionSize(r) for r in range(rows))
        self.table.setFixedHeight(height)

    def show_result(self, prediction_json: dict[str, Any], raw_inputs: dict[str, np.ndarray] | None = None) -> None:
        """Show one prediction (`Prediction.to_json()`); `raw_inputs` feed the previews if shown."""
        p = prediction_json
        names = [m["name"] for m in self.modalities]
        if list(p.get("labels", self.labels)) != self.labels or list(p["modalities"]) != names:
            if list(p["modalities"]) != names:
                self.set_modalities([{"name": n, "kind": ""} for n in p["modalities"]], p.get("labels"))
            else:
                self.set_modalities(self.modalities, p.get("labels"))
        self.prediction = p
        self.headline.setText(f"Prediction: {p['label']}   (fused probability {p['probability']:.3f})")
        mods = p["modalities"]
        trusted = max(mods, key=lambda n: mods[n]["share"]) if mods else None
        parts = [f"{n}: {r['label']} {r['probability']:.2f}, share {r['share']:.0%}" for n, r in mods.items()]
        model = p.get("model", {})
        # The unfamiliar mark takes the place of the grey model line, so the view keeps its height while
        # a slider is dragged across the threshold (the charts' ranges are kept in pixels).
        unfamiliar = [f"{n}: unfamiliar — quality lower than {100 - (r.get('quality_percentile') or 0.0):.1f} % "
                      "of clean inputs" for n, r in mods.items() if r.get("unfamiliar")]
        second_line = ""
        if unfamiliar:
            second_line = f"<br><b style='color:{style.UNFAMILIAR}'>{html.escape(' · '.join(unfamiliar))}</b>"
        elif model:
            second_line = (f"<br><span style='color:gray'>model {model.get('name', '?')} "
                           f"(sha256 {str(model.get('sha256', ''))[:12]})</span>")
        self.detail.setText(
            " · ".join(parts)
            + (f" — the fusion trusts <b>{trusted}</b> most" if trusted else "")
            + second_line
        )
        self.quality_chart.set_values({n: r["quality"] for n, r in mods.items()},
                                      {n: r["share"] for n, r in mods.items()},
                                      range_key=tuple(r.get("file") for r in mods.values()),
                                      unfamiliar=[n for n, r in mods.items() if r.get("unfamiliar")])
        self.probability_chart.set_values({n: r["probabilities"] for n, r in mods.items()}, p["probabilities"])
        self._fill_table(p)
        if self.show_previews and raw_inputs is not None:
            for name, preview in self.previews.items():
                preview.show_raw(raw_inputs.get(name))

    def show_inputs(self, raw_inputs: dict[str, np.ndarray | None]) -> None:
        """Feed the previews (an input not in `raw_inputs` shows as empty); the numbers stay."""
        for name, preview in self.previews.items():
            preview.show_raw(raw_inputs.get(name))

    def clear(self, message: str = "No prediction yet", detail: str = "") -> None:
        """Empty the charts; `message` is the headline, `detail` (plain text, e.g. an error) goes below it."""
        self.prediction = None
        self.headline.setText(message)
        self.detail.setText(html.escape(detail, quote=False))
        self.quality_chart.clear_values()
        self.probability_chart.clear_values()
        for row in range(self.table.rowCount()):
            for col in range(self.table.columnCount()):
                item = self.table.item(row, col)
                if item is not None:
                    item.setText("")
        for preview in self.previews.values():
            preview.show_raw(None)

    def apply_palette(self) -> None:
        for chart in (self.quality_chart, self.probability_chart):
            chart.apply_palette()
        for preview in self.previews.values():
            preview.apply_palette()

    # --- helpers -----------------------------------------------------------------------------------
    def table_values(self) -> dict[str, dict[str, str]]:
        """The table as text, by row name and column (what the user reads)."""
        out = {}
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is None or not item.text():
                continue
            out[item.text()] = {
                TABLE_COLUMNS[c]: (self.table.item(row, c).text() if self.table.item(row, c) else "")
                for c in range(1, len(TABLE_COLUMNS))
            }
        return out

    def _fill_table(self, p: dict[str, Any]) -> None:
        rows = list(p["modalities"].items())
        if self.table.rowCount() != len(rows) + 1:
            self.table.setRowCount(len(rows) + 1)
            self._fit_table_height()
        # Each cell's change would be announced on its own, and each announcement re-measures the
        # columns (they fit their contents): a pair's ~15 changed cells cost ~10 ms. Announce once.
        model = self.table.model()
        was_blocked = model.blockSignals(True)
        try:
            self._fill_cells(p, rows)
        finally:
            model.blockSignals(was_blocked)
        model.dataChanged.emit(model.index(0, 0), model.index(model.rowCount() - 1, model.columnCount() - 1))

    def _fill_cells(self, p: dict[str, Any], rows: list[tuple[str, dict[str, Any]]]) -> None:
        def put(row: int, col: str, text: str, tip: str | None = None) -> None:
            # Reuse the cells: replacing items on every prediction (many per second while a slider
            # is dragged) costs more GUI time than everything else in this view.
            c = TABLE_COLUMNS.index(col)
            item = self.table.item(row, c)
            if item is None:
                item = QTableWidgetItem()
                if col not in ("input", "prediction", "file"):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, c, item)
            if item.text() != text:
                item.setText(text)
            if (tip or "") != item.toolTip():
                item.setToolTip(tip or "")

        for row, (name, r) in enumerate(rows):
            put(row, "input", name)
            put(row, "prediction", str(r["label"]))
            put(row, "probability", format_number("probability", r["probability"]))
            put(row, "energy", format_number("energy", r["energy"]), "E = −logsumexp(logits); lower = surer")
            put(row, "quality", format_number("quality", r["quality"]), QUALITY_TOOLTIP)
            put(row, "share", format_number("share", r["share"]), QUALITY_TOOLTIP)
            pct = r.get("quality_percentile")
            put(row, "percentile", "-" if pct is None else f"{pct:.1f}%",
                PERCENTILE_TOOLTIP + (" This input is marked unfamiliar." if r.get("unfamiliar") else ""))
            cell = self.table.item(row, TABLE_COLUMNS.index("percentile"))
            cell.setForeground(QColor(style.UNFAMILIAR) if r.get("unfamiliar") else self.table.palette().text().color())
            put(row, "file", r.get("file") or "(missing)", r.get("file") or None)
        row = len(rows)
        put(row, "input", "fused")
        put(row, "prediction", str(p["label"]))
        put(row, "probability", format_number("probability", p["probability"]))
        for col in ("energy", "quality", "share", "percentile", "file"):
            put(row, col, "")
        for c in range(len(TABLE_COLUMNS)):
            item = self.table.item(row, c)
            font = item.font()
            font.setBold(True)
            item.setFont(font)
