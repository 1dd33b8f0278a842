/*
 * One loaded object's tables, read from its ELF file: symbols, sections,
 * relocated slots.
 */
#include "function/fingerprint.h"

#include <string.h>
#include "fp_int.h"

#if JC_FP_ENABLED

void jc__fp_obj_free(fp_obj *o)
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

/* Copies s into the object's name arena; returns its offset, or UINT32_MAX
 * when out of memory. */
static uint32_t fp_name(fp_obj *o, const char *s)
{
    size_t n = strlen(s) + 1;
    if (o->names_len + n > UINT32_MAX - 1 || jc__grow(&o->names, &o->names_cap, o->names_len + n, 1) != 0)
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
void jc__fp_peek(void *dst, uintptr_t src, size_t n)
{
    unsigned char *d = dst;
    const volatile unsigned char *s = (const volatile unsigned char *)src;
    for (size_t i = 0; i < n; i++)
        d[i] = s[i];
}

/* True when [vaddr, vaddr+n) lies in one loaded segment whose flags include
 * need (PF_R, PF_X): then it is mapped and readable. */
bool jc__fp_mapped(const fp_obj *o, uint64_t vaddr, uint64_t n, uint32_t need)
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
const fp_sym *jc__fp_find_sym(const fp_sym *s, size_t n, uint64_t addr)
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

const fp_sec *jc__fp_find_sec(const fp_obj *o, uint64_t addr)
{
    for (size_t i = 0; i < o->nsecs; i++)
        if (addr >= o->secs[i].addr && addr - o->secs[i].addr < o->secs[i].size)
            return &o->secs[i];
    return NULL;
}

const fp_slot *jc__fp_find_slot(const fp_obj *o, uint64_t addr)
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
            !jc__fp_mapped(o, p->p_vaddr, p->p_filesz, PF_R))
            continue;
        unsigned char *notes = malloc(p->p_filesz);
        if (!notes)
            return 0;
        jc__fp_peek(notes, o->bias + p->p_vaddr, p->p_filesz);
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
        if (name == UINT32_MAX || jc__grow(arr, func ? &fcap : &dcap, *cnt + 1, sizeof(fp_sym)) != 0)
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
            const fp_sym *f = jc__fp_find_sym(o->funcs, o->nfuncs, (uint64_t)r.r_addend);
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
        if (name == UINT32_MAX || jc__grow(&o->slots, cap, o->nslots + 1, sizeof(fp_slot)) != 0)
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
        if (name == UINT32_MAX || jc__grow(&o->secs, &seccap, o->nsecs + 1, sizeof(fp_sec)) != 0)
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
fp_obj *jc__fp_obj_load(const char *path, uintptr_t bias, const ElfW(Phdr) *phdr, size_t phnum)
{
    fp_obj *o = calloc(1, sizeof *o);
    if (!o || !(o->path = strdup(path)) || fp_name(o, "") == UINT32_MAX) {
        jc__fp_obj_free(o);
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
        jc__fp_obj_free(o);
        return NULL;
    }
    o->usable = rc == FP_OK;
    return o;
}

#endif /* JC_FP_ENABLED */
