/* A test process in miniature, for sim_proc.simulator_dies_with_its_test:
 * start a simulator through sim_proc, print its pid, then end without
 * stopping it, the ways a test process ends: "crash" (abort: no cleanup
 * runs), "kill" (SIGKILL, as a test that times out) or "exit" (exit(1), as
 * a failed assertion ends a Criterion worker).
 * Usage: sim_orphan crash|kill|exit */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_proc.h"

int main(int argc, char **argv)
{
    if (argc != 2 ||
        (strcmp(argv[1], "crash") && strcmp(argv[1], "kill") && strcmp(argv[1], "exit"))) {
        fprintf(stderr, "usage: sim_orphan crash|kill|exit\n");
        return 2;
    }
    static dw_sim_proc p; /* still referenced at exit: not a leak */
    static const char script[] = "{\"rules\": [{\"when\": \"*IDN?\", \"reply\": \"orphan\"}]}\n";
    int rc = dw_sim_proc_serve(&p, "orphan", script, NULL, NULL);
    if (rc != DW_OK) {
        fprintf(stderr, "sim_orphan: devwire-sim did not start: %s\n%s\n", dw_strerror(rc),
                p.err.data ? (const char *)p.err.data : "");
        return 1;
    }
    printf("%d\n", (int)p.pid);
    fflush(stdout);
    if (strcmp(argv[1], "crash") == 0)
        abort();
    if (strcmp(argv[1], "kill") == 0)
        raise(SIGKILL);
    exit(1);
}
