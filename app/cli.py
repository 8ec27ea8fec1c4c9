"""`qmf`: the command line. Thin: parsing and printing; the work is done by the layers below.

Every error a user can cause (a bad file, a bad model, a bad option, a full disk) ends as one line on
stderr naming the file and the reason, and a non-zero exit code; never a traceback. The layers below
raise `app.util.errors.UserError` (InputError, BundleError, ManifestError, a session's errors) for those;
an OSError is the machine's answer (disk full, permission denied) and is shown the same way.
Anything else is a bug in QMF Studio, and is reported as one (`app.util.errors.bug_report`), exit code 3.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.review.cli import add_batch_parser, add_review_parser
from app.util.errors import UsageError, UserError, bug_report, os_error_text

EXIT_USAGE = 2
EXIT_INPUT = 1
_TRAINING_PACKAGES = ("torch", "onnx", "safetensors")  # left out of the packaged app (packaging/README.md)
EXIT_BUG = 3


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

    model_path = _model_path(args.model)
    manifest = read_bundle_manifest(model_path)
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
    from app.qmf import evaluate

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
    for mod in m["model"]["modalities"]:
        pre = ", ".join(f"{k}={v}" for k, v in mod.get("preprocessing", {}).items() if k != "vocab")
        print(f"input       {mod['name']} ({mod['kind']}): {pre}")
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


# --------------------------------------------------------------------------- main

def _predict_inputs(argv: Sequence[str]) -> list[tuple[str, str]]:
    """The (name, kind) of each input of the model `qmf predict` will use, so it gets --<name> options.

    The model decides the options, so its header is read before the full parse. A model that cannot be
    read yields no options here; the command itself then reports why.
    """
    from app.qmf.bundle import BundleError, read_bundle_manifest

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--model")
    known, _ = pre.parse_known_args(list(argv)[1:])
    try:
        manifest = read_bundle_manifest(_model_path(known.model))
    except BundleError:
        return []
    return [(m["name"], m["kind"]) for m in manifest["model"]["modalities"]]


def build_parser(predict_inputs: Sequence[tuple[str, str]] = ()) -> argparse.ArgumentParser:
    from app import __version__

    parser = argparse.ArgumentParser(prog="qmf", description="Quality-aware multimodal fusion: predict, evaluate, train.")
    parser.add_argument("--version", action="version", version=f"qmf {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="predict one pair and show how much each input was trusted",
                       description="Predict one pair. Give inputs as --<modality> FILE (e.g. --image a.png --audio a.wav) "
                                   "or positionally (routed by file type).")
    p.add_argument("files", nargs="*", help="input files, routed to the model's inputs by type")
    p.add_argument("--model", help="model file (.safetensors); default: the bundled model")
    p.add_argument("--corrupt", action="append", default=[], metavar="MODALITY:KIND:LEVEL",
                   help="degrade an input before predicting, e.g. audio:white_noise:5 (level 0-10; repeatable)")
    p.add_argument("--seed", type=int, default=0, help="seed for --corrupt")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    for name, kind in predict_inputs:
        p.add_argument(f"--{name}", dest=f"input_{name}", metavar="FILE", help=f"the {kind} input ({name})")

    e = sub.add_parser("eval", help="accuracy and quality-score AUROC under the paper's corruption protocol")
    e.add_argument("--model")
    e.add_argument("--manifest", required=True, help="CSV of labelled pairs")
    e.add_argument("--levels", default="0,5,10", help="noise levels epsilon, 0-10 (default 0,5,10)")
    e.add_argument("--kinds", help="corruption per modality, e.g. image:gaussian,audio:white_noise")
    e.add_argument("--seeds", type=int, default=3)
    e.add_argument("--sweep", metavar="MODALITY[:KIND]",
                   help="instead of the protocol: corrupt every input of one modality at each level (accuracy, share, AUROC)")
    e.add_argument("--json", action="store_true")
    e.add_argument("--quiet", action="store_true", help="no progress bar")

    t = sub.add_parser("train", help="train a QMF model from a recipe and a manifest")
    t.add_argument("--config", required=True, help="recipe (.toml or .json)")
    t.add_argument("--manifest", required=True, help="training pairs (CSV)")
    t.add_argument("--val", help="validation pairs (CSV); default: a split of the training pairs")
    t.add_argument("--out", required=True, help="where to write the model (.safetensors)")
    t.add_argument("--epochs", type=int, help="override the recipe's epochs")
    t.add_argument("--seed", type=int, help="override the recipe's seed")
    t.add_argument("--resume", action="store_true", help="continue from OUT.ckpt if present")
    t.add_argument("--keep-checkpoint", action="store_true")
    t.add_argument("--quiet", action="store_true")

    c = sub.add_parser("calibrate", help="store clean-input quality percentiles and the 'unfamiliar input' threshold in a model",
                       description="Measure each input's quality on clean labelled pairs (validation, never test) and store "
                                   "the quantiles in the model file, so predictions show a percentile and an unfamiliar mark.")
    c.add_argument("--model", help="model file; default: the bundled model")
    c.add_argument("--manifest", required=True, help="CSV of clean validation pairs")
    c.add_argument("--out", help="write here instead of over the model file")
    c.add_argument("--unfamiliar-percentile", type=float, default=1.0,
                   help="inputs below this percentile of clean quality get the unfamiliar mark (default 1)")

    i = sub.add_parser("info", help="show a model file's manifest (validates the whole file)")
    i.add_argument("model", nargs="?", help="model file; default: the bundled model")
    i.add_argument("--json", action="store_true")

    x = sub.add_parser("export-onnx", help="add the ONNX graph of its own weights to a model file (fast, torch-free prediction)",
                       description="Write the model file again with the ONNX graph of the whole model (both branches and "
                                   "the fusion), so prediction runs with onnxruntime without torch. Weights and "
                                   "manifest are unchanged. Needs torch and onnx.")
    x.add_argument("model", help="model file (.safetensors)")
    x.add_argument("--out", help="where to write (default: the model file itself)")

    add_batch_parser(sub)
    add_review_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    inputs = _predict_inputs(argv) if argv[:1] == ["predict"] else []
    parser = build_parser(inputs)
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "predict":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.unrecognized = extra
    handler = {"predict": cmd_predict, "eval": cmd_eval, "train": cmd_train, "calibrate": cmd_calibrate,
               "info": cmd_info, "export-onnx": cmd_export_onnx}.get(args.command) or args.handler
    return run_handler(f"qmf {args.command}", handler, args)


def run_handler(context: str, handler: Any, args: argparse.Namespace) -> int:
    """Run a sub-command: a UserError or OSError is one line on stderr, anything else a bug report."""
    try:
        return handler(args)
    except UserError as exc:
        print(f"{context}: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, UsageError) else EXIT_INPUT
    except ModuleNotFoundError as exc:
        if exc.name not in _TRAINING_PACKAGES:
            print(bug_report(exc, context), file=sys.stderr)
            return EXIT_BUG
        print(f"{context}: error: this needs {exc.name}, which this installation does not include (the "
              "installed app predicts, evaluates and reviews; training and export-onnx need QMF Studio installed "
              "from source with torch: ./dev.sh setup)", file=sys.stderr)
        return EXIT_INPUT
    except OSError as exc:
        print(f"{context}: error: {_one_line(os_error_text(exc))}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print(f"{context}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - not the user's fault: say it is a bug, and where
        print(bug_report(exc, context), file=sys.stderr)
        return EXIT_BUG


def _one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
