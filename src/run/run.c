/*
 * The run itself (jc_run): deduplicate, look up, claim, execute, wait for
 * other processes, finish and record.
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


/* Appends the run to the record of runs, with its failures (at most 1000).
 * Bookkeeping: a failure to record changes nothing of the run. */
enum { RECORD_FAILURES = 1000 };

static void record_run(run *r)
{
    jc_results *res = r->res;
    jc__run_failure *fails = calloc(RECORD_FAILURES, sizeof *fails);
    size_t nf = 0;
    for (size_t s = 0; fails && s < res->nslots && nf < RECORD_FAILURES; s++) {
        const slot *sl = &res->slots[s];
        if (sl->status == JC_STATUS_OK || sl->status == JC_STATUS_SKIPPED || !sl->error)
            continue;
        fails[nf].status = jc_status_name((jc_status)sl->status);
        fails[nf++].message = sl->error;
    }
    jc__run_row row = {
        .started = r->started_wall, .ended = jc__now(), .kind = "run",
        .n_jobs = r->workers ? r->workers : 1, .backend = r->backend_name ? r->backend_name : "none",
        .calls = (int64_t)r->p.total, .cached = (int64_t)r->p.cached, .computed = (int64_t)r->p.computed,
        .failed = (int64_t)r->p.failed, .skipped = (int64_t)r->p.skipped, .elapsed = r->p.elapsed,
        .saved = r->p.saved, .status = res->status ? jc_err_name(res->status) : "ok",
        .failures = fails, .nfailures = nf,
    };
    jc__cache_run_evicted(r->cache, &row.evicted, &row.evicted_bytes);
    row.retries = (int64_t)r->p.retried;
    row.inputs_read = (int64_t)r->p.inputs_read;
    jc__cache_record_run(r->cache, &row);
    free(fails);
}

/* Marks what never ran as skipped, and settles the run's status. */
static void finish(run *r, int exec_rc)
{
    jc_results *res = r->res;
    for (size_t s = 0; s < res->nslots; s++) {
        slot *sl = &res->slots[s];
        if (sl->done)
            continue;
        const pending *call = &r->batch->calls[sl->first];
        sl->status = JC_STATUS_SKIPPED;
        sl->done = true;
        sl->error = jc__strdup_printf("%s: skipped: %s", call->fn->name,
                                      exec_rc == JC_EINTR ? "the run was interrupted"
                                      : r->stopped        ? "an earlier call failed (on_error = stop)"
                                                          : "the run stopped early");
        r->p.skipped += weight(r, s);
        r->p.done += weight(r, s);
    }
    if (exec_rc == JC_EINTR) {
        res->status = JC_EINTR;
        res->message = jc__strdup(jc_errmsg());
    } else if (exec_rc) {
        res->status = exec_rc;
        res->message = jc__strdup(jc_errmsg());
    } else if (r->unstored && r->full_msg) {
        res->status = JC_EFULL;
        res->message = jc__strdup_printf("%zu result%s could not be stored (every result is returned; "
                                         "what fitted is stored): %s",
                                         r->unstored, r->unstored == 1 ? "" : "s", r->full_msg);
    } else if (r->store_rc) {
        res->status = JC_EIO;
        res->message = jc__strdup_printf("results could not be stored: %s", r->store_msg);
    } else if (r->p.failed || r->p.skipped) {
        res->status = JC_EFAILED;
        for (size_t s = 0; s < res->nslots; s++)
            if (res->slots[s].status != JC_STATUS_OK && res->slots[s].status != JC_STATUS_SKIPPED) {
                res->message = jc__strdup_printf("%zu of %zu calls failed; the first: %s", r->p.failed,
                                                 r->p.total, res->slots[s].error);
                break;
            }
    }
    if (!res->message && r->evict_msg)
        res->message = jc__strdup(r->evict_msg); /* the status stays: every result is fine */
}

/* With a maximum size, least recently used entries go after the run when
 * the file takes more (the hits of this run count as recent): a check in
 * constant time, and a pass over the entries only when eviction is due
 * (jc__cache_enforce_size). A failure only adds to the results' message:
 * the results themselves are fine and stored. */
static void evict(run *r)
{
    /* (A cache without max_size, or read-only, returns at once.) */
    int rc = jc__cache_enforce_size(r->cache);
    if (rc && !r->evict_msg)
        r->evict_msg = jc__strdup_printf("every result was stored, but evicting down to max_size failed: %s",
                                         jc_errmsg());
}

/* Why b cannot run, with the message set; 0 when it can. */
static int refuse(const jc_batch *b)
{
    if (!b)
        return jc__set_error_null("jc_run", "batch");
    if (b->error)
        return jc__set_error(b->error, "jc_run: the batch has a bad call: %s", b->errmsg ? b->errmsg : "?");
    if (b->ran)
        return jc__set_error(JC_EINVAL, "jc_run: this batch has already run; make a new one");
    return 0;
}

/* JOBCACHE_DRY_RUN, as make -n: the plan, then the end of the program,
 * computing nothing (skipped results would let it write empty outputs).
 * Returns only when the variable is unset or off (0), or bad (negative). */
static int dry_run_and_exit(jc_batch *b)
{
    bool dry = false;
    if (jc__env_bool(b->cache, "JOBCACHE_DRY_RUN", &dry) < 0)
        return jc__set_error(JC_EINVAL, "jc_run: %s", jc_errmsg());
    if (!dry)
        return 0;
    jc_plan_info plan;
    if (jc_plan(b, &plan) == 0) {
        char *text = jc_plan_text(&plan);
        /* The summary's line, the cache, then a pipeline's stages. */
        const char *stages = text ? strchr(text, '\n') : NULL;
        fprintf(stderr, "jobcache: dry run (JOBCACHE_DRY_RUN): %.*s; cache %s%s\n",
                text ? (int)(stages ? (size_t)(stages - text) : strlen(text)) : 1, text ? text : "?",
                jc_cache_path(b->cache) ? jc_cache_path(b->cache) : "disabled", stages ? stages : "");
        free(text);
        fflush(NULL);
        exit(0);
    }
    fprintf(stderr, "jobcache: dry run (JOBCACHE_DRY_RUN): no plan: %s\n", jc_errmsg());
    fflush(NULL);
    exit(2);
}

/* The run's state and its results, allocated for b's calls; 0 or
 * JC_ENOMEM (what was allocated is freed by release). */
static int start(run *r, jc_batch *b)
{
    *r = (run){.batch = b, .cache = b->cache, .t0 = jc__monotonic(), .started_wall = jc__now()};
    r->last_commit = r->t0;
    r->commit_interval = COMMIT_SECONDS;
    r->writable = jc__cache_writable(b->cache);
    jc__cache_want_created(b->cache, b->opts.expires_after > 0);
    r->p.total = b->n;
    jc__progress_init(&r->line, b->opts.verbose);
    jc_results *res = r->res = calloc(1, sizeof *res);
    size_t n = b->n ? b->n : 1;
    if (res) {
        res->n = b->n;
        res->slot_of = malloc(n * sizeof *res->slot_of);
        res->slots = calloc(n, sizeof *res->slots);
    }
    r->tasks = malloc(n * sizeof *r->tasks);
    r->task_slot = malloc(n * sizeof *r->task_slot);
    r->queue = malloc(n * sizeof *r->queue);
    if (!res || !res->slot_of || !res->slots || !r->tasks || !r->task_slot || !r->queue)
        return jc__set_error(JC_ENOMEM, "jc_run: out of memory for %zu calls", b->n);
    return 0;
}

/* The distinct calls, and how many submissions share each; then the
 * cache's answers for them. */
static int deduplicate_and_look_up(run *r)
{
    jc_results *res = r->res;
    if (r->batch->with_inputs) { /* a pipeline: each call as its inputs are known */
        int rc = jc__p_start(r);
        return rc ? rc : r->pops->propagate(r);
    }
    int rc = jc__r_dedup(r->batch, res);
    if (rc)
        return rc;
    for (size_t i = 0; i < r->batch->n; i++) {
        res->slots[res->slot_of[i]].nsubs++;
        res->slots[res->slot_of[i]].refs++;
    }
    return jc__r_lookup(r);
}

/* The misses: claimed, computed on the backend, others' waited for, all
 * stored. Returns the execution's code (JC_EINTR when interrupted). */
static int compute(run *r)
{
    jc__r_update_progress(r, 0, false);
    int exec_rc = jc__r_claim_misses(r);
    if (!exec_rc && r->pipe) { /* calls found stored meanwhile at the claim: their users */
        int prc = r->pops->propagate(r);
        if (prc)
            jc__r_note_store_error(r, prc);
    }
    for (;;) {
        if (!exec_rc && r->ntasks)
            exec_rc = jc__r_execute(r);
        if (exec_rc || !r->nwaiting || r->stopped)
            break;
        jc__r_flush(r, false); /* this run's own results first: others may wait for them */
        /* A failure while waiting (the store unreadable a moment) keeps
         * every result already had: the calls still awaited are skipped
         * and the run reports why. */
        int wrc = jc__r_wait_for_others(r);
        if (wrc == JC_EINTR)
            exec_rc = wrc;
        else if (wrc)
            jc__r_note_store_error(r, wrc);
        /* A pipeline's calls that use what the wait brought: computed next. */
        if (wrc || !r->pipe || !r->ntasks)
            break;
    }
    jc__r_flush(r, true);
    if (r->leases)
        jc__cache_lease_end(r->cache);
    evict(r);
    jc__r_warn_code_changes(r);
    return exec_rc;
}

/* Failed calls named after the summary line, at most this many (all of
 * them are in the record of runs: jobcache log --failed). */
enum { FAILURE_LINES = 10 };

/* The lines after the summary: each failed call (up to FAILURE_LINES;
 * JC_VERBOSE_DETAIL named each as it came), then what was not stored. */
static void tell_failures(run *r)
{
    const jc_results *res = r->res;
    size_t shown = 0, failed = 0;
    for (size_t s = 0; s < res->nslots; s++) {
        const slot *sl = &res->slots[s];
        if (sl->status == JC_STATUS_OK || sl->status == JC_STATUS_SKIPPED)
            continue;
        failed++;
        if (!r->line.detail && shown < FAILURE_LINES && sl->error) {
            jc__progress_note(&r->line, sl->error);
            shown++;
        }
    }
    if (!r->line.detail && failed > shown) {
        char text[160];
        snprintf(text, sizeof text, "... and %zu more failed call%s (jobcache log --failed lists them)",
                 failed - shown, failed - shown == 1 ? "" : "s");
        jc__progress_note(&r->line, text);
    }
    if ((r->unstored || r->store_rc || r->evict_msg) && res->message)
        jc__progress_note(&r->line, res->message);
}

/* The summary: statuses settled, progress finished (told on stderr,
 * terminal or not, when the run has something to say), the run recorded. */
static void report(run *r, int exec_rc)
{
    jc_batch *b = r->batch;
    if (r->pipe)
        jc__p_finish(r, exec_rc);
    finish(r, exec_rc);
    r->p.elapsed = jc__monotonic() - r->t0;
    r->p.running = 0;
    r->res->summary = r->p;
    if (b->opts.on_progress)
        b->opts.on_progress(&r->p, b->opts.userdata);
    bool interrupted = exec_rc == JC_EINTR;
    int64_t evicted = 0, evicted_bytes = 0;
    jc__cache_run_evicted(r->cache, &evicted, &evicted_bytes);
    /* Evictions are told as failures are (issue 23: an absurd max_size
     * emptied a cache without a word), as ccache counts its cleanups. */
    bool alarm = r->p.failed || interrupted || r->unstored || r->store_rc || r->evict_msg || evicted;
    char note[320] = "";
    if (evicted)
        snprintf(note, sizeof note, "; evicted %lld entr%s (%lld bytes of payload) to stay within max_size",
                 (long long)evicted, evicted == 1 ? "y" : "ies", (long long)evicted_bytes);
    if (interrupted)
        snprintf(note + strlen(note), sizeof note - strlen(note),
                 "; interrupted by %s: what finished is stored, and a rerun computes "
                 "the %zu call%s left", jc__interrupted == SIGTERM ? "SIGTERM" : "SIGINT", r->p.skipped,
                 r->p.skipped == 1 ? "" : "s");
    jc__progress_finish(&r->line, &r->p, jc_cache_path(b->cache), note, alarm);
    if (jc__progress_tells(&r->line, alarm))
        tell_failures(r);
    record_run(r);
}

/* Frees the run's state (not its results). */
static void release(run *r)
{
    jc__p_free(r);
    free(r->tasks);
    free(r->task_slot);
    for (size_t i = 0; i < r->nqueue; i++) /* results the file could not take */
        free(r->queue[i].blob);
    free(r->queue);
    free(r->evict_msg);
    free(r->changed);
    free(r->full_msg);
    free(r->waiting);
    free(r->retry);
    free(r->release);
    if (r->busy_spent > 0)
        jc__cache_lock_wait(r->cache, true);
    jc__cache_want_created(r->cache, false);
    jc__cache_run_end(r->cache);
    free(r->store_msg);
}

/* Frees results that are not handed over, keeping the thread's message. */
static void discard(jc_results *res, int rc)
{
    char *msg = jc__strdup(jc_errmsg());
    if (res) {
        if (res->slots && res->slot_of)
            jc__r_results_free_slots(res);
        free(res->slots);
        free(res->slot_of);
        free(res);
    }
    jc__set_error(rc, "%s", msg ? msg : jc_strerror(rc));
    free(msg);
}

jc_results *jc_run(jc_batch *b)
{
    if (refuse(b) || dry_run_and_exit(b) || jc__cache_run_start(b->cache))
        return NULL;
    b->ran = true;
    jc__interrupt_set_last(0);

    run r;
    int rc = start(&r, b);
    if (!rc)
        rc = deduplicate_and_look_up(&r);
    if (!rc) {
        int exec_rc = compute(&r);
        if (exec_rc && exec_rc != JC_EINTR && r.p.done == r.p.cached)
            rc = exec_rc; /* the backend could not start at all */
        else
            report(&r, exec_rc);
    }
    jc__progress_release(&r.line); /* SIGWINCH back as it was, whatever happened */
    if (rc && r.res && r.res->slots)
        jc__r_flush(&r, true); /* keep whatever was computed before the failure */
    release(&r);
    /* The signal that stopped this run is kept for jc_interrupted_signal;
     * what the program does next (jc_memo, inspection, the next run's
     * lookups and claims) is not interrupted by it: the stores' waits read
     * the flag (no lock waited for while it is set). */
    jc__interrupted = 0;
    if (rc) {
        discard(r.res, rc);
        return NULL;
    }
    return r.res;
}
