"""File ▸ Demo samples: the pairs of `resources/samples/samples.json` as menu entries."""

from __future__ import annotations

from collections.abc import Callable

from app.gui.actions import Action
from app.resources import read_demo_samples


def demo_actions(load: Callable[[dict[str, str]], None]) -> list[Action | None]:
    """One entry per demo pair (it loads the pair), or one disabled line saying why there are none."""
    try:
        samples = read_demo_samples()
    except ValueError as exc:
        return [Action(str(exc), enabled=False)]
    out: list[Action | None] = []
    for sample in samples:
        title = sample.get("title") or sample.get("id") or "sample"
        if sample.get("expected") is not None:
            title += f"  (expected: {sample['expected']})"
        out.append(Action(title, lambda s=sample: load(s["files"]),
                          tip=str(sample["note"]) if sample.get("note") else None))
    return out
