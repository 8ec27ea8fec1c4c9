"""`qmf-studio` and `python -m app`: parse the command line, open the main window.

`--self-test` is dispatched before Qt is imported (it must work where Qt cannot start). torch is
not imported here either: the model loads in the worker thread after the window is shown.

    qmf-studio [--model M] [--image F --audio F | --<input> F ... | FILES...]
    qmf-studio --screenshot OUT.png [--model M] [--image F --audio F]
    qmf-studio --self-test [...]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

# "1": print "qmf-timing <event> <unix time>" lines on stdout (benchmarks/gui_bench.py reads them):
# main (entered), window-shown (show() returned), window-exposed (the window's first paint began),
# event-loop (its first turn), model-ready (the page says the model is loaded), first-result (the
# first prediction is drawn), just before which "qmf-timing-note torch-imported True|False"
TIMING_ENV = "QMF_STUDIO_TIMING"
SCREENSHOT_SIZE = (1360, 860)
SCREENSHOT_TIMEOUT_MS = 180_000
SKIP_LIB_CHECK_ENV = "QMF_STUDIO_SKIP_LIB_CHECK"  # "1": start Qt even when X11 libraries look missing
START_UP_COLLECTION_HOLD_S = 5.0  # no cycle collections until the first result is in, or this long


def _timing(event: str) -> None:
    if os.environ.get(TIMING_ENV):
        print(f"qmf-timing {event} {time.time():.6f}", flush=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qmf-studio",
        description="QMF Studio: see how a multimodal model trusts each of its inputs.",
        epilog="Inputs are named after the model's modalities, e.g. --image F --audio F; "
        "unnamed files are routed by their type.",
    )
    p.add_argument("files", nargs="*", help="input files, routed to the model's inputs by type")
    p.add_argument("--model", help="a QMF Studio model (.safetensors); default: the bundled model")
    p.add_argument("--screenshot", metavar="OUT.png",
                   help="load the pair (or the first demo pair), wait for the prediction, save a "
                        "screenshot of the window and exit")
    p.add_argument("--no-demo", action="store_true", help="start without loading a demo pair")
    p.add_argument("--corrupt", action="append", default=[], metavar="INPUT:KIND:LEVEL",
                   help="start with a degradation set, e.g. audio:white_noise:6 (repeatable)")
    p.add_argument("--sweep", action="store_true", help="run the severity sweep after the first prediction")
    p.add_argument("--self-test", action="store_true", help="check the installation without a display")
    return p


KNOWN_OPTIONS = {"--model", "--screenshot", "--no-demo", "--self-test", "--help", "--corrupt", "--sweep"}


def _named_inputs(extra: list[str]) -> tuple[dict[str, str], list[str]]:
    """Split out `--<input> FILE` pairs for any modality name; returns (named, the other arguments)."""
    named: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    while i < len(extra):
        arg = extra[i]
        if arg == "--":
            rest.extend(extra[i:])
            break
        if arg.startswith("--") and len(arg) > 2 and arg.partition("=")[0] not in KNOWN_OPTIONS:
            key, eq, value = arg[2:].partition("=")
            if eq:
                named[key] = value
                i += 1
                continue
            if i + 1 < len(extra) and not extra[i + 1].startswith("--"):
                named[key] = extra[i + 1]
                i += 2
                continue
        rest.append(arg)
        i += 1
    return named, rest


def _self_test(argv: list[str]) -> int:
    from app.selftest import run  # no Qt: it must work where the window cannot start

    return int(run(argv) or 0)


def _has_display() -> bool:
    """Whether a screen is reachable (X11/Wayland on Linux; Windows and macOS always have one)."""
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _missing_x11_library() -> str | None:
    """One install command when Qt's X11 plugin is about to fail for want of system libraries.

    Qt then aborts with a message about 'xcb-cursor0' (whichever library is missing) and a core
    dump; saying first what to install is kinder. The plugin's real dependency list is read
    (`app.gui.xcb_libs`), so the hint cannot drift from the Qt in use. Only checked when X11 is
    the platform Qt will pick.
    """
    if not sys.platform.startswith("linux") or not os.environ.get("DISPLAY"):
        return None
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith("xcb"):
        return None
    if not platform and os.environ.get("WAYLAND_DISPLAY"):
        return None
    from app.gui.xcb_libs import install_hint, missing_xcb_libraries

    missing = missing_xcb_libraries()
    return install_hint(missing) if missing else None


def main(argv: Sequence[str] | None = None) -> int:
    _timing("main")
    # The Review tab runs batches in a child process; in a frozen build that child re-enters here.
    import multiprocessing

    multiprocessing.freeze_support()
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--self-test" in argv:
        return _self_test(argv)

    parser = build_parser()
    named, rest = _named_inputs(argv)
    args = parser.parse_args(rest)
    if args.screenshot and "QT_QPA_PLATFORM" not in os.environ and not _has_display():
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a screenshot needs no screen
    if "QT_QPA_PLATFORM" not in os.environ and not _has_display():
        print("qmf-studio: no display found (DISPLAY / WAYLAND_DISPLAY are not set). Run it in a desktop session, "
              "or use --screenshot OUT.png, or the command line `qmf`.", file=sys.stderr)
        return 2
    hint = _missing_x11_library()
    if hint and not os.environ.get(SKIP_LIB_CHECK_ENV):
        print(hint, file=sys.stderr)  # Qt would abort (with a core dump) on the first missing library
        return 2

    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    owns_app = app is None
    if owns_app:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication([sys.argv[0] if sys.argv else "qmf-studio"])
    app.setApplicationName("QMF Studio")
    app.setOrganizationName("QMF Studio")
    app.setApplicationDisplayName("QMF Studio")
    QGuiApplication.setDesktopFileName("qmf-studio")  # matches the installed .desktop entry
    from PySide6.QtGui import QIcon

    from app.resources import icon_path

    icon = icon_path()
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))

    from app.gui.collector import install_gui_thread_collector
    from app.gui.errors import install_excepthook
    from app.gui.window import MainWindow

    # The worker reads the model's header and loads the model from here on, and decodes the first pair
    # beside it. The charts are built after the first paint, except for --screenshot, which waits for
    # the prediction anyway.
    window = MainWindow(args.model, defer_views=not args.screenshot, header_in_worker=True,
                        prefetch=_first_files(named, args))
    page = window.predict
    collector = install_gui_thread_collector()
    if collector is not None:  # the page collects and freezes once the first result is shown
        collector.hold(START_UP_COLLECTION_HOLD_S)

    def say_fallback() -> None:  # e.g. a bad --model FILE: the window says so too
        if page.model.fallback_note:
            print(f"qmf-studio: {page.model.fallback_note}", file=sys.stderr)

    page.model.when_opened(say_fallback)
    reporter = install_excepthook(lambda: window, show_dialogs=not args.screenshot)
    if args.screenshot:
        window.fit_screen = False
        window.resize(*SCREENSHOT_SIZE)
    window.firstPainted.connect(lambda: _timing("window-exposed"))
    page.modelReady.connect(lambda _m: _timing("model-ready"))
    if os.environ.get(TIMING_ENV):  # at the first result: was torch needed? (it should not be for an ONNX bundle)
        page.resultShown.connect(lambda _p: print(f"qmf-timing-note torch-imported {'torch' in sys.modules}",
                                                  flush=True))
    page.resultShown.connect(lambda _p: _timing("first-result"))
    # Everything imported and built so far lives as long as the app: keep it out of the cycle
    # collections that start-up's allocations would trigger (a full one walks it all, ~0.1 s).
    gc.freeze()
    window.show()
    _timing("window-shown")
    QTimer.singleShot(0, lambda: _timing("event-loop"))

    def with_panels() -> None:  # the panels exist once the views are built and the model's header is read
        nonlocal named
        _apply_corruptions(page, args.corrupt)
        if args.sweep:
            def sweep_once(_p) -> None:
                page.resultShown.disconnect(sweep_once)
                page.run_sweep()

            page.resultShown.connect(sweep_once)
        unknown = [n for n in named if n not in page.panels]
        if unknown and page.panels:
            print(f"qmf-studio: this model has no input {', '.join('--' + n for n in unknown)}; "
                  f"its inputs: {', '.join('--' + n for n in page.panels)}", file=sys.stderr)
            named = {k: v for k, v in named.items() if k in page.panels}
        if named:
            page.set_files(named, predict=not args.files)
        if args.files:
            page.open_files(args.files)
        if not named and not args.files and not args.no_demo and page.manifest is not None:
            page.load_first_demo()

    window.when_views_built(lambda: page.model.when_opened(with_panels))

    # Run the application's loop when this call created the application; inside a running one
    # (tests, embedding) run a local loop instead: QCoreApplication.exit() would make every later
    # QEventLoop.exec() in this thread return at once.
    loop = None if owns_app else QEventLoop()
    quit_on_close = app.quitOnLastWindowClosed()
    if loop is not None:
        app.setQuitOnLastWindowClosed(False)  # closing our window must not quit the host's application
    quit_with = app.exit if loop is None else loop.exit
    if loop is not None:
        window.closed.connect(lambda: loop.exit(0))
    exit_code = {"code": 0}
    if args.screenshot:
        _arrange_screenshot(quit_with, window, Path(args.screenshot), exit_code, wait_for_sweep=args.sweep)
    try:
        (app if loop is None else loop).exec()
    finally:
        app.setQuitOnLastWindowClosed(quit_on_close)
        if collector is not None:
            collector.hold(0)
        reporter.uninstall()
        if page.service.is_running():
            page.service.stop()
    return exit_code["code"]


def _first_files(named: dict[str, str], args) -> dict[str, str | None]:
    """The pair the window opens with, by input name, as far as it is known before the model's header is
    read: the named inputs, or the first demo pair (files routed by type are left to the router)."""
    if named:
        return dict(named)
    if args.files or args.no_demo:
        return {}
    from app.resources import read_demo_samples

    try:
        return dict(read_demo_samples()[0]["files"])
    except (ValueError, IndexError):
        return {}


def _apply_corruptions(page, specs: list[str]) -> None:
    """`--corrupt INPUT:KIND:LEVEL` (parsed as `qmf predict --corrupt` parses it) set on the panels."""
    from app.qmf.corruption import parse_corruption

    for text in specs:
        try:
            name, kind, level = parse_corruption(text)
        except ValueError as exc:
            print(f"qmf-studio: --corrupt: {exc}", file=sys.stderr)
            continue
        panel = page.panels.get(name)
        if panel is None or kind not in panel.corruption_kinds():
            print(f"qmf-studio: --corrupt {text}: expected an input of this model ({', '.join(page.panels)}) "
                  f"and one of its corruptions ({', '.join(panel.corruption_kinds()) if panel else '-'})",
                  file=sys.stderr)
            continue
        panel.set_corruption_kind(kind)
        panel.set_level(level)


def _arrange_screenshot(quit_with, window, out: Path, exit_code: dict, wait_for_sweep: bool = False) -> None:
    """Save the window once the prediction is shown (or once it is clear none will come), then quit."""
    from PySide6.QtCore import QTimer

    state = {"done": False}

    def finish(code: int, note: str | None = None) -> None:
        if state["done"]:
            return
        state["done"] = True

        def save() -> None:
            out.parent.mkdir(parents=True, exist_ok=True)
            ok = window.grab().save(str(out))
            if not ok:
                print(f"qmf-studio: could not write {out}", file=sys.stderr)
            if note:
                print(f"qmf-studio: {note}", file=sys.stderr)
            exit_code["code"] = code if ok else 1
            window.close()
            quit_with(exit_code["code"])

        QTimer.singleShot(250, save)  # let the charts paint

    page = window.predict

    def has_files() -> bool:
        return any(p.path for p in page.panels.values())

    (page.sweepShown if wait_for_sweep else page.resultShown).connect(lambda _p: finish(0))
    page.inputFailed.connect(lambda name, msg: finish(1, msg or "input failed"))
    page.modelReady.connect(lambda _m: None if has_files() else finish(0, "no input pair to predict"))
    page.modelFailed.connect(lambda msg: finish(1, msg))
    page.model.when_opened(lambda: finish(1, "no model") if page.manifest is None else None)
    QTimer.singleShot(SCREENSHOT_TIMEOUT_MS, lambda: finish(1, "timed out waiting for the prediction"))


if __name__ == "__main__":
    sys.exit(main())
