/*
 * mpi_dl.h: the MPI library, loaded by jc_mpi_init under a launcher, not
 * linked (as the PostgreSQL store loads libpq: store/pg/libpq.h).
 *
 * Linking MPI brings its runtime (Open MPI's open-rte, open-pal, hwloc,
 * libevent, udev) into every program using jobcache, about 2.4 million
 * instructions of dynamic linking at each start, though only a program
 * started by mpirun or srun uses it. The backend's files are written
 * against mpi.h as usual: each MPI function they call is a macro for its
 * entry in the table below, and Open MPI's predefined handles (the
 * addresses of objects in its library: MPI_COMM_WORLD, MPI_COMM_SELF,
 * MPI_BYTE, and the function MPI_COMM_NULL_COPY_FN names) are found in the
 * loaded library by name. MPICH's handles are constants and need nothing.
 *
 * The library is the one the build found (JC_MPI_SONAME, its soname, set
 * by CMakeLists.txt), loaded RTLD_GLOBAL: Open MPI loads components of its
 * own that look its symbols up globally.
 *
 * Adding an MPI function to the backend: add it to JC_MPI_FUNCTIONS.
 */
#ifndef JC_EXEC_MPI_DL_H
#define JC_EXEC_MPI_DL_H

#include <mpi.h>

#define JC_MPI_FUNCTIONS(X)                                                                        \
    X(MPI_Abort) X(MPI_Comm_create_keyval) X(MPI_Comm_dup) X(MPI_Comm_free) X(MPI_Comm_rank)      \
    X(MPI_Comm_set_attr) X(MPI_Comm_size) X(MPI_Finalize) X(MPI_Finalized) X(MPI_Get_count)       \
    X(MPI_Init) X(MPI_Initialized) X(MPI_Iprobe) X(MPI_Isend) X(MPI_Recv) X(MPI_Request_free)     \
    X(MPI_Send) X(MPI_Test) X(MPI_Wait)

typedef struct jc__mpi_api {
#define JC__MPI_MEMBER(name) __typeof__(name) *name;
    JC_MPI_FUNCTIONS(JC__MPI_MEMBER)
#undef JC__MPI_MEMBER
#ifdef OPEN_MPI
    void *comm_world, *comm_self, *byte, *null_copy_fn;
#endif
} jc__mpi_api;

/* The table; valid after jc__mpi_load returned 0. */
extern jc__mpi_api jc__mpi_dl;

/* Loads the MPI library once per process. 0, or JC_EIO with a message
 * naming the library and dlopen's or dlsym's reason. */
int jc__mpi_load(void);

#ifndef JC_MPI_TABLE_ITSELF
#define JC__MPI_CALL(name) (jc__mpi_dl.name)
#define MPI_Abort JC__MPI_CALL(MPI_Abort)
#define MPI_Comm_create_keyval JC__MPI_CALL(MPI_Comm_create_keyval)
#define MPI_Comm_dup JC__MPI_CALL(MPI_Comm_dup)
#define MPI_Comm_free JC__MPI_CALL(MPI_Comm_free)
#define MPI_Comm_rank JC__MPI_CALL(MPI_Comm_rank)
#define MPI_Comm_set_attr JC__MPI_CALL(MPI_Comm_set_attr)
#define MPI_Comm_size JC__MPI_CALL(MPI_Comm_size)
#define MPI_Finalize JC__MPI_CALL(MPI_Finalize)
#define MPI_Finalized JC__MPI_CALL(MPI_Finalized)
#define MPI_Get_count JC__MPI_CALL(MPI_Get_count)
#define MPI_Init JC__MPI_CALL(MPI_Init)
#define MPI_Initialized JC__MPI_CALL(MPI_Initialized)
#define MPI_Iprobe JC__MPI_CALL(MPI_Iprobe)
#define MPI_Isend JC__MPI_CALL(MPI_Isend)
#define MPI_Recv JC__MPI_CALL(MPI_Recv)
#define MPI_Request_free JC__MPI_CALL(MPI_Request_free)
#define MPI_Send JC__MPI_CALL(MPI_Send)
#define MPI_Test JC__MPI_CALL(MPI_Test)
#define MPI_Wait JC__MPI_CALL(MPI_Wait)
#ifdef OPEN_MPI
#undef MPI_COMM_WORLD
#undef MPI_COMM_SELF
#undef MPI_BYTE
#undef MPI_COMM_NULL_COPY_FN
#define MPI_COMM_WORLD ((MPI_Comm)jc__mpi_dl.comm_world)
#define MPI_COMM_SELF ((MPI_Comm)jc__mpi_dl.comm_self)
#define MPI_BYTE ((MPI_Datatype)jc__mpi_dl.byte)
#define MPI_COMM_NULL_COPY_FN ((MPI_Comm_copy_attr_function *)jc__mpi_dl.null_copy_fn)
#endif
#endif

#endif
