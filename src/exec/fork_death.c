/*
 * Workers ending: waiting for, killing and reaping them and their process
 * groups; how one ended (the signal, the memory limit or the OOM killer)
 * and the message naming it; burying it.
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
        int64_t now = jc__fk_oom_kill_count();
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
        jc__locale_saved loc = jc__c_numbers_begin(); /* "0.5 s" whatever setlocale() the program made */
        snprintf(what, size, "timed out after %g s (the worker was killed)", p->ex->timeout);
        jc__c_numbers_end(loc);
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
    if (JC__GROW(p->strays, p->capstrays, p->nstrays + 1))
        return; /* it stays a zombie of the program's: nothing worse */
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
void jc__fk_bury(pool *p, int i)
{
    worker *w = &p->w[i];
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    ending e = {.status = -1};
    if (!w->timed_out && !jc__fk_has_ended(w)) {
        double until = jc__monotonic() + EOF_GRACE_SECONDS, step = 0.0005;
        while (!jc__fk_has_ended(w) && jc__monotonic() < until && !jc__interrupted) {
            jc__fk_nap(p, step);
            if (step < 0.02)
                step *= 2;
        }
        e.silent = !jc__fk_has_ended(w);
    }
    jc__fk_kill_group(w);
    if (!jc__fk_reap(p, w->pid, &e.status, jc__monotonic() + REAP_SECONDS)) {
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

/* The kernel's count of OOM kills (/proc/vmstat oom_kill, Linux 4.13 and
 * later), or -1: a worker killed by SIGKILL while it rose was most likely
 * chosen by the OOM killer; otherwise nothing says so. */
int64_t jc__fk_oom_kill_count(void)
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
void jc__fk_kill_group(const worker *w)
{
    if (w->pid > 0) {
        kill(-w->pid, SIGKILL);
        kill(w->pid, SIGKILL); /* should a call have moved it to another group */
    }
}

/* Whether worker w has ended, without reaping it (so that its pid, and its
 * process group's id, stay its own until jc__fk_kill_group). */
bool jc__fk_has_ended(const worker *w)
{
    siginfo_t si;
    si.si_pid = 0;
    if (waitid(P_PID, (id_t)w->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
        return errno == ECHILD; /* reaped by someone else: gone all the same */
    return si.si_pid == w->pid;
}

/* Sleeps up to seconds with the run's interrupts deliverable, so that a
 * Ctrl-C cuts every wait of the coordinator short. */
void jc__fk_nap(const pool *p, double seconds)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    ppoll(NULL, 0, &ts, &p->run_mask);
}

/* Reaps pid, waiting until deadline (jc__monotonic()) at most; sets *status
 * (-1 when someone else reaped it). False when it is still not gone: it is
 * left to the kernel (it dies, it was sent SIGKILL) and reaped by teardown. */
bool jc__fk_reap(const pool *p, pid_t pid, int *status, double deadline)
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
        jc__fk_nap(p, step);
        if (step < 0.01)
            step *= 2;
    }
}

size_t jc__fk_running(const pool *p)
{
    size_t n = 0;
    for (int i = 0; i < p->n; i++)
        n += p->w[i].pid && p->w[i].nq;
    return n;
}
