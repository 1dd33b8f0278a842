/*
 * interrupt.h: Ctrl-C and SIGTERM during a run. The first SIGINT or
 * SIGTERM asks the running jc_run to stop cleanly (workers stopped, finished
 * results committed, JC_EINTR); a second one, while a long in-process call
 * still runs, gets the default action. The execution backends poll
 * jc__interrupted; the run takes the signals over for its duration and
 * notes which one stopped it, for jc_interrupted_signal and
 * jc_raise_interrupt (jobcache.h).
 */
#ifndef JC_INTERRUPT_H
#define JC_INTERRUPT_H

#include <signal.h>
#include <stdbool.h>

/* The signal that asked the running jc_run to stop, 0 if none. */
extern volatile sig_atomic_t jc__interrupted;

/* The program's own dispositions of SIGINT and SIGTERM, while a run holds
 * them. */
typedef struct jc__saved_signals {
    struct sigaction sigint, sigterm;
    bool int_set, term_set;
} jc__saved_signals;

/* Takes over SIGINT and SIGTERM for the run, unless the program handles,
 * ignores or blocks them itself (then they are left alone: a program that
 * waits for its signals with sigwait or a signalfd keeps them). SA_RESTART,
 * so that a Ctrl-C during an in-process call does not make the function's
 * own system calls fail with EINTR. */
void jc__interrupts_catch(jc__saved_signals *s, sigset_t *taken);
/* Gives the program back the dispositions saved in s. */
void jc__interrupts_release(const jc__saved_signals *s);
/* Notes sig (0: none) as the signal that stopped the last run. */
void jc__interrupt_set_last(int sig);

#endif
