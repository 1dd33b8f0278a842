/*
 * Figures of a cache: jc_cache_stats.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "jc_internal.h"
#include "inspect_int.h"
#include "util/proc.h"

/* ---- figures ---- */

/* Who keeps the -wal file from being checkpointed (issue 23: a -wal of
 * 183 MiB under a max_size of 40 MiB, its reader anonymous). */
static void wal_readers(jc_cache *cache, jc_stats *s)
{
    long pids[8];
    size_t n = jc__cache_wal_readers(cache, pids, sizeof pids / sizeof *pids);
    s->wal_readers = (int64_t)n;
    if (n) {
        s->wal_reader_pid = pids[0];
        s->wal_reader_command = jc__command_line(pids[0]);
    }
}

typedef struct stats_builder {
    jc_stats *s;
    jc_function_stats *fs;
    size_t cap;
    jc_cache *cache;
} stats_builder;

/* Hits of the hit log not folded (a read-only handle cannot fold it): each
 * added to its entry's function, and to the totals, when the entry is still
 * there. */
static int add_pending_hits(void *ctx, const uint8_t key[JC__KEY_LEN], int64_t hits)
{
    stats_builder *b = ctx;
    jc__row r;
    int rc = jc__cache_row_by_key(b->cache, key, false, &r);
    if (rc <= 0)
        return rc; /* removed since: not counted */
    double saved = (double)hits * r.compute_seconds;
    for (size_t i = 0; i < b->s->nfunctions; i++) {
        jc_function_stats *f = &b->fs[i]; /* b->s->functions, writable */
        if (strcmp(f->function, r.function) == 0 && strcmp(f->version, r.version) == 0) {
            f->hits = jc__sum_sat(f->hits, hits);
            f->saved_seconds += saved;
            break;
        }
    }
    b->s->hits = jc__sum_sat(b->s->hits, hits);
    b->s->saved_seconds += saved;
    return 0;
}

static int add_group(void *ctx, const jc__group *g)
{
    stats_builder *b = ctx;
    jc_stats *s = b->s;
    if (JC__GROW(b->fs, b->cap, s->nfunctions + 1))
        return jc__set_error(JC_ENOMEM, "out of memory summing up a cache");
    s->functions = b->fs;
    jc_function_stats *f = &b->fs[s->nfunctions];
    memset(f, 0, sizeof *f);
    f->function = jc__strdup(g->function);
    f->version = jc__strdup(g->version);
    s->nfunctions++; /* counted now, so that jc_stats_free frees the strings */
    if (!f->function || !f->version)
        return jc__set_error(JC_ENOMEM, "out of memory summing up a cache");
    f->entries = g->entries;
    f->bytes = jc__sum_sat(g->args_bytes, g->result_bytes);
    f->compute_seconds = g->compute_seconds;
    f->mean_seconds = g->entries ? g->compute_seconds / (double)g->entries : 0;
    f->hits = g->hits;
    f->saved_seconds = g->saved_seconds;
    f->oldest = g->oldest;
    f->newest = g->newest;
    f->last_used = g->last_used;
    f->code_fingerprints = g->code_fingerprints;
    s->other_format_entries += g->other_formats;

    bool first = s->entries == 0;
    s->entries = jc__sum_sat(s->entries, g->entries);
    s->args_bytes = jc__sum_sat(s->args_bytes, g->args_bytes);
    s->result_bytes = jc__sum_sat(s->result_bytes, g->result_bytes);
    s->payload_bytes = jc__sum_sat(s->payload_bytes, f->bytes);
    s->compute_seconds += g->compute_seconds;
    s->hits = jc__sum_sat(s->hits, g->hits);
    s->saved_seconds += g->saved_seconds;
    s->oldest = first || g->oldest < s->oldest ? g->oldest : s->oldest;
    s->newest = first || g->newest > s->newest ? g->newest : s->newest;
    s->last_used = first || g->last_used > s->last_used ? g->last_used : s->last_used;
    return 0;
}

static int64_t file_size(const char *path, const char *suffix)
{
    char buf[4096];
    struct stat sb;
    snprintf(buf, sizeof buf, "%s%s", path, suffix);
    return stat(buf, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

static void count_lease(const jc_lease_info *l, void *userdata)
{
    jc_stats *s = userdata;
    if (l->alive) {
        s->leases_alive++;
        s->leases_calls += l->calls;
    } else {
        s->leases_stale++;
    }
}

jc_stats *jc_cache_stats(jc_cache *cache)
{
    jc__store_facts facts;
    stats_builder b = {0};
    if (jc__i_usable(cache, "jc_cache_stats"))
        return NULL;
    b.s = calloc(1, sizeof *b.s);
    if (!b.s || !(b.s->path = jc__strdup(jc_cache_path(cache)))) {
        jc__set_error(JC_ENOMEM, "out of memory summing up a cache");
        goto fail;
    }
    /* Hits not yet written count too: written first when the file takes
     * them, else added to the totals (not per function) from memory. */
    int64_t pending_hits = 0;
    double pending_saved = 0;
    jc__cache_sync_hits(cache);
    jc__cache_pending_hits(cache, &pending_hits, &pending_saved);
    if (jc__cache_facts(cache, &facts) ||
        jc__cache_groups(cache, add_group, &b))
        goto fail;
    b.s->hits += pending_hits;
    b.s->saved_seconds += pending_saved;
    b.cache = cache;
    jc__pending_map *log = NULL;
    if (jc__cache_pending_map(cache, &log) || jc__pending_each(log, add_pending_hits, &b)) {
        jc__pending_map_free(log);
        goto fail;
    }
    jc__pending_map_free(log);
    b.s->schema_version = (int)facts.schema_version;
    b.s->key_format = (int)facts.key_format;
    b.s->free_bytes = facts.free_bytes;
    b.s->evicted_entries = facts.evicted_entries;
    b.s->evicted_bytes = facts.evicted_bytes;
    bool server = jc__cache_on_server(cache);
    b.s->wal_bytes = server ? 0 : file_size(jc_cache_path(cache), "-wal");
    wal_readers(cache, b.s);
    if (jc_cache_leases(cache, count_lease, b.s, NULL))
        goto fail;
    /* On a server, what its store measures for max_size (docs/store.md). */
    b.s->file_bytes = server ? jc__cache_disk_bytes(cache) : file_size(jc_cache_path(cache), "") + b.s->wal_bytes;
    return b.s;

fail:
    jc_stats_free(b.s);
    return NULL;
}

void jc_stats_free(jc_stats *stats)
{
    if (!stats)
        return;
    jc_function_stats *fs = (jc_function_stats *)stats->functions;
    for (size_t i = 0; i < stats->nfunctions; i++) {
        free((char *)fs[i].function);
        free((char *)fs[i].version);
    }
    free(fs);
    free((char *)stats->path);
    free((char *)stats->wal_reader_command);
    free(stats);
}
