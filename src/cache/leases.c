/*
 * Leases: claims on the calls a run computes, so that another process waits
 * for their results instead of computing them too; and their inspection.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "function/fingerprint.h"
#include "cache_int.h"
#include "util/keysort.h"

/* ---- leases ----
 *
 * Before computing its misses a run claims them, so that a run of another
 * process on the same cache waits for their results instead of computing
 * them too (joblib's issues #73 and #1030: every process computes every
 * shared call). A claim names its owner, a process anywhere: the machine's
 * boot id, the pid namespace, the pid and the process's start time (a pid
 * alone does not tell apart processes of two containers sharing one file,
 * nor a reused pid). An owner in this boot and pid namespace is alive while
 * its process is; any other is alive until its claim expires, which owners
 * renew while they compute. Claims of dead owners are dropped by the next
 * claim. */

/* The text of /proc path's first line, without the newline, or "". */
static void read_line(const char *path, char *buf, size_t cap)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    if (fgets(buf, (int)cap, f))
        buf[strcspn(buf, "\n")] = '\0';
    fclose(f);
}

/* Field 22 of /proc/PID/stat: the start time in clock ticks since boot;
 * 0 when the process does not exist, or has ended and waits to be reaped
 * (state Z: a zombie computes nothing). The command name (field 2) may hold
 * spaces and parentheses: fields are counted after its last ')'. *readable
 * says whether /proc told anything (a /proc mounted hidepid hides other
 * users' processes). */
static unsigned long long start_time_of(long pid, bool *readable)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    read_line(path, buf, sizeof buf);
    char *p = strrchr(buf, ')');
    if (readable)
        *readable = p != NULL;
    if (!p)
        return 0;
    unsigned long long v = 0;
    int field = 2;
    char *save = NULL;
    for (char *tok = strtok_r(p + 1, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        ++field;
        if (field == 3 && (tok[0] == 'Z' || tok[0] == 'X'))
            return 0;
        if (field == 22) {
            v = strtoull(tok, NULL, 10);
            break;
        }
    }
    return v;
}

static unsigned long long start_time(long pid)
{
    return start_time_of(pid, NULL);
}

/* The pid namespace of a process, as "pid:[4026531836]". */
static void pid_namespace(const char *proc, char *buf, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%s/ns/pid", proc);
    ssize_t n = readlink(path, buf, cap - 1);
    buf[n > 0 ? n : 0] = '\0';
}

typedef struct owner_id {
    char boot[64], ns[64];
    long pid;
    unsigned long long start;
} owner_id;

static bool parse_owner(const char *text, owner_id *o)
{
    /* "BOOT ID|PIDNS|PID|START" */
    memset(o, 0, sizeof *o);
    const char *a = strchr(text, '|'), *b = a ? strchr(a + 1, '|') : NULL, *c = b ? strchr(b + 1, '|') : NULL;
    if (!c || (size_t)(a - text) >= sizeof o->boot || (size_t)(b - a - 1) >= sizeof o->ns)
        return false;
    memcpy(o->boot, text, (size_t)(a - text));
    memcpy(o->ns, a + 1, (size_t)(b - a - 1));
    o->pid = strtol(b + 1, NULL, 10);
    o->start = strtoull(c + 1, NULL, 10);
    return o->pid > 0;
}

/* This process's identity; made again after a fork (another pid).
 * JC_TEST_BOOT_ID (tests only) stands for the boot id, so that processes
 * of one machine claim as if each were on a host of its own (issue 26:
 * many hosts on one PostgreSQL cache). */
const char *jc__cache_owner(void)
{
    static _Thread_local char text[200];
    static _Thread_local pid_t made_for;
    pid_t pid = getpid();
    if (made_for != pid) {
        char boot[64], ns[64];
        const char *fake = getenv("JC_TEST_BOOT_ID");
        if (fake && *fake)
            snprintf(boot, sizeof boot, "%s", fake);
        else
            read_line("/proc/sys/kernel/random/boot_id", boot, sizeof boot);
        pid_namespace("self", ns, sizeof ns);
        snprintf(text, sizeof text, "%s|%s|%ld|%llu", boot, ns, (long)pid, start_time((long)pid));
        made_for = pid;
    }
    return text;
}

bool jc__cache_owner_alive(const char *owner, double expires, double now)
{
    owner_id me, them;
    if (!parse_owner(jc__cache_owner(), &me) || !parse_owner(owner, &them))
        return expires > now;
    if (strcmp(me.boot, them.boot) != 0 || strcmp(me.ns, them.ns) != 0 || !me.boot[0] || !me.ns[0])
        return expires > now; /* another machine, boot or container: the claim's expiry */
    /* Same boot and pid namespace: alive while its process is (the same
     * start time: not a reused pid), however long its calls take. Where
     * /proc hides other users' processes (hidepid), kill(pid, 0) still
     * tells whether the pid exists (EPERM: it does). */
    bool readable = false;
    unsigned long long start = start_time_of(them.pid, &readable);
    if (!readable)
        return kill((pid_t)them.pid, 0) == 0 || errno == EPERM;
    return them.start != 0 && start == them.start;
}

typedef struct lease_scan {
    const char *me;
    double now;
    /* keys of live owners other than me */
    uint8_t *keys;
    size_t n, cap;
    /* owners found dead */
    char **dead;
    size_t ndead, capdead;
    /* my own rows (for releasing one key) */
    bool alive_cached;
    char last_owner[200];
    bool last_alive;
    int err;
} lease_scan;

static int collect_lease(void *ctx, const jc__lease *l)
{
    lease_scan *sc = ctx;
    if (strcmp(l->owner, sc->me) == 0)
        return 0;
    if (!sc->alive_cached || strcmp(sc->last_owner, l->owner) != 0) {
        snprintf(sc->last_owner, sizeof sc->last_owner, "%s", l->owner);
        sc->last_alive = jc__cache_owner_alive(l->owner, l->expires, sc->now);
        sc->alive_cached = true;
        if (!sc->last_alive) {
            char *copy = jc__strdup(l->owner);
            if (!copy || JC__GROW(sc->dead, sc->capdead, sc->ndead + 1)) {
                free(copy);
                return jc__set_error(JC_ENOMEM, "out of memory reading leases");
            }
            sc->dead[sc->ndead++] = copy;
        }
    }
    if (!sc->last_alive || !l->n)
        return 0;
    if (jc__grow(&sc->keys, &sc->cap, sc->n + l->n, JC__KEY_LEN))
        return jc__set_error(JC_ENOMEM, "out of memory reading leases");
    memcpy(sc->keys + sc->n * JC__KEY_LEN, l->keys, l->n * JC__KEY_LEN);
    sc->n += l->n;
    return 0;
}

static void scan_free(lease_scan *sc)
{
    free(sc->keys);
    for (size_t i = 0; i < sc->ndead; i++)
        free(sc->dead[i]);
    free(sc->dead);
}

static int cmp_key16(const void *a, const void *b)
{
    return memcmp(a, b, JC__KEY_LEN);
}

/* Reads every lease; sc->keys gets the keys of live other owners, sorted. */
static int scan_leases(jc_cache *cache, lease_scan *sc)
{
    memset(sc, 0, sizeof *sc);
    sc->me = jc__cache_owner();
    sc->now = jc__now();
    int rc = jc__store_leases(cache->store, collect_lease, sc);
    if (!rc && sc->n)
        jc__keysort(sc->keys, sc->n, JC__KEY_LEN);
    return rc;
}

static bool held(const lease_scan *sc, const uint8_t *key)
{
    return sc->n && bsearch(key, sc->keys, sc->n, JC__KEY_LEN, cmp_key16) != NULL;
}

bool jc__cache_leases_enabled(const jc_cache *cache)
{
    return jc__cache_writable(cache) && jc__store_schema(cache->store) >= 4;
}

enum { LEASE_ROW_KEYS = 4096 };

int jc__cache_claim(jc_cache *cache, const uint8_t *const *keys, size_t n, double ttl, bool *theirs)
{
    for (size_t i = 0; i < n; i++)
        theirs[i] = false;
    if (!jc__cache_leases_enabled(cache) || !n)
        return 0;
    uint8_t *mine = malloc(n * JC__KEY_LEN);
    if (!mine)
        return jc__set_error(JC_ENOMEM, "out of memory claiming %zu calls", n);
    int rc = jc__store_begin(cache->store);
    if (rc) {
        free(mine);
        return rc;
    }
    lease_scan sc;
    /* Rows of this process left by an earlier run that could not release
     * them (its end found the file locked) go first: this run claims anew. */
    rc = cache->claimed ? 0 : jc__store_lease_drop(cache->store, jc__cache_owner());
    rc = rc < 0 ? rc : 0;
    if (!rc)
        rc = scan_leases(cache, &sc);
    else
        memset(&sc, 0, sizeof sc);
    for (size_t i = 0; i < sc.ndead && !rc; i++)
        rc = jc__store_lease_drop(cache->store, sc.dead[i]) < 0 ? jc_errcode() : 0;
    size_t m = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        theirs[i] = held(&sc, keys[i]);
        if (!theirs[i])
            memcpy(mine + JC__KEY_LEN * m++, keys[i], JC__KEY_LEN);
    }
    if (!rc)
        rc = jc__store_lease_owner(cache->store, jc__cache_owner(), jc__now() + ttl, true);
    if (!rc && m) {
        jc__keysort(mine, m, JC__KEY_LEN); /* a run's misses: 920 instructions each by qsort */
        for (size_t at = 0; at < m && !rc; at += LEASE_ROW_KEYS)
            rc = jc__store_lease_add(cache->store, jc__cache_owner(), mine + JC__KEY_LEN * at,
                                     m - at < LEASE_ROW_KEYS ? m - at : LEASE_ROW_KEYS);
    }
    scan_free(&sc);
    free(mine);
    if (rc) {
        char *msg = jc__strdup(jc_errmsg());
        jc__store_rollback(cache->store);
        for (size_t i = 0; i < n; i++)
            theirs[i] = false; /* nothing claimed: compute them all, as without leases */
        jc__set_error(rc, "%s", msg ? msg : jc_strerror(rc));
        free(msg);
        return rc;
    }
    rc = jc__cache_commit(cache);
    if (!rc && cache->running)
        cache->claimed = true;
    return rc;
}

int jc__cache_still_held(jc_cache *cache, const uint8_t *const *keys, size_t n, bool *held_out)
{
    lease_scan sc;
    int rc = scan_leases(cache, &sc);
    for (size_t i = 0; i < n; i++)
        held_out[i] = !rc && held(&sc, keys[i]);
    scan_free(&sc);
    jc__store_read_end(cache->store);
    return rc;
}

int jc__cache_lease_renew(jc_cache *cache, double ttl)
{
    return jc__cache_leases_enabled(cache)
               ? jc__store_lease_owner(cache->store, jc__cache_owner(), jc__now() + ttl, true)
               : 0;
}

/* This process's lease rows, read once to release many keys. */
typedef struct my_rows {
    const char *me;
    int64_t *ids;
    uint8_t **keys;
    size_t *n;
    size_t count, cap;
} my_rows;

static int collect_mine(void *ctx, const jc__lease *l)
{
    my_rows *m = ctx;
    if (strcmp(l->owner, m->me) != 0 || !l->n)
        return 0;
    if (m->count == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        int64_t *ids = realloc(m->ids, cap * sizeof *ids);
        if (ids)
            m->ids = ids;
        uint8_t **keys = realloc(m->keys, cap * sizeof *keys);
        if (keys)
            m->keys = keys;
        size_t *n = realloc(m->n, cap * sizeof *n);
        if (n)
            m->n = n;
        if (!ids || !keys || !n)
            return jc__set_error(JC_ENOMEM, "out of memory releasing calls");
        m->cap = cap;
    }
    uint8_t *copy = malloc(l->n * JC__KEY_LEN);
    if (!copy)
        return jc__set_error(JC_ENOMEM, "out of memory releasing calls");
    memcpy(copy, l->keys, l->n * JC__KEY_LEN);
    m->ids[m->count] = l->id;
    m->keys[m->count] = copy;
    m->n[m->count++] = l->n;
    return 0;
}

int jc__cache_lease_release(jc_cache *cache, uint8_t *keys, size_t n)
{
    if (!jc__cache_leases_enabled(cache) || !n)
        return 0;
    /* One read of this process's rows, then each row that holds any of the
     * keys rewritten once: releasing many calls (a run whose calls fail,
     * or whose results cannot be stored) costs one pass, not one per call. */
    jc__keysort(keys, n, JC__KEY_LEN);
    my_rows m = {.me = jc__cache_owner()};
    int rc = jc__store_leases(cache->store, collect_mine, &m);
    for (size_t r = 0; r < m.count && !rc; r++) {
        size_t kept = 0;
        for (size_t i = 0; i < m.n[r]; i++) {
            const uint8_t *k = m.keys[r] + JC__KEY_LEN * i;
            if (!bsearch(k, keys, n, JC__KEY_LEN, cmp_key16))
                memmove(m.keys[r] + JC__KEY_LEN * kept++, k, JC__KEY_LEN);
        }
        if (kept != m.n[r])
            rc = jc__store_lease_set_keys(cache->store, m.ids[r], m.keys[r], kept);
    }
    for (size_t r = 0; r < m.count; r++)
        free(m.keys[r]);
    free(m.ids);
    free(m.keys);
    free(m.n);
    return rc;
}

int jc__cache_lease_end(jc_cache *cache)
{
    if (!jc__cache_leases_enabled(cache))
        return 0;
    int rc = jc__store_begin(cache->store);
    if (!rc) {
        rc = jc__store_lease_drop(cache->store, jc__cache_owner());
        rc = rc < 0 ? rc : 0;
        int c = jc__cache_commit(cache);
        rc = rc ? rc : c;
    }
    return rc;
}

/* ---- leases, for inspection ---- */

typedef struct owner_list {
    jc_lease_info *items;
    char **owners;
    size_t n, cap;
    double now;
} owner_list;

static int list_owner(void *ctx, const jc__lease *l)
{
    owner_list *ol = ctx;
    if (!ol->n || strcmp(ol->owners[ol->n - 1], l->owner) != 0) {
        if (ol->n == ol->cap) {
            size_t cap = ol->cap ? ol->cap * 2 : 8;
            jc_lease_info *it = realloc(ol->items, cap * sizeof *it);
            if (it)
                ol->items = it;
            char **ow = realloc(ol->owners, cap * sizeof *ow);
            if (ow)
                ol->owners = ow;
            if (!it || !ow)
                return jc__set_error(JC_ENOMEM, "out of memory listing leases");
            ol->cap = cap;
        }
        char *copy = jc__strdup(l->owner);
        if (!copy)
            return jc__set_error(JC_ENOMEM, "out of memory listing leases");
        owner_id id;
        ol->owners[ol->n] = copy;
        ol->items[ol->n] = (jc_lease_info){
            .owner = copy,
            .pid = parse_owner(copy, &id) ? id.pid : 0,
            .started = l->started,
            .expires = l->expires,
            .alive = jc__cache_owner_alive(copy, l->expires, ol->now),
        };
        ol->n++;
    }
    ol->items[ol->n - 1].calls += (int64_t)l->n;
    return 0;
}

static void owner_list_free(owner_list *ol)
{
    for (size_t i = 0; i < ol->n; i++)
        free(ol->owners[i]);
    free(ol->owners);
    free(ol->items);
}

static int read_owners(jc_cache *cache, owner_list *ol)
{
    memset(ol, 0, sizeof *ol);
    ol->now = jc__now();
    if (!cache || !cache->store)
        return jc__set_error(JC_EINVAL, "leases: the cache is %s", cache ? "disabled" : "NULL");
    return jc__store_leases(cache->store, list_owner, ol);
}

int jc_cache_leases(jc_cache *cache, jc_lease_fn fn, void *userdata, size_t *count)
{
    owner_list ol;
    int rc = read_owners(cache, &ol);
    if (!rc && fn)
        for (size_t i = 0; i < ol.n; i++)
            fn(&ol.items[i], userdata);
    if (count)
        *count = rc ? 0 : ol.n;
    owner_list_free(&ol);
    return rc;
}

int jc_cache_break_lease(jc_cache *cache, const char *owner, size_t *count)
{
    if (count)
        *count = 0;
    if (cache && !jc__cache_writable(cache))
        return jc__set_error(JC_EREADONLY, "jc_cache_break_lease: the cache is read-only");
    owner_list ol;
    int rc = read_owners(cache, &ol);
    if (!rc)
        rc = jc__store_begin(cache->store);
    size_t removed = 0;
    bool named = false;
    for (size_t i = 0; i < ol.n && !rc; i++) {
        if (owner ? strcmp(owner, ol.owners[i]) != 0 : ol.items[i].alive)
            continue;
        named = true;
        int d = jc__store_lease_drop(cache->store, ol.owners[i]);
        rc = d < 0 ? d : 0;
        removed += d > 0;
    }
    if (jc__store_in_transaction(cache->store)) {
        int c = rc ? jc__store_rollback(cache->store) : jc__cache_commit(cache);
        rc = rc ? rc : c;
    }
    owner_list_free(&ol);
    if (!rc && owner && !named)
        rc = jc__set_error(JC_ENOTFOUND, "jc_cache_break_lease: no claims of '%s'", owner);
    if (count && !rc)
        *count = removed;
    return rc;
}
