/*
 * jobcache stats: the cache's size and, per function and version, its entries.
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


/* One function and version of stats --json; NULL when out of memory. */
static json_t *stats_function_json(const jc_function_stats *f)
{
    json_t *j = json_object();
    bool ok = j && json_put(j, "function", json_text(f->function)) &&
              json_put(j, "version", json_text(f->version)) &&
              json_put(j, "entries", json_integer(f->entries)) &&
              json_put(j, "bytes", json_integer(f->bytes)) &&
              json_put(j, "compute_seconds", json_seconds(f->compute_seconds)) &&
              json_put(j, "mean_seconds", json_seconds(f->mean_seconds)) &&
              json_put(j, "hits", json_integer(f->hits)) &&
              json_put(j, "saved_seconds", json_seconds(f->saved_seconds)) &&
              json_put(j, "oldest", json_time(f->oldest)) &&
              json_put(j, "newest", json_time(f->newest)) &&
              json_put(j, "last_used", json_time(f->last_used)) &&
              json_put(j, "code_fingerprints", json_integer(f->code_fingerprints));
    if (!ok)
        json_decref(j);
    return ok ? j : NULL;
}

/* Writes stats --json; false when out of memory. */
static bool stats_json(const jc_stats *s)
{
    json_t *j = json_object(), *fs = json_array();
    bool ok = j && fs && json_put(j, "path", json_text(s->path)) &&
              json_put(j, "schema_version", json_integer(s->schema_version)) &&
              json_put(j, "key_format", json_integer(s->key_format)) &&
              json_put(j, "entries", json_integer(s->entries)) &&
              json_put(j, "file_bytes", json_integer(s->file_bytes)) &&
              json_put(j, "free_bytes", json_integer(s->free_bytes)) &&
              json_put(j, "payload_bytes", json_integer(s->payload_bytes)) &&
              json_put(j, "args_bytes", json_integer(s->args_bytes)) &&
              json_put(j, "result_bytes", json_integer(s->result_bytes)) &&
              json_put(j, "compute_seconds", json_seconds(s->compute_seconds)) &&
              json_put(j, "hits", json_integer(s->hits)) &&
              json_put(j, "saved_seconds", json_seconds(s->saved_seconds)) &&
              json_put(j, "oldest", json_time(s->oldest)) &&
              json_put(j, "newest", json_time(s->newest)) &&
              json_put(j, "last_used", json_time(s->last_used)) &&
              json_put(j, "wal_bytes", json_integer(s->wal_bytes)) &&
              json_put(j, "other_format_entries", json_integer(s->other_format_entries)) &&
              json_put(j, "leases_alive", json_integer(s->leases_alive)) &&
              json_put(j, "leases_stale", json_integer(s->leases_stale)) &&
              json_put(j, "leases_calls", json_integer(s->leases_calls)) &&
              json_put(j, "evicted_entries", json_integer(s->evicted_entries)) &&
              json_put(j, "evicted_bytes", json_integer(s->evicted_bytes)) &&
              json_put(j, "wal_readers", json_integer(s->wal_readers)) &&
              json_put(j, "wal_reader_pid", s->wal_reader_pid ? json_integer(s->wal_reader_pid) : json_null()) &&
              json_put(j, "wal_reader_command",
                       s->wal_reader_command ? json_text(s->wal_reader_command) : json_null());
    for (size_t i = 0; ok && i < s->nfunctions; i++) {
        json_t *f = stats_function_json(&s->functions[i]);
        ok = f && json_array_append_new(fs, f) == 0;
    }
    ok = ok && json_put(j, "functions", json_incref(fs)) && json_out(stdout, j, false) == 0;
    if (ok)
        putchar('\n');
    json_decref(fs);
    json_decref(j);
    return ok;
}

static bool stats_function_table(const jc_stats *s)
{
    /* On a narrow terminal NEWEST, OLDEST, SAVED, MEAN and TIME go first. */
    table t = {.ncols = 12, .align = "llrrrrrrlllr", .fit = "sskkddkdddkk"};
    bool ok = table_add(&t, (const char *const[]){"FUNCTION", "VERSION", "ENTRIES",
                                                               "SIZE", "TIME", "MEAN", "HITS",
                                                               "SAVED", "OLDEST", "NEWEST",
                                                               "LAST USED", "CODE"});
    bool changed = false;
    for (size_t i = 0; i < s->nfunctions && ok; i++) {
        const jc_function_stats *f = &s->functions[i];
        char n[24], size[16], tm[16], mean[16], hits[24], saved[16], old[32], new_[32], used[32], code[24];
        if (f->code_fingerprints)
            snprintf(code, sizeof code, "%lld", (long long)f->code_fingerprints);
        else
            snprintf(code, sizeof code, "-");
        changed |= f->code_fingerprints > 1;
        snprintf(n, sizeof n, "%lld", (long long)f->entries);
        fmt_size(size, sizeof size, f->bytes);
        fmt_seconds(tm, sizeof tm, f->compute_seconds);
        fmt_seconds(mean, sizeof mean, f->mean_seconds);
        snprintf(hits, sizeof hits, "%lld", (long long)f->hits);
        fmt_seconds(saved, sizeof saved, f->saved_seconds);
        fmt_time(old, sizeof old, f->oldest);
        fmt_time(new_, sizeof new_, f->newest);
        fmt_ago(used, sizeof used, f->last_used);
        ok = table_add(&t, (const char *const[]){f->function, f->version, n, size, tm, mean, hits,
                                                 saved, old, new_, used, code});
    }
    if (ok)
        table_print(&t, stdout);
    if (ok && changed)
        printf("\nCODE counts the different machine code that computed a version's entries (\"-\": not\n"
               "known). More than 1: the function changed without a version bump; if that changed its\n"
               "results, bump the version, or rerun with JOBCACHE_ON_CODE_CHANGE=recompute.\n");
    table_free(&t);
    return ok;
}

typedef struct recent {
    int64_t runs, calls, cached;
} recent;

static void add_run(const jc_run_record *r, void *userdata)
{
    recent *t = userdata;
    t->runs++;
    t->calls += r->calls;
    t->cached += r->cached;
}

/* The hit rate over the last 20 runs, as ccache and sccache show first. */
static void recent_runs(jc_cache *cache)
{
    recent t = {0};
    if (jc_cache_runs(cache, 20, false, add_run, &t) == 0 && t.runs)
        printf("recent runs   %lld, %lld calls, %.1f%% of them cached ('jobcache log')\n", (long long)t.runs,
               (long long)t.calls, t.calls ? 100.0 * (double)t.cached / (double)t.calls : 0.0);
}

static void stats_text(const jc_stats *s)
{
    char a[32], b[32], c[32], d[32];
    /* A cache on a PostgreSQL server (a connection URI: jc_cache_open):
     * its measure is live data, not a file's size (docs/store.md). */
    bool server = s->path && (strncmp(s->path, "postgresql://", 13) == 0 || strncmp(s->path, "postgres://", 11) == 0);
    say(stdout, server ? "server        %s" : "file          %s", s->path);
    printf("schema        version %d, key format %d\n", s->schema_version, s->key_format);
    printf("entries       %lld\n", (long long)s->entries);
    if (s->other_format_entries)
        printf("              of which %lld of another key format (never used by this release;\n"
               "              'jobcache prune --other-formats' removes them)\n",
               (long long)s->other_format_entries);
    fmt_size(a, sizeof a, s->file_bytes);
    fmt_size(b, sizeof b, s->free_bytes);
    if (server)
        printf("live data     %s (what max_size bounds: arguments, results and 300 bytes an entry)\n", a);
    else if (s->free_bytes > 0)
        printf("on disk       %s, with the -wal file (what max_size bounds; %s free: 'jobcache vacuum'\n"
               "              gives it back)\n", a, b);
    else
        printf("on disk       %s, with the -wal file (what max_size bounds)\n", a);
    fmt_size(a, sizeof a, s->payload_bytes);
    fmt_size(b, sizeof b, s->args_bytes);
    fmt_size(c, sizeof c, s->result_bytes);
    printf("payload       %s (arguments %s, results %s)\n", a, b, c);
    fmt_seconds(a, sizeof a, s->compute_seconds);
    fmt_seconds(b, sizeof b, s->saved_seconds);
    printf("compute time  %s, of which %lld hits saved %s\n", a, (long long)s->hits, b);
    fmt_time(a, sizeof a, s->oldest);
    fmt_time(b, sizeof b, s->newest);
    fmt_time(c, sizeof c, s->last_used);
    fmt_ago(d, sizeof d, s->last_used);
    printf("oldest        %s\nnewest        %s\nlast used     %s (%s)\n", a, b, c, d);
    if (s->evicted_entries) {
        fmt_size(a, sizeof a, s->evicted_bytes);
        printf("evicted       %lld entr%s, %s of payload, by max_size ('jobcache log' says when; -z zeroes)\n",
               (long long)s->evicted_entries, s->evicted_entries == 1 ? "y" : "ies", a);
    }
    if (s->leases_alive || s->leases_stale)
        printf("leases        %lld process%s computing %lld calls for this cache%s ('jobcache leases')\n",
               (long long)s->leases_alive, s->leases_alive == 1 ? "" : "es", (long long)s->leases_calls,
               s->leases_stale ? ", and stale claims" : "");
    if (s->wal_bytes > 0) {
        fmt_size(a, sizeof a, s->wal_bytes);
        say(stdout, "wal           %s in %s-wal, maybe not yet in the file itself: copy the cache with", a,
            s->path);
        say(stdout, "              'jobcache backup', not cp");
    }
    if (s->wal_readers > 0) {
        char *cmd = s->wal_reader_command ? text_escape(s->wal_reader_command) : NULL;
        say(stdout, "wal readers   %lld process%s reading a snapshot keep the -wal file from being checkpointed",
            (long long)s->wal_readers, s->wal_readers == 1 ? "" : "es");
        say(stdout, "              past it until they end their read transaction: pid %ld%s%s%s%s",
            s->wal_reader_pid, cmd ? " (" : "", cmd ? cmd : "", cmd ? ")" : "",
            s->wal_readers > 1 ? " and others" : "");
        free(cmd);
    }
}

static int cmd_stats(jc_cache *cache, const opts *o)
{
    int64_t zeroed = 0;
    if ((o->given & OPT_ZERO) && jc_cache_zero_hits(cache, &zeroed) != 0)
        return failed("stats");
    jc_stats *s = jc_cache_stats(cache);
    if (!s)
        return failed("stats");
    int rc = EXIT_OK;
    if ((o->given & OPT_ZERO) && !(o->given & OPT_JSON))
        printf("hit counts zeroed (%lld entr%s had hits)\n\n", (long long)zeroed, zeroed == 1 ? "y" : "ies");
    if (o->given & OPT_JSON) {
        if (!stats_json(s))
            rc = out_of_memory("stats");
    } else {
        stats_text(s);
        recent_runs(cache);
        if (s->nfunctions) {
            putchar('\n');
            if (!stats_function_table(s))
                rc = out_of_memory("stats");
        }
    }
    jc_stats_free(s);
    return rc;
}

/* ---- ls ---- */

/* `ls` prints each entry as it reads it, in columns of fixed widths, so that
 * the first line comes at once and memory does not grow with the number of
 * entries (sizing columns to their contents would read every entry first).
 * A function or version name longer than its column pushes the rest of its
 * line to the right; arguments and results are abbreviated to theirs. */
enum { LS_KEY = 12, LS_FUNCTION = 14, LS_VERSION = 7, LS_ARGS = 36, LS_RESULT = 36, LS_SIZE = 6,
       LS_TIME = 7, LS_HITS = 5 };

const command builtin_stats = {
    "stats", cmd_stats, OPT_FILE | OPT_JSON | OPT_ZERO, 0, 0, true, false, MODE_READ_UNLESS, NULL,
    "stats [FILE] [--json] [-z|--zero-stats]",
    "Show the cache's size, and per function and version: entries, bytes, compute time,\n"
    "hits and the compute time they saved, and when entries were made and last used.\n"
    "-z (--zero-stats) first sets every entry's hit count to 0, as ccache -z does, so\n"
    "that hits count from now on; when entries were last used is kept (eviction goes\n"
    "by it), and so is the record of runs ('jobcache log')."};
