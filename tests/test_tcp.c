/* TCP transport: client sessions, the server's concurrency, limits, errors
 * and clean stops. Servers bind 127.0.0.1 (or ::1) on port 0. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "support.h"

/* ---- a logger that keeps every message, to assert on what was logged --- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static dw_buf log_text;

static void capture(void *user, dw_log_level level, const char *message)
{
    (void)user;
    pthread_mutex_lock(&log_lock);
    dw_buf_printf(&log_text, "%s: %s\n", dw_log_level_name(level), message);
    pthread_mutex_unlock(&log_lock);
}

static const dw_logger test_logger = {capture, NULL, DW_LOG_DEBUG};

static int logged(const char *needle)
{
    pthread_mutex_lock(&log_lock);
    dw_buf_nul_terminate(&log_text);
    int found = log_text.data && strstr((const char *)log_text.data, needle) != NULL;
    pthread_mutex_unlock(&log_lock);
    return found;
}

/* Wait (no deadline: the suite's .timeout is the guard) until `needle` is
 * logged; the server logs after the client has already seen the outcome. */
static void wait_logged(const char *needle)
{
    while (!logged(needle))
        usleep(2000);
}

/* ---- the test server: one "\n"-terminated command per request -------- */

static dw_marshaller *lines; /* "\n", max frame 1024 */

typedef struct blast_arg {
    dw_conn *c;
    int k;
} blast_arg;

#define BLAST_THREADS 4
#define BLAST_LINES   200
#define BLAST_WIDTH   3000
#define FLOOD_BYTES   ((size_t)64 << 20)

static void *blast_main(void *p)
{
    blast_arg *a = p;
    char *line = malloc(BLAST_WIDTH + 32);
    for (int i = 0; i < BLAST_LINES; i++) {
        int n = snprintf(line, 32, "T%d:%d:", a->k, i);
        memset(line + n, 'a' + a->k, BLAST_WIDTH);
        line[n + BLAST_WIDTH] = '\n';
        if (dw_conn_write(a->c, line, (size_t)n + BLAST_WIDTH + 1) != DW_OK)
            break;
    }
    free(line);
    return NULL;
}

static int cmd_request(void *user, dw_conn *c, dw_iter *in, dw_buf *out)
{
    (void)user;
    dw_buf req = DW_BUF_INIT;
    int rc = dw_unmarshall(lines, in, &req, NULL);
    if (rc != DW_OK) {
        dw_buf_free(&req);
        return rc;
    }
    dw_buf_nul_terminate(&req);
    const char *r = req.data ? (const char *)req.data : "";
    if (strcmp(r, "silent") == 0) {
        /* no response */
    } else if (strcmp(r, "fail") == 0) {
        rc = DW_EHANDLER;
    } else if (strcmp(r, "reset") == 0) {
        dw_conn_close(c, 1);
    } else if (strcmp(r, "close") == 0) {
        dw_conn_close(c, 0);
    } else if (strncmp(r, "double ", 7) == 0) {
        dw_buf_printf(out, "%s\n%s\n", r + 7, r + 7);
    } else if (strncmp(r, "sleep ", 6) == 0) {
        usleep((useconds_t)atoi(r + 6) * 1000);
        dw_buf_append_str(out, "slept\n");
    } else if (strcmp(r, "flood") == 0) {
        /* A response far larger than the socket buffers. */
        if (dw_buf_reserve(out, FLOOD_BYTES) == DW_OK) {
            memset(out->data, 'f', FLOOD_BYTES);
            out->len = FLOOD_BYTES;
        }
    } else if (strcmp(r, "blast") == 0) {
        pthread_t t[BLAST_THREADS];
        blast_arg a[BLAST_THREADS];
        for (int k = 0; k < BLAST_THREADS; k++) {
            a[k].c = c;
            a[k].k = k;
            pthread_create(&t[k], NULL, blast_main, &a[k]);
        }
        for (int k = 0; k < BLAST_THREADS; k++)
            pthread_join(t[k], NULL);
        dw_buf_append_str(out, "done\n");
    } else {
        dw_buf_append(out, req.data, req.len);
        dw_buf_append_byte(out, '\n');
    }
    dw_buf_free(&req);
    return rc;
}

static const dw_server_handler cmd_handler = {NULL, cmd_request, NULL, NULL};

static dw_tcp_server *server;

static dw_tcp_server *start_server(dw_tcp_server_options *o)
{
    dw_tcp_server_options defaults;
    if (!o) {
        dw_tcp_server_options_init(&defaults);
        o = &defaults;
    }
    o->logger = &test_logger;
    dw_error err;
    dw_tcp_server *s = NULL;
    int rc = dw_tcp_server_new(o, &cmd_handler, &s, &err);
    cr_assert(eq(int, rc, DW_OK), "server: %s", dw_error_message(&err));
    rc = dw_tcp_server_start(s, &err);
    cr_assert(eq(int, rc, DW_OK), "start: %s", dw_error_message(&err));
    return s;
}

static void setup(void)
{
    lines = dw_sentinel_marshaller_new("\n", 1);
    dw_marshaller_set_max_frame(lines, 1024);
    server = start_server(NULL);
}

static void teardown(void)
{
    dw_tcp_server_free(server);
    server = NULL;
    dw_marshaller_free(lines);
    dw_buf_free(&log_text);
}

static dw_client *client_to(const char *host, uint16_t port, int timeout_ms)
{
    dw_tcp_client_options o;
    dw_tcp_client_options_init(&o);
    o.host = host;
    o.port = port;
    o.timeout_ms = timeout_ms;
    dw_client *c = dw_tcp_client_new(&o);
    cr_assert(c != NULL);
    return c;
}

static dw_session *open_session(dw_client *c)
{
    dw_error err;
    dw_session *s = NULL;
    int rc = dw_client_connect(c, &s, &err);
    cr_assert(eq(int, rc, DW_OK), "connect: %s", dw_error_message(&err));
    return s;
}

/* Send "line\n" and read one "\n"-terminated response into resp. */
static int round_trip(dw_session *s, const char *line, dw_buf *resp)
{
    dw_buf req = DW_BUF_INIT;
    dw_buf_printf(&req, "%s\n", line);
    dw_iter *it = NULL;
    int rc = dw_session_request(s, req.data, req.len, &it, NULL);
    dw_buf_free(&req);
    if (rc != DW_OK)
        return rc;
    rc = dw_unmarshall(lines, it, resp, NULL);
    if (rc == DW_OK)
        dw_buf_nul_terminate(resp);
    return rc;
}

static void expect_echo(dw_session *s, const char *line)
{
    dw_buf resp = DW_BUF_INIT;
    int rc = round_trip(s, line, &resp);
    cr_assert(eq(int, rc, DW_OK), "round trip '%s': %s", line, dw_strerror(rc));
    cr_assert(eq(str, (char *)resp.data, (char *)line), "echo of '%s'", line);
    dw_buf_free(&resp);
}

/* The server still serves a fresh client. */
static void expect_still_serving(dw_tcp_server *s)
{
    dw_client *c = client_to("127.0.0.1", dw_tcp_server_port(s), 5000);
    dw_session *ss = open_session(c);
    expect_echo(ss, "still there?");
    dw_session_close(ss);
    dw_client_free(c);
}

static int raw_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(eq(int, connect(fd, (struct sockaddr *)&a, sizeof a), 0), "raw connect");
    return fd;
}

TestSuite(tcp, .init = setup, .fini = teardown, .timeout = 60);

Test(tcp, port_zero_is_read_back)
{
    uint16_t port = dw_tcp_server_port(server);
    cr_assert(port != 0, "the kernel's port is read back");
    char want[32];
    snprintf(want, sizeof want, "127.0.0.1:%u", port);
    cr_assert(eq(str, (char *)dw_tcp_server_address(server), want));
}

Test(tcp, round_trips_and_two_sessions_from_one_client)
{
    dw_client *c = client_to("127.0.0.1", dw_tcp_server_port(server), 5000);
    for (int session = 0; session < 2; session++) {
        dw_session *s = open_session(c);
        char want[32];
        snprintf(want, sizeof want, "127.0.0.1:%u", dw_tcp_server_port(server));
        cr_assert(eq(str, (char *)dw_session_peer(s), want));
        for (int i = 0; i < 3; i++) {
            char line[32];
            snprintf(line, sizeof line, "session %d request %d", session, i);
            expect_echo(s, line);
        }
        dw_session_close(s);
    }
    dw_client_free(c);
    cr_assert(eq(u64, dw_tcp_server_accepted(server), 2));
}

Test(tcp, localhost_name_resolves)
{
    dw_client *c = client_to("localhost", dw_tcp_server_port(server), 5000);
    dw_error err;
    dw_session *s = NULL;
    int rc = dw_client_connect(c, &s, &err);
    if (rc != DW_OK) {
        dw_client_free(c);
        cr_skip("localhost does not resolve to this server here: %s", dw_error_message(&err));
    }
    expect_echo(s, "by name");
    dw_session_close(s);
    dw_client_free(c);
}

Test(tcp, leftover_bytes_stay_for_the_next_request)
{
    dw_client *c = client_to("127.0.0.1", dw_tcp_server_port(server), 5000);
    dw_session *s = open_session(c);
    /* One request, two response lines in one write: the second must be
     * what the next read returns. */
    dw_buf resp = DW_BUF_INIT;
    cr_assert(eq(int, round_trip(s, "double twin", &resp), DW_OK));
    cr_assert(eq(str, (char *)resp.data, "twin"));
    cr_assert(eq(int, dw_unmarshall(lines, dw_session_iter(s), &resp, NULL), DW_OK));
    dw_buf_nul_terminate(&resp);
    cr_assert(eq(str, (char *)resp.data, "twin"), "the early second line was kept");
    expect_echo(s, "after");
    dw_buf_free(&resp);
    dw_session_close(s);
    dw_client_free(c);
}

Test(tcp, pipelined_requests_are_answered_in_order)
{
    dw_client *c = client_to("127.0.0.1", dw_tcp_server_port(server), 5000);
    dw_session *s = open_session(c);
    dw_buf all = DW_BUF_INIT;
    for (int i = 0; i < 200; i++)
        dw_buf_printf(&all, "pipelined %d\n", i);
    cr_assert(eq(int, dw_session_send(s, all.data, all.len, NULL), DW_OK));
    dw_buf resp = DW_BUF_INIT;
    for (int i = 0; i < 200; i++) {
        int rc = dw_unmarshall(lines, dw_session_iter(s), &resp, NULL);
        cr_assert(eq(int, rc, DW_OK), "response %d: %s", i, dw_strerror(rc));
        dw_buf_nul_terminate(&resp);
        char want[32];
        snprintf(want, sizeof want, "pipelined %d", i);
        cr_assert(eq(str, (char *)resp.data, want), "response %d in order", i);
    }
    dw_buf_free(&resp);
    dw_buf_free(&all);
    dw_session_close(s);
    dw_client_free(c);
}

Test(tcp, silent_server_times_out_and_others_are_served)
{
    dw_client *c = client_to("127.0.0.1", dw_tcp_server_port(server), 200);
    dw_session *s = open_session(c);
    dw_buf resp = DW_BUF_INIT;
    int rc = round_trip(s, "silent", &resp);
    cr_assert(eq(int, rc, DW_ETIMEDOUT), "a server that never answers: got %s", dw_err_name(rc));
    /* The timeout is not final: a later answer is still read. */
    expect_echo(s, "late");
    expect_still_serving(server);
    dw_buf_free(&resp);
    dw_session_close(s);
    dw_client_free(c);
}

Test(tcp, timeout_error_names_the_address_through_the_app_layer)
{
    dw_client *c = client_to("127.0.0.1", dw_tcp_server_port(server), 200);
    dw_app_client *app = dw_app_client_new(c, lines, lines);
    dw_app_session *s = NULL;
    cr_assert(eq(int, dw_app_client_connect(app, &s, NULL), DW_OK));
    dw_buf resp = DW_BUF_INIT;
    dw_error err;
    int rc = dw_app_session_send_receive_bytes(s, "silent", 6, &resp, &err);
    cr_assert(eq(int, rc, DW_ETIMEDOUT));
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%u: ", dw_tcp_server_port(server));
    cr_assert(strstr(dw_error_message(&err), want) != NULL, "message names the server: %s",
              dw_error_message(&err));
    dw_buf_free(&resp);
    dw_app_session_close(s);
    dw_app_client_free(app);
    dw_client_free(c);
}

Test(tcp, refused_connection_names_the_address)
{
    /* A bound socket that does not listen: connecting to it is refused. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(eq(int, bind(fd, (struct sockaddr *)&a, sizeof a), 0));
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    uint16_t port = ntohs(a.sin_port);

    dw_client *c = client_to("127.0.0.1", port, 1000);
    dw_session *s = NULL;
    dw_error err;
    int rc = dw_client_connect(c, &s, &err);
    cr_assert(eq(int, rc, DW_ECONNREFUSED), "got %s", dw_err_name(rc));
    cr_assert(s == NULL);
    char want[80];
    snprintf(want, sizeof want, "connect 127.0.0.1:%u: Connection refused", port);
    cr_assert(eq(str, (char *)dw_error_message(&err), want));
    dw_client_free(c);
    close(fd);
}

Test(tcp, unknown_host_is_not_found)
{
    dw_client *c = client_to("no-such-host.invalid", 5025, 1000);
    dw_session *s = NULL;
    dw_error err;
    int rc = dw_client_connect(c, &s, &err);
    cr_assert(rc < 0, "connect to an unknown host fails");
    cr_assert(strstr(dw_error_message(&err), "no-such-host.invalid:5025") != NULL, "%s",
              dw_error_message(&err));
    dw_client_free(c);
}

Test(tcp, connect_timeout)
{
    /* A listener with a full accept queue drops SYNs, so connect hangs
     * until the client's connect timeout. */
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(eq(int, bind(l, (struct sockaddr *)&a, sizeof a), 0));
    cr_assert(eq(int, listen(l, 0), 0));
    socklen_t len = sizeof a;
    getsockname(l, (struct sockaddr *)&a, &len);
    int fill[4];
    for (int i = 0; i < 4; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        connect(fill[i], (struct sockaddr *)&a, sizeof a);
    }
    usleep(50000);
    dw_tcp_client_options o;
    dw_tcp_client_options_init(&o);
    o.host = "127.0.0.1";
    o.port = ntohs(a.sin_port);
    o.connect_timeout_ms = 300;
    dw_client *c = dw_tcp_client_new(&o);
    dw_session *s = NULL;
    dw_error err;
    int rc = dw_client_connect(c, &s, &err);
    if (rc == DW_OK)
        dw_session_close(s);
    for (int i = 0; i < 4; i++)
        close(fill[i]);
    close(l);
    dw_client_free(c);
    if (rc == DW_OK)
        cr_skip("this kernel accepted past a full backlog; cannot provoke a connect timeout");
    cr_assert(eq(int, rc, DW_ETIMEDOUT), "got %s: %s", dw_err_name(rc), dw_error_message(&err));
    cr_assert(strstr(dw_error_message(&err), "connect 127.0.0.1:") != NULL, "%s",
              dw_error_message(&err));
}

Test(tcp, client_closing_mid_frame_is_logged_and_forgotten)
{
    int fd = raw_connect(dw_tcp_server_port(server));
    cr_assert(eq(long, (long)send(fd, "half a li", 9, 0), 9L));
    close(fd);
    wait_logged("lost: stream ended inside a frame");
    expect_still_serving(server);
}

Test(tcp, oversized_frame_closes_that_connection_only)
{
    dw_client *c = client_to("127.0.0.1", dw_tcp_server_port(server), 5000);
    dw_session *s = open_session(c);
    dw_session *other = open_session(c);
    expect_echo(other, "before");
    char big[4096];
    memset(big, 'x', sizeof big);
    dw_session_send(s, big, sizeof big, NULL); /* may fail if the reset came first */
    dw_buf resp = DW_BUF_INIT;
    int rc = dw_unmarshall(lines, dw_session_iter(s), &resp, NULL);
    cr_assert(rc == DW_EOF || rc == DW_ECONNRESET, "the server dropped it: got %s",
              dw_err_name(rc));
    wait_logged("frame exceeds the maximum frame size");
    expect_echo(other, "after");
    expect_still_serving(server);
    dw_buf_free(&resp);
    dw_session_close(s);
    dw_session_close(other);
    dw_client_free(c);
}

Test(tcp, handler_error_closes_that_connection_only)
{
    dw_client *c = client_to("127.0.0.1", dw_tcp_server_port(server), 5000);
    dw_session *s = open_session(c);
    dw_session *other = open_session(c);
    expect_echo(other, "before");
    dw_buf resp = DW_BUF_INIT;
    int rc = round_trip(s, "fail", &resp);
    cr_assert(eq(int, rc, DW_EOF), "the connection was closed: got %s", dw_err_name(rc));
    wait_logged("handler failed (DW_EHANDLER)");
    expect_echo(other, "after");
    dw_buf_free(&resp);
    dw_session_close(s);
    dw_session_close(other);
    dw_client_free(c);
}

Test(tcp, conn_close_clean_and_reset)
{
    dw_client *c = client_to("127.0.0.1", dw_tcp_server_port(server), 5000);
    dw_session *s = open_session(c);
    dw_buf resp = DW_BUF_INIT;
    cr_assert(eq(int, round_trip(s, "close", &resp), DW_EOF), "clean close: end of stream");
    dw_session_close(s);
    s = open_session(c);
    int rc = round_trip(s, "reset", &resp);
    cr_assert(eq(int, rc, DW_ECONNRESET), "reset: got %s", dw_err_name(rc));
    /* Writing to a reset connection is an error code, never SIGPIPE. */
    rc = dw_session_send(s, "x\n", 2, NULL);
    cr_assert(rc == DW_EPIPE || rc == DW_ECONNRESET || rc == DW_OK, "got %s", dw_err_name(rc));
    rc = dw_session_send(s, "x\n", 2, NULL);
    cr_assert(rc == DW_EPIPE || rc == DW_ECONNRESET, "got %s", dw_err_name(rc));
    dw_buf_free(&resp);
    dw_session_close(s);
    dw_client_free(c);
}

Test(tcp, concurrent_conn_writes_never_interleave)
{
    dw_client *c = client_to("127.0.0.1", dw_tcp_server_port(server), 10000);
    dw_session *s = open_session(c);
    cr_assert(eq(int, dw_session_send(s, "blast\n", 6, NULL), DW_OK));
    dw_marshaller *wide = dw_sentinel_marshaller_new("\n", 1);
    dw_buf line = DW_BUF_INIT;
    int next[BLAST_THREADS] = {0};
    for (int n = 0; n < BLAST_THREADS * BLAST_LINES; n++) {
        int rc = dw_unmarshall(wide, dw_session_iter(s), &line, NULL);
        cr_assert(eq(int, rc, DW_OK), "line %d: %s", n, dw_strerror(rc));
        dw_buf_nul_terminate(&line);
        int k = -1, i = -1, off = 0;
        cr_assert(eq(int, sscanf((char *)line.data, "T%d:%d:%n", &k, &i, &off), 2), "line %d", n);
        cr_assert(k >= 0 && k < BLAST_THREADS);
        cr_assert(eq(int, i, next[k]), "thread %d's lines arrive in order", k);
        next[k]++;
        cr_assert(eq(sz, line.len - (size_t)off, (size_t)BLAST_WIDTH), "line %d is whole", n);
        for (size_t j = (size_t)off; j < line.len; j++)
            cr_assert(line.data[j] == 'a' + k, "line %d holds only thread %d's bytes", n, k);
    }
    cr_assert(eq(int, dw_unmarshall(wide, dw_session_iter(s), &line, NULL), DW_OK));
    dw_buf_nul_terminate(&line);
    cr_assert(eq(str, (char *)line.data, "done"));
    dw_buf_free(&line);
    dw_marshaller_free(wide);
    dw_session_close(s);
    dw_client_free(c);
}

Test(tcp, slow_silent_and_half_closed_clients_do_not_delay_others)
{
    uint16_t port = dw_tcp_server_port(server);
    /* silent: connected, sends nothing */
    int silent = raw_connect(port);
    /* slow: half a request, then nothing */
    int slow = raw_connect(port);
    send(slow, "incompl", 7, 0);
    /* half-closed: a request, then FIN; it still gets its answer */
    int half = raw_connect(port);
    send(half, "bye\n", 4, 0);
    shutdown(half, SHUT_WR);
    /* a handler busy for a while */
    dw_client *c = client_to("127.0.0.1", port, 5000);
    dw_session *busy = open_session(c);
    dw_session_send(busy, "sleep 1500\n", 11, NULL);

    dw_session *s = open_session(c);
    for (int i = 0; i < 100; i++) {
        char line[32];
        snprintf(line, sizeof line, "meanwhile %d", i);
        expect_echo(s, line);
    }
    char got[16] = {0};
    size_t n = 0;
    while (n < 4) {
        ssize_t r = recv(half, got + n, sizeof got - 1 - n, 0);
        cr_assert(r > 0, "the half-closed client gets its answer");
        n += (size_t)r;
    }
    cr_assert(eq(str, got, "bye\n"));
    cr_assert(eq(long, (long)recv(half, got, sizeof got, 0), 0L), "then end of stream");
    dw_buf resp = DW_BUF_INIT;
    cr_assert(eq(int, dw_unmarshall(lines, dw_session_iter(busy), &resp, NULL), DW_OK));
    dw_buf_free(&resp);
    close(silent);
    close(slow);
    close(half);
    dw_session_close(s);
    dw_session_close(busy);
    dw_client_free(c);
}

static void *stop_later(void *arg)
{
    usleep(100000);
    dw_tcp_server_stop(arg);
    return NULL;
}

Test(tcp, stop_with_clients_connected)
{
    dw_client *c = client_to("127.0.0.1", dw_tcp_server_port(server), 5000);
    dw_session *s[8];
    for (int i = 0; i < 8; i++) {
        s[i] = open_session(c);
        expect_echo(s[i], "hello");
    }
    /* One mid-frame, one waiting for a slow handler that must finish. */
    dw_session_send(s[0], "partial", 7, NULL);
    dw_session_send(s[1], "sleep 300\n", 10, NULL);
    pthread_t t;
    pthread_create(&t, NULL, stop_later, server);
    dw_buf resp = DW_BUF_INIT;
    int rc = dw_unmarshall(lines, dw_session_iter(s[1]), &resp, NULL);
    cr_assert(eq(int, rc, DW_OK), "the running handler finished its request: %s", dw_strerror(rc));
    for (int i = 0; i < 8; i++) {
        rc = dw_unmarshall(lines, dw_session_iter(s[i]), &resp, NULL);
        cr_assert(rc == DW_EOF || rc == DW_ECONNRESET, "client %d sees the server go: %s", i,
                  dw_err_name(rc));
    }
    pthread_join(t, NULL);
    dw_tcp_server_free(server); /* joins everything */
    server = NULL;
    dw_session *late = NULL;
    rc = dw_client_connect(c, &late, NULL);
    cr_assert(eq(int, rc, DW_ECONNREFUSED), "a stopped server accepts nothing: %s",
              dw_err_name(rc));
    for (int i = 0; i < 8; i++)
        dw_session_close(s[i]);
    dw_buf_free(&resp);
    dw_client_free(c);
}

static dw_tcp_server *signal_target;

static void on_signal(int sig)
{
    (void)sig;
    dw_tcp_server_stop(signal_target);
}

typedef struct run_arg {
    dw_tcp_server *s;
    int rc;
} run_arg;

static void *run_main(void *p)
{
    run_arg *a = p;
    a->rc = dw_tcp_server_run(a->s, NULL);
    return NULL;
}

Test(tcp, run_in_a_thread_and_stop_from_a_signal_handler)
{
    dw_tcp_server_options o;
    dw_tcp_server_options_init(&o);
    dw_tcp_server *s = NULL;
    cr_assert(eq(int, dw_tcp_server_new(&o, &cmd_handler, &s, NULL), DW_OK));
    signal_target = s;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGUSR1, &sa, NULL);
    run_arg a = {s, -1};
    pthread_t t;
    pthread_create(&t, NULL, run_main, &a);
    dw_client *c = client_to("127.0.0.1", dw_tcp_server_port(s), 5000);
    dw_session *ss = open_session(c);
    expect_echo(ss, "served by run()");
    kill(getpid(), SIGUSR1);
    pthread_join(t, NULL);
    cr_assert(eq(int, a.rc, DW_OK), "run returned after the signal");
    dw_buf resp = DW_BUF_INIT;
    int rc = dw_unmarshall(lines, dw_session_iter(ss), &resp, NULL);
    cr_assert(eq(int, rc, DW_EOF), "connection closed by the stop: %s", dw_err_name(rc));
    dw_buf_free(&resp);
    dw_session_close(ss);
    dw_client_free(c);
    dw_tcp_server_free(s);
}

Test(tcp, max_connections_refuses_politely)
{
    dw_tcp_server_options o;
    dw_tcp_server_options_init(&o);
    o.max_connections = 2;
    dw_tcp_server *s = start_server(&o);
    dw_client *c = client_to("127.0.0.1", dw_tcp_server_port(s), 5000);
    dw_session *a = open_session(c);
    dw_session *b = open_session(c);
    expect_echo(a, "a");
    expect_echo(b, "b");
    /* The kernel completes the handshake; the server then closes it. */
    dw_session *third = open_session(c);
    dw_buf resp = DW_BUF_INIT;
    int rc = round_trip(third, "third", &resp);
    cr_assert(rc == DW_EOF || rc == DW_ECONNRESET || rc == DW_EPIPE,
              "over the limit: closed, got %s", dw_err_name(rc));
    wait_logged("refused: connection limit (2) reached");
    dw_session_close(third);
    expect_echo(a, "a still served");
    dw_session_close(b);
    while (dw_tcp_server_connections(s) > 1)
        usleep(2000);
    dw_session *d = open_session(c);
    expect_echo(d, "a slot came free");
    dw_buf_free(&resp);
    dw_session_close(a);
    dw_session_close(d);
    dw_client_free(c);
    dw_tcp_server_free(s);
}

Test(tcp, idle_timeout_closes_silent_connections)
{
    dw_tcp_server_options o;
    dw_tcp_server_options_init(&o);
    o.idle_timeout_ms = 200;
    dw_tcp_server *s = start_server(&o);
    dw_client *c = client_to("127.0.0.1", dw_tcp_server_port(s), 10000);
    dw_session *a = open_session(c);
    expect_echo(a, "then silence");
    dw_buf resp = DW_BUF_INIT;
    int rc = dw_unmarshall(lines, dw_session_iter(a), &resp, NULL);
    cr_assert(eq(int, rc, DW_EOF), "the idle connection was closed: %s", dw_err_name(rc));
    wait_logged("idle for 200 ms, closing");
    while (dw_tcp_server_connections(s) > 0)
        usleep(2000);
    dw_session *b = open_session(c);
    expect_echo(b, "new connections still served");
    dw_buf_free(&resp);
    dw_session_close(a);
    dw_session_close(b);
    dw_client_free(c);
    dw_tcp_server_free(s);
}

Test(tcp, bind_error_names_the_address)
{
    dw_tcp_server_options o;
    dw_tcp_server_options_init(&o);
    o.port = dw_tcp_server_port(server);
    dw_tcp_server *s = NULL;
    dw_error err;
    int rc = dw_tcp_server_new(&o, &cmd_handler, &s, &err);
    cr_assert(eq(int, rc, DW_EADDRINUSE), "got %s", dw_err_name(rc));
    char want[80];
    snprintf(want, sizeof want, "bind 127.0.0.1:%u: Address already in use", o.port);
    cr_assert(eq(str, (char *)dw_error_message(&err), want));
}

Test(tcp, ipv6_loopback)
{
    dw_tcp_server_options o;
    dw_tcp_server_options_init(&o);
    o.host = "::1";
    o.logger = &test_logger;
    dw_tcp_server *s = NULL;
    dw_error err;
    int rc = dw_tcp_server_new(&o, &cmd_handler, &s, &err);
    if (rc != DW_OK)
        cr_skip("::1 is not available here: %s", dw_error_message(&err));
    cr_assert(eq(int, dw_tcp_server_start(s, NULL), DW_OK));
    char want[32];
    snprintf(want, sizeof want, "[::1]:%u", dw_tcp_server_port(s));
    cr_assert(eq(str, (char *)dw_tcp_server_address(s), want));
    dw_client *c = client_to("::1", dw_tcp_server_port(s), 5000);
    dw_session *ss = open_session(c);
    cr_assert(eq(str, (char *)dw_session_peer(ss), want));
    expect_echo(ss, "over IPv6");
    dw_session_close(ss);
    dw_client_free(c);
    dw_tcp_server_free(s);
}

Test(tcp, many_short_connections_are_reaped)
{
    dw_client *c = client_to("127.0.0.1", dw_tcp_server_port(server), 5000);
    for (int i = 0; i < 300; i++) {
        dw_session *s = open_session(c);
        expect_echo(s, "short");
        dw_session_close(s);
    }
    while (dw_tcp_server_connections(server) > 0)
        usleep(2000);
    cr_assert(eq(u64, dw_tcp_server_accepted(server), 300));
    dw_client_free(c);
}

Test(tcp, client_send_timeout)
{
    dw_client *c = client_to("127.0.0.1", dw_tcp_server_port(server), 200);
    dw_session *s = open_session(c);
    size_t n = FLOOD_BYTES;
    uint8_t *big = malloc(n);
    memset(big, 'x', n);
    /* The handler sleeps instead of reading: the buffers fill up. */
    cr_assert(eq(int, dw_session_send(s, "sleep 3000\n", 11, NULL), DW_OK));
    dw_error err;
    int rc = dw_session_send(s, big, n, &err);
    cr_assert(eq(int, rc, DW_ETIMEDOUT), "got %s", dw_err_name(rc));
    char want[64];
    snprintf(want, sizeof want, "send 127.0.0.1:%u: timed out after 200 ms",
             dw_tcp_server_port(server));
    cr_assert(eq(str, (char *)dw_error_message(&err), want));
    free(big);
    dw_session_close(s);
    dw_client_free(c);
}

Test(tcp, server_drops_a_client_that_does_not_read)
{
    dw_tcp_server_options o;
    dw_tcp_server_options_init(&o);
    o.write_timeout_ms = 200;
    dw_tcp_server *s = start_server(&o);
    dw_client *c = client_to("127.0.0.1", dw_tcp_server_port(s), 5000);
    dw_session *deaf = open_session(c);
    cr_assert(eq(int, dw_session_send(deaf, "flood\n", 6, NULL), DW_OK));
    wait_logged("the client is not reading (write timeout)");
    expect_still_serving(s);
    dw_session_close(deaf);
    dw_client_free(c);
    dw_tcp_server_free(s);
}

static void on_usr2(int sig)
{
    (void)sig;
}

typedef struct storm {
    pthread_t target;
    int stop;
} storm;

static void *storm_main(void *p)
{
    storm *st = p;
    while (!__atomic_load_n(&st->stop, __ATOMIC_RELAXED)) {
        pthread_kill(st->target, SIGUSR2);
        usleep(5000);
    }
    return NULL;
}

Test(tcp, signals_neither_break_nor_stretch_a_wait)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr2; /* no SA_RESTART: blocking calls see EINTR */
    sigaction(SIGUSR2, &sa, NULL);
    dw_client *c = client_to("127.0.0.1", dw_tcp_server_port(server), 300);
    dw_session *s = open_session(c);
    storm st = {pthread_self(), 0};
    pthread_t t;
    pthread_create(&t, NULL, storm_main, &st);
    expect_echo(s, "through the storm");
    dw_buf resp = DW_BUF_INIT;
    int rc = round_trip(s, "silent", &resp);
    __atomic_store_n(&st.stop, 1, __ATOMIC_RELAXED);
    pthread_join(t, NULL);
    cr_assert(eq(int, rc, DW_ETIMEDOUT), "interrupted waits still end in a timeout: got %s",
              dw_err_name(rc));
    dw_buf_free(&resp);
    dw_session_close(s);
    dw_client_free(c);
}
