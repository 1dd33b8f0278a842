/*
 * The worker side of the fork pool: set up after fork, run batches of
 * calls, send results back, die cleanly on a crash or a limit.
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

static bool read_all(int fd, void *p, size_t n);

/* A message of the parent, and the descriptor passed with it (or -1). */
static bool read_msg(int fd, range_msg *m, int *passed)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {.iov_base = m, .iov_len = sizeof *m};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    ssize_t k;
    while ((k = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    if (k <= 0)
        return false;
    *passed = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)))
            memcpy(passed, CMSG_DATA(c), sizeof(int));
    return (size_t)k == sizeof *m || read_all(fd, (char *)m + k, sizeof *m - (size_t)k);
}

/* Calls sent whole (fork_int.h): the memfd's bytes, mapped, and where the
 * next call starts. */
typedef struct whole_file {
    const char *map;
    size_t len, at;
} whole_file;

static bool map_whole(int fd, whole_file *f)
{
    struct stat sb;
    *f = (whole_file){0};
    if (fstat(fd, &sb) != 0 || sb.st_size <= 0)
        return false;
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED)
        return false;
    f->map = map;
    f->len = (size_t)sb.st_size;
    return true;
}

/* The next call of f: its descriptor and decoded arguments (the caller
 * frees argv and each argument); false when the bytes are not a call. */
static bool next_whole(whole_file *f, jc__task *t)
{
    uintptr_t fn;
    uint64_t len;
    if (f->len - f->at < sizeof fn + sizeof len)
        return false;
    memcpy(&fn, f->map + f->at, sizeof fn);
    memcpy(&len, f->map + f->at + sizeof fn, sizeof len);
    f->at += sizeof fn + sizeof len;
    if (len > f->len - f->at)
        return false;
    jc_value **argv = NULL;
    size_t argc = 0;
    int rc = jc__decode_args(f->map + f->at, (size_t)len, &argv, &argc);
    f->at += (size_t)len;
    *t = (jc__task){.fn = (const jc_function *)fn, .argv = argv, .argc = argc};
    return rc == 0;
}

static void free_whole_task(jc__task *t)
{
    for (size_t i = 0; i < t->argc; i++)
        jc_value_free(t->argv[i]);
    free((void *)t->argv);
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

void jc__fk_worker_setup(pool *p, int slot, int fd, const sigset_t *old_mask, pid_t parent)
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

static void worker_run_task(const jc__task *task, int fd, uint32_t t, jc__buf *out)
{
    atomic_store(&my_slot->started_ns, jc__monotonic_ns());
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

_Noreturn void jc__fk_worker_main(pool *p, int slot, int fd)
{
    jc__buf out = {0};
    range_msg m;
    int passed = -1;
    while (read_msg(fd, &m, &passed)) {
        double last_flush = jc__monotonic();
        if (m.whole) {
            /* Tasks added after this worker was forked, sent whole. */
            whole_file f;
            bool mapped = passed >= 0 && map_whole(passed, &f);
            if (passed >= 0)
                close(passed);
            passed = -1;
            for (uint32_t i = 0; i < m.count; i++) {
                if (atomic_load(&my_slot->stop))
                    break;
                jc__task t;
                if (!mapped || !next_whole(&f, &t)) {
                    atomic_store(&my_slot->current, (uint64_t)m.start + i + 1); /* blamed on that call */
                    _exit(4);
                }
                worker_run_task(&t, fd, m.start + i, &out);
                free_whole_task(&t);
                if (out.len >= FLUSH_BYTES || jc__monotonic() - last_flush >= FLUSH_SECONDS) {
                    worker_flush(fd, &out);
                    last_flush = jc__monotonic();
                }
            }
            if (mapped)
                munmap((void *)f.map, f.len);
            worker_flush(fd, &out);
            if (atomic_load(&my_slot->stop))
                break;
            continue;
        }
        if (passed >= 0) {
            close(passed);
            passed = -1;
        }
        for (uint32_t i = 0; i < m.count; i++) {
            if (atomic_load(&my_slot->stop))
                break;
            worker_run_task(&p->ex->tasks[m.start + i], fd, m.start + i, &out);
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
