/* A closed-loop load generator: N connections, one thread each, each doing
 * round trips back to back (one request in flight per connection) for a
 * fixed time. It measures round trips per second and the latency of every
 * round trip (p50, p99). */
#ifndef BENCH_LOADGEN_H
#define BENCH_LOADGEN_H

#include <stddef.h>
#include <stdint.h>

/* How one kind of client talks to its server. */
typedef struct bench_client_ops {
    /* Open one connection; NULL on failure. */
    void *(*open)(void *ctx);
    /* Send req[0..n) (no terminator: the client adds its framing) and read the
     * response; return 0 if it equals the request, -1 otherwise. */
    int (*round_trip)(void *conn, const char *req, size_t n);
    void (*close)(void *conn);
} bench_client_ops;

typedef struct bench_result {
    double seconds;    /* measured time */
    uint64_t trips;    /* completed round trips */
    uint64_t failures; /* connections that failed to open, wrong responses */
    double rps;        /* trips / seconds */
    double p50_us, p99_us;
    double cpu_us; /* CPU time (user + system, whole process) per round trip */
} bench_result;

/* Open `conns` connections, run round trips on all of them for `seconds`,
 * close them. Returns 0, or -1 if a connection could not be opened. */
int bench_run(const bench_client_ops *ops, void *ctx, int conns, double seconds, bench_result *out);

/* Seconds on the monotonic clock. */
double bench_now(void);

/* Resident set size of this process in KiB (from /proc/self/status). */
long bench_rss_kib(void);

#endif
