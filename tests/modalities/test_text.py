"""Text loading, tokenisation, vocabulary, token ids and word blanking."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from app.modalities import InputError, TextModality, get_modality
from app.modalities import text as text_mod


def test_tokenize() -> None:
    assert text_mod.tokenize("Hello, World! It's 42.") == [
        "hello",
        ",",
        "world",
        "!",
        "it",
        "'",
        "s",
        "42",
        ".",
    ]
    assert text_mod.tokenize("Ça va", lowercase=False) == ["Ça", "va"]


def test_load(tmp_path: Path) -> None:
    path = tmp_path / "caption.txt"
    path.write_bytes("\ufeffA handwritten Seven.\n".encode())
    raw = TextModality().load(path)
    assert list(raw) == ["a", "handwritten", "seven", "."]
    assert isinstance(raw, np.ndarray)


def test_load_refusals(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"caf\xe9 au lait")
    with pytest.raises(InputError, match="offset 3") as info:
        TextModality().load(bad)
    assert str(info.value).startswith(str(bad)) and "UTF-8" in str(info.value)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        TextModality().load(empty)
    blank = tmp_path / "blank.txt"
    blank.write_text("  \n\t ")
    with pytest.raises(InputError, match="no words"):
        TextModality().load(blank)


def test_build_vocabulary_deterministic() -> None:
    texts = ["b a a", "c b a", "d"]
    assert TextModality.build_vocabulary(texts) == ["a", "b", "c", "d"]
    assert TextModality.build_vocabulary(reversed(texts)) == ["a", "b", "c", "d"]
    assert TextModality.build_vocabulary(texts, min_count=2) == ["a", "b"]
    assert TextModality.build_vocabulary(texts, max_size=1) == ["a"]
    assert TextModality.build_vocabulary(["B b"]) == ["b"]


def test_to_tensor_ids() -> None:
    m = TextModality({"vocab": ["seven", "a"], "max_tokens": 5})
    x = m.to_tensor(np.array(["A", "seven", "zebra", ""]))
    assert x.dtype == torch.int64 and tuple(x.shape) == m.input_shape == (5,)
    assert x.tolist() == [3, 2, 1, 1, 0]
    long = m.to_tensor(m.tokenize("seven " * 20))
    assert long.tolist() == [2] * 5
    assert m.to_tensor(m.blank()).tolist() == [0] * 5


def test_params_vocab_tuple_normalised() -> None:
    m = get_modality("text", {"vocab": ("x", "y")})
    assert m.params["vocab"] == ["x", "y"] and m.params["max_tokens"] == 64


def test_blank_words() -> None:
    m = TextModality()
    tokens = np.array(["w"] * 10000)
    np_state, py_state, torch_state = np.random.get_state(), random.getstate(), torch.get_rng_state()
    for level in (1, 3, 7, 10):
        out = m.corrupt(tokens, "blank_words", level, np.random.default_rng(0))
        assert np.mean(out == "") == pytest.approx(0.1 * level, abs=0.02)
    a = m.corrupt(tokens, "blank_words", 5, np.random.default_rng(1))
    assert np.array_equal(a, m.corrupt(tokens, "blank_words", 5, np.random.default_rng(1)))
    assert not np.array_equal(a, m.corrupt(tokens, "blank_words", 5, np.random.default_rng(2)))
    assert np.array_equal(m.corrupt(tokens, "blank_words", 0, np.random.default_rng(1)), tokens)
    assert (tokens == "w").all()
    assert m.corrupt(tokens, "missing", 2, np.random.default_rng(1)).size == 0
    assert np.array_equal(np.random.get_state()[1], np_state[1])
    assert random.getstate() == py_state
    assert torch.equal(torch.get_rng_state(), torch_state)
