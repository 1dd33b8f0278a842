/*
 * A shared library loaded once, when first needed (dl.h).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "util/dl.h"

bool jc__dl_sym(jc__dl *dl, void *h, const char *name, void *out, size_t size)
{
    void *p = dlsym(h, name);
    if (!p) {
        snprintf(dl->error, sizeof dl->error, "%s has no %s%s", dl->soname, name, dl->not_it ? dl->not_it : "");
        return false;
    }
    /* dlsym gives a data pointer; POSIX guarantees it converts to a
     * function pointer (the memcpy keeps ISO C's -Wpedantic quiet). */
    memcpy(out, &p, size < sizeof p ? size : sizeof p);
    return true;
}

int jc__dl_load(jc__dl *dl)
{
    if (atomic_load_explicit(&dl->loaded, memory_order_acquire))
        return 0;
    pthread_mutex_lock(&dl->lock);
    if (!dl->tried) {
        dl->tried = true;
        void *h = dlopen(dl->soname, dl->mode);
        if (!h) {
            const char *why = dlerror();
            snprintf(dl->error, sizeof dl->error, "%s", why ? why : "dlopen failed");
        } else if (!dl->fill(dl, h)) {
            memset(dl->table, 0, dl->table_size); /* nothing left pointing into it */
            dlclose(h);
        } else {
            atomic_store_explicit(&dl->loaded, true, memory_order_release);
        }
    }
    pthread_mutex_unlock(&dl->lock);
    return atomic_load_explicit(&dl->loaded, memory_order_acquire) ? 0 : -1;
}
