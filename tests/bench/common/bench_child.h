/* Servers in child processes, so that every server a benchmark measures
 * crosses the same process boundary as devwire-sim does, and its memory can
 * be read from /proc/PID/status on its own. */
#ifndef BENCH_CHILD_H
#define BENCH_CHILD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Fork a child that calls start() -- which starts serving on threads of its
 * own and returns the port it listens on, or 0 -- and then waits for
 * SIGTERM. Call while this process has no other thread (fork copies only
 * the caller). The child's pid and *port, or -1 (a message says why). */
pid_t bench_child_start(uint16_t (*start)(void), uint16_t *port);

/* Run argv[0] with argv, a program that prints "listening on HOST:PORT" as
 * its first line on stdout (devwire-sim); its stdout is closed after that
 * line, its stderr is ours. The pid and *port, or -1. */
pid_t bench_child_exec(char *const argv[], uint16_t *port);

/* The same for a program serving n devices, which prints n such lines
 * ("listening on HOST:PORT (NAME)"): ports[0..n) in their order. */
pid_t bench_child_exec_ports(char *const argv[], uint16_t *ports, size_t n);

/* SIGTERM, and wait for it. */
void bench_child_stop(pid_t pid);

/* SIGKILL to its process group, and wait for it: for a child that may be
 * too busy to stop on SIGTERM. */
void bench_child_kill(pid_t pid);

#endif
