"""Writing an output file so that a reader never sees half of it.

Every file the project writes for a person (bundles, manifests, review exports, generated data sets,
training checkpoints) is written to a temporary file in the same folder and moved over the target
in one step (``os.replace``), so a crash or a full disk leaves the old file or none, never a torn
one. The temporary file is created private (``mkstemp`` makes 0600); the finished file gets
``OUTPUT_MODE`` (0644: the owner writes, everyone reads), like any file a program creates under the
usual umask, so an export can be shared and a model file opened by another account.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["OUTPUT_MODE", "atomic_open", "atomic_path"]

OUTPUT_MODE = 0o644


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """``with atomic_path(p) as tmp: write(tmp)`` — for writers that take a file name (safetensors,
    torch.save, PIL). The folder is created when missing; on an error the temporary file is removed
    and `p` is untouched."""
    target = Path(path).expanduser().absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    import tempfile  # imported when writing, not on every start of `qmf`

    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, OUTPUT_MODE)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", *, encoding: str | None = "utf-8",
                newline: str | None = None) -> Iterator[IO[Any]]:
    """``with atomic_open(p, newline="") as fh: fh.write(...)`` — an open file whose content replaces
    `p` when the block ends without an error. Binary modes (``"wb"``) take ``encoding=None``."""
    if "b" in mode:
        encoding = None
    with atomic_path(path) as tmp, open(tmp, mode, encoding=encoding, newline=newline) as fh:
        yield fh
