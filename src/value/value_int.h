/*
 * value_int.h: what the files of the value model share, and only they
 * include.
 */
#ifndef JC_VALUE_INT_H
#define JC_VALUE_INT_H

#include "jc_internal.h"

/*
 * value: the typed values that arguments and results are made of.
 *
 * A value is a tree. Scalars live inline; strings, bytes and owned arrays are
 * malloc'd; a borrowed typed array (jc_doubles_ref) points at the caller's
 * memory and is never freed here. Maps keep their keys sorted (strcmp, i.e.
 * byte order) and unique at every moment, so the canonical encoding is a
 * plain walk.
 *
 * Text (strings, named-argument names, map keys) is valid UTF-8, and lists
 * and maps nest at most JC__MAX_DEPTH levels: both are checked where a value
 * is made, so that nothing downstream (a JSON reader of `jobcache export`, a
 * recursive walk of a value) meets anything else.
 */

/* Shared between the files of this folder (each defined in one of them). */
size_t jc__v_digest_count(const jc_value *v);
ptrdiff_t jc__v_map_find(const jc_value *m, const char *key);
/* A new node of type t, zeroed (value.c's allocator: every node goes back
 * through jc_value_free, never free()); NULL with the message set when out
 * of memory. */
jc_value *jc__value_node(jc_type t);

#endif
