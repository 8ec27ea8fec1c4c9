"""Degradations in no list of the project: does a bundle's quality score fall for them too?

    .venv/bin/python scripts/probe_degradations.py --model A.safetensors [--model B.safetensors] \\
        [--manifest work/avmnist/test.csv] [--pairs 500] [--json-out work/probe.json]

None of these kinds is in app/modalities (not a corruption, not in the training zoo, not held out by a
recipe), so no recipe can have trained on one and no training choice was made by looking at them: they are
measured once per bundle, the way a user's own damaged files would meet it. Per kind, one modality of every
pair degraded at levels 2.5, 5, 7.5 and 10 (the other clean), on a fixed random subset of `--manifest`:
quality AUROC clean against degraded (1 = every clean input scores higher), the degraded input's mean share,
and the branch's accuracy on it.

Image (28x28, light strokes on black): pixelate (fewer pixels), motion_blur (a camera shake), rotate (up to
90 degrees), shift (off centre, up to 12 px), erode (thinner, broken strokes), gradient (a shaded page).
Audio (8 kHz): highpass (no low end, a tinny speaker), far (quiet, above a noise floor: a distant
microphone), flutter (tape wow and flutter), mp3 (MPEG layer III through libsndfile, 8 kHz, lower bitrate
with the level).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from app.data.manifest import read_manifest  # noqa: E402
from app.qmf.evaluate import auroc, decode_rows  # noqa: E402
from app.qmf.predictor import Predictor  # noqa: E402

LEVELS = (2.5, 5.0, 7.5, 10.0)


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def pixelate(raw: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    h, w = raw.shape
    side = max(3, round(min(h, w) * (1 - 0.085 * level)))
    small = Image.fromarray(raw).resize((side, side), Image.Resampling.BOX)
    return np.asarray(small.resize((w, h), Image.Resampling.NEAREST))


def motion_blur(raw: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    length = 1 + 0.7 * level
    angle = rng.uniform(0, math.pi)
    steps = max(2, int(round(length * 2)))
    acc = np.zeros(raw.shape, np.float64)
    img = Image.fromarray(raw)
    for t in np.linspace(-length / 2, length / 2, steps):
        dx, dy = t * math.cos(angle), t * math.sin(angle)
        acc += np.asarray(img.transform(img.size, Image.Transform.AFFINE, (1, 0, dx, 0, 1, dy),
                                        resample=Image.Resampling.BILINEAR), np.float64)
    return _u8(acc / steps)


def rotate(raw: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    angle = 9.0 * level * (1 if rng.random() < 0.5 else -1)
    return np.asarray(Image.fromarray(raw).rotate(angle, resample=Image.Resampling.BILINEAR))


def shift(raw: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    d = 1.2 * level
    a = rng.uniform(0, 2 * math.pi)
    img = Image.fromarray(raw)
    return np.asarray(img.transform(img.size, Image.Transform.AFFINE, (1, 0, d * math.cos(a), 0, 1, d * math.sin(a)),
                                    resample=Image.Resampling.BILINEAR))


def erode(raw: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    thin = np.asarray(Image.fromarray(raw).filter(ImageFilter.MinFilter(3)), np.float64)
    a = level / 10
    out = (1 - a) * raw.astype(np.float64) + a * thin
    return _u8(out * (1 - 0.05 * level))  # and fainter ink


def gradient(raw: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    h, w = raw.shape
    a = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    ramp = (xx * math.cos(a) + yy * math.sin(a))
    ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-9)
    return _u8(raw.astype(np.float64) + 18.0 * level * ramp)


def highpass(x: np.ndarray, level: float, rng: np.random.Generator, sr: int = 8000) -> np.ndarray:
    cut = 100 + 150 * level
    spec = np.fft.rfft(x)
    spec[np.fft.rfftfreq(x.size, 1 / sr) < cut] = 0
    return np.fft.irfft(spec, n=x.size).astype(np.float32)


def far(x: np.ndarray, level: float, rng: np.random.Generator, sr: int = 8000) -> np.ndarray:
    quiet = x * 10 ** (-4.0 * level / 20)
    floor = rng.normal(0, 10 ** (-60 / 20), x.size)
    return np.clip(quiet + floor, -1, 1).astype(np.float32)


def flutter(x: np.ndarray, level: float, rng: np.random.Generator, sr: int = 8000) -> np.ndarray:
    n = x.size
    t = np.arange(n) / sr
    depth = 0.006 * level  # relative speed deviation
    rate_wow, rate_flutter = rng.uniform(0.5, 2.0), rng.uniform(4.0, 9.0)
    speed = 1 + depth * (0.7 * np.sin(2 * math.pi * rate_wow * t) + 0.3 * np.sin(2 * math.pi * rate_flutter * t + 1.0))
    pos = np.cumsum(speed) - speed[0]
    return np.interp(pos, np.arange(n), x, right=0.0).astype(np.float32)


def mp3(x: np.ndarray, level: float, rng: np.random.Generator, sr: int = 8000) -> np.ndarray:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="MP3", compression_level=min(0.99, 0.099 * level))
    buf.seek(0)
    y, _ = sf.read(buf, dtype="float32")
    out = np.zeros_like(x)
    out[: min(x.size, y.size)] = y[: x.size]
    return out


KINDS = {"image": {"pixelate": pixelate, "motion_blur": motion_blur, "rotate": rotate, "shift": shift,
                   "erode": erode, "gradient": gradient},
         "audio": {"highpass": highpass, "far": far, "flutter": flutter, "mp3": mp3}}


def probe(path: str, data, seed: int) -> dict:
    from eval_foreign import forward

    predictor = Predictor.load(path, backend="torch")
    y = data.labels
    clean = forward(predictor, data.raws)
    rows = []
    for n, kinds in KINDS.items():
        if n not in predictor.modalities:
            continue
        for ki, (kind, fn) in enumerate(kinds.items()):
            row = {"modality": n, "kind": kind, "levels": {}}
            for level in LEVELS:
                raws = [{**r, n: fn(r[n], level, np.random.default_rng([seed, ki, i, int(level * 10)]))}
                        for i, r in enumerate(data.raws)]
                out = forward(predictor, raws)
                row["levels"][str(level)] = {"auroc": auroc(clean[f"q:{n}"], out[f"q:{n}"]),
                                             "share": float(out[f"s:{n}"].mean()),
                                             "branch_accuracy": float(np.mean(out[f"z:{n}"].argmax(1) == y))}
            shares = [float(clean[f"s:{n}"].mean())] + [row["levels"][str(v)]["share"] for v in LEVELS]
            row["share_falls"] = all(b <= a + 1e-9 for a, b in zip(shares, shares[1:], strict=False))
            rows.append(row)
            print(f"  {Path(path).name} {n}/{kind}: AUROC " + " ".join(
                f"{row['levels'][str(v)]['auroc']:.3f}" for v in LEVELS), file=sys.stderr)
    return {"model": Path(path).name, "kinds": rows}


def markdown(results: list[dict]) -> str:
    lines = ["| kind | " + " | ".join(f"{r['model']}: AUROC ε=2.5 / 5 / 7.5 / 10; share falls?; branch acc ε=10" for r in results)
             + " |", "|---|" + "---|" * len(results)]
    for i, row in enumerate(results[0]["kinds"]):
        cells = []
        for r in results:
            k = r["kinds"][i]
            cells.append(" / ".join(f"{k['levels'][str(v)]['auroc']:.3f}" for v in LEVELS)
                         + f"; {'yes' if k['share_falls'] else 'NO'}; {100 * k['levels']['10.0']['branch_accuracy']:.1f} %")
        lines.append(f"| {row['modality']} {row['kind']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--manifest", default=str(ROOT / "work" / "avmnist" / "test.csv"))
    ap.add_argument("--pairs", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json-out")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    ref = Predictor.load(args.model[-1], backend="torch")
    rows = read_manifest(args.manifest, modalities=list(ref.modalities)).rows
    order = np.random.default_rng(args.seed).permutation(len(rows))[: args.pairs]
    data = decode_rows(ref, [rows[i] for i in sorted(order)])
    results = [probe(p, data, args.seed) for p in args.model]
    text = markdown(results)
    print(text)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"manifest": Path(args.manifest).name, "pairs": len(data.labels),
                                                   "results": results, "markdown": text}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
