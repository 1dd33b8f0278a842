/*
 * exec_threads: TEMPORARY until the pool lands (issue 3): runs in-process.
 */
#include "exec.h"

int jc__exec_threads(jc__exec *ex)
{
    return jc__exec_inprocess(ex);
}
