"""Input files in object storage for the Ray engine: ``s3://…``, ``gs://…``, ``file://…`` read via pyarrow.fs.

A manifest given to ``qmf batch --engine ray`` may name its files by URI (read with ``uris=True``,
kept as written). Each scoring actor holds one :class:`UriOpener`; a file is opened with
``pyarrow.fs.FileSystem.from_uri`` as a seekable random-access file and handed to the modality's
``load_file``, so the project's own decoders read it and every decode limit (pixels and decoded
bytes before an image is decoded, sample rate, seconds and decoded bytes before audio is) is checked
from the header as for a local file; nothing is downloaded whole first. Credentials and regions are
pyarrow's (environment, instance metadata), as for any Arrow reader on the cluster.

pyarrow is imported on first use (the `distributed` extra).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

from app.modalities import InputError

__all__ = ["UriOpener"]

_HINT = "pyarrow reads s3://, gs://, hdfs:// and file:// URIs"
# bytes fetched per read of the underlying file: on S3 or GCS each is one ranged request, so a
# decoder's many small reads (headers, chunks) are served from this buffer
READ_BUFFER = 1 << 20


class _Raw(io.RawIOBase):
    """A pyarrow NativeFile as a Python raw file, so io.BufferedReader can give the decoders the whole
    file protocol (Pillow's readers call readline, which NativeFile does not offer)."""

    def __init__(self, native: Any):
        self._f = native

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        return self._f.readinto(b)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()


class UriOpener:
    """Opens URIs for reading; one filesystem object per scheme and bucket (making an S3 or GCS
    client resolves its region and credentials, too costly to repeat for every file)."""

    def __init__(self) -> None:
        self._filesystems: dict[tuple[str, str], Any] = {}

    def _resolve(self, uri: str) -> tuple[Any, str]:
        from app.review.parquet import require_pyarrow

        require_pyarrow("Reading input files by URI")
        from pyarrow import fs

        parts = urlsplit(uri)
        key = (parts.scheme.lower(), parts.netloc)
        if key[0] == "file" or key not in self._filesystems:  # a local path needs no client: pyarrow's own
            try:
                filesystem, path = fs.FileSystem.from_uri(uri)
            except (ValueError, OSError) as exc:  # ArrowInvalid (a ValueError): an unknown scheme, a bad URI
                raise InputError(uri, f"cannot open this URI ({_first_line(exc)})", _HINT) from None
            if key[0] != "file":
                self._filesystems[key] = filesystem
            return filesystem, path
        return self._filesystems[key], f"{parts.netloc}{unquote(parts.path)}"

    @contextlib.contextmanager
    def open(self, uri: str) -> Iterator[io.BufferedReader]:
        """The object as a seekable, buffered binary file (over pyarrow's random-access file); InputError
        (naming the URI) when it cannot be opened, is missing or is empty."""
        filesystem, path = self._resolve(uri)
        try:
            fh = filesystem.open_input_file(path)
        except FileNotFoundError:
            raise InputError(uri, "file not found") from None
        except (OSError, ValueError) as exc:
            raise InputError(uri, f"cannot read the file ({_first_line(exc)})") from None
        try:
            if fh.size() == 0:
                raise InputError(uri, "empty file (0 bytes)")
            yield io.BufferedReader(_Raw(fh), READ_BUFFER)
        finally:
            fh.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
