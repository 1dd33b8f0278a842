#!/bin/sh
# Builds the benchmark driver of another commit (by default the previous
# release, 0.1.0: commit 24c2234, named by its hash because tags do not
# travel with a clone), with today's bench/bench.c (the workloads it has in
# common are the same code), for bench/run.py --baseline and
# bench/callgrind.py --against. Prints the binary's path.
#     bench/baseline.sh [DIR [COMMIT]]     (default: /tmp/jobcache-baseline 24c2234)
set -eu
top="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-/tmp/jobcache-baseline}"
commit="${2:-24c2234}"
rm -rf "$dir"
mkdir -p "$dir/src"
git -C "$top" archive "$commit" | tar -x -C "$dir/src"
cp "$top/bench/bench.c" "$dir/src/bench/bench.c"
cmake -S "$dir/src" -B "$dir/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DJOBCACHE_BUILD_TESTS=OFF \
      -DJOBCACHE_BUILD_EXAMPLES=OFF -DJOBCACHE_BUILD_TOOLS=OFF -DBUILD_SHARED_LIBS=OFF >/dev/null
cmake --build "$dir/build" --target jobcache_bench -j"$(nproc)" >/dev/null
echo "$dir/build/jobcache_bench"
