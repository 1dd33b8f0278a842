/*
 * exec: what the execution backends share (exec.h), as Redis's ae.c sits
 * beside ae_epoll.c: batches sized to measured work, the running mean that
 * measures it, the pacing of progress ticks, and the outcome of a call as it
 * comes back from another process.
 */
#include <stdlib.h>
#include <string.h>

#include "exec/exec.h"

void jc__mean_add(jc__mean *m, double x)
{
    m->n++;
    double k = m->n < 16 ? 1.0 / (double)m->n : 1.0 / 16;
    m->value += (x - m->value) * k;
}

size_t jc__batch_size(size_t left, size_t workers, double mean, double seconds, size_t max, bool round)
{
    /* Guided share: never more than half of a fair share of what is left. */
    size_t guided = left / (2 * (workers ? workers : 1));
    size_t by_time = mean > 0 ? (size_t)(seconds / mean + (round ? 0.5 : 0.0)) : 1;
    size_t b = by_time < guided ? by_time : guided;
    if (b < 1)
        b = 1;
    if (max && b > max)
        b = max;
    return b;
}

bool jc__tick_due(double *last)
{
    double now = jc__monotonic();
    if (now - *last < JC__TICK_SECONDS)
        return false;
    *last = now;
    return true;
}

void jc__outcome_received(jc__outcome *o, const jc__task *task, const void *payload, size_t len)
{
    if (o->status == JC_STATUS_OK) {
        o->blob = malloc(len ? len : 1);
        if (o->blob) {
            memcpy(o->blob, payload, len);
            o->blob_len = len;
        } else {
            o->status = JC_STATUS_ERROR;
            o->error = jc__strdup_printf("%s: out of memory receiving its result", task->fn->name);
        }
    } else {
        o->error = strndup(payload, len);
    }
}
