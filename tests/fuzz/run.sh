#!/usr/bin/env bash
# Fuzzes each libFuzzer harness of tests/fuzz for SECONDS (default 60), JOBS
# harnesses at a time (default 1), each one process (-jobs=1 -workers=1), starting
# from the seed corpus. New inputs go to a scratch corpus under the build
# directory, never into the repository; a crash stops the script with the
# input saved as build-fuzz/artifacts/NAME-crash-* (add it to
# corpus/NAME/ once fixed, so that ctest replays it).
#
# Usage: tests/fuzz/run.sh [SECONDS] [HARNESS...]    (needs clang and
# libclang-rt-dev, Debian's default clang; BUILD_DIR overrides build-fuzz)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/../.." && pwd)"
seconds="${1:-60}"
shift || true
build="${BUILD_DIR:-$top/build-fuzz}"

cmake -S "$top" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DJOBCACHE_FUZZ=ON -DJOBCACHE_WERROR=ON -DBUILD_SHARED_LIBS=OFF -DJOBCACHE_BUILD_TESTS=OFF \
      -DJOBCACHE_BUILD_TOOLS=OFF -DJOBCACHE_BUILD_EXAMPLES=OFF -DJOBCACHE_BUILD_BENCH=OFF >/dev/null
if [ $# -gt 0 ]; then
    harnesses=("$@")
else
    mapfile -t harnesses < "$build/tests/fuzz/fuzzers.txt"
fi
targets=()
for h in "${harnesses[@]}"; do targets+=("fuzz_$h"); done
cmake --build "$build" -j"${JOBS:-1}" --target "${targets[@]}"

mkdir -p "$build/artifacts"
# One harness: its own working directory (libFuzzer's -jobs=1 writes
# fuzz-0.log there), its log kept as $build/fuzz-NAME.log; prints its last
# line of progress, and what a crash said; fails on a crash.
fuzz_one() {
    local h="$1" work="$build/corpus/$1" run="$build/run-$1" log="$build/fuzz-$1.log" rc=0
    mkdir -p "$work" "$run"
    echo "== fuzz $h for ${seconds}s"
    if (cd "$run" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$build/tests/fuzz/fuzz_$h" -jobs=1 -workers=1 -max_total_time="$seconds" -timeout=10 \
            -rss_limit_mb=2048 -max_len=65536 -artifact_prefix="$build/artifacts/$h-" \
            "$work" "$here/corpus/$h" >/dev/null 2>&1); then
        :
    else
        rc=1
    fi
    mv -f "$run/fuzz-0.log" "$log" 2>/dev/null || true
    grep -E "^#[0-9]+.*(DONE|pulse|NEW)" "$log" | tail -1 || true
    if grep -qE "ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|fuzz check failed|deadly signal" "$log"; then
        echo "!! $h: crash; see $log and $build/artifacts/"
        awk '/ERROR|runtime error|fuzz check|SUMMARY|Test unit written/ && n++ < 20' "$log"
        rc=1
    fi
    return $rc
}

# JOBS harnesses at a time, each one process; their reports in order.
status=0
per="${JOBS:-1}"
for ((i = 0; i < ${#harnesses[@]}; i += per)); do
    pids=()
    for h in "${harnesses[@]:i:per}"; do
        fuzz_one "$h" >"$build/fuzz-$h.out" 2>&1 &
        pids+=("$!")
    done
    k=0
    for h in "${harnesses[@]:i:per}"; do
        wait "${pids[$k]}" || status=1
        cat "$build/fuzz-$h.out"
        k=$((k + 1))
    done
done
exit $status
