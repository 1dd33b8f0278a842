/*
 * Options and batches: jc_batch_new, jc_delayed, the environment's switches
 * for a run.
 */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec/exec.h"
#include "run/progress.h"
#include "cache/cache.h"
#include "run_int.h"

/* ---- options and batches ---- */

static int cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        return CPU_COUNT(&set) > 0 ? CPU_COUNT(&set) : 1;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* joblib's rule: -1 is all CPUs, -2 all but one, ...; at least 1. */
int jc__r_resolve_n_jobs(int n_jobs)
{
    if (n_jobs > 0)
        return n_jobs;
    int n = cpu_count() + 1 + n_jobs;
    return n > 1 ? n : 1;
}

/* JOBCACHE_ON_CODE_CHANGE, when set, over the program's choice. */
int jc__r_code_change_from_env(const jc_cache *cache, jc_on_code_change *policy)
{
    const char *env = jc__env(cache, "JOBCACHE_ON_CODE_CHANGE");
    if (!env)
        return 0;
    static const char *const names[] = {"warn", "recompute", "ignore"};
    for (int i = 0; i < 3; i++)
        if (strcmp(env, names[i]) == 0) {
            *policy = (jc_on_code_change)i;
            return 0;
        }
    return jc__set_error(JC_EINVAL, "jc_batch_new: JOBCACHE_ON_CODE_CHANGE is '%s'; it must be warn, "
                         "recompute or ignore", env);
}

/* JOBCACHE_N_JOBS, JOBCACHE_VERBOSE, JOBCACHE_BACKEND and JOBCACHE_TIMEOUT over the
 * program's choice; a bad value names the variable and the value. */
static int options_from_env(const jc_cache *cache, jc_options *o)
{
    const char *v = jc__env(cache, "JOBCACHE_N_JOBS");
    char *end = NULL;
    if (v) {
        long n = strtol(v, &end, 10);
        if (*end || end == v || n == 0 || n < -4096 || n > 4096)
            return jc__set_error(JC_EINVAL, "jc_batch_new: JOBCACHE_N_JOBS is '%s'; it must be a whole number "
                                 "of workers (1: in this process; -1: every CPU; -2: all but one)", v);
        o->n_jobs = (int)n;
    }
    if ((v = jc__env(cache, "JOBCACHE_VERBOSE"))) {
        static const jc_verbose levels[] = {JC_VERBOSE_OFF, JC_VERBOSE_ON, JC_VERBOSE_DETAIL};
        if (strlen(v) != 1 || v[0] < '0' || v[0] > '2')
            return jc__set_error(JC_EINVAL, "jc_batch_new: JOBCACHE_VERBOSE is '%s'; it must be 0 (quiet), 1 "
                                 "(a summary line) or 2 (also a line per failure and per tenth of the run)", v);
        o->verbose = levels[v[0] - '0'];
    }
    if ((v = jc__env(cache, "JOBCACHE_BACKEND"))) {
        static const struct {
            const char *name;
            jc_backend backend;
        } names[] = {{"auto", JC_BACKEND_AUTO},          {"fork", JC_BACKEND_FORK},
                     {"threads", JC_BACKEND_THREADS},    {"in-process", JC_BACKEND_INPROCESS},
                     {"inprocess", JC_BACKEND_INPROCESS}, {"mpi", JC_BACKEND_MPI}};
        size_t i = 0;
        while (i < sizeof names / sizeof names[0] && strcmp(v, names[i].name) != 0)
            i++;
        if (i == sizeof names / sizeof names[0])
            return jc__set_error(JC_EINVAL, "jc_batch_new: JOBCACHE_BACKEND is '%s'; it must be auto, fork, "
                                 "threads, in-process or mpi", v);
        o->backend = names[i].backend;
    }
    if ((v = jc__env(cache, "JOBCACHE_TIMEOUT"))) {
        double t = jc__strtod_c(v, &end);
        if (*end || end == v || !(t >= 0) || t > 1e9)
            return jc__set_error(JC_EINVAL, "jc_batch_new: JOBCACHE_TIMEOUT is '%s'; it must be seconds "
                                 "per call, 0 for none", v);
        o->timeout_seconds = t;
    }
    if ((v = jc__env(cache, "JOBCACHE_EXPIRES_AFTER"))) {
        double age = 0;
        if (strcmp(v, "0") != 0 && jc_parse_age(v, &age))
            return jc__set_error(JC_EINVAL, "jc_batch_new: JOBCACHE_EXPIRES_AFTER is '%s'; it must be an age "
                                 "(90s, 12h, 30d, 2w), 0 for never", v);
        o->expires_after = age;
    }
    if ((v = jc__env(cache, "JOBCACHE_RETRIES"))) {
        long n = strtol(v, &end, 10);
        if (*end || end == v || n < 0 || n > 100)
            return jc__set_error(JC_EINVAL, "jc_batch_new: JOBCACHE_RETRIES is '%s'; it must be a whole number "
                                 "of retries from 0 to 100", v);
        o->retries = (int)n;
    }
    return 0;
}

/* A program started as several ranks (mpirun, srun) that never called
 * jc_mpi_init runs whole on every rank, each computing every call: almost
 * always the line forgotten at the top of main. Said once per process; a
 * program whose ranks each run a sweep of their own on purpose sets the
 * backend (jc_options.backend or JOBCACHE_BACKEND), which silences it. */
static void warn_forgotten_mpi_init(void)
{
    static atomic_flag warned = ATOMIC_FLAG_INIT;
    if (jc__mpi_init_called())
        return;
    long n = jc__mpi_launched_size();
    const char *pmix_rank = getenv("PMIX_RANK");
    if (!(n > 1 || (n == -1 && pmix_rank && strcmp(pmix_rank, "0") != 0)))
        return;
    if (atomic_flag_test_and_set(&warned))
        return;
    char size[32] = "several";
    if (n > 1)
        snprintf(size, sizeof size, "%ld", n);
    fprintf(stderr, "jobcache: this program was started as one of %s ranks (mpirun, srun) but did not call "
            "jc_mpi_init: every rank runs the whole program and computes every call itself. Call "
            "jc_mpi_init(&argc, &argv) at the top of main (docs/mpi.md), or set JOBCACHE_BACKEND if each rank "
            "runs a sweep of its own on purpose.\n", size);
    fflush(stderr);
}

/* ---- the batches alive, for references (jc_ref) ----
 *
 * A reference names its batch by serial, never by address: a batch freed
 * and another allocated at its address must not take its references. The
 * serials of live batches are kept here, so that jc_delayed can say whether
 * a reference of another serial is of another batch or of a freed one. */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t *live;
static size_t nlive, caplive;
static uint64_t last_serial;

static uint64_t batch_born(void)
{
    pthread_mutex_lock(&live_lock);
    uint64_t serial = ++last_serial;
    if (!JC__GROW(live, caplive, nlive + 1))
        live[nlive++] = serial; /* out of memory: only the message is less precise */
    pthread_mutex_unlock(&live_lock);
    return serial;
}

static void batch_died(uint64_t serial)
{
    pthread_mutex_lock(&live_lock);
    for (size_t i = 0; i < nlive; i++)
        if (live[i] == serial) {
            live[i] = live[--nlive];
            break;
        }
    if (!nlive) {
        free(live);
        live = NULL;
        caplive = 0;
    }
    pthread_mutex_unlock(&live_lock);
}

static bool batch_alive(uint64_t serial)
{
    pthread_mutex_lock(&live_lock);
    bool found = false;
    for (size_t i = 0; i < nlive && !found; i++)
        found = live[i] == serial;
    pthread_mutex_unlock(&live_lock);
    return found;
}

jc_batch *jc_batch_new(jc_cache *cache, const jc_options *opts)
{
    jc_options o = opts ? *opts : (jc_options){0};
    if (!cache) {
        jc__set_error_null("jc_batch_new", "cache");
        return NULL;
    }
    if (o.n_jobs == 0)
        o.n_jobs = 1; /* the default: a zero-initialised jc_options is the default */
    if ((unsigned)o.on_code_change > JC_ON_CODE_CHANGE_IGNORE) {
        jc__set_error(JC_EINVAL, "jc_batch_new: on_code_change has an unknown value (%d)", (int)o.on_code_change);
        return NULL;
    }
    if (jc__r_code_change_from_env(cache, &o.on_code_change) || options_from_env(cache, &o))
        return NULL;
    if (!(o.timeout_seconds >= 0)) {
        jc__set_error(JC_EINVAL, "jc_batch_new: timeout_seconds is %g; it must be >= 0 (0 = none)",
                      o.timeout_seconds);
        return NULL;
    }
    if (o.memory_limit < 0) {
        jc__set_error(JC_EINVAL, "jc_batch_new: memory_limit is negative (%lld)", (long long)o.memory_limit);
        return NULL;
    }
    if (!(o.expires_after >= 0) || o.retries < 0 || o.retries > 100) {
        jc__set_error(JC_EINVAL, "jc_batch_new: %s", !(o.expires_after >= 0)
                      ? "expires_after is negative or not a number (seconds; 0 = never)"
                      : "retries must be from 0 to 100");
        return NULL;
    }
    if ((unsigned)o.on_error > JC_ON_ERROR_CONTINUE || (unsigned)o.verbose > JC_VERBOSE_DETAIL ||
        (unsigned)o.backend > JC_BACKEND_MPI) {
        jc__set_error(JC_EINVAL, "jc_batch_new: on_error, verbose or backend has an unknown value");
        return NULL;
    }
    if (o.backend == JC_BACKEND_THREADS && (o.timeout_seconds > 0 || o.memory_limit > 0)) {
        jc__set_error(JC_EINVAL, "jc_batch_new: timeout_seconds and memory_limit need worker processes; "
                      "the threads backend cannot stop or limit one thread");
        return NULL;
    }
    if (o.backend == JC_BACKEND_INPROCESS && (o.timeout_seconds > 0 || o.memory_limit > 0)) {
        jc__set_error(JC_EINVAL, "jc_batch_new: timeout_seconds and memory_limit need worker processes; "
                      "they cannot apply to the in-process backend");
        return NULL;
    }
    if (o.backend == JC_BACKEND_AUTO)
        warn_forgotten_mpi_init();
    if (o.backend == JC_BACKEND_MPI && !jc__mpi_workers()) {
        jc__set_error(JC_EINVAL, "jc_batch_new: the MPI backend was asked for, but %s (start the program with "
                      "mpirun -np N or srun, and call jc_mpi_init at the top of main; docs/mpi.md)",
                      jc__mpi_unavailable());
        return NULL;
    }
    jc_batch *b = calloc(1, sizeof *b);
    if (!b) {
        jc__set_error(JC_ENOMEM, "out of memory making a batch");
        return NULL;
    }
    b->cache = cache;
    b->opts = o;
    b->serial = batch_born();
    return b;
}

void jc__r_free_args(jc_value *const *argv, size_t argc)
{
    for (size_t i = 0; i < argc; i++)
        jc_value_free(argv[i]);
}

/* A block of argument arrays (jc_batch.argv_blocks). */
struct argv_block {
    struct argv_block *next;
    size_t cap;
    jc_value *slot[]; /* cap of them */
};

/* Room for a call's argc argument pointers, from the batch's blocks; NULL
 * when out of memory. */
static jc_value **argv_take(jc_batch *b, size_t argc)
{
    size_t need = argc ? argc : 1;
    if (b->argv_left < need) {
        size_t cap = need > 1024 ? need : 1024;
        struct argv_block *blk = malloc(sizeof *blk + cap * sizeof *blk->slot);
        if (!blk)
            return NULL;
        blk->next = b->argv_blocks;
        blk->cap = cap;
        b->argv_blocks = blk;
        b->argv_left = cap;
    }
    jc_value **out = b->argv_blocks->slot + (b->argv_blocks->cap - b->argv_left);
    b->argv_left -= need;
    return out;
}

void jc_batch_free(jc_batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++) {
        jc__r_free_args(b->calls[i].argv, b->calls[i].argc);
        free(b->calls[i].inputs);
    }
    while (b->argv_blocks) {
        struct argv_block *next = b->argv_blocks->next;
        free(b->argv_blocks);
        b->argv_blocks = next;
    }
    batch_died(b->serial);
    for (size_t k = 0; k < b->nplan_stages; k++) /* the last jc_plan's (plan.c) */
        free((char *)b->plan_stages[k].function);
    free(b->plan_stages);
    free(b->calls);
    free(b->errmsg);
    free(b);
}

size_t jc_batch_count(const jc_batch *b)
{
    return b ? b->n : 0;
}

/* Prefixes the thread's error message with the call site, when known. The
 * site is formatted only on failure: jc_delayed is a hot path. */
int jc__r_at_site(int code, const char *file, int line)
{
    if (file)
        jc__set_error(code, "%s:%d: %s", file, line, jc_errmsg());
    return code;
}

int jc__r_call_key(const jc_function *fn, jc_value *const *argv, size_t argc, uint8_t key[JC__KEY_LEN])
{
    /* Arguments fn leaves out of its key (JC_LEAVE_OUT) enter it as a
     * placeholder. */
    bool stackmask[64], *left = argc <= 64 ? stackmask : malloc(argc * sizeof *left);
    int rc = left ? 0 : jc__set_error(JC_ENOMEM, "out of memory preparing a call of %s", fn->name);
    if (!rc) {
        bool any = jc__function_left_out(fn, argv, argc, left);
        rc = jc__key_compute_stable(fn->name, fn->version, jc__registry_generation() + 1, argv, argc,
                                    any ? left : NULL, key);
    }
    if (left != stackmask)
        free(left);
    return rc;
}

/* Checks a call and computes its key. On failure the arguments are freed
 * and the message names the call (the caller adds the site). */
int jc__r_prepare(const char *api, const jc_function *fn, jc_value *const *argv,
                   size_t argc, uint8_t key[JC__KEY_LEN])
{
    if (!fn) {
        int code = jc_errcode();
        char *why = jc__strdup(jc_errmsg());
        jc__r_free_args(argv, argc);
        jc__set_error(code, "%s: %s", api, why ? why : "unknown function");
        free(why);
        return code;
    }
    for (size_t i = 0; i < argc; i++)
        if (!argv[i]) {
            /* The builder that failed set a message; it is the thread's last
             * one unless something else failed since, so it is quoted as such. */
            char *why = jc__strdup(jc_errmsg());
            jc__r_free_args(argv, argc);
            jc__set_error(JC_EINVAL, "%s(%s, ...): argument %zu is NULL: a value builder failed "
                          "(the thread's last error: %s)", api, fn->name, i, why ? why : "?");
            free(why);
            return JC_EINVAL;
        }
    /* A call that takes other calls' results (key NULL) is keyed once they
     * are known (pipeline.c). */
    int rc = key ? jc__r_call_key(fn, argv, argc, key) : 0;
    if (!rc) /* the function sees what the key was made from */
        rc = jc__args_canonicalize(argv, argc);
    if (rc) {
        char *why = jc__strdup(jc_errmsg());
        jc__r_free_args(argv, argc);
        jc__set_error(rc, "%s(%s, ...): %s", api, fn->name, why ? why : "bad argument");
        free(why);
    }
    return rc;
}

/* The references in v (depth first) into p->inputs; a reference of
 * another batch, or of a freed one, is refused naming the argument. */
static int collect_inputs(const jc_batch *b, const jc_function *fn, const jc_value *v, size_t arg, pending *p,
                          size_t *cap)
{
    if (!v)
        return 0;
    switch ((jc_type)v->type) {
    case JC_TYPE_REF:
        if (v->u.ref.batch != b->serial)
            return jc__set_error(JC_EINVAL, "jc_delayed(%s, ...): argument %zu is a reference (jc_use) to a call "
                                 "of %s; a reference is an argument of a later call of its own batch", fn->name,
                                 arg, !v->u.ref.batch ? "no batch (one read back from the cache)"
                                      : batch_alive(v->u.ref.batch) ? "another batch"
                                                                    : "a batch already freed (jc_batch_free)");
        if (v->u.ref.index >= b->n) /* cannot happen: a handle is made after its call */
            return jc__set_error(JC_EINVAL, "jc_delayed(%s, ...): argument %zu refers to call %zu, which is not "
                                 "an earlier call of this batch", fn->name, arg, v->u.ref.index);
        if (p->ninputs == UINT32_MAX || JC__GROW(p->inputs, *cap, (size_t)p->ninputs + 1))
            return jc__set_error(JC_ENOMEM, "jc_delayed(%s, ...): out of memory", fn->name);
        p->inputs[p->ninputs++] = v->u.ref.index;
        return 0;
    case JC_TYPE_LIST:
    case JC_TYPE_MAP:
        for (size_t i = 0; i < v->len; i++) {
            int rc = collect_inputs(b, fn, v->u.items[i], arg, p, cap);
            if (rc)
                return rc;
        }
        return 0;
    case JC_TYPE_KWARG:
        return collect_inputs(b, fn, v->u.kw.val, arg, p, cap);
    default:
        return 0;
    }
}

static int find_inputs(const jc_batch *b, const jc_function *fn, jc_value *const *argv, size_t argc, pending *p)
{
    size_t cap = 0;
    for (size_t i = 0; i < argc; i++) {
        const jc_value *v = argv[i];
        if (!v || (v->type != JC_TYPE_REF && v->type != JC_TYPE_LIST && v->type != JC_TYPE_MAP &&
                   v->type != JC_TYPE_KWARG))
            continue; /* a scalar or an array holds no reference (a sweep's ints: no call) */
        int rc = collect_inputs(b, fn, v, i, p, &cap);
        if (rc) {
            free(p->inputs);
            p->inputs = NULL;
            p->ninputs = 0;
            return rc;
        }
    }
    return 0;
}

static int batch_add(jc_batch *b, const char *file, int line, const jc_function *fn, jc_value *const *argv,
                     size_t argc)
{
    if (b->error) { /* the batch is already refused: keep the first error */
        jc__r_free_args(argv, argc);
        return jc__set_error(b->error, "%s", b->errmsg ? b->errmsg : jc_strerror(b->error));
    }
    int rc = 0;
    if (b->ran) {
        jc__r_free_args(argv, argc);
        rc = jc__set_error(JC_EINVAL, "jc_delayed: this batch has already run; make a new one");
        goto fail;
    }
    pending p = {.fn = fn, .argc = argc};
    if (fn && (rc = find_inputs(b, fn, argv, argc, &p))) {
        jc__r_free_args(argv, argc);
        goto fail;
    }
    rc = jc__r_prepare("jc_delayed", fn, argv, argc, p.ninputs ? NULL : p.key);
    if (rc) {
        free(p.inputs);
        goto fail;
    }
    JC__GROW(b->calls, b->cap, b->n + 1); /* checked below: b->n == b->cap */
    p.argv = b->n == b->cap ? NULL : argv_take(b, argc);
    if (!p.argv) {
        free(p.inputs);
        jc__r_free_args(argv, argc);
        rc = jc__set_error(JC_ENOMEM, "jc_delayed(%s, ...): out of memory", fn->name);
        goto fail;
    }
    if (argc)
        memcpy(p.argv, argv, argc * sizeof *argv);
    b->calls[b->n++] = p;
    if (p.ninputs)
        b->with_inputs++;
    return 0;
fail:
    jc__r_at_site(rc, file, line);
    b->error = rc;
    b->errmsg = jc__strdup(jc_errmsg());
    return rc;
}

int jc__delayed(jc_batch *b, jc_fn fn, jc_value *const *argv, size_t argc, const char *file, int line)
{
    if (!b) {
        jc__r_free_args(argv, argc);
        return jc__r_at_site(jc__set_error_null("jc_delayed", "batch"), file, line);
    }
    if (!fn || fn != b->last_fn || b->last_gen != jc__registry_generation()) {
        b->last_desc = jc__function_by_ptr(fn);
        b->last_fn = b->last_desc ? fn : NULL;
        b->last_gen = jc__registry_generation();
    }
    return batch_add(b, file, line, b->last_fn ? b->last_desc : NULL, argv, argc);
}

int jc_delayed_name(jc_batch *b, const char *name, jc_value *const *argv, size_t argc)
{
    if (!b || !name || (!argv && argc)) {
        if (argv)
            jc__r_free_args(argv, argc);
        return jc__set_error(JC_EINVAL, "jc_delayed_name: NULL %s", !b ? "batch" : !name ? "name" : "argv");
    }
    return batch_add(b, NULL, 0, jc_function_find(name), argv, argc);
}

/* ---- references (pipelines) ---- */

jc_ref jc__delayed_ref(jc_batch *b, jc_fn fn, jc_value *const *argv, size_t argc, const char *file, int line)
{
    size_t at = b ? b->n : 0;
    if (jc__delayed(b, fn, argv, argc, file, line))
        return (jc_ref){0, 0};
    return (jc_ref){b->serial, at};
}

jc_ref jc_delayed_name_ref(jc_batch *b, const char *name, jc_value *const *argv, size_t argc)
{
    size_t at = b ? b->n : 0;
    if (jc_delayed_name(b, name, argv, argc))
        return (jc_ref){0, 0};
    return (jc_ref){b->serial, at};
}

bool jc_ref_ok(jc_ref ref)
{
    return ref.batch_ != 0;
}

size_t jc_ref_index(jc_ref ref)
{
    return ref.batch_ ? ref.index_ : SIZE_MAX;
}

jc_value *jc_use(jc_ref ref)
{
    if (!ref.batch_) {
        jc__set_error(JC_EINVAL, "jc_use: the handle holds no call: the jc_delayed_ref that made it failed "
                      "(jc_run reports why)");
        return NULL;
    }
    return jc__ref_value(ref.batch_, ref.index_, NULL);
}

int jc_intermediate(jc_batch *b, jc_ref ref)
{
    if (!b)
        return jc__set_error_null("jc_intermediate", "batch");
    if (ref.batch_ != b->serial || ref.index_ >= b->n)
        return jc__set_error(JC_EINVAL, "jc_intermediate: the handle %s", !ref.batch_ ? "holds no call"
                             : "is of a call of another batch");
    b->calls[ref.index_].intermediate = true;
    return 0;
}
