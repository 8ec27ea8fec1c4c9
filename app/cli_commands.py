"""The work of each `qmf` sub-command (predict, eval, train, calibrate, info, export-onnx): read the
options `app.cli` parsed, call the layers below, print the result. `app.cli` builds the parser and runs
these handlers through `run_handler`, which turns a UserError or OSError into one line on stderr.

Every import of the layers below is inside the handler that needs it, so `qmf predict` with a model
that carries its ONNX graph never imports torch (tests/qmf/test_onnx.py checks).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from app.util.errors import UsageError, UserError


def _as_usage_error(call: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a parser of the user's option text; its ValueError is about that text (a usage error)."""
    try:
        return call(*args, **kwargs)
    except UserError:
        raise
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _model_path(arg: str | None) -> Path:
    from app.qmf.bundle import default_model_path

    return Path(arg) if arg else default_model_path()


def _load_predictor(model: str | None) -> Any:
    """The model's Predictor: its ONNX graph when it has one (no torch imported), else torch with one
    intra-op thread per process (QMF_STUDIO_THREADS overrides; more threads lose under competition)."""
    from app.qmf.predictor import Predictor

    predictor = Predictor.load(_model_path(model))
    if predictor.backend == "torch":
        import torch

        from app.qmf.onnx_graph import inference_threads

        torch.set_num_threads(inference_threads())
    return predictor


# --------------------------------------------------------------------------- predict

def _route_files(manifest_modalities: list[dict[str, Any]], named: dict[str, str], positional: list[str]) -> dict[str, str]:
    """Assign positional files to modalities by type (app.modalities.routing); named ones (`--image F`) win."""
    from app.modalities.routing import route_files

    files, problems = route_files(manifest_modalities, positional, named)
    if problems:
        first = problems[0]
        hint = f"; name it, e.g. --{manifest_modalities[0]['name']} {first.path}" if first.kind is None and \
            manifest_modalities else ""
        raise UsageError(first.message + hint)
    return files


def _format_prediction(pred: Any, corruptions: list[tuple[str, str, float]] | None = None) -> str:
    lines = [
        f"prediction: {pred.label}  (fused probability {pred.probability:.3f})",
        f"model: {pred.model_name}  sha256 {pred.model_sha256[:12]}",
    ]
    if corruptions:
        lines.append("degraded before prediction: "
                     + ", ".join(f"{n} {k} level {lv:g}" for n, k, lv in corruptions))
    from app.qmf.calibration import unfamiliar_text

    calibrated = any(r.quality_percentile is not None for r in pred.modalities.values())
    lines += [
        "",
        f"{'input':<10} {'prediction':<11} {'prob':>6} {'energy':>8} {'quality':>8} {'share':>6}"
        + (f" {'pctile':>7}" if calibrated else "") + "  file",
    ]
    for name, r in pred.modalities.items():
        pct = ""
        if calibrated:
            pct = f" {r.quality_percentile:>6.1f}%" if r.quality_percentile is not None else f" {'-':>7}"
        lines.append(
            f"{name:<10} {r.label:<11} {r.probability:>6.3f} {r.energy:>8.3f} {r.quality:>8.3f} {r.share:>6.1%}{pct}"
            f"  {r.file or '(missing)'}"
        )
    for name, r in pred.modalities.items():
        if r.unfamiliar:
            lines.append(unfamiliar_text(name, r.quality_percentile))
    return "\n".join(lines)


def cmd_predict(args: argparse.Namespace) -> int:
    from app.qmf.bundle import read_bundle_manifest
    from app.qmf.predictor import parse_corruption

    manifest = getattr(args, "model_manifest", None) or read_bundle_manifest(_model_path(args.model))
    mods = manifest["model"]["modalities"]
    if args.unrecognized:
        raise UsageError(f"unrecognized arguments: {' '.join(args.unrecognized)}; this model's inputs are "
                         + ", ".join(f"--{m['name']}" for m in mods))
    named = {m["name"]: getattr(args, f"input_{m['name']}") for m in mods if getattr(args, f"input_{m['name']}", None)}
    files = _route_files(mods, named, args.files)
    if not files:
        raise UsageError("give at least one input file, e.g. " + " ".join(f"--{m['name']} FILE" for m in mods))
    corruptions = [_as_usage_error(parse_corruption, c) for c in args.corrupt]
    predictor = _load_predictor(args.model)
    for name, kind, _ in corruptions:
        if name not in predictor.modalities:
            raise UsageError(f"--corrupt {name}:{kind}: the model has no input {name!r}; it has {list(predictor.modalities)}")
        valid = predictor.modalities[name].corruption_kinds
        if kind not in valid:
            raise UsageError(f"--corrupt {name}:{kind}: {name} has no corruption {kind!r}; choose from {', '.join(valid)}")
    pred = predictor.predict_files(files, corruptions, seed=args.seed)
    if args.json:
        data = pred.to_json()
        data["corruptions"] = [{"modality": n, "kind": k, "level": lv} for n, k, lv in corruptions]
        print(json.dumps(data, indent=2))
    else:
        print(_format_prediction(pred, corruptions))
    return 0


# --------------------------------------------------------------------------- eval

def _progress_bar(desc: str, quiet: bool, unit: str = "pair"):
    from app.util.progress import ProgressReporter

    bar = ProgressReporter(desc, unit=unit, quiet=quiet)  # plain lines when stderr is a log
    return bar, bar.update


def cmd_eval(args: argparse.Namespace) -> int:
    from app.data.manifest import read_manifest
    from app.modalities.base import reuse_freed_memory
    from app.qmf import evaluate

    reuse_freed_memory()  # batch after batch of decoded pairs: keep their memory for the next one

    predictor = _load_predictor(args.model)
    manifest = read_manifest(args.manifest, modalities=list(predictor.modalities), labels=predictor.labels)
    for p in manifest.problems:
        print(f"warning: {p}", file=sys.stderr)
    if manifest.more_problems:
        print(f"warning: {args.manifest}: {manifest.more_problems:,} more rows left out", file=sys.stderr)
    if not manifest.rows:
        raise UsageError(f"{args.manifest}: no usable rows")
    try:
        levels = [float(x) for x in args.levels.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--levels {args.levels!r}: give numbers between 0 and 10, e.g. 0,5,10") from None
    if not levels or any(not 0 <= lv <= 10 for lv in levels):
        raise UsageError("--levels: give numbers between 0 and 10, e.g. 0,5,10")
    if args.seeds < 1:
        raise UsageError("--seeds must be at least 1")
    kinds = _as_usage_error(evaluate.parse_kinds, args.kinds, predictor)
    quiet = args.quiet or args.json
    bar, update = _progress_bar("evaluating", quiet)
    pairs = evaluate.Pairs(predictor, manifest.rows, update)  # decoded batch by batch, once
    try:
        if args.sweep:
            name, kind = _sweep_target(args, predictor)
            rows = evaluate.sweep(predictor, pairs, name, kind, levels)
        else:
            result = evaluate.protocol(predictor, pairs, levels, kinds, seeds=args.seeds)
    finally:
        bar.close()
    for line in pairs.skipped:
        print(f"warning: skipped {line}", file=sys.stderr)
    if not pairs.count:
        if all(row.label is None for row in manifest.rows):
            raise UsageError(f"{args.manifest}: eval needs a 'label' column with the true class of each pair")
        raise UsageError(f"{args.manifest}: no pair could be evaluated (see the warnings above)")
    if args.sweep:
        return _print_sweep(args, predictor, pairs.count, name, kind, rows)
    result["model"] = {"name": predictor.name, "sha256": predictor.sha256}
    result["skipped_rows"] = len({p.line for p in manifest.problems}) + manifest.more_problems + len(pairs.skipped)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    names = list(predictor.modalities)
    print(f"{predictor.name} on {pairs.count} pairs; corruption {', '.join(f'{k}:{v}' for k, v in kinds.items())}; "
          f"each modality corrupted with probability 0.5; {args.seeds} seeds (mean ± std, %)")
    rules = ["qmf", "late_fusion", "oracle", *names]
    print(f"{'level':>6}  " + "  ".join(f"{r:>14}" for r in rules) + "  " + "  ".join(f"{'AUROC ' + m:>12}" for m in names))
    for row in result["levels"]:
        cells = [f"{100 * row['accuracy'][r]['mean']:6.2f} ± {100 * row['accuracy'][r]['std']:4.2f}" for r in rules]
        au = [f"{row['quality_auroc'][m]:12.3f}" if row["quality_auroc"][m] is not None else f"{'-':>12}" for m in names]
        print(f"{row['level']:>6g}  " + "  ".join(f"{c:>14}" for c in cells) + "  " + "  ".join(au))
    return 0


def _sweep_target(args: argparse.Namespace, predictor: Any) -> tuple[str, str]:
    from app.qmf import evaluate

    name, _, kind = args.sweep.partition(":")
    if name not in predictor.modalities:
        raise UsageError(f"--sweep: the model has no modality {name!r}; it has {list(predictor.modalities)}")
    kind = (_as_usage_error(evaluate.parse_kinds, f"{name}:{kind}", predictor)[name] if kind
            else evaluate.default_kinds(predictor)[name])
    return name, kind


def _print_sweep(args: argparse.Namespace, predictor: Any, count: int, name: str, kind: str,
                 rows: list[dict[str, Any]]) -> int:
    if args.json:
        print(json.dumps({"model": {"name": predictor.name, "sha256": predictor.sha256}, "pairs": count,
                          "sweep": {"modality": name, "kind": kind, "levels": rows}}, indent=2))
        return 0
    names = list(predictor.modalities)
    print(f"{predictor.name} on {count} pairs; every {name} input corrupted by {kind}")
    print(f"{'level':>6} {'qmf':>7} {'late':>7} " + " ".join(f"{'acc ' + m:>10}" for m in names)
          + " " + " ".join(f"{'share ' + m:>12}" for m in names) + f" {'AUROC ' + name:>12}")
    for r in rows:
        au = f"{r['quality_auroc']:12.3f}" if r["quality_auroc"] is not None else f"{'-':>12}"
        print(f"{r['level']:>6g} {100 * r['accuracy']['qmf']:7.2f} {100 * r['accuracy']['late_fusion']:7.2f} "
              + " ".join(f"{100 * r['accuracy'][m]:10.2f}" for m in names) + " "
              + " ".join(f"{r['mean_share'][m]:12.3f}" for m in names) + f" {au}")
    return 0


# --------------------------------------------------------------------------- train

def cmd_train(args: argparse.Namespace) -> int:
    from app.data.manifest import read_manifest
    from app.qmf.bundle import save_bundle
    from app.qmf.train import Recipe, bundle_manifest, checkpoint_path, train

    recipe = _as_usage_error(Recipe.from_file, args.config)
    if args.epochs is not None:
        recipe.training.epochs = args.epochs
    if args.seed is not None:
        recipe.training.seed = args.seed
    names = [m.name for m in recipe.modalities]
    train_manifest = read_manifest(args.manifest, modalities=names, labels=recipe.labels)
    val_manifest = read_manifest(args.val, modalities=names, labels=recipe.labels) if args.val else None
    for m in (train_manifest, val_manifest):
        for p in (m.problems if m else []):
            print(f"warning: skipped {p}", file=sys.stderr)
    if not train_manifest.rows:
        raise UsageError(f"{args.manifest}: no usable rows")
    out = Path(args.out)
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr))
    result = train(recipe, train_manifest.rows, val_manifest.rows if val_manifest else None, out=out,
                   resume=args.resume, progress=not args.quiet, log=log)
    provenance = {"train_manifest": str(Path(args.manifest).name), "train_rows": len(train_manifest.rows),
                  "val_manifest": str(Path(args.val).name) if args.val else None}
    save_bundle(out, result.model, bundle_manifest(result, provenance))
    if val_manifest is not None and val_manifest.rows:
        from app.qmf.calibration import calibrate_bundle

        calibrate_bundle(out, val_manifest.rows, f"{Path(args.val).name}: clean pairs")
    ckpt = checkpoint_path(out)
    if ckpt.exists() and not args.keep_checkpoint:
        ckpt.unlink()
    print(f"wrote {out} (best epoch {result.best_epoch}, validation accuracy "
          f"{result.validation.get('clean_accuracy', float('nan')):.4f}, {result.seconds:.0f} s on {result.device})")
    return 0


# --------------------------------------------------------------------------- calibrate

def cmd_calibrate(args: argparse.Namespace) -> int:
    from app.data.manifest import read_manifest
    from app.qmf.bundle import read_bundle_manifest
    from app.qmf.calibration import calibrate_bundle

    model_path = _model_path(args.model)
    names = [m["name"] for m in read_bundle_manifest(model_path)["model"]["modalities"]]
    manifest = read_manifest(args.manifest, modalities=names)
    for p in manifest.problems:
        print(f"warning: skipped {p}", file=sys.stderr)
    if not manifest.rows:
        raise UsageError(f"{args.manifest}: no usable rows")
    out = Path(args.out) if args.out else model_path
    entry = calibrate_bundle(model_path, manifest.rows, f"{Path(args.manifest).name}: clean pairs",
                             args.unfamiliar_percentile, out=out)
    for name, t in entry["modalities"].items():
        print(f"{name}: {t['n']} clean inputs; unfamiliar below quality {t['unfamiliar_below']:.3f} "
              f"(percentile {entry['unfamiliar_percentile']:g}); median {t['quality'][t['percentiles'].index(50.0)]:.3f}")
    print(f"wrote {out}")
    return 0


# --------------------------------------------------------------------------- info

def cmd_info(args: argparse.Namespace) -> int:
    from app.qmf.bundle import parameter_count, read_bundle

    bundle = read_bundle(_model_path(args.model))  # full validation of header, manifest and checksums
    if bundle.graph is not None:
        from app.qmf.predictor import Predictor

        Predictor(bundle)  # the graph is checked and loaded too
    else:
        from app.qmf.bundle import load_bundle

        load_bundle(bundle.path)  # no graph: the weights must build the torch model
    m = bundle.manifest
    params = parameter_count(bundle.path)
    backend = "onnxruntime (the file carries its ONNX graph)" if bundle.graph is not None else \
        f"torch (no ONNX graph; add one with `qmf export-onnx {bundle.path}`)"
    if args.json:
        print(json.dumps({**m, "sha256": bundle.sha256, "parameters": params,
                          "onnx_graph_bytes": len(bundle.graph) if bundle.graph is not None else None}, indent=2))
        return 0
    print(f"{m['name']}  ({bundle.path})")
    print(f"sha256      {bundle.sha256}")
    print(f"format      {m['format']} v{m['format_version']}, written by QMF Studio {m.get('app_version', '?')}")
    if m.get("description"):
        print(f"about       {m['description']}")
    print(f"labels      {', '.join(m['model']['labels'])}")
    print(f"parameters  {params:,}")
    print(f"runs with   {backend}")
    model = m["model"]
    print(f"fusion      QMF energy weights (confidence scale {model.get('confidence_scale', 0.1):g}, "
          f"negative weights count as zero), weight floor {model.get('weight_floor', 0.0):g}")
    from app.qmf.config import ModalityConfig

    for mod in m["model"]["modalities"]:
        pre = ", ".join(f"{k}={v}" for k, v in mod.get("preprocessing", {}).items() if k != "vocab")
        print(f"input       {mod['name']} ({mod['kind']}): {pre}")
        print(f"  encoder   {ModalityConfig(mod['name'], mod['kind'], encoder=mod.get('encoder') or {}).describe_encoder()}")
    val = m.get("evaluation", {}).get("validation")
    if val:
        print("validation  " + ", ".join(f"{k} {v:.4f}" for k, v in val.items()))
    prov = m.get("provenance", {})
    for credit in prov.get("credits", []):
        print(f"data        {credit}")
    return 0


# --------------------------------------------------------------------------- export-onnx

def cmd_export_onnx(args: argparse.Namespace) -> int:
    import onnx  # noqa: F401 - torch's exporter needs it: a missing one is reported before any work
    import torch  # noqa: F401

    from app.qmf.bundle import add_graph, read_bundle

    source = Path(args.model)
    out = add_graph(source, args.out)
    bundle = read_bundle(out)
    from app.qmf.predictor import Predictor

    Predictor(bundle)  # proves the written graph loads
    print(f"wrote {out}: {out.stat().st_size:,} bytes, ONNX graph {len(bundle.graph):,} bytes, "
          f"sha256 {bundle.sha256[:12]}")
    return 0
