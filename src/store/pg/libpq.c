/*
 * Loading libpq when the first PostgreSQL location is opened (libpq.h
 * says why).
 */
#define JC_LIBPQ_TABLE_ITSELF /* the table's members by their own names */
#include <dlfcn.h>

#include "jc_internal.h"
#include "store/pg/libpq.h"
#include "util/dl.h"

jc__libpq_api jc__libpq;

static bool fill(jc__dl *dl, void *h)
{
    bool ok = true;
#define JC__LIBPQ_RESOLVE(name) ok = ok && jc__dl_sym(dl, h, #name, &jc__libpq.name, sizeof jc__libpq.name);
    JC_LIBPQ_FUNCTIONS(JC__LIBPQ_RESOLVE)
#undef JC__LIBPQ_RESOLVE
    return ok;
}

/* RTLD_LOCAL: libpq's symbols serve this table only, and never stand in
 * for a program's own libpq (or its OpenSSL) of another version. Kept
 * loaded for the life of the process: connections and the cancel handles
 * of interrupted statements live in it. */
static jc__dl libpq = {.soname = JC_LIBPQ_SONAME, .mode = RTLD_NOW | RTLD_LOCAL,
                       .not_it = ": not libpq, or older than libpq 14", .fill = fill, .table = &jc__libpq,
                       .table_size = sizeof jc__libpq, .lock = PTHREAD_MUTEX_INITIALIZER};

int jc__libpq_load(void)
{
    if (jc__dl_load(&libpq) == 0)
        return 0;
    return jc__set_error(JC_EIO,
                         "cannot open a PostgreSQL cache: the PostgreSQL store needs libpq, which "
                         "could not be loaded (%s); on Debian install the package libpq5",
                         libpq.error);
}
