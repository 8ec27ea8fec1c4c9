"""The errors a person can act on, told apart from the app's own bugs.

Every refusal of something the user gave (a file, a model, a manifest, a session, an option) is a
`UserError`: its text is one line naming the thing and what is wrong, and the command line and the
app show it as is. Anything else that escapes is a bug in QMF Studio, and `bug_report` says so
(instead of dressing it up as a problem with the user's files). `UserError` is a ValueError so
callers that caught ValueError before keep working.

Pure Python; in app/util, the bottom layer: every layer may import it, it imports none.
"""

from __future__ import annotations

import os

__all__ = ["BUG_REPORT_WHERE", "DEBUG_ENV", "UsageError", "UserError", "bug_report", "os_error_text"]

DEBUG_ENV = "QMF_DEBUG"  # set to 1 to see the full traceback of a bug
BUG_REPORT_WHERE = "the QMF Studio issue tracker (the project's repository)"


class UserError(ValueError):
    """A problem with what the user gave or asked for; str(err) is one line a person can act on."""


class UsageError(UserError):
    """A problem with the options of a command (the command line exits with 2, not 1)."""


def os_error_text(exc: OSError) -> str:
    """'<file>: <reason>' for an OSError (disk full, permission denied, name too long ...)."""
    reason = exc.strerror or str(exc)
    if exc.filename is not None:
        name = os.fsdecode(exc.filename) if isinstance(exc.filename, bytes) else str(exc.filename)
        if len(name) > 200:
            name = name[:120] + "…" + name[-60:]
        return f"{name}: {reason}"
    return reason


def bug_report(exc: BaseException, context: str) -> str:
    """A short report for an exception that is not a UserError: it says it is a bug, and where.

    One paragraph: what failed and in which line of the app, then where to report it. The full
    traceback follows only with QMF_DEBUG=1, so the report stays readable.
    """
    import traceback  # only when reporting a bug: keeps `qmf predict`'s start-up short

    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if f"{os.sep}app{os.sep}" in f.filename] or frames
    where = f" at {_short_path(ours[-1].filename)}:{ours[-1].lineno}" if ours else ""
    message = " ".join(str(exc).split())
    if len(message) > 300:
        message = message[:300] + "…"
    text = (f"{context}: internal error (a bug in QMF Studio, not a problem with your input): "
            f"{type(exc).__name__}{': ' + message if message else ''}{where}\n"
            f"Please report it to {BUG_REPORT_WHERE} with the command you ran"
            f"{'' if os.environ.get(DEBUG_ENV) else f' (run it again with {DEBUG_ENV}=1 for the full traceback)'}.")
    if os.environ.get(DEBUG_ENV):
        text += "\n" + "".join(traceback.format_exception(exc)).rstrip()
    return text


def _short_path(filename: str) -> str:
    marker = f"{os.sep}app{os.sep}"
    i = filename.rfind(marker)
    return filename[i + 1 :] if i >= 0 else os.path.basename(filename)
