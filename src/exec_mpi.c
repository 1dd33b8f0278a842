/*
 * exec_mpi: the MPI backend (docs/mpi.md). Rank 0 of the job is the
 * coordinator: the only rank that opens the cache, hashes, deduplicates and
 * looks up; it runs the user's main. Every other rank enters a serve loop in
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
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mpi.h>

#include "exec.h"

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
/* JOBCACHE_MPI_KEEP, read by every rank at jc_mpi_init (mpirun and srun
 * give every rank the same environment). */
static size_t arg_cache_bytes = ARG_CACHE_DEFAULT;

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
     * decoded may still point into them: freed by arg_bury once the group
     * has run. */
    jc_value **dropped;
    size_t ndropped, capdropped;
} arg_cache;

/* A kept value leaves the cache: freed later, by arg_bury. */
static void arg_drop(arg_cache *c, jc_value *v)
{
    if (!v)
        return;
    if (c->ndropped == c->capdropped) {
        size_t cap = c->capdropped ? 2 * c->capdropped : 16;
        jc_value **d = realloc(c->dropped, cap * sizeof *d);
        if (!d)
            return; /* out of memory: left allocated rather than freed under a call */
        c->dropped = d;
        c->capdropped = cap;
    }
    c->dropped[c->ndropped++] = v;
}

/* Frees what left the cache: no call points into it any more. */
static void arg_bury(arg_cache *c)
{
    for (size_t i = 0; i < c->ndropped; i++)
        jc_value_free(c->dropped[i]);
    c->ndropped = 0;
}

static size_t arg_bytes(const jc_value *v)
{
    return v->type == JC_TYPE_BYTES ? v->len : v->len * 8;
}

/* The entry of digest d, now most recently used; NULL when not kept. */
static arg_entry *arg_find(arg_cache *c, const unsigned char d[25])
{
    for (size_t i = 0; i < c->n; i++)
        if (memcmp(c->e[i].digest, d, 25) == 0) {
            c->e[i].used = ++c->clock;
            return &c->e[i];
        }
    return NULL;
}

/* Keeps d (bytes long; value taken over, NULL in a mirror), the least
 * recently used out first to make room (what leaves goes to arg_drop). False
 * (value not taken) when it is larger than the whole cache or memory runs
 * out. */
static bool arg_keep(arg_cache *c, const unsigned char d[25], size_t bytes, jc_value *value)
{
    if (bytes > arg_cache_bytes)
        return false;
    while (c->bytes + bytes > arg_cache_bytes && c->n) {
        size_t old = 0;
        for (size_t i = 1; i < c->n; i++)
            if (c->e[i].used < c->e[old].used)
                old = i;
        c->bytes -= c->e[old].bytes;
        arg_drop(c, c->e[old].value);
        c->e[old] = c->e[--c->n];
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16;
        arg_entry *e = realloc(c->e, cap * sizeof *e);
        if (!e)
            return false;
        c->e = e;
        c->cap = cap;
    }
    arg_entry *e = &c->e[c->n++];
    memcpy(e->digest, d, 25);
    e->bytes = bytes;
    e->used = ++c->clock;
    e->value = value;
    c->bytes += bytes;
    return true;
}

static void arg_clear(arg_cache *c)
{
    for (size_t i = 0; i < c->n; i++)
        arg_drop(c, c->e[i].value);
    free(c->e);
    c->e = NULL;
    c->n = c->cap = c->bytes = 0;
}

/* ---- state of this process ---- */

typedef struct orphan {
    void *buf;
    MPI_Request req;
} orphan;

static struct {
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
    size_t norphans;
    char host[64];
    pid_t pid;           /* the process that called jc_mpi_init (not a forked child of it) */
    int init_rc;         /* what jc_mpi_init returned, returned again */
    const char *why_not; /* why there is no MPI backend here */
} mpi = {.why_not = "the program did not call jc_mpi_init at the top of main"};

int jc__mpi_workers(void)
{
    return mpi.coordinator && !mpi.finished ? mpi.size - 1 : 0;
}

const char *jc__mpi_unavailable(void)
{
    return mpi.why_not;
}

size_t jc__mpi_sent_bytes(void)
{
    return mpi.sent_bytes;
}

bool jc__mpi_init_called(void)
{
    return mpi.started;
}

int jc_mpi_ranks(void)
{
    return mpi.started && mpi.size > 0 ? mpi.size : 1;
}

static void sleep_for(double seconds, const sigset_t *mask)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    /* ppoll rather than nanosleep, so that an interrupt the run took over
     * cuts the sleep short (mask: the interrupts unblocked). */
    ppoll(NULL, 0, &ts, mask);
}

/* Sends and waits for completion by testing and sleeping, never spinning
 * in MPI_Wait. */
static int send_sleeping(const void *buf, size_t len, int dest, int tag)
{
    MPI_Request req;
    if (MPI_Isend(buf, (int)len, MPI_BYTE, dest, tag, mpi.comm, &req) != MPI_SUCCESS)
        return -1;
    double step = POLL_MIN;
    for (;;) {
        int done = 0;
        if (MPI_Test(&req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return -1;
        if (done)
            return 0;
        sleep_for(step, NULL);
        if (step < POLL_MAX)
            step *= 2;
    }
}

/* Receives the message MPI_Iprobe found; NULL when out of memory. */
static char *receive_probed(const MPI_Status *st, int *len)
{
    MPI_Get_count(st, MPI_BYTE, len);
    char *buf = malloc(*len > 0 ? (size_t)*len : 1);
    if (!buf)
        return NULL;
    MPI_Recv(buf, *len, MPI_BYTE, st->MPI_SOURCE, st->MPI_TAG, mpi.comm, MPI_STATUS_IGNORE);
    return buf;
}

/* ---- the coordinator ---- */

typedef struct sent_group {
    uint32_t id;
    size_t ntasks, delivered;
    void *buf;       /* the message, until its send completes */
    MPI_Request req;
} sent_group;

typedef struct rank_slot {
    int rank;
    sent_group q[INFLIGHT];
    int nq;
} rank_slot;

typedef struct coord {
    jc__exec *ex;
    rank_slot *r;
    int n;
    size_t next;        /* next task never sent */
    size_t outstanding; /* tasks sent and not yet delivered */
    uint32_t next_group;
    bool stopping;
    double mean;        /* running mean of task seconds, 0 = none yet */
    size_t measured;
    double group_cost;  /* running mean of what a group costs a rank beyond its calls */
    size_t groups_measured;
    sigset_t run_mask;  /* the mask to sleep with: the run's interrupts unblocked */
} coord;

static size_t group_size(const coord *c)
{
    size_t left = c->ex->ntasks - c->next;
    size_t guided = left / (2 * (size_t)c->n);
    /* About BATCH_SECONDS of calls, and at least GROUP_COST_FACTOR times
     * what a group costs a worker rank beyond its calls (the fork of the
     * child that runs them, mostly: about 1 ms), so that this cost stays a
     * few percent. Rounded, not truncated: two calls of 5 ms are a group of
     * 10 ms. */
    double seconds = BATCH_SECONDS;
    if (c->group_cost * GROUP_COST_FACTOR > seconds)
        seconds = c->group_cost * GROUP_COST_FACTOR;
    size_t by_time = c->mean > 0 ? (size_t)(seconds / c->mean + 0.5) : 1;
    size_t b = by_time < guided ? by_time : guided;
    if (b < 1)
        b = 1;
    if (b > MAX_GROUP)
        b = MAX_GROUP;
    return b;
}

static bool put(jc__buf *b, const void *p, size_t n)
{
    return jc__buf_write(b, p, n) == 0;
}

/* The message for tasks [start, start + *count) as group id, in out; *count
 * becomes the number of calls it holds (fewer past GROUP_BYTES, or before a
 * call that cannot be encoded). A negative code when the first call cannot
 * be encoded (JC_EINVAL: that call fails) or memory runs out. */
/* During the encoding of a group for a rank: a large argument the rank
 * keeps goes as its digest; one it does not is sent whole, and from now on
 * kept. */
static void forget_mirror(int r);

static bool ship_as_ref(void *ctx, const jc_value *v, const unsigned char digest[25])
{
    int rank = *(const int *)ctx;
    arg_cache *mirror = &mpi.mirrors[rank];
    if (arg_find(mirror, digest))
        return true;
    if (!arg_keep(mirror, digest, arg_bytes(v), NULL) && arg_bytes(v) <= arg_cache_bytes)
        forget_mirror(rank); /* out of memory: the mirror must not know less than it says */
    return false;
}

/* Coordinator: the mirror of rank r and the rank part ways; the rank's next
 * group tells it to start again from nothing. */
static void forget_mirror(int r)
{
    if (!mpi.mirrors)
        return;
    arg_clear(&mpi.mirrors[r]);
    mpi.clear_next[r] = true;
}

static int encode_group(coord *c, int rank, size_t start, size_t *count, uint32_t id, jc__buf *out)
{
    group_hdr h = {.magic = MAGIC, .run = mpi.run, .group = id, .ntasks = 0,
                   .timeout = c->ex->timeout, .memory_limit = c->ex->memory_limit,
                   .clear_args = mpi.clear_next[rank]};
    mpi.clear_next[rank] = false; /* said by this group; dispatch forgets again if it is not sent */
    if (!put(out, &h, sizeof h))
        return jc__set_error(JC_ENOMEM, "out of memory sending calls to the worker ranks");
    size_t k = 0;
    for (; k < *count; k++) {
        if (k && out->len >= GROUP_BYTES)
            break;
        const jc__task *t = &c->ex->tasks[start + k];
        size_t at = out->len;
        task_hdr th = {.task = (uint32_t)(start + k)};
        if (!put(out, &th, sizeof th) || !put(out, t->fn->name, strlen(t->fn->name)) ||
            !put(out, t->fn->version, strlen(t->fn->version)))
            return jc__set_error(JC_ENOMEM, "out of memory sending calls to the worker ranks");
        size_t args_at = out->len;
        int rc = jc__encode_args_whole(t->argv, t->argc, jc__buf_write, out, ship_as_ref, &rank);
        if (!rc && out->oom)
            rc = jc__set_error(JC_ENOMEM, "out of memory sending calls to the worker ranks");
        if (!rc && out->len > INT_MAX)
            rc = jc__set_error(JC_EINVAL, "its arguments encode to %zu bytes, more than an MPI message can "
                               "carry (2 GiB)", out->len - args_at);
        if (rc) {
            /* Its large arguments may be in the mirror already: the mirror
             * and the rank part ways after this group. */
            arg_clear(&mpi.mirrors[rank]);
            mpi.clear_next[rank] = true;
        }
        if (rc && k) {
            /* The calls before it go now; it comes first in the next group,
             * alone, where its error is its own. */
            out->len = at;
            out->oom = false;
            break;
        }
        if (rc)
            return rc;
        th.name_len = (uint32_t)strlen(t->fn->name);
        th.version_len = (uint32_t)strlen(t->fn->version);
        th.args_len = (uint32_t)(out->len - args_at);
        memcpy(out->data + at, &th, sizeof th);
    }
    h.ntasks = (uint32_t)k;
    memcpy(out->data, &h, sizeof h);
    *count = k;
    /* Forgotten while this group was made: what it recorded since is
     * dropped by the rank at the next group, so dropped here too. */
    if (mpi.clear_next[rank])
        arg_clear(&mpi.mirrors[rank]);
    return 0;
}

/* Fails task t (it could not be sent) as an error of that call. */
static void fail_task(coord *c, size_t t, const char *why)
{
    const jc__task *task = &c->ex->tasks[t];
    char *desc = jc__call_describe_fn(task->fn, task->argv, task->argc);
    jc__outcome o = {.task = t, .status = JC_STATUS_ERROR};
    o.error = jc__strdup_printf("%s: cannot be sent to a worker rank: %s", desc ? desc : task->fn->name, why);
    free(desc);
    if (c->ex->deliver(c->ex->ctx, &o))
        c->stopping = true;
}

/* Sends groups to worker slot i until it holds INFLIGHT of them. */
static int dispatch(coord *c, int i)
{
    rank_slot *s = &c->r[i];
    while (!c->stopping && s->nq < INFLIGHT && c->next < c->ex->ntasks) {
        size_t count = group_size(c);
        jc__buf msg = {0};
        int rc = encode_group(c, s->rank, c->next, &count, c->next_group, &msg);
        if (rc)
            forget_mirror(s->rank); /* the group is not sent: what it said is unsaid */
        if (rc == JC_EINVAL) {
            /* One call's arguments are too large to send: that call fails. */
            jc__buf_free(&msg);
            fail_task(c, c->next, jc_errmsg());
            c->next++;
            continue;
        }
        if (rc) {
            jc__buf_free(&msg);
            return rc;
        }
        sent_group *g = &s->q[s->nq];
        *g = (sent_group){.id = c->next_group++, .ntasks = count, .buf = msg.data};
        mpi.sent_bytes += msg.len;
        if (MPI_Isend(msg.data, (int)msg.len, MPI_BYTE, s->rank, TAG_GROUP, mpi.comm, &g->req) != MPI_SUCCESS) {
            forget_mirror(s->rank);
            free(msg.data);
            return jc__set_error(JC_EIO, "MPI_Isend to rank %d failed", s->rank);
        }
        s->nq++;
        c->next += count;
        c->outstanding += count;
    }
    return 0;
}

/* A running mean that follows change: the plain mean of the first 16
 * samples, then an exponential one (weight 1/16), as the fork pool's. */
static void learn_mean(double *mean, size_t *n, double x)
{
    (*n)++;
    double k = *n < 16 ? 1.0 / (double)*n : 1.0 / 16;
    *mean += (x - *mean) * k;
}

static void learn(coord *c, double secs)
{
    learn_mean(&c->mean, &c->measured, secs);
}

static void complete_send(sent_group *g)
{
    MPI_Wait(&g->req, MPI_STATUS_IGNORE); /* the worker answered: the send is complete */
    free(g->buf);
    g->buf = NULL;
}

/* Delivers the outcomes of one results message from rank src. */
static int take_results(coord *c, int src, const char *buf, size_t len)
{
    results_hdr h;
    if (len < sizeof h)
        return jc__set_error(JC_EIO, "a malformed message from rank %d", src);
    memcpy(&h, buf, sizeof h);
    if (h.magic != MAGIC)
        return jc__set_error(JC_EIO, "a malformed message from rank %d", src);
    if (h.args_reset && src > 0 && src < mpi.size)
        forget_mirror(src);
    if (h.run != mpi.run)
        return 0; /* of a run that was cancelled */
    rank_slot *s = NULL;
    for (int i = 0; i < c->n && !s; i++)
        if (c->r[i].rank == src)
            s = &c->r[i];
    if (!s || !s->nq || s->q[0].id != h.group)
        return jc__set_error(JC_EIO, "rank %d answered a group it was not sent", src);
    sent_group *g = &s->q[0];
    size_t off = sizeof h;
    for (uint32_t k = 0; k < h.n; k++) {
        outcome_hdr oh;
        if (len - off < sizeof oh)
            return jc__set_error(JC_EIO, "a truncated message from rank %d", src);
        memcpy(&oh, buf + off, sizeof oh);
        off += sizeof oh;
        if (len - off < oh.len || oh.task >= c->ex->ntasks || g->delivered >= g->ntasks)
            return jc__set_error(JC_EIO, "a malformed message from rank %d", src);
        const char *payload = buf + off;
        off += oh.len;
        g->delivered++;
        c->outstanding--;
        if (oh.status == JC_STATUS_OK || oh.seconds > 0)
            learn(c, oh.seconds); /* not a call refused before it ran */
        jc__outcome o = {.task = oh.task, .status = (jc_status)oh.status, .seconds = oh.seconds};
        if (o.status == JC_STATUS_OK) {
            o.blob = malloc(oh.len ? oh.len : 1);
            if (o.blob) {
                memcpy(o.blob, payload, oh.len);
                o.blob_len = oh.len;
            } else {
                o.status = JC_STATUS_ERROR;
                o.error = jc__strdup_printf("%s: out of memory receiving its result",
                                            c->ex->tasks[oh.task].fn->name);
            }
        } else {
            o.error = strndup(payload, oh.len);
        }
        if (c->ex->deliver(c->ex->ctx, &o))
            c->stopping = true;
    }
    if (h.cost > 0)
        learn_mean(&c->group_cost, &c->groups_measured, h.cost);
    if (g->delivered == g->ntasks) {
        complete_send(g);
        memmove(&s->q[0], &s->q[1], sizeof(sent_group) * (INFLIGHT - 1));
        s->nq--;
    }
    return 0;
}

/* Takes every results message that has arrived; *got tells whether any did. */
static int receive_all(coord *c, bool *got)
{
    for (;;) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_RESULTS, mpi.comm, &flag, &st);
        if (!flag)
            return 0;
        *got = true;
        int len;
        char *buf = receive_probed(&st, &len);
        if (!buf)
            return jc__set_error(JC_ENOMEM, "out of memory receiving results from rank %d", st.MPI_SOURCE);
        int rc = take_results(c, st.MPI_SOURCE, buf, (size_t)len);
        free(buf);
        if (rc)
            return rc;
    }
}

/* Tests the sends of cancelled runs; frees those done. */
static void test_orphans(void)
{
    size_t k = 0;
    for (size_t i = 0; i < mpi.norphans; i++) {
        int done = 0;
        MPI_Test(&mpi.orphans[i].req, &done, MPI_STATUS_IGNORE);
        if (done)
            free(mpi.orphans[i].buf);
        else
            mpi.orphans[k++] = mpi.orphans[i];
    }
    mpi.norphans = k;
}

/* Drops results of cancelled runs that have arrived. */
static void discard_stale_results(void)
{
    for (;;) {
        int flag = 0, len;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_RESULTS, mpi.comm, &flag, &st);
        if (!flag)
            return;
        free(receive_probed(&st, &len));
    }
}

/* The run ends with groups still out (interrupted, stopped at an error, a
 * failure): their ranks are told to drop them, and their sends are kept
 * until complete. */
static void cancel_outstanding(coord *c)
{
    for (int i = 0; i < c->n; i++) {
        rank_slot *s = &c->r[i];
        if (!s->nq)
            continue;
        control_msg m = {.magic = MAGIC, .value = (int32_t)mpi.run};
        MPI_Send(&m, sizeof m, MPI_BYTE, s->rank, TAG_CANCEL, mpi.comm); /* tiny: sent eagerly */
        forget_mirror(s->rank); /* the groups it drops unread kept nothing there */
        for (int k = 0; k < s->nq; k++) {
            orphan *o = realloc(mpi.orphans, (mpi.norphans + 1) * sizeof *o);
            if (!o) { /* cannot track it: MPI completes it alone; its buffer is left to it */
                MPI_Request_free(&s->q[k].req);
                continue;
            }
            mpi.orphans = o;
            mpi.orphans[mpi.norphans++] = (orphan){s->q[k].buf, s->q[k].req};
        }
        s->nq = 0;
    }
    c->outstanding = 0;
}

static size_t busy_ranks(const coord *c)
{
    size_t n = 0;
    for (int i = 0; i < c->n; i++)
        n += c->r[i].nq > 0;
    return n;
}

static int coordinate(coord *c)
{
    double last_tick = jc__monotonic(), step = POLL_MIN;
    for (;;) {
        if (jc__interrupted)
            return jc__set_error(JC_EINTR, "interrupted by a signal; the results that arrived were kept");
        for (int i = 0; i < c->n; i++) {
            int rc = dispatch(c, i);
            if (rc)
                return rc;
        }
        /* Told to stop (the first error under JC_ON_ERROR_STOP): the groups
         * still out are cancelled at once, calls running included, rather
         * than waited for (a call may take hours). */
        if (c->stopping || (!c->outstanding && c->next >= c->ex->ntasks))
            return 0;
        bool got = false;
        int rc = receive_all(c, &got);
        if (rc)
            return rc;
        test_orphans();
        double now = jc__monotonic();
        if (c->ex->tick && now - last_tick >= 0.1) {
            c->ex->tick(c->ex->ctx, busy_ranks(c));
            last_tick = now;
        }
        if (got) {
            step = POLL_MIN;
        } else {
            sleep_for(step, &c->run_mask);
            if (step < POLL_MAX)
                step *= 2;
        }
    }
}

int jc__exec_mpi(jc__exec *ex)
{
    if (!jc__mpi_workers())
        return jc__set_error(JC_EINVAL, "the MPI backend is not available: %s", mpi.why_not);
    if (ex->ntasks > UINT32_MAX - 1)
        return jc__set_error(JC_EINVAL, "a run of %zu distinct calls is too large for the MPI backend", ex->ntasks);
    coord c = {.ex = ex, .n = ex->nworkers > 0 && ex->nworkers < mpi.size - 1 ? ex->nworkers : mpi.size - 1};
    c.r = calloc((size_t)c.n, sizeof *c.r);
    if (!c.r)
        return jc__set_error(JC_ENOMEM, "out of memory starting the MPI backend");
    for (int i = 0; i < c.n; i++)
        c.r[i].rank = i + 1;
    mpi.run++;
    test_orphans();
    discard_stale_results();
    /* The run's interrupts stay blocked but for the sleeps, so that a check
     * of jc__interrupted and the sleep after it cannot miss one. */
    sigset_t old;
    sigprocmask(SIG_BLOCK, &ex->interrupts, &old);
    c.run_mask = old;
    for (int sig = 1; sig < NSIG; sig++)
        if (sigismember(&ex->interrupts, sig))
            sigdelset(&c.run_mask, sig);
    int rc = coordinate(&c);
    if (rc == JC_EINTR) {
        /* What arrived meanwhile is taken, then the rest is cancelled. */
        bool got = false;
        int saved = jc_errcode();
        char *msg = jc__strdup(jc_errmsg());
        receive_all(&c, &got);
        jc__set_error(saved, "%s", msg ? msg : "interrupted");
        free(msg);
    }
    if (c.outstanding || rc)
        cancel_outstanding(&c);
    sigprocmask(SIG_SETMASK, &old, NULL);
    free(c.r);
    return rc;
}

/* ---- a worker rank ---- */

typedef struct queued {
    char *buf;
    size_t len;
    uint32_t run;
} queued;

typedef struct serve_state {
    arg_cache args;    /* the large arguments this rank keeps */
    queued *q;
    size_t nq, cap;
    uint32_t cancelled_up_to; /* groups of runs up to this one are dropped */
    bool finish;
    int status;
} serve_state;

static serve_state srv;

/* SIGTERM or SIGINT to a worker rank (mpirun and srun pass a Ctrl-C on to
 * every rank as SIGTERM, and kill the whole job the moment one rank dies):
 * the rank stops its call at once but stays alive up to TERM_GRACE_SECONDS
 * for the coordinator, so that the coordinator, which got the same signal,
 * has time to commit what has arrived. Then it ends as killed by the
 * signal. */
#define TERM_GRACE_SECONDS 5.0
static volatile sig_atomic_t term_signal;

static void on_term(int sig)
{
    term_signal = sig;
}

/* The signals the rank took over (a program's own handler is left alone). */
static sigset_t term_caught;

static void catch_term(void)
{
    struct sigaction sa = {.sa_handler = on_term}, old;
    sigemptyset(&sa.sa_mask);
    sigemptyset(&term_caught);
    static const int sigs[] = {SIGTERM, SIGINT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (sigaction(sigs[i], NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL &&
            sigaction(sigs[i], &sa, NULL) == 0)
            sigaddset(&term_caught, sigs[i]);
}

/* Takes every message from the coordinator that has arrived. */
static void drain(void)
{
    for (;;) {
        int flag = 0, len;
        MPI_Status st;
        MPI_Iprobe(0, MPI_ANY_TAG, mpi.comm, &flag, &st);
        if (!flag)
            return;
        char *buf = receive_probed(&st, &len);
        if (!buf) {
            fprintf(stderr, "jobcache: rank %d: out of memory receiving calls; ending the job\n", mpi.rank);
            MPI_Abort(MPI_COMM_WORLD, 70);
        }
        control_msg m = {0};
        if (st.MPI_TAG == TAG_GROUP && (size_t)len >= sizeof(group_hdr)) {
            group_hdr h;
            memcpy(&h, buf, sizeof h);
            if (h.run > srv.cancelled_up_to && srv.nq < SIZE_MAX / sizeof(queued)) {
                if (srv.nq == srv.cap) {
                    size_t cap = srv.cap ? 2 * srv.cap : 8;
                    queued *q = realloc(srv.q, cap * sizeof *q);
                    if (!q) {
                        fprintf(stderr, "jobcache: rank %d: out of memory queueing calls; ending the job\n",
                                mpi.rank);
                        MPI_Abort(MPI_COMM_WORLD, 70);
                    }
                    srv.q = q;
                    srv.cap = cap;
                }
                srv.q[srv.nq++] = (queued){buf, (size_t)len, h.run};
                continue;
            }
        } else if ((size_t)len >= sizeof m) {
            memcpy(&m, buf, sizeof m);
            if (st.MPI_TAG == TAG_CANCEL) {
                srv.cancelled_up_to = (uint32_t)m.value;
                size_t k = 0;
                for (size_t i = 0; i < srv.nq; i++) {
                    if (srv.q[i].run <= srv.cancelled_up_to)
                        free(srv.q[i].buf);
                    else
                        srv.q[k++] = srv.q[i];
                }
                srv.nq = k;
            } else if (st.MPI_TAG == TAG_FINISH) {
                srv.finish = true;
                srv.status = m.value;
            }
        }
        free(buf);
    }
}

typedef struct group_run {
    group_hdr h;
    jc__task *tasks;   /* the calls to run */
    uint32_t *index;   /* their task numbers in the coordinator's run */
    bool *done;        /* per call to run: an outcome was added */
    size_t n;
    jc__buf out;       /* outcomes not yet sent */
    uint32_t nout;
    double last_flush;
    uint32_t ndone;    /* outcomes added */
    double busy;       /* the calls' own seconds, as measured in the child */
    double sending;    /* seconds spent sending results before the end */
    double cost;       /* set before the last flush: the group's time beyond busy */
} group_run;

/* The rank's kept arguments and the coordinator's mirror of them parted
 * (memory ran out on one side): the rank drops them all and says so in its
 * next results, and the coordinator forgets its mirror. */
static bool args_reset;

/* The largest outcome a message carries: MPI counts bytes in an int. */
#define MAX_OUTCOME ((size_t)INT_MAX - sizeof(results_hdr) - sizeof(outcome_hdr))

/* The group's run was cancelled or the job is ending: nothing more to send. */
static bool group_dropped(const group_run *g)
{
    return srv.finish || term_signal || g->h.run <= srv.cancelled_up_to;
}

static void flush_results(group_run *g)
{
    if (!g->nout || group_dropped(g))
        return;
    double t0 = jc__monotonic();
    results_hdr h = {.magic = MAGIC, .run = g->h.run, .group = g->h.group, .n = g->nout, .cost = g->cost,
                     .args_reset = args_reset};
    args_reset = false;
    memcpy(g->out.data, &h, sizeof h);
    if (send_sleeping(g->out.data, g->out.len, 0, TAG_RESULTS)) {
        fprintf(stderr, "jobcache: rank %d: cannot send results to the coordinator; ending the job\n", mpi.rank);
        MPI_Abort(MPI_COMM_WORLD, 70);
    }
    g->out.len = sizeof h;
    g->nout = 0;
    g->last_flush = jc__monotonic();
    g->sending += g->last_flush - t0;
}

/* Appends an outcome (payload: the encoded result, or the message). One
 * that cannot travel (larger than an MPI message) or cannot be held (out of
 * memory) becomes an error of that call, never the end of the rank. */
static void add_outcome(group_run *g, uint32_t task, jc_status st, double secs, const void *payload, size_t len)
{
    char why[200];
    if (len > MAX_OUTCOME) {
        snprintf(why, sizeof why, "its result encodes to %zu bytes, more than an MPI message carries (2 GiB), "
                 "on MPI rank %d", len, mpi.rank);
        st = JC_STATUS_ERROR;
        payload = why;
        len = strlen(why);
    }
    if (g->nout && g->out.len + sizeof(outcome_hdr) + len > (size_t)INT_MAX)
        flush_results(g); /* what is held goes first: one message stays under 2 GiB */
    size_t at = g->out.len;
    outcome_hdr oh = {.task = task, .status = (uint32_t)st, .len = (uint32_t)len, .seconds = secs};
    jc__buf_write(&g->out, (const char *)&oh, sizeof oh);
    jc__buf_write(&g->out, payload, len);
    if (g->out.oom) {
        g->out.len = at;
        g->out.oom = false;
        snprintf(why, sizeof why, "out of memory on MPI rank %d holding its result of %zu bytes", mpi.rank, len);
        oh = (outcome_hdr){.task = task, .status = JC_STATUS_ERROR, .len = (uint32_t)strlen(why), .seconds = secs};
        jc__buf_write(&g->out, (const char *)&oh, sizeof oh);
        jc__buf_write(&g->out, why, oh.len);
        if (g->out.oom) {
            fprintf(stderr, "jobcache: rank %d: out of memory; ending the job\n", mpi.rank);
            MPI_Abort(MPI_COMM_WORLD, 70);
        }
    }
    g->nout++;
    /* The group's last outcome waits for the last message, which carries
     * the group's cost. */
    if (++g->ndone < g->h.ntasks &&
        (g->out.len >= FLUSH_BYTES || jc__monotonic() - g->last_flush >= FLUSH_SECONDS))
        flush_results(g);
}

static bool serve_deliver(void *ctx, jc__outcome *o)
{
    group_run *g = ctx;
    g->busy += o->seconds;
    g->done[o->task] = true;
    uint32_t task = g->index[o->task];
    if (o->status == JC_STATUS_OK) {
        jc__buf enc = {0};
        const void *p = o->blob;
        size_t len = o->blob_len;
        if (!p && o->value) { /* the fork pool gives blobs; should it not */
            if (jc__encode_result(o->value, jc__buf_write, &enc) || enc.oom) {
                const char *why = "the result cannot be encoded";
                add_outcome(g, task, JC_STATUS_ERROR, o->seconds, why, strlen(why));
                goto done;
            }
            p = enc.data;
            len = enc.len;
        }
        add_outcome(g, task, JC_STATUS_OK, o->seconds, p, len);
    done:
        jc__buf_free(&enc);
    } else {
        /* Where a crash or a timeout happened says which node to look at. */
        char *msg = o->status == JC_STATUS_CRASHED || o->status == JC_STATUS_TIMEOUT
                        ? jc__strdup_printf("%s (on MPI rank %d, host %s)", o->error ? o->error : "", mpi.rank,
                                            mpi.host)
                        : NULL;
        const char *text = msg ? msg : o->error ? o->error : "failed";
        add_outcome(g, task, o->status, o->seconds, text, strlen(text));
        free(msg);
    }
    jc_value_free(o->value);
    free(o->blob);
    free(o->error);
    return false;
}

static bool serve_abandon(void *ctx)
{
    group_run *g = ctx;
    drain();
    return group_dropped(g);
}

/* The large arguments of a decoded call, in the order of the encoding
 * (decode_args keeps it: positional ones, then named ones by name): one
 * sent as its digest is the value this rank keeps (read in place, as a
 * borrowed array; bytes are copied); one sent whole is kept from now on,
 * as the coordinator's mirror of this rank expects. Every argument is seen
 * even after a failure, so that the rank's choices stay the mirror's. A
 * digest names the value's content, so a mismatch can only make a call
 * fail, never read another value. False with *why set when a digest names
 * nothing kept here (memory ran out on one side): the coordinator is told
 * to start its mirror again. */
static bool resolve_args(jc_value **argv, size_t argc, char **why)
{
    bool ok = true;
    for (size_t i = 0; i < argc; i++) {
        jc_value *kw = argv[i]->type == JC_TYPE_KWARG ? argv[i] : NULL;
        jc_value **slot = kw ? &kw->u.kw.val : &argv[i];
        jc_value *v = *slot;
        if (v->type == JC_TYPE_DIGEST) {
            arg_entry *e = arg_find(&srv.args, (const unsigned char *)v->u.s);
            const jc_value *k = e ? e->value : NULL;
            jc_value *r = !k                          ? NULL
                          : k->type == JC_TYPE_DOUBLES ? jc_doubles_ref(k->u.arr, k->len)
                          : k->type == JC_TYPE_INTS    ? jc_ints_ref(k->u.arr, k->len)
                                                       : jc_bytes(k->u.s, k->len);
            if (!r) {
                if (ok && !*why)
                    *why = jc__strdup_printf("an argument sent by reference is not kept on MPI rank %d (memory "
                                             "ran out on the rank or the coordinator); run again", mpi.rank);
                ok = false;
                args_reset = true;
                continue;
            }
            r->parent = kw;
            *slot = r;
            jc_value_free(v);
        } else if ((v->type == JC_TYPE_DOUBLES || v->type == JC_TYPE_INTS || v->type == JC_TYPE_BYTES) &&
                   arg_bytes(v) >= JC__DIGEST_MIN) {
            unsigned char d[25];
            jc_value *copy = NULL;
            if (jc__value_digest(v, d) != 0 || (copy = jc_value_copy(v)) == NULL ||
                !arg_keep(&srv.args, d, arg_bytes(v), copy)) {
                jc_value_free(copy);
                if (arg_bytes(v) <= arg_cache_bytes)
                    args_reset = true; /* the mirror counts it kept */
            }
        }
    }
    return ok;
}

/* Decodes one call of the group; false, with *why set (malloc'd), when it
 * cannot run here. Its arguments are decoded and resolved first, whatever
 * else is wrong with it: the coordinator counted its large arguments kept. */
static bool decode_task(const char *p, const task_hdr *th, jc__task *t, char **why)
{
    jc_value **argv = NULL;
    size_t argc = 0;
    char *name = strndup(p, th->name_len);
    char *version = strndup(p + th->name_len, th->version_len);
    if (!name || !version) {
        free(name);
        free(version);
        *why = jc__strdup("out of memory on the worker rank");
        args_reset = true;
        return false;
    }
    if (jc__decode_args(p + th->name_len + th->version_len, th->args_len, &argv, &argc)) {
        *why = jc__strdup_printf("%s: its arguments do not decode on rank %d: %s", name, mpi.rank, jc_errmsg());
        args_reset = true;
        free(name);
        free(version);
        return false;
    }
    char *unresolved = NULL;
    bool resolved = resolve_args(argv, argc, &unresolved);
    const jc_function *fn = jc_function_find(name);
    if (!resolved || !fn || strcmp(fn->version, version) != 0) {
        *why = !resolved ? jc__strdup_printf("%s: %s", name, unresolved ? unresolved : "an argument is missing")
               : fn ? jc__strdup_printf("%s: rank %d (host %s) has version \"%s\" of it, the coordinator \"%s\": "
                                       "every rank must run the same program",
                                       name, mpi.rank, mpi.host, fn->version, version)
                    : jc__strdup_printf("%s: not a registered function on rank %d (host %s): %s; every rank must "
                                        "run the same program", name, mpi.rank, mpi.host, jc_errmsg());
        free(unresolved);
        free(name);
        free(version);
        for (size_t i = 0; i < argc; i++)
            jc_value_free(argv[i]);
        free(argv);
        return false;
    }
    free(name);
    free(version);
    *t = (jc__task){.fn = fn, .argv = argv, .argc = argc};
    return true;
}

static void run_group(const queued *qg)
{
    group_run g = {.last_flush = jc__monotonic()};
    memcpy(&g.h, qg->buf, sizeof g.h);
    if (g.h.clear_args)
        arg_clear(&srv.args);
    results_hdr placeholder = {0};
    jc__buf_write(&g.out, (const char *)&placeholder, sizeof placeholder);
    g.tasks = calloc(g.h.ntasks ? g.h.ntasks : 1, sizeof *g.tasks);
    g.index = calloc(g.h.ntasks ? g.h.ntasks : 1, sizeof *g.index);
    g.done = calloc(g.h.ntasks ? g.h.ntasks : 1, sizeof *g.done);
    if (!g.tasks || !g.index || !g.done || g.out.oom) {
        fprintf(stderr, "jobcache: rank %d: out of memory for a group of calls; ending the job\n", mpi.rank);
        MPI_Abort(MPI_COMM_WORLD, 70);
    }
    size_t off = sizeof g.h;
    for (uint32_t k = 0; k < g.h.ntasks; k++) {
        task_hdr th = {0};
        if (qg->len - off >= sizeof th)
            memcpy(&th, qg->buf + off, sizeof th);
        if (qg->len - off < sizeof th ||
            qg->len - off - sizeof th < (size_t)th.name_len + th.version_len + th.args_len) {
            /* Cannot happen (the coordinator made it, MPI delivers it
             * whole); were it to, the coordinator would wait forever. */
            fprintf(stderr, "jobcache: rank %d: a truncated group of calls; ending the job\n", mpi.rank);
            MPI_Abort(MPI_COMM_WORLD, 70);
        }
        off += sizeof th;
        char *why = NULL;
        jc__task t;
        if (decode_task(qg->buf + off, &th, &t, &why)) {
            g.index[g.n] = th.task;
            g.tasks[g.n++] = t;
        } else {
            add_outcome(&g, th.task, JC_STATUS_ERROR, 0, why ? why : "", why ? strlen(why) : 0);
            free(why);
        }
        off += (size_t)th.name_len + th.version_len + th.args_len;
    }
    if (g.n) {
        jc__exec ex = {.tasks = g.tasks, .ntasks = g.n, .nworkers = 1, .timeout = g.h.timeout,
                       .memory_limit = g.h.memory_limit, .deliver = serve_deliver, .abandon = serve_abandon,
                       .ctx = &g};
        /* Taken over here, so the child gets their default (exec_fork), and
         * they reach this process during the fork pool's waits only. */
        ex.interrupts = term_caught;
        double t0 = jc__monotonic();
        int rc = jc__exec_fork(&ex);
        g.cost = jc__monotonic() - t0 - g.busy - g.sending;
        if (rc && !group_dropped(&g)) {
            /* The pool could not run (no child could be started, children
             * dying before any call): every call it did not deliver fails,
             * so that the coordinator hears of each. */
            char *why = jc__strdup_printf("not run: %s (on MPI rank %d, host %s)", jc_errmsg(), mpi.rank, mpi.host);
            for (size_t i = 0; i < g.n; i++)
                if (!g.done[i]) {
                    const jc__task *t = &g.tasks[i];
                    char *desc = jc__call_describe_fn(t->fn, t->argv, t->argc);
                    char *msg = jc__strdup_printf("%s: %s", desc ? desc : t->fn->name, why ? why : "not run");
                    const char *text = msg ? msg : "not run";
                    add_outcome(&g, g.index[i], JC_STATUS_ERROR, 0, text, strlen(text));
                    free(msg);
                    free(desc);
                }
            free(why);
        }
    }
    flush_results(&g);
    for (size_t i = 0; i < g.n; i++) {
        for (size_t k = 0; k < g.tasks[i].argc; k++)
            jc_value_free(g.tasks[i].argv[k]);
        free((void *)g.tasks[i].argv);
    }
    free(g.tasks);
    free(g.index);
    free(g.done);
    jc__buf_free(&g.out);
    arg_bury(&srv.args); /* no call of the group points into them now */
}

static _Noreturn void finish_worker(void)
{
    for (size_t i = 0; i < srv.nq; i++)
        free(srv.q[i].buf);
    free(srv.q);
    arg_clear(&srv.args);
    arg_bury(&srv.args);
    free(srv.args.dropped);
    /* Rank 0 drops results until every rank says it is done with sending. */
    control_msg ack = {.magic = MAGIC, .value = 0};
    send_sleeping(&ack, sizeof ack, 0, TAG_FINISHED);
    MPI_Comm_free(&mpi.comm);
    /* Whoever initialised MPI: this rank never returns to the program's
     * own MPI_Finalize. */
    MPI_Finalize();
    fflush(NULL);
    exit(srv.status);
}

/* Signalled: waits for the coordinator's FINISH a bounded time, then ends
 * as killed by the signal. */
static _Noreturn void end_by_signal(void)
{
    double until = jc__monotonic() + TERM_GRACE_SECONDS;
    while (!srv.finish && jc__monotonic() < until) {
        drain();
        sleep_for(IDLE_MAX, NULL);
    }
    if (srv.finish)
        finish_worker();
    signal(term_signal, SIG_DFL);
    raise(term_signal);
    _exit(128 + term_signal);
}

static _Noreturn void serve(void)
{
    catch_term();
    double step = POLL_MIN;
    for (;;) {
        drain();
        if (srv.finish)
            finish_worker();
        if (term_signal)
            end_by_signal();
        if (!srv.nq) {
            sleep_for(step, NULL);
            if (step < IDLE_MAX)
                step *= 2;
            continue;
        }
        step = POLL_MIN;
        queued qg = srv.q[0];
        memmove(&srv.q[0], &srv.q[1], (srv.nq - 1) * sizeof *srv.q);
        srv.nq--;
        run_group(&qg);
        free(qg.buf);
    }
}

/* ---- start and end ---- */

static void finish_coordinator(int status)
{
    if (!mpi.coordinator || mpi.finished)
        return;
    mpi.finished = true;
    /* Sends of cancelled runs complete once their ranks take them (they
     * drain their queue in order); results of those runs are dropped. */
    double until = jc__monotonic() + DRAIN_SECONDS;
    while (mpi.norphans && jc__monotonic() < until) {
        test_orphans();
        discard_stale_results();
        sleep_for(POLL_MAX, NULL);
    }
    control_msg m = {.magic = MAGIC, .value = status};
    for (int r = 1; r < mpi.size; r++)
        MPI_Send(&m, sizeof m, MPI_BYTE, r, TAG_FINISH, mpi.comm);
    /* A worker rank may be in the middle of sending results of a cancelled
     * run: they are taken (and dropped) until every rank has acknowledged,
     * so that no rank is left in a send while MPI_Finalize waits for it. */
    int acked = 0;
    until = jc__monotonic() + DRAIN_SECONDS;
    while (acked < mpi.size - 1 && jc__monotonic() < until) {
        discard_stale_results();
        int flag = 0, len;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_FINISHED, mpi.comm, &flag, &st);
        if (flag) {
            free(receive_probed(&st, &len));
            acked++;
        } else {
            sleep_for(POLL_MAX, NULL);
        }
    }
    for (size_t i = 0; i < mpi.norphans; i++) {
        MPI_Request_free(&mpi.orphans[i].req);
        /* Its buffer may still be read by MPI: left allocated. */
    }
    if (!mpi.norphans)
        free(mpi.orphans);
    mpi.orphans = NULL;
    mpi.norphans = 0;
}

/* MPI_Finalize frees MPI_COMM_SELF first, running the delete callbacks of
 * its attributes: the worker ranks are told to finish then, whoever calls
 * MPI_Finalize. */
static int at_finalize(MPI_Comm comm, int keyval, void *value, void *extra)
{
    (void)comm;
    (void)keyval;
    (void)value;
    (void)extra;
    if (getpid() == mpi.pid)
        finish_coordinator(0);
    return MPI_SUCCESS;
}

static void at_exit(int status, void *arg)
{
    (void)arg;
    /* A forked child of rank 0 (a fork pool worker, a call's own fork)
     * that calls exit() runs this too: only rank 0 itself may use MPI. */
    if (getpid() != mpi.pid)
        return;
    finish_coordinator(status);
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (mpi.ours && !finalized) {
        MPI_Comm_free(&mpi.comm);
        MPI_Finalize();
    }
}

int jc_mpi_init(int *argc, char ***argv)
{
    if (mpi.started)
        return mpi.init_rc;
    mpi.started = true;
    mpi.pid = getpid();
    mpi.size = 1;
    long launched = jc__mpi_launched_size();
    if (launched == 0 || launched == 1) {
        mpi.why_not = launched ? "the job has one rank: nothing to send calls to"
                               : "the program was not started by mpirun or srun";
        return 0;
    }
    /* OpenMPI's MPI_Init installs handlers of its own for the crash signals
     * (they print a backtrace). A worker rank puts the program's back: its
     * calls run in forked children, where a crash is a call's failure that
     * the fork pool reports, not a fault of the job to print. */
    static const int crash_sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    enum { NCRASH = sizeof crash_sigs / sizeof crash_sigs[0] };
    struct sigaction before[NCRASH];
    for (int i = 0; i < NCRASH; i++)
        sigaction(crash_sigs[i], NULL, &before[i]);
    const char *keep = getenv("JOBCACHE_MPI_KEEP");
    if (keep && *keep) {
        int64_t bytes = 0;
        if (jc_parse_size(keep, &bytes) || bytes < 0) {
            mpi.why_not = "JOBCACHE_MPI_KEEP is not a size";
            return mpi.init_rc = jc__set_error(JC_EINVAL, "jc_mpi_init: JOBCACHE_MPI_KEEP is '%s': it must be a "
                                               "size (256M, 1G; 0 keeps nothing)", keep);
        }
        arg_cache_bytes = (size_t)bytes;
    }
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        if (MPI_Init(argc, argv) != MPI_SUCCESS) {
            mpi.why_not = "MPI_Init failed";
            return mpi.init_rc = jc__set_error(JC_EIO, "jc_mpi_init: MPI_Init failed");
        }
        mpi.ours = true;
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &mpi.comm);
    MPI_Comm_rank(mpi.comm, &mpi.rank);
    MPI_Comm_size(mpi.comm, &mpi.size);
    if (gethostname(mpi.host, sizeof mpi.host - 1) != 0)
        strcpy(mpi.host, "?");
    if (launched > 1 && mpi.size != launched) {
        /* srun without an MPI plugin: every task is a job of its own. */
        jc__set_error(JC_EINVAL, "jc_mpi_init: the launcher started %ld tasks but MPI sees %d rank%s: with Slurm, "
                      "run srun --mpi=pmix (or pmi2), as the MPI library was built for", launched, mpi.size,
                      mpi.size == 1 ? "" : "s");
        mpi.why_not = "the launcher's tasks are not one MPI job";
        char *msg = jc__strdup(jc_errmsg());
        MPI_Comm_free(&mpi.comm);
        if (mpi.ours)
            MPI_Finalize();
        mpi.size = 1;
        mpi.init_rc = jc__set_error(JC_EINVAL, "%s", msg ? msg : "jc_mpi_init: the launcher's tasks are not one MPI job");
        free(msg);
        return mpi.init_rc;
    }
    if (mpi.size == 1) {
        mpi.why_not = "the job has one rank: nothing to send calls to";
        if (mpi.ours)
            on_exit(at_exit, NULL);
        return 0;
    }
    mpi.mirrors = calloc((size_t)mpi.size, sizeof *mpi.mirrors);
    mpi.clear_next = calloc((size_t)mpi.size, sizeof *mpi.clear_next);
    if (!mpi.mirrors || !mpi.clear_next) {
        free(mpi.mirrors);
        free(mpi.clear_next);
        mpi.mirrors = NULL;
        mpi.clear_next = NULL;
        mpi.why_not = "out of memory starting the MPI backend";
        return mpi.init_rc = jc__set_error(JC_ENOMEM, "jc_mpi_init: out of memory");
    }
    if (mpi.rank != 0) {
        if (mpi.ours)
            for (int i = 0; i < NCRASH; i++)
                sigaction(crash_sigs[i], &before[i], NULL);
        serve();
    }
    mpi.coordinator = true;
    mpi.why_not = NULL;
    int keyval;
    if (MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, at_finalize, &keyval, NULL) == MPI_SUCCESS)
        MPI_Comm_set_attr(MPI_COMM_SELF, keyval, NULL);
    on_exit(at_exit, NULL);
    return 0;
}
