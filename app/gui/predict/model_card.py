"""The model card: the manifest of the open model as a readable page (Model ▸ Model card…)."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from app.qmf.config import ModalityConfig

__all__ = ["model_card_dialog", "model_card_html"]


def model_card_dialog(manifest: dict[str, Any], parent: QWidget | None = None) -> QDialog:
    dialog = QDialog(parent)
    dialog.setWindowTitle(f"Model card: {manifest.get('name', '?')}")
    dialog.resize(720, 640)
    layout = QVBoxLayout(dialog)
    browser = QTextBrowser()
    browser.setHtml(model_card_html(manifest))
    layout.addWidget(browser)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    buttons.rejected.connect(dialog.reject)
    layout.addWidget(buttons)
    return dialog


def model_card_html(manifest: dict[str, Any]) -> str:
    """The manifest as a readable page: labels, inputs, training recipe, figures, data credits."""
    e = html.escape
    m = manifest.get("model", {})
    parts = [f"<h2>{e(str(manifest.get('name', '?')))}</h2>"]
    if manifest.get("description"):
        parts.append(f"<p>{e(str(manifest['description']))}</p>")
    meta = [("file", manifest.get("path")), ("sha256", manifest.get("sha256")),
            ("created", manifest.get("created")), ("app version", manifest.get("app_version")),
            ("format", f"{manifest.get('format')} v{manifest.get('format_version')}")]
    parts.append("<table>" + "".join(f"<tr><td><b>{e(k)}</b></td><td>{e(str(v))}</td></tr>"
                                     for k, v in meta if v) + "</table>")
    labels = m.get("labels", [])
    parts.append(f"<h3>Labels ({len(labels)})</h3><p>{e(', '.join(map(str, labels)))}</p>")
    parts.append("<h3>Inputs and preprocessing</h3><ul>")
    for spec in m.get("modalities", []):
        pre = ", ".join(f"{k}={v}" for k, v in (spec.get("preprocessing") or {}).items())
        encoder = ModalityConfig(str(spec['name']), str(spec.get('kind', '?')), encoder=spec.get("encoder") or {})
        parts.append(f"<li><b>{e(spec['name'])}</b> ({e(spec.get('kind', '?'))}): {e(pre)}<br>"
                     f"encoder: {e(encoder.describe_encoder())}</li>")
    parts.append("</ul>")
    parts.append(f"<p>Fusion: energy-weighted (QMF), confidence scale {e(str(m.get('confidence_scale', '?')))}, "
                 f"weights detached: {e(str(m.get('detach_weights', '?')))}, "
                 f"weight floor {e(str(m.get('weight_floor', 0.0)))}</p>")
    training = manifest.get("training") or {}
    if training:
        recipe = training.get("recipe") or {}
        t = recipe.get("training") or {}
        summary = {k: v for k, v in t.items() if not isinstance(v, list | dict)}
        parts.append("<h3>Training</h3><table>")
        for k, v in {**summary, "best epoch": training.get("best_epoch"), "epochs run": training.get("epochs_run"),
                     "seconds": training.get("seconds"), "device": training.get("device")}.items():
            if v is not None:
                parts.append(f"<tr><td><b>{e(str(k))}</b></td><td>{e(str(v))}</td></tr>")
        parts.append("</table>")
        if t.get("augment"):
            parts.append(f"<p>Augmentation: <code>{e(json.dumps(t['augment']))}</code></p>")
    evaluation = manifest.get("evaluation")
    if evaluation:
        parts.append("<h3>Evaluation</h3>")
        headline = _headline_figures(evaluation) if isinstance(evaluation, dict) else []
        if headline:
            parts.append("<table>")
            parts += [f"<tr><td><b>{e(k)}</b></td><td>{e(v)}</td></tr>" for k, v in headline]
            parts.append("</table><p>All figures:</p>")
        parts.append(f"<pre>{e(json.dumps(evaluation, indent=1))}</pre>")
    provenance = manifest.get("provenance")
    parts.append("<h3>Data and credits</h3>")
    credits = provenance.get("credits") if isinstance(provenance, dict) else None
    if isinstance(credits, list) and credits:
        parts.append("<ul>" + "".join(f"<li>{e(str(c))}</li>" for c in credits) + "</ul>")
    if provenance:
        rest = {k: v for k, v in provenance.items() if k != "credits"} if isinstance(provenance, dict) else provenance
        if rest:
            parts.append(f"<pre>{e(json.dumps(rest, indent=1))}</pre>")
    else:
        parts.append("<p>(no data credits recorded in this model)</p>")
    return "".join(parts)


def _headline_figures(evaluation: dict[str, Any]) -> list[tuple[str, str]]:
    """The figures that read as one line each: numbers, and small tables of numbers."""
    def number(v: int | float) -> str:  # counts in full (10,000, not 1e+04), measurements to 4 digits
        return f"{v:,}" if isinstance(v, int) else f"{v:.4g}"

    rows = []
    for key, value in evaluation.items():
        if _is_number(value):
            rows.append((key.replace("_", " "), number(value)))
        elif isinstance(value, dict) and 0 < len(value) <= 12 and all(_is_number(v) for v in value.values()):
            rows.append((key.replace("_", " "), ", ".join(f"{k} {number(v)}" for k, v in value.items())))
        elif isinstance(value, dict) and isinstance(value.get("per_speaker"), dict):
            rows.append((key.replace("_", " "), _per_speaker_line(value["per_speaker"], number)))
    return rows


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# the figures of a leave-one-speaker-out entry (scripts/run_loso.py) that its one line shows, in this order
_SPEAKER_FIGURES = (("audio_branch_accuracy", "branch"), ("fused_accuracy_unseen_speaker_approx", "fused"))


def _per_speaker_line(per_speaker: dict[str, Any], number: Callable[[int | float], str]) -> str:
    """One held-out speaker after another: 'jackson: branch 0.884, fused 0.998; lucas: …'."""
    parts = []
    for speaker, figures in sorted(per_speaker.items()):
        if not isinstance(figures, dict):
            continue
        shown = [f"{label} {number(figures[k])}" for k, label in _SPEAKER_FIGURES if _is_number(figures.get(k))]
        if shown:
            parts.append(f"{speaker}: " + ", ".join(shown))
    return "; ".join(parts) or "(no figures)"
