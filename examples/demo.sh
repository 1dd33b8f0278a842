#!/usr/bin/env bash
# Builds jobcache and runs the demo sweep twice: the second run computes nothing.
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
. "$top/.ci/deps.sh"
jc_install_deps
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$top/build" -j"$(nproc)" --target sweep >/dev/null
cd "$top/build"
echo "== first run: every call is computed"
./sweep 16 -1
echo "== second run: every call is a cache hit"
./sweep 16 -1
