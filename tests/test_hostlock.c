/*
 * One host at a time on a network file system (issue 26; hostlock.c): a
 * cache file there records the host using it, and another host is
 * refused, naming it, until the record ends (close, expiry, unlock-host).
 * JC_TEST_NETWORK_FS makes the test directory count as a network file
 * system and JC_TEST_HOSTNAME names the host a process claims to be: the
 * switches exist for these tests only.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <jobcache.h>

#include "jc_internal.h"
#include "testutil.h"

#define PATH_CAP 4096

static int sq(jc_call *call)
{
    return jc_return_int(call, jc_arg_int(call, 0) * jc_arg_int(call, 0));
}
JC_FUNCTION(sq, "v1");

static jc_cache *open_as(const char *path, const char *host)
{
    setenv("JC_TEST_HOSTNAME", host, 1);
    return jc_cache_open(path, NULL);
}

static char *record_of(const char *path)
{
    char rec[PATH_CAP + 8];
    snprintf(rec, sizeof rec, "%s.host", path);
    return jc_test_read_file(rec, NULL);
}

static int setup(void **state)
{
    (void)state;
    setenv("JC_TEST_NETWORK_FS", "NFS", 1);
    unsetenv("JC_TEST_HOST_TTL");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unsetenv("JC_TEST_NETWORK_FS");
    unsetenv("JC_TEST_HOSTNAME");
    unsetenv("JC_TEST_HOST_TTL");
    return 0;
}

/* On a local file system nothing is recorded: hosts are not an issue. */
static void hostlock_local_file_system_records_nothing(void **state)
{
    (void)state;
    unsetenv("JC_TEST_NETWORK_FS");
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "host-local.db");
    jc_test_remove_db(path);
    jc_cache *c = open_as(path, "a");
    assert_non_null(c);
    char *rec = record_of(path);
    assert_null(rec);
    jc_cache_close(c);
}

/* Host b is refused while host a has the file open, with an error naming
 * a, the file system and the ways out; processes of host a share it; once
 * a closes, b opens it. */
static void hostlock_a_second_host_is_refused_naming_the_first(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "host-two.db");
    jc_test_remove_db(path);
    jc_cache *a = open_as(path, "node-a");
    assert_non_null(a);
    char *rec = record_of(path);
    assert_non_null(rec);
    assert_contains(rec, "host node-a\n");
    free(rec);
    jc_value *v = jc_memo(a, sq, jc_int(7));
    assert_non_null(v);
    jc_value_free(v);

    jc_test_bytes before = jc_test_snapshot(path);
    assert_null(open_as(path, "node-b"));
    assert_int_equal(jc_errcode(), JC_EBUSY);
    assert_contains(jc_errmsg(), "network file system (NFS)");
    assert_contains(jc_errmsg(), "in use on host 'node-a'");
    assert_contains(jc_errmsg(), "jobcache merge");
    assert_contains(jc_errmsg(), "jobcache unlock-host");
    jc_test_assert_unchanged(path, before);
    /* Read-only too: the WAL index is shared even by readers. */
    setenv("JC_TEST_HOSTNAME", "node-b", 1);
    assert_null(jc_cache_open(path, &(jc_cache_options){.flags = JC_CACHE_READONLY}));
    assert_int_equal(jc_errcode(), JC_EBUSY);

    /* Another process of node-a (here, another handle) shares it. */
    jc_cache *a2 = open_as(path, "node-a");
    assert_non_null(a2);
    jc_cache_close(a2);
    jc_cache_close(a);
    rec = record_of(path);
    assert_null(rec); /* removed at close */
    jc_cache *b = open_as(path, "node-b");
    assert_non_null(b);
    v = jc_memo(b, sq, jc_int(7));
    assert_non_null(v);
    int64_t got = 0;
    assert_int_equal(jc_value_get_int(v, &got), 0);
    assert_int_equal(got, 49);
    jc_value_free(v);
    jc_cache_close(b);
}

/* A record left by a host that crashed expires: then another host takes
 * the file over. A record that does not parse counts as expired. */
static void hostlock_an_expired_record_is_taken_over(void **state)
{
    (void)state;
    char path[PATH_CAP], rec[PATH_CAP + 8];
    const char *bodies[] = {"host node-c\npid 1\nexpires %lld\n", "garbage %lld\n"};
    for (int k = 0; k < 2; k++) {
        jc_test_path(path, sizeof path, "host-expired.db");
        jc_test_remove_db(path);
        snprintf(rec, sizeof rec, "%s.host", path);
        FILE *f = fopen(rec, "w");
        assert_non_null(f);
        fprintf(f, bodies[k], (long long)time(NULL) - 5);
        fclose(f);
        jc_cache *b = open_as(path, "node-b");
        assert_non_null(b);
        char *text = record_of(path);
        assert_non_null(text);
        assert_contains(text, "host node-b\n");
        free(text);
        jc_cache_close(b);
    }
}

/* The record is renewed while the file is open: past its lifetime another
 * host is still refused. */
static void hostlock_the_record_is_renewed_while_open(void **state)
{
    (void)state;
    setenv("JC_TEST_HOST_TTL", "2", 1);
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "host-renew.db");
    jc_test_remove_db(path);
    jc_cache *a = open_as(path, "node-a");
    assert_non_null(a);
    sleep(3);
    assert_null(open_as(path, "node-b"));
    assert_int_equal(jc_errcode(), JC_EBUSY);
    jc_cache_close(a);
    unsetenv("JC_TEST_HOST_TTL");
}

/* jc_cache_unlock_host (jobcache unlock-host) removes the record without
 * opening the file, and names the host it named. */
static void hostlock_unlock_host_clears_the_record(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "host-unlock.db");
    jc_test_remove_db(path);
    jc_cache *a = open_as(path, "node-a");
    assert_non_null(a);
    char *host = NULL;
    assert_int_equal(jc_cache_unlock_host(path, &host), 0);
    assert_non_null(host);
    assert_string_equal(host, "node-a");
    free(host);
    assert_int_equal(jc_cache_unlock_host(path, &host), 0);
    assert_null(host); /* none left */
    jc_cache_close(a);
    jc_cache *b = open_as(path, "node-b");
    assert_non_null(b);
    jc_cache_close(b);
    expect_rc(jc_cache_unlock_host(NULL, NULL), JC_EINVAL, "NULL path");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(hostlock_local_file_system_records_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(hostlock_a_second_host_is_refused_naming_the_first, setup, teardown),
        cmocka_unit_test_setup_teardown(hostlock_an_expired_record_is_taken_over, setup, teardown),
        cmocka_unit_test_setup_teardown(hostlock_the_record_is_renewed_while_open, setup, teardown),
        cmocka_unit_test_setup_teardown(hostlock_unlock_host_clears_the_record, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
