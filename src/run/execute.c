/*
 * Executing the misses on a backend: their outcomes delivered as they
 * arrive (stored, counted, shown), progress ticked.
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

void jc__r_update_progress(run *r, size_t running, bool force)
{
    r->p.running = running;
    r->p.elapsed = jc__monotonic() - r->t0;
    if (r->batch->opts.on_progress)
        r->batch->opts.on_progress(&r->p, r->batch->opts.userdata);
    jc__progress_update(&r->line, &r->p, force);
}

static void tick(void *ctx, size_t running)
{
    run *r = ctx;
    jc__r_flush_if_due(r);
    jc__r_update_progress(r, running, false);
}

/* JC_VERBOSE_DETAIL: a line for each failure, and for each tenth of the
 * run finished (joblib's verbose above 1). */
static void detail_lines(run *r, const slot *sl)
{
    if (sl->status != JC_STATUS_OK && sl->error)
        jc__progress_note(&r->line, sl->error);
    size_t tenth = r->p.total ? r->p.done * 10 / r->p.total : 10;
    if (tenth > r->tenths_told && tenth < 10) {
        r->tenths_told = tenth;
        char text[160];
        double elapsed = jc__monotonic() - r->t0;
        snprintf(text, sizeof text, "%zu0%% done (%zu of %zu calls, %zu cached, %zu computed, %zu failed) "
                 "after %.1f s", tenth, r->p.done, r->p.total, r->p.cached, r->p.computed, r->p.failed, elapsed);
        jc__progress_note(&r->line, text);
    }
}

/* A call that crashed or timed out, with retries left (jc_options.retries):
 * queued to run again in the next round, not yet done; true when it is. */
static bool retry(run *r, size_t s, jc__outcome *o)
{
    slot *sl = &r->res->slots[s];
    if ((o->status != JC_STATUS_CRASHED && o->status != JC_STATUS_TIMEOUT) ||
        sl->attempts >= r->batch->opts.retries || r->stopped || jc__interrupted ||
        JC__GROW(r->retry, r->capretry, r->nretry + 1))
        return false;
    sl->attempts++;
    r->retry[r->nretry++] = s;
    r->p.retried++;
    if (r->line.detail && o->error) {
        char text[512];
        snprintf(text, sizeof text, "%s; retried (%d of %d)", o->error, sl->attempts, r->batch->opts.retries);
        jc__progress_note(&r->line, text);
    }
    jc_value_free(o->value);
    o->value = NULL;
    free(o->blob);
    free(o->error);
    o->blob = NULL;
    o->error = NULL;
    return true;
}

static bool deliver(void *ctx, jc__outcome *o)
{
    run *r = ctx;
    r->round_done++;
    size_t s = r->task_slot[o->task];
    slot *sl = &r->res->slots[s];
    const pending *call = &r->batch->calls[sl->first];
    if (retry(r, s, o))
        return r->stopped;
    sl->seconds = o->seconds;
    sl->status = (uint8_t)o->status;
    sl->done = true;
    if (o->status == JC_STATUS_OK && !o->value) {
        if (jc__decode_value(o->blob, o->blob_len, &o->value)) {
            char *desc = jc__call_describe_fn(call->fn, call->argv, call->argc);
            sl->status = JC_STATUS_ERROR;
            o->error = jc__strdup_printf("%s: the result came back undecodable: %s", desc ? desc : call->fn->name,
                                         jc_errmsg());
            free(desc);
        }
    }
    r->last_seconds = o->seconds;
    if (o->seconds > r->longest_call)
        r->longest_call = o->seconds;
    if (sl->status != JC_STATUS_OK)
        jc__r_release_key(r, call->key);
    if (sl->status == JC_STATUS_OK && r->pipe && r->pops->computed(r, s, o->value, &o->blob, &o->blob_len)) {
        char *desc = jc__call_describe_fn(call->fn, call->argv, call->argc);
        sl->status = JC_STATUS_ERROR;
        o->error = jc__strdup_printf("%s: the result cannot be encoded: %s", desc ? desc : call->fn->name,
                                     jc_errmsg());
        free(desc);
        jc__r_release_key(r, call->key);
    }
    if (sl->status == JC_STATUS_OK) {
        sl->value = o->value;
        o->value = NULL;
        r->p.computed += weight(r, s);
        if (r->writable) {
            r->queue[r->nqueue++] = (unstored){.slot = s, .blob = o->blob, .blob_len = o->blob_len,
                                                .seconds = o->seconds};
            r->queued_bytes += o->blob ? o->blob_len : 0;
            o->blob = NULL;
        }
    } else {
        jc_value_free(o->value);
        o->value = NULL;
        sl->error = o->error ? o->error : jc__strdup_printf("%s: failed", call->fn->name);
        o->error = NULL;
        r->p.failed += weight(r, s);
        if (r->batch->opts.on_error == JC_ON_ERROR_STOP)
            r->stopped = true;
    }
    free(o->blob);
    free(o->error);
    r->p.done += weight(r, s);
    if (r->line.detail)
        detail_lines(r, sl);
    jc__r_flush_if_due(r);
    if (r->batch->opts.on_result)
        r->batch->opts.on_result(r->res, sl->first, r->batch->opts.userdata);
    if (r->pipe) { /* the calls that use it: keyed, looked up, added as tasks */
        r->pops->final(r, s);
        int rc = r->pops->propagate(r);
        if (rc)
            jc__r_note_store_error(r, rc);
    }
    return r->stopped;
}

static int round_of(run *r, const sigset_t *taken);

/* Runs r->tasks on the backend, then again those that crashed or timed out
 * while they have retries left. With taken NULL, takes SIGINT/SIGTERM over
 * for the time of it; else they are already taken (the wait for other
 * processes' calls holds them across its rounds), as *taken says. */
int jc__r_execute_with(run *r, const sigset_t *taken)
{
    int rc = round_of(r, taken);
    while (!rc && (r->nretry || (r->pipe && r->pops->pending(r))) && !r->stopped && !jc__interrupted) {
        r->ntasks = 0;
        for (size_t i = 0; i < r->nretry; i++) {
            size_t s = r->retry[i];
            const pending *call = &r->batch->calls[r->res->slots[s].first];
            r->task_slot[r->ntasks] = s;
            r->tasks[r->ntasks++] = (jc__task){.fn = call->fn, .argv = call->argv, .argc = call->argc};
        }
        r->nretry = 0;
        /* A pipeline's calls that became ready as the round ended. */
        if (r->pipe && (rc = r->pops->propagate(r)))
            break;
        if (!r->ntasks)
            break;
        rc = round_of(r, taken);
    }
    r->nretry = 0; /* what an interruption or a stop left: skipped */
    r->ntasks = 0;  /* every task was delivered, or is skipped */
    return rc;
}

/* One round of r->tasks on the backend. */
static int round_of(run *r, const sigset_t *taken)
{
    jc_options *o = &r->batch->opts;
    int want = jc__r_resolve_n_jobs(o->n_jobs);
    /* The backend follows from n_jobs, not from how many misses there are:
     * a single miss of an n_jobs = -1 run still runs isolated in a worker. */
    /* A pipeline's tasks keep coming as their inputs are computed. */
    size_t expect = r->pipe ? r->batch->n : r->ntasks;
    int workers = (size_t)want > expect ? (expect ? (int)expect : 1) : want;
    r->line.workers = workers;
    jc__exec ex = {
        .tasks = r->tasks,
        .ntasks = r->ntasks,
        .capacity = r->batch->n,
        .nworkers = workers,
        .timeout = o->timeout_seconds,
        .memory_limit = o->memory_limit,
        .deliver = deliver,
        .tick = tick,
        .ctx = r,
    };
    jc_backend backend = o->backend;
    if (backend == JC_BACKEND_AUTO && jc__mpi_workers() > 0)
        backend = JC_BACKEND_MPI;
    else if (backend == JC_BACKEND_AUTO)
        backend = want == 1 && o->timeout_seconds == 0 && o->memory_limit == 0 ? JC_BACKEND_INPROCESS
                                                                               : JC_BACKEND_FORK;
    if (backend == JC_BACKEND_MPI) {
        /* Every worker rank (n_jobs does not apply), none idle by design. */
        int ranks = jc__mpi_workers();
        workers = (size_t)ranks > expect ? (expect ? (int)expect : 1) : ranks;
        ex.nworkers = workers;
        r->line.workers = workers;
        r->line.ranks = ranks + 1;
    }
    r->inprocess = backend == JC_BACKEND_INPROCESS;
    r->backend_name = backend == JC_BACKEND_FORK      ? "fork"
                      : backend == JC_BACKEND_THREADS ? "threads"
                      : backend == JC_BACKEND_MPI     ? "mpi"
                                                      : "in-process";
    r->line.backend = r->backend_name;
    r->workers = r->inprocess ? 1 : workers;
    jc__saved_signals saved;
    if (taken)
        ex.interrupts = *taken;
    else
        jc__interrupts_catch(&saved, &ex.interrupts);
    int rc;
    r->ex = &ex;
    r->round_done = 0;
    switch (backend) {
    case JC_BACKEND_FORK: rc = jc__exec_fork(&ex); break;
    case JC_BACKEND_THREADS: rc = jc__exec_threads(&ex); break;
    case JC_BACKEND_MPI: rc = jc__exec_mpi(&ex); break;
    default: rc = jc__exec_inprocess(&ex); break;
    }
    r->ex = NULL;
    if (!taken)
        jc__interrupts_release(&saved);
    jc__interrupt_set_last(rc == JC_EINTR || jc__interrupted ? (jc__interrupted ? jc__interrupted : SIGINT) : 0);
    /* A signal that arrived as the last calls finished still counts: the
     * program asked to stop. */
    if (!rc && jc__interrupted)
        rc = jc__set_error(JC_EINTR, "interrupted by %s", jc__interrupted == SIGTERM ? "SIGTERM" : "SIGINT");
    return rc;
}

int jc__r_execute(run *r)
{
    return jc__r_execute_with(r, NULL);
}
