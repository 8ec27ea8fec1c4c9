"""Without a screen the app says so plainly instead of aborting inside Qt."""

import os
import subprocess
import sys


def test_no_display_gives_a_clear_message_and_exit_code():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    proc = subprocess.run([sys.executable, "-m", "app", "--no-demo"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert "no display found" in proc.stderr
    assert "Aborted" not in proc.stderr and "Traceback" not in proc.stderr
