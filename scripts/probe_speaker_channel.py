"""Is a held-out speaker's miss his microphone's colour? A probe of one leave-one-speaker-out branch.

    .venv/bin/python scripts/probe_speaker_channel.py --speaker nicolas \\
        --branch work/loso_lineage_nicolas/nicolas-audio-branch.pt [--confused 4:8]

The branch is one that scripts/run_loso.py trained without the speaker (its SPEAKER-audio-branch.pt). Two
checks on the FSDD recordings: the other speakers' held-back recordings (index 0-4 and 45-49, which the branch
did not train on) muffled through a first-order low-pass (gain 1/sqrt(1 + (f/fc)^2), zero phase) at falling
cutoffs: if the speaker's channel were the cause, muffled voices would start to fail the same way; and the
speaker's own recordings brightened by pre-emphasis (app/modalities/augment.py's spectral_tilt): if it were
the cause, they would be read better. Prints accuracy and the share of `--confused` (spoken:heard) for each.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.modalities import get_modality  # noqa: E402
from app.modalities.augment import spectral_tilt  # noqa: E402
from app.qmf.model import ModalityBranch  # noqa: E402
from app.qmf.train import Recipe  # noqa: E402


def muffle(x: np.ndarray, cutoff: float, sample_rate: int) -> np.ndarray:
    """First-order low-pass magnitude at `cutoff` Hz (zero phase), scaled back to the recording's peak."""
    spectrum = np.fft.rfft(x.astype(np.float64))
    freqs = np.fft.rfftfreq(x.size, d=1.0 / sample_rate)
    y = np.fft.irfft(spectrum / np.sqrt(1.0 + (freqs / cutoff) ** 2), n=x.size)
    peak_in, peak_out = float(np.max(np.abs(x))), float(np.max(np.abs(y)))
    return (y * (peak_in / peak_out if peak_out > 0 else 0.0)).astype(np.float32)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speaker", required=True)
    ap.add_argument("--branch", type=Path, required=True, help="SPEAKER-audio-branch.pt from scripts/run_loso.py")
    ap.add_argument("--config", default=str(ROOT / "recipes" / "avmnist-qmf.toml"), help="the recipe the branch was trained with")
    ap.add_argument("--fsdd", type=Path, default=ROOT.parent / "shared" / "data" / "fsdd" / "recordings")
    ap.add_argument("--confused", default="4:8", help="spoken:heard digit pair whose share is printed")
    ap.add_argument("--cutoffs", default="2000,1000,600,400")
    ap.add_argument("--pre-emphasis", default="0.5,0.9")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = next(m for m in Recipe.from_file(args.config).modalities if m.kind == "audio")
    audio = get_modality("audio", cfg.preprocessing)
    rate = int(audio.params["sample_rate"])
    branch = ModalityBranch(cfg, 10)
    branch.load_state_dict(torch.load(args.branch, weights_only=True))  # run_loso.py's own file; executes nothing
    branch.eval()
    spoken, heard = (int(v) for v in args.confused.split(":"))
    recs = sorted(args.fsdd.glob("*.wav"))
    if not recs:
        raise SystemExit(f"no FSDD recordings (*.wav) in {args.fsdd}; pass --fsdd DIR")
    others = [p for p in recs if p.name.split("_")[1] != args.speaker and not 5 <= int(p.stem.split("_")[2]) < 45]
    mine = [p for p in recs if p.name.split("_")[1] == args.speaker]
    if not mine:
        raise SystemExit(f"no recordings of speaker {args.speaker!r} in {args.fsdd}")

    def measure(files: list[Path], change, label: str) -> None:
        truth = torch.tensor([int(p.name[0]) for p in files])
        with torch.inference_mode():
            pred = branch(torch.stack([audio.to_tensor(change(audio.load(p))) for p in files])).argmax(-1)
        said = truth == spoken
        share = float(((pred == heard) & said).sum()) / max(1, int(said.sum()))
        print(f"{label:<46} accuracy {float((pred == truth).float().mean()):6.1%}   "
              f"{spoken} heard as {heard}: {share:6.1%}", flush=True)

    measure(others, lambda x: x, f"other speakers, held back ({len(others)})")
    for fc in (float(v) for v in args.cutoffs.split(",") if v):
        measure(others, lambda x, fc=fc: muffle(x, fc, rate), f"  muffled, first-order low-pass at {fc:g} Hz")
    measure(mine, lambda x: x, f"{args.speaker} ({len(mine)})")
    for c in (float(v) for v in args.pre_emphasis.split(",") if v):
        measure(mine, lambda x, c=c: spectral_tilt(x, c), f"  brightened, pre-emphasis {c:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
