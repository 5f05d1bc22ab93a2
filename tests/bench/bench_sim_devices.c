/* Many devices in one devwire-sim process: 50 devices from one bench file
 * (--bench), each with a few connections, against one device with as many
 * connections in all, and against the one-thread epoll server (the best this
 * machine can do). Every device serves the same script of one exact rule,
 * MEAS:VOLT? -> 1.234; one epoll generator thread drives every connection
 * (common/line_load.c), spread over the devices' ports.
 *
 * Figures: round trips per second, p50 and p99, the server's CPU time per
 * round trip (steadier than round trips on a busy machine); the process's
 * VmRSS once every device listens (before any client) and its peak (VmHWM)
 * after the load, so the memory a device costs is
 * (RSS of 50 devices - RSS of 1) / 49.
 *
 * Every run has a fresh server process; rounds rotate who goes first.
 * DW_BENCH_QUICK=1 runs a short version. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app_echo.h"
#include "bench_child.h"
#include "epoll_server.h"
#include "line_load.h"

#define DEVICES       50
#define CONNS_PER_DEV 4
#define CONNS         (DEVICES * CONNS_PER_DEV)
#define REQUEST       "MEAS:VOLT?\n"
#define REPLY         "1.234\n"

enum { MANY, ONE, EPOLL, NKINDS };
static const char *const names[NKINDS] = {"sim 50 devices", "sim 1 device", "epoll"};

static char dir[64], script_path[96], bench_path[96];
static double seconds;
static int rounds;

typedef struct run {
    bench_result r;
    long rss_kib, hwm_kib; /* before any client; peak after the load */
} run;

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "bench_sim_devices: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* The script and a bench file of DEVICES devices on ports the system
 * chooses. */
static int write_files(void)
{
    snprintf(dir, sizeof dir, "/tmp/dwsim-devices-%ld", (long)getpid());
    snprintf(script_path, sizeof script_path, "%s/volt.json", dir);
    snprintf(bench_path, sizeof bench_path, "%s/bench.json", dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "bench_sim_devices: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    if (write_file(
            script_path,
            "{\"name\": \"volt\", \"framing\": {\"type\": \"sentinel\", \"sentinel\": "
            "\"\\n\"},\n \"rules\": [{\"when\": \"MEAS:VOLT?\", \"reply\": \"1.234\"}]}\n") != 0)
        return -1;
    char text[DEVICES * 80 + 8];
    size_t len = 0;
    len += (size_t)snprintf(text + len, sizeof text - len, "[\n");
    for (int i = 0; i < DEVICES; i++)
        len += (size_t)snprintf(text + len, sizeof text - len,
                                "  {\"name\": \"dev%02d\", \"script\": \"volt.json\"}%s\n", i + 1,
                                i + 1 < DEVICES ? "," : "");
    snprintf(text + len, sizeof text - len, "]\n");
    return write_file(bench_path, text);
}

static uint16_t epoll_serve(void)
{
    bench_epoll_server *s = bench_epoll_start();
    return s ? bench_epoll_port(s) : 0; /* serves until the process ends */
}

/* A fresh server of `kind`: its pid and ports (DEVICES for MANY, else 1). */
static pid_t server_start(int kind, uint16_t *ports)
{
    if (kind == EPOLL)
        return bench_child_start(epoll_serve, ports);
    pid_t pid = -1;
#ifdef DW_SIM_PATH
    char *one[] = {DW_SIM_PATH,   "--script",    script_path, "--listen",
                   "127.0.0.1:0", "--log-level", "error",     NULL};
    char *many[] = {DW_SIM_PATH, "--bench", bench_path, "--log-level", "error", NULL};
    pid = kind == MANY ? bench_child_exec_ports(many, ports, DEVICES)
                       : bench_child_exec_ports(one, ports, 1);
#endif
    return pid;
}

static int measure(int kind, run *out)
{
    memset(out, 0, sizeof *out);
    uint16_t ports[DEVICES];
    pid_t pid = server_start(kind, ports);
    if (pid <= 0) {
        fprintf(stderr, "bench_sim_devices: cannot start %s\n", names[kind]);
        return -1;
    }
    usleep(50000); /* let the process settle before its RSS is read */
    out->rss_kib = bench_proc_status(pid, "VmRSS");
    bench_line_load l = {.ports = ports,
                         .nports = kind == MANY ? DEVICES : 1,
                         .request = REQUEST,
                         .reply = REPLY,
                         .conns = CONNS,
                         .threads = 1,
                         .seconds = seconds,
                         .server_pid = pid};
    int rc = bench_line_run(&l, &out->r);
    out->hwm_kib = bench_proc_status(pid, "VmHWM");
    bench_child_stop(pid);
    if (rc != 0)
        fprintf(stderr, "bench_sim_devices: %s: %llu failure(s)\n", names[kind],
                (unsigned long long)out->r.failures);
    return rc;
}

typedef struct figures {
    double rps, p50, p99, us, rss, hwm;
} figures;

static figures medians(run runs[][8], int kind)
{
    double v[6][8];
    for (int k = 0; k < rounds; k++) {
        const run *x = &runs[kind][k];
        v[0][k] = x->r.rps;
        v[1][k] = x->r.p50_us;
        v[2][k] = x->r.p99_us;
        v[3][k] = x->r.rps > 0 ? x->r.server_cores * 1e6 / x->r.rps : 0;
        v[4][k] = (double)x->rss_kib;
        v[5][k] = (double)x->hwm_kib;
    }
    return (figures){bench_median(v[0], rounds), bench_median(v[1], rounds),
                     bench_median(v[2], rounds), bench_median(v[3], rounds),
                     bench_median(v[4], rounds), bench_median(v[5], rounds)};
}

static void bench_line(const char *name, double v, const char *unit, double base)
{
    printf("BENCH %s %.1f %s %.1f %.2f\n", name, v, unit, base, base > 0 ? v / base : 0);
}

static void report(const figures *f)
{
    printf("%-15s | %10s %8s %8s | %9s | %9s %9s\n", "server", "rt/s", "p50 us", "p99 us",
           "srv us/rt", "RSS KiB", "peak KiB");
    for (int k = 0; k < NKINDS; k++)
        printf("%-15s | %10.0f %8.1f %8.1f | %9.2f | %9.0f %9.0f\n", names[k], f[k].rps, f[k].p50,
               f[k].p99, f[k].us, f[k].rss, f[k].hwm);
    double per_dev = (f[MANY].rss - f[ONE].rss) / (DEVICES - 1);
    printf("memory per device: %.1f KiB (RSS of %d devices less RSS of 1, over %d)\n", per_dev,
           DEVICES, DEVICES - 1);
    static const struct {
        const char *what, *unit;
        int field;
    } figs[] = {{"rt", "rt/s", 0}, {"p50", "us", 1}, {"p99", "us", 2}, {"cpu", "us", 3}};
    for (int b = ONE; b <= EPOLL; b++)
        for (size_t i = 0; i < sizeof figs / sizeof figs[0]; i++) {
            const double v[4] = {f[MANY].rps, f[MANY].p50, f[MANY].p99, f[MANY].us};
            const double base[4] = {f[b].rps, f[b].p50, f[b].p99, f[b].us};
            char name[64];
            snprintf(name, sizeof name, "sim%ddev_vs_%s_%s_%dconn", DEVICES,
                     b == ONE ? "1dev" : "epoll", figs[i].what, CONNS);
            bench_line(name, v[figs[i].field], figs[i].unit, base[figs[i].field]);
        }
    bench_line("sim50dev_rss", f[MANY].rss, "KiB", f[ONE].rss);
    bench_line("sim50dev_peak_rss", f[MANY].hwm, "KiB", f[ONE].hwm);
    bench_line("sim50dev_kib_per_device", per_dev, "KiB", f[ONE].rss);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const char *q = getenv("DW_BENCH_QUICK");
    int quick = q && strcmp(q, "1") == 0;
    seconds = quick ? 0.3 : 0.6;
    rounds = quick ? 1 : 5;
#ifndef DW_SIM_PATH
    fprintf(stderr, "bench_sim_devices: built without devwire-sim\n");
    return 1;
#endif
    if (write_files() != 0)
        return 1;
    printf("bench_sim_devices: %s; %d devices in one process (--bench), %d connections each\n"
           "(%d in all), against one device with %d connections and the epoll server;\n"
           "one epoll generator thread; medians of %d rotating round(s) of %.1f s\n",
           quick ? "quick run" : "full run", DEVICES, CONNS_PER_DEV, CONNS, CONNS, rounds, seconds);
    int status = 0;
    run runs[NKINDS][8];
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
