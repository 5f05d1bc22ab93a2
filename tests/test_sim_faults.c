/* devwire-sim as a subprocess: scripted faults (close, reset, hang,
 * garbage, on the Nth match), bad input on the wire (oversized frames,
 * malformed frames, clients vanishing mid-frame) with the simulator still
 * serving the others, and the Telnet transport. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <devwire/devwire.h>
#include <devwire/telnet.h>

#include "sim_fixture.h"
#include "support.h"

/* Each test's simulator and files are dw_sim_fixture's: .fini stops and
 * removes them whatever happened. */
TestSuite(sim_faults, .init = dw_sim_fixture_init, .fini = dw_sim_fixture_fini, .timeout = 60);

#define LF dw_sentinel_marshaller_new("\n", 1)

static const char *const no_args[] = {NULL};

static dw_sim_proc *serve(const char *script)
{
    return dw_sim_serve("f", script, no_args);
}

static void open_client(dw_sim_client *c, dw_sim_proc *p, int timeout_ms)
{
    dw_sim_open_ok(c, p->port, LF, timeout_ms);
}

/* The simulator still answers a new client. */
static void still_serving(dw_sim_proc *p)
{
    dw_sim_client c;
    open_client(&c, p, 5000);
    dw_sim_ask_eq(&c, "PING", "pong");
    dw_sim_client_close(&c);
}

/* A raw socket to the simulator. */
static int raw_connect(uint16_t port)
{
    int fd = dw_sim_raw_connect(port, 0);
    cr_assert(fd >= 0, "raw connect");
    return fd;
}

static void raw_abort(int fd)
{
    struct linger l = {1, 0}; /* close with RST */
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

static const char fault_script[] =
    "{\"framing\": {\"type\": \"sentinel\", \"sentinel\": \"\\n\", \"max_frame\": 64},\n"
    " \"rules\": [\n"
    "  {\"when\": \"PING\", \"reply\": \"pong\"},\n"
    "  {\"when\": \"CLOSE\", \"fault\": \"close\"},\n"
    "  {\"when\": \"RESET\", \"fault\": \"reset\"},\n"
    "  {\"when\": \"HANG\", \"fault\": \"hang\"},\n"
    "  {\"when\": \"JUNK\", \"fault\": \"garbage\", \"garbage\": {\"hex\": \"de00adbeef\"}},\n"
    "  {\"when\": \"SECOND\", \"reply\": \"fine\", \"fault\": \"close\", \"fault_on\": 2},\n"
    "  {\"when\": \"LATE\", \"reply\": \"late\", \"delay_ms\": 100, \"fault\": \"reset\", "
    "\"fault_on\": 1}\n"
    " ]}\n";

Test(sim_faults, close)
{
    dw_sim_client c;
    dw_sim_proc *p = serve(fault_script);
    open_client(&c, p, 5000);
    dw_sim_ask_eq(&c, "PING", "pong");
    cr_assert(eq(int, dw_sim_client_send(&c, "CLOSE", 5), DW_OK));
    cr_expect(eq(int, dw_sim_client_recv(&c), DW_EOF), "a clean close: %s",
              dw_error_message(&c.err));
    dw_sim_client_close(&c);
    still_serving(p);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0));
}

Test(sim_faults, reset)
{
    dw_sim_client c;
    dw_sim_proc *p = serve(fault_script);
    open_client(&c, p, 5000);
    cr_assert(eq(int, dw_sim_client_send(&c, "RESET", 5), DW_OK));
    cr_expect(eq(int, dw_sim_client_recv(&c), DW_ECONNRESET), "an RST: %s",
              dw_error_message(&c.err));
    dw_sim_client_close(&c);
    still_serving(p);
}

Test(sim_faults, hang_reads_but_never_answers)
{
    dw_sim_client c;
    dw_sim_proc *p = serve(fault_script);
    open_client(&c, p, 300);
    dw_sim_ask_eq(&c, "PING", "pong");
    cr_assert(eq(int, dw_sim_client_send(&c, "HANG", 4), DW_OK));
    cr_expect(eq(int, dw_sim_client_recv(&c), DW_ETIMEDOUT), "no answer to HANG");
    cr_assert(eq(int, dw_sim_client_send(&c, "PING", 4), DW_OK));
    cr_expect(eq(int, dw_sim_client_recv(&c), DW_ETIMEDOUT), "nor to anything after it");
    still_serving(p); /* others are not affected */
    dw_sim_client_close(&c);
}

Test(sim_faults, garbage_then_serving_on)
{
    dw_sim_client c;
    dw_sim_proc *p = serve(fault_script);
    open_client(&c, p, 5000);
    cr_assert(eq(int, dw_sim_client_send(&c, "JUNK", 4), DW_OK));
    cr_assert(eq(int, dw_sim_client_recv_raw(&c, 5), DW_OK), "%s", dw_error_message(&c.err));
    static const uint8_t junk[] = {0xde, 0x00, 0xad, 0xbe, 0xef};
    cr_expect(memcmp(c.reply.data, junk, 5) == 0, "the garbage bytes, unframed");
    dw_sim_ask_eq(&c, "PING", "pong");
    dw_sim_client_close(&c);
}

Test(sim_faults, fault_on_the_nth_match_only)
{
    dw_sim_client c;
    dw_sim_proc *p = serve(fault_script);
    open_client(&c, p, 5000);
    dw_sim_ask_eq(&c, "SECOND", "fine");
    cr_assert(eq(int, dw_sim_client_send(&c, "SECOND", 6), DW_OK));
    cr_expect(eq(int, dw_sim_client_recv(&c), DW_EOF), "the second match closes");
    dw_sim_client_close(&c);
    open_client(&c, p, 5000);
    dw_sim_ask_eq(&c, "SECOND", "fine"); /* the third is fine again */
    cr_assert(eq(int, dw_sim_client_send(&c, "LATE", 4), DW_OK));
    cr_expect(eq(int, dw_sim_client_recv(&c), DW_ECONNRESET), "reset after the delay");
    dw_sim_client_close(&c);
    still_serving(p);
}

/* ---- bad input on the wire ------------------------------------------------ */

Test(sim_faults, oversized_frame_closes_that_connection_only)
{
    dw_sim_client good, bad;
    dw_sim_proc *p = serve(fault_script);
    open_client(&good, p, 5000);
    dw_sim_ask_eq(&good, "PING", "pong");
    open_client(&bad, p, 5000);
    char big[200];
    memset(big, 'A', sizeof big);
    cr_assert(eq(int, dw_session_send(bad.session, big, sizeof big, NULL), DW_OK));
    int rc = dw_sim_client_recv(&bad);
    cr_expect(rc == DW_EOF || rc == DW_ECONNRESET, "the oversized client is dropped: %s",
              dw_strerror(rc));
    dw_sim_client_close(&bad);
    dw_sim_ask_eq(&good, "PING", "pong"); /* the other connection goes on */
    still_serving(p);
    dw_sim_client_close(&good);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0));
    cr_expect(eq(sz, dw_sim_count(dw_sim_err_of(p), "closing it"), 1), "logged once:\n%s",
              dw_sim_err_of(p));
}

Test(sim_faults, malformed_json_line_closes_that_connection_only)
{
    static const char script[] = "{\"framing\": {\"type\": \"json-lines\"},\n"
                                 " \"rules\": [{\"when\": \"\\\"PING\\\"\", \"reply\": "
                                 "\"\\\"pong\\\"\"}]}";
    dw_sim_proc *p = serve(script);
    dw_sim_client good;
    cr_assert(eq(int, dw_sim_client_open(&good, p->port, dw_json_marshaller_new(), 5000), DW_OK));
    dw_sim_ask_eq(&good, "\"PING\"", "\"pong\"");
    int fd = raw_connect(p->port);
    const char junk[] = "{this is not json\n";
    cr_assert(eq(sz, (size_t)write(fd, junk, sizeof junk - 1), sizeof junk - 1));
    char b[16];
    ssize_t r = read(fd, b, sizeof b);
    cr_expect(r <= 0, "the malformed client is dropped (read %zd)", r);
    close(fd);
    dw_sim_ask_eq(&good, "\"PING\"", "\"pong\"");
    dw_sim_client_close(&good);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0));
    cr_expect(eq(sz, dw_sim_count(dw_sim_err_of(p), "closing it"), 1), "logged once:\n%s",
              dw_sim_err_of(p));
}

Test(sim_faults, clients_vanishing_mid_frame)
{
    dw_sim_client good;
    dw_sim_proc *p = serve(fault_script);
    open_client(&good, p, 5000);
    for (int i = 0; i < 20; i++) {
        int fd = raw_connect(p->port);
        cr_assert(eq(sz, (size_t)write(fd, "PIN", 3), 3));
        if (i % 2)
            raw_abort(fd); /* RST */
        else
            close(fd); /* FIN inside a frame */
    }
    /* A client that goes away right after connecting, and one that sends a
     * request and leaves before the (delayed) reply. */
    close(raw_connect(p->port));
    int fd = raw_connect(p->port);
    cr_assert(eq(sz, (size_t)write(fd, "LATE\n", 5), 5));
    raw_abort(fd);
    dw_sim_ask_eq(&good, "PING", "pong");
    still_serving(p);
    dw_sim_client_close(&good);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0), "clean exit; stderr:\n%s", dw_sim_err_of(p));
    cr_expect(strstr(dw_sim_err_of(p), "error") == NULL, "no errors logged:\n%s", dw_sim_err_of(p));
}

/* ---- Telnet ---------------------------------------------------------------- */

Test(sim_faults, telnet_transport_with_banner_prompt_and_0xff)
{
    static const char script[] =
        "{\"transport\": \"telnet\",\n"
        " \"framing\": {\"type\": \"sentinel\", \"sentinel\": \"\\r\\n\"},\n"
        " \"banner\": \"console ready\\r\\n> \", \"prompt\": \"> \",\n"
        " \"rules\": [{\"when\": \"ver\", \"reply\": \"2.0\"},\n"
        "            {\"when\": \"bin\", \"reply\": {\"hex\": \"41ff42\"}}]}";
    dw_sim_proc *p = serve(script);
    dw_telnet_client_options o;
    dw_telnet_client_options_init(&o);
    o.tcp.host = "127.0.0.1";
    o.tcp.port = p->port;
    o.tcp.timeout_ms = 5000;
    o.banner = DW_TELNET_BANNER_PROMPT;
    o.banner_prompt = "> ";
    o.banner_prompt_len = 2;
    dw_client *tc = dw_telnet_client_new(&o);
    cr_assert(tc != NULL);
    dw_marshaller *m = dw_sentinel_marshaller_new("\r\n", 2);
    dw_app_client *ac = dw_app_client_new(tc, m, m);
    dw_app_session *s = NULL;
    dw_error err;
    cr_assert(eq(int, dw_app_client_connect(ac, &s, &err), DW_OK), "%s", dw_error_message(&err));
    const dw_buf *banner = dw_telnet_session_banner(dw_app_session_transport(s));
    cr_assert(banner != NULL);
    cr_expect(eq(str, (char *)banner->data, "console ready\r\n> "));
    dw_buf reply = DW_BUF_INIT;
    cr_assert(eq(int, dw_app_session_send_receive_bytes(s, "ver", 3, &reply, &err), DW_OK), "%s",
              dw_error_message(&err));
    cr_expect(eq(sz, reply.len, 3));
    cr_expect(memcmp(reply.data, "2.0", 3) == 0);
    /* The prompt comes after the reply: read it raw. */
    dw_iter *it = dw_session_iter(dw_app_session_transport(s));
    const uint8_t *d;
    size_t n, got = 0;
    char prompt[3] = {0};
    while (got < 2) {
        cr_assert(eq(int, dw_iter_next(it, &d, &n), DW_OK));
        size_t take = n > 2 - got ? 2 - got : n;
        memcpy(prompt + got, d, take);
        dw_iter_unread(it, n - take);
        got += take;
    }
    cr_expect(eq(str, prompt, "> "));
    cr_assert(eq(int, dw_app_session_send_receive_bytes(s, "bin", 3, &reply, &err), DW_OK), "%s",
              dw_error_message(&err));
    static const uint8_t want[] = {0x41, 0xff, 0x42};
    cr_expect(eq(sz, reply.len, 3), "0xFF arrives once (escaped as IAC IAC on the wire)");
    cr_expect(memcmp(reply.data, want, 3) == 0);
    dw_buf_free(&reply);
    dw_app_session_close(s);
    dw_app_client_free(ac);
    dw_client_free(tc);
    dw_marshaller_free(m);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0));
}

/* Raw bytes to the simulator, then exactly the bytes `want` back. */
static void raw_exchange(dw_sim_client *c, const void *out, size_t n, const void *want, size_t wlen)
{
    if (n)
        cr_assert(eq(int, dw_session_send(c->session, out, n, &c->err), DW_OK), "%s",
                  dw_error_message(&c->err));
    cr_assert(eq(int, dw_sim_client_recv_raw(c, wlen), DW_OK), "%s", dw_error_message(&c->err));
    cr_expect(c->reply.len == wlen && memcmp(c->reply.data, want, wlen) == 0, "got \"%s\"",
              dw_test_esc(c->reply.data, c->reply.len));
}

/* A script's "telnet" options are offered on connect; CR NUL reaches the
 * framing as CR (a "\r" sentinel ends it, and no NUL starts the next
 * request) until the client sends in BINARY, when every byte is data. */
Test(sim_faults, telnet_options_and_cr_nul)
{
    static const char script[] =
        "{\"transport\": \"telnet\", \"telnet\": {\"will\": [\"echo\"], \"do\": [\"binary\"]},\n"
        " \"framing\": {\"request\": {\"type\": \"sentinel\", \"sentinel\": \"\\r\"},\n"
        "             \"response\": {\"type\": \"sentinel\", \"sentinel\": \"\\n\"}},\n"
        " \"rules\": [{\"when\": \"ver\", \"reply\": \"2.0\"},\n"
        "           {\"when\": {\"hex\": \"00 76 65 72\"}, \"reply\": \"nul\"}]}";
    dw_sim_proc *p = serve(script);
    dw_sim_client c;
    dw_sim_open_ok(&c, p->port, LF, 5000);
    static const uint8_t offers[] = {255, 253, 0, 255, 251, 1}; /* DO BINARY, WILL ECHO */
    raw_exchange(&c, NULL, 0, offers, sizeof offers);
    raw_exchange(&c, "ver\r\0ver\r\0", 10, "2.0\n2.0\n", 8);
    /* WILL BINARY agrees to our DO: the NUL is data from now on. */
    raw_exchange(&c, "\xff\xfb\x00ver\r\0ver\r", 12, "2.0\nnul\n", 8);
    dw_sim_client_close(&c);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0));
}

Test(sim_faults, ask_speaks_telnet)
{
    static const char script[] =
        "{\"transport\": \"telnet\",\n"
        " \"framing\": {\"type\": \"sentinel\", \"sentinel\": \"\\r\\n\"},\n"
        " \"banner\": \"hello\\r\\n> \", \"prompt\": \"> \",\n"
        " \"rules\": [{\"when\": \"ver\", \"reply\": \"2.0\"}]}";
    dw_sim_proc *p = dw_sim_serve("tn", script, no_args);
    const char *path = dw_sim_fixture.script;
    char addr[80];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", p->port);
    const char *const ask[] = {"--ask", addr, "--script", path, "ver", NULL};
    dw_sim_proc q;
    cr_expect(eq(int, dw_sim_proc_run(&q, ask, 10000), 0), "ask:\n%s", dw_sim_err_of(&q));
    cr_expect(eq(str, (char *)dw_sim_out_of(&q), "2.0\n"));
    dw_sim_proc_free(&q);
}

/* --idle-timeout closes a silent client (logged) and keeps serving others;
 * --max-connections refuses a client above the limit. */
Test(sim_faults, idle_timeout_and_connection_limit)
{
    static const char *const args[] = {
        "--idle-timeout", "300", "--max-connections", "2", "--log-level", "info", NULL};
    dw_sim_proc *p = dw_sim_serve("limits", fault_script, args);
    int rc;
    dw_sim_client silent, busy, third;
    open_client(&silent, p, 10000);
    open_client(&busy, p, 10000);
    dw_sim_ask_eq(&busy, "PING", "pong");
    open_client(&third, p, 10000); /* the third at once: refused */
    rc = dw_sim_client_recv(&third);
    cr_expect(rc == DW_EOF || rc == DW_ECONNRESET, "above the limit: %s", dw_strerror(rc));
    dw_sim_client_close(&third);
    rc = dw_sim_client_recv(&silent); /* says nothing: closed after 300 ms */
    cr_expect(eq(int, rc, DW_EOF), "silent client: %s", dw_strerror(rc));
    dw_sim_client_close(&silent);
    dw_sim_client_close(&busy);
    still_serving(p);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0));
    cr_expect(strstr(dw_sim_err_of(p), "idle for 300 ms") != NULL, "idle close logged:\n%s",
              dw_sim_err_of(p));
    const char *const bad[] = {"--script", "x.json", "--max-connections", "0", NULL};
    dw_sim_proc q;
    cr_expect(eq(int, dw_sim_proc_run(&q, bad, 10000), 2), "--max-connections 0 is refused");
    cr_expect(strstr(dw_sim_err_of(&q), "--max-connections 0") != NULL, "%s", dw_sim_err_of(&q));
    dw_sim_proc_free(&q);
}

/* "drop" answers nothing and serves on; "duplicate" writes the reply twice. */
Test(sim_faults, drop_and_duplicate_over_tcp)
{
    static const char script[] =
        "{\"rules\": [{\"when\": \"PING\", \"reply\": \"pong\"},\n"
        "            {\"when\": \"LOST\", \"reply\": \"never\", \"fault\": \"drop\"},\n"
        "            {\"when\": \"TWICE\", \"reply\": \"again\", \"fault\": \"duplicate\"}]}";
    dw_sim_proc *p = serve(script);
    dw_sim_client c;
    open_client(&c, p, 20000);
    cr_assert(eq(int, dw_sim_client_send(&c, "LOST", 4), DW_OK));
    dw_sim_ask_eq(&c, "PING", "pong"); /* the first reply after LOST is PING's */
    dw_sim_ask_eq(&c, "TWICE", "again");
    cr_assert(eq(int, dw_sim_client_recv(&c), DW_OK), "%s", dw_error_message(&c.err));
    cr_expect(eq(str, (char *)c.reply.data, "again"), "the second copy");
    dw_sim_ask_eq(&c, "PING", "pong");
    dw_sim_client_close(&c);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0));
}
