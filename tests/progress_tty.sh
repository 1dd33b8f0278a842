#!/bin/sh
# The live progress line in a real terminal (issue 13): tmux panes of 80 and
# 200 columns, read with capture-pane. The line must fit the pane (one row,
# redrawn in place: -J would join a wrapped line into one longer one), use
# the width it has, follow a resize (SIGWINCH), and be gone when the summary
# line is printed; SIGWINCH's disposition must be left as the program had it.
#
#   progress_tty.sh PROGRAM WORKDIR
# Exits 77 (ctest: skipped) when tmux is not installed.
prog="$1"
work="$2"
if ! command -v tmux >/dev/null 2>&1; then
    echo "progress_tty: skipped: tmux is not installed (Debian package tmux)"
    exit 77
fi
rm -rf "$work" && mkdir -p "$work" || exit 1
sock="jc-progress-$$"
t() { tmux -L "$sock" -f /dev/null "$@"; }
fail() { echo "progress_tty: FAIL: $*"; echo "--- pane:"; cat "$work/pane"; t kill-server 2>/dev/null; exit 1; }
trap 't kill-server 2>/dev/null' EXIT

# The pane's text, wrapped rows joined, blank lines dropped.
capture() { t capture-pane -p -J -t jc >"$work/pane.raw"; grep -v '^ *$' "$work/pane.raw" >"$work/pane"; }
# The longest line that holds the live line's counts (N/40).
live_len() { grep -E '[0-9]+/40' "$work/pane" | grep -v 'jobcache: 40 calls' | awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }'; }
wait_result() {
    i=0
    while [ ! -s "$work/result$1" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    [ -s "$work/result$1" ] || fail "the program did not finish"
    sleep 0.3
}

# run WIDTH TAG [own-handler]: starts the program in a new pane.
run() {
    t kill-server 2>/dev/null
    sock="jc-progress-$$-$2" # a server per run: a server being killed cannot take the new session
    t new-session -d -s jc -x "$1" -y 30 "$prog '$work/cache$2.db' '$work/result$2' $3; sleep 60" || exit 1
    t set-option -t jc -g window-size manual >/dev/null 2>&1
}

check_end() { # the summary, then a line per failed call (issue 23): no live line left, the disposition as it was
    wait_result "$1"
    capture
    grep -q 'jobcache: 40 calls, 0 cached, 36 computed, 4 failed' "$work/pane" || fail "no summary line"
    [ "$(live_len)" -eq 0 ] || fail "the live line was not cleared before the summary"
    [ "$(grep -c 'jobcache: [0-9]* calls' "$work/pane")" -eq 1 ] || fail "more than one summary line"
    [ "$(grep -c 'jobcache: slow_call([0-9]*): no multiples of ten' "$work/pane")" -eq 4 ] ||
        fail "not a line for each of the 4 failed calls"
    [ "$(grep -c '^jobcache' "$work/pane")" -eq 5 ] || fail "other lines of jobcache"
    # The summary fits the 80 columns in rows of its own, broken between
    # words, the cache file's name whole (issue 25: it wrapped mid-path).
    t capture-pane -p -t jc >"$work/rows"
    awk 'length($0) >= 80 { bad = 1 } END { exit bad }' "$work/rows" || fail "a row of 80 columns or more: wrapped"
    grep -q "cache$1\.db\$" "$work/rows" || fail "the cache's name is not whole at the end of a row"
    [ "$(cat "$work/result$1")" = ok ] || fail "$(cat "$work/result$1")"
}

for width in 80 200; do
    run $width $width
    sleep 1.2
    capture
    n=$(live_len)
    [ "$n" -gt 0 ] || fail "no live line at $width columns"
    [ "$n" -lt "$width" ] || fail "the live line takes $n columns of $width"
    [ "$(grep -cE '[0-9]+/40' "$work/pane")" -eq 1 ] || fail "the live line is not redrawn in place at $width columns"
    grep -q 'calls/s' "$work/pane" || fail "no rate at $width columns"
    grep -qE 'jobcache \[[=> ]+\]' "$work/pane" || fail "no bar at $width columns"
    if [ $width -eq 200 ]; then
        [ "$n" -gt 100 ] || fail "the live line uses $n of 200 columns"
        grep -q 'ETA' "$work/pane" && grep -qE '[0-9]/2 busy' "$work/pane" && grep -q 'failed' "$work/pane" ||
            fail "ETA, workers busy or failures missing at 200 columns"
        # A narrower terminal: the next redraw fits it.
        t resize-window -t jc -x 80 -y 30 || fail "resize-window"
        sleep 0.8
        capture
        n=$(live_len)
        [ "$n" -gt 0 ] && [ "$n" -lt 80 ] || fail "after a resize to 80 columns the live line takes $n"
    fi
    check_end $width
    echo "progress_tty: $width columns ok"
done

# A program with its own SIGWINCH handler keeps it.
run 80 own own-handler
check_end own
echo "progress_tty: the program's own SIGWINCH handler kept"
t kill-server 2>/dev/null
exit 0
