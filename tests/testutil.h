/*
 * Helpers shared by the tests: a scratch directory and fresh file names in it.
 *
 * The scratch directory is $JC_TEST_TMPDIR (CMake gives each test its own),
 * else /tmp/jobcache-test. It is created on first use like `mkdir -p`.
 */
#ifndef JC_TESTUTIL_H
#define JC_TESTUTIL_H

#include <errno.h>
#include <stdbool.h>
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

/* Removes the -wal, -shm and -journal files SQLite keeps beside path. */
static inline void jc_test_remove_db_sidecars(const char *path)
{
    static const char *const suffixes[] = {"-wal", "-shm", "-journal"};
    char buf[4096];
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        snprintf(buf, sizeof buf, "%s%s", path, suffixes[i]);
        unlink(buf);
    }
}

/* ---- the same tests on the PostgreSQL store (issue 26) ----
 *
 * A test binary run with JC_TEST_PG=DIR (CTest's *_pg tests) works on the
 * tests' PostgreSQL server that tests/pg_server.sh started in DIR: each
 * jc_test_path is then a connection URI naming a schema of its own, and the
 * jc_test_sql_* helpers below run their query there. Tables and columns are
 * named alike in both stores, so one test body checks both. */
#include <libpq-fe.h>

/* The server's directory when this run is on PostgreSQL, else NULL. */
static inline const char *jc_test_pg(void)
{
    const char *d = getenv("JC_TEST_PG");
    return d && *d ? d : NULL;
}

static inline bool jc_test_is_pg_location(const char *path)
{
    return strncmp(path, "postgresql://", 13) == 0;
}

/* Called first in main: a run on PostgreSQL whose server could not be had
 * (no binaries on this machine) skips as a whole, saying why; CTest counts
 * exit 77 as skipped. */
static inline void jc_test_pg_or_skip(void)
{
    const char *dir = jc_test_pg();
    if (!dir)
        return;
    char f[4096];
    snprintf(f, sizeof f, "%s/skipped", dir);
    FILE *in = fopen(f, "r");
    if (in) {
        char why[512] = "";
        if (!fgets(why, sizeof why, in))
            why[0] = '\0';
        fclose(in);
        fprintf(stderr, "skipped: no PostgreSQL server for the tests: %s", why);
        exit(77);
    }
    snprintf(f, sizeof f, "%s/uri", dir);
    if (access(f, R_OK) != 0) {
        fprintf(stderr, "JC_TEST_PG=%s: no server there (tests/pg_server.sh start %s)\n", dir, dir);
        exit(2);
    }
}

/* The schema a PostgreSQL test location names (after search_path%3D). */
static inline const char *jc_test_pg_schema(const char *path)
{
    const char *s = strstr(path, "search_path%3D");
    return s ? s + 14 : "";
}

/* A connection to the tests' server, or NULL with a message. */
static inline PGconn *jc_test_pg_connect(void)
{
    char uri[4200];
    snprintf(uri, sizeof uri, "postgresql:///jobcache?host=%s&user=jobcache", jc_test_pg());
    PGconn *c = PQconnectdb(uri);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "cannot connect to the tests' server at %s: %s", jc_test_pg(), PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    return c;
}

/* The parenthesis closing the one at open, or NULL. */
static inline const char *jc_test_close_paren(const char *open)
{
    int depth = 0;
    for (const char *p = open; *p; p++) {
        depth += *p == '(';
        depth -= *p == ')';
        if (depth == 0)
            return p;
    }
    return NULL;
}

/* Runs sql in the schema of location path (a search_path set by a
 * parameter, never pasted); the first column of the first row as a new
 * string in *text (may be NULL). 0, or -1 with a message on stderr. */
static inline int jc_test_pg_sql(const char *path, const char *sql, char **text, bool quiet)
{
    if (text)
        *text = NULL;
    PGconn *c = jc_test_pg_connect();
    if (!c)
        return -1;
    const char *schema = jc_test_pg_schema(path);
    PQclear(PQexecParams(c, "SELECT set_config('search_path', $1, false)", 1, NULL, &schema, NULL, NULL, 0));
    /* The tests' statements are SQLite's: its rowid is the column id here,
     * a blob x'0a1b' is '\x0a1b'::bytea, randomblob(16) 16 random bytes. */
    char q[8192];
    size_t o = 0;
    for (const char *p = sql; *p && o + 40 < sizeof q; p++) {
        bool word_start = p == sql || !((p[-1] >= 'a' && p[-1] <= 'z') || p[-1] == '_');
        if (word_start && strncmp(p, "rowid", 5) == 0 && !((p[5] >= 'a' && p[5] <= 'z') || p[5] == '_')) {
            q[o++] = 'i';
            q[o++] = 'd';
            p += 4;
            continue;
        }
        if (word_start && strncmp(p, "hex(", 4) == 0) { /* SQLite's hex() is upper case */
            o += (size_t)snprintf(q + o, sizeof q - o, "upper(encode(");
            const char *close = jc_test_close_paren(p + 3);
            if (close && (size_t)(close - p) + o + 20 < sizeof q) {
                o += (size_t)snprintf(q + o, sizeof q - o, "%.*s, 'hex'))", (int)(close - p - 4), p + 4);
                p = close;
                continue;
            }
        }
        if (word_start && strncmp(p, "zeroblob(", 9) == 0) {
            const char *close = jc_test_close_paren(p + 8);
            if (close && (size_t)(close - p) + o + 40 < sizeof q) {
                o += (size_t)snprintf(q + o, sizeof q - o, "decode(repeat('00', %.*s), 'hex')", (int)(close - p - 9),
                                      p + 9);
                p = close;
                continue;
            }
        }
        if (strncmp(p, " WHERE 1", 8) == 0 && (p[8] == '\0' || p[8] == ';')) {
            o += (size_t)snprintf(q + o, sizeof q - o, " WHERE true");
            p += 7;
            continue;
        }
        if (word_start && strncmp(p, "char(", 5) == 0) { /* SQLite's char(N) is chr(N) */
            o += (size_t)snprintf(q + o, sizeof q - o, "chr(");
            p += 4;
            continue;
        }
        if (word_start && strncmp(p, "randomblob(16)", 14) == 0) {
            o += (size_t)snprintf(q + o, sizeof q - o, "uuid_send(gen_random_uuid())");
            p += 13;
            continue;
        }
        if (word_start && p[0] == 'x' && p[1] == '\'') {
            const char *end = strchr(p + 2, '\'');
            if (end && (size_t)(end - p) + o + 20 < sizeof q) {
                o += (size_t)snprintf(q + o, sizeof q - o, "'\\x%.*s'::bytea", (int)(end - p - 2), p + 2);
                p = end;
                continue;
            }
        }
        q[o++] = *p;
    }
    q[o] = '\0';
    PGresult *r = PQexec(c, q);
    int rc = PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc && !quiet)
        fprintf(stderr, "jc_test_sql('%s', \"%s\"): %s", path, sql, PQresultErrorMessage(r));
    if (!rc && text) {
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
            *text = strdup(PQgetvalue(r, 0, 0));
        else
            rc = 1; /* no row */
    }
    PQclear(r);
    PQfinish(c);
    return rc;
}

/* Drops the schema of location path and everything in it. */
static inline void jc_test_pg_drop(const char *path)
{
    PGconn *c = jc_test_pg_connect();
    if (!c)
        return;
    const char *schema = jc_test_pg_schema(path);
    char *id = PQescapeIdentifier(c, schema, strlen(schema));
    if (id) {
        char sql[300];
        snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", id); /* quoted by libpq */
        PQclear(PQexec(c, sql));
        PQfreemem(id);
    }
    PQfinish(c);
}

/* Whether this test looks at the cache as a file (its size, its -wal,
 * SQLite's own statements): on PostgreSQL it is skipped (cmocka's skip()),
 * saying so. Use as `if (jc_test_file_only()) return;` before anything. */
#define jc_test_file_only()                                                                            \
    (jc_test_pg() ? (fprintf(stderr, "skipped on PostgreSQL: this test looks at the cache file\n"),     \
                     skip(), true)                                                                     \
                  : false)

/* Removes path and its sidecar files (on PostgreSQL: its schema). */
static inline void jc_test_remove_db(const char *path)
{
    if (jc_test_is_pg_location(path)) {
        jc_test_pg_drop(path);
        return;
    }
    unlink(path);
    jc_test_remove_db_sidecars(path);
}

/* Runs fn(ctx) in a child process in which dir is a read-only bind mount,
 * or a small tmpfs (a private mount namespace: unshare(CLONE_NEWNS)), as a
 * cache on a read-only share or mount, or on a disk that fills, is seen. Returns the child's exit status (fn's
 * return value), or -1 when this process may not make a mount namespace
 * (not root), with the reason on stderr: the caller skips. Root ignores
 * file modes, so a read-only mount is the way to test them as root. */
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
/* How jc_test_in_mount mounts dir. */
enum { JC_TEST_READONLY_BIND, JC_TEST_SMALL_TMPFS };

static inline int jc_test_in_mount(const char *dir, int kind, const char *tmpfs_size, int (*fn)(void *ctx),
                                   void *ctx)
{
    if (geteuid() != 0) {
        fprintf(stderr, "skipped: a private mount needs root (unshare -m)\n");
        return -1;
    }
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(pipefd[0]);
        char ok = 1;
        char opts[64];
        snprintf(opts, sizeof opts, "size=%s", tmpfs_size ? tmpfs_size : "1m");
        if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
            (kind == JC_TEST_READONLY_BIND
                 ? mount(dir, dir, NULL, MS_BIND, NULL) != 0 ||
                       mount(NULL, dir, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) != 0
                 : mount("tmpfs", dir, "tmpfs", 0, opts) != 0)) {
            fprintf(stderr, "skipped: cannot mount over '%s': %s\n", dir, strerror(errno));
            ok = 0;
        }
        if (write(pipefd[1], &ok, 1) != 1 || !ok)
            _exit(0);
        close(pipefd[1]);
        _exit(fn(ctx));
    }
    close(pipefd[1]);
    char ok = 0;
    if (read(pipefd[0], &ok, 1) != 1)
        ok = 0;
    close(pipefd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!ok)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static inline int jc_test_in_readonly_mount(const char *dir, int (*fn)(void *ctx), void *ctx)
{
    return jc_test_in_mount(dir, JC_TEST_READONLY_BIND, NULL, fn, ctx);
}

/* Writes "<scratch dir>/<name>" into buf (on PostgreSQL, for a cache's
 * name: a location naming a schema of this test binary's and name's own). */
static inline const char *jc_test_location(char *buf, size_t size, const char *name)
{
    /* A cache's name ends in .db or .jobcache, or has no extension; other
     * names (x.err, x.txt) are files on either store. */
    const char *dot = strrchr(name, '.');
    bool cache = !dot || strcmp(dot, ".db") == 0 || strcmp(dot, ".jobcache") == 0;
    if (jc_test_pg() && cache) {
        /* A schema per test binary and name: t_<program>_<name>, letters,
         * digits and _ only. */
        char schema[64];
        int n = snprintf(schema, sizeof schema, "t_%s_%s", program_invocation_short_name, name);
        for (int i = 0; i < n && i < (int)sizeof schema - 1; i++) {
            char ch = schema[i];
            bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
            if (ch >= 'A' && ch <= 'Z')
                schema[i] = (char)(ch - 'A' + 'a');
            else if (!ok)
                schema[i] = '_';
        }
        /* The socket's directory in the authority, percent-encoded (libpq's
         * URI form), so that the location holds no '&' and goes unquoted
         * through a shell (test_tool's commands). */
        char host[1024];
        size_t o = 0;
        for (const char *p = jc_test_pg(); *p && o + 4 < sizeof host; p++) {
            unsigned char ch = (unsigned char)*p;
            if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                ch == '_' || ch == '.')
                host[o++] = (char)ch;
            else
                o += (size_t)snprintf(host + o, sizeof host - o, "%%%02X", ch);
        }
        host[o] = '\0';
        snprintf(buf, size, "postgresql://jobcache@%s/jobcache?options=-csearch_path%%3D%s", host, schema);
        return buf;
    }
    snprintf(buf, size, "%s/%s", jc_test_dir(), name);
    return buf;
}

/* jc_test_location, after removing whatever a previous run left there. */
static inline const char *jc_test_path(char *buf, size_t size, const char *name)
{
    jc_test_location(buf, size, name);
    jc_test_remove_db(buf);
    return buf;
}

/* A file beside the cache at path, named by suffix (".stderr"): path +
 * suffix for a file, the scratch directory's <schema><suffix> for a cache
 * on the server. */
static inline const char *jc_test_side(char *buf, size_t size, const char *path, const char *suffix)
{
    if (jc_test_is_pg_location(path))
        snprintf(buf, size, "%s/%s%s", jc_test_dir(), jc_test_pg_schema(path), suffix);
    else
        snprintf(buf, size, "%s%s", path, suffix);
    return buf;
}

/* How the library names the cache at path in messages and jc_cache_path:
 * a file as it is, a PostgreSQL location without its password and with
 * its values percent-encoded (a static buffer). */
static inline const char *jc_test_shown(const char *path)
{
    static char buf[4200];
    if (!jc_test_is_pg_location(path))
        return path;
    /* jc_test_location's form is the library's (jc__pg_redact): the socket's
     * directory percent-encoded in the authority. */
    snprintf(buf, sizeof buf, "%s", path);
    return buf;
}

/* ---- looking at a cache file with SQLite directly, files, stderr ---- */

#include <fcntl.h>
#include <sqlite3.h>
#include <stdint.h>

/* Runs sql (any number of statements) on the database at path, opened
 * read-write without creating it. Returns SQLITE_OK or SQLite's code, and
 * prints SQLite's message on stderr when it fails. */
static inline int jc_test_sql_exec(const char *path, const char *sql)
{
    if (jc_test_is_pg_location(path))
        return jc_test_pg_sql(path, sql, NULL, false) == 0 ? SQLITE_OK : SQLITE_ERROR;
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, 10000);
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK)
        fprintf(stderr, "jc_test_sql_exec('%s', \"%s\"): %s\n", path, sql,
                db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return rc;
}

/* The first column of the first row of the query sql on the database at
 * path, opened read-only (so that looking never changes the file). Returns 0
 * and sets *out, or SQLite's code (SQLITE_DONE when there is no row); quiet,
 * so that it can poll a file that does not exist yet. */
static inline int jc_test_sql_int_rc(const char *path, const char *sql, int64_t *out)
{
    if (jc_test_is_pg_location(path)) {
        char *t = NULL;
        int prc = jc_test_pg_sql(path, sql, &t, true);
        if (prc == 0 && t) /* a boolean reads as 1 or 0, as in SQLite */
            *out = strcmp(t, "t") == 0 ? 1 : strcmp(t, "f") == 0 ? 0 : strtoll(t, NULL, 10);
        free(t);
        return prc == 0 ? SQLITE_OK : prc == 1 ? SQLITE_DONE : SQLITE_ERROR;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, 10000);
        rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

/* The same, for a query that must succeed: -1 (and a message on stderr) when
 * it does not, which no count or sum in a test equals. */
static inline int64_t jc_test_sql_int(const char *path, const char *sql)
{
    int64_t v = -1;
    int rc = jc_test_sql_int_rc(path, sql, &v);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "jc_test_sql_int('%s', \"%s\"): %s\n", path, sql, sqlite3_errstr(rc));
        return -1;
    }
    return v;
}

/* The first column of the first row of sql as a new string (free() it), or
 * NULL; the database is opened read-write, as PRAGMA integrity_check after a
 * crash may need to recover the -wal file. */
static inline char *jc_test_sql_text(const char *path, const char *sql)
{
    if (jc_test_is_pg_location(path)) {
        char *t = NULL;
        jc_test_pg_sql(path, sql, &t, false);
        return t;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char *out = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, 10000);
        rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    }
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        out = strdup((const char *)sqlite3_column_text(st, 0));
    else
        fprintf(stderr, "jc_test_sql_text('%s', \"%s\"): %s\n", path, sql,
                db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

/* The whole contents of path in a new buffer (free() it) with a NUL after
 * the *len bytes (len may be NULL), or NULL. */
static inline void *jc_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            break;
        n += fread(buf + n, 1, cap - 1 - n, f);
        if (n < cap - 1) {
            buf[n] = '\0';
            break;
        }
        char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    fclose(f);
    if (buf && len)
        *len = n;
    return buf;
}

/* Whether path exists (as anything). */
static inline int jc_test_exists(const char *path)
{
    if (jc_test_is_pg_location(path)) { /* its schema (names of [a-z0-9_] only: jc_test_location) */
        char q[300];
        snprintf(q, sizeof q, "SELECT count(*) FROM pg_namespace WHERE nspname = '%s'", jc_test_pg_schema(path));
        char *t = NULL;
        jc_test_pg_sql(path, q, &t, false);
        int yes = t && strcmp(t, "0") != 0;
        free(t);
        return yes;
    }
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Sends stderr to the file path until jc_test_stderr_restore(saved); returns
 * the saved descriptor, or -1. */
static inline int jc_test_stderr_to(const char *path)
{
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (saved < 0 || fd < 0 || dup2(fd, STDERR_FILENO) < 0) {
        if (fd >= 0)
            close(fd);
        if (saved >= 0)
            close(saved);
        return -1;
    }
    close(fd);
    return saved;
}

static inline void jc_test_stderr_restore(int saved)
{
    if (saved < 0)
        return;
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
}

/* ---- assertions and small helpers for cmocka tests ----
 *
 * These were copied between test files; they live here once now. All are
 * static inline, so a test that does not use one gets no warning. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <time.h>

#include <jobcache.h>

/* Folds the hit log (schema 10: hits are appended to it, not written into
 * their entries' rows) into the entries through the library, as
 * inspection does, so that a test can read entries.hits and last_used. */
static inline void jc_test_fold_hits(const char *path)
{
    jc_cache *c = jc_cache_open(path, &(jc_cache_options){.flags = JC_CACHE_IGNORE_ENV});
    assert_non_null(c);
    jc_stats *s = jc_cache_stats(c);
    assert_non_null(s);
    jc_stats_free(s);
    jc_cache_close(c);
}

/* jc_test_sql_int after jc_test_fold_hits: for queries of hit counts. */
static inline int64_t jc_test_hits_sql(const char *path, const char *sql)
{
    jc_test_fold_hits(path);
    return jc_test_sql_int(path, sql);
}

/* A double from its bits, and back. */
static inline double jc_test_from_bits(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static inline uint64_t jc_test_to_bits(double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return bits;
}

/* Whether a and b are the same value with the same bits in every double
 * (jc_value_equal compares doubles by value: -0.0 == 0.0). */
static inline bool jc_test_same_bits(const jc_value *a, const jc_value *b)
{
    if (jc_value_type(a) != jc_value_type(b))
        return false;
    switch (jc_value_type(a)) {
    case JC_TYPE_DOUBLE: {
        double x, y;
        jc_value_get_double(a, &x);
        jc_value_get_double(b, &y);
        return jc_test_to_bits(x) == jc_test_to_bits(y);
    }
    case JC_TYPE_DOUBLES: {
        const double *x, *y;
        size_t n, m;
        jc_value_get_doubles(a, &x, &n);
        jc_value_get_doubles(b, &y, &m);
        return n == m && memcmp(x, y, n * sizeof *x) == 0;
    }
    case JC_TYPE_LIST:
    case JC_TYPE_MAP:
        if (jc_value_len(a) != jc_value_len(b))
            return false;
        for (size_t i = 0; i < jc_value_len(a); i++) {
            if (jc_value_type(a) == JC_TYPE_MAP && strcmp(jc_value_key_at(a, i), jc_value_key_at(b, i)) != 0)
                return false;
            if (!jc_test_same_bits(jc_value_at(a, i), jc_value_at(b, i)))
                return false;
        }
        return true;
    default:
        return jc_value_equal(a, b);
    }
}

/* Fails the test unless needle occurs in haystack. */
/* A file's bytes, to show later that nothing was written to it. */
typedef struct jc_test_bytes {
    void *data;
    size_t len;
} jc_test_bytes;

static inline jc_test_bytes jc_test_snapshot(const char *path)
{
    jc_test_bytes b = {NULL, 0};
    b.data = jc_test_read_file(path, &b.len);
    assert_non_null(b.data);
    return b;
}

/* Fails unless path holds exactly the bytes of snap; frees snap. */
static inline void jc_test_assert_unchanged(const char *path, jc_test_bytes snap)
{
    size_t len = 0;
    void *now = jc_test_read_file(path, &len);
    assert_non_null(now);
    assert_int_equal(len, snap.len);
    assert_memory_equal(now, snap.data, snap.len);
    free(now);
    free(snap.data);
}

static inline void assert_contains(const char *haystack, const char *needle)
{
    if (!haystack || !strstr(haystack, needle))
        fail_msg("expected \"%s\" in \"%s\"", needle, haystack ? haystack : "(null)");
}

/* The last error is code, and its message contains what. */
static inline void expect_error(int code, const char *what)
{
    assert_int_equal(jc_errcode(), code);
    if (!strstr(jc_errmsg(), what)) {
        fprintf(stderr, "message \"%s\" does not contain \"%s\"\n", jc_errmsg(), what);
        fail();
    }
}

/* rc is code, which is also the last error, whose message contains what. */
static inline void expect_rc(int rc, int code, const char *what)
{
    assert_int_equal(rc, code);
    expect_error(code, what);
}

/* Opens the cache at path (NULL with JC_CACHE_DISABLED) with flags, failing
 * the test when it cannot. */
static inline jc_cache *open_cache(const char *path, unsigned flags)
{
    jc_cache *c = jc_cache_open(path, &(jc_cache_options){.flags = flags});
    if (!c)
        fail_msg("jc_cache_open('%s'): %s", path ? path : "(null)", jc_errmsg());
    return c;
}

/* A new cache file named name in the tests' directory (its path into path,
 * cap bytes), none of an earlier run left, opened with flags. */
static inline jc_cache *jc_test_fresh_cache(char *path, size_t cap, const char *name, unsigned flags)
{
    jc_test_path(path, cap, name);
    jc_test_remove_db(path);
    return open_cache(path, flags);
}

/* Runs stmt on the database at path; it must succeed. */
static inline void sql(const char *path, const char *stmt)
{
    assert_int_equal(jc_test_sql_exec(path, stmt), SQLITE_OK);
}

/* Seconds on the monotonic clock. */
static inline double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Open descriptors of this process, not counting the one opendir uses. */
static inline int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0, own = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (atoi(e->d_name) == own)
            continue;
        n++;
    }
    closedir(d);
    return n;
}

/* ---- cacheable functions that several tests register ----
 *
 * JC_FUNCTION registers a function in the binary that defines it, and a name
 * registered twice becomes ambiguous, so these are only defined in a test
 * that asks for them by defining the macro before including this file:
 *
 *   JC_TEST_WANT_SQUARE     square(x) -> x * x, as "square" version "v1";
 *   JC_TEST_WANT_ADD_FAILS  add(a, b) -> a + b and fails(x) -> x * 10 (fails
 *                           for 3), both version "v1", each counting its
 *                           calls in add_calls / fails_calls. */

#ifdef JC_TEST_WANT_SQUARE
static int square(jc_call *call)
{
    int64_t x = jc_arg_int(call, 0);
    return jc_return_int(call, x * x);
}
JC_FUNCTION(square, "v1");
#endif

#ifdef JC_TEST_WANT_ADD_FAILS
static int add_calls;
static int add(jc_call *call)
{
    add_calls++;
    return jc_return_int(call, jc_arg_int(call, 0) + jc_arg_int(call, 1));
}
JC_FUNCTION(add, "v1");

/* Fails for 3. */
static int fails_calls;
static int fails(jc_call *call)
{
    fails_calls++;
    int64_t x = jc_arg_int(call, 0);
    if (x == 3)
        return jc_fail(call, "three is not allowed");
    return jc_return_int(call, x * 10);
}
JC_FUNCTION(fails, "v1");
#endif

#endif
