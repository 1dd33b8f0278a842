/*
 * jobcache config: the settings kept in the cache file, which every program
 * that opens it honours.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jobcache.h>

#include "builtin.h"
#include "msgs.h"

static void print_setting(const char *key, const char *value, const char *source, void *userdata)
{
    (void)userdata;
    say(stdout, "%-10s %-14s (%s)", key, value, source);
}

static int cmd_config(jc_cache *cache, const opts *o)
{
    if (o->npos == 0) {
        if (jc_cache_config_list(cache, print_setting, NULL))
            return failed("config");
        return EXIT_OK;
    }
    const char *key = o->pos[0];
    if (o->npos == 1) {
        char *v = NULL;
        /* JC_EINVAL: a setting it does not know (unless the cache has no
         * file: JOBCACHE_DISABLE). */
        if (jc_cache_config_get(cache, key, &v))
            return jc_errcode() == JC_EINVAL && jc_cache_path(cache) ? refused("config") : failed("config");
        say(stdout, "%s", v ? v : "(not set)");
        free(v);
        return EXIT_OK;
    }
    /* Set: the cache opened again, writable (config reads read-only), by
     * the location given (jc_cache_path names a server without its password). */
    jc_cache *w = jc_cache_open(o->file, &(jc_cache_options){.flags = JC_CACHE_NOCREATE});
    if (!w)
        return failed("config");
    const char *value = strcmp(o->pos[1], "default") == 0 ? NULL : o->pos[1];
    int rc = jc_cache_config_set(w, key, value);
    /* JC_EINVAL: a setting it does not know, or a value that is not one
     * (unless the cache has no file: JOBCACHE_DISABLE). */
    bool typed = rc == JC_EINVAL && jc_cache_path(w);
    jc_cache_close(w);
    if (rc)
        return typed ? refused("config") : failed("config");
    say(stdout, value ? "%s = %s" : "%s back to its default", key, value ? value : "");
    return EXIT_OK;
}

const command builtin_config = {
    "config", cmd_config, OPT_FILE, 0, 2, false, false, MODE_READ, NULL, "config [KEY [VALUE|default]] [--file FILE]",
    "Settings kept in the cache file, which every program that opens it honours unless it,\n"
    "or the environment, sets its own: max-size (what the file may take on disk),\n"
    "log-runs (how many runs the record keeps) and compress (auto, off or a zstd level 1-19,\n"
    "for each string, bytes or array of 64 KiB or more in a result). Without KEY: each\n"
    "setting in force and where\n"
    "it comes from. With KEY: its stored value. With VALUE: store it ('default' removes it)."};
