/* The simulator's control API handler, without sockets: any method, target
 * and body handed to dw_sim_control_handle as the HTTP server would.
 * Input: "METHOD TARGET\n" then the body (TARGET is path?query, still
 * percent-encoded).
 *
 * Oracles: the handler answers every request with a status from the
 * documented set (never 500: nothing here runs out of memory), a body of
 * well-formed UTF-8 whatever bytes went in, a JSON body for everything but
 * the page and the metrics, and for an error a JSON object with "error"
 * and "where"; never a crash or a leak (ASan). One
 * device (a script with variables, typed properties, steps, rules, a
 * journal already holding requests) stays up across inputs, as it would
 * across HTTP requests. Its loop does not run a thread: the handler's calls
 * run at once, and the loop runs between inputs to finish what they
 * closed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "devwire/devwire.h"
#include "control/control.h"
#include "device/devctl.h"
#include "common/json_bytes.h"
#include "common/loop.h"
#include "device/server_int.h"

static const char script[] =
    "{\"name\": \"fz\", \"state\": {\"output\": \"OFF\", \"volt\": \"1\"},"
    " \"properties\": {\"freq\": {\"type\": \"float\", \"command\": \"FREQ\", \"min\": 1, \"max\": "
    "100,"
    "  \"default\": 10}, \"n\": {\"type\": \"int\", \"command\": \"N\", \"default\": 2},"
    "  \"on\": {\"type\": \"bool\", \"command\": \"ON\"}, \"label\": {\"type\": \"string\","
    "  \"command\": \"LBL\"}, \"trig\": {\"type\": \"enum\", \"command\": \"TRIG\","
    "  \"values\": [\"IMMediate\", \"BUS\"]}, \"meas\": {\"type\": \"float\", \"command\": "
    "\"MEAS\","
    "  \"access\": \"ro\", \"ramp\": {\"to\": \"freq\", \"rate\": 5}}},"
    " \"steps\": [{\"expect\": \"*RST\"}],"
    " \"rules\": [{\"name\": \"idn\", \"when\": \"*IDN?\", \"reply\": \"ACME\"},"
    "  {\"when\": {\"regex\": \"^OUTP (ON|OFF)$\"}, \"set\": {\"output\": \"$1\"}},"
    "  {\"when\": \"OUTP?\", \"reply\": \"${output}\"}]}";

static dw_sim_loop *loop;
static dw_sim_server *server;
static dw_sim_control *control;

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz oracle: control: %s: %s\n", what, detail);
    abort();
}

/* A few requests in the journal, for the journal, the waits and verify. */
static void journal_some(void)
{
    static const char *const reqs[] = {"*RST", "*IDN?", "OUTP ON", "OUTP?", "OUTP  ON", "\xff\x01"};
    dw_sim_session *ss = dw_sim_session_new(server->gen->engine);
    dw_sim_outcome o;
    dw_sim_outcome_init(&o);
    for (size_t i = 0; ss && i < sizeof reqs / sizeof reqs[0]; i++) {
        dw_error err;
        dw_error_clear(&err);
        size_t n = strlen(reqs[i]);
        dw_sim_engine_handle(server->gen->engine, ss, (const uint8_t *)reqs[i], n, &o, &err);
        dw__sim_ctl_request(server, ss, 1, (const uint8_t *)reqs[i], n, &o);
    }
    dw_sim_outcome_free(&o);
    dw_sim_session_free(ss);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    dw_error err;
    dw_error_clear(&err);
    dw_sim_script *s = NULL;
    if (dw_sim_loop_new(&loop, &err) != DW_OK ||
        dw_sim_script_load_buffer("fz.json", script, sizeof script - 1, &s, &err) != DW_OK)
        fail("setup", dw_error_message(&err));
    dw_sim_server_options so;
    dw_sim_server_options_init(&so);
    so.loop = loop;
    if (dw_sim_server_new(&so, s, &server, &err) != DW_OK)
        fail("setup", dw_error_message(&err));
    dw_sim_control_options co;
    dw_sim_control_options_init(&co);
    co.max_wait_ms = 1; /* a wait must not hold the fuzzer up */
    co.max_body = 65536;
    co.journal_size = 64;
    dw_sim_control_device d = {NULL, server, -1, NULL, NULL, NULL, NULL};
    if (dw_sim_control_new(&co, &d, 1, &control, &err) != DW_OK)
        fail("setup", dw_error_message(&err));
    journal_some();
    return 0;
}

static int allowed_status(int status)
{
    static const int ok[] = {200, 201, 400, 404, 405, 408, 409, 413, 422};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (status == ok[i])
            return 1;
    return 0;
}

static void check(const dw_sim_http_response *r)
{
    char status[16];
    snprintf(status, sizeof status, "%d", r->status);
    if (!allowed_status(r->status))
        fail("unexpected status", status);
    if (!dw_sim_utf8_valid(r->body.data, r->body.len))
        fail("the body is not UTF-8", status);
    if (strncmp(r->content_type, "application/json", 16) != 0)
        return;
    cJSON *j = cJSON_ParseWithLength((const char *)r->body.data, r->body.len);
    if (!j)
        fail("the body is not JSON", status);
    if (r->status >= 400 && (!cJSON_IsString(cJSON_GetObjectItem(j, "error")) ||
                             !cJSON_IsString(cJSON_GetObjectItem(j, "where"))))
        fail("an error without \"error\" and \"where\"", status);
    cJSON_Delete(j);
}

/* p[0..n) as a C string (not read past n), or NULL when it holds a NUL. */
static char *text(const uint8_t *p, size_t n)
{
    if (memchr(p, 0, n))
        return NULL;
    char *t = malloc(n + 1);
    if (t) {
        memcpy(t, p, n);
        t[n] = 0;
    }
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!control)
        LLVMFuzzerInitialize(NULL, NULL);
    const uint8_t *nl = memchr(data, '\n', size);
    size_t head = nl ? (size_t)(nl - data) : size;
    const uint8_t *sp = memchr(data, ' ', head);
    if (!sp || head > 4096)
        return 0;
    char *method = text(data, (size_t)(sp - data));
    char *target = text(sp + 1, head - (size_t)(sp - data) - 1);
    if (!method || !target) {
        free(method);
        free(target);
        return 0;
    }
    char *query = strchr(target, '?');
    if (query)
        *query++ = 0;
    dw_sim_http_request req = {.method = method,
                               .path = target,
                               .query = query,
                               .body = nl ? nl + 1 : NULL,
                               .body_len = nl ? size - head - 1 : 0,
                               .content_type = "application/json"};
    dw_sim_http_response r;
    dw_sim_control_handle(control, &req, &r);
    check(&r);
    dw_sim_http_response_free(&r);
    free(method);
    free(target);
    uv_run(dw_sim_loop_uv(loop), UV_RUN_NOWAIT); /* closes complete */
    return 0;
}
