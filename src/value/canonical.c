/*
 * Canonical arguments (docs/format.md): -0.0 is +0.0 and every NaN the one
 * quiet NaN; and equality of values.
 */
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jc_internal.h"
#include "value_int.h"

/* ---- canonical arguments ---- */

/* The key is made from canonical doubles (docs/format.md): -0.0 is +0.0 and
 * every NaN is the one quiet NaN 0x7ff8000000000000. A function must see
 * exactly what its key was made from, or two calls with one key could give
 * different results (1/x for -0.0 and +0.0), and which one the cache keeps
 * would depend on which ran first. */
static const uint64_t canonical_nan_bits = UINT64_C(0x7ff8000000000000);

/* Whether the bits of a double are those of -0.0 or of a NaN other than the
 * canonical one: the same test as the codec's, on the bits. */
static bool bits_need_canonical(uint64_t b)
{
    return ((b << 1) > UINT64_C(0xffe0000000000000) && b != canonical_nan_bits) ||
           b == UINT64_C(0x8000000000000000);
}

static double canonical_double(double d)
{
    if (isnan(d)) {
        memcpy(&d, &canonical_nan_bits, sizeof d);
        return d;
    }
    return d == 0.0 ? 0.0 : d; /* -0.0 == 0.0 */
}

/* Index of the first element of a double array that is not canonical, or n. */
static size_t first_non_canonical(const void *p, size_t n)
{
    const unsigned char *bytes = p;
    for (size_t i = 0; i < n; i++) {
        uint64_t b; /* memcpy, not a cast: the data are doubles */
        memcpy(&b, bytes + 8 * i, 8);
        if (bits_need_canonical(b))
            return i;
    }
    return n;
}

static int make_canonical(jc_value *v)
{
    switch ((jc_type)v->type) {
    case JC_TYPE_DOUBLE:
        v->u.d = canonical_double(v->u.d);
        return 0;
    case JC_TYPE_DOUBLES: {
        size_t from = first_non_canonical(v->u.arr, v->len);
        if (from == v->len)
            return 0; /* a borrowed array that needs no change stays borrowed */
        double *data = (double *)v->u.arr;
        if (v->flags & JC__V_BORROWED) {
            /* Never write to the caller's memory: copy it, once. */
            data = malloc(v->len * sizeof *data);
            if (!data)
                return jc__set_error(JC_ENOMEM, "out of memory copying an array of %zu doubles to "
                                     "make -0.0 and NaN canonical", v->len);
            memcpy(data, v->u.arr, v->len * sizeof *data);
            v->u.arr = data;
            v->flags &= (uint8_t)~JC__V_BORROWED;
        }
        for (size_t i = from; i < v->len; i++)
            data[i] = canonical_double(data[i]);
        return 0;
    }
    case JC_TYPE_LIST:
    case JC_TYPE_MAP:
        for (size_t i = 0; i < v->len; i++) {
            int rc = make_canonical(v->u.items[i]);
            if (rc)
                return rc;
        }
        return 0;
    case JC_TYPE_KWARG:
        return make_canonical(v->u.kw.val);
    default:
        return 0;
    }
}

int jc__args_canonicalize(jc_value *const *argv, size_t argc)
{
    for (size_t i = 0; i < argc; i++) {
        jc_type t = (jc_type)argv[i]->type;
        if (t == JC_TYPE_INT || t == JC_TYPE_BOOL || t == JC_TYPE_NULL || t == JC_TYPE_STR)
            continue; /* canonical as they are: most arguments of a sweep */
        int rc = make_canonical(argv[i]);
        if (rc)
            return rc;
    }
    return 0;
}

/* Canonical comparison of doubles: -0.0 equals 0.0 and all NaNs are equal. */
static bool same_double(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return a == b;
}

bool jc_value_equal(const jc_value *a, const jc_value *b)
{
    a = jc__deref(a);
    b = jc__deref(b);
    if (!a || !b)
        return a == b;
    if (a->type != b->type)
        return false;
    switch ((jc_type)a->type) {
    case JC_TYPE_NULL: return true;
    case JC_TYPE_BOOL: return a->u.b == b->u.b;
    case JC_TYPE_INT: return a->u.i == b->u.i;
    case JC_TYPE_DOUBLE: return same_double(a->u.d, b->u.d);
    case JC_TYPE_STR:
    case JC_TYPE_BYTES:
    case JC_TYPE_DIGEST: return a->len == b->len && memcmp(a->u.s, b->u.s, a->len) == 0;
    case JC_TYPE_FILE: return memcmp(a->digest, b->digest, JC__FILE_DIGEST_LEN) == 0; /* by content */
    case JC_TYPE_LEFT_OUT: return true;
    case JC_TYPE_REF: /* by digest once known, else the same call */
        return a->digest && b->digest ? memcmp(a->digest, b->digest, JC__REF_PAYLOAD_LEN) == 0
                                      : a->u.ref.batch == b->u.ref.batch && a->u.ref.index == b->u.ref.index;
    case JC_TYPE_INTS: /* an empty borrowed array may have a NULL pointer */
        return a->len == b->len && (a->len == 0 || memcmp(a->u.arr, b->u.arr, a->len * 8) == 0);
    case JC_TYPE_DOUBLES: {
        if (a->len != b->len)
            return false;
        const double *x = a->u.arr, *y = b->u.arr;
        for (size_t i = 0; i < a->len; i++)
            if (!same_double(x[i], y[i]))
                return false;
        return true;
    }
    case JC_TYPE_KWARG:
        return strcmp(a->u.kw.name, b->u.kw.name) == 0 && jc_value_equal(a->u.kw.val, b->u.kw.val);
    case JC_TYPE_LIST:
    case JC_TYPE_MAP:
        if (a->len != b->len)
            return false;
        for (size_t i = 0; i < a->len; i++) {
            if (a->type == JC_TYPE_MAP && strcmp(a->keys[i], b->keys[i]) != 0)
                return false;
            if (!jc_value_equal(a->u.items[i], b->u.items[i]))
                return false;
        }
        return true;
    }
    return false;
}
