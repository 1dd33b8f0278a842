/*
 * Looking the distinct calls up in the cache: hits served, code changes
 * noted by policy.
 */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec/exec.h"
#include "run/progress.h"
#include "cache/cache.h"
#include "run_int.h"

/* Whether a hit of fn was computed by other code. The running code's
 * fingerprint is taken once per function and run (a sweep calls one
 * function many times). */
static bool code_changed(run *r, const jc_function *fn, const jc__found *f)
{
    if (!f->has_code_fp)
        return false;
    if (r->fp_fn != fn) {
        r->fp_fn = fn;
        r->fp_known = jc__cache_code_fp(fn, r->fp);
    }
    return r->fp_known && f->code_fp[0] == r->fp[0] && memcmp(f->code_fp, r->fp, sizeof r->fp) != 0;
}

static void note_code_change(run *r, const jc_function *fn)
{
    r->p.code_changed++;
    for (size_t i = 0; i < r->nchanged; i++)
        if (r->changed[i].fn == fn) {
            r->changed[i].entries++;
            return;
        }
    if (JC__GROW(r->changed, r->capchanged, r->nchanged + 1))
        return; /* out of memory: counted, not named */
    r->changed[r->nchanged++] = (struct code_change){fn, 1};
}

/* One line per function whose hits came from other code. */
void jc__r_warn_code_changes(const run *r)
{
    if (r->batch->opts.on_code_change != JC_ON_CODE_CHANGE_WARN)
        return;
    for (size_t i = 0; i < r->nchanged; i++) {
        const jc_function *fn = r->changed[i].fn;
        fprintf(stderr,
                "jobcache: warning: %zu cached result%s of %s (version %s) %s computed by different code: "
                "its machine code has changed since; if the change alters results, bump the version in "
                "JC_FUNCTION(%s, ...), or set JOBCACHE_ON_CODE_CHANGE=recompute (=ignore to silence this)\n",
                r->changed[i].entries, r->changed[i].entries == 1 ? "" : "s", fn->name, fn->version,
                r->changed[i].entries == 1 ? "was" : "were", fn->name);
    }
}

void jc__r_on_found(void *ctx, size_t s, jc__found *f)
{
    run *r = ctx;
    slot *sl = &r->res->slots[s];
    const pending *call = &r->batch->calls[sl->first];
    if (sl->done) { /* cannot happen: each key is answered once */
        jc_value_free(f->value);
        return;
    }
    /* An entry older than expires_after is a miss: computed again and
     * replaced. */
    double expires = r->batch->opts.expires_after;
    if (expires > 0 && f->created < jc__now() - expires) {
        jc_value_free(f->value);
        if (!sl->expired) /* looked up again (claims, waits): counted once */
            r->p.expired += weight(r, s);
        sl->expired = true;
        return;
    }
    if (code_changed(r, call->fn, f)) {
        if (!sl->code_noted)
            note_code_change(r, call->fn);
        sl->code_noted = true;
        if (r->batch->opts.on_code_change == JC_ON_CODE_CHANGE_RECOMPUTE) {
            jc_value_free(f->value); /* a miss: computed again, the entry overwritten */
            return;
        }
    }
    /* Recorded in memory only during a run: the store is not called back. */
    jc__cache_touch_at(r->cache, f, call->key, r->lookup_now);
    sl->value = f->value;
    sl->status = JC_STATUS_OK;
    sl->cached = true;
    sl->done = true;
    sl->seconds = f->seconds;
    r->p.cached += weight(r, s);
    r->p.done += weight(r, s);
    r->p.saved += f->seconds * (double)weight(r, s);
    if (r->pipe) { /* only queued: the store is not to be called from here */
        r->pops->found(r, s, f);
        r->pops->final(r, s);
    }
}

/* Answers hits from the cache, all distinct calls in one go; the rest
 * become tasks. */
int jc__r_lookup(run *r)
{
    jc_results *res = r->res;
    const uint8_t **keys = malloc((res->nslots ? res->nslots : 1) * sizeof *keys);
    if (!keys)
        return jc__set_error(JC_ENOMEM, "out of memory looking up %zu calls", res->nslots);
    for (size_t s = 0; s < res->nslots; s++)
        keys[s] = r->batch->calls[res->slots[s].first].key;
    /* Lookups only read: the hits they record are written with the first
     * results, or at the end of the run. */
    size_t damaged = jc__cache_damaged(r->cache);
    /* Read before the lookups' snapshot: a commit of another process that
     * the snapshot misses changes it (jc__r_claim_misses looks again). */
    r->lookup_version = jc__cache_data_version(r->cache);
    r->lookup_now = jc__now(); /* the time of this pass's hits; later finds read the clock */
    jc__cache_touch_reserve(r->cache, res->nslots);
    int rc = jc__cache_lookup_many(r->cache, keys, res->nslots, jc__r_on_found, r);
    r->lookup_now = 0;
    r->p.damaged += jc__cache_damaged(r->cache) - damaged;
    free(keys);
    for (size_t s = 0; s < res->nslots && !rc; s++) {
        slot *sl = &res->slots[s];
        if (sl->done) {
            /* After the lookups, so that the callback may use the cache. */
            if (r->batch->opts.on_result)
                r->batch->opts.on_result(r->res, sl->first, r->batch->opts.userdata);
            continue;
        }
        const pending *call = &r->batch->calls[sl->first];
        r->task_slot[r->ntasks] = s;
        r->tasks[r->ntasks++] = (jc__task){.fn = call->fn, .argv = call->argv, .argc = call->argc};
    }
    return rc;
}
