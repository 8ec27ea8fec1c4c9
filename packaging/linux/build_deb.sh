#!/usr/bin/env bash
# Package a PyInstaller folder build as a .deb:   packaging/linux/build_deb.sh [FOLDER] [OUT_DIR]
#   FOLDER   the one-folder build (default dist/qmf-studio)
#   OUT_DIR  where the .deb goes (default dist/)
# Layout: /opt/qmf-studio/ (the folder), /usr/bin/{qmf-studio,qmf} (relative links, so they also work
# in a `dpkg -x` root), desktop entry, hicolor icons, AppStream metadata, copyright.
# DEB_COMPRESSION=xz|zstd|gzip|none (default xz at DEB_LEVEL=9, the smallest package dpkg-deb makes;
# zstd -12 is faster to build but ~15 % larger and needs dpkg >= 1.21.18 on the installing side).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
FOLDER=$(realpath "${1:-$ROOT/dist/qmf-studio}")
OUT=$(realpath -m "${2:-$ROOT/dist}")
PY=${PYTHON:-$ROOT/.venv/bin/python}
command -v "$PY" >/dev/null 2>&1 || PY=python3

VERSION=$("$PY" "$ROOT/packaging/qmf_packaging.py" version)
PKG=$("$PY" "$ROOT/packaging/qmf_packaging.py" package)
APPID=$("$PY" "$ROOT/packaging/qmf_packaging.py" id)
ARCH=$(dpkg --print-architecture)
DEB="$OUT/${PKG}_${VERSION}_${ARCH}.deb"

[ -x "$FOLDER/qmf-studio" ] || { echo "build_deb: no folder build at $FOLDER (run packaging/build_linux.sh)" >&2; exit 2; }
for tool in dpkg-deb fakeroot objdump; do
    command -v $tool >/dev/null || { echo "build_deb: needs $tool (apt-get install dpkg-dev fakeroot binutils)" >&2; exit 2; }
done

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/qmf-deb.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
R="$STAGE/root"
mkdir -p "$R/DEBIAN" "$R/opt" "$R/usr/bin" "$R/usr/share/applications" "$R/usr/share/metainfo" \
         "$R/usr/share/doc/$PKG" "$R/usr/share/icons/hicolor/scalable/apps"

cp -a "$FOLDER" "$R/opt/$PKG"
ln -sfn qmf-studio "$R/opt/$PKG/qmf"                    # `qmf` = the same program under the CLI's name
ln -s "../../opt/$PKG/qmf-studio" "$R/usr/bin/qmf-studio"
ln -s "../../opt/$PKG/qmf" "$R/usr/bin/qmf"
chmod -R u+rwX,go+rX,go-w "$R/opt/$PKG"

install -m 644 "$HERE/qmf-studio.desktop" "$R/usr/share/applications/qmf-studio.desktop"
sed -e "s/@VERSION@/$VERSION/" -e "s/@DATE@/$(date -u +%Y-%m-%d)/" \
    "$HERE/$APPID.metainfo.xml.in" > "$R/usr/share/metainfo/$APPID.metainfo.xml"
chmod 644 "$R/usr/share/metainfo/$APPID.metainfo.xml"
install -m 644 "$ROOT/packaging/icons/qmf-studio.svg" "$R/usr/share/icons/hicolor/scalable/apps/qmf-studio.svg"
for s in 16 32 48 64 128 256 512; do
    install -D -m 644 "$ROOT/packaging/icons/qmf-studio-$s.png" "$R/usr/share/icons/hicolor/${s}x${s}/apps/qmf-studio.png"
done
{
    cat "$HERE/copyright.in"
    echo
    echo "License: MIT"
    sed -e 's/^$/./' -e 's/^/ /' "$ROOT/LICENSE"
} > "$R/usr/share/doc/$PKG/copyright"
chmod 644 "$R/usr/share/doc/$PKG/copyright"

echo "build_deb: working out system library dependencies ..." >&2
DEPS_OUT=$("$PY" "$HERE/shlib_depends.py" "$R/opt/$PKG")
DEPENDS=$(sed -n 's/^Depends: //p' <<<"$DEPS_OUT")
RECOMMENDS=$(sed -n 's/^Recommends: //p' <<<"$DEPS_OUT")
INSTALLED_KB=$(du -sk --exclude=DEBIAN "$R" | cut -f1)

{
    echo "Package: $PKG"
    echo "Version: $VERSION"
    echo "Architecture: $ARCH"
    echo "Maintainer: QMF Studio developers <qmf-studio@users.noreply.github.com>"
    echo "Installed-Size: $INSTALLED_KB"
    echo "Depends: $DEPENDS"
    [ -n "$RECOMMENDS" ] && echo "Recommends: $RECOMMENDS"
    echo "Section: science"
    echo "Priority: optional"
    echo "Homepage: https://github.com/qmfstudio/qmf-studio"
    echo "Description: see how a multimodal model trusts each of its inputs"
    echo " QMF Studio runs a Quality-aware Multimodal Fusion model on an image and a"
    echo " sound and shows the answer with how much it trusted each input. Works"
    echo " offline: the model, demo samples, Python and onnxruntime are included"
    echo " under /opt/$PKG. Commands: qmf-studio (desktop app), qmf (command line)."
    echo " Training needs PyTorch and is not included: install QMF Studio from source."
} > "$R/DEBIAN/control"

mkdir -p "$OUT"
COMP=${DEB_COMPRESSION:-xz}
LEVEL=${DEB_LEVEL:-9}
ZARGS=(-Z"$COMP")
[ "$COMP" != none ] && ZARGS+=(-z"$LEVEL")
echo "build_deb: dpkg-deb ${ZARGS[*]} -> $DEB" >&2
dpkg-deb --root-owner-group "${ZARGS[@]}" --build "$R" "$DEB" >&2
echo "$DEB"
