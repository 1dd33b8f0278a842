/*
 * The PostgreSQL store: connecting, the schema of a cache and its
 * creation, transactions and snapshots, settings, and the helpers every
 * feature uses (pg_int.h).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pg_int.h"
#include "util/interrupt.h"

/* The version of this backend's tables (store.h's JC__SCHEMA_VERSION: the
 * two stores move together, so that the cache layer asks one number). */
#define PG_SCHEMA JC__SCHEMA_VERSION

/* ---- parameters ---- */

static int p_next(jc__pg_params *p)
{
    if (p->n >= JC__PG_MAX_PARAMS) {
        p->failed = true;
        return -1;
    }
    return p->n++;
}

void jc__pg_p_bytes(jc__pg_params *p, const void *b, size_t len)
{
    int i = p_next(p);
    if (i < 0)
        return;
    if (len > INT32_MAX)
        p->failed = true;
    p->types[i] = JC__PG_BYTEA;
    p->vals[i] = b ? (b == NULL ? "" : (const char *)b) : NULL;
    if (b && len == 0)
        p->vals[i] = "";
    p->lens[i] = (int)len;
    p->fmts[i] = 1;
}

void jc__pg_p_text(jc__pg_params *p, const char *s)
{
    int i = p_next(p);
    if (i < 0)
        return;
    p->types[i] = JC__PG_TEXT;
    p->vals[i] = s;
    p->lens[i] = s ? (int)strlen(s) : 0;
    p->fmts[i] = 1;
}

static void p_num(jc__pg_params *p, Oid type, uint64_t bits, int len)
{
    int i = p_next(p);
    if (i < 0)
        return;
    for (int k = 0; k < len; k++)
        p->nums[i][k] = (unsigned char)(bits >> (8 * (len - 1 - k)));
    p->types[i] = type;
    p->vals[i] = (const char *)p->nums[i];
    p->lens[i] = len;
    p->fmts[i] = 1;
}

void jc__pg_p_int8(jc__pg_params *p, int64_t v)
{
    p_num(p, JC__PG_INT8, (uint64_t)v, 8);
}

void jc__pg_p_int4(jc__pg_params *p, int32_t v)
{
    p_num(p, JC__PG_INT4, (uint32_t)v, 4);
}

void jc__pg_p_float8(jc__pg_params *p, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    p_num(p, JC__PG_FLOAT8, bits, 8);
}

void jc__pg_p_bool(jc__pg_params *p, bool v)
{
    p_num(p, JC__PG_BOOL, v ? 1 : 0, 1);
}

/* ---- array parameters ----
 *
 * PostgreSQL's binary array format (array_send): dimensions (1), a
 * has-nulls flag, the element type, the dimension's length and lower bound
 * (1), then each element as its length (4 bytes, big-endian; -1 for NULL)
 * and its bytes. The parameter owns its buffer (jc__pg_p_free). */

static unsigned char *put32(unsigned char *d, uint32_t v)
{
    d[0] = (unsigned char)(v >> 24);
    d[1] = (unsigned char)(v >> 16);
    d[2] = (unsigned char)(v >> 8);
    d[3] = (unsigned char)v;
    return d + 4;
}

static unsigned char *put64(unsigned char *d, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        d[k] = (unsigned char)(v >> (8 * (7 - k)));
    return d + 8;
}

unsigned char *jc__pg_put_elem(unsigned char *d, const void *b, size_t len)
{
    if (!b)
        return put32(d, UINT32_MAX); /* -1: NULL */
    d = put32(d, (uint32_t)len);
    if (len)
        memcpy(d, b, len);
    return d + len;
}

unsigned char *jc__pg_put_int8(unsigned char *d, int64_t v)
{
    return put64(put32(d, 8), (uint64_t)v);
}

unsigned char *jc__pg_put_float8(unsigned char *d, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return put64(put32(d, 8), bits);
}

unsigned char *jc__pg_p_array(jc__pg_params *p, Oid array_type, Oid elem_type, size_t n, size_t bytes)
{
    if (p->n >= JC__PG_MAX_PARAMS || n > (INT32_MAX - 20) / 4 || bytes > (size_t)INT32_MAX - 20 - 4 * n) {
        p->failed = true;
        return NULL;
    }
    size_t total = 20 + 4 * n + bytes;
    unsigned char *b = malloc(total);
    if (!b) {
        p->failed = true;
        return NULL;
    }
    int i = p->n++;
    unsigned char *d = put32(b, 1);
    d = put32(d, 1); /* may hold NULLs: the server checks each element's length */
    d = put32(d, elem_type);
    d = put32(d, (uint32_t)n);
    d = put32(d, 1);
    p->owned[i] = b;
    p->types[i] = array_type;
    p->vals[i] = (const char *)b;
    p->lens[i] = (int)total;
    p->fmts[i] = 1;
    return d;
}

void jc__pg_p_bytea_array(jc__pg_params *p, const uint8_t *const *ptrs, size_t n, size_t len)
{
    if (n > SIZE_MAX / (len + 1)) {
        p->failed = true;
        return;
    }
    unsigned char *d = jc__pg_p_array(p, JC__PG_BYTEA_ARRAY, JC__PG_BYTEA, n, n * len);
    for (size_t k = 0; d && k < n; k++)
        d = jc__pg_put_elem(d, ptrs[k], len);
}

void jc__pg_p_free(jc__pg_params *p)
{
    for (int i = 0; i < p->n; i++) {
        free(p->owned[i]);
        p->owned[i] = NULL;
    }
}

/* ---- results ---- */

static const char *field(const PGresult *r, int row, int col, int *len)
{
    if (!r || row >= PQntuples(r) || col >= PQnfields(r) || PQgetisnull(r, row, col)) {
        *len = 0;
        return NULL;
    }
    *len = PQgetlength(r, row, col);
    return PQgetvalue(r, row, col);
}

static uint64_t be(const char *v, int len)
{
    uint64_t x = 0;
    for (int k = 0; k < len; k++)
        x = (x << 8) | (unsigned char)v[k];
    return x;
}

int64_t jc__pg_int8(const PGresult *r, int row, int col)
{
    int len;
    const char *v = field(r, row, col, &len);
    if (!v)
        return 0;
    if (len == 8)
        return (int64_t)be(v, 8);
    if (len == 4)
        return (int32_t)(uint32_t)be(v, 4);
    if (len == 2)
        return (int16_t)(uint16_t)be(v, 2);
    if (len == 1)
        return (unsigned char)v[0];
    return 0;
}

double jc__pg_float8(const PGresult *r, int row, int col)
{
    int len;
    const char *v = field(r, row, col, &len);
    if (!v || len != 8)
        return 0.0;
    uint64_t bits = be(v, 8);
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

const uint8_t *jc__pg_bytes(const PGresult *r, int row, int col, size_t *len)
{
    int n;
    const char *v = field(r, row, col, &n);
    *len = v ? (size_t)n : 0;
    return (const uint8_t *)v;
}

const char *jc__pg_text(const PGresult *r, int row, int col)
{
    int n;
    const char *v = field(r, row, col, &n);
    return v ? v : ""; /* libpq ends every value with a NUL */
}

bool jc__pg_isnull(const PGresult *r, int row, int col)
{
    return !r || PQgetisnull(r, row, col);
}

void jc__pg_keep(jc__pg *pg, PGresult *r)
{
    PQclear(pg->res);
    pg->res = r;
}

int jc__pg_reserve(jc__pg *pg, size_t n)
{
    if (n <= pg->buf_cap)
        return 0;
    void *b = realloc(pg->buf, n);
    if (!b)
        return jc__set_error(JC_ENOMEM, "cache '%s': out of memory (%zu bytes)", pg->name, n);
    pg->buf = b;
    pg->buf_cap = n;
    return 0;
}

/* ---- statements ---- */

bool jc__pg_usable(jc__pg *pg)
{
    if (!pg || !pg->conn) {
        jc__set_error(JC_EINVAL, "store: the PostgreSQL connection is closed");
        return false;
    }
    if (pg->pid != getpid()) {
        jc__set_error(JC_EINVAL, "cache '%s': a store opened in process %ld is used in process %ld (a "
                      "connection must not cross fork; open the cache again in the child)",
                      pg->name, (long)pg->pid, (long)getpid());
        return false;
    }
    return true;
}

/* The server's message without its trailing newline, in buf. */
static const char *server_message(const jc__pg *pg, const PGresult *r, char *buf, size_t cap)
{
    const char *m = r ? PQresultErrorMessage(r) : NULL;
    if (!m || !*m)
        m = pg->conn ? PQerrorMessage(pg->conn) : "no connection";
    snprintf(buf, cap, "%s", m);
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return buf;
}

int jc__pg_fail(jc__pg *pg, const char *what, const PGresult *r)
{
    char msg[1024];
    server_message(pg, r, msg, sizeof msg);
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    int code = JC_EIO;
    const char *hint = "";
    if (pg->conn && PQstatus(pg->conn) == CONNECTION_BAD) {
        code = JC_EIO;
        hint = " (the connection to the server is lost)";
    } else if (state) {
        if (!strcmp(state, "55P03") || !strcmp(state, "40001") || !strcmp(state, "40P01")) {
            code = JC_EBUSY;
            if (!strcmp(state, "55P03"))
                hint = " (a lock held by another session past the busy timeout)";
        } else if (!strcmp(state, "25006")) {
            code = JC_EREADONLY;
        } else if (!strcmp(state, "42501")) {
            code = JC_EREADONLY;
            hint = " (the role may not change this cache: it can only be read)";
        } else if (!strcmp(state, "57014")) {
            code = JC_EINTR;
        } else if (!strncmp(state, "53", 2)) {
            code = JC_EFULL;
        } else if (!strncmp(state, "08", 2) || !strncmp(state, "57P", 3)) {
            hint = " (the connection to the server is lost)";
        }
    }
    return jc__set_error(code, "cache '%s': %s: %s%s", pg->name, what, msg, hint);
}

/* After a failed statement: the server aborted the transaction, whose
 * commit must then roll back, and the snapshot, which a later lookup
 * starts again. */
static void after_failure(jc__pg *pg)
{
    if (pg->depth > 0)
        pg->doomed = true;
    if (pg->reading) {
        pg->reading = false;
        PQclear(PQexec(pg->conn, "ROLLBACK"));
    }
}

/* Sends the entries stored but not yet sent, before any other statement
 * (pg_int.h, pending). */
static int send_pending(jc__pg *pg)
{
    if (!pg->pending || pg->sending)
        return 0;
    pg->sending = true;
    int rc = pg->pending(pg, true);
    pg->sending = false;
    return rc;
}

/* Drops them: their transaction rolls back. */
static void drop_pending(jc__pg *pg)
{
    if (pg->pending && !pg->sending)
        pg->pending(pg, false);
}

static PGresult *next_result(jc__pg *pg, bool *lost);

/* PQexecParams, with a wait that a run's Ctrl-C cuts short (wait_socket;
 * the caller sets pg->interrupt_seen first):
 * the statement's result, its first error if it has several, or NULL
 * when nothing came back (the connection's message says why). */
static PGresult *run(jc__pg *pg, const char *sql, const jc__pg_params *p)
{
    if (!PQsendQueryParams(pg->conn, sql, p ? p->n : 0, p ? p->types : NULL, p ? p->vals : NULL,
                           p ? p->lens : NULL, p ? p->fmts : NULL, 1))
        return NULL;
    PGresult *last = NULL, *r;
    bool lost = false;
    while ((r = next_result(pg, &lost)) != NULL) {
        ExecStatusType s = PQresultStatus(last);
        if (last && s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
            PQclear(r); /* the error stays the answer */
            continue;
        }
        PQclear(last);
        last = r;
    }
    return last;
}

static int session_settings(jc__pg *pg);

/* A connection the server dropped (a restart, a network that broke) is
 * made again when no transaction is open: what the session held, a
 * snapshot or the claims' lock (tend.c), went with it, and the lock is
 * taken again at once. Inside a transaction the statements
 * fail until it ends: its writes are lost, and the caller keeps them
 * (a run reports results it could not store). */
static int revive(jc__pg *pg)
{
    if (PQstatus(pg->conn) != CONNECTION_BAD || pg->depth > 0)
        return 0;
    PQreset(pg->conn);
    pg->reading = false;
    char *owner = pg->lease_owner; /* its lock went with the old session */
    pg->lease_owner = NULL;
    if (PQstatus(pg->conn) != CONNECTION_OK) {
        free(owner);
        return jc__set_error(JC_EIO, "cache '%s': the connection to the server is lost and cannot be made again: "
                             "%s", pg->name, PQerrorMessage(pg->conn));
    }
    int rc = session_settings(pg);
    /* This process's claims are alive again as soon as the new session
     * holds their owner's lock (others read an owner whose lock no session
     * holds as gone). */
    if (!rc && owner && pg->hold_again)
        rc = pg->hold_again(pg, owner);
    free(owner);
    return rc;
}

int jc__pg_query(jc__pg *pg, const char *what, const char *sql, const jc__pg_params *p, PGresult **out)
{
    if (out)
        *out = NULL;
    if (!jc__pg_usable(pg))
        return JC_EINVAL;
    if (p && p->failed)
        return jc__set_error(JC_ENOMEM, "cache '%s': %s: a parameter could not be made (out of memory, or "
                             "over 2 GiB)", pg->name, what);
    int rc = revive(pg);
    if (!rc)
        rc = send_pending(pg);
    if (rc)
        return rc;
    /* The interrupt flag, read once: the lock timeout is set by it, and a
     * signal that comes after this read cancels the statement's wait. */
    int interrupted = jc__interrupted;
    /* A lock timeout set in a transaction that has ended since (it may have
     * rolled back, undoing it): set again. While a run is interrupted, no
     * wait for a lock: what it stores on its way out is what it can have
     * at once. */
    if (!pg->setting_lock && ((pg->lock_in_txn && PQtransactionStatus(pg->conn) == PQTRANS_IDLE) ||
                              pg->lock_short != (interrupted != 0))) {
        pg->lock_short = interrupted != 0;
        jc__pg_lock_timeout(pg);
    }
    bool alone = pg->depth == 0 && !pg->reading;
    pg->interrupt_seen = interrupted;
    PGresult *r = run(pg, sql, p);
    ExecStatusType s = PQresultStatus(r);
    /* A read of its own, on a connection found dropped: once more on a new
     * one (a write is not sent twice: the server may have done it before the
     * connection went). */
    if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK && alone && strncmp(sql, "SELECT", 6) == 0 &&
        PQstatus(pg->conn) == CONNECTION_BAD && revive(pg) == 0) {
        PQclear(r);
        pg->interrupt_seen = interrupted;
        r = run(pg, sql, p);
        s = PQresultStatus(r);
    }
    if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
        rc = jc__pg_fail(pg, what, r);
        PQclear(r);
        after_failure(pg);
        return rc;
    }
    if (out)
        *out = r;
    else
        PQclear(r);
    return 0;
}

int jc__pg_exec(jc__pg *pg, const char *what, const char *sql, const jc__pg_params *p, int64_t *affected)
{
    PGresult *r = NULL;
    int rc = jc__pg_query(pg, what, sql, p, &r);
    if (rc == 0 && affected) {
        const char *t = PQcmdTuples(r);
        *affected = t && *t ? strtoll(t, NULL, 10) : 0;
    }
    PQclear(r);
    return rc;
}

/* ---- statements in a pipeline ----
 *
 * libpq's pipeline mode: a caller sends its next statement before it reads
 * the results of the one before, so that the server computes while this
 * process handles what came back, and a batch of lookups costs no round
 * trip per statement. The connection is non-blocking meanwhile, and every
 * wait to send also reads what the server sends: a server blocked writing
 * results to a client blocked writing its next statement would otherwise
 * wait for each other for ever. */

/* Asks the server to cancel the statement under way (it then fails with
 * 57014: JC_EINTR). */
static void cancel(jc__pg *pg)
{
    PGcancel *c = PQgetCancel(pg->conn);
    if (c) {
        char err[256];
        PQcancel(c, err, sizeof err);
        PQfreeCancel(c);
    }
}

/* Waits until the connection's socket is ready for ev (POLLIN, POLLOUT);
 * false when the connection is gone. A run's SIGINT or SIGTERM
 * (jc__interrupted) that comes while it waits cancels the statement, so
 * that a wait for a lock or a long statement ends at once rather than at
 * the busy timeout; statements sent after it (a run's last commit of the
 * results it has) are not cancelled, and stay bounded by the busy timeout
 * and the keepalives. */
static bool wait_socket(jc__pg *pg, short ev)
{
    struct pollfd pfd = {.fd = PQsocket(pg->conn), .events = ev};
    if (pfd.fd < 0)
        return false;
    for (;;) {
        int n = poll(&pfd, 1, 100);
        if (n > 0)
            return true;
        if (n < 0 && errno != EINTR)
            return false;
        if (jc__interrupted && jc__interrupted != pg->interrupt_seen) {
            pg->interrupt_seen = jc__interrupted;
            cancel(pg);
        }
    }
}

/* Sends all libpq holds for the server, reading meanwhile. */
static bool flush_all(jc__pg *pg)
{
    for (;;) {
        int f = PQflush(pg->conn);
        if (f == 0)
            return true;
        if (f < 0 || !wait_socket(pg, POLLIN | POLLOUT) || !PQconsumeInput(pg->conn))
            return false;
    }
}

/* The next result, waiting for it (NULL at the end of a statement's). */
static PGresult *next_result(jc__pg *pg, bool *lost)
{
    *lost = false;
    while (PQisBusy(pg->conn))
        if (!wait_socket(pg, POLLIN) || !PQconsumeInput(pg->conn)) {
            *lost = true;
            return NULL;
        }
    return PQgetResult(pg->conn);
}

int jc__pg_pipeline_begin(jc__pg *pg)
{
    if (!jc__pg_usable(pg))
        return JC_EINVAL;
    int rc = revive(pg);
    if (!rc)
        rc = send_pending(pg);
    if (rc)
        return rc;
    pg->interrupt_seen = jc__interrupted;
    if (PQsetnonblocking(pg->conn, 1) != 0 || !PQenterPipelineMode(pg->conn)) {
        PQsetnonblocking(pg->conn, 0);
        return jc__pg_fail(pg, "starting a pipeline", NULL);
    }
    pg->pipeline_failed = false;
    return 0;
}

int jc__pg_pipeline_send(jc__pg *pg, const char *what, const char *sql, const jc__pg_params *p)
{
    if (p && p->failed)
        return jc__set_error(JC_ENOMEM, "cache '%s': %s: a parameter could not be made (out of memory, or "
                             "over 2 GiB)", pg->name, what);
    if (!PQsendQueryParams(pg->conn, sql, p ? p->n : 0, p ? p->types : NULL, p ? p->vals : NULL,
                           p ? p->lens : NULL, p ? p->fmts : NULL, 1) ||
        !PQsendFlushRequest(pg->conn) || !flush_all(pg))
        return jc__pg_fail(pg, what, NULL);
    return 0;
}

int jc__pg_pipeline_take(jc__pg *pg, const char *what, PGresult **out)
{
    *out = NULL;
    bool lost;
    PGresult *r = next_result(pg, &lost);
    if (!r)
        return jc__pg_fail(pg, what, NULL);
    ExecStatusType s = PQresultStatus(r);
    /* Each statement's results end with a NULL. */
    PGresult *end = next_result(pg, &lost);
    PQclear(end);
    if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
        int rc = jc__pg_fail(pg, what, r);
        PQclear(r);
        pg->pipeline_failed = true;
        return rc;
    }
    *out = r;
    return 0;
}

int jc__pg_pipeline_end(jc__pg *pg)
{
    int rc = 0;
    bool lost = false;
    if (PQpipelineSync(pg->conn) && flush_all(pg)) {
        /* What is left of statements not taken, up to the sync's result. */
        for (;;) {
            PGresult *r = next_result(pg, &lost);
            if (lost)
                break;
            if (!r)
                continue;
            bool sync = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
            PQclear(r);
            if (sync)
                break;
        }
    } else {
        lost = true;
    }
    if (lost)
        rc = jc__pg_fail(pg, "ending a pipeline", NULL);
    PQexitPipelineMode(pg->conn);
    PQsetnonblocking(pg->conn, 0);
    if (pg->pipeline_failed || lost)
        after_failure(pg);
    pg->pipeline_failed = false;
    return rc;
}

/* Several statements without parameters (the simple protocol): the
 * schema's creation. */
static int script(jc__pg *pg, const char *what, const char *sql)
{
    PGresult *r = PQexec(pg->conn, sql);
    ExecStatusType s = PQresultStatus(r);
    int rc = 0;
    if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK)
        rc = jc__pg_fail(pg, what, r);
    PQclear(r);
    return rc;
}

int jc__pg_enter_write(jc__pg *pg, const char *what)
{
    if (!jc__pg_usable(pg))
        return JC_EINVAL;
    if (pg->flags & JC__STORE_READONLY)
        return jc__set_error(JC_EREADONLY, "cache '%s' is open read-only: %s", pg->name, what);
    if (pg->reading)
        jc__pg_read_end(pg);
    return 0;
}

/* ---- the location ---- */

bool jc__pg_is_location(const char *location)
{
    return location && (!strncmp(location, "postgresql://", 13) || !strncmp(location, "postgres://", 11));
}

/* Appends to out (cap bytes, always NUL-ended). */
static void add(char *out, size_t cap, const char *fmt, const char *a, const char *b)
{
    size_t n = strlen(out);
    if (n + 1 < cap)
        snprintf(out + n, cap - n, fmt, a, b ? b : "");
}

/* Appends v percent-encoded where a URI's part would misread it (RFC 3986's
 * unreserved characters and those of keep as they are; libpq decodes the
 * rest), so that the location shown can be given back to libpq as it is. */
static void add_encoded(char *out, size_t cap, const char *v, const char *keep)
{
    size_t n = strlen(out);
    for (const unsigned char *p = (const unsigned char *)v; *p && n + 4 < cap; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                     strchr("-._~", *p) || strchr(keep, *p);
        n += (size_t)snprintf(out + n, cap - n, plain ? "%c" : "%%%02X", *p);
    }
}

char *jc__pg_redact(const char *location)
{
    char *err = NULL;
    /* Without libpq nothing parses the location: the scheme only. */
    PQconninfoOption *opts = jc__libpq_load() == 0 ? PQconninfoParse(location, &err) : NULL;
    if (err)
        PQfreemem(err);
    size_t cap = 8 * strlen(location) + 64; /* every character encoded, a port given to each host */
    char *out = malloc(cap);
    if (!out) {
        if (opts)
            PQconninfoFree(opts);
        return NULL;
    }
    snprintf(out, cap, "postgresql://");
    if (!opts)
        return out;
    const char *user = NULL, *host = NULL, *port = NULL, *db = NULL, *options = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !*o->val)
            continue;
        if (!strcmp(o->keyword, "user"))
            user = o->val;
        else if (!strcmp(o->keyword, "host"))
            host = o->val;
        else if (!strcmp(o->keyword, "port"))
            port = o->val;
        else if (!strcmp(o->keyword, "dbname"))
            db = o->val;
        else if (!strcmp(o->keyword, "options"))
            options = o->val;
    }
    /* postgresql://user@host:port/db?options=...: a socket directory too
     * in the authority (libpq's %2F form), so that what is shown holds no
     * '&' and goes through a shell unquoted but for its '?'. */
    if (user) {
        add_encoded(out, cap, user, "");
        add(out, cap, "@%s%s", "", NULL);
    }
    /* Each host with its port (libpq: one port for all, or one each). */
    size_t nports = 0;
    for (const char *q = port; q && *q; q++)
        nports += *q == ',';
    nports += port && *port;
    const char *h = host, *pt = port;
    for (size_t i = 0; h; i++) {
        const char *hend = strchr(h, ',');
        char one[1024];
        snprintf(one, sizeof one, "%.*s", (int)(hend ? (size_t)(hend - h) : strlen(h)), h);
        if (i)
            add(out, cap, ",%s%s", "", NULL);
        add_encoded(out, cap, one, "");
        if (pt && *pt) {
            const char *pend = strchr(pt, ',');
            snprintf(one, sizeof one, "%.*s", (int)(pend ? (size_t)(pend - pt) : strlen(pt)), pt);
            if (*one)
                add(out, cap, ":%s%s", one, NULL);
            if (nports > 1)
                pt = pend ? pend + 1 : NULL;
        }
        h = hend ? hend + 1 : NULL;
    }
    if (!host && port) /* a port for the default host */
        add(out, cap, ":%s%s", port, NULL);
    add(out, cap, "/%s%s", "", NULL);
    if (db)
        add_encoded(out, cap, db, "");
    if (options) {
        add(out, cap, "?options=%s%s", "", NULL);
        add_encoded(out, cap, options, "/:");
    }
    PQconninfoFree(opts);
    return out;
}

/* ---- the schema ----
 *
 * The tables of a cache, in the PostgreSQL schema the connection's
 * search_path names first (docs/store.md). They hold what the SQLite
 * file's tables hold (store/sqlite/schema.c, docs/format.md), in
 * PostgreSQL's types: an entry's row id is an identity column (listings
 * page by it, as by SQLite's rowid), a part's chunks go with their entry
 * (ON DELETE CASCADE), and meta's schema_version plays user_version. */
static const char schema_sql[] =
    "CREATE TABLE entries ("
    " id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " key bytea NOT NULL UNIQUE CHECK (length(key) = 16),"
    " function text NOT NULL, version text NOT NULL,"
    " args bytea NOT NULL, result bytea NOT NULL,"
    " args_size bigint NOT NULL, result_size bigint NOT NULL,"
    " created float8 NOT NULL, last_used float8 NOT NULL, compute_seconds float8 NOT NULL,"
    " hits bigint NOT NULL DEFAULT 0,"
    " result_check bytea, code_fp bytea,"
    " key_format bigint NOT NULL DEFAULT 1);"
    "CREATE INDEX entries_check ON entries (result_check);"
    /* Lookups go by a hash index on the key (one bucket page, where the
     * unique B-tree that ON CONFLICT needs takes a descent of three or
     * four): a warm rerun's 100,000 lookups took 22% less of the server's
     * time; a cold run pays for one more index per insert. */
    "CREATE INDEX entries_key_hash ON entries USING hash (key);"
    "CREATE TABLE meta (name text PRIMARY KEY, value text NOT NULL);"
    "CREATE TABLE lease_owners (owner text PRIMARY KEY, expires float8 NOT NULL, started float8 NOT NULL);"
    "CREATE TABLE leases (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " owner text NOT NULL REFERENCES lease_owners (owner) ON DELETE CASCADE, keys bytea NOT NULL);"
    "CREATE TABLE runs (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " started float8 NOT NULL, ended float8 NOT NULL, host text NOT NULL, pid bigint NOT NULL,"
    " command text NOT NULL, kind text NOT NULL, n_jobs bigint NOT NULL, backend text NOT NULL,"
    " calls bigint NOT NULL, cached bigint NOT NULL, computed bigint NOT NULL, failed bigint NOT NULL,"
    " skipped bigint NOT NULL, elapsed float8 NOT NULL, saved float8 NOT NULL, status text NOT NULL,"
    " evicted bigint NOT NULL DEFAULT 0, evicted_bytes bigint NOT NULL DEFAULT 0,"
    " retries bigint NOT NULL DEFAULT 0, inputs_read bigint NOT NULL DEFAULT 0);"
    "CREATE TABLE run_failures (run bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,"
    " n bigint NOT NULL, status text NOT NULL, message text NOT NULL, PRIMARY KEY (run, n));"
    "CREATE TABLE hit_log (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, at float8 NOT NULL,"
    " hits bigint NOT NULL, saved float8 NOT NULL, keys bytea NOT NULL);"
    "CREATE TABLE params (function text NOT NULL, version text NOT NULL, names text NOT NULL,"
    " PRIMARY KEY (function, version));"
    "CREATE TABLE chunks (key bytea NOT NULL REFERENCES entries (key) ON DELETE CASCADE,"
    " part integer NOT NULL, seq integer NOT NULL, codec integer NOT NULL, size bigint NOT NULL,"
    " data bytea NOT NULL, PRIMARY KEY (key, part, seq));"
    /* Blobs the server would try to compress in vain: a hit log's keys
     * (hashes; a run of 100,000 hits wrote its 2 MB row in 95 ms with
     * PostgreSQL's compression, 9 ms without), claimed keys, and chunks,
     * which are zstd frames or what zstd could not shrink. */
    "ALTER TABLE hit_log ALTER keys SET STORAGE EXTERNAL;"
    "ALTER TABLE leases ALTER keys SET STORAGE EXTERNAL;"
    "ALTER TABLE chunks ALTER data SET STORAGE EXTERNAL;";

/* jobcache's tables: a schema holding all of them is a cache; one holding
 * other tables and none of these is not ours and is never changed. */
#define OUR_TABLES "'entries','meta','lease_owners','leases','runs','run_failures','hit_log','params','chunks'"

/* Makes the first schema of the search_path when none of them exists, its
 * name taken by the server from its own setting and quoted by format's %I
 * (nothing is pasted into SQL here). */
static const char make_schema_sql[] =
    "DO $$ DECLARE s text := trim(split_part(current_setting('search_path'), ',', 1)); BEGIN"
    " IF current_schema() IS NULL AND s <> '' THEN"
    "  s := (parse_ident(s))[1];"
    "  IF s = '$user' THEN s := current_user; END IF;"
    "  EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', s);"
    " END IF; END $$";

/* What the schema holds: its name (NULL when it does not exist), our
 * tables, all tables, and the version in meta (0 without). */
static int look(jc__pg *pg, char **schema, int64_t *ours, int64_t *all, int64_t *version)
{
    PGresult *r = NULL;
    int rc = jc__pg_query(pg, "reading the cache's tables",
                          "SELECT current_schema()::text,"
                          " (SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
                          "   AND tablename IN (" OUR_TABLES "))::bigint,"
                          " (SELECT count(*) FROM pg_tables WHERE schemaname = current_schema())::bigint",
                          NULL, &r);
    if (rc)
        return rc;
    *schema = jc__pg_isnull(r, 0, 0) ? NULL : jc__strdup(jc__pg_text(r, 0, 0));
    *ours = jc__pg_int8(r, 0, 1);
    *all = jc__pg_int8(r, 0, 2);
    PQclear(r);
    *version = 0;
    if (*ours > 0 && *schema) {
        char *v = NULL;
        rc = jc__pg_meta_get(pg, "schema_version", &v);
        if (rc) {
            free(*schema);
            *schema = NULL;
            return rc;
        }
        *version = v ? strtoll(v, NULL, 10) : 0;
        free(v);
    }
    return 0;
}

/* Creates the schema if needed and the cache's tables in it, once:
 * creators of one schema wait for each other on an advisory lock, and the
 * second finds the tables made. */
static int create(jc__pg *pg)
{
    /* The lock first, named by the search_path (the schema may not exist
     * yet): two processes creating one schema at once would otherwise both
     * try CREATE SCHEMA, and one fail on the catalog's unique name. */
    int rc = script(pg, "creating the cache's tables", "BEGIN");
    if (rc)
        return rc;
    rc = jc__pg_exec(pg, "creating the cache's tables",
                     "SELECT pg_advisory_xact_lock(hashtext('jobcache create ' || current_setting('search_path'))"
                     "::bigint)",
                     NULL, NULL);
    if (!rc)
        rc = script(pg, "creating the cache's schema", make_schema_sql);
    char *schema = NULL;
    int64_t ours = 0, all = 0, version = 0;
    if (!rc)
        rc = look(pg, &schema, &ours, &all, &version);
    free(schema);
    if (!rc && ours == 0 && all == 0) {
        rc = script(pg, "creating the cache's tables", schema_sql);
        jc__pg_params p = {0};
        char v[32];
        snprintf(v, sizeof v, "%d", PG_SCHEMA);
        jc__pg_p_text(&p, v);
        jc__pg_p_text(&p, JC_VERSION_STRING);
        char kf[32];
        snprintf(kf, sizeof kf, "%d", JC_KEY_FORMAT_VERSION);
        jc__pg_p_text(&p, kf);
        if (!rc)
            rc = jc__pg_exec(pg, "creating the cache's tables",
                             "INSERT INTO meta VALUES ('schema_version', $1), ('created_by', 'jobcache ' || $2),"
                             " ('key_format', $3)",
                             &p, NULL);
    }
    int end = script(pg, "creating the cache's tables", rc ? "ROLLBACK" : "COMMIT");
    return rc ? rc : end;
}

/* ---- open and close ---- */

void jc__pg_lock_timeout(jc__pg *pg)
{
    pg->setting_lock = true;
    char v[32];
    snprintf(v, sizeof v, "%d", pg->lock_short ? 1 : pg->lock_ms);
    jc__pg_params p = {0};
    jc__pg_p_text(&p, v);
    jc__pg_exec(pg, "setting the lock timeout", "SELECT set_config('lock_timeout', $1, false)", &p, NULL);
    pg->lock_in_txn = PQtransactionStatus(pg->conn) != PQTRANS_IDLE; /* a rollback would undo it */
    pg->setting_lock = false;
}

/* The server's TCP setting NAME: the session's own when the location set
 * one (options=-ctcp_keepalives_idle%3D2, or PGOPTIONS: pg_settings' source
 * 'client'), else ours (over TCP, current_setting shows the system's value
 * when none is set: 7200 s for the keepalives' idle time on Linux). */
#define TCP_SETTING(name, ours)                                                                        \
    "set_config('" name "', CASE (SELECT source FROM pg_settings WHERE name = '" name "')"            \
    " WHEN 'client' THEN current_setting('" name "') ELSE '" ours "' END, false)"

/* The connection's settings for a cache: waits bounded by the busy
 * timeout (lock_timeout), and the server's TCP keepalives short (10 s, then
 * 3 probes 5 s apart) and its user timeout 30 s (data it sent that a lost
 * client never acknowledged: keepalives wait for none while some is
 * unacknowledged, and the system's retransmissions take 15 minutes),
 * unless the location sets its own, so that a lost client's session, and
 * with it its claims (leases.c), ends within about half a minute (on a
 * Unix socket they do not apply). */
static int session_settings(jc__pg *pg)
{
    jc__pg_params p = {0};
    char ms[32];
    snprintf(ms, sizeof ms, "%d", pg->lock_short ? 1 : pg->lock_ms); /* as jc__pg_lock_timeout */
    jc__pg_p_text(&p, ms);
    jc__pg_p_bool(&p, (pg->flags & JC__STORE_READONLY) != 0);
    return jc__pg_exec(pg, "setting up the session",
                       "SELECT set_config('lock_timeout', $1, false),"
                       " set_config('default_transaction_read_only', CASE WHEN $2 THEN 'on' ELSE 'off' END, false),"
                       " " TCP_SETTING("tcp_keepalives_idle", "10") ","
                       " " TCP_SETTING("tcp_keepalives_interval", "5") ","
                       " " TCP_SETTING("tcp_keepalives_count", "3") ","
                       " " TCP_SETTING("tcp_user_timeout", "30000") ","
                       " set_config('client_min_messages', 'warning', false)",
                       &p, NULL);
}

static int connect_to(jc__pg *pg, const char *location)
{
    /* A connect timeout unless the location or PGCONNECT_TIMEOUT gives one:
     * an unreachable server is an error within seconds, never a hang.
     * Keywords before dbname are overridden by what the URI says. */
    const char *keys[12] = {0}, *vals[12] = {0};
    int k = 0;
    if (!getenv("PGCONNECT_TIMEOUT")) {
        keys[k] = "connect_timeout";
        vals[k++] = "10";
    }
    /* The client's TCP keepalives too (the server's are set per session):
     * a network that silently drops mid-statement ends the wait in about
     * 30 s rather than the system's two hours. */
    static const char *const alive[][2] = {{"keepalives", "1"}, {"keepalives_idle", "10"},
                                           {"keepalives_interval", "5"}, {"keepalives_count", "3"},
                                           {"tcp_user_timeout", "30000"}};
    for (size_t i = 0; i < sizeof alive / sizeof *alive; i++) {
        keys[k] = alive[i][0];
        vals[k++] = alive[i][1];
    }
    keys[k] = "application_name";
    vals[k++] = "jobcache";
    keys[k] = "dbname";
    vals[k++] = location;
    pg->conn = PQconnectdbParams(keys, vals, 1);
    if (!pg->conn)
        return jc__set_error(JC_ENOMEM, "cache '%s': out of memory connecting", pg->name);
    if (PQstatus(pg->conn) != CONNECTION_OK) {
        char msg[1024];
        server_message(pg, NULL, msg, sizeof msg);
        /* libpq quotes a location it cannot parse whole, password and all. */
        char *err = NULL;
        PQconninfoOption *opts = PQconninfoParse(location, &err);
        PQfreemem(err);
        PQconninfoFree(opts);
        if (!opts)
            return jc__set_error(JC_EINVAL, "cache '%s': the location is not a connection URI libpq can read "
                                 "(see libpq's \"Connection URIs\")", pg->name);
        const char *host = PQhost(pg->conn), *port = PQport(pg->conn);
        return jc__set_error(JC_EIO, "cache '%s': cannot connect to the PostgreSQL server at %s%s%s: %s",
                             pg->name, host && *host ? host : "(default host)", port && *port ? " port " : "",
                             port ? port : "", msg);
    }
    return 0;
}

int jc__pg_open(const char *location, unsigned flags, int busy_timeout_ms, jc__pg **out)
{
    *out = NULL;
    jc__pg *pg = calloc(1, sizeof *pg);
    if (!pg)
        return jc__set_error(JC_ENOMEM, "out of memory opening a cache");
    pg->name = jc__pg_redact(location);
    if (!pg->name) {
        free(pg);
        return jc__set_error(JC_ENOMEM, "out of memory opening a cache");
    }
    pg->flags = flags;
    pg->busy_timeout_ms = busy_timeout_ms > 0 ? busy_timeout_ms : 10000;
    pg->lock_ms = pg->busy_timeout_ms;
    pg->pid = getpid();
    int rc = connect_to(pg, location);
    if (!rc)
        rc = session_settings(pg);
    char *schema = NULL;
    int64_t ours = 0, all = 0, version = 0;
    if (!rc)
        rc = look(pg, &schema, &ours, &all, &version);
    if (!rc && ours == 0) {
        if (all > 0) {
            rc = jc__set_error(JC_ECORRUPT, "cache '%s': schema '%s' holds tables that are not a jobcache cache; "
                               "it is left as it is (choose another schema: options=-csearch_path%%3DNAME)",
                               pg->name, schema);
        } else if (flags & (JC__STORE_NOCREATE | JC__STORE_READONLY)) {
            PGresult *r = NULL;
            jc__pg_query(pg, "reading the search_path", "SELECT current_setting('search_path')::text", NULL, &r);
            rc = jc__set_error(JC_ENOTFOUND, "cache '%s' does not exist: no cache in %s '%s'", pg->name,
                               schema ? "schema" : "the first schema of search_path",
                               schema ? schema : r ? jc__pg_text(r, 0, 0) : "?");
            PQclear(r);
        } else {
            rc = create(pg);
            free(schema);
            schema = NULL;
            if (!rc)
                rc = look(pg, &schema, &ours, &all, &version);
        }
    }
    if (!rc && ours > 0 && version == 0)
        rc = jc__set_error(JC_ECORRUPT, "cache '%s': schema '%s' has jobcache's tables but no schema_version in "
                           "meta: not a cache this library made", pg->name, schema ? schema : "?");
    if (!rc && version > PG_SCHEMA)
        rc = jc__set_error(JC_ESCHEMA, "cache '%s' has schema version %lld, newer than version %d of this "
                           "library (jobcache %s); use a newer jobcache", pg->name, (long long)version, PG_SCHEMA,
                           JC_VERSION_STRING);
    if (!rc && version < PG_SCHEMA)
        rc = jc__set_error(JC_ESCHEMA, "cache '%s': its schema version %lld is not one this library knows "
                           "(PostgreSQL caches start at %d)", pg->name, (long long)version, PG_SCHEMA);
    free(schema);
    if (rc) {
        jc__pg_close(pg);
        return rc;
    }
    pg->schema = (int)version;
    *out = pg;
    return 0;
}

void jc__pg_close(jc__pg *pg)
{
    if (!pg)
        return;
    if (pg->conn && pg->pid == getpid()) {
        if (pg->depth > 0 && !pg->doomed && send_pending(pg) != 0)
            pg->doomed = true;
        if (pg->depth > 0 || pg->reading)
            PQclear(PQexec(pg->conn, pg->doomed ? "ROLLBACK" : "COMMIT"));
        PQfinish(pg->conn);
    }
    drop_pending(pg); /* frees what is left (a forked child's copy too) */
    /* In a forked child the connection's socket is the parent's: close
     * nothing of it (PQfinish would send the server a goodbye). */
    PQclear(pg->res);
    free(pg->buf);
    free(pg->lease_owner);
    free(pg->name);
    free(pg);
}

/* ---- transactions ---- */

int jc__pg_begin(jc__pg *pg)
{
    int rc = jc__pg_enter_write(pg, "cannot write");
    if (rc)
        return rc;
    if (pg->depth > 0) {
        pg->depth++;
        return 0;
    }
    if ((rc = revive(pg)) != 0)
        return rc;
    pg->depth = 1;
    pg->doomed = false;
    rc = jc__pg_exec(pg, "beginning a transaction", "BEGIN", NULL, NULL);
    if (rc) {
        pg->depth = 0;
        return rc;
    }
    pg->txn_current = ++pg->txn_seq;
    return 0;
}

int jc__pg_commit(jc__pg *pg)
{
    if (!jc__pg_usable(pg))
        return JC_EINVAL;
    if (pg->depth == 0)
        return jc__set_error(JC_EINVAL, "cache '%s': commit without begin", pg->name);
    if (pg->depth > 1) {
        pg->depth--;
        return 0;
    }
    /* The entries waiting go first, while the transaction is still open:
     * if they fail, it rolls back below, and the caller gets their error
     * (JC_EBUSY, JC_EFULL: it may try again). */
    int sent = pg->doomed ? 0 : send_pending(pg);
    pg->depth = 0;
    pg->txn_current = 0;
    if (pg->doomed || sent) {
        pg->doomed = false;
        drop_pending(pg);
        char why[512];
        snprintf(why, sizeof why, "%s", sent ? jc_errmsg() : "an inner step failed");
        PQclear(PQexec(pg->conn, "ROLLBACK"));
        return jc__set_error(sent ? sent : JC_EIO, "cache '%s': the transaction was rolled back (%s)", pg->name,
                             why);
    }
    /* COMMIT of an aborted transaction answers ROLLBACK without an error:
     * the transaction status tells. */
    bool failed = PQtransactionStatus(pg->conn) == PQTRANS_INERROR;
    int rc = jc__pg_exec(pg, "committing", "COMMIT", NULL, NULL);
    if (!rc && failed)
        rc = jc__set_error(JC_EIO, "cache '%s': the transaction was rolled back by the server", pg->name);
    return rc;
}

int jc__pg_rollback(jc__pg *pg)
{
    if (!jc__pg_usable(pg))
        return JC_EINVAL;
    if (pg->depth == 0)
        return jc__set_error(JC_EINVAL, "cache '%s': rollback without begin", pg->name);
    if (--pg->depth > 0) {
        pg->doomed = true;
        return 0;
    }
    pg->txn_current = 0;
    pg->doomed = false;
    drop_pending(pg);
    return jc__pg_exec(pg, "rolling back", "ROLLBACK", NULL, NULL);
}

/* A snapshot across many lookups: REPEATABLE READ, read only (a memo
 * session's, or a run's lookup pass). A write ends it first. */
int jc__pg_read_begin(jc__pg *pg)
{
    if (!jc__pg_usable(pg))
        return JC_EINVAL;
    if (pg->depth > 0 || pg->reading)
        return 0;
    int rc = jc__pg_exec(pg, "beginning a read snapshot", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", NULL,
                         NULL);
    if (!rc)
        pg->reading = true;
    return rc;
}

void jc__pg_read_end(jc__pg *pg)
{
    if (!pg->reading || !jc__pg_usable(pg))
        return;
    pg->reading = false;
    PQclear(PQexec(pg->conn, "COMMIT"));
}

/* ---- settings ---- */

int jc__pg_meta_get(jc__pg *pg, const char *name, char **value)
{
    *value = NULL;
    jc__pg_params p = {0};
    jc__pg_p_text(&p, name);
    PGresult *r = NULL;
    int rc = jc__pg_query(pg, "reading a setting", "SELECT value FROM meta WHERE name = $1", &p, &r);
    if (rc)
        return rc;
    if (PQntuples(r) > 0) {
        *value = jc__strdup(jc__pg_text(r, 0, 0));
        if (!*value)
            rc = jc__set_error(JC_ENOMEM, "out of memory");
    }
    PQclear(r);
    return rc;
}

int jc__pg_meta_set(jc__pg *pg, const char *name, const char *value)
{
    int rc = jc__pg_enter_write(pg, "cannot change a setting");
    if (rc)
        return rc;
    jc__pg_params p = {0};
    jc__pg_p_text(&p, name);
    if (!value)
        return jc__pg_exec(pg, "removing a setting", "DELETE FROM meta WHERE name = $1", &p, NULL);
    jc__pg_p_text(&p, value);
    return jc__pg_exec(pg, "writing a setting",
                       "INSERT INTO meta VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value", &p,
                       NULL);
}
