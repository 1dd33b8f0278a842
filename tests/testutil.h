/*
 * Helpers shared by the tests: a scratch directory and fresh file names in it.
 *
 * The scratch directory is $JC_TEST_TMPDIR (CMake gives each test its own),
 * else /tmp/jobcache-test. It is created on first use like `mkdir -p`.
 */
#ifndef JC_TESTUTIL_H
#define JC_TESTUTIL_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* mkdir -p; returns 0 or -1 with errno set. */
static inline int jc_test_mkdirs(const char *dir)
{
    char buf[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, dir, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* The scratch directory, created if needed; aborts the test run if it
 * cannot be. */
static inline const char *jc_test_dir(void)
{
    const char *dir = getenv("JC_TEST_TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp/jobcache-test";
    if (jc_test_mkdirs(dir) != 0) {
        fprintf(stderr, "cannot create test directory '%s': %s\n", dir, strerror(errno));
        exit(2);
    }
    return dir;
}

/* Removes path and the -wal, -shm and -journal files SQLite keeps beside it. */
static inline void jc_test_remove_db(const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char buf[4096];
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        snprintf(buf, sizeof buf, "%s%s", path, suffixes[i]);
        unlink(buf);
    }
}

/* Writes "<scratch dir>/<name>" into buf and removes whatever a previous run
 * left under that name, so every test starts from no file. */
static inline const char *jc_test_path(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", jc_test_dir(), name);
    jc_test_remove_db(buf);
    return buf;
}

#endif
