/*
 * Entries for inspection (cache/cache.h): reading rows, listing in pages,
 * figures of the file; and the two writes that inspection makes inside a
 * change of its own (jc__cache_write_begin/_end): a row copied in by merge,
 * a damaged row removed by verify. The handle is all these add: the store
 * does the work.
 */
#include "cache_int.h"

int jc__cache_row(jc_cache *cache, int64_t rowid, bool blobs, jc__row *row)
{
    return jc__store_row(cache->store, rowid, blobs, row);
}

int jc__cache_row_by_key(jc_cache *cache, const uint8_t key[JC__KEY_LEN], bool blobs, jc__row *row)
{
    return jc__store_row_by_key(cache->store, key, blobs, row);
}

int jc__cache_find_range(jc_cache *cache, const uint8_t lo[JC__KEY_LEN], const uint8_t hi[JC__KEY_LEN],
                         jc__row *row)
{
    return jc__store_find_range(cache->store, lo, hi, row);
}

bool jc__cache_snapshot_begin(jc_cache *cache)
{
    if (!cache->store || jc__store_reading(cache->store))
        return false;
    return jc__store_read_begin(cache->store) == 0 && jc__store_reading(cache->store);
}

void jc__cache_snapshot_end(jc_cache *cache, bool began)
{
    if (began)
        jc__store_read_end(cache->store);
}

int jc__cache_put_row(jc_cache *cache, const jc__row *row)
{
    return jc__store_put_row(cache->store, row);
}

int jc__cache_row_result(jc_cache *cache, const jc__row *row, const uint8_t *check, jc_value **out)
{
    return jc__cache_decode_stored(cache->store, row->key, row->result, row->result_len, check, out);
}

int jc__cache_put_row_value(jc_cache *cache, const jc__row *row, const jc_value *value)
{
    jc__split split;
    int rc = jc__encode_result_split(value, &split);
    if (rc)
        return rc;
    jc__row r = *row;
    r.result = split.stored.data;
    r.result_len = split.stored.len;
    r.parts = split.pieces;
    r.nparts = split.npieces;
    r.parts_check = split.check;
    r.compress_level = cache->compress_level;
    rc = jc__store_put_row(cache->store, &r);
    jc__split_free(&split);
    return rc;
}

int jc__cache_delete_rowid(jc_cache *cache, int64_t rowid)
{
    return jc__store_delete_rowid(cache->store, rowid);
}

int jc__cache_pager_new(jc_cache *cache, const jc__select *q, jc__pager **out)
{
    return jc__store_pager_new(cache->store, q, out);
}

int jc__cache_pager_next(jc__pager *p, const int64_t **rowids, size_t *n)
{
    return jc__store_pager_next(p, rowids, n);
}

void jc__cache_pager_free(jc__pager *p)
{
    jc__store_pager_free(p);
}

int jc__cache_max_rowid(jc_cache *cache, int64_t *out)
{
    return jc__store_max_rowid(cache->store, out);
}

int jc__cache_groups(jc_cache *cache, int (*fn)(void *ctx, const jc__group *g), void *ctx)
{
    return jc__store_groups(cache->store, fn, ctx);
}

int jc__cache_facts(jc_cache *cache, jc__store_facts *out)
{
    return jc__store_facts_get(cache->store, out);
}

bool jc__cache_want_created(jc_cache *cache, bool want)
{
    return jc__store_want_created(cache->store, want);
}

int64_t jc__cache_data_version(jc_cache *cache)
{
    int64_t v = -1;
    return cache->store && jc__store_data_version(cache->store, &v) == 0 ? v : -1;
}

size_t jc__cache_wal_readers(jc_cache *cache, long *pids, size_t cap)
{
    return jc__store_wal_readers(cache->store, pids, cap);
}

int jc__cache_integrity(jc_cache *cache, void (*fn)(void *ctx, const char *problem), void *ctx)
{
    return jc__store_integrity(cache->store, fn, ctx);
}
