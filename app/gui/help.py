"""Help ▸ Keyboard shortcuts and Help ▸ User guide: sheets shown in the window, made from one source
each (the declared actions in `app.gui.actions`; docs/user-guide.md, found by `app.resources`)."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from app.gui.actions import Action, shortcuts_html
from app.resources import user_guide_path

__all__ = ["show_shortcuts", "show_user_guide", "sheet"]


def sheet(parent: QWidget, title: str, size: tuple[int, int]) -> tuple[QDialog, QTextBrowser]:
    dialog = QDialog(parent)
    dialog.setWindowTitle(title)
    layout = QVBoxLayout(dialog)
    browser = QTextBrowser()
    browser.setOpenExternalLinks(True)
    layout.addWidget(browser)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    buttons.rejected.connect(dialog.reject)
    layout.addWidget(buttons)
    dialog.resize(*size)
    return dialog, browser


def show_shortcuts(parent: QWidget, submenus: dict[str, list[Action | None]] | None = None) -> QDialog:
    dialog, browser = sheet(parent, "Keyboard shortcuts", (560, 560))
    browser.setHtml("<h3>Keyboard shortcuts</h3>" + shortcuts_html(submenus=submenus))
    dialog.setObjectName("shortcuts_sheet")
    dialog.show()
    return dialog


def show_user_guide(parent: QWidget) -> QDialog:
    dialog, browser = sheet(parent, "QMF Studio user guide", (720, 640))
    path = user_guide_path()
    try:
        browser.setMarkdown(path.read_text(encoding="utf-8"))
    except OSError as exc:
        browser.setPlainText(f"{path}: cannot read the user guide ({exc.strerror or exc}); "
                             "it is docs/user-guide.md in the source tree.")
    dialog.setObjectName("user_guide")
    dialog.show()
    return dialog
