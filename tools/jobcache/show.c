/*
 * jobcache show: one entry with its decoded arguments and result.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jobcache.h>

#include "builtin.h"
#include "json.h"
#include "msgs.h"
#include "table.h"
#include "text.h"

static void show_values(const entry *e, size_t max)
{
    size_t n = jc_value_len(e->args), k = jc_value_len(e->kwargs);
    for (size_t i = 0; i < n; i++) {
        char *s = value_text(jc_value_at(e->args, i), max);
        if (e->params && i < e->nparams)
            say(stdout, "%-11s [%zu] %s = %s", i ? "" : "args", i, e->params[i], s ? s : "?");
        else
            say(stdout, "%-11s [%zu] %s", i ? "" : "args", i, s ? s : "?");
        free(s);
    }
    for (size_t i = 0; i < k; i++) {
        char *s = value_text(jc_value_at(e->kwargs, i), max);
        say(stdout, "%-11s %s = %s", i ? "" : "kwargs", jc_value_key_at(e->kwargs, i), s ? s : "?");
        free(s);
    }
    if (n + k == 0)
        printf("args        (none)\n");
    char *s = value_text(e->result, max);
    say(stdout, "result      %s", s ? s : "?");
    free(s);
}

/* The references among v (depth first), numbered from *n. */
static void list_inputs(jc_cache *cache, const jc_value *v, size_t *n)
{
    const uint8_t *digest = NULL;
    if (jc_value_get_ref(v, &digest) == 0) {
        char hex[33];
        for (int i = 0; i < 16; i++)
            snprintf(hex + 2 * i, 3, "%02x", digest[i]);
        jc_entry_info in;
        if (jc_entry_by_result(cache, digest, &in) == 0)
            say(stdout, "%-11s %zu: %s %s (result xxh3 %s)", *n == 1 ? "inputs" : "", *n, in.key_hex, in.function,
                hex);
        else
            say(stdout, "%-11s %zu: result xxh3 %s (no entry holds it any more)", *n == 1 ? "inputs" : "", *n, hex);
        ++*n;
        return;
    }
    jc_type t = jc_value_type(v);
    if (t == JC_TYPE_LIST || t == JC_TYPE_MAP)
        for (size_t i = 0; i < jc_value_len(v); i++)
            list_inputs(cache, jc_value_at(v, i), n);
}

static void show_text(jc_cache *cache, const entry *e, size_t max)
{
    const jc_entry_info *i = &e->info;
    char a[32], b[32], c[32];
    say(stdout, "key         %s", i->key_hex);
    say(stdout, "function    %s", i->function);
    say(stdout, "version     %s", i->version);
    fmt_time(a, sizeof a, i->created);
    fmt_ago(b, sizeof b, i->created);
    printf("created     %s (%s)\n", a, b);
    fmt_time(a, sizeof a, i->last_used);
    fmt_ago(b, sizeof b, i->last_used);
    printf("last used   %s (%s)\n", a, b);
    fmt_seconds(a, sizeof a, i->compute_seconds);
    printf("compute     %s\nhits        %lld\n", a, (long long)i->hits);
    fmt_size(a, sizeof a, entry_size(i));
    fmt_size(b, sizeof b, i->args_size);
    fmt_size(c, sizeof c, i->result_size);
    printf("size        %s (arguments %s, result %s)\n", a, b, c);
    if (e->error)
        say(stdout, "error       %s", e->error);
    else
        show_values(e, max);
    size_t n = 1; /* a pipeline's inputs: the entries whose results it took */
    list_inputs(cache, e->args, &n);
    list_inputs(cache, e->kwargs, &n);
}

static int cmd_show(jc_cache *cache, const opts *o)
{
    jc_entry_info info;
    entry e;
    if (jc_entry_find(cache, o->pos[0], &info))
        return prefix_failed(cache, "show");
    if (!entry_load(cache, &info, &e)) {
        entry_free(&e);
        return out_of_memory("show");
    }
    int rc = e.error ? EXIT_PROBLEMS : EXIT_OK;
    if (!(o->given & OPT_JSON))
        show_text(cache, &e, (o->given & OPT_FULL) ? 0 : SHOW_ITEMS);
    else if (json_out(stdout, entry_json(&e), true) == 0)
        putchar('\n');
    else
        rc = out_of_memory("show");
    if (e.error)
        say(stderr, "jobcache show: %s", e.error);
    entry_free(&e);
    return rc;
}


const command builtin_show = {
    "show", cmd_show, OPT_FILE | OPT_JSON | OPT_FULL, 1, 1, false, false, MODE_READ, NULL,
    "show KEY-PREFIX [--json] [--full]",
    "Show one entry with its decoded arguments and result. Long arrays and lists are\n"
    "abbreviated unless --full (--json never abbreviates)."};
