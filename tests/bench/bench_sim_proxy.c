/* Round trips through devwire-sim's recording proxy (--record) and its
 * fault proxy with no fault active (--proxy, a script without rules or
 * network faults), each in front of a devwire-sim, against that devwire-sim
 * directly: the cost of the extra hop. Targets: p50 within 2x of direct at
 * 1 connection; round trips per second at 64 connections at least 0.5x of
 * direct.
 *
 * The baseline for a proxy is HAProxy in TCP mode with one thread (as
 * devwire-sim's proxy runs on one loop), in front of the same devwire-sim,
 * measured in the same rounds: targets --proxy at least 0.9x its round
 * trips per second and a p50 within 1.2x, at 1 and 64 connections. Without
 * haproxy on the PATH (or in /usr/sbin) that comparison is skipped, and
 * said so.
 *
 * Every run has fresh processes; rounds rotate who goes first; one epoll
 * generator thread drives every connection (common/line_load.c); the
 * server CPU figure is the proxy's (direct: the simulator's).
 * DW_BENCH_QUICK=1 runs a short version. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app_echo.h"
#include "bench_child.h"
#include "child.h"
#include "line_load.h"

#define REQUEST "MEAS:VOLT?\n"
#define REPLY   "1.234\n"

enum { DIRECT, RECORD, PROXY, HAPROXY, NKINDS };
static const char *const names[NKINDS] = {"direct", "record", "proxy", "haproxy"};
static const int conn_counts[] = {1, 64};
#define NCOUNTS    2
#define MAX_ROUNDS 8

static char dir[64], script_path[96], faults_path[96], out_path[96], haproxy_cfg[96];
static char haproxy_bin[256]; /* "": not installed */
static double seconds;
static int rounds;

/* haproxy on the PATH, or in the sbin directories a user's PATH may lack. */
static void find_haproxy(void)
{
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/usr/local/sbin:/sbin", path ? path : "");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(haproxy_bin, sizeof haproxy_bin, "%s/haproxy", d);
        if (access(haproxy_bin, X_OK) == 0)
            return;
    }
    haproxy_bin[0] = 0;
}

/* A loopback port free a moment ago (haproxy cannot report a port 0). */
static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    uint16_t port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Whether 127.0.0.1:port accepts a connection within timeout_ms. */
static int wait_listening(uint16_t port, int timeout_ms)
{
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        if (fd >= 0)
            close(fd);
        if (ok)
            return 1;
        poll(NULL, 0, 10);
    }
    return 0;
}

/* HAProxy in TCP mode, one thread, from 127.0.0.1:*port to the device at
 * up_port (its configuration written to the run's directory): its pid. */
static pid_t haproxy_start(uint16_t up_port, uint16_t *port)
{
    *port = free_port();
    FILE *f = fopen(haproxy_cfg, "w");
    if (!f || *port == 0)
        return f ? (fclose(f), -1) : -1;
    fprintf(f,
            "global\n    nbthread 1\n    maxconn 4096\n"
            "defaults\n    mode tcp\n    timeout connect 5s\n"
            "    timeout client 60s\n    timeout server 60s\n"
            "frontend fe\n    bind 127.0.0.1:%u\n    default_backend be\n"
            "backend be\n    server device 127.0.0.1:%u\n",
            (unsigned)*port, (unsigned)up_port);
    if (fclose(f) != 0)
        return -1;
    pid_t pid = dw_test_child_fork();
    if (pid == 0) {
        char *argv[] = {haproxy_bin, "-db", "-q", "-f", haproxy_cfg, NULL};
        execv(argv[0], argv);
        _exit(127);
    }
    if (pid > 0 && !wait_listening(*port, 5000)) {
        fprintf(stderr, "bench_sim_proxy: %s did not listen on 127.0.0.1:%u\n", haproxy_bin,
                (unsigned)*port);
        bench_child_kill(pid);
        return -1;
    }
    return pid;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "bench_sim_proxy: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int write_files(void)
{
    snprintf(dir, sizeof dir, "/tmp/dwsim-proxy-%ld", (long)getpid());
    snprintf(script_path, sizeof script_path, "%s/volt.json", dir);
    snprintf(faults_path, sizeof faults_path, "%s/faults.json", dir);
    snprintf(out_path, sizeof out_path, "%s/recorded.json", dir);
    snprintf(haproxy_cfg, sizeof haproxy_cfg, "%s/haproxy.cfg", dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "bench_sim_proxy: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    if (write_file(script_path,
                   "{\"rules\": [{\"when\": \"MEAS:VOLT?\", \"reply\": \"1.234\"}]}\n"))
        return -1;
    return write_file(faults_path, "{\"transport\": \"tcp\"}\n");
}

typedef struct procs {
    pid_t sim, front; /* front: the proxy, or 0 */
    uint16_t port;    /* where the clients go */
} procs;

static int start(int kind, procs *p)
{
    memset(p, 0, sizeof *p);
#ifdef DW_SIM_PATH
    uint16_t sim_port = 0;
    char *sim[] = {DW_SIM_PATH,   "--script",    script_path, "--listen",
                   "127.0.0.1:0", "--log-level", "error",     NULL};
    p->sim = bench_child_exec(sim, &sim_port);
    if (p->sim <= 0)
        return -1;
    p->port = sim_port;
    if (kind == DIRECT)
        return 0;
    if (kind == HAPROXY) {
        p->front = haproxy_start(sim_port, &p->port);
        return p->front > 0 ? 0 : -1;
    }
    char up[32];
    snprintf(up, sizeof up, "127.0.0.1:%u", (unsigned)sim_port);
    char *rec[] = {DW_SIM_PATH,   "--record", "--upstream", up,         "--script",
                   script_path,   "--out",    out_path,     "--listen", "127.0.0.1:0",
                   "--log-level", "error",    NULL};
    char *px[] = {DW_SIM_PATH,   "--proxy",  "--upstream",  up,       "--script",
                  faults_path,   "--listen", "127.0.0.1:0", "--seed", "1",
                  "--log-level", "error",    NULL};
    p->front = bench_child_exec(kind == RECORD ? rec : px, &p->port);
    return p->front > 0 ? 0 : -1;
#else
    (void)kind;
    return -1;
#endif
}

static void stop(procs *p)
{
    if (p->front > 0)
        bench_child_stop(p->front); /* a recorder writes its script here */
    if (p->sim > 0)
        bench_child_stop(p->sim);
}

static int measure(int kind, int conns, bench_result *r)
{
    memset(r, 0, sizeof *r);
    procs p;
    if (start(kind, &p) != 0) {
        fprintf(stderr, "bench_sim_proxy: cannot start %s\n", names[kind]);
        stop(&p);
        return -1;
    }
    bench_line_load l = {.port = p.port,
                         .request = REQUEST,
                         .reply = REPLY,
                         .conns = conns,
                         .threads = 1,
                         .seconds = seconds,
                         .server_pid = p.front > 0 ? p.front : p.sim};
    int rc = bench_line_run(&l, r);
    stop(&p);
    if (rc != 0)
        fprintf(stderr, "bench_sim_proxy: %s, %d connection(s): %llu failure(s)\n", names[kind],
                conns, (unsigned long long)r->failures);
    return rc;
}

static void bench_line(const char *name, double v, const char *unit, double base)
{
    printf("BENCH %s %.1f %s %.1f %.2f\n", name, v, unit, base, base > 0 ? v / base : 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const char *q = getenv("DW_BENCH_QUICK");
    int quick = q && strcmp(q, "1") == 0;
    seconds = quick ? 0.3 : 1.0;
    rounds = quick ? 1 : 5;
#ifndef DW_SIM_PATH
    fprintf(stderr, "bench_sim_proxy: built without devwire-sim\n");
    return 1;
#endif
    if (write_files() != 0)
        return 1;
    find_haproxy();
    int nkinds = haproxy_bin[0] ? NKINDS : HAPROXY;
    printf("bench_sim_proxy: %s; round trips through --record and --proxy (no fault) in front\n"
           "of devwire-sim, and through HAProxy (TCP mode, one thread), against devwire-sim\n"
           "directly; one epoll generator thread; medians of %d rotating round(s) of %.1f s\n",
           quick ? "quick run" : "full run", rounds, seconds);
    if (!haproxy_bin[0])
        printf("bench_sim_proxy: haproxy is not installed (scripts/install-deps.sh installs "
               "it): no HAProxy baseline in this run\n");
    int status = 0;
    static bench_result res[NCOUNTS][NKINDS][MAX_ROUNDS];
    for (int c = 0; c < NCOUNTS; c++)
        for (int k = 0; k < rounds; k++)
            for (int j = 0; j < nkinds; j++) {
                int kind = (k + j) % nkinds;
                status |= measure(kind, conn_counts[c], &res[c][kind][k]) != 0;
            }
    printf("%-7s %5s | %10s %8s %8s | %9s\n", "path", "conns", "rt/s", "p50 us", "p99 us",
           "srv us/rt");
    double fig[NCOUNTS][NKINDS][4];
    for (int c = 0; c < NCOUNTS; c++)
        for (int kind = 0; kind < nkinds; kind++) {
            double v[4][MAX_ROUNDS];
            for (int k = 0; k < rounds; k++) {
                const bench_result *x = &res[c][kind][k];
                v[0][k] = x->rps;
                v[1][k] = x->p50_us;
                v[2][k] = x->p99_us;
                v[3][k] = x->rps > 0 ? x->server_cores * 1e6 / x->rps : 0;
            }
            for (int i = 0; i < 4; i++)
                fig[c][kind][i] = bench_median(v[i], rounds);
            printf("%-7s %5d | %10.0f %8.1f %8.1f | %9.2f\n", names[kind], conn_counts[c],
                   fig[c][kind][0], fig[c][kind][1], fig[c][kind][2], fig[c][kind][3]);
        }
    static const char *const what[4] = {"rt", "p50", "p99", "cpu"};
    static const char *const unit[4] = {"rt/s", "us", "us", "us"};
    for (int c = 0; c < NCOUNTS; c++)
        for (int kind = RECORD; kind <= PROXY; kind++)
            for (int i = 0; i < 4; i++) {
                char name[64];
                snprintf(name, sizeof name, "proxy_%s_vs_direct_%s_%dconn", names[kind], what[i],
                         conn_counts[c]);
                bench_line(name, fig[c][kind][i], unit[i], fig[c][DIRECT][i]);
            }
    for (int c = 0; c < NCOUNTS && nkinds == NKINDS; c++)
        for (int i = 0; i < 2; i++) {
            char name[64];
            snprintf(name, sizeof name, "proxy_vs_haproxy_%s_%dconn", what[i], conn_counts[c]);
            bench_line(name, fig[c][PROXY][i], unit[i], fig[c][HAPROXY][i]);
        }
    printf("targets: p50 at 1 connection within 2x of direct (ratio <= 2); round trips at 64\n"
           "connections at least half of direct (ratio >= 0.5)\n");
    if (nkinds == NKINDS)
        printf("targets against HAProxy, at 1 and 64 connections: --proxy's round trips at least\n"
               "0.9x HAProxy's (proxy_vs_haproxy_rt ratio >= 0.9), its p50 within 1.2x\n"
               "(proxy_vs_haproxy_p50 ratio <= 1.2)\n");
    unlink(out_path);
    unlink(script_path);
    unlink(faults_path);
    unlink(haproxy_cfg);
    rmdir(dir);
    return status;
}
