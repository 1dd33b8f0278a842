/*
 * proc.h: what /proc says about a process.
 */
#ifndef JC_PROC_H
#define JC_PROC_H

/* The command line of process pid (0: this one), its arguments joined by
 * spaces, an argument with a space, tab or quote (or empty) in single
 * quotes; at most the first 4 KiB of it. malloc'd; NULL when it cannot be
 * read (the process is gone, or another user's under hidepid) or out of
 * memory. */
char *jc__command_line(long pid);

#endif
