/*
 * jobcache find: an entry looked up by its arguments.
 */
#define _POSIX_C_SOURCE 200809L

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jobcache.h>

#include "builtin.h"
#include "msgs.h"

/* An argument as written on the command line, in the literal syntax `ls`
 * and `show` print (JSON's: 3 is an int, 3.0 a double, "x" a string,
 * [..] a list, {..} a map; NaN, Infinity, -Infinity and null too). */
static jc_value *literal(json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_INTEGER: return jc_int(json_integer_value(j));
    case JSON_REAL: return jc_double(json_real_value(j));
    case JSON_TRUE: return jc_bool(true);
    case JSON_FALSE: return jc_bool(false);
    case JSON_NULL: return jc_null();
    case JSON_STRING: {
        const char *s = json_string_value(j);
        if (strcmp(s, "NaN") == 0)
            return jc_double(NAN);
        if (strcmp(s, "Infinity") == 0)
            return jc_double(INFINITY);
        if (strcmp(s, "-Infinity") == 0)
            return jc_double(-INFINITY);
        return jc_strn(s, json_string_length(j));
    }
    case JSON_ARRAY: {
        jc_value *l = jc_list_new();
        for (size_t i = 0; l && i < json_array_size(j); i++)
            if (jc_list_append(l, literal(json_array_get(j, i)))) {
                jc_value_free(l);
                return NULL;
            }
        return l;
    }
    case JSON_OBJECT: {
        jc_value *m = jc_map_new();
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v)
        {
            if (m && jc_map_set(m, k, literal(v))) {
                jc_value_free(m);
                return NULL;
            }
        }
        return m;
    }
    }
    return NULL;
}

static jc_value *parse_arg(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!j)
        j = json_string(text); /* a bare word: a string */
    jc_value *v = j ? literal(j) : NULL;
    json_decref(j);
    return v;
}

static int cmd_find(jc_cache *cache, const opts *o)
{
    const char *fn = o->pos[0];
    size_t n = o->npos - 1;
    jc_value **args = calloc(n ? n : 1, sizeof *args);
    if (!args)
        return out_of_memory("find");
    int rc = EXIT_OK;
    for (size_t i = 0; i < n && rc == EXIT_OK; i++) {
        const char *a = o->pos[i + 1], *eq = strchr(a, '=');
        bool named = eq && eq > a && strspn(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") ==
                                         (size_t)(eq - a);
        if (named) {
            char *name = strndup(a, (size_t)(eq - a));
            args[i] = name ? jc_kw(name, parse_arg(eq + 1)) : NULL;
            free(name);
        } else {
            args[i] = parse_arg(a);
        }
        if (!args[i])
            rc = usage_error(command_find("find"), "cannot read argument '%s': %s", a, jc_errmsg());
    }
    /* The versions of the function present (or the one asked for). */
    jc_stats *st = rc == EXIT_OK ? jc_cache_stats(cache) : NULL;
    size_t found = 0;
    for (size_t k = 0; st && k < st->nfunctions; k++) {
        const jc_function_stats *f = &st->functions[k];
        if (strcmp(f->function, fn) != 0 || ((o->given & OPT_VERSION) && strcmp(f->version, o->version) != 0))
            continue;
        uint8_t key[JC_KEY_SIZE];
        char hex[2 * JC_KEY_SIZE + 1];
        /* JC_EINVAL: arguments that make no call (a name given twice, a
         * value nested too deep). */
        if (jc_call_key(fn, f->version, args, n, key)) {
            rc = jc_errcode() == JC_EINVAL ? refused("find") : failed("find");
            break;
        }
        for (int b = 0; b < JC_KEY_SIZE; b++)
            snprintf(hex + 2 * b, 3, "%02x", key[b]);
        jc_entry_info info;
        if (jc_entry_find(cache, hex, &info) == 0) {
            found++;
            jc_value *pa = NULL, *ka = NULL, *res = NULL;
            char *text = NULL;
            if (jc_entry_load(cache, info.key, &pa, &ka, &res) == 0)
                text = value_text(res, SHOW_ITEMS);
            say(stdout, "%.12s  %s %s  %s", info.key_hex, fn, f->version, text ? text : "<does not decode>");
            free(text);
            jc_value_free(pa);
            jc_value_free(ka);
            jc_value_free(res);
        }
    }
    if (rc == EXIT_OK && !st)
        rc = failed("find");
    jc_stats_free(st);
    for (size_t i = 0; i < n; i++)
        jc_value_free(args[i]);
    free(args);
    if (rc == EXIT_OK && !found) {
        say(stdout, "no entry of %s with these arguments", fn);
        rc = EXIT_PROBLEMS;
    }
    return rc;
}

const command builtin_find = {
    "find", cmd_find, OPT_FILE | OPT_VERSION, 1, 64, false, false, MODE_READ, NULL,
    "find FUNCTION ARG... [NAME=VALUE...] [--version V] [--file FILE]",
    "Look an entry up by its arguments (joblib's check_call_in_cache), written as ls and\n"
    "show print them: 3 is an int, 3.0 a double, \"text\" or a bare word a string, [1, 2] a\n"
    "list, {\"a\": 1} a map, true, false, null, NaN, Infinity; NAME=VALUE a named argument.\n"
    "Prints the entry of each version present (or of --version V); exits 1 when none."};
