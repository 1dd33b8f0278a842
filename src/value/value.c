/*
 * Making values: scalars, text (UTF-8 checked), arrays, lists and maps
 * (kept sorted, nesting bounded), copies, freeing.
 */
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "jc_internal.h"
#include "util/utf8.h"
#include "value_int.h"

/* ---- value nodes ----
 *
 * A call's arguments and its result are values made and freed by the
 * thousand (two ints a call in a sweep, a copy of the result for the
 * caller), where glibc's malloc and free cost some 300 instructions a
 * node. Nodes come from slabs instead: blocks of SLAB_BYTES, aligned to
 * their size, that a thread hands out in order (a pointer bump); a node
 * freed finds its slab by its address, and a slab goes back (to malloc,
 * or to its region, below) when its last node is freed, by whichever
 * thread (a count of its live nodes, atomic: results made by the threads
 * backend's workers are freed by the caller). Each thread also keeps up to NODE_SPARE freed nodes for the next
 * values it makes (a pointer swap, no atomic), so that a memoized call in a
 * session reuses the same few nodes. A thread's spares and its slab in use
 * are given back when it ends. A node kept for long keeps its slab's 4 KiB
 * (a memo session's copies of results: about 170 bytes a node where malloc
 * takes 64). Under AddressSanitizer every node goes to malloc and free, so
 * that a use after free is still caught (bench/NOTES.md).
 *
 * A thread's first MALLOC_SLABS slabs come from malloc; after them, a
 * thread that makes values by the hundred thousand (a sweep's arguments,
 * a run's results) carves its slabs out of regions of REGION_BYTES mapped
 * for them (mmap). A slab from aligned_alloc costs its 4 KiB and about as
 * much again of the heap around it: a warm rerun of 100,000 calls peaked
 * at 85 MB, at 55 MB with regions (bench/NOTES.md). A region goes back to
 * the system when its last slab does (a count of its slabs not yet given
 * back, plus one while its thread carves from it). Its slabs are not
 * reused before: once its thread has moved on, the memory of those given
 * back is given to the system (madvise MADV_DONTNEED) each time the
 * region's count falls to a quarter of what it was the last time, from an
 * eighth of its slabs down (64, 16, 4, 1), so that a few nodes kept long
 * (a result copied out of each batch) keep their slabs' memory, not their
 * regions': once a region is below an eighth of its slabs, at most three
 * times as many slabs given back as in use stay resident (above it, up to
 * the whole region), each region's drops a handful of system calls. The
 * region a thread still carves from is not swept (up to 2 MiB per thread
 * that made many values), nor, where the system's pages are larger than a
 * slab, any region (a drop must cover whole pages). Regions are mapped
 * without transparent huge pages (MADV_NOHUGEPAGE), which would make a
 * region resident whole at its first touch and undo a drop. */
#if defined(__SANITIZE_ADDRESS__)
#define JC_VALUE_PLAIN_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define JC_VALUE_PLAIN_MALLOC 1
#endif
#endif

#ifndef JC_VALUE_PLAIN_MALLOC
#define NODE_SPARE 256
#define SLAB_BYTES 4096

#define REGION_BYTES ((size_t)2 << 20)
#define REGION_SLABS (REGION_BYTES / SLAB_BYTES) /* the first holds the region's counts */
#define MALLOC_SLABS 256 /* 1 MiB of slabs from malloc before regions */
#define NOT_A_SLAB SIZE_MAX

typedef struct region {
    atomic_size_t live;     /* slabs not yet given back, + 1 while its thread carves from it */
    atomic_size_t sweep_at; /* the memory of those given back is dropped when live falls to it;
                             * 0 while its thread carves from it */
    _Atomic uint64_t gone[REGION_SLABS / 64]; /* slabs given back, memory not yet dropped */
} region;

typedef struct slab {
    atomic_size_t live; /* nodes not yet freed, + 1 while its thread hands out from it */
    region *home;       /* the region it was carved from; NULL: from malloc */
} slab;

_Static_assert(REGION_BYTES % SLAB_BYTES == 0 && REGION_SLABS % 64 == 0 && sizeof(region) <= SLAB_BYTES,
               "slabs tile a region");

/* Where a slab's nodes start, and how many it holds. */
#define SLAB_FIRST ((sizeof(slab) + _Alignof(jc_value) - 1) / _Alignof(jc_value) * _Alignof(jc_value))
#define SLAB_NODES ((SLAB_BYTES - SLAB_FIRST) / sizeof(jc_value))

static __thread jc_value *spare; /* a list through each node's first bytes */
static __thread unsigned nspare;
static __thread slab *current;   /* the slab this thread hands out from */
static __thread size_t handed;   /* ... and how many of its nodes it has */
static __thread bool registered; /* the thread's end gives them back */
static __thread size_t malloc_slabs; /* slabs this thread took from malloc */
static __thread region *carving;     /* the region this thread carves slabs from */
static __thread size_t carved;       /* ... and how many of its slabs it has */
static atomic_size_t regions_live;   /* regions not yet given back (tests) */
static pthread_key_t node_key;
static pthread_once_t node_once = PTHREAD_ONCE_INIT;
static bool node_key_made;

/* Gives the memory of r's slabs given back since the last sweep to the
 * system, a run of neighbouring slabs a call. The caller holds a count of
 * r, so it stays mapped. */
static void region_sweep(region *r)
{
    if ((size_t)sysconf(_SC_PAGESIZE) != SLAB_BYTES)
        return; /* a drop of slabs would take whole pages: live neighbours too */
    uint64_t gone[REGION_SLABS / 64];
    for (size_t w = 0; w < REGION_SLABS / 64; w++)
        gone[w] = atomic_exchange_explicit(&r->gone[w], 0, memory_order_acquire);
    size_t from = 0, n = 0;
    for (size_t i = 0; i <= REGION_SLABS; i++) {
        if (i < REGION_SLABS && (gone[i / 64] >> (i % 64) & 1)) {
            if (!n++)
                from = i;
        } else if (n) {
            (void)madvise((char *)r + SLAB_BYTES * from, SLAB_BYTES * n, MADV_DONTNEED);
            n = 0;
        }
    }
}

/* Gives back one count of r: a slab's (its index) or its thread's
 * (NOT_A_SLAB). */
static void region_release(region *r, size_t index)
{
    if (index != NOT_A_SLAB)
        atomic_fetch_or_explicit(&r->gone[index / 64], (uint64_t)1 << (index % 64), memory_order_release);
    else /* its thread moves on: no more slabs to come, sweeps begin */
        atomic_store_explicit(&r->sweep_at, REGION_SLABS / 8, memory_order_relaxed);
    size_t live = atomic_load_explicit(&r->live, memory_order_relaxed);
    size_t at = atomic_load_explicit(&r->sweep_at, memory_order_relaxed);
    if (live > 1 && live - 1 <= at &&
        atomic_compare_exchange_strong_explicit(&r->sweep_at, &at, (live - 1) / 4, memory_order_relaxed,
                                                memory_order_relaxed))
        region_sweep(r);
    if (atomic_fetch_sub_explicit(&r->live, 1, memory_order_acq_rel) == 1) {
        munmap(r, REGION_BYTES);
        atomic_fetch_sub_explicit(&regions_live, 1, memory_order_relaxed);
    }
}

static void slab_release(slab *s)
{
    if (atomic_fetch_sub_explicit(&s->live, 1, memory_order_acq_rel) == 1) {
        if (s->home)
            region_release(s->home, (size_t)((char *)s - (char *)s->home) / SLAB_BYTES);
        else
            free(s);
    }
}

/* A new slab for this thread, its count not yet set: from malloc for the
 * first MALLOC_SLABS, then carved from a region (from malloc again when
 * no region can be mapped). */
static slab *slab_new(void)
{
    if (malloc_slabs >= MALLOC_SLABS && (!carving || carved == REGION_SLABS)) {
        region *r = mmap(NULL, REGION_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (r != MAP_FAILED) {
#ifdef MADV_NOHUGEPAGE
            (void)madvise(r, REGION_BYTES, MADV_NOHUGEPAGE);
#endif
            atomic_init(&r->live, 1); /* this thread's, until it moves on */
            atomic_init(&r->sweep_at, 0); /* none while carved from */
            for (size_t w = 0; w < REGION_SLABS / 64; w++)
                atomic_init(&r->gone[w], 0);
            atomic_fetch_add_explicit(&regions_live, 1, memory_order_relaxed);
            if (carving)
                region_release(carving, NOT_A_SLAB);
            carving = r;
            carved = 1; /* the first slab's place holds the count */
        }
    }
    if (carving && carved < REGION_SLABS) {
        slab *s = (slab *)((char *)carving + SLAB_BYTES * carved++);
        atomic_fetch_add_explicit(&carving->live, 1, memory_order_relaxed);
        s->home = carving;
        return s;
    }
    slab *s = aligned_alloc(SLAB_BYTES, SLAB_BYTES);
    if (s) {
        malloc_slabs++;
        s->home = NULL;
    }
    return s;
}

static slab *slab_of(const jc_value *v)
{
    return (slab *)((uintptr_t)v & ~(uintptr_t)(SLAB_BYTES - 1));
}

static void nodes_give_back(void *unused)
{
    (void)unused;
    while (spare) {
        jc_value *next = *(jc_value **)spare;
        slab_release(slab_of(spare));
        spare = next;
    }
    nspare = 0;
    if (current)
        slab_release(current);
    current = NULL;
    if (carving)
        region_release(carving, NOT_A_SLAB);
    carving = NULL;
    /* Another destructor of this thread's that runs after this one and
     * makes or frees a value registers again, and is given back in the
     * next round of destructors. */
    registered = false;
}

static void node_key_make(void)
{
    node_key_made = pthread_key_create(&node_key, nodes_give_back) == 0;
}

/* A library unloaded (dlclose) leaves no destructor of its own behind for
 * threads that end after it. */
__attribute__((destructor)) static void node_key_drop(void)
{
    if (node_key_made)
        pthread_key_delete(node_key);
    node_key_made = false; /* a thread still running sets no deleted key */
}

static void node_register(void)
{
    registered = true;
    pthread_once(&node_once, node_key_make);
    if (node_key_made)
        pthread_setspecific(node_key, &spare); /* any non-NULL value: the destructor runs */
}
#endif

#ifndef JC_VALUE_PLAIN_MALLOC
/* node_new when the thread has no spare: from its slab, or a new one. */
__attribute__((noinline)) static jc_value *node_from_slab(void)
{
    if (!current || handed == SLAB_NODES) {
        if (!registered)
            node_register();
        slab *s = slab_new();
        if (!s)
            return NULL;
        atomic_init(&s->live, 1); /* this thread's, until it moves on */
        if (current)
            slab_release(current);
        current = s;
        handed = 0;
    }
    atomic_fetch_add_explicit(&current->live, 1, memory_order_relaxed);
    return (jc_value *)((char *)current + SLAB_FIRST + sizeof(jc_value) * handed++);
}

/* node_free when the spares are full, or the thread has not registered
 * its end yet. */
__attribute__((noinline)) static void node_free_slow(jc_value *v)
{
    if (!registered)
        node_register();
    if (nspare < NODE_SPARE) {
        *(jc_value **)v = spare;
        spare = v;
        nspare++;
        return;
    }
    slab_release(slab_of(v));
}
#endif

static inline jc_value *node_new(void)
{
#ifndef JC_VALUE_PLAIN_MALLOC
    jc_value *v = spare;
    if (v) {
        spare = *(jc_value **)v;
        nspare--;
        return v;
    }
    return node_from_slab();
#else
    return malloc(sizeof(jc_value));
#endif
}

static inline void node_free(jc_value *v)
{
#ifndef JC_VALUE_PLAIN_MALLOC
    if (nspare < NODE_SPARE && registered) {
        *(jc_value **)v = spare;
        spare = v;
        nspare++;
        return;
    }
    node_free_slow(v);
#else
    free(v);
#endif
}

static jc_value *new_value(jc_type t)
{
    jc_value *v = node_new(); /* not calloc: a value of every call's arguments pays it */
    if (!v) {
        jc__set_error(JC_ENOMEM, "out of memory making a %s value", jc_type_name(t));
        return NULL;
    }
    *v = (jc_value){0};
    v->type = (uint8_t)t;
    v->height = t == JC_TYPE_LIST || t == JC_TYPE_MAP; /* [] is one level */
    return v;
}

jc_value *jc__value_node(jc_type t)
{
    return new_value(t);
}

size_t jc__value_regions(void)
{
#ifndef JC_VALUE_PLAIN_MALLOC
    return atomic_load_explicit(&regions_live, memory_order_relaxed);
#else
    return SIZE_MAX;
#endif
}

/* ---- text ---- */


/* 0, or JC_EINVAL naming api, what the text is and the byte offset of the
 * first byte that is not UTF-8. */
static int check_utf8(const char *api, const char *what, const char *text, size_t len)
{
    size_t at = jc__utf8_error_at(text, len);
    if (at == len)
        return 0;
    return jc__set_error(JC_EINVAL, "%s: the %s is not valid UTF-8 at byte offset %zu (0x%02x)%s", api, what, at,
                         (unsigned char)text[at],
                         strcmp(what, "text") == 0 ? "; use jc_bytes for binary data" : "");
}

/* ---- nesting ---- */

/* Levels a container adds to the values inside it (a jc_kw adds none). */
static unsigned levels(const jc_value *v)
{
    return v->type == JC_TYPE_LIST || v->type == JC_TYPE_MAP;
}

/* Whether item may go into c (a list, map or jc_kw): it must have no owner
 * yet and not be c or above c (a value inside itself would be freed and
 * walked forever), and c's outermost container must stay within
 * JC__MAX_DEPTH levels. The walk up is short: a jc_kw is never inside
 * anything, so every step but one adds a level. Returns 0, or JC_EINVAL with
 * the message set and *owned telling whether item belongs to a value already
 * (then the caller must not free it). */
static int check_adopt(const jc_value *c, const jc_value *item, const char *api, bool *owned)
{
    *owned = true;
    if (item->parent)
        return jc__set_error(JC_EINVAL, "%s: the value is already inside another list, map or jc_kw "
                             "(a value has one owner; add a jc_value_copy of it)", api);
    unsigned h = item->height;
    for (const jc_value *p = c; p; p = p->parent) {
        if (p == item)
            return jc__set_error(JC_EINVAL, "%s: the value would contain itself", api);
        h += levels(p);
    }
    *owned = false;
    if (h > JC__MAX_DEPTH)
        return jc__set_error(JC_EINVAL, "%s: the value would be nested more than " JC__STR(JC__MAX_DEPTH)
                             " levels deep (lists and maps; the limit of the encoding)", api);
    return 0;
}

/* Makes c the owner of item and raises the heights above it. */
static void adopt(jc_value *c, jc_value *item)
{
    item->parent = c;
    unsigned h = item->height;
    for (jc_value *p = c; p; p = p->parent) {
        h += levels(p);
        if (h <= p->height)
            break;
        p->height = (uint8_t)h;
    }
}

/* After a child of p was replaced: recomputes the heights from p up. */
static void refresh_heights(jc_value *p)
{
    for (; p; p = p->parent) {
        unsigned h = levels(p);
        if (p->type == JC_TYPE_KWARG)
            h = p->u.kw.val->height;
        else
            for (size_t i = 0; i < p->len; i++)
                if (p->u.items[i]->height + 1u > h)
                    h = p->u.items[i]->height + 1u;
        if (h == p->height)
            break;
        p->height = (uint8_t)h;
    }
}

jc_value *jc_null(void)
{
    return new_value(JC_TYPE_NULL);
}

jc_value *jc_bool(bool b)
{
    jc_value *v = new_value(JC_TYPE_BOOL);
    if (v)
        v->u.b = b;
    return v;
}

jc_value *jc_int(int64_t i)
{
    jc_value *v = new_value(JC_TYPE_INT);
    if (v)
        v->u.i = i;
    return v;
}

jc_value *jc_double(double d)
{
    jc_value *v = new_value(JC_TYPE_DOUBLE);
    if (v)
        v->u.d = d;
    return v;
}

static jc_value *new_blob(jc_type t, const void *p, size_t len)
{
    jc_value *v = new_value(t);
    if (!v)
        return NULL;
    v->u.s = malloc(len + 1);
    if (!v->u.s) {
        node_free(v);
        jc__set_error(JC_ENOMEM, "out of memory copying %zu bytes", len);
        return NULL;
    }
    if (len)
        memcpy(v->u.s, p, len);
    v->u.s[len] = '\0';
    v->len = len;
    return v;
}

jc_value *jc_strn(const char *s, size_t len)
{
    if (!s) {
        jc__set_error(JC_EINVAL, "jc_str: NULL string");
        return NULL;
    }
    if (memchr(s, '\0', len)) {
        jc__set_error(JC_EINVAL, "jc_strn: the text contains a NUL byte; use jc_bytes for binary data");
        return NULL;
    }
    if (check_utf8("jc_strn", "text", s, len))
        return NULL;
    return new_blob(JC_TYPE_STR, s, len);
}

jc_value *jc_str(const char *s)
{
    if (!s) {
        jc__set_error(JC_EINVAL, "jc_str: NULL string");
        return NULL;
    }
    size_t len = strlen(s);
    if (check_utf8("jc_str", "text", s, len))
        return NULL;
    return new_blob(JC_TYPE_STR, s, len);
}

jc_value *jc__str_stored(const char *s, size_t len)
{
    if (memchr(s, '\0', len)) {
        jc__set_error(JC_EINVAL, "a string contains a NUL byte");
        return NULL;
    }
    return new_blob(JC_TYPE_STR, s, len);
}

jc_value *jc__blob_take(int type, char *s, size_t len)
{
    jc_value *v = new_value((jc_type)type);
    if (!v) {
        free(s);
        return NULL;
    }
    s[len] = '\0';
    v->u.s = s;
    v->len = len;
    return v;
}

jc_value *jc_bytes(const void *p, size_t len)
{
    if (!p && len) {
        jc__set_error(JC_EINVAL, "jc_bytes: NULL pointer with length %zu", len);
        return NULL;
    }
    return new_blob(JC_TYPE_BYTES, p, len);
}

static jc_value *new_array(jc_type t, const void *p, size_t n, bool borrow)
{
    if (!p && n) {
        jc__set_error(JC_EINVAL, "%s: NULL pointer with %zu elements",
                      t == JC_TYPE_DOUBLES ? "jc_doubles" : "jc_ints", n);
        return NULL;
    }
    if (n > SIZE_MAX / 8) {
        jc__set_error(JC_EINVAL, "typed array of %zu elements is too large", n);
        return NULL;
    }
    jc_value *v = new_value(t);
    if (!v)
        return NULL;
    v->len = n;
    if (borrow) {
        v->flags |= JC__V_BORROWED;
        v->u.arr = p;
        return v;
    }
    void *copy = malloc(n ? n * 8 : 1);
    if (!copy) {
        node_free(v);
        jc__set_error(JC_ENOMEM, "out of memory copying an array of %zu elements", n);
        return NULL;
    }
    if (n)
        memcpy(copy, p, n * 8);
    v->u.arr = copy;
    return v;
}

jc_value *jc_doubles(const double *p, size_t n) { return new_array(JC_TYPE_DOUBLES, p, n, false); }
jc_value *jc_ints(const int64_t *p, size_t n) { return new_array(JC_TYPE_INTS, p, n, false); }
jc_value *jc_doubles_ref(const double *p, size_t n) { return new_array(JC_TYPE_DOUBLES, p, n, true); }

static jc_value *take_array(jc_type t, void *p, size_t n)
{
    if (!p) {
        jc__set_error(JC_EINVAL, "%s: NULL pointer", t == JC_TYPE_DOUBLES ? "jc_doubles_take" : "jc_ints_take");
        return NULL;
    }
    jc_value *v = new_array(t, p, n, true);
    if (!v) {
        free(p);
        return NULL;
    }
    v->flags &= (uint8_t)~JC__V_BORROWED; /* the value owns p now */
    return v;
}

jc_value *jc_doubles_take(double *p, size_t n) { return take_array(JC_TYPE_DOUBLES, p, n); }
jc_value *jc_ints_take(int64_t *p, size_t n) { return take_array(JC_TYPE_INTS, p, n); }
jc_value *jc_ints_ref(const int64_t *p, size_t n) { return new_array(JC_TYPE_INTS, p, n, true); }

jc_value *jc_kw(const char *name, jc_value *val)
{
    if (!name || !*name) {
        jc_value_free(val);
        jc__set_error(JC_EINVAL, "jc_kw: the name is %s", name ? "empty" : "NULL");
        return NULL;
    }
    if (check_utf8("jc_kw", "name", name, strlen(name))) {
        jc_value_free(val);
        return NULL;
    }
    if (!val) {
        /* The cause is copied first: the message buffer is the target. */
        char why[256];
        snprintf(why, sizeof why, "%s", jc_errmsg());
        jc__set_error(JC_EINVAL, "jc_kw(\"%s\"): the value is NULL: a value builder failed "
                      "(the thread's last error: %s)", name, why);
        return NULL;
    }
    if (val->type == JC_TYPE_KWARG) {
        jc_value_free(val);
        jc__set_error(JC_EINVAL, "jc_kw(\"%s\"): the value is itself a jc_kw named value", name);
        return NULL;
    }
    if (val->parent) { /* not freed: it belongs to another value */
        jc__set_error(JC_EINVAL, "jc_kw(\"%s\"): the value is already inside another list, map or jc_kw "
                      "(a value has one owner; add a jc_value_copy of it)", name);
        return NULL;
    }
    jc_value *v = new_value(JC_TYPE_KWARG);
    char *copy = jc__strdup(name);
    if (!v || !copy) {
        if (v)
            node_free(v);
        free(copy);
        jc_value_free(val);
        jc__set_error(JC_ENOMEM, "out of memory in jc_kw(\"%s\")", name);
        return NULL;
    }
    v->u.kw.name = copy;
    v->u.kw.val = val;
    adopt(v, val);
    return v;
}

jc_value *jc__file_value(const char *path, const unsigned char payload[JC__FILE_DIGEST_LEN])
{
    jc_value *v = new_value(JC_TYPE_FILE);
    if (!v)
        return NULL;
    v->digest = malloc(JC__FILE_DIGEST_LEN);
    if (path) {
        v->len = strlen(path);
        v->u.s = malloc(v->len + 1);
    }
    if (!v->digest || (path && !v->u.s)) {
        jc_value_free(v);
        jc__set_error(JC_ENOMEM, "out of memory making a file value");
        return NULL;
    }
    memcpy(v->digest, payload, JC__FILE_DIGEST_LEN);
    if (path)
        memcpy(v->u.s, path, v->len + 1);
    return v;
}

jc_value *jc__left_out_value(void)
{
    return new_value(JC_TYPE_LEFT_OUT);
}

jc_value *jc__ref_value(uint64_t batch, size_t index, const unsigned char payload[JC__REF_PAYLOAD_LEN])
{
    jc_value *v = new_value(JC_TYPE_REF);
    if (!v)
        return NULL;
    v->u.ref.batch = batch;
    v->u.ref.index = index;
    if (payload) {
        v->digest = malloc(JC__REF_PAYLOAD_LEN);
        if (!v->digest) {
            jc_value_free(v);
            jc__set_error(JC_ENOMEM, "out of memory making a reference");
            return NULL;
        }
        memcpy(v->digest, payload, JC__REF_PAYLOAD_LEN);
    }
    return v;
}

int jc__ref_resolve(jc_value *ref, const uint8_t check[16], const jc_value *target)
{
    if (!ref->digest && !(ref->digest = malloc(JC__REF_PAYLOAD_LEN)))
        return jc__set_error(JC_ENOMEM, "out of memory resolving a reference");
    ref->digest[0] = 1;
    memcpy(ref->digest + 1, check, 16);
    ref->u.ref.target = target;
    return 0;
}

int jc__value_each_ref(jc_value *v, int (*fn)(jc_value *ref, void *ctx), void *ctx)
{
    if (!v)
        return 0;
    switch ((jc_type)v->type) {
    case JC_TYPE_REF: return fn(v, ctx);
    case JC_TYPE_LIST:
    case JC_TYPE_MAP:
        for (size_t i = 0; i < v->len; i++) {
            int rc = jc__value_each_ref(v->u.items[i], fn, ctx);
            if (rc)
                return rc;
        }
        return 0;
    case JC_TYPE_KWARG: return jc__value_each_ref(v->u.kw.val, fn, ctx);
    default: return 0;
    }
}

jc_value *jc__digest_value(const unsigned char payload[25])
{
    jc_value *v = new_blob(JC_TYPE_DIGEST, payload, 25);
    if (v)
        v->len = 25;
    return v;
}

/* The element count of a digest value. */
size_t jc__v_digest_count(const jc_value *v)
{
    uint64_t n = 0;
    for (int b = 0; b < 8; b++)
        n |= (uint64_t)(unsigned char)v->u.s[1 + b] << (8 * b);
    return (size_t)n;
}

jc_value *jc_list_new(void)
{
    return new_value(JC_TYPE_LIST);
}

jc_value *jc_map_new(void)
{
    return new_value(JC_TYPE_MAP);
}

static int reserve(jc_value *c, size_t need)
{
    if (need <= c->cap)
        return 0;
    size_t cap = c->cap ? c->cap * 2 : 4;
    while (cap < need)
        cap *= 2;
    jc_value **items = realloc(c->u.items, cap * sizeof *items);
    if (!items)
        return jc__set_error(JC_ENOMEM, "out of memory growing a %s", jc_type_name(c->type));
    c->u.items = items;
    if (c->type == JC_TYPE_MAP) {
        char **keys = realloc(c->keys, cap * sizeof *keys);
        if (!keys)
            return jc__set_error(JC_ENOMEM, "out of memory growing a map");
        c->keys = keys;
    }
    c->cap = cap;
    return 0;
}

int jc_list_append(jc_value *list, jc_value *item)
{
    if (!list || list->type != JC_TYPE_LIST) {
        jc_value_free(item);
        return jc__set_error(JC_ETYPE, "jc_list_append: not a list");
    }
    if (!item)
        return jc__set_error(JC_EINVAL, "jc_list_append: item %zu is NULL", list->len);
    if (item->type == JC_TYPE_KWARG) {
        jc_value_free(item);
        return jc__set_error(JC_EINVAL, "jc_list_append: item %zu is a jc_kw named value; "
                             "lists hold plain values", list->len);
    }
    bool owned;
    int rc = check_adopt(list, item, "jc_list_append", &owned);
    if (rc) {
        if (!owned)
            jc_value_free(item);
        return rc;
    }
    return jc__list_push(list, item);
}

int jc__list_push(jc_value *list, jc_value *item)
{
    int rc = reserve(list, list->len + 1);
    if (rc) {
        jc_value_free(item);
        return rc;
    }
    list->u.items[list->len++] = item;
    item->parent = NULL; /* taken out of a container being taken apart */
    adopt(list, item);
    return 0;
}

/* Binary search for key; returns its index, or -(insertion point) - 1. */
ptrdiff_t jc__v_map_find(const jc_value *m, const char *key)
{
    size_t lo = 0, hi = m->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->keys[mid], key);
        if (c == 0)
            return (ptrdiff_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(ptrdiff_t)lo - 1;
}

/* Inserts key (taken over) -> v (taken over). With replace false a repeated
 * key is an error. */
static int map_put(jc_value *m, char *key, jc_value *v, bool replace)
{
    ptrdiff_t at = jc__v_map_find(m, key);
    if (at >= 0) {
        if (!replace) {
            jc__set_error(JC_EINVAL, "jc_map: the key \"%s\" is given twice", key);
            free(key);
            jc_value_free(v);
            return JC_EINVAL;
        }
        free(key);
        jc_value_free(m->u.items[at]);
        m->u.items[at] = v;
        v->parent = NULL;
        adopt(m, v);
        refresh_heights(m); /* the old value may have been the deepest */
        return 0;
    }
    int rc = reserve(m, m->len + 1);
    if (rc) {
        free(key);
        jc_value_free(v);
        return rc;
    }
    size_t pos = (size_t)(-at - 1);
    memmove(m->keys + pos + 1, m->keys + pos, (m->len - pos) * sizeof *m->keys);
    memmove(m->u.items + pos + 1, m->u.items + pos, (m->len - pos) * sizeof *m->u.items);
    m->keys[pos] = key;
    m->u.items[pos] = v;
    m->len++;
    v->parent = NULL;
    adopt(m, v);
    return 0;
}

int jc__map_insert(jc_value *map, char *key, jc_value *v)
{
    return map_put(map, key, v, false);
}

int jc_map_set(jc_value *map, const char *key, jc_value *v)
{
    if (!map || map->type != JC_TYPE_MAP) {
        jc_value_free(v);
        return jc__set_error(JC_ETYPE, "jc_map_set: not a map");
    }
    if (!key) {
        jc_value_free(v);
        return jc__set_error(JC_EINVAL, "jc_map_set: NULL key");
    }
    if (!v)
        return jc__set_error(JC_EINVAL, "jc_map_set(\"%s\"): the value is NULL", key);
    if (v->type == JC_TYPE_KWARG) {
        jc_value_free(v);
        return jc__set_error(JC_EINVAL, "jc_map_set(\"%s\"): the value is a jc_kw named value", key);
    }
    bool owned;
    int rc = check_utf8("jc_map_set", "key", key, strlen(key));
    if (!rc)
        rc = check_adopt(map, v, "jc_map_set", &owned);
    else
        owned = false;
    if (rc) {
        if (!owned)
            jc_value_free(v);
        return rc;
    }
    char *copy = jc__strdup(key);
    if (!copy) {
        jc_value_free(v);
        return jc__set_error(JC_ENOMEM, "out of memory in jc_map_set");
    }
    return map_put(map, copy, v, true);
}

static void free_all(jc_value *const *items, size_t n, size_t from)
{
    for (size_t i = from; i < n; i++)
        jc_value_free(items[i]);
}

jc_value *jc_list_of(jc_value *const *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!items[i]) {
            free_all(items, n, 0);
            jc__set_error(JC_EINVAL, "jc_list: item %zu is NULL", i);
            return NULL;
        }
    jc_value *list = jc_list_new();
    if (!list || reserve(list, n)) {
        jc_value_free(list);
        free_all(items, n, 0);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (jc_list_append(list, items[i])) {
            free_all(items, n, i + 1);
            jc_value_free(list);
            return NULL;
        }
    return list;
}

jc_value *jc_map_of(jc_value *const *entries, size_t n)
{
    jc_value *map = jc_map_new();
    if (!map) {
        free_all(entries, n, 0);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        jc_value *e = entries[i];
        int rc;
        if (!e) {
            rc = jc__set_error(JC_EINVAL, "jc_map: entry %zu is NULL", i);
        } else if (e->type != JC_TYPE_KWARG) {
            rc = jc__set_error(JC_EINVAL, "jc_map: entry %zu is a %s; make entries with jc_kw(name, value)",
                               i, jc_type_name(e->type));
            jc_value_free(e);
        } else if (e->u.kw.val->type == JC_TYPE_KWARG) {
            rc = jc__set_error(JC_EINVAL, "jc_map: the value of \"%s\" is a jc_kw named value",
                               e->u.kw.name);
            jc_value_free(e);
        } else {
            /* The entry's name and value move into the map (map_put frees
             * them on failure); only the shell is left to free. The name
             * was checked by jc_kw. */
            jc_value *val = e->u.kw.val;
            bool owned;
            val->parent = NULL;
            rc = check_adopt(map, val, "jc_map", &owned);
            if (rc) {
                jc_value_free(e);
            } else {
                rc = map_put(map, e->u.kw.name, val, false);
                node_free(e); /* the shell only: its name and value are the map's */
            }
        }
        if (rc) {
            free_all(entries, n, i + 1);
            jc_value_free(map);
            return NULL;
        }
    }
    return map;
}

void jc_value_free(jc_value *v)
{
    if (!v)
        return;
    switch ((jc_type)v->type) {
    case JC_TYPE_STR:
    case JC_TYPE_BYTES:
    case JC_TYPE_DIGEST:
    case JC_TYPE_FILE:
        free(v->u.s);
        break;
    case JC_TYPE_DOUBLES:
    case JC_TYPE_INTS:
        if (!(v->flags & JC__V_BORROWED))
            free((void *)v->u.arr);
        break;
    case JC_TYPE_MAP:
        for (size_t i = 0; i < v->len; i++)
            free(v->keys[i]);
        free(v->keys);
        /* fall through */
    case JC_TYPE_LIST:
        for (size_t i = 0; i < v->len; i++)
            jc_value_free(v->u.items[i]);
        free(v->u.items);
        break;
    case JC_TYPE_KWARG:
        free(v->u.kw.name);
        jc_value_free(v->u.kw.val);
        break;
    default:
        break;
    }
    if (v->digest)
        free(v->digest);
    node_free(v);
}

jc_value *jc_value_copy(const jc_value *v)
{
    if (!v) {
        jc__set_error(JC_EINVAL, "jc_value_copy: NULL value");
        return NULL;
    }
    switch ((jc_type)v->type) {
    case JC_TYPE_NULL: return jc_null();
    case JC_TYPE_BOOL: return jc_bool(v->u.b);
    case JC_TYPE_INT: return jc_int(v->u.i);
    case JC_TYPE_DOUBLE: return jc_double(v->u.d);
    case JC_TYPE_STR: return new_blob(JC_TYPE_STR, v->u.s, v->len);
    case JC_TYPE_BYTES: return new_blob(JC_TYPE_BYTES, v->u.s, v->len);
    case JC_TYPE_DIGEST: return jc__digest_value((const unsigned char *)v->u.s);
    case JC_TYPE_FILE: return jc__file_value(v->u.s, v->digest);
    case JC_TYPE_LEFT_OUT: return jc__left_out_value();
    case JC_TYPE_REF: {
        if (v->u.ref.target) /* in a function's arguments: the value it stands for */
            return jc_value_copy(v->u.ref.target);
        jc_value *c = jc__ref_value(v->u.ref.batch, v->u.ref.index, v->digest);
        if (c)
            c->u.ref.target = v->u.ref.target;
        return c;
    }
    case JC_TYPE_DOUBLES: return jc_doubles(v->u.arr, v->len);
    case JC_TYPE_INTS: return jc_ints(v->u.arr, v->len);
    case JC_TYPE_KWARG: return jc_kw(v->u.kw.name, jc_value_copy(v->u.kw.val));
    case JC_TYPE_LIST:
    case JC_TYPE_MAP: {
        jc_value *c = new_value((jc_type)v->type);
        if (!c || reserve(c, v->len)) {
            jc_value_free(c);
            return NULL;
        }
        for (size_t i = 0; i < v->len; i++) {
            jc_value *item = jc_value_copy(v->u.items[i]);
            char *key = v->type == JC_TYPE_MAP ? jc__strdup(v->keys[i]) : NULL;
            if (!item || (v->type == JC_TYPE_MAP && !key)) {
                jc_value_free(item);
                free(key);
                jc_value_free(c);
                jc__set_error(JC_ENOMEM, "out of memory copying a value");
                return NULL;
            }
            /* Keys are already sorted and unique: append in order. */
            c->u.items[i] = item;
            item->parent = c;
            if (key)
                c->keys[i] = key;
            c->len = i + 1;
        }
        c->height = v->height;
        return c;
    }
    }
    jc__set_error(JC_EINVAL, "jc_value_copy: bad value type %d", v->type);
    return NULL;
}

const char *jc_type_name(jc_type t)
{
    static const char *const names[] = {"null", "bool", "int", "double", "str", "bytes",
                                        "doubles", "ints", "list", "map", "named argument", "digest",
                                        "file", "left out", "reference"};
    return (unsigned)t < sizeof names / sizeof *names ? names[t] : "unknown";
}
