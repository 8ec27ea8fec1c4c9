"""Spoken digits synthesised with espeak-ng (and Flite): the voices used for training data and the demo samples.

Voices are an espeak-ng accent ("en-us") plus a voice variant ("m3", "f2", "klatt" ...). Two disjoint
sets: TRAIN_* voices may be mixed into training data (generated under work/, never committed);
HELDOUT_* accents and variants are never used in training, so accuracy on them is an honest
measure of how the model hears a synthetic voice it has not met.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

# Words and phrases that are not digits, for the spoken_words foreign family (scripts/make_word_recordings.py).
# None rhymes with a digit or starts like one (no -oo, -ee, -ine, -ate, -ive, -or, -un endings, no "for-",
# "six-"-like starts), so the model is not taught that a digit's sound is foreign. TRAIN_WORDS may be used in
# training; HELDOUT_WORDS never are, and are spoken only by the HELDOUT_* voices below. Taken out of TRAIN_WORDS
# after measuring: the 12 words that the round-5 bundle heard as one digit in 5 of their 6 recordings with a mean
# probability of 0.75 or more (horse, friend, walrus, wallet, salad, spring, snake, bread, pillow, quiet, wolf,
# ball): shown as foreign, they taught the audio branch to doubt real digits (docs/report/README.md, round 6).
TRAIN_WORDS = [
    "about", "after", "again", "animal", "answer", "baby", "bag", "bird", "black", "bottle",
    "brother", "brown", "butter", "camera", "carpet", "chair", "cheese", "chicken", "children", "city", "cloud",
    "color", "cookie", "country", "cup", "dance", "dark", "desert", "dinner", "dragon", "dress", "duck", "early",
    "earth", "egg", "elbow", "engine", "evening", "family", "farm", "father", "finger", "fish", "flower",
    "frog", "garlic", "glass", "gold", "grass", "hammer", "hand", "hat", "head", "honey",
    "hungry", "jump", "kitchen", "lamp", "laptop", "lemon", "magic", "market", "mother", "mountain", "mouse",
    "number", "ocean", "office", "palace", "panda", "parrot", "party", "pepper", "picture", "planet",
    "potato", "puzzle", "question", "radio", "rain", "robot", "rocket", "school", "shadow", "sister",
    "small", "soap", "spider", "square", "summer", "tiger", "tomorrow", "towel", "travel",
    "turtle", "umbrella", "uncle", "valley", "village", "winter", "world", "yogurt",
    "cabbage", "muffin", "kettle", "ladder", "marble", "noodle", "orbit", "pretzel",
    "sandal", "tunnel", "velvet", "whistle", "hi there", "good afternoon", "turn it off", "call my mother",
    "what is this", "play a song", "stop the timer", "open the box", "where is my phone", "let me check",
    "I am hungry", "nice weather today",
]
HELDOUT_WORDS = [
    "hello", "apple", "table", "water", "garden", "music", "yellow", "window", "paper", "river", "cat", "dog",
    "house", "sandwich", "happy", "little", "people", "computer", "banana", "orange", "coffee", "letter",
    "basket", "pencil", "doctor", "monkey", "button", "purple", "castle", "island", "candle", "rabbit",
    "tomato", "guitar", "jacket", "pocket", "silver", "thunder", "bridge", "pumpkin", "good night",
    "turn on the lights", "what a lovely garden", "pass the salt", "call the doctor", "it is raining",
]
# for choosing between training runs (spoken by HELDOUT_* voices too), so that HELDOUT_WORDS stay unseen by
# every choice made and measure only the run that was chosen
VALIDATION_WORDS = [
    "airport", "blanket", "bucket", "cousin", "dolphin", "feather", "giraffe", "helmet", "iron", "jungle",
    "lantern", "meadow", "napkin", "olive", "peanut", "saddle", "teapot", "walnut", "what happened", "close the gate",
]

TRAIN_ACCENTS = ["en-us", "en-gb", "en-gb-x-rp", "en-029"]
TRAIN_VARIANTS = ["m1", "m2", "m3", "m5", "m6", "f1", "f2", "f4", "klatt", "croak", "Andy", "adam"]
HELDOUT_ACCENTS = ["en-gb-scotland", "en-us-nyc", "en-gb-x-gbclan"]
HELDOUT_VARIANTS = ["m4", "m7", "f3", "f5", "klatt3", "belinda", "john", "linda"]
# Foreign-accented English digits: the digit words respelled so that another language's letter-to-sound rules
# say them roughly as a speaker of that language says the English word ("for", "faiv", "eit"), spoken by that
# language's espeak-ng voice. A first check with the round-6 bundle's audio branch, which had heard none of them
# (each language's own voice, two speeds, 20 recordings a language): 70-100 % read right per language, so the
# words are still the digits, with an accent's confusions; scripts/make_samples.py measures the HELDOUT_LANGUAGES
# in full (docs/report.md). TRAIN_LANGUAGES may be used in training; HELDOUT_LANGUAGES never are.
ACCENT_SPELLINGS = ["ziro", "uan", "tu", "tri", "for", "faiv", "siks", "seven", "eit", "nain"]
TRAIN_LANGUAGES = ["fr-fr", "de", "es", "it", "pt", "pl"]
HELDOUT_LANGUAGES = ["nl", "ro", "cs", "hu", "sv", "tr"]
ACCENT_VARIANTS = ["", "m1", "m3", "f2", "f4"]  # "" = the language voice's own


def accent_voice(language: str, variant: str) -> str:
    """The espeak-ng voice name of a language and one of ACCENT_VARIANTS ("" keeps the language's own)."""
    return f"{language}+{variant}" if variant else language


# Flite's voices (the Debian/Ubuntu `flite` package): four speakers of the CMU ARCTIC and diphone recordings,
# closer to a human voice than espeak-ng's formant synthesis; all four are training voices
FLITE_TRAIN_VOICES = ["kal16", "awb", "rms", "slt"]


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def synthesise(word: str, voice: str, speed: int = 150, pitch: int = 50, sample_rate: int = 8000,
               trim: bool = False) -> np.ndarray:
    """float32 mono waveform of `word` spoken by espeak-ng `voice`, resampled to `sample_rate`.

    `trim` cuts leading/trailing silence (below 2% of the peak, with 20 ms margins), the way the
    FSDD recordings are cut; untrimmed output is what a user would record with a pause around it.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "say.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), word],
                       check=True, capture_output=True)
        return _as_recording(path, sample_rate, trim)


def flite_available() -> bool:
    return shutil.which("flite") is not None


def synthesise_flite(word: str, voice: str, stretch: float = 1.0, f0: float = 110.0, sample_rate: int = 8000,
                     trim: bool = False) -> np.ndarray:
    """`word` spoken by Flite `voice` (one of FLITE_TRAIN_VOICES), `stretch` times as slow, as :func:`synthesise`.

    `f0` (Hz) moves the pitch of the diphone voice (kal16); the other voices keep their speaker's own."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "say.wav"
        subprocess.run(["flite", "-voice", voice, "-t", word, "-o", str(path), "--setf", f"duration_stretch={stretch:.3f}",
                        "--setf", f"int_f0_target_mean={f0:.1f}"], check=True, capture_output=True)
        return _as_recording(path, sample_rate, trim)


def _as_recording(path: Path, sample_rate: int, trim: bool) -> np.ndarray:
    """A synthesiser's WAV as a recording: mono, `sample_rate`, peak 0.8, optionally trimmed like FSDD."""
    import soxr

    x, rate = sf.read(path, dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if rate != sample_rate:
        x = soxr.resample(x, rate, sample_rate, quality="HQ").astype(np.float32)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 0:
        x = x / peak * 0.8  # a synthesiser's level varies by voice; a recording app would normalise too
    if trim and peak > 0:
        loud = np.flatnonzero(np.abs(x) > 0.02 * 0.8)
        margin = int(0.02 * sample_rate)
        x = x[max(0, loud[0] - margin): loud[-1] + margin]
    return np.clip(x, -1, 1).astype(np.float32)
