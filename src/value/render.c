/*
 * Rendering a value as text, in the C locale whatever the program's:
 * jc_value_format.
 */
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jc_internal.h"
#include "value_int.h"

/* ---- rendering ---- */

static void put_text(jc__buf *b, const char *s)
{
    jc__buf_write(b, s, strlen(s));
}

/* Doubles are rendered in the C locale (util/locale.h), so that the text
 * (error messages, the jobcache command's output, JSON) always has a '.'
 * whatever setlocale() the program made. */

/* Only without the C locale object: rewrites the decimal separator of the
 * thread's locale (any run of bytes that a C-locale %g never writes, such
 * as ',' or a multibyte one) to '.'. */
static void normalize_radix(char *s)
{
    char *p = s, *q = s;
    bool in_radix = false;
    for (; *p; p++) {
        bool plain = (*p >= '0' && *p <= '9') || *p == '-' || *p == '+' || *p == 'e' || *p == 'E';
        if (plain)
            *q++ = *p;
        else if (!in_radix)
            *q++ = '.';
        in_radix = !plain;
    }
    *q = '\0';
}

/* Renders d; called with the C locale in effect when there is one. */
static void put_double(jc__buf *b, double d, bool c_loc)
{
    char tmp[48];
    if (isnan(d))
        put_text(b, "NaN");
    else if (isinf(d))
        put_text(b, d > 0 ? "Infinity" : "-Infinity");
    else {
        /* The shortest of %.15g, %.16g and %.17g that reads back exactly
         * (%.17g always does; %g drops trailing zeros, so 0.1 is "0.1"):
         * as the CSV export writes it. snprintf and strtod use the same
         * locale, so the check holds. */
        for (int p = 15; p <= 17; p++) {
            snprintf(tmp, sizeof tmp, "%.*g", p, d);
            if (p == 17 || strtod(tmp, NULL) == d)
                break;
        }
        if (!c_loc)
            normalize_radix(tmp);
        /* Keep doubles distinguishable from ints: 1.0, not 1. */
        if (!strpbrk(tmp, ".eE"))
            strcat(tmp, ".0");
        put_text(b, tmp);
    }
}

static void put_json_string(jc__buf *b, const char *s, size_t len)
{
    jc__buf_write(b, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            jc__buf_write(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put_text(b, esc);
        } else {
            jc__buf_write(b, (const char *)&s[i], 1);
        }
    }
    jc__buf_write(b, "\"", 1);
}

static void render(jc__buf *b, const jc_value *v, size_t max, bool c_loc)
{
    char tmp[64];
    if (!v) {
        put_text(b, "null");
        return;
    }
    switch ((jc_type)v->type) {
    case JC_TYPE_NULL: put_text(b, "null"); break;
    case JC_TYPE_BOOL: put_text(b, v->u.b ? "true" : "false"); break;
    case JC_TYPE_INT:
        snprintf(tmp, sizeof tmp, "%lld", (long long)v->u.i);
        put_text(b, tmp);
        break;
    case JC_TYPE_DOUBLE: put_double(b, v->u.d, c_loc); break;
    case JC_TYPE_STR: put_json_string(b, v->u.s, v->len); break;
    case JC_TYPE_BYTES:
        snprintf(tmp, sizeof tmp, "\"<%zu bytes>\"", v->len);
        put_text(b, tmp);
        break;
    case JC_TYPE_DIGEST: {
        /* "<doubles[131072] xxh3 0123...>": what the cache kept of it. */
        static const char *const kinds[] = {"?", "doubles", "ints", "bytes"};
        unsigned kind = (unsigned char)v->u.s[0];
        char hex[33];
        for (int i = 0; i < 16; i++)
            snprintf(hex + 2 * i, 3, "%02x", (unsigned char)v->u.s[9 + i]);
        char text[96];
        snprintf(text, sizeof text, "\"<%s[%zu] xxh3 %s>\"", kinds[kind < 4 ? kind : 0], jc__v_digest_count(v), hex);
        put_text(b, text);
        break;
    }
    case JC_TYPE_FILE: {
        /* The path where the call has it; "<file xxh3 0123...>" for what
         * the cache kept. */
        if (v->u.s) {
            put_json_string(b, v->u.s, v->len);
            break;
        }
        char hex[33], text[80];
        for (int i = 0; i < 16; i++)
            snprintf(hex + 2 * i, 3, "%02x", v->digest[2 + i]);
        snprintf(text, sizeof text, "\"<%s xxh3 %s>\"", v->digest[1] == 2 ? "directory" : "file", hex);
        put_text(b, text);
        break;
    }
    case JC_TYPE_LEFT_OUT: put_text(b, "\"<left out>\""); break;
    case JC_TYPE_REF: {
        /* "<result of call 3>" in a batch; "<result xxh3 0123...>" as the
         * cache keeps it. */
        char text[80];
        if (v->u.ref.batch || !v->digest) {
            snprintf(text, sizeof text, "\"<result of call %zu>\"", v->u.ref.index);
        } else {
            char hex[33];
            for (int i = 0; i < 16; i++)
                snprintf(hex + 2 * i, 3, "%02x", v->digest[1 + i]);
            snprintf(text, sizeof text, "\"<result xxh3 %s>\"", hex);
        }
        put_text(b, text);
        break;
    }
    case JC_TYPE_DOUBLES:
    case JC_TYPE_INTS:
    case JC_TYPE_LIST:
    case JC_TYPE_MAP: {
        bool map = v->type == JC_TYPE_MAP;
        size_t shown = (max && v->len > max) ? max : v->len;
        put_text(b, map ? "{" : "[");
        for (size_t i = 0; i < shown; i++) {
            if (i)
                put_text(b, ", ");
            if (v->type == JC_TYPE_DOUBLES) {
                put_double(b, ((const double *)v->u.arr)[i], c_loc);
            } else if (v->type == JC_TYPE_INTS) {
                snprintf(tmp, sizeof tmp, "%lld", (long long)((const int64_t *)v->u.arr)[i]);
                put_text(b, tmp);
            } else {
                if (map) {
                    put_json_string(b, v->keys[i], strlen(v->keys[i]));
                    put_text(b, ": ");
                }
                render(b, v->u.items[i], max, c_loc);
            }
        }
        if (shown < v->len) {
            snprintf(tmp, sizeof tmp, ", ... (%zu %s)", v->len,
                     v->type == JC_TYPE_LIST || map ? "items" : "elements");
            put_text(b, tmp);
        }
        put_text(b, map ? "}" : "]");
        break;
    }
    case JC_TYPE_KWARG:
        put_text(b, v->u.kw.name);
        put_text(b, "=");
        render(b, v->u.kw.val, max, c_loc);
        break;
    }
}

char *jc_value_format(const jc_value *v, size_t max_items)
{
    jc__buf b = {0};
    jc__locale_saved loc = jc__c_numbers_begin();
    render(&b, v, max_items, loc.switched);
    jc__c_numbers_end(loc);
    if (jc__buf_write(&b, "", 1)) { /* the terminating NUL; fails only on OOM */
        jc__buf_free(&b);
        jc__set_error(JC_ENOMEM, "out of memory formatting a value");
        return NULL;
    }
    return b.data;
}
