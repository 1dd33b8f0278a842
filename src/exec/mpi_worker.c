/*
 * A worker rank: receives groups, runs their calls through the fork pool's
 * worker, sends results back; ends with the job.
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
void jc__mpi_drain(void)
{
    for (;;) {
        int flag = 0, len;
        MPI_Status st;
        MPI_Iprobe(0, MPI_ANY_TAG, jc__mpi.comm, &flag, &st);
        if (!flag)
            return;
        char *buf = jc__mpi_receive_probed(&st, &len);
        if (!buf) {
            fprintf(stderr, "jobcache: rank %d: out of memory receiving calls; ending the job\n", jc__mpi.rank);
            MPI_Abort(MPI_COMM_WORLD, 70);
        }
        control_msg m = {0};
        if (st.MPI_TAG == TAG_GROUP && (size_t)len >= sizeof(group_hdr)) {
            group_hdr h;
            memcpy(&h, buf, sizeof h);
            if (h.run > srv.cancelled_up_to && srv.nq < SIZE_MAX / sizeof(queued)) {
                if (JC__GROW(srv.q, srv.cap, srv.nq + 1)) {
                    fprintf(stderr, "jobcache: rank %d: out of memory queueing calls; ending the job\n",
                            jc__mpi.rank);
                    MPI_Abort(MPI_COMM_WORLD, 70);
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
    if (jc__mpi_send_sleeping(g->out.data, g->out.len, 0, TAG_RESULTS)) {
        fprintf(stderr, "jobcache: rank %d: cannot send results to the coordinator; ending the job\n", jc__mpi.rank);
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
                 "on MPI rank %d", len, jc__mpi.rank);
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
        snprintf(why, sizeof why, "out of memory on MPI rank %d holding its result of %zu bytes", jc__mpi.rank, len);
        oh = (outcome_hdr){.task = task, .status = JC_STATUS_ERROR, .len = (uint32_t)strlen(why), .seconds = secs};
        jc__buf_write(&g->out, (const char *)&oh, sizeof oh);
        jc__buf_write(&g->out, why, oh.len);
        if (g->out.oom) {
            fprintf(stderr, "jobcache: rank %d: out of memory; ending the job\n", jc__mpi.rank);
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
                        ? jc__strdup_printf("%s (on MPI rank %d, host %s)", o->error ? o->error : "", jc__mpi.rank,
                                            jc__mpi.host)
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
    jc__mpi_drain();
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
            arg_entry *e = jc__mpi_arg_find(&srv.args, (const unsigned char *)v->u.s);
            const jc_value *k = e ? e->value : NULL;
            jc_value *r = !k                          ? NULL
                          : k->type == JC_TYPE_DOUBLES ? jc_doubles_ref(k->u.arr, k->len)
                          : k->type == JC_TYPE_INTS    ? jc_ints_ref(k->u.arr, k->len)
                                                       : jc_bytes(k->u.s, k->len);
            if (!r) {
                if (ok && !*why)
                    *why = jc__strdup_printf("an argument sent by reference is not kept on MPI rank %d (memory "
                                             "ran out on the rank or the coordinator); run again", jc__mpi.rank);
                ok = false;
                args_reset = true;
                continue;
            }
            r->parent = kw;
            *slot = r;
            jc_value_free(v);
        } else if ((v->type == JC_TYPE_DOUBLES || v->type == JC_TYPE_INTS || v->type == JC_TYPE_BYTES) &&
                   jc__mpi_arg_bytes(v) >= JC__DIGEST_MIN) {
            unsigned char d[25];
            jc_value *copy = NULL;
            if (jc__value_digest(v, d) != 0 || (copy = jc_value_copy(v)) == NULL ||
                !jc__mpi_arg_keep(&srv.args, d, jc__mpi_arg_bytes(v), copy)) {
                jc_value_free(copy);
                if (jc__mpi_arg_bytes(v) <= jc__mpi_arg_cache_bytes)
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
        *why = jc__strdup_printf("%s: its arguments do not decode on rank %d: %s", name, jc__mpi.rank, jc_errmsg());
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
                                       name, jc__mpi.rank, jc__mpi.host, fn->version, version)
                    : jc__strdup_printf("%s: not a registered function on rank %d (host %s): %s; every rank must "
                                        "run the same program", name, jc__mpi.rank, jc__mpi.host, jc_errmsg());
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

/* Decodes the group's calls into g->tasks; a call that cannot run here
 * (an unknown function, another version) fails at once, its outcome added. */
static void decode_group(group_run *g, const queued *qg)
{
    size_t off = sizeof g->h;
    for (uint32_t k = 0; k < g->h.ntasks; k++) {
        task_hdr th = {0};
        if (qg->len - off >= sizeof th)
            memcpy(&th, qg->buf + off, sizeof th);
        if (qg->len - off < sizeof th ||
            qg->len - off - sizeof th < (size_t)th.name_len + th.version_len + th.args_len) {
            /* Cannot happen (the coordinator made it, MPI delivers it
             * whole); were it to, the coordinator would wait forever. */
            fprintf(stderr, "jobcache: rank %d: a truncated group of calls; ending the job\n", jc__mpi.rank);
            MPI_Abort(MPI_COMM_WORLD, 70);
        }
        off += sizeof th;
        char *why = NULL;
        jc__task t;
        if (decode_task(qg->buf + off, &th, &t, &why)) {
            g->index[g->n] = th.task;
            g->tasks[g->n++] = t;
        } else {
            add_outcome(g, th.task, JC_STATUS_ERROR, 0, why ? why : "", why ? strlen(why) : 0);
            free(why);
        }
        off += (size_t)th.name_len + th.version_len + th.args_len;
    }
}

/* The pool could not run (no child could be started, children dying
 * before any call): every call it did not deliver fails, so that the
 * coordinator hears of each. */
static void fail_undelivered(group_run *g)
{
    char *why = jc__strdup_printf("not run: %s (on MPI rank %d, host %s)", jc_errmsg(), jc__mpi.rank, jc__mpi.host);
    for (size_t i = 0; i < g->n; i++)
        if (!g->done[i]) {
            const jc__task *t = &g->tasks[i];
            char *desc = jc__call_describe_fn(t->fn, t->argv, t->argc);
            char *msg = jc__strdup_printf("%s: %s", desc ? desc : t->fn->name, why ? why : "not run");
            const char *text = msg ? msg : "not run";
            add_outcome(g, g->index[i], JC_STATUS_ERROR, 0, text, strlen(text));
            free(msg);
            free(desc);
        }
    free(why);
}

/* Runs the decoded calls on a fork pool of one worker, their outcomes sent
 * back as they come (serve_deliver), and measures what the group cost
 * beyond its calls. */
static void execute_group(group_run *g)
{
    jc__exec ex = {.tasks = g->tasks, .ntasks = g->n, .nworkers = 1, .timeout = g->h.timeout,
                   .memory_limit = g->h.memory_limit, .deliver = serve_deliver, .abandon = serve_abandon,
                   .ctx = g};
    /* Taken over here, so the child gets their default (exec_fork), and
     * they reach this process during the fork pool's waits only. */
    ex.interrupts = term_caught;
    double t0 = jc__monotonic();
    int rc = jc__exec_fork(&ex);
    g->cost = jc__monotonic() - t0 - g->busy - g->sending;
    if (rc && !group_dropped(g))
        fail_undelivered(g);
}

static void free_group(group_run *g)
{
    for (size_t i = 0; i < g->n; i++) {
        for (size_t k = 0; k < g->tasks[i].argc; k++)
            jc_value_free(g->tasks[i].argv[k]);
        free((void *)g->tasks[i].argv);
    }
    free(g->tasks);
    free(g->index);
    free(g->done);
    jc__buf_free(&g->out);
}

static void run_group(const queued *qg)
{
    group_run g = {.last_flush = jc__monotonic()};
    memcpy(&g.h, qg->buf, sizeof g.h);
    if (g.h.clear_args)
        jc__mpi_arg_clear(&srv.args);
    results_hdr placeholder = {0};
    jc__buf_write(&g.out, (const char *)&placeholder, sizeof placeholder);
    g.tasks = calloc(g.h.ntasks ? g.h.ntasks : 1, sizeof *g.tasks);
    g.index = calloc(g.h.ntasks ? g.h.ntasks : 1, sizeof *g.index);
    g.done = calloc(g.h.ntasks ? g.h.ntasks : 1, sizeof *g.done);
    if (!g.tasks || !g.index || !g.done || g.out.oom) {
        fprintf(stderr, "jobcache: rank %d: out of memory for a group of calls; ending the job\n", jc__mpi.rank);
        MPI_Abort(MPI_COMM_WORLD, 70);
    }
    decode_group(&g, qg);
    if (g.n)
        execute_group(&g);
    flush_results(&g);
    free_group(&g);
    jc__mpi_arg_bury(&srv.args); /* no call of the group points into them now */
}

static _Noreturn void finish_worker(void)
{
    for (size_t i = 0; i < srv.nq; i++)
        free(srv.q[i].buf);
    free(srv.q);
    jc__mpi_arg_clear(&srv.args);
    jc__mpi_arg_bury(&srv.args);
    free(srv.args.dropped);
    /* Rank 0 drops results until every rank says it is done with sending. */
    control_msg ack = {.magic = MAGIC, .value = 0};
    jc__mpi_send_sleeping(&ack, sizeof ack, 0, TAG_FINISHED);
    MPI_Comm_free(&jc__mpi.comm);
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
        jc__mpi_drain();
        jc__mpi_sleep_for(IDLE_MAX, NULL);
    }
    if (srv.finish)
        finish_worker();
    signal(term_signal, SIG_DFL);
    raise(term_signal);
    _exit(128 + term_signal);
}

_Noreturn void jc__mpi_serve(void)
{
    catch_term();
    double step = POLL_MIN;
    for (;;) {
        jc__mpi_drain();
        if (srv.finish)
            finish_worker();
        if (term_signal)
            end_by_signal();
        if (!srv.nq) {
            jc__mpi_sleep_for(step, NULL);
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
