"""Shared test configuration and generated fixtures.

Qt runs on the offscreen platform so the GUI tests need no display; the setting lives here, not in
anyone's shell. Every data file a test uses is generated here or in the test itself.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

from tests.synthetic import make_synthetic_pairs, train_tiny_model  # noqa: E402


@pytest.fixture(scope="session")
def synthetic_pairs(tmp_path_factory):
    """A small labelled set of image+audio pairs: three classes a tiny model learns in seconds."""
    root = tmp_path_factory.mktemp("pairs")
    return make_synthetic_pairs(root, per_class=24)


@pytest.fixture(scope="session")
def tiny_model(synthetic_pairs, tmp_path_factory):
    """A QMF bundle trained inside the test session on `synthetic_pairs`."""
    out = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    return train_tiny_model(synthetic_pairs, out)


@pytest.fixture(autouse=True)
def _collect_cycles_between_tests():
    """Once a window has moved cycle collection to the GUI thread's timer (app.gui.collector), tests
    that never run an event loop would never collect; give the collector its turn after each test."""
    yield
    import sys

    collector_module = sys.modules.get("app.gui.collector")  # not imported: no window, nothing to do
    collector = collector_module.installed_collector() if collector_module is not None else None
    if collector is not None:
        collector.check()
