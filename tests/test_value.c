/*
 * Tests of the value model (src/value/value.c): builders, getters, containers,
 * ownership, copying, equality and rendering.
 *
 * Every test frees what it makes: the suite also runs under ASan, whose leak
 * check and free checks are part of what is tested here (ownership handed
 * over on failure, borrowed arrays never freed).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jc_internal.h"
#include "testutil.h"

/* ---- helpers ---- */

/* Formats v (taken over) with max_items and compares the text with want. */
static void expect_format(jc_value *v, size_t max_items, const char *want)
{
    assert_non_null(v);
    char *s = jc_value_format(v, max_items);
    assert_non_null(s);
    if (strcmp(s, want) != 0) {
        fprintf(stderr, "format: got  %s\n        want %s\n", s, want);
        free(s);
        jc_value_free(v);
        fail();
    }
    free(s);
    jc_value_free(v);
}

/* Makes the last error something recognizable, to see that a call that
 * succeeds does not touch it and one that fails replaces it. */
static void reset_error(void)
{
    jc__set_error(JC_EIO, "marker");
}

/* ---- scalars ---- */

static void value_null_bool_int_double_build_and_read_back(void **state)
{
    (void)state;
    jc_value *n = jc_null(), *t = jc_bool(true), *f = jc_bool(false);
    jc_value *i = jc_int(-42), *big = jc_int(INT64_MIN), *d = jc_double(2.5);
    assert_int_equal(jc_value_type(n), JC_TYPE_NULL);
    assert_int_equal(jc_value_type(t), JC_TYPE_BOOL);
    assert_int_equal(jc_value_type(i), JC_TYPE_INT);
    assert_int_equal(jc_value_type(d), JC_TYPE_DOUBLE);

    bool b = false;
    assert_int_equal(jc_value_get_bool(t, &b), 0);
    assert_true(b);
    assert_int_equal(jc_value_get_bool(f, &b), 0);
    assert_false(b);
    int64_t x = 0;
    assert_int_equal(jc_value_get_int(i, &x), 0);
    assert_int_equal(x, -42);
    assert_int_equal(jc_value_get_int(big, &x), 0);
    assert_true(x == INT64_MIN);
    double y = 0;
    assert_int_equal(jc_value_get_double(d, &y), 0);
    assert_true(y == 2.5);

    /* Scalars have no length. */
    assert_int_equal(jc_value_len(i), 0);
    assert_int_equal(jc_value_len(d), 0);
    jc_value_free(n);
    jc_value_free(t);
    jc_value_free(f);
    jc_value_free(i);
    jc_value_free(big);
    jc_value_free(d);
}

static void value_getters_accept_null_out_pointers(void **state)
{
    (void)state;
    jc_value *i = jc_int(1), *s = jc_str("abc"), *a = jc_doubles((double[]){1, 2}, 2);
    assert_int_equal(jc_value_get_int(i, NULL), 0);
    assert_int_equal(jc_value_get_str(s, NULL, NULL), 0);
    size_t len = 0;
    assert_int_equal(jc_value_get_str(s, NULL, &len), 0);
    assert_int_equal(len, 3);
    assert_int_equal(jc_value_get_doubles(a, NULL, &len), 0);
    assert_int_equal(len, 2);
    jc_value_free(i);
    jc_value_free(s);
    jc_value_free(a);
}

static void value_int_is_not_read_as_double_nor_double_as_int(void **state)
{
    (void)state;
    jc_value *i = jc_int(1), *d = jc_double(1.0);
    double y = 7;
    int64_t x = 7;
    expect_rc(jc_value_get_double(i, &y), JC_ETYPE, "expected double, got int");
    assert_true(y == 7); /* untouched on failure */
    expect_rc(jc_value_get_int(d, &x), JC_ETYPE, "expected int, got double");
    assert_int_equal(x, 7);
    jc_value_free(i);
    jc_value_free(d);
}

static void value_every_getter_gives_etype_for_another_type(void **state)
{
    (void)state;
    jc_value *n = jc_null(), *s = jc_str("x"), *by = jc_bytes("x", 1);
    jc_value *ds = jc_doubles((double[]){1}, 1), *is = jc_ints((int64_t[]){1}, 1);
    bool b;
    int64_t i;
    const char *cs;
    const void *p;
    const double *dp;
    const int64_t *ip;
    size_t len;
    expect_rc(jc_value_get_bool(n, &b), JC_ETYPE, "expected bool, got null");
    expect_rc(jc_value_get_int(s, &i), JC_ETYPE, "expected int, got str");
    expect_rc(jc_value_get_str(by, &cs, &len), JC_ETYPE, "expected str, got bytes");
    expect_rc(jc_value_get_bytes(s, &p, &len), JC_ETYPE, "expected bytes, got str");
    expect_rc(jc_value_get_doubles(is, &dp, &len), JC_ETYPE, "expected doubles, got ints");
    expect_rc(jc_value_get_ints(ds, &ip, &len), JC_ETYPE, "expected ints, got doubles");
    expect_rc(jc_value_get_doubles(n, &dp, &len), JC_ETYPE, "expected doubles, got null");
    jc_value_free(n);
    jc_value_free(s);
    jc_value_free(by);
    jc_value_free(ds);
    jc_value_free(is);
}

static void value_getters_on_null_value_give_etype_naming_no_value(void **state)
{
    (void)state;
    int64_t i;
    double d;
    bool b;
    const char *s;
    expect_rc(jc_value_get_int(NULL, &i), JC_ETYPE, "got no value");
    expect_rc(jc_value_get_double(NULL, &d), JC_ETYPE, "expected double, got no value");
    expect_rc(jc_value_get_bool(NULL, &b), JC_ETYPE, "got no value");
    expect_rc(jc_value_get_str(NULL, &s, NULL), JC_ETYPE, "expected str, got no value");
    assert_int_equal(jc_value_type(NULL), JC_TYPE_NULL);
    assert_int_equal(jc_value_len(NULL), 0);
    jc_value_free(NULL); /* a no-op */
}

static void value_type_names(void **state)
{
    (void)state;
    assert_string_equal(jc_type_name(JC_TYPE_NULL), "null");
    assert_string_equal(jc_type_name(JC_TYPE_BOOL), "bool");
    assert_string_equal(jc_type_name(JC_TYPE_INT), "int");
    assert_string_equal(jc_type_name(JC_TYPE_DOUBLE), "double");
    assert_string_equal(jc_type_name(JC_TYPE_STR), "str");
    assert_string_equal(jc_type_name(JC_TYPE_BYTES), "bytes");
    assert_string_equal(jc_type_name(JC_TYPE_DOUBLES), "doubles");
    assert_string_equal(jc_type_name(JC_TYPE_INTS), "ints");
    assert_string_equal(jc_type_name(JC_TYPE_LIST), "list");
    assert_string_equal(jc_type_name(JC_TYPE_MAP), "map");
    assert_string_equal(jc_type_name(JC_TYPE_KWARG), "named argument");
    assert_string_equal(jc_type_name((jc_type)99), "unknown");
}

/* ---- strings and bytes ---- */

static void value_str_copies_the_text(void **state)
{
    (void)state;
    char text[] = "héllo"; /* UTF-8: 6 bytes */
    jc_value *s = jc_str(text);
    text[0] = 'X';
    const char *out = NULL;
    size_t len = 0;
    assert_int_equal(jc_value_get_str(s, &out, &len), 0);
    assert_string_equal(out, "héllo");
    assert_int_equal(len, 6);
    assert_int_equal(jc_value_len(s), 6);
    jc_value_free(s);

    jc_value *e = jc_str("");
    assert_int_equal(jc_value_get_str(e, &out, &len), 0);
    assert_string_equal(out, "");
    assert_int_equal(len, 0);
    jc_value_free(e);
}

static void value_strn_copies_len_bytes_and_terminates(void **state)
{
    (void)state;
    jc_value *s = jc_strn("abcdef", 3);
    const char *out;
    size_t len;
    assert_int_equal(jc_value_get_str(s, &out, &len), 0);
    assert_int_equal(len, 3);
    assert_string_equal(out, "abc"); /* NUL-terminated */
    jc_value_free(s);
}

static void value_str_rejects_null_and_nul_bytes(void **state)
{
    (void)state;
    reset_error();
    assert_null(jc_str(NULL));
    expect_error(JC_EINVAL, "NULL string");
    reset_error();
    assert_null(jc_strn(NULL, 0));
    expect_error(JC_EINVAL, "NULL string");
    reset_error();
    assert_null(jc_strn("a\0b", 3));
    expect_error(JC_EINVAL, "NUL byte");
}

static void value_bytes_copy_and_may_hold_nul(void **state)
{
    (void)state;
    unsigned char raw[] = {0, 1, 2, 0, 255};
    jc_value *b = jc_bytes(raw, sizeof raw);
    raw[1] = 9;
    const void *p;
    size_t len;
    assert_int_equal(jc_value_type(b), JC_TYPE_BYTES);
    assert_int_equal(jc_value_get_bytes(b, &p, &len), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(p, ((unsigned char[]){0, 1, 2, 0, 255}), 5);
    assert_int_equal(jc_value_len(b), 5);
    jc_value_free(b);

    jc_value *e = jc_bytes(NULL, 0); /* empty bytes need no pointer */
    assert_non_null(e);
    assert_int_equal(jc_value_get_bytes(e, &p, &len), 0);
    assert_int_equal(len, 0);
    jc_value_free(e);

    reset_error();
    assert_null(jc_bytes(NULL, 3));
    expect_error(JC_EINVAL, "NULL pointer with length 3");
}

/* ---- typed arrays ---- */

static void value_typed_arrays_copy_caller_memory(void **state)
{
    (void)state;
    double d[] = {1.5, -2, 3};
    int64_t i[] = {INT64_MIN, 0, INT64_MAX};
    jc_value *dv = jc_doubles(d, 3), *iv = jc_ints(i, 3);
    d[0] = 99;
    i[0] = 99;
    const double *dp;
    const int64_t *ip;
    size_t n;
    assert_int_equal(jc_value_get_doubles(dv, &dp, &n), 0);
    assert_int_equal(n, 3);
    assert_true(dp != d && dp[0] == 1.5 && dp[1] == -2 && dp[2] == 3);
    assert_int_equal(jc_value_get_ints(iv, &ip, &n), 0);
    assert_int_equal(n, 3);
    assert_true(ip != i && ip[0] == INT64_MIN && ip[2] == INT64_MAX);
    assert_int_equal(jc_value_len(dv), 3);
    assert_int_equal(jc_value_len(iv), 3);
    jc_value_free(dv);
    jc_value_free(iv);
}

static void value_borrowed_arrays_reflect_caller_memory_and_are_not_freed(void **state)
{
    (void)state;
    /* On the heap, so that ASan would see a free by the library as a double
     * free below; on the stack, so that it would see a bad free at once. */
    double *heap = malloc(4 * sizeof *heap);
    assert_non_null(heap);
    for (int k = 0; k < 4; k++)
        heap[k] = k;
    int64_t stack[3] = {7, 8, 9};
    jc_value *dv = jc_doubles_ref(heap, 4), *iv = jc_ints_ref(stack, 3);
    const double *dp;
    const int64_t *ip;
    size_t n;
    assert_int_equal(jc_value_get_doubles(dv, &dp, &n), 0);
    assert_ptr_equal(dp, heap); /* no copy */
    assert_int_equal(n, 4);
    heap[2] = 42;
    assert_true(dp[2] == 42);
    assert_int_equal(jc_value_get_ints(iv, &ip, &n), 0);
    assert_ptr_equal(ip, stack);
    stack[0] = -1;
    assert_int_equal(ip[0], -1);
    jc_value_free(dv);
    jc_value_free(iv);
    heap[3] = 5; /* still ours */
    free(heap);
}

static void value_typed_array_null_pointer_needs_zero_elements(void **state)
{
    (void)state;
    reset_error();
    assert_null(jc_doubles(NULL, 2));
    expect_error(JC_EINVAL, "jc_doubles: NULL pointer with 2 elements");
    reset_error();
    assert_null(jc_ints_ref(NULL, 1));
    expect_error(JC_EINVAL, "jc_ints: NULL pointer with 1 elements");
    reset_error();
    assert_null(jc_doubles(NULL, SIZE_MAX / 4));
    expect_error(JC_EINVAL, "NULL pointer");

    jc_value *a = jc_doubles(NULL, 0), *b = jc_ints_ref(NULL, 0);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(jc_value_len(a), 0);
    assert_int_equal(jc_value_len(b), 0);
    jc_value_free(a);
    jc_value_free(b);
}

static void value_typed_array_too_large_is_einval(void **state)
{
    (void)state;
    static const double one = 1;
    reset_error();
    assert_null(jc_doubles_ref(&one, SIZE_MAX / 4));
    expect_error(JC_EINVAL, "too large");
}

/* ---- lists ---- */

static void value_list_macro_takes_items_in_order(void **state)
{
    (void)state;
    jc_value *l = jc_list(jc_int(1), jc_str("two"), jc_list(jc_null()));
    assert_non_null(l);
    assert_int_equal(jc_value_type(l), JC_TYPE_LIST);
    assert_int_equal(jc_value_len(l), 3);
    int64_t x;
    assert_int_equal(jc_value_get_int(jc_value_at(l, 0), &x), 0);
    assert_int_equal(x, 1);
    const char *s;
    assert_int_equal(jc_value_get_str(jc_value_at(l, 1), &s, NULL), 0);
    assert_string_equal(s, "two");
    assert_int_equal(jc_value_type(jc_value_at(jc_value_at(l, 2), 0)), JC_TYPE_NULL);
    assert_null(jc_value_at(l, 3));
    assert_null(jc_value_key_at(l, 0)); /* lists have no keys */
    assert_null(jc_value_get(l, "x"));
    jc_value_free(l);
}

static void value_list_of_with_null_item_frees_the_others(void **state)
{
    (void)state;
    reset_error();
    /* ASan's leak check proves the other items are freed. */
    jc_value *l = jc_list(jc_int(1), NULL, jc_str("three"), jc_doubles((double[]){1}, 1));
    assert_null(l);
    expect_error(JC_EINVAL, "jc_list: item 1 is NULL");

    jc_value *items[2] = {jc_str("x"), NULL};
    assert_null(jc_list_of(items, 2));
    expect_error(JC_EINVAL, "item 1 is NULL");
}

static void value_list_of_zero_items_is_empty_list(void **state)
{
    (void)state;
    jc_value *l = jc_list_of(NULL, 0);
    assert_non_null(l);
    assert_int_equal(jc_value_type(l), JC_TYPE_LIST);
    assert_int_equal(jc_value_len(l), 0);
    assert_null(jc_value_at(l, 0));
    jc_value_free(l);
}

static void value_list_rejects_named_value_and_frees_everything(void **state)
{
    (void)state;
    reset_error();
    assert_null(jc_list(jc_int(1), jc_kw("a", jc_int(2)), jc_str("c")));
    expect_error(JC_EINVAL, "item 1 is a jc_kw named value");
}

static void value_list_append_grows_in_order(void **state)
{
    (void)state;
    jc_value *l = jc_list_new();
    assert_non_null(l);
    assert_int_equal(jc_value_len(l), 0);
    for (int64_t k = 0; k < 1000; k++)
        assert_int_equal(jc_list_append(l, jc_int(k)), 0);
    assert_int_equal(jc_value_len(l), 1000);
    for (size_t k = 0; k < 1000; k += 97) {
        int64_t x;
        assert_int_equal(jc_value_get_int(jc_value_at(l, k), &x), 0);
        assert_int_equal(x, (int64_t)k);
    }
    assert_null(jc_value_at(l, 1000));
    assert_null(jc_value_at(l, SIZE_MAX));
    jc_value_free(l);
}

static void value_list_append_errors_take_the_item_over(void **state)
{
    (void)state;
    jc_value *l = jc_list_new(), *m = jc_map_new();
    /* Not a list: the item is freed (ASan checks). */
    expect_rc(jc_list_append(m, jc_str("lost")), JC_ETYPE, "not a list");
    expect_rc(jc_list_append(NULL, jc_str("lost")), JC_ETYPE, "not a list");
    expect_rc(jc_list_append(l, NULL), JC_EINVAL, "item 0 is NULL");
    expect_rc(jc_list_append(l, jc_kw("k", jc_int(1))), JC_EINVAL, "jc_kw named value");
    assert_int_equal(jc_value_len(l), 0);
    jc_value_free(l);
    jc_value_free(m);
}

/* ---- maps ---- */

static void value_map_keeps_keys_sorted_by_bytes(void **state)
{
    (void)state;
    jc_value *m = jc_map(jc_kw("b", jc_int(2)), jc_kw("ab", jc_int(3)), jc_kw("a", jc_int(1)),
                         jc_kw("B", jc_int(0)), jc_kw("é", jc_int(4)));
    assert_non_null(m);
    assert_int_equal(jc_value_type(m), JC_TYPE_MAP);
    assert_int_equal(jc_value_len(m), 5);
    /* Byte order: "B" (0x42) < "a" < "ab" < "b" < "é" (0xc3 0xa9). */
    static const char *const keys[] = {"B", "a", "ab", "b", "é"};
    static const int64_t vals[] = {0, 1, 3, 2, 4};
    for (size_t k = 0; k < 5; k++) {
        assert_string_equal(jc_value_key_at(m, k), keys[k]);
        int64_t x;
        assert_int_equal(jc_value_get_int(jc_value_at(m, k), &x), 0);
        assert_int_equal(x, vals[k]);
        assert_ptr_equal(jc_value_get(m, keys[k]), jc_value_at(m, k));
    }
    assert_null(jc_value_key_at(m, 5));
    assert_null(jc_value_at(m, 5));
    assert_null(jc_value_get(m, "c"));
    assert_null(jc_value_get(m, NULL));
    assert_null(jc_value_get(NULL, "a"));
    jc_value_free(m);
}

static void value_map_rejects_duplicate_key(void **state)
{
    (void)state;
    reset_error();
    assert_null(jc_map(jc_kw("a", jc_int(1)), jc_kw("b", jc_str("x")), jc_kw("a", jc_int(2)),
                       jc_kw("c", jc_int(3))));
    expect_error(JC_EINVAL, "the key \"a\" is given twice");
}

static void value_map_rejects_entry_not_made_with_kw(void **state)
{
    (void)state;
    reset_error();
    assert_null(jc_map(jc_kw("a", jc_int(1)), jc_int(2), jc_kw("c", jc_int(3))));
    expect_error(JC_EINVAL, "entry 1 is a int; make entries with jc_kw");
    reset_error();
    assert_null(jc_map(jc_kw("a", jc_int(1)), NULL, jc_kw("c", jc_int(3))));
    expect_error(JC_EINVAL, "entry 1 is NULL");
    reset_error();
    /* A named value is not a map value either: jc_kw refuses to wrap one. */
    assert_null(jc_map(jc_kw("a", jc_kw("b", jc_int(1))), jc_kw("c", jc_int(3))));
    expect_error(JC_EINVAL, "entry 0 is NULL");
    assert_null(jc_kw("a", jc_kw("b", jc_int(1))));
    expect_error(JC_EINVAL, "jc_kw(\"a\"): the value is itself a jc_kw named value");
}

static void value_map_set_inserts_sorted_and_replaces(void **state)
{
    (void)state;
    jc_value *m = jc_map_new();
    assert_non_null(m);
    assert_int_equal(jc_value_len(m), 0);
    assert_int_equal(jc_map_set(m, "m", jc_int(1)), 0);
    assert_int_equal(jc_map_set(m, "z", jc_int(2)), 0);
    assert_int_equal(jc_map_set(m, "a", jc_int(3)), 0);
    assert_int_equal(jc_map_set(m, "m", jc_str("replaced")), 0); /* old value freed */
    assert_int_equal(jc_value_len(m), 3);
    assert_string_equal(jc_value_key_at(m, 0), "a");
    assert_string_equal(jc_value_key_at(m, 1), "m");
    assert_string_equal(jc_value_key_at(m, 2), "z");
    const char *s;
    assert_int_equal(jc_value_get_str(jc_value_get(m, "m"), &s, NULL), 0);
    assert_string_equal(s, "replaced");

    /* Many keys in reverse order come out sorted. */
    char key[16];
    for (int k = 99; k >= 0; k--) {
        snprintf(key, sizeof key, "k%03d", k);
        assert_int_equal(jc_map_set(m, key, jc_int(k)), 0);
    }
    assert_int_equal(jc_value_len(m), 103);
    for (size_t k = 1; k < jc_value_len(m); k++)
        assert_true(strcmp(jc_value_key_at(m, k - 1), jc_value_key_at(m, k)) < 0);
    int64_t x;
    assert_int_equal(jc_value_get_int(jc_value_get(m, "k042"), &x), 0);
    assert_int_equal(x, 42);
    jc_value_free(m);
}

static void value_map_set_errors_take_the_value_over(void **state)
{
    (void)state;
    jc_value *m = jc_map_new(), *l = jc_list_new();
    expect_rc(jc_map_set(l, "a", jc_str("lost")), JC_ETYPE, "not a map");
    expect_rc(jc_map_set(NULL, "a", jc_str("lost")), JC_ETYPE, "not a map");
    expect_rc(jc_map_set(m, NULL, jc_str("lost")), JC_EINVAL, "NULL key");
    expect_rc(jc_map_set(m, "a", NULL), JC_EINVAL, "jc_map_set(\"a\"): the value is NULL");
    expect_rc(jc_map_set(m, "a", jc_kw("b", jc_int(1))), JC_EINVAL, "jc_kw named value");
    assert_int_equal(jc_value_len(m), 0);
    jc_value_free(m);
    jc_value_free(l);
}

/* ---- named values ---- */

static void value_kw_names_a_value(void **state)
{
    (void)state;
    char name[] = "steps";
    jc_value *k = jc_kw(name, jc_int(1000));
    name[0] = 'X'; /* the name is copied */
    assert_non_null(k);
    assert_int_equal(jc_value_type(k), JC_TYPE_KWARG);
    assert_string_equal(jc_value_key_at(k, 0), "steps");
    assert_string_equal(jc_value_key_at(k, 12345), "steps"); /* i is ignored */
    assert_null(jc_value_at(k, 0));
    assert_int_equal(jc_value_len(k), 0);
    jc_value_free(k);
}

static void value_kw_rejects_empty_or_null_name_and_frees_the_value(void **state)
{
    (void)state;
    reset_error();
    assert_null(jc_kw("", jc_str("lost")));
    expect_error(JC_EINVAL, "jc_kw: the name is empty");
    reset_error();
    assert_null(jc_kw(NULL, jc_str("lost")));
    expect_error(JC_EINVAL, "jc_kw: the name is NULL");
}

static void value_kw_with_null_value_keeps_the_cause(void **state)
{
    (void)state;
    reset_error();
    assert_null(jc_kw("name", jc_str(NULL)));
    expect_error(JC_EINVAL, "jc_kw(\"name\"): the value is NULL");
    expect_error(JC_EINVAL, "jc_str: NULL string");
}

/* ---- copy and equality ---- */

static jc_value *sample_tree(void)
{
    return jc_map(jc_kw("list", jc_list(jc_int(1), jc_double(-0.5), jc_null(), jc_bool(true))),
                  jc_kw("str", jc_str("text")), jc_kw("bytes", jc_bytes("\0\1", 2)),
                  jc_kw("doubles", jc_doubles((double[]){1, NAN, -0.0}, 3)),
                  jc_kw("ints", jc_ints((int64_t[]){-1, 2}, 2)),
                  jc_kw("map", jc_map(jc_kw("inner", jc_list(jc_map(jc_kw("x", jc_int(1))))))));
}

static void value_copy_is_deep_and_equal(void **state)
{
    (void)state;
    jc_value *a = sample_tree();
    assert_non_null(a);
    jc_value *b = jc_value_copy(a);
    assert_non_null(b);
    assert_true(jc_value_equal(a, b));
    /* Nothing is shared: changing the copy leaves the original alone. */
    assert_ptr_not_equal(jc_value_get(a, "list"), jc_value_get(b, "list"));
    const char *sa, *sb;
    assert_int_equal(jc_value_get_str(jc_value_get(a, "str"), &sa, NULL), 0);
    assert_int_equal(jc_value_get_str(jc_value_get(b, "str"), &sb, NULL), 0);
    assert_ptr_not_equal(sa, sb);
    assert_int_equal(jc_map_set(b, "str", jc_str("changed")), 0);
    assert_false(jc_value_equal(a, b));
    assert_int_equal(jc_value_get_str(jc_value_get(a, "str"), &sa, NULL), 0);
    assert_string_equal(sa, "text");
    jc_value_free(a); /* b lives on alone */
    assert_int_equal(jc_list_append((jc_value *)jc_value_get(b, "list"), jc_int(5)), 0);
    assert_int_equal(jc_value_len(jc_value_get(b, "list")), 5);
    jc_value_free(b);
}

static void value_copy_of_borrowed_array_is_owned(void **state)
{
    (void)state;
    double *d = malloc(3 * sizeof *d);
    assert_non_null(d);
    d[0] = 1, d[1] = 2, d[2] = 3;
    jc_value *ref = jc_doubles_ref(d, 3);
    jc_value *copy = jc_value_copy(ref);
    assert_non_null(copy);
    assert_false(copy->flags & JC__V_BORROWED);
    const double *p;
    size_t n;
    assert_int_equal(jc_value_get_doubles(copy, &p, &n), 0);
    assert_ptr_not_equal(p, d);
    assert_int_equal(n, 3);
    d[1] = 20;
    assert_true(p[1] == 2); /* the copy does not follow the caller's memory */
    jc_value_free(ref);
    free(d);
    assert_true(p[2] == 3); /* and outlives it */
    jc_value_free(copy);

    int64_t is[2] = {5, 6};
    jc_value *iref = jc_ints_ref(is, 2), *icopy = jc_value_copy(iref);
    assert_true(jc_value_equal(iref, icopy));
    assert_false(icopy->flags & JC__V_BORROWED);
    jc_value_free(iref);
    jc_value_free(icopy); /* frees its own copy; freeing the stack would fail under ASan */
}

static void value_copy_of_scalars_kw_and_null(void **state)
{
    (void)state;
    jc_value *vals[] = {jc_null(), jc_bool(true), jc_int(-3), jc_double(NAN), jc_str(""),
                        jc_bytes(NULL, 0), jc_kw("n", jc_list(jc_int(1))), jc_list_new(), jc_map_new(),
                        jc_doubles(NULL, 0)};
    for (size_t k = 0; k < sizeof vals / sizeof *vals; k++) {
        assert_non_null(vals[k]);
        jc_value *c = jc_value_copy(vals[k]);
        assert_non_null(c);
        assert_int_equal(jc_value_type(c), jc_value_type(vals[k]));
        assert_true(jc_value_equal(vals[k], c));
        jc_value_free(c);
        jc_value_free(vals[k]);
    }
    reset_error();
    assert_null(jc_value_copy(NULL));
    expect_error(JC_EINVAL, "jc_value_copy: NULL value");
}

static void value_equal_follows_the_canonical_encoding(void **state)
{
    (void)state;
    struct {
        jc_value *a, *b;
        bool equal;
    } cases[] = {
        {jc_double(-0.0), jc_double(0.0), true},
        {jc_double(NAN), jc_double(NAN), true},
        {jc_double(NAN), jc_double(-NAN), true},
        {jc_double(NAN), jc_double(0.0), false},
        {jc_double(1.0), jc_double(1.0 + 0x1p-52), false},
        {jc_int(1), jc_double(1.0), false}, /* different types */
        {jc_int(1), jc_int(1), true},
        {jc_int(1), jc_int(2), false},
        {jc_bool(true), jc_bool(true), true},
        {jc_bool(true), jc_bool(false), false},
        {jc_null(), jc_null(), true},
        {jc_null(), jc_bool(false), false},
        {jc_str("ab"), jc_str("ab"), true},
        {jc_str("ab"), jc_str("abc"), false},
        {jc_str("ab"), jc_bytes("ab", 2), false},
        {jc_bytes("a\0b", 3), jc_bytes("a\0b", 3), true},
        {jc_bytes("a\0b", 3), jc_bytes("a\0c", 3), false},
        {jc_doubles((double[]){-0.0, NAN}, 2), jc_doubles((double[]){0.0, -NAN}, 2), true},
        {jc_doubles((double[]){1, 2}, 2), jc_doubles((double[]){1, 2, 3}, 3), false},
        {jc_doubles((double[]){1, 2}, 2), jc_ints((int64_t[]){1, 2}, 2), false},
        {jc_ints((int64_t[]){1, 2}, 2), jc_ints_ref((int64_t[]){1, 2}, 2), true},
        {jc_ints((int64_t[]){1, 2}, 2), jc_ints((int64_t[]){1, 3}, 2), false},
        {jc_ints_ref(NULL, 0), jc_ints(NULL, 0), true},
        {jc_list(jc_int(1), jc_double(-0.0)), jc_list(jc_int(1), jc_double(0.0)), true},
        {jc_list(jc_int(1)), jc_list(jc_int(1), jc_int(2)), false},
        {jc_list(jc_int(1)), jc_list(jc_double(1)), false},
        {jc_list_new(), jc_map_new(), false},
        {jc_map(jc_kw("a", jc_int(1)), jc_kw("b", jc_int(2))),
         jc_map(jc_kw("b", jc_int(2)), jc_kw("a", jc_int(1))), true},
        {jc_map(jc_kw("a", jc_int(1))), jc_map(jc_kw("b", jc_int(1))), false},
        {jc_map(jc_kw("a", jc_int(1))), jc_map(jc_kw("a", jc_int(2))), false},
        {jc_kw("a", jc_int(1)), jc_kw("a", jc_int(1)), true},
        {jc_kw("a", jc_int(1)), jc_kw("b", jc_int(1)), false},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        assert_non_null(cases[k].a);
        assert_non_null(cases[k].b);
        if (jc_value_equal(cases[k].a, cases[k].b) != cases[k].equal ||
            jc_value_equal(cases[k].b, cases[k].a) != cases[k].equal) {
            fprintf(stderr, "case %zu: expected %s\n", k, cases[k].equal ? "equal" : "different");
            fail();
        }
        assert_true(jc_value_equal(cases[k].a, cases[k].a));
        jc_value_free(cases[k].a);
        jc_value_free(cases[k].b);
    }
    jc_value *one = jc_int(1);
    assert_true(jc_value_equal(NULL, NULL));
    assert_false(jc_value_equal(one, NULL));
    assert_false(jc_value_equal(NULL, one));
    jc_value_free(one);
}

/* ---- rendering ---- */

static void value_format_scalars(void **state)
{
    (void)state;
    expect_format(jc_null(), 0, "null");
    expect_format(jc_bool(true), 0, "true");
    expect_format(jc_bool(false), 0, "false");
    expect_format(jc_int(0), 0, "0");
    expect_format(jc_int(-42), 0, "-42");
    expect_format(jc_int(INT64_MIN), 0, "-9223372036854775808");
    expect_format(jc_int(INT64_MAX), 0, "9223372036854775807");
}

static void value_format_doubles_read_back_exactly_and_look_like_doubles(void **state)
{
    (void)state;
    expect_format(jc_double(1.0), 0, "1.0");
    expect_format(jc_double(-3.0), 0, "-3.0");
    expect_format(jc_double(0.0), 0, "0.0");
    expect_format(jc_double(-0.0), 0, "-0.0");
    expect_format(jc_double(2.5), 0, "2.5");
    expect_format(jc_double(0.1), 0, "0.1");
    expect_format(jc_double(0.1 + 0.2), 0, "0.30000000000000004");
    /* 16 digits where they read back (issue 25: 0.2.0 wrote 17,
     * -0.79999999999999982, where the CSV export wrote -0.7999999999999998). */
    expect_format(jc_double(-0.7999999999999998), 0, "-0.7999999999999998");
    expect_format(jc_double(1e16), 0, "1e+16");
    expect_format(jc_double(-1.5e-300), 0, "-1.5e-300");
    expect_format(jc_double(123456789.0), 0, "123456789.0");
    expect_format(jc_double(NAN), 0, "NaN");
    expect_format(jc_double(-NAN), 0, "NaN");
    expect_format(jc_double(INFINITY), 0, "Infinity");
    expect_format(jc_double(-INFINITY), 0, "-Infinity");

    /* Whatever the digits, they read back to the same double. */
    const double samples[] = {1.0 / 3, 2.0 / 3, 1e-320, 0x1.fffffffffffffp+1023, 6.02214076e23};
    for (size_t k = 0; k < sizeof samples / sizeof *samples; k++) {
        jc_value *v = jc_double(samples[k]);
        char *s = jc_value_format(v, 0);
        assert_non_null(s);
        assert_true(strtod(s, NULL) == samples[k]);
        free(s);
        jc_value_free(v);
    }
}

static void value_format_strings_are_quoted_and_escaped(void **state)
{
    (void)state;
    expect_format(jc_str(""), 0, "\"\"");
    expect_format(jc_str("plain"), 0, "\"plain\"");
    expect_format(jc_str("q\"b\\s"), 0, "\"q\\\"b\\\\s\"");
    expect_format(jc_str("tab\tnl\n\x01\x1f"), 0, "\"tab\\u0009nl\\u000a\\u0001\\u001f\"");
    expect_format(jc_str("héllo ✓"), 0, "\"héllo ✓\""); /* UTF-8 passes through */
    expect_format(jc_bytes("\0\1\2", 3), 0, "\"<3 bytes>\"");
    expect_format(jc_bytes(NULL, 0), 0, "\"<0 bytes>\"");
}

static void value_format_containers(void **state)
{
    (void)state;
    expect_format(jc_list_new(), 0, "[]");
    expect_format(jc_map_new(), 0, "{}");
    expect_format(jc_doubles(NULL, 0), 0, "[]");
    expect_format(jc_doubles((double[]){1, 2.5, -0.0, NAN, -INFINITY}, 5), 0,
                  "[1.0, 2.5, -0.0, NaN, -Infinity]");
    expect_format(jc_ints((int64_t[]){1, -2, 3}, 3), 0, "[1, -2, 3]");
    expect_format(jc_list(jc_int(1), jc_str("x"), jc_list(jc_bool(true)), jc_null()), 0,
                  "[1, \"x\", [true], null]");
    expect_format(jc_map(jc_kw("b", jc_null()), jc_kw("a", jc_double(1)), jc_kw("q\"", jc_list_new())), 0,
                  "{\"a\": 1.0, \"b\": null, \"q\\\"\": []}");
    expect_format(jc_kw("steps", jc_int(1000)), 0, "steps=1000");
}

static void value_format_abbreviates_after_max_items(void **state)
{
    (void)state;
    int64_t ten[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    expect_format(jc_ints(ten, 10), 3, "[0, 1, 2, ... (10 elements)]");
    expect_format(jc_ints(ten, 10), 10, "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"); /* exactly max: all */
    expect_format(jc_ints(ten, 10), 0, "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]");  /* 0: never */
    expect_format(jc_doubles((double[]){1, 2, 3}, 3), 1, "[1.0, ... (3 elements)]");
    expect_format(jc_list(jc_int(1), jc_int(2), jc_int(3)), 2, "[1, 2, ... (3 items)]");
    expect_format(jc_map(jc_kw("a", jc_int(1)), jc_kw("b", jc_int(2)), jc_kw("c", jc_int(3))), 1,
                  "{\"a\": 1, ... (3 items)}");
    /* Each level is abbreviated on its own. */
    expect_format(jc_list(jc_list(jc_int(1), jc_int(2), jc_int(3)), jc_int(4), jc_int(5)), 2,
                  "[[1, 2, ... (3 items)], 4, ... (3 items)]");
}

static void value_format_null_is_null(void **state)
{
    (void)state;
    char *s = jc_value_format(NULL, 0);
    assert_non_null(s);
    assert_string_equal(s, "null");
    free(s);
}

/* ---- lengths and accessors on every type ---- */

/* ---- rendering under a locale whose decimal separator is a comma ---- */

/* Locales that write 1.5 as "1,5"; whichever this machine has. (Debian
 * images often have only C and C.UTF-8: the test is then skipped. Point
 * LOCPATH at a directory made with `localedef -i de_DE -f UTF-8
 * DIR/de_DE.UTF-8` to run it anyway.) */
static const char *const comma_locales[] = {"de_DE.UTF-8", "de_DE.utf8", "de_DE", "fr_FR.UTF-8",
                                            "fr_FR.utf8", "nl_NL.UTF-8", "it_IT.UTF-8", "es_ES.UTF-8",
                                            "ru_RU.UTF-8", "pt_BR.UTF-8", "de_DE@euro"};

/* The name of an installed comma locale, or NULL. */
static const char *find_comma_locale(void)
{
    for (size_t i = 0; i < sizeof comma_locales / sizeof *comma_locales; i++) {
        locale_t l = newlocale(LC_ALL_MASK, comma_locales[i], (locale_t)0);
        if (!l)
            continue;
        char buf[16];
        locale_t old = uselocale(l);
        snprintf(buf, sizeof buf, "%.1f", 1.5);
        uselocale(old);
        freelocale(l);
        if (strcmp(buf, "1,5") == 0)
            return comma_locales[i];
    }
    return NULL;
}

/* What every rendering below must give, whatever the locale. */
static void expect_dots(void)
{
    expect_format(jc_double(1.5), 0, "1.5");
    expect_format(jc_double(-0.25), 0, "-0.25");
    expect_format(jc_double(0.1 + 0.2), 0, "0.30000000000000004");
    /* 16 digits where they read back (issue 25: 0.2.0 wrote 17,
     * -0.79999999999999982, where the CSV export wrote -0.7999999999999998). */
    expect_format(jc_double(-0.7999999999999998), 0, "-0.7999999999999998");
    expect_format(jc_double(-1.5e-300), 0, "-1.5e-300");
    expect_format(jc_double(3.0), 0, "3.0");
    expect_format(jc_doubles((const double[]){0.5, 2.0, 1.0 / 3}, 3), 0,
                  "[0.5, 2.0, 0.33333333333333331]");
    expect_format(jc_map(jc_kw("alpha", jc_double(0.125)), jc_kw("n", jc_int(1000000))), 0,
                  "{\"alpha\": 0.125, \"n\": 1000000}");
}

typedef struct locale_thread {
    const char *name;
    int ok; /* 1: rendered with dots and left the thread's locale alone */
} locale_thread;

/* A thread with its own comma locale (uselocale, not setlocale). */
static void *render_in_thread_locale(void *arg)
{
    locale_thread *t = arg;
    locale_t l = newlocale(LC_ALL_MASK, t->name, (locale_t)0);
    if (!l)
        return NULL;
    uselocale(l);
    jc_value *v = jc_list(jc_double(2.75), jc_doubles((const double[]){0.5}, 1));
    char *s = jc_value_format(v, 0);
    char after[16];
    snprintf(after, sizeof after, "%.2f", 2.75);
    t->ok = s && strcmp(s, "[2.75, [0.5]]") == 0 && strcmp(after, "2,75") == 0;
    free(s);
    jc_value_free(v);
    uselocale(LC_GLOBAL_LOCALE);
    freelocale(l);
    return NULL;
}

static void value_format_writes_a_dot_whatever_the_locale(void **state)
{
    (void)state;
    const char *name = find_comma_locale();
    if (!name) {
        fprintf(stderr, "no locale with a decimal comma is installed (locale -a): skipped\n");
        skip();
    }
    assert_non_null(setlocale(LC_ALL, name));
    char buf[16];
    snprintf(buf, sizeof buf, "%g", 1.5);
    assert_string_equal(buf, "1,5"); /* the locale is in effect */
    expect_dots();
    /* The text reads back (in the C locale) to the same double. */
    jc_value *v = jc_double(1.0 / 3);
    char *s = jc_value_format(v, 0);
    assert_non_null(s);
    assert_non_null(strchr(s, '.'));
    assert_null(strchr(s, ','));
    free(s);
    jc_value_free(v);
    /* Formatting leaves the program's locale as it was. */
    snprintf(buf, sizeof buf, "%g", 2.5);
    assert_string_equal(buf, "2,5");
    assert_string_equal(setlocale(LC_NUMERIC, NULL), name);

    /* Other threads, each with its own locale, at the same time. */
    pthread_t th[4];
    locale_thread t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (locale_thread){.name = name};
        assert_int_equal(pthread_create(&th[i], NULL, render_in_thread_locale, &t[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(t[i].ok, 1);
    }
    setlocale(LC_ALL, "C");
    expect_dots();
}

static void value_len_and_accessors_outside_containers(void **state)
{
    (void)state;
    jc_value *vals[] = {jc_null(), jc_bool(true), jc_int(1), jc_double(1), jc_str("abcd"),
                        jc_bytes("ab", 2), jc_doubles((double[]){1, 2, 3}, 3),
                        jc_ints((int64_t[]){1}, 1)};
    const size_t lens[] = {0, 0, 0, 0, 4, 2, 3, 1};
    for (size_t k = 0; k < sizeof vals / sizeof *vals; k++) {
        assert_int_equal(jc_value_len(vals[k]), lens[k]);
        assert_null(jc_value_at(vals[k], 0)); /* not containers */
        assert_null(jc_value_key_at(vals[k], 0));
        assert_null(jc_value_get(vals[k], "a"));
        jc_value_free(vals[k]);
    }
    assert_null(jc_value_at(NULL, 0));
    assert_null(jc_value_key_at(NULL, 0));
}

/* ---- issue 9 item 8: values that cannot be trusted are refused where made ---- */

/* Text is UTF-8: jc_str, jc_strn, jc_kw names and map keys refuse anything
 * else with JC_EINVAL naming the byte offset; bytes stay for binary. */
static void value_text_must_be_utf8_and_the_error_names_the_byte_offset(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t len, at;
    } bad[] = {
        {"ab\xff" "cd", 5, 2},         /* never in UTF-8 */
        {"\x80", 1, 0},                /* a stray continuation byte */
        {"x\xc0\xaf", 3, 1},           /* overlong '/' */
        {"xy\xe0\x80\xaf", 5, 2},      /* overlong, 3 bytes */
        {"\xed\xa0\x80", 3, 0},        /* a UTF-16 surrogate */
        {"ok\xf4\x90\x80\x80", 6, 2},  /* above U+10FFFF */
        {"caf\xc3", 4, 3},             /* truncated at the end */
        {"caf\xc3(", 5, 3},            /* a lead byte without its continuation */
        {"\xf0\x9f\x98", 3, 0},        /* truncated 4-byte sequence */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char want[96];
        reset_error();
        assert_null(jc_strn(bad[i].text, bad[i].len));
        snprintf(want, sizeof want, "jc_strn: the text is not valid UTF-8 at byte offset %zu", bad[i].at);
        expect_error(JC_EINVAL, want);
        expect_error(JC_EINVAL, "use jc_bytes for binary data");
        if (strlen(bad[i].text) == bad[i].len) {
            assert_null(jc_str(bad[i].text));
            snprintf(want, sizeof want, "jc_str: the text is not valid UTF-8 at byte offset %zu", bad[i].at);
            expect_error(JC_EINVAL, want);
            assert_null(jc_kw(bad[i].text, jc_int(1))); /* the value is freed */
            snprintf(want, sizeof want, "jc_kw: the name is not valid UTF-8 at byte offset %zu", bad[i].at);
            expect_error(JC_EINVAL, want);
            jc_value *m = jc_map_new();
            assert_int_equal(jc_map_set(m, bad[i].text, jc_int(1)), JC_EINVAL);
            snprintf(want, sizeof want, "jc_map_set: the key is not valid UTF-8 at byte offset %zu", bad[i].at);
            expect_error(JC_EINVAL, want);
            assert_int_equal(jc_value_len(m), 0);
            jc_value_free(m);
        }
        jc_value *b = jc_bytes(bad[i].text, bad[i].len); /* binary is what bytes are for */
        assert_non_null(b);
        jc_value_free(b);
    }
    /* Every plane of Unicode, at the edges of each sequence length. */
    const char *good = "a\x7f \xc2\x80 \xdf\xbf \xe0\xa0\x80 caf\xc3\xa9 \xe2\x82\xac \xed\x9f\xbf \xee\x80\x80 "
                       "\xef\xbf\xbf \xf0\x90\x80\x80 \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf";
    jc_value *v = jc_map(jc_kw(good, jc_str(good)), jc_kw("x", jc_strn(good, strlen(good))));
    assert_non_null(v);
    assert_int_equal(jc_map_set(v, good + 1, jc_int(1)), 0);
    jc_value_free(v);
}

/* Lists of lists JC__MAX_DEPTH deep are values; one level more is refused by
 * whichever builder would make it, bottom up or top down. */
static void value_nesting_deeper_than_the_limit_is_refused_by_the_builders(void **state)
{
    (void)state;
    /* Bottom up: jc_list around jc_list. */
    jc_value *v = jc_int(1);
    for (int k = 0; k < JC__MAX_DEPTH; k++) {
        v = jc_list(v);
        assert_non_null(v);
    }
    reset_error();
    jc_value *copy = jc_value_copy(v);
    assert_null(jc_list(copy)); /* the copy is freed */
    expect_error(JC_EINVAL, "jc_list_append: the value would be nested more than 24 levels deep");
    assert_null(jc_map(jc_kw("k", jc_value_copy(v))));
    expect_error(JC_EINVAL, "jc_map: the value would be nested more than 24 levels deep");
    jc_value *m = jc_map_new();
    assert_int_equal(jc_map_set(m, "k", jc_value_copy(v)), JC_EINVAL);
    expect_error(JC_EINVAL, "jc_map_set: the value would be nested more than 24 levels deep");
    /* The deepest value there may be is a value like any other. */
    jc_value *kw = jc_kw("deep", jc_value_copy(v));
    assert_non_null(kw);
    jc_value_free(kw);
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(jc_value_encode(v, &buf, &len), 0);
    jc_value *back = NULL;
    assert_int_equal(jc_value_decode(buf, len, &back), 0);
    assert_true(jc_value_equal(v, back));
    /* A decoded value knows its depth as well as a built one. */
    jc_value *holder = jc_list_new();
    assert_int_equal(jc_list_append(holder, back), JC_EINVAL); /* back is freed */
    expect_error(JC_EINVAL, "would be nested more than 24 levels deep");
    jc_value_free(holder);
    free(buf);
    jc_value_free(v);
    jc_value_free(m);

    /* Top down: growing the innermost list of a value from outside. */
    jc_value *root = jc_list_new(), *inner = root;
    for (int k = 1; k < JC__MAX_DEPTH; k++) {
        bool in_list = k % 2 == 1; /* lists and maps by turns */
        jc_value *next = in_list ? jc_map_new() : jc_list_new();
        if (in_list) {
            assert_int_equal(jc_list_append(inner, jc_int(k)), 0);
            assert_int_equal(jc_list_append(inner, next), 0);
        } else {
            assert_int_equal(jc_map_set(inner, "n", jc_int(k)), 0);
            assert_int_equal(jc_map_set(inner, "in", next), 0);
        }
        inner = next;
    }
    /* root is 24 levels deep now; inner, its innermost map, can hold a
     * scalar but no list. */
    assert_int_equal(jc_map_set(inner, "leaf", jc_int(0)), 0);
    assert_int_equal(jc_map_set(inner, "list", jc_list_new()), JC_EINVAL);
    expect_error(JC_EINVAL, "would be nested more than 24 levels deep");
    jc_value_free(root);

    /* Replacing the deepest value of a map makes room again. */
    jc_value *deep = jc_int(1);
    for (int k = 0; k < JC__MAX_DEPTH - 1; k++)
        deep = jc_list(deep);
    jc_value *m2 = jc_map(jc_kw("a", deep), jc_kw("b", jc_int(2)));
    assert_non_null(m2);
    jc_value *outer = jc_list_new();
    assert_int_equal(jc_list_append(outer, jc_value_copy(m2)), JC_EINVAL);
    assert_int_equal(jc_map_set(m2, "a", jc_list(jc_int(1))), 0);
    assert_int_equal(jc_list_append(outer, m2), 0);
    jc_value_free(outer);
}

/* A value has one owner: one already inside another, or one that would
 * contain itself, is refused and left as it is (not freed twice). */
static void value_a_value_inside_another_or_itself_is_refused(void **state)
{
    (void)state;
    jc_value *a = jc_list_new(), *b = jc_list_new(), *x = jc_int(7);
    assert_int_equal(jc_list_append(a, x), 0);
    expect_rc(jc_list_append(b, x), JC_EINVAL, "already inside another list, map or jc_kw");
    jc_value *m = jc_map_new();
    expect_rc(jc_map_set(m, "k", x), JC_EINVAL, "already inside");
    jc_value_free(m);
    assert_null(jc_kw("k", x));
    expect_error(JC_EINVAL, "already inside");
    expect_rc(jc_list_append(a, a), JC_EINVAL, "would contain itself");
    assert_int_equal(jc_list_append(b, a), 0);
    expect_rc(jc_list_append(a, b), JC_EINVAL, "would contain itself");
    assert_int_equal(jc_value_len(a), 1);
    assert_int_equal(jc_value_len(b), 1);
    jc_value_free(b); /* frees a and x, once */
}

/* No value function recurses without bound on a value built through the
 * API: 1,000,000 levels of nesting are refused at level 25, bottom up and
 * top down, and every function works on what was built (under ASan this
 * overflowed the stack in jc_value_free). */
static void value_a_million_nesting_levels_are_refused_and_nothing_recurses_without_bound(void **state)
{
    (void)state;
    enum { LEVELS = 1000000 };
    jc_value *v = jc_int(0);
    int refused_at = 0;
    for (int k = 1; k <= LEVELS; k++) {
        v = jc_list(v); /* after a refusal: NULL, refused again */
        if (!v && !refused_at) {
            refused_at = k;
            expect_error(JC_EINVAL, "nested more than 24 levels deep");
        }
    }
    jc_value_free(v); /* NULL; before, a million levels freed recursively */
    assert_int_equal(refused_at, JC__MAX_DEPTH + 1);
    v = jc_int(0);
    for (int k = 0; k < JC__MAX_DEPTH; k++)
        v = jc_list(v);
    assert_non_null(v);

    jc_value *root = jc_list_new(), *cur = root;
    int depth = 1, appended = 0;
    for (int k = 1; k < LEVELS; k++) {
        jc_value *next = jc_list_new();
        if (jc_list_append(cur, next) == 0) {
            cur = next;
            depth++;
            appended++;
        }
    }
    assert_int_equal(depth, JC__MAX_DEPTH);
    assert_int_equal(appended, JC__MAX_DEPTH - 1);

    jc_value *copy = jc_value_copy(root);
    assert_non_null(copy);
    assert_true(jc_value_equal(root, copy));
    assert_false(jc_value_equal(root, v));
    char *text = jc_value_format(root, 0);
    assert_non_null(text);
    assert_int_equal(strlen(text), 2 * JC__MAX_DEPTH);
    free(text);
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(jc_value_encode(copy, &buf, &len), 0);
    free(buf);
    jc_value_free(copy);
    jc_value_free(root);
    jc_value_free(v);
}

/* Values made in one thread and freed in another, both ways, while every
 * thread makes and frees its own (value.c's slabs: a slab goes back when
 * its last node is freed, by whichever thread; a thread's spares and slab
 * when it ends). Each value is whole when it is freed. */
#define HANDOFF_N 20000
typedef struct handoff {
    jc_value **made; /* by the thread, freed by the test */
    jc_value **given; /* made by the test, freed by the thread */
    int64_t base;
    bool ok;
} handoff;

static int64_t int_of(const jc_value *v)
{
    int64_t x = INT64_MIN;
    return v && jc_value_get_int(v, &x) == 0 ? x : INT64_MIN;
}

static const char *str_of(const jc_value *v)
{
    const char *out = NULL;
    return v && jc_value_get_str(v, &out, NULL) == 0 ? out : "";
}

static void *handoff_thread(void *p)
{
    handoff *h = p;
    h->ok = true;
    for (size_t i = 0; i < HANDOFF_N; i++) {
        jc_value *own = jc_list_of((jc_value *[]){jc_int((int64_t)i), jc_str("x")}, 2);
        h->made[i] = i % 3 ? jc_int(h->base + (int64_t)i) : jc_str("made in a thread");
        if (!own || !h->made[i] || int_of(jc_value_at(own, 0)) != (int64_t)i)
            h->ok = false;
        jc_value_free(own);
        if (!h->given[i] || int_of(h->given[i]) != -(int64_t)i)
            h->ok = false;
        jc_value_free(h->given[i]);
    }
    return NULL;
}

static void value_nodes_cross_threads(void **state)
{
    (void)state;
    enum { THREADS = 3 };
    handoff h[THREADS];
    pthread_t t[THREADS];
    for (int k = 0; k < THREADS; k++) {
        h[k] = (handoff){.made = calloc(HANDOFF_N, sizeof(jc_value *)),
                         .given = calloc(HANDOFF_N, sizeof(jc_value *)), .base = 1000000 * k};
        assert_non_null(h[k].made);
        assert_non_null(h[k].given);
        for (size_t i = 0; i < HANDOFF_N; i++)
            h[k].given[i] = jc_int(-(int64_t)i);
    }
    for (int k = 0; k < THREADS; k++)
        assert_int_equal(pthread_create(&t[k], NULL, handoff_thread, &h[k]), 0);
    for (int k = 0; k < THREADS; k++) {
        assert_int_equal(pthread_join(t[k], NULL), 0);
        assert_true(h[k].ok);
    }
    for (int k = 0; k < THREADS; k++) {
        for (size_t i = 0; i < HANDOFF_N; i++) {
            if (i % 3)
                assert_int_equal(int_of(h[k].made[i]), h[k].base + (int64_t)i);
            else
                assert_string_equal(str_of(h[k].made[i]), "made in a thread");
            jc_value_free(h[k].made[i]);
        }
        free(h[k].made);
        free(h[k].given);
    }
}

/* A thread that makes values by the hundred thousand carves their nodes
 * out of 2 MiB regions (value.c). A region goes back when its last node
 * is freed, by whichever thread, and the thread's own hold on the region
 * it carved last when it ends; while a few of its nodes are kept, the
 * memory of the rest goes back to the system. Nodes are made and freed in
 * threads of their own, so that no spare node of this thread's keeps a
 * region. */
#define REGION_N 200000
#define KEEP_EVERY 1000
typedef struct nodes_job {
    jc_value **v;
    size_t from, step; /* make or free v[from], v[from + step], ... */
    size_t keep;       /* freeing, every keep-th is kept (0: none) */
    bool make, ok;
} nodes_job;

static void *nodes_work(void *p)
{
    nodes_job *j = p;
    j->ok = true;
    for (size_t i = j->from; i < REGION_N; i += j->step) {
        if (j->make) {
            j->v[i] = jc_int((int64_t)i);
        } else if (j->v[i] && !(j->keep && i % j->keep == 0)) {
            j->ok = j->ok && int_of(j->v[i]) == (int64_t)i;
            jc_value_free(j->v[i]);
            j->v[i] = NULL;
        }
    }
    return NULL;
}

static void nodes_in_a_thread(jc_value **v, size_t from, size_t step, size_t keep, bool make)
{
    nodes_job j = {.v = v, .from = from, .step = step, .keep = keep, .make = make};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, nodes_work, &j), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(j.ok);
}

/* This process's resident memory, in bytes (/proc/self/statm). */
static size_t resident_bytes(void)
{
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%lu %lu", &size, &resident), 2);
    fclose(f);
    return resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* The regions not yet given back, and room for REGION_N values (zeroed,
 * resident); skips the test in a build without regions. */
static jc_value **regions_or_skip(size_t *regions)
{
    *regions = jc__value_regions();
    if (*regions == SIZE_MAX)
        skip(); /* AddressSanitizer: every node from malloc */
    jc_value **v = calloc(REGION_N, sizeof *v);
    assert_non_null(v);
    memset(v, 0, REGION_N * sizeof *v); /* resident before a first count */
    return v;
}

static void value_nodes_regions_go_back_with_their_last_node(void **state)
{
    (void)state;
    size_t before;
    jc_value **v = regions_or_skip(&before);
    nodes_in_a_thread(v, 0, 1, 0, true);
    size_t during = jc__value_regions();
    assert_true(during > before);
    /* Every other node freed: each region still holds live nodes. */
    nodes_in_a_thread(v, 0, 2, 0, false);
    assert_int_equal(jc__value_regions(), during);
    nodes_in_a_thread(v, 1, 2, 0, false);
    assert_int_equal(jc__value_regions(), before);
    free(v);
}

static void value_nodes_kept_few_keep_little_memory(void **state)
{
    (void)state;
    size_t regions;
    jc_value **v = regions_or_skip(&regions);
    size_t before = resident_bytes();
    nodes_in_a_thread(v, 0, 1, 0, true);
    size_t peak = resident_bytes();
    assert_true(peak > before + REGION_N * sizeof(int64_t)); /* several MB of nodes */
    nodes_in_a_thread(v, 0, 1, KEEP_EVERY, false);
    /* Every region still holds a kept node, but not its memory. */
    assert_true(jc__value_regions() > regions);
    size_t after = resident_bytes();
    print_message("resident: %zu KiB before, %zu at the peak, %zu with 1 node in %d kept\n", before / 1024,
                  peak / 1024, after / 1024, KEEP_EVERY);
    assert_true(after < before + (peak - before) / 2); /* without giving back: as at the peak */
    for (size_t i = 0; i < REGION_N; i += KEEP_EVERY)
        assert_int_equal(int_of(v[i]), (int64_t)i);
    nodes_in_a_thread(v, 0, KEEP_EVERY, 0, false);
    assert_int_equal(jc__value_regions(), regions);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(value_null_bool_int_double_build_and_read_back),
        cmocka_unit_test(value_getters_accept_null_out_pointers),
        cmocka_unit_test(value_int_is_not_read_as_double_nor_double_as_int),
        cmocka_unit_test(value_every_getter_gives_etype_for_another_type),
        cmocka_unit_test(value_getters_on_null_value_give_etype_naming_no_value),
        cmocka_unit_test(value_type_names),
        cmocka_unit_test(value_str_copies_the_text),
        cmocka_unit_test(value_strn_copies_len_bytes_and_terminates),
        cmocka_unit_test(value_str_rejects_null_and_nul_bytes),
        cmocka_unit_test(value_bytes_copy_and_may_hold_nul),
        cmocka_unit_test(value_typed_arrays_copy_caller_memory),
        cmocka_unit_test(value_borrowed_arrays_reflect_caller_memory_and_are_not_freed),
        cmocka_unit_test(value_typed_array_null_pointer_needs_zero_elements),
        cmocka_unit_test(value_typed_array_too_large_is_einval),
        cmocka_unit_test(value_list_macro_takes_items_in_order),
        cmocka_unit_test(value_list_of_with_null_item_frees_the_others),
        cmocka_unit_test(value_list_of_zero_items_is_empty_list),
        cmocka_unit_test(value_list_rejects_named_value_and_frees_everything),
        cmocka_unit_test(value_list_append_grows_in_order),
        cmocka_unit_test(value_list_append_errors_take_the_item_over),
        cmocka_unit_test(value_map_keeps_keys_sorted_by_bytes),
        cmocka_unit_test(value_nodes_cross_threads),
        cmocka_unit_test(value_nodes_regions_go_back_with_their_last_node),
        cmocka_unit_test(value_nodes_kept_few_keep_little_memory),
        cmocka_unit_test(value_map_rejects_duplicate_key),
        cmocka_unit_test(value_map_rejects_entry_not_made_with_kw),
        cmocka_unit_test(value_map_set_inserts_sorted_and_replaces),
        cmocka_unit_test(value_map_set_errors_take_the_value_over),
        cmocka_unit_test(value_kw_names_a_value),
        cmocka_unit_test(value_kw_rejects_empty_or_null_name_and_frees_the_value),
        cmocka_unit_test(value_kw_with_null_value_keeps_the_cause),
        cmocka_unit_test(value_copy_is_deep_and_equal),
        cmocka_unit_test(value_copy_of_borrowed_array_is_owned),
        cmocka_unit_test(value_copy_of_scalars_kw_and_null),
        cmocka_unit_test(value_equal_follows_the_canonical_encoding),
        cmocka_unit_test(value_format_scalars),
        cmocka_unit_test(value_format_doubles_read_back_exactly_and_look_like_doubles),
        cmocka_unit_test(value_format_strings_are_quoted_and_escaped),
        cmocka_unit_test(value_format_containers),
        cmocka_unit_test(value_text_must_be_utf8_and_the_error_names_the_byte_offset),
        cmocka_unit_test(value_nesting_deeper_than_the_limit_is_refused_by_the_builders),
        cmocka_unit_test(value_a_value_inside_another_or_itself_is_refused),
        cmocka_unit_test(value_a_million_nesting_levels_are_refused_and_nothing_recurses_without_bound),
        cmocka_unit_test(value_format_abbreviates_after_max_items),
        cmocka_unit_test(value_format_null_is_null),
        cmocka_unit_test(value_len_and_accessors_outside_containers),
        cmocka_unit_test(value_format_writes_a_dot_whatever_the_locale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
