"""The menus and shortcuts of the main window, declared as data in one place; the window renders them.

Each entry names its handler as "<owner>.<method>": "window" is the main window, "predict" the
Predict page, "review" the Review page (as napari's `_qt/_qapp_model/qactions/` declare actions that the window only renders).
A `Submenu` is filled from its owner's `provider` method, which returns `Action`s whose `slot` is a
callable; it is refilled each time it opens, or, with `refill="inputs"`, whenever the model's inputs
change (its shortcuts must work before the menu was ever opened).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from PySide6.QtGui import QKeySequence

__all__ = ["MENUS", "REVIEW_KEYS", "Action", "Key", "Menu", "Submenu", "shortcut_rows", "shortcuts_html"]

Shortcut = str | QKeySequence.StandardKey | None


@dataclass(frozen=True)
class Action:
    text: str
    slot: str | Callable[[], object] | None = None  # "owner.method", or a callable (in a provider's list)
    shortcut: Shortcut = None
    tip: str | None = None
    checkable: bool = False
    checked: bool = False
    enabled: bool = True
    id: str | None = None  # the window keeps rendered actions by id (window.action(id))


@dataclass(frozen=True)
class Submenu:
    text: str
    id: str
    provider: str  # "owner.method" returning list[Action | None]
    refill: Literal["show", "inputs"] = "show"


@dataclass(frozen=True)
class Menu:
    text: str
    items: tuple[Action | Submenu | None, ...]  # None: a separator


Std = QKeySequence.StandardKey

MENUS: tuple[Menu, ...] = (
    Menu("&File", (
        Action("&Open files…", "predict.open_files_dialog", Std.Open,
               "Open one or several input files; each goes to the panel for its type"),
        Submenu("Open &input", "open_input", "predict.open_input_actions", refill="inputs"),
        Submenu("&Recent pairs", "recent", "predict.recent_pair_actions"),
        Submenu("&Demo samples", "demo", "predict.demo_sample_actions"),
        None,
        Action("Open results &folder…", "window.open_results_folder_dialog",
               tip="Open the results of qmf batch --engine ray (a folder of Parquet shards) in the Review tab"),
        None,
        Action("&Export result as JSON…", "predict.export_json_dialog", "Ctrl+E"),
        Action("Export &charts as PNG…", "predict.export_charts_dialog", "Ctrl+Shift+E"),
        Action("Export &window as PNG…", "window.export_window_dialog", "F12"),
        None,
        Action("&Quit", "window.close", Std.Quit),
    )),
    Menu("&Edit", (
        Action("&Undo verdict or note", "review.undo", Std.Undo, "Undo the last verdict or note change (Review)"),
        Action("&Redo verdict or note", "review.redo", Std.Redo),
    )),
    Menu("&Model", (
        Action("&Open model…", "predict.open_model_dialog", "Ctrl+Shift+O",
               "Open another QMF Studio model (.safetensors)"),
        Action("Use the &bundled model", "predict.open_bundled_model"),
        Action("Model &card…", "predict.show_model_card", "Ctrl+I"),
        None,
        Action("&Predict again", "predict.request_prediction", "F5"),
        Action("&Sweep severity", "predict.run_sweep", "Ctrl+Shift+S"),
        Action("&Reset degradation", "predict.reset_degradation", "Ctrl+R"),
    )),
    Menu("&Review", (
        Submenu("Recent &sessions", "recent_sessions", "review.recent_session_actions"),
        Action("Reopen the &last session", "review.reopen_last_session", "Ctrl+Shift+L"),
        None,
        Action("Retry &errors", "review.retry_errors", tip="Run again the pairs that ended in an error"),
        Action("Export the table as &CSV…", "review.export_csv_dialog"),
        Action("Export the table as &Parquet…", "review.export_parquet_dialog",
               tip="The columns of qmf batch --parquet (needs pyarrow: pip install qmf-studio[distributed])"),
    )),
    Menu("&View", (
        Action("&Predict tab", "window.show_predict_tab", "Alt+1"),
        Action("&Review tab", "window.show_review_tab", "Alt+2"),
        None,
        Action("Show &sweep plot", "predict.show_sweep", "Ctrl+Shift+W", checkable=True, checked=True,
               id="sweep_toggle"),
        Action("&Full screen", "window.toggle_full_screen", Std.FullScreen),
    )),
    Menu("&Help", (
        Action("&Keyboard shortcuts", "window.show_shortcuts", "F1"),
        Action("&User guide", "window.show_user_guide"),
        None,
        Action("&About QMF Studio", "window.show_about"),
    )),
)


@dataclass(frozen=True)
class Key:
    """A Review-page key (bound by the page itself, on the table and the pair detail)."""

    keys: str
    command: str  # the page's command name (app/gui/review/view.py binds each)
    text: str


REVIEW_KEYS: tuple[Key, ...] = (
    Key("N", "next_flagged", "next flagged pair"),
    Key("Shift+N", "previous_flagged", "previous flagged pair"),
    Key("A", "accept", "accept the selected pair"),
    Key("R", "reject", "reject the selected pair"),
    Key("L", "relabel", "relabel the selected pair (to the label chosen next to the buttons)"),
    Key("Ctrl+F", "search", "search pair ids"),
    Key("Ctrl+C", "copy_rows", "copy the selected rows as tab-separated text (in the table)"),
)


def _shortcut_text(shortcut: Shortcut) -> str:
    if shortcut is None:
        return ""
    seq = QKeySequence(shortcut)
    return seq.toString(QKeySequence.SequenceFormat.NativeText)


def _plain(text: str) -> str:
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…")


def shortcut_rows(menus: tuple[Menu, ...] = MENUS, review_keys: tuple[Key, ...] = REVIEW_KEYS,
                  submenus: dict[str, list[Action | None]] | None = None) -> list[tuple[str, str, str]]:
    """(where, keys, what) for every declared shortcut: the menus' entries (and those of the submenus
    given by id, as their providers fill them now), then the Review page's keys."""
    rows = []
    for menu in menus:
        for item in menu.items:
            entries = [item]
            if isinstance(item, Submenu):
                entries = [a for a in (submenus or {}).get(item.id, []) if a is not None]
            for entry in entries:
                if isinstance(entry, Action) and (keys := _shortcut_text(entry.shortcut)):
                    rows.append((_plain(menu.text), keys, _plain(entry.text)))
    rows += [("Review", QKeySequence(k.keys).toString(QKeySequence.SequenceFormat.NativeText), k.text)
             for k in review_keys]
    return rows


def shortcuts_html(menus: tuple[Menu, ...] = MENUS, review_keys: tuple[Key, ...] = REVIEW_KEYS,
                   submenus: dict[str, list[Action | None]] | None = None) -> str:
    """The Help ▸ Keyboard shortcuts sheet, made from the tables above (never a copy that drifts)."""
    from html import escape

    body = "".join(f"<tr><td>{escape(where)}</td><td><b>{escape(keys)}</b></td><td>{escape(what)}</td></tr>"
                   for where, keys, what in shortcut_rows(menus, review_keys, submenus))
    return ("<table cellspacing='0' cellpadding='3'><tr><th align='left'>Where</th><th align='left'>Keys</th>"
            f"<th align='left'>What</th></tr>{body}</table>")
