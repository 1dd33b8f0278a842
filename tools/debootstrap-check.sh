#!/usr/bin/env bash
# Proves the README's two commands on a fresh Debian: debootstraps a minimal
# system (trixie by default) into a folder, copies the working tree into it
# and runs, inside a chroot, ./examples/demo.sh and ./tests/run.sh, which
# install what they need with apt-get.
#
#   sudo tools/debootstrap-check.sh [DIR [SUITE [MIRROR]]]
#
# DIR defaults to /var/tmp/jobcache-trixie, SUITE to trixie, MIRROR to
# http://deb.debian.org/debian. Needs root, debootstrap, network access, about
# 2 GB and some minutes; run by hand, not by .ci/run. An existing DIR with a
# finished debootstrap is reused (only the tree is copied again).
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-/var/tmp/jobcache-trixie}"
suite="${2:-trixie}"
mirror="${3:-http://deb.debian.org/debian}"

[ "$(id -u)" -eq 0 ] || { echo "debootstrap-check: run as root (debootstrap and chroot need it)" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "debootstrap-check: apt-get install debootstrap" >&2; exit 2; }

mounted=()
cleanup() {
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT

if [ ! -x "$dir/usr/bin/apt-get" ] || [ ! -f "$dir/.debootstrap-done" ]; then
    echo "== debootstrap $suite into $dir"
    mkdir -p "$dir"
    debootstrap --variant=minbase --include=ca-certificates,sudo "$suite" "$dir" "$mirror"
    touch "$dir/.debootstrap-done"
fi
echo "== $(cat "$dir/etc/debian_version") in $dir"

for m in proc sys dev dev/pts; do
    mkdir -p "$dir/$m"
    case $m in
        proc) mount -t proc proc "$dir/proc" ;;
        sys) mount -t sysfs sys "$dir/sys" ;;
        *) mount --bind "/$m" "$dir/$m" ;;
    esac
    mounted+=("$dir/$m")
done
cp /etc/resolv.conf "$dir/etc/resolv.conf"

# The working tree as it is (committed or not), without build folders.
rm -rf "$dir/src/jobcache"
mkdir -p "$dir/src/jobcache"
tar -C "$top" --exclude='./build*' --exclude='./.git' --exclude='*.db' --exclude='*.db-*' -cf - . |
    tar -C "$dir/src/jobcache" -xf -

run() {
    echo "== chroot: $*"
    chroot "$dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        /bin/bash -c "cd /src/jobcache && $*"
}
run ./examples/demo.sh
run ./tests/run.sh
echo "== debootstrap-check: both README commands passed on $suite ($(cat "$dir/etc/debian_version"))"
