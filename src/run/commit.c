/*
 * Storing results as they arrive: pieces written in batched transactions,
 * leases renewed with them.
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

void jc__r_note_store_error(run *r, int rc)
{
    if (r->store_rc)
        return;
    r->store_rc = rc;
    r->store_msg = jc__strdup(jc_errmsg());
}

/* Queues the release of this run's claim on key: its call failed, or its
 * result could not be stored, so a process waiting for it must compute it
 * itself (with the next write transaction, or the run's end). */
void jc__r_release_key(run *r, const uint8_t key[JC__KEY_LEN])
{
    /* (A result retried in smaller pieces on a full disk may come again:
     * past the array's room, the release waits for the run's end, which
     * releases everything.) */
    if (r->leases && r->release && r->nrelease < r->release_cap)
        memcpy(r->release + JC__KEY_LEN * r->nrelease++, key, JC__KEY_LEN);
}

typedef struct piece_ctx {
    run *r;
    size_t from;
    size_t too_large;
} piece_ctx;

static void piece_item(void *ctx, size_t i, jc__result_in *out)
{
    piece_ctx *pc = ctx;
    const unstored *u = &pc->r->queue[pc->from + i];
    const slot *sl = &pc->r->res->slots[u->slot];
    const pending *call = &pc->r->batch->calls[sl->first];
    *out = (jc__result_in){.key = call->key, .fn = call->fn, .argv = call->argv, .argc = call->argc,
                           .value = sl->value, .blob = u->blob, .blob_len = u->blob_len, .seconds = u->seconds};
}

static void piece_unstored(void *ctx, size_t i, int rc)
{
    piece_ctx *pc = ctx;
    run *r = pc->r;
    if (rc == 1)
        pc->too_large++; /* too large for max_size: warned about, not stored */
    else
        jc__r_note_store_error(r, rc);
    /* not stored: a waiter computes it */
    jc__r_release_key(r, r->batch->calls[r->res->slots[r->queue[pc->from + i].slot].first].key);
}

/* Writes queue[from, from + n) in one transaction (with the queued hit
 * counts, and the leases, when touches). A result that cannot be stored for
 * a reason of its own (too large for SQLite, out of memory encoding it) is
 * reported and skipped; the others are stored. Returns 0 when the
 * transaction committed, JC_EFULL when the disk was full (everything rolled
 * back), or another negative code when it could not begin or commit. */
static int write_piece(run *r, size_t from, size_t n, bool touches)
{
    piece_ctx pc = {.r = r, .from = from};
    jc__piece p = {.n = n, .item = piece_item, .unstored = piece_unstored, .ctx = &pc, .touches = touches,
                   .leases = r->leases, .lease_ttl = r->lease_ttl, .release = r->release, .nrelease = &r->nrelease};
    int rc = jc__cache_store_piece(r->cache, &p);
    if (p.leases_done)
        r->last_renew = jc__monotonic();
    if (rc == 0)
        r->p.too_large += pc.too_large;
    return rc;
}

/* Writes the queued results and hit counts in one transaction. When the
 * transaction cannot even begin (the file locked past the busy timeout),
 * the queue is kept for the next attempt; the last attempt (final) reports
 * it. When the disk is full, what fits is committed in smaller and smaller
 * pieces, down to one result; a result that does not fit alone is not
 * stored (counted in r->unstored: the caller still gets it), and the run
 * goes on. */
void jc__r_flush(run *r, bool final)
{
    if (!r->writable || (!r->nqueue && !jc__cache_pending(r->cache) && !r->nrelease))
        return;
    bool spent = r->busy_spent * 1e3 >= jc__cache_busy_timeout_ms(r->cache);
    if (spent && !final)
        return; /* locked past the busy timeout in all: the last attempt says so */
    if (spent)
        jc__cache_lock_wait(r->cache, false); /* one try each, to the end of the run */
    double t0 = r->last_commit = jc__monotonic();
    size_t done = 0;
    int rc = r->full ? JC_EFULL : write_piece(r, 0, r->nqueue, true);
    if (rc == JC_EBUSY)
        r->busy_spent += jc__monotonic() - t0;
    if (rc == 0) {
        done = r->nqueue;
    } else if (rc == JC_EFULL) {
        char *full_msg = jc__strdup(jc_errmsg());
        r->full = true;
        jc__cache_drop_pending(r->cache); /* hit counts first give way to results */
        size_t piece = r->nqueue > 1 ? r->nqueue / 2 : 1;
        while (done < r->nqueue) {
            size_t n = piece < r->nqueue - done ? piece : r->nqueue - done;
            int prc = write_piece(r, done, n, false);
            if (prc == 0) {
                done += n;
            } else if (prc == JC_EFULL && n > 1) {
                piece = n / 2;
            } else if (prc == JC_EFULL) {
                r->unstored++; /* does not fit even alone */
                jc__r_release_key(r, r->batch->calls[r->res->slots[r->queue[done].slot].first].key);
                done++;
            } else {
                jc__r_note_store_error(r, prc);
                if (final)
                    r->unstored += r->nqueue - done, done = r->nqueue;
                break;
            }
        }
        if (r->unstored && !r->full_msg)
            r->full_msg = full_msg, full_msg = NULL;
        free(full_msg);
    } else {
        /* Could not begin (locked), or the commit failed: kept for the next
         * attempt, which the last jc__r_flush reports. */
        if (final) {
            if (r->nqueue)
                jc__r_note_store_error(r, rc);
            jc__cache_drop_pending(r->cache); /* hit counts are bookkeeping: dropped, not retried forever */
            r->unstored += r->nqueue;
            done = r->nqueue; /* what was queued is lost to the file, not to the caller */
        }
    }
    for (size_t i = 0; i < done; i++) {
        r->queued_bytes -= r->queue[i].blob ? r->queue[i].blob_len : 0;
        free(r->queue[i].blob);
    }
    memmove(r->queue, r->queue + done, (r->nqueue - done) * sizeof *r->queue);
    r->nqueue -= done;
    r->commit_interval = jc__r_commit_interval(jc__monotonic() - t0);
}

double jc__r_commit_interval(double took)
{
    double interval = COMMIT_SHARE * took;
    return interval < COMMIT_SECONDS ? COMMIT_SECONDS : interval > COMMIT_SECONDS_MAX ? COMMIT_SECONDS_MAX : interval;
}

/* Commits when due: every commit_interval (COMMIT_SECONDS, longer after a
 * slow commit: run_int.h), every COMMIT_EVERY results or COMMIT_BYTES of
 * them, when the run is being interrupted (a second signal may end the program), and,
 * in-process, after every result that took 10 ms or more: the next call
 * runs in this thread and may be long, and what it waits behind would be
 * lost to a kill. Worker backends commit on the timer, since nothing long
 * runs in this thread. */

void jc__r_renew_if_due(run *r)
{
    if (!r->leases)
        return;
    double ttl = r->longest_call * 4 > LEASE_TTL ? r->longest_call * 4 : LEASE_TTL;
    if (ttl > r->lease_ttl)
        r->lease_ttl = ttl;
    if (jc__monotonic() - r->last_renew < r->lease_ttl / 4 && !r->nrelease)
        return;
    if (jc__cache_renew_leases(r->cache, r->release, r->nrelease, r->lease_ttl) == 0)
        r->nrelease = 0;
    r->last_renew = jc__monotonic();
}

void jc__r_flush_if_due(run *r)
{
    if ((r->nqueue || r->nrelease) &&
        (r->nqueue >= COMMIT_EVERY || r->queued_bytes >= COMMIT_BYTES || jc__interrupted ||
         (r->inprocess && r->last_seconds >= 0.01) || r->nrelease ||
         jc__monotonic() - r->last_commit >= r->commit_interval))
        jc__r_flush(r, false);
    jc__r_renew_if_due(r);
}
