/*
 * jobcache leases and break-lease: the claims of runs on calls.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jobcache.h>

#include "builtin.h"
#include "json.h"
#include "msgs.h"
#include "table.h"
#include "text.h"

static void print_lease(const jc_lease_info *l, void *userdata)
{
    (void)userdata;
    char since[32], until[32];
    fmt_ago(since, sizeof since, l->started);
    fmt_time(until, sizeof until, l->expires);
    say(stdout, "%-7ld %8lld  %-14s %-20s %-6s %s", l->pid, (long long)l->calls, since, until,
           l->alive ? "alive" : "stale", l->owner);
}

static int cmd_leases(jc_cache *cache, const opts *o)
{
    (void)o;
    size_t n = 0;
    printf("%-7s %8s  %-14s %-20s %-6s %s\n", "PID", "CALLS", "SINCE", "EXPIRES", "STATE", "OWNER");
    if (jc_cache_leases(cache, print_lease, NULL, &n))
        return failed("leases");
    if (!n)
        printf("(no process holds claims)\n");
    return EXIT_OK;
}

static int cmd_break_lease(jc_cache *cache, const opts *o)
{
    size_t n = 0;
    bool stale = strcmp(o->pos[0], "stale") == 0;
    /* JC_ENOTFOUND: OWNER holds no claims. */
    if (jc_cache_break_lease(cache, stale ? NULL : o->pos[0], &n))
        return jc_errcode() == JC_ENOTFOUND ? refused("break-lease") : failed("break-lease");
    printf("removed the claims of %zu process%s\n", n, n == 1 ? "" : "es");
    return EXIT_OK;
}

/* The host record of a file on a network file system: removed without
 * opening the file, which the record refuses to this host. */
static int cmd_unlock_host(jc_cache *cache, const opts *o)
{
    (void)cache;
    const char *env = getenv("JOBCACHE_PATH");
    const char *file = o->file ? o->file : env && *env ? env : NULL;
    if (!file) {
        fprintf(stderr, "jobcache unlock-host: name the cache file: jobcache unlock-host FILE\n");
        return EXIT_USAGE;
    }
    char *host = NULL;
    if (jc_cache_unlock_host(file, &host))
        return failed("unlock-host");
    if (host)
        say(stdout, "%s: removed the records of host %s; a program still running there that finds another "
                    "host using the file writes nothing more to it", file, host);
    else
        say(stdout, "%s: no host recorded", file);
    free(host);
    return EXIT_OK;
}

/* ---- main ---- */

const command builtin_leases = {
    "leases", cmd_leases, OPT_FILE, 0, 0, true, false, MODE_READ, NULL, "leases [FILE]",
    "List the processes that hold claims on calls of the cache (runs computing them, for which\n"
    "runs of other processes wait): pid, calls, since when, until when, alive or stale."};

const command builtin_unlock_host = {
    "unlock-host", cmd_unlock_host, OPT_FILE, 0, 0, true, false, MODE_NONE, NULL, "unlock-host [FILE]",
    "A cache file on a network file system (NFS, SMB, Lustre, GPFS, ...) is used by one host at\n"
    "a time: a program that opens it records its host in FILE.hosts/, renewed while the file is\n"
    "open and dead two minutes after, and another host is refused meanwhile. Remove those\n"
    "records, for a host that crashed, without waiting for them to die."};

const command builtin_break_lease = {
    "break-lease", cmd_break_lease, OPT_FILE, 1, 1, true, false, MODE_WRITE, NULL, "break-lease OWNER|stale [FILE]",
    "Remove the claims of OWNER (as 'leases' shows it), or with 'stale' every claim whose\n"
    "owner is gone. Runs drop stale claims themselves; this is for looking and tidying."};
