/*
 * Tests of leases: two programs on one cache never compute the same call
 * twice at once. A run claims its misses; a run of another process that
 * needs the same calls computes its own first, then waits for them and
 * takes them as hits. A killed owner costs no hang, a failed call is not
 * cached (the waiter computes it), and an owner of another machine or
 * container is trusted until its claim expires. 0.1.0 computed every
 * shared call in every process.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jobcache.h>

#include "jc_internal.h"
#include "cache/cache.h"
#include "testutil.h"

#define PATH_CAP 4096

/* Computations of every process, counted in shared memory. */
static atomic_int *computed;
static int fail_three; /* set in one process only: its call of 3 fails */

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int slow_sq(jc_call *call)
{
    int64_t x = jc_arg_int(call, 0);
    atomic_fetch_add(computed, 1);
    nap_ms(10);
    if (x == 3 && fail_three)
        return jc_fail(call, "three fails in this process");
    return jc_return_int(call, x * x);
}
JC_FUNCTION(slow_sq, "v1");

static int setup(void **state)
{
    (void)state;
    computed = mmap(NULL, sizeof *computed, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(computed != MAP_FAILED);
    atomic_store(computed, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    munmap(computed, sizeof *computed);
    return 0;
}

typedef struct run_out {
    size_t cached, computed, failed;
    double seconds;
    int status;
} run_out;

static void notify_first(const jc_results *res, size_t index, void *userdata)
{
    (void)res;
    (void)index;
    int *fd = userdata;
    if (*fd >= 0) {
        if (write(*fd, "r", 1) != 1) {
        }
        close(*fd);
        *fd = -1;
    }
}

/* Runs slow_sq(0..n) on path; with notify_fd >= 0, writes a byte to it at
 * the first result (the claims are made by then). */
static run_out run_sq(const char *path, int n, int n_jobs, int notify_fd)
{
    run_out o = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    jc_cache *c = jc_cache_open(path, NULL);
    if (!c) {
        o.status = jc_errcode();
        return o;
    }
    int fd = notify_fd;
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = n_jobs,
                                                .verbose = JC_VERBOSE_OFF,
                                                .on_error = JC_ON_ERROR_CONTINUE,
                                                .on_result = fd >= 0 ? notify_first : NULL,
                                                .userdata = &fd});
    for (int x = 0; x < n; x++)
        jc_delayed(b, slow_sq, jc_int(x));
    jc_results *res = jc_run(b);
    o.status = jc_results_status(res);
    for (int x = 0; x < n; x++)
        if (jc_result_status(res, (size_t)x) == JC_STATUS_OK && jc_result_int(res, (size_t)x) != (int64_t)x * x)
            o.status = -999; /* a wrong result */
    jc_progress p = jc_results_summary(res);
    o.cached = p.cached;
    o.computed = p.computed;
    o.failed = p.failed;
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    o.seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    return o;
}

/* Writes a claim as another process would: owner's row, expiring at
 * expires, and a row of n claimed keys (keys, or n zero keys when NULL). */
/* On the server, an owner is alive while a session holds its lock
 * (store/pg/tend.c): a process of the test's holds it for owner, for
 * seconds, then ends. Returns its pid (0 on a file, where nothing is
 * needed). */
static pid_t hold_owner_session(const char *path, const char *owner, double seconds)
{
    if (!jc_test_is_pg_location(path))
        return 0;
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        PGconn *c = jc_test_pg_connect();
        if (!c)
            _exit(1);
        const char *schema = jc_test_pg_schema(path);
        PQclear(PQexecParams(c, "SELECT set_config('search_path', $1, false)", 1, NULL, &schema, NULL, NULL, 0));
        PGresult *r = PQexecParams(c, "SELECT pg_advisory_lock(hashtext('jobcache lease ' || current_schema()),"
                                      " hashtext($1))", 1, NULL, &owner, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || write(p[1], "r", 1) != 1)
            _exit(1);
        nap_ms((int)(seconds * 1000));
        _exit(0); /* the session ends with the process */
    }
    close(p[1]);
    char ch;
    assert_int_equal(read(p[0], &ch, 1), 1);
    close(p[0]);
    return pid;
}

static void insert_claim(const char *path, const char *owner, double expires, const uint8_t *keys, size_t n)
{
    if (jc_test_pg()) { /* the same rows, as SQL text (test owners hold no quote) */
        size_t cap = 512 + 2 * n * JC__KEY_LEN;
        char *q = malloc(cap);
        assert_non_null(q);
        int at = snprintf(q, cap, "INSERT INTO lease_owners VALUES ('%s', %.17g, %.17g);"
                          " INSERT INTO leases (owner, keys) VALUES ('%s', '\\x", owner, expires, jc__now() - 60, owner);
        for (size_t i = 0; i < n * JC__KEY_LEN; i++)
            at += snprintf(q + at, cap - (size_t)at, "%02x", keys ? keys[i] : 0);
        snprintf(q + at, cap - (size_t)at, "'::bytea)");
        sql(path, q);
        free(q);
        return;
    }
    sqlite3 *db;
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO lease_owners VALUES (?1, ?2, ?3)", -1, &s, NULL), SQLITE_OK);
    sqlite3_bind_text(s, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_double(s, 2, expires);
    sqlite3_bind_double(s, 3, jc__now() - 60);
    assert_int_equal(sqlite3_step(s), SQLITE_DONE);
    sqlite3_finalize(s);
    uint8_t *zeros = keys ? NULL : calloc(n ? n : 1, JC__KEY_LEN);
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO leases (owner, keys) VALUES (?1, ?2)", -1, &s, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(s, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, keys ? keys : zeros, (int)(n * JC__KEY_LEN), SQLITE_STATIC);
    assert_int_equal(sqlite3_step(s), SQLITE_DONE);
    sqlite3_finalize(s);
    sqlite3_close(db);
    free(zeros);
}

/* The key of slow_sq(x). */
static void slow_sq_key(int64_t x, uint8_t key[JC__KEY_LEN])
{
    jc_value *arg = jc_int(x);
    assert_int_equal(jc__key_compute("slow_sq", "v1", &arg, 1, key), 0);
    jc_value_free(arg);
}

/* Starts a process that runs slow_sq(0..n) on path (its call of 3 failing
 * when fail3), and returns once it has claimed its misses and delivered a
 * first result. It exits 0 when its run failed exactly as expected. */
static pid_t start_owner(const char *path, int n, bool fail3)
{
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        fail_three = fail3;
        run_out o = run_sq(path, n, 1, ready[1]);
        _exit(o.failed == (fail3 ? 1u : 0u) ? 0 : 1);
    }
    close(ready[1]);
    char ch;
    assert_int_equal(read(ready[0], &ch, 1), 1); /* claimed, computing */
    close(ready[0]);
    return pid;
}

/* Two processes started together on one cache, the same 100 calls of 10 ms
 * each: every call is computed once (0.1.0: twice), and both get every
 * result. */
static void leases_two_processes_compute_each_call_once(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "two.db");
    jc_cache_close(open_cache(path, 0)); /* the file exists before both start */
    int go[2], back[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(back), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char ch;
        close(go[1]);
        close(back[0]);
        if (read(go[0], &ch, 1) != 1)
            _exit(2);
        run_out o = run_sq(path, 100, 1, -1);
        if (write(back[1], &o, sizeof o) != (ssize_t)sizeof o)
            _exit(3);
        _exit(o.status == JC_OK ? 0 : 1);
    }
    close(go[0]);
    close(back[1]);
    assert_int_equal(write(go[1], "g", 1), 1);
    run_out mine = run_sq(path, 100, 1, -1);
    run_out theirs;
    assert_int_equal(read(back[0], &theirs, sizeof theirs), (ssize_t)sizeof theirs);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(mine.status, JC_OK);
    assert_int_equal(atomic_load(computed), 100);
    assert_int_equal(mine.computed + theirs.computed, 100);
    assert_int_equal(mine.cached + theirs.cached, 100);
    close(go[1]);
    close(back[0]);
    /* Nothing left claimed. */
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM leases"), 0);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM lease_owners"), 0);
}

/* Called for the hit, after the run's lookups and before its claims: as if
 * another process stored the run's misses in that window, and released
 * its claims, it stores slow_sq(1..9) through another handle. */
static void store_the_rest_meanwhile(const jc_results *res, size_t index, void *userdata)
{
    (void)res;
    (void)index;
    const char *path = userdata;
    jc_cache *other = jc_cache_open(path, NULL);
    jc_batch *b = jc_batch_new(other, &(jc_options){.verbose = JC_VERBOSE_OFF});
    for (int x = 1; x < 10; x++)
        jc_delayed(b, slow_sq, jc_int(x));
    jc_results_free(jc_run(b));
    jc_batch_free(b);
    jc_cache_close(other);
}

/* Results stored by another process between a run's lookup and its claim
 * are hits, not computed again (issue 23: with calls under a millisecond,
 * 29 and 695 of 20,000 shared calls were computed twice by 4 and 8
 * processes): the claim finds them stored. */
static void leases_calls_stored_between_lookup_and_claim_are_not_computed_again(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "window.db");
    jc_cache *c = open_cache(path, 0);
    jc_value *v = jc_memo(c, slow_sq, jc_int(0)); /* the hit */
    assert_non_null(v);
    jc_value_free(v);
    atomic_store(computed, 0);
    jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF, .on_result = store_the_rest_meanwhile,
                                                .userdata = path});
    for (int x = 0; x < 10; x++)
        jc_delayed(b, slow_sq, jc_int(x));
    jc_results *res = jc_run(b);
    assert_int_equal(jc_results_status(res), JC_OK);
    for (int x = 0; x < 10; x++)
        assert_int_equal(jc_result_int(res, (size_t)x), x * x);
    jc_progress p = jc_results_summary(res);
    assert_int_equal(atomic_load(computed), 9); /* by the other handle, once each */
    assert_int_equal(p.computed, 0);
    assert_int_equal(p.cached, 10);
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
    /* Its claims on them were released. */
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM leases"), 0);
}

/* A call of about 0.2 ms (sub-millisecond: issue 23's duplicates came with
 * calls shorter than a claim's round trip). */
static int quick_sq(jc_call *call)
{
    int64_t x = jc_arg_int(call, 0);
    atomic_fetch_add(computed, 1);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do
        clock_gettime(CLOCK_MONOTONIC, &t);
    while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 200000L);
    return jc_return_int(call, x * x);
}
JC_FUNCTION(quick_sq, "v1");

/* Runs body(p, path) in procs processes started together (released at
 * once through a pipe), each exiting 0 when body returns true; checks
 * every one did. */
static void in_processes_at_once(int procs, const char *path, bool (*body)(int p, const char *path))
{
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t pids[16];
    assert_true(procs <= 16);
    for (int p = 0; p < procs; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            char ch;
            close(go[1]);
            if (read(go[0], &ch, 1) != 0)
                _exit(2);
            _exit(body(p, path) ? 0 : 1);
        }
    }
    close(go[0]);
    close(go[1]); /* all start now */
    for (int p = 0; p < procs; p++) {
        int status = 0;
        assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
}

enum { QUICK_RUNS = 20, QUICK_OWN = 1000, QUICK_SHARED = 1000 };

/* Process p's runs: its own calls and the shared ones, interleaved, so
 * that every run meets shared calls. */
static bool quick_runs(int p, const char *path)
{
    jc_cache *c = jc_cache_open(path, NULL);
    bool ok = c != NULL;
    for (int run = 0; run < QUICK_RUNS && ok; run++) {
        jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
        for (int i = run * (QUICK_OWN + QUICK_SHARED) / QUICK_RUNS;
             i < (run + 1) * (QUICK_OWN + QUICK_SHARED) / QUICK_RUNS; i++)
            jc_delayed(b, quick_sq, jc_int(i % 2 ? i / 2 : 1000000 * (p + 1) + i / 2));
        jc_results *res = jc_run(b);
        ok = jc_results_status(res) == JC_OK;
        jc_results_free(res);
        jc_batch_free(b);
    }
    jc_cache_close(c);
    return ok;
}

/* 4 processes at once, each 20 runs of 100 calls of 0.2 ms, half of them
 * shared by all, so that runs end while others look up: calls computed
 * twice stay under 1% of the shared calls (issue 23: 29 of 40,000 with 4
 * processes, 695 with 8, at 20,000 calls of 1 ms). */
static void leases_quick_shared_calls_are_computed_once(void **state)
{
    (void)state;
    enum { PROCS = 4 };
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "quick.db");
    jc_cache_close(open_cache(path, 0));
    atomic_store(computed, 0);
    in_processes_at_once(PROCS, path, quick_runs);
    int unique = PROCS * QUICK_OWN + QUICK_SHARED, dup = atomic_load(computed) - unique;
    print_message("%d processes, %d calls each (%d shared): %d computed, %d twice\n", PROCS,
                  QUICK_OWN + QUICK_SHARED, QUICK_SHARED, atomic_load(computed), dup);
    assert_true(dup >= 0);
    assert_true(dup * 100 <= PROCS * QUICK_SHARED);
}

enum { HIT_RUNS = 10, HIT_CALLS = 200 };

/* Process p's runs: every call a hit, and one miss a run (a write). */
static bool hit_runs(int p, const char *path)
{
    jc_cache *c = jc_cache_open(path, NULL);
    bool ok = c != NULL;
    for (int run = 0; run < HIT_RUNS && ok; run++) {
        jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
        for (int i = 0; i < HIT_CALLS; i++)
            jc_delayed(b, quick_sq, jc_int(i));
        jc_delayed(b, quick_sq, jc_int(100000 * (p + 1) + run));
        jc_results *res = jc_run(b);
        ok = jc_results_status(res) == JC_OK && jc_results_summary(res).cached == HIT_CALLS;
        jc_results_free(res);
        jc_batch_free(b);
    }
    jc_cache_close(c);
    return ok;
}

/* 4 processes hitting one cache at once, each 10 runs of 200 hits, with a
 * miss in each run so that they also write: the file counts every hit
 * (issue 23: counts short by up to 21% of the hits the runs recorded, in
 * 0.2.0 mostly by duplicate stores resetting counts; a guard: the hits
 * lost to a rolled-back transaction are proved by test_memo). */
static void leases_hits_of_processes_at_once_are_all_counted(void **state)
{
    (void)state;
    enum { PROCS = 4 };
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "hits8.db");
    jc_cache *c = open_cache(path, 0);
    jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
    for (int i = 0; i < HIT_CALLS; i++)
        jc_delayed(b, quick_sq, jc_int(i));
    jc_results_free(jc_run(b));
    jc_batch_free(b);
    jc_cache_close(c);
    in_processes_at_once(PROCS, path, hit_runs);
    assert_int_equal(jc_test_hits_sql(path, "SELECT sum(hits) FROM entries"), PROCS * HIT_RUNS * HIT_CALLS);
    assert_int_equal(jc_test_sql_int(path, "SELECT sum(cached) FROM runs"), PROCS * HIT_RUNS * HIT_CALLS);
}

/* The owner is killed with SIGKILL while it computes: the waiter sees its
 * process is gone and computes the rest at once, no hang. */
static void leases_a_killed_owner_costs_no_hang(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "killed.db");
    jc_cache_close(open_cache(path, 0));
    pid_t pid = start_owner(path, 300, false); /* 3 s of calls */
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    int before = atomic_load(computed);
    run_out o = run_sq(path, 300, 1, -1);
    assert_int_equal(o.status, JC_OK);
    assert_true(o.seconds < 10);
    assert_true(o.cached >= (size_t)before - 1 && o.cached <= (size_t)before);
    assert_int_equal(o.cached + o.computed, 300);
}

/* The owner's call fails: failures are not cached, and its claim on it is
 * released, so the waiter computes it itself. */
static void leases_a_failure_of_the_owner_is_computed_by_the_waiter(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "owner-fails.db");
    jc_cache_close(open_cache(path, 0));
    pid_t pid = start_owner(path, 100, true);
    run_out o = run_sq(path, 100, 1, -1);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(o.status, JC_OK); /* 3 computed here, successfully */
    assert_true(o.computed >= 1);
    assert_int_equal(o.cached + o.computed, 100);
    assert_int_equal(atomic_load(computed), 101); /* 100, and 3 once more */
}

/* A claim of an owner on another machine or in another container (another
 * boot id or pid namespace) holds until it expires: live, the run waits
 * for it; expired, the run computes the call at once. */
static void leases_a_foreign_owner_holds_until_its_claim_expires(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "foreign-owner.db");
    jc_cache_close(open_cache(path, 0));
    uint8_t key[JC__KEY_LEN];
    slow_sq_key(5, key);
    const char *owner = "00000000-feed-0000-0000-000000000000|pid:[1]|42|4242";
    for (int live = 1; live >= 0; live--) {
        sql(path, "DELETE FROM entries; DELETE FROM leases; DELETE FROM lease_owners;");
        insert_claim(path, owner, jc__now() + (live ? 1.5 : -5), key, 1);
        /* On the server: while its session lives (1.5 s), whatever time
         * it stored. */
        pid_t session = live ? hold_owner_session(path, owner, 1.5) : 0;

        run_out o = run_sq(path, 8, 1, -1);
        if (session > 0)
            waitpid(session, NULL, 0);
        assert_int_equal(o.status, JC_OK);
        assert_int_equal(o.computed, 8); /* nobody else stores it: computed here */
        if (live)
            assert_true(o.seconds >= 1.2); /* waited for the claim to lapse */
        else
            assert_true(o.seconds < 1.0); /* an expired claim is no claim */
        /* The dead claim is gone. */
        assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM lease_owners"), 0);
    }
    if (jc_test_pg()) {
        /* On the server a claim whose owner's session is gone is no claim,
         * whatever time it stored (a killed process, a lost node): 0.4.0's
         * held until that time. */
        sql(path, "DELETE FROM entries; DELETE FROM leases; DELETE FROM lease_owners;");
        insert_claim(path, owner, jc__now() + 3600, key, 1);
        run_out o = run_sq(path, 8, 1, -1);
        assert_int_equal(o.status, JC_OK);
        assert_int_equal(o.computed, 8);
        assert_true(o.seconds < 1.0);
    }
}

/* A run interrupted while it waits returns JC_EINTR promptly. */
static void leases_a_wait_is_interruptible(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "wait-intr.db");
    jc_cache_close(open_cache(path, 0));
    pid_t owner = start_owner(path, 1000, false); /* 10 s */
    pid_t waiter = fork();
    assert_true(waiter >= 0);
    if (waiter == 0) {
        run_out o = run_sq(path, 1000, 1, -1);
        _exit(o.status == JC_EINTR ? 0 : 1);
    }
    nap_ms(500);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    kill(waiter, SIGINT);
    int status;
    waitpid(waiter, &status, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    kill(owner, SIGKILL);
    waitpid(owner, NULL, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true((double)(t1.tv_sec - t0.tv_sec) < 2.0);
}

/* Results of 64 KiB, 100 ms each. */
static int big_slow(jc_call *call)
{
    atomic_fetch_add(computed, 1);
    nap_ms(100);
    size_t n = 8192;
    double *a = calloc(n, sizeof *a);
    a[0] = (double)jc_arg_int(call, 0);
    jc_value *v = jc_doubles(a, n);
    free(a);
    return jc_return(call, v);
}
JC_FUNCTION(big_slow, "v1");

/* The owner cannot store its results (its max_size is below one result):
 * it releases its claim on each at once, and a waiter computes them itself
 * instead of waiting for the owner's whole run (which, in two processes
 * waiting on each other, was a deadlock). */
static void leases_results_the_owner_cannot_store_are_released(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "unstored.db");
    jc_cache_close(open_cache(path, 0));
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        jc_cache *c = jc_cache_open(path, &(jc_cache_options){.max_size = 40 * 1024});
        int fd = ready[1];
        jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF, .on_result = notify_first,
                                                    .userdata = &fd});
        for (int x = 0; x < 60; x++) /* 6 s */
            jc_delayed(b, big_slow, jc_int(x));
        jc_results_free(jc_run(b));
        jc_batch_free(b);
        jc_cache_close(c);
        _exit(0);
    }
    close(ready[1]);
    char ch;
    assert_int_equal(read(ready[0], &ch, 1), 1); /* the owner has computed x = 0 */
    close(ready[0]);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    jc_cache *c = open_cache(path, 0);
    jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
    for (int x = 0; x < 3; x++)
        jc_delayed(b, big_slow, jc_int(x));
    jc_results *res = jc_run(b);
    assert_int_equal(jc_results_status(res), JC_OK);
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    assert_true(waited < 3.0); /* not the owner's 6 s */
}

/* An owner that has ended but is not reaped yet (a zombie) computes
 * nothing: its claims are taken over at once. */
static void leases_a_zombie_owner_is_dead(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "zombie.db");
    jc_cache_close(open_cache(path, 0));
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const char *me = jc__cache_owner();
        if (write(p[1], me, strlen(me) + 1) < 0)
            _exit(1);
        _exit(0); /* left unreaped below: a zombie */
    }
    char owner[256] = {0};
    assert_true(read(p[0], owner, sizeof owner - 1) > 0);
    close(p[0]);
    close(p[1]);
    nap_ms(100);
    uint8_t key[JC__KEY_LEN];
    slow_sq_key(5, key);
    insert_claim(path, owner, jc__now() + 3600, key, 1);
    run_out o = run_sq(path, 8, 1, -1);
    waitpid(pid, NULL, 0);
    assert_int_equal(o.status, JC_OK);
    assert_true(o.seconds < 1.0); /* not a wait of an hour */
}

static char *tool_output(const char *args)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", JC_TOOL_PATH, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, p);
    buf[n] = '\0';
    pclose(p);
    return buf;
}

/* stats, jc_cache_leases and `jobcache leases` show who holds claims;
 * stale ones can be broken, live ones only by name. */
static void leases_are_listed_and_stale_ones_broken(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "list.db");
    jc_cache_close(open_cache(path, 0));
    const char *live = "11111111-0000-0000-0000-000000000000|pid:[7]|101|5";
    const char *stale = "22222222-0000-0000-0000-000000000000|pid:[7]|202|6";
    insert_claim(path, live, jc__now() + 3600, NULL, 12);
    insert_claim(path, stale, jc__now() - 10, NULL, 3);
    pid_t session = hold_owner_session(path, live, 60); /* on the server: live while its session is */

    jc_cache *c = open_cache(path, JC_CACHE_READONLY);
    jc_stats *st = jc_cache_stats(c);
    assert_int_equal(st->leases_alive, 1);
    assert_int_equal(st->leases_stale, 1);
    assert_int_equal(st->leases_calls, 12);
    jc_stats_free(st);
    size_t n = 0;
    assert_int_equal(jc_cache_leases(c, NULL, NULL, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(jc_cache_break_lease(c, NULL, &n), JC_EREADONLY);
    jc_cache_close(c);

    char args[PATH_CAP + 64];
    snprintf(args, sizeof args, "leases '%s'", path);
    char *out = tool_output(args);
    assert_contains(out, "101");
    assert_contains(out, "alive");
    assert_contains(out, "stale");
    free(out);
    snprintf(args, sizeof args, "stats '%s'", path);
    out = tool_output(args);
    assert_contains(out, "1 process computing 12 calls");
    free(out);
    snprintf(args, sizeof args, "break-lease stale '%s'", path);
    out = tool_output(args);
    assert_contains(out, "removed the claims of 1 process");
    free(out);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM lease_owners"), 1);

    c = open_cache(path, 0);
    assert_int_equal(jc_cache_break_lease(c, "nobody", &n), JC_ENOTFOUND);
    assert_int_equal(jc_cache_break_lease(c, live, &n), 0);
    assert_int_equal(n, 1);
    jc_cache_close(c);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM leases"), 0);
    if (session > 0) {
        kill(session, SIGKILL);
        waitpid(session, NULL, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(leases_calls_stored_between_lookup_and_claim_are_not_computed_again, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(leases_two_processes_compute_each_call_once, setup, teardown),
        cmocka_unit_test_setup_teardown(leases_quick_shared_calls_are_computed_once, setup, teardown),
        cmocka_unit_test_setup_teardown(leases_hits_of_processes_at_once_are_all_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(leases_a_killed_owner_costs_no_hang, setup, teardown),
        cmocka_unit_test_setup_teardown(leases_a_failure_of_the_owner_is_computed_by_the_waiter, setup, teardown),
        cmocka_unit_test_setup_teardown(leases_a_foreign_owner_holds_until_its_claim_expires, setup, teardown),
        cmocka_unit_test_setup_teardown(leases_a_wait_is_interruptible, setup, teardown),
        cmocka_unit_test(leases_are_listed_and_stale_ones_broken),
        cmocka_unit_test_setup_teardown(leases_results_the_owner_cannot_store_are_released, setup, teardown),
        cmocka_unit_test_setup_teardown(leases_a_zombie_owner_is_dead, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
