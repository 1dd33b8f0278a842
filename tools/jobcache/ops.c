/*
 * jobcache config, log and find: operating a cache from outside the
 * programs that use it (settings kept in the file, the record of runs, an
 * entry looked up by its arguments).
 */
#define _POSIX_C_SOURCE 200809L

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jobcache.h>

#include "builtin.h"
#include "json.h"
#include "text.h"

/* ---- config ---- */

static void print_setting(const char *key, const char *value, const char *source, void *userdata)
{
    (void)userdata;
    say(stdout, "%-10s %-14s (%s)", key, value, source);
}

static int cmd_config(jc_cache *cache, const opts *o)
{
    if (o->npos == 0) {
        if (jc_cache_config_list(cache, print_setting, NULL))
            return failed("config");
        return EXIT_OK;
    }
    const char *key = o->pos[0];
    if (o->npos == 1) {
        char *v = NULL;
        if (jc_cache_config_get(cache, key, &v))
            return failed("config");
        say(stdout, "%s", v ? v : "(not set)");
        free(v);
        return EXIT_OK;
    }
    /* Set: the file opened again, writable (config reads read-only). */
    jc_cache *w = jc_cache_open(jc_cache_path(cache), &(jc_cache_options){.flags = JC_CACHE_NOCREATE});
    if (!w)
        return failed("config");
    const char *value = strcmp(o->pos[1], "default") == 0 ? NULL : o->pos[1];
    int rc = jc_cache_config_set(w, key, value);
    jc_cache_close(w);
    if (rc)
        return failed("config");
    say(stdout, value ? "%s = %s" : "%s back to its default", key, value ? value : "");
    return EXIT_OK;
}

const command builtin_config = {
    "config", cmd_config, OPT_FILE, 0, 2, false, false, MODE_READ, NULL, "config [KEY [VALUE|default]] [--file FILE]",
    "Settings kept in the cache file, which every program that opens it honours unless it,\n"
    "or the environment, sets its own: max-size (what the file may take on disk) and\n"
    "log-runs (how many runs the record keeps). Without KEY: each setting in force and where\n"
    "it comes from. With KEY: its stored value. With VALUE: store it ('default' removes it)."};

/* ---- log ---- */

typedef struct log_ctx {
    bool json;
    json_t *arr;
    size_t n;
} log_ctx;

static void print_run(const jc_run_record *r, void *userdata)
{
    log_ctx *c = userdata;
    c->n++;
    if (c->json) {
        json_t *fails = json_array();
        for (size_t i = 0; fails && i < r->nfailures; i++) {
            json_t *f = json_object();
            json_object_set_new(f, "status", json_string(r->failures[i].status));
            json_object_set_new(f, "message", json_text(r->failures[i].message));
            json_array_append_new(fails, f);
        }
        json_t *j = json_object();
        json_object_set_new(j, "id", json_integer(r->id));
        json_object_set_new(j, "started", json_time(r->started));
        json_object_set_new(j, "ended", json_time(r->ended));
        json_object_set_new(j, "host", json_text(r->host));
        json_object_set_new(j, "pid", json_integer(r->pid));
        json_object_set_new(j, "command", json_text(r->command));
        json_object_set_new(j, "kind", json_text(r->kind));
        json_object_set_new(j, "n_jobs", json_integer(r->n_jobs));
        json_object_set_new(j, "backend", json_text(r->backend));
        json_object_set_new(j, "calls", json_integer(r->calls));
        json_object_set_new(j, "cached", json_integer(r->cached));
        json_object_set_new(j, "computed", json_integer(r->computed));
        json_object_set_new(j, "failed", json_integer(r->failed));
        json_object_set_new(j, "skipped", json_integer(r->skipped));
        json_object_set_new(j, "elapsed", json_seconds(r->elapsed));
        json_object_set_new(j, "saved", json_seconds(r->saved));
        json_object_set_new(j, "status", json_text(r->status));
        json_object_set_new(j, "failures", fails ? fails : json_array());
        json_array_append_new(c->arr, j);
        return;
    }
    char when[32], took[16];
    fmt_time(when, sizeof when, r->started);
    fmt_seconds(took, sizeof took, r->elapsed);
    say(stdout, "%s  %s %s  %lld calls, %lld cached, %lld computed, %lld failed%s in %s  %s", when, r->kind,
        r->command, (long long)r->calls, (long long)r->cached, (long long)r->computed, (long long)r->failed,
        r->skipped ? ", some skipped" : "", took, r->status);
    for (size_t i = 0; i < r->nfailures; i++)
        say(stdout, "    %s: %s", r->failures[i].status, r->failures[i].message);
}

static int cmd_log(jc_cache *cache, const opts *o)
{
    log_ctx c = {.json = o->given & OPT_JSON, .arr = json_array()};
    size_t last = (o->given & OPT_LIMIT) ? o->limit : 20;
    if (jc_cache_runs(cache, last, o->given & OPT_FAILED, print_run, &c)) {
        json_decref(c.arr);
        return failed("log");
    }
    if (c.json) {
        for (size_t i = 0; i < json_array_size(c.arr); i++) {
            if (json_out(stdout, json_array_get(c.arr, i), false)) {
                json_decref(c.arr);
                return out_of_memory("log");
            }
            putchar('\n');
        }
    } else if (!c.n) {
        say(stdout, "(no runs recorded)");
    }
    json_decref(c.arr);
    return EXIT_OK;
}

const command builtin_log = {
    "log", cmd_log, OPT_FILE | OPT_LIMIT | OPT_FAILED | OPT_JSON, 0, 0, true, false, MODE_READ, NULL,
    "log [FILE] [-n N] [--failed] [--json]",
    "The record of runs, oldest first: when, what program, how many calls were cached,\n"
    "computed and failed, how long, and each failure's message (failures are never\n"
    "cached, and this is where they are kept). The last 20 runs unless -n N."};

/* ---- find ---- */

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
        if (jc_call_key(fn, f->version, args, n, key)) {
            rc = failed("find");
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
