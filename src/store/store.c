/*
 * store: the front of the store (store.h): every operation is dispatched to
 * the backend that opened the handle (store_int.h), so that the cache layer
 * above speaks to one interface whatever holds the entries.
 */
#include <stdbool.h>
#include <stddef.h>

#include "store/store_int.h"
#include "store/pg/pg.h"
#include "store/sqlite/sqlite.h"

/* What a call on no store returns: what every backend said before there
 * was a front. */
static int no_store(void)
{
    return jc__set_error(JC_EINVAL, "store: NULL store");
}

/* Opens the store at path: a libpq connection URI opens the PostgreSQL
 * store, anything else is the embedded SQLite file. */
int jc__store_open(const char *path, unsigned flags, int busy_timeout_ms, jc__store **out)
{
    if (jc__pg_is_location(path))
        return jc__pg_store_open(path, flags, busy_timeout_ms, out);
    return jc__sqlite_store_open(path, flags, busy_timeout_ms, out);
}

bool jc__store_is_server(const char *path)
{
    return jc__pg_is_location(path);
}

int jc__store_unlock_host(const char *path, char **host)
{
    if (jc__pg_is_location(path)) {
        if (host)
            *host = NULL;
        return jc__set_error(JC_EINVAL, "unlock-host: a PostgreSQL cache has no host records (many hosts share it; "
                             "only a cache file on a network file system has them)");
    }
    return jc__sqlite_unlock_host(path, host);
}

void jc__store_close(jc__store *st)
{
    if (!st)
        return;
    st->ops->close(st);
}

const char *jc__store_path(const jc__store *st)
{
    if (!st)
        return NULL;
    return st->ops->path(st);
}

int jc__store_begin(jc__store *st)
{
    if (!st)
        return no_store();
    return st->ops->begin(st);
}

int jc__store_commit(jc__store *st)
{
    if (!st)
        return no_store();
    return st->ops->commit(st);
}

int jc__store_rollback(jc__store *st)
{
    if (!st)
        return no_store();
    return st->ops->rollback(st);
}

int jc__store_get(jc__store *st, const uint8_t key[JC__KEY_LEN], jc__hit *hit)
{
    if (!st)
        return no_store();
    return st->ops->get(st, key, hit);
}

int jc__store_get_many(jc__store *st, const uint8_t *const *keys, size_t n, jc__hit_fn on_hit, void *ctx)
{
    if (!st)
        return no_store();
    return st->ops->get_many(st, keys, n, on_hit, ctx);
}

int jc__store_get_checks(jc__store *st, const uint8_t *const *keys, size_t n, jc__hit_fn on_hit, void *ctx)
{
    if (!st)
        return no_store();
    return st->ops->get_checks(st, keys, n, on_hit, ctx);
}

int jc__store_read_begin(jc__store *st)
{
    if (!st)
        return no_store();
    return st->ops->read_begin(st);
}

bool jc__store_reading(const jc__store *st)
{
    return st && st->ops->reading(st);
}

void jc__store_read_end(jc__store *st)
{
    if (!st)
        return;
    st->ops->read_end(st);
}

int jc__store_data_version(jc__store *st, int64_t *out)
{
    if (!st)
        return no_store();
    return st->ops->data_version(st, out);
}

int jc__store_put(jc__store *st, const jc__entry_in *e)
{
    if (!st)
        return no_store();
    return st->ops->put(st, e);
}

int jc__store_part_read(jc__store *st, const uint8_t key[JC__KEY_LEN], uint32_t part, void *dst, size_t len)
{
    if (!st)
        return no_store();
    return st->ops->part_read(st, key, part, dst, len);
}

int jc__store_params_put(jc__store *st, const char *function, const char *version, const char *names)
{
    if (!st)
        return no_store();
    return st->ops->params_put(st, function, version, names);
}

int jc__store_params_get(jc__store *st, const char *function, const char *version, char **names)
{
    if (!st) {
        *names = NULL;
        return no_store();
    }
    return st->ops->params_get(st, function, version, names);
}

int jc__store_delete(jc__store *st, const uint8_t key[JC__KEY_LEN])
{
    if (!st)
        return no_store();
    return st->ops->delete(st, key);
}

int jc__store_pager_new(jc__store *st, const jc__select *q, jc__pager **out)
{
    if (!st)
        return no_store();
    return st->ops->pager_new(st, q, out);
}

int jc__store_pager_next(jc__pager *p, const int64_t **rowids, size_t *n)
{
    if (!p)
        return no_store();
    return p->store->ops->pager_next(p, rowids, n);
}

void jc__store_pager_free(jc__pager *p)
{
    if (!p)
        return;
    p->store->ops->pager_free(p);
}

int jc__store_row(jc__store *st, int64_t rowid, bool blobs, jc__row *row)
{
    if (!st)
        return no_store();
    return st->ops->row(st, rowid, blobs, row);
}

int jc__store_row_by_key(jc__store *st, const uint8_t key[JC__KEY_LEN], bool blobs, jc__row *row)
{
    if (!st)
        return no_store();
    return st->ops->row_by_key(st, key, blobs, row);
}

int jc__store_find_range(jc__store *st, const uint8_t lo[JC__KEY_LEN], const uint8_t hi[JC__KEY_LEN], jc__row *row)
{
    if (!st)
        return no_store();
    return st->ops->find_range(st, lo, hi, row);
}

int jc__store_put_row(jc__store *st, const jc__row *row)
{
    if (!st)
        return no_store();
    return st->ops->put_row(st, row);
}

int jc__store_max_rowid(jc__store *st, int64_t *out)
{
    if (!st)
        return no_store();
    return st->ops->max_rowid(st, out);
}

int jc__store_delete_rowid(jc__store *st, int64_t rowid)
{
    if (!st)
        return no_store();
    return st->ops->delete_rowid(st, rowid);
}

int jc__store_remove(jc__store *st, const jc__select *q, int64_t *count, int64_t *bytes)
{
    if (!st)
        return no_store();
    return st->ops->remove(st, q, count, bytes);
}

int jc__store_clamp_future(jc__store *st, int64_t *count)
{
    if (!st)
        return no_store();
    return st->ops->clamp_future(st, count);
}

int jc__store_by_check(jc__store *st, const uint8_t check[JC__CHECK_LEN], uint8_t key[JC__KEY_LEN])
{
    if (!st)
        return no_store();
    return st->ops->by_check(st, check, key);
}

int jc__store_users(jc__store *st, const uint8_t check[JC__CHECK_LEN], jc__user_fn fn, void *ctx)
{
    if (!st)
        return no_store();
    return st->ops->users(st, check, fn, ctx);
}

int jc__store_hit_log_add(jc__store *st, double at, int64_t hits, double saved, const void *blob, size_t len)
{
    if (!st)
        return no_store();
    return st->ops->hit_log_add(st, at, hits, saved, blob, len);
}

int jc__store_hit_log_fold(jc__store *st, int64_t *rows)
{
    if (!st)
        return no_store();
    return st->ops->hit_log_fold(st, rows);
}

int jc__store_hit_log_pending(jc__store *st, int64_t *rows, int64_t *hits, double *saved)
{
    if (!st)
        return no_store();
    return st->ops->hit_log_pending(st, rows, hits, saved);
}

int jc__store_hit_log_each(jc__store *st, jc__hit_log_fn fn, void *ctx)
{
    if (!st)
        return no_store();
    return st->ops->hit_log_each(st, fn, ctx);
}

int jc__store_zero_hits(jc__store *st, int64_t *count)
{
    if (!st)
        return no_store();
    return st->ops->zero_hits(st, count);
}

int jc__store_remove_stale(jc__store *st, int64_t *count, int64_t *bytes)
{
    if (!st)
        return no_store();
    return st->ops->remove_stale(st, count, bytes);
}

int jc__store_remove_lru(jc__store *st, int64_t keep_entries, int64_t keep_bytes, int64_t *count, int64_t *bytes)
{
    if (!st)
        return no_store();
    return st->ops->remove_lru(st, keep_entries, keep_bytes, count, bytes);
}

int64_t jc__store_disk_bytes(const jc__store *st)
{
    if (!st)
        return 0;
    return st->ops->disk_bytes(st);
}

int jc__store_size_get(jc__store *st, jc__store_size *out)
{
    if (!st)
        return no_store();
    return st->ops->size_get(st, out);
}

int jc__store_checkpoint(jc__store *st)
{
    if (!st)
        return no_store();
    return st->ops->checkpoint(st);
}

size_t jc__store_wal_readers(const jc__store *st, long *pids, size_t cap)
{
    return st ? st->ops->wal_readers(st, pids, cap) : 0;
}

bool jc__store_want_created(jc__store *st, bool want)
{
    return st ? st->ops->want_created(st, want) : false;
}

int jc__store_count(jc__store *st, int64_t *out)
{
    if (!st)
        return no_store();
    return st->ops->count(st, out);
}

int jc__store_evict(jc__store *st, int64_t target, int64_t max_count, int64_t *count, int64_t *bytes)
{
    if (!st)
        return no_store();
    return st->ops->evict(st, target, max_count, count, bytes);
}

int jc__store_groups(jc__store *st, int (*fn)(void *ctx, const jc__group *g), void *ctx)
{
    if (!st)
        return no_store();
    return st->ops->groups(st, fn, ctx);
}

int jc__store_facts_get(jc__store *st, jc__store_facts *out)
{
    if (!st)
        return no_store();
    return st->ops->facts_get(st, out);
}

int jc__store_integrity(jc__store *st, void (*fn)(void *ctx, const char *problem), void *ctx)
{
    if (!st)
        return no_store();
    return st->ops->integrity(st, fn, ctx);
}

int jc__store_vacuum(jc__store *st)
{
    if (!st)
        return no_store();
    return st->ops->vacuum(st);
}

int jc__store_backup(jc__store *st, const char *dest)
{
    if (!st)
        return no_store();
    return st->ops->backup(st, dest);
}

int jc__store_lease_owner(jc__store *st, const char *owner, double expires, bool create)
{
    if (!st)
        return no_store();
    return st->ops->lease_owner(st, owner, expires, create);
}

int jc__store_lease_add(jc__store *st, const char *owner, const uint8_t *keys, size_t n)
{
    if (!st)
        return no_store();
    return st->ops->lease_add(st, owner, keys, n);
}

int jc__store_leases(jc__store *st, int (*fn)(void *ctx, const jc__lease *l), void *ctx)
{
    if (!st)
        return no_store();
    return st->ops->leases(st, fn, ctx);
}

int jc__store_lease_set_keys(jc__store *st, int64_t id, const uint8_t *keys, size_t n)
{
    if (!st)
        return no_store();
    return st->ops->lease_set_keys(st, id, keys, n);
}

int jc__store_lease_drop(jc__store *st, const char *owner)
{
    if (!st)
        return no_store();
    return st->ops->lease_drop(st, owner);
}

int jc__store_run_add(jc__store *st, const jc__run_row *r, int64_t keep)
{
    if (!st)
        return no_store();
    return st->ops->run_add(st, r, keep);
}

int jc__store_runs(jc__store *st, int64_t last_n, bool failed_only, int (*fn)(void *ctx, const jc__run_row *r), void *ctx)
{
    if (!st)
        return no_store();
    return st->ops->runs(st, last_n, failed_only, fn, ctx);
}

int jc__store_meta_get(jc__store *st, const char *name, char **value)
{
    if (!st) {
        *value = NULL;
        return no_store();
    }
    return st->ops->meta_get(st, name, value);
}

int jc__store_meta_set(jc__store *st, const char *name, const char *value)
{
    if (!st)
        return no_store();
    return st->ops->meta_set(st, name, value);
}

int jc__store_schema(const jc__store *st)
{
    if (!st)
        return 0;
    return st->ops->schema(st);
}

uint64_t jc__store_txn_id(const jc__store *st)
{
    return st ? st->ops->txn_id(st) : 0;
}

bool jc__store_in_transaction(const jc__store *st)
{
    if (!st)
        return false;
    return st->ops->in_transaction(st);
}

void jc__store_busy_wait(jc__store *st, int ms)
{
    if (!st)
        return;
    st->ops->busy_wait(st, ms);
}
