/*
 * Tests of jc_cache_open's refusals: every file that is not a usable cache
 * gives NULL with a code and a message naming the file, never a crash, and
 * a refused file is left exactly as it was.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jobcache.h>

/* square/v1 comes from testutil.h. */
#define JC_TEST_WANT_SQUARE
#include "testutil.h"

#define PATH_CAP 4096

/* Opening path with flags fails with code, and the message names path. */
static void assert_open_fails(const char *path, unsigned flags, int code)
{
    jc_cache *c = jc_cache_open(path, &(jc_cache_options){.flags = flags});
    if (c) {
        jc_cache_close(c);
        fail_msg("jc_cache_open('%s') succeeded; expected %s", path, jc_err_name(code));
    }
    if (jc_errcode() != code)
        fail_msg("jc_cache_open('%s'): %s (%s); expected %s", path, jc_err_name(jc_errcode()), jc_errmsg(),
                 jc_err_name(code));
    assert_contains(jc_errmsg(), path);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* A real cache with n entries (square(0..n)), closed. */
static void make_cache(const char *path, int n)
{
    jc_cache *c = jc_cache_open(path, NULL);
    if (!c)
        fail_msg("jc_cache_open('%s'): %s", path, jc_errmsg());
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
    for (int i = 0; i < n; i++)
        jc_delayed(b, square, jc_int(i));
    jc_results *res = jc_run(b);
    assert_non_null(res);
    assert_int_equal(jc_results_status(res), JC_OK);
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
}

static void cache_open_a_missing_directory_is_eio_naming_the_path(void **state)
{
    (void)state;
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/no-such-dir/sub/cache.db", jc_test_dir());
    assert_open_fails(path, 0, JC_EIO);
    assert_contains(jc_errmsg(), "does not exist");
    char dir[PATH_CAP];
    snprintf(dir, sizeof dir, "%s/no-such-dir", jc_test_dir());
    assert_false(jc_test_exists(dir)); /* nothing was created on the way */
}

static void cache_open_a_text_file_is_ecorrupt(void **state)
{
    (void)state;
    if (jc_test_file_only()) /* the server's side: test_pg, test_store */
        return;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "text.db");
    static const char text[] = "this is a text file, not a cache\nsecond line\n";
    write_file(path, text, sizeof text - 1);
    assert_open_fails(path, 0, JC_ECORRUPT);
    assert_open_fails(path, JC_CACHE_READONLY, JC_ECORRUPT);
    /* Left alone. */
    size_t len = 0;
    char *after = jc_test_read_file(path, &len);
    assert_non_null(after);
    assert_int_equal(len, sizeof text - 1);
    assert_memory_equal(after, text, len);
    free(after);
}

static void cache_open_another_applications_sqlite_file_is_ecorrupt(void **state)
{
    (void)state;
    if (jc_test_file_only()) /* the server's side: test_pg, test_store */
        return;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "foreign.db");
    write_file(path, "", 0);
    assert_int_equal(jc_test_sql_exec(path, "CREATE TABLE t (x); INSERT INTO t VALUES (1);"), 0);
    assert_open_fails(path, 0, JC_ECORRUPT);
    assert_contains(jc_errmsg(), "not a jobcache cache");
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM t"), 1);
}

static void cache_open_a_directory_as_the_path_is_eio(void **state)
{
    (void)state;
    assert_open_fails(jc_test_dir(), 0, JC_EIO);
}

/* Opens a damaged file; when open succeeds lazily, the first run must fail
 * cleanly (NULL or a failed status), never crash. Returns what happened:
 * 0 open refused, 1 run refused, 2 run gave failed results, 3 run was ok. */
static int open_and_run_damaged(const char *path)
{
    jc_cache *c = jc_cache_open(path, NULL);
    if (!c) {
        int code = jc_errcode();
        if (code != JC_ECORRUPT && code != JC_EIO)
            fail_msg("jc_cache_open('%s'): unexpected %s: %s", path, jc_err_name(code), jc_errmsg());
        assert_contains(jc_errmsg(), path);
        return 0;
    }
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
    assert_non_null(b);
    for (int i = 0; i < 300; i++)
        jc_delayed(b, square, jc_int(i));
    jc_results *res = jc_run(b);
    int what;
    if (!res) {
        assert_contains(jc_errmsg(), path);
        what = 1;
    } else {
        /* Whatever came back is right: a damaged file may lose entries, never
         * give wrong ones. */
        for (size_t k = 0; k < 300; k++)
            if (jc_result_status(res, k) == JC_STATUS_OK)
                assert_int_equal(jc_result_int(res, k), (int64_t)k * (int64_t)k);
        what = jc_results_status(res) == JC_OK ? 3 : 2;
        if (what == 2)
            assert_contains(jc_results_message(res), path);
    }
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
    return what;
}

static void cache_open_a_truncated_cache_file_is_refused_or_fails_cleanly(void **state)
{
    (void)state;
    if (jc_test_file_only()) /* the server's side: test_pg, test_store */
        return;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "truncated.db");
    make_cache(path, 2000);
    size_t full = 0;
    void *bytes = jc_test_read_file(path, &full);
    assert_non_null(bytes);
    assert_true(full > 32768);

    /* Inside the 100-byte header, the first page, and half the file. */
    const size_t cuts[] = {50, 100, 1000, 4096, 4096 + 100, full / 2, full - 4096};
    int outcome[sizeof cuts / sizeof *cuts];
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        jc_test_remove_db(path);
        write_file(path, bytes, cuts[i]);
        outcome[i] = open_and_run_damaged(path);
        static const char *const what[] = {"open refused", "run refused", "run failed", "run ok"};
        print_message("cut to %zu of %zu bytes: %s (%s)\n", cuts[i], full, what[outcome[i]],
                      outcome[i] == 1 ? jc_errmsg() : "");
    }
    free(bytes);
    /* A file cut inside its header is refused when opened. */
    assert_int_equal(outcome[0], 0);
    assert_int_equal(outcome[1], 0);
    /* None of the damaged files passes as a healthy cache. */
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++)
        if (outcome[i] == 3)
            fail_msg("a cache cut to %zu of %zu bytes ran as if healthy", cuts[i], full);
}

static void cache_open_a_newer_schema_is_eschema_and_the_file_is_left_byte_identical(void **state)
{
    (void)state;
    if (jc_test_file_only()) /* the server's side: test_pg, test_store */
        return;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "newer.db");
    make_cache(path, 10);
    assert_int_equal(jc_test_sql_exec(path, "PRAGMA user_version = 99"), 0);
    size_t len0 = 0, len1 = 0;
    void *before = jc_test_read_file(path, &len0);
    assert_non_null(before);

    assert_open_fails(path, 0, JC_ESCHEMA);
    assert_contains(jc_errmsg(), "99");
    assert_open_fails(path, JC_CACHE_READONLY, JC_ESCHEMA);
    assert_open_fails(path, JC_CACHE_RECOMPUTE, JC_ESCHEMA);

    void *after = jc_test_read_file(path, &len1);
    assert_non_null(after);
    assert_int_equal(len1, len0);
    assert_memory_equal(after, before, len0);
    free(before);
    free(after);
    /* Nothing stored is lost. */
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), 10);
}

static void cache_open_readonly_with_recompute_is_einval(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "contradiction.db");
    assert_null(jc_cache_open(path, &(jc_cache_options){.flags = JC_CACHE_READONLY | JC_CACHE_RECOMPUTE}));
    assert_int_equal(jc_errcode(), JC_EINVAL);
    assert_contains(jc_errmsg(), "JC_CACHE_READONLY");
    assert_contains(jc_errmsg(), "JC_CACHE_RECOMPUTE");
    assert_false(jc_test_exists(path));

    assert_null(jc_cache_open(path, &(jc_cache_options){.max_size = -1}));
    assert_int_equal(jc_errcode(), JC_EINVAL);
    assert_contains(jc_errmsg(), "max_size");
}

static void cache_open_nocreate_on_a_missing_file_is_enotfound(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "nocreate.db");
    assert_open_fails(path, JC_CACHE_NOCREATE, JC_ENOTFOUND);
    assert_false(jc_test_exists(path));
    make_cache(path, 1);
    jc_cache *c = jc_cache_open(path, &(jc_cache_options){.flags = JC_CACHE_NOCREATE});
    assert_non_null(c);
    assert_string_equal(jc_cache_path(c), path);
    jc_cache_close(c);
}

static void cache_open_an_unwritable_directory_is_eio(void **state)
{
    (void)state;
    if (geteuid() == 0)
        skip(); /* root writes anywhere */
    char dir[PATH_CAP - 64], path[PATH_CAP];
    snprintf(dir, sizeof dir, "%s/unwritable", jc_test_dir());
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/cache.db", dir);
    jc_test_remove_db(path);
    assert_int_equal(chmod(dir, 0555), 0);
    jc_cache *c = jc_cache_open(path, NULL);
    int code = jc_errcode();
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", jc_errmsg());
    chmod(dir, 0755);
    if (c) {
        jc_cache_close(c);
        fail_msg("jc_cache_open('%s') in an unwritable directory succeeded", path);
    }
    assert_int_equal(code, JC_EIO);
    assert_contains(msg, path);
    assert_contains(msg, "not writable");
}

static void cache_open_a_cache_file_that_becomes_unwritable_can_still_be_read(void **state)
{
    (void)state;
    if (geteuid() == 0)
        skip();
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "write-protected.db");
    make_cache(path, 3);
    assert_int_equal(chmod(path, 0444), 0);
    jc_cache *c = jc_cache_open(path, NULL);
    int code = jc_errcode();
    jc_cache *ro = jc_cache_open(path, &(jc_cache_options){.flags = JC_CACHE_READONLY});
    chmod(path, 0644);
    if (c) {
        jc_cache_close(c);
        jc_cache_close(ro);
        fail_msg("a write-protected cache opened for writing");
    }
    assert_int_equal(code, JC_EIO);
    assert_non_null(ro);
    jc_cache_close(ro);
}

static void cache_open_close_and_path_accept_null(void **state)
{
    (void)state;
    jc_cache_close(NULL);
    assert_null(jc_cache_path(NULL));
}

int main(void)
{
    unsetenv("JOBCACHE_PATH");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cache_open_a_missing_directory_is_eio_naming_the_path),
        cmocka_unit_test(cache_open_a_text_file_is_ecorrupt),
        cmocka_unit_test(cache_open_another_applications_sqlite_file_is_ecorrupt),
        cmocka_unit_test(cache_open_a_directory_as_the_path_is_eio),
        cmocka_unit_test(cache_open_a_truncated_cache_file_is_refused_or_fails_cleanly),
        cmocka_unit_test(cache_open_a_newer_schema_is_eschema_and_the_file_is_left_byte_identical),
        cmocka_unit_test(cache_open_readonly_with_recompute_is_einval),
        cmocka_unit_test(cache_open_nocreate_on_a_missing_file_is_enotfound),
        cmocka_unit_test(cache_open_an_unwritable_directory_is_eio),
        cmocka_unit_test(cache_open_a_cache_file_that_becomes_unwritable_can_still_be_read),
        cmocka_unit_test(cache_open_close_and_path_accept_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
