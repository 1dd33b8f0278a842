/*
 * Tests of the function registry (src/function/registry.c): JC_FUNCTION, lookups by
 * name and by address, and the refusal of names that mean two functions.
 *
 * The registry is process-wide and has no way to unregister, so every test
 * that registers at run time uses names of its own.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jobcache.h>

#include "testutil.h"

static int add(jc_call *call)
{
    return jc_return_int(call, jc_arg_int(call, 0) + jc_arg_int(call, 1));
}
JC_FUNCTION(add, "v1");

/* Returns the name it was called under. */
static int whoami(jc_call *call)
{
    return jc_return_str(call, jc_call_function(call));
}
JC_FUNCTION_NAMED(whoami, "model/whoami", "v7");

static int first_impl(jc_call *call)
{
    return jc_return_int(call, 1);
}

static int second_impl(jc_call *call)
{
    return jc_return_int(call, 2);
}

static int twice_named(jc_call *call)
{
    return jc_return_int(call, 3);
}

static int once(jc_call *call)
{
    return jc_return_int(call, 4 + jc_arg_int(call, 0));
}

static int unnamed(jc_call *call)
{
    return jc_return_int(call, 5);
}

static void registry_jc_function_registers_before_main_and_is_found_by_name(void **state)
{
    (void)state;
    const jc_function *f = jc_function_find("add");
    assert_non_null(f);
    assert_string_equal(f->name, "add");
    assert_string_equal(f->version, "v1");
    assert_ptr_equal(f->fn, add);

    f = jc_function_find("model/whoami");
    assert_non_null(f);
    assert_string_equal(f->version, "v7");
    assert_ptr_equal(f->fn, whoami);
    assert_null(jc_function_find("whoami")); /* only under the name it was given */
}

static void registry_a_function_is_called_under_its_registered_name(void **state)
{
    (void)state;
    jc_cache *c = jc_cache_open(NULL, &(jc_cache_options){.flags = JC_CACHE_DISABLED});
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
    assert_int_equal(jc_delayed(b, whoami), 0);
    jc_value *none[] = {NULL};
    assert_int_equal(jc_delayed_name(b, "model/whoami", none, 0), 0);
    jc_value *argv[] = {jc_int(20), jc_int(22)};
    assert_int_equal(jc_delayed_name(b, "add", argv, 2), 0);
    jc_results *res = jc_run(b);
    assert_non_null(res);
    const char *s = NULL;
    for (size_t k = 0; k < 2; k++) {
        assert_int_equal(jc_value_get_str(jc_result_value(res, k), &s, NULL), 0);
        assert_string_equal(s, "model/whoami");
    }
    assert_int_equal(jc_result_int(res, 2), 42);
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
}

static void registry_an_unknown_name_is_enofunc_naming_it(void **state)
{
    (void)state;
    assert_null(jc_function_find("no/such/function"));
    assert_int_equal(jc_errcode(), JC_ENOFUNC);
    assert_contains(jc_errmsg(), "\"no/such/function\"");

    assert_null(jc_function_find(""));
    assert_int_equal(jc_errcode(), JC_ENOFUNC);

    assert_null(jc_function_find(NULL));
    assert_int_equal(jc_errcode(), JC_EINVAL);

    jc_cache *c = jc_cache_open(NULL, &(jc_cache_options){.flags = JC_CACHE_DISABLED});
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
    jc_value *argv[] = {jc_int(1)};
    assert_int_equal(jc_delayed_name(b, "no/such/function", argv, 1), JC_ENOFUNC); /* argv freed */
    assert_contains(jc_errmsg(), "\"no/such/function\"");
    assert_null(jc_run(b));
    assert_int_equal(jc_errcode(), JC_ENOFUNC);
    assert_contains(jc_errmsg(), "\"no/such/function\"");
    jc_batch_free(b);

    b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
    jc_value *argv2[] = {jc_int(1)};
    assert_int_equal(jc_delayed_name(b, NULL, argv2, 1), JC_EINVAL); /* argv2 freed */
    jc_batch_free(b);
    jc_cache_close(c);
}

static void registry_registering_bad_descriptors_is_einval(void **state)
{
    (void)state;
    static const jc_function empty_name = {"", "v1", unnamed};
    static const jc_function null_name = {NULL, "v1", unnamed};
    static const jc_function empty_version = {"reg/empty-version", "", unnamed};
    static const jc_function null_version = {"reg/null-version", NULL, unnamed};
    static const jc_function null_fn = {"reg/null-fn", "v1", NULL};

    assert_int_equal(jc_function_register(NULL), JC_EINVAL);
    assert_int_equal(jc_errcode(), JC_EINVAL);
    assert_int_equal(jc_function_register(&empty_name), JC_EINVAL);
    assert_contains(jc_errmsg(), "empty name");
    assert_int_equal(jc_function_register(&null_name), JC_EINVAL);
    assert_int_equal(jc_function_register(&empty_version), JC_EINVAL);
    assert_contains(jc_errmsg(), "reg/empty-version");
    assert_contains(jc_errmsg(), "version");
    assert_int_equal(jc_function_register(&null_version), JC_EINVAL);
    assert_contains(jc_errmsg(), "reg/null-version");
    assert_int_equal(jc_function_register(&null_fn), JC_EINVAL);

    /* None of them made it into the table. */
    assert_null(jc_function_find("reg/empty-version"));
    assert_null(jc_function_find("reg/null-version"));
    assert_null(jc_function_find("reg/null-fn"));
    assert_int_equal(jc_errcode(), JC_ENOFUNC);
}

static void registry_two_functions_under_one_name_are_refused_naming_both(void **state)
{
    (void)state;
    static const jc_function a = {"reg/clash", "v1", first_impl};
    static const jc_function b = {"reg/clash", "v2", second_impl};
    assert_int_equal(jc_function_register(&a), 0);
    assert_non_null(jc_function_find("reg/clash"));
    assert_int_equal(jc_function_register(&b), 0);

    assert_null(jc_function_find("reg/clash"));
    assert_int_equal(jc_errcode(), JC_ENOFUNC);
    assert_contains(jc_errmsg(), "\"reg/clash\" (version \"v1\")");
    assert_contains(jc_errmsg(), "\"reg/clash\" (version \"v2\")");

    jc_cache *c = jc_cache_open(NULL, &(jc_cache_options){.flags = JC_CACHE_DISABLED});
    /* By name, and by either address. */
    for (int how = 0; how < 3; how++) {
        jc_batch *batch = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
        int rc;
        if (how == 0) {
            jc_value *argv[] = {jc_int(1)};
            rc = jc_delayed_name(batch, "reg/clash", argv, 1);
        } else if (how == 1) {
            rc = jc_delayed(batch, first_impl, jc_int(1));
        } else {
            rc = jc_delayed(batch, second_impl, jc_int(1));
        }
        assert_int_equal(rc, JC_ENOFUNC);
        assert_contains(jc_errmsg(), "version \"v1\"");
        assert_contains(jc_errmsg(), "version \"v2\"");
        if (how > 0)
            assert_contains(jc_errmsg(), "test_registry.c:");
        assert_null(jc_run(batch));
        assert_int_equal(jc_errcode(), JC_ENOFUNC);
        jc_batch_free(batch);

        jc_value *v = how == 1 ? jc_memo(c, first_impl) : jc_memo(c, second_impl);
        assert_null(v);
        assert_int_equal(jc_errcode(), JC_ENOFUNC);
    }
    jc_cache_close(c);
}

static void registry_one_function_under_two_names_is_refused_by_address(void **state)
{
    (void)state;
    static const jc_function a = {"reg/alias-a", "v1", twice_named};
    static const jc_function b = {"reg/alias-b", "v1", twice_named};
    assert_int_equal(jc_function_register(&a), 0);
    assert_int_equal(jc_function_register(&b), 0);
    jc_cache *c = jc_cache_open(NULL, &(jc_cache_options){.flags = JC_CACHE_DISABLED});
    jc_batch *batch = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
    /* Which name would the cache key use? Neither: refused. */
    assert_int_equal(jc_delayed(batch, twice_named), JC_ENOFUNC);
    assert_contains(jc_errmsg(), "reg/alias-a");
    assert_contains(jc_errmsg(), "reg/alias-b");
    jc_batch_free(batch);
    jc_cache_close(c);
}

static void registry_registering_the_same_descriptor_twice_is_harmless(void **state)
{
    (void)state;
    static const jc_function d = {"reg/once", "v3", once};
    assert_int_equal(jc_function_register(&d), 0);
    assert_int_equal(jc_function_register(&d), 0);
    assert_int_equal(jc_function_register(&d), 0);
    assert_ptr_equal(jc_function_find("reg/once"), &d);

    jc_cache *c = jc_cache_open(NULL, &(jc_cache_options){.flags = JC_CACHE_DISABLED});
    jc_batch *batch = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
    assert_int_equal(jc_delayed(batch, once, jc_int(1)), 0);
    jc_value *argv[] = {jc_int(2)};
    assert_int_equal(jc_delayed_name(batch, "reg/once", argv, 1), 0);
    jc_results *res = jc_run(batch);
    assert_non_null(res);
    assert_int_equal(jc_result_int(res, 0), 5);
    assert_int_equal(jc_result_int(res, 1), 6);
    jc_results_free(res);
    jc_batch_free(batch);
    jc_cache_close(c);

    /* JC_FUNCTION's own descriptor registered again by hand: still harmless. */
    assert_int_equal(jc_function_register(jc_function_find("add")), 0);
    assert_non_null(jc_function_find("add"));
}

static void registry_an_identical_copy_of_a_descriptor_is_harmless(void **state)
{
    (void)state;
    /* Same name, version and function in another descriptor: the same
     * function, so nothing is ambiguous. */
    static const jc_function d = {"reg/copied", "v1", unnamed};
    static const jc_function copy = {"reg/copied", "v1", unnamed};
    assert_int_equal(jc_function_register(&d), 0);
    assert_int_equal(jc_function_register(&copy), 0);
    const jc_function *f = jc_function_find("reg/copied");
    if (!f)
        fail_msg("jc_function_find: %s", jc_errmsg());
    assert_ptr_equal(f->fn, unnamed);
    jc_cache *c = jc_cache_open(NULL, &(jc_cache_options){.flags = JC_CACHE_DISABLED});
    jc_value *v = jc_memo(c, unnamed);
    if (!v)
        fail_msg("jc_memo: %s", jc_errmsg());
    jc_value_free(v);
    jc_cache_close(c);
}

/* Last: under UBSan this one aborts the binary while the bug is there. */
static void registry_delayed_name_accepts_a_null_argv_with_no_arguments(void **state)
{
    (void)state;
    jc_cache *c = jc_cache_open(NULL, &(jc_cache_options){.flags = JC_CACHE_DISABLED});
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
    int rc = jc_delayed_name(b, "model/whoami", NULL, 0);
    jc_results *res = rc == 0 ? jc_run(b) : NULL;
    const char *s = NULL;
    int got = jc_value_get_str(jc_result_value(res, 0), &s, NULL);
    bool right = got == 0 && strcmp(s, "model/whoami") == 0;
    jc_results_free(res);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_int_equal(rc, 0);
    assert_true(right);
}

/* Declared at file scope with an empty version: registration (before main)
 * refuses it, and the call that uses it says why, where. */
static int versionless(jc_call *call)
{
    return jc_return_int(call, 1);
}
JC_FUNCTION(versionless, "");

static void registry_a_function_declared_with_an_empty_version_fails_where_it_is_used(void **state)
{
    (void)state;
    jc_cache *c = jc_cache_open(NULL, &(jc_cache_options){.flags = JC_CACHE_DISABLED});
    assert_non_null(c);
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF});
    assert_non_null(b);
    assert_int_equal(jc_delayed(b, versionless, jc_int(1)), JC_ENOFUNC);
    assert_contains(jc_errmsg(), "\"versionless\"");
    assert_contains(jc_errmsg(), "version is empty");
    assert_contains(jc_errmsg(), "test_registry.c:");
    assert_null(jc_run(b));
    assert_contains(jc_errmsg(), "version is empty");
    assert_null(jc_function_find("versionless"));
    assert_contains(jc_errmsg(), "version is empty");
    jc_batch_free(b);
    jc_cache_close(c);
}

int main(void)
{
    unsetenv("JOBCACHE_PATH");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(registry_jc_function_registers_before_main_and_is_found_by_name),
        cmocka_unit_test(registry_a_function_is_called_under_its_registered_name),
        cmocka_unit_test(registry_an_unknown_name_is_enofunc_naming_it),
        cmocka_unit_test(registry_registering_bad_descriptors_is_einval),
        cmocka_unit_test(registry_a_function_declared_with_an_empty_version_fails_where_it_is_used),
        cmocka_unit_test(registry_two_functions_under_one_name_are_refused_naming_both),
        cmocka_unit_test(registry_one_function_under_two_names_is_refused_by_address),
        cmocka_unit_test(registry_registering_the_same_descriptor_twice_is_harmless),
        cmocka_unit_test(registry_an_identical_copy_of_a_descriptor_is_harmless),
        cmocka_unit_test(registry_delayed_name_accepts_a_null_argv_with_no_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
