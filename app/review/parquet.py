"""Review results as Parquet: one table layout for `qmf batch --parquet`, the Review export and the
Ray engine's result shards, so a team loads any of them straight into pandas, polars or DuckDB.

The layout (results schema 1, documented in docs/distributed.md) is the CSV export's columns with the
types a CSV cannot hold, plus what a CSV leaves out: the probability vectors and the timings.

``id, label, status, prediction, probability, probabilities, late_probabilities, correct, flags,
[verdict, relabel, note,]
<m>_file, <m>_label, <m>_probability, <m>_probabilities, <m>_quality, <m>_share, <m>_energy (per input m),
decode_seconds, predict_seconds, error``

``flags`` and the probability vectors are lists; ``correct`` is a boolean; a value that does not apply
(an error row's numbers, an unlabelled pair's ``correct``) is null. The verdict columns are in a
session's export, not in the shards of a cluster run (nobody has judged those pairs yet). Every file
carries its schema version under the Parquet key ``qmf.results.schema_version``; a reader refuses a
newer one instead of guessing.

pyarrow is optional (``pip install qmf-studio[distributed]``): it is imported only when a Parquet file
is read or written, and :class:`MissingExtraError` says what to install.
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from app.review.flags import FLAG_ERROR, FlagThresholds, compute_flags
from app.util.errors import UserError
from app.util.files import atomic_path

__all__ = [
    "INSTALL_HINT",
    "PARQUET_SUFFIX",
    "RESULTS_SCHEMA_VERSION",
    "SCHEMA_VERSION_KEY",
    "MissingExtraError",
    "arrow_schema",
    "read_parquet_manifest",
    "read_results",
    "require_pyarrow",
    "result_columns",
    "result_row",
    "results_table",
    "table_bytes",
    "write_bytes_atomically",
    "write_results_parquet",
]

RESULTS_SCHEMA_VERSION = 1
SCHEMA_VERSION_KEY = "qmf.results.schema_version"
PARQUET_SUFFIX = ".parquet"
INSTALL_HINT = "pip install qmf-studio[distributed]"

_MOD_FIELDS = ("file", "label", "probability", "probabilities", "quality", "share", "energy")
VERDICT_COLUMNS = ("verdict", "relabel", "note")


class MissingExtraError(UserError):
    """An optional dependency (pyarrow, Ray) is not installed; str() is one line saying what to install."""


def require_pyarrow(what: str = "Parquet") -> tuple[Any, Any]:
    """(pyarrow, pyarrow.parquet), or MissingExtraError naming the extra to install."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingExtraError(f"{what} needs pyarrow, which is not installed: {INSTALL_HINT}") from None
    return pa, pq


def result_columns(modalities: Sequence[str], verdicts: bool = True) -> list[str]:
    cols = ["id", "label", "status", "prediction", "probability", "probabilities", "late_probabilities", "correct",
            "flags"]
    if verdicts:
        cols += list(VERDICT_COLUMNS)
    for m in modalities:
        cols += [f"{m}_{f}" for f in _MOD_FIELDS]
    return [*cols, "decode_seconds", "predict_seconds", "error"]


def arrow_schema(modalities: Sequence[str], verdicts: bool = True,
                 metadata: Mapping[str, Any] | None = None) -> Any:
    """The pyarrow schema of :func:`result_columns`, with the schema version (and ``metadata``) attached."""
    pa, _ = require_pyarrow()
    floats = pa.list_(pa.float64())

    def kind(col: str) -> Any:
        if col.endswith("probabilities"):
            return floats
        if col == "flags":
            return pa.list_(pa.string())
        if col == "correct":
            return pa.bool_()
        if col in ("probability", "decode_seconds", "predict_seconds") or \
                col.rsplit("_", 1)[-1] in ("probability", "quality", "share", "energy"):
            return pa.float64()
        return pa.string()

    meta = {SCHEMA_VERSION_KEY: str(RESULTS_SCHEMA_VERSION), "qmf.modalities": json.dumps(list(modalities))}
    meta.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()})
    return pa.schema([pa.field(c, kind(c)) for c in result_columns(modalities, verdicts)], metadata=meta)


def _finite(x: Any) -> float | None:
    # what the session stores for a number: NaN and infinities become "no value" (SQLite NULL)
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def result_row(pair_id: str, files: Mapping[str, Any], label: str | None, modalities: Sequence[str], *,
               prediction: Mapping[str, Any] | None = None, error: str | None = None,
               decode_seconds: float = 0.0, predict_seconds: float = 0.0,
               thresholds: FlagThresholds | None = None) -> dict[str, Any]:
    """One pair's result row from a prediction (``Prediction.to_json()``) or an error.

    The same values a session holds after ``write_results`` and its Parquet export reads back: the
    Ray engine builds its rows here, and a test holds the two equal.
    """
    row: dict[str, Any] = {"id": pair_id, "label": label, "decode_seconds": float(decode_seconds),
                           "predict_seconds": float(predict_seconds)}
    for m in modalities:
        row[f"{m}_file"] = None if files.get(m) is None else str(files[m])
    if error is not None or prediction is None:
        row.update(status="error", error=error or "no prediction", prediction=None, probability=None,
                   probabilities=None, late_probabilities=None, correct=None, flags=[FLAG_ERROR])
        for m in modalities:
            row.update({f"{m}_{f}": None for f in _MOD_FIELDS[1:]})
        return row
    mods = prediction["modalities"]
    flags = compute_flags(prediction["probability"], prediction["label"], mods, label,
                          thresholds or FlagThresholds())
    row.update(status="ok", error=None, prediction=prediction["label"],
               probability=_finite(prediction["probability"]),
               probabilities=[float(p) for p in prediction["probabilities"]],
               late_probabilities=[float(p) for p in (prediction.get("late_fusion") or {}).get("probabilities") or []],
               correct=None if label is None else label == prediction["label"], flags=flags)
    for m in modalities:
        r = mods.get(m)
        row[f"{m}_label"] = r["label"] if r else None
        row[f"{m}_probabilities"] = [float(p) for p in r["probabilities"]] if r else None
        for f in ("probability", "quality", "share", "energy"):
            row[f"{m}_{f}"] = _finite(r[f]) if r else None
    return row


def results_table(rows: Sequence[Mapping[str, Any]], schema: Any) -> Any:
    pa, _ = require_pyarrow()
    return pa.Table.from_pylist([dict(r) for r in rows], schema=schema)


def table_bytes(table: Any) -> bytes:
    """A whole Parquet file in memory (what a Ray worker hands back for one shard)."""
    pa, pq = require_pyarrow()
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def write_bytes_atomically(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` through a hidden temporary file (app.util.files), fsynced before the rename: a
    reader (or a resumed run) sees the whole file or no file, never half of one, even after a power cut."""
    target = Path(path).expanduser().absolute()
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return target


def write_results_parquet(path: str | os.PathLike[str], pages: Iterable[Sequence[Mapping[str, Any]]],
                          modalities: Sequence[str], verdicts: bool = True,
                          metadata: Mapping[str, Any] | None = None) -> Path:
    """Stream pages of result rows into one Parquet file (bounded memory), written atomically."""
    _, pq = require_pyarrow()
    target = Path(path).expanduser().absolute()
    schema = arrow_schema(modalities, verdicts, metadata)
    with atomic_path(target) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for rows in pages:
            if rows:
                writer.write_table(results_table(rows, schema))
    return target


def schema_version(path: str | os.PathLike[str]) -> int | None:
    _, pq = require_pyarrow()
    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(SCHEMA_VERSION_KEY.encode())
    return int(raw) if raw is not None else None


def read_results(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rows of a results Parquet file (export or shard) as dicts; ValueError for a file that is
    not one, or one written by a newer QMF Studio."""
    _, pq = require_pyarrow()
    schema_version_checked(path)
    return pq.read_table(path).to_pylist()


def schema_version_checked(path: str | os.PathLike[str]) -> int:
    """The results schema version of a Parquet file; UserError (one line naming the file) for a file
    that is not a QMF results file or one of a newer schema than this version reads."""
    try:
        version = schema_version(path)
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not a Parquet file ({exc})") from None
    if version is None:
        raise UserError(f"{path}: not a QMF results file (no {SCHEMA_VERSION_KEY} in its metadata)")
    if version > RESULTS_SCHEMA_VERSION:
        raise UserError(f"{path}: results schema {version} is newer than this QMF Studio reads "
                         f"({RESULTS_SCHEMA_VERSION}); update QMF Studio")
    return version


def read_parquet_manifest(path: str | os.PathLike[str], modalities: list[str], labels: list[str] | None = None,
                          uris: bool = False):
    """A manifest given as Parquet (columns as in a CSV manifest: ``id``, ``label``, one per input),
    read by the CSV manifest reader so ids, labels and problems follow exactly the same rules.

    Relative paths are relative to the Parquet file's folder. In problems, "line N" is the row number
    (1 = the first row).
    """
    from app.data.manifest import Manifest, ManifestError, ManifestProblem, read_manifest
    from app.data.manifest_cells import is_uri

    _, pq = require_pyarrow("a Parquet manifest")
    p = Path(os.path.normpath(Path(path).expanduser().absolute()))
    try:
        table = pq.read_table(p)
    except FileNotFoundError:
        raise ManifestError(f"{p}: not found") from None
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{p}: not a readable Parquet file ({exc})") from None
    names = table.column_names
    columns = [[None if v is None else str(v) for v in table.column(n).to_pylist()] for n in names]
    base = p.parent
    mod_names = set(modalities)
    with tempfile.TemporaryDirectory(prefix="qmf-manifest-") as tmp:
        csv_path = Path(tmp) / "manifest.csv"
        with open(csv_path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(names)
            for cells in zip(*columns, strict=True) if columns else ():
                out = []
                for name, v in zip(names, cells, strict=True):
                    if v and name in mod_names and not is_uri(v) and not os.path.isabs(os.path.expanduser(v)):
                        v = str(base / v)  # the CSV lives elsewhere: keep paths relative to the Parquet file
                    out.append(v or "")
                w.writerow(out)
        try:
            manifest = read_manifest(csv_path, modalities=modalities, check_files=False, labels=labels, uris=uris)
        except ManifestError as exc:  # name the user's file, not the temporary CSV
            raise ManifestError(str(exc).replace(str(csv_path), str(p))) from None
    problems = [ManifestProblem(pr.line - 1, pr.column, pr.message, p) for pr in manifest.problems]
    return Manifest(path=p, modalities=manifest.modalities, rows=manifest.rows, problems=problems)
