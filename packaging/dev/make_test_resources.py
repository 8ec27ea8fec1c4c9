"""Make a stand-in model + demo samples (tiny, synthetic) for trying the packaging without the real
bundled resources:  .venv/bin/python packaging/dev/make_test_resources.py OUT_DIR

Writes OUT_DIR/model.safetensors and OUT_DIR/samples/{samples.json, *.png, *.wav}; then
`qmf-studio --self-test --model OUT_DIR/model.safetensors --samples OUT_DIR/samples`.
Run from the checkout (it uses tests/synthetic.py).
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def make(out: Path, epochs: int = 8) -> tuple[Path, Path]:
    from tests.synthetic import make_synthetic_pairs, train_tiny_model

    out.mkdir(parents=True, exist_ok=True)
    pairs = make_synthetic_pairs(out / "pairs", per_class=24)
    model = train_tiny_model(pairs, out / "model.safetensors", epochs=epochs)
    samples = out / "samples"
    samples.mkdir(exist_ok=True)
    entries = []
    with open(pairs.test_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    seen: set[str] = set()
    for row in rows:
        if row["label"] in seen:
            continue
        seen.add(row["label"])
        files = {}
        for kind in ("image", "audio"):
            src = pairs.root / row[kind]
            shutil.copy2(src, samples / src.name)
            files[kind] = src.name
        entries.append({"id": row["id"], "title": f"A clean {row['label']}", "files": files,
                        "expected": row["label"], "note": "synthetic stand-in"})
    (samples / "samples.json").write_text(json.dumps(entries, indent=2) + "\n")
    return model, samples


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    m, s = make(Path(sys.argv[1]).resolve())
    print(m)
    print(s)
