#!/bin/sh
# Builds the benchmark driver of the previous release (v0.1.0) from its tag,
# with today's bench/bench.c (the workloads it has in common are the same
# code), for bench/run.py --baseline. Prints the binary's path.
#     bench/baseline.sh [DIR]      (default: /tmp/jobcache-baseline)
set -eu
top="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-/tmp/jobcache-baseline}"
rm -rf "$dir"
git -C "$top" worktree add -f --detach "$dir/src" v0.1.0 >/dev/null 2>&1 ||
    { mkdir -p "$dir/src" && git -C "$top" archive v0.1.0 | tar -x -C "$dir/src"; }
cmake -S "$dir/src" -B "$dir/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DJOBCACHE_BUILD_TESTS=OFF >/dev/null
cmake --build "$dir/build" --target jobcache_static -j"$(nproc)" >/dev/null
cc -std=c11 -O2 -g -I"$dir/src/include" "$top/bench/bench.c" "$dir/build/libjobcache.a" \
    $(pkg-config --libs sqlite3 libxxhash) $(pkg-config --libs msgpack 2>/dev/null || pkg-config --libs msgpack-c) -lpthread -lm \
    -o "$dir/jobcache_bench"
echo "$dir/jobcache_bench"
