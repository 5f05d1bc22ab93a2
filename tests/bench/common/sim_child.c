#include "sim_child.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int bench_sim_child_start(bench_sim_child *p, const char *script)
{
#ifndef DW_SIM_PATH
    (void)p;
    (void)script;
    fprintf(stderr, "bench: devwire-sim was not built\n");
    return -1;
#else
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl(DW_SIM_PATH, DW_SIM_PATH, "--script", script, "--listen", "127.0.0.1:0",
              "--log-level", "error", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return -1;
    }
    p->pid = pid;
    char line[256];
    size_t len = 0;
    while (len < sizeof line - 1) {
        ssize_t r = read(fds[0], line + len, 1);
        if (r <= 0)
            break;
        if (line[len++] == '\n')
            break;
    }
    close(fds[0]); /* nothing else is read: the summary goes nowhere */
    line[len] = 0;
    const char *colon = strrchr(line, ':');
    if (strncmp(line, "listening on ", 13) != 0 || !colon) {
        fprintf(stderr, "bench: devwire-sim did not start (%s)\n", line);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    p->port = (uint16_t)atoi(colon + 1);
    return 0;
#endif
}

void bench_sim_child_stop(bench_sim_child *p)
{
    kill(p->pid, SIGTERM);
    waitpid(p->pid, NULL, 0);
}
