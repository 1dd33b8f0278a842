/*
 * Tests of the jobcache command (tools/jobcache/): every subcommand and
 * its errors, run as a program (JC_TOOL_PATH) on caches made by the
 * library, checking exit codes and output; and the read-only commands run
 * over and over while another process writes to the same cache.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sys/resource.h>
#include <jobcache.h>

/* square/v1 comes from testutil.h. */
#define JC_TEST_WANT_SQUARE
#include "store/store.h"
#include "testutil.h"

#ifndef JC_TOOL_PATH
#error "JC_TOOL_PATH must name the built jobcache command"
#endif

#define PATH_CAP 4096

/* scale(xs, factor=f) -> xs * f, a long array in and out. */
static int scale(jc_call *call)
{
    size_t n = 0;
    const double *xs = jc_arg_doubles(call, 0, &n);
    double f = jc_kwarg_double(call, "factor");
    double out[256];
    for (size_t i = 0; i < n && i < 256; i++)
        out[i] = xs[i] * f;
    return jc_return(call, jc_doubles(out, n < 256 ? n : 256));
}
JC_FUNCTION(scale, "v1");

/* A call that takes a little while, for the concurrent writer. */
static int slow(jc_call *call)
{
    struct timespec ts = {0, 200000};
    nanosleep(&ts, NULL);
    return jc_return_int(call, jc_arg_int(call, 0));
}
JC_FUNCTION(slow, "v1");

/* echo(x) -> x: stores whatever it is given. */
static int echo(jc_call *call)
{
    return jc_return(call, jc_value_copy(jc_arg(call, 0)));
}
JC_FUNCTION(echo, "v1");

/* ---- running the command ---- */

/* Runs `jobcache ARGS` through the shell with stderr joined to stdout;
 * *out (may be NULL) gets the output (free() it). Returns the exit code,
 * or -1 when the command did not exit normally. */
static int tool(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int tool(char **out, const char *fmt, ...)
{
    char args[8192], cmd[9000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", JC_TOOL_PATH, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (cap - n < 1024) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    buf[n] = '\0';
    int status = pclose(p);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void assert_lacks(const char *haystack, const char *needle)
{
    if (haystack && strstr(haystack, needle))
        fail_msg("did not expect \"%s\" in \"%s\"", needle, haystack);
}

/* Runs the command, expects exit code `code` and `needle` in its output. */
static void expect(int code, const char *needle, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void expect(int code, const char *needle, const char *fmt, ...)
{
    char args[8192];
    char *out = NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    int rc = tool(&out, "%s", args);
    if (rc != code)
        fail_msg("jobcache %s: exit %d, expected %d; output:\n%s", args, rc, code, out);
    if (needle)
        assert_contains(out, needle);
    free(out);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static size_t count_of(const char *s, const char *needle)
{
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* ---- caches ---- */

/* square(0..nsq-1) and scale(xs of 100, factor = 1..nscale). */
static void make_cache(const char *path, int nsq, int nscale)
{
    double xs[100];
    for (int i = 0; i < 100; i++)
        xs[i] = i * 0.5;
    jc_cache *c = jc_cache_open(path, NULL);
    assert_non_null(c);
    jc_batch *b = jc_batch_new(c, NULL);
    for (int i = 0; i < nsq; i++)
        assert_int_equal(jc_delayed(b, square, jc_int(i)), 0);
    for (int i = 1; i <= nscale; i++)
        assert_int_equal(jc_delayed(b, scale, jc_doubles(xs, 100), jc_kw("factor", jc_double(i))), 0);
    jc_results *r = jc_run(b);
    assert_non_null(r);
    assert_int_equal(jc_results_status(r), JC_OK);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
}

/* The full key of the entry at rowid, as hex. */
static void key_at(const char *path, int rowid, char hex[33])
{
    char q[128];
    snprintf(q, sizeof q, "SELECT lower(hex(key)) FROM entries WHERE rowid = %d", rowid);
    char *t = jc_test_sql_text(path, q);
    assert_non_null(t);
    snprintf(hex, 33, "%s", t);
    free(t);
}

static int64_t entries(const char *path)
{
    return jc_test_sql_int(path, "SELECT count(*) FROM entries");
}

/* A cache of hostile text and awkward numbers: strings, a map key and a
 * named argument with ESC sequences (clear screen, set title), a C1 CSI in
 * UTF-8 form, DEL, bytes that are not UTF-8; NaN, infinities, -0.0 and
 * bytes. Then, with the sqlite3 API, a function name and version that are
 * escape sequences (as a merged file could bring). */
static const char HOSTILE_FN[] = "echo\x1b]0;pwned\x07\x1b[2J";

/* Replaces, in column col of every entry, each run of the bytes from with
 * to (as long), as a hostile file would hold them: text that the library's
 * builders refuse (invalid UTF-8) can only come from a file. The result's
 * checksum is dropped where a result changes (as a file of 0.1.0 has none). */
/* A copy of data[0..len) (free() it) with every run of from[0..n) written
 * as to[0..n); *changed says whether there was any. */
static unsigned char *patched_copy(const void *data, size_t len, const char *from, const char *to, size_t n,
                                   bool *changed)
{
    unsigned char *blob = malloc(len + 1);
    assert_non_null(blob);
    memcpy(blob, data, len);
    *changed = false;
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(blob + i, from, n) == 0) {
            memcpy(blob + i, to, n);
            *changed = true;
        }
    return blob;
}

static void patch_blobs_pg(const char *path, const char *col, const char *from, const char *to, size_t n)
{
    PGconn *c = jc_test_pg_connect();
    assert_non_null(c);
    const char *schema = jc_test_pg_schema(path);
    PQclear(PQexecParams(c, "SELECT set_config('search_path', $1, false)", 1, NULL, &schema, NULL, NULL, 0));
    char q[256];
    snprintf(q, sizeof q, "SELECT id::text, %s FROM entries", col); /* col: the test's own names */
    PGresult *r = PQexecParams(c, q, 0, NULL, NULL, NULL, NULL, 1);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    snprintf(q, sizeof q, "UPDATE entries SET %s = $2%s WHERE id = $1::text::bigint", col,
             strcmp(col, "result") == 0 ? ", result_check = NULL" : "");
    for (int i = 0; i < PQntuples(r); i++) {
        size_t len = (size_t)PQgetlength(r, i, 1);
        bool changed;
        unsigned char *blob = patched_copy(PQgetvalue(r, i, 1), len, from, to, n, &changed);
        if (changed) {
            char id[32];
            snprintf(id, sizeof id, "%.*s", PQgetlength(r, i, 0), PQgetvalue(r, i, 0)); /* binary text: as is */
            const char *vals[] = {id, (const char *)blob};
            int lens[] = {(int)strlen(id), (int)len}, fmts[] = {1, 1};
            PGresult *u = PQexecParams(c, q, 2, NULL, vals, lens, fmts, 0);
            if (PQresultStatus(u) != PGRES_COMMAND_OK)
                fail_msg("patching %s: %s", col, PQresultErrorMessage(u));
            PQclear(u);
        }
        free(blob);
    }
    PQclear(r);
    PQfinish(c);
}

static void patch_blobs(const char *path, const char *col, const char *from, const char *to, size_t n)
{
    if (jc_test_is_pg_location(path)) {
        patch_blobs_pg(path, col, from, to, n);
        return;
    }
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char q[256];
    snprintf(q, sizeof q, "SELECT rowid, %s FROM entries", col);
    sqlite3_stmt *s, *u;
    assert_int_equal(sqlite3_prepare_v2(db, q, -1, &s, NULL), SQLITE_OK);
    snprintf(q, sizeof q, "UPDATE entries SET %s = ?2%s WHERE rowid = ?1", col,
             strcmp(col, "result") == 0 ? ", result_check = NULL" : "");
    assert_int_equal(sqlite3_prepare_v2(db, q, -1, &u, NULL), SQLITE_OK);
    while (sqlite3_step(s) == SQLITE_ROW) {
        size_t len = (size_t)sqlite3_column_bytes(s, 1);
        bool changed;
        unsigned char *blob = patched_copy(sqlite3_column_blob(s, 1), len, from, to, n, &changed);
        if (changed) {
            sqlite3_bind_int64(u, 1, sqlite3_column_int64(s, 0));
            sqlite3_bind_blob(u, 2, blob, (int)len, SQLITE_TRANSIENT);
            assert_int_equal(sqlite3_step(u), SQLITE_DONE);
            sqlite3_reset(u);
        }
        free(blob);
    }
    sqlite3_finalize(s);
    sqlite3_finalize(u);
    sqlite3_close(db);
}

static void make_hostile_cache(const char *path)
{
    double ds[4] = {NAN, INFINITY, -INFINITY, 1.5};
    jc_cache *c = jc_cache_open(path, NULL);
    assert_non_null(c);
    jc_batch *b = jc_batch_new(c, NULL);
    assert_int_equal(jc_delayed(b, echo, jc_str("\x1b]0;title\x07\x1b[2J\xc2\x9b" "1m\x7f tab\t")), 0);
    /* Made valid, patched below into what the builders refuse. */
    assert_int_equal(jc_delayed(b, echo, jc_strn("bad @@@ utf8 ###", 16)), 0);
    assert_int_equal(jc_delayed(b, echo, jc_map(jc_kw("\x1b[31mkey\xc2\x85", jc_int(1)))), 0);
    assert_int_equal(jc_delayed(b, echo, jc_int(7), jc_kw("\x1b[5mname~", jc_int(2))), 0);
    assert_int_equal(jc_delayed(b, echo, jc_double(NAN)), 0);
    assert_int_equal(jc_delayed(b, echo, jc_double(-INFINITY)), 0);
    assert_int_equal(jc_delayed(b, echo, jc_double(-0.0)), 0);
    assert_int_equal(jc_delayed(b, echo, jc_doubles(ds, 4)), 0);
    assert_int_equal(jc_delayed(b, echo, jc_bytes("\x00\x01\xff", 3)), 0);
    assert_int_equal(jc_delayed(b, echo, jc_double(0.1)), 0);
    jc_results *r = jc_run(b);
    assert_non_null(r);
    assert_int_equal(jc_results_status(r), JC_OK);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    char stmt[256];
    snprintf(stmt, sizeof stmt,
             "UPDATE entries SET function = '%s', version = 'v1' || char(155) || char(27) || 'c'"
             " WHERE rowid IN (1, 2)",
             HOSTILE_FN);
    sql(path, stmt);
    patch_blobs(path, "result", "@@@", "\xff\xc0\x80", 3);
    patch_blobs(path, "args", "@@@", "\xff\xc0\x80", 3);
    patch_blobs(path, "result", "###", "\xed\xa0\x80", 3);
    patch_blobs(path, "args", "###", "\xed\xa0\x80", 3);
    patch_blobs(path, "args", "name~", "name\xff", 5);
}

/* Fails when s holds what a terminal obeys or cannot read: a C0 control
 * other than the newline, DEL, a C1 control in UTF-8 form, or a byte
 * that is not well-formed UTF-8. */
static void assert_terminal_safe(const char *what, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; p[i];) {
        unsigned char c = p[i];
        size_t len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
                                  : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        bool ok = len > 0 && (c >= 0x20 || c == '\n') && c != 0x7f;
        for (size_t k = 1; ok && k < len; k++)
            ok = (p[i + k] & 0xc0) == 0x80;
        if (ok && len == 2)
            ok = !(c == 0xc2 && p[i + 1] <= 0x9f); /* C1 */
        if (ok && len == 3)
            ok = !(c == 0xe0 && p[i + 1] < 0xa0) && !(c == 0xed && p[i + 1] >= 0xa0);
        if (!ok)
            fail_msg("%s: byte 0x%02x at %zu is not for a terminal, in:\n%s", what, c, i, s);
        i += len;
    }
}

/* Runs the command and checks that its whole output is safe to show. */
static char *safe_output(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *safe_output(int code, const char *fmt, ...)
{
    char args[8192], *out = NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    int rc = tool(&out, "%s", args);
    if (rc != code)
        fail_msg("jobcache %s: exit %d, expected %d; output:\n%s", args, rc, code, out);
    assert_terminal_safe(args, out);
    return out;
}

/* Runs `jobcache ARGS | CHECKER`, expecting both to succeed. */
static void pipe_through(const char *checker, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pipe_through(const char *checker, const char *fmt, ...)
{
    char args[4096], cmd[9000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "set -o pipefail; %s %s | %s", JC_TOOL_PATH, args, checker);
    char *argv_sh[] = {"bash", "-c", cmd, NULL};
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execvp("bash", argv_sh);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("failed (status %d): %s", status, cmd);
}

/* ---- help and usage ---- */

static void tool_help_everywhere(void **state)
{
    (void)state;
    static const char *const cmds[] = {"stats", "ls",    "show",  "diff",   "rm",   "prune",
                                       "verify", "export", "merge", "vacuum", "clear"};
    char needle[64];
    expect(0, "usage: jobcache COMMAND", "--help");
    expect(0, "usage: jobcache COMMAND", "help");
    expect(2, "usage: jobcache COMMAND", " ");
    expect(2, "unknown command 'bogus'", "bogus");
    expect(2, "unknown command 'bogus'", "help bogus");
    expect(0, "jobcache " JC_VERSION_STRING, "--version");
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        snprintf(needle, sizeof needle, "usage: jobcache %s", cmds[i]);
        expect(0, needle, "help %s", cmds[i]);
        expect(0, needle, "%s --help", cmds[i]);
        expect(0, "--file FILE", "%s -h", cmds[i]);
    }
}

/* unlock-host removes a host's record without opening the file (which
 * the record refuses to this host). */
static void tool_unlock_host_clears_a_record(void **state)
{
    (void)state;
    char path[PATH_CAP], dir[PATH_CAP + 8], rec[PATH_CAP + 32];
    jc_test_path(path, sizeof path, "unlock.db");
    if (jc_test_pg()) { /* many hosts share a server: it says there is nothing to clear */
        make_cache(path, 1, 0);
        expect(3, "a PostgreSQL cache has no host records", "unlock-host %s", path);
        return;
    }
    snprintf(dir, sizeof dir, "%s.hosts", path);
    snprintf(rec, sizeof rec, "%s/node-z~boot.1.0", dir);
    expect(0, "no host recorded", "unlock-host %s", path);
    assert_int_equal(jc_test_mkdirs(dir), 0);
    FILE *f = fopen(rec, "w");
    assert_non_null(f);
    fprintf(f, "host node-z\npid 1\n");
    fclose(f);
    expect(0, "removed the records of host node-z", "unlock-host %s", path);
    assert_false(jc_test_exists(rec));
}

static void tool_usage_errors(void **state)
{
    (void)state;
    char path[PATH_CAP];
    make_cache(jc_test_path(path, sizeof path, "usage.db"), 3, 0);
    expect(2, "unknown option '--bogus'", "ls -f %s --bogus", path);
    expect(2, "takes no --repair", "ls -f %s --repair", path);
    expect(2, "--limit needs a value", "ls -f %s --limit", path);
    expect(2, "--limit takes a count", "ls -f %s --limit 0", path);
    expect(2, "--limit takes a count", "ls -f %s --limit x", path);
    expect(2, "--sort takes name, used", "ls -f %s --sort colour", path);
    expect(2, "--version needs --function", "ls -f %s --version v1", path);
    expect(2, "unexpected argument", "stats %s other.db", path);
    expect(2, "the file is given twice", "stats %s --file %s", path, path);
    expect(2, "missing argument", "show -f %s", path);
    expect(2, "missing argument", "diff -f %s abc", path);
    expect(2, "--json takes no value", "stats %s --json=1", path);
    expect(2, "is not an age", "ls -f %s --older-than 30", path);
    expect(2, "is not an age", "prune -f %s --older-than 3y", path);
    expect(2, "is not a size", "prune -f %s --max-size 12Q", path);
    expect(2, "--max-size must be more than 0", "prune -f %s --max-size 0", path);
    expect(2, "say what to prune", "prune %s", path);
    expect(2, "give key prefixes, or --function", "rm -f %s", path);
    expect(2, "not both", "rm -f %s ab --function square", path);
    expect(2, "add --yes", "clear %s", path);
    assert_int_equal(entries(path), 3);
}

/* ---- choosing and opening the file ---- */

static void tool_finds_the_file(void **state)
{
    (void)state;
    char path[PATH_CAP], dir[PATH_CAP];
    snprintf(dir, sizeof dir, "%s/tool-cwd", jc_test_dir());
    assert_int_equal(jc_test_mkdirs(dir), 0);
    snprintf(path, sizeof path, "%s/jobcache.db", dir);
    jc_test_remove_db(path);
    make_cache(path, 4, 0);
    expect(0, "entries       4", "stats %s", path);
    expect(0, "entries       4", "stats --file %s", path);
    expect(0, "entries       4", "stats -f %s", path);
    expect(0, "entries       4", "stats -f%s", path);
    expect(0, "entries       4", "stats --file=%s", path);
    /* $JOBCACHE_PATH, then ./jobcache.db. The tool is an absolute path,
     * so `cd` does not lose it. */
    char cmd[PATH_CAP * 2];
    snprintf(cmd, sizeof cmd, "JOBCACHE_PATH='%s' %s stats", path, JC_TOOL_PATH);
    FILE *p = popen(cmd, "r");
    char buf[4096] = "";
    size_t n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = '\0';
    assert_int_equal(pclose(p), 0);
    assert_contains(buf, "entries       4");
    snprintf(cmd, sizeof cmd, "cd '%s' && env -u JOBCACHE_PATH %s ls", dir, JC_TOOL_PATH);
    p = popen(cmd, "r");
    n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = '\0';
    assert_int_equal(pclose(p), 0);
    assert_int_equal(count_lines(buf), 5);
}

static void tool_readonly_commands_never_create_a_file(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "missing.db");
    expect(3, "does not exist", "stats %s", path);
    expect(3, "does not exist", "ls %s", path);
    expect(3, "does not exist", "show -f %s ab", path);
    expect(3, "does not exist", "diff -f %s ab cd", path);
    expect(3, "does not exist", "export %s", path);
    expect(3, "does not exist", "verify %s", path);
    /* Commands that change a cache do not make one either. */
    expect(3, "does not exist", "verify %s --repair", path);
    expect(3, "does not exist", "prune %s --max-entries 3", path);
    expect(3, "does not exist", "rm -f %s --function f", path);
    expect(3, "does not exist", "vacuum %s", path);
    expect(3, "does not exist", "clear %s --yes", path);
    assert_false(jc_test_exists(path));
}

static void tool_refuses_a_file_that_is_not_a_cache(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "not-a-cache.txt");
    FILE *f = fopen(path, "w");
    fputs("this is a text file, not a cache; it is long enough to be read as one", f);
    fclose(f);
    expect(3, "not an SQLite database", "stats %s", path);
    expect(3, "not an SQLite database", "verify %s", path);
    jc_test_path(path, sizeof path, "foreign.db");
    if (jc_test_pg()) { /* a schema of other tables */
        PGconn *pc = jc_test_pg_connect();
        assert_non_null(pc);
        PQclear(PQexec(pc, "CREATE SCHEMA t_test_tool_foreign_db; CREATE TABLE t_test_tool_foreign_db.songs (title text)"));
        PQfinish(pc);
        assert_string_equal(jc_test_pg_schema(path), "t_test_tool_foreign_db");
        expect(3, "holds tables that are not a jobcache cache", "ls %s", path);
        return;
    }
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE songs (title TEXT)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    expect(3, "not a jobcache cache", "ls %s", path);
}

/* jobcache(1), EXIT STATUS: a usage error (2), a finding (1) and a failure
 * (3) are told apart; a file that cannot be read exited 2, as a usage
 * error, before. */
static void tool_exit_statuses_tell_usage_findings_and_failures_apart(void **state)
{
    (void)state;
    char path[PATH_CAP], text[PATH_CAP];
    make_cache(jc_test_path(path, sizeof path, "statuses.db"), 3, 0);
    /* A usage error: an option no command has. */
    expect(2, "unknown option '--bogus'", "verify %s --bogus", path);
    /* A finding: a result that no longer matches its checksum. */
    sql(path, "UPDATE entries SET result = x'05' WHERE rowid = 2");
    expect(1, "checked 3 entries: 1 bad", "verify %s", path);
    /* A failure: a text file given as the cache. */
    jc_test_path(text, sizeof text, "statuses.txt");
    FILE *f = fopen(text, "w");
    assert_non_null(f);
    fputs("this is a text file, not a cache; it is long enough to be read as one", f);
    fclose(f);
    expect(3, "not an SQLite database", "verify -f %s", text);
}

/* ---- looking ---- */

static void tool_stats_text_and_json(void **state)
{
    (void)state;
    char path[PATH_CAP], *out = NULL;
    make_cache(jc_test_path(path, sizeof path, "stats.db"), 5, 2);
    sql(path, "UPDATE entries SET hits = 2, compute_seconds = 1.5");
    assert_int_equal(tool(&out, "stats %s", path), 0);
    assert_contains(out, "entries       7");
    char schema_line[64];
    snprintf(schema_line, sizeof schema_line, "schema        version %d, key format 1", JC__SCHEMA_VERSION);
    assert_contains(out, schema_line);
    assert_contains(out, "of which 14 hits saved 21.0s");
    assert_contains(out, "FUNCTION");
    assert_contains(out, "square");
    assert_contains(out, "scale");
    free(out);
    assert_int_equal(tool(&out, "stats %s --json", path), 0);
    assert_contains(out, "\"entries\": 7");
    snprintf(schema_line, sizeof schema_line, "\"schema_version\": %d", JC__SCHEMA_VERSION);
    assert_contains(out, schema_line);
    assert_contains(out, "\"hits\": 14");
    assert_contains(out, "\"saved_seconds\": 21");
    assert_contains(out, "{\"function\": \"scale\", \"version\": \"v1\", \"entries\": 2");
    assert_contains(out, "{\"function\": \"square\", \"version\": \"v1\", \"entries\": 5");
    free(out);
}

static void tool_ls_filters_sorts_and_json(void **state)
{
    (void)state;
    char path[PATH_CAP], *out = NULL;
    make_cache(jc_test_path(path, sizeof path, "ls.db"), 6, 2);
    sql(path, "UPDATE entries SET hits = 42 WHERE rowid = 4;"
              "UPDATE entries SET last_used = last_used - 7200 WHERE rowid IN (1, 2)");
    assert_int_equal(tool(&out, "ls %s", path), 0);
    assert_int_equal(count_lines(out), 9);
    assert_contains(out, "KEY");
    assert_contains(out, "LAST USED");
    assert_contains(out, "doubles[100], factor=1"); /* long arrays in brief */
    free(out);
    expect(0, NULL, "ls %s --function square", path);
    assert_int_equal(tool(&out, "ls %s --function square", path), 0);
    assert_int_equal(count_lines(out), 7);
    assert_lacks(out, "scale");
    free(out);
    assert_int_equal(tool(&out, "ls %s --function square --version v2", path), 0);
    assert_int_equal(count_lines(out), 0);
    free(out);
    assert_int_equal(tool(&out, "ls %s --sort hits --limit 1", path), 0);
    assert_int_equal(count_lines(out), 2);
    assert_contains(out, " 42 ");
    free(out);
    assert_int_equal(tool(&out, "ls %s --older-than 1h", path), 0);
    assert_int_equal(count_lines(out), 3);
    free(out);
    assert_int_equal(tool(&out, "ls %s --newer-than 1h -n 100 --sort size -r", path), 0);
    assert_int_equal(count_lines(out), 7);
    free(out);
    assert_int_equal(tool(&out, "ls %s --json", path), 0);
    assert_int_equal(count_of(out, "\"key\": "), 8);
    assert_true(out[0] == '[');
    assert_contains(out, "\"hits\": 42");
    free(out);
    assert_int_equal(tool(&out, "ls %s --json --function nothing", path), 0);
    assert_string_equal(out, "[]\n");
    free(out);
}

static void tool_show_entry(void **state)
{
    (void)state;
    char path[PATH_CAP], hex[33], *out = NULL;
    make_cache(jc_test_path(path, sizeof path, "show.db"), 20, 1);
    key_at(path, 21, hex); /* the scale entry */
    assert_int_equal(tool(&out, "show -f %s %.10s", path, hex), 0);
    assert_contains(out, hex);
    assert_contains(out, "function    scale");
    assert_contains(out, "kwargs      factor = 1.0");
    assert_contains(out, "... (100 elements)");
    free(out);
    assert_int_equal(tool(&out, "show -f %s %.10s --full", path, hex), 0);
    assert_lacks(out, "...");
    assert_contains(out, "49.5]");
    free(out);
    assert_int_equal(tool(&out, "show -f %s %.10s --json", path, hex), 0);
    assert_contains(out, "\"function\": \"scale\"");
    assert_contains(out, "\"kwargs\": {\"factor\": 1.0}");
    assert_lacks(out, "...");
    free(out);
    expect(2, "is not a key prefix", "show -f %s xyz", path);
    /* 21 entries, 16 first digits: some digit starts two keys. */
    char *digit = jc_test_sql_text(path, "SELECT d FROM (SELECT substr(lower(hex(key)), 1, 1) AS d"
                                         " FROM entries) AS s GROUP BY d HAVING count(*) > 1 LIMIT 1");
    assert_non_null(digit);
    expect(2, "matches several entries", "show -f %s %s", path, digit);
    free(digit);
    char other[40];
    snprintf(other, sizeof other, "%.31s%c", hex, hex[31] == '0' ? '1' : '0');
    expect(2, "has a key starting with", "show -f %s %s", path, other);
}

static void tool_show_entry_that_does_not_decode(void **state)
{
    (void)state;
    char path[PATH_CAP], hex[33];
    make_cache(jc_test_path(path, sizeof path, "show-bad.db"), 2, 0);
    sql(path, "UPDATE entries SET result = x'c1' WHERE rowid = 1");
    key_at(path, 1, hex);
    expect(1, "does not decode", "show -f %s %s", path, hex);
    expect(0, "<does not decode>", "ls %s", path);
    expect(1, "\"error\": ", "export %s", path);
}

static void tool_diff_two_calls(void **state)
{
    (void)state;
    char path[PATH_CAP], a[33], b[33], c[33], *out = NULL;
    make_cache(jc_test_path(path, sizeof path, "diff.db"), 2, 2);
    key_at(path, 1, a); /* square(0) */
    key_at(path, 2, b); /* square(1) */
    key_at(path, 3, c); /* scale(xs, factor=1) */
    /* diff(1)'s exit codes: 0 the same, 1 different, 2 trouble. */
    assert_int_equal(tool(&out, "diff -f %s %.8s %.8s", path, a, b), 1);
    assert_contains(out, "ARGUMENT");
    assert_contains(out, "[0]");
    assert_contains(out, "(result)"); /* results are compared too */
    assert_contains(out, "result: +1");
    free(out);
    char d[33];
    key_at(path, 4, d); /* scale(xs, factor=2) */
    sql(path, "UPDATE entries SET version = 'v2' WHERE rowid = 4");
    assert_int_equal(tool(&out, "diff -f %s %.8s %.8s", path, c, d), 1);
    assert_contains(out, "(version)");
    assert_contains(out, "factor");
    assert_contains(out, "1.0");
    assert_contains(out, "2.0");
    assert_lacks(out, "[0]"); /* the arrays are equal */
    assert_contains(out, "99 of 100 elements differ, the most [99] by +49.5 (+100%)");
    free(out);
    expect(0, "no difference", "diff -f %s %.8s %.8s", path, a, a);
    expect(2, "different functions", "diff -f %s %.8s %.8s", path, a, c);
    expect(2, "is not a key prefix", "diff -f %s %.8s zz", path, a);
}

/* Two versions of one function: model_a and model_b, renamed in the file
 * to model v1 and v2. v2 changes the results of 3 (a little), 7 (more)
 * and 9 (to text). */
static int model_a(jc_call *call)
{
    return jc_return_double(call, 0.5 * (double)jc_arg_int(call, 0));
}
JC_FUNCTION(model_a, "v1");

static int model_b(jc_call *call)
{
    int64_t x = jc_arg_int(call, 0);
    if (x == 9)
        return jc_return_str(call, "nine");
    return jc_return_double(call, 0.5 * (double)x + (x == 3 ? 0.25 : 0) + (x == 7 ? 2 : 0));
}
JC_FUNCTION(model_b, "v2");

static void tool_diff_versions(void **state)
{
    (void)state;
    char path[PATH_CAP], *out = NULL;
    jc_cache *c = jc_cache_open(jc_test_path(path, sizeof path, "versions.db"), NULL);
    assert_non_null(c);
    jc_batch *b = jc_batch_new(c, NULL);
    for (int i = 0; i < 10; i++)
        assert_int_equal(jc_delayed(b, model_a, jc_int(i)), 0);
    for (int i = 2; i < 12; i++)
        assert_int_equal(jc_delayed(b, model_b, jc_int(i)), 0);
    jc_results *r = jc_run(b);
    assert_int_equal(jc_results_status(r), JC_OK);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    sql(path, "UPDATE entries SET function = 'model' WHERE function IN ('model_a', 'model_b')");

    assert_int_equal(tool(&out, "diff -f %s --versions model v1 v2", path), 1);
    assert_contains(out, "model v1 -> v2: 8 argument sets under both, 3 results changed, 5 the same");
    assert_contains(out, "(2 argument sets only under v1, 2 only under v2)");
    assert_contains(out, "type double -> str");
    /* The largest first: a change of type, then +2, then +0.25. */
    char *type = strstr(out, "type double"), *two = strstr(out, "+2 (+57.1%)"), *q = strstr(out, "+0.25 (+16.7%)");
    assert_true(type && two && q && type < two && two < q);
    free(out);
    assert_int_equal(tool(&out, "diff -f %s --versions model v1 v2 --limit 1", path), 1);
    assert_contains(out, "3 results changed");
    assert_lacks(out, "+0.25");
    free(out);
    expect(0, "0 results changed, 10 the same", "diff -f %s --versions model v1 v1", path);
    expect(2, "has no entries of version v3", "diff -f %s --versions model v1 v3", path);
    expect(2, "has no entries of version v0", "diff -f %s --versions model v0 v1", path);
    expect(2, "missing argument", "diff -f %s --versions model v1", path);
    expect(2, "--limit goes with --versions", "diff -f %s --limit 2 ab cd", path);
}

/* ---- hostile files ---- */

static void tool_output_escapes_hostile_text(void **state)
{
    (void)state;
    char path[PATH_CAP], other[PATH_CAP], k[5][33], *out;
    make_hostile_cache(jc_test_path(path, sizeof path, "hostile.db"));
    for (int i = 1; i <= 4; i++)
        key_at(path, i, k[i]);
    out = safe_output(0, "ls %s", path);
    assert_contains(out, "echo\\x1b]0;pwned\\x07\\x1b[2J");
    assert_contains(out, "v1\\xc2\\x9b\\x1bc"); /* (ls cuts long values to its columns: show has them) */
    free(out);
    out = safe_output(0, "stats %s", path);
    assert_contains(out, "echo\\x1b]0;pwned\\x07\\x1b[2J");
    free(out);
    out = safe_output(0, "show -f %s %s", path, k[1]);
    assert_contains(out, "function    echo\\x1b]0;pwned\\x07\\x1b[2J");
    assert_contains(out, "\\xc2\\x9b1m\\x7f");
    free(out);
    out = safe_output(0, "show -f %s %s", path, k[2]);
    assert_contains(out, "bad \\xff\\xc0\\x80 utf8 \\xed\\xa0\\x80");
    free(out);
    out = safe_output(0, "show -f %s %s", path, k[3]);
    assert_contains(out, "[31mkey\\xc2\\x85");
    free(out);
    out = safe_output(0, "show -f %s %s", path, k[4]);
    assert_contains(out, "kwargs      \\x1b[5mname\\xff = 2");
    free(out);
    free(safe_output(0, "ls %s --function echo", path));
    free(safe_output(1, "diff -f %s %s %s", path, k[1], k[2]));
    free(safe_output(0, "rm -f %s %s --dry-run", path, k[1]));
    /* The renamed entries no longer match their keys. */
    out = safe_output(1, "verify %s", path);
    assert_contains(out, "echo\\x1b]0;pwned\\x07\\x1b[2J v1\\xc2\\x9b\\x1bc: the key does not match");
    free(out);
    make_cache(jc_test_path(other, sizeof other, "hostile-into.db"), 1, 0);
    free(safe_output(1, "merge -f %s %s", other, path));
    /* Arguments quoted back in messages are escaped too. */
    out = safe_output(2, "ls %s --sort \"$(printf 'x\\033[2J')\"", path);
    assert_contains(out, "x\\x1b[2J");
    free(out);
}

/* Every JSON output is strict JSON: python's json with bare constants
 * refused, on strictly decoded UTF-8; jq too when it is installed. */
static void tool_json_is_strict(void **state)
{
    (void)state;
    char path[PATH_CAP], key[33], *out = NULL;
    make_hostile_cache(jc_test_path(path, sizeof path, "json.db"));
    const char *lines = "python3 " JC_TEST_SOURCE_DIR "/strict_json.py lines";
    const char *doc = "python3 " JC_TEST_SOURCE_DIR "/strict_json.py doc";
    const char *jq = system("command -v jq >/dev/null 2>&1") == 0 ? "jq -e . >/dev/null" : NULL;
    pipe_through(lines, "export %s", path);
    pipe_through(doc, "stats %s --json", path);
    pipe_through(doc, "ls %s --json", path);
    for (int i = 1; i <= 10; i++) {
        key_at(path, i, key);
        pipe_through(doc, "show -f %s %s --json", path, key);
        if (jq)
            pipe_through(jq, "show -f %s %s --json", path, key);
    }
    if (jq) {
        pipe_through(jq, "export %s", path);
        pipe_through(jq, "stats %s --json", path);
        pipe_through(jq, "ls %s --json", path);
    }
    /* The documented forms (jobcache(1), JSON). */
    assert_int_equal(tool(&out, "export %s", path), 0);
    assert_contains(out, "\"result\": \"NaN\"}");
    assert_contains(out, "\"result\": \"-Infinity\"}");
    /* -0.0 is stored as +0.0 (docs/format.md), and written as a double;
     * a file may still hold a -0.0, which is written as such. */
    assert_contains(out, "\"args\": [0.0], \"kwargs\": {}, \"result\": 0.0}");
    free(out);
    sql(path, "UPDATE entries SET result = x'cb8000000000000000' WHERE rowid = 7");
    assert_int_equal(tool(&out, "export %s", path), 0);
    assert_contains(out, "\"args\": [0.0], \"kwargs\": {}, \"result\": -0.0}");
    assert_contains(out, "\"result\": 0.1}");
    assert_contains(out, "\"result\": [\"NaN\", \"Infinity\", \"-Infinity\", 1.5]}");
    assert_contains(out, "\"result\": {\"$bytes\": \"AAH/\"}}");
    assert_contains(out, "\"result\": \"bad \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd utf8 ");
    assert_contains(out, "\"result\": {\"\\u001B[31mkey\xc2\x85\": 1}");
    assert_contains(out, "\"function\": \"echo\\u001B]0;pwned\\u0007\\u001B[2J\"");
    assert_lacks(out, "NaN]");
    assert_lacks(out, ": NaN");
    assert_lacks(out, "\x1b");
    free(out);
}

/* Sizes of INT64_MAX in the file: every sum saturates (no signed overflow,
 * which UBSan stops on in the sanitizer build). */
static void tool_sums_of_hostile_sizes_saturate(void **state)
{
    (void)state;
    char path[PATH_CAP], a[33], b[33], *out = NULL;
    make_cache(jc_test_path(path, sizeof path, "huge.db"), 3, 1);
    key_at(path, 1, a);
    key_at(path, 2, b);
    sql(path, "UPDATE entries SET args_size = 9223372036854775807, result_size = 9223372036854775807");
    assert_int_equal(tool(&out, "stats %s --json", path), 0);
    assert_contains(out, "\"payload_bytes\": 9223372036854775807");
    assert_contains(out, "\"args_bytes\": 9223372036854775807");
    assert_contains(out, "\"bytes\": 9223372036854775807");
    free(out);
    expect(0, "payload       8.0E", "stats %s", path);
    expect(0, "8.0E", "ls %s", path);
    expect(0, "\"size\": 9223372036854775807", "ls %s --json", path);
    expect(0, "\"size\": 9223372036854775807", "show -f %s %s --json", path, a);
    expect(0, "would remove 2 entries (8.0EiB)", "rm -f %s %s %s --dry-run", path, a, b);
    expect(0, "would remove 4 entries (8.0EiB)", "prune %s --max-size 1 --older-than 1s --dry-run", path);
}

/* ---- changing ---- */

static void tool_rm_by_key_and_function(void **state)
{
    (void)state;
    char path[PATH_CAP], a[33], b[33];
    make_cache(jc_test_path(path, sizeof path, "rm.db"), 5, 2);
    key_at(path, 1, a);
    key_at(path, 2, b);
    expect(0, "would remove 1 entry", "rm -f %s %.12s --dry-run", path, a);
    assert_int_equal(entries(path), 7);
    expect(2, "is not a key prefix", "rm -f %s %.12s nothex", path, a);
    assert_int_equal(entries(path), 7); /* a bad prefix removes nothing */
    expect(0, "removed 2 entries", "rm -f %s %.12s %s %.10s", path, a, b, a);
    assert_int_equal(entries(path), 5);
    expect(2, "has a key starting with", "rm -f %s %.12s", path, a);
    expect(0, "would remove 3 entries", "rm -f %s --function square --dry-run", path);
    expect(0, "removed 0 entries", "rm -f %s --function square --version v9", path);
    expect(0, "removed 3 entries", "rm -f %s --function square", path);
    assert_int_equal(entries(path), 2);
}

static void tool_prune(void **state)
{
    (void)state;
    char path[PATH_CAP];
    make_cache(jc_test_path(path, sizeof path, "prune.db"), 20, 2);
    sql(path, "UPDATE entries SET last_used = last_used - 40 * 86400 WHERE rowid <= 4;"
              "UPDATE entries SET version = 'v0', created = created - 100 WHERE rowid = 22");
    expect(0, "would remove 1 entry", "prune %s --stale-versions --dry-run", path);
    expect(0, "removed 1 entry", "prune %s --stale-versions", path);
    expect(0, "would remove 4 entries", "prune %s --older-than 30d --dry-run", path);
    expect(0, "removed 4 entries", "prune %s --older-than 4w", path);
    assert_int_equal(entries(path), 17);
    expect(0, "removed 7 entries", "prune %s --max-entries 10", path);
    assert_int_equal(entries(path), 10);
    /* The scale entry is the largest and the most recently used: it stays. */
    int64_t big = jc_test_sql_int(path, "SELECT max(args_size + result_size) FROM entries");
    char size[32];
    snprintf(size, sizeof size, "%lld", (long long)big);
    expect(0, "removed 9 entries", "prune %s --max-payload %s", path, size);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries WHERE function = 'scale'"), 1);
    expect(0, "removed 0 entries", "prune %s --max-size 1G", path);
}

static void tool_verify_finds_corrupted_entries(void **state)
{
    (void)state;
    char path[PATH_CAP], a[33], b[33], *out = NULL;
    make_cache(jc_test_path(path, sizeof path, "verify.db"), 6, 1);
    expect(0, "checked 7 entries: all sound", "verify %s", path);
    key_at(path, 2, a);
    key_at(path, 5, b);
    /* The arguments of square(1) become those of square(0): the key no
     * longer matches. The result of square(4) becomes 5, valid msgpack that
     * only its checksum tells from the stored one. */
    sql(path, "UPDATE entries SET args = (SELECT args FROM entries WHERE rowid = 1) WHERE rowid = 2;"
              "UPDATE entries SET result = x'05' WHERE rowid = 5");
    assert_int_equal(tool(&out, "verify %s", path), 1);
    assert_contains(out, "checked 7 entries: 2 bad");
    char line[160];
    snprintf(line, sizeof line, "%.12s  square v1: the key does not match", a);
    assert_contains(out, line);
    snprintf(line, sizeof line, "%.12s  square v1: the result does not match the checksum stored with it", b);
    assert_contains(out, line);
    free(out);
    assert_int_equal(entries(path), 7); /* verify alone changes nothing */
    expect(1, "2 bad, 2 removed", "verify %s --repair", path);
    assert_int_equal(entries(path), 5);
    expect(0, "checked 5 entries: all sound", "verify %s", path);
}

static void tool_export_json_lines(void **state)
{
    (void)state;
    char path[PATH_CAP], *out = NULL;
    make_cache(jc_test_path(path, sizeof path, "export.db"), 3, 1);
    assert_int_equal(tool(&out, "export %s", path), 0);
    assert_int_equal(count_lines(out), 4);
    assert_int_equal(count_of(out, "\n{\"key\": \""), 3);
    assert_contains(out, "\"args\": [2], \"kwargs\": {}, \"result\": 4}");
    assert_contains(out, "\"kwargs\": {\"factor\": 1.0}");
    free(out);
    assert_int_equal(tool(&out, "export %s --function scale", path), 0);
    assert_int_equal(count_lines(out), 1);
    free(out);
}

/* A function with parameter names, for names and tables. */
static int sir(jc_call *call)
{
    double beta = jc_arg_double_named(call, "beta");
    int64_t seed = jc_arg_int_named(call, "seed");
    const char *label = jc_kwarg_str(call, "label");
    return jc_return(call, jc_map(jc_kw("final", jc_double(beta * (double)seed / 3.0)),
                                  jc_kw("curve", jc_doubles((double[]){beta, (double)seed}, 2)),
                                  jc_kw("label", jc_str(label)), jc_kw("seed", jc_int(2 * seed))));
}
JC_FUNCTION_PARAMS(sir, "v1", "beta", "seed");

/* export --format csv|tsv: one function's entries as a table, parsed back
 * by Python's csv module and compared with the values; a cache of several
 * functions refused for tables, not for JSON Lines; names in ls and show. */
static void tool_export_tables(void **state)
{
    (void)state;
    char path[PATH_CAP], *out = NULL, checker[PATH_CAP + 64];
    make_cache(jc_test_path(path, sizeof path, "tables.db"), 3, 0);
    jc_cache *c = jc_cache_open(path, NULL);
    assert_non_null(c);
    jc_batch *b = jc_batch_new(c, NULL);
    for (int i = 1; i <= 3; i++)
        for (int seed = 1; seed <= 7; seed += 6)
            assert_int_equal(jc_delayed(b, sir, jc_double(i / 10.0), jc_int(seed),
                                        jc_kw("label", jc_str(seed == 7 ? "a,\"b\"\nc\td" : "plain"))),
                             0);
    jc_results *r = jc_run(b);
    assert_int_equal(jc_results_status(r), JC_OK);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);

    for (int tsv = 0; tsv <= 1; tsv++) {
        const char *fmt = tsv ? "tsv" : "csv";
        expect(2, "several functions", "export %s --format %s", path, fmt);
        expect(2, "--function F", "export %s --format %s", path, fmt);
        snprintf(checker, sizeof checker, "python3 %s/check_export.py %s", JC_TEST_SOURCE_DIR, fmt);
        pipe_through(checker, "export %s --format %s --function sir", path, fmt);
    }
    /* Unnamed parameters are arg0, ...; a scalar result one result column. */
    assert_int_equal(tool(&out, "export %s --format csv --function square", path), 0);
    const char *header = "key,version,arg0,result,created,created_utc,compute_seconds\r\n";
    assert_true(strncmp(out, header, strlen(header)) == 0);
    assert_int_equal(count_lines(out), 4);
    free(out);
    /* created_utc: the epoch's instant in ISO 8601, UTC, whatever TZ says. */
    sql(path, "UPDATE entries SET created = 1700000000.25 WHERE function = 'square'");
    setenv("TZ", "JST-9", 1);
    expect(0, ",1700000000.25,2023-11-14T22:13:20.250000Z,", "export %s --format csv --function square", path);
    unsetenv("TZ");
    expect(2, "--format takes jsonl, csv or tsv", "export %s --format xml", path);
    /* JSON Lines takes every function, and names the positional arguments. */
    assert_int_equal(tool(&out, "export %s --format jsonl", path), 0);
    assert_int_equal(count_lines(out), 9);
    assert_contains(out, "\"params\": [\"beta\", \"seed\"]");
    free(out);
    expect(0, "beta=0.1, seed=1, label=\"plain\"", "ls %s --function sir", path);
    assert_int_equal(tool(&out, "ls %s --function sir --json", path), 0);
    free(out);
    char hex[33];
    assert_int_equal(tool(&out, "ls %s --function sir --json --limit 1", path), 0);
    char *k = strstr(out, "\"key\": \"");
    assert_non_null(k);
    memcpy(hex, k + 8, 32);
    hex[32] = '\0';
    free(out);
    expect(0, "[0] beta = 0.", "show -f %s %s", path, hex);
    expect(0, "[1] seed = ", "show -f %s %s", path, hex);
    /* The names come along with a merge (a job array's caches gathered). */
    char merged[PATH_CAP];
    jc_test_path(merged, sizeof merged, "tables-merged.db");
    jc_test_remove_db(merged);
    expect(0, "added 9", "merge -f %s %s", merged, path);
    expect(0, "beta=0.1, seed=1, label=\"plain\"", "ls %s --function sir", merged);
    expect(0, "[0] beta = 0.", "show -f %s %s", merged, hex);
}

static void tool_merge_vacuum_clear(void **state)
{
    (void)state;
    char mine[PATH_CAP], theirs[PATH_CAP], missing[PATH_CAP];
    /* Theirs first: mine is newer where both have an entry. */
    make_cache(jc_test_path(theirs, sizeof theirs, "merge-theirs.db"), 5, 1);
    make_cache(jc_test_path(mine, sizeof mine, "merge-mine.db"), 3, 0);
    /* One of mine's keys (all of them are theirs too), by key: workers
     * store in the order they finish, so a row id names any entry. */
    char hex[33], upd[160];
    key_at(mine, 1, hex);
    snprintf(upd, sizeof upd, "UPDATE entries SET created = created + 100 WHERE key = x'%s'", hex);
    sql(theirs, upd);
    expect(0, "added 3, replaced 1, kept 2", "merge -f %s %s", mine, theirs);
    assert_int_equal(entries(mine), 6);
    sql(theirs, "UPDATE entries SET result = x'c1' WHERE rowid = 6");
    expect(1, "rejected 1", "merge -f %s %s", mine, theirs);
    jc_test_path(missing, sizeof missing, "merge-missing.db");
    expect(3, "does not exist", "merge -f %s %s", mine, missing);
    assert_false(jc_test_exists(missing));
    /* merge makes the file it merges into, when missing. */
    char fresh[PATH_CAP];
    jc_test_path(fresh, sizeof fresh, "merge-fresh.db");
    expect(1, "added 5, replaced 0, kept 0, rejected 1", "merge -f %s %s", fresh, theirs);
    expect(0, "into ", "merge -f %s %s", fresh, mine); /* it says where it wrote */
    /* A merge names where it writes: none into a ./jobcache.db made because
     * no file was named (0.2.0 made one in the current directory). */
    char here[PATH_CAP], nowhere[PATH_CAP];
    assert_non_null(getcwd(here, sizeof here));
    jc_test_path(nowhere, sizeof nowhere, "merge-nowhere.dir"); /* a directory on either store */
    mkdir(nowhere, 0755);
    assert_int_equal(chdir(nowhere), 0);
    char *saved = getenv("JOBCACHE_PATH") ? strdup(getenv("JOBCACHE_PATH")) : NULL;
    unsetenv("JOBCACHE_PATH");
    expect(2, "name the cache to write to", "merge %s", theirs);
    assert_false(jc_test_exists("jobcache.db"));
    if (saved)
        setenv("JOBCACHE_PATH", saved, 1);
    free(saved);
    assert_int_equal(chdir(here), 0);

    expect(0, "removed 6 entries", "clear %s --yes", mine);
    assert_int_equal(entries(mine), 0);
    expect(0, "before", "vacuum %s", mine);
    expect(0, "checked 0 entries: all sound", "verify %s", mine);
}

/* ---- while another process writes ---- */

static void writer(const char *path, double seconds)
{
    jc_cache *c = jc_cache_open(path, NULL);
    if (!c)
        _exit(10);
    double start = (double)time(NULL);
    int64_t base = 0;
    while ((double)time(NULL) - start < seconds) {
        jc_batch *b = jc_batch_new(c, NULL);
        for (int i = 0; i < 300; i++)
            jc_delayed(b, slow, jc_int(base + i));
        jc_results *r = jc_run(b);
        int ok = r && jc_results_status(r) == JC_OK;
        jc_results_free(r);
        jc_batch_free(b);
        if (!ok)
            _exit(11);
        base += 300;
    }
    jc_cache_close(c);
    _exit(0);
}

static void tool_reads_while_a_run_writes(void **state)
{
    (void)state;
    char path[PATH_CAP];
    make_cache(jc_test_path(path, sizeof path, "concurrent.db"), 10, 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        writer(path, jc_test_pg() ? 1 : 3); /* a server's readers and writers never wait for each other */
    int rounds = 0, status = 0;
    static const char *const cmds[] = {"ls %s -n 5", "stats %s", "verify %s", "export %s",
                                       "ls %s --json --sort used", "stats --json %s"};
    while (waitpid(pid, &status, WNOHANG) == 0 || rounds == 0) {
        for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
            char *out = NULL;
            int rc = tool(&out, cmds[i], path);
            if (rc != 0)
                fail_msg("'%s' exited %d while a run wrote:\n%s", cmds[i], rc, out);
            free(out);
        }
        rounds++;
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(rounds >= 1);
    assert_true(entries(path) > 10);
    expect(0, "all sound", "verify %s", path);
}

/* ls shows a result that does not decode in the result column, beside
 * its arguments (0.1.0 put the mark in the arguments column). */
static void tool_ls_shows_a_damaged_result_in_its_column(void **state)
{
    (void)state;
    char path[PATH_CAP], *out = NULL;
    make_cache(jc_test_path(path, sizeof path, "ls-damaged.db"), 3, 0);
    sql(path, "UPDATE entries SET result = x'c1c1', result_check = NULL WHERE rowid = 2");
    assert_int_equal(tool(&out, "ls %s --sort created --reverse", path), 0);
    char *line = strstr(out, "<does not decode>");
    assert_non_null(line);
    while (line > out && line[-1] != '\n')
        line--;
    /* square(1): its argument 1 in ARGS, the mark in RESULT (after it). */
    char *args = strstr(line, "  1  ");
    char *mark = strstr(line, "<does not decode>");
    assert_non_null(args);
    assert_true(args < mark);
    free(out);
}

/* backup SRC DEST while a program holds the cache with results in its
 * -wal file; stats and verify say the -wal file holds data. */
static void tool_backup_and_wal_notice(void **state)
{
    (void)state;
    char path[PATH_CAP], dest[PATH_CAP];
    jc_test_path(path, sizeof path, "backup-src.db");
    /* A backup is a file, on either store. */
    snprintf(dest, sizeof dest, "%s/backup-dest.db", jc_test_dir());
    unlink(dest);
    jc_cache *holder = jc_cache_open(path, NULL); /* a program using the cache */
    assert_non_null(holder);
    jc_batch *b = jc_batch_new(holder, NULL);
    for (int i = 0; i < 500; i++)
        jc_delayed(b, square, jc_int(i));
    jc_results_free(jc_run(b));
    jc_batch_free(b);
    if (jc_test_pg()) { /* no -wal file: its measure is live data */
        char *out = NULL;
        assert_int_equal(tool(&out, "stats %s", path), 0);
        assert_contains(out, "live data     ");
        assert_lacks(out, "-wal");
        assert_lacks(out, "on disk");
        free(out);
        assert_int_equal(tool(&out, "verify %s", path), 0);
        assert_lacks(out, "not cp");
        free(out);
    } else {
        expect(0, "copy the cache with", "stats %s", path);
        expect(0, "\"wal_bytes\": ", "stats %s --json", path);
        expect(0, "with 'jobcache backup', not cp", "verify %s", path);
    }
    expect(0, "backed up", "backup %s %s", path, dest);
    assert_int_equal(jc_test_sql_int(dest, "SELECT count(*) FROM entries"), 500);
    expect(0, "checked 500 entries: all sound", "verify %s", dest);
    expect(3, "already exists", "backup %s %s", path, dest);
    expect(2, "missing argument", "backup");
    jc_cache_close(holder);
}

/* The read-only commands read a cache on a read-only mount. */
static int read_commands_on_readonly_mount(void *ctx)
{
    const char *path = ctx;
    static const char *const cmds[] = {"stats", "ls", "verify", "export"};
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        char cmd[8192];
        snprintf(cmd, sizeof cmd, "%s %s %s >/dev/null 2>&1", JC_TOOL_PATH, cmds[i], path);
        int st = system(cmd);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "jobcache %s on a read-only mount: status %d\n", cmds[i], st);
            return 1;
        }
    }
    return 0;
}

static void tool_reads_a_cache_on_a_read_only_mount(void **state)
{
    (void)state;
    char dir[1024], path[2048];
    snprintf(dir, sizeof dir, "%s/ro-share", jc_test_dir());
    jc_test_mkdirs(dir);
    snprintf(path, sizeof path, "%s/cache.db", dir);
    jc_test_remove_db(path);
    make_cache(path, 5, 1);
    int status = jc_test_in_readonly_mount(dir, read_commands_on_readonly_mount, path);
    if (status < 0)
        skip();
    assert_int_equal(status, 0);
}

/* The longest line of out, in characters, from the line that holds from
 * (the table of stats: the lines above it show the file's path). */
static size_t longest_line(const char *out, const char *from)
{
    size_t longest = 0, n = 0;
    const char *start = from ? strstr(out, from) : out;
    for (const char *p = start ? start : out; *p; p++) {
        if (*p == '\n')
            n = 0;
        else if (((unsigned char)*p & 0xc0) != 0x80 && ++n > longest)
            longest = n;
    }
    return longest;
}

/* Tables fit the terminal (issue 13): $COLUMNS stands for it here, as a
 * pipe has no width; without it, nothing is cut. Sizes are in IEC units
 * and size options read kB/MB as powers of 1000, KiB/MiB as of 1024. */
static void tool_tables_fit_the_terminal(void **state)
{
    (void)state;
    char path[PATH_CAP], *out = NULL;
    make_cache(jc_test_path(path, sizeof path, "columns.db"), 3, 2);
    const char *cmds[] = {"stats %s", "ls %s", "diff -f %s %.8s %.8s"};
    const char *from[] = {"FUNCTION", NULL, NULL};
    char a[33], b[33];
    key_at(path, 4, a);
    key_at(path, 5, b);
    for (size_t i = 0; i < 3; i++) {
        unsetenv("COLUMNS");
        tool(&out, cmds[i], path, a, b);
        size_t wide = longest_line(out, from[i]);
        assert_true(wide > 80); /* else the test shows nothing */
        free(out);
        setenv("COLUMNS", "80", 1);
        tool(&out, cmds[i], path, a, b);
        if (longest_line(out, from[i]) > 80)
            fail_msg("'%s' at 80 columns:\n%s", cmds[i], out);
        free(out);
        setenv("COLUMNS", "200", 1);
        tool(&out, cmds[i], path, a, b);
        assert_true(longest_line(out, from[i]) <= 200);
        free(out);
    }
    unsetenv("COLUMNS");
    out = safe_output(0, "stats %s", path);
    assert_contains(out, "KiB");
    free(out);
    expect(0, "would remove 0 entries (0B)", "prune %s --max-size 1MB --dry-run", path);
    expect(0, "would remove 0 entries (0B)", "prune %s --max-payload 64KiB --dry-run", path);
    expect(2, "kB, MB, GB or TB (powers of 1000)", "prune %s --max-size 5XB", path);
}

/* Bash completion (tools/jobcache.bash) over the hidden helper
 * `jobcache __complete`: subcommands, a command's options, function names
 * and versions read from the cache. */
static void tool_bash_completion(void **state)
{
    (void)state;
    char path[PATH_CAP], *out = NULL;
    make_cache(jc_test_path(path, sizeof path, "complete.db"), 2, 1);
    expect(0, "break-lease", "__complete commands");
    assert_int_equal(tool(&out, "__complete options diff"), 0);
    assert_contains(out, "--versions\n");
    assert_lacks(out, "--repair");
    free(out);
    /* The cache is the one the line names, however it names it. */
    const char *lines[] = {"ls %s", "ls --file %s", "ls --file=%s --limit 3", "stats %s", "prune --dry-run %s"};
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
        char line[PATH_CAP + 64];
        snprintf(line, sizeof line, lines[i], path);
        assert_int_equal(tool(&out, "__complete functions %s", line), 0);
        assert_string_equal(out, "scale\nsquare\n");
        free(out);
    }
    expect(0, "v1", "__complete versions square ls %s", path);
    if (system("command -v bash >/dev/null 2>&1") != 0)
        skip();
    char cmd[5 * PATH_CAP];
    const char *dir = strrchr(JC_TOOL_PATH, '/');
    snprintf(cmd, sizeof cmd,
             "PATH='%.*s':\"$PATH\" bash -c '. %s/../tools/jobcache.bash && "
             "COMP_WORDS=(jobcache ls -f %s --function s); COMP_CWORD=5; _jobcache; echo \"${COMPREPLY[*]}\"; "
             "COMP_WORDS=(jobcache pr); COMP_CWORD=1; _jobcache; echo \"${COMPREPLY[*]}\"; "
             "COMP_WORDS=(jobcache prune --max-e); COMP_CWORD=2; _jobcache; echo \"${COMPREPLY[*]}\"; "
             /* issue 25: the cache named as ls's FILE, not --file */
             "COMP_WORDS=(jobcache ls %s --function \"\"); COMP_CWORD=4; _jobcache; echo \"${COMPREPLY[*]}\"; "
             "COMP_WORDS=(jobcache ls %s --function square --version \"\"); COMP_CWORD=6; _jobcache; "
             "echo \"${COMPREPLY[*]}\"'",
             (int)(dir - JC_TOOL_PATH), JC_TOOL_PATH, JC_TEST_SOURCE_DIR, path, path, path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[5][256] = {"", "", "", "", ""};
    for (int i = 0; i < 5; i++)
        assert_non_null(fgets(line[i], sizeof line[i], p));
    assert_int_equal(pclose(p), 0);
    assert_string_equal(line[0], "scale square\n");
    assert_string_equal(line[1], "prune\n");
    assert_string_equal(line[2], "--max-entries\n");
    assert_string_equal(line[3], "scale square\n");
    assert_string_equal(line[4], "v1\n");
}

/* stats -z zeroes the hit counts, as ccache -z (issue 25): hits and the
 * time saved count from then on; when entries were last used stays (it is
 * what eviction goes by), and so does the record of runs. A read-only cache
 * is refused and keeps its counts. */
static void tool_stats_zero_stats_zeroes_hit_counts(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "zero.db");
    make_cache(path, 5, 0);
    make_cache(path, 5, 0); /* a rerun: 5 hits */
    jc_test_fold_hits(path);
    sql(path, "UPDATE entries SET hits = 3, last_used = 1700000000.5 WHERE rowid = 1");
    expect(0, "of which 7 hits saved", "stats %s", path);
    int64_t runs = jc_test_sql_int(path, "SELECT count(*) FROM runs");
    setenv("JOBCACHE_READONLY", "1", 1);
    expect(3, "read-only", "stats -z %s", path);
    unsetenv("JOBCACHE_READONLY");
    assert_int_equal(jc_test_sql_int(path, "SELECT sum(hits) FROM entries"), 7);
    expect(0, "hit counts zeroed (5 entries had hits)", "stats %s -z", path);
    assert_int_equal(jc_test_sql_int(path, "SELECT sum(hits) FROM entries"), 0);
    assert_int_equal(jc_test_sql_int(path, "SELECT last_used = 1700000000.5 FROM entries WHERE rowid = 1"), 1);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM runs"), runs);
    expect(0, "\"hits\": 0", "stats --zero-stats --json %s", path);
    expect(0, "of which 0 hits saved", "stats %s", path);
}

/* Evictions by max_size in the command (issue 23): stats counts them, log
 * says which run evicted how many, both in --json too; stats -z zeroes the
 * count. */
static void tool_stats_and_log_tell_evictions(void **state)
{
    (void)state;
    char path[PATH_CAP], err[PATH_CAP];
    jc_test_path(path, sizeof path, "evict.db");
    make_cache(path, 3000, 0);
    int saved = jc_test_stderr_to(jc_test_path(err, sizeof err, "evict.err"));
    jc_cache *c = jc_cache_open(path, &(jc_cache_options){.max_size = 96 * 1024});
    assert_non_null(c);
    jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
    for (int i = 10000; i < 10100; i++)
        assert_int_equal(jc_delayed(b, square, jc_int(i)), 0);
    jc_results_free(jc_run(b));
    jc_batch_free(b);
    jc_cache_close(c);
    jc_test_stderr_restore(saved);
    int64_t run_evicted = jc_test_sql_int(path, "SELECT sum(evicted) FROM runs");
    assert_true(run_evicted > 0);
    char want[64];
    snprintf(want, sizeof want, ", %lld evicted (", (long long)run_evicted);
    expect(0, want, "log %s", path);
    expect(0, "\"evicted\": ", "log %s --json", path);
    expect(0, "evicted       ", "stats %s", path);
    expect(0, "\"evicted_entries\": ", "stats %s --json", path);
    expect(0, "hit counts zeroed", "stats %s -z", path);
    char *out = NULL;
    assert_int_equal(tool(&out, "stats %s", path), 0);
    assert_lacks(out, "evicted       ");
    free(out);
}

/* The peak memory (VmHWM, KiB) of `jobcache ls FILE [SORT] | head -1` when
 * its first line has come: the command runs with its output on a pipe
 * read to that line and then no further (a listing of more than 64 KiB
 * then waits on the full pipe, alive, as under head), and the pipe is
 * closed after. */
static long peak_kib_at_first_line(const char *file, const char *sort)
{
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd[1], STDOUT_FILENO);
        close(fd[0]);
        close(fd[1]);
        if (*sort)
            execl(JC_TOOL_PATH, "jobcache", "ls", file, "--sort", sort, (char *)NULL);
        else
            execl(JC_TOOL_PATH, "jobcache", "ls", file, (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    FILE *out = fdopen(fd[0], "r");
    assert_non_null(out);
    char line[4096], path[64];
    assert_non_null(fgets(line, sizeof line, out));
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *st = fopen(path, "r");
    long kib = -1;
    while (st && fgets(line, sizeof line, st))
        if (sscanf(line, "VmHWM: %ld", &kib) == 1)
            break;
    if (st)
        fclose(st);
    fclose(out);
    waitpid(pid, NULL, 0);
    return kib;
}

/* `ls | head -1` in memory that does not grow with the cache (issue 23:
 * 25 MB at 100k entries, 337 MB at 2M: a listing passes over the file once,
 * and the connection's 64 MiB page cache and 256 MiB map kept it all); and
 * in key order (--sort key), the first line at once, in the key's order. */
static void tool_ls_memory_does_not_grow_with_the_cache(void **state)
{
    (void)state;
    char small[PATH_CAP], large[PATH_CAP];
    /* Both list more than a pipe holds (64 KiB), so that both wait alive. */
    make_cache(jc_test_path(small, sizeof small, "ls-small.db"), 3000, 0);
    make_cache(jc_test_path(large, sizeof large, "ls-large.db"), 60000, 0);
    struct stat sb;
    assert_true(jc_test_pg() || stat(large, &sb) == 0);
    assert_true(jc_test_pg() || sb.st_size > 8 << 20);
    const char *sorts[] = {"", "used", "key"};
    size_t nsorts = sizeof sorts / sizeof *sorts;
#ifdef __SANITIZE_ADDRESS__
    /* AddressSanitizer keeps freed memory in quarantine: the peak then
     * grows with what a listing allocates and frees, not what it keeps. */
    nsorts = 0;
#endif
    for (size_t i = 0; i < nsorts; i++) {
        long base = peak_kib_at_first_line(small, sorts[i]);
        long big = peak_kib_at_first_line(large, sorts[i]);
        assert_true(base > 0 && big > 0);
        if (big - base > 4096)
            fail_msg("ls --sort %s: %ld KiB on 60000 entries (%lld MiB), %ld KiB on 3000", *sorts[i] ? sorts[i] : "name",
                     big, (long long)(sb.st_size >> 20), base);
    }
    /* Key order: keys ascending. */
    char *out = NULL;
    assert_int_equal(tool(&out, "ls %s --sort key --json -n 50", large), 0);
    const char *p = out, *prev = NULL;
    int n = 0;
    while ((p = strstr(p, "\"key\": \""))) {
        p += 8;
        if (prev)
            assert_true(strncmp(prev, p, 32) < 0);
        prev = p;
        n++;
    }
    assert_int_equal(n, 50);
    free(out);
    expect(2, "name, used, size, time, hits, created or key", "ls %s --sort shuffle", large);
}

/* `ls` prints each entry as it reads it (issue 16, item 7): entries removed
 * while it is printing the first ones are not printed. (Before, it read and
 * formatted every entry to size its columns before printing a line: 1 GB
 * and 25 s on 2 million entries before `ls | head -1` printed anything.) */
static void tool_ls_prints_as_it_reads(void **state)
{
    (void)state;
    char path[PATH_CAP], cmd[PATH_CAP + 256], line[1024];
    make_cache(jc_test_path(path, sizeof path, "ls-stream.db"), 5000, 0);
    snprintf(cmd, sizeof cmd, "%s ls %s", JC_TOOL_PATH, path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(line, sizeof line, p));
    assert_contains(line, "KEY");
    size_t header_at = (size_t)(strstr(line, "SIZE") - line);
    /* ls now waits on the full pipe, a few hundred lines in. */
    jc_cache *c = open_cache(path, 0);
    assert_int_equal(jc_cache_clear(c, NULL), 0);
    jc_cache_close(c);
    size_t lines = 1;
    while (fgets(line, sizeof line, p)) {
        lines++;
        /* Columns of fixed widths: every line has its size where the
         * header says. */
        assert_true(strlen(line) > header_at + 4);
        assert_true(line[header_at + 3] == 'B');
    }
    assert_int_equal(pclose(p), 0);
    assert_true(lines > 1);
    assert_true(lines < 2500);
}

/* Entries of another key format (issue 16, item 8) in the command. */
static void tool_other_key_formats(void **state)
{
    (void)state;
    char path[PATH_CAP], other[PATH_CAP], *out = NULL;
    make_cache(jc_test_path(path, sizeof path, "formats.db"), 10, 0);
    sql(path, "UPDATE entries SET key_format = 2, key = randomblob(16) WHERE rowid <= 3");
    expect(0, "3 entries are of another key format", "verify %s", path);
    expect(0, "checked 7 entries: all sound", "verify %s", path);
    expect(0, "kept", "verify %s --repair", path);
    assert_int_equal(entries(path), 10);
    expect(0, "of which 3 of another key format", "stats %s", path);
    expect(0, "\"other_format_entries\": 3", "stats %s --json", path);
    jc_test_path(other, sizeof other, "formats-into.db");
    assert_int_equal(tool(&out, "merge -f %s %s", other, path), 0);
    assert_contains(out, "added 7");
    assert_contains(out, "skipped 3 of another key format");
    free(out);
    expect(0, "would remove 3 entries", "prune %s --other-formats --dry-run", path);
    expect(0, "removed 3 entries", "prune %s --other-formats", path);
    assert_int_equal(entries(path), 7);
    expect(0, "checked 7 entries: all sound", "verify %s", path);
}

/* prune --max-size bounds the file on disk, as max_size does. */
static void tool_prune_max_size_bounds_the_file(void **state)
{
    (void)state;
    if (jc_test_file_only())
        return;
    char path[PATH_CAP];
    struct stat sb;
    make_cache(jc_test_path(path, sizeof path, "prune-disk.db"), 3000, 0);
    assert_int_equal(stat(path, &sb), 0);
    assert_true(sb.st_size > 128 * 1024);
    expect(0, "would remove", "prune %s --max-size 80K --dry-run", path);
    assert_int_equal(entries(path), 3000);
    expect(0, "removed", "prune %s --max-size 80K", path); /* an empty file takes 48K */
    int64_t left = entries(path);
    assert_true(left > 20 && left < 3000);
    char wal[PATH_CAP + 8];
    snprintf(wal, sizeof wal, "%s-wal", path);
    assert_int_equal(stat(path, &sb), 0);
    int64_t total = sb.st_size;
    if (stat(wal, &sb) == 0)
        total += sb.st_size;
    assert_true(total <= 80 * 1024);
    /* The newest stayed. */
    assert_int_equal(jc_test_sql_int(path, "SELECT max(rowid) FROM entries"), 3000);
}

/* A pipeline in the command (issue 27): log counts the intermediate values
 * a run read, show lists an entry's inputs, rm --downstream takes an entry
 * with everything computed from it. */
static jc_progress run_echo_chain(const char *path, char keys[3][33])
{
    jc_cache *c = jc_cache_open(path, NULL);
    assert_non_null(c);
    jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
    jc_ref a = jc_delayed_ref(b, echo, jc_int(41));
    jc_ref m = jc_delayed_ref(b, echo, jc_list(jc_use(a), jc_int(1)));
    assert_true(jc_ref_ok(jc_delayed_ref(b, echo, jc_use(m))));
    jc_results *res = jc_run(b);
    if (jc_results_status(res))
        fail_msg("%s: %s", jc_results_message(res), jc_result_error(res, 1) ? jc_result_error(res, 1) : "");
    jc_progress p = jc_results_summary(res);
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
    /* The keys, in the order the chain stored them. */
    for (size_t i = 0; i < 3; i++) {
        char q[128];
        snprintf(q, sizeof q, "SELECT lower(hex(key)) FROM entries ORDER BY rowid LIMIT 1 OFFSET %zu", i);
        char *k = jc_test_sql_text(path, q);
        assert_non_null(k);
        snprintf(keys[i], 33, "%s", k);
        free(k);
    }
    return p;
}

static void tool_log_show_and_rm_downstream_of_a_pipeline(void **state)
{
    (void)state;
    char path[PATH_CAP], keys[3][33], want[160];
    jc_test_path(path, sizeof path, "pipe.db");
    jc_test_remove_db(path);
    assert_int_equal(run_echo_chain(path, keys).computed, 3);
    jc_progress p = run_echo_chain(path, keys); /* every value wanted: the two inputs are read */
    assert_int_equal(p.cached, 3);
    assert_int_equal(p.inputs_read, 2);
    expect(0, "3 calls, 3 cached, 0 computed, 0 failed, 2 inputs read in", "log %s", path);
    expect(0, "\"inputs_read\": 2", "log %s --json", path);
    /* The middle entry's input is the first; the last's is the middle. */
    snprintf(want, sizeof want, "inputs      1: %s echo (result xxh3 ", keys[0]);
    expect(0, want, "show -f %s %.12s", path, keys[1]);
    expect(0, "<result xxh3 ", "show -f %s %.12s", path, keys[2]);
    expect(0, "<result xxh3 ", "export %s", path);
    expect(0, "would remove 3 entries", "rm -f %s --downstream --dry-run %.12s", path, keys[0]);
    expect(0, "would remove 2 entries", "rm -f %s --downstream --dry-run %.12s", path, keys[1]);
    expect(2, "--downstream takes key prefixes", "rm -f %s --downstream", path);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), 3);
    expect(0, "removed 2 entries", "rm -f %s --downstream %.12s", path, keys[1]);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), 1);
}

/* config, log, find and the recent hit rate of stats (issue 12). */
static void tool_config_log_and_find(void **state)
{
    (void)state;
    char path[PATH_CAP], *out = NULL;
    make_cache(jc_test_path(path, sizeof path, "ops.db"), 6, 0); /* a run: square(0..5) */
    expect(0, "max-size   0", "config --file %s", path);
    expect(0, "max-size = 1MiB", "config max-size 1MiB --file %s", path);
    expect(0, "max-size   1048576        (file)", "config --file %s", path);
    expect(0, "1MiB", "config max-size --file %s", path);
    expect(2, "'lots' is not a size", "config max-size lots --file %s", path);
    expect(2, "unknown setting 'colour'", "config colour blue --file %s", path);
    expect(0, "back to its default", "config max-size default --file %s", path);
    expect(0, "(not set)", "config max-size --file %s", path);

    assert_int_equal(tool(&out, "log %s", path), 0);
    assert_contains(out, "run ");
    assert_contains(out, "6 calls, 0 cached, 6 computed, 0 failed");
    free(out);
    assert_int_equal(tool(&out, "log %s --json", path), 0);
    assert_contains(out, "\"kind\": \"run\"");
    assert_contains(out, "\"computed\": 6");
    free(out);
    /* Runs recorded, none failed: it says so (0.2.0: "(no runs recorded)"). */
    expect(0, "(no failed runs among the runs recorded)", "log %s --failed", path);
    expect(0, "recent runs   1, 6 calls, 0.0% of them cached", "stats %s", path);

    expect(0, "square v1  9", "find square 3 --file %s", path);
    expect(1, "no entry of square", "find square 3.0 --file %s", path); /* a double: another call */
    expect(1, "no entry of square", "find square 3 --version v9 --file %s", path);
}

/* A mistyped command names the one likely meant, as git does (0.2.0 said
 * only "unknown command"); a word far from every command gets no guess. */
static void tool_a_mistyped_command_suggests_the_one_meant(void **state)
{
    (void)state;
    expect(2, "unknown command 'stat'; did you mean 'stats'?", "stat");
    expect(2, "did you mean 'verify'?", "verfy");
    expect(2, "did you mean 'prune'?", "help prnue");
    char *out = NULL;
    assert_int_equal(tool(&out, "bogus"), 2);
    assert_contains(out, "unknown command 'bogus'");
    assert_null(strstr(out, "did you mean"));
    free(out);
}

/* The man page's synopsis names every command of `jobcache help` (0.2.0's
 * lacked config, log and find). */
static void tool_the_man_page_synopsis_lists_every_command(void **state)
{
    (void)state;
    char *out = NULL, *man = jc_test_read_file(JC_TEST_SOURCE_DIR "/../docs/jobcache.1", NULL);
    assert_non_null(man);
    char *synopsis_end = strstr(man, ".SH DESCRIPTION");
    assert_non_null(synopsis_end);
    *synopsis_end = '\0';
    assert_int_equal(tool(&out, "help"), 0);
    char *list = strstr(out, "commands:\n");
    assert_non_null(list);
    size_t n = 0;
    for (char *line = list + strlen("commands:\n"); strncmp(line, "  ", 2) == 0;) {
        char name[32] = "", want[64] = ".B jobcache ";
        if (sscanf(line + 2, "%31[a-z-]", name) == 1) {
            size_t w = strlen(want);
            for (const char *c = name; *c && w < sizeof want - 2; c++) {
                if (*c == '-')
                    want[w++] = '\\';
                want[w++] = *c;
            }
            want[w] = '\0';
            if (!strstr(man, want))
                fail_msg("the man page's synopsis has no '%s'", want);
            n++;
        }
        char *nl = strchr(line, '\n');
        if (!nl)
            break;
        line = nl + 1;
    }
    assert_true(n >= 18);
    free(out);
    free(man);
}

/* The gap after an argument of text (in bytes) up to the next column, on
 * the line of out that holds needle. */
static size_t gap_after(const char *out, const char *needle)
{
    const char *p = strstr(out, needle);
    assert_non_null(p);
    p += strlen(needle);
    size_t n = 0;
    while (p[n] == ' ')
        n++;
    return n;
}

/* Tables count display columns, not bytes or characters: a CJK label
 * takes two columns a character, so the columns after it line up (0.2.0
 * counted 4 for "温度実験", 8 wide, and shifted the next column by 4). */
static void tool_tables_count_display_width(void **state)
{
    (void)state;
    char path[PATH_CAP], *out = NULL;
    jc_test_path(path, sizeof path, "wide.db");
    jc_test_remove_db(path);
    jc_cache *c = jc_cache_open(path, NULL);
    assert_non_null(c);
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
    assert_int_equal(jc_delayed(b, sir, jc_double(0.5), jc_int(1), jc_kw("label", jc_str("温度実験"))), 0);
    assert_int_equal(jc_delayed(b, sir, jc_double(0.5), jc_int(2), jc_kw("label", jc_str("plain"))), 0);
    jc_results_free(jc_run(b));
    jc_batch_free(b);
    jc_cache_close(c);
    assert_int_equal(tool(&out, "ls %s", path), 0);
    /* "温度実験" is 8 columns, "plain" 5: 3 spaces fewer after the first. */
    assert_int_equal(gap_after(out, "label=\"温度実験\"") + 3, gap_after(out, "label=\"plain\""));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tool_ls_prints_as_it_reads),
        cmocka_unit_test(tool_tables_count_display_width),
        cmocka_unit_test(tool_a_mistyped_command_suggests_the_one_meant),
        cmocka_unit_test(tool_the_man_page_synopsis_lists_every_command),
        cmocka_unit_test(tool_other_key_formats),
        cmocka_unit_test(tool_prune_max_size_bounds_the_file),
        cmocka_unit_test(tool_help_everywhere),
        cmocka_unit_test(tool_usage_errors),
        cmocka_unit_test(tool_unlock_host_clears_a_record),
        cmocka_unit_test(tool_finds_the_file),
        cmocka_unit_test(tool_readonly_commands_never_create_a_file),
        cmocka_unit_test(tool_refuses_a_file_that_is_not_a_cache),
        cmocka_unit_test(tool_exit_statuses_tell_usage_findings_and_failures_apart),
        cmocka_unit_test(tool_stats_text_and_json),
        cmocka_unit_test(tool_ls_filters_sorts_and_json),
        cmocka_unit_test(tool_show_entry),
        cmocka_unit_test(tool_show_entry_that_does_not_decode),
        cmocka_unit_test(tool_diff_two_calls),
        cmocka_unit_test(tool_diff_versions),
        cmocka_unit_test(tool_tables_fit_the_terminal),
        cmocka_unit_test(tool_bash_completion),
        cmocka_unit_test(tool_stats_zero_stats_zeroes_hit_counts),
        cmocka_unit_test(tool_ls_memory_does_not_grow_with_the_cache),
        cmocka_unit_test(tool_stats_and_log_tell_evictions),
        cmocka_unit_test(tool_rm_by_key_and_function),
        cmocka_unit_test(tool_prune),
        cmocka_unit_test(tool_verify_finds_corrupted_entries),
        cmocka_unit_test(tool_export_json_lines),
        cmocka_unit_test(tool_export_tables),
        cmocka_unit_test(tool_merge_vacuum_clear),
        cmocka_unit_test(tool_output_escapes_hostile_text),
        cmocka_unit_test(tool_json_is_strict),
        cmocka_unit_test(tool_sums_of_hostile_sizes_saturate),
        cmocka_unit_test(tool_reads_while_a_run_writes),
        cmocka_unit_test(tool_backup_and_wal_notice),
        cmocka_unit_test(tool_config_log_and_find),
        cmocka_unit_test(tool_log_show_and_rm_downstream_of_a_pipeline),
        cmocka_unit_test(tool_ls_shows_a_damaged_result_in_its_column),
        cmocka_unit_test(tool_reads_a_cache_on_a_read_only_mount),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
