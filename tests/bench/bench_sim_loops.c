/* Past one core: 200 devices from one bench file, 4 connections each (800
 * in all), served by devwire-sim on one event loop thread (--loops 1) and on
 * two (--loops 2), side by side with the one-thread epoll line server (the
 * best one thread can do, in its own process). Every device serves one exact
 * rule, MEAS:VOLT? -> 1.234; one epoll generator thread drives every
 * connection (common/line_load.c), spread over the devices' ports.
 *
 * Figures: round trips per second, p50 and p99, and the server's CPU time
 * per round trip and cores used. On a machine with few cores the generator
 * and the second loop compete for them, so round trips per second say less
 * than CPU per round trip, which is what sizes a larger host: the output
 * says how many round trips per second a core serves at that cost.
 *
 * Every run has a fresh server process; rounds rotate who goes first.
 * DW_BENCH_QUICK=1 runs a short version. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app_echo.h"
#include "bench_child.h"
#include "epoll_server.h"
#include "line_load.h"

#define DEVICES       200
#define CONNS_PER_DEV 4
#define CONNS         (DEVICES * CONNS_PER_DEV)
#define REQUEST       "MEAS:VOLT?\n"
#define REPLY         "1.234\n"

enum { LOOPS1, LOOPS2, EPOLL, NKINDS };
static const char *const names[NKINDS] = {"sim --loops 1", "sim --loops 2", "epoll 1 thread"};

static char dir[64], script_path[96], bench_path[96];
static double seconds;
static int rounds;

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "bench_sim_loops: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* The script and a bench file of DEVICES devices on ports the system
 * leaves free. */
static int write_files(void)
{
    snprintf(dir, sizeof dir, "/tmp/dwsim-loops-%ld", (long)getpid());
    snprintf(script_path, sizeof script_path, "%s/volt.json", dir);
    snprintf(bench_path, sizeof bench_path, "%s/bench.json", dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "bench_sim_loops: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    if (write_file(
            script_path,
            "{\"name\": \"volt\", \"framing\": {\"type\": \"sentinel\", \"sentinel\": "
            "\"\\n\"},\n \"rules\": [{\"when\": \"MEAS:VOLT?\", \"reply\": \"1.234\"}]}\n") != 0)
        return -1;
    static char text[DEVICES * 64 + 8];
    size_t len = 0;
    len += (size_t)snprintf(text + len, sizeof text - len, "[\n");
    for (int i = 0; i < DEVICES; i++)
        len += (size_t)snprintf(text + len, sizeof text - len,
                                "  {\"name\": \"dev%03d\", \"script\": \"volt.json\"}%s\n", i + 1,
                                i + 1 < DEVICES ? "," : "");
    snprintf(text + len, sizeof text - len, "]\n");
    return write_file(bench_path, text);
}

static uint16_t epoll_serve(void)
{
    bench_epoll_server *s = bench_epoll_start();
    return s ? bench_epoll_port(s) : 0; /* serves until the process ends */
}

/* A fresh server of `kind`: its pid and ports (DEVICES for the simulator,
 * else 1). */
static pid_t server_start(int kind, uint16_t *ports)
{
    if (kind == EPOLL)
        return bench_child_start(epoll_serve, ports);
    pid_t pid = -1;
#ifdef DW_SIM_PATH
    char *argv[] = {DW_SIM_PATH,   "--bench", bench_path, "--loops", kind == LOOPS1 ? "1" : "2",
                    "--log-level", "error",   NULL};
    pid = bench_child_exec_ports(argv, ports, DEVICES);
#endif
    return pid;
}

static int measure(int kind, bench_result *out)
{
    memset(out, 0, sizeof *out);
    uint16_t ports[DEVICES];
    pid_t pid = server_start(kind, ports);
    if (pid <= 0) {
        fprintf(stderr, "bench_sim_loops: cannot start %s\n", names[kind]);
        return -1;
    }
    bench_line_load l = {.ports = ports,
                         .nports = kind == EPOLL ? 1 : DEVICES,
                         .request = REQUEST,
                         .reply = REPLY,
                         .conns = CONNS,
                         .threads = 1,
                         .seconds = seconds,
                         .server_pid = pid};
    int rc = bench_line_run(&l, out);
    bench_child_stop(pid);
    if (rc != 0)
        fprintf(stderr, "bench_sim_loops: %s: %llu failure(s)\n", names[kind],
                (unsigned long long)out->failures);
    return rc;
}

typedef struct figures {
    double rps, p50, p99, us, cores;
} figures;

static figures medians(bench_result runs[][8], int kind)
{
    double v[5][8];
    for (int k = 0; k < rounds; k++) {
        const bench_result *x = &runs[kind][k];
        v[0][k] = x->rps;
        v[1][k] = x->p50_us;
        v[2][k] = x->p99_us;
        v[3][k] = x->rps > 0 ? x->server_cores * 1e6 / x->rps : 0;
        v[4][k] = x->server_cores;
    }
    return (figures){bench_median(v[0], rounds), bench_median(v[1], rounds),
                     bench_median(v[2], rounds), bench_median(v[3], rounds),
                     bench_median(v[4], rounds)};
}

static void bench_line(const char *name, double v, const char *unit, double base)
{
    printf("BENCH %s %.1f %s %.1f %.2f\n", name, v, unit, base, base > 0 ? v / base : 0);
}

/* What the CPU per round trip means on a host with more cores. */
static void implications(const figures *f)
{
    double one = f[LOOPS1].us, two = f[LOOPS2].us;
    if (one <= 0 || two <= 0)
        return;
    printf("server CPU per round trip: %.1f us on one loop, %.1f us on two (%+.0f%%), %.1f us for\n"
           "the epoll line server. One core of this machine serves about %.0f round trips/s\n"
           "of devwire-sim; with --loops N on a host with N cores to spare for the simulator\n"
           "(the clients on cores of their own), expect about N x %.0f round trips/s, e.g.\n"
           "%.0f on 8 cores, as long as the devices' traffic spreads over the loops (device i\n"
           "is on loop i mod N). To size a pod: cores = round trips/s needed x %.1f us / 1e6.\n",
           one, two, (two / one - 1) * 100, f[EPOLL].us, 1e6 / one, 1e6 / two, 8 * 1e6 / two, two);
    if (f[LOOPS1].cores < 0.9 && f[LOOPS2].cores < 0.9 && f[EPOLL].cores < 0.9)
        printf("Here the one generator thread, not the servers, limits round trips/s: no server\n"
               "used a whole core (--loops 2: %.2f cores).\n",
               f[LOOPS2].cores);
}

static void report(const figures *f)
{
    printf("%-15s | %10s %8s %8s | %9s %6s\n", "server", "rt/s", "p50 us", "p99 us", "srv us/rt",
           "cores");
    for (int k = 0; k < NKINDS; k++)
        printf("%-15s | %10.0f %8.1f %8.1f | %9.2f %6.2f\n", names[k], f[k].rps, f[k].p50, f[k].p99,
               f[k].us, f[k].cores);
    implications(f);
    static const struct {
        int kind, base;
        const char *name;
    } pairs[] = {{LOOPS2, LOOPS1, "loops2_vs_loops1"},
                 {LOOPS1, EPOLL, "loops1_vs_epoll"},
                 {LOOPS2, EPOLL, "loops2_vs_epoll"}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        const figures *v = &f[pairs[i].kind], *b = &f[pairs[i].base];
        char name[64];
        snprintf(name, sizeof name, "%s_rt_%dconn", pairs[i].name, CONNS);
        bench_line(name, v->rps, "rt/s", b->rps);
        snprintf(name, sizeof name, "%s_cpu_%dconn", pairs[i].name, CONNS);
        bench_line(name, v->us, "us", b->us);
    }
}

/* 800 connections and their servers' need more than a default 1024. */
static void raise_open_files(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    raise_open_files();
    const char *q = getenv("DW_BENCH_QUICK");
    int quick = q && strcmp(q, "1") == 0;
    seconds = quick ? 0.3 : 1.0;
    rounds = quick ? 1 : 3;
#ifndef DW_SIM_PATH
    fprintf(stderr, "bench_sim_loops: built without devwire-sim\n");
    return 1;
#endif
    if (write_files() != 0)
        return 1;
    printf("bench_sim_loops: %s; %d devices in one process (--bench), %d connections each\n"
           "(%d in all), on --loops 1 and --loops 2, against the one-thread epoll server;\n"
           "one epoll generator thread; %ld CPU(s) here; medians of %d rotating round(s) of "
           "%.1f s\n",
           quick ? "quick run" : "full run", DEVICES, CONNS_PER_DEV, CONNS,
           sysconf(_SC_NPROCESSORS_ONLN), rounds, seconds);
    int status = 0;
    bench_result runs[NKINDS][8];
    for (int k = 0; k < rounds; k++)
        for (int j = 0; j < NKINDS; j++) {
            int kind = (k + j) % NKINDS;
            status |= measure(kind, &runs[kind][k]) != 0;
        }
    figures f[NKINDS];
    for (int kind = 0; kind < NKINDS; kind++)
        f[kind] = medians(runs, kind);
    report(f);
    unlink(bench_path);
    unlink(script_path);
    rmdir(dir);
    return status;
}
