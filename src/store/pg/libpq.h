/*
 * libpq.h: libpq, loaded when the first PostgreSQL location is opened.
 *
 * Linking libpq pulls some thirty shared libraries into every process
 * (OpenSSL, Kerberos, LDAP, GnuTLS, ...): about 15 million instructions and
 * 10 ms of dynamic linking at the start of every program and `jobcache`
 * command, though most caches are files. So the library does not link it:
 * the PostgreSQL store loads libpq's shared object (dlopen, its soname
 * JC_LIBPQ_SONAME) the first time a server location is opened, and calls
 * it through the table below. The store's files are written against
 * libpq-fe.h as usual: each function they use is a macro for its entry in
 * the table (only pg_int.h includes this header; tests/layering.sh checks
 * that nothing else names libpq).
 *
 * Adding a libpq function to the store: add it to JC_LIBPQ_FUNCTIONS.
 */
#ifndef JC_STORE_PG_LIBPQ_H
#define JC_STORE_PG_LIBPQ_H

#include <libpq-fe.h>

/* libpq's soname on Linux since PostgreSQL 8.2 (its SO_MAJOR_VERSION). */
#define JC_LIBPQ_SONAME "libpq.so.5"

/* Every libpq function the store calls; PQsendFlushRequest needs libpq 14
 * (Debian 12 ships 15). */
#define JC_LIBPQ_FUNCTIONS(X)                                                                      \
    X(PQcancel) X(PQclear) X(PQcmdTuples) X(PQconnectdbParams) X(PQconninfoFree)                  \
    X(PQconninfoParse) X(PQconsumeInput) X(PQenterPipelineMode) X(PQerrorMessage) X(PQexec)       \
    X(PQexitPipelineMode) X(PQfinish) X(PQflush) X(PQfreeCancel) X(PQfreemem)     \
    X(PQftype) X(PQgetCancel) X(PQgetisnull) X(PQgetlength) X(PQgetResult) X(PQgetvalue)          \
    X(PQhost) X(PQisBusy) X(PQnfields) X(PQntuples) X(PQpipelineStatus) X(PQpipelineSync)         \
    X(PQport) X(PQreset) X(PQresultErrorField) X(PQresultErrorMessage) X(PQresultStatus)          \
    X(PQsendFlushRequest) X(PQsendQueryParams) X(PQsetnonblocking) X(PQsocket) X(PQstatus)        \
    X(PQtransactionStatus)

typedef struct jc__libpq_api {
#define JC__LIBPQ_MEMBER(name) __typeof__(name) *name;
    JC_LIBPQ_FUNCTIONS(JC__LIBPQ_MEMBER)
#undef JC__LIBPQ_MEMBER
} jc__libpq_api;

/* The table; its entries are valid after jc__libpq_load returned 0. */
extern jc__libpq_api jc__libpq;

/* Loads libpq once per process (thread-safe; later calls cost an atomic
 * read). Returns 0, or JC_EIO with a message saying why it could not be
 * loaded (dlopen's or dlsym's reason) and that on Debian the runtime
 * package is libpq5. The message names no location: it may hold a
 * password, and only libpq parses it. */
int jc__libpq_load(void);

#ifndef JC_LIBPQ_TABLE_ITSELF
#define JC__LIBPQ_CALL(name) (jc__libpq.name)
#define PQcancel JC__LIBPQ_CALL(PQcancel)
#define PQclear JC__LIBPQ_CALL(PQclear)
#define PQcmdTuples JC__LIBPQ_CALL(PQcmdTuples)
#define PQconnectdbParams JC__LIBPQ_CALL(PQconnectdbParams)
#define PQconninfoFree JC__LIBPQ_CALL(PQconninfoFree)
#define PQconninfoParse JC__LIBPQ_CALL(PQconninfoParse)
#define PQconsumeInput JC__LIBPQ_CALL(PQconsumeInput)
#define PQenterPipelineMode JC__LIBPQ_CALL(PQenterPipelineMode)
#define PQerrorMessage JC__LIBPQ_CALL(PQerrorMessage)
#define PQexec JC__LIBPQ_CALL(PQexec)
#define PQexitPipelineMode JC__LIBPQ_CALL(PQexitPipelineMode)
#define PQfinish JC__LIBPQ_CALL(PQfinish)
#define PQflush JC__LIBPQ_CALL(PQflush)
#define PQfreeCancel JC__LIBPQ_CALL(PQfreeCancel)
#define PQfreemem JC__LIBPQ_CALL(PQfreemem)
#define PQftype JC__LIBPQ_CALL(PQftype)
#define PQgetCancel JC__LIBPQ_CALL(PQgetCancel)
#define PQgetisnull JC__LIBPQ_CALL(PQgetisnull)
#define PQgetlength JC__LIBPQ_CALL(PQgetlength)
#define PQgetResult JC__LIBPQ_CALL(PQgetResult)
#define PQgetvalue JC__LIBPQ_CALL(PQgetvalue)
#define PQhost JC__LIBPQ_CALL(PQhost)
#define PQisBusy JC__LIBPQ_CALL(PQisBusy)
#define PQnfields JC__LIBPQ_CALL(PQnfields)
#define PQntuples JC__LIBPQ_CALL(PQntuples)
#define PQpipelineStatus JC__LIBPQ_CALL(PQpipelineStatus)
#define PQpipelineSync JC__LIBPQ_CALL(PQpipelineSync)
#define PQport JC__LIBPQ_CALL(PQport)
#define PQreset JC__LIBPQ_CALL(PQreset)
#define PQresultErrorField JC__LIBPQ_CALL(PQresultErrorField)
#define PQresultErrorMessage JC__LIBPQ_CALL(PQresultErrorMessage)
#define PQresultStatus JC__LIBPQ_CALL(PQresultStatus)
#define PQsendFlushRequest JC__LIBPQ_CALL(PQsendFlushRequest)
#define PQsendQueryParams JC__LIBPQ_CALL(PQsendQueryParams)
#define PQsetnonblocking JC__LIBPQ_CALL(PQsetnonblocking)
#define PQsocket JC__LIBPQ_CALL(PQsocket)
#define PQstatus JC__LIBPQ_CALL(PQstatus)
#define PQtransactionStatus JC__LIBPQ_CALL(PQtransactionStatus)
#endif

#endif
