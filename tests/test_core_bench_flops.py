"""The FLOP count behind benchmarks/core_bench.py's compute limit (issue 13's batched-forward target
is a ratio to it, so a wrong count moves the figure either way)."""

from __future__ import annotations

import importlib
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _core_bench():
    saved = dict(os.environ)  # the benchmark pins BLAS threads at import; keep this process as it was
    try:
        return importlib.import_module("benchmarks.core_bench")
    finally:
        os.environ.clear()
        os.environ.update(saved)


class _TwoInputs(nn.Module):
    """A padded stride-1 conv, a padded stride-2 conv and a linear layer, over a dict of inputs like the
    QMF model's."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(2, 8, 3, padding=1)
        self.b = nn.Conv2d(3, 4, (3, 5), stride=2, padding=(1, 2))
        self.fc = nn.Linear(6, 5)

    def forward(self, x):
        return self.a(x["a"]).sum() + self.b(x["b"]).sum() + self.fc(x["c"]).sum()


def _taps_on_input(conv: nn.Conv2d, shape: tuple[int, int]) -> int:
    """Brute force: at each output position, how many kernel taps read the input (a conv of ones)."""
    ones = torch.ones(1, 1, *shape)
    return int(F.conv2d(ones, torch.ones(1, 1, *conv.kernel_size), stride=conv.stride, padding=conv.padding).sum())


def test_flops_count_every_tap_and_the_taps_off_the_padding():
    bench = _core_bench()
    model = _TwoInputs()
    batch = {"a": np.zeros((4, 2, 7, 9), np.float32), "b": np.zeros((4, 3, 6, 11), np.float32),
             "c": np.zeros((4, 6), np.float32)}
    usual, needed = bench.model_flops(model, batch)

    out_a = 7 * 9  # stride 1, same padding
    out_b = 3 * 6  # ceil(6 / 2) x ceil(11 / 2)
    assert usual == 2 * (out_a * 9 * 2 * 8 + out_b * 15 * 3 * 4 + 6 * 5)
    assert needed == 2 * (_taps_on_input(model.a, (7, 9)) * 2 * 8 + _taps_on_input(model.b, (6, 11)) * 3 * 4 + 6 * 5)
    assert needed < usual  # the padding taps are left out, nothing else

