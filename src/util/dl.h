/*
 * dl.h: a shared library loaded once per process when first needed, its
 * symbols resolved into a table of the caller's (store/pg/libpq.h and
 * exec/mpi_dl.h say why libpq and MPI are loaded, not linked).
 */
#ifndef JC_DL_H
#define JC_DL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct jc__dl jc__dl;
struct jc__dl {
    const char *soname;   /* what dlopen loads */
    int mode;             /* dlopen's flags */
    const char *not_it;   /* said after "SONAME has no SYMBOL" (": not libpq") */
    /* Fills the caller's table from h (the library) with jc__dl_sym; false
     * when a symbol is missing (the table is then emptied by jc__dl_load). */
    bool (*fill)(jc__dl *dl, void *h);
    void *table;          /* the caller's table, emptied on failure */
    size_t table_size;
    pthread_mutex_t lock; /* PTHREAD_MUTEX_INITIALIZER */
    atomic_bool loaded;
    bool tried;
    char error[512];      /* why it could not be loaded */
};

/* Loads dl's library once (thread-safe; later calls cost an atomic read)
 * and fills its table; kept loaded for the life of the process. 0, or -1
 * with dl->error saying why (dlopen's reason, or the symbol missing). */
int jc__dl_load(jc__dl *dl);

/* Resolves name in h (a dlopen handle, or RTLD_DEFAULT: the whole program)
 * into *out, a function pointer or an object's address of size bytes.
 * false, with dl->error set, when it is missing. */
bool jc__dl_sym(jc__dl *dl, void *h, const char *name, void *out, size_t size);

#endif
