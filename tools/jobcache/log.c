/*
 * jobcache log: the record of runs kept in the cache file.
 */
#define _POSIX_C_SOURCE 200809L

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include <jobcache.h>

#include "builtin.h"
#include "json.h"
#include "msgs.h"

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
        json_object_set_new(j, "evicted", json_integer(r->evicted));
        json_object_set_new(j, "evicted_bytes", json_integer(r->evicted_bytes));
        json_object_set_new(j, "retries", json_integer(r->retries));
        json_object_set_new(j, "inputs_read", json_integer(r->inputs_read));
        json_object_set_new(j, "failures", fails ? fails : json_array());
        json_array_append_new(c->arr, j);
        return;
    }
    char when[32], took[16];
    fmt_time(when, sizeof when, r->started);
    fmt_seconds(took, sizeof took, r->elapsed);
    char skipped[160] = "";
    if (r->skipped)
        snprintf(skipped, sizeof skipped, ", %lld skipped", (long long)r->skipped);
    if (r->retries)
        snprintf(skipped + strlen(skipped), sizeof skipped - strlen(skipped), ", %lld retried", (long long)r->retries);
    if (r->inputs_read)
        snprintf(skipped + strlen(skipped), sizeof skipped - strlen(skipped), ", %lld input%s read",
                 (long long)r->inputs_read, r->inputs_read == 1 ? "" : "s");
    if (r->evicted) {
        char size[16];
        fmt_size(size, sizeof size, r->evicted_bytes);
        snprintf(skipped + strlen(skipped), sizeof skipped - strlen(skipped), ", %lld evicted (%s)",
                 (long long)r->evicted, size);
    }
    say(stdout, "%s  %s %s  %lld calls, %lld cached, %lld computed, %lld failed%s in %s  %s", when, r->kind,
        r->command, (long long)r->calls, (long long)r->cached, (long long)r->computed, (long long)r->failed,
        skipped, took, r->status);
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
    } else if (!c.n && (o->given & OPT_FAILED)) {
        /* Were there runs at all? Then say that none failed. */
        log_ctx any = {.json = true, .arr = json_array()};
        int rc = jc_cache_runs(cache, 1, false, print_run, &any);
        size_t n = any.n;
        json_decref(any.arr);
        if (rc)
            return failed("log");
        say(stdout, n ? "(no failed runs among the runs recorded)" : "(no runs recorded)");
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
