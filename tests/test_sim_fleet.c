/* devwire-sim with many devices: a bench file of a thousand, each on its own
 * port the system leaves free, all answering; the limit of open files raised
 * for them, or refused by name when it cannot be; ports chosen for port 0
 * distinct and in the system's local port range. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <devwire/devwire.h>

#include "common/net.h"
#include "sim_fixture.h"

TestSuite(sim_fleet, .init = dw_sim_fixture_init, .fini = dw_sim_fixture_fini, .timeout = 300);

/* A bench file of n devices, "dev1" to "devN", each serving the script
 * that answers PING with PONG and N? with its state variable. */
static const char *bench_of(size_t n)
{
    const char *script = dw_sim_fixture_file(
        "fleet-dev", "{\"name\": \"fleet device\", \"rules\": [{\"when\": \"PING\", "
                     "\"reply\": \"PONG\"}, {\"when\": \"N?\", \"reply\": \"${n}\"}],"
                     " \"state\": {\"n\": \"0\"}}");
    size_t cap = n * (strlen(script) + 64) + 16, len = 0;
    char *text = malloc(cap);
    cr_assert(text != NULL);
    len += (size_t)snprintf(text + len, cap - len, "[\n");
    for (size_t i = 1; i <= n; i++)
        len += (size_t)snprintf(text + len, cap - len,
                                " {\"name\": \"dev%zu\", \"script\": \"%s\"}%s\n", i, script,
                                i < n ? "," : "");
    snprintf(text + len, cap - len, "]\n");
    const char *path = dw_sim_fixture_file("fleet-bench", text);
    free(text);
    return path;
}

/* The port in device `name`'s readiness line, once it is there. */
static uint16_t port_of(dw_sim_proc *p, const char *name)
{
    char tail[64];
    snprintf(tail, sizeof tail, " (%s)\n", name);
    cr_assert(dw_sim_proc_wait_output(p, 0, tail, 60000), "no readiness line for %s:\n%s", name,
              dw_sim_err_of(p));
    const char *end = strstr(dw_sim_out_of(p), tail);
    const char *colon = end;
    while (colon > dw_sim_out_of(p) && *colon != ':')
        colon--;
    return (uint16_t)atoi(colon + 1);
}

Test(sim_fleet, a_thousand_devices_from_a_bench_file_each_answer_on_their_own_port)
{
    const char *bench = bench_of(1000);
    const char *const args[] = {"--bench", bench, "--control", "127.0.0.1:0", "--loops", "2", NULL};
    dw_sim_proc *p = dw_sim_start(&dw_sim_fixture.proc, args, "devwire-sim");
    uint16_t last = port_of(p, "dev1000");
    cr_expect(eq(sz, dw_sim_count(dw_sim_out_of(p), "listening on 127.0.0.1:"), 1000),
              "a readiness line per device");
    static const char *const asked[] = {"dev1", "dev2", "dev500", "dev999", "dev1000"};
    uint16_t ports[5];
    for (size_t i = 0; i < 5; i++) {
        ports[i] = i == 4 ? last : port_of(p, asked[i]);
        for (size_t k = 0; k < i; k++)
            cr_expect(ne(int, ports[i], ports[k]), "%s and %s share port %u", asked[i], asked[k],
                      ports[i]);
        dw_sim_client c;
        dw_sim_open_ok(&c, ports[i], dw_sentinel_marshaller_new("\n", 1), 20000);
        dw_sim_ask_eq(&c, "PING", "PONG");
        dw_sim_ask_eq(&c, "N?", "0");
        dw_sim_client_close(&c);
    }
    const char *out;
    cr_expect(eq(int, dw_sim_stop(p, 30000, &out), 0), "a clean stop:\n%s", dw_sim_err_of(p));
    cr_expect(eq(sz, dw_sim_count(out, "summary: dev"), 1000), "a summary per device");
    cr_expect(strstr(out, "summary: dev500: fleet device (") != NULL, "dev500's summary");
}

/* Start 100 devices under these limits of open files (the test is a
 * process of its own): what dw_sim_proc_start returns, or -1 when the hard
 * limit cannot be set that high. */
static int serve_100_under(rlim_t soft, rlim_t hard, dw_sim_proc *p)
{
    struct rlimit rl;
    cr_assert(eq(int, getrlimit(RLIMIT_NOFILE, &rl), 0));
    if (hard > rl.rlim_max)
        return -1;
    rl.rlim_cur = soft;
    rl.rlim_max = hard;
    cr_assert(eq(int, setrlimit(RLIMIT_NOFILE, &rl), 0), "setrlimit");
    const char *const args[] = {"--bench", bench_of(100), NULL};
    return dw_sim_proc_start(p, args, 0, 20000);
}

Test(sim_fleet, a_low_soft_limit_of_open_files_is_raised_to_the_hard_one)
{
    struct rlimit rl;
    cr_assert(eq(int, getrlimit(RLIMIT_NOFILE, &rl), 0));
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 1024)
        cr_skip_test("the hard limit of open files is %llu here", (unsigned long long)rl.rlim_max);
    dw_sim_proc *p = &dw_sim_fixture.proc;
    cr_assert(eq(int, serve_100_under(64, rl.rlim_max, p), 0), "%s", dw_sim_err_of(p));
    cr_assert(dw_sim_proc_wait_output(p, 0, " (dev100)\n", 20000), "every device listens:\n%s",
              dw_sim_err_of(p));
    dw_sim_client c;
    dw_sim_open_ok(&c, port_of(p, "dev100"), dw_sentinel_marshaller_new("\n", 1), 20000);
    dw_sim_ask_eq(&c, "PING", "PONG");
    dw_sim_client_close(&c);
    const char *out;
    cr_expect(eq(int, dw_sim_stop(p, 20000, &out), 0), "%s", dw_sim_err_of(p));
}

Test(sim_fleet, a_hard_limit_too_low_for_the_devices_is_refused_by_name)
{
    dw_sim_proc *p = &dw_sim_fixture.proc;
    cr_assert(eq(int, serve_100_under(64, 64, p), 0));
    cr_expect(eq(int, dw_sim_proc_wait(p, 20000), 3), "exit status 3: cannot serve");
    cr_expect(strstr(dw_sim_err_of(p), "100 device(s) need at least") != NULL &&
                  strstr(dw_sim_err_of(p), "the limit is 64 (RLIMIT_NOFILE, hard limit 64)") !=
                      NULL,
              "the limit named:\n%s", dw_sim_err_of(p));
    cr_expect(strstr(dw_sim_out_of(p), "listening on") == NULL, "nothing served:\n%s",
              dw_sim_out_of(p));
}

Test(sim_fleet, port_zero_gives_distinct_ports_in_the_local_range)
{
    unsigned lo = 32768, hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        cr_assert(eq(int, fscanf(f, "%u %u", &lo, &hi), 2));
        fclose(f);
    }
    enum { N = 300 };
    int fd[N];
    uint16_t port[N];
    for (int i = 0; i < N; i++) {
        char addr[DW_SIM_ADDR_MAX];
        dw_error err;
        dw_error_clear(&err);
        int type = i % 3 == 2 ? SOCK_DGRAM : SOCK_STREAM;
        cr_assert(
            eq(int, dw_sim_net_bind("127.0.0.1", 0, type, 16, &fd[i], addr, &port[i], &err), DW_OK),
            "%s", dw_error_message(&err));
        char want[32];
        snprintf(want, sizeof want, "127.0.0.1:%u", (unsigned)port[i]);
        cr_expect(eq(str, addr, want));
        cr_expect(port[i] >= lo && port[i] <= hi, "port %u outside %u-%u", port[i], lo, hi);
        for (int k = 0; k < i; k++)
            cr_assert(port[k] != port[i] || (i % 3 == 2) != (k % 3 == 2), "port %u twice", port[i]);
    }
    for (int i = 0; i < N; i++)
        close(fd[i]);
}
