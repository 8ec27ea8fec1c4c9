#!/usr/bin/env bash
# Proof that the Linux packages work without Python and outside the source tree:
#
#     packaging/verify_linux.sh                 # clean checkout (git clone of HEAD) -> build -> verify
#     packaging/verify_linux.sh --no-build      # verify the artefacts already in dist/
#     packaging/verify_linux.sh --in-place      # build from this working tree (uncommitted changes too)
#
# For each of the .deb (unpacked with `dpkg -x` into a temporary root) and the .tar.gz it runs, with
# `env -i`, PATH holding no python, HOME and the working directory in a temporary folder:
#   qmf-studio --self-test        exit 0; JSON says frozen, every demo pair as expected, nothing loaded
#                                 from the checkout
#   qmf-studio --screenshot F     (QT_QPA_PLATFORM=offscreen) exit 0 and a real PNG; start-up timings
#   qmf predict --json            the command line, same program under the name `qmf`
#   qmf batch (1200 pairs)        worker processes, a review session, CSV and JSON exports
#   qmf train                     says in one line that it needs torch (not in the installed app)
#   linux/gui_walkthrough.sh      (Xvfb, xdotool, ImageMagick) file dialog, playback, export, Review batch
# and lints the desktop entry and AppStream file when desktop-file-validate / appstreamcli exist.
# Extra options: --model M --samples DIR (a stand-in model and demo pairs, passed to the launchers;
# needed while resources/ is empty), --allow-missing-resources (passed to the build), --keep,
# --drop-caches (root only: empty the page cache before each screenshot run, for a truly cold start;
# it slows everything else on the machine for a moment).
# Writes dist/verify-report.txt. Exit status 0 only if every check passed.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
MODE=clone KEEP=0 MODEL= SAMPLES= BUILD_ARGS=() DROP_CACHES=0
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) MODE=none ;;
        --in-place) MODE=inplace ;;
        --keep) KEEP=1 ;;
        --drop-caches) DROP_CACHES=1 ;;
        --model) MODEL=$(realpath "$2"); shift ;;
        --samples) SAMPLES=$(realpath "$2"); shift ;;
        --allow-missing-resources) BUILD_ARGS+=(--allow-missing-resources) ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "verify_linux: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/qmf-verify.XXXXXX")
[ "$KEEP" = 1 ] || trap 'rm -rf "$TMP"' EXIT
FAILS=0
REPORT=$ROOT/dist/verify-report.txt
mkdir -p "$ROOT/dist"
: > "$TMP/report"
say() { echo "$*" | tee -a "$TMP/report"; }
pass() { say "PASS  $*"; }
fail() { say "FAIL  $*"; FAILS=$((FAILS + 1)); }
now() { date +%s.%N; }

# ---------------------------------------------------------------- build
SRC=$ROOT
if [ "$MODE" != none ]; then
    if [ "$MODE" = clone ]; then
        SRC=$TMP/checkout
        git clone --quiet --no-hardlinks "$ROOT" "$SRC" || { echo "verify_linux: git clone failed" >&2; exit 1; }
        say "clean checkout: $(git -C "$SRC" rev-parse --short HEAD) in $SRC"
    fi
    t0=$(now)
    PYTHON=$PY "$SRC/packaging/build_linux.sh" "${BUILD_ARGS[@]}" || { fail "build (packaging/build_linux.sh)"; cat "$TMP/report" > "$REPORT"; exit 1; }
    t1=$(now)
    pass "build in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", b-a}') s"
    if [ "$MODE" = clone ]; then
        rm -rf "$ROOT/dist/qmf-studio"
        cp -a "$SRC"/dist/. "$ROOT/dist/"
    fi
fi
VERSION=$("$PY" packaging/qmf_packaging.py version)
DEB=$(ls "$ROOT"/dist/qmf-studio_"$VERSION"_*.deb 2>/dev/null | head -1)
TGZ=$(ls "$ROOT"/dist/qmf-studio-"$VERSION"-linux-*.tar.gz 2>/dev/null | head -1)
[ -n "$DEB" ] && [ -n "$TGZ" ] || { echo "verify_linux: no dist/*.deb or *.tar.gz for $VERSION (build first)" >&2; exit 1; }
say "artefacts: $(basename "$DEB") ($(du -h "$DEB" | cut -f1)), $(basename "$TGZ") ($(du -h "$TGZ" | cut -f1))"

# ---------------------------------------------------------------- a clean environment without Python
NOPY=$TMP/nopy-bin
mkdir -p "$NOPY" "$TMP/home" "$TMP/work" "$TMP/xdg"
chmod 700 "$TMP/xdg"
CLEAN_ENV=(env -i PATH="$NOPY" HOME="$TMP/home" XDG_RUNTIME_DIR="$TMP/xdg" LANG=C.UTF-8 QT_QPA_PLATFORM=offscreen)
if "${CLEAN_ENV[@]}" /bin/sh -c 'command -v python3 || command -v python' >/dev/null 2>&1; then
    fail "the clean environment still finds a python"
else
    pass "no python on PATH in the clean environment"
fi

TEST_ARGS=()
[ -n "$MODEL" ] && TEST_ARGS+=(--model "$MODEL")
[ -n "$SAMPLES" ] && TEST_ARGS+=(--samples "$SAMPLES")

check_tree() {  # $1 label, $2 install root, $3 qmf-studio launcher, $4 qmf launcher, $5 bundled samples dir
    local label=$1 iroot=$2 gui=$3 cli=$4 bundled_samples=$5 out=$TMP/$1
    mkdir -p "$out"
    say "-- $label: $gui"
    # self-test
    (cd "$TMP/work" && "${CLEAN_ENV[@]}" "$gui" --self-test "${TEST_ARGS[@]}" --output "$out/selftest.json" \
        > "$out/selftest.stdout" 2> "$out/selftest.stderr")
    local rc=$?
    if [ $rc -eq 0 ] && "$PY" packaging/verify_checks.py selftest "$out/selftest.json" "$iroot" "$ROOT" "$SRC" | tee -a "$TMP/report"; then
        pass "$label: --self-test ($(tail -1 "$out/selftest.stderr"))"
    else
        fail "$label: --self-test exit $rc: $(tail -3 "$out/selftest.stderr" | tr '\n' ' ')"
    fi
    # screenshot (offscreen), timed
    local samples_dir=${SAMPLES:-$bundled_samples} shot_args=() model_args=()
    [ -n "$MODEL" ] && model_args+=(--model "$MODEL")
    shot_args+=("${model_args[@]}")
    if [ -n "$SAMPLES" ]; then
        read -r -a pair <<<"$("$PY" packaging/verify_checks.py first-pair "$SAMPLES" | head -1)"
        shot_args+=("${pair[@]}")
    fi
    local start cold="page cache warm (files just unpacked)"
    if [ "$DROP_CACHES" = 1 ]; then
        sync && echo 3 > /proc/sys/vm/drop_caches 2>/dev/null && cold="page cache dropped" || cold="could not drop the page cache"
    fi
    start=$(now)
    (cd "$TMP/work" && "${CLEAN_ENV[@]}" QMF_STUDIO_TIMING=1 "$gui" --screenshot "$out/screenshot.png" "${shot_args[@]}" \
        > "$out/screenshot.log" 2>&1)
    rc=$?
    local end
    end=$(now)
    if [ $rc -eq 0 ] && "$PY" packaging/verify_checks.py png "$out/screenshot.png" | tee -a "$TMP/report"; then
        pass "$label: --screenshot in $(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.1f", b-a}') s end to end ($cold); since launch: $("$PY" packaging/verify_checks.py timing "$out/screenshot.log" "$start")"
        cp "$out/screenshot.png" "$ROOT/dist/screenshot-$label.png"
    else
        fail "$label: --screenshot exit $rc: $(grep -v qmf-timing "$out/screenshot.log" | tail -3 | tr '\n' ' ')"
    fi
    # the real desktop platform plugin (xcb) under a virtual X server, when xvfb-run is installed:
    # offscreen does not load the X11 plugin and its system libraries
    if command -v xvfb-run >/dev/null; then
        (cd "$TMP/work" && xvfb-run -a -s "-screen 0 1600x1000x24" /bin/sh -c \
            'p=$1 h=$2 x=$3 g=$4 o=$5; shift 5; exec env -i PATH="$p" HOME="$h" XDG_RUNTIME_DIR="$x" LANG=C.UTF-8 \
             DISPLAY="$DISPLAY" XAUTHORITY="$XAUTHORITY" QT_QPA_PLATFORM=xcb "$g" --screenshot "$o" "$@"' sh "$NOPY" "$TMP/home" "$TMP/xdg" "$gui" "$out/x11.png" "${shot_args[@]}" \
            > "$out/x11.log" 2>&1)
        rc=$?
        if [ $rc -eq 0 ] && "$PY" packaging/verify_checks.py png "$out/x11.png" > /dev/null; then
            pass "$label: --screenshot on X11 (xcb plugin, Xvfb)"
        else
            fail "$label: --screenshot on X11 exit $rc: $(tail -3 "$out/x11.log" | tr '\n' ' ')"
        fi
    else
        say "SKIP  $label: X11 check (apt-get install xvfb xauth)"
    fi
    # the command line, as `qmf`
    if [ -e "$cli" ]; then
        local first expected
        first=$("$PY" packaging/verify_checks.py first-pair "$samples_dir")
        read -r -a pair <<<"$(head -1 <<<"$first")"
        expected=$(sed -n 2p <<<"$first")
        (cd "$TMP/work" && "${CLEAN_ENV[@]}" "$cli" predict --json "${model_args[@]}" "${pair[@]}" > "$out/predict.json" 2> "$out/predict.err")
        rc=$?
        if [ $rc -eq 0 ] && "$PY" packaging/verify_checks.py predict "$out/predict.json" "$expected" | tee -a "$TMP/report"; then
            pass "$label: qmf predict --json -> $expected"
        else
            fail "$label: qmf predict exit $rc: $(tail -2 "$out/predict.err" | tr '\n' ' ')"
        fi
        # a batch long enough (>= MIN_PAIRS_FOR_PROCESSES) to decode in the frozen executable's
        # worker processes, into a review session, exported to CSV and JSON
        "$PY" packaging/verify_checks.py manifest "$samples_dir" 1200 "$out/manifest.csv"
        (cd "$TMP/work" && "${CLEAN_ENV[@]}" "$cli" batch --manifest "$out/manifest.csv" --session "$out/batch.qmfreview" \
            --csv "$out/batch.csv" --json "$out/batch.json" --quiet > "$out/batch.log" 2>&1)
        rc=$?
        if [ $rc -eq 0 ] && "$PY" packaging/verify_checks.py batch "$out/batch.csv" "$out/batch.json" "$out/manifest.csv" | tee -a "$TMP/report"; then
            pass "$label: qmf batch (1200 pairs, worker processes) -> session, CSV, JSON"
        else
            fail "$label: qmf batch exit $rc: $(tail -2 "$out/batch.log" | tr '\n' ' ')"
        fi
        # what the installed app leaves out says so in one line (training needs torch)
        (cd "$TMP/work" && "${CLEAN_ENV[@]}" "$cli" train --config x.json --manifest x.csv --out x.safetensors > "$out/train.log" 2>&1)
        if grep -q "needs torch" "$out/train.log" && [ "$(wc -l < "$out/train.log")" -le 2 ]; then
            pass "$label: qmf train says it needs torch: $(tail -1 "$out/train.log" | cut -c1-90)…"
        else
            fail "$label: qmf train: $(tail -2 "$out/train.log" | tr '\n' ' ')"
        fi
    else
        fail "$label: no qmf launcher at $cli"
    fi
    # the desktop app driven like a person would (file dialog, playback, export, Review batch)
    if command -v Xvfb >/dev/null && command -v xdotool >/dev/null && command -v import >/dev/null; then
        if packaging/linux/gui_walkthrough.sh "$gui" "$out/gui" > "$out/gui.log" 2>&1; then
            pass "$label: GUI walkthrough ($(grep -c '^PASS' "$out/gui.log") steps; screenshots in dist/gui-$label/)"
        else
            fail "$label: GUI walkthrough: $(grep '^FAIL' "$out/gui.log" | tr '\n' ' ')"
        fi
        rm -rf "$ROOT/dist/gui-$label" && mkdir -p "$ROOT/dist/gui-$label" && cp "$out"/gui/*.png "$ROOT/dist/gui-$label/" 2>/dev/null
    else
        say "SKIP  $label: GUI walkthrough (apt-get install xvfb xdotool imagemagick)"
    fi
}

# ---------------------------------------------------------------- the .deb
DEBROOT=$TMP/deb-root
dpkg -x "$DEB" "$DEBROOT" && pass ".deb unpacks with dpkg -x" || fail "dpkg -x $DEB"
say ".deb: $(du -h "$DEB" | cut -f1) packed, $(du -sh "$DEBROOT" | cut -f1) unpacked; Depends: $(dpkg-deb -f "$DEB" Depends)"
for f in usr/bin/qmf-studio usr/bin/qmf opt/qmf-studio/qmf-studio usr/share/applications/qmf-studio.desktop \
         usr/share/icons/hicolor/256x256/apps/qmf-studio.png usr/share/icons/hicolor/scalable/apps/qmf-studio.svg \
         usr/share/metainfo/io.github.qmfstudio.QMFStudio.metainfo.xml usr/share/doc/qmf-studio/copyright; do
    [ -e "$DEBROOT/$f" ] || fail ".deb lacks /$f"
done
if command -v desktop-file-validate >/dev/null; then
    desktop-file-validate "$DEBROOT/usr/share/applications/qmf-studio.desktop" > "$TMP/dfv.txt" 2>&1 \
        && pass "desktop-file-validate $(tr '\n' ' ' < "$TMP/dfv.txt")" || fail "desktop-file-validate: $(tr '\n' ' ' < "$TMP/dfv.txt")"
else
    say "SKIP  desktop-file-validate not installed (apt-get install desktop-file-utils)"
fi
if command -v appstreamcli >/dev/null; then
    appstreamcli validate --no-net --pedantic "$DEBROOT/usr/share/metainfo/io.github.qmfstudio.QMFStudio.metainfo.xml" > "$TMP/as.txt" 2>&1 \
        && pass "appstreamcli validate ($(grep -c '^[IPW]:' "$TMP/as.txt") notes: $(grep -E '^[IPW]:' "$TMP/as.txt" | cut -d: -f1-3 | tr '\n' ' '))" \
        || fail "appstreamcli validate: $(tr '\n' ' ' < "$TMP/as.txt")"
else
    say "SKIP  appstreamcli not installed (apt-get install appstream)"
fi
check_tree deb "$DEBROOT" "$DEBROOT/usr/bin/qmf-studio" "$DEBROOT/usr/bin/qmf" "$DEBROOT/opt/qmf-studio/_internal/resources/samples"

# ---------------------------------------------------------------- the .tar.gz
TGZROOT=$TMP/tgz-root
mkdir -p "$TGZROOT"
tar -xzf "$TGZ" -C "$TGZROOT" && pass ".tar.gz unpacks" || fail "tar -xzf $TGZ"
check_tree tgz "$TGZROOT" "$TGZROOT/qmf-studio/qmf-studio" "$TGZROOT/qmf-studio/qmf" "$TGZROOT/qmf-studio/_internal/resources/samples"

say "-- $([ $FAILS -eq 0 ] && echo "ALL CHECKS PASSED" || echo "$FAILS CHECK(S) FAILED")"
{ echo "verify_linux.sh $(date -u +%Y-%m-%dT%H:%M:%SZ)"; cat "$TMP/report"; } > "$REPORT"
[ "$KEEP" = 1 ] && echo "kept $TMP" >&2
exit $([ $FAILS -eq 0 ] && echo 0 || echo 1)
