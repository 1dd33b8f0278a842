/*
 * jobcache: inspect, prune, verify and merge a jobcache cache from the shell
 * (docs/jobcache.1 is the manual).
 *
 * The dispatcher, as git.c is for git: the table of commands, the options
 * (parsed with getopt_long), help, and opening the cache. Each command is
 * one file of this directory with its help beside its code (builtin.h).
 * It uses only the public API of <jobcache.h>, as any program could: what
 * this command does, a program can do too. Exit codes (builtin.h): 0 ok,
 * 1 problems found (or, for diff, differences), 2 usage errors, 3 failures
 * (the file could not be opened, read or written; out of memory).
 */
#define _GNU_SOURCE /* getopt_long */

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jobcache.h>

#include "builtin.h"
#include "msgs.h"

/* ---- the commands ---- */

static int cmd_complete(int argc, char **argv);

static const command *const commands[] = {
    &builtin_stats, &builtin_ls,     &builtin_show,   &builtin_diff,   &builtin_rm,
    &builtin_prune, &builtin_verify, &builtin_export, &builtin_merge,  &builtin_vacuum,
    &builtin_clear, &builtin_backup, &builtin_leases, &builtin_break_lease, &builtin_unlock_host, &builtin_config, &builtin_log,
    &builtin_find,
};
enum { NCOMMANDS = sizeof commands / sizeof *commands };

const command *const *commands_all(size_t *n)
{
    *n = NCOMMANDS;
    return commands;
}

const command *command_find(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i]->name, name) == 0)
            return commands[i];
    return NULL;
}

/* Edit distance (insertions, deletions, substitutions, transpositions of
 * neighbours) between a and b, or 3 when more; names are short. */
static int distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > 32 || m > 32 || (n > m ? n - m : m - n) > 2)
        return 3;
    int d[33][33];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[n][m] < 3 ? d[n][m] : 3;
}

/* The command a mistyped name most likely meant (as git's "did you
 * mean"): the one a name starts, else the nearest within 2 edits; NULL when
 * none or several are as near. */
static const command *command_guess(const char *name)
{
    const command *best = NULL;
    int best_d = 3;
    bool tie = false;
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const char *cn = commands[i]->name;
        int d = strncmp(cn, name, strlen(name)) == 0 && *name ? 0 : distance(name, cn);
        if (d < best_d) {
            best = commands[i], best_d = d, tie = false;
        } else if (d == best_d && d < 3) {
            tie = true;
        }
    }
    return tie ? NULL : best;
}

/* "unknown command 'X'", with the likely one when there is one. */
static void unknown_command(const char *who, const char *name)
{
    const command *g = command_guess(name);
    if (g)
        say(stderr, "%s: unknown command '%s'; did you mean '%s'? (see 'jobcache help')", who, name, g->name);
    else
        say(stderr, "%s: unknown command '%s' (see 'jobcache help')", who, name);
}

/* ---- options ---- */

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
    {"versions", 0, OPT_VERSIONS, NULL, "compare two versions of a function: diff --versions F V1 V2"},
    {"older-than", 0, OPT_OLDER, "AGE", "entries last used more than AGE ago (90s, 12h, 30d, 2w)"},
    {"newer-than", 0, OPT_NEWER, "AGE", "entries last used less than AGE ago"},
    {"sort", 0, OPT_SORT, "KEY", "order by name (default), used, size, time, hits, created or key"},
    {"reverse", 'r', OPT_REVERSE, NULL, "reverse the order"},
    {"limit", 'n', OPT_LIMIT, "N", "at most N entries (diff --versions: N largest changes)"},
    {"max-size", 0, OPT_MAX_SIZE, "SIZE", "remove least recently used entries until the file takes SIZE (500M, 2G)"},
    {"max-payload", 0, OPT_MAX_PAYLOAD, "SIZE", "remove least recently used entries beyond SIZE of payload"},
    {"other-formats", 0, OPT_OTHER_FORMATS, NULL, "remove the entries of another key format"},
    {"max-entries", 0, OPT_MAX_ENTRIES, "N", "remove least recently used entries beyond N"},
    {"stale-versions", 0, OPT_STALE, NULL, "keep only the version of each function used last"},
    {"dry-run", 0, OPT_DRY_RUN, NULL, "only say what would be removed"},
    {"downstream", 0, OPT_DOWNSTREAM, NULL, "rm: also every entry computed from the entry's result (pipelines)"},
    {"repair", 0, OPT_REPAIR, NULL, "remove the bad entries"},
    {"zero-stats", 'z', OPT_ZERO, NULL, "stats: zero every entry's hit count first (as ccache -z)"},
    {"full", 0, OPT_FULL, NULL, "do not abbreviate long arrays and lists"},
    {"json", 0, OPT_JSON, NULL, "machine-readable output (fields in jobcache(1))"},
    {"failed", 0, OPT_FAILED, NULL, "log: only runs with a failure"},
    {"format", 0, OPT_FORMAT, "FMT", "export: jsonl (default), csv or tsv"},
    {"yes", 'y', OPT_YES, NULL, "really remove every entry"},
    {"help", 'h', OPT_HELP, NULL, "show this help"},
};
enum { NOPTIONS = sizeof option_specs / sizeof *option_specs };

/* getopt_long's val of option i: its short letter, or 256 + i. */
static int option_val(size_t i)
{
    return option_specs[i].short_name ? option_specs[i].short_name : 256 + (int)i;
}

static const option_spec *option_of_val(int val)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (val && option_val(i) == val)
            return &option_specs[i];
    return NULL;
}

void command_option_names(const command *c, FILE *f)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if ((c->options & option_specs[i].bit) || option_specs[i].bit == OPT_HELP)
            fprintf(f, "--%s\n", option_specs[i].name);
}

/* ---- help ---- */

static void usage(FILE *f)
{
    fprintf(f, "usage: jobcache COMMAND [ARGS] [OPTIONS]\n\n"
               "Inspect and tend a jobcache cache file: FILE where a command takes one,\n"
               "or --file FILE, else $JOBCACHE_PATH, else ./jobcache.db.\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %s\n", commands[i]->synopsis);
    fprintf(f, "  help [COMMAND]\n\n"
               "Sizes: 500M, 2G, 64KiB (K, M, G, T and KiB, MiB...: powers of 1024; kB, MB, GB, TB:\n"
               "powers of 1000). Ages: 90s, 12m, 12h, 30d, 2w.\n"
               "Exit status: 0 ok, 1 problems found (diff: differences), 2 usage errors, 3 failures\n"
               "(the file could not be opened, read or written; out of memory).\n"
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
    const command *c = command_find(argv[0]);
    if (!c) {
        unknown_command("jobcache help", argv[0]);
        usage(stderr);
        return EXIT_USAGE;
    }
    command_help(c, stdout);
    return EXIT_OK;
}

/* ---- parsing options ---- */

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
    static const char *const names[] = {"name", "used", "size", "time", "hits", "created", "key"};
    for (int i = 0; i < (int)(sizeof names / sizeof *names); i++)
        if (strcmp(text, names[i]) == 0) {
            *out = (jc_sort)i;
            return 0;
        }
    return usage_error(c, "--sort takes name, used, size, time, hits, created or key, not '%s'", text);
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
    case OPT_FORMAT:
        if (strcmp(v, "jsonl") == 0)
            o->format = FORMAT_JSONL;
        else if (strcmp(v, "csv") == 0)
            o->format = FORMAT_CSV;
        else if (strcmp(v, "tsv") == 0)
            o->format = FORMAT_TSV;
        else
            return usage_error(c, "--format takes jsonl, csv or tsv, not '%s'", v);
        return 0;
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

/* What getopt_long could not take, said our way (opterr is 0): the
 * argument at argv[at] is the one it stopped on. */
static int option_error(const command *c, int ret, char **argv, int at)
{
    const char *arg = argv[at];
    const option_spec *s = option_of_val(optopt);
    if (ret == ':' && s)
        return usage_error(c, "--%s needs a value (%s)", s->name, s->value);
    if (s && !s->value && strncmp(arg, "--", 2) == 0 && strchr(arg, '='))
        return usage_error(c, "--%s takes no value", s->name);
    if (strncmp(arg, "--", 2) != 0 && optopt) {
        char opt[3] = {'-', (char)optopt, 0};
        return usage_error(c, "unknown option '%s'", opt);
    }
    return usage_error(c, "unknown option '%s'", arg);
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
        const char *file = c->file_first ? o->pos[0] : o->pos[o->npos - 1];
        if (o->file)
            return usage_error(c, "the file is given twice ('%s' and --file '%s')", file, o->file);
        o->file = file;
        if (c->file_first)
            memmove(o->pos, o->pos + 1, (o->npos - 1) * sizeof *o->pos);
        o->npos--;
    }
    if ((o->given & OPT_VERSION) && !(o->given & OPT_FUNCTION) && c != &builtin_find)
        return usage_error(c, "--version needs --function");
    return -1;
}

/* Fills o from argv (argv[0] the command's name; options may come before
 * or after the positional arguments, and "--" ends the options). Returns -1 to go on, or an exit code (after --help: 0). */
static int parse_args(const command *c, int argc, char **argv, opts *o)
{
    struct option longopts[NOPTIONS + 1];
    /* "-": arguments come back in order as 1 (so that options may follow
     * them whatever POSIXLY_CORRECT says); ":": a missing value is ':'. */
    char shortopts[3 * NOPTIONS + 3] = "-:";
    size_t ns = 2;
    for (size_t i = 0; i < NOPTIONS; i++) {
        const option_spec *s = &option_specs[i];
        longopts[i] = (struct option){s->name, s->value ? required_argument : no_argument, NULL, option_val(i)};
        if (s->short_name) {
            shortopts[ns++] = s->short_name;
            if (s->value)
                shortopts[ns++] = ':';
        }
    }
    longopts[NOPTIONS] = (struct option){0, 0, 0, 0};
    shortopts[ns] = '\0';

    memset(o, 0, sizeof *o);
    o->pos = calloc((size_t)argc + 1, sizeof *o->pos);
    if (!o->pos) {
        fprintf(stderr, "jobcache: out of memory\n");
        return EXIT_FAILED;
    }
    opterr = 0;
    optind = 1;
    int ret;
    while ((ret = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        if (ret == 1) {
            o->pos[o->npos++] = optarg;
            continue;
        }
        const option_spec *s = option_of_val(ret);
        if (ret == '?' || ret == ':' || !s)
            return option_error(c, ret, argv, optind - 1);
        if (!(c->options & s->bit) && s->bit != OPT_HELP)
            return usage_error(c, "this command takes no --%s", s->name);
        o->given |= s->bit;
        if (s->value) {
            int rc = set_value(c, s, optarg, o);
            if (rc)
                return rc;
        }
    }
    for (int i = optind; i < argc; i++)
        o->pos[o->npos++] = argv[i];
    if (o->given & OPT_HELP) {
        command_help(c, stdout);
        return EXIT_OK;
    }
    return check_positionals(c, o);
}

/* ---- completion (tools/jobcache.bash) ---- */

/* The cache a command line names, as the command itself reads it:
 * `ls FILE`, `--file FILE`, `--file=FILE` (words[0] the command's name,
 * the word being completed left out); NULL when it names none (the cache is
 * then $JOBCACHE_PATH or ./jobcache.db, as jc_cache_open decides). The
 * parse may fail (the line is unfinished); what it took stays. */
static const char *complete_file(int nwords, char **words, opts *o)
{
    const command *c = nwords >= 1 ? command_find(words[0]) : NULL;
    if (!c)
        return NULL;
    for (int i = 1; i < nwords; i++)
        if (strcmp(words[i], "--help") == 0 || strcmp(words[i], "-h") == 0)
            return NULL; /* the parser would print the help */
    /* An unfinished line is no error: the parser's messages go nowhere. */
    int saved = dup(STDERR_FILENO), null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (saved >= 0 && null >= 0)
        dup2(null, STDERR_FILENO);
    (void)parse_args(c, nwords, words, o);
    fflush(stderr);
    if (saved >= 0 && null >= 0)
        dup2(saved, STDERR_FILENO);
    if (saved >= 0)
        close(saved);
    if (null >= 0)
        close(null);
    return o->file;
}

/* `jobcache __complete commands | options CMD | functions CMD WORD... |
 * versions FUNCTION CMD WORD...`: one word a line, for the bash
 * completion; CMD WORD... is the command line typed so far, from which the
 * cache is found as the command finds it. Hidden: not in the help, and the
 * output is only for the completion script. */
static int cmd_complete(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "commands") == 0) {
        for (size_t i = 0; i < NCOMMANDS; i++)
            printf("%s\n", commands[i]->name);
        printf("help\n");
        return EXIT_OK;
    }
    if (argc >= 2 && strcmp(argv[0], "options") == 0) {
        const command *c = command_find(argv[1]);
        if (c)
            command_option_names(c, stdout);
        return c ? EXIT_OK : EXIT_USAGE;
    }
    bool versions = argc >= 2 && strcmp(argv[0], "versions") == 0;
    if (!versions && !(argc >= 1 && strcmp(argv[0], "functions") == 0))
        return EXIT_USAGE;
    int skip = versions ? 2 : 1;
    opts o = {0};
    const char *file = complete_file(argc - skip, argv + skip, &o);
    jc_cache *cache = jc_cache_open(file, &(jc_cache_options){.flags = JC_CACHE_READONLY});
    free(o.pos);
    jc_stats *s = cache ? jc_cache_stats(cache) : NULL;
    for (size_t i = 0; s && i < s->nfunctions; i++) {
        const jc_function_stats *f = &s->functions[i];
        /* Names with a control character are not offered: the shell would
         * show them raw. Stats lists each function once per version, in
         * name order. */
        const char *word = versions ? f->version : f->function;
        bool plain = true;
        for (const char *p = word; *p; p++)
            plain &= (unsigned char)*p > ' ' && *p != 0x7f;
        if (!plain || (versions && strcmp(f->function, argv[1]) != 0))
            continue;
        if (!versions && i > 0 && strcmp(s->functions[i - 1].function, word) == 0)
            continue;
        printf("%s\n", word);
    }
    jc_stats_free(s);
    jc_cache_close(cache);
    return EXIT_OK;
}

/* ---- main ---- */

/* The cache as c opens it; NULL with the message said and *rc its exit
 * status: a usage error when the file must be named and is not, a failure
 * when it cannot be opened. */
static jc_cache *open_cache(const command *c, const opts *o, int *rc)
{
    int mode = c->mode == MODE_READ_UNLESS ? ((o->given & OPT_WRITING) ? MODE_WRITE : MODE_READ) : c->mode;
    /* A command that may create the file writes where it is told: never a
     * ./jobcache.db made because nothing was named (issue 23). */
    const char *env = getenv("JOBCACHE_PATH");
    if (mode == MODE_CREATE && !o->file && !(env && *env)) {
        *rc = usage_error(c, "name the cache to write to: --file FILE (or JOBCACHE_PATH); usage: jobcache %s",
                          c->synopsis);
        return NULL;
    }
    unsigned flags = mode == MODE_READ ? JC_CACHE_READONLY : mode == MODE_WRITE ? JC_CACHE_NOCREATE : 0;
    jc_cache *cache = jc_cache_open(o->file, &(jc_cache_options){.flags = flags});
    if (!cache)
        *rc = failed(c->name);
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
    if (strcmp(argv[1], "__complete") == 0)
        return cmd_complete(argc - 2, argv + 2);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("jobcache %s\n", jc_version());
        return EXIT_OK;
    }
    const command *c = command_find(argv[1]);
    if (!c) {
        unknown_command("jobcache", argv[1]);
        return EXIT_USAGE;
    }
    opts o;
    int rc = parse_args(c, argc - 1, argv + 1, &o);
    if (rc < 0 && c->check)
        rc = c->check(c, &o);
    if (rc < 0 && c->mode == MODE_NONE) {
        rc = c->run(NULL, &o);
    } else if (rc < 0) {
        jc_cache *cache = open_cache(c, &o, &rc);
        if (cache)
            rc = c->run(cache, &o);
        jc_cache_close(cache);
    }
    free(o.pos);
    return rc;
}
