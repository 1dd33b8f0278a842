/*
 * Tests of code fingerprints (src/function/fingerprint.c): functions of the test
 * program (static and not) and of a shared library get a fingerprint, which
 * differs between different code, is the same in another process (another
 * load address), is forgotten when its library is unloaded, and is "unknown"
 * (never a crash) for a stripped program and for addresses that are not code.
 *
 * Run with --probe, the program prints the fingerprints of two of its
 * functions: the test runs copies of itself that way.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jobcache.h>

#include "function/fingerprint.h"
#include "testutil.h"

int64_t fp_lib_entry(int64_t x); /* tests/fingerprint_lib.c */

static volatile int fp_counter;

/* Cacheable functions of the kind a user registers. */
__attribute__((noinline)) static double fp_test_helper(double x)
{
    fp_counter++;
    return x * 3.5 + fp_counter;
}

static int fp_static_fn(jc_call *call)
{
    return jc_return_double(call, fp_test_helper(jc_arg_double(call, 0)));
}

int fp_global_fn(jc_call *call);
int fp_global_fn(jc_call *call)
{
    return jc_return_int(call, jc_arg_int(call, 0) * 41 + 1);
}

static int fp_other_fn(jc_call *call)
{
    return jc_return_str(call, "a constant string");
}

static void hex(const uint8_t fp[16], char out[33])
{
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", fp[i]);
}

/* Runs `path --probe` and reads its two lines; 0 on success. */
static int probe(const char *path, char lines[2][64])
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "'%s' --probe", path);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    int n = 0;
    while (n < 2 && fgets(lines[n], 64, p)) {
        lines[n][strcspn(lines[n], "\n")] = '\0';
        n++;
    }
    int st = pclose(p);
    return n == 2 && st == 0 ? 0 : -1;
}

static int probe_main(void)
{
    uint8_t fp[16];
    char h[33];
    int k = jc__code_fingerprint(fp_static_fn, fp);
    hex(fp, h);
    printf("%s\n", k ? h : "unknown");
    k = jc__code_fingerprint(fp_global_fn, fp);
    hex(fp, h);
    printf("%s\n", k ? h : "unknown");
    jc__fingerprint_reset();
    return 0;
}

static void fingerprint_unsupported_build_says_unknown(void **state)
{
    (void)state;
    if (jc__fingerprint_supported())
        skip();
    uint8_t fp[16];
    memset(fp, 0xAB, sizeof fp);
    assert_int_equal(jc__code_fingerprint(fp_global_fn, fp), 0);
    for (int i = 0; i < 16; i++)
        assert_int_equal(fp[i], 0);
}

static void fingerprint_static_and_global_functions_known(void **state)
{
    (void)state;
    if (!jc__fingerprint_supported())
        skip();
    uint8_t a[16], b[16], zero[16] = {0};
    assert_int_equal(jc__code_fingerprint(fp_static_fn, a), 1);
    assert_int_equal(jc__code_fingerprint(fp_global_fn, b), 1);
    assert_memory_not_equal(a, zero, 16);
    assert_memory_not_equal(a, b, 16);
}

static void fingerprint_different_code_differs(void **state)
{
    (void)state;
    if (!jc__fingerprint_supported())
        skip();
    uint8_t a[16], b[16], c[16];
    assert_int_equal(jc__code_fingerprint(fp_static_fn, a), 1);
    assert_int_equal(jc__code_fingerprint(fp_global_fn, b), 1);
    assert_int_equal(jc__code_fingerprint(fp_other_fn, c), 1);
    assert_memory_not_equal(a, c, 16);
    assert_memory_not_equal(b, c, 16);
}

static void fingerprint_stable_across_calls_and_reset(void **state)
{
    (void)state;
    if (!jc__fingerprint_supported())
        skip();
    uint8_t a[16], b[16], c[16];
    assert_int_equal(jc__code_fingerprint(fp_static_fn, a), 1);
    assert_int_equal(jc__code_fingerprint(fp_static_fn, b), 1);
    assert_memory_equal(a, b, 16);
    jc__fingerprint_reset();
    assert_int_equal(jc__code_fingerprint(fp_static_fn, c), 1);
    assert_memory_equal(a, c, 16);
    assert_int_equal(jc__code_fingerprint_trace((const void *)fp_static_fn, c, NULL), 1);
    assert_memory_equal(a, c, 16);
}

/* The trace names the static helper: it was followed and hashed. */
static void fingerprint_follows_static_callee(void **state)
{
    (void)state;
    if (!jc__fingerprint_supported())
        skip();
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    uint8_t fp[16];
    assert_int_equal(jc__code_fingerprint_trace((const void *)fp_static_fn, fp, f), 1);
    fclose(f);
    assert_non_null(strstr(text, "function #0 fp_static_fn"));
    assert_non_null(strstr(text, "function #1 fp_test_helper"));
    free(text);
}

static void fingerprint_not_code_is_unknown(void **state)
{
    (void)state;
    uint8_t fp[16];
    int local = 0;
    assert_int_equal(jc__code_fingerprint(NULL, fp), 0);
    assert_int_equal(jc__code_fingerprint_addr(&local, fp), 0);          /* the stack */
    assert_int_equal(jc__code_fingerprint_addr((const void *)&fp_counter, fp), 0); /* data */
    assert_int_equal(jc__code_fingerprint_addr((const void *)16, fp), 0);
}

static void fingerprint_shared_library_function_known(void **state)
{
    (void)state;
    if (!jc__fingerprint_supported())
        skip();
    assert_int_equal(fp_lib_entry(2), 11 + 16);
    uint8_t a[16], b[16];
    assert_int_equal(jc__code_fingerprint_addr((const void *)fp_lib_entry, a), 1);
    assert_int_equal(jc__code_fingerprint_addr((const void *)fp_lib_entry, b), 1);
    assert_memory_equal(a, b, 16);
}

/* The same code in a library loaded at another address: same fingerprint;
 * after dlclose the address is forgotten (unknown, not a stale answer). */
static void fingerprint_dlopen_then_dlclose(void **state)
{
    (void)state;
    if (!jc__fingerprint_supported())
        skip();
    uint8_t linked[16], loaded[16];
    assert_int_equal(jc__code_fingerprint_addr((const void *)fp_lib_entry, linked), 1);
    void *h = dlopen(FP_DLIB_PATH, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(h);
    void *sym = dlsym(h, "fp_lib_entry");
    assert_non_null(sym);
    assert_ptr_not_equal(sym, (void *)fp_lib_entry);
    assert_int_equal(jc__code_fingerprint_addr(sym, loaded), 1);
    assert_memory_equal(linked, loaded, 16);
    assert_int_equal(dlclose(h), 0);
    assert_int_equal(jc__code_fingerprint_addr(sym, loaded), 0);
}

/* Another process (another load address under ASLR) computes the same
 * fingerprints; a stripped copy of the program computes none, and runs. */
static void fingerprint_other_process_same_stripped_unknown(void **state)
{
    (void)state;
    if (!jc__fingerprint_supported())
        skip();
    uint8_t a[16], b[16];
    char ha[33], hb[33], lines[2][64];
    assert_int_equal(jc__code_fingerprint(fp_static_fn, a), 1);
    assert_int_equal(jc__code_fingerprint(fp_global_fn, b), 1);
    hex(a, ha);
    hex(b, hb);

    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(n > 0);
    self[n] = '\0';
    assert_int_equal(probe(self, lines), 0);
    assert_string_equal(lines[0], ha);
    assert_string_equal(lines[1], hb);

    if (strstr(FP_OBJCOPY, "NOTFOUND"))
        skip();
    char stripped[4096], cmd[9000];
    snprintf(stripped, sizeof stripped, "%s/stripped", jc_test_dir());
    snprintf(cmd, sizeof cmd, "'%s' --strip-all '%s' '%s'", FP_OBJCOPY, self, stripped);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(probe(stripped, lines), 0);
    assert_string_equal(lines[0], "unknown");
    assert_string_equal(lines[1], "unknown");
}

#define FP_THREADS 4
static uint8_t fp_expected[3][16];

static void *fp_thread(void *arg)
{
    (void)arg;
    jc_fn fns[3] = {fp_static_fn, fp_global_fn, fp_other_fn};
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 3; i++) {
            uint8_t fp[16];
            if (jc__code_fingerprint(fns[i], fp) != 1 || memcmp(fp, fp_expected[i], 16) != 0)
                return (void *)1;
        }
    }
    return NULL;
}

static void fingerprint_threads_agree(void **state)
{
    (void)state;
    if (!jc__fingerprint_supported())
        skip();
    assert_int_equal(jc__code_fingerprint(fp_static_fn, fp_expected[0]), 1);
    assert_int_equal(jc__code_fingerprint(fp_global_fn, fp_expected[1]), 1);
    assert_int_equal(jc__code_fingerprint(fp_other_fn, fp_expected[2]), 1);
    jc__fingerprint_reset();
    pthread_t t[FP_THREADS];
    for (int i = 0; i < FP_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, fp_thread, NULL), 0);
    for (int i = 0; i < FP_THREADS; i++) {
        void *ret;
        assert_int_equal(pthread_join(t[i], &ret), 0);
        assert_null(ret);
    }
}

static int teardown(void **state)
{
    (void)state;
    jc__fingerprint_reset();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--probe") == 0)
        return probe_main();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(fingerprint_unsupported_build_says_unknown, teardown),
        cmocka_unit_test_teardown(fingerprint_static_and_global_functions_known, teardown),
        cmocka_unit_test_teardown(fingerprint_different_code_differs, teardown),
        cmocka_unit_test_teardown(fingerprint_stable_across_calls_and_reset, teardown),
        cmocka_unit_test_teardown(fingerprint_follows_static_callee, teardown),
        cmocka_unit_test_teardown(fingerprint_not_code_is_unknown, teardown),
        cmocka_unit_test_teardown(fingerprint_shared_library_function_known, teardown),
        cmocka_unit_test_teardown(fingerprint_dlopen_then_dlclose, teardown),
        cmocka_unit_test_teardown(fingerprint_other_process_same_stripped_unknown, teardown),
        cmocka_unit_test_teardown(fingerprint_threads_agree, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
