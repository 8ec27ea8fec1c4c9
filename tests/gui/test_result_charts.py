"""The painted result charts as a person reads them: the bars, numbers and names given, the
unfamiliar mark, the values under the mouse, and no crash on missing or NaN values."""

from __future__ import annotations

import math

import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPalette
from PySide6.QtWidgets import QApplication

from app.gui import style
from app.gui.charts import ProbabilityChart, QualityChart


def _chart(qtbot, cls, size=(360, 260)):
    chart = cls()
    qtbot.addWidget(chart)
    chart.resize(*size)
    chart.show()
    return chart


def _picture(chart):
    return chart.grab().toImage()


def _has_colour(image, rect, colour: QColor, tolerance: int = 40) -> bool:
    """Some pixel inside `rect` (widget pixels) is close to `colour` (text is anti-aliased)."""
    ratio = image.devicePixelRatio()
    for x in range(int(rect.left() * ratio), int(rect.right() * ratio)):
        for y in range(int(rect.top() * ratio), int(rect.bottom() * ratio)):
            c = image.pixelColor(x, y)
            if abs(c.red() - colour.red()) + abs(c.green() - colour.green()) + abs(c.blue() - colour.blue()) < tolerance:
                return True
    return False


def _hover(chart, pos: QPointF) -> None:
    QApplication.sendEvent(chart, QMouseEvent(QEvent.Type.MouseMove, pos, chart.mapToGlobal(pos), Qt.MouseButton.NoButton,
                                              Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier))


def test_the_quality_chart_shows_the_values_and_names_given(qtbot) -> None:
    chart = _chart(qtbot, QualityChart)
    chart.set_modalities(["image", "audio"])
    chart.set_values({"image": 0.512, "audio": 1.734}, {"image": 0.228, "audio": 0.772})
    assert chart.bar_heights() == {"image": {"quality": 0.512, "share": 0.228},
                                   "audio": {"quality": 1.734, "share": 0.772}}
    assert chart.text_values() == ["0.512", "23%", "1.734", "77%"]
    assert chart.y_range[1] >= 1.734  # the tallest bar fits under the axis' top
    image = _picture(chart)
    # each bar in its series' colour, the taller bar taller
    assert _has_colour(image, chart.bar_rect(0, 0).adjusted(2, 2, -2, -2), QColor(style.QUALITY), 10)
    assert _has_colour(image, chart.bar_rect(1, 1).adjusted(2, 2, -2, -2), QColor(style.SHARE), 10)
    assert chart.bar_rect(0, 1).height() > 3 * chart.bar_rect(0, 0).height()
    # no input marked: nothing in the mark's red
    assert chart.marked_names() == []
    assert not _has_colour(image, chart.rect(), QColor(style.UNFAMILIAR), 30)


def test_an_unfamiliar_input_is_marked_under_its_name_and_under_the_mouse(qtbot) -> None:
    chart = _chart(qtbot, QualityChart)
    chart.set_modalities(["image", "audio"])
    chart.set_values({"image": -0.144, "audio": 0.979}, {"image": 0.0, "audio": 1.0}, unfamiliar=["image"])
    assert chart.marked_names() == ["image"]
    image = _picture(chart)
    area = chart.plot_area()
    below = area.bottom() + 2
    under_image = chart.rect().adjusted(0, int(below), 0, 0)
    under_image.setRight(int(chart.x_of(0.5)))
    under_audio = chart.rect().adjusted(int(chart.x_of(0.5)), int(below), 0, 0)
    assert _has_colour(image, under_image, QColor(style.UNFAMILIAR))
    assert not _has_colour(image, under_audio, QColor(style.UNFAMILIAR))
    # a negative quality hangs below the zero line, inside the axis
    bar = chart.bar_rect(0, 0)
    assert chart.y_range[0] < -0.144 and bar.bottom() > chart.y_of(0.0) - 1
    _hover(chart, chart.bar_rect(1, 0).center() - QPointF(0, 5))
    assert chart.hover_label() == "image: quality -0.144, share 0.0% (unfamiliar)"
    _hover(chart, chart.bar_rect(0, 1).center())
    assert chart.hover_label() == "audio: quality 0.979, share 100.0%"
    chart.set_values({"image": 0.8, "audio": 0.9}, {"image": 0.5, "audio": 0.5})  # the next pair: no mark
    assert chart.marked_names() == [] and chart.hover_label() is None


def test_missing_and_nan_values_draw_no_bar_and_do_not_crash(qtbot) -> None:
    chart = _chart(qtbot, QualityChart)
    _picture(chart)  # before any input is known
    chart.set_modalities(["image", "audio"])
    chart.set_values({"image": math.nan}, {"image": 1.0})  # audio missing altogether
    assert chart.text_values() == ["100%"]
    assert chart.bar_rect(0, 0).isEmpty()
    _picture(chart)
    _hover(chart, QPointF(chart.x_of(0.0), chart.plot_area().center().y()))
    assert chart.hover_label() == "image: quality n/a, share 100.0%"
    chart.set_modalities([])
    _picture(chart)

    probabilities = _chart(qtbot, ProbabilityChart)
    _picture(probabilities)  # painted before the model's labels are known
    probabilities.set_modalities(["image", "audio"], [str(i) for i in range(10)])
    probabilities.set_values({"image": [0.1] * 10}, [math.nan, 0.9, "x"])  # short, NaN and not a number
    assert probabilities.text_values() == ["0.90"]
    assert probabilities.bar_heights()["audio"] == [0.0] * 10  # an input with no numbers shows no bars
    _picture(probabilities)


def test_probability_numbers_never_overlap_and_the_likeliest_class_is_labelled(qtbot) -> None:
    chart = _chart(qtbot, ProbabilityChart, size=(220, 200))  # narrow: not every number fits
    chart.set_modalities(["image", "audio"], [str(i) for i in range(10)])
    fused = [0.09] * 10
    fused[6] = 0.19
    chart.set_values({"image": [0.1] * 10, "audio": [0.1] * 10}, fused)
    drawn = chart._numbers_drawn()
    assert drawn[0][1] == "0.19"
    for i, (a, _, _) in enumerate(drawn):
        for b, _, _ in drawn[i + 1:]:
            assert not a.intersects(b)
    assert chart.hover_text(6.0, 0.1) == "class 6: image 0.100 · audio 0.100 · fused 0.190"


def test_a_chart_saves_its_names_and_numbers_as_svg_text(qtbot, tmp_path) -> None:
    chart = _chart(qtbot, QualityChart)
    chart.set_modalities(["front", "voice"])
    chart.set_values({"front": 0.25, "voice": 1.5}, {"front": 0.1, "voice": 0.9}, unfamiliar=["front"])
    assert chart.export_svg(tmp_path / "q.svg")
    text = (tmp_path / "q.svg").read_text()
    for shown in ("front", "voice", "1.500", "90%", "Quality and share", "unfamiliar"):
        assert shown in text
    assert chart.export_png(tmp_path / "q.png") and (tmp_path / "q.png").stat().st_size > 0


def test_the_charts_follow_a_dark_palette(qtbot) -> None:
    app = QApplication.instance()
    old = app.palette()
    chart = _chart(qtbot, ProbabilityChart)
    chart.set_modalities(["image"], ["a", "b"])
    chart.set_values({"image": [0.2, 0.8]}, [0.3, 0.7])
    try:
        dark = QPalette(old)
        dark.setColor(QPalette.ColorRole.Window, QColor(30, 30, 30))
        dark.setColor(QPalette.ColorRole.Base, QColor(20, 20, 24))
        dark.setColor(QPalette.ColorRole.Text, QColor(230, 230, 230))
        app.setPalette(dark)
        chart.apply_palette()
        image = _picture(chart)
        assert image.pixelColor(2, 2) == QColor(20, 20, 24)
        assert chart.bar_heights()["fused"] == pytest.approx([0.3, 0.7])
        assert _has_colour(image, chart.bar_rect(1, 1).adjusted(2, 2, -2, -2), QColor(style.fused_colour()), 10)
    finally:
        app.setPalette(old)


@pytest.mark.parametrize("ratio", [1.0, 1.25, 1.5, 2.0])
def test_at_fractional_display_scaling_the_chart_covers_every_pixel_of_its_widget(qtbot, monkeypatch, ratio) -> None:
    """The charts are opaque widgets that blit one picture: a picture a device row short (125 % scaling, a
    rounded size) would leave a strip that shows what the window held there before."""
    for size in ((361, 213), (360, 260), (403, 171)):
        chart = _chart(qtbot, QualityChart, size)
        chart.set_modalities(["image", "audio"])
        chart.set_values({"image": 1.2, "audio": 0.4}, {"image": 0.75, "audio": 0.25})
        monkeypatch.setattr(chart, "devicePixelRatioF", lambda: ratio)
        picture = style.widget_pixmap(chart, QColor("white"))
        assert picture.width() >= chart.width() * ratio and picture.height() >= chart.height() * ratio
        assert picture.width() < chart.width() * ratio + 1 and picture.height() < chart.height() * ratio + 1
        chart.grab()  # paints through the same picture at the patched ratio
        cached = chart._cache
        assert cached.deviceIndependentSize().width() >= chart.width()
        assert cached.deviceIndependentSize().height() >= chart.height()
