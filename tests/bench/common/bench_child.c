#include "bench_child.h"

#include "child.h" /* tests/support: helpers die with the benchmark */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

pid_t bench_child_start(uint16_t (*start)(void), uint16_t *port)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = dw_test_child_fork();
    if (pid == 0) {
        close(fds[0]);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set, NULL); /* the server's threads inherit it */
        uint16_t p = start();
        if (write(fds[1], &p, sizeof p) != (ssize_t)sizeof p || p == 0)
            _exit(1);
        int sig;
        sigwait(&set, &sig);
        _exit(0);
    }
    close(fds[1]);
    ssize_t r = pid > 0 ? read(fds[0], port, sizeof *port) : -1;
    close(fds[0]);
    if (pid > 0 && (r != (ssize_t)sizeof *port || *port == 0)) {
        fprintf(stderr, "bench: the server process %ld did not start\n", (long)pid);
        dw_test_child_kill(pid, SIGKILL);
        dw_test_child_reap(pid, 1, NULL);
        return -1;
    }
    return pid;
}

/* The first line the child writes, NUL-terminated. */
static void read_line(int fd, char *line, size_t cap)
{
    size_t len = 0;
    while (len < cap - 1) {
        ssize_t r = read(fd, line + len, 1);
        if (r <= 0 || line[len++] == '\n')
            break;
    }
    line[len] = 0;
}

/* The port of a "listening on HOST:PORT" or "listening on HOST:PORT (NAME)"
 * line, or 0. */
static uint16_t listening_port(const char *line)
{
    if (strncmp(line, "listening on ", 13) != 0)
        return 0;
    const char *addr = line + 13;
    const char *colon = memrchr(addr, ':', strcspn(addr, " \n"));
    return colon ? (uint16_t)atoi(colon + 1) : 0;
}

pid_t bench_child_exec_ports(char *const argv[], uint16_t *ports, size_t n)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = dw_test_child_fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return -1;
    }
    char line[256] = "";
    size_t got = 0;
    while (got < n) {
        read_line(fds[0], line, sizeof line);
        if ((ports[got] = listening_port(line)) == 0)
            break;
        got++;
    }
    close(fds[0]); /* nothing else is read: a summary at exit goes nowhere */
    if (got < n) {
        fprintf(stderr, "bench: %s did not start (%s)\n", argv[0], line);
        dw_test_child_kill(pid, SIGKILL);
        dw_test_child_reap(pid, 1, NULL);
        return -1;
    }
    return pid;
}

pid_t bench_child_exec(char *const argv[], uint16_t *port)
{
    return bench_child_exec_ports(argv, port, 1);
}

void bench_child_stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    dw_test_child_reap(pid, 1, NULL);
}

void bench_child_kill(pid_t pid)
{
    if (pid <= 0)
        return;
    dw_test_child_kill(pid, SIGKILL);
    dw_test_child_reap(pid, 1, NULL);
}
