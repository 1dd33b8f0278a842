/*
 * mpi_launch: whether the program was started by an MPI launcher, from the
 * environment alone (so that a program started on its own never initialises
 * MPI). Shared by mpi.c and mpi_none.c.
 */
#include <stdlib.h>

#include "exec/exec.h"

long jc__mpi_launched_size(void)
{
    /* OpenMPI's mpirun; a PMI launcher (MPICH's hydra, srun --mpi=pmi2);
     * Slurm's srun, which sets the step's size whatever its MPI plugin. */
    static const char *const sizes[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        const char *v = getenv(sizes[i]);
        if (v && *v) {
            char *end;
            long n = strtol(v, &end, 10);
            if (!*end && n > 0)
                return n;
        }
    }
    /* PMIx (srun --mpi=pmix, prterun) gives the rank, not the size. */
    return getenv("PMIX_RANK") ? -1 : 0;
}
