/*
 * The contract between the dispatcher (main.c) and the commands of the
 * jobcache command (tools/jobcache/), as git's builtin.h is for builtin/.
 *
 * Each command lives in its own file with its help text beside its code,
 * and exports one `const command builtin_NAME`; main.c lists them, parses
 * the options (getopt_long) into an opts, opens the cache as the command
 * asks and calls its run function. The messages to the user (say() and
 * the common errors) are in msgs.c (msgs.h); shared helpers for formatting
 * sizes, times and values and loading entries in util.c; the table printer
 * in table.c.
 *
 * A cache file is data from whoever wrote it: nothing read from it reaches
 * the terminal raw. Human-readable output goes out through say() (a line)
 * or a table, both of which escape with text_escape (text.h); JSON goes
 * through the one writer of json.h.
 */
#ifndef JC_TOOL_BUILTIN_H
#define JC_TOOL_BUILTIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jobcache.h>

#include "json.h"

/* The exit statuses (jobcache(1), EXIT STATUS): 0 done; 1 a finding (verify's
 * problems, diff's differences, find's no entry); 2 a usage error: what the
 * user typed is wrong (an unknown command or option, a bad value, a missing or
 * extra argument, a key prefix or setting that is no entry's or setting's);
 * 3 the command failed on a valid request (the file could not be opened, read
 * or written, it is locked past the busy timeout, the disk is full, out of
 * memory). */
enum { EXIT_OK = 0, EXIT_PROBLEMS = 1, EXIT_USAGE = 2, EXIT_FAILED = 3 };

/* Elements of long arrays and lists that `show` and `ls` print. */
enum { SHOW_ITEMS = 10, LS_ITEMS = 4 };

/* ---- options (main.c holds their names and help) ---- */

enum {
    OPT_FILE = 1 << 0,
    OPT_JSON = 1 << 1,
    OPT_FULL = 1 << 2,
    OPT_FUNCTION = 1 << 3,
    OPT_VERSION = 1 << 4,
    OPT_OLDER = 1 << 5,
    OPT_NEWER = 1 << 6,
    OPT_SORT = 1 << 7,
    OPT_REVERSE = 1 << 8,
    OPT_LIMIT = 1 << 9,
    OPT_DRY_RUN = 1 << 10,
    OPT_MAX_SIZE = 1 << 11,
    OPT_MAX_ENTRIES = 1 << 12,
    OPT_STALE = 1 << 13,
    OPT_REPAIR = 1 << 14,
    OPT_YES = 1 << 15,
    OPT_HELP = 1 << 16,
    OPT_MAX_PAYLOAD = 1 << 17,
    OPT_OTHER_FORMATS = 1 << 18,
    OPT_VERSIONS = 1 << 19,
    OPT_FAILED = 1 << 20,
    OPT_FORMAT = 1 << 21,
    OPT_ZERO = 1 << 22,
    OPT_DOWNSTREAM = 1 << 23
};

/* export --format */
enum { FORMAT_JSONL = 0, FORMAT_CSV = 1, FORMAT_TSV = 2 };

typedef struct opts {
    unsigned given; /* OPT_* bits seen */
    const char *file;
    const char *function, *version;
    double older_than, newer_than;
    jc_sort sort;
    int format; /* FORMAT_* */
    size_t limit;
    int64_t max_size, max_entries, max_payload;
    const char **pos; /* positional arguments */
    size_t npos;
} opts;

/* How a command opens the file. MODE_READ_UNLESS: read-only, writable
 * when an option that writes is given (OPT_WRITING: verify --repair,
 * stats --zero-stats). */
enum { MODE_READ, MODE_WRITE, MODE_CREATE, MODE_READ_UNLESS, MODE_NONE /* not opened: run gets NULL */ };
enum { OPT_WRITING = OPT_REPAIR | OPT_ZERO };

typedef struct command {
    const char *name;
    int (*run)(jc_cache *cache, const opts *o);
    unsigned options;        /* the OPT_* bits it takes (--help: all) */
    size_t min_pos, max_pos; /* positional arguments besides a FILE */
    bool file_pos;           /* a positional FILE is allowed: the last one */
    bool file_first;         /* ... the first one instead (backup SRC DEST) */
    int mode;                /* how the file is opened */
    int (*check)(const struct command *c, const opts *o); /* before opening; NULL: none */
    const char *synopsis;
    const char *help;
} command;

/* The commands, one file each; main.c lists them in this order. */
extern const command builtin_stats, builtin_ls, builtin_show, builtin_diff, builtin_rm, builtin_prune,
    builtin_verify, builtin_export, builtin_merge, builtin_vacuum, builtin_clear, builtin_backup,
    builtin_leases, builtin_break_lease, builtin_unlock_host, builtin_config, builtin_log, builtin_find;

/* The command table and the option names, for help and completion. */
const command *const *commands_all(size_t *n);
const command *command_find(const char *name);
/* Writes "--name" of every option c takes, one a line. */
void command_option_names(const command *c, FILE *f);

/* ---- numbers (util.c) ---- */

/* a + b, held at INT64_MAX or INT64_MIN instead of overflowing: sizes come
 * from the file, which may hold any number. */
int64_t sat_add(int64_t a, int64_t b);

/* ---- formatting (util.c) ---- */

/* A size in IEC units: "512B", "1.5KiB", "20MiB" (at most 7 characters). */
void fmt_size(char *buf, size_t cap, int64_t bytes);
void fmt_seconds(char *buf, size_t cap, double s);
/* How long ago t was: "5m ago". */
void fmt_ago(char *buf, size_t cap, double t);
/* Local date and time of t (seconds since the epoch); "-" for none. */
void fmt_time(char *buf, size_t cap, double t);
void fmt_time_iso(char *buf, size_t cap, double t);
/* Display columns of UTF-8 text: wcwidth(3) of each character in C.UTF-8
 * (2 for a CJK character, 0 for a combining mark). */
size_t text_width(const char *s);
/* Cuts s (in place) to at most width display columns (at least 4), ending
 * with "...". */
void abbreviate(char *s, size_t width);
/* "0.15, 3, gamma=0.1": the arguments of a call, as written in C, long
 * containers in brief; positional ones named by params (nparams of them,
 * may be NULL): "beta=0.15, seed=3"; NULL when out of memory (free() it). */
char *args_text(const jc_value *args, const jc_value *kwargs, char *const *params, size_t nparams,
                size_t max);
/* The result in brief, for one line of `ls`. */
char *result_text(const jc_value *v, size_t max);
/* A value as show writes it; "?" when out of memory (free() it). */
char *value_text(const jc_value *v, size_t max);

/* The width of the terminal output goes to: stdout's window size when it
 * is a terminal, else $COLUMNS when set (as ls(1) does), else 0: no
 * limit, as for a pipe or a file. */
size_t term_columns(void);

/* ---- entries (util.c) ---- */

/* One entry with its values decoded (when they decode). */
typedef struct entry {
    jc_entry_info info; /* its strings are function and version below */
    char *function, *version;
    jc_value *args, *kwargs, *result;
    char *error; /* why the values did not load; NULL when they did */
    char **params; /* the names of its positional parameters, as recorded
                    * (jc_function_params), or NULL */
    size_t nparams;
} entry;

void entry_free(entry *e);
/* Copies info (whose strings a later call may invalidate) and loads the
 * values. Returns false only when out of memory; a value that does not
 * decode leaves e->error set. */
bool entry_load(jc_cache *cache, const jc_entry_info *info, entry *e);
int64_t entry_size(const jc_entry_info *e);
/* The metadata fields of an entry, as a JSON object; NULL when out of
 * memory. */
json_t *entry_json_fields(const jc_entry_info *e);
/* An entry with its decoded values, as one JSON object (show, export);
 * NULL when out of memory. */
json_t *entry_json(const entry *e);
jc_filter filter_of(const opts *o);

#endif
