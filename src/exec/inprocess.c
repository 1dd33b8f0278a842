/*
 * exec_inprocess: n_jobs = 1. Every miss runs in the caller's process and
 * thread, one after the other, with no fork and no thread, so a user's
 * function is debugged with gdb like the plain loop it replaces.
 */
#include "exec/exec.h"

int jc__exec_inprocess(jc__exec *ex)
{
    double last_tick = jc__monotonic();
    for (size_t i = 0; i < ex->ntasks; i++) {
        if (jc__interrupted)
            return jc__set_error(JC_EINTR, "interrupted by a signal after %zu of %zu calls", i, ex->ntasks);
        const jc__task *t = &ex->tasks[i];
        jc__outcome o = {.task = i};
        o.status = jc__call_invoke(t->fn, t->argv, t->argc, &o.value, &o.error, &o.seconds);
        if (ex->deliver(ex->ctx, &o))
            return 0;
        if (ex->tick && jc__tick_due(&last_tick))
            ex->tick(ex->ctx, 0);
    }
    return 0;
}
