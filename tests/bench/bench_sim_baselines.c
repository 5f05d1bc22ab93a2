/* devwire-sim against the best this machine can do. Three servers, each in
 * its own process, all asked "MEAS:VOLT?\n":
 *
 *   devwire-sim  a script of one exact rule, MEAS:VOLT? -> 1.234;
 *   epoll        one thread, epoll, nonblocking sockets (common/epoll_server.c),
 *                answers 1.234 too;
 *   blocking     one thread per connection, blocking reads
 *                (common/baseline_server.c), echoes the line.
 *
 * 1. The load generator: one epoll thread driving every connection
 *    (common/line_load.c), against two threads and one thread per connection
 *    (bench_run's way), all on the epoll server. If one thread does as well
 *    as more while the server's one thread is busy all the time, the server
 *    is the bottleneck, not the generator.
 * 2. Round trips per second, p50 and p99 over 1, 64 and 512 connections, in
 *    rotating rounds, driven by the one-thread generator; ratios of
 *    devwire-sim against each baseline.
 * 3. 10,000 idle connections (one round trip each, then silence) to a fresh
 *    process of each server: its VmRSS growth per connection (target for
 *    devwire-sim: <= 16 KiB), and the p50 of one busy client among them
 *    against the same client's p50 with no idle connections.
 *
 * Every run has a fresh process of its server (see fresh_measure).
 *
 * DW_BENCH_QUICK=1 runs a short version; DW_BENCH_IDLE=N sets the number of
 * idle connections (default 10000). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "app_echo.h"
#include "baseline_server.h"
#include "bench_child.h"
#include "epoll_server.h"
#include "line_load.h"

enum { SIM, EPOLL, BLOCKING, NSERVERS };
static const char *const names[NSERVERS] = {"devwire-sim", "epoll", "blocking"};
static const char *const keys[NSERVERS] = {"sim", "epoll", "blocking"};
#define REQUEST "MEAS:VOLT?\n"
static const char *const replies[NSERVERS] = {"1.234\n", "1.234\n", REQUEST};
#define IDLE_TARGET_KIB 16.0

typedef struct server {
    int kind;
    pid_t pid;
    uint16_t port;
    long threads; /* the process's threads with no client */
} server;

static char script_path[64];
static double seconds;
static int rounds;

static uint16_t epoll_serve(void)
{
    bench_epoll_server *s = bench_epoll_start();
    return s ? bench_epoll_port(s) : 0; /* serves until the process ends */
}

static uint16_t blocking_serve(void)
{
    bench_baseline *b = bench_baseline_start();
    return b ? bench_baseline_port(b) : 0;
}

static int write_script(void)
{
    snprintf(script_path, sizeof script_path, "/tmp/dwsim-baselines-%ld.json", (long)getpid());
    FILE *f = fopen(script_path, "w");
    if (!f) {
        fprintf(stderr, "bench_sim_baselines: %s: %s\n", script_path, strerror(errno));
        return -1;
    }
    fputs("{\"name\": \"bench\", \"framing\": {\"type\": \"sentinel\", \"sentinel\": \"\\n\"},\n"
          " \"rules\": [{\"when\": \"MEAS:VOLT?\", \"reply\": \"1.234\"}]}\n",
          f);
    return fclose(f) == 0 ? 0 : -1;
}

/* Start a fresh process of `kind` (while this process has no other
 * thread). */
static int server_start(server *s, int kind, int max_conns)
{
    s->kind = kind;
    s->pid = -1;
    if (kind == EPOLL)
        s->pid = bench_child_start(epoll_serve, &s->port);
    else if (kind == BLOCKING)
        s->pid = bench_child_start(blocking_serve, &s->port);
#ifdef DW_SIM_PATH
    else {
        char maxc[32];
        snprintf(maxc, sizeof maxc, "%d", max_conns);
        char *argv[] = {DW_SIM_PATH,   "--script", script_path,         "--listen", "127.0.0.1:0",
                        "--log-level", "error",    "--max-connections", maxc,       NULL};
        s->pid = bench_child_exec(argv, &s->port);
    }
#else
    (void)max_conns;
#endif
    if (s->pid <= 0) {
        fprintf(stderr, "bench_sim_baselines: cannot start the %s server\n", names[kind]);
        return -1;
    }
    s->threads = bench_proc_status(s->pid, "Threads");
    return 0;
}

/* Wait (up to 5 s) until the server is back to its threads with no client,
 * so that one run's teardown does not eat into the next run's time. */
static void settle(const server *s)
{
    for (int i = 0; i < 500 && bench_proc_status(s->pid, "Threads") > s->threads; i++)
        usleep(10000);
    usleep(20000);
}

static int measure(const server *s, int conns, int threads, double secs, bench_result *res)
{
    bench_line_load l = {.port = s->port,
                         .request = REQUEST,
                         .reply = replies[s->kind],
                         .conns = conns,
                         .threads = threads,
                         .seconds = secs,
                         .server_pid = s->pid};
    int rc = bench_line_run(&l, res);
    settle(s);
    if (rc != 0)
        fprintf(stderr, "bench_sim_baselines: %s, %d connection(s): %llu failure(s)\n",
                names[s->kind], conns, (unsigned long long)res->failures);
    return rc;
}

/* A run on a fresh process of the server. On a busy machine the scheduler
 * holds back a thread that has had more than its share of the CPU (EEVDF's
 * lag), and a long-lived event-loop thread would carry that from one run to
 * the next, while a thread per connection starts afresh with every run. */
static int fresh_measure(int kind, int conns, int threads, bench_result *res)
{
    server s;
    memset(res, 0, sizeof *res);
    if (server_start(&s, kind, 2048) != 0)
        return -1;
    int rc = measure(&s, conns, threads, seconds, res);
    bench_child_stop(s.pid);
    return rc;
}

/* ---- 1. the load generator ------------------------------------------------- */

/* The server's CPU time per round trip, in microseconds. */
static double server_us(const bench_result *r)
{
    return r->rps > 0 ? r->server_cores * 1e6 / r->rps : 0;
}

/* Whatever other processes do, CPU time per round trip holds: a generator
 * that spends no more per round trip than the server can keep the server
 * busy with one core each. */
static int check_generator(void)
{
    int status = 0;
    printf("\n1. the load generator against the epoll server: one epoll thread for every\n"
           "   connection, two threads, one thread per connection (medians of %d round(s));\n"
           "   CPU time per round trip of the generator and of the server\n",
           rounds);
    printf("%6s | %7s | %10s %8s %8s | %9s %9s | %9s\n", "conns", "threads", "rt/s", "p50 us",
           "p99 us", "gen us/rt", "srv us/rt", "srv cores");
    static const int counts[] = {64, 512};
    for (int ci = 0; ci < 2; ci++) {
        int n = counts[ci];
        const int threads[3] = {1, 2, n};
        double rps[3][8], p50[3][8], p99[3][8], gen[3][8], srv[3][8], cores[3][8];
        for (int k = 0; k < rounds; k++)
            for (int j = 0; j < 3; j++) {
                int t = (k + j) % 3;
                bench_result r;
                status |= fresh_measure(EPOLL, n, threads[t], &r);
                rps[t][k] = r.rps;
                p50[t][k] = r.p50_us;
                p99[t][k] = r.p99_us;
                gen[t][k] = r.cpu_us;
                srv[t][k] = server_us(&r);
                cores[t][k] = r.server_cores;
            }
        double per_conn = bench_median(rps[2], rounds);
        for (int t = 0; t < 3; t++) {
            double v = bench_median(rps[t], rounds), g = bench_median(gen[t], rounds);
            double sv = bench_median(srv[t], rounds);
            printf("%6d | %7d | %10.0f %8.1f %8.1f | %9.2f %9.2f | %9.2f\n", n, threads[t], v,
                   bench_median(p50[t], rounds), bench_median(p99[t], rounds), g, sv,
                   bench_median(cores[t], rounds));
            const char *label = t == 2 ? "perconn" : t == 1 ? "2thread" : "1thread";
            if (t < 2)
                printf("BENCH loadgen_%s_rt_%dconn %.0f rt/s %.0f %.2f\n", label, n, v, per_conn,
                       per_conn > 0 ? v / per_conn : 0);
            printf("BENCH loadgen_%s_cpu_%dconn %.2f us %.2f %.2f\n", label, n, g, sv,
                   sv > 0 ? g / sv : 0);
        }
    }
    return status;
}

/* ---- 2. round trips, all three servers -------------------------------------- */

typedef struct figures {
    double rps, p50, p99, srv_us, cores;
} figures;

static void print_ratios(int n, const figures *f)
{
    static const char *const fig[4] = {"rt", "p50", "p99", "cpu"};
    static const char *const unit[4] = {"rt/s", "us", "us", "us"};
    for (int b = EPOLL; b <= BLOCKING; b++)
        for (int k = 0; k < 4; k++) {
            const double v[4] = {f[SIM].rps, f[SIM].p50, f[SIM].p99, f[SIM].srv_us};
            const double base[4] = {f[b].rps, f[b].p50, f[b].p99, f[b].srv_us};
            printf("BENCH simvs_%s_%s_%dconn %.*f %s %.*f %.2f\n", keys[b], fig[k], n, k ? 1 : 0,
                   v[k], unit[k], k ? 1 : 0, base[k], base[k] > 0 ? v[k] / base[k] : 0);
        }
}

static int compare_servers(void)
{
    int status = 0;
    printf("\n2. round trips, one epoll generator thread, each server in its own process\n"
           "   (medians of %d rotating round(s) of %.1f s; srv us/rt = the server's CPU time\n"
           "   per round trip, srv cores = its CPU use: on a busy machine a thread per\n"
           "   connection wins a share of the CPU per thread, one event-loop thread one share)\n",
           rounds, seconds);
    printf("%6s | %-11s | %10s %8s %8s | %9s %9s | %9s\n", "conns", "server", "rt/s", "p50 us",
           "p99 us", "srv us/rt", "srv cores", "sim/this");
    static const int counts[] = {1, 64, 512};
    for (int ci = 0; ci < 3; ci++) {
        int n = counts[ci];
        double rps[NSERVERS][8], p50[NSERVERS][8], p99[NSERVERS][8], srv_us[NSERVERS][8],
            cores[NSERVERS][8];
        for (int k = 0; k < rounds; k++)
            for (int j = 0; j < NSERVERS; j++) {
                int s = (k + j) % NSERVERS; /* who goes first rotates */
                bench_result r;
                status |= fresh_measure(s, n, 1, &r);
                rps[s][k] = r.rps;
                p50[s][k] = r.p50_us;
                p99[s][k] = r.p99_us;
                srv_us[s][k] = server_us(&r);
                cores[s][k] = r.server_cores;
            }
        figures f[NSERVERS];
        for (int s = 0; s < NSERVERS; s++)
            f[s] = (figures){bench_median(rps[s], rounds), bench_median(p50[s], rounds),
                             bench_median(p99[s], rounds), bench_median(srv_us[s], rounds),
                             bench_median(cores[s], rounds)};
        for (int s = 0; s < NSERVERS; s++)
            printf("%6d | %-11s | %10.0f %8.1f %8.1f | %9.2f %9.2f | %8.2fx\n", n, names[s],
                   f[s].rps, f[s].p50, f[s].p99, f[s].srv_us, f[s].cores,
                   f[s].rps > 0 ? f[SIM].rps / f[s].rps : 0);
        print_ratios(n, f);
        fflush(stdout);
    }
    return status;
}

/* ---- 3. idle connections -------------------------------------------------- */

/* One connection that has done one round trip; the fd or -1. */
static int open_idle(const server *s)
{
    int fd = bench_connect_loopback(s->port);
    if (fd < 0) {
        fprintf(stderr, "bench_sim_baselines: connect 127.0.0.1:%u: %s\n", (unsigned)s->port,
                strerror(-fd));
        return -1;
    }
    const char *want = replies[s->kind];
    size_t wn = strlen(want), have = 0;
    char buf[64];
    if (send(fd, REQUEST, strlen(REQUEST), MSG_NOSIGNAL) == (ssize_t)strlen(REQUEST))
        while (have < wn) {
            ssize_t r = recv(fd, buf + have, sizeof buf - have, 0);
            if (r <= 0)
                break;
            have += (size_t)r;
        }
    if (have != wn || memcmp(buf, want, wn) != 0) {
        fprintf(stderr, "bench_sim_baselines: %s: no or wrong reply on an idle connection\n",
                names[s->kind]);
        close(fd);
        return -1;
    }
    return fd;
}

/* Close with a reset: no TIME_WAIT left for thousands of ports. */
static void close_reset(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

typedef struct idle_figures {
    long rss0, rss1, threads;
    double kib, kstack_kib, p50_alone, p50_among;
} idle_figures;

/* One busy client's p50: the median of three short runs' p50s, so that a
 * burst of other work on the machine moves it less. */
static int busy_p50(const server *s, double *p50)
{
    double v[3];
    int status = 0;
    for (int i = 0; i < 3; i++) {
        bench_result r;
        status |= measure(s, 1, 1, seconds / 3, &r);
        v[i] = r.p50_us;
    }
    *p50 = bench_median(v, 3);
    return status;
}

/* The busy client's p50 is taken before the idle connections open, among
 * them, and after they close; "alone" is the mean of before and after, so
 * that a drift in the machine's load does not pass for their effect. */
static int idle_run(int kind, int n, idle_figures *f)
{
    server s;
    if (server_start(&s, kind, n + 64) != 0)
        return -1;
    double before = 0, after = 0;
    int status = busy_p50(&s, &before); /* also warms the server up */
    int *fd = malloc((size_t)n * sizeof *fd);
    int open_n = 0;
    f->rss0 = bench_proc_status(s.pid, "VmRSS");
    long kstack0 = bench_proc_field("/proc/meminfo", "KernelStack");
    while (fd && open_n < n && (fd[open_n] = open_idle(&s)) >= 0)
        open_n++;
    usleep(300000); /* let every connection's thread settle in its read */
    f->rss1 = bench_proc_status(s.pid, "VmRSS");
    f->threads = bench_proc_status(s.pid, "Threads");
    /* Machine-wide, so other processes' threads blur it a little. */
    long kstack1 = bench_proc_field("/proc/meminfo", "KernelStack");
    f->kib = (double)(f->rss1 - f->rss0) / (open_n ? open_n : 1);
    f->kstack_kib = (double)(kstack1 - kstack0) / (open_n ? open_n : 1);
    if (open_n == n)
        status |= busy_p50(&s, &f->p50_among);
    for (int i = 0; i < open_n; i++)
        close_reset(fd[i]);
    free(fd);
    settle(&s);
    status |= busy_p50(&s, &after);
    f->p50_alone = (before + after) / 2;
    bench_child_stop(s.pid);
    return open_n == n ? status : -1;
}

static int idle_memory(int n)
{
    int status = 0;
    printf("\n3. %d idle connections (one round trip each) to a fresh process of each server:\n"
           "   VmRSS growth per connection (target for devwire-sim <= %.0f KiB); the kernel\n"
           "   stacks of its threads, which VmRSS leaves out (KernelStack in /proc/meminfo,\n"
           "   machine-wide); one busy client's p50 among them against its p50 with none\n"
           "   (before they open and after they close)\n",
           n, IDLE_TARGET_KIB);
    printf("%-11s | %9s %9s | %8s | %7s %13s | %10s %10s %6s\n", "server", "RSS0 KiB", "RSS1 KiB",
           "KiB/conn", "threads", "kstack/conn", "p50 alone", "p50 among", "ratio");
    for (int kind = 0; kind < NSERVERS; kind++) {
        idle_figures f;
        memset(&f, 0, sizeof f);
        if (idle_run(kind, n, &f) != 0) {
            status = 1;
            continue;
        }
        double ratio = f.p50_alone > 0 ? f.p50_among / f.p50_alone : 0;
        printf("%-11s | %9ld %9ld | %8.1f | %7ld %9.1f KiB | %10.1f %10.1f %5.2fx\n", names[kind],
               f.rss0, f.rss1, f.kib, f.threads, f.kstack_kib, f.p50_alone, f.p50_among, ratio);
        printf("BENCH %s_idle_%dconn_memory %.1f KiB %.0f %.2f\n", keys[kind], n, f.kib,
               IDLE_TARGET_KIB, f.kib / IDLE_TARGET_KIB);
        printf("BENCH %s_idle_%dconn_p50 %.1f us %.1f %.2f\n", keys[kind], n, f.p50_among,
               f.p50_alone, ratio);
        fflush(stdout);
    }
    return status;
}

/* Room for n idle connections here and in the server (which inherits the
 * limit); returns the number of connections that fit. */
static int raise_fd_limit(int n)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return n;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return n;
    long room = (long)rl.rlim_cur - 1100; /* the busy client's 512, files, pipes */
    if (rl.rlim_cur != RLIM_INFINITY && room < n) {
        fprintf(stderr,
                "bench_sim_baselines: the open-file limit is %ld: %ld idle connections, not %d\n",
                (long)rl.rlim_cur, room, n);
        return room > 0 ? (int)room : 1;
    }
    return n;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const char *q = getenv("DW_BENCH_QUICK");
    int quick = q && strcmp(q, "1") == 0;
    const char *idle_env = getenv("DW_BENCH_IDLE");
    int idle = raise_fd_limit(idle_env ? atoi(idle_env) : 10000);
    seconds = quick ? 0.3 : 0.6;
    rounds = quick ? 1 : 5;
#ifndef DW_SIM_PATH
    fprintf(stderr, "bench_sim_baselines: built without devwire-sim\n");
    return 1;
#endif
    if (write_script() != 0)
        return 1;
    printf("bench_sim_baselines: %s; request \"MEAS:VOLT?\\n\", one in flight per connection;\n"
           "every run on a fresh server process\n",
           quick ? "quick run" : "full run");
    int status = check_generator();
    status |= compare_servers();
    status |= idle_memory(idle);
    unlink(script_path);
    return status ? 1 : 0;
}
