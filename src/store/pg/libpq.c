/*
 * Loading libpq when the first PostgreSQL location is opened (libpq.h
 * says why).
 */
#define JC_LIBPQ_TABLE_ITSELF /* the table's members by their own names */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "jc_internal.h"
#include "store/pg/libpq.h"

jc__libpq_api jc__libpq;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static atomic_bool loaded;
static char load_error[512]; /* why it could not be loaded: written once, under load_once */

static void load(void)
{
    /* RTLD_LOCAL: libpq's symbols serve this table only, and never stand
     * in for a program's own libpq (or its OpenSSL) of another version. */
    void *h = dlopen(JC_LIBPQ_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        snprintf(load_error, sizeof load_error, "%s", why ? why : "dlopen failed");
        return;
    }
    /* dlsym gives a data pointer; POSIX guarantees it converts to a
     * function pointer (the memcpy keeps ISO C's -Wpedantic quiet). */
#define JC__LIBPQ_RESOLVE(name)                                                                    \
    {                                                                                              \
        void *f = dlsym(h, #name);                                                                 \
        if (!f) {                                                                                  \
            snprintf(load_error, sizeof load_error, "%s has no %s: not libpq, or older than libpq 14",  \
                     JC_LIBPQ_SONAME, #name);                                                      \
            memset(&jc__libpq, 0, sizeof jc__libpq); /* nothing left pointing into it */       \
            dlclose(h);                                                                            \
            return;                                                                                \
        }                                                                                          \
        memcpy(&jc__libpq.name, &f, sizeof f);                                                     \
    }
    JC_LIBPQ_FUNCTIONS(JC__LIBPQ_RESOLVE)
#undef JC__LIBPQ_RESOLVE
    /* Kept loaded for the life of the process: connections and the
     * cancel handles of interrupted statements live in it. */
    atomic_store_explicit(&loaded, true, memory_order_release);
}

int jc__libpq_load(void)
{
    if (atomic_load_explicit(&loaded, memory_order_acquire))
        return 0;
    pthread_once(&load_once, load);
    if (atomic_load_explicit(&loaded, memory_order_acquire))
        return 0;
    return jc__set_error(JC_EIO,
                         "cannot open a PostgreSQL cache: the PostgreSQL store needs libpq, which "
                         "could not be loaded (%s); on Debian install the package libpq5",
                         load_error);
}
