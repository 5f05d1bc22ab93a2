/* devwire-sim --record: a device (devwire-sim serving each example) is
 * recorded through the recorder by a scripted client, the recording is
 * replayed by devwire-sim, and the same client gets the same replies from
 * the replay. The recorder never changes what the client sees: the bytes
 * are those of the device at any split, and a close, a reset or a silence
 * of the device reaches the client as such. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <devwire/devwire.h>
#include <devwire/telnet.h>

#include "sim_proc.h"
#include "support.h"

TestSuite(sim_record, .timeout = 120);

#define EXAMPLES DW_SOURCE_DIR "/sim/examples"

static const char *err_of(dw_sim_proc *p)
{
    return p->err.data ? (const char *)p->err.data : "";
}

/* ---- processes ---------------------------------------------------------------- */

static void start(dw_sim_proc *p, const char *const *args, const char *what)
{
    int rc = dw_sim_proc_start(p, args, 1, 20000);
    cr_assert(eq(int, rc, DW_OK), "%s did not start (%s):\n%s", what, dw_strerror(rc), err_of(p));
}

/* The device: `script` served on port 0 (over TCP when tcp_override). */
static void device_start(dw_sim_proc *dev, const char *script, int tcp_override, char **bench)
{
    *bench = NULL;
    if (!tcp_override) {
        const char *const args[] = {"--script", script, "--listen", "127.0.0.1:0", NULL};
        start(dev, args, script);
        return;
    }
    char text[1024];
    snprintf(text, sizeof text,
             "[{\"name\": \"dev\", \"script\": \"%s\", \"listen\": \"127.0.0.1:0\", "
             "\"transport\": \"tcp\"}]",
             script);
    *bench = dw_sim_temp_file("bench", text);
    cr_assert(bench[0] != NULL);
    const char *const args[] = {"--bench", *bench, NULL};
    start(dev, args, script);
}

static char *addr_of(const dw_sim_proc *p)
{
    char *a = NULL;
    cr_assert(asprintf(&a, "%s:%u", p->host, (unsigned)p->port) > 0);
    return a;
}

/* The recorder in front of dev, framed as `base`. */
static void recorder_start(dw_sim_proc *rec, const dw_sim_proc *dev, const char *base,
                           const char *out, const char *extra)
{
    char *up = addr_of(dev);
    const char *args[16] = {"--record", "--upstream", up,         "--script",   base,
                            "--out",    out,          "--listen", "127.0.0.1:0"};
    size_t n = 9;
    if (extra)
        args[n++] = extra;
    args[n] = NULL;
    start(rec, args, "the recorder");
    free(up);
}

/* Stop the recorder and check its script. */
static void recorder_finish(dw_sim_proc *rec, const char *out)
{
    int st = dw_sim_proc_stop(rec, 20000);
    cr_assert(eq(int, st, 0), "the recorder exited %d:\n%s", st, err_of(rec));
    cr_assert(strstr((const char *)rec->out.data, "recorded ") != NULL, "%s",
              (const char *)rec->out.data);
    dw_sim_proc v;
    const char *const args[] = {"--validate", out, NULL};
    int vs = dw_sim_proc_run(&v, args, 20000);
    char *text = dw_sim_read_file(out, NULL);
    cr_assert(eq(int, vs, 0), "the recording does not validate:\n%s\n%s", err_of(&v),
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
 * client, replay the recording, run the client again: the same replies. */
static void record_and_replay(const char *script, int tcp_override, conversation *cv,
                              const char *extra)
{
    dw_sim_proc dev, rec, rep;
    char *bench = NULL;
    char *out = dw_sim_temp_file("recorded", "");
    cr_assert(out != NULL);
    device_start(&dev, script, tcp_override, &bench);
    char *base = NULL;
    if (tcp_override) { /* the base: the example's framing over TCP */
        base = dw_sim_temp_file("base", "{\"transport\": \"tcp\", \"framing\": {\"type\": "
                                        "\"sentinel\", \"sentinel\": \"\\n\"}}");
        cr_assert(base != NULL);
    }
    recorder_start(&rec, &dev, base ? base : script, out, extra);
    dw_buf recorded = DW_BUF_INIT, replayed = DW_BUF_INIT;
    converse(cv, rec.port, &recorded);
    recorder_finish(&rec, out);

    const char *const args[] = {"--script", out, "--listen", "127.0.0.1:0", NULL};
    if (tcp_override) { /* replayed over TCP too */
        dw_sim_proc_free(&dev);
        unlink(bench);
        free(bench);
        device_start(&rep, out, 1, &bench);
    } else {
        start(&rep, args, "the replay");
    }
    converse(cv, rep.port, &replayed);
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
    dw_buf_free(&recorded);
    dw_buf_free(&replayed);
    dw_sim_proc_stop(&rep, 10000);
    dw_sim_proc_free(&rep);
    dw_sim_proc_free(&rec);
    dw_sim_proc_free(&dev);
    unlink(out);
    free(out);
    if (bench) {
        unlink(bench);
        free(bench);
    }
    if (base) {
        unlink(base);
        free(base);
    }
    dw_marshaller_free(cv->req_m);
    dw_marshaller_free(cv->resp_m);
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
