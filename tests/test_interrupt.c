/*
 * Tests of interrupting a run (SIGINT, SIGTERM) and of jobcache's handling of
 * the program's own signal dispositions (src/util/interrupt.c jc__interrupts_catch, the
 * interrupt paths of src/exec/fork.c, src/exec/inprocess.c and
 * src/exec/threads.c).
 *
 * An interrupted run happens in a child process that this test forks: the
 * child runs a batch of slow calls on a cache file, the test sends it the
 * signal once some results are committed, and the child reports over a pipe
 * what jc_run returned and whether it left a worker or a descriptor behind.
 * The test then checks the file and that a rerun computes only what is
 * missing. The child never uses cmocka: a failed assertion there would
 * continue the test run inside the child.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jobcache.h>

#include "testutil.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#define PATH_CAP 4096

enum { N_CALLS = 400 };

/* ---- helpers ---- */

static void sleep_seconds(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static bool no_children_left(void)
{
    errno = 0;
    return waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD;
}

static bool same_disposition(const struct sigaction *a, const struct sigaction *b)
{
    if (a->sa_handler != b->sa_handler)
        return false;
    if (a->sa_flags != b->sa_flags)
        return false;
    for (int s = 1; s < 32; s++)
        if (sigismember(&a->sa_mask, s) != sigismember(&b->sa_mask, s))
            return false;
    return true;
}

/* ---- cacheable functions ---- */

/* Seconds each call sleeps: the interrupted run is slow, the rerun fast. The
 * result does not depend on it. */
static double call_sleep = 0.01;

/* In the interrupted child: a mapping shared with its workers, where each
 * call of slow_ten marks itself finished just before it returns. A call
 * marked but not reported ok is a result computed and then lost. */
static volatile unsigned char *finished_marks;
static size_t finished_cap;

static int slow_ten(jc_call *call)
{
    int64_t i = jc_arg_int(call, 0);
    if (call_sleep > 0)
        sleep_seconds(call_sleep);
    int rc = jc_return_int(call, i * 3 + 1);
    if (finished_marks && i >= 0 && (size_t)i < finished_cap)
        finished_marks[i] = 1;
    return rc;
}
JC_FUNCTION(slow_ten, "v1");

/* Sleeps 30 s, going on sleeping when a signal interrupts it. */
static int long_call(jc_call *call)
{
    int64_t i = jc_arg_int(call, 0);
    struct timespec ts = {30, 0};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    return jc_return_int(call, i);
}
JC_FUNCTION(long_call, "v1");

/* 2 ms a call, so that a forked run goes on waiting for results after the
 * first one. */
static int quick(jc_call *call)
{
    int64_t i = jc_arg_int(call, 0);
    if (i == 3)
        raise(SIGINT); /* in-process: the program's own handler gets it */
    sleep_seconds(0.002);
    return jc_return_int(call, i + 1);
}
JC_FUNCTION(quick, "v1");

/* ---- the interrupted child ---- */

/* What the child saw, sent to the test over a pipe. */
typedef struct report {
    int ran;              /* jc_run returned results */
    int status;           /* jc_results_status */
    size_t ok, skipped, other, wrong_values, skipped_msg_bad;
    size_t summary_done, summary_skipped, summary_computed;
    int children_left;    /* a worker left unreaped after jc_run */
    int fds_before, fds_after;
    int handlers_restored; /* SIGINT and SIGTERM back to SIG_DFL */
    int leaks;             /* LeakSanitizer found leaks (ASan builds) */
    double run_seconds;    /* how long jc_run took */
    size_t finished;       /* calls that ran to their end, in any process */
    size_t lost;           /* of those, the ones not reported ok */
    size_t ok_unfinished;  /* reported ok but never finished: impossible */
    char message[256];
} report;

/* The first progress report of a run: tell the test the run has started. */
static void say_started(const jc_progress *p, void *userdata)
{
    (void)p;
    int *fd = userdata;
    if (*fd >= 0) {
        ssize_t w = write(*fd, "s", 1);
        (void)w;
        close(*fd);
        *fd = -1;
    }
}

/* In the child: n calls of fn (slow_ten or long_call) with options o. When
 * started_fd >= 0, a byte is written to it once the run has started. */
static _Noreturn void child_main(int wfd, int started_fd, const char *path, jc_options o, jc_fn fn, int n)
{
    report rep = {0};
    rep.fds_before = count_fds() - (started_fd >= 0);
    if (started_fd >= 0) {
        o.on_progress = say_started;
        o.userdata = &started_fd;
    }
    void *marks = mmap(NULL, (size_t)n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (marks != MAP_FAILED) {
        finished_marks = marks;
        finished_cap = (size_t)n;
    }
    jc_cache *c = jc_cache_open(path, NULL);
    jc_batch *b = c ? jc_batch_new(c, &o) : NULL;
    for (int64_t i = 0; b && i < n; i++)
        jc_delayed_name(b, fn == slow_ten ? "slow_ten" : "long_call", (jc_value *[]){jc_int(i)}, 1);
    double t0 = wall_now();
    jc_results *r = b ? jc_run(b) : NULL;
    rep.run_seconds = wall_now() - t0;
    rep.children_left = !no_children_left();
    struct sigaction si, st;
    sigaction(SIGINT, NULL, &si);
    sigaction(SIGTERM, NULL, &st);
    rep.handlers_restored = si.sa_handler == SIG_DFL && st.sa_handler == SIG_DFL;
    if (r) {
        rep.ran = 1;
        rep.status = jc_results_status(r);
        snprintf(rep.message, sizeof rep.message, "%s", jc_results_message(r));
        for (size_t k = 0; k < jc_results_count(r); k++) {
            jc_status s = jc_result_status(r, k);
            bool finished = finished_marks && k < finished_cap && finished_marks[k];
            rep.finished += finished;
            rep.lost += finished && s != JC_STATUS_OK;
            rep.ok_unfinished += fn == slow_ten && !finished && s == JC_STATUS_OK;
            if (s == JC_STATUS_OK) {
                rep.ok++;
                if (jc_result_int(r, k) != (int64_t)k * 3 + 1)
                    rep.wrong_values++;
            } else if (s == JC_STATUS_SKIPPED) {
                rep.skipped++;
                const char *m = jc_result_error(r, k);
                if (!m || !strstr(m, fn == slow_ten ? "slow_ten" : "long_call") || !strstr(m, "interrupted"))
                    rep.skipped_msg_bad++;
            } else {
                rep.other++;
            }
        }
        jc_progress p = jc_results_summary(r);
        rep.summary_done = p.done;
        rep.summary_skipped = p.skipped;
        rep.summary_computed = p.computed;
    } else {
        snprintf(rep.message, sizeof rep.message, "jc_run/jc_batch_new/jc_cache_open failed: %s", jc_errmsg());
    }
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    if (finished_marks) {
        munmap((void *)finished_marks, finished_cap);
        finished_marks = NULL;
    }
    rep.fds_after = count_fds();
#ifdef __SANITIZE_ADDRESS__
    rep.leaks = __lsan_do_recoverable_leak_check() != 0;
#endif
    ssize_t w = write(wfd, &rep, sizeof rep);
    _exit(w == (ssize_t)sizeof rep ? 0 : 1);
}

static size_t read_report(int fd, report *rep)
{
    size_t got = 0;
    while (got < sizeof *rep) {
        ssize_t k = read(fd, (char *)rep + got, sizeof *rep - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    return got;
}

/* Runs n calls of slow_ten, each sleeping sleep_s, in a child with options
 * o, sends it sig once some results are committed (to_group: to its whole
 * process group, workers included, as a Ctrl-C in a terminal does), and
 * checks what the child, the file and a rerun say. Returns the child's
 * report. */
static report interrupt_run_calls(int sig, bool to_group, jc_options o, const char *name, int n, double sleep_s)
{
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, name);
    /* The child's stderr goes to a file (not a terminal): an interrupted
     * run says so there, and how to go on (issue 23). */
    char errpath[PATH_CAP + 8];
    jc_test_side(errpath, sizeof errpath, path, ".stderr");
    call_sleep = sleep_s;
    int fds0 = count_fds();

    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        if (to_group)
            setpgid(0, 0);
        int efd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (efd >= 0) {
            dup2(efd, STDERR_FILENO);
            close(efd);
        }
        child_main(pfd[1], -1, path, o, slow_ten, n);
    }
    close(pfd[1]);
    if (to_group)
        setpgid(pid, pid); /* whichever of the two runs first */

    /* Wait until results are committed (the file is polled read-only). */
    double t0 = wall_now();
    int64_t committed = 0;
    while (wall_now() - t0 < 20) {
        if (jc_test_sql_int_rc(path, "SELECT count(*) FROM entries", &committed) == 0 && committed > 0)
            break;
        sleep_seconds(0.02);
    }
    if (committed <= 0)
        print_error("%s: no entry committed after %.1f s\n", name, wall_now() - t0);
    assert_true(committed > 0);
    assert_int_equal(kill(to_group ? -pid : pid, sig), 0);

    report rep;
    size_t got = read_report(pfd[0], &rep);
    close(pfd[0]);
    int wstatus = 0;
    assert_int_equal(waitpid(pid, &wstatus, 0), pid);
    double took = wall_now() - t0;
    if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0)
        print_error("%s: the child %s %d\n", name, WIFSIGNALED(wstatus) ? "was killed by signal" : "exited with",
                    WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : WEXITSTATUS(wstatus));
    assert_true(WIFEXITED(wstatus));
    assert_int_equal(WEXITSTATUS(wstatus), 0);
    assert_int_equal(got, sizeof rep);

    /* What the child's jc_run returned. */
    if (!rep.ran || rep.status != JC_EINTR)
        print_error("%s: jc_run gave %s: %s\n", name, rep.ran ? jc_err_name(rep.status) : "NULL", rep.message);
    assert_true(rep.ran);
    assert_int_equal(rep.status, JC_EINTR);
    assert_contains(rep.message, "interrupted");
    print_message("# %s: %zu ok, %zu skipped, %zu finished but lost, the child's run took %.2f s, %.2f s "
                  "in all\n", name, rep.ok, rep.skipped, rep.lost, rep.run_seconds, took);
    assert_int_equal(rep.other, 0);
    assert_int_equal(rep.wrong_values, 0);
    assert_int_equal(rep.ok + rep.skipped, (size_t)n);
    assert_true(rep.skipped > 0);
    assert_true(rep.ok > 0);
    assert_int_equal(rep.skipped_msg_bad, 0);
    assert_int_equal(rep.summary_done, (size_t)n);
    assert_int_equal(rep.summary_skipped, rep.skipped);
    assert_int_equal(rep.summary_computed, rep.ok);
    if (o.verbose != JC_VERBOSE_OFF) {
        char *err = jc_test_read_file(errpath, NULL);
        char want[96];
        assert_non_null(err);
        assert_contains(err, sig == SIGTERM ? "interrupted by SIGTERM" : "interrupted by SIGINT");
        snprintf(want, sizeof want, "a rerun computes the %zu call", rep.skipped);
        assert_contains(err, want);
        free(err);
    }
    assert_int_equal(rep.ok_unfinished, 0);
    if (rep.children_left)
        print_error("%s: a worker was left unreaped after jc_run\n", name);
    assert_false(rep.children_left);
    if (rep.fds_before != rep.fds_after)
        print_error("%s: descriptors in the child: %d before, %d after\n", name, rep.fds_before, rep.fds_after);
    assert_int_equal(rep.fds_after, rep.fds_before);
    assert_true(rep.handlers_restored);
    assert_false(rep.leaks);

    /* The file: intact, holding exactly the results reported ok. */
    if (!jc_test_pg()) { /* SQLite's own check of its file */
        char *check = jc_test_sql_text(path, "PRAGMA integrity_check");
        assert_non_null(check);
        assert_string_equal(check, "ok");
        free(check);
    }
    int64_t stored = jc_test_sql_int(path, "SELECT count(*) FROM entries");
    assert_true(stored > 0);
    assert_true(stored < (int64_t)n);
    assert_int_equal(stored, (int64_t)rep.ok);

    /* A rerun computes only what is missing. */
    call_sleep = 0;
    jc_cache *c = jc_cache_open(path, NULL);
    assert_non_null(c);
    jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = 2, .verbose = JC_VERBOSE_OFF});
    assert_non_null(b);
    for (int64_t i = 0; i < n; i++)
        jc_delayed(b, slow_ten, jc_int(i));
    jc_results *r = jc_run(b);
    assert_non_null(r);
    assert_int_equal(jc_results_status(r), JC_OK);
    jc_progress p = jc_results_summary(r);
    assert_int_equal(p.cached, (size_t)stored);
    assert_int_equal(p.computed, (size_t)n - (size_t)stored);
    for (size_t k = 0; k < (size_t)n; k++)
        assert_int_equal(jc_result_int(r, k), (int64_t)k * 3 + 1);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_int_equal(jc_test_sql_int(path, "SELECT count(*) FROM entries"), (size_t)n);

    assert_true(no_children_left());
    assert_int_equal(count_fds(), fds0);
    return rep;
}

static void interrupt_run(int sig, bool to_group, jc_options o, const char *name)
{
    (void)interrupt_run_calls(sig, to_group, o, name, N_CALLS, 0.01);
}

static void interrupt_sigint_stops_a_forked_run_keeping_finished_results(void **state)
{
    (void)state;
    interrupt_run(SIGINT, false, (jc_options){.n_jobs = 2}, "int-fork.jobcache");
}

static void interrupt_sigterm_stops_a_forked_run_keeping_finished_results(void **state)
{
    (void)state;
    interrupt_run(SIGTERM, false, (jc_options){.n_jobs = 2}, "term-fork.jobcache");
}

/* Calls of 1 ms: a worker holds a few buffered results at any moment, and
 * more may wait unread in its socket. An interrupt delivers those instead of
 * throwing them away; only a result finished in the last instant (a worker
 * that got no CPU time during the ~100 ms the pool waits) may be lost. */
static void interrupt_sigint_keeps_results_finished_in_workers(void **state)
{
    (void)state;
    size_t lost = 0, finished = 0;
    for (int k = 0; k < 3; k++) {
        char name[64];
        snprintf(name, sizeof name, "int-fork-fast-%d.jobcache", k);
        report rep = interrupt_run_calls(SIGINT, false, (jc_options){.n_jobs = 2}, name, 4000, 0.001);
        lost += rep.lost;
        finished += rep.finished;
    }
    print_message("# %zu of %zu finished calls lost in 3 interrupted runs\n", lost, finished);
    /* Typically none; without the salvage, 13 to 31 here. */
    assert_true(lost <= 6);
}

static void interrupt_sigint_stops_an_in_process_run_between_calls(void **state)
{
    (void)state;
    interrupt_run(SIGINT, false, (jc_options){.n_jobs = 1}, "int-inprocess.jobcache");
}

static void interrupt_sigterm_stops_an_in_process_run_between_calls(void **state)
{
    (void)state;
    interrupt_run(SIGTERM, false, (jc_options){.n_jobs = 1}, "term-inprocess.jobcache");
}

static void interrupt_sigint_stops_a_threads_run_keeping_finished_results(void **state)
{
    (void)state;
    interrupt_run(SIGINT, false, (jc_options){.n_jobs = 2, .backend = JC_BACKEND_THREADS}, "int-threads.jobcache");
}

/* A Ctrl-C in a terminal reaches every process of the group: the workers
 * ignore it and the caller stops the run. */
static void interrupt_sigint_to_the_process_group_stops_a_forked_run(void **state)
{
    (void)state;
    interrupt_run(SIGINT, true, (jc_options){.n_jobs = 2}, "int-group.jobcache");
}

/* SIGTERM to the group (kill -TERM -PGID, a batch scheduler cancelling a
 * job, a service manager stopping it) kills the workers too; their deaths
 * must not be reported as crashes of the calls they were running, nor hide
 * the interrupt. Whether the caller sees its own SIGTERM or a worker's death
 * first is a race, so the test tries several times. */
static void interrupt_sigterm_to_the_process_group_stops_a_forked_run(void **state)
{
    (void)state;
    for (int k = 0; k < 5; k++) {
        char name[64];
        snprintf(name, sizeof name, "term-group-%d.jobcache", k);
        interrupt_run(SIGTERM, true, (jc_options){.n_jobs = 2}, name);
    }
}

/* A run with a timeout uses workers even for n_jobs = 1: interrupting it. */
static void interrupt_sigint_stops_a_one_worker_run_with_a_timeout(void **state)
{
    (void)state;
    interrupt_run(SIGINT, false, (jc_options){.n_jobs = 1, .timeout_seconds = 5}, "int-one-worker.jobcache");
}

/* Forks a child running n calls of fn with options o on a fresh file name,
 * waits until its run has started and then delay seconds more, and sends it
 * sig. *wstatus gets the child's wait status and *rep its report; returns
 * the bytes of the report received. */
static size_t interrupt_started_child(int sig, double delay, jc_options o, jc_fn fn, int n, const char *name,
                                      report *rep, int *wstatus)
{
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, name);
    o.verbose = JC_VERBOSE_OFF;
    int pfd[2], sfd[2];
    assert_int_equal(pipe(pfd), 0);
    assert_int_equal(pipe(sfd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        close(sfd[0]);
        child_main(pfd[1], sfd[1], path, o, fn, n);
    }
    close(pfd[1]);
    close(sfd[1]);
    char byte;
    ssize_t k;
    while ((k = read(sfd[0], &byte, 1)) < 0 && errno == EINTR)
        ;
    close(sfd[0]);
    assert_int_equal(k, 1);
    sleep_seconds(delay);
    assert_int_equal(kill(pid, sig), 0);
    size_t got = read_report(pfd[0], rep);
    close(pfd[0]);
    assert_int_equal(waitpid(pid, wstatus, 0), pid);
    return got;
}

/* The fork backend stops its workers at once: a run whose calls take 30 s
 * returns soon after the signal, every call skipped. */
static void interrupt_sigint_stops_a_forked_run_without_waiting_for_running_calls(void **state)
{
    (void)state;
    int fds = count_fds();
    report rep;
    int wstatus = 0;
    size_t got = interrupt_started_child(SIGINT, 0.3, (jc_options){.n_jobs = 2}, long_call, 4,
                                         "int-fork-long.jobcache", &rep, &wstatus);
    assert_true(WIFEXITED(wstatus));
    assert_int_equal(WEXITSTATUS(wstatus), 0);
    assert_int_equal(got, sizeof rep);
    if (rep.status != JC_EINTR)
        print_error("jc_run gave %s: %s\n", jc_err_name(rep.status), rep.message);
    assert_int_equal(rep.status, JC_EINTR);
    assert_int_equal(rep.skipped, 4);
    assert_int_equal(rep.skipped_msg_bad, 0);
    if (rep.run_seconds >= 5)
        print_error("the interrupted run took %.1f s\n", rep.run_seconds);
    assert_true(rep.run_seconds < 5);
    assert_false(rep.children_left);
    assert_int_equal(rep.fds_after, rep.fds_before);
    assert_false(rep.leaks);
    assert_true(no_children_left());
    assert_int_equal(count_fds(), fds);
}

/* In-process, the first SIGINT lets the running call finish; a second one
 * while it still runs gets the default action: the program dies of it. */
static void interrupt_second_sigint_during_a_long_in_process_call_kills_the_program(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "int-twice.jobcache");
    int pfd[2], sfd[2];
    assert_int_equal(pipe(pfd), 0);
    assert_int_equal(pipe(sfd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        close(sfd[0]);
        child_main(pfd[1], sfd[1], path, (jc_options){.n_jobs = 1, .verbose = JC_VERBOSE_OFF}, long_call, 2);
    }
    close(pfd[1]);
    close(sfd[1]);
    char byte;
    ssize_t k;
    while ((k = read(sfd[0], &byte, 1)) < 0 && errno == EINTR)
        ;
    close(sfd[0]);
    assert_int_equal(k, 1);
    sleep_seconds(0.3);
    assert_int_equal(kill(pid, SIGINT), 0);
    sleep_seconds(0.3);
    int wstatus = 0;
    assert_int_equal(waitpid(pid, &wstatus, WNOHANG), 0); /* the first one let the call go on */
    double t0 = wall_now();
    assert_int_equal(kill(pid, SIGINT), 0);
    assert_int_equal(waitpid(pid, &wstatus, 0), pid);
    close(pfd[0]);
    assert_true(wall_now() - t0 < 5);
    if (!WIFSIGNALED(wstatus))
        print_error("the child exited with %d\n", WEXITSTATUS(wstatus));
    assert_true(WIFSIGNALED(wstatus));
    assert_int_equal(WTERMSIG(wstatus), SIGINT);
}

/* ---- the program's own dispositions ---- */

static volatile sig_atomic_t own_hits;

static void own_handler(int sig)
{
    (void)sig;
    own_hits++;
}

/* The fork backend delivers results in the caller's process: raise SIGINT
 * there, in the middle of the run, once. */
static void raise_once(const jc_results *res, size_t index, void *userdata)
{
    (void)res;
    (void)index;
    int *raised = userdata;
    if (!*raised) {
        *raised = 1;
        raise(SIGINT);
    }
}

/* Runs 20 quick calls; with fork, SIGINT is raised in the caller from the
 * first on_result, in-process quick(3) raises it itself. Returns the run's
 * status, or -1000 when a result is wrong or jc_run failed; asserts
 * nothing, so that a caller can restore signal settings first. */
static int run_quick_raising_sigint(int n_jobs)
{
    jc_cache *c = jc_cache_open(NULL, &(jc_cache_options){.flags = JC_CACHE_DISABLED});
    int raised = 0;
    jc_options o = {.n_jobs = n_jobs, .verbose = JC_VERBOSE_OFF};
    if (n_jobs > 1) {
        o.on_result = raise_once;
        o.userdata = &raised;
    }
    jc_batch *b = c ? jc_batch_new(c, &o) : NULL;
    for (int64_t i = 0; b && i < 20; i++)
        jc_delayed(b, quick, jc_int(i));
    jc_results *r = b ? jc_run(b) : NULL;
    int status = r ? jc_results_status(r) : -1000;
    if (r && status != JC_OK)
        print_error("n_jobs = %d: %s: %s\n", n_jobs, jc_err_name(status), jc_results_message(r));
    for (size_t k = 0; r && status == JC_OK && k < 20; k++)
        if (jc_result_int(r, k) != (int64_t)k + 1)
            status = -1000;
    if (n_jobs > 1 && !raised)
        status = -1000;
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    return status;
}

/* The program's own disposition handles the SIGINT and the run is not
 * interrupted. */
static void run_with_sigint_raised(int n_jobs)
{
    assert_int_equal(run_quick_raising_sigint(n_jobs), JC_OK);
}

static void interrupt_program_sigint_handler_is_kept_and_gets_the_signal(void **state)
{
    (void)state;
    int fds = count_fds();
    struct sigaction mine = {.sa_handler = own_handler, .sa_flags = SA_RESTART}, before, after, old;
    sigemptyset(&mine.sa_mask);
    sigaddset(&mine.sa_mask, SIGUSR1);
    assert_int_equal(sigaction(SIGINT, &mine, &old), 0);
    sigaction(SIGINT, NULL, &before);

    for (int n_jobs = 1; n_jobs <= 2; n_jobs++) {
        own_hits = 0;
        run_with_sigint_raised(n_jobs);
        sigaction(SIGINT, NULL, &after);
        if (!same_disposition(&before, &after))
            print_error("n_jobs = %d: the program's SIGINT handler was changed by jc_run\n", n_jobs);
        assert_true(same_disposition(&before, &after));
        if (own_hits != 1)
            print_error("n_jobs = %d: the program's handler ran %d times\n", n_jobs, (int)own_hits);
        assert_int_equal(own_hits, 1);
    }
    sigaction(SIGINT, &old, NULL);
    assert_true(no_children_left());
    assert_int_equal(count_fds(), fds);
}

static void interrupt_ignored_sigint_stays_ignored(void **state)
{
    (void)state;
    struct sigaction ign = {.sa_handler = SIG_IGN}, after, old;
    sigemptyset(&ign.sa_mask);
    assert_int_equal(sigaction(SIGINT, &ign, &old), 0);
    for (int n_jobs = 1; n_jobs <= 2; n_jobs++) {
        run_with_sigint_raised(n_jobs);
        sigaction(SIGINT, NULL, &after);
        assert_true(after.sa_handler == SIG_IGN);
    }
    sigaction(SIGINT, &old, NULL);
    assert_true(no_children_left());
}

/* A program that blocks SIGINT (to take it with sigwait or a signalfd) keeps
 * it blocked: jc_run must not unblock it and take the signal away. */
static void interrupt_blocked_sigint_stays_blocked_and_pending_for_the_program(void **state)
{
    (void)state;
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    assert_int_equal(sigprocmask(SIG_BLOCK, &block, &old), 0);
    int status[3] = {0}, still_blocked[3] = {0}, still_pending[3] = {0};
    for (int n_jobs = 1; n_jobs <= 2; n_jobs++) {
        status[n_jobs] = run_quick_raising_sigint(n_jobs);
        sigset_t now, pending;
        sigprocmask(SIG_BLOCK, NULL, &now);
        sigpending(&pending);
        still_blocked[n_jobs] = sigismember(&now, SIGINT);
        still_pending[n_jobs] = sigismember(&pending, SIGINT);
        /* The program takes its signal (if it is still there). */
        sigprocmask(SIG_BLOCK, &block, NULL);
        struct timespec zero = {0, 0};
        while (sigtimedwait(&block, NULL, &zero) == SIGINT)
            ;
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    for (int n_jobs = 1; n_jobs <= 2; n_jobs++) {
        if (!still_blocked[n_jobs])
            print_error("n_jobs = %d: SIGINT is no longer blocked after jc_run\n", n_jobs);
        if (!still_pending[n_jobs])
            print_error("n_jobs = %d: the blocked SIGINT was taken away from the program\n", n_jobs);
        assert_int_equal(status[n_jobs], JC_OK);
        assert_true(still_blocked[n_jobs]);
        assert_true(still_pending[n_jobs]);
    }
    assert_true(no_children_left());
}

/* With default dispositions, jc_run takes SIGINT/SIGTERM over only while it
 * runs, and puts the defaults back. */
static void interrupt_default_dispositions_are_restored_after_a_run(void **state)
{
    (void)state;
    struct sigaction dfl = {.sa_handler = SIG_DFL}, oi, ot, ai, at;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGINT, &dfl, &oi);
    sigaction(SIGTERM, &dfl, &ot);
    for (int n_jobs = 1; n_jobs <= 2; n_jobs++) {
        jc_cache *c = jc_cache_open(NULL, &(jc_cache_options){.flags = JC_CACHE_DISABLED});
        jc_batch *b = jc_batch_new(c, &(jc_options){.n_jobs = n_jobs, .verbose = JC_VERBOSE_OFF});
        for (int64_t i = 10; i < 20; i++)
            jc_delayed(b, quick, jc_int(i));
        jc_results *r = jc_run(b);
        assert_non_null(r);
        assert_int_equal(jc_results_status(r), JC_OK);
        jc_results_free(r);
        jc_batch_free(b);
        jc_cache_close(c);
        sigaction(SIGINT, NULL, &ai);
        sigaction(SIGTERM, NULL, &at);
        assert_true(ai.sa_handler == SIG_DFL);
        assert_true(at.sa_handler == SIG_DFL);
    }
    /* The signal mask is as it was: nothing left blocked. */
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    assert_false(sigismember(&now, SIGINT));
    assert_false(sigismember(&now, SIGTERM));
    sigaction(SIGINT, &oi, NULL);
    sigaction(SIGTERM, &ot, NULL);
    assert_true(no_children_left());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(interrupt_sigint_stops_a_forked_run_keeping_finished_results),
        cmocka_unit_test(interrupt_sigterm_stops_a_forked_run_keeping_finished_results),
        cmocka_unit_test(interrupt_sigint_keeps_results_finished_in_workers),
        cmocka_unit_test(interrupt_sigint_stops_an_in_process_run_between_calls),
        cmocka_unit_test(interrupt_sigterm_stops_an_in_process_run_between_calls),
        cmocka_unit_test(interrupt_sigint_stops_a_threads_run_keeping_finished_results),
        cmocka_unit_test(interrupt_sigint_stops_a_one_worker_run_with_a_timeout),
        cmocka_unit_test(interrupt_sigint_to_the_process_group_stops_a_forked_run),
        cmocka_unit_test(interrupt_sigterm_to_the_process_group_stops_a_forked_run),
        cmocka_unit_test(interrupt_sigint_stops_a_forked_run_without_waiting_for_running_calls),
        cmocka_unit_test(interrupt_second_sigint_during_a_long_in_process_call_kills_the_program),
        cmocka_unit_test(interrupt_program_sigint_handler_is_kept_and_gets_the_signal),
        cmocka_unit_test(interrupt_ignored_sigint_stays_ignored),
        cmocka_unit_test(interrupt_blocked_sigint_stays_blocked_and_pending_for_the_program),
        cmocka_unit_test(interrupt_default_dispositions_are_restored_after_a_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
