#!/usr/bin/env bash
# Build QMF Studio for macOS:   packaging/macos/build.sh
#   -> dist/QMF Studio.app  and  dist/qmf-studio-<version>-macos-<arch>.dmg
#
# NOT run by the project: written on Linux, never executed on a Mac. Needs macOS 12+ (on the
# architecture you want to ship: an arm64 build does not run on Intel Macs and vice versa), Xcode
# command line tools (hdiutil, codesign) and the project's venv with the CPU torch and PyInstaller:
#     ./dev.sh setup && .venv/bin/pip install pyinstaller
# The .app is signed ad hoc by PyInstaller only: to hand it to other people, sign it with a
# Developer ID (CODESIGN_IDENTITY="Developer ID Application: ..." packaging/macos/build.sh) and
# notarize the .dmg (xcrun notarytool submit ... --wait; xcrun stapler staple ...), or Gatekeeper
# will refuse to open it.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
VERSION=$("$PY" packaging/qmf_packaging.py version)
ARCH=$(uname -m)
APP="dist/QMF Studio.app"

"$PY" -m PyInstaller --noconfirm --clean --distpath dist --workpath build/pyinstaller packaging/qmf-studio.spec

if [ -n "${CODESIGN_IDENTITY:-}" ]; then
    codesign --force --deep --options runtime --timestamp --sign "$CODESIGN_IDENTITY" "$APP"
fi

# Smoke test of the bundle before packing it.
"$APP/Contents/MacOS/qmf-studio" --self-test --output dist/selftest-macos.json > /dev/null

DMG="dist/qmf-studio-$VERSION-macos-$ARCH.dmg"
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
rm -f "$DMG"
hdiutil create -volname "QMF Studio $VERSION" -srcfolder "$STAGE" -ov -format UDZO "$DMG"
echo "built $DMG"
echo "command line: ln -s \"/Applications/QMF Studio.app/Contents/MacOS/qmf-studio\" /usr/local/bin/qmf-studio"
echo "              (and a link named qmf for the command line: the launcher dispatches on its name)"
