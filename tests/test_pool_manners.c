/*
 * Tests of forked workers as well-mannered child processes (src/exec/fork.c,
 * src/function/registry.c), through the public interface:
 *
 * - a worker that stops talking (closes its pipe and runs on, or closes it
 *   and returns) is reported crashed, named, and reaped, without hanging the
 *   run; crash messages suggest memory only on evidence;
 * - what a call starts (fork + exec, system()) ends with it on a timeout, a
 *   crash, or an interrupted run, and does not inherit SIGINT/SIGTERM
 *   ignored;
 * - every line printed in workers arrives once and whole: two workers
 *   printing to a file, a logging thread of the program's, a FILE * log the
 *   program opened before the run;
 * - a program that ignores SIGCHLD gets no zombie of its own helpers;
 * - the registry's lock is fork-safe: a thread inside jc_function_find
 *   while workers fork does not hang a function that uses jobcache;
 * - workers get OMP_NUM_THREADS (and the BLAS knobs) = 1 unless the program
 *   set them.
 *
 * Every test ends with assert_clean(): no child of this process is left
 * unreaped (the tests start none that they do not reap) and no descriptor
 * leaked.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jobcache.h>

#include "testutil.h"

#define PATH_CAP 4096

/* ---- helpers ---- */

static void sleep_seconds(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void assert_clean(int fds_before)
{
    errno = 0;
    pid_t r = waitpid(-1, NULL, WNOHANG);
    if (r != -1 || errno != ECHILD)
        print_error("a child process is left behind: waitpid(-1, WNOHANG) = %d (%s)\n", (int)r,
                    strerror(errno));
    assert_int_equal(r, -1);
    int fds = count_fds();
    if (fds != fds_before)
        print_error("descriptors open: %d before, %d after\n", fds_before, fds);
    assert_int_equal(fds, fds_before);
}

static jc_cache *open_disabled(void)
{
    jc_cache *c = jc_cache_open(NULL, &(jc_cache_options){.flags = JC_CACHE_DISABLED});
    assert_non_null(c);
    return c;
}

static jc_batch *new_batch(jc_cache *c, jc_options o)
{
    o.verbose = JC_VERBOSE_OFF;
    jc_batch *b = jc_batch_new(c, &o);
    if (!b)
        print_error("jc_batch_new: %s\n", jc_errmsg());
    assert_non_null(b);
    return b;
}

/* cmocka's own handlers on SIGSEGV & co. would jump back into the test
 * runner from a crashing worker: the runs go with the defaults. */
static jc_results *run_pool(jc_batch *b)
{
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS};
    enum { NSIGS = sizeof sigs / sizeof sigs[0] };
    struct sigaction dfl = {.sa_handler = SIG_DFL}, old[NSIGS];
    sigemptyset(&dfl.sa_mask);
    for (int k = 0; k < NSIGS; k++)
        sigaction(sigs[k], &dfl, &old[k]);
    jc_results *r = jc_run(b);
    for (int k = 0; k < NSIGS; k++)
        sigaction(sigs[k], &old[k], NULL);
    if (!r)
        print_error("jc_run: %s\n", jc_errmsg());
    assert_non_null(r);
    return r;
}

static void expect_status(const jc_results *r, size_t k, jc_status want)
{
    jc_status got = jc_result_status(r, k);
    if (got != want)
        print_error("result %zu: expected %s, got %s (%s)\n", k, jc_status_name(want), jc_status_name(got),
                    jc_result_error(r, k) ? jc_result_error(r, k) : "no message");
    assert_int_equal(got, want);
}

static void expect_int(const jc_results *r, size_t k, int64_t want)
{
    expect_status(r, k, JC_STATUS_OK);
    int64_t got = 0;
    assert_int_equal(jc_value_get_int(jc_result_value(r, k), &got), 0);
    assert_int_equal(got, want);
}

/* Whether process pid is gone (no such process, or a zombie: it runs no
 * more). */
static bool process_gone(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return true;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *rp = strrchr(buf, ')');
    return !rp || rp[1] == '\0' || rp[2] == 'Z' || rp[2] == 'X';
}

/* Polls until pid is gone or seconds passed. */
static bool wait_gone(pid_t pid, double seconds)
{
    double until = wall_now() + seconds;
    while (!process_gone(pid)) {
        if (wall_now() > until)
            return false;
        sleep_seconds(0.01);
    }
    return true;
}

/* The ignored-signals mask of pid (/proc/pid/status SigIgn), or ~0. */
static uint64_t ignored_signals(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    uint64_t mask = ~(uint64_t)0;
    if (!f)
        return mask;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "SigIgn: %" SCNx64, &mask) == 1)
            break;
    fclose(f);
    return mask;
}

/* A page shared between the test and its workers (and theirs), set up by
 * each test that needs it. */
typedef struct shared_page {
    _Atomic int64_t pid;     /* a process a call started */
    _Atomic int64_t sigign;  /* its SigIgn mask, as the call saw it */
} shared_page;
static shared_page *shared;

static void shared_map(void)
{
    void *m = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    shared = m;
    atomic_store(&shared->pid, 0);
    atomic_store(&shared->sigign, -1);
}

/* Kills what a call started if the test failed to see it gone, and unmaps. */
static void shared_unmap(void)
{
    pid_t pid = (pid_t)atomic_load(&shared->pid);
    if (pid > 0 && !process_gone(pid))
        kill(pid, SIGKILL);
    munmap(shared, sizeof *shared);
    shared = NULL;
}

/* Reads all of path as a NUL-terminated string. */
static char *slurp(const char *path)
{
    size_t len = 0;
    char *t = jc_test_read_file(path, &len);
    assert_non_null(t);
    return t;
}

/* Sends stdout to a fresh file named name until stdout_restore(). */
static int stdout_to(char *path, const char *name)
{
    jc_test_path(path, PATH_CAP, name);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved >= 0 && fd >= 0);
    assert_true(dup2(fd, STDOUT_FILENO) >= 0);
    close(fd);
    return saved;
}

static void stdout_restore(int saved)
{
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
}

/* ---- cacheable functions ---- */

/* For i == 1: closes every descriptor above 2 (as code that starts a daemon
 * does), then sleeps 30 s (mode 0) or returns at once (mode 1). */
static int close_fds(jc_call *call)
{
    int64_t i = jc_arg_int(call, 0);
    int64_t mode = jc_arg_int(call, 1);
    if (i == 1) {
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        if (mode == 0)
            sleep_seconds(30);
    }
    return jc_return_int(call, i * 3);
}
JC_FUNCTION(close_fds, "v1");

/* For i == 1: writes through a NULL pointer. */
static int null_write(jc_call *call)
{
    int64_t i = jc_arg_int(call, 0);
    if (i == 1) {
        volatile int *volatile p = NULL;
        *p = 42;
    }
    return jc_return_int(call, i + 1);
}
JC_FUNCTION(null_write, "v1");

/* Starts `sleep 30` with fork + exec and publishes its pid and ignored
 * signals in the shared page; then, by mode: 0 waits for it (a timeout
 * ends the call), 1 crashes, 2 sleeps 30 s. Calls with i != 0 return. */
static int start_sleep(jc_call *call)
{
    int64_t i = jc_arg_int(call, 0);
    int64_t mode = jc_arg_int(call, 1);
    if (i != 0)
        return jc_return_int(call, i);
    pid_t pid = fork();
    if (pid == 0) {
        execlp("sleep", "sleep", "30", (char *)NULL);
        _exit(127);
    }
    if (pid < 0)
        return jc_fail(call, "fork: %s", strerror(errno));
    /* Once it runs sleep, its dispositions are those it keeps. */
    char path[64], comm[64] = "";
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    for (int k = 0; k < 2000 && strncmp(comm, "sleep", 5) != 0; k++) {
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(comm, sizeof comm, f))
                comm[0] = '\0';
            fclose(f);
        }
        if (strncmp(comm, "sleep", 5) != 0)
            sleep_seconds(0.005);
    }
    atomic_store(&shared->sigign, (int64_t)ignored_signals(pid));
    atomic_store(&shared->pid, pid);
    if (mode == 0)
        waitpid(pid, NULL, 0);
    else if (mode == 1)
        raise(SIGSEGV);
    else
        sleep_seconds(30);
    return jc_return_int(call, 0);
}
JC_FUNCTION(start_sleep, "v1");

/* Runs `sleep 30` through system(); the shell writes its pid to the file
 * named by the second argument, then becomes sleep. */
static int system_sleep(jc_call *call)
{
    int64_t i = jc_arg_int(call, 0);
    if (i != 0)
        return jc_return_int(call, i);
    char cmd[PATH_CAP + 64];
    snprintf(cmd, sizeof cmd, "echo $$ > '%s'; exec sleep 30", jc_arg_str(call, 1));
    int rc = system(cmd);
    return jc_return_int(call, rc);
}
JC_FUNCTION(system_sleep, "v1");

/* Prints LINES_PER_CALL numbered lines of about 100 bytes on stdout. */
enum { LINES_PER_CALL = 40, PRINT_CALLS = 100 };
static int print_lines(jc_call *call)
{
    int64_t i = jc_arg_int(call, 0);
    for (int k = 0; k < LINES_PER_CALL; k++) {
        printf("line %04lld %03d %s end\n", (long long)i, k,
               "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefgh");
        if (k % 10 == 0)
            sleep_seconds(0.0005); /* both workers print at the same time */
    }
    return jc_return_int(call, i);
}
JC_FUNCTION(print_lines, "v1");

static int quick(jc_call *call)
{
    return jc_return_int(call, jc_arg_int(call, 0) + 1);
}
JC_FUNCTION(quick, "v1");

/* The program's own log, opened before the run. */
static FILE *program_log;
static int log_line(jc_call *call)
{
    int64_t i = jc_arg_int(call, 0);
    fprintf(program_log, "log line %lld\n", (long long)i);
    return jc_return_int(call, i);
}
JC_FUNCTION(log_line, "v1");

/* Uses jobcache inside a worker: looks a function up by name. */
static int uses_registry(jc_call *call)
{
    int64_t i = jc_arg_int(call, 0);
    if (!jc_function_find("quick"))
        return jc_fail(call, "jc_function_find: %s", jc_errmsg());
    return jc_return_int(call, i);
}
JC_FUNCTION(uses_registry, "v1");

/* The value of the environment variable named by the argument, or null. */
static int env_of(jc_call *call)
{
    const char *v = getenv(jc_arg_str(call, 0));
    return v ? jc_return_str(call, v) : jc_return(call, jc_null());
}
JC_FUNCTION(env_of, "v1");

/* Waits (up to 20 s) until process pid, a child of the coordinating process,
 * has ended (it is a zombie, or gone). */
static int wait_helper_ended(jc_call *call)
{
    pid_t pid = (pid_t)jc_arg_int(call, 0);
    double until = wall_now() + 20;
    while (!process_gone(pid) && wall_now() < until)
        sleep_seconds(0.01);
    return jc_return_int(call, process_gone(pid));
}
JC_FUNCTION(wait_helper_ended, "v1");

/* ---- a worker that stops talking ---- */

/* A call that closes the worker's pipe and runs on: the run does not wait
 * for it (no timeout is set), the call is reported crashed and named, and
 * the worker is reaped. */
static void pool_manners_worker_that_closes_its_pipe_and_runs_on_is_reported_and_reaped(void **state)
{
    (void)state;
    int fds = count_fds();
    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2, .on_error = JC_ON_ERROR_CONTINUE});
    for (int64_t i = 0; i < 4; i++)
        jc_delayed(b, close_fds, jc_int(i), jc_int(0));
    double t0 = wall_now();
    jc_results *r = run_pool(b);
    double took = wall_now() - t0;
    if (took > 15)
        print_error("jc_run took %.1f s: it waited for the silent worker\n", took);
    assert_true(took < 15);
    expect_status(r, 1, JC_STATUS_CRASHED);
    assert_contains(jc_result_error(r, 1), "close_fds(1, 0)");
    assert_contains(jc_result_error(r, 1), "stopped talking");
    for (size_t k = 0; k < 4; k++)
        if (k != 1)
            expect_int(r, k, 3 * (int64_t)k);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
}

/* A call that closes the worker's pipe and returns: that call is blamed,
 * the others are computed, and the run ends. */
static void pool_manners_call_that_closes_the_workers_pipe_and_returns_is_reported_crashed(void **state)
{
    (void)state;
    int fds = count_fds();
    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2, .on_error = JC_ON_ERROR_CONTINUE});
    for (int64_t i = 0; i < 6; i++)
        jc_delayed(b, close_fds, jc_int(i), jc_int(1));
    jc_results *r = run_pool(b);
    expect_status(r, 1, JC_STATUS_CRASHED);
    assert_contains(jc_result_error(r, 1), "close_fds(1, 1)");
    assert_contains(jc_result_error(r, 1), "connection to the coordinating process");
    for (size_t k = 0; k < 6; k++)
        if (k != 1)
            expect_int(r, k, 3 * (int64_t)k);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
}

/* A plain NULL-pointer crash under a memory limit is a crash, not "out of
 * memory?": nothing suggests memory. */
static void pool_manners_null_pointer_crash_under_memory_limit_does_not_suggest_memory(void **state)
{
    (void)state;
#ifdef __SANITIZE_ADDRESS__
    skip(); /* RLIMIT_AS cannot work with AddressSanitizer's shadow memory */
#else
    int fds = count_fds();
    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2, .on_error = JC_ON_ERROR_CONTINUE,
                                            .memory_limit = (int64_t)1 << 30});
    for (int64_t i = 0; i < 4; i++)
        jc_delayed(b, null_write, jc_int(i));
    jc_results *r = run_pool(b);
    expect_status(r, 1, JC_STATUS_CRASHED);
    const char *msg = jc_result_error(r, 1);
    assert_contains(msg, "null_write(1)");
    assert_contains(msg, "SIGSEGV");
    if (strstr(msg, "memory"))
        print_error("the message suggests memory without evidence: %s\n", msg);
    assert_null(strstr(msg, "memory"));
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
#endif
}

/* ---- what a call starts ends with it ---- */

static void run_start_sleep(int64_t mode, jc_options o, jc_status want)
{
    int fds = count_fds();
    shared_map();
    jc_cache *c = open_disabled();
    o.on_error = JC_ON_ERROR_CONTINUE;
    jc_batch *b = new_batch(c, o);
    for (int64_t i = 0; i < 3; i++)
        jc_delayed(b, start_sleep, jc_int(i), jc_int(mode));
    jc_results *r = run_pool(b);
    expect_status(r, 0, want);
    assert_contains(jc_result_error(r, 0), "start_sleep(0, ");
    pid_t pid = (pid_t)atomic_load(&shared->pid);
    assert_true(pid > 0);
    bool gone = wait_gone(pid, 10);
    if (!gone)
        print_error("mode %lld: `sleep 30` (pid %d) started by the call still runs after jc_run\n",
                    (long long)mode, (int)pid);
    uint64_t ign = (uint64_t)atomic_load(&shared->sigign);
    shared_unmap();
    assert_true(gone);
    /* It inherited neither SIGINT nor SIGTERM ignored. */
    if (ign & ((1u << (SIGINT - 1)) | (1u << (SIGTERM - 1))))
        print_error("mode %lld: `sleep 30` started by the call ignores signals %#llx\n", (long long)mode,
                    (unsigned long long)ign);
    assert_int_equal(ign & (1u << (SIGINT - 1)), 0);
    assert_int_equal(ign & (1u << (SIGTERM - 1)), 0);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
}

static void pool_manners_timeout_kills_the_program_the_call_started(void **state)
{
    (void)state;
    run_start_sleep(0, (jc_options){.n_jobs = 2, .timeout_seconds = 2}, JC_STATUS_TIMEOUT);
}

static void pool_manners_crash_kills_the_program_the_call_started(void **state)
{
    (void)state;
    run_start_sleep(1, (jc_options){.n_jobs = 2}, JC_STATUS_CRASHED);
}

/* The same through system(): the shell and its sleep end with the call. */
static void pool_manners_timeout_kills_what_system_started(void **state)
{
    (void)state;
    int fds = count_fds();
    char pidfile[PATH_CAP];
    jc_test_path(pidfile, sizeof pidfile, "manners-system.pid");
    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2, .timeout_seconds = 2, .on_error = JC_ON_ERROR_CONTINUE});
    for (int64_t i = 0; i < 3; i++)
        jc_delayed(b, system_sleep, jc_int(i), jc_str(pidfile));
    jc_results *r = run_pool(b);
    expect_status(r, 0, JC_STATUS_TIMEOUT);
    char *text = slurp(pidfile);
    pid_t pid = (pid_t)atoi(text);
    free(text);
    assert_true(pid > 0);
    bool gone = wait_gone(pid, 10);
    if (!gone) {
        print_error("`sleep 30` (pid %d) started by system() still runs after jc_run\n", (int)pid);
        kill(pid, SIGKILL);
    }
    assert_true(gone);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
}

/* An interrupted run kills what its calls started. The interrupt comes from
 * the program itself (its progress callback, in the coordinating process),
 * once the call has started its sleep. */
static void interrupt_once_started(const jc_progress *progress, void *userdata)
{
    (void)progress;
    (void)userdata;
    static bool raised;
    if (!raised && atomic_load(&shared->pid)) {
        raised = true;
        raise(SIGINT);
    }
}

static void pool_manners_interrupted_run_kills_the_program_the_call_started(void **state)
{
    (void)state;
    int fds = count_fds();
    shared_map();
    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2, .on_progress = interrupt_once_started});
    jc_delayed(b, start_sleep, jc_int(0), jc_int(2));
    double t0 = wall_now();
    jc_results *r = run_pool(b);
    assert_int_equal(jc_results_status(r), JC_EINTR);
    assert_true(wall_now() - t0 < 20); /* the call sleeps 30 s: it was cut short */
    pid_t pid = (pid_t)atomic_load(&shared->pid);
    assert_true(pid > 0);
    bool gone = wait_gone(pid, 10);
    if (!gone)
        print_error("`sleep 30` (pid %d) started by the call still runs after an interrupted jc_run\n", (int)pid);
    uint64_t ign = (uint64_t)atomic_load(&shared->sigign);
    shared_unmap();
    assert_true(gone);
    assert_int_equal(ign & (1u << (SIGINT - 1)), 0);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
}

/* ---- every line once and whole ---- */

/* Counts the lines of text equal to want; *bad gets the lines that are
 * none of the expected ones. */
static int count_line(const char *text, const char *want)
{
    int n = 0;
    size_t len = strlen(want);
    for (const char *p = text; (p = strstr(p, want)) != NULL; p += len)
        if ((p == text || p[-1] == '\n') && p[len] == '\n')
            n++;
    return n;
}

/* Two workers printing to stdout redirected to a file: every line arrives
 * once and whole. */
static void pool_manners_lines_printed_by_two_workers_to_a_file_arrive_whole(void **state)
{
    (void)state;
    int fds = count_fds();
    char path[PATH_CAP];
    int saved = stdout_to(path, "manners-lines.out");
    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2});
    for (int64_t i = 0; i < PRINT_CALLS; i++)
        jc_delayed(b, print_lines, jc_int(i));
    jc_results *r = run_pool(b);
    stdout_restore(saved);
    assert_int_equal(jc_results_status(r), JC_OK);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);

    char *text = slurp(path);
    int wrong = 0, lines = 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    for (int i = 0; i < PRINT_CALLS; i++)
        for (int k = 0; k < LINES_PER_CALL; k++) {
            char want[160];
            snprintf(want, sizeof want, "line %04d %03d %s end", i, k,
                     "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefgh");
            if (count_line(text, want) != 1)
                wrong++;
        }
    free(text);
    if (wrong || lines != PRINT_CALLS * LINES_PER_CALL)
        print_error("%d of %d lines not found exactly once and whole; %d lines in the file\n", wrong,
                    PRINT_CALLS * LINES_PER_CALL, lines);
    assert_int_equal(wrong, 0);
    assert_int_equal(lines, PRINT_CALLS * LINES_PER_CALL);
    assert_clean(fds);
}

/* A logging thread of the program's writes numbered lines to stdout while
 * runs fork their workers: each of its lines comes out once. */
static atomic_int logger_stop;
static void *logger(void *arg)
{
    (void)arg;
    for (long n = 0; !atomic_load(&logger_stop); n++) {
        printf("logger %ld\n", n);
        if (n % 8 == 0)
            sleep_seconds(0.00005); /* a busy logger, not a flood */
    }
    return NULL;
}

static void pool_manners_lines_of_a_logging_thread_are_not_duplicated_by_workers(void **state)
{
    (void)state;
    int fds = count_fds();
    char path[PATH_CAP];
    int saved = stdout_to(path, "manners-logger.out");
    atomic_store(&logger_stop, 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, logger, NULL), 0);
    jc_cache *c = open_disabled();
    for (int run = 0; run < 20; run++) {
        jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2});
        for (int64_t i = 0; i < 4; i++)
            jc_delayed(b, quick, jc_int(i));
        jc_results *r = run_pool(b);
        assert_int_equal(jc_results_status(r), JC_OK);
        jc_results_free(r);
        jc_batch_free(b);
    }
    atomic_store(&logger_stop, 1);
    pthread_join(th, NULL);
    stdout_restore(saved);
    jc_cache_close(c);

    /* Each "logger N" line at most once, and the numbers without a gap up
     * to the last. */
    char *text = slurp(path);
    long expect = 0, dup = 0, bad = 0;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        if (!nl)
            break;
        long n;
        char tail;
        if (sscanf(line, "logger %ld%c", &n, &tail) == 2 && tail == '\n') {
            if (n < expect)
                dup++;
            else if (n > expect)
                bad++;
            expect = n + 1;
        } else {
            bad++;
        }
        line = nl + 1;
    }
    free(text);
    if (dup || bad)
        print_error("%ld lines of the logging thread duplicated, %ld lines out of place or cut (of %ld)\n", dup, bad,
                    expect);
    assert_int_equal(dup, 0);
    assert_int_equal(bad, 0);
    assert_true(expect > 0);
    assert_clean(fds);
}

/* What a function writes to a FILE * the program opened before the run
 * reaches the file with n_jobs = 2. */
static void pool_manners_lines_written_to_the_programs_own_file_are_kept(void **state)
{
    (void)state;
    char path[PATH_CAP];
    jc_test_path(path, sizeof path, "manners-own.log");
    program_log = fopen(path, "w");
    assert_non_null(program_log);
    int fds = count_fds();
    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2});
    for (int64_t i = 0; i < 50; i++)
        jc_delayed(b, log_line, jc_int(i));
    jc_results *r = run_pool(b);
    assert_int_equal(jc_results_status(r), JC_OK);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
    fclose(program_log);
    program_log = NULL;
    char *text = slurp(path);
    int missing = 0;
    for (int i = 0; i < 50; i++) {
        char want[64];
        snprintf(want, sizeof want, "log line %d", i);
        if (count_line(text, want) != 1)
            missing++;
    }
    free(text);
    if (missing)
        print_error("%d of 50 lines written by workers to the program's FILE * are missing or repeated\n",
                    missing);
    assert_int_equal(missing, 0);
}

/* ---- the program's SIGCHLD disposition ---- */

/* A program that ignores SIGCHLD has its helper, which ends during the run,
 * reaped as the kernel would have: no zombie of its own is left. */
static void pool_manners_program_ignoring_sigchld_gets_no_zombie_of_its_helper(void **state)
{
    (void)state;
    int fds = count_fds();
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigemptyset(&ign.sa_mask);
    assert_int_equal(sigaction(SIGCHLD, &ign, &old), 0);
    pid_t helper = fork();
    if (helper == 0) {
        sleep_seconds(0.2);
        _exit(0);
    }
    assert_true(helper > 0);
    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2});
    jc_delayed(b, wait_helper_ended, jc_int(helper));
    jc_delayed(b, quick, jc_int(1));
    jc_results *r = run_pool(b);
    expect_int(r, 0, 1);
    /* The kernel reaps what ends from now on: only a zombie made during the
     * run can be there. */
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)helper);
    bool zombie = access(path, F_OK) == 0;
    errno = 0;
    pid_t w = waitpid(helper, NULL, WNOHANG);
    sigaction(SIGCHLD, &old, NULL);
    if (zombie)
        print_error("the program's helper (pid %d) is left a zombie (waitpid: %d)\n", (int)helper, (int)w);
    assert_false(zombie);
    assert_int_equal(w, -1);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
}

/* ---- the registry's lock and fork ---- */

static atomic_int finder_stop;
static void *finder(void *arg)
{
    (void)arg;
    while (!atomic_load(&finder_stop))
        (void)jc_function_find("quick");
    return NULL;
}

/* Another thread inside jc_function_find while workers fork: a function
 * that looks a function up in the worker does not hang. */
static void pool_manners_registry_lookup_in_another_thread_does_not_hang_workers(void **state)
{
    (void)state;
    int fds = count_fds();
    atomic_store(&finder_stop, 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, finder, NULL), 0);
    jc_cache *c = open_disabled();
    int hung = 0;
    for (int run = 0; run < 10; run++) {
        jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2, .timeout_seconds = 10,
                                                .on_error = JC_ON_ERROR_CONTINUE});
        for (int64_t i = 0; i < 2; i++)
            jc_delayed(b, uses_registry, jc_int(i));
        jc_results *r = run_pool(b);
        for (size_t k = 0; k < 2; k++)
            if (jc_result_status(r, k) != JC_STATUS_OK) {
                print_error("run %d, call %zu: %s\n", run, k, jc_result_error(r, k));
                hung++;
            }
        jc_results_free(r);
        jc_batch_free(b);
        if (hung)
            break;
    }
    atomic_store(&finder_stop, 1);
    pthread_join(th, NULL);
    jc_cache_close(c);
    assert_int_equal(hung, 0);
    assert_clean(fds);
}

/* ---- thread pools of OpenMP and BLAS ---- */

static const char *result_text(const jc_results *r, size_t k)
{
    const char *s = NULL;
    size_t len = 0;
    if (jc_value_get_str(jc_result_value(r, k), &s, &len) != 0)
        return NULL;
    return s;
}

/* Workers get OMP_NUM_THREADS=1 and the BLAS knobs unless the program set
 * them; the program's own environment is unchanged. */
static void pool_manners_workers_run_one_openmp_thread_unless_the_program_says(void **state)
{
    (void)state;
    int fds = count_fds();
    unsetenv("OMP_NUM_THREADS");
    unsetenv("OPENBLAS_NUM_THREADS");
    setenv("MKL_NUM_THREADS", "4", 1);
    jc_cache *c = open_disabled();
    jc_batch *b = new_batch(c, (jc_options){.n_jobs = 2});
    jc_delayed(b, env_of, jc_str("OMP_NUM_THREADS"));
    jc_delayed(b, env_of, jc_str("OPENBLAS_NUM_THREADS"));
    jc_delayed(b, env_of, jc_str("MKL_NUM_THREADS"));
    jc_results *r = run_pool(b);
    expect_status(r, 0, JC_STATUS_OK);
    const char *omp = result_text(r, 0), *blas = result_text(r, 1), *mkl = result_text(r, 2);
    if (!omp || strcmp(omp, "1") != 0 || !blas || strcmp(blas, "1") != 0 || !mkl || strcmp(mkl, "4") != 0)
        print_error("in the workers: OMP_NUM_THREADS=%s OPENBLAS_NUM_THREADS=%s MKL_NUM_THREADS=%s\n",
                    omp ? omp : "(unset)", blas ? blas : "(unset)", mkl ? mkl : "(unset)");
    assert_non_null(omp);
    assert_string_equal(omp, "1");
    assert_non_null(blas);
    assert_string_equal(blas, "1");
    assert_non_null(mkl);
    assert_string_equal(mkl, "4");
    assert_null(getenv("OMP_NUM_THREADS"));
    unsetenv("MKL_NUM_THREADS");
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(c);
    assert_clean(fds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pool_manners_worker_that_closes_its_pipe_and_runs_on_is_reported_and_reaped),
        cmocka_unit_test(pool_manners_call_that_closes_the_workers_pipe_and_returns_is_reported_crashed),
        cmocka_unit_test(pool_manners_null_pointer_crash_under_memory_limit_does_not_suggest_memory),
        cmocka_unit_test(pool_manners_timeout_kills_the_program_the_call_started),
        cmocka_unit_test(pool_manners_crash_kills_the_program_the_call_started),
        cmocka_unit_test(pool_manners_timeout_kills_what_system_started),
        cmocka_unit_test(pool_manners_interrupted_run_kills_the_program_the_call_started),
        cmocka_unit_test(pool_manners_lines_printed_by_two_workers_to_a_file_arrive_whole),
        cmocka_unit_test(pool_manners_lines_of_a_logging_thread_are_not_duplicated_by_workers),
        cmocka_unit_test(pool_manners_lines_written_to_the_programs_own_file_are_kept),
        cmocka_unit_test(pool_manners_program_ignoring_sigchld_gets_no_zombie_of_its_helper),
        cmocka_unit_test(pool_manners_registry_lookup_in_another_thread_does_not_hang_workers),
        cmocka_unit_test(pool_manners_workers_run_one_openmp_thread_unless_the_program_says),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
