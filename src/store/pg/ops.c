/*
 * The PostgreSQL backend's table of operations (store_int.h): each entry
 * hands the handle, as the PostgreSQL store's own, to the function that
 * does the work.
 */
#include <stdio.h>
#include <stdlib.h>

#include "pg_int.h"

extern const jc__store_ops jc__pg_ops;

int jc__pg_store_open(const char *location, unsigned flags, int busy_timeout_ms, jc__store **out)
{
    if (!out)
        return jc__set_error(JC_EINVAL, "jc__store_open: NULL out");
    *out = NULL;
    int rc = jc__libpq_load(); /* the first server location of the process loads libpq (libpq.h) */
    if (rc)
        return rc;
    jc__pg *pg = NULL;
    rc = jc__pg_open(location, flags, busy_timeout_ms, &pg);
    if (pg)
        pg->base.ops = &jc__pg_ops;
    *out = pg ? &pg->base : NULL;
    return rc;
}

#define PG(st) ((jc__pg *)(st))
#define PGC(st) ((const jc__pg *)(st))

static void op_close(jc__store *st) { jc__pg_close(PG(st)); }
static const char *op_path(const jc__store *st) { return PGC(st)->name; }
static int op_begin(jc__store *st) { return jc__pg_begin(PG(st)); }
static int op_commit(jc__store *st) { return jc__pg_commit(PG(st)); }
static int op_rollback(jc__store *st) { return jc__pg_rollback(PG(st)); }
static int op_get(jc__store *st, const uint8_t key[JC__KEY_LEN], jc__hit *hit) { return jc__pg_get(PG(st), key, hit); }

static int op_get_many(jc__store *st, const uint8_t *const *keys, size_t n, jc__hit_fn on_hit, void *ctx)
{
    return jc__pg_get_many(PG(st), keys, n, on_hit, ctx);
}

static int op_get_checks(jc__store *st, const uint8_t *const *keys, size_t n, jc__hit_fn on_hit, void *ctx)
{
    return jc__pg_get_checks(PG(st), keys, n, on_hit, ctx);
}

static int op_read_begin(jc__store *st) { return jc__pg_read_begin(PG(st)); }
static void op_read_end(jc__store *st) { jc__pg_read_end(PG(st)); }
static bool op_reading(const jc__store *st) { return PGC(st)->reading; }

/* Another session's commits cannot be told apart from none here: every
 * call answers a new number, so that a caller never trusts what it found
 * before (run/pipeline.c). */
static int op_data_version(jc__store *st, int64_t *out)
{
    *out = ++PG(st)->version_seq;
    return 0;
}

static int op_put(jc__store *st, const jc__entry_in *e) { return jc__pg_put(PG(st), e); }

static int op_part_read(jc__store *st, const uint8_t key[JC__KEY_LEN], uint32_t part, void *dst, size_t len)
{
    return jc__pg_part_read(PG(st), key, part, dst, len);
}

static int op_params_put(jc__store *st, const char *function, const char *version, const char *names)
{
    return jc__pg_params_put(PG(st), function, version, names);
}

static int op_params_get(jc__store *st, const char *function, const char *version, char **names)
{
    return jc__pg_params_get(PG(st), function, version, names);
}

static int op_delete(jc__store *st, const uint8_t key[JC__KEY_LEN]) { return jc__pg_delete(PG(st), key); }

static int op_pager_new(jc__store *st, const jc__select *q, jc__pager **out)
{
    jc__pg_pager *p = NULL;
    int rc = jc__pg_pager_new(PG(st), q, out ? &p : NULL);
    if (out && p)
        *out = (jc__pager *)p; /* its first member (list.c) */
    return rc;
}

static int op_pager_next(jc__pager *p, const int64_t **rowids, size_t *n)
{
    return jc__pg_pager_next((jc__pg_pager *)p, rowids, n);
}

static void op_pager_free(jc__pager *p) { jc__pg_pager_free((jc__pg_pager *)p); }

static int op_row(jc__store *st, int64_t rowid, bool blobs, jc__row *row)
{
    return jc__pg_row(PG(st), rowid, blobs, row);
}

static int op_row_by_key(jc__store *st, const uint8_t key[JC__KEY_LEN], bool blobs, jc__row *row)
{
    return jc__pg_row_by_key(PG(st), key, blobs, row);
}

static int op_find_range(jc__store *st, const uint8_t lo[JC__KEY_LEN], const uint8_t hi[JC__KEY_LEN], jc__row *row)
{
    return jc__pg_find_range(PG(st), lo, hi, row);
}

static int op_put_row(jc__store *st, const jc__row *row) { return jc__pg_put_row(PG(st), row); }
static int op_max_rowid(jc__store *st, int64_t *out) { return jc__pg_max_rowid(PG(st), out); }
static int op_delete_rowid(jc__store *st, int64_t rowid) { return jc__pg_delete_rowid(PG(st), rowid); }

static int op_remove(jc__store *st, const jc__select *q, int64_t *count, int64_t *bytes)
{
    return jc__pg_remove(PG(st), q, count, bytes);
}

static int op_clamp_future(jc__store *st, int64_t *count) { return jc__pg_clamp_future(PG(st), count); }
static int op_zero_hits(jc__store *st, int64_t *count) { return jc__pg_zero_hits(PG(st), count); }

static int op_hit_log_add(jc__store *st, double at, int64_t hits, double saved, const void *blob, size_t len)
{
    return jc__pg_hit_log_add(PG(st), at, hits, saved, blob, len);
}

static int op_hit_log_fold(jc__store *st, int64_t *rows) { return jc__pg_hit_log_fold(PG(st), rows); }

static int op_hit_log_pending(jc__store *st, int64_t *rows, int64_t *hits, double *saved)
{
    return jc__pg_hit_log_pending(PG(st), rows, hits, saved);
}

static int op_hit_log_each(jc__store *st, jc__hit_log_fn fn, void *ctx) { return jc__pg_hit_log_each(PG(st), fn, ctx); }

static int op_by_check(jc__store *st, const uint8_t check[JC__CHECK_LEN], uint8_t key[JC__KEY_LEN])
{
    return jc__pg_by_check(PG(st), check, key);
}

static int op_users(jc__store *st, const uint8_t check[JC__CHECK_LEN], jc__user_fn fn, void *ctx)
{
    return jc__pg_users(PG(st), check, fn, ctx);
}

static int op_remove_stale(jc__store *st, int64_t *count, int64_t *bytes)
{
    return jc__pg_remove_stale(PG(st), count, bytes);
}

static int op_remove_lru(jc__store *st, int64_t keep_entries, int64_t keep_bytes, int64_t *count, int64_t *bytes)
{
    return jc__pg_remove_lru(PG(st), keep_entries, keep_bytes, count, bytes);
}

static int64_t op_disk_bytes(const jc__store *st) { return jc__pg_disk_bytes(PG(st)); }
static int op_size_get(jc__store *st, jc__store_size *out) { return jc__pg_size_get(PG(st), out); }

/* The server checkpoints its own write-ahead log. */
static int op_checkpoint(jc__store *st)
{
    (void)st;
    return 0;
}

static int op_evict(jc__store *st, int64_t target, int64_t max_count, int64_t *count, int64_t *bytes)
{
    return jc__pg_evict(PG(st), target, max_count, count, bytes);
}

static int op_count(jc__store *st, int64_t *out) { return jc__pg_count(PG(st), out); }

static bool op_want_created(jc__store *st, bool want)
{
    bool was = PG(st)->want_created;
    PG(st)->want_created = want;
    return was;
}

/* No -wal file: a REPEATABLE READ snapshot elsewhere holds back only the
 * server's vacuum, not this cache's size. */
static size_t op_wal_readers(const jc__store *st, long *pids, size_t cap)
{
    (void)st, (void)pids, (void)cap;
    return 0;
}

static int op_groups(jc__store *st, int (*fn)(void *ctx, const jc__group *g), void *ctx)
{
    return jc__pg_groups(PG(st), fn, ctx);
}

static int op_facts_get(jc__store *st, jc__store_facts *out) { return jc__pg_facts_get(PG(st), out); }

static int op_integrity(jc__store *st, void (*fn)(void *ctx, const char *problem), void *ctx)
{
    return jc__pg_integrity(PG(st), fn, ctx);
}

static int op_vacuum(jc__store *st) { return jc__pg_vacuum(PG(st)); }
static int op_backup(jc__store *st, const char *dest) { return jc__pg_backup(PG(st), dest); }

static int op_lease_owner(jc__store *st, const char *owner, double expires, bool create)
{
    return jc__pg_lease_owner(PG(st), owner, expires, create);
}

static int op_lease_add(jc__store *st, const char *owner, const uint8_t *keys, size_t n)
{
    return jc__pg_lease_add(PG(st), owner, keys, n);
}

static int op_leases(jc__store *st, int (*fn)(void *ctx, const jc__lease *l), void *ctx)
{
    return jc__pg_leases(PG(st), fn, ctx);
}

static int op_lease_set_keys(jc__store *st, int64_t id, const uint8_t *keys, size_t n)
{
    return jc__pg_lease_set_keys(PG(st), id, keys, n);
}

static int op_lease_drop(jc__store *st, const char *owner) { return jc__pg_lease_drop(PG(st), owner); }

static int op_run_add(jc__store *st, const jc__run_row *r, int64_t keep) { return jc__pg_run_add(PG(st), r, keep); }

static int op_runs(jc__store *st, int64_t last_n, bool failed_only, int (*fn)(void *ctx, const jc__run_row *r),
                   void *ctx)
{
    return jc__pg_runs(PG(st), last_n, failed_only, fn, ctx);
}

static int op_meta_get(jc__store *st, const char *name, char **value) { return jc__pg_meta_get(PG(st), name, value); }

static int op_meta_set(jc__store *st, const char *name, const char *value)
{
    return jc__pg_meta_set(PG(st), name, value);
}

static int op_schema(const jc__store *st) { return PGC(st)->schema; }
static bool op_in_transaction(const jc__store *st) { return PGC(st)->depth > 0; }
static uint64_t op_txn_id(const jc__store *st) { return PGC(st)->txn_current; }

/* The lock timeout of the session: ms, or the handle's busy timeout again
 * when negative (0: no wait at all, PostgreSQL's lock_timeout of 1 ms). */
static void op_busy_wait(jc__store *st, int ms)
{
    jc__pg *pg = PG(st);
    if (!jc__pg_usable(pg))
        return;
    pg->lock_ms = ms < 0 ? pg->busy_timeout_ms : ms == 0 ? 1 : ms;
    /* A setting made in a transaction is undone by its rollback: pg.c
     * makes it again after (and a new connection's session from the
     * start: jc__pg_lock_timeout). */
    jc__pg_lock_timeout(pg);
}

const jc__store_ops jc__pg_ops = {
    .name = "postgresql",
    .close = op_close,
    .path = op_path,
    .begin = op_begin,
    .commit = op_commit,
    .rollback = op_rollback,
    .get = op_get,
    .get_many = op_get_many,
    .get_checks = op_get_checks,
    .read_begin = op_read_begin,
    .read_end = op_read_end,
    .reading = op_reading,
    .data_version = op_data_version,
    .put = op_put,
    .part_read = op_part_read,
    .params_put = op_params_put,
    .params_get = op_params_get,
    .delete = op_delete,
    .pager_new = op_pager_new,
    .pager_next = op_pager_next,
    .pager_free = op_pager_free,
    .row = op_row,
    .row_by_key = op_row_by_key,
    .find_range = op_find_range,
    .put_row = op_put_row,
    .max_rowid = op_max_rowid,
    .delete_rowid = op_delete_rowid,
    .remove = op_remove,
    .clamp_future = op_clamp_future,
    .zero_hits = op_zero_hits,
    .hit_log_add = op_hit_log_add,
    .hit_log_fold = op_hit_log_fold,
    .hit_log_pending = op_hit_log_pending,
    .hit_log_each = op_hit_log_each,
    .by_check = op_by_check,
    .users = op_users,
    .remove_stale = op_remove_stale,
    .remove_lru = op_remove_lru,
    .disk_bytes = op_disk_bytes,
    .size_get = op_size_get,
    .checkpoint = op_checkpoint,
    .evict = op_evict,
    .count = op_count,
    .want_created = op_want_created,
    .wal_readers = op_wal_readers,
    .groups = op_groups,
    .facts_get = op_facts_get,
    .integrity = op_integrity,
    .vacuum = op_vacuum,
    .backup = op_backup,
    .lease_owner = op_lease_owner,
    .lease_add = op_lease_add,
    .leases = op_leases,
    .lease_set_keys = op_lease_set_keys,
    .lease_drop = op_lease_drop,
    .run_add = op_run_add,
    .runs = op_runs,
    .meta_get = op_meta_get,
    .meta_set = op_meta_set,
    .schema = op_schema,
    .in_transaction = op_in_transaction,
    .txn_id = op_txn_id,
    .busy_wait = op_busy_wait,
};
