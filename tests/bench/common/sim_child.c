#include "sim_child.h"

#include <stdio.h>

#include "bench_child.h"

int bench_sim_child_start(bench_sim_child *p, const char *script)
{
#ifndef DW_SIM_PATH
    (void)p;
    (void)script;
    fprintf(stderr, "bench: devwire-sim was not built\n");
    return -1;
#else
    char *argv[] = {DW_SIM_PATH,   "--script",    (char *)script, "--listen",
                    "127.0.0.1:0", "--log-level", "error",        NULL};
    p->pid = bench_child_exec(argv, &p->port);
    return p->pid > 0 ? 0 : -1;
#endif
}

void bench_sim_child_stop(bench_sim_child *p)
{
    bench_child_stop(p->pid);
}
