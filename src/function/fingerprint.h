/*
 * fingerprint: a 16-byte hash of the machine code a registered function runs,
 * so that jobcache can tell "the code changed but the version was not bumped"
 * (issue 9, item 4). Internal: nothing here is exported.
 *
 * HOW. The object (main executable or shared library) that holds the code is
 * found with dl_iterate_phdr; its ELF file (/proc/self/exe for the main
 * program) is read once with libelf for its symbol table (.symtab, else
 * .dynsym), sections and dynamic relocations. The FUNC symbol that contains
 * fn gives the function's extent. Its bytes, read in memory, are decoded with
 * capstone (x86-64) and hashed with XXH3-128, normalised so that moving
 * UNRELATED code or data does not change the hash:
 *   - a relative branch or call is hashed as its instruction id and what it
 *     reaches, never its offset bytes (which also hides the assembler's choice
 *     of a short or a near jump): a label inside the function (its offset from
 *     the start), a function of the same object (followed, see below), a PLT
 *     entry (the name of the external symbol);
 *   - a RIP-relative operand has its 4 displacement bytes zeroed and is hashed
 *     with what it points at: a GOT slot (the external symbol's name), a
 *     function (followed: a callback whose address is taken), a named object
 *     (its name; a static's compiler suffix like ".0" dropped; plus its bytes
 *     when it lives in read-only data and is at most 4 KiB: const tables), an
 *     anonymous read-only constant (a switch's jump table, as offsets into
 *     the function; a string literal's text, up to 1 KiB, when it is valid
 *     printable UTF-8; a loaded constant's bytes, e.g. a double), or only the
 *     section kind;
 *   - in a fixed-address (non-PIE) executable, immediates and absolute
 *     displacements that fall in the object's sections are treated the same.
 * Functions of the same object reached by a direct call or jump, or whose
 * address is taken, are followed transitively (breadth first, each once, at
 * most 256 functions and 1 MiB of code; beyond that a callee counts by name
 * only), so a change in a non-inlined static helper is caught. Callees are
 * identified by visiting order, not by name, so renaming a static helper or
 * gcc's ".constprop.0"/".isra.0"/".cold" clones do not matter. Functions
 * named jc_* are jobcache's own (when linked statically) and count by name.
 *
 * WHAT IS NOT COVERED (no alarm when only these change): code reached
 * through a pointer the function did not take itself (callbacks passed in,
 * vtables, function tables in writable data), code in other shared objects
 * (only the called symbol's name counts), writable data and anonymous
 * constant arrays other than strings and jump tables, what inline functions
 * of another object did at ITS build, and in a non-PIE executable a constant
 * that happens to equal an address. What CHANGES the fingerprint without a
 * change in the source (false alarms): other compiler versions or flags (-O0 vs -O2,
 * -march, sanitizers, -fcf-protection), LTO decisions driven by other code,
 * an unrelated edit that changes inlining or cloning decisions inside the
 * function, thread-local variables added elsewhere (%fs offsets are hashed
 * raw), a breakpoint set by a debugger in the covered code. Measured by
 * tests/fingerprint_rebuild.sh (docs/fingerprint.md).
 *
 * UNKNOWN (returns 0; never a reason to warn): no symbol of non-zero size
 * contains fn (stripped executable, hand-written assembly), the ELF file
 * cannot be read or does not match what is loaded (build ID or layout
 * differ: the file was replaced), fn is a PLT stub, the vDSO, not x86-64, the
 * library built without libelf and capstone (JOBCACHE_FINGERPRINT=OFF or
 * absent), or out of memory. A stripped shared library still has .dynsym:
 * its exported functions get a fingerprint of their own code only (their
 * static callees are unnamed there and count as "unresolved").
 *
 * Raw bytes without capstone were rejected: every unrelated edit moves
 * relative offsets (9 of the 12 functions of tests/fingerprint_rebuild.sh
 * changed), and alarms that are mostly false teach users to ignore them.
 */
#ifndef JC_FINGERPRINT_H
#define JC_FINGERPRINT_H

#include <stdint.h>
#include <stdio.h>

#include "jobcache.h"

#define JC__FINGERPRINT_LEN 16
/* The hashing scheme: part of every fingerprint. Bumped when what is hashed
 * changes (a new normalisation), which changes every fingerprint: store it
 * beside them and treat fingerprints of another scheme as unknown, so that
 * upgrading jobcache raises no alarm. Capstone is asked only for decoding
 * (instruction lengths, mnemonics, where the address fields are), not for
 * its version-dependent instruction numbers. */
#define JC__FINGERPRINT_SCHEME 2 /* 2: assert()'s line numbers left out (jobcache 0.3) */

/* Writes fn's fingerprint to out and returns 1, or returns 0 (unknown; out
 * is zeroed) for the cases above. Never fails loudly, never sets the
 * thread's jobcache error, never crashes on an odd binary. Thread-safe (one
 * internal mutex). The first call for an object reads its ELF file (a few
 * milliseconds for a large one); results are kept per code address until a
 * shared object is unloaded (dlclose), so later calls are a lookup.
 * Not async-signal-safe; do not call it in a forked child of a
 * multi-threaded process. */
int jc__code_fingerprint(jc_fn fn, uint8_t out[JC__FINGERPRINT_LEN]);

/* The same for any code address (a function of another type, e.g. in tests
 * and tools). */
int jc__code_fingerprint_addr(const void *code, uint8_t out[JC__FINGERPRINT_LEN]);

/* Computes afresh (no cache) and, when trace is not NULL, writes one line per
 * function followed and per external reference: for explaining a change. */
int jc__code_fingerprint_trace(const void *code, uint8_t out[JC__FINGERPRINT_LEN], FILE *trace);

/* 1 when this build can compute fingerprints at all (libelf and capstone
 * present, x86-64 Linux), else 0. */
int jc__fingerprint_supported(void);

/* Frees every cached object and result (tests; leak checkers). Safe to call
 * any time; the next call starts over. */
void jc__fingerprint_reset(void);

#endif
