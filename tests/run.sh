#!/usr/bin/env bash
# Builds jobcache with -Wall -Wextra -Werror and runs the test suite twice:
# once plainly, once under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
. "$top/.ci/deps.sh"
jc_install_deps python3 python3-joblib python3-numpy sqlite3 jq \
    python3-msgpack python3-pytest python3-pandas python3-matplotlib python3-xxhash tmux \
    openmpi-bin libopenmpi-dev
jobs="$(nproc)"
for variant in plain sanitize; do
    dir="$top/build-test-$variant"
    san=OFF
    [ "$variant" = sanitize ] && san=ON
    echo "== $variant build"
    cmake -S "$top" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DJOBCACHE_WERROR=ON \
          -DJOBCACHE_SANITIZE="$san" >/dev/null
    cmake --build "$dir" -j"$jobs"
    echo "== $variant tests"
    (cd "$dir" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --output-on-failure -j"$jobs")
done

# The library built without MPI (JOBCACHE_MPI=OFF) builds and passes as
# before; test_mpi then checks that jc_mpi_init refuses a job of several ranks.
echo "== build without MPI"
dir="$top/build-test-nompi"
cmake -S "$top" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DJOBCACHE_WERROR=ON -DJOBCACHE_MPI=OFF >/dev/null
cmake --build "$dir" -j"$jobs"
echo "== tests without MPI"
(cd "$dir" && ctest --output-on-failure -j"$jobs")

# Each libFuzzer harness for 60 s (tests/fuzz/run.sh), when clang and its
# fuzzer runtime can be had; the corpus replay ran in ctest above either way.
echo "== fuzz"
jc_install_deps clang libclang-rt-14-dev || true
if command -v clang >/dev/null 2>&1 && dpkg-query -W -f='${Status}' libclang-rt-14-dev 2>/dev/null | grep -q "install ok installed"; then
    JOBS="$jobs" "$top/tests/fuzz/run.sh" 60
else
    echo "fuzz: skipped (clang or libclang-rt-14-dev missing)"
fi

# A smoke-sized run of the benchmarks (bench/run.py without --smoke writes BENCHMARKS.md).
echo "== benchmark smoke"
/usr/bin/python3 "$top/bench/run.py" --bench "$top/build-test-plain/jobcache_bench" --smoke
