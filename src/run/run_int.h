/*
 * run_int.h: what the files of the run share, and only they include: a
 * batch, its results, and the state of one jc_run.
 */
#ifndef JC_RUN_INT_H
#define JC_RUN_INT_H

#include <signal.h>

#include "exec/exec.h"
#include "util/interrupt.h"
#include "run/progress.h"
#include "cache/cache.h"

/*
 * run: the orchestrator. A batch collects delayed calls; a run hashes them,
 * computes each distinct call once, answers hits from the cache, hands the
 * misses to a backend (exec.h), stores results as they arrive in batched
 * transactions, and returns every result in submission order.
 *
 * Invariants:
 *  - Every submission maps to exactly one slot (a distinct call); a slot ends
 *    with exactly one final status.
 *  - A failure is never stored. A success is stored before the run returns,
 *    and at most commit_interval (100 ms, up to COMMIT_SECONDS_MAX when
 *    commits are slow) or COMMIT_EVERY results after it arrived, so an
 *    interrupted run keeps its finished work.
 */

/* A bound on the results queued for one commit (their memory); the time
 * rule below is what bounds what a killed run loses. Each commit into a
 * large cache rewrites most of its key index (keys are hashes): 20,000
 * made a cold run of 1,000,000 tiny calls take 9.4 s on 2 workers, and
 * 50,000 new calls into 1.5 million entries 4.4 times what they take
 * into an empty cache; 100,000: 5.7 s and 2.9 times (bench/NOTES.md). */
enum { COMMIT_EVERY = 100000 };
/* Queued results' encoded bytes that make a commit due (worker backends
 * send encoded results, held until stored). */
#define COMMIT_BYTES ((size_t)64 << 20)
/* The interval between commits: COMMIT_SECONDS, or COMMIT_SHARE times
 * what the last commit took when that is longer, so that committing takes
 * at most about a tenth of a run, up to COMMIT_SECONDS_MAX. A commit into a
 * large cache writes a page of its key index per result (keys are hashes):
 * at 1.5 million entries, commits every 100 ms spent 80% of a cold run
 * writing the same pages again (bench/NOTES.md). */
#define COMMIT_SECONDS 0.1
#define COMMIT_SHARE 10.0
#define COMMIT_SECONDS_MAX 2.0
/* The interval before the next commit after one that took `took` seconds
 * (its begin, writes and commit, lock waits included). */
double jc__r_commit_interval(double took);

typedef struct pending {
    const jc_function *fn;
    jc_value **argv; /* owned */
    size_t argc;
    uint8_t key[JC__KEY_LEN]; /* of a call with inputs: once they are known (pipeline.c) */
    /* The calls whose results this one takes (jc_use), by submission index,
     * in the order of the arguments, depth first: input 1, input 2, ... of
     * messages. NULL when none. */
    size_t *inputs;
    uint32_t ninputs;
    bool intermediate; /* jc_intermediate: stored, not handed back */
} pending;

struct jc_batch {
    jc_cache *cache;
    jc_options opts;
    pending *calls;
    size_t n, cap;
    int error;    /* the first bad call's code, 0 if none */
    jc_fn last_fn; /* the last function looked up, and its descriptor: a */
    const jc_function *last_desc; /* sweep calls one function many times */
    unsigned long last_gen;       /* the registry's generation when looked up */
    char *errmsg; /* ... and its message */
    bool ran;
    uint64_t serial;  /* names the batch in its references (jc_ref) */
    size_t with_inputs; /* calls that take other calls' results */
    jc_plan_stage *plan_stages; /* the last jc_plan's (plan.c) */
    size_t nplan_stages;
    /* The calls' argument arrays (pending.argv) are carved from blocks of
     * the batch's own, freed with it: a malloc and a free less per call. */
    struct argv_block *argv_blocks; /* the newest first */
    size_t argv_left;               /* free slots at the end of the newest */
};

typedef struct slot {
    jc_value *value;
    char *error;
    double seconds;
    size_t first; /* the first submission of this call */
    size_t refs;  /* submissions sharing this slot whose value was not taken */
    size_t nsubs; /* submissions of this call (for per-submission counts) */
    uint8_t status;
    uint8_t attempts; /* runs of the call that crashed or timed out (jc_options.retries) */
    bool cached;
    bool done;
    bool expired;     /* its entry was older than expires_after */
    bool code_noted;  /* counted in p.code_changed (once, however often looked up) */
} slot;

struct jc_results {
    size_t n;
    size_t *slot_of; /* submission -> slot */
    slot *slots;
    size_t nslots;
    int status;
    char *message;
    jc_progress summary;
};


/* A computed result waiting to be written. */
typedef struct unstored {
    size_t slot;
    void *blob; /* the encoded result from a worker, or NULL: encode the slot's value */
    size_t blob_len;
    double seconds;
} unstored;

typedef struct jc__pipe jc__pipe;
struct run;

/* What the run's other files ask of a pipeline (pipeline.c), through its
 * table: it sits above them (it looks up, claims and runs calls through
 * them), so they reach it only through these. */
typedef struct jc__pipe_ops {
    /* A hit of slot s: its digest kept (queued only: called from a
     * lookup's callback). */
    void (*found)(struct run *r, size_t s, const jc__found *f);
    /* A computed result of slot s: its digest, from its encoding (made into
     * *blob when NULL). 0 or a negative code. */
    int (*computed)(struct run *r, size_t s, const jc_value *value, void **blob, size_t *len);
    /* Slot s has its final status: the calls using it are told (queued). */
    void (*final)(struct run *r, size_t s);
    /* Works the queues: calls keyed, looked up, claimed, made tasks. */
    int (*propagate)(struct run *r);
    /* Whether anything is queued. */
    bool (*pending)(const struct run *r);
} jc__pipe_ops;

typedef struct run {
    jc_batch *batch;
    /* The batch's pipeline (pipeline.c), when a call takes another's result;
     * NULL otherwise. */
    jc__pipe *pipe;
    const jc__pipe_ops *pops;
    /* The backend running this round, while it runs: tasks added then are
     * announced by raising ex->ntasks. */
    jc__exec *ex;
    size_t round_done; /* tasks of this round delivered */
    jc_cache *cache;
    jc_results *res;
    jc__task *tasks;
    size_t *task_slot; /* task -> slot */
    size_t ntasks;
    bool writable;
    bool inprocess; /* misses run in this thread */
    const char *backend_name; /* for the record of runs */
    int workers;
    double started_wall;
    /* Results are written in short transactions (jc__r_flush): the write lock is
     * never held while a user's function runs or a worker is awaited, so
     * other processes sharing the cache are not kept waiting. */
    unstored *queue;
    size_t nqueue;
    double last_commit;
    double lookup_now; /* unix seconds of the last lookup pass: its hits' time (0: read the clock) */
    double commit_interval; /* seconds: COMMIT_SECONDS, longer after slow commits */
    size_t queued_bytes;    /* the queue's encoded results */
    double last_seconds; /* compute time of the last result delivered */
    int store_rc;        /* the first store error */
    /* Seconds spent in attempts to store that found the file locked by
     * another process: past the cache's busy timeout in all, the run stops
     * trying until its last attempt, so that a stuck lock holds it for
     * about twice the busy timeout at most, not for as long as it lasts. */
    double busy_spent;
    char *store_msg;
    bool stopped;        /* stop on error was triggered */
    char *evict_msg;     /* eviction after the run failed (results are fine) */
    double t0;
    jc_progress p;
    jc__progress_line line;
    size_t tenths_told; /* JC_VERBOSE_DETAIL: tenths of the run told so far */
    /* The disk was found full: what fits is committed result by result;
     * unstored counts results that did not fit, full_msg says why. */
    bool full;
    size_t unstored;
    char *full_msg;
    /* Leases (cache/leases.c): the misses this run claimed, renewed with its
     * write transactions; the slots whose calls another process holds,
     * waited for after this run's own; keys of failed calls to release. */
    bool leases;
    int64_t lookup_version; /* jc__cache_data_version after the lookups */
    /* Slots of calls that crashed or timed out and run again next round
     * (jc_options.retries). */
    size_t *retry;
    size_t nretry, capretry;
    double lease_ttl, last_renew, longest_call;
    size_t *waiting;
    size_t nwaiting;
    uint8_t *release;
    size_t nrelease, release_cap;
    /* The running code's fingerprint of the function of the last hit. */
    const jc_function *fp_fn;
    uint8_t fp[16];
    bool fp_known;
    /* Hits computed by other code, per function (few functions a run). */
    struct code_change {
        const jc_function *fn;
        size_t entries;
    } *changed;
    size_t nchanged, capchanged;
} run;

/* How long this run's claims last unless renewed: a claim is renewed with
 * every write transaction and at least every quarter of it, but not while a
 * call runs in this thread (n_jobs = 1), so it outlasts the longest call
 * seen so far four times over. Only owners in another pid namespace or on
 * another machine rely on it: in this one, a claim lasts while its process
 * lives. */
#define LEASE_TTL 30.0

/* How many submissions share slot s (for per-submission counts). */
static inline size_t weight(const run *r, size_t s)
{
    return r->res->slots[s].nsubs;
}

/* Shared between the files of this folder (each defined in one of them). */
int jc__r_at_site(int code, const char *file, int line);
int jc__r_claim_misses(run *r);
/* Claims r->tasks[from..ntasks) (pipeline.c: calls that became ready while
 * the run went on); those another process holds move to r->waiting. */
void jc__r_claim_from(run *r, size_t from);
/* Pipelines (pipeline.c): set up r->pipe and r->pops, and the end. */
int jc__p_start(run *r);
void jc__p_finish(run *r, int exec_rc);
void jc__p_free(run *r);
int jc__r_code_change_from_env(const jc_cache *cache, jc_on_code_change *policy);
int jc__r_dedup(jc_batch *b, jc_results *res);
int jc__r_execute_with(run *r, const sigset_t *taken);
void jc__r_flush(run *r, bool final);
void jc__r_flush_if_due(run *r);
void jc__r_free_args(jc_value *const *argv, size_t argc);
int jc__r_lookup(run *r);
void jc__r_note_store_error(run *r, int rc);
void jc__r_on_found(void *ctx, size_t s, jc__found *f);
int jc__r_prepare(const char *api, const jc_function *fn, jc_value *const *argv,
                   size_t argc, uint8_t key[JC__KEY_LEN]);
/* The key of a call of fn (the arguments fn leaves out left out). */
int jc__r_call_key(const jc_function *fn, jc_value *const *argv, size_t argc, uint8_t key[JC__KEY_LEN]);
void jc__r_release_key(run *r, const uint8_t key[JC__KEY_LEN]);
void jc__r_renew_if_due(run *r);
int jc__r_resolve_n_jobs(int n_jobs);
void jc__r_update_progress(run *r, size_t running, bool force);
int jc__r_wait_for_others(run *r);
void jc__r_results_free_slots(jc_results *res);
void jc__r_warn_code_changes(const run *r);
int jc__r_execute(run *r);

#endif
