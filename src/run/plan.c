/*
 * Plans: what a run would do (jc_plan, jc_plan_text), without doing it.
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
#include "util/grow.h"

/* ---- plans ----
 *
 * Calls are planned by stage: a call's level is 0 when it takes no other
 * call's result, else one more than its deepest input's. Level by level,
 * every call is keyed (a reference by its input's digest), merged with
 * identical calls, and the new keys looked up in one pass: those of level 0
 * with their values (as the run reads them), the others by digest alone.
 * A call with an input to compute is keyed by a stand-in for that input
 * (so that identical calls still merge) and not looked up. */

enum { P_LOOK, P_HIT, P_COMPUTE, P_AFTER }; /* what a distinct call is */

typedef struct plan_ctx {
    jc_batch *b;
    size_t *slot_of;  /* call -> distinct call */
    size_t *first;    /* distinct call -> its first call */
    uint8_t *state;   /* per distinct call */
    bool *has_check;
    uint8_t (*check)[16];
    size_t nslots;
    size_t *table;    /* key -> distinct call + 1, 0 empty */
    size_t cap;
    const size_t *look; /* the distinct calls being looked up */
    size_t cached, expired;
    double expires_after, now;
} plan_ctx;

static void plan_found(void *ctx, size_t i, jc__found *f)
{
    plan_ctx *p = ctx;
    size_t s = p->look[i];
    jc_value_free(f->value);
    if (p->expires_after > 0 && f->created < p->now - p->expires_after) {
        p->expired++; /* computed again, as the run would */
        return;
    }
    if (p->state[s] == P_LOOK) {
        p->state[s] = P_HIT;
        p->has_check[s] = f->has_check;
        memcpy(p->check[s], f->check, 16);
        p->cached++;
    }
}

/* The reference's digest: its input's, or a stand-in naming the input when
 * the input is to be computed (*after is set then). */
typedef struct ref_ctx {
    plan_ctx *p;
    bool after;
} ref_ctx;

static int plan_ref(jc_value *ref, void *ctx)
{
    ref_ctx *rc = ctx;
    plan_ctx *p = rc->p;
    size_t s = p->slot_of[ref->u.ref.index];
    if (p->state[s] == P_HIT && p->has_check[s])
        return jc__ref_resolve(ref, p->check[s], NULL);
    rc->after = true;
    uint8_t stand_in[16];
    memset(stand_in, 0xa5, sizeof stand_in);
    memcpy(stand_in, &s, sizeof s);
    return jc__ref_resolve(ref, stand_in, NULL);
}

/* The distinct call of call i (keyed): an earlier one with its key, or a new
 * one. */
static size_t plan_slot(plan_ctx *p, size_t i, uint8_t state)
{
    const uint8_t *key = p->b->calls[i].key;
    uint64_t h;
    memcpy(&h, key, sizeof h);
    for (size_t at = (size_t)h & (p->cap - 1);; at = (at + 1) & (p->cap - 1)) {
        if (!p->table[at]) {
            size_t s = p->nslots++;
            p->first[s] = i;
            p->state[s] = state;
            p->table[at] = s + 1;
            return s;
        }
        size_t s = p->table[at] - 1;
        if (memcmp(p->b->calls[p->first[s]].key, key, JC__KEY_LEN) == 0)
            return s;
    }
}

static void free_stages(jc_batch *b)
{
    for (size_t k = 0; k < b->nplan_stages; k++)
        free((char *)b->plan_stages[k].function);
    free(b->plan_stages);
    b->plan_stages = NULL;
    b->nplan_stages = 0;
}

/* The stage of fn among b's, added when new; NULL when out of memory. */
static jc_plan_stage *stage_of(jc_batch *b, const jc_function *fn, size_t *cap)
{
    for (size_t k = b->nplan_stages; k-- > 0;)
        if (strcmp(b->plan_stages[k].function, fn->name) == 0)
            return &b->plan_stages[k];
    if (JC__GROW(b->plan_stages, *cap, b->nplan_stages + 1))
        return NULL;
    jc_plan_stage *st = &b->plan_stages[b->nplan_stages];
    *st = (jc_plan_stage){.function = strdup(fn->name)};
    if (!st->function)
        return NULL;
    b->nplan_stages++;
    return st;
}

/* Keys, merges and looks up the calls, level by level. */
static int plan_levels(plan_ctx *p)
{
    jc_batch *b = p->b;
    size_t n = b->n;
    uint32_t *level = malloc((n ? n : 1) * sizeof *level);
    size_t *at = NULL, *order = NULL, *look = malloc((n ? n : 1) * sizeof *look);
    uint32_t top = 0;
    bool ok = level && look;
    for (size_t i = 0; ok && i < n; i++) {
        level[i] = 0;
        for (uint32_t k = 0; k < b->calls[i].ninputs; k++)
            if (level[b->calls[i].inputs[k]] + 1 > level[i])
                level[i] = level[b->calls[i].inputs[k]] + 1;
        if (level[i] > top)
            top = level[i];
    }
    /* The calls of each level together, in submission order (a counting
     * sort). */
    if (ok && (!(at = calloc((size_t)top + 2, sizeof *at)) || !(order = malloc((n ? n : 1) * sizeof *order))))
        ok = false;
    if (!ok) {
        free(level);
        free(look);
        free(at);
        return jc__set_error(JC_ENOMEM, "jc_plan: out of memory planning %zu calls", n);
    }
    for (size_t i = 0; i < n; i++)
        at[level[i] + 1]++;
    for (uint32_t l = 0; l <= top; l++)
        at[l + 1] += at[l];
    for (size_t i = 0; i < n; i++)
        order[at[level[i]]++] = i;
    for (uint32_t l = top + 1; l > 0; l--) /* back to the starts */
        at[l] = at[l - 1];
    at[0] = 0;
    p->look = look;
    int rc = 0;
    for (uint32_t l = 0; !rc && l <= top; l++) {
        size_t nlook = 0;
        for (size_t o = at[l]; !rc && o < at[l + 1]; o++) {
            size_t i = order[o];
            pending *call = &b->calls[i];
            ref_ctx refs = {.p = p};
            for (size_t a = 0; !rc && a < call->argc && call->ninputs; a++)
                rc = jc__value_each_ref(call->argv[a], plan_ref, &refs);
            if (!rc && call->ninputs)
                rc = jc__r_call_key(call->fn, call->argv, call->argc, call->key);
            if (rc)
                break;
            size_t before = p->nslots, s = plan_slot(p, i, refs.after ? P_AFTER : P_LOOK);
            p->slot_of[i] = s;
            if (s == before && !refs.after)
                look[nlook++] = s;
        }
        if (rc || !nlook)
            continue;
        const uint8_t **keys = malloc(nlook * sizeof *keys);
        if (!keys) {
            rc = jc__set_error(JC_ENOMEM, "jc_plan: out of memory");
            break;
        }
        for (size_t k = 0; k < nlook; k++)
            keys[k] = b->calls[p->first[look[k]]].key;
        /* Level 0 as the run reads it (the values, checked); the later
         * levels by digest, as the run looks up intermediate calls. */
        rc = l == 0 ? jc__cache_lookup_many(b->cache, keys, nlook, plan_found, p)
                    : jc__cache_lookup_checks(b->cache, keys, nlook, plan_found, p);
        free(keys);
        for (size_t k = 0; k < nlook; k++)
            if (p->state[look[k]] == P_LOOK)
                p->state[look[k]] = P_COMPUTE;
    }
    free(level);
    free(look);
    free(at);
    free(order);
    return rc;
}

int jc_plan(jc_batch *b, jc_plan_info *out)
{
    if (!b || !out)
        return jc__set_error(JC_EINVAL, "jc_plan: NULL %s", b ? "out" : "batch");
    memset(out, 0, sizeof *out);
    if (b->error)
        return jc__set_error(b->error, "jc_plan: the batch has a bad call: %s", b->errmsg ? b->errmsg : "?");
    /* A plan keys the batch's calls with inputs (their references resolved
     * to digests, or stand-ins): harmless before jc_run, which keys them
     * again, wrong during or after it. */
    if (b->ran)
        return jc__set_error(JC_EINVAL, "jc_plan: the batch has run (or is running); plan a batch before its "
                             "jc_run");
    free_stages(b);
    out->calls = b->n;
    out->after_inputs = b->with_inputs;
    out->workers = jc__r_resolve_n_jobs(b->opts.n_jobs);
    size_t n = b->n ? b->n : 1, cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    plan_ctx pc = {.b = b,
                   .slot_of = malloc(n * sizeof *pc.slot_of),
                   .first = malloc(n * sizeof *pc.first),
                   .state = malloc(n),
                   .has_check = calloc(n, sizeof *pc.has_check),
                   .check = malloc(n * sizeof *pc.check),
                   .table = calloc(cap, sizeof *pc.table),
                   .cap = cap,
                   .expires_after = b->opts.expires_after,
                   .now = jc__now()};
    int rc = pc.slot_of && pc.first && pc.state && pc.has_check && pc.check && pc.table
                 ? 0
                 : jc__set_error(JC_ENOMEM, "jc_plan: out of memory planning %zu calls", b->n);
    if (!rc) {
        bool was = jc__cache_want_created(b->cache, pc.expires_after > 0);
        rc = plan_levels(&pc);
        jc__cache_want_created(b->cache, was); /* a plan made during a run leaves the run's as it was */
    }
    jc_stats *st = !rc && jc__cache_has_store(b->cache) ? jc_cache_stats(b->cache) : NULL;
    size_t stage_cap = 0;
    for (size_t i = 0; !rc && i < b->n; i++) { /* calls per stage */
        jc_plan_stage *stage = stage_of(b, b->calls[i].fn, &stage_cap);
        if (!stage)
            rc = jc__set_error(JC_ENOMEM, "jc_plan: out of memory");
        else
            stage->calls++;
    }
    int workers = out->workers > 0 ? out->workers : 1;
    for (size_t s = 0; !rc && s < pc.nslots; s++) {
        const jc_function *fn = b->calls[pc.first[s]].fn;
        jc_plan_stage *stage = stage_of(b, fn, &stage_cap);
        stage->distinct++;
        if (pc.state[s] == P_HIT) {
            stage->cached++;
            continue;
        }
        stage->to_compute++;
        if (pc.state[s] == P_AFTER) {
            stage->because_inputs++;
            out->because_inputs++;
        }
        double mean = -1;
        for (size_t k = 0; st && k < st->nfunctions; k++)
            if (strcmp(st->functions[k].function, fn->name) == 0 && strcmp(st->functions[k].version, fn->version) == 0)
                mean = st->functions[k].mean_seconds;
        if (mean < 0) {
            stage->not_estimated++;
            out->not_estimated++;
        } else {
            stage->estimated_seconds += mean / workers;
            out->estimated_seconds += mean / workers;
        }
    }
    if (!rc) {
        out->distinct = pc.nslots;
        out->cached = pc.cached;
        out->expired = pc.expired;
        out->to_compute = pc.nslots - pc.cached;
        out->nstages = b->nplan_stages;
        out->stages = b->plan_stages;
    } else {
        free_stages(b);
    }
    jc_stats_free(st);
    free(pc.slot_of);
    free(pc.first);
    free(pc.state);
    free(pc.has_check);
    free(pc.check);
    free(pc.table);
    return rc;
}

/* "1,234,567" */
static void grouped(size_t n, char *buf, size_t cap)
{
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%zu", n), o = 0;
    for (int i = 0; i < len && (size_t)o + 2 < cap; i++) {
        if (i && (len - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
}

/* ", about 26 min" for t seconds, or "" */
static void about(double t, char *buf, size_t cap)
{
    if (t < 90)
        snprintf(buf, cap, ", about %.0f s", t < 1 ? 1 : t);
    else if (t < 5400)
        snprintf(buf, cap, ", about %.0f min", t / 60);
    else
        snprintf(buf, cap, ", about %.1f h", t / 3600);
}

/* "\n  evaluate: 10,000 calls, 0 cached, 10,000 to compute (10,000 because of
 * their inputs), about 3 min" */
static char *stage_line(const jc_plan_stage *st)
{
    char calls[32], cached[32], todo[32], time[64] = "", because[96] = "";
    grouped(st->calls, calls, sizeof calls);
    grouped(st->cached, cached, sizeof cached);
    grouped(st->to_compute, todo, sizeof todo);
    if (st->to_compute > st->not_estimated)
        about(st->estimated_seconds, time, sizeof time);
    if (st->because_inputs) {
        char n[32];
        grouped(st->because_inputs, n, sizeof n);
        snprintf(because, sizeof because, " (%s because of %s inputs)", n, st->because_inputs == 1 ? "its" : "their");
    }
    return jc__strdup_printf("\n  %s: %s call%s, %s cached, %s to compute%s%s", st->function, calls,
                             st->calls == 1 ? "" : "s", cached, todo, because, time);
}

char *jc_plan_text(const jc_plan_info *p)
{
    if (!p)
        return NULL;
    char calls[32], cached[32], todo[32], time[64] = "";
    grouped(p->calls, calls, sizeof calls);
    grouped(p->cached, cached, sizeof cached);
    grouped(p->to_compute, todo, sizeof todo);
    if (p->to_compute && p->to_compute > p->not_estimated)
        about(p->estimated_seconds, time, sizeof time);
    char unknown[96] = "", expired[48] = "";
    if (p->not_estimated)
        snprintf(unknown, sizeof unknown, " (%zu of them of functions with no stored time)", p->not_estimated);
    if (p->expired) {
        char n[32];
        grouped(p->expired, n, sizeof n);
        snprintf(expired, sizeof expired, " (%s expired)", n);
    }
    char *text = jc__strdup_printf("%s call%s: %s cached, %s to compute%s%s%s on %d worker%s", calls,
                                   p->calls == 1 ? "" : "s", cached, todo, expired, unknown, time, p->workers,
                                   p->workers == 1 ? "" : "s");
    /* A pipeline: a line per stage. */
    for (size_t k = 0; text && p->after_inputs && k < p->nstages; k++) {
        char *line = stage_line(&p->stages[k]);
        char *both = line ? jc__strdup_printf("%s%s", text, line) : NULL;
        free(line);
        free(text);
        text = both;
    }
    return text;
}
