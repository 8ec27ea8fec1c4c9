"""`python -m app`: the desktop app (same as `qmf-studio`)."""

import sys

from app.gui.main import main

if __name__ == "__main__":
    sys.exit(main())
