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
    double cpu_us;       /* CPU time (user + system, whole process) per round trip */
    double server_cores; /* the server process's CPU time over the measured time, when known */
} bench_result;

/* Open `conns` connections, run round trips on all of them for `seconds`,
 * close them. Returns 0, or -1 if a connection could not be opened. */
int bench_run(const bench_client_ops *ops, void *ctx, int conns, double seconds, bench_result *out);

/* Seconds, and nanoseconds, on the monotonic clock. */
double bench_now(void);
uint64_t bench_now_ns(void);

/* CPU time (user + system) of this whole process, in seconds. */
double bench_cpu_seconds(void);
/* The same for process `pid` (all its threads, from /proc/PID/stat), or -1. */
double bench_proc_cpu_seconds(long pid);

/* Sleep `seconds`, then set *stop (atomically) for the workers; returns the
 * time that passed. */
double bench_sleep(double seconds, int *stop);

/* Round-trip latencies (ns) gathered from several workers. */
typedef struct bench_samples {
    uint32_t *ns;
    size_t n;
} bench_samples;
void bench_samples_add(bench_samples *s, const uint32_t *ns, size_t n);
/* Set out->rps, p50_us, p99_us and cpu_us from out->trips, out->seconds,
 * the samples and the CPU seconds spent; frees the samples. */
void bench_samples_finish(bench_samples *s, bench_result *out, double cpu_seconds);

/* Resident set size of this process in KiB (from /proc/self/status). */
long bench_rss_kib(void);
/* The number in the line "key: N ..." of a /proc file (/proc/meminfo's
 * KernelStack in KiB), or -1. */
long bench_proc_field(const char *file, const char *key);
/* The same from /proc/PID/status (VmRSS in KiB, Threads). */
long bench_proc_status(long pid, const char *key);

#endif
