/*
 * The JSON writer of the jobcache command (json.h): jansson does the
 * syntax and the escaping; this file only decides how jobcache's values,
 * which JSON cannot all hold as they are, are written.
 */
#define _POSIX_C_SOURCE 200809L

#include "json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

json_t *json_textn(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t bad = 0;
    uint32_t cp;
    for (size_t i = 0; i < n;) {
        size_t len = text_utf8_next(p + i, n - i, &cp);
        bad += !len;
        i += len ? len : 1;
    }
    if (!bad)
        return json_stringn(s, n);
    /* Each bad byte becomes U+FFFD (3 bytes). */
    if (n > (SIZE_MAX - 1) / 3)
        return NULL;
    char *fixed = malloc(n + 2 * bad + 1), *q = fixed;
    if (!fixed)
        return NULL;
    for (size_t i = 0; i < n;) {
        size_t len = text_utf8_next(p + i, n - i, &cp);
        if (len) {
            memcpy(q, p + i, len);
            q += len;
            i += len;
        } else {
            memcpy(q, "\xef\xbf\xbd", 3);
            q += 3;
            i++;
        }
    }
    json_t *j = json_stringn(fixed, (size_t)(q - fixed));
    free(fixed);
    return j;
}

json_t *json_text(const char *s)
{
    return json_textn(s ? s : "", s ? strlen(s) : 0);
}

json_t *json_seconds(double d)
{
    if (!isfinite(d))
        return json_null();
    double ns = round(d * 1e9) / 1e9;
    return json_real(isfinite(ns) ? ns : d);
}

json_t *json_time(double t)
{
    if (!(t > 0) || !isfinite(t))
        return json_null();
    double us = round(t * 1e6) / 1e6;
    return json_real(isfinite(us) ? us : t);
}

bool json_put(json_t *obj, const char *key, json_t *value)
{
    return value && json_object_set_new(obj, key, value) == 0;
}

/* A double among decoded values. */
static json_t *value_double(double d)
{
    if (isnan(d))
        return json_string("NaN");
    if (isinf(d))
        return json_string(d > 0 ? "Infinity" : "-Infinity");
    return json_real(d);
}

/* {"$bytes": "<base64>"}. */
static json_t *value_bytes(const unsigned char *p, size_t n)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (n > SIZE_MAX / 4 - 3)
        return NULL;
    char *out = malloc((n + 2) / 3 * 4 + 1), *q = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t w = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *q++ = b64[w >> 18 & 63];
        *q++ = b64[w >> 12 & 63];
        *q++ = i + 1 < n ? b64[w >> 6 & 63] : '=';
        *q++ = i + 2 < n ? b64[w & 63] : '=';
    }
    json_t *obj = json_object();
    bool ok = obj && json_put(obj, "$bytes", json_stringn(out, (size_t)(q - out)));
    free(out);
    if (!ok)
        json_decref(obj);
    return ok ? obj : NULL;
}

/* A digested array: the text jc_value_format gives it, unquoted
 * ("<doubles[131072] xxh3 ...>"). */
static json_t *value_digest(const jc_value *v)
{
    char *s = jc_value_format(v, 0);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    json_t *j = n >= 2 && s[0] == '"' ? json_textn(s + 1, n - 2) : json_text(s);
    free(s);
    return j;
}

/* Adds item to arr (taking the reference); false when item is NULL. */
static bool append(json_t *arr, json_t *item)
{
    return item && json_array_append_new(arr, item) == 0;
}

static json_t *value_container(const jc_value *v, jc_type t)
{
    size_t n = jc_value_len(v);
    bool map = t == JC_TYPE_MAP, ok = true;
    json_t *j = map ? json_object() : json_array();
    const double *ds = NULL;
    const int64_t *is = NULL;
    if (t == JC_TYPE_DOUBLES)
        jc_value_get_doubles(v, &ds, &n);
    else if (t == JC_TYPE_INTS)
        jc_value_get_ints(v, &is, &n);
    for (size_t i = 0; j && ok && i < n; i++) {
        if (ds)
            ok = append(j, value_double(ds[i]));
        else if (is)
            ok = append(j, json_integer(is[i]));
        else if (!map)
            ok = append(j, json_value(jc_value_at(v, i)));
        else {
            /* Keys are text from the file: a key that is not UTF-8 is
             * repaired like any string (see json.h). */
            json_t *key = json_text(jc_value_key_at(v, i));
            ok = key && json_put(j, json_string_value(key), json_value(jc_value_at(v, i)));
            json_decref(key);
        }
    }
    if (!ok) {
        json_decref(j);
        return NULL;
    }
    return j;
}

json_t *json_value(const jc_value *v)
{
    jc_type t = jc_value_type(v);
    bool b;
    int64_t i;
    double d;
    const char *s;
    const void *p;
    size_t n;
    switch (t) {
    case JC_TYPE_BOOL: return jc_value_get_bool(v, &b) ? NULL : json_boolean(b);
    case JC_TYPE_INT: return jc_value_get_int(v, &i) ? NULL : json_integer(i);
    case JC_TYPE_DOUBLE: return jc_value_get_double(v, &d) ? NULL : value_double(d);
    case JC_TYPE_STR: return jc_value_get_str(v, &s, &n) ? NULL : json_textn(s, n);
    case JC_TYPE_BYTES: return jc_value_get_bytes(v, &p, &n) ? NULL : value_bytes(p, n);
    case JC_TYPE_DIGEST:
    case JC_TYPE_FILE:     /* "<file xxh3 ...>" as the cache keeps it */
    case JC_TYPE_LEFT_OUT: /* "<left out>" */
    case JC_TYPE_REF:      /* "<result xxh3 ...>": another call's result, by its digest */
        return value_digest(v);
    case JC_TYPE_DOUBLES:
    case JC_TYPE_INTS:
    case JC_TYPE_LIST:
    case JC_TYPE_MAP: return value_container(v, t);
    case JC_TYPE_NULL:
    case JC_TYPE_KWARG: /* never decoded from a file */
        break;
    }
    return json_null();
}

/* The fewest significant digits, 15 to 17, that read d back exactly. */
static int digits_for(double d)
{
    char buf[40];
    for (int p = 15; p < 17; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, d);
        if (strtod(buf, NULL) == d)
            return p;
    }
    return 17;
}

/* The digits every real of j needs. */
static int precision_of(json_t *j)
{
    int p = 15;
    if (json_is_real(j))
        return digits_for(json_real_value(j));
    if (json_is_array(j)) {
        size_t i;
        json_t *item;
        json_array_foreach(j, i, item) {
            int q = precision_of(item);
            p = q > p ? q : p;
        }
    } else if (json_is_object(j)) {
        const char *key;
        json_t *item;
        json_object_foreach(j, key, item) {
            int q = precision_of(item);
            p = q > p ? q : p;
        }
    }
    return p;
}

int json_out(FILE *f, json_t *j, bool steal)
{
    int rc = -1;
    if (j) {
        size_t flags = JSON_ENCODE_ANY | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(precision_of(j));
        rc = json_dumpf(j, f, flags) == 0 ? 0 : -1;
    }
    if (steal)
        json_decref(j);
    return rc;
}
