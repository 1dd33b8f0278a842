/*
 * jobcache: inspect, prune, verify and merge a jobcache cache from the shell
 * (docs/jobcache.1 is the manual).
 *
 * It uses only the public API of <jobcache.h>, as any program could: what
 * this command does, a program can do too. Each subcommand is one cmd_*
 * function given the parsed options and the open cache; option parsing,
 * tables, JSON and the formatting of sizes, times and values are shared
 * helpers. Exit codes: 0 ok, 1 problems found, 2 usage or open errors.
 *
 * A cache file is data from whoever wrote it: nothing read from it reaches
 * the terminal raw. Human-readable output goes out through say() (a line)
 * or a table, both of which escape with text_escape (text.h); JSON goes
 * through the one writer of json.h.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jobcache.h>

#include "json.h"
#include "text.h"

enum { EXIT_OK = 0, EXIT_PROBLEMS = 1, EXIT_USAGE = 2 };

/* Elements of long arrays and lists that `show` and `ls` print. */
enum { SHOW_ITEMS = 10, LS_ITEMS = 4 };

/* ---- options ---- */

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
    OPT_OTHER_FORMATS = 1 << 18
};

typedef struct option_spec {
    const char *name;
    char short_name;
    unsigned bit;
    const char *value; /* the value's placeholder; NULL for a flag */
    const char *help;
} option_spec;

static const option_spec option_specs[] = {
    {"file", 'f', OPT_FILE, "FILE", "the cache file (else $JOBCACHE_PATH, else ./jobcache.db)"},
    {"function", 0, OPT_FUNCTION, "F", "only entries of function F"},
    {"version", 0, OPT_VERSION, "V", "only entries of version V (with --function)"},
    {"older-than", 0, OPT_OLDER, "AGE", "entries last used more than AGE ago (90s, 12h, 30d, 2w)"},
    {"newer-than", 0, OPT_NEWER, "AGE", "entries last used less than AGE ago"},
    {"sort", 0, OPT_SORT, "KEY", "order by name (default), used, size, time, hits or created"},
    {"reverse", 'r', OPT_REVERSE, NULL, "reverse the order"},
    {"limit", 'n', OPT_LIMIT, "N", "at most N entries"},
    {"max-size", 0, OPT_MAX_SIZE, "SIZE", "remove least recently used entries until the file takes SIZE (500M, 2G)"},
    {"max-payload", 0, OPT_MAX_PAYLOAD, "SIZE", "remove least recently used entries beyond SIZE of payload"},
    {"other-formats", 0, OPT_OTHER_FORMATS, NULL, "remove the entries of another key format"},
    {"max-entries", 0, OPT_MAX_ENTRIES, "N", "remove least recently used entries beyond N"},
    {"stale-versions", 0, OPT_STALE, NULL, "keep only the version of each function used last"},
    {"dry-run", 0, OPT_DRY_RUN, NULL, "only say what would be removed"},
    {"repair", 0, OPT_REPAIR, NULL, "remove the bad entries"},
    {"full", 0, OPT_FULL, NULL, "do not abbreviate long arrays and lists"},
    {"json", 0, OPT_JSON, NULL, "machine-readable output (fields in jobcache(1))"},
    {"yes", 'y', OPT_YES, NULL, "really remove every entry"},
    {"help", 'h', OPT_HELP, NULL, "show this help"},
};
enum { NOPTIONS = sizeof option_specs / sizeof *option_specs };

typedef struct opts {
    unsigned given; /* OPT_* bits seen */
    const char *file;
    const char *function, *version;
    double older_than, newer_than;
    jc_sort sort;
    size_t limit;
    int64_t max_size, max_entries, max_payload;
    const char **pos; /* positional arguments */
    size_t npos;
} opts;

/* ---- commands ---- */

enum { MODE_READ, MODE_WRITE, MODE_CREATE, MODE_VERIFY };

typedef struct command {
    const char *name;
    int (*run)(jc_cache *cache, const opts *o);
    unsigned options;
    size_t min_pos, max_pos; /* positional arguments besides a FILE */
    bool file_pos;           /* a positional FILE is allowed */
    int mode;                /* how the file is opened */
    int (*check)(const struct command *c, const opts *o); /* before opening; NULL: none */
    const char *synopsis;
    const char *help;
} command;

static int cmd_stats(jc_cache *cache, const opts *o);
static int cmd_ls(jc_cache *cache, const opts *o);
static int cmd_show(jc_cache *cache, const opts *o);
static int cmd_diff(jc_cache *cache, const opts *o);
static int cmd_rm(jc_cache *cache, const opts *o);
static int cmd_prune(jc_cache *cache, const opts *o);
static int cmd_verify(jc_cache *cache, const opts *o);
static int cmd_export(jc_cache *cache, const opts *o);
static int cmd_merge(jc_cache *cache, const opts *o);
static int cmd_vacuum(jc_cache *cache, const opts *o);
static int cmd_clear(jc_cache *cache, const opts *o);
static int cmd_backup(jc_cache *cache, const opts *o);
static int cmd_leases(jc_cache *cache, const opts *o);
static int cmd_break_lease(jc_cache *cache, const opts *o);
static int check_rm(const command *c, const opts *o);
static int check_prune(const command *c, const opts *o);
static int check_clear(const command *c, const opts *o);

static const command commands[] = {
    {"stats", cmd_stats, OPT_FILE | OPT_JSON, 0, 0, true, MODE_READ, NULL, "stats [FILE] [--json]",
     "Show the cache's size, and per function and version: entries, bytes, compute time,\n"
     "hits and the compute time they saved, and when entries were made and last used."},
    {"ls", cmd_ls,
     OPT_FILE | OPT_FUNCTION | OPT_VERSION | OPT_OLDER | OPT_NEWER | OPT_SORT | OPT_REVERSE |
         OPT_LIMIT | OPT_JSON,
     0, 0, true, MODE_READ, NULL, "ls [FILE] [--function F] [--version V] [--older-than AGE] [--sort KEY] ...",
     "List entries, one a line: key prefix, function, version, arguments and result\n"
     "(abbreviated), size, compute time, hits and when last used."},
    {"show", cmd_show, OPT_FILE | OPT_JSON | OPT_FULL, 1, 1, false, MODE_READ,
     NULL, "show KEY-PREFIX [--json] [--full]",
     "Show one entry with its decoded arguments and result. Long arrays and lists are\n"
     "abbreviated unless --full (--json never abbreviates)."},
    {"diff", cmd_diff, OPT_FILE, 2, 2, false, MODE_READ, NULL, "diff KEY-A KEY-B",
     "Show how two entries of one function differ: version, positional arguments by\n"
     "index, named ones by name. Answers \"why did my rerun compute this again?\"."},
    {"rm", cmd_rm, OPT_FILE | OPT_FUNCTION | OPT_VERSION | OPT_DRY_RUN, 0, SIZE_MAX, false,
     MODE_WRITE, check_rm, "rm KEY-PREFIX... | rm --function F [--version V]  [--dry-run]",
     "Remove the entries with the given key prefixes, or every entry of a function\n"
     "(of one version of it), and say how many."},
    {"prune", cmd_prune,
     OPT_FILE | OPT_MAX_SIZE | OPT_MAX_ENTRIES | OPT_OLDER | OPT_STALE | OPT_DRY_RUN | OPT_MAX_PAYLOAD |
         OPT_OTHER_FORMATS,
     0, 0, true, MODE_WRITE, check_prune,
     "prune [FILE] [--other-formats] [--stale-versions] [--older-than AGE] [--max-entries N]\n"
     "      [--max-payload SIZE] [--max-size SIZE]",
     "Remove entries: those of another key format, every version of a function but the one\n"
     "used last, entries not used for AGE, least recently used entries beyond N entries or SIZE\n"
     "bytes of payload, then least recently used entries until the file on disk takes at\n"
     "most SIZE (what max_size bounds; the space is given back). The rules apply in this order."},
    {"verify", cmd_verify, OPT_FILE | OPT_REPAIR, 0, 0, true, MODE_VERIFY, NULL, "verify [FILE] [--repair]",
     "Run SQLite's integrity check, then check every entry: its key against its function,\n"
     "version and arguments, its result against its checksum, that its arguments and result\n"
     "decode, that its arguments are canonical. Exits 1 when it finds a problem; --repair\n"
     "removes the bad entries."},
    {"export", cmd_export, OPT_FILE | OPT_FUNCTION | OPT_VERSION, 0, 0, true, MODE_READ,
     NULL, "export [FILE] [--function F] [--version V]",
     "Write the entries as JSON Lines, one entry a line, with decoded arguments and result."},
    {"merge", cmd_merge, OPT_FILE, 1, 1, false, MODE_CREATE, NULL, "merge OTHER-FILE",
     "Copy in the entries of another cache; on a clash the entry created later wins.\n"
     "Entries of OTHER-FILE that fail verify's checks are rejected (exit 1)."},
    {"vacuum", cmd_vacuum, OPT_FILE, 0, 0, true, MODE_WRITE, NULL, "vacuum [FILE]",
     "Compact the file, giving the space of removed entries back to the system."},
    {"clear", cmd_clear, OPT_FILE | OPT_YES, 0, 0, true, MODE_WRITE, check_clear, "clear [FILE] --yes",
     "Remove every entry."},
    {"backup", cmd_backup, OPT_FILE, 1, 1, true, MODE_READ, NULL, "backup [SRC] DEST",
     "Write a consistent copy of the cache to the new file DEST, while programs may go on\n"
     "using it (SQLite's online backup). Use it rather than cp: committed results may still\n"
     "sit in the -wal file beside the cache, which a copy of the file alone misses."},
    {"leases", cmd_leases, OPT_FILE, 0, 0, true, MODE_READ, NULL, "leases [FILE]",
     "List the processes that hold claims on calls of the cache (runs computing them, for which\n"
     "runs of other processes wait): pid, calls, since when, until when, alive or stale."},
    {"break-lease", cmd_break_lease, OPT_FILE, 1, 1, true, MODE_WRITE, NULL, "break-lease OWNER|stale [FILE]",
     "Remove the claims of OWNER (as 'leases' shows it), or with 'stale' every claim whose\n"
     "owner is gone. Runs drop stale claims themselves; this is for looking and tidying."},
};
enum { NCOMMANDS = sizeof commands / sizeof *commands };

static const command *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* ---- saying things ---- */

/* fmt's text in a new string (free() it); NULL when out of memory. */
static char *vformat(const char *fmt, va_list ap)
{
    va_list aq;
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, aq);
    va_end(aq);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s)
        vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

/* Writes one line of human-readable output: fmt's text with every control
 * character and bad byte escaped (text_escape), then a newline. Every line
 * that may hold text from a cache file, or from its messages, goes out
 * this way. */
static void say(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(FILE *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *raw = vformat(fmt, ap);
    va_end(ap);
    char *safe = raw ? text_escape(raw) : NULL;
    fputs(safe ? safe : "(out of memory)", f);
    fputc('\n', f);
    free(raw);
    free(safe);
}

/* a + b, held at INT64_MAX or INT64_MIN instead of overflowing: sizes come
 * from the file, which may hold any number. */
static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return a > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* ---- help ---- */

static void usage(FILE *f)
{
    fprintf(f, "usage: jobcache COMMAND [ARGS] [OPTIONS]\n\n"
               "Inspect and tend a jobcache cache file: FILE where a command takes one,\n"
               "or --file FILE, else $JOBCACHE_PATH, else ./jobcache.db.\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %s\n", commands[i].synopsis);
    fprintf(f, "  help [COMMAND]\n\n"
               "Sizes: 500M, 2G (K, M, G, T: powers of 1024). Ages: 90s, 12m, 12h, 30d, 2w.\n"
               "Exit status: 0 ok, 1 problems found, 2 usage or open errors.\n"
               "Run 'jobcache help COMMAND' for a command's options, 'man jobcache' for all.\n");
}

static void command_help(const command *c, FILE *f)
{
    fprintf(f, "usage: jobcache %s\n\n%s\n\noptions:\n", c->synopsis, c->help);
    for (size_t i = 0; i < NOPTIONS; i++) {
        const option_spec *s = &option_specs[i];
        if (!(c->options & s->bit) && s->bit != OPT_HELP)
            continue;
        char left[40], shortopt[8] = "    ";
        if (s->short_name)
            snprintf(shortopt, sizeof shortopt, "-%c, ", s->short_name);
        snprintf(left, sizeof left, "%s--%s%s%s", shortopt, s->name, s->value ? " " : "",
                 s->value ? s->value : "");
        fprintf(f, "  %-24s %s\n", left, s->help);
    }
}

static int cmd_help(int argc, char **argv)
{
    if (argc == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    const command *c = find_command(argv[0]);
    if (!c) {
        say(stderr, "jobcache help: unknown command '%s'", argv[0]);
        usage(stderr);
        return EXIT_USAGE;
    }
    command_help(c, stdout);
    return EXIT_OK;
}

/* ---- parsing options ---- */

static int usage_error(const command *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_error(const command *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = vformat(fmt, ap);
    va_end(ap);
    say(stderr, "jobcache %s: %s (see 'jobcache help %s')", c->name, msg ? msg : "out of memory",
        c->name);
    free(msg);
    return EXIT_USAGE;
}

/* A positive count: digits only, at most max. */
static bool parse_count(const char *text, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (!*text)
        return false;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9' || v > (max - (uint64_t)(*p - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = v;
    return v > 0;
}

static int parse_sort(const command *c, const char *text, jc_sort *out)
{
    static const char *const names[] = {"name", "used", "size", "time", "hits", "created"};
    for (int i = 0; i < 6; i++)
        if (strcmp(text, names[i]) == 0) {
            *out = (jc_sort)i;
            return 0;
        }
    return usage_error(c, "--sort takes name, used, size, time, hits or created, not '%s'", text);
}

/* Stores the value of option s. */
static int set_value(const command *c, const option_spec *s, const char *v, opts *o)
{
    uint64_t n;
    switch (s->bit) {
    case OPT_FILE: o->file = v; return 0;
    case OPT_FUNCTION: o->function = v; return 0;
    case OPT_VERSION: o->version = v; return 0;
    case OPT_SORT: return parse_sort(c, v, &o->sort);
    case OPT_OLDER:
    case OPT_NEWER:
        if (jc_parse_age(v, s->bit == OPT_OLDER ? &o->older_than : &o->newer_than))
            return usage_error(c, "--%s: %s", s->name, jc_errmsg());
        return 0;
    case OPT_MAX_SIZE:
    case OPT_MAX_PAYLOAD: {
        int64_t *out = s->bit == OPT_MAX_SIZE ? &o->max_size : &o->max_payload;
        if (jc_parse_size(v, out))
            return usage_error(c, "--%s: %s", s->name, jc_errmsg());
        if (*out == 0)
            return usage_error(c, "--%s must be more than 0 (to remove everything: clear)", s->name);
        return 0;
    }
    case OPT_LIMIT:
    case OPT_MAX_ENTRIES:
        if (!parse_count(v, INT64_MAX, &n))
            return usage_error(c, "--%s takes a count of at least 1, not '%s'", s->name, v);
        if (s->bit == OPT_LIMIT)
            o->limit = (size_t)n;
        else
            o->max_entries = (int64_t)n;
        return 0;
    }
    return 0;
}

static const option_spec *find_option(const char *arg, size_t len, bool is_long)
{
    for (size_t i = 0; i < NOPTIONS; i++) {
        const option_spec *s = &option_specs[i];
        if (is_long ? strlen(s->name) == len && strncmp(s->name, arg, len) == 0
                    : s->short_name && s->short_name == arg[0])
            return &option_specs[i];
    }
    return NULL;
}

/* Parses one option at argv[*i] (which starts with '-'); may consume the
 * next argument as its value. */
static int parse_option(const command *c, char **argv, int argc, int *i, opts *o)
{
    const char *arg = argv[*i];
    bool is_long = arg[1] == '-';
    const char *name = arg + (is_long ? 2 : 1);
    const char *eq = is_long ? strchr(name, '=') : NULL;
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const option_spec *s = find_option(name, len, is_long);
    if (!s || (!is_long && !s->value && name[1]))
        return usage_error(c, "unknown option '%s'", arg);
    if (!(c->options & s->bit) && s->bit != OPT_HELP)
        return usage_error(c, "this command takes no --%s", s->name);
    o->given |= s->bit;
    if (!s->value) {
        if (eq)
            return usage_error(c, "--%s takes no value", s->name);
        return 0;
    }
    const char *v = eq ? eq + 1 : (!is_long && name[1]) ? name + 1 : NULL;
    if (!v) {
        if (*i + 1 >= argc)
            return usage_error(c, "--%s needs a value (%s)", s->name, s->value);
        v = argv[++*i];
    }
    return set_value(c, s, v, o);
}

/* Checks the positional arguments and takes a positional FILE. */
static int check_positionals(const command *c, opts *o)
{
    size_t max = c->max_pos + (c->file_pos ? 1 : 0);
    if (o->npos < c->min_pos)
        return usage_error(c, "missing argument: usage: jobcache %s", c->synopsis);
    if (o->npos > max)
        return usage_error(c, "unexpected argument '%s'", o->pos[max]);
    if (c->file_pos && o->npos > c->max_pos) {
        /* The FILE comes last (merge OTHER [FILE]), but first where the
         * command copies from it (backup SRC DEST). */
        bool file_first = c->run == cmd_backup;
        const char *file = file_first ? o->pos[0] : o->pos[o->npos - 1];
        if (o->file)
            return usage_error(c, "the file is given twice ('%s' and --file '%s')", file, o->file);
        o->file = file;
        if (file_first)
            memmove(o->pos, o->pos + 1, (o->npos - 1) * sizeof *o->pos);
        o->npos--;
    }
    if ((o->given & OPT_VERSION) && !(o->given & OPT_FUNCTION))
        return usage_error(c, "--version needs --function");
    return -1;
}

/* Fills o from the arguments after the command's name. Returns -1 to go
 * on, or an exit code (after --help: 0). */
static int parse_args(const command *c, int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->pos = calloc((size_t)argc + 1, sizeof *o->pos);
    if (!o->pos) {
        fprintf(stderr, "jobcache: out of memory\n");
        return EXIT_USAGE;
    }
    bool only_pos = false;
    for (int i = 0; i < argc; i++) {
        if (!only_pos && strcmp(argv[i], "--") == 0) {
            only_pos = true;
        } else if (!only_pos && argv[i][0] == '-' && argv[i][1]) {
            int rc = parse_option(c, argv, argc, &i, o);
            if (rc)
                return rc;
        } else {
            o->pos[o->npos++] = argv[i];
        }
    }
    if (o->given & OPT_HELP) {
        command_help(c, stdout);
        return EXIT_OK;
    }
    return check_positionals(c, o);
}

/* ---- formatting ---- */

static void fmt_size(char *buf, size_t cap, int64_t bytes)
{
    static const char units[] = "KMGTPE";
    if (bytes < 1024) {
        snprintf(buf, cap, "%lldB", (long long)bytes);
        return;
    }
    double v = (double)bytes;
    int u = -1;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    snprintf(buf, cap, v < 10 ? "%.1f%c" : "%.0f%c", v, units[u]);
}

static void fmt_seconds(char *buf, size_t cap, double s)
{
    if (!(s >= 0))
        snprintf(buf, cap, "-");
    else if (s < 1e-3)
        snprintf(buf, cap, "%.0fus", s * 1e6);
    else if (s < 1)
        snprintf(buf, cap, s < 0.01 ? "%.1fms" : "%.0fms", s * 1e3);
    else if (s < 60)
        snprintf(buf, cap, s < 10 ? "%.2fs" : "%.1fs", s);
    else if (s < 3600)
        snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else if (s < 86400)
        snprintf(buf, cap, "%.1fh", s / 3600);
    else
        snprintf(buf, cap, "%.1fd", s / 86400);
}

/* How long ago t was: "5m ago". */
static void fmt_ago(char *buf, size_t cap, double t)
{
    double d = difftime(time(NULL), (time_t)t);
    if (t <= 0)
        snprintf(buf, cap, "-");
    else if (d < 1)
        snprintf(buf, cap, "just now");
    else if (d < 60)
        snprintf(buf, cap, "%.0fs ago", d);
    else if (d < 3600)
        snprintf(buf, cap, "%.0fm ago", floor(d / 60));
    else if (d < 86400)
        snprintf(buf, cap, "%.0fh ago", floor(d / 3600));
    else
        snprintf(buf, cap, "%.0fd ago", floor(d / 86400));
}

/* Local date and time of t (seconds since the epoch); "-" for none. */
static void fmt_time(char *buf, size_t cap, double t)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (t <= 0 || !localtime_r(&tt, &tm) || !strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm))
        snprintf(buf, cap, "-");
}

/* Characters of UTF-8 text (bytes that do not continue a character). */
static size_t text_width(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

/* Cuts s (in place) to at most width characters, ending with "...". */
static void abbreviate(char *s, size_t width)
{
    if (text_width(s) <= width)
        return;
    size_t n = 0;
    char *p = s;
    for (; *p; p++)
        if (((unsigned char)*p & 0xc0) != 0x80 && n++ == width - 3)
            break;
    /* p starts character width-3: at least 4 bytes remain, room for "...". */
    memcpy(p, "...", 4);
}

/* Text into a malloc'd buffer through a FILE: open_memstream. */
typedef struct text {
    FILE *f;
    char *buf;
    size_t len;
} text;

static bool text_open(text *t)
{
    t->buf = NULL;
    t->len = 0;
    t->f = open_memstream(&t->buf, &t->len);
    return t->f != NULL;
}

/* Closes the stream; the text is the caller's (free it). NULL on failure. */
static char *text_close(text *t)
{
    if (!t->f || fclose(t->f) != 0) {
        free(t->buf);
        return NULL;
    }
    return t->buf;
}

/* A value rendered like JSON, long containers abbreviated to max items. */
static void put_value(FILE *f, const jc_value *v, size_t max)
{
    char *s = jc_value_format(v, max);
    fputs(s ? s : "?", f);
    free(s);
}

/* A value in a few characters, for one line of `ls`: doubles to 6
 * digits, map keys bare, and a container longer than max items (or nested
 * deeper than two) only says what it is ("doubles[100]"), so that the
 * other arguments still fit on the line. */
static void put_brief(FILE *f, const jc_value *v, size_t max, int depth)
{
    jc_type t = jc_value_type(v);
    size_t n = jc_value_len(v);
    double d = 0;
    bool container = t == JC_TYPE_DOUBLES || t == JC_TYPE_INTS || t == JC_TYPE_LIST || t == JC_TYPE_MAP;
    if (container && (n > max || depth > 2)) {
        fprintf(f, "%s[%zu]", jc_type_name(t), n);
    } else if (t == JC_TYPE_DOUBLE && jc_value_get_double(v, &d) == 0) {
        fprintf(f, "%.6g", d);
    } else if (t == JC_TYPE_LIST || t == JC_TYPE_MAP) {
        fputc(t == JC_TYPE_MAP ? '{' : '[', f);
        for (size_t i = 0; i < n; i++) {
            fputs(i ? ", " : "", f);
            if (t == JC_TYPE_MAP)
                fprintf(f, "%s: ", jc_value_key_at(v, i));
            put_brief(f, jc_value_at(v, i), max, depth + 1);
        }
        fputc(t == JC_TYPE_MAP ? '}' : ']', f);
    } else {
        put_value(f, v, max);
    }
}

/* "0.15, 3, gamma=0.1": the arguments of a call, as written in C. */
static char *args_text(const jc_value *args, const jc_value *kwargs, size_t max)
{
    text t;
    if (!text_open(&t))
        return NULL;
    size_t n = jc_value_len(args), k = jc_value_len(kwargs);
    for (size_t i = 0; i < n; i++) {
        fputs(i ? ", " : "", t.f);
        put_brief(t.f, jc_value_at(args, i), max, 0);
    }
    for (size_t i = 0; i < k; i++) {
        fprintf(t.f, "%s%s=", n + i ? ", " : "", jc_value_key_at(kwargs, i));
        put_brief(t.f, jc_value_at(kwargs, i), max, 0);
    }
    return text_close(&t);
}

/* The result in brief, for one line of `ls`. */
static char *result_text(const jc_value *v, size_t max)
{
    text t;
    if (!text_open(&t))
        return NULL;
    put_brief(t.f, v, max, 0);
    return text_close(&t);
}

/* ---- tables ---- */

typedef struct table {
    size_t ncols;
    const char *align; /* one 'l' or 'r' per column */
    char **cells;
    size_t nrows, cap;
} table;

/* Adds a row of t->ncols strings, copied with text_escape. */
static bool table_add(table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        char **c = realloc(t->cells, cap * t->ncols * sizeof *c);
        if (!c)
            return false;
        t->cells = c;
        t->cap = cap;
    }
    char **row = t->cells + t->nrows * t->ncols;
    bool ok = true;
    /* Cells are shown on a terminal: escaped here, once for all tables. */
    for (size_t i = 0; i < t->ncols; i++)
        ok &= (row[i] = text_escape(cells[i] ? cells[i] : "")) != NULL;
    t->nrows++; /* even a partial row, so that table_free frees it */
    return ok;
}

static void table_print(const table *t, FILE *f)
{
    size_t width[16] = {0};
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols && c < 16; c++) {
            size_t w = text_width(t->cells[r * t->ncols + c]);
            width[c] = w > width[c] ? w : width[c];
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * t->ncols + c];
            int pad = (int)(width[c < 16 ? c : 15] - text_width(s));
            bool last = c + 1 == t->ncols;
            if (t->align[c] == 'r')
                fprintf(f, "%*s%s", pad, "", s);
            else
                fprintf(f, "%s%*s", s, last ? 0 : pad, "");
            fputs(last ? "\n" : "  ", f);
        }
    }
}

static void table_free(table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
}

/* ---- entries ---- */

/* One entry with its values decoded (when they decode). */
typedef struct entry {
    jc_entry_info info; /* its strings are function and version below */
    char *function, *version;
    jc_value *args, *kwargs, *result;
    char *error; /* why the values did not load; NULL when they did */
} entry;

static void entry_free(entry *e)
{
    free(e->function);
    free(e->version);
    free(e->error);
    jc_value_free(e->args);
    jc_value_free(e->kwargs);
    jc_value_free(e->result);
}

/* Copies info (whose strings a later call may invalidate) and loads the
 * values. Returns false only when out of memory; a value that does not
 * decode leaves e->error set. */
static bool entry_load(jc_cache *cache, const jc_entry_info *info, entry *e)
{
    memset(e, 0, sizeof *e);
    e->info = *info;
    e->function = strdup(info->function);
    e->version = strdup(info->version);
    if (!e->function || !e->version)
        return false;
    e->info.function = e->function;
    e->info.version = e->version;
    if (jc_entry_load(cache, info->key, &e->args, &e->kwargs, &e->result))
        return (e->error = strdup(jc_errmsg())) != NULL;
    return true;
}

static int64_t entry_size(const jc_entry_info *e)
{
    return sat_add(e->args_size, e->result_size);
}

/* The metadata fields of an entry, as a JSON object; NULL when out of
 * memory. */
static json_t *entry_json_fields(const jc_entry_info *e)
{
    json_t *j = json_object();
    bool ok = j && json_put(j, "key", json_text(e->key_hex)) &&
              json_put(j, "function", json_text(e->function)) &&
              json_put(j, "version", json_text(e->version)) &&
              json_put(j, "args_size", json_integer(e->args_size)) &&
              json_put(j, "result_size", json_integer(e->result_size)) &&
              json_put(j, "size", json_integer(entry_size(e))) &&
              json_put(j, "created", json_time(e->created)) &&
              json_put(j, "last_used", json_time(e->last_used)) &&
              json_put(j, "compute_seconds", json_seconds(e->compute_seconds)) &&
              json_put(j, "hits", json_integer(e->hits));
    if (!ok)
        json_decref(j);
    return ok ? j : NULL;
}

/* An entry with its decoded values, as one JSON object (show, export);
 * NULL when out of memory. */
static json_t *entry_json(const entry *e)
{
    json_t *j = entry_json_fields(&e->info);
    bool ok = j != NULL;
    if (ok && e->error)
        ok = json_put(j, "args", json_null()) && json_put(j, "kwargs", json_null()) &&
             json_put(j, "result", json_null()) && json_put(j, "error", json_text(e->error));
    else if (ok)
        ok = json_put(j, "args", json_value(e->args)) &&
             json_put(j, "kwargs", json_value(e->kwargs)) &&
             json_put(j, "result", json_value(e->result));
    if (!ok)
        json_decref(j);
    return ok ? j : NULL;
}

static jc_filter filter_of(const opts *o)
{
    jc_filter f = {.function = o->function,
                   .version = o->version,
                   .older_than = o->older_than,
                   .newer_than = o->newer_than,
                   .sort = o->sort,
                   .reverse = (o->given & OPT_REVERSE) != 0,
                   .limit = o->limit};
    return f;
}

static int failed(const char *cmd)
{
    say(stderr, "jobcache %s: %s", cmd, jc_errmsg());
    return EXIT_USAGE;
}

static int out_of_memory(const char *cmd)
{
    fprintf(stderr, "jobcache %s: out of memory\n", cmd);
    return EXIT_USAGE;
}

/* ---- stats ---- */

/* One function and version of stats --json; NULL when out of memory. */
static json_t *stats_function_json(const jc_function_stats *f)
{
    json_t *j = json_object();
    bool ok = j && json_put(j, "function", json_text(f->function)) &&
              json_put(j, "version", json_text(f->version)) &&
              json_put(j, "entries", json_integer(f->entries)) &&
              json_put(j, "bytes", json_integer(f->bytes)) &&
              json_put(j, "compute_seconds", json_seconds(f->compute_seconds)) &&
              json_put(j, "mean_seconds", json_seconds(f->mean_seconds)) &&
              json_put(j, "hits", json_integer(f->hits)) &&
              json_put(j, "saved_seconds", json_seconds(f->saved_seconds)) &&
              json_put(j, "oldest", json_time(f->oldest)) &&
              json_put(j, "newest", json_time(f->newest)) &&
              json_put(j, "last_used", json_time(f->last_used)) &&
              json_put(j, "code_fingerprints", json_integer(f->code_fingerprints));
    if (!ok)
        json_decref(j);
    return ok ? j : NULL;
}

/* Writes stats --json; false when out of memory. */
static bool stats_json(const jc_stats *s)
{
    json_t *j = json_object(), *fs = json_array();
    bool ok = j && fs && json_put(j, "path", json_text(s->path)) &&
              json_put(j, "schema_version", json_integer(s->schema_version)) &&
              json_put(j, "key_format", json_integer(s->key_format)) &&
              json_put(j, "entries", json_integer(s->entries)) &&
              json_put(j, "file_bytes", json_integer(s->file_bytes)) &&
              json_put(j, "free_bytes", json_integer(s->free_bytes)) &&
              json_put(j, "payload_bytes", json_integer(s->payload_bytes)) &&
              json_put(j, "args_bytes", json_integer(s->args_bytes)) &&
              json_put(j, "result_bytes", json_integer(s->result_bytes)) &&
              json_put(j, "compute_seconds", json_seconds(s->compute_seconds)) &&
              json_put(j, "hits", json_integer(s->hits)) &&
              json_put(j, "saved_seconds", json_seconds(s->saved_seconds)) &&
              json_put(j, "oldest", json_time(s->oldest)) &&
              json_put(j, "newest", json_time(s->newest)) &&
              json_put(j, "last_used", json_time(s->last_used)) &&
              json_put(j, "wal_bytes", json_integer(s->wal_bytes)) &&
              json_put(j, "other_format_entries", json_integer(s->other_format_entries)) &&
              json_put(j, "leases_alive", json_integer(s->leases_alive)) &&
              json_put(j, "leases_stale", json_integer(s->leases_stale)) &&
              json_put(j, "leases_calls", json_integer(s->leases_calls));
    for (size_t i = 0; ok && i < s->nfunctions; i++) {
        json_t *f = stats_function_json(&s->functions[i]);
        ok = f && json_array_append_new(fs, f) == 0;
    }
    ok = ok && json_put(j, "functions", json_incref(fs)) && json_out(stdout, j, false) == 0;
    if (ok)
        putchar('\n');
    json_decref(fs);
    json_decref(j);
    return ok;
}

static bool stats_function_table(const jc_stats *s)
{
    table t = {.ncols = 12, .align = "llrrrrrrlllr"};
    bool ok = table_add(&t, (const char *const[]){"FUNCTION", "VERSION", "ENTRIES",
                                                               "SIZE", "TIME", "MEAN", "HITS",
                                                               "SAVED", "OLDEST", "NEWEST",
                                                               "LAST USED", "CODE"});
    bool changed = false;
    for (size_t i = 0; i < s->nfunctions && ok; i++) {
        const jc_function_stats *f = &s->functions[i];
        char n[24], size[16], tm[16], mean[16], hits[24], saved[16], old[32], new_[32], used[32], code[24];
        if (f->code_fingerprints)
            snprintf(code, sizeof code, "%lld", (long long)f->code_fingerprints);
        else
            snprintf(code, sizeof code, "-");
        changed |= f->code_fingerprints > 1;
        snprintf(n, sizeof n, "%lld", (long long)f->entries);
        fmt_size(size, sizeof size, f->bytes);
        fmt_seconds(tm, sizeof tm, f->compute_seconds);
        fmt_seconds(mean, sizeof mean, f->mean_seconds);
        snprintf(hits, sizeof hits, "%lld", (long long)f->hits);
        fmt_seconds(saved, sizeof saved, f->saved_seconds);
        fmt_time(old, sizeof old, f->oldest);
        fmt_time(new_, sizeof new_, f->newest);
        fmt_ago(used, sizeof used, f->last_used);
        ok = table_add(&t, (const char *const[]){f->function, f->version, n, size, tm, mean, hits,
                                                 saved, old, new_, used, code});
    }
    if (ok)
        table_print(&t, stdout);
    if (ok && changed)
        printf("\nCODE counts the different machine code that computed a version's entries (\"-\": not\n"
               "known). More than 1: the function changed without a version bump; if that changed its\n"
               "results, bump the version, or rerun with JOBCACHE_ON_CODE_CHANGE=recompute.\n");
    table_free(&t);
    return ok;
}

static void stats_text(const jc_stats *s)
{
    char a[32], b[32], c[32], d[32];
    say(stdout, "file          %s", s->path);
    printf("schema        version %d, key format %d\n", s->schema_version, s->key_format);
    printf("entries       %lld\n", (long long)s->entries);
    if (s->other_format_entries)
        printf("              of which %lld of another key format (never used by this release;\n"
               "              'jobcache prune --other-formats' removes them)\n",
               (long long)s->other_format_entries);
    fmt_size(a, sizeof a, s->file_bytes);
    fmt_size(b, sizeof b, s->free_bytes);
    if (s->free_bytes > 0)
        printf("on disk       %s, with the -wal file (what max_size bounds; %s free: 'jobcache vacuum'\n"
               "              gives it back)\n", a, b);
    else
        printf("on disk       %s, with the -wal file (what max_size bounds)\n", a);
    fmt_size(a, sizeof a, s->payload_bytes);
    fmt_size(b, sizeof b, s->args_bytes);
    fmt_size(c, sizeof c, s->result_bytes);
    printf("payload       %s (arguments %s, results %s)\n", a, b, c);
    fmt_seconds(a, sizeof a, s->compute_seconds);
    fmt_seconds(b, sizeof b, s->saved_seconds);
    printf("compute time  %s, of which %lld hits saved %s\n", a, (long long)s->hits, b);
    fmt_time(a, sizeof a, s->oldest);
    fmt_time(b, sizeof b, s->newest);
    fmt_time(c, sizeof c, s->last_used);
    fmt_ago(d, sizeof d, s->last_used);
    printf("oldest        %s\nnewest        %s\nlast used     %s (%s)\n", a, b, c, d);
    if (s->leases_alive || s->leases_stale)
        printf("leases        %lld process%s computing %lld calls for this cache%s ('jobcache leases')\n",
               (long long)s->leases_alive, s->leases_alive == 1 ? "" : "es", (long long)s->leases_calls,
               s->leases_stale ? ", and stale claims" : "");
    if (s->wal_bytes > 0) {
        fmt_size(a, sizeof a, s->wal_bytes);
        say(stdout, "wal           %s in %s-wal, maybe not yet in the file itself: copy the cache with", a,
            s->path);
        say(stdout, "              'jobcache backup', not cp");
    }
}

static int cmd_stats(jc_cache *cache, const opts *o)
{
    jc_stats *s = jc_cache_stats(cache);
    if (!s)
        return failed("stats");
    int rc = EXIT_OK;
    if (o->given & OPT_JSON) {
        if (!stats_json(s))
            rc = out_of_memory("stats");
    } else {
        stats_text(s);
        if (s->nfunctions) {
            putchar('\n');
            if (!stats_function_table(s))
                rc = out_of_memory("stats");
        }
    }
    jc_stats_free(s);
    return rc;
}

/* ---- ls ---- */

/* `ls` prints each entry as it reads it, in columns of fixed widths, so that
 * the first line comes at once and memory does not grow with the number of
 * entries (sizing columns to their contents would read every entry first).
 * A function or version name longer than its column pushes the rest of its
 * line to the right; arguments and results are abbreviated to theirs. */
enum { LS_KEY = 12, LS_FUNCTION = 14, LS_VERSION = 7, LS_ARGS = 36, LS_RESULT = 36, LS_SIZE = 6,
       LS_TIME = 7, LS_HITS = 5 };

static void ls_cell(const char *raw, size_t width, bool right, bool last)
{
    /* Every cell escaped (a function name or version from the file may
     * hold escape sequences); escaping escaped text changes nothing. */
    char *safe = text_escape(raw);
    const char *s = safe ? safe : "?";
    size_t w = text_width(s);
    int pad = (int)(w < width ? width - w : 0);
    if (right)
        printf("%*s%s", pad, "", s);
    else
        printf("%s%*s", s, last ? 0 : pad, "");
    fputs(last ? "\n" : "  ", stdout);
    free(safe);
}

static void ls_line(const char *const cells[9])
{
    static const size_t width[9] = {LS_KEY, LS_FUNCTION, LS_VERSION, LS_ARGS, LS_RESULT,
                                    LS_SIZE, LS_TIME, LS_HITS, 0};
    for (int i = 0; i < 9; i++)
        ls_cell(cells[i], width[i], i >= 5 && i <= 7, i == 8);
}

/* Prints one entry's line. */
static bool ls_row(jc_cache *cache, const jc_entry_info *info)
{
    entry e;
    char key[13], size[16], tm[16], hits[24], used[32];
    char *args = NULL, *result = NULL;
    bool ok = entry_load(cache, info, &e);
    if (ok && !e.error) {
        /* Escaped before they are cut to width, so that the width is what
         * the terminal shows (table_add's escaping then changes nothing). */
        char *a = args_text(e.args, e.kwargs, LS_ITEMS), *r = result_text(e.result, LS_ITEMS);
        args = a ? text_escape(a) : NULL;
        result = r ? text_escape(r) : NULL;
        free(a);
        free(r);
        ok = args && result;
    } else if (ok) {
        /* A result that does not decode is shown as such in the result
         * column, beside the arguments when those decode. */
        jc_value *pa = NULL, *ka = NULL;
        if (jc_entry_load(cache, info->key, &pa, &ka, NULL) == 0) {
            char *a = args_text(pa, ka, LS_ITEMS);
            args = a ? text_escape(a) : NULL;
            free(a);
        }
        jc_value_free(pa);
        jc_value_free(ka);
    }
    if (ok) {
        if (args)
            abbreviate(args, LS_ARGS);
        if (!e.error) {
            abbreviate(result, LS_RESULT);
        }
        snprintf(key, sizeof key, "%.12s", info->key_hex);
        fmt_size(size, sizeof size, entry_size(info));
        fmt_seconds(tm, sizeof tm, info->compute_seconds);
        snprintf(hits, sizeof hits, "%lld", (long long)info->hits);
        fmt_ago(used, sizeof used, info->last_used);
        ls_line((const char *const[]){key, e.function, e.version, args ? args : "?",
                                      e.error ? "<does not decode>" : result, size, tm, hits, used});
    }
    free(args);
    free(result);
    entry_free(&e);
    return ok;
}

static int cmd_ls(jc_cache *cache, const opts *o)
{
    jc_filter f = filter_of(o);
    jc_entry_info info;
    bool json = o->given & OPT_JSON, ok = true;
    size_t n = 0;
    jc_entries *it = jc_entries_query(cache, &f);
    if (!it)
        return failed("ls");
    int rc;
    while (ok && (rc = jc_entries_next(it, &info)) == 1) {
        if (json) {
            /* Streamed, an entry at a time: the framing is written here,
             * each object by the JSON writer. */
            fputs(n ? ",\n  " : "[\n  ", stdout);
            ok = json_out(stdout, entry_json_fields(&info), true) == 0;
        } else {
            if (n == 0)
                ls_line((const char *const[]){"KEY", "FUNCTION", "VERSION", "ARGS", "RESULT", "SIZE", "TIME",
                                              "HITS", "LAST USED"});
            ok = ls_row(cache, &info);
        }
        n++;
    }
    if (json)
        printf("%s]\n", n ? "\n" : "[");
    jc_entries_free(it);
    if (!ok)
        return out_of_memory("ls");
    return rc < 0 ? failed("ls") : EXIT_OK;
}

/* ---- show ---- */

/* A value as show writes it; "?" when out of memory (free() it). */
static char *value_text(const jc_value *v, size_t max)
{
    char *s = jc_value_format(v, max);
    return s ? s : strdup("?");
}

static void show_values(const entry *e, size_t max)
{
    size_t n = jc_value_len(e->args), k = jc_value_len(e->kwargs);
    for (size_t i = 0; i < n; i++) {
        char *s = value_text(jc_value_at(e->args, i), max);
        say(stdout, "%-11s [%zu] %s", i ? "" : "args", i, s ? s : "?");
        free(s);
    }
    for (size_t i = 0; i < k; i++) {
        char *s = value_text(jc_value_at(e->kwargs, i), max);
        say(stdout, "%-11s %s = %s", i ? "" : "kwargs", jc_value_key_at(e->kwargs, i), s ? s : "?");
        free(s);
    }
    if (n + k == 0)
        printf("args        (none)\n");
    char *s = value_text(e->result, max);
    say(stdout, "result      %s", s ? s : "?");
    free(s);
}

static void show_text(const entry *e, size_t max)
{
    const jc_entry_info *i = &e->info;
    char a[32], b[32], c[32];
    say(stdout, "key         %s", i->key_hex);
    say(stdout, "function    %s", i->function);
    say(stdout, "version     %s", i->version);
    fmt_time(a, sizeof a, i->created);
    fmt_ago(b, sizeof b, i->created);
    printf("created     %s (%s)\n", a, b);
    fmt_time(a, sizeof a, i->last_used);
    fmt_ago(b, sizeof b, i->last_used);
    printf("last used   %s (%s)\n", a, b);
    fmt_seconds(a, sizeof a, i->compute_seconds);
    printf("compute     %s\nhits        %lld\n", a, (long long)i->hits);
    fmt_size(a, sizeof a, entry_size(i));
    fmt_size(b, sizeof b, i->args_size);
    fmt_size(c, sizeof c, i->result_size);
    printf("size        %s (arguments %s, result %s)\n", a, b, c);
    if (e->error)
        say(stdout, "error       %s", e->error);
    else
        show_values(e, max);
}

static int cmd_show(jc_cache *cache, const opts *o)
{
    jc_entry_info info;
    entry e;
    if (jc_entry_find(cache, o->pos[0], &info))
        return failed("show");
    if (!entry_load(cache, &info, &e)) {
        entry_free(&e);
        return out_of_memory("show");
    }
    int rc = e.error ? EXIT_PROBLEMS : EXIT_OK;
    if (!(o->given & OPT_JSON))
        show_text(&e, (o->given & OPT_FULL) ? 0 : SHOW_ITEMS);
    else if (json_out(stdout, entry_json(&e), true) == 0)
        putchar('\n');
    else
        rc = out_of_memory("show");
    if (e.error)
        say(stderr, "jobcache show: %s", e.error);
    entry_free(&e);
    return rc;
}

/* ---- diff ---- */

/* Finds and loads the entry of a key prefix; false with a message. */
static bool find_entry(jc_cache *cache, const char *prefix, entry *e)
{
    jc_entry_info info;
    memset(e, 0, sizeof *e);
    if (jc_entry_find(cache, prefix, &info)) {
        failed("diff");
        return false;
    }
    if (!entry_load(cache, &info, e)) {
        out_of_memory("diff");
        return false;
    }
    if (e->error) {
        say(stderr, "jobcache diff: %s", e->error);
        return false;
    }
    return true;
}

/* Adds a line for what differs, when it does: a or b NULL means absent. */
static bool diff_row(table *t, const char *what, const jc_value *a, const jc_value *b)
{
    if (a && b && jc_value_equal(a, b))
        return true;
    char *sa = a ? jc_value_format(a, SHOW_ITEMS) : NULL;
    char *sb = b ? jc_value_format(b, SHOW_ITEMS) : NULL;
    bool ok = (!a || sa) && (!b || sb) &&
              table_add(t, (const char *const[]){what, sa ? sa : "(absent)", sb ? sb : "(absent)"});
    free(sa);
    free(sb);
    return ok;
}

/* The named arguments of both, walked in name order (maps are sorted). */
static bool diff_kwargs(table *t, const jc_value *ka, const jc_value *kb)
{
    size_t i = 0, j = 0, na = jc_value_len(ka), nb = jc_value_len(kb);
    bool ok = true;
    while (ok && (i < na || j < nb)) {
        const char *x = i < na ? jc_value_key_at(ka, i) : NULL;
        const char *y = j < nb ? jc_value_key_at(kb, j) : NULL;
        int c = !x ? 1 : !y ? -1 : strcmp(x, y);
        const char *name = c <= 0 ? x : y;
        ok = diff_row(t, name, c <= 0 ? jc_value_at(ka, i) : NULL, c >= 0 ? jc_value_at(kb, j) : NULL);
        i += c <= 0;
        j += c >= 0;
    }
    return ok;
}

static bool diff_table(const entry *a, const entry *b, table *t)
{
    char ha[24], hb[24];
    snprintf(ha, sizeof ha, "A %.12s", a->info.key_hex);
    snprintf(hb, sizeof hb, "B %.12s", b->info.key_hex);
    bool ok = table_add(t, (const char *const[]){"ARGUMENT", ha, hb});
    if (ok && strcmp(a->version, b->version) != 0)
        ok = table_add(t, (const char *const[]){"(version)", a->version, b->version});
    size_t na = jc_value_len(a->args), nb = jc_value_len(b->args);
    for (size_t i = 0; ok && (i < na || i < nb); i++) {
        char what[32];
        snprintf(what, sizeof what, "[%zu]", i);
        ok = diff_row(t, what, jc_value_at(a->args, i), jc_value_at(b->args, i));
    }
    return ok && diff_kwargs(t, a->kwargs, b->kwargs);
}

static int cmd_diff(jc_cache *cache, const opts *o)
{
    entry a, b;
    table t = {.ncols = 3, .align = "lll"};
    int rc = EXIT_USAGE;
    bool found = find_entry(cache, o->pos[0], &a);
    memset(&b, 0, sizeof b);
    if (found && (found = find_entry(cache, o->pos[1], &b)) &&
        strcmp(a.function, b.function) != 0) {
        say(stderr, "jobcache diff: the entries are of different functions (%s and %s); diff "
                    "compares calls of one function",
            a.function, b.function);
        found = false;
    }
    if (found && !diff_table(&a, &b, &t)) {
        rc = out_of_memory("diff");
    } else if (found) {
        if (t.nrows == 1)
            printf("no difference: same function, version and arguments\n");
        else
            table_print(&t, stdout);
        rc = EXIT_OK;
    }
    table_free(&t);
    entry_free(&a);
    entry_free(&b);
    return rc;
}

/* ---- rm, prune, clear ---- */

static void report_removed(bool dry_run, int64_t count, int64_t bytes)
{
    char size[16];
    fmt_size(size, sizeof size, bytes);
    printf("%s %lld entr%s (%s)\n", dry_run ? "would remove" : "removed", (long long)count,
           count == 1 ? "y" : "ies", size);
}

/* Removes the entries of the key prefixes: all are resolved first, so that
 * a bad prefix removes nothing. */
static int rm_keys(jc_cache *cache, const opts *o)
{
    bool dry = o->given & OPT_DRY_RUN;
    int64_t count = 0, bytes = 0;
    jc_entry_info *found = calloc(o->npos, sizeof *found);
    if (!found)
        return out_of_memory("rm");
    for (size_t i = 0; i < o->npos; i++) {
        if (jc_entry_find(cache, o->pos[i], &found[i])) {
            free(found);
            return failed("rm");
        }
    }
    int rc = EXIT_OK;
    for (size_t i = 0; i < o->npos && rc == EXIT_OK; i++) {
        bool again = false; /* two prefixes of one key */
        for (size_t j = 0; j < i; j++)
            again |= memcmp(found[j].key, found[i].key, JC_KEY_SIZE) == 0;
        if (again)
            continue;
        if (!dry && jc_entry_remove(cache, found[i].key))
            rc = failed("rm");
        count++;
        bytes = sat_add(bytes, entry_size(&found[i]));
    }
    free(found);
    if (rc == EXIT_OK)
        report_removed(dry, count, bytes);
    return rc;
}

static int check_rm(const command *c, const opts *o)
{
    if (o->npos && (o->given & OPT_FUNCTION))
        return usage_error(c, "give key prefixes or --function, not both");
    if (!o->npos && !(o->given & OPT_FUNCTION))
        return usage_error(c, "give key prefixes, or --function F");
    return -1;
}

static int cmd_rm(jc_cache *cache, const opts *o)
{
    if (o->npos)
        return rm_keys(cache, o);
    jc_filter f = {.function = o->function, .version = o->version};
    int64_t count, bytes;
    if (jc_cache_remove_matching(cache, &f, o->given & OPT_DRY_RUN, &count, &bytes))
        return failed("rm");
    report_removed(o->given & OPT_DRY_RUN, count, bytes);
    return EXIT_OK;
}

static int check_prune(const command *c, const opts *o)
{
    if (!(o->given & (OPT_MAX_SIZE | OPT_MAX_ENTRIES | OPT_OLDER | OPT_STALE | OPT_MAX_PAYLOAD | OPT_OTHER_FORMATS)))
        return usage_error(c, "say what to prune: --max-size, --max-payload, --max-entries, --older-than, "
                              "--stale-versions or --other-formats");
    return -1;
}

static int cmd_prune(jc_cache *cache, const opts *o)
{
    jc_prune_options p = {.stale_versions = (o->given & OPT_STALE) != 0,
                          .older_than = o->older_than,
                          .max_entries = o->max_entries,
                          .max_size = o->max_size,
                          .max_payload = o->max_payload,
                          .other_formats = (o->given & OPT_OTHER_FORMATS) != 0};
    bool dry = o->given & OPT_DRY_RUN;
    int64_t count, bytes;
    if (jc_cache_prune(cache, &p, dry, &count, &bytes))
        return failed("prune");
    report_removed(dry, count, bytes);
    if (!dry && count && !p.max_size)
        printf("the file keeps its size for new entries; 'jobcache vacuum' gives the space back\n");
    return EXIT_OK;
}

static int check_clear(const command *c, const opts *o)
{
    if (!(o->given & OPT_YES))
        return usage_error(c, "this removes every entry of the cache; add --yes");
    return -1;
}

static int cmd_clear(jc_cache *cache, const opts *o)
{
    (void)o;
    int64_t count;
    if (jc_cache_clear(cache, &count))
        return failed("clear");
    printf("removed %lld entr%s\n", (long long)count, count == 1 ? "y" : "ies");
    return EXIT_OK;
}

static int cmd_vacuum(jc_cache *cache, const opts *o)
{
    (void)o;
    char a[16], b[16];
    jc_stats *before = jc_cache_stats(cache), *after = NULL;
    int rc = before && jc_cache_vacuum(cache) == 0 && (after = jc_cache_stats(cache))
                 ? EXIT_OK
                 : failed("vacuum");
    if (rc == EXIT_OK) {
        fmt_size(a, sizeof a, before->file_bytes);
        fmt_size(b, sizeof b, after->file_bytes);
        say(stdout, "%s: %s before, %s after", jc_cache_path(cache), a, b);
    }
    jc_stats_free(before);
    jc_stats_free(after);
    return rc;
}

/* ---- verify ---- */

static void print_problem(const jc_entry_info *e, const char *problem, void *userdata)
{
    (void)userdata;
    if (e)
        say(stdout, "%.12s  %s %s: %s", e->key_hex, e->function, e->version, problem);
    else
        say(stdout, "file: %s", problem);
}

static int cmd_verify(jc_cache *cache, const opts *o)
{
    jc_verify_result r;
    bool repair = o->given & OPT_REPAIR;
    if (jc_cache_verify(cache, repair, print_problem, NULL, &r))
        return failed("verify");
    printf("checked %lld entr%s: ", (long long)r.checked, r.checked == 1 ? "y" : "ies");
    if (r.bad_entries)
        printf("%lld bad", (long long)r.bad_entries);
    else
        printf(r.file_problems || r.unreadable ? "none of them bad" : "all sound");
    if (repair)
        printf(", %lld removed", (long long)r.removed);
    putchar('\n');
    if (r.unreadable)
        printf("%lld entr%s could not be read at all (on damaged pages of the file)\n", (long long)r.unreadable,
               r.unreadable == 1 ? "y" : "ies");
    if (r.unchecked)
        printf("%lld entr%s no result checksum (written by jobcache 0.1.0; a writable open adds them)\n",
               (long long)r.unchecked, r.unchecked == 1 ? "y has" : "ies have");
    if (r.other_format)
        printf("%lld entr%s of another key format than %d (made by another release of jobcache): not\n"
               "damage and never used by this one; not checked%s; 'jobcache prune --other-formats'\n"
               "removes them\n",
               (long long)r.other_format, r.other_format == 1 ? "y is" : "ies are", JC_KEY_FORMAT_VERSION,
               repair ? ", kept" : "");
    jc_stats *st = jc_cache_stats(cache);
    if (st && st->wal_bytes > 0) {
        char wal[32];
        fmt_size(wal, sizeof wal, st->wal_bytes);
        say(stdout, "the cache has %s in %s-wal beside it, maybe not yet in the file itself: copy it", wal,
            st->path);
        say(stdout, "with 'jobcache backup', not cp");
    }
    jc_stats_free(st);
    if (r.file_problems)
        printf("SQLite's integrity check found %lld problem%s in the file\n",
               (long long)r.file_problems, r.file_problems == 1 ? "" : "s");
    return r.bad_entries || r.file_problems ? EXIT_PROBLEMS : EXIT_OK;
}

/* ---- export ---- */

static int cmd_export(jc_cache *cache, const opts *o)
{
    jc_filter f = {.function = o->function, .version = o->version};
    jc_entry_info info;
    bool ok = true, bad = false;
    int rc = 0;
    jc_entries *it = jc_entries_query(cache, &f);
    if (!it)
        return failed("export");
    while (ok && (rc = jc_entries_next(it, &info)) == 1) {
        entry e;
        ok = entry_load(cache, &info, &e);
        if (ok && (ok = json_out(stdout, entry_json(&e), true) == 0)) {
            putchar('\n');
            bad |= e.error != NULL;
        }
        entry_free(&e);
    }
    jc_entries_free(it);
    if (!ok)
        return out_of_memory("export");
    if (rc < 0)
        return failed("export");
    if (bad)
        fprintf(stderr, "jobcache export: some entries do not decode (their \"error\" says why); "
                        "see 'jobcache verify'\n");
    return bad ? EXIT_PROBLEMS : EXIT_OK;
}

/* ---- merge ---- */

static int cmd_merge(jc_cache *cache, const opts *o)
{
    jc_merge_result r;
    int rc = jc_cache_merge(cache, o->pos[0], &r);
    if (rc && r.added + r.replaced == 0)
        return failed("merge");
    printf("added %lld, replaced %lld, kept %lld", (long long)r.added, (long long)r.replaced,
           (long long)r.kept);
    if (r.rejected)
        printf(", rejected %lld (they fail 'jobcache verify')", (long long)r.rejected);
    if (r.other_format)
        printf(", skipped %lld of another key format", (long long)r.other_format);
    putchar('\n');
    if (rc)
        return failed("merge");
    return r.rejected ? EXIT_PROBLEMS : EXIT_OK;
}

/* ---- backup ---- */

static int cmd_backup(jc_cache *cache, const opts *o)
{
    if (jc_cache_backup(cache, o->pos[0]))
        return failed("backup");
    say(stdout, "backed up %s to %s", jc_cache_path(cache), o->pos[0]);
    return EXIT_OK;
}

/* ---- leases ---- */

static void print_lease(const jc_lease_info *l, void *userdata)
{
    (void)userdata;
    char since[32], until[32];
    fmt_ago(since, sizeof since, l->started);
    fmt_time(until, sizeof until, l->expires);
    say(stdout, "%-7ld %8lld  %-14s %-20s %-6s %s", l->pid, (long long)l->calls, since, until,
           l->alive ? "alive" : "stale", l->owner);
}

static int cmd_leases(jc_cache *cache, const opts *o)
{
    (void)o;
    size_t n = 0;
    printf("%-7s %8s  %-14s %-20s %-6s %s\n", "PID", "CALLS", "SINCE", "EXPIRES", "STATE", "OWNER");
    if (jc_cache_leases(cache, print_lease, NULL, &n))
        return failed("leases");
    if (!n)
        printf("(no process holds claims)\n");
    return EXIT_OK;
}

static int cmd_break_lease(jc_cache *cache, const opts *o)
{
    size_t n = 0;
    bool stale = strcmp(o->pos[0], "stale") == 0;
    if (jc_cache_break_lease(cache, stale ? NULL : o->pos[0], &n))
        return failed("break-lease");
    printf("removed the claims of %zu process%s\n", n, n == 1 ? "" : "es");
    return EXIT_OK;
}

/* ---- main ---- */

static jc_cache *open_cache(const command *c, const opts *o)
{
    int mode = c->mode == MODE_VERIFY ? ((o->given & OPT_REPAIR) ? MODE_WRITE : MODE_READ) : c->mode;
    unsigned flags = mode == MODE_READ ? JC_CACHE_READONLY : mode == MODE_WRITE ? JC_CACHE_NOCREATE : 0;
    jc_cache *cache = jc_cache_open(o->file, &(jc_cache_options){.flags = flags});
    if (!cache)
        failed(c->name);
    return cache;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "help") == 0)
        return cmd_help(argc - 2, argv + 2);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("jobcache %s\n", jc_version());
        return EXIT_OK;
    }
    const command *c = find_command(argv[1]);
    if (!c) {
        say(stderr, "jobcache: unknown command '%s' (see 'jobcache help')", argv[1]);
        return EXIT_USAGE;
    }
    opts o;
    int rc = parse_args(c, argc - 2, argv + 2, &o);
    if (rc < 0 && c->check)
        rc = c->check(c, &o);
    if (rc < 0) {
        jc_cache *cache = open_cache(c, &o);
        rc = cache ? c->run(cache, &o) : EXIT_USAGE;
        jc_cache_close(cache);
    }
    free(o.pos);
    return rc;
}
