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
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
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

/* The records in path's FILE.hosts/: how many, and whether one is of host. */
static int records(const char *path, const char *host)
{
    char dir[PATH_CAP + 8];
    snprintf(dir, sizeof dir, "%s.hosts", path);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0, of = 0;
    struct dirent *e;
    size_t hl = host ? strlen(host) : 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        n++;
        of += host && strncmp(e->d_name, host, hl) == 0 && e->d_name[hl] == '~';
    }
    closedir(d);
    return host ? of : n;
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
    assert_int_equal(records(path, NULL), 0);
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
    assert_int_equal(records(path, "node-a"), 1);
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

    /* Another process of node-a (here, another handle) shares it; one
     * closing leaves the other's record. */
    jc_cache *a2 = open_as(path, "node-a");
    assert_non_null(a2);
    assert_int_equal(records(path, "node-a"), 2);
    jc_cache_close(a2);
    assert_int_equal(records(path, "node-a"), 1);
    assert_null(open_as(path, "node-b"));
    jc_cache_close(a);
    assert_int_equal(records(path, NULL), 0); /* removed at close */
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

/* A record left by a host that crashed dies when it is not touched for
 * its lifetime (judged by the file's mtime, the server's clock): then
 * another host opens the file, and the dead record is removed. */
static void hostlock_a_dead_record_is_taken_over(void **state)
{
    (void)state;
    char path[PATH_CAP], dir[PATH_CAP + 8], rec[PATH_CAP + 64];
    jc_test_path(path, sizeof path, "host-dead.db");
    jc_test_remove_db(path);
    snprintf(dir, sizeof dir, "%s.hosts", path);
    mkdir(dir, 0777);
    snprintf(rec, sizeof rec, "%s/node-c~boot.1.0", dir);
    FILE *f = fopen(rec, "w");
    assert_non_null(f);
    fputs("host node-c\npid 1\n", f);
    fclose(f);
    /* Live: refused. */
    assert_null(open_as(path, "node-b"));
    assert_int_equal(jc_errcode(), JC_EBUSY);
    assert_contains(jc_errmsg(), "'node-c'");
    /* Untouched for 10 minutes: dead. */
    struct timespec old[2] = {{.tv_sec = time(NULL) - 600}, {.tv_sec = time(NULL) - 600}};
    assert_int_equal(utimensat(AT_FDCWD, rec, old, 0), 0);
    jc_cache *b = open_as(path, "node-b");
    assert_non_null(b);
    assert_int_equal(records(path, "node-c"), 0);
    assert_int_equal(records(path, "node-b"), 1);
    jc_cache_close(b);
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

/* A host whose record was cleared while it lived, and whose file another
 * host then opened, has lost it: it writes nothing more, and says why. */
static void hostlock_a_process_that_lost_the_file_writes_nothing(void **state)
{
    (void)state;
    setenv("JC_TEST_HOST_TTL", "60", 1);
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "host-lost.db");
    jc_test_remove_db(path);
    jc_cache *a = open_as(path, "node-a");
    assert_non_null(a);
    char *hosts = NULL;
    assert_int_equal(jc_cache_unlock_host(path, &hosts), 0);
    assert_string_equal(hosts, "node-a");
    free(hosts);
    jc_cache *b = open_as(path, "node-b");
    assert_non_null(b);
    /* At once, before a's next renewal: a write looks. */
    expect_rc(jc_cache_config_set(a, "log-runs", "5"), JC_EIO, "host 'node-b' has opened it meanwhile");
    assert_int_equal(jc_cache_config_set(b, "log-runs", "5"), 0);
    jc_cache_close(b);
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
        cmocka_unit_test_setup_teardown(hostlock_a_dead_record_is_taken_over, setup, teardown),
        cmocka_unit_test_setup_teardown(hostlock_a_process_that_lost_the_file_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(hostlock_the_record_is_renewed_while_open, setup, teardown),
        cmocka_unit_test_setup_teardown(hostlock_unlock_host_clears_the_record, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
