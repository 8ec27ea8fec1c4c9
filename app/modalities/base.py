"""What every modality offers: load a file, give a blank input, make a tensor, degrade a sample.

The rest of the app (model, data manifests, GUI) only talks to `Modality` objects, so a new kind of
input is one new subclass. Nothing here imports Qt; preprocessing (`to_array`) is numpy, and torch is
imported only by `to_tensor`, which training and the torch fallback path use.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import json
import math
import os
import stat
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar

import numpy as np

from app.util.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    import torch

MAX_LEVEL = 10.0


class InputError(UserError):
    """A file the user gave cannot be used.

    `str(err)` is one line, `'<file>: <what is wrong> (<what would work>)'`, so the command line and
    the GUI can show it as is; the parts stay available as attributes for richer display.
    """

    def __init__(self, path: str | Path, reason: str, hint: str | None = None) -> None:
        self.path = str(path)
        self.reason = _one_line(reason)
        self.hint = _one_line(hint) if hint else None
        super().__init__(self.path, self.reason, self.hint)

    def __str__(self) -> str:
        text = f"{self.path}: {self.reason}"
        if self.hint:
            text += f" ({self.hint})"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep the three-argument constructor working across pickling (worker processes).
        return (type(self), (self.path, self.reason, self.hint))


class InputWarning(UserWarning):
    """A file that is used, but not all of it (e.g. only the first frame of an animated GIF).
    `str(w)` is one line naming the file, like `InputError`."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path, self.reason = str(path), _one_line(reason)
        super().__init__(f"{self.path}: {self.reason}")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def check_level(level: float) -> float:
    """Validate a corruption level on the 0-10 scale and return it as a float."""
    try:
        value = float(level)
    except (TypeError, ValueError):
        raise ValueError(f"corruption level must be a number from 0 to 10, got {level!r}") from None
    if not math.isfinite(value) or value < 0.0 or value > MAX_LEVEL:
        raise ValueError(f"corruption level must be between 0 and 10, got {level!r}")
    return value


def check_rng(rng: Any) -> np.random.Generator:
    """Corruptions must draw from the caller's generator only (reproducible, no global state)."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


class Modality:
    """One kind of input (image, audio, text) with its preprocessing parameters.

    Subclasses set `kind`, `extensions` and `corruption_kinds`, and implement `default_params`,
    `load`, `blank`, `to_array`, `input_shape` and `_corrupt`.
    """

    kind: ClassVar[str] = ""
    extensions: ClassVar[tuple[str, ...]] = ()
    corruption_kinds: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        merged = self.default_params()
        if params is not None:
            if not isinstance(params, Mapping):
                raise TypeError(f"{self.kind} params must be a dict, got {type(params).__name__}")
            merged.update(copy.deepcopy(dict(params)))
        try:
            # Params are stored in model bundles as JSON: normalise (tuples -> lists) and prove it now.
            self.params: dict[str, Any] = json.loads(json.dumps(merged, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{self.kind} params are not JSON-serialisable: {exc}") from None
        self._validate_params()

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        """The preprocessing parameters used when a manifest leaves a key out (a fresh dict)."""
        return {}

    def _validate_params(self) -> None:
        """Raise ValueError for parameters that cannot work; called once by __init__."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"

    # --- reading ---------------------------------------------------------------------------
    def load(self, path: str | Path) -> np.ndarray:
        """Decode and validate a file into this modality's raw array; InputError names the file."""
        raise NotImplementedError

    def load_file(self, fh: BinaryIO, name: str) -> np.ndarray:
        """`load` of an open, seekable binary file object (e.g. an object in storage, opened through
        pyarrow.fs by the Ray engine), with the same limits checked before decoding; InputError names
        ``name`` (the object's URI). The file is read, never closed, here."""
        raise NotImplementedError

    def blank(self) -> np.ndarray:
        """The raw value of a missing input (black image, silence, no words)."""
        raise NotImplementedError

    # --- model input -----------------------------------------------------------------------
    def to_array(self, raw: np.ndarray) -> np.ndarray:
        """One sample's model input as a numpy array, without a batch dimension (no torch needed:
        the ONNX prediction path feeds this to onnxruntime)."""
        raise NotImplementedError

    def to_arrays(self, raws: Sequence[np.ndarray]) -> np.ndarray:
        """`to_array` of several samples, stacked with the batch first (a subclass may compute it as
        one batch, which is cheaper; the numbers are the same)."""
        if not len(raws):
            return self.to_array(self.blank())[None][:0]
        return np.stack([self.to_array(r) for r in raws])

    def to_tensor(self, raw: np.ndarray) -> torch.Tensor:
        """`to_array` as a torch tensor, for training and the torch fallback path (same numbers)."""
        import torch

        return torch.from_numpy(self.to_array(raw))

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of `to_array`'s output."""
        raise NotImplementedError

    # --- degradation -----------------------------------------------------------------------
    def corrupt(self, raw: np.ndarray, kind: str, level: float, rng: np.random.Generator) -> np.ndarray:
        """Degrade one raw sample; pure, level on the 0-10 scale, randomness only from `rng`.

        Level 0 returns the input unchanged (a copy); 'missing' at any level above 0 is the blank
        input.
        """
        if kind not in self.corruption_kinds:
            raise ValueError(
                f"unknown {self.kind} corruption {kind!r}; valid kinds: {', '.join(self.corruption_kinds)}"
            )
        value = check_level(level)
        check_rng(rng)
        if value == 0.0:
            return np.array(raw, copy=True)
        if kind == "missing":
            return self._missing(raw)
        return self._corrupt(raw, kind, value, rng)

    def _missing(self, raw: np.ndarray) -> np.ndarray:
        return self.blank()

    def _corrupt(self, raw: np.ndarray, kind: str, level: float, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError


_MISSING_ERRNOS = (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP)


def require_file(path: str | Path, hint: str) -> Path:
    """Common checks before decoding: the path exists, is a file and is not empty."""
    p = Path(path)
    try:
        info = os.stat(p)  # one call (every pair of a batch run passes here)
    except OSError as exc:
        if exc.errno in _MISSING_ERRNOS:  # what Path.exists() reads as "does not exist"
            raise InputError(p, "file not found") from None
        # a name too long for the file system, a folder without permission ...
        raise InputError(p, f"cannot read the file: {exc.strerror or exc}") from None
    except ValueError:  # an embedded NUL byte: no such file can exist
        raise InputError(p, "file not found") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError(p, "not a file", hint)
    size = info.st_size
    if size == 0:
        raise InputError(p, "empty file (0 bytes)", hint)
    return p


def read_small_file(path: str | Path, limit: int) -> bytes | None:
    """The whole content of a file of at most ``limit`` bytes, or None when it is larger or cannot be
    read (the caller's general reader then opens it and says what is wrong).

    With os.open/os.read: half the cost of open() and a buffered read (~10 us of ~20), which counted
    twice a pair in a batch run's small PNG and WAV files (issue 13)."""
    try:
        fd = os.open(path, os.O_RDONLY | _O_BINARY)
    except OSError:
        return None
    try:
        return _read_to_end(fd, os.fstat(fd).st_size, limit)
    except OSError:
        return None
    finally:
        os.close(fd)


def read_input(path: str | Path, hint: str, limit: int) -> tuple[str | Path, bytes | None]:
    """`require_file`'s checks, and the content of a file of at most ``limit`` bytes (None when it is larger
    or cannot be read: the caller's general reader opens it and says what is wrong).

    The file is opened first and checked with fstat, which is a stat and a Path fewer than
    `require_file` then `read_small_file` (~10 us of a small PNG's or WAV's read). Opened without
    blocking, so a FIFO given as an input is refused as "not a file" as before rather than waited on;
    when it cannot be opened at all, `require_file` says why, with its messages. The path comes back
    as given: a message names the file as its Path writes it (`Path(path)`, made only then: parsing
    one cost ~3 us a file, twice a pair in a batch run)."""
    try:
        fd = os.open(path, os.O_RDONLY | _O_BINARY | _O_NONBLOCK | _O_NOCTTY)
    except (OSError, ValueError):
        return require_file(path, hint), None  # raises, or (no permission to read) leaves it to the decoder
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(Path(path), "not a file", hint)
        if info.st_size == 0:
            raise InputError(Path(path), "empty file (0 bytes)", hint)
        return path, _read_to_end(fd, info.st_size, limit)
    finally:
        os.close(fd)


_O_BINARY = getattr(os, "O_BINARY", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_NOCTTY = getattr(os, "O_NOCTTY", 0)  # a terminal given as an input never becomes this process's terminal


def _read_to_end(fd: int, size: int, limit: int) -> bytes | None:
    """The rest of open file ``fd`` (``size`` bytes by its fstat), or None above ``limit`` or on a read error."""
    if size > limit:
        return None
    chunks: list[bytes] = []
    got = 0
    try:
        while True:
            block = os.read(fd, max(0, size - got) + 1)  # one byte more: a file that grew meanwhile shows
            if not block:
                break
            chunks.append(block)
            got += len(block)
            if got > limit:
                return None
    except OSError:
        return None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


# Decodes that need more than this many bytes take turns (one at a time per process): a batch run
# decodes with several threads, and four 250 MB pictures at once would be a gigabyte.
LARGE_DECODE_BYTES = 32 * 1024 * 1024
_LARGE_DECODE = threading.BoundedSemaphore(1)


@contextlib.contextmanager
def decode_budget(nbytes: int) -> Iterator[None]:
    """Hold while decoding `nbytes`: small decodes run freely, large ones one after another.

    After a large decode the C allocator is asked to hand freed memory back to the system (glibc
    keeps it per thread otherwise, and a pool of decoding threads would each keep a picture's worth).
    """
    if nbytes <= LARGE_DECODE_BYTES:
        yield
        return
    with _LARGE_DECODE:
        try:
            yield
        finally:
            _release_freed_memory()


_REUSE_BELOW = 16 * 1024 * 1024  # freed blocks up to this size stay in the process for the next batch
_TRIM_ABOVE = 64 * 1024 * 1024  # free memory above this at the heap's top goes back to the system


def reuse_freed_memory() -> None:
    """For a process that decodes batch after batch (the batch runner, its decoding processes, `qmf eval`):
    ask glibc to keep freed blocks of up to 16 MiB for reuse instead of handing each back to the system.

    A batch's arrays (log-mel temporaries, stacked inputs) are a few hundred KB each, above glibc's
    default threshold for mapping blocks of their own, so each batch mapped fresh pages and faulted
    them in: 62 page faults and a third of the decoding time per pair, measured (issue 13's decoders).
    Large decodes still hand their memory back (`decode_budget`). Elsewhere than glibc: nothing to do.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, _REUSE_BELOW)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, _TRIM_ABOVE)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def _release_freed_memory() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to do
        pass


def positive_number(params: Mapping[str, Any], key: str, kind: str, allow_zero: bool = False) -> float:
    """Read a numeric parameter and insist that it is positive (or non-negative)."""
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{kind} param {key!r} must be a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{kind} param {key!r} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return float(value)
