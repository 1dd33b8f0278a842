/*
 * proc: what /proc says about a process (proc.h).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jc_internal.h"
#include "util/proc.h"

char *jc__command_line(long pid)
{
    char path[64], buf[4096];
    if (pid > 0)
        snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
    else
        snprintf(path, sizeof path, "/proc/self/cmdline");
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    if (n == 0)
        return NULL; /* a zombie, or a kernel thread */
    buf[n] = '\0';
    jc__buf out = {0};
    for (size_t i = 0; i < n;) {
        const char *arg = buf + i;
        size_t len = strlen(arg);
        bool quote = strpbrk(arg, " \t'\"") != NULL || len == 0;
        if (out.len)
            jc__buf_write(&out, " ", 1);
        if (quote)
            jc__buf_write(&out, "'", 1);
        jc__buf_write(&out, arg, len);
        if (quote)
            jc__buf_write(&out, "'", 1);
        i += len + 1;
    }
    jc__buf_write(&out, "", 1);
    if (out.oom) {
        jc__buf_free(&out);
        return NULL;
    }
    return out.data;
}
