/*
 * Tests of batches and runs (src/run/, with src/function/call.c and src/cache/ beneath):
 * what a program sees when it submits delayed calls and runs them against a
 * cache, in-process (n_jobs = 1) unless a test says otherwise.
 *
 * The test functions count their invocations in globals, so that a test can
 * say "computed exactly N times". Counters only move for calls computed in
 * this process, so the tests that count use n_jobs = 1.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <math.h>
#include <regex.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jobcache.h>
#include "run/progress.h"
#include "jc_internal.h"

/* add/v1 and fails/v1, with their call counters, come from testutil.h. */
#define JC_TEST_WANT_ADD_FAILS
#include "testutil.h"

#define PATH_CAP 4096

/* ---- the cacheable functions the tests use ---- */

static int wants_double(jc_call *call)
{
    double d = jc_arg_double(call, 0);
    return jc_return_double(call, d * 2);
}
JC_FUNCTION(wants_double, "v1");

static int wants_steps(jc_call *call)
{
    int64_t steps = jc_kwarg_int(call, "steps");
    return jc_return_int(call, steps + 1);
}
JC_FUNCTION(wants_steps, "v1");

static int nothing_calls;
static int nothing(jc_call *call)
{
    (void)call;
    nothing_calls++;
    return 0;
}
JC_FUNCTION(nothing, "v1");

static int returns_null(jc_call *call)
{
    (void)call;
    return jc_return(call, jc_null());
}
JC_FUNCTION(returns_null, "v1");

/* Sleeps 2 ms, so that compute time (and time saved by hits) is measurable. */
static int slow_calls;
static int slow(jc_call *call)
{
    slow_calls++;
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
    return jc_return_double(call, (double)jc_arg_int(call, 0) / 4);
}
JC_FUNCTION(slow, "v1");

/* Impure on purpose: its result depends on a global, so that a test can tell
 * a recomputed entry from a stored one. */
static int generation = 1;
static int versioned_calls;
static int versioned(jc_call *call)
{
    versioned_calls++;
    return jc_return_int(call, jc_arg_int(call, 0) * 100 + generation);
}
JC_FUNCTION(versioned, "v1");

/* Returns an error code without saying why. */
static int silent_failure(jc_call *call)
{
    (void)call;
    return JC_EINVAL;
}
JC_FUNCTION(silent_failure, "v1");

/* Fails, then sets a result anyway: still a failure. */
static int fail_then_return(jc_call *call)
{
    jc_fail(call, "first %s", "reason");
    jc_fail(call, "second reason");
    return jc_return_int(call, 1);
}
JC_FUNCTION(fail_then_return, "v1");

/* Returns an array borrowed from its own stack frame: the result outlives
 * the call, so the library must not keep pointing at the frame. */
static int stack_array(jc_call *call)
{
    double xs[64];
    for (int i = 0; i < 64; i++)
        xs[i] = jc_arg_double(call, 0) + i;
    return jc_return(call, jc_list(jc_doubles_ref(xs, 64), jc_doubles_ref(xs, 2)));
}
JC_FUNCTION(stack_array, "v1");

/* Never registered. */
static int unregistered(jc_call *call)
{
    return jc_return_int(call, 1);
}

/* ---- helpers ---- */

static jc_batch *new_batch(jc_cache *c, int n_jobs, jc_on_error on_error)
{
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = n_jobs, .on_error = on_error,
                                                .verbose = JC_VERBOSE_OFF});
    if (!b)
        fail_msg("jc_batch_new: %s", jc_errmsg());
    return b;
}

/* Runs add(i, 1000) for i in [from, to) and returns the results. */
static jc_results *run_adds(jc_cache *c, int from, int to)
{
    jc_batch *b = new_batch(c, 1, JC_ON_ERROR_STOP);
    for (int i = from; i < to; i++)
        assert_int_equal(jc_delayed(b, add, jc_int(i), jc_int(1000)), 0);
    jc_results *res = jc_run(b);
    if (!res)
        fail_msg("jc_run: %s", jc_errmsg());
    jc_batch_free(b);
    return res;
}

static int64_t count_entries(const char *path)
{
    return jc_test_sql_int(path, "SELECT count(*) FROM entries");
}

/* ---- order, hits, deduplication ---- */

static void run_results_come_back_in_submission_order(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "order.db"), 0);
    jc_batch *b = new_batch(c, 1, JC_ON_ERROR_STOP);
    /* Descending, and interleaved with another function. */
    for (int i = 49; i >= 0; i--) {
        assert_int_equal(jc_delayed(b, add, jc_int(i), jc_int(1000)), 0);
        assert_int_equal(jc_delayed(b, fails, jc_int(i == 3 ? 4 : i)), 0);
    }
    assert_int_equal(jc_batch_count(b), 100);
    jc_results *res = jc_run(b);
    assert_non_null(res);
    assert_int_equal(jc_results_status(res), JC_OK);
    assert_int_equal(jc_results_count(res), 100);
    for (int k = 0; k < 50; k++) {
        int i = 49 - k;
        assert_int_equal(jc_result_status(res, 2 * k), JC_STATUS_OK);
        assert_int_equal(jc_result_int(res, 2 * k), i + 1000);
        assert_int_equal(jc_result_int(res, 2 * k + 1), (i == 3 ? 4 : i) * 10);
        assert_null(jc_result_error(res, 2 * k));
    }
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
}

static void run_rerun_on_the_same_cache_is_all_hits(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "rerun.db");

    jc_cache *c = open_cache(path, 0);
    add_calls = 0;
    jc_results *first = run_adds(c, 0, 20);
    assert_int_equal(add_calls, 20);
    for (size_t k = 0; k < 20; k++)
        assert_false(jc_result_cached(first, k));
    jc_progress p = jc_results_summary(first);
    assert_int_equal(p.cached, 0);
    assert_int_equal(p.computed, 20);
    jc_cache_close(c);

    /* A new process would reopen the file: so does the test. */
    c = open_cache(path, 0);
    jc_results *second = run_adds(c, 0, 20);
    assert_int_equal(add_calls, 20); /* nothing computed */
    assert_int_equal(jc_results_status(second), JC_OK);
    for (size_t k = 0; k < 20; k++) {
        assert_true(jc_result_cached(second, k));
        assert_int_equal(jc_result_status(second, k), JC_STATUS_OK);
        assert_true(jc_value_equal(jc_result_value(first, k), jc_result_value(second, k)));
        assert_int_equal(jc_result_int(second, k), (int64_t)k + 1000);
    }
    p = jc_results_summary(second);
    assert_int_equal(p.total, 20);
    assert_int_equal(p.cached, 20);
    assert_int_equal(p.computed, 0);
    assert_int_equal(p.done, 20);
    jc_results_free(first);
    jc_results_free(second);
    jc_cache_close(c);
    assert_int_equal(count_entries(path), 20);
    /* Each hit was counted in the file. */
    assert_int_equal(jc_test_hits_sql(path, "SELECT count(*) FROM entries WHERE hits = 1"), 20);
}

/* Hits write no entry's row (issue 22): a rerun appends one row to the hit
 * log, which stats counts at once (read-only too, without writing) and
 * folds into the entries when it can write; the log is folded every 64
 * rows, so that it stays short; a damaged row is dropped. */
static void run_hits_go_to_the_hit_log_and_are_folded_later(void **state)
{
    (void)state;
    if (jc_test_file_only())
        return;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "hitlog.db");
    jc_test_remove_db(path);
    jc_cache *c = open_cache(path, 0);
    jc_results_free(run_adds(c, 0, 100));
    jc_results_free(run_adds(c, 0, 100)); /* 100 hits */
    jc_cache_close(c);
    assert_int_equal(jc_test_sql_int(path, "SELECT sum(hits) FROM entries"), 0);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM hit_log"), 1);
    assert_int_equal(jc_test_sql_int(path, "SELECT hits FROM hit_log"), 100);
    assert_int_equal(jc_test_sql_int(path, "SELECT length(keys) FROM hit_log"), 100 * 20);
    { /* its keys in key order (docs/format.md), each with a count of 1 */
        sqlite3 *db = NULL;
        sqlite3_stmt *q = NULL;
        assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, "SELECT keys FROM hit_log", -1, &q, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        const uint8_t *k = sqlite3_column_blob(q, 0);
        for (int i = 0; i < 100; i++) {
            if (i)
                assert_true(memcmp(k + 20 * (i - 1), k + 20 * i, 16) < 0);
            assert_memory_equal(k + 20 * i + 16, "\x01\x00\x00\x00", 4);
        }
        sqlite3_finalize(q);
        sqlite3_close(db);
    }
    /* Read-only: counted, not written. */
    jc_test_bytes before = jc_test_snapshot(path);
    c = open_cache(path, JC_CACHE_READONLY);
    jc_stats *st = jc_cache_stats(c);
    assert_non_null(st);
    assert_int_equal(st->hits, 100);
    assert_int_equal(st->nfunctions, 1);
    assert_int_equal(st->functions[0].hits, 100); /* per function too */
    jc_stats_free(st);
    jc_entries *it = jc_entries_query(c, NULL); /* and per entry, as ls shows them */
    jc_entry_info info;
    int listed = 0;
    while (jc_entries_next(it, &info) == 1) {
        assert_int_equal(info.hits, 1);
        listed++;
    }
    jc_entries_free(it);
    assert_int_equal(listed, 100);
    jc_cache_close(c);
    jc_test_assert_unchanged(path, before);
    /* Writable: folded. */
    c = open_cache(path, 0);
    st = jc_cache_stats(c);
    assert_int_equal(st->hits, 100);
    jc_stats_free(st);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries WHERE hits = 1"), 100);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM hit_log"), 0);
    jc_cache_close(c);
    /* 70 runs with a hit each: the log never holds 64 rows. */
    for (int i = 0; i < 70; i++) {
        c = open_cache(path, 0);
        jc_results_free(run_adds(c, i, i + 1));
        jc_cache_close(c);
        assert_true(jc_test_sql_int(path, "SELECT count(*) FROM hit_log") < 64);
    }
    assert_int_equal(jc_test_sql_int(path, "SELECT (SELECT sum(hits) FROM entries) + (SELECT total(hits) FROM hit_log)"),
                     170);
    /* A damaged row: dropped at the fold, the others counted. */
    char sql_bad[] = "INSERT INTO hit_log (at, hits, saved, keys) VALUES (1, 5, 0, x'01020304050607')";
    assert_int_equal(jc_test_sql_exec(path, sql_bad), SQLITE_OK);
    c = open_cache(path, 0);
    st = jc_cache_stats(c);
    assert_non_null(st);
    jc_stats_free(st);
    jc_cache_close(c);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM hit_log"), 0);
    assert_int_equal(jc_test_sql_int(path, "SELECT sum(hits) FROM entries"), 170);
}

static void run_extending_a_sweep_computes_only_the_new_calls(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "extend.db"), 0);
    add_calls = 0;
    jc_results_free(run_adds(c, 0, 10));
    assert_int_equal(add_calls, 10);

    jc_results *res = run_adds(c, 0, 15);
    assert_int_equal(add_calls, 15);
    for (size_t k = 0; k < 15; k++) {
        assert_int_equal(jc_result_cached(res, k), k < 10);
        assert_int_equal(jc_result_int(res, k), (int64_t)k + 1000);
    }
    jc_progress p = jc_results_summary(res);
    assert_int_equal(p.cached, 10);
    assert_int_equal(p.computed, 5);
    jc_results_free(res);
    jc_cache_close(c);
    assert_int_equal(count_entries(path), 15);
}

static int results_seen;
static size_t result_index[64];
static void record_result(const jc_results *res, size_t index, void *userdata)
{
    /* The result is known when the callback fires. */
    assert_int_equal(jc_result_status(res, index), JC_STATUS_OK);
    assert_ptr_equal(userdata, &results_seen);
    if (results_seen < 64)
        result_index[results_seen] = index;
    results_seen++;
}

static void run_identical_calls_in_one_batch_are_computed_once_and_reported_for_each(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "dedup.db"), 0);
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF,
                                                .on_result = record_result, .userdata = &results_seen});
    assert_non_null(b);
    /* Positions: 0 1 2 3 4 5 */
    jc_delayed(b, add, jc_int(1), jc_int(2));
    jc_delayed(b, add, jc_int(2), jc_int(3));
    jc_delayed(b, add, jc_int(1), jc_int(2));
    jc_delayed(b, add, jc_int(1), jc_int(2));
    jc_delayed(b, add, jc_int(2), jc_int(3));
    jc_delayed(b, add, jc_int(2), jc_int(1)); /* another call: same sum, other arguments */
    add_calls = 0;
    results_seen = 0;
    jc_results *res = jc_run(b);
    assert_non_null(res);
    assert_int_equal(add_calls, 3);
    assert_int_equal(jc_results_count(res), 6);
    const int64_t want[] = {3, 5, 3, 3, 5, 3};
    for (size_t k = 0; k < 6; k++) {
        assert_int_equal(jc_result_status(res, k), JC_STATUS_OK);
        assert_int_equal(jc_result_int(res, k), want[k]);
        assert_false(jc_result_cached(res, k));
    }
    jc_progress p = jc_results_summary(res);
    assert_int_equal(p.total, 6);
    assert_int_equal(p.computed, 6); /* counted per submission */
    assert_int_equal(p.done, 6);
    /* on_result fires once per distinct call, with its first submission. */
    assert_int_equal(results_seen, 3);
    bool seen[6] = {false};
    for (int i = 0; i < results_seen; i++) {
        assert_true(result_index[i] < 6);
        assert_false(seen[result_index[i]]);
        seen[result_index[i]] = true;
    }
    assert_true(seen[0] && seen[1] && seen[5]);
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_int_equal(count_entries(path), 3);
}

static void run_on_result_fires_once_per_distinct_computed_call(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "onresult.db"), 0);
    jc_results_free(run_adds(c, 0, 3)); /* 0..2 become hits */
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF,
                                                .on_result = record_result, .userdata = &results_seen});
    for (int i = 0; i < 8; i++)
        jc_delayed(b, add, jc_int(i % 6), jc_int(1000)); /* 0..5, then 0, 1 again */
    results_seen = 0;
    jc_results *res = jc_run(b);
    assert_non_null(res);
    /* 3, 4 and 5 were computed, each once; hits are not "computed". */
    int computed_seen = 0;
    bool seen[8] = {false};
    for (int i = 0; i < results_seen && i < 64; i++) {
        size_t k = result_index[i];
        assert_true(k < 8);
        assert_false(seen[k]);
        seen[k] = true;
        if (!jc_result_cached(res, k)) {
            assert_true(k >= 3 && k <= 5);
            computed_seen++;
        }
    }
    assert_int_equal(computed_seen, 3);
    assert_int_equal(results_seen, 6); /* and the 3 distinct hits, each once */
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
}

static int progress_calls;
static jc_progress last_progress;
static void record_progress(const jc_progress *p, void *userdata)
{
    (void)userdata;
    progress_calls++;
    assert_true(p->done <= p->total);
    assert_true(p->cached + p->computed + p->failed + p->skipped <= p->total);
    last_progress = *p;
}

static void run_on_progress_fires_and_ends_with_every_call_done(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "progress.db"), 0);
    jc_results_free(run_adds(c, 0, 4));
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF,
                                                .on_progress = record_progress});
    for (int i = 0; i < 10; i++)
        jc_delayed(b, add, jc_int(i), jc_int(1000));
    progress_calls = 0;
    jc_results *res = jc_run(b);
    assert_non_null(res);
    assert_true(progress_calls >= 1);
    assert_int_equal(last_progress.total, 10);
    assert_int_equal(last_progress.done, 10);
    assert_int_equal(last_progress.cached, 4);
    assert_int_equal(last_progress.computed, 6);
    assert_int_equal(last_progress.running, 0);
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
}

/* ---- failures ---- */

static void run_errors_are_never_cached(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "nocache-errors.db");
    for (int round = 0; round < 2; round++) {
        jc_cache *c = open_cache(path, 0);
        jc_batch *b = new_batch(c, 1, JC_ON_ERROR_CONTINUE);
        for (int i = 0; i < 6; i++)
            jc_delayed(b, fails, jc_int(i));
        fails_calls = 0;
        jc_results *res = jc_run(b);
        assert_non_null(res);
        /* First round: all 6 run. Second: only the failing one runs again. */
        assert_int_equal(fails_calls, round == 0 ? 6 : 1);
        assert_int_equal(jc_result_status(res, 3), JC_STATUS_ERROR);
        assert_false(jc_result_cached(res, 3));
        for (size_t k = 0; k < 6; k++)
            if (k != 3)
                assert_int_equal(jc_result_cached(res, k), round == 1);
        jc_results_free(res);
        jc_batch_free(b);
        jc_cache_close(c);
        assert_int_equal(count_entries(path), 5);
    }
}

static void run_stop_on_error_skips_later_calls_and_keeps_and_stores_earlier_results(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "stop.db");
    jc_cache *c = open_cache(path, 0);
    jc_batch *b = new_batch(c, 1, JC_ON_ERROR_STOP); /* the default, made explicit */
    for (int i = 0; i < 10; i++)
        jc_delayed(b, fails, jc_int(i));
    fails_calls = 0;
    jc_results *res = jc_run(b);
    assert_non_null(res);
    assert_int_equal(fails_calls, 4); /* 0, 1, 2, then 3 fails */
    assert_int_equal(jc_results_status(res), JC_EFAILED);
    for (size_t k = 0; k < 3; k++) {
        assert_int_equal(jc_result_status(res, k), JC_STATUS_OK);
        assert_int_equal(jc_result_int(res, k), (int64_t)k * 10);
    }
    assert_int_equal(jc_result_status(res, 3), JC_STATUS_ERROR);
    for (size_t k = 4; k < 10; k++) {
        assert_int_equal(jc_result_status(res, k), JC_STATUS_SKIPPED);
        assert_null(jc_result_value(res, k));
        assert_contains(jc_result_error(res, k), "skipped");
        assert_contains(jc_result_error(res, k), "fails");
    }
    jc_progress p = jc_results_summary(res);
    assert_int_equal(p.total, 10);
    assert_int_equal(p.computed, 3);
    assert_int_equal(p.failed, 1);
    assert_int_equal(p.skipped, 6);
    assert_int_equal(p.done, 10);
    assert_contains(jc_results_message(res), "fails(3): three is not allowed");
    jc_results_free(res);
    jc_batch_free(b);

    /* What ran before the failure is stored: a new run hits it. */
    assert_int_equal(count_entries(path), 3);
    b = new_batch(c, 1, JC_ON_ERROR_CONTINUE);
    for (int i = 0; i < 10; i++)
        jc_delayed(b, fails, jc_int(i));
    fails_calls = 0;
    res = jc_run(b);
    assert_non_null(res);
    assert_int_equal(fails_calls, 7);
    for (size_t k = 0; k < 3; k++)
        assert_true(jc_result_cached(res, k));
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
}

static void run_continue_on_error_runs_every_call(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "continue.db"), 0);
    jc_batch *b = new_batch(c, 1, JC_ON_ERROR_CONTINUE);
    for (int i = 0; i < 10; i++)
        jc_delayed(b, fails, jc_int(i % 5)); /* 3 fails twice: one distinct call */
    fails_calls = 0;
    jc_results *res = jc_run(b);
    assert_non_null(res);
    assert_int_equal(fails_calls, 5);
    assert_int_equal(jc_results_status(res), JC_EFAILED);
    for (size_t k = 0; k < 10; k++) {
        if (k % 5 == 3) {
            assert_int_equal(jc_result_status(res, k), JC_STATUS_ERROR);
            assert_contains(jc_result_error(res, k), "fails(3): three is not allowed");
        } else {
            assert_int_equal(jc_result_status(res, k), JC_STATUS_OK);
            assert_int_equal(jc_result_int(res, k), (int64_t)(k % 5) * 10);
        }
    }
    jc_progress p = jc_results_summary(res);
    assert_int_equal(p.computed, 8);
    assert_int_equal(p.failed, 2);
    assert_int_equal(p.skipped, 0);
    assert_contains(jc_results_message(res), "fails(3)");
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
}

static void run_a_failure_message_names_the_function_and_its_arguments(void **state)
{
    (void)state;
    jc_cache *c = open_cache(NULL, JC_CACHE_DISABLED);
    jc_batch *b = new_batch(c, 1, JC_ON_ERROR_CONTINUE);
    jc_delayed(b, fails, jc_int(3), jc_str("label"), jc_kw("weight", jc_double(0.5)));
    jc_results *res = jc_run(b);
    assert_non_null(res);
    assert_int_equal(jc_result_status(res, 0), JC_STATUS_ERROR);
    assert_string_equal(jc_result_error(res, 0), "fails(3, \"label\", weight=0.5): three is not allowed");
    assert_null(jc_result_value(res, 0));
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
}

static void run_a_wrong_typed_argument_is_an_error_naming_the_argument_and_types(void **state)
{
    (void)state;
    jc_cache *c = open_cache(NULL, JC_CACHE_DISABLED);
    jc_batch *b = new_batch(c, 1, JC_ON_ERROR_CONTINUE);
    jc_delayed(b, wants_double, jc_int(2));      /* an int is not read as a double */
    jc_delayed(b, wants_double, jc_double(2));
    jc_delayed(b, wants_double);                 /* missing */
    jc_delayed(b, wants_steps, jc_kw("steps", jc_str("many")));
    jc_results *res = jc_run(b);
    assert_non_null(res);
    assert_int_equal(jc_result_status(res, 0), JC_STATUS_ERROR);
    assert_string_equal(jc_result_error(res, 0), "wants_double(2): argument 0 is int, expected double");
    assert_int_equal(jc_result_status(res, 1), JC_STATUS_OK);
    assert_true(jc_result_double(res, 1) == 4.0);
    assert_int_equal(jc_result_status(res, 2), JC_STATUS_ERROR);
    assert_contains(jc_result_error(res, 2), "wants_double(): argument 0 is missing");
    assert_contains(jc_result_error(res, 2), "double");
    assert_int_equal(jc_result_status(res, 3), JC_STATUS_ERROR);
    assert_string_equal(jc_result_error(res, 3),
                        "wants_steps(steps=\"many\"): named argument \"steps\" is str, expected int");
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
}

static void run_a_missing_named_argument_is_an_error_naming_it(void **state)
{
    (void)state;
    jc_cache *c = open_cache(NULL, JC_CACHE_DISABLED);
    jc_batch *b = new_batch(c, 1, JC_ON_ERROR_CONTINUE);
    jc_delayed(b, wants_steps, jc_int(5), jc_kw("stops", jc_int(3)));
    jc_delayed(b, wants_steps, jc_kw("steps", jc_int(3)));
    jc_results *res = jc_run(b);
    assert_non_null(res);
    assert_int_equal(jc_result_status(res, 0), JC_STATUS_ERROR);
    assert_string_equal(jc_result_error(res, 0),
                        "wants_steps(5, stops=3): named argument \"steps\" is missing, expected int");
    assert_int_equal(jc_result_status(res, 1), JC_STATUS_OK);
    assert_int_equal(jc_result_int(res, 1), 4);
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
}

/* Issue 9 item 5: returning 0 without a result is a forgotten jc_return, an
 * error naming the function, never a cached null; in-process and in forked
 * workers alike. */
static void run_a_function_that_returns_0_without_a_result_is_an_error_naming_it(void **state)
{
    (void)state;
    static const int jobs[] = {1, 2};
    for (size_t j = 0; j < 2; j++) {
        char path[PATH_CAP];
        jc_cache *c = open_cache(jc_test_path(path, sizeof path, "nothing.db"), 0);
        nothing_calls = 0;
        for (int round = 0; round < 2; round++) {
            jc_batch *b = new_batch(c, jobs[j], JC_ON_ERROR_CONTINUE);
            jc_delayed(b, nothing, jc_int(1));
            jc_delayed(b, returns_null, jc_int(1));
            jc_results *res = jc_run(b);
            assert_non_null(res);
            assert_int_equal(jc_result_status(res, 0), JC_STATUS_ERROR);
            assert_null(jc_result_value(res, 0));
            assert_false(jc_result_cached(res, 0)); /* computed again on the second round */
            assert_contains(jc_result_error(res, 0), "nothing(1): returned 0 without setting a result");
            /* An explicit null is a result like any other, and cached. */
            assert_int_equal(jc_result_status(res, 1), JC_STATUS_OK);
            assert_int_equal(jc_value_type(jc_result_value(res, 1)), JC_TYPE_NULL);
            assert_int_equal(jc_result_cached(res, 1), round == 1);
            jc_results_free(res);
            jc_batch_free(b);
        }
        if (jobs[j] == 1)
            assert_int_equal(nothing_calls, 2); /* never a hit */
        jc_cache_close(c);
        assert_int_equal(count_entries(path), 1); /* returns_null's only */
    }
}

static void run_a_function_that_fails_without_jc_fail_or_returns_after_it_is_an_error(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "silent.db"), 0);
    jc_batch *b = new_batch(c, 1, JC_ON_ERROR_CONTINUE);
    jc_delayed(b, silent_failure, jc_int(1));
    jc_delayed(b, fail_then_return);
    jc_results *res = jc_run(b);
    assert_non_null(res);
    assert_int_equal(jc_result_status(res, 0), JC_STATUS_ERROR);
    assert_contains(jc_result_error(res, 0), "silent_failure(1): returned -1");
    assert_contains(jc_result_error(res, 0), "without calling jc_fail");
    assert_int_equal(jc_result_status(res, 1), JC_STATUS_ERROR);
    assert_string_equal(jc_result_error(res, 1), "fail_then_return(): first reason"); /* the first wins */
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_int_equal(count_entries(path), 0);
}

static void run_argument_accessors_given_no_call_return_zero_values(void **state)
{
    (void)state;
    assert_int_equal(jc_arg_count(NULL), 0);
    assert_null(jc_arg(NULL, 0));
    assert_null(jc_kwarg(NULL, "x"));
    assert_int_equal(jc_arg_int(NULL, 0), 0);
    assert_true(jc_arg_double(NULL, 0) == 0.0);
    assert_false(jc_arg_bool(NULL, 0));
    assert_null(jc_arg_str(NULL, 0));
    size_t n = 99;
    assert_null(jc_arg_doubles(NULL, 0, &n));
    assert_int_equal(n, 0);
    assert_int_equal(jc_kwarg_int(NULL, "x"), 0);
    assert_null(jc_kwarg_str(NULL, "x"));
    assert_null(jc_call_function(NULL));
    assert_int_equal(jc_return_int(NULL, 1), JC_EINVAL);
    assert_int_equal(jc_fail(NULL, "x"), JC_EFAILED);
}

/* Scribbles over the stack where a returned frame was. */
static void __attribute__((noinline)) scribble(void)
{
    volatile double junk[512];
    for (int i = 0; i < 512; i++)
        junk[i] = -1;
    (void)junk[0];
}

static void run_a_result_borrowing_the_functions_own_memory_is_kept_intact(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "borrowed-result.db"), 0);
    for (int round = 0; round < 2; round++) {
        jc_batch *b = new_batch(c, 1, JC_ON_ERROR_STOP);
        for (int i = 0; i < 4; i++)
            jc_delayed(b, stack_array, jc_double(i * 100));
        jc_results *res = jc_run(b);
        assert_non_null(res);
        scribble();
        for (size_t k = 0; k < 4; k++) {
            const jc_value *v = jc_result_value(res, k);
            const double *xs = NULL;
            size_t n = 0;
            assert_int_equal(jc_value_get_doubles(jc_value_at(v, 0), &xs, &n), 0);
            assert_int_equal(n, 64);
            for (size_t i = 0; i < 64; i++)
                assert_true(xs[i] == (double)k * 100 + (double)i);
            assert_int_equal(jc_value_get_doubles(jc_value_at(v, 1), &xs, &n), 0);
            assert_int_equal(n, 2);
            assert_true(xs[1] == (double)k * 100 + 1);
        }
        jc_results_free(res);
        jc_batch_free(b);
    }
    jc_value *v = jc_memo(c, stack_array, jc_double(0.5));
    scribble();
    const double *xs = NULL;
    size_t n = 0;
    assert_int_equal(jc_value_get_doubles(jc_value_at(v, 0), &xs, &n), 0);
    assert_true(xs[63] == 63.5);
    jc_value_free(v);
    jc_cache_close(c);
}

/* ---- results ---- */

static void run_results_status_is_ok_only_when_every_call_succeeded(void **state)
{
    (void)state;
    jc_cache *c = open_cache(NULL, JC_CACHE_DISABLED);
    jc_batch *b = new_batch(c, 1, JC_ON_ERROR_CONTINUE);
    jc_delayed(b, fails, jc_int(1));
    jc_delayed(b, fails, jc_int(2));
    jc_results *res = jc_run(b);
    assert_int_equal(jc_results_status(res), JC_OK);
    jc_results_free(res);
    jc_batch_free(b);

    b = new_batch(c, 1, JC_ON_ERROR_CONTINUE);
    jc_delayed(b, fails, jc_int(1));
    jc_delayed(b, fails, jc_int(3));
    res = jc_run(b);
    assert_int_equal(jc_results_status(res), JC_EFAILED);
    assert_contains(jc_results_message(res), "1 of 2 calls failed");
    assert_contains(jc_results_message(res), "fails(3): three is not allowed");
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);

    assert_int_equal(jc_results_status(NULL), JC_EINVAL);
    assert_int_equal(jc_results_count(NULL), 0);
}

static void run_a_warm_rerun_reports_hits_and_the_compute_time_they_saved(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "saved.db"), 0);
    double computed_seconds[5];
    for (int round = 0; round < 2; round++) {
        jc_batch *b = new_batch(c, 1, JC_ON_ERROR_CONTINUE);
        for (int i = 0; i < 5; i++)
            jc_delayed(b, slow, jc_int(i));
        jc_delayed(b, fails, jc_int(3));
        slow_calls = 0;
        jc_results *res = jc_run(b);
        assert_non_null(res);
        assert_int_equal(slow_calls, round == 0 ? 5 : 0);
        jc_progress p = jc_results_summary(res);
        assert_int_equal(p.total, 6);
        assert_int_equal(p.cached, round == 0 ? 0 : 5);
        assert_int_equal(p.computed, round == 0 ? 5 : 0);
        assert_int_equal(p.failed, 1);
        assert_int_equal(p.skipped, 0);
        assert_int_equal(p.done, 6);
        assert_int_equal(p.running, 0);
        assert_true(p.elapsed >= 0);
        for (size_t k = 0; k < 5; k++) {
            double s = jc_result_seconds(res, k);
            if (round == 0) {
                assert_true(s >= 0.0019); /* it slept 2 ms */
                computed_seconds[k] = s;
            } else {
                /* A hit reports when it was computed. */
                assert_true(s == computed_seconds[k]);
            }
            assert_true(jc_result_double(res, k) == (double)k / 4);
        }
        if (round == 0)
            assert_true(p.saved == 0);
        else
            assert_true(p.saved >= 5 * 0.0019);
        jc_results_free(res);
        jc_batch_free(b);
    }
    jc_cache_close(c);
}

static void run_result_double_and_int_convert_or_give_nan_and_zero(void **state)
{
    (void)state;
    jc_cache *c = open_cache(NULL, JC_CACHE_DISABLED);
    jc_batch *b = new_batch(c, 1, JC_ON_ERROR_CONTINUE);
    jc_delayed(b, slow, jc_int(3));          /* 0.75 */
    jc_delayed(b, add, jc_int(3), jc_int(4)); /* 7 */
    jc_delayed(b, fails, jc_int(3));          /* error */
    jc_results *res = jc_run(b);
    assert_non_null(res);
    assert_true(jc_result_double(res, 0) == 0.75);
    assert_int_equal(jc_result_int(res, 0), 0);    /* a double is not read as an int */
    assert_int_equal(jc_result_int(res, 1), 7);
    assert_true(isnan(jc_result_double(res, 1))); /* nor an int as a double */
    assert_true(isnan(jc_result_double(res, 2)));
    assert_int_equal(jc_result_int(res, 2), 0);
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
}

static void run_result_take_hands_the_value_over(void **state)
{
    (void)state;
    jc_cache *c = open_cache(NULL, JC_CACHE_DISABLED);
    jc_batch *b = new_batch(c, 1, JC_ON_ERROR_CONTINUE);
    jc_delayed(b, add, jc_int(20), jc_int(22));
    jc_delayed(b, fails, jc_int(3));
    jc_results *res = jc_run(b);
    assert_non_null(res);
    jc_value *v = jc_result_take(res, 0);
    assert_non_null(v);
    int64_t i = 0;
    assert_int_equal(jc_value_get_int(v, &i), 0);
    assert_int_equal(i, 42);
    assert_null(jc_result_value(res, 0)); /* taken */
    assert_null(jc_result_take(res, 0));
    assert_null(jc_result_take(res, 1)); /* a failure has no value */
    assert_null(jc_result_take(res, 2)); /* out of range */
    jc_results_free(res);
    jc_value_free(v); /* still valid after the results are gone */
    jc_batch_free(b);
    jc_cache_close(c);
}

static void run_result_take_gives_each_identical_submission_its_own_value(void **state)
{
    (void)state;
    jc_cache *c = open_cache(NULL, JC_CACHE_DISABLED);
    jc_batch *b = new_batch(c, 1, JC_ON_ERROR_STOP);
    jc_delayed(b, add, jc_int(20), jc_int(22));
    jc_delayed(b, add, jc_int(20), jc_int(22)); /* the same call: one slot */
    jc_results *res = jc_run(b);
    assert_non_null(res);
    /* The usual loop: take every result into an array of one's own. */
    jc_value *taken[2];
    for (size_t k = 0; k < 2; k++)
        taken[k] = jc_result_take(res, k);
    jc_status status1 = jc_result_status(res, 1);
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
    int64_t i0 = -1, i1 = -1;
    int rc0 = jc_value_get_int(taken[0], &i0), rc1 = jc_value_get_int(taken[1], &i1);
    bool distinct = taken[0] != taken[1];
    if (distinct)
        jc_value_free(taken[1]);
    jc_value_free(taken[0]);
    assert_int_equal(status1, JC_STATUS_OK);
    assert_int_equal(rc0, 0);
    assert_int_equal(i0, 42);
    /* An ok status with no value to take would be a silent loss. */
    assert_int_equal(rc1, 0);
    assert_int_equal(i1, 42);
    assert_true(distinct);
}

static void run_an_out_of_range_index_gives_a_failed_status_and_no_value(void **state)
{
    (void)state;
    jc_cache *c = open_cache(NULL, JC_CACHE_DISABLED);
    jc_batch *b = new_batch(c, 1, JC_ON_ERROR_STOP);
    jc_delayed(b, add, jc_int(1), jc_int(1));
    jc_results *res = jc_run(b);
    assert_non_null(res);
    const size_t bad[] = {1, 1000, SIZE_MAX};
    for (size_t i = 0; i < 3; i++) {
        size_t k = bad[i];
        assert_int_not_equal(jc_result_status(res, k), JC_STATUS_OK);
        assert_null(jc_result_value(res, k));
        assert_false(jc_result_cached(res, k));
        assert_non_null(jc_result_error(res, k));
        assert_true(isnan(jc_result_double(res, k)));
        assert_int_equal(jc_result_int(res, k), 0);
        assert_true(jc_result_seconds(res, k) == 0);
    }
    /* A NULL results handle is out of range too. */
    assert_int_not_equal(jc_result_status(NULL, 0), JC_STATUS_OK);
    assert_null(jc_result_value(NULL, 0));
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
}

/* ---- options ---- */

static pid_t seen_pid;
static int where_am_i(jc_call *call)
{
    seen_pid = getpid();
    return jc_return_int(call, jc_arg_int(call, 0));
}
JC_FUNCTION(where_am_i, "v1");

/* A zero-initialised jc_options is the default: n_jobs = 0 means 1 (in this
 * process), and a literal naming only one field works. */
static void run_zero_initialised_options_are_the_default(void **state)
{
    (void)state;
    jc_cache *c = open_cache(NULL, JC_CACHE_DISABLED);
    jc_batch *b = jc_batch_new(c, &(jc_options){.on_error = JC_ON_ERROR_CONTINUE});
    assert_non_null(b);
    jc_delayed(b, where_am_i, jc_int(1));
    jc_delayed(b, fails, jc_int(3));
    jc_delayed(b, where_am_i, jc_int(3));
    seen_pid = 0;
    jc_results *res = jc_run(b);
    assert_non_null(res);
    assert_int_equal(seen_pid, getpid()); /* computed in this process: n_jobs 1 */
    assert_int_equal(jc_result_status(res, 1), JC_STATUS_ERROR);
    assert_int_equal(jc_result_status(res, 2), JC_STATUS_OK); /* continued after the failure */
    jc_results_free(res);
    jc_batch_free(b);

    jc_options zero;
    memset(&zero, 0, sizeof zero);
    b = jc_batch_new(c, &zero);
    assert_non_null(b);
    jc_delayed(b, where_am_i, jc_int(4));
    seen_pid = 0;
    res = jc_run(b);
    assert_int_equal(jc_results_status(res), JC_OK);
    assert_int_equal(seen_pid, getpid());
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
}

static void run_a_negative_timeout_is_refused(void **state)
{
    (void)state;
    jc_cache *c = open_cache(NULL, JC_CACHE_DISABLED);
    assert_null(jc_batch_new(c, &(jc_options){.n_jobs = 1, .timeout_seconds = -1}));
    assert_int_equal(jc_errcode(), JC_EINVAL);
    assert_contains(jc_errmsg(), "timeout");
    assert_null(jc_batch_new(c, &(jc_options){.n_jobs = 1, .timeout_seconds = NAN}));
    assert_int_equal(jc_errcode(), JC_EINVAL);
    assert_null(jc_batch_new(NULL, &(jc_options){.n_jobs = 1}));
    assert_int_equal(jc_errcode(), JC_EINVAL);
    assert_contains(jc_errmsg(), "cache");
    /* NULL options are the defaults. */
    jc_batch *b = jc_batch_new(c, NULL);
    assert_non_null(b);
    jc_batch_free(b);
    jc_batch_free(NULL);
    jc_cache_close(c);
}

/* Runs the same mixed batch with n_jobs and returns the results. */
static jc_results *run_mixed(const char *name, int n_jobs)
{
    char path[PATH_CAP];
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, name), 0);
    jc_batch *b = new_batch(c, n_jobs, JC_ON_ERROR_CONTINUE);
    for (int i = 0; i < 40; i++) {
        jc_delayed(b, add, jc_int(i), jc_int(i % 7));
        jc_delayed(b, fails, jc_int(i % 10));
        jc_delayed(b, wants_steps, jc_kw("steps", jc_int(i)));
    }
    jc_results *res = jc_run(b);
    if (!res)
        fail_msg("jc_run with n_jobs = %d: %s", n_jobs, jc_errmsg());
    jc_batch_free(b);
    jc_cache_close(c);
    return res;
}

static void run_n_jobs_minus_one_and_two_give_the_same_results_as_one(void **state)
{
    (void)state;
    jc_results *one = run_mixed("njobs1.db", 1);
    const int other[] = {-1, 2};
    for (int j = 0; j < 2; j++) {
        char name[32];
        snprintf(name, sizeof name, "njobs%d.db", other[j]);
        jc_results *res = run_mixed(name, other[j]);
        assert_int_equal(jc_results_count(res), jc_results_count(one));
        assert_int_equal(jc_results_status(res), jc_results_status(one));
        for (size_t k = 0; k < jc_results_count(one); k++) {
            assert_int_equal(jc_result_status(res, k), jc_result_status(one, k));
            assert_false(jc_result_cached(res, k));
            if (jc_result_status(one, k) == JC_STATUS_OK)
                assert_true(jc_value_equal(jc_result_value(res, k), jc_result_value(one, k)));
            else
                assert_string_equal(jc_result_error(res, k), jc_result_error(one, k));
        }
        jc_progress a = jc_results_summary(one), p = jc_results_summary(res);
        assert_int_equal(p.computed, a.computed);
        assert_int_equal(p.failed, a.failed);
        jc_results_free(res);
    }
    jc_results_free(one);

    /* What the pool stored is a hit for a run in this process. */
    char path[PATH_CAP];
    jc_test_location(path, sizeof path, "njobs2.db");
    assert_int_equal(count_entries(path), 40 + 9 + 40); /* fails(3) is not stored */
    jc_cache *c = open_cache(path, 0);
    jc_batch *b = new_batch(c, 1, JC_ON_ERROR_CONTINUE);
    for (int i = 0; i < 40; i++)
        jc_delayed(b, add, jc_int(i), jc_int(i % 7));
    add_calls = 0;
    jc_results *res = jc_run(b);
    assert_non_null(res);
    assert_int_equal(add_calls, 0);
    assert_int_equal(jc_results_summary(res).cached, 40);
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
}

/* ---- bad calls ---- */

static void run_an_unregistered_function_is_refused_at_the_call_with_file_and_line(void **state)
{
    (void)state;
    jc_cache *c = open_cache(NULL, JC_CACHE_DISABLED);
    jc_batch *b = new_batch(c, 1, JC_ON_ERROR_STOP);
    assert_int_equal(jc_delayed(b, add, jc_int(1), jc_int(2)), 0);
    int line = __LINE__ + 1;
    int rc = jc_delayed(b, unregistered, jc_int(1), jc_str("x")); /* the arguments are freed */
    assert_int_equal(rc, JC_ENOFUNC);
    assert_int_equal(jc_errcode(), JC_ENOFUNC);
    char where[64];
    snprintf(where, sizeof where, "test_run.c:%d", line);
    assert_contains(jc_errmsg(), where);
    assert_contains(jc_errmsg(), "not registered");
    /* Later calls are refused too, reporting the first bad one. */
    assert_int_equal(jc_delayed(b, add, jc_int(3), jc_int(4)), JC_ENOFUNC);
    assert_contains(jc_errmsg(), where);

    assert_null(jc_run(b));
    assert_int_equal(jc_errcode(), JC_ENOFUNC);
    assert_contains(jc_errmsg(), where);
    jc_batch_free(b);
    jc_cache_close(c);
}

static void run_a_null_argument_is_refused_at_the_call(void **state)
{
    (void)state;
    jc_cache *c = open_cache(NULL, JC_CACHE_DISABLED);
    jc_batch *b = new_batch(c, 1, JC_ON_ERROR_STOP);
    int line = __LINE__ + 1;
    int rc = jc_delayed(b, add, jc_int(1), jc_str(NULL), jc_kw("k", jc_int(2)));
    assert_int_equal(rc, JC_EINVAL);
    char where[64];
    snprintf(where, sizeof where, "test_run.c:%d", line);
    assert_contains(jc_errmsg(), where);
    assert_contains(jc_errmsg(), "add");
    assert_contains(jc_errmsg(), "argument 1 is NULL");
    assert_contains(jc_errmsg(), "jc_str"); /* why the builder failed */
    assert_null(jc_run(b));
    assert_int_equal(jc_errcode(), JC_EINVAL);
    assert_contains(jc_errmsg(), where);
    jc_batch_free(b);
    jc_cache_close(c);
}

static void run_a_null_argument_is_einval_whatever_the_last_error_was(void **state)
{
    (void)state;
    jc_cache *c = open_cache(NULL, JC_CACHE_DISABLED);
    jc_batch *b = new_batch(c, 1, JC_ON_ERROR_STOP);
    /* Leave an unrelated error behind, then pass a plain NULL. */
    assert_null(jc_function_find("no such function"));
    assert_int_equal(jc_errcode(), JC_ENOFUNC);
    int rc = jc_delayed(b, add, jc_int(1), NULL);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", jc_errmsg());
    jc_batch_free(b);
    jc_cache_close(c);
    /* The code must not be a stale one left by an unrelated earlier call
     * (here JC_ENOFUNC, which would then be reported for a NULL argument). */
    assert_int_equal(rc, JC_EINVAL);
    assert_contains(msg, "argument 1 is NULL");
}

static void run_a_named_argument_given_twice_is_refused(void **state)
{
    (void)state;
    jc_cache *c = open_cache(NULL, JC_CACHE_DISABLED);
    jc_batch *b = new_batch(c, 1, JC_ON_ERROR_STOP);
    int line = __LINE__ + 1;
    int rc = jc_delayed(b, wants_steps, jc_kw("steps", jc_int(1)), jc_kw("steps", jc_int(2)));
    assert_int_equal(rc, JC_EINVAL);
    char where[64];
    snprintf(where, sizeof where, "test_run.c:%d", line);
    assert_contains(jc_errmsg(), where);
    assert_contains(jc_errmsg(), "wants_steps");
    assert_contains(jc_errmsg(), "\"steps\" is given twice");
    assert_null(jc_run(b));
    assert_int_equal(jc_errcode(), JC_EINVAL);
    jc_batch_free(b);
    jc_cache_close(c);
}

static void run_running_a_batch_twice_is_an_error(void **state)
{
    (void)state;
    jc_cache *c = open_cache(NULL, JC_CACHE_DISABLED);
    jc_batch *b = new_batch(c, 1, JC_ON_ERROR_STOP);
    jc_delayed(b, add, jc_int(1), jc_int(2));
    jc_results *res = jc_run(b);
    assert_non_null(res);
    assert_null(jc_run(b));
    assert_int_equal(jc_errcode(), JC_EINVAL);
    assert_contains(jc_errmsg(), "already run");
    assert_int_equal(jc_delayed(b, add, jc_int(1), jc_int(2)), JC_EINVAL);
    assert_contains(jc_errmsg(), "already run");
    /* The first results are untouched. */
    assert_int_equal(jc_result_int(res, 0), 3);
    jc_results_free(res);
    jc_batch_free(b);
    assert_null(jc_run(NULL));
    assert_int_equal(jc_errcode(), JC_EINVAL);
    jc_cache_close(c);
}

static void run_an_empty_batch_runs_fine(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "empty-batch.db"), 0);
    jc_batch *b = new_batch(c, 1, JC_ON_ERROR_STOP);
    assert_int_equal(jc_batch_count(b), 0);
    jc_results *res = jc_run(b);
    assert_non_null(res);
    assert_int_equal(jc_results_status(res), JC_OK);
    assert_int_equal(jc_results_count(res), 0);
    jc_progress p = jc_results_summary(res);
    assert_int_equal(p.total, 0);
    assert_int_equal(p.done, 0);
    assert_null(jc_result_value(res, 0));
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
}

/* ---- cache modes and files ---- */

static void run_recompute_computes_every_call_and_overwrites_its_entry(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "recompute.db");
    const unsigned modes[] = {0, JC_CACHE_RECOMPUTE, 0};
    for (int round = 0; round < 3; round++) {
        generation = round + 1;
        jc_cache *c = open_cache(path, modes[round]);
        jc_batch *b = new_batch(c, 1, JC_ON_ERROR_STOP);
        for (int i = 0; i < 5; i++)
            jc_delayed(b, versioned, jc_int(i));
        versioned_calls = 0;
        jc_results *res = jc_run(b);
        assert_non_null(res);
        /* Round 1 computes, round 2 recomputes, round 3 hits round 2's values. */
        assert_int_equal(versioned_calls, round < 2 ? 5 : 0);
        for (size_t k = 0; k < 5; k++) {
            assert_int_equal(jc_result_cached(res, k), round == 2);
            assert_int_equal(jc_result_int(res, k), (int64_t)k * 100 + (round < 2 ? round + 1 : 2));
        }
        jc_results_free(res);
        jc_batch_free(b);
        jc_cache_close(c);
        assert_int_equal(count_entries(path), 5);
    }
    generation = 1;
}

static void run_readonly_uses_hits_and_never_writes(void **state)
{
    (void)state;
    if (jc_test_file_only())
        return;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "readonly.db");
    jc_cache *c = open_cache(path, 0);
    jc_results_free(run_adds(c, 0, 5));
    jc_results_free(run_adds(c, 0, 2)); /* some hits, so that hits > 0 */
    jc_cache_close(c);
    jc_test_fold_hits(path);

    size_t len0 = 0;
    void *bytes0 = jc_test_read_file(path, &len0);
    assert_non_null(bytes0);
    struct stat st0, st1;
    assert_int_equal(stat(path, &st0), 0);
    int64_t hits0 = jc_test_sql_int(path, "SELECT sum(hits) FROM entries");
    int64_t used0 = jc_test_sql_int(path, "SELECT sum(CAST(last_used * 1000 AS INTEGER)) FROM entries");
    assert_int_equal(hits0, 2);

    for (int round = 0; round < 2; round++) {
        c = open_cache(path, JC_CACHE_READONLY);
        add_calls = 0;
        jc_results *res = run_adds(c, 0, 8);
        assert_int_equal(jc_results_status(res), JC_OK);
        assert_int_equal(add_calls, 3); /* never stored: computed again each time */
        for (size_t k = 0; k < 8; k++) {
            assert_int_equal(jc_result_cached(res, k), k < 5);
            assert_int_equal(jc_result_int(res, k), (int64_t)k + 1000);
        }
        jc_progress p = jc_results_summary(res);
        assert_int_equal(p.cached, 5);
        assert_int_equal(p.computed, 3);
        jc_results_free(res);
        jc_cache_close(c);
    }

    assert_int_equal(count_entries(path), 5);
    assert_int_equal(jc_test_sql_int(path, "SELECT sum(hits) FROM entries"), hits0);
    assert_int_equal(jc_test_sql_int(path, "SELECT sum(CAST(last_used * 1000 AS INTEGER)) FROM entries"),
                     used0);
    size_t len1 = 0;
    void *bytes1 = jc_test_read_file(path, &len1);
    assert_non_null(bytes1);
    assert_int_equal(len1, len0);
    assert_memory_equal(bytes1, bytes0, len0);
    assert_int_equal(stat(path, &st1), 0);
    assert_true(st1.st_mtim.tv_sec == st0.st_mtim.tv_sec && st1.st_mtim.tv_nsec == st0.st_mtim.tv_nsec);
    free(bytes0);
    free(bytes1);
}

static void run_readonly_on_a_missing_file_fails_naming_it(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "readonly-missing.db");
    assert_null(jc_cache_open(path, &(jc_cache_options){.flags = JC_CACHE_READONLY}));
    assert_int_equal(jc_errcode(), JC_ENOTFOUND);
    assert_contains(jc_errmsg(), jc_test_shown(path));
    assert_contains(jc_errmsg(), "does not exist");
    assert_false(jc_test_exists(path)); /* and it made none */
}

static void run_disabled_computes_everything_and_creates_no_file(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "disabled.db");
    jc_cache *c = open_cache(path, JC_CACHE_DISABLED);
    assert_null(jc_cache_path(c));
    add_calls = 0;
    for (int round = 0; round < 2; round++) {
        jc_results *res = run_adds(c, 0, 4);
        for (size_t k = 0; k < 4; k++) {
            assert_false(jc_result_cached(res, k));
            assert_int_equal(jc_result_int(res, k), (int64_t)k + 1000);
        }
        jc_results_free(res);
    }
    assert_int_equal(add_calls, 8);
    jc_cache_close(c);
    assert_false(jc_test_exists(path));
    char wal[PATH_CAP + 8];
    snprintf(wal, sizeof wal, "%s-wal", path);
    assert_false(jc_test_exists(wal));
}

static void run_jobcache_path_chooses_the_file_when_path_is_null(void **state)
{
    (void)state;
    char path[PATH_CAP], other[PATH_CAP];
    jc_test_path(path, sizeof path, "from-env.db");
    jc_test_path(other, sizeof other, "explicit.db");
    assert_int_equal(setenv("JOBCACHE_PATH", path, 1), 0);

    jc_cache *c = open_cache(NULL, 0);
    assert_string_equal(jc_cache_path(c), jc_test_shown(path));
    jc_results_free(run_adds(c, 0, 3));
    jc_cache_close(c);
    assert_int_equal(count_entries(path), 3);

    /* An explicit path wins over the variable. */
    c = open_cache(other, 0);
    assert_string_equal(jc_cache_path(c), jc_test_shown(other));
    jc_cache_close(c);

    unsetenv("JOBCACHE_PATH");
}

static void run_the_default_file_is_jobcache_db_in_the_current_directory(void **state)
{
    (void)state;
    char cwd[PATH_CAP];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(jc_test_dir()), 0);
    jc_test_remove_db("jobcache.db");
    unsetenv("JOBCACHE_PATH");

    jc_cache *c = jc_cache_open(NULL, NULL);
    if (!c) {
        assert_int_equal(chdir(cwd), 0);
        fail_msg("jc_cache_open(NULL): %s", jc_errmsg());
    }
    jc_results *res = run_adds(c, 0, 2);
    jc_results_free(res);
    jc_cache_close(c);
    bool exists = jc_test_exists("jobcache.db");
    int64_t n = count_entries("jobcache.db");
    /* An empty JOBCACHE_PATH is as good as none. */
    setenv("JOBCACHE_PATH", "", 1);
    c = jc_cache_open(NULL, NULL);
    unsetenv("JOBCACHE_PATH");
    jc_test_remove_db("jobcache.db");
    assert_int_equal(chdir(cwd), 0);

    assert_true(exists);
    assert_int_equal(n, 2);
    assert_non_null(c);
    assert_contains(jc_cache_path(c), "jobcache.db");
    jc_cache_close(c);
}

static void run_a_corrupted_result_is_recomputed_and_its_entry_repaired(void **state)
{
    (void)state;
    if (jc_test_file_only())
        return;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "corrupt-result.db");
    jc_cache *c = open_cache(path, 0);
    jc_results_free(run_adds(c, 0, 3));
    jc_cache_close(c);

    /* 0xc1 is the one byte MessagePack never uses. */
    assert_int_equal(jc_test_sql_exec(path, "UPDATE entries SET result = x'c1' "
                                            "WHERE rowid = (SELECT min(rowid) FROM entries)"),
                     0);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries WHERE result = x'c1'"), 1);

    c = open_cache(path, 0);
    add_calls = 0;
    jc_results *res = run_adds(c, 0, 3);
    assert_int_equal(jc_results_status(res), JC_OK);
    assert_int_equal(add_calls, 1);
    assert_int_equal(jc_results_summary(res).cached, 2);
    for (size_t k = 0; k < 3; k++)
        assert_int_equal(jc_result_int(res, k), (int64_t)k + 1000);
    jc_results_free(res);
    jc_cache_close(c);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries WHERE result = x'c1'"), 0);
    assert_int_equal(count_entries(path), 3);

    c = open_cache(path, 0);
    res = run_adds(c, 0, 3);
    assert_int_equal(add_calls, 1);
    assert_int_equal(jc_results_summary(res).cached, 3);
    jc_results_free(res);
    jc_cache_close(c);
}

/* ---- the summary line ---- */

/* Runs 4 adds (2 of them stored before) with verbose v, stderr going to a
 * file, and returns what was written there (NUL-terminated). */
static char *stderr_of_run(const char *name, jc_verbose v, size_t *len)
{
    char path[PATH_CAP], out[PATH_CAP];
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, name), 0);
    jc_results_free(run_adds(c, 0, 2));
    snprintf(out, sizeof out, "%s/%s.stderr", jc_test_dir(), name);

    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = v});
    for (int i = 0; i < 4; i++)
        jc_delayed(b, add, jc_int(i), jc_int(1000));
    int saved = jc_test_stderr_to(out);
    assert_true(saved >= 0);
    jc_results *res = jc_run(b);
    jc_test_stderr_restore(saved);
    assert_non_null(res);
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
    char *text = jc_test_read_file(out, len);
    assert_non_null(text);
    return text;
}

static void run_verbose_on_writes_exactly_one_summary_line(void **state)
{
    (void)state;
    size_t len = 0;
    char *text = stderr_of_run("verbose-on.db", JC_VERBOSE_ON, &len);
    regex_t re;
    assert_int_equal(regcomp(&re,
                             "^jobcache: 4 calls, 2 cached, 2 computed, 0 failed in [0-9]+\\.[0-9]+ s "
                             "\\(saved [0-9]+\\.[0-9]+ s of compute\\), in-process; cache "
                             "(/[^\n]*verbose-on\\.db|postgresql://[^\n]*verbose_on_db)\n$",
                             REG_EXTENDED),
                     0);
    int m = regexec(&re, text, 0, NULL, 0);
    regfree(&re);
    size_t newlines = 0;
    for (size_t i = 0; i < len; i++)
        newlines += text[i] == '\n';
    if (m != 0 || newlines != 1 || strlen(text) != len)
        fail_msg("stderr was \"%s\"", text);
    free(text);
}

static void run_verbose_off_and_auto_without_a_terminal_write_nothing(void **state)
{
    (void)state;
    char *text = stderr_of_run("verbose-off.db", JC_VERBOSE_OFF, NULL);
    assert_string_equal(text, "");
    free(text);
    text = stderr_of_run("verbose-auto.db", JC_VERBOSE_AUTO, NULL); /* stderr is a file */
    assert_string_equal(text, "");
    free(text);
}

/* The database file and its -wal file, as `du` counts them. */
static int64_t disk_bytes(const char *path)
{
    char wal[PATH_CAP + 8];
    struct stat sb;
    int64_t n = stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
    snprintf(wal, sizeof wal, "%s-wal", path);
    return n + (stat(wal, &sb) == 0 ? (int64_t)sb.st_size : 0);
}

/* The margin jc_cache_options.max_size promises: a few pages. */
#define SIZE_MARGIN (4 * 4096)

/* max_size bounds the files on disk (database and -wal), not the payload:
 * after a run, least recently used entries go until they fit, their pages
 * are given back, and the entries just used stay. */
static void run_max_size_bounds_the_files_on_disk_after_a_run(void **state)
{
    (void)state;
    if (jc_test_file_only())
        return;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "maxsize.db");
    jc_cache *c = open_cache(path, 0);
    jc_results_free(run_adds(c, 0, 2000));
    jc_cache_close(c);
    assert_int_equal(count_entries(path), 2000);
    int64_t payload = jc_test_sql_int(path, "SELECT sum(args_size + result_size) FROM entries");
    int64_t full = disk_bytes(path);
    const int64_t limit = 80 * 1024; /* an empty file takes 48 KiB (schema 11) */
    assert_true(payload < limit); /* what max_size counted before */
    assert_true(full > 2 * limit);

    /* Opening with the limit evicts at once, but at most half of the
     * entries (issue 23), saying how far over the file stays; pruning to
     * max_size, the user's choice, brings it within. The most recently
     * used entries stay. */
    char err[PATH_CAP];
    int saved = jc_test_stderr_to(jc_test_path(err, sizeof err, "maxsize.err"));
    c = jc_cache_open(path, &(jc_cache_options){.max_size = limit});
    jc_test_stderr_restore(saved);
    assert_non_null(c);
    assert_int_equal(count_entries(path), 1000);
    assert_true(disk_bytes(path) > limit);
    char *text = jc_test_read_file(err, NULL);
    assert_non_null(text);
    assert_contains(text, "evicted 1000 entries");
    assert_contains(text, "over its max_size of 80.0 KiB");
    assert_contains(text, "jobcache prune --max-size 81920");
    free(text);
    assert_int_equal(jc_cache_prune(c, &(jc_prune_options){.max_size = limit}, false, NULL, NULL), 0);
    assert_true(disk_bytes(path) <= limit + SIZE_MARGIN);
    int64_t left = count_entries(path);
    assert_true(left >= 20 && left < 1000);
    add_calls = 0;
    jc_results *res = run_adds(c, 1980, 2000);
    assert_int_equal(jc_results_status(res), JC_OK);
    assert_int_equal(add_calls, 0); /* all hits */
    jc_results_free(res);
    jc_stats *s = jc_cache_stats(c);
    assert_true(s->file_bytes <= limit + SIZE_MARGIN);
    assert_true(s->payload_bytes < s->file_bytes); /* two figures */
    jc_stats_free(s);
    /* A run of new calls, fewer than the cache holds: evicted down after
     * it, its newest kept. */
    res = run_adds(c, 5000, 5000 + left / 3);
    jc_results_free(res);
    assert_true(disk_bytes(path) <= limit + SIZE_MARGIN);
    add_calls = 0;
    res = run_adds(c, 5000 + left / 3 - 20, 5000 + left / 3);
    assert_int_equal(add_calls, 0);
    jc_results_free(res);
    jc_cache_close(c);
    assert_true(disk_bytes(path) <= limit + SIZE_MARGIN);
    assert_true(count_entries(path) >= 20);
}

static void record_evicted(const jc_run_record *r, void *userdata)
{
    int64_t *e = userdata;
    e[0] = r->evicted;
    e[1] = r->evicted_bytes;
}

/* A result of 1000 bytes. */
static int kilo(jc_call *call)
{
    char buf[1001];
    memset(buf, 'a' + (int)(jc_arg_int(call, 0) % 26), 1000);
    buf[1000] = '\0';
    return jc_return_str(call, buf);
}
JC_FUNCTION(kilo, "v1");

static jc_results *run_kilos(jc_cache *c, int from, int to, jc_verbose v)
{
    jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = v});
    for (int i = from; i < to; i++)
        jc_delayed(b, kilo, jc_int(i));
    jc_results *res = jc_run(b);
    jc_batch_free(b);
    return res;
}

/* An absurd max_size (issue 23: JOBCACHE_MAX_SIZE=1K emptied a cache of
 * 794 entries, saying only that a result could not be stored). A limit
 * under what the file takes empty is refused naming the floor, from the
 * environment, the program or the file's setting; a run (or an open)
 * evicts at most half of the entries it finds, stores its results over
 * the limit and says by how much and what brings it down; every eviction
 * is counted and told (the summary line, away from a terminal too, the
 * record of runs, stats). */
static void run_an_absurd_max_size_is_refused_and_evictions_are_told(void **state)
{
    (void)state;
    if (jc_test_file_only())
        return;
    char path[PATH_CAP], err[PATH_CAP];
    jc_test_path(path, sizeof path, "absurd.db");
    jc_test_path(err, sizeof err, "absurd.err");
    jc_cache *c = open_cache(path, 0);
    jc_results_free(run_kilos(c, 0, 794, JC_VERBOSE_OFF));
    jc_cache_close(c);
    setenv("JOBCACHE_MAX_SIZE", "1K", 1);
    assert_null(jc_cache_open(path, NULL));
    unsetenv("JOBCACHE_MAX_SIZE");
    assert_int_equal(jc_errcode(), JC_EINVAL);
    assert_contains(jc_errmsg(), "JOBCACHE_MAX_SIZE");
    assert_contains(jc_errmsg(), "less than the cache file");
    assert_contains(jc_errmsg(), "give at least");
    assert_null(jc_cache_open(path, &(jc_cache_options){.max_size = 1024}));
    assert_contains(jc_errmsg(), "jc_cache_options");
    assert_int_equal(count_entries(path), 794);
    c = open_cache(path, 0);
    assert_int_equal(jc_cache_config_set(c, "max-size", "1K"), JC_EINVAL);
    assert_contains(jc_errmsg(), "less than the cache file takes empty");
    jc_cache_close(c);
    assert_int_equal(count_entries(path), 794);

    /* 64 KiB: above an empty file, far under 794 KB. The open evicts
     * half; a run in it evicts at most half of what it then finds; both
     * say so, on a stderr that is not a terminal. */
    int saved = jc_test_stderr_to(err);
    c = jc_cache_open(path, &(jc_cache_options){.max_size = 65536});
    assert_non_null(c);
    assert_int_equal(count_entries(path), 397);
    jc_results *res = run_kilos(c, 10000, 10010, JC_VERBOSE_AUTO);
    jc_test_stderr_restore(saved);
    assert_int_equal(jc_results_status(res), JC_OK); /* every result is fine, and returned */
    assert_int_equal(jc_results_summary(res).computed, 10);
    jc_results_free(res);
    assert_int_equal(count_entries(path), 407 - 203);
    char *text = jc_test_read_file(err, NULL);
    assert_non_null(text);
    assert_contains(text, "was over its max_size of 65536 bytes: evicted 397 entries");
    assert_contains(text, "jobcache: 10 calls, 0 cached, 10 computed, 0 failed");
    assert_contains(text, "evicted 203 entries");
    assert_contains(text, "to stay within max_size");
    assert_contains(text, "(203 of 407 evicted)");
    assert_contains(text, "'jobcache prune --max-size 65536' brings it down");
    free(text);
    int64_t e[2] = {0, 0};
    assert_int_equal(jc_cache_runs(c, 1, false, record_evicted, e), 0);
    assert_int_equal(e[0], 203);
    assert_true(e[1] >= 203 * 1000);
    jc_stats *s = jc_cache_stats(c);
    assert_int_equal(s->evicted_entries, 397 + 203);
    assert_true(s->evicted_bytes >= 600 * 1000);
    jc_stats_free(s);
    /* The user's choice: pruning to max_size brings it within. */
    assert_int_equal(jc_cache_prune(c, &(jc_prune_options){.max_size = 65536}, false, NULL, NULL), 0);
    assert_true(disk_bytes(path) <= 65536 + SIZE_MARGIN);
    jc_cache_close(c);
}

/* A result that a cache of max_size could not keep even alone is not
 * stored (it would be evicted by its own run and recomputed every time,
 * silently): it is counted, and its function warned about once. */
static int big_result(jc_call *call)
{
    size_t n = (size_t)jc_arg_int(call, 0);
    char *zeros = calloc(1, n);
    int rc = jc_return(call, jc_bytes(zeros, n));
    free(zeros);
    return rc;
}
JC_FUNCTION(big_result, "v1");

static void run_a_result_too_large_for_max_size_is_reported_once(void **state)
{
    (void)state;
    char path[PATH_CAP], err[PATH_CAP];
    jc_test_path(path, sizeof path, "toolarge.db");
    jc_test_path(err, sizeof err, "toolarge.err");
    const int64_t limit = 64 * 1024;
    jc_cache *c = jc_cache_open(path, &(jc_cache_options){.max_size = limit});
    assert_non_null(c);
    int saved = jc_test_stderr_to(err);
    for (int round = 0; round < 2; round++) {
        jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
        jc_delayed(b, big_result, jc_int(100000));
        jc_delayed(b, big_result, jc_int(100001));
        jc_delayed(b, big_result, jc_int(100));
        jc_results *res = jc_run(b);
        assert_int_equal(jc_results_status(res), JC_OK);
        assert_int_equal(jc_results_summary(res).too_large, 2);
        assert_int_equal(jc_results_summary(res).computed, round == 0 ? 3 : 2);
        jc_results_free(res);
        jc_batch_free(b);
    }
    jc_value *v = jc_memo(c, big_result, jc_int(100002));
    assert_non_null(v);
    jc_value_free(v);
    jc_test_stderr_restore(saved);
    jc_cache_close(c);
    char *text = jc_test_read_file(err, NULL);
    assert_non_null(text);
    assert_contains(text, "big_result");
    assert_contains(text, "max_size");
    const char *first = strstr(text, "big_result");
    assert_null(strstr(first + 1, "big_result")); /* once */
    free(text);
    assert_int_equal(count_entries(path), 1);
    assert_true(disk_bytes(path) <= limit + SIZE_MARGIN);
}

/* ---- the bytes and ints accessors ---- */

/* blob_sum(data: bytes, xs=ints, tag=bytes) -> the sum of data's bytes, of
 * xs and of tag's bytes, times 1000 plus the three lengths summed. */
static int blob_sum(jc_call *call)
{
    size_t n = 99, nxs = 99, ntag = 99;
    const unsigned char *data = jc_arg_bytes(call, 0, &n);
    const int64_t *xs = jc_kwarg_ints(call, "xs", &nxs);
    const unsigned char *tag = jc_kwarg_bytes(call, "tag", &ntag);
    if (!data || !xs || !tag)
        return jc_fail(call, "accessor gave NULL (%zu, %zu, %zu)", n, nxs, ntag);
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += data[i];
    for (size_t i = 0; i < nxs; i++)
        sum += xs[i];
    for (size_t i = 0; i < ntag; i++)
        sum += tag[i];
    return jc_return_int(call, sum * 1000 + (int64_t)(n + nxs + ntag));
}
JC_FUNCTION(blob_sum, "v1");

static void run_bytes_and_ints_accessors_read_their_arguments_or_fail_naming_them(void **state)
{
    (void)state;
    jc_cache *c = open_cache(NULL, JC_CACHE_DISABLED);
    jc_batch *b = new_batch(c, 1, JC_ON_ERROR_CONTINUE);
    static const int64_t xs[] = {10, 20, 30};
    jc_delayed(b, blob_sum, jc_bytes("\x01\x02\x00\x03", 4), jc_kw("xs", jc_ints(xs, 3)),
               jc_kw("tag", jc_bytes("ab", 2)));
    /* Empty bytes and arrays are values too: a pointer, length 0. */
    jc_delayed(b, blob_sum, jc_bytes(NULL, 0), jc_kw("xs", jc_ints(NULL, 0)), jc_kw("tag", jc_bytes(NULL, 0)));
    jc_delayed(b, blob_sum, jc_str("text"), jc_kw("xs", jc_ints(xs, 3)), jc_kw("tag", jc_bytes("ab", 2)));
    jc_delayed(b, blob_sum, jc_bytes("a", 1), jc_kw("xs", jc_doubles((const double[]){1.5}, 1)),
               jc_kw("tag", jc_bytes("ab", 2)));
    jc_delayed(b, blob_sum, jc_bytes("a", 1), jc_kw("xs", jc_ints(xs, 1)), jc_kw("tag", jc_str("ab")));
    jc_delayed(b, blob_sum, jc_kw("xs", jc_ints(xs, 1)), jc_kw("tag", jc_bytes("ab", 2)));
    jc_delayed(b, blob_sum, jc_bytes("a", 1), jc_kw("tag", jc_bytes("ab", 2)));
    jc_delayed(b, blob_sum, jc_bytes("a", 1), jc_kw("xs", jc_ints(xs, 1)));
    jc_results *res = jc_run(b);
    assert_non_null(res);
    assert_int_equal(jc_result_status(res, 0), JC_STATUS_OK);
    assert_int_equal(jc_result_int(res, 0), (6 + 60 + 'a' + 'b') * 1000 + 9);
    assert_int_equal(jc_result_status(res, 1), JC_STATUS_OK);
    assert_int_equal(jc_result_int(res, 1), 0);
    assert_string_equal(jc_result_error(res, 2),
                        "blob_sum(\"text\", xs=[10, 20, 30], tag=\"<2 bytes>\"): argument 0 is str, "
                        "expected bytes");
    assert_string_equal(jc_result_error(res, 3),
                        "blob_sum(\"<1 bytes>\", xs=[1.5], tag=\"<2 bytes>\"): named argument \"xs\" "
                        "is doubles, expected ints");
    assert_string_equal(jc_result_error(res, 4),
                        "blob_sum(\"<1 bytes>\", xs=[10], tag=\"ab\"): named argument \"tag\" is str, "
                        "expected bytes");
    assert_contains(jc_result_error(res, 5), "argument 0 is missing");
    assert_contains(jc_result_error(res, 5), "expected bytes");
    assert_contains(jc_result_error(res, 6), "named argument \"xs\" is missing, expected ints");
    assert_contains(jc_result_error(res, 7), "named argument \"tag\" is missing, expected bytes");
    for (size_t k = 2; k < 8; k++)
        assert_int_equal(jc_result_status(res, k), JC_STATUS_ERROR);
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);

    /* Outside a call: NULL and a zero length. */
    size_t n = 99;
    assert_null(jc_arg_bytes(NULL, 0, &n));
    assert_int_equal(n, 0);
    n = 99;
    assert_null(jc_kwarg_bytes(NULL, "x", &n));
    assert_int_equal(n, 0);
    n = 99;
    assert_null(jc_kwarg_ints(NULL, "x", &n));
    assert_int_equal(n, 0);
    assert_null(jc_arg_bytes(NULL, 0, NULL));
}

/* A bytes argument of 64 KiB or more (kept in the cache as its digest)
 * reaches the function whole, in-process and in forked workers, and a
 * rerun is a hit. */
static void run_a_large_bytes_argument_reaches_the_function_whole(void **state)
{
    (void)state;
    char path[PATH_CAP];
    enum { N = 100000 };
    unsigned char *data = malloc(N);
    assert_non_null(data);
    int64_t want = 0;
    for (size_t i = 0; i < N; i++)
        want += data[i] = (unsigned char)(i * 7);
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "large-bytes.db"), 0);
    for (int round = 0; round < 2; round++) {
        jc_batch *b = new_batch(c, round ? 1 : 2, JC_ON_ERROR_CONTINUE);
        jc_delayed(b, blob_sum, jc_bytes(data, N), jc_kw("xs", jc_ints(NULL, 0)), jc_kw("tag", jc_bytes("", 0)));
        jc_delayed(b, blob_sum, jc_bytes(data, N - 1), jc_kw("xs", jc_ints(NULL, 0)),
                   jc_kw("tag", jc_bytes("", 0)));
        jc_results *res = jc_run(b);
        assert_non_null(res);
        assert_int_equal(jc_results_status(res), JC_OK);
        assert_int_equal(jc_result_int(res, 0), want * 1000 + N);
        assert_int_equal(jc_result_int(res, 1), (want - data[N - 1]) * 1000 + N - 1);
        assert_int_equal(jc_result_cached(res, 0), round == 1);
        jc_results_free(res);
        jc_batch_free(b);
    }
    jc_cache_close(c);
    free(data);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Another process's write lock on the file, held by a second connection. */
static sqlite3 *hold_write_lock(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    return db;
}

static void run_a_locked_file_keeps_results_in_memory_and_says_they_were_not_stored(void **state)
{
    (void)state;
    if (jc_test_file_only())
        return;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "locked-cold.db");
    jc_cache *c = jc_cache_open(path, &(jc_cache_options){.busy_timeout_ms = 50});
    assert_non_null(c);
    sqlite3 *lock = hold_write_lock(path);
    add_calls = 0;
    jc_results *res = run_adds(c, 0, 30);
    /* Every result is there; the run says they could not be stored. */
    assert_int_equal(jc_results_status(res), JC_EIO);
    assert_contains(jc_results_message(res), "could not be stored");
    for (size_t k = 0; k < 30; k++) {
        assert_int_equal(jc_result_status(res, k), JC_STATUS_OK);
        assert_int_equal(jc_result_int(res, k), (int64_t)k + 1000);
    }
    jc_results_free(res);
    sqlite3_exec(lock, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(lock);
    /* Nothing was stored, and nothing is left half-written: the next run
     * computes and stores them all. */
    res = run_adds(c, 0, 30);
    assert_int_equal(jc_results_status(res), JC_OK);
    assert_int_equal(add_calls, 60);
    jc_results_free(res);
    jc_cache_close(c);
    assert_int_equal(count_entries(path), 30);
}

static void run_hits_on_a_locked_file_cost_one_busy_timeout_not_one_per_hit(void **state)
{
    (void)state;
    if (jc_test_file_only())
        return;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "locked-warm.db");
    jc_cache *c = open_cache(path, 0);
    jc_results_free(run_adds(c, 0, 6000));
    jc_cache_close(c);
    c = jc_cache_open(path, &(jc_cache_options){.busy_timeout_ms = 50});
    assert_non_null(c);
    sqlite3 *lock = hold_write_lock(path);
    double t0 = now_seconds();
    jc_results *res = run_adds(c, 0, 6000);
    double took = now_seconds() - t0;
    /* All hits, reported ok: hit counts are bookkeeping, not results. */
    assert_int_equal(jc_results_status(res), JC_OK);
    assert_int_equal(jc_results_summary(res).cached, 6000);
    if (took > 5.0)
        fail_msg("6000 hits on a locked file took %.1f s", took);
    jc_results_free(res);
    sqlite3_exec(lock, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(lock);
    jc_cache_close(c);
}

/* Each row of s ends in "\n" and has fewer than width characters (UTF-8
 * code points); returns the number of rows. */
static int rows_within(const char *s, size_t width)
{
    int rows = 0;
    for (const char *p = s; *p; rows++) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        size_t c = 0;
        for (const char *q = p; q < nl; q++)
            c += ((unsigned char)*q & 0xc0) != 0x80;
        if (c >= width)
            fail_msg("a row of %zu characters at %zu columns: '%.*s'", c, width, (int)(nl - p), p);
        p = nl + 1;
    }
    return rows;
}

/* The summary line on a terminal (issue 25): at 120 columns a long cache
 * path wrapped in its middle. Rows now fit, break between words, and the
 * path is shortened from the left, its file name whole; away from a
 * terminal the line stays one line, as it is, for logs. */
static void run_summary_fits_the_terminal_shortening_the_path_not_wrapping_it(void **state)
{
    (void)state;
    const char *text = "jobcache: 600 calls, 0 cached, 118 computed, 0 failed, 482 skipped in 3.023 s "
                       "(saved 0.000 s of compute); interrupted: rerun to continue, fork: 2 workers; cache";
    const char *path = "/home/someone/experiments/2026/a-rather-long-project-directory/sweeps/jobcache.db";
    char out[2048], want[1024];
    jc__progress_fit(text, path, 0, out, sizeof out);
    snprintf(want, sizeof want, "%s %s\n", text, path);
    assert_string_equal(out, want);
    for (size_t width = 40; width <= 400; width += 8) {
        jc__progress_fit(text, path, width, out, sizeof out);
        int rows = rows_within(out, width);
        assert_true(strstr(out, "/jobcache.db\n") != NULL);
        assert_true(strncmp(out, "jobcache: 600 calls,", 20) == 0);
        if (width > strlen(want))
            assert_string_equal(out, want); /* it fits: as it is */
        if (width == 120) {
            assert_int_equal(rows, 2);
            assert_non_null(strstr(out, "\n          "));
        }
        /* Every word of the text, in order, whole. */
        const char *at = out;
        char word[64];
        for (const char *p = text; *p;) {
            size_t n = strcspn(p, " ");
            snprintf(word, sizeof word, "%.*s", (int)n, p);
            at = strstr(at, word);
            assert_non_null(at);
            at += n;
            p += n + strspn(p + n, " ");
        }
    }
    /* A path of multibyte characters is counted by characters and cut
     * between them; a path with no "/" to cut at keeps its end. */
    const char *wide = "/data/温度実験/温度実験温度実験温度実験温度実験温度実験温度実验/结果.db";
    jc__progress_fit("jobcache: 3 calls, 3 cached; cache", wide, 40, out, sizeof out);
    rows_within(out, 40);
    assert_non_null(strstr(out, "/结果.db\n"));
    jc__progress_fit(text, "jobcache-with-a-very-long-name-and-no-directory-at-all-to-cut-at.db", 60, out, sizeof out);
    rows_within(out, 60);
    assert_non_null(strstr(out, "..."));
    assert_non_null(strstr(out, "cut-at.db\n"));
}

/* ---- keys users shape (issue 24) ---- */

/* A function with a log path (named) and a thread count (positional,
 * "threads") left out of its key; it counts its calls and records the log
 * path it got. */
static int logged_calls;
static char logged_path[256];
static int logged(jc_call *call)
{
    logged_calls++;
    const char *log = jc_kwarg_str(call, "log");
    snprintf(logged_path, sizeof logged_path, "%s", log ? log : "");
    return jc_return_int(call, 10 * jc_arg_int(call, 0));
}
JC_FUNCTION_PARAMS(logged, "v1", "x", "threads");
JC_LEAVE_OUT(logged, "log", "threads");

static jc_results *run_logged(jc_cache *c, int run)
{
    jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
    char log[64];
    for (int x = 0; x < 10; x++) {
        snprintf(log, sizeof log, "/tmp/run-%d-pid-%d.log", run, 4000 + x);
        assert_int_equal(jc_delayed(b, logged, jc_int(x), jc_int(run + 1), jc_kw("log", jc_str(log))), 0);
    }
    jc_results *res = jc_run(b);
    jc_batch_free(b);
    return res;
}

/* Arguments left out of the key (issue 24: a log path that changes every
 * run gave 0 hits of 10 on the rerun): the rerun hits all 10; two calls
 * that differ only there are one call; the function gets the values as
 * given; the cache keeps a placeholder, which verify accepts. */
static void run_arguments_left_out_of_the_key_do_not_make_misses(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "left-out.db");
    jc_cache *c = open_cache(path, 0);
    logged_calls = 0;
    jc_results *res = run_logged(c, 0);
    assert_int_equal(jc_results_summary(res).computed, 10);
    assert_string_equal(logged_path, "/tmp/run-0-pid-4009.log"); /* as given */
    jc_results_free(res);
    res = run_logged(c, 1);
    assert_int_equal(jc_results_status(res), JC_OK);
    assert_int_equal(jc_results_summary(res).cached, 10);
    assert_int_equal(logged_calls, 10);
    for (int x = 0; x < 10; x++)
        assert_int_equal(jc_result_int(res, (size_t)x), 10 * x);
    jc_results_free(res);
    /* Two calls of one batch that differ only in what is left out: one. */
    jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
    jc_delayed(b, logged, jc_int(100), jc_int(1), jc_kw("log", jc_str("a.log")));
    jc_delayed(b, logged, jc_int(100), jc_int(8), jc_kw("log", jc_str("b.log")));
    res = jc_run(b);
    assert_int_equal(logged_calls, 11); /* one computation answers both */
    assert_int_equal(jc_results_summary(res).computed, 2);
    assert_int_equal(jc_result_int(res, 1), 1000);
    jc_results_free(res);
    jc_batch_free(b);
    /* What the cache keeps, and verify's agreement with it. */
    jc_value *v = jc_memo(c, logged, jc_int(100), jc_int(3), jc_kw("log", jc_str("c.log")));
    assert_non_null(v);
    assert_int_equal(logged_calls, 11); /* a hit */
    jc_value_free(v);
    jc_verify_result vr;
    assert_int_equal(jc_cache_verify(c, false, NULL, NULL, &vr), 0);
    assert_int_equal(vr.bad_entries, 0);
    assert_int_equal(vr.checked, 11);
    jc_cache_close(c);
    char *args = jc_test_sql_text(path, jc_test_pg() ? "SELECT upper(encode(args, 'hex')) FROM entries LIMIT 1"
                                                     : "SELECT hex(args) FROM entries LIMIT 1");
    assert_non_null(args);
    assert_non_null(strstr(args, "D40501")); /* the placeholder, twice (threads, log) */
    assert_non_null(strstr(strstr(args, "D40501") + 6, "D40501"));
    free(args);
}

static int wc_calls;
static int word_count(jc_call *call)
{
    wc_calls++;
    const char *path = jc_arg_str(call, 0);
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f)
        return jc_fail(call, "cannot open '%s'", path ? path : "?");
    int words = 0, c, in = 0;
    while ((c = fgetc(f)) != EOF) {
        words += !in && c > ' ';
        in = c > ' ';
    }
    fclose(f);
    return jc_return_int(call, words);
}
JC_FUNCTION(word_count, "v1");

static jc_results *count_words(jc_cache *c, const char *path)
{
    jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
    jc_delayed(b, word_count, jc_file(path));
    jc_results *res = jc_run(b);
    jc_batch_free(b);
    return res;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Sets path's modification time to seconds ago. */
static void age_file(const char *path, int seconds)
{
    struct timespec t[2];
    clock_gettime(CLOCK_REALTIME, &t[0]);
    t[0].tv_sec -= seconds;
    t[1] = t[0];
    assert_int_equal(utimensat(AT_FDCWD, path, t, 0), 0);
}

/* A file argument keyed by its content (issue 24: a function reading the
 * file its path names returned a stale hit after the file changed): a
 * changed file is a miss; a file touched but unchanged is a hit, read again
 * (its time changed) to find that; an unchanged file is not read again
 * unless its time is racy; a directory with a changed file is a miss; a
 * file that cannot be read fails the call at jc_delayed, naming it. */
static void run_a_file_argument_is_keyed_by_its_content(void **state)
{
    (void)state;
    char path[PATH_CAP], dir[PATH_CAP], file[PATH_CAP + 32];
    jc_test_path(path, sizeof path, "files.db");
    snprintf(dir, sizeof dir, "%s/words", jc_test_dir()); /* a directory, on either store */
    mkdir(dir, 0755);
    snprintf(file, sizeof file, "%s/a.txt", dir);
    write_file(file, "one two three\n");
    age_file(file, 60);
    jc_cache *c = open_cache(path, 0);
    wc_calls = 0;
    jc_results *res = count_words(c, file);
    assert_int_equal(jc_result_int(res, 0), 3);
    jc_results_free(res);
    unsigned long reads = jc__file_reads();
    res = count_words(c, file); /* unchanged: a hit, the file not read again */
    assert_int_equal(jc_results_summary(res).cached, 1);
    assert_int_equal(jc__file_reads(), reads);
    jc_results_free(res);
    write_file(file, "one two three four\n"); /* changed */
    res = count_words(c, file);
    assert_int_equal(jc_results_summary(res).computed, 1);
    assert_int_equal(jc_result_int(res, 0), 4);
    jc_results_free(res);
    /* Just written: racy, so read again next time (and then a hit). */
    reads = jc__file_reads();
    res = count_words(c, file);
    assert_int_equal(jc_results_summary(res).cached, 1);
    assert_int_equal(jc__file_reads(), reads + 1);
    jc_results_free(res);
    age_file(file, 30); /* touched, unchanged: read again, a hit */
    reads = jc__file_reads();
    res = count_words(c, file);
    assert_int_equal(jc_results_summary(res).cached, 1);
    assert_int_equal(jc__file_reads(), reads + 1);
    jc_results_free(res);
    assert_int_equal(wc_calls, 2);
    /* Rewritten in place with its size and time put back (cp -p, fixed
     * times): its ctime tells, and it is read again (a miss). */
    struct stat before;
    assert_int_equal(stat(file, &before), 0);
    write_file(file, "ONE TWO THREE FOUR\n");
    struct timespec t[2] = {before.st_atim, before.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, file, t, 0), 0);
    res = count_words(c, file);
    assert_int_equal(jc_results_summary(res).computed, 1);
    jc_results_free(res);
    assert_int_equal(wc_calls, 3);
    assert_string_equal(jc_version(), JC_VERSION_STRING);
    char version[32];
    snprintf(version, sizeof version, "%d.%d.%d", JC_VERSION_MAJOR, JC_VERSION_MINOR, JC_VERSION_PATCH);
    assert_string_equal(JC_VERSION_STRING, version);

    /* A directory: a changed file in it is a miss. */
    jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
    jc_delayed(b, add, jc_int(1), jc_int(1), jc_kw("data", jc_file(dir)));
    jc_results *r1 = jc_run(b);
    jc_batch_free(b);
    write_file(file, "changed\n");
    b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
    jc_delayed(b, add, jc_int(1), jc_int(1), jc_kw("data", jc_file(dir)));
    jc_results *r2 = jc_run(b);
    jc_batch_free(b);
    assert_int_equal(jc_results_summary(r1).computed, 1);
    assert_int_equal(jc_results_summary(r2).computed, 1);
    jc_results_free(r1);
    jc_results_free(r2);

    /* A file that cannot be read: the call fails at jc_delayed. */
    snprintf(file, sizeof file, "%s/missing.txt", dir);
    b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
    assert_int_equal(jc_delayed(b, word_count, jc_file(file)), JC_EINVAL);
    assert_contains(jc_errmsg(), "missing.txt");
    assert_contains(jc_errmsg(), "No such file or directory");
    jc_batch_free(b);
    jc_cache_close(c);
}

/* Expiry at lookup (issue 24, joblib's expires_after): entries older than
 * the age are computed again and replaced, the rest are hits; the plan
 * says how many expired; nothing is removed; the environment overrides. */
static void run_expired_entries_are_computed_again_and_replaced(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "expiry.db");
    jc_cache *c = open_cache(path, 0);
    jc_results_free(run_adds(c, 0, 5));
    jc_cache_close(c);
    sql(path, jc_test_pg() ? "UPDATE entries SET created = created - 7200 WHERE id <= 2"
                           : "UPDATE entries SET created = created - 7200 WHERE rowid <= 2");
    c = open_cache(path, 0);
    jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF, .expires_after = 3600});
    for (int i = 0; i < 5; i++)
        jc_delayed(b, add, jc_int(i), jc_int(1000));
    jc_plan_info plan;
    assert_int_equal(jc_plan(b, &plan), 0);
    assert_int_equal(plan.expired, 2);
    assert_int_equal(plan.cached, 3);
    char *text = jc_plan_text(&plan);
    assert_contains(text, "(2 expired)");
    free(text);
    add_calls = 0;
    jc_results *res = jc_run(b);
    assert_int_equal(jc_results_status(res), JC_OK);
    assert_int_equal(add_calls, 2);
    assert_int_equal(jc_results_summary(res).expired, 2);
    assert_int_equal(jc_results_summary(res).cached, 3);
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_int_equal(count_entries(path), 5);
    assert_int_equal(jc_test_sql_int(path, jc_test_pg() ? "SELECT count(*) FROM entries WHERE created < "
                                                          "extract(epoch from now()) - 3600"
                                                        : "SELECT count(*) FROM entries WHERE created < "
                                                          "strftime('%s','now') - 3600"),
                     0); /* replaced */
    /* The environment over the program; a bad value is refused. */
    sql(path, "UPDATE entries SET created = created - 600 WHERE rowid = 3");
    c = open_cache(path, 0);
    setenv("JOBCACHE_EXPIRES_AFTER", "5m", 1);
    add_calls = 0;
    jc_results_free(run_adds(c, 0, 5));
    assert_int_equal(add_calls, 1);
    setenv("JOBCACHE_EXPIRES_AFTER", "soon", 1);
    assert_null(jc_batch_new(c, NULL));
    assert_contains(jc_errmsg(), "JOBCACHE_EXPIRES_AFTER is 'soon'");
    unsetenv("JOBCACHE_EXPIRES_AFTER");
    assert_null(jc_batch_new(c, &(jc_options){.expires_after = -1}));
    assert_contains(jc_errmsg(), "expires_after");
    jc_cache_close(c);
}

/* Crashes the first time it runs for x (a marker file per x, since every
 * run is in a fresh worker), then succeeds; with x < 0, fails by itself. */
static char flaky_dir[PATH_CAP];
static int flaky(jc_call *call)
{
    int64_t x = jc_arg_int(call, 0);
    char marker[PATH_CAP + 32];
    snprintf(marker, sizeof marker, "%s/%lld", flaky_dir, (long long)(x < 0 ? -x : x));
    FILE *f = fopen(marker, "a");
    long runs = f ? ftell(f) : 0;
    if (f) {
        fputc('x', f);
        fclose(f);
    }
    if (x < 0)
        return jc_fail(call, "fails by itself (run %ld)", runs + 1);
    if (runs == 0)
        abort(); /* a crash: a fresh worker runs it again */
    return jc_return_int(call, x * 10);
}
JC_FUNCTION(flaky, "v1");

static long marker_runs(int64_t x)
{
    char marker[PATH_CAP + 32];
    snprintf(marker, sizeof marker, "%s/%lld", flaky_dir, (long long)x);
    struct stat sb;
    return stat(marker, &sb) == 0 ? (long)sb.st_size : 0;
}

/* Retries (issue 24, GNU parallel's --retries): a call that crashed runs
 * again, up to the number asked, before it counts as failed; a call that
 * failed by itself (jc_fail) is its own answer and runs once; the record
 * of runs counts the retries; without retries a crash fails the call. */
static void run_crashed_calls_are_retried_failures_are_not(void **state)
{
    (void)state;
    char path[PATH_CAP], cmd[2 * PATH_CAP + 64];
    jc_test_path(path, sizeof path, "retries.db");
    snprintf(flaky_dir, sizeof flaky_dir, "%s/flaky", jc_test_dir()); /* a directory, on either store */
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", flaky_dir, flaky_dir);
    assert_int_equal(system(cmd), 0);
    jc_cache *c = open_cache(path, 0);
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 2, .verbose = JC_VERBOSE_OFF, .retries = 2,
                                                .on_error = JC_ON_ERROR_CONTINUE});
    for (int x = 1; x <= 4; x++)
        jc_delayed(b, flaky, jc_int(x));
    jc_delayed(b, flaky, jc_int(-5));
    jc_results *res = jc_run(b);
    for (int x = 1; x <= 4; x++) {
        assert_int_equal(jc_result_status(res, (size_t)x - 1), JC_STATUS_OK);
        assert_int_equal(jc_result_int(res, (size_t)x - 1), 10 * x);
        assert_int_equal(marker_runs(x), 2); /* crashed once, then ran */
    }
    assert_int_equal(jc_result_status(res, 4), JC_STATUS_ERROR);
    assert_int_equal(marker_runs(5), 1); /* not retried */
    assert_int_equal(jc_results_summary(res).retried, 4);
    assert_int_equal(jc_results_summary(res).failed, 1);
    jc_results_free(res);
    jc_batch_free(b);
    assert_int_equal(jc_test_sql_int(path, "SELECT retries FROM runs ORDER BY id DESC LIMIT 1"), 4);
    /* Without retries, the crash is the call's end. */
    b = jc_batch_new(c, &(jc_options){.n_jobs = 2, .verbose = JC_VERBOSE_OFF, .on_error = JC_ON_ERROR_CONTINUE});
    jc_delayed(b, flaky, jc_int(6));
    res = jc_run(b);
    assert_int_equal(jc_result_status(res, 0), JC_STATUS_CRASHED);
    assert_int_equal(jc_results_summary(res).retried, 0);
    jc_results_free(res);
    jc_batch_free(b);
    setenv("JOBCACHE_RETRIES", "101", 1);
    assert_null(jc_batch_new(c, NULL));
    assert_contains(jc_errmsg(), "JOBCACHE_RETRIES is '101'");
    unsetenv("JOBCACHE_RETRIES");
    jc_cache_close(c);
}

/* Commits are spaced by what they cost: every 100 ms while a commit takes
 * under 10 ms; ten times a slower commit's time (a cold run into a cache of
 * 1.5 million entries wrote its whole key index again every 100 ms: 80% of
 * the run, bench/NOTES.md), and never more than 2 s apart, which bounds
 * what a kill -9 loses. */
double jc__r_commit_interval(double took); /* run/run_int.h, whose names clash with this file's */
static void run_commits_are_spaced_by_their_cost(void **state)
{
    (void)state;
    assert_true(jc__r_commit_interval(0.0) == 0.1);
    assert_true(jc__r_commit_interval(0.002) == 0.1);
    assert_true(jc__r_commit_interval(0.05) > 0.49 && jc__r_commit_interval(0.05) < 0.51);
    assert_true(jc__r_commit_interval(0.15) > 1.49 && jc__r_commit_interval(0.15) < 1.51);
    assert_true(jc__r_commit_interval(0.5) == 2.0);
    assert_true(jc__r_commit_interval(60.0) == 2.0); /* a long lock wait: still 2 s */
}

int main(void)
{
    unsetenv("JOBCACHE_PATH");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(run_results_come_back_in_submission_order),
        cmocka_unit_test(run_rerun_on_the_same_cache_is_all_hits),
        cmocka_unit_test(run_hits_go_to_the_hit_log_and_are_folded_later),
        cmocka_unit_test(run_extending_a_sweep_computes_only_the_new_calls),
        cmocka_unit_test(run_identical_calls_in_one_batch_are_computed_once_and_reported_for_each),
        cmocka_unit_test(run_on_result_fires_once_per_distinct_computed_call),
        cmocka_unit_test(run_on_progress_fires_and_ends_with_every_call_done),
        cmocka_unit_test(run_errors_are_never_cached),
        cmocka_unit_test(run_stop_on_error_skips_later_calls_and_keeps_and_stores_earlier_results),
        cmocka_unit_test(run_continue_on_error_runs_every_call),
        cmocka_unit_test(run_a_failure_message_names_the_function_and_its_arguments),
        cmocka_unit_test(run_a_wrong_typed_argument_is_an_error_naming_the_argument_and_types),
        cmocka_unit_test(run_a_missing_named_argument_is_an_error_naming_it),
        cmocka_unit_test(run_a_function_that_returns_0_without_a_result_is_an_error_naming_it),
        cmocka_unit_test(run_a_function_that_fails_without_jc_fail_or_returns_after_it_is_an_error),
        cmocka_unit_test(run_argument_accessors_given_no_call_return_zero_values),
        cmocka_unit_test(run_a_result_borrowing_the_functions_own_memory_is_kept_intact),
        cmocka_unit_test(run_results_status_is_ok_only_when_every_call_succeeded),
        cmocka_unit_test(run_a_warm_rerun_reports_hits_and_the_compute_time_they_saved),
        cmocka_unit_test(run_result_double_and_int_convert_or_give_nan_and_zero),
        cmocka_unit_test(run_result_take_hands_the_value_over),
        cmocka_unit_test(run_result_take_gives_each_identical_submission_its_own_value),
        cmocka_unit_test(run_an_out_of_range_index_gives_a_failed_status_and_no_value),
        cmocka_unit_test(run_zero_initialised_options_are_the_default),
        cmocka_unit_test(run_a_negative_timeout_is_refused),
        cmocka_unit_test(run_n_jobs_minus_one_and_two_give_the_same_results_as_one),
        cmocka_unit_test(run_an_unregistered_function_is_refused_at_the_call_with_file_and_line),
        cmocka_unit_test(run_a_null_argument_is_refused_at_the_call),
        cmocka_unit_test(run_a_null_argument_is_einval_whatever_the_last_error_was),
        cmocka_unit_test(run_a_named_argument_given_twice_is_refused),
        cmocka_unit_test(run_running_a_batch_twice_is_an_error),
        cmocka_unit_test(run_an_empty_batch_runs_fine),
        cmocka_unit_test(run_recompute_computes_every_call_and_overwrites_its_entry),
        cmocka_unit_test(run_readonly_uses_hits_and_never_writes),
        cmocka_unit_test(run_readonly_on_a_missing_file_fails_naming_it),
        cmocka_unit_test(run_disabled_computes_everything_and_creates_no_file),
        cmocka_unit_test(run_jobcache_path_chooses_the_file_when_path_is_null),
        cmocka_unit_test(run_the_default_file_is_jobcache_db_in_the_current_directory),
        cmocka_unit_test(run_a_corrupted_result_is_recomputed_and_its_entry_repaired),
        cmocka_unit_test(run_verbose_on_writes_exactly_one_summary_line),
        cmocka_unit_test(run_verbose_off_and_auto_without_a_terminal_write_nothing),
        cmocka_unit_test(run_max_size_bounds_the_files_on_disk_after_a_run),
        cmocka_unit_test(run_an_absurd_max_size_is_refused_and_evictions_are_told),
        cmocka_unit_test(run_a_result_too_large_for_max_size_is_reported_once),
        cmocka_unit_test(run_a_locked_file_keeps_results_in_memory_and_says_they_were_not_stored),
        cmocka_unit_test(run_hits_on_a_locked_file_cost_one_busy_timeout_not_one_per_hit),
        cmocka_unit_test(run_bytes_and_ints_accessors_read_their_arguments_or_fail_naming_them),
        cmocka_unit_test(run_a_large_bytes_argument_reaches_the_function_whole),
        cmocka_unit_test(run_summary_fits_the_terminal_shortening_the_path_not_wrapping_it),
        cmocka_unit_test(run_arguments_left_out_of_the_key_do_not_make_misses),
        cmocka_unit_test(run_a_file_argument_is_keyed_by_its_content),
        cmocka_unit_test(run_expired_entries_are_computed_again_and_replaced),
        cmocka_unit_test(run_crashed_calls_are_retried_failures_are_not),
        cmocka_unit_test(run_commits_are_spaced_by_their_cost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
