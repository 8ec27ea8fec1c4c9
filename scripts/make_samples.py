"""Demo samples made by the project itself: digits drawn with Pillow, digits spoken by espeak-ng.

    .venv/bin/python scripts/make_samples.py [--model resources/models/avmnist-qmf.safetensors]

Writes resources/samples/*.png, *.wav and samples.json (the app's "Demo samples" menu), and prints
the bundled model's accuracy on synthesised speech over EVERY digit x voice of the held-out voice
grid (scripts/tts.py HELDOUT_*, never used in training) and of the sample voices, audio branch alone,
so the committed handful is not a picked subset. Nothing is cut from MNIST or FSDD.

The sample list below is fixed in advance (digit, font, voice, degradation); it is not chosen by
looking at which samples the model gets right.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image, ImageDraw, ImageFilter, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from tts import (  # noqa: E402
    ACCENT_SPELLINGS,
    ACCENT_VARIANTS,
    HELDOUT_ACCENTS,
    HELDOUT_LANGUAGES,
    HELDOUT_VARIANTS,
    HELDOUT_WORDS,
    WORDS,
    accent_voice,
    synthesise,
)

FONT_DIRS = [Path("/usr/share/fonts/truetype")]
FONT_NAMES = ["DejaVuSans.ttf", "DejaVuSerif-Bold.ttf", "FreeSans.ttf", "DejaVuSansMono.ttf",
              "FreeSerifItalic.ttf", "LiberationSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "FreeMonoBold.ttf"]
SIZE = 112  # 4 x 28: the app fits it to 28x28; the digit box is 80 px (20/28), centred by mass as in MNIST

# (id, digit, font index, voice) -- voices from the held-out grid: none of them was heard in training
CLEAN = [
    ("three", 3, 0, "en-gb-scotland+m4"),
    ("seven", 7, 1, "en-us-nyc+f3"),
    ("zero", 0, 2, "en-gb-x-gbclan+klatt3"),
    ("five", 5, 3, "en-gb-scotland+f5"),
    ("eight", 8, 4, "en-us-nyc+m7"),
    ("two", 2, 5, "en-gb-x-gbclan+belinda"),
]


def find_font(name: str) -> Path:
    """The font file; missing fonts stop the script (a substitute would make different samples under the same name)."""
    if Path(name).is_file():  # a font file's own path (scripts/make_font_training.py)
        return Path(name)
    for d in FONT_DIRS:
        hits = list(d.rglob(name))
        if hits:
            return hits[0]
    raise SystemExit(f"make_samples.py: font {name} not found under {', '.join(map(str, FONT_DIRS))}; "
                     "install fonts-dejavu-core, fonts-freefont-ttf and fonts-liberation (Debian/Ubuntu)")


def draw_digit(digit: int, font_name: str, rng: np.random.Generator) -> Image.Image:
    """A digit drawn with a font, warped like handwriting, framed like MNIST; black ink on white paper."""
    path = find_font(font_name)
    font = ImageFont.truetype(str(path), 300)
    canvas = Image.new("L", (420, 420), 0)
    d = ImageDraw.Draw(canvas)
    d.text((210, 210), str(digit), fill=255, font=font, anchor="mm", stroke_width=int(rng.integers(0, 8)), stroke_fill=255)
    # handwriting-like: a random shear/rotation, then a smooth random displacement field
    arr = np.asarray(canvas, dtype=np.float32)
    angle = np.deg2rad(rng.uniform(-10, 10))
    shear = rng.uniform(-0.25, 0.1)
    cos, sin = np.cos(angle), np.sin(angle)
    inv = np.linalg.inv(np.array([[cos, -sin], [sin, cos]]) @ np.array([[1, shear], [0, 1]]))
    c = 210.0
    off = np.array([c, c]) - inv @ np.array([c, c])
    img = Image.fromarray(arr.astype(np.uint8)).transform(
        (420, 420), Image.Transform.AFFINE, (inv[0, 0], inv[0, 1], off[0], inv[1, 0], inv[1, 1], off[1]),
        resample=Image.Resampling.BILINEAR)
    arr = np.asarray(img, dtype=np.float32)
    coarse = rng.normal(0, 1, size=(2, 6, 6)).astype(np.float32)
    field = [np.asarray(Image.fromarray(coarse[k]).resize((420, 420), Image.Resampling.BICUBIC)) * 9.0 for k in range(2)]
    yy, xx = np.mgrid[0:420, 0:420].astype(np.float32)
    sy = np.clip(np.rint(yy + field[0]), 0, 419).astype(int)
    sx = np.clip(np.rint(xx + field[1]), 0, 419).astype(int)
    arr = arr[sy, sx]
    img = Image.fromarray(arr.astype(np.uint8)).filter(ImageFilter.GaussianBlur(2.0))
    return frame_like_mnist(img)


def frame_like_mnist(img: Image.Image) -> Image.Image:
    """Crop to the ink, fit the longer side to 20/28 of the canvas, centre by mass; invert to black on white."""
    arr = np.asarray(img)
    ys, xs = np.nonzero(arr > 30)
    crop = img.crop((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
    box = SIZE * 20 // 28
    scale = box / max(crop.size)
    crop = crop.resize((max(1, round(crop.size[0] * scale)), max(1, round(crop.size[1] * scale))), Image.Resampling.LANCZOS)
    c = np.asarray(crop, dtype=np.float64)
    total = c.sum()
    cy, cx = (np.arange(c.shape[0]) @ c.sum(1)) / total, (np.arange(c.shape[1]) @ c.sum(0)) / total
    canvas = Image.new("L", (SIZE, SIZE), 0)
    left, top = int(round(SIZE / 2 - cx)), int(round(SIZE / 2 - cy))
    canvas.paste(crop, (left, top))
    return Image.fromarray(255 - np.asarray(canvas))


def save_wav(path: Path, x: np.ndarray) -> None:
    sf.write(path, np.asarray(x, dtype=np.float32), 8000, subtype="PCM_16")


def degrade_image_file(src: Path, dst: Path, kind: str, level: float, seed: int, modality) -> None:
    """Corrupt at the model's 28x28 scale (what the protocol does), store 4x nearest-upscaled, black on white."""
    raw = modality.load(src)
    bad = modality.corrupt(raw, kind, level, np.random.default_rng(seed))
    Image.fromarray(255 - bad).resize((SIZE, SIZE), Image.Resampling.NEAREST).save(dst, optimize=True)


def heard_by_voices(predictor, image_m, voices: list[str], words: list[str]) -> dict:
    """Every digit (`words[d]` spoken) by every espeak-ng voice, audio branch alone: accuracy, and how often such
    a clean recording gets the unfamiliar mark (read right and read wrong apart): a voice the model never met is
    not in the clean validation recordings the mark is calibrated on."""
    per_voice = {}
    heard, marked, percentiles = [], [], []
    for voice in voices:
        raws = [{"image": image_m.blank(), "audio": synthesise(words[d], voice, 150, 50, trim=False)} for d in range(10)]
        preds = predictor.predict_many(raws)
        hits = [p.modalities["audio"].label == str(d) for d, p in enumerate(preds)]
        per_voice[voice] = sum(hits)
        heard += hits
        marked += [bool(p.modalities["audio"].unfamiliar) for p in preds]
        percentiles += [p.modalities["audio"].quality_percentile for p in preds]
    correct = sum(heard)
    right_marks = [m for m, h in zip(marked, heard, strict=True) if h]
    wrong_marks = [m for m, h in zip(marked, heard, strict=True) if not h]
    known = [q for q in percentiles if q is not None]
    return {"voices": len(voices), "utterances": 10 * len(voices), "correct": correct,
            "accuracy": correct / (10 * len(voices)), "per_voice_correct_of_10": per_voice,
            "unfamiliar_marked": sum(marked) / len(marked),
            "unfamiliar_marked_when_right": sum(right_marks) / len(right_marks) if right_marks else None,
            "unfamiliar_marked_when_wrong": sum(wrong_marks) / len(wrong_marks) if wrong_marks else None,
            "median_quality_percentile": float(np.median(known)) if known else None}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(ROOT / "resources" / "models" / "avmnist-qmf.safetensors"))
    ap.add_argument("--out", default=str(ROOT / "resources" / "samples"))
    ap.add_argument("--json-out", help="also write the measured figures here")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    from app.qmf.predictor import Predictor

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2024)
    predictor = Predictor.load(args.model)
    image_m, audio_m = predictor.modalities["image"], predictor.modalities["audio"]
    samples = []
    for sid, digit, font_i, voice in CLEAN:
        draw_digit(digit, FONT_NAMES[font_i], rng).save(out / f"{sid}.png", optimize=True)
        save_wav(out / f"{sid}.wav", synthesise(WORDS[digit], voice, 150, 50, trim=False))
        samples.append({"id": sid, "title": f"{digit}: clean pair", "files": {"image": f"{sid}.png", "audio": f"{sid}.wav"},
                        "expected": str(digit),
                        "note": f"digit drawn with {FONT_NAMES[font_i].rsplit('.', 1)[0]} and warped; '{WORDS[digit]}' spoken by espeak-ng voice {voice}"})
    # degraded variants (fixed in advance)
    degraded = [
        ("three-noisy-image", "three", "image", "gaussian", 9.0, "image buried in Gaussian noise (sd 90): its quality score falls, the recording carries the decision"),
        ("seven-noisy-audio", "seven", "audio", "white_noise", 9.0, "recording buried in white noise (SNR -6.5 dB): the drawing carries the decision"),
        ("five-blurred-image", "five", "image", "blur", 9.0, "image blurred (radius 2.25 px at 28x28), a corruption never seen in training"),
        ("eight-babble-audio", "eight", "audio", "babble", 9.0, "another 'voice' mixed in at -7 dB, a corruption never seen in training"),
    ]
    for did, base, modality, kind, level, note in degraded:
        files = {"image": f"{base}.png", "audio": f"{base}.wav"}
        if modality == "image":
            degrade_image_file(out / f"{base}.png", out / f"{did}.png", kind, level, 7, image_m)
            files["image"] = f"{did}.png"
        else:
            raw = audio_m.load(out / f"{base}.wav")
            save_wav(out / f"{did}.wav", audio_m.corrupt(raw, kind, level, np.random.default_rng(7)))
            files["audio"] = f"{did}.wav"
        digit = next(d for s, d, _, _ in CLEAN if s == base)
        samples.append({"id": did, "title": f"{digit}: {modality} degraded ({kind} {level:g})", "files": files,
                        "expected": str(digit), "note": note})
    # missing inputs: a blank sheet of paper and a silent recording
    Image.new("L", (SIZE, SIZE), 255).save(out / "blank.png", optimize=True)
    save_wav(out / "silence.wav", np.zeros(8000, np.float32))
    samples.append({"id": "zero-missing-image", "title": "0: image missing (blank sheet)",
                    "files": {"image": "blank.png", "audio": "zero.wav"}, "expected": "0",
                    "note": "nothing drawn: the image branch's quality collapses and the recording decides"})
    samples.append({"id": "two-missing-audio", "title": "2: recording missing (silence)",
                    "files": {"image": "two.png", "audio": "silence.wav"}, "expected": "2",
                    "note": "a silent recording: the audio branch's quality collapses and the drawing decides"})
    # foreign inputs: not a digit / not speech, from families held out of the bundle's training
    # (app/modalities/outliers.py; the recipe's [training.held_out] foreign); the unfamiliar mark should appear
    from app.modalities import outliers

    board = outliers.generate("image", "checkerboard", np.random.default_rng(11), {"size": [SIZE, SIZE]})
    Image.fromarray(board).save(out / "checkerboard.png", optimize=True)
    save_wav(out / "hum.wav", outliers.generate("audio", "hum", np.random.default_rng(12), {"sample_rate": 8000}))
    samples.append({"id": "three-foreign-image", "title": "3: image is not a digit (checkerboard)",
                    "files": {"image": "checkerboard.png", "audio": "three.wav"}, "expected": "3", "foreign": "image",
                    "note": "a checkerboard, a kind of picture never seen in training: the image is marked unfamiliar "
                            "and the recording decides"})
    samples.append({"id": "seven-foreign-audio", "title": "7: recording is not speech (mains hum)",
                    "files": {"image": "seven.png", "audio": "hum.wav"}, "expected": "7", "foreign": "audio",
                    "note": "mains hum, a sound never heard in training: the recording is marked unfamiliar "
                            "and the drawing decides"})
    # a spoken word that is not a digit: a word and a voice kept out of training (scripts/tts.py HELDOUT_*)
    save_wav(out / "hello.wav", synthesise(HELDOUT_WORDS[0], "en-us-nyc+john", 150, 50, trim=False))
    samples.append({"id": "two-foreign-words", "title": "2: recording is a word, not a digit ('hello')",
                    "files": {"image": "two.png", "audio": "hello.wav"}, "expected": "2", "foreign": "audio",
                    "note": "'hello' spoken by a voice never heard in training: a voice, but no digit; the recording "
                            "is marked unfamiliar and the drawing decides"})
    (out / "samples.json").write_text(json.dumps(samples, indent=2) + "\n", encoding="utf-8")

    # --- measure: predictions on the committed samples ---------------------------------------
    report = {"samples": []}
    for s in samples:
        pred = predictor.predict_files({k: out / v for k, v in s["files"].items()})
        row = {"id": s["id"], "expected": s["expected"], "fused": pred.label,
               **{f"{n}_label": r.label for n, r in pred.modalities.items()},
               **{f"{n}_quality": round(r.quality, 3) for n, r in pred.modalities.items()},
               **{f"{n}_share": round(r.share, 3) for n, r in pred.modalities.items()}}
        report["samples"].append(row)
        print(row)
    # --- measure: synthesised speech, every digit x every held-out voice, audio branch alone; and the digits
    # respelled with a foreign accent by the held-out languages' voices (tts.py HELDOUT_LANGUAGES)
    grid = [f"{a}+{v}" for a in HELDOUT_ACCENTS for v in HELDOUT_VARIANTS]
    accented = [accent_voice(lang, v) for lang in HELDOUT_LANGUAGES for v in ACCENT_VARIANTS]
    drawn_correct = 0
    # drawn digits: every digit x every font, image branch alone
    fonts_hits = {}
    for font in FONT_NAMES:
        raws = []
        for d in range(10):
            tmp = out / "_tmp.png"
            draw_digit(d, font, np.random.default_rng(d)).save(tmp)
            raws.append({"image": image_m.load(tmp), "audio": audio_m.blank()})
        tmp.unlink()
        preds = predictor.predict_many(raws)
        fonts_hits[font] = sum(p.modalities["image"].label == str(d) for d, p in enumerate(preds))
        drawn_correct += fonts_hits[font]
    report["synthesised_speech"] = heard_by_voices(predictor, image_m, grid, WORDS)
    report["accented_speech"] = heard_by_voices(predictor, image_m, accented, ACCENT_SPELLINGS)
    report["drawn_digits"] = {"fonts": len(FONT_NAMES), "images": 10 * len(FONT_NAMES), "correct": drawn_correct,
                              "accuracy": drawn_correct / (10 * len(FONT_NAMES)), "per_font_correct_of_10": fonts_hits}
    print(json.dumps({k: v for k, v in report.items() if k != "samples"}, indent=1))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
