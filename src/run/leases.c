/*
 * Leases in a run: claiming the misses, waiting for other processes'
 * results.
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

/* ---- leases: claiming the misses, waiting for other processes' ---- */

/* The keys of the slots of r->tasks. */
static const uint8_t **task_keys(run *r, const size_t *slots, size_t n)
{
    const uint8_t **keys = malloc((n ? n : 1) * sizeof *keys);
    if (keys)
        for (size_t i = 0; i < n; i++)
            keys[i] = r->batch->calls[r->res->slots[slots[i]].first].key;
    return keys;
}

/* lookup_many answers by index into its keys: these slots'. */
typedef struct waiting_ctx {
    run *r;
    const size_t *slots;
} waiting_ctx;

static void on_found_waiting(void *ctx, size_t i, jc__found *f)
{
    waiting_ctx *wc = ctx;
    jc__r_on_found(wc->r, wc->slots[i], f);
}

/* The tasks at [from, r->ntasks) whose calls another process stored since
 * they were looked up (and then released: results are committed before
 * their claims are released, so a call is seen claimed or stored, never
 * neither): looked up again, served as hits, their fresh claims released;
 * the other tasks stay. Issue 23: with calls under a millisecond, 695 of
 * 20,000 shared calls were computed twice across 8 processes, the store of
 * one landing between another's lookup and its claim. */
static int serve_stored_meanwhile(run *r, size_t from)
{
    size_t n = r->ntasks - from;
    const uint8_t **keys = task_keys(r, r->task_slot + from, n);
    if (!keys)
        return jc__set_error(JC_ENOMEM, "out of memory claiming %zu calls", n);
    waiting_ctx wc = {r, r->task_slot + from};
    int rc = jc__cache_lookup_many(r->cache, keys, n, on_found_waiting, &wc);
    size_t k = from;
    for (size_t i = from; i < r->ntasks; i++) {
        slot *sl = &r->res->slots[r->task_slot[i]];
        if (!sl->done) {
            r->tasks[k] = r->tasks[i];
            r->task_slot[k++] = r->task_slot[i];
            continue;
        }
        if (r->release && r->nrelease < r->release_cap)
            memcpy(r->release + JC__KEY_LEN * r->nrelease++, keys[i - from], JC__KEY_LEN);
        if (r->batch->opts.on_result)
            r->batch->opts.on_result(r->res, sl->first, r->batch->opts.userdata);
    }
    r->ntasks = k;
    free(keys);
    return rc;
}

/* Claims the misses before computing them. Those another live process
 * holds move from r->tasks to r->waiting: this run computes its own first,
 * then waits for theirs (jc__r_wait_for_others). Those another process
 * stored since the lookup are served (serve_stored_meanwhile), looked up
 * again only when another process committed since: a run alone pays
 * nothing for it. A failure to claim is not an error of the run: it
 * computes everything, as without leases. */
int jc__r_claim_misses(run *r)
{
    /* A pipeline claims its later calls as they become ready (jc__r_claim_from). */
    if (!jc__cache_leases_enabled(r->cache) || (!r->ntasks && !r->pipe))
        return 0;
    size_t cap = r->pipe ? r->batch->n : r->ntasks;
    r->release_cap = cap;
    r->release = malloc((cap ? cap : 1) * JC__KEY_LEN);
    r->waiting = malloc((cap ? cap : 1) * sizeof *r->waiting);
    if (!r->release || !r->waiting)
        return jc__set_error(JC_ENOMEM, "out of memory claiming %zu calls", cap);
    r->leases = true;
    r->lease_ttl = LEASE_TTL;
    r->last_renew = jc__monotonic();
    if (r->ntasks)
        jc__r_claim_from(r, 0);
    return 0;
}

void jc__r_claim_from(run *r, size_t from)
{
    size_t n = r->ntasks - from;
    const uint8_t **keys = task_keys(r, r->task_slot + from, n);
    bool *theirs = malloc((n ? n : 1) * sizeof *theirs);
    if (!keys || !theirs) { /* out of memory: computed here, as without leases */
        free(keys);
        free(theirs);
        return;
    }
    int64_t version = r->lookup_version;
    jc__cache_claim(r->cache, keys, n, r->lease_ttl, theirs);
    size_t k = from;
    for (size_t i = from; i < r->ntasks; i++) {
        if (theirs[i - from]) {
            r->waiting[r->nwaiting++] = r->task_slot[i];
            continue;
        }
        r->tasks[k] = r->tasks[i];
        r->task_slot[k++] = r->task_slot[i];
    }
    r->ntasks = k;
    r->p.waiting = r->nwaiting;
    free(keys);
    free(theirs);
    /* A failure to look again computes them, as without leases. */
    if (r->ntasks > from && (version < 0 || jc__cache_data_version(r->cache) != version))
        (void)serve_stored_meanwhile(r, from);
}

/* Sleeps about seconds, or less when a signal arrives. */
static void nap(double seconds)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
}


/* One poll of the waiting calls: those stored meanwhile are hits, served
 * (on_result) and no longer waited for. */
static int collect_stored(run *r)
{
    const uint8_t **keys = task_keys(r, r->waiting, r->nwaiting);
    if (!keys)
        return jc__set_error(JC_ENOMEM, "out of memory waiting for %zu calls", r->nwaiting);
    waiting_ctx wc = {r, r->waiting};
    int rc = jc__cache_lookup_many(r->cache, keys, r->nwaiting, on_found_waiting, &wc);
    size_t k = 0;
    for (size_t i = 0; i < r->nwaiting; i++) {
        slot *sl = &r->res->slots[r->waiting[i]];
        if (sl->done) {
            if (r->batch->opts.on_result)
                r->batch->opts.on_result(r->res, sl->first, r->batch->opts.userdata);
            continue;
        }
        r->waiting[k++] = r->waiting[i];
    }
    r->nwaiting = k;
    r->p.waiting = k;
    free(keys);
    return rc;
}

/* The waiting calls no longer held by a live owner (it died, or gave them
 * up): claimed, and made this round's tasks, computed here. */
static int take_over_abandoned(run *r)
{
    const uint8_t **keys = task_keys(r, r->waiting, r->nwaiting);
    bool *held = malloc(r->nwaiting * sizeof *held);
    if (!keys || !held) {
        free(keys);
        free(held);
        return jc__set_error(JC_ENOMEM, "out of memory waiting for %zu calls", r->nwaiting);
    }
    jc__cache_still_held(r->cache, keys, r->nwaiting, held);
    size_t nfree = 0;
    for (size_t i = 0; i < r->nwaiting; i++)
        if (!held[i])
            keys[nfree++] = keys[i];
    if (nfree) {
        bool *theirs = held; /* reused: nfree <= nwaiting */
        jc__cache_claim(r->cache, keys, nfree, r->lease_ttl, theirs);
        size_t j = 0, k = 0;
        for (size_t i = 0; i < r->nwaiting; i++) {
            size_t s = r->waiting[i];
            const pending *call = &r->batch->calls[r->res->slots[s].first];
            if (j < nfree && keys[j] == call->key) {
                if (!theirs[j++]) {
                    r->task_slot[r->ntasks] = s;
                    r->tasks[r->ntasks++] = (jc__task){.fn = call->fn, .argv = call->argv, .argc = call->argc};
                    continue;
                }
            }
            r->waiting[k++] = s;
        }
        r->nwaiting = k;
        r->p.waiting = k;
    }
    free(keys);
    free(held);
    /* Released since the poll before: maybe because they were stored (a
     * failure to look again computes them). */
    if (r->ntasks)
        (void)serve_stored_meanwhile(r, 0);
    return 0;
}

/* After its own misses, the run waits for the calls other processes hold:
 * it polls the store (20 ms at first, then at most every 200 ms; no lock
 * is held between polls) and takes each result as a hit as it is stored.
 * A call whose owner died, or released it (its call failed: failures are
 * not cached), or whose claim expired, is claimed and computed here. The
 * wait ends with the last such call; SIGINT and SIGTERM end it at once. */
static int wait_loop(run *r, const sigset_t *taken)
{
    double delay = 0.02;
    int rc = 0;
    while (r->nwaiting && !rc && !r->stopped) {
        r->ntasks = 0; /* the tasks of the last round are done */
        if (!jc__interrupted)
            nap(delay);
        if (jc__interrupted) {
            jc__interrupt_set_last(jc__interrupted);
            return jc__set_error(JC_EINTR, "interrupted by %s while waiting for calls of other processes",
                                 jc__interrupted == SIGTERM ? "SIGTERM" : "SIGINT");
        }
        delay = delay * 2 < 0.2 ? delay * 2 : 0.2;
        jc__r_renew_if_due(r);
        jc__r_update_progress(r, 0, false);
        rc = collect_stored(r);
        if (!rc && r->pipe) /* the calls that use them, as they are had */
            rc = r->pops->propagate(r);
        if (rc || !r->nwaiting)
            break;
        if ((rc = take_over_abandoned(r)))
            return rc;
        if (r->pipe && (rc = r->pops->propagate(r)))
            return rc;
        if (r->ntasks) {
            rc = jc__r_execute_with(r, taken);
            jc__r_flush(r, false);
            delay = 0.02;
        }
    }
    return rc;
}

/* SIGINT and SIGTERM are taken over once for the whole wait, its polls and
 * the rounds of calls it computes: a signal at any point of it ends the
 * wait with JC_EINTR (not the default action half-way through a lookup). */
int jc__r_wait_for_others(run *r)
{
    jc__saved_signals saved;
    sigset_t taken;
    jc__interrupts_catch(&saved, &taken);
    int rc = wait_loop(r, &taken);
    jc__interrupts_release(&saved);
    if (!rc && jc__interrupted) {
        jc__interrupt_set_last(jc__interrupted);
        rc = jc__set_error(JC_EINTR, "interrupted by %s while waiting for calls of other processes",
                           jc__interrupted == SIGTERM ? "SIGTERM" : "SIGINT");
    }
    return rc;
}
