/*
 * fork_int.h: what the files of the fork pool share (fork.c, the parent;
 * fork_worker.c, a worker; fork_death.c, how a worker ended), and only they
 * include.
 */
#ifndef JC_FORK_INT_H
#define JC_FORK_INT_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "exec/exec.h"

/*
 * exec_fork: the pool of forked workers. The only code in jobcache that
 * forks.
 *
 * Workers are forked when the run starts, so they see the caller's memory as
 * it is at that moment, copy-on-write: a task is sent as nothing more than a
 * range of task indices, and the worker reads the arguments (large arrays
 * included) in place. Results come back length-prefixed over one
 * socketpair per worker, encoded with the canonical codec; the coordinating
 * process decodes and stores them. Workers never touch SQLite.
 *
 * Batching. A tiny task must not pay a wake-up of its own (one pipe round
 * trip costs 35-60 us here), so tasks go out in contiguous ranges whose size
 * adapts to the measured task duration (about BATCH_SECONDS of work), capped
 * by a guided share of what is left so that the last tasks spread over all
 * workers instead of straggling on one. Two ranges are kept in flight per
 * worker, so a worker never waits for a round trip. A worker buffers its
 * results and writes them at the end of a range, or every FLUSH_SECONDS.
 *
 * Crashes and timeouts. Each worker publishes, in a shared anonymous
 * mapping, the task it is running and when it started. When a worker dies
 * (a signal, exit(), the OOM killer) or overruns the timeout (the parent
 * kills it), that task alone gets the failure; every other task it held,
 * including finished ones whose buffered results died with it, is queued
 * again, and a fresh worker replaces it. A worker that cannot be started
 * (fork or socketpair failing: EAGAIN, the descriptor limit) leaves its slot
 * empty, to be tried again SPAWN_RETRY_SECONDS later; the run fails only
 * when no worker at all is alive. Workers keep a crash handler the program
 * installed: the pool's own (which records errno) goes only where the
 * disposition is the default.
 *
 * Signals and process groups. The parent blocks SIGINT/SIGTERM around fork,
 * so no worker starts with a half-installed handler. Each worker leads a
 * process group of its own, so a Ctrl-C at the terminal reaches only the
 * parent, which decides what stops; a worker has the default disposition
 * for the interrupts the run took over (so what its calls start inherits
 * nothing ignored), and dies with the parent (PR_SET_PDEATHSIG). A timeout,
 * a crash and the end of an interrupted run kill the worker's whole group:
 * what a call started ends with it. The parent waits in ppoll() with those
 * signals unblocked, so an interrupt is seen at once, never lost between a
 * check and a wait. On an interrupt the parent first takes what the workers
 * already sent, then asks them to stop after their current call and flush,
 * waits up to SALVAGE_SECONDS for that, and kills what is left.
 *
 * Every wait is bounded. A worker whose pipe closes while it runs on (a call
 * closed every descriptor) is killed after EOF_GRACE_SECONDS and its call
 * blamed; the parent also checks its workers by pid every LIVENESS_SECONDS;
 * a killed worker is reaped within REAP_SECONDS or given up on. Workers are
 * reaped by pid only: a program that ignores SIGCHLD gets its disposition
 * back after the run, and its children that ended meanwhile reaped.
 *
 * Output. A worker drops the stdio output it inherited pending (the parent
 * writes it), prints stdout line-buffered, and flushes every stream when it
 * reports and before _exit.
 *
 * Memory limit. RLIMIT_AS counts the whole address space, including what a
 * worker inherits from the caller (its heap, SQLite's mappings, ...), so the
 * worker sets it to its own size at start plus memory_limit.
 *
 * Threads. jobcache starts no thread of its own in this backend, so none is
 * running while it forks. A caller's own threads do not exist in the workers:
 * a lock that such a thread held at the moment of the fork stays locked in
 * the worker forever (docs/pool.md).
 */

#define BATCH_SECONDS 0.01
#define FLUSH_SECONDS 0.02
#define SPAWN_RETRY_SECONDS 0.1 /* after a worker could not be started */
#define SALVAGE_SECONDS 0.1     /* after an interrupt, for workers to flush */
#define EOF_GRACE_SECONDS 0.5   /* a worker whose pipe closed, to finish dying by itself */
#define REAP_SECONDS 10.0       /* a worker sent SIGKILL, to be reaped (it may be in D state) */
#define LIVENESS_SECONDS 0.05   /* how often the parent checks that its workers live */
enum { MAX_BATCH = 65536, FLUSH_BYTES = 1 << 16, INFLIGHT = 2, WHOLE_BYTES = 4 << 20 };

/* Parent -> worker: a range of task indices. Tasks added after the worker
 * was forked (jc__exec.ntasks grew: a pipeline's calls whose inputs came
 * later) are not in its memory: they go with whole set and a memfd passed
 * along (SCM_RIGHTS) that holds the range's calls, each as the descriptor's
 * address, the length of its arguments (uint64_t) and its arguments encoded
 * whole (jc__encode_args_whole), up to about WHOLE_BYTES (a call larger
 * than that goes alone). A descriptor, unlike the arguments, was in the
 * parent's memory before the worker was forked (every call was submitted
 * before the run). Through a file, not the socket: a large call written
 * into the socket while the worker writes its results back could block
 * both ends. */
typedef struct range_msg {
    uint32_t start, count;
    uint32_t whole;
    uint32_t pad;
} range_msg;

/* Worker -> parent: one outcome, followed by len payload bytes (the encoded
 * result, or the failure message). */
typedef struct result_hdr {
    uint32_t len;
    uint32_t task;
    uint32_t status;
    uint32_t oom; /* the failure was an allocation failure */
    double seconds;
} result_hdr;

/* Shared between parent and worker, one per worker slot. */
typedef struct shared_slot {
    _Atomic uint64_t current; /* task index + 1 being run, 0 when between tasks */
    _Atomic int64_t started_ns; /* CLOCK_MONOTONIC of its start */
    _Atomic int crash_errno;  /* errno seen by the crash handler */
    _Atomic int stop;         /* parent asks: finish this task, flush, exit */
    _Atomic uint64_t lost;    /* task index + 1 whose call closed or replaced the worker's end of
                               * the pipe (the worker then exits: it can no longer report) */
    _Atomic int64_t crash_vsize; /* address space in bytes when the crash handler ran, 0 = unknown */
    _Atomic int64_t as_limit; /* RLIMIT_AS the worker set for memory_limit, 0 = none */
} shared_slot;

typedef struct inflight {
    uint32_t start, count, delivered;
} inflight;

typedef struct worker {
    pid_t pid;   /* 0 when the slot is empty */
    size_t known; /* tasks in its memory: those added before it was forked */
    int fd;      /* parent's end of the socketpair, -1 when closed */
    inflight q[INFLIGHT];
    int nq;
    jc__buf in;  /* bytes received, not yet parsed */
    bool timed_out; /* the parent killed it for overrunning */
    uint64_t timed_out_task;
    int64_t oom_kills; /* the kernel's count of OOM kills when it started, -1 = unknown */
} worker;

typedef struct pool {
    jc__exec *ex;
    worker *w;
    int n;
    shared_slot *shm;
    size_t next;        /* next task never dispatched */
    uint32_t *retry;    /* tasks to dispatch again (a worker died holding them) */
    size_t nretry;
    size_t outstanding; /* tasks dispatched and not yet delivered */
    bool stopping;
    jc__mean mean;      /* of task seconds */
    int futile_deaths;  /* workers that died while idle, in a row */
    double spawn_retry_at; /* jc__monotonic() before which no spawn is tried */
    sigset_t run_mask;  /* the mask to wait with (SIGINT/SIGTERM unblocked) */
    double last_liveness; /* jc__monotonic() of the last check that workers live */
    struct sigaction chld_program; /* the program's SIGCHLD disposition, given back to workers */
    char **env;         /* the workers' environment (thread-count defaults), or NULL for the program's */
    pid_t *strays;      /* workers killed that could not be reaped in time */
    size_t nstrays, capstrays;
} pool;

/* Shared between the files of this folder (each defined in one of them). */
void jc__fk_bury(pool *p, int i);
bool jc__fk_has_ended(const worker *w);
void jc__fk_kill_group(const worker *w);
void jc__fk_nap(const pool *p, double seconds);
int64_t jc__fk_oom_kill_count(void);
bool jc__fk_reap(const pool *p, pid_t pid, int *status, double deadline);
size_t jc__fk_running(const pool *p);
_Noreturn void jc__fk_worker_main(pool *p, int slot, int fd);
void jc__fk_worker_setup(pool *p, int slot, int fd, const sigset_t *old_mask, pid_t parent);

#endif
