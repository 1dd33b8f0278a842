/*
 * The coordinator (rank 0): groups of calls sent to the worker ranks,
 * sized to measured work, two in flight per rank; results received.
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

#include "exec/exec.h"
#include "mpi_int.h"

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
    jc__mean mean;       /* of task seconds */
    jc__mean group_cost; /* of what a group costs a rank beyond its calls */
    sigset_t run_mask;  /* the mask to sleep with: the run's interrupts unblocked */
} coord;

static size_t group_size(const coord *c)
{
    /* About BATCH_SECONDS of calls, and at least GROUP_COST_FACTOR times
     * what a group costs a worker rank beyond its calls (the fork of the
     * child that runs them, mostly: about 1 ms), so that this cost stays a
     * few percent. Rounded, not truncated: two calls of 5 ms are a group of
     * 10 ms. */
    double seconds = BATCH_SECONDS;
    if (c->group_cost.value * GROUP_COST_FACTOR > seconds)
        seconds = c->group_cost.value * GROUP_COST_FACTOR;
    return jc__batch_size(c->ex->ntasks - c->next, (size_t)c->n, c->mean.value, seconds, MAX_GROUP, true);
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
    arg_cache *mirror = &jc__mpi.mirrors[rank];
    if (jc__mpi_arg_find(mirror, digest))
        return true;
    if (!jc__mpi_arg_keep(mirror, digest, jc__mpi_arg_bytes(v), NULL) && jc__mpi_arg_bytes(v) <= jc__mpi_arg_cache_bytes)
        forget_mirror(rank); /* out of memory: the mirror must not know less than it says */
    return false;
}

/* Coordinator: the mirror of rank r and the rank part ways; the rank's next
 * group tells it to start again from nothing. */
static void forget_mirror(int r)
{
    if (!jc__mpi.mirrors)
        return;
    jc__mpi_arg_clear(&jc__mpi.mirrors[r]);
    jc__mpi.clear_next[r] = true;
}

static int encode_group(coord *c, int rank, size_t start, size_t *count, uint32_t id, jc__buf *out)
{
    group_hdr h = {.magic = MAGIC, .run = jc__mpi.run, .group = id, .ntasks = 0,
                   .timeout = c->ex->timeout, .memory_limit = c->ex->memory_limit,
                   .clear_args = jc__mpi.clear_next[rank]};
    jc__mpi.clear_next[rank] = false; /* said by this group; dispatch forgets again if it is not sent */
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
            jc__mpi_arg_clear(&jc__mpi.mirrors[rank]);
            jc__mpi.clear_next[rank] = true;
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
    if (jc__mpi.clear_next[rank])
        jc__mpi_arg_clear(&jc__mpi.mirrors[rank]);
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
        jc__mpi.sent_bytes += msg.len;
        if (MPI_Isend(msg.data, (int)msg.len, MPI_BYTE, s->rank, TAG_GROUP, jc__mpi.comm, &g->req) != MPI_SUCCESS) {
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
    if (h.args_reset && src > 0 && src < jc__mpi.size)
        forget_mirror(src);
    if (h.run != jc__mpi.run)
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
            jc__mean_add(&c->mean, oh.seconds); /* not a call refused before it ran */
        jc__outcome o = {.task = oh.task, .status = (jc_status)oh.status, .seconds = oh.seconds};
        jc__outcome_received(&o, &c->ex->tasks[oh.task], payload, oh.len);
        if (c->ex->deliver(c->ex->ctx, &o))
            c->stopping = true;
    }
    if (h.cost > 0)
        jc__mean_add(&c->group_cost, h.cost);
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
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_RESULTS, jc__mpi.comm, &flag, &st);
        if (!flag)
            return 0;
        *got = true;
        int len;
        char *buf = jc__mpi_receive_probed(&st, &len);
        if (!buf)
            return jc__set_error(JC_ENOMEM, "out of memory receiving results from rank %d", st.MPI_SOURCE);
        int rc = take_results(c, st.MPI_SOURCE, buf, (size_t)len);
        free(buf);
        if (rc)
            return rc;
    }
}

/* Tests the sends of cancelled runs; frees those done. */
void jc__mpi_test_orphans(void)
{
    size_t k = 0;
    for (size_t i = 0; i < jc__mpi.norphans; i++) {
        int done = 0;
        MPI_Test(&jc__mpi.orphans[i].req, &done, MPI_STATUS_IGNORE);
        if (done)
            free(jc__mpi.orphans[i].buf);
        else
            jc__mpi.orphans[k++] = jc__mpi.orphans[i];
    }
    jc__mpi.norphans = k;
}

/* Drops results of cancelled runs that have arrived. */
void jc__mpi_discard_stale_results(void)
{
    for (;;) {
        int flag = 0, len;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_RESULTS, jc__mpi.comm, &flag, &st);
        if (!flag)
            return;
        free(jc__mpi_receive_probed(&st, &len));
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
        control_msg m = {.magic = MAGIC, .value = (int32_t)jc__mpi.run};
        MPI_Send(&m, sizeof m, MPI_BYTE, s->rank, TAG_CANCEL, jc__mpi.comm); /* tiny: sent eagerly */
        forget_mirror(s->rank); /* the groups it drops unread kept nothing there */
        for (int k = 0; k < s->nq; k++) {
            if (JC__GROW(jc__mpi.orphans, jc__mpi.caporphans, jc__mpi.norphans + 1)) {
                /* cannot track it: MPI completes it alone; its buffer is left to it */
                MPI_Request_free(&s->q[k].req);
                continue;
            }
            jc__mpi.orphans[jc__mpi.norphans++] = (orphan){s->q[k].buf, s->q[k].req};
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
        jc__mpi_test_orphans();
        if (c->ex->tick && jc__tick_due(&last_tick))
            c->ex->tick(c->ex->ctx, busy_ranks(c));
        if (got) {
            step = POLL_MIN;
        } else {
            jc__mpi_sleep_for(step, &c->run_mask);
            if (step < POLL_MAX)
                step *= 2;
        }
    }
}

int jc__exec_mpi(jc__exec *ex)
{
    if (!jc__mpi_workers())
        return jc__set_error(JC_EINVAL, "the MPI backend is not available: %s", jc__mpi.why_not);
    size_t cap = ex->capacity > ex->ntasks ? ex->capacity : ex->ntasks;
    if (cap > UINT32_MAX - 1)
        return jc__set_error(JC_EINVAL, "a run of %zu distinct calls is too large for the MPI backend", cap);
    coord c = {.ex = ex, .n = ex->nworkers > 0 && ex->nworkers < jc__mpi.size - 1 ? ex->nworkers : jc__mpi.size - 1};
    c.r = calloc((size_t)c.n, sizeof *c.r);
    if (!c.r)
        return jc__set_error(JC_ENOMEM, "out of memory starting the MPI backend");
    for (int i = 0; i < c.n; i++)
        c.r[i].rank = i + 1;
    jc__mpi.run++;
    jc__mpi_test_orphans();
    jc__mpi_discard_stale_results();
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
