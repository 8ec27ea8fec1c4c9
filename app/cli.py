"""`qmf`: the command line. Thin: parsing and dispatch; each sub-command's handler is in app.cli_commands
(batch and review in app.review.cli), and the work is done by the layers below.

Every error a user can cause (a bad file, a bad model, a bad option, a full disk) ends as one line on
stderr naming the file and the reason, and a non-zero exit code; never a traceback. The layers below
raise `app.util.errors.UserError` (InputError, BundleError, ManifestError, a session's errors) for those;
an OSError is the machine's answer (disk full, permission denied) and is shown the same way.
Anything else is a bug in QMF Studio, and is reported as one (`app.util.errors.bug_report`), exit code 3.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from app.review.cli import add_batch_parser, add_review_parser
from app.util.errors import UsageError, UserError, bug_report, os_error_text

EXIT_USAGE = 2
EXIT_INPUT = 1
_TRAINING_PACKAGES = ("torch", "onnx", "safetensors")  # left out of the packaged app (packaging/README.md)
EXIT_BUG = 3
EXIT_BROKEN_PIPE = 141  # as a shell reports a command ended by SIGPIPE (128 + 13)


# --------------------------------------------------------------------------- main

# Sub-command -> its handler in app.cli_commands, imported when that command runs (batch and review
# set theirs on their parsers, from app.review.cli).
_HANDLERS = {"predict": "cmd_predict", "eval": "cmd_eval", "train": "cmd_train", "calibrate": "cmd_calibrate",
             "info": "cmd_info", "export-onnx": "cmd_export_onnx"}


def _predict_manifest(argv: Sequence[str]) -> dict[str, Any] | None:
    """The manifest of the model `qmf predict` will use, so each of its inputs gets a --<name> option.

    The model decides the options, so its header is read before the full parse (once: `cmd_predict`
    is handed the same manifest). A model that cannot be read yields None here; the command itself
    then reports why.
    """
    from app.cli_commands import _model_path
    from app.qmf.bundle import BundleError, read_bundle_manifest

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--model")
    known, _ = pre.parse_known_args(list(argv)[1:])
    try:
        return read_bundle_manifest(_model_path(known.model))
    except BundleError:
        return None


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
    i.add_argument("--model", dest="model_option", metavar="MODEL", help="the same, as the other commands name it")
    i.add_argument("--json", action="store_true")

    x = sub.add_parser("export-onnx", help="add the ONNX graph of its own weights to a model file (fast, torch-free prediction)",
                       description="Write the model file again with the ONNX graph of the whole model (both branches and "
                                   "the fusion), so prediction runs with onnxruntime without torch. Weights and "
                                   "manifest are unchanged. Needs torch and onnx.")
    x.add_argument("model", nargs="?", help="model file (.safetensors)")
    x.add_argument("--model", dest="model_option", metavar="MODEL", help="the same, as the other commands name it")
    x.add_argument("--out", help="where to write (default: the model file itself)")

    add_batch_parser(sub)
    add_review_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    manifest = _predict_manifest(argv) if argv[:1] == ["predict"] else None
    inputs = [(m["name"], m["kind"]) for m in manifest["model"]["modalities"]] if manifest else []
    parser = build_parser(inputs)
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "predict":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.unrecognized = extra
    _model_option(parser, args)
    args.model_manifest = manifest  # what _predict_manifest read (None: cmd_predict reads it and says why not)
    if args.command in _HANDLERS:
        from app import cli_commands

        handler = getattr(cli_commands, _HANDLERS[args.command])
    else:
        handler = args.handler
    return run_handler(f"qmf {args.command}", handler, args)


def _model_option(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """`qmf info` and `qmf export-onnx` take the model as an argument and, like every other command, as --model."""
    option = getattr(args, "model_option", None)
    if option is not None:
        if args.model is not None and args.model != option:
            parser.error(f"{args.command}: two models given ({args.model} and --model {option}): give one")
        args.model = option
    if args.command == "export-onnx" and args.model is None:
        parser.error("export-onnx needs the model file: qmf export-onnx MODEL")


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
    except BrokenPipeError:  # the reader went away (`qmf info | head`): not an error, and nothing more to say
        try:  # Python flushes stdout at exit; point it at /dev/null so that flush cannot fail again
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_BROKEN_PIPE
    except OSError as exc:
        print(f"{context}: error: {_one_line(os_error_text(exc))}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print(f"{context}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - not the user's fault: say it is a bug, and where
        print(bug_report(exc, context), file=sys.stderr)
        return EXIT_BUG


def __getattr__(name: str) -> Any:
    """`app.cli.cmd_predict` and the other handlers (and `_model_path`) as before the lazy import: from
    app.cli_commands on first use."""
    if name in _HANDLERS.values() or name == "_model_path":
        from app import cli_commands

        return getattr(cli_commands, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
