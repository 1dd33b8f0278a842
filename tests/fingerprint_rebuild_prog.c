/*
 * The program tests/fingerprint_rebuild.sh builds again and again, with one
 * knob at a time, to count how the code fingerprints of its "cached"
 * functions react. Knobs:
 *   UNRELATED      edits that must not change any fingerprint: functions,
 *                  globals, string constants and a static local added before,
 *                  between and after the measured functions, so every one of
 *                  them moves and so does the data they use;
 *   MOVE_LINES     the lines of the last functions moved (#line), as blank
 *                  lines added above them would: must change nothing;
 *   CHANGE_<name>  a real change to one function or to what it uses;
 *                  fingerprint_rebuild.sh lists which functions must change.
 * It prints "name fingerprint" (or "name unknown") per function; with
 * `--trace name` it explains one fingerprint on stderr.
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "function/fingerprint.h"

#ifdef UNRELATED
int unrelated_table[64] = {1, 2, 3};
const char *unrelated_message = "an unrelated string constant that shifts .rodata";
int unrelated_before(int x);
int unrelated_before(int x)
{
    static int seen; /* a static local, numbered before the measured ones */
    seen += x;
    printf("unrelated %d %s\n", seen, unrelated_message);
    return unrelated_table[x & 63] + seen;
}
/* Cold code goes to .text.unlikely, which the linker places before .text:
 * every function of the program moves. */
__attribute__((cold, noinline)) void unrelated_cold(const char *why);
__attribute__((cold, noinline)) void unrelated_cold(const char *why)
{
    fprintf(stderr, "unrelated failure: %s\n", why);
    abort();
}
#endif

int g_calls;
static double s_total;

/* 1: a leaf. */
double sq(double x);
double sq(double x)
{
#ifdef CHANGE_SQ
    return x * x + 1.0;
#else
    return x * x;
#endif
}

/* 2: a static helper that is not inlined, called by a cached function. */
__attribute__((noinline)) static double helper(double x)
{
#ifdef CHANGE_HELPER
    return x * 0.75 + s_total;
#else
    return x * 0.5 + s_total;
#endif
}

double with_helper(double x);
double with_helper(double x)
{
    return helper(x) + helper(x + 1.0);
}

/* 3: a small static helper the compiler inlines. */
static inline int small(int n) { return n * 3 + 1; }
int with_inline_helper(int n);
int with_inline_helper(int n)
{
    int s = 0;
    for (int i = 0; i < n; i++)
        s += small(i);
    return s;
}

/* 4: globals and a static local. */
int with_global(int x);
int with_global(int x)
{
    static int calls;
    calls++;
#ifdef CHANGE_GLOBAL
    s_total -= x;
#else
    s_total += x;
#endif
    g_calls++;
    return calls + g_calls;
}

#ifdef UNRELATED
static double unrelated_between(double x) { return x * 1234.5 + unrelated_table[2]; }
double (*unrelated_ptr)(double) = unrelated_between;
#endif

/* 5: string constants. */
int with_strings(char *buf, size_t n, int x);
int with_strings(char *buf, size_t n, int x)
{
#ifdef CHANGE_STRING
    int k = snprintf(buf, n, "%d entries", x);
#else
    int k = snprintf(buf, n, "%d items", x);
#endif
    return k + (strcmp(buf, "3 items") == 0);
}

/* 6: calls into another library (libm). */
double with_libm(double x);
double with_libm(double x)
{
#ifdef CHANGE_LIBM
    return cos(x) + exp(-x);
#else
    return sin(x) + exp(-x);
#endif
}

/* 7: a callback whose address the function takes. */
static int by_value(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
#ifdef CHANGE_CALLBACK
    return (x < y) - (x > y);
#else
    return (x > y) - (x < y);
#endif
}

int with_callback(int *v, size_t n);
int with_callback(int *v, size_t n)
{
    qsort(v, n, sizeof *v, by_value);
    return v[0];
}

/* 8: a switch (a jump table in .rodata at -O2). */
int with_switch(int k);
int with_switch(int k)
{
    switch (k) {
    case 0: return 11;
    case 1: return g_calls;
    case 2: return 37;
    case 3: return 41 + k * g_calls;
    case 4: return 53;
#ifdef CHANGE_SWITCH
    case 5: return 60;
#else
    case 5: return 59;
#endif
    case 6: return 67 * g_calls;
    default: return -1;
    }
}

/* 9: a const table. */
static const int primes[8] = {2, 3, 5, 7, 11, 13, 17,
#ifdef CHANGE_TABLE
                              23
#else
                              19
#endif
};
int with_table(int i);
int with_table(int i)
{
    return primes[i & 7] * 2;
}

/* 10: recursion. */
int fib(int n);
int fib(int n)
{
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

/* 11: a cached function that calls another one. */
double calls_root(double x);
double calls_root(double x)
{
    return sq(x) + sq(x + 1.0);
}

/* 12: floating-point constants. */
double with_consts(double x);
double with_consts(double x)
{
#ifdef CHANGE_CONST
    return 1.25 + x * (2.5 + x * 3.875);
#else
    return 1.25 + x * (2.5 + x * 3.75);
#endif
}

/* 13: assert(), whose failure message carries the line number: lines
 * added above move it (MOVE_LINES, as if 500 blank lines were), which is no
 * change of the code (issue 23). (UNRELATED's lines are there, skipped,
 * in every build: they move no line.) */
#ifdef MOVE_LINES
#line 700
#endif
double with_assert(double x);
double with_assert(double x)
{
#ifdef CHANGE_ASSERT
    assert(x > 0.5);
#else
    assert(x > 0.0);
#endif
    return sqrt(x) * 2.0;
}

#ifdef UNRELATED
int unrelated_after(const char *s);
int unrelated_after(const char *s)
{
    return (int)strlen(s) + (strcmp(s, "another new literal") == 0) + g_calls;
}
#endif

static const struct {
    const char *name;
    const void *fn;
} functions[] = {
    {"sq", (const void *)sq},
    {"with_helper", (const void *)with_helper},
    {"with_inline_helper", (const void *)with_inline_helper},
    {"with_global", (const void *)with_global},
    {"with_strings", (const void *)with_strings},
    {"with_libm", (const void *)with_libm},
    {"with_callback", (const void *)with_callback},
    {"with_switch", (const void *)with_switch},
    {"with_table", (const void *)with_table},
    {"fib", (const void *)fib},
    {"calls_root", (const void *)calls_root},
    {"with_consts", (const void *)with_consts},
    {"with_assert", (const void *)with_assert},
};

int main(int argc, char **argv)
{
    for (size_t i = 0; i < sizeof functions / sizeof *functions; i++) {
        if (argc > 2 && strcmp(argv[1], "--trace") == 0 && strcmp(argv[2], functions[i].name) != 0)
            continue;
        uint8_t fp[16];
        int known = argc > 2 ? jc__code_fingerprint_trace(functions[i].fn, fp, stderr)
                             : jc__code_fingerprint_addr(functions[i].fn, fp);
        printf("%s ", functions[i].name);
        for (int k = 0; k < 16 && known; k++)
            printf("%02x", fp[k]);
        printf("%s\n", known ? "" : "unknown");
    }
    jc__fingerprint_reset();
    return 0;
}
