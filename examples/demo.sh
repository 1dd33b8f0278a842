#!/usr/bin/env bash
# Builds jobcache (the library, the demo and the `jobcache` command) and runs
# the demo sweep twice: the second run computes nothing. Then plots the sweep
# from its cache when Python's msgpack, pandas and matplotlib are installed,
# and says how to otherwise.
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
. "$top/.ci/deps.sh"
jc_install_deps
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$top/build" -j"$(nproc)" --target sweep jobcache_tool >/dev/null
cd "$top/build"
echo "== first run: every call is computed"
./sweep 16 -1
echo "== second run: every call is a cache hit"
./sweep 16 -1
echo "== the cache, seen by the jobcache command ($top/build/jobcache)"
./jobcache stats | head -3

# The system's python3 (not one of pyenv or conda earlier on PATH): the one
# Debian's python3-* packages are for.
py=/usr/bin/python3
[ -x "$py" ] || py=python3
plot="$py $top/examples/plot_sweep.py $top/build/jobcache.db -o $top/build/sweep.png"
echo "== plot"
if "$py" -c 'import msgpack, pandas, matplotlib' 2>/dev/null; then
    $plot >/dev/null
    echo "wrote $top/build/sweep.png (as docs/sweep.png); to draw it again:"
else
    echo "to plot the sweep (as docs/sweep.png), install python3-msgpack python3-pandas python3-matplotlib, then run:"
fi
echo "  $plot"
