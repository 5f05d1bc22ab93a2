/* devwire-sim serving several devices in one process: --device options and
 * a --bench file, each device with its own readiness line, summary and
 * transcript events, all named; bench files refused with located errors. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <devwire/devwire.h>
#include <devwire/telnet.h>

#include "sim_fixture.h"

/* Each test's simulator and files are dw_sim_fixture's: .fini stops and
 * removes them whatever happened. */
TestSuite(sim_bench, .init = dw_sim_fixture_init, .fini = dw_sim_fixture_fini, .timeout = 90);

/* A device's script answering PING with `reply`: its file (the fixture's). */
static const char *script(const char *reply)
{
    char text[256];
    snprintf(text, sizeof text,
             "{\"name\": \"%s device\", \"rules\": [{\"when\": \"PING\", "
             "\"reply\": \"%s\"}]}",
             reply, reply);
    return dw_sim_fixture_file("dev", text);
}

/* Wait for device `name`'s readiness line and return its port. */
static uint16_t port_of(dw_sim_proc *p, const char *name)
{
    char tail[96];
    snprintf(tail, sizeof tail, " (%s)\n", name);
    cr_assert(dw_sim_proc_wait_output(p, 0, tail, 20000), "no readiness line for %s:\n%s\n%s", name,
              dw_sim_out_of(p), dw_sim_err_of(p));
    const char *end = strstr(dw_sim_out_of(p), tail);
    const char *colon = end;
    while (colon > dw_sim_out_of(p) && *colon != ':')
        colon--;
    return (uint16_t)atoi(colon + 1);
}

static void ask_eq(uint16_t port, const char *req, const char *want)
{
    dw_sim_client c;
    int rc = dw_sim_client_open(&c, port, dw_sentinel_marshaller_new("\n", 1), 20000);
    cr_assert(eq(int, rc, DW_OK), "connect %u: %s", port, dw_error_message(&c.err));
    const char *got = dw_sim_client_ask(&c, req);
    cr_assert(got != NULL, "%s: no reply: %s", req, dw_error_message(&c.err));
    cr_expect(eq(str, (char *)got, (char *)want), "%s on port %u", req, port);
    dw_sim_client_close(&c);
}

Test(sim_bench, two_devices_from_the_command_line)
{
    const char *a = script("a"), *b = script("b");
    char da[300], db[300];
    snprintf(da, sizeof da, "alpha=%s@127.0.0.1:0", a);
    snprintf(db, sizeof db, "beta=%s@127.0.0.1:0", b);
    const char *const args[] = {"--device", da, "--device", db, "--check", NULL};
    dw_sim_proc *p = dw_sim_start(&dw_sim_fixture.proc, args, "devwire-sim");
    uint16_t pa = port_of(p, "alpha"), pb = port_of(p, "beta");
    cr_expect(ne(int, pa, pb), "two ports");
    ask_eq(pa, "PING", "a");
    ask_eq(pb, "PING", "b");
    ask_eq(pa, "PING", "a");
    dw_sim_client c;
    cr_assert(
        eq(int, dw_sim_client_open(&c, pb, dw_sentinel_marshaller_new("\n", 1), 20000), DW_OK));
    cr_assert(eq(int, dw_sim_client_send(&c, "WHAT?", 5), DW_OK));
    const char *got = dw_sim_client_ask(&c, "PING"); /* answered: WHAT? was handled before */
    cr_expect(got && strcmp(got, "b") == 0, "beta still answers");
    dw_sim_client_close(&c);
    const char *out;
    cr_expect(eq(int, dw_sim_stop(p, 20000, &out), 1), "--check fails: beta got WHAT?\n%s", out);
    const char *sa = strstr(out, "summary: alpha: a device ("),
               *sb = strstr(out, "summary: beta: b device (");
    cr_assert(sa && sb, "a summary per device, named:\n%s", out);
    cr_expect(strstr(sa, "  requests: 2\n") < sb, "alpha's own figures:\n%s", out);
    cr_expect(strstr(sb, "  requests: 3\n") != NULL, "beta's own figures:\n%s", out);
    cr_expect(strstr(sb, "    \"WHAT?\"\n") != NULL, "beta's unmatched request:\n%s", out);
    cr_expect(strstr(out, "check failed: 1 unmatched request(s), 0 step(s) not reached") != NULL,
              "%s", out);
}

/* Read raw bytes until `want` has arrived. */
static void expect_text(dw_session *s, const char *want)
{
    dw_buf got = DW_BUF_INIT;
    dw_iter *it = dw_session_iter(s);
    while (got.len < strlen(want)) {
        const uint8_t *d;
        size_t n;
        cr_assert(eq(int, dw_iter_next(it, &d, &n), DW_OK));
        dw_buf_append(&got, d, n);
    }
    cr_expect(eq(sz, got.len, strlen(want)));
    cr_expect(memcmp(got.data, want, got.len) == 0, "got %.*s", (int)got.len, (char *)got.data);
    dw_buf_free(&got);
}

Test(sim_bench, three_devices_from_a_bench_file)
{
    const char *a = script("a"), *b = script("b"), *c = script("c");
    const char *transcript = dw_sim_fixture_transcript();
    const char *base_b = strrchr(b, '/') + 1; /* relative to the bench file's directory */
    char text[1024];
    snprintf(text, sizeof text,
             "[\n"
             "  {\"name\": \"psu\", \"script\": \"%s\", \"listen\": \"127.0.0.1:0\"},\n"
             "  {\"name\": \"sg\", \"script\": \"%s\"},\n"
             "  {\"name\": \"console\", \"script\": \"%s\", \"listen\": \"127.0.0.1:0\",\n"
             "   \"transport\": \"telnet\", \"description\": \"the same rules over Telnet\"}\n"
             "]\n",
             a, base_b, c);
    const char *bench = dw_sim_fixture_file("bench", text);
    const char *const args[] = {"--bench", bench, "--transcript", transcript, NULL};
    dw_sim_proc *p = dw_sim_start(&dw_sim_fixture.proc, args, "devwire-sim");
    uint16_t psu = port_of(p, "psu"), sg = port_of(p, "sg"), con = port_of(p, "console");
    ask_eq(psu, "PING", "a");
    ask_eq(sg, "PING", "b");

    /* The console speaks Telnet: its offers come first, then the reply. */
    dw_telnet_client_options o;
    dw_telnet_client_options_init(&o);
    o.tcp.host = "127.0.0.1";
    o.tcp.port = con;
    o.tcp.timeout_ms = 20000;
    dw_client *tc = dw_telnet_client_new(&o);
    dw_session *s = NULL;
    dw_error err;
    cr_assert(eq(int, dw_client_connect(tc, &s, &err), DW_OK), "%s", dw_error_message(&err));
    cr_assert(eq(int, dw_session_send(s, "PING\n", 5, &err), DW_OK));
    expect_text(s, "c\n");
    cr_expect(eq(int, dw_telnet_remote_enabled(dw_telnet_session_filter(s), 3), 1),
              "the device offered SUPPRESS-GO-AHEAD: it is Telnet");
    dw_session_close(s);
    dw_client_free(tc);

    const char *out;
    cr_expect(eq(int, dw_sim_stop(p, 20000, &out), 0), "%s", dw_sim_err_of(p));
    cr_expect(strstr(out, "summary: psu: a device (") && strstr(out, "summary: sg: b device (") &&
                  strstr(out, "summary: console: c device ("),
              "%s", out);
    FILE *f = fopen(transcript, "r");
    cr_assert(f != NULL);
    char line[512];
    int seen[3] = {0, 0, 0};
    while (fgets(line, sizeof line, f)) {
        seen[0] +=
            strstr(line, "\"device\":\"psu\",\"conn\":1,\"dir\":\"in\",\"text\":\"PING\"") != NULL;
        seen[1] +=
            strstr(line, "\"device\":\"sg\",\"conn\":1,\"dir\":\"out\",\"text\":\"b\\n\"") != NULL;
        seen[2] += strstr(line, "\"device\":\"console\",\"conn\":1,\"dir\":\"close\"") != NULL;
    }
    fclose(f);
    cr_expect(seen[0] == 1 && seen[1] == 1 && seen[2] == 1,
              "transcript events carry their device (%d %d %d)", seen[0], seen[1], seen[2]);
}

Test(sim_bench, a_single_script_keeps_its_plain_readiness_line)
{
    const char *a = script("a");
    const char *const args[] = {"--script", a, "--listen", "127.0.0.1:0", NULL};
    dw_sim_proc *p = dw_sim_start(&dw_sim_fixture.proc, args, "devwire-sim");
    char want[64];
    snprintf(want, sizeof want, "listening on 127.0.0.1:%u\n", p->port);
    cr_expect(eq(str, (char *)dw_sim_out_of(p), want));
    ask_eq(p->port, "PING", "a");
    cr_expect(eq(int, dw_sim_stop(p, 20000, NULL), 0));
    cr_expect(strstr(dw_sim_out_of(p), "summary: a device (") != NULL, "%s", dw_sim_out_of(p));
}

/* devwire-sim --bench with this text exits 2 and says `message`, located. */
static void expect_bad_bench(const char *text, const char *message)
{
    const char *bench = dw_sim_fixture_file("badbench", text);
    const char *const args[] = {"--bench", bench, NULL};
    dw_sim_proc p;
    cr_expect(eq(int, dw_sim_proc_run(&p, args, 20000), 2), "exit status for %s", text);
    char want[400];
    snprintf(want, sizeof want, "%s%s", bench, message);
    cr_expect(strstr(dw_sim_err_of(&p), want) != NULL, "expected \"%s\" in:\n%s", want,
              dw_sim_err_of(&p));
    dw_sim_proc_free(&p);
}

Test(sim_bench, bad_bench_files_are_refused_with_their_place)
{
    expect_bad_bench("{\"name\": \"x\"}", ":1:1: expected a list of devices");
    expect_bad_bench("[]", ":1:1: a bench lists at least one device");
    expect_bad_bench("[{\"name\": \"a\", \"script\": \"a.json\"},\n"
                     " {\"name\": \"b\", \"script\": \"b.json\", \"lisen\": \"127.0.0.1:0\"}]",
                     ":2:36: [1].lisen: unknown key (did you mean \"listen\"?)");
    expect_bad_bench("[{\"name\": \"a\"}]", ":1:2: [0]: a device needs \"script\"");
    expect_bad_bench("[{\"name\": \"a\", \"script\": \"a.json\"},\n"
                     " {\"name\": \"a\", \"script\": \"b.json\"}]",
                     ":2:11: [1].name: another device is named \"a\"");
    expect_bad_bench("[{\"name\": \"a\", \"script\": \"a.json\", \"listen\": \"nowhere\"}]",
                     ":1:46: [0].listen: expected \"HOST:PORT\"");
    expect_bad_bench("[{\"name\": \"a\", \"script\": \"a.json\", \"transport\": \"telent\"}]",
                     ":1:49: [0].transport: unknown value \"telent\" (did you mean \"telnet\"?)");
    expect_bad_bench("[{\"name\": \"a\", \"script\": \"a.json\",]",
                     ":1:35: [0]: JSON syntax error");
}

Test(sim_bench, bad_device_options_and_missing_scripts)
{
    const char *const malformed[] = {"--device", "alpha:x.json@127.0.0.1:0", NULL};
    dw_sim_proc p;
    cr_expect(eq(int, dw_sim_proc_run(&p, malformed, 20000), 2));
    cr_expect(strstr(dw_sim_err_of(&p),
                     "--device alpha:x.json@127.0.0.1:0: expected NAME=SCRIPT@HOST:PORT") != NULL,
              "%s", dw_sim_err_of(&p));
    dw_sim_proc_free(&p);
    const char *a = script("a");
    char da[300];
    snprintf(da, sizeof da, "alpha=%s@127.0.0.1:0", a);
    const char *const missing[] = {"--device", da, "--device",
                                   "beta=/nonexistent/b.json@127.0.0.1:0", NULL};
    cr_expect(eq(int, dw_sim_proc_run(&p, missing, 20000), 2));
    cr_expect(strstr(dw_sim_err_of(&p), "beta: /nonexistent/b.json: No such file or directory") !=
                  NULL,
              "%s", dw_sim_err_of(&p));
    dw_sim_proc_free(&p);
    const char *const twice[] = {"--device", da, "--device", da, NULL};
    cr_expect(eq(int, dw_sim_proc_run(&p, twice, 20000), 2));
    cr_expect(strstr(dw_sim_err_of(&p), "two devices are named \"alpha\"") != NULL, "%s",
              dw_sim_err_of(&p));
    dw_sim_proc_free(&p);
}

/* ---- --loops: each device on one loop thread --------------------------- */

/* BUSY holds its device's loop for as long as the deadline lets it: a Lua
 * pattern backtracking through 2000^6 ways, under --lua-deadline 60000. */
static const char busy_device[] =
    "{\"rules\": [{\"when\": \"BUSY\", \"reply\": {\"lua\": "
    "\"tostring(string.find(string.rep('a', 2000), 'a*a*a*a*a*a*b'))\"}}]}";

/* Devices busy and good in one process with `loops` loops, busy's loop
 * held by a BUSY in flight; whether good answers PING within timeout_ms. */
static int good_answers_next_to_busy(const char *loops, int timeout_ms)
{
    const char *busy = dw_sim_fixture_file("busy", busy_device), *good = script("PONG");
    char db[300], dg[300];
    snprintf(db, sizeof db, "busy=%s@127.0.0.1:0", busy);
    snprintf(dg, sizeof dg, "good=%s@127.0.0.1:0", good);
    const char *const args[] = {"--device",       db,      "--device", dg, "--loops", loops,
                                "--lua-deadline", "60000", NULL};
    dw_sim_proc *p = dw_sim_start(&dw_sim_fixture.proc, args, "devwire-sim");
    uint16_t pb = port_of(p, "busy"), pg = port_of(p, "good");
    dw_sim_client b, g;
    dw_sim_open_ok(&b, pb, dw_sentinel_marshaller_new("\n", 1), 20000);
    cr_assert(eq(int, dw_sim_client_send(&b, "BUSY", 4), DW_OK));
    usleep(100 * 1000); /* BUSY has reached busy's loop */
    dw_sim_open_ok(&g, pg, dw_sentinel_marshaller_new("\n", 1), timeout_ms);
    cr_assert(eq(int, dw_sim_client_send(&g, "PING", 4), DW_OK));
    int answered = dw_sim_client_recv(&g) == DW_OK && strcmp((char *)g.reply.data, "PONG") == 0;
    dw_sim_client_close(&g);
    dw_sim_client_close(&b);
    /* busy's loop cannot stop in time: the watchdog ends the process */
    dw_sim_proc_kill(p, SIGKILL);
    return answered;
}

Test(sim_bench, a_device_busy_on_its_loop_does_not_hold_one_on_another)
{
    cr_expect(good_answers_next_to_busy("2", 20000), "good answers while busy's loop is held");
    /* The control: on one loop, good waits behind busy. */
    cr_expect(not(good_answers_next_to_busy("1", 1000)), "one loop: good cannot answer");
}

Test(sim_bench, loops_out_of_range_are_refused)
{
    const char *const zero[] = {"--loops", "0", "--script", "x.json", NULL};
    const char *const many[] = {"--loops", "257", "--script", "x.json", NULL};
    const char *const *bad[] = {zero, many};
    for (size_t i = 0; i < 2; i++) {
        dw_sim_proc p;
        cr_expect(eq(int, dw_sim_proc_run(&p, bad[i], 10000), 2));
        cr_expect(strstr(dw_sim_err_of(&p), "expected a number from 1 to 256") != NULL, "%s",
                  dw_sim_err_of(&p));
        dw_sim_proc_free(&p);
    }
}
