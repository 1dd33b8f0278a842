/*
 * The MPI backend's state in this process, and its start and end:
 * jc_mpi_init, finalizing, exit handlers.
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

/* ---- start and end ---- */

static void finish_coordinator(int status)
{
    if (!jc__mpi.coordinator || jc__mpi.finished)
        return;
    jc__mpi.finished = true;
    /* Sends of cancelled runs complete once their ranks take them (they
     * drain their queue in order); results of those runs are dropped. */
    double until = jc__monotonic() + DRAIN_SECONDS;
    while (jc__mpi.norphans && jc__monotonic() < until) {
        jc__mpi_test_orphans();
        jc__mpi_discard_stale_results();
        jc__mpi_sleep_for(POLL_MAX, NULL);
    }
    control_msg m = {.magic = MAGIC, .value = status};
    for (int r = 1; r < jc__mpi.size; r++)
        MPI_Send(&m, sizeof m, MPI_BYTE, r, TAG_FINISH, jc__mpi.comm);
    /* A worker rank may be in the middle of sending results of a cancelled
     * run: they are taken (and dropped) until every rank has acknowledged,
     * so that no rank is left in a send while MPI_Finalize waits for it. */
    int acked = 0;
    until = jc__monotonic() + DRAIN_SECONDS;
    while (acked < jc__mpi.size - 1 && jc__monotonic() < until) {
        jc__mpi_discard_stale_results();
        int flag = 0, len;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_FINISHED, jc__mpi.comm, &flag, &st);
        if (flag) {
            free(jc__mpi_receive_probed(&st, &len));
            acked++;
        } else {
            jc__mpi_sleep_for(POLL_MAX, NULL);
        }
    }
    for (size_t i = 0; i < jc__mpi.norphans; i++) {
        MPI_Request_free(&jc__mpi.orphans[i].req);
        /* Its buffer may still be read by MPI: left allocated. */
    }
    if (!jc__mpi.norphans)
        free(jc__mpi.orphans);
    jc__mpi.orphans = NULL;
    jc__mpi.norphans = jc__mpi.caporphans = 0;
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
    if (getpid() == jc__mpi.pid)
        finish_coordinator(0);
    return MPI_SUCCESS;
}

static void at_exit(int status, void *arg)
{
    (void)arg;
    /* A forked child of rank 0 (a fork pool worker, a call's own fork)
     * that calls exit() runs this too: only rank 0 itself may use MPI. */
    if (getpid() != jc__mpi.pid)
        return;
    finish_coordinator(status);
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (jc__mpi.ours && !finalized) {
        MPI_Comm_free(&jc__mpi.comm);
        MPI_Finalize();
    }
}

/* JOBCACHE_MPI_KEEP: how many bytes of large arguments a worker rank keeps.
 * 0, or a negative code with the message set (jc_mpi_init returns it). */
static int read_keep_setting(void)
{
    const char *keep = getenv("JOBCACHE_MPI_KEEP");
    if (!keep || !*keep)
        return 0;
    int64_t bytes = 0;
    if (jc_parse_size(keep, &bytes) || bytes < 0) {
        jc__mpi.why_not = "JOBCACHE_MPI_KEEP is not a size";
        return jc__set_error(JC_EINVAL, "jc_mpi_init: JOBCACHE_MPI_KEEP is '%s': it must be a "
                                        "size (256M, 1G; 0 keeps nothing)", keep);
    }
    jc__mpi_arg_cache_bytes = (size_t)bytes;
    return 0;
}

/* MPI_Init unless the program called it, and jobcache's own communicator,
 * rank, size and host name. */
static int start_mpi(int *argc, char ***argv)
{
    int rc = jc__mpi_load(); /* the MPI library, loaded now (mpi_dl.h) */
    if (rc) {
        jc__mpi.why_not = "the MPI library could not be loaded";
        return rc;
    }
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        if (MPI_Init(argc, argv) != MPI_SUCCESS) {
            jc__mpi.why_not = "MPI_Init failed";
            return jc__set_error(JC_EIO, "jc_mpi_init: MPI_Init failed");
        }
        jc__mpi.ours = true;
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &jc__mpi.comm);
    MPI_Comm_rank(jc__mpi.comm, &jc__mpi.rank);
    MPI_Comm_size(jc__mpi.comm, &jc__mpi.size);
    if (gethostname(jc__mpi.host, sizeof jc__mpi.host - 1) != 0)
        strcpy(jc__mpi.host, "?");
    return 0;
}

/* srun without an MPI plugin: the launcher started launched tasks, and
 * every one is a job of its own. Refused on every task, MPI ended. */
static int refuse_split_job(long launched)
{
    jc__set_error(JC_EINVAL, "jc_mpi_init: the launcher started %ld tasks but MPI sees %d rank%s: with Slurm, "
                  "run srun --mpi=pmix (or pmi2), as the MPI library was built for", launched, jc__mpi.size,
                  jc__mpi.size == 1 ? "" : "s");
    jc__mpi.why_not = "the launcher's tasks are not one MPI job";
    char *msg = jc__strdup(jc_errmsg());
    MPI_Comm_free(&jc__mpi.comm);
    if (jc__mpi.ours)
        MPI_Finalize();
    jc__mpi.size = 1;
    int rc = jc__set_error(JC_EINVAL, "%s", msg ? msg : "jc_mpi_init: the launcher's tasks are not one MPI job");
    free(msg);
    return rc;
}

/* The coordinator's mirror of each rank's kept arguments. */
static int allocate_mirrors(void)
{
    jc__mpi.mirrors = calloc((size_t)jc__mpi.size, sizeof *jc__mpi.mirrors);
    jc__mpi.clear_next = calloc((size_t)jc__mpi.size, sizeof *jc__mpi.clear_next);
    if (jc__mpi.mirrors && jc__mpi.clear_next)
        return 0;
    free(jc__mpi.mirrors);
    free(jc__mpi.clear_next);
    jc__mpi.mirrors = NULL;
    jc__mpi.clear_next = NULL;
    jc__mpi.why_not = "out of memory starting the MPI backend";
    return jc__set_error(JC_ENOMEM, "jc_mpi_init: out of memory");
}

/* OpenMPI's MPI_Init installs handlers of its own for the crash signals
 * (they print a backtrace). A worker rank puts the program's back: its
 * calls run in forked children, where a crash is a call's failure that
 * the fork pool reports, not a fault of the job to print. */
static const int crash_sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
enum { NCRASH = sizeof crash_sigs / sizeof crash_sigs[0] };

int jc_mpi_init(int *argc, char ***argv)
{
    if (jc__mpi.started)
        return jc__mpi.init_rc;
    jc__mpi.started = true;
    jc__mpi.pid = getpid();
    jc__mpi.size = 1;
    long launched = jc__mpi_launched_size();
    if (launched == 0 || launched == 1) {
        jc__mpi.why_not = launched ? "the job has one rank: nothing to send calls to"
                                   : "the program was not started by mpirun or srun";
        return 0;
    }
    struct sigaction before[NCRASH];
    for (int i = 0; i < NCRASH; i++)
        sigaction(crash_sigs[i], NULL, &before[i]);
    int rc = read_keep_setting();
    if (!rc)
        rc = start_mpi(argc, argv);
    if (!rc && launched > 1 && jc__mpi.size != launched)
        rc = refuse_split_job(launched);
    if (rc)
        return jc__mpi.init_rc = rc;
    if (jc__mpi.size == 1) {
        jc__mpi.why_not = "the job has one rank: nothing to send calls to";
        if (jc__mpi.ours)
            on_exit(at_exit, NULL);
        return 0;
    }
    if ((rc = allocate_mirrors()))
        return jc__mpi.init_rc = rc;
    if (jc__mpi.rank != 0) {
        if (jc__mpi.ours)
            for (int i = 0; i < NCRASH; i++)
                sigaction(crash_sigs[i], &before[i], NULL);
        jc__mpi_serve();
    }
    jc__mpi.coordinator = true;
    jc__mpi.why_not = NULL;
    int keyval;
    if (MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, at_finalize, &keyval, NULL) == MPI_SUCCESS)
        MPI_Comm_set_attr(MPI_COMM_SELF, keyval, NULL);
    on_exit(at_exit, NULL);
    return 0;
}
