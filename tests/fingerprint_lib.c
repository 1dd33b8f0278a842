/*
 * A tiny shared library for tests/test_fingerprint.c: an exported function
 * with a static helper it calls, built twice (linked, and dlopen'ed).
 */
#include <stdint.h>

#define FP_LIB_EXPORT __attribute__((visibility("default")))

static volatile int64_t fp_lib_calls;

__attribute__((noinline)) static int64_t fp_lib_helper(int64_t x)
{
    fp_lib_calls++;
    return x * x + 7;
}

FP_LIB_EXPORT int64_t fp_lib_entry(int64_t x);
FP_LIB_EXPORT int64_t fp_lib_entry(int64_t x)
{
    return fp_lib_helper(x) + fp_lib_helper(x + 1);
}
