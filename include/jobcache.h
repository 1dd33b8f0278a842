/*
 * jobcache: a persistent memoizing job cache for C.
 *
 * A program describes a parameter sweep as a loop of delayed calls. Each call
 * is hashed (function name, function version, canonical arguments) with
 * XXH3-128 and looked up in an SQLite cache; only the misses are computed,
 * their results are stored back, and every result is handed over in the order
 * the calls were made.
 *
 *     static int simulate(jc_call *call)
 *     {
 *         double alpha = jc_arg_double(call, 0);
 *         int64_t seed = jc_arg_int(call, 1);
 *         return jc_return_double(call, run_model(alpha, seed));
 *     }
 *     JC_FUNCTION(simulate, "v1");
 *
 *     jc_cache *cache = jc_cache_open("sweep.jobcache", NULL);
 *     jc_batch *batch = jc_batch_new(cache, &(jc_options){ .n_jobs = -1 });
 *     for (int i = 0; i < 10; i++)
 *         jc_delayed(batch, simulate, jc_double(alpha[i]), jc_int(i));
 *     jc_results *res = jc_run(batch);
 *
 * Conventions used throughout this header:
 *
 *  - Every public name starts with jc_ or JC_. Names starting with jc__ or
 *    JC__ are internal details of macros; do not call them directly.
 *  - Handles are opaque. Every new or open function has a matching free or close, and
 *    every free/close function accepts NULL and does nothing.
 *  - Functions that can fail return a negative jc_error code (or NULL), and set
 *    a message for the calling thread that jc_errmsg() returns. The message
 *    says what went wrong and where (a file name, a call site, an argument).
 *  - Value builders (jc_int, jc_str, jc_list, ...) return a new value that the
 *    caller owns. Passing a value to jc_delayed, jc_memo, jc_list, jc_map,
 *    jc_kw or jc_return hands its ownership over: do not free it afterwards.
 *
 * ABI promise. Before 1.0, a minor release may change the ABI (0.2.0 grew
 * jc_progress, jc_options, jc_prune_options, jc_verify_result,
 * jc_merge_result and jc_function_stats, and changed the meaning of
 * jc_prune_options.max_size to bytes on disk; 0.3.0 grows jc_options
 * (expires_after, retries), jc_progress (expired, retried), jc_plan_info
 * (expired), jc_stats and jc_run_record; 0.4.0 grows jc_progress
 * (inputs_read), jc_plan_info (stages) and jc_run_record and adds JC_TYPE_REF
 * and jc_plan_stage), and
 * the SONAME names the minor version: libjobcache.so.0.4 for 0.4.x, so that
 * a program built against 0.3 never loads 0.4 by mistake; rebuild it. From 1.0 on, within
 * one major version, a minor release will only add functions, enum values at
 * the end of an enum, and fields at the end of structs the library
 * allocates and never hands out by value or in arrays, and the SONAME will
 * be libjobcache.so.MAJOR. Patch releases change no interface at all.
 */
#ifndef JOBCACHE_H
#define JOBCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(JC_STATIC_DEFINE)
#define JC_EXPORT
#elif defined(__GNUC__)
#define JC_EXPORT __attribute__((visibility("default")))
#else
#define JC_EXPORT
#endif

#if defined(__GNUC__)
#define JC__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define JC__PRINTF(f, a)
#endif

/* ------------------------------------------------------------------------ */
/* Version                                                                   */
/* ------------------------------------------------------------------------ */

#define JC_VERSION_MAJOR 0
#define JC_VERSION_MINOR 4
#define JC_VERSION_PATCH 0
#define JC_VERSION_STRING "0.4.0"
#define JC_VERSION_NUMBER (JC_VERSION_MAJOR * 10000 + JC_VERSION_MINOR * 100 + JC_VERSION_PATCH)

/* The version of the library actually linked, as "MAJOR.MINOR.PATCH". */
JC_EXPORT const char *jc_version(void);
/* The same as a number, MAJOR * 10000 + MINOR * 100 + PATCH. */
JC_EXPORT unsigned jc_version_number(void);

/* The key format that keys are computed with (see docs/format.md). */
#define JC_KEY_FORMAT_VERSION 1

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

/* X(name, value, message). Values are never renumbered. */
#define JC_ERRNO_MAP(X)                                                        \
    X(OK, 0, "success")                                                      \
    X(EINVAL, -1, "invalid argument")                                        \
    X(ENOMEM, -2, "out of memory")                                           \
    X(EIO, -3, "input/output error")                                         \
    X(ECORRUPT, -4, "cache file is corrupt or not a jobcache cache")         \
    X(ESCHEMA, -5, "cache file has a newer schema than this library")        \
    X(ENOFUNC, -6, "unknown or ambiguous function")                          \
    X(ETYPE, -7, "value has another type")                                   \
    X(ERANGE, -8, "index out of range or argument missing")                  \
    X(ENOTFOUND, -9, "no such entry")                                        \
    X(EREADONLY, -10, "cache is read-only")                                  \
    X(EAMBIGUOUS, -11, "key prefix matches several entries")                 \
    X(EFAILED, -12, "one or more calls failed")                              \
    X(EINTR, -13, "interrupted")                                             \
    X(EBUSY, -14, "cache is locked by another process")                      \
    X(EDECODE, -15, "stored value does not decode")                          \
    X(EFULL, -16, "disk or file system full")

typedef enum jc_error {
#define JC__ERR_ENUM(name, value, msg) JC_##name = value,
    JC_ERRNO_MAP(JC__ERR_ENUM)
#undef JC__ERR_ENUM
} jc_error;

/* A static description of an error code ("out of memory"). Never NULL. */
JC_EXPORT const char *jc_strerror(int code);
/* The code's name ("JC_ENOMEM"). Never NULL. */
JC_EXPORT const char *jc_err_name(int code);
/* The message of the last error in the calling thread, naming what and where.
 * Valid until the thread's next failing jobcache call. Never NULL. */
JC_EXPORT const char *jc_errmsg(void);
/* The code of the last error in the calling thread (JC_OK if none yet). */
JC_EXPORT int jc_errcode(void);

/* ------------------------------------------------------------------------ */
/* Values                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct jc_value jc_value;

typedef enum jc_type {
    JC_TYPE_NULL = 0,
    JC_TYPE_BOOL = 1,
    JC_TYPE_INT = 2,        /* int64_t */
    JC_TYPE_DOUBLE = 3,
    JC_TYPE_STR = 4,        /* UTF-8 text, may not contain NUL */
    JC_TYPE_BYTES = 5,
    JC_TYPE_DOUBLES = 6,    /* typed array of double */
    JC_TYPE_INTS = 7,       /* typed array of int64_t */
    JC_TYPE_LIST = 8,
    JC_TYPE_MAP = 9,        /* string keys, kept sorted */
    JC_TYPE_KWARG = 10,     /* a named argument made by jc_kw(); only valid as a call argument */
    /* A large argument as the cache stores it: a typed array or bytes of
     * 64 KiB or more is kept as its length and XXH3-128 digest (see
     * docs/format.md). Only found in decoded stored arguments (jobcache
     * show, jc_entry_load); jc_value_len gives its length in elements. */
    JC_TYPE_DIGEST = 11,
    /* A file or directory given by its path and keyed by its content
     * (jc_file): the function reads it as a string, its path
     * (jc_arg_str); the key and the stored arguments hold its content's
     * digest. Decoded stored arguments hold the digest alone (no path). */
    JC_TYPE_FILE = 12,
    /* An argument left out of the key (JC_LEAVE_OUT): only found in decoded
     * stored arguments, where it stands for the value the call had. */
    JC_TYPE_LEFT_OUT = 13,
    /* Another call's result as an argument (jc_use; docs/pipelines.md): in a
     * batch, it stands for the result of an earlier call of the same batch,
     * and the function receives that result in its place (jc_arg and every
     * accessor see the result itself). The key and the stored arguments
     * hold the XXH3-128 digest of the result, not its value. Decoded stored
     * arguments hold the digest alone (jc_value_format: "<result xxh3 ...>"). */
    JC_TYPE_REF = 14
} jc_type;

/* Builders. Each returns a new value owned by the caller, or NULL when out of
 * memory or given invalid input (jc_errmsg() says which). Passing NULL on to
 * jc_delayed, jc_list, ... is safe: the receiver reports the error. */
JC_EXPORT jc_value *jc_null(void);
JC_EXPORT jc_value *jc_bool(bool b);
JC_EXPORT jc_value *jc_int(int64_t i);
/* A key is made from the exact bits of each double (docs/format.md): two
 * computations of "the same" number that round differently are two calls.
 * 0.1 * 6 is 0.6000000000000001, where 0.1 added six times is 0.6: of the
 * parameters 0.1 * i for i = 0..9, 4 differ from the same made by a running
 * sum, and a sweep that changes from one way to the other recomputes 4 of
 * 10. Make parameters the same way every time (from integers: i / 10.0). */
JC_EXPORT jc_value *jc_double(double d);
/* Copies the NUL-terminated string s. NULL s is an error, and so is text
 * that is not valid UTF-8 (JC_EINVAL naming the byte offset of the first bad
 * byte): binary data goes in jc_bytes. */
JC_EXPORT jc_value *jc_str(const char *s);
/* Copies len bytes of text; the text may not contain NUL and must be UTF-8. */
JC_EXPORT jc_value *jc_strn(const char *s, size_t len);
/* The bytes are keyed as they are: jc_bytes(&params, sizeof params) of a
 * C struct keys its padding too, whatever it holds (stack garbage), so that
 * the same parameters miss every time (0 hits of 10). Pass the fields as
 * values (jc_map), or memset the struct to 0 before filling it. */
JC_EXPORT jc_value *jc_bytes(const void *p, size_t len);
/* Typed arrays, copied. */
JC_EXPORT jc_value *jc_doubles(const double *p, size_t n);
JC_EXPORT jc_value *jc_ints(const int64_t *p, size_t n);
/* Typed arrays, borrowed: the value points at the caller's memory instead of
 * copying it, which is what a large array argument wants. The memory must
 * stay allocated and unchanged until the value is freed (for an argument of
 * jc_delayed: until jc_run returns). Forked workers read it in place, so it
 * is never copied through a pipe. */
JC_EXPORT jc_value *jc_doubles_ref(const double *p, size_t n);
JC_EXPORT jc_value *jc_ints_ref(const int64_t *p, size_t n);
/* Typed arrays taking ownership: p (n elements, allocated with malloc,
 * calloc or realloc) becomes the value's and is freed by jc_value_free, so
 * that a function can return a large array it built without a copy
 * (jc_return(call, jc_doubles_take(a, n)); a copy would double its peak
 * memory). NULL p is JC_EINVAL; on any failure p is freed and NULL
 * returned. Do not use or free p afterwards. */
JC_EXPORT jc_value *jc_doubles_take(double *p, size_t n);
JC_EXPORT jc_value *jc_ints_take(int64_t *p, size_t n);
#define JC_HAVE_ARRAY_TAKE 1
/* A file or directory as an argument, keyed by its content (as make,
 * Snakemake and DVC key their inputs): the key holds the XXH3-128 digest
 * of the file's bytes, or of a directory's entries sorted by name (each
 * entry's name, type, executable bit and content digest; a symbolic link
 * as its target text, not followed; docs/format.md), and the function gets
 * the path (jc_arg_str). A file changed between runs is a miss; a file
 * touched but unchanged is a hit. An unchanged file is not read again in
 * this process: its size, modification time, inode and device are
 * remembered with its digest, as git's index does, and, by git's rule for
 * racy timestamps, a file modified within 2 seconds of when it was hashed
 * is hashed again. Copies path. NULL (JC_EIO, or JC_EINVAL for NULL or
 * invalid UTF-8, naming the path and the reason) when it cannot be read,
 * which fails the call at jc_delayed. The digest is taken when the value is
 * made: a file changed after jc_file and before the function reads it is
 * the function's to notice. */
JC_EXPORT jc_value *jc_file(const char *path);
/* A named argument for jc_delayed / jc_memo, or a map entry for jc_map.
 * Copies name (non-empty UTF-8); takes ownership of v, which may not itself
 * be a jc_kw. */
JC_EXPORT jc_value *jc_kw(const char *name, jc_value *v);

/* jc_list(a, b, c): a list of the given values (at least one), taking
 * ownership of each. These macros are C only; C++ uses the function forms. */
#define jc_list(...) jc_list_of((jc_value *[]){__VA_ARGS__}, JC__NARGS(__VA_ARGS__))
/* jc_map(jc_kw("a", x), jc_kw("b", y)): a map from the given entries (at
 * least one). A repeated key is an error. */
#define jc_map(...) jc_map_of((jc_value *[]){__VA_ARGS__}, JC__NARGS(__VA_ARGS__))
/* Function forms of the above, for lists built at run time: items[0..n) are
 * taken over (all of them, also on failure). A NULL item makes the result
 * NULL. */
JC_EXPORT jc_value *jc_list_of(jc_value *const *items, size_t n);
JC_EXPORT jc_value *jc_map_of(jc_value *const *entries, size_t n);
/* An empty list to grow with jc_list_append; an empty map for jc_map_set. */
JC_EXPORT jc_value *jc_list_new(void);
JC_EXPORT jc_value *jc_map_new(void);
/* Appends item (taken over) to list. Returns 0 or a negative jc_error.
 * Lists and maps nest at most 24 levels ([[1]] is 2): a builder that would
 * go deeper (jc_list, jc_map, jc_list_append, jc_map_set), also by adding to
 * a list or map that is already inside another, fails with JC_EINVAL and
 * frees the item. A value has one owner: an item already inside a list, map
 * or jc_kw, or one that would contain itself, is refused with JC_EINVAL and
 * left to its owner (not freed). */
JC_EXPORT int jc_list_append(jc_value *list, jc_value *item);
/* Adds key -> v (v taken over) to map, replacing an existing key. The key
 * must be UTF-8; the rules of jc_list_append apply to v. */
JC_EXPORT int jc_map_set(jc_value *map, const char *key, jc_value *v);

/* Frees v and everything it owns. NULL is a no-op. */
JC_EXPORT void jc_value_free(jc_value *v);
/* A deep copy (borrowed arrays become owned). In a function's arguments, a
 * reference to another call's result (jc_use) is copied as the value it
 * stands for, at any depth, so that a function may return (part of) its
 * arguments. NULL when out of memory. */
JC_EXPORT jc_value *jc_value_copy(const jc_value *v);
/* True when a and b encode to the same canonical bytes. */
JC_EXPORT bool jc_value_equal(const jc_value *a, const jc_value *b);

/* Inspecting values. All accessors accept NULL (treated as a missing value). */
JC_EXPORT jc_type jc_value_type(const jc_value *v);
/* "null", "bool", "int", ... */
JC_EXPORT const char *jc_type_name(jc_type t);
/* Typed getters: 0 on success, JC_ETYPE when v has another type (an int is
 * not silently read as a double, nor the reverse). */
JC_EXPORT int jc_value_get_bool(const jc_value *v, bool *out);
JC_EXPORT int jc_value_get_int(const jc_value *v, int64_t *out);
JC_EXPORT int jc_value_get_double(const jc_value *v, double *out);
/* *out stays owned by v; it is NUL-terminated. len may be NULL. */
JC_EXPORT int jc_value_get_str(const jc_value *v, const char **out, size_t *len);
JC_EXPORT int jc_value_get_bytes(const jc_value *v, const void **out, size_t *len);
JC_EXPORT int jc_value_get_doubles(const jc_value *v, const double **out, size_t *n);
JC_EXPORT int jc_value_get_ints(const jc_value *v, const int64_t **out, size_t *n);
/* The 16-byte XXH3-128 digest of the result a stored reference (JC_TYPE_REF
 * in decoded stored arguments) stands for, owned by v; JC_ETYPE for other
 * values, and for a reference of a batch not yet resolved. */
JC_EXPORT int jc_value_get_ref(const jc_value *v, const uint8_t **digest);
/* Number of items of a list, map, typed array, string or bytes; 0 otherwise. */
JC_EXPORT size_t jc_value_len(const jc_value *v);
/* Item i of a list or value i of a map (maps are in key order); NULL when out
 * of range or not a container. Owned by v. */
JC_EXPORT const jc_value *jc_value_at(const jc_value *v, size_t i);
/* Key i of a map, or the name of a jc_kw value (i ignored). Owned by v. */
JC_EXPORT const char *jc_value_key_at(const jc_value *v, size_t i);
/* The value under key in a map; NULL if absent. Owned by v. */
JC_EXPORT const jc_value *jc_value_get(const jc_value *v, const char *key);

/* Renders v as JSON-like text into a new NUL-terminated string that the
 * caller frees with free(). Arrays, lists and maps longer than max_items are
 * abbreviated with "..." (0 means never abbreviate). Doubles are written so
 * that they read back exactly; bytes as "<N bytes>"; NaN and infinities as
 * NaN, Infinity, -Infinity. NULL when out of memory. */
JC_EXPORT char *jc_value_format(const jc_value *v, size_t max_items);

/* Canonical encoding (docs/format.md). jc_value_encode writes a new buffer
 * that the caller frees with free(). jc_value_decode parses a buffer into a
 * new value (JC_EDECODE with a message on malformed or trailing input). */
JC_EXPORT int jc_value_encode(const jc_value *v, void **out, size_t *len);
JC_EXPORT int jc_value_decode(const void *buf, size_t len, jc_value **out);

/* ------------------------------------------------------------------------ */
/* Cacheable functions                                                       */
/* ------------------------------------------------------------------------ */

typedef struct jc_call jc_call;

/* A cacheable function: reads its arguments from call, sets a result with a
 * jc_return* function, and returns 0; or returns jc_fail(call, ...). It must
 * be a pure function of its arguments: that is what makes caching correct.
 * Returning 0 without setting a result is an error of the call (naming the
 * function), never a cached null: return jc_return(call, jc_null()) for that.
 * Returning non-zero without jc_fail is an error too. */
typedef int (*jc_fn)(jc_call *call);

typedef struct jc_function {
    const char *name;
    const char *version;
    jc_fn fn;
} jc_function;

/* JC_FUNCTION(fn, "v2") at file scope registers fn under its own name and the
 * given version before main() runs, so that every process of the program
 * (including workers not forked from the caller) knows the same table. Bump
 * the version whenever the function's code changes its results: entries of
 * the old version are then no longer hits. */
#define JC_FUNCTION(fn, ver) JC_FUNCTION_NAMED(fn, #fn, ver)
/* The same with an explicit name, e.g. "model/simulate". */
#define JC_FUNCTION_NAMED(fn, name, ver)                                        \
    static const jc_function jc__fn_desc_##fn = {name, ver, fn};             \
    __attribute__((constructor)) static void jc__fn_register_##fn(void)     \
    {                                                                        \
        jc_function_register(&jc__fn_desc_##fn);                             \
    }                                                                        \
    typedef int jc__fn_semicolon_##fn

/* JC_FUNCTION_PARAMS(fn, "v1", "beta", "seed") is JC_FUNCTION(fn, "v1") that
 * also names fn's positional parameters, in order: argument 0 is "beta",
 * argument 1 "seed". Names are identifiers ([A-Za-z_][A-Za-z0-9_]*). They are
 * recorded in the cache with the function and version, not in the key
 * (renaming a parameter changes no result), and used by jobcache ls, show,
 * export and error messages ("sir(beta=0.3, seed=7)"), and inside fn by
 * jc_arg_double_named(call, "beta") and the like. Functions declared without
 * names keep working: their arguments are shown as before, and exported as
 * arg0, arg1, ... */
#define JC_FUNCTION_PARAMS(fn, ver, ...) JC_FUNCTION_NAMED_PARAMS(fn, #fn, ver, __VA_ARGS__)
/* The same with an explicit name. */
#define JC_FUNCTION_NAMED_PARAMS(fn, name, ver, ...)                            \
    static const jc_function jc__fn_desc_##fn = {name, ver, fn};             \
    static const char *const jc__fn_params_##fn[] = {__VA_ARGS__, NULL};     \
    __attribute__((constructor)) static void jc__fn_register_##fn(void)     \
    {                                                                        \
        jc_function_register(&jc__fn_desc_##fn);                             \
        jc_function_register_params(&jc__fn_desc_##fn, jc__fn_params_##fn);  \
    }                                                                        \
    typedef int jc__fn_semicolon_##fn

/* Names the positional parameters of a registered function (what
 * JC_FUNCTION_PARAMS does): names is a NULL-terminated array that must stay
 * valid for the life of the process. JC_EINVAL for a name that is not an
 * identifier, or a name given twice (the function then has no names). */
JC_EXPORT int jc_function_register_params(const jc_function *desc, const char *const *names);

/* JC_LEAVE_OUT(fn, "log_path", "verbose"), at file scope after fn's
 * JC_FUNCTION, leaves those arguments out of fn's key, as joblib's
 * Memory.cache(ignore=...) and Parsl's ignore_for_cache do: a log path
 * that changes every run, a verbosity flag, a thread count. A name is a
 * named argument's (jc_kw), or a positional parameter's
 * (JC_FUNCTION_PARAMS). fn still gets every argument as given; the key, and
 * the arguments the cache keeps, hold a placeholder for it instead of its
 * value (jobcache show prints it as <left out>), so that two calls that
 * differ only there are one call: computed once per run (the first one's
 * value reaches fn) and hits of each other across runs. Adding or removing
 * a name changes fn's keys as a version bump would. A call of fn that has
 * none of these arguments keeps the key it had without JC_LEAVE_OUT. */
#define JC_LEAVE_OUT(fn, ...)                                                   \
    static const char *const jc__fn_left_out_##fn[] = {__VA_ARGS__, NULL};  \
    __attribute__((constructor)) static void jc__fn_leave_out_##fn(void)    \
    {                                                                        \
        jc_function_leave_out(&jc__fn_desc_##fn, jc__fn_left_out_##fn);      \
    }                                                                        \
    typedef int jc__fn_left_out_semicolon_##fn
/* What JC_LEAVE_OUT does: names is a NULL-terminated array that must stay
 * valid for the life of the process. JC_EINVAL for an empty or non-UTF-8
 * name, or a name given twice. */
JC_EXPORT int jc_function_leave_out(const jc_function *desc, const char *const *names);

/* Registers a function by hand (what JC_FUNCTION does). desc must stay valid
 * for the life of the process, its name and version unchanged; it is not
 * copied (keys are made from those strings as they are). An empty name or version is
 * rejected (JC_EINVAL; a later jc_delayed or jc_memo of that function then
 * fails with JC_ENOFUNC saying why); a second function under an existing name marks the
 * name ambiguous, so that using either one fails with JC_ENOFUNC naming both.
 * Registering the same descriptor twice is harmless. */
JC_EXPORT int jc_function_register(const jc_function *desc);
/* Looks up a registered function by name; NULL if unknown or ambiguous. */
JC_EXPORT const jc_function *jc_function_find(const char *name);

/* Inside a cacheable function: its arguments. Positional arguments are
 * numbered from 0; named ones are found by name. The typed accessors fail the
 * call when the argument is missing or has another type: they return 0 (or
 * NULL), and the call is reported as an error with a message naming the
 * function, the argument and the types, whatever the function returns. */
JC_EXPORT size_t jc_arg_count(const jc_call *call);
JC_EXPORT const jc_value *jc_arg(const jc_call *call, size_t i);     /* NULL if absent */
JC_EXPORT const jc_value *jc_kwarg(const jc_call *call, const char *name);
JC_EXPORT bool jc_arg_bool(jc_call *call, size_t i);
JC_EXPORT int64_t jc_arg_int(jc_call *call, size_t i);
JC_EXPORT double jc_arg_double(jc_call *call, size_t i);
JC_EXPORT const char *jc_arg_str(jc_call *call, size_t i);
JC_EXPORT const double *jc_arg_doubles(jc_call *call, size_t i, size_t *n);
JC_EXPORT const int64_t *jc_arg_ints(jc_call *call, size_t i, size_t *n);
/* A bytes argument: its data (owned by the call) and *len (may be NULL). */
JC_EXPORT const void *jc_arg_bytes(jc_call *call, size_t i, size_t *len);
/* Positional arguments by their parameter's name (JC_FUNCTION_PARAMS): the
 * same as jc_arg_double(call, i) and the like for the i that the name has.
 * A name the function does not have fails the call, as a missing argument. */
JC_EXPORT const jc_value *jc_arg_named(const jc_call *call, const char *param); /* NULL if absent */
JC_EXPORT bool jc_arg_bool_named(jc_call *call, const char *param);
JC_EXPORT int64_t jc_arg_int_named(jc_call *call, const char *param);
JC_EXPORT double jc_arg_double_named(jc_call *call, const char *param);
JC_EXPORT const char *jc_arg_str_named(jc_call *call, const char *param);
JC_EXPORT bool jc_kwarg_bool(jc_call *call, const char *name);
JC_EXPORT int64_t jc_kwarg_int(jc_call *call, const char *name);
JC_EXPORT double jc_kwarg_double(jc_call *call, const char *name);
JC_EXPORT const char *jc_kwarg_str(jc_call *call, const char *name);
JC_EXPORT const double *jc_kwarg_doubles(jc_call *call, const char *name, size_t *n);
JC_EXPORT const int64_t *jc_kwarg_ints(jc_call *call, const char *name, size_t *n);
JC_EXPORT const void *jc_kwarg_bytes(jc_call *call, const char *name, size_t *len);
/* The name of the function being called (for messages). */
JC_EXPORT const char *jc_call_function(const jc_call *call);

/* Setting the result. jc_return takes ownership of v (NULL means out of
 * memory and fails the call). Each returns 0, or a negative code that the
 * function should return. A later jc_return replaces an earlier one. */
JC_EXPORT int jc_return(jc_call *call, jc_value *v);
JC_EXPORT int jc_return_int(jc_call *call, int64_t i);
JC_EXPORT int jc_return_double(jc_call *call, double d);
JC_EXPORT int jc_return_str(jc_call *call, const char *s);
/* Fails the call with a printf-style message; returns JC_EFAILED, to be
 * returned by the function: return jc_fail(call, "diverged at step %d", k). */
JC_EXPORT int jc_fail(jc_call *call, const char *fmt, ...) JC__PRINTF(2, 3);

/* ------------------------------------------------------------------------ */
/* The cache                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct jc_cache jc_cache;

enum jc_cache_flags {
    JC_CACHE_RECOMPUTE = 1 << 0, /* ignore hits: compute every call and overwrite its entry */
    JC_CACHE_READONLY = 1 << 1,  /* use hits, never write (not even hit counts) */
    JC_CACHE_DISABLED = 1 << 2,  /* no cache at all: open no file, compute everything */
    JC_CACHE_NOCREATE = 1 << 3,  /* fail with JC_ENOTFOUND rather than create a missing file */
    JC_CACHE_IGNORE_ENV = 1 << 4 /* the JOBCACHE_* environment variables below do not apply to this
                                  * cache nor to its batches (a program embedding jobcache that
                                  * wants its own settings only) */
};

typedef struct jc_cache_options {
    unsigned flags;            /* jc_cache_flags, or-ed */
    /* Wait this long for another process's lock; 0 = 10000. A wait ends
     * early at a SIGINT or SIGTERM during a run, and a run that has waited
     * this long in all to store its results tries once from then on: its
     * results are returned, marked not stored (jc_results_message). */
    int busy_timeout_ms;
    /* Bytes the cache may take on disk, as `du` shows it: the database file
     * and its -wal file, once a run, a jc_memo call that stored a result,
     * or jc_cache_close has finished (and jc_cache_open, which brings a
     * larger file back). Then, when the files take more, the least recently
     * used entries are evicted down to 90% of it and their pages given back
     * to the system, and the -wal file is truncated. The check costs two
     * stat() calls; only an eviction reads the entries. The bound holds
     * within a few pages of 4 KiB, with three exceptions: an empty cache
     * takes about 40 KiB (10 pages): a smaller max_size is refused
     * (JC_EINVAL from jc_cache_open, naming the smallest, as is a smaller
     * JOBCACHE_MAX_SIZE; jc_cache_config_set refuses it too); one run (or
     * jc_cache_open, or a stretch of jc_memo calls) evicts at most half of
     * the entries it finds, so that a limit far too small for the cache
     * never empties it unasked: past that the results are stored over the
     * limit and a warning says by how much and that `jobcache prune
     * --max-size` (jc_cache_prune) brings it down; and
     * a -wal file that another process is reading or writing at that moment
     * keeps its size until a later checkpoint (SQLite cannot truncate it
     * under a reader). While a program has the cache open, SQLite also keeps
     * a -shm file of 32 KiB beside it, not counted (removed when the last
     * program closes the cache). Every eviction is told: the run's summary
     * line (on stderr, terminal or not, unless JOBCACHE_VERBOSE=0), the
     * record of runs (jc_run_record.evicted), jc_stats.evicted_entries.
     * A result that could not be kept even alone is not
     * stored, and reported (jc_progress.too_large, and a warning). A file
     * made before this schema (without auto_vacuum) is vacuumed once, the
     * first time eviction cannot shrink it. 0 = no limit. */
    int64_t max_size;
    /* Compression of large results (as ccache's compression and joblib's
     * Memory(compress=)): "auto" (the default: zstd at level 1), a zstd
     * level "1" to "19", or "off"; NULL leaves it to the environment, the
     * file's setting ("compress") and the default, in that order. Only the
     * parts of a result stored apart (each string, bytes or typed array of
     * 64 KiB or more: docs/format.md, "Large results") are compressed, each
     * only when zstd saves at least a tenth on a sample of it, so that
     * incompressible data costs one trial of 48 KiB. The checksum covers
     * the result as the function returned it, whatever its compression; a
     * reader needs no setting. A bad value is JC_EINVAL at open. */
    const char *compress;
} jc_cache_options;

/* The environment (read at jc_cache_open and jc_batch_new, unless
 * JC_CACHE_IGNORE_ENV). Precedence: the environment, then what the program
 * set, then the settings kept in the file (jc_cache_config_set), then the
 * defaults. A bad value is an error at open (or jc_batch_new) naming the
 * variable and the value, never ignored.
 *
 *   JOBCACHE_PATH=FILE          the cache file when the program passes NULL
 *   JOBCACHE_READONLY=1         as JC_CACHE_READONLY (0: not, whatever the program says)
 *   JOBCACHE_RECOMPUTE=1        as JC_CACHE_RECOMPUTE
 *   JOBCACHE_DISABLE=1          as JC_CACHE_DISABLED: no file, compute everything
 *   JOBCACHE_MAX_SIZE=SIZE      max_size, with jc_parse_size's suffixes (0: no limit)
 *   JOBCACHE_COMPRESS=auto|off|LEVEL   jc_cache_options.compress
 *   JOBCACHE_N_JOBS=N           n_jobs, as joblib's (1 in this process, for gdb; -1 all CPUs)
 *   JOBCACHE_VERBOSE=0|1|2      0 quiet, 1 the summary line, 2 also a line per failure and
 *                               per tenth of the run finished (JC_VERBOSE_DETAIL)
 *   JOBCACHE_TIMEOUT=SECONDS    timeout_seconds (0: none)
 *   JOBCACHE_BACKEND=NAME       jc_options.backend: auto, fork, threads, in-process or mpi
 *   JOBCACHE_MPI_KEEP=SIZE      large arguments each MPI worker rank keeps (read by jc_mpi_init;
 *                               default 256M, 0 none; docs/mpi.md)
 *   JOBCACHE_ON_CODE_CHANGE=warn|recompute|ignore   jc_options.on_code_change
 *   JOBCACHE_EXPIRES_AFTER=AGE  jc_options.expires_after, with jc_parse_age's units (0: never)
 *   JOBCACHE_RETRIES=N          jc_options.retries (0 to 100)
 *   JOBCACHE_MEMO_SNAPSHOT=AGE  jc_memo_session_options.max_snapshot_seconds (read by
 *                               jc_memo_session_begin)
 *   JOBCACHE_MEMO_MEMORY=SIZE   jc_memo_session_options.max_memory (likewise)
 *
 * Boolean variables take 1/0, yes/no, true/false, on/off. */

/* Opens (creating if needed) the cache file at path. A new file gets mode
 * 0666 less the process's umask, as files made by other Unix tools do (so
 * umask 002 in a setgid directory lets a group share a cache; README), and
 * SQLite gives the -wal and -shm files beside it the same mode. NULL path means
 * $JOBCACHE_PATH if set, else "./jobcache.db". opts may be NULL. Returns NULL
 * on failure with jc_errmsg() naming the file and the cause: a missing or
 * unwritable directory, a file that is not SQLite, a corrupt or truncated
 * file, a schema newer than this library. Free with jc_cache_close.
 * A path that is a libpq connection URI ("postgresql://..." or
 * "postgres://...") opens a cache on a PostgreSQL server instead, in the
 * first schema of the connection's search_path, created if needed
 * (docs/store.md): JC_EIO when the server cannot be reached within the
 * connect timeout (10 s unless the URI or PGCONNECT_TIMEOUT says), JC_EINVAL
 * for a URI libpq cannot read, JC_ECORRUPT for a schema holding other
 * tables; jc_cache_path and every message name it without its password,
 * as a URI libpq reads back (percent-encoded, a socket directory as %2F...
 * in the host's place, only host, port, user, database and options): reopen
 * a cache by the location given, not by jc_cache_path.
 * The first cache file opened in a process turns SQLite's memory statistics
 * off (sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0)): they take a global
 * mutex at each of SQLite's allocations, about 1,000 instructions of every
 * stored result. A program that uses SQLite itself and relies on
 * sqlite3_memory_used or sqlite3_soft_heap_limit64 calls sqlite3_initialize()
 * before its first jc_cache_open: SQLite's configuration is then left as
 * it is (https://sqlite.org/c3ref/config.html). sqlite3_config is not
 * thread-safe: a program whose other threads may start using SQLite while
 * its first cache is being opened initializes SQLite first, too. */
JC_EXPORT jc_cache *jc_cache_open(const char *path, const jc_cache_options *opts);
/* Closes the cache, committing anything pending. NULL is a no-op. The cache
 * must outlive every batch made on it. */
JC_EXPORT void jc_cache_close(jc_cache *cache);
/* The file's path (NULL for a disabled cache), made absolute at open: a
 * relative path is resolved against the working directory of that moment
 * (the real path of its directory, then its name), so that a program that
 * changes directory afterwards still uses and measures the same file.
 * Owned by the cache. */
JC_EXPORT const char *jc_cache_path(const jc_cache *cache);

/* Settings kept in the cache file itself (as ccache -M keeps its limit),
 * which every program that opens the file honours unless it or the
 * environment sets its own. Keys: "max-size" (a size, jc_parse_size;
 * applies as jc_cache_options.max_size when the program passes 0), and
 * "log-runs" (how many runs the record of runs keeps, default 1000; 0:
 * record none), and "compress" (jc_cache_options.compress: auto, off or
 * a zstd level, 1 to 19). A value
 * is checked before it is stored: a bad one is JC_EINVAL naming the key and
 * the value. value NULL removes the setting. Needs a writable cache
 * (JC_EREADONLY). */
JC_EXPORT int jc_cache_config_set(jc_cache *cache, const char *key, const char *value);
/* The stored value of key in *value (malloc'd, the caller frees it; NULL
 * when not set). Returns 0, or JC_EINVAL for an unknown key. */
JC_EXPORT int jc_cache_config_get(jc_cache *cache, const char *key, char **value);
/* Each known setting with the value in force for this handle and where it
 * comes from: "environment", "program", "file" or "default". Strings are
 * valid during the call only. */
typedef void (*jc_config_fn)(const char *key, const char *value, const char *source, void *userdata);
JC_EXPORT int jc_cache_config_list(jc_cache *cache, jc_config_fn fn, void *userdata);

/* ------------------------------------------------------------------------ */
/* Batches and runs                                                          */
/* ------------------------------------------------------------------------ */

typedef struct jc_batch jc_batch;
typedef struct jc_results jc_results;

typedef enum jc_status {
    JC_STATUS_OK = 0,
    JC_STATUS_ERROR = 1,     /* the function failed (jc_fail, a wrong argument type, ...) */
    JC_STATUS_CRASHED = 2,   /* the worker died: a signal, exit(), out of memory */
    JC_STATUS_TIMEOUT = 3,   /* the call ran past jc_options.timeout_seconds */
    JC_STATUS_SKIPPED = 4    /* not run: an earlier call failed under JC_ON_ERROR_STOP, or the run was interrupted */
} jc_status;

/* "ok", "error", "crashed", "timed out", "skipped". */
JC_EXPORT const char *jc_status_name(jc_status s);

typedef enum jc_on_error {
    JC_ON_ERROR_STOP = 0,     /* default, as joblib: the first failure skips the calls not yet started */
    JC_ON_ERROR_CONTINUE = 1  /* run everything; failures are reported per call */
} jc_on_error;

typedef enum jc_verbose {
    /* The summary line when stderr is a terminal, and while the run lasts a
     * live progress bar fitted to the terminal's width (TIOCGWINSZ). To
     * follow a resize, a run installs a SIGWINCH handler only when SIGWINCH
     * has its default disposition, and puts the default back when it ends;
     * a program's own handler is left alone. Away from a terminal (a batch
     * job, a log file), the summary only for a run with something to say:
     * failed calls, an interruption (and what a rerun computes), results
     * not stored, a failed eviction. After the summary (here and with ON),
     * a line per failed call, at most 10, then how many more. */
    JC_VERBOSE_AUTO = 0,
    JC_VERBOSE_ON = 1,    /* the summary line always (and the failed calls, as AUTO) */
    JC_VERBOSE_OFF = 2,   /* nothing: the program reads the statuses itself */
    JC_VERBOSE_DETAIL = 3 /* the summary line, and a line for each failure and each tenth of the
                           * run finished (joblib's verbose levels above 1) */
} jc_verbose;

typedef enum jc_backend {
    JC_BACKEND_AUTO = 0,    /* the MPI backend on rank 0 of a job of several ranks (jc_mpi_init);
                             * otherwise in-process for n_jobs = 1 (unless a timeout or memory limit
                             * needs a worker process), forked workers for any other n_jobs */
    JC_BACKEND_FORK = 1,
    JC_BACKEND_THREADS = 2, /* pthreads: only for thread-safe functions */
    JC_BACKEND_INPROCESS = 3,
    JC_BACKEND_MPI = 4      /* the worker ranks of an MPI job (jc_mpi_init; docs/mpi.md) */
} jc_backend;

/* Live figures of a run, for progress callbacks and at its end. */
typedef struct jc_progress {
    size_t total;          /* submitted calls */
    size_t done;           /* calls with a final status */
    size_t cached;
    size_t computed;       /* computed successfully */
    size_t failed;         /* error, crashed or timed out */
    size_t skipped;
    size_t running;
    double elapsed;        /* seconds since jc_run started */
    double saved;          /* compute seconds that hits saved */
    /* Entries found damaged (their result no longer matches the checksum
     * stored with it, or a part of a large result is missing or does not
     * decompress): not served, computed again and overwritten. */
    size_t damaged;
    /* Hits whose entry was computed by other code under the same function
     * name and version (jc_on_code_change); counted whatever the policy. */
    size_t code_changed;
    /* Results not stored because a cache of jc_cache_options.max_size could
     * not keep them even alone (each function is also warned about once on
     * stderr, per cache handle): they are computed again by every run. */
    size_t too_large;
    /* Distinct calls this run waits for because another process on the
     * same cache is computing them (it claimed them first); each becomes a
     * hit when stored, or is computed here if that process fails or dies. */
    size_t waiting;
    /* Calls whose entry had expired (jc_options.expires_after): computed
     * again, among computed. */
    size_t expired;
    /* Runs of calls again after a crash or a timeout (jc_options.retries). */
    size_t retried;
    /* Results of calls that other calls of the batch use (jc_use) read
     * from the cache: for a hit the caller wants, or as the input of a call
     * computed. A rerun of a pipeline whose last calls hit, with the others
     * marked intermediate (jc_intermediate), reads none. */
    size_t inputs_read;
} jc_progress;

/* What a run does with a hit whose entry was computed by different code
 * under the same function name and version: the machine code of the
 * function (and of the functions it calls directly) has changed since, and
 * its version was not bumped, which would otherwise serve stale results
 * silently (joblib checks a function's code the same way). The code is
 * known by a fingerprint stored with each entry (docs/format.md says how it
 * is made and its limits). An entry stored before fingerprints existed, or
 * by code whose fingerprint cannot be taken, never counts as changed.
 * The environment variable JOBCACHE_ON_CODE_CHANGE=warn|recompute|ignore
 * overrides the program's choice. */
typedef enum jc_on_code_change {
    JC_ON_CODE_CHANGE_WARN = 0,      /* default: serve the hits, and print one line per function on
                                      * stderr naming it, its version, how many entries, what to do */
    JC_ON_CODE_CHANGE_RECOMPUTE = 1, /* treat them as misses: computed again and overwritten */
    JC_ON_CODE_CHANGE_IGNORE = 2     /* serve them, say nothing (the count stays in jc_progress) */
} jc_on_code_change;

typedef struct jc_options {
    /* As joblib: 1 runs every miss in the caller's process (no fork, no
     * thread: debug with gdb as a plain loop); -1 all CPUs; -k all but k-1;
     * k > 1 that many workers. 0 is the default, 1, so that a
     * zero-initialised jc_options (or a compound literal naming only the
     * fields it changes) is the default everywhere. */
    int n_jobs;
    jc_on_error on_error;
    jc_verbose verbose;
    jc_backend backend;
    double timeout_seconds;    /* per call; 0 = none. Needs the fork backend. */
    int64_t memory_limit;      /* bytes a worker may allocate beyond what it inherits from the caller (RLIMIT_AS); 0 = none */
    /* Called in the caller's thread once per distinct call, with the index
     * of its first submission, as soon as its result is known: hits first
     * (once all lookups are done), then computed calls and failures in
     * completion order. Calls skipped are not reported. It may read res and
     * use other caches; it must not free res or run a batch. */
    void (*on_result)(const jc_results *res, size_t index, void *userdata);
    /* Called in the caller's thread at most about 10 times a second. */
    void (*on_progress)(const jc_progress *p, void *userdata);
    void *userdata;
    jc_on_code_change on_code_change;
    /* Entries stored more than this many seconds ago are misses: computed
     * again and replaced (joblib's expires_after), however often they hit.
     * Unlike pruning, nothing is removed: an entry expires for the runs that
     * ask, and stays for others. jc_progress.expired and jc_plan_info.expired
     * count them. 0 = never. JOBCACHE_EXPIRES_AFTER=AGE (jc_parse_age: 90s,
     * 12h, 30d) overrides it. */
    double expires_after;
    /* A call that crashed (a signal, exit() in the function, out of memory)
     * or timed out is run again, up to this many more times, before it
     * counts as failed (GNU parallel's --retries): for the flaky cluster
     * node, the allocation that failed under memory pressure. A call whose
     * function failed by itself (jc_fail, or a bad return) is its own answer
     * and is not retried. jc_progress.retried counts the retries, and so
     * does the record of runs. 0 = none; at most 100. JOBCACHE_RETRIES=N
     * overrides it. */
    int retries;
} jc_options;

/* A new, empty batch that will run against cache. opts may be NULL, or
 * zero-initialised, for the defaults above (n_jobs = 1); it is copied. NULL
 * on invalid options (a negative timeout, an unknown enum value, a bad
 * JOBCACHE_ON_CODE_CHANGE) with jc_errmsg() naming the option. */
JC_EXPORT jc_batch *jc_batch_new(jc_cache *cache, const jc_options *opts);
/* Frees the batch and the arguments it holds. NULL is a no-op. */
JC_EXPORT void jc_batch_free(jc_batch *batch);
/* Number of calls submitted so far. */
JC_EXPORT size_t jc_batch_count(const jc_batch *batch);

/* jc_delayed(batch, fn, args...): submits fn(args...) to the batch, where fn
 * was declared with JC_FUNCTION and each argument is a value builder, named
 * ones made with jc_kw(). The arguments are taken over. Returns 0, or a
 * negative code: an unregistered or ambiguous function, a NULL argument, a
 * named argument given twice. A failure is also remembered by the batch, so
 * that jc_run refuses to run it, reporting the first bad call with its source
 * file and line. The function receives the arguments in the canonical form
 * their key is made from: -0.0 as +0.0 and every NaN as the one quiet NaN,
 * also in typed arrays and nested values (docs/format.md); a borrowed array
 * that holds either is copied once (the caller's memory is never written),
 * one that does not is read in place. The same holds for jc_memo. */
#define jc_delayed(batch, ...)                                                 \
    jc__delayed((batch), JC__HEAD(__VA_ARGS__, 0), JC__ARGV(__VA_ARGS__),     \
                JC__ARGC(__VA_ARGS__), __FILE__, __LINE__)
/* The same by registered name, for calls built from data. */
JC_EXPORT int jc_delayed_name(jc_batch *batch, const char *name,
                              jc_value *const *argv, size_t argc);

/* ---- Pipelines: one call's result as another's argument (docs/pipelines.md) ----
 *
 *     jc_ref data = jc_delayed_ref(batch, generate, jc_int(seed));
 *     jc_ref fit  = jc_delayed_ref(batch, train, jc_use(data), jc_double(alpha));
 *     jc_delayed(batch, evaluate, jc_use(fit), jc_use(data));
 *
 * A handle of a call of a batch, passed by value. Its fields are private. */
typedef struct jc_ref {
    uint64_t batch_;  /* the batch's serial; 0 when the call was refused */
    size_t index_;    /* its submission index */
} jc_ref;

/* jc_delayed_ref(batch, fn, args...): as jc_delayed, and returns a handle
 * of the call, for jc_use in later calls of the same batch and for its
 * result (jc_ref_index). A refused call gives a handle that holds no call
 * (jc_ref_ok false): the batch remembers the failure as jc_delayed does,
 * and jc_use of the handle fails in turn. */
#define jc_delayed_ref(batch, ...)                                             \
    jc__delayed_ref((batch), JC__HEAD(__VA_ARGS__, 0), JC__ARGV(__VA_ARGS__), \
                    JC__ARGC(__VA_ARGS__), __FILE__, __LINE__)
/* The same by registered name. */
JC_EXPORT jc_ref jc_delayed_name_ref(jc_batch *batch, const char *name, jc_value *const *argv, size_t argc);
/* Whether ref holds a call. */
JC_EXPORT bool jc_ref_ok(jc_ref ref);
/* The call's submission index in its batch, for jc_result_* (SIZE_MAX when
 * ref holds no call). */
JC_EXPORT size_t jc_ref_index(jc_ref ref);

/* The result of the call ref holds, as an argument of a later call of the
 * same batch, anywhere a value goes (positional, jc_kw, inside jc_list or
 * jc_map). A new value owned by the caller, like every builder; NULL (with
 * jc_errmsg) when ref holds no call. jc_delayed refuses it, naming the
 * call, when ref is of another batch or of a batch already freed.
 *
 * The rules (docs/pipelines.md):
 *  - Key: a reference enters the key as the XXH3-128 digest of the result
 *    (the checksum its entry carries), not as its value, nor as the input
 *    call's key: an input recomputed to the same result keeps every
 *    downstream hit (early cutoff), one with another result changes exactly
 *    its downstream keys. A call without references keys as before.
 *  - Scheduling: a call runs once every input has its result; independent
 *    calls run in parallel, and a call does not wait for other calls of its
 *    input's function. A rerun whose later calls hit reads only the
 *    digests of their inputs, never the inputs' values
 *    (jc_progress.inputs_read counts the values read).
 *  - Failure: a call whose input failed, timed out, crashed or was skipped
 *    is skipped, with a message naming the input ("evaluate(...): input 1,
 *    train(0.3): diverged"); so are the calls that depend on it. */
JC_EXPORT jc_value *jc_use(jc_ref ref);

/* Marks the call ref holds as intermediate: its result is stored, and given
 * to the calls that use it, but not handed back (jc_result_value is NULL,
 * the status is the call's), so that memory holds only what the caller
 * reads: a value is freed once the last call that uses it has finished,
 * and a hit is not read at all unless a call that uses it is computed.
 * Returns 0, or JC_EINVAL when ref holds no call of batch. */
JC_EXPORT int jc_intermediate(jc_batch *batch, jc_ref ref);

/* ---- MPI: one program over the ranks of a cluster job (docs/mpi.md) ----
 *
 * Call jc_mpi_init first thing in main, before anything else the program
 * does, and run the program with mpirun -np N or srun (srun --mpi=pmix):
 *
 *     int main(int argc, char **argv)
 *     {
 *         if (jc_mpi_init(&argc, &argv) < 0)   // worker ranks never return
 *             return fprintf(stderr, "%s\n", jc_errmsg()), 1;
 *         ... the same code as for the fork pool ...
 *     }
 *
 * On rank 0 it returns 0 and the program goes on: rank 0 is the coordinator,
 * the only rank that opens the cache, hashes, looks up and stores, and
 * jc_run there sends the misses to ranks 1..N-1 (JC_BACKEND_AUTO chooses the
 * MPI backend; n_jobs does not apply, every worker rank computes). On every
 * other rank it does not return: the rank serves calls until rank 0 ends,
 * then calls MPI_Finalize and exits with rank 0's exit status (0 when the
 * program calls MPI_Finalize itself before exiting). On rank 0, jobcache
 * calls MPI_Finalize at exit when it initialised MPI; a program that called
 * MPI_Init itself finalizes rank 0 itself. A worker rank runs each call in a forked child, so a
 * call that crashes, calls exit() or times out fails alone, named with its
 * rank and host, and the job goes on.
 *
 * Worker ranks are separate processes, possibly on other machines, that
 * never ran main past this call: they do not share the coordinator's
 * memory (arguments travel as messages; a large top-level array is sent to
 * each rank once and kept there, up to 256 MiB per rank). A function must depend only on its arguments (and on what every
 * rank computes identically before main, or reads from shared files).
 *
 * A program started on its own (no launcher in the environment) is not
 * touched: no MPI initialisation, 0 returned, the fork pool as always; so
 * is a job of one rank. Returns 0, or on every rank a negative code with
 * jc_errmsg() saying why: MPI_Init failing, srun starting tasks that are not
 * one MPI job (srun without --mpi=pmix or pmi2), or a jobcache built without
 * MPI started as several ranks. Calling it again returns 0. */
JC_EXPORT int jc_mpi_init(int *argc, char ***argv);
/* The number of ranks of the job jc_mpi_init joined (coordinator
 * included), 1 when there is none. */
JC_EXPORT int jc_mpi_ranks(void);

/* Runs the batch: hashes every call, computes each distinct call once,
 * answers hits from the cache, computes the misses (in-process or on
 * workers), stores their results in batched transactions and returns the
 * results in submission order. A batch runs once; free it afterwards.
 *
 * Results are committed every 100 ms (every ten times what the last commit
 * took, up to 2 s, when that is longer: a commit into a large cache writes
 * a page of its key index per result), every 100,000 results or (worker
 * backends) 64 MiB of encoded results, and, when calls run in this process, right after a call
 * that took 10 ms or more; no lock on the file is held while a function runs, so other
 * processes share the cache meanwhile. A
 * cache runs one batch at a time (JC_EBUSY otherwise), and is used by one
 * thread at a time: a function under the threads backend must not use the
 * running cache (jc_memo there fails with JC_EBUSY), nor can a function in a
 * forked worker (the SQLite connection stays with the caller). SIGINT and
 * SIGTERM are taken over during the run (see docs/pool.md); run batches
 * from one thread of a process at a time.
 * Returns NULL only when the run could not start (a bad call in the batch,
 * out of memory, a cache error), with jc_errmsg() saying why. Otherwise the
 * results, which the caller frees with jc_results_free; see
 * jc_results_status for whether every call succeeded. */
JC_EXPORT jc_results *jc_run(jc_batch *batch);

/* What a run of the batch would do, computing nothing (joblib's
 * check_call_in_cache, for a whole sweep): how many calls, how many the
 * cache answers, how many to compute, and an estimate of the time from the
 * mean compute time stored for each function and version, over the workers
 * in use.
 *
 * A pipeline (calls that take other calls' results, jc_use) is planned
 * stage by stage, as the run keys it: a call whose inputs the cache answers
 * is keyed by their digests (read without their values) and looked up; a
 * call with an input to compute cannot be keyed before that input's result
 * exists, so it counts as to compute "because of its inputs" (at most: an
 * input computed again with the same result keeps its users' hits, the
 * early cutoff of docs/pipelines.md). */
typedef struct jc_plan_stage {
    const char *function;      /* its name; owned by the batch */
    size_t calls;              /* submitted */
    size_t distinct;           /* after identical calls are merged */
    size_t cached;             /* distinct calls the cache answers */
    size_t to_compute;         /* distinct calls to compute, including: */
    size_t because_inputs;     /* ... those with an input to compute */
    double estimated_seconds;  /* over the workers, as jc_plan_info's */
    size_t not_estimated;      /* of to_compute, with no stored time to estimate from */
} jc_plan_stage;

typedef struct jc_plan_info {
    size_t calls;              /* submitted */
    size_t distinct;           /* after identical calls are merged */
    size_t cached;             /* distinct calls the cache answers */
    size_t to_compute;         /* distinct calls to compute */
    int workers;               /* n_jobs resolved */
    double estimated_seconds;  /* of the calls to compute whose function has stored entries */
    size_t not_estimated;      /* calls to compute of functions with no entry to estimate from */
    size_t expired;            /* of to_compute, distinct calls whose entry expired (expires_after) */
    /* Calls that take other calls' results (jc_use), included in the
     * figures above. */
    size_t after_inputs;
    /* Of to_compute, the calls with an input to compute (see above). */
    size_t because_inputs;
    /* One stage per function, in the order of their first call in the
     * batch: nstages entries, owned by the batch, valid until the next
     * jc_plan of the batch or jc_batch_free. */
    size_t nstages;
    const jc_plan_stage *stages;
} jc_plan_info;
/* Fills *out for batch, which stays as it is (jc_run may follow). Returns
 * 0 or a negative jc_error (a bad call in the batch, a cache error). With
 * JOBCACHE_DRY_RUN=1 in the environment, the first jc_run of the program
 * prints this plan (jc_plan_text) on stderr and ends the program with
 * status 0, as make -n does: handing it skipped results would let it write
 * empty outputs. */
JC_EXPORT int jc_plan(jc_batch *batch, jc_plan_info *out);
/* "10,000 calls: 8,412 cached, 1,588 to compute, about 26 min on 2 workers";
 * a batch with calls that take other calls' results adds a line per stage
 * ("  evaluate: 10,000 calls, 0 cached, 10,000 to compute (10,000 because
 * of their inputs)"). Malloc'd, the caller frees it (NULL when out of
 * memory). Reads plan->stages: call it before the batch is freed. */
JC_EXPORT char *jc_plan_text(const jc_plan_info *plan);

JC_EXPORT void jc_results_free(jc_results *res);
/* JC_OK when every call succeeded, JC_EFAILED when any failed or was
 * skipped, JC_EINTR when the run was interrupted (SIGINT/SIGTERM), JC_EFULL
 * when the disk filled: what fitted was stored (in smaller and smaller
 * transactions, down to one result), the rest could not be, and every
 * result is still returned; JC_EIO when results could not be stored for
 * another reason. jc_results_message() gives details (how many). */
JC_EXPORT int jc_results_status(const jc_results *res);
JC_EXPORT const char *jc_results_message(const jc_results *res);

/* The signal (SIGINT or SIGTERM) that interrupted the last jc_run of this
 * process, or 0 when it was not interrupted (or no run was made). */
JC_EXPORT int jc_interrupted_signal(void);
/* Ends the process as if it had been killed by the signal that interrupted
 * the last jc_run, so that a shell sees it (`for s in ...; do ./sweep; done`
 * stops on Ctrl-C only when the child was killed by SIGINT: exit(130) is not
 * enough; see https://www.cons.org/cracauer/sigint.html). Flushes stdio,
 * restores the signal's default action, unblocks it and raises it: never
 * returns then. Returns at once when the last run was not interrupted.
 * Call it after jc_results_free and jc_cache_close, once everything is
 * committed and the file checkpointed:
 *
 *     jc_results *res = jc_run(batch);  ...  jc_cache_close(cache);
 *     jc_raise_interrupt();             // exit status 128 + SIGINT in a shell
 *     return status;
 */
JC_EXPORT void jc_raise_interrupt(void);
JC_EXPORT size_t jc_results_count(const jc_results *res);
/* The figures of the finished run. */
JC_EXPORT jc_progress jc_results_summary(const jc_results *res);

/* Per result; k is the submission index. Out of range: a failed status and
 * NULL values. */
JC_EXPORT jc_status jc_result_status(const jc_results *res, size_t k);
/* The result value, owned by res; NULL unless the status is ok. */
JC_EXPORT const jc_value *jc_result_value(const jc_results *res, size_t k);
/* Takes the value out of res (the caller then owns it); NULL unless the
 * status is ok, and when out of memory. Identical submissions share one
 * value: each but the last take of them gets a copy. Once taken,
 * jc_result_value(res, k) is NULL (the status stays ok). */
JC_EXPORT jc_value *jc_result_take(jc_results *res, size_t k);
JC_EXPORT bool jc_result_cached(const jc_results *res, size_t k);
/* Seconds the computation took (for a hit: when it was computed). */
JC_EXPORT double jc_result_seconds(const jc_results *res, size_t k);
/* For a failure: "simulate(0.5, 3, steps=1000): diverged at step 12"; NULL
 * otherwise. Owned by res. */
JC_EXPORT const char *jc_result_error(const jc_results *res, size_t k);
/* Convenience: the result as a double / int; NaN / 0 when the call failed or
 * the value has another type. */
JC_EXPORT double jc_result_double(const jc_results *res, size_t k);
JC_EXPORT int64_t jc_result_int(const jc_results *res, size_t k);

/* jc_memo(cache, fn, args...): one memoized call outside a batch, like
 * joblib's Memory.cache(f)(x): a hit is returned from the cache, a miss is
 * computed in the caller's process and stored. Returns a new value that the
 * caller owns, or NULL on failure with jc_errmsg() naming the call. A
 * result that cannot be stored (a full disk, a lock held past the busy
 * timeout) is still returned; it is then simply not cached. */
#define jc_memo(cache, ...)                                                    \
    jc__memo((cache), JC__HEAD(__VA_ARGS__, 0), JC__ARGV(__VA_ARGS__),        \
             JC__ARGC(__VA_ARGS__), __FILE__, __LINE__)

/* Memo sessions: a loop of jc_memo calls on one snapshot of the cache.
 *
 *     jc_memo_session_begin(cache, NULL);
 *     for (int i = 0; i < n; i++)
 *         use(jc_memo(cache, f, jc_int(i % 1000)));
 *     jc_memo_session_end(cache);
 *
 * Outside a session each jc_memo is its own read transaction (SQLite's
 * locks on the -shm file: two fcntl() calls and about 3,800 instructions);
 * in a session the calls read one snapshot, held from begin to end, and a
 * call whose result the session has already read or computed is answered
 * from memory, a copy of what it was then. A miss computes, stores its
 * result in a write transaction of its own, and takes a new snapshot. So
 * that SQLite's checkpoints are never kept waiting, a snapshot older than
 * max_snapshot_seconds is let go by the next call, answered from memory or
 * not (the hits counted so far are written then), and a miss lets it go
 * while its function runs; a session that renews sees what other processes
 * stored meanwhile, but the results it keeps in memory stay what they were
 * when read (an entry replaced under its key, by a recompute or an expiry,
 * is seen at the next session). Hits are counted (jobcache stats) as
 * outside a session, written at renewals and at the end.
 *
 * One session per cache handle, in the thread that uses the cache. A
 * jc_run on the cache during a session is allowed: the session then takes a
 * new snapshot at its next call. */
typedef struct jc_memo_session_options {
    /* Seconds a snapshot is held before the next call renews it; 0 = 1.
     * $JOBCACHE_MEMO_SNAPSHOT (an age, jc_parse_age) overrides it. */
    double max_snapshot_seconds;
    /* Bytes of results kept in memory (an estimate of what each takes
     * there); past it, further results are read from the snapshot each
     * time. 0 = 64 MiB; a negative value keeps none. $JOBCACHE_MEMO_MEMORY
     * (a size, jc_parse_size; 0 keeps none) overrides it. */
    int64_t max_memory;
} jc_memo_session_options;
/* Begins a session on cache (opts may be NULL: the defaults). Returns 0;
 * JC_EINVAL for a NULL cache, a session already begun on it, or a bad
 * environment variable (named); JC_EBUSY while another thread runs a
 * batch on it. On a disabled cache a session does nothing, and succeeds. */
JC_EXPORT int jc_memo_session_begin(jc_cache *cache, const jc_memo_session_options *opts);
/* Ends the session: the snapshot is let go, the hits are written, the
 * results kept in memory are freed. Returns 0, or JC_EINVAL when no
 * session was begun. jc_cache_close ends a session left open. */
JC_EXPORT int jc_memo_session_end(jc_cache *cache);
/* Defined where memo sessions exist (jobcache 0.4 and later), for code that
 * builds against several releases. */
#define JC_HAVE_MEMO_SESSIONS 1

/* ------------------------------------------------------------------------ */
/* Inspecting and tending a cache                                            */
/* ------------------------------------------------------------------------ */

/* What the `jobcache` command does (docs/jobcache.1), for programs: list,
 * look into, remove, prune, verify, merge and compact the entries of a cache.
 *
 * Every function here takes a cache opened with jc_cache_open; a disabled
 * cache (JC_CACHE_DISABLED) has no entries to inspect and gives JC_EINVAL.
 * The ones that change the file refuse a read-only cache with JC_EREADONLY;
 * open a cache with JC_CACHE_READONLY to look without ever writing (that
 * also refuses to create a missing file). Each change is one transaction,
 * so all of them are safe while another process runs batches on the same
 * file: they wait for its transactions up to the busy timeout, and it waits
 * for theirs. None of them may be called while the cache runs a batch.
 *
 * The age of an entry is the time since it was last used: since it was
 * stored, or since its last hit. The size of an entry is the bytes of its
 * encoded arguments and result (its payload); the file is somewhat larger
 * (keys, metadata, SQLite's pages), and gives space back to the system only
 * when vacuumed (jc_cache_vacuum), though new entries reuse freed pages. */

/* Bytes in a key. */
#define JC_KEY_SIZE 16

/* What the cache records about one entry. */
typedef struct jc_entry_info {
    uint8_t key[JC_KEY_SIZE];
    char key_hex[2 * JC_KEY_SIZE + 1]; /* 32 lowercase hex digits */
    const char *function;              /* see the function that filled it for how long */
    const char *version;
    int64_t args_size;                 /* bytes of the encoded arguments */
    int64_t result_size;               /* bytes of the encoded result */
    double created;                    /* when stored, seconds since the epoch */
    double last_used;                  /* when stored or last hit, seconds since the epoch */
    double compute_seconds;            /* how long computing it took */
    int64_t hits;                      /* how many times it was answered from the cache */
    /* Hits are appended to the file's hit log, not written into their
     * entries (a hit costs no write of its row: docs/format.md, schema 10);
     * a writable handle folds the log into hits and last_used before it
     * lists or finds entries, a read-only one shows them as last folded
     * (jc_stats counts the log in its totals either way). */
} jc_entry_info;

typedef enum jc_sort {
    JC_SORT_NAME = 0,    /* by function, version, then oldest first (the default) */
    JC_SORT_USED = 1,    /* most recently used first */
    JC_SORT_SIZE = 2,    /* largest first */
    JC_SORT_TIME = 3,    /* longest compute time first */
    JC_SORT_HITS = 4,    /* most hits first */
    JC_SORT_CREATED = 5, /* newest first */
    /* By key: the order the file keeps them in, unsorted as far as a
     * person can tell, the one whose first entries come at once (through
     * the key's index, however many entries there are). */
    JC_SORT_KEY = 6
} jc_sort;

/* Which entries, in what order. The zero value selects every entry in the
 * default order. Strings are copied where needed: they need to live only
 * during the call that takes the filter. */
typedef struct jc_filter {
    const char *function; /* only entries of this function; NULL = any */
    const char *version;  /* only entries of this version; NULL = any */
    double older_than;    /* only entries last used more than this many seconds ago; 0 = any */
    double newer_than;    /* only entries last used less than this many seconds ago; 0 = any */
    jc_sort sort;
    bool reverse;         /* the sort order reversed */
    size_t limit;         /* at most this many entries; 0 = all */
} jc_filter;

/* An iterator over entries. */
typedef struct jc_entries jc_entries;

/* Selects the entries that filter (NULL: all) picks, in its order.
 * jc_entries_next reads them a page at a time (a few hundred entries at
 * first, growing to 65536), each entry as it is at that moment, skipping
 * one removed meanwhile: memory does not grow with the number of entries,
 * no read snapshot is held between calls, and a long iteration never holds
 * up another process. An entry that moves in the order meanwhile (a hit,
 * in JC_SORT_USED) may come twice or not at all, and one added meanwhile
 * may come. In storage order a page costs what it reads; in any other
 * order each page costs one pass over the entries (there is no index on
 * those columns). Returns a new iterator to free with jc_entries_free
 * (the cache must outlive it), or NULL with jc_errmsg() on failure
 * (JC_EINVAL for a negative age or an unknown sort). */
JC_EXPORT jc_entries *jc_entries_query(jc_cache *cache, const jc_filter *filter);
/* Fills *info with the next entry and returns 1; returns 0 at the end, or
 * a negative jc_error. info's strings are owned by the iterator and valid
 * until its next call or its free. */
JC_EXPORT int jc_entries_next(jc_entries *it, jc_entry_info *info);
/* Frees the iterator. NULL is a no-op. */
JC_EXPORT void jc_entries_free(jc_entries *it);

/* Finds the one entry whose key starts with hex_prefix (1 to 32 hex
 * digits, either case) and fills *info. Returns 0; JC_ENOTFOUND when no key
 * starts so, JC_EAMBIGUOUS when several do, JC_EINVAL when hex_prefix is not
 * hex. info's strings are owned by the cache and valid until the next call
 * that passes the cache. */
JC_EXPORT int jc_entry_find(jc_cache *cache, const char *hex_prefix, jc_entry_info *info);
/* The parameter names recorded in the cache for function and version (by a
 * run of a function declared with JC_FUNCTION_PARAMS): returns 1 with
 * *names, a NULL-terminated array of *n names, freed with one free(*names);
 * 0 with *names NULL and *n 0 when none are recorded (also in a file older
 * than schema 6); or a negative jc_error. */
JC_EXPORT int jc_function_params(jc_cache *cache, const char *function, const char *version, char ***names,
                                 size_t *n);
/* Decodes the entry under key. *args gets its positional arguments as a
 * list, *kwargs its named arguments as a map (name -> value; empty when
 * none), *result its result: new values that the caller frees with
 * jc_value_free. Any of the three may be NULL to skip it. Returns 0, or
 * JC_ENOTFOUND, or JC_EDECODE when a stored blob does not decode (nothing
 * is returned then: every out is NULL). */
JC_EXPORT int jc_entry_load(jc_cache *cache, const uint8_t key[JC_KEY_SIZE], jc_value **args,
                            jc_value **kwargs, jc_value **result);
/* Removes the entry under key. Returns 0, or JC_ENOTFOUND. */
JC_EXPORT int jc_entry_remove(jc_cache *cache, const uint8_t key[JC_KEY_SIZE]);
/* Pipelines (docs/pipelines.md). The entry whose result a stored reference
 * stands for (jc_value_get_ref gives its digest): fills *info (as
 * jc_entry_find) and returns 0; JC_ENOTFOUND when no entry holding that
 * result is left. Two calls that computed equal results hold one digest:
 * either may come. One pass over the entries. */
JC_EXPORT int jc_entry_by_result(jc_cache *cache, const uint8_t digest[16], jc_entry_info *info);
/* Removes the entry under key and every entry computed from it: those
 * whose arguments refer to its result (jc_use), and theirs, and so on, in
 * one transaction. *count and *bytes (each may be NULL) get how many
 * entries and payload bytes; with dry_run nothing is removed. An entry
 * whose result equals another's is an input of the same calls: they go too.
 * Returns 0, JC_ENOTFOUND, JC_EREADONLY or another jc_error. One pass over
 * the entries per result removed. */
JC_EXPORT int jc_cache_remove_downstream(jc_cache *cache, const uint8_t key[JC_KEY_SIZE], bool dry_run,
                                         int64_t *count, int64_t *bytes);
/* The key of the call function(args...) of version (docs/format.md):
 * args[0..nargs) are positional values and named ones (jc_kw), borrowed,
 * not taken over. For looking an entry up by its arguments (jobcache
 * find, joblib's check_call_in_cache). Returns 0 or JC_EINVAL (a NULL or
 * unencodable argument, a name given twice). */
JC_EXPORT int jc_call_key(const char *function, const char *version, jc_value *const *args, size_t nargs,
                          uint8_t key[JC_KEY_SIZE]);
/* Removes every entry that filter picks (its sort and limit are ignored; a
 * NULL or zero filter removes everything). *count and *bytes (each may be
 * NULL) get how many entries and payload bytes were removed; with dry_run
 * nothing is removed and they say what would have been. Returns 0 or a
 * negative jc_error (then nothing was removed). */
JC_EXPORT int jc_cache_remove_matching(jc_cache *cache, const jc_filter *filter, bool dry_run,
                                       int64_t *count, int64_t *bytes);

/* What jc_cache_prune removes; the zero value removes nothing. The rules
 * apply in this order, each to what the previous ones left. */
typedef struct jc_prune_options {
    /* Every version of a function but the one most recently used (hit or
     * stored; ties: the one written last). Times written under a clock
     * that was ahead count as no later than the entries written after
     * them. */
    bool stale_versions;
    double older_than;   /* entries last used more than this many seconds ago; 0 = none */
    int64_t max_entries; /* then least recently used entries until at most this many remain; 0 = no limit */
    /* Then least recently used entries until the file's pages in use take
     * at most this many bytes (the size on disk of jc_cache_options.max_size:
     * the freed pages are given back to the system, and the -wal file is
     * truncated unless another process holds it); 0 = no limit. */
    int64_t max_size;
    /* First of all, entries made by a release of another key format (never
     * served by this one; jc_verify_result.other_format counts them). */
    bool other_formats;
    /* With max_entries: least recently used entries until at most this many
     * payload bytes (arguments and results as encoded) remain; 0 = no limit. */
    int64_t max_payload;
} jc_prune_options;

/* Prunes the cache by opts (what jc_cache_options.max_size does after a
 * run is about opts->max_size alone, to 90% of it). Hits not yet written are written first, so
 * that an entry just used counts as used. *count and *bytes (each may be
 * NULL) get how many entries and payload bytes were removed; with dry_run
 * nothing is removed and they say what would have been (a dry run still
 * needs a writable cache: it removes inside a transaction that it rolls
 * back). Returns 0 or a negative jc_error (then nothing was removed). */
JC_EXPORT int jc_cache_prune(jc_cache *cache, const jc_prune_options *opts, bool dry_run,
                             int64_t *count, int64_t *bytes);

/* Figures of one function at one version. */
typedef struct jc_function_stats {
    const char *function;
    const char *version;
    int64_t entries;
    int64_t bytes;           /* payload: arguments and results */
    double compute_seconds;  /* total over the entries */
    double mean_seconds;     /* compute_seconds / entries */
    int64_t hits;
    double saved_seconds;    /* sum over the entries of hits x compute time */
    double oldest;           /* earliest `created`, seconds since the epoch */
    double newest;           /* latest `created` */
    double last_used;        /* latest `last_used` */
    /* How many different code fingerprints its entries were computed by
     * (jc_on_code_change): 1 is the normal case; more means the function's
     * code changed under one version; 0 when none is known (entries of
     * jobcache 0.1.0, or code whose fingerprint cannot be taken). */
    int64_t code_fingerprints;
} jc_function_stats;

/* Figures of a whole cache, made by jc_cache_stats. Times are 0 when the
 * cache has no entries. */
typedef struct jc_stats {
    const char *path;
    int schema_version;      /* of the file's tables */
    int key_format;          /* JC_KEY_FORMAT_VERSION of the library that made the file */
    int64_t entries;
    int64_t file_bytes;      /* on disk: the database file and its -wal file */
    int64_t free_bytes;      /* of the database file, unused pages that jc_cache_vacuum gives back */
    int64_t payload_bytes;   /* args_bytes + result_bytes */
    int64_t args_bytes;
    int64_t result_bytes;
    double compute_seconds;
    int64_t hits;
    double saved_seconds;
    double oldest, newest, last_used;
    size_t nfunctions;
    const jc_function_stats *functions; /* by function name, then version */
    int64_t wal_bytes;       /* of file_bytes, the -wal file: when not 0, committed results may
                              * sit there, not yet in the database file (copy with jc_cache_backup) */
    /* Entries made by a release of another key format: never served by this
     * one; kept by verify's repair, removed by jc_prune_options.other_formats.
     * file_bytes (not payload_bytes) is what jc_cache_options.max_size bounds. */
    int64_t other_format_entries;
    int64_t leases_alive;    /* processes holding claims on calls now (jc_cache_leases) */
    int64_t leases_stale;    /* claims of processes gone, which the next run drops */
    int64_t leases_calls;    /* calls the live ones claim */
    /* Entries (and their payload bytes) that max_size evicted, by runs and
     * jc_memo of every process, since the file was made or
     * jc_cache_zero_hits zeroed the counts (ccache's "cleanups"); what
     * jc_cache_prune removes is the user's doing and not counted. */
    int64_t evicted_entries, evicted_bytes;
    /* Other processes reading a snapshot of the -wal file now (a read
     * transaction open since before the latest commits): until they end
     * it, a checkpoint cannot move those commits into the database, and
     * the -wal file grows past max_size. Found in /proc/locks (Linux), so
     * 0 where that cannot be read. wal_reader_pid is one of them (0: none),
     * wal_reader_command its command line (NULL when it cannot be read). */
    int64_t wal_readers;
    long wal_reader_pid;
    const char *wal_reader_command;
} jc_stats;

/* The figures of cache, from one read of the file: a new jc_stats that the
 * caller frees with jc_stats_free (everything it points to goes with it).
 * NULL on failure, with jc_errmsg() saying why. */
JC_EXPORT jc_stats *jc_cache_stats(jc_cache *cache);
/* NULL is a no-op. */
JC_EXPORT void jc_stats_free(jc_stats *stats);

/* Called by jc_cache_verify for each problem: entry is the bad entry (its
 * strings valid during the call), or NULL for a problem of the file itself
 * that SQLite's integrity check found. */
typedef void (*jc_verify_fn)(const jc_entry_info *entry, const char *problem, void *userdata);

typedef struct jc_verify_result {
    int64_t checked;          /* entries read */
    int64_t bad_entries;      /* entries with a problem */
    int64_t removed;          /* of those, removed by repair */
    int64_t file_problems;    /* problems SQLite's integrity check found */
    int64_t unchecked;        /* entries read that have no result checksum (a schema-1 file
                               * of jobcache 0.1.0 read as it is): their result was decoded,
                               * not checked against its bytes as stored */
    int64_t unreadable;       /* entries that could not be read at all (on damaged pages of
                               * the file); the entries around them are still checked */
    int64_t other_format;     /* entries of another key format (made by a release whose keys
                               * differ): not damage, never served, not counted in checked,
                               * kept by repair; jc_prune_options.other_formats removes them */
} jc_verify_result;

/* Checks the cache: SQLite's integrity check of the file, then each entry:
 * its key is recomputed from its function, version and argument bytes and
 * compared; its result must match the XXH3-128 checksum stored with it
 * (docs/format.md); its arguments and result must decode; its arguments
 * must be in canonical form (decoding and encoding again gives the same
 * bytes); its recorded sizes must be its blobs' sizes. fn (may be NULL) hears of each
 * problem. With repair, the bad entries are removed (an entry that another
 * process rewrote meanwhile is checked again first); a damaged file itself
 * is not repaired. A damaged file is a finding, not a failure: SQLite's
 * reports are counted as file_problems, and every entry that can still be
 * read is checked. *out (may be NULL) gets the figures. Returns 0 when the
 * check ran, whatever it found, or a negative jc_error when it could not
 * run (JC_EREADONLY: repair on a read-only cache). */
JC_EXPORT int jc_cache_verify(jc_cache *cache, bool repair, jc_verify_fn fn, void *userdata,
                              jc_verify_result *out);

typedef struct jc_merge_result {
    int64_t added;    /* entries the cache did not have */
    int64_t replaced; /* entries the other cache had newer (by created) */
    int64_t kept;     /* entries the cache already had as new or newer */
    int64_t rejected; /* entries of the other cache that failed the checks of jc_cache_verify */
    int64_t other_format; /* entries of the other cache of another key format: skipped (this
                           * release never serves them, and cannot check their keys) */
} jc_merge_result;

/* Copies into cache the entries of the cache file other_path (opened
 * read-only; never created or changed). Where both have an entry under the
 * same key, the one created later wins, with its hits and times. Times of
 * the other file later than now are taken as now, so that they neither win
 * every later merge nor escape eviction (an entry so dated does not replace
 * the copy of itself that an earlier merge made).
 * Each entry of the other file gets the checks of jc_cache_verify: its key
 * must be the one computed from its function, version and arguments, its
 * arguments must decode and be in canonical form, its result must decode,
 * and its recorded sizes must be those of its blobs; an entry failing any
 * of them is rejected. That catches damage and a result filed under the key
 * of other arguments, but not a wrong result filed under its own key: a
 * result is trusted as the other cache computed it, so merge only files you
 * trust as much as your own runs. The entries are committed in
 * batches, so that a run using the cache meanwhile waits only briefly.
 * The parameter names the other file recorded (JC_FUNCTION_PARAMS) are
 * copied for each function and version this cache has none for.
 * *out (may be NULL) gets the counts. Returns 0, or a negative jc_error as
 * jc_cache_open would give for other_path (JC_ENOTFOUND when missing), or a
 * failure writing cache (entries committed before it stay). */
JC_EXPORT int jc_cache_merge(jc_cache *cache, const char *other_path, jc_merge_result *out);

/* Sets the hit count of every entry to 0, as ccache's -z zeroes its
 * statistics: jc_stats.hits and saved_seconds count from now on. When an
 * entry was last used is kept (eviction still knows what was used lately),
 * and the record of runs (jc_cache_runs) is history, not a counter: it is
 * kept. Hits this handle has not yet written are zeroed with the rest.
 * *count (may be NULL) gets how many entries had hits. Returns 0, or
 * JC_EREADONLY on a read-only cache, JC_EBUSY while the handle runs a
 * batch, or another negative jc_error (then nothing changed). The counts
 * of evictions (jc_stats.evicted_entries, evicted_bytes) are zeroed too. */
JC_EXPORT int jc_cache_zero_hits(jc_cache *cache, int64_t *count);

/* Rewrites the file without its free pages, giving the space to the system
 * (SQLite's VACUUM), and truncates the -wal file. Needs free disk space of
 * about the file's size, and holds the write lock while it rewrites: a run
 * on the same file that waits longer than its busy timeout cannot store its
 * results meanwhile. Returns 0 or a negative jc_error. */
JC_EXPORT int jc_cache_vacuum(jc_cache *cache);
/* One process's claim on calls of the cache: while it computes them, runs
 * of other processes wait for their results instead of computing them too
 * (docs/pool.md). */
typedef struct jc_lease_info {
    const char *owner;  /* "BOOT ID|PID NAMESPACE|PID|START TIME" of the claiming process */
    long pid;           /* from owner; 0 if it cannot be read */
    double started;     /* seconds since the epoch */
    double expires;     /* when the claim lapses unless renewed (an owner in this boot and
                         * pid namespace holds it while its process lives, whatever this says) */
    int64_t calls;      /* calls claimed */
    bool alive;         /* the owner holds it now; false: stale, the next run drops it */
} jc_lease_info;
typedef void (*jc_lease_fn)(const jc_lease_info *lease, void *userdata);
/* Calls fn for each process holding claims on cache (strings valid during
 * the call only); *count (may be NULL) gets how many. Nothing for a file
 * older than schema 4 read as it is. Returns 0 or a negative jc_error. */
JC_EXPORT int jc_cache_leases(jc_cache *cache, jc_lease_fn fn, void *userdata, size_t *count);
/* Removes the claims of owner (as jc_lease_info.owner gives it), or with
 * owner NULL every stale claim (alive false). A live owner's claims are
 * removed only when named: its calls may then be computed twice. *count
 * (may be NULL) gets how many owners were removed. Needs a writable cache.
 * Returns 0, JC_ENOTFOUND when a named owner holds no claim, or a negative
 * jc_error. */
JC_EXPORT int jc_cache_break_lease(jc_cache *cache, const char *owner, size_t *count);
/* A cache file on a network file system (NFS, SMB/CIFS, Lustre, GPFS,
 * CephFS, BeeGFS, ..., as statfs(2) tells) is used by one host at a time:
 * SQLite's WAL index is shared memory of one host, and two hosts writing
 * one file over the network can corrupt it. Each jc_cache_open there
 * writes a record of its host and process into the directory path +
 * ".hosts" (touched every 40 s while the file is open; dead 120 s after
 * the last touch, by the file server's clock; removed at jc_cache_close),
 * and is refused with JC_EBUSY, naming the host, while a live record of
 * another host is there. Processes of one host share the file as on a
 * local disk. A process whose record was removed while it lived and whose
 * file another host then opened refuses every later write (JC_EIO). This
 * removes every record without opening the file (for a host that crashed,
 * rather than waiting for its record to die): *host (may be NULL) gets the
 * hosts they named ("a, b"; malloc'd; NULL when there was none). Returns 0
 * or JC_EIO naming the file. NFS caches what a directory holds for a few
 * seconds: two hosts opening the file within that time may not see each
 * other. */
JC_EXPORT int jc_cache_unlock_host(const char *path, char **host);

/* The record of runs: each jc_run on a writable cache appends a row (and
 * each cache session of jc_memo calls one at jc_cache_close), with the
 * failures of the run, which are never cached as results. The record keeps
 * the last log-runs runs (a setting kept in the file, default 1000). */
typedef struct jc_run_failure {
    const char *status;  /* "error", "crashed", "timed out" */
    const char *message; /* "simulate(0.5, 3): diverged at step 12" */
} jc_run_failure;
typedef struct jc_run_record {
    int64_t id;
    double started, ended;   /* seconds since the epoch */
    const char *host;
    long pid;
    const char *command;     /* the program's command line */
    const char *kind;        /* "run" (jc_run) or "memo" (a session of jc_memo calls) */
    int n_jobs;              /* resolved: workers, or 1 */
    const char *backend;     /* "in-process", "fork", "threads", "mpi" */
    int64_t calls, cached, computed, failed, skipped;
    double elapsed, saved;   /* seconds */
    const char *status;      /* "ok", or the name of the run's jc_error ("JC_EFAILED", "JC_EINTR") */
    size_t nfailures;        /* kept: at most 1000 a run */
    const jc_run_failure *failures;
    /* Entries, and their payload bytes, that max_size evicted during the
     * run (0 in runs recorded before jobcache 0.3, which did not count). */
    int64_t evicted, evicted_bytes;
    /* Calls run again after a crash or a timeout (jc_options.retries). */
    int64_t retries;
    /* Intermediate values of a pipeline read from the cache
     * (jc_progress.inputs_read; 0 in runs recorded before schema 9). */
    int64_t inputs_read;
} jc_run_record;
typedef void (*jc_run_fn)(const jc_run_record *run, void *userdata);
/* Calls fn for each of the last `last` runs (0: all kept), oldest first;
 * with failed_only, only runs with a failure or another status than ok.
 * Strings are valid during the call only. Nothing for a file older than
 * schema 5 read as it is. Returns 0 or a negative jc_error. */
JC_EXPORT int jc_cache_runs(jc_cache *cache, size_t last, bool failed_only, jc_run_fn fn, void *userdata);

/* Writes a consistent copy of the cache to dest_path, a new file, while
 * this and other processes may go on using the cache, with SQLite's online
 * backup API (https://www.sqlite.org/backup.html). Use it rather than cp:
 * committed results may still be in the -wal file beside the database,
 * which a copy of the database file alone misses. The copy is written under
 * a temporary name beside dest_path and renamed when complete, and is one
 * self-contained file (no -wal). Works on a read-only cache too. Returns 0,
 * JC_EIO when dest_path exists or cannot be written (nothing is left
 * behind), JC_EBUSY during a run of this cache, or another jc_error. */
JC_EXPORT int jc_cache_backup(jc_cache *cache, const char *dest_path);
/* Removes every entry; *count (may be NULL) gets how many. Returns 0 or a
 * negative jc_error. */
JC_EXPORT int jc_cache_clear(jc_cache *cache, int64_t *count);

/* Parses a size: a number (decimals allowed) with an optional unit, in
 * either case: K, M, G or T alone or followed by "iB" are powers of 1024
 * ("500M" and "500MiB" are 500 * 1024^2 bytes); followed by "B" they are
 * powers of 1000 ("100MB" and "100mb" are 10^8 bytes, "64kB" 64000); a bare
 * "B" is bytes. "500M", "2G", "1.5K", "4096", "64KiB", "1.5GB". Returns 0 and
 * sets *out, or JC_EINVAL (with a message quoting text) for anything else, a
 * negative size or one beyond INT64_MAX bytes. (jobcache 0.1 read "MB" as
 * MiB.) */
JC_EXPORT int jc_parse_size(const char *text, int64_t *out);
/* Parses an age: a number (decimals allowed) and a unit, s, m (minutes), h,
 * d or w: "90s", "12h", "30d", "1.5w". The unit is required, so that "30"
 * is never silently read as seconds. Returns 0 and sets *out in seconds, or
 * JC_EINVAL with a message quoting text. */
JC_EXPORT int jc_parse_age(const char *text, double *out);

/* ------------------------------------------------------------------------ */
/* Macro internals                                                           */
/* ------------------------------------------------------------------------ */

#define JC__HEAD(x, ...) x
#define JC__TAIL(x, ...) __VA_ARGS__
#define JC__NARGS(...) (sizeof((jc_value *[]){__VA_ARGS__}) / sizeof(jc_value *))
/* The arguments after the function, as an array whose last element is NULL. */
#define JC__ARGV(...) ((jc_value *[]){JC__TAIL(__VA_ARGS__, 0)})
/* How many arguments follow the function (sizeof does not evaluate them). */
#define JC__ARGC(...) (JC__NARGS(JC__TAIL(__VA_ARGS__, 0)) - 1)

JC_EXPORT int jc__delayed(jc_batch *batch, jc_fn fn, jc_value *const *argv, size_t argc,
                          const char *file, int line);
JC_EXPORT jc_ref jc__delayed_ref(jc_batch *batch, jc_fn fn, jc_value *const *argv, size_t argc,
                                 const char *file, int line);
JC_EXPORT jc_value *jc__memo(jc_cache *cache, jc_fn fn, jc_value *const *argv, size_t argc,
                             const char *file, int line);

#ifdef __cplusplus
}
#endif

#endif /* JOBCACHE_H */
