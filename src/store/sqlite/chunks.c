/*
 * The parts of large results, in chunks (schema 11; docs/format.md, "Large
 * results"): written straight from the value's memory, compressed with zstd
 * where a trial on a sample saves a tenth, and read with SQLite's blob I/O
 * straight into the memory of the value being decoded.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "store/parts/parts.h"
#include "store/store.h"
#include "sqlite_int.h"

#define CHUNK_RAW JC__CHUNK_RAW

/* Whether the chunks table may hold rows, asked once per write transaction
 * (and at every write outside one): a cache that never stored a result in
 * pieces pays nothing for them when it stores or removes entries. (TEMP
 * triggers on entries did the same with no code at each removal, and made
 * every insert 9,000 instructions dearer: with a trigger on a table, SQLite
 * journals each statement's pages to roll it back alone.) */
bool jc__sq_chunks_any(jc__sqlite *st)
{
    if (st->schema < 11)
        return false;
    if (st->txn_current && st->chunks_txn == st->txn_current)
        return st->chunks_any;
    bool any = true; /* when it cannot tell */
    if (jc__sq_lazy(st, &st->chunk_any, "SELECT EXISTS (SELECT 1 FROM chunks)") == 0) {
        if (sqlite3_step(st->chunk_any) == SQLITE_ROW)
            any = sqlite3_column_int(st->chunk_any, 0) != 0;
        sqlite3_reset(st->chunk_any);
    }
    st->chunks_txn = st->txn_current;
    st->chunks_any = any;
    return any;
}

int jc__sq_guard(jc__sqlite *st, int rc)
{
    if (!rc && !st->guarded) {
        int r = jc__sq_lazy(st, &st->guard_begin, "SAVEPOINT jc_put");
        if (!r)
            r = jc__sq_step_done(st, st->guard_begin, "storing an entry");
        st->guarded = r == 0;
        return r;
    }
    if (!st->guarded)
        return rc;
    st->guarded = false;
    if (rc) {
        /* What SQLite already rolled back by itself has no savepoint left:
         * the failure is what is reported either way. */
        sqlite3_exec(st->db, "ROLLBACK TO jc_put; RELEASE jc_put", NULL, NULL, NULL);
        return rc;
    }
    int r = jc__sq_lazy(st, &st->guard_end, "RELEASE jc_put");
    return r ? r : jc__sq_step_done(st, st->guard_end, "storing an entry");
}

int jc__sq_chunks_drop_key(jc__sqlite *st, const uint8_t key[JC__KEY_LEN])
{
    if (!jc__sq_chunks_any(st))
        return 0;
    int rc = jc__sq_lazy(st, &st->chunk_del, "DELETE FROM chunks WHERE key = ?1");
    if (rc)
        return rc;
    sqlite3_bind_blob(st->chunk_del, 1, key, JC__KEY_LEN, SQLITE_STATIC);
    return jc__sq_step_done(st, st->chunk_del, "removing the parts of a result");
}

int jc__sq_chunks_drop_rowid(jc__sqlite *st, int64_t rowid)
{
    if (!jc__sq_chunks_any(st))
        return 0;
    sqlite3_stmt *s = NULL;
    int rc = jc__sq_prepare(st, "DELETE FROM chunks WHERE key = (SELECT key FROM entries WHERE rowid = ?1)", &s);
    if (!rc) {
        sqlite3_bind_int64(s, 1, rowid);
        rc = jc__sq_step_done(st, s, "removing the parts of a result");
    }
    sqlite3_finalize(s);
    return rc;
}

static int put_chunk(jc__sqlite *st, const uint8_t key[JC__KEY_LEN], uint32_t part, int64_t seq, int codec,
                     size_t raw, const void *data, size_t len)
{
    sqlite3_stmt *s = st->chunk_put;
    sqlite3_bind_blob(s, 1, key, JC__KEY_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, part);
    sqlite3_bind_int64(s, 3, seq);
    sqlite3_bind_int(s, 4, codec);
    sqlite3_bind_int64(s, 5, (sqlite3_int64)raw);
    int rc = len ? sqlite3_bind_blob64(s, 6, data, len, SQLITE_STATIC) : sqlite3_bind_zeroblob(s, 6, 0);
    if (rc != SQLITE_OK) {
        sqlite3_reset(s);
        return jc__sq_store_error(st, rc, "storing a part of a result");
    }
    return jc__sq_step_done(st, s, "storing a part of a result");
}

int jc__sqlite_put_pieces(jc__sqlite *st, const uint8_t key[JC__KEY_LEN], const jc__part *pieces, size_t n,
                          int level, int64_t *stored)
{
    *stored = 0;
    st->chunks_txn = st->txn_current;
    st->chunks_any = true;
    int rc = jc__sq_lazy(st, &st->chunk_put,
                         "INSERT INTO chunks (key, part, seq, codec, size, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    if (rc)
        return rc;
    ZSTD_CCtx *cc = NULL;
    void *z = NULL;
    size_t zcap = ZSTD_compressBound(CHUNK_RAW);
    if (level > 0) {
        cc = ZSTD_createCCtx();
        z = malloc(zcap);
        if (!cc || !z) {
            ZSTD_freeCCtx(cc);
            free(z);
            return jc__set_error(JC_ENOMEM, "cache file '%s': out of memory compressing a result", st->path);
        }
    }
    for (size_t i = 0; i < n && !rc; i++) {
        const unsigned char *p = pieces[i].data;
        size_t left = pieces[i].len;
        bool squeeze = cc && jc__part_worth_compressing(cc, &pieces[i], level, z, zcap);
        int64_t seq = 0;
        do {
            size_t raw = left < CHUNK_RAW ? left : CHUNK_RAW;
            size_t zl = squeeze ? ZSTD_compressCCtx(cc, z, zcap, p, raw, level) : 0;
            /* Compressed only where it saves at all: the chunk says which. */
            if (squeeze && !ZSTD_isError(zl) && zl < raw) {
                rc = put_chunk(st, key, (uint32_t)i, seq, 1, raw, z, zl);
                *stored += (int64_t)zl;
            } else {
                rc = put_chunk(st, key, (uint32_t)i, seq, 0, raw, p, raw);
                *stored += (int64_t)raw;
            }
            p += raw;
            left -= raw;
            seq++;
        } while (left && !rc);
    }
    ZSTD_freeCCtx(cc);
    free(z);
    return rc;
}

int jc__sq_set_result_size(jc__sqlite *st, const uint8_t key[JC__KEY_LEN], int64_t size)
{
    /* result_size: what the result takes in the file, parts included. */
    int rc = jc__sq_lazy(st, &st->chunk_size, "UPDATE entries SET result_size = ?2 WHERE key = ?1");
    if (rc)
        return rc;
    sqlite3_bind_blob(st->chunk_size, 1, key, JC__KEY_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st->chunk_size, 2, (sqlite3_int64)size);
    return jc__sq_step_done(st, st->chunk_size, "storing an entry");
}

static int damaged(const jc__sqlite *st, uint32_t part, const char *why)
{
    return jc__set_error(JC_EDECODE, "cache file '%s': part %u of a result is damaged: %s", st->path, part, why);
}

/* The statement *slot (prepared on first use) bound to key and part. */
static int part_statement(jc__sqlite *st, sqlite3_stmt **slot, const char *sql, const uint8_t key[JC__KEY_LEN],
                          uint32_t part, sqlite3_stmt **out)
{
    int rc = jc__sq_lazy(st, slot, sql);
    if (rc)
        return rc;
    sqlite3_bind_blob(*slot, 1, key, JC__KEY_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(*slot, 2, part);
    *out = *slot;
    return 0;
}

/* Before the part's memory is taken: whether its chunks add up to len,
 * none over CHUNK_RAW. */
static int part_length_sound(jc__sqlite *st, const uint8_t key[JC__KEY_LEN], uint32_t part, size_t len)
{
    sqlite3_stmt *s = NULL;
    int rc = part_statement(st, &st->chunk_sum,
                            "SELECT count(*), total(size), max(size), min(size) FROM chunks WHERE key = ?1 AND part = ?2",
                            key, part, &s);
    if (rc)
        return rc;
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        int64_t n = sqlite3_column_int64(s, 0);
        double total = sqlite3_column_double(s, 1);
        int64_t most = sqlite3_column_int64(s, 2), least = sqlite3_column_int64(s, 3);
        if ((n == 0 && len) || total != (double)len || most > (int64_t)CHUNK_RAW || least < 0)
            rc = damaged(st, part, n ? "its chunks hold another length than its reference says" : "its chunks are missing");
    } else {
        rc = jc__sq_store_error(st, step, "reading a part of a result");
    }
    sqlite3_reset(s);
    return rc;
}

int jc__sqlite_part_read(jc__sqlite *st, const uint8_t key[JC__KEY_LEN], uint32_t part, void *dst, size_t len)
{
    int rc = jc__sq_store_enter(st);
    if (rc)
        return rc;
    if (st->schema < 11)
        return damaged(st, part, "the file has no chunks table");
    if (!dst)
        return part_length_sound(st, key, part, len);
    sqlite3_stmt *s = NULL;
    rc = part_statement(st, &st->chunk_list,
                        "SELECT rowid, seq, codec, size, length(data), typeof(data) = 'blob' FROM chunks"
                        " WHERE key = ?1 AND part = ?2 ORDER BY seq",
                        key, part, &s);
    if (rc)
        return rc;
    sqlite3_blob *blob = NULL;
    void *z = NULL;
    size_t zcap = 0, off = 0;
    int64_t want = 0;
    int step = SQLITE_DONE;
    while (!rc && (step = sqlite3_step(s)) == SQLITE_ROW) {
        sqlite3_int64 rowid = sqlite3_column_int64(s, 0);
        int64_t seq = sqlite3_column_int64(s, 1);
        int codec = sqlite3_column_int(s, 2);
        int64_t raw = sqlite3_column_int64(s, 3);
        int64_t stored = sqlite3_column_int64(s, 4);
        if (seq != want++ || (codec != 0 && codec != 1) || raw < 0 || raw > (int64_t)CHUNK_RAW ||
            (uint64_t)raw > len - off ||
            !sqlite3_column_int(s, 5) || (codec == 0 && stored != raw) || stored < 0) {
            rc = damaged(st, part, "its chunks are missing, out of order or of the wrong size");
            break;
        }
        int b = blob ? sqlite3_blob_reopen(blob, rowid)
                     : sqlite3_blob_open(st->db, "main", "chunks", "data", rowid, 0, &blob);
        if (b != SQLITE_OK) {
            rc = jc__sq_store_error(st, b, "reading a part of a result");
            break;
        }
        if (codec == 0) {
            b = raw ? sqlite3_blob_read(blob, (char *)dst + off, (int)raw, 0) : SQLITE_OK;
        } else {
            if ((size_t)stored > zcap) {
                void *nz = realloc(z, (size_t)stored);
                if (!nz) {
                    rc = jc__set_error(JC_ENOMEM, "cache file '%s': out of memory reading a result", st->path);
                    break;
                }
                z = nz;
                zcap = (size_t)stored;
            }
            b = sqlite3_blob_read(blob, z, (int)stored, 0);
            if (b == SQLITE_OK) {
                size_t got = ZSTD_decompress((char *)dst + off, (size_t)raw, z, (size_t)stored);
                if (ZSTD_isError(got) || got != (size_t)raw) {
                    rc = damaged(st, part, ZSTD_isError(got) ? ZSTD_getErrorName(got) : "a chunk of the wrong size");
                    break;
                }
            }
        }
        if (b != SQLITE_OK) {
            rc = jc__sq_store_error(st, b, "reading a part of a result");
            break;
        }
        off += (size_t)raw;
    }
    if (!rc && step != SQLITE_DONE && step != SQLITE_ROW)
        rc = jc__sq_store_error(st, step, "reading a part of a result");
    if (!rc && off != len)
        rc = damaged(st, part, "its chunks hold fewer bytes than its reference says");
    sqlite3_blob_close(blob);
    free(z);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}
