"""The result charts and the sweep plot, as a person uses them: hover, export, stable axes."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

TIMEOUT = 60000


def _predict(qtbot, page, files):
    with qtbot.waitSignal(page.resultShown, timeout=TIMEOUT):
        page.set_files(files)


@pytest.fixture
def bundled_window(qtbot):
    """The shipped model: its quality scores exceed 1, where the axis used to follow the tallest bar."""
    from app.gui.window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    if not w.predict.model_ready:
        with qtbot.waitSignal(w.predict.modelReady, timeout=TIMEOUT):
            pass
    yield w
    w.close()


def test_quality_axis_stays_put_while_a_slider_is_dragged(qtbot, bundled_window):
    from app.resources import read_demo_samples

    page = bundled_window.predict
    _predict(qtbot, page, read_demo_samples()[0]["files"])
    chart = page.result_view.quality_chart
    qtbot.wait(300)  # the window's first layout settles (the headroom for the legend depends on the height)
    start = chart.y_range
    heights = chart.bar_heights()
    top = max(heights, key=lambda n: heights[n]["quality"])  # degrading the tallest bar moved the axis
    assert heights[top]["quality"] > 1.0
    seen = set()
    for value in range(0, 101, 10):  # the slider dragged from clean to the worst level
        with qtbot.waitSignal(page.resultShown, timeout=TIMEOUT):
            page.panels[top].slider.setValue(value)
            page.request_prediction()
        seen.add(round(chart.bar_heights()[top]["quality"], 3))
        assert chart.y_range == pytest.approx(start), f"y-range moved at slider {value}"
    assert len(seen) > 3  # the bars did move


def test_quality_axis_fits_each_new_pair(qtbot, window, pair, other_pair):
    page = window.predict
    _predict(qtbot, page, pair)
    chart = page.result_view.quality_chart
    chart.set_values({"image": 7.2, "audio": 0.1}, {"image": 0.9, "audio": 0.1}, range_key="big")
    assert chart.y_range[1] > 7.2
    chart.set_values({"image": 0.4, "audio": 0.3}, {"image": 0.5, "audio": 0.5}, range_key="small")
    assert chart.y_range[1] < 2.0  # another pair: the range starts again


def test_hovering_a_bar_shows_its_values(qtbot, window, pair):
    page = window.predict
    _predict(qtbot, page, pair)
    chart = page.result_view.quality_chart
    heights = chart.bar_heights()["audio"]
    move_mouse(chart, chart.bar_rect(0, 1).center())  # the audio input's quality bar
    assert chart.hover_label() == f"audio: quality {heights['quality']:.3f}, share {heights['share']:.1%}"
    area = chart.plot_area()
    move_mouse(chart, QPointF(chart.x_of(0.5), area.center().y()))  # between the inputs' bars
    assert chart.hover_label() is None
    probs = page.result_view.probability_chart
    text = probs.hover_text(0.0, 0.5)
    assert text.startswith(f"class {probs.labels[0]}: ") and "fused" in text


def test_a_chart_copies_to_the_clipboard_and_saves_as_svg(qtbot, window, pair, tmp_path):
    page = window.predict
    _predict(qtbot, page, pair)
    chart = page.result_view.quality_chart
    actions = [a.text() for a in chart.chart_menu().actions() if a.text()]
    assert actions == ["&Copy chart", "Save as &SVG…", "Save as &PNG…"]
    QApplication.clipboard().clear()
    chart.copy_to_clipboard()
    image = QApplication.clipboard().image()
    assert not image.isNull() and image.width() == chart.grab().width()
    out = tmp_path / "quality.svg"
    chart.export_svg(out)
    text = out.read_text()
    assert "<svg" in text and "audio" in text  # the axis names are in the drawing
    sweep_menu = [a.text() for a in page.sweep_plot.quality_plot.chart_menu().actions() if a.text()]
    assert "&Reset zoom" in sweep_menu  # the sweep zooms and pans; bars do not


def test_sweep_follows_the_pair_marks_the_level_and_has_a_legend(qtbot, window, pair, other_pair):
    page = window.predict
    _predict(qtbot, page, pair)
    with qtbot.waitSignal(page.sweepShown, timeout=TIMEOUT) as first:
        page.run_sweep()
    plot = page.sweep_plot
    legend = [label.text for _, label in plot.quality_plot.legend.items]
    assert legend == ["image", "audio"]
    assert [label.text for _, label in plot.confidence_plot.legend.items] == ["image degraded", "audio degraded"]
    # quality and fused confidence on separate panels with their own axes
    assert plot.curves["image"][0].getViewBox() is not plot.curves["image"][1].getViewBox()
    # another pair: the old curves must not stay; the sweep runs again for the new pair
    with qtbot.waitSignal(page.sweepShown, timeout=TIMEOUT) as second:
        page.set_files(other_pair)
    assert second.args[0] != first.args[0]
    _xs, ys = plot.curves["image"][0].getData()
    assert list(ys) == pytest.approx(second.args[0]["modalities"]["image"]["quality"])
    with qtbot.waitSignal(page.resultShown, timeout=TIMEOUT):
        page.panels["image"].set_level(4.0)
        page.request_prediction()
    assert plot.current_levels()["image"] == pytest.approx(4.0)
    assert plot.hover_text(4.0, plot.quality_plot).startswith("severity 4: quality image ")


def test_sweep_is_cleared_for_a_new_pair_when_it_is_hidden(qtbot, window, pair, other_pair):
    page = window.predict
    _predict(qtbot, page, pair)
    with qtbot.waitSignal(page.sweepShown, timeout=TIMEOUT):
        page.run_sweep()
    page.show_sweep(False)
    _predict(qtbot, page, other_pair)
    assert not page.sweep_plot.has_curves()


def move_mouse(widget, pos) -> None:
    """The pointer moved to `pos` over `widget`, no button held (as a person hovering)."""
    event = QMouseEvent(QEvent.Type.MouseMove, pos, widget.mapToGlobal(pos), Qt.MouseButton.NoButton,
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)
