"""The main window: a shell around the Predict and Review pages.

It holds the tabs, the status bar, the window geometry and the menus, which it renders from the
table declared in `app.gui.actions`. Everything else belongs to a page: the Predict page owns the
model, the inputs, the predictions and the sweep (`app.gui.predict`); the Review page owns review
sessions (`app.gui.review`). A file dropped anywhere on the window goes to the Predict page's router;
a results folder of `qmf batch --engine ray` goes to the Review page.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QMargins, QRect, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QDragEnterEvent, QDropEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QMenu, QMessageBox, QScrollArea, QTabWidget, QWidget

import app
from app.gui import help as help_sheets
from app.gui.actions import MENUS, Action, Submenu
from app.gui.charts_import import _ChartsImport, charts_importer  # noqa: F401 - _ChartsImport: tests patch it here
from app.gui.predict import PredictPage
from app.gui.predict import files as dialogs
from app.gui.predict.model_card import model_card_html  # noqa: F401 - its old import path

if TYPE_CHECKING:  # pragma: no cover
    from app.gui.review import ReviewView

SETTINGS_ENV = "QMF_STUDIO_SETTINGS"
VIEWS_AT_THE_LATEST_MS = 2000  # deferred views: built after the first paint, or this long after show()
CHARTS_AFTER_MODEL_MS = 1000  # with no first result, pyqtgraph's import starts this long after the model settled
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
    """QMF Studio's main window. `model_path=None` opens the bundled model.

    `defer_views=True` (what `qmf-studio` uses) shows the window before the Predict page's charts and
    previews exist: they are built in the event-loop turn after the first paint (`viewsBuilt` then),
    while the model loads in the worker, and pyqtgraph (the sweep's plot) after the first result.
    The Review page is built the first time it is needed (its tab, a Review action, `window.review`).
    `header_in_worker=True` (`qmf-studio` too): the model file's header is read and checked in the
    worker as well (`PredictPage.open_model_in_worker`), so the window shows without waiting for the
    decoders that checking it imports; the model line and panels follow when it is in.
    """

    closed = Signal()
    firstPainted = Signal()  # the window's first paint has begun (start-up timing)
    viewsBuilt = Signal()  # the Predict page's charts and input panels exist
    fit_screen = True  # False: keep the size asked for (--screenshot renders off-screen at a fixed size)
    predict: PredictPage | None = None  # palette events arrive during construction, before the pages
    _review: ReviewView | None = None

    def __init__(self, model_path: str | Path | None = None, settings: QSettings | None = None,
                 parent: QWidget | None = None, defer_views: bool = False, header_in_worker: bool = False,
                 prefetch: dict[str, str | None] | None = None):
        super().__init__(parent)
        self.settings = settings if settings is not None else make_settings()
        self.setWindowTitle("QMF Studio")
        self.setAcceptDrops(True)
        self._painted = False
        self.predict = PredictPage(self.settings, defer_views=defer_views)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.predict, "Predict")
        self._review_area = _scrolling(QWidget())
        self.tabs.addTab(self._review_area, "Review")
        self.tabs.currentChanged.connect(lambda index: self.review if index == 1 else None)
        self.setCentralWidget(self.tabs)

        status = self.statusBar()
        for widget in self.predict.status_widgets():
            status.addPermanentWidget(widget)
        self.predict.statusMessage.connect(self._show_status)
        self.review_status = QLabel("")  # a review run's progress, seen from either tab
        self.review_status.setVisible(False)
        status.addPermanentWidget(self.review_status)
        self.predict.titleChanged.connect(
            lambda name: self.setWindowTitle(window_title(name)))

        self.actions_by_id: dict[str, QAction] = {}
        self._render_menus()
        self._restore_geometry()
        # The worker starts loading the model now, before the first paint; `prefetch`: the first pair,
        # decoded beside the load.
        if header_in_worker:  # the panels are built when the header arrives
            self.predict.open_model_in_worker(model_path, prefetch)
        elif self.predict.open_model(model_path) and prefetch:
            self.predict.service.prefetch(self.predict.manifest["model"]["modalities"], prefetch)

    @property
    def review(self) -> ReviewView:
        """The Review page, built on first use (it is not what the window opens on)."""
        if self._review is None:
            from app.gui.review import ReviewView

            self._review = ReviewView(model_path_provider=self._model_for_review, settings=self.settings)
            self._review.statusMessage.connect(self._show_status)
            self._review.runStatus.connect(self._show_review_status)
            self._review.openPairInPredict.connect(self._open_pair_in_predict)
            self._review_area.takeWidget().deleteLater()
            self._review_area.setWidget(self._review)
        return self._review

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().paintEvent(event)
        if not self._painted:
            self._painted = True
            self.firstPainted.emit()
            if not self.predict.views_built:  # the next turn of the event loop, after this frame
                QTimer.singleShot(0, self._import_charts)

    def _import_charts(self) -> None:
        """The views now (they draw with QPainter: no pyqtgraph), then pyqtgraph (~0.4 s, for the sweep's
        plot alone) in a thread of its own once the first result is shown (or CHARTS_AFTER_MODEL_MS after
        the model settled, when no result comes); the page builds the sweep's plot when it is in.

        Imported in this thread, it would keep the event loop from turning until it is done; beside the
        model load or the first prediction, the two would take turns at Python's lock and both end late
        (gui_bench). The import makes types and functions only; every chart is built in this thread."""
        self.build_views()
        self.predict.charts_import_pending = True
        importer = charts_importer()
        importer.done.connect(self.predict.charts_imported, Qt.ConnectionType.SingleShotConnection)
        started = []

        def start(*_args) -> None:
            if not started:
                started.append(True)
                QTimer.singleShot(0, self, importer.start)  # not inside the result's signal emission

        self.predict.resultShown.connect(start, Qt.ConnectionType.SingleShotConnection)
        self.predict.model.when_settled(lambda: QTimer.singleShot(CHARTS_AFTER_MODEL_MS, self, start))

    def build_views(self) -> None:
        """Build the Predict page's charts and panels now, if they are not built yet."""
        if self.predict.views_built:
            return
        self.predict.build_views()
        self.predict.apply_palette()
        gc.freeze()  # pyqtgraph and the views stay: later collections need not walk them (see app.gui.collector)
        self.viewsBuilt.emit()

    def when_views_built(self, then: Callable[[], None]) -> None:
        """Call `then` once the Predict page has its panels: now, or after the deferred build."""
        if self.predict.views_built:
            then()
            return

        def once() -> None:
            self.viewsBuilt.disconnect(once)
            then()

        self.viewsBuilt.connect(once)

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
        if owner == "review":  # looked up when used: the page is built on first use
            return lambda *args: getattr(self.review, method)(*args)
        return getattr({"window": self, "predict": self.predict}[owner], method)

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
            if not self.predict.views_built:  # a window shown but never painted (minimised) still gets them
                QTimer.singleShot(VIEWS_AT_THE_LATEST_MS, self.build_views)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange) and \
                self.predict is not None:
            self.predict.apply_palette()
            if self._review is not None:
                self._review.summary_panel.apply_palette()
        super().changeEvent(event)

    def confirm_quit_during_run(self) -> bool:
        """Asked before closing while a review run goes on (its results so far are kept either way)."""
        answer = QMessageBox.question(
            self, "Quit during a review run?",
            "A review run is going on. Quit now? The results so far are saved in the session; "
            "reopen it later and press Resume to finish.")
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event) -> None:
        if self._review is not None and self._review.running and not self.confirm_quit_during_run():
            event.ignore()
            return
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.predict.save_state()
        self.settings.sync()
        self.predict.shutdown()
        super().closeEvent(event)
        self.closed.emit()
