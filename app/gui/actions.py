"""The menus and shortcuts of the main window, declared as data in one place; the window renders them.

Each entry names its handler as "<owner>.<method>": "window" is the main window, "predict" the
Predict page (as napari's `_qt/_qapp_model/qactions/` declare actions that the window only renders).
A `Submenu` is filled from its owner's `provider` method, which returns `Action`s whose `slot` is a
callable; it is refilled each time it opens, or, with `refill="inputs"`, whenever the model's inputs
change (its shortcuts must work before the menu was ever opened).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from PySide6.QtGui import QKeySequence

__all__ = ["MENUS", "Action", "Menu", "Submenu"]

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
        Action("&Export result as JSON…", "predict.export_json_dialog", "Ctrl+E"),
        Action("Export &charts as PNG…", "predict.export_charts_dialog", "Ctrl+Shift+E"),
        Action("Export &window as PNG…", "window.export_window_dialog", "F12"),
        None,
        Action("&Quit", "window.close", Std.Quit),
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
    Menu("&View", (
        Action("Show &sweep plot", "predict.show_sweep", "Ctrl+Shift+W", checkable=True, checked=True,
               id="sweep_toggle"),
        Action("&Full screen", "window.toggle_full_screen", Std.FullScreen),
    )),
    Menu("&Help", (
        Action("&About QMF Studio", "window.show_about"),
    )),
)
