"""The audio foreign-input families of app/modalities/outliers.py: sounds that are not speech, made by code.

Each is a pure function of a numpy Generator and the sample rate and returns float32 mono in [-1, 1]
(about 0.3-1.0 s); `outliers.generate` is the way in.
"""

from __future__ import annotations

import math

import numpy as np


def _duration(rng: np.random.Generator, sr: int) -> int:
    return int(rng.uniform(0.3, 1.0) * sr)


def _envelope(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    attack = max(1, int(rng.uniform(0.002, 0.08) * sr))
    release = max(1, int(rng.uniform(0.01, 0.2) * sr))
    env = np.ones(n)
    env[: min(attack, n)] = np.linspace(0, 1, min(attack, n))
    env[max(0, n - release):] *= np.linspace(1, 0, n - max(0, n - release))
    return env


def _level(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scale to a random peak between -30 dB and -1 dB: the model reads absolute level too."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak == 0:
        return x.astype(np.float32)
    target = 10 ** (rng.uniform(-30, -1) / 20)
    return np.clip(x * (target / peak), -1, 1).astype(np.float32)


def _harmonic(freq: np.ndarray | float, n: int, sr: int, rng: np.random.Generator, partials: int) -> np.ndarray:
    t = np.arange(n) / sr
    phase = 2 * math.pi * np.cumsum(np.broadcast_to(freq, (n,))) / sr if np.ndim(freq) else 2 * math.pi * freq * t
    out = np.zeros(n)
    for k in range(1, partials + 1):
        out += (rng.uniform(0.3, 1.0) / k) * np.sin(k * phase + rng.uniform(0, 2 * math.pi))
    return out


def au_tone(rng: np.random.Generator, sr: int) -> np.ndarray:
    n = _duration(rng, sr)
    f = math.exp(rng.uniform(math.log(80), math.log(min(3500, sr / 2.3))))
    return _level(_harmonic(f, n, sr, rng, int(rng.integers(1, 3))) * _envelope(n, rng, sr), rng)


def au_chord(rng: np.random.Generator, sr: int) -> np.ndarray:
    n = _duration(rng, sr)
    root = math.exp(rng.uniform(math.log(100), math.log(800)))
    steps = rng.choice([0, 3, 4, 5, 7, 9, 12], size=int(rng.integers(2, 5)), replace=False)
    x = sum(_harmonic(root * 2 ** (s / 12), n, sr, rng, 3) for s in steps)
    return _level(x * _envelope(n, rng, sr), rng)


def au_chirp(rng: np.random.Generator, sr: int) -> np.ndarray:
    n = _duration(rng, sr)
    f0, f1 = np.exp(rng.uniform(math.log(100), math.log(sr / 2.5), size=2))
    freq = np.geomspace(f0, f1, n) if rng.random() < 0.5 else np.linspace(f0, f1, n)
    return _level(_harmonic(freq, n, sr, rng, 1) * _envelope(n, rng, sr), rng)


def _colored_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    spectrum = rng.normal(size=n // 2 + 1) + 1j * rng.normal(size=n // 2 + 1)
    f = np.fft.rfftfreq(n)
    f[0] = f[1] if n > 1 else 1.0
    x = np.fft.irfft(spectrum / f ** (exponent / 2), n=n)
    return x / (np.abs(x).max() + 1e-12)


def au_pink_noise(rng: np.random.Generator, sr: int) -> np.ndarray:
    """1/f noise, sometimes white-ish (exponent 0.5-1.2)."""
    n = _duration(rng, sr)
    return _level(_colored_noise(rng, n, rng.uniform(0.5, 1.2)) * _envelope(n, rng, sr), rng)


def au_brown_noise(rng: np.random.Generator, sr: int) -> np.ndarray:
    """1/f^2 (Brownian) noise: rumble."""
    n = _duration(rng, sr)
    return _level(_colored_noise(rng, n, rng.uniform(1.7, 2.3)) * _envelope(n, rng, sr), rng)


def au_clicks(rng: np.random.Generator, sr: int) -> np.ndarray:
    """An impulse train or random clicks, each a short decaying burst."""
    n = _duration(rng, sr)
    x = np.zeros(n)
    if rng.random() < 0.5:
        period = int(sr / rng.uniform(2, 60))
        positions = np.arange(int(rng.integers(0, max(1, period))), n, max(1, period))
    else:
        positions = rng.integers(0, n, size=int(rng.integers(3, 40)))
    burst_len = int(rng.uniform(0.001, 0.01) * sr) + 1
    burst = rng.normal(size=burst_len) * np.exp(-np.arange(burst_len) / (burst_len / 4))
    for p in positions:
        end = min(n, p + burst_len)
        x[p:end] += burst[: end - p]
    return _level(x, rng)


def au_melody(rng: np.random.Generator, sr: int) -> np.ndarray:
    """A few notes of a harmonic instrument on a musical scale."""
    total = _duration(rng, sr)
    notes = int(rng.integers(2, 7))
    base = math.exp(rng.uniform(math.log(150), math.log(700)))
    out = np.zeros(total)
    lengths = rng.dirichlet(np.ones(notes)) * total
    pos = 0
    for length in lengths:
        m = max(8, int(length))
        f = base * 2 ** (int(rng.choice([0, 2, 4, 5, 7, 9, 11, 12])) / 12)
        seg = _harmonic(f, m, sr, rng, int(rng.integers(1, 6))) * np.exp(-np.arange(m) / (m * rng.uniform(0.2, 1.0)))
        end = min(total, pos + m)
        out[pos:end] += seg[: end - pos]
        pos = end
    return _level(out, rng)


_VOWELS = {  # F1, F2, F3 (Hz) of a few vowels
    "a": (730, 1090, 2440), "e": (530, 1840, 2480), "i": (270, 2290, 3010), "o": (570, 840, 2410),
    "u": (300, 870, 2240), "ae": (660, 1720, 2410), "er": (490, 1350, 1690),
}


def _resonator(x: np.ndarray, freq: float, bandwidth: float, sr: int) -> np.ndarray:
    """Second-order all-pole resonance (a formant, as in Klatt's synthesiser), applied as its impulse
    response h[n] = r^n sin((n + 1) theta) / sin(theta), truncated where it has decayed below 1e-4."""
    r = math.exp(-math.pi * bandwidth / sr)
    theta = 2 * math.pi * freq / sr
    length = int(math.log(1e-4) / math.log(r)) + 1
    k = np.arange(length)
    h = r**k * np.sin((k + 1) * theta) / max(math.sin(theta), 1e-6)
    return np.convolve(x, h)[: x.size]


def au_syllables(rng: np.random.Generator, sr: int) -> np.ndarray:
    """Formant-synthesised vowel sequences ('aa-ee', 'oo'): voice-like, but no word at all."""
    total = _duration(rng, sr)
    f0 = rng.uniform(85, 260)
    names = list(_VOWELS)
    parts = []
    for _ in range(int(rng.integers(1, 4))):
        m = max(64, int(total * rng.uniform(0.2, 0.5)))
        pitch = f0 * np.linspace(1, rng.uniform(0.8, 1.2), m)
        phase = np.cumsum(pitch) / sr
        source = (np.diff(np.floor(phase), prepend=0) > 0).astype(float)  # glottal pulse train
        source += rng.normal(0, 0.02, m)
        formants = _VOWELS[names[int(rng.integers(len(names)))]]
        y = source
        for f in formants:
            if f < sr / 2 - 100:
                y = _resonator(y, f * rng.uniform(0.9, 1.1), rng.uniform(60, 150), sr)
        parts.append(y * _envelope(m, rng, sr))
        parts.append(np.zeros(int(rng.uniform(0.0, 0.08) * sr)))
    return _level(np.concatenate(parts)[:total], rng)


def au_hum(rng: np.random.Generator, sr: int) -> np.ndarray:
    """Mains hum: 50 or 60 Hz with odd/even harmonics, sometimes buzzy."""
    n = _duration(rng, sr)
    base = 50.0 if rng.random() < 0.5 else 60.0
    t = np.arange(n) / sr
    partials = int(rng.integers(3, 12))
    x = sum(rng.uniform(0.1, 1.0) / k**rng.uniform(0.3, 1.5) * np.sin(2 * math.pi * base * k * t + rng.uniform(0, 6.3))
            for k in range(1, partials + 1) if base * k < sr / 2)
    x = x + rng.normal(0, rng.uniform(0, 0.05), n)
    return _level(x, rng)


def au_reversed_speech(rng: np.random.Generator, sr: int, source: np.ndarray | None = None) -> np.ndarray:
    """A recording played backwards: speech-like spectrum and rhythm, but no word."""
    if source is None:
        raise ValueError("the reversed_speech family needs a source recording (source=...)")
    x = np.asarray(source, dtype=np.float32).reshape(-1)[::-1]
    return np.clip(x, -1, 1).astype(np.float32).copy()


def au_shuffled_speech(rng: np.random.Generator, sr: int, source: np.ndarray | None = None) -> np.ndarray:
    """A recording cut into 40-150 ms pieces put back in a random order: a voice, but no word."""
    if source is None:
        raise ValueError("the shuffled_speech family needs a source recording (source=...)")
    x = np.asarray(source, dtype=np.float32).reshape(-1)
    piece = max(1, int(rng.uniform(0.04, 0.15) * sr))
    pieces = [x[i:i + piece] for i in range(0, x.size, piece)]
    order = rng.permutation(len(pieces))
    return np.clip(np.concatenate([pieces[i] for i in order]) if pieces else x, -1, 1).astype(np.float32)


def au_spoken_words(rng: np.random.Generator, sr: int, source: np.ndarray | None = None) -> np.ndarray:
    """A recording of spoken words that are not a digit (from a pool of such recordings the caller keeps,
    e.g. `[training.outliers] pools`): a voice saying a real word, but not one the model reads. Played at a
    random level, as any recording may be."""
    if source is None:
        raise ValueError("the spoken_words family needs a recording of words that are not digits (source=...)")
    return _level(np.asarray(source, dtype=np.float32).reshape(-1), rng)
