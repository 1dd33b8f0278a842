/*
 * A run with a live progress line, for tests/progress_tty.sh to watch in a
 * real terminal (tmux): 40 calls of about 0.15 s, every tenth one failing,
 * on 2 workers, verbose AUTO (stderr is the terminal).
 *
 *   progress_tty_prog CACHE RESULT [own-handler]
 *
 * Writes "ok" to RESULT when SIGWINCH's disposition was handled politely:
 * without own-handler, the library's handler is gone after the run (the
 * default is back); with own-handler (the program's handler installed
 * first, calls in-process so that they can look during the run), the
 * program's handler stays in place throughout. Otherwise what went wrong.
 */
#define _POSIX_C_SOURCE 200809L

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jobcache.h>

static void own_handler(int sig)
{
    (void)sig;
}

static int replaced; /* the program's handler was seen replaced during the run */

static int slow_call(jc_call *call)
{
    struct timespec ts = {0, 150 * 1000 * 1000};
    nanosleep(&ts, NULL);
    struct sigaction cur;
    if (sigaction(SIGWINCH, NULL, &cur) == 0 && cur.sa_handler != own_handler)
        replaced++;
    int64_t x = jc_arg_int(call, 0);
    if (x % 10 == 0)
        return jc_fail(call, "no multiples of ten");
    return jc_return_int(call, x * x);
}
JC_FUNCTION(slow_call, "v1");

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    bool own = argc > 3 && strcmp(argv[3], "own-handler") == 0;
    if (own) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = own_handler;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGWINCH, &sa, NULL);
    }
    jc_cache *cache = jc_cache_open(argv[1], NULL);
    if (!cache)
        return 2;
    jc_batch *b = jc_batch_new(cache, &(jc_options){.n_jobs = own ? 1 : 2, .on_error = JC_ON_ERROR_CONTINUE});
    for (int i = 0; i < 40; i++)
        jc_delayed(b, slow_call, jc_int(i));
    jc_results *r = jc_run(b);
    jc_results_free(r);
    jc_batch_free(b);
    jc_cache_close(cache);

    struct sigaction cur;
    const char *verdict = "ok";
    if (sigaction(SIGWINCH, NULL, &cur) != 0)
        verdict = "sigaction failed";
    else if (own && (cur.sa_handler != own_handler || replaced))
        verdict = "the program's SIGWINCH handler was replaced";
    else if (!own && cur.sa_handler != SIG_DFL)
        verdict = "SIGWINCH's default disposition was not restored";
    FILE *f = fopen(argv[2], "w");
    if (!f)
        return 2;
    fprintf(f, "%s\n", verdict);
    fclose(f);
    return 0;
}
