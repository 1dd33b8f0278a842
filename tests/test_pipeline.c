/*
 * Tests of pipelines: a delayed call's result as another delayed call's
 * argument (jc_delayed_ref, jc_use), each call keyed by its recipe, run as
 * soon as its inputs are known.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jobcache.h>

#include "testutil.h"

#define PATH_CAP 4096

/* Calls computed in this process, by function (n_jobs = 1 runs them here). */
static atomic_int n_gen, n_train, n_eval, n_sum;

/* generate(seed): [seed, seed + 1, seed + 2] as doubles; a seed of -1
 * fails. */
static int generate(jc_call *call)
{
    n_gen++;
    int64_t seed = jc_arg_int(call, 0);
    if (seed == -1)
        return jc_fail(call, "no data for seed -1");
    double xs[3] = {(double)seed, (double)seed + 1, (double)seed + 2};
    return jc_return(call, jc_doubles(xs, 3));
}
JC_FUNCTION(generate, "v1");

/* train(data, alpha): the sum of data times alpha; alpha 0.3 diverges. */
static int train(jc_call *call)
{
    n_train++;
    size_t n = 0;
    const double *xs = jc_arg_doubles(call, 0, &n);
    double alpha = jc_arg_double(call, 1);
    if (!xs)
        return jc_fail(call, "no data");
    if (alpha == 0.3)
        return jc_fail(call, "diverged");
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += xs[i];
    return jc_return_double(call, s * alpha);
}
JC_FUNCTION(train, "v1");

/* evaluate(fit, data): fit + data[0], or with a named "scale", times it. */
static int evaluate(jc_call *call)
{
    n_eval++;
    double fit = jc_arg_double(call, 0);
    size_t n = 0;
    const double *xs = jc_arg_doubles(call, 1, &n);
    if (!xs)
        return jc_fail(call, "no data");
    const jc_value *scale = jc_kwarg(call, "scale");
    double k = 1;
    if (scale && jc_value_get_double(scale, &k))
        return jc_fail(call, "scale is not a double");
    return jc_return_double(call, (fit + xs[0]) * k);
}
JC_FUNCTION(evaluate, "v1");

/* total(list): the sum of a list of doubles (a fan-in). */
static int total(jc_call *call)
{
    n_sum++;
    const jc_value *list = jc_arg(call, 0);
    double s = 0;
    for (size_t i = 0; i < jc_value_len(list); i++) {
        double d = 0;
        if (jc_value_get_double(jc_value_at(list, i), &d))
            return jc_fail(call, "item %zu is not a double", i);
        s += d;
    }
    return jc_return_double(call, s);
}
JC_FUNCTION(total, "v1");

/* square(x): x * x for an int or a double, as a double. */
static int square(jc_call *call)
{
    const jc_value *v = jc_arg(call, 0);
    double d = 0;
    int64_t i = 0;
    if (jc_value_get_int(v, &i) == 0)
        d = (double)i;
    else if (jc_value_get_double(v, &d))
        return jc_fail(call, "not a number");
    return jc_return_double(call, d * d);
}
JC_FUNCTION(square, "v1");

static void reset_counts(void)
{
    n_gen = n_train = n_eval = n_sum = 0;
}

/* The three-stage chain: generate -> train -> evaluate. With intermediate,
 * the first two are marked not wanted. Returns the results. */
static jc_results *run_chain(jc_cache *c, jc_options o, bool intermediate, size_t *eval_at)
{
    jc_batch *b = jc_batch_new(c, &o);
    assert_non_null(b);
    jc_ref data = jc_delayed_ref(b, generate, jc_int(7));
    jc_ref fit = jc_delayed_ref(b, train, jc_use(data), jc_double(0.5));
    jc_ref ev = jc_delayed_ref(b, evaluate, jc_use(fit), jc_use(data));
    assert_true(jc_ref_ok(data) && jc_ref_ok(fit) && jc_ref_ok(ev));
    if (intermediate) {
        assert_int_equal(jc_intermediate(b, data), 0);
        assert_int_equal(jc_intermediate(b, fit), 0);
    }
    *eval_at = jc_ref_index(ev);
    jc_results *res = jc_run(b);
    assert_non_null(res);
    jc_batch_free(b);
    return res;
}

static void chain_computes_each_stage_once_and_a_rerun_reads_no_intermediate_value(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = jc_test_fresh_cache(path, PATH_CAP, "chain.jobcache", 0);
    reset_counts();
    size_t ev = 0;
    jc_results *res = run_chain(c, (jc_options){.verbose = JC_VERBOSE_OFF}, false, &ev);
    assert_int_equal(jc_results_status(res), JC_OK);
    assert_int_equal(ev, 2);
    /* data = [7, 8, 9]; fit = 24 * 0.5 = 12; evaluate = 12 + 7 = 19 */
    assert_true(jc_result_double(res, 1) == 12.0);
    assert_true(jc_result_double(res, 2) == 19.0);
    size_t n = 0;
    const double *xs = NULL;
    assert_int_equal(jc_value_get_doubles(jc_result_value(res, 0), &xs, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(n_gen + n_train + n_eval, 3);
    assert_int_equal(jc_results_summary(res).computed, 3);
    jc_results_free(res);

    /* The rerun: everything hits; the intermediate values are not read. */
    reset_counts();
    res = run_chain(c, (jc_options){.verbose = JC_VERBOSE_OFF}, true, &ev);
    assert_int_equal(jc_results_status(res), JC_OK);
    jc_progress p = jc_results_summary(res);
    assert_int_equal(p.cached, 3);
    assert_int_equal(p.computed, 0);
    assert_int_equal(p.inputs_read, 0);
    assert_int_equal(n_gen + n_train + n_eval, 0);
    assert_true(jc_result_double(res, ev) == 19.0);
    assert_null(jc_result_value(res, 0)); /* intermediate: not handed back */
    assert_int_equal(jc_result_status(res, 0), JC_STATUS_OK);
    assert_true(jc_result_cached(res, 1));
    jc_results_free(res);

    /* Wanted intermediates are read, and counted. */
    res = run_chain(c, (jc_options){.verbose = JC_VERBOSE_OFF}, false, &ev);
    assert_int_equal(jc_results_summary(res).inputs_read, 2);
    assert_true(jc_result_double(res, 1) == 12.0);
    jc_results_free(res);

    /* The last stage removed: computed again from its inputs, read now. */
    int64_t removed = 0;
    jc_filter f = {.function = "evaluate"};
    assert_int_equal(jc_cache_remove_matching(c, &f, false, &removed, NULL), 0);
    assert_int_equal(removed, 1);
    reset_counts();
    res = run_chain(c, (jc_options){.verbose = JC_VERBOSE_OFF}, true, &ev);
    p = jc_results_summary(res);
    assert_int_equal(p.computed, 1);
    assert_int_equal(n_eval, 1);
    assert_int_equal(n_gen + n_train, 0);
    assert_int_equal(p.inputs_read, 2); /* fit and data, for evaluate */
    assert_true(jc_result_double(res, ev) == 19.0);
    jc_results_free(res);
    jc_cache_close(c);
}

/* a -> b, a -> c, (b, c) -> d; d also takes a inside a list and a map. */
static void diamond_with_references_nested_in_lists_and_maps(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = jc_test_fresh_cache(path, PATH_CAP, "diamond.jobcache", 0);
    for (int round = 0; round < 2; round++) {
        reset_counts();
        jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
        jc_ref a = jc_delayed_ref(b, generate, jc_int(1));
        jc_ref l = jc_delayed_ref(b, train, jc_use(a), jc_double(2.0));
        jc_ref r = jc_delayed_ref(b, train, jc_use(a), jc_double(3.0));
        jc_ref d = jc_delayed_ref(b, total, jc_list(jc_use(l), jc_use(r), jc_double(0.5)));
        jc_ref e = jc_delayed_ref(b, evaluate, jc_use(d), jc_use(a), jc_kw("scale", jc_use(l)));
        jc_results *res = jc_run(b);
        assert_int_equal(jc_results_status(res), JC_OK);
        /* a = [1,2,3]: l = 12, r = 18, d = 30.5, e = (30.5 + 1) * 12 */
        assert_true(jc_result_double(res, jc_ref_index(d)) == 30.5);
        assert_true(jc_result_double(res, jc_ref_index(e)) == 378.0);
        assert_int_equal(n_gen + n_train + n_sum + n_eval, round ? 0 : 5);
        assert_int_equal(jc_results_summary(res).cached, round ? 5 : 0);
        jc_results_free(res);
        jc_batch_free(b);
    }
    jc_cache_close(c);
}

/* 10,000 calls over one input, and one call over 10,000 inputs, on forked
 * workers: the later calls are sent whole to workers forked before their
 * inputs were known. */
static void fan_out_and_fan_in_of_ten_thousand_on_workers(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = jc_test_fresh_cache(path, PATH_CAP, "fan.jobcache", 0);
    enum { N = 10000 };
    for (int round = 0; round < 2; round++) {
        jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 2, .verbose = JC_VERBOSE_OFF});
        jc_ref one = jc_delayed_ref(b, generate, jc_int(2)); /* [2, 3, 4] */
        jc_value *items[N];
        for (int i = 0; i < N; i++) {
            jc_ref t = jc_delayed_ref(b, train, jc_use(one), jc_double(i + 1));
            items[i] = jc_use(t);
        }
        jc_ref all = jc_delayed_ref(b, total, jc_list_of(items, N));
        jc_results *res = jc_run(b);
        assert_non_null(res);
        assert_int_equal(jc_results_status(res), JC_OK);
        assert_true(jc_result_double(res, 1) == 9.0);
        assert_true(jc_result_double(res, N) == 9.0 * N);
        /* sum over i of 9 (i + 1) */
        assert_true(jc_result_double(res, jc_ref_index(all)) == 9.0 * N * (N + 1) / 2);
        assert_int_equal(jc_results_summary(res).cached, round ? N + 2 : 0);
        jc_results_free(res);
        jc_batch_free(b);
    }
    jc_cache_close(c);
}

/* A failed input skips exactly the calls that use it, directly or not,
 * each named with the input. */
static void failed_input_skips_exactly_its_dependants(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = jc_test_fresh_cache(path, PATH_CAP, "failed.jobcache", 0);
    jc_batch *b = jc_batch_new(c, &(jc_options){.on_error = JC_ON_ERROR_CONTINUE, .verbose = JC_VERBOSE_OFF});
    jc_ref good = jc_delayed_ref(b, generate, jc_int(1));
    jc_ref bad = jc_delayed_ref(b, generate, jc_int(-1));
    jc_ref t_good = jc_delayed_ref(b, train, jc_use(good), jc_double(1.0));
    jc_ref t_div = jc_delayed_ref(b, train, jc_use(good), jc_double(0.3));
    jc_ref t_bad = jc_delayed_ref(b, train, jc_use(bad), jc_double(1.0));
    jc_ref e_good = jc_delayed_ref(b, evaluate, jc_use(t_good), jc_use(good));
    jc_ref e_div = jc_delayed_ref(b, evaluate, jc_use(t_div), jc_use(good));
    jc_ref e_bad = jc_delayed_ref(b, evaluate, jc_use(t_good), jc_use(bad));
    jc_results *res = jc_run(b);
    assert_int_equal(jc_results_status(res), JC_EFAILED);
    assert_int_equal(jc_result_status(res, jc_ref_index(t_good)), JC_STATUS_OK);
    assert_int_equal(jc_result_status(res, jc_ref_index(e_good)), JC_STATUS_OK);
    assert_int_equal(jc_result_status(res, jc_ref_index(bad)), JC_STATUS_ERROR);
    assert_int_equal(jc_result_status(res, jc_ref_index(t_div)), JC_STATUS_ERROR);
    assert_int_equal(jc_result_status(res, jc_ref_index(t_bad)), JC_STATUS_SKIPPED);
    assert_int_equal(jc_result_status(res, jc_ref_index(e_div)), JC_STATUS_SKIPPED);
    assert_int_equal(jc_result_status(res, jc_ref_index(e_bad)), JC_STATUS_SKIPPED);
    const char *m = jc_result_error(res, jc_ref_index(e_div));
    assert_non_null(m);
    assert_non_null(strstr(m, "evaluate("));
    assert_non_null(strstr(m, "input 1, train("));
    assert_non_null(strstr(m, "diverged"));
    m = jc_result_error(res, jc_ref_index(e_bad));
    assert_non_null(strstr(m, "input 2, generate(-1): no data for seed -1"));
    m = jc_result_error(res, jc_ref_index(t_bad));
    assert_non_null(strstr(m, "input 1, generate(-1)"));
    jc_progress p = jc_results_summary(res);
    assert_int_equal(p.failed, 2);
    assert_int_equal(p.skipped, 3);
    assert_int_equal(p.computed, 3);
    jc_results_free(res);
    jc_batch_free(b);
    /* Nothing failed or skipped was stored. */
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), 3);
    jc_cache_close(c);
}

/* Under on_error = stop, the calls waiting for inputs are skipped. */
static void stop_on_error_skips_the_waiting_calls(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = jc_test_fresh_cache(path, PATH_CAP, "stop.jobcache", 0);
    jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
    jc_ref bad = jc_delayed_ref(b, generate, jc_int(-1));
    jc_ref good = jc_delayed_ref(b, generate, jc_int(4));
    jc_ref t = jc_delayed_ref(b, train, jc_use(good), jc_double(1.0));
    jc_results *res = jc_run(b);
    assert_int_equal(jc_results_status(res), JC_EFAILED);
    assert_int_equal(jc_result_status(res, jc_ref_index(bad)), JC_STATUS_ERROR);
    assert_int_equal(jc_result_status(res, jc_ref_index(good)), JC_STATUS_SKIPPED);
    assert_int_equal(jc_result_status(res, jc_ref_index(t)), JC_STATUS_SKIPPED);
    assert_int_equal(jc_results_summary(res).skipped, 2);
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
}

/* ---- early cutoff: an upstream version bump ---- */

static int up_impl(jc_call *call)
{
    /* UP_RESULT (environment) changes what the new version returns. */
    const char *r = getenv("JC_TEST_UP_RESULT");
    return jc_return_double(call, jc_arg_double(call, 0) * (r ? atof(r) : 2.0));
}

static int down_impl(jc_call *call)
{
    /* Each computation appends a line to the file JC_TEST_DOWN_LOG names. */
    FILE *f = fopen(getenv("JC_TEST_DOWN_LOG"), "a");
    if (f) {
        fputs("down\n", f);
        fclose(f);
    }
    return jc_return_double(call, jc_arg_double(call, 0) + 1);
}

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    int n = 0, ch;
    while (f && (ch = fgetc(f)) != EOF)
        n += ch == '\n';
    if (f)
        fclose(f);
    return n;
}

/* In a child: "up" at version, 10 up calls each used by one down call.
 * Exits with how many up calls were computed (or 100 + a failure). */
static void run_versioned(const char *path, const char *version, const char *up_result)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        static jc_function up = {"up", NULL, up_impl}, down = {"down", "v1", down_impl};
        up.version = version;
        if (up_result)
            setenv("JC_TEST_UP_RESULT", up_result, 1);
        if (jc_function_register(&up) || jc_function_register(&down))
            _exit(101);
        jc_cache *c = jc_cache_open(path, NULL);
        jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
        for (int i = 0; i < 10; i++) {
            jc_ref u = jc_delayed_name_ref(b, "up", (jc_value *[]){jc_double(i)}, 1);
            jc_delayed_name(b, "down", (jc_value *[]){jc_use(u)}, 1);
        }
        jc_results *res = jc_run(b);
        int rc = !res || jc_results_status(res) ? 102 : (int)jc_results_summary(res).computed;
        jc_results_free(res);
        jc_batch_free(b);
        jc_cache_close(c);
        _exit(rc);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_true(WEXITSTATUS(status) < 100);
}

static void upstream_version_bump_recomputes_downstream_only_when_its_result_changes(void **state)
{
    (void)state;
    char path[PATH_CAP], log[PATH_CAP];
    jc_test_path(path, PATH_CAP, "cutoff.jobcache");
    jc_test_path(log, PATH_CAP, "cutoff.log");
    jc_test_remove_db(path);
    unlink(log);
    setenv("JC_TEST_DOWN_LOG", log, 1);
    run_versioned(path, "v1", NULL);
    assert_int_equal(count_lines(log), 10);
    /* v2 computes the same results: every down call still hits. */
    run_versioned(path, "v2", NULL);
    assert_int_equal(count_lines(log), 10);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries WHERE function = 'up'"), 20);
    /* v3 computes other results: exactly the down calls of a changed one
     * (all but up(0), whose result stays 0). */
    run_versioned(path, "v3", "3.0");
    /* up(i) is 3i now, 2i before: down(6), down(12) and down(18) hit the
     * entries of v1's up(3), up(6) and up(9) (keys by the inputs' results). */
    assert_int_equal(count_lines(log), 16);
    unsetenv("JC_TEST_DOWN_LOG");
}

/* ---- calls that become ready during the run, on forked workers ---- */

/* boom(x, data): aborts for x = 13; x + data[0] otherwise. */
static int boom(jc_call *call)
{
    int64_t x = jc_arg_int(call, 0);
    size_t n = 0;
    const double *xs = jc_arg_doubles(call, 1, &n);
    if (x == 13)
        abort();
    if (!xs || !n)
        return jc_fail(call, "no data");
    return jc_return_double(call, (double)x + xs[0]);
}
JC_FUNCTION(boom, "v1");

/* 300 calls over one input computed during the run: the forked workers get
 * them whole, in groups; one crashes, and it alone fails (the others of its
 * group run again); what uses it is skipped, naming it. */
static void a_crash_among_calls_sent_whole_fails_that_call_alone(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = jc_test_fresh_cache(path, PATH_CAP, "late.jobcache", 0);
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 2, .on_error = JC_ON_ERROR_CONTINUE,
                                                .verbose = JC_VERBOSE_OFF});
    jc_ref data = jc_delayed_ref(b, generate, jc_int(5)); /* [5, 6, 7] */
    size_t at[300];
    for (int i = 0; i < 300; i++) {
        jc_ref r = jc_delayed_ref(b, boom, jc_int(i), jc_use(data));
        at[i] = jc_ref_index(r);
        if (i == 13)
            assert_true(jc_ref_ok(jc_delayed_ref(b, boom, jc_int(1000), jc_use(r))));
    }
    jc_results *res = jc_run(b);
    assert_int_equal(jc_results_status(res), JC_EFAILED);
    jc_progress p = jc_results_summary(res);
    assert_int_equal(p.computed, 1 + 299);
    assert_int_equal(p.failed, 1);
    assert_int_equal(p.skipped, 1);
    for (int i = 0; i < 300; i++) {
        if (i == 13)
            continue;
        assert_int_equal(jc_result_status(res, at[i]), JC_STATUS_OK);
        assert_true(jc_result_double(res, at[i]) == i + 5.0);
    }
    assert_int_equal(jc_result_status(res, at[13]), JC_STATUS_CRASHED);
    const char *err = jc_result_error(res, at[13] + 1);
    assert_non_null(err);
    assert_non_null(strstr(err, "skipped: input 1, boom(13, "));
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
}

/* ---- plans: stage by stage ---- */

/* 4 seeds: generate -> train at two alphas -> evaluate; and generate(0)
 * again, with a train identical to one already there. */
static jc_batch *sweep_batch(jc_cache *c)
{
    jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
    assert_non_null(b);
    for (int seed = 0; seed < 4; seed++) {
        jc_ref data = jc_delayed_ref(b, generate, jc_int(seed));
        for (int a = 1; a <= 2; a++) {
            jc_ref fit = jc_delayed_ref(b, train, jc_use(data), jc_double(0.25 * a));
            assert_int_equal(jc_delayed(b, evaluate, jc_use(fit), jc_use(data)), 0);
        }
    }
    jc_ref again = jc_delayed_ref(b, generate, jc_int(0));
    assert_true(jc_ref_ok(jc_delayed_ref(b, train, jc_use(again), jc_double(0.25))));
    return b;
}

static void expect_stage(const jc_plan_info *p, size_t k, const char *fn, size_t calls, size_t distinct,
                         size_t cached, size_t because)
{
    assert_true(k < p->nstages);
    const jc_plan_stage *st = &p->stages[k];
    assert_string_equal(st->function, fn);
    assert_int_equal(st->calls, calls);
    assert_int_equal(st->distinct, distinct);
    assert_int_equal(st->cached, cached);
    assert_int_equal(st->to_compute, distinct - cached);
    assert_int_equal(st->because_inputs, because);
}

static void plans_count_each_stage_and_the_calls_waiting_for_inputs(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = jc_test_fresh_cache(path, PATH_CAP, "plan.jobcache", 0);
    jc_batch *b = sweep_batch(c);
    jc_plan_info p;
    /* Cold: nothing cached; the calls after generate wait for inputs. */
    assert_int_equal(jc_plan(b, &p), 0);
    assert_int_equal(p.calls, 22);
    assert_int_equal(p.distinct, 20); /* generate(0) and its train, twice */
    assert_int_equal(p.cached, 0);
    assert_int_equal(p.to_compute, 20);
    assert_int_equal(p.after_inputs, 17);
    assert_int_equal(p.because_inputs, 16);
    assert_int_equal(p.nstages, 3);
    expect_stage(&p, 0, "generate", 5, 4, 0, 0);
    expect_stage(&p, 1, "train", 9, 8, 0, 8);
    expect_stage(&p, 2, "evaluate", 8, 8, 0, 8);
    char *text = jc_plan_text(&p);
    assert_non_null(text);
    assert_non_null(strstr(text, "22 calls: 0 cached, 20 to compute"));
    assert_non_null(strstr(text, "\n  train: 9 calls, 0 cached, 8 to compute (8 because of their inputs)"));
    assert_non_null(strstr(text, "\n  evaluate: 8 calls, 0 cached, 8 to compute (8 because of their inputs)"));
    free(text);
    /* The plan leaves the batch runnable; a batch that has run is not
     * planned. */
    reset_counts();
    jc_results *res = jc_run(b);
    assert_int_equal(jc_results_status(res), JC_OK);
    assert_int_equal(jc_plan(b, &p), JC_EINVAL);
    assert_non_null(strstr(jc_errmsg(), "has run"));
    assert_int_equal(n_gen + n_train + n_eval, 20);
    assert_true(jc_result_double(res, 2) == 0.25 * 3 + 0); /* evaluate(train([0,1,2], 0.25), ...) */
    jc_results_free(res);
    jc_batch_free(b);

    /* Warm: every stage answered, by the inputs' digests. */
    b = sweep_batch(c);
    assert_int_equal(jc_plan(b, &p), 0);
    assert_int_equal(p.cached, 20);
    assert_int_equal(p.to_compute, 0);
    assert_int_equal(p.because_inputs, 0);
    expect_stage(&p, 2, "evaluate", 8, 8, 8, 0);
    jc_batch_free(b);

    /* The fits removed: train computes again; evaluate may hit or not once
     * their results are known (the same results: early cutoff). */
    int64_t removed = 0;
    assert_int_equal(jc_cache_remove_matching(c, &(jc_filter){.function = "train"}, false, &removed, NULL), 0);
    assert_int_equal(removed, 8);
    b = sweep_batch(c);
    assert_int_equal(jc_plan(b, &p), 0);
    expect_stage(&p, 0, "generate", 5, 4, 4, 0);
    expect_stage(&p, 1, "train", 9, 8, 0, 0);
    expect_stage(&p, 2, "evaluate", 8, 8, 0, 8);
    assert_int_equal(p.because_inputs, 8);
    reset_counts();
    res = jc_run(b);
    assert_int_equal(jc_results_status(res), JC_OK);
    assert_int_equal(n_train, 8);
    assert_int_equal(n_eval, 0); /* the same fits: every evaluate hits */
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
}

/* ---- handles ---- */

static void handles_of_another_batch_or_a_freed_one_are_refused(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = jc_test_fresh_cache(path, PATH_CAP, "handles.jobcache", 0);
    jc_batch *a = jc_batch_new(c, NULL), *b = jc_batch_new(c, NULL);
    jc_ref ra = jc_delayed_ref(a, generate, jc_int(1));
    assert_true(jc_ref_ok(ra));
    assert_int_equal(jc_delayed(b, train, jc_use(ra), jc_double(1)), JC_EINVAL);
    assert_non_null(strstr(jc_errmsg(), "another batch"));
    assert_non_null(strstr(jc_errmsg(), "argument 0"));
    assert_null(jc_run(b));
    assert_non_null(strstr(jc_errmsg(), "another batch"));
    jc_batch_free(b);
    jc_batch_free(a);
    /* After its batch was freed. */
    jc_batch *d = jc_batch_new(c, NULL);
    assert_int_equal(jc_delayed(d, train, jc_use(ra), jc_double(1)), JC_EINVAL);
    assert_non_null(strstr(jc_errmsg(), "already freed"));
    jc_batch_free(d);
    /* A handle of a refused call holds none: jc_use says so. */
    jc_batch *e = jc_batch_new(c, NULL);
    jc_ref bad = jc_delayed_ref(e, generate, NULL);
    assert_false(jc_ref_ok(bad));
    assert_int_equal(jc_ref_index(bad), SIZE_MAX);
    assert_null(jc_use(bad));
    assert_non_null(strstr(jc_errmsg(), "holds no call"));
    assert_int_equal(jc_intermediate(e, bad), JC_EINVAL);
    jc_batch_free(e);
    /* jc_intermediate of another batch's handle. */
    jc_batch *f = jc_batch_new(c, NULL), *g = jc_batch_new(c, NULL);
    jc_ref rf = jc_delayed_ref(f, generate, jc_int(1));
    assert_int_equal(jc_intermediate(g, rf), JC_EINVAL);
    assert_non_null(strstr(jc_errmsg(), "another batch"));
    jc_batch_free(f);
    jc_batch_free(g);
    jc_cache_close(c);
}

/* A reference is not a result; a function sees the input's value through
 * every accessor. */
static void a_reference_reads_as_its_result_through_every_accessor(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = jc_test_fresh_cache(path, PATH_CAP, "access.jobcache", 0);
    jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
    jc_ref x = jc_delayed_ref(b, square, jc_int(3));
    jc_ref y = jc_delayed_ref(b, square, jc_use(x)); /* 81 */
    jc_ref z = jc_delayed_ref(b, total, jc_list(jc_use(x), jc_use(y)));
    jc_results *res = jc_run(b);
    assert_int_equal(jc_results_status(res), JC_OK);
    assert_true(jc_result_double(res, jc_ref_index(y)) == 81.0);
    assert_true(jc_result_double(res, jc_ref_index(z)) == 90.0);
    jc_results_free(res);
    jc_batch_free(b);
    /* The stored arguments hold the digest, shown as such. */
    jc_entries *it = jc_entries_query(c, &(jc_filter){.function = "total"});
    assert_non_null(it);
    jc_entry_info e;
    assert_int_equal(jc_entries_next(it, &e), 1);
    jc_value *args = NULL;
    assert_int_equal(jc_entry_load(c, e.key, &args, NULL, NULL), 0);
    char *text = jc_value_format(args, 0);
    assert_non_null(strstr(text, "<result xxh3 "));
    free(text);
    /* The input is found by its result; rm --downstream of x takes y and z
     * (z uses x directly and through y), and nothing else. */
    const jc_value *ref = jc_value_at(jc_value_at(args, 0), 0);
    const uint8_t *digest = NULL;
    assert_int_equal(jc_value_get_ref(ref, &digest), 0);
    jc_entry_info in;
    assert_int_equal(jc_entry_by_result(c, digest, &in), 0);
    assert_string_equal(in.function, "square");
    jc_value_free(args);
    jc_entries_free(it);
    jc_batch *other = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
    jc_delayed(other, square, jc_int(5)); /* not downstream of square(3) */
    jc_results_free(jc_run(other));
    jc_batch_free(other);
    uint8_t x_key[JC_KEY_SIZE];
    jc_value *three = jc_int(3);
    assert_int_equal(jc_call_key("square", "v1", &three, 1, x_key), 0);
    jc_value_free(three);
    int64_t count = 0, bytes = 0;
    assert_int_equal(jc_cache_remove_downstream(c, x_key, true, &count, &bytes), 0);
    assert_int_equal(count, 3);
    assert_true(bytes > 0);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), 4);
    assert_int_equal(jc_cache_remove_downstream(c, x_key, false, &count, NULL), 0);
    assert_int_equal(count, 3);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), 1);
    assert_int_equal(jc_cache_remove_downstream(c, x_key, false, &count, NULL), JC_ENOTFOUND);
    jc_cache_close(c);
}

/* A graph of 100,000 calls: 50,000 inputs each used by one call. */
static void a_graph_of_a_hundred_thousand_calls(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = jc_test_fresh_cache(path, PATH_CAP, "big.jobcache", 0);
    enum { N = 50000 };
    for (int round = 0; round < 2; round++) {
        jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
        for (int i = 0; i < N; i++) {
            jc_ref s = jc_delayed_ref(b, square, jc_int(i));
            if (round)
                jc_intermediate(b, s);
            jc_delayed(b, square, jc_use(s));
        }
        jc_results *res = jc_run(b);
        if (jc_results_status(res))
            fprintf(stderr, "%s\n", jc_results_message(res));
        assert_int_equal(jc_results_status(res), JC_OK);
        jc_progress p = jc_results_summary(res);
        assert_int_equal(p.total, 2 * N);
        assert_int_equal(p.cached, round ? 2 * N : 0);
        assert_int_equal(p.inputs_read, 0);
        assert_true(jc_result_double(res, 2 * 7 + 1) == 7.0 * 7 * 7 * 7);
        jc_results_free(res);
        jc_batch_free(b);
    }
    jc_cache_close(c);
}

/* The threads backend runs a pipeline as the others do. */
static void threads_backend_runs_a_pipeline(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = jc_test_fresh_cache(path, PATH_CAP, "threads.jobcache", 0);
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 2, .backend = JC_BACKEND_THREADS,
                                                .verbose = JC_VERBOSE_OFF});
    jc_ref refs[200];
    for (int i = 0; i < 200; i++)
        refs[i] = jc_delayed_ref(b, square, i ? jc_use(refs[i - 1]) : jc_double(1.0000001));
    jc_results *res = jc_run(b);
    assert_int_equal(jc_results_status(res), JC_OK);
    assert_int_equal(jc_results_summary(res).computed, 200);
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
}

/* A call does not wait for the slow calls of its input's function: with two
 * workers, the fast branch ends before the slow input does. */
static int nap(jc_call *call)
{
    double s = jc_arg_double(call, 0);
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
    return jc_return_double(call, s);
}
JC_FUNCTION(nap, "v1");

static size_t order[8], norder;
static void note_result(const jc_results *res, size_t index, void *userdata)
{
    (void)res;
    (void)userdata;
    order[norder++] = index;
}

static void stages_overlap_on_workers(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_cache *c = jc_test_fresh_cache(path, PATH_CAP, "overlap.jobcache", 0);
    norder = 0;
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 2, .backend = JC_BACKEND_FORK, .on_result = note_result,
                                                .verbose = JC_VERBOSE_OFF});
    jc_ref slow = jc_delayed_ref(b, nap, jc_double(1.0));
    jc_ref fast = jc_delayed_ref(b, nap, jc_double(0.01));
    jc_ref after_fast = jc_delayed_ref(b, square, jc_use(fast));
    jc_delayed(b, square, jc_use(slow));
    jc_results *res = jc_run(b);
    assert_int_equal(jc_results_status(res), JC_OK);
    assert_int_equal(norder, 4);
    /* fast, its user, then slow, then slow's user. */
    size_t at_after_fast = 9, at_slow = 9;
    for (size_t i = 0; i < norder; i++) {
        if (order[i] == jc_ref_index(after_fast))
            at_after_fast = i;
        if (order[i] == jc_ref_index(slow))
            at_slow = i;
    }
    assert_true(at_after_fast < at_slow);
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
}

/* Two processes running one pipeline compute each call once (leases). */
static int counting(jc_call *call)
{
    FILE *f = fopen(getenv("JC_TEST_COUNT_LOG"), "a");
    if (f) {
        fprintf(f, "%g\n", jc_arg_double(call, 0));
        fclose(f);
    }
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
    return jc_return_double(call, jc_arg_double(call, 0) + 1);
}
JC_FUNCTION(counting, "v1");

static void two_processes_on_one_pipeline_compute_each_call_once(void **state)
{
    (void)state;
    char path[PATH_CAP], log[PATH_CAP];
    jc_test_path(path, PATH_CAP, "two.jobcache");
    jc_test_path(log, PATH_CAP, "two.log");
    jc_test_remove_db(path);
    unlink(log);
    setenv("JC_TEST_COUNT_LOG", log, 1);
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            jc_cache *c = jc_cache_open(path, NULL);
            jc_batch *b = jc_batch_new(c, &(jc_options){.verbose = JC_VERBOSE_OFF});
            for (int i = 0; i < 100; i++) { /* chains of three */
                jc_ref a = jc_delayed_ref(b, counting, jc_double(1000 * i));
                jc_ref m = jc_delayed_ref(b, counting, jc_use(a));
                jc_delayed(b, counting, jc_use(m));
            }
            jc_results *res = jc_run(b);
            int rc = res && jc_results_status(res) == JC_OK ? 0 : 1;
            if (rc)
                fprintf(stderr, "process %d: %s\n", k, res ? jc_results_message(res) : jc_errmsg());
            for (int i = 0; res && i < 100; i++)
                if (jc_result_double(res, 3 * (size_t)i + 2) != 1000.0 * i + 3)
                    rc = 2;
            jc_results_free(res);
            jc_batch_free(b);
            jc_cache_close(c);
            _exit(rc);
        }
    }
    for (int k = 0; k < 2; k++) {
        int status = 0;
        waitpid(kids[k], &status, 0);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_int_equal(count_lines(log), 300);
    unsetenv("JC_TEST_COUNT_LOG");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chain_computes_each_stage_once_and_a_rerun_reads_no_intermediate_value),
        cmocka_unit_test(diamond_with_references_nested_in_lists_and_maps),
        cmocka_unit_test(fan_out_and_fan_in_of_ten_thousand_on_workers),
        cmocka_unit_test(failed_input_skips_exactly_its_dependants),
        cmocka_unit_test(stop_on_error_skips_the_waiting_calls),
        cmocka_unit_test(upstream_version_bump_recomputes_downstream_only_when_its_result_changes),
        cmocka_unit_test(a_crash_among_calls_sent_whole_fails_that_call_alone),
        cmocka_unit_test(plans_count_each_stage_and_the_calls_waiting_for_inputs),
        cmocka_unit_test(handles_of_another_batch_or_a_freed_one_are_refused),
        cmocka_unit_test(a_reference_reads_as_its_result_through_every_accessor),
        cmocka_unit_test(a_graph_of_a_hundred_thousand_calls),
        cmocka_unit_test(threads_backend_runs_a_pipeline),
        cmocka_unit_test(stages_overlap_on_workers),
        cmocka_unit_test(two_processes_on_one_pipeline_compute_each_call_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
