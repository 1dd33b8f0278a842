/*
 * The PostgreSQL store (issue 26): a cache in a schema of a PostgreSQL
 * database, reached through libpq, for many processes on many machines.
 * The store's front (store.c) opens it for a location that is a libpq
 * connection URI; everything else reaches it through its table of
 * operations (store_int.h).
 */
#ifndef JC_STORE_PG_H
#define JC_STORE_PG_H

#include <stdbool.h>

#include "store/store.h"

/* Whether location names a PostgreSQL store: a libpq connection URI,
 * "postgresql://..." or "postgres://..." (libpq's two prefixes). */
bool jc__pg_is_location(const char *location);
/* jc__store_open on a PostgreSQL location (store.h says what it does;
 * JC_EIO names the server and libpq's reason when it cannot connect). */
int jc__pg_store_open(const char *location, unsigned flags, int busy_timeout_ms, jc__store **out);
/* The location without its password or any parameter but host and
 * options, for messages and jc_cache_path (malloc'd; NULL on no memory):
 * percent-encoded, so that libpq reads it back as the same cache. A
 * location libpq cannot parse comes back as its scheme only. */
char *jc__pg_redact(const char *location);

#endif
