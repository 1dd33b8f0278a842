/*
 * registry: the table of cacheable functions, by name and by address.
 *
 * JC_FUNCTION registers each function from a constructor, before main(), so
 * every process of the same program (a forked worker, or one started on
 * another machine) knows the same table, and a function is found by its name
 * alone. The table is small (one entry per cacheable function), so lookups
 * are a linear scan behind a mutex; a run looks each call's function up once,
 * at jc_delayed.
 *
 * Fork. A program thread may be inside jc_delayed, jc_memo or
 * jc_function_find (holding the mutex) at the instant another thread forks
 * a worker, or the program forks for itself; the child would inherit the
 * mutex locked, with no thread to unlock it, and a function that uses
 * jobcache in that child would wait forever. So the mutex is taken around
 * every fork (pthread_atfork: prepare locks, parent and child unlock), and
 * the table is whole in the child. No code holding the mutex forks or calls
 * out, so the prepare handler cannot deadlock.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "jc_internal.h"

typedef struct entry {
    const jc_function *desc;
    bool ambiguous; /* another function has the same name */
    const char *refused; /* why registration refused it (kept so that its use can say why), or NULL */
} entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_ulong generation;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void)
{
    pthread_mutex_lock(&lock);
}

static void fork_release(void)
{
    pthread_mutex_unlock(&lock);
}

static void install_atfork(void)
{
    /* Fails only when out of memory: the registry then works as before,
     * without the fork guarantee. */
    (void)pthread_atfork(fork_prepare, fork_release, fork_release);
}

/* Takes the registry's mutex; the first time, makes it fork-safe. */
static void registry_lock(void)
{
    pthread_once(&atfork_once, install_atfork);
    pthread_mutex_lock(&lock);
}

unsigned long jc__registry_generation(void)
{
    return atomic_load_explicit(&generation, memory_order_acquire);
}
static entry *table;
static size_t count, cap;

/* Room for one more entry; false when out of memory (nothing changed). */
static bool grow(void)
{
    return JC__GROW(table, cap, count + 1) == 0;
}

int jc_function_register(const jc_function *desc)
{
    if (!desc || !desc->fn)
        return jc__set_error(JC_EINVAL, "jc_function_register: NULL %s", desc ? "function" : "descriptor");
    const char *refused = !desc->name || !*desc->name         ? "its name is empty"
                          : !desc->version || !*desc->version ? "its version is empty"
                                                              : NULL;
    int rc = 0;
    registry_lock();
    if (refused) {
        /* Registration runs before main, where nobody sees an error: the
         * refusal is kept, and the call that uses the function reports it. */
        if (!desc->name || !*desc->name)
            rc = jc__set_error(JC_EINVAL, "jc_function_register: a function has an empty name");
        else
            rc = jc__set_error(JC_EINVAL, "jc_function_register: function \"%s\" has an empty version",
                               desc->name);
        if (grow()) {
            table[count].desc = desc;
            table[count].ambiguous = false;
            table[count].refused = refused;
            count++;
        }
        goto out;
    }
    bool clash = false;
    for (size_t i = 0; i < count; i++) {
        const jc_function *d = table[i].desc;
        if (table[i].refused)
            continue;
        /* The same descriptor again, or an identical copy of one (same name,
         * version and function): the same function, so harmless. */
        if (d == desc || (d->fn == desc->fn && strcmp(d->name, desc->name) == 0 &&
                          strcmp(d->version, desc->version) == 0))
            goto out;
    }
    /* Grow first: a registration that fails must not leave other functions
     * marked ambiguous. */
    if (!grow()) {
        rc = jc__set_error(JC_ENOMEM, "out of memory registering function \"%s\"", desc->name);
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        if (table[i].refused)
            continue;
        if (strcmp(table[i].desc->name, desc->name) == 0 ||
            (table[i].desc->fn == desc->fn)) {
            table[i].ambiguous = true;
            clash = true;
        }
    }
    atomic_fetch_add_explicit(&generation, 1, memory_order_release);
    table[count].desc = desc;
    table[count].ambiguous = clash;
    table[count].refused = NULL;
    count++;
out:
    pthread_mutex_unlock(&lock);
    return rc;
}

/* Describes the clash around table[at] for an error message. Called with the
 * lock held. */
/* Says why table[at] was refused. Called with the lock held. */
static int refused_error(size_t at)
{
    const jc_function *d = table[at].desc;
    return jc__set_error(JC_ENOFUNC, "function \"%s\" is not registered: %s; declare it with a name and a "
                         "version, e.g. JC_FUNCTION(fn, \"v1\")", d->name ? d->name : "", table[at].refused);
}

static int ambiguity_error(size_t at)
{
    const jc_function *d = table[at].desc;
    for (size_t i = 0; i < count; i++) {
        const jc_function *o = table[i].desc;
        if (table[i].refused)
            continue;
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
    registry_lock();
    for (size_t i = 0; i < count; i++)
        if (!table[i].refused && strcmp(table[i].desc->name, name) == 0) {
            if (table[i].ambiguous)
                ambiguity_error(i);
            else
                found = table[i].desc;
            goto out;
        }
    for (size_t i = 0; i < count; i++)
        if (table[i].refused && table[i].desc->name && strcmp(table[i].desc->name, name) == 0) {
            refused_error(i);
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
    registry_lock();
    for (size_t i = 0; i < count; i++)
        if (!table[i].refused && table[i].desc->fn == fn) {
            if (table[i].ambiguous)
                ambiguity_error(i);
            else
                found = table[i].desc;
            goto out;
        }
    for (size_t i = 0; i < count; i++)
        if (table[i].refused && table[i].desc->fn == fn) {
            refused_error(i);
            goto out;
        }
    jc__set_error(JC_ENOFUNC, "the function at %p is not registered; declare it at file scope "
                  "with JC_FUNCTION(name, \"version\")", (void *)(uintptr_t)fn);
out:
    pthread_mutex_unlock(&lock);
    return found;
}

/* ---- names by function: its parameters (JC_FUNCTION_PARAMS), the
 * arguments it leaves out of its key (JC_LEAVE_OUT) ----
 *
 * Kept apart from the table of functions, by descriptor: a descriptor is
 * named before main, and never unnamed. */
typedef struct named {
    const jc_function *desc;
    const char *const *names;
    size_t n;
} named;
typedef struct name_table {
    named *rows;
    size_t count, cap;
} name_table;
static name_table params_table, left_table;
/* Whether any function leaves arguments out: read without the mutex on the
 * hot path (jc_delayed, jc_memo, storing a result), so that a program that
 * uses no JC_LEAVE_OUT pays nothing for it. */
static atomic_bool any_left_out;

static bool is_identifier(const char *s)
{
    if (!s || !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return false;
    for (s++; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

/* names (n of them) as desc's row of t; what names them in a message. */
static int names_set(name_table *t, const jc_function *desc, const char *const *names, size_t n, const char *what)
{
    int rc = 0;
    registry_lock();
    size_t i = 0;
    while (i < t->count && t->rows[i].desc != desc)
        i++;
    if (i == t->count) {
        if (JC__GROW(t->rows, t->cap, t->count + 1)) {
            rc = jc__set_error(JC_ENOMEM, "out of memory recording %s of \"%s\"", what,
                               desc->name ? desc->name : "");
            goto out;
        }
        t->count++;
    }
    t->rows[i] = (named){desc, names, n};
    if (t == &left_table)
        atomic_store_explicit(&any_left_out, true, memory_order_release);
    atomic_fetch_add_explicit(&generation, 1, memory_order_release);
out:
    pthread_mutex_unlock(&lock);
    return rc;
}

static const char *const *names_get(name_table *t, const jc_function *desc, size_t *n)
{
    const char *const *found = NULL;
    *n = 0;
    if (!desc)
        return NULL;
    registry_lock();
    for (size_t i = 0; i < t->count; i++)
        if (t->rows[i].desc == desc) {
            found = t->rows[i].names;
            *n = t->rows[i].n;
            break;
        }
    pthread_mutex_unlock(&lock);
    return found;
}

/* Counts names into *n; JC_EINVAL, naming what kind of name it is, when
 * bad finds fault with one (and says what) or one is given twice. */
static int names_check(const jc_function *desc, const char *const *names, size_t *n,
                       const char *(*bad)(const char *name), const char *kind)
{
    for (*n = 0; names[*n]; ++*n) {
        const char *why = bad(names[*n]);
        if (why)
            return jc__set_error(JC_EINVAL, "function \"%s\": %s \"%s\" %s", desc->name ? desc->name : "",
                                 kind, names[*n], why);
        for (size_t k = 0; k < *n; k++)
            if (strcmp(names[k], names[*n]) == 0)
                return jc__set_error(JC_EINVAL, "function \"%s\": %s \"%s\" is given twice",
                                     desc->name ? desc->name : "", kind, names[*n]);
    }
    return 0;
}

static const char *bad_parameter(const char *name)
{
    return is_identifier(name) ? NULL : "is not an identifier";
}

static const char *bad_left_out(const char *name)
{
    if (!*name)
        return "is empty";
    jc_value *text = jc_str(name); /* checks UTF-8 */
    jc_value_free(text);
    return text ? NULL : "is not UTF-8";
}

int jc_function_register_params(const jc_function *desc, const char *const *names)
{
    if (!desc || !names)
        return jc__set_error(JC_EINVAL, "jc_function_register_params: NULL %s", desc ? "names" : "descriptor");
    size_t n;
    int rc = names_check(desc, names, &n, bad_parameter, "parameter name");
    return rc ? rc : names_set(&params_table, desc, names, n, "the parameter names");
}

const char *const *jc__function_params(const jc_function *desc, size_t *n)
{
    return names_get(&params_table, desc, n);
}

int jc_function_leave_out(const jc_function *desc, const char *const *names)
{
    if (!desc || !names)
        return jc__set_error(JC_EINVAL, "jc_function_leave_out: NULL %s", desc ? "names" : "descriptor");
    size_t n;
    int rc = names_check(desc, names, &n, bad_left_out, "argument left out");
    return rc ? rc : names_set(&left_table, desc, names, n, "the arguments left out");
}

const char *const *jc__function_left_out_names(const jc_function *desc, size_t *n)
{
    return names_get(&left_table, desc, n);
}

static bool listed(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; name && i < n; i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

bool jc__function_left_out(const jc_function *desc, jc_value *const *argv, size_t argc, bool *left)
{
    if (!atomic_load_explicit(&any_left_out, memory_order_acquire))
        return false; /* left[] is not read then */
    size_t nl = 0, np = 0;
    const char *const *names = jc__function_left_out_names(desc, &nl);
    const char *const *params = names ? jc__function_params(desc, &np) : NULL;
    bool any = false;
    size_t pos = 0;
    for (size_t i = 0; i < argc; i++) {
        const char *name = jc_value_type(argv[i]) == JC_TYPE_KWARG ? jc_value_key_at(argv[i], 0)
                           : pos < np                              ? params[pos]
                                                                   : NULL;
        pos += jc_value_type(argv[i]) != JC_TYPE_KWARG;
        left[i] = names && listed(names, nl, name);
        any |= left[i];
    }
    return any;
}
