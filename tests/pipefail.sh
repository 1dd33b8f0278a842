#!/usr/bin/env bash
# Issue 20: under `set -o pipefail`, a pipeline whose reader stops early on
# purpose (grep -q, grep -m, head, read, sed's q, awk's exit) fails whenever
# the writer is still writing when the reader exits: a coin toss. This checks
#   1. that no script of the project that sets pipefail, or is sourced by one
#      (.ci/deps.sh), pipes into such a reader;
#   2. that the dependency checks of .ci/deps.sh give the same, right answer
#      every time: 200 times each against an apt-cache and a dpkg-query that
#      write a long answer (the old `apt-cache policy | grep -q` failed them
#      all), and 30 times against this machine's real apt-cache when it has
#      one.
#
#   pipefail.sh SOURCE-DIR WORK-DIR
set -euo pipefail
top="$1"
work="$2"
rm -rf "$work"
mkdir -p "$work/bin"
bad=0
fail() { echo "pipefail: $*" >&2; bad=1; }

# 1. The shape, in every script that sets pipefail or mentions it (a
#    sourced file states the rule it follows).
scripts=("$top/.ci/deps.sh")
for f in "$top"/.ci/* "$top"/tests/*.sh "$top"/tests/fuzz/*.sh "$top"/examples/*.sh "$top"/tools/*.sh "$top"/bench/*.sh; do
    [ -f "$f" ] || continue
    case "$f" in */.ci/deps.sh | */tests/pipefail.sh) continue ;; esac  # listed / the checker itself
    grep -q pipefail "$f" && scripts+=("$f")
done
[ ${#scripts[@]} -ge 8 ] || fail "found only ${#scripts[@]} scripts with pipefail: the list of folders is stale"
early='(grep([[:space:]]+-[A-Za-z]+)*[[:space:]]+-[A-Za-z]*[qm]|head|read|sed[[:space:]]+(-n[[:space:]]+)?.?[0-9]*q|awk[[:space:]].*exit)\b'
for f in "${scripts[@]}"; do
    n=0
    while IFS= read -r line; do
        n=$((n + 1))
        code="${line%%#*}"                        # comments may show the bad shape
        code="${code//||/ }"                       # "a || b" is not a pipe
        [[ $code =~ \|[[:space:]]*$early ]] &&
            fail "${f#"$top"/}:$n: a pipe into a reader that may stop early: ${line#"${line%%[![:space:]]*}"}"
    done <"$f"
done

# 2. The checks, many times, where the answer is known. The fakes write the
#    answer first, then 256 KiB more (more than a pipe holds), as apt-cache
#    policy writes its list of pins.
i=0
while [ $i -lt 4096 ]; do
    echo "     500 http://deb.debian.org/debian bookworm/main amd64 Packages $i"
    i=$((i + 1))
done >"$work/pad"
export JC_PAD="$work/pad"
cat >"$work/bin/apt-cache" <<'EOF'
#!/bin/sh
case "$2" in
    libmsgpack-dev) printf '%s:\n  Installed: (none)\n  Candidate: 4.0.0-3\n' "$2" ;;
    *) printf '%s:\n  Installed: (none)\n  Candidate: (none)\n' "$2" ;;
esac
cat "$JC_PAD"
EOF
cat >"$work/bin/dpkg-query" <<'EOF'
#!/bin/sh
case "$*" in
    *installed-pkg*) printf 'install ok installed' ;;
    *) exit 1 ;;
esac
cat "$JC_PAD"
EOF
chmod +x "$work/bin/apt-cache" "$work/bin/dpkg-query"

check_many() {  # N EXPECTED COMMAND...: COMMAND's output N times
    local n="$1" want="$2" i got wrong=0
    shift 2
    for ((i = 0; i < n; i++)); do
        got=$("$@" 2>/dev/null) || got="(failed)"
        [ "$got" = "$want" ] || wrong=$((wrong + 1))
    done
    [ $wrong -eq 0 ] || fail "$*: $wrong of $n answers were not '$want'"
}
answer() { if "$@"; then echo yes; else echo no; fi; }

(
    PATH="$work/bin:$PATH"
    JC_LOG_DIR="$work/logs"
    . "$top/.ci/deps.sh"
    check_many 200 yes answer jc_apt_offers libmsgpack-dev
    check_many 50 no answer jc_apt_offers libmsgpack-c-dev
    check_many 200 libmsgpack-dev jc_msgpack_pkg
    check_many 50 yes answer jc_pkg_installed installed-pkg
    check_many 50 no answer jc_pkg_installed missing-pkg
    exit $bad
) || bad=1

# This machine's own apt-cache: whatever it answers, it answers the same
# every time (a fresh list may offer either package, or none).
if command -v apt-cache >/dev/null 2>&1; then
    (
        JC_LOG_DIR="$work/logs"
        . "$top/.ci/deps.sh"
        first=$(jc_msgpack_pkg) || first="(none)"
        msgpack_or_none() { jc_msgpack_pkg || echo "(none)"; }
        check_many 30 "$first" msgpack_or_none
        echo "pipefail: this machine's apt says msgpack-c is $first, 31 times of 31" >&2
        exit $bad
    ) || bad=1
fi

[ $bad -eq 0 ] && echo "pipefail: ${#scripts[@]} scripts have no early-ending pipe; the dependency checks gave 550 of 550 right answers"
exit $bad
