"""`qmf batch`: the headless twin of the app's Review view.

Same session file, same runner: ``qmf batch --folder DIR --session S.qmfreview`` twice resumes; the
app opens S.qmfreview and shows the same rows. Progress goes to stderr (tqdm), the summary to stdout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_batch_parser", "cmd_batch"]

_SHOW = 20


def add_batch_parser(sub: Any) -> argparse.ArgumentParser:
    b = sub.add_parser(
        "batch", help="run the model over a folder or manifest of pairs into a review session (resumable)",
        description="Predict every pair of a folder or manifest into a review session file (*.qmfreview). "
                    "Running the same command again resumes: only pairs without a result are processed.")
    b.add_argument("--model", help="model file (.safetensors); default: the session's model, else the bundled one")
    src = b.add_mutually_exclusive_group()
    src.add_argument("--manifest", help="CSV of pairs (id, one column per input, optional label)")
    src.add_argument("--folder", help="folder of pairs (matched by file name, or in sub-folders named after the inputs)")
    b.add_argument("--session", required=True, help="the review session file to create or resume (*.qmfreview)")
    b.add_argument("--csv", help="also export the table (with verdicts and notes) to this CSV")
    b.add_argument("--json", dest="json_out", help="also export the session to this JSON file")
    b.add_argument("--workers", type=int, default=None, help="decoding threads (default: CPU count, at most 8)")
    b.add_argument("--batch-size", type=int, default=64, help="pairs per model batch (default 64)")
    b.add_argument("--rerun", action="store_true",
                   help="replace every result with this model's (verdicts and notes are kept)")
    b.add_argument("--retry-errors", action="store_true",
                   help="on resume, try the pairs that ended in an error again (e.g. after replacing a broken file)")
    b.add_argument("--low-share", type=float, help="flag a modality whose share is below this (default 0.25)")
    b.add_argument("--low-confidence", type=float, help="flag a fused probability below this (default 0.6)")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(handler=cmd_batch)
    return b


def _model_path(args: argparse.Namespace) -> Path:
    from app.review.models import session_model_path

    return session_model_path(args.model, args.session)


def cmd_batch(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from app.qmf.predictor import Predictor
    from app.review.flags import FlagThresholds
    from app.review.runner import BatchRunner
    from app.review.workflow import prepare_session

    if args.workers is not None and args.workers < 1:
        raise ValueError("--workers must be at least 1")
    if args.batch_size < 1:
        raise ValueError("--batch-size must be at least 1")
    model_path = _model_path(args)
    predictor = Predictor.load(model_path)
    thresholds = None
    if args.low_share is not None or args.low_confidence is not None:
        base = FlagThresholds()
        if Path(args.session).exists():
            from app.review.session import ReviewSession

            with ReviewSession.open(args.session) as s:
                base = s.thresholds
        if args.low_share is not None:
            base.low_share = args.low_share
        if args.low_confidence is not None:
            base.low_confidence = args.low_confidence
        thresholds = base
    prepared = prepare_session(args.session, predictor, source_path=args.manifest or args.folder,
                               model_path=model_path,
                               rerun=args.rerun, thresholds=thresholds, retry_errors=args.retry_errors)
    session = prepared.session
    try:
        for w in prepared.warnings:
            print(f"warning: {w}", file=sys.stderr)
        if not prepared.created:
            print(f"resuming {session.path}: {session.result_count()} of {session.pair_count()} pairs done"
                  + (f", {prepared.new_pairs} new" if prepared.new_pairs else ""), file=sys.stderr)
        bar = tqdm(total=session.pair_count(), initial=session.result_count(), desc="reviewing", unit="pair",
                   disable=args.quiet, file=sys.stderr, smoothing=0.1)

        def progress(done: int, total: int, rate: float, left: float | None) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        runner = BatchRunner(predictor, session, batch_size=args.batch_size, workers=args.workers, progress=progress)
        try:
            stats = runner.run()
        finally:
            bar.close()
        _print_summary(session, prepared, stats)
        if args.csv:
            from app.review.export import export_csv

            print(f"wrote {export_csv(session, args.csv)}")
        if args.json_out:
            from app.review.export import export_json

            print(f"wrote {export_json(session, args.json_out)}")
    finally:
        session.close()
    return 0


def _print_summary(session: Any, prepared: Any, stats: Any) -> None:
    from app.review.session import RowFilter

    s = session.summary()
    print(f"session  {session.path}")
    print(f"model    {session.model_name}  sha256 {session.model_sha256[:12]}")
    print(f"pairs    {s['pairs']} ({s['done']} done, {s['pending']} pending, {s['errors']} errors); "
          f"this run {stats.processed} in {stats.seconds:.1f} s ({stats.rate:.1f} pairs/s)")
    if s["accuracy"] is not None:
        print(f"accuracy {s['accuracy']:.4f} on {s['labelled']} labelled pairs")
    if s["flags"]:
        print("flags    " + ", ".join(f"{k}: {v}" for k, v in sorted(s["flags"].items())))
    source = prepared.source
    if source is not None:
        if source.unmatched:
            print(f"unmatched files: {len(source.unmatched)}")
            for f, reason in source.unmatched[:_SHOW]:
                print(f"  {f}: {reason}")
            if len(source.unmatched) > _SHOW:
                print(f"  ... and {len(source.unmatched) - _SHOW} more")
        if source.problems:
            print(f"manifest rows left out: {len(source.problems)}")
            for p in source.problems[:_SHOW]:
                print(f"  {p}")
            if len(source.problems) > _SHOW:
                print(f"  ... and {len(source.problems) - _SHOW} more")
    if s["errors"]:
        print(f"error rows: {s['errors']}")
        for row in session.rows(RowFilter(status="error"), limit=_SHOW):
            print(f"  {row.id}: {row.error}")
        if s["errors"] > _SHOW:
            print(f"  ... and {s['errors'] - _SHOW} more")
    if stats.cancelled:
        print("cancelled; run the same command again to resume")
