"""Open a review the same way from the command line and from the app.

``prepare_session`` is the one place that decides: new session or resume, same model or not, which
pairs are new. The CLI (``qmf batch``) and the app's worker both call it, so running the same command
twice, or opening in the app a session made by the command line, behave the same.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.data.manifest import PairRow
from app.qmf.predictor import Predictor
from app.review.flags import FlagThresholds
from app.review.session import ReviewSession
from app.review.sources import PairSource, load_source
from app.util.errors import UserError

__all__ = ["PreparedSession", "prepare_session"]


@dataclass
class PreparedSession:
    session: ReviewSession
    source: PairSource | None  # None when the source could not be re-scanned (moved); the DB still resumes
    created: bool
    new_pairs: int
    warnings: list[str]


def prepare_session(
    session_path: str | os.PathLike[str],
    predictor: Predictor,
    source_path: str | os.PathLike[str] | None = None,
    model_path: str | os.PathLike[str] | None = None,
    rerun: bool = False,
    thresholds: FlagThresholds | None = None,
    retry_errors: bool = False,
    on_source: Callable[[Sequence[PairRow]], None] | None = None,
    defer_indexes: bool = False,
) -> PreparedSession:
    """Create ``session_path`` from a source, or reopen it for a resume.

    On reopen: a different model raises ModelMismatchError unless ``rerun`` (which drops the results
    but keeps verdicts); the source is re-scanned (the given one, else the stored one) and pairs not
    yet in the session are added, so only what is missing gets processed.

    ``on_source(pairs)``: given the pairs a new session will hold, in the order they are stored (from
    index 0), once the source is read and before they are stored (a folder's; a manifest is read as it
    is stored), so `qmf batch` can start its decoding processes, and hand them the first batches,
    meanwhile. ``defer_indexes``: a new session's pairs are stored without the
    listing's sort indexes, for a run inside ``session.bulk_writes()``, which builds them at its end.
    """
    path = Path(session_path).expanduser().absolute()
    warnings: list[str] = []
    kinds = {name: m.kind for name, m in predictor.modalities.items()}
    if not path.exists():
        if source_path is None:
            raise UserError(f"{path}: no such session; give a folder or a manifest to start one")
        source = load_source(source_path, kinds, predictor.labels)
        if on_source is not None and isinstance(source.pairs, list):
            on_source(source.pairs)
        session = ReviewSession.create(
            path, model_name=predictor.name, model_sha256=predictor.sha256,
            model_path=str(Path(model_path).absolute()) if model_path else None,
            modalities=kinds, labels=predictor.labels, source_kind=source.kind, source_path=source.path,
            thresholds=thresholds, manifest_modalities=predictor.manifest["model"]["modalities"],
        )
        try:
            session.hold_run_lock()
            new = session.add_pairs(source.pairs, build_indexes=not defer_indexes)
            session.set_unmatched(source.unmatched)
        except BaseException:
            session.close()
            raise
        return PreparedSession(session, source, True, new, [*warnings, *source.notes])

    session = ReviewSession.open(path)
    try:
        session.hold_run_lock()  # before any write: a second run must not change what the first is doing
        # Every check before anything is changed: a refused --rerun must leave the results in place.
        if list(session.meta()["modalities"]) != list(kinds):
            raise UserError(f"{path}: made for inputs {session.modality_names}, the model takes {list(kinds)}; "
                            "nothing was changed")
        given = Path(source_path).expanduser().absolute() if source_path is not None else None
        if given is not None and os.path.normpath(given) != os.path.normpath(session.source_path):
            raise UserError(
                f"{path}: this session reviews {session.source_path}, not {given}; "
                "give the same source to resume, or a new --session file"
            )
        if session.model_sha256 != predictor.sha256 or rerun:
            if not rerun:
                session.check_model(predictor.name, predictor.sha256)
            session.start_rerun(predictor.name, predictor.sha256,
                                str(Path(model_path).absolute()) if model_path else session.model_path,
                                manifest_modalities=predictor.manifest["model"]["modalities"])
        if thresholds is not None:
            session.set_thresholds(thresholds)
        if retry_errors:
            retried = session.forget_errors()
            if retried:
                warnings.append(f"retrying {retried} pair(s) that ended in an error")
        source = None
        new = 0
        if session.source_path.exists():
            source = load_source(session.source_path, kinds, predictor.labels)
            new = session.add_pairs(source.pairs)
            session.set_unmatched(source.unmatched)
            warnings.extend(source.notes)
        else:
            warnings.append(f"{session.source_path}: source not found; resuming the pairs already in the session")
    except BaseException:
        session.close()
        raise
    return PreparedSession(session, source, False, new, warnings)
