/*
 * interrupt: the one owner of SIGINT and SIGTERM during a run, and of the
 * flag every execution backend polls (interrupt.h).
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#include "jobcache.h"
#include "util/interrupt.h"

/* The signal that asked the running jc_run to stop, 0 if none; and the one
 * that stopped the last run, for jc_raise_interrupt. */
volatile sig_atomic_t jc__interrupted;
static volatile sig_atomic_t last_interrupt;

/* The first SIGINT/SIGTERM asks the run to stop cleanly: workers stopped,
 * finished results committed, jc_run returns JC_EINTR. A second one, while
 * a long in-process call is still running, gets the default action. */
static void on_interrupt(int sig)
{
    if (jc__interrupted) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    jc__interrupted = sig;
}

void jc__interrupt_set_last(int sig)
{
    last_interrupt = sig;
}

int jc_interrupted_signal(void)
{
    return last_interrupt;
}

void jc_raise_interrupt(void)
{
    int sig = last_interrupt;
    if (!sig)
        return;
    fflush(NULL);
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    /* The default action of SIGINT and SIGTERM ends the process; should a
     * program have set it up otherwise after all, end it as a shell would
     * report the signal. */
    _exit(128 + sig);
}

void jc__interrupts_catch(jc__saved_signals *s, sigset_t *taken)
{
    struct sigaction sa = {.sa_handler = on_interrupt, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigemptyset(taken);
    jc__interrupted = 0;
    sigset_t mask;
    sigprocmask(SIG_BLOCK, NULL, &mask);
    s->int_set = s->term_set = false;
    if (!sigismember(&mask, SIGINT) && sigaction(SIGINT, NULL, &s->sigint) == 0 &&
        s->sigint.sa_handler == SIG_DFL && !(s->sigint.sa_flags & SA_SIGINFO))
        s->int_set = sigaction(SIGINT, &sa, NULL) == 0;
    if (!sigismember(&mask, SIGTERM) && sigaction(SIGTERM, NULL, &s->sigterm) == 0 &&
        s->sigterm.sa_handler == SIG_DFL && !(s->sigterm.sa_flags & SA_SIGINFO))
        s->term_set = sigaction(SIGTERM, &sa, NULL) == 0;
    if (s->int_set)
        sigaddset(taken, SIGINT);
    if (s->term_set)
        sigaddset(taken, SIGTERM);
}

void jc__interrupts_release(const jc__saved_signals *s)
{
    if (s->int_set)
        sigaction(SIGINT, &s->sigint, NULL);
    if (s->term_set)
        sigaction(SIGTERM, &s->sigterm, NULL);
}
