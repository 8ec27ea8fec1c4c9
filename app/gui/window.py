"""The main window: a shell around the Predict and Review pages.

It holds the tabs, the status bar, the window geometry and the menus, which it renders from the
table declared in `app.gui.actions`. Everything else belongs to a page: the Predict page owns the
model, the inputs, the predictions and the sweep (`app.gui.predict`); the Review page owns review
sessions (`app.gui.review`). A file dropped anywhere on the window goes to the Predict page's router;
a results folder of `qmf batch --engine ray` goes to the Review page.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QMargins, QRect, QSettings, Signal
from PySide6.QtGui import QAction, QDragEnterEvent, QDropEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QMenu, QMessageBox, QScrollArea, QTabWidget, QWidget

import app
from app.gui import help as help_sheets
from app.gui.actions import MENUS, Action, Submenu
from app.gui.predict import PredictPage
from app.gui.predict import files as dialogs
from app.gui.predict.model_card import model_card_html  # noqa: F401 - its old import path
from app.gui.review import ReviewView

SETTINGS_ENV = "QMF_STUDIO_SETTINGS"
DEFAULT_SIZE = (1360, 860)
# The window manager's frame around a window not yet shown (title bar, borders): room kept for it so
# that the frame, not only the client area, fits the screen. Replaced by the real one once shown.
FRAME_ALLOWANCE = QMargins(4, 32, 4, 4)


def fit_rect(want: QRect, available: QRect, frame: QMargins | None = None) -> QRect:
    """`want` (client area) shrunk and moved so that it plus its `frame` lies inside `available`.

    Both in device-independent pixels (`QScreen.availableGeometry`): with QT_SCALE_FACTOR=2 a
    1600×1000 screen is 800×500 of them.
    """
    frame = QMargins() if frame is None else frame
    room_w = available.width() - frame.left() - frame.right()
    room_h = available.height() - frame.top() - frame.bottom()
    w, h = max(1, min(want.width(), room_w)), max(1, min(want.height(), room_h))
    x = min(max(want.x(), available.left() + frame.left()), available.left() + frame.left() + room_w - w)
    y = min(max(want.y(), available.top() + frame.top()), available.top() + frame.top() + room_h - h)
    return QRect(x, y, w, h)

CREDITS_HTML = (
    "<p>The bundled model is trained on <b>AV-MNIST</b>, built from "
    "<b>MNIST</b> handwritten digits (Y. LeCun, C. Cortes, C. J. C. Burges; CC BY-SA 3.0) and the "
    "<b>Free Spoken Digit Dataset</b> (Zohar Jackson et al.; CC BY-SA 4.0).</p>"
)


def make_settings() -> QSettings:
    """The app's settings; `QMF_STUDIO_SETTINGS=/path/file.ini` redirects them (tests, portable use)."""
    path = os.environ.get(SETTINGS_ENV)
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings("QMF Studio", "QMF Studio")


def window_title(model_name: str) -> str:
    """"avmnist-qmf — QMF Studio". The app's name comes last: where the application display name is
    set (main() sets it) Qt appends it to every title that does not already end with it."""
    return f"{model_name} — QMF Studio" if model_name else "QMF Studio"


def _scrolling(page: QWidget) -> QScrollArea:
    """A page that scrolls below its minimum size instead of making the window outgrow the screen."""
    area = QScrollArea(widgetResizable=True, frameShape=QScrollArea.Shape.NoFrame)
    area.setWidget(page)
    return area


class MainWindow(QMainWindow):
    """QMF Studio's main window. `model_path=None` opens the bundled model."""

    closed = Signal()
    fit_screen = True  # False: keep the size asked for (--screenshot renders off-screen at a fixed size)
    predict: PredictPage | None = None  # palette events arrive during construction, before the pages
    review: ReviewView | None = None

    def __init__(self, model_path: str | Path | None = None, settings: QSettings | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.settings = settings if settings is not None else make_settings()
        self.setWindowTitle("QMF Studio")
        self.setAcceptDrops(True)
        self.predict = PredictPage(self.settings)
        self.review = ReviewView(model_path_provider=self._model_for_review, settings=self.settings)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.predict, "Predict")
        self.tabs.addTab(_scrolling(self.review), "Review")
        self.setCentralWidget(self.tabs)

        status = self.statusBar()
        for widget in self.predict.status_widgets():
            status.addPermanentWidget(widget)
        self.predict.statusMessage.connect(self._show_status)
        self.review.statusMessage.connect(self._show_status)
        self.review_status = QLabel("")  # a review run's progress, seen from either tab
        self.review_status.setVisible(False)
        status.addPermanentWidget(self.review_status)
        self.review.runStatus.connect(self._show_review_status)
        self.review.openPairInPredict.connect(self._open_pair_in_predict)
        self.predict.titleChanged.connect(
            lambda name: self.setWindowTitle(window_title(name)))

        self.actions_by_id: dict[str, QAction] = {}
        self._render_menus()
        self._restore_geometry()
        self.predict.open_model(model_path)

    def _model_for_review(self) -> Path | None:
        """The Review tab runs the model the Predict tab has open."""
        return Path(self.predict.model_path) if self.predict.model_path else None

    def _show_review_status(self, text: str) -> None:
        self.review_status.setText(text)
        self.review_status.setVisible(bool(text))

    def _open_pair_in_predict(self, files: dict[str, str]) -> None:
        self.predict.load_pair(files)
        self.show_predict_tab()

    def _show_status(self, text: str, ms: int) -> None:
        if text:
            self.statusBar().showMessage(text, ms)
        else:
            self.statusBar().clearMessage()

    # --- menus, rendered from app.gui.actions ------------------------------------------------------
    def _slot(self, name: str) -> Callable:
        owner, _, method = name.partition(".")
        return getattr({"window": self, "predict": self.predict, "review": self.review}[owner], method)

    def _add_action(self, menu: QMenu, spec: Action) -> QAction:
        action = QAction(spec.text, self)
        if spec.shortcut is not None:
            action.setShortcut(QKeySequence(spec.shortcut))
        if spec.tip:
            action.setStatusTip(spec.tip)
            action.setToolTip(spec.tip)
        action.setCheckable(spec.checkable)
        action.setChecked(spec.checked)
        action.setEnabled(spec.enabled)
        if spec.slot is not None:
            slot = self._slot(spec.slot) if isinstance(spec.slot, str) else spec.slot
            if spec.checkable:
                action.toggled.connect(slot)
            else:
                action.triggered.connect(lambda _=False, s=slot: s())
        menu.addAction(action)
        if spec.id:
            self.actions_by_id[spec.id] = action
        return action

    def _fill(self, menu: QMenu, items) -> None:
        menu.clear()
        for item in items:
            if item is None:
                menu.addSeparator()
            elif isinstance(item, Submenu):
                self._add_submenu(menu, item)
            else:
                self._add_action(menu, item)

    def _add_submenu(self, parent: QMenu, spec: Submenu) -> None:
        menu = parent.addMenu(spec.text)
        menu.setToolTipsVisible(True)  # e.g. the recent pairs' full paths
        self.menus_by_id[spec.id] = menu
        provider = self._slot(spec.provider)
        if spec.refill == "inputs":
            self.predict.inputsChanged.connect(lambda: self._fill(menu, provider()))
            self._fill(menu, provider())
        else:
            menu.aboutToShow.connect(lambda: self._fill(menu, provider()))

    def _render_menus(self) -> None:
        self.menus_by_id: dict[str, QMenu] = {}
        bar = self.menuBar()
        for spec in MENUS:
            self._fill(bar.addMenu(spec.text), spec.items)

    def fill_menu(self, menu_id: str) -> QMenu:
        """Fill a submenu now, as when it opens (tests and screenshots)."""
        menu = self.menus_by_id[menu_id]
        menu.aboutToShow.emit()
        return menu

    # --- window-level commands -----------------------------------------------------------------------
    def export_window_png(self, path: str | Path) -> bool:
        return self.grab().save(str(path))

    def export_window_dialog(self) -> None:
        if path := dialogs.save_file(self, self.settings, "Export window", "qmf-studio.png", "PNG images (*.png)"):
            ok = self.export_window_png(path)
            self.statusBar().showMessage(f"Saved {path}" if ok else f"Could not write {path}", 8000)

    def show_about(self) -> None:
        QMessageBox.about(
            self,
            "About QMF Studio",
            f"<h3>QMF Studio {app.__version__}</h3>"
            "<p>See how a multimodal model trusts each of its inputs: Quality-aware Multimodal Fusion "
            "(Zhang et al., <i>Provable Dynamic Fusion for Low-Quality Multimodal Data</i>, ICML 2023).</p>"
            + CREDITS_HTML,
        )

    def show_shortcuts(self) -> QWidget:
        return help_sheets.show_shortcuts(self, {"open_input": self.predict.open_input_actions()})

    def show_user_guide(self) -> QWidget:
        return help_sheets.show_user_guide(self)

    def open_results_folder_dialog(self) -> None:
        self.show_review_tab()
        self.review.results_folder.dialog()

    def open_results_folder(self, folder: str | Path, session_path: str | Path | None = None) -> str | None:
        """Show the Review tab and open a Ray results folder there; the one-line refusal, or None."""
        self.show_review_tab()
        return self.review.results_folder.open(folder, session_path)

    def show_predict_tab(self) -> None:
        self.tabs.setCurrentIndex(0)

    def show_review_tab(self) -> None:
        self.tabs.setCurrentIndex(1)

    def toggle_full_screen(self) -> None:
        self.showNormal() if self.isFullScreen() else self.showFullScreen()

    # --- drops: anywhere on the window, routed by the Predict page (results folders: Review) ---------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        from app.review.results_dir import is_results_folder

        if len(paths) == 1 and is_results_folder(paths[0]):
            self.open_results_folder(paths[0])
        else:
            self.predict.open_files(paths)

    # --- geometry, palette, shutdown -----------------------------------------------------------------
    def _restore_geometry(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(*DEFAULT_SIZE)
        self.fit_to_screen()
        self.predict.restore_state()

    def fit_to_screen(self) -> None:
        """Keep the whole window (frame included) on the screen's available area, whatever was
        restored or asked for: a 1360×860 default overflows a 1366×768 laptop screen."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        if not self.fit_screen or screen is None or self.isMaximized() or self.isFullScreen():
            return
        frame = FRAME_ALLOWANCE
        if self.isVisible():
            outer, inner = self.frameGeometry(), self.geometry()
            frame = QMargins(inner.left() - outer.left(), inner.top() - outer.top(),
                             outer.right() - inner.right(), outer.bottom() - inner.bottom())
        fitted = fit_rect(self.geometry(), screen.availableGeometry(), frame)
        if fitted != self.geometry():
            self.setGeometry(fitted)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if not getattr(self, "_fitted_when_shown", False):  # the real frame is known now
            self._fitted_when_shown = True
            self.fit_to_screen()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange) and \
                self.predict is not None:
            self.predict.apply_palette()
            if self.review is not None:
                self.review.summary_panel.apply_palette()
        super().changeEvent(event)

    def confirm_quit_during_run(self) -> bool:
        """Asked before closing while a review run goes on (its results so far are kept either way)."""
        answer = QMessageBox.question(
            self, "Quit during a review run?",
            "A review run is going on. Quit now? The results so far are saved in the session; "
            "reopen it later and press Resume to finish.")
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event) -> None:
        if self.review.running and not self.confirm_quit_during_run():
            event.ignore()
            return
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.predict.save_state()
        self.settings.sync()
        self.predict.shutdown()
        super().closeEvent(event)
        self.closed.emit()
