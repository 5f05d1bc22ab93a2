/* Helper processes of tests and benchmarks (a simulator, socat): whatever
 * happens to the process that started one -- it ends, fails an assertion,
 * crashes or is killed on a timeout -- the helper does not outlive it. */
#ifndef DW_TEST_CHILD_H
#define DW_TEST_CHILD_H

#include <sys/types.h>

/* fork() for a helper process. In the child: it leads its own process group
 * and gets SIGKILL when the thread that forked it ends (PR_SET_PDEATHSIG,
 * checked against a parent that died before it was set). That is why it
 * must be called on the main thread (Criterion runs a test's .init, body and
 * .fini on its worker process's main thread): on another thread it fails
 * with EINVAL, since the helper would die with that thread. In the parent:
 * the child is registered, and at exit every registered child not yet reaped
 * has its process group killed and is reaped.
 * Returns as fork(): 0 in the child, its pid in the parent, -1 (errno). */
pid_t dw_test_child_fork(void);

/* Send `sig` to the child's whole process group. 0 or -1 (errno). */
int dw_test_child_kill(pid_t pid, int sig);

/* If the child has exited (block: wait until it has), kill what is left in
 * its process group, reap it and forget it. 1 with *status (as waitpid's,
 * status may be NULL) when reaped, 0 while it runs, -1 (errno) on error. */
int dw_test_child_reap(pid_t pid, int block, int *status);

#endif
