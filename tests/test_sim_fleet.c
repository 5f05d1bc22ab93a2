/* devwire-sim with many devices: ports chosen for port 0 distinct and in
 * the system's local port range. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <devwire/devwire.h>

#include "common/net.h"
#include "sim_fixture.h"

TestSuite(sim_fleet, .init = dw_sim_fixture_init, .fini = dw_sim_fixture_fini, .timeout = 300);

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
