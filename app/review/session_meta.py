"""A session's metadata: the model, inputs, labels, source, thresholds and unmatched files it records.

`ReviewSession` takes these from `SessionMeta`; they read the ``meta`` table (one JSON value per key)
over its connection (`self.conn`) and keep it in `self._meta_cache` until a write or `reload`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from app.review.flags import FlagThresholds

__all__ = ["SessionMeta"]


class SessionMeta:
    """The metadata half of `ReviewSession` (app/review/session.py)."""

    def _set_meta_many(self, values: Mapping[str, Any]) -> None:
        self.conn.executemany(
            "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            [(k, json.dumps(v)) for k, v in values.items()],
        )
        self._meta_cache = None

    def meta(self) -> dict[str, Any]:
        if self._meta_cache is None:
            self._meta_cache = {k: json.loads(v) for k, v in self.conn.execute("SELECT key, value FROM meta")}
        return dict(self._meta_cache)

    @property
    def model_name(self) -> str:
        return self.meta()["model_name"]

    @property
    def model_sha256(self) -> str:
        return self.meta()["model_sha256"]

    @property
    def model_path(self) -> str | None:
        return self.meta().get("model_path")

    @property
    def modality_names(self) -> list[str]:
        return list(self.meta()["modalities"])

    @property
    def labels(self) -> list[str]:
        return list(self.meta()["labels"])

    @property
    def source_path(self) -> Path:
        return Path(self.meta()["source_path"])

    @property
    def source_kind(self) -> str:
        return self.meta()["source_kind"]

    @property
    def thresholds(self) -> FlagThresholds:
        return FlagThresholds.from_dict(self.meta().get("thresholds"))

    @property
    def manifest_modalities(self) -> list[dict[str, Any]]:
        stored = self.meta().get("manifest_modalities") or []
        return stored or [{"name": n, "kind": k, "preprocessing": {}} for n, k in self.meta()["modalities"].items()]

    def stored_thresholds(self) -> FlagThresholds:
        """The thresholds as saved now (bypasses the cache: another connection may have changed them)."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'thresholds'").fetchone()
        return FlagThresholds.from_dict(json.loads(row[0]) if row else None)

    def reload(self) -> None:
        """Forget cached metadata (another connection, e.g. the app's worker, may have changed it)."""
        self._meta_cache = None

    @property
    def unmatched(self) -> list[tuple[str, str]]:
        return [tuple(u) for u in self.meta().get("unmatched", [])]

    def set_unmatched(self, unmatched: Iterable[tuple[Path | str, str]]) -> None:
        value = [[str(p), r] for p, r in unmatched]
        if self.readonly and [list(u) for u in self.meta().get("unmatched", [])] == value:
            return  # nothing changes: a read-only session can still be resumed when it is complete
        with self.transaction():
            self._set_meta_many({"unmatched": value})
