/* devwire-sim as a subprocess, driven with libdevwire's own clients: script
 * features, the command line, the summary and --check, reload; and that a
 * simulator never outlives the test that started it. (Faults and bad input
 * on the wire: test_sim_faults.c.) */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <devwire/devwire.h>

#include "run/cli.h"
#include "sim_fixture.h"

/* Each test's simulator and files are dw_sim_fixture's: .fini stops and
 * removes them whatever happened. */
TestSuite(sim, .init = dw_sim_fixture_init, .fini = dw_sim_fixture_fini, .timeout = 60);

#define LF dw_sentinel_marshaller_new("\n", 1)

static const char *const no_args[] = {NULL};

/* Serve `script` in the fixture, connect one client with `m`; asserts both
 * worked. The simulator. */
static dw_sim_proc *serve(dw_sim_client *c, const char *script, dw_marshaller *m,
                          const char *const *extra)
{
    dw_sim_proc *p = dw_sim_serve("t", script, extra);
    dw_sim_open_ok(c, p->port, m, 5000);
    return p;
}

/* ---- matching, templates, state ------------------------------------------ */

static const char sg_script[] =
    "{\"name\": \"SG\", \"framing\": {\"type\": \"sentinel\", \"sentinel\": \"\\n\"},\n"
    " \"state\": {\"freq\": \"1000\", \"output\": \"OFF\"},\n"
    " \"rules\": [\n"
    "  {\"when\": \"*IDN?\", \"reply\": \"ACME,SG-1000,0001,1.0\"},\n"
    "  {\"when\": {\"regex\": \"^FREQ ([0-9.]+)$\"}, \"set\": {\"freq\": \"$1\"}},\n"
    "  {\"when\": \"FREQ?\", \"reply\": \"${freq}\"},\n"
    "  {\"when\": {\"prefix\": \"ECHO \"}, \"reply\": \"you said <$0>\"},\n"
    "  {\"when\": {\"regex\": \"^OUTP (ON|OFF)$\"}, \"set\": {\"output\": \"$1\"}, "
    "\"reply\": \"was ${output}\"},\n"
    "  {\"when\": \"OUTP?\", \"reply\": \"${output}\"},\n"
    "  {\"when\": \"MEAS?\", \"reply\": [\"1.01\", \"1.02\", \"1.03\"]},\n"
    "  {\"when\": \"SLOW?\", \"reply\": \"done\", \"delay_ms\": 50},\n"
    "  {\"when\": \"SPLIT?\", \"reply\": \"abcdefghij\", \"split\": [1, 2], \"split_delay_ms\": "
    "5},\n"
    "  {\"when\": \"TWO?\", \"reply\": {\"frames\": [\"one\", \"two\"]}},\n"
    "  {\"when\": \"*IDN?\", \"reply\": \"never: the first rule wins\"}\n"
    " ],\n"
    " \"unmatched\": {\"reply\": \"-113,\\\"Undefined header\\\"\"}}\n";

Test(sim, exact_prefix_regex_templates_and_state)
{
    dw_sim_client c;
    dw_sim_proc *p = serve(&c, sg_script, LF, no_args);
    dw_sim_ask_eq(&c, "*IDN?", "ACME,SG-1000,0001,1.0");
    dw_sim_ask_eq(&c, "FREQ?", "1000");
    cr_assert(eq(int, dw_sim_client_send(&c, "FREQ 2500.5", 11), DW_OK));
    dw_sim_ask_eq(&c, "FREQ?", "2500.5"); /* no reply to the set: the next reply is FREQ?'s */
    dw_sim_ask_eq(&c, "ECHO hello", "you said <ECHO hello>");
    dw_sim_ask_eq(&c, "OUTP ON", "was ON"); /* set applies before the reply */
    dw_sim_ask_eq(&c, "OUTP?", "ON");
    dw_sim_ask_eq(&c, "BOGUS", "-113,\"Undefined header\"");
    dw_sim_ask_eq(&c, "SLOW?", "done");
    dw_sim_ask_eq(&c, "SPLIT?", "abcdefghij"); /* written in pieces of 1, 2, 2, ... */
    dw_sim_ask_eq(&c, "TWO?", "one");
    cr_assert(eq(int, dw_sim_client_recv(&c), DW_OK), "second frame");
    cr_expect(eq(str, (char *)c.reply.data, "two"));
    dw_sim_client_close(&c);
    const char *out;
    int st = dw_sim_stop(p, 10000, &out);
    cr_expect(eq(int, st, 0), "exit status; stderr:\n%s", dw_sim_err_of(p));
    cr_expect(strstr(out, "unmatched requests: 1") != NULL, "summary:\n%s", out);
}

Test(sim, reply_lists_in_turn)
{
    static const char script[] =
        "{\"framing\": {\"type\": \"sentinel\", \"sentinel\": \"\\n\"},\n"
        " \"rules\": [\n"
        "  {\"when\": \"REP?\", \"reply\": [\"a\", \"b\"]},\n"
        "  {\"when\": \"CYC?\", \"reply\": [\"a\", \"b\"], \"after_last\": \"cycle\"},\n"
        "  {\"when\": \"SIL?\", \"reply\": [\"a\"], \"after_last\": \"silent\"},\n"
        "  {\"when\": \"PING\", \"reply\": \"pong\"}\n"
        " ]}\n";
    dw_sim_client c;
    dw_sim_proc *p = serve(&c, script, LF, no_args);
    dw_sim_ask_eq(&c, "REP?", "a");
    dw_sim_ask_eq(&c, "REP?", "b");
    dw_sim_ask_eq(&c, "REP?", "b"); /* the last one repeats by default */
    dw_sim_ask_eq(&c, "CYC?", "a");
    dw_sim_ask_eq(&c, "CYC?", "b");
    dw_sim_ask_eq(&c, "CYC?", "a");
    dw_sim_ask_eq(&c, "SIL?", "a");
    cr_assert(eq(int, dw_sim_client_send(&c, "SIL?", 4), DW_OK));
    dw_sim_ask_eq(&c, "PING", "pong"); /* SIL? said nothing the second time */
    dw_sim_client_close(&c);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0));
}

Test(sim, binary_match_and_reply_length_prefixed)
{
    static const char script[] =
        "{\"framing\": {\"type\": \"length-prefixed\", \"header_size\": 2, \"endian\": \"big\"},\n"
        " \"rules\": [\n"
        "  {\"when\": {\"hex\": \"00ff0a00\"}, \"reply\": {\"hex\": \"ff000aff00\"}},\n"
        "  {\"when\": {\"base64\": \"AQID\"}, \"reply\": {\"base64\": \"AAAA\"}}\n"
        " ]}\n";
    dw_sim_client c;
    dw_sim_proc *p =
        serve(&c, script, dw_length_prefixed_marshaller_new(2, DW_BIG_ENDIAN), no_args);
    static const uint8_t q1[] = {0x00, 0xff, 0x0a, 0x00}, a1[] = {0xff, 0x00, 0x0a, 0xff, 0x00};
    cr_assert(eq(int, dw_sim_client_send(&c, q1, sizeof q1), DW_OK));
    cr_assert(eq(int, dw_sim_client_recv(&c), DW_OK), "%s", dw_error_message(&c.err));
    cr_expect(eq(sz, c.reply.len, sizeof a1));
    cr_expect(memcmp(c.reply.data, a1, sizeof a1) == 0, "binary reply bytes");
    static const uint8_t q2[] = {1, 2, 3}, a2[] = {0, 0, 0};
    cr_assert(eq(int, dw_sim_client_send(&c, q2, sizeof q2), DW_OK));
    cr_assert(eq(int, dw_sim_client_recv(&c), DW_OK));
    cr_expect(eq(sz, c.reply.len, 3));
    cr_expect(memcmp(c.reply.data, a2, 3) == 0, "base64 reply bytes");
    dw_sim_client_close(&c);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0));
}

Test(sim, banner_and_prompt)
{
    static const char script[] =
        "{\"framing\": {\"type\": \"sentinel\", \"sentinel\": \"\\r\\n\"},\n"
        " \"banner\": \"Welcome to ${model}\\r\\n\", \"prompt\": \"> \",\n"
        " \"state\": {\"model\": \"PDU-8\"},\n"
        " \"rules\": [{\"when\": \"ver\", \"reply\": \"1.2\"}]}\n";
    dw_sim_client c;
    dw_sim_proc *p = serve(&c, script, dw_sentinel_marshaller_new("\r\n", 2), no_args);
    cr_assert(eq(int, dw_sim_client_recv_raw(&c, 18), DW_OK), "%s", dw_error_message(&c.err));
    cr_expect(eq(str, (char *)c.reply.data, "Welcome to PDU-8\r\n"), "the banner, rendered");
    dw_sim_ask_eq(&c, "ver", "1.2");
    cr_assert(eq(int, dw_sim_client_recv_raw(&c, 2), DW_OK));
    cr_expect(eq(str, (char *)c.reply.data, "> "), "the prompt follows the reply");
    dw_sim_client_close(&c);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0));
}

Test(sim, periodic_messages_reach_every_client)
{
    static const char script[] =
        "{\"framing\": {\"type\": \"sentinel\", \"sentinel\": \"\\n\"},\n"
        " \"state\": {\"output\": \"OFF\"},\n"
        " \"rules\": [{\"when\": \"ON\", \"set\": {\"output\": \"ON\"}}],\n"
        " \"periodic\": [{\"every_ms\": 50, \"send\": \"STATUS ${output}\"}]}\n";
    dw_sim_client a, b;
    dw_sim_proc *p = serve(&a, script, LF, no_args);
    cr_assert(eq(int, dw_sim_client_open(&b, p->port, LF, 5000), DW_OK));
    cr_assert(eq(int, dw_sim_client_recv(&a), DW_OK), "%s", dw_error_message(&a.err));
    cr_expect(eq(str, (char *)a.reply.data, "STATUS OFF"));
    cr_assert(eq(int, dw_sim_client_recv(&b), DW_OK), "%s", dw_error_message(&b.err));
    cr_expect(eq(str, (char *)b.reply.data, "STATUS OFF"));
    cr_assert(eq(int, dw_sim_client_send(&a, "ON", 2), DW_OK));
    int seen = 0;
    for (int i = 0; i < 100 && !seen; i++) {
        cr_assert(eq(int, dw_sim_client_recv(&b), DW_OK));
        seen = strcmp((char *)b.reply.data, "STATUS ON") == 0;
    }
    cr_expect(seen, "the template follows the shared state");
    dw_sim_client_close(&a);
    dw_sim_client_close(&b);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0));
}

Test(sim, state_scope_per_connection)
{
    static const char script[] =
        "{\"framing\": {\"type\": \"sentinel\", \"sentinel\": \"\\n\"},\n"
        " \"scope\": \"connection\", \"state\": {\"v\": \"0\"},\n"
        " \"rules\": [{\"when\": {\"regex\": \"^SET (.*)$\"}, \"set\": {\"v\": \"$1\"}, "
        "\"reply\": \"ok\"},\n"
        "            {\"when\": \"GET\", \"reply\": \"${v}\"}]}\n";
    dw_sim_client a, b;
    dw_sim_proc *p = serve(&a, script, LF, no_args);
    cr_assert(eq(int, dw_sim_client_open(&b, p->port, LF, 5000), DW_OK));
    dw_sim_ask_eq(&a, "SET 7", "ok");
    dw_sim_ask_eq(&a, "GET", "7");
    dw_sim_ask_eq(&b, "GET", "0"); /* b has its own state */
    dw_sim_client_close(&a);
    dw_sim_client_close(&b);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0));
}

/* ---- steps, summary, --check --------------------------------------------- */

static const char steps_script[] =
    "{\"framing\": {\"type\": \"sentinel\", \"sentinel\": \"\\n\"},\n"
    " \"steps\": [{\"expect\": \"HELLO\", \"reply\": \"step one\"},\n"
    "           {\"expect\": \"HELLO\", \"reply\": \"step two\"},\n"
    "           {\"expect\": \"BYE\", \"reply\": \"step three\"}],\n"
    " \"rules\": [{\"when\": \"HELLO\", \"reply\": \"rule\"}]}\n";

Test(sim, steps_replay_in_order_then_rules)
{
    const char *const check[] = {"--check", NULL};
    dw_sim_client c;
    dw_sim_proc *p = serve(&c, steps_script, LF, check);
    dw_sim_ask_eq(&c, "HELLO", "step one");
    dw_sim_ask_eq(&c, "HELLO", "step two");
    dw_sim_ask_eq(&c, "HELLO", "rule"); /* the next step expects BYE */
    dw_sim_ask_eq(&c, "BYE", "step three");
    dw_sim_ask_eq(&c, "HELLO", "rule"); /* all steps done */
    dw_sim_client_close(&c);
    const char *out;
    int st = dw_sim_stop(p, 10000, &out);
    cr_expect(eq(int, st, 0), "--check passes: nothing unmatched, every step reached:\n%s", out);
    cr_expect(strstr(out, "check passed") != NULL, "%s", out);
}

Test(sim, check_fails_on_step_not_reached)
{
    const char *const check[] = {"--check", NULL};
    dw_sim_client c;
    dw_sim_proc *p = serve(&c, steps_script, LF, check);
    dw_sim_ask_eq(&c, "HELLO", "step one");
    dw_sim_client_close(&c);
    const char *out;
    int st = dw_sim_stop(p, 10000, &out);
    cr_expect(eq(int, st, 1), "--check exit status when steps were not reached");
    cr_expect(strstr(out, "steps not reached: 2 of 3") != NULL, "summary:\n%s", out);
}

Test(sim, check_fails_on_unmatched)
{
    static const char script[] = "{\"framing\": {\"type\": \"sentinel\", \"sentinel\": \"\\n\"},"
                                 " \"rules\": [{\"when\": \"A\", \"reply\": \"a\"}],"
                                 " \"unmatched\": {\"reply\": \"?\"}}";
    const char *const check[] = {"--check", NULL};
    dw_sim_client c;
    dw_sim_proc *p = serve(&c, script, LF, check);
    dw_sim_ask_eq(&c, "A", "a");
    dw_sim_ask_eq(&c, "NOPE", "?");
    dw_sim_client_close(&c);
    const char *out;
    int st = dw_sim_stop(p, 10000, &out);
    cr_expect(eq(int, st, 1), "--check exit status with an unmatched request");
    cr_expect(strstr(out, "\"NOPE\"") != NULL, "the summary lists it:\n%s", out);
}

Test(sim, no_check_exits_zero_despite_unmatched)
{
    static const char script[] = "{\"framing\": {\"type\": \"sentinel\", \"sentinel\": \"\\n\"},"
                                 " \"rules\": [], \"unmatched\": {\"reply\": \"?\"}}";
    dw_sim_client c;
    dw_sim_proc *p = serve(&c, script, LF, no_args);
    dw_sim_ask_eq(&c, "NOPE", "?");
    dw_sim_client_close(&c);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0));
}

Test(sim, unmatched_close)
{
    static const char script[] = "{\"framing\": {\"type\": \"sentinel\", \"sentinel\": \"\\n\"},"
                                 " \"rules\": [{\"when\": \"A\", \"reply\": \"a\"}],"
                                 " \"unmatched\": {\"close\": true}}";
    dw_sim_client c;
    serve(&c, script, LF, no_args); /* .fini stops it */
    dw_sim_ask_eq(&c, "A", "a");
    cr_assert(eq(int, dw_sim_client_send(&c, "B", 1), DW_OK));
    cr_expect(eq(int, dw_sim_client_recv(&c), DW_EOF), "the simulator closes the connection");
    dw_sim_client_close(&c);
}

/* "then": the reply goes out whole, then the connection ends: FIN for
 * "close", RST for "reset"; a rule without it keeps the connection. */
Test(sim, reply_then_close_or_reset)
{
    static const char script[] =
        "{\"rules\": [{\"when\": \"A\", \"reply\": \"a\"},"
        " {\"when\": \"QUIT\", \"reply\": {\"frames\": [\"+OK\", \"bye\"]}, \"split\": [2],"
        "  \"split_delay_ms\": 5, \"then\": \"close\"},"
        " {\"when\": \"KILL\", \"reply\": \"x\", \"then\": \"reset\"}]}";
    dw_sim_client c;
    serve(&c, script, LF, no_args); /* .fini stops it */
    dw_sim_ask_eq(&c, "A", "a");
    dw_sim_ask_eq(&c, "A", "a");
    dw_sim_ask_eq(&c, "QUIT", "+OK");
    cr_assert(eq(int, dw_sim_client_recv(&c), DW_OK), "the second frame before the close");
    cr_expect(eq(str, (char *)c.reply.data, "bye"));
    cr_expect(eq(int, dw_sim_client_recv(&c), DW_EOF), "then the simulator closes");
    dw_sim_client_close(&c);

    int fd = dw_sim_raw_connect(dw_sim_fixture.proc.port, 0);
    cr_assert(fd >= 0);
    cr_assert(eq(sz, (size_t)send(fd, "KILL\n", 5, MSG_NOSIGNAL), 5));
    char buf[16];
    size_t got = 0;
    ssize_t r = 0;
    struct pollfd pfd = {fd, POLLIN, 0};
    while (poll(&pfd, 1, 10000) == 1 && (r = recv(fd, buf + got, sizeof buf - got, 0)) > 0)
        got += (size_t)r;
    int e = errno;
    cr_expect(eq(sz, got, 2), "the reply before the reset");
    cr_expect(eq(int, memcmp(buf, "x\n", 2), 0));
    cr_expect(r < 0 && e == ECONNRESET, "then a reset (recv %zd: %s)", r, strerror(e));
    close(fd);
}

/* ---- reload ---------------------------------------------------------------- */

static const char v1[] = "{\"framing\": {\"type\": \"sentinel\", \"sentinel\": \"\\n\"},"
                         " \"rules\": [{\"when\": \"V?\", \"reply\": \"one\"}]}";
static const char v2[] = "{\"framing\": {\"type\": \"sentinel\", \"sentinel\": \"\\n\"},"
                         " \"rules\": [{\"when\": \"V?\", \"reply\": \"two\"}]}";

static void rewrite(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert(f != NULL);
    fputs(text, f);
    fclose(f);
}

Test(sim, sighup_reloads_a_good_script)
{
    dw_sim_proc *p = dw_sim_serve("reload", v1, no_args);
    const char *path = dw_sim_fixture.script;
    dw_sim_client c;
    cr_assert(eq(int, dw_sim_client_open(&c, p->port, LF, 5000), DW_OK));
    dw_sim_ask_eq(&c, "V?", "one");
    rewrite(path, v2);
    cr_assert(eq(int, dw_sim_proc_kill(p, SIGHUP), DW_OK));
    cr_assert(dw_sim_proc_wait_output(p, 1, "reloaded", 10000), "stderr:\n%s", dw_sim_err_of(p));
    dw_sim_ask_eq(&c, "V?", "two"); /* an open connection follows from its next request */
    dw_sim_client d;
    cr_assert(eq(int, dw_sim_client_open(&d, p->port, LF, 5000), DW_OK));
    dw_sim_ask_eq(&d, "V?", "two");
    dw_sim_client_close(&c);
    dw_sim_client_close(&d);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0));
}

Test(sim, sighup_with_a_broken_script_keeps_the_old_one)
{
    dw_sim_proc *p = dw_sim_serve("reload", v1, no_args);
    const char *path = dw_sim_fixture.script;
    rewrite(path, "{\"rules\": [{\"when\": 42}]}");
    cr_assert(eq(int, dw_sim_proc_kill(p, SIGHUP), DW_OK));
    cr_assert(dw_sim_proc_wait_output(p, 1, "old script keeps serving", 10000), "stderr:\n%s",
              dw_sim_err_of(p));
    cr_expect(strstr(dw_sim_err_of(p), "rules[0].when") != NULL, "the error names the path:\n%s",
              dw_sim_err_of(p));
    dw_sim_client c;
    cr_assert(eq(int, dw_sim_client_open(&c, p->port, LF, 5000), DW_OK));
    dw_sim_ask_eq(&c, "V?", "one");
    dw_sim_client_close(&c);
    cr_expect(eq(int, dw_sim_stop(p, 10000, NULL), 0));
}

/* ---- the command line ------------------------------------------------------ */

static int run(dw_sim_proc *p, const char *const *args)
{
    return dw_sim_proc_run(p, args, 10000);
}

Test(sim, help_and_version)
{
    dw_sim_proc p;
    const char *const help[] = {"--help", NULL};
    cr_expect(eq(int, run(&p, help), 0));
    cr_expect(strstr(dw_sim_out_of(&p), "--script FILE") != NULL, "%s", dw_sim_out_of(&p));
    cr_expect(strstr(dw_sim_out_of(&p), "Exit status") != NULL);
    cr_expect(strstr(dw_sim_out_of(&p), "--max-frame BYTES") != NULL, "%s", dw_sim_out_of(&p));
    cr_expect(strstr(dw_sim_out_of(&p), "--max-buffered BYTES") != NULL, "%s", dw_sim_out_of(&p));
    dw_sim_proc_free(&p);
    const char *const ver[] = {"--version", NULL};
    cr_expect(eq(int, run(&p, ver), 0));
    cr_expect(strstr(dw_sim_out_of(&p), "devwire-sim ") != NULL, "%s", dw_sim_out_of(&p));
    dw_sim_proc_free(&p);
}

/* Whether text names the option `name` ("--name" not followed by more of
 * an option's name: "--control" is not named by "--control-token"). */
static int names_option(const char *text, const char *name)
{
    size_t len = strlen(name);
    for (const char *at = strstr(text, "--"); at; at = strstr(at + 2, "--")) {
        const char *end = at + 2 + len;
        if (strncmp(at + 2, name, len) == 0 && !isalnum((unsigned char)*end) && *end != '-')
            return 1;
    }
    return 0;
}

/* --help and the option table say the same: every option getopt takes
 * has its help, and every option the help names is taken. */
Test(sim, help_names_every_option)
{
    dw_sim_proc p;
    const char *const help[] = {"--help", NULL};
    cr_assert(eq(int, run(&p, help), 0));
    const char *text = dw_sim_out_of(&p);
    size_t n = 0;
    const struct option *opts = dw_sim_cli_options(&n);
    cr_assert(n > 0);
    for (size_t i = 0; i < n; i++)
        cr_expect(names_option(text, opts[i].name), "--help does not name --%s:\n%s", opts[i].name,
                  text);
    for (const char *at = strstr(text, "--"); at; at = strstr(at + 2, "--")) {
        size_t len = strspn(at + 2, "abcdefghijklmnopqrstuvwxyz0123456789-");
        int known = 0;
        for (size_t i = 0; i < n && !known; i++)
            known = strlen(opts[i].name) == len && strncmp(opts[i].name, at + 2, len) == 0;
        cr_expect(known, "--help names --%.*s, which is no option of the table", (int)len, at + 2);
    }
    dw_sim_proc_free(&p);
}

Test(sim, usage_errors_exit_2)
{
    dw_sim_proc p;
    const char *const none[] = {NULL};
    cr_expect(eq(int, run(&p, none), 2), "no --script");
    cr_expect(strstr(dw_sim_err_of(&p), "--script") != NULL, "%s", dw_sim_err_of(&p));
    dw_sim_proc_free(&p);
    const char *const bad[] = {"--frobnicate", NULL};
    cr_expect(eq(int, run(&p, bad), 2), "unknown option");
    dw_sim_proc_free(&p);
    const char *const listen[] = {"--script", "x.json", "--listen", "nocolon", NULL};
    cr_expect(eq(int, run(&p, listen), 2), "bad --listen");
    cr_expect(strstr(dw_sim_err_of(&p), "HOST:PORT") != NULL, "%s", dw_sim_err_of(&p));
    dw_sim_proc_free(&p);
    const char *const missing[] = {"--script", "/nonexistent/x.json", NULL};
    cr_expect(eq(int, run(&p, missing), 2), "missing script");
    cr_expect(strstr(dw_sim_err_of(&p), "/nonexistent/x.json") != NULL, "%s", dw_sim_err_of(&p));
    dw_sim_proc_free(&p);
}

Test(sim, address_in_use_exits_3)
{
    dw_sim_proc *a = dw_sim_serve("inuse", v1, no_args), b;
    const char *path = dw_sim_fixture_file("inuse", v1);
    char listen[80];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", a->port);
    const char *const args[] = {"--script", path, "--listen", listen, NULL};
    cr_expect(eq(int, run(&b, args), 3), "second server on the same port");
    cr_expect(strstr(dw_sim_err_of(&b), listen) != NULL, "the error names the address:\n%s",
              dw_sim_err_of(&b));
    dw_sim_proc_free(&b);
}

static void expect_invalid(const char *script, const char *message)
{
    const char *path = dw_sim_fixture_file("bad", script);
    const char *const args[] = {"--validate", path, NULL};
    dw_sim_proc p;
    cr_expect(eq(int, run(&p, args), 2), "--validate of %s", script);
    cr_expect(strstr(dw_sim_err_of(&p), message) != NULL, "expected \"%s\" in:\n%s", message,
              dw_sim_err_of(&p));
    cr_expect(strstr(dw_sim_err_of(&p), path) != NULL, "the message names the file:\n%s",
              dw_sim_err_of(&p));
    dw_sim_proc_free(&p);
}

Test(sim, bad_scripts_are_refused_with_a_message)
{
    expect_invalid("{\"rules\": [{\"when\": 42}]}", "rules[0].when");
    expect_invalid("{\"rules\": [{\"when\": \"A\", \"replly\": \"x\"}]}", "replly");
    expect_invalid("{\"rules\": [", ":1:");
    expect_invalid("{\"rules\": [{\"when\": {\"regex\": \"(\"}}]}", "rules[0].when");
    expect_invalid("{\"framing\": {\"type\": \"carrier-pigeon\"}}", "framing");
}

Test(sim, validate_accepts_a_good_script)
{
    const char *path = dw_sim_fixture_file("good", sg_script);
    const char *const args[] = {"--validate", path, NULL};
    dw_sim_proc p;
    cr_expect(eq(int, run(&p, args), 0), "stderr:\n%s", dw_sim_err_of(&p));
    dw_sim_proc_free(&p);
}

Test(sim, probe_and_ask)
{
    dw_sim_proc *p = dw_sim_serve("ask", sg_script, no_args);
    const char *path = dw_sim_fixture.script;
    char addr[80];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", p->port);
    dw_sim_proc q;
    const char *const probe[] = {"--probe", addr, NULL};
    cr_expect(eq(int, run(&q, probe), 0), "probe of a serving simulator:\n%s", dw_sim_err_of(&q));
    dw_sim_proc_free(&q);
    const char *const ask[] = {"--ask", addr, "--script", path, "*IDN?", NULL};
    cr_expect(eq(int, run(&q, ask), 0), "ask:\n%s", dw_sim_err_of(&q));
    cr_expect(eq(str, (char *)dw_sim_out_of(&q), "ACME,SG-1000,0001,1.0\n"));
    dw_sim_proc_free(&q);
    dw_sim_stop(p, 10000, NULL);
    const char *const dead[] = {"--probe", addr, "--timeout", "500", NULL};
    cr_expect(eq(int, run(&q, dead), 1), "probe of a stopped simulator");
    cr_expect(strstr(dw_sim_err_of(&q), addr) != NULL, "%s", dw_sim_err_of(&q));
    dw_sim_proc_free(&q);
}

/* --ask skips a banner whose placeholder changed since start: it reads up
 * to the banner's last literal text, not the start-up banner's length. */
Test(sim, ask_skips_a_banner_with_changed_state)
{
    static const char script[] =
        "{\"banner\": \"DEVICE ${id} READY\\n\", \"state\": {\"id\": \"1\"},"
        " \"rules\": [{\"when\": {\"regex\": \"^ID (.*)$\"}, \"set\": {\"id\": \"$1\"},"
        " \"reply\": \"OK\"}, {\"when\": \"PING\", \"reply\": \"PONG\"}]}";
    dw_sim_proc *p = dw_sim_serve("askbanner", script, no_args);
    const char *path = dw_sim_fixture.script;
    char addr[80];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", p->port);
    const char *const set[] = {"--ask", addr, "--script", path, "ID 12345", NULL};
    const char *const ping[] = {"--ask", addr, "--script", path, "PING", NULL};
    dw_sim_proc q;
    cr_expect(eq(int, run(&q, set), 0), "ask ID:\n%s", dw_sim_err_of(&q));
    cr_expect(eq(str, (char *)dw_sim_out_of(&q), "OK\n"));
    dw_sim_proc_free(&q);
    cr_expect(eq(int, run(&q, ping), 0), "ask PING:\n%s", dw_sim_err_of(&q));
    cr_expect(eq(str, (char *)dw_sim_out_of(&q), "PONG\n"),
              "the longer banner was not skipped whole");
    dw_sim_proc_free(&q);
}

Test(sim, transcript_records_every_event)
{
    const char *tpath = dw_sim_fixture_transcript();
    const char *const args[] = {"--transcript", tpath, NULL};
    dw_sim_client c;
    dw_sim_proc *p = serve(&c, sg_script, LF, args);
    dw_sim_ask_eq(&c, "*IDN?", "ACME,SG-1000,0001,1.0");
    dw_sim_ask_eq(&c, "BOGUS", "-113,\"Undefined header\"");
    dw_sim_client_close(&c);
    dw_sim_stop(p, 10000, NULL);
    FILE *f = fopen(tpath, "r");
    cr_assert(f != NULL);
    char line[1024];
    int n = 0, in = 0, out = 0, unmatched = 0;
    while (fgets(line, sizeof line, f)) {
        n++;
        cr_expect(line[0] == '{' && strstr(line, "}\n") != NULL, "one object a line: %s", line);
        cr_expect(strstr(line, "\"time\":") && strstr(line, "\"conn\":1"), "%s", line);
        if (strstr(line, "\"dir\":\"in\"") && strstr(line, "\"text\":\"*IDN?\""))
            in++;
        if (strstr(line, "\"dir\":\"out\"") && strstr(line, "ACME"))
            out++;
        if (strstr(line, "\"dir\":\"in\"") && strstr(line, "\"match\":\"unmatched\""))
            unmatched++;
    }
    fclose(f);
    cr_expect(in == 1 && out == 1 && unmatched == 1, "%d lines: in %d out %d unmatched %d", n, in,
              out, unmatched);
}

/* ---- the harness: a simulator never outlives its test -------------------- */

/* Whether `pid` (a descendant) is gone within ms: reaped here, where
 * orphans come back (a subreaper), or already reaped by its parent. */
static int gone_within(pid_t pid, int ms)
{
    for (int t = 0; t < ms; t += 20) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD && kill(pid, 0) != 0 && errno == ESRCH))
            return 1;
        usleep(20 * 1000);
    }
    return 0;
}

/* Run sim_orphan (tests/helpers: it starts a simulator and ends as `how`
 * says without stopping it); returns the simulator's pid, or -1. */
static pid_t orphan_sim(const char *how)
{
    int fds[2];
    cr_assert(eq(int, pipe(fds), 0));
    /* A plain fork: sim_orphan ends by itself at once, and reaping it with
     * dw_test_child_reap would kill its process group, hiding the very
     * simulator this test looks for. */
    pid_t test = fork();
    cr_assert(ge(int, test, 0), "fork: %s", strerror(errno));
    if (test == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl(DW_SIM_ORPHAN_PATH, "sim_orphan", how, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char line[32] = "";
    ssize_t r = read(fds[0], line, sizeof line - 1);
    close(fds[0]);
    waitpid(test, NULL, 0);
    return r > 0 ? (pid_t)atoi(line) : -1;
}

Test(sim_proc, simulator_dies_with_its_test, .timeout = 120)
{
    /* A crash runs no cleanup, SIGKILL is how a test that timed out ends,
     * exit() is how a failed assertion ends a Criterion worker. */
    static const char *const ways[] = {"crash", "kill", "exit"};
    cr_assert(eq(int, prctl(PR_SET_CHILD_SUBREAPER, 1), 0), "PR_SET_CHILD_SUBREAPER");
    for (size_t i = 0; i < sizeof ways / sizeof *ways; i++) {
        pid_t sim = orphan_sim(ways[i]);
        cr_assert(gt(int, sim, 0), "%s: the simulator did not start", ways[i]);
        int gone = gone_within(sim, 10000);
        if (!gone) {
            kill(sim, SIGKILL);
            waitpid(sim, NULL, 0);
        }
        cr_expect(gone, "%s: devwire-sim (pid %d) still runs 10 s after its test process ended",
                  ways[i], (int)sim);
    }
}

/* ---- SIGTERM and SIGINT end even a busy device ---------------------------- */

/* One request keeps the loop thread busy for far longer than any test: a
 * Lua pattern that backtracks through 2000^6 ways to place the `a*`s, under
 * a deadline of a minute (--lua-deadline; the default 10 ms would end it,
 * and nothing else a device does holds its loop that long). */
static const char busy_script[] =
    "{\"rules\": [\n"
    "  {\"when\": \"BUSY\", \"reply\": {\"lua\": "
    "\"tostring(string.find(string.rep('a', 2000), 'a*a*a*a*a*a*b'))\"}},\n"
    "  {\"when\": \"PING\", \"reply\": \"PONG\"}\n"
    " ]}\n";

static long ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)(t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Serve busy_script and make its loop busy: a second client's PING gets no
 * answer, which shows the loop is stuck before a test signals it. */
static dw_sim_proc *serve_busy(dw_sim_client *busy)
{
    const char *const minute[] = {"--lua-deadline", "60000", NULL};
    dw_sim_proc *p = serve(busy, busy_script, LF, minute);
    dw_sim_ask_eq(busy, "PING", "PONG");
    cr_assert(eq(int, dw_sim_client_send(busy, "BUSY", 4), DW_OK));
    dw_sim_client other;
    dw_sim_open_ok(&other, p->port, LF, 500);
    cr_assert(eq(int, dw_sim_client_send(&other, "PING", 4), DW_OK));
    cr_assert(ne(int, dw_sim_client_recv(&other), DW_OK), "the loop answered: it is not busy");
    dw_sim_client_close(&other);
    return p;
}

Test(sim, sigterm_ends_a_busy_device_after_the_grace_period)
{
    dw_sim_client c;
    dw_sim_proc *p = serve_busy(&c);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert(eq(int, dw_sim_proc_kill(p, SIGTERM), 0));
    int status = dw_sim_proc_wait(p, 3000);
    long took = ms_since(&t0);
    cr_assert(eq(int, status, DW_SIM_EXIT_STUCK), "exit status %d after %ld ms; stderr: %s", status,
              took, dw_sim_err_of(p));
    /* The orderly stop was tried for the grace period (1 s) first. */
    cr_expect(ge(long, took, DW_SIM_STOP_GRACE_MS - 100), "exited after %ld ms", took);
    cr_expect(not(eq(ptr,
                     strstr(dw_sim_err_of(p), "devwire-sim: device loop busy for 1.0 s "
                                              "after SIGTERM: exiting without the summary\n"),
                     NULL)),
              "stderr: %s", dw_sim_err_of(p));
    cr_expect(eq(ptr, strstr(dw_sim_out_of(p), "summary"), NULL), "stdout: %s", dw_sim_out_of(p));
    dw_sim_client_close(&c);
}

Test(sim, second_signal_ends_a_busy_stop_at_once)
{
    dw_sim_client c;
    dw_sim_proc *p = serve_busy(&c);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert(eq(int, dw_sim_proc_kill(p, SIGINT), 0));
    usleep(100 * 1000);
    cr_assert(eq(int, dw_sim_proc_kill(p, SIGTERM), 0));
    int status = dw_sim_proc_wait(p, 3000);
    long took = ms_since(&t0);
    cr_assert(eq(int, status, DW_SIM_EXIT_STUCK), "exit status %d; stderr: %s", status,
              dw_sim_err_of(p));
    /* Well before the grace period would have ended it. */
    cr_expect(lt(long, took, DW_SIM_STOP_GRACE_MS - 200), "exited after %ld ms", took);
    cr_expect(not(eq(ptr, strstr(dw_sim_err_of(p), "SIGTERM while stopping after SIGINT"), NULL)),
              "stderr: %s", dw_sim_err_of(p));
    dw_sim_client_close(&c);
}

Test(sim, sigterm_on_an_idle_device_still_stops_with_the_summary)
{
    dw_sim_client c;
    dw_sim_proc *p = serve(&c, busy_script, LF, no_args);
    dw_sim_ask_eq(&c, "PING", "PONG");
    const char *out = NULL;
    int status = dw_sim_stop(p, 3000, &out);
    cr_assert(eq(int, status, 0), "exit status %d; stderr: %s", status, dw_sim_err_of(p));
    cr_expect(not(eq(ptr, strstr(out, "summary"), NULL)), "stdout: %s", out);
    cr_expect(eq(ptr, strstr(dw_sim_err_of(p), "exiting without"), NULL), "stderr: %s",
              dw_sim_err_of(p));
    dw_sim_client_close(&c);
}

/* --lua-deadline: one chunk (a pattern that backtracks for some 50 ms)
 * succeeds under a long deadline and fails under a short one, with the
 * device's usual unmatched answer; the device goes on either way. */
Test(sim, lua_deadline_sets_how_long_a_chunk_may_run)
{
    static const char spin[] = "{\"rules\": [\n"
                               "  {\"when\": \"SPIN\", \"reply\": {\"lua\": "
                               "\"tostring(string.find(string.rep('a', 100), 'a*a*a*b'))\"}},\n"
                               "  {\"when\": \"PING\", \"reply\": \"PONG\"}\n"
                               " ], \"unmatched\": {\"reply\": \"?\"}}\n";
    const char *const minute[] = {"--lua-deadline", "60000", NULL};
    const char *const short_one[] = {"--lua-deadline", "5", NULL};
    dw_sim_client c;
    serve(&c, spin, LF, minute);
    dw_sim_ask_eq(&c, "SPIN", "nil");
    dw_sim_ask_eq(&c, "PING", "PONG");
    dw_sim_client_close(&c);
    serve(&c, spin, LF, short_one);
    dw_sim_ask_eq(&c, "SPIN", "?");
    dw_sim_ask_eq(&c, "PING", "PONG");
    dw_sim_client_close(&c);
    const char *const bad[] = {"--lua-deadline", "0", "--script", "x.json", NULL};
    dw_sim_proc p;
    cr_expect(eq(int, dw_sim_proc_run(&p, bad, 10000), 2));
    cr_expect(strstr(dw_sim_err_of(&p), "--lua-deadline 0") != NULL, "%s", dw_sim_err_of(&p));
    dw_sim_proc_free(&p);
}
