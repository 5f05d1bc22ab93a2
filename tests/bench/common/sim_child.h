/* devwire-sim as a child process for the benchmarks: started on a loopback
 * port chosen by the kernel with a script, stopped with SIGTERM. */
#ifndef BENCH_SIM_CHILD_H
#define BENCH_SIM_CHILD_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

typedef struct bench_sim_child {
    pid_t pid;
    uint16_t port;
} bench_sim_child;

/* Start the devwire-sim built with the benchmarks (DW_SIM_PATH) serving
 * `script` on 127.0.0.1:0 and wait for its "listening on" line. 0, or -1
 * (said on stderr) when it cannot start or was not built. */
int bench_sim_child_start(bench_sim_child *p, const char *script);
/* SIGTERM and wait for it. */
void bench_sim_child_stop(bench_sim_child *p);

/* Write a script of `n` rules with a "\n" sentinel to a new file named
 * after `tag`: rule(f, i, arg) prints rule i's JSON object. Returns the path
 * (caller unlinks and frees) or NULL. */
char *bench_sim_script(const char *tag, size_t n, void (*rule)(FILE *f, size_t i, void *arg),
                       void *arg);

#endif
