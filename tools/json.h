/*
 * The one JSON writer of the jobcache command (tools/json.c), on jansson.
 *
 * Everything the command writes as JSON (stats --json, ls --json,
 * show --json, export) is built as jansson values by these helpers and
 * written by json_out, so that every output is RFC 8259 JSON that strict
 * parsers accept: valid UTF-8 only, no bare NaN or Infinity. jansson stays
 * inside the command; the library neither writes JSON nor links it.
 *
 * The representation (docs/jobcache.1, JSON; docs/format.md):
 * - a double is a JSON number that reads back to the same double (-0.0
 *   included); a NaN or an infinity among decoded values is the string
 *   "NaN", "Infinity" or "-Infinity" (as protobuf's JSON mapping writes
 *   them); a metadata figure that is not finite is null;
 * - a bytes value is the object {"$bytes": "<base64>"} (RFC 4648, padded);
 * - text that is not well-formed UTF-8 (a string, a map key, a function
 *   name) has each bad byte replaced by U+FFFD.
 * The constructors return a new reference, or NULL when out of memory.
 */
#ifndef JC_TOOL_JSON_H
#define JC_TOOL_JSON_H

#include <stdio.h>

#include <jansson.h>
#include <jobcache.h>

/* A string from any bytes (see above for bad UTF-8). */
json_t *json_text(const char *s);
json_t *json_textn(const char *s, size_t n);
/* A duration in seconds, to the nanosecond (the clocks measure no finer,
 * and the noise of a double's last digits would otherwise lengthen every
 * number of the document: see json_out); null when not finite. */
json_t *json_seconds(double d);
/* A time in seconds since the epoch, to the microsecond; null for none. */
json_t *json_time(double t);
/* A decoded value (never abbreviated). */
json_t *json_value(const jc_value *v);
/* Adds key: value to obj, taking the reference to value; false when value
 * is NULL (out of memory) or the add failed. */
bool json_put(json_t *obj, const char *key, json_t *value);

/* Writes j (compact but spaced: ", " and ": ", one line, no newline
 * after) to f; releases it when steal. Doubles take the fewest digits
 * (15 to 17) that read every double of j back exactly. 0 or -1. */
int json_out(FILE *f, json_t *j, bool steal);

#endif
