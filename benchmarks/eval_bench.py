"""`qmf eval` before and after, as whole processes on the same generated manifest, in the same run.

    .venv/bin/python benchmarks/eval_bench.py [--pairs 400] [--before REV] [--levels 0,5,10] [--seeds 3]

"Before" is the code of git revision REV (default: the torch era, the revision before the ONNX path
landed), unpacked with `git archive` into a temporary folder and run with its own bundled model
(torch, no ONNX graph); "after" is this tree with its bundled model (onnxruntime). Each runs the paper's protocol on
`--pairs` and on 4x as many pairs, so the peak memory shows whether it grows with the number of pairs.
Prints wall time, CPU time (user + system: on a shared machine the less noisy figure), peak RSS and
the speed-up (target >= 3x), plus QMF accuracy at the highest level from both as a sanity check (they
draw different corruption masks, so they agree only to within sampling noise).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.core_bench import run_measured  # noqa: E402


def generate(folder: Path, n: int, labels: list[str]) -> Path:
    """n pairs (28x28 PNG with a bar, 1 s 8 kHz tone with noise), labelled cyclically; a manifest CSV."""
    import numpy as np
    import soundfile as sf
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(8000) / 8000.0
    rows = []
    for i in range(n):
        rng = np.random.default_rng(i)
        img = rng.integers(0, 60, (28, 28), dtype=np.uint8)
        img[10:18, 4 + i % 5 : 20 + i % 5] = 255
        Image.fromarray(img).save(folder / f"{i:06d}.png")
        wave = 0.4 * np.sin(2 * np.pi * (200 + 100 * (i % 10)) * t) + rng.normal(0, 0.01, t.size)
        sf.write(folder / f"{i:06d}.wav", wave.astype(np.float32), 8000)
        rows.append((f"p{i}", f"{i:06d}.png", f"{i:06d}.wav", labels[i % len(labels)]))
    manifest = folder / "pairs.csv"
    with open(manifest, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "image", "audio", "label"])
        w.writerows(rows)
    return manifest


def torch_era() -> str:
    """The last revision before the ONNX path: the parent of the first commit that added onnx_graph.py."""
    added = subprocess.run(["git", "log", "--diff-filter=A", "--format=%H", "--", "app/qmf/onnx_graph.py"], cwd=ROOT,
                           check=True, capture_output=True, text=True).stdout.split()
    if not added:
        sys.exit("no commit adds app/qmf/onnx_graph.py; name the 'before' revision with --before")
    return subprocess.run(["git", "rev-parse", f"{added[-1]}^"], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout.strip()


def unpack(rev: str, dest: Path) -> Path:
    data = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=400)
    ap.add_argument("--before", help="git revision of the 'before' code (default: the torch era, the parent of "
                                     "the commit that added the ONNX path, app/qmf/onnx_graph.py)")
    ap.add_argument("--levels", default="0,5,10")
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()

    from app.qmf.bundle import read_bundle_manifest

    rev = args.before or torch_era()
    tmp = Path(tempfile.mkdtemp(prefix="qmf-eval-bench-"))
    before_root = unpack(rev, tmp / "before")
    after_model = ROOT / "resources" / "models" / "avmnist-qmf.safetensors"
    before_model = before_root / "resources" / "models" / "avmnist-qmf.safetensors"
    labels = read_bundle_manifest(after_model)["model"]["labels"]
    print(f"before: {rev[:12]} (unpacked to {before_root}); after: this tree; CPUs {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    results = {}
    for n in (args.pairs, 4 * args.pairs):
        manifest = generate(tmp / f"pairs-{n}", n, labels)
        for name, root, model in (("before", before_root, before_model), ("after", ROOT, after_model)):
            out = tmp / f"{name}-{n}.json"
            cmd = ["/bin/sh", "-c", f'cd "{root}" && PYTHONPATH="{root}" exec "{sys.executable}" -m app.cli eval '
                   f'--model "{model}" --manifest "{manifest}" --levels {args.levels} --seeds {args.seeds} '
                   f'--json --quiet > "{out}"']
            wall, cpu, rss = run_measured(cmd)
            top = json.loads(out.read_text())["levels"][-1]["accuracy"]["qmf"]["mean"]
            results[(name, n)] = (wall, cpu, rss)
            print(f"{name:>6} {n:6d} pairs: {wall:6.1f} s wall, {cpu:6.1f} s CPU, peak {rss:5.0f} MB; "
                  f"QMF accuracy at the top level {100 * top:.2f} %; load average {os.getloadavg()[0]:.1f}")
    for n in (args.pairs, 4 * args.pairs):
        (bw, bc, _), (aw, ac, _) = results[("before", n)], results[("after", n)]
        print(f"{n:6d} pairs: after is {bw / aw:.1f} x faster in wall time, {bc / ac:.1f} x in CPU time (target >= 3)")
    for name in ("before", "after"):
        small, big = results[(name, args.pairs)][2], results[(name, 4 * args.pairs)][2]
        print(f"{name:>6}: peak memory {small:.0f} MB at {args.pairs} pairs, {big:.0f} MB at {4 * args.pairs} "
              f"({big - small:+.0f} MB for {3 * args.pairs} more pairs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
