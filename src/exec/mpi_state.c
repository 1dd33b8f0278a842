/*
 * The MPI backend's state in this process, what the backend tells the run,
 * and the helpers every rank uses to send, receive and sleep.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mpi.h>

#include "exec/exec.h"
#include "mpi_int.h"

struct jc__mpi_state jc__mpi = {.why_not = "the program did not call jc_mpi_init at the top of main"};

int jc__mpi_workers(void)
{
    return jc__mpi.coordinator && !jc__mpi.finished ? jc__mpi.size - 1 : 0;
}

const char *jc__mpi_unavailable(void)
{
    return jc__mpi.why_not;
}

size_t jc__mpi_sent_bytes(void)
{
    return jc__mpi.sent_bytes;
}

bool jc__mpi_init_called(void)
{
    return jc__mpi.started;
}

int jc_mpi_ranks(void)
{
    return jc__mpi.started && jc__mpi.size > 0 ? jc__mpi.size : 1;
}

void jc__mpi_sleep_for(double seconds, const sigset_t *mask)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    /* ppoll rather than nanosleep, so that an interrupt the run took over
     * cuts the sleep short (mask: the interrupts unblocked). */
    ppoll(NULL, 0, &ts, mask);
}

/* Sends and waits for completion by testing and sleeping, never spinning
 * in MPI_Wait. */
int jc__mpi_send_sleeping(const void *buf, size_t len, int dest, int tag)
{
    MPI_Request req;
    if (MPI_Isend(buf, (int)len, MPI_BYTE, dest, tag, jc__mpi.comm, &req) != MPI_SUCCESS)
        return -1;
    double step = POLL_MIN;
    for (;;) {
        int done = 0;
        if (MPI_Test(&req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return -1;
        if (done)
            return 0;
        jc__mpi_sleep_for(step, NULL);
        if (step < POLL_MAX)
            step *= 2;
    }
}

/* Receives the message MPI_Iprobe found; NULL when out of memory. */
char *jc__mpi_receive_probed(const MPI_Status *st, int *len)
{
    MPI_Get_count(st, MPI_BYTE, len);
    char *buf = malloc(*len > 0 ? (size_t)*len : 1);
    if (!buf)
        return NULL;
    MPI_Recv(buf, *len, MPI_BYTE, st->MPI_SOURCE, st->MPI_TAG, jc__mpi.comm, MPI_STATUS_IGNORE);
    return buf;
}
