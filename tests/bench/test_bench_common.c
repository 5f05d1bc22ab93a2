/* The benchmarks' own pieces, held to the same bar as the library, since
 * every figure rests on them: the epoll baseline server answers each line,
 * in order, however the bytes arrive and however slowly its client reads;
 * the epoll load generator counts round trips and catches wrong replies;
 * a server in a child process starts and stops. Servers bind 127.0.0.1,
 * port 0. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_child.h"
#include "epoll_server.h"
#include "line_load.h"

static bench_epoll_server *srv;

static void start(void)
{
    signal(SIGPIPE, SIG_IGN);
    srv = bench_epoll_start();
    cr_assert(srv != NULL, "bench_epoll_start failed");
}

static void stop(void)
{
    bench_epoll_stop(srv);
}

TestSuite(epoll_server, .init = start, .fini = stop, .timeout = 60);

static int client(void)
{
    int fd = bench_connect_loopback(bench_epoll_port(srv));
    cr_assert(fd >= 0, "connect 127.0.0.1:%u: %s", (unsigned)bench_epoll_port(srv), strerror(-fd));
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        cr_assert(w > 0, "send: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
}

/* Read exactly n bytes (fails on end of stream). */
static void recv_exact(int fd, char *p, size_t n)
{
    size_t have = 0;
    while (have < n) {
        ssize_t r = recv(fd, p + have, n - have, 0);
        cr_assert(r > 0, "recv after %zu of %zu bytes: %s", have, n, r ? strerror(errno) : "EOF");
        have += (size_t)r;
    }
}

Test(epoll_server, answers_volt_and_anything_else)
{
    int fd = client();
    char got[16];
    send_all(fd, "MEAS:VOLT?\n", 11);
    recv_exact(fd, got, 6);
    cr_assert(eq(str, (char *)memcpy((char[7]){0}, got, 6), "1.234\n"));
    send_all(fd, "*IDN?\n", 6);
    recv_exact(fd, got, 4);
    cr_assert(eq(str, (char *)memcpy((char[5]){0}, got, 4), "ERR\n"));
    close(fd);
}

/* Three pipelined lines cut in two at every byte: the replies are the
 * three answers in order, whatever the cut. */
Test(epoll_server, pipelined_lines_at_every_split)
{
    static const char in[] = "MEAS:VOLT?\nX\nMEAS:VOLT?\n";
    static const char want[] = "1.234\nERR\n1.234\n";
    for (size_t cut = 0; cut <= sizeof in - 1; cut++) {
        int fd = client();
        send_all(fd, in, cut);
        usleep(2000); /* let the first part arrive on its own */
        send_all(fd, in + cut, sizeof in - 1 - cut);
        char got[sizeof want] = {0};
        recv_exact(fd, got, sizeof want - 1);
        cr_assert(eq(str, got, (char *)want), "cut at %zu", cut);
        close(fd);
    }
}

#define PAIR       "MEAS:VOLT?\nX\n"
#define PAIR_REPLY "1.234\nERR\n"
#define PAIRS      1000000 /* 10 MB of replies: more than the kernel buffers between */

static void *blast_main(void *arg)
{
    int fd = *(int *)arg;
    char chunk[13 * 5000];
    for (size_t i = 0; i < sizeof chunk; i += 13)
        memcpy(chunk + i, PAIR, 13);
    for (int sent = 0; sent < PAIRS; sent += 5000)
        send_all(fd, chunk, sizeof chunk);
    return NULL;
}

/* A client that writes far more than the socket buffers hold before it
 * reads a byte (its receive buffer is small, so the server's replies back
 * up): the server stops reading while replies wait, then every reply comes,
 * in order. */
Test(epoll_server, slow_reader_gets_every_reply_in_order)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 8192;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(bench_epoll_port(srv)),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert(connect(fd, (struct sockaddr *)&a, sizeof a) == 0, "connect: %s", strerror(errno));
    pthread_t t;
    pthread_create(&t, NULL, blast_main, &fd);
    usleep(300000); /* the sender fills every buffer before anything is read */
    char buf[65536];
    size_t at = 0, total = (size_t)PAIRS * 10;
    while (at < total) {
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        cr_assert(r > 0, "recv after %zu of %zu bytes: %s", at, total, r ? strerror(errno) : "EOF");
        for (ssize_t i = 0; i < r; i++, at++)
            cr_assert(buf[i] == PAIR_REPLY[at % 10], "reply byte %zu out of order", at);
    }
    pthread_join(t, NULL);
    close(fd);
}

Test(epoll_server, a_line_longer_than_its_buffer_closes_the_connection)
{
    int fd = client();
    char big[4096];
    memset(big, 'x', sizeof big);
    send_all(fd, big, sizeof big);
    char c;
    ssize_t r;
    while ((r = recv(fd, &c, 1, 0)) < 0 && errno == EINTR)
        ;
    cr_assert(r <= 0, "the server answered a line longer than 1024 bytes");
    close(fd);
}

Test(epoll_server, load_generator_counts_round_trips)
{
    for (int threads = 1; threads <= 8; threads *= 8) {
        bench_line_load l = {.port = bench_epoll_port(srv),
                             .request = "MEAS:VOLT?\n",
                             .reply = "1.234\n",
                             .conns = 8,
                             .threads = threads,
                             .seconds = 0.2};
        bench_result r;
        cr_assert(eq(int, bench_line_run(&l, &r), 0), "%d thread(s)", threads);
        cr_assert(r.trips > 0 && r.failures == 0, "%d thread(s): %llu trips, %llu failures",
                  threads, (unsigned long long)r.trips, (unsigned long long)r.failures);
        cr_assert(r.p50_us > 0 && r.p50_us <= r.p99_us, "p50 %.1f us, p99 %.1f us", r.p50_us,
                  r.p99_us);
    }
}

Test(epoll_server, load_generator_catches_a_wrong_reply)
{
    bench_line_load l = {.port = bench_epoll_port(srv),
                         .request = "MEAS:CURR?\n", /* answered ERR */
                         .reply = "1.234\n",
                         .conns = 4,
                         .threads = 2,
                         .seconds = 0.1};
    bench_result r;
    cr_assert(eq(int, bench_line_run(&l, &r), -1));
    cr_assert(r.failures > 0 && r.trips == 0, "%llu failures, %llu trips",
              (unsigned long long)r.failures, (unsigned long long)r.trips);
}

static uint16_t child_serve(void)
{
    bench_epoll_server *s = bench_epoll_start();
    return s ? bench_epoll_port(s) : 0;
}

Test(child, serves_until_stopped, .timeout = 60)
{
    uint16_t port = 0;
    pid_t pid = bench_child_start(child_serve, &port);
    cr_assert(pid > 0 && port != 0, "bench_child_start failed");
    cr_assert(bench_proc_status(pid, "Threads") == 2, "the child runs its loop thread");
    bench_line_load l = {.port = port,
                         .request = "MEAS:VOLT?\n",
                         .reply = "1.234\n",
                         .conns = 2,
                         .threads = 1,
                         .seconds = 0.1,
                         .server_pid = pid};
    bench_result r;
    cr_assert(eq(int, bench_line_run(&l, &r), 0));
    bench_child_stop(pid);
    int fd = bench_connect_loopback(port);
    cr_assert(fd == -ECONNREFUSED, "127.0.0.1:%u still accepts after the child stopped",
              (unsigned)port);
}
