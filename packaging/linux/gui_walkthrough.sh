#!/usr/bin/env bash
# Drive the packaged desktop app on a virtual X server, the way a person would, and keep a screenshot
# of each step (read them: the checks below only prove that windows appeared and files were written):
#
#     packaging/linux/gui_walkthrough.sh LAUNCHER OUT_DIR
#
#   LAUNCHER   the installed qmf-studio (e.g. a `dpkg -x` root's usr/bin/qmf-studio)
#   OUT_DIR    screenshots 01-…png …, app.log, and the files the app exported
# Steps: window with the demo prediction; File ▸ Open files… (a file dialog opens, Escape closes it);
# ▶ Play (miniaudio, null device: QMF_STUDIO_AUDIO=null); File ▸ Export result as JSON… (typed into
# the save dialog); Review tab ▸ Open folder… (the bundled demo samples) ▸ session file ▸ the batch
# runs; Review ▸ Export the table as CSV… and the bar's Export JSON…. The two buttons without a
# shortcut (Open folder…, Export JSON…) are clicked at their place in a 1360x860 window at (0,0):
# OPEN_FOLDER_X/Y and EXPORT_JSON_XY="X Y" move the clicks when the layout changes (see 04/05-*.png).
# QMF_SAMPLES: the folder of pairs to review (default: the bundle's demo samples).
# Needs Xvfb, xdotool and ImageMagick's `import` (apt-get install xvfb xdotool imagemagick).
# Exit status: the number of failed checks. verify_linux.sh runs it when those tools exist.
set -u
LAUNCHER=$(realpath "$1")
OUT=$(realpath -m "$2")
mkdir -p "$OUT"
for tool in Xvfb xdotool import; do
    command -v $tool >/dev/null || { echo "gui_walkthrough: needs $tool (apt-get install xvfb xdotool imagemagick)" >&2; exit 2; }
done
# the bundled demo samples (QMF_SAMPLES: another folder of pairs, e.g. when LAUNCHER runs a checkout)
SAMPLES=${QMF_SAMPLES:-$(dirname "$(realpath "$LAUNCHER")")/_internal/resources/samples}
FAILS=0
say() { echo "$*"; }
pass() { say "PASS  gui: $*"; }
fail() { say "FAIL  gui: $*"; FAILS=$((FAILS + 1)); }
shot() { sleep "${2:-0.5}"; import -display "$DISPLAY" -window root "$OUT/$1.png" 2>/dev/null; }
wait_window() {  # NAME [seconds]: id of a visible window whose title matches NAME, or ""
    timeout "${2:-15}" xdotool search --sync --onlyvisible --name "$1" 2>/dev/null | head -1
}
wait_gone() {  # ID: until the window is unmapped (or 10 s)
    for _ in $(seq 1 50); do xdotool getwindowname "$1" >/dev/null 2>&1 || return 0
        xwininfo -id "$1" 2>/dev/null | grep -q "IsViewable" || return 0; sleep 0.2; done; return 1
}
type_path() {  # the focused file dialog: replace its file-name field with PATH, press Return
    xdotool key --clearmodifiers ctrl+a; xdotool type --delay 5 "$1"; xdotool key Return
}
wait_file() { for _ in $(seq 1 "${2:-50}"); do [ -s "$1" ] && return 0; sleep 0.2; done; return 1; }

TMPH=$(mktemp -d "${TMPDIR:-/tmp}/qmf-gui.XXXXXX")
chmod 700 "$TMPH"
DISP=$(( 90 + RANDOM % 400 ))
export DISPLAY=:$DISP
Xvfb "$DISPLAY" -screen 0 1600x1000x24 -nolisten tcp > "$OUT/xvfb.log" 2>&1 &
XPID=$!
trap 'kill $APID 2>/dev/null; kill $XPID 2>/dev/null; rm -rf "$TMPH"' EXIT
APID=
for _ in $(seq 1 50); do xdpyinfo -display "$DISPLAY" >/dev/null 2>&1 && break; sleep 0.1; done

(cd "$TMPH" && exec env -i PATH=/nonexistent HOME="$TMPH" XDG_RUNTIME_DIR="$TMPH" LANG=C.UTF-8 DISPLAY="$DISPLAY" \
    QT_QPA_PLATFORM=xcb QMF_STUDIO_AUDIO=null "$LAUNCHER") > "$OUT/app.log" 2>&1 &
APID=$!

# 1. the window, with the demo pair's prediction
W=$(wait_window "QMF Studio$" 30)
if [ -z "$W" ]; then fail "no QMF Studio window within 30 s: $(tail -3 "$OUT/app.log" | tr '\n' ' ')"; exit $((FAILS)); fi
xdotool windowmove "$W" 0 0; xdotool windowsize "$W" 1360 860; xdotool windowfocus "$W"
shot 01-window 6
pass "window shown (01-window.png)"

# 2. File ▸ Open files… (Ctrl+O): Qt's file dialog opens and closes
xdotool windowfocus "$W"; xdotool key --clearmodifiers ctrl+o
D=$(wait_window "Open" 10)
if [ -n "$D" ]; then
    shot 02-open-dialog 1
    xdotool key Escape
    wait_gone "$D" && pass "file dialog '$(xdotool getwindowname "$D" 2>/dev/null || echo Open)' opened and closed (02-open-dialog.png)" \
        || fail "the file dialog did not close on Escape"
else
    fail "Ctrl+O opened no file dialog"
fi

# 3. ▶ Play (the audio preview's first button), into miniaudio's null device; the button turns into ■ Stop
xdotool windowfocus "$W"; xdotool mousemove 128 474 click 1
shot 03-playing 0.25
pass "clicked ▶ Play (03-playing.png should show ■ Stop)"
sleep 1.5

# 4. File ▸ Export result as JSON… (Ctrl+E)
xdotool windowfocus "$W"; xdotool key --clearmodifiers ctrl+e
D=$(wait_window "Export result" 10)
if [ -n "$D" ]; then
    type_path "$OUT/prediction.json"
    wait_file "$OUT/prediction.json" && grep -q '"label"' "$OUT/prediction.json" \
        && pass "exported the result as JSON ($(wc -c < "$OUT/prediction.json") bytes)" || fail "no prediction.json written"
else
    fail "Ctrl+E opened no save dialog"
fi

# 5. Review tab (Alt+2) ▸ Open folder… ▸ the demo samples ▸ session file ▸ the batch runs
xdotool windowfocus "$W"; xdotool key --clearmodifiers alt+2
shot 04-review 1
xdotool mousemove "${OPEN_FOLDER_X:-54}" "${OPEN_FOLDER_Y:-59}" click 1
D=$(wait_window "Folder of pairs" 10)
if [ -n "$D" ]; then
    type_path "$SAMPLES"
    sleep 0.5
    # Qt's directory dialog enters a typed folder on Return; Return again chooses it
    xdotool getwindowname "$D" >/dev/null 2>&1 && xwininfo -id "$D" | grep -q IsViewable && xdotool key Return
    S=$(wait_window "Save the review session as" 10)
    if [ -n "$S" ]; then
        type_path "$OUT/demo.qmfreview"
        wait_file "$OUT/demo.qmfreview" && pass "review session started on the demo samples" || fail "no session file written"
        shot 05-review-run 6
    else
        fail "no 'Save the review session as' dialog after choosing the folder"
    fi
else
    fail "Open folder… opened no dialog (click at ${OPEN_FOLDER_X:-54},${OPEN_FOLDER_Y:-59}; see 04-review.png)"
fi

# 6. Review ▸ Export the table as CSV… (menu, keyboard) and the bar's Export JSON… button
export_session() {  # FORMAT: the "Export FORMAT" save dialog is open or about to be
    local fmt=$1 D
    D=$(wait_window "Export ${fmt^^}" 10)
    if [ -n "$D" ]; then
        type_path "$OUT/session.$fmt"
        wait_file "$OUT/session.$fmt" && pass "exported the session as ${fmt^^} ($(wc -l < "$OUT/session.$fmt") lines)" \
            || fail "no session.$fmt written"
    else
        fail "no 'Export ${fmt^^}' dialog"
    fi
}
xdotool windowfocus "$W"; xdotool key --clearmodifiers alt+r; sleep 0.5; xdotool key c
export_session csv
xy=(${EXPORT_JSON_XY:-1181 59})
xdotool windowfocus "$W"; xdotool mousemove "${xy[0]}" "${xy[1]}" click 1
export_session json
shot 06-end 0.5

xdotool windowfocus "$W"; xdotool key --clearmodifiers ctrl+q
for _ in $(seq 1 50); do kill -0 "$APID" 2>/dev/null || break; sleep 0.2; done
kill -0 "$APID" 2>/dev/null && fail "the app did not quit on Ctrl+Q" || pass "quit on Ctrl+Q"
grep -iE "traceback|error" "$OUT/app.log" | head -5 | sed 's/^/  app.log: /'
exit $FAILS
