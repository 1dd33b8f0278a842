/*
 * jobcache vacuum, verify, merge and backup: tending the file.
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

static int cmd_vacuum(jc_cache *cache, const opts *o)
{
    (void)o;
    char a[16], b[16];
    jc_stats *before = jc_cache_stats(cache), *after = NULL;
    int rc = before && jc_cache_vacuum(cache) == 0 && (after = jc_cache_stats(cache))
                 ? EXIT_OK
                 : failed("vacuum");
    if (rc == EXIT_OK) {
        fmt_size(a, sizeof a, before->file_bytes);
        fmt_size(b, sizeof b, after->file_bytes);
        say(stdout, "%s: %s before, %s after", jc_cache_path(cache), a, b);
    }
    jc_stats_free(before);
    jc_stats_free(after);
    return rc;
}

/* ---- verify ---- */

static void print_problem(const jc_entry_info *e, const char *problem, void *userdata)
{
    (void)userdata;
    if (e)
        say(stdout, "%.12s  %s %s: %s", e->key_hex, e->function, e->version, problem);
    else
        say(stdout, "file: %s", problem);
}

static int cmd_verify(jc_cache *cache, const opts *o)
{
    jc_verify_result r;
    bool repair = o->given & OPT_REPAIR;
    if (jc_cache_verify(cache, repair, print_problem, NULL, &r))
        return failed("verify");
    printf("checked %lld entr%s: ", (long long)r.checked, r.checked == 1 ? "y" : "ies");
    if (r.bad_entries)
        printf("%lld bad", (long long)r.bad_entries);
    else
        printf(r.file_problems || r.unreadable ? "none of them bad" : "all sound");
    if (repair)
        printf(", %lld removed", (long long)r.removed);
    putchar('\n');
    if (r.unreadable)
        printf("%lld entr%s could not be read at all (on damaged pages of the file)\n", (long long)r.unreadable,
               r.unreadable == 1 ? "y" : "ies");
    if (r.unchecked)
        printf("%lld entr%s no result checksum (written by jobcache 0.1.0; a writable open adds them)\n",
               (long long)r.unchecked, r.unchecked == 1 ? "y has" : "ies have");
    if (r.other_format)
        printf("%lld entr%s of another key format than %d (made by another release of jobcache): not\n"
               "damage and never used by this one; not checked%s; 'jobcache prune --other-formats'\n"
               "removes them\n",
               (long long)r.other_format, r.other_format == 1 ? "y is" : "ies are", JC_KEY_FORMAT_VERSION,
               repair ? ", kept" : "");
    jc_stats *st = jc_cache_stats(cache);
    if (st && st->wal_bytes > 0) {
        char wal[32];
        fmt_size(wal, sizeof wal, st->wal_bytes);
        say(stdout, "the cache has %s in %s-wal beside it, maybe not yet in the file itself: copy it", wal,
            st->path);
        say(stdout, "with 'jobcache backup', not cp");
    }
    jc_stats_free(st);
    if (r.file_problems)
        printf("SQLite's integrity check found %lld problem%s in the file\n",
               (long long)r.file_problems, r.file_problems == 1 ? "" : "s");
    return r.bad_entries || r.file_problems ? EXIT_PROBLEMS : EXIT_OK;
}

/* ---- export ---- */
/* ---- merge ---- */

static int cmd_merge(jc_cache *cache, const opts *o)
{
    jc_merge_result r;
    int rc = jc_cache_merge(cache, o->pos[0], &r);
    if (rc && r.added + r.replaced == 0)
        return failed("merge");
    char rejected[80] = "", other[80] = "";
    if (r.rejected)
        snprintf(rejected, sizeof rejected, ", rejected %lld (they fail 'jobcache verify')", (long long)r.rejected);
    if (r.other_format)
        snprintf(other, sizeof other, ", skipped %lld of another key format", (long long)r.other_format);
    say(stdout, "merged %s into %s: added %lld, replaced %lld, kept %lld%s%s", o->pos[0], jc_cache_path(cache),
        (long long)r.added, (long long)r.replaced, (long long)r.kept, rejected, other);
    if (rc)
        return failed("merge");
    return r.rejected ? EXIT_PROBLEMS : EXIT_OK;
}

/* ---- backup ---- */

static int cmd_backup(jc_cache *cache, const opts *o)
{
    if (jc_cache_backup(cache, o->pos[0]))
        return failed("backup");
    say(stdout, "backed up %s to %s", jc_cache_path(cache), o->pos[0]);
    return EXIT_OK;
}

/* ---- leases ---- */

const command builtin_vacuum = {
    "vacuum", cmd_vacuum, OPT_FILE, 0, 0, true, false, MODE_WRITE, NULL, "vacuum [FILE]",
    "Compact the file, giving the space of removed entries back to the system."};

const command builtin_verify = {
    "verify", cmd_verify, OPT_FILE | OPT_REPAIR, 0, 0, true, false, MODE_READ_UNLESS, NULL, "verify [FILE] [--repair]",
    "Run SQLite's integrity check, then check every entry: its key against its function,\n"
    "version and arguments, its result against its checksum, that its arguments and result\n"
    "decode, that its arguments are canonical. Exits 1 when it finds a problem; --repair\n"
    "removes the bad entries."};

const command builtin_merge = {
    "merge", cmd_merge, OPT_FILE, 1, 1, false, false, MODE_CREATE, NULL, "merge OTHER-FILE --file FILE",
    "Copy in the entries of another cache into FILE (or $JOBCACHE_PATH: it must be named;\n"
    "it is created if missing); on a clash the entry created later wins.\n"
    "Entries of OTHER-FILE that fail verify's checks are rejected (exit 1)."};

const command builtin_backup = {
    "backup", cmd_backup, OPT_FILE, 1, 1, true, true, MODE_READ, NULL, "backup [SRC] DEST",
    "Write a consistent copy of the cache to the new file DEST, while programs may go on\n"
    "using it (SQLite's online backup). Use it rather than cp: committed results may still\n"
    "sit in the -wal file beside the cache, which a copy of the file alone misses."};
