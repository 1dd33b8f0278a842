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

#include "exec.h"

#define BATCH_SECONDS 0.01
#define FLUSH_SECONDS 0.02
#define SPAWN_RETRY_SECONDS 0.1 /* after a worker could not be started */
#define SALVAGE_SECONDS 0.1     /* after an interrupt, for workers to flush */
#define EOF_GRACE_SECONDS 0.5   /* a worker whose pipe closed, to finish dying by itself */
#define REAP_SECONDS 10.0       /* a worker sent SIGKILL, to be reaped (it may be in D state) */
#define LIVENESS_SECONDS 0.05   /* how often the parent checks that its workers live */
enum { MAX_BATCH = 65536, FLUSH_BYTES = 1 << 16, INFLIGHT = 2 };

/* Parent -> worker: a range of task indices. */
typedef struct range_msg {
    uint32_t start, count;
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
    double mean;        /* running mean of task seconds, 0 = none yet */
    size_t measured;
    int futile_deaths;  /* workers that died while idle, in a row */
    double spawn_retry_at; /* jc__monotonic() before which no spawn is tried */
    sigset_t run_mask;  /* the mask to wait with (SIGINT/SIGTERM unblocked) */
    double last_liveness; /* jc__monotonic() of the last check that workers live */
    struct sigaction chld_program; /* the program's SIGCHLD disposition, given back to workers */
    char **env;         /* the workers' environment (thread-count defaults), or NULL for the program's */
    pid_t *strays;      /* workers killed that could not be reaped in time */
    size_t nstrays;
} pool;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the worker side ---- */

static shared_slot *my_slot;
static long my_page_size;
static dev_t my_pipe_dev; /* the worker's end of its pipe, to see a call close or replace it */
static ino_t my_pipe_ino;

/* The address space of this process in bytes, from /proc/self/statm (first
 * field, in pages), or 0. Async-signal-safe: open, read and close only. */
static int64_t address_space_now(void)
{
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char buf[64];
    ssize_t k;
    while ((k = read(fd, buf, sizeof buf)) < 0 && errno == EINTR)
        ;
    close(fd);
    int64_t pages = 0;
    for (ssize_t i = 0; i < k && buf[i] >= '0' && buf[i] <= '9'; i++)
        pages = pages * 10 + (buf[i] - '0');
    return pages * (int64_t)my_page_size;
}

/* Records errno and the size of the address space for the parent (an
 * allocation refused just before the crash, or a size at the memory limit,
 * is evidence of running out of memory; nothing else is), then dies of the
 * same signal. Only async-signal-safe calls. */
static void crash_handler(int sig)
{
    int saved = errno;
    if (my_slot) {
        atomic_store(&my_slot->crash_errno, saved);
        if (atomic_load(&my_slot->as_limit))
            atomic_store(&my_slot->crash_vsize, address_space_now());
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static bool write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        c += k;
        n -= (size_t)k;
    }
    return true;
}

static bool read_all(int fd, void *p, size_t n)
{
    char *c = p;
    while (n) {
        ssize_t k = read(fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        c += k;
        n -= (size_t)k;
    }
    return true;
}

/* The pool's crash handler, only where the program left the default: a
 * handler of its own (or a sanitizer's) stays in effect in the worker. */
static void catch_crash(int sig, const struct sigaction *sa)
{
    struct sigaction old;
    if (sigaction(sig, NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL)
        sigaction(sig, sa, NULL);
}

/* The address space the worker has at start, inherited from the caller, in
 * bytes; 0 when /proc cannot tell. */
static rlim_t inherited_address_space(void)
{
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char buf[128];
    ssize_t k;
    while ((k = read(fd, buf, sizeof buf - 1)) < 0 && errno == EINTR)
        ;
    close(fd);
    if (k <= 0)
        return 0;
    buf[k] = '\0';
    char *end;
    errno = 0;
    unsigned long long pages = strtoull(buf, &end, 10);
    long page = sysconf(_SC_PAGESIZE);
    if (end == buf || errno || page <= 0)
        return 0;
    if (pages > (unsigned long long)RLIM_INFINITY / (unsigned long long)page)
        return RLIM_INFINITY;
    return (rlim_t)(pages * (unsigned long long)page);
}

/* RLIMIT_AS: what the worker inherited plus memory_limit (saturating), so
 * that the limit bounds what the function allocates, whatever the size of
 * the caller. Never above the hard limit the process already has. */
static void limit_memory(int64_t memory_limit)
{
    rlim_t base = inherited_address_space();
    rlim_t extra = (rlim_t)memory_limit;
    rlim_t want = base > RLIM_INFINITY - extra ? RLIM_INFINITY : base + extra;
    struct rlimit cur;
    /* Never above a limit the program set itself, soft or hard. */
    if (getrlimit(RLIMIT_AS, &cur) == 0) {
        if (cur.rlim_cur != RLIM_INFINITY && want > cur.rlim_cur)
            want = cur.rlim_cur;
        if (cur.rlim_max != RLIM_INFINITY && want > cur.rlim_max)
            want = cur.rlim_max;
    }
    struct rlimit rl = {want, want};
    if (setrlimit(RLIMIT_AS, &rl) == 0 && want != RLIM_INFINITY && want <= INT64_MAX)
        atomic_store(&my_slot->as_limit, (int64_t)want);
}

/* Output the program had buffered in any stdio stream at the fork is the
 * program's to write: the parent writes it. A copy left in the worker would
 * come out a second time when the worker flushes (a logging thread may have
 * refilled stdout between the parent's fflush and the fork), so the worker
 * drops every stream's pending output before running anything. glibc keeps
 * its streams in the exported list _IO_list_all (the child is single-threaded
 * here, so walking it needs no lock); elsewhere only stdout and stderr are
 * known, and the parent's fflush(NULL) right before the fork is what
 * remains. Input streams are left alone. */
#ifdef __GLIBC__
extern FILE *_IO_list_all __attribute__((weak));
#endif
static void drop_inherited_output(void)
{
    bool walked = false;
#ifdef __GLIBC__
    if (&_IO_list_all) {
        for (FILE *f = _IO_list_all; f; f = f->_chain)
            if (__fpending(f))
                __fpurge(f);
        walked = true;
    }
#endif
    if (!walked) {
        __fpurge(stdout);
        __fpurge(stderr);
    }
    /* Whole lines: with stdout a file or a pipe (fully buffered), two
     * workers' output would be cut into 4 KiB pieces and spliced. */
    setvbuf(stdout, NULL, _IOLBF, BUFSIZ);
}

/* Each of the program's interrupts that the run took over (its disposition
 * was the default) is the default again in a worker, and so in whatever the
 * worker starts (system(), fork + exec of a simulator): nothing a call starts
 * inherits an ignored SIGINT or SIGTERM from jobcache. A worker is not in the
 * terminal's process group (it has its own), so a Ctrl-C reaches only the
 * coordinating process, which stops the workers itself. */
static void reset_interrupts(const jc__exec *ex)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigemptyset(&dfl.sa_mask);
    if (sigismember(&ex->interrupts, SIGINT))
        sigaction(SIGINT, &dfl, NULL);
    if (sigismember(&ex->interrupts, SIGTERM))
        sigaction(SIGTERM, &dfl, NULL);
}

static void worker_setup(pool *p, int slot, int fd, const sigset_t *old_mask, pid_t parent)
{
    /* A process group of its own (the parent sets it too, whichever runs
     * first): what a call starts is in it, and a timeout, a crash or an
     * interrupted run kills the whole group. */
    setpgid(0, 0);
    /* Die with the parent; if it is already gone, go at once. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(0);
    my_slot = &p->shm[slot];
    my_page_size = sysconf(_SC_PAGESIZE);
    struct stat sb;
    if (fstat(fd, &sb) == 0) {
        my_pipe_dev = sb.st_dev;
        my_pipe_ino = sb.st_ino;
    }
    drop_inherited_output();
    reset_interrupts(p->ex);
    signal(SIGPIPE, SIG_DFL);
    /* The program's own SIGCHLD disposition (the run set the default in the
     * parent, to learn how workers die); ignored stays ignored for what the
     * calls start. */
    sigaction(SIGCHLD, &p->chld_program, NULL);
    if (p->env) {
        extern char **environ;
        environ = p->env; /* built by the parent: no allocation or lock here */
    }

    static char altstack[1 << 15];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack};
    sigaltstack(&ss, NULL);
    struct sigaction sa = {.sa_handler = crash_handler, .sa_flags = SA_ONSTACK | SA_RESETHAND};
    sigemptyset(&sa.sa_mask);
    catch_crash(SIGSEGV, &sa);
    catch_crash(SIGBUS, &sa);
    catch_crash(SIGABRT, &sa);

    if (p->ex->memory_limit > 0)
        limit_memory(p->ex->memory_limit);
    /* The parent's ends of the other workers' sockets are not ours. */
    for (int i = 0; i < p->n; i++)
        if (p->w[i].fd >= 0 && p->w[i].fd != fd)
            close(p->w[i].fd);
    sigset_t mask = *old_mask;
    sigdelset(&mask, SIGCHLD);
    sigprocmask(SIG_SETMASK, &mask, NULL);
}

/* Appends one outcome to out. */
static void worker_emit(jc__buf *out, uint32_t task, jc_status st, double secs, const void *payload,
                        size_t len, bool oom)
{
    /* A result is refused beyond 4 GiB before it gets here; a message that
     * long is cut, so that the header always tells the payload's length. */
    if (len > UINT32_MAX)
        len = UINT32_MAX;
    result_hdr h = {.len = (uint32_t)len, .task = task, .status = (uint32_t)st, .oom = oom, .seconds = secs};
    jc__buf_write(out, (const char *)&h, sizeof h);
    jc__buf_write(out, payload, len);
}

static void worker_run_task(pool *p, int fd, uint32_t t, jc__buf *out)
{
    const jc__task *task = &p->ex->tasks[t];
    atomic_store(&my_slot->started_ns, now_ns());
    atomic_store(&my_slot->current, (uint64_t)t + 1);
    errno = 0; /* so that the crash handler sees this call's errno only */
    jc_value *value = NULL;
    char *error = NULL;
    double secs = 0;
    jc_status st = jc__call_invoke(task->fn, task->argv, task->argc, &value, &error, &secs);
    /* A call that closed or replaced the worker's end of the pipe (closing
     * every descriptor above 2 is common in code that starts daemons) took
     * the worker's only way to report. Say so through the shared slot and
     * go: the parent sees the pipe close, and blames this call. */
    struct stat sb;
    if (fstat(fd, &sb) != 0 || sb.st_dev != my_pipe_dev || sb.st_ino != my_pipe_ino) {
        atomic_store(&my_slot->lost, (uint64_t)t + 1);
        _exit(3);
    }
    atomic_store(&my_slot->current, 0);
    if (st == JC_STATUS_OK) {
        jc__buf enc = {0};
        int rc = jc__encode_result(value, jc__buf_write, &enc);
        if (!rc && enc.oom)
            rc = jc__set_error(JC_ENOMEM, "out of memory encoding the result");
        if (!rc && enc.len > UINT32_MAX)
            rc = jc__set_error(JC_EINVAL, "the encoded result is %zu bytes, more than 4 GiB", enc.len);
        if (!rc) {
            worker_emit(out, t, st, secs, enc.data, enc.len, false);
        } else {
            char *desc = jc__call_describe_fn(task->fn, task->argv, task->argc);
            char *msg = jc__strdup_printf("%s: the result cannot be sent back: %s", desc ? desc : task->fn->name,
                                          jc_errmsg());
            free(desc);
            worker_emit(out, t, JC_STATUS_ERROR, secs, msg ? msg : "", msg ? strlen(msg) : 0,
                        jc_errcode() == JC_ENOMEM);
            free(msg);
        }
        jc__buf_free(&enc);
        jc_value_free(value);
    } else {
        worker_emit(out, t, st, secs, error ? error : "", error ? strlen(error) : 0, !error);
        free(error);
    }
}

static void worker_flush(int fd, jc__buf *out)
{
    /* What the functions wrote goes out too, to stdout or to any FILE *
     * of the program's (a worker ends with _exit, which would drop it).
     * Every stream holds only what this worker wrote: what it inherited
     * was dropped at start. */
    fflush(NULL);
    if (out->oom || !write_all(fd, out->data, out->len))
        _exit(3); /* the parent sees the death and queues the tasks again */
    out->len = 0;
}

static _Noreturn void worker_main(pool *p, int slot, int fd)
{
    jc__buf out = {0};
    range_msg m;
    while (read_all(fd, &m, sizeof m)) {
        double last_flush = jc__monotonic();
        for (uint32_t i = 0; i < m.count; i++) {
            if (atomic_load(&my_slot->stop))
                break;
            worker_run_task(p, fd, m.start + i, &out);
            if (out.len >= FLUSH_BYTES || jc__monotonic() - last_flush >= FLUSH_SECONDS) {
                worker_flush(fd, &out);
                last_flush = jc__monotonic();
            }
        }
        worker_flush(fd, &out);
        if (atomic_load(&my_slot->stop))
            break;
    }
    (void)slot;
    fflush(NULL);
    /* _exit, not exit: the parent's atexit handlers and stdio buffers are
     * the parent's business. */
    _exit(0);
}

/* ---- the parent side ---- */

/* The kernel's count of OOM kills (/proc/vmstat oom_kill, Linux 4.13 and
 * later), or -1: a worker killed by SIGKILL while it rose was most likely
 * chosen by the OOM killer; otherwise nothing says so. */
static int64_t oom_kill_count(void)
{
    FILE *f = fopen("/proc/vmstat", "re");
    if (!f)
        return -1;
    char line[128];
    long long n = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "oom_kill %lld", &n) == 1)
            break;
    fclose(f);
    return n;
}

/* Kills worker i and everything in its process group (what its calls
 * started). The worker's pid is not reaped yet, so neither it nor the
 * group's id can have been reused. */
static void kill_group(const worker *w)
{
    if (w->pid > 0) {
        kill(-w->pid, SIGKILL);
        kill(w->pid, SIGKILL); /* should a call have moved it to another group */
    }
}

/* Whether worker w has ended, without reaping it (so that its pid, and its
 * process group's id, stay its own until kill_group). */
static bool has_ended(const worker *w)
{
    siginfo_t si;
    si.si_pid = 0;
    if (waitid(P_PID, (id_t)w->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
        return errno == ECHILD; /* reaped by someone else: gone all the same */
    return si.si_pid == w->pid;
}

/* Sleeps up to seconds with the run's interrupts deliverable, so that a
 * Ctrl-C cuts every wait of the coordinator short. */
static void nap(const pool *p, double seconds)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    ppoll(NULL, 0, &ts, &p->run_mask);
}

/* Reaps pid, waiting until deadline (jc__monotonic()) at most; sets *status
 * (-1 when someone else reaped it). False when it is still not gone: it is
 * left to the kernel (it dies, it was sent SIGKILL) and reaped by teardown. */
static bool reap(const pool *p, pid_t pid, int *status, double deadline)
{
    double step = 0.0005;
    for (;;) {
        pid_t got = waitpid(pid, status, WNOHANG);
        if (got == pid)
            return true;
        if (got < 0 && errno != EINTR) {
            *status = -1; /* ECHILD: reaped by another part of the program */
            return true;
        }
        if (jc__monotonic() >= deadline)
            return false;
        nap(p, step);
        if (step < 0.01)
            step *= 2;
    }
}

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
    w->oom_kills = oom_kill_count();

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
        worker_setup(p, slot, sv[1], &p->run_mask, parent);
        worker_main(p, slot, sv[1]);
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
    w->in.len = 0;
    w->timed_out = false;
    return 0;
}

static uint32_t batch_size(const pool *p)
{
    size_t left = p->ex->ntasks - p->next;
    /* Guided share: never more than half of a fair share of what is left. */
    size_t guided = left / (2 * (size_t)p->n);
    size_t by_time = p->mean > 0 ? (size_t)(BATCH_SECONDS / p->mean) : 1;
    size_t b = by_time < guided ? by_time : guided;
    if (b < 1)
        b = 1;
    if (b > MAX_BATCH)
        b = MAX_BATCH;
    return (uint32_t)b;
}

static void dispatch(pool *p, int i)
{
    worker *w = &p->w[i];
    while (!p->stopping && w->fd >= 0 && w->nq < INFLIGHT) {
        range_msg m;
        bool from_retry = p->nretry > 0;
        if (from_retry) {
            m.start = p->retry[--p->nretry];
            m.count = 1;
        } else if (p->next < p->ex->ntasks) {
            m.start = (uint32_t)p->next;
            m.count = batch_size(p);
            p->next += m.count;
        } else {
            return;
        }
        /* MSG_NOSIGNAL: a worker that just died must not take the caller
         * down with SIGPIPE; its death is seen on the next read. */
        if (send(w->fd, &m, sizeof m, MSG_NOSIGNAL) != (ssize_t)sizeof m) {
            if (from_retry)
                p->retry[p->nretry++] = m.start;
            else
                p->next -= m.count; /* it was the last range taken */
            return;
        }
        w->q[w->nq++] = (inflight){.start = m.start, .count = m.count};
        p->outstanding += m.count;
    }
}

static void learn(pool *p, double secs)
{
    p->measured++;
    double k = p->measured < 16 ? 1.0 / (double)p->measured : 1.0 / 16;
    p->mean += (secs - p->mean) * k;
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
        learn(p, h.seconds);
        jc__outcome o = {.task = h.task, .status = (jc_status)h.status, .seconds = h.seconds};
        if (h.status == JC_STATUS_OK) {
            o.blob = malloc(h.len ? h.len : 1);
            if (o.blob)
                memcpy(o.blob, payload, h.len);
            o.blob_len = h.len;
            if (!o.blob) {
                o.status = JC_STATUS_ERROR;
                o.error = jc__strdup_printf("%s: out of memory receiving its result",
                                            p->ex->tasks[h.task].fn->name);
            }
        } else {
            o.error = strndup(payload, h.len);
        }
        if (p->ex->deliver(p->ex->ctx, &o))
            p->stopping = true;
    }
    memmove(w->in.data, w->in.data + off, w->in.len - off);
    w->in.len -= off;
    return true;
}

static const char *signal_text(int sig, char *buf, size_t size)
{
    const char *abbrev = sigabbrev_np(sig);
    snprintf(buf, size, "SIG%s (%s)", abbrev ? abbrev : "?", strsignal(sig));
    return buf;
}

/* How a worker ended, as far as the parent saw it. */
typedef struct ending {
    int status;   /* from waitpid, -1 when unknown */
    bool silent;  /* its pipe closed while it ran on: it was killed for it */
    bool lost;    /* the call closed or replaced the pipe; the worker said so and exited */
} ending;

/* Whether a crash of worker i is evidence of running out of memory, and
 * which: an allocation refused just before it (errno ENOMEM, seen by the
 * crash handler), an address space at the memory limit, or (for SIGKILL)
 * the kernel's OOM killer having run meanwhile. Anything else is not
 * evidence: a NULL pointer under a memory limit is just a NULL pointer. */
static void memory_evidence(const pool *p, int i, int sig, char *why, size_t size)
{
    why[0] = '\0';
    int64_t vsize = atomic_load(&p->shm[i].crash_vsize);
    int64_t limit = atomic_load(&p->shm[i].as_limit);
    int64_t margin = p->ex->memory_limit / 8 > (1 << 20) ? p->ex->memory_limit / 8 : (1 << 20);
    if (sig != SIGKILL && limit > 0 && vsize > 0 && vsize + margin >= limit) {
        snprintf(why, size, " (its address space was %lld MiB, at its limit of %lld MiB that memory_limit "
                 "sets: out of memory?)", (long long)(vsize >> 20), (long long)(limit >> 20));
    } else if (sig == SIGKILL && p->w[i].oom_kills >= 0) {
        int64_t now = oom_kill_count();
        if (now > p->w[i].oom_kills)
            snprintf(why, size, " (the kernel's OOM killer killed %lld process%s meanwhile: out of memory?)",
                     (long long)(now - p->w[i].oom_kills), now - p->w[i].oom_kills == 1 ? "" : "es");
    }
}

/* Says how worker i ended, for the message of the task it was running:
 * only what was seen. */
static void death_message(const pool *p, int i, const ending *e, char *what, size_t size)
{
    char sigbuf[96], why[160];
    int status = e->status;
    int crash_errno = atomic_load(&p->shm[i].crash_errno);
    if (p->w[i].timed_out) {
        locale_t c = jc__c_locale(); /* "0.5 s" whatever setlocale() the program made */
        locale_t old = c ? uselocale(c) : (locale_t)0;
        snprintf(what, size, "timed out after %g s (the worker was killed)", p->ex->timeout);
        if (c)
            uselocale(old);
    } else if (e->silent) {
        snprintf(what, size, "the worker stopped talking: its connection to the coordinating process closed "
                 "while this call ran (did the call close descriptors it did not open?); it was killed");
    } else if (e->lost) {
        snprintf(what, size, "the call closed or replaced the worker's connection to the coordinating process "
                 "(a descriptor it did not open), so the worker could not report its result and ended");
    } else if (status == -1) {
        snprintf(what, size, "the worker died; its exit status is unavailable (another part of the program "
                 "reaped it)");
    } else if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        signal_text(sig, sigbuf, sizeof sigbuf);
        memory_evidence(p, i, sig, why, sizeof why);
        if (crash_errno == ENOMEM && sig != SIGKILL)
            snprintf(what, size, "out of memory: an allocation failed, then the worker was killed by %s", sigbuf);
        else
            snprintf(what, size, "the worker was killed by %s%s", sigbuf, why);
    } else if (WIFEXITED(status)) {
        snprintf(what, size, "the worker exited with status %d (the function called exit())", WEXITSTATUS(status));
    } else {
        snprintf(what, size, "the worker died");
    }
}

/* Remembers a killed worker that could not be reaped in time. */
static void add_stray(pool *p, pid_t pid)
{
    pid_t *s = realloc(p->strays, (p->nstrays + 1) * sizeof *s);
    if (!s)
        return; /* it stays a zombie of the program's: nothing worse */
    p->strays = s;
    p->strays[p->nstrays++] = pid;
}

/* A worker is gone, or must go: its pipe closed, it broke the protocol, it
 * overran the timeout (killed), or the liveness check found it ended. Its
 * process group is killed (whatever its calls started ends with it), it is
 * reaped, the task it was running fails, and the others are queued again.
 *
 * A worker whose pipe closed while it runs on (a call closed every
 * descriptor above 2, say) would never be heard from again: it is given
 * EOF_GRACE_SECONDS to be seen ending by itself (its descriptors close a
 * moment before it becomes a zombie), then treated as dead. No wait here is
 * unbounded. */
static void bury(pool *p, int i)
{
    worker *w = &p->w[i];
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    ending e = {.status = -1};
    if (!w->timed_out && !has_ended(w)) {
        double until = jc__monotonic() + EOF_GRACE_SECONDS, step = 0.0005;
        while (!has_ended(w) && jc__monotonic() < until && !jc__interrupted) {
            nap(p, step);
            if (step < 0.02)
                step *= 2;
        }
        e.silent = !has_ended(w);
    }
    kill_group(w);
    if (!reap(p, w->pid, &e.status, jc__monotonic() + REAP_SECONDS)) {
        add_stray(p, w->pid);
        e.status = -1;
    }
    w->pid = 0;
    uint64_t cur = atomic_load(&p->shm[i].current);
    uint64_t lost = atomic_load(&p->shm[i].lost);
    if (lost && !e.silent && !w->timed_out) {
        e.lost = true;
        cur = lost;
    }
    if (w->timed_out && cur != w->timed_out_task)
        cur = 0; /* it finished that task just before the kill: nobody to blame */

    bool blamed = false;
    for (int k = 0; k < w->nq; k++) {
        inflight *q = &w->q[k];
        for (uint32_t t = q->start + q->delivered; t < q->start + q->count; t++) {
            p->outstanding--;
            if (cur && t == cur - 1) {
                blamed = true;
                const jc__task *task = &p->ex->tasks[t];
                char *desc = jc__call_describe_fn(task->fn, task->argv, task->argc);
                char what[512];
                jc__outcome o = {.task = t, .status = w->timed_out ? JC_STATUS_TIMEOUT : JC_STATUS_CRASHED};
                death_message(p, i, &e, what, sizeof what);
                o.error = jc__strdup_printf("%s: %s", desc ? desc : task->fn->name, what);
                free(desc);
                if (p->ex->deliver(p->ex->ctx, &o))
                    p->stopping = true;
            } else {
                p->retry[p->nretry++] = t;
            }
        }
    }
    w->nq = 0;
    w->in.len = 0;
    if (!blamed)
        p->futile_deaths++;
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
            kill_group(w);
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
                kill_group(&p->w[i]);
            give_up = now + REAP_SECONDS;
        }
        if (give_up >= 0 && now >= give_up)
            return;
        nap(p, step);
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
    int64_t now = now_ns();
    for (int i = 0; i < p->n; i++) {
        worker *w = &p->w[i];
        uint64_t cur = atomic_load(&p->shm[i].current);
        if (!w->pid || !cur || w->timed_out)
            continue;
        double ran = (double)(now - atomic_load(&p->shm[i].started_ns)) * 1e-9;
        if (ran > p->ex->timeout) {
            w->timed_out = true;
            w->timed_out_task = cur;
            kill_group(w);
        }
    }
}

/* After an interrupt: deliver what the workers already finished. What they
 * sent is read at once; then each is asked to stop after its current call
 * and flush (worker_main), and given up to SALVAGE_SECONDS for it. A worker
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
        if (!w->pid || !has_ended(w))
            continue;
        if (w->fd >= 0)
            receive(p, w);
        if (w->pid)
            bury(p, i);
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
            bury(p, i);
    }
    check_timeouts(p);
    check_liveness(p);
    return 0;
}

static size_t running(const pool *p)
{
    size_t n = 0;
    for (int i = 0; i < p->n; i++)
        n += p->w[i].pid && p->w[i].nq;
    return n;
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
        for (int i = 0; i < p->n; i++)
            dispatch(p, i);
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
        double now = jc__monotonic();
        if (now - last_tick >= 0.1) {
            if (p->ex->tick)
                p->ex->tick(p->ex->ctx, running(p));
            last_tick = now;
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
    if (ex->ntasks > UINT32_MAX - 1)
        return jc__set_error(JC_EINVAL, "a run of %zu distinct calls is too large for the pool", ex->ntasks);
    pool p = {.ex = ex, .n = ex->nworkers > 0 ? ex->nworkers : 1};
    int rc = 0;
    p.w = calloc((size_t)p.n, sizeof *p.w);
    p.retry = malloc((ex->ntasks ? ex->ntasks : 1) * sizeof *p.retry);
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
     * (which would reap workers before bury() learns how they died). */
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
