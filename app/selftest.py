"""`qmf-studio --self-test`: check an installation without a display.

Loads the bundled model (or `--model M`), predicts every demo pair listed in
`resources/samples/samples.json` (or `--samples DIR`), prints one JSON document on stdout and
returns 0 only when every pair gets its expected label. Needs no Qt, so it runs where the desktop
cannot start (a server, a CI job, a broken display). `--output FILE` also writes the JSON to FILE
(a windowed Windows build has no console to print to).

The JSON says where everything was loaded from (`executable`, `app_dir`, `resources`, `model.path`,
`modules`), so a packaged build can be checked for not reaching into a source checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1  # a pair got the wrong label, or the model / samples cannot be used
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qmf-studio --self-test",
        description="Load the model, predict every demo pair, print the results as JSON; "
        "exit 0 only if every pair gets its expected label.",
    )
    p.add_argument("--self-test", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", help="model file (default: the bundled model)")
    p.add_argument("--samples", metavar="DIR", help="folder with samples.json (default: the bundled demo samples)")
    p.add_argument("--output", metavar="FILE", help="also write the JSON report to FILE")
    return p


def _where(module_name: str) -> str | None:
    mod = sys.modules.get(module_name)
    path = getattr(mod, "__file__", None)
    return str(Path(path).resolve()) if path else None


def _emit(report: dict[str, Any], output: str | None) -> None:
    text = json.dumps(report, indent=2, sort_keys=False)
    print(text, flush=True)
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text + "\n", encoding="utf-8")


def run(argv: Sequence[str] | None = None) -> int:
    """Run the self-test; `argv` may hold the desktop app's other options (they are ignored)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args, _ignored = build_parser().parse_known_args(argv)
    started = time.perf_counter()

    import app
    from app.resources import default_model_path, read_demo_samples, resources_dir, samples_dir

    report: dict[str, Any] = {
        "self_test": "qmf-studio",
        "version": app.__version__,
        "frozen": bool(getattr(sys, "frozen", False)),
        "executable": str(Path(sys.executable).resolve()),
        "app_dir": str(Path(app.__file__).resolve().parent),
        "resources": str(resources_dir()),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cwd": os.getcwd(),
    }

    def fail(message: str) -> int:
        report.update(error=message, passed=0, failed=0, ok=False)
        _emit(report, args.output)
        print(f"qmf-studio --self-test: FAILED: {message}", file=sys.stderr)
        return EXIT_FAILED

    model_path = Path(args.model).resolve() if args.model else default_model_path()
    samples = Path(args.samples).resolve() if args.samples else samples_dir()
    report["samples"] = str(samples)

    try:
        pairs = read_demo_samples(samples)
    except ValueError as exc:
        return fail(str(exc))

    try:
        t0 = time.perf_counter()
        from app.qmf.bundle import BundleError
        from app.qmf.predictor import Predictor

        try:
            predictor = Predictor.load(model_path)
        except BundleError as exc:
            return fail(f"cannot load the model: {exc}")
        load_seconds = time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001 — a broken build: a module or file left out
        import traceback

        report["traceback"] = traceback.format_exc().splitlines()
        return fail(f"cannot import the model code: {type(exc).__name__}: {exc}")

    report["model"] = {
        "path": str(model_path),
        "name": predictor.name,
        "sha256": predictor.sha256,
        "labels": predictor.labels,
        "modalities": list(predictor.modalities),
    }
    report["backend"] = predictor.backend  # onnxruntime when the model file carries its ONNX graph
    for package in ("onnxruntime", "torch"):
        if package in sys.modules:  # the packaged app has no torch; a source run uses it only as the fallback
            report[package] = sys.modules[package].__version__

    results = []
    t1 = time.perf_counter()
    for pair in pairs:
        pid = str(pair.get("id", f"pair-{len(results) + 1}"))
        expected = pair.get("expected")
        files = pair["files"]  # absolute already
        entry: dict[str, Any] = {"id": pid, "title": pair.get("title"), "expected": expected, "files": files}
        try:
            pred = predictor.predict_files(files)
        except Exception as exc:  # noqa: BLE001 — report the pair as failed and go on with the rest
            entry.update(label=None, probability=None, ok=False, error=f"{type(exc).__name__}: {exc}")
        else:
            js = pred.to_json()
            entry.update(
                label=pred.label,
                probability=round(float(pred.probability), 6),
                ok=expected is not None and pred.label == str(expected),
                modalities={
                    name: {
                        "label": m["label"],
                        "quality": round(float(m["quality"]), 6),
                        "share": round(float(m["share"]), 6),
                    }
                    for name, m in js["modalities"].items()
                },
            )
            if expected is None:
                entry["error"] = "the pair has no expected label"
        results.append(entry)

    passed = sum(1 for r in results if r["ok"])
    failed = len(results) - passed
    report["results"] = results
    report["passed"] = passed
    report["failed"] = failed
    report["ok"] = failed == 0 and passed > 0
    report["seconds"] = {
        "load_model": round(load_seconds, 3),
        "predict": round(time.perf_counter() - t1, 3),
        "total": round(time.perf_counter() - started, 3),
    }
    report["modules"] = {name: _where(name) for name in ("app", "onnxruntime", "torch", "numpy", "soundfile")
                         if name in sys.modules}
    report["qt_imported"] = sorted(m for m in sys.modules if m.startswith("PySide6.Qt"))
    _emit(report, args.output)
    verdict = "passed" if report["ok"] else "FAILED"
    print(
        f"qmf-studio --self-test: {verdict}: {passed}/{len(results)} demo pairs as expected "
        f"(model {predictor.name}, {report['seconds']['total']:.1f} s)",
        file=sys.stderr,
    )
    return EXIT_OK if report["ok"] else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(run())
