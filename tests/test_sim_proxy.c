/* devwire-sim --proxy: each fault of a faults script, seen by a client
 * talking to a device (devwire-sim) through the proxy; the network faults
 * of a simulator's own script; --seed repeats random faults exactly. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <devwire/devwire.h>
#include <devwire/telnet.h>

#include "sim_fixture.h"
#include "http_client.h"
#include "support.h"

/* Each test's device (dw_sim_fixture.peer), proxy or simulator
 * (dw_sim_fixture.proc) and files are the fixture's: .fini stops and removes
 * them whatever happened. */
TestSuite(sim_proxy, .init = dw_sim_fixture_init, .fini = dw_sim_fixture_fini, .timeout = 120);

static const char device_script[] = "{\"rules\": ["
                                    " {\"when\": \"PING\", \"reply\": \"PONG\"},"
                                    " {\"when\": \"MEAS?\", \"reply\": \"1.000\"},"
                                    " {\"when\": \"MARK\", \"reply\": \"END\"},"
                                    " {\"when\": \"DATA?\", \"reply\": \"0123456789abcdef\"},"
                                    " {\"when\": \"BIG?\", \"reply\": \"%s\"},"
                                    " {\"when\": \"BYE\", \"fault\": \"close\"}"
                                    "]}";

/* The device and the proxy of a test: the fixture's. */
typedef struct rig {
    dw_sim_proc *dev, *px;
} rig;

/* The device in `dev` (a fixture slot; what ran there is freed first). */
static dw_sim_proc *device_start(dw_sim_proc *dev)
{
    char big[1001], text[2048];
    memset(big, 'x', 1000);
    big[1000] = 0;
    snprintf(text, sizeof text, device_script, big);
    dw_sim_proc_free(dev);
    int rc = dw_sim_proc_serve(dev, "device", text, NULL, NULL);
    cr_assert(eq(int, rc, DW_OK), "device: %s\n%s", dw_strerror(rc), dw_sim_err_of(dev));
    return dev;
}

/* The device, and the proxy in front of it with `faults` and the option
 * `opt` with its value `val` (none when NULL). */
static void rig_start_with(rig *r, const char *faults, const char *opt, const char *val)
{
    r->dev = device_start(&dw_sim_fixture.peer);
    const char *path = dw_sim_fixture_file("faults", faults);
    char up[80];
    snprintf(up, sizeof up, "127.0.0.1:%u", (unsigned)r->dev->port);
    const char *args[12] = {"--proxy",  "--upstream",  up,  "--script", path,
                            "--listen", "127.0.0.1:0", NULL};
    if (opt) {
        args[7] = opt;
        args[8] = val;
        args[9] = NULL;
    }
    r->px = dw_sim_start(&dw_sim_fixture.proc, args, "proxy");
}

/* ... with `seed`, or none when NULL. */
static void rig_start(rig *r, const char *faults, const char *seed)
{
    rig_start_with(r, faults, seed ? "--seed" : NULL, seed);
}

/* The proxy must exit cleanly; .fini stops the device. */
static void rig_stop(rig *r)
{
    int st = dw_sim_stop(r->px, 10000, NULL);
    cr_assert(eq(int, st, 0), "the proxy exited %d:\n%s", st, dw_sim_err_of(r->px));
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int client(uint16_t port)
{
    int fd = dw_sim_raw_connect(port, 0);
    cr_assert(fd >= 0, "connect: %s", strerror(errno));
    return fd;
}

static void say(int fd, const char *line)
{
    char b[256];
    size_t n = (size_t)snprintf(b, sizeof b, "%s\n", line);
    cr_assert(eq(sz, (size_t)send(fd, b, n, MSG_NOSIGNAL), n));
}

/* Whatever arrives within wait_ms (until `until` is in it, when given), into
 * out (NUL-terminated); returns the byte count, or -errno / 0 on EOF with
 * *eof set. */
static ssize_t hear(int fd, char *out, size_t cap, int wait_ms, const char *until, int *eof)
{
    size_t got = 0;
    long long end = now_ms() + wait_ms;
    *eof = 0;
    out[0] = 0;
    while (got + 1 < cap && !(until && strstr(out, until))) {
        long long left = end - now_ms();
        struct pollfd p = {fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, (int)left) != 1)
            break;
        ssize_t n = recv(fd, out + got, cap - 1 - got, 0);
        if (n <= 0) {
            *eof = 1;
            return n < 0 ? -errno : (ssize_t)got;
        }
        got += (size_t)n;
        out[got] = 0;
    }
    return (ssize_t)got;
}

/* One request, its reply text (within 5 s). */
static const char *ask(int fd, const char *req, char *buf, size_t cap)
{
    int eof;
    say(fd, req);
    hear(fd, buf, cap, 5000, "\n", &eof);
    return buf;
}

#define PROXIED(faults, seed)                                                                      \
    rig r;                                                                                         \
    rig_start(&r, faults, seed);                                                                   \
    int fd = client(r.px->port);                                                                   \
    char buf[4096];                                                                                \
    (void)buf;                                                                                     \
    int eof = 0;                                                                                   \
    (void)eof

#define DONE()                                                                                     \
    close(fd);                                                                                     \
    rig_stop(&r)

/* ---- rules on requests and replies -------------------------------------------------- */

Test(sim_proxy, no_rules_forward_everything)
{
    PROXIED("{}", "1");
    cr_assert(eq(str, (char *)ask(fd, "PING", buf, sizeof buf), "PONG\n"));
    cr_assert(eq(str, (char *)ask(fd, "MEAS?", buf, sizeof buf), "1.000\n"));
    DONE();
}

Test(sim_proxy, request_drop_and_fault_on)
{
    PROXIED("{\"rules\": [{\"when\": \"PING\", \"fault\": \"drop\", \"fault_on\": 2}]}", "1");
    cr_assert(eq(str, (char *)ask(fd, "PING", buf, sizeof buf), "PONG\n"));
    say(fd, "PING");
    cr_assert(eq(sz, (size_t)hear(fd, buf, sizeof buf, 300, NULL, &eof), 0), "%s", buf);
    cr_assert(eq(str, (char *)ask(fd, "PING", buf, sizeof buf), "PONG\n"));
    DONE();
}

Test(sim_proxy, reply_garbage)
{
    PROXIED("{\"rules\": [{\"direction\": \"reply\", \"when\": \"PONG\", \"fault\": \"garbage\","
            " \"garbage\": {\"hex\": \"00 ff 0a\"}}]}",
            "1");
    say(fd, "PING");
    cr_assert(eq(sz, (size_t)hear(fd, buf, sizeof buf, 5000, "\n", &eof), 3));
    cr_assert(eq(int, memcmp(buf, "\x00\xff\n", 3), 0), "%s", dw_test_esc(buf, 3));
    cr_assert(eq(str, (char *)ask(fd, "MEAS?", buf, sizeof buf), "1.000\n"));
    DONE();
}

Test(sim_proxy, reply_rewritten_from_a_template)
{
    PROXIED("{\"rules\": [{\"direction\": \"reply\", \"when\": {\"regex\": \"^([0-9]+)\\\\.\"},"
            " \"reply\": \"$0 V ($1)\"}]}",
            "1");
    cr_assert(eq(str, (char *)ask(fd, "MEAS?", buf, sizeof buf), "1.000 V (1)\n"));
    cr_assert(eq(str, (char *)ask(fd, "PING", buf, sizeof buf), "PONG\n"));
    DONE();
}

Test(sim_proxy, request_answered_by_the_proxy)
{
    PROXIED("{\"rules\": [{\"when\": \"*IDN?\", \"reply\": \"PROXY,1\"}]}", "1");
    cr_assert(eq(str, (char *)ask(fd, "*IDN?", buf, sizeof buf), "PROXY,1\n"));
    cr_assert(eq(str, (char *)ask(fd, "PING", buf, sizeof buf), "PONG\n"));
    DONE();
}

Test(sim_proxy, reply_duplicated)
{
    PROXIED("{\"rules\": [{\"direction\": \"reply\", \"when\": \"PONG\", \"fault\": "
            "\"duplicate\"}]}",
            "1");
    say(fd, "PING");
    hear(fd, buf, sizeof buf, 5000, "PONG\nPONG\n", &eof);
    cr_assert(eq(str, buf, "PONG\nPONG\n"));
    DONE();
}

Test(sim_proxy, close_and_reset)
{
    PROXIED("{\"rules\": [{\"when\": \"QUIT\", \"fault\": \"close\"},"
            " {\"direction\": \"reply\", \"when\": \"1.000\", \"fault\": \"reset\"}]}",
            "1");
    say(fd, "QUIT");
    cr_assert(eq(sz, (size_t)hear(fd, buf, sizeof buf, 5000, NULL, &eof), 0));
    cr_assert(eq(int, eof, 1), "a close ends the connection");
    close(fd);
    fd = client(r.px->port);
    say(fd, "MEAS?");
    ssize_t n = hear(fd, buf, sizeof buf, 5000, NULL, &eof);
    cr_assert(eq(int, eof, 1));
    cr_assert(eq(int, (int)n, -ECONNRESET), "got %zd", n);
    DONE();
}

Test(sim_proxy, hang_stops_both_ways)
{
    PROXIED("{\"rules\": [{\"when\": \"LOCK\", \"fault\": \"hang\"}]}", "1");
    say(fd, "LOCK");
    say(fd, "PING");
    cr_assert(eq(sz, (size_t)hear(fd, buf, sizeof buf, 300, NULL, &eof), 0), "%s", buf);
    cr_assert(eq(int, eof, 0));
    DONE();
}

Test(sim_proxy, reply_delayed_and_split)
{
    PROXIED("{\"rules\": [{\"direction\": \"reply\", \"when\": \"0123456789abcdef\","
            " \"delay_ms\": 150, \"split\": [4], \"split_delay_ms\": 60}]}",
            "1");
    long long t0 = now_ms();
    say(fd, "DATA?");
    struct pollfd p = {fd, POLLIN, 0};
    cr_assert(eq(int, poll(&p, 1, 5000), 1));
    long long first = now_ms() - t0;
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    cr_assert(first >= 140, "the first piece came after %lld ms", first);
    cr_assert(eq(sz, (size_t)n, 4), "the first piece is 4 bytes, got %zd", n);
    hear(fd, buf + 4, sizeof buf - 4, 5000, "\n", &eof);
    cr_assert(eq(str, buf + 4, "456789abcdef\n"));
    cr_assert(now_ms() - t0 >= 140 + 4 * 55, "pieces paused");
    DONE();
}

Test(sim_proxy, rule_delay_distribution)
{
    PROXIED("{\"rules\": [{\"when\": \"PING\", \"delay\": {\"distribution\": \"uniform\","
            " \"min_ms\": 100, \"max_ms\": 150}}]}",
            "1");
    long long t0 = now_ms();
    cr_assert(eq(str, (char *)ask(fd, "PING", buf, sizeof buf), "PONG\n"));
    cr_assert(now_ms() - t0 >= 95, "delayed by %lld ms", now_ms() - t0);
    DONE();
}

/* 30 times PING then MARK: '1' where PONG came twice, '0' where once. */
static void duplicates_seen(int fd, char *out)
{
    char buf[256];
    int eof;
    for (int i = 0; i < 30; i++) {
        say(fd, "PING");
        say(fd, "MARK");
        hear(fd, buf, sizeof buf, 5000, "END\n", &eof);
        out[i] = strcmp(buf, "PONG\nPONG\nEND\n") == 0 ? '1' : '0';
        cr_assert(out[i] == '1' || strcmp(buf, "PONG\nEND\n") == 0, "%s", buf);
    }
    out[30] = 0;
}

/* The pattern of duplicated replies over 30 requests, as 0s and 1s. */
static void duplicate_pattern(const char *seed, char *out)
{
    PROXIED("{\"rules\": [{\"direction\": \"reply\", \"when\": \"PONG\", \"fault\": "
            "\"duplicate\", \"probability\": 0.5}]}",
            seed);
    duplicates_seen(fd, out);
    DONE();
}

Test(sim_proxy, seed_repeats_probabilistic_faults_exactly)
{
    char a[31], b[31], c[31];
    duplicate_pattern("42", a);
    duplicate_pattern("42", b);
    duplicate_pattern("43", c);
    cr_assert(eq(str, a, b), "the same seed, the same faults");
    cr_assert(strchr(a, '0') && strchr(a, '1'), "probability 0.5 both faults and spares: %s", a);
    cr_assert(ne(str, a, c), "another seed, other faults");
}

Test(sim_proxy, seed_printed_when_not_given)
{
    rig r;
    rig_start(&r, "{}", NULL);
    cr_assert(dw_sim_proc_wait_output(r.px, 1, "--seed ", 5000), "%s", dw_sim_err_of(r.px));
    rig_stop(&r);
}

/* ---- network faults --------------------------------------------------------------------- */

Test(sim_proxy, latency)
{
    PROXIED("{\"network\": {\"reply\": {\"latency\": {\"ms\": 150, \"jitter_ms\": 20}}}}", "1");
    for (int i = 0; i < 3; i++) {
        long long t0 = now_ms();
        cr_assert(eq(str, (char *)ask(fd, "PING", buf, sizeof buf), "PONG\n"));
        cr_assert(now_ms() - t0 >= 125, "round trip %lld ms", now_ms() - t0);
    }
    DONE();
}

Test(sim_proxy, bandwidth)
{
    PROXIED("{\"network\": {\"reply\": {\"bandwidth\": {\"bytes_per_second\": 2000}}}}", "1");
    long long t0 = now_ms();
    say(fd, "BIG?");
    ssize_t n = hear(fd, buf, sizeof buf, 10000, "\n", &eof);
    cr_assert(eq(sz, (size_t)n, 1001));
    cr_assert(now_ms() - t0 >= 400, "1001 bytes at 2000 B/s took %lld ms", now_ms() - t0);
    DONE();
}

Test(sim_proxy, slicer)
{
    PROXIED("{\"network\": {\"reply\": {\"slicer\": {\"average_size\": 3, \"size_variation\": 1,"
            " \"delay_ms\": 20}}}}",
            "1");
    say(fd, "DATA?");
    size_t got = 0, reads = 0;
    while (got < 17) {
        struct pollfd p = {fd, POLLIN, 0};
        cr_assert(eq(int, poll(&p, 1, 5000), 1));
        ssize_t n = recv(fd, buf + got, sizeof buf - got, 0);
        cr_assert(n > 0);
        got += (size_t)n;
        reads++;
    }
    buf[got] = 0;
    cr_assert(eq(str, buf, "0123456789abcdef\n"));
    cr_assert(reads >= 3, "17 bytes in slices of 2 to 4 came in %zu reads", reads);
    DONE();
}

Test(sim_proxy, limit_data)
{
    PROXIED("{\"network\": {\"reply\": {\"limit_data\": {\"bytes\": 10}}}}", "1");
    say(fd, "DATA?");
    ssize_t n = hear(fd, buf, sizeof buf, 5000, NULL, &eof);
    cr_assert(eq(sz, (size_t)n, 10));
    cr_assert(eq(str, buf, "0123456789"));
    cr_assert(eq(int, eof, 1), "closed after 10 bytes");
    DONE();
}

Test(sim_proxy, slow_close)
{
    PROXIED("{\"network\": {\"reply\": {\"slow_close\": {\"delay_ms\": 300}}}}", "1");
    long long t0 = now_ms();
    say(fd, "BYE");
    hear(fd, buf, sizeof buf, 5000, NULL, &eof);
    cr_assert(eq(int, eof, 1));
    cr_assert(now_ms() - t0 >= 280, "closed after %lld ms", now_ms() - t0);
    DONE();
}

Test(sim_proxy, timeout)
{
    PROXIED("{\"network\": {\"reply\": {\"timeout\": {\"ms\": 300}}}}", "1");
    long long t0 = now_ms();
    say(fd, "PING");
    ssize_t n = hear(fd, buf, sizeof buf, 5000, NULL, &eof);
    cr_assert(eq(sz, (size_t)n, 0), "no data passes");
    cr_assert(eq(int, eof, 1));
    cr_assert(now_ms() - t0 >= 280, "closed after %lld ms", now_ms() - t0);
    DONE();
}

/* The listener is closed for the window: a connect is refused by the
 * system (ECONNREFUSED), then the same address listens again. */
Test(sim_proxy, refuse_connections)
{
    rig r;
    rig_start(&r, "{\"network\": {\"refuse_connections\": {\"after_ms\": 300, \"for_ms\": 600}}}",
              "1");
    char buf[64];
    int fd = client(r.px->port);
    cr_assert(eq(str, (char *)ask(fd, "PING", buf, sizeof buf), "PONG\n"), "before the window");
    usleep(450 * 1000);
    errno = 0;
    int fd2 = dw_sim_raw_connect(r.px->port, 0);
    int why = errno;
    cr_assert(eq(int, fd2, -1), "a connect in the window is refused, not accepted");
    cr_assert(eq(int, why, ECONNREFUSED), "%s", strerror(why));
    cr_assert(eq(str, (char *)ask(fd, "PING", buf, sizeof buf), "PONG\n"),
              "an open connection goes on");
    long long t0 = now_ms();
    while ((fd2 = dw_sim_raw_connect(r.px->port, 0)) < 0 && now_ms() - t0 < 5000)
        usleep(20 * 1000);
    cr_assert(fd2 >= 0, "the same address listens again after the window");
    cr_assert(eq(str, (char *)ask(fd2, "PING", buf, sizeof buf), "PONG\n"));
    close(fd2);
    close(fd);
    rig_stop(&r);
}

Test(sim_proxy, disconnect_all)
{
    PROXIED("{\"network\": {\"disconnect_all\": {\"after_ms\": 300}}}", "1");
    cr_assert(eq(str, (char *)ask(fd, "PING", buf, sizeof buf), "PONG\n"));
    hear(fd, buf, sizeof buf, 5000, NULL, &eof);
    cr_assert(eq(int, eof, 1), "dropped");
    DONE();
}

/* ---- faults at run time through the control API ------------------------------------ */

/* method path [body] on the proxy's control API: the status; the reply in *out. */
static int control(uint16_t port, const char *method, const char *path, const char *body,
                   dw_test_http_reply *out)
{
    return dw_test_http(port, method, path, NULL, body, body ? strlen(body) : 0, 10000, out);
}

static long long round_trip(uint16_t port)
{
    char buf[64];
    int fd = client(port);
    long long t0 = now_ms();
    cr_assert(eq(str, (char *)ask(fd, "PING", buf, sizeof buf), "PONG\n"));
    long long ms = now_ms() - t0;
    close(fd);
    return ms;
}

Test(sim_proxy, control_latency_added_and_removed)
{
    rig r;
    rig_start_with(&r, "{}", "--control", "127.0.0.1:0");
    uint16_t cp = dw_test_control_port(r.px, 10000);
    cr_assert(cp != 0, "no control line:\n%s", (const char *)r.px->out.data);
    dw_test_http_reply h;
    cr_assert(eq(int, control(cp, "GET", "/devices", NULL, &h), 200));
    cr_assert(strstr(h.body, "\"upstream\"") && strstr(h.body, "\"proxy\""), "%s", h.body);
    dw_test_http_reply_free(&h);
    cr_assert(round_trip(r.px->port) < 300);
    int st = control(cp, "POST", "/devices/default/faults",
                     "{\"reply\": {\"latency\": {\"ms\": 400}}}", &h);
    cr_assert(eq(int, st, 201), "%s", h.body);
    cr_assert(strstr(h.body, "reply.latency") != NULL, "%s", h.body);
    dw_test_http_reply_free(&h);
    cr_assert(eq(int, control(cp, "GET", "/devices/default/faults", NULL, &h), 200));
    cr_assert(strstr(h.body, "latency") != NULL, "%s", h.body);
    dw_test_http_reply_free(&h);
    long long slow = round_trip(r.px->port);
    cr_assert(slow >= 350, "round trip %lld ms with the latency", slow);
    cr_assert(
        eq(int, control(cp, "DELETE", "/devices/default/faults/reply.latency", NULL, &h), 200));
    dw_test_http_reply_free(&h);
    cr_assert(round_trip(r.px->port) < 350, "the latency was not removed");
    cr_assert(eq(int, control(cp, "GET", "/devices/default/state", NULL, &h), 404));
    cr_assert(strstr(h.body, "is a proxy") != NULL, "%s", h.body);
    dw_test_http_reply_free(&h);
    cr_assert(eq(int,
                 control(cp, "POST", "/devices/default/faults",
                         "{\"reply\": {\"latency\": {\"nope\": 1}}}", &h),
                 422));
    dw_test_http_reply_free(&h);
    rig_stop(&r);
}

/* One PING on an open connection: the round trip in ms. */
static long long ping_ms(int fd)
{
    char buf[64];
    long long t0 = now_ms();
    cr_assert(eq(str, (char *)ask(fd, "PING", buf, sizeof buf), "PONG\n"));
    return now_ms() - t0;
}

static void control_ok(uint16_t cp, const char *method, const char *path, const char *body,
                       int want)
{
    dw_test_http_reply h;
    int st = control(cp, method, path, body, &h);
    cr_assert(eq(int, st, want), "%s %s: %s", method, path, h.body);
    dw_test_http_reply_free(&h);
}

/* A fault added at run time reaches a connection opened before it (as
 * Toxiproxy's toxics do), unless it says new_connections_only; removed, it
 * leaves the open connection. */
Test(sim_proxy, control_faults_reach_open_connections)
{
    rig r;
    rig_start_with(&r, "{}", "--control", "127.0.0.1:0");
    uint16_t cp = dw_test_control_port(r.px, 10000);
    cr_assert(cp != 0, "no control line:\n%s", (const char *)r.px->out.data);
    int fd = client(r.px->port);
    cr_assert(ping_ms(fd) < 300);
    control_ok(cp, "POST", "/devices/default/faults", "{\"reply\": {\"latency\": {\"ms\": 400}}}",
               201);
    long long ms = ping_ms(fd);
    cr_assert(ms >= 350, "the open connection got no latency: %lld ms", ms);
    control_ok(cp, "DELETE", "/devices/default/faults/reply.latency", NULL, 200);
    ms = ping_ms(fd);
    cr_assert(ms < 350, "removed, the latency stayed on the open connection: %lld ms", ms);

    control_ok(cp, "POST", "/devices/default/faults",
               "{\"reply\": {\"latency\": {\"ms\": 400, \"new_connections_only\": true}}}", 201);
    ms = ping_ms(fd);
    cr_assert(ms < 350, "new_connections_only reached the open connection: %lld ms", ms);
    ms = round_trip(r.px->port);
    cr_assert(ms >= 350, "a new connection did not get it: %lld ms", ms);
    control_ok(cp, "DELETE", "/devices/default/faults", NULL, 200);
    cr_assert(round_trip(r.px->port) < 350, "removed, new connections still slow");

    /* A timeout added now ends the open connection after its ms. */
    control_ok(cp, "POST", "/devices/default/faults", "{\"request\": {\"timeout\": {\"ms\": 200}}}",
               201);
    char buf[64];
    int eof = 0;
    say(fd, "PING");
    long long t0 = now_ms();
    hear(fd, buf, sizeof buf, 5000, NULL, &eof);
    cr_assert(eq(str, buf, ""), "the timeout passed data: %s", buf);
    cr_assert(eq(int, eof, 1), "the open connection was not closed by the timeout");
    cr_assert(now_ms() - t0 >= 100, "closed too early");
    close(fd);
    rig_stop(&r);
}

/* Lines of the file at `path` that hold both `a` and `b`. */
static int lines_with(const char *path, const char *a, const char *b)
{
    FILE *f = fopen(path, "r");
    cr_assert(f != NULL, "%s: %s", path, strerror(errno));
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, a) && strstr(line, b);
    fclose(f);
    return n;
}

/* The transcript holds the frames of both directions (requests "in",
 * replies "out", their payloads as each side sent them) while the bytes
 * pass unchanged, however the client cuts its requests and the device its
 * replies. */
Test(sim_proxy, transcript_holds_frames_both_ways)
{
    const char *dev_script =
        "{\"rules\": [{\"when\": \"PING\", \"reply\": \"PONG\"},"
        " {\"when\": \"MEAS?\", \"reply\": \"1.000\"},"
        " {\"when\": \"DATA?\", \"reply\": \"0123456789abcdef\", \"split\": [1, 4],"
        "  \"split_delay_ms\": 5}]}";
    dw_sim_proc *dev = &dw_sim_fixture.peer;
    int rc = dw_sim_proc_serve(dev, "device", dev_script, NULL, NULL);
    cr_assert(eq(int, rc, DW_OK), "device: %s\n%s", dw_strerror(rc), dw_sim_err_of(dev));
    const char *tpath = dw_sim_fixture_transcript();
    char up[80];
    snprintf(up, sizeof up, "127.0.0.1:%u", (unsigned)dev->port);
    const char *args[] = {"--proxy",
                          "--upstream",
                          up,
                          "--script",
                          dw_sim_fixture_file("faults", "{}"),
                          "--listen",
                          "127.0.0.1:0",
                          "--transcript",
                          tpath,
                          NULL};
    rig r = {dev, dw_sim_start(&dw_sim_fixture.proc, args, "proxy")};
    static const char req[] = "PING\nMEAS?\nDATA?\n";
    const char *want = "PONG\n1.000\n0123456789abcdef\n";
    size_t n = sizeof req - 1;
    for (size_t cut = 0; cut < n; cut++) {
        int fd = client(r.px->port), eof = 0;
        cr_assert(eq(sz, (size_t)send(fd, req, cut, MSG_NOSIGNAL), cut));
        usleep(20000);
        cr_assert(eq(sz, (size_t)send(fd, req + cut, n - cut, MSG_NOSIGNAL), n - cut));
        char buf[256];
        hear(fd, buf, sizeof buf, 5000, "cdef\n", &eof);
        cr_assert(eq(str, buf, (char *)want), "cut at %zu", cut);
        close(fd);
    }
    rig_stop(&r);
    int runs = (int)n;
    cr_assert(eq(int, lines_with(tpath, "\"dir\":\"in\"", "\"text\":\"PING\""), runs));
    cr_assert(eq(int, lines_with(tpath, "\"dir\":\"in\"", "\"text\":\"MEAS?\""), runs));
    cr_assert(eq(int, lines_with(tpath, "\"dir\":\"in\"", "\"text\":\"DATA?\""), runs));
    cr_assert(eq(int, lines_with(tpath, "\"dir\":\"out\"", "\"text\":\"PONG\""), runs));
    cr_assert(eq(int, lines_with(tpath, "\"dir\":\"out\"", "\"text\":\"1.000\""), runs));
    cr_assert(eq(int, lines_with(tpath, "\"dir\":\"out\"", "\"text\":\"0123456789abcdef\""), runs),
              "the device's reply in pieces is one frame");
    cr_assert(eq(int, lines_with(tpath, "\"dir\":\"open\"", "\"conn\":"), runs));
    cr_assert(eq(int, lines_with(tpath, "\"dir\":\"note\"", "\"conn\":"), 0));
}

Test(sim_proxy, control_disconnect_all)
{
    rig r;
    rig_start_with(&r, "{}", "--control", "127.0.0.1:0");
    uint16_t cp = dw_test_control_port(r.px, 10000);
    cr_assert(cp != 0);
    int fd = client(r.px->port), eof = 0;
    char buf[256];
    cr_assert(eq(str, (char *)ask(fd, "PING", buf, sizeof buf), "PONG\n"));
    dw_test_http_reply h;
    int st = control(cp, "POST", "/devices/default/faults", "{\"disconnect_all\": {}}", &h);
    cr_assert(eq(int, st, 201), "%s", h.body);
    dw_test_http_reply_free(&h);
    hear(fd, buf, sizeof buf, 5000, NULL, &eof);
    cr_assert(eq(int, eof, 1), "not dropped");
    close(fd);
    rig_stop(&r);
}

Test(sim_proxy, bad_faults_script_is_located)
{
    const char *path = dw_sim_fixture_file(
        "badfaults", "{\"network\": {\"reply\": {\"latency\": {\"ms\": 10, \"jiter_ms\": 5}}}}");
    dw_sim_proc p;
    const char *const args[] = {"--validate", path, NULL};
    int st = dw_sim_proc_run(&p, args, 10000);
    cr_assert(eq(int, st, 2));
    cr_assert(strstr(dw_sim_err_of(&p),
                     ":1:46: network.reply.latency.jiter_ms: unknown key (did you "
                     "mean \"jitter_ms\"?)") != NULL,
              "%s", dw_sim_err_of(&p));
    dw_sim_proc_free(&p);
}

/* ---- a simulator's own network faults ------------------------------------------------- */

Test(sim_proxy, simulator_network_faults)
{
    static const char script[] =
        "{\"rules\": [{\"when\": \"PING\", \"reply\": \"PONG\"}],"
        " \"network\": {\"reply\": {\"latency\": {\"ms\": 150}, \"limit_data\": {\"bytes\": 7}}}}";
    const char *const extra[] = {"--seed", "7", NULL};
    dw_sim_proc *sim = dw_sim_serve("simnet", script, extra);
    int fd = client(sim->port);
    char buf[64];
    int eof;
    long long t0 = now_ms();
    cr_assert(eq(str, (char *)ask(fd, "PING", buf, sizeof buf), "PONG\n"));
    cr_assert(now_ms() - t0 >= 140, "round trip %lld ms", now_ms() - t0);
    say(fd, "PING");
    hear(fd, buf, sizeof buf, 5000, NULL, &eof);
    cr_assert(eq(str, buf, "PO"), "7 bytes in all");
    cr_assert(eq(int, eof, 1));
    close(fd);
    cr_assert(eq(int, dw_sim_stop(sim, 10000, NULL), 0), "%s", dw_sim_err_of(sim));
    cr_assert(strstr((const char *)sim->out.data, "requests: 2") != NULL, "%s",
              (const char *)sim->out.data);
}

/* The duplicated answers of a simulator whose rule duplicates with
 * probability 0.5, over 30 requests. */
static void sim_duplicate_pattern(const char *seed, char *out)
{
    static const char script[] =
        "{\"rules\": [{\"when\": \"PING\", \"reply\": \"PONG\", \"fault\": "
        "\"duplicate\", \"probability\": 0.5},"
        " {\"when\": \"MARK\", \"reply\": \"END\"}]}";
    const char *const extra[] = {"--seed", seed, NULL};
    dw_sim_proc *sim = dw_sim_serve("simprob", script, extra);
    int fd = client(sim->port);
    duplicates_seen(fd, out);
    close(fd);
    cr_assert(eq(int, dw_sim_stop(sim, 10000, NULL), 0), "%s", dw_sim_err_of(sim));
}

Test(sim_proxy, simulator_rule_probability_repeats_with_seed)
{
    char a[31], b[31], c[31];
    sim_duplicate_pattern("42", a);
    sim_duplicate_pattern("42", b);
    sim_duplicate_pattern("43", c);
    cr_assert(eq(str, a, b), "the same seed, the same faults");
    cr_assert(strchr(a, '0') && strchr(a, '1'), "%s", a);
    cr_assert(ne(str, a, c), "another seed, other faults");
}

/* Ten answers of a simulator with a noisy property (R?) and a Lua reply
 * drawing from math.random (RND), alternating, into out (of 512); a SIGHUP
 * reload first when `reload`. */
static void sim_random_answers(const char *seed, int reload, char *out)
{
    static const char script[] =
        "{\"properties\": {\"r\": {\"type\": \"float\", \"command\": \"R\", \"access\": \"ro\","
        " \"default\": 10, \"format\": \"%.6f\", \"noise\": {\"amplitude\": 1}}},"
        " \"rules\": [{\"when\": \"RND\", \"reply\": {\"lua\": \"math.random(1,1000000)\"}}]}";
    const char *const extra[] = {"--seed", seed, NULL};
    dw_sim_proc *sim = dw_sim_serve("simrand", script, extra); /* its file kept for the reload */
    dw_sim_client c;
    cr_assert(eq(int,
                 dw_sim_client_open(&c, sim->port,
                                    dw_sentinel_marshaller_new((const uint8_t *)"\n", 1), 10000),
                 DW_OK));
    if (reload) { /* draws before the reload, then from the seed again */
        cr_assert(dw_sim_client_ask(&c, "RND") != NULL);
        cr_assert(eq(int, dw_sim_proc_kill(sim, SIGHUP), 0));
        cr_assert(dw_sim_proc_wait_output(sim, 1, "reloaded", 10000), "%s", dw_sim_err_of(sim));
    }
    out[0] = '\0';
    for (int i = 0; i < 10; i++) {
        const char *r = dw_sim_client_ask(&c, i % 2 ? "RND" : "R?");
        cr_assert(r != NULL, "%s: %s", dw_error_message(&c.err), dw_sim_err_of(sim));
        strncat(out, r, 511 - strlen(out));
        strncat(out, " ", 511 - strlen(out));
    }
    dw_sim_client_close(&c);
    cr_assert(eq(int, dw_sim_stop(sim, 10000, NULL), 0), "%s", dw_sim_err_of(sim));
}

Test(sim_proxy, simulator_seed_repeats_noise_and_lua_random)
{
    char a[512], b[512], c[512], d[512];
    sim_random_answers("42", 0, a);
    sim_random_answers("42", 0, b);
    sim_random_answers("43", 0, c);
    sim_random_answers("42", 1, d);
    cr_assert(eq(str, a, b), "the same seed, the same readings");
    cr_assert(ne(str, a, c), "another seed, other readings: %s", a);
    cr_assert(eq(str, a, d), "a reload draws from the seed again");
}

Test(sim_proxy, simulator_refuses_reply_rules)
{
    dw_sim_proc sim;
    int rc = dw_sim_proc_serve(
        &sim, "replyrule",
        "{\"rules\": [{\"name\": \"late\", \"direction\": \"reply\", \"when\": \"x\"}]}", NULL,
        NULL);
    cr_assert(eq(int, rc, DW_EOF), "it must not serve");
    cr_assert(eq(int, sim.status, 2));
    cr_assert(strstr(dw_sim_err_of(&sim),
                     ": late: \"direction\": \"reply\" matches a device's replies: "
                     "use the script with --proxy") != NULL,
              "%s", dw_sim_err_of(&sim));
    dw_sim_proc_free(&sim);
}

/* ---- faults at run time (the calls a control interface makes) --------------------------- */

#include "common/loop.h"
#include "record/proxy.h"

Test(sim_proxy, faults_added_and_removed_at_run_time)
{
    dw_sim_proc *dev = device_start(&dw_sim_fixture.peer);
    dw_sim_loop *loop = NULL;
    dw_error err;
    dw_error_clear(&err);
    cr_assert(eq(int, dw_sim_loop_new(&loop, &err), DW_OK));
    dw_sim_script *script = NULL;
    cr_assert(eq(int, dw_sim_script_load_buffer("faults.json", "{}", 2, &script, &err), DW_OK));
    dw_sim_proxy_options o;
    dw_sim_proxy_options_init(&o);
    o.host = "127.0.0.1";
    o.upstream_host = "127.0.0.1";
    o.upstream_port = dev->port;
    o.loop = loop;
    o.seed = 1;
    dw_sim_proxy *px = NULL;
    cr_assert(eq(int, dw_sim_proxy_new(&o, script, &px, &err), DW_OK), "%s",
              dw_error_message(&err));
    cr_assert(eq(int, dw_sim_loop_start(loop, &err), DW_OK));
    uint16_t port = (uint16_t)atoi(strrchr(dw_sim_proxy_address(px), ':') + 1);
    char buf[256];
    int eof;

    dw_sim_toxic t = {.name = "slow",
                      .kind = DW_SIM_TOXIC_LATENCY,
                      .direction = DW_SIM_DIR_REPLY,
                      .probability = 1,
                      .delay = {DW_SIM_DIST_FIXED, 200, 0}};
    cr_assert(eq(int, dw_sim_proxy_add_fault(px, &t, &err), DW_OK), "%s", dw_error_message(&err));
    cr_assert(eq(int, dw_sim_proxy_add_fault(px, &t, &err), DW_EINVAL), "one name, one fault");
    int fd = client(port);
    long long t0 = now_ms();
    cr_assert(eq(str, (char *)ask(fd, "PING", buf, sizeof buf), "PONG\n"));
    cr_assert(now_ms() - t0 >= 190, "the added latency applies: %lld ms", now_ms() - t0);
    close(fd);

    cr_assert(eq(int, dw_sim_proxy_remove_fault(px, "slow"), DW_OK));
    cr_assert(eq(int, dw_sim_proxy_remove_fault(px, "slow"), DW_ENOENT));
    fd = client(port);
    t0 = now_ms();
    cr_assert(eq(str, (char *)ask(fd, "PING", buf, sizeof buf), "PONG\n"));
    cr_assert(now_ms() - t0 < 190, "removed: %lld ms", now_ms() - t0);

    dw_sim_proxy_disconnect_all(px);
    hear(fd, buf, sizeof buf, 5000, NULL, &eof);
    cr_assert(eq(int, eof, 1), "every connection dropped");
    close(fd);

    dw_sim_proxy_refuse_for(px, 60000);
    errno = 0;
    cr_assert(eq(int, dw_sim_raw_connect(port, 0), -1), "refused");
    cr_assert(eq(int, errno, ECONNREFUSED), "%s", strerror(errno));
    dw_sim_proxy_refuse_for(px, 0);
    fd = client(port);
    cr_assert(eq(str, (char *)ask(fd, "PING", buf, sizeof buf), "PONG\n"));
    close(fd);

    uint64_t accepted = 0, served = 0;
    dw_sim_proxy_counts(px, &accepted, &served);
    cr_assert(eq(u64, accepted, 3), "the refused one never reached the proxy");
    cr_assert(eq(u64, served, 3));
    dw_sim_proxy_stop(px);
    dw_sim_loop_stop(loop);
    dw_sim_proxy_free(px);
    dw_sim_loop_free(loop);
}

/* A Telnet console through the proxy: the proxy speaks Telnet with each
 * side, a reply rule rewrites one answer, the prompt passes as it comes. */
Test(sim_proxy, telnet_console_reply_rewritten)
{
    const char *const dargs[] = {"--script", DW_SOURCE_DIR "/sim/examples/console.json", "--listen",
                                 "127.0.0.1:0", NULL};
    dw_sim_proc *dev = dw_sim_start(&dw_sim_fixture.peer, dargs, "the console");
    const char *faults = dw_sim_fixture_file(
        "telnet-faults",
        "{\"transport\": \"telnet\", \"framing\": {\"type\": \"sentinel\", \"sentinel\": "
        "\"\\r\\n\"}, \"prompt\": \"sc200> \", \"rules\": [{\"direction\": \"reply\", \"when\": "
        "{\"prefix\": \"SC-200 firmware\"}, \"reply\": \"firmware hidden\"}]}");
    char up[80];
    snprintf(up, sizeof up, "127.0.0.1:%u", (unsigned)dev->port);
    const char *const pargs[] = {"--proxy",  "--upstream",  up,       "--script", faults,
                                 "--listen", "127.0.0.1:0", "--seed", "1",        NULL};
    dw_sim_proc *px = dw_sim_start(&dw_sim_fixture.proc, pargs, "the proxy");

    dw_telnet_client_options o;
    dw_telnet_client_options_init(&o);
    o.tcp.host = "127.0.0.1";
    o.tcp.port = px->port;
    o.tcp.timeout_ms = 5000;
    o.banner = DW_TELNET_BANNER_PROMPT;
    o.banner_prompt = (const uint8_t *)"sc200> ";
    o.banner_prompt_len = 7;
    dw_client *c = dw_telnet_client_new(&o);
    dw_session *s = NULL;
    dw_error err;
    dw_error_clear(&err);
    cr_assert(eq(int, dw_client_connect(c, &s, &err), DW_OK), "banner and prompt: %s",
              dw_error_message(&err));
    dw_marshaller *m = dw_sentinel_marshaller_new("\r\n", 2);
    dw_buf reply = DW_BUF_INIT;
    const char *asks[][2] = {{"show version", "firmware hidden"}, {"show hostname", "sc200-lab"}};
    for (size_t i = 0; i < 2; i++) {
        char line[64];
        size_t n = (size_t)snprintf(line, sizeof line, "%s\r\n", asks[i][0]);
        cr_assert(eq(int, dw_session_send(s, line, n, &err), DW_OK));
        cr_assert(eq(int, dw_unmarshall(m, dw_session_iter(s), &reply, &err), DW_OK), "%s",
                  dw_error_message(&err));
        dw_buf_nul_terminate(&reply);
        cr_assert(eq(str, (char *)reply.data, (char *)asks[i][1]));
        uint8_t prompt[7];
        size_t got = 0;
        while (got < 7) { /* the prompt comes now, not with the next answer */
            const uint8_t *p;
            size_t len;
            cr_assert(eq(int, dw_iter_next(dw_session_iter(s), &p, &len), DW_OK));
            if (len > 7 - got) {
                dw_iter_unread(dw_session_iter(s), len - (7 - got));
                len = 7 - got;
            }
            memcpy(prompt + got, p, len);
            got += len;
        }
        cr_assert(eq(int, memcmp(prompt, "sc200> ", 7), 0));
    }
    dw_buf_free(&reply);
    dw_marshaller_free(m);
    dw_session_close(s);
    dw_client_free(c);
    cr_assert(eq(int, dw_sim_stop(px, 10000, NULL), 0), "%s", dw_sim_err_of(px));
}

Test(sim_proxy, simulator_prints_its_seed_when_a_rule_draws)
{
    dw_sim_proc *sim =
        dw_sim_serve("simseed",
                     "{\"rules\": [{\"when\": \"PING\", \"reply\": \"PONG\", \"delay\": "
                     "{\"distribution\": \"uniform\", \"min_ms\": 1, \"max_ms\": 2}}]}",
                     NULL);
    cr_assert(dw_sim_proc_wait_output(sim, 1, "(repeat this run's random draws with --seed ", 5000),
              "%s", dw_sim_err_of(sim));
    cr_assert(eq(int, dw_sim_stop(sim, 10000, NULL), 0));
    sim = dw_sim_serve("simnoseed", "{\"rules\": [{\"when\": \"PING\"}]}", NULL);
    cr_assert(eq(int, dw_sim_stop(sim, 10000, NULL), 0));
    cr_assert(strstr(dw_sim_err_of(sim), "seed") == NULL, "nothing random, no seed: %s",
              dw_sim_err_of(sim));
}

/* ---- the fuzz ------------------------------------------------------------------------- */

/* A swapped frame goes out after the next one; a split one in two pieces. */
Test(sim_proxy, fuzz_swaps_and_splits_frames)
{
    PROXIED("{\"network\": {\"reply\": {\"fuzz\": {\"mutations\": [\"swap\"], \"frames\": [1]}}}}",
            "5");
    say(fd, "PING");
    cr_assert(eq(sz, (size_t)hear(fd, buf, sizeof buf, 300, NULL, &eof), 0), "held: %s", buf);
    say(fd, "MEAS?");
    hear(fd, buf, sizeof buf, 5000, "PONG\n", &eof);
    cr_assert(eq(str, buf, "1.000\nPONG\n"));
    DONE();
}

/* Added through the control API: connections opened afterwards get it;
 * each mutation is in the proxy's journal with its frame number. */
Test(sim_proxy, fuzz_through_the_control_api_and_the_journal)
{
    rig r;
    rig_start_with(&r, "{}", "--control", "127.0.0.1:0");
    uint16_t cp = dw_test_control_port(r.px, 10000);
    cr_assert(cp != 0, "no control line:\n%s", (const char *)r.px->out.data);
    dw_test_http_reply h;
    int st = control(cp, "POST", "/devices/default/faults",
                     "{\"reply\": {\"fuzz\": {\"mutations\": [\"duplicate\"], \"every\": 2}}}", &h);
    cr_assert(eq(int, st, 201), "%s", h.body);
    cr_assert(strstr(h.body, "reply.fuzz") != NULL, "%s", h.body);
    dw_test_http_reply_free(&h);
    int fd = client(r.px->port), eof;
    char buf[256];
    cr_assert(eq(str, (char *)ask(fd, "PING", buf, sizeof buf), "PONG\n"));
    say(fd, "PING");
    hear(fd, buf, sizeof buf, 5000, "PONG\nPONG\n", &eof);
    cr_assert(eq(str, buf, "PONG\nPONG\n"), "frame 2 twice");
    cr_assert(eq(int, control(cp, "GET", "/devices/default/journal", NULL, &h), 200));
    cr_assert(strstr(h.body, "reply.fuzz frame 2: duplicate") != NULL, "%s", h.body);
    cr_assert(strstr(h.body, "\"fault\":\"fuzz\"") != NULL, "%s", h.body);
    cr_assert(strstr(h.body, "frame 1") == NULL, "%s", h.body);
    dw_test_http_reply_free(&h);
    close(fd);
    rig_stop(&r);
}

/* reset_peer: after its time, both sides get a reset (RST). */
Test(sim_proxy, reset_peer)
{
    PROXIED("{\"network\": {\"reply\": {\"reset_peer\": {\"after_ms\": 300}}}}", "1");
    long long t0 = now_ms();
    cr_assert(eq(str, (char *)ask(fd, "PING", buf, sizeof buf), "PONG\n"));
    ssize_t n = hear(fd, buf, sizeof buf, 5000, NULL, &eof);
    cr_assert(eq(int, eof, 1));
    cr_assert(eq(sz, (size_t)n, (size_t)-ECONNRESET), "a reset, not a close: %zd", n);
    cr_assert(now_ms() - t0 >= 280, "after %lld ms", now_ms() - t0);
    DONE();
}

/* ---- a UDP device, datagram by datagram ------------------------------------------------ */

static int udp_client(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0, "socket: %s", strerror(errno));
    return fd;
}

/* One datagram to 127.0.0.1:port, the reply (within 3 s, "" if none) in
 * buf; the round trip in ms. */
static long long udp_ask(int fd, uint16_t port, const char *req, char *buf, size_t cap)
{
    struct sockaddr_in to = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    long long t0 = now_ms();
    cr_assert(eq(sz, (size_t)sendto(fd, req, strlen(req), 0, (struct sockaddr *)&to, sizeof to),
                 strlen(req)));
    struct pollfd p = {fd, POLLIN, 0};
    buf[0] = 0;
    if (poll(&p, 1, 3000) == 1) {
        ssize_t n = recv(fd, buf, cap - 1, 0);
        buf[n > 0 ? n : 0] = 0;
    }
    return now_ms() - t0;
}

/* Each client address gets a socket of its own to the device and its own
 * replies; network faults act on whole datagrams, also when added at run
 * time; a peer silent for the idle time is forgotten; the transcript holds
 * the frames inside the datagrams both ways. */
Test(sim_proxy, udp_datagram_by_datagram)
{
    dw_sim_proc *dev = &dw_sim_fixture.peer;
    int rc = dw_sim_proc_serve(dev, "udpdev",
                               "{\"transport\": \"udp\", \"rules\": ["
                               " {\"when\": \"PING\", \"reply\": \"PONG\"},"
                               " {\"when\": \"MEAS?\", \"reply\": \"1.000\"}]}",
                               NULL, NULL);
    cr_assert(eq(int, rc, DW_OK), "device: %s\n%s", dw_strerror(rc), dw_sim_err_of(dev));
    dw_sim_loop *loop = NULL;
    dw_error err;
    dw_error_clear(&err);
    cr_assert(eq(int, dw_sim_loop_new(&loop, &err), DW_OK));
    const char *tpath = dw_sim_fixture_transcript();
    dw_sim_transcript *tr = NULL;
    cr_assert(eq(int, dw_sim_transcript_open(tpath, &tr, &err), DW_OK));
    dw_sim_proxy_options o;
    dw_sim_proxy_options_init(&o);
    o.upstream_host = "127.0.0.1";
    o.upstream_port = dev->port;
    o.loop = loop;
    o.seed = 1;
    o.transcript = tr;
    o.udp_idle_ms = 400;

    const char *bad =
        "{\"transport\": \"udp\", \"rules\": [{\"when\": \"PING\", \"fault\": \"drop\"}]}";
    dw_sim_script *script = NULL;
    cr_assert(
        eq(int, dw_sim_script_load_buffer("faults.json", bad, strlen(bad), &script, &err), DW_OK));
    dw_sim_proxy *px = NULL;
    cr_assert(eq(int, dw_sim_proxy_new(&o, script, &px, &err), DW_EINVAL), "rules over udp");
    cr_assert(strstr(dw_error_message(&err), "not rules") != NULL, "%s", dw_error_message(&err));
    dw_sim_script_free(script);

    const char *good = "{\"transport\": \"udp\"}";
    cr_assert(eq(int, dw_sim_script_load_buffer("faults.json", good, strlen(good), &script, &err),
                 DW_OK));
    cr_assert(eq(int, dw_sim_proxy_new(&o, script, &px, &err), DW_OK), "%s",
              dw_error_message(&err));
    cr_assert(eq(int, dw_sim_loop_start(loop, &err), DW_OK));
    uint16_t port = (uint16_t)atoi(strrchr(dw_sim_proxy_address(px), ':') + 1);
    int a = udp_client(), b = udp_client();
    char buf[256];
    cr_assert(udp_ask(a, port, "PING\n", buf, sizeof buf) < 300);
    cr_assert(eq(str, buf, "PONG\n"));
    udp_ask(b, port, "MEAS?\n", buf, sizeof buf);
    cr_assert(eq(str, buf, "1.000\n"), "the second client's own reply");

    dw_sim_toxic t = {.name = "reply.latency",
                      .kind = DW_SIM_TOXIC_LATENCY,
                      .direction = DW_SIM_DIR_REPLY,
                      .probability = 1,
                      .delay = {DW_SIM_DIST_FIXED, 200, 0}};
    cr_assert(eq(int, dw_sim_proxy_add_fault(px, &t, &err), DW_OK), "%s", dw_error_message(&err));
    long long ms = udp_ask(a, port, "PING\n", buf, sizeof buf);
    cr_assert(eq(str, buf, "PONG\n"));
    cr_assert(ms >= 190, "the latency did not reach the open peer: %lld ms", ms);
    cr_assert(eq(int, dw_sim_proxy_remove_fault(px, "reply.latency"), DW_OK));
    ms = udp_ask(a, port, "PING\n", buf, sizeof buf);
    cr_assert(ms < 190, "removed: %lld ms", ms);
    dw_sim_toxic sl = {.name = "reply.slicer",
                       .kind = DW_SIM_TOXIC_SLICER,
                       .direction = DW_SIM_DIR_REPLY,
                       .probability = 1,
                       .avg_size = 1};
    cr_assert(eq(int, dw_sim_proxy_add_fault(px, &sl, &err), DW_EINVAL), "a datagram is not cut");

    uint64_t accepted = 0, served = 0;
    dw_sim_proxy_counts(px, &accepted, &served);
    cr_assert(eq(u64, served, 2), "one peer per client address");
    usleep(900 * 1000); /* past the idle time: both peers forgotten */
    udp_ask(a, port, "PING\n", buf, sizeof buf);
    cr_assert(eq(str, buf, "PONG\n"), "a forgotten peer comes back as a new one");
    dw_sim_proxy_counts(px, &accepted, &served);
    cr_assert(eq(u64, served, 3));
    close(a);
    close(b);
    dw_sim_proxy_stop(px);
    dw_sim_loop_stop(loop);
    dw_sim_proxy_free(px);
    dw_sim_loop_free(loop);
    dw_sim_transcript_close(tr);
    cr_assert(eq(int, lines_with(tpath, "\"dir\":\"close\"", "\"conn\":"), 3));
    cr_assert(eq(int, lines_with(tpath, "\"dir\":\"in\"", "\"text\":\"PING\""), 4));
    cr_assert(eq(int, lines_with(tpath, "\"dir\":\"in\"", "\"text\":\"MEAS?\""), 1));
    cr_assert(eq(int, lines_with(tpath, "\"dir\":\"out\"", "\"text\":\"PONG\""), 4));
    cr_assert(eq(int, lines_with(tpath, "\"conn\":2,\"dir\":\"out\"", "\"text\":\"1.000\""), 1));
}
