#!/bin/sh
# Issue 16, items 6 and 7, on a cache of many tiny entries (not run in CI:
# making 2,000,000 entries takes a minute or two and 280 MB of disk).
#
#   bench/bigcache.sh BUILD-DIR [N] [DIR]
#
# BUILD-DIR is a jobcache build tree (its libjobcache.a and jobcache);
# run it with the build of an older commit too to compare. It makes DIR/big.jobcache
# with N entries (default 2000000) unless it exists, then measures:
#   - `jobcache ls | head -1`: wall time and peak RSS (/usr/bin/time -v; the
#     RSS includes the pages of the file SQLite maps, up to 256 MiB) and the
#     peak anonymous memory (RssAnon, polled);
#   - five one-call runs (each a miss) with max_size far above the file's size.
set -eu
build=$(cd "$1" && pwd)
n=${2:-2000000}
dir=${3:-/tmp/jobcache-bigcache}
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$dir"
cc -O2 -I"$src/include" "$src/bench/bigcache.c" "$build/libjobcache.a" \
   $(pkg-config --libs sqlite3 libxxhash msgpack) \
   $(pkg-config --libs libelf capstone 2>/dev/null || true) -lpthread -lm -o "$dir/bigcache"
[ -f "$dir/big.jobcache" ] || "$dir/bigcache" make "$dir/big.jobcache" "$n"

echo "== jobcache ls | head -1"
/usr/bin/time -v "$build/jobcache" ls "$dir/big.jobcache" 2>"$dir/time.txt" | head -1 >/dev/null
grep -E "Elapsed|Maximum resident" "$dir/time.txt"
"$build/jobcache" ls "$dir/big.jobcache" | head -1 >/dev/null &
sleep 0.01
pid=$(pgrep -n -f "$build/jobcache ls $dir/big.jobcache" || true)
peak=0
while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; do
    a=$(awk '/RssAnon/{print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ -n "$a" ] && [ "$a" -gt "$peak" ] && peak=$a
    sleep 0.01
done
wait
echo "peak anonymous memory: $peak kB"

echo "== one-call runs with max_size = 100G"
"$dir/bigcache" run1 "$dir/big.jobcache" 100G
