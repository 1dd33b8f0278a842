/* A shared object named as libpq.so.5 or the MPI library that is neither
 * (test_lazy_libs): it has none of their functions. */
int jc_test_not_libpq(void);
int jc_test_not_libpq(void) { return 0; }
