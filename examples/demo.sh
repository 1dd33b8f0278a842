#!/usr/bin/env bash
# The demo of README.md: installs what is missing (Debian packages), builds
# jobcache (the library, the demo sweep and the `jobcache` command), runs the
# sweep twice (the second run computes nothing), shows the cache's figures and
# plots the sweep from its cache with the Python reader. Installing and
# building print a line each; their whole output is in build/logs/, and a
# failing step prints its end.
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
cd "$top"
export JC_LOG_DIR="$top/build/logs"
. "$top/.ci/deps.sh"
jc_install_deps python3 python3-msgpack python3-pandas python3-matplotlib python3-xxhash python3-zstandard
jc_step "building jobcache in build/" "$JC_LOG_DIR/build.log" \
    bash -c 'cmake -S "$1" -B "$1/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
             cmake --build "$1/build" -j"$(nproc)" --target sweep jobcache_tool' _ "$top"
cd "$top/build"
rm -f jobcache.db jobcache.db-wal jobcache.db-shm
echo
echo "== first run: every call is computed"
./sweep 16 -1
echo
echo "== second run: every call is a cache hit"
./sweep 16 -1
echo
echo "== the cache, seen by the jobcache command (build/jobcache)"
./jobcache stats
echo
# The system's python3 (not one of pyenv or conda earlier on PATH): the one
# Debian's python3-* packages are for.
echo "== the plot, drawn from the cache by the Python reader (python/jobcache)"
/usr/bin/python3 "$top/examples/plot_sweep.py" jobcache.db -o "$top/build/sweep.png"
echo "to draw it again: python3 examples/plot_sweep.py build/jobcache.db -o build/sweep.png"
