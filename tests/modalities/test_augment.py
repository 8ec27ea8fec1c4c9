"""Vocal-tract-length perturbation and pitch-preserving time stretch (app/modalities/augment.py)."""

import numpy as np

from app.modalities.augment import augment_audio, formant_shift, time_stretch

SR = 8000


def _peak_hz(x: np.ndarray) -> float:
    return float(np.fft.rfftfreq(x.size, 1 / SR)[np.argmax(np.abs(np.fft.rfft(x)))])


def _tone(hz: float = 300.0, n: int = 4000) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * hz * np.arange(n) / SR)).astype(np.float32)


def test_time_stretch_keeps_pitch_and_changes_length():
    y = time_stretch(_tone(), 0.8)
    assert y.size == 5000
    assert abs(_peak_hz(y) - 300.0) < 5.0


def test_formant_shift_scales_frequency_and_keeps_length():
    for factor in (0.87, 1.15):
        y = formant_shift(_tone(), factor)
        assert y.size == 4000
        assert abs(_peak_hz(y) - 300.0 * factor) < 6.0


def test_off_by_default_and_deterministic():
    x = _tone()
    a = augment_audio(x, np.random.default_rng(3), formant=(0.87, 1.15), tempo=(0.85, 1.18))
    b = augment_audio(x, np.random.default_rng(3), formant=(0.87, 1.15), tempo=(0.85, 1.18))
    assert np.array_equal(a, b) and a.dtype == np.float32
    c = augment_audio(x, np.random.default_rng(3))
    d = augment_audio(x, np.random.default_rng(3), formant=None, tempo=None)
    assert np.array_equal(c, d)
