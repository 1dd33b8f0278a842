/*
 * The crash test: a run killed with SIGKILL at an arbitrary instant keeps
 * every result it committed, the file stays valid, and the next run computes
 * exactly what is missing.
 *
 * A child process opens a cache and runs a long batch (N calls of ~100 us
 * each, n_jobs = 1); a run commits its results every 100 ms (up to 2 s when
 * commits are slow: run_int.h). The
 * parent watches the file with SQLite until entries appear, lets the child
 * run on a little, counts once more and kills it. Then it checks the file
 * with SQLite directly and with the library.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jobcache.h>

#include "testutil.h"

#define PATH_CAP 4096
#define N_CALLS 20000

static int tick_calls;

/* What tick(i) returns. */
static int64_t expected(int64_t i)
{
    return i * 7 + 3;
}

static int tick(jc_call *call)
{
    tick_calls++;
    int64_t i = jc_arg_int(call, 0);
    struct timespec ts = {0, 100000};
    nanosleep(&ts, NULL);
    return jc_return(call, jc_list(jc_int(i), jc_int(expected(i))));
}
JC_FUNCTION(tick, "v1");

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static jc_batch *the_batch(jc_cache *c)
{
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
    if (!b)
        return NULL;
    for (int i = 0; i < N_CALLS; i++)
        if (jc_delayed(b, tick, jc_int(i)) != 0) {
            jc_batch_free(b);
            return NULL;
        }
    return b;
}

/* The child: run the whole batch, which it never finishes. */
static void child(const char *path)
{
    jc_cache *c = jc_cache_open(path, NULL);
    if (!c) {
        fprintf(stderr, "child: %s\n", jc_errmsg());
        _exit(3);
    }
    jc_batch *b = the_batch(c);
    if (!b)
        _exit(4);
    jc_results *res = jc_run(b);
    int code = res ? 0 : 5;
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
    _exit(code);
}

/* The number of committed entries, as another process sees it; -1 while
 * the file or its table does not exist yet. */
static int64_t committed(const char *path)
{
    int64_t n = -1;
    if (jc_test_sql_int_rc(path, "SELECT count(*) FROM entries", &n) != SQLITE_OK)
        return -1;
    return n;
}

/* Checks that every stored entry is tick(i) for its own i and decodes to
 * what tick computes; returns how many there are. */
static void check_entry(const char *fn, const char *ver, const void *a, size_t alen, const void *r, size_t rlen,
                        char *seen)
{
    assert_string_equal(fn, "tick");
    assert_string_equal(ver, "v1");
    /* args: [[i], {}] */
    jc_value *args = NULL, *result = NULL;
    assert_int_equal(jc_value_decode(a, alen, &args), 0);
    int64_t i = -1;
    assert_int_equal(jc_value_len(args), 2);
    assert_int_equal(jc_value_get_int(jc_value_at(jc_value_at(args, 0), 0), &i), 0);
    assert_true(i >= 0 && i < N_CALLS);
    assert_false(seen[i]);
    seen[i] = 1;
    int rrc = jc_value_decode(r, rlen, &result);
    if (rrc != 0)
        fail_msg("the result of tick(%lld) does not decode: %s", (long long)i, jc_errmsg());
    jc_value *want = jc_list(jc_int(i), jc_int(expected(i)));
    assert_true(jc_value_equal(result, want));
    jc_value_free(want);
    jc_value_free(args);
    jc_value_free(result);
}

/* verify_entries on the server: the same rows, read in binary. */
static int64_t verify_entries_pg(const char *path)
{
    PGconn *c = jc_test_pg_connect();
    assert_non_null(c);
    const char *schema = jc_test_pg_schema(path);
    PQclear(PQexecParams(c, "SELECT set_config('search_path', $1, false)", 1, NULL, &schema, NULL, NULL, 0));
    PGresult *r = PQexecParams(c, "SELECT function, version, args, result FROM entries", 0, NULL, NULL, NULL, NULL, 1);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    char *seen = calloc(N_CALLS, 1);
    assert_non_null(seen);
    int n = PQntuples(r);
    for (int k = 0; k < n; k++) {
        char fn[64], ver[64];
        snprintf(fn, sizeof fn, "%.*s", PQgetlength(r, k, 0), PQgetvalue(r, k, 0));
        snprintf(ver, sizeof ver, "%.*s", PQgetlength(r, k, 1), PQgetvalue(r, k, 1));
        check_entry(fn, ver, PQgetvalue(r, k, 2), (size_t)PQgetlength(r, k, 2), PQgetvalue(r, k, 3),
                    (size_t)PQgetlength(r, k, 3), seen);
    }
    free(seen);
    PQclear(r);
    PQfinish(c);
    return n;
}

static int64_t verify_entries(const char *path)
{
    if (jc_test_is_pg_location(path))
        return verify_entries_pg(path);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT function, version, args, result FROM entries", -1, &st,
                                        NULL),
                     SQLITE_OK);
    int64_t n = 0;
    char *seen = calloc(N_CALLS, 1);
    assert_non_null(seen);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        check_entry((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
                    sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2), sqlite3_column_blob(st, 3),
                    (size_t)sqlite3_column_bytes(st, 3), seen);
        n++;
    }
    assert_int_equal(rc, SQLITE_DONE);
    free(seen);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* Starts the child on path, waits until it has committed more than `already`
 * entries, lets it run delay_ms more (and until it commits again), kills it
 * and checks the file. Returns the number of entries stored. */
static int64_t run_and_kill(const char *path, int64_t already, long delay_ms)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        child(path); /* never returns */

    /* Wait for the child's first commit (up to 30 s). */
    int64_t seen = -1;
    for (int waited = 0; waited < 30000 && seen <= already; waited += 20) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            fail_msg("the child ended before it was killed (status %d)", status);
        sleep_ms(20);
        seen = committed(path);
    }
    if (seen <= already) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("no entry was committed within 30 s");
    }
    sleep_ms(delay_ms);
    int64_t before_kill = committed(path);
    /* The run keeps committing while it lasts (every 100 ms, at most 2 s); allow a loaded
     * machine some slack before calling it stuck. */
    for (int waited = 0; waited < 8000 && before_kill <= seen; waited += 20) {
        sleep_ms(20);
        before_kill = committed(path);
    }
    if (before_kill <= seen) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("no new commit within 8 s of the first one (%lld entries)", (long long)seen);
    }
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    print_message("committed: %lld before the child, %lld at first sight, %lld just before the kill\n",
                  (long long)already, (long long)seen, (long long)before_kill);

    /* The file is valid and nothing committed is lost. */
    if (!jc_test_pg()) { /* SQLite's own check of its file */
        char *check = jc_test_sql_text(path, "PRAGMA integrity_check");
        assert_non_null(check);
        assert_string_equal(check, "ok");
        free(check);
    }
    int64_t stored = jc_test_sql_int(path, "SELECT count(*) FROM entries");
    assert_true(stored >= before_kill);
    assert_true(stored < N_CALLS); /* it was killed mid-run */
    assert_int_equal(verify_entries(path), stored);
    return stored;
}

static void kill_a_run_killed_with_sigkill_keeps_every_committed_result(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "killed.db");

    /* Killed once from scratch, then again while resuming from the first
     * crash's file (its hits answered, the rest being computed). */
    int64_t stored = run_and_kill(path, 0, 150);
    stored = run_and_kill(path, stored, 70);

    /* The rerun hits exactly what is stored and computes the rest. */
    jc_cache *c = jc_cache_open(path, NULL);
    if (!c)
        fail_msg("reopening after the kill: %s", jc_errmsg());
    jc_batch *b = the_batch(c);
    assert_non_null(b);
    tick_calls = 0;
    jc_results *res = jc_run(b);
    assert_non_null(res);
    assert_int_equal(jc_results_status(res), JC_OK);
    jc_progress p = jc_results_summary(res);
    assert_int_equal(p.total, N_CALLS);
    assert_int_equal(p.cached, stored);
    assert_int_equal(p.computed, N_CALLS - stored);
    assert_int_equal(tick_calls, N_CALLS - stored);
    for (size_t k = 0; k < N_CALLS; k++) {
        const jc_value *v = jc_result_value(res, k);
        int64_t got = -1;
        assert_int_equal(jc_value_get_int(jc_value_at(v, 1), &got), 0);
        assert_int_equal(got, expected((int64_t)k));
    }
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);

    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), N_CALLS);
    assert_int_equal(verify_entries(path), N_CALLS);
    if (!jc_test_pg()) { /* SQLite's own check of its file */
        char *check = jc_test_sql_text(path, "PRAGMA integrity_check");
        assert_non_null(check);
        assert_string_equal(check, "ok");
        free(check);
    }
}

int main(void)
{
    unsetenv("JOBCACHE_PATH");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kill_a_run_killed_with_sigkill_keeps_every_committed_result),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
