/*
 * registry: the table of cacheable functions, by name and by address.
 *
 * JC_FUNCTION registers each function from a constructor, before main(), so
 * every process of the same program (a forked worker, or one started on
 * another machine) knows the same table, and a function is found by its name
 * alone. The table is small (one entry per cacheable function), so lookups
 * are a linear scan behind a mutex; a run looks each call's function up once,
 * at jc_delayed.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "jc_internal.h"

typedef struct entry {
    const jc_function *desc;
    bool ambiguous; /* another function has the same name */
} entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_ulong generation;

unsigned long jc__registry_generation(void)
{
    return atomic_load_explicit(&generation, memory_order_acquire);
}
static entry *table;
static size_t count, cap;

int jc_function_register(const jc_function *desc)
{
    if (!desc || !desc->fn)
        return jc__set_error(JC_EINVAL, "jc_function_register: NULL %s", desc ? "function" : "descriptor");
    if (!desc->name || !*desc->name)
        return jc__set_error(JC_EINVAL, "jc_function_register: a function has an empty name");
    if (!desc->version || !*desc->version)
        return jc__set_error(JC_EINVAL, "jc_function_register: function \"%s\" has an empty version",
                             desc->name);
    int rc = 0;
    pthread_mutex_lock(&lock);
    bool clash = false;
    for (size_t i = 0; i < count; i++) {
        const jc_function *d = table[i].desc;
        /* The same descriptor again, or an identical copy of one (same name,
         * version and function): the same function, so harmless. */
        if (d == desc || (d->fn == desc->fn && strcmp(d->name, desc->name) == 0 &&
                          strcmp(d->version, desc->version) == 0))
            goto out;
    }
    /* Grow first: a registration that fails must not leave other functions
     * marked ambiguous. */
    if (count == cap) {
        size_t ncap = cap ? cap * 2 : 32;
        entry *t = realloc(table, ncap * sizeof *t);
        if (!t) {
            rc = jc__set_error(JC_ENOMEM, "out of memory registering function \"%s\"", desc->name);
            goto out;
        }
        table = t;
        cap = ncap;
    }
    for (size_t i = 0; i < count; i++) {
        if (strcmp(table[i].desc->name, desc->name) == 0 ||
            (table[i].desc->fn == desc->fn)) {
            table[i].ambiguous = true;
            clash = true;
        }
    }
    atomic_fetch_add_explicit(&generation, 1, memory_order_release);
    table[count].desc = desc;
    table[count].ambiguous = clash;
    count++;
out:
    pthread_mutex_unlock(&lock);
    return rc;
}

/* Describes the clash around table[at] for an error message. Called with the
 * lock held. */
static int ambiguity_error(size_t at)
{
    const jc_function *d = table[at].desc;
    for (size_t i = 0; i < count; i++) {
        const jc_function *o = table[i].desc;
        if (i != at && (strcmp(o->name, d->name) == 0 || o->fn == d->fn))
            return jc__set_error(JC_ENOFUNC,
                                 "function \"%s\" (version \"%s\") clashes with function \"%s\" "
                                 "(version \"%s\"): two functions under one name, or one function "
                                 "under two names; give each its own name with JC_FUNCTION_NAMED",
                                 d->name, d->version, o->name, o->version);
    }
    return jc__set_error(JC_ENOFUNC, "function \"%s\" is registered twice", d->name);
}

const jc_function *jc_function_find(const char *name)
{
    if (!name) {
        jc__set_error(JC_EINVAL, "jc_function_find: NULL name");
        return NULL;
    }
    const jc_function *found = NULL;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < count; i++)
        if (strcmp(table[i].desc->name, name) == 0) {
            if (table[i].ambiguous)
                ambiguity_error(i);
            else
                found = table[i].desc;
            goto out;
        }
    jc__set_error(JC_ENOFUNC, "no function is registered under the name \"%s\"; declare it "
                  "with JC_FUNCTION(%s, \"version\")", name, name);
out:
    pthread_mutex_unlock(&lock);
    return found;
}

const jc_function *jc__function_by_ptr(jc_fn fn)
{
    const jc_function *found = NULL;
    if (!fn) {
        jc__set_error(JC_ENOFUNC, "the function is NULL");
        return NULL;
    }
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < count; i++)
        if (table[i].desc->fn == fn) {
            if (table[i].ambiguous)
                ambiguity_error(i);
            else
                found = table[i].desc;
            goto out;
        }
    jc__set_error(JC_ENOFUNC, "the function at %p is not registered; declare it at file scope "
                  "with JC_FUNCTION(name, \"version\")", (void *)(uintptr_t)fn);
out:
    pthread_mutex_unlock(&lock);
    return found;
}
