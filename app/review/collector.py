"""Python's cyclic garbage collector during a batch run (`qmf batch`, the app's review child process).

Reference counting frees nearly everything a run makes; the cycle collector only walks objects. In
a run of 10,000 pairs it cost the run's process 150-190 ms of CPU (its own clock, in gc.callbacks),
mostly full collections: reading the folder and storing its pairs makes ~100,000 objects that live
to the end of the command (the pairs, their files' paths), every full collection walked them again,
and the results waiting for their write (~2,000 at a time, a dozen containers each) kept pushing
the collector into those full collections. With `quiet_collector` it is ~45 ms:

* no collection while the source is read and its pairs stored (`quiet_collector` is entered after
  the decoding processes are forked, so they collect as usual): what is made then stays;
* once they are stored (``settled()``), everything alive moves to the permanent generation
  (`gc.freeze`), so later collections never walk it again, and the youngest generation is collected
  every `YOUNG_THRESHOLD` allocations instead of 700, so the results between two writes are not
  walked generation after generation.

On leaving, the thresholds and the on/off switch are as they were, so a process that goes on after
the run (a test, a caller of `cmd_batch`) collects as before; what was frozen stays frozen, as the
app's long-lived objects do (app/gui/collector.py): the interpreter's collections at exit then skip
it (~30 ms less at the end of a 10,000-pair `qmf batch`), and the price is only that a cycle among
those objects that becomes garbage later is not freed. The decoding processes make few objects and
are left alone (~1 ms of collections each).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator

__all__ = ["YOUNG_THRESHOLD", "quiet_collector"]

YOUNG_THRESHOLD = 10_000


@contextlib.contextmanager
def quiet_collector() -> Iterator[Callable[[], None]]:
    """``with quiet_collector() as settled:`` read and store the pairs, call ``settled()``, run."""
    threshold, enabled = gc.get_threshold(), gc.isenabled()
    gc.disable()
    done = False

    def settled() -> None:
        nonlocal done
        if done:
            return
        done = True
        gc.freeze()
        gc.set_threshold(max(threshold[0], YOUNG_THRESHOLD), *threshold[1:])
        if enabled:
            gc.enable()

    try:
        yield settled
    finally:
        gc.set_threshold(*threshold)
        if enabled:
            gc.enable()
        else:
            gc.disable()
