/*
 * The command's messages to its user (msgs.c), as curl's tool_msgs.h: a
 * line of output escaped for the terminal, and the errors every command
 * reports the same way.
 */
#ifndef JC_TOOL_MSGS_H
#define JC_TOOL_MSGS_H

#include <stdio.h>

struct command;
struct jc_cache;

/* Writes one line of human-readable output: fmt's text with every control
 * character and bad byte escaped (text_escape), then a newline. Every line
 * that may hold text from a cache file, or from its messages, goes out
 * this way. */
void say(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "jobcache CMD: MESSAGE (see 'jobcache help CMD')" on stderr; EXIT_USAGE. */
int usage_error(const struct command *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* jc_errmsg() on stderr, for command cmd; EXIT_FAILED. */
int failed(const char *cmd);
/* "jobcache CMD: out of memory" on stderr; EXIT_FAILED. */
int out_of_memory(const char *cmd);
/* jc_errmsg() on stderr as failed(), but EXIT_USAGE: the library refused
 * what the user typed (an unknown setting, a bad value, an owner with no
 * claims). */
int refused(const char *cmd);
/* failed() or refused() after jc_entry_find of a key prefix the user typed
 * failed: EXIT_USAGE when the prefix is the trouble (not 1 to 64 hex
 * digits, no entry's, several entries'), EXIT_FAILED when the file is. */
int prefix_failed(const struct jc_cache *cache, const char *cmd);

#endif
