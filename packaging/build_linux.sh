#!/usr/bin/env bash
# Build QMF Studio's Linux artefacts from a checkout, in one command:
#
#     packaging/build_linux.sh            # -> dist/qmf-studio/ (folder build), dist/*.deb, dist/*.tar.gz
#
# Options:
#     --skip-pyinstaller      reuse dist/qmf-studio/ and only (re)make the .deb and .tar.gz
#     --allow-missing-resources   build even if resources/models or resources/samples are empty
#                                 (for trying the recipe before the bundled model exists)
# Needs: the project's .venv (./dev.sh setup) with pyinstaller in it (.venv/bin/pip install pyinstaller),
# and dpkg-dev, fakeroot, binutils (apt-get install dpkg-dev fakeroot binutils).
# Writes dist/build-report.txt with timings and sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
SKIP_PYI=0
ALLOW_MISSING=0
for arg in "$@"; do
    case "$arg" in
        --skip-pyinstaller) SKIP_PYI=1 ;;
        --allow-missing-resources) ALLOW_MISSING=1 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "build_linux: unknown option $arg" >&2; exit 2 ;;
    esac
done

[ -x "$PY" ] || { echo "build_linux: no $PY; run ./dev.sh setup first" >&2; exit 2; }
"$PY" -c "import PyInstaller" 2>/dev/null || {
    echo "build_linux: PyInstaller is not installed in $(dirname "$(dirname "$PY")"):" >&2
    echo "    $(dirname "$PY")/pip install pyinstaller" >&2
    exit 2
}
VERSION=$("$PY" packaging/qmf_packaging.py version)
ARCH=$(dpkg --print-architecture 2>/dev/null || uname -m)
MACHINE=$(uname -m)

if [ "$ALLOW_MISSING" = 0 ]; then
    ls resources/models/*.safetensors >/dev/null 2>&1 || { echo "build_linux: no model in resources/models/ (--allow-missing-resources to build anyway)" >&2; exit 2; }
    [ -f resources/samples/samples.json ] || { echo "build_linux: no resources/samples/samples.json (--allow-missing-resources to build anyway)" >&2; exit 2; }
fi

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.0f", b-a}'; }
t_start=$(now)
mkdir -p dist build

if [ "$SKIP_PYI" = 0 ]; then
    echo "== PyInstaller (clean one-folder build; several minutes) ==" >&2
    rm -rf dist/qmf-studio
    "$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
        --distpath dist --workpath build/pyinstaller packaging/qmf-studio.spec
fi
[ -x dist/qmf-studio/qmf-studio ] || { echo "build_linux: dist/qmf-studio/qmf-studio missing" >&2; exit 1; }
ln -sfn qmf-studio dist/qmf-studio/qmf     # the command line: same program, started as `qmf`
t_pyi=$(now)

echo "== slim (ICU data, debug info) ==" >&2
"$PY" packaging/linux/slim.py dist/qmf-studio >&2
t_slim=$(now)

echo "== .deb ==" >&2
DEB=$(PYTHON=$PY packaging/linux/build_deb.sh dist/qmf-studio dist)
t_deb=$(now)

echo "== .tar.gz ==" >&2
TGZ="dist/qmf-studio-${VERSION}-linux-${MACHINE}.tar.gz"
if command -v pigz >/dev/null; then GZ="pigz -6"; else GZ="gzip -6"; fi
tar -C dist --owner=0 --group=0 --numeric-owner --mode=u+rwX,go+rX,go-w -cf - qmf-studio | $GZ > "$TGZ.tmp"
mv "$TGZ.tmp" "$TGZ"
t_tgz=$(now)

REPORT=dist/build-report.txt
{
    echo "QMF Studio $VERSION, Linux $ARCH build, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "pyinstaller:        $([ "$SKIP_PYI" = 1 ] && echo skipped || echo "$(secs "$t_start" "$t_pyi") s")"
    echo "slim:               $(secs "$t_pyi" "$t_slim") s"
    echo ".deb:               $(secs "$t_slim" "$t_deb") s"
    echo ".tar.gz:            $(secs "$t_deb" "$t_tgz") s"
    echo "total:              $(secs "$t_start" "$t_tgz") s"
    echo "folder build:       $(du -sh dist/qmf-studio | cut -f1)  ($(du -sb dist/qmf-studio | cut -f1) bytes)"
    echo "$(basename "$DEB"):  $(du -h "$DEB" | cut -f1)  ($(stat -c %s "$DEB") bytes; $(dpkg-deb -f "$DEB" Installed-Size) KiB installed)"
    echo "$(basename "$TGZ"):  $(du -h "$TGZ" | cut -f1)  ($(stat -c %s "$TGZ") bytes)"
    "$PY" packaging/sizes.py dist/qmf-studio 10
} | tee "$REPORT"
echo "artefacts: $DEB $TGZ" >&2
