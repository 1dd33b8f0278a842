/*
 * error: the one table of error codes (JC_ERRNO_MAP in jobcache.h) and the
 * calling thread's last error message.
 *
 * The message is thread-local, like errno: a program that opens caches from
 * several threads gets each thread's own message. It is replaced by the next
 * failing call in the same thread, never by a successful one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jc_internal.h"

static _Thread_local int last_code;
static _Thread_local char last_msg[1024];

const char *jc_strerror(int code)
{
    switch (code) {
#define JC__ERR_STR(name, value, msg) \
    case value:                       \
        return msg;
        JC_ERRNO_MAP(JC__ERR_STR)
#undef JC__ERR_STR
    }
    return "unknown error";
}

const char *jc_err_name(int code)
{
    switch (code) {
#define JC__ERR_NAME(name, value, msg) \
    case value:                        \
        return "JC_" #name;
        JC_ERRNO_MAP(JC__ERR_NAME)
#undef JC__ERR_NAME
    }
    return "JC_UNKNOWN";
}

const char *jc_errmsg(void)
{
    return last_msg[0] ? last_msg : jc_strerror(last_code);
}

int jc_errcode(void)
{
    return last_code;
}

int jc__set_errorv(int code, const char *fmt, va_list ap)
{
    /* Formatted aside first: a message often quotes the previous one
     * (jc_errmsg() as an argument), which is this very buffer. */
    char tmp[sizeof last_msg];
    if (fmt)
        vsnprintf(tmp, sizeof tmp, fmt, ap);
    else
        snprintf(tmp, sizeof tmp, "%s", jc_strerror(code));
    memcpy(last_msg, tmp, sizeof last_msg);
    last_code = code;
    return code;
}

int jc__set_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    jc__set_errorv(code, fmt, ap);
    va_end(ap);
    return code;
}

/* Marks the message of jc__set_error_null, so that a chain of calls on
 * NULL handles keeps the first failure's message rather than nesting. */
static const char null_cause[] = "; the call that should have made it failed: ";

int jc__set_error_null(const char *api, const char *handle)
{
    if (!last_code)
        return jc__set_error(JC_EINVAL, "%s: the %s is NULL", api, handle);
    const char *cause = strstr(last_msg, null_cause);
    cause = cause ? cause + sizeof null_cause - 1 : jc_errmsg();
    return jc__set_error(last_code, "%s: the %s is NULL%s%s", api, handle, null_cause, cause);
}

char *jc__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

char *jc__strdup_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

const char *jc_version(void)
{
    return JC_VERSION_STRING;
}

unsigned jc_version_number(void)
{
    return JC_VERSION_NUMBER;
}
