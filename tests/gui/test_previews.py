"""The input pictures (Predict panels, Review detail): the pixels a person looks at, drawn without plots."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor

from app.gui import style
from app.gui.previews import AudioPreview, ImagePreview

RATE = 8000


def _pixel(widget, x: int, y: int) -> QColor:
    return widget.grab().toImage().pixelColor(x, y)


def test_the_image_is_drawn_pixel_exact_and_cleared(qtbot) -> None:
    view = ImagePreview()
    qtbot.addWidget(view)
    view.resize(200, 160)
    view.show()
    image = np.zeros((28, 28), np.uint8)
    image[:, 14:] = 255  # right half white
    view.show_raw(image)
    rect = view.image_rect()
    assert abs(rect.width() - rect.height()) < 1  # aspect kept
    y = int(rect.center().y())
    left, right = _pixel(view, int(rect.left() + 5), y), _pixel(view, int(rect.right() - 5), y)
    assert left.lightness() < 10 and right.lightness() > 245
    # no smoothing: the pixel just right of the edge between the halves is already white
    edge = rect.left() + rect.width() / 2
    assert _pixel(view, int(edge) + 2, y).lightness() > 245
    assert _pixel(view, int(edge) - 2, y).lightness() < 10
    view.show_raw(None)
    assert view.shown is None
    assert _pixel(view, int(rect.right() - 5), y) == style.plot_background()


def test_the_waveform_fills_its_amplitude_and_the_view_zooms(qtbot) -> None:
    view = AudioPreview({"sample_rate": RATE})
    qtbot.addWidget(view)
    view.resize(400, 220)
    view.show()
    t = np.arange(RATE, dtype=np.float32) / RATE
    quiet_then_loud = np.where(t < 0.5, 0.02, 0.9).astype(np.float32) * np.sin(2 * np.pi * 440 * t)
    view.show_raw(quiet_then_loud)
    wave, spectrogram = view.areas()
    wave_colour = QColor(style.SERIES[1])

    def loud_at(x: int) -> bool:
        """The waveform's line in column x reaches half the full scale, up or down."""
        image = view.grab().toImage()
        for y in (wave.top() + wave.height() // 4, wave.bottom() - wave.height() // 4):
            c = image.pixelColor(x, y)
            if abs(c.red() - wave_colour.red()) < 40 and abs(c.green() - wave_colour.green()) < 40:
                return True
        return False

    quarter = wave.left() + wave.width() // 4
    three_quarters = wave.left() + 3 * wave.width() // 4
    assert not loud_at(quarter)  # 0.02 of full scale stays near the middle line
    assert loud_at(three_quarters)
    assert _pixel(view, spectrogram.center().x(), spectrogram.center().y()) != style.plot_background()

    view.set_view(0.6, 0.8)  # only loud audio in view now
    assert view.view == (0.6, 0.8)
    assert loud_at(quarter)
    view.mouseDoubleClickEvent(None)
    assert view.view == (0.0, 1.0)

    view.set_play_position(0.25)
    marker = _pixel(view, int(view._x_of(0.25, wave)), spectrogram.center().y())
    assert marker.red() > 180 and marker.green() < 80
    assert view.play_position() == 0.25
    view.show_raw(None)
    assert view.wave is None


def test_the_spectrogram_colours_are_pyqtgraphs_viridis() -> None:
    """The colour map kept in app/gui/viridis.py (so the first spectrogram needs no pyqtgraph) is
    pyqtgraph's viridis entry for entry: a spectrogram looks as it did."""
    from pyqtgraph import colormap

    from app.gui.viridis import VIRIDIS_RGB

    theirs = colormap.get("viridis").getLookupTable(nPts=256).astype(np.uint8)[:, :3]
    assert np.array_equal(np.frombuffer(VIRIDIS_RGB, np.uint8).reshape(256, 3), theirs)
