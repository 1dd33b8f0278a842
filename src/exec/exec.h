/*
 * exec: how misses get computed. One small interface, one file per backend:
 * in-process (inprocess.c), forked workers (fork.c), threads (threads.c)
 * and the ranks of an MPI job (mpi.c and its files, which run each rank's
 * calls through the fork pool). The run (run/execute.c) hands a backend the list of tasks and a
 * deliver callback; the backend computes them in any order and delivers each
 * outcome, in the caller's thread, as soon as it is known. Only fork.c
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
    /* Tasks may be added while the backend runs: deliver may append tasks
     * at tasks[ntasks..capacity) and raise ntasks (a pipeline's calls whose
     * inputs became known); the backend runs them too, and returns only
     * once every task below ntasks was delivered (or it stopped). tasks
     * never moves. A task added after a worker process was forked is not in
     * its memory: the fork pool sends it whole (fork.c). */
    size_t ntasks;
    size_t capacity;
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
    /* Optional, for the fork pool: asked at least every 100 ms; true ends
     * the run at once, killing what runs (jc__exec_fork returns JC_EINTR and
     * delivers nothing more). An MPI worker rank uses it to drop a group
     * its coordinator cancelled. */
    bool (*abandon)(void *ctx);
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
/* The MPI backend (mpi.c; without MPI, mpi_none.c refuses). */
int jc__exec_mpi(jc__exec *ex);
/* How many worker ranks this process coordinates: 0 unless jc_mpi_init
 * started an MPI job of more than one rank and this is its rank 0. */
int jc__mpi_workers(void);
/* Bytes of calls the coordinator has sent to worker ranks (for tests);
 * 0 without MPI. */
size_t jc__mpi_sent_bytes(void);
/* Whether the program called jc_mpi_init. */
bool jc__mpi_init_called(void);
/* Why the MPI backend cannot be used here, for jc_batch_new's message. */
const char *jc__mpi_unavailable(void);
/* How many ranks the launcher (mpirun, srun, a PMI launcher) says the job
 * has, from the environment: 0 when the program was not started by one, -1
 * when it was but the size is not given (PMIx). mpi_launch.c. */
long jc__mpi_launched_size(void);

/* jc__interrupted, set by the run's SIGINT/SIGTERM handler while a run is
 * in progress, is util/interrupt.h's. */
#include "util/interrupt.h"

/* ---- what the backends share (exec.c) ---- */

/* A running mean that follows change: the plain mean of the first 16
 * samples, then an exponential one of weight 1/16. value 0 = none yet. */
typedef struct jc__mean {
    double value;
    size_t n;
} jc__mean;
void jc__mean_add(jc__mean *m, double x);

/* How many of the left tasks to hand one of workers at once: about
 * seconds of work by the running mean of a task (mean; 1 task before any
 * is measured), at most half of a fair share of what is left (guided
 * scheduling), at least 1 and at most max (0: no bound). round: to the
 * nearest count rather than down (two calls of 5 ms make a batch of 10 ms). */
size_t jc__batch_size(size_t left, size_t workers, double mean, double seconds, size_t max, bool round);

/* Progress ticks go out at most this often. */
#define JC__TICK_SECONDS 0.1
/* True at most once per JC__TICK_SECONDS: *last holds the monotonic time
 * of the last tick (start it at jc__monotonic()). */
bool jc__tick_due(double *last);

/* Fills o (task, status and seconds set) from a call's payload as it came
 * back from another process: for JC_STATUS_OK the encoded result (copied
 * into o->blob; out of memory turns it into an error naming the call), else
 * the failure's message. */
void jc__outcome_received(jc__outcome *o, const jc__task *task, const void *payload, size_t len);

#endif
