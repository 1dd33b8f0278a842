/*
 * Tests of what only the PostgreSQL store has (issue 26): its location, a
 * password never shown, a server that cannot be reached, a schema that is
 * not ours or is newer, read-only roles, and names and strings full of
 * quotes and backslashes. What both stores do is tested by the other test
 * binaries, run a second time on PostgreSQL (CTest's *_pg tests).
 *
 * Run without JC_TEST_PG, only the tests that need no server run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#include <poll.h>
#include <sched.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <signal.h>

#include <jobcache.h>

#define JC_TEST_WANT_ADD_FAILS
#include "store/pg/pg.h"
/* This test links libpq and calls it by its own names (testutil.h), not
 * through the table the store loads (store/pg/libpq.h). */
#define JC_LIBPQ_TABLE_ITSELF
#include "store/pg/pg_int.h"
#include "store/store.h"
#include "testutil.h"

#define PATH_CAP 4096

/* Echoes its string argument with a prefix full of quotes. */
static int quoted(jc_call *call)
{
    const char *s = jc_arg_str(call, 0);
    char buf[512];
    snprintf(buf, sizeof buf, "it's \"%s\" \\ done;--", s);
    return jc_return(call, jc_str(buf));
}
JC_FUNCTION_NAMED(quoted, "quo'te\"d\\fn; DROP TABLE entries;--", "v'1\\");

static void location_is_recognised_by_its_scheme(void **state)
{
    (void)state;
    assert_true(jc__pg_is_location("postgresql://host/db"));
    assert_true(jc__pg_is_location("postgres:///db?host=/tmp"));
    assert_false(jc__pg_is_location("./postgresql.db"));
    assert_false(jc__pg_is_location("/data/postgresql://x"));
    assert_false(jc__pg_is_location(""));
}

static void a_location_is_shown_without_its_password(void **state)
{
    (void)state;
    char *s = jc__pg_redact("postgresql://bob:s3cret@db.lab:5433/sweeps?options=-csearch_path%3Dalice"
                            "&sslmode=require");
    assert_non_null(s);
    assert_null(strstr(s, "s3cret"));
    assert_string_equal(s, "postgresql://bob@db.lab:5433/sweeps?options=-csearch_path%3Dalice");
    free(s);
    s = jc__pg_redact("postgresql:///sweeps?host=/run/pg&password=s3cret");
    assert_non_null(s);
    assert_null(strstr(s, "s3cret"));
    assert_string_equal(s, "postgresql://%2Frun%2Fpg/sweeps");
    free(s);
    /* What is shown is a location libpq reads back as the same cache
     * (0.3.0's showed options=-csearch_path=alice, which libpq refuses:
     * `jobcache config KEY VALUE` reopened the cache by it and failed). */
    s = jc__pg_redact("postgresql://b%40x:pw@/my%20db?host=/run/my%20pg&options=-csearch_path%3Da%26b");
    assert_non_null(s);
    assert_string_equal(s, "postgresql://b%40x@%2Frun%2Fmy%20pg/my%20db?options=-csearch_path%3Da%26b");
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(s, &err);
    assert_non_null(opts);
    int seen = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        const char *want = !strcmp(o->keyword, "user")      ? "b@x"
                           : !strcmp(o->keyword, "dbname")  ? "my db"
                           : !strcmp(o->keyword, "host")    ? "/run/my pg"
                           : !strcmp(o->keyword, "options") ? "-csearch_path=a&b"
                                                            : NULL;
        if (want) {
            assert_non_null(o->val);
            assert_string_equal(o->val, want);
            seen++;
        } else if (!strcmp(o->keyword, "password")) {
            assert_null(o->val);
        }
    }
    assert_int_equal(seen, 4);
    PQconninfoFree(opts);
    free(s);
    /* Each host with its port (0.4.0 showed h1,h2:1,2: three hosts to
     * libpq); a user holding ':' is not read back as user and password. */
    static const char *const pairs[][2] = {
        {"postgresql://h1:1,h2:2/d", "postgresql://h1:1,h2:2/d"},
        {"postgresql:///d?host=h1,h2&port=5433", "postgresql://h1:5433,h2:5433/d"},
        {"postgresql:///d?user=a%3Ab&port=7", "postgresql://a%3Ab@:7/d"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        s = jc__pg_redact(pairs[i][0]);
        assert_non_null(s);
        assert_string_equal(s, pairs[i][1]);
        free(s);
    }
}

/* No server behind the socket: a clear error at once, naming the host and
 * never the password; not a hang. */
static void an_unreachable_server_is_an_error_naming_it_without_the_password(void **state)
{
    (void)state;
    double t0 = wall_now();
    jc_cache *c = jc_cache_open("postgresql://bob:s3cret@/jobcache?host=/nonexistent-jc-socket-dir", NULL);
    double took = wall_now() - t0;
    assert_null(c);
    assert_int_equal(jc_errcode(), JC_EIO);
    const char *m = jc_errmsg();
    assert_non_null(strstr(m, "/nonexistent-jc-socket-dir"));
    assert_non_null(strstr(m, "cannot connect"));
    assert_null(strstr(m, "s3cret"));
    assert_true(took < 10.0);
}

/* libpq quotes a location it cannot parse whole: the message must not. */
static void a_malformed_location_is_refused_without_its_password(void **state)
{
    (void)state;
    jc_cache *c = jc_cache_open("postgresql://u:s3cret@[::1]x/db", NULL);
    assert_null(c);
    assert_int_equal(jc_errcode(), JC_EINVAL);
    assert_null(strstr(jc_errmsg(), "s3cret"));
    assert_non_null(strstr(jc_errmsg(), "URI"));
}

/* ---- with the tests' server ---- */

#define NEED_SERVER()                                                                                  \
    do {                                                                                               \
        if (!jc_test_pg()) {                                                                           \
            skip();                                                                                    \
            return;                                                                                    \
        }                                                                                              \
    } while (0)

/* A schema holding tables of someone else's is not a cache, and is left
 * exactly as it is. */
static void a_schema_of_other_tables_is_refused_and_left_alone(void **state)
{
    (void)state;
    NEED_SERVER();
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "foreign");
    assert_int_equal(jc_test_pg_sql(path, "CREATE SCHEMA t_test_pg_foreign", NULL, false), 0);
    assert_int_equal(jc_test_pg_sql(path, "CREATE TABLE results (x int); INSERT INTO results VALUES (7)", NULL,
                                    false),
                     0);
    jc_cache *c = jc_cache_open(path, NULL);
    assert_null(c);
    assert_int_equal(jc_errcode(), JC_ECORRUPT);
    assert_non_null(strstr(jc_errmsg(), "not a jobcache cache"));
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"), 1);
    assert_int_equal(jc_test_sql_int(path, "SELECT x FROM results"), 7);
}

/* A read-only open of a schema that does not exist creates nothing. */
static void a_readonly_open_of_no_cache_creates_nothing(void **state)
{
    (void)state;
    NEED_SERVER();
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "none");
    jc_cache *c = jc_cache_open(path, &(jc_cache_options){.flags = JC_CACHE_READONLY});
    assert_null(c);
    assert_int_equal(jc_errcode(), JC_ENOTFOUND);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM pg_namespace WHERE nspname = 't_test_pg_none'"),
                     0);
}

/* A cache of a newer jobcache is refused and not changed. */
static void a_newer_schema_is_refused_without_a_change(void **state)
{
    (void)state;
    NEED_SERVER();
    char path[PATH_CAP];
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "newer"), 0);
    jc_value *v = jc_memo(c, add, jc_int(1), jc_int(2));
    assert_non_null(v);
    jc_value_free(v);
    jc_cache_close(c);
    sql(path, "UPDATE meta SET value = '999' WHERE name = 'schema_version'");
    c = jc_cache_open(path, NULL);
    assert_null(c);
    assert_int_equal(jc_errcode(), JC_ESCHEMA);
    assert_non_null(strstr(jc_errmsg(), "999"));
    assert_int_equal(jc_test_sql_int(path, "SELECT value::int FROM meta WHERE name = 'schema_version'"), 999);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), 1);
}

/* Names, versions and strings full of quotes, backslashes and SQL go in
 * as parameters and come back as they were. */
static void quotes_and_backslashes_are_stored_and_read_back_as_they_are(void **state)
{
    (void)state;
    NEED_SERVER();
    char path[PATH_CAP];
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "quotes"), 0);
    const char *arg = "O'Brien \\\"x\\\"; DELETE FROM entries;--";
    jc_value *v = jc_memo(c, quoted, jc_str(arg));
    assert_non_null(v);
    jc_value_free(v);
    jc_cache_close(c);
    c = open_cache(path, JC_CACHE_READONLY);
    v = jc_memo(c, quoted, jc_str(arg));
    assert_non_null(v);
    const char *s = NULL;
    assert_int_equal(jc_value_get_str(v, &s, NULL), 0);
    char want[512];
    snprintf(want, sizeof want, "it's \"%s\" \\ done;--", arg);
    assert_string_equal(s, want);
    jc_value_free(v);
    jc_cache_close(c);
    char *fn = jc_test_sql_text(path, "SELECT function || '|' || version FROM entries");
    assert_non_null(fn);
    assert_string_equal(fn, "quo'te\"d\\fn; DROP TABLE entries;--|v'1\\");
    free(fn);
}

/* A role that may only read the schema inspects and hits, and a write is
 * refused saying the cache is read-only; nothing stored is lost. */
static void a_readonly_role_reads_but_cannot_write(void **state)
{
    (void)state;
    NEED_SERVER();
    char path[PATH_CAP];
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "role"), 0);
    jc_value *v = jc_memo(c, add, jc_int(20), jc_int(22));
    assert_non_null(v);
    jc_value_free(v);
    jc_cache_close(c);
    jc_test_pg_sql(path, "DROP ROLE IF EXISTS jc_reader", NULL, true);
    sql(path, "CREATE ROLE jc_reader LOGIN; GRANT USAGE ON SCHEMA t_test_pg_role TO jc_reader;"
              " GRANT SELECT ON ALL TABLES IN SCHEMA t_test_pg_role TO jc_reader");
    char ro[PATH_CAP];
    snprintf(ro, sizeof ro, "%s", path);
    char *u = strstr(ro, "://jobcache@"); /* jc_test_location's user */
    assert_non_null(u);
    memmove(u + strlen("://jc_reader@"), u + strlen("://jobcache@"), strlen(u + strlen("://jobcache@")) + 1);
    memcpy(u, "://jc_reader@", strlen("://jc_reader@"));

    c = jc_cache_open(ro, &(jc_cache_options){.flags = JC_CACHE_READONLY});
    assert_non_null(c);
    add_calls = 0;
    v = jc_memo(c, add, jc_int(20), jc_int(22));
    assert_non_null(v);
    assert_int_equal(add_calls, 0); /* a hit */
    jc_value_free(v);
    jc_cache_close(c);

    /* Opened for writing, the first write says what is wrong. */
    c = jc_cache_open(ro, NULL);
    if (c) {
        int rc = jc_cache_config_set(c, "max-size", "1G");
        assert_int_equal(rc, JC_EREADONLY);
        assert_non_null(strstr(jc_errmsg(), "read"));
        jc_cache_close(c);
    } else {
        assert_int_equal(jc_errcode(), JC_EREADONLY);
    }
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), 1);
    jc_test_pg_sql(path, "DROP OWNED BY jc_reader; DROP ROLE jc_reader", NULL, false);
}

/* `jobcache backup postgresql://... FILE`: a file with every entry, sound;
 * `jobcache merge FILE --file postgresql://...`: a job array's files go up. */
static void a_server_cache_backs_up_into_a_file_and_files_merge_into_it(void **state)
{
    (void)state;
    NEED_SERVER();
    char path[PATH_CAP], file[PATH_CAP], part[PATH_CAP];
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "backup"), 0);
    for (int i = 0; i < 5; i++)
        jc_value_free(jc_memo(c, add, jc_int(i), jc_int(100)));
    snprintf(file, sizeof file, "%s/backup.jobcache", jc_test_dir());
    unlink(file);
    assert_int_equal(jc_cache_backup(c, file), 0);
    assert_int_equal(jc_cache_backup(c, file), JC_EIO); /* never over an existing file */
    assert_int_equal(jc_cache_backup(c, path), JC_EINVAL); /* a backup is a file */
    assert_non_null(strstr(jc_errmsg(), "merge"));
    assert_null(strstr(jc_errmsg(), "options=")); /* the location is not repeated (a password could be in it) */

    jc_cache *b = open_cache(file, JC_CACHE_READONLY);
    jc_verify_result vr;
    assert_int_equal(jc_cache_verify(b, false, NULL, NULL, &vr), 0);
    assert_int_equal(vr.checked, 5);
    assert_int_equal(vr.bad_entries, 0);
    add_calls = 0;
    jc_value *v = jc_memo(b, add, jc_int(4), jc_int(100));
    assert_int_equal(add_calls, 0);
    jc_value_free(v);
    jc_cache_close(b);

    /* A part computed elsewhere, merged in: its entries hit here. */
    snprintf(part, sizeof part, "%s/part.jobcache", jc_test_dir());
    jc_test_remove_db(part);
    b = open_cache(part, 0);
    jc_value_free(jc_memo(b, add, jc_int(50), jc_int(100)));
    jc_cache_close(b);
    jc_merge_result mr;
    assert_int_equal(jc_cache_merge(c, part, &mr), 0);
    assert_int_equal(mr.added, 1);
    add_calls = 0;
    v = jc_memo(c, add, jc_int(50), jc_int(100));
    assert_int_equal(add_calls, 0);
    jc_value_free(v);
    jc_cache_close(c);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), 6);
}

/* A password the server refuses: a clear error naming the server, and
 * the password nowhere in it. */
static void a_refused_password_is_a_clear_error_without_the_password(void **state)
{
    (void)state;
    NEED_SERVER();
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "password");
    jc_test_pg_sql(path, "DROP ROLE IF EXISTS jc_password", NULL, true);
    sql(path, "CREATE ROLE jc_password LOGIN PASSWORD 'the-right-one'");
    char uri[PATH_CAP];
    snprintf(uri, sizeof uri, "postgresql://jc_password:wrong-s3cret@/jobcache?host=%s", jc_test_pg());
    jc_cache *c = jc_cache_open(uri, NULL);
    assert_null(c);
    assert_int_equal(jc_errcode(), JC_EIO);
    assert_non_null(strstr(jc_errmsg(), "password authentication failed"));
    assert_non_null(strstr(jc_errmsg(), jc_test_pg()));
    assert_null(strstr(jc_errmsg(), "wrong-s3cret"));
    /* The right one opens it; still never shown. */
    snprintf(uri, sizeof uri, "postgresql://jc_password:the-right-one@/jobcache?host=%s", jc_test_pg());
    c = jc_cache_open(uri, &(jc_cache_options){.flags = JC_CACHE_NOCREATE});
    if (c) {
        assert_null(strstr(jc_cache_path(c), "the-right-one"));
        jc_cache_close(c);
    } else {
        assert_null(strstr(jc_errmsg(), "the-right-one"));
    }
    jc_test_pg_sql(path, "DROP ROLE jc_password", NULL, false);
}

/* Entries stored in a transaction wait and go together at its end
 * (store/pg/entries.c): with and without a code fingerprint, a key stored
 * twice (the last one counts), read back within the transaction and
 * after; a rollback drops them. */
static void entries_stored_in_a_transaction_go_together_and_a_rollback_drops_them(void **state)
{
    (void)state;
    NEED_SERVER();
    char path[PATH_CAP];
    jc_cache_close(open_cache(jc_test_path(path, sizeof path, "together"), 0));
    jc__store *st = NULL;
    assert_int_equal(jc__store_open(path, 0, 0, &st), 0);
    uint8_t keys[3][JC__KEY_LEN], fp[JC__CHECK_LEN];
    memset(keys, 0, sizeof keys);
    for (int i = 0; i < 3; i++)
        keys[i][0] = (uint8_t)(i + 1);
    memset(fp, 0xab, sizeof fp);
    const char *results[] = {"\x01", "\x02", "\x03"};
    assert_int_equal(jc__store_begin(st), 0);
    for (int i = 0; i < 3; i++) {
        jc__entry_in e = {.key = keys[i], .function = "f'n", .version = "v1", .args = "\x90", .args_len = 1,
                          .result = "\x7f", .result_len = 1, .now = 1000 + i, .code_fp = i == 1 ? fp : NULL};
        assert_int_equal(jc__store_put(st, &e), 0);
    }
    /* Key 0 again: the last one stored counts. */
    jc__entry_in again = {.key = keys[0], .function = "f'n", .version = "v2", .args = "\x90", .args_len = 1,
                          .result = results[2], .result_len = 1, .now = 2000, .code_fp = fp};
    assert_int_equal(jc__store_put(st, &again), 0);
    jc__hit hit;
    assert_int_equal(jc__store_get(st, keys[2], &hit), 1); /* this transaction reads what it wrote */
    assert_int_equal(jc__store_commit(st), 0);

    assert_int_equal(jc__store_get(st, keys[0], &hit), 1);
    assert_int_equal(hit.result_len, 1);
    assert_memory_equal(hit.result, results[2], 1);
    assert_true(hit.has_code_fp);
    assert_int_equal(jc__store_get(st, keys[1], &hit), 1);
    assert_true(hit.has_code_fp);
    assert_memory_equal(hit.code_fp, fp, JC__CHECK_LEN);
    assert_int_equal(jc__store_get(st, keys[2], &hit), 1);
    assert_false(hit.has_code_fp);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries WHERE code_fp IS NULL"), 1);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries WHERE version = 'v2'"), 1);

    /* A rollback drops what waited. */
    uint8_t k4[JC__KEY_LEN] = {9};
    assert_int_equal(jc__store_begin(st), 0);
    jc__entry_in e4 = {.key = k4, .function = "g", .version = "v1", .args = "\x90", .args_len = 1,
                       .result = "\x7f", .result_len = 1, .now = 3000};
    assert_int_equal(jc__store_put(st, &e4), 0);
    assert_int_equal(jc__store_rollback(st), 0);
    assert_int_equal(jc__store_get(st, k4, &hit), 0);

    /* Waiting entries the server refuses at commit (a name that is not
     * UTF-8): the commit fails and rolls back, and the handle goes on. */
    assert_int_equal(jc__store_begin(st), 0);
    jc__entry_in bad = {.key = k4, .function = "bad\xff", .version = "v1", .args = "\x90", .args_len = 1,
                        .result = "\x7f", .result_len = 1, .now = 3000};
    assert_int_equal(jc__store_put(st, &bad), 0);
    assert_true(jc__store_commit(st) < 0);
    assert_non_null(strstr(jc_errmsg(), "rolled back"));
    assert_false(jc__store_in_transaction(st));
    assert_int_equal(jc__store_get(st, keys[1], &hit), 1);
    assert_int_equal(jc__store_get(st, k4, &hit), 0);
    assert_int_equal(jc__store_begin(st), 0);
    assert_int_equal(jc__store_put(st, &e4), 0);
    assert_int_equal(jc__store_commit(st), 0);
    assert_int_equal(jc__store_get(st, k4, &hit), 1);
    assert_int_equal(jc__store_delete(st, k4), 1);
    jc__store_close(st);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), 3);
}

/* ---- many hosts on one cache ---- */

#include <sys/mman.h>
#include <sys/wait.h>

enum { HOSTS = 8, CALLS = 20000, SHARED = CALLS / 2 };
static int *computed; /* per call id, in memory shared by the hosts */

static int counted(jc_call *call)
{
    int64_t x = jc_arg_int(call, 0);
    __atomic_add_fetch(&computed[x], 1, __ATOMIC_RELAXED);
    return jc_return_int(call, x * 3 + 1);
}
JC_FUNCTION(counted, "v1");

/* Host h's run: the shared calls 0 .. SHARED - 1, then its own. */
static int host_run(const char *path, int h)
{
    char boot[64];
    snprintf(boot, sizeof boot, "host-%d-0000-0000-0000-000000000000", h);
    setenv("JC_TEST_BOOT_ID", boot, 1);
    jc_cache *c = jc_cache_open(path, NULL);
    if (!c) {
        fprintf(stderr, "host %d: %s\n", h, jc_errmsg());
        return 1;
    }
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
    for (int i = 0; i < CALLS; i++) {
        int64_t x = i < SHARED ? i : SHARED + (int64_t)h * (CALLS - SHARED) + (i - SHARED);
        jc_delayed(b, counted, jc_int(x));
    }
    jc_results *res = jc_run(b);
    int bad = !res || jc_results_status(res) != JC_OK;
    for (int i = 0; !bad && i < CALLS; i++) {
        int64_t x = i < SHARED ? i : SHARED + (int64_t)h * (CALLS - SHARED) + (i - SHARED);
        if (jc_result_int(res, (size_t)i) != x * 3 + 1) {
            fprintf(stderr, "host %d: call %d came back wrong\n", h, i);
            bad = 1;
        }
    }
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
    return bad;
}

/* Eight "hosts" (each with a boot id of its own: JC_TEST_BOOT_ID) run
 * 20,000 calls each on one PostgreSQL cache at once, half of them shared
 * by all: no call is computed twice, nothing is lost, every result is
 * right. */
static void eight_hosts_share_one_cache_and_compute_each_call_once(void **state)
{
    (void)state;
    NEED_SERVER();
    char path[PATH_CAP];
    jc_cache_close(open_cache(jc_test_path(path, sizeof path, "hosts"), 0));
    size_t ids = SHARED + (size_t)HOSTS * (CALLS - SHARED);
    computed = mmap(NULL, ids * sizeof *computed, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(computed != MAP_FAILED);
    pid_t kids[HOSTS];
    for (int h = 0; h < HOSTS; h++) {
        kids[h] = fork();
        assert_true(kids[h] >= 0);
        if (kids[h] == 0)
            _exit(host_run(path, h));
    }
    for (int h = 0; h < HOSTS; h++) {
        int status = 0;
        assert_int_equal(waitpid(kids[h], &status, 0), kids[h]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    size_t twice = 0, never = 0;
    for (size_t i = 0; i < ids; i++) {
        twice += computed[i] > 1;
        never += computed[i] == 0;
    }
    assert_int_equal(never, 0);
    assert_int_equal(twice, 0);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), (int64_t)ids);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM lease_owners"), 0);
    munmap(computed, ids * sizeof *computed);
}

/* ---- a server restarted under a run ---- */

static int slowish(jc_call *call)
{
    usleep(3000);
    return jc_return_int(call, jc_arg_int(call, 0) * 2);
}
JC_FUNCTION(slowish, "v1");

static jc_results *run_slowish(jc_cache *c, int n)
{
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
    for (int i = 0; i < n; i++)
        jc_delayed(b, slowish, jc_int(i));
    jc_results *res = jc_run(b);
    jc_batch_free(b);
    return res;
}

/* The restart test's own server (a restart would cut off the other tests
 * sharing the fixture's), started before it and stopped after it even
 * when it fails (cmocka's setup and teardown). */
static char own_server[PATH_CAP];

static int own_server_sh(const char *cmd)
{
    const char *script = getenv("JC_TEST_PG_SERVER_SH");
    char line[2 * PATH_CAP];
    snprintf(line, sizeof line, "'%s' %s '%s' >/dev/null", script, cmd, own_server);
    return system(line) == 0 ? 0 : -1;
}

static int own_server_start(void **state)
{
    (void)state;
    if (!jc_test_pg() || !getenv("JC_TEST_PG_SERVER_SH"))
        return 0;
    snprintf(own_server, sizeof own_server, "%s/own-server", jc_test_dir());
    return own_server_sh("start");
}

static int own_server_stop(void **state)
{
    (void)state;
    if (own_server[0])
        own_server_sh("stop");
    return 0;
}

static int64_t entries_of(jc_cache *c)
{
    jc_stats *s = jc_cache_stats(c);
    assert_non_null(s);
    int64_t n = s->entries;
    jc_stats_free(s);
    return n;
}

/* The server restarts while a run stores its results: the run hands every
 * result over, right; what it could not store it says, and nothing it
 * committed is lost; the handle connects again and the next run goes on. */
static void a_server_restarted_under_a_run_loses_nothing_committed(void **state)
{
    (void)state;
    NEED_SERVER();
    if (!own_server[0]) {
        skip();
        return;
    }
    char path[2 * PATH_CAP];
    snprintf(path, sizeof path, "postgresql:///jobcache?host=%s&user=jobcache&options=-csearch_path%%3Drestart",
             own_server);
    jc_cache *c = open_cache(path, 0);
    enum { N = 600 };
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        usleep(600 * 1000);
        _exit(own_server_sh("restart") == 0 ? 0 : 1);
    }
    jc_results *res = run_slowish(c, N);
    int status = 0;
    assert_int_equal(waitpid(kid, &status, 0), kid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_non_null(res);
    for (int i = 0; i < N; i++) {
        assert_int_equal(jc_result_status(res, (size_t)i), JC_STATUS_OK);
        assert_int_equal(jc_result_int(res, (size_t)i), 2 * i);
    }
    if (jc_results_status(res) != JC_OK)
        assert_non_null(strstr(jc_results_message(res), "could not be stored"));
    jc_results_free(res);
    int64_t stored = entries_of(c);
    assert_true(stored >= 0 && stored <= N);

    /* The same handle, after the restart: what was stored hits, the rest
     * is computed and stored now. */
    res = run_slowish(c, N);
    assert_non_null(res);
    assert_int_equal(jc_results_status(res), JC_OK);
    assert_int_equal(jc_results_summary(res).cached, (size_t)stored);
    assert_int_equal(jc_results_summary(res).computed, (size_t)(N - stored));
    jc_results_free(res);
    assert_int_equal(entries_of(c), N);
    jc_cache_close(c);
}

/* ---- the chain of migrations on the server ----
 *
 * tests/data/v11.pgdump.sql is a cache of schema 11 made by this store's
 * first version (pg_dump --inserts of py_cache_writer's values and a
 * sweep run twice: 64 entries, a result in pieces, hits still in the log,
 * runs, parameter names). Restored into the tests' server it opens, every
 * entry sound, its hits counted: the first link of the chain of migrations
 * that a later schema adds to (as tests/data/v*.jobcache for the file). */
static void a_cache_dumped_by_schema_11_opens_whole(void **state)
{
    (void)state;
    NEED_SERVER();
    const char *dump_path = getenv("JC_TEST_PG_V11_DUMP");
    if (!dump_path) {
        skip();
        return;
    }
    size_t len = 0;
    char *dump = jc_test_read_file(dump_path, &len);
    assert_non_null(dump);
    char path[PATH_CAP];
    jc_test_location(path, sizeof path, "v11");
    /* The dump names its schema jc_v11: the test's location names it too. */
    char *at = strstr(path, "search_path%3D");
    assert_non_null(at);
    snprintf(at, sizeof path - (size_t)(at - path), "search_path%%3Djc_v11");
    jc_test_pg_drop(path);
    PGconn *conn = jc_test_pg_connect();
    assert_non_null(conn);
    PGresult *r = PQexec(conn, dump);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("restoring %s: %s", dump_path, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(conn);
    free(dump);

    jc_cache *c = open_cache(path, 0);
    jc_verify_result vr;
    assert_int_equal(jc_cache_verify(c, false, NULL, NULL, &vr), 0);
    assert_int_equal(vr.checked, 64);
    assert_int_equal(vr.bad_entries, 0);
    jc_stats *s = jc_cache_stats(c);
    assert_non_null(s);
    assert_int_equal(s->entries, 64);
    assert_int_equal(s->schema_version, 11);
    assert_int_equal(s->hits, 32); /* from the hit log, not yet folded */
    jc_stats_free(s);
    jc_cache_close(c);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM chunks"), 4);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM runs"), 3);
    jc_test_pg_drop(path);
}

/* A run's Ctrl-C while it waits on the server (here to store a result, for
 * a lock another session holds) ends the wait at once (the statement is
 * cancelled), and what the run then tries does not wait for locks (as
 * SQLite's busy handler gives up once interrupted), rather than each
 * waiting out the busy timeout: 0.4.0's libpq calls waited the whole
 * timeout, deaf to the signal. */
static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Sends SIGINT once a session of the server waits for a lock (the run's
 * store of its first result), at most 30 s on; *arg is set when it never
 * saw one. */
static void *interrupt_when_waiting(void *arg)
{
    bool *never = arg;
    PGconn *c = jc_test_pg_connect();
    *never = true;
    for (int i = 0; c && i < 600; i++) {
        /* A wait on this test's own table: the tests of other binaries
         * (ctest -j) share the server and its database, and a lock wait of
         * theirs seen here sent the signal before this run had caught it. */
        PGresult *r = PQexec(c, "SELECT count(*) FROM pg_locks WHERE NOT granted"
                                " AND relation = to_regclass('t_test_pg_interrupt.entries')"
                                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())");
        bool waiting = PQresultStatus(r) == PGRES_TUPLES_OK && atoi(PQgetvalue(r, 0, 0)) > 0;
        PQclear(r);
        if (waiting) {
            *never = false;
            break;
        }
        struct timespec t = {0, 50 * 1000000L};
        nanosleep(&t, NULL);
    }
    PQfinish(c);
    kill(getpid(), SIGINT);
    return NULL;
}

/* The first call takes the entries table in another session, held until
 * the test ends; each takes 20 ms, so that the run stores as it goes. */
static PGconn *locker;
static int locks_the_table(jc_call *call)
{
    if (!locker) {
        locker = jc_test_pg_connect();
        if (!locker)
            return jc_fail(call, "no connection");
        PQclear(PQexec(locker, "BEGIN; LOCK TABLE t_test_pg_interrupt.entries IN ACCESS EXCLUSIVE MODE"));
        if (PQtransactionStatus(locker) != PQTRANS_INTRANS)
            return jc_fail(call, "could not lock: %s", PQerrorMessage(locker));
    }
    struct timespec t = {0, 20 * 1000000L};
    nanosleep(&t, NULL);
    return jc_return(call, jc_int(jc_arg_int(call, 0) + 1));
}
JC_FUNCTION(locks_the_table, "v1");

static void a_wait_on_the_server_ends_at_a_runs_ctrl_c(void **state)
{
    (void)state;
    NEED_SERVER();
    char path[PATH_CAP];
    jc_cache *c = jc_cache_open(jc_test_path(path, sizeof path, "interrupt"),
                                &(jc_cache_options){.busy_timeout_ms = 60000});
    assert_non_null(c);
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
    for (int i = 0; i < 10; i++)
        jc_delayed(b, locks_the_table, jc_int(i));
    pthread_t th;
    bool never_waited = false;
    assert_int_equal(pthread_create(&th, NULL, interrupt_when_waiting, &never_waited), 0);
    double t0 = now_s();
    jc_results *r = jc_run(b);
    double took = now_s() - t0;
    pthread_join(th, NULL);
    assert_false(never_waited); /* the signal came during the wait */
    assert_non_null(locker);
    PQclear(PQexec(locker, "ROLLBACK"));
    PQfinish(locker);
    locker = NULL;
    assert_non_null(r);
    assert_int_equal(jc_results_status(r), JC_EINTR);
    if (took > 40)
        fail_msg("the run took %.1f s after its SIGINT: it waited for the lock", took);
    /* Every result computed is handed over, stored or not. */
    for (size_t i = 0; i < jc_results_count(r); i++)
        if (jc_result_status(r, i) == JC_STATUS_OK)
            assert_int_equal(jc_result_int(r, i), (int64_t)i + 1);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    /* What the program does after the interrupted run waits for locks as
     * before (0.4.0's flag stayed set until the next run: every statement
     * of the process had a lock timeout of 1 ms, and the next run's claims
     * failed). */
    jc__store *st = NULL;
    assert_int_equal(jc__store_open(path, 0, 7000, &st), 0);
    PGresult *lt = NULL;
    assert_int_equal(jc__pg_query((jc__pg *)st, "test", "SELECT current_setting('lock_timeout')", NULL, &lt), 0);
    assert_string_equal(PQgetvalue(lt, 0, 0), "7s");
    PQclear(lt);
    jc__store_close(st);
}

/* A connection made again holds its claims' lock again at once: another
 * host does not read the owner as gone until its next renewal (0.4.0 took
 * the lock again only then). */
static int64_t owner_locks(const char *owner)
{
    PGconn *o = jc_test_pg_connect();
    assert_non_null(o);
    PGresult *r = PQexecParams(o, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                                  " AND objsubid = 2 AND objid = hashtext($1)::oid",
                               1, NULL, &owner, NULL, NULL, 0);
    int64_t n = PQresultStatus(r) == PGRES_TUPLES_OK ? atoll(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    PQfinish(o);
    return n;
}

static void a_connection_made_again_holds_its_claims_again(void **state)
{
    (void)state;
    NEED_SERVER();
    char path[PATH_CAP];
    jc_cache_close(open_cache(jc_test_path(path, sizeof path, "rehold"), 0));
    jc__store *st = NULL;
    assert_int_equal(jc__store_open(path, 0, 0, &st), 0);
    const char *owner = "rehold-owner|pid:[1]|7|7";
    assert_int_equal(jc__store_begin(st), 0);
    assert_int_equal(jc__store_lease_owner(st, owner, 1e12, true), 0);
    assert_int_equal(jc__store_commit(st), 0);
    assert_int_equal(owner_locks(owner), 1);
    /* Its session ends under it (a server restarted, a network that broke). */
    PGresult *r = NULL;
    assert_int_equal(jc__pg_query((jc__pg *)st, "test", "SELECT pg_backend_pid()::text", NULL, &r), 0);
    char pid[32];
    snprintf(pid, sizeof pid, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    PGconn *o = jc_test_pg_connect();
    assert_non_null(o);
    const char *pv = pid;
    PQclear(PQexecParams(o, "SELECT pg_terminate_backend($1::int)", 1, NULL, &pv, NULL, NULL, 0));
    PQfinish(o);
    for (int i = 0; i < 100 && owner_locks(owner) != 0; i++)
        nanosleep(&(struct timespec){0, 20 * 1000000L}, NULL);
    assert_int_equal(owner_locks(owner), 0);
    /* The next statement connects again; the lock is held again with it. */
    assert_int_equal(jc__pg_query((jc__pg *)st, "test", "SELECT 1", NULL, &r), 0);
    PQclear(r);
    assert_int_equal(owner_locks(owner), 1);
    /* Two handles of one process hold it together: one closing leaves it. */
    jc__store *st2 = NULL;
    assert_int_equal(jc__store_open(path, 0, 0, &st2), 0);
    assert_int_equal(jc__store_begin(st2), 0);
    assert_int_equal(jc__store_lease_owner(st2, owner, 1e12, true), 0);
    assert_int_equal(jc__store_commit(st2), 0);
    assert_int_equal(owner_locks(owner), 2);
    jc__store_close(st);
    assert_int_equal(owner_locks(owner), 1);
    jc__store_close(st2);
}

/* Text the server cannot take as it is (a failure's message with a byte
 * that is not UTF-8) is recorded with that byte written \xNN, as
 * `jobcache log` shows it from a file; 0.4.0's record of the run failed. */
static int fails_oddly(jc_call *call)
{
    return jc_fail(call, "bad byte \xff in %s", "the message");
}
JC_FUNCTION(fails_oddly, "v1");

static void keep_run(const jc_run_record *run, void *userdata)
{
    jc_run_record *out = userdata;
    if (out->nfailures == 0 && run->nfailures > 0) {
        out->nfailures = run->nfailures;
        out->status = strdup(run->failures[0].message ? run->failures[0].message : "");
    }
}

static void text_that_is_not_utf8_is_recorded_escaped(void **state)
{
    (void)state;
    NEED_SERVER();
    char path[PATH_CAP];
    jc_cache *c = jc_cache_open(jc_test_path(path, sizeof path, "not_utf8"), NULL);
    assert_non_null(c);
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
    jc_delayed(b, fails_oddly, jc_int(1));
    jc_results *r = jc_run(b);
    assert_int_equal(jc_results_status(r), JC_EFAILED);
    jc_results_free(r);
    jc_batch_free(b);
    jc_run_record got = {0};
    assert_int_equal(jc_cache_runs(c, 1, false, keep_run, &got), 0);
    assert_int_equal(got.nfailures, 1);
    assert_non_null(strstr(got.status, "bad byte \\xff in the message"));
    free((char *)got.status);
    jc_cache_close(c);
}

/* The lock timeout a transaction set (a claim that must not wait) is set
 * again once that transaction rolls back (which undid it on the server),
 * and a new connection's session starts with it. */
static void the_lock_timeout_survives_a_rollback(void **state)
{
    (void)state;
    NEED_SERVER();
    char path[PATH_CAP];
    jc_cache *c = jc_cache_open(jc_test_path(path, sizeof path, "lockwait"), NULL);
    assert_non_null(c);
    jc_cache_close(c);
    jc__store *st = NULL;
    assert_int_equal(jc__store_open(path, 0, 5000, &st), 0);
    jc__pg *pg = (jc__pg *)st;
    PGresult *r = NULL;
    assert_int_equal(jc__store_begin(st), 0);
    jc__store_busy_wait(st, 0);
    assert_int_equal(jc__store_rollback(st), 0);
    assert_int_equal(jc__pg_query(pg, "test", "SELECT current_setting('lock_timeout')", NULL, &r), 0);
    assert_string_equal(PQgetvalue(r, 0, 0), "1ms");
    PQclear(r);
    jc__store_busy_wait(st, -1);
    assert_int_equal(jc__pg_query(pg, "test", "SELECT current_setting('lock_timeout')", NULL, &r), 0);
    assert_string_equal(PQgetvalue(r, 0, 0), "5s");
    PQclear(r);
    jc__store_close(st);
}

/* A lost node (a network that stops answering, not a process that ends)
 * frees its claims once the server's TCP keepalives give up on it, never
 * later: here the location's own keepalives (2 s, then 2 probes 1 s
 * apart, and 4 s for data the node never acknowledged), a node in a network namespace of its own on a veth link to the
 * server's namespace, and the link taken down under it while it computes.
 * Another host, which found the calls claimed, computes them once the
 * claims are gone: all of them, right, each once. Needs root (network
 * namespaces); skipped otherwise, saying so. */
static char lost_dir[PATH_CAP], lost_ns[2][32];
static pid_t lost_node;

static int lost_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int lost_sh(const char *fmt, ...)
{
    char line[3 * PATH_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    return system(line) == 0 ? 0 : -1;
}

static int lost_setup(void **state)
{
    (void)state;
    if (!jc_test_pg() || !getenv("JC_TEST_PG_SERVER_SH") || getuid() != 0)
        return 0;
    snprintf(lost_ns[0], sizeof lost_ns[0], "jcs%d", (int)getpid());
    snprintf(lost_ns[1], sizeof lost_ns[1], "jcn%d", (int)getpid());
    snprintf(lost_dir, sizeof lost_dir, "%s/lost-server", jc_test_dir());
    const char *s = lost_ns[0], *n = lost_ns[1];
    if (lost_sh("ip netns add %s && ip netns add %s && ip link add %sv netns %s type veth peer name %sv netns %s &&"
                " ip -n %s addr add 10.213.0.1/24 dev %sv && ip -n %s addr add 10.213.0.2/24 dev %sv &&"
                " ip -n %s link set %sv up && ip -n %s link set %sv up && ip -n %s link set lo up &&"
                " ip -n %s link set lo up",
                s, n, s, s, n, n, s, s, n, n, s, s, n, n, s, n) != 0) {
        lost_sh("ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null", s, n);
        lost_ns[0][0] = '\0';
        return 0;
    }
    if (lost_sh("ip netns exec %s env JC_PG_LISTEN=10.213.0.1 '%s' start '%s' >/dev/null", s,
                getenv("JC_TEST_PG_SERVER_SH"), lost_dir) != 0)
        lost_dir[0] = '\0';
    return 0;
}

static int lost_teardown(void **state)
{
    (void)state;
    if (lost_node > 0) {
        kill(lost_node, SIGKILL);
        waitpid(lost_node, NULL, 0);
        lost_node = 0;
    }
    if (lost_dir[0])
        lost_sh("'%s' stop '%s' >/dev/null", getenv("JC_TEST_PG_SERVER_SH"), lost_dir);
    if (lost_ns[0][0])
        lost_sh("ip netns del %s; ip netns del %s", lost_ns[0], lost_ns[1]);
    return 0;
}

static int on_the_node = -1; /* the node's end of a pipe: its first call says so there, then hangs */
static int node_computed;
static int node_call(jc_call *call)
{
    if (on_the_node >= 0) {
        if (write(on_the_node, "c", 1) != 1)
            _exit(3);
        for (;;)
            pause();
    }
    node_computed++;
    return jc_return(call, jc_int(jc_arg_int(call, 0) * 3));
}
JC_FUNCTION(node_call, "v1");

static jc_results *run_node_calls(jc_cache *c)
{
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
    for (int i = 0; i < 20; i++)
        jc_delayed(b, node_call, jc_int(i));
    jc_results *r = jc_run(b);
    jc_batch_free(b);
    return r;
}

static void a_lost_node_frees_its_claims_within_the_keepalives(void **state)
{
    (void)state;
    NEED_SERVER();
    if (getuid() != 0 || !lost_ns[0][0]) {
        fprintf(stderr, "skipped: a lost node needs network namespaces and a veth link (root, ip(8))\n");
        skip();
        return;
    }
    assert_true(lost_dir[0] != '\0');
    char here[PATH_CAP + 100], there[PATH_CAP];
    snprintf(here, sizeof here, "postgresql://jobcache@/jobcache?host=%s&options=-csearch_path%%3Dlost", lost_dir);
    snprintf(there, sizeof there,
             "postgresql://jobcache@10.213.0.1/jobcache?options=-csearch_path%%3Dlost"
             "%%20-ctcp_keepalives_idle%%3D2%%20-ctcp_keepalives_interval%%3D1%%20-ctcp_keepalives_count%%3D2"
             "%%20-ctcp_user_timeout%%3D4000");
    jc_cache *c = jc_cache_open(here, NULL);
    assert_non_null(c);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    lost_node = fork();
    assert_true(lost_node >= 0);
    if (lost_node == 0) { /* the node: on a host of its own, in its network */
        close(fds[0]);
        char ns[64];
        snprintf(ns, sizeof ns, "/run/netns/%s", lost_ns[1]);
        int fd = open(ns, O_RDONLY);
        if (fd < 0 || setns(fd, CLONE_NEWNET) != 0)
            _exit(2);
        setenv("JC_TEST_BOOT_ID", "lost-node-0000-0000-0000-000000000000", 1);
        on_the_node = fds[1];
        jc_cache *nc = jc_cache_open(there, NULL);
        if (!nc) {
            fprintf(stderr, "node: %s\n", jc_errmsg());
            _exit(1);
        }
        jc_results_free(run_node_calls(nc));
        _exit(0);
    }
    close(fds[1]);
    struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
    char ch = 0;
    if (poll(&pfd, 1, 30000) != 1 || read(fds[0], &ch, 1) != 1)
        fail_msg("the node did not start computing within 30 s");
    close(fds[0]);
    /* The node is lost: its link goes down, and it stops. */
    assert_int_equal(lost_sh("ip -n %s link set %sv down", lost_ns[1], lost_ns[1]), 0);
    kill(lost_node, SIGSTOP);
    double t0 = now_s();
    node_computed = 0;
    jc_results *r = run_node_calls(c);
    double took = now_s() - t0;
    if (jc_results_status(r) != JC_OK)
        fail_msg("after %.1f s: %s", took, jc_results_message(r));
    for (size_t i = 0; i < 20; i++)
        assert_int_equal(jc_result_int(r, i), (int64_t)i * 3);
    assert_int_equal(node_computed, 20);
    jc_results_free(r);
    jc_cache_close(c);
    fprintf(stderr, "the lost node's claims held the calls for %.1f s\n", took);
    /* A location that sets none gets the library's over TCP (0.4.0 kept
     * the system's: current_setting shows 7200 s for an idle time unset). */
    pid_t probe = fork();
    assert_true(probe >= 0);
    if (probe == 0) {
        char ns[64];
        snprintf(ns, sizeof ns, "/run/netns/%s", lost_ns[0]);
        int fd = open(ns, O_RDONLY);
        if (fd < 0 || setns(fd, CLONE_NEWNET) != 0)
            _exit(2);
        jc__store *st = NULL;
        if (jc__store_open("postgresql://jobcache@10.213.0.1/jobcache?options=-csearch_path%3Dlost", 0, 0, &st))
            _exit(3);
        PGresult *s = NULL;
        int bad = jc__pg_query((jc__pg *)st, "test",
                               "SELECT current_setting('tcp_keepalives_idle') || ' '"
                               " || current_setting('tcp_keepalives_interval') || ' '"
                               " || current_setting('tcp_keepalives_count') || ' '"
                               " || current_setting('tcp_user_timeout')",
                               NULL, &s);
        if (!bad && strcmp(PQgetvalue(s, 0, 0), "10 5 3 30000") != 0) {
            fprintf(stderr, "the session's TCP settings: %s\n", PQgetvalue(s, 0, 0));
            bad = 1;
        }
        PQclear(s);
        jc__store_close(st);
        _exit(bad ? 1 : 0);
    }
    int pst = 0;
    waitpid(probe, &pst, 0);
    assert_true(WIFEXITED(pst));
    assert_int_equal(WEXITSTATUS(pst), 0);
    /* It waited for the claims (they were in force), and no longer than
     * the keepalives and a few polls. */
    assert_true(took > 1.5);
    if (took > 20)
        fail_msg("the lost node's claims held for %.1f s: longer than its keepalives (4 s)", took);
    /* 0.4.0 set no user timeout: with data unacknowledged at the loss (the
     * node's link went down before it acknowledged the last answer), the
     * server retransmitted for 15 minutes and the claims held as long. */
}

int main(void)
{
    jc_test_pg_or_skip();
    unsetenv("JOBCACHE_PATH");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(location_is_recognised_by_its_scheme),
        cmocka_unit_test(a_location_is_shown_without_its_password),
        cmocka_unit_test(an_unreachable_server_is_an_error_naming_it_without_the_password),
        cmocka_unit_test(a_malformed_location_is_refused_without_its_password),
        cmocka_unit_test(a_schema_of_other_tables_is_refused_and_left_alone),
        cmocka_unit_test(a_readonly_open_of_no_cache_creates_nothing),
        cmocka_unit_test(a_newer_schema_is_refused_without_a_change),
        cmocka_unit_test(quotes_and_backslashes_are_stored_and_read_back_as_they_are),
        cmocka_unit_test(a_readonly_role_reads_but_cannot_write),
        cmocka_unit_test(a_refused_password_is_a_clear_error_without_the_password),
        cmocka_unit_test(a_server_cache_backs_up_into_a_file_and_files_merge_into_it),
        cmocka_unit_test(entries_stored_in_a_transaction_go_together_and_a_rollback_drops_them),
        cmocka_unit_test(a_cache_dumped_by_schema_11_opens_whole),
        cmocka_unit_test(eight_hosts_share_one_cache_and_compute_each_call_once),
        cmocka_unit_test(a_wait_on_the_server_ends_at_a_runs_ctrl_c),
        cmocka_unit_test(text_that_is_not_utf8_is_recorded_escaped),
        cmocka_unit_test(the_lock_timeout_survives_a_rollback),
        cmocka_unit_test(a_connection_made_again_holds_its_claims_again),
        cmocka_unit_test_setup_teardown(a_lost_node_frees_its_claims_within_the_keepalives, lost_setup,
                                        lost_teardown),
        cmocka_unit_test_setup_teardown(a_server_restarted_under_a_run_loses_nothing_committed, own_server_start,
                                        own_server_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
