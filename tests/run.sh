#!/usr/bin/env bash
# The test command of README.md (and of .ci/run): installs what is missing,
# builds jobcache with -Wall -Wextra -Werror and runs the test suite plainly,
# under AddressSanitizer + UndefinedBehaviorSanitizer, and built without MPI;
# then fuzzes each libFuzzer harness briefly (JC_FUZZ_SECONDS, default 10;
# tests/fuzz/run.sh SECONDS is the long run) and runs the benchmarks at smoke
# size. Prints a line per step; each step's whole output is in
# build-test-logs/, and a failing step prints its end (a failing test, its
# output).
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
cd "$top"
export JC_LOG_DIR="$top/build-test-logs"
. "$top/.ci/deps.sh"
rm -rf "$JC_LOG_DIR"
mkdir -p "$JC_LOG_DIR"
logs="${JC_LOG_DIR#"$top"/}"
jobs="$(nproc)"
start=$SECONDS

jc_install_deps python3 python3-joblib python3-numpy sqlite3 jq \
    python3-msgpack python3-pytest python3-pandas python3-matplotlib python3-xxhash python3-zstandard tmux locales \
    python3-pip python3-setuptools python3-wheel bash-completion \
    openmpi-bin libopenmpi-dev postgresql python3-psycopg iproute2

# ctest_step NAME DIR [CTEST ARGS...]: runs the tests of build DIR; prints
# ctest's summary, and for a failure the output of each failing test (ctest
# --output-on-failure prints it under the test's status line) and the list.
ctest_step() {
    local name="$1" dir="$2" log="$JC_LOG_DIR/$1-tests.log" rc=0
    shift 2
    echo "$name: running the tests (log: $logs/$name-tests.log)" >&2
    (cd "$dir" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --output-on-failure -j"$jobs" "$@") >"$log" 2>&1 || rc=$?
    if [ $rc -ne 0 ]; then
        echo "!! $name: tests failed; their output:" >&2
        awk '/^ *[0-9]+\/[0-9]+ Test +#/ { show = ($0 !~ / Passed / && $0 !~ /Not Run|Skipped/) }
             show && n++ < 400 { print }' "$log" >&2
        awk '/tests passed|The following tests FAILED/ { on = 1 } on { print }' "$log" >&2
        return $rc
    fi
    grep -E '^[0-9]+% tests passed|^Total Test time' "$log" | sed 's/^/    /' >&2 || true
}

build_step() {
    local name="$1" dir="$2"
    shift 2
    jc_step "$name: configuring and building in ${dir#"$top"/}" "$JC_LOG_DIR/$name-build.log" \
        bash -c 'cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DJOBCACHE_WERROR=ON "${@:4}" &&
                 cmake --build "$2" -j"$3"' _ "$top" "$dir" "$jobs" "$@"
}

build_step plain "$top/build-test-plain" -DJOBCACHE_SANITIZE=OFF
ctest_step plain "$top/build-test-plain"
build_step sanitize "$top/build-test-sanitize" -DJOBCACHE_SANITIZE=ON
ctest_step sanitize "$top/build-test-sanitize"

# The library built without MPI (JOBCACHE_MPI=OFF) builds whole; test_mpi
# then checks that jc_mpi_init refuses a job of several ranks, and the tests
# of what differs without MPI run (the rest is the same code as plain's).
build_step nompi "$top/build-test-nompi" -DJOBCACHE_MPI=OFF
ctest_step nompi "$top/build-test-nompi" -R '^(test_mpi.*|test_run|test_memo|consumer|exported_symbols)$'


# Each libFuzzer harness briefly, when clang and its fuzzer runtime can be
# had: Debian's default clang and its libclang-rt-dev (clang 14 on bookworm,
# 19 on trixie). The corpus was replayed by ctest above either way.
if jc_apt_offers libclang-rt-dev || jc_pkg_installed libclang-rt-dev; then
    jc_install_deps clang libclang-rt-dev || true
fi
if command -v clang >/dev/null 2>&1 && jc_pkg_installed libclang-rt-dev; then
    jc_step "fuzz: each harness for ${JC_FUZZ_SECONDS:-10} s" "$JC_LOG_DIR/fuzz.log" \
        env JOBS="$jobs" "$top/tests/fuzz/run.sh" "${JC_FUZZ_SECONDS:-10}"
else
    echo "fuzz: skipped (clang or libclang-rt-dev missing)" >&2
fi

# A smoke-sized run of the benchmarks (bench/run.py without --smoke writes BENCHMARKS.md).
jc_step "benchmark smoke" "$JC_LOG_DIR/bench.log" \
    /usr/bin/python3 "$top/bench/run.py" --bench "$top/build-test-plain/jobcache_bench" --smoke
jc_step "pipeline benchmark smoke" "$JC_LOG_DIR/bench-pipeline.log" \
    /usr/bin/python3 "$top/bench/pipeline.py" --bench "$top/build-test-plain/jobcache_bench_pipeline" --smoke
jc_step "server benchmark smoke" "$JC_LOG_DIR/bench-pg.log" \
    /usr/bin/python3 "$top/bench/pg.py" --bench "$top/build-test-plain/jobcache_bench" --smoke
echo "tests: all passed in $((SECONDS - start)) s" >&2
