/*
 * Loading the MPI library when jc_mpi_init starts the backend (mpi_dl.h
 * says why).
 */
#define JC_MPI_TABLE_ITSELF /* the table's members by their own names */
#include <dlfcn.h>

#include "jc_internal.h"
#include "exec/mpi_dl.h"
#include "util/dl.h"

#ifndef JC_MPI_SONAME
#error "JC_MPI_SONAME: the soname of the MPI library the build found (CMakeLists.txt)"
#endif

jc__mpi_api jc__mpi_dl;

static bool fill(jc__dl *dl, void *h)
{
    bool ok = true;
#define JC__MPI_RESOLVE(name) ok = ok && jc__dl_sym(dl, h, #name, &jc__mpi_dl.name, sizeof jc__mpi_dl.name);
    JC_MPI_FUNCTIONS(JC__MPI_RESOLVE)
#undef JC__MPI_RESOLVE
#ifdef OPEN_MPI
    /* The predefined handles are the addresses of libmpi's objects, or of
     * the program's copies of them (copy relocations) when it refers to
     * them itself: looked up in the whole program, as its own references
     * are (libmpi is loaded RTLD_GLOBAL). */
    ok = ok && jc__dl_sym(dl, RTLD_DEFAULT, "ompi_mpi_comm_world", &jc__mpi_dl.comm_world, sizeof(void *));
    ok = ok && jc__dl_sym(dl, RTLD_DEFAULT, "ompi_mpi_comm_self", &jc__mpi_dl.comm_self, sizeof(void *));
    ok = ok && jc__dl_sym(dl, RTLD_DEFAULT, "ompi_mpi_byte", &jc__mpi_dl.byte, sizeof(void *));
    ok = ok && jc__dl_sym(dl, RTLD_DEFAULT, "OMPI_C_MPI_COMM_NULL_COPY_FN", &jc__mpi_dl.null_copy_fn, sizeof(void *));
#endif
    return ok;
}

/* RTLD_GLOBAL: OpenMPI loads components of its own that look its symbols
 * up globally. Kept loaded to the end of the process. */
static jc__dl mpi = {.soname = JC_MPI_SONAME, .mode = RTLD_NOW | RTLD_GLOBAL, .fill = fill, .table = &jc__mpi_dl,
                     .table_size = sizeof jc__mpi_dl, .lock = PTHREAD_MUTEX_INITIALIZER};

int jc__mpi_load(void)
{
    if (jc__dl_load(&mpi) == 0)
        return 0;
    return jc__set_error(JC_EIO, "jc_mpi_init: the MPI backend needs the MPI library jobcache was built with, "
                                 "which could not be loaded (%s)", mpi.error);
}
