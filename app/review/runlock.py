"""One batch run per session at a time: an advisory lock on a file next to the session.

Two `qmf batch` runs (or the app and a command line) on the same session would each take every
pending pair and do all the work twice. The run that comes second is told that another run holds
the session, and by which process. The lock is the operating system's (``flock`` on POSIX,
``msvcrt.locking`` on Windows), so it is released when the process ends however it ends: a killed
run never leaves a stale lock behind. The lock file (``.<session name>.lock``) stays; it is empty
apart from the holder's process id.
"""

from __future__ import annotations

import os
from pathlib import Path

from app.review.session_schema import SessionBusyError

__all__ = ["RunLock", "lock_path"]


def lock_path(session_path: Path) -> Path:
    return session_path.with_name(f".{session_path.name}.lock")


class RunLock:
    """Held from :meth:`acquire` until :meth:`release` (or the process ends)."""

    def __init__(self, session_path: Path) -> None:
        self.session_path = session_path
        self.path = lock_path(session_path)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise SessionBusyError naming the process that holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(fd)
        except OSError:
            holder = _read_holder(fd)
            os.close(fd)
            raise SessionBusyError(
                f"{self.session_path}: another run is processing this session"
                f"{f' (process {holder})' if holder else ''}; wait for it to finish, or stop it, then run again"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                pass
            os.close(self._fd)  # closing releases the lock
            self._fd = None


def _lock(fd: int) -> None:
    if os.name == "nt":  # pragma: no cover - Windows
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""
