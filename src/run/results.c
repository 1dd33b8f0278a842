/*
 * Results: the slots of the distinct calls, and what jc_run hands back in
 * submission order.
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

/* ---- results ---- */

int jc_results_status(const jc_results *res)
{
    return res ? res->status : JC_EINVAL;
}

const char *jc_results_message(const jc_results *res)
{
    if (!res)
        return "no results";
    return res->message ? res->message : jc_strerror(res->status);
}

size_t jc_results_count(const jc_results *res)
{
    return res ? res->n : 0;
}

jc_progress jc_results_summary(const jc_results *res)
{
    return res ? res->summary : (jc_progress){0};
}

static slot *slot_at(const jc_results *res, size_t k)
{
    return res && k < res->n ? &res->slots[res->slot_of[k]] : NULL;
}

jc_status jc_result_status(const jc_results *res, size_t k)
{
    slot *s = slot_at(res, k);
    return s ? (jc_status)s->status : JC_STATUS_ERROR;
}

const jc_value *jc_result_value(const jc_results *res, size_t k)
{
    slot *s = slot_at(res, k);
    return s && s->status == JC_STATUS_OK ? s->value : NULL;
}

jc_value *jc_result_take(jc_results *res, size_t k)
{
    slot *s = slot_at(res, k);
    if (!s || s->status != JC_STATUS_OK || !s->value)
        return NULL;
    /* Identical submissions share one value: each but the last take gets a
     * copy, so that every submission can be taken. */
    if (s->refs > 1) {
        s->refs--;
        return jc_value_copy(s->value);
    }
    jc_value *v = s->value;
    s->value = NULL;
    s->refs = 0;
    return v;
}

bool jc_result_cached(const jc_results *res, size_t k)
{
    slot *s = slot_at(res, k);
    return s && s->cached;
}

double jc_result_seconds(const jc_results *res, size_t k)
{
    slot *s = slot_at(res, k);
    return s ? s->seconds : 0.0;
}

const char *jc_result_error(const jc_results *res, size_t k)
{
    slot *s = slot_at(res, k);
    if (!s)
        return "no such result";
    return s->status == JC_STATUS_OK ? NULL : s->error;
}

double jc_result_double(const jc_results *res, size_t k)
{
    double d;
    return jc_value_get_double(jc_result_value(res, k), &d) == 0 ? d : (double)NAN;
}

int64_t jc_result_int(const jc_results *res, size_t k)
{
    int64_t i;
    return jc_value_get_int(jc_result_value(res, k), &i) == 0 ? i : 0;
}

void jc__r_results_free_slots(jc_results *res)
{
    for (size_t i = 0; i < res->nslots; i++) {
        jc_value_free(res->slots[i].value);
        free(res->slots[i].error);
    }
}

void jc_results_free(jc_results *res)
{
    if (!res)
        return;
    jc__r_results_free_slots(res);
    free(res->slots);
    free(res->slot_of);
    free(res->message);
    free(res);
}

/* Gives each submission its slot: identical calls (same key) share one. The
 * table is open addressing on the key's first 8 bytes (already a hash). */
int jc__r_dedup(jc_batch *b, jc_results *res)
{
    size_t cap = 16;
    while (cap < 2 * b->n)
        cap *= 2;
    size_t *table = calloc(cap, sizeof *table); /* slot + 1, 0 = empty */
    if (!table)
        return jc__set_error(JC_ENOMEM, "out of memory deduplicating %zu calls", b->n);
    for (size_t i = 0; i < b->n; i++) {
        if (b->calls[i].ninputs) { /* keyed once its inputs are known (pipeline.c) */
            res->slot_of[i] = SIZE_MAX;
            continue;
        }
        uint64_t h;
        memcpy(&h, b->calls[i].key, sizeof h);
        size_t at = (size_t)h & (cap - 1);
        for (;;) {
            if (!table[at]) {
                size_t s = res->nslots++;
                res->slots[s].first = i;
                table[at] = s + 1;
                res->slot_of[i] = s;
                break;
            }
            size_t s = table[at] - 1;
            if (memcmp(b->calls[res->slots[s].first].key, b->calls[i].key, JC__KEY_LEN) == 0) {
                res->slot_of[i] = s;
                break;
            }
            at = (at + 1) & (cap - 1);
        }
    }
    free(table);
    return 0;
}
