/*
 * Reading values: their type, scalars, arrays, items of lists and maps.
 */
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jc_internal.h"
#include "value_int.h"

/* ---- inspection ---- */

/* A resolved reference (jc_use) reads as the result it stands for:
 * every accessor looks through it. */
jc_type jc_value_type(const jc_value *v)
{
    v = jc__deref(v);
    return v ? (jc_type)v->type : JC_TYPE_NULL;
}

static int want(const jc_value *v, jc_type t)
{
    v = jc__deref(v);
    if (!v)
        return jc__set_error(JC_ETYPE, "expected %s, got no value", jc_type_name(t));
    if (v->type != t)
        return jc__set_error(JC_ETYPE, "expected %s, got %s", jc_type_name(t), jc_type_name(v->type));
    return 0;
}

int jc_value_get_bool(const jc_value *v, bool *out)
{
    v = jc__deref(v);
    int rc = want(v, JC_TYPE_BOOL);
    if (!rc && out)
        *out = v->u.b;
    return rc;
}

int jc_value_get_int(const jc_value *v, int64_t *out)
{
    v = jc__deref(v);
    int rc = want(v, JC_TYPE_INT);
    if (!rc && out)
        *out = v->u.i;
    return rc;
}

int jc_value_get_double(const jc_value *v, double *out)
{
    v = jc__deref(v);
    int rc = want(v, JC_TYPE_DOUBLE);
    if (!rc && out)
        *out = v->u.d;
    return rc;
}

int jc_value_get_str(const jc_value *v, const char **out, size_t *len)
{
    v = jc__deref(v);
    /* A file argument (jc_file) reads as its path. */
    int rc = v && v->type == JC_TYPE_FILE && v->u.s ? 0 : want(v, JC_TYPE_STR);
    if (!rc) {
        if (out)
            *out = v->u.s;
        if (len)
            *len = v->len;
    }
    return rc;
}

int jc_value_get_bytes(const jc_value *v, const void **out, size_t *len)
{
    v = jc__deref(v);
    int rc = want(v, JC_TYPE_BYTES);
    if (!rc) {
        if (out)
            *out = v->u.s;
        if (len)
            *len = v->len;
    }
    return rc;
}

int jc_value_get_doubles(const jc_value *v, const double **out, size_t *n)
{
    v = jc__deref(v);
    int rc = want(v, JC_TYPE_DOUBLES);
    if (!rc) {
        if (out)
            *out = v->u.arr;
        if (n)
            *n = v->len;
    }
    return rc;
}

int jc_value_get_ints(const jc_value *v, const int64_t **out, size_t *n)
{
    v = jc__deref(v);
    int rc = want(v, JC_TYPE_INTS);
    if (!rc) {
        if (out)
            *out = v->u.arr;
        if (n)
            *n = v->len;
    }
    return rc;
}

int jc_value_get_ref(const jc_value *v, const uint8_t **digest)
{
    if (!v || v->type != JC_TYPE_REF || !v->digest)
        return jc__set_error(JC_ETYPE, "expected a stored reference, got %s",
                             v ? jc_type_name(v->type) : "no value");
    if (digest)
        *digest = v->digest + 1;
    return 0;
}

size_t jc_value_len(const jc_value *v)
{
    v = jc__deref(v);
    if (!v)
        return 0;
    switch ((jc_type)v->type) {
    case JC_TYPE_STR:
    case JC_TYPE_BYTES:
    case JC_TYPE_DOUBLES:
    case JC_TYPE_INTS:
    case JC_TYPE_LIST:
    case JC_TYPE_MAP:
        return v->len;
    case JC_TYPE_DIGEST:
        return jc__v_digest_count(v);
    default:
        return 0;
    }
}

const jc_value *jc_value_at(const jc_value *v, size_t i)
{
    v = jc__deref(v);
    if (!v || (v->type != JC_TYPE_LIST && v->type != JC_TYPE_MAP) || i >= v->len)
        return NULL;
    return jc__deref(v->u.items[i]);
}

const char *jc_value_key_at(const jc_value *v, size_t i)
{
    v = v && v->type == JC_TYPE_KWARG ? v : jc__deref(v);
    if (v && v->type == JC_TYPE_KWARG)
        return v->u.kw.name;
    if (!v || v->type != JC_TYPE_MAP || i >= v->len)
        return NULL;
    return v->keys[i];
}

const jc_value *jc_value_get(const jc_value *v, const char *key)
{
    v = jc__deref(v);
    if (!v || v->type != JC_TYPE_MAP || !key)
        return NULL;
    ptrdiff_t at = jc__v_map_find(v, key);
    return at >= 0 ? jc__deref(v->u.items[at]) : NULL;
}
