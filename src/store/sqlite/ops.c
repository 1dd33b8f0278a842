/*
 * The SQLite backend's table of operations (store_int.h): each entry hands
 * the handle, as the SQLite store's own, to the function that does the work.
 */
#include "store/store_int.h"
#include "sqlite_int.h"

extern const jc__store_ops jc__sqlite_ops;

int jc__sqlite_store_open(const char *path, unsigned flags, int busy_timeout_ms, jc__store **out)
{
    jc__sqlite *st = NULL;
    int rc = jc__sqlite_open(path, flags, busy_timeout_ms, out ? &st : NULL);
    if (st)
        st->base.ops = &jc__sqlite_ops;
    if (out)
        *out = st ? &st->base : NULL;
    return rc;
}

#define SQ(st) ((jc__sqlite *)(st))
#define SQC(st) ((const jc__sqlite *)(st))

static void op_close(jc__store *st)
{
    jc__sqlite_close(SQ(st));
}

static const char *op_path(const jc__store *st)
{
    return jc__sqlite_path(SQC(st));
}

static int op_begin(jc__store *st)
{
    return jc__sqlite_begin(SQ(st));
}

static int op_commit(jc__store *st)
{
    return jc__sqlite_commit(SQ(st));
}

static int op_rollback(jc__store *st)
{
    return jc__sqlite_rollback(SQ(st));
}

static int op_get(jc__store *st, const uint8_t key[JC__KEY_LEN], jc__hit *hit)
{
    return jc__sqlite_get(SQ(st), key, hit);
}

static int op_get_many(jc__store *st, const uint8_t *const *keys, size_t n, jc__hit_fn on_hit, void *ctx)
{
    return jc__sqlite_get_many(SQ(st), keys, n, on_hit, ctx);
}

static int op_get_checks(jc__store *st, const uint8_t *const *keys, size_t n, jc__hit_fn on_hit, void *ctx)
{
    return jc__sqlite_get_checks(SQ(st), keys, n, on_hit, ctx);
}

static int op_read_begin(jc__store *st)
{
    return jc__sqlite_read_begin(SQ(st));
}

static void op_read_end(jc__store *st)
{
    jc__sqlite_read_end(SQ(st));
}

static bool op_reading(const jc__store *st)
{
    return SQC(st)->reading;
}

static int op_data_version(jc__store *st, int64_t *out)
{
    return jc__sqlite_data_version(SQ(st), out);
}

static int op_put(jc__store *st, const jc__entry_in *e)
{
    return jc__sqlite_put(SQ(st), e);
}

static int op_part_read(jc__store *st, const uint8_t key[JC__KEY_LEN], uint32_t part, void *dst, size_t len)
{
    return jc__sqlite_part_read(SQ(st), key, part, dst, len);
}

static int op_params_put(jc__store *st, const char *function, const char *version, const char *names)
{
    return jc__sqlite_params_put(SQ(st), function, version, names);
}

static int op_params_get(jc__store *st, const char *function, const char *version, char **names)
{
    return jc__sqlite_params_get(SQ(st), function, version, names);
}

static int op_delete(jc__store *st, const uint8_t key[JC__KEY_LEN])
{
    return jc__sqlite_delete(SQ(st), key);
}

static int op_pager_new(jc__store *st, const jc__select *q, jc__pager **out)
{
    jc__sqlite_pager *p = NULL;
    int rc = jc__sqlite_pager_new(SQ(st), q, out ? &p : NULL);
    if (out && p)
        *out = (jc__pager *)p; /* its first member (list.c) */
    return rc;
}

static int op_pager_next(jc__pager *p, const int64_t **rowids, size_t *n)
{
    return jc__sqlite_pager_next((jc__sqlite_pager *)p, rowids, n);
}

static void op_pager_free(jc__pager *p)
{
    jc__sqlite_pager_free((jc__sqlite_pager *)p);
}

static int op_row(jc__store *st, int64_t rowid, bool blobs, jc__row *row)
{
    return jc__sqlite_row(SQ(st), rowid, blobs, row);
}

static int op_row_by_key(jc__store *st, const uint8_t key[JC__KEY_LEN], bool blobs, jc__row *row)
{
    return jc__sqlite_row_by_key(SQ(st), key, blobs, row);
}

static int op_find_range(jc__store *st, const uint8_t lo[JC__KEY_LEN], const uint8_t hi[JC__KEY_LEN], jc__row *row)
{
    return jc__sqlite_find_range(SQ(st), lo, hi, row);
}

static int op_put_row(jc__store *st, const jc__row *row)
{
    return jc__sqlite_put_row(SQ(st), row);
}

static int op_max_rowid(jc__store *st, int64_t *out)
{
    return jc__sqlite_max_rowid(SQ(st), out);
}

static int op_delete_rowid(jc__store *st, int64_t rowid)
{
    return jc__sqlite_delete_rowid(SQ(st), rowid);
}

static int op_remove(jc__store *st, const jc__select *q, int64_t *count, int64_t *bytes)
{
    return jc__sqlite_remove(SQ(st), q, count, bytes);
}

static int op_clamp_future(jc__store *st, int64_t *count)
{
    return jc__sqlite_clamp_future(SQ(st), count);
}

static int op_by_check(jc__store *st, const uint8_t check[JC__CHECK_LEN], uint8_t key[JC__KEY_LEN])
{
    return jc__sqlite_by_check(SQ(st), check, key);
}

static int op_users(jc__store *st, const uint8_t check[JC__CHECK_LEN], jc__user_fn fn, void *ctx)
{
    return jc__sqlite_users(SQ(st), check, fn, ctx);
}

static int op_hit_log_add(jc__store *st, double at, int64_t hits, double saved, const void *blob, size_t len)
{
    return jc__sqlite_hit_log_add(SQ(st), at, hits, saved, blob, len);
}

static int op_hit_log_fold(jc__store *st, int64_t *rows)
{
    return jc__sqlite_hit_log_fold(SQ(st), rows);
}

static int op_hit_log_pending(jc__store *st, int64_t *rows, int64_t *hits, double *saved)
{
    return jc__sqlite_hit_log_pending(SQ(st), rows, hits, saved);
}

static int op_hit_log_each(jc__store *st, jc__hit_log_fn fn, void *ctx)
{
    return jc__sqlite_hit_log_each(SQ(st), fn, ctx);
}

static int op_zero_hits(jc__store *st, int64_t *count)
{
    return jc__sqlite_zero_hits(SQ(st), count);
}

static int op_remove_stale(jc__store *st, int64_t *count, int64_t *bytes)
{
    return jc__sqlite_remove_stale(SQ(st), count, bytes);
}

static int op_remove_lru(jc__store *st, int64_t keep_entries, int64_t keep_bytes, int64_t *count, int64_t *bytes)
{
    return jc__sqlite_remove_lru(SQ(st), keep_entries, keep_bytes, count, bytes);
}

static int64_t op_disk_bytes(const jc__store *st)
{
    return jc__sqlite_disk_bytes(SQC(st));
}

static int op_size_get(jc__store *st, jc__store_size *out)
{
    return jc__sqlite_size_get(SQ(st), out);
}

static int op_checkpoint(jc__store *st)
{
    return jc__sqlite_checkpoint(SQ(st));
}

static int op_evict(jc__store *st, int64_t target, int64_t max_count, int64_t *count, int64_t *bytes)
{
    return jc__sqlite_evict(SQ(st), target, max_count, count, bytes);
}

static size_t op_wal_readers(const jc__store *st, long *pids, size_t cap)
{
    return jc__sqlite_wal_readers(SQC(st), pids, cap);
}

static bool op_want_created(jc__store *st, bool want)
{
    return jc__sqlite_want_created(SQ(st), want);
}

static int op_count(jc__store *st, int64_t *out)
{
    return jc__sqlite_count(SQ(st), out);
}

static int op_groups(jc__store *st, int (*fn)(void *ctx, const jc__group *g), void *ctx)
{
    return jc__sqlite_groups(SQ(st), fn, ctx);
}

static int op_facts_get(jc__store *st, jc__store_facts *out)
{
    return jc__sqlite_facts_get(SQ(st), out);
}

static int op_integrity(jc__store *st, void (*fn)(void *ctx, const char *problem), void *ctx)
{
    return jc__sqlite_integrity(SQ(st), fn, ctx);
}

static int op_vacuum(jc__store *st)
{
    return jc__sqlite_vacuum(SQ(st));
}

static int op_backup(jc__store *st, const char *dest)
{
    return jc__sqlite_backup(SQ(st), dest);
}

static int op_lease_owner(jc__store *st, const char *owner, double expires, bool create)
{
    return jc__sqlite_lease_owner(SQ(st), owner, expires, create);
}

static int op_lease_add(jc__store *st, const char *owner, const uint8_t *keys, size_t n)
{
    return jc__sqlite_lease_add(SQ(st), owner, keys, n);
}

static int op_leases(jc__store *st, int (*fn)(void *ctx, const jc__lease *l), void *ctx)
{
    return jc__sqlite_leases(SQ(st), fn, ctx);
}

static int op_lease_set_keys(jc__store *st, int64_t id, const uint8_t *keys, size_t n)
{
    return jc__sqlite_lease_set_keys(SQ(st), id, keys, n);
}

static int op_lease_drop(jc__store *st, const char *owner)
{
    return jc__sqlite_lease_drop(SQ(st), owner);
}

static int op_run_add(jc__store *st, const jc__run_row *r, int64_t keep)
{
    return jc__sqlite_run_add(SQ(st), r, keep);
}

static int op_runs(jc__store *st, int64_t last_n, bool failed_only, int (*fn)(void *ctx, const jc__run_row *r), void *ctx)
{
    return jc__sqlite_runs(SQ(st), last_n, failed_only, fn, ctx);
}

static int op_meta_get(jc__store *st, const char *name, char **value)
{
    return jc__sqlite_meta_get(SQ(st), name, value);
}

static int op_meta_set(jc__store *st, const char *name, const char *value)
{
    return jc__sqlite_meta_set(SQ(st), name, value);
}

static int op_schema(const jc__store *st)
{
    return jc__sqlite_schema(SQC(st));
}

static bool op_in_transaction(const jc__store *st)
{
    return jc__sqlite_in_transaction(SQC(st));
}

static uint64_t op_txn_id(const jc__store *st)
{
    return SQC(st)->txn_current;
}

static void op_busy_wait(jc__store *st, int ms)
{
    jc__sq_busy_install(SQ(st), ms < 0 ? SQ(st)->busy_timeout_ms : ms);
}

const jc__store_ops jc__sqlite_ops = {
    .name = "sqlite",
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
