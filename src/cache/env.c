/*
 * The environment: JOBCACHE_* variables over the program's options.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "function/fingerprint.h"
#include "cache_int.h"

/* ---- the environment ---- */

const char *jc__env(const jc_cache *cache, const char *name)
{
    if (cache && (cache->flags & JC_CACHE_IGNORE_ENV))
        return NULL;
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

int jc__env_bool(const jc_cache *cache, const char *name, bool *on)
{
    const char *v = jc__env(cache, name);
    if (!v)
        return 0;
    static const char *const yes[] = {"1", "yes", "true", "on"}, *const no[] = {"0", "no", "false", "off"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *on = true;
            return 1;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *on = false;
            return 1;
        }
    }
    return jc__set_error(JC_EINVAL, "%s is '%s'; it must be 1 or 0 (yes/no, true/false, on/off)", name, v);
}

int jc__c_compress_level(const char *text)
{
    if (!text)
        return -1;
    if (strcasecmp(text, "auto") == 0 || strcasecmp(text, "on") == 0)
        return 1; /* ccache's default level */
    if (strcasecmp(text, "off") == 0)
        return 0;
    if (*text < '0' || *text > '9')
        return -1; /* no sign, no space */
    char *end = NULL;
    errno = 0;
    long n = strtol(text, &end, 10);
    return !*end && !errno && n >= 1 && n <= 19 ? (int)n : -1;
}

/* Applies the environment's switches over the program's options; a bad
 * value is an error naming the variable. (jc__env_bool reads cache's
 * flags: a stand-in carries the program's JC_CACHE_IGNORE_ENV.) */
int jc__c_options_from_env(jc_cache_options *o, const char **max_size_source)
{
    jc_cache probe = {.flags = o->flags};
    bool on = false;
    int rc;
    static const struct {
        const char *name;
        unsigned flag;
    } flags[] = {{"JOBCACHE_READONLY", JC_CACHE_READONLY},
                 {"JOBCACHE_RECOMPUTE", JC_CACHE_RECOMPUTE},
                 {"JOBCACHE_DISABLE", JC_CACHE_DISABLED}};
    for (size_t i = 0; i < sizeof flags / sizeof *flags; i++) {
        if ((rc = jc__env_bool(&probe, flags[i].name, &on)) < 0)
            return jc__set_error(rc, "jc_cache_open: %s", jc_errmsg());
        if (rc == 1) {
            o->flags = on ? o->flags | flags[i].flag : o->flags & ~flags[i].flag;
            /* The environment wins over a contradicting choice of the program. */
            if (on && flags[i].flag == JC_CACHE_READONLY)
                o->flags &= ~(unsigned)JC_CACHE_RECOMPUTE;
            if (on && flags[i].flag == JC_CACHE_RECOMPUTE)
                o->flags &= ~(unsigned)JC_CACHE_READONLY;
        }
    }
    const char *compress = jc__env(&probe, "JOBCACHE_COMPRESS");
    if (compress) {
        if (jc__c_compress_level(compress) < 0)
            return jc__set_error(JC_EINVAL, "jc_cache_open: JOBCACHE_COMPRESS is '%s'; it must be auto, off or a "
                                 "zstd level from 1 to 19", compress);
        o->compress = compress;
    }
    const char *size = jc__env(&probe, "JOBCACHE_MAX_SIZE");
    if (size) {
        int64_t bytes = 0;
        if (jc_parse_size(size, &bytes))
            return jc__set_error(JC_EINVAL, "jc_cache_open: JOBCACHE_MAX_SIZE is '%s': %s", size, jc_errmsg());
        o->max_size = bytes;
        *max_size_source = "environment";
    }
    return 0;
}
