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

/* ---- plans ---- */

typedef struct plan_ctx {
    size_t cached, expired;
    bool *hit;
    double expires_after, now;
} plan_ctx;

static void plan_found(void *ctx, size_t i, jc__found *f)
{
    plan_ctx *p = ctx;
    jc_value_free(f->value);
    if (p->expires_after > 0 && f->created < p->now - p->expires_after) {
        p->expired++; /* computed again, as the run would */
        return;
    }
    if (!p->hit[i]) {
        p->hit[i] = true;
        p->cached++;
    }
}

int jc_plan(jc_batch *b, jc_plan_info *out)
{
    if (!b || !out)
        return jc__set_error(JC_EINVAL, "jc_plan: NULL %s", b ? "out" : "batch");
    memset(out, 0, sizeof *out);
    if (b->error)
        return jc__set_error(b->error, "jc_plan: the batch has a bad call: %s", b->errmsg ? b->errmsg : "?");
    out->calls = b->n;
    out->after_inputs = b->with_inputs;
    out->workers = jc__r_resolve_n_jobs(b->opts.n_jobs);
    jc_results res = {0};
    size_t n = b->n ? b->n : 1;
    res.slot_of = malloc(n * sizeof *res.slot_of);
    res.slots = calloc(n, sizeof *res.slots);
    const uint8_t **keys = malloc(n * sizeof *keys);
    bool *hit = calloc(n, sizeof *hit);
    int rc = res.slot_of && res.slots && keys && hit ? jc__r_dedup(b, &res)
                                                      : jc__set_error(JC_ENOMEM, "jc_plan: out of memory");
    plan_ctx pc = {.hit = hit, .expires_after = b->opts.expires_after, .now = jc__now()};
    if (!rc) {
        for (size_t s = 0; s < res.nslots; s++)
            keys[s] = b->calls[res.slots[s].first].key;
        bool was = jc__cache_want_created(b->cache, pc.expires_after > 0);
        rc = jc__cache_lookup_many(b->cache, keys, res.nslots, plan_found, &pc);
        jc__cache_want_created(b->cache, was); /* a plan made during a run leaves the run's as it was */
    }
    jc_stats *st = !rc && jc__cache_has_store(b->cache) ? jc_cache_stats(b->cache) : NULL;
    if (!rc) {
        out->distinct = res.nslots;
        out->cached = pc.cached;
        out->expired = pc.expired;
        out->to_compute = res.nslots - pc.cached;
        for (size_t s = 0; s < res.nslots; s++) {
            if (hit[s])
                continue;
            const jc_function *fn = b->calls[res.slots[s].first].fn;
            double mean = -1;
            for (size_t k = 0; st && k < st->nfunctions; k++)
                if (strcmp(st->functions[k].function, fn->name) == 0 &&
                    strcmp(st->functions[k].version, fn->version) == 0)
                    mean = st->functions[k].mean_seconds;
            if (mean < 0)
                out->not_estimated++;
            else
                out->estimated_seconds += mean;
        }
        out->estimated_seconds /= out->workers > 0 ? out->workers : 1;
    }
    jc_stats_free(st);
    free(res.slot_of);
    free(res.slots);
    free(keys);
    free(hit);
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

char *jc_plan_text(const jc_plan_info *p)
{
    if (!p)
        return NULL;
    char calls[32], cached[32], todo[32], time[64] = "";
    grouped(p->calls, calls, sizeof calls);
    grouped(p->cached, cached, sizeof cached);
    grouped(p->to_compute, todo, sizeof todo);
    double t = p->estimated_seconds;
    if (p->to_compute && p->to_compute > p->not_estimated) {
        if (t < 90)
            snprintf(time, sizeof time, ", about %.0f s", t < 1 ? 1 : t);
        else if (t < 5400)
            snprintf(time, sizeof time, ", about %.0f min", t / 60);
        else
            snprintf(time, sizeof time, ", about %.1f h", t / 3600);
    }
    char unknown[96] = "", expired[48] = "", later[96] = "";
    if (p->after_inputs) {
        char n[32];
        grouped(p->after_inputs, n, sizeof n);
        snprintf(later, sizeof later, "; %s more keyed once their inputs are known", n);
    }
    if (p->not_estimated)
        snprintf(unknown, sizeof unknown, " (%zu of them of functions with no stored time)", p->not_estimated);
    if (p->expired) {
        char n[32];
        grouped(p->expired, n, sizeof n);
        snprintf(expired, sizeof expired, " (%s expired)", n);
    }
    return jc__strdup_printf("%s call%s: %s cached, %s to compute%s%s%s on %d worker%s%s", calls,
                             p->calls == 1 ? "" : "s", cached, todo, expired, unknown, time, p->workers,
                             p->workers == 1 ? "" : "s", later);
}
