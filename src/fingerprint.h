/* Placeholder until the fingerprint module lands (branch fp). */
#ifndef JC_FINGERPRINT_H
#define JC_FINGERPRINT_H
#include <stdint.h>
#include "jobcache.h"
int jc__code_fingerprint(jc_fn fn, uint8_t out[16]);
#endif
