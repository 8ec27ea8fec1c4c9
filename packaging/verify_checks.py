"""Checks used by packaging/verify_linux.sh (run by the developer's Python, not by the packaged app).

    verify_checks.py selftest REPORT.json INSTALL_ROOT FORBIDDEN_DIR...
        the self-test report: frozen, every demo pair as expected, every path in it under
        INSTALL_ROOT or outside every FORBIDDEN_DIR (the checkout), the app code from INSTALL_ROOT
    verify_checks.py png FILE              a real screenshot: a PNG, at least 800x500, not blank
    verify_checks.py timing LOG START      seconds from START (unix time) to the qmf-timing events
    verify_checks.py first-pair SAMPLES_DIR    prints "--image F --audio F ..." for the first demo pair
    verify_checks.py predict JSON LABEL    the CLI's --json answer has LABEL
    verify_checks.py manifest SAMPLES_DIR N OUT.csv   a manifest of N pairs cycling over the demo pairs
    verify_checks.py batch CSV JSON MANIFEST   `qmf batch` exports: every manifest pair ok, labels as expected
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def _under(path: str, base: str) -> bool:
    try:
        Path(path).resolve().relative_to(Path(base).resolve())
        return True
    except ValueError:
        return False


def check_selftest(report_path: str, install_root: str, *forbidden: str) -> list[str]:
    problems = []
    r = json.loads(Path(report_path).read_text())
    if r.get("frozen") is not True:
        problems.append("report says frozen=false: not the packaged build")
    if not r.get("ok"):
        problems.append(f"self-test not ok: passed={r.get('passed')} failed={r.get('failed')} error={r.get('error')}")
    for res in r.get("results", []):
        if not res.get("ok"):
            problems.append(f"pair {res.get('id')}: expected {res.get('expected')!r}, got {res.get('label')!r} {res.get('error', '')}")
    for key in ("executable", "app_dir", "resources"):
        if not _under(r.get(key, ""), install_root):
            problems.append(f"{key} = {r.get(key)} is not inside the installed tree {install_root}")
    for name, where in (r.get("modules") or {}).items():
        if where and not _under(where, install_root):
            problems.append(f"module {name} loaded from {where}, outside the installed tree")
    for s in _strings(r):
        if s.startswith("/") and not _under(s, install_root) and any(_under(s, f) for f in forbidden):
            problems.append(f"path into the source tree: {s}")
    # PyInstaller's PySide6 runtime hook imports QtCore at start-up (no display needed); the
    # self-test itself must not bring in the GUI modules.
    gui = [m for m in r.get("qt_imported") or [] if m in ("PySide6.QtGui", "PySide6.QtWidgets")]
    if gui:
        problems.append(f"the self-test imported Qt GUI modules: {gui}")
    return problems


def check_png(path: str) -> list[str]:
    from PIL import Image

    p = Path(path)
    if not p.is_file() or p.stat().st_size < 5000:
        return [f"{path}: missing or tiny ({p.stat().st_size if p.exists() else 0} bytes)"]
    with Image.open(p) as im:
        if im.format != "PNG":
            return [f"{path}: not a PNG ({im.format})"]
        w, h = im.size
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
        n = len(colours) if colours else 1 << 20
    problems = []
    if w < 800 or h < 500:
        problems.append(f"{path}: {w}x{h}, smaller than a window")
    if n < 50:
        problems.append(f"{path}: only {n} colours, looks blank")
    print(f"screenshot {w}x{h}, {n} colours, {p.stat().st_size} bytes")
    return problems


def timing(log: str, start: str) -> None:
    t0 = float(start)
    out = {}
    for line in Path(log).read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "qmf-timing":
            out.setdefault(parts[1], float(parts[2]) - t0)
    print(" ".join(f"{k}={v:.2f}s" for k, v in out.items()) or "no qmf-timing lines")


def first_pair(samples_dir: str) -> None:
    d = Path(samples_dir)
    data = json.loads((d / "samples.json").read_text())
    if isinstance(data, dict):
        data = data.get("samples", [])
    pair = data[0]
    print(" ".join(f"--{k} {(d / v).resolve()}" for k, v in pair["files"].items()))
    print(pair.get("expected", ""))


def _demo_pairs(samples_dir: str) -> list[dict]:
    d = Path(samples_dir)
    data = json.loads((d / "samples.json").read_text())
    return data.get("samples", []) if isinstance(data, dict) else data


def write_manifest(samples_dir: str, n: str, out: str) -> None:
    """N rows (enough for `qmf batch` to decode in worker processes) over the labelled demo pairs."""
    import csv

    d = Path(samples_dir)
    pairs = [p for p in _demo_pairs(samples_dir) if p.get("expected") and len(p.get("files", {})) == 2]
    inputs = sorted(pairs[0]["files"])
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", *inputs, "label"])
        for i in range(int(n)):
            p = pairs[i % len(pairs)]
            w.writerow([f"p{i:05d}", *[(d / p["files"][k]).resolve() for k in inputs], p["expected"]])


def check_batch(csv_path: str, json_path: str, manifest: str) -> list[str]:
    import csv

    with open(manifest, newline="", encoding="utf-8") as f:
        want = {r["id"]: r["label"] for r in csv.DictReader(f)}
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    problems = []
    if len(rows) != len(want):
        problems.append(f"{csv_path}: {len(rows)} rows for {len(want)} pairs")
    bad = [r["id"] for r in rows if r.get("status") != "ok" or r.get("prediction") != want.get(r["id"])]
    if bad:
        problems.append(f"{csv_path}: {len(bad)} pairs not ok or not as labelled, e.g. {bad[:3]}")
    pairs = json.loads(Path(json_path).read_text()).get("pairs", [])
    if len(pairs) != len(want):
        problems.append(f"{json_path}: {len(pairs)} pairs for {len(want)}")
    if not problems:
        print(f"batch: {len(rows)} pairs ok in the CSV and the JSON")
    return problems


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    cmd, *rest = argv
    if cmd == "selftest":
        problems = check_selftest(*rest)
    elif cmd == "png":
        problems = check_png(*rest)
    elif cmd == "timing":
        timing(*rest)
        return 0
    elif cmd == "first-pair":
        first_pair(*rest)
        return 0
    elif cmd == "manifest":
        write_manifest(*rest)
        return 0
    elif cmd == "batch":
        problems = check_batch(*rest)
    elif cmd == "predict":
        r = json.loads(Path(rest[0]).read_text())
        problems = [] if r.get("label") == rest[1] else [f"qmf predict said {r.get('label')!r}, expected {rest[1]!r}"]
    else:
        print(__doc__)
        return 2
    for p in problems:
        print(f"  problem: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
