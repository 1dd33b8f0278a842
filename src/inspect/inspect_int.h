/*
 * inspect_int.h: what the files of inspection share, and only they include.
 */
#ifndef JC_INSPECT_INT_H
#define JC_INSPECT_INT_H

#include "jc_internal.h"
#include "cache/cache.h"

/*
 * inspect: looking into and tending a cache, for programs and for the
 * jobcache command (jobcache.h, "Inspecting and tending a cache").
 *
 * The store does every SQL statement; this file decides what to select,
 * turns stored rows into jc_entry_info and values, and checks entries.
 *
 * Invariants kept here:
 *
 *  - Every change is one transaction of the store (jc__cache_write_begin/_end),
 *    which first writes the hits the cache has queued: an entry just used
 *    then counts as used, and no queued hit lands on an entry that a later
 *    insert gave the same rowid.
 *  - A dry run makes its changes in a transaction that it rolls back, so
 *    that it reports exactly what the real run would remove.
 *  - Nothing read from a file is trusted blindly: an entry is checked
 *    (jc__i_check_row: its key against its function, version and arguments,
 *    canonical arguments, a result that decodes, its sizes) before merge
 *    copies it, and a bad one is reported, never a crash. Its result itself
 *    cannot be checked: it is taken as the other cache computed it. Its
 *    times are clamped to now.
 */
#include "cache/cache.h"

_Static_assert(JC_KEY_SIZE == JC__KEY_LEN, "the public and the internal key sizes agree");

/* Entries merged per transaction: a run sharing the file waits for one
 * batch at most, far below its busy timeout. */
enum { MERGE_BATCH = 500 };

/* Shared between the files of this folder (each defined in one of them). */
bool jc__i_bad_age(double age);
int jc__i_check_row(jc_cache *from, const jc__row *r, char *problem, size_t cap);
void jc__i_free_argv(jc_value **argv, size_t argc);
void jc__i_info_from_row(const jc__row *r, jc_entry_info *info);
/* merge.c: a backup of a cache on a server, copied into a new file at
 * dest (jc_cache_backup). */
int jc__i_copy_into(jc_cache *cache, const char *dest);
int jc__i_prepare_dry_run(jc_cache *cache, const char *what);
void jc__i_set_out(int64_t *p, int64_t v);
int jc__i_to_select(const jc_filter *f, jc__select *q, const char *what);
int jc__i_usable(const jc_cache *cache, const char *what);
int jc__i_writable(const jc_cache *cache, const char *what);

#endif
