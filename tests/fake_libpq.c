/* A shared object named libpq.so.5 that is not libpq (test_libpq): it
 * has none of libpq's functions. */
int jc_test_not_libpq(void);
int jc_test_not_libpq(void) { return 0; }
