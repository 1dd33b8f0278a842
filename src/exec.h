/*
 * exec: how misses get computed. One small interface, one file per backend:
 * in-process (exec_inprocess.c), forked workers (exec_fork.c) and threads
 * (exec_threads.c). The run (run.c) hands a backend the list of tasks and a
 * deliver callback; the backend computes them in any order and delivers each
 * outcome, in the caller's thread, as soon as it is known. Only exec_fork.c
 * forks.
 */
#ifndef JC_EXEC_H
#define JC_EXEC_H

#include <signal.h>

#include "jc_internal.h"

typedef struct jc__task {
    const jc_function *fn;
    jc_value *const *argv; /* owned by the batch; a forked worker reads them in place */
    size_t argc;
} jc__task;

typedef struct jc__outcome {
    size_t task;        /* index into jc__exec.tasks */
    jc_status status;
    jc_value *value;    /* OK: the result, or NULL when only blob is given; owned */
    void *blob;         /* OK: the encoded result (malloc'd), or NULL; owned */
    size_t blob_len;
    char *error;        /* a failure's message (malloc'd), naming the call */
    double seconds;     /* compute time */
} jc__outcome;

typedef struct jc__exec {
    const jc__task *tasks;
    size_t ntasks;
    int nworkers;
    double timeout;       /* seconds per call, 0 = none */
    int64_t memory_limit; /* bytes a worker may allocate beyond what it inherits, 0 = none */
    /* In the caller's thread, for every finished task. Takes the outcome's
     * pointers over. Returns true when no further task should start (stop on
     * error). */
    bool (*deliver)(void *ctx, jc__outcome *o);
    /* In the caller's thread, at least every 100 ms while the run lasts, and
     * with the number of tasks running: commits and progress. */
    void (*tick)(void *ctx, size_t running);
    void *ctx;
    /* The signals the run took over (SIGINT, SIGTERM, or neither: a program
     * that handles, ignores or blocks one keeps it). A backend that waits
     * unblocks only these; its workers have the default for them. */
    sigset_t interrupts;
} jc__exec;

/* Each returns 0 when it ran until done or told to stop, JC_EINTR when the run
 * was interrupted (SIGINT/SIGTERM), or another negative code when it could
 * not run at all. Tasks never delivered are reported skipped by the run. */
int jc__exec_inprocess(jc__exec *ex);
int jc__exec_fork(jc__exec *ex);
int jc__exec_threads(jc__exec *ex);

/* Set by the run's SIGINT/SIGTERM handler while a run is in progress. */
extern volatile sig_atomic_t jc__interrupted;

#endif
