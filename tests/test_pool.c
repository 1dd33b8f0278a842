/*
 * Tests of the worker pools (src/exec/fork.c, src/exec/threads.c) through the
 * public interface: the same results whatever the backend, failures reported
 * per call and naming the call (an error, a signal, exit(), a timeout, the
 * memory limit), stop versus continue on error, many tiny calls, workers
 * reading the caller's memory in place, callbacks, workers that cannot be
 * started, the program's own crash handlers, and no child process or file
 * descriptor left behind.
 *
 * Every test ends with assert_clean(): no child is left unreaped and no
 * descriptor leaked. That check is only valid because this test process
 * starts no child of its own.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jobcache.h>

#include "testutil.h"

#define PATH_CAP 4096

/* ---- helpers ---- */

static void sleep_seconds(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* No child left unreaped (this process starts none of its own) and as many
 * descriptors open as before the test. */
static void assert_clean(int fds_before)
{
    errno = 0;
    pid_t r = waitpid(-1, NULL, WNOHANG);
    if (r != -1 || errno != ECHILD)
        print_error("a child process is left behind: waitpid(-1, WNOHANG) = %d (%s)\n", (int)r,
                    strerror(errno));
    assert_int_equal(r, -1);
    assert_int_equal(errno, ECHILD);
    int fds = count_fds();
    if (fds != fds_before)
        print_error("descriptors open: %d before, %d after\n", fds_before, fds);
    assert_int_equal(fds, fds_before);
}

/* A disabled cache: nothing is looked up or stored, every call computes. */
static jc_cache *open_disabled(void)
{
    jc_cache *c = jc_cache_open(NULL, &(jc_cache_options){.flags = JC_CACHE_DISABLED});
    if (!c)
        print_error("jc_cache_open(disabled): %s\n", jc_errmsg());
    assert_non_null(c);
    return c;
}

/* A fresh cache file named name in the scratch directory. */
static jc_cache *open_fresh(char *path, const char *name)
{
    jc_test_path(path, PATH_CAP, name);
    jc_cache *c = jc_cache_open(path, NULL);
    if (!c)
        print_error("jc_cache_open('%s'): %s\n", path, jc_errmsg());
    assert_non_null(c);
    return c;
}

static jc_batch *new_batch(jc_cache *c, jc_options o)
{
    o.verbose = JC_VERBOSE_OFF;
    jc_batch *b = jc_batch_new(c, &o);
    if (!b)
        print_error("jc_batch_new: %s\n", jc_errmsg());
    assert_non_null(b);
    return b;
}

/* Workers keep the crash handlers the program installed, and during a test
 * cmocka has its own on SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGSYS (it
 * jumps back into its test runner: in a worker, the rest of the test suite
 * would run there). The runs of this file, which crash workers on purpose,
 * go with the default dispositions; cmocka's come back after. */
static jc_results *run_pool(jc_batch *b)
{
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS};
    enum { NSIGS = sizeof sigs / sizeof sigs[0] };
    struct sigaction dfl = {.sa_handler = SIG_DFL}, old[NSIGS];
    sigemptyset(&dfl.sa_mask);
    for (int k = 0; k < NSIGS; k++)
        sigaction(sigs[k], &dfl, &old[k]);
    jc_results *r = jc_run(b);
    for (int k = 0; k < NSIGS; k++)
        sigaction(sigs[k], &old[k], NULL);
    return r;
}

static jc_results *run_ok(jc_batch *b)
{
    jc_results *r = run_pool(b);
    if (!r)
        print_error("jc_run: %s\n", jc_errmsg());
    assert_non_null(r);
    return r;
}

static void expect_status(const jc_results *r, size_t k, jc_status want)
{
    jc_status got = jc_result_status(r, k);
    if (got != want)
        print_error("result %zu: expected %s, got %s (%s)\n", k, jc_status_name(want), jc_status_name(got),
                    jc_result_error(r, k) ? jc_result_error(r, k) : "no message");
    assert_int_equal(got, want);
}

static void expect_int(const jc_results *r, size_t k, int64_t want)
{
    expect_status(r, k, JC_STATUS_OK);
    int64_t got = 0;
    assert_int_equal(jc_value_get_int(jc_result_value(r, k), &got), 0);
    if (got != want)
        print_error("result %zu: expected %lld, got %lld\n", k, (long long)want, (long long)got);
    assert_int_equal(got, want);
}

/* ---- cacheable functions ---- */

/* A result of a different shape for each i % 5, as a test can also build it. */
static jc_value *mixed_expected(int64_t i, int64_t scale)
{
    char text[64];
    switch (i % 5) {
    case 0:
        return jc_int(i * i * scale - 7);
    case 1:
        return jc_double((double)i / 3.0 * (double)scale);
    case 2:
        snprintf(text, sizeof text, "value-%lld-%lld", (long long)i, (long long)scale);
        return jc_str(text);
    case 3:
        snprintf(text, sizeof text, "m%lld", (long long)i);
        return jc_map(jc_kw("i", jc_int(i)), jc_kw("half", jc_double((double)i * 0.5)), jc_kw("tag", jc_str(text)),
                      jc_kw("list", jc_list(jc_int(-i), jc_double(1.0 / (double)(i + 1)), jc_null(), jc_bool(i & 1))));
    default: {
        double d[3] = {(double)i, (double)i + 0.5, -(double)i * (double)scale};
        return jc_doubles(d, 3);
    }
    }
}

static int mixed(jc_call *call)
{
    int64_t i = jc_arg_int(call, 0);
    int64_t scale = jc_kwarg_int(call, "scale");
    return jc_return(call, mixed_expected(i, scale));
}
JC_FUNCTION(mixed, "v1");

static int fail_on_13(jc_call *call)
{
    int64_t i = jc_arg_int(call, 0);
    if (i == 13)
        return jc_fail(call, "refused the unlucky number %lld", (long long)i);
    return jc_return_int(call, i + 1000);
}
JC_FUNCTION(fail_on_13, "v1");

static int crash_some(jc_call *call)
{
    int64_t i = jc_arg_int(call, 0);
    if (i == 3)
        raise(SIGSEGV);
    if (i == 7)
        abort();
    if (i == 11)
        raise(SIGKILL);
    return jc_return_int(call, i * 2);
}
JC_FUNCTION(crash_some, "v1");

static int exit_three(jc_call *call)
{
    int64_t i = jc_arg_int(call, 0);
    if (i == 5) {
#ifdef __SANITIZE_ADDRESS__
        /* exit() would run LeakSanitizer's exit-time check in the worker,
         * which reports the pool's memory and exits with status 1. */
        _exit(3);
#else
        exit(3);
#endif
    }
    return jc_return_int(call, i * 5);
}
JC_FUNCTION(exit_three, "v1");

static int always_crash(jc_call *call)
{
    (void)jc_arg_int(call, 0);
    raise(SIGSEGV);
    return jc_return_int(call, 0);
}
JC_FUNCTION(always_crash, "v1");

static int sleepy(jc_call *call)
{
    int64_t i = jc_arg_int(call, 0);
    if (i == 2)
        sleep_seconds(30);
    return jc_return_int(call, i * 7);
}
JC_FUNCTION(sleepy, "v1");

static int slow_fail(jc_call *call)
{
    int64_t i = jc_arg_int(call, 0);
    sleep_seconds(0.001);
    if (i == 20)
        return jc_fail(call, "step %lld diverged", (long long)i);
    return jc_return_int(call, i * 11);
}
JC_FUNCTION(slow_fail, "v1");

static int tiny(jc_call *call)
{
    return jc_return_int(call, jc_arg_int(call, 0) * 31 + jc_arg_int(call, 1));
}
JC_FUNCTION(tiny, "v1");

/* Filled by the test at run time, after the program started and before
 * jc_run: a worker can only see it if it shares the caller's memory. */
enum { TABLE_N = 1 << 20 };
static double table[TABLE_N];

static int table_lookup(jc_call *call)
{
    int64_t idx = jc_arg_int(call, 0);
    if (idx < 0 || idx >= TABLE_N)
        return jc_fail(call, "index %lld out of range", (long long)idx);
    return jc_return_double(call, table[idx]);
}
JC_FUNCTION(table_lookup, "v1");

static int sum_doubles(jc_call *call)
{
    size_t n = 0;
    const double *d = jc_arg_doubles(call, 0, &n);
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += d[i];
    return jc_return(call, jc_list(jc_double(s), jc_int((int64_t)n)));
}
JC_FUNCTION(sum_doubles, "v1");

/* Allocates 1 GiB for i == 1: touching it unchecked (crash) or checking. */
static int hog_touch(jc_call *call)
{
    int64_t i = jc_arg_int(call, 0);
    if (i == 1) {
        size_t n = (size_t)1 << 30;
        char *volatile p = malloc(n);
        memset(p, 1, n);
        int64_t sum = p[n - 1] + p[12345];
        free(p);
        return jc_return_int(call, sum);
    }
    return jc_return_int(call, i + 1);
}
JC_FUNCTION(hog_touch, "v1");

static int hog_check(jc_call *call)
{
    int64_t i = jc_arg_int(call, 0);
    if (i == 1) {
        size_t n = (size_t)1 << 30;
        char *volatile p = malloc(n);
        if (!p)
            return jc_fail(call, "out of memory allocating %zu bytes", n);
        memset(p, 1, n);
        int64_t sum = p[n - 1];
        free(p);
        return jc_return_int(call, sum);
    }
    return jc_return_int(call, i + 1);
}
JC_FUNCTION(hog_check, "v1");

static int napper(jc_call *call)
{
    int64_t i = jc_arg_int(call, 0);
    sleep_seconds(i == 0 ? 0.3 : 0.002);
    return jc_return_int(call, i * 3 + 1);
}
JC_FUNCTION(napper, "v1");

static int crash_at_500(jc_call *call)
{
    int64_t i = jc_arg_int(call, 0);
    if (i == 500)
        raise(SIGSEGV);
    return jc_return_int(call, i * 13 + 1);
}
JC_FUNCTION(crash_at_500, "v1");

static int sleepy_at_150(jc_call *call)
{
    int64_t i = jc_arg_int(call, 0);
    if (i == 150)
        sleep_seconds(30);
    return jc_return_int(call, i * 17 + 2);
}
JC_FUNCTION(sleepy_at_150, "v1");

/* A big result: n doubles, value i + k. */
static int big_result(jc_call *call)
{
    int64_t i = jc_arg_int(call, 0);
    size_t n = (size_t)jc_arg_int(call, 1);
    double *d = malloc((n ? n : 1) * sizeof *d);
    if (!d)
        return jc_fail(call, "out of memory");
    for (size_t k = 0; k < n; k++)
        d[k] = (double)i + (double)k;
    jc_value *v = jc_doubles(d, n);
    free(d);
    return jc_return(call, v);
}
JC_FUNCTION(big_result, "v1");

/* Prints a line per call on stdout. */
static int talk(jc_call *call)
{
    int64_t i = jc_arg_int(call, 0);
    printf("talk says %lld\n", (long long)i);
    return jc_return_int(call, i);
}
JC_FUNCTION(talk, "v1");

/* For i == 4: a result nested deeper than the codec allows. */
static int too_deep(jc_call *call)
{
    int64_t i = jc_arg_int(call, 0);
    if (i != 4)
        return jc_return_int(call, i);
    jc_value *v = jc_int(i);
    for (int d = 0; d < 40; d++)
        v = jc_list(v);
    return jc_return(call, v);
}
JC_FUNCTION(too_deep, "v1");

/* Returns [i, the pid of the process that ran it]; i == 40 kills its worker. */
static int pid_or_die(jc_call *call)
{
    int64_t i = jc_arg_int(call, 0);
    sleep_seconds(0.005);
    if (i == 40)
        raise(SIGKILL);
    return jc_return(call, jc_list(jc_int(i), jc_int((int64_t)getpid())));
}
JC_FUNCTION(pid_or_die, "v1");

/* i == 2 raises SIGSEGV. */
static int segv_at_2(jc_call *call)
{
    int64_t i = jc_arg_int(call, 0);
    if (i == 2)
        raise(SIGSEGV);
    return jc_return_int(call, i + 40);
}
JC_FUNCTION(segv_at_2, "v1");

/* Allocates and touches 16 MiB. */
static int alloc_16m(jc_call *call)
{
    int64_t i = jc_arg_int(call, 0);
    size_t n = (size_t)16 << 20;
    char *volatile p = malloc(n);
    if (!p)
        return jc_fail(call, "out of memory allocating %zu bytes", n);
    memset(p, (int)i, n);
    int64_t last = p[n - 1];
    free(p);
    return jc_return_int(call, last + i);
}
JC_FUNCTION(alloc_16m, "v1");

/* ---- same results everywhere ---- */

enum { MIXED_N = 500 };

static void run_mixed(jc_options o, const char *label)
{
    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, o);
    for (int64_t i = 0; i < MIXED_N; i++)
        assert_int_equal(jc_delayed(b, mixed, jc_int(i), jc_kw("scale", jc_int(3))), 0);
    jc_results *r = run_ok(b);
    if (jc_results_status(r) != JC_OK)
        print_error("%s: %s\n", label, jc_results_message(r));
    assert_int_equal(jc_results_status(r), JC_OK);
    assert_int_equal(jc_results_count(r), MIXED_N);
    jc_progress s = jc_results_summary(r);
    assert_int_equal(s.computed, MIXED_N);
    assert_int_equal(s.cached, 0);
    assert_int_equal(s.done, MIXED_N);
    for (size_t k = 0; k < MIXED_N; k++) {
        expect_status(r, k, JC_STATUS_OK);
        assert_false(jc_result_cached(r, k));
        jc_value *want = mixed_expected((int64_t)k, 3);
        assert_non_null(want);
        if (!jc_value_equal(jc_result_value(r, k), want)) {
            char *got = jc_value_format(jc_result_value(r, k), 0), *w = jc_value_format(want, 0);
            print_error("%s: result %zu is %s, expected %s\n", label, k, got, w);
            free(got);
            free(w);
            fail();
        }
        jc_value_free(want);
    }
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
}

static void pool_same_results_with_in_process_forked_and_threads_backends(void **state)
{
    (void)state;
    int fds = count_fds();
    run_mixed((jc_options){.n_jobs = 1}, "n_jobs = 1");
    run_mixed((jc_options){.n_jobs = 2}, "n_jobs = 2");
    run_mixed((jc_options){.n_jobs = -1, .backend = JC_BACKEND_AUTO}, "n_jobs = -1");
    run_mixed((jc_options){.n_jobs = 2, .backend = JC_BACKEND_FORK}, "fork, n_jobs = 2");
    run_mixed((jc_options){.n_jobs = 2, .backend = JC_BACKEND_THREADS}, "threads, n_jobs = 2");
    assert_clean(fds);
}

/* Results computed by workers, stored, then read back in-process: equal. */
static void pool_results_stored_by_workers_are_hits_for_an_in_process_rerun(void **state)
{
    (void)state;
    int fds = count_fds();
    char path[PATH_CAP];
    jc_cache *c = open_fresh(path, "pool-stored.jobcache");
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2});
    for (int64_t i = 0; i < 100; i++)
        jc_delayed(b, mixed, jc_int(i), jc_kw("scale", jc_int(5)));
    jc_results *r = run_ok(b);
    assert_int_equal(jc_results_status(r), JC_OK);
    assert_int_equal(jc_results_summary(r).computed, 100);
    jc_results_free(r);
    jc_batch_free(b);

    b = new_batch(c, (jc_options){.n_jobs = 1});
    for (int64_t i = 0; i < 100; i++)
        jc_delayed(b, mixed, jc_int(i), jc_kw("scale", jc_int(5)));
    r = run_ok(b);
    assert_int_equal(jc_results_status(r), JC_OK);
    assert_int_equal(jc_results_summary(r).cached, 100);
    for (size_t k = 0; k < 100; k++) {
        assert_true(jc_result_cached(r, k));
        jc_value *want = mixed_expected((int64_t)k, 5);
        assert_true(jc_value_equal(jc_result_value(r, k), want));
        jc_value_free(want);
    }
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
}

/* ---- failures ---- */

static void run_fail_on_13(jc_options o, const char *label)
{
    jc_cache *c = open_disabled();
    o.on_error = JC_ON_ERROR_CONTINUE;
    jc_batch *b = new_batch(c, o);
    for (int64_t i = 0; i < 40; i++)
        jc_delayed(b, fail_on_13, jc_int(i));
    jc_results *r = run_ok(b);
    assert_int_equal(jc_results_status(r), JC_EFAILED);
    assert_contains(jc_results_message(r), "fail_on_13(13)");
    for (size_t k = 0; k < 40; k++) {
        if (k == 13) {
            expect_status(r, k, JC_STATUS_ERROR);
            assert_null(jc_result_value(r, k));
            assert_contains(jc_result_error(r, k), "fail_on_13(13)");
            assert_contains(jc_result_error(r, k), "refused the unlucky number 13");
        } else {
            expect_int(r, k, (int64_t)k + 1000);
            assert_null(jc_result_error(r, k));
        }
    }
    jc_progress s = jc_results_summary(r);
    if (s.failed != 1 || s.computed != 39 || s.skipped != 0)
        print_error("%s: failed %zu, computed %zu, skipped %zu\n", label, s.failed, s.computed, s.skipped);
    assert_int_equal(s.failed, 1);
    assert_int_equal(s.computed, 39);
    assert_int_equal(s.skipped, 0);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
}

static void pool_function_error_fails_only_that_call(void **state)
{
    (void)state;
    int fds = count_fds();
    run_fail_on_13((jc_options){.n_jobs = 1}, "in-process");
    run_fail_on_13((jc_options){.n_jobs = 2}, "fork");
    run_fail_on_13((jc_options){.n_jobs = 2, .backend = JC_BACKEND_THREADS}, "threads");
    assert_clean(fds);
}

/* A failure is never stored: a rerun computes the failed call again. */
static void pool_failed_call_is_not_stored(void **state)
{
    (void)state;
    int fds = count_fds();
    char path[PATH_CAP];
    jc_cache *c = open_fresh(path, "pool-failed-not-stored.jobcache");
    for (int round = 0; round < 2; round++) {
        jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2, .on_error = JC_ON_ERROR_CONTINUE});
        for (int64_t i = 10; i < 16; i++)
            jc_delayed(b, fail_on_13, jc_int(i));
        jc_results *r = run_ok(b);
        expect_status(r, 3, JC_STATUS_ERROR);
        assert_false(jc_result_cached(r, 3));
        jc_progress s = jc_results_summary(r);
        assert_int_equal(s.cached, round == 0 ? 0 : 5);
        assert_int_equal(s.failed, 1);
        jc_results_free(r);
        jc_batch_free(b);
    }
    jc_cache_close(c);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), 5);
    assert_clean(fds);
}

static void pool_worker_killed_by_a_signal_names_the_signal_function_and_argument(void **state)
{
    (void)state;
    int fds = count_fds();
    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2, .on_error = JC_ON_ERROR_CONTINUE});
    for (int64_t i = 0; i < 20; i++)
        jc_delayed(b, crash_some, jc_int(i));
    jc_results *r = run_ok(b);
    assert_int_equal(jc_results_status(r), JC_EFAILED);
    for (size_t k = 0; k < 20; k++) {
        const char *msg = jc_result_error(r, k);
        if (k == 3) {
            expect_status(r, k, JC_STATUS_CRASHED);
            assert_contains(msg, "crash_some(3)");
            assert_contains(msg, "SIGSEGV");
        } else if (k == 7) {
            expect_status(r, k, JC_STATUS_CRASHED);
            assert_contains(msg, "crash_some(7)");
            assert_contains(msg, "SIGABRT");
        } else if (k == 11) {
            expect_status(r, k, JC_STATUS_CRASHED);
            assert_contains(msg, "crash_some(11)");
            assert_contains(msg, "SIGKILL");
        } else {
            expect_int(r, k, (int64_t)k * 2);
        }
    }
    jc_progress s = jc_results_summary(r);
    assert_int_equal(s.failed, 3);
    assert_int_equal(s.computed, 17);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
}

static void pool_worker_calling_exit_reports_its_exit_status(void **state)
{
    (void)state;
    int fds = count_fds();
    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2, .on_error = JC_ON_ERROR_CONTINUE});
    for (int64_t i = 0; i < 10; i++)
        jc_delayed(b, exit_three, jc_int(i));
    jc_results *r = run_ok(b);
    assert_int_equal(jc_results_status(r), JC_EFAILED);
    for (size_t k = 0; k < 10; k++) {
        if (k == 5) {
            expect_status(r, k, JC_STATUS_CRASHED);
            assert_contains(jc_result_error(r, k), "exit_three(5)");
            assert_contains(jc_result_error(r, k), "exited with status 3");
        } else {
            expect_int(r, k, (int64_t)k * 5);
        }
    }
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
}

static void pool_function_crashing_on_every_call_gives_one_crash_per_call_and_ends(void **state)
{
    (void)state;
    int fds = count_fds();
    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2, .on_error = JC_ON_ERROR_CONTINUE});
    for (int64_t i = 0; i < 20; i++)
        jc_delayed(b, always_crash, jc_int(i));
    double t0 = wall_now();
    jc_results *r = run_ok(b);
    assert_true(wall_now() - t0 < 20);
    if (jc_results_status(r) != JC_EFAILED)
        print_error("status %s: %s\n", jc_err_name(jc_results_status(r)), jc_results_message(r));
    assert_int_equal(jc_results_status(r), JC_EFAILED);
    for (size_t k = 0; k < 20; k++) {
        expect_status(r, k, JC_STATUS_CRASHED);
        char own[64];
        snprintf(own, sizeof own, "always_crash(%zu)", k);
        assert_contains(jc_result_error(r, k), own);
        assert_contains(jc_result_error(r, k), "SIGSEGV");
    }
    jc_progress s = jc_results_summary(r);
    assert_int_equal(s.failed, 20);
    assert_int_equal(s.done, 20);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
}

static void run_timeout(int n_jobs)
{
    int fds = count_fds();
    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = n_jobs, .on_error = JC_ON_ERROR_CONTINUE,
                                            .timeout_seconds = 0.5});
    for (int64_t i = 0; i < 8; i++)
        jc_delayed(b, sleepy, jc_int(i));
    double t0 = wall_now();
    jc_results *r = run_ok(b);
    double took = wall_now() - t0;
    if (took >= 10)
        print_error("n_jobs = %d: the run took %.1f s\n", n_jobs, took);
    assert_true(took < 10);
    assert_true(took >= 0.5);
    assert_int_equal(jc_results_status(r), JC_EFAILED);
    for (size_t k = 0; k < 8; k++) {
        if (k == 2) {
            expect_status(r, k, JC_STATUS_TIMEOUT);
            assert_contains(jc_result_error(r, k), "sleepy(2)");
            assert_contains(jc_result_error(r, k), "timed out after 0.5 s");
        } else {
            expect_int(r, k, (int64_t)k * 7);
        }
    }
    jc_progress s = jc_results_summary(r);
    assert_int_equal(s.failed, 1);
    assert_int_equal(s.computed, 7);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
}

static void pool_timeout_kills_the_late_call_and_keeps_the_others(void **state)
{
    (void)state;
    run_timeout(2);
}

static void pool_timeout_with_one_job_runs_calls_in_a_worker(void **state)
{
    (void)state;
    run_timeout(1);
}

/* ---- stop versus continue ---- */

enum { STOP_N = 200 };

static void pool_stop_on_error_skips_later_calls_and_keeps_finished_ones(void **state)
{
    (void)state;
    int fds = count_fds();
    char path[PATH_CAP];
    jc_cache *c = open_fresh(path, "pool-stop.jobcache");
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2}); /* on_error = STOP, the default */
    for (int64_t i = 0; i < STOP_N; i++)
        jc_delayed(b, slow_fail, jc_int(i));
    jc_results *r = run_ok(b);
    assert_int_equal(jc_results_status(r), JC_EFAILED);
    assert_contains(jc_results_message(r), "slow_fail(20)");
    bool was_ok[STOP_N];
    size_t ok = 0, errors = 0, skipped = 0;
    for (size_t k = 0; k < STOP_N; k++) {
        jc_status st = jc_result_status(r, k);
        was_ok[k] = st == JC_STATUS_OK;
        if (st == JC_STATUS_OK) {
            expect_int(r, k, (int64_t)k * 11);
            ok++;
        } else if (st == JC_STATUS_ERROR) {
            errors++;
        } else if (st == JC_STATUS_SKIPPED) {
            assert_contains(jc_result_error(r, k), "slow_fail");
            assert_contains(jc_result_error(r, k), "skipped");
            skipped++;
        } else {
            print_error("result %zu: unexpected status %s\n", k, jc_status_name(st));
            fail();
        }
    }
    expect_status(r, 20, JC_STATUS_ERROR);
    assert_contains(jc_result_error(r, 20), "slow_fail(20)");
    assert_contains(jc_result_error(r, 20), "step 20 diverged");
    assert_int_equal(errors, 1);
    if (skipped < STOP_N / 2)
        print_error("only %zu of %d calls skipped (%zu ok)\n", skipped, STOP_N, ok);
    assert_true(skipped > 0);
    assert_true(skipped >= STOP_N / 2); /* "mostly" */
    jc_progress s = jc_results_summary(r);
    assert_int_equal(s.skipped, skipped);
    assert_int_equal(s.computed, ok);
    assert_int_equal(s.failed, 1);
    jc_results_free(r);
    jc_batch_free(b);

    /* What finished before the stop was stored: those are hits now. */
    b = new_batch(c, (jc_options){.n_jobs = 2, .on_error = JC_ON_ERROR_CONTINUE});
    for (int64_t i = 0; i < STOP_N; i++)
        jc_delayed(b, slow_fail, jc_int(i));
    r = run_ok(b);
    s = jc_results_summary(r);
    assert_int_equal(s.cached, ok);
    assert_int_equal(s.skipped, 0);
    assert_int_equal(s.failed, 1);
    assert_int_equal(s.computed, STOP_N - 1 - ok);
    for (size_t k = 0; k < STOP_N; k++) {
        if (k == 20) {
            expect_status(r, k, JC_STATUS_ERROR);
            continue;
        }
        expect_int(r, k, (int64_t)k * 11);
        if (jc_result_cached(r, k) != was_ok[k])
            print_error("result %zu: ok in the first run %d, hit in the rerun %d\n", k, was_ok[k],
                        jc_result_cached(r, k));
        assert_int_equal(jc_result_cached(r, k), was_ok[k]);
    }
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
}

/* In-process the order is the plain loop's: everything after the failure is
 * skipped, everything before it is ok. */
static void pool_stop_on_error_in_process_skips_exactly_the_calls_after_it(void **state)
{
    (void)state;
    int fds = count_fds();
    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 1});
    for (int64_t i = 0; i < 40; i++)
        jc_delayed(b, slow_fail, jc_int(i));
    jc_results *r = run_ok(b);
    assert_int_equal(jc_results_status(r), JC_EFAILED);
    for (size_t k = 0; k < 40; k++) {
        if (k < 20)
            expect_int(r, k, (int64_t)k * 11);
        else if (k == 20)
            expect_status(r, k, JC_STATUS_ERROR);
        else
            expect_status(r, k, JC_STATUS_SKIPPED);
    }
    jc_progress s = jc_results_summary(r);
    assert_int_equal(s.skipped, 19);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
}

static void pool_continue_on_error_runs_every_call(void **state)
{
    (void)state;
    int fds = count_fds();
    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2, .on_error = JC_ON_ERROR_CONTINUE});
    for (int64_t i = 0; i < STOP_N; i++)
        jc_delayed(b, slow_fail, jc_int(i));
    jc_results *r = run_ok(b);
    assert_int_equal(jc_results_status(r), JC_EFAILED);
    for (size_t k = 0; k < STOP_N; k++) {
        if (k == 20)
            expect_status(r, k, JC_STATUS_ERROR);
        else
            expect_int(r, k, (int64_t)k * 11);
    }
    jc_progress s = jc_results_summary(r);
    assert_int_equal(s.skipped, 0);
    assert_int_equal(s.failed, 1);
    assert_int_equal(s.computed, STOP_N - 1);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
}

/* ---- many tiny calls ---- */

enum { TINY_N = 100000 };

static void pool_hundred_thousand_tiny_calls_are_right_in_order_then_all_hits(void **state)
{
    (void)state;
    int fds = count_fds();
    char path[PATH_CAP];
    jc_cache *c = open_fresh(path, "pool-tiny.jobcache");
    for (int round = 0; round < 2; round++) {
        double t0 = wall_now();
        jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2});
        for (int64_t i = 0; i < TINY_N; i++)
            jc_delayed(b, tiny, jc_int(i), jc_int(7));
        jc_results *r = run_ok(b);
        assert_int_equal(jc_results_status(r), JC_OK);
        assert_int_equal(jc_results_count(r), TINY_N);
        for (size_t k = 0; k < TINY_N; k++) {
            if (jc_result_int(r, k) != (int64_t)k * 31 + 7)
                expect_int(r, k, (int64_t)k * 31 + 7); /* fails with the details */
            if (jc_result_cached(r, k) != (round == 1)) {
                print_error("round %d: result %zu cached = %d\n", round, k, jc_result_cached(r, k));
                fail();
            }
        }
        jc_progress s = jc_results_summary(r);
        assert_int_equal(s.computed, round == 0 ? TINY_N : 0);
        assert_int_equal(s.cached, round == 0 ? 0 : TINY_N);
        jc_results_free(r);
        jc_batch_free(b);
        print_message("# %s run of %d tiny calls: %.2f s\n", round == 0 ? "first" : "second", TINY_N,
                      wall_now() - t0);
    }
    jc_cache_close(c);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), TINY_N);
    assert_clean(fds);
}

/* ---- the caller's memory ---- */

static void pool_worker_reads_caller_globals_filled_at_run_time(void **state)
{
    (void)state;
    int fds = count_fds();
    for (size_t i = 0; i < TABLE_N; i++)
        table[i] = (double)i * 0.5;
    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2, .backend = JC_BACKEND_FORK});
    enum { N = 2000 };
    for (int64_t k = 0; k < N; k++)
        jc_delayed(b, table_lookup, jc_int((k * 7919) % TABLE_N));
    jc_results *r = run_ok(b);
    assert_int_equal(jc_results_status(r), JC_OK);
    for (size_t k = 0; k < N; k++) {
        double want = (double)((k * 7919) % TABLE_N) * 0.5;
        expect_status(r, k, JC_STATUS_OK);
        if (jc_result_double(r, k) != want)
            print_error("table[%zu]: got %g, expected %g\n", (k * 7919) % TABLE_N, jc_result_double(r, k), want);
        assert_true(jc_result_double(r, k) == want);
    }
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    memset(table, 0, sizeof table);
    assert_clean(fds);
}

static void pool_worker_sums_a_large_borrowed_array_in_place(void **state)
{
    (void)state;
    int fds = count_fds();
    enum { N = 1000000, PARTS = 4 };
    double *data = malloc(N * sizeof *data);
    assert_non_null(data);
    for (size_t i = 0; i < N; i++)
        data[i] = (double)(i % 1000) * 0.25;
    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2, .backend = JC_BACKEND_FORK});
    /* The whole array, then four quarters of it. */
    jc_delayed(b, sum_doubles, jc_doubles_ref(data, N));
    for (size_t p = 0; p < PARTS; p++)
        jc_delayed(b, sum_doubles, jc_doubles_ref(data + p * (N / PARTS), N / PARTS));
    jc_results *r = run_ok(b);
    assert_int_equal(jc_results_status(r), JC_OK);
    for (size_t k = 0; k <= PARTS; k++) {
        const double *d = k == 0 ? data : data + (k - 1) * (N / PARTS);
        size_t n = k == 0 ? N : N / PARTS;
        double want = 0;
        for (size_t i = 0; i < n; i++)
            want += d[i];
        expect_status(r, k, JC_STATUS_OK);
        const jc_value *v = jc_result_value(r, k);
        double got = NAN;
        int64_t got_n = -1;
        assert_int_equal(jc_value_len(v), 2);
        assert_int_equal(jc_value_get_double(jc_value_at(v, 0), &got), 0);
        assert_int_equal(jc_value_get_int(jc_value_at(v, 1), &got_n), 0);
        assert_int_equal(got_n, (int64_t)n);
        if (got != want)
            print_error("part %zu: sum %.17g, expected %.17g\n", k, got, want);
        assert_true(got == want);
    }
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    free(data);
    assert_clean(fds);
}

/* ---- memory limit ---- */

#ifndef __SANITIZE_ADDRESS__
static void run_memory_limit(const char *name)
{
    int fds = count_fds();
    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2, .on_error = JC_ON_ERROR_CONTINUE,
                                            .memory_limit = (int64_t)256 << 20});
    for (int64_t i = 0; i < 6; i++)
        assert_int_equal(jc_delayed_name(b, name, (jc_value *[]){jc_int(i)}, 1), 0);
    jc_results *r = run_ok(b);
    assert_int_equal(jc_results_status(r), JC_EFAILED);
    for (size_t k = 0; k < 6; k++) {
        if (k == 1) {
            jc_status st = jc_result_status(r, k);
            const char *msg = jc_result_error(r, k);
            if (st != JC_STATUS_CRASHED && st != JC_STATUS_ERROR) {
                print_error("%s(1): status %s (%s)\n", name, jc_status_name(st), msg ? msg : "no message");
                fail();
            }
            char own[64];
            snprintf(own, sizeof own, "%s(1)", name);
            assert_contains(msg, own);
            if (!strstr(msg, "out of memory") && !strstr(msg, "memory limit")) {
                print_error("%s(1): the message does not say out of memory: %s\n", name, msg);
                fail();
            }
        } else {
            expect_int(r, k, (int64_t)k + 1);
        }
    }
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
}
#endif

static void pool_memory_limit_fails_the_hungry_call_and_keeps_the_others(void **state)
{
    (void)state;
#ifdef __SANITIZE_ADDRESS__
    skip(); /* RLIMIT_AS cannot work with AddressSanitizer's shadow memory */
#else
    run_memory_limit("hog_touch");
    run_memory_limit("hog_check");
#endif
}

/* The limit is what a worker may allocate beyond what it inherits: a caller
 * holding 300 MiB, with a limit of 64 MiB, still has its 16 MiB calls run. */
static void pool_memory_limit_does_not_count_the_callers_own_memory(void **state)
{
    (void)state;
#ifdef __SANITIZE_ADDRESS__
    skip(); /* RLIMIT_AS cannot work with AddressSanitizer's shadow memory */
#else
    int fds = count_fds();
    size_t big = (size_t)300 << 20;
    char *volatile held = malloc(big);
    assert_non_null(held);
    memset(held, 7, big);
    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2, .on_error = JC_ON_ERROR_CONTINUE,
                                            .memory_limit = (int64_t)64 << 20});
    for (int64_t i = 0; i < 6; i++)
        jc_delayed(b, alloc_16m, jc_int(i));
    jc_results *r = run_ok(b);
    if (jc_results_status(r) != JC_OK)
        print_error("%s\n", jc_results_message(r));
    assert_int_equal(jc_results_status(r), JC_OK);
    for (size_t k = 0; k < 6; k++)
        expect_int(r, k, 2 * (int64_t)k);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_true(held[big - 1] == 7);
    free(held);
    assert_clean(fds);
#endif
}

/* ---- callbacks ---- */

typedef struct result_log {
    size_t idx[64];
    size_t n;
    bool bad; /* a callback saw a result not yet final */
    jc_results *res;
} result_log;

static void log_result(const jc_results *res, size_t index, void *userdata)
{
    result_log *log = userdata;
    if (log->n < 64)
        log->idx[log->n] = index;
    log->n++;
    if (jc_result_status(res, index) != JC_STATUS_OK ||
        jc_result_int(res, index) != (int64_t)(index % 30) * 3 + 1)
        log->bad = true;
}

static void pool_on_result_reports_hits_then_computed_calls_in_completion_order(void **state)
{
    (void)state;
    int fds = count_fds();
    char path[PATH_CAP];
    jc_cache *c = open_fresh(path, "pool-on-result.jobcache");
    /* Calls 10..19 become hits. */
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2});
    for (int64_t i = 10; i < 20; i++)
        jc_delayed(b, napper, jc_int(i));
    jc_results *r = run_ok(b);
    assert_int_equal(jc_results_status(r), JC_OK);
    jc_results_free(r);
    jc_batch_free(b);

    /* 0..29, then 1 again (a duplicate: one computation, reported under its
     * first index). napper(0) is slow: it completes after the others. */
    result_log log = {0};
    b = new_batch(c, (jc_options){.n_jobs = 2, .on_result = log_result, .userdata = &log});
    for (int64_t i = 0; i < 30; i++)
        jc_delayed(b, napper, jc_int(i));
    jc_delayed(b, napper, jc_int(1));
    r = run_ok(b);
    assert_int_equal(jc_results_status(r), JC_OK);
    assert_false(log.bad);
    /* Hits first (known before anything is computed), then the 20 computed
     * calls in completion order. */
    assert_int_equal(log.n, 30);
    bool seen[31] = {false};
    for (size_t k = 0; k < log.n; k++) {
        size_t i = log.idx[k];
        assert_true(i < 30);
        assert_true(k < 10 ? (i >= 10 && i < 20) : !(i >= 10 && i < 20));
        assert_false(seen[i]);
        seen[i] = true;
    }
    if (log.idx[10] == 0)
        print_error("the slow call 0 was reported first: callbacks are not in completion order\n");
    assert_int_not_equal(log.idx[10], 0);
    size_t pos0 = 0;
    for (size_t k = 0; k < log.n; k++)
        if (log.idx[k] == 0)
            pos0 = k;
    assert_true(pos0 >= 20); /* 300 ms against 2 ms calls */
    expect_int(r, 30, 4);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
}

typedef struct progress_log {
    size_t calls;
    jc_progress last;
    bool regress; /* done went down */
} progress_log;

static void log_progress(const jc_progress *p, void *userdata)
{
    progress_log *log = userdata;
    if (log->calls && p->done < log->last.done)
        log->regress = true;
    log->calls++;
    log->last = *p;
}

static void pool_on_progress_is_called_and_ends_with_everything_done(void **state)
{
    (void)state;
    int fds = count_fds();
    jc_cache *c = open_disabled();
    progress_log log = {0};
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2, .on_progress = log_progress, .userdata = &log});
    for (int64_t i = 1; i <= 60; i++)
        jc_delayed(b, napper, jc_int(i));
    jc_results *r = run_ok(b);
    assert_int_equal(jc_results_status(r), JC_OK);
    assert_true(log.calls >= 1);
    assert_false(log.regress);
    assert_int_equal(log.last.total, 60);
    assert_int_equal(log.last.done, 60);
    assert_int_equal(log.last.computed, 60);
    assert_int_equal(log.last.running, 0);
    assert_int_equal(log.last.failed, 0);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
}

/* ---- more ways to fail ---- */

/* A crash in the middle of a long range of fast calls: the finished results
 * the worker had buffered died with it and come back from a retry, each to
 * its own index; only the crashing call is blamed. */
static void pool_crash_inside_a_large_range_blames_only_that_call(void **state)
{
    (void)state;
    int fds = count_fds();
    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2, .on_error = JC_ON_ERROR_CONTINUE});
    enum { N = 3000 };
    for (int64_t i = 0; i < N; i++)
        jc_delayed(b, crash_at_500, jc_int(i));
    jc_results *r = run_ok(b);
    assert_int_equal(jc_results_status(r), JC_EFAILED);
    for (size_t k = 0; k < N; k++) {
        if (k == 500) {
            expect_status(r, k, JC_STATUS_CRASHED);
            assert_contains(jc_result_error(r, k), "crash_at_500(500)");
            assert_contains(jc_result_error(r, k), "SIGSEGV");
        } else if (jc_result_int(r, k) != (int64_t)k * 13 + 1) {
            expect_int(r, k, (int64_t)k * 13 + 1);
        }
    }
    jc_progress s = jc_results_summary(r);
    assert_int_equal(s.failed, 1);
    assert_int_equal(s.computed, N - 1);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
}

static void pool_timeout_among_many_fast_calls_blames_only_the_late_one(void **state)
{
    (void)state;
    int fds = count_fds();
    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2, .on_error = JC_ON_ERROR_CONTINUE,
                                            .timeout_seconds = 0.5});
    enum { N = 3000 };
    for (int64_t i = 0; i < N; i++)
        jc_delayed(b, sleepy_at_150, jc_int(i));
    double t0 = wall_now();
    jc_results *r = run_ok(b);
    assert_true(wall_now() - t0 < 10);
    for (size_t k = 0; k < N; k++) {
        if (k == 150) {
            expect_status(r, k, JC_STATUS_TIMEOUT);
            assert_contains(jc_result_error(r, k), "sleepy_at_150(150)");
            assert_contains(jc_result_error(r, k), "timed out after 0.5 s");
        } else if (jc_result_int(r, k) != (int64_t)k * 17 + 2) {
            expect_int(r, k, (int64_t)k * 17 + 2);
        }
    }
    jc_progress s = jc_results_summary(r);
    assert_int_equal(s.failed, 1);
    assert_int_equal(s.computed, N - 1);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
}

/* Under STOP a crash skips what has not started, and the run ends. */
static void pool_crash_under_stop_on_error_skips_the_rest(void **state)
{
    (void)state;
    int fds = count_fds();
    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2});
    for (int64_t i = 0; i < 40; i++)
        jc_delayed(b, always_crash, jc_int(i));
    jc_results *r = run_ok(b);
    assert_int_equal(jc_results_status(r), JC_EFAILED);
    jc_progress s = jc_results_summary(r);
    assert_true(s.failed >= 1);
    assert_true(s.failed <= 2); /* one per worker at most */
    assert_int_equal(s.skipped, 40 - s.failed);
    for (size_t k = 0; k < 40; k++) {
        jc_status st = jc_result_status(r, k);
        assert_true(st == JC_STATUS_CRASHED || st == JC_STATUS_SKIPPED);
    }
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
}

/* The same call submitted twice runs once; both submissions share its fate. */
static void pool_duplicate_submissions_of_a_crashing_call_share_the_crash(void **state)
{
    (void)state;
    int fds = count_fds();
    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2, .on_error = JC_ON_ERROR_CONTINUE});
    for (int64_t i = 0; i < 10; i++)
        jc_delayed(b, crash_some, jc_int(i));
    jc_delayed(b, crash_some, jc_int(3));
    jc_delayed(b, crash_some, jc_int(4));
    jc_results *r = run_ok(b);
    expect_status(r, 3, JC_STATUS_CRASHED);
    expect_status(r, 10, JC_STATUS_CRASHED);
    assert_string_equal(jc_result_error(r, 3), jc_result_error(r, 10));
    expect_int(r, 11, 8);
    jc_progress s = jc_results_summary(r);
    assert_int_equal(s.total, 12);
    assert_int_equal(s.failed, 3); /* 3 twice, and 7 */
    assert_int_equal(s.computed, 9);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
}

/* Results much larger than a socket buffer come back whole. */
static void pool_large_results_come_back_whole_from_workers(void **state)
{
    (void)state;
    int fds = count_fds();
    enum { N = 2000000 };
    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2});
    for (int64_t i = 0; i < 4; i++)
        jc_delayed(b, big_result, jc_int(i), jc_int(N));
    jc_results *r = run_ok(b);
    assert_int_equal(jc_results_status(r), JC_OK);
    for (size_t k = 0; k < 4; k++) {
        const double *d = NULL;
        size_t n = 0;
        assert_int_equal(jc_value_get_doubles(jc_result_value(r, k), &d, &n), 0);
        assert_int_equal(n, N);
        for (size_t j = 0; j < n; j += 997)
            assert_true(d[j] == (double)k + (double)j);
        assert_true(d[n - 1] == (double)k + (double)(n - 1));
    }
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
}

/* What a function prints in a worker reaches the program's stdout, also when
 * stdout is a file (fully buffered), as it does in-process. */
static void pool_output_printed_by_functions_in_workers_is_not_lost(void **state)
{
    (void)state;
    int fds = count_fds();
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "pool-talk.out");
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved >= 0 && fd >= 0);
    assert_true(dup2(fd, STDOUT_FILENO) >= 0);
    close(fd);

    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2});
    for (int64_t i = 0; i < 10; i++)
        jc_delayed(b, talk, jc_int(i));
    jc_results *r = run_pool(b);

    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    assert_non_null(r);
    assert_int_equal(jc_results_status(r), JC_OK);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);

    size_t len = 0;
    char *out = jc_test_read_file(path, &len);
    assert_non_null(out);
    char *text = malloc(len + 1);
    assert_non_null(text);
    memcpy(text, out, len);
    text[len] = '\0';
    free(out);
    int missing = 0;
    for (int i = 0; i < 10; i++) {
        char line[64];
        snprintf(line, sizeof line, "talk says %d\n", i);
        if (!strstr(text, line)) {
            print_error("line \"talk says %d\" printed by a worker is missing from stdout\n", i);
            missing++;
        }
    }
    free(text);
    assert_int_equal(missing, 0);
    assert_clean(fds);
}

/* A result the codec refuses fails that call alone, naming it with its
 * arguments, with any backend. */
static void run_too_deep(int n_jobs, const char *label)
{
    char path[PATH_CAP];
    char name[64];
    snprintf(name, sizeof name, "pool-too-deep-%d.jobcache", n_jobs);
    jc_cache *c = open_fresh(path, name);
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = n_jobs, .on_error = JC_ON_ERROR_CONTINUE});
    for (int64_t i = 0; i < 8; i++)
        jc_delayed(b, too_deep, jc_int(i));
    jc_results *r = run_ok(b);
    if (jc_results_status(r) != JC_EFAILED || jc_result_status(r, 4) != JC_STATUS_ERROR)
        print_error("%s: run %s (%s); too_deep(4): %s (%s)\n", label, jc_err_name(jc_results_status(r)),
                    jc_results_message(r), jc_status_name(jc_result_status(r, 4)),
                    jc_result_error(r, 4) ? jc_result_error(r, 4) : "no message");
    assert_int_equal(jc_results_status(r), JC_EFAILED);
    expect_status(r, 4, JC_STATUS_ERROR);
    assert_contains(jc_result_error(r, 4), "too_deep(4)");
    for (size_t k = 0; k < 8; k++)
        if (k != 4)
            expect_int(r, k, (int64_t)k);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), 7);
}

static void pool_result_that_cannot_be_encoded_fails_only_that_call_in_a_worker(void **state)
{
    (void)state;
    int fds = count_fds();
    run_too_deep(2, "fork");
    assert_clean(fds);
}

static void pool_result_that_cannot_be_encoded_fails_only_that_call_in_process(void **state)
{
    (void)state;
    int fds = count_fds();
    run_too_deep(1, "in-process");
    assert_clean(fds);
}

static void pool_threads_backend_refuses_timeout_and_memory_limit(void **state)
{
    (void)state;
    jc_cache *c = open_disabled();
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 2, .backend = JC_BACKEND_THREADS,
                                                .timeout_seconds = 1});
    assert_null(b);
    assert_int_equal(jc_errcode(), JC_EINVAL);
    assert_contains(jc_errmsg(), "timeout_seconds");
    b = jc_batch_new(c, &(jc_options){.n_jobs = 2, .backend = JC_BACKEND_THREADS, .memory_limit = 1 << 30});
    assert_null(b);
    assert_contains(jc_errmsg(), "memory_limit");
    jc_cache_close(c);
}

/* ---- a program's own SIGCHLD settings ---- */

/* A worker's death is reported by the signal that killed it even when the
 * program ignores SIGCHLD (children then reap themselves). */
static void pool_crash_is_named_when_the_program_ignores_sigchld(void **state)
{
    (void)state;
    int fds = count_fds();
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigemptyset(&ign.sa_mask);
    assert_int_equal(sigaction(SIGCHLD, &ign, &old), 0);

    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2, .on_error = JC_ON_ERROR_CONTINUE});
    for (int64_t i = 0; i < 20; i++)
        jc_delayed(b, crash_some, jc_int(i));
    jc_results *r = run_pool(b);
    sigaction(SIGCHLD, &old, NULL);
    assert_non_null(r);
    for (size_t k = 0; k < 20; k++)
        if (k == 3 || k == 7 || k == 11)
            expect_status(r, k, JC_STATUS_CRASHED);
        else
            expect_int(r, k, (int64_t)k * 2);
    assert_contains(jc_result_error(r, 3), "SIGSEGV");
    assert_contains(jc_result_error(r, 7), "SIGABRT");
    assert_contains(jc_result_error(r, 11), "SIGKILL");
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
}

static volatile sig_atomic_t reaped_by_program;

static void reap_children(int sig)
{
    (void)sig;
    int saved = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        reaped_by_program++;
    errno = saved;
}

/* The same when the program reaps its children in a SIGCHLD handler: the
 * handler must not take the workers' statuses away from the pool. */
static void pool_crash_is_named_when_the_program_reaps_children_itself(void **state)
{
    (void)state;
    int fds = count_fds();
    struct sigaction sa = {.sa_handler = reap_children, .sa_flags = SA_RESTART}, old;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGCHLD, &sa, &old), 0);
    reaped_by_program = 0;

    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2, .on_error = JC_ON_ERROR_CONTINUE});
    for (int64_t i = 0; i < 20; i++)
        jc_delayed(b, always_crash, jc_int(i));
    jc_results *r = run_pool(b);
    sigaction(SIGCHLD, &old, NULL);
    assert_non_null(r);
    int wrong = 0;
    for (size_t k = 0; k < 20; k++) {
        expect_status(r, k, JC_STATUS_CRASHED);
        if (!strstr(jc_result_error(r, k), "SIGSEGV")) {
            print_error("result %zu: %s\n", k, jc_result_error(r, k));
            wrong++;
        }
    }
    if (wrong)
        print_error("%d of 20 crashes misreported; the program's handler reaped %d workers\n", wrong,
                    (int)reaped_by_program);
    assert_int_equal(wrong, 0);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
}

/* ---- workers that cannot be started ---- */

/* Highest descriptor open in this process, not counting opendir's own. */
static int max_fd(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int top = -1, own = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] != '.' && fd != own && fd > top)
            top = fd;
    }
    closedir(d);
    return top;
}

/* Makes every new descriptor fail with EMFILE: the soft RLIMIT_NOFILE
 * lowered to just above the highest descriptor open, the holes below it
 * filled. No worker can be started then (no socket pair), while the
 * workers already running go on. */
typedef struct fd_squeeze {
    struct rlimit saved;
    int fill[1024];
    int nfill;
    bool on;
} fd_squeeze;

static void squeeze_fds(fd_squeeze *q)
{
    assert_false(q->on);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &q->saved), 0);
    struct rlimit low = q->saved;
    low.rlim_cur = (rlim_t)max_fd() + 1;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    q->nfill = 0;
    int fd;
    while (q->nfill < 1024 && (fd = dup(STDERR_FILENO)) >= 0)
        q->fill[q->nfill++] = fd;
    q->on = true;
}

static void release_fds(fd_squeeze *q)
{
    if (!q->on)
        return;
    for (int k = 0; k < q->nfill; k++)
        close(q->fill[k]);
    setrlimit(RLIMIT_NOFILE, &q->saved);
    q->on = false;
}

typedef struct spawn_watch {
    fd_squeeze squeeze;
    size_t seen;             /* results delivered so far */
    pid_t pids[8];           /* distinct worker pids, in the order seen */
    size_t first_seen[8];    /* the result count when each first appeared */
    int npids;
    size_t released_at;      /* the result count when descriptors came back */
    bool too_many_pids;
} spawn_watch;

enum { RESPAWN_N = 240, RELEASE_AFTER = 100 };

/* From the first result on, no descriptor can be made, so the worker that
 * dies at call 40 cannot be replaced; after RELEASE_AFTER results they come
 * back. Records which worker computed what. */
static void watch_spawns(const jc_results *res, size_t index, void *userdata)
{
    spawn_watch *w = userdata;
    w->seen++;
    if (w->seen == 1)
        squeeze_fds(&w->squeeze);
    if (w->seen == RELEASE_AFTER) {
        release_fds(&w->squeeze);
        w->released_at = w->seen;
    }
    if (jc_result_status(res, index) != JC_STATUS_OK)
        return;
    int64_t pid = 0;
    jc_value_get_int(jc_value_at(jc_result_value(res, index), 1), &pid);
    for (int k = 0; k < w->npids; k++)
        if (w->pids[k] == (pid_t)pid)
            return;
    if (w->npids == 8) {
        w->too_many_pids = true;
        return;
    }
    w->first_seen[w->npids] = w->seen;
    w->pids[w->npids++] = (pid_t)pid;
}

/* A worker that cannot be replaced (socketpair failing with EMFILE) leaves
 * its slot empty: the other worker finishes the run, and the slot is filled
 * once descriptors are available again. */
static void pool_worker_that_cannot_be_replaced_leaves_the_others_running(void **state)
{
    (void)state;
    int fds = count_fds();
    jc_cache *c = open_disabled();
    spawn_watch w = {0};
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2, .on_error = JC_ON_ERROR_CONTINUE,
                                            .on_result = watch_spawns, .userdata = &w});
    for (int64_t i = 0; i < RESPAWN_N; i++)
        jc_delayed(b, pid_or_die, jc_int(i));
    jc_results *r = run_pool(b);
    int err = jc_errcode();
    bool was_squeezed_at_end = w.squeeze.on;
    release_fds(&w.squeeze);
    if (!r)
        print_error("jc_run: %s (%s)\n", jc_errmsg(), jc_err_name(err));
    assert_non_null(r);
    if (jc_results_status(r) != JC_EFAILED)
        print_error("run status %s: %s\n", jc_err_name(jc_results_status(r)), jc_results_message(r));
    assert_int_equal(jc_results_status(r), JC_EFAILED);
    assert_false(was_squeezed_at_end);
    for (size_t k = 0; k < RESPAWN_N; k++) {
        if (k == 40) {
            expect_status(r, k, JC_STATUS_CRASHED);
            assert_contains(jc_result_error(r, k), "pid_or_die(40)");
            assert_contains(jc_result_error(r, k), "SIGKILL");
        } else {
            expect_status(r, k, JC_STATUS_OK);
            int64_t i = -1;
            assert_int_equal(jc_value_get_int(jc_value_at(jc_result_value(r, k), 0), &i), 0);
            assert_int_equal(i, (int64_t)k);
        }
    }
    jc_progress s = jc_results_summary(r);
    assert_int_equal(s.failed, 1);
    assert_int_equal(s.computed, RESPAWN_N - 1);
    /* The two first workers; no third while descriptors were short; one
     * once they came back. */
    print_message("# %d workers seen; descriptors back after %zu results, the new worker's first result "
                  "was number %zu\n", w.npids, w.released_at, w.npids > 2 ? w.first_seen[2] : 0);
    assert_false(w.too_many_pids);
    assert_int_equal(w.released_at, RELEASE_AFTER);
    assert_int_equal(w.npids, 3);
    assert_true(w.first_seen[1] < RELEASE_AFTER);
    assert_true(w.first_seen[2] > RELEASE_AFTER);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
}

/* When not a single worker can start, the run fails and says why. */
static void pool_run_fails_when_no_worker_can_start(void **state)
{
    (void)state;
    int fds = count_fds();
    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2});
    for (int64_t i = 0; i < 10; i++)
        jc_delayed(b, tiny, jc_int(i), jc_int(1));
    fd_squeeze q = {0};
    squeeze_fds(&q);
    jc_results *r = run_pool(b);
    int err = jc_errcode();
    char msg[512];
    snprintf(msg, sizeof msg, "%s", r ? jc_results_message(r) : jc_errmsg());
    release_fds(&q);
    if (r) {
        print_error("jc_run returned results: %s: %s\n", jc_err_name(jc_results_status(r)), msg);
        jc_results_free(r);
        fail();
    }
    assert_int_equal(err, JC_EIO);
    assert_contains(msg, "socket pair");
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
}

/* ---- the program's own crash handlers ---- */

static volatile unsigned char *own_marker;

static void own_segv_handler(int sig)
{
    (void)sig;
    if (own_marker)
        *own_marker = 1;
    _exit(7);
}

/* A SIGSEGV handler the program installed stays in effect in the workers:
 * it runs, and the call is reported crashed with the status it exits with. */
static void pool_program_crash_handler_stays_in_effect_in_workers(void **state)
{
    (void)state;
    int fds = count_fds();
    void *m = mmap(NULL, 1, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    own_marker = m;
    *own_marker = 0;
    struct sigaction sa = {.sa_handler = own_segv_handler}, old;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGSEGV, &sa, &old), 0);

    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2, .on_error = JC_ON_ERROR_CONTINUE});
    for (int64_t i = 0; i < 6; i++)
        jc_delayed(b, segv_at_2, jc_int(i));
    jc_results *r = jc_run(b);
    sigaction(SIGSEGV, &old, NULL);
    unsigned char marked = *own_marker;
    own_marker = NULL;
    munmap(m, 1);
    assert_non_null(r);
    for (size_t k = 0; k < 6; k++) {
        if (k == 2) {
            expect_status(r, k, JC_STATUS_CRASHED);
            assert_contains(jc_result_error(r, k), "segv_at_2(2)");
            assert_contains(jc_result_error(r, k), "exited with status 7");
        } else {
            expect_int(r, k, (int64_t)k + 40);
        }
    }
    assert_int_equal(marked, 1);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pool_memory_limit_fails_the_hungry_call_and_keeps_the_others),
        cmocka_unit_test(pool_memory_limit_does_not_count_the_callers_own_memory),
        cmocka_unit_test(pool_same_results_with_in_process_forked_and_threads_backends),
        cmocka_unit_test(pool_results_stored_by_workers_are_hits_for_an_in_process_rerun),
        cmocka_unit_test(pool_function_error_fails_only_that_call),
        cmocka_unit_test(pool_failed_call_is_not_stored),
        cmocka_unit_test(pool_worker_killed_by_a_signal_names_the_signal_function_and_argument),
        cmocka_unit_test(pool_worker_calling_exit_reports_its_exit_status),
        cmocka_unit_test(pool_function_crashing_on_every_call_gives_one_crash_per_call_and_ends),
        cmocka_unit_test(pool_timeout_kills_the_late_call_and_keeps_the_others),
        cmocka_unit_test(pool_timeout_with_one_job_runs_calls_in_a_worker),
        cmocka_unit_test(pool_stop_on_error_skips_later_calls_and_keeps_finished_ones),
        cmocka_unit_test(pool_stop_on_error_in_process_skips_exactly_the_calls_after_it),
        cmocka_unit_test(pool_continue_on_error_runs_every_call),
        cmocka_unit_test(pool_hundred_thousand_tiny_calls_are_right_in_order_then_all_hits),
        cmocka_unit_test(pool_worker_reads_caller_globals_filled_at_run_time),
        cmocka_unit_test(pool_worker_sums_a_large_borrowed_array_in_place),
        cmocka_unit_test(pool_on_result_reports_hits_then_computed_calls_in_completion_order),
        cmocka_unit_test(pool_on_progress_is_called_and_ends_with_everything_done),
        cmocka_unit_test(pool_crash_inside_a_large_range_blames_only_that_call),
        cmocka_unit_test(pool_timeout_among_many_fast_calls_blames_only_the_late_one),
        cmocka_unit_test(pool_crash_under_stop_on_error_skips_the_rest),
        cmocka_unit_test(pool_duplicate_submissions_of_a_crashing_call_share_the_crash),
        cmocka_unit_test(pool_large_results_come_back_whole_from_workers),
        cmocka_unit_test(pool_output_printed_by_functions_in_workers_is_not_lost),
        cmocka_unit_test(pool_result_that_cannot_be_encoded_fails_only_that_call_in_a_worker),
        cmocka_unit_test(pool_result_that_cannot_be_encoded_fails_only_that_call_in_process),
        cmocka_unit_test(pool_threads_backend_refuses_timeout_and_memory_limit),
        cmocka_unit_test(pool_crash_is_named_when_the_program_ignores_sigchld),
        cmocka_unit_test(pool_crash_is_named_when_the_program_reaps_children_itself),
        cmocka_unit_test(pool_worker_that_cannot_be_replaced_leaves_the_others_running),
        cmocka_unit_test(pool_run_fails_when_no_worker_can_start),
        cmocka_unit_test(pool_program_crash_handler_stays_in_effect_in_workers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
