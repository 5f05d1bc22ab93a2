/* Round trips per second and latency for small "\n"-terminated requests over
 * 1, 64 and 512 concurrent connections: the application client against the
 * devwire TCP server (an echoing application server), and the same load from
 * a raw blocking client against a minimal blocking C line server (the
 * baseline), measured in the same run in alternating rounds.
 * Then the memory an idle connection costs each server.
 *
 * DW_BENCH_QUICK=1 runs a short version (a few seconds). */
#include <devwire/devwire.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "baseline_server.h"
#include "app_echo.h"
#include "loadgen.h"

/* Open n connections, do one round trip on each, wait until the server
 * counts them, and return the RSS growth per connection in KiB. */
static double idle_kib_per_conn(uint16_t port, int n, const dw_tcp_server *s)
{
    int *fd = calloc((size_t)n, sizeof *fd);
    long before = bench_rss_kib();
    for (int i = 0; i < n; i++) {
        fd[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd[i], (struct sockaddr *)&a, sizeof a) != 0)
            return -1;
        char buf[8];
        if (send(fd[i], "idle\n", 5, MSG_NOSIGNAL) != 5 || recv(fd[i], buf, sizeof buf, 0) <= 0)
            return -1;
    }
    while (s && dw_tcp_server_connections(s) < (size_t)n)
        usleep(1000);
    long after = bench_rss_kib();
    for (int i = 0; i < n; i++)
        close(fd[i]);
    free(fd);
    return (double)(after - before) / n;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    const char *q = getenv("DW_BENCH_QUICK");
    int quick = q && strcmp(q, "1") == 0;
    double seconds = quick ? 0.25 : 0.5;

    dw_tcp_server_options so;
    dw_tcp_server_options_init(&so);
    so.max_connections = 4096;
    so.backlog = 1024;
    bench_echo_server echo;
    dw_error err;
    dw_error_clear(&err);
    if (bench_echo_server_start(&echo, &so, &err) != DW_OK) {
        fprintf(stderr, "bench: %s\n", dw_error_message(&err));
        return 1;
    }
    dw_tcp_server *server = echo.tcp;
    dw_marshaller *lines = echo.lines;
    dw_tcp_client_options co;
    dw_tcp_client_options_init(&co);
    co.host = "127.0.0.1";
    co.port = dw_tcp_server_port(server);
    dw_client *transport = dw_tcp_client_new(&co);
    dw_app_client *client = dw_app_client_new(transport, lines, lines);

    bench_baseline *base = bench_baseline_start();
    if (!base) {
        fprintf(stderr, "bench: cannot start the baseline server\n");
        return 1;
    }
    uint16_t base_port = bench_baseline_port(base);

    /* Memory first, while thread stacks and heap are fresh (later, cached
     * stacks of finished threads would hide the cost). */
    int idle = quick ? 128 : 512;
    double dw_kib = idle_kib_per_conn(dw_tcp_server_port(server), idle, server);
    while (dw_tcp_server_connections(server) > 0)
        usleep(1000);
    double base_kib = idle_kib_per_conn(base_port, idle, NULL);

    printf("bench_server: echo of small \"\\n\"-terminated requests, closed loop, %s\n",
           quick ? "quick run" : "full run");
    printf("devwire = app client + devwire TCP server (app server); baseline = raw blocking "
           "client + blocking line server (thread per connection)\n"
           "medians over alternating rounds; ratio = devwire rt/s over baseline rt/s (target >= "
           "0.80); cpu = baseline CPU time per round trip over devwire's (> 1: devwire is "
           "cheaper)\n\n");
    printf("%6s | %12s %9s %9s %7s | %13s %9s %9s %7s | %6s %6s\n", "conns", "devwire rt/s",
           "p50 us", "p99 us", "cpu us", "baseline rt/s", "p50 us", "p99 us", "cpu us", "ratio",
           "cpu");
    printf("-------+-----------------------------------------+---------------------------------"
           "---------+--------------\n");
    static const int counts[] = {1, 64, 512};
    int status = 0;
    for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
        int n = counts[ci];
        /* DW_BENCH_CONNS=N runs one count only (for profiling). */
        const char *only = getenv("DW_BENCH_CONNS");
        if (only && atoi(only) != n)
            continue;
        /* Pairs of short rounds, A-B then B-A, so that the load other
         * processes put on the machine hits both sides alike; the figures are
         * medians over the rounds, the ratios medians over the pairs. */
        enum { MAX_PAIRS = 16 };
        int pairs = quick ? 1 : 6;
        double rps[2][MAX_PAIRS], p50[2][MAX_PAIRS], p99[2][MAX_PAIRS], cpu[2][MAX_PAIRS];
        double ratio[MAX_PAIRS], cpu_ratio[MAX_PAIRS];
        for (int pr = 0; pr < pairs; pr++) {
            for (int half = 0; half < 2; half++) {
                int side = (pr + half) % 2;
                /* DW_BENCH_SIDE=devwire|baseline runs one side only (for
                 * profiling). */
                const char *only_side = getenv("DW_BENCH_SIDE");
                if (only_side && strcmp(only_side, side == 0 ? "devwire" : "baseline") != 0) {
                    rps[side][pr] = p50[side][pr] = p99[side][pr] = cpu[side][pr] = 0;
                    continue;
                }
                bench_result res;
                int rc = side == 0 ? bench_run(&bench_app_client_ops, client, n, seconds, &res)
                                   : bench_run(&bench_raw_client, &base_port, n, seconds, &res);
                if (rc != 0 || res.failures) {
                    fprintf(stderr, "bench: %s at %d connections: %llu failure(s)\n",
                            side == 0 ? "devwire" : "baseline", n,
                            (unsigned long long)res.failures);
                    status = 1;
                }
                /* Let the server finish tearing down (threads exit, stacks
                 * are unmapped) before the other side's clock starts. */
                while (dw_tcp_server_connections(server) > 0 ||
                       bench_baseline_connections(base) > 0)
                    usleep(1000);
                usleep(20000);
                rps[side][pr] = res.rps;
                p50[side][pr] = res.p50_us;
                p99[side][pr] = res.p99_us;
                cpu[side][pr] = res.cpu_us;
            }
            ratio[pr] = rps[1][pr] > 0 ? rps[0][pr] / rps[1][pr] : 0;
            cpu_ratio[pr] = cpu[0][pr] > 0 ? cpu[1][pr] / cpu[0][pr] : 0;
        }
        printf("%6d | %12.0f %9.1f %9.1f %7.1f | %13.0f %9.1f %9.1f %7.1f | %5.2fx %5.2fx\n", n,
               bench_median(rps[0], pairs), bench_median(p50[0], pairs),
               bench_median(p99[0], pairs), bench_median(cpu[0], pairs),
               bench_median(rps[1], pairs), bench_median(p50[1], pairs),
               bench_median(p99[1], pairs), bench_median(cpu[1], pairs), bench_median(ratio, pairs),
               bench_median(cpu_ratio, pairs));
        /* For scripts/bench.sh: BENCH name value unit baseline ratio. */
        printf("BENCH server_rt_%dconn %.0f rt/s %.0f %.2f\n", n, bench_median(rps[0], pairs),
               bench_median(rps[1], pairs), bench_median(ratio, pairs));
        printf("BENCH server_p99_%dconn %.1f us %.1f %.2f\n", n, bench_median(p99[0], pairs),
               bench_median(p99[1], pairs),
               bench_median(p99[1], pairs) > 0
                   ? bench_median(p99[0], pairs) / bench_median(p99[1], pairs)
                   : 0);
        fflush(stdout);
    }
    printf("\nidle connection after one round trip (RSS growth over %d connections, client "
           "side included): devwire %.1f KiB, baseline %.1f KiB\n",
           idle, dw_kib, base_kib);
    printf("BENCH idle_conn_memory %.1f KiB %.1f %.2f\n", dw_kib, base_kib,
           base_kib > 0 ? dw_kib / base_kib : 0);

    bench_baseline_stop(base);
    dw_app_client_free(client);
    dw_client_free(transport);
    bench_echo_server_free(&echo);
    return status;
}
