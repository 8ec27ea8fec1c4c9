"""Foreign inputs, held-out degradations and percentile calibration, for one or more bundles, side by side.

    .venv/bin/python scripts/eval_foreign.py --model OLD.safetensors --model NEW.safetensors \\
        [--manifest work/avmnist/test.csv] [--pairs 1000] [--calibration-manifest work/avmnist/val_small.csv] \\
        [--json-out work/eval_foreign.json] [--drawn]

For every bundle, on the same `--pairs` pairs of `--manifest` (a fixed random subset, seed 0):

* **foreign inputs**, per family of app/modalities/outliers.py (marked "train" when the NEW recipe trained on
  it, "held out" otherwise): one input of every pair replaced by a generated foreign input; AUROC of that
  branch's quality, clean pairs against foreign ones (1 = every clean input scores higher); % of pairs where
  the foreign input holds the larger share; % where the fused answer equals the clean partner's alone; fused
  accuracy against the partner alone. A pooled family (spoken_words) plays the recordings of `--pool`
  (default work/words/heldout: words and voices that training never used; left out when there is none);
* **held-out degradations** (the NEW recipe's `[training.held_out] degradations`, plus the audio hum and
  brown-noise mixes of app/modalities/zoo.py that no recipe may train on) at eps 5 and 10: AUROC of the
  degraded branch's quality, clean against degraded (every input of that modality degraded); and the report's
  protocol (each input degraded with probability 0.5, kind drawn among the held-out ones): QMF's fused
  accuracy against late fusion of the *same* branches;
* clean fused accuracy; **percentile calibration**: the share of clean inputs below the bundle's 1st and 5th
  percentile (a bundle without calibration is calibrated in memory on `--calibration-manifest`, never on
  the evaluated split);
* **confidence signals** side by side on the same logits (foreign families pooled, and held-out
  degradations at eps 10): QMF energy, maximum softmax probability, MLA's entropy gate (Zhang et al., CVPR
  2024: lower entropy, more weight), TMC's Dempster-Shafer uncertainty K / sum(softplus(z) + 1) (Han et al.,
  ICLR 2021), and a class-conditional Mahalanobis distance on the penultimate features (Lee et al., NeurIPS
  2018; class means and shared covariance from the calibration manifest's clean pairs);
* with `--drawn`: image-branch accuracy on digits drawn with Pillow fonts (scripts/make_samples.py's fonts and
  warp, 8 fonts x 10 digits x `--drawn-seeds` warps).
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

from app.data.manifest import read_manifest  # noqa: E402
from app.modalities import outliers as foreign  # noqa: E402
from app.modalities.zoo import EVAL_ONLY, degrade  # noqa: E402
from app.qmf.calibration import build_calibration, clean_quality, modality_table, read_calibration  # noqa: E402
from app.qmf.evaluate import auroc, decode_rows  # noqa: E402
from app.qmf.outlier_exposure import read_pool  # noqa: E402
from app.qmf.predictor import Predictor  # noqa: E402

DEFAULT_HELD_OUT = {"image": ["salt_pepper", "blur", "occlusion", "contrast"],
                    "audio": ["dropout", "clipping", "bandlimit", "babble"]}
DEFAULT_FOREIGN_TRAIN: dict[str, list[str]] = {}
DEFAULT_WORDS = ROOT / "work" / "words" / "heldout"


def read_pools(predictor: Predictor, specs: list[str]) -> dict[tuple[str, str], list[np.ndarray]]:
    """--pool INPUT:FAMILY=FOLDER entries: every file of FOLDER read by that input's reader (`read_pool`)."""
    pools = {}
    for spec in specs:
        key, _, folder = spec.partition("=")
        name, _, fam = key.partition(":")
        if name not in predictor.modalities or fam not in foreign.POOLED:
            raise SystemExit(f"--pool {spec}: expected INPUT:FAMILY=FOLDER with a pooled family "
                             f"({', '.join(sorted(foreign.POOLED))})")
        try:
            pools[(name, fam)] = read_pool(predictor.modalities[name], folder, f"--pool {spec}")
        except ValueError as exc:
            raise SystemExit(str(exc)) from None
    return pools


def forward(predictor: Predictor, raws: list[dict], batch: int = 500) -> dict:
    """Per-modality logits and penultimate features, fused logits, late-fusion logits, quality, share (numpy)."""
    names = list(predictor.modalities)
    acc: dict[str, list] = {}
    model = predictor.model
    with torch.inference_mode():
        for s in range(0, len(raws), batch):
            x = {n: torch.as_tensor(v) for n, v in predictor.to_batch(raws[s: s + batch]).items()}
            feats = {n: model.branches[n].encoder(x[n]) for n in names}
            logits = {n: model.branches[n].classifier(feats[n]) for n in names}
            from app.qmf.fusion import fuse_late

            out = model.fuse(logits)
            parts = {"fused": out.fused, "late": fuse_late(logits),
                     **{f"z:{n}": logits[n] for n in names}, **{f"f:{n}": feats[n] for n in names},
                     **{f"q:{n}": out.quality[n] for n in names}, **{f"s:{n}": out.share[n] for n in names}}
            for k, v in parts.items():
                acc.setdefault(k, []).append(v.cpu().numpy())
    return {k: np.concatenate(v) for k, v in acc.items()}


def foreign_pairs(predictor: Predictor, raws: list[dict], name: str, family: str, pool: list[np.ndarray] | None,
                  seed: int) -> list[dict]:
    """`raws` with input `name` of every pair replaced by a foreign input of `family` (a pooled family plays its
    pool's recordings in turn; a source-based one the next pair's input), each from a generator of its own."""
    kind = predictor.modalities[name].kind
    fi = foreign.families_for(kind).index(family)
    out = []
    for i, r in enumerate(raws):
        rng = np.random.default_rng([seed, fi, i, list(predictor.modalities).index(name)])
        src = pool[i % len(pool)] if pool else raws[(i + 1) % len(raws)][name]
        out.append({**r, name: foreign.generate(kind, family, rng, predictor.modalities[name].params, source=src)})
    return out


def gated_fusion(out: dict, names: list[str], cal: dict) -> np.ndarray:
    """NOT the shipped rule, measured beside it: QMF's fusion with an unfamiliar input's weight set to 0
    (both unfamiliar: plain QMF)."""
    w = np.stack([np.clip(out[f"q:{n}"], 0, None) for n in names])
    keep = np.stack([out[f"q:{n}"] >= modality_table(cal, n)["unfamiliar_below"] for n in names])
    keep[:, ~keep.any(0)] = True
    return sum((w[i] * keep[i])[:, None] * out[f"z:{n}"] for i, n in enumerate(names))


def signals(z: np.ndarray, f: np.ndarray, maha: tuple[np.ndarray, np.ndarray] | None, scale: float) -> dict[str, np.ndarray]:
    """Confidence scores (larger = more trusted) from one branch's logits z [N, K] and features f [N, D]."""
    zt = torch.from_numpy(z)
    p = torch.softmax(zt, -1)
    out = {
        "qmf_energy": (torch.logsumexp(zt, -1) * scale).numpy(),
        "max_softmax": p.max(-1).values.numpy(),
        "mla_neg_entropy": (p * torch.log(p.clamp_min(1e-12))).sum(-1).numpy(),
        "tmc_neg_uncertainty": (-z.shape[1] / (torch.nn.functional.softplus(zt) + 1).sum(-1)).numpy(),
    }
    if maha is not None:
        means, precision = maha
        d = f[:, None, :] - means[None]  # [N, K, D]
        dist = np.einsum("nkd,de,nke->nk", d, precision, d)
        out["mahalanobis_neg"] = -dist.min(1)
    return out


def fit_mahalanobis(f: np.ndarray, y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    means = np.stack([f[y == c].mean(0) if np.any(y == c) else f.mean(0) for c in range(k)])
    centred = f - means[y]
    cov = centred.T @ centred / len(f) + 1e-3 * np.eye(f.shape[1])
    return means, np.linalg.inv(cov)


def rate(x: np.ndarray) -> float:
    return float(np.mean(x)) if len(x) else float("nan")


def evaluate(path: str, data, cal_data, args, trained: dict[str, list[str]], held: dict[str, list[str]],
             pools: dict[tuple[str, str], list[np.ndarray]]) -> dict:
    predictor = Predictor.load(path, backend="torch")  # reads the branches and features
    names = list(predictor.modalities)
    scale = predictor.model.config.confidence_scale
    y = data.labels
    cal = read_calibration(predictor.manifest)
    cal_note = "bundle"
    if cal is None:
        cal = build_calibration(clean_quality(predictor, cal_data.raws), "in memory")
        cal_note = f"in memory on {Path(args.calibration_manifest).name}"
    cal_fwd = forward(predictor, cal_data.raws)
    maha = {n: fit_mahalanobis(cal_fwd[f"f:{n}"], cal_data.labels, len(predictor.labels)) for n in names}
    clean = forward(predictor, data.raws)
    res: dict = {"model": Path(path).name, "calibration": cal_note, "pairs": len(y)}
    res["clean_fused_accuracy"] = rate(clean["fused"].argmax(1) == y)
    res["clean_gated_fused_accuracy"] = rate(gated_fusion(clean, names, cal).argmax(1) == y)
    res["clean_late_accuracy"] = rate(clean["late"].argmax(1) == y)
    res["clean_branch_accuracy"] = {n: rate(clean[f"z:{n}"].argmax(1) == y) for n in names}
    res["percentile_calibration"] = {}
    for n in names:
        t = modality_table(cal, n)
        q = clean[f"q:{n}"]
        p1 = float(np.interp(1.0, t["percentiles"], t["quality"]))
        p5 = float(np.interp(5.0, t["percentiles"], t["quality"]))
        res["percentile_calibration"][n] = {"below_1st": rate(q < t["unfamiliar_below"] if cal_note == "bundle" else q < p1),
                                            "below_5th": rate(q < p5)}
    clean_sig = {n: signals(clean[f"z:{n}"], clean[f"f:{n}"], maha[n], scale) for n in names}

    # --- foreign inputs ---
    res["foreign"] = []
    pooled: dict[str, dict[str, list]] = {n: {} for n in names}
    for n in names:
        partner = [m for m in names if m != n][0]
        kind = predictor.modalities[n].kind
        alone = clean[f"z:{partner}"].argmax(1)
        for fam in foreign.families_for(kind):
            pool = pools.get((n, fam))
            if fam in foreign.POOLED and not pool:
                print(f"  {n}/{fam}: no --pool for it, left out", file=sys.stderr)
                continue
            out = forward(predictor, foreign_pairs(predictor, data.raws, n, fam, pool, args.seed))
            q_f = out[f"q:{n}"]
            fused = out["fused"].argmax(1)
            t = modality_table(cal, n)
            gated = gated_fusion(out, names, cal).argmax(1)
            row = {"modality": n, "family": fam,
                   "split": ("train" if fam in trained.get(n, []) else "held out")
                   + (" (held-out recordings)" if pool and fam in trained.get(n, []) else ""),
                   "auroc": auroc(clean[f"q:{n}"], q_f),
                   "foreign_larger_share": rate(out[f"s:{n}"] > out[f"s:{partner}"]),
                   "fused_equals_partner": rate(fused == alone),
                   "fused_accuracy": rate(fused == y), "partner_accuracy": rate(alone == y),
                   "unfamiliar_marked": rate(q_f < t["unfamiliar_below"]),
                   "gated_fused_equals_partner": rate(gated == alone)}
            res["foreign"].append(row)
            sig = signals(out[f"z:{n}"], out[f"f:{n}"], maha[n], scale)
            for k, v in sig.items():
                pooled[n].setdefault(k, []).append(v)
            print(f"  {Path(path).name} foreign {n}/{fam}: AUROC {row['auroc']:.3f} larger share "
                  f"{row['foreign_larger_share']:.1%} fused=partner {row['fused_equals_partner']:.1%}", file=sys.stderr)
    res["signals_foreign"] = {n: {k: auroc(clean_sig[n][k], np.concatenate(v)) for k, v in pooled[n].items()}
                              for n in names}

    # --- held-out degradations: AUROC per kind and level ---
    res["degradations"] = []
    deg_pooled: dict[str, dict[str, list]] = {n: {} for n in names}
    for n in names:
        for ki, kind in enumerate(held.get(n, [])):
            for level in (5.0, 10.0):
                raws = [{**r, n: degrade(predictor.modalities[n], r[n], kind, level,
                                         np.random.default_rng([args.seed, 100 + ki, i, int(level)]))}
                        for i, r in enumerate(data.raws)]
                out = forward(predictor, raws)
                res["degradations"].append({"modality": n, "kind": kind, "level": level,
                                            "auroc": auroc(clean[f"q:{n}"], out[f"q:{n}"]),
                                            "mean_share": float(out[f"s:{n}"].mean()),
                                            "branch_accuracy": rate(out[f"z:{n}"].argmax(1) == y)})
                if level == 10.0:
                    for k, v in signals(out[f"z:{n}"], out[f"f:{n}"], maha[n], scale).items():
                        deg_pooled[n].setdefault(k, []).append(v)
    res["signals_degraded_eps10"] = {n: {k: auroc(clean_sig[n][k], np.concatenate(v)) for k, v in deg_pooled[n].items()}
                                     for n in names}

    # --- protocol with held-out kinds: QMF vs late fusion of the same branches ---
    res["protocol"] = []
    for level in (5.0, 10.0):
        fused_hits, late_hits = [], []
        for seed in range(args.protocol_seeds):
            rng = np.random.default_rng([seed, int(level), 7])
            raws = []
            for i, r in enumerate(data.raws):
                r = dict(r)
                for n in names:
                    if held.get(n) and rng.random() < 0.5:
                        kind = held[n][int(rng.integers(len(held[n])))]
                        r[n] = degrade(predictor.modalities[n], r[n], kind, level, np.random.default_rng([seed, i, names.index(n), 3]))
                raws.append(r)
            out = forward(predictor, raws)
            fused_hits.append(rate(out["fused"].argmax(1) == y))
            late_hits.append(rate(out["late"].argmax(1) == y))
        res["protocol"].append({"level": level, "qmf": float(np.mean(fused_hits)), "late_same_branches": float(np.mean(late_hits))})
    return res


def drawn_accuracy(path: str, seeds: int) -> dict:
    sys.path.insert(0, str(ROOT / "scripts"))
    import tempfile

    from make_samples import FONT_NAMES, draw_digit

    predictor = Predictor.load(path, backend="torch")
    image = predictor.modalities["image"]
    hits = total = 0
    per_font = {}
    with tempfile.TemporaryDirectory() as tmp:
        for font in FONT_NAMES:
            raws, labels = [], []
            for d in range(10):
                for s in range(seeds):
                    f = Path(tmp) / "d.png"
                    draw_digit(d, font, np.random.default_rng([d, s])).save(f)
                    raws.append({"image": image.load(f), "audio": predictor.modalities["audio"].blank()})
                    labels.append(d)
            out = forward(predictor, raws)
            h = int((out["z:image"].argmax(1) == np.asarray(labels)).sum())
            per_font[font] = h / len(labels)
            hits += h
            total += len(labels)
    return {"accuracy": hits / total, "images": total, "per_font": per_font}


def foreign_row(result: dict, like: dict) -> dict | None:
    """`result`'s foreign-input row for the same input and family as `like` (None: not measured there)."""
    return next((f for f in result["foreign"] if (f["modality"], f["family"]) == (like["modality"], like["family"])), None)


def markdown(results: list[dict]) -> str:
    names = [r["model"] for r in results]
    lines = ["| input / family | split | " + " | ".join(
        f"{m}: AUROC / larger share / fused=partner / fused acc (partner alone) / marked / gated fused=partner" for m in names)
        + " |", "|---|---|" + "---|" * len(names)]
    for row in results[-1]["foreign"]:  # the families the last (newest) run measured, split as its recipe says
        cells = [f"{f['auroc']:.3f} / {f['foreign_larger_share']:.1%} / {f['fused_equals_partner']:.1%} / "
                 f"{f['fused_accuracy']:.1%} ({f['partner_accuracy']:.1%}) / {f['unfamiliar_marked']:.1%} / "
                 f"{f['gated_fused_equals_partner']:.1%}" if f else "not measured" for f in (foreign_row(r, row) for r in results)]
        lines.append(f"| {row['modality']} {row['family']} | {row['split']} | " + " | ".join(cells) + " |")
    lines += ["", "| held-out degradation | eps | " + " | ".join(f"{m}: AUROC" for m in names) + " |",
              "|---|---|" + "---|" * len(names)]
    for i, row in enumerate(results[0]["degradations"]):
        lines.append(f"| {row['modality']} {row['kind']} | {row['level']:g} | "
                     + " | ".join(f"{r['degradations'][i]['auroc']:.3f}" for r in results) + " |")
    lines += ["", "| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines.append("| clean fused accuracy | " + " | ".join(f"{r['clean_fused_accuracy']:.2%}" for r in results) + " |")
    lines.append("| clean fused accuracy, unfamiliar gate (not shipped) | "
                 + " | ".join(f"{r['clean_gated_fused_accuracy']:.2%}" for r in results) + " |")
    for j, p in enumerate(results[0]["protocol"]):
        lines.append(f"| held-out kinds eps {p['level']:g}: QMF / late (same branches) | "
                     + " | ".join(f"{r['protocol'][j]['qmf']:.2%} / {r['protocol'][j]['late_same_branches']:.2%}" for r in results) + " |")
    for n in results[0]["percentile_calibration"]:
        lines.append(f"| clean {n} below 1st / 5th percentile | "
                     + " | ".join(f"{r['percentile_calibration'][n]['below_1st']:.1%} / {r['percentile_calibration'][n]['below_5th']:.1%}"
                                  for r in results) + " |")
    if "drawn" in results[0]:
        lines.append("| font-drawn digits, image branch | " + " | ".join(f"{r['drawn']['accuracy']:.1%}" for r in results) + " |")
    lines += ["", "| signal (AUROC clean vs foreign / vs held-out eps 10) | " + " | ".join(names) + " |",
              "|---|" + "---|" * len(names)]
    for n in results[0]["signals_foreign"]:
        for k in results[0]["signals_foreign"][n]:
            lines.append(f"| {n} {k} | " + " | ".join(
                f"{r['signals_foreign'][n][k]:.3f} / {r['signals_degraded_eps10'][n].get(k, float('nan')):.3f}" for r in results) + " |")
    return "\n".join(lines)


def seeds_summary(runs: list[dict]) -> str:
    """Mean and range over training seeds (one result each, same pairs) of the headline figures."""
    def cell(values: list[float], fmt: str) -> str:
        return f"{np.mean(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"

    lines = [f"Over {len(runs)} training seeds: mean (lowest-highest).", "",
             "| input / family | split | AUROC | larger share | fused = partner |", "|---|---|---|---|---|"]
    for row in runs[0]["foreign"]:
        fam = [f for f in (foreign_row(r, row) for r in runs) if f]
        lines.append(f"| {row['modality']} {row['family']} | {row['split']} | {cell([f['auroc'] for f in fam], '.3f')} | "
                     f"{cell([100 * f['foreign_larger_share'] for f in fam], '.1f')} % | "
                     f"{cell([100 * f['fused_equals_partner'] for f in fam], '.1f')} % |")
    lines += ["", "| held-out degradation | eps | AUROC |", "|---|---|---|"]
    for i, row in enumerate(runs[0]["degradations"]):
        lines.append(f"| {row['modality']} {row['kind']} | {row['level']:g} | {cell([r['degradations'][i]['auroc'] for r in runs], '.3f')} |")
    lines += ["", "| | mean (lowest-highest) |", "|---|---|"]
    for j, p in enumerate(runs[0]["protocol"]):
        diffs = [100 * (r["protocol"][j]["qmf"] - r["protocol"][j]["late_same_branches"]) for r in runs]
        lines.append(f"| held-out kinds eps {p['level']:g}: QMF minus late fusion of the same branches (points) | {cell(diffs, '+.2f')} |")
    if all("drawn" in r for r in runs):
        lines.append(f"| font-drawn digits, image branch (%) | {cell([100 * r['drawn']['accuracy'] for r in runs], '.1f')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, help="bundle (repeat; the LAST one's recipe names the splits)")
    ap.add_argument("--manifest", default=str(ROOT / "work" / "avmnist" / "test.csv"))
    ap.add_argument("--calibration-manifest", default=str(ROOT / "work" / "avmnist" / "val_small.csv"))
    ap.add_argument("--calibration-pairs", type=int, default=2000)
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--protocol-seeds", type=int, default=2)
    ap.add_argument("--drawn", action="store_true")
    ap.add_argument("--drawn-seeds", type=int, default=5)
    ap.add_argument("--json-out")
    ap.add_argument("--previous", help="a --json-out file of an earlier run on the same pairs: its models' columns come first")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--pool", action="append", default=[], metavar="INPUT:FAMILY=FOLDER",
                    help="the recordings a pooled family plays (default: audio:spoken_words=work/words/heldout, the "
                         "held-out words and voices of scripts/make_word_recordings.py, where that folder exists)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    ref = Predictor.load(args.model[-1], backend="torch")
    recipe = ref.manifest.get("training", {}).get("recipe", {}).get("training", {})
    trained = recipe.get("outliers", {}).get("families", DEFAULT_FOREIGN_TRAIN)
    held = {n: list(v) for n, v in (recipe.get("held_out", {}).get("degradations") or DEFAULT_HELD_OUT).items()}
    for n, m in ref.modalities.items():
        held.setdefault(n, [])
        held[n] += [k for k in sorted(EVAL_ONLY.get(m.kind, ())) if k not in held[n]]
    names = list(ref.modalities)
    rows = read_manifest(args.manifest, modalities=names).rows
    order = np.random.default_rng(args.seed).permutation(len(rows))[: args.pairs]
    data = decode_rows(ref, [rows[i] for i in sorted(order)])
    cal_rows = read_manifest(args.calibration_manifest, modalities=names).rows[: args.calibration_pairs]
    cal_data = decode_rows(ref, cal_rows)
    pools = read_pools(ref, args.pool or ([f"audio:spoken_words={DEFAULT_WORDS}"] if DEFAULT_WORDS.is_dir() else []))
    results = json.loads(Path(args.previous).read_text())["results"] if args.previous else []
    for path in args.model:
        r = evaluate(path, data, cal_data, args, trained, held, pools)
        if args.drawn:
            r["drawn"] = drawn_accuracy(path, args.drawn_seeds)
        results.append(r)
    text = markdown(results)
    print(text)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"manifest": Path(args.manifest).name, "pairs": args.pairs,
                                                   "results": results, "markdown": text}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
