#include "loadgen.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

long bench_proc_field(const char *file, const char *key)
{
    char line[256];
    FILE *f = fopen(file, "r");
    if (!f)
        return -1;
    size_t klen = strlen(key);
    long v = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            v = strtol(line + klen + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

long bench_proc_status(long pid, const char *key)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    return bench_proc_field(path, key);
}

long bench_rss_kib(void)
{
    return bench_proc_status((long)getpid(), "VmRSS");
}

typedef struct worker {
    pthread_t thread;
    const bench_client_ops *ops;
    void *ctx;
    pthread_barrier_t *start;
    int *stop;
    int id;
    int open_failed;
    uint64_t trips;
    uint64_t failures;
    uint32_t *samples; /* latency in ns, saturating */
    size_t nsamples, cap;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    void *conn = w->ops->open(w->ctx);
    /* One round trip before the clock starts, so that the server has
     * accepted the connection and set it up (thread, buffers) by then. */
    if (conn && w->ops->round_trip(conn, "warm-up", 7) != 0) {
        w->ops->close(conn);
        conn = NULL;
    }
    w->open_failed = conn == NULL;
    pthread_barrier_wait(w->start);
    if (!conn)
        return NULL;
    char req[64];
    unsigned i = 0;
    while (!__atomic_load_n(w->stop, __ATOMIC_RELAXED)) {
        int n = snprintf(req, sizeof req, "MEAS:VOLT? %d,%u", w->id, i++);
        uint64_t t0 = bench_now_ns();
        int rc = w->ops->round_trip(conn, req, (size_t)n);
        uint64_t dt = bench_now_ns() - t0;
        if (rc != 0) {
            w->failures++;
            break; /* the stream is out of step now */
        }
        w->trips++;
        if (w->nsamples < w->cap)
            w->samples[w->nsamples++] = dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
    }
    w->ops->close(conn);
    return NULL;
}

double bench_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

double bench_proc_cpu_seconds(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* Fields 14 and 15 (utime, stime), counted after the ")" that ends
     * the command name (which may hold spaces). */
    const char *p = strrchr(buf, ')');
    unsigned long ut, st;
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

double bench_sleep(double seconds, int *stop)
{
    double t0 = bench_now();
    struct timespec d;
    d.tv_sec = (time_t)seconds;
    d.tv_nsec = (long)((seconds - (double)d.tv_sec) * 1e9);
    nanosleep(&d, NULL);
    __atomic_store_n(stop, 1, __ATOMIC_RELAXED);
    return bench_now() - t0;
}

void bench_samples_add(bench_samples *s, const uint32_t *ns, size_t n)
{
    uint32_t *all = realloc(s->ns, (s->n + n + 1) * sizeof *all);
    if (!all)
        return;
    memcpy(all + s->n, ns, n * sizeof *all);
    s->ns = all;
    s->n += n;
}

void bench_samples_finish(bench_samples *s, bench_result *out, double cpu_seconds)
{
    qsort(s->ns, s->n, sizeof *s->ns, cmp_u32);
    out->rps = out->seconds > 0 ? (double)out->trips / out->seconds : 0;
    /* Trips that finish after the stop flag are few; count them all. */
    out->cpu_us = out->trips ? cpu_seconds * 1e6 / (double)out->trips : 0;
    if (s->n) {
        out->p50_us = s->ns[s->n / 2] / 1e3;
        out->p99_us = s->ns[(size_t)((double)s->n * 0.99)] / 1e3;
    }
    free(s->ns);
    s->ns = NULL;
    s->n = 0;
}

int bench_run(const bench_client_ops *ops, void *ctx, int conns, double seconds, bench_result *out)
{
    memset(out, 0, sizeof *out);
    worker *w = calloc((size_t)conns, sizeof *w);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)conns + 1);
    int stop = 0;
    /* About a million samples in all, so 512 connections stay cheap. */
    size_t cap = ((size_t)1 << 20) / (size_t)conns;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, (size_t)256 * 1024);
    for (int i = 0; i < conns; i++) {
        w[i].ops = ops;
        w[i].ctx = ctx;
        w[i].start = &start;
        w[i].stop = &stop;
        w[i].id = i;
        w[i].cap = cap;
        w[i].samples = malloc(cap * sizeof *w[i].samples);
        pthread_create(&w[i].thread, &attr, worker_main, &w[i]);
    }
    pthread_attr_destroy(&attr);
    pthread_barrier_wait(&start);
    double c0 = bench_cpu_seconds();
    out->seconds = bench_sleep(seconds, &stop);
    double c1 = bench_cpu_seconds();
    int failed_open = 0;
    bench_samples s = {0};
    for (int i = 0; i < conns; i++) {
        pthread_join(w[i].thread, NULL);
        out->trips += w[i].trips;
        out->failures += w[i].failures + (uint64_t)w[i].open_failed;
        failed_open |= w[i].open_failed;
        bench_samples_add(&s, w[i].samples, w[i].nsamples);
        free(w[i].samples);
    }
    bench_samples_finish(&s, out, c1 - c0);
    free(w);
    pthread_barrier_destroy(&start);
    return failed_open ? -1 : 0;
}
