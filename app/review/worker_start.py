"""The initializer a decoding process is started with, in a module that imports nothing.

Why a module of its own: a `spawn` child unpickles its initializer before the arguments that follow it
(the model's ONNX graph, ~0.5 MB, more than a pipe holds), and the parent's write of them waits until
the child has read them. With the initializer in app/review/decode_worker.py the child imported numpy,
the readers and the predictor first, and the parent waited that long for each child in turn (~0.4-1 s
for two, measured in `qmf batch`); from here the child reads its arguments at once, then imports.
"""

from __future__ import annotations

from typing import Any


def init_worker(*args: Any) -> None:
    """`app.review.decode_worker.init_worker` with the same arguments."""
    from app.review.decode_worker import init_worker as init

    init(*args)
