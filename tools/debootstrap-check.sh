#!/usr/bin/env bash
# Proves the README's two commands on fresh Debian systems: for each suite
# (bookworm and trixie by default) debootstraps a minimal system once (a
# pristine base, never used itself), then on a fresh copy of that base, with
# nothing installed before, runs ./examples/demo.sh DEMO_RUNS times (each on
# a copy of its own, so that a flaky step cannot pass by luck), and on one
# more copy runs ./tests/run.sh. Both scripts install what they need with
# apt-get inside the chroot. Downloaded .deb files are kept per suite in
# DIR/archives-SUITE and shared by the copies (nothing installed is shared).
#
#   sudo tools/debootstrap-check.sh [DIR [SUITES [DEMO_RUNS [MIRROR]]]]
#
# DIR defaults to /var/tmp/jobcache-debootstrap, SUITES to "bookworm trixie",
# DEMO_RUNS to 3, MIRROR to http://deb.debian.org/debian. Needs root,
# debootstrap, network access, about 3 GB per suite, and 15 to 30 minutes
# per suite on 2 cores. Run by hand, not by .ci/run. Prints a line per step
# and per result; each chroot's output goes to DIR/logs/.
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-/var/tmp/jobcache-debootstrap}"
suites="${2:-bookworm trixie}"
demo_runs="${3:-3}"
mirror="${4:-http://deb.debian.org/debian}"

[ "$(id -u)" -eq 0 ] || { echo "debootstrap-check: run as root (debootstrap and chroot need it)" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "debootstrap-check: apt-get install debootstrap" >&2; exit 2; }
mkdir -p "$dir/logs"

mounted=()
unmount_all() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
    mounted=()
}
trap unmount_all EXIT

# fresh SUITE NAME: a copy of the suite's pristine base at $dir/NAME, with
# the working tree (committed or not, without build folders) in /src/jobcache.
fresh() {
    local suite="$1" root="$dir/$2" m
    unmount_all
    rm -rf "$root"
    cp -a "$dir/base-$suite" "$root"
    for m in proc sys dev dev/pts; do
        mkdir -p "$root/$m"
        case $m in
            proc) mount -t proc proc "$root/proc" ;;
            sys) mount -t sysfs sys "$root/sys" ;;
            *) mount --bind "/$m" "$root/$m" ;;
        esac
        mounted+=("$root/$m")
    done
    mkdir -p "$dir/archives-$suite/partial" "$root/var/cache/apt/archives"
    mount --bind "$dir/archives-$suite" "$root/var/cache/apt/archives"
    mounted+=("$root/var/cache/apt/archives")
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    mkdir -p "$root/src/jobcache"
    tar -C "$top" --exclude='./build*' --exclude='./.git' --exclude='*.db' --exclude='*.db-*' -cf - . |
        tar -C "$root/src/jobcache" -xf -
}

# in_chroot NAME LOG COMMAND: runs COMMAND in /src/jobcache of copy NAME as a
# new user's login would, its output (and the time it took) in LOG.
in_chroot() {
    local root="$dir/$1" log="$2" start=$SECONDS rc=0
    chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb \
        /bin/bash -c "cd /src/jobcache && $3" >"$log" 2>&1 || rc=$?
    echo "$((SECONDS - start))" >"$log.seconds"
    return $rc
}

# prove SUITE KIND LABEL LOG COMMAND: COMMAND on a fresh copy of SUITE,
# a line of what it took, or its end when it failed.
prove() {
    fresh "$1" "$1-$2"
    if in_chroot "$1-$2" "$4" "$5"; then
        echo "   $3: passed in $(cat "$4.seconds") s, $(wc -l <"$4") lines of output ($4)"
    else
        echo "!! $3: FAILED ($4):"; tail -n 30 "$4"; status=1
    fi
}

status=0
for suite in $suites; do
    base="$dir/base-$suite"
    if [ ! -f "$base/.debootstrap-done" ]; then
        echo "== debootstrap $suite into $base (log: $dir/logs/debootstrap-$suite.log)"
        rm -rf "$base"
        debootstrap --variant=minbase --include=ca-certificates,sudo "$suite" "$base" "$mirror" \
            >"$dir/logs/debootstrap-$suite.log" 2>&1
        touch "$base/.debootstrap-done"
    fi
    echo "== $suite: Debian $(cat "$base/etc/debian_version")"
    for ((k = 1; k <= demo_runs; k++)); do
        prove "$suite" demo "demo $k of $demo_runs" "$dir/logs/$suite-demo-$k.log" ./examples/demo.sh
    done
    prove "$suite" tests tests "$dir/logs/$suite-tests.log" ./tests/run.sh
    unmount_all
    rm -rf "$dir/$suite-demo" "$dir/$suite-tests"
done
[ $status -eq 0 ] && echo "== debootstrap-check: both README commands passed on: $suites (demo $demo_runs times each)"
exit $status
