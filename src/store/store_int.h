/*
 * store_int.h: the store's backends and its front (store.c) share this, and
 * only they include it (tests/layering.sh checks). A backend is a table of
 * the store's logical operations, as SQLite's VFS is a table of methods:
 * each entry does what the function of the same name in store.h says, on a
 * handle the backend made. Every handle starts with the common part below,
 * so that the front can dispatch on it; a backend's own handle type embeds
 * it first and is only ever reached through the backend's operations.
 *
 * Backends: SQLite (store/sqlite/, the embedded default). A new backend
 * supplies its table, an open function, and a branch in jc__store_open.
 */
#ifndef JC_STORE_INT_H
#define JC_STORE_INT_H

#include "store/store.h"

typedef struct jc__store_ops {
    const char *name; /* "sqlite" */
    void (*close)(jc__store *st);
    const char * (*path)(const jc__store *st);
    int (*begin)(jc__store *st);
    int (*commit)(jc__store *st);
    int (*rollback)(jc__store *st);
    int (*get)(jc__store *st, const uint8_t key[JC__KEY_LEN], jc__hit *hit);
    int (*get_many)(jc__store *st, const uint8_t *const *keys, size_t n, jc__hit_fn on_hit, void *ctx);
    int (*get_checks)(jc__store *st, const uint8_t *const *keys, size_t n, jc__hit_fn on_hit, void *ctx);
    int (*read_begin)(jc__store *st);
    void (*read_end)(jc__store *st);
    bool (*reading)(const jc__store *st);
    int (*data_version)(jc__store *st, int64_t *out);
    int (*put)(jc__store *st, const jc__entry_in *e);
    int (*part_read)(jc__store *st, const uint8_t key[JC__KEY_LEN], uint32_t part, void *dst, size_t len);
    int (*params_put)(jc__store *st, const char *function, const char *version, const char *names);
    int (*params_get)(jc__store *st, const char *function, const char *version, char **names);
    int (*delete)(jc__store *st, const uint8_t key[JC__KEY_LEN]);
    int (*pager_new)(jc__store *st, const jc__select *q, jc__pager **out);
    int (*pager_next)(jc__pager *p, const int64_t **rowids, size_t *n);
    void (*pager_free)(jc__pager *p);
    int (*row)(jc__store *st, int64_t rowid, bool blobs, jc__row *row);
    int (*row_by_key)(jc__store *st, const uint8_t key[JC__KEY_LEN], bool blobs, jc__row *row);
    int (*find_range)(jc__store *st, const uint8_t lo[JC__KEY_LEN], const uint8_t hi[JC__KEY_LEN], jc__row *row);
    int (*put_row)(jc__store *st, const jc__row *row);
    int (*max_rowid)(jc__store *st, int64_t *out);
    int (*delete_rowid)(jc__store *st, int64_t rowid);
    int (*remove)(jc__store *st, const jc__select *q, int64_t *count, int64_t *bytes);
    int (*clamp_future)(jc__store *st, int64_t *count);
    int (*zero_hits)(jc__store *st, int64_t *count);
    int (*hit_log_add)(jc__store *st, double at, int64_t hits, double saved, const void *blob, size_t len);
    int (*hit_log_fold)(jc__store *st, int64_t *rows);
    int (*hit_log_pending)(jc__store *st, int64_t *rows, int64_t *hits, double *saved);
    int (*hit_log_each)(jc__store *st, jc__hit_log_fn fn, void *ctx);
    int (*by_check)(jc__store *st, const uint8_t check[JC__CHECK_LEN], uint8_t key[JC__KEY_LEN]);
    int (*users)(jc__store *st, const uint8_t check[JC__CHECK_LEN], jc__user_fn fn, void *ctx);
    int (*remove_stale)(jc__store *st, int64_t *count, int64_t *bytes);
    int (*remove_lru)(jc__store *st, int64_t keep_entries, int64_t keep_bytes, int64_t *count, int64_t *bytes);
    int64_t (*disk_bytes)(const jc__store *st);
    int (*size_get)(jc__store *st, jc__store_size *out);
    int (*checkpoint)(jc__store *st);
    int (*evict)(jc__store *st, int64_t target, int64_t max_count, int64_t *count, int64_t *bytes);
    int (*count)(jc__store *st, int64_t *out);
    bool (*want_created)(jc__store *st, bool want);
    size_t (*wal_readers)(const jc__store *st, long *pids, size_t cap);
    int (*groups)(jc__store *st, int (*fn)(void *ctx, const jc__group *g), void *ctx);
    int (*facts_get)(jc__store *st, jc__store_facts *out);
    int (*integrity)(jc__store *st, void (*fn)(void *ctx, const char *problem), void *ctx);
    int (*vacuum)(jc__store *st);
    int (*backup)(jc__store *st, const char *dest);
    int (*lease_owner)(jc__store *st, const char *owner, double expires, bool create);
    int (*lease_add)(jc__store *st, const char *owner, const uint8_t *keys, size_t n);
    int (*leases)(jc__store *st, int (*fn)(void *ctx, const jc__lease *l), void *ctx);
    int (*lease_set_keys)(jc__store *st, int64_t id, const uint8_t *keys, size_t n);
    int (*lease_drop)(jc__store *st, const char *owner);
    int (*run_add)(jc__store *st, const jc__run_row *r, int64_t keep);
    int (*runs)(jc__store *st, int64_t last_n, bool failed_only, int (*fn)(void *ctx, const jc__run_row *r), void *ctx);
    int (*meta_get)(jc__store *st, const char *name, char **value);
    int (*meta_set)(jc__store *st, const char *name, const char *value);
    int (*schema)(const jc__store *st);
    bool (*in_transaction)(const jc__store *st);
    uint64_t (*txn_id)(const jc__store *st);
    void (*busy_wait)(jc__store *st, int ms);
} jc__store_ops;

/* The common head of every backend's handle. */
struct jc__store {
    const jc__store_ops *ops;
};

/* The common head of every backend's pager. */
struct jc__pager {
    jc__store *store;
};

#endif
