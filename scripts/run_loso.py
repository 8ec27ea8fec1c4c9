"""Leave-one-speaker-out for the audio branch: each FSDD speaker held out of training in turn.

    .venv/bin/python scripts/run_loso.py [--steps 2625] [--speakers jackson,theo] [--objective recipe]

A cheap proxy for retraining the whole QMF model five times (the machine has 2 shared CPU cores):
for speaker S, the bundle recipe's AUDIO BRANCH alone (same architecture, preprocessing, speaker
augmentation and audio corruption augmentation; with cross-entropy alone, or with the recipe's own terms
for the audio branch: OBJECTIVES below) is trained from scratch on the FSDD training recordings
(index 5-44) of the other speakers plus the synthetic training voices, then measured on ALL 500 of
S's recordings (each once). The default schedule, 2,625 steps of 128 recordings, is as many as the
bundle's audio branch has been trained for in all: the 10-epoch base and the six 3-epoch fine-tuning
passes of its lineage, 28 epochs x 12,000 pairs (recipes/avmnist-qmf.toml says which). Shorter runs
under-train the branch and so understate how it does on an unheard voice (docs/report/README.md,
"Leave-one-speaker-out on the bundle's schedule"). "Fused, speaker unseen" combines that audio branch
with the bundle's image branch by QMF's energy weights on test images paired with S's recordings: an
approximation (the image branch was trained next to a different audio branch), labelled as such in the
report. "quality_auroc" gives, per corruption kind and level, the chance that one of S's clean
recordings, drawn at random, gets a higher quality score than a corrupted one drawn at random (does the
score still tell the truth for an unheard voice?); "right_vs_wrong_quality_auroc" the same for S's clean
recordings the branch reads right against those it reads wrong.
Results: work/loso/results.json (and each speaker's branch weights), merged into work/report_extra.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.data.manifest import read_manifest  # noqa: E402
from app.modalities import get_modality  # noqa: E402
from app.modalities.augment import AudioAugment, augment_raw  # noqa: E402
from app.modalities.outliers import POOLED  # noqa: E402
from app.modalities.zoo import degrade  # noqa: E402
from app.qmf.calibration import build_calibration, modality_table, read_calibration  # noqa: E402
from app.qmf.evaluate import auroc  # noqa: E402
from app.qmf.fusion import confidence, energy  # noqa: E402
from app.qmf.losses import normalise_batch, ranking_loss  # noqa: E402
from app.qmf.model import ModalityBranch  # noqa: E402
from app.qmf.outlier_exposure import load_pools, outlier_loss, pick_foreign  # noqa: E402
from app.qmf.predictor import Predictor  # noqa: E402
from app.qmf.train import Recipe  # noqa: E402

# What the branch is trained with:
# * "ce": cross-entropy on the augmented and degraded recordings, nothing else;
# * "recipe": the terms of the recipe's objective that belong to the audio branch alone: its cross-entropy
#   (not on foreign recordings, which have no label), QMF's ranking term on its quality score (ranking target
#   and margin form as the recipe says; a foreign recording ranks worst), and the outlier-aware terms (the
#   energy bound on clean, heavily degraded and foreign recordings, the graded floor, the uniform-target term),
#   with foreign recordings of the recipe's audio families (`[training.outliers]`: pools, weights) replacing a
#   recording as often as the recipe replaces the audio of a pair. Only the fused cross-entropy is missing,
#   as there is no image branch to fuse with. This is the objective whose confidence the fused figure weighs.
# * "ranking": "recipe" without outlier exposure (no foreign recordings, no energy-bound or uniform-target
#   terms): cross-entropy and QMF's ranking term, to tell which part of the recipe a difference comes from.
OBJECTIVES = ("ce", "recipe", "ranking")

# 10 base epochs + 6 fine-tuning passes x 3 epochs, 12,000 pairs each, batches of 128: the bundle's lineage
BUNDLE_STEPS = (10 + 6 * 3) * 12000 // 128
# the same lineage in its stages (`--lineage`), each with a fresh optimiser and one-cycle schedule as
# app/qmf/train.py starts one: the base (no outlier exposure) and the fine-tuning passes' steps
EPOCH_STEPS = math.ceil(12000 / 128)
LINEAGE = (10 * EPOCH_STEPS, (3 * EPOCH_STEPS,) * 6)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=str(ROOT / "recipes" / "avmnist-qmf.toml"))
    ap.add_argument("--bundle", default=str(ROOT / "resources" / "models" / "avmnist-qmf.safetensors"))
    ap.add_argument("--fsdd", type=Path, default=ROOT.parent / "shared" / "data" / "fsdd" / "recordings")
    ap.add_argument("--tts", type=Path, nargs="+", default=[ROOT / "work" / "tts" / "train"],
                    help="folders of synthesised training recordings ({digit}_*.wav) added to every speaker's training set")
    ap.add_argument("--test", type=Path, default=ROOT / "work" / "avmnist" / "test.csv")
    ap.add_argument("--out", type=Path, default=ROOT / "work" / "loso")
    ap.add_argument("--steps", type=int, default=BUNDLE_STEPS,
                    help="training steps per speaker (default: as many as the bundle's lineage, see above)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--speakers")
    ap.add_argument("--seed", type=int, default=0, help="initial weights and the order of the training batches")
    ap.add_argument("--test-pairs", type=int, default=1000)
    ap.add_argument("--extra-key", default="leave_one_speaker_out", help="key in work/report_extra.json")
    ap.add_argument("--quality-kinds", default="white_noise,dropout,clipping,bandlimit,babble",
                    help="audio corruptions for the quality AUROC on the held-out speaker ('' = none)")
    ap.add_argument("--quality-levels", default="5,10")
    ap.add_argument("--objective", choices=OBJECTIVES, default="ce",
                    help="'ce': cross-entropy alone; 'recipe': the audio branch's own terms of the recipe's objective; "
                         "'ranking': those without outlier exposure (see OBJECTIVES)")
    ap.add_argument("--lineage", action="store_true",
                    help="train in the bundle's stages instead of one --steps schedule: a 10-epoch base with the "
                         "'ranking' objective (the base had no outlier exposure), then six 3-epoch passes with "
                         "--objective, each with a fresh optimiser and one-cycle schedule; the base's accuracy on the "
                         "held-out speaker is recorded too ('base_audio_branch_accuracy')")
    ap.add_argument("--reuse", action="store_true",
                    help="measure the branch weights already saved in --out (SPEAKER-audio-branch.pt) again instead "
                         "of training; how they were trained stays as results.json recorded it")
    ap.add_argument("--ema", type=float, default=0.0,
                    help="also keep an exponential moving average of the weights with this decay (e.g. 0.998) and "
                         "measure it on the same held-out speaker: 'ema_audio_branch_accuracy' (0 = off)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    recipe = Recipe.from_file(args.config)
    audio_cfg = next(m for m in recipe.modalities if m.kind == "audio")
    audio = get_modality("audio", audio_cfg.preprocessing)
    # no table: augment_audio's defaults, as before the settings were typed
    extra = recipe.training.modality_augment.get(audio_cfg.name) or AudioAugment()
    specs = [s for s in recipe.training.augment if s.modality == audio_cfg.name]
    # the recipe replaces one input of a pair, the audio in the share of its draws that fall on the audio
    outliers = recipe.training.outliers
    with_families = [m.name for m in recipe.modalities if outliers.families.get(m.name)]
    audio_share = 1 / len(with_families) if audio_cfg.name in with_families else 0.0
    audio_outliers = dataclasses.replace(outliers, probability=outliers.probability * audio_share,
                                         families={audio_cfg.name: outliers.families.get(audio_cfg.name, [])},
                                         weights={k: v for k, v in outliers.weights.items() if k == audio_cfg.name},
                                         pools={k: v for k, v in outliers.pools.items() if k == audio_cfg.name})
    pools = load_pools(audio_outliers, {audio_cfg.name: audio}) if args.objective == "recipe" else {}
    stages = ([(LINEAGE[0], "ranking")] + [(n, args.objective) for n in LINEAGE[1]] if args.lineage
              else [(args.steps, args.objective)])
    recs = sorted(args.fsdd.glob("*.wav"))
    if not recs:
        raise SystemExit(f"no FSDD recordings (*.wav) in {args.fsdd}; pass --fsdd DIR")
    speakers = args.speakers.split(",") if args.speakers else sorted({p.name.split("_")[1] for p in recs})
    tts = sorted(p for folder in args.tts for p in folder.glob("*.wav"))
    bundle = Predictor.load(args.bundle, backend="torch")  # uses the torch branches directly
    test_rows = read_manifest(args.test, modalities=["image", "audio"]).rows
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for s in speakers:
        saved = args.out / f"{s}-audio-branch.pt"
        reuse = args.reuse and saved.exists()
        if s in results and not reuse:
            continue
        previous = results.get(s, {})
        t0 = time.time()
        train_files = [p for p in recs if p.name.split("_")[1] != s and 5 <= int(p.stem.split("_")[2]) < 45] + tts
        raws = [audio.load(p) for p in train_files]
        ys = np.array([int(p.name[0]) for p in train_files])
        mine = [p for p in recs if p.name.split("_")[1] == s]
        clean_raws = [audio.load(p) for p in mine]
        clean = torch.stack([audio.to_tensor(x) for x in clean_raws])
        truth = torch.tensor([int(p.name[0]) for p in mine])
        torch.manual_seed(args.seed)
        branch = ModalityBranch(audio_cfg, 10)
        rng = np.random.default_rng(args.seed)
        ema = (torch.optim.swa_utils.AveragedModel(branch, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(args.ema),
                                                   use_buffers=True) if args.ema > 0 else None)
        source_for = functools.partial(_source, raws=raws, pools=pools)
        base_acc = None
        if reuse:
            branch.load_state_dict(torch.load(saved, weights_only=True))  # our own file; executes nothing
        for stage, (steps, objective) in enumerate(stages if not reuse else []):
            # each stage as app/qmf/train.py starts a run: a fresh optimiser and one-cycle schedule
            opt = torch.optim.AdamW(branch.parameters(), lr=recipe.training.learning_rate, weight_decay=recipe.training.weight_decay)
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.training.learning_rate, total_steps=steps)
            branch.train()
            for _step in range(steps):
                idx = rng.integers(len(raws), size=args.batch)
                xs, levels, foreign = [], [], []
                for i in idx:
                    replaced = (pick_foreign(audio_outliers, {audio_cfg.name: audio}, rng, source_for)
                                if objective == "recipe" else None)
                    level = 0.0
                    if replaced is not None:
                        x = replaced[1]
                    else:
                        x = augment_raw(audio, raws[i], rng, extra)
                        for spec in specs:
                            if rng.random() < spec.probability:
                                kind = spec.kinds[int(rng.integers(len(spec.kinds)))]
                                level = float(rng.uniform(*spec.levels))
                                x = degrade(audio, x, kind, level, rng)  # zoo kinds too
                    xs.append(audio.to_tensor(x))
                    levels.append(level)
                    foreign.append(replaced is not None)
                z = branch(torch.stack(xs))
                y = torch.from_numpy(ys[idx])
                if objective == "ce":
                    loss = F.cross_entropy(z, y)
                else:
                    loss = _recipe_loss(z, y, torch.tensor(levels), torch.tensor(foreign), recipe, audio_cfg.name,
                                        outlier_terms=objective == "recipe")
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                if ema is not None:
                    ema.update_parameters(branch)
            if args.lineage and stage == 0:
                branch.eval()
                with torch.inference_mode():
                    base_acc = float((branch(clean).argmax(-1) == truth).float().mean())
                print(f"{s}: base ({steps} steps, {objective}) {base_acc:.3f}", flush=True)
        branch.eval()
        scale = bundle.model.config.confidence_scale
        with torch.inference_mode():
            logits = branch(clean)
        acc = float((logits.argmax(-1) == truth).float().mean())
        ema_acc = None
        if ema is not None:
            ema.eval()
            with torch.inference_mode():
                ema_logits = ema.module(clean)
            ema_acc = float((ema_logits.argmax(-1) == truth).float().mean())
        # fused, speaker unseen (approximation, see the docstring)
        by_digit = {d: [p for p in mine if p.name[0] == str(d)] for d in range(10)}
        pick = np.random.default_rng(1).choice(len(test_rows), size=min(args.test_pairs, len(test_rows)), replace=False)
        img_m = bundle.modalities["image"]
        hits = audio_won = 0
        with torch.inference_mode():
            for start in range(0, len(pick), 250):
                chunk = [test_rows[i] for i in pick[start:start + 250]]
                imgs = torch.stack([img_m.to_tensor(img_m.load(r.files["image"])) for r in chunk])
                auds = torch.stack([audio.to_tensor(audio.load(by_digit[int(r.label)][k % 50])) for k, r in enumerate(chunk, start)])
                z = {"image": bundle.model.branches["image"](imgs), "audio": branch(auds)}
                out = bundle.model.fuse(z)
                want = torch.tensor([int(r.label) for r in chunk])
                hits += int((out.fused.argmax(-1) == want).sum())
                # the fused errors where the audio branch was wrong and held the larger share of the weight
                audio_won += int(((out.fused.argmax(-1) != want) & (z["audio"].argmax(-1) != want)
                                  & (out.share["audio"] > out.share["image"])).sum())
        # quality score of the branch on the held-out speaker: clean vs each corruption (AUROC: the chance
        # that a clean recording scores above a corrupted one)
        quality: dict[str, float | None] = {}
        kinds = [k for k in args.quality_kinds.split(",") if k]
        clean_q = confidence(logits, scale)
        if kinds:
            with torch.inference_mode():
                for kind in kinds:
                    for level in (float(v) for v in args.quality_levels.split(",")):
                        qrng = np.random.default_rng(2)
                        bad = torch.stack([audio.to_tensor(audio.corrupt(x, kind, level, qrng)) for x in clean_raws])
                        quality[f"{kind}@{level:g}"] = auroc(clean_q.numpy(), confidence(branch(bad), scale).numpy())
        # the scale of the two audio branches' quality on S's clean recordings: the fused figure weighs this
        # branch against the bundle's image branch, which was trained next to the bundle's audio branch
        with torch.inference_mode():
            bundle_q = confidence(bundle.model.branches["audio"](clean), scale)
        median_quality = {"this_branch": float(clean_q.median()),
                          "bundle_audio_branch": float(bundle_q.median())}
        # does the branch's quality tell its right answers from its wrong ones on S's clean recordings?
        right = (logits.argmax(-1) == truth).numpy()
        error_auroc = auroc(clean_q.numpy()[right], clean_q.numpy()[~right]) if 0 < right.sum() < len(right) else None
        confusion = np.zeros((10, 10), dtype=int)  # [spoken digit, heard as]
        np.add.at(confusion, (truth.numpy(), logits.argmax(-1).numpy()), 1)
        # how often S's clean recordings would get the unfamiliar mark: the branch calibrated as a bundle is
        # (build_calibration's threshold) on the training speakers' recordings it did not train on (FSDD index
        # 0-4 and 45-49); beside it the bundle's own mark, from its stored calibration (the bundle heard S)
        held_back = [p for p in recs if p.name.split("_")[1] != s and not 5 <= int(p.stem.split("_")[2]) < 45]
        with torch.inference_mode():
            held_back_q = confidence(branch(torch.stack([audio.to_tensor(audio.load(p)) for p in held_back])), scale)
        below = build_calibration({"audio": held_back_q.numpy()}, "held-back recordings")["modalities"]["audio"]["unfamiliar_below"]
        marked = (clean_q < below).numpy()
        bundle_table = modality_table(read_calibration(bundle.manifest), "audio")
        unfamiliar = {"this_branch": float(marked.mean()),
                      "this_branch_when_right": float(marked[right].mean()) if right.any() else None,
                      "this_branch_when_wrong": float(marked[~right].mean()) if (~right).any() else None,
                      "calibration_recordings": len(held_back),
                      "bundle_audio_branch": (float((bundle_q < bundle_table["unfamiliar_below"]).float().mean())
                                              if bundle_table else None)}
        measured = {"audio_branch_accuracy": acc, "recordings": len(mine), "quality_auroc": quality,
                    "clean_quality_median": median_quality, "right_vs_wrong_quality_auroc": error_auroc,
                    "unfamiliar_marked_clean": unfamiliar,
                    "fused_errors_audio_wrong_and_larger_share": audio_won, "confusion": confusion.tolist(),
                    "fused_accuracy_unseen_speaker_approx": hits / len(pick), "test_pairs": len(pick)}
        if reuse:  # measured again; how it was trained stays as recorded
            results[s] = {**previous, **measured}
        else:
            results[s] = {**measured, "steps": sum(n for n, _ in stages), "stages": [list(st) for st in stages],
                          "batch": args.batch, "seed": args.seed, "objective": args.objective,
                          "seconds": round(time.time() - t0, 1), "train_recordings": len(train_files),
                          "tts_folders": [os.path.relpath(folder, ROOT) for folder in args.tts]}
        if base_acc is not None:
            results[s]["base_audio_branch_accuracy"] = base_acc
        if ema is not None:
            results[s].update(ema_decay=args.ema, ema_audio_branch_accuracy=ema_acc)
        print(s, results[s], flush=True)
        results_path.write_text(json.dumps(results, indent=1))
        if not reuse:
            torch.save(branch.state_dict(), saved)  # for looking at its errors later, and --reuse
    method = ("audio branch of the bundle recipe trained alone per held-out speaker "
              f"(scripts/run_loso.py --objective {args.objective}{' --lineage' if args.lineage else ''})")
    config = str(Path(args.config).name)
    extra_path = ROOT / "work" / "report_extra.json"
    extra_all = json.loads(extra_path.read_text()) if extra_path.exists() else {}
    earlier = extra_all.get(args.extra_key, {})
    if earlier.get("method") == method and earlier.get("config") == config:
        # the same measurement for other speakers (one run per speaker, e.g. two runs on two cores): kept
        results = {**earlier.get("per_speaker", {}), **results}
    accs = [r["audio_branch_accuracy"] for r in results.values()]
    extra_all[args.extra_key] = {"per_speaker": results,
                                 "mean_audio_branch_accuracy": float(np.mean(accs)) if accs else math.nan,
                                 "method": method, "config": config}
    extra_path.write_text(json.dumps(extra_all, indent=1))
    return 0


def _source(name: str, family: str, rng: np.random.Generator, *, raws: list[np.ndarray],
            pools: dict[tuple[str, str], list[np.ndarray]]) -> np.ndarray:
    """A source-based foreign family's recording: one of its pool (pooled families), else a training recording."""
    items = pools.get((name, family)) if family in POOLED else raws
    if not items:
        raise SystemExit(f"no recordings for the pooled foreign family {family}: see recipes/avmnist-qmf.toml")
    return items[int(rng.integers(len(items)))]


def _recipe_loss(z: torch.Tensor, y: torch.Tensor, levels: torch.Tensor, foreign: torch.Tensor, recipe: Recipe,
                 name: str, outlier_terms: bool) -> torch.Tensor:
    """The audio branch's terms of the recipe's objective (OBJECTIVES, "recipe"; without `outlier_terms`,
    "ranking"), as app/qmf/train.py adds them."""
    settings = recipe.training
    ce = F.cross_entropy(z, y, reduction="none")
    loss = (ce * (~foreign).to(ce.dtype)).sum() / ce.numel()
    if settings.rank_weight > 0:
        if settings.ranking_target != "current":
            raise SystemExit("run_loso.py --objective recipe/ranking knows the 'current' ranking target only")
        record = torch.where(foreign, torch.ones_like(ce), normalise_batch(ce))
        loss = loss + settings.rank_weight * ranking_loss(confidence(z, recipe.confidence_scale), record, settings.ranking_margin)
    if outlier_terms and (settings.energy_bound.weight > 0 or settings.energy_bound.flat_weight > 0):
        loss = loss + outlier_loss({name: energy(z)}, {name: foreign}, {name: levels}, settings.energy_bound, {name: z})
    return loss


if __name__ == "__main__":
    sys.exit(main())
