/*
 * Tests of operating jobcache from outside the program (issue 12): the
 * JOBCACHE_* environment switches with their precedence and their errors,
 * the opt-out, and the settings kept in the cache file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jobcache.h>

#include "testutil.h"

#define PATH_CAP 4096

static const char *const vars[] = {"JOBCACHE_PATH",    "JOBCACHE_READONLY", "JOBCACHE_RECOMPUTE",
                                   "JOBCACHE_DISABLE", "JOBCACHE_MAX_SIZE", "JOBCACHE_N_JOBS",
                                   "JOBCACHE_VERBOSE", "JOBCACHE_TIMEOUT",  "JOBCACHE_ON_CODE_CHANGE"};

static int clean_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
    return 0;
}

static pid_t seen_pid;
static int calls;
static int where(jc_call *call)
{
    seen_pid = getpid();
    calls++;
    int64_t x = jc_arg_int(call, 0);
    if (x < 0)
        return jc_fail(call, "negative %lld", (long long)x);
    if (x == 1000) {
        struct timespec ts = {2, 0};
        nanosleep(&ts, NULL);
    }
    return jc_return_int(call, x * 2);
}
JC_FUNCTION(where, "v1");

/* Runs where(from .. to) with opts; returns the summary. */
static jc_progress run_where(jc_cache *c, const jc_options *opts, int from, int to, int *status)
{
    jc_batch *b = jc_batch_new(c, opts);
    assert_non_null(b);
    for (int x = from; x < to; x++)
        jc_delayed(b, where, jc_int(x));
    jc_results *res = jc_run(b);
    assert_non_null(res);
    jc_progress p = jc_results_summary(res);
    if (status)
        *status = jc_results_status(res);
    jc_results_free(res);
    jc_batch_free(b);
    return p;
}

/* JOBCACHE_N_JOBS=1 runs a program that asks for every CPU in its own
 * process (for gdb). */
static void env_n_jobs_from_the_environment(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "njobs.db"), 0);
    setenv("JOBCACHE_N_JOBS", "1", 1);
    seen_pid = 0;
    run_where(c, &(jc_options){.n_jobs = -1, .verbose = JC_VERBOSE_OFF}, 0, 3, NULL);
    assert_int_equal(seen_pid, getpid());
    setenv("JOBCACHE_N_JOBS", "lots", 1);
    assert_null(jc_batch_new(c, NULL));
    assert_int_equal(jc_errcode(), JC_EINVAL);
    assert_contains(jc_errmsg(), "JOBCACHE_N_JOBS is 'lots'");
    unsetenv("JOBCACHE_N_JOBS");
    jc_cache_close(c);
}

/* RECOMPUTE, READONLY and DISABLE over what the program opened. */
static void env_cache_modes_from_the_environment(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "modes.db");
    jc_cache *c = open_cache(path, 0);
    run_where(c, &(jc_options){.verbose = JC_VERBOSE_OFF}, 0, 5, NULL);
    jc_cache_close(c);

    setenv("JOBCACHE_RECOMPUTE", "1", 1);
    c = open_cache(path, 0);
    jc_progress p = run_where(c, &(jc_options){.verbose = JC_VERBOSE_OFF}, 0, 5, NULL);
    assert_int_equal(p.cached, 0);
    assert_int_equal(p.computed, 5);
    jc_cache_close(c);
    unsetenv("JOBCACHE_RECOMPUTE");

    setenv("JOBCACHE_READONLY", "yes", 1);
    c = open_cache(path, 0);
    p = run_where(c, &(jc_options){.verbose = JC_VERBOSE_OFF}, 0, 8, NULL);
    assert_int_equal(p.cached, 5);
    jc_cache_close(c);
    unsetenv("JOBCACHE_READONLY");
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), 5); /* nothing stored */

    char other[PATH_CAP];
    jc_test_path(other, sizeof other, "disabled.db");
    setenv("JOBCACHE_DISABLE", "1", 1);
    c = open_cache(other, 0);
    p = run_where(c, &(jc_options){.verbose = JC_VERBOSE_OFF}, 0, 2, NULL);
    assert_int_equal(p.computed, 2);
    jc_cache_close(c);
    unsetenv("JOBCACHE_DISABLE");
    assert_false(jc_test_exists(other));

    setenv("JOBCACHE_READONLY", "maybe", 1);
    assert_null(jc_cache_open(path, NULL));
    assert_int_equal(jc_errcode(), JC_EINVAL);
    assert_contains(jc_errmsg(), "JOBCACHE_READONLY is 'maybe'");
    unsetenv("JOBCACHE_READONLY");
}

/* JC_CACHE_IGNORE_ENV: a program that embeds jobcache keeps its settings. */
static void env_the_environment_can_be_ignored(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "ignore.db");
    setenv("JOBCACHE_DISABLE", "1", 1);
    setenv("JOBCACHE_N_JOBS", "oops", 1);
    jc_cache *c = open_cache(path, JC_CACHE_IGNORE_ENV);
    run_where(c, &(jc_options){.verbose = JC_VERBOSE_OFF}, 0, 2, NULL);
    jc_cache_close(c);
    unsetenv("JOBCACHE_DISABLE");
    unsetenv("JOBCACHE_N_JOBS");
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), 2);
}

static char *captured_stderr(const char *path, jc_cache *c, const jc_options *o, int from, int to)
{
    char errpath[PATH_CAP + 16];
    jc_test_side(errpath, sizeof errpath, path, ".stderr");
    int saved = jc_test_stderr_to(errpath);
    run_where(c, o, from, to, NULL);
    jc_test_stderr_restore(saved);
    size_t len = 0;
    return jc_test_read_file(errpath, &len);
}

/* JOBCACHE_VERBOSE: 0 quiet; 1 the summary line, which names the file; 2
 * also a line per failure and per tenth of the run. */
static void env_verbose_levels_from_the_environment(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "verbose.db"), 0);
    jc_options o = {.on_error = JC_ON_ERROR_CONTINUE, .verbose = JC_VERBOSE_ON};
    setenv("JOBCACHE_VERBOSE", "0", 1);
    char *err = captured_stderr(path, c, &o, 0, 20);
    assert_string_equal(err, "");
    free(err);
    setenv("JOBCACHE_VERBOSE", "1", 1);
    o.verbose = JC_VERBOSE_OFF;
    err = captured_stderr(path, c, &o, 0, 30);
    assert_contains(err, "jobcache: 30 calls, 20 cached, 10 computed");
    assert_contains(err, "; cache ");
    assert_contains(err, jc_test_shown(path));
    free(err);
    setenv("JOBCACHE_VERBOSE", "2", 1);
    err = captured_stderr(path, c, &o, -2, 40);
    assert_contains(err, "where(-1): negative -1");
    assert_contains(err, "90% done (38 of 42 calls");
    assert_contains(err, "jobcache: 42 calls");
    free(err);
    setenv("JOBCACHE_VERBOSE", "loud", 1);
    assert_null(jc_batch_new(c, NULL));
    assert_contains(jc_errmsg(), "JOBCACHE_VERBOSE is 'loud'");
    unsetenv("JOBCACHE_VERBOSE");
    jc_cache_close(c);
}

/* JOBCACHE_TIMEOUT applies to a program that set none. */
static void env_timeout_from_the_environment(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "timeout.db"), 0);
    setenv("JOBCACHE_TIMEOUT", "0.3", 1);
    int status = 0;
    jc_progress p = run_where(c, &(jc_options){.n_jobs = 2, .verbose = JC_VERBOSE_OFF,
                                               .on_error = JC_ON_ERROR_CONTINUE}, 999, 1001, &status);
    assert_int_equal(p.failed, 1); /* where(1000) sleeps 2 s */
    setenv("JOBCACHE_TIMEOUT", "-1", 1);
    assert_null(jc_batch_new(c, NULL));
    assert_contains(jc_errmsg(), "JOBCACHE_TIMEOUT is '-1'");
    unsetenv("JOBCACHE_TIMEOUT");
    jc_cache_close(c);
}

/* Numbers in the environment are read in the C locale, whatever
 * setlocale() the program made: under de_DE (a decimal comma),
 * JOBCACHE_TIMEOUT=1.5 is one and a half seconds and 1,5 is refused (0.2.0
 * refused 1.5 and took 1,5). The locale is compiled here with localedef
 * from Debian's locales package, into the test's own directory. */
static void env_numbers_are_read_in_the_c_locale(void **state)
{
    (void)state;
    char dir[PATH_CAP], cmd[2 * PATH_CAP];
    jc_test_path(dir, sizeof dir, "locales.dir"); /* a directory on either store */
    mkdir(dir, 0755);
    snprintf(cmd, sizeof cmd, "localedef -i de_DE -f UTF-8 '%s/de_DE.UTF-8' >/dev/null 2>&1", dir);
    if (system(cmd) != 0) {
        print_message("skipped: localedef could not make de_DE.UTF-8 (Debian package locales)\n");
        skip();
    }
    setenv("LOCPATH", dir, 1);
    assert_non_null(setlocale(LC_ALL, "de_DE.UTF-8"));
    assert_string_equal(localeconv()->decimal_point, ",");
    char path[PATH_CAP];
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "locale.db"), 0);
    setenv("JOBCACHE_TIMEOUT", "1.5", 1);
    jc_batch *b = jc_batch_new(c, NULL);
    setlocale(LC_ALL, "C");
    unsetenv("LOCPATH");
    assert_non_null(b);
    jc_batch_free(b);
    setenv("LOCPATH", dir, 1);
    assert_non_null(setlocale(LC_ALL, "de_DE.UTF-8"));
    setenv("JOBCACHE_TIMEOUT", "1,5", 1);
    b = jc_batch_new(c, NULL);
    setlocale(LC_ALL, "C");
    unsetenv("LOCPATH");
    assert_null(b);
    assert_contains(jc_errmsg(), "JOBCACHE_TIMEOUT is '1,5'");
    unsetenv("JOBCACHE_TIMEOUT");
    jc_cache_close(c);
}

static void note_setting(const char *key, const char *value, const char *source, void *userdata)
{
    char *out = userdata;
    if (strcmp(key, "max-size") == 0)
        snprintf(out, 128, "%s=%s (%s)", key, value, source);
}

static int failing(jc_call *call)
{
    int64_t x = jc_arg_int(call, 0);
    if (x % 3 == 0)
        return jc_fail(call, "no multiples of three (%lld)", (long long)x);
    return jc_return_int(call, x);
}
JC_FUNCTION(failing, "v1");

typedef struct seen_runs {
    int n;
    char kinds[8][8];
    int64_t calls[8], failed[8], cached[8];
    char first_failure[256];
    char command[256];
} seen_runs;

static void note_run(const jc_run_record *r, void *userdata)
{
    seen_runs *s = userdata;
    if (s->n < 8) {
        snprintf(s->kinds[s->n], 8, "%s", r->kind);
        s->calls[s->n] = r->calls;
        s->failed[s->n] = r->failed;
        s->cached[s->n] = r->cached;
        if (r->nfailures && !s->first_failure[0])
            snprintf(s->first_failure, sizeof s->first_failure, "%s: %s", r->failures[0].status,
                     r->failures[0].message);
        snprintf(s->command, sizeof s->command, "%s", r->command);
    }
    s->n++;
}

/* Each run leaves a record with its failures, readable after the program
 * ended; a session of jc_memo calls is one record; the record is bounded
 * by log-runs; a read-only cache records nothing. */
static void env_runs_are_recorded_with_their_failures(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "log.db");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        jc_cache *c = jc_cache_open(path, NULL);
        jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF, .on_error = JC_ON_ERROR_CONTINUE});
        for (int x = 1; x <= 7; x++)
            jc_delayed(b, failing, jc_int(x));
        jc_results_free(jc_run(b));
        jc_batch_free(b);
        for (int x = 1; x <= 4; x++)
            jc_value_free(jc_memo(c, failing, jc_int(x)));
        jc_cache_close(c);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    jc_cache *c = open_cache(path, JC_CACHE_READONLY);
    seen_runs s = {0};
    assert_int_equal(jc_cache_runs(c, 0, false, note_run, &s), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.kinds[0], "run");
    assert_int_equal(s.calls[0], 7);
    assert_int_equal(s.failed[0], 2);
    assert_string_equal(s.first_failure, "error: failing(3): no multiples of three (3)");
    assert_contains(s.command, "test_env");
    assert_string_equal(s.kinds[1], "memo");
    assert_int_equal(s.calls[1], 4);
    assert_int_equal(s.cached[1], 3); /* 1, 2 and 4 stored by the run; 3 fails again */
    assert_int_equal(s.failed[1], 1);
    /* A read-only cache records nothing. */
    jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
    jc_delayed(b, failing, jc_int(1));
    jc_results_free(jc_run(b));
    jc_batch_free(b);
    jc_cache_close(c);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM runs"), 2);

    /* Bounded: log-runs 3 keeps the last three. */
    c = open_cache(path, 0);
    assert_int_equal(jc_cache_config_set(c, "log-runs", "3"), 0);
    assert_int_equal(jc_cache_config_set(c, "log-runs", "many"), JC_EINVAL);
    for (int i = 0; i < 5; i++)
        run_where(c, &(jc_options){.verbose = JC_VERBOSE_OFF}, 0, 2, NULL);
    memset(&s, 0, sizeof s);
    assert_int_equal(jc_cache_runs(c, 0, false, note_run, &s), 0);
    assert_int_equal(s.n, 3);
    memset(&s, 0, sizeof s);
    assert_int_equal(jc_cache_runs(c, 0, true, note_run, &s), 0);
    assert_int_equal(s.n, 0); /* the failing runs were pruned */
    jc_cache_close(c);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM run_failures"), 0);
}

static int64_t disk_bytes(const char *path)
{
    char wal[PATH_CAP + 8];
    struct stat sb;
    int64_t n = stat(path, &sb) == 0 ? sb.st_size : 0;
    snprintf(wal, sizeof wal, "%s-wal", path);
    return n + (stat(wal, &sb) == 0 ? sb.st_size : 0);
}

/* max-size kept in the file: honoured by every program that opens it and
 * sets none; a program's own, and the environment's, come first. */
static void env_max_size_kept_in_the_file(void **state)
{
    (void)state;
    char path[PATH_CAP], seen[128];
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "config.db"), 0);
    assert_int_equal(jc_cache_config_set(c, "max-size", "64K"), 0);
    char *v = NULL;
    assert_int_equal(jc_cache_config_get(c, "max-size", &v), 0);
    assert_string_equal(v, "64K");
    free(v);
    assert_int_equal(jc_cache_config_set(c, "max-size", "lots"), JC_EINVAL);
    assert_contains(jc_errmsg(), "'lots'");
    assert_int_equal(jc_cache_config_set(c, "colour", "blue"), JC_EINVAL);
    assert_contains(jc_errmsg(), "unknown setting 'colour'");
    jc_cache_close(c);

    c = open_cache(path, 0); /* sets no max_size: the file's applies */
    jc_cache_config_list(c, note_setting, seen);
    assert_string_equal(seen, "max-size=65536 (file)");
    run_where(c, &(jc_options){.verbose = JC_VERBOSE_OFF}, 0, 300, NULL);
    jc_cache_close(c);
    assert_true(disk_bytes(path) <= 64 * 1024);
    assert_true(jc_test_sql_int(path, "SELECT count(*) FROM entries") < 300); /* evicted */

    c = jc_cache_open(path, &(jc_cache_options){.max_size = 1 << 20});
    jc_cache_config_list(c, note_setting, seen);
    assert_string_equal(seen, "max-size=1048576 (program)");
    jc_cache_close(c);
    setenv("JOBCACHE_MAX_SIZE", "2M", 1);
    c = jc_cache_open(path, &(jc_cache_options){.max_size = 1 << 20});
    jc_cache_config_list(c, note_setting, seen);
    assert_string_equal(seen, "max-size=2097152 (environment)");
    jc_cache_close(c);
    setenv("JOBCACHE_MAX_SIZE", "12Q", 1);
    assert_null(jc_cache_open(path, NULL));
    assert_contains(jc_errmsg(), "JOBCACHE_MAX_SIZE is '12Q'");
    unsetenv("JOBCACHE_MAX_SIZE");

    c = open_cache(path, JC_CACHE_READONLY);
    assert_int_equal(jc_cache_config_set(c, "max-size", "1M"), JC_EREADONLY);
    jc_cache_close(c);
    c = open_cache(path, 0);
    assert_int_equal(jc_cache_config_set(c, "max-size", NULL), 0);
    jc_cache_config_list(c, note_setting, seen);
    assert_string_equal(seen, "max-size=0 (default)");
    jc_cache_close(c);
}

/* A plan before a long sweep: counts, and the time from the stored mean
 * compute times; JOBCACHE_DRY_RUN=1 prints it and ends the program with
 * status 0, computing nothing. */
static void env_a_plan_before_the_sweep(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = open_cache(jc_test_path(path, sizeof path, "plan.db"), 0);
    run_where(c, &(jc_options){.verbose = JC_VERBOSE_OFF}, 0, 60, NULL);
    sql(path, "UPDATE entries SET compute_seconds = 2.0"); /* a mean of 2 s a call */
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 2});
    for (int x = 0; x < 100; x++)
        jc_delayed(b, where, jc_int(x % 90)); /* 90 distinct, 60 cached */
    jc_plan_info p;
    calls = 0;
    assert_int_equal(jc_plan(b, &p), 0);
    assert_int_equal(calls, 0);
    assert_int_equal(p.calls, 100);
    assert_int_equal(p.distinct, 90);
    assert_int_equal(p.cached, 60);
    assert_int_equal(p.to_compute, 30);
    assert_int_equal(p.workers, 2);
    assert_true(p.estimated_seconds > 29.9 && p.estimated_seconds < 30.1); /* 30 x 2 s / 2 */
    char *text = jc_plan_text(&p);
    assert_string_equal(text, "100 calls: 60 cached, 30 to compute, about 30 s on 2 workers");
    free(text);
    /* The batch still runs as planned. */
    jc_results *res = jc_run(b);
    assert_int_equal(jc_results_summary(res).computed, 30);
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);

    char errpath[PATH_CAP + 16];
    jc_test_side(errpath, sizeof errpath, path, ".dry");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("JOBCACHE_DRY_RUN", "1", 1);
        jc_test_stderr_to(errpath);
        jc_cache *cc = jc_cache_open(path, NULL);
        jc_batch *bb = jc_batch_new(cc, NULL);
        for (int x = 0; x < 200; x++)
            jc_delayed(bb, where, jc_int(x));
        jc_run(bb);
        _exit(7); /* not reached: the dry run ends the program */
    }
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    size_t len = 0;
    char *err = jc_test_read_file(errpath, &len);
    assert_contains(err, "dry run (JOBCACHE_DRY_RUN): 200 calls: 90 cached, 110 to compute");
    free(err);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), 90); /* nothing computed */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(env_n_jobs_from_the_environment, clean_env),
        cmocka_unit_test_setup(env_cache_modes_from_the_environment, clean_env),
        cmocka_unit_test_setup(env_the_environment_can_be_ignored, clean_env),
        cmocka_unit_test_setup(env_verbose_levels_from_the_environment, clean_env),
        cmocka_unit_test_setup(env_timeout_from_the_environment, clean_env),
        cmocka_unit_test_setup(env_numbers_are_read_in_the_c_locale, clean_env),
        cmocka_unit_test_setup(env_max_size_kept_in_the_file, clean_env),
        cmocka_unit_test_setup(env_runs_are_recorded_with_their_failures, clean_env),
        cmocka_unit_test_setup(env_a_plan_before_the_sweep, clean_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
