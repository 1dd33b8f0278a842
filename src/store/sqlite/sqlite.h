/*
 * sqlite.h: the SQLite store as the store's front sees it: its open
 * function. Everything else of it is reached through its table of
 * operations (store_int.h).
 */
#ifndef JC_STORE_SQLITE_H
#define JC_STORE_SQLITE_H

#include "store/store.h"

/* jc__store_open on an SQLite cache file (store.h says what it does). */
int jc__sqlite_store_open(const char *path, unsigned flags, int busy_timeout_ms, jc__store **out);
/* jc__store_unlock_host for an SQLite cache file (hostlock.c). */
int jc__sqlite_unlock_host(const char *path, char **host);

#endif
