#!/usr/bin/env bash
# One entry point for working on QMF Studio from a fresh clone.
#   ./dev.sh app     set up (first run only) and open QMF Studio on the bundled model and a demo pair
#   ./dev.sh test    set up (first run only) and run the test suite
#   ./dev.sh setup   only create/refresh the virtual environment in .venv
# Any further arguments are passed on (to qmf-studio or to pytest).
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.qmf-setup-stamp
TORCH_CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}

setup() {
    if [ ! -x "$VENV/bin/python" ]; then
        echo "creating $VENV" >&2
        "$PYTHON" -m venv "$VENV"
    fi
    # Re-install only when the dependency list changed.
    local want
    want=$(sha256sum pyproject.toml | cut -d' ' -f1)
    if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
        # torch first, pinned, CPU build: the public index's Linux wheel of torch brings gigabytes of
        # CUDA libraries. PyTorch's CPU wheel index is tried first (short timeout, no retries); where
        # it cannot be reached (offline mirror, no network to download.pytorch.org) the plain index.
        "$VENV/bin/python" -m pip install --quiet --timeout 15 --retries 0 torch==2.13.0 \
            --index-url "$TORCH_CPU_INDEX" \
            || "$VENV/bin/python" -m pip install --quiet torch==2.13.0
        # the distributed extra (Ray, pyarrow) too, so the tests of `qmf batch --engine ray` run
        "$VENV/bin/python" -m pip install --quiet -e ".[dev,distributed]"
        echo "$want" > "$STAMP"
    fi
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    setup) setup ;;
    app) setup; exec "$VENV/bin/qmf-studio" "$@" ;;
    test) setup; exec "$VENV/bin/python" -m pytest "$@" ;;
    *) echo "usage: ./dev.sh app|test|setup [args...]" >&2; exit 2 ;;
esac
