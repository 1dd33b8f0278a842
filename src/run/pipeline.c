/*
 * Pipelines: calls that take other calls' results (jc_use). A call is keyed
 * once its inputs' results are known (by their digests), deduplicated,
 * looked up, and made a task as soon as it misses, while the run goes on:
 * a call does not wait for more than its own inputs. docs/pipelines.md
 * gives the rules; this file is their bookkeeping.
 *
 * Each submission of the batch is settled once: when the slot it belongs
 * to (its distinct call) has its final status. Settling a submission tells
 * each call that uses it: with a result, one input fewer to wait for (at
 * none, the call is ready: keyed, then joined to an identical call or
 * looked up); with a failure, the call is skipped, naming the input, and
 * settled in turn. The work goes through queues, never by recursion, so
 * that a chain of 100,000 calls takes no stack; and never from inside a
 * lookup's callback (the store is not to be called from there).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"
#include "run_int.h"

struct jc__pipe {
    size_t n;          /* submissions */
    size_t *dep_at;    /* the calls that use submission j: deps[dep_at[j] .. dep_at[j + 1]) */
    size_t *deps;
    uint32_t *missing; /* per submission: inputs not yet known */
    size_t *next_sub;  /* per submission: the next of its slot, SIZE_MAX at the end */
    size_t *last_sub;  /* per slot: the last submission of its chain */
    size_t *users;     /* per slot: uses of its result (by calls not yet settled) */
    uint8_t (*check)[16]; /* per slot: the digest of its result */
    bool *wanted;      /* per slot: a submission not marked intermediate */
    size_t *table;     /* key -> slot + 1, open addressing */
    size_t cap;
    size_t *settle;    /* FIFO of submissions to settle (each once) */
    size_t settle_head, settle_tail;
    size_t *ready;     /* calls whose inputs are all known */
    size_t nready;
    size_t *fresh;     /* slots to look up */
    size_t nfresh;
    bool busy;         /* propagating (re-entry from a lookup's callback is refused) */
};

static void p_slot_final(run *r, size_t s);
static void p_found(run *r, size_t s, const jc__found *f);
static int p_computed(run *r, size_t s, const jc_value *value, void **blob, size_t *len);
static int p_propagate(run *r);
static bool p_pending(const run *r);

static const jc__pipe_ops ops = {
    .found = p_found, .computed = p_computed, .final = p_slot_final, .propagate = p_propagate, .pending = p_pending,
};

/* ---- slots by key ---- */

static size_t *table_at(jc__pipe *p, const jc_results *res, const jc_batch *b, const uint8_t *key)
{
    uint64_t h;
    memcpy(&h, key, sizeof h);
    size_t at = (size_t)h & (p->cap - 1);
    while (p->table[at] &&
           memcmp(b->calls[res->slots[p->table[at] - 1].first].key, key, JC__KEY_LEN) != 0)
        at = (at + 1) & (p->cap - 1);
    return &p->table[at];
}

/* Submission j joins slot s (a new one when s == nslots). */
static void join(run *r, size_t j, size_t s)
{
    jc__pipe *p = r->pipe;
    jc_results *res = r->res;
    const pending *call = &r->batch->calls[j];
    if (s == res->nslots) {
        res->nslots++;
        res->slots[s] = (slot){.first = j};
        p->last_sub[s] = j;
        p->users[s] = 0;
        p->wanted[s] = false;
    } else {
        p->next_sub[p->last_sub[s]] = j;
        p->last_sub[s] = j;
    }
    p->next_sub[j] = SIZE_MAX;
    res->slot_of[j] = s;
    res->slots[s].nsubs++;
    res->slots[s].refs++;
    p->users[s] += p->dep_at[j + 1] - p->dep_at[j];
    if (!call->intermediate)
        p->wanted[s] = true;
}

/* ---- setting up ---- */

int jc__p_start(run *r)
{
    jc_batch *b = r->batch;
    size_t n = b->n ? b->n : 1;
    jc__pipe *p = r->pipe = calloc(1, sizeof *p);
    r->pops = &ops;
    if (!p)
        return jc__set_error(JC_ENOMEM, "jc_run: out of memory for a pipeline of %zu calls", b->n);
    p->n = b->n;
    size_t edges = 0;
    for (size_t i = 0; i < b->n; i++)
        edges += b->calls[i].ninputs;
    p->cap = 16;
    while (p->cap < 2 * n)
        p->cap *= 2;
    p->dep_at = calloc(n + 1, sizeof *p->dep_at);
    p->deps = malloc((edges ? edges : 1) * sizeof *p->deps);
    p->missing = malloc(n * sizeof *p->missing);
    p->next_sub = malloc(n * sizeof *p->next_sub);
    p->last_sub = malloc(n * sizeof *p->last_sub);
    p->users = calloc(n, sizeof *p->users);
    p->check = malloc(n * sizeof *p->check);
    p->wanted = calloc(n, sizeof *p->wanted);
    p->table = calloc(p->cap, sizeof *p->table);
    p->settle = malloc(n * sizeof *p->settle);
    p->ready = malloc(n * sizeof *p->ready);
    p->fresh = malloc(n * sizeof *p->fresh);
    if (!p->dep_at || !p->deps || !p->missing || !p->next_sub || !p->last_sub || !p->users || !p->check ||
        !p->wanted || !p->table || !p->settle || !p->ready || !p->fresh)
        return jc__set_error(JC_ENOMEM, "jc_run: out of memory for a pipeline of %zu calls", b->n);
    /* The calls that use each submission, as compressed rows. */
    for (size_t i = 0; i < b->n; i++)
        for (uint32_t k = 0; k < b->calls[i].ninputs; k++)
            p->dep_at[b->calls[i].inputs[k] + 1]++;
    for (size_t j = 0; j < b->n; j++)
        p->dep_at[j + 1] += p->dep_at[j];
    size_t *fill = malloc(n * sizeof *fill);
    if (!fill)
        return jc__set_error(JC_ENOMEM, "jc_run: out of memory for a pipeline of %zu calls", b->n);
    memcpy(fill, p->dep_at, n * sizeof *fill);
    for (size_t i = 0; i < b->n; i++) {
        p->missing[i] = b->calls[i].ninputs;
        for (uint32_t k = 0; k < b->calls[i].ninputs; k++)
            p->deps[fill[b->calls[i].inputs[k]]++] = i;
    }
    free(fill);
    /* The calls with no input are keyed already: one slot per key. */
    jc_results *res = r->res;
    for (size_t i = 0; i < b->n; i++) {
        res->slot_of[i] = SIZE_MAX;
        if (b->calls[i].ninputs)
            continue;
        size_t *at = table_at(p, res, b, b->calls[i].key);
        size_t s = *at ? *at - 1 : res->nslots;
        if (!*at)
            *at = s + 1;
        join(r, i, s);
    }
    for (size_t s = 0; s < res->nslots; s++)
        p->fresh[p->nfresh++] = s;
    return 0;
}

void jc__p_free(run *r)
{
    jc__pipe *p = r->pipe;
    if (!p)
        return;
    free(p->dep_at);
    free(p->deps);
    free(p->missing);
    free(p->next_sub);
    free(p->last_sub);
    free(p->users);
    free(p->check);
    free(p->wanted);
    free(p->table);
    free(p->settle);
    free(p->ready);
    free(p->fresh);
    free(p);
    r->pipe = NULL;
    r->pops = NULL;
}

/* ---- settling ---- */

/* Every submission of slot s is settled: s has its final status. */
static void p_slot_final(run *r, size_t s)
{
    jc__pipe *p = r->pipe;
    for (size_t j = r->res->slots[s].first; j != SIZE_MAX; j = p->next_sub[j])
        p->settle[p->settle_tail++] = j;
}

/* A hit: its digest, and its value counted when it is an input. */
static void p_found(run *r, size_t s, const jc__found *f)
{
    jc__pipe *p = r->pipe;
    memcpy(p->check[s], f->check, 16);
    if (f->value && p->users[s])
        r->p.inputs_read++;
}

/* A computed result: its digest, from its exact encoding (kept for the
 * store in *blob when it had none). 0 or a negative code. */
static int p_computed(run *r, size_t s, const jc_value *value, void **blob, size_t *len)
{
    if (!*blob) {
        jc__buf b = {0};
        int rc = jc__encode_result(value, jc__buf_write, &b);
        if (!rc && b.oom)
            rc = jc__set_error(JC_ENOMEM, "out of memory encoding a result");
        if (rc) {
            jc__buf_free(&b);
            return rc;
        }
        *blob = b.data;
        *len = b.len;
    }
    jc__result_check(*blob, *len, r->pipe->check[s]);
    return 0;
}

/* Calls fn(r, ref, ctx) on each reference in call's arguments, depth first
 * (jc__value_each_ref). */
typedef int (*ref_fn)(run *r, jc_value *ref, void *ctx);
typedef struct ref_walk {
    run *r;
    ref_fn fn;
    void *ctx;
} ref_walk;

static int walk_one(jc_value *ref, void *ctx)
{
    ref_walk *w = ctx;
    return w->fn(w->r, ref, w->ctx);
}

static int each_ref_of(run *r, const pending *call, ref_fn fn, void *ctx)
{
    ref_walk w = {r, fn, ctx};
    for (size_t i = 0; i < call->argc; i++) {
        int rc = jc__value_each_ref(call->argv[i], walk_one, &w);
        if (rc)
            return rc;
    }
    return 0;
}

/* Counts submission d (joined to slot s, already final) as its slot is. */
static void count_joined(run *r, size_t s)
{
    const slot *sl = &r->res->slots[s];
    r->p.done++;
    if (sl->status == JC_STATUS_OK && sl->cached) {
        r->p.cached++;
        r->p.saved += sl->seconds;
    } else if (sl->status == JC_STATUS_OK) {
        r->p.computed++;
    } else if (sl->status == JC_STATUS_SKIPPED) {
        r->p.skipped++;
    } else {
        r->p.failed++;
    }
}

/* Call d ends without running: a slot of its own, status and message;
 * settled, so that the calls using it end too. */
static void end_call(run *r, size_t d, jc_status status, char *msg)
{
    jc_results *res = r->res;
    size_t s = res->nslots;
    join(r, d, s);
    slot *sl = &res->slots[s];
    sl->status = (uint8_t)status;
    sl->done = true;
    sl->error = msg ? msg : jc__strdup_printf("%s: skipped", r->batch->calls[d].fn->name);
    r->p.done++;
    if (status == JC_STATUS_SKIPPED)
        r->p.skipped++;
    else
        r->p.failed++;
    p_slot_final(r, s);
}

/* "evaluate(<result of call 1>, 0.5): skipped: input 1, train(0.3): diverged" */
static void skip_for_input(run *r, size_t d, size_t j)
{
    const pending *call = &r->batch->calls[d];
    uint32_t k = 0;
    while (k < call->ninputs && call->inputs[k] != j)
        k++;
    const slot *in = &r->res->slots[r->res->slot_of[j]];
    char *desc = jc__call_describe_fn(call->fn, call->argv, call->argc);
    char *msg = jc__strdup_printf("%s: skipped: input %u, %s", desc ? desc : call->fn->name, k + 1,
                                  in->error ? in->error : jc_status_name((jc_status)in->status));
    free(desc);
    end_call(r, d, JC_STATUS_SKIPPED, msg);
}

/* Settles submission j: its uses of inputs end, and the calls that use it
 * learn its result. */
static void settle(run *r, size_t j)
{
    jc__pipe *p = r->pipe;
    jc_results *res = r->res;
    const pending *call = &r->batch->calls[j];
    /* Its inputs are no longer needed by it: an intermediate result that no
     * call still needs leaves memory. */
    for (uint32_t k = 0; k < call->ninputs; k++) {
        size_t in = res->slot_of[call->inputs[k]];
        if (in == SIZE_MAX || !p->users[in] || --p->users[in])
            continue;
        if (!p->wanted[in] && res->slots[in].done) {
            jc_value_free(res->slots[in].value);
            res->slots[in].value = NULL;
        }
    }
    const slot *sl = &res->slots[res->slot_of[j]];
    for (size_t e = p->dep_at[j]; e < p->dep_at[j + 1]; e++) {
        size_t d = p->deps[e];
        if (res->slot_of[d] != SIZE_MAX)
            continue; /* ended already (another input failed) */
        if (sl->status != JC_STATUS_OK)
            skip_for_input(r, d, j);
        else if (--p->missing[d] == 0)
            p->ready[p->nready++] = d;
    }
}

/* ---- keying the ready calls ---- */

static int set_digest(run *r, jc_value *ref, void *ctx)
{
    (void)ctx;
    size_t s = r->res->slot_of[ref->u.ref.index];
    return jc__ref_resolve(ref, r->pipe->check[s], NULL);
}

/* Call d, whose inputs are all known: keyed, then joined to the slot of an
 * identical call, or given one of its own to look up. */
static void key_ready(run *r, size_t d)
{
    jc__pipe *p = r->pipe;
    jc_results *res = r->res;
    pending *call = &r->batch->calls[d];
    int rc = each_ref_of(r, call, set_digest, NULL);
    if (!rc)
        rc = jc__r_call_key(call->fn, call->argv, call->argc, call->key);
    if (rc) {
        char *desc = jc__call_describe_fn(call->fn, call->argv, call->argc);
        end_call(r, d, JC_STATUS_ERROR, jc__strdup_printf("%s: %s", desc ? desc : call->fn->name, jc_errmsg()));
        free(desc);
        return;
    }
    size_t *at = table_at(p, res, r->batch, call->key);
    if (*at) {
        size_t s = *at - 1;
        join(r, d, s);
        if (res->slots[s].done) {
            count_joined(r, s);
            p->settle[p->settle_tail++] = d;
        }
        return;
    }
    size_t s = res->nslots;
    *at = s + 1;
    join(r, d, s);
    p->fresh[p->nfresh++] = s;
}

/* ---- looking up and making tasks ---- */

typedef struct fresh_ctx {
    run *r;
    const size_t *slots;
} fresh_ctx;

static void on_found_fresh(void *ctx, size_t i, jc__found *f)
{
    fresh_ctx *fc = ctx;
    jc__r_on_found(fc->r, fc->slots[i], f);
}

/* The value of input slot s in memory: read from the cache when only its
 * digest was (a hit of an intermediate call). 0, or a negative code when
 * the entry is gone or damaged since. */
static int load_input(run *r, size_t s)
{
    slot *sl = &r->res->slots[s];
    if (sl->value)
        return 0;
    jc__found f;
    const pending *call = &r->batch->calls[sl->first];
    int rc = jc__cache_lookup(r->cache, call->key, &f);
    if (rc == 1) {
        sl->value = f.value;
        r->p.inputs_read++;
        return 0;
    }
    return rc < 0 ? rc
                  : jc__set_error(JC_EIO, "its cached result could not be read again (removed or damaged since "
                                          "it was looked up); run again");
}

static int set_target(run *r, jc_value *ref, void *ctx)
{
    (void)ctx;
    size_t s = r->res->slot_of[ref->u.ref.index];
    int rc = load_input(r, s);
    if (rc) {
        *(size_t *)ctx = ref->u.ref.index;
        return rc;
    }
    ref->u.ref.target = r->res->slots[s].value;
    return 0;
}

/* Slot s, a miss, becomes a task, its references pointing at their
 * results; false when an input cannot be had (the call is then skipped). */
static bool make_task(run *r, size_t s)
{
    slot *sl = &r->res->slots[s];
    const pending *call = &r->batch->calls[sl->first];
    size_t bad = SIZE_MAX;
    if (call->ninputs && each_ref_of(r, call, set_target, &bad)) {
        uint32_t k = 0;
        while (k < call->ninputs && call->inputs[k] != bad)
            k++;
        char *desc = jc__call_describe_fn(call->fn, call->argv, call->argc);
        sl->status = JC_STATUS_SKIPPED;
        sl->done = true;
        sl->error = jc__strdup_printf("%s: skipped: input %u: %s", desc ? desc : call->fn->name, k + 1, jc_errmsg());
        free(desc);
        r->p.skipped += weight(r, s);
        r->p.done += weight(r, s);
        p_slot_final(r, s);
        return false;
    }
    r->task_slot[r->ntasks] = s;
    r->tasks[r->ntasks++] = (jc__task){.fn = call->fn, .argv = call->argv, .argc = call->argc};
    return true;
}

/* Looks the fresh slots up (a hit of an intermediate call by its digest
 * alone), settles the hits and makes tasks of the misses, claimed. */
static int look_up_fresh(run *r)
{
    jc__pipe *p = r->pipe;
    size_t n = p->nfresh;
    p->nfresh = 0;
    size_t *want = malloc(n * sizeof *want), *bare = malloc(n * sizeof *bare);
    const uint8_t **keys = malloc(n * sizeof *keys);
    if (!want || !bare || !keys) {
        free(want);
        free(bare);
        free(keys);
        return jc__set_error(JC_ENOMEM, "out of memory looking up %zu calls", n);
    }
    size_t nwant = 0, nbare = 0;
    for (size_t i = 0; i < n; i++) {
        size_t s = p->fresh[i];
        if (p->wanted[s])
            want[nwant++] = s;
        else
            bare[nbare++] = s;
    }
    size_t damaged = jc__cache_damaged(r->cache);
    if (r->leases || !r->ntasks) /* what another process stores from here is looked again at the claim */
        r->lookup_version = jc__cache_data_version(r->cache);
    int rc = 0;
    for (int pass = 0; pass < 2 && !rc; pass++) {
        const size_t *slots = pass ? bare : want;
        size_t k = pass ? nbare : nwant;
        for (size_t i = 0; i < k; i++)
            keys[i] = r->batch->calls[r->res->slots[slots[i]].first].key;
        fresh_ctx fc = {r, slots};
        rc = pass ? jc__cache_lookup_checks(r->cache, keys, k, on_found_fresh, &fc)
                  : jc__cache_lookup_many(r->cache, keys, k, on_found_fresh, &fc);
    }
    r->p.damaged += jc__cache_damaged(r->cache) - damaged;
    size_t from = r->ntasks;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t s = p->fresh[i];
        slot *sl = &r->res->slots[s];
        if (sl->done) { /* settled by jc__r_on_found */
            if (r->batch->opts.on_result)
                r->batch->opts.on_result(r->res, sl->first, r->batch->opts.userdata);
        } else {
            make_task(r, s);
        }
    }
    free(want);
    free(bare);
    free(keys);
    if (!rc && r->leases && r->ntasks > from)
        jc__r_claim_from(r, from);
    if (r->ex)
        r->ex->ntasks = r->ntasks; /* a running backend takes them too */
    return rc;
}

/* While a backend runs, calls that became ready are looked up (and
 * claimed: a write transaction) in groups: at FRESH_BATCH of them, or when
 * the backend is about to run out of work. */
enum { FRESH_BATCH = 256 };

static bool look_up_now(const run *r)
{
    const jc__pipe *p = r->pipe;
    if (!p->nfresh)
        return false;
    if (!r->ex)
        return true;
    size_t undone = r->ntasks - r->round_done;
    return p->nfresh >= FRESH_BATCH || undone <= 2 * (size_t)(r->ex->nworkers > 0 ? r->ex->nworkers : 1);
}

static int p_propagate(run *r)
{
    jc__pipe *p = r->pipe;
    if (!p || p->busy)
        return 0;
    p->busy = true;
    int rc = 0;
    while (!rc && (p->settle_head < p->settle_tail || p->nready || look_up_now(r))) {
        while (p->settle_head < p->settle_tail)
            settle(r, p->settle[p->settle_head++]);
        while (p->nready)
            key_ready(r, p->ready[--p->nready]);
        if (look_up_now(r))
            rc = look_up_fresh(r);
    }
    p->busy = false;
    return rc;
}

static bool p_pending(const run *r)
{
    return r->pipe && (r->pipe->nfresh || r->pipe->nready || r->pipe->settle_head < r->pipe->settle_tail);
}

/* ---- the end ---- */

void jc__p_finish(run *r, int exec_rc)
{
    jc__pipe *p = r->pipe;
    jc_results *res = r->res;
    const char *why = exec_rc == JC_EINTR ? "the run was interrupted"
                      : r->stopped        ? "an earlier call failed (on_error = stop)"
                                          : "an input was not computed";
    /* Calls still waiting for an input never got a key, nor a slot. */
    for (size_t d = 0; d < p->n; d++) {
        if (res->slot_of[d] != SIZE_MAX)
            continue;
        const pending *call = &r->batch->calls[d];
        char *desc = jc__call_describe_fn(call->fn, call->argv, call->argc);
        end_call(r, d, JC_STATUS_SKIPPED,
                 jc__strdup_printf("%s: skipped: %s", desc ? desc : call->fn->name, why));
        free(desc);
    }
    p->settle_head = p->settle_tail; /* nothing is waiting on them any more */
    for (size_t s = 0; s < res->nslots; s++) {
        slot *sl = &res->slots[s];
        if (!p->wanted[s]) { /* intermediate: stored, not handed back */
            jc_value_free(sl->value);
            sl->value = NULL;
        } else if (sl->done && sl->status == JC_STATUS_OK && !sl->value && sl->cached) {
            /* A hit looked up by its digest alone, that a wanted call joined. */
            jc__found f;
            if (jc__cache_lookup(r->cache, r->batch->calls[sl->first].key, &f) == 1)
                sl->value = f.value;
        }
    }
}
