/*
 * Tests of schema migrations, on files made by earlier releases and checked
 * in under tests/data (each made by the code before the schema change that
 * follows it; tests/data/make_cache.c says how):
 *
 *   v0.1.0.jobcache  schema 1, jobcache 0.1.0: 32 entries of sq, half and
 *                    greet, 5 of them hit once.
 *   v2.jobcache      schema 2, main at e46f85e: the same calls, with
 *                    checksums and code fingerprints.
 *   v3.jobcache      schema 3, main at 6784307: the same, with each entry's
 *                    key format; before leases (schema 4).
 *   v4.jobcache      schema 4, main at da49ab5: the same, with leases;
 *                    before the record of runs (schema 5).
 *   v5.jobcache      schema 5, main at 3592c08: the same, with the record
 *                    of runs; before parameter names (6).
 *   v6.jobcache      schema 6, main at 51fc915 (0.2.0): the same, with
 *                    parameter names and its two runs recorded; before
 *                    evictions in the record of runs (7).
 *   v7.jobcache      schema 7, main at 7d2dd26: the same, with evictions
 *                    per run; before retries per run (8).
 *   v8.jobcache      schema 8, main at 0d8e49d: the same, with retries per
 *                    run, and a pipeline of two calls, half(half(3.0)),
 *                    whose second key holds a reference; before inputs
 *                    read per run (9).
 *   v9.jobcache      schema 9, main at 09bd3ae: the same, with inputs read
 *                    per run; before the hit log (10).
 *
 * A read-only open reads an older schema as it is, never writing; a
 * writable open migrates it in place, in one transaction. Either way every
 * entry hits. A file of another application is refused untouched.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jobcache.h>

#include "store/store.h"
#include "testutil.h"

#define PATH_CAP 4096

/* The functions of tests/data/make_cache.c, under the same names and
 * versions. */
static int sq(jc_call *call)
{
    int64_t x = jc_arg_int(call, 0);
    return jc_return_int(call, x * x);
}
JC_FUNCTION(sq, "v1");

static int half(jc_call *call)
{
    return jc_return_double(call, jc_arg_double(call, 0) / 2);
}
JC_FUNCTION(half, "v1");

static int greet(jc_call *call)
{
    const char *who = jc_arg_str(call, 0);
    int64_t times = jc_kwarg_int(call, "times");
    jc_value *m = jc_map(jc_kw("who", jc_str(who)), jc_kw("times", jc_int(times)),
                         jc_kw("scale", jc_doubles((double[]){1.5, -2.25, 0.0}, 3)));
    return jc_return(call, m);
}
JC_FUNCTION(greet, "v2");

/* make_cache.c's ramp (v10 on): n doubles i / 8. */
static int ramp(jc_call *call)
{
    size_t n = (size_t)jc_arg_int(call, 0);
    double *a = malloc(n * sizeof *a);
    if (!a)
        return jc_fail(call, "out of memory");
    for (size_t i = 0; i < n; i++)
        a[i] = (double)i / 8;
    return jc_return(call, jc_doubles_take(a, n));
}
JC_FUNCTION(ramp, "v1");

/* Runs ramp(n) (as ramp v1); true when it was a hit with the right values. */
static bool ramp_hits(jc_cache *c, int64_t n)
{
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
    jc_delayed(b, ramp, jc_int(n));
    jc_results *r = jc_run(b);
    bool ok = r && jc_results_status(r) == JC_OK;
    bool hit = ok && jc_result_cached(r, 0);
    size_t len = 0;
    const double *d = NULL;
    ok = ok && jc_value_get_doubles(jc_result_value(r, 0), &d, &len) == 0 && len == (size_t)n;
    for (size_t i = 0; ok && i < len; i++)
        ok = d[i] == (double)i / 8;
    jc_results_free(r);
    jc_batch_free(b);
    return ok && hit;
}

/* Not in the old files: a function with parameter names. */
static int power(jc_call *call)
{
    double b = jc_arg_double_named(call, "base");
    int64_t e = jc_arg_int_named(call, "exp");
    double r = 1;
    for (int64_t i = 0; i < e; i++)
        r *= b;
    return jc_return_double(call, r);
}
JC_FUNCTION_PARAMS(power, "v1", "base", "exp");

/* Creates an SQLite database at path with sql run in it. */
static void make_db(const char *path, const char *stmts)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, stmts, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* Copies the checked-in file to a scratch path. */
static const char *copy_data(const char *name, char *path, size_t cap)
{
    char src[PATH_CAP];
    snprintf(src, sizeof src, "%s/%s", JC_TEST_DATA_DIR, name);
    jc_test_path(path, cap, name);
    size_t len = 0;
    void *bytes = jc_test_read_file(src, &len);
    assert_non_null(bytes);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, len, f), len);
    fclose(f);
    free(bytes);
    return path;
}

/* Runs the calls of make_cache.c and checks every result; returns how
 * many were hits. */
static size_t run_v1_calls(jc_cache *c)
{
    jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
    for (int i = 0; i < 20; i++)
        jc_delayed(b, sq, jc_int(i));
    for (int i = 0; i < 10; i++)
        jc_delayed(b, half, jc_double(i * 0.5));
    jc_delayed(b, greet, jc_str("ada"), jc_kw("times", jc_int(3)));
    jc_delayed(b, greet, jc_str("grace"), jc_kw("times", jc_int(1)));
    jc_results *res = jc_run(b);
    assert_non_null(res);
    assert_int_equal(jc_results_status(res), JC_OK);
    for (int i = 0; i < 20; i++)
        assert_int_equal(jc_result_int(res, (size_t)i), i * i);
    for (int i = 0; i < 10; i++)
        assert_true(jc_result_double(res, 20 + (size_t)i) == i * 0.25);
    const jc_value *g = jc_result_value(res, 30);
    const char *who = NULL;
    size_t len = 0;
    assert_int_equal(jc_value_get_str(jc_value_get(g, "who"), &who, &len), 0);
    assert_string_equal(who, "ada");
    size_t hits = jc_results_summary(res).cached;
    jc_results_free(res);
    jc_batch_free(b);
    return hits;
}

static void migrate_a_0_1_0_file_is_read_as_it_is_when_read_only(void **state)
{
    (void)state;
    char path[PATH_CAP];
    copy_data("v0.1.0.jobcache", path, sizeof path);
    jc_test_bytes before = jc_test_snapshot(path);

    jc_cache *c = open_cache(path, JC_CACHE_READONLY);
    assert_int_equal(run_v1_calls(c), 32);
    jc_stats *s = jc_cache_stats(c);
    assert_int_equal(s->schema_version, 1);
    assert_int_equal(s->entries, 32);
    assert_int_equal(s->hits, 5);
    jc_stats_free(s);
    jc_verify_result vr;
    assert_int_equal(jc_cache_verify(c, false, NULL, NULL, &vr), 0);
    assert_int_equal(vr.checked, 32);
    assert_int_equal(vr.bad_entries, 0);
    assert_int_equal(vr.unchecked, 32); /* no checksums in schema 1 */
    jc_cache_close(c);

    jc_test_assert_unchanged(path, before);
    assert_int_equal(jc_test_sql_int(path, "PRAGMA user_version"), 1);
}

static void migrate_a_0_1_0_file_is_migrated_in_place_when_writable(void **state)
{
    (void)state;
    char path[PATH_CAP];
    copy_data("v0.1.0.jobcache", path, sizeof path);
    int64_t hits_before = jc_test_sql_int(path, "SELECT sum(hits) FROM entries");

    jc_cache *c = open_cache(path, 0);
    assert_int_equal(jc_test_sql_int(path, "PRAGMA user_version"), JC__SCHEMA_VERSION);
    /* Every old entry got its checksum; its code is unknown. */
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries WHERE length(result_check) = 16"), 32);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries WHERE code_fp IS NULL"), 32);
    assert_int_equal(jc_test_sql_int(path, "SELECT sum(hits) FROM entries"), hits_before);
    assert_int_equal(run_v1_calls(c), 32);
    jc_verify_result vr;
    assert_int_equal(jc_cache_verify(c, false, NULL, NULL, &vr), 0);
    assert_int_equal(vr.checked, 32);
    assert_int_equal(vr.bad_entries, 0);
    assert_int_equal(vr.unchecked, 0);
    jc_stats *s = jc_cache_stats(c);
    assert_int_equal(s->schema_version, JC__SCHEMA_VERSION);
    assert_int_equal(s->hits, hits_before + 32);
    jc_stats_free(s);
    jc_cache_close(c);

    /* Opened again: nothing more to migrate, still every entry a hit. */
    c = open_cache(path, 0);
    assert_int_equal(run_v1_calls(c), 32);
    jc_cache_close(c);
    /* A checksum made by the migration catches a later change too. */
    sql(path, "UPDATE entries SET result = x'05' WHERE function = 'sq' AND result = x'10'");
    c = open_cache(path, 0);
    assert_int_equal(jc_cache_verify(c, false, NULL, NULL, &vr), 0);
    assert_int_equal(vr.bad_entries, 1);
    assert_int_equal(run_v1_calls(c), 31);
    jc_cache_close(c);
}


/* Schema 2 -> 3: each entry's key format, 1 for every entry made before.
 * Read-only, the file is read as it is (its entries of format 1); writable,
 * it is migrated in place, and its entries keep hitting. */
static void migrate_a_schema_2_file_gets_the_key_format_of_each_entry(void **state)
{
    (void)state;
    char path[PATH_CAP];
    copy_data("v2.jobcache", path, sizeof path);
    jc_test_bytes before = jc_test_snapshot(path);
    int64_t hits_before = jc_test_sql_int(path, "SELECT sum(hits) FROM entries");

    jc_cache *c = open_cache(path, JC_CACHE_READONLY);
    assert_int_equal(run_v1_calls(c), 32);
    jc_stats *s = jc_cache_stats(c);
    assert_int_equal(s->schema_version, 2);
    assert_int_equal(s->entries, 32);
    assert_int_equal(s->other_format_entries, 0);
    jc_stats_free(s);
    jc_verify_result vr;
    assert_int_equal(jc_cache_verify(c, false, NULL, NULL, &vr), 0);
    assert_int_equal(vr.checked, 32);
    assert_int_equal(vr.bad_entries, 0);
    assert_int_equal(vr.other_format, 0);
    assert_int_equal(vr.unchecked, 0);
    jc_cache_close(c);
    jc_test_assert_unchanged(path, before);

    c = open_cache(path, 0);
    assert_int_equal(jc_test_sql_int(path, "PRAGMA user_version"), JC__SCHEMA_VERSION);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries WHERE key_format = 1"), 32);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries WHERE length(code_fp) = 16"), 32);
    assert_int_equal(run_v1_calls(c), 32);
    assert_int_equal(jc_cache_verify(c, false, NULL, NULL, &vr), 0);
    assert_int_equal(vr.checked, 32);
    assert_int_equal(vr.bad_entries, 0);
    assert_int_equal(vr.other_format, 0);
    s = jc_cache_stats(c);
    assert_int_equal(s->schema_version, JC__SCHEMA_VERSION);
    assert_int_equal(s->hits, hits_before + 32);
    jc_stats_free(s);
    jc_cache_close(c);
    /* Opened again: nothing more to migrate. */
    c = open_cache(path, 0);
    assert_int_equal(run_v1_calls(c), 32);
    jc_cache_close(c);
}

/* A schema-3 file gains the lease tables: read-only, it is read as it is
 * (no leases listed, nothing written); writable, it is migrated, and a run
 * on it claims and releases its misses. */
static void migrate_a_schema_3_file_gets_leases(void **state)
{
    (void)state;
    char path[PATH_CAP];
    copy_data("v3.jobcache", path, sizeof path);
    jc_test_bytes before = jc_test_snapshot(path);

    jc_cache *c = open_cache(path, JC_CACHE_READONLY);
    assert_int_equal(run_v1_calls(c), 32);
    size_t n = 99;
    assert_int_equal(jc_cache_leases(c, NULL, NULL, &n), 0);
    assert_int_equal(n, 0);
    jc_stats *s = jc_cache_stats(c);
    assert_int_equal(s->schema_version, 3);
    assert_int_equal(s->leases_alive + s->leases_stale, 0);
    jc_stats_free(s);
    jc_cache_close(c);
    jc_test_assert_unchanged(path, before);

    c = open_cache(path, 0);
    assert_int_equal(jc_test_sql_int(path, "PRAGMA user_version"), JC__SCHEMA_VERSION);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM lease_owners"), 0);
    assert_int_equal(run_v1_calls(c), 32);
    sql(path, "DELETE FROM entries WHERE function = 'sq'");
    assert_int_equal(run_v1_calls(c), 12); /* the 20 of sq computed again, under claims */
    jc_cache_close(c);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM leases"), 0); /* released */
    jc_verify_result vr;
    c = open_cache(path, JC_CACHE_READONLY);
    assert_int_equal(jc_cache_verify(c, false, NULL, NULL, &vr), 0);
    assert_int_equal(vr.checked, 32);
    assert_int_equal(vr.bad_entries, 0);
    jc_cache_close(c);
}

static void count_run(const jc_run_record *r, void *userdata)
{
    (void)r;
    ++*(int *)userdata;
}

/* A schema-4 file gains the record of runs: read-only, read as it is (no
 * runs listed, nothing written); writable, migrated, and its runs recorded. */
static void migrate_a_schema_4_file_gets_the_record_of_runs(void **state)
{
    (void)state;
    char path[PATH_CAP];
    copy_data("v4.jobcache", path, sizeof path);
    jc_test_bytes before = jc_test_snapshot(path);
    jc_cache *c = open_cache(path, JC_CACHE_READONLY);
    assert_int_equal(run_v1_calls(c), 32);
    int n = 0;
    assert_int_equal(jc_cache_runs(c, 0, false, count_run, &n), 0);
    assert_int_equal(n, 0);
    jc_cache_close(c);
    jc_test_assert_unchanged(path, before);

    c = open_cache(path, 0);
    assert_int_equal(jc_test_sql_int(path, "PRAGMA user_version"), JC__SCHEMA_VERSION);
    assert_int_equal(run_v1_calls(c), 32);
    assert_int_equal(jc_cache_runs(c, 0, false, count_run, &n), 0);
    assert_int_equal(n, 1);
    jc_cache_close(c);
}

/* A schema-5 file gains the table of parameter names: read-only, read as
 * it is (no names, nothing written); writable, migrated, and the names of
 * a function stored later recorded with its results. */
static void migrate_a_schema_5_file_gets_parameter_names(void **state)
{
    (void)state;
    char path[PATH_CAP];
    copy_data("v5.jobcache", path, sizeof path);
    assert_int_equal(jc_test_sql_int(path, "PRAGMA user_version"), 5);
    jc_test_bytes before = jc_test_snapshot(path);
    jc_cache *c = open_cache(path, JC_CACHE_READONLY);
    assert_int_equal(run_v1_calls(c), 32);
    char **names = (char **)1;
    size_t n = 99;
    assert_int_equal(jc_function_params(c, "power", "v1", &names, &n), 0);
    assert_null(names);
    assert_int_equal(n, 0);
    jc_cache_close(c);
    jc_test_assert_unchanged(path, before);

    c = open_cache(path, 0);
    assert_int_equal(jc_test_sql_int(path, "PRAGMA user_version"), JC__SCHEMA_VERSION);
    assert_int_equal(run_v1_calls(c), 32);
    assert_int_equal(jc_function_params(c, "sq", "v1", &names, &n), 0);
    jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
    jc_delayed(b, power, jc_double(2.0), jc_int(10));
    jc_results *res = jc_run(b);
    assert_int_equal(jc_results_status(res), JC_OK);
    assert_true(jc_result_double(res, 0) == 1024.0);
    jc_results_free(res);
    jc_batch_free(b);
    assert_int_equal(jc_function_params(c, "power", "v1", &names, &n), 1);
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "base");
    assert_string_equal(names[1], "exp");
    assert_null(names[2]);
    free(names);
    assert_int_equal(jc_function_params(c, "power", "v2", &names, &n), 0);
    jc_cache_close(c);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM params"), 1);
}

/* Sums over the record of runs: runs, evicted, runs that evicted bytes,
 * retries. */
typedef struct run_sums {
    int64_t runs, evicted, evicting, retries, inputs_read;
} run_sums;

static void sum_runs(const jc_run_record *r, void *userdata)
{
    run_sums *sum = userdata;
    sum->runs++;
    sum->evicted += r->evicted;
    sum->evicting += r->evicted_bytes > 0;
    sum->retries += r->retries;
    sum->inputs_read += r->inputs_read;
}

/* A schema-6 file (0.2.0's) gains evictions in its record of runs:
 * read-only, read as it is (its runs listed, having evicted 0, nothing
 * written); writable, migrated in place keeping every entry, hit count,
 * run and setting, and a run that evicts records what it evicted. */
static void migrate_a_schema_6_file_gets_evictions_in_its_record_of_runs(void **state)
{
    (void)state;
    char path[PATH_CAP];
    copy_data("v6.jobcache", path, sizeof path);
    assert_int_equal(jc_test_sql_int(path, "PRAGMA user_version"), 6);
    sql(path, "INSERT INTO meta VALUES ('config.log-runs', '50')");
    int64_t hits = jc_test_sql_int(path, "SELECT sum(hits) FROM entries");
    assert_int_equal(hits, 5);
    jc_test_bytes before = jc_test_snapshot(path);
    jc_cache *c = open_cache(path, JC_CACHE_READONLY);
    run_sums sum = {0};
    assert_int_equal(jc_cache_runs(c, 0, false, sum_runs, &sum), 0);
    assert_int_equal(sum.runs, 2);
    assert_int_equal(sum.evicted, 0);
    assert_int_equal(run_v1_calls(c), 32);
    jc_cache_close(c);
    jc_test_assert_unchanged(path, before);

    c = open_cache(path, 0);
    assert_int_equal(jc_test_sql_int(path, "PRAGMA user_version"), JC__SCHEMA_VERSION);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), 32);
    assert_int_equal(jc_test_sql_int(path, "SELECT sum(hits) FROM entries"), hits);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM runs"), 2);
    char *v = NULL;
    assert_int_equal(jc_cache_config_get(c, "log-runs", &v), 0);
    assert_string_equal(v, "50");
    free(v);
    assert_int_equal(run_v1_calls(c), 32);
    jc_cache_close(c);
    /* A run of 200 new entries under a max_size that holds about half of
     * them evicts, and says so in the record of runs. */
    jc_stats *s = NULL;
    c = open_cache(path, 0);
    s = jc_cache_stats(c);
    int64_t limit = s->file_bytes + 16 * 1024;
    jc_stats_free(s);
    jc_cache_close(c);
    c = jc_cache_open(path, &(jc_cache_options){.max_size = limit});
    assert_non_null(c);
    jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
    for (int i = 0; i < 400; i++)
        jc_delayed(b, power, jc_double(1.0 + i), jc_int(3));
    jc_results *res = jc_run(b);
    assert_int_equal(jc_results_status(res), JC_OK);
    jc_results_free(res);
    jc_batch_free(b);
    sum = (run_sums){0};
    assert_int_equal(jc_cache_runs(c, 0, false, sum_runs, &sum), 0);
    assert_true(sum.evicted > 0);
    assert_int_equal(sum.evicting, 1);
    s = jc_cache_stats(c);
    assert_int_equal(s->evicted_entries, sum.evicted);
    jc_stats_free(s);
    jc_cache_close(c);
}

/* A schema-7 file gains retries in its record of runs: read-only, read as
 * it is (its runs listed, having retried nothing); writable, migrated in
 * place keeping every entry, hit count and run. */
static void migrate_a_schema_7_file_gets_retries_in_its_record_of_runs(void **state)
{
    (void)state;
    char path[PATH_CAP];
    copy_data("v7.jobcache", path, sizeof path);
    assert_int_equal(jc_test_sql_int(path, "PRAGMA user_version"), 7);
    jc_test_bytes before = jc_test_snapshot(path);
    jc_cache *c = open_cache(path, JC_CACHE_READONLY);
    run_sums sum = {0};
    assert_int_equal(jc_cache_runs(c, 0, false, sum_runs, &sum), 0);
    assert_int_equal(sum.runs, 2);
    assert_int_equal(sum.retries, 0);
    assert_int_equal(run_v1_calls(c), 32);
    jc_cache_close(c);
    jc_test_assert_unchanged(path, before);

    c = open_cache(path, 0);
    assert_int_equal(jc_test_sql_int(path, "PRAGMA user_version"), JC__SCHEMA_VERSION);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), 32);
    assert_int_equal(jc_test_sql_int(path, "SELECT sum(hits) FROM entries"), 5);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM runs"), 2);
    assert_int_equal(jc_test_sql_int(path, "SELECT sum(retries) FROM runs"), 0);
    assert_int_equal(run_v1_calls(c), 32);
    jc_cache_close(c);
}

/* half(half(3.0)), with the first call marked intermediate or not: the
 * run's summary. */
static jc_progress run_v8_pipeline(jc_cache *c, bool intermediate)
{
    jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
    jc_ref h = jc_delayed_ref(b, half, jc_double(3.0));
    jc_ref hh = jc_delayed_ref(b, half, jc_use(h));
    assert_true(jc_ref_ok(hh));
    if (intermediate)
        assert_int_equal(jc_intermediate(b, h), 0);
    jc_results *res = jc_run(b);
    assert_int_equal(jc_results_status(res), JC_OK);
    assert_true(jc_result_double(res, jc_ref_index(hh)) == 0.75);
    jc_progress p = jc_results_summary(res);
    jc_results_free(res);
    jc_batch_free(b);
    return p;
}

/* A schema-8 file (0.4.0 development) gains the intermediate values read
 * in its record of runs: read-only, read as it is (its runs listed, having
 * read none; its pipeline hits by the reference's digest, reading no
 * intermediate value); writable, migrated in place keeping every entry and
 * run, and a run that reads an input records it. */
static void migrate_a_schema_8_file_gets_inputs_read_in_its_record_of_runs(void **state)
{
    (void)state;
    char path[PATH_CAP];
    copy_data("v8.jobcache", path, sizeof path);
    assert_int_equal(jc_test_sql_int(path, "PRAGMA user_version"), 8);
    jc_test_bytes before = jc_test_snapshot(path);
    jc_cache *c = open_cache(path, JC_CACHE_READONLY);
    run_sums sum = {0};
    assert_int_equal(jc_cache_runs(c, 0, false, sum_runs, &sum), 0);
    assert_int_equal(sum.runs, 2);
    assert_int_equal(sum.inputs_read, 0);
    assert_int_equal(run_v1_calls(c), 32);
    jc_progress p = run_v8_pipeline(c, true);
    assert_int_equal(p.cached, 2);
    assert_int_equal(p.computed, 0);
    assert_int_equal(p.inputs_read, 0);
    jc_cache_close(c);
    jc_test_assert_unchanged(path, before);

    c = open_cache(path, 0);
    assert_int_equal(jc_test_sql_int(path, "PRAGMA user_version"), JC__SCHEMA_VERSION);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), 33);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM runs"), 2);
    assert_int_equal(jc_test_sql_int(path, "SELECT sum(inputs_read) FROM runs"), 0);
    assert_int_equal(run_v1_calls(c), 32);
    /* Wanted, the first call's value is read to be handed back: recorded. */
    p = run_v8_pipeline(c, false);
    assert_int_equal(p.cached, 2);
    assert_int_equal(p.inputs_read, 1);
    sum = (run_sums){0};
    assert_int_equal(jc_cache_runs(c, 1, false, sum_runs, &sum), 0);
    assert_int_equal(sum.runs, 1);
    assert_int_equal(sum.inputs_read, 1);
    jc_cache_close(c);
}

/* A schema-9 file gains the hit log: read-only, read as it is (its hits
 * counted, nothing written); writable, migrated in place keeping every
 * entry, hit count and run, and the hits of a rerun go to the log, counted
 * by stats and folded into the entries. */
static void migrate_a_schema_9_file_gets_the_hit_log(void **state)
{
    (void)state;
    char path[PATH_CAP];
    copy_data("v9.jobcache", path, sizeof path);
    assert_int_equal(jc_test_sql_int(path, "PRAGMA user_version"), 9);
    jc_test_bytes before = jc_test_snapshot(path);
    jc_cache *c = open_cache(path, JC_CACHE_READONLY);
    jc_stats *st = jc_cache_stats(c);
    assert_non_null(st);
    assert_int_equal(st->hits, 5);
    jc_stats_free(st);
    assert_int_equal(run_v1_calls(c), 32);
    assert_int_equal(run_v8_pipeline(c, true).cached, 2);
    jc_cache_close(c);
    jc_test_assert_unchanged(path, before);

    c = open_cache(path, 0);
    assert_int_equal(jc_test_sql_int(path, "PRAGMA user_version"), JC__SCHEMA_VERSION);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), 33);
    assert_int_equal(jc_test_sql_int(path, "SELECT sum(hits) FROM entries"), 5);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM hit_log"), 0);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM runs"), 2);
    assert_int_equal(run_v1_calls(c), 32);
    jc_cache_close(c);
    assert_int_equal(jc_test_sql_int(path, "SELECT sum(hits) FROM entries"), 5); /* in the log */
    assert_int_equal(jc_test_sql_int(path, "SELECT sum(hits) FROM hit_log"), 32);
    c = open_cache(path, 0);
    st = jc_cache_stats(c);
    assert_int_equal(st->hits, 37);
    jc_stats_free(st);
    jc_cache_close(c);
    assert_int_equal(jc_test_sql_int(path, "SELECT sum(hits) FROM entries"), 37); /* folded */
}

/* A schema-10 file gains the chunks of results in pieces: read-only, read
 * as it is; writable, migrated in place keeping every entry and hit, its
 * 160 KB result (whole in its row) still a hit, and a new large result
 * stored in pieces beside it, each sound to verify. */
static void migrate_a_schema_10_file_gets_results_in_pieces(void **state)
{
    (void)state;
    char path[PATH_CAP];
    copy_data("v10.jobcache", path, sizeof path);
    assert_int_equal(jc_test_sql_int(path, "PRAGMA user_version"), 10);
    jc_test_bytes before = jc_test_snapshot(path);
    jc_cache *c = open_cache(path, JC_CACHE_READONLY);
    jc_stats *st = jc_cache_stats(c);
    assert_non_null(st);
    assert_int_equal(st->hits, 5);
    jc_stats_free(st);
    assert_int_equal(run_v1_calls(c), 32);
    assert_true(ramp_hits(c, 20000));
    jc_cache_close(c);
    jc_test_assert_unchanged(path, before);

    c = open_cache(path, 0);
    assert_int_equal(jc_test_sql_int(path, "PRAGMA user_version"), JC__SCHEMA_VERSION);
    assert_int_equal(JC__SCHEMA_VERSION, 11);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), 34);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM chunks"), 0);
    st = jc_cache_stats(c);
    assert_int_equal(st->hits, 5);
    jc_stats_free(st);
    assert_int_equal(run_v1_calls(c), 32);
    assert_true(ramp_hits(c, 20000));
    /* A new large result goes to the chunks; the old one stays whole. */
    assert_false(ramp_hits(c, 30000));
    assert_true(ramp_hits(c, 30000));
    assert_true(jc_test_sql_int(path, "SELECT count(*) FROM chunks") >= 1);
    jc_verify_result vr;
    assert_int_equal(jc_cache_verify(c, false, NULL, NULL, &vr), 0);
    assert_int_equal(vr.bad_entries, 0);
    assert_int_equal(vr.checked, 35);
    jc_cache_close(c);
}

/* A file made before schema 3 has no auto_vacuum: the pages of evicted
 * entries would stay in it. The first time max_size cannot be kept
 * otherwise, it is vacuumed once, and gives pages back by itself from then
 * on. */
static void migrate_an_older_file_is_vacuumed_once_to_keep_max_size(void **state)
{
    (void)state;
    char path[PATH_CAP], wal[PATH_CAP + 8];
    copy_data("v2.jobcache", path, sizeof path);
    assert_int_equal(jc_test_sql_int(path, "PRAGMA auto_vacuum"), 0);
    jc_cache *c = open_cache(path, 0);
    jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
    for (int i = 100; i < 3100; i++)
        jc_delayed(b, sq, jc_int(i));
    jc_results_free(jc_run(b));
    jc_batch_free(b);
    jc_cache_close(c);
    const int64_t limit = 64 * 1024;
    snprintf(wal, sizeof wal, "%s-wal", path);
    size_t len = 0;
    free(jc_test_read_file(path, &len));
    assert_true((int64_t)len > 2 * limit);

    /* The open evicts half of the entries (no more, issue 23) and vacuums
     * once; pruning to max_size, the user's choice, does the rest. */
    c = jc_cache_open(path, &(jc_cache_options){.max_size = limit});
    assert_non_null(c);
    assert_int_equal(jc_test_sql_int(path, "PRAGMA auto_vacuum"), 2);
    assert_int_equal(jc_cache_prune(c, &(jc_prune_options){.max_size = limit}, false, NULL, NULL), 0);
    jc_cache_close(c);
    free(jc_test_read_file(path, &len));
    size_t wal_len = 0;
    void *w = jc_test_read_file(wal, &wal_len);
    free(w);
    assert_true((int64_t)(len + wal_len) <= limit + 4 * 4096);
    assert_int_equal(jc_test_sql_int(path, "PRAGMA auto_vacuum"), 2);
    int64_t left = jc_test_sql_int(path, "SELECT count(*) FROM entries");
    assert_true(left > 0 && left < 3032);
}

/* Another program's database whose user_version happens to be 1 (to 3) is
 * refused without a byte changed: not switched to WAL, not migrated. */
static void migrate_a_foreign_database_is_refused_untouched(void **state)
{
    (void)state;
    char path[PATH_CAP];
    for (int version = 1; version <= 3; version++) {
        jc_test_path(path, sizeof path, "foreign.db");
        char setup[256];
        snprintf(setup, sizeof setup,
                 "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);"
                 "INSERT INTO notes (body) VALUES ('keep me');"
                 "PRAGMA user_version = %d;",
                 version);
        make_db(path, setup);
        jc_test_bytes before = jc_test_snapshot(path);
        for (int ro = 0; ro <= 1; ro++) {
            assert_null(jc_cache_open(path, &(jc_cache_options){.flags = ro ? JC_CACHE_READONLY : 0}));
            assert_int_equal(jc_errcode(), JC_ECORRUPT);
            assert_contains(jc_errmsg(), "another application");
        }
        jc_test_assert_unchanged(path, before);
        char *mode = jc_test_sql_text(path, "PRAGMA journal_mode");
        assert_string_equal(mode, "delete");
        free(mode);
        char wal[PATH_CAP + 8];
        snprintf(wal, sizeof wal, "%s-wal", path);
        assert_false(jc_test_exists(wal));
    }
    /* Tables named as ours, but no meta row of ours: still foreign. */
    jc_test_path(path, sizeof path, "foreign-lookalike.db");
    make_db(path, "CREATE TABLE entries (x); CREATE TABLE meta (name TEXT, value TEXT); PRAGMA user_version = 1;");
    assert_null(jc_cache_open(path, NULL));
    assert_int_equal(jc_errcode(), JC_ECORRUPT);
    char *mode = jc_test_sql_text(path, "PRAGMA journal_mode");
    assert_string_equal(mode, "delete");
    free(mode);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(migrate_a_0_1_0_file_is_read_as_it_is_when_read_only),
        cmocka_unit_test(migrate_a_0_1_0_file_is_migrated_in_place_when_writable),
        cmocka_unit_test(migrate_a_schema_2_file_gets_the_key_format_of_each_entry),
        cmocka_unit_test(migrate_a_schema_3_file_gets_leases),
        cmocka_unit_test(migrate_a_schema_4_file_gets_the_record_of_runs),
        cmocka_unit_test(migrate_a_schema_5_file_gets_parameter_names),
        cmocka_unit_test(migrate_a_schema_6_file_gets_evictions_in_its_record_of_runs),
        cmocka_unit_test(migrate_a_schema_7_file_gets_retries_in_its_record_of_runs),
        cmocka_unit_test(migrate_a_schema_8_file_gets_inputs_read_in_its_record_of_runs),
        cmocka_unit_test(migrate_a_schema_9_file_gets_the_hit_log),
        cmocka_unit_test(migrate_a_schema_10_file_gets_results_in_pieces),
        cmocka_unit_test(migrate_an_older_file_is_vacuumed_once_to_keep_max_size),
        cmocka_unit_test(migrate_a_foreign_database_is_refused_untouched),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
