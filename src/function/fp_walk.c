/*
 * The walk: hashing a function's machine code and what it reaches, with
 * addresses normalised.
 */
#include "function/fingerprint.h"

#include <string.h>
#include "fp_int.h"

#if JC_FP_ENABLED

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
    if (!jc__fp_mapped(w->obj, target, n, PF_X))
        return NULL;
    unsigned char buf[32];
    jc__fp_peek(buf, w->obj->bias + target, n);
    const uint8_t *code = buf;
    size_t left = n;
    uint64_t addr = target;
    for (int k = 0; k < 3 && cs_disasm_iter(w->cs, &code, &left, &addr, w->insn); k++) {
        const cs_x86 *x = &w->insn->detail->x86;
        if (w->insn->id != X86_INS_JMP || x->op_count != 1 || x->operands[0].type != X86_OP_MEM ||
            x->operands[0].mem.base != X86_REG_RIP)
            continue;
        const fp_slot *slot = jc__fp_find_slot(w->obj, addr + (uint64_t)x->operands[0].mem.disp);
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
    const fp_sym *f = jc__fp_find_sym(w->obj->funcs, w->obj->nfuncs, target);
    if (f) {
        fp_reach_function(w, f, target);
        return;
    }
    const fp_sec *sec = jc__fp_find_sec(w->obj, target);
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
    for (; n < 1024 && (n + 1) * width <= room && jc__fp_mapped(w->obj, table + n * width, width, PF_R); n++) {
        jc__fp_peek(e, w->obj->bias + table + n * width, width);
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
    if (!lea && load > 0 && load <= FP_MAX_LOAD && load <= room && jc__fp_mapped(w->obj, target, load, PF_R)) {
        jc__fp_peek(buf, w->obj->bias + target, load);
        fp_put(w, 'K', buf, load);
        return;
    }
    if (lea && fp_jump_table(w, cur, target, room))
        return;
    size_t n = room < sizeof buf ? (size_t)room : sizeof buf;
    if (lea && jc__fp_mapped(w->obj, target, n, PF_R)) {
        jc__fp_peek(buf, w->obj->bias + target, n);
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
    const fp_slot *slot = jc__fp_find_slot(o, target);
    if (slot) {
        fp_put_str(w, 'G', o->names + slot->name);
        if (w->trace)
            fprintf(w->trace, "  external: %s (GOT)\n", o->names + slot->name);
        return;
    }
    const fp_sym *f = jc__fp_find_sym(o->funcs, o->nfuncs, target);
    if (f) {
        fp_reach_function(w, f, target);
        return;
    }
    const fp_sec *sec = jc__fp_find_sec(o, target);
    bool rodata = sec && sec->type != SHT_NOBITS && !(sec->flags & (SHF_WRITE | SHF_EXECINSTR));
    const fp_sym *d = jc__fp_find_sym(o->datas, o->ndatas, target);
    if (d) {
        fp_put_data_name(w, d);
        fp_put_u64(w, 'o', target - d->addr);
        if (rodata && d->size <= FP_MAX_CONST_OBJECT && jc__fp_mapped(o, d->addr, d->size, PF_R)) {
            unsigned char buf[FP_MAX_CONST_OBJECT];
            jc__fp_peek(buf, o->bias + d->addr, d->size);
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
                   jc__fp_find_sec(w->obj, (uint64_t)op->imm)) {
            fp_zero(bytes, in->size, x->encoding.imm_offset, x->encoding.imm_size);
            refs[n++] = (fp_ref){(uint64_t)op->imm, true, 0};
        } else if (op->type == X86_OP_MEM && op->mem.base == X86_REG_INVALID &&
                   op->mem.segment == X86_REG_INVALID && x->encoding.disp_size >= 4 && x->encoding.disp_offset &&
                   jc__fp_find_sec(w->obj, (uint64_t)op->mem.disp)) {
            fp_zero(bytes, in->size, x->encoding.disp_offset, x->encoding.disp_size);
            /* With an index register the address is a table's base. */
            refs[n++] = (fp_ref){(uint64_t)op->mem.disp, op->mem.index != X86_REG_INVALID, op->size};
        }
    }
    return n;
}

/* Hashes one instruction of cur that is not a relative branch: its bytes
 * with address fields zeroed (and its immediate, for the line number of an
 * assert), then what those point at. */
static void fp_plain_insn(fp_walk *w, const fp_sym *cur, const cs_insn *in, bool line_number)
{
    unsigned char bytes[sizeof in->bytes];
    memcpy(bytes, in->bytes, in->size);
    fp_ref refs[2];
    size_t n = fp_address_operands(w, in, bytes, refs);
    if (line_number)
        fp_zero(bytes, in->size, in->detail->x86.encoding.imm_offset, in->detail->x86.encoding.imm_size);
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

/* ---- assert's line numbers ---- */

/* Whether in calls (or jumps to) the C library's assertion failure:
 * glibc's and musl's __assert_fail, glibc's __assert_perror_fail; through
 * the PLT, the GOT (-fno-plt) or directly (static linking). in is not used
 * after the PLT stub was decoded (that reuses w->insn). */
static bool fp_calls_assert_fail(fp_walk *w, const cs_insn *in)
{
    const cs_x86 *x = &in->detail->x86;
    if ((in->id != X86_INS_CALL && in->id != X86_INS_JMP) || x->op_count != 1)
        return false;
    const cs_x86_op *op = &x->operands[0];
    const char *nm = NULL;
    if (op->type == X86_OP_IMM) {
        uint64_t target = (uint64_t)op->imm;
        const fp_sym *f = jc__fp_find_sym(w->obj->funcs, w->obj->nfuncs, target);
        const fp_sec *sec = f ? NULL : jc__fp_find_sec(w->obj, target);
        nm = f ? w->obj->names + f->name : sec && fp_is_plt(w->obj, sec) ? fp_plt_name(w, sec, target) : NULL;
    } else if (op->type == X86_OP_MEM && op->mem.base == X86_REG_RIP) {
        const fp_slot *slot = jc__fp_find_slot(w->obj, in->address + in->size + (uint64_t)op->mem.disp);
        nm = slot ? w->obj->names + slot->name : NULL;
    }
    return nm && (strcmp(nm, "__assert_fail") == 0 || strcmp(nm, "__assert_perror_fail") == 0);
}

static bool fp_is_edx(unsigned reg)
{
    return reg == X86_REG_EDX || reg == X86_REG_RDX || reg == X86_REG_DX || reg == X86_REG_DL ||
           reg == X86_REG_DH;
}

/* Finds the instructions of f's code that load the line number of an
 * assert() (its third argument, in %edx) for the call to __assert_fail
 * that follows: a `mov $LINE, %edx` with no other write to %edx, branch or
 * call before that call, within 16 instructions. Their addresses go to
 * lines (at most cap; *n of them); the hash then leaves the number out, so
 * that lines added above a function that asserts are no change of its code
 * (issue 23). The condition and the file and function names, the other
 * arguments, are string literals and hashed as such. */
static void fp_find_assert_lines(fp_walk *w, const uint8_t *code, size_t size, uint64_t addr, uint64_t *lines,
                                 size_t cap, size_t *n)
{
    uint64_t pending = 0;
    int age = -1; /* instructions since the pending mov; -1: none */
    *n = 0;
    while (size > 0) {
        if (!cs_disasm_iter(w->cs, &code, &size, &addr, w->insn)) {
            code++, size--, addr++, age = -1;
            continue;
        }
        const cs_insn *in = w->insn;
        const cs_x86 *x = &in->detail->x86;
        if (in->id == X86_INS_MOV && x->op_count == 2 && x->operands[0].type == X86_OP_REG &&
            fp_is_edx(x->operands[0].reg) && x->operands[1].type == X86_OP_IMM && x->encoding.imm_offset) {
            pending = in->address;
            age = 0;
            continue;
        }
        bool flow = false;
        for (uint8_t i = 0; i < in->detail->groups_count; i++)
            flow |= in->detail->groups[i] == CS_GRP_JUMP || in->detail->groups[i] == CS_GRP_CALL ||
                    in->detail->groups[i] == CS_GRP_RET;
        bool writes = false;
        cs_regs rd, wr;
        uint8_t nrd = 0, nwr = 0;
        if (age >= 0 && !flow && cs_regs_access(w->cs, in, rd, &nrd, wr, &nwr) == CS_ERR_OK)
            for (uint8_t i = 0; i < nwr; i++)
                writes |= fp_is_edx(wr[i]);
        if (age >= 0 && flow && fp_calls_assert_fail(w, in) && *n < cap)
            lines[(*n)++] = pending;
        age = age < 0 || flow || writes || age >= 16 ? -1 : age + 1;
    }
}

static bool fp_in(const uint64_t *set, size_t n, uint64_t v)
{
    for (size_t i = 0; i < n; i++)
        if (set[i] == v)
            return true;
    return false;
}

/* Hashes the function queued at index k. FP_UNKNOWN when its code is not in
 * an executable segment. */
static int fp_hash_function(fp_walk *w, size_t k)
{
    const fp_sym *f = w->queue[k];
    if (!jc__fp_mapped(w->obj, f->addr, f->size, PF_X))
        return FP_UNKNOWN;
    unsigned char *buf = malloc(f->size);
    if (!buf)
        return FP_NOMEM;
    jc__fp_peek(buf, w->obj->bias + f->addr, f->size);
    if (w->trace)
        fprintf(w->trace, "function #%zu %s (%llu bytes)\n", k, w->obj->names + f->name,
                (unsigned long long)f->size);
    fp_put_u64(w, 'F', f->size);
    uint64_t lines[64];
    size_t nlines;
    fp_find_assert_lines(w, buf, f->size, f->addr, lines, sizeof lines / sizeof *lines, &nlines);
    if (w->trace && nlines)
        fprintf(w->trace, "  %zu assert line number%s left out\n", nlines, nlines == 1 ? "" : "s");
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
            fp_plain_insn(w, f, in, nlines && fp_in(lines, nlines, in->address));
        }
    }
    free(buf);
    return FP_OK;
}

/* Fingerprints the function of o containing code (link-time address). */
int jc__fp_compute(const fp_obj *o, uint64_t code, uint8_t out[JC__FINGERPRINT_LEN], FILE *trace)
{
    const fp_sym *root = jc__fp_find_sym(o->funcs, o->nfuncs, code);
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

#endif /* JC_FP_ENABLED */
