"""The robustness report: docs/report.md + docs/report/*.png, regenerated from the bundle and the data folder.

    .venv/bin/python -m app.data.avmnist                 # manifests (once)
    .venv/bin/python scripts/make_report.py [--pairs 1000] [--seeds 3] [--models-dir work/models] [--no-store]

Evaluates the bundled model and the comparison models found in --models-dir (files named
`<variant>-s<seed>.safetensors`, see VARIANTS) on a fixed random subset of work/avmnist/test.csv under
the paper's protocol (each modality corrupted independently with probability 0.5, epsilon in
{0, 2.5, 5, 7.5, 10}, mean +- std over seeds), once with the corruption kinds used in training and once
with kinds never seen in training; then, for the bundle, each modality's quality-score AUROC and mean
share per corruption kind and level (and for the ablations of its recipe, ABLATIONS); worked examples on the demo samples; and stores the headline
figures in the bundle's manifest ("evaluation"). Every model sees exactly the same corrupted inputs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))  # eval_foreign's seed summary

from app.data.manifest import read_manifest  # noqa: E402
from app.qmf.bundle import load_bundle, read_bundle_manifest, save_bundle  # noqa: E402
from app.qmf.evaluate import auroc  # noqa: E402
from app.qmf.fusion import fuse_late, fuse_oracle  # noqa: E402
from app.qmf.predictor import Predictor  # noqa: E402

LEVELS = (0.0, 2.5, 5.0, 7.5, 10.0)
SEEN = {"image": ["gaussian"], "audio": ["white_noise"]}
UNSEEN = {"image": ["salt_pepper", "blur", "occlusion", "contrast"], "audio": ["dropout", "clipping", "bandlimit", "babble"]}
# variant file stem -> (row label, fusion rule). Files in --models-dir are the SHORT-schedule comparison models
# (3 epochs x 8,000 pairs); files in --models-dir/full are trained on the bundle's FULL schedule (the recipe's
# 10 epochs x 12,000 pairs) and get the variant name "<stem>-full".
SHORT = "short schedule: 3 epochs x 8,000 pairs"
FULL = "full schedule: 10 epochs x 12,000 pairs, as the bundle"
_BASE = {
    "late": ("static late fusion (trained with the late-fusion loss)", "late"),
    "qmf-l0": ("QMF, lambda = 0 (no ranking term)", "qmf"),
    "qmf-history": ("QMF, official recipe: ranking target = accumulated loss history, official margin", "qmf"),
    "qmf-current": ("QMF, ranking target = this batch's loss, official margin", "qmf"),
    "qmf-paper": ("QMF, this batch's loss, paper-form margin (the bundle's recipe)", "qmf"),
}
VARIANTS = {**{k: (f"{label}; {SHORT}", rule) for k, (label, rule) in _BASE.items()},
            **{f"{k}-full": (f"{label}; {FULL}", rule) for k, (label, rule) in _BASE.items()}}
VARIANTS["qmf-paper-full"] = (VARIANTS["qmf-paper-full"][0] + " (seed 0 = the bundle's own weights, linked in)", "qmf")
# the bundle's own recipe with another training seed (same starting weights for a fine-tuning recipe)
VARIANTS["bundle-recipe"] = ("the bundle's recipe, other training seeds (same schedule and starting weights)", "qmf")
# ablations of the bundle's recipe: one change each, same starting weights and seed. "ablate-previous" is the
# bundle's own starting weights (the round-6 bundle, one 3-epoch pass fewer: what the last pass changed);
# "ablate-untrained-floor" is that pass with the previous bundle's recipe (round 7: trained without the fusion weight
# floor, given it afterwards, recipes/experiments/avmnist-qmf-untrained-floor.toml); the two energy-bound ablations
# are the bundle's recipe with one [training.energy_bound] line edited
ABLATIONS = {
    "ablate-previous": "the bundle's starting weights (round 6: one 3-epoch pass fewer; given the weight floor after training)",
    "ablate-untrained-floor": "ablation: the previous bundle's recipe (round 7: trained without the weight floor, given it "
                              "afterwards) for the same pass",
    "ablate-no-graded": "ablation: the bundle's recipe with graded = false (no floor below degraded_out_level)",
    "ablate-no-degraded-out": "ablation: the bundle's recipe with graded = false and degraded_out_level = 0 "
                              "(no degraded input counts as an outlier)",
}
VARIANTS.update({k: (v, "qmf") for k, v in ABLATIONS.items()})
DOCS = ROOT / "docs"
FIG = DOCS / "report"


def pct(x: float) -> str:
    return f"{100 * x:.2f}"


def load_models(bundle_path: Path, models_dir: Path) -> list[dict]:
    models = [{"key": "bundle", "label": "bundled model (QMF, this batch's loss, paper-form margin; its recipe's schedule)", "rule": "qmf",
               "predictor": Predictor.load(bundle_path, backend="torch"), "variant": "bundle", "seed": None}]
    paths = [(p, "-full") for p in sorted((models_dir / "full").glob("*-s*.safetensors"))]
    paths += [(p, "") for p in sorted(models_dir.glob("*-s*.safetensors"))]
    for path, suffix in paths:
        stem, seed = path.stem.rsplit("-s", 1)
        stem += suffix
        if stem not in VARIANTS:
            continue
        label, rule = VARIANTS[stem]
        models.append({"key": f"{stem}-s{seed}", "label": label, "rule": rule, "predictor": Predictor.load(path, backend="torch"),
                       "variant": stem, "seed": int(seed)})
    ref = models[0]["predictor"]
    for m in models[1:]:
        for name, mod in m["predictor"].modalities.items():
            if mod.params != ref.modalities[name].params:
                raise SystemExit(f"{m['key']}: preprocessing differs from the bundle's; retrain from the same recipe")
    return models


def make_tensors(ref: Predictor, raws: list[dict], mask: dict, kinds: dict, level: float, seed: int) -> dict:
    """Corrupt (per the mask, kind per sample) and tensorise once; shared by every model."""
    names = list(ref.modalities)
    out = {n: [] for n in names}
    for i, raw in enumerate(raws):
        for j, n in enumerate(names):
            x = raw[n]
            if level > 0 and mask[n][i]:
                x = ref.modalities[n].corrupt(x, kinds[n][i], level, np.random.default_rng([seed, i, j]))
            out[n].append(ref.modalities[n].to_tensor(x))
    return {n: torch.stack(v) for n, v in out.items()}


@torch.inference_mode()
def forward(pred: Predictor, tensors: dict, batch: int = 500) -> dict:
    parts: dict[str, list] = {}
    n = len(next(iter(tensors.values())))
    for s in range(0, n, batch):
        res = pred.model({k: v[s : s + batch] for k, v in tensors.items()})
        for k, v in (("fused", res.fused), ("late", fuse_late(res.logits))):
            parts.setdefault(k, []).append(v)
        for m in res.logits:
            parts.setdefault(f"logits:{m}", []).append(res.logits[m])
            parts.setdefault(f"quality:{m}", []).append(res.quality[m])
            parts.setdefault(f"share:{m}", []).append(res.share[m])
    return {k: torch.cat(v) for k, v in parts.items()}


def protocol(models, raws, labels, kinds_table, seeds, log) -> dict:
    """{level: {model_key: {"acc": [..], "auroc": {m: [..]}, "share_bad": {m: [..]}, "share_clean": ..}}, "oracle": ..}"""
    ref = models[0]["predictor"]
    names = list(ref.modalities)
    n = len(raws)
    y = torch.from_numpy(labels)
    table: dict = {}
    for level in LEVELS:
        row: dict = {"models": {}, "oracle": [], "image_only": [], "audio_only": [], "bundle_late_rule": []}
        for seed in range(seeds if level > 0 else 1):
            rng = np.random.default_rng([seed, 7919])
            mask = {m: rng.random(n) < 0.5 for m in names}
            kind_rng = np.random.default_rng([seed, 104729])
            kinds = {m: [kinds_table[m][k] for k in kind_rng.integers(len(kinds_table[m]), size=n)] for m in names}
            t = make_tensors(ref, raws, mask, kinds, level, seed)
            bad = {m: torch.from_numpy(mask[m] & (level > 0)) for m in names}
            for model in models:
                out = forward(model["predictor"], t)
                logits = out["fused"] if model["rule"] == "qmf" else out["late"]
                entry = row["models"].setdefault(model["key"], {"acc": [], "auroc": {m: [] for m in names},
                                                                "share_bad": {m: [] for m in names},
                                                                "share_clean": {m: [] for m in names}})
                entry["acc"].append(float((logits.argmax(-1) == y).float().mean()))
                entry.setdefault("late_rule_acc", []).append(float((out["late"].argmax(-1) == y).float().mean()))
                for m in names:
                    q = out[f"quality:{m}"].numpy()
                    b = bad[m].numpy()
                    a = auroc(q[~b], q[b])
                    if a is not None:
                        entry["auroc"][m].append(a)
                    if b.any():
                        entry["share_bad"][m].append(float(out[f"share:{m}"].numpy()[b].mean()))
                    entry["share_clean"][m].append(float(out[f"share:{m}"].numpy()[~b].mean()))
                if model["key"] == "bundle":
                    oracle = fuse_oracle({m: out[f"logits:{m}"] for m in names}, bad)
                    row["oracle"].append(float((oracle.argmax(-1) == y).float().mean()))
                    row["bundle_late_rule"].append(float((out["late"].argmax(-1) == y).float().mean()))
                    for m in names:
                        row[f"{m}_only"].append(float((out[f"logits:{m}"].argmax(-1) == y).float().mean()))
            log(f"  level {level:g} seed {seed} done")
        if level == 0:  # nothing is corrupted at level 0: every seed gives the same numbers
            for key in ("oracle", "image_only", "audio_only", "bundle_late_rule"):
                row[key] = row[key] * seeds
            for entry in row["models"].values():
                entry["acc"] = entry["acc"] * seeds
                entry["late_rule_acc"] = entry["late_rule_acc"] * seeds
        table[level] = row
    return table


def sweep(model: dict, raws, labels, log) -> dict:
    """Corrupt ONE modality of every pair at each level, one kind at a time: AUROC clean vs corrupted, shares."""
    pred = model["predictor"]
    names = list(pred.modalities)
    n = len(raws)
    none = {m: np.zeros(n, bool) for m in names}
    clean_t = make_tensors(pred, raws, none, {m: ["missing"] * n for m in names}, 0.0, 0)
    clean = forward(pred, clean_t)
    y = torch.from_numpy(labels)
    result: dict = {}
    for m in names:
        for kind in pred.modalities[m].corruption_kinds:
            rows = [{"level": 0.0, "auroc": None, "share": float(clean[f"share:{m}"].mean()),
                     "quality": float(clean[f"quality:{m}"].mean()),
                     "accuracy_qmf": float((clean["fused"].argmax(-1) == y).float().mean()),
                     "accuracy_late": float((clean["late"].argmax(-1) == y).float().mean()),
                     "accuracy_branch": float((clean[f"logits:{m}"].argmax(-1) == y).float().mean())}]
            for level in LEVELS[1:]:
                mask = {k: (np.ones(n, bool) if k == m else np.zeros(n, bool)) for k in names}
                t = make_tensors(pred, raws, mask, {k: [kind] * n for k in names}, level, 1)
                out = forward(pred, t)
                rows.append({"level": level,
                             "auroc": auroc(clean[f"quality:{m}"].numpy(), out[f"quality:{m}"].numpy()),
                             "share": float(out[f"share:{m}"].mean()),
                             "quality": float(out[f"quality:{m}"].mean()),
                             "accuracy_qmf": float((out["fused"].argmax(-1) == y).float().mean()),
                             "accuracy_late": float((out["late"].argmax(-1) == y).float().mean()),
                             "accuracy_branch": float((out[f"logits:{m}"].argmax(-1) == y).float().mean())})
            result[f"{m}:{kind}"] = rows
            log(f"  sweep {model['key']} {m}:{kind} done")
    return result


def ms(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def variant_rows(table: dict, models: list[dict]) -> dict:
    """Per level: mean +- std of accuracy per row of the report (variants pooled over their training seeds)."""
    out: dict = {}
    groups: dict[str, list[str]] = {}
    for m in models:
        groups.setdefault(m["variant"], []).append(m["key"])
    for level, row in table.items():
        cells = {}
        for variant, keys in groups.items():
            # mean over training seeds of the per-model protocol mean; std over training seeds x protocol seeds
            per_model = [np.mean(row["models"][k]["acc"]) for k in keys]
            pooled = sum((row["models"][k]["acc"] for k in keys), [])
            cells[variant] = {"mean": float(np.mean(per_model)), "std": ms(pooled)[1] if len(keys) == 1 else float(np.std(per_model, ddof=1)),
                              "n_models": len(keys)}
        for key in ("oracle", "image_only", "audio_only", "bundle_late_rule"):
            mu, sd = ms(row[key])
            cells[key] = {"mean": mu, "std": sd, "n_models": 1}
        out[level] = cells
    return out


def plot_protocol(cells_seen, cells_unseen, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, cells, title in ((axes[0], cells_seen, "corruption kinds seen in training"),
                             (axes[1], cells_unseen, "kinds never seen in training")):
        levels = sorted(cells)
        for key in cells[levels[0]]:
            mu = [100 * cells[lv][key]["mean"] for lv in levels]
            sd = [100 * cells[lv][key]["std"] for lv in levels]
            ax.errorbar(levels, mu, yerr=sd, marker="o", capsize=3, label=key)
        ax.set_title(title)
        ax.set_xlabel("noise level epsilon")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (%)")
    axes[1].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_sweep(sweep_result: dict, what: str, ylabel: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mods = list(dict.fromkeys(k.split(":")[0] for k in sweep_result))
    fig, axes = plt.subplots(1, len(mods), figsize=(5.5 * len(mods), 4), sharey=True)
    for ax, m in zip(np.atleast_1d(axes), mods, strict=True):
        for key, rows in sweep_result.items():
            if not key.startswith(m + ":"):
                continue
            kind = key.split(":")[1]
            pts = [(r["level"], r[what]) for r in rows if r[what] is not None]
            style = "-" if kind in SEEN[m] or kind == "missing" else "--"
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="o", label=kind + (" (seen)" if style == "-" else " (unseen)"))
        if what == "auroc":
            ax.axhline(0.9, color="grey", lw=0.8, ls=":")
            ax.axhline(0.8, color="grey", lw=0.8, ls=":")
        ax.set_title(f"{m}")
        ax.set_xlabel("corruption level epsilon (this modality only)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    np.atleast_1d(axes)[0].set_ylabel(ylabel)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def worked_examples(pred: Predictor) -> list[dict]:
    sdir = ROOT / "resources" / "samples"
    spec = sdir / "samples.json"
    if not spec.exists():
        return []
    rows = []
    for s in json.loads(spec.read_text()):
        p = pred.predict_files({k: sdir / v for k, v in s["files"].items()})
        rows.append({"id": s["id"], "title": s["title"], "expected": s["expected"], "fused": p.label,
                     "probability": p.probability,
                     **{n: {"label": r.label, "quality": r.quality, "share": r.share} for n, r in p.modalities.items()}})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default=str(ROOT / "resources" / "models" / "avmnist-qmf.safetensors"))
    ap.add_argument("--models-dir", default=str(ROOT / "work" / "models"))
    ap.add_argument("--data", default=str(ROOT / "work" / "avmnist"), help="built manifests (python -m app.data.avmnist)")
    ap.add_argument("--pairs", type=int, default=1000, help="random test pairs for the protocol (fixed seed)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--extra", default=str(ROOT / "work" / "report_extra.json"),
                    help="JSON with leave-one-speaker-out and synthesised-speech figures (scripts/run_loso.py, make_samples.py)")
    ap.add_argument("--foreign", default=str(ROOT / "work" / "eval_foreign.json"),
                    help="scripts/eval_foreign.py --json-out of the bundle (last model = the bundle): foreign inputs, "
                         "held-out degradations, percentile calibration, confidence signals")
    ap.add_argument("--foreign-seeds", nargs="*", default=[],
                    help="eval_foreign.py --json-out files of the bundle recipe's other training seeds (same pairs): "
                         "mean and range over all seeds")
    ap.add_argument("--clean-pairs", type=int, default=None, help="limit the all-pairs clean pass (debugging)")
    ap.add_argument("--no-store", action="store_true", help="do not write the figures into the bundle's manifest")
    ap.add_argument("--from-results", action="store_true",
                    help="re-render docs/report.md (and re-store the figures) from docs/report/results.json with the current "
                         "work/report_extra.json and --foreign files, without evaluating again (where a file is missing, "
                         "results.json's own figures stay)")
    ap.add_argument("--only-new", action="store_true",
                    help="evaluate under the protocol only the comparison models not yet in docs/report/results.json (same corrupted "
                         "inputs: same --pairs/--seeds), merge them in and re-render; no clean pass, no sweeps")
    ap.add_argument("--threads", type=int, default=1, help="1 is fastest on a shared 2-core machine: 2 threads spin-wait on each other")
    args = ap.parse_args()
    try:  # the plots come last: find out now, not after the evaluation
        import matplotlib  # noqa: F401
    except ImportError:
        print("make_report.py needs matplotlib for the plots: .venv/bin/pip install matplotlib", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    t0 = time.time()
    log = lambda s: print(f"[{time.time() - t0:6.0f} s] {s}", file=sys.stderr, flush=True)  # noqa: E731
    FIG.mkdir(parents=True, exist_ok=True)
    if args.from_results:
        results = json.loads((FIG / "results.json").read_text())
        results["protocol_seen"] = {k: v for k, v in results["protocol_seen"].items()}
        # what is not on disk any more (a fresh checkout has no work/) stays as results.json has it
        if Path(args.extra).exists():
            results["extra"] = json.loads(Path(args.extra).read_text())
        else:
            log(f"no {args.extra}: leave-one-speaker-out and the other extra figures as results.json has them")
        foreign = load_foreign(Path(args.foreign), [Path(p) for p in args.foreign_seeds], Path(args.bundle).name)
        if foreign is not None:
            results["foreign"] = foreign
        else:
            log(f"no {args.foreign}: the foreign-input figures as results.json has them")
        (FIG / "results.json").write_text(json.dumps(results, indent=1, default=float))
        labels = {m["key"]: m for m in results["models"]}
        write_markdown(results, list(labels.values()), bundle_floor(Path(args.bundle)))
        if not args.no_store:
            store_in_bundle(Path(args.bundle), results)
        log("re-rendered from results.json")
        return 0
    models = load_models(Path(args.bundle), Path(args.models_dir))
    if args.only_new:
        return merge_new(args, models, log)
    bundle = models[0]
    ref = bundle["predictor"]
    log("models: " + ", ".join(m["key"] for m in models))
    rows = read_manifest(Path(args.data) / "test.csv", modalities=list(ref.modalities), labels=ref.labels).rows

    # clean accuracy of the bundle on ALL test pairs
    rows = rows[: args.clean_pairs] if args.clean_pairs else rows
    all_raws = [ref.load_inputs(r.files) for r in rows]
    all_y = np.array([ref.labels.index(r.label) for r in rows])
    n_all = len(all_raws)
    none = {m: np.zeros(n_all, bool) for m in ref.modalities}
    clean_out = forward(ref, make_tensors(ref, all_raws, none, {m: ["missing"] * n_all for m in ref.modalities}, 0.0, 0))
    clean_full = {"pairs": n_all, "qmf": float((clean_out["fused"].argmax(-1).numpy() == all_y).mean()),
                  "late_rule": float((clean_out["late"].argmax(-1).numpy() == all_y).mean()),
                  **{f"{m}_only": float((clean_out[f"logits:{m}"].argmax(-1).numpy() == all_y).mean()) for m in ref.modalities}}
    log(f"clean accuracy on all {n_all} test pairs: {clean_full}")

    pick = np.sort(np.random.default_rng(12345).choice(n_all, size=min(args.pairs, n_all), replace=False))
    raws = [all_raws[i] for i in pick]
    y = all_y[pick]
    log("protocol, seen kinds")
    seen = protocol(models, raws, y, SEEN, args.seeds, log)
    log("protocol, unseen kinds")
    unseen = protocol(models, raws, y, UNSEEN, args.seeds, log)
    cells_seen, cells_unseen = variant_rows(seen, models), variant_rows(unseen, models)
    log("per-kind sweeps")
    sweeps = {"bundle": sweep(bundle, raws, y, log)}
    sweeps_ablation = {m["key"]: sweep(m, raws, y, log) for m in models if m["variant"] in ABLATIONS}
    late = next((m for m in models if m["variant"] == "late-full"), None) or next((m for m in models if m["variant"] == "late"), None)
    if late is not None:
        sweeps["late"] = sweep(late, raws, y, log)
        sweeps["late_model"] = late["key"]

    examples = worked_examples(ref)
    extra = json.loads(Path(args.extra).read_text()) if Path(args.extra).exists() else {}

    results = {"pairs": len(raws), "seeds": args.seeds, "clean_full_test": clean_full,
               "protocol_seen": {str(k): v for k, v in cells_seen.items()},
               "protocol_unseen": {str(k): v for k, v in cells_unseen.items()},
               "protocol_raw": {"seen": {str(k): v for k, v in seen.items()}, "unseen": {str(k): v for k, v in unseen.items()}},
               "sweeps": sweeps, "sweeps_ablation": sweeps_ablation, "examples": examples, "extra": extra, "foreign": load_foreign(Path(args.foreign), [Path(p) for p in args.foreign_seeds], Path(args.bundle).name),
               "models": [{k: m[k] for k in ("key", "label", "rule", "variant", "seed")} for m in models]}
    (FIG / "results.json").write_text(json.dumps(results, indent=1, default=float))  # first: plots can fail
    plot_protocol(cells_seen, cells_unseen, FIG / "protocol.png")
    plot_sweep(sweeps["bundle"], "auroc", "quality-score AUROC (clean vs corrupted)", FIG / "auroc_by_kind.png")
    plot_sweep(sweeps["bundle"], "share", "mean share of the corrupted modality", FIG / "share_by_kind.png")
    plot_sweep(sweeps["bundle"], "accuracy_qmf", "QMF accuracy, one modality corrupted", FIG / "accuracy_by_kind.png")
    write_markdown(results, models, bundle_floor(Path(args.bundle)))
    if not args.no_store:
        store_in_bundle(Path(args.bundle), results)
    log("done")
    return 0


def load_foreign(path: Path, seed_paths: list[Path], bundle_name: str) -> dict | None:
    """eval_foreign.py's JSON: its markdown tables, the bundle's figures (the column of the file named
    `bundle_name`, else the last one) and, with other training seeds' files, the mean and range over all seeds."""
    if not path.exists():
        return None
    from eval_foreign import seeds_summary

    data = json.loads(path.read_text())
    mine = [r for r in data["results"] if r["model"] == bundle_name]
    out = {"pairs": data["pairs"], "manifest": data["manifest"], "markdown": data["markdown"],
           "bundle": mine[-1] if mine else data["results"][-1]}
    if seed_paths:
        runs = [out["bundle"]] + [json.loads(p.read_text())["results"][-1] for p in seed_paths]
        out["seeds"] = len(runs)
        out["seeds_markdown"] = seeds_summary(runs)
    return out


def merge_new(args, models: list[dict], log) -> int:
    """Protocol for the models missing from results.json only; the corrupted inputs are the same (seeded) as in the full run."""
    results = json.loads((FIG / "results.json").read_text())
    if results["seeds"] != args.seeds or results["pairs"] != args.pairs:
        raise SystemExit("--only-new needs the --pairs/--seeds of the stored results")
    known = {m["key"] for m in results["models"]}
    new = [m for m in models[1:] if m["key"] not in known]
    if not new:
        log("nothing new")
        return 0
    log("new models: " + ", ".join(m["key"] for m in new))
    ref = models[0]["predictor"]
    rows = read_manifest(Path(args.data) / "test.csv", modalities=list(ref.modalities), labels=ref.labels).rows
    pick = np.sort(np.random.default_rng(12345).choice(len(rows), size=min(args.pairs, len(rows)), replace=False))
    raws = [ref.load_inputs(rows[i].files) for i in pick]
    y = np.array([ref.labels.index(rows[i].label) for i in pick])
    use = [models[0]] + new
    for name, kinds in (("seen", SEEN), ("unseen", UNSEEN)):
        log(f"protocol, {name} kinds")
        table = protocol(use, raws, y, kinds, args.seeds, log)
        stored = {float(k): v for k, v in results["protocol_raw"][name].items()}
        for level, row in table.items():
            b_old, b_new = np.mean(stored[level]["models"]["bundle"]["acc"]), np.mean(row["models"]["bundle"]["acc"])
            if abs(b_old - b_new) > 1e-9:
                raise SystemExit(f"bundle accuracy differs from the stored run at level {level}: {b_old} vs {b_new}")
            for m in new:
                stored[level]["models"][m["key"]] = row["models"][m["key"]]
        results["protocol_raw"][name] = {str(k): v for k, v in stored.items()}
        results[f"protocol_{name}"] = {str(k): v for k, v in variant_rows(stored, models).items()}
    for m in new:
        if m["variant"] in ABLATIONS:
            log(f"per-kind sweeps, {m['key']}")
            results.setdefault("sweeps_ablation", {})[m["key"]] = sweep(m, raws, y, log)
    results["models"] = [{k: m[k] for k in ("key", "label", "rule", "variant", "seed")} for m in models]
    (FIG / "results.json").write_text(json.dumps(results, indent=1, default=float))
    cells = lambda n: {float(k): v for k, v in results[f"protocol_{n}"].items()}  # noqa: E731
    plot_protocol(cells("seen"), cells("unseen"), FIG / "protocol.png")
    write_markdown(results, models, bundle_floor(Path(args.bundle)))
    if not args.no_store:
        store_in_bundle(Path(args.bundle), results)
    log("merged and re-rendered")
    return 0


def _card_figures(entry: dict) -> dict:
    """An extra measurement as the bundle's card keeps it: the figures, not the per-speaker confusion matrices or
    per-voice and per-font counts (those stay in docs/report/results.json)."""
    drop = {"confusion", "per_voice_correct_of_10", "per_font_correct_of_10"}
    if "per_speaker" in entry:
        return {**entry, "per_speaker": {s: {k: v for k, v in d.items() if k not in drop} for s, d in entry["per_speaker"].items()}}
    return {k: v for k, v in entry.items() if k not in drop}


def headline(results: dict) -> dict:
    b = results["sweeps"]["bundle"]
    s10, u10 = results["protocol_seen"]["10.0"], results["protocol_unseen"]["10.0"]
    return {
        "test_pairs_clean": results["clean_full_test"]["pairs"],
        "clean_accuracy": results["clean_full_test"],
        "protocol_pairs": results["pairs"], "protocol_seeds": results["seeds"],
        "protocol_eps10_seen": {k: {"mean": round(v["mean"], 4), "std": round(v["std"], 4)} for k, v in s10.items()},
        "protocol_eps10_unseen": {k: {"mean": round(v["mean"], 4), "std": round(v["std"], 4)} for k, v in u10.items()},
        "quality_auroc_eps10": {k: round(rows[-1]["auroc"], 3) for k, rows in b.items()},
        "quality_auroc_eps5": {k: round(rows[2]["auroc"], 3) for k, rows in b.items()},
        "seen_kinds": SEEN, "unseen_kinds": UNSEEN,
        **{k: _card_figures(v) for k, v in results["extra"].items()},
        "report": "docs/report.md (scripts/make_report.py)",
    }


# work/report_extra.json's leave-one-speaker-out entries (scripts/run_loso.py --objective, --extra-key) and how
# their audio branches were trained
LOSO_KEYS = (("leave_one_speaker_out", "branch trained with cross-entropy alone"),
             ("leave_one_speaker_out_recipe", "branch trained with the recipe's audio terms"),
             ("leave_one_speaker_out_lineage", "branch trained in the bundle's stages: a ranking-only base, then "
                                               "six passes with the recipe's audio terms"))
# make_samples.py's measurements of the audio branch alone on voices it never heard: key -> what they are
SPEECH_KEYS = (("synthesised_speech", "synthesised speech (espeak-ng voices never used in training)"),
               ("accented_speech", "foreign-accented digits (respelled, by espeak-ng voices of languages never used in "
                                   "training)"))


def extra_markdown(extra: dict) -> list[str]:
    """The extra measurements as tables; every field, confusion matrices included, stays in results.json."""
    if not extra:
        return []
    lines = ["## Other measurements", "",
             "Every field of these measurements, the held-out speakers' confusion matrices included, is in "
             "`docs/report/results.json` (`extra`). The leave-one-speaker-out runs are not made again for every bundle: "
             "their \"fused, speaker unseen\" figure and their \"bundle\" columns use the image branch and the "
             "calibration of the bundle shipped when each run was made (the recipe's audio terms are what each table "
             "names).", ""]
    kinds = ("white_noise", "dropout", "bandlimit", "babble", "clipping")
    num = lambda v, f="{:.3f}": "-" if v is None else f.format(v)  # noqa: E731
    for key, how in LOSO_KEYS:
        entry = extra.get(key)
        if not entry or not entry.get("per_speaker"):
            continue
        lines += [f"### Leave-one-speaker-out: {how}", "", f"`{entry.get('method', key)}`, recipe `{entry.get('config', '-')}`.", "",
                  "| speaker | audio branch | base | fused, speaker unseen | median clean quality: branch / bundle | "
                  "right above wrong | marked unfamiliar, %: all / read right / read wrong | quality AUROC at ε = 5: "
                  + ", ".join(k.replace("_", " ") for k in kinds) + " | steps | seed |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for speaker, v in sorted(entry["per_speaker"].items()):
            med = v.get("clean_quality_median") or {}
            mark = v.get("unfamiliar_marked_clean")
            marked = "-" if not mark else " / ".join(
                "-" if mark.get(f) is None else pct(mark[f]) for f in ("this_branch", "this_branch_when_right", "this_branch_when_wrong"))
            auroc = v.get("quality_auroc") or {}
            base = v.get("base_audio_branch_accuracy")
            lines.append(f"| {speaker} | {pct(v['audio_branch_accuracy'])} % | {'-' if base is None else pct(base) + ' %'} | "
                         f"{pct(v['fused_accuracy_unseen_speaker_approx'])} % | {num(med.get('this_branch'), '{:.2f}')} / "
                         f"{num(med.get('bundle_audio_branch'), '{:.2f}')} | {num(v.get('right_vs_wrong_quality_auroc'))} | {marked} | "
                         + ", ".join(num(auroc.get(f"{k}@5")) for k in kinds) + f" | {v.get('steps', '-')} | {v.get('seed', '-')} |")
        lines.append("")
    for key, what in SPEECH_KEYS:
        syn = extra.get(key)
        if syn:
            lines += [f"### {what[0].upper() + what[1:]}, audio branch alone", "",
                      f"{syn['correct']} of {syn['utterances']} read right ({pct(syn['accuracy'])} %), {syn['voices']} voices. "
                      "Digits read right of 10, per voice: "
                      + ", ".join(f"{voice} {n}" for voice, n in sorted(syn.get("per_voice_correct_of_10", {}).items())) + ".", ""]
    drawn = extra.get("drawn_digits")
    if drawn:
        lines += ["### Font-drawn digits (image branch alone)", "",
                  f"{drawn['correct']} of {drawn['images']} read right ({pct(drawn['accuracy'])} %), {drawn['fonts']} fonts. "
                  "Per font, of 10: " + ", ".join(f"{font} {n}" for font, n in sorted(drawn.get("per_font_correct_of_10", {}).items())) + ".", ""]
    return lines


def store_in_bundle(path: Path, results: dict) -> None:
    bundle = load_bundle(path)
    manifest = dict(bundle.manifest)
    try:  # the model card text follows the recipe file (the weights are untouched)
        import tomllib

        manifest["description"] = tomllib.loads((ROOT / "recipes" / "avmnist-qmf.toml").read_text())["description"]
    except (OSError, KeyError, ValueError):
        pass
    manifest["evaluation"] = {"validation": manifest.get("evaluation", {}).get("validation", {}), **headline(results)}
    manifest.setdefault("provenance", {})["figures"] = ["docs/report/protocol.png", "docs/report/auroc_by_kind.png",
                                                        "docs/report/share_by_kind.png", "docs/report/accuracy_by_kind.png"]
    save_bundle(path, bundle.model, manifest)


def _yes(ok: bool, miss: str = "") -> str:
    return "yes" if ok else ("no" + (f", {miss}" if miss else ""))


def targets_section(results: dict) -> list[str]:
    """The quality-score targets, checked against the figures of this report (met / missed and by how much)."""
    lines = ["## Targets", "", "| target | measured | met? |", "|---|---|---|"]
    cf = results["clean_full_test"]
    lines.append(f"| clean fused accuracy >= 99.9 % (all {cf['pairs']} test pairs) | {pct(cf['qmf'])} % | {_yes(cf['qmf'] >= 0.999)} |")
    seen, unseen = results["protocol_seen"], results["protocol_unseen"]
    for q, ref, what in (("bundle", "late-full", "bundle vs static late-fusion model"),
                         ("bundle", "bundle_late_rule", "bundle (QMF rule) vs late-fusion rule on its own branches")):
        if q not in seen["0.0"] or ref not in seen["0.0"]:
            continue
        worst = min(100 * (seen[lv][q]["mean"] - seen[lv][ref]["mean"]) for lv in seen)
        d10 = 100 * (unseen["10.0"][q]["mean"] - unseen["10.0"][ref]["mean"])
        lines.append(f"| seen kinds: never more than 0.1 points below late fusion ({what}) | worst level {worst:+.2f} points | {_yes(worst >= -0.1)} |")
        lines.append(f"| held-out kinds at ε = 10: at least 5 points above late fusion ({what}) | {d10:+.2f} points | "
                     f"{_yes(d10 >= 5, f'short by {5 - d10:.2f}')} |")
    sw = results["sweeps"]["bundle"]
    miss10 = {k: r[-1]["auroc"] for k, r in sw.items() if r[-1]["auroc"] < 0.95}
    miss5 = {k: r[2]["auroc"] for k, r in sw.items() if r[2]["auroc"] < 0.85}
    lines.append(f"| quality AUROC >= 0.95 at ε = 10, every listed kind | {len(sw) - len(miss10)} of {len(sw)} kinds; below: "
                 + (", ".join(f"{k} {v:.3f}" for k, v in miss10.items()) or "none") + f" | {_yes(not miss10)} |")
    lines.append(f"| quality AUROC >= 0.85 at ε = 5, every listed kind | {len(sw) - len(miss5)} of {len(sw)}; below: "
                 + (", ".join(f"{k} {v:.3f}" for k, v in miss5.items()) or "none") + f" | {_yes(not miss5)} |")
    not_falling = [k for k, r in sw.items() if not all(b["share"] <= a["share"] + 1e-9 for a, b in zip(r, r[1:], strict=False))]
    lines.append(f"| the share falls monotonically with ε, every kind | {len(sw) - len(not_falling)} of {len(sw)}; not monotonic: "
                 + (", ".join(not_falling) or "none") + f" | {_yes(not not_falling)} |")
    fo = results.get("foreign")
    if fo:
        b = fo["bundle"]
        fams = b["foreign"]
        for key, label, ok in (("auroc", "AUROC >= 0.98 against clean inputs", lambda v: v >= 0.98),
                               ("foreign_larger_share", "the foreign input holds the larger share in <= 1 % of pairs", lambda v: v <= 0.01),
                               ("fused_equals_partner", "the fused answer equals the clean partner's alone in >= 98 % of pairs", lambda v: v >= 0.98)):
            bad = [f for f in fams if not ok(f[key])]
            fmt = (lambda v: f"{v:.3f}") if key == "auroc" else (lambda v: f"{100 * v:.1f} %")
            lines.append(f"| foreign inputs ({fo['pairs']} pairs, every family): {label} | {len(fams) - len(bad)} of {len(fams)} families; "
                         + ("misses: " + ", ".join(f"{f['modality']} {f['family']} ({f['split']}) {fmt(f[key])}" for f in bad) if bad else "all")
                         + f" | {_yes(not bad)} |")
        deg = b["degradations"]
        for level, floor in ((10.0, 0.95), (5.0, 0.85)):
            rows = [d for d in deg if d["level"] == level]
            bad = [d for d in rows if d["auroc"] < floor]
            lines.append(f"| held-out degradations of eval_foreign.py (incl. hum and brown-noise mixes): AUROC >= {floor} at ε = {level:g} | "
                         f"{len(rows) - len(bad)} of {len(rows)}; " + ("below: " + ", ".join(f"{d['modality']} {d['kind']} {d['auroc']:.3f}" for d in bad) if bad else "all")
                         + f" | {_yes(not bad)} |")
        drawn = b.get("drawn")
        if drawn:
            acc = drawn["accuracy"]
            lines.append(f"| font-drawn digits, image branch >= 95 % | {pct(acc)} % of {drawn['images']} | "
                         f"{_yes(acc >= 0.95, f'short by {100 * (0.95 - acc):.1f} points')} |")
    for key, how in LOSO_KEYS:
        loso = dict(sorted(results["extra"].get(key, {}).get("per_speaker", {}).items()))
        if not loso:
            continue
        fused = {k: v["fused_accuracy_unseen_speaker_approx"] for k, v in loso.items()}
        audio = {k: v["audio_branch_accuracy"] for k, v in loso.items()}
        lines.append(f"| audio branch, leave-one-speaker-out >= 88 % for every speaker ({how}) | "
                     + ", ".join(f"{k} {pct(v)}" for k, v in audio.items()) + f" | {_yes(min(audio.values()) >= 0.88, 'worst ' + pct(min(audio.values())) + ' %')} |")
        lines.append(f"| fused >= 99.5 % with the speaker unseen (approximation, see below; {how}) | "
                     + ", ".join(f"{k} {pct(v)}" for k, v in fused.items()) + f" | {_yes(min(fused.values()) >= 0.995)} |")
        marks = {k: v["unfamiliar_marked_clean"] for k, v in loso.items() if v.get("unfamiliar_marked_clean")}
        if marks:
            lines.append(f"| clean recordings of the unheard speaker marked unfamiliar (the branch calibrated as a bundle is, "
                         f"on the training speakers' held-back recordings; {how}) | "
                         + ", ".join(f"{k} {pct(m['this_branch'])}" for k, m in marks.items())
                         + " % (the bundle, which heard them: " + ", ".join(f"{pct(m['bundle_audio_branch'])}" for m in marks.values())
                         + " %) | (no target) |")
    if "bundle" in seen["0.0"]:
        lines.append(f"| gap to the oracle at ε = 10 (bundle) | seen {100 * (seen['10.0']['oracle']['mean'] - seen['10.0']['bundle']['mean']):+.2f}, "
                     f"unseen {100 * (unseen['10.0']['oracle']['mean'] - unseen['10.0']['bundle']['mean']):+.2f} points | reported |")
    for key, what in SPEECH_KEYS:
        syn = results["extra"].get(key)
        if not syn:
            continue
        lines.append(f"| {what}, audio branch alone | {syn['correct']}/{syn['utterances']} = {pct(syn['accuracy'])} % | (no target) |")
        if syn.get("unfamiliar_marked") is not None:
            right, wrong = (syn[f"unfamiliar_marked_when_{w}"] for w in ("right", "wrong"))
            lines.append(f"| the same clean recordings marked unfamiliar | {pct(syn['unfamiliar_marked'])} % (read right: "
                         f"{pct(right) if right is not None else '-'} %, read wrong: {pct(wrong) if wrong is not None else '-'} %); "
                         f"median percentile {syn['median_quality_percentile']:.1f} | (no target) |")
    lines.append("")
    return lines


def ablation_section(results: dict, models: list[dict]) -> list[str]:
    """The bundle against its recipe with one energy-bound setting changed: protocol accuracy, QMF minus the
    late-fusion rule on each model's OWN branches, and the per-kind quality AUROC."""
    raw = results["protocol_raw"]
    keys = [m["key"] for variant in ABLATIONS for m in models
            if m["variant"] == variant and m["key"] in raw["seen"]["10.0"]["models"]]
    if not keys or "late_rule_acc" not in raw["seen"]["10.0"]["models"][keys[0]]:
        return []
    label = {m["key"]: m["label"] for m in models}
    sweeps = {"bundle": results["sweeps"]["bundle"], **results.get("sweeps_ablation", {})}

    def own(name: str, key: str, level: str) -> tuple[float, float]:
        if key == "bundle":
            row = raw[name][level]
            return float(np.mean(row["models"]["bundle"]["acc"])), float(np.mean(row["bundle_late_rule"]))
        entry = raw[name][level]["models"][key]
        return float(np.mean(entry["acc"])), float(np.mean(entry["late_rule_acc"]))

    lines = ["", "## Ablations of the bundle's recipe", "",
             "The bundle's recipe with one change, fine-tuned from the same starting weights with the same seed (one training "
             "seed each; each row names its change), and the bundle's starting weights (one 3-epoch pass "
             "fewer). Accuracy under the protocol above (%) and, in "
             "brackets, QMF minus the late-fusion rule on that model's own branches (points); then the quality AUROC "
             "(one modality of every pair corrupted, as in the per-kind table below).", "",
             "| model | seen ε=7.5 | seen ε=10 | unseen ε=7.5 | unseen ε=10 | kinds with AUROC >= 0.85 at ε=5 | lowest AUROC at ε=5 | "
             "kinds whose share falls monotonically |", "|---|---|---|---|---|---|---|---|"]
    for key in ["bundle", *keys]:
        cells = []
        for name in ("seen", "unseen"):
            for level in ("7.5", "10.0"):
                q, late = own(name, key, level)
                cells.append(f"{100 * q:.2f} ({100 * (q - late):+.2f})")
        sw = sweeps.get(key)
        if sw:
            a5 = {k: rows[2]["auroc"] for k, rows in sw.items()}
            ok = sum(v >= 0.85 for v in a5.values())
            low = min(a5, key=a5.get)
            mono = sum(all(b["share"] <= a["share"] + 1e-9 for a, b in zip(rows, rows[1:], strict=False)) for rows in sw.values())
            cells += [f"{ok} of {len(a5)}", f"{low} {a5[low]:.3f}", f"{mono} of {len(sw)}"]
        else:
            cells += ["", "", ""]
        name = "bundle (trained with the weight floor, degraded_out_level = 7, graded = true)" if key == "bundle" else label[key]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Foreign inputs and held-out degradations for the same models: the columns of the tables in the "
              "foreign-input section below.", ""]
    return lines


def bundle_floor(path: Path) -> tuple[float, float]:
    """The bundle's fusion weight floor and the one its recipe trained with (0 where given after training)."""
    manifest = read_bundle_manifest(path)  # the header only: the weights are not needed here
    recipe = manifest.get("training", {}).get("recipe", {})
    return float(manifest["model"].get("weight_floor", 0.0)), float(recipe.get("weight_floor", 0.0))


def write_markdown(results: dict, models: list[dict], floors: tuple[float, float]) -> None:
    """docs/report.md; `floors` is `bundle_floor` of the bundle."""
    floor, trained_with = floors
    trained = "" if floor <= 0 else " (its recipe trains with it)" if trained_with == floor else " (given after training)"
    lines: list[str] = []
    cf = results["clean_full_test"]
    lines += ["# Robustness report: the bundled AV-MNIST QMF model", "",
          "Regenerate (manifests first, then the report; ~15-25 min on 2 CPU cores):", "",
          "```", ".venv/bin/python -m app.data.avmnist", ".venv/bin/python scripts/make_report.py", "```", "",
          f"Clean test accuracy of the bundle on all {cf['pairs']} test pairs: **QMF {pct(cf['qmf'])} %**, "
          f"late-fusion rule on its branches {pct(cf['late_rule'])} %, image branch alone {pct(cf['image_only'])} %, "
          f"audio branch alone {pct(cf['audio_only'])} %.", "",
          f"Protocol figures below: {results['pairs']} test pairs drawn at random (fixed seed) from the 10,000, "
          f"{results['seeds']} corruption seeds; each modality of each pair corrupted independently with probability 0.5. "
          "Seen kinds: image Gaussian noise, audio white noise (the training corruptions besides 'missing'). "
          "Unseen kinds: each corrupted input gets one kind drawn at random from image salt-and-pepper / blur / occlusion / "
          "contrast loss and audio dropouts / clipping / band-limiting / babble (another 'voice'); none of them was used in training.", "",
          "Fusion: QMF's energy weights, a negative one counting as zero, plus a floor on every weight (app/qmf/fusion.py); "
          f"the bundle's floor is {floor:g}{trained}, and every QMF row uses its own model's.", ""]
    rows_order = [k for k in results["protocol_seen"]["0.0"]]
    names = {m["variant"]: m["label"] for m in models}
    names.update({"oracle": "oracle (late fusion of the clean modalities only; bundle's branches)",
                  "image_only": "image only (bundle's image branch)", "audio_only": "audio only (bundle's audio branch)",
                  "bundle_late_rule": "late-fusion rule on the bundle's own branches"})
    for title, cells in (("Seen corruption kinds", results["protocol_seen"]), ("Unseen corruption kinds", results["protocol_unseen"])):
        lines += [f"## {title}: accuracy (%), mean ± std", "", "| model | n | " + " | ".join(f"ε = {float(lv):g}" for lv in cells) + " |",
              "|---|---|" + "---|" * len(cells)]
        for key in rows_order:
            n_models = cells["0.0"][key]["n_models"]
            lines.append(f"| {names.get(key, key)} | {n_models} | " + " | ".join(
                f"{pct(cells[lv][key]['mean'])} ± {pct(cells[lv][key]['std'])}" for lv in cells) + " |")
        lines.append("")
    lines += ["n = number of trained models (training seeds) pooled in a row; with n > 1 the ± is the spread over training seeds, "
          "with n = 1 over corruption seeds.", "", "![protocol](report/protocol.png)", ""]
    lines += targets_section(results)
    # QMF vs late
    lines += ["## Where QMF does and does not beat late fusion", "",
          "Fair comparisons are between rows trained on the same schedule. Full schedule (the bundle's: 10 epochs x 12,000 pairs): "
          "the bundle and the `-full` rows against `late-full` (same recipe, late-fusion loss). "
          + ("Short schedule (3 epochs x 8,000 pairs): `qmf-paper` and the other short rows against `late`. "
             if "late" in results["protocol_seen"]["0.0"] else "")
          + "And the bundle against the late-fusion RULE applied to the "
          "bundle's own branches (same branches, only the fusion differs). Rows of different schedules are not compared.", ""]
    for title, cells in (("seen", results["protocol_seen"]), ("unseen", results["protocol_unseen"])):
        if "bundle" in cells["0.0"]:
            txt = ", ".join(f"ε={float(lv):g}: {100 * (cells[lv]['bundle']['mean'] - cells[lv]['bundle_late_rule']['mean']):+.2f}" for lv in cells)
            lines.append(f"- {title} kinds, bundle (QMF rule) minus late-fusion rule on the same branches (points): {txt}")
        for q, base in (("bundle", "late-full"), ("qmf-paper-full", "late-full"), ("qmf-current-full", "late-full"),
                        ("qmf-history-full", "late-full"), ("qmf-l0-full", "late-full"),
                        ("qmf-paper", "late"), ("qmf-current", "late"), ("qmf-history", "late"), ("qmf-l0", "late")):
            if q not in cells["0.0"] or base not in cells["0.0"]:
                continue
            diffs = [(float(lv), 100 * (cells[lv][q]["mean"] - cells[lv][base]["mean"])) for lv in cells]
            txt = ", ".join(f"ε={lv:g}: {d:+.2f}" for lv, d in diffs)
            sched = "full" if base == "late-full" else "short"
            lines.append(f"- {title} kinds, {names.get(q, q)} minus static late fusion ({sched} schedule, n = "
                     f"{cells['0.0'][base]['n_models']}) (points): {txt}")
        if "bundle" in cells["0.0"]:
            gap = ", ".join(f"ε={float(lv):g}: {100 * (cells[lv]['oracle']['mean'] - cells[lv]['bundle']['mean']):+.2f}" for lv in cells)
            lines.append(f"- {title} kinds, gap from the bundle to the oracle (points): {gap}")
    lines += ablation_section(results, models)
    lines += ["", "## Quality score per corruption kind (bundle)", "",
          "One modality of every pair corrupted at a time (the other clean). AUROC: the chance that a clean input's "
          "quality score is above its corrupted version's (1 = perfectly truthful, 0.5 = blind, < 0.5 = inverted). "
          "Share: the corrupted modality's mean share of the fusion weight (level 0 = clean).", ""]
    sw = results["sweeps"]["bundle"]
    lines += ["| modality:kind | seen? | " + " | ".join(f"AUROC ε={lv:g}" for lv in LEVELS[1:]) + " | " + " | ".join(f"share ε={lv:g}" for lv in LEVELS) + " | share falls? |",
          "|---|---|" + "---|" * (2 * len(LEVELS))]
    for key, rows in sw.items():
        m, kind = key.split(":")
        seen = "seen" if kind in SEEN[m] or kind == "missing" else "unseen"
        shares = [r["share"] for r in rows]
        falls = all(b <= a + 1e-9 for a, b in zip(shares, shares[1:], strict=False))
        lines.append(f"| {key} | {seen} | " + " | ".join(f"{r['auroc']:.3f}" for r in rows[1:]) + " | "
                 + " | ".join(f"{s:.3f}" for s in shares) + f" | {'yes' if falls else 'NO'} |")
    if "late" in results["sweeps"]:
        lines += ["", f"For comparison, the same AUROC for the static late-fusion model's energy (`{results['sweeps'].get('late_model', 'late-s0')}`; "
              "ε = 5 / ε = 10):", "",
              "| modality:kind | late-fusion model | bundle |", "|---|---|---|"]
        for key, rows in results["sweeps"]["late"].items():
            lines.append(f"| {key} | {rows[2]['auroc']:.3f} / {rows[-1]['auroc']:.3f} | {sw[key][2]['auroc']:.3f} / {sw[key][-1]['auroc']:.3f} |")
    lines += ["", "![AUROC by kind](report/auroc_by_kind.png)", "", "![share by kind](report/share_by_kind.png)", "",
          "![accuracy by kind](report/accuracy_by_kind.png)", ""]
    ex = results["examples"]
    if ex:
        lines += ["## Worked examples (resources/samples, made by scripts/make_samples.py)", "",
              "| sample | expected | fused | image: label / quality / share | audio: label / quality / share |", "|---|---|---|---|---|"]
        for e in ex:
            lines.append(f"| {e['title']} | {e['expected']} | {e['fused']} ({e['probability']:.2f}) | "
                     f"{e['image']['label']} / {e['image']['quality']:.2f} / {e['image']['share']:.0%} | "
                     f"{e['audio']['label']} / {e['audio']['quality']:.2f} / {e['audio']['share']:.0%} |")
        lines.append("")
    fo = results.get("foreign")
    if fo:
        lines += ["## Foreign inputs, held-out degradations, percentile calibration, confidence signals", "",
                  f"From `scripts/eval_foreign.py` on {fo['pairs']} pairs of `{fo['manifest']}` (a fixed random subset). Foreign: one input "
                  "of every pair replaced by a generated input of the family (app/modalities/outliers.py); 'train' families were used "
                  "for outlier exposure, 'held out' ones never. AUROC: clean inputs against foreign ones on that branch's quality; "
                  "larger share: how often the foreign input holds more than half of the fusion weight; fused = partner: how often the "
                  "fused answer is the clean partner's own; marked: how often the foreign input gets the unfamiliar mark. "
                  "Held-out degradations: every input of that modality degraded, AUROC clean against degraded. Signals: other "
                  "confidence scores computed from the same branches (see docs/report/README.md).", "", fo["markdown"], ""]
        if fo.get("seeds_markdown"):
            lines += ["### The bundle's recipe over training seeds", "",
                      "The bundle (seed 0) and the same recipe trained with other seeds from the same starting weights, "
                      "on the same pairs:", "", fo["seeds_markdown"], ""]
    lines += extra_markdown(results["extra"])
    (DOCS / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
