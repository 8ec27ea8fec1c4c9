"""Replay the saved fuzz corpus (seeds and fixed reproducers): every input is loaded or refused in one line.

A campaign (tests/fuzz/campaign.py) searches for new failures; this test keeps the ones found fixed.
"""

from __future__ import annotations

import pytest

from tests.fuzz.targets import LOADED, REFUSED, REFUSED_SQLITE, TARGETS, corpus_files

CASES = [(target, path) for target in TARGETS for path in corpus_files(target)]


def test_every_target_has_a_corpus():
    assert {t for t, _ in CASES} == set(TARGETS)


@pytest.mark.parametrize(("target", "path"), CASES, ids=[f"{t}/{p.name}" for t, p in CASES])
def test_saved_input_is_loaded_or_cleanly_refused(target, path):
    if target == "bundle_schema":
        pytest.importorskip("atheris", reason="the structure-aware target reads its bytes through atheris")
    assert TARGETS[target](path.read_bytes()) in (LOADED, REFUSED, REFUSED_SQLITE)
