"""Messages that cross a thread or process boundary in the app: typed, never tuples or sentences.

A review run in a child process (`app.review.child`) reports to the window through a pipe, and the
Predict tab's worker thread reports to its page through queued signals. Both send these dataclasses
(plain data: they pickle across the pipe). The sentence in `Failed.message` is for the person; the
`kind` is for the code, so a receiver branches on `kind` and never on the wording or on a class name.
No Qt here: the child process and the command line import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

__all__ = ["ErrorKind", "Failed", "Finished", "Prepared", "Progress"]


class ErrorKind(Enum):
    """What kind of failure a `Failed` (or the Predict tab's error messages) reports."""

    BAD_INPUT = "bad_input"  # a file, folder or manifest the user gave cannot be used
    BAD_MODEL = "bad_model"  # the model file cannot be read or loaded
    NO_MODEL = "no_model"  # asked to predict before any model loaded
    MODEL_MISMATCH = "model_mismatch"  # the session's results were made by another model: re-run to replace
    PROCESS = "process"  # the review process could not start or stopped without reporting
    INTERNAL = "internal"  # anything else: a bug; the message says what, the detail has the traceback


@dataclass(frozen=True)
class Prepared:
    """The session is ready and the run is about to start."""

    session: str  # the session file
    created: bool
    new_pairs: int
    warnings: list[str] = field(default_factory=list)
    unmatched: list[tuple[str, str]] = field(default_factory=list)  # (file, why it was not paired)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    rate: float  # pairs per second
    seconds_left: float | None  # None: not known yet


@dataclass(frozen=True)
class Finished:
    """The run ended (all pairs done, or cancelled): the results are in the session file."""

    processed: int
    errors: int
    seconds: float
    cancelled: bool
    done: int
    total: int
    rate: float

    def as_dict(self) -> dict[str, float | int | bool]:
        return {"processed": self.processed, "errors": self.errors, "seconds": self.seconds,
                "cancelled": self.cancelled, "done": self.done, "total": self.total, "rate": self.rate}


@dataclass(frozen=True)
class Failed:
    """The run (or a job) could not go on. `message` is one line for the person, naming `path`."""

    kind: ErrorKind
    path: str | None
    message: str
    detail: str = ""  # e.g. a traceback for INTERNAL; never needed to understand the message
