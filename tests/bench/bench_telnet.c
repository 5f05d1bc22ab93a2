/* What the Telnet client costs: round trips per second and latency of small
 * "\n"-terminated requests through the application client over the Telnet
 * transport, next to the same client over plain TCP, against the same
 * devwire TCP server (an echoing application server), over 1 and 64
 * connections, in alternating rounds of the same run. No 0xFF byte is sent
 * and the client asks for no option, so the server needs no Telnet of its
 * own: the difference is the client's filter.
 *
 * DW_BENCH_QUICK=1 runs a short version. Besides its table it prints
 * "BENCH name value unit baseline ratio" lines for scripts/bench.sh. */
#include <devwire/devwire.h>
#include <devwire/telnet.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app_echo.h"
#include "loadgen.h"

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const char *q = getenv("DW_BENCH_QUICK");
    int quick = q && strcmp(q, "1") == 0;
    double seconds = quick ? 0.25 : 0.5;
    int rounds = quick ? 2 : 6;

    bench_echo_server echo;
    dw_error err;
    dw_error_clear(&err);
    if (bench_echo_server_start(&echo, NULL, &err) != DW_OK) {
        fprintf(stderr, "bench_telnet: %s\n", dw_error_message(&err));
        return 1;
    }
    dw_tcp_client_options co;
    dw_tcp_client_options_init(&co);
    co.host = "127.0.0.1";
    co.port = dw_tcp_server_port(echo.tcp);
    dw_marshaller *lines = echo.lines;
    dw_telnet_client_options to;
    dw_telnet_client_options_init(&to);
    to.tcp = co;
    dw_client *tcp = dw_tcp_client_new(&co);
    dw_client *telnet = dw_telnet_client_new(&to);
    dw_app_client *tcp_app = tcp ? dw_app_client_new(tcp, lines, lines) : NULL;
    dw_app_client *telnet_app = telnet ? dw_app_client_new(telnet, lines, lines) : NULL;
    if (!tcp_app || !telnet_app) {
        fprintf(stderr, "bench_telnet: out of memory\n");
        return 1;
    }

    printf("bench_telnet: application client over Telnet vs over TCP, same devwire server, "
           "%s; medians of %d alternating rounds of %.2f s\n",
           quick ? "quick run" : "full run", rounds, seconds);
    printf("ratio = Telnet over TCP (rt/s: 1.00 = no overhead)\n\n");
    printf("%6s | %11s %9s %9s | %11s %9s %9s | %6s\n", "conns", "telnet rt/s", "p50 us", "p99 us",
           "tcp rt/s", "p50 us", "p99 us", "ratio");
    static const int counts[] = {1, 64};
    int status = 0;
    for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
        int n = counts[ci];
        double rps[2][16], p50[2][16], p99[2][16], ratio[16];
        for (int r = 0; r < rounds; r++) {
            for (int half = 0; half < 2; half++) {
                int side = (r + half) % 2; /* 0 telnet, 1 tcp; alternate who goes first */
                bench_result res;
                int rc =
                    bench_run(&bench_app_client_ops,
                              side == 0 ? (void *)telnet_app : (void *)tcp_app, n, seconds, &res);
                if (rc != 0 || res.failures) {
                    fprintf(stderr, "bench_telnet: %s at %d connections: %llu failure(s)\n",
                            side == 0 ? "telnet" : "tcp", n, (unsigned long long)res.failures);
                    status = 1;
                }
                rps[side][r] = res.rps;
                p50[side][r] = res.p50_us;
                p99[side][r] = res.p99_us;
            }
            ratio[r] = rps[1][r] > 0 ? rps[0][r] / rps[1][r] : 0;
        }
        double t_rps = bench_median(rps[0], rounds), t50 = bench_median(p50[0], rounds),
               t99 = bench_median(p99[0], rounds);
        double c_rps = bench_median(rps[1], rounds), c50 = bench_median(p50[1], rounds),
               c99 = bench_median(p99[1], rounds);
        double rt = bench_median(ratio, rounds);
        printf("%6d | %11.0f %9.1f %9.1f | %11.0f %9.1f %9.1f | %5.2fx\n", n, t_rps, t50, t99,
               c_rps, c50, c99, rt);
        printf("BENCH telnet_rt_%dconn %.0f rt/s %.0f %.2f\n", n, t_rps, c_rps, rt);
        printf("BENCH telnet_p99_%dconn %.1f us %.1f %.2f\n", n, t99, c99, c99 > 0 ? t99 / c99 : 0);
        fflush(stdout);
    }

    dw_app_client_free(telnet_app);
    dw_app_client_free(tcp_app);
    dw_client_free(telnet);
    dw_client_free(tcp);
    bench_echo_server_free(&echo);
    return status;
}
