/*
 * mpi_none: jobcache built without MPI (JOBCACHE_MPI=OFF, or no MPI found).
 * jc_mpi_init is a no-op for a program started on its own, and refuses a
 * job of several ranks, which would otherwise run the whole program once
 * per rank, each computing every call.
 */
#include <stdlib.h>
#include <string.h>

#include "exec/exec.h"

static const char *why_not = "this jobcache was built without MPI (JOBCACHE_MPI=OFF, or CMake found no MPI)";

static bool init_called;

size_t jc__mpi_sent_bytes(void)
{
    return 0;
}

bool jc__mpi_init_called(void)
{
    return init_called;
}

int jc_mpi_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    init_called = true;
    long n = jc__mpi_launched_size();
    const char *pmix_rank = getenv("PMIX_RANK");
    if (n == -1 && pmix_rank && strcmp(pmix_rank, "0") != 0)
        return jc__set_error(JC_EINVAL, "jc_mpi_init: the program was started as rank %s of a PMIx job, but %s: "
                             "every rank would run the whole program", pmix_rank, why_not);
    if (n > 1)
        return jc__set_error(JC_EINVAL, "jc_mpi_init: the program was started as %ld ranks, but %s: every rank "
                             "would run the whole program", n, why_not);
    return 0;
}

int jc_mpi_ranks(void)
{
    return 1;
}

int jc__mpi_workers(void)
{
    return 0;
}

const char *jc__mpi_unavailable(void)
{
    return why_not;
}

int jc__exec_mpi(jc__exec *ex)
{
    (void)ex;
    return jc__set_error(JC_EINVAL, "the MPI backend is not available: %s", why_not);
}
