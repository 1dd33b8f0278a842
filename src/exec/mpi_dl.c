/*
 * Loading the MPI library when jc_mpi_init starts the backend (mpi_dl.h
 * says why).
 */
#define JC_MPI_TABLE_ITSELF /* the table's members by their own names */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "jc_internal.h"
#include "exec/mpi_dl.h"

#ifndef JC_MPI_SONAME
#error "JC_MPI_SONAME: the soname of the MPI library the build found (CMakeLists.txt)"
#endif

jc__mpi_api jc__mpi_dl;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static atomic_bool loaded;
static char load_error[512];

/* A symbol of h into *out (a function pointer or an object's address);
 * h RTLD_DEFAULT looks in the whole program, as its own references to MPI
 * do (a program that calls MPI itself may hold the copy of an object that
 * libmpi uses). */
static int resolve(void *h, const char *name, void *out, size_t size)
{
    void *p = dlsym(h, name);
    if (!p) {
        snprintf(load_error, sizeof load_error, "%s has no %s", JC_MPI_SONAME, name);
        return -1;
    }
    memcpy(out, &p, size); /* POSIX: a dlsym address converts to a function pointer */
    return 0;
}

static void load(void)
{
    void *h = dlopen(JC_MPI_SONAME, RTLD_NOW | RTLD_GLOBAL);
    if (!h) {
        const char *why = dlerror();
        snprintf(load_error, sizeof load_error, "%s", why ? why : "dlopen failed");
        return;
    }
    int rc = 0;
#define JC__MPI_RESOLVE(name)                                                                      \
    if (!rc)                                                                                       \
        rc = resolve(h, #name, &jc__mpi_dl.name, sizeof jc__mpi_dl.name);
    JC_MPI_FUNCTIONS(JC__MPI_RESOLVE)
#undef JC__MPI_RESOLVE
#ifdef OPEN_MPI
    /* The predefined handles are the addresses of libmpi's objects, or of
     * the program's copies of them (copy relocations) when it refers to
     * them itself: looked up as the program's own references are (libmpi
     * is loaded RTLD_GLOBAL). */
    if (!rc)
        rc = resolve(RTLD_DEFAULT, "ompi_mpi_comm_world", &jc__mpi_dl.comm_world, sizeof jc__mpi_dl.comm_world);
    if (!rc)
        rc = resolve(RTLD_DEFAULT, "ompi_mpi_comm_self", &jc__mpi_dl.comm_self, sizeof jc__mpi_dl.comm_self);
    if (!rc)
        rc = resolve(RTLD_DEFAULT, "ompi_mpi_byte", &jc__mpi_dl.byte, sizeof jc__mpi_dl.byte);
    if (!rc)
        rc = resolve(RTLD_DEFAULT, "OMPI_C_MPI_COMM_NULL_COPY_FN", &jc__mpi_dl.null_copy_fn,
                     sizeof jc__mpi_dl.null_copy_fn);
#endif
    if (rc) {
        memset(&jc__mpi_dl, 0, sizeof jc__mpi_dl); /* nothing left pointing into it */
        dlclose(h);
        return;
    }
    atomic_store_explicit(&loaded, true, memory_order_release); /* kept loaded to the end */
}

int jc__mpi_load(void)
{
    if (atomic_load_explicit(&loaded, memory_order_acquire))
        return 0;
    pthread_once(&load_once, load);
    if (atomic_load_explicit(&loaded, memory_order_acquire))
        return 0;
    return jc__set_error(JC_EIO, "jc_mpi_init: the MPI backend needs the MPI library jobcache was built with, "
                                 "which could not be loaded (%s)", load_error);
}
