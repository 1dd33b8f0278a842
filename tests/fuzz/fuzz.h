/*
 * What every fuzz harness of tests/fuzz/ shares: the entry point libFuzzer
 * (or regression_driver.c) calls, and a check that aborts with a message,
 * so that a broken invariant is a crash libFuzzer saves.
 */
#ifndef JC_FUZZ_H
#define JC_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                      \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond);      \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

#endif
