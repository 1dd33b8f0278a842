/*
 * call: what a cacheable function sees (its arguments, its result) and the
 * in-thread invocation every backend ends in.
 *
 * Argument accessors never abort the function: on a missing argument or a
 * wrong type they record the failure in the call and return a zero value, and
 * the call is then reported as an error naming the function and the
 * argument, whatever the function returns afterwards.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jc_internal.h"

/* Records the first failure of a call; later ones keep the first message. */
static void call_failv(jc_call *call, const char *fmt, va_list ap)
{
    if (!call || call->failed) /* a NULL call: an accessor used outside a function */
        return;
    call->failed = true;
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    call->error = msg;
}

static void call_fail(jc_call *call, const char *fmt, ...) JC__PRINTF(2, 3);
static void call_fail(jc_call *call, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    call_failv(call, fmt, ap);
    va_end(ap);
}

int jc_fail(jc_call *call, const char *fmt, ...)
{
    if (!call)
        return JC_EFAILED;
    va_list ap;
    va_start(ap, fmt);
    call_failv(call, fmt ? fmt : "failed", ap);
    va_end(ap);
    return JC_EFAILED;
}

/* Indexes the positional arguments of call (see struct jc_call): positional
 * arguments before every named one, the usual order, need no copy; others
 * get an index, returned for the caller to free (NULL when none is needed or
 * out of memory: jc_arg then scans). */
static jc_value **index_positional(jc_call *call)
{
    size_t npos = 0, prefix = 0;
    for (size_t k = 0; k < call->argc; k++)
        if (call->argv[k]->type != JC_TYPE_KWARG) {
            if (npos++ == k)
                prefix = npos;
        }
    call->npos = npos;
    call->pos = call->argv;
    if (prefix == npos)
        return NULL;
    jc_value **index = malloc(npos * sizeof *index);
    call->pos = index;
    for (size_t k = 0, n = 0; index && k < call->argc; k++)
        if (call->argv[k]->type != JC_TYPE_KWARG)
            index[n++] = call->argv[k];
    return index;
}

size_t jc_arg_count(const jc_call *call)
{
    return call ? call->npos : 0;
}

const jc_value *jc_arg(const jc_call *call, size_t i)
{
    if (!call || i >= call->npos)
        return NULL;
    /* A reference (jc_use) is read as the result it stands for. */
    if (call->pos)
        return jc__deref(call->pos[i]);
    for (size_t k = 0; k < call->argc; k++) /* no index: out of memory */
        if (call->argv[k]->type != JC_TYPE_KWARG && i-- == 0)
            return jc__deref(call->argv[k]);
    return NULL;
}

const jc_value *jc_kwarg(const jc_call *call, const char *name)
{
    for (size_t k = 0; call && name && k < call->argc; k++)
        if (call->argv[k]->type == JC_TYPE_KWARG && strcmp(call->argv[k]->u.kw.name, name) == 0)
            return jc__deref(call->argv[k]->u.kw.val);
    return NULL;
}

const char *jc_call_function(const jc_call *call)
{
    return call && call->fn ? call->fn->name : NULL;
}

/* The positional argument i, of type t, or NULL with the call failed. */
/* Whether v is of type t; a file (jc_file) is read as its path, a string. */
static bool is_type(const jc_value *v, jc_type t)
{
    return v->type == t || (t == JC_TYPE_STR && v->type == JC_TYPE_FILE && v->u.s);
}

static const jc_value *pos_typed(jc_call *call, size_t i, jc_type t)
{
    const jc_value *v = jc_arg(call, i);
    if (!v)
        call_fail(call, "argument %zu is missing (the call has %zu positional argument%s), expected %s",
                  i, jc_arg_count(call), jc_arg_count(call) == 1 ? "" : "s", jc_type_name(t));
    else if (!is_type(v, t))
        call_fail(call, "argument %zu is %s, expected %s", i, jc_type_name(v->type), jc_type_name(t));
    else
        return v;
    return NULL;
}

static const jc_value *kw_typed(jc_call *call, const char *name, jc_type t)
{
    const jc_value *v = jc_kwarg(call, name);
    if (!v)
        call_fail(call, "named argument \"%s\" is missing, expected %s", name ? name : "(null)",
                  jc_type_name(t));
    else if (!is_type(v, t))
        call_fail(call, "named argument \"%s\" is %s, expected %s", name, jc_type_name(v->type),
                  jc_type_name(t));
    else
        return v;
    return NULL;
}

/* The position of param among the function's parameter names, or
 * SIZE_MAX with the call failed (when t is not JC_TYPE_NULL). */
static size_t param_index(const jc_call *call, const char *param)
{
    size_t n = 0;
    const char *const *names = call ? jc__function_params(call->fn, &n) : NULL;
    for (size_t i = 0; param && i < n; i++)
        if (strcmp(names[i], param) == 0)
            return i;
    return SIZE_MAX;
}

const jc_value *jc_arg_named(const jc_call *call, const char *param)
{
    size_t i = param_index(call, param);
    return i == SIZE_MAX ? NULL : jc_arg(call, i);
}

static const jc_value *named_typed(jc_call *call, const char *param, jc_type t)
{
    size_t i = param_index(call, param);
    if (i == SIZE_MAX) {
        size_t n = 0;
        jc__function_params(call ? call->fn : NULL, &n);
        call_fail(call, "parameter \"%s\" is not one of the function's %s, expected %s",
                  param ? param : "(null)", n ? "parameter names" : "(it has no parameter names; "
                  "declare them with JC_FUNCTION_PARAMS)", jc_type_name(t));
        return NULL;
    }
    const jc_value *v = jc_arg(call, i);
    if (!v)
        call_fail(call, "argument %zu (%s) is missing (the call has %zu positional argument%s), expected %s",
                  i, param, jc_arg_count(call), jc_arg_count(call) == 1 ? "" : "s", jc_type_name(t));
    else if (!is_type(v, t))
        call_fail(call, "argument %zu (%s) is %s, expected %s", i, param, jc_type_name(v->type),
                  jc_type_name(t));
    else
        return v;
    return NULL;
}

bool jc_arg_bool_named(jc_call *call, const char *param)
{
    const jc_value *v = named_typed(call, param, JC_TYPE_BOOL);
    return v ? v->u.b : false;
}

int64_t jc_arg_int_named(jc_call *call, const char *param)
{
    const jc_value *v = named_typed(call, param, JC_TYPE_INT);
    return v ? v->u.i : 0;
}

double jc_arg_double_named(jc_call *call, const char *param)
{
    const jc_value *v = named_typed(call, param, JC_TYPE_DOUBLE);
    return v ? v->u.d : 0.0;
}

const char *jc_arg_str_named(jc_call *call, const char *param)
{
    const jc_value *v = named_typed(call, param, JC_TYPE_STR);
    return v ? v->u.s : NULL;
}

bool jc_arg_bool(jc_call *call, size_t i)
{
    const jc_value *v = pos_typed(call, i, JC_TYPE_BOOL);
    return v ? v->u.b : false;
}

int64_t jc_arg_int(jc_call *call, size_t i)
{
    const jc_value *v = pos_typed(call, i, JC_TYPE_INT);
    return v ? v->u.i : 0;
}

double jc_arg_double(jc_call *call, size_t i)
{
    const jc_value *v = pos_typed(call, i, JC_TYPE_DOUBLE);
    return v ? v->u.d : 0.0;
}

const char *jc_arg_str(jc_call *call, size_t i)
{
    const jc_value *v = pos_typed(call, i, JC_TYPE_STR);
    return v ? v->u.s : NULL;
}

const double *jc_arg_doubles(jc_call *call, size_t i, size_t *n)
{
    const jc_value *v = pos_typed(call, i, JC_TYPE_DOUBLES);
    if (n)
        *n = v ? v->len : 0;
    return v ? v->u.arr : NULL;
}

const int64_t *jc_arg_ints(jc_call *call, size_t i, size_t *n)
{
    const jc_value *v = pos_typed(call, i, JC_TYPE_INTS);
    if (n)
        *n = v ? v->len : 0;
    return v ? v->u.arr : NULL;
}

const void *jc_arg_bytes(jc_call *call, size_t i, size_t *len)
{
    const jc_value *v = pos_typed(call, i, JC_TYPE_BYTES);
    if (len)
        *len = v ? v->len : 0;
    return v ? v->u.s : NULL;
}

bool jc_kwarg_bool(jc_call *call, const char *name)
{
    const jc_value *v = kw_typed(call, name, JC_TYPE_BOOL);
    return v ? v->u.b : false;
}

int64_t jc_kwarg_int(jc_call *call, const char *name)
{
    const jc_value *v = kw_typed(call, name, JC_TYPE_INT);
    return v ? v->u.i : 0;
}

double jc_kwarg_double(jc_call *call, const char *name)
{
    const jc_value *v = kw_typed(call, name, JC_TYPE_DOUBLE);
    return v ? v->u.d : 0.0;
}

const char *jc_kwarg_str(jc_call *call, const char *name)
{
    const jc_value *v = kw_typed(call, name, JC_TYPE_STR);
    return v ? v->u.s : NULL;
}

const double *jc_kwarg_doubles(jc_call *call, const char *name, size_t *n)
{
    const jc_value *v = kw_typed(call, name, JC_TYPE_DOUBLES);
    if (n)
        *n = v ? v->len : 0;
    return v ? v->u.arr : NULL;
}

const int64_t *jc_kwarg_ints(jc_call *call, const char *name, size_t *n)
{
    const jc_value *v = kw_typed(call, name, JC_TYPE_INTS);
    if (n)
        *n = v ? v->len : 0;
    return v ? v->u.arr : NULL;
}

const void *jc_kwarg_bytes(jc_call *call, const char *name, size_t *len)
{
    const jc_value *v = kw_typed(call, name, JC_TYPE_BYTES);
    if (len)
        *len = v ? v->len : 0;
    return v ? v->u.s : NULL;
}

/* Whether v, or a value inside it, borrows the caller's memory. */
static bool borrows(const jc_value *v)
{
    switch ((jc_type)v->type) {
    case JC_TYPE_DOUBLES:
    case JC_TYPE_INTS:
        return (v->flags & JC__V_BORROWED) != 0;
    case JC_TYPE_LIST:
    case JC_TYPE_MAP:
        for (size_t i = 0; i < v->len; i++)
            if (borrows(v->u.items[i]))
                return true;
        return false;
    case JC_TYPE_KWARG:
        return borrows(v->u.kw.val);
    default:
        return false;
    }
}

int jc_return(jc_call *call, jc_value *v)
{
    if (!call) {
        jc_value_free(v);
        return JC_EINVAL;
    }
    if (!v) {
        call_fail(call, "the result is NULL (%s)", jc_errmsg());
        return JC_EFAILED;
    }
    if (v->parent) { /* not freed: it belongs to the value it is inside */
        call_fail(call, "the result is inside another list, map or jc_kw (a value has one owner; "
                  "return a jc_value_copy of it)");
        return JC_EFAILED;
    }
    if (v->type == JC_TYPE_KWARG) {
        call_fail(call, "the result is a jc_kw named value; return a jc_map instead");
        jc_value_free(v);
        return JC_EFAILED;
    }
    if (borrows(v)) {
        /* A result outlives the call (it is stored, sent back from a worker,
         * handed to the caller), while a borrowed array typically points at
         * the function's own stack or scratch memory: keep a copy. */
        jc_value *copy = jc_value_copy(v);
        jc_value_free(v);
        if (!copy) {
            call_fail(call, "out of memory copying the result (%s)", jc_errmsg());
            return JC_EFAILED;
        }
        v = copy;
    }
    jc_value_free(call->result);
    call->result = v;
    return 0;
}

int jc_return_int(jc_call *call, int64_t i) { return jc_return(call, jc_int(i)); }
int jc_return_double(jc_call *call, double d) { return jc_return(call, jc_double(d)); }
int jc_return_str(jc_call *call, const char *s) { return jc_return(call, jc_str(s)); }

char *jc__call_describe(const char *name, const char *const *params, size_t n_params,
                        jc_value *const *argv, size_t argc)
{
    jc__buf b = {0};
    jc__buf_write(&b, name, strlen(name));
    jc__buf_write(&b, "(", 1);
    size_t pos = 0;
    for (size_t i = 0; i < argc; i++) {
        char *s = jc_value_format(argv[i], 8);
        if (i)
            jc__buf_write(&b, ", ", 2);
        if (argv[i] && argv[i]->type != JC_TYPE_KWARG) {
            if (params && pos < n_params) {
                jc__buf_write(&b, params[pos], strlen(params[pos]));
                jc__buf_write(&b, "=", 1);
            }
            pos++;
        }
        if (s) {
            /* Keep a message readable even when an argument is a long string. */
            size_t n = strlen(s);
            if (n > 200) {
                jc__buf_write(&b, s, 190);
                jc__buf_write(&b, "...", 3);
            } else {
                jc__buf_write(&b, s, n);
            }
        }
        free(s);
    }
    jc__buf_write(&b, ")", 2); /* with the NUL */
    if (b.oom) {
        jc__buf_free(&b);
        return NULL;
    }
    return b.data;
}

char *jc__call_describe_fn(const jc_function *fn, jc_value *const *argv, size_t argc)
{
    size_t n = 0;
    const char *const *params = jc__function_params(fn, &n);
    return jc__call_describe(fn->name, params, n, argv, argc);
}

/* Whether v can be encoded (and so stored and sent back): the limits of the
 * codec, checked before anything is stored so that a bad result fails its
 * own call, the same way in every backend. */
static const char *result_problem(const jc_value *v, int depth)
{
    switch ((jc_type)v->type) {
    case JC_TYPE_STR:
    case JC_TYPE_BYTES:
        return v->len > UINT32_MAX ? "a string or bytes value is longer than 4 GiB" : NULL;
    case JC_TYPE_DOUBLES:
    case JC_TYPE_INTS:
        return v->len > UINT32_MAX / 8 ? "a typed array is larger than 4 GiB" : NULL;
    case JC_TYPE_KWARG:
        return "a jc_kw named value is not a result; use jc_map";
    case JC_TYPE_FILE:
        return v->u.s ? NULL : "a stored file digest is not a result";
    case JC_TYPE_LEFT_OUT:
        return "a left-out placeholder is not a result";
    case JC_TYPE_REF:
        return "a reference (jc_use) is not a result; return a copy of the argument's value";
    case JC_TYPE_LIST:
    case JC_TYPE_MAP:
        if (depth >= JC__MAX_DEPTH)
            return "the result is nested more than " JC__STR(JC__MAX_DEPTH) " levels deep";
        if (v->len > UINT32_MAX)
            return "a list or map has more than 2^32 items";
        for (size_t i = 0; i < v->len; i++) {
            const char *why = result_problem(v->u.items[i], depth + 1);
            if (why)
                return why;
        }
        return NULL;
    default:
        return NULL;
    }
}

jc_status jc__call_invoke(const jc_function *fn, jc_value *const *argv, size_t argc,
                          jc_value **result, char **error, double *seconds)
{
    jc_call call = {.fn = fn, .argv = argv, .argc = argc};
    jc_value **index = index_positional(&call);
    double t0 = jc__monotonic();
    int rc = fn->fn(&call);
    *seconds = jc__monotonic() - t0;
    free(index);
    *result = NULL;
    *error = NULL;
    if (!call.failed && rc == 0) {
        /* Returning 0 without a result is a mistake (a forgotten jc_return,
         * a path that falls through), not a null to cache: a null result is
         * asked for with jc_return(call, jc_null()). */
        const char *why = call.result ? result_problem(call.result, 0)
                                      : "returned 0 without setting a result (set one with jc_return*, "
                                        "e.g. jc_return(call, jc_null()), or fail with jc_fail)";
        if (!why) {
            *result = call.result;
            return JC_STATUS_OK;
        }
        call_fail(&call, "%s", why);
    }
    jc_value_free(call.result);
    char *what = call.error;
    if (!call.failed)
        what = jc__strdup_printf("returned %d (%s) without calling jc_fail", rc, jc_strerror(rc));
    char *desc = jc__call_describe_fn(fn, argv, argc);
    *error = jc__strdup_printf("%s: %s", desc ? desc : fn->name, what ? what : "failed");
    free(desc);
    free(what);
    return JC_STATUS_ERROR;
}
