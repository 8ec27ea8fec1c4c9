"""Entry point of the packaged QMF Studio (PyInstaller runs this file, not app/gui/main.py).

One executable serves both commands: started as `qmf` (a link named qmf, or QMF_STUDIO_ENTRY=cli)
it is the command line `app.cli:main`; otherwise it is the desktop app `app.gui.main:main`, which
itself answers `--self-test` without importing Qt. `qmf --self-test` runs the same self-test.
"""

import os
import sys


def _entry() -> str:
    forced = os.environ.get("QMF_STUDIO_ENTRY", "").strip().lower()
    if forced in ("cli", "gui"):
        return forced
    name = os.path.basename(sys.argv[0] if sys.argv else "").lower()
    if name.endswith(".exe"):
        name = name[:-4]
    return "cli" if name == "qmf" else "gui"


def _launch() -> int:
    import multiprocessing

    # `qmf batch` decodes in spawned worker processes, which start this executable again; this
    # makes such a start run the worker instead of the app (the GUI's main() calls it too).
    multiprocessing.freeze_support()
    if "--self-test" in sys.argv[1:2]:  # both names answer it (on Windows only qmf.exe has a console)
        from app.selftest import run

        return int(run(sys.argv[1:]) or 0)
    if _entry() == "cli":
        from app.cli import main as cli_main

        return int(cli_main() or 0)
    from app.gui.main import main as gui_main

    return int(gui_main() or 0)


if __name__ == "__main__":
    sys.exit(_launch())
