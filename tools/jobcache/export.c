/*
 * jobcache export: the entries as JSON Lines.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jobcache.h>

#include "builtin.h"
#include "json.h"
#include "table.h"
#include "text.h"

static int cmd_export(jc_cache *cache, const opts *o)
{
    jc_filter f = {.function = o->function, .version = o->version};
    jc_entry_info info;
    bool ok = true, bad = false;
    int rc = 0;
    jc_entries *it = jc_entries_query(cache, &f);
    if (!it)
        return failed("export");
    while (ok && (rc = jc_entries_next(it, &info)) == 1) {
        entry e;
        ok = entry_load(cache, &info, &e);
        if (ok && (ok = json_out(stdout, entry_json(&e), true) == 0)) {
            putchar('\n');
            bad |= e.error != NULL;
        }
        entry_free(&e);
    }
    jc_entries_free(it);
    if (!ok)
        return out_of_memory("export");
    if (rc < 0)
        return failed("export");
    if (bad)
        fprintf(stderr, "jobcache export: some entries do not decode (their \"error\" says why); "
                        "see 'jobcache verify'\n");
    return bad ? EXIT_PROBLEMS : EXIT_OK;
}


const command builtin_export = {
    "export", cmd_export, OPT_FILE | OPT_FUNCTION | OPT_VERSION, 0, 0, true, false, MODE_READ, NULL,
    "export [FILE] [--function F] [--version V]",
    "Write the entries as JSON Lines, one entry a line, with decoded arguments and result."};
