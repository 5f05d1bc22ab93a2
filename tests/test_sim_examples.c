/* Every script in sim/examples/ validates and is served by devwire-sim, and
 * each is driven through its own protocol with libdevwire's clients. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <devwire/devwire.h>
#include <devwire/telnet.h>

#include "sim_fixture.h"

/* Each test's simulator is dw_sim_fixture's: .fini stops it whatever
 * happened. */
TestSuite(sim_examples, .init = dw_sim_fixture_init, .fini = dw_sim_fixture_fini, .timeout = 60);

#define EXAMPLES DW_SOURCE_DIR "/sim/examples"

/* The example `name` served in the fixture: the simulator. */
static dw_sim_proc *serve_example(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", EXAMPLES, name);
    const char *const args[] = {"--script", path, "--listen", "127.0.0.1:0", NULL};
    return dw_sim_start(&dw_sim_fixture.proc, args, name);
}

/* An application client with separate request and response framings. */
typedef struct app {
    dw_client *tc;
    dw_marshaller *req, *resp;
    dw_app_client *ac;
    dw_app_session *s;
    dw_buf reply;
    dw_error err;
} app;

static void app_open(app *a, dw_client *tc, dw_marshaller *req, dw_marshaller *resp)
{
    memset(a, 0, sizeof *a);
    a->tc = tc;
    a->req = req;
    a->resp = resp;
    a->ac = dw_app_client_new(tc, req, resp ? resp : req);
    cr_assert(a->ac != NULL);
    cr_assert(eq(int, dw_app_client_connect(a->ac, &a->s, &a->err), DW_OK), "%s",
              dw_error_message(&a->err));
}

static dw_client *tcp(uint16_t port)
{
    dw_tcp_client_options o;
    dw_tcp_client_options_init(&o);
    o.host = "127.0.0.1";
    o.port = port;
    o.timeout_ms = 5000;
    return dw_tcp_client_new(&o);
}

static const dw_buf *app_ask(app *a, const void *p, size_t n)
{
    int rc = dw_app_session_send_receive_bytes(a->s, p, n, &a->reply, &a->err);
    cr_assert(eq(int, rc, DW_OK), "request: %s", dw_error_message(&a->err));
    dw_buf_nul_terminate(&a->reply);
    return &a->reply;
}

static const char *app_ask_text(app *a, const char *text)
{
    return (const char *)app_ask(a, text, strlen(text))->data;
}

static void app_close(app *a)
{
    dw_app_session_close(a->s);
    dw_app_client_free(a->ac);
    dw_client_free(a->tc);
    if (a->resp && a->resp != a->req)
        dw_marshaller_free(a->resp);
    dw_marshaller_free(a->req);
    dw_buf_free(&a->reply);
}

Test(sim_examples, every_example_validates)
{
    DIR *d = opendir(EXAMPLES);
    cr_assert(d != NULL, "%s", EXAMPLES);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", EXAMPLES, de->d_name);
        const char *const args[] = {"--validate", path, NULL};
        dw_sim_proc p;
        cr_expect(eq(int, dw_sim_proc_run(&p, args, 10000), 0), "%s:\n%s", de->d_name,
                  dw_sim_err_of(&p));
        dw_sim_proc_free(&p);
        n++;
    }
    closedir(d);
    cr_expect(n >= 4, "examples found: %d", n);
    /* The example bench, and every script it names. */
    const char *const bench[] = {"--validate", EXAMPLES "/bench/lab.json", NULL};
    dw_sim_proc p;
    cr_expect(eq(int, dw_sim_proc_run(&p, bench, 10000), 0), "bench/lab.json:\n%s",
              dw_sim_err_of(&p));
    cr_expect(strstr(dw_sim_out_of(&p), "valid bench (4 devices)") != NULL);
    dw_sim_proc_free(&p);
}

Test(sim_examples, scpi_signal_generator)
{
    dw_sim_proc *p = serve_example("sg.json");
    app a;
    app_open(&a, tcp(p->port), dw_sentinel_marshaller_new("\n", 1),
             dw_scpi_marshaller_new("\n", 1));
    cr_expect(eq(str, (char *)app_ask_text(&a, "*IDN?"), "ACME,SG-1000,0001,1.0.3"));
    cr_expect(eq(str, (char *)app_ask_text(&a, "*ESR?"), "128"), "power on");
    cr_assert(eq(int, dw_app_session_send_bytes(a.s, "FREQ 2.5 MHz", 12, &a.err), DW_OK));
    cr_expect(eq(str, (char *)app_ask_text(&a, "SOUR:FREQ:CW?"), "2.5E+06"), "NR3");
    cr_assert(eq(int, dw_app_session_send_bytes(a.s, "outp on;:pow -3.5dBm", 20, &a.err), DW_OK));
    cr_expect(eq(str, (char *)app_ask_text(&a, "OUTP?;:POW?;:FREQ? ;*OPC?"), "1;-3.50;2.5E+06;1"),
              "one response for a compound query");
    cr_assert(
        eq(int, dw_app_session_send_bytes(a.s, "FREQ MAX;:TRIG:SOUR bus", 23, &a.err), DW_OK));
    cr_expect(eq(str, (char *)app_ask_text(&a, "FREQ?;:TRIG:SOUR?"), "6.0E+09;BUS"));
    cr_expect(eq(str, (char *)app_ask_text(&a, "AM:SOUR?;DEPT?;:OUTP:MOD?"), "INT;30.0;1"));
    /* An unknown command says nothing: the error waits in the queue. A
     * refused value leaves the setting as it was. */
    cr_assert(eq(int, dw_app_session_send_bytes(a.s, "BOGUS", 5, &a.err), DW_OK));
    cr_assert(eq(int, dw_app_session_send_bytes(a.s, "OUTP MAYBE", 10, &a.err), DW_OK));
    cr_assert(eq(int, dw_app_session_send_bytes(a.s, "FREQ 7 GHz", 10, &a.err), DW_OK));
    cr_expect(eq(str, (char *)app_ask_text(&a, "*STB?"), "4"), "EAV");
    cr_expect(eq(str, (char *)app_ask_text(&a, "SYST:ERR?"), "-113,\"Undefined header\""));
    cr_expect(eq(str, (char *)app_ask_text(&a, "SYST:ERR?"), "-224,\"Illegal parameter value\""));
    cr_expect(eq(str, (char *)app_ask_text(&a, "SYST:ERR?"), "-222,\"Data out of range\""));
    cr_expect(eq(str, (char *)app_ask_text(&a, "SYST:ERR?"), "0,\"No error\""));
    cr_expect(eq(str, (char *)app_ask_text(&a, "FREQ?"), "6.0E+09"), "unchanged");
    cr_expect(
        eq(str, (char *)app_ask_text(&a, "*RST;FREQ?;:OUTP?;:DISP:TEXT?"), "1.0E+06;0;\"SG-1000\""),
        "*RST");
    /* The trace: a definite-length block holding the sentinel, written
     * in pieces. */
    const dw_buf *w = app_ask(&a, "TRAC?", 5);
    const uint8_t *blk;
    size_t blen;
    cr_assert(eq(int, dw_scpi_block_parse(w->data, w->len, &blk, &blen), DW_OK));
    cr_expect(eq(sz, blen, 16));
    cr_expect(blk[2] == 0x0a && blk[5] == 0xff, "block bytes intact");
    app_close(&a);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0));
}

static double ask_number(app *a, const char *q)
{
    return strtod(app_ask_text(a, q), NULL);
}

/* Send a SCPI message that has no answer. */
static void app_send(app *a, const char *msg)
{
    cr_assert(eq(int, dw_app_session_send_bytes(a->s, msg, strlen(msg), &a->err), DW_OK), "%s",
              msg);
}

Test(sim_examples, scpi_power_supply_ramps_and_limits_its_current)
{
    dw_sim_proc *p = serve_example("psu.json");
    app a;
    app_open(&a, tcp(p->port), dw_sentinel_marshaller_new("\n", 1), NULL);
    cr_expect(eq(str, (char *)app_ask_text(&a, "*IDN?"), "ACME,PS-3005,0042,2.1"));
    cr_expect(fabs(ask_number(&a, "MEAS:VOLT?")) < 0.02, "starts at 0 V");
    app_send(&a, "SIM:LOAD 10;:VOLT 12;:CURR 5;:OUTP ON");
    cr_expect(eq(str, (char *)app_ask_text(&a, "VOLT?;:SIM:LOAD?"), "12.000;10"),
              "the set point at once");
    usleep(300 * 1000);
    double v1 = ask_number(&a, "MEAS:VOLT?");
    cr_expect(v1 > 0.3 && v1 < 11, "ramping at 2 V/s: %g after 0.3 s or more", v1);
    usleep(200 * 1000);
    double v2 = ask_number(&a, "MEAS:VOLT?");
    cr_expect(v2 > v1, "still rising: %g then %g", v1, v2);
    double i = ask_number(&a, "MEAS:CURR?");
    double v3 = ask_number(&a, "MEAS:VOLT?");
    cr_expect(i >= v2 / 10 - 0.01 && i <= v3 / 10 + 0.01, "Ohm's law through 10 ohms: %g A at %g V",
              i, v3);
    cr_expect(eq(str, (char *)app_ask_text(&a, "STAT:QUES:COND?"), "0"), "not limited at 5 A");
    app_send(&a, "CURR 0.02");
    cr_expect(eq(str, (char *)app_ask_text(&a, "MEAS:CURR?"), "0.0200"), "limited to CURR");
    cr_expect(eq(str, (char *)app_ask_text(&a, "STAT:QUES:COND?"), "2"), "the current bit");
    cr_expect(eq(str, (char *)app_ask_text(&a, "MEAS:VOLT?"), "0.2000"),
              "constant current: 0.02 A through 10 ohms");
    app_send(&a, "OUTP OFF");
    cr_expect(eq(str, (char *)app_ask_text(&a, "MEAS:CURR?;:STAT:QUES:COND?;:MEAS:VOLT?"),
                 "0.0000;0;0.0000"),
              "no current and no voltage with the output off");
    app_send(&a, "VOLT 31;:SIM:LOAD -1");
    cr_expect(eq(str, (char *)app_ask_text(&a, "SYST:ERR?;:VOLT?;:SIM:LOAD?"),
                 "-222,\"Data out of range\";12.000;10"));
    app_close(&a);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0));
}

Test(sim_examples, temperature_controller_line_protocol)
{
    dw_sim_proc *p = serve_example("tempctl.json");
    app a;
    app_open(&a, tcp(p->port), dw_sentinel_marshaller_new("\n", 1), NULL);
    cr_expect(eq(str, (char *)app_ask_text(&a, "*IDN?"), "ACME,TC-10,0007,3.2"));
    double t0 = ask_number(&a, "MEAS:TEMP?");
    cr_expect(t0 > 21.9 && t0 < 22.1, "room temperature: %g", t0);
    cr_expect(eq(str, (char *)app_ask_text(&a, "SP 80"), "OK"));
    cr_expect(eq(str, (char *)app_ask_text(&a, "SP 500"), "ERR SP 500"));
    cr_expect(eq(str, (char *)app_ask_text(&a, "SP?"), "80.0"));
    usleep(400 * 1000);
    double t1 = ask_number(&a, "MEAS:TEMP?");
    cr_expect(t1 > 22.1 && t1 < 79, "heating at 0.5 degrees a second: %g", t1);
    cr_expect(eq(str, (char *)app_ask_text(&a, "MODE man"), "OK"));
    cr_expect(eq(str, (char *)app_ask_text(&a, "MODE?"), "MAN"));
    cr_expect(eq(str, (char *)app_ask_text(&a, "HELLO"), "ERR unknown command"));
    app_close(&a);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0));
}

Test(sim_examples, binary_relay_board)
{
    dw_sim_proc *p = serve_example("relay.json");
    app a;
    app_open(&a, tcp(p->port), dw_fixed_marshaller_new(4), NULL);
    static const uint8_t on1[] = {0xaa, 0x10, 0x01, 0x55}, on1r[] = {0xaa, 0x90, 0x01, 0x01};
    static const uint8_t rd1[] = {0xaa, 0x01, 0x01, 0x55}, rd1r[] = {0xaa, 0x81, 0x01, 0x01};
    static const uint8_t rd2[] = {0xaa, 0x01, 0x02, 0x55}, rd2r[] = {0xaa, 0x81, 0x02, 0x00};
    static const uint8_t bad[] = {0x00, 0x00, 0x00, 0x00}, badr[] = {0xaa, 0xee, 0x00, 0x00};
    cr_expect(memcmp(app_ask(&a, on1, 4)->data, on1r, 4) == 0, "switch relay 1 on");
    cr_expect(memcmp(app_ask(&a, rd1, 4)->data, rd1r, 4) == 0, "relay 1 reads on");
    cr_expect(memcmp(app_ask(&a, rd2, 4)->data, rd2r, 4) == 0, "relay 2 still off");
    cr_expect(memcmp(app_ask(&a, bad, 4)->data, badr, 4) == 0, "unknown command");
    app_close(&a);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0));
}

Test(sim_examples, json_lines_pdu)
{
    dw_sim_proc *p = serve_example("pdu.json");
    app a;
    app_open(&a, tcp(p->port), dw_json_marshaller_new(), NULL);
    const char *r = app_ask_text(&a, "{\"cmd\": \"identify\"}");
    cr_expect(strstr(r, "\"model\":\"PD-4\"") != NULL, "%s", r);
    r = app_ask_text(&a, "{\"cmd\": \"set\", \"outlet\": 1, \"on\": true}");
    cr_expect(strstr(r, "\"on\":true") != NULL, "%s", r);
    r = app_ask_text(&a, "{\"cmd\": \"status\"}");
    cr_expect(strstr(r, "{\"outlet\":1,\"on\":true") != NULL, "state in the reply: %s", r);
    r = app_ask_text(&a, "{\"cmd\": \"dance\"}");
    cr_expect(strstr(r, "\"ok\":false") != NULL, "%s", r);
    app_close(&a);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0));
}

/* Read the console's prompt, which follows each reply. */
static void expect_prompt(app *a)
{
    dw_iter *it = dw_session_iter(dw_app_session_transport(a->s));
    char got[8] = {0};
    size_t have = 0;
    while (have < 7) {
        const uint8_t *d;
        size_t n;
        cr_assert(eq(int, dw_iter_next(it, &d, &n), DW_OK), "reading the prompt");
        size_t take = n > 7 - have ? 7 - have : n;
        memcpy(got + have, d, take);
        dw_iter_unread(it, n - take);
        have += take;
    }
    cr_expect(eq(str, got, "sc200> "));
}

Test(sim_examples, telnet_console)
{
    dw_sim_proc *p = serve_example("console.json");
    dw_telnet_client_options o;
    dw_telnet_client_options_init(&o);
    o.tcp.host = "127.0.0.1";
    o.tcp.port = p->port;
    o.tcp.timeout_ms = 5000;
    o.banner = DW_TELNET_BANNER_PROMPT;
    o.banner_prompt = "sc200> ";
    o.banner_prompt_len = 7;
    app a;
    app_open(&a, dw_telnet_client_new(&o), dw_sentinel_marshaller_new("\r\n", 2), NULL);
    const dw_buf *banner = dw_telnet_session_banner(dw_app_session_transport(a.s));
    cr_assert(banner != NULL);
    cr_expect(strstr((const char *)banner->data, "ACME SC-200") != NULL, "%s",
              (const char *)banner->data);
    cr_expect(
        eq(str, (char *)app_ask_text(&a, "show version"), "SC-200 firmware 3.1 (build 4711)"));
    expect_prompt(&a);
    cr_expect(eq(str, (char *)app_ask_text(&a, "set hostname lab-2"), "hostname set to lab-2"));
    expect_prompt(&a);
    cr_expect(eq(str, (char *)app_ask_text(&a, "show hostname"), "lab-2"));
    expect_prompt(&a);
    cr_expect(eq(str, (char *)app_ask_text(&a, "reboot"), "% Unknown command: reboot"));
    expect_prompt(&a);
    app_close(&a);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0));
}
