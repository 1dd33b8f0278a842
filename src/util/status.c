/*
 * status: the names of call statuses (jc_status_name), for every layer that
 * prints or records them.
 */
#include "jobcache.h"

const char *jc_status_name(jc_status s)
{
    switch (s) {
    case JC_STATUS_OK: return "ok";
    case JC_STATUS_ERROR: return "error";
    case JC_STATUS_CRASHED: return "crashed";
    case JC_STATUS_TIMEOUT: return "timed out";
    case JC_STATUS_SKIPPED: return "skipped";
    }
    return "unknown";
}
