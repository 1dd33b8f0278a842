/*
 * The fork pool, the parent side: spawning workers (the only fork() of
 * jobcache), dispatching batches sized to measured work, receiving results,
 * timeouts, interrupts, teardown.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "exec/exec.h"
#include "fork_int.h"

/* ---- the parent side ---- */

static int spawn(pool *p, int slot)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return jc__set_error(JC_EIO, "cannot make a socket pair for a worker: %s", strerror(errno));
    worker *w = &p->w[slot];
    atomic_store(&p->shm[slot].current, 0);
    atomic_store(&p->shm[slot].crash_errno, 0);
    atomic_store(&p->shm[slot].stop, 0);
    atomic_store(&p->shm[slot].lost, 0);
    atomic_store(&p->shm[slot].crash_vsize, 0);
    atomic_store(&p->shm[slot].as_limit, 0);
    w->oom_kills = jc__fk_oom_kill_count();

    /* What the program buffered is written now, by the program; the worker
     * drops its copy of whatever is buffered at the fork (a thread of the
     * program may refill a stream in between). */
    fflush(NULL);
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        jc__fk_worker_setup(p, slot, sv[1], &p->run_mask, parent);
        jc__fk_worker_main(p, slot, sv[1]);
    }
    int saved = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        return jc__set_error(JC_EIO, "cannot fork a worker: %s", strerror(saved));
    }
    setpgid(pid, pid); /* as the worker does: no kill can miss the group */
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    w->pid = pid;
    w->fd = sv[0];
    w->nq = 0;
    w->known = p->ex->ntasks;
    w->in.len = 0;
    w->timed_out = false;
    return 0;
}

static uint32_t batch_size(const pool *p)
{
    return (uint32_t)jc__batch_size(p->ex->ntasks - p->next, (size_t)p->n, p->mean.value, BATCH_SECONDS, MAX_BATCH,
                                    false);
}

/* The memfd holding tasks start.. whole (fork_int.h): *count of them at
 * most, fewer when WHOLE_BYTES fill up first or a later one cannot be
 * encoded (it goes first next time, and fails alone); -1 with the message
 * set when the first cannot. */
static int task_file(const jc__exec *ex, uint32_t start, uint32_t *count)
{
    jc__buf b = {0};
    uint32_t n = 0;
    int rc = 0;
    for (; n < *count && (n == 0 || b.len < WHOLE_BYTES); n++) {
        const jc__task *t = &ex->tasks[start + n];
        size_t at = b.len;
        uintptr_t fn = (uintptr_t)t->fn;
        uint64_t len = 0;
        rc = jc__buf_write(&b, (const char *)&fn, sizeof fn);
        if (!rc)
            rc = jc__buf_write(&b, (const char *)&len, sizeof len);
        if (!rc)
            rc = jc__encode_args_whole(t->argv, t->argc, jc__buf_write, &b, NULL, NULL);
        if (!rc && b.oom)
            rc = jc__set_error(JC_ENOMEM, "out of memory encoding a call");
        if (rc && n > 0) { /* the ones before it go */
            b.len = at;
            b.oom = false;
            rc = 0;
            break;
        }
        if (rc)
            break;
        len = (uint64_t)(b.len - at - sizeof fn - sizeof len);
        memcpy(b.data + at + sizeof fn, &len, sizeof len);
    }
    *count = n;
    int fd = rc ? -1 : memfd_create("jobcache-calls", MFD_CLOEXEC);
    if (!rc && fd < 0)
        jc__set_error(JC_EIO, "cannot make a memfd for a call: %s", strerror(errno));
    for (size_t off = 0; fd >= 0 && off < b.len;) {
        ssize_t k = write(fd, b.data + off, b.len - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            jc__set_error(JC_EIO, "cannot write a call to a memfd: %s", k < 0 ? strerror(errno) : "no space");
            close(fd);
            fd = -1;
            break;
        }
        off += (size_t)k;
    }
    jc__buf_free(&b);
    return fd;
}

/* Sends m, and with it a memfd of its calls when m->whole (m->count may
 * shrink then); false when the worker cannot take it now (it died: seen on
 * the next read). A call that cannot be encoded fails alone, named:
 * m->count is 0 and *failed 1 then. */
static bool send_range(pool *p, worker *w, range_msg *m, uint32_t *failed)
{
    int fd = -1;
    *failed = 0;
    if (m->whole && (fd = task_file(p->ex, m->start, &m->count)) < 0) {
        const jc__task *t = &p->ex->tasks[m->start];
        char *desc = jc__call_describe_fn(t->fn, t->argv, t->argc);
        jc__outcome o = {.task = m->start, .status = JC_STATUS_ERROR};
        o.error = jc__strdup_printf("%s: cannot be sent to a worker: %s", desc ? desc : t->fn->name, jc_errmsg());
        free(desc);
        if (p->ex->deliver(p->ex->ctx, &o))
            p->stopping = true;
        m->count = 0;
        *failed = 1;
        return true;
    }
    struct iovec iov = {.iov_base = m, .iov_len = sizeof *m};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        msg.msg_control = ctl.buf;
        msg.msg_controllen = sizeof ctl.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    /* MSG_NOSIGNAL: a worker that just died must not take the caller
     * down with SIGPIPE; its death is seen on the next read. */
    ssize_t k = sendmsg(w->fd, &msg, MSG_NOSIGNAL);
    if (fd >= 0)
        close(fd);
    return k == (ssize_t)sizeof *m;
}

/* Keeps up to depth ranges in flight at worker i. */
static void dispatch(pool *p, int i, int depth)
{
    worker *w = &p->w[i];
    while (!p->stopping && w->fd >= 0 && w->nq < depth) {
        range_msg m = {0};
        bool from_retry = p->nretry > 0;
        if (from_retry) {
            m.start = p->retry[--p->nretry];
            m.count = 1;
            m.whole = m.start >= w->known;
        } else if (p->next < p->ex->ntasks) {
            m.start = (uint32_t)p->next;
            m.count = batch_size(p);
            if (m.count > p->ex->ntasks - p->next)
                m.count = (uint32_t)(p->ex->ntasks - p->next);
            if (p->next >= w->known) /* added after the worker was forked: sent whole */
                m.whole = 1;
            else if (m.count > w->known - p->next)
                m.count = (uint32_t)(w->known - p->next);
        } else {
            return;
        }
        uint32_t failed = 0;
        if (!send_range(p, w, &m, &failed)) {
            if (from_retry)
                p->retry[p->nretry++] = m.start;
            return;
        }
        if (!from_retry)
            p->next = (size_t)m.start + m.count + failed;
        if (!m.count)
            continue; /* a call that could not be sent failed alone */
        w->q[w->nq++] = (inflight){.start = m.start, .count = m.count};
        p->outstanding += m.count;
    }
}


/* Parses whole messages out of w->in and delivers them; false when the
 * worker broke the protocol (it is then killed). */
static bool consume(pool *p, worker *w)
{
    size_t off = 0;
    while (w->in.len - off >= sizeof(result_hdr)) {
        result_hdr h;
        memcpy(&h, w->in.data + off, sizeof h);
        if (w->in.len - off - sizeof h < h.len)
            break;
        const char *payload = w->in.data + off + sizeof h;
        off += sizeof h + h.len;
        if (!w->nq || h.task != w->q[0].start + w->q[0].delivered) {
            /* Cannot happen: a worker answers its ranges in order. Should it
             * ever, the worker is replaced and its tasks queued again. */
            kill(w->pid, SIGKILL);
            w->in.len = 0;
            return false;
        }
        if (++w->q[0].delivered == w->q[0].count) {
            memmove(&w->q[0], &w->q[1], sizeof(inflight) * (size_t)(INFLIGHT - 1));
            w->nq--;
        }
        p->outstanding--;
        p->futile_deaths = 0;
        jc__mean_add(&p->mean, h.seconds);
        jc__outcome o = {.task = h.task, .status = (jc_status)h.status, .seconds = h.seconds};
        jc__outcome_received(&o, &p->ex->tasks[h.task], payload, h.len);
        if (p->ex->deliver(p->ex->ctx, &o))
            p->stopping = true;
    }
    memmove(w->in.data, w->in.data + off, w->in.len - off);
    w->in.len -= off;
    return true;
}

/* Fills the empty slots. A worker that cannot be started (fork or
 * socketpair failing: EAGAIN, the process or descriptor limit) leaves its
 * slot empty while the others go on, and is tried again SPAWN_RETRY_SECONDS
 * later, not in a hot loop. Fails only when no worker at all is alive. */
static int spawn_all(pool *p)
{
    int alive = 0;
    for (int i = 0; i < p->n; i++)
        alive += p->w[i].pid != 0;
    if (alive == p->n)
        return 0;
    double now = jc__monotonic();
    if (alive && now < p->spawn_retry_at)
        return 0;
    for (int i = 0; i < p->n; i++) {
        if (p->w[i].pid)
            continue;
        int rc = spawn(p, i);
        if (rc) {
            if (!alive)
                return rc;
            p->spawn_retry_at = now + SPAWN_RETRY_SECONDS;
            return 0; /* the next slot would most likely fail the same way */
        }
        alive++;
    }
    return 0;
}

/* Ends the pool and reaps every worker it started, by pid. After a normal
 * run every worker is idle, and closing its pipe makes it flush and exit
 * (its process group is left alone: what a call started on purpose and
 * that outlives it is the program's). After an error or an interrupt
 * (kill_now), or when a worker is not gone within the timeout in force, or
 * a SIGINT/SIGTERM arrives meanwhile, the workers left are killed with
 * their process groups. Killed workers get REAP_SECONDS to be reaped; one
 * that is still not gone then (stuck in the kernel) is given up on. */
static void teardown(pool *p, bool kill_now)
{
    for (int i = 0; i < p->n; i++) {
        worker *w = &p->w[i];
        if (w->pid && kill_now)
            jc__fk_kill_group(w);
        if (w->fd >= 0)
            close(w->fd); /* EOF: an idle worker exits */
        w->fd = -1;
    }
    double start = jc__monotonic();
    double kill_at = kill_now ? start : p->ex->timeout > 0 ? start + p->ex->timeout : -1;
    double give_up = kill_now ? start + REAP_SECONDS : -1;
    double step = 0.00005; /* an idle worker ends within tens of microseconds of its EOF */
    for (;;) {
        int left = 0;
        for (int i = 0; i < p->n; i++) {
            worker *w = &p->w[i];
            int status;
            if (w->pid && waitpid(w->pid, &status, WNOHANG) != 0)
                w->pid = 0; /* reaped, or ECHILD: reaped by someone else */
            left += w->pid != 0;
        }
        for (size_t k = 0; k < p->nstrays; k++) {
            int status;
            if (p->strays[k] && waitpid(p->strays[k], &status, WNOHANG) != 0)
                p->strays[k] = 0;
            left += p->strays[k] != 0;
        }
        if (!left)
            return;
        double now = jc__monotonic();
        if (give_up < 0 && (jc__interrupted || (kill_at >= 0 && now >= kill_at))) {
            for (int i = 0; i < p->n; i++)
                jc__fk_kill_group(&p->w[i]);
            give_up = now + REAP_SECONDS;
        }
        if (give_up >= 0 && now >= give_up)
            return;
        jc__fk_nap(p, step);
        if (step < 0.02)
            step *= 2;
    }
}

/* Reads what a worker sent; false when it is gone. */
static bool receive(pool *p, worker *w)
{
    for (;;) {
        if (w->in.cap - w->in.len < 65536) {
            size_t need = w->in.len + 65536;
            size_t cap = w->in.cap ? w->in.cap : 65536;
            while (cap < need)
                cap *= 2;
            char *d = realloc(w->in.data, cap);
            if (!d) {
                kill(w->pid, SIGKILL); /* its tasks are queued again */
                return false;
            }
            w->in.data = d;
            w->in.cap = cap;
        }
        ssize_t k = read(w->fd, w->in.data + w->in.len, w->in.cap - w->in.len);
        if (k > 0) {
            w->in.len += (size_t)k;
            if (!consume(p, w))
                return false;
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        return false; /* EOF or error */
    }
}

static void check_timeouts(pool *p)
{
    if (p->ex->timeout <= 0)
        return;
    int64_t now = jc__monotonic_ns();
    for (int i = 0; i < p->n; i++) {
        worker *w = &p->w[i];
        uint64_t cur = atomic_load(&p->shm[i].current);
        if (!w->pid || !cur || w->timed_out)
            continue;
        double ran = (double)(now - atomic_load(&p->shm[i].started_ns)) * 1e-9;
        if (ran > p->ex->timeout) {
            w->timed_out = true;
            w->timed_out_task = cur;
            jc__fk_kill_group(w);
        }
    }
}

/* After an interrupt: deliver what the workers already finished. What they
 * sent is read at once; then each is asked to stop after its current call
 * and flush (jc__fk_worker_main), and given up to SALVAGE_SECONDS for it. A worker
 * that ends or breaks off now is not blamed for anything (a signal to the
 * process group may have ended it): what it held is reported skipped, and
 * teardown kills and reaps what is left. */
static void salvage(pool *p, struct pollfd *fds)
{
    p->stopping = true;
    for (int i = 0; i < p->n; i++)
        atomic_store(&p->shm[i].stop, 1);
    double deadline = jc__monotonic() + SALVAGE_SECONDS;
    for (;;) {
        int waiting = 0;
        for (int i = 0; i < p->n; i++) {
            worker *w = &p->w[i];
            fds[i].fd = -1;
            fds[i].events = POLLIN;
            fds[i].revents = 0;
            if (w->fd < 0)
                continue;
            if (!receive(p, w)) {
                close(w->fd);
                w->fd = -1;
                continue;
            }
            if (w->nq) {
                fds[i].fd = w->fd;
                waiting++;
            }
        }
        double left = deadline - jc__monotonic();
        if (!waiting || left <= 0)
            return;
        struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
        /* With the current mask: the interrupts stay blocked, so that a
         * second Ctrl-C cannot cut this short wait. */
        if (ppoll(fds, (nfds_t)p->n, &ts, NULL) < 0 && errno != EINTR)
            return;
    }
}

/* A worker's death is normally seen as its pipe closing. Not always: a
 * process a call forked (without exec) holds a copy of the pipe, and the
 * pipe stays open after the worker is gone. So every LIVENESS_SECONDS the
 * parent also asks the kernel, by pid; what a dead worker had sent is read
 * before it is buried. */
static void check_liveness(pool *p)
{
    double now = jc__monotonic();
    if (now - p->last_liveness < LIVENESS_SECONDS)
        return;
    p->last_liveness = now;
    for (int i = 0; i < p->n; i++) {
        worker *w = &p->w[i];
        if (!w->pid || !jc__fk_has_ended(w))
            continue;
        if (w->fd >= 0)
            receive(p, w);
        if (w->pid)
            jc__fk_bury(p, i);
    }
}

static int wait_and_handle(pool *p, struct pollfd *fds)
{
    int nfds = 0;
    for (int i = 0; i < p->n; i++) {
        fds[nfds].fd = p->w[i].fd;
        fds[nfds].events = POLLIN;
        fds[nfds].revents = 0;
        nfds++;
    }
    struct timespec ts = {0, 50 * 1000 * 1000};
    int r = ppoll(fds, (nfds_t)nfds, &ts, &p->run_mask);
    if (r < 0 && errno != EINTR)
        return jc__set_error(JC_EIO, "waiting for workers: %s", strerror(errno));
    if (jc__interrupted)
        return JC_EINTR;
    for (int i = 0; i < p->n && r > 0; i++) {
        worker *w = &p->w[i];
        if (w->fd < 0 || !fds[i].revents)
            continue;
        if (!receive(p, w))
            jc__fk_bury(p, i);
    }
    check_timeouts(p);
    check_liveness(p);
    return 0;
}

static int loop(pool *p, struct pollfd *fds)
{
    double last_tick = jc__monotonic();
    for (;;) {
        bool work_left = !p->stopping && (p->nretry || p->next < p->ex->ntasks);
        if (work_left) {
            if (p->futile_deaths > 2 * p->n + 2)
                return jc__set_error(JC_EIO, "workers keep dying before they run any task; "
                                     "giving up with %zu tasks not run", p->ex->ntasks - p->next + p->nretry);
            int rc = spawn_all(p);
            if (rc)
                return rc;
        }
        /* A range for every worker first, then the second in flight: two
         * long calls go to two workers, not one after the other to one. */
        for (int depth = 1; depth <= INFLIGHT; depth++)
            for (int i = 0; i < p->n; i++)
                dispatch(p, i, depth);
        if (!p->outstanding && (p->stopping || (!p->nretry && p->next >= p->ex->ntasks)))
            return 0;
        if (p->stopping) {
            for (int i = 0; i < p->n; i++)
                atomic_store(&p->shm[i].stop, 1);
        }
        int rc = wait_and_handle(p, fds);
        if (rc == JC_EINTR)
            salvage(p, fds);
        if (rc)
            return rc;
        if (jc__tick_due(&last_tick)) {
            if (p->ex->tick)
                p->ex->tick(p->ex->ctx, jc__fk_running(p));
            if (p->ex->abandon && p->ex->abandon(p->ex->ctx)) {
                p->stopping = true;
                return jc__set_error(JC_EINTR, "abandoned: the run was cancelled");
            }
        }
    }
}

/* Thread pools of OpenMP and BLAS libraries do not survive a fork, and n
 * workers each starting a pool as wide as the machine oversubscribe it. As
 * joblib does for its workers, each of these that the program did not set
 * is 1 in the workers' environment (and so in what their calls start). The
 * array is built here, by the parent, so that the worker has nothing to
 * allocate or lock: it only points environ at it. NULL when nothing is
 * added (or out of memory: the workers then get the program's environment). */
static const char *const thread_knobs[] = {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                           "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"};
enum { N_THREAD_KNOBS = sizeof thread_knobs / sizeof thread_knobs[0] };

static char **workers_environment(void)
{
    extern char **environ;
    const char *add[N_THREAD_KNOBS];
    size_t nadd = 0, n = 0;
    for (size_t k = 0; k < N_THREAD_KNOBS; k++)
        if (!getenv(thread_knobs[k]))
            add[nadd++] = thread_knobs[k];
    if (!nadd)
        return NULL;
    while (environ && environ[n])
        n++;
    /* The array, then the new "NAME=1" strings after it, in one block. */
    size_t bytes = (n + nadd + 1) * sizeof(char *);
    size_t text = 0;
    for (size_t k = 0; k < nadd; k++)
        text += strlen(add[k]) + 3;
    char **env = malloc(bytes + text);
    if (!env)
        return NULL;
    char *t = (char *)env + bytes;
    for (size_t k = 0; k < n; k++)
        env[k] = environ[k];
    for (size_t k = 0; k < nadd; k++) {
        size_t len = strlen(add[k]);
        memcpy(t, add[k], len);
        memcpy(t + len, "=1", 3);
        env[n + k] = t;
        t += len + 3;
    }
    env[n + nadd] = NULL;
    return env;
}

/* The program ignores SIGCHLD (its children are reaped by the kernel as
 * they end), and the run set the default for its duration, to learn how
 * its workers die. Any child of the program's that ended meanwhile is a
 * zombie the program did not ask for: the kernel would have reaped it. The
 * workers are all reaped by pid by now, so every zombie left is such a
 * child; reaping them is what the program's disposition would have done.
 * Called after SIGCHLD is ignored again: a child ending from then on is
 * reaped by the kernel. waitid(WNOWAIT) first, so that a child still
 * running is never waited for. */
static void reap_what_sigchld_ign_would_have(void)
{
    for (;;) {
        siginfo_t si;
        si.si_pid = 0;
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0)
            return;
        int status;
        if (waitpid(si.si_pid, &status, WNOHANG) <= 0)
            return;
    }
}

int jc__exec_fork(jc__exec *ex)
{
    size_t cap = ex->capacity > ex->ntasks ? ex->capacity : ex->ntasks;
    if (cap > UINT32_MAX - 1)
        return jc__set_error(JC_EINVAL, "a run of %zu distinct calls is too large for the pool", cap);
    pool p = {.ex = ex, .n = ex->nworkers > 0 ? ex->nworkers : 1};
    int rc = 0;
    p.w = calloc((size_t)p.n, sizeof *p.w);
    p.retry = malloc((cap ? cap : 1) * sizeof *p.retry);
    struct pollfd *fds = calloc((size_t)p.n, sizeof *fds);
    p.shm = mmap(NULL, (size_t)p.n * sizeof *p.shm, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p.shm == MAP_FAILED)
        p.shm = NULL;
    if (!p.w || !p.retry || !fds || !p.shm) {
        rc = jc__set_error(JC_ENOMEM, "out of memory starting %d workers", p.n);
        goto out;
    }
    for (int i = 0; i < p.n; i++)
        p.w[i].fd = -1;
    /* The signals the run took over stay blocked except inside ppoll, so
     * the check of jc__interrupted and the wait cannot miss one. SIGCHLD is
     * blocked, and set to its default action if the program ignores it
     * (which would reap workers before jc__fk_bury() learns how they died). */
    sigset_t block, old;
    block = ex->interrupts;
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &old);
    p.run_mask = old;
    for (int sig = 1; sig < NSIG; sig++)
        if (sigismember(&ex->interrupts, sig))
            sigdelset(&p.run_mask, sig);
    sigaddset(&p.run_mask, SIGCHLD);
    struct sigaction chld_old, chld_dfl = {.sa_handler = SIG_DFL};
    sigemptyset(&chld_dfl.sa_mask);
    sigaction(SIGCHLD, NULL, &chld_old);
    p.chld_program = chld_old;
    bool chld_reset = chld_old.sa_handler == SIG_IGN || (chld_old.sa_flags & SA_NOCLDWAIT);
    if (chld_reset)
        sigaction(SIGCHLD, &chld_dfl, NULL);
    p.env = workers_environment();

    rc = loop(&p, fds);
    if (rc == JC_EINTR && jc__interrupted)
        jc__set_error(JC_EINTR, "interrupted by a signal; the workers were stopped and the finished results kept");
    teardown(&p, rc != 0);
    if (chld_reset) {
        sigaction(SIGCHLD, &chld_old, NULL);
        reap_what_sigchld_ign_would_have();
    }
    /* A signal still pending is delivered here, and jc_run sees it. */
    sigprocmask(SIG_SETMASK, &old, NULL);
out:
    if (p.w)
        for (int i = 0; i < p.n; i++)
            jc__buf_free(&p.w[i].in);
    free(p.w);
    free(p.retry);
    free(p.strays);
    free(p.env);
    free(fds);
    if (p.shm)
        munmap(p.shm, (size_t)p.n * sizeof *p.shm);
    return rc;
}
