/*
 * The command's messages to its user (msgs.h): say() and the errors every
 * command reports the same way.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <jobcache.h>

#include "builtin.h"
#include "msgs.h"
#include "text.h"

/* fmt's text in a new string (free() it); NULL when out of memory. */
static char *vformat(const char *fmt, va_list ap)
{
    va_list aq;
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, aq);
    va_end(aq);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s)
        vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

/* say() and the rest: see msgs.h. */
void say(FILE *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *raw = vformat(fmt, ap);
    va_end(ap);
    char *safe = raw ? text_escape(raw) : NULL;
    fputs(safe ? safe : "(out of memory)", f);
    fputc('\n', f);
    free(raw);
    free(safe);
}

int usage_error(const command *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = vformat(fmt, ap);
    va_end(ap);
    say(stderr, "jobcache %s: %s (see 'jobcache help %s')", c->name, msg ? msg : "out of memory",
        c->name);
    free(msg);
    return EXIT_USAGE;
}

int failed(const char *cmd)
{
    say(stderr, "jobcache %s: %s", cmd, jc_errmsg());
    return EXIT_FAILED;
}

int out_of_memory(const char *cmd)
{
    fprintf(stderr, "jobcache %s: out of memory\n", cmd);
    return EXIT_FAILED;
}

int refused(const char *cmd)
{
    failed(cmd);
    return EXIT_USAGE;
}

int prefix_failed(const jc_cache *cache, const char *cmd)
{
    int code = jc_errcode();
    /* JC_EINVAL is a prefix that is not one, unless the cache has no file
     * (JOBCACHE_DISABLE): then nothing could be looked up. */
    bool typed = code == JC_ENOTFOUND || code == JC_EAMBIGUOUS || (code == JC_EINVAL && jc_cache_path(cache));
    return typed ? refused(cmd) : failed(cmd);
}
