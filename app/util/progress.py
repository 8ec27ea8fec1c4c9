"""Command-line progress: a live bar on a terminal, plain lines in a log.

tqdm redraws its bar with carriage returns, which a log file or a CI console keeps as one huge
line. When the stream is not a terminal the reporter writes a plain line instead, at most every
``every_s`` seconds and whenever another tenth of the work is done, and one at the end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["ProgressReporter"]


class ProgressReporter:
    """``update(done, total)`` as work goes on, ``close()`` at the end (also a context manager)."""

    def __init__(self, desc: str, total: int = 0, initial: int = 0, unit: str = "item", quiet: bool = False,
                 stream: TextIO | None = None, every_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic):
        self.desc, self.unit, self.quiet = desc, unit, quiet
        self.stream = stream if stream is not None else sys.stderr
        self.total, self.done = total, initial
        self.every_s, self.clock = every_s, clock
        isatty = getattr(self.stream, "isatty", None)
        self.live = bool(isatty and isatty())
        self._bar = None
        if self.live and not quiet:
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=self.stream, leave=False,
                             smoothing=0.1)
        self._last_time = clock()
        self._last_tenth = self._tenth(initial)
        self._printed = initial

    def _tenth(self, done: int) -> int:
        return done * 10 // self.total if self.total > 0 else 0

    def update(self, done: int, total: int | None = None) -> None:
        if total is not None:
            self.total = total
        self.done = done
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.total = self.total
            self._bar.n = done
            self._bar.refresh()
            return
        now = self.clock()
        tenth = self._tenth(done)
        if tenth > self._last_tenth or now - self._last_time >= self.every_s:
            self._line()
            self._last_time, self._last_tenth = now, tenth

    def _line(self) -> None:
        share = f" ({100 * self.done / self.total:.0f} %)" if self.total > 0 else ""
        of = f" / {self.total}" if self.total > 0 else ""
        print(f"{self.desc}: {self.done}{of} {self.unit}s{share}", file=self.stream, flush=True)
        self._printed = self.done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif not self.quiet and self.done != self._printed:
            self._line()

    def __enter__(self) -> ProgressReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
