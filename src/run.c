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
 *    and at most ~100 ms (or COMMIT_EVERY results) after it arrived, so an
 *    interrupted run keeps its finished work.
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

#include "exec.h"
#include "progress.h"
#include "cache.h"

enum { COMMIT_EVERY = 2000 };
#define COMMIT_SECONDS 0.1

typedef struct pending {
    const jc_function *fn;
    jc_value **argv; /* owned */
    size_t argc;
    uint8_t key[JC__KEY_LEN];
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
};

typedef struct slot {
    jc_value *value;
    char *error;
    double seconds;
    size_t first; /* the first submission of this call */
    size_t refs;  /* submissions sharing this slot whose value was not taken */
    size_t nsubs; /* submissions of this call (for per-submission counts) */
    uint8_t status;
    bool cached;
    bool done;
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

/* ---- options and batches ---- */

static int cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        return CPU_COUNT(&set) > 0 ? CPU_COUNT(&set) : 1;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* joblib's rule: -1 is all CPUs, -2 all but one, ...; at least 1. */
static int resolve_n_jobs(int n_jobs)
{
    if (n_jobs > 0)
        return n_jobs;
    int n = cpu_count() + 1 + n_jobs;
    return n > 1 ? n : 1;
}

/* JOBCACHE_ON_CODE_CHANGE, when set, over the program's choice. */
static int code_change_from_env(const jc_cache *cache, jc_on_code_change *policy)
{
    const char *env = jc__env(cache, "JOBCACHE_ON_CODE_CHANGE");
    if (!env)
        return 0;
    static const char *const names[] = {"warn", "recompute", "ignore"};
    for (int i = 0; i < 3; i++)
        if (strcmp(env, names[i]) == 0) {
            *policy = (jc_on_code_change)i;
            return 0;
        }
    return jc__set_error(JC_EINVAL, "jc_batch_new: JOBCACHE_ON_CODE_CHANGE is '%s'; it must be warn, "
                         "recompute or ignore", env);
}

/* JOBCACHE_N_JOBS, JOBCACHE_VERBOSE, JOBCACHE_BACKEND and JOBCACHE_TIMEOUT over the
 * program's choice; a bad value names the variable and the value. */
static int options_from_env(const jc_cache *cache, jc_options *o)
{
    const char *v = jc__env(cache, "JOBCACHE_N_JOBS");
    char *end = NULL;
    if (v) {
        long n = strtol(v, &end, 10);
        if (*end || end == v || n == 0 || n < -4096 || n > 4096)
            return jc__set_error(JC_EINVAL, "jc_batch_new: JOBCACHE_N_JOBS is '%s'; it must be a whole number "
                                 "of workers (1: in this process; -1: every CPU; -2: all but one)", v);
        o->n_jobs = (int)n;
    }
    if ((v = jc__env(cache, "JOBCACHE_VERBOSE"))) {
        static const jc_verbose levels[] = {JC_VERBOSE_OFF, JC_VERBOSE_ON, JC_VERBOSE_DETAIL};
        if (strlen(v) != 1 || v[0] < '0' || v[0] > '2')
            return jc__set_error(JC_EINVAL, "jc_batch_new: JOBCACHE_VERBOSE is '%s'; it must be 0 (quiet), 1 "
                                 "(a summary line) or 2 (also a line per failure and per tenth of the run)", v);
        o->verbose = levels[v[0] - '0'];
    }
    if ((v = jc__env(cache, "JOBCACHE_BACKEND"))) {
        static const struct {
            const char *name;
            jc_backend backend;
        } names[] = {{"auto", JC_BACKEND_AUTO},          {"fork", JC_BACKEND_FORK},
                     {"threads", JC_BACKEND_THREADS},    {"in-process", JC_BACKEND_INPROCESS},
                     {"inprocess", JC_BACKEND_INPROCESS}, {"mpi", JC_BACKEND_MPI}};
        size_t i = 0;
        while (i < sizeof names / sizeof names[0] && strcmp(v, names[i].name) != 0)
            i++;
        if (i == sizeof names / sizeof names[0])
            return jc__set_error(JC_EINVAL, "jc_batch_new: JOBCACHE_BACKEND is '%s'; it must be auto, fork, "
                                 "threads, in-process or mpi", v);
        o->backend = names[i].backend;
    }
    if ((v = jc__env(cache, "JOBCACHE_TIMEOUT"))) {
        double t = strtod(v, &end);
        if (*end || end == v || !(t >= 0) || t > 1e9)
            return jc__set_error(JC_EINVAL, "jc_batch_new: JOBCACHE_TIMEOUT is '%s'; it must be seconds "
                                 "per call, 0 for none", v);
        o->timeout_seconds = t;
    }
    return 0;
}

/* A program started as several ranks (mpirun, srun) that never called
 * jc_mpi_init runs whole on every rank, each computing every call: almost
 * always the line forgotten at the top of main. Said once per process; a
 * program whose ranks each run a sweep of their own on purpose sets the
 * backend (jc_options.backend or JOBCACHE_BACKEND), which silences it. */
static void warn_forgotten_mpi_init(void)
{
    static atomic_flag warned = ATOMIC_FLAG_INIT;
    if (jc__mpi_init_called())
        return;
    long n = jc__mpi_launched_size();
    const char *pmix_rank = getenv("PMIX_RANK");
    if (!(n > 1 || (n == -1 && pmix_rank && strcmp(pmix_rank, "0") != 0)))
        return;
    if (atomic_flag_test_and_set(&warned))
        return;
    char size[32] = "several";
    if (n > 1)
        snprintf(size, sizeof size, "%ld", n);
    fprintf(stderr, "jobcache: this program was started as one of %s ranks (mpirun, srun) but did not call "
            "jc_mpi_init: every rank runs the whole program and computes every call itself. Call "
            "jc_mpi_init(&argc, &argv) at the top of main (docs/mpi.md), or set JOBCACHE_BACKEND if each rank "
            "runs a sweep of its own on purpose.\n", size);
    fflush(stderr);
}

jc_batch *jc_batch_new(jc_cache *cache, const jc_options *opts)
{
    jc_options o = opts ? *opts : (jc_options){0};
    if (!cache) {
        jc__set_error(JC_EINVAL, "jc_batch_new: the cache is NULL (did jc_cache_open fail? %s)", jc_errmsg());
        return NULL;
    }
    if (o.n_jobs == 0)
        o.n_jobs = 1; /* the default: a zero-initialised jc_options is the default */
    if ((unsigned)o.on_code_change > JC_ON_CODE_CHANGE_IGNORE) {
        jc__set_error(JC_EINVAL, "jc_batch_new: on_code_change has an unknown value (%d)", (int)o.on_code_change);
        return NULL;
    }
    if (code_change_from_env(cache, &o.on_code_change) || options_from_env(cache, &o))
        return NULL;
    if (!(o.timeout_seconds >= 0)) {
        jc__set_error(JC_EINVAL, "jc_batch_new: timeout_seconds is %g; it must be >= 0 (0 = none)",
                      o.timeout_seconds);
        return NULL;
    }
    if (o.memory_limit < 0) {
        jc__set_error(JC_EINVAL, "jc_batch_new: memory_limit is negative (%lld)", (long long)o.memory_limit);
        return NULL;
    }
    if ((unsigned)o.on_error > JC_ON_ERROR_CONTINUE || (unsigned)o.verbose > JC_VERBOSE_DETAIL ||
        (unsigned)o.backend > JC_BACKEND_MPI) {
        jc__set_error(JC_EINVAL, "jc_batch_new: on_error, verbose or backend has an unknown value");
        return NULL;
    }
    if (o.backend == JC_BACKEND_THREADS && (o.timeout_seconds > 0 || o.memory_limit > 0)) {
        jc__set_error(JC_EINVAL, "jc_batch_new: timeout_seconds and memory_limit need worker processes; "
                      "the threads backend cannot stop or limit one thread");
        return NULL;
    }
    if (o.backend == JC_BACKEND_INPROCESS && (o.timeout_seconds > 0 || o.memory_limit > 0)) {
        jc__set_error(JC_EINVAL, "jc_batch_new: timeout_seconds and memory_limit need worker processes; "
                      "they cannot apply to the in-process backend");
        return NULL;
    }
    if (o.backend == JC_BACKEND_AUTO)
        warn_forgotten_mpi_init();
    if (o.backend == JC_BACKEND_MPI && !jc__mpi_workers()) {
        jc__set_error(JC_EINVAL, "jc_batch_new: the MPI backend was asked for, but %s (start the program with "
                      "mpirun -np N or srun, and call jc_mpi_init at the top of main; docs/mpi.md)",
                      jc__mpi_unavailable());
        return NULL;
    }
    jc_batch *b = calloc(1, sizeof *b);
    if (!b) {
        jc__set_error(JC_ENOMEM, "out of memory making a batch");
        return NULL;
    }
    b->cache = cache;
    b->opts = o;
    return b;
}

static void free_args(jc_value *const *argv, size_t argc)
{
    for (size_t i = 0; i < argc; i++)
        jc_value_free(argv[i]);
}

void jc_batch_free(jc_batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++) {
        free_args(b->calls[i].argv, b->calls[i].argc);
        free(b->calls[i].argv);
    }
    free(b->calls);
    free(b->errmsg);
    free(b);
}

size_t jc_batch_count(const jc_batch *b)
{
    return b ? b->n : 0;
}

/* Prefixes the thread's error message with the call site, when known. The
 * site is formatted only on failure: jc_delayed is a hot path. */
static int at_site(int code, const char *file, int line)
{
    if (file)
        jc__set_error(code, "%s:%d: %s", file, line, jc_errmsg());
    return code;
}

/* Checks a call and computes its key. On failure the arguments are freed
 * and the message names the call (the caller adds the site). */
static int prepare(const char *api, const jc_function *fn, jc_value *const *argv,
                   size_t argc, uint8_t key[JC__KEY_LEN])
{
    if (!fn) {
        int code = jc_errcode();
        char *why = jc__strdup(jc_errmsg());
        free_args(argv, argc);
        jc__set_error(code, "%s: %s", api, why ? why : "unknown function");
        free(why);
        return code;
    }
    for (size_t i = 0; i < argc; i++)
        if (!argv[i]) {
            /* The builder that failed set a message; it is the thread's last
             * one unless something else failed since, so it is quoted as such. */
            char *why = jc__strdup(jc_errmsg());
            free_args(argv, argc);
            jc__set_error(JC_EINVAL, "%s(%s, ...): argument %zu is NULL: a value builder failed "
                          "(the thread's last error: %s)", api, fn->name, i, why ? why : "?");
            free(why);
            return JC_EINVAL;
        }
    int rc = jc__key_compute(fn->name, fn->version, argv, argc, key);
    if (!rc) /* the function sees what the key was made from */
        rc = jc__args_canonicalize(argv, argc);
    if (rc) {
        char *why = jc__strdup(jc_errmsg());
        free_args(argv, argc);
        jc__set_error(rc, "%s(%s, ...): %s", api, fn->name, why ? why : "bad argument");
        free(why);
    }
    return rc;
}

static int batch_add(jc_batch *b, const char *file, int line, const jc_function *fn, jc_value *const *argv,
                     size_t argc)
{
    if (b->error) { /* the batch is already refused: keep the first error */
        free_args(argv, argc);
        return jc__set_error(b->error, "%s", b->errmsg ? b->errmsg : jc_strerror(b->error));
    }
    int rc = 0;
    if (b->ran) {
        free_args(argv, argc);
        rc = jc__set_error(JC_EINVAL, "jc_delayed: this batch has already run; make a new one");
        goto fail;
    }
    pending p = {.fn = fn, .argc = argc};
    rc = prepare("jc_delayed", fn, argv, argc, p.key);
    if (rc)
        goto fail;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        pending *calls = realloc(b->calls, cap * sizeof *calls);
        if (calls) {
            b->calls = calls;
            b->cap = cap;
        }
    }
    p.argv = malloc((argc ? argc : 1) * sizeof *p.argv);
    if (!p.argv || b->n == b->cap) {
        free(p.argv);
        free_args(argv, argc);
        rc = jc__set_error(JC_ENOMEM, "jc_delayed(%s, ...): out of memory", fn->name);
        goto fail;
    }
    if (argc)
        memcpy(p.argv, argv, argc * sizeof *argv);
    b->calls[b->n++] = p;
    return 0;
fail:
    at_site(rc, file, line);
    b->error = rc;
    b->errmsg = jc__strdup(jc_errmsg());
    return rc;
}

int jc__delayed(jc_batch *b, jc_fn fn, jc_value *const *argv, size_t argc, const char *file, int line)
{
    if (!b) {
        free_args(argv, argc);
        return at_site(jc__set_error(JC_EINVAL, "jc_delayed: the batch is NULL"), file, line);
    }
    if (!fn || fn != b->last_fn || b->last_gen != jc__registry_generation()) {
        b->last_desc = jc__function_by_ptr(fn);
        b->last_fn = b->last_desc ? fn : NULL;
        b->last_gen = jc__registry_generation();
    }
    return batch_add(b, file, line, b->last_fn ? b->last_desc : NULL, argv, argc);
}

int jc_delayed_name(jc_batch *b, const char *name, jc_value *const *argv, size_t argc)
{
    if (!b || !name || (!argv && argc)) {
        if (argv)
            free_args(argv, argc);
        return jc__set_error(JC_EINVAL, "jc_delayed_name: NULL %s", !b ? "batch" : !name ? "name" : "argv");
    }
    return batch_add(b, NULL, 0, jc_function_find(name), argv, argc);
}

/* ---- the run ---- */

/* A computed result waiting to be written. */
typedef struct unstored {
    size_t slot;
    void *blob; /* the encoded result from a worker, or NULL: encode the slot's value */
    size_t blob_len;
    double seconds;
} unstored;

typedef struct run {
    jc_batch *batch;
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
    /* Results are written in short transactions (flush): the write lock is
     * never held while a user's function runs or a worker is awaited, so
     * other processes sharing the cache are not kept waiting. */
    unstored *queue;
    size_t nqueue;
    double last_commit;
    double last_seconds; /* compute time of the last result delivered */
    int store_rc;        /* the first store error */
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
    /* Leases (cache.c): the misses this run claimed, renewed with its
     * write transactions; the slots whose calls another process holds,
     * waited for after this run's own; keys of failed calls to release. */
    bool leases;
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
    size_t nchanged;
} run;

static void note_store_error(run *r, int rc)
{
    if (r->store_rc)
        return;
    r->store_rc = rc;
    r->store_msg = jc__strdup(jc_errmsg());
}

/* Queues the release of this run's claim on key: its call failed, or its
 * result could not be stored, so a process waiting for it must compute it
 * itself (with the next write transaction, or the run's end). */
static void release_key(run *r, const uint8_t key[JC__KEY_LEN])
{
    /* (A result retried in smaller pieces on a full disk may come again:
     * past the array's room, the release waits for the run's end, which
     * releases everything.) */
    if (r->leases && r->release && r->nrelease < r->release_cap)
        memcpy(r->release + JC__KEY_LEN * r->nrelease++, key, JC__KEY_LEN);
}

/* Writes queue[from, from + n) in one transaction (with the queued hit
 * counts when touches). A result that cannot be stored for a reason of its
 * own (too large for SQLite, out of memory encoding it) is reported and
 * skipped; the others are stored. Returns 0 when the transaction committed,
 * JC_EFULL when the disk was full (everything rolled back), or another
 * negative code when it could not begin or commit. */
static int write_piece(run *r, size_t from, size_t n, bool touches)
{
    jc_cache *st = r->cache;
    int rc = jc__cache_begin(st);
    if (rc)
        return rc;
    /* Bookkeeping: a failure loses no result; if SQLite ended the
     * transaction over it, a new one is begun for the results. */
    if (touches && jc__cache_flush_touches(r->cache) && !jc__cache_in_transaction(st) && (rc = jc__cache_begin(st)))
        return rc;
    double now = jc__now();
    size_t too_large = 0;
    if (touches && r->leases) {
        /* Leases ride on the same transaction: this run's claims renewed,
         * and those of its failed calls released, so that a process
         * waiting for them computes them itself. Bookkeeping: a failure
         * here stores every result all the same. */
        jc__cache_lease_release(r->cache, r->release, r->nrelease);
        r->nrelease = 0;
        jc__cache_lease_renew(r->cache, r->lease_ttl);
        r->last_renew = jc__monotonic();
        if (!jc__cache_in_transaction(st) && (rc = jc__cache_begin(st)))
            return rc;
    }
    for (size_t i = from; i < from + n && jc__cache_in_transaction(st); i++) {
        const unstored *u = &r->queue[i];
        const slot *sl = &r->res->slots[u->slot];
        const pending *call = &r->batch->calls[sl->first];
        rc = jc__cache_put(r->cache, call->key, call->fn, call->argv, call->argc, sl->value, u->blob, u->blob_len,
                           u->seconds, now);
        if (rc == JC_EFULL)
            break;
        if (rc == 1)
            too_large++; /* too large for max_size: warned about, not stored */
        else if (rc)
            note_store_error(r, rc);
        if (rc)
            release_key(r, call->key); /* not stored: a waiter computes it */
        rc = 0;
    }
    if (rc != JC_EFULL)
        rc = jc__cache_in_transaction(st) ? jc__cache_commit(r->cache) : JC_EIO;
    if (rc == 0)
        r->p.too_large += too_large;
    if (rc == JC_EFULL && jc__cache_in_transaction(st))
        jc__cache_rollback(st);
    return rc;
}

/* Writes the queued results and hit counts in one transaction. When the
 * transaction cannot even begin (the file locked past the busy timeout),
 * the queue is kept for the next attempt; the last attempt (final) reports
 * it. When the disk is full, what fits is committed in smaller and smaller
 * pieces, down to one result; a result that does not fit alone is not
 * stored (counted in r->unstored: the caller still gets it), and the run
 * goes on. */
static void flush(run *r, bool final)
{
    if (!r->writable || (!r->nqueue && !jc__cache_pending(r->cache) && !r->nrelease))
        return;
    r->last_commit = jc__monotonic();
    size_t done = 0;
    int rc = r->full ? JC_EFULL : write_piece(r, 0, r->nqueue, true);
    if (rc == 0) {
        done = r->nqueue;
    } else if (rc == JC_EFULL) {
        char *full_msg = jc__strdup(jc_errmsg());
        r->full = true;
        jc__cache_drop_pending(r->cache); /* hit counts first give way to results */
        size_t piece = r->nqueue > 1 ? r->nqueue / 2 : 1;
        while (done < r->nqueue) {
            size_t n = piece < r->nqueue - done ? piece : r->nqueue - done;
            int prc = write_piece(r, done, n, false);
            if (prc == 0) {
                done += n;
            } else if (prc == JC_EFULL && n > 1) {
                piece = n / 2;
            } else if (prc == JC_EFULL) {
                r->unstored++; /* does not fit even alone */
                release_key(r, r->batch->calls[r->res->slots[r->queue[done].slot].first].key);
                done++;
            } else {
                note_store_error(r, prc);
                if (final)
                    r->unstored += r->nqueue - done, done = r->nqueue;
                break;
            }
        }
        if (r->unstored && !r->full_msg)
            r->full_msg = full_msg, full_msg = NULL;
        free(full_msg);
    } else {
        /* Could not begin (locked), or the commit failed: kept for the next
         * attempt, which the last flush reports. */
        if (final) {
            if (r->nqueue)
                note_store_error(r, rc);
            jc__cache_drop_pending(r->cache); /* hit counts are bookkeeping: dropped, not retried forever */
            r->unstored += r->nqueue;
            done = r->nqueue; /* what was queued is lost to the file, not to the caller */
        }
    }
    for (size_t i = 0; i < done; i++)
        free(r->queue[i].blob);
    memmove(r->queue, r->queue + done, (r->nqueue - done) * sizeof *r->queue);
    r->nqueue -= done;
}

/* Commits when due: every COMMIT_SECONDS, every COMMIT_EVERY results, when
 * the run is being interrupted (a second signal may end the program), and,
 * in-process, after every result that took 10 ms or more: the next call
 * runs in this thread and may be long, and what it waits behind would be
 * lost to a kill. Worker backends commit on the timer, since nothing long
 * runs in this thread. */
/* How long this run's claims last unless renewed: a claim is renewed with
 * every write transaction and at least every quarter of it, but not while a
 * call runs in this thread (n_jobs = 1), so it outlasts the longest call
 * seen so far four times over. Only owners in another pid namespace or on
 * another machine rely on it: in this one, a claim lasts while its process
 * lives. */
#define LEASE_TTL 30.0

static void renew_if_due(run *r)
{
    if (!r->leases)
        return;
    double ttl = r->longest_call * 4 > LEASE_TTL ? r->longest_call * 4 : LEASE_TTL;
    if (ttl > r->lease_ttl)
        r->lease_ttl = ttl;
    if (jc__monotonic() - r->last_renew < r->lease_ttl / 4 && !r->nrelease)
        return;
    if (jc__cache_begin(r->cache) == 0) {
        jc__cache_lease_release(r->cache, r->release, r->nrelease);
        r->nrelease = 0;
        jc__cache_lease_renew(r->cache, r->lease_ttl);
        jc__cache_commit(r->cache);
    }
    r->last_renew = jc__monotonic();
}

static void flush_if_due(run *r)
{
    if ((r->nqueue || r->nrelease) &&
        (r->nqueue >= COMMIT_EVERY || jc__interrupted || (r->inprocess && r->last_seconds >= 0.01) ||
         r->nrelease || jc__monotonic() - r->last_commit >= COMMIT_SECONDS))
        flush(r, false);
    renew_if_due(r);
}

static void update_progress(run *r, size_t running, bool force)
{
    r->p.running = running;
    r->p.elapsed = jc__monotonic() - r->t0;
    if (r->batch->opts.on_progress)
        r->batch->opts.on_progress(&r->p, r->batch->opts.userdata);
    jc__progress_update(&r->line, &r->p, force);
}

static void tick(void *ctx, size_t running)
{
    run *r = ctx;
    flush_if_due(r);
    update_progress(r, running, false);
}

/* How many submissions share slot s (for per-submission counts). */
static size_t weight(const run *r, size_t s)
{
    return r->res->slots[s].nsubs;
}

/* JC_VERBOSE_DETAIL: a line for each failure, and for each tenth of the
 * run finished (joblib's verbose above 1). */
static void detail_lines(run *r, const slot *sl)
{
    if (sl->status != JC_STATUS_OK && sl->error)
        jc__progress_note(&r->line, sl->error);
    size_t tenth = r->p.total ? r->p.done * 10 / r->p.total : 10;
    if (tenth > r->tenths_told && tenth < 10) {
        r->tenths_told = tenth;
        char text[160];
        double elapsed = jc__monotonic() - r->t0;
        snprintf(text, sizeof text, "%zu0%% done (%zu of %zu calls, %zu cached, %zu computed, %zu failed) "
                 "after %.1f s", tenth, r->p.done, r->p.total, r->p.cached, r->p.computed, r->p.failed, elapsed);
        jc__progress_note(&r->line, text);
    }
}

static bool deliver(void *ctx, jc__outcome *o)
{
    run *r = ctx;
    size_t s = r->task_slot[o->task];
    slot *sl = &r->res->slots[s];
    const pending *call = &r->batch->calls[sl->first];
    sl->seconds = o->seconds;
    sl->status = (uint8_t)o->status;
    sl->done = true;
    if (o->status == JC_STATUS_OK && !o->value) {
        if (jc__decode_value(o->blob, o->blob_len, &o->value)) {
            char *desc = jc__call_describe_fn(call->fn, call->argv, call->argc);
            sl->status = JC_STATUS_ERROR;
            o->error = jc__strdup_printf("%s: the result came back undecodable: %s", desc ? desc : call->fn->name,
                                         jc_errmsg());
            free(desc);
        }
    }
    r->last_seconds = o->seconds;
    if (o->seconds > r->longest_call)
        r->longest_call = o->seconds;
    if (sl->status != JC_STATUS_OK)
        release_key(r, call->key);
    if (sl->status == JC_STATUS_OK) {
        sl->value = o->value;
        o->value = NULL;
        r->p.computed += weight(r, s);
        if (r->writable) {
            r->queue[r->nqueue++] = (unstored){.slot = s, .blob = o->blob, .blob_len = o->blob_len,
                                                .seconds = o->seconds};
            o->blob = NULL;
        }
    } else {
        jc_value_free(o->value);
        o->value = NULL;
        sl->error = o->error ? o->error : jc__strdup_printf("%s: failed", call->fn->name);
        o->error = NULL;
        r->p.failed += weight(r, s);
        if (r->batch->opts.on_error == JC_ON_ERROR_STOP)
            r->stopped = true;
    }
    free(o->blob);
    free(o->error);
    r->p.done += weight(r, s);
    if (r->line.detail)
        detail_lines(r, sl);
    flush_if_due(r);
    if (r->batch->opts.on_result)
        r->batch->opts.on_result(r->res, sl->first, r->batch->opts.userdata);
    return r->stopped;
}

static void results_free_slots(jc_results *res)
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
    results_free_slots(res);
    free(res->slots);
    free(res->slot_of);
    free(res->message);
    free(res);
}

/* Gives each submission its slot: identical calls (same key) share one. The
 * table is open addressing on the key's first 8 bytes (already a hash). */
static int dedup(jc_batch *b, jc_results *res)
{
    size_t cap = 16;
    while (cap < 2 * b->n)
        cap *= 2;
    size_t *table = calloc(cap, sizeof *table); /* slot + 1, 0 = empty */
    if (!table)
        return jc__set_error(JC_ENOMEM, "out of memory deduplicating %zu calls", b->n);
    for (size_t i = 0; i < b->n; i++) {
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

/* Whether a hit of fn was computed by other code. The running code's
 * fingerprint is taken once per function and run (a sweep calls one
 * function many times). */
static bool code_changed(run *r, const jc_function *fn, const jc__found *f)
{
    if (!f->has_code_fp)
        return false;
    if (r->fp_fn != fn) {
        r->fp_fn = fn;
        r->fp_known = jc__cache_code_fp(fn, r->fp);
    }
    return r->fp_known && f->code_fp[0] == r->fp[0] && memcmp(f->code_fp, r->fp, sizeof r->fp) != 0;
}

static void note_code_change(run *r, const jc_function *fn)
{
    r->p.code_changed++;
    for (size_t i = 0; i < r->nchanged; i++)
        if (r->changed[i].fn == fn) {
            r->changed[i].entries++;
            return;
        }
    struct code_change *c = realloc(r->changed, (r->nchanged + 1) * sizeof *c);
    if (!c)
        return; /* out of memory: counted, not named */
    r->changed = c;
    r->changed[r->nchanged++] = (struct code_change){fn, 1};
}

/* One line per function whose hits came from other code. */
static void warn_code_changes(const run *r)
{
    if (r->batch->opts.on_code_change != JC_ON_CODE_CHANGE_WARN)
        return;
    for (size_t i = 0; i < r->nchanged; i++) {
        const jc_function *fn = r->changed[i].fn;
        fprintf(stderr,
                "jobcache: warning: %zu cached result%s of %s (version %s) %s computed by different code: "
                "its machine code has changed since; if the change alters results, bump the version in "
                "JC_FUNCTION(%s, ...), or set JOBCACHE_ON_CODE_CHANGE=recompute (=ignore to silence this)\n",
                r->changed[i].entries, r->changed[i].entries == 1 ? "" : "s", fn->name, fn->version,
                r->changed[i].entries == 1 ? "was" : "were", fn->name);
    }
}

static void on_found(void *ctx, size_t s, jc__found *f)
{
    run *r = ctx;
    slot *sl = &r->res->slots[s];
    const pending *call = &r->batch->calls[sl->first];
    if (sl->done) { /* cannot happen: each key is answered once */
        jc_value_free(f->value);
        return;
    }
    if (code_changed(r, call->fn, f)) {
        note_code_change(r, call->fn);
        if (r->batch->opts.on_code_change == JC_ON_CODE_CHANGE_RECOMPUTE) {
            jc_value_free(f->value); /* a miss: computed again, the entry overwritten */
            return;
        }
    }
    /* Recorded in memory only during a run: the store is not called back. */
    jc__cache_touch(r->cache, f, call->key);
    sl->value = f->value;
    sl->status = JC_STATUS_OK;
    sl->cached = true;
    sl->done = true;
    sl->seconds = f->seconds;
    r->p.cached += weight(r, s);
    r->p.done += weight(r, s);
    r->p.saved += f->seconds * (double)weight(r, s);
}

/* Answers hits from the cache, all distinct calls in one go; the rest
 * become tasks. */
static int lookup(run *r)
{
    jc_results *res = r->res;
    const uint8_t **keys = malloc((res->nslots ? res->nslots : 1) * sizeof *keys);
    if (!keys)
        return jc__set_error(JC_ENOMEM, "out of memory looking up %zu calls", res->nslots);
    for (size_t s = 0; s < res->nslots; s++)
        keys[s] = r->batch->calls[res->slots[s].first].key;
    /* Lookups only read: the hits they record are written with the first
     * results, or at the end of the run. */
    size_t damaged = jc__cache_damaged(r->cache);
    int rc = jc__cache_lookup_many(r->cache, keys, res->nslots, on_found, r);
    r->p.damaged += jc__cache_damaged(r->cache) - damaged;
    free(keys);
    for (size_t s = 0; s < res->nslots && !rc; s++) {
        slot *sl = &res->slots[s];
        if (sl->done) {
            /* After the lookups, so that the callback may use the cache. */
            if (r->batch->opts.on_result)
                r->batch->opts.on_result(r->res, sl->first, r->batch->opts.userdata);
            continue;
        }
        const pending *call = &r->batch->calls[sl->first];
        r->task_slot[r->ntasks] = s;
        r->tasks[r->ntasks++] = (jc__task){.fn = call->fn, .argv = call->argv, .argc = call->argc};
    }
    return rc;
}

/* The signal that asked the running jc_run to stop, 0 if none; and the one
 * that stopped the last run, for jc_raise_interrupt. */
volatile sig_atomic_t jc__interrupted;
static volatile sig_atomic_t last_interrupt;

/* The first SIGINT/SIGTERM asks the run to stop cleanly: workers stopped,
 * finished results committed, jc_run returns JC_EINTR. A second one, while
 * a long in-process call is still running, gets the default action. */
static void on_interrupt(int sig)
{
    if (jc__interrupted) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    jc__interrupted = sig;
}

int jc_interrupted_signal(void)
{
    return last_interrupt;
}

void jc_raise_interrupt(void)
{
    int sig = last_interrupt;
    if (!sig)
        return;
    fflush(NULL);
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    /* The default action of SIGINT and SIGTERM ends the process; should a
     * program have set it up otherwise after all, end it as a shell would
     * report the signal. */
    _exit(128 + sig);
}

typedef struct saved_signals {
    struct sigaction sigint, sigterm;
    bool int_set, term_set;
} saved_signals;

/* Takes over SIGINT and SIGTERM for the run, unless the program handles,
 * ignores or blocks them itself (then they are left alone: a program that
 * waits for its signals with sigwait or a signalfd keeps them). SA_RESTART,
 * so that a Ctrl-C during an in-process call does not make the function's
 * own system calls fail with EINTR. */
static void catch_interrupts(saved_signals *s, sigset_t *taken)
{
    struct sigaction sa = {.sa_handler = on_interrupt, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigemptyset(taken);
    jc__interrupted = 0;
    sigset_t mask;
    sigprocmask(SIG_BLOCK, NULL, &mask);
    s->int_set = s->term_set = false;
    if (!sigismember(&mask, SIGINT) && sigaction(SIGINT, NULL, &s->sigint) == 0 &&
        s->sigint.sa_handler == SIG_DFL && !(s->sigint.sa_flags & SA_SIGINFO))
        s->int_set = sigaction(SIGINT, &sa, NULL) == 0;
    if (!sigismember(&mask, SIGTERM) && sigaction(SIGTERM, NULL, &s->sigterm) == 0 &&
        s->sigterm.sa_handler == SIG_DFL && !(s->sigterm.sa_flags & SA_SIGINFO))
        s->term_set = sigaction(SIGTERM, &sa, NULL) == 0;
    if (s->int_set)
        sigaddset(taken, SIGINT);
    if (s->term_set)
        sigaddset(taken, SIGTERM);
}

static void release_interrupts(const saved_signals *s)
{
    if (s->int_set)
        sigaction(SIGINT, &s->sigint, NULL);
    if (s->term_set)
        sigaction(SIGTERM, &s->sigterm, NULL);
}

/* Runs r->tasks on the backend. With taken NULL, takes SIGINT/SIGTERM over
 * for the time of it; else they are already taken (the wait for other
 * processes' calls holds them across its rounds), as *taken says. */
static int execute_with(run *r, const sigset_t *taken)
{
    jc_options *o = &r->batch->opts;
    int want = resolve_n_jobs(o->n_jobs);
    /* The backend follows from n_jobs, not from how many misses there are:
     * a single miss of an n_jobs = -1 run still runs isolated in a worker. */
    int workers = (size_t)want > r->ntasks ? (r->ntasks ? (int)r->ntasks : 1) : want;
    r->line.workers = workers;
    jc__exec ex = {
        .tasks = r->tasks,
        .ntasks = r->ntasks,
        .nworkers = workers,
        .timeout = o->timeout_seconds,
        .memory_limit = o->memory_limit,
        .deliver = deliver,
        .tick = tick,
        .ctx = r,
    };
    jc_backend backend = o->backend;
    if (backend == JC_BACKEND_AUTO && jc__mpi_workers() > 0)
        backend = JC_BACKEND_MPI;
    else if (backend == JC_BACKEND_AUTO)
        backend = want == 1 && o->timeout_seconds == 0 && o->memory_limit == 0 ? JC_BACKEND_INPROCESS
                                                                               : JC_BACKEND_FORK;
    if (backend == JC_BACKEND_MPI) {
        /* Every worker rank (n_jobs does not apply), none idle by design. */
        int ranks = jc__mpi_workers();
        workers = (size_t)ranks > r->ntasks ? (r->ntasks ? (int)r->ntasks : 1) : ranks;
        ex.nworkers = workers;
        r->line.workers = workers;
        r->line.ranks = ranks + 1;
    }
    r->inprocess = backend == JC_BACKEND_INPROCESS;
    r->backend_name = backend == JC_BACKEND_FORK      ? "fork"
                      : backend == JC_BACKEND_THREADS ? "threads"
                      : backend == JC_BACKEND_MPI     ? "mpi"
                                                      : "in-process";
    r->line.backend = r->backend_name;
    r->workers = r->inprocess ? 1 : workers;
    saved_signals saved;
    if (taken)
        ex.interrupts = *taken;
    else
        catch_interrupts(&saved, &ex.interrupts);
    int rc;
    switch (backend) {
    case JC_BACKEND_FORK: rc = jc__exec_fork(&ex); break;
    case JC_BACKEND_THREADS: rc = jc__exec_threads(&ex); break;
    case JC_BACKEND_MPI: rc = jc__exec_mpi(&ex); break;
    default: rc = jc__exec_inprocess(&ex); break;
    }
    if (!taken)
        release_interrupts(&saved);
    last_interrupt = rc == JC_EINTR || jc__interrupted ? (jc__interrupted ? jc__interrupted : SIGINT) : 0;
    /* A signal that arrived as the last calls finished still counts: the
     * program asked to stop. */
    if (!rc && jc__interrupted)
        rc = jc__set_error(JC_EINTR, "interrupted by %s", jc__interrupted == SIGTERM ? "SIGTERM" : "SIGINT");
    return rc;
}

static int execute(run *r)
{
    return execute_with(r, NULL);
}

/* ---- leases: claiming the misses, waiting for other processes' ---- */

/* The keys of the slots of r->tasks. */
static const uint8_t **task_keys(run *r, const size_t *slots, size_t n)
{
    const uint8_t **keys = malloc((n ? n : 1) * sizeof *keys);
    if (keys)
        for (size_t i = 0; i < n; i++)
            keys[i] = r->batch->calls[r->res->slots[slots[i]].first].key;
    return keys;
}

/* Claims the misses before computing them. Those another live process
 * holds move from r->tasks to r->waiting: this run computes its own first,
 * then waits for theirs (wait_for_others). A failure to claim is not an
 * error of the run: it computes everything, as without leases. */
static int claim_misses(run *r)
{
    if (!jc__cache_leases_enabled(r->cache) || !r->ntasks)
        return 0;
    r->leases = true;
    r->lease_ttl = LEASE_TTL;
    r->last_renew = jc__monotonic();
    r->release_cap = r->ntasks;
    r->release = malloc(r->ntasks * JC__KEY_LEN);
    r->waiting = malloc(r->ntasks * sizeof *r->waiting);
    const uint8_t **keys = task_keys(r, r->task_slot, r->ntasks);
    bool *theirs = malloc(r->ntasks * sizeof *theirs);
    if (!r->release || !r->waiting || !keys || !theirs) {
        free(keys);
        free(theirs);
        return jc__set_error(JC_ENOMEM, "out of memory claiming %zu calls", r->ntasks);
    }
    jc__cache_claim(r->cache, keys, r->ntasks, r->lease_ttl, theirs);
    size_t k = 0;
    for (size_t i = 0; i < r->ntasks; i++) {
        if (theirs[i]) {
            r->waiting[r->nwaiting++] = r->task_slot[i];
            continue;
        }
        r->tasks[k] = r->tasks[i];
        r->task_slot[k++] = r->task_slot[i];
    }
    r->ntasks = k;
    r->p.waiting = r->nwaiting;
    free(keys);
    free(theirs);
    return 0;
}

/* Sleeps about seconds, or less when a signal arrives. */
static void nap(double seconds)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
}

static void on_found(void *ctx, size_t s, jc__found *f);

/* lookup_many answers by index into its keys: the waiting slots'. */
typedef struct waiting_ctx {
    run *r;
    const size_t *slots;
} waiting_ctx;

static void on_found_waiting(void *ctx, size_t i, jc__found *f)
{
    waiting_ctx *wc = ctx;
    on_found(wc->r, wc->slots[i], f);
}

/* After its own misses, the run waits for the calls other processes hold:
 * it polls the store (20 ms at first, then at most every 200 ms; no lock
 * is held between polls) and takes each result as a hit as it is stored.
 * A call whose owner died, or released it (its call failed: failures are
 * not cached), or whose claim expired, is claimed and computed here. The
 * wait ends with the last such call; SIGINT and SIGTERM end it at once. */
static int wait_loop(run *r, const sigset_t *taken)
{
    double delay = 0.02;
    int rc = 0;
    while (r->nwaiting && !rc && !r->stopped) {
        r->ntasks = 0; /* the tasks of the last round are done */
        if (!jc__interrupted)
            nap(delay);
        if (jc__interrupted) {
            last_interrupt = jc__interrupted;
            return jc__set_error(JC_EINTR, "interrupted by %s while waiting for calls of other processes",
                                 jc__interrupted == SIGTERM ? "SIGTERM" : "SIGINT");
        }
        delay = delay * 2 < 0.2 ? delay * 2 : 0.2;
        renew_if_due(r);
        update_progress(r, 0, false);

        /* Results stored meanwhile: hits. */
        const uint8_t **keys = task_keys(r, r->waiting, r->nwaiting);
        if (!keys)
            return jc__set_error(JC_ENOMEM, "out of memory waiting for %zu calls", r->nwaiting);
        waiting_ctx wc = {r, r->waiting};
        rc = jc__cache_lookup_many(r->cache, keys, r->nwaiting, on_found_waiting, &wc);
        size_t k = 0;
        for (size_t i = 0; i < r->nwaiting; i++) {
            slot *sl = &r->res->slots[r->waiting[i]];
            if (sl->done) {
                if (r->batch->opts.on_result)
                    r->batch->opts.on_result(r->res, sl->first, r->batch->opts.userdata);
                continue;
            }
            r->waiting[k++] = r->waiting[i];
        }
        r->nwaiting = k;
        r->p.waiting = k;
        free(keys);
        if (rc || !r->nwaiting)
            break;

        /* Calls no longer held by a live owner: claimed, and computed here. */
        keys = task_keys(r, r->waiting, r->nwaiting);
        bool *held = malloc(r->nwaiting * sizeof *held);
        if (!keys || !held) {
            free(keys);
            free(held);
            return jc__set_error(JC_ENOMEM, "out of memory waiting for %zu calls", r->nwaiting);
        }
        jc__cache_still_held(r->cache, keys, r->nwaiting, held);
        size_t nfree = 0;
        for (size_t i = 0; i < r->nwaiting; i++)
            if (!held[i])
                keys[nfree++] = keys[i];
        if (nfree) {
            bool *theirs = held; /* reused: nfree <= nwaiting */
            jc__cache_claim(r->cache, keys, nfree, r->lease_ttl, theirs);
            size_t j = 0;
            k = 0;
            for (size_t i = 0; i < r->nwaiting; i++) {
                size_t s = r->waiting[i];
                const uint8_t *key = r->batch->calls[r->res->slots[s].first].key;
                if (j < nfree && keys[j] == key) {
                    if (!theirs[j]) {
                        const pending *call = &r->batch->calls[r->res->slots[s].first];
                        r->task_slot[r->ntasks] = s;
                        r->tasks[r->ntasks++] = (jc__task){.fn = call->fn, .argv = call->argv, .argc = call->argc};
                        j++;
                        continue;
                    }
                    j++;
                }
                r->waiting[k++] = s;
            }
            r->nwaiting = k;
            r->p.waiting = k;
        }
        free(keys);
        free(held);
        if (r->ntasks) {
            rc = execute_with(r, taken);
            flush(r, false);
            delay = 0.02;
        }
    }
    return rc;
}

/* SIGINT and SIGTERM are taken over once for the whole wait, its polls and
 * the rounds of calls it computes: a signal at any point of it ends the
 * wait with JC_EINTR (not the default action half-way through a lookup). */
static int wait_for_others(run *r)
{
    saved_signals saved;
    sigset_t taken;
    catch_interrupts(&saved, &taken);
    int rc = wait_loop(r, &taken);
    release_interrupts(&saved);
    if (!rc && jc__interrupted) {
        last_interrupt = jc__interrupted;
        rc = jc__set_error(JC_EINTR, "interrupted by %s while waiting for calls of other processes",
                           jc__interrupted == SIGTERM ? "SIGTERM" : "SIGINT");
    }
    return rc;
}

/* Appends the run to the record of runs, with its failures (at most 1000).
 * Bookkeeping: a failure to record changes nothing of the run. */
enum { RECORD_FAILURES = 1000 };

static void record_run(run *r)
{
    jc_results *res = r->res;
    jc__run_failure *fails = calloc(RECORD_FAILURES, sizeof *fails);
    size_t nf = 0;
    for (size_t s = 0; fails && s < res->nslots && nf < RECORD_FAILURES; s++) {
        const slot *sl = &res->slots[s];
        if (sl->status == JC_STATUS_OK || sl->status == JC_STATUS_SKIPPED || !sl->error)
            continue;
        fails[nf].status = jc_status_name((jc_status)sl->status);
        fails[nf++].message = sl->error;
    }
    jc__run_row row = {
        .started = r->started_wall, .ended = jc__now(), .kind = "run",
        .n_jobs = r->workers ? r->workers : 1, .backend = r->backend_name ? r->backend_name : "none",
        .calls = (int64_t)r->p.total, .cached = (int64_t)r->p.cached, .computed = (int64_t)r->p.computed,
        .failed = (int64_t)r->p.failed, .skipped = (int64_t)r->p.skipped, .elapsed = r->p.elapsed,
        .saved = r->p.saved, .status = res->status ? jc_err_name(res->status) : "ok",
        .failures = fails, .nfailures = nf,
    };
    jc__cache_record_run(r->cache, &row);
    free(fails);
}

/* Marks what never ran as skipped, and settles the run's status. */
static void finish(run *r, int exec_rc)
{
    jc_results *res = r->res;
    for (size_t s = 0; s < res->nslots; s++) {
        slot *sl = &res->slots[s];
        if (sl->done)
            continue;
        const pending *call = &r->batch->calls[sl->first];
        sl->status = JC_STATUS_SKIPPED;
        sl->done = true;
        sl->error = jc__strdup_printf("%s: skipped: %s", call->fn->name,
                                      exec_rc == JC_EINTR ? "the run was interrupted"
                                      : r->stopped        ? "an earlier call failed (on_error = stop)"
                                                          : "the run stopped early");
        r->p.skipped += weight(r, s);
        r->p.done += weight(r, s);
    }
    if (exec_rc == JC_EINTR) {
        res->status = JC_EINTR;
        res->message = jc__strdup(jc_errmsg());
    } else if (exec_rc) {
        res->status = exec_rc;
        res->message = jc__strdup(jc_errmsg());
    } else if (r->unstored && r->full_msg) {
        res->status = JC_EFULL;
        res->message = jc__strdup_printf("%zu result%s could not be stored (every result is returned; "
                                         "what fitted is stored): %s",
                                         r->unstored, r->unstored == 1 ? "" : "s", r->full_msg);
    } else if (r->store_rc) {
        res->status = JC_EIO;
        res->message = jc__strdup_printf("results could not be stored: %s", r->store_msg);
    } else if (r->p.failed || r->p.skipped) {
        res->status = JC_EFAILED;
        for (size_t s = 0; s < res->nslots; s++)
            if (res->slots[s].status != JC_STATUS_OK && res->slots[s].status != JC_STATUS_SKIPPED) {
                res->message = jc__strdup_printf("%zu of %zu calls failed; the first: %s", r->p.failed,
                                                 r->p.total, res->slots[s].error);
                break;
            }
    }
    if (!res->message && r->evict_msg)
        res->message = jc__strdup(r->evict_msg); /* the status stays: every result is fine */
}

/* With a maximum size, least recently used entries go after the run when
 * the file takes more (the hits of this run count as recent): a check in
 * constant time, and a pass over the entries only when eviction is due
 * (jc__cache_enforce_size). A failure only adds to the results' message:
 * the results themselves are fine and stored. */
static void evict(run *r)
{
    /* (A cache without max_size, or read-only, returns at once.) */
    int rc = jc__cache_enforce_size(r->cache);
    if (rc && !r->evict_msg)
        r->evict_msg = jc__strdup_printf("every result was stored, but evicting down to max_size failed: %s",
                                         jc_errmsg());
}

/* ---- plans ---- */

typedef struct plan_ctx {
    size_t cached;
    bool *hit;
} plan_ctx;

static void plan_found(void *ctx, size_t i, jc__found *f)
{
    plan_ctx *p = ctx;
    jc_value_free(f->value);
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
    out->workers = resolve_n_jobs(b->opts.n_jobs);
    jc_results res = {0};
    size_t n = b->n ? b->n : 1;
    res.slot_of = malloc(n * sizeof *res.slot_of);
    res.slots = calloc(n, sizeof *res.slots);
    const uint8_t **keys = malloc(n * sizeof *keys);
    bool *hit = calloc(n, sizeof *hit);
    int rc = res.slot_of && res.slots && keys && hit ? dedup(b, &res)
                                                      : jc__set_error(JC_ENOMEM, "jc_plan: out of memory");
    plan_ctx pc = {.hit = hit};
    if (!rc) {
        for (size_t s = 0; s < res.nslots; s++)
            keys[s] = b->calls[res.slots[s].first].key;
        rc = jc__cache_lookup_many(b->cache, keys, res.nslots, plan_found, &pc);
    }
    jc_stats *st = !rc && jc__cache_has_store(b->cache) ? jc_cache_stats(b->cache) : NULL;
    if (!rc) {
        out->distinct = res.nslots;
        out->cached = pc.cached;
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
    char unknown[96] = "";
    if (p->not_estimated)
        snprintf(unknown, sizeof unknown, " (%zu of them of functions with no stored time)", p->not_estimated);
    return jc__strdup_printf("%s call%s: %s cached, %s to compute%s%s on %d worker%s", calls,
                             p->calls == 1 ? "" : "s", cached, todo, unknown, time, p->workers,
                             p->workers == 1 ? "" : "s");
}

jc_results *jc_run(jc_batch *b)
{
    if (!b) {
        jc__set_error(JC_EINVAL, "jc_run: the batch is NULL");
        return NULL;
    }
    if (b->error) {
        jc__set_error(b->error, "jc_run: the batch has a bad call: %s", b->errmsg ? b->errmsg : "?");
        return NULL;
    }
    if (b->ran) {
        jc__set_error(JC_EINVAL, "jc_run: this batch has already run; make a new one");
        return NULL;
    }
    bool dry = false;
    if (jc__env_bool(b->cache, "JOBCACHE_DRY_RUN", &dry) < 0) {
        jc__set_error(JC_EINVAL, "jc_run: %s", jc_errmsg());
        return NULL;
    }
    if (dry) {
        /* As make -n: the plan, then the end of the program, computing
         * nothing (skipped results would let it write empty outputs). */
        jc_plan_info plan;
        if (jc_plan(b, &plan) == 0) {
            char *text = jc_plan_text(&plan);
            fprintf(stderr, "jobcache: dry run (JOBCACHE_DRY_RUN): %s; cache %s\n", text ? text : "?",
                    jc_cache_path(b->cache) ? jc_cache_path(b->cache) : "disabled");
            free(text);
            fflush(NULL);
            exit(0);
        }
        fprintf(stderr, "jobcache: dry run (JOBCACHE_DRY_RUN): no plan: %s\n", jc_errmsg());
        fflush(NULL);
        exit(2);
    }
    if (jc__cache_run_start(b->cache))
        return NULL;
    b->ran = true;
    last_interrupt = 0;

    run r = {.batch = b, .cache = b->cache, .t0 = jc__monotonic(), .started_wall = jc__now()};
    r.last_commit = r.t0;
    r.writable = jc__cache_writable(b->cache);
    r.p.total = b->n;
    jc__progress_init(&r.line, b->opts.verbose);
    jc_results *res = r.res = calloc(1, sizeof *res);
    size_t n = b->n ? b->n : 1;
    if (res) {
        res->n = b->n;
        res->slot_of = malloc(n * sizeof *res->slot_of);
        res->slots = calloc(n, sizeof *res->slots);
    }
    r.tasks = malloc(n * sizeof *r.tasks);
    r.task_slot = malloc(n * sizeof *r.task_slot);
    r.queue = malloc(n * sizeof *r.queue);
    int rc = 0;
    if (!res || !res->slot_of || !res->slots || !r.tasks || !r.task_slot || !r.queue)
        rc = jc__set_error(JC_ENOMEM, "jc_run: out of memory for %zu calls", b->n);
    if (!rc)
        rc = dedup(b, res);
    if (!rc) {
        for (size_t i = 0; i < b->n; i++) {
            res->slots[res->slot_of[i]].nsubs++;
            res->slots[res->slot_of[i]].refs++;
        }
        rc = lookup(&r);
    }
    if (!rc) {
        update_progress(&r, 0, false);
        int exec_rc = claim_misses(&r);
        if (!exec_rc && r.ntasks)
            exec_rc = execute(&r);
        if (!exec_rc && r.nwaiting) {
            flush(&r, false); /* this run's own results first: others may wait for them */
            /* A failure while waiting (the store unreadable a moment) keeps
             * every result already had: the calls still awaited are skipped
             * and the run reports why. */
            int wrc = wait_for_others(&r);
            if (wrc == JC_EINTR)
                exec_rc = wrc;
            else if (wrc)
                note_store_error(&r, wrc);
        }
        flush(&r, true);
        if (r.leases)
            jc__cache_lease_end(r.cache);
        evict(&r);
        warn_code_changes(&r);
        if (exec_rc && exec_rc != JC_EINTR && r.p.done == r.p.cached) {
            rc = exec_rc; /* the backend could not start at all */
        } else {
            finish(&r, exec_rc);
            r.p.elapsed = jc__monotonic() - r.t0;
            r.p.running = 0;
            res->summary = r.p;
            if (b->opts.on_progress)
                b->opts.on_progress(&r.p, b->opts.userdata);
            jc__progress_finish(&r.line, &r.p, jc_cache_path(b->cache));
            record_run(&r);
        }
    }
    jc__progress_release(&r.line); /* SIGWINCH back as it was, whatever happened */
    if (rc && res && res->slots)
        flush(&r, true); /* keep whatever was computed before the failure */
    free(r.tasks);
    free(r.task_slot);
    for (size_t i = 0; i < r.nqueue; i++) /* results the file could not take */
        free(r.queue[i].blob);
    free(r.queue);
    free(r.evict_msg);
    free(r.changed);
    free(r.full_msg);
    free(r.waiting);
    free(r.release);
    jc__cache_run_end(b->cache);
    free(r.store_msg);
    if (rc) {
        char *msg = jc__strdup(jc_errmsg());
        if (res) {
            if (res->slots && res->slot_of)
                results_free_slots(res);
            free(res->slots);
            free(res->slot_of);
            free(res);
        }
        jc__set_error(rc, "%s", msg ? msg : jc_strerror(rc));
        free(msg);
        return NULL;
    }
    return res;
}

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

const char *jc_status_name(jc_status s)
{
    switch (s) {
    case JC_STATUS_OK: return "ok";
    case JC_STATUS_ERROR: return "error";
    case JC_STATUS_CRASHED: return "crashed";
    case JC_STATUS_TIMEOUT: return "timed out";
    case JC_STATUS_SKIPPED: return "skipped";
    }
    return "unknown";
}

/* ---- one memoized call ---- */

/* The policy for a jc_memo hit computed by other code: the environment's,
 * else warn, once per function and cache handle. */
static jc_on_code_change memo_code_change(jc_cache *cache, const jc_function *fn)
{
    jc_on_code_change policy = JC_ON_CODE_CHANGE_WARN;
    if (code_change_from_env(cache, &policy)) {
        fprintf(stderr, "jobcache: %s; warning instead\n", jc_errmsg());
        policy = JC_ON_CODE_CHANGE_WARN;
    }
    if (policy != JC_ON_CODE_CHANGE_WARN)
        return policy;
    if (!jc__cache_warn_once(cache, fn))
        return policy;
    fprintf(stderr,
            "jobcache: warning: a cached result of %s (version %s) was computed by different code: its "
            "machine code has changed since; if the change alters results, bump the version in "
            "JC_FUNCTION(%s, ...), or set JOBCACHE_ON_CODE_CHANGE=recompute (=ignore to silence this)\n",
            fn->name, fn->version, fn->name);
    return policy;
}

jc_value *jc__memo(jc_cache *cache, jc_fn fn, jc_value *const *argv, size_t argc, const char *file, int line)
{
    if (!cache) {
        free_args(argv, argc);
        at_site(jc__set_error(JC_EINVAL, "jc_memo: the cache is NULL"), file, line);
        return NULL;
    }
    if (jc__cache_busy_elsewhere(cache)) {
        free_args(argv, argc);
        at_site(jc__set_error(JC_EBUSY, "jc_memo: this cache is running a batch in another thread; a "
                              "cache is used by one thread at a time"), file, line);
        return NULL;
    }
    const jc_function *desc = jc__cache_memo_function(cache, fn);
    uint8_t key[JC__KEY_LEN];
    if (prepare("jc_memo", desc, argv, argc, key)) {
        at_site(jc_errcode(), file, line);
        return NULL;
    }

    jc__found found;
    int rc = jc__cache_lookup(cache, key, &found);
    if (rc < 0) {
        free_args(argv, argc);
        return NULL;
    }
    if (rc == 1 && found.has_code_fp && jc__cache_code_changed(desc, &found) &&
        memo_code_change(cache, desc) == JC_ON_CODE_CHANGE_RECOMPUTE) {
        jc_value_free(found.value);
        rc = 0;
    }
    if (rc == 1) {
        jc__cache_touch(cache, &found, key);
        jc__cache_memo_note(cache, JC_STATUS_OK, true, found.seconds, NULL);
        free_args(argv, argc);
        return found.value;
    }
    jc_value *value = NULL;
    double secs = 0;
    char *error = NULL;
    jc_status status = jc__call_invoke(desc, argv, argc, &value, &error, &secs);
    jc__cache_memo_note(cache, status, false, secs, error ? error : desc->name);
    if (status != JC_STATUS_OK) {
        jc__set_error(JC_EFAILED, "%s", error ? error : desc->name);
        at_site(JC_EFAILED, file, line);
        free(error);
        free_args(argv, argc);
        return NULL;
    }
    if (jc__cache_writable(cache) && jc__cache_begin(cache) == 0) {
        /* A result that cannot be stored is still returned: the computation
         * succeeded, and the file stays as it was (see jc_memo). Hit counts
         * are bookkeeping: their failure does not stop the result. */
        jc__cache_flush_touches(cache);
        if (jc__cache_put(cache, key, desc, argv, argc, value, NULL, 0, secs, jc__now()) < 0)
            jc__cache_rollback(cache);
        else
            jc__cache_commit(cache);
        /* jc_memo keeps max_size as a run does (constant time when within). */
        jc__cache_enforce_size(cache);
    }
    free_args(argv, argc);
    return value;
}
