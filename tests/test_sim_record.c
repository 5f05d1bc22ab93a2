/* devwire-sim --record: a device (devwire-sim serving each example) is
 * recorded through the recorder by a scripted client, the recording is
 * replayed by devwire-sim, and the same client gets the same replies from
 * the replay. The recorder never changes what the client sees: the bytes
 * are those of the device at any split, and a close, a reset or a silence
 * of the device reaches the client as such. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <devwire/devwire.h>
#include <devwire/telnet.h>

#include "child.h"
#include "sim_fixture.h"
#include "http_client.h"
#include "support.h"

/* Each test's device, then its replay (dw_sim_fixture.peer), its recorder
 * (dw_sim_fixture.proc) and its files are the fixture's: .fini stops and
 * removes them whatever happened. */
TestSuite(sim_record, .init = dw_sim_fixture_init, .fini = dw_sim_fixture_fini, .timeout = 120);

#define EXAMPLES DW_SOURCE_DIR "/sim/examples"

/* ---- processes ---------------------------------------------------------------- */

/* The device: `script` served on port 0 (over TCP when tcp_override) in
 * `slot` of the fixture. */
static dw_sim_proc *device_start(dw_sim_proc *slot, const char *script, int tcp_override)
{
    if (!tcp_override) {
        const char *const args[] = {"--script", script, "--listen", "127.0.0.1:0", NULL};
        return dw_sim_start(slot, args, script);
    }
    char text[1024];
    snprintf(text, sizeof text,
             "[{\"name\": \"dev\", \"script\": \"%s\", \"listen\": \"127.0.0.1:0\", "
             "\"transport\": \"tcp\"}]",
             script);
    const char *const args[] = {"--bench", dw_sim_fixture_file("bench", text), NULL};
    return dw_sim_start(slot, args, script);
}

static char *addr_of(const dw_sim_proc *p)
{
    char *a = NULL;
    cr_assert(asprintf(&a, "%s:%u", p->host, (unsigned)p->port) > 0);
    return a;
}

/* The recorder in front of dev, framed as `base`, in dw_sim_fixture.proc. */
static dw_sim_proc *recorder_start(const dw_sim_proc *dev, const char *base, const char *out,
                                   const char *extra)
{
    char *up = addr_of(dev);
    const char *args[16] = {"--record", "--upstream", up,         "--script",   base,
                            "--out",    out,          "--listen", "127.0.0.1:0"};
    size_t n = 9;
    if (extra)
        args[n++] = extra;
    if (extra && strcmp(extra, "--control") == 0)
        args[n++] = "127.0.0.1:0";
    args[n] = NULL;
    dw_sim_proc *rec = dw_sim_start(&dw_sim_fixture.proc, args, "the recorder");
    free(up);
    return rec;
}

/* POST /record/stop: the recording is written and the recorder exits. */
static void stop_by_control(dw_sim_proc *rec, const char *out)
{
    uint16_t cp = dw_sim_control_of(rec, 10000);
    dw_test_http_reply h;
    int st = dw_test_http(cp, "POST", "/record/stop", NULL, "", 0, 10000, &h);
    cr_assert(eq(int, st, 200), "%d %s %s", st, h.error, h.body ? h.body : "");
    cr_assert(strstr(h.body, out) != NULL && strstr(h.body, "\"rules\"") != NULL, "%s", h.body);
    dw_test_http_reply_free(&h);
    cr_assert(eq(int, dw_sim_proc_wait(rec, 20000), 0), "the recorder did not stop:\n%s",
              dw_sim_err_of(rec));
}

/* Stop the recorder: its exit status; *err gets its stderr. */
static int recorder_status(dw_sim_proc *rec, const char **err)
{
    int st = dw_sim_stop(rec, 20000, NULL);
    *err = dw_sim_err_of(rec);
    return st;
}

/* Stop the recorder and check its script. */
static void recorder_finish(dw_sim_proc *rec, const char *out)
{
    int st = dw_sim_stop(rec, 20000, NULL);
    cr_assert(eq(int, st, 0), "the recorder exited %d:\n%s", st, dw_sim_err_of(rec));
    cr_assert(strstr((const char *)rec->out.data, "recorded ") != NULL, "%s",
              (const char *)rec->out.data);
    dw_sim_proc v;
    const char *const args[] = {"--validate", out, NULL};
    int vs = dw_sim_proc_run(&v, args, 20000);
    char *text = dw_sim_read_file(out, NULL);
    cr_assert(eq(int, vs, 0), "the recording does not validate:\n%s\n%s", dw_sim_err_of(&v),
              text ? text : "(no file)");
    free(text);
    dw_sim_proc_free(&v);
}

/* ---- a scripted client -------------------------------------------------------------- */

/* One request and the reply frames it is expected to get. */
typedef struct ask {
    const char *req; /* text, or hex when hex is set */
    size_t frames;
    int hex;
} ask;

/* Milliseconds converse waits before each request: a test whose readings
 * move with time sets it, so that two readings are not taken within one
 * millisecond (with quick ACKs a conversation runs that fast). */
static int pause_ms;

typedef struct conversation {
    const ask *asks;
    size_t n;
    const char *skip;   /* reply frames that start with this are unsolicited: skipped */
    const char *prompt; /* read after each answer (a console) */
    const char *banner; /* a Telnet banner ends with this */
    int telnet;
    dw_marshaller *req_m, *resp_m;
} conversation;

static size_t unhex(const char *h, uint8_t *out)
{
    size_t n = 0;
    for (; h[0] && h[1]; h += 2) {
        while (*h == ' ')
            h++;
        unsigned v;
        sscanf(h, "%2x", &v);
        out[n++] = (uint8_t)v;
    }
    return n;
}

static dw_client *client_for(const conversation *cv, uint16_t port)
{
    if (!cv->telnet) {
        dw_tcp_client_options o;
        dw_tcp_client_options_init(&o);
        o.host = "127.0.0.1";
        o.port = port;
        o.timeout_ms = 10000;
        return dw_tcp_client_new(&o);
    }
    dw_telnet_client_options o;
    dw_telnet_client_options_init(&o);
    o.tcp.host = "127.0.0.1";
    o.tcp.port = port;
    o.tcp.timeout_ms = 10000;
    o.banner = DW_TELNET_BANNER_PROMPT;
    o.banner_prompt = (const uint8_t *)cv->banner;
    o.banner_prompt_len = strlen(cv->banner);
    return dw_telnet_client_new(&o);
}

static void append_frame(dw_buf *log, const dw_buf *f)
{
    char line[64];
    snprintf(line, sizeof line, "[%zu]", f->len);
    dw_buf_append_str(log, line);
    dw_buf_append(log, f->data, f->len);
}

/* Talk to 127.0.0.1:port; everything received, frame by frame, into log. */
static void converse(const conversation *cv, uint16_t port, dw_buf *log)
{
    dw_client *c = client_for(cv, port);
    dw_session *s = NULL;
    dw_error err;
    dw_error_clear(&err);
    cr_assert(c != NULL);
    cr_assert(eq(int, dw_client_connect(c, &s, &err), DW_OK), "%s", dw_error_message(&err));
    dw_buf frame = DW_BUF_INIT, reply = DW_BUF_INIT;
    for (size_t i = 0; i < cv->n; i++) {
        uint8_t bin[256];
        const ask *a = &cv->asks[i];
        if (pause_ms)
            usleep((useconds_t)pause_ms * 1000);
        size_t len = a->hex ? unhex(a->req, bin) : strlen(a->req);
        dw_buf_clear(&frame);
        cr_assert(eq(
            int, dw_marshall(cv->req_m, a->hex ? bin : (const uint8_t *)a->req, len, &frame, &err),
            DW_OK));
        cr_assert(eq(int, dw_session_send(s, frame.data, frame.len, &err), DW_OK), "%s",
                  dw_error_message(&err));
        for (size_t k = 0; k < a->frames; k++) {
            int rc = dw_unmarshall(cv->resp_m, dw_session_iter(s), &reply, &err);
            cr_assert(eq(int, rc, DW_OK), "%s: reply %zu: %s", a->req, k, dw_error_message(&err));
            if (cv->skip && reply.len >= strlen(cv->skip) &&
                memcmp(reply.data, cv->skip, strlen(cv->skip)) == 0) {
                k--;
                continue;
            }
            append_frame(log, &reply);
        }
        for (size_t got = 0, want = cv->prompt ? strlen(cv->prompt) : 0; got < want;) {
            const uint8_t *p;
            size_t n;
            cr_assert(eq(int, dw_iter_next(dw_session_iter(s), &p, &n), DW_OK));
            if (n > want - got) {
                dw_iter_unread(dw_session_iter(s), n - (want - got));
                n = want - got;
            }
            cr_assert(eq(int, memcmp(p, cv->prompt + got, n), 0), "prompt expected");
            got += n;
        }
        dw_buf_append_str(log, "|");
    }
    dw_buf_free(&frame);
    dw_buf_free(&reply);
    dw_session_close(s);
    dw_client_free(c);
}

/* Record `script` served by devwire-sim (over TCP with tcp_override) with the
 * client, replay the recording, run the client again: the same replies
 * (appended to `seen` if not NULL). */
static void record_and_replay_seen(const char *script, int tcp_override, conversation *cv,
                                   const char *extra, dw_buf *seen)
{
    const char *out = dw_sim_fixture_file("recorded", "");
    dw_sim_proc *dev = device_start(&dw_sim_fixture.peer, script, tcp_override);
    const char *base = NULL;
    if (tcp_override) /* the base: the example's framing over TCP */
        base = dw_sim_fixture_file("base", "{\"transport\": \"tcp\", \"framing\": {\"type\": "
                                           "\"sentinel\", \"sentinel\": \"\\n\"}}");
    dw_sim_proc *rec = recorder_start(dev, base ? base : script, out, extra);
    dw_buf recorded = DW_BUF_INIT, replayed = DW_BUF_INIT;
    converse(cv, rec->port, &recorded);
    if (extra && strcmp(extra, "--control") == 0)
        stop_by_control(rec, out);
    recorder_finish(rec, out);

    /* The replay takes the device's place. */
    const char *const args[] = {"--script", out, "--listen", "127.0.0.1:0", NULL};
    dw_sim_proc *rep = tcp_override /* replayed over TCP too */
                           ? device_start(&dw_sim_fixture.peer, out, 1)
                           : dw_sim_start(&dw_sim_fixture.peer, args, "the replay");
    converse(cv, rep->port, &replayed);
    dw_buf_nul_terminate(&recorded);
    dw_buf_nul_terminate(&replayed);
    char *text = dw_sim_read_file(out, NULL);
    cr_assert(eq(sz, recorded.len, replayed.len), "recorded %s\nreplayed %s\nscript:\n%s",
              dw_test_esc(recorded.data, recorded.len), dw_test_esc(replayed.data, replayed.len),
              text);
    cr_assert(eq(int, memcmp(recorded.data, replayed.data, recorded.len), 0),
              "recorded %s\nreplayed %s\nscript:\n%s", dw_test_esc(recorded.data, recorded.len),
              dw_test_esc(replayed.data, replayed.len), text);
    free(text);
    if (seen)
        dw_buf_append(seen, recorded.data, recorded.len);
    dw_buf_free(&recorded);
    dw_buf_free(&replayed);
    dw_marshaller_free(cv->req_m);
    dw_marshaller_free(cv->resp_m);
}

static void record_and_replay(const char *script, int tcp_override, conversation *cv,
                              const char *extra)
{
    record_and_replay_seen(script, tcp_override, cv, extra, NULL);
}

static dw_marshaller *line(const char *s)
{
    return dw_sentinel_marshaller_new((const uint8_t *)s, strlen(s));
}

Test(sim_record, relay_binary_fixed_frames)
{
    static const ask asks[] = {{"aa010155", 1, 1}, {"aa100155", 1, 1}, {"aa010155", 1, 1},
                               {"aaff0055", 1, 1}, {"12345678", 1, 1}, {"aa110155", 1, 1},
                               {"aa010155", 1, 1}};
    conversation cv = {
        asks, 7, NULL, NULL, NULL, 0, dw_fixed_marshaller_new(4), dw_fixed_marshaller_new(4)};
    record_and_replay(EXAMPLES "/relay.json", 0, &cv, NULL);
}

Test(sim_record, stopped_through_the_control_api)
{
    static const ask asks[] = {{"aa010155", 1, 1}, {"aa100155", 1, 1}, {"aa110155", 1, 1}};
    conversation cv = {
        asks, 3, NULL, NULL, NULL, 0, dw_fixed_marshaller_new(4), dw_fixed_marshaller_new(4)};
    record_and_replay(EXAMPLES "/relay.json", 0, &cv, "--control");
}

Test(sim_record, console_telnet_session)
{
    static const ask asks[] = {{"show version", 1, 0},
                               {"set hostname lab2", 1, 0},
                               {"show hostname", 1, 0},
                               {"bogus", 1, 0},
                               {"help", 5, 0},
                               {"show ports", 2, 0},
                               {"set hostname lab3", 1, 0},
                               {"show hostname", 1, 0}};
    conversation cv = {asks, 8, NULL, "sc200> ", "sc200> ", 1, line("\r\n"), line("\r\n")};
    record_and_replay(EXAMPLES "/console.json", 0, &cv, NULL);
}

Test(sim_record, pdu_json_lines)
{
    static const ask asks[] = {{"{\"cmd\": \"identify\"}", 1, 0},
                               {"{\"cmd\": \"status\"}", 1, 0},
                               {"{\"cmd\": \"set\", \"outlet\": 1, \"on\": true}", 1, 0},
                               {"{\"cmd\": \"status\"}", 1, 0},
                               {"{\"cmd\": \"nope\"}", 1, 0}};
    conversation cv = {asks, 5, "{\"event\"", NULL, NULL, 0, line("\n"), line("\n")};
    record_and_replay(EXAMPLES "/pdu.json", 0, &cv, NULL);
}

Test(sim_record, sg_scpi_with_silent_commands)
{
    static const ask asks[] = {{"*IDN?", 1, 0},      {"FREQ 2500000", 0, 0}, {"FREQ?", 1, 0},
                               {"VOLT?", 0, 0},      {"SYST:ERR?", 1, 0},    {"SYST:ERR?", 1, 0},
                               {"TRAC:DATA?", 1, 0}, {"FREQ?", 1, 0}};
    dw_marshaller *resp = dw_scpi_marshaller_new((const uint8_t *)"\n", 1);
    conversation cv = {asks, 8, NULL, NULL, NULL, 0, line("\n"), resp};
    record_and_replay(EXAMPLES "/sg.json", 0, &cv, NULL);
}

/* A ramping, noisy reading (MEAS:VOLT?) and readings computed in Lua from
 * it: each answer differs from the last (20 ms apart, see pause_ms), the recording keeps the
 * values seen, in order, and the replay gives them back in that order. */
Test(sim_record, psu_ramping_noisy_readings_replay_as_seen)
{
    static const ask asks[] = {
        {"*IDN?", 1, 0},           {"VOLT 12", 0, 0},      {"OUTP ON", 0, 0},
        {"MEAS:VOLT?", 1, 0},      {"MEAS:VOLT?", 1, 0},   {"MEAS:VOLT?", 1, 0},
        {"MEAS:CURR?", 1, 0},      {"SIM:LOAD 0.5", 0, 0}, {"MEAS:CURR?", 1, 0},
        {"STAT:QUES:COND?", 1, 0}, {"VOLT 99", 0, 0},      {"SYST:ERR?", 1, 0}};
    dw_buf seen = DW_BUF_INIT;
    conversation cv = {asks, 12, NULL, NULL, NULL, 0, line("\n"), line("\n")};
    pause_ms = 20; /* the ramp moves 40 mV between two readings */
    record_and_replay_seen(EXAMPLES "/psu.json", 0, &cv, NULL, &seen);
    dw_buf_nul_terminate(&seen);
    char *answer[12] = {0}, *rest = (char *)seen.data;
    for (size_t i = 0; i < 12; i++)
        answer[i] = strsep(&rest, "|");
    cr_assert(strcmp(answer[3], answer[5]) != 0, "the reading moved: %s", (char *)seen.data);
    cr_assert(strcmp(answer[6], answer[8]) != 0, "the current changed: %s", (char *)seen.data);
    dw_buf_free(&seen);
}

Test(sim_record, tempctl_line_protocol_properties)
{
    static const ask asks[] = {{"*IDN?", 1, 0},      {"SP 80", 1, 0},      {"SP?", 1, 0},
                               {"MEAS:TEMP?", 1, 0}, {"MEAS:TEMP?", 1, 0}, {"SP abc", 1, 0},
                               {"MODE MAN", 1, 0},   {"STATUS?", 1, 0},    {"BOGUS", 1, 0}};
    conversation cv = {asks, 9, NULL, NULL, NULL, 0, line("\n"), line("\n")};
    record_and_replay(EXAMPLES "/tempctl.json", 0, &cv, NULL);
}

Test(sim_record, serial_psu_over_tcp_with_timing)
{
    static const ask asks[] = {{"*IDN?", 1, 0},      {"VOLT 12.5", 0, 0}, {"VOLT?", 1, 0},
                               {"MEAS:VOLT?", 1, 0}, {"NOISE?", 1, 0},    {"CURR?", 1, 0}};
    conversation cv = {asks, 6, NULL, NULL, NULL, 0, line("\n"), line("\n")};
    record_and_replay(EXAMPLES "/serial-psu.json", 1, &cv, "--keep-timing");
}

Test(sim_record, udp_sensor_over_tcp_lost_and_duplicated_answers)
{
    static const ask asks[] = {{"ID?", 1, 0},   {"TEMP?", 1, 0},   {"UNIT F", 1, 0},
                               {"TEMP?", 1, 0}, {"PING", 1, 0},    {"PING", 1, 0},
                               {"PING", 0, 0},  {"STATUS?", 2, 0}, {"PING", 1, 0}};
    conversation cv = {asks, 9, "TEMP ", NULL, NULL, 0, line("\n"), line("\n")};
    record_and_replay(EXAMPLES "/udp-sensor.json", 1, &cv, NULL);
}

Test(sim_record, length_prefixed_binary_device)
{
    static const char script[] =
        "{\"framing\": {\"type\": \"length-prefixed\", \"header_size\": 2, \"endian\": \"little\"},"
        " \"state\": {\"v\": {\"hex\": \"00\"}},"
        " \"rules\": ["
        "  {\"when\": {\"hex\": \"01\"}, \"reply\": {\"hex\": \"81 ${v}\"}},"
        "  {\"when\": {\"prefix\": {\"hex\": \"02\"}}, \"set\": {\"v\": {\"hex\": \"ff\"}},"
        "   \"reply\": {\"frames\": [{\"hex\": \"82 00 0a 0d\"}, {\"hex\": \"\"}]}},"
        "  {\"when\": {\"hex\": \"03\"}, \"reply\": {\"base64\": \"JHt4fSQk\"}}"
        " ]}";
    const char *path = dw_sim_fixture_file("lp", script);
    static const ask asks[] = {{"01", 1, 1}, {"02 00 ff", 2, 1}, {"01", 1, 1},
                               {"03", 1, 1}, {"04", 0, 1},       {"01", 1, 1}};
    conversation cv = {asks,
                       6,
                       NULL,
                       NULL,
                       NULL,
                       0,
                       dw_length_prefixed_marshaller_new(2, DW_LITTLE_ENDIAN),
                       dw_length_prefixed_marshaller_new(2, DW_LITTLE_ENDIAN)};
    record_and_replay(path, 0, &cv, NULL);
}

Test(sim_record, relay_as_steps)
{
    static const ask asks[] = {{"aa010155", 1, 1},
                               {"aa100155", 1, 1},
                               {"aa010155", 1, 1},
                               {"aa110155", 1, 1},
                               {"aa010155", 1, 1}};
    conversation cv = {
        asks, 5, NULL, NULL, NULL, 0, dw_fixed_marshaller_new(4), dw_fixed_marshaller_new(4)};
    record_and_replay(EXAMPLES "/relay.json", 0, &cv, "--as-steps");
}

/* ---- the recorder changes nothing ---------------------------------------------------- */

static const char exact_script[] =
    "{\"rules\": ["
    " {\"when\": \"A\", \"reply\": \"alpha\"},"
    " {\"when\": \"B\", \"reply\": {\"frames\": [\"b1\", \"b2\"]}, \"split\": [1],"
    "  \"split_delay_ms\": 1},"
    " {\"when\": \"C\", \"reply\": {\"hex\": \"00 ff 01\"}},"
    " {\"when\": \"BYE\", \"fault\": \"close\"},"
    " {\"when\": \"RST\", \"fault\": \"reset\"},"
    " {\"when\": \"HANG\", \"fault\": \"hang\"}"
    "]}";
static const char exact_requests[] = "A\nB\nC\n";
static const char exact_replies[] = "alpha\nb1\nb2\n\x00\xff\x01\n";

/* A device serving exact_script and the recorder in front of it, in the
 * fixture: the recorder; *out gets the recording's file. */
static dw_sim_proc *rig_start(const char **out)
{
    const char *script = dw_sim_fixture_file("exact", exact_script);
    *out = dw_sim_fixture_file("exact-rec", "");
    return recorder_start(device_start(&dw_sim_fixture.peer, script, 0), script, *out, NULL);
}

/* Read exactly n bytes (or fail after 10 s). */
static void read_exactly(int fd, uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        struct pollfd pfd = {fd, POLLIN, 0};
        cr_assert(eq(int, poll(&pfd, 1, 10000), 1), "%zu of %zu bytes, then nothing", got, n);
        ssize_t r = recv(fd, buf + got, n - got, 0);
        cr_assert(gt(sz, (size_t)(r > 0 ? r : 0), 0), "recv: %zd after %zu bytes (%s)", r, got,
                  strerror(errno));
        got += (size_t)r;
    }
}

/* Send the requests cut at `cut` (or byte by byte when cut is SIZE_MAX):
 * the client gets exactly the device's bytes, and nothing more. */
static void exact_exchange(uint16_t port, size_t cut)
{
    int fd = dw_sim_raw_connect(port, 0);
    cr_assert(fd >= 0);
    size_t n = sizeof exact_requests - 1;
    for (size_t at = 0; at < n;) {
        size_t piece = cut == SIZE_MAX ? 1 : at < cut ? cut - at : n - at;
        cr_assert(eq(sz, (size_t)send(fd, exact_requests + at, piece, MSG_NOSIGNAL), piece));
        at += piece;
        usleep(2000);
    }
    uint8_t got[sizeof exact_replies];
    read_exactly(fd, got, sizeof exact_replies - 1);
    cr_assert(eq(int, memcmp(got, exact_replies, sizeof exact_replies - 1), 0), "got %s",
              dw_test_esc(got, sizeof exact_replies - 1));
    struct pollfd pfd = {fd, POLLIN, 0};
    cr_assert(eq(int, poll(&pfd, 1, 50), 0), "bytes beyond the device's");
    close(fd);
}

Test(sim_record, bytes_pass_unchanged_at_every_split)
{
    const char *out;
    dw_sim_proc *rec = rig_start(&out);
    for (size_t cut = 0; cut <= sizeof exact_requests - 1; cut++)
        exact_exchange(rec->port, cut); /* cut 0: pipelined, all at once */
    exact_exchange(rec->port, SIZE_MAX);
    /* A split answer to a pipelined batch may straddle the next request
     * (its first pieces before "C\n", the rest after): the replay check may
     * then fail (record.md, Limits), but the bytes passed unchanged. */
    const char *err;
    int st = recorder_status(rec, &err);
    cr_assert(st == 0 || (st == 1 && strstr(err, "does not replay as recorded")),
              "the recorder exited %d:\n%s", st, err);
}

/* Send a request; what comes back: 0 (EOF), -errno, or 1 (bytes or nothing). */
static int outcome_of(uint16_t port, const char *req, int wait_ms)
{
    int fd = dw_sim_raw_connect(port, 0);
    cr_assert(fd >= 0);
    cr_assert(eq(sz, (size_t)send(fd, req, strlen(req), MSG_NOSIGNAL), strlen(req)));
    struct pollfd pfd = {fd, POLLIN, 0};
    int rc = 1;
    if (poll(&pfd, 1, wait_ms) == 1) {
        char b[16];
        ssize_t n = recv(fd, b, sizeof b, 0);
        rc = n == 0 ? 0 : n < 0 ? -errno : 1;
    }
    close(fd);
    return rc;
}

Test(sim_record, close_reset_and_silence_pass_through)
{
    const char *out;
    dw_sim_proc *rec = rig_start(&out);
    cr_assert(eq(int, outcome_of(rec->port, "BYE\n", 10000), 0), "a close is a close");
    cr_assert(eq(int, outcome_of(rec->port, "RST\n", 10000), -ECONNRESET), "a reset is a reset");
    cr_assert(eq(int, outcome_of(rec->port, "HANG\n", 300), 1), "silence stays silence");
    recorder_finish(rec, out);
}

/* Read from fd until `line` (a whole line) arrives: 1, or 0 after
 * timeout_ms or when the connection ends. Lines before it are skipped. */
static int read_line_within(int fd, const char *line, int timeout_ms)
{
    char buf[256];
    size_t len = 0, want = strlen(line);
    struct pollfd p = {fd, POLLIN, 0};
    while (poll(&p, 1, timeout_ms) == 1) {
        ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (n <= 0)
            return 0;
        len += (size_t)n;
        buf[len] = 0;
        char *nl;
        while ((nl = strchr(buf, '\n')) != NULL) {
            size_t l = (size_t)(nl - buf) + 1;
            if (l == want && memcmp(buf, line, want) == 0)
                return 1;
            memmove(buf, nl + 1, len - l + 1);
            len -= l;
        }
        if (len == sizeof buf - 1)
            return 0;
    }
    return 0;
}

Test(sim_record, unsolicited_frames_become_periodic)
{
    static const char script[] = "{\"rules\": [{\"when\": \"X\", \"reply\": \"x\"}],"
                                 " \"periodic\": [{\"every_ms\": 800, \"send\": \"HB $$1\"}]}";
    const char *path = dw_sim_fixture_file("periodic", script);
    const char *out = dw_sim_fixture_file("periodic-rec", "");
    dw_sim_proc *rec = recorder_start(device_start(&dw_sim_fixture.peer, path, 0), path, out, NULL);
    int fd = dw_sim_raw_connect(rec->port, 0);
    cr_assert(fd >= 0);
    /* Ask right after a heartbeat, so that the answer and the next one are
     * far apart however slow the machine (a heartbeat within the reply gap
     * of an answer would count as part of it). */
    cr_assert(read_line_within(fd, "HB $1\n", 10000), "the first heartbeat");
    cr_assert(eq(sz, (size_t)send(fd, "X\n", 2, MSG_NOSIGNAL), 2));
    cr_assert(read_line_within(fd, "x\n", 10000), "the answer");
    usleep(2500 * 1000);
    close(fd);
    recorder_finish(rec, out);
    char *text = dw_sim_read_file(out, NULL);
    const char *per = strstr(text, "\"periodic\"");
    cr_assert(per != NULL, "%s", text);
    unsigned every = 0;
    const char *e = strstr(per, "\"every_ms\": ");
    cr_assert(e && sscanf(e, "\"every_ms\": %u", &every) == 1, "%s", text);
    cr_assert(every >= 600 && every <= 1000, "every_ms %u:\n%s", every, text);
    cr_assert(strstr(per, "\"send\": \"HB $$1\"") != NULL, "%s", text);
    cr_assert(strstr(text, "{\"when\": \"X\", \"reply\": \"x\"}") != NULL, "%s", text);
    free(text);
}

/* ---- closes, prompts, pipelines: the recording checks itself ---------------------- */

/* Read from fd into `got` (Telnet commands taken out: IAC and the two bytes
 * after it, IAC IAC as one 0xff) until it ends with `end`: 1, or 0 on EOF
 * or after 10 s. */
static int read_until(int fd, dw_buf *got, const char *end)
{
    size_t want = strlen(end);
    int iac = 0;
    while (got->len < want || memcmp(got->data + got->len - want, end, want) != 0) {
        struct pollfd p = {fd, POLLIN, 0};
        uint8_t b;
        if (poll(&p, 1, 10000) != 1 || recv(fd, &b, 1, 0) != 1)
            return 0;
        if (iac) {
            if (--iac == 1 && b == 0xff) { /* an escaped 0xff */
                iac = 0;
                dw_buf_append(got, &b, 1);
            } else if (iac == 1 && (b < 0xfb || b > 0xfe)) {
                iac = 0; /* a two-byte command */
            }
            continue;
        }
        if (b == 0xff)
            iac = 2;
        else
            dw_buf_append(got, &b, 1);
    }
    return 1;
}

/* After the last answer: the peer closes (recv gives 0 within 10 s). */
static int eof_within(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    uint8_t b[64];
    ssize_t n = 1;
    while (n > 0 && poll(&p, 1, 10000) == 1)
        n = recv(fd, b, sizeof b, 0);
    return n == 0;
}

/* Send each request and read its answer up to `ends[i]`, all into `log`;
 * then, if `then_eof`, expect the peer to close. */
static void talk(uint16_t port, const char *const *reqs, const char *const *ends, size_t n,
                 const char *banner_end, int then_eof, dw_buf *log)
{
    int fd = dw_sim_raw_connect(port, 0);
    cr_assert(fd >= 0);
    if (banner_end)
        cr_assert(read_until(fd, log, banner_end), "the banner: %s", (char *)log->data);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(reqs[i]);
        cr_assert(eq(sz, (size_t)send(fd, reqs[i], len, MSG_NOSIGNAL), len));
        cr_assert(read_until(fd, log, ends[i]), "%s: %s", reqs[i],
                  dw_test_esc(log->data, log->len));
        dw_buf_append_str(log, "|");
    }
    if (then_eof)
        cr_assert(eof_within(fd), "the device closes after the last answer");
    close(fd);
}

/* Serve the recording in the fixture's peer slot: its port. */
static uint16_t replay_start(const char *out)
{
    const char *const args[] = {"--script", out, "--listen", "127.0.0.1:0", NULL};
    return dw_sim_start(&dw_sim_fixture.peer, args, "the replay")->port;
}

/* redis-server on a free port of the test's, in a temporary directory:
 * its port, or 0 (the test skipped) when it is not installed. */
static uint16_t redis_start(pid_t *pid, char *dir)
{
    if (system("command -v redis-server >/dev/null 2>&1") != 0)
        return 0;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    cr_assert(bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
              getsockname(s, (struct sockaddr *)&a, &al) == 0);
    close(s);
    uint16_t port = ntohs(a.sin_port);
    cr_assert(mkdtemp(dir) != NULL);
    char ps[8];
    snprintf(ps, sizeof ps, "%u", (unsigned)port);
    *pid = dw_test_child_fork();
    cr_assert(ge(int, (int)*pid, 0), "fork: %s", strerror(errno));
    if (*pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execlp("redis-server", "redis-server", "--port", ps, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", dir, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        int fd = dw_sim_raw_connect(port, 0);
        if (fd >= 0) {
            close(fd);
            return port;
        }
        usleep(50 * 1000);
    }
    cr_fail("redis-server did not listen on port %u", (unsigned)port);
    return 0;
}

/* A real device nobody here wrote: redis-server's inline commands, and
 * QUIT, which answers and closes. The recording says "then": "close", its
 * replay check passes, and the replay answers the same and closes too. */
Test(sim_record, redis_quit_closes_and_the_replay_closes_too)
{
    pid_t pid;
    char dir[] = "/tmp/devwire-redis-XXXXXX";
    uint16_t port = redis_start(&pid, dir);
    if (!port)
        cr_skip_test("redis-server is not installed (scripts/install-deps.sh installs it)");
    char up[32];
    snprintf(up, sizeof up, "127.0.0.1:%u", (unsigned)port);
    const char *base = dw_sim_fixture_file(
        "redis-base", "{\"framing\": {\"type\": \"sentinel\", \"sentinel\": \"\\r\\n\"}}");
    const char *out = dw_sim_fixture_file("redis-rec", "");
    const char *const args[] = {"--record", "--upstream", up,         "--script",    base,
                                "--out",    out,          "--listen", "127.0.0.1:0", NULL};
    dw_sim_proc *rec = dw_sim_start(&dw_sim_fixture.proc, args, "the recorder");
    static const char *const reqs[] = {"PING\r\n", "SET k v\r\n", "GET k\r\n", "QUIT\r\n"};
    static const char *const ends[] = {"+PONG\r\n", "+OK\r\n", "$1\r\nv\r\n", "+OK\r\n"};
    dw_buf recorded = DW_BUF_INIT, replayed = DW_BUF_INIT;
    talk(rec->port, reqs, ends, 4, NULL, 1, &recorded);
    const char *err;
    int st = recorder_status(rec, &err);
    dw_test_child_kill(pid, SIGKILL);
    dw_test_child_reap(pid, 1, NULL);
    rmdir(dir);
    char *text = dw_sim_read_file(out, NULL);
    cr_assert(eq(int, st, 0), "the recorder exited %d:\n%s\n%s", st, err, text);
    const char *said = rec->out.data ? (const char *)rec->out.data : "";
    cr_assert(strstr(said, "replay check passed") != NULL, "%s", said);
    cr_assert(strstr(text, "{\"when\": \"QUIT\", \"reply\": \"+OK\", \"then\": \"close\"}") != NULL,
              "%s", text);
    talk(replay_start(out), reqs, ends, 4, NULL, 1, &replayed);
    cr_assert(eq(sz, recorded.len, replayed.len), "%s", text);
    cr_assert(eq(int, memcmp(recorded.data, replayed.data, recorded.len), 0), "%s", text);
    free(text);
    dw_buf_free(&recorded);
    dw_buf_free(&replayed);
}

/* A console devwire-sim serves over Telnet with a prompt after every
 * answer (not after its banner), recorded through a base script that
 * knows no prompt: the recorder infers "dev> " from the device's waits,
 * "exit" answers and closes, and the replay check passes. */
Test(sim_record, telnet_console_prompt_inferred)
{
    const char *dev = dw_sim_fixture_file(
        "console",
        "{\"transport\": \"telnet\", \"framing\": {\"type\": \"sentinel\", \"sentinel\": "
        "\"\\r\\n\"},"
        " \"banner\": \"dev console\\r\\n\", \"prompt\": \"dev> \","
        " \"rules\": [{\"when\": \"count\", \"reply\": [\"count=1\", \"count=2\", \"count=3\"]},"
        "  {\"when\": \"help\", \"reply\": {\"frames\": [\"count\", \"help\", \"exit\"]}},"
        "  {\"when\": \"exit\", \"reply\": \"bye\", \"then\": \"close\"}],"
        " \"unmatched\": {\"reply\": \"% unknown: $0\"}}");
    const char *base =
        dw_sim_fixture_file("console-base", "{\"transport\": \"telnet\", \"framing\": {\"type\": "
                                            "\"sentinel\", \"sentinel\": \"\\r\\n\"}}");
    const char *out = dw_sim_fixture_file("console-rec", "");
    dw_sim_proc *rec = recorder_start(device_start(&dw_sim_fixture.peer, dev, 0), base, out, NULL);
    static const char *const reqs[] = {"count\r\n", "help\r\n",  "count\r\n", "bogus\r\n",
                                       "count\r\n", "count\r\n", "exit\r\n"};
    static const char *const ends[] = {"dev> ", "dev> ", "dev> ",  "dev> ",
                                       "dev> ", "dev> ", "bye\r\n"};
    dw_buf recorded = DW_BUF_INIT, replayed = DW_BUF_INIT;
    talk(rec->port, reqs, ends, 7, "dev console\r\n", 1, &recorded);
    const char *err;
    int st = recorder_status(rec, &err);
    char *text = dw_sim_read_file(out, NULL);
    cr_assert(eq(int, st, 0), "the recorder exited %d:\n%s\n%s", st, err, text);
    cr_assert(strstr(text, "\"prompt\": \"dev> \"") != NULL, "%s", text);
    cr_assert(strstr(text, "\"reply\": \"bye\", \"then\": \"close\"") != NULL, "%s", text);
    talk(replay_start(out), reqs, ends, 7, "dev console\r\n", 1, &replayed);
    cr_assert(eq(sz, recorded.len, replayed.len), "%s\n%s\n%s",
              dw_test_esc(recorded.data, recorded.len), dw_test_esc(replayed.data, replayed.len),
              text);
    cr_assert(eq(int, memcmp(recorded.data, replayed.data, recorded.len), 0), "%s", text);
    free(text);
    dw_buf_free(&recorded);
    dw_buf_free(&replayed);
}

/* A console whose "prompt" differs from one wait to the next (written by
 * the device as unframed bytes): no prompt can be inferred and the
 * recorder says why; the answers glue to the next prompt, so the recording
 * does not replay as recorded: it is written all the same, the mismatches
 * are named, and the recorder exits 1. */
Test(sim_record, a_recording_that_does_not_replay_fails_its_check)
{
    const char *dev = dw_sim_fixture_file(
        "odd",
        "{\"framing\": {\"type\": \"sentinel\", \"sentinel\": \"\\r\\n\"},"
        " \"rules\": [{\"when\": \"a\", \"fault\": \"garbage\", \"garbage\": \"A\\r\\none> \"},"
        "  {\"when\": \"b\", \"fault\": \"garbage\", \"garbage\": \"B\\r\\ntwo> \"}]}");
    const char *base = dw_sim_fixture_file(
        "odd-base", "{\"framing\": {\"type\": \"sentinel\", \"sentinel\": \"\\r\\n\"}}");
    const char *out = dw_sim_fixture_file("odd-rec", "");
    dw_sim_proc *rec = recorder_start(device_start(&dw_sim_fixture.peer, dev, 0), base, out, NULL);
    static const char *const reqs[] = {"a\r\n", "b\r\n", "a\r\n"};
    static const char *const ends[] = {"one> ", "two> ", "one> "};
    dw_buf log = DW_BUF_INIT;
    talk(rec->port, reqs, ends, 3, NULL, 0, &log);
    const char *err;
    int st = recorder_status(rec, &err);
    char *text = dw_sim_read_file(out, NULL);
    cr_assert(eq(int, st, 1), "the recorder exited %d:\n%s\n%s", st, err, text);
    cr_assert(strstr(err, "no prompt inferred: the device waited for input after \"one> \" "
                          "(connection 1, after its request 1) and after \"two> \" "
                          "(connection 1, after its request 2)") != NULL,
              "%s", err);
    cr_assert(strstr(err, "does not replay as recorded (3 mismatches)") != NULL, "%s", err);
    cr_assert(strstr(err, "exchange 1 (connection 1, request \"a\"): the device sent "
                          "\"A\\r\\none> \", the replay sends \"A\\r\\n\"") != NULL,
              "%s", err);
    cr_assert(text && strstr(text, "\"rules\"") != NULL, "the script is written: %s", text);
    free(text);
    dw_buf_free(&log);
}

/* Pipelined requests: three sent at once, three answer lines, one each in
 * order; before, all three went to the last request. */
Test(sim_record, pipelined_answers_go_to_their_requests)
{
    const char *dev = dw_sim_fixture_file(
        "pipe", "{\"rules\": [{\"when\": \"A\", \"reply\": \"a\"}, {\"when\": \"B\", \"reply\": "
                "\"b\"}, {\"when\": \"C\", \"reply\": \"c\"}]}");
    const char *out = dw_sim_fixture_file("pipe-rec", "");
    dw_sim_proc *rec = recorder_start(device_start(&dw_sim_fixture.peer, dev, 0), dev, out, NULL);
    static const char *const reqs[] = {"A\nB\nC\n", "B\n"};
    static const char *const ends[] = {"a\nb\nc\n", "b\n"};
    dw_buf log = DW_BUF_INIT;
    talk(rec->port, reqs, ends, 2, NULL, 0, &log);
    const char *err;
    int st = recorder_status(rec, &err);
    char *text = dw_sim_read_file(out, NULL);
    cr_assert(eq(int, st, 0), "the recorder exited %d:\n%s\n%s", st, err, text);
    cr_assert(strstr(text, "{\"when\": \"A\", \"reply\": \"a\"},\n"
                           "    {\"when\": \"B\", \"reply\": \"b\"},\n"
                           "    {\"when\": \"C\", \"reply\": \"c\"}") != NULL,
              "%s", text);
    free(text);
    dw_buf_free(&log);
}
