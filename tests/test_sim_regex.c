/* devwire-sim as a subprocess against a regex that backtracks without end on
 * some requests: one client's hostile request must not hold up another
 * client, in shared and in connection scope; the hostile request gets the
 * unmatched behaviour; the limit hit is logged once per rule, noted in the
 * transcript and counted in the summary; SIGTERM acts at once. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <devwire/devwire.h>

#include "sim_fixture.h"

/* The simulator and the files of the running test are dw_sim_fixture's:
 * .fini stops and removes them whatever happened. */
TestSuite(sim_regex, .init = dw_sim_fixture_init, .fini = dw_sim_fixture_fini, .timeout = 120);

/* "(a+)+$" fails on "aaa...a!" only after trying every way of splitting
 * the run of a's between the two loops. */
#define SCRIPT(scope)                                                                              \
    "{\"scope\": \"" scope "\",\n"                                                                 \
    " \"rules\": [\n"                                                                              \
    "  {\"when\": {\"regex\": \"(a+)+$\"}, \"reply\": \"M\"},\n"                                   \
    "  {\"when\": \"ping\", \"reply\": \"pong\"}\n"                                                \
    " ],\n"                                                                                        \
    " \"unmatched\": {\"reply\": \"?\"}}\n"

enum { HOSTILE_LEN = 100000 };

static const char *text_of(const dw_buf *b)
{
    return b->data ? (const char *)b->data : "";
}

/* Occurrences of `needle` in `hay`. */
static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* Transcript lines that note a regex limit for rules[0]. */
static int limit_notes(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert(f != NULL, "transcript %s", path);
    char *line = NULL;
    size_t cap = 0;
    int n = 0;
    while (getline(&line, &cap, f) > 0)
        if (strstr(line, "\"dir\":\"note\"") && strstr(line, "\"text\":\"regex match limit\"") &&
            strstr(line, "\"match\":\"rules[0]\""))
            n++;
    free(line);
    fclose(f);
    return n;
}

static void hostile_does_not_stall_others(const char *script)
{
    char *tpath = dw_sim_fixture.transcript = dw_sim_temp_file("regex-transcript", "");
    cr_assert(tpath != NULL);
    const char *const args[] = {"--transcript", tpath, NULL};
    dw_sim_proc *p = &dw_sim_fixture.proc;
    int rc = dw_sim_proc_serve(p, "regex", script, args, &dw_sim_fixture.script);
    cr_assert(eq(int, rc, DW_OK), "devwire-sim did not start (%s): %s", dw_strerror(rc),
              text_of(&p->err));

    dw_sim_client hostile, other;
    rc = dw_sim_client_open(&hostile, p->port, dw_sentinel_marshaller_new("\n", 1), 10000);
    cr_assert(eq(int, rc, DW_OK), "connect: %s", dw_error_message(&hostile.err));
    /* Generous: a bounded match takes milliseconds; an unbounded one on
     * 100,000 bytes never ends. */
    rc = dw_sim_client_open(&other, p->port, dw_sentinel_marshaller_new("\n", 1), 2000);
    cr_assert(eq(int, rc, DW_OK), "connect: %s", dw_error_message(&other.err));

    char *req = malloc(HOSTILE_LEN + 1);
    cr_assert(req != NULL);
    memset(req, 'a', HOSTILE_LEN);
    req[HOSTILE_LEN] = '!';
    cr_assert(eq(int, dw_sim_client_send(&hostile, req, HOSTILE_LEN + 1), DW_OK));
    const char *got = dw_sim_client_ask(&other, "ping");
    cr_expect(got != NULL, "ping waited for the hostile request: %s", dw_error_message(&other.err));
    if (got)
        cr_expect(eq(str, (char *)got, "pong"));

    cr_assert(eq(int, dw_sim_client_recv(&hostile), DW_OK), "the hostile request's reply: %s",
              dw_error_message(&hostile.err));
    cr_expect(eq(str, (char *)hostile.reply.data, "?"), "a limit hit is no match: unmatched");
    /* Again: counted and noted again, logged no more. */
    cr_assert(eq(int, dw_sim_client_send(&hostile, req, HOSTILE_LEN + 1), DW_OK));
    cr_assert(eq(int, dw_sim_client_recv(&hostile), DW_OK), "%s", dw_error_message(&hostile.err));
    cr_expect(eq(str, (char *)hostile.reply.data, "?"));
    got = dw_sim_client_ask(&hostile, "aaaa");
    cr_expect(got && strcmp(got, "M") == 0, "a short request still matches the rule");
    free(req);
    dw_sim_client_close(&hostile);
    dw_sim_client_close(&other);

    int st = dw_sim_proc_stop(p, 5000);
    cr_expect(eq(int, st, 0), "SIGTERM ends the simulator at once; stderr:\n%s", text_of(&p->err));
    const char *out = text_of(&p->out), *err = text_of(&p->err);
    cr_expect(strstr(out, "regex match limit hits: 2") != NULL, "summary:\n%s", out);
    cr_expect(strstr(out, "\n    rules[0]: 2\n") != NULL, "per rule, summary:\n%s", out);
    cr_expect(eq(int, count(err, "regex match limit reached"), 1), "logged once, stderr:\n%s", err);
    cr_expect(strstr(err, "rules[0]: regex match limit reached on a 100001-byte request") != NULL,
              "the log names the rule, stderr:\n%s", err);
    cr_expect(eq(int, limit_notes(tpath), 2), "one transcript note per hit");
}

Test(sim_regex, hostile_request_does_not_stall_others_shared_scope)
{
    hostile_does_not_stall_others(SCRIPT("shared"));
}

Test(sim_regex, hostile_request_does_not_stall_others_connection_scope)
{
    hostile_does_not_stall_others(SCRIPT("connection"));
}
