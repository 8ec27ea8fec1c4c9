"""Desktop app speed: start-up, drop-to-charts latency, event-loop stalls while dragging a slider.

Run by hand (figures are printed, nothing is asserted):

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/gui_bench.py [--model M] [--drag-seconds 10]

1. process start -> window exposed (its first paint), model ready (the page says so), first
   prediction drawn (the first demo pair): a fresh `python -m app` per run with QMF_STUDIO_TIMING=1,
   which prints those timestamps (app/gui/main.py); measured from just before the process is
   spawned, median of --starts runs, bytecode caching on. Next to them, in the same run and taking
   turns with the app: a fresh `python -c` creating a QApplication, and one importing onnxruntime;
   with --baseline DIR, the app of another checkout too. Also the CPU time the process and its GUI
   thread have used by the first result (read from /proc), which a loaded machine inflates far less
   than the wall-clock figures.
2. drop -> charts updated, model loaded: a QDropEvent with two files sent to the window, timed until
   the window's `resultShown` (emitted after the charts and table are updated).
3. the longest stall of the GUI event loop while a severity slider is dragged continuously: a 1 ms
   QTimer records the gaps between its ticks while another timer moves the slider every 16 ms.

Without --model, uses the bundled model if present, else trains the tiny test model (a few seconds).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def prepare(model: str | None, work: Path) -> tuple[Path, list[dict[str, str]]]:
    from app.qmf.bundle import default_model_path

    pairs_root = work / "pairs"
    from tests.synthetic import make_synthetic_pairs, train_tiny_model

    synthetic = make_synthetic_pairs(pairs_root, per_class=8)
    if model:
        model_path = Path(model)
    elif default_model_path().exists():
        model_path = default_model_path()
    else:
        print("(no bundled model: training the tiny test model)")
        model_path = train_tiny_model(synthetic, work / "tiny.safetensors", epochs=15, batch_size=12,
                                      learning_rate=0.02)
    pairs = []
    samples_json = ROOT / "resources" / "samples" / "samples.json"
    if model_path != Path(model or "") and samples_json.exists() and model_path == default_model_path():
        import json

        for s in json.loads(samples_json.read_text())[:4]:
            pairs.append({k: str(samples_json.parent / v) for k, v in s["files"].items()})
    if not pairs:
        test = synthetic.root / "test"
        for label in ("low", "mid", "high"):
            pairs.append({"image": str(test / f"test_{label}_000.png"), "audio": str(test / f"test_{label}_000.wav")})
    return model_path, pairs


STARTUP_EVENTS = ("window-exposed", "model-ready", "first-result", "cpu: process at first-result",
                  "cpu: GUI thread at first-result")
STARTUP_LIMITS = {"window-exposed": 0.6, "model-ready": 1.0, "first-result": 1.1}  # issue 13, seconds


def _child_env(settings: Path) -> dict[str, str]:
    """The app's environment: timing lines on, own settings, and bytecode caching on (an installed
    app has its .pyc files; without them every start compiles the app's modules again)."""
    env = {**os.environ, "QMF_STUDIO_TIMING": "1", "QMF_STUDIO_SETTINGS": str(settings)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _cpu_seconds(pid: int, tid: int | None = None) -> float:
    """CPU seconds (user + system) a process, or one of its threads, has used so far (Linux /proc;
    NaN elsewhere). Read when the timing line arrives: a load-independent view of the start-up."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def _one_start(model: Path, env: dict[str, str], root: Path = ROOT) -> tuple[dict[str, float], dict[str, str]]:
    """Seconds from spawning `python -m app --model M` (which opens the first demo pair) to each
    timing event, and the notes it printed (whether torch got imported). `root`: the checkout to run
    (--baseline: an older one, which may lack some events; its window-shown stands in for exposed)."""
    t0 = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "--model", str(model)],
        cwd=root, env={**env, "PYTHONPATH": str(root)}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    seen: dict[str, float] = {}
    notes: dict[str, str] = {}
    try:
        for line in proc.stdout:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "qmf-timing":
                seen.setdefault(parts[1], float(parts[2]) - t0)
                if parts[1] == "first-result":
                    seen["cpu: process at first-result"] = _cpu_seconds(proc.pid)
                    seen["cpu: GUI thread at first-result"] = _cpu_seconds(proc.pid, proc.pid)
                    break
            elif len(parts) == 3 and parts[0] == "qmf-timing-note":
                notes[parts[1]] = parts[2]
    finally:
        proc.terminate()
        proc.wait(30)
    if "window-exposed" not in seen and "window-shown" in seen:
        seen["window-exposed"] = seen["window-shown"]
    return seen, notes


def _peer_seconds(code: str, env: dict[str, str]) -> float:
    """Seconds from spawning `python -c CODE` until it prints its end time (the same interpreter)."""
    t0 = time.time()
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    return float(out.split()[-1]) - t0


QT_PEER = ("import time; from PySide6.QtWidgets import QApplication; app = QApplication([]); "
           "print(time.time())")
ORT_PEER = "import time, onnxruntime; print(time.time())"


def startup_times(model: Path, runs: int, settings: Path,
                  baseline: Path | None = None) -> tuple[dict[str, list[float]], list[dict[str, str]]]:
    """Fresh processes, taking turns: the app, and its peers (Qt + QApplication; onnxruntime's import),
    and the app from `baseline` (another checkout) if given. A first start of each, not counted,
    writes the bytecode caches and warms the file cache."""
    env = _child_env(settings)
    env_offscreen = {**env, "QT_QPA_PLATFORM": env.get("QT_QPA_PLATFORM", "offscreen")}
    _one_start(model, env)
    if baseline is not None:
        _one_start(model, env, baseline)
    _peer_seconds(QT_PEER, env_offscreen)
    _peer_seconds(ORT_PEER, env)
    keys = [*STARTUP_EVENTS, "peer: Qt + QApplication", "peer: import onnxruntime"]
    if baseline is not None:
        keys += [f"baseline {key}" for key in STARTUP_EVENTS]
    out: dict[str, list[float]] = {key: [] for key in keys}
    notes = []
    for _ in range(runs):
        seen, note = _one_start(model, env)
        notes.append(note)
        for key in STARTUP_EVENTS:
            if key in seen:
                out[key].append(seen[key])
        if baseline is not None:
            seen, _ = _one_start(model, env, baseline)
            for key in STARTUP_EVENTS:
                if key in seen:
                    out[f"baseline {key}"].append(seen[key])
        out["peer: Qt + QApplication"].append(_peer_seconds(QT_PEER, env_offscreen))
        out["peer: import onnxruntime"].append(_peer_seconds(ORT_PEER, env))
    return out, notes


def wait_for(signal, timeout_ms: int = 60000) -> bool:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    got = {"ok": False}

    def done(*_args) -> None:
        got["ok"] = True
        loop.quit()

    signal.connect(done)
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec()
    signal.disconnect(done)
    return got["ok"]


def drop_latency(window, pairs: list[dict[str, str]], repeats: int) -> list[float]:
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    times = []
    for i in range(repeats):
        pair = pairs[i % len(pairs)]
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(p) for p in pair.values()])
        event = QDropEvent(QPointF(100, 100), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                           Qt.KeyboardModifier.NoModifier)
        t = time.perf_counter()
        window.dropEvent(event)
        if not wait_for(window.predict.resultShown):
            raise RuntimeError("no result after a drop")
        times.append(time.perf_counter() - t)
    return times


def drag_stalls(window, app, seconds: float) -> dict[str, float]:
    from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer

    panel = next(iter(window.predict.panels.values()))
    gaps: list[float] = []
    shown = {"n": 0}
    window.predict.resultShown.connect(lambda _p: shown.__setitem__("n", shown["n"] + 1))
    clock = QElapsedTimer()
    clock.start()
    last = {"t": clock.nsecsElapsed()}

    def tick() -> None:
        now = clock.nsecsElapsed()
        gaps.append((now - last["t"]) / 1e6)
        last["t"] = now

    ticker = QTimer()
    ticker.setTimerType(Qt.TimerType.PreciseTimer)
    ticker.setInterval(1)
    ticker.timeout.connect(tick)
    step = {"i": 0}

    def move() -> None:
        step["i"] += 1
        phase = step["i"] % 200
        panel.slider.setValue(phase if phase <= 100 else 200 - phase)  # back and forth 0..10

    mover = QTimer()
    mover.setInterval(16)
    mover.timeout.connect(move)
    loop = QEventLoop()
    ticker.start()
    mover.start()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()
    ticker.stop()
    mover.stop()
    gaps = gaps[1:]
    return {
        "max_ms": max(gaps),
        "p99_ms": statistics.quantiles(gaps, n=100)[98],
        "median_ms": statistics.median(gaps),
        "ticks": len(gaps),
        "slider_moves": step["i"],
        "results_shown": shown["n"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model")
    ap.add_argument("--starts", type=int, default=5)
    ap.add_argument("--drops", type=int, default=15)
    ap.add_argument("--drag-seconds", type=float, default=10.0)
    ap.add_argument("--startup-only", action="store_true", help="measure the start-up only (part 1)")
    ap.add_argument("--baseline", metavar="DIR",
                    help="another checkout of the app (e.g. `git archive REV | tar -x -C DIR`) started in turn "
                         "with this one, same model and settings")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        settings = work / "settings.ini"
        os.environ["QMF_STUDIO_SETTINGS"] = str(settings)
        model, pairs = prepare(args.model, work)
        print(f"model: {model}")
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")

        starts, notes = startup_times(model, args.starts, settings,
                                      Path(args.baseline).resolve() if args.baseline else None)
        for key, values in starts.items():
            if not values:
                print(f"process start -> {key}: not seen")
                continue
            median = statistics.median(values)
            if "cpu:" in key:
                print(f"{key}: median {median:.2f} s (runs: {', '.join(f'{v:.2f}' for v in values)})")
                continue
            limit = STARTUP_LIMITS.get(key)
            qt_peer = statistics.median(starts["peer: Qt + QApplication"] or [float("nan")])
            against = (f"; limit {limit:.2f} s ({'OK' if median <= limit else 'MISSED'}); "
                       f"{median / qt_peer:.1f}x the Qt peer" if limit else "")
            print(f"process start -> {key}: median {median:.2f} s{against} "
                  f"(runs: {', '.join(f'{v:.2f}' for v in values)})")
        torch = sorted({n.get("torch-imported", "?") for n in notes})
        print(f"torch imported by the first result: {', '.join(torch)} (the bundle carries its ONNX graph)")

        if args.startup_only:
            return 0
        from PySide6.QtWidgets import QApplication

        app = QApplication.instance() or QApplication([])
        from app.gui.window import MainWindow

        window = MainWindow(model)
        window.show()
        if not window.predict.model_ready and not wait_for(window.predict.modelReady):
            print("model did not load", file=sys.stderr)
            return 1
        drop_latency(window, pairs, 2)  # warm-up: first decode, first forward pass
        drops = drop_latency(window, pairs, args.drops)
        print(f"drop -> charts updated (model loaded): median {statistics.median(drops) * 1000:.0f} ms, "
              f"max {max(drops) * 1000:.0f} ms over {len(drops)} drops")
        stalls = drag_stalls(window, app, args.drag_seconds)
        print(f"slider dragged for {args.drag_seconds:.0f} s: longest event-loop stall {stalls['max_ms']:.1f} ms, "
              f"p99 gap {stalls['p99_ms']:.1f} ms, median gap {stalls['median_ms']:.2f} ms "
              f"({stalls['slider_moves']} slider moves, {stalls['results_shown']} predictions shown)")
        window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
