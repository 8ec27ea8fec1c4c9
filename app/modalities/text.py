"""Text: a UTF-8 .txt file as a sequence of word tokens, and token ids for the model.

Tokenisation is a deliberately simple regex (words and single punctuation marks) so that the
vocabulary stored in a model bundle means the same thing on every machine.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import numpy as np

from .base import InputError, Modality, check_level, check_rng, require_file

SUPPORTED_HINT = "use a UTF-8 plain-text file (.txt)"
MAX_TEXT_BYTES = 10_000_000  # far beyond any caption; refuses accidental huge files
# numpy stores every token at the length of the longest (4 bytes a character), so 10 MB of words
# with one very long "word" among them could ask for terabytes: refuse above this.
MAX_TOKEN_ARRAY_BYTES = 64 * 1024 * 1024
PAD_ID = 0
UNKNOWN_ID = 1
_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str, lowercase: bool = True) -> list[str]:
    """Words and single punctuation marks, optionally lowercased."""
    if lowercase:
        text = text.lower()
    return _TOKEN_RE.findall(text)


def _tokens_array(tokens: Iterable[str]) -> np.ndarray:
    items = list(tokens)
    return np.array(items, dtype=str) if items else np.array([], dtype="<U1")


def blank_words(raw: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    """Each token replaced by '' (read as the unknown word) with probability 0.1*level."""
    level = check_level(level)
    check_rng(rng)
    out = np.array(raw, dtype=str, copy=True).reshape(-1)
    if level == 0 or out.size == 0:
        return out
    out[rng.random(out.size) < 0.1 * level] = ""
    return out


class TextModality(Modality):
    """Text as a numpy array of str tokens; int64 ids [max_tokens] for the model."""

    kind: ClassVar[str] = "text"
    extensions: ClassVar[tuple[str, ...]] = (".txt",)
    corruption_kinds: ClassVar[tuple[str, ...]] = ("blank_words", "missing")

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        """An empty vocabulary maps every word to the unknown id until one is built."""
        return {"vocab": [], "max_tokens": 64, "lowercase": True}

    def _validate_params(self) -> None:
        p = self.params
        vocab = p["vocab"]
        if not isinstance(vocab, list) or not all(isinstance(w, str) and w for w in vocab):
            raise ValueError("text param 'vocab' must be a list of non-empty strings")
        if len(set(vocab)) != len(vocab):
            raise ValueError("text param 'vocab' has duplicate words")
        mt = p["max_tokens"]
        if not isinstance(mt, int) or isinstance(mt, bool) or mt <= 0:
            raise ValueError(f"text param 'max_tokens' must be a positive integer, got {mt!r}")
        if not isinstance(p["lowercase"], bool):
            raise ValueError(f"text param 'lowercase' must be true or false, got {p['lowercase']!r}")
        self._ids = {word: i + 2 for i, word in enumerate(vocab)}

    @staticmethod
    def build_vocabulary(
        texts: Iterable[str], min_count: int = 1, max_size: int = 20000, lowercase: bool = True
    ) -> list[str]:
        """Most frequent tokens first, ties alphabetical: deterministic for the same texts."""
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(tokenize(text, lowercase))
        ranked = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return ranked[: max(0, int(max_size))]

    def tokenize(self, text: str) -> np.ndarray:
        """Tokens of a string with this modality's settings, as a raw array."""
        return _tokens_array(tokenize(text, bool(self.params["lowercase"])))

    def load(self, path: str | Path) -> np.ndarray:
        """Read UTF-8 (a BOM is fine) and tokenise; refuse invalid UTF-8 and empty text."""
        p = require_file(path, SUPPORTED_HINT)
        try:
            if p.stat().st_size > MAX_TEXT_BYTES:
                raise InputError(p, f"text file is larger than {MAX_TEXT_BYTES:,} bytes", "use a short text")
            data = p.read_bytes()
        except OSError as exc:
            raise InputError(p, f"cannot read the file: {exc.strerror or exc}") from None
        return self._tokens(data, p)

    def load_file(self, fh: BinaryIO, name: str) -> np.ndarray:
        """`load` of an open binary file (an object in storage): at most MAX_TEXT_BYTES are read."""
        try:
            data = fh.read(MAX_TEXT_BYTES + 1)
        except OSError as exc:
            raise InputError(name, f"cannot read the file: {exc.strerror or exc}") from None
        if len(data) > MAX_TEXT_BYTES:
            raise InputError(name, f"text file is larger than {MAX_TEXT_BYTES:,} bytes", "use a short text")
        if not data:
            raise InputError(name, "empty file (0 bytes)", SUPPORTED_HINT)
        return self._tokens(data, name)

    def _tokens(self, data: bytes, p: str | Path) -> np.ndarray:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputError(
                p, f"not valid UTF-8 text (bad byte at offset {exc.start})", SUPPORTED_HINT
            ) from None
        words = tokenize(text, bool(self.params["lowercase"]))
        longest = max((len(w) for w in words), default=0)
        if len(words) * longest * 4 > MAX_TOKEN_ARRAY_BYTES:
            raise InputError(
                p,
                f"{len(words):,} words, the longest {longest:,} characters: too large to hold as tokens",
                "use a shorter text without very long runs of letters",
            )
        tokens = _tokens_array(words)
        if tokens.size == 0:
            raise InputError(p, "empty text: no words", "write at least one word")
        return tokens

    def blank(self) -> np.ndarray:
        """No words."""
        return _tokens_array([])

    def to_array(self, raw: np.ndarray) -> np.ndarray:
        """int64 [max_tokens]: vocab word i -> i + 2, unknown or blanked -> 1, padding -> 0."""
        max_tokens = int(self.params["max_tokens"])
        lower = bool(self.params["lowercase"])
        ids = np.full(max_tokens, PAD_ID, dtype=np.int64)
        for i, token in enumerate(np.asarray(raw, dtype=str).reshape(-1)[:max_tokens]):
            word = str(token).lower() if lower else str(token)
            ids[i] = self._ids.get(word, UNKNOWN_ID)
        return ids

    @property
    def input_shape(self) -> tuple[int, ...]:
        """(max_tokens,)."""
        return (int(self.params["max_tokens"]),)

    def _corrupt(self, raw: np.ndarray, kind: str, level: float, rng: np.random.Generator) -> np.ndarray:
        return blank_words(raw, level, rng)
