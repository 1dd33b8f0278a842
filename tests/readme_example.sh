#!/bin/sh
# The README's first example, compiled as it is written, run as a user
# would (issue 23): a bad setting stops it with the setting's own message
# (0.2.0's example printed "jc_run: the batch is NULL"); failed calls print
# their error, not NaN, and end the program with status 1; the run says so
# on stderr although stderr is a file, not a terminal (0.2.0 said nothing);
# failures are not cached, so a rerun fails them again.
#   readme_example.sh PROGRAM WORKDIR
prog="$1"
work="$2"
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
fail() { echo "readme_example: $*" >&2; exit 1; }

JOBCACHE_N_JOBS=abc "$prog" >out.txt 2>err.txt
rc=$?
[ $rc -eq 2 ] || fail "JOBCACHE_N_JOBS=abc: exit status $rc, expected 2"
grep -q "JOBCACHE_N_JOBS is 'abc'" err.txt || { cat err.txt; fail "the setting's message is lost"; }
[ ! -s out.txt ] || fail "printed results though nothing ran"

"$prog" >out.txt 2>err.txt
rc=$?
[ $rc -eq 1 ] || { cat err.txt; fail "a run with failed calls: exit status $rc, expected 1"; }
grep -qi nan out.txt && fail "NaN printed for a failed call"
# The calls of alpha 2.0 diverge; the default (on_error = stop) skips the
# calls not yet running when the first failed (how many depends on the
# workers): every call has its line, a result or why not.
ok=$(grep -c '^[0-9]' out.txt)
failed=$(grep -c '^# simulate(.*diverged' out.txt)
skipped=$(grep -c '^# simulate: skipped' out.txt)
[ "$failed" -ge 1 ] && [ $((ok + failed + skipped)) -eq 30 ] || { cat out.txt; fail "not a line for each of the 30 calls"; }
grep -q "30 calls, 0 cached, $ok computed, $failed failed" err.txt || { cat err.txt; fail "no summary line on a stderr that is a file"; }
named=$failed
[ "$named" -le 10 ] || named=10
[ "$(grep -c 'jobcache: simulate(.*diverged' err.txt)" -eq "$named" ] || { cat err.txt; fail "the failed calls are not named on stderr"; }

"$prog" >out.txt 2>err.txt
rc=$?
[ $rc -eq 1 ] || fail "the rerun: exit status $rc, expected 1 (failures are not cached)"
grep -q "30 calls, $ok cached, [0-9]* computed, [1-9][0-9]* failed" err.txt || { cat err.txt; fail "the rerun's summary"; }

JOBCACHE_VERBOSE=0 "$prog" >out.txt 2>err.txt
[ ! -s err.txt ] || { cat err.txt; fail "JOBCACHE_VERBOSE=0 is not silent"; }
echo "readme_example: the README's example checks what can fail, and says so away from a terminal"
