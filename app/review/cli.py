"""`qmf batch`: the headless twin of the app's Review view; `qmf review import`: a cluster's results into it.

Same session file, same runner: ``qmf batch --folder DIR --session S.qmfreview`` twice resumes; the
app opens S.qmfreview and shows the same rows. ``qmf batch --engine ray ... --out DIR`` scores the same
pairs on a Ray cluster into Parquet shards (app.review.distributed), and ``qmf review import DIR
--session S.qmfreview`` turns them into a session the app opens. Progress goes to stderr (a bar on a
terminal, plain lines in a log), the summary to stdout.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.util.errors import UsageError, UserError

if TYPE_CHECKING:
    import sqlite3

__all__ = ["add_batch_parser", "add_review_parser", "cmd_batch", "cmd_review_import"]

_SHOW = 20
# A command-line run with at least this many pending pairs, and no fewer than the results already
# stored, writes with the table's sort indexes dropped and builds them once at the end
# (ReviewSession.bulk_writes): with them kept up to date row by row, SQLite spent about 0.5 ms a pair
# on the writes, against 0.2 ms (cProfile of 4,000 pairs, issue 13). The app reads such a session
# unindexed meanwhile; a resumed run over a large session keeps its indexes (rebuilding costs more).
# A new session's pairs are stored without them (prepare_session(defer_indexes=True)) and its run is
# always a bulk one: they are built once, at the end, not also after the pairs are stored.
BULK_PAIRS = 2000


def add_batch_parser(sub: Any) -> argparse.ArgumentParser:
    b = sub.add_parser(
        "batch", help="run the model over a folder or manifest of pairs into a review session (resumable)",
        description="Predict every pair of a folder or manifest into a review session file (*.qmfreview). "
                    "Running the same command again resumes: only pairs without a result are processed.")
    b.add_argument("--model", help="model file (.safetensors); default: the session's model, else the bundled one")
    src = b.add_mutually_exclusive_group()
    src.add_argument("--manifest", help="CSV of pairs (id, one column per input, optional label)")
    src.add_argument("--folder", help="folder of pairs (matched by file name, or in sub-folders named after the inputs)")
    b.add_argument("--session", help="the review session file to create or resume (*.qmfreview; local engine)")
    b.add_argument("--csv", help="also export the table (with verdicts and notes) to this CSV")
    b.add_argument("--json", dest="json_out", help="also export the session to this JSON file")
    b.add_argument("--parquet", help="also export the table (with verdicts and notes) to this Parquet file")
    b.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this machine, into --session; ray: a Ray cluster, into Parquet shards in --out "
                        "(pip install qmf-studio[distributed])")
    b.add_argument("--address", help="--engine ray: the cluster (auto, or ray://HOST:PORT); default: start Ray here")
    b.add_argument("--out", help="--engine ray: the results folder (created, or resumed: written shards are skipped)")
    b.add_argument("--concurrency", type=int, help="--engine ray: scoring actors (default: the cluster's CPUs)")
    b.add_argument("--shard-size", type=int,
                   help="--engine ray: pairs per result shard (default 1000; a resumed run keeps the first run's)")
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


def _thresholds(args: argparse.Namespace, base: Any) -> Any:
    """--low-share/--low-confidence applied to ``base`` (FlagThresholds), or None when neither is given."""
    if args.low_share is None and args.low_confidence is None:
        return None
    if args.low_share is not None:
        base.low_share = args.low_share
    if args.low_confidence is not None:
        base.low_confidence = args.low_confidence
    return base


def sqlite_error_text(path: str | Path, exc: sqlite3.Error) -> str:
    """One line for what SQLite said about a session file, in the words of what the user can do."""
    text = str(exc)
    lower = text.lower()
    if "full" in lower:
        return (f"{path}: the disk is full ({text}); every result written so far is kept: free some space and "
                "run the same command again to resume")
    if "locked" in lower or "busy" in lower:
        return f"{path}: the session is in use by another program ({text}); try again when it has finished"
    if "readonly" in lower or "read-only" in lower:
        return f"{path}: the session file is read-only ({text}); copy it somewhere writable to continue it"
    if "unable to open" in lower:
        return f"{path}: cannot open the session file ({text}); check that its folder exists and is writable"
    return (f"{path}: the session file is damaged ({text}); start a new session, or restore the file from a "
            "backup")


def cmd_batch(args: argparse.Namespace) -> int:
    """`qmf batch`; SQLite errors about the session file become one-line UserErrors here, at the boundary."""
    import sqlite3  # here, not at the top: `qmf predict` builds this parser and never needs SQLite

    if args.engine == "ray":
        return _cmd_batch_ray(args)
    try:
        return _cmd_batch(args)
    except sqlite3.Error as exc:
        raise UserError(sqlite_error_text(args.session, exc)) from None


def _cmd_batch(args: argparse.Namespace) -> int:
    import contextlib

    with contextlib.ExitStack() as collector:  # the cycle collector as it was, once the command ends
        return _batch_run(args, collector)


def _batch_run(args: argparse.Namespace, collector: Any) -> int:
    from app.review import runner as runner_mod
    from app.review.collector import quiet_collector
    from app.review.flags import FlagThresholds
    from app.review.runner import BatchRunner, decoding_processes
    from app.review.workflow import prepare_session
    from app.util.progress import ProgressReporter

    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if not args.session:
        raise UsageError("--session is required (or --engine ray --out DIR)")
    ray_only = [o for o, v in (("--out", args.out), ("--address", args.address), ("--concurrency", args.concurrency),
                               ("--shard-size", args.shard_size)) if v is not None]
    if ray_only:
        raise UsageError(f"{ray_only[0]} is an option of --engine ray")
    model_path = _model_path(args)
    timing = _Timing()
    started: list[Any] = []  # the decoding processes, when started before the run (it reuses them)
    ahead: list[Any] = []  # batches handed to them before the run (`runner.submit_ahead`)
    try:
        predictor = _load_model(args, model_path, started, runner_mod)
        timing.mark("model-loaded")
        settled = collector.enter_context(quiet_collector())  # after the fork: the workers collect as usual
        if args.parquet:
            from app.review.parquet import require_pyarrow

            require_pyarrow("--parquet")  # before the run, not after it
        base = FlagThresholds()
        if args.low_share is not None or args.low_confidence is not None:
            if Path(args.session).exists():
                from app.review.session import ReviewSession

                with ReviewSession.open(args.session) as s:
                    base = s.thresholds
        thresholds = _thresholds(args, base)

        def on_source(pairs: Sequence[Any]) -> None:
            timing.mark("source-read")
            if started and len(pairs) < runner_mod.MIN_PAIRS_FOR_PROCESSES:
                _shut_down(started)  # fewer pairs than the folder's files promised: threads are cheaper
                started.clear()
            elif not started and (pool := decoding_processes(predictor, len(pairs))) is not None:
                started.append(pool)
            if started:  # the first batches are scored while the pairs are stored
                ahead.extend(runner_mod.submit_ahead(started[0], predictor, pairs, args.batch_size))

        prepared = prepare_session(args.session, predictor, source_path=args.manifest or args.folder,
                                   model_path=model_path, rerun=args.rerun, thresholds=thresholds,
                                   retry_errors=args.retry_errors, on_source=on_source, defer_indexes=True)
    except BaseException:
        _shut_down(started)
        raise
    timing.mark("session-filled")
    settled()  # the pairs are stored: what lives now lives to the end
    session = prepared.session
    try:
        for w in prepared.warnings:
            print(f"warning: {w}", file=sys.stderr)
        if not prepared.created:
            print(f"resuming {session.path}: {session.result_count()} of {session.pair_count()} pairs done"
                  + (f", {prepared.new_pairs} new" if prepared.new_pairs else ""), file=sys.stderr)
        bar = ProgressReporter("reviewing", total=session.pair_count(), initial=session.result_count(), unit="pair",
                               quiet=args.quiet)

        def progress(done: int, total: int, rate: float, left: float | None) -> None:
            bar.update(done, total)

        pending = session.pending_count()
        pool = started[0] if started else None
        if pool is not None and pending < runner_mod.MIN_PAIRS_FOR_PROCESSES:  # a resume with little left
            _shut_down(started)
            started.clear()
            pool = None
        runner = BatchRunner(predictor, session, batch_size=args.batch_size, workers=args.workers, progress=progress,
                             pool=pool, ahead=ahead)
        bulk = prepared.created or (pending >= BULK_PAIRS and pending >= session.result_count())
        try:
            if bulk:
                with session.bulk_writes():
                    stats = runner.run()
                    timing.mark("run-done")
            else:
                stats = runner.run()
                timing.mark("run-done")
        finally:
            bar.close()
        timing.mark("indexes-built")
        _print_summary(session, prepared, stats)
        timing.mark("summary-printed")
        if args.csv:
            from app.review.export import export_csv

            print(f"wrote {export_csv(session, args.csv)}")
        if args.json_out:
            from app.review.export import export_json

            print(f"wrote {export_json(session, args.json_out)}")
        if args.parquet:
            from app.review.export import export_parquet

            print(f"wrote {export_parquet(session, args.parquet)}")
    finally:
        _shut_down(started)  # a run shuts its pool down itself; this is for one that never ran
        session.close()
        timing.mark("closed")
    return 0


class _Timing:
    """``QMF_BATCH_TIMING=1``: "qmf-batch-timing <phase> <unix time> <CPU seconds of this process>" lines on
    stderr as the command passes each phase (benchmarks/batch_bench.py --why reads them); else nothing."""

    def __init__(self) -> None:
        import os

        self.on = os.environ.get("QMF_BATCH_TIMING") == "1"
        self.mark("handler")

    def mark(self, phase: str) -> None:
        if self.on:
            import time

            print(f"qmf-batch-timing {phase} {time.time():.6f} {time.process_time():.3f}", file=sys.stderr, flush=True)


def _load_model(args: argparse.Namespace, model_path: Path, started: list[Any], runner_mod: Any) -> Any:
    """The model, with the run's decoding processes started first when a new session's source may hold
    enough pairs for them (appended to ``started``).

    Started here, before the model's inference session is built, the scan of the folder and the storing
    of the pairs, they import and build their own sessions meanwhile, on the core this process leaves
    idle; and while this process has no other thread and has not loaded onnxruntime they are forked
    (`runner.fork_is_safe`): no interpreter start, no second import of numpy and the readers. Otherwise
    `on_source` spawns them once the folder is read, as the runner would at its start."""
    from app.qmf.bundle import read_bundle
    from app.qmf.config import ModelConfig
    from app.qmf.predictor import Predictor
    from app.review.sources import may_hold

    bundle = read_bundle(model_path)
    source = args.manifest or args.folder
    if source is not None and not Path(args.session).expanduser().exists() and runner_mod.fork_is_safe():
        try:
            specs = [(m.name, m.kind, m.preprocessing) for m in ModelConfig.from_dict(bundle.manifest["model"]).modalities]
        except (KeyError, TypeError, ValueError):
            specs = []  # Predictor says what is wrong with the manifest
        if specs and may_hold(source, len(specs), runner_mod.MIN_PAIRS_FOR_PROCESSES):
            pool = runner_mod.start_decoding_processes(specs, bundle.graph, str(bundle.path or "<model>"),
                                                       method="fork")
            if pool is not None:
                started.append(pool)
    return Predictor(bundle) if bundle.graph is not None else Predictor.load(model_path)


def _shut_down(pools: list[Any]) -> None:
    for pool in pools:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _cmd_batch_ray(args: argparse.Namespace) -> int:
    from app.review.distributed import require_ray, run_on_ray
    from app.review.flags import FlagThresholds
    from app.util.progress import ProgressReporter

    require_ray()
    if not args.out:
        raise UsageError("--engine ray needs --out RESULTS_DIR (Parquet shards; then qmf review import)")
    source = args.manifest or args.folder
    if not source:
        raise UsageError("--engine ray needs --manifest CSV|PARQUET or --folder DIR")
    local_only = [o for o, v in (("--session", args.session), ("--csv", args.csv), ("--json", args.json_out),
                                 ("--parquet", args.parquet), ("--workers", args.workers)) if v is not None]
    local_only += [o for o, v in (("--rerun", args.rerun), ("--retry-errors", args.retry_errors)) if v]
    if local_only:
        raise UsageError(f"{local_only[0]} is an option of the local engine; with --engine ray the results go to "
                         "--out (qmf review import DIR --session S.qmfreview makes a session of them)")
    bar = ProgressReporter("scoring on ray", unit="pair", quiet=args.quiet)

    def progress(done: int, total: int) -> None:
        bar.update(done, total)

    try:
        stats = run_on_ray(source, args.out, args.model, address=args.address, batch_size=args.batch_size,
                           concurrency=args.concurrency, shard_size=args.shard_size,
                           thresholds=_thresholds(args, FlagThresholds()), progress=progress)
    finally:
        bar.close()
    for note in stats.notes:
        print(f"warning: {note}", file=sys.stderr)
    out = Path(args.out).absolute()
    print(f"results  {out}")
    print(f"pairs    {stats.pairs} in {stats.shards} shards ({stats.shards_before} already written, "
          f"{stats.shards_written} written now, {stats.shards - stats.shards_before - stats.shards_written} missing)")
    if stats.shards_written:
        print(f"this run {stats.rows_written} pairs in {stats.seconds:.1f} s ({stats.rate:.1f} pairs/s), "
              f"{stats.errors} error rows; Ray start-up {stats.startup_seconds:.1f} s not included")
    _print_left_out(stats.unmatched, stats.problems)
    print(f"next     qmf review import {out} --session review.qmfreview")
    return 0


def _print_left_out(unmatched: Any, problems: Any) -> None:
    if unmatched:
        print(f"unmatched files: {len(unmatched)}")
        for f, reason in unmatched[:_SHOW]:
            print(f"  {f}: {reason}")
        if len(unmatched) > _SHOW:
            print(f"  ... and {len(unmatched) - _SHOW} more")
    if problems:
        print(f"manifest rows left out: {len(problems)}")
        for p in problems[:_SHOW]:
            print(f"  {p}")
        if len(problems) > _SHOW:
            print(f"  ... and {len(problems) - _SHOW} more")


def add_review_parser(sub: Any) -> argparse.ArgumentParser:
    r = sub.add_parser("review", help="review sessions: import a cluster's results",
                       description="Work with review sessions outside the app.")
    rsub = r.add_subparsers(dest="review_command", required=True, metavar="COMMAND")
    i = rsub.add_parser("import", help="make a review session of the Parquet shards of qmf batch --engine ray",
                        description="Build a review session (*.qmfreview) from a results folder written by "
                                    "qmf batch --engine ray. Importing again into the same session adds the shards "
                                    "written since; results, verdicts and notes already there are kept.")
    i.add_argument("results", help="the results folder (--out of qmf batch --engine ray)")
    i.add_argument("--session", required=True, help="the review session to create or extend (*.qmfreview)")
    i.set_defaults(handler=cmd_review_import)
    return r


def cmd_review_import(args: argparse.Namespace) -> int:
    import sqlite3

    from app.review.results_dir import import_results

    try:
        rep = import_results(args.results, args.session)
    except sqlite3.Error as exc:
        raise UserError(sqlite_error_text(args.session, exc)) from None
    print(f"session  {rep.session} ({'created' if rep.created else 'extended'})")
    print(f"imported {rep.pairs} pairs ({rep.errors} error rows) from {rep.shards - rep.skipped_shards} shards "
          f"in {rep.seconds:.1f} s" + (f"; {rep.skipped_shards} shards were imported before" if rep.skipped_shards else ""))
    if rep.missing_shards:
        print(f"warning: {rep.missing_shards} shards are not written yet (the run is unfinished); "
              "finish it and import again to add them", file=sys.stderr)
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
        _print_left_out(source.unmatched, source.problems)
    if s["errors"]:
        print(f"error rows: {s['errors']}")
        for row in session.rows(RowFilter(status="error"), limit=_SHOW):
            print(f"  {row.id}: {row.error}")
        if s["errors"] > _SHOW:
            print(f"  ... and {s['errors'] - _SHOW} more")
    if stats.cancelled:
        print("cancelled; run the same command again to resume")
