/*
 * mpi_int.h: what the files of the MPI backend share (jc__mpi.c, the state and
 * start and end; mpi_coord.c, rank 0; mpi_worker.c, the other ranks;
 * mpi_args.c, large arguments kept by worker ranks), and only they include.
 */
#ifndef JC_MPI_INT_H
#define JC_MPI_INT_H

#include <mpi.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "exec/exec.h"
#include "exec/mpi_dl.h" /* mpi.h, and the calls through the loaded table */

/*
 * exec_mpi: the MPI backend (docs/mpi.md). Rank 0 of the job is the
 * coordinator: the only rank that opens the cache, hashes, deduplicates and
 * looks up; it runs the user's main. Every other rank enters a jc__mpi_serve loop in
 * jc_mpi_init and never returns into main: it receives groups of calls,
 * runs them, sends the results back, and exits with the coordinator's exit
 * status when the coordinator finishes.
 *
 * What travels. Nothing is shared: a call goes out as its function's
 * registered name and version and its arguments encoded whole and canonical
 * (jc__encode_args_whole: large arrays by content); the worker rank finds
 * the function by name in its own registry (filled before main by
 * JC_FUNCTION, the same table on every rank of the same program), checks
 * the version, decodes the arguments and runs the call. A result comes back
 * in the exact encoding the fork pool uses, and the coordinator stores it in
 * the same batched transactions. Messages carry native-endian headers: the
 * ranks of one job share a byte order.
 *
 * Scheduling. The coordinator keeps INFLIGHT groups in flight per worker
 * rank, and sends the next group when one comes back: ranks that finish
 * sooner get more (dynamic load balancing), and a rank never waits for a
 * round trip. A group holds about BATCH_SECONDS of measured work (the mean
 * compute time so far), capped by a guided share of what is left, as in the
 * fork pool, so thousands of tiny calls share a message.
 *
 * No spinning. MPI's blocking calls busy-wait, which on a machine whose
 * cores the ranks share (mpirun --oversubscribe) takes a core from the ranks
 * that compute. Neither side ever blocks in MPI waiting for a message: both
 * test (MPI_Iprobe, MPI_Test) and sleep between tests, from POLL_MIN up to
 * POLL_MAX (coordinator) or IDLE_MAX (an idle worker rank), starting again
 * short after any traffic.
 *
 * Failures. A worker rank runs its calls in a forked child through the
 * fork pool (jc__exec_fork with one worker), so that a crash, exit(),
 * running out of memory or a timeout ends that child only, never the rank:
 * Debian's OpenMPI 4.1 has no fault tolerance, and one rank's death aborts
 * the whole job. The call gets the fork pool's message naming the cause,
 * and the rank and host it ran on.
 *
 * Ending. On rank 0, jc_mpi_init registers an on_exit handler and an
 * attribute on MPI_COMM_SELF whose delete callback MPI_Finalize runs first
 * (MPI-3.1, 8.7.1): whichever comes first sends FINISH with the exit status
 * to every worker rank, which finalizes and exits with it. A run that ends
 * early (interrupted, or stopping at the first error) sends CANCEL to the
 * ranks still holding its groups: they kill what runs and drop the rest.
 */
#define BATCH_SECONDS 0.01  /* of measured work per group, as the fork pool */
#define FLUSH_SECONDS 0.02  /* a worker rank sends what it has at least this often */
#define POLL_MIN 20e-6      /* the first sleep between two tests for a message */
#define POLL_MAX 1e-3       /* the longest, for the coordinator during a run */
#define IDLE_MAX 5e-3       /* the longest, for an idle worker rank */
#define DRAIN_SECONDS 10.0  /* at the end, for sends of a cancelled run to complete */
#define GROUP_COST_FACTOR 25.0 /* a group holds at least this many times its own cost */
enum {
    INFLIGHT = 2,
    MAX_GROUP = 65536,
    GROUP_BYTES = 16 << 20, /* a group's arguments stop growing past this (one call may exceed it) */
    FLUSH_BYTES = 1 << 20,
    MAGIC = 0x6a634d31, /* "jcM1" */
};
enum { TAG_GROUP = 1, TAG_RESULTS = 2, TAG_CANCEL = 3, TAG_FINISH = 4, TAG_FINISHED = 5 };

/* Coordinator -> worker rank: a group of calls. */
typedef struct group_hdr {
    uint32_t magic, run, group, ntasks;
    double timeout;
    int64_t memory_limit;
    uint32_t clear_args; /* the rank drops the arguments it keeps before this group */
    uint32_t pad;
} group_hdr;
/* Followed by name, version and args bytes, for each task of the group. */
typedef struct task_hdr {
    uint32_t task, name_len, version_len, args_len;
} task_hdr;

/* Worker rank -> coordinator: outcomes of one group (a group's outcomes
 * may come in several messages). */
typedef struct results_hdr {
    uint32_t magic, run, group, n;
    uint32_t args_reset; /* the rank dropped the large arguments it kept: forget its mirror */
    uint32_t pad;
    double cost; /* in the group's last message: seconds the group took beyond its calls' own */
} results_hdr;
/* Followed by len bytes: the exact encoding of the result, or the message. */
typedef struct outcome_hdr {
    uint32_t task, status, len, pad;
    double seconds;
} outcome_hdr;

/* Messages of the two control kinds: the run cancelled, the status to exit with. */
typedef struct control_msg {
    uint32_t magic;
    int32_t value;
} control_msg;

/* ---- large arguments kept by worker ranks ----
 *
 * A sweep often passes the same large array (a data set, a grid) to every
 * call. A worker rank keeps each top-level argument of JC__DIGEST_MIN bytes
 * or more that it received, by its digest, up to JOBCACHE_MPI_KEEP (256 MiB), least
 * recently used out first; the coordinator mirrors each rank's set exactly
 * (the same decisions in the same order: the order of the encoding, group
 * after group) and sends such an argument the rank holds as its 25-byte
 * digest. When the two could part (a group cancelled before the rank read
 * it, a call taken back out of a group), the coordinator forgets its mirror
 * and the rank's next group tells it to drop what it keeps: a mirror may
 * know less than the rank, never more. */
#define ARG_CACHE_DEFAULT ((size_t)256 << 20)
typedef struct arg_entry {
    unsigned char digest[25];
    size_t bytes;
    uint64_t used;   /* the cache's clock when last used */
    jc_value *value; /* on a worker rank: the value kept; NULL in a mirror */
} arg_entry;

typedef struct arg_cache {
    arg_entry *e;
    size_t n, cap, bytes;
    uint64_t clock;
    /* Values dropped (evicted, cleared) while calls of the group being
     * decoded may still point into them: freed by jc__mpi_arg_bury once the group
     * has run. */
    jc_value **dropped;
    size_t ndropped, capdropped;
} arg_cache;

/* ---- state of this process ---- */

typedef struct orphan {
    void *buf;
    MPI_Request req;
} orphan;

struct jc__mpi_state {
    bool started;        /* jc_mpi_init ran */
    bool ours;           /* jobcache called MPI_Init, so it finalizes */
    bool coordinator;    /* rank 0 of a job of more than one rank */
    bool finished;       /* FINISH went out */
    int rank, size;
    MPI_Comm comm;       /* a duplicate of MPI_COMM_WORLD: jobcache's messages only */
    uint32_t run;        /* the current run's number */
    orphan *orphans;     /* sends of cancelled runs, not known complete */
    arg_cache *mirrors;  /* coordinator: per rank, the large arguments it keeps */
    /* Coordinator, per rank: the next group sent must tell the rank to drop
     * what it keeps (its mirror was forgotten). */
    bool *clear_next;
    size_t sent_bytes;   /* coordinator: bytes of groups sent, for the tests */
    size_t norphans, caporphans;
    char host[64];
    pid_t pid;           /* the process that called jc_mpi_init (not a forked child of it) */
    int init_rc;         /* what jc_mpi_init returned, returned again */
    const char *why_not; /* why there is no MPI backend here */
};
/* The one state of this process (mpi.c). */
extern struct jc__mpi_state jc__mpi;
/* JOBCACHE_MPI_KEEP, read by every rank at jc_mpi_init (mpirun and srun
 * give every rank the same environment); mpi_args.c. */
extern size_t jc__mpi_arg_cache_bytes;

/* Shared between the files of this folder (each defined in one of them). */
void jc__mpi_arg_bury(arg_cache *c);
size_t jc__mpi_arg_bytes(const jc_value *v);
void jc__mpi_arg_clear(arg_cache *c);
arg_entry *jc__mpi_arg_find(arg_cache *c, const unsigned char d[25]);
bool jc__mpi_arg_keep(arg_cache *c, const unsigned char d[25], size_t bytes, jc_value *value);
void jc__mpi_discard_stale_results(void);
void jc__mpi_drain(void);
char *jc__mpi_receive_probed(const MPI_Status *st, int *len);
int jc__mpi_send_sleeping(const void *buf, size_t len, int dest, int tag);
_Noreturn void jc__mpi_serve(void);
void jc__mpi_sleep_for(double seconds, const sigset_t *mask);
void jc__mpi_test_orphans(void);

#endif
