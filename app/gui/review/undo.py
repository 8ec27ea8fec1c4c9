"""Undo for the analyst's verdicts and notes: each change is a `QUndoCommand` holding the pair's
verdict, relabel and note before and after, so undo writes the old state back to the session file
(durable at once, like the change itself). Consecutive note edits on one pair merge into one step,
so a sentence typed is undone at once, not letter by letter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtGui import QUndoCommand

from app.review.session import ReviewSession

__all__ = ["VerdictChange", "VerdictState", "read_state", "write_state"]

NOTE_EDIT_ID = 1041  # QUndoCommand.id() of note-only changes (merged while the pair stays the same)


@dataclass(frozen=True)
class VerdictState:
    verdict: str | None
    relabel: str | None
    note: str


def read_state(session: ReviewSession, pair_id: str) -> VerdictState:
    v = session.verdict(pair_id)
    return VerdictState(v["verdict"], v["relabel"], v["note"])


def write_state(session: ReviewSession, pair_id: str, state: VerdictState) -> None:
    if state.verdict is None:
        session.clear_verdict(pair_id)
        session.set_verdict(pair_id, note=state.note)
    else:
        session.set_verdict(pair_id, state.verdict, relabel=state.relabel, note=state.note)


class VerdictChange(QUndoCommand):
    """One change to one pair; `apply(pair_id, state)` writes a state and repaints what shows it."""

    def __init__(self, pair_id: str, before: VerdictState, after: VerdictState,
                 apply: Callable[[str, VerdictState], None]):
        note_only = (before.verdict, before.relabel) == (after.verdict, after.relabel)
        what = "note" if note_only else (after.verdict or "clear verdict")
        super().__init__(f"{what} on {pair_id}")
        self.pair_id, self.before, self.after, self.apply = pair_id, before, after, apply
        self.note_only = note_only

    def redo(self) -> None:
        self.apply(self.pair_id, self.after)

    def undo(self) -> None:
        self.apply(self.pair_id, self.before)

    def id(self) -> int:  # noqa: A003 - Qt's name
        return NOTE_EDIT_ID if self.note_only else -1

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 - Qt's name
        if not isinstance(other, VerdictChange) or other.pair_id != self.pair_id or not other.note_only:
            return False
        self.after = other.after
        return True
