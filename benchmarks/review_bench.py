"""Benchmark the offline review on generated pairs: throughput, memory, GUI responsiveness.

    .venv/bin/python benchmarks/review_bench.py                 # 10,000 pairs
    .venv/bin/python benchmarks/review_bench.py --pairs 1000    # quicker

Prints, from one process and the same files:
  * read-only pairs/s       files -> validated arrays (Predictor.load_inputs), in the decoding thread pool
  * decoding-only pairs/s   files -> model inputs (decode_pair: read + preprocess), in the same pool
  * end-to-end pairs/s      BatchRunner: decode + model + SQLite writes into a fresh session
    (target: end-to-end at least half of decoding-only)
  * peak RSS after each phase (resource.getrusage)
  * the longest GUI event-loop stall while ReviewView runs the same review (target < 50 ms),
    measured by a 1 ms QTimer recording the gaps between its ticks from the first result (the turn
    that first paints the session's table, just before, is printed apart): once with nobody touching the
    window (what the run itself costs the GUI), once with a row selected every 0.5 s as an analyst
    would (target < 50 ms there too: a click redraws the detail numbers at once and the pair's files
    are decoded for the previews off the GUI thread), with the GUI-thread time inside each click, and
    the GUI thread's CPU time in its longest event-loop turn (what a loaded machine stretches into
    the stalls above);
  * rows of the finished session clicked with no run going on: a click's own GUI-thread time and
    the longest gap it leaves.

Pairs: 28x28 PNG + 1 s 8 kHz WAV, written to a temporary folder. Model: the bundled
resources/models/avmnist-qmf.safetensors if present, else a tiny model trained here in seconds.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def generate(folder: Path, n: int, labels: list[str], workers: int) -> None:
    import numpy as np
    import soundfile as sf
    from PIL import Image

    def write(i: int) -> None:
        rng = np.random.default_rng(i)
        label = labels[i % len(labels)]
        d = folder / label
        img = rng.integers(0, 255, (28, 28), dtype=np.uint8)
        img[10:18, 4:24] = 255
        Image.fromarray(img).save(d / f"{i:06d}.png")
        t = np.arange(8000) / 8000.0
        wave = 0.4 * np.sin(2 * np.pi * (200 + 100 * (i % 10)) * t) + rng.normal(0, 0.01, t.size)
        sf.write(d / f"{i:06d}.wav", wave.astype(np.float32), 8000)

    for label in labels:
        (folder / label).mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(write, range(n)))


def pick_model(tmp: Path, explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    bundled = ROOT / "resources" / "models" / "avmnist-qmf.safetensors"
    if bundled.is_file():
        return bundled
    from tests.synthetic import make_synthetic_pairs, train_tiny_model

    print("bundled model not found; training a tiny model on generated pairs…", flush=True)
    return train_tiny_model(make_synthetic_pairs(tmp / "train", per_class=24), tmp / "tiny.safetensors")


def pool_rate(fn, items, workers: int) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(fn, items, chunksize=16):
            pass
    return len(items) / (time.perf_counter() - start)


class StallAttribution:
    """Where the event loop's long turns go: wraps GUI-thread entry points of the Review page, adds up
    their time (and counts table cells painted, `data()` calls, cycle collections) inside each `app.processEvents()`
    of the bench's loop; `report()` lists the longest turns with what ran in them. Python only: Qt's
    own painting shows as the turn's unexplained rest."""

    WRAPPED = {
        "app.gui.review.table_model:ReviewTableModel": ("refresh", "reset", "row_at"),
        "app.gui.review.table_view:PairsTable": ("paintEvent",),
        "app.gui.previews:ImagePreview": ("paintEvent",),
        "app.gui.previews:AudioPreview": ("paintEvent",),
        "app.gui.review.view:ReviewView": ("_refresh_now", "_show_pair", "_show_decoded", "_after_reset",
                                           "select_row", "refresh_summary", "_set_running"),
        "app.gui.review.run:ReviewRun": ("_on_progress", "_on_prepared"),
        "app.gui.result_view:ResultView": ("show_result", "show_inputs", "clear"),
        "app.gui.charts:QualityChart": ("paintEvent",),
        "app.gui.charts:ProbabilityChart": ("paintEvent",),
        "pyqtgraph.widgets.GraphicsView:GraphicsView": ("paintEvent",),
    }

    def __init__(self) -> None:
        import gc
        import importlib

        self.turn: dict[str, float] = {}
        self.turns: list[tuple[float, dict[str, float]]] = []
        self._depth = 0
        for target, names in self.WRAPPED.items():
            module, _, cls_name = target.partition(":")
            cls = getattr(importlib.import_module(module), cls_name)
            for name in names:
                self._wrap(cls, name, f"{cls_name}.{name}")
        from app.gui.review.table_model import ReviewTableModel

        original_data = ReviewTableModel.data

        def data(model, index, role=0):
            self.turn["data() calls"] = self.turn.get("data() calls", 0) + 1
            return original_data(model, index, role)

        ReviewTableModel.data = data
        from app.gui.review import table_model

        painter_class = getattr(table_model, "CellPainter", None)  # absent from older code (bench A/B runs)
        if painter_class is not None and hasattr(painter_class, "paint_look"):  # PairsTable draws rows with it
            original_look = painter_class.paint_look

            def paint_look(delegate, *args):
                self.turn["cells painted"] = self.turn.get("cells painted", 0) + 1
                return original_look(delegate, *args)

            painter_class.paint_look = paint_look
        if painter_class is not None:
            original_paint = painter_class.paint

            def paint(delegate, painter, option, index):
                self.turn["cells painted"] = self.turn.get("cells painted", 0) + 1
                return original_paint(delegate, painter, option, index)

            painter_class.paint = paint
        self._gc_start = 0.0

        def on_gc(phase, info):
            if phase == "start":
                self._gc_start = time.thread_time()
            else:
                key = f"gc gen {info['generation']}"
                self.turn[key] = self.turn.get(key, 0.0) + (time.thread_time() - self._gc_start) * 1000

        gc.callbacks.append(on_gc)

    def _wrap(self, cls, name: str, label: str) -> None:
        original = cls.__dict__.get(name) or getattr(cls, name, None)
        if original is None:  # absent from older code (bench A/B runs)
            return
        attribution = self

        def wrapper(*args, **kwargs):
            c = time.thread_time()
            attribution._depth += 1
            try:
                return original(*args, **kwargs)
            finally:
                attribution._depth -= 1
                attribution.turn[label] = attribution.turn.get(label, 0.0) + (time.thread_time() - c) * 1000

        setattr(cls, name, wrapper)

    def end_turn(self, ms: float, cpu_ms: float = float("nan")) -> None:
        if ms > 20 or cpu_ms > 8:
            self.turns.append((ms, cpu_ms, self.turn))
        self.turn = {}

    def report(self, top: int = 8) -> str:
        """The `top` longest turns by wall time, then the `top` longest by GUI-thread CPU time (what
        a quiet machine would see), each with the CPU time of what ran in it."""
        lines = []
        for title, key in (("by wall time", 0), ("by GUI-thread CPU time", 1)):
            lines.append(f" {title} (wall / CPU of the turn: CPU inside each part):")
            for ms, cpu, parts in sorted(self.turns, key=lambda t: -t[key])[:top]:
                what = ", ".join(f"{k} {v:.0f}" if "calls" in k or "cells" in k else f"{k} {v:.1f} ms"
                                 for k, v in sorted(parts.items(), key=lambda kv: -kv[1]))
                lines.append(f"  {ms:6.1f} / {cpu:5.1f} ms: {what or 'nothing wrapped (Qt alone)'}")
        return "\n".join(lines)


def gui_run(model: Path, folder: Path, session_path: Path, batch_size: int, workers: int, browse: bool,
            attribution: StallAttribution | None = None) -> dict:
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from app.gui.review import ReviewView

    app = QApplication.instance() or QApplication([])
    view = ReviewView(model_path_provider=lambda: model, batch_size=batch_size, workers=workers)
    view.resize(1400, 900)
    view.show()
    gaps: list[float] = []
    clock = QElapsedTimer()
    state = {"last": None, "measuring": False, "done": None, "first_paint_gap": 0.0}

    def tick() -> None:
        now = clock.nsecsElapsed() / 1e6
        if state["measuring"] and state["last"] is not None:
            gaps.append(now - state["last"])
        elif state["opened"] and state["last"] is not None:  # the session's first picture, before any result
            state["first_paint_gap"] = max(now - state["last"], state["first_paint_gap"])
        state["last"] = now

    state["opened"] = False

    def started_running(progress) -> None:
        # From the first result: the model is loaded, pairs flow. The first report (0 done) comes right
        # after the session is opened, and the turn that paints the session's table for the first time
        # is start-up; its gap is printed apart.
        state["opened"] = True
        if progress.done > 0:
            state["measuring"] = True

    timer = QTimer()
    timer.setInterval(1)
    timer.timeout.connect(tick)
    view.run_finished.connect(lambda stats: state.update(done=stats))
    view.run_failed.connect(lambda msg: state.update(done={"error": msg}))
    clock.start()
    timer.start()
    start = time.perf_counter()
    view.open_source(folder, session_path)
    view.worker.progress.connect(started_running)
    # keep selecting rows while it runs, as an analyst would (the detail panel decodes the pair)
    browser = QTimer()
    browser.setInterval(500)
    clicks: list[float] = []  # GUI-thread milliseconds inside each click's handler

    def click() -> None:  # the next row each time, so every click shows a different pair
        n = view.table_model.rowCount()
        if n == 0:
            return
        t = time.perf_counter()
        view.select_row(len(clicks) * 7 % min(n, 200))
        clicks.append((time.perf_counter() - t) * 1000)

    browser.timeout.connect(click)
    if browse:
        browser.start()
    turn_cpu: list[float] = []  # GUI-thread CPU milliseconds of each processEvents() call while measuring
    cpu_start = None
    while state["done"] is None:
        t = time.perf_counter()
        c = time.thread_time()
        app.processEvents()
        if state["measuring"]:
            turn_cpu.append((time.thread_time() - c) * 1000)
            cpu_start = c if cpu_start is None else cpu_start
        if attribution is not None:  # before the first progress report: start-up, not counted
            if state["measuring"]:
                attribution.end_turn((time.perf_counter() - t) * 1000, turn_cpu[-1])
            else:
                attribution.turn = {}
        time.sleep(0.0005)
    gui_cpu = time.thread_time() - cpu_start if cpu_start is not None else float("nan")
    seconds = time.perf_counter() - start
    timer.stop()
    browser.stop()
    view.shutdown()
    gaps.sort()
    stats = state["done"]
    return {"stats": stats, "seconds": seconds, "max_gap_ms": gaps[-1] if gaps else float("nan"),
            "first_paint_gap_ms": state["first_paint_gap"],
            "p99_gap_ms": gaps[int(0.99 * (len(gaps) - 1))] if gaps else float("nan"), "ticks": len(gaps),
            "clicks": sorted(clicks), "turn_cpu": sorted(turn_cpu), "gui_cpu_s": gui_cpu}


def click_run(session_path: Path, clicks: int = 30) -> dict:
    """Rows of a finished session clicked every 0.3 s with no run going on: the GUI-thread time of each
    click and the longest event-loop gap (the click itself, then drawing the decoded previews), from
    half a second after the session is opened (its first paint is not a click's)."""
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from app.gui.review import ReviewView

    app = QApplication.instance() or QApplication([])
    view = ReviewView()
    view.resize(1400, 900)
    view.show()
    view.open_session(session_path)
    settle = time.perf_counter() + 0.5  # the window's first paint with the session is not a click's
    while time.perf_counter() < settle:
        app.processEvents()
        time.sleep(0.005)
    clock = QElapsedTimer()
    gaps: list[float] = []
    state = {"last": None}

    def tick() -> None:
        now = clock.nsecsElapsed() / 1e6
        if state["last"] is not None:
            gaps.append(now - state["last"])
        state["last"] = now

    timer = QTimer()
    timer.setInterval(1)
    timer.timeout.connect(tick)
    clock.start()
    timer.start()
    times = []
    longest_turn_cpu = 0.0  # GUI-thread CPU of the longest processEvents() call (the click's frames)
    n = view.table_model.rowCount()
    for i in range(clicks):
        t = time.perf_counter()
        view.select_row(i * 7 % max(1, min(n, 200)))
        times.append((time.perf_counter() - t) * 1000)
        until = time.perf_counter() + 0.3
        while time.perf_counter() < until:
            c = time.thread_time()
            app.processEvents()
            longest_turn_cpu = max(longest_turn_cpu, (time.thread_time() - c) * 1000)
            time.sleep(0.0005)
    timer.stop()
    view.shutdown()
    times.sort()
    gaps.sort()
    return {"median_ms": times[len(times) // 2], "max_ms": times[-1], "max_gap_ms": gaps[-1] if gaps else float("nan"),
            "clicks": len(times), "longest_turn_cpu_ms": longest_turn_cpu}


def throughput(predictor, folder: Path, files: list, model: Path, tmp: Path, workers: int, args, base_rss: float) -> None:
    """Read-only, decoding-only and end-to-end rates, and peak memory after each."""
    from app.review.runner import BatchRunner, decode_pair
    from app.review.workflow import prepare_session

    read_rate = pool_rate(predictor.load_inputs, files, workers)
    decode_rate = pool_rate(lambda f: decode_pair(predictor, f), files, workers)
    rss_decode = peak_rss_mb()

    prepared = prepare_session(tmp / "bench.qmfreview", predictor, folder, model)
    with prepared.session as session:
        start = time.perf_counter()
        stats = BatchRunner(predictor, session, batch_size=args.batch_size, workers=workers).run()
        e2e_seconds = time.perf_counter() - start
        assert session.result_count() == args.pairs
    e2e_rate = args.pairs / e2e_seconds
    rss_e2e = peak_rss_mb()

    print()
    print(f"read-only      {read_rate:9.1f} pairs/s  (files -> arrays)")
    print(f"decoding-only  {decode_rate:9.1f} pairs/s  (files -> model inputs)")
    print(f"end-to-end     {e2e_rate:9.1f} pairs/s  (decode + model + SQLite; {stats.errors} errors)"
          f"  = {e2e_rate / decode_rate:.2f} x decoding-only (target >= 0.5)")
    print(f"peak RSS       {base_rss:.0f} MB after setup, {rss_decode:.0f} MB after decoding, "
          f"{rss_e2e:.0f} MB after the end-to-end run")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=None, help="decoding threads (default: the runner's default)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--model", help="model file; default: the bundled one, else a tiny trained one")
    ap.add_argument("--no-gui", action="store_true", help="skip the GUI stall measurement")
    ap.add_argument("--keep", help="generate into this folder and keep it")
    ap.add_argument("--why", action="store_true",
                    help="list the longest event-loop turns of the browsing run with what ran in them")
    ap.add_argument("--gui-only", action="store_true", help="skip the throughput phases (GUI runs only)")
    args = ap.parse_args()

    from app.qmf.predictor import Predictor
    from app.review.runner import decode_pair, default_workers
    from app.review.sources import load_source

    workers = args.workers or default_workers()
    tmp_ctx = tempfile.TemporaryDirectory(prefix="qmf-review-bench-")
    tmp = Path(args.keep) if args.keep else Path(tmp_ctx.name)
    tmp.mkdir(parents=True, exist_ok=True)
    model = pick_model(tmp, args.model)
    predictor = Predictor.load(model)
    folder = tmp / "pairs"
    t0 = time.perf_counter()
    if args.keep and folder.is_dir() and sum(1 for _ in folder.glob("*/*.png")) == args.pairs:
        print(f"reusing the {args.pairs} pairs generated earlier under {folder}")  # same seeds: the same files
    else:
        generate(folder, args.pairs, predictor.labels[:3], workers=max(2, workers))
        print(f"generated {args.pairs} pairs in {time.perf_counter() - t0:.1f} s under {folder}")
    print(f"model {predictor.name} ({model.name}), backend {predictor.backend}, "
          f"decoding threads {workers}, batch {args.batch_size}, CPUs {os.cpu_count()}")
    base_rss = peak_rss_mb()

    source = load_source(folder, {n: m.kind for n, m in predictor.modalities.items()}, predictor.labels)
    files = [p.files for p in source.pairs]
    assert len(files) == args.pairs, (len(files), len(source.unmatched))
    decode_pair(predictor, files[0])  # warm caches (mel filterbank)

    if not args.gui_only:
        throughput(predictor, folder, files, model, tmp, workers, args, base_rss)
    if not args.no_gui:
        attribution = StallAttribution() if args.why else None
        for old in tmp.glob("gui-*.qmfreview*"):  # a kept folder's sessions from an earlier run: start afresh
            old.unlink()
        for browse in (False, True):
            g = gui_run(model, folder, tmp / f"gui-{browse}.qmfreview", args.batch_size, workers, browse,
                        attribution)
            s = g["stats"]
            rate = s.get("rate", float("nan")) if isinstance(s, dict) else float("nan")
            what = "a row clicked every 0.5 s" if browse else "window left alone"
            load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
            print(f"GUI run        {rate:9.1f} pairs/s  in the app ({g['seconds']:.1f} s incl. model load; {what}; "
                  f"load average after it {load} on {os.cpu_count()} CPUs)")
            print(f"GUI stall      longest {g['max_gap_ms']:.1f} ms, p99 {g['p99_gap_ms']:.1f} ms between 1 ms timer ticks "
                  f"over {g['ticks']} ticks from the first result" + (" (a click's response time)" if browse
                                                                      else " (target longest < 50 ms)")
                  + f"; before it, the session's first table paint: {g['first_paint_gap_ms']:.1f} ms")
            tc = g["turn_cpu"]
            if tc:
                print(f"GUI-thread CPU longest turn {tc[-1]:.1f} ms, p99 {tc[int(0.99 * (len(tc) - 1))]:.1f} ms; "
                      f"{g['gui_cpu_s']:.1f} s in all over the run (a load-independent view of the stalls above)")
            if g["clicks"]:
                c = g["clicks"]
                print(f"GUI click      {len(c)} clicks: GUI-thread time per click median {c[len(c) // 2]:.1f} ms, "
                      f"longest {c[-1]:.1f} ms (target: well under the 50 ms stall limit)")
            if attribution is not None:
                print(f"longest event-loop turns, {what} (GUI-thread CPU inside them; Qt's own work is the rest):")
                print(attribution.report())
                attribution.turns = []
        c = click_run(tmp / "gui-True.qmfreview")
        print(f"GUI click      {c['clicks']} clicks on the finished session (no run): GUI-thread time per click "
              f"median {c['median_ms']:.1f} ms, longest {c['max_ms']:.1f} ms; longest event-loop gap "
              f"{c['max_gap_ms']:.1f} ms (target < 50 ms); GUI-thread CPU of the longest turn "
              f"{c['longest_turn_cpu_ms']:.1f} ms")
        print(f"peak RSS       {peak_rss_mb():.0f} MB after the GUI runs")
    tmp_ctx.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
