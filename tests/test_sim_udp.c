/* devwire-sim over UDP, with a plain C datagram client: framing inside a
 * datagram, replies to the sender, a frame cut by the datagram's end,
 * delays, drop, duplicate and garbage faults, periodic messages to every
 * peer, and a UDP device next to a TCP one in a bench. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <devwire/devwire.h>

#include "sim_fixture.h"

/* Each test's simulator and files are dw_sim_fixture's: .fini stops and
 * removes them whatever happened. */
TestSuite(sim_udp, .init = dw_sim_fixture_init, .fini = dw_sim_fixture_fini, .timeout = 90);

static const char script[] =
    "{\"transport\": \"udp\",\n"
    " \"rules\": [\n"
    "  {\"when\": \"PING\", \"reply\": \"pong\"},\n"
    "  {\"when\": \"SLOW\", \"reply\": \"late\", \"delay_ms\": 300},\n"
    "  {\"when\": \"LOST\", \"reply\": \"never\", \"fault\": \"drop\"},\n"
    "  {\"when\": \"TWICE\", \"reply\": \"again\", \"fault\": \"duplicate\"},\n"
    "  {\"when\": \"JUNK\", \"fault\": \"garbage\", \"garbage\": {\"hex\": \"00ff\"}}\n"
    " ]}\n";

static int udp_client(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(eq(int, bind(fd, (struct sockaddr *)&a, sizeof a), 0));
    return fd;
}

static void send_dgram(int fd, uint16_t port, const char *text, size_t n)
{
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(eq(sz, (size_t)sendto(fd, text, n, 0, (struct sockaddr *)&a, sizeof a), n));
}

/* The next datagram within timeout_ms, from `port`: its length, or -1. */
static long recv_dgram(int fd, uint16_t port, char *buf, size_t cap, int timeout_ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) != 1)
        return -1;
    struct sockaddr_in from;
    socklen_t len = sizeof from;
    ssize_t n = recvfrom(fd, buf, cap - 1, 0, (struct sockaddr *)&from, &len);
    cr_assert(n >= 0);
    cr_expect(eq(int, ntohs(from.sin_port), port), "the reply comes from the device's address");
    buf[n] = '\0';
    return (long)n;
}

static void expect_dgram(int fd, uint16_t port, const char *want)
{
    char buf[256];
    long n = recv_dgram(fd, port, buf, sizeof buf, 20000);
    cr_assert(n >= 0, "no datagram (wanted \"%s\")", want);
    cr_expect(eq(str, buf, (char *)want));
}

Test(sim_udp, frames_inside_a_datagram_and_faults)
{
    static const char *const args[] = {"--log-level", "info", NULL};
    dw_sim_proc *p = dw_sim_serve("udp", script, args);
    int fd = udp_client();
    /* Several frames in one datagram: one reply datagram each, in order;
     * the dropped one has none, the duplicated one comes twice. */
    const char burst[] = "PING\nLOST\nTWICE\nJUNK\nPING\n";
    send_dgram(fd, p->port, burst, sizeof burst - 1);
    expect_dgram(fd, p->port, "pong\n");
    expect_dgram(fd, p->port, "again\n");
    expect_dgram(fd, p->port, "again\n");
    char buf[64];
    long n = recv_dgram(fd, p->port, buf, sizeof buf, 20000);
    cr_expect(n == 2 && (unsigned char)buf[0] == 0x00 && (unsigned char)buf[1] == 0xff,
              "the garbage (%ld bytes)", n);
    expect_dgram(fd, p->port, "pong\n");

    /* A frame never spans datagrams: "PI" + "NG\n" are two broken halves. */
    send_dgram(fd, p->port, "PI", 2);
    send_dgram(fd, p->port, "NG\n", 3);
    send_dgram(fd, p->port, "PING\n", 5);
    expect_dgram(fd, p->port, "pong\n");
    cr_expect(dw_sim_proc_wait_output(p, 1, "datagram ends inside a frame (2 bytes)", 20000), "%s",
              dw_sim_err_of(p));

    /* A delayed reply does not hold up another peer. */
    int other = udp_client();
    send_dgram(fd, p->port, "SLOW\n", 5);
    send_dgram(other, p->port, "PING\n", 5);
    expect_dgram(other, p->port, "pong\n");
    expect_dgram(fd, p->port, "late\n");
    close(other);
    close(fd);
    const char *out;
    cr_expect(eq(int, dw_sim_stop(p, 20000, &out), 0), "%s", dw_sim_err_of(p));
    cr_expect(strstr(out, "  connections: 2\n") != NULL, "two peers:\n%s", out);
    cr_expect(strstr(out, "  requests: 9\n") != NULL, "%s", out);
    cr_expect(strstr(out, "  unmatched requests: 1\n    \"NG\"\n") != NULL,
              "the second half is a request of its own:\n%s", out);
}

Test(sim_udp, periodic_messages_reach_every_peer)
{
    static const char periodic[] = "{\"transport\": \"udp\",\n"
                                   " \"rules\": [{\"when\": \"HELLO\", \"reply\": \"hi\"}],\n"
                                   " \"periodic\": [{\"every_ms\": 100, \"send\": \"tick\"}]}\n";
    dw_sim_proc *p = dw_sim_serve("udptick", periodic, NULL);
    int a = udp_client(), b = udp_client();
    send_dgram(a, p->port, "HELLO\n", 6);
    send_dgram(b, p->port, "HELLO\n", 6);
    expect_dgram(a, p->port, "hi\n");
    expect_dgram(b, p->port, "hi\n");
    expect_dgram(a, p->port, "tick\n");
    expect_dgram(b, p->port, "tick\n");
    close(a);
    close(b);
    cr_expect(eq(int, dw_sim_stop(p, 20000, NULL), 0), "%s", dw_sim_err_of(p));
}

Test(sim_udp, a_bench_with_a_udp_device_and_a_tcp_one)
{
    const char *udp =
        dw_sim_fixture_file("udpdev", "{\"rules\": [{\"when\": \"PING\", \"reply\": \"u\"}]}");
    const char *tcp =
        dw_sim_fixture_file("tcpdev", "{\"rules\": [{\"when\": \"PING\", \"reply\": \"t\"}]}");
    char text[512];
    snprintf(text, sizeof text,
             "[{\"name\": \"dgram\", \"script\": \"%s\", \"transport\": \"udp\"},\n"
             " {\"name\": \"stream\", \"script\": \"%s\"}]\n",
             udp, tcp);
    const char *bench = dw_sim_fixture_file("udpbench", text);
    const char *const args[] = {"--bench", bench, NULL};
    dw_sim_proc *p = dw_sim_start(&dw_sim_fixture.proc, args, "the bench");
    cr_assert(dw_sim_proc_wait_output(p, 0, " (stream)\n", 20000));
    const char *out = (const char *)p->out.data;
    uint16_t dport = (uint16_t)atoi(strchr(strstr(out, "listening on 127.0.0.1:"), ':') + 1);
    uint16_t sport =
        (uint16_t)atoi(strchr(strstr(strstr(out, "(dgram)"), "listening on 127.0.0.1:"), ':') + 1);
    int fd = udp_client();
    send_dgram(fd, dport, "PING\n", 5);
    expect_dgram(fd, dport, "u\n");
    close(fd);
    dw_sim_client c;
    cr_assert(
        eq(int, dw_sim_client_open(&c, sport, dw_sentinel_marshaller_new("\n", 1), 20000), DW_OK));
    const char *got = dw_sim_client_ask(&c, "PING");
    cr_expect(got && strcmp(got, "t") == 0, "the TCP device answers");
    dw_sim_client_close(&c);
    cr_expect(eq(int, dw_sim_stop(p, 20000, NULL), 0), "%s", dw_sim_err_of(p));
}
