/* devwire-sim's event loop, as a subprocess: a delayed reply, a client that
 * does not read its replies and many idle connections never stall the
 * other clients, and cost no thread each. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <devwire/devwire.h>

#include "sim_fixture.h"

/* Each test's simulator and script are dw_sim_fixture's: .fini stops and
 * removes them whatever happened. */
TestSuite(sim_loop, .init = dw_sim_fixture_init, .fini = dw_sim_fixture_fini, .timeout = 90);

static dw_sim_proc *serve(const char *script, const char *const *args)
{
    return dw_sim_serve("loop", script, args);
}

static void open_client(dw_sim_client *c, dw_sim_proc *p)
{
    dw_sim_open_ok(c, p->port, dw_sentinel_marshaller_new("\n", 1), 20000);
}

static const char script[] = "{\"rules\": [\n"
                             "  {\"when\": \"PING\", \"reply\": \"pong\"},\n"
                             "  {\"when\": \"SLOW\", \"reply\": \"done\", \"delay_ms\": 3000}\n"
                             " ]}\n";

Test(sim_loop, a_delayed_reply_does_not_hold_up_other_clients)
{
    dw_sim_proc *p = serve(script, NULL);
    dw_sim_client slow, quick;
    open_client(&slow, p);
    open_client(&quick, p);
    cr_assert(eq(int, dw_sim_client_send(&slow, "SLOW", 4), DW_OK));
    for (int i = 0; i < 20; i++)
        dw_sim_ask_eq(&quick, "PING", "pong");
    cr_assert(eq(int, dw_sim_client_recv(&slow), DW_OK), "%s", dw_error_message(&slow.err));
    cr_expect(eq(str, (char *)slow.reply.data, "done"));
    dw_sim_ask_eq(&slow, "PING", "pong"); /* and it serves that client on */
    dw_sim_client_close(&slow);
    dw_sim_client_close(&quick);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0));
}

/* A script whose "BIG" reply is 64 KiB. */
static char *big_script(void)
{
    size_t n = 65536;
    char *s = malloc(n + 200);
    cr_assert(s != NULL);
    int k = sprintf(s, "{\"rules\": [{\"when\": \"PING\", \"reply\": \"pong\"},\n"
                       "            {\"when\": \"BIG\", \"reply\": \"");
    memset(s + k, 'x', n);
    strcpy(s + k + n, "\"}]}\n");
    return s;
}

Test(sim_loop, a_client_that_does_not_read_is_dropped_after_the_write_timeout)
{
    static const char *const args[] = {"--write-timeout", "1000", "--log-level", "info", NULL};
    char *text = big_script();
    dw_sim_proc *p = serve(text, args);
    free(text);
    /* 400 requests for 64 KiB each (25 MiB), and never a read. */
    int fd = dw_sim_raw_connect(p->port, 4096);
    cr_assert(fd >= 0, "raw connect");
    char reqs[400 * 4];
    for (size_t i = 0; i < sizeof reqs; i += 4)
        memcpy(reqs + i, "BIG\n", 4);
    cr_assert(eq(sz, (size_t)send(fd, reqs, sizeof reqs, 0), sizeof reqs));
    /* Meanwhile everyone else is served. */
    dw_sim_client c;
    open_client(&c, p);
    for (int i = 0; i < 20; i++)
        dw_sim_ask_eq(&c, "PING", "pong");
    cr_expect(dw_sim_proc_wait_output(p, 1, "the client is not reading (write timeout)", 30000),
              "the silent reader is dropped and logged:\n%s", dw_sim_err_of(p));
    dw_sim_ask_eq(&c, "PING", "pong");
    dw_sim_client_close(&c);
    close(fd);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0), "stderr:\n%s", dw_sim_err_of(p));
}

/* Threads of a process, from /proc. */
static size_t threads_of(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/task", (long)pid);
    DIR *d = opendir(path);
    cr_assert(d != NULL, "%s", path);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

Test(sim_loop, connections_cost_no_thread_each)
{
    dw_sim_proc *p = serve(script, NULL);
    enum { N = 64 };
    dw_sim_client c[N];
    for (int i = 0; i < N; i++) {
        open_client(&c[i], p);
        dw_sim_ask_eq(&c[i], "PING", "pong"); /* accepted and served: it exists */
    }
    size_t n = threads_of(p->pid);
    cr_expect(lt(sz, n, (size_t)8), "%d connections open: %zu threads", N, n);
    for (int i = 0; i < N; i++)
        dw_sim_client_close(&c[i]);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0));
}

/* A driver with Nagle's algorithm on (a default socket, as PyVISA's) writes
 * a command that gets no reply, then a query: its query waits in its own
 * socket until the device acknowledges the command. Without a quick ACK
 * that is the kernel's delayed ACK, 40 ms or more; the median of `rounds`
 * such queries, in ms. */
static double set_then_query_ms(uint16_t port, int rounds)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect to %u", port);
    double t[64];
    cr_assert(rounds <= 64);
    for (int i = 0; i < rounds; i++) {
        char set[32], want[32], got[32];
        int n = snprintf(set, sizeof set, "SET %d\n", i);
        snprintf(want, sizeof want, "%d\n", i);
        cr_assert(send(fd, set, (size_t)n, MSG_NOSIGNAL) == n);
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        cr_assert(send(fd, "GET?\n", 5, MSG_NOSIGNAL) == 5);
        size_t len = 0;
        while (len == 0 || got[len - 1] != '\n') {
            ssize_t r = recv(fd, got + len, sizeof got - 1 - len, 0);
            cr_assert(r > 0, "the reply to GET? in round %d", i);
            len += (size_t)r;
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        got[len] = 0;
        cr_assert(eq(str, got, want), "round %d", i);
        t[i] = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
        usleep(5000);
    }
    close(fd);
    for (int i = 1; i < rounds; i++) /* insertion sort, for the median */
        for (int k = i; k > 0 && t[k] < t[k - 1]; k--) {
            double x = t[k];
            t[k] = t[k - 1];
            t[k - 1] = x;
        }
    return t[rounds / 2];
}

static const char setq[] = "{\"state\": {\"v\": \"0\"}, \"rules\": [\n"
                           "  {\"when\": {\"regex\": \"^SET (.*)$\"}, \"set\": {\"v\": \"$1\"}},\n"
                           "  {\"when\": \"GET?\", \"reply\": \"${v}\"}]%s}\n";

/* The script above, with `more` top-level keys (", \"network\": {}"). */
static const char *setq_with(const char *more)
{
    static char text[512];
    snprintf(text, sizeof text, setq, more);
    return text;
}

/* The one timed assertion of the suite: the failure it guards against costs
 * 40 ms or more a query, far above the bound. */
Test(sim_loop, a_query_after_a_command_without_reply_is_not_held_by_a_delayed_ack)
{
    double ms = set_then_query_ms(serve(setq_with(""), NULL)->port, 21);
    cr_expect(ms < 20, "median set-then-query %.2f ms", ms);
    /* Behind the proxy that a script's "network" puts in front. */
    ms = set_then_query_ms(serve(setq_with(", \"network\": {}"), NULL)->port, 21);
    cr_expect(ms < 20, "median set-then-query through the device's proxy %.2f ms", ms);
    cr_log_info("through the device's proxy (its ACK after 2 ms unanswered): median %.2f ms", ms);
    /* Turned off, it is back to the kernel's delayed ACKs: shown, not asserted. */
    const char *off[] = {"--delayed-ack", NULL};
    cr_log_info(
        "--delayed-ack: median %.2f ms; \"tcp\": {\"quickack\": false}: median %.2f ms",
        set_then_query_ms(serve(setq_with(""), off)->port, 11),
        set_then_query_ms(serve(setq_with(", \"tcp\": {\"quickack\": false}"), NULL)->port, 11));
}
