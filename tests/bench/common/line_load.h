/* A closed-loop line load generator on epoll: N connections spread over T
 * threads (each thread one epoll set), every connection sending one request
 * line and waiting for its reply before the next (one request in flight),
 * for a fixed time. With T = 1 one thread drives every connection, so the
 * generator stays cheap next to the server; with T = N it is one blocked
 * thread per connection, as bench_run does. Results as bench_run's. */
#ifndef BENCH_LINE_LOAD_H
#define BENCH_LINE_LOAD_H

#include <stdint.h>

#include "loadgen.h"

typedef struct bench_line_load {
    uint16_t port;         /* 127.0.0.1:port */
    const uint16_t *ports; /* if nports > 0: connection i goes to ports[i % nports] */
    int nports;
    const char *request; /* one line, "\n" included */
    const char *reply;   /* the expected reply, "\n" included */
    int conns;
    int threads; /* 1 .. conns */
    double seconds;
    long server_pid; /* > 0: its CPU use goes into bench_result.server_cores */
} bench_line_load;

/* Connect every connection, do one round trip on each (not timed), then run
 * for l->seconds. 0, or -1 if a connection could not be opened or a reply
 * was wrong (out->failures counts them; a message names what failed). */
int bench_line_run(const bench_line_load *l, bench_result *out);

/* Open a blocking connection to 127.0.0.1:port with TCP_NODELAY; the fd or
 * -errno. */
int bench_connect_loopback(uint16_t port);

#endif
