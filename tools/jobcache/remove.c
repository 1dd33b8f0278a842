/*
 * jobcache rm, prune and clear: removing entries.
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

static void report_removed(bool dry_run, int64_t count, int64_t bytes)
{
    char size[16];
    fmt_size(size, sizeof size, bytes);
    printf("%s %lld entr%s (%s)\n", dry_run ? "would remove" : "removed", (long long)count,
           count == 1 ? "y" : "ies", size);
}

/* Removes the entries of the key prefixes: all are resolved first, so that
 * a bad prefix removes nothing. */
static int rm_keys(jc_cache *cache, const opts *o)
{
    bool dry = o->given & OPT_DRY_RUN;
    int64_t count = 0, bytes = 0;
    jc_entry_info *found = calloc(o->npos, sizeof *found);
    if (!found)
        return out_of_memory("rm");
    for (size_t i = 0; i < o->npos; i++) {
        if (jc_entry_find(cache, o->pos[i], &found[i])) {
            free(found);
            return prefix_failed(cache, "rm");
        }
    }
    int rc = EXIT_OK;
    for (size_t i = 0; i < o->npos && rc == EXIT_OK; i++) {
        bool again = false; /* two prefixes of one key */
        for (size_t j = 0; j < i; j++)
            again |= memcmp(found[j].key, found[i].key, JC_KEY_SIZE) == 0;
        if (again)
            continue;
        if (!dry && jc_entry_remove(cache, found[i].key))
            rc = failed("rm");
        count++;
        bytes = sat_add(bytes, entry_size(&found[i]));
    }
    free(found);
    if (rc == EXIT_OK)
        report_removed(dry, count, bytes);
    return rc;
}

/* rm --downstream KEY...: each entry with every entry computed from it. */
static int rm_downstream(jc_cache *cache, const opts *o)
{
    bool dry = o->given & OPT_DRY_RUN;
    int64_t count = 0, bytes = 0;
    for (size_t i = 0; i < o->npos; i++) {
        jc_entry_info info;
        int64_t c = 0, b = 0;
        if (jc_entry_find(cache, o->pos[i], &info))
            return prefix_failed(cache, "rm");
        if (jc_cache_remove_downstream(cache, info.key, dry, &c, &b))
            return failed("rm");
        count += c;
        bytes = sat_add(bytes, b);
    }
    report_removed(dry, count, bytes);
    return EXIT_OK;
}

static int check_rm(const command *c, const opts *o)
{
    if ((o->given & OPT_DOWNSTREAM) && !o->npos)
        return usage_error(c, "--downstream takes key prefixes");
    if (o->npos && (o->given & OPT_FUNCTION))
        return usage_error(c, "give key prefixes or --function, not both");
    if (!o->npos && !(o->given & OPT_FUNCTION))
        return usage_error(c, "give key prefixes, or --function F");
    return -1;
}

static int cmd_rm(jc_cache *cache, const opts *o)
{
    if (o->given & OPT_DOWNSTREAM)
        return rm_downstream(cache, o);
    if (o->npos)
        return rm_keys(cache, o);
    jc_filter f = {.function = o->function, .version = o->version};
    int64_t count, bytes;
    if (jc_cache_remove_matching(cache, &f, o->given & OPT_DRY_RUN, &count, &bytes))
        return failed("rm");
    report_removed(o->given & OPT_DRY_RUN, count, bytes);
    return EXIT_OK;
}

static int check_prune(const command *c, const opts *o)
{
    if (!(o->given & (OPT_MAX_SIZE | OPT_MAX_ENTRIES | OPT_OLDER | OPT_STALE | OPT_MAX_PAYLOAD | OPT_OTHER_FORMATS)))
        return usage_error(c, "say what to prune: --max-size, --max-payload, --max-entries, --older-than, "
                              "--stale-versions or --other-formats");
    return -1;
}

static int cmd_prune(jc_cache *cache, const opts *o)
{
    jc_prune_options p = {.stale_versions = (o->given & OPT_STALE) != 0,
                          .older_than = o->older_than,
                          .max_entries = o->max_entries,
                          .max_size = o->max_size,
                          .max_payload = o->max_payload,
                          .other_formats = (o->given & OPT_OTHER_FORMATS) != 0};
    bool dry = o->given & OPT_DRY_RUN;
    int64_t count, bytes;
    if (jc_cache_prune(cache, &p, dry, &count, &bytes))
        return failed("prune");
    report_removed(dry, count, bytes);
    if (!dry && count && !p.max_size)
        printf("the file keeps its size for new entries; 'jobcache vacuum' gives the space back\n");
    return EXIT_OK;
}

static int check_clear(const command *c, const opts *o)
{
    if (!(o->given & OPT_YES))
        return usage_error(c, "this removes every entry of the cache; add --yes");
    return -1;
}

static int cmd_clear(jc_cache *cache, const opts *o)
{
    (void)o;
    int64_t count;
    if (jc_cache_clear(cache, &count))
        return failed("clear");
    printf("removed %lld entr%s\n", (long long)count, count == 1 ? "y" : "ies");
    return EXIT_OK;
}

const command builtin_rm = {
    "rm", cmd_rm, OPT_FILE | OPT_FUNCTION | OPT_VERSION | OPT_DRY_RUN | OPT_DOWNSTREAM, 0, SIZE_MAX, false, false,
    MODE_WRITE, check_rm, "rm KEY-PREFIX... [--downstream] | rm --function F [--version V]  [--dry-run]",
    "Remove the entries with the given key prefixes, or every entry of a function\n"
    "(of one version of it), and say how many. With --downstream, also every entry\n"
    "computed from each one's result, and from theirs (pipelines: jc_use)."};

const command builtin_prune = {
    "prune", cmd_prune,
    OPT_FILE | OPT_MAX_SIZE | OPT_MAX_ENTRIES | OPT_OLDER | OPT_STALE | OPT_DRY_RUN | OPT_MAX_PAYLOAD |
        OPT_OTHER_FORMATS,
    0, 0, true, false, MODE_WRITE, check_prune,
    "prune [FILE] [--other-formats] [--stale-versions] [--older-than AGE] [--max-entries N]\n"
    "      [--max-payload SIZE] [--max-size SIZE]",
    "Remove entries: those of another key format, every version of a function but the one\n"
    "used last, entries not used for AGE, least recently used entries beyond N entries or SIZE\n"
    "bytes of payload, then least recently used entries until the file on disk takes at\n"
    "most SIZE (what max_size bounds; the space is given back). The rules apply in this order."};

const command builtin_clear = {
    "clear", cmd_clear, OPT_FILE | OPT_YES, 0, 0, true, false, MODE_WRITE, check_clear, "clear [FILE] --yes",
    "Remove every entry."};
