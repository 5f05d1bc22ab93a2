/* Helper processes that die with their parent: see child.h. */
#include "child.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* Children started and not yet reaped. A process forked from a test inherits
 * a copy: the exit handler skips pids that are not its own children. */
enum { MAX_CHILDREN = 256 };
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t children[MAX_CHILDREN];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void track(pid_t old, pid_t pid)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < MAX_CHILDREN; i++) {
        if (children[i] == old) {
            children[i] = pid;
            break;
        }
    }
    pthread_mutex_unlock(&lock);
}

/* Whether pid is a child of this process that has not been reaped. */
static int is_my_child(pid_t pid)
{
    siginfo_t si;
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0;
}

static void kill_all(void)
{
    pid_t copy[MAX_CHILDREN];
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < MAX_CHILDREN; i++)
        copy[i] = children[i];
    pthread_mutex_unlock(&lock);
    for (size_t i = 0; i < MAX_CHILDREN; i++) {
        if (copy[i] > 0 && is_my_child(copy[i])) {
            dw_test_child_kill(copy[i], SIGKILL);
            kill(copy[i], SIGKILL);
            dw_test_child_reap(copy[i], 1, NULL);
        }
    }
}

static void install(void)
{
    atexit(kill_all);
}

pid_t dw_test_child_fork(void)
{
    if (gettid() != getpid()) {
        fprintf(stderr, "dw_test_child_fork: not on the main thread: the helper process would be "
                        "killed when this thread ends (PR_SET_PDEATHSIG)\n");
        errno = EINVAL;
        return -1;
    }
    pthread_once(&once, install);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(127); /* the parent is already gone */
        return 0;
    }
    if (pid > 0) {
        setpgid(pid, pid); /* as in the child: the group exists whichever runs first */
        track(0, pid);
    }
    return pid;
}

int dw_test_child_kill(pid_t pid, int sig)
{
    if (pid <= 0) {
        errno = EINVAL;
        return -1;
    }
    return kill(-pid, sig);
}

int dw_test_child_reap(pid_t pid, int block, int *status)
{
    siginfo_t si;
    si.si_pid = 0;
    int r;
    do {
        r = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT | (block ? 0 : WNOHANG));
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return -1;
    if (si.si_pid == 0)
        return 0;
    /* Exited but not reaped: its pid, hence its group id, cannot be reused
     * yet, so killing the group hits only what it left behind. */
    dw_test_child_kill(pid, SIGKILL);
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    track(pid, 0);
    if (status)
        *status = st;
    return 1;
}
