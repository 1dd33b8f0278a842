/*
 * Tests of the cache file in the real world (issue "The cache file in the
 * real world"): copies have every committed result, a closed cache is
 * complete on its own, backups are consistent while the cache is in use.
 * Each test failed on jobcache 0.1.0.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <sqlite3.h>
#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jobcache.h>

#define JC_TEST_WANT_SQUARE
#include "testutil.h"

#define PATH_CAP 4096

static void run_squares(jc_cache *c, int from, int to)
{
    jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
    for (int x = from; x < to; x++)
        jc_delayed(b, square, jc_int(x));
    jc_results *res = jc_run(b);
    assert_int_equal(jc_results_status(res), JC_OK);
    jc_results_free(res);
    jc_batch_free(b);
}

/* Copies the database file alone, as `cp cache.db elsewhere/` does. */
static void copy_file_alone(const char *from, const char *to)
{
    size_t len = 0;
    void *bytes = jc_test_read_file(from, &len);
    assert_non_null(bytes);
    jc_test_remove_db(to);
    FILE *f = fopen(to, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, len, f), len);
    fclose(f);
    free(bytes);
}

static int64_t entries_in(const char *path)
{
    jc_cache *c = open_cache(path, JC_CACHE_READONLY);
    jc_stats *s = jc_cache_stats(c);
    assert_non_null(s);
    int64_t n = s->entries;
    jc_stats_free(s);
    jc_cache_close(c);
    return n;
}

/* A cache closed by its program while another still holds the file: the
 * file alone has every result (0.1.0 left them in the -wal file). */
static void file_a_closed_cache_is_complete_on_its_own(void **state)
{
    (void)state;
    char path[PATH_CAP], copy[PATH_CAP];
    jc_test_path(path, sizeof path, "closed.db");
    jc_test_path(copy, sizeof copy, "closed-copy.db");
    jc_cache *reader = open_cache(path, 0); /* another program holding the file */
    jc_cache *c = open_cache(path, 0);
    run_squares(c, 0, 2000);
    jc_cache_close(c);
    copy_file_alone(path, copy);
    assert_int_equal(entries_in(copy), 2000);
    jc_cache_close(reader);
}

/* A copy of a file made right after it was created (say, after a crash)
 * is still a cache: the schema is in the database file, not only the WAL. */
static void file_a_new_cache_file_holds_its_schema_at_once(void **state)
{
    (void)state;
    char path[PATH_CAP], copy[PATH_CAP];
    jc_test_path(path, sizeof path, "new.db");
    jc_test_path(copy, sizeof copy, "new-copy.db");
    jc_cache *c = open_cache(path, 0);
    copy_file_alone(path, copy);
    jc_cache *cc = jc_cache_open(copy, &(jc_cache_options){.flags = JC_CACHE_READONLY});
    assert_non_null(cc);
    jc_cache_close(cc);
    jc_cache_close(c);
}

/* jc_cache_backup while the cache is open and written: the copy has every
 * committed result, is sound, and stands alone. */
static void file_a_backup_of_a_cache_in_use_is_complete(void **state)
{
    (void)state;
    char path[PATH_CAP], dest[PATH_CAP], wal[PATH_CAP + 8];
    jc_test_path(path, sizeof path, "inuse.db");
    jc_test_path(dest, sizeof dest, "inuse-backup.db");
    jc_cache *c = open_cache(path, 0);
    run_squares(c, 0, 3000);
    jc_stats *s = jc_cache_stats(c);
    assert_true(s->wal_bytes > 0); /* committed results sit in the -wal file */
    jc_stats_free(s);

    /* From another handle, read-only, as `jobcache backup` does. */
    jc_cache *ro = open_cache(path, JC_CACHE_READONLY);
    assert_int_equal(jc_cache_backup(ro, dest), 0);
    jc_cache_close(ro);
    snprintf(wal, sizeof wal, "%s-wal", dest);
    assert_false(jc_test_exists(wal));
    assert_int_equal(jc_test_sql_int(dest, "SELECT count(*) FROM entries"), 3000);
    jc_cache *b = open_cache(dest, JC_CACHE_READONLY);
    jc_verify_result vr;
    assert_int_equal(jc_cache_verify(b, false, NULL, NULL, &vr), 0);
    assert_int_equal(vr.checked, 3000);
    assert_int_equal(vr.bad_entries, 0);
    jc_cache_close(b);

    /* An existing destination is refused and left as it is. */
    sql(dest, "PRAGMA user_version = 2");
    jc_test_bytes before = jc_test_snapshot(dest);
    assert_int_equal(jc_cache_backup(c, dest), JC_EIO);
    assert_contains(jc_errmsg(), "already exists");
    jc_test_assert_unchanged(dest, before);
    /* A destination that cannot be written: nothing left behind. */
    assert_int_equal(jc_cache_backup(c, "/nonexistent-dir/copy.db"), JC_EIO);
    assert_contains(jc_errmsg(), "/nonexistent-dir/copy.db");
    jc_cache_close(c);
}

/* ---- a cache on a read-only share or mount ---- */

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s (%s)\n", __FILE__, __LINE__, #cond, jc_errmsg()); \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

typedef struct ro_case {
    const char *path;
    int entries;
} ro_case;

/* In the read-only mount: every entry hits, nothing can be written, and the
 * library says why. */
static int read_the_readonly_cache(void *ctx)
{
    const ro_case *rc = ctx;
    jc_cache *w = jc_cache_open(rc->path, NULL);
    CHECK(!w && jc_errcode() == JC_EIO);
    CHECK(strstr(jc_errmsg(), "open it read-only"));
    jc_cache *c = jc_cache_open(rc->path, &(jc_cache_options){.flags = JC_CACHE_READONLY});
    CHECK(c);
    jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
    for (int x = 0; x <= rc->entries; x++) /* one more than stored: a miss */
        jc_delayed(b, square, jc_int(x));
    jc_results *res = jc_run(b);
    CHECK(res && jc_results_status(res) == JC_OK);
    jc_progress p = jc_results_summary(res);
    CHECK(p.cached == (size_t)rc->entries && p.computed == 1);
    for (int x = 0; x <= rc->entries; x++)
        CHECK(jc_result_int(res, (size_t)x) == (int64_t)x * x);
    jc_results_free(res);
    jc_batch_free(b);
    jc_value *v = jc_memo(c, square, jc_int(3));
    int64_t nine = 0;
    CHECK(v && jc_value_get_int(v, &nine) == 0 && nine == 9);
    jc_value_free(v);
    jc_verify_result vr;
    CHECK(jc_cache_verify(c, false, NULL, NULL, &vr) == 0 && vr.checked == rc->entries && vr.bad_entries == 0);
    CHECK(jc_cache_verify(c, true, NULL, NULL, &vr) == JC_EREADONLY);
    jc_stats *s = jc_cache_stats(c);
    CHECK(s && s->entries == rc->entries);
    jc_stats_free(s);
    jc_cache_close(c);
    return 0;
}

static void file_a_closed_cache_on_a_read_only_mount_is_read(void **state)
{
    (void)state;
    char dir[1024], path[2048];
    snprintf(dir, sizeof dir, "%s/ro-share", jc_test_dir());
    jc_test_mkdirs(dir);
    snprintf(path, sizeof path, "%s/cache.db", dir);
    jc_test_remove_db(path);
    jc_cache *c = open_cache(path, 0);
    run_squares(c, 0, 100);
    jc_cache_close(c);
    ro_case rc = {path, 100};
    int status = jc_test_in_readonly_mount(dir, read_the_readonly_cache, &rc);
    if (status < 0)
        skip();
    assert_int_equal(status, 0);
}

/* The same while a program on a writable view of the share still holds the
 * cache, with results in its -wal file: read through the -wal file. */
static void file_a_cache_in_use_on_a_read_only_mount_is_read_through_its_wal(void **state)
{
    (void)state;
    char dir[1024], path[2048];
    snprintf(dir, sizeof dir, "%s/ro-share-busy", jc_test_dir());
    jc_test_mkdirs(dir);
    snprintf(path, sizeof path, "%s/cache.db", dir);
    jc_test_remove_db(path);
    jc_cache *c = open_cache(path, 0);
    run_squares(c, 0, 300);
    jc_stats *s = jc_cache_stats(c);
    assert_true(s->wal_bytes > 0);
    jc_stats_free(s);
    ro_case rc = {path, 300};
    int status = jc_test_in_readonly_mount(dir, read_the_readonly_cache, &rc);
    jc_cache_close(c);
    if (status < 0)
        skip();
    assert_int_equal(status, 0);
}

/* Results in a -wal file with no -shm to read them through (a copy made
 * while a program held the cache, or after a crash) cannot be read safely
 * from a read-only place: a clear error, not a partial cache. */
static int open_is_refused_naming_the_wal(void *ctx)
{
    const ro_case *rc = ctx;
    jc_cache *c = jc_cache_open(rc->path, &(jc_cache_options){.flags = JC_CACHE_READONLY});
    CHECK(!c && jc_errcode() == JC_EIO);
    CHECK(strstr(jc_errmsg(), "-wal") && strstr(jc_errmsg(), "jobcache backup"));
    return 0;
}

static void file_wal_data_without_shm_on_a_read_only_mount_is_refused_clearly(void **state)
{
    (void)state;
    char dir[1024], path[2048], copy[2048];
    snprintf(dir, sizeof dir, "%s/ro-share-crashed", jc_test_dir());
    jc_test_mkdirs(dir);
    jc_test_path(path, sizeof path, "crashed-src.db");
    snprintf(copy, sizeof copy, "%s/cache.db", dir);
    jc_test_remove_db(copy);
    jc_cache *c = open_cache(path, 0);
    run_squares(c, 0, 50);
    char from[4096], to[4096];
    copy_file_alone(path, copy);
    snprintf(from, sizeof from, "%s-wal", path);
    snprintf(to, sizeof to, "%s-wal", copy);
    copy_file_alone(from, to);
    jc_cache_close(c);
    ro_case rc = {copy, 50};
    int status = jc_test_in_readonly_mount(dir, open_is_refused_naming_the_wal, &rc);
    if (status < 0)
        skip();
    assert_int_equal(status, 0);
}

/* ---- a full disk ---- */

static int quick_calls;
static int quick(jc_call *call)
{
    quick_calls++;
    char text[200];
    memset(text, 'a' + (int)(jc_arg_int(call, 0) % 26), sizeof text - 1);
    text[sizeof text - 1] = '\0';
    return jc_return(call, jc_list(jc_int(jc_arg_int(call, 0)), jc_str(text)));
}
JC_FUNCTION(quick, "v1");

/* In a 256 KiB tmpfs, 4000 quick results of about 220 bytes do not all
 * fit: what fits is stored, the run returns every result, says how many
 * could not be stored, and the file stays sound. 0.1.0 stored none (the
 * whole 2000-result transaction failed). */
static int fill_the_disk(void *ctx)
{
    const char *path = ctx;
    jc_cache *c = jc_cache_open(path, NULL);
    CHECK(c);
    jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
    for (int x = 0; x < 4000; x++)
        jc_delayed(b, quick, jc_int(x));
    jc_results *res = jc_run(b);
    CHECK(res);
    CHECK(jc_results_status(res) == JC_EFULL);
    CHECK(strstr(jc_results_message(res), "could not be stored"));
    for (int x = 0; x < 4000; x++)
        CHECK(jc_result_status(res, (size_t)x) == JC_STATUS_OK);
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);

    c = jc_cache_open(path, &(jc_cache_options){.flags = JC_CACHE_READONLY});
    CHECK(c);
    jc_stats *s = jc_cache_stats(c);
    CHECK(s);
    fprintf(stderr, "full disk: %lld of 4000 results stored\n", (long long)s->entries);
    CHECK(s->entries >= 100 && s->entries < 4000); /* 250 before schema 10, whose hit log takes a page */
    jc_stats_free(s);
    jc_verify_result vr;
    CHECK(jc_cache_verify(c, false, NULL, NULL, &vr) == 0 && vr.bad_entries == 0 && vr.file_problems == 0);
    /* What was stored hits. */
    b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
    for (int x = 0; x < 4000; x++)
        jc_delayed(b, quick, jc_int(x));
    res = jc_run(b);
    CHECK(res && jc_results_summary(res).cached >= 100);
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
    return 0;
}

static void file_a_full_disk_keeps_what_fits(void **state)
{
    (void)state;
    char dir[1024], path[2048];
    snprintf(dir, sizeof dir, "%s/small-disk", jc_test_dir());
    jc_test_mkdirs(dir);
    snprintf(path, sizeof path, "%s/cache.db", dir);
    int status = jc_test_in_mount(dir, JC_TEST_SMALL_TMPFS, "256k", fill_the_disk, path);
    if (status < 0)
        skip();
    assert_int_equal(status, 0);
}

/* ---- clocks that were wrong ---- */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* 100 entries stored while the clock was a year ahead, beside a working
 * set of 100 calls rerun daily with eviction to 120 entries: the future
 * ones go, the working set stays. 0.1.0 evicted 80 of the working set
 * after every run, forever. */
static void file_entries_from_a_clock_ahead_do_not_stay_newest(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "clock-ahead.db");
    jc_cache *c = open_cache(path, 0);
    run_squares(c, 1000, 1100); /* made while the clock was ahead */
    jc_cache_close(c);
    char q[256];
    snprintf(q, sizeof q, "UPDATE entries SET created = %.0f, last_used = %.0f", now_seconds() + 365 * 86400.0,
             now_seconds() + 365 * 86400.0);
    sql(path, q);
    size_t cached[3];
    for (int day = 0; day < 3; day++) {
        c = open_cache(path, 0);
        jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
        for (int x = 0; x < 100; x++)
            jc_delayed(b, square, jc_int(x));
        jc_results *res = jc_run(b);
        cached[day] = jc_results_summary(res).cached;
        jc_results_free(res);
        jc_batch_free(b);
        assert_int_equal(jc_cache_prune(c, &(jc_prune_options){.max_entries = 120}, false, NULL, NULL), 0);
        jc_cache_close(c);
    }
    assert_int_equal(cached[0], 0);   /* the first day computes the working set */
    assert_int_equal(cached[2], 100); /* from then on, it stays */
    snprintf(q, sizeof q, "SELECT count(*) FROM entries WHERE created > %.0f OR last_used > %.0f", now_seconds() + 1,
             now_seconds() + 1);
    assert_int_equal(jc_test_sql_int(path, q), 0); /* written back */
}

/* Future times read as now in stats and listings. */
static void file_future_times_read_as_now(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "clock-stats.db");
    jc_cache *c = open_cache(path, 0);
    run_squares(c, 0, 5);
    jc_cache_close(c);
    sql(path, "UPDATE entries SET created = 4e9, last_used = 4e9"); /* year 2096 */
    double before = now_seconds();
    c = open_cache(path, JC_CACHE_READONLY);
    jc_stats *s = jc_cache_stats(c);
    double after = now_seconds() + 1;
    assert_true(s->last_used <= after && s->newest <= after && s->functions[0].last_used <= after);
    assert_true(s->last_used >= before - 1);
    jc_stats_free(s);
    jc_entries *it = jc_entries_query(c, &(jc_filter){.sort = JC_SORT_USED});
    jc_entry_info info;
    int n = 0;
    while (jc_entries_next(it, &info) == 1) {
        assert_true(info.last_used <= after && info.created <= after);
        n++;
    }
    assert_int_equal(n, 5);
    jc_entries_free(it);
    jc_cache_close(c);
}

/* prune --stale-versions keeps the version in use: after rolling back from
 * v2 to v1, v1's entries (hit today) stay, though v2 was stored last. */
/* A write lock another process keeps (a stuck program, a long sqlite3
 * session) holds a run for about twice its busy timeout, not for as long
 * as the lock lasts (0.2.0 waited out a 25 s lock and more): past its busy
 * timeout in all, the run stops waiting, returns every result and says
 * they could not be stored. And a Ctrl-C ends a wait for a lock at once
 * (0.2.0 waited the busy timeout out first). */
static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *interrupt_soon(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    kill(getpid(), SIGINT);
    return NULL;
}

/* The first call has the other process take the lock, and arms the
 * interrupt. */
static int lock_want_fd = -1, lock_held_fd = -1;
static pthread_t interrupter;
static int lock_then_quick(jc_call *call)
{
    if (lock_want_fd >= 0) {
        char x = 'w';
        ssize_t io = write(lock_want_fd, &x, 1);
        io = read(lock_held_fd, &x, 1);
        (void)io;
        lock_want_fd = -1;
        pthread_create(&interrupter, NULL, interrupt_soon, NULL);
    }
    struct timespec ts = {0, 20 * 1000 * 1000}; /* 20 ms: stored after each, in-process */
    nanosleep(&ts, NULL);
    return jc_return_int(call, jc_arg_int(call, 0));
}
JC_FUNCTION(lock_then_quick, "v1");

static void file_a_stuck_lock_holds_a_run_for_its_busy_timeout_not_longer(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "stuck-lock.db");
    jc_test_remove_db(path);
    jc_cache *c = jc_cache_open(path, NULL);
    assert_non_null(c);
    jc_cache_close(c);
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* the other process: holds the write lock 8 s */
        sqlite3 *db = NULL;
        if (sqlite3_open(path, &db) != SQLITE_OK || sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
            _exit(1);
        ssize_t w = write(pfd[1], "l", 1);
        (void)w;
        sleep(8);
        _exit(0);
    }
    char got = 0;
    assert_int_equal(read(pfd[0], &got, 1), 1);
    close(pfd[0]);
    close(pfd[1]);

    c = jc_cache_open(path, &(jc_cache_options){.busy_timeout_ms = 500});
    assert_non_null(c);
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
    for (int i = 0; i < 2000; i++)
        assert_int_equal(jc_delayed(b, quick, jc_int(i)), 0);
    double t0 = mono_now();
    jc_results *r = jc_run(b);
    double took = mono_now() - t0;
    assert_non_null(r);
    print_message("# a run under a stuck lock, busy timeout 0.5 s: %.2f s\n", took);
    assert_true(took < 2.5);
    assert_int_equal(jc_results_count(r), 2000);
    for (size_t k = 0; k < 2000; k++)
        assert_int_equal(jc_result_status(r, k), JC_STATUS_OK);
    assert_int_not_equal(jc_results_status(r), JC_OK);
    assert_contains(jc_results_message(r), "locked by another process");
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);

    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);

    /* A Ctrl-C during a wait of 10 s for a lock ends it at once: the other
     * process takes the lock when the first call runs (after the run's own
     * claim), and the interrupt comes 0.3 s later, while the run waits to
     * store. */
    int want[2], held[2];
    assert_int_equal(pipe(want), 0);
    assert_int_equal(pipe(held), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char x;
        sqlite3 *db = NULL;
        if (read(want[0], &x, 1) != 1 || sqlite3_open(path, &db) != SQLITE_OK ||
            sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
            _exit(1);
        ssize_t w = write(held[1], "l", 1);
        (void)w;
        sleep(8);
        _exit(0);
    }
    lock_want_fd = want[1];
    lock_held_fd = held[0];
    c = jc_cache_open(path, &(jc_cache_options){.busy_timeout_ms = 10000});
    assert_non_null(c);
    b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
    for (int i = 0; i < 100; i++)
        assert_int_equal(jc_delayed(b, lock_then_quick, jc_int(i)), 0);
    t0 = mono_now();
    r = jc_run(b);
    took = mono_now() - t0;
    print_message("# interrupted while waiting for a lock: %.2f s\n", took);
    assert_true(took < 2.0);
    assert_non_null(r);
    assert_int_equal(jc_results_status(r), JC_EINTR);
    assert_int_equal(jc_interrupted_signal(), SIGINT);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    pthread_join(interrupter, NULL);
    for (int i = 0; i < 2; i++) {
        close(want[i]);
        close(held[i]);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void file_stale_versions_keep_the_version_used_last(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "stale-used.db");
    jc_cache *c = open_cache(path, 0);
    run_squares(c, 0, 10);
    jc_cache_close(c);
    char q[256];
    double now = now_seconds();
    snprintf(q, sizeof q,
             "UPDATE entries SET version = 'v2', created = %.0f, last_used = %.0f WHERE rowid > 5;"
             "UPDATE entries SET created = %.0f, last_used = %.0f WHERE rowid <= 5",
             now - 3600, now - 3600, now - 86400, now - 60);
    sql(path, q);
    c = open_cache(path, 0);
    int64_t n = 0;
    assert_int_equal(jc_cache_prune(c, &(jc_prune_options){.stale_versions = true}, false, &n, NULL), 0);
    assert_int_equal(n, 5);
    jc_cache_close(c);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries WHERE version = 'v1'"), 5);
}

/* Entries written under a clock that was a day ahead (v1), then the
 * version in use written and used with the clock right (v2): pruning stale
 * versions keeps v2 (issue 23: clamped to now, v1 looked newer and v2 was
 * removed), now and in every later prune; and v1's times are no later
 * than v2's first entry. */
static void file_stale_versions_after_a_clock_that_was_ahead_keep_the_current(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "stale-ahead.db");
    jc_cache *c = open_cache(path, 0);
    run_squares(c, 0, 10);
    jc_cache_close(c);
    char q[256];
    double now = now_seconds();
    snprintf(q, sizeof q,
             "UPDATE entries SET created = %.0f, last_used = %.0f WHERE rowid <= 5;"
             "UPDATE entries SET version = 'v2', created = %.0f, last_used = %.0f WHERE rowid > 5",
             now + 86400, now + 86400, now - 120, now - 30);
    sql(path, q);
    for (int round = 0; round < 2; round++) {
        c = open_cache(path, 0);
        int64_t n = -1;
        assert_int_equal(jc_cache_prune(c, &(jc_prune_options){.stale_versions = true}, true, &n, NULL), 0);
        assert_int_equal(n, 5);
        /* Times written back by a prune of nothing (its clamp stays). */
        assert_int_equal(jc_cache_prune(c, &(jc_prune_options){.older_than = 1e9}, false, NULL, NULL), 0);
        jc_cache_close(c);
        assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries WHERE created > strftime('%s','now') + 1"), 0);
        assert_int_equal(jc_test_sql_int(path, "SELECT (SELECT max(last_used) FROM entries WHERE rowid <= 5)"
                                               " <= (SELECT created FROM entries WHERE rowid = 6) + 0.001"), 1);
    }
    c = open_cache(path, 0);
    int64_t n = 0;
    assert_int_equal(jc_cache_prune(c, &(jc_prune_options){.stale_versions = true}, false, &n, NULL), 0);
    assert_int_equal(n, 5);
    jc_cache_close(c);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries WHERE version = 'v2'"), 5);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), 5);
}

/* ---- a full disk, simulated: a VFS over SQLite's own in which the -shm
 * file cannot be made (what a full disk does to a closed cache: its -shm
 * file is gone, and 32 KiB cannot be found for it), its error number
 * ENOSPC. ---- */

typedef struct full_file {
    sqlite3_file base;
    sqlite3_file *real; /* right after this struct */
} full_file;

static sqlite3_vfs *real_vfs;
#define REAL(f) (((full_file *)(f))->real)
static int ff_close(sqlite3_file *f) { return REAL(f)->pMethods->xClose(REAL(f)); }
static int ff_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o) { return REAL(f)->pMethods->xRead(REAL(f), b, n, o); }
static int ff_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o) { return REAL(f)->pMethods->xWrite(REAL(f), b, n, o); }
static int ff_truncate(sqlite3_file *f, sqlite3_int64 n) { return REAL(f)->pMethods->xTruncate(REAL(f), n); }
static int ff_sync(sqlite3_file *f, int fl) { return REAL(f)->pMethods->xSync(REAL(f), fl); }
static int ff_size(sqlite3_file *f, sqlite3_int64 *n) { return REAL(f)->pMethods->xFileSize(REAL(f), n); }
static int ff_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int ff_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int ff_check(sqlite3_file *f, int *o) { return REAL(f)->pMethods->xCheckReservedLock(REAL(f), o); }
static int ff_control(sqlite3_file *f, int op, void *a) { return REAL(f)->pMethods->xFileControl(REAL(f), op, a); }
static int ff_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int ff_dev(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int ff_shm_map(sqlite3_file *f, int pg, int sz, int ext, void volatile **p)
{
    (void)f, (void)pg, (void)sz, (void)ext;
    *p = NULL;
    errno = ENOSPC;
    return SQLITE_IOERR_SHMSIZE; /* as unixShmMap reports a failed write of the -shm */
}
static int ff_shm_lock(sqlite3_file *f, int o, int n, int fl) { return REAL(f)->pMethods->xShmLock(REAL(f), o, n, fl); }
static void ff_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int ff_shm_unmap(sqlite3_file *f, int del) { return REAL(f)->pMethods->xShmUnmap(REAL(f), del); }
static int ff_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **p) { return REAL(f)->pMethods->xFetch(REAL(f), o, n, p); }
static int ff_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p) { return REAL(f)->pMethods->xUnfetch(REAL(f), o, p); }
static const sqlite3_io_methods full_methods = {
    .iVersion = 3, .xClose = ff_close, .xRead = ff_read, .xWrite = ff_write, .xTruncate = ff_truncate,
    .xSync = ff_sync, .xFileSize = ff_size, .xLock = ff_lock, .xUnlock = ff_unlock,
    .xCheckReservedLock = ff_check, .xFileControl = ff_control, .xSectorSize = ff_sector,
    .xDeviceCharacteristics = ff_dev, .xShmMap = ff_shm_map, .xShmLock = ff_shm_lock,
    .xShmBarrier = ff_shm_barrier, .xShmUnmap = ff_shm_unmap, .xFetch = ff_fetch, .xUnfetch = ff_unfetch};

static int fv_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
    (void)vfs;
    full_file *ff = (full_file *)f;
    ff->real = (sqlite3_file *)(ff + 1);
    int rc = real_vfs->xOpen(real_vfs, name, ff->real, flags, out);
    f->pMethods = rc == SQLITE_OK ? &full_methods : NULL;
    return rc;
}
static int fv_delete(sqlite3_vfs *v, const char *n, int s) { (void)v; return real_vfs->xDelete(real_vfs, n, s); }
static int fv_access(sqlite3_vfs *v, const char *n, int fl, int *o) { (void)v; return real_vfs->xAccess(real_vfs, n, fl, o); }
static int fv_full(sqlite3_vfs *v, const char *n, int k, char *o) { (void)v; return real_vfs->xFullPathname(real_vfs, n, k, o); }
static int fv_random(sqlite3_vfs *v, int n, char *o) { (void)v; return real_vfs->xRandomness(real_vfs, n, o); }
static int fv_sleep(sqlite3_vfs *v, int us) { (void)v; return real_vfs->xSleep(real_vfs, us); }
static int fv_time(sqlite3_vfs *v, double *t) { (void)v; return real_vfs->xCurrentTime(real_vfs, t); }
static int fv_last_error(sqlite3_vfs *v, int n, char *o) { (void)v, (void)n, (void)o; return ENOSPC; }
static int fv_time64(sqlite3_vfs *v, sqlite3_int64 *t) { (void)v; return real_vfs->xCurrentTimeInt64(real_vfs, t); }
static sqlite3_vfs full_vfs = {.iVersion = 2, .zName = "full-disk", .xOpen = fv_open, .xDelete = fv_delete,
                               .xAccess = fv_access, .xFullPathname = fv_full, .xRandomness = fv_random,
                               .xSleep = fv_sleep, .xCurrentTime = fv_time, .xGetLastError = fv_last_error,
                               .xCurrentTimeInt64 = fv_time64};

static void full_disk_begin(void)
{
    real_vfs = sqlite3_vfs_find("unix");
    assert_non_null(real_vfs);
    full_vfs.szOsFile = (int)sizeof(full_file) + real_vfs->szOsFile;
    full_vfs.mxPathname = real_vfs->mxPathname;
    assert_int_equal(sqlite3_vfs_register(&full_vfs, 1), SQLITE_OK); /* the default from now on */
}

static void full_disk_end(void)
{
    sqlite3_vfs_unregister(&full_vfs);
    sqlite3_vfs_register(real_vfs, 1);
}

/* A complete cache on a full disk (issue 23: runs, JOBCACHE_READONLY=1 and
 * jobcache stats all failed with "disk I/O error", the -shm file being
 * impossible to create): read-only, it reads; writable, a run serves its
 * hits, computes its misses, returns every result with the full-disk
 * status and says how many it could not store; nothing of the file is
 * changed. Results still in a -wal file are said to be unreadable, naming
 * the full disk. */
static void file_a_cache_on_a_full_disk_is_read_and_runs(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "full-disk.db");
    jc_cache *c = open_cache(path, 0);
    run_squares(c, 0, 5);
    jc_cache_close(c); /* closed: complete in the file, no -shm left */
    char shm[PATH_CAP + 8];
    snprintf(shm, sizeof shm, "%s-shm", path);
    assert_false(jc_test_exists(shm));
    jc_test_bytes before = jc_test_snapshot(path);

    full_disk_begin();
    c = jc_cache_open(path, &(jc_cache_options){.flags = JC_CACHE_READONLY});
    assert_non_null(c);
    jc_stats *s = jc_cache_stats(c);
    assert_non_null(s);
    assert_int_equal(s->entries, 5);
    jc_stats_free(s);
    jc_value *v = jc_memo(c, square, jc_int(3));
    assert_non_null(v);
    jc_value_free(v);
    jc_cache_close(c);

    c = jc_cache_open(path, NULL);
    assert_non_null(c);
    jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
    for (int x = 0; x < 10; x++)
        jc_delayed(b, square, jc_int(x));
    jc_results *res = jc_run(b);
    assert_non_null(res);
    assert_int_equal(jc_results_status(res), JC_EFULL);
    assert_contains(jc_results_message(res), "5 results could not be stored");
    assert_contains(jc_results_message(res), "the disk is full");
    for (int x = 0; x < 10; x++)
        assert_int_equal(jc_result_int(res, (size_t)x), x * x);
    assert_int_equal(jc_results_summary(res).cached, 5);
    assert_int_equal(jc_results_summary(res).computed, 5);
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
    full_disk_end();
    jc_test_assert_unchanged(path, before);

    /* Results still in the -wal file (a program has the cache open). */
    c = open_cache(path, 0);
    run_squares(c, 5, 8);
    full_disk_begin();
    jc_cache *other = jc_cache_open(path, &(jc_cache_options){.flags = JC_CACHE_READONLY});
    full_disk_end();
    assert_null(other);
    assert_int_equal(jc_errcode(), JC_EFULL);
    assert_contains(jc_errmsg(), "the disk is full");
    assert_contains(jc_errmsg(), "-wal");
    jc_cache_close(c);
}

/* The permission bits of path, or -1 when it does not exist. */
static int mode_of(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (int)(sb.st_mode & 07777) : -1;
}

/* A new cache file, and the -wal and -shm files beside it, get mode 0666
 * less the umask, as files of other Unix tools do (SQLite alone makes it
 * 0644 whatever the umask). */
static void file_a_new_cache_file_gets_the_mode_the_umask_allows(void **state)
{
    (void)state;
    static const struct {
        mode_t umask;
        int mode;
    } cases[] = {{002, 0664}, {022, 0644}, {077, 0600}};
    char path[PATH_CAP], side[PATH_CAP + 8];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        jc_test_path(path, sizeof path, "umask.jobcache");
        mode_t old = umask(cases[i].umask);
        jc_cache *c = open_cache(path, 0);
        run_squares(c, 0, 10);
        assert_int_equal(mode_of(path), cases[i].mode);
        snprintf(side, sizeof side, "%s-wal", path);
        assert_int_equal(mode_of(side), cases[i].mode);
        snprintf(side, sizeof side, "%s-shm", path);
        assert_int_equal(mode_of(side), cases[i].mode);
        jc_cache_close(c);
        umask(old);
        assert_int_equal(mode_of(path), cases[i].mode);
    }
}

/* Runs squares of 0..9 as user and group nobody (65534) with umask 002 in a
 * child process: its exit status is 0 when it could open and write the
 * cache, and 5 of the calls were hits. */
static int run_as_nobody(const char *path)
{
    pid_t pid = fork();
    if (pid == 0) {
        umask(002);
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            _exit(3);
        jc_cache *c = jc_cache_open(path, NULL);
        if (!c) {
            fprintf(stderr, "as nobody: %s\n", jc_errmsg());
            _exit(4);
        }
        jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
        for (int x = 0; x < 10; x++)
            jc_delayed(b, square, jc_int(x));
        jc_results *res = jc_run(b);
        int ok = res && jc_results_status(res) == JC_OK && jc_results_summary(res).cached == 5;
        if (!ok)
            fprintf(stderr, "as nobody: %s\n", res ? jc_results_message(res) : jc_errmsg());
        jc_results_free(res);
        jc_batch_free(b);
        jc_cache_close(c);
        _exit(ok ? 0 : 5);
    }
    int status = 0;
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

/* The group sharing of the README: in a setgid directory of a group, with
 * umask 002, a cache one user made can be written by another member of the
 * group. Needs root (to be a second user); skipped otherwise. */
static void file_a_group_member_can_write_a_cache_in_a_setgid_directory(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        fprintf(stderr, "skipped: sharing a cache with another user needs root (to run as nobody)\n");
        skip();
    }
    char dir[] = "/tmp/jc-group-XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chown(dir, 0, 65534), 0);
    assert_int_equal(chmod(dir, 02775), 0);
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/shared.jobcache", dir);

    mode_t old = umask(002);
    jc_cache *c = open_cache(path, 0);
    run_squares(c, 0, 5);
    jc_cache_close(c);
    umask(old);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0664);
    assert_int_equal(sb.st_gid, 65534); /* the directory's group */

    assert_int_equal(run_as_nobody(path), 0);
    c = open_cache(path, JC_CACHE_READONLY);
    jc_stats *s = jc_cache_stats(c);
    assert_int_equal(s->entries, 10);
    jc_stats_free(s);
    jc_cache_close(c);
    jc_test_remove_db(path);
    assert_int_equal(rmdir(dir), 0);
}


/* In a child: a cache of many entries, read (hits), then cut short under
 * the open handle as `truncate` or `cp` of a smaller copy over it does,
 * then read again by a run and by jc_memo. Exits 0 when it lived through
 * it, whatever the lookups answered. */
static void cut_short_child(const char *path, off_t keep)
{
    signal(SIGBUS, SIG_DFL); /* not cmocka's handler: the parent sees the signal */
    signal(SIGSEGV, SIG_DFL);
    jc_cache *c = jc_cache_open(path, NULL);
    if (!c)
        _exit(3);
    for (int round = 0; round < 2; round++) {
        jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
        for (int x = 0; x < 4000; x++)
            jc_delayed(b, square, jc_int(x));
        jc_results_free(jc_run(b));
        jc_batch_free(b);
        for (int x = 0; x < 4000; x += 7)
            jc_value_free(jc_memo(c, square, jc_int(x)));
        if (round == 0 && truncate(path, keep) != 0)
            _exit(4);
    }
    jc_cache_close(c);
    _exit(0);
}

/* A cache file cut short while a program has it open (`truncate`, or `cp`
 * of an older, smaller copy over it): the program's lookups fail or miss
 * and compute again; it is never killed by SIGBUS, which a memory map of
 * the file gives when a page past the new end is touched (issue 22). */
static void file_a_cache_cut_short_in_use_never_kills_the_program(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = jc_test_fresh_cache(path, sizeof path, "cut-short.db", 0);
    run_squares(c, 0, 4000);
    jc_cache_close(c); /* everything in the file itself */
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_true(sb.st_size > 64 * 1024);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        cut_short_child(path, sb.st_size / 3);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        fail_msg("the program was killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* A cache opened by a relative path is the file of that moment's working
 * directory, whatever directory the program changes to later: its path,
 * its figures and its runs. */
static void file_a_relative_path_is_resolved_once_at_open(void **state)
{
    (void)state;
    char here[PATH_CAP], path[PATH_CAP], real[PATH_CAP];
    assert_non_null(getcwd(here, sizeof here));
    jc_test_path(path, sizeof path, "relative.jobcache");
    assert_int_equal(chdir(jc_test_dir()), 0);
    assert_non_null(realpath(".", real));
    strcat(real, "/relative.jobcache");
    jc_cache *c = open_cache("relative.jobcache", 0);
    run_squares(c, 0, 20);
    assert_int_equal(chdir("/"), 0);

    assert_string_equal(jc_cache_path(c), real);
    jc_stats *s = jc_cache_stats(c);
    assert_non_null(s);
    struct stat sb;
    assert_int_equal(stat(real, &sb), 0);
    assert_true(s->file_bytes >= (int64_t)sb.st_size);
    assert_true(s->file_bytes > 0);
    assert_int_equal(s->entries, 20);
    assert_string_equal(s->path, real);
    jc_stats_free(s);
    run_squares(c, 20, 30); /* still the same file */
    jc_cache_close(c);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), 30);
    assert_false(jc_test_exists("/relative.jobcache"));
    assert_int_equal(chdir(here), 0);
}

/* The child of file_sqlite_memory_statistics_..., in a process of its own
 * (SQLite's configuration is the process's): stores results in path, with
 * SQLite initialized by the program first or not; exits 0 when SQLite's
 * memory statistics are as they should be then (counting only when the
 * program initialized SQLite itself). */
static int memstatus_child(const char *mode, const char *path)
{
    bool first = strcmp(mode, "program-first") == 0;
    if (first && sqlite3_initialize() != SQLITE_OK)
        return 2;
    jc_cache *c = jc_cache_open(path, NULL);
    if (!c)
        return 3;
    jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
    for (int x = 0; x < 100; x++)
        jc_delayed(b, square, jc_int(x));
    jc_results *res = jc_run(b);
    int ok = res && jc_results_status(res) == JC_OK;
    jc_results_free(res);
    jc_batch_free(b);
    bool counted = sqlite3_memory_used() > 0;
    jc_cache_close(c);
    return !ok ? 4 : counted == first ? 0 : 5;
}

/* SQLite's memory statistics take a global mutex at each of its
 * allocations (Debian's SQLite has no lookaside memory): jobcache turns
 * them off when it is the first in the process to use SQLite, and leaves
 * them on for a program that initialized SQLite before (which may use
 * sqlite3_memory_used or heap limits). Each case in a fresh process. */
static void file_sqlite_memory_statistics_are_the_programs_when_it_initialized_first(void **state)
{
    (void)state;
    if (sqlite3_compileoption_used("DEFAULT_MEMSTATUS=0")) {
        skip(); /* a SQLite built without them: nothing to keep or turn off */
        return;
    }
    const char *modes[] = {"jobcache-first", "program-first"};
    for (size_t i = 0; i < 2; i++) {
        char path[PATH_CAP];
        jc_test_path(path, sizeof path, i ? "memstatus-program.db" : "memstatus-jobcache.db");
        jc_test_remove_db(path);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            execl("/proc/self/exe", "test_file", "memstatus-child", modes[i], path, (char *)NULL);
            _exit(127);
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) != 0)
            fail_msg("%s: the child exited with %d (5: SQLite's memory statistics %s)", modes[i],
                     WEXITSTATUS(status), i ? "were turned off" : "were left on");
        assert_int_equal(entries_in(path), 100);
    }
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "memstatus-child") == 0)
        return memstatus_child(argv[2], argv[3]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(file_a_closed_cache_is_complete_on_its_own),
        cmocka_unit_test(file_sqlite_memory_statistics_are_the_programs_when_it_initialized_first),
        cmocka_unit_test(file_a_new_cache_file_holds_its_schema_at_once),
        cmocka_unit_test(file_a_backup_of_a_cache_in_use_is_complete),
        cmocka_unit_test(file_a_closed_cache_on_a_read_only_mount_is_read),
        cmocka_unit_test(file_a_cache_in_use_on_a_read_only_mount_is_read_through_its_wal),
        cmocka_unit_test(file_wal_data_without_shm_on_a_read_only_mount_is_refused_clearly),
        cmocka_unit_test(file_a_full_disk_keeps_what_fits),
        cmocka_unit_test(file_entries_from_a_clock_ahead_do_not_stay_newest),
        cmocka_unit_test(file_future_times_read_as_now),
        cmocka_unit_test(file_stale_versions_keep_the_version_used_last),
        cmocka_unit_test(file_stale_versions_after_a_clock_that_was_ahead_keep_the_current),
        cmocka_unit_test(file_a_cache_on_a_full_disk_is_read_and_runs),
        cmocka_unit_test(file_a_stuck_lock_holds_a_run_for_its_busy_timeout_not_longer),
        cmocka_unit_test(file_a_new_cache_file_gets_the_mode_the_umask_allows),
        cmocka_unit_test(file_a_group_member_can_write_a_cache_in_a_setgid_directory),
        cmocka_unit_test(file_a_relative_path_is_resolved_once_at_open),
        cmocka_unit_test(file_a_cache_cut_short_in_use_never_kills_the_program),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
