/*
 * Tests of what a hit promises (issue "Trust"): a hit, and a result carried
 * from a worker, is bit for bit what the function returned; a result whose
 * bytes changed on disk is never served; hits are recorded on the entry
 * they hit; a program can end as if killed by the signal that interrupted
 * its run; a hit computed by other code under the same version is noticed.
 * Each test failed on jobcache 0.1.0.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jobcache.h>

#define JC_TEST_WANT_SQUARE
#include "function/fingerprint.h"
#include "testutil.h"

/* SQL setting code_fp to a fingerprint of this scheme that no code has. */
static const char *other_code_sql(const char *where, char *buf, size_t cap)
{
    snprintf(buf, cap, "UPDATE entries SET code_fp = x'%02x%030d' WHERE %s", JC__FINGERPRINT_SCHEME, 0, where);
    return buf;
}

#define PATH_CAP 4096

/* Doubles whose bits canonical form would change: -0.0, a NaN with a
 * payload, a negative NaN; and ordinary ones. */
static const uint64_t odd_bits[] = {
    UINT64_C(0x8000000000000000), /* -0.0 */
    UINT64_C(0x7ff80000000abcde), /* quiet NaN, payload 0xabcde */
    UINT64_C(0xfff8000000000001), /* negative NaN, payload 1 */
    UINT64_C(0x3ff8000000000000), /* 1.5 */
};
enum { NODD = sizeof odd_bits / sizeof *odd_bits };

/* A result of every kind of value, holding the odd doubles everywhere a
 * double can be: alone, in a typed array, in a list, in a map, nested. */
static jc_value *odd_value(void)
{
    double arr[NODD];
    for (size_t i = 0; i < NODD; i++)
        arr[i] = jc_test_from_bits(odd_bits[i]);
    jc_value *list = jc_list_new();
    for (size_t i = 0; i < NODD; i++)
        jc_list_append(list, jc_double(arr[i]));
    jc_list_append(list, jc_map(jc_kw("deep", jc_list(jc_double(arr[0]), jc_doubles(arr, NODD)))));
    return jc_map(jc_kw("alone", jc_double(arr[1])), jc_kw("array", jc_doubles(arr, NODD)), jc_kw("list", list),
                  jc_kw("bytes", jc_bytes("\x00\xff\x80", 3)), jc_kw("text", jc_str("\xc3\xa9t\xc3\xa9")),
                  jc_kw("ints", jc_ints((int64_t[]){INT64_MIN, -1, 0, INT64_MAX}, 4)),
                  jc_kw("negzero", jc_double(arr[0])));
}

static int odd(jc_call *call)
{
    (void)jc_arg_int(call, 0);
    return jc_return(call, odd_value());
}
JC_FUNCTION(odd, "v1");

/* Runs odd(0) with n_jobs and checks the bits; returns whether it was a hit. */
static bool run_odd(const char *path, int n_jobs)
{
    jc_cache *c = open_cache(path, 0);
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = n_jobs, .verbose = JC_VERBOSE_OFF});
    jc_delayed(b, odd, jc_int(0));
    jc_delayed(b, odd, jc_int(1));
    jc_results *res = jc_run(b);
    assert_int_equal(jc_results_status(res), JC_OK);
    jc_value *want = odd_value();
    for (size_t k = 0; k < 2; k++)
        assert_true(jc_test_same_bits(jc_result_value(res, k), want));
    jc_value_free(want);
    bool cached = jc_result_cached(res, 0);
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
    return cached;
}

/* Item 2: results cross the pipe from a worker and the store exactly. */
static void trust_results_keep_their_bits_cold_and_warm(void **state)
{
    (void)state;
    char path[PATH_CAP];
    for (int n_jobs = 1; n_jobs <= 2; n_jobs++) {
        jc_test_path(path, sizeof path, n_jobs == 1 ? "bits-inprocess.db" : "bits-workers.db");
        assert_false(run_odd(path, n_jobs)); /* cold: computed, from a worker when n_jobs is 2 */
        assert_true(run_odd(path, n_jobs));  /* warm: from the file */
    }
    /* And jc_memo, cold and warm. */
    jc_test_path(path, sizeof path, "bits-memo.db");
    jc_value *want = odd_value();
    for (int i = 0; i < 2; i++) {
        jc_cache *c = open_cache(path, 0);
        jc_value *v = jc_memo(c, odd, jc_int(7));
        assert_true(jc_test_same_bits(v, want));
        jc_value_free(v);
        jc_cache_close(c);
    }
    jc_value_free(want);
}

static int sq_calls;
static int sq(jc_call *call)
{
    sq_calls++;
    int64_t x = jc_arg_int(call, 0);
    return jc_return_int(call, x * x);
}
JC_FUNCTION(sq, "v1");

static jc_results *run_sq(jc_cache *c, int64_t from, int64_t to, jc_progress *summary)
{
    jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
    for (int64_t x = from; x < to; x++)
        jc_delayed(b, sq, jc_int(x));
    jc_results *res = jc_run(b);
    jc_batch_free(b);
    assert_non_null(res);
    if (summary)
        *summary = jc_results_summary(res);
    return res;
}

/* Item 3: a result replaced on disk by other valid MessagePack (sq(4) = 16
 * stored, then the bytes of 5) is not served: a miss, recomputed,
 * overwritten and counted; verify reports it first. */
static void trust_a_result_changed_on_disk_is_recomputed_and_counted(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "damaged.db");
    jc_cache *c = open_cache(path, 0);
    jc_results_free(run_sq(c, 0, 8, NULL));
    jc_cache_close(c);
    sql(path, "UPDATE entries SET result = x'05' WHERE result = x'10'"); /* sq(4): 16 -> 5 */

    jc_verify_result vr;
    c = open_cache(path, JC_CACHE_READONLY);
    assert_int_equal(jc_cache_verify(c, false, NULL, NULL, &vr), 0);
    assert_int_equal(vr.bad_entries, 1);
    jc_cache_close(c);

    c = open_cache(path, 0);
    jc_progress p;
    sq_calls = 0;
    jc_results *res = run_sq(c, 0, 8, &p);
    assert_int_equal(jc_result_int(res, 4), 16);
    assert_false(jc_result_cached(res, 4));
    assert_int_equal(sq_calls, 1);
    assert_int_equal(p.damaged, 1);
    assert_int_equal(p.cached, 7);
    jc_results_free(res);
    /* Overwritten: the next run hits all, and verify finds it sound. */
    res = run_sq(c, 0, 8, &p);
    assert_int_equal(p.cached, 8);
    assert_int_equal(p.damaged, 0);
    jc_results_free(res);
    assert_int_equal(jc_cache_verify(c, false, NULL, NULL, &vr), 0);
    assert_int_equal(vr.bad_entries, 0);

    /* jc_memo too. */
    jc_cache_close(c);
    sql(path, "UPDATE entries SET result = x'05' WHERE result = x'10'");
    c = open_cache(path, 0);
    jc_value *v = jc_memo(c, sq, jc_int(4));
    int64_t x = 0;
    assert_int_equal(jc_value_get_int(v, &x), 0);
    assert_int_equal(x, 16);
    jc_value_free(v);
    jc_cache_close(c);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries WHERE result = x'10'"), 1);
}

/* Item 7: a hit queued for writing lands on the entry it hit, not on one
 * that took over its row id. */
static void trust_hits_land_on_the_entry_they_hit(void **state)
{
    (void)state;
    if (jc_test_file_only())
        return;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "rowid-reuse.db");
    jc_cache *c = open_cache(path, 0);
    jc_value_free(jc_memo(c, sq, jc_int(1)));
    jc_value_free(jc_memo(c, sq, jc_int(1))); /* a hit, queued */
    int64_t rowid = jc_test_sql_int(path, "SELECT rowid FROM entries");
    /* Another program removes sq(1) and stores sq(2), which gets the same
     * row id (SQLite gives the largest row id + 1). */
    jc_cache *other = open_cache(path, 0);
    char *hex = jc_test_sql_text(path, "SELECT lower(hex(key)) FROM entries");
    jc_entry_info info;
    assert_int_equal(jc_entry_find(other, hex, &info), 0);
    free(hex);
    assert_int_equal(jc_entry_remove(other, info.key), 0);
    jc_value_free(jc_memo(other, sq, jc_int(2)));
    jc_cache_close(other);
    assert_int_equal(jc_test_sql_int(path, "SELECT rowid FROM entries"), rowid);
    double stored_used = (double)jc_test_sql_int(path, "SELECT CAST(last_used * 1000 AS INTEGER) FROM entries");
    jc_cache_close(c); /* writes the queued hit */
    assert_int_equal(jc_test_sql_int(path, "SELECT hits FROM entries"), 0);
    assert_true((double)jc_test_sql_int(path, "SELECT CAST(last_used * 1000 AS INTEGER) FROM entries") ==
                stored_used);
}

/* The same for the hits of a run, queued while it runs: another process
 * replaces the entry it hit in the middle of the run (from on_result). */
static const char *replace_path;
static void replace_entry(const jc_results *res, size_t index, void *userdata)
{
    (void)res;
    (void)index;
    int *done = userdata;
    if (*done)
        return;
    *done = 1;
    jc_cache *other = open_cache(replace_path, 0);
    char *hex = jc_test_sql_text(replace_path, "SELECT lower(hex(key)) FROM entries");
    jc_entry_info info;
    assert_int_equal(jc_entry_find(other, hex, &info), 0);
    free(hex);
    assert_int_equal(jc_entry_remove(other, info.key), 0);
    jc_value_free(jc_memo(other, sq, jc_int(2)));
    jc_cache_close(other);
}

static void trust_hits_of_a_run_land_on_the_entry_they_hit(void **state)
{
    (void)state;
    if (jc_test_file_only())
        return;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "rowid-reuse-run.db");
    replace_path = path;
    jc_cache *c = open_cache(path, 0);
    jc_value_free(jc_memo(c, sq, jc_int(1)));
    int64_t rowid = jc_test_sql_int(path, "SELECT rowid FROM entries");
    int done = 0;
    jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF, .on_result = replace_entry,
                                                .userdata = &done});
    jc_delayed(b, sq, jc_int(1)); /* a hit, recorded at the end of the run */
    jc_results *res = jc_run(b);
    assert_true(jc_result_cached(res, 0));
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_int_equal(jc_test_sql_int(path, "SELECT rowid FROM entries"), rowid); /* sq(2), same rowid */
    assert_int_equal(jc_test_sql_int(path, "SELECT hits FROM entries"), 0);
}

/* Item 7: jc_cache_stats counts the hits this process has not written yet. */
static void trust_stats_counts_hits_not_yet_written(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "pending.db");
    jc_cache *c = open_cache(path, 0);
    jc_results_free(run_sq(c, 0, 3, NULL));
    for (int i = 0; i < 3; i++)
        jc_value_free(jc_memo(c, sq, jc_int(2)));
    jc_stats *s = jc_cache_stats(c);
    assert_int_equal(s->hits, 3);
    assert_int_equal(s->functions[0].hits, 3);
    jc_stats_free(s);
    jc_cache_close(c);
    assert_int_equal(jc_test_sql_int(path, "SELECT sum(hits) FROM entries"), 3);
}

/* The same with a cache whose busy timeout is short, so that the flush
 * gives up at once and the count comes from memory. */
static void trust_stats_counts_pending_hits_while_the_file_is_locked(void **state)
{
    (void)state;
    if (jc_test_file_only())
        return;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "pending-locked.db");
    jc_cache *c = jc_cache_open(path, &(jc_cache_options){.busy_timeout_ms = 20});
    assert_non_null(c);
    jc_results_free(run_sq(c, 0, 3, NULL));
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    for (int i = 0; i < 2; i++)
        jc_value_free(jc_memo(c, sq, jc_int(2)));
    jc_stats *s = jc_cache_stats(c);
    assert_non_null(s);
    assert_int_equal(s->hits, 2);
    jc_stats_free(s);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);
    jc_cache_close(c);
    assert_int_equal(jc_test_hits_sql(path, "SELECT sum(hits) FROM entries"), 2);
}

static int nap(jc_call *call)
{
    struct timespec ts = {0, 20 * 1000000};
    nanosleep(&ts, NULL);
    return jc_return_int(call, jc_arg_int(call, 0));
}
JC_FUNCTION(nap, "v1");

/* Item 10: after an interrupted run a program ends as killed by the signal
 * (what a shell needs to stop a loop), once its results are committed. */
static void trust_an_interrupted_program_ends_as_killed_by_the_signal(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "reraise.db");
    for (int n_jobs = 1; n_jobs <= 2; n_jobs++) {
        int pipefd[2];
        assert_int_equal(pipe(pipefd), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(pipefd[0]);
            jc_cache *c = jc_cache_open(path, NULL);
            jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = n_jobs, .verbose = JC_VERBOSE_OFF});
            for (int i = 0; i < 500; i++)
                jc_delayed(b, nap, jc_int(i + 1000 * n_jobs));
            if (write(pipefd[1], "x", 1) != 1)
                _exit(5);
            jc_results *res = jc_run(b);
            int status = jc_results_status(res);
            jc_results_free(res);
            jc_batch_free(b);
            jc_cache_close(c);
            if (status != JC_EINTR || jc_interrupted_signal() != SIGINT)
                _exit(4);
            jc_raise_interrupt();
            _exit(3); /* not reached */
        }
        close(pipefd[1]);
        char ch;
        assert_int_equal(read(pipefd[0], &ch, 1), 1);
        close(pipefd[0]);
        struct timespec ts = {0, 300 * 1000000};
        nanosleep(&ts, NULL);
        kill(pid, SIGINT);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGINT);
        /* What finished before the signal is in the file. */
        assert_true(jc_test_sql_int(path, "SELECT count(*) FROM entries WHERE function = 'nap'") > 0);
    }
    /* Without an interrupt it returns. */
    jc_cache *c = open_cache(path, 0);
    jc_results_free(run_sq(c, 0, 2, NULL));
    assert_int_equal(jc_interrupted_signal(), 0);
    jc_raise_interrupt();
    jc_cache_close(c);
}

/* Runs sq(0..n) with a policy, stderr captured into *err (malloc'd). */
static jc_progress run_sq_policy(const char *path, int n, jc_on_code_change policy, char **err)
{
    char errpath[PATH_CAP + 16];
    jc_test_side(errpath, sizeof errpath, path, ".stderr");
    int saved = jc_test_stderr_to(errpath);
    jc_cache *c = open_cache(path, 0);
    jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF, .on_code_change = policy});
    assert_non_null(b);
    for (int x = 0; x < n; x++)
        jc_delayed(b, sq, jc_int(x));
    jc_results *res = jc_run(b);
    assert_int_equal(jc_results_status(res), JC_OK);
    for (int x = 0; x < n; x++)
        assert_int_equal(jc_result_int(res, (size_t)x), x * x);
    jc_progress p = jc_results_summary(res);
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
    jc_test_stderr_restore(saved);
    size_t len = 0;
    *err = jc_test_read_file(errpath, &len);
    return p;
}

/* Item 4: entries computed by other code under the same name and version
 * (their stored fingerprint differs from the running code's) are warned
 * about, recomputed or served, as the policy says; unknown ones never. */
static void trust_hits_from_other_code_follow_the_policy(void **state)
{
    (void)state;
    char path[PATH_CAP], *err = NULL;
    jc_test_path(path, sizeof path, "code-change.db");
    jc_progress p = run_sq_policy(path, 6, JC_ON_CODE_CHANGE_WARN, &err);
    free(err);
    /* The running code has a fingerprint, stored with every entry. */
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries WHERE length(code_fp) = 16"), 6);
    p = run_sq_policy(path, 6, JC_ON_CODE_CHANGE_WARN, &err);
    assert_int_equal(p.cached, 6);
    assert_int_equal(p.code_changed, 0);
    assert_string_equal(err, "");
    free(err);

    /* As if another build had computed four of them (same scheme byte),
     * and 0.1.0 one of them (no fingerprint). */
    char q[256];
    sql(path, other_code_sql("rowid <= 4", q, sizeof q));
    sql(path, "UPDATE entries SET code_fp = NULL WHERE rowid = 5");
    p = run_sq_policy(path, 6, JC_ON_CODE_CHANGE_WARN, &err);
    assert_int_equal(p.cached, 6);
    assert_int_equal(p.code_changed, 4);
    assert_contains(err, "4 cached results of sq (version v1) were computed by different code");
    assert_contains(err, "JOBCACHE_ON_CODE_CHANGE=recompute");
    assert_int_equal(strchr(err, '\n') - err + 1, (long)strlen(err)); /* one line for the function */
    free(err);
    jc_cache *c = open_cache(path, JC_CACHE_READONLY);
    jc_stats *st = jc_cache_stats(c);
    assert_int_equal(st->functions[0].code_fingerprints, 2);
    jc_stats_free(st);
    jc_cache_close(c);

    p = run_sq_policy(path, 6, JC_ON_CODE_CHANGE_IGNORE, &err);
    assert_int_equal(p.cached, 6);
    assert_int_equal(p.code_changed, 4);
    assert_string_equal(err, "");
    free(err);

    /* The environment over the program: recompute. */
    setenv("JOBCACHE_ON_CODE_CHANGE", "recompute", 1);
    sq_calls = 0;
    p = run_sq_policy(path, 6, JC_ON_CODE_CHANGE_IGNORE, &err);
    unsetenv("JOBCACHE_ON_CODE_CHANGE");
    assert_int_equal(p.cached, 2);
    assert_int_equal(p.computed, 4);
    assert_int_equal(sq_calls, 4);
    free(err);
    /* Recomputed entries carry the running code's fingerprint again. */
    p = run_sq_policy(path, 6, JC_ON_CODE_CHANGE_WARN, &err);
    assert_int_equal(p.code_changed, 0);
    assert_int_equal(p.cached, 6);
    free(err);

    /* A fingerprint of another scheme says nothing: never a change. */
    sql(path, "UPDATE entries SET code_fp = x'ff000000000000000000000000000000' WHERE rowid = 1");
    p = run_sq_policy(path, 6, JC_ON_CODE_CHANGE_WARN, &err);
    assert_int_equal(p.code_changed, 0);
    free(err);

    /* A bad value of the variable is an error naming it and the value. */
    setenv("JOBCACHE_ON_CODE_CHANGE", "sometimes", 1);
    c = open_cache(path, 0);
    assert_null(jc_batch_new(c, NULL));
    assert_int_equal(jc_errcode(), JC_EINVAL);
    assert_contains(jc_errmsg(), "JOBCACHE_ON_CODE_CHANGE");
    assert_contains(jc_errmsg(), "sometimes");
    unsetenv("JOBCACHE_ON_CODE_CHANGE");
    jc_cache_close(c);
}

/* Item 4 through jc_memo: warned once per function, recomputed on demand. */
static void trust_a_memo_hit_from_other_code_warns_once(void **state)
{
    (void)state;
    char path[PATH_CAP], errpath[PATH_CAP + 16];
    jc_test_path(path, sizeof path, "code-change-memo.db");
    jc_test_side(errpath, sizeof errpath, path, ".stderr");
    jc_cache *c = open_cache(path, 0);
    for (int x = 0; x < 3; x++)
        jc_value_free(jc_memo(c, sq, jc_int(x)));
    jc_cache_close(c);
    char q[256];
    sql(path, other_code_sql("1", q, sizeof q));
    int saved = jc_test_stderr_to(errpath);
    c = open_cache(path, 0);
    sq_calls = 0;
    for (int x = 0; x < 3; x++)
        jc_value_free(jc_memo(c, sq, jc_int(x)));
    assert_int_equal(sq_calls, 0);
    setenv("JOBCACHE_ON_CODE_CHANGE", "recompute", 1);
    jc_value_free(jc_memo(c, sq, jc_int(1)));
    unsetenv("JOBCACHE_ON_CODE_CHANGE");
    assert_int_equal(sq_calls, 1);
    jc_cache_close(c);
    jc_test_stderr_restore(saved);
    size_t len = 0;
    char *err = jc_test_read_file(errpath, &len);
    assert_contains(err, "a cached result of sq (version v1) was computed by different code");
    assert_int_equal(strchr(err, '\n') - err + 1, (long)strlen(err)); /* once */
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(trust_results_keep_their_bits_cold_and_warm),
        cmocka_unit_test(trust_a_result_changed_on_disk_is_recomputed_and_counted),
        cmocka_unit_test(trust_hits_land_on_the_entry_they_hit),
        cmocka_unit_test(trust_hits_of_a_run_land_on_the_entry_they_hit),
        cmocka_unit_test(trust_stats_counts_hits_not_yet_written),
        cmocka_unit_test(trust_stats_counts_pending_hits_while_the_file_is_locked),
        cmocka_unit_test(trust_an_interrupted_program_ends_as_killed_by_the_signal),
        cmocka_unit_test(trust_hits_from_other_code_follow_the_policy),
        cmocka_unit_test(trust_a_memo_hit_from_other_code_warns_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
