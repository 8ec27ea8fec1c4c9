"""Set the fusion weight floor of trained bundles, in place: the weights, calibration and the rest of the
manifest stay; the ONNX graph is exported again with the new rule.

    .venv/bin/python scripts/set_weight_floor.py 0.05 resources/models/avmnist-qmf.safetensors [more bundles]

The floor (app/qmf/fusion.py) is added to every input's fusion weight at prediction. The quality scores, and so
the calibration's percentiles, do not depend on it. The bundle's manifest records it under model.weight_floor,
next to the recipe it was trained with (whose own weight_floor, 0 for the bundled model, is what training used).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.qmf.bundle import load_bundle, save_bundle  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("floor", type=float)
    ap.add_argument("bundles", nargs="+")
    args = ap.parse_args(argv)
    for path in args.bundles:
        bundle = load_bundle(path)
        bundle.model.config.weight_floor = args.floor
        save_bundle(path, bundle.model, bundle.manifest)
        print(f"{path}: weight_floor = {args.floor:g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
