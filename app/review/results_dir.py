"""A results directory of a distributed review (``qmf batch --engine ray --out DIR``) and its import
into a normal review session (``qmf review import DIR --session S.qmfreview``).

Layout::

    DIR/_qmf_run.json          what the run is: model, source, pair count, shard size, pair-list checksum
    DIR/shard-000000.parquet   rows 0 .. S-1 of the pair list, in order (results schema, no verdicts)
    DIR/shard-000001.parquet   rows S .. 2S-1 ...

Shard k always holds the same pairs (contiguous rows of the pair list), and each shard file appears
whole or not at all (written to a hidden temporary name, fsynced, renamed), so a re-run writes only the
shards that are missing: a killed job loses the shards in flight and duplicates nothing. The run file
pins the pair list and the model, so a re-run over a changed manifest or with another model is
refused instead of mixing results. Names starting with "_" or "." are skipped by pyarrow, pandas and
polars dataset readers, so ``pandas.read_parquet(DIR)`` reads exactly the shards.

The import uses the session's public API only (create, add_pairs, write_results), so an imported
session is a session like any other: the Review view opens it, verdicts and notes work, and flags
follow the session's thresholds.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.data.manifest import PairRow
from app.review.flags import FlagThresholds
from app.review.parquet import (
    RESULTS_SCHEMA_VERSION,
    read_results,
    require_pyarrow,
    schema_version_checked,
    write_bytes_atomically,
)
from app.review.session import ResultRecord, ReviewSession
from app.util.errors import UserError

__all__ = [
    "RUN_FILE",
    "ImportPlan",
    "ImportReport",
    "done_shards",
    "import_results",
    "is_results_folder",
    "plan_import",
    "pairs_fingerprint",
    "prepare_results_dir",
    "read_run_info",
    "shard_count",
    "shard_path",
]

RUN_FILE = "_qmf_run.json"
_SHARD_NAME = "shard-{:06d}.parquet"
_SHARD_RE = re.compile(r"^shard-(\d{6,})\.parquet$")
# the run file fields a re-run must agree with (anything else may change between runs)
_PINNED = ("results_schema_version", "pairs", "pairs_sha256", "shard_size", "modalities")


def shard_path(results_dir: str | os.PathLike[str], shard: int) -> Path:
    return Path(results_dir) / _SHARD_NAME.format(shard)


def shard_count(pairs: int, shard_size: int) -> int:
    return math.ceil(pairs / shard_size) if pairs else 0


def done_shards(results_dir: str | os.PathLike[str]) -> set[int]:
    """Shards already written (complete files; temporary files are hidden and do not match)."""
    d = Path(results_dir)
    if not d.is_dir():
        return set()
    return {int(m.group(1)) for m in (_SHARD_RE.match(n) for n in os.listdir(d)) if m}


def is_results_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` looks like a results folder (a run file or result shards in it): what the app
    treats a dropped folder as; a folder with shards but no run file is then refused with its reason."""
    d = Path(path)
    try:
        return d.is_dir() and ((d / RUN_FILE).is_file() or any(_SHARD_RE.match(n) for n in os.listdir(d)))
    except OSError:
        return False


def pairs_fingerprint(pairs: Sequence[PairRow], modalities: Sequence[str]) -> str:
    """A checksum of the pair list in order (ids, files, labels): a re-run must see the same list."""
    h = hashlib.sha256()
    for p in pairs:
        files = [str(p.files[m]) if p.files.get(m) is not None else "" for m in modalities]
        h.update(json.dumps([p.id, files, p.label]).encode())
        h.update(b"\n")
    return h.hexdigest()


def read_run_info(results_dir: str | os.PathLike[str]) -> dict[str, Any]:
    d = Path(results_dir).expanduser().absolute()
    run = d / RUN_FILE
    if not run.is_file():
        raise FileNotFoundError(f"{d}: not a QMF results folder (no {RUN_FILE}); "
                                "make one with qmf batch --engine ray --out DIR")
    try:
        info = json.loads(run.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{run}: unreadable ({exc})") from None
    version = info.get("results_schema_version")
    if not isinstance(version, int):
        raise UserError(f"{run}: no results schema version")
    if version > RESULTS_SCHEMA_VERSION:
        raise UserError(f"{run}: results schema {version} is newer than this QMF Studio reads "
                         f"({RESULTS_SCHEMA_VERSION}); update QMF Studio")
    return info


def prepare_results_dir(results_dir: str | os.PathLike[str], info: Mapping[str, Any]) -> dict[str, Any]:
    """Create ``results_dir`` with its run file, or check that a re-run is the same run. Returns the
    run info as stored (a re-run keeps the first run's shard size)."""
    d = Path(results_dir).expanduser().absolute()
    if d.exists() and not d.is_dir():
        raise UserError(f"{d}: is a file; --out needs a folder")
    run = d / RUN_FILE
    if not run.exists():
        if d.is_dir() and any(_SHARD_RE.match(n) for n in os.listdir(d)):
            raise UserError(f"{d}: has result shards but no {RUN_FILE}; choose an empty folder")
        d.mkdir(parents=True, exist_ok=True)
        write_bytes_atomically(run, json.dumps(dict(info), indent=1).encode())
        return dict(info)
    stored = read_run_info(d)
    if stored["model"]["sha256"] != info["model"]["sha256"]:
        raise UserError(f"{d}: made by model {stored['model']['name']} (sha256 {stored['model']['sha256'][:12]}), "
                         f"not by {info['model']['name']} (sha256 {info['model']['sha256'][:12]}); "
                         "give a new --out folder for this model")
    for key in _PINNED:
        if stored.get(key) != info.get(key):
            what = "pair list" if key in ("pairs", "pairs_sha256") else key.replace("_", " ")
            raise UserError(f"{d}: made from a different {what} ({stored.get(key)!r}, now {info.get(key)!r}); "
                             "re-run with the same source and options, or give a new --out folder")
    return stored


@dataclass
class ImportReport:
    session: Path
    created: bool
    shards: int          # shard files read
    skipped_shards: int  # already in the session (an earlier import)
    missing_shards: int  # not written yet: the run is unfinished
    pairs: int           # pairs added to the session
    errors: int          # of them, error rows
    seconds: float
    cancelled: bool = False  # stopped between two shards; importing again adds the rest


@dataclass
class ImportPlan:
    """What importing ``results_dir`` into ``session`` would do, from the run file, the shard names and the
    session's counts alone (no shard is read): how the app opens a results folder without re-importing."""

    results_dir: Path
    session: Path
    exists: bool         # the session file is there already
    written_shards: int  # shard files in the results folder
    missing_shards: int  # not written yet (the run is unfinished)
    new_pairs: int       # rows of written shards the session does not hold yet

    @property
    def up_to_date(self) -> bool:
        return self.exists and self.new_pairs == 0


def plan_import(results_dir: str | os.PathLike[str], session_path: str | os.PathLike[str]) -> ImportPlan:
    """Compare a results folder with a session made from it (UserError, one line, for a folder that is not
    a results folder, a schema this version does not read, or a session of another model or inputs).

    Shard k of a run always holds rows k·S … k·S+S−1, and an import adds whole shards, so the rows
    written shards hold minus the results the session has is what a new import would add; it grows
    when a resumed run wrote more shards since."""
    d = Path(results_dir).expanduser().absolute()
    info = read_run_info(d)
    size, pairs, total = int(info["shard_size"]), int(info["pairs"]), int(info.get("shards", 0))
    written = done_shards(d) & set(range(total))
    rows = sum(min(size, pairs - k * size) for k in written)
    path = Path(session_path).expanduser().absolute()
    plan = ImportPlan(d, path, path.exists(), len(written), total - len(written), rows)
    if plan.exists:
        with ReviewSession.open(path, readonly=True) as session:
            _check_session(session, info)
            plan.new_pairs = max(0, rows - session.result_count())
    return plan


def _check_session(session: ReviewSession, info: Mapping[str, Any]) -> None:
    session.check_model(info["model"]["name"], info["model"]["sha256"])
    mods = list(info["modalities"])
    if session.modality_names != mods:
        raise UserError(f"{session.path}: made for inputs {session.modality_names}, the results have {mods}")


def _prediction(row: Mapping[str, Any], modalities: Sequence[str], info: Mapping[str, Any]) -> dict[str, Any]:
    """A result row back in ``Prediction.to_json()`` shape, what ``ReviewSession.write_results`` takes."""
    return {
        "model": {"name": info["model"]["name"], "sha256": info["model"]["sha256"]},
        "label": row["prediction"], "probability": row["probability"], "probabilities": row["probabilities"],
        "late_fusion": {"probabilities": row.get("late_probabilities") or []},
        "modalities": {
            m: {"label": row[f"{m}_label"], "probability": row[f"{m}_probability"],
                "probabilities": row[f"{m}_probabilities"] or [], "energy": row[f"{m}_energy"],
                "quality": row[f"{m}_quality"], "share": row[f"{m}_share"]}
            for m in modalities if row.get(f"{m}_label") is not None
        },
    }


def import_results(results_dir: str | os.PathLike[str], session_path: str | os.PathLike[str],
                   progress: Callable[[int, int], None] | None = None,
                   cancelled: Callable[[], bool] | None = None) -> ImportReport:
    """Build (or extend) a review session from a results directory.

    Importing again into the same session adds the shards written since (a run finished later) and
    never overwrites a result or a verdict already there; a shard already in the session is
    recognised from its ``id`` column alone. ``progress(shards_done, shards)`` is called after each
    shard; ``cancelled()`` is asked before each one, and a True stops the import between two shards
    (each shard is committed whole, so importing again later adds exactly the rest).
    """
    require_pyarrow("qmf review import")
    start = time.perf_counter()
    d = Path(results_dir).expanduser().absolute()
    info = read_run_info(d)
    mods = list(info["modalities"])
    path = Path(session_path).expanduser().absolute()
    created = not path.exists()
    if created:
        session = ReviewSession.create(
            path, model_name=info["model"]["name"], model_sha256=info["model"]["sha256"],
            model_path=info["model"].get("path"), modalities=info["modalities"], labels=info["labels"],
            source_kind=info["source"]["kind"], source_path=info["source"]["path"],
            thresholds=FlagThresholds.from_dict(info.get("thresholds")),
            manifest_modalities=info.get("manifest_modalities") or (),
        )
        session.set_unmatched([tuple(u) for u in info.get("unmatched", [])])
    else:
        session = ReviewSession.open(path)
    report = ImportReport(path, created, 0, 0, 0, 0, 0, 0.0)
    try:
        _check_session(session, info)
        thresholds = session.stored_thresholds()
        shards = sorted(done_shards(d))
        report.missing_shards = max(0, int(info.get("shards", 0)) - len(shards))
        for n, k in enumerate(shards):
            if cancelled is not None and cancelled():
                report.cancelled = True
                break
            report.shards += 1
            first_id = _first_id(shard_path(d, k))
            first = session.row(first_id) if first_id is not None else None
            if first is not None and first.status != "pending":
                report.skipped_shards += 1
            elif first_id is not None:
                _import_shard(session, read_results(shard_path(d, k)), mods, info, thresholds, report)
            if progress is not None:
                progress(n + 1, len(shards))
    finally:
        session.close()
    report.seconds = time.perf_counter() - start
    return report


def _first_id(path: Path) -> str | None:
    """The first pair id of a shard (None for an empty one), reading the ``id`` column only; the
    shard's schema version is checked first, as :func:`read_results` does."""
    _, pq = require_pyarrow()
    schema_version_checked(path)
    ids = pq.read_table(path, columns=["id"]).column("id")
    return ids[0].as_py() if len(ids) else None


def _import_shard(session: ReviewSession, rows: list[dict[str, Any]], mods: list[str], info: Mapping[str, Any],
                  thresholds: FlagThresholds, report: ImportReport) -> None:
    last = session.rows(order_by="index", descending=True, limit=1)
    start = last[0].idx + 1 if last else 0
    pairs = [PairRow(line=j + 1, id=r["id"], files={m: r[f"{m}_file"] for m in mods if r[f"{m}_file"] is not None},
                     label=r["label"]) for j, r in enumerate(rows)]
    new = session.add_pairs(pairs)
    if new == len(rows):
        targets = [(start + j, r) for j, r in enumerate(rows)]
    else:  # some ids were in the session already (e.g. a local run): keep their results, fill the rest
        targets = []
        for r in rows:
            existing = session.row(r["id"])
            if existing is not None and existing.status == "pending":
                targets.append((existing.idx, r))
    records = []
    for idx, r in targets:
        if r["status"] == "ok":
            records.append(ResultRecord(idx, r["label"], prediction=_prediction(r, mods, info),
                                        decode_seconds=r["decode_seconds"] or 0.0,
                                        predict_seconds=r["predict_seconds"] or 0.0))
        else:
            records.append(ResultRecord(idx, r["label"], error=r["error"] or "no prediction",
                                        decode_seconds=r["decode_seconds"] or 0.0,
                                        predict_seconds=r["predict_seconds"] or 0.0))
    session.write_results(records, thresholds)
    report.pairs += len(records)
    report.errors += sum(1 for r in records if r.error is not None)
