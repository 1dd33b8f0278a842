/*
 * exec_fork: TEMPORARY until the pool lands (issue 3): runs in-process.
 */
#include "exec.h"

volatile sig_atomic_t jc__interrupted;

int jc__exec_fork(jc__exec *ex)
{
    return jc__exec_inprocess(ex);
}
