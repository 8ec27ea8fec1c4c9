"""Which model a review runs with: one rule for `qmf batch` and the app's Review tab."""

from __future__ import annotations

from pathlib import Path

from app.resources import default_model_path

__all__ = ["session_model_path"]


def session_model_path(chosen: str | Path | None, session_path: str | Path | None) -> Path:
    """The model the user chose; else the one the session was made with, while that file exists;
    else the bundled model."""
    if chosen:
        return Path(chosen)
    if session_path is not None and Path(session_path).is_file():
        from app.review.session import ReviewSession

        with ReviewSession.open(session_path) as session:
            stored = session.model_path
        if stored and Path(stored).is_file():
            return Path(stored)
    return default_model_path()
