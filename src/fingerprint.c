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
#include "fingerprint.h"

#include <string.h>

#if defined(JC_HAVE_FINGERPRINT) && JC_HAVE_FINGERPRINT && defined(__x86_64__) && defined(__linux__)
#define JC_FP_ENABLED 1
#else
#define JC_FP_ENABLED 0
#endif

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

static void fp_obj_free(fp_obj *o)
{
    if (!o)
        return;
    free(o->path);
    free(o->funcs);
    free(o->datas);
    free(o->secs);
    free(o->slots);
    free(o->names);
    free(o);
}

/* Grows *arr (of *cap items of size sz) to hold n items; 0 or -1. */
static int fp_grow(void *arr, size_t *cap, size_t n, size_t sz)
{
    if (n <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < n)
        ncap *= 2;
    void *p = realloc(*(void **)arr, ncap * sz);
    if (!p)
        return -1;
    *(void **)arr = p;
    *cap = ncap;
    return 0;
}

/* Copies s into the object's name arena; returns its offset, or UINT32_MAX
 * when out of memory. */
static uint32_t fp_name(fp_obj *o, const char *s)
{
    size_t n = strlen(s) + 1;
    if (o->names_len + n > UINT32_MAX - 1 || fp_grow(&o->names, &o->names_cap, o->names_len + n, 1) != 0)
        return UINT32_MAX;
    memcpy(o->names + o->names_len, s, n);
    o->names_len += n;
    return (uint32_t)(o->names_len - n);
}

/* Reads n bytes of the process's memory. Not instrumented by ASan: a string
 * literal or const table read here may sit beside a redzone ASan poisoned,
 * and the caller has checked the range lies in a loaded segment. The
 * volatile read keeps the compiler from turning the loop into memcpy (which
 * ASan intercepts). */
__attribute__((no_sanitize_address, noinline))
static void fp_peek(void *dst, uintptr_t src, size_t n)
{
    unsigned char *d = dst;
    const volatile unsigned char *s = (const volatile unsigned char *)src;
    for (size_t i = 0; i < n; i++)
        d[i] = s[i];
}

/* True when [vaddr, vaddr+n) lies in one loaded segment whose flags include
 * need (PF_R, PF_X): then it is mapped and readable. */
static bool fp_mapped(const fp_obj *o, uint64_t vaddr, uint64_t n, uint32_t need)
{
    for (size_t i = 0; i < o->phnum; i++) {
        const ElfW(Phdr) *p = &o->phdr[i];
        if (p->p_type != PT_LOAD || (p->p_flags & need) != need || !(p->p_flags & PF_R))
            continue;
        if (vaddr >= p->p_vaddr && n <= p->p_memsz && vaddr - p->p_vaddr <= p->p_memsz - n)
            return true;
    }
    return false;
}

/* Symbols sort by address, then larger first, then globals first, then by
 * name: the first of a run of aliases is the one kept (deterministic). */
static const fp_obj *fp_sort_obj;
static int fp_sym_cmp(const void *a, const void *b)
{
    const fp_sym *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    if (x->size != y->size)
        return x->size > y->size ? -1 : 1;
    if (x->local != y->local)
        return x->local - y->local;
    return strcmp(fp_sort_obj->names + x->name, fp_sort_obj->names + y->name);
}

static int fp_slot_cmp(const void *a, const void *b)
{
    const fp_slot *x = a, *y = b;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* Sorts and drops exact duplicates (same address and size). qsort with a
 * global comparison context: called only under fp_lock. */
static size_t fp_sort_syms(const fp_obj *o, fp_sym *s, size_t n)
{
    if (n == 0)
        return 0;
    fp_sort_obj = o;
    qsort(s, n, sizeof *s, fp_sym_cmp);
    size_t k = 1;
    for (size_t i = 1; i < n; i++)
        if (s[i].addr != s[k - 1].addr || s[i].size != s[k - 1].size)
            s[k++] = s[i];
    return k;
}

/* The symbol of s[0..n) that contains addr, or NULL. Overlapping symbols are
 * rare (aliases were merged); a few steps back cover nested ones. */
static const fp_sym *fp_find_sym(const fp_sym *s, size_t n, uint64_t addr)
{
    size_t lo = 0, hi = n;
    while (lo < hi) { /* first symbol with s.addr > addr */
        size_t mid = lo + (hi - lo) / 2;
        if (s[mid].addr <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo, steps = 0; i > 0 && steps < 8; i--, steps++)
        if (addr - s[i - 1].addr < s[i - 1].size)
            return &s[i - 1];
    return NULL;
}

static const fp_sec *fp_find_sec(const fp_obj *o, uint64_t addr)
{
    for (size_t i = 0; i < o->nsecs; i++)
        if (addr >= o->secs[i].addr && addr - o->secs[i].addr < o->secs[i].size)
            return &o->secs[i];
    return NULL;
}

static const fp_slot *fp_find_slot(const fp_obj *o, uint64_t addr)
{
    size_t lo = 0, hi = o->nslots;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (o->slots[mid].addr == addr)
            return &o->slots[mid];
        if (o->slots[mid].addr < addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The GNU build ID in a run of ELF notes; its length, or 0. */
static size_t fp_note_build_id(const unsigned char *p, size_t n, const unsigned char **id)
{
    size_t off = 0;
    while (n - off >= sizeof(ElfW(Nhdr))) {
        ElfW(Nhdr) h;
        memcpy(&h, p + off, sizeof h);
        if (h.n_namesz > n || h.n_descsz > n) /* then the sums below cannot overflow */
            return 0;
        size_t name_at = off + sizeof h;
        size_t desc_at = name_at + (((size_t)h.n_namesz + 3) & ~(size_t)3);
        size_t next = desc_at + (((size_t)h.n_descsz + 3) & ~(size_t)3);
        if (next > n)
            return 0;
        if (h.n_type == NT_GNU_BUILD_ID && h.n_namesz == 4 && memcmp(p + name_at, "GNU", 4) == 0) {
            *id = p + desc_at;
            return h.n_descsz;
        }
        off = next;
    }
    return 0;
}

/* The build ID of the loaded object, read through its program headers. */
static size_t fp_mem_build_id(const fp_obj *o, unsigned char *buf, size_t cap)
{
    for (size_t i = 0; i < o->phnum; i++) {
        const ElfW(Phdr) *p = &o->phdr[i];
        if (p->p_type != PT_NOTE || p->p_filesz == 0 || p->p_filesz > 65536 ||
            !fp_mapped(o, p->p_vaddr, p->p_filesz, PF_R))
            continue;
        unsigned char *notes = malloc(p->p_filesz);
        if (!notes)
            return 0;
        fp_peek(notes, o->bias + p->p_vaddr, p->p_filesz);
        const unsigned char *id;
        size_t n = fp_note_build_id(notes, p->p_filesz, &id);
        if (n > 0 && n <= cap)
            memcpy(buf, id, n);
        free(notes);
        if (n > 0 && n <= cap)
            return n;
    }
    return 0;
}

/* The file matches what is loaded: same loadable segments, and the same
 * build ID when the loaded object has one. */
static bool fp_file_matches(const fp_obj *o, Elf *elf)
{
    size_t phnum;
    if (elf_getphdrnum(elf, &phnum) != 0 || phnum != o->phnum)
        return false;
    for (size_t i = 0; i < phnum; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(elf, (int)i, &ph))
            return false;
        const ElfW(Phdr) *m = &o->phdr[i];
        if (ph.p_type != m->p_type ||
            (ph.p_type == PT_LOAD && (ph.p_vaddr != m->p_vaddr || ph.p_memsz != m->p_memsz ||
                                      ph.p_flags != m->p_flags)))
            return false;
    }
    unsigned char mem_id[64];
    size_t mem_n = fp_mem_build_id(o, mem_id, sizeof mem_id);
    if (mem_n == 0)
        return true;
    for (size_t i = 0; i < phnum; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_NOTE)
            continue;
        Elf_Data *d = elf_getdata_rawchunk(elf, (int64_t)ph.p_offset, ph.p_filesz, ELF_T_BYTE);
        const unsigned char *id;
        size_t n = d && d->d_buf ? fp_note_build_id(d->d_buf, d->d_size, &id) : 0;
        if (n > 0)
            return n == mem_n && memcmp(id, mem_id, n) == 0;
    }
    return false;
}

/* Reads the FUNC and OBJECT symbols of one symbol table. */
static int fp_read_symtab(fp_obj *o, Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh)
{
    Elf_Data *d = elf_getdata(scn, NULL);
    if (!d || sh->sh_entsize == 0)
        return FP_UNKNOWN;
    size_t n = sh->sh_size / sh->sh_entsize, fcap = 0, dcap = 0;
    for (size_t i = 1; i < n; i++) {
        GElf_Sym s;
        if (!gelf_getsym(d, (int)i, &s))
            break;
        int type = GELF_ST_TYPE(s.st_info);
        bool func = type == STT_FUNC || type == STT_GNU_IFUNC;
        if ((!func && type != STT_OBJECT) || s.st_size == 0 || s.st_shndx == SHN_UNDEF ||
            s.st_shndx == SHN_ABS || s.st_shndx == SHN_COMMON)
            continue;
        const char *nm = elf_strptr(elf, sh->sh_link, s.st_name);
        uint32_t name = fp_name(o, nm ? nm : "");
        fp_sym **arr = func ? &o->funcs : &o->datas;
        size_t *cnt = func ? &o->nfuncs : &o->ndatas;
        if (name == UINT32_MAX || fp_grow(arr, func ? &fcap : &dcap, *cnt + 1, sizeof(fp_sym)) != 0)
            return FP_NOMEM;
        (*arr)[(*cnt)++] = (fp_sym){s.st_value, s.st_size, name, GELF_ST_BIND(s.st_info) == STB_LOCAL};
    }
    o->nfuncs = fp_sort_syms(o, o->funcs, o->nfuncs);
    o->ndatas = fp_sort_syms(o, o->datas, o->ndatas);
    return FP_OK;
}

/* Reads the dynamic relocations that fill GOT slots, so that a call through
 * the PLT or a GOT load can be named. An IRELATIVE slot (static binaries,
 * local ifuncs) is named after the function at its resolver. */
static int fp_read_relocs(fp_obj *o, Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh, size_t *cap)
{
    Elf_Data *d = elf_getdata(scn, NULL);
    if (!d || sh->sh_entsize == 0)
        return FP_OK;
    Elf_Scn *symscn = sh->sh_link ? elf_getscn(elf, sh->sh_link) : NULL;
    GElf_Shdr symsh;
    Elf_Data *symd = NULL;
    if (symscn && gelf_getshdr(symscn, &symsh))
        symd = elf_getdata(symscn, NULL);
    size_t n = sh->sh_size / sh->sh_entsize;
    for (size_t i = 0; i < n; i++) {
        GElf_Rela r;
        if (!gelf_getrela(d, (int)i, &r))
            break;
        uint32_t type = (uint32_t)GELF_R_TYPE(r.r_info);
        size_t symi = GELF_R_SYM(r.r_info);
        const char *nm = NULL;
        if (type == R_X86_64_IRELATIVE) {
            const fp_sym *f = fp_find_sym(o->funcs, o->nfuncs, (uint64_t)r.r_addend);
            nm = f ? o->names + f->name : NULL;
        } else if ((type == R_X86_64_JUMP_SLOT || type == R_X86_64_GLOB_DAT || type == R_X86_64_64) &&
                   symi != 0 && symd) {
            GElf_Sym s;
            if (gelf_getsym(symd, (int)symi, &s))
                nm = elf_strptr(elf, symsh.sh_link, s.st_name);
        }
        if (!nm || !*nm)
            continue;
        uint32_t name = fp_name(o, nm);
        if (name == UINT32_MAX || fp_grow(&o->slots, cap, o->nslots + 1, sizeof(fp_slot)) != 0)
            return FP_NOMEM;
        o->slots[o->nslots++] = (fp_slot){r.r_offset, name};
    }
    return FP_OK;
}

/* Reads sections, symbols and relocations of o's file. FP_UNKNOWN when the
 * file is not a readable x86-64 ELF matching the loaded object. */
static int fp_obj_read(fp_obj *o, Elf *elf)
{
    GElf_Ehdr eh;
    size_t shstrndx;
    if (elf_kind(elf) != ELF_K_ELF || gelf_getclass(elf) != ELFCLASS64 || !gelf_getehdr(elf, &eh) ||
        eh.e_machine != EM_X86_64 || elf_getshdrstrndx(elf, &shstrndx) != 0 || !fp_file_matches(o, elf))
        return FP_UNKNOWN;
    o->fixed = eh.e_type == ET_EXEC;
    size_t seccap = 0, slotcap = 0;
    Elf_Scn *symtab = NULL, *dynsym = NULL;
    for (Elf_Scn *scn = elf_nextscn(elf, NULL); scn; scn = elf_nextscn(elf, scn)) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh))
            return FP_UNKNOWN;
        if (sh.sh_type == SHT_SYMTAB)
            symtab = scn;
        else if (sh.sh_type == SHT_DYNSYM)
            dynsym = scn;
        if (!(sh.sh_flags & SHF_ALLOC) || sh.sh_size == 0)
            continue;
        const char *nm = elf_strptr(elf, shstrndx, sh.sh_name);
        uint32_t name = fp_name(o, nm ? nm : "");
        if (name == UINT32_MAX || fp_grow(&o->secs, &seccap, o->nsecs + 1, sizeof(fp_sec)) != 0)
            return FP_NOMEM;
        o->secs[o->nsecs++] = (fp_sec){sh.sh_addr, sh.sh_size, sh.sh_flags, sh.sh_type, name};
    }
    /* .symtab holds everything .dynsym does, plus the static functions. */
    Elf_Scn *use = symtab ? symtab : dynsym;
    GElf_Shdr sh;
    if (!use || !gelf_getshdr(use, &sh))
        return FP_UNKNOWN;
    int rc = fp_read_symtab(o, elf, use, &sh);
    if (rc != FP_OK)
        return rc;
    for (Elf_Scn *scn = elf_nextscn(elf, NULL); scn; scn = elf_nextscn(elf, scn)) {
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA || !(sh.sh_flags & SHF_ALLOC))
            continue;
        if ((rc = fp_read_relocs(o, elf, scn, &sh, &slotcap)) != FP_OK)
            return rc;
    }
    if (o->nslots)
        qsort(o->slots, o->nslots, sizeof *o->slots, fp_slot_cmp);
    return FP_OK;
}

/* Makes the tables of the object loaded at bias from path. Returns the
 * object (usable or not: an unusable one is remembered so that the file is
 * not read again), or NULL when out of memory. */
static fp_obj *fp_obj_load(const char *path, uintptr_t bias, const ElfW(Phdr) *phdr, size_t phnum)
{
    fp_obj *o = calloc(1, sizeof *o);
    if (!o || !(o->path = strdup(path)) || fp_name(o, "") == UINT32_MAX) {
        fp_obj_free(o);
        return NULL;
    }
    o->bias = bias;
    o->phdr = phdr;
    o->phnum = phnum;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return o;
    int rc = FP_UNKNOWN;
    if (elf_version(EV_CURRENT) != EV_NONE) {
        Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
        if (elf) {
            rc = fp_obj_read(o, elf);
            elf_end(elf);
        }
    }
    close(fd);
    if (rc == FP_NOMEM) {
        fp_obj_free(o);
        return NULL;
    }
    o->usable = rc == FP_OK;
    return o;
}

/* ---- the walk: hashing a function and what it reaches ---- */

typedef struct fp_walk {
    const fp_obj *obj;
    csh cs;
    cs_insn *insn;
    XXH3_state_t *xx;
    const fp_sym *queue[FP_MAX_FUNCS]; /* functions to hash; index = visiting order */
    size_t nqueue;
    uint64_t code_bytes; /* sum of the queued functions' sizes */
    FILE *trace;
} fp_walk;

/* Hashes one tagged field: the tag, the length, the bytes. */
static void fp_put(fp_walk *w, char tag, const void *p, size_t n)
{
    unsigned char head[5] = {(unsigned char)tag, (unsigned char)n, (unsigned char)(n >> 8),
                             (unsigned char)(n >> 16), (unsigned char)(n >> 24)};
    XXH3_128bits_update(w->xx, head, sizeof head);
    if (n)
        XXH3_128bits_update(w->xx, p, n);
}

static void fp_put_u64(fp_walk *w, char tag, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    fp_put(w, tag, b, sizeof b);
}

static void fp_put_str(fp_walk *w, char tag, const char *s)
{
    fp_put(w, tag, s, strlen(s));
}

/* A static's name without the suffix gcc adds (counter.0, table.lto_priv.1):
 * C names have no dot, and the number shifts when an unrelated static is
 * added earlier in the file. */
static void fp_put_data_name(fp_walk *w, const fp_sym *s)
{
    const char *nm = w->obj->names + s->name;
    const char *dot = s->local ? strchr(nm, '.') : NULL;
    fp_put(w, 'D', nm, dot ? (size_t)(dot - nm) : strlen(nm));
}

static bool fp_is_jobcache(const char *name)
{
    return strncmp(name, "jc_", 3) == 0;
}

/* Queues f (once) and hashes its visiting index; a function beyond the
 * bounds, or one of jobcache's own, counts by name only. */
static void fp_reach_function(fp_walk *w, const fp_sym *f, uint64_t target)
{
    const char *nm = w->obj->names + f->name;
    size_t i = 0;
    while (i < w->nqueue && w->queue[i] != f)
        i++;
    if (i == w->nqueue && !fp_is_jobcache(nm) && w->nqueue < FP_MAX_FUNCS &&
        w->code_bytes + f->size <= FP_MAX_CODE) {
        w->queue[w->nqueue++] = f;
        w->code_bytes += f->size;
    }
    if (i < w->nqueue) {
        fp_put_u64(w, 'C', i);
    } else {
        fp_put_str(w, 'N', nm);
        if (w->trace)
            fprintf(w->trace, "  not followed: %s\n", nm);
    }
    fp_put_u64(w, 'o', target - f->addr);
}

static bool fp_is_plt(const fp_obj *o, const fp_sec *s)
{
    const char *nm = o->names + s->name;
    return strncmp(nm, ".plt", 4) == 0 || strncmp(nm, ".iplt", 5) == 0;
}

/* The external symbol a PLT stub at target jumps to (through its GOT slot),
 * or NULL. A stub is endbr64, a `jmp *slot(%rip)` (maybe bnd), padding. */
static const char *fp_plt_name(fp_walk *w, const fp_sec *sec, uint64_t target)
{
    uint64_t n = sec->addr + sec->size - target;
    if (n > 32)
        n = 32;
    if (!fp_mapped(w->obj, target, n, PF_X))
        return NULL;
    unsigned char buf[32];
    fp_peek(buf, w->obj->bias + target, n);
    const uint8_t *code = buf;
    size_t left = n;
    uint64_t addr = target;
    for (int k = 0; k < 3 && cs_disasm_iter(w->cs, &code, &left, &addr, w->insn); k++) {
        const cs_x86 *x = &w->insn->detail->x86;
        if (w->insn->id != X86_INS_JMP || x->op_count != 1 || x->operands[0].type != X86_OP_MEM ||
            x->operands[0].mem.base != X86_REG_RIP)
            continue;
        const fp_slot *slot = fp_find_slot(w->obj, addr + (uint64_t)x->operands[0].mem.disp);
        return slot ? w->obj->names + slot->name : NULL;
    }
    return NULL;
}

/* What a relative branch or call from function cur reaches. */
static void fp_branch_target(fp_walk *w, const fp_sym *cur, uint64_t target)
{
    if (target - cur->addr < cur->size) {
        fp_put_u64(w, 'L', target - cur->addr);
        return;
    }
    const fp_sym *f = fp_find_sym(w->obj->funcs, w->obj->nfuncs, target);
    if (f) {
        fp_reach_function(w, f, target);
        return;
    }
    const fp_sec *sec = fp_find_sec(w->obj, target);
    if (sec && fp_is_plt(w->obj, sec)) {
        const char *nm = fp_plt_name(w, sec, target);
        fp_put_str(w, 'P', nm ? nm : "");
        if (w->trace)
            fprintf(w->trace, "  external: %s\n", nm ? nm : "(unnamed PLT entry)");
        return;
    }
    fp_put(w, 'U', NULL, 0);
    if (w->trace)
        fprintf(w->trace, "  unresolved target +%#llx\n", (unsigned long long)target);
}

/* Length of the string literal at p[0..n): printable UTF-8 up to a NUL; or
 * -1 when p does not hold one. */
static long fp_string_len(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n && p[i]) {
        unsigned c = p[i];
        size_t more = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 9;
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F || more > 3 || (more == 1 && c < 0xC2) ||
            i + more >= n)
            return -1;
        for (size_t k = 1; k <= more; k++)
            if ((p[i + k] & 0xC0) != 0x80)
                return -1;
        i += more + 1;
    }
    return i < n ? (long)i : -1;
}

/* A jump table of function cur at table: entries that all land inside cur,
 * either 4-byte offsets from the table (position-independent code) or
 * 8-byte addresses (fixed-address executables). Hashes the entries as
 * offsets into cur and returns true; false when table is not one. Its bytes
 * change whenever code or data moves, so they must never be hashed raw. */
static bool fp_jump_table(fp_walk *w, const fp_sym *cur, uint64_t table, uint64_t room)
{
    size_t width = w->obj->fixed ? 8 : 4, n = 0;
    unsigned char e[8];
    for (; n < 1024 && (n + 1) * width <= room && fp_mapped(w->obj, table + n * width, width, PF_R); n++) {
        fp_peek(e, w->obj->bias + table + n * width, width);
        uint64_t v = 0;
        for (size_t i = 0; i < width; i++)
            v |= (uint64_t)e[i] << (8 * i);
        uint64_t target = width == 8 ? v : table + (uint64_t)(int64_t)(int32_t)(uint32_t)v;
        if (target - cur->addr >= cur->size)
            break;
        if (n == 0)
            fp_put(w, 'J', NULL, 0);
        fp_put_u64(w, 'j', target - cur->addr);
    }
    return n >= 2;
}

/* Hashes what an anonymous read-only constant holds: a jump table of the
 * current function (as offsets), the text of a string literal whose address
 * is taken, the bytes an instruction loads (a double). Anything else (an
 * array of doubles reached through its address) counts as "anonymous". */
static void fp_anon_constant(fp_walk *w, const fp_sym *cur, const fp_sec *sec, uint64_t target, bool lea,
                             size_t load)
{
    uint64_t room = sec->addr + sec->size - target;
    unsigned char buf[FP_MAX_STRING];
    if (!lea && load > 0 && load <= FP_MAX_LOAD && load <= room && fp_mapped(w->obj, target, load, PF_R)) {
        fp_peek(buf, w->obj->bias + target, load);
        fp_put(w, 'K', buf, load);
        return;
    }
    if (lea && fp_jump_table(w, cur, target, room))
        return;
    size_t n = room < sizeof buf ? (size_t)room : sizeof buf;
    if (lea && fp_mapped(w->obj, target, n, PF_R)) {
        fp_peek(buf, w->obj->bias + target, n);
        long len = fp_string_len(buf, n);
        if (len >= 0) {
            fp_put(w, 'S', buf, (size_t)len);
            return;
        }
    }
    fp_put(w, 'A', NULL, 0);
}

/* What an address operand of function cur points at (RIP-relative, or an
 * absolute address in a fixed-address executable). lea: the address itself
 * is used (lea, a table base); else load is the size of the access. */
static void fp_data_target(fp_walk *w, const fp_sym *cur, uint64_t target, bool lea, size_t load)
{
    const fp_obj *o = w->obj;
    const fp_slot *slot = fp_find_slot(o, target);
    if (slot) {
        fp_put_str(w, 'G', o->names + slot->name);
        if (w->trace)
            fprintf(w->trace, "  external: %s (GOT)\n", o->names + slot->name);
        return;
    }
    const fp_sym *f = fp_find_sym(o->funcs, o->nfuncs, target);
    if (f) {
        fp_reach_function(w, f, target);
        return;
    }
    const fp_sec *sec = fp_find_sec(o, target);
    bool rodata = sec && sec->type != SHT_NOBITS && !(sec->flags & (SHF_WRITE | SHF_EXECINSTR));
    const fp_sym *d = fp_find_sym(o->datas, o->ndatas, target);
    if (d) {
        fp_put_data_name(w, d);
        fp_put_u64(w, 'o', target - d->addr);
        if (rodata && d->size <= FP_MAX_CONST_OBJECT && fp_mapped(o, d->addr, d->size, PF_R)) {
            unsigned char buf[FP_MAX_CONST_OBJECT];
            fp_peek(buf, o->bias + d->addr, d->size);
            fp_put(w, 'V', buf, d->size);
        }
        return;
    }
    if (rodata) {
        fp_anon_constant(w, cur, sec, target, lea, load);
        return;
    }
    fp_put_str(w, 'W', sec ? o->names + sec->name : "");
}

/* Zeroes the address field at off (size n) of an instruction's bytes. */
static void fp_zero(unsigned char *bytes, size_t size, size_t off, size_t n)
{
    if (off < size)
        memset(bytes + off, 0, size - off < n ? size - off : n);
}

/* An address operand found in an instruction, to describe after its bytes. */
typedef struct fp_ref {
    uint64_t target;
    bool lea;
    size_t load;
} fp_ref;

/* Finds the address operands of in, zeroes their fields in bytes and
 * returns how many it put in refs (at most 2 per instruction). A RIP-relative
 * displacement is 4 bytes; capstone reports where (0: not given, then it is
 * the last field but an immediate). In a fixed-address executable,
 * immediates and absolute displacements that fall inside the object's
 * sections are addresses too (a constant equal to an address by chance is
 * then not hashed: rare, and a miss rather than an alarm). */
static size_t fp_address_operands(const fp_walk *w, const cs_insn *in, unsigned char *bytes, fp_ref refs[2])
{
    const cs_x86 *x = &in->detail->x86;
    size_t n = 0;
    for (uint8_t i = 0; i < x->op_count && n < 2; i++) {
        const cs_x86_op *op = &x->operands[i];
        if (op->type == X86_OP_MEM && op->mem.base == X86_REG_RIP) {
            size_t at = x->encoding.disp_offset;
            if (at == 0 || at + 4 > in->size)
                at = in->size >= 4u + x->encoding.imm_size ? in->size - 4u - x->encoding.imm_size : 0;
            fp_zero(bytes, in->size, at, 4);
            refs[n++] = (fp_ref){in->address + in->size + (uint64_t)op->mem.disp, in->id == X86_INS_LEA, op->size};
        } else if (!w->obj->fixed) {
            continue;
        } else if (op->type == X86_OP_IMM && x->encoding.imm_size >= 4 && x->encoding.imm_offset &&
                   fp_find_sec(w->obj, (uint64_t)op->imm)) {
            fp_zero(bytes, in->size, x->encoding.imm_offset, x->encoding.imm_size);
            refs[n++] = (fp_ref){(uint64_t)op->imm, true, 0};
        } else if (op->type == X86_OP_MEM && op->mem.base == X86_REG_INVALID &&
                   op->mem.segment == X86_REG_INVALID && x->encoding.disp_size >= 4 && x->encoding.disp_offset &&
                   fp_find_sec(w->obj, (uint64_t)op->mem.disp)) {
            fp_zero(bytes, in->size, x->encoding.disp_offset, x->encoding.disp_size);
            /* With an index register the address is a table's base. */
            refs[n++] = (fp_ref){(uint64_t)op->mem.disp, op->mem.index != X86_REG_INVALID, op->size};
        }
    }
    return n;
}

/* Hashes one instruction of cur that is not a relative branch: its bytes
 * with address fields zeroed, then what those point at. */
static void fp_plain_insn(fp_walk *w, const fp_sym *cur, const cs_insn *in)
{
    unsigned char bytes[sizeof in->bytes];
    memcpy(bytes, in->bytes, in->size);
    fp_ref refs[2];
    size_t n = fp_address_operands(w, in, bytes, refs);
    fp_put(w, 'I', bytes, in->size);
    for (size_t i = 0; i < n; i++)
        fp_data_target(w, cur, refs[i].target, refs[i].lea, refs[i].load);
}

static bool fp_relative_branch(const cs_insn *in)
{
    const cs_detail *d = in->detail;
    if (d->x86.op_count != 1 || d->x86.operands[0].type != X86_OP_IMM)
        return false;
    for (uint8_t i = 0; i < d->groups_count; i++)
        if (d->groups[i] == CS_GRP_JUMP || d->groups[i] == CS_GRP_CALL || d->groups[i] == CS_GRP_BRANCH_RELATIVE)
            return true;
    return false;
}

/* Hashes the function queued at index k. FP_UNKNOWN when its code is not in
 * an executable segment. */
static int fp_hash_function(fp_walk *w, size_t k)
{
    const fp_sym *f = w->queue[k];
    if (!fp_mapped(w->obj, f->addr, f->size, PF_X))
        return FP_UNKNOWN;
    unsigned char *buf = malloc(f->size);
    if (!buf)
        return FP_NOMEM;
    fp_peek(buf, w->obj->bias + f->addr, f->size);
    if (w->trace)
        fprintf(w->trace, "function #%zu %s (%llu bytes)\n", k, w->obj->names + f->name,
                (unsigned long long)f->size);
    fp_put_u64(w, 'F', f->size);
    const uint8_t *code = buf;
    size_t left = f->size;
    uint64_t addr = f->addr;
    while (left > 0) {
        if (!cs_disasm_iter(w->cs, &code, &left, &addr, w->insn)) {
            /* Not an instruction (data in code): hash the byte, resynchronise. */
            fp_put(w, 'R', code, 1);
            code++;
            left--;
            addr++;
            continue;
        }
        const cs_insn *in = w->insn;
        if (fp_relative_branch(in)) {
            /* The mnemonic ("jne", "call"), not capstone's instruction id,
             * whose numbering changes between capstone versions. */
            fp_put_str(w, 'B', in->mnemonic);
            fp_branch_target(w, f, (uint64_t)in->detail->x86.operands[0].imm);
        } else {
            fp_plain_insn(w, f, in);
        }
    }
    free(buf);
    return FP_OK;
}

/* Fingerprints the function of o containing code (link-time address). */
static int fp_compute(const fp_obj *o, uint64_t code, uint8_t out[JC__FINGERPRINT_LEN], FILE *trace)
{
    const fp_sym *root = fp_find_sym(o->funcs, o->nfuncs, code);
    if (!root) {
        if (trace)
            fprintf(trace, "fingerprint: no function symbol contains %#llx in %s\n",
                    (unsigned long long)code, o->path);
        return FP_UNKNOWN;
    }
    fp_walk *w = calloc(1, sizeof *w);
    if (!w)
        return FP_NOMEM;
    int rc = FP_NOMEM;
    w->obj = o;
    w->trace = trace;
    if (cs_open(CS_ARCH_X86, CS_MODE_64, &w->cs) != CS_ERR_OK) {
        free(w);
        return FP_UNKNOWN;
    }
    cs_option(w->cs, CS_OPT_DETAIL, CS_OPT_ON);
    if (!(w->insn = cs_malloc(w->cs)) || !(w->xx = XXH3_createState()))
        goto done;
    XXH3_128bits_reset(w->xx);
    fp_put_u64(w, 'v', JC__FINGERPRINT_SCHEME);
    /* The offset of code in its function: a code address inside a function
     * is a different entry point. Zero for a registered function. */
    fp_put_u64(w, 'E', code - root->addr);
    w->queue[w->nqueue++] = root;
    w->code_bytes = root->size;
    for (size_t k = 0; k < w->nqueue; k++)
        if ((rc = fp_hash_function(w, k)) != FP_OK)
            goto done;
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(w->xx));
    memcpy(out, c.digest, JC__FINGERPRINT_LEN);
    rc = FP_OK;
done:
    if (w->insn)
        cs_free(w->insn, 1);
    XXH3_freeState(w->xx);
    cs_close(&w->cs);
    free(w);
    return rc;
}

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
        fp_obj_free(fp_objs[i]);
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
    if (fp_grow(&fp_objs, &fp_capobjs, fp_nobjs + 1, sizeof *fp_objs) != 0)
        return NULL;
    fp_obj *o = fp_obj_load(wh->path, wh->bias, wh->phdr, wh->phnum);
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
        rc = fp_compute(o, code - o->bias, out, trace);
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
    if (rc != FP_NOMEM && fp_grow(&fp_memos, &fp_capmemos, fp_nmemos + 1, sizeof *fp_memos) == 0) {
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
