/*
 * Code fingerprints of registered functions (fingerprint.h): the cache of
 * objects and results behind one mutex, and the public functions; a stub
 * where the build has no libelf and capstone.
 */
#include "function/fingerprint.h"

#include <string.h>
#include "fp_int.h"

#if !JC_FP_ENABLED

int jc__fingerprint_supported(void) { return 0; }

int jc__code_fingerprint_trace(const void *code, uint8_t out[JC__FINGERPRINT_LEN], FILE *trace)
{
    (void)code;
    memset(out, 0, JC__FINGERPRINT_LEN);
    if (trace)
        fprintf(trace, "fingerprint: not supported by this build\n");
    return 0;
}

int jc__code_fingerprint_addr(const void *code, uint8_t out[JC__FINGERPRINT_LEN])
{
    return jc__code_fingerprint_trace(code, out, NULL);
}

int jc__code_fingerprint(jc_fn fn, uint8_t out[JC__FINGERPRINT_LEN])
{
    return jc__code_fingerprint_trace((const void *)fn, out, NULL);
}

void jc__fingerprint_reset(void) {}

#else /* JC_FP_ENABLED */
/* ---- the cache: objects and results, behind one mutex ---- */

typedef struct fp_memo {
    uintptr_t code;
    bool known;
    uint8_t fp[JC__FINGERPRINT_LEN];
} fp_memo;

static pthread_mutex_t fp_lock = PTHREAD_MUTEX_INITIALIZER;
static fp_obj **fp_objs;
static size_t fp_nobjs, fp_capobjs;
/* Results in the order computed; a linear search, since a program registers
 * tens of functions and asks once per function per run. */
static fp_memo *fp_memos;
static size_t fp_nmemos, fp_capmemos;
static unsigned long long fp_subs_seen; /* dl_iterate_phdr's unload count */

static void fp_clear_locked(void)
{
    for (size_t i = 0; i < fp_nobjs; i++)
        jc__fp_obj_free(fp_objs[i]);
    free(fp_objs);
    free(fp_memos);
    fp_objs = NULL;
    fp_memos = NULL;
    fp_nobjs = fp_capobjs = fp_nmemos = fp_capmemos = 0;
}

/* What dl_iterate_phdr tells about the object holding an address. */
typedef struct fp_where {
    uintptr_t addr;
    bool found;
    char path[PATH_MAX];
    uintptr_t bias;
    const ElfW(Phdr) *phdr;
    size_t phnum;
    unsigned long long subs;
} fp_where;

static int fp_where_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    fp_where *w = arg;
    if (size < offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs)
        return 1;
    w->subs = info->dlpi_subs;
    if (w->addr == 0)
        return 1; /* only the unload count was wanted */
    for (size_t i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        if (p->p_type != PT_LOAD || w->addr < info->dlpi_addr + p->p_vaddr ||
            w->addr - (info->dlpi_addr + p->p_vaddr) >= p->p_memsz)
            continue;
        /* The main program has an empty name; the path it was started from
         * may have been replaced since, /proc/self/exe may not. */
        const char *name = info->dlpi_name && *info->dlpi_name ? info->dlpi_name : "/proc/self/exe";
        if (strlen(name) >= sizeof w->path)
            return 1;
        strcpy(w->path, name);
        w->found = true;
        w->bias = info->dlpi_addr;
        w->phdr = info->dlpi_phdr;
        w->phnum = info->dlpi_phnum;
        return 1;
    }
    return 0;
}

/* The tables of the object described by wh, read on first use. */
static const fp_obj *fp_obj_get_locked(const fp_where *wh)
{
    for (size_t i = 0; i < fp_nobjs; i++)
        if (fp_objs[i]->bias == wh->bias && fp_objs[i]->phdr == wh->phdr && strcmp(fp_objs[i]->path, wh->path) == 0)
            return fp_objs[i];
    if (jc__grow(&fp_objs, &fp_capobjs, fp_nobjs + 1, sizeof *fp_objs) != 0)
        return NULL;
    fp_obj *o = jc__fp_obj_load(wh->path, wh->bias, wh->phdr, wh->phnum);
    if (o)
        fp_objs[fp_nobjs++] = o;
    return o;
}

static int fp_lookup_locked(uintptr_t code, uint8_t out[JC__FINGERPRINT_LEN], FILE *trace)
{
    fp_where *wh = calloc(1, sizeof *wh);
    if (!wh)
        return FP_NOMEM;
    wh->addr = code;
    dl_iterate_phdr(fp_where_cb, wh);
    if (wh->subs != fp_subs_seen) { /* an object was unloaded: addresses may be reused */
        fp_clear_locked();
        fp_subs_seen = wh->subs;
    }
    int rc = FP_UNKNOWN;
    const fp_obj *o = NULL;
    if (!wh->found) {
        if (trace)
            fprintf(trace, "fingerprint: %#lx is in no loaded object\n", (unsigned long)code);
    } else if (!(o = fp_obj_get_locked(wh))) {
        rc = FP_NOMEM;
    } else if (!o->usable) {
        if (trace)
            fprintf(trace, "fingerprint: cannot use the ELF file %s\n", o->path);
    } else {
        rc = jc__fp_compute(o, code - o->bias, out, trace);
    }
    free(wh);
    return rc;
}

int jc__fingerprint_supported(void) { return 1; }

int jc__code_fingerprint_trace(const void *code, uint8_t out[JC__FINGERPRINT_LEN], FILE *trace)
{
    memset(out, 0, JC__FINGERPRINT_LEN);
    if (!code)
        return 0;
    pthread_mutex_lock(&fp_lock);
    int rc = fp_lookup_locked((uintptr_t)code, out, trace);
    pthread_mutex_unlock(&fp_lock);
    if (rc != FP_OK)
        memset(out, 0, JC__FINGERPRINT_LEN);
    return rc == FP_OK;
}

int jc__code_fingerprint_addr(const void *code, uint8_t out[JC__FINGERPRINT_LEN])
{
    memset(out, 0, JC__FINGERPRINT_LEN);
    if (!code)
        return 0;
    uintptr_t c = (uintptr_t)code;
    pthread_mutex_lock(&fp_lock);
    fp_where probe = {.addr = 0};
    dl_iterate_phdr(fp_where_cb, &probe);
    if (probe.subs != fp_subs_seen) {
        fp_clear_locked();
        fp_subs_seen = probe.subs;
    }
    for (size_t i = 0; i < fp_nmemos; i++) {
        if (fp_memos[i].code == c) {
            bool known = fp_memos[i].known;
            if (known)
                memcpy(out, fp_memos[i].fp, JC__FINGERPRINT_LEN);
            pthread_mutex_unlock(&fp_lock);
            return known;
        }
    }
    int rc = fp_lookup_locked(c, out, NULL);
    if (rc != FP_OK)
        memset(out, 0, JC__FINGERPRINT_LEN);
    if (rc != FP_NOMEM && jc__grow(&fp_memos, &fp_capmemos, fp_nmemos + 1, sizeof *fp_memos) == 0) {
        fp_memo *m = &fp_memos[fp_nmemos++];
        m->code = c;
        m->known = rc == FP_OK;
        memcpy(m->fp, out, JC__FINGERPRINT_LEN);
    }
    pthread_mutex_unlock(&fp_lock);
    return rc == FP_OK;
}

int jc__code_fingerprint(jc_fn fn, uint8_t out[JC__FINGERPRINT_LEN])
{
    return jc__code_fingerprint_addr((const void *)fn, out);
}

void jc__fingerprint_reset(void)
{
    pthread_mutex_lock(&fp_lock);
    fp_clear_locked();
    pthread_mutex_unlock(&fp_lock);
}

#endif /* JC_FP_ENABLED */
