/*
 * Tests of the store (src/store/sqlite/): the SQLite file, its schema, its
 * transactions, and how it refuses bad files without crashing.
 *
 * The tests look at the file with sqlite3 directly where the store's
 * interface does not show something (hits, the journal mode, user_version).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "testutil.h"

#define PATH_CAP 4096

/* ---- helpers ---- */

/* A distinct, recognizable key for each i. */
static void make_key(uint8_t key[JC__KEY_LEN], uint32_t i)
{
    memset(key, 0xa5, JC__KEY_LEN);
    memcpy(key, &i, sizeof i);
}

static int put_entry(jc__store *st, uint32_t i, const void *result, size_t len, double now)
{
    uint8_t key[JC__KEY_LEN];
    static const char args[] = "\x92\x91\x01\x80"; /* any bytes will do */
    make_key(key, i);
    jc__entry_in e = {.key = key,
                      .function = "simulate",
                      .version = "v1",
                      .args = args,
                      .args_len = sizeof args - 1,
                      .result = result,
                      .result_len = len,
                      .compute_seconds = 0.25,
                      .now = now};
    return jc__store_put(st, &e);
}

static int get_entry(jc__store *st, uint32_t i, jc__hit *hit)
{
    uint8_t key[JC__KEY_LEN];
    make_key(key, i);
    return jc__store_get(st, key, hit);
}

/* One hit of entry i at now: a row of the hit log (store.h), folded. */
static int touch_entry(jc__store *st, uint32_t i, double now)
{
    uint8_t rec[JC__HIT_RECORD] = {0};
    make_key(rec, i);
    rec[JC__KEY_LEN] = 1; /* count 1, little-endian */
    int rc = jc__store_hit_log_add(st, now, 1, 0, rec, sizeof rec);
    return rc ? rc : jc__store_hit_log_fold(st, NULL);
}

static jc__store *open_ok(const char *path, unsigned flags)
{
    jc__store *st = NULL;
    int rc = jc__store_open(path, flags, 0, &st);
    if (rc != 0)
        print_error("jc__store_open('%s'): %s\n", path, jc_errmsg());
    assert_int_equal(rc, 0);
    assert_non_null(st);
    assert_string_equal(jc__store_path(st), jc_test_shown(path));
    return st;
}

/* The failure was code, and the message names the file. */
static void assert_error(int rc, int code, const char *path)
{
    if (rc != code)
        print_error("expected %s, got %d: %s\n", jc_err_name(code), rc, jc_errmsg());
    assert_int_equal(rc, code);
    assert_int_equal(jc_errcode(), code);
    assert_non_null(strstr(jc_errmsg(), jc_test_shown(path)));
}

static void assert_open_fails(const char *path, unsigned flags, int code)
{
    jc__store *st = (jc__store *)&st; /* must come back NULL */
    int rc = jc__store_open(path, flags, 0, &st);
    assert_error(rc, code, path);
    assert_null(st);
}

/* Opens path with sqlite3 itself. */
static sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    assert_int_equal(rc, SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    return db;
}

static void sql_exec(const char *path, const char *sql)
{
    if (jc_test_is_pg_location(path)) { /* in the server's dialect (testutil.h) */
        assert_int_equal(jc_test_pg_sql(path, sql, NULL, false), 0);
        return;
    }
    sqlite3 *db = raw_open(path);
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        print_error("%s: %s\n", sql, sqlite3_errmsg(db));
    assert_int_equal(rc, SQLITE_OK);
    sqlite3_close(db);
}

/* The first column of the first row of sql, as an integer / as malloc'd text. */
static sqlite3_stmt *sql_row(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    return s;
}

static char *sql_text(const char *path, const char *sql);

static int64_t sql_int(const char *path, const char *sql)
{
    if (jc_test_is_pg_location(path)) {
        char *t = sql_text(path, sql);
        int64_t v = strtoll(t, NULL, 10);
        free(t);
        return v;
    }
    sqlite3 *db = raw_open(path);
    sqlite3_stmt *s = sql_row(db, sql);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static double sql_double(const char *path, const char *sql)
{
    if (jc_test_is_pg_location(path)) {
        char *t = sql_text(path, sql);
        double v = strtod(t, NULL);
        free(t);
        return v;
    }
    sqlite3 *db = raw_open(path);
    sqlite3_stmt *s = sql_row(db, sql);
    double v = sqlite3_column_double(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static char *sql_text(const char *path, const char *sql)
{
    if (jc_test_is_pg_location(path)) {
        char *t = NULL;
        int rc = jc_test_pg_sql(path, sql, &t, false);
        assert_true(rc == 0 || rc == 1);
        return t ? t : strdup("(null)");
    }
    sqlite3 *db = raw_open(path);
    sqlite3_stmt *s = sql_row(db, sql);
    const char *t = (const char *)sqlite3_column_text(s, 0);
    char *v = strdup(t ? t : "(null)");
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static void assert_sql_text(const char *path, const char *sql, const char *want)
{
    char *got = sql_text(path, sql);
    assert_string_equal(got, want);
    free(got);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len)
        assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Deterministic pseudo-random bytes (xorshift), so failures reproduce. */
static void fill_garbage(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t x = seed | 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)(x >> 24);
    }
}

/* A cache with n entries of 1 KiB results, closed (so checkpointed: the
 * last connection to close folds the -wal file into the database). */
static void make_big_cache(const char *path, uint32_t n)
{
    uint8_t result[1024];
    jc__store *st = open_ok(path, 0);
    assert_int_equal(jc__store_begin(st), 0);
    for (uint32_t i = 0; i < n; i++) {
        memset(result, (int)(i & 0xff), sizeof result);
        assert_int_equal(put_entry(st, i, result, sizeof result, 1000.0 + i), 0);
    }
    assert_int_equal(jc__store_commit(st), 0);
    jc__store_close(st);
    jc_test_remove_db_sidecars(path);
}

/* Looks every key of make_big_cache up in a damaged copy: each lookup finds
 * a result (whose bytes may be damaged too: the codec's concern), finds
 * nothing, or fails with JC_ECORRUPT naming the file; none crashes. Returns
 * how many failed, and in *found how many found a result. */
static unsigned probe_damaged(const char *path, uint32_t n, unsigned *found)
{
    *found = 0;
    jc__store *st = NULL;
    int rc = jc__store_open(path, 0, 0, &st);
    if (rc != 0) {
        assert_error(rc, JC_ECORRUPT, path);
        assert_null(st);
        return n;
    }
    unsigned corrupt = 0;
    for (uint32_t i = 0; i < n; i++) {
        jc__hit hit;
        rc = get_entry(st, i, &hit);
        if (rc == JC_ECORRUPT) {
            assert_error(rc, JC_ECORRUPT, path);
            corrupt++;
        } else if (rc == 1) {
            /* Read every byte, so that ASan checks the buffer. */
            unsigned sum = 0;
            for (size_t k = 0; k < hit.result_len; k++)
                sum += ((const uint8_t *)hit.result)[k];
            (void)sum;
            (*found)++;
        } else {
            assert_int_equal(rc, 0);
        }
    }
    jc__store_close(st);
    return corrupt;
}

/* ---- round trips ---- */

static void store_put_get_roundtrip(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "roundtrip.db");
    jc__store *st = open_ok(path, 0);

    static const char result[] = "\xcb\x40\x09\x21\xfb\x54\x44\x2d\x18";
    assert_int_equal(put_entry(st, 7, result, sizeof result - 1, 1234.5), 0);
    jc__hit hit;
    assert_int_equal(get_entry(st, 7, &hit), 1);
    assert_int_equal(hit.result_len, sizeof result - 1);
    assert_memory_equal(hit.result, result, sizeof result - 1);
    assert_true(hit.compute_seconds == 0.25);
    jc__store_close(st);

    assert_sql_text(path, "SELECT function || '/' || version FROM entries", "simulate/v1");
    assert_int_equal(sql_int(path, "SELECT args_size FROM entries"), 4);
    assert_int_equal(sql_int(path, "SELECT result_size FROM entries"), sizeof result - 1);
    assert_int_equal(sql_int(path, "SELECT hits FROM entries"), 0);
    assert_true(sql_double(path, "SELECT created FROM entries") == 1234.5);
    assert_true(sql_double(path, "SELECT last_used FROM entries") == 1234.5);
}

/* jc__store_get_many answers each wanted key once, with its own index and
 * result, whatever the order of the keys against the table's (a pass over
 * the table first tries the key after the last one found: lookup.c). */
typedef struct many_seen {
    const uint32_t *id; /* the entry each wanted key names */
    unsigned *calls;    /* on_hit calls per index */
    bool wrong;
} many_seen;

static void many_on_hit(void *ctx, size_t i, const jc__hit *hit)
{
    many_seen *m = ctx;
    m->calls[i]++;
    uint32_t got;
    if (hit->result_len != sizeof got)
        m->wrong = true;
    else if (memcpy(&got, hit->result, sizeof got), got != m->id[i])
        m->wrong = true;
}

static void check_many(jc__store *st, const uint32_t *id, size_t n, uint32_t present)
{
    uint8_t (*key)[JC__KEY_LEN] = malloc(n * JC__KEY_LEN);
    const uint8_t **keys = malloc(n * sizeof *keys);
    unsigned *calls = calloc(n, sizeof *calls);
    assert_non_null(key);
    assert_non_null(keys);
    assert_non_null(calls);
    for (size_t i = 0; i < n; i++) {
        make_key(key[i], id[i]);
        keys[i] = key[i];
    }
    many_seen m = {.id = id, .calls = calls};
    assert_int_equal(jc__store_get_many(st, keys, n, many_on_hit, &m), 0);
    assert_false(m.wrong);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(calls[i], id[i] < present ? 1 : 0);
    free(calls);
    free(keys);
    free(key);
}

static void store_get_many_answers_each_key_once_in_any_order(void **state)
{
    (void)state;
    enum { N = 1000 };
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "many.db");
    jc__store *st = open_ok(path, 0);
    assert_int_equal(jc__store_begin(st), 0);
    for (uint32_t i = 0; i < N; i++)
        assert_int_equal(put_entry(st, i, &i, sizeof i, 1000.0), 0);
    assert_int_equal(jc__store_commit(st), 0);
    uint32_t id[N];
    for (uint32_t i = 0; i < N; i++) /* the table's order: one pass, no set of keys */
        id[i] = i;
    check_many(st, id, N, N);
    for (uint32_t i = 0; i < N; i++) /* reversed: every row looked up */
        id[i] = N - 1 - i;
    check_many(st, id, N, N);
    for (uint32_t i = 0; i < N; i++) /* pairs swapped, as two workers store them */
        id[i] = i ^ 1;
    check_many(st, id, N, N);
    for (uint32_t i = 0; i < N; i++) /* runs of 50 swapped: found again after each jump */
        id[i] = (i / 50 % 2 ? i - 50 : i + 50) % N;
    check_many(st, id, N, N);
    size_t n = 0; /* every other key, and keys not stored among them */
    for (uint32_t i = 0; i < N; i += 2) {
        id[n++] = i;
        if (i % 10 == 0)
            id[n++] = N + i;
    }
    check_many(st, id, n, N);
    jc__store_close(st);
}

static void store_get_absent_returns_0(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "absent.db");
    jc__store *st = open_ok(path, 0);
    jc__hit hit;
    assert_int_equal(get_entry(st, 1, &hit), 0);
    assert_int_equal(put_entry(st, 1, "x", 1, 1.0), 0);
    assert_int_equal(get_entry(st, 2, &hit), 0);
    jc__store_close(st);
}

/* Storing an existing key (recomputed, or computed by two processes at
 * once) replaces its result and keeps its hit count: the hits happened
 * (0.2.0 reset them to 0, and `jobcache stats` lost up to a fifth of the
 * hits of 8 processes sharing a cache). */
static void store_put_overwrite_replaces_result_and_keeps_hits(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "overwrite.db");
    jc__store *st = open_ok(path, 0);
    jc__hit hit;

    assert_int_equal(put_entry(st, 3, "old", 3, 100.0), 0);
    assert_int_equal(get_entry(st, 3, &hit), 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(touch_entry(st, 3, 150.0), 0);
    assert_int_equal(sql_int(path, "SELECT hits FROM entries"), 3);

    assert_int_equal(put_entry(st, 3, "new result", 10, 200.0), 0);
    assert_int_equal(get_entry(st, 3, &hit), 1);
    assert_int_equal(hit.result_len, 10);
    assert_memory_equal(hit.result, "new result", 10);
    jc__store_close(st);

    assert_int_equal(sql_int(path, "SELECT count(*) FROM entries"), 1);
    assert_int_equal(sql_int(path, "SELECT hits FROM entries"), 3);
    assert_int_equal(sql_int(path, "SELECT result_size FROM entries"), 10);
    assert_true(sql_double(path, "SELECT created FROM entries") == 200.0);
    assert_true(sql_double(path, "SELECT last_used FROM entries") == 200.0);
}

static void store_touch_increments_hits(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "touch.db");
    jc__store *st = open_ok(path, 0);
    jc__hit hit;

    assert_int_equal(put_entry(st, 9, "r", 1, 10.0), 0);
    assert_int_equal(put_entry(st, 10, "s", 1, 10.0), 0);
    assert_int_equal(get_entry(st, 9, &hit), 1);
    assert_int_equal(touch_entry(st, 9, 20.0), 0);
    assert_int_equal(touch_entry(st, 9, 30.5), 0);
    /* Another connection sees the autocommitted updates. */
    assert_int_equal(sql_int(path, "SELECT sum(hits) FROM entries"), 2);
    /* Entry 9, stored first: row 1. */
    assert_int_equal(sql_int(path, "SELECT hits FROM entries WHERE rowid = 1"), 2);
    assert_true(sql_double(path, "SELECT last_used FROM entries WHERE rowid = 1") == 30.5);
    /* Touching an entry that is gone changes nothing and is not an error. */
    assert_int_equal(touch_entry(st, 999999, 40.0), 0);
    assert_int_equal(sql_int(path, "SELECT sum(hits) FROM entries"), 2);
    jc__store_close(st);
}

static void store_delete_removes_entry(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "delete.db");
    jc__store *st = open_ok(path, 0);
    jc__hit hit;
    uint8_t key[JC__KEY_LEN];
    make_key(key, 5);

    assert_int_equal(put_entry(st, 5, "r", 1, 1.0), 0);
    assert_int_equal(jc__store_delete(st, key), 1);
    assert_int_equal(get_entry(st, 5, &hit), 0);
    assert_int_equal(jc__store_delete(st, key), 0);
    jc__store_close(st);
}

static void store_empty_and_large_results(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "sizes.db");
    jc__store *st = open_ok(path, 0);
    jc__hit hit;

    size_t big_len = 8u << 20;
    uint8_t *big = malloc(big_len);
    assert_non_null(big);
    fill_garbage(big, big_len, 42);
    assert_int_equal(put_entry(st, 1, NULL, 0, 1.0), 0);
    assert_int_equal(put_entry(st, 2, big, big_len, 1.0), 0);
    assert_int_equal(put_entry(st, 3, "tiny", 4, 1.0), 0);

    assert_int_equal(get_entry(st, 1, &hit), 1);
    assert_int_equal(hit.result_len, 0);
    assert_non_null(hit.result);
    assert_int_equal(get_entry(st, 2, &hit), 1);
    assert_int_equal(hit.result_len, big_len);
    assert_memory_equal(hit.result, big, big_len);
    assert_int_equal(get_entry(st, 3, &hit), 1);
    assert_int_equal(hit.result_len, 4);
    assert_memory_equal(hit.result, "tiny", 4);
    free(big);
    jc__store_close(st);
}

static void store_reopen_persists(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "reopen.db");
    jc__store *st = open_ok(path, 0);
    for (uint32_t i = 0; i < 100; i++)
        assert_int_equal(put_entry(st, i, &i, sizeof i, 1.0), 0);
    jc__store_close(st);

    st = open_ok(path, 0);
    for (uint32_t i = 0; i < 100; i++) {
        jc__hit hit;
        assert_int_equal(get_entry(st, i, &hit), 1);
        assert_int_equal(hit.result_len, sizeof i);
        assert_memory_equal(hit.result, &i, sizeof i);
    }
    jc__store_close(st);
}

/* ---- the file ---- */

static void store_file_is_wal_with_schema_version(void **state)
{
    (void)state;
    if (jc_test_file_only()) /* a file of SQLite's (test_pg has the server's own) */
        return;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "wal.db");
    jc__store *st = open_ok(path, 0);
    assert_sql_text(path, "PRAGMA journal_mode", "wal");
    assert_int_equal(sql_int(path, "PRAGMA user_version"), JC__SCHEMA_VERSION);
    assert_sql_text(path, "SELECT value FROM meta WHERE name = 'key_format'", "1");
    /* The key is the only index: every stored result and every hit pays
     * for each index there is. */
    assert_int_equal(sql_int(path, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND"
                                   " name = 'entries_key'"),
                     1);
    /* ... besides the chunks' own (schema 11), which only results in
     * pieces pay for. */
    assert_int_equal(sql_int(path, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND"
                                   " sql IS NOT NULL"),
                     2);
    jc__store_close(st);
}

static void store_empty_file_gets_schema(void **state)
{
    (void)state;
    if (jc_test_file_only()) /* a file of SQLite's (test_pg has the server's own) */
        return;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "empty.db");
    write_file(path, "", 0);
    /* Read-only, an empty file cannot become a cache. */
    assert_open_fails(path, JC__STORE_READONLY, JC_ECORRUPT);

    jc__store *st = open_ok(path, JC__STORE_NOCREATE);
    jc__store_close(st);
    assert_int_equal(sql_int(path, "PRAGMA user_version"), JC__SCHEMA_VERSION);
}

static void store_newer_schema_is_eschema(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "newer.db");
    jc__store_close(open_ok(path, 0));
    /* The schema's version: SQLite's user_version, the server's meta row. */
    sql_exec(path, jc_test_pg() ? "UPDATE meta SET value = '99' WHERE name = 'schema_version'"
                                : "PRAGMA user_version = 99");

    assert_open_fails(path, 0, JC_ESCHEMA);
    assert_non_null(strstr(jc_errmsg(), "99"));
    char version[32];
    snprintf(version, sizeof version, "version %d", JC__SCHEMA_VERSION);
    assert_non_null(strstr(jc_errmsg(), version));
    assert_open_fails(path, JC__STORE_READONLY, JC_ESCHEMA);
    assert_int_equal(sql_int(path, jc_test_pg() ? "SELECT value FROM meta WHERE name = 'schema_version'"
                                                : "PRAGMA user_version"),
                     99);
}

static void store_text_file_is_ecorrupt(void **state)
{
    (void)state;
    if (jc_test_file_only()) /* a file of SQLite's (test_pg has the server's own) */
        return;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "text.db");
    char text[8192];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = "hello, this is not a database\n"[i % 30];
    write_file(path, text, sizeof text);

    assert_open_fails(path, 0, JC_ECORRUPT);
    assert_open_fails(path, JC__STORE_READONLY, JC_ECORRUPT);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, sizeof text); /* left as it was */
}

static void store_foreign_database_is_ecorrupt(void **state)
{
    (void)state;
    if (jc_test_file_only()) /* a file of SQLite's (test_pg has the server's own) */
        return;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "foreign.db");
    sql_exec(path, "CREATE TABLE t (x); INSERT INTO t VALUES (1)");

    assert_open_fails(path, 0, JC_ECORRUPT);
    assert_non_null(strstr(jc_errmsg(), "not a jobcache cache"));
    assert_open_fails(path, JC__STORE_READONLY, JC_ECORRUPT);
    /* Refused before anything was written: the journal mode is untouched. */
    assert_sql_text(path, "PRAGMA journal_mode", "delete");
}

static void store_foreign_database_with_our_version_is_ecorrupt(void **state)
{
    (void)state;
    if (jc_test_file_only()) /* a file of SQLite's (test_pg has the server's own) */
        return;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "foreign1.db");
    sql_exec(path, "CREATE TABLE t (x); PRAGMA user_version = 1");
    assert_open_fails(path, 0, JC_ECORRUPT);
    assert_non_null(strstr(jc_errmsg(), "not a jobcache cache"));
}

static void store_truncated_file_is_ecorrupt(void **state)
{
    (void)state;
    if (jc_test_file_only()) /* a file of SQLite's (test_pg has the server's own) */
        return;
    char path[PATH_CAP];
    const uint32_t n = 2000;
    jc_test_path(path, sizeof path, "truncated.db");
    make_big_cache(path, n);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_true(sb.st_size > 2 * 1024 * 1024);
    assert_int_equal(truncate(path, sb.st_size / 2), 0);

    unsigned found;
    assert_true(probe_damaged(path, n, &found) > 0);
}

static void store_damaged_pages_do_not_crash(void **state)
{
    (void)state;
    if (jc_test_file_only()) /* a file of SQLite's (test_pg has the server's own) */
        return;
    char path[PATH_CAP];
    const uint32_t n = 2000;
    jc_test_path(path, sizeof path, "damaged.db");
    make_big_cache(path, n);

    /* Overwrite every 7th page from the 16th on with garbage: the schema and
     * the roots of the B-trees survive, so lookups reach damaged pages. */
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    struct stat sb;
    assert_int_equal(fstat(fd, &sb), 0);
    uint8_t page[4096];
    for (off_t off = 15 * 4096; off + 4096 <= sb.st_size; off += 7 * 4096) {
        fill_garbage(page, sizeof page, (uint64_t)off);
        assert_int_equal(pwrite(fd, page, sizeof page, off), (ssize_t)sizeof page);
    }
    assert_int_equal(close(fd), 0);

    unsigned found;
    unsigned corrupt = probe_damaged(path, n, &found);
    assert_true(corrupt > 0);
    assert_true(found > 0);
}

static void store_garbage_after_sqlite_header_is_ecorrupt(void **state)
{
    (void)state;
    if (jc_test_file_only()) /* a file of SQLite's (test_pg has the server's own) */
        return;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "garbage.db");
    static uint8_t data[4 * 4096];
    fill_garbage(data, sizeof data, 7);
    memcpy(data, "SQLite format 3", 16); /* with its NUL */
    write_file(path, data, sizeof data);

    assert_open_fails(path, 0, JC_ECORRUPT);
    assert_open_fails(path, JC__STORE_READONLY, JC_ECORRUPT);
}

/* ---- bad paths ---- */

static void store_missing_directory_is_eio(void **state)
{
    (void)state;
    char path[PATH_CAP], dir[PATH_CAP / 2];
    snprintf(dir, sizeof dir, "%s/no-such-dir", jc_test_dir());
    rmdir(dir);
    snprintf(path, sizeof path, "%s/cache.db", dir);

    assert_open_fails(path, 0, JC_EIO);
    assert_non_null(strstr(jc_errmsg(), "does not exist"));
    assert_non_null(strstr(jc_errmsg(), dir));
    assert_int_equal(access(dir, F_OK), -1); /* nothing was created */
}

static void store_unwritable_directory_is_eio(void **state)
{
    (void)state;
    char path[PATH_CAP], dir[PATH_CAP / 2];
    snprintf(dir, sizeof dir, "%s/read-only-dir", jc_test_dir());
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/cache.db", dir);
    jc_test_remove_db(path);
    assert_int_equal(chmod(dir, 0555), 0);
    if (geteuid() == 0) {
        /* root writes anywhere: there is nothing to refuse. */
        chmod(dir, 0755);
        skip();
    }
    jc__store *st = NULL;
    int rc = jc__store_open(path, 0, 0, &st);
    chmod(dir, 0755);
    assert_error(rc, JC_EIO, path);
    assert_non_null(strstr(jc_errmsg(), "not writable"));
    assert_null(st);
}

/* A cache in a directory that this process cannot write (not as root). */
static void make_cache_in_locked_dir(char *path, size_t cap, const char *name)
{
    char dir[PATH_CAP / 2];
    snprintf(dir, sizeof dir, "%s/%s", jc_test_dir(), name);
    mkdir(dir, 0755);
    chmod(dir, 0755);
    snprintf(path, cap, "%s/cache.db", dir);
    jc_test_remove_db(path);
    jc__store *st = open_ok(path, 0);
    assert_int_equal(put_entry(st, 1, "a", 1, 1.0), 0);
    jc__store_close(st); /* the last close removes -wal and -shm */
    assert_int_equal(chmod(path, 0444), 0);
    assert_int_equal(chmod(dir, 0555), 0);
}

static void unlock_dir_of(const char *path)
{
    char dir[PATH_CAP];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    chmod(dir, 0755);
    chmod(path, 0644);
}

static void store_write_protected_file_is_eio(void **state)
{
    (void)state;
    char path[PATH_CAP];
    make_cache_in_locked_dir(path, sizeof path, "protected-dir");
    if (geteuid() == 0) {
        unlock_dir_of(path);
        skip();
    }
    jc__store *st = NULL;
    int rc = jc__store_open(path, 0, 0, &st);
    unlock_dir_of(path);
    assert_error(rc, JC_EIO, path);
    assert_non_null(strstr(jc_errmsg(), "read-only"));
    assert_null(st);
}

static void store_readonly_wal_in_locked_directory_is_eio(void **state)
{
    (void)state;
    char path[PATH_CAP];
    make_cache_in_locked_dir(path, sizeof path, "locked-dir");
    if (geteuid() == 0) {
        unlock_dir_of(path);
        skip();
    }
    /* SQLite must create -shm to read a WAL database, and cannot. */
    jc__store *st = NULL;
    int rc = jc__store_open(path, JC__STORE_READONLY, 0, &st);
    unlock_dir_of(path);
    assert_error(rc, JC_EIO, path);
    assert_non_null(strstr(jc_errmsg(), "-shm"));
    assert_null(st);
}

static void store_directory_as_path_is_eio(void **state)
{
    (void)state;
    assert_open_fails(jc_test_dir(), 0, JC_EIO);
}

static void store_nocreate_missing_file_is_enotfound(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "nocreate.db");
    assert_open_fails(path, JC__STORE_NOCREATE, JC_ENOTFOUND);
    assert_int_equal(access(path, F_OK), -1);
    assert_open_fails(path, JC__STORE_READONLY, JC_ENOTFOUND);
    assert_int_equal(access(path, F_OK), -1);
}

static void store_invalid_arguments_are_einval(void **state)
{
    (void)state;
    jc__store *st = NULL;
    assert_int_equal(jc__store_open(NULL, 0, 0, &st), JC_EINVAL);
    assert_null(st);
    assert_int_equal(jc__store_open("", 0, 0, &st), JC_EINVAL);
    assert_int_equal(jc__store_open("x.db", 0, 0, NULL), JC_EINVAL);
    jc__store_close(NULL);
    assert_null(jc__store_path(NULL));

    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "einval.db");
    st = open_ok(path, 0);
    assert_error(jc__store_commit(st), JC_EINVAL, path);
    assert_error(jc__store_rollback(st), JC_EINVAL, path);
    uint8_t key[JC__KEY_LEN];
    make_key(key, 1);
    jc__entry_in e = {.key = key, .function = NULL, .version = "v1"};
    assert_error(jc__store_put(st, &e), JC_EINVAL, path);
    assert_error(jc__store_get(st, NULL, &(jc__hit){0}), JC_EINVAL, path);
    jc__store_close(st);
}

/* ---- read-only ---- */

static void store_readonly_reads_and_refuses_writes(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "readonly.db");
    jc__store *w = open_ok(path, 0);
    assert_int_equal(put_entry(w, 1, "one", 3, 1.0), 0);

    /* Opened beside a writer, as the inspection tool would be. */
    jc__store *ro = open_ok(path, JC__STORE_READONLY);
    jc__hit hit;
    assert_int_equal(get_entry(ro, 1, &hit), 1);
    assert_memory_equal(hit.result, "one", 3);
    assert_int_equal(put_entry(w, 2, "two", 3, 1.0), 0);
    assert_int_equal(get_entry(ro, 2, &hit), 1);

    assert_error(put_entry(ro, 3, "three", 5, 1.0), JC_EREADONLY, path);
    assert_error(touch_entry(ro, 2, 2.0), JC_EREADONLY, path);
    uint8_t key[JC__KEY_LEN];
    make_key(key, 1);
    assert_error(jc__store_delete(ro, key), JC_EREADONLY, path);
    assert_error(jc__store_begin(ro), JC_EREADONLY, path);
    jc__store_close(ro);
    jc__store_close(w);

    /* Alone, after the writer closed. */
    ro = open_ok(path, JC__STORE_READONLY);
    assert_int_equal(get_entry(ro, 2, &hit), 1);
    assert_memory_equal(hit.result, "two", 3);
    jc__store_close(ro);
    assert_int_equal(sql_int(path, "SELECT count(*) FROM entries"), 2);
}

/* ---- transactions ---- */

static void store_begin_commit_nesting(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "nesting.db");
    jc__store *st = open_ok(path, 0);

    assert_int_equal(jc__store_begin(st), 0);
    assert_int_equal(jc__store_begin(st), 0);
    assert_int_equal(put_entry(st, 1, "a", 1, 1.0), 0);
    assert_int_equal(jc__store_commit(st), 0); /* inner: nothing committed yet */
    assert_int_equal(sql_int(path, "SELECT count(*) FROM entries"), 0);
    assert_int_equal(jc__store_commit(st), 0); /* outer */
    assert_int_equal(sql_int(path, "SELECT count(*) FROM entries"), 1);
    assert_error(jc__store_commit(st), JC_EINVAL, path);
    jc__store_close(st);
}

static void store_rollback_discards(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "rollback.db");
    jc__store *st = open_ok(path, 0);
    jc__hit hit;

    assert_int_equal(jc__store_begin(st), 0);
    assert_int_equal(put_entry(st, 1, "a", 1, 1.0), 0);
    assert_int_equal(jc__store_rollback(st), 0);
    assert_int_equal(get_entry(st, 1, &hit), 0);

    /* An inner rollback dooms the whole transaction; the outer commit says so. */
    assert_int_equal(jc__store_begin(st), 0);
    assert_int_equal(put_entry(st, 2, "b", 1, 1.0), 0);
    assert_int_equal(jc__store_begin(st), 0);
    assert_int_equal(put_entry(st, 3, "c", 1, 1.0), 0);
    assert_int_equal(jc__store_rollback(st), 0);
    assert_error(jc__store_commit(st), JC_EIO, path);
    assert_int_equal(get_entry(st, 2, &hit), 0);
    assert_int_equal(get_entry(st, 3, &hit), 0);

    /* The store is usable afterwards. */
    assert_int_equal(jc__store_begin(st), 0);
    assert_int_equal(put_entry(st, 4, "d", 1, 1.0), 0);
    assert_int_equal(jc__store_commit(st), 0);
    jc__store_close(st);
    assert_int_equal(sql_int(path, "SELECT count(*) FROM entries"), 1);
}

static void store_close_commits_open_transaction(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "closecommit.db");
    jc__store *st = open_ok(path, 0);
    assert_int_equal(jc__store_begin(st), 0);
    assert_int_equal(put_entry(st, 1, "a", 1, 1.0), 0);
    assert_int_equal(jc__store_begin(st), 0);
    assert_int_equal(put_entry(st, 2, "b", 1, 1.0), 0);
    jc__store_close(st);

    st = open_ok(path, JC__STORE_READONLY);
    jc__hit hit;
    assert_int_equal(get_entry(st, 1, &hit), 1);
    assert_int_equal(get_entry(st, 2, &hit), 1);
    jc__store_close(st);
}

/* ---- concurrency ---- */

static void store_two_handles_interleave_transactions(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "twohandles.db");
    jc__store *a = open_ok(path, 0);
    jc__store *b = open_ok(path, 0);
    jc__hit hit;

    for (uint32_t i = 0; i < 100; i++) {
        jc__store *st = i % 2 ? a : b;
        assert_int_equal(jc__store_begin(st), 0);
        assert_int_equal(put_entry(st, i, &i, sizeof i, 1.0), 0);
        assert_int_equal(jc__store_commit(st), 0);
        /* The other handle sees it at once. */
        assert_int_equal(get_entry(i % 2 ? b : a, i, &hit), 1);
        assert_int_equal(touch_entry(i % 2 ? b : a, i, 2.0), 0);
    }
    jc__store_close(a);
    jc__store_close(b);
    assert_int_equal(sql_int(path, "SELECT count(*) FROM entries"), 100);
    assert_int_equal(sql_int(path, "SELECT sum(hits) FROM entries"), 100);
}

static void store_locked_file_is_ebusy_after_timeout(void **state)
{
    (void)state;
    if (jc_test_file_only()) /* SQLite's one writer at a time; a server takes many */
        return;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "busy.db");
    jc__store *a = open_ok(path, 0);
    jc__store *b = NULL;
    assert_int_equal(jc__store_open(path, 0, 100, &b), 0);
    jc__hit hit;

    assert_int_equal(jc__store_begin(a), 0);
    assert_int_equal(put_entry(a, 1, "a", 1, 1.0), 0);
    assert_error(jc__store_begin(b), JC_EBUSY, path);
    assert_error(put_entry(b, 2, "b", 1, 1.0), JC_EBUSY, path);
    /* WAL: a reader is never blocked by the writer, and sees only commits. */
    assert_int_equal(get_entry(b, 1, &hit), 0);
    assert_int_equal(jc__store_commit(a), 0);
    assert_int_equal(get_entry(b, 1, &hit), 1);
    assert_int_equal(jc__store_begin(b), 0);
    assert_int_equal(put_entry(b, 2, "b", 1, 1.0), 0);
    assert_int_equal(jc__store_commit(b), 0);
    jc__store_close(b);
    jc__store_close(a);
}

/* One writer process of store_two_processes_write_concurrently; the exit
 * status says whether every call succeeded (cmocka asserts belong to the
 * parent). */
static void writer_child(const char *path, uint32_t base)
{
    jc__store *st = NULL;
    int ok = jc__store_open(path, 0, 60000, &st) == 0;
    for (uint32_t t = 0; ok && t < 50; t++) {
        ok = jc__store_begin(st) == 0;
        for (uint32_t j = 0; ok && j < 10; j++) {
            uint32_t i = base + t * 10 + j;
            ok = put_entry(st, i, &i, sizeof i, 1.0) == 0;
        }
        ok = ok && jc__store_commit(st) == 0;
        /* And a hit recorded outside any transaction (autocommit). */
        jc__hit hit;
        ok = ok && get_entry(st, base + t * 10, &hit) == 1;
        ok = ok && touch_entry(st, base + t * 10, 2.0) == 0;
    }
    if (!ok)
        fprintf(stderr, "writer %u: %s\n", base, jc_errmsg());
    jc__store_close(st);
    _exit(ok ? 0 : 1);
}

static void store_two_processes_write_concurrently(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "twoprocs.db");
    pid_t pids[2];
    /* Both start on a missing file, so they also race to create the schema. */
    for (int k = 0; k < 2; k++) {
        pids[k] = fork();
        assert_true(pids[k] >= 0);
        if (pids[k] == 0)
            writer_child(path, (uint32_t)k * 100000);
    }
    for (int k = 0; k < 2; k++) {
        int status = 0;
        assert_int_equal(waitpid(pids[k], &status, 0), pids[k]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_int_equal(sql_int(path, "SELECT count(*) FROM entries"), 1000);
    assert_int_equal(sql_int(path, "SELECT sum(hits) FROM entries"), 100);
    if (!jc_test_pg())
        assert_sql_text(path, "PRAGMA integrity_check", "ok");
}

static void store_refuses_use_after_fork(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "fork.db");
    jc__store *st = open_ok(path, 0);
    assert_int_equal(put_entry(st, 1, "a", 1, 1.0), 0);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        jc__hit hit;
        int rc = get_entry(st, 1, &hit);
        jc__store_close(st); /* frees our memory, leaves the parent's connection */
        _exit(rc == JC_EINVAL ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    jc__hit hit;
    assert_int_equal(get_entry(st, 1, &hit), 1);
    assert_int_equal(put_entry(st, 2, "b", 1, 1.0), 0);
    jc__store_close(st);
    if (!jc_test_pg())
        assert_sql_text(path, "PRAGMA integrity_check", "ok");
}

static void store_commit_survives_killed_process(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "killed.db");
    jc__store_close(open_ok(path, 0));

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        jc__store *st = NULL;
        if (jc__store_open(path, 0, 0, &st) != 0 || jc__store_begin(st) != 0 ||
            put_entry(st, 1, "kept", 4, 1.0) != 0 || jc__store_commit(st) != 0 ||
            jc__store_begin(st) != 0 || put_entry(st, 2, "lost", 4, 1.0) != 0)
            _exit(1);
        raise(SIGKILL); /* mid-transaction, without closing */
        _exit(1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);

    jc__store *st = open_ok(path, 0);
    jc__hit hit;
    assert_int_equal(get_entry(st, 1, &hit), 1);
    assert_memory_equal(hit.result, "kept", 4);
    assert_int_equal(get_entry(st, 2, &hit), 0);
    jc__store_close(st);
    if (!jc_test_pg())
        assert_sql_text(path, "PRAGMA integrity_check", "ok");
}

static void store_now_is_wall_clock(void **state)
{
    (void)state;
    double now = jc__now();
    double t = (double)time(NULL);
    assert_true(now > t - 2 && now < t + 2);
}

/* Entries [from, to) stored after owner's claims, as a run stores its
 * results, then the claims dropped, each in a transaction of its own.
 * Returns the file's pages before the drop. */
static int64_t entries_then_drop(jc__store *st, const char *path, const char *owner, uint32_t from, uint32_t to)
{
    assert_int_equal(jc__store_begin(st), 0);
    for (uint32_t i = from; i < to; i++)
        assert_int_equal(put_entry(st, i, "a result of some twenty bytes", 29, jc__now()), 0);
    assert_int_equal(jc__store_commit(st), 0);
    int64_t pages = sql_int(path, "PRAGMA page_count");
    assert_int_equal(jc__store_begin(st), 0);
    assert_int_equal(jc__store_lease_drop(st, owner), 1);
    assert_int_equal(jc__store_commit(st), 0);
    return pages;
}

/* A run's claims (16 bytes a call) are written at its start and dropped at
 * its end, leaving a hole under the entries stored meanwhile: dropped, their
 * pages go back to the system when they are a sixteenth of the file or
 * more (a file of a million entries was 10% free pages after its cold run).
 * A drop of a few claims leaves the file as it is. */
static void store_lease_drop_gives_the_claims_pages_back(void **state)
{
    (void)state;
    if (jc_test_file_only()) /* pages of SQLite's file */
        return;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "claims-pages.db");
    jc__store *st = open_ok(path, 0);
    enum { CLAIMS = 80000, ROW = 4096, ENTRIES = 20000 };
    uint8_t *keys = malloc((size_t)ROW * JC__KEY_LEN);
    assert_non_null(keys);
    assert_int_equal(jc__store_begin(st), 0);
    assert_int_equal(jc__store_lease_owner(st, "host:1:run", jc__now() + 60, true), 0);
    for (uint32_t at = 0; at < CLAIMS; at += ROW) {
        for (uint32_t i = 0; i < ROW; i++)
            make_key(keys + (size_t)i * JC__KEY_LEN, 1000000 + at + i);
        assert_int_equal(jc__store_lease_add(st, "host:1:run", keys, ROW), 0);
    }
    assert_int_equal(jc__store_commit(st), 0);
    /* The entries stored after the claims, as a run stores its results. */
    int64_t pages_before = entries_then_drop(st, path, "host:1:run", 0, ENTRIES);
    int64_t free_after = sql_int(path, "PRAGMA freelist_count"), pages_after = sql_int(path, "PRAGMA page_count");
    if (free_after > 16 || pages_after > pages_before - 256)
        fail_msg("after the claims were dropped: %lld free pages, %lld pages (%lld before)", (long long)free_after,
                 (long long)pages_after, (long long)pages_before);
    for (uint32_t i = 0; i < ENTRIES; i += 997) { /* every entry still there, whole */
        jc__hit hit;
        assert_int_equal(get_entry(st, i, &hit), 1);
        assert_int_equal(hit.result_len, 29);
    }
    /* Fewer claims dropped (8,192: some 40 pages, under the 256 it takes):
     * a hole too small to move pages for, left for the next run's claims. */
    assert_int_equal(jc__store_begin(st), 0);
    assert_int_equal(jc__store_lease_owner(st, "host:2:run", jc__now() + 60, true), 0);
    for (uint32_t at = 0; at < 2 * ROW; at += ROW)
        assert_int_equal(jc__store_lease_add(st, "host:2:run", keys, ROW), 0);
    assert_int_equal(jc__store_commit(st), 0);
    int64_t pages_small = entries_then_drop(st, path, "host:2:run", ENTRIES, ENTRIES + 2000);
    int64_t free_small = sql_int(path, "PRAGMA freelist_count");
    if (free_small < 16 || sql_int(path, "PRAGMA page_count") != pages_small)
        fail_msg("a small drop: %lld free pages, %lld pages (%lld before)", (long long)free_small,
                 (long long)sql_int(path, "PRAGMA page_count"), (long long)pages_small);
    free(keys);
    jc__store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(store_put_get_roundtrip),
        cmocka_unit_test(store_get_many_answers_each_key_once_in_any_order),
        cmocka_unit_test(store_get_absent_returns_0),
        cmocka_unit_test(store_put_overwrite_replaces_result_and_keeps_hits),
        cmocka_unit_test(store_touch_increments_hits),
        cmocka_unit_test(store_delete_removes_entry),
        cmocka_unit_test(store_empty_and_large_results),
        cmocka_unit_test(store_reopen_persists),
        cmocka_unit_test(store_file_is_wal_with_schema_version),
        cmocka_unit_test(store_empty_file_gets_schema),
        cmocka_unit_test(store_newer_schema_is_eschema),
        cmocka_unit_test(store_text_file_is_ecorrupt),
        cmocka_unit_test(store_foreign_database_is_ecorrupt),
        cmocka_unit_test(store_foreign_database_with_our_version_is_ecorrupt),
        cmocka_unit_test(store_truncated_file_is_ecorrupt),
        cmocka_unit_test(store_damaged_pages_do_not_crash),
        cmocka_unit_test(store_garbage_after_sqlite_header_is_ecorrupt),
        cmocka_unit_test(store_missing_directory_is_eio),
        cmocka_unit_test(store_unwritable_directory_is_eio),
        cmocka_unit_test(store_write_protected_file_is_eio),
        cmocka_unit_test(store_readonly_wal_in_locked_directory_is_eio),
        cmocka_unit_test(store_directory_as_path_is_eio),
        cmocka_unit_test(store_nocreate_missing_file_is_enotfound),
        cmocka_unit_test(store_invalid_arguments_are_einval),
        cmocka_unit_test(store_readonly_reads_and_refuses_writes),
        cmocka_unit_test(store_begin_commit_nesting),
        cmocka_unit_test(store_rollback_discards),
        cmocka_unit_test(store_close_commits_open_transaction),
        cmocka_unit_test(store_two_handles_interleave_transactions),
        cmocka_unit_test(store_locked_file_is_ebusy_after_timeout),
        cmocka_unit_test(store_two_processes_write_concurrently),
        cmocka_unit_test(store_refuses_use_after_fork),
        cmocka_unit_test(store_commit_survives_killed_process),
        cmocka_unit_test(store_now_is_wall_clock),
        cmocka_unit_test(store_lease_drop_gives_the_claims_pages_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
