/* The control API's cost to the device: devwire-sim serving a closed-loop
 * line load (round trips per second, p50, p99, the server's CPU per round
 * trip) while a client polls GET /metrics and GET .../journal?tail=100 ten
 * times a second, against the same process (--control, journal on) with no
 * poller, and against devwire-sim without --control (what the journal and
 * the hooks cost). Target: with the poller, 0.95 or more of the round trips
 * without it.
 *
 * Then the same device alone against it with 1, 8 and 60 long-polling
 * GET .../journal/wait callers, each waiting for a request that never comes
 * (timeout_ms=500, then again from the journal's newest entry on), all for
 * the same one, and 60 each for its own: what a test suite's waiters cost
 * the device. Target: 0.9 or more with 60.
 *
 * Every run has a fresh server process; rounds rotate who goes first.
 * DW_BENCH_QUICK=1 runs a short version; DW_BENCH_WAITERS=N runs only the
 * case with N waiters (-N: with patterns of their own), for 20 s, to
 * profile. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "app_echo.h"
#include "bench_child.h"
#include "child.h"
#include "line_load.h"

#define CONNS   16
#define REQUEST "MEAS:VOLT?\n"
#define REPLY   "1.234\n"

enum { POLLED, QUIET, PLAIN, NKINDS };
static const char *const names[NKINDS] = {"control, polled", "control, no poller", "no control"};

static char dir[64], script_path[96];
static double seconds;
static int rounds;

typedef struct poller {
    uint16_t port;
    atomic_int stop;
    int polls, failures;
} poller;

static int write_script(void)
{
    snprintf(dir, sizeof dir, "/tmp/dwsim-control-%ld", (long)getpid());
    snprintf(script_path, sizeof script_path, "%s/volt.json", dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -1;
    FILE *f = fopen(script_path, "w");
    if (!f)
        return -1;
    fputs("{\"name\": \"volt\", \"rules\": [{\"when\": \"MEAS:VOLT?\", \"reply\": \"1.234\"}]}\n",
          f);
    return fclose(f);
}

/* One GET on a fresh connection, the answer read to its end: 0 when it is a
 * 200, else -1. */
static int http_get(uint16_t port, const char *target)
{
    int fd = bench_connect_loopback(port);
    if (fd < 0)
        return -1;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[65536];
    int n = snprintf(buf, sizeof buf,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\n\r\n", target,
                     (unsigned)port);
    int ok = write(fd, buf, (size_t)n) == n;
    ssize_t got, total = 0;
    char head[16] = "";
    while (ok && (got = read(fd, buf, sizeof buf)) > 0) {
        if (total == 0)
            memcpy(head, buf, got < 15 ? (size_t)got : 15);
        total += got;
    }
    close(fd);
    return ok && strncmp(head, "HTTP/1.1 200", 12) == 0 ? 0 : -1;
}

static void *poll_thread(void *arg)
{
    poller *p = arg;
    while (!atomic_load(&p->stop)) {
        p->failures += http_get(p->port, "/metrics") != 0;
        p->failures += http_get(p->port, "/devices/default/journal?tail=100") != 0;
        p->polls++;
        usleep(100 * 1000);
    }
    return NULL;
}

/* GET target's body into buf (NUL-terminated): the status, or -1. */
static int http_body(uint16_t port, const char *target, char *buf, size_t cap)
{
    int fd = bench_connect_loopback(port);
    if (fd < 0)
        return -1;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int n = snprintf(buf, cap, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\n\r\n",
                     target, (unsigned)port);
    int ok = write(fd, buf, (size_t)n) == n;
    size_t total = 0;
    ssize_t got;
    while (ok && total + 1 < cap && (got = read(fd, buf + total, cap - 1 - total)) > 0)
        total += (size_t)got;
    buf[total] = 0;
    close(fd);
    int status = 0;
    return ok && sscanf(buf, "HTTP/1.1 %d", &status) == 1 ? status : -1;
}

typedef struct waiter {
    uint16_t port;
    int id; /* its pattern's number, or -1: the pattern all share */
    atomic_int *stop;
    int waits, failures;
} waiter;

/* Long-polls for a request that never comes, from the newest entry on. */
static void *wait_thread(void *arg)
{
    waiter *w = arg;
    char buf[8192], target[160];
    while (!atomic_load(w->stop)) {
        const char *next = NULL;
        if (http_body(w->port, "/devices/default/journal?tail=1", buf, sizeof buf) != 200 ||
            !(next = strstr(buf, "\"next\":"))) {
            w->failures++;
            usleep(10 * 1000);
            continue;
        }
        char mine[24] = "";
        if (w->id >= 0)
            snprintf(mine, sizeof mine, "%%20%d", w->id);
        snprintf(target, sizeof target,
                 "/devices/default/journal/wait?since=%lld&timeout_ms=500&match=NEVER%%20SENT%s",
                 atoll(next + 7), mine);
        w->failures += http_body(w->port, target, buf, sizeof buf) != 408;
        w->waits++;
    }
    return NULL;
}

/* The control port from the line after "listening on ...". */
static pid_t start(int kind, uint16_t *port, uint16_t *control)
{
    char *plain[] = {DW_SIM_PATH,   "--script",    script_path, "--listen",
                     "127.0.0.1:0", "--log-level", "error",     NULL};
    char *ctl[] = {DW_SIM_PATH, "--script",    script_path,   "--listen", "127.0.0.1:0",
                   "--control", "127.0.0.1:0", "--log-level", "error",    NULL};
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = dw_test_child_fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(DW_SIM_PATH, kind == PLAIN ? plain : ctl);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = pid > 0 ? fdopen(fds[0], "r") : NULL;
    char line[256];
    unsigned a, b;
    *port = *control = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "listening on 127.0.0.1:%u", &a) == 1)
            *port = (uint16_t)a;
        if (sscanf(line, "control on http://127.0.0.1:%u", &b) == 1)
            *control = (uint16_t)b;
        if (*port && (kind == PLAIN || *control))
            break;
    }
    if (f)
        fclose(f);
    else
        close(fds[0]);
    if (pid > 0 && (!*port || (kind != PLAIN && !*control))) {
        bench_child_stop(pid);
        return -1;
    }
    return pid;
}

/* The line load the device is measured with, against server pid on port. */
static int run_load(pid_t pid, uint16_t port, bench_result *out)
{
    bench_line_load l = {.port = port,
                         .request = REQUEST,
                         .reply = REPLY,
                         .conns = CONNS,
                         .threads = 1,
                         .seconds = seconds,
                         .server_pid = pid};
    return bench_line_run(&l, out);
}

static int measure(int kind, bench_result *out, int *polls)
{
    memset(out, 0, sizeof *out);
    *polls = 0;
    uint16_t port, control;
    pid_t pid = start(kind, &port, &control);
    if (pid <= 0) {
        fprintf(stderr, "bench_sim_control: cannot start %s\n", names[kind]);
        return -1;
    }
    poller p = {control, 0, 0, 0};
    pthread_t t;
    int polling = kind == POLLED && pthread_create(&t, NULL, poll_thread, &p) == 0;
    int rc = run_load(pid, port, out);
    if (polling) {
        atomic_store(&p.stop, 1);
        pthread_join(t, NULL);
    }
    *polls = p.polls;
    bench_child_stop(pid);
    if (p.failures)
        fprintf(stderr, "bench_sim_control: %d poll(s) failed\n", p.failures);
    return rc != 0 || p.failures ? -1 : 0;
}

/* A negative count: that many waiters, each with a pattern of its own
 * (a test suite's waits, each for its own request); otherwise all wait
 * for the same request (their tests are shared). */
static const int nwaiters[] = {0, 1, 8, 60, -60};
#define NWAIT (int)(sizeof nwaiters / sizeof nwaiters[0])

/* The device's round trips per second with n journal waiters (-n: n with
 * patterns of their own). */
static int measure_waiters(int n, double *rps, double *cpu, int *waits)
{
    int distinct = n < 0;
    n = distinct ? -n : n;
    uint16_t port, control;
    pid_t pid = start(QUIET, &port, &control);
    *rps = *cpu = 0;
    if (pid <= 0) {
        fprintf(stderr, "bench_sim_control: cannot start a server\n");
        return -1;
    }
    atomic_int stop = 0;
    waiter w[60];
    pthread_t t[60];
    int started = 0, failures = 0;
    for (; started < n; started++) {
        w[started] = (waiter){control, distinct ? started : -1, &stop, 0, 0};
        if (pthread_create(&t[started], NULL, wait_thread, &w[started]) != 0)
            break;
    }
    usleep(200 * 1000); /* the waiters are waiting */
    bench_result r;
    int rc = run_load(pid, port, &r);
    atomic_store(&stop, 1);
    for (int i = 0; i < started; i++) {
        pthread_join(t[i], NULL);
        *waits += w[i].waits;
        failures += w[i].failures;
    }
    bench_child_stop(pid);
    *rps = r.rps;
    *cpu = r.rps > 0 ? r.server_cores * 1e6 / r.rps : 0;
    if (failures)
        fprintf(stderr, "bench_sim_control: %d wait(s) failed\n", failures);
    return rc != 0 || failures || started < n ? -1 : 0;
}

static void bench_line(const char *name, double v, const char *unit, double base)
{
    printf("BENCH %s %.1f %s %.1f %.2f\n", name, v, unit, base, base > 0 ? v / base : 0);
}

/* DW_BENCH_WAITERS=N: only the device with N waiters, for 20 s, to attach
 * a profiler to (perf record -a -g): no ratio, no BENCH line. */
static int profile_waiters(int n)
{
    if (n < -60 || n > 60 || write_script() != 0)
        return 1;
    seconds = 20;
    double rps, cpu;
    int waits = 0, rc = measure_waiters(n, &rps, &cpu, &waits);
    printf("%d waiters: %.0f rt/s, server %.2f us/rt, %d waits\n", n, rps, cpu, waits);
    unlink(script_path);
    rmdir(dir);
    return rc != 0;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const char *q = getenv("DW_BENCH_QUICK");
    int quick = q && strcmp(q, "1") == 0;
    seconds = quick ? 0.5 : 2.0;
    rounds = quick ? 1 : 5;
    const char *one = getenv("DW_BENCH_WAITERS");
    if (one) /* one case, for a profiler: not a result */
        return profile_waiters(atoi(one));
    if (write_script() != 0) {
        fprintf(stderr, "bench_sim_control: %s: %s\n", script_path, strerror(errno));
        return 1;
    }
    printf("bench_sim_control: %s; %d connections, one epoll generator thread; a poller\n"
           "GETs /metrics and /journal?tail=100 every 100 ms; medians of %d rotating\n"
           "round(s) of %.1f s\n",
           quick ? "quick run" : "full run", CONNS, rounds, seconds);
    int status = 0, polls = 0, n = 0;
    double v[NKINDS][4][8];
    for (int k = 0; k < rounds; k++)
        for (int j = 0; j < NKINDS; j++) {
            int kind = (k + j) % NKINDS;
            bench_result r;
            status |= measure(kind, &r, &n) != 0;
            polls += n;
            v[kind][0][k] = r.rps;
            v[kind][1][k] = r.p50_us;
            v[kind][2][k] = r.p99_us;
            v[kind][3][k] = r.rps > 0 ? r.server_cores * 1e6 / r.rps : 0;
        }
    double f[NKINDS][4];
    printf("%-20s | %10s %8s %8s | %9s\n", "server", "rt/s", "p50 us", "p99 us", "srv us/rt");
    for (int kind = 0; kind < NKINDS; kind++) {
        for (int i = 0; i < 4; i++)
            f[kind][i] = bench_median(v[kind][i], rounds);
        printf("%-20s | %10.0f %8.1f %8.1f | %9.2f\n", names[kind], f[kind][0], f[kind][1],
               f[kind][2], f[kind][3]);
    }
    printf("polls: %d (each a GET /metrics and a GET /journal?tail=100)\n", polls);
    static const char *const what[] = {"rt", "p50", "p99", "cpu"};
    static const char *const unit[] = {"rt/s", "us", "us", "us"};
    for (int i = 0; i < 4; i++) {
        char name[64];
        snprintf(name, sizeof name, "control_polled_vs_quiet_%s", what[i]);
        bench_line(name, f[POLLED][i], unit[i], f[QUIET][i]);
        snprintf(name, sizeof name, "control_quiet_vs_plain_%s", what[i]);
        bench_line(name, f[QUIET][i], unit[i], f[PLAIN][i]);
    }
    double w[NWAIT][8], wc[NWAIT][8];
    int waits = 0;
    for (int k = 0; k < rounds; k++)
        for (int j = 0; j < NWAIT; j++) {
            int i = (k + j) % NWAIT;
            status |= measure_waiters(nwaiters[i], &w[i][k], &wc[i][k], &waits) != 0;
        }
    printf("%-20s | %10s | %9s\n", "journal waiters", "rt/s", "srv us/rt");
    double alone = bench_median(w[0], rounds), alone_cpu = bench_median(wc[0], rounds);
    for (int i = 0; i < NWAIT; i++) {
        double m = bench_median(w[i], rounds), mc = bench_median(wc[i], rounds);
        int count = abs(nwaiters[i]);
        const char *how = nwaiters[i] < 0 ? "_distinct" : "";
        char label[32];
        snprintf(label, sizeof label, "%d%s", count, nwaiters[i] < 0 ? " (own patterns)" : "");
        printf("%-20s | %10.0f | %9.2f\n", label, m, mc);
        if (i > 0) {
            char name[64];
            snprintf(name, sizeof name, "control_%d%s_waiters_vs_alone_rt", count, how);
            bench_line(name, m, "rt/s", alone);
            snprintf(name, sizeof name, "control_%d%s_waiters_vs_alone_cpu", count, how);
            bench_line(name, mc, "us", alone_cpu);
        }
    }
    printf("waits: %d (each a GET /journal?tail=1 and a 500 ms GET /journal/wait)\n", waits);
    unlink(script_path);
    rmdir(dir);
    return status;
}
