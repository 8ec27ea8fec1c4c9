"""Who gets the unfamiliar mark: clean digits by voices the model never met against foreign recordings.

    .venv/bin/python scripts/mark_tradeoff.py [--model resources/models/avmnist-qmf.safetensors] \\
        [--voices work/tts/heldout] [--pairs 500] [--json-out work/mark_tradeoff.json]

The mark is calibrated on clean validation inputs, whose speakers the model heard in training. A clean
recording by a voice it never met (`--voices`: scripts/tts.py's HELDOUT_* voices, written by
scripts/make_tts_training.py; files DIGIT_VOICE_TAKE.wav) is not foreign, but its quality is lower. For the
audio input this prints how often the mark falls on such recordings, on clean test recordings and on each
foreign family of app/modalities/outliers.py (eval_foreign.py's inputs, on `--pairs` test pairs):

* for the shipped signal (QMF's quality) at several calibration percentiles (`qmf calibrate
  --unfamiliar-percentile`), the threshold computed as `qmf calibrate` computes it, on
  `--calibration-manifest`'s clean pairs;
* for eval_foreign.py's other confidence signals computed from the logits (maximum softmax probability, MLA's
  entropy, TMC's uncertainty) below the 1st percentile of their own clean calibration values.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from eval_foreign import DEFAULT_WORDS, fit_mahalanobis, foreign_pairs, forward, read_pools, signals  # noqa: E402

from app.data.manifest import read_manifest  # noqa: E402
from app.modalities import outliers as foreign  # noqa: E402
from app.qmf.calibration import DEFAULT_UNFAMILIAR_PERCENTILE, clean_quality  # noqa: E402
from app.qmf.evaluate import decode_rows  # noqa: E402
from app.qmf.predictor import Predictor  # noqa: E402

PERCENTILES = (0.2, 0.5, 1.0, 2.0, 5.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "resources" / "models" / "avmnist-qmf.safetensors"))
    ap.add_argument("--voices", type=Path, default=ROOT / "work" / "tts" / "heldout")
    ap.add_argument("--manifest", default=str(ROOT / "work" / "avmnist" / "test.csv"))
    ap.add_argument("--calibration-manifest", default=str(ROOT / "work" / "avmnist" / "val_small.csv"))
    ap.add_argument("--calibration-pairs", type=int, default=2000)
    ap.add_argument("--pairs", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json-out")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    predictor = Predictor.load(args.model, backend="torch")
    names = list(predictor.modalities)
    if "audio" not in predictor.modalities:
        raise SystemExit(f"{args.model}: no input named 'audio'")
    audio = predictor.modalities["audio"]
    scale = predictor.model.config.confidence_scale
    files = sorted(args.voices.glob("*.wav"))
    if not files:
        raise SystemExit(f"--voices: no *.wav in {args.voices} (scripts/make_tts_training.py writes work/tts/heldout)")
    cal = decode_rows(predictor, read_manifest(args.calibration_manifest, modalities=names).rows[: args.calibration_pairs])
    rows = read_manifest(args.manifest, modalities=names).rows
    order = np.random.default_rng(args.seed).permutation(len(rows))[: args.pairs]
    data = decode_rows(predictor, [rows[i] for i in sorted(order)])

    cal_out = forward(predictor, cal.raws)
    maha = fit_mahalanobis(cal_out["f:audio"], cal.labels, len(predictor.labels))

    def audio_signals(raws: list[dict]) -> dict[str, np.ndarray]:
        out = forward(predictor, raws)
        return {"quality": out["q:audio"], **signals(out["z:audio"], out["f:audio"], maha, scale)}

    groups = {"clean test recordings": audio_signals(data.raws),
              "clean digits, unheard voices": audio_signals(
                  [{**data.raws[k % len(data.raws)], "audio": audio.load(f)} for k, f in enumerate(files)])}
    pools = read_pools(predictor, [f"audio:spoken_words={DEFAULT_WORDS}"] if DEFAULT_WORDS.is_dir() else [])
    for fam in foreign.families_for(audio.kind):
        if fam in foreign.POOLED and ("audio", fam) not in pools:
            print(f"audio/{fam}: no pool ({DEFAULT_WORDS}), left out", file=sys.stderr)
            continue
        groups[f"foreign: {fam}"] = audio_signals(foreign_pairs(predictor, data.raws, "audio", fam, pools.get(("audio", fam)), args.seed))

    # the shipped threshold, as `qmf calibrate` computes it (np.percentile of the clean calibration quality)
    cal_quality = clean_quality(predictor, cal.raws)["audio"]
    cal_signals = {"quality": cal_quality, **signals(cal_out["z:audio"], cal_out["f:audio"], maha, scale)}
    by_percentile = {p: {g: float(np.mean(v["quality"] < np.percentile(cal_quality, p))) for g, v in groups.items()}
                     for p in PERCENTILES}
    by_signal = {s: {g: float(np.mean(v[s] < np.percentile(cal_signals[s], DEFAULT_UNFAMILIAR_PERCENTILE)))
                     for g, v in groups.items()}
                 # qmf_energy is the quality before the scale; the Mahalanobis distance is fitted on these same
                 # calibration pairs, so a threshold taken from them marks over half of the clean test recordings
                 for s in cal_signals if s not in ("qmf_energy", "mahalanobis_neg")}

    heads = list(groups)
    lines = ["| threshold | " + " | ".join(heads) + " |", "|---" * (len(heads) + 1) + "|"]
    for p, r in by_percentile.items():
        lines.append(f"| quality below percentile {p:g} | " + " | ".join(f"{100 * r[g]:.1f} %" for g in heads) + " |")
    for s, r in by_signal.items():
        if s != "quality":
            lines.append(f"| {s} below percentile {DEFAULT_UNFAMILIAR_PERCENTILE:g} | "
                         + " | ".join(f"{100 * r[g]:.1f} %" for g in heads) + " |")
    print("\n".join(lines))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"model": Path(args.model).name, "voices": len(files),
                                                   "pairs": len(data.raws), "marked_by_quality_percentile": by_percentile,
                                                   "marked_by_signal_at_1st_percentile": by_signal,
                                                   "table": "\n".join(lines)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
