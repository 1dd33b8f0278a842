/*
 * exec_threads: misses computed on a pool of pthreads, for functions that
 * are thread-safe. Same semantics as the fork backend (results delivered in
 * the caller's thread as they finish, stop on error, interrupts), without
 * fork: no copy-on-write, no crash isolation, no timeout.
 *
 * Threads take contiguous ranges of tasks from a shared counter (a range
 * holds about BATCH_SECONDS of work, guided by what is left, as in the fork
 * backend) and push outcomes onto a queue; the caller's thread drains the
 * queue, delivers, commits and draws progress. The caller's thread never
 * computes, so a slow store never stalls a worker and the other way round.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exec/exec.h"

#define BATCH_SECONDS 0.005

typedef struct tpool {
    jc__exec *ex;
    pthread_mutex_t lock;
    pthread_cond_t ready; /* an outcome was queued, or a thread finished */
    pthread_cond_t more;  /* tasks were added, or none can be any more */
    size_t next;          /* next task to hand out */
    size_t ntasks;        /* tasks known (ex->ntasks as of the last delivery) */
    bool delivering;      /* the caller's thread is delivering: tasks may be added */
    bool stop;
    jc__mean mean;        /* of task seconds */
    jc__outcome *queue;   /* ntasks slots: each task is queued once at most */
    size_t qhead, qtail;
    int alive;
    size_t running;
} tpool;

static size_t take_range(tpool *p, size_t *start)
{
    size_t left = p->ntasks - p->next;
    if (p->stop || !left)
        return 0;
    size_t n = jc__batch_size(left, (size_t)p->ex->nworkers, p->mean.value, BATCH_SECONDS, 0, false);
    *start = p->next;
    p->next += n;
    return n;
}

static void *thread_main(void *arg)
{
    tpool *p = arg;
    pthread_mutex_lock(&p->lock);
    size_t start, n;
    for (;;) {
        if (!(n = take_range(p, &start))) {
            /* A task that runs or waits to be delivered may add others
             * (jc__exec.ntasks): idle until none can. */
            if (p->stop || (!p->running && p->qhead == p->qtail && !p->delivering))
                break;
            pthread_cond_wait(&p->more, &p->lock);
            continue;
        }
        for (size_t t = start; t < start + n; t++) {
            if (p->stop) {
                /* Return the rest of the range: it is reported skipped. */
                break;
            }
            p->running++;
            pthread_mutex_unlock(&p->lock);
            const jc__task *task = &p->ex->tasks[t];
            jc__outcome o = {.task = t};
            o.status = jc__call_invoke(task->fn, task->argv, task->argc, &o.value, &o.error, &o.seconds);
            pthread_mutex_lock(&p->lock);
            p->running--;
            jc__mean_add(&p->mean, o.seconds);
            p->queue[p->qtail++] = o;
            pthread_cond_signal(&p->ready);
        }
    }
    p->alive--;
    pthread_cond_broadcast(&p->more);
    pthread_cond_signal(&p->ready);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Delivers everything queued; called with the lock held, drops it while
 * delivering so that workers keep going. */
static void drain(tpool *p)
{
    while (p->qhead < p->qtail) {
        jc__outcome o = p->queue[p->qhead++];
        p->delivering = true;
        pthread_mutex_unlock(&p->lock);
        bool stop = p->ex->deliver(p->ex->ctx, &o);
        pthread_mutex_lock(&p->lock);
        p->delivering = false;
        p->ntasks = p->ex->ntasks; /* deliver may have added tasks */
        if (stop)
            p->stop = true;
        pthread_cond_broadcast(&p->more);
    }
}

int jc__exec_threads(jc__exec *ex)
{
    int n = ex->nworkers > 0 ? ex->nworkers : 1;
    tpool p = {.ex = ex, .ntasks = ex->ntasks};
    pthread_t *th = calloc((size_t)n, sizeof *th);
    size_t cap = ex->capacity > ex->ntasks ? ex->capacity : ex->ntasks;
    p.queue = calloc(cap ? cap : 1, sizeof *p.queue);
    if (!th || !p.queue) {
        free(th);
        free(p.queue);
        return jc__set_error(JC_ENOMEM, "out of memory starting %d threads", n);
    }
    pthread_mutex_init(&p.lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p.ready, &ca);
    pthread_cond_init(&p.more, NULL);
    pthread_condattr_destroy(&ca);

    int rc = 0, started = 0;
    pthread_mutex_lock(&p.lock);
    for (; started < n; started++) {
        int err = pthread_create(&th[started], NULL, thread_main, &p);
        if (err) {
            if (!started)
                rc = jc__set_error(JC_EIO, "cannot start a thread: %s", strerror(err));
            break; /* run with the threads that did start */
        }
        p.alive++;
    }
    double last_tick = jc__monotonic();
    while (started && (p.alive > 0 || p.qhead < p.qtail)) {
        drain(&p);
        if (jc__interrupted && !p.stop) {
            p.stop = true;
            pthread_cond_broadcast(&p.more);
            rc = jc__set_error(JC_EINTR, "interrupted by a signal; running calls were let finish and kept");
        }
        if (p.alive == 0)
            continue;
        struct timespec ts = jc__monotonic_after(0.05);
        if (p.qhead == p.qtail)
            pthread_cond_timedwait(&p.ready, &p.lock, &ts);
        if (ex->tick && jc__tick_due(&last_tick)) {
            size_t r = p.running;
            pthread_mutex_unlock(&p.lock);
            ex->tick(ex->ctx, r);
            pthread_mutex_lock(&p.lock);
        }
    }
    drain(&p);
    pthread_mutex_unlock(&p.lock);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_cond_destroy(&p.ready);
    pthread_cond_destroy(&p.more);
    pthread_mutex_destroy(&p.lock);
    free(th);
    free(p.queue);
    return rc;
}
