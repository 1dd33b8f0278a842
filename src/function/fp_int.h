/*
 * fp_int.h: what the files of the code fingerprint share (fingerprint.c,
 * fp_elf.c, fp_walk.c), and only they include.
 */
#ifndef JC_FP_INT_H
#define JC_FP_INT_H

#include "function/fingerprint.h"
#include "util/grow.h"

#include <stdio.h>
#include <string.h>

/*
 * fingerprint: see fingerprint.h for what is hashed, what is covered and the
 * cases that give "unknown".
 *
 * Layout of this file: the per-object tables read from the ELF file
 * (fp_obj_*), the walk that hashes a function and its callees (fp_walk_*),
 * and the cache of objects and results behind one mutex (public functions).
 *
 * Addresses: everything inside is a link-time virtual address (what the ELF
 * file says); the load bias is added only to read memory. Capstone is given
 * link-time addresses too, so branch targets compare directly with symbols.
 */

#if defined(JC_HAVE_FINGERPRINT) && JC_HAVE_FINGERPRINT && defined(__x86_64__) && defined(__linux__)
#define JC_FP_ENABLED 1
#else
#define JC_FP_ENABLED 0
#endif

#if JC_FP_ENABLED

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stddef.h>
#include <link.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>
#include <xxhash.h>
#if defined(__has_include)
#if __has_include(<capstone/capstone.h>)
#include <capstone/capstone.h>
#else
#include <capstone.h>
#endif
#else
#include <capstone/capstone.h>
#endif

/* Bounds of one fingerprint (see fingerprint.h). */
#define FP_MAX_FUNCS 256
#define FP_MAX_CODE (1u << 20)
#define FP_MAX_CONST_OBJECT 4096 /* bytes of a named read-only object hashed */
#define FP_MAX_STRING 1024       /* bytes of an anonymous string literal hashed */
#define FP_MAX_LOAD 64           /* bytes of an anonymous constant loaded by an instruction */

/* Outcomes of the internal steps; only FP_OK and FP_UNKNOWN reach callers
 * (as 1 and 0). FP_NOMEM is not cached: it may pass. */
enum { FP_OK = 1, FP_UNKNOWN = 0, FP_NOMEM = -1 };

/* ---- one loaded object's tables, read from its ELF file ---- */

typedef struct fp_sym {
    uint64_t addr, size;
    uint32_t name; /* offset in fp_obj.names */
    uint8_t local;
} fp_sym;

typedef struct fp_sec {
    uint64_t addr, size, flags;
    uint32_t type;
    uint32_t name;
} fp_sec;

typedef struct fp_slot { /* a GOT slot (or data word) a dynamic relocation fills */
    uint64_t addr;
    uint32_t name;
} fp_slot;

typedef struct fp_obj {
    char *path;
    uintptr_t bias;
    const ElfW(Phdr) *phdr; /* in memory; valid while the object is loaded */
    size_t phnum;
    fp_sym *funcs, *datas;
    size_t nfuncs, ndatas;
    fp_sec *secs;
    size_t nsecs;
    fp_slot *slots;
    size_t nslots;
    char *names; /* every name, NUL-terminated; offset 0 is "" */
    size_t names_len, names_cap;
    bool usable; /* false: the file could not be read or does not match */
    bool fixed;  /* ET_EXEC: linked at a fixed address, code holds absolute addresses */
} fp_obj;

/* Shared between the files of this folder (each defined in one of them). */
int jc__fp_compute(const fp_obj *o, uint64_t code, uint8_t out[JC__FINGERPRINT_LEN], FILE *trace);
const fp_sec *jc__fp_find_sec(const fp_obj *o, uint64_t addr);
const fp_slot *jc__fp_find_slot(const fp_obj *o, uint64_t addr);
const fp_sym *jc__fp_find_sym(const fp_sym *s, size_t n, uint64_t addr);
bool jc__fp_mapped(const fp_obj *o, uint64_t vaddr, uint64_t n, uint32_t need);
void jc__fp_obj_free(fp_obj *o);
fp_obj *jc__fp_obj_load(const char *path, uintptr_t bias, const ElfW(Phdr) *phdr, size_t phnum);
void jc__fp_peek(void *dst, uintptr_t src, size_t n);

#endif /* JC_FP_ENABLED */

#endif
