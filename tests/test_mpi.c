/*
 * The MPI backend (issue 15). ctest runs this program under
 * `mpirun --oversubscribe -np 3` (and -np 2: one worker rank): rank 0 runs
 * the tests, ranks 1..N-1 serve calls from jc_mpi_init and exit with rank
 * 0's status. Run on its own (no launcher), it checks what a program
 * started without mpirun gets.
 *
 * Every computed call appends a line "RANK NAME ARG" to a log in the
 * scratch directory (O_APPEND, whole lines), written by the process that
 * ran the call: what was computed, and where, is counted from it.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "exec/exec.h" /* jc__mpi_sent_bytes */
#include "jobcache.h"
#include "testutil.h"

#define PATH_CAP 4096

static char log_path[PATH_CAP];

/* Appends "RANK NAME ARG" to the log: the rank the launcher gave this
 * process (OMPI_COMM_WORLD_RANK, inherited by the forked child). */
static void log_call(const char *name, int64_t arg)
{
    const char *rank = getenv("OMPI_COMM_WORLD_RANK");
    char line[128];
    int n = snprintf(line, sizeof line, "%s %s %lld\n", rank ? rank : "-", name, (long long)arg);
    int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    if (fd >= 0) {
        ssize_t w = write(fd, line, (size_t)n);
        (void)w;
        close(fd);
    }
}

/* Lines of the log, and how many of them were written by rank 0. */
static size_t log_lines(size_t *on_rank0)
{
    FILE *f = fopen(log_path, "re");
    size_t n = 0, zero = 0;
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        n++;
        zero += strncmp(line, "0 ", 2) == 0;
    }
    if (f)
        fclose(f);
    if (on_rank0)
        *on_rank0 = zero;
    return n;
}

/* Empties the log. Its path is fixed in main before jc_mpi_init, so that
 * every rank knows it (worker ranks never run the tests). */
static void reset_log(void)
{
    unlink(log_path);
}

/* ---- the functions ---- */

/* Doubles that canonical encoding would change (-0.0, NaN payloads), and a plain one. */
static const uint64_t odd_bits[] = {UINT64_C(0x8000000000000000), UINT64_C(0x7ff80000000abcde),
                                    UINT64_C(0xfff8000000000001), UINT64_C(0x3ff8000000000000)};
enum { NODD = sizeof odd_bits / sizeof *odd_bits, BIG = 300000 /* doubles: 2.4 MB, sent by content */ };

/* kind(k, payload...): a result of kind k, built from the arguments, so
 * that the arguments must arrive whole for the result to be right. */
static int kind(jc_call *call)
{
    int64_t k = jc_arg_int(call, 0);
    log_call("kind", k);
    double odd[NODD];
    for (size_t i = 0; i < NODD; i++)
        odd[i] = jc_test_from_bits(odd_bits[i]);
    switch (k) {
    case 0: return jc_return(call, jc_null());
    case 1: return jc_return(call, jc_bool(jc_kwarg_bool(call, "flag")));
    case 2: return jc_return_int(call, INT64_MIN + jc_kwarg_int(call, "plus"));
    case 3: return jc_return_double(call, odd[jc_kwarg_int(call, "which")]);
    case 4: return jc_return_str(call, jc_kwarg_str(call, "text"));
    case 5: {
        size_t len;
        const void *p = jc_kwarg_bytes(call, "data", &len);
        return jc_return(call, jc_bytes(p, len));
    }
    case 6: { /* the big array it was given, and its odd doubles, as they are */
        size_t n;
        const double *p = jc_kwarg_doubles(call, "big", &n);
        jc_value *v = jc_list(jc_doubles(p, n), jc_doubles(odd, NODD));
        return jc_return(call, v);
    }
    case 7: {
        size_t n;
        const int64_t *p = jc_kwarg_ints(call, "ints", &n);
        return jc_return(call, jc_ints(p, n));
    }
    case 8: { /* nested: what it was given, inside a map */
        const jc_value *nested = jc_kwarg(call, "nested");
        return jc_return(call, jc_map(jc_kw("got", jc_value_copy(nested)), jc_kw("negzero", jc_double(odd[0])),
                                      jc_kw("nan", jc_double(odd[1]))));
    }
    default: return jc_fail(call, "no kind %lld", (long long)k);
    }
}
JC_FUNCTION(kind, "v1");

static int square(jc_call *call)
{
    int64_t x = jc_arg_int(call, 0);
    log_call("square", x);
    return jc_return_int(call, x * x);
}
JC_FUNCTION(square, "v1");

/* fails(x): an error for x = 3, a crash by abort() for x = 5, exit(3) for
 * x = 7, a sleep past any timeout for x = 9; x + 1 otherwise. */
static int fails(jc_call *call)
{
    int64_t x = jc_arg_int(call, 0);
    log_call("fails", x);
    if (x == 3)
        return jc_fail(call, "three is not allowed");
    if (x == 5)
        abort();
    if (x == 7) {
#ifdef __SANITIZE_ADDRESS__
        /* exit() would run LeakSanitizer's exit-time check in the child,
         * which reports the memory it inherited and exits with status 1. */
        _exit(3);
#else
        exit(3);
#endif
    }
    if (x == 9)
        sleep(60);
    return jc_return_int(call, x + 1);
}
JC_FUNCTION(fails, "v1");

/* tiny(i): i * 2 and the pid of the process that ran it (one process per
 * group of calls on a worker rank: the pids tell how calls were grouped). */
static int tiny(jc_call *call)
{
    int64_t i = jc_arg_int(call, 0);
    return jc_return(call, jc_list(jc_int(i * 2), jc_int(getpid())));
}
JC_FUNCTION(tiny, "v1");

/* slow(i): 20 ms, then i; i = 0 fails at once. */
static int slow(jc_call *call)
{
    int64_t i = jc_arg_int(call, 0);
    log_call("slow", i);
    if (i == 0)
        return jc_fail(call, "the first one fails");
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return jc_return_int(call, i);
}
JC_FUNCTION(slow, "v1");

/* sum_big(doubles, i, ints=...): the sum of both arrays, plus i. */
static int sum_big(jc_call *call)
{
    size_t n, m;
    const double *d = jc_arg_doubles(call, 0, &n);
    int64_t i = jc_arg_int(call, 1);
    const int64_t *k = jc_kwarg_ints(call, "ints", &m);
    if (!d || !k)
        return jc_fail(call, "missing arrays");
    double sum = (double)i;
    for (size_t j = 0; j < n; j++)
        sum += d[j];
    for (size_t j = 0; j < m; j++)
        sum += (double)k[j];
    return jc_return_double(call, sum);
}
JC_FUNCTION(sum_big, "v1");

/* sum_ints(a, b, ...): the sum of every int array given. */
static int sum_ints(jc_call *call)
{
    int64_t sum = 0;
    for (size_t i = 0; i < jc_arg_count(call); i++) {
        size_t n;
        const int64_t *a = jc_arg_ints(call, i, &n);
        if (!a)
            return jc_fail(call, "argument %zu is not an int array", i);
        for (size_t j = 0; j < n; j++)
            sum += a[j];
    }
    return jc_return_int(call, sum);
}
JC_FUNCTION(sum_ints, "v1");

/* ---- helpers ---- */

static jc_cache *fresh_cache(const char *name)
{
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, name);
    jc_test_remove_db(path);
    jc_cache *c = jc_cache_open(path, NULL);
    assert_non_null(c);
    return c;
}

static jc_batch *new_batch(jc_cache *c, jc_backend backend)
{
    jc_batch *b = jc_batch_new(c, &(jc_options){.backend = backend, .n_jobs = -1,
                                                 .on_error = JC_ON_ERROR_CONTINUE, .verbose = JC_VERBOSE_OFF});
    assert_non_null(b);
    return b;
}

/* The calls of the value-type test, submitted to b. */
static void submit_kinds(jc_batch *b, const double *big)
{
    double odd[NODD];
    for (size_t i = 0; i < NODD; i++)
        odd[i] = jc_test_from_bits(odd_bits[i]);
    assert_int_equal(jc_delayed(b, kind, jc_int(0)), 0);
    assert_int_equal(jc_delayed(b, kind, jc_int(1), jc_kw("flag", jc_bool(true))), 0);
    assert_int_equal(jc_delayed(b, kind, jc_int(2), jc_kw("plus", jc_int(7))), 0);
    for (int w = 0; w < NODD; w++)
        assert_int_equal(jc_delayed(b, kind, jc_int(3), jc_kw("which", jc_int(w))), 0);
    assert_int_equal(jc_delayed(b, kind, jc_int(4), jc_kw("text", jc_str("gr\xc3\xbc\xc3\x9f \xe2\x82\xac"))), 0);
    assert_int_equal(jc_delayed(b, kind, jc_int(5), jc_kw("data", jc_bytes("\x00\xff\x80\x01", 4))), 0);
    assert_int_equal(jc_delayed(b, kind, jc_int(6), jc_kw("big", jc_doubles_ref(big, BIG))), 0);
    assert_int_equal(jc_delayed(b, kind, jc_int(7), jc_kw("ints", jc_ints((int64_t[]){INT64_MIN, -1, 0, INT64_MAX}, 4))),
                     0);
    assert_int_equal(jc_delayed(b, kind, jc_int(8),
                                jc_kw("nested", jc_map(jc_kw("a", jc_list(jc_int(1), jc_str("x"), jc_null())),
                                                       jc_kw("b", jc_doubles(odd + 3, 1))))),
                     0);
}

/* ---- under mpirun ---- */

static void mpi_every_value_type_comes_back_as_n_jobs_1_gives_it(void **state)
{
    (void)state;
    reset_log();
    double *big = malloc(BIG * sizeof *big);
    assert_non_null(big);
    for (size_t i = 0; i < BIG; i++)
        big[i] = (double)i * 0.25 - 1000.0;
    big[17] = jc_test_from_bits(odd_bits[3]);

    jc_cache *here = fresh_cache("kinds-inprocess.db"), *there = fresh_cache("kinds-mpi.db");
    jc_batch *bh = new_batch(here, JC_BACKEND_INPROCESS), *bm = new_batch(there, JC_BACKEND_AUTO);
    submit_kinds(bh, big);
    submit_kinds(bm, big);
    jc_results *rh = jc_run(bh), *rm = jc_run(bm);
    assert_non_null(rh);
    assert_non_null(rm);
    assert_int_equal(jc_results_status(rm), JC_OK);
    assert_int_equal(jc_results_count(rm), jc_results_count(rh));
    for (size_t k = 0; k < jc_results_count(rm); k++) {
        assert_int_equal(jc_result_status(rm, k), JC_STATUS_OK);
        assert_false(jc_result_cached(rm, k));
        if (!jc_test_same_bits(jc_result_value(rm, k), jc_result_value(rh, k)))
            fail_msg("result %zu differs from the in-process one", k);
    }
    /* The value of kind 6 (call 9) is the big array, whole. */
    const double *p;
    size_t n;
    assert_int_equal(jc_value_get_doubles(jc_value_at(jc_result_value(rm, 9), 0), &p, &n), 0);
    assert_int_equal(n, BIG);
    assert_memory_equal(p, big, BIG * sizeof *big);
    /* Computed on the worker ranks, each call once; the in-process run's
     * calls were on rank 0. */
    size_t zero;
    size_t calls = jc_results_count(rm);
    assert_int_equal(log_lines(&zero), 2 * calls);
    assert_int_equal(zero, calls);

    /* And read back from the cache as hits, bit for bit. */
    jc_batch *again = new_batch(there, JC_BACKEND_AUTO);
    submit_kinds(again, big);
    jc_results *ra = jc_run(again);
    for (size_t k = 0; k < jc_results_count(ra); k++) {
        assert_true(jc_result_cached(ra, k));
        assert_true(jc_test_same_bits(jc_result_value(ra, k), jc_result_value(rh, k)));
    }
    assert_int_equal(log_lines(NULL), 2 * calls);
    jc_results_free(ra);
    jc_batch_free(again);
    jc_results_free(rh);
    jc_results_free(rm);
    jc_batch_free(bh);
    jc_batch_free(bm);
    jc_cache_close(here);
    jc_cache_close(there);
    free(big);
}

static jc_results *run_squares(jc_cache *c, int from, int to, int copies)
{
    jc_batch *b = new_batch(c, JC_BACKEND_AUTO);
    for (int k = 0; k < copies; k++)
        for (int i = from; i < to; i++)
            assert_int_equal(jc_delayed(b, square, jc_int(i)), 0);
    jc_results *r = jc_run(b);
    assert_non_null(r);
    assert_int_equal(jc_results_status(r), JC_OK);
    for (int k = 0; k < copies; k++)
        for (int i = from; i < to; i++)
            assert_int_equal(jc_result_int(r, (size_t)(k * (to - from) + (i - from))), (int64_t)i * i);
    jc_batch_free(b);
    return r;
}

static void mpi_only_misses_are_sent_and_a_rerun_sends_nothing(void **state)
{
    (void)state;
    reset_log();
    jc_cache *c = fresh_cache("squares.db");
    jc_results *r = run_squares(c, 0, 200, 1);
    jc_progress p = jc_results_summary(r);
    assert_int_equal(p.computed, 200);
    jc_results_free(r);
    size_t zero;
    assert_int_equal(log_lines(&zero), 200);
    assert_int_equal(zero, 0); /* none on the coordinator */

    r = run_squares(c, 0, 200, 1);
    p = jc_results_summary(r);
    assert_int_equal(p.cached, 200);
    assert_int_equal(p.computed, 0);
    jc_results_free(r);
    assert_int_equal(log_lines(NULL), 200); /* nothing was sent */

    r = run_squares(c, 0, 250, 1); /* the sweep grows: only the new 50 go out */
    p = jc_results_summary(r);
    assert_int_equal(p.cached, 200);
    assert_int_equal(p.computed, 50);
    jc_results_free(r);
    assert_int_equal(log_lines(NULL), 250);
    jc_cache_close(c);
}

static void record_backend(const jc_run_record *run, void *userdata)
{
    char *out = userdata;
    snprintf(out, 64, "%s %d", run->backend, run->n_jobs);
}

static void mpi_the_run_is_recorded_with_the_backend_and_its_worker_ranks(void **state)
{
    (void)state;
    reset_log();
    jc_cache *c = fresh_cache("record.db");
    jc_results *r = run_squares(c, 0, 50, 1);
    jc_results_free(r);
    char seen[64] = "";
    assert_int_equal(jc_cache_runs(c, 1, false, record_backend, seen), 0);
    char want[64];
    snprintf(want, sizeof want, "mpi %d", jc_mpi_ranks() - 1);
    assert_string_equal(seen, want);
    jc_cache_close(c);
}

static void mpi_identical_calls_are_computed_once(void **state)
{
    (void)state;
    reset_log();
    jc_cache *c = fresh_cache("dedup.db");
    jc_results *r = run_squares(c, 10, 13, 7); /* 21 submissions, 3 distinct calls */
    jc_progress p = jc_results_summary(r);
    assert_int_equal(p.total, 21);
    assert_int_equal(p.computed, 21); /* per submission, as for every backend */
    jc_results_free(r);
    assert_int_equal(log_lines(NULL), 3);
    jc_cache_close(c);
}

static jc_results *run_fails(jc_cache *c, int n, double timeout)
{
    jc_batch *b = jc_batch_new(c, &(jc_options){.on_error = JC_ON_ERROR_CONTINUE, .verbose = JC_VERBOSE_OFF,
                                                 .timeout_seconds = timeout});
    assert_non_null(b);
    for (int i = 0; i < n; i++)
        assert_int_equal(jc_delayed(b, fails, jc_int(i)), 0);
    jc_results *r = jc_run(b);
    assert_non_null(r);
    jc_batch_free(b);
    return r;
}

static void mpi_a_functions_error_is_that_calls_error_and_is_not_cached(void **state)
{
    (void)state;
    reset_log();
    jc_cache *c = fresh_cache("error.db");
    jc_results *r = run_fails(c, 5, 0);
    assert_int_equal(jc_results_status(r), JC_EFAILED);
    for (int i = 0; i < 5; i++) {
        if (i == 3) {
            assert_int_equal(jc_result_status(r, 3), JC_STATUS_ERROR);
            assert_non_null(strstr(jc_result_error(r, 3), "fails(3): three is not allowed"));
        } else {
            assert_int_equal(jc_result_status(r, (size_t)i), JC_STATUS_OK);
            assert_int_equal(jc_result_int(r, (size_t)i), i + 1);
        }
    }
    jc_results_free(r);
    assert_int_equal(log_lines(NULL), 5);
    /* A failure is never cached: the rerun sends that call alone again. */
    r = run_fails(c, 5, 0);
    assert_int_equal(jc_results_summary(r).cached, 4);
    assert_int_equal(jc_result_status(r, 3), JC_STATUS_ERROR);
    jc_results_free(r);
    assert_int_equal(log_lines(NULL), 6);
    jc_cache_close(c);
}

static void mpi_a_call_that_aborts_or_exits_fails_alone_and_the_ranks_go_on(void **state)
{
    (void)state;
    reset_log();
    jc_cache *c = fresh_cache("crash.db");
    jc_results *r = run_fails(c, 9, 0); /* 0..8: 3 errs, 5 aborts, 7 exits */
    for (int i = 0; i < 9; i++) {
        const char *err = jc_result_error(r, (size_t)i);
        if (i == 5) {
            assert_int_equal(jc_result_status(r, 5), JC_STATUS_CRASHED);
            assert_non_null(strstr(err, "fails(5)"));
            assert_non_null(strstr(err, "SIGABRT"));
            assert_non_null(strstr(err, "on MPI rank "));
        } else if (i == 7) {
            assert_int_equal(jc_result_status(r, 7), JC_STATUS_CRASHED);
            assert_non_null(strstr(err, "fails(7)"));
            assert_non_null(strstr(err, "exited with status 3"));
            assert_non_null(strstr(err, "on MPI rank "));
        } else if (i != 3) {
            assert_int_equal(jc_result_status(r, (size_t)i), JC_STATUS_OK);
            assert_int_equal(jc_result_int(r, (size_t)i), i + 1);
        }
    }
    jc_results_free(r);
    /* Every worker rank is alive and serves the next run. */
    reset_log();
    r = run_squares(c, 100, 100 + 4 * jc_mpi_ranks(), 1);
    jc_results_free(r);
    assert_int_equal(log_lines(NULL), (size_t)(4 * jc_mpi_ranks()));
    jc_cache_close(c);
}

static void mpi_a_call_past_the_timeout_is_killed_and_fails_as_timed_out(void **state)
{
    (void)state;
    reset_log();
    jc_cache *c = fresh_cache("timeout.db");
    jc_batch *b = jc_batch_new(c, &(jc_options){.on_error = JC_ON_ERROR_CONTINUE, .verbose = JC_VERBOSE_OFF,
                                                 .timeout_seconds = 0.5});
    assert_non_null(b);
    assert_int_equal(jc_delayed(b, fails, jc_int(9)), 0);
    assert_int_equal(jc_delayed(b, fails, jc_int(10)), 0);
    assert_int_equal(jc_delayed(b, fails, jc_int(11)), 0);
    time_t t0 = time(NULL);
    jc_results *r = jc_run(b);
    assert_non_null(r);
    assert_true(time(NULL) - t0 < 30); /* not the 60 s sleep */
    assert_int_equal(jc_result_status(r, 0), JC_STATUS_TIMEOUT);
    assert_non_null(strstr(jc_result_error(r, 0), "timed out after 0.5 s"));
    assert_non_null(strstr(jc_result_error(r, 0), "on MPI rank "));
    assert_int_equal(jc_result_int(r, 1), 11);
    assert_int_equal(jc_result_int(r, 2), 12);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void mpi_a_hundred_thousand_tiny_calls_go_in_groups(void **state)
{
    (void)state;
    enum { N = 100000 };
    jc_cache *c = fresh_cache("tiny.db");
    jc_batch *b = new_batch(c, JC_BACKEND_AUTO);
    for (int i = 0; i < N; i++)
        assert_int_equal(jc_delayed(b, tiny, jc_int(i)), 0);
    jc_results *r = jc_run(b);
    assert_non_null(r);
    assert_int_equal(jc_results_status(r), JC_OK);
    int64_t *pids = malloc(N * sizeof *pids);
    assert_non_null(pids);
    for (size_t i = 0; i < N; i++) {
        const jc_value *v = jc_result_value(r, i);
        int64_t twice, pid;
        assert_int_equal(jc_value_get_int(jc_value_at(v, 0), &twice), 0);
        assert_int_equal(jc_value_get_int(jc_value_at(v, 1), &pid), 0);
        assert_int_equal(twice, 2 * (int64_t)i);
        assert_int_not_equal(pid, getpid()); /* not on the coordinator */
        pids[i] = pid;
    }
    /* A worker rank runs each group of calls in a process of its own: the
     * number of processes is the number of groups. Tiny calls travel many
     * to a message, not one each. */
    qsort(pids, N, sizeof *pids, cmp_i64);
    size_t groups = 1;
    for (size_t i = 1; i < N; i++)
        groups += pids[i] != pids[i - 1];
    print_message("100000 tiny calls went in %zu groups\n", groups);
    assert_true(groups <= N / 100);
    free(pids);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
}

static void mpi_a_run_stopped_at_an_error_leaves_the_ranks_ready(void **state)
{
    (void)state;
    reset_log();
    jc_cache *c = fresh_cache("stop.db");
    jc_batch *b = jc_batch_new(c, &(jc_options){.on_error = JC_ON_ERROR_STOP, .verbose = JC_VERBOSE_OFF});
    assert_non_null(b);
    for (int i = 0; i < 400; i++) /* 8 s of work, were it all run */
        assert_int_equal(jc_delayed(b, slow, jc_int(i)), 0);
    time_t t0 = time(NULL);
    jc_results *r = jc_run(b);
    assert_non_null(r);
    assert_int_equal(jc_results_status(r), JC_EFAILED);
    assert_int_equal(jc_result_status(r, 0), JC_STATUS_ERROR);
    assert_true(jc_results_summary(r).skipped > 300);
    assert_true(time(NULL) - t0 < 5);
    jc_results_free(r);
    jc_batch_free(b);
    /* The cancelled groups are dropped by the ranks, and their late
     * results by the coordinator: the next run gets its own, right. */
    jc_results *next = run_squares(c, 1000, 1100, 1);
    jc_results_free(next);
    jc_cache_close(c);
}

static void mpi_the_backend_can_be_chosen_by_the_environment(void **state)
{
    (void)state;
    jc_cache *c = fresh_cache("env.db");
    setenv("JOBCACHE_BACKEND", "in-process", 1);
    reset_log();
    jc_results *r = run_squares(c, 0, 10, 1);
    jc_results_free(r);
    size_t zero;
    assert_int_equal(log_lines(&zero), 10);
    assert_int_equal(zero, 10); /* all on rank 0 */
    setenv("JOBCACHE_BACKEND", "mpi", 1);
    r = run_squares(c, 10, 20, 1);
    jc_results_free(r);
    assert_int_equal(log_lines(&zero), 20);
    assert_int_equal(zero, 10);
    setenv("JOBCACHE_BACKEND", "cluster", 1);
    assert_null(jc_batch_new(c, NULL));
    assert_non_null(strstr(jc_errmsg(), "JOBCACHE_BACKEND is 'cluster'"));
    unsetenv("JOBCACHE_BACKEND");
    jc_cache_close(c);
}

/* A large argument passed to every call (a data set) goes to each worker
 * rank once; later calls, and later runs, send its digest. */
static void mpi_a_large_argument_shared_by_calls_goes_to_each_rank_once(void **state)
{
    (void)state;
    enum { ND = 131072, NI = 16384 }; /* 1 MiB of doubles, 128 KiB of ints */
    double *d = malloc(ND * sizeof *d);
    int64_t *k = malloc(NI * sizeof *k);
    assert_non_null(d);
    assert_non_null(k);
    double base = 0;
    for (size_t j = 0; j < ND; j++)
        base += d[j] = (double)(j % 1000) * 0.5;
    for (size_t j = 0; j < NI; j++)
        base += (double)(k[j] = (int64_t)j - 5);
    jc_cache *c = fresh_cache("big-shared.db");
    for (int round = 0; round < 2; round++) {
        jc_batch *b = new_batch(c, JC_BACKEND_AUTO);
        for (int i = 0; i < 40; i++)
            assert_int_equal(jc_delayed(b, sum_big, jc_doubles_ref(d, ND), jc_int(round * 40 + i),
                                        jc_kw("ints", jc_ints_ref(k, NI))),
                             0);
        size_t before = jc__mpi_sent_bytes();
        jc_results *r = jc_run(b);
        size_t sent = jc__mpi_sent_bytes() - before;
        assert_non_null(r);
        assert_int_equal(jc_results_status(r), JC_OK);
        for (int i = 0; i < 40; i++)
            assert_true(jc_result_double(r, (size_t)i) == base + (double)(round * 40 + i));
        size_t whole = (ND + NI) * 8, ranks = (size_t)jc_mpi_ranks() - 1;
        print_message("round %d: %zu bytes sent for 40 calls of %zu bytes of arguments\n", round, sent, whole);
        if (round == 0)
            assert_true(sent < ranks * whole + 65536); /* once per rank, not 40 times */
        else
            assert_true(sent < 65536); /* the ranks keep them across runs */
        jc_results_free(r);
        jc_batch_free(b);
    }
    jc_cache_close(c);
    free(d);
    free(k);
}

/* ---- pipelines on the ranks ---- */

enum { BIG_N = 131072 }; /* 1 MiB of doubles */

/* big_data(seed): BIG_N doubles; seed 3 fails. */
static int big_data(jc_call *call)
{
    int64_t seed = jc_arg_int(call, 0);
    log_call("big_data", seed);
    if (seed == 3)
        return jc_fail(call, "no data for seed 3");
    double *xs = malloc(BIG_N * sizeof *xs);
    if (!xs)
        return jc_fail(call, "out of memory");
    for (size_t j = 0; j < BIG_N; j++)
        xs[j] = (double)seed + (double)(j % 7);
    int rc = jc_return(call, jc_doubles(xs, BIG_N));
    free(xs);
    return rc;
}
JC_FUNCTION(big_data, "v1");

/* scaled(x, k): x * k. */
static int scaled(jc_call *call)
{
    double x = jc_arg_double(call, 0);
    log_call("scaled", (int64_t)x);
    return jc_return_double(call, x * jc_arg_double(call, 1));
}
JC_FUNCTION(scaled, "v1");

/* 4 seeds: big_data -> 10 sum_big over it -> scaled each. Returns the
 * results; *sum_at and *scaled_at get the indices of seed 0's first sum and
 * seed 3's first scaled. */
static jc_results *run_big_pipeline(jc_cache *c, bool intermediate, size_t *sum_at, size_t *scaled_at)
{
    jc_batch *b = new_batch(c, JC_BACKEND_AUTO);
    for (int seed = 0; seed < 4; seed++) {
        jc_ref data = jc_delayed_ref(b, big_data, jc_int(seed));
        if (intermediate)
            assert_int_equal(jc_intermediate(b, data), 0);
        for (int i = 0; i < 10; i++) {
            jc_ref sum = jc_delayed_ref(b, sum_big, jc_use(data), jc_int(i), jc_kw("ints", jc_ints((int64_t[]){1}, 1)));
            jc_ref out = jc_delayed_ref(b, scaled, jc_use(sum), jc_double(2.0));
            assert_true(jc_ref_ok(out));
            if (intermediate)
                assert_int_equal(jc_intermediate(b, sum), 0);
            if (seed == 0 && i == 0)
                *sum_at = jc_ref_index(sum);
            if (seed == 3 && i == 0)
                *scaled_at = jc_ref_index(out);
        }
    }
    jc_results *r = jc_run(b);
    assert_non_null(r);
    jc_batch_free(b);
    return r;
}

static void mpi_a_pipeline_runs_on_the_ranks_and_a_large_input_goes_to_each_rank_once(void **state)
{
    (void)state;
    reset_log();
    jc_cache *c = fresh_cache("pipeline.db");
    size_t sum_at = 0, scaled_at = 0;
    size_t before = jc__mpi_sent_bytes();
    jc_results *r = run_big_pipeline(c, false, &sum_at, &scaled_at);
    size_t sent = jc__mpi_sent_bytes() - before;
    assert_int_equal(jc_results_status(r), JC_EFAILED);
    jc_progress p = jc_results_summary(r);
    assert_int_equal(p.computed, 3 + 30 + 30);
    assert_int_equal(p.failed, 1);
    assert_int_equal(p.skipped, 20); /* seed 3's sums and what uses them */
    /* sum of seed 0: 7 * (0+1+...+6) * BIG_N / 7 / ... computed exactly: */
    double want = 0 + 1; /* i = 0, ints = [1] */
    for (size_t j = 0; j < BIG_N; j++)
        want += (double)(j % 7);
    assert_true(jc_result_double(r, sum_at) == want);
    assert_true(jc_result_double(r, sum_at + 1) == 2 * want);
    const char *err = jc_result_error(r, scaled_at);
    assert_non_null(err);
    assert_non_null(strstr(err, "skipped: input 1, "));
    assert_non_null(strstr(err, "no data for seed 3"));
    /* Each megabyte input reached each worker rank at most once, not once
     * per call that uses it (30 calls). */
    size_t whole = BIG_N * 8, ranks = (size_t)jc_mpi_ranks() - 1;
    print_message("%zu bytes sent for 30 calls over 3 inputs of %zu bytes\n", sent, whole);
    assert_true(sent < ranks * 3 * whole + 2 * whole);
    size_t zero;
    assert_int_equal(log_lines(&zero), 4 + 30); /* big_data and scaled log their calls */
    assert_int_equal(zero, 0); /* none on the coordinator */
    jc_results_free(r);

    /* The rerun, intermediates not wanted: only the failed call runs again,
     * and no intermediate value is read. */
    r = run_big_pipeline(c, true, &sum_at, &scaled_at);
    p = jc_results_summary(r);
    assert_int_equal(p.cached, 63);
    assert_int_equal(p.computed, 0);
    assert_int_equal(p.failed, 1);
    assert_int_equal(p.inputs_read, 0);
    assert_int_equal(log_lines(NULL), 4 + 30 + 1);
    assert_true(jc_result_double(r, sum_at + 1) == 2 * want);
    jc_results_free(r);
    jc_cache_close(c);
}

/* Run with JOBCACHE_MPI_KEEP=200K on every rank (JC_TEST_KEEP_SMALL=1):
 * sum_ints(P) keeps P on a rank; sum_ints(P, Q) then gets P by reference
 * and Q whole, and keeping Q evicts P while this very call reads P in place.
 * The evicted value must outlive the call (it crashed, or read freed
 * memory, when it was freed at once). */
static void mpi_an_argument_evicted_while_a_call_reads_it_stays_until_the_call_ends(void **state)
{
    (void)state;
    enum { N = 16384 }; /* 128 KiB each: two do not fit in 200 KiB */
    int64_t *p = malloc(N * sizeof *p), *q = malloc(N * sizeof *q);
    assert_non_null(p);
    assert_non_null(q);
    int64_t sp = 0, sq = 0;
    for (int64_t j = 0; j < N; j++) {
        sp += p[j] = j;
        sq += q[j] = 3 * j + 1;
    }
    jc_cache *c = fresh_cache("evict.db");
    for (int round = 0; round < 3; round++) {
        jc_batch *b = jc_batch_new(c, &(jc_options){.on_error = JC_ON_ERROR_CONTINUE, .verbose = JC_VERBOSE_OFF});
        assert_non_null(b);
        /* round r: P alone, then P and Q, then Q and P, with a distinct
         * third argument so that every call is new */
        int64_t tag[1] = {round};
        assert_int_equal(jc_delayed(b, sum_ints, jc_ints_ref(p, N), jc_ints(tag, 1)), 0);
        assert_int_equal(jc_delayed(b, sum_ints, jc_ints_ref(p, N), jc_ints_ref(q, N), jc_ints(tag, 1)), 0);
        assert_int_equal(jc_delayed(b, sum_ints, jc_ints_ref(q, N), jc_ints_ref(p, N), jc_ints(tag, 1)), 0);
        jc_results *r = jc_run(b);
        assert_non_null(r);
        for (size_t i = 0; i < 3; i++)
            if (jc_result_status(r, i) != JC_STATUS_OK)
                fail_msg("round %d, call %zu: %s", round, i, jc_result_error(r, i));
        assert_int_equal(jc_result_int(r, 0), sp + round);
        assert_int_equal(jc_result_int(r, 1), sp + sq + round);
        assert_int_equal(jc_result_int(r, 2), sq + sp + round);
        jc_results_free(r);
        jc_batch_free(b);
    }
    jc_cache_close(c);
    free(p);
    free(q);
}

/* A call that calls exit() in a child of rank 0's own fork pool runs the
 * program's exit handlers there: jobcache's must not end the worker ranks
 * from that child (nor use MPI in it). The MPI runs after it still work. */
static void mpi_an_exit_in_a_child_of_rank_0_leaves_the_worker_ranks_alone(void **state)
{
    (void)state;
    jc_cache *c = fresh_cache("child-exit.db");
    setenv("JOBCACHE_BACKEND", "fork", 1);
    jc_results *r = run_fails(c, 8, 0);
    unsetenv("JOBCACHE_BACKEND");
    assert_int_equal(jc_result_status(r, 7), JC_STATUS_CRASHED);
    assert_non_null(strstr(jc_result_error(r, 7), "exited with status 3"));
    assert_null(strstr(jc_result_error(r, 7), "MPI rank")); /* it ran on rank 0's pool */
    jc_results_free(r);
    reset_log();
    r = run_squares(c, 0, 4 * jc_mpi_ranks(), 1);
    jc_results_free(r);
    size_t zero;
    assert_int_equal(log_lines(&zero), (size_t)(4 * jc_mpi_ranks()));
    assert_int_equal(zero, 0);
    jc_cache_close(c);
}

/* ---- started on its own ---- */

static void mpi_without_a_launcher_nothing_changes_and_mpi_is_refused_clearly(void **state)
{
    (void)state;
    assert_int_equal(jc_mpi_ranks(), 1);
    jc_cache *c = fresh_cache("alone.db");
    assert_null(jc_batch_new(c, &(jc_options){.backend = JC_BACKEND_MPI}));
    assert_int_equal(jc_errcode(), JC_EINVAL);
    assert_non_null(strstr(jc_errmsg(), "MPI backend"));
    assert_non_null(strstr(jc_errmsg(), "mpirun"));
    setenv("JOBCACHE_BACKEND", "mpi", 1);
    assert_null(jc_batch_new(c, NULL));
    unsetenv("JOBCACHE_BACKEND");
    /* AUTO is the fork pool or in-process, as always. */
    reset_log();
    jc_results *r = run_squares(c, 0, 10, 1);
    jc_results_free(r);
    size_t zero;
    assert_int_equal(log_lines(&zero), 10);
    jc_cache_close(c);
}

#ifndef JC_TEST_HAVE_MPI
/* A jobcache built without MPI, started as several ranks, would run the
 * whole program on each: jc_mpi_init refuses, saying why. */
static void mpi_a_library_without_mpi_refuses_a_job_of_several_ranks(void **state)
{
    (void)state;
    setenv("OMPI_COMM_WORLD_SIZE", "3", 1);
    int argc = 1;
    char *args[] = {"test_mpi", NULL}, **argv = args;
    assert_int_equal(jc_mpi_init(&argc, &argv), JC_EINVAL);
    assert_non_null(strstr(jc_errmsg(), "started as 3 ranks"));
    assert_non_null(strstr(jc_errmsg(), "built without MPI"));
    unsetenv("OMPI_COMM_WORLD_SIZE");
    assert_int_equal(jc_mpi_init(&argc, &argv), 0);
}
#endif

/* Run without jc_mpi_init (JC_TEST_SKIP_MPI_INIT=1), as a program that
 * forgot it would be: under a launcher of several ranks, jc_batch_new says
 * so on stderr, once; a backend set explicitly silences it. */
static char *stderr_of(jc_cache *c, const jc_options *o, int times)
{
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "forgotten.err");
    fflush(stderr);
    int saved = dup(2);
    FILE *f = freopen(path, "w", stderr);
    assert_non_null(f);
    for (int i = 0; i < times; i++)
        jc_batch_free(jc_batch_new(c, o));
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    return jc_test_read_file(path, NULL);
}

static void mpi_forgetting_jc_mpi_init_under_a_launcher_is_said_once(void **state)
{
    (void)state;
    jc_cache *c = fresh_cache("forgotten.db");
    setenv("OMPI_COMM_WORLD_SIZE", "3", 1);
    setenv("JOBCACHE_BACKEND", "fork", 1);
    char *quiet = stderr_of(c, NULL, 1);
    unsetenv("JOBCACHE_BACKEND");
    assert_string_equal(quiet, "");
    char *text = stderr_of(c, NULL, 3);
    unsetenv("OMPI_COMM_WORLD_SIZE");
    assert_non_null(strstr(text, "started as one of 3 ranks"));
    assert_non_null(strstr(text, "did not call jc_mpi_init"));
    assert_null(strstr(strstr(text, "jc_mpi_init") + 1, "started as one of")); /* once */
    free(quiet);
    free(text);
    jc_cache_close(c);
}

int main(int argc, char **argv)
{
    jc_test_path(log_path, sizeof log_path, "calls.log");
    if (getenv("JC_TEST_SKIP_MPI_INIT")) {
        const struct CMUnitTest forgotten[] = {
            cmocka_unit_test(mpi_forgetting_jc_mpi_init_under_a_launcher_is_said_once),
        };
        return cmocka_run_group_tests(forgotten, NULL, NULL);
    }
    /* Worker ranks stay in here; rank 0 (or a program on its own) goes on. */
    if (jc_mpi_init(&argc, &argv) < 0) {
        fprintf(stderr, "test_mpi: %s\n", jc_errmsg());
        return 2;
    }
    if (getenv("JC_TEST_KEEP_SMALL") && jc_mpi_ranks() > 1) {
        const struct CMUnitTest small[] = {
            cmocka_unit_test(mpi_an_argument_evicted_while_a_call_reads_it_stays_until_the_call_ends),
        };
        return cmocka_run_group_tests(small, NULL, NULL);
    }
    if (jc_mpi_ranks() == 1) {
        const struct CMUnitTest alone[] = {
            cmocka_unit_test(mpi_without_a_launcher_nothing_changes_and_mpi_is_refused_clearly),
#ifndef JC_TEST_HAVE_MPI
            cmocka_unit_test(mpi_a_library_without_mpi_refuses_a_job_of_several_ranks),
#endif
        };
        return cmocka_run_group_tests(alone, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mpi_every_value_type_comes_back_as_n_jobs_1_gives_it),
        cmocka_unit_test(mpi_only_misses_are_sent_and_a_rerun_sends_nothing),
        cmocka_unit_test(mpi_the_run_is_recorded_with_the_backend_and_its_worker_ranks),
        cmocka_unit_test(mpi_identical_calls_are_computed_once),
        cmocka_unit_test(mpi_a_functions_error_is_that_calls_error_and_is_not_cached),
        cmocka_unit_test(mpi_a_call_that_aborts_or_exits_fails_alone_and_the_ranks_go_on),
        cmocka_unit_test(mpi_a_call_past_the_timeout_is_killed_and_fails_as_timed_out),
        cmocka_unit_test(mpi_a_hundred_thousand_tiny_calls_go_in_groups),
        cmocka_unit_test(mpi_a_run_stopped_at_an_error_leaves_the_ranks_ready),
        cmocka_unit_test(mpi_the_backend_can_be_chosen_by_the_environment),
        cmocka_unit_test(mpi_a_large_argument_shared_by_calls_goes_to_each_rank_once),
        cmocka_unit_test(mpi_an_exit_in_a_child_of_rank_0_leaves_the_worker_ranks_alone),
        cmocka_unit_test(mpi_a_pipeline_runs_on_the_ranks_and_a_large_input_goes_to_each_rank_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
