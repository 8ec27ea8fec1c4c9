"""The main window as a shell: it renders the declared menus, routes drops to the Predict page, shows
itself before torch loads, and saves a screenshot from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QImage, QKeySequence

from tests.gui.predict.test_page import TIMEOUT, assert_shows


def test_loading_state_is_visible_before_the_model_is_ready(qtbot, gui_model):
    from app.gui.window import MainWindow

    w = MainWindow(gui_model)
    qtbot.addWidget(w)
    assert not w.predict.model_ready
    assert "Loading model" in w.predict.model_status.text()
    assert list(w.predict.panels) == ["image", "audio"]  # built from the header, before the weights load
    with qtbot.waitSignal(w.predict.modelReady, timeout=TIMEOUT):
        pass
    w.close()


def test_drop_routes_files_by_type(qtbot, window, other_pair, core_predictor):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(other_pair["audio"]), QUrl.fromLocalFile(other_pair["image"])])
    event = QDropEvent(QPointF(200, 200), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.predict.resultShown, timeout=TIMEOUT):
        window.dropEvent(event)
    assert window.predict.panels["audio"].path == other_pair["audio"]
    assert window.predict.panels["image"].path == other_pair["image"]
    assert_shows(window, core_predictor.predict_files(other_pair))


def test_screenshot_option_writes_the_window(qapp, gui_model, pair, tmp_path):
    from app.gui.main import SCREENSHOT_SIZE, main

    out = tmp_path / "shot.png"
    code = main(["--screenshot", str(out), "--model", str(gui_model), "--image", pair["image"],
                 "--audio", pair["audio"]])
    assert code == 0
    image = QImage(str(out))
    assert not image.isNull()
    ratio = image.devicePixelRatio() or 1.0
    assert (round(image.width() / ratio), round(image.height() / ratio)) == SCREENSHOT_SIZE
    small = image.scaled(64, 64)
    colours = {small.pixel(x, y) for x in range(64) for y in range(64)}
    assert len(colours) > 10


def test_unexpected_exception_shows_details_and_the_app_continues(qtbot):
    from app.gui.errors import ErrorReporter

    reporter = ErrorReporter(show_dialogs=False)
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        reporter.excepthook(type(exc), exc, exc.__traceback__)
    qtbot.waitUntil(lambda: bool(reporter.reports), timeout=5000)
    summary, details = reporter.reports[0]
    assert "RuntimeError: boom" in summary and "Traceback" in details


def test_self_test_flag_dispatches_without_qt(monkeypatch, capsys):
    import sys
    import types

    from app.gui import main as gui_main

    calls = []
    fake = types.ModuleType("app.selftest")
    fake.run = lambda argv: calls.append(argv) or 0
    monkeypatch.setitem(sys.modules, "app.selftest", fake)
    assert gui_main.main(["--self-test"]) == 0
    assert calls


def test_readme_screenshot_is_committed():
    shot = Path(__file__).resolve().parents[2] / "docs" / "screenshot.png"
    if not shot.exists():
        pytest.skip("docs/screenshot.png not generated yet")
    assert not QImage(str(shot)).isNull()


def test_the_gui_modules_do_not_import_torch():
    """The window must be able to show before torch loads: only the worker thread imports it."""
    import subprocess
    import sys

    code = ("import sys; import app.gui.main, app.gui.window, app.gui.result_view, app.gui.panels; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_the_menus_are_the_declared_actions(window):
    """Every action of app.gui.actions is in the menu bar, with its shortcut, and runs its handler."""
    from app.gui.actions import MENUS, Action, Submenu

    menus = {m.title(): m for m in (a.menu() for a in window.menuBar().actions()) if m is not None}
    assert list(menus) == [m.text for m in MENUS]
    for spec in MENUS:
        shown = {a.text(): a for a in menus[spec.text].actions() if not a.isSeparator()}
        for item in spec.items:
            if isinstance(item, Action):
                assert item.text in shown
                if item.shortcut is not None:
                    assert shown[item.text].shortcut() == QKeySequence(item.shortcut)
            elif isinstance(item, Submenu):
                assert item.text in shown and shown[item.text].menu() is not None
    # File ▸ Open input follows the model's inputs, with Ctrl+1, Ctrl+2 before the menu was ever opened
    inputs = window.menus_by_id["open_input"].actions()
    assert [a.text() for a in inputs] == ["Open image (image)…", "Open audio (audio)…"]
    assert [a.shortcut().toString() for a in inputs] == ["Ctrl+1", "Ctrl+2"]
    toggle = window.actions_by_id["sweep_toggle"]
    toggle.setChecked(False)
    assert window.predict.sweep_box.isHidden()
    toggle.setChecked(True)
    assert not window.predict.sweep_box.isHidden()


def test_help_lists_every_declared_shortcut_and_the_review_keys_and_shows_the_guide(window):
    from PySide6.QtWidgets import QTextBrowser

    from app.gui.actions import MENUS, REVIEW_KEYS, Action

    sheet = window.show_shortcuts()
    text = sheet.findChild(QTextBrowser).toPlainText()
    declared = [(a.text.replace("&", "").rstrip("…"), QKeySequence(a.shortcut).toString(
        QKeySequence.SequenceFormat.NativeText)) for m in MENUS for a in m.items
        if isinstance(a, Action) and a.shortcut is not None]
    for what, keys in declared:
        assert what in text and keys in text or not keys  # a standard key this platform leaves unbound
    for key in REVIEW_KEYS:
        assert key.text in text
    assert {"N", "Shift+N", "A", "R", "L"} <= {k.keys for k in REVIEW_KEYS}
    assert "Ctrl+1" in text and "Open image (image)" in text  # the inputs' entries, as filled now
    sheet.close()

    guide = window.show_user_guide()
    body = guide.findChild(QTextBrowser).toPlainText()
    assert "Review" in body and "cannot read" not in body
    guide.close()


def test_edit_undo_reaches_the_review_page_and_its_pair_opens_in_predict(window, pair):
    undo = next(a for m in window.menuBar().actions() if m.menu() for a in m.menu().actions()
                if a.text() == "&Undo verdict or note")
    assert undo.shortcut() == QKeySequence(QKeySequence.StandardKey.Undo)
    undo.trigger()  # nothing to undo yet: harmless
    window.tabs.setCurrentIndex(1)
    window.review.openPairInPredict.emit(pair)
    assert window.tabs.currentIndex() == 0
    assert window.predict.current_files() == pair


def test_a_review_run_shows_in_the_status_bar_and_quitting_during_it_asks_first(window, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from app.gui.review import ReviewView

    window.review.runStatus.emit("Review: 3 / 10 pairs · 0:04 left")
    assert window.review_status.isVisible() and "3 / 10" in window.review_status.text()
    window.review.runStatus.emit("")
    assert not window.review_status.isVisible()

    asked = []
    monkeypatch.setattr(ReviewView, "running", property(lambda self: True))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.No)
    window.close()
    assert asked and window.isVisible()  # "No": the window stays
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    window.close()
    assert not window.isVisible()


@pytest.mark.parametrize("header_in_worker", [False, True], ids=["header-here", "header-in-worker"])
def test_the_window_paints_before_its_charts_and_builds_them_right_after(qtbot, gui_model, pair, header_in_worker):
    """What `qmf-studio` opens: the window first, the model line (read in the worker, as `qmf-studio`
    does, or at once), the panels and charts once the window has painted; the Review page only when it
    is first shown."""
    from app.gui.review import ReviewView
    from app.gui.window import MainWindow

    w = MainWindow(gui_model, defer_views=True, header_in_worker=header_in_worker)
    qtbot.addWidget(w)
    assert not w.predict.views_built and w.predict.panels == {}
    if not header_in_worker:
        assert "inputs: image, audio" in w.predict.model_banner.text()  # from the header, at once
    built = []
    w.when_views_built(lambda: w.predict.model.when_opened(lambda: built.append(list(w.predict.panels))))
    with qtbot.waitSignal(w.viewsBuilt, timeout=TIMEOUT):
        w.show()
    qtbot.waitUntil(lambda: bool(built), timeout=TIMEOUT)
    assert built == [["image", "audio"]]
    assert "inputs: image, audio" in w.predict.model_banner.text()
    assert not w.predict.sweep_box.plot_built  # the first prediction is drawn before the sweep's plot
    with qtbot.waitSignal(w.predict.resultShown, timeout=TIMEOUT):
        w.predict.set_files(pair)
    qtbot.waitUntil(lambda: w.predict.sweep_box.plot_built, timeout=TIMEOUT)  # the turn after it
    assert list(w.predict.sweep_plot.curves) == ["image", "audio"]
    assert w.predict.sweep_plot.current_levels() == {"image": 0.0, "audio": 0.0}
    assert w.findChild(ReviewView) is None
    w.show_review_tab()
    assert w.findChild(ReviewView) is w.review
    w.close()


def test_the_sweep_plots_import_waits_for_the_first_result(qtbot, gui_model, pair, monkeypatch):
    """pyqtgraph's import (only the sweep's plot needs it) and the model load or the first prediction
    would take turns at Python's lock: the window builds its views at the first paint without it, and
    starts the import only once the first result is shown; the sweep's plot comes when it is in."""
    import time

    import app.gui.window as window_module
    from app.gui.window import MainWindow
    from app.qmf.predictor import Predictor

    real_load = Predictor.load.__func__

    def slow_load(cls, *args, **kwargs):
        time.sleep(0.5)  # a model that takes its time: an import started at once would come first
        return real_load(cls, *args, **kwargs)

    order = []
    real_start = window_module._ChartsImport.start

    def start(importer):
        order.append("import started")
        real_start(importer)

    monkeypatch.setattr(Predictor, "load", classmethod(slow_load))
    monkeypatch.setattr(window_module, "CHARTS_AFTER_MODEL_MS", 60000)
    monkeypatch.setattr(window_module._ChartsImport, "start", start)
    w = MainWindow(gui_model, defer_views=True, header_in_worker=True)
    qtbot.addWidget(w)
    w.predict.modelReady.connect(lambda _m: order.append("model ready"))
    w.viewsBuilt.connect(lambda: order.append("views built"))
    w.predict.resultShown.connect(lambda *_: order.append("result shown"))
    with qtbot.waitSignal(w.predict.modelReady, timeout=TIMEOUT):
        w.show()
    assert list(w.predict.panels) == ["image", "audio"]
    with qtbot.waitSignal(w.predict.resultShown, timeout=TIMEOUT):
        w.predict.set_files(pair)
    qtbot.waitUntil(lambda: w.predict.sweep_box.plot_built, timeout=TIMEOUT)
    assert order == ["views built", "model ready", "result shown", "import started"]
    w.close()
