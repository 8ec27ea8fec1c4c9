"""Screen the fusion weight floor on validation: fused accuracy per corruption pattern and the foreign families'
"fused = partner", for several floors, from one forward pass per condition.

    .venv/bin/python scripts/screen_weight_floor.py [--model resources/models/avmnist-qmf.safetensors] \\
        [--manifest work/avmnist/val_small.csv] [--pairs 1000] [--floors 0,0.02,0.05,0.1,0.2,0.5,1e6]

The floor c (app/qmf/fusion.py) fuses sum_m (max(w_m, 0) + c) * z_m; a very large c is late fusion. The bundle's
own floor is ignored here: every floor is applied, by `fuse_by_energy`, to the same logits. Conditions: the
seen kinds (image gaussian, audio white noise) and the training zoo's (image speckle / jpeg, audio pink noise /
reverb, app/modalities/zoo.py) at eps 5, 7.5 and 10, damaging the image, the audio or both, and training
foreign families. Held-out kinds and families are printed too, marked, for the record: a floor is chosen on
the training ones.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from eval_foreign import foreign_pairs, forward, read_pools  # noqa: E402

from app.data.manifest import read_manifest  # noqa: E402
from app.modalities.zoo import degrade  # noqa: E402
from app.qmf.evaluate import decode_rows  # noqa: E402
from app.qmf.fusion import fuse_by_energy  # noqa: E402
from app.qmf.predictor import Predictor  # noqa: E402

KINDS = {"seen gaussian / white noise": {"image": "gaussian", "audio": "white_noise"},
         "zoo speckle / pink noise": {"image": "speckle", "audio": "pink_noise"},
         "zoo jpeg / reverb": {"image": "jpeg", "audio": "reverb"},
         "HELD OUT salt-and-pepper / dropout": {"image": "salt_pepper", "audio": "dropout"},
         "HELD OUT blur / clipping": {"image": "blur", "audio": "clipping"}}
FOREIGN = [("image", "uniform_noise"), ("image", "symbols"), ("audio", "tone"), ("audio", "shuffled_speech"),
           ("audio", "spoken_words"), ("image", "letters"), ("audio", "reversed_speech")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "resources" / "models" / "avmnist-qmf.safetensors"))
    ap.add_argument("--manifest", default=str(ROOT / "work" / "avmnist" / "val_small.csv"))
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--floors", default="0,0.02,0.05,0.1,0.2,0.5,1e6")
    ap.add_argument("--pool", default="audio:spoken_words=" + str(ROOT / "work" / "words" / "val"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    floors = [float(x) for x in args.floors.split(",")]
    pred = Predictor.load(args.model, backend="torch")
    names = list(pred.modalities)
    data = decode_rows(pred, read_manifest(args.manifest, modalities=names).rows[: args.pairs])
    raws, labels = data.raws, data.labels

    def fused(out: dict, c: float) -> np.ndarray:
        logits = {n: torch.from_numpy(out[f"z:{n}"]) for n in names}
        return fuse_by_energy(logits, pred.model.config.confidence_scale, floor=c).fused.numpy()

    def damaged(pattern: tuple[str, ...], kinds: dict[str, str], level: float) -> list[dict]:
        return [{**r, **{n: degrade(pred.modalities[n], r[n], kinds[n], level, np.random.default_rng([0, i, j]))
                         for j, n in enumerate(names) if n in pattern}} for i, r in enumerate(raws)]

    print(f"{Path(args.model).name}, {len(raws)} pairs of {Path(args.manifest).name}; floors {floors}")
    for group, kinds in KINDS.items():
        for level in (5.0, 7.5, 10.0):
            for pattern in [(n,) for n in names] + [tuple(names)]:
                out = forward(pred, damaged(pattern, kinds, level))
                accs = " / ".join(f"{100 * float((fused(out, c).argmax(1) == labels).mean()):.1f}" for c in floors)
                print(f"  {group}, eps {level:g}, damaged {'+'.join(pattern)}: accuracy {accs}", flush=True)
    pools = read_pools(pred, [args.pool])
    for name, family in FOREIGN:
        out = forward(pred, foreign_pairs(pred, raws, name, family, pools.get((name, family)), 0))
        partner = next(n for n in names if n != name)
        alone = out[f"z:{partner}"].argmax(1)
        same = " / ".join(f"{100 * float((fused(out, c).argmax(1) == alone).mean()):.1f}" for c in floors)
        print(f"  foreign {name} {family}: fused = partner {same}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
