/* devwire-sim's control API (--control), end to end: a simulator as a
 * subprocess, driven over TCP as a client would and over HTTP as a test
 * would: every endpoint and its errors, faults at run time, the journal and
 * its long-poll, verification with near misses, script replacement. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <criterion/new/assert.h>
#include <cjson/cJSON.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <devwire/devwire.h>

#include "http_client.h"
#include "sim_fixture.h"

/* Each test's simulator, its control port and its files are
 * dw_sim_fixture's: .fini stops and removes them whatever happened. */
TestSuite(sim_control, .init = dw_sim_fixture_init, .fini = dw_sim_fixture_fini, .timeout = 120);

#define LF      dw_sentinel_marshaller_new("\n", 1)
#define TIMEOUT 20000

static const char psu[] =
    "{\"name\": \"psu\", \"state\": {\"output\": \"OFF\", \"volt\": \"0\"},\n"
    " \"rules\": [{\"name\": \"idn\", \"when\": \"*IDN?\", \"reply\": \"ACME,PSU\"},\n"
    "  {\"name\": \"rst\", \"when\": \"*RST\", \"set\": {\"output\": \"OFF\"}},\n"
    "  {\"name\": \"outp\", \"when\": {\"regex\": \"^OUTP (ON|OFF)$\"}, \"set\": {\"output\": "
    "\"$1\"}},\n"
    "  {\"name\": \"outp?\", \"when\": \"OUTP?\", \"reply\": \"${output}\"},\n"
    "  {\"name\": \"list\", \"when\": \"NEXT?\", \"reply\": [\"a\", \"b\"]}]}\n";

/* Serve `script` in the fixture with the control API on 127.0.0.1:0 and
 * `extra` args (may be NULL); dw_sim_fixture.control gets its port. */
static void start_with(const char *script, const char *const *extra)
{
    const char *args[16] = {"--control", "127.0.0.1:0"};
    size_t n = 2;
    for (size_t i = 0; extra && extra[i]; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    dw_sim_control_of(dw_sim_serve("ctl", script, args), TIMEOUT);
}

static void start(void)
{
    start_with(psu, NULL);
}

/* Stop the simulator: its exit status; its stdout in *out when out is
 * not NULL (the fixture's). */
static int finish_with(const char **out)
{
    return dw_sim_stop(&dw_sim_fixture.proc, 10000, out);
}

static int finish(void)
{
    return finish_with(NULL);
}

/* An HTTP request; the body parsed as JSON into *json (may be NULL). */
static int call(const char *method, const char *target, const char *body, cJSON **json)
{
    dw_test_http_reply r;
    int status = dw_test_http(dw_sim_fixture.control, method, target, NULL, body,
                              body ? strlen(body) : 0, TIMEOUT, &r);
    cr_assert(status != 0, "%s %s: %s", method, target, r.error);
    if (json) {
        *json = cJSON_Parse(r.body);
        cr_assert(json[0] != NULL, "%s %s: not JSON: %s", method, target, r.body);
    }
    dw_test_http_reply_free(&r);
    return status;
}

static const char *str_at(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static int64_t num_at(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
}

/* The error's "where" after a request that must fail with `want`. */
static void expect_error(const char *method, const char *target, const char *body, int want,
                         const char *where)
{
    cJSON *j = NULL;
    int status = call(method, target, body, &j);
    cr_expect(eq(int, status, want), "%s %s: status", method, target);
    cr_expect(eq(str, (char *)str_at(j, "where"), (char *)where), "%s %s: where (error: %s)",
              method, target, str_at(j, "error"));
    cr_expect(strlen(str_at(j, "error")) > 0, "%s %s: an error message", method, target);
    cJSON_Delete(j);
}

static void client(dw_sim_client *c)
{
    int rc = dw_sim_client_open(c, dw_sim_fixture.proc.port, LF, TIMEOUT);
    cr_assert(eq(int, rc, DW_OK), "connect: %s", dw_error_message(&c->err));
}

static void send_line(dw_sim_client *c, const char *req)
{
    cr_assert(eq(int, dw_sim_client_send(c, req, strlen(req)), DW_OK), "send %s", req);
}

/* ---- devices, health, errors ------------------------------------------------ */

Test(sim_control, health_and_devices)
{
    start();
    cJSON *j;
    cr_expect(eq(int, call("GET", "/health", NULL, &j), 200));
    cr_expect(eq(str, (char *)str_at(j, "status"), "ok"));
    cJSON_Delete(j);
    cr_expect(eq(int, call("GET", "/devices", NULL, &j), 200));
    const cJSON *d = cJSON_GetArrayItem(j, 0);
    cr_expect(eq(int, cJSON_GetArraySize(j), 1));
    cr_expect(eq(str, (char *)str_at(d, "name"), "default"));
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", dw_sim_fixture.proc.port);
    cr_expect(eq(str, (char *)str_at(d, "address"), addr));
    cr_expect(eq(str, (char *)str_at(d, "transport"), "tcp"));
    cJSON_Delete(j);
    cr_expect(eq(int, finish(), 0));
}

Test(sim_control, errors_name_what_and_where)
{
    start();
    expect_error("GET", "/devices/nosuch/state", NULL, 404, "path");
    expect_error("GET", "/devices/default/nosuch", NULL, 404, "path");
    expect_error("GET", "/nosuch", NULL, 404, "path");
    expect_error("DELETE", "/devices/default/state", NULL, 405, "method");
    expect_error("PATCH", "/devices/default/state", "{\"output\": ", 400, "body");
    expect_error("PATCH", "/devices/default/state", "[1]", 422, "body");
    expect_error("PATCH", "/devices/default/state", "{\"volt\": \"1\", \"nope\": \"x\"}", 422,
                 "body.nope");
    expect_error("PATCH", "/devices/default/state", "{\"volt\": [1]}", 422, "body.volt");
    expect_error("POST", "/devices/default/faults", "{\"kind\": \"explode\"}", 422, "body.kind");
    expect_error("POST", "/devices/default/faults", "{\"kind\": \"close\", \"count\": 0}", 422,
                 "body.count");
    expect_error("POST", "/devices/default/faults", "{\"kind\": \"close\", \"colour\": 1}", 422,
                 "body.colour");
    expect_error("POST", "/devices/default/faults",
                 "{\"kind\": \"close\", \"match\": {\"regex\": \"(\"}}", 422, "body.match");
    expect_error("POST", "/devices/default/faults", "{\"kind\": \"delay\"}", 422, "body.delay_ms");
    expect_error("POST", "/devices/default/faults", "{\"kind\": \"refuse_connections\"}", 422,
                 "body.kind");
    expect_error("GET", "/devices/default/journal?limit=0", NULL, 422, "query.limit");
    expect_error("DELETE", "/devices/default/faults/99", NULL, 404, "path");
    expect_error("POST", "/devices/default/verify", "[{\"request\": \"A\", \"count\": -1}]", 422,
                 "body[0].count");
    expect_error("POST", "/devices/default/verify", "[{\"count\": 1}]", 422, "body[0]");
    /* 405 says what is allowed. */
    dw_test_http_reply r;
    cr_expect(eq(int,
                 dw_test_http(dw_sim_fixture.control, "PUT", "/devices/default/state", NULL, "{}",
                              2, TIMEOUT, &r),
                 405));
    char allow[64] = "";
    cr_expect(dw_test_http_header(&r, "Allow", allow, sizeof allow));
    cr_expect(eq(str, allow, "GET, PATCH"));
    dw_test_http_reply_free(&r);
    cr_expect(eq(int, finish(), 0));
}

Test(sim_control, a_body_over_the_limit_is_refused_with_413)
{
    start();
    /* Announced too large: refused before it is sent. */
    dw_test_http_reply r;
    int status = dw_test_http(dw_sim_fixture.control, "PUT", "/devices/default/script",
                              "Content-Length: 999999999\r\n", NULL, 0, TIMEOUT, &r);
    cr_expect(eq(int, status, 413), "%s", r.error);
    cr_expect(strstr(r.body ? r.body : "", "\"where\":\"body\"") != NULL, "%s", r.body);
    dw_test_http_reply_free(&r);
    /* Sent whole, over the limit (16 MiB). */
    size_t n = (size_t)17 * 1024 * 1024;
    char *big = malloc(n);
    cr_assert(big != NULL);
    memset(big, ' ', n);
    status = dw_test_http(dw_sim_fixture.control, "PATCH", "/devices/default/state", NULL, big, n,
                          60000, &r);
    cr_expect(eq(int, status, 413), "%s", r.error);
    dw_test_http_reply_free(&r);
    free(big);
    cr_expect(eq(int, call("GET", "/health", NULL, NULL), 200), "still serving");
    cr_expect(eq(int, finish(), 0));
}

Test(sim_control, a_token_guards_every_request)
{
    const char *token = dw_sim_fixture_file("token", "s3cret\n");
    const char *extra[] = {"--control-token", token, NULL};
    start_with(psu, extra);
    expect_error("GET", "/health", NULL, 401, "authorization");
    expect_error("GET", "/devices/default/state", NULL, 401, "authorization");
    dw_test_http_reply r;
    cr_expect(eq(int,
                 dw_test_http(dw_sim_fixture.control, "GET", "/health",
                              "Authorization: Bearer wrong\r\n", NULL, 0, TIMEOUT, &r),
                 401));
    dw_test_http_reply_free(&r);
    cr_expect(eq(int,
                 dw_test_http(dw_sim_fixture.control, "GET", "/health",
                              "Authorization: Bearer s3cret\r\n", NULL, 0, TIMEOUT, &r),
                 200));
    dw_test_http_reply_free(&r);
    /* Never from the URL (tests/test_sim_control_guard.c has the rest). */
    expect_error("GET", "/health?access_token=s3cret", NULL, 400, "query.access_token");
    cr_expect(eq(int, finish(), 0));
}

Test(sim_control, beyond_loopback_needs_a_token)
{
    dw_sim_proc p;
    const char *script = dw_sim_fixture_file("ctl", psu);
    const char *args[] = {"--script",  script,      "--listen", "127.0.0.1:0",
                          "--control", "0.0.0.0:0", NULL};
    cr_expect(eq(int, dw_sim_proc_run(&p, args, TIMEOUT), 2));
    cr_expect(strstr((char *)p.err.data, "--control-token") != NULL, "%s", (char *)p.err.data);
    dw_sim_proc_free(&p);
}

/* ---- state, reset ------------------------------------------------------------ */

Test(sim_control, patch_state_changes_what_the_device_answers)
{
    start();
    dw_sim_client c;
    client(&c);
    dw_sim_ask_eq(&c, "OUTP?", "OFF");
    cJSON *j;
    cr_expect(eq(
        int, call("PATCH", "/devices/default/state", "{\"output\": \"TRIP\", \"volt\": 12.5}", &j),
        200));
    const cJSON *vars = cJSON_GetObjectItemCaseSensitive(j, "vars");
    cr_expect(eq(str, (char *)str_at(vars, "output"), "TRIP"));
    cr_expect(eq(str, (char *)str_at(vars, "volt"), "12.5"));
    cJSON_Delete(j);
    dw_sim_ask_eq(&c, "OUTP?", "TRIP");
    cr_expect(eq(int, call("GET", "/devices/default/state", NULL, &j), 200));
    cr_expect(
        eq(str, (char *)str_at(cJSON_GetObjectItemCaseSensitive(j, "vars"), "output"), "TRIP"));
    cJSON_Delete(j);
    /* A bad field changes nothing, not even the good ones before it. */
    expect_error("PATCH", "/devices/default/state", "{\"output\": \"ON\", \"x\": \"1\"}", 422,
                 "body.x");
    dw_sim_ask_eq(&c, "OUTP?", "TRIP");
    dw_sim_client_close(&c);
    cr_expect(eq(int, finish(), 0));
}

/* The API reads bytes as a script does (one decoder): a string, hex or
 * base64; bad bytes are refused with what and where. */
Test(sim_control, bytes_are_written_as_in_scripts)
{
    start();
    dw_sim_client c;
    client(&c);
    cJSON *j;
    /* "ON" in hex, "TRIP" in base64. */
    cr_expect(
        eq(int, call("PATCH", "/devices/default/state", "{\"output\": {\"hex\": \"4f 4e\"}}", NULL),
           200));
    dw_sim_ask_eq(&c, "OUTP?", "ON");
    cr_expect(eq(
        int,
        call("PATCH", "/devices/default/state", "{\"output\": {\"base64\": \"VFJJUA==\"}}", NULL),
        200));
    dw_sim_ask_eq(&c, "OUTP?", "TRIP");
    /* A journal pattern of exact bytes, in base64 ("OUTP?"). */
    cr_expect(eq(int,
                 call("POST", "/devices/default/verify",
                      "[{\"request\": {\"base64\": \"T1VUUD8=\"}, \"count\": 2}]", &j),
                 200));
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(j, "ok")), "%s", cJSON_PrintUnformatted(j));
    cJSON_Delete(j);
    /* Bad bytes: refused, named, and nothing changed. */
    cr_expect(eq(
        int, call("PATCH", "/devices/default/state", "{\"output\": {\"hex\": \"4x\"}}", &j), 422));
    cr_expect(strstr(str_at(j, "error"), "output") != NULL, "%s", str_at(j, "error"));
    cJSON_Delete(j);
    cr_expect(
        eq(int,
           call("POST", "/devices/default/verify", "[{\"request\": {\"base64\": \"T1V=UA\"}}]", &j),
           422));
    cr_expect(strstr(str_at(j, "error"), "base64") != NULL, "%s", str_at(j, "error"));
    cJSON_Delete(j);
    dw_sim_ask_eq(&c, "OUTP?", "TRIP");
    dw_sim_client_close(&c);
    cr_expect(eq(int, finish(), 0));
}

Test(sim_control, reset_brings_state_turns_and_counters_back)
{
    start();
    dw_sim_client c;
    client(&c);
    dw_sim_ask_eq(&c, "NEXT?", "a");
    send_line(&c, "OUTP ON");
    dw_sim_ask_eq(&c, "OUTP?", "ON");
    cJSON *j;
    cr_expect(
        eq(int, call("POST", "/devices/default/reset", "{\"keep_counters\": true}", NULL), 200));
    dw_sim_ask_eq(&c, "OUTP?", "OFF");
    dw_sim_ask_eq(&c, "NEXT?", "a");
    cr_expect(eq(int, call("GET", "/devices/default", NULL, &j), 200));
    cr_expect(eq(i64, num_at(j, "requests"), 5), "counters kept");
    cJSON_Delete(j);
    cr_expect(eq(int, call("POST", "/devices/default/reset", NULL, NULL), 200));
    cr_expect(eq(int, call("GET", "/devices/default", NULL, &j), 200));
    cr_expect(eq(i64, num_at(j, "requests"), 0), "counters back to zero");
    cJSON_Delete(j);
    cr_expect(eq(int, call("GET", "/devices/default/journal", NULL, &j), 200));
    cr_expect(eq(int, cJSON_GetArraySize(cJSON_GetObjectItem(j, "entries")), 0));
    cJSON_Delete(j);
    dw_sim_client_close(&c);
    cr_expect(eq(int, finish(), 0));
}

/* ---- typed properties ---------------------------------------------------------------- */

static void start_example(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/sim/examples/%s", DW_SOURCE_DIR, name);
    char *text = dw_sim_read_file(path, NULL);
    cr_assert(text != NULL, "cannot read %s", path);
    start_with(text, NULL);
    free(text);
}

static cJSON *props_of(cJSON **state)
{
    cr_assert(eq(int, call("GET", "/devices/default/state", NULL, state), 200));
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(*state, "properties");
    cr_assert(cJSON_IsObject(p), "GET state: no \"properties\"");
    return (cJSON *)p;
}

static double prop_num(const cJSON *props, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(props, name);
    cr_assert(cJSON_IsNumber(v), "property %s is not a number", name);
    return v->valuedouble;
}

/* The error of a PATCH that must be refused with 422. */
static void expect_refused(const char *body, const char *where, const char *error)
{
    cJSON *j = NULL;
    cr_expect(eq(int, call("PATCH", "/devices/default/state", body, &j), 422), "%s", body);
    cr_expect(eq(str, (char *)str_at(j, "where"), (char *)where), "%s: where", body);
    cr_expect(eq(str, (char *)str_at(j, "error"), (char *)error), "%s: error", body);
    cJSON_Delete(j);
}

Test(sim_control, state_shows_properties_as_typed_values)
{
    start_example("sg.json");
    cJSON *j;
    cJSON *p = props_of(&j);
    cr_expect(eq(dbl, prop_num(p, "freq"), 1e6));
    cr_expect(eq(dbl, prop_num(p, "power"), -10));
    cr_expect(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(p, "output")), "a bool is a boolean");
    cr_expect(eq(str, (char *)str_at(p, "trigger"), "IMM"), "an enum is its short form");
    cr_expect(eq(str, (char *)str_at(p, "label"), "SG-1000"));
    cJSON_Delete(j);
    cr_expect(eq(int, finish(), 0));
}

Test(sim_control, patch_sets_properties_the_device_then_answers)
{
    start_example("sg.json");
    dw_sim_client c;
    client(&c);
    cJSON *j;
    cr_expect(eq(int,
                 call("PATCH", "/devices/default/state",
                      "{\"freq\": 2.5e6, \"output\": true, \"trigger\": \"external\", "
                      "\"label\": \"bench 3\"}",
                      &j),
                 200));
    cr_expect(eq(dbl, prop_num(cJSON_GetObjectItemCaseSensitive(j, "properties"), "freq"), 2.5e6));
    cJSON_Delete(j);
    dw_sim_ask_eq(&c, "FREQ?;:OUTP?;:TRIG:SOUR?;:DISP:TEXT?", "2.5E+06;1;EXT;\"bench 3\"");
    dw_sim_client_close(&c);
    cr_expect(eq(int, finish(), 0));
}

Test(sim_control, a_refused_property_changes_nothing)
{
    start_example("sg.json");
    dw_sim_client c;
    client(&c);
    /* power comes first and is fine: the whole PATCH is refused all the same. */
    expect_refused("{\"power\": 0, \"freq\": 7e9}", "body.freq", "freq: Data out of range (-222)");
    expect_refused("{\"trigger\": \"SOON\"}", "body.trigger",
                   "trigger: Illegal parameter value (-224): expected one of "
                   "IMMediate|BUS|EXTernal");
    expect_refused("{\"output\": \"yes\"}", "body.output",
                   "output: Data type error (-104): expected true or false");
    expect_refused("{\"freq\": null}", "body.freq",
                   "freq: Data type error (-104): expected a number");
    dw_sim_ask_eq(&c, "FREQ?;:POW?;:OUTP?;:TRIG:SOUR?", "1.0E+06;-10.00;0;IMM");
    dw_sim_ask_eq(&c, "SYST:ERR?", "0,\"No error\"");
    dw_sim_client_close(&c);
    cr_expect(eq(int, finish(), 0));
}

Test(sim_control, reset_restores_property_defaults)
{
    start_example("sg.json");
    dw_sim_client c;
    client(&c);
    cr_expect(eq(int, call("PATCH", "/devices/default/state", "{\"freq\": 3e6}", NULL), 200));
    dw_sim_ask_eq(&c, "FREQ?", "3.0E+06");
    cr_expect(
        eq(int, call("POST", "/devices/default/reset", "{\"keep_counters\": true}", NULL), 200));
    dw_sim_ask_eq(&c, "FREQ?", "1.0E+06");
    cJSON *j;
    cr_expect(eq(dbl, prop_num(props_of(&j), "freq"), 1e6));
    cJSON_Delete(j);
    dw_sim_client_close(&c);
    cr_expect(eq(int, finish(), 0));
}

Test(sim_control, a_read_only_property_is_refused_and_a_ramp_shows_where_it_is)
{
    start_example("psu.json");
    expect_refused("{\"volt\": 10, \"volt_out\": 10}", "body.volt_out",
                   "volt_out: read-only (the instrument sets it)");
    cJSON *j;
    cr_expect(eq(dbl, prop_num(props_of(&j), "volt"), 0), "nothing changed");
    cJSON_Delete(j);
    /* volt_out ramps toward volt at 2 V/s (noise: 0.008 V at most). */
    cr_expect(eq(int, call("PATCH", "/devices/default/state", "{\"volt\": 30}", NULL), 200));
    double first = prop_num(props_of(&j), "volt_out");
    cJSON_Delete(j);
    usleep(300 * 1000);
    double later = prop_num(props_of(&j), "volt_out");
    cJSON_Delete(j);
    cr_expect(first >= -0.01 && later <= 30.01, "volt_out %g then %g: within the ramp", first,
              later);
    cr_expect(later > first + 0.5, "volt_out %g then %g 300 ms later: it moves on", first, later);
    cr_expect(eq(int, finish(), 0));
}

/* ---- the journal ----------------------------------------------------------------- */

Test(sim_control, the_journal_lists_requests_and_their_answers)
{
    start();
    dw_sim_client c;
    client(&c);
    dw_sim_ask_eq(&c, "*IDN?", "ACME,PSU");
    send_line(&c, "OUTP ON");
    dw_sim_ask_eq(&c, "OUTP?", "ON");
    cJSON *j;
    cr_expect(eq(int, call("GET", "/devices/default/journal?since=2&limit=1", NULL, &j), 200));
    const cJSON *entries = cJSON_GetObjectItem(j, "entries");
    cr_assert(eq(int, cJSON_GetArraySize(entries), 1));
    const cJSON *e = cJSON_GetArrayItem(entries, 0);
    cr_expect(eq(i64, num_at(e, "seq"), 2));
    cr_expect(eq(str, (char *)str_at(cJSON_GetObjectItem(e, "request"), "text"), "OUTP ON"));
    cr_expect(eq(str, (char *)str_at(e, "match"), "outp"));
    cr_expect(eq(i64, num_at(j, "next"), 3));
    cJSON_Delete(j);
    cr_expect(eq(int, call("GET", "/devices/default/journal?since=3", NULL, &j), 200));
    e = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "entries"), 0);
    cr_expect(eq(str, (char *)str_at(cJSON_GetObjectItem(e, "reply"), "text"), "ON\n"));
    cJSON_Delete(j);
    dw_sim_client_close(&c);
    cr_expect(eq(int, finish(), 0));
}

Test(sim_control, a_full_journal_says_it_dropped_entries)
{
    const char *extra[] = {"--journal", "2", NULL};
    start_with(psu, extra);
    dw_sim_client c;
    client(&c);
    for (int i = 0; i < 5; i++)
        dw_sim_ask_eq(&c, "*IDN?", "ACME,PSU");
    cJSON *j;
    cr_expect(eq(int, call("GET", "/devices/default/journal?since=1", NULL, &j), 200));
    cr_expect(eq(int, cJSON_GetArraySize(cJSON_GetObjectItem(j, "entries")), 2));
    cr_expect(eq(i64, num_at(j, "dropped"), 3));
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(j, "missed")));
    cJSON_Delete(j);
    dw_sim_client_close(&c);
    cr_expect(eq(int, finish(), 0));
}

typedef struct waiter {
    const char *target;
    int status;
    char body[2048];
} waiter;

static void *wait_thread(void *arg)
{
    waiter *w = arg;
    dw_test_http_reply r;
    w->status = dw_test_http(dw_sim_fixture.control, "GET", w->target, NULL, NULL, 0, 60000, &r);
    snprintf(w->body, sizeof w->body, "%s", r.body ? r.body : r.error);
    dw_test_http_reply_free(&r);
    return NULL;
}

Test(sim_control, a_journal_wait_wakes_when_the_request_comes)
{
    start();
    waiter w = {"/devices/default/journal/wait?match=OUTP%20ON&timeout_ms=30000", 0, ""};
    pthread_t t;
    pthread_create(&t, NULL, wait_thread, &w);
    usleep(300 * 1000); /* the wait is under way (if not, it finds the entry at once) */
    dw_sim_client c;
    client(&c);
    dw_sim_ask_eq(&c, "*IDN?", "ACME,PSU");
    send_line(&c, "OUTP ON");
    pthread_join(t, NULL);
    cr_expect(eq(int, w.status, 200), "%s", w.body);
    cr_expect(strstr(w.body, "\"text\":\"OUTP ON\"") != NULL, "%s", w.body);
    cr_expect(strstr(w.body, "\"seq\":2") != NULL, "%s", w.body);
    /* The device went on answering meanwhile. */
    dw_sim_ask_eq(&c, "OUTP?", "ON");
    dw_sim_client_close(&c);
    cr_expect(eq(int, finish(), 0));
}

Test(sim_control, a_journal_wait_times_out_with_408)
{
    start();
    expect_error("GET", "/devices/default/journal/wait?regex=%5ENEVER&timeout_ms=200", NULL, 408,
                 "query");
    expect_error("GET", "/devices/default/journal/wait?regex=(&timeout_ms=200", NULL, 422,
                 "query.regex");
    cr_expect(eq(int, finish(), 0));
}

/* ---- verify ------------------------------------------------------------------------ */

Test(sim_control, verify_passes_when_every_expectation_holds)
{
    start();
    dw_sim_client c;
    client(&c);
    send_line(&c, "*RST");
    send_line(&c, "OUTP ON");
    dw_sim_ask_eq(&c, "OUTP?", "ON");
    cJSON *j;
    cr_expect(eq(int,
                 call("POST", "/devices/default/verify",
                      "[{\"request\": \"*RST\", \"count\": 1, \"in_order\": true},"
                      " {\"request\": \"OUTP ON\", \"count\": 1, \"in_order\": true},"
                      " {\"rule\": \"outp?\", \"at_least\": 1},"
                      " {\"request\": {\"prefix\": \"OUTP\"}, \"at_most\": 2},"
                      " {\"request\": \"*IDN?\", \"count\": 0}]",
                      &j),
                 200));
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(j, "ok")));
    cJSON_Delete(j);
    dw_sim_client_close(&c);
    cr_expect(eq(int, finish(), 0));
}

Test(sim_control, verify_fails_with_what_happened_and_near_misses)
{
    start();
    dw_sim_client c;
    client(&c);
    send_line(&c, "OUTP  ON"); /* the driver's typos */
    send_line(&c, "*RST");
    send_line(&c, "*IDN");
    dw_sim_ask_eq(&c, "*IDN?", "ACME,PSU");
    cJSON *j;
    cr_expect(eq(int,
                 call("POST", "/devices/default/verify",
                      "[{\"request\": \"OUTP ON\", \"count\": 1, \"in_order\": true},"
                      " {\"request\": \"*RST\", \"count\": 1, \"in_order\": true},"
                      " {\"request\": \"*IDN?\", \"count\": 1},"
                      " {\"rule\": \"idn\", \"count\": 2}]",
                      &j),
                 409));
    const cJSON *fails = cJSON_GetObjectItem(j, "failures");
    cr_assert(eq(int, cJSON_GetArraySize(fails), 3), "%s", cJSON_PrintUnformatted(j));
    const cJSON *near;
    /* A rule's near misses are measured against its "when": *IDN, not *IDN? (answered). */
    const cJSON *rule = cJSON_GetArrayItem(fails, 2);
    cr_expect(eq(i64, num_at(rule, "actual"), 1));
    near = cJSON_GetArrayItem(cJSON_GetObjectItem(rule, "near_misses"), 0);
    cr_expect(eq(str, (char *)str_at(cJSON_GetObjectItem(near, "request"), "text"), "*IDN"));
    cr_expect(eq(i64, num_at(near, "distance"), 1));
    const cJSON *f = cJSON_GetArrayItem(fails, 0);
    cr_expect(eq(i64, num_at(f, "index"), 0));
    cr_expect(eq(i64, num_at(f, "actual"), 0));
    near = cJSON_GetArrayItem(cJSON_GetObjectItem(f, "near_misses"), 0);
    cr_expect(eq(str, (char *)str_at(cJSON_GetObjectItem(near, "request"), "text"), "OUTP  ON"));
    cr_expect(eq(i64, num_at(near, "distance"), 1));
    f = cJSON_GetArrayItem(fails, 1); /* *RST came, but not after OUTP ON */
    cr_expect(eq(i64, num_at(f, "index"), 1));
    cr_expect(eq(i64, num_at(f, "actual"), 1));
    cr_expect(strstr(str_at(f, "message"), "did not come after") != NULL, "%s",
              str_at(f, "message"));
    cJSON_Delete(j);
    dw_sim_client_close(&c);
    cr_expect(eq(int, finish(), 0));
}

/* ---- faults -------------------------------------------------------------------------- */

static int inject(const char *body)
{
    cJSON *j;
    int status = call("POST", "/devices/default/faults", body, &j);
    cr_expect(eq(int, status, 201), "%s: %s", body, str_at(j, "error"));
    int id = (int)num_at(j, "id");
    cJSON_Delete(j);
    return id;
}

Test(sim_control, a_fault_with_a_count_fires_that_many_times)
{
    start();
    inject("{\"kind\": \"garbage\", \"match\": \"idn\", \"count\": 2, \"garbage\": \"#$%\\n\"}");
    dw_sim_client c;
    client(&c);
    dw_sim_ask_eq(&c, "OUTP?", "OFF"); /* not matched */
    dw_sim_ask_eq(&c, "*IDN?", "#$%");
    dw_sim_ask_eq(&c, "*IDN?", "#$%");
    dw_sim_ask_eq(&c, "*IDN?", "ACME,PSU");
    cJSON *j;
    cr_expect(eq(int, call("GET", "/devices/default/faults", NULL, &j), 200));
    cr_expect(eq(int, cJSON_GetArraySize(j), 0), "spent");
    cJSON_Delete(j);
    cr_expect(eq(int, call("GET", "/devices/default/journal?since=2&limit=1", NULL, &j), 200));
    const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "entries"), 0);
    cr_expect(eq(str, (char *)str_at(e, "fault"), "garbage"));
    cJSON_Delete(j);
    dw_sim_client_close(&c);
    const char *out;
    cr_expect(eq(int, finish_with(&out), 0));
    cr_expect(strstr(out, "faults injected by the control API: 1 (garbage: 1)") != NULL, "%s", out);
}

Test(sim_control, a_close_fault_closes_the_connection_and_is_transcribed)
{
    const char *tr = dw_sim_fixture_transcript();
    const char *extra[] = {"--transcript", tr, NULL};
    start_with(psu, extra);
    inject("{\"kind\": \"close\", \"match\": {\"request\": \"OUTP?\"}}");
    dw_sim_client c;
    client(&c);
    dw_sim_ask_eq(&c, "*IDN?", "ACME,PSU");
    cr_expect(dw_sim_client_ask(&c, "OUTP?") == NULL, "closed instead of answering");
    dw_sim_client_close(&c);
    client(&c);
    dw_sim_ask_eq(&c, "OUTP?", "OFF"); /* fired once */
    dw_sim_client_close(&c);
    cr_expect(eq(int, finish(), 0));
    char *text = dw_sim_read_file(tr, NULL);
    cr_expect(text != NULL && strstr(text, "\"dir\":\"fault\",\"match\":\"close\"") != NULL, "%s",
              text);
    free(text);
}

Test(sim_control, a_fault_with_a_duration_ends_on_time)
{
    start();
    inject("{\"kind\": \"drop\", \"match\": \"*IDN?\", \"duration_ms\": 1500}");
    dw_sim_client c;
    int rc = dw_sim_client_open(&c, dw_sim_fixture.proc.port, LF, 500);
    cr_assert(eq(int, rc, DW_OK));
    cr_expect(dw_sim_client_ask(&c, "*IDN?") == NULL, "dropped");
    cr_expect(dw_sim_client_ask(&c, "*IDN?") == NULL, "dropped again");
    dw_sim_client_close(&c);
    usleep(1600 * 1000);
    client(&c);
    dw_sim_ask_eq(&c, "*IDN?", "ACME,PSU");
    dw_sim_client_close(&c);
    cr_expect(eq(int, finish(), 0));
}

Test(sim_control, faults_are_listed_and_removed)
{
    start();
    int a = inject("{\"kind\": \"delay\", \"delay_ms\": 50, \"probability\": 0.5}");
    inject("{\"kind\": \"reset\", \"match\": \"*RST\", \"count\": 3}");
    cJSON *j;
    cr_expect(eq(int, call("GET", "/devices/default/faults", NULL, &j), 200));
    cr_expect(eq(int, cJSON_GetArraySize(j), 2));
    cr_expect(eq(str, (char *)str_at(cJSON_GetArrayItem(j, 1), "kind"), "reset"));
    cr_expect(eq(i64, num_at(cJSON_GetArrayItem(j, 1), "remaining"), 3));
    cJSON_Delete(j);
    char target[64];
    snprintf(target, sizeof target, "/devices/default/faults/%d", a);
    cr_expect(eq(int, call("DELETE", target, NULL, NULL), 200));
    expect_error("DELETE", target, NULL, 404, "path");
    cr_expect(eq(int, call("DELETE", "/devices/default/faults", NULL, NULL), 200));
    cr_expect(eq(int, call("GET", "/devices/default/faults", NULL, &j), 200));
    cr_expect(eq(int, cJSON_GetArraySize(j), 0));
    cJSON_Delete(j);
    cr_expect(eq(int, finish(), 0));
}

Test(sim_control, refuse_connections_and_disconnect_all)
{
    start();
    dw_sim_client c;
    client(&c);
    dw_sim_ask_eq(&c, "*IDN?", "ACME,PSU");
    inject("{\"kind\": \"disconnect_all\"}");
    cr_expect(dw_sim_client_ask(&c, "*IDN?") == NULL, "disconnected");
    dw_sim_client_close(&c);
    inject("{\"kind\": \"refuse_connections\", \"duration_ms\": 1500}");
    int fd = dw_sim_raw_connect(dw_sim_fixture.proc.port, 0);
    cr_expect(eq(int, fd, -1), "refused while the fault lasts");
    if (fd >= 0)
        close(fd);
    usleep(1800 * 1000);
    client(&c);
    dw_sim_ask_eq(&c, "*IDN?", "ACME,PSU");
    dw_sim_client_close(&c);
    cr_expect(eq(int, finish(), 0));
}

Test(sim_control, a_hang_fault_silences_the_connection)
{
    start();
    inject("{\"kind\": \"hang\", \"match\": \"*IDN?\"}");
    dw_sim_client c;
    int rc = dw_sim_client_open(&c, dw_sim_fixture.proc.port, LF, 500);
    cr_assert(eq(int, rc, DW_OK));
    cr_expect(dw_sim_client_ask(&c, "*IDN?") == NULL, "hung");
    cr_expect(dw_sim_client_ask(&c, "OUTP?") == NULL, "still hung");
    dw_sim_client_close(&c);
    client(&c);
    dw_sim_ask_eq(&c, "OUTP?", "OFF"); /* another connection is answered */
    dw_sim_client_close(&c);
    cr_expect(eq(int, finish(), 0));
}

/* ---- the script, metrics, the page ------------------------------------------------ */

Test(sim_control, put_script_replaces_it_and_a_broken_one_is_refused)
{
    start();
    cJSON *j;
    int status = call("PUT", "/devices/default/script",
                      "{\"rules\": [\n  {\"when\": \"*IDN?\", \"reply\": 5}]}", &j);
    cr_expect(eq(int, status, 400));
    cr_expect(eq(str, (char *)str_at(j, "where"), "devices/default/script:2:30"), "%s",
              str_at(j, "error"));
    cr_expect(strstr(str_at(j, "error"), "rules[0].reply") != NULL, "%s", str_at(j, "error"));
    cJSON_Delete(j);
    dw_sim_client c;
    client(&c);
    dw_sim_ask_eq(&c, "*IDN?", "ACME,PSU"); /* the old one serves on */
    dw_sim_client_close(&c);
    cr_expect(eq(int,
                 call("PUT", "/devices/default/script",
                      "{\"rules\": [{\"when\": \"*IDN?\", \"reply\": \"NEW,ONE\"}]}", &j),
                 200));
    cr_expect(eq(i64, num_at(j, "rules"), 1));
    cJSON_Delete(j);
    client(&c);
    dw_sim_ask_eq(&c, "*IDN?", "NEW,ONE");
    dw_sim_client_close(&c);
    cr_expect(eq(int, finish(), 0));
}

Test(sim_control, metrics_are_prometheus_text)
{
    start();
    dw_sim_client c;
    client(&c);
    dw_sim_ask_eq(&c, "*IDN?", "ACME,PSU");
    dw_sim_ask_eq(&c, "*IDN?", "ACME,PSU");
    send_line(&c, "WHAT");
    dw_sim_ask_eq(&c, "OUTP?", "OFF");
    dw_test_http_reply r;
    cr_assert(
        eq(int, dw_test_http(dw_sim_fixture.control, "GET", "/metrics", NULL, NULL, 0, TIMEOUT, &r),
           200));
    char type[64] = "";
    dw_test_http_header(&r, "Content-Type", type, sizeof type);
    cr_expect(strncmp(type, "text/plain; version=0.0.4", 25) == 0, "%s", type);
    static const char *const want[] = {
        "devwire_sim_requests_total{device=\"default\"} 4\n",
        "devwire_sim_unmatched_total{device=\"default\"} 1\n",
        "devwire_sim_rule_requests_total{device=\"default\",rule=\"idn\"} 2\n",
        "devwire_sim_connections_open{device=\"default\"} 1\n",
        "devwire_sim_reply_latency_seconds_count{device=\"default\"} 4\n",
        "devwire_sim_reply_latency_seconds_bucket{device=\"default\",le=\"+Inf\"} 4\n",
        "# TYPE devwire_sim_reply_latency_seconds histogram\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect(strstr(r.body, want[i]) != NULL, "%s not in:\n%s", want[i], r.body);
    dw_test_http_reply_free(&r);
    dw_sim_client_close(&c);
    cr_expect(eq(int, finish(), 0));
}

Test(sim_control, the_status_page_is_one_html_document)
{
    start();
    dw_test_http_reply r;
    cr_assert(
        eq(int, dw_test_http(dw_sim_fixture.control, "GET", "/", NULL, NULL, 0, TIMEOUT, &r), 200));
    char type[64] = "";
    dw_test_http_header(&r, "Content-Type", type, sizeof type);
    cr_expect(eq(str, type, "text/html; charset=utf-8"));
    cr_expect(strncmp(r.body, "<!DOCTYPE html>", 15) == 0);
    cr_expect(strstr(r.body, "http://") == NULL && strstr(r.body, "https://") == NULL,
              "no external assets");
    dw_test_http_reply_free(&r);
    cr_expect(eq(int, finish(), 0));
}

Test(sim_control, named_devices_of_a_bench_are_reached_by_name)
{
    const char *other =
        dw_sim_fixture_file("other", "{\"rules\": [{\"when\": \"A\", \"reply\": \"b\"}]}");
    char dev[512];
    snprintf(dev, sizeof dev, "meter=%s@127.0.0.1:0", other);
    const char *extra[] = {"--device", dev, NULL};
    start_with(psu, extra);
    cJSON *j;
    cr_expect(eq(int, call("GET", "/devices", NULL, &j), 200));
    cr_expect(eq(int, cJSON_GetArraySize(j), 2));
    cr_expect(eq(str, (char *)str_at(cJSON_GetArrayItem(j, 0), "name"), "main"));
    cr_expect(eq(str, (char *)str_at(cJSON_GetArrayItem(j, 1), "name"), "meter"));
    cJSON_Delete(j);
    cr_expect(eq(int, call("GET", "/devices/meter/faults", NULL, NULL), 200));
    expect_error("GET", "/devices/default/faults", NULL, 404, "path");
    cr_expect(eq(int, finish(), 0));
}

/* ---- hostile neighbours: no client of the API stalls another ---------------- */

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Send all of p[0..n) (no SIGPIPE when the server cut the connection):
 * 1, or 0 when the connection is gone. */
static int send_all(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n) {
        ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
        if (k <= 0)
            return 0;
        b += k;
        n -= (size_t)k;
    }
    return 1;
}

/* What arrives on fd within timeout_ms: the HTTP status of an answer, 0
 * when the server closed the connection without one, -1 when nothing came. */
static int status_or_close(int fd, int timeout_ms, char *head, size_t size)
{
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) != 1)
        return -1;
    ssize_t k = recv(fd, head, size - 1, 0);
    head[k > 0 ? k : 0] = 0;
    int status = 0;
    if (k > 0 && sscanf(head, "HTTP/1.%*d %d", &status) != 1)
        status = 0;
    return status;
}

/* The /health answer's time, asserted within `bound_ms`. */
static void health_within(int bound_ms, const char *while_what)
{
    long long t0 = mono_ms();
    dw_test_http_reply r;
    int status = dw_test_http(dw_sim_fixture.control, "GET", "/health", NULL, NULL, 0, 5000, &r);
    long long took = mono_ms() - t0;
    cr_expect(eq(int, status, 200), "/health %s: %s", while_what, r.error);
    cr_expect(took < bound_ms, "/health %s took %lld ms", while_what, took);
    dw_test_http_reply_free(&r);
}

typedef struct trickler {
    int *fds;
    size_t n;
    volatile int stop;
} trickler;

/* Slowloris: one more byte of a header line on each connection, ten times
 * a second, never the blank line that ends the headers. */
static void *trickle(void *arg)
{
    trickler *t = arg;
    while (!t->stop) {
        for (size_t i = 0; i < t->n; i++)
            if (t->fds[i] >= 0)
                (void)send(t->fds[i], "a", 1, MSG_NOSIGNAL);
        usleep(100 * 1000);
    }
    return NULL;
}

#define HELD 80

Test(sim_control, held_and_trickling_connections_do_not_stall_health)
{
    start();
    int silent[HELD / 2], slow[HELD / 2];
    for (int i = 0; i < HELD / 2; i++) {
        silent[i] = dw_sim_raw_connect(dw_sim_fixture.control, 0);
        slow[i] = dw_sim_raw_connect(dw_sim_fixture.control, 0);
        cr_assert(silent[i] >= 0 && slow[i] >= 0, "connection %d", i);
        static const char start_of[] = "GET /health HTTP/1.1\r\nX-Slow: ";
        cr_assert(send_all(slow[i], start_of, sizeof start_of - 1));
    }
    long long opened = mono_ms();
    trickler t = {slow, HELD / 2, 0};
    pthread_t th;
    cr_assert(eq(int, pthread_create(&th, NULL, trickle, &t), 0));
    /* The good client next to them is answered at once, every time. */
    for (int i = 0; i < 10; i++) {
        health_within(1000, "next to 80 held connections");
        usleep(200 * 1000);
    }
    /* The trickler is cut by the headers' deadline (10 s), though it sends a
     * byte every 100 ms; the silent one too. */
    char head[256];
    int cut = status_or_close(slow[0], 25000, head, sizeof head);
    long long after = mono_ms() - opened;
    cr_expect(eq(int, cut, 0), "the trickler was closed without an answer (got %d: %s)", cut, head);
    cr_expect(after < 20000, "the trickler was cut after %lld ms", after);
    cr_expect(eq(int, status_or_close(silent[0], 5000, head, sizeof head), 0), "silent one cut");
    t.stop = 1;
    pthread_join(th, NULL);
    for (int i = 0; i < HELD / 2; i++) {
        close(silent[i]);
        close(slow[i]);
    }
    health_within(1000, "after the cut");
    cr_expect(eq(int, finish(), 0));
}

#define BIG_CLIENTS 16

Test(sim_control, large_bodies_in_flight_are_capped_and_do_not_stall_health)
{
    start();
    long base = dw_sim_proc_rss_kib(&dw_sim_fixture.proc);
    cr_assert(base > 0);
    /* Announced over the limit, with Expect: 100-continue: 413 at once, no
     * "100 Continue" asking for the body first. */
    char head[512];
    int fd = dw_sim_raw_connect(dw_sim_fixture.control, 0);
    cr_assert(fd >= 0);
    char expect[256];
    snprintf(expect, sizeof expect,
             "PUT /devices/default/script HTTP/1.1\r\nHost: localhost:%u\r\n"
             "Content-Type: application/json\r\nContent-Length: 999999999\r\n"
             "Expect: 100-continue\r\n\r\n",
             dw_sim_fixture.control);
    cr_assert(send_all(fd, expect, strlen(expect)));
    cr_expect(eq(int, status_or_close(fd, 5000, head, sizeof head), 413), "%s", head);
    close(fd);
    /* 16 clients announce 16 MiB bodies each (the most allowed): those the
     * cap has no room for are refused at once, before sending anything. */
    char put[256];
    snprintf(put, sizeof put,
             "PUT /devices/default/script HTTP/1.1\r\nHost: localhost:%u\r\n"
             "Content-Type: application/json\r\nContent-Length: 16777216\r\n\r\n",
             dw_sim_fixture.control);
    int fds[BIG_CLIENTS], refused = 0;
    for (int i = 0; i < BIG_CLIENTS; i++) {
        fds[i] = dw_sim_raw_connect(dw_sim_fixture.control, 0);
        cr_assert(fds[i] >= 0);
        cr_assert(send_all(fds[i], put, strlen(put)));
    }
    usleep(500 * 1000);
    for (int i = 0; i < BIG_CLIENTS; i++) {
        int status = status_or_close(fds[i], 0, head, sizeof head);
        if (status < 0)
            continue; /* accepted: its body is awaited */
        cr_expect(eq(int, status, 503), "refused with the cap's error: %s", head);
        cr_expect(strstr(head, "67108864") != NULL, "the error names the cap: %s", head);
        refused++;
        close(fds[i]);
        fds[i] = -1;
    }
    cr_expect(refused >= BIG_CLIENTS - 4, "%d of %d refused", refused, BIG_CLIENTS);
    /* The accepted ones send all but the last byte, and hold. */
    size_t n = (size_t)16 * 1024 * 1024 - 1;
    char *body = malloc(n);
    cr_assert(body != NULL);
    memset(body, ' ', n);
    for (int i = 0; i < BIG_CLIENTS; i++)
        if (fds[i] >= 0)
            cr_expect(send_all(fds[i], body, n), "client %d sends its body", i);
    free(body);
    usleep(300 * 1000);
    long grown = dw_sim_proc_rss_kib(&dw_sim_fixture.proc) - base;
    /* 4 bodies held (64 MiB); all 16 would be 256 MiB. */
    cr_expect(grown < 160 * 1024, "RSS grew by %ld KiB with bodies in flight", grown);
    health_within(1000, "next to 16 MiB bodies in flight");
    for (int i = 0; i < BIG_CLIENTS; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    /* Their bytes are given back: a body fits again. */
    long long t0 = mono_ms();
    int status = 0;
    while ((status = call("PUT", "/devices/default/script", psu, NULL)) == 503 &&
           mono_ms() - t0 < 5000)
        usleep(50 * 1000);
    cr_expect(eq(int, status, 200), "a script fits once the held bodies are gone");
    cr_expect(eq(int, finish(), 0));
}

/* ---- hostile neighbours of the journal ----------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* n round trips of *IDN? on c: how long they took, in ms. */
static int64_t pings(dw_sim_client *c, int n)
{
    int64_t t0 = now_ms();
    for (int i = 0; i < n; i++)
        dw_sim_ask_eq(c, "*IDN?", "ACME,PSU");
    return now_ms() - t0;
}

typedef struct tail_poller {
    atomic_int stop;
    int polls, failures;
} tail_poller;

static void *tail_thread(void *arg)
{
    tail_poller *p = arg;
    while (!atomic_load(&p->stop)) {
        dw_test_http_reply r;
        int status = dw_test_http(dw_sim_fixture.control, "GET",
                                  "/devices/default/journal?tail=1000", NULL, NULL, 0, 60000, &r);
        dw_test_http_reply_free(&r);
        p->failures += status != 200;
        p->polls++;
        usleep(10 * 1000);
    }
    return NULL;
}

#define NWAITERS 30

Test(sim_control, journal_waiters_and_a_tail_poller_do_not_hold_up_the_device)
{
    start();
    dw_sim_client c;
    client(&c);
    int64_t quiet = pings(&c, 200);
    /* 30 long-polls for a request that never comes and a client reading
     * the last 1000 entries every 10 ms, while the device is asked. */
    waiter w[NWAITERS];
    pthread_t t[NWAITERS], pt;
    for (int i = 0; i < NWAITERS; i++) {
        w[i] = (waiter){"/devices/default/journal/wait?match=NEVER%20SENT&timeout_ms=4000", 0, ""};
        cr_assert(eq(int, pthread_create(&t[i], NULL, wait_thread, &w[i]), 0));
    }
    tail_poller p = {0, 0, 0};
    cr_assert(eq(int, pthread_create(&pt, NULL, tail_thread, &p), 0));
    usleep(300 * 1000); /* the waits are under way */
    int64_t busy = pings(&c, 200);
    int64_t more = pings(&c, 200);
    atomic_store(&p.stop, 1);
    pthread_join(pt, NULL);
    for (int i = 0; i < NWAITERS; i++) {
        pthread_join(t[i], NULL);
        cr_expect(eq(int, w[i].status, 408), "waiter %d: %s", i, w[i].body);
    }
    /* Generous bounds (the machine is shared): the ratio itself is the
     * benchmark's (bench_sim_control). */
    cr_expect(busy < 5000 && more < 5000, "200 round trips took %lld and %lld ms", (long long)busy,
              (long long)more);
    cr_expect(busy < 20 * quiet + 1000, "%lld ms against %lld ms without the waiters",
              (long long)busy, (long long)quiet);
    cr_expect(p.polls > 0 && p.failures == 0, "%d polls, %d failed", p.polls, p.failures);
    dw_sim_client_close(&c);
    cr_expect(eq(int, finish(), 0));
}

/* Each thread of process `pid`: its name and nice value, `max` at most; the
 * number found. */
typedef struct task_nice {
    char comm[32];
    int nice;
    int policy; /* SCHED_OTHER 0, SCHED_IDLE 5 */
} task_nice;

static size_t tasks_of(pid_t pid, task_nice *t, size_t max)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    cr_assert(d != NULL, "%s", path);
    size_t n = 0;
    for (struct dirent *e; n < max && (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        char p[300], stat[1024];
        snprintf(p, sizeof p, "/proc/%d/task/%s/stat", (int)pid, e->d_name);
        FILE *f = fopen(p, "r");
        if (!f)
            continue; /* the thread ended meanwhile */
        size_t len = fread(stat, 1, sizeof stat - 1, f);
        fclose(f);
        stat[len] = 0;
        char *open = strchr(stat, '('), *close = strrchr(stat, ')');
        if (!open || !close)
            continue;
        snprintf(t[n].comm, sizeof t[n].comm, "%.*s", (int)(close - open - 1), open + 1);
        /* Fields from the 3rd on, after ")": nice is the 19th, policy the 41st. */
        char *q = close + 2;
        for (int field = 3; q && field <= 41; field++) {
            if (field == 19)
                t[n].nice = atoi(q);
            if (field == 41) {
                t[n++].policy = atoi(q);
                break;
            }
            q = strchr(q, ' ') ? strchr(q, ' ') + 1 : NULL;
        }
    }
    closedir(d);
    return n;
}

/* The HTTP threads run in the SCHED_IDLE class, the device loops in the
 * normal one, so an API client's CPU comes out of what the devices leave. */
Test(sim_control, the_api_threads_yield_to_the_device_loops)
{
    start();
    waiter w = {"/devices/default/journal/wait?match=NEVER&timeout_ms=3000", 0, ""};
    pthread_t t;
    cr_assert(eq(int, pthread_create(&t, NULL, wait_thread, &w), 0));
    usleep(300 * 1000); /* the wait holds its connection thread */
    task_nice tasks[64];
    size_t n = tasks_of(dw_sim_fixture.proc.pid, tasks, 64);
    int loops = 0, idle = 0, main_policy = 99;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(tasks[i].comm, "devwire-loop") == 0) {
            loops++;
            cr_expect(eq(int, tasks[i].policy, 0), "a device loop in class %d", tasks[i].policy);
            cr_expect(eq(int, tasks[i].nice, 0), "a device loop at nice %d", tasks[i].nice);
        } else if (tasks[i].policy == 5) {
            idle++;
        } else if (strcmp(tasks[i].comm, "devwire-sim") == 0) {
            main_policy = tasks[i].policy;
        }
    }
    cr_expect(eq(int, loops, 1), "one device, one loop thread");
    cr_expect(ge(int, idle, 2), "the HTTP server and the waiting connection in SCHED_IDLE");
    cr_expect(eq(int, main_policy, 0), "the main thread keeps its class");
    pthread_join(t, NULL);
    cr_expect(eq(int, w.status, 408), "%s", w.body);
    cr_expect(eq(int, finish(), 0));
}

/* Requests on which ^(a|aa)+$ backtracks exponentially: without limits
 * each one costs a second or more. */
static void send_hostile(dw_sim_client *c, int n)
{
    for (int i = 0; i < n; i++)
        send_line(c, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab");
    dw_sim_ask_eq(c, "*IDN?", "ACME,PSU"); /* all of them are in the journal */
}

Test(sim_control, a_hostile_regex_wait_times_out_on_time_and_the_device_answers_meanwhile)
{
    start();
    dw_sim_client c;
    client(&c);
    send_hostile(&c, 50);
    waiter w = {"/devices/default/journal/wait?regex=%5E(a%7Caa)%2B%24&timeout_ms=100", 0, ""};
    pthread_t t;
    int64_t t0 = now_ms();
    cr_assert(eq(int, pthread_create(&t, NULL, wait_thread, &w), 0));
    int64_t ping = pings(&c, 20);
    pthread_join(t, NULL);
    int64_t waited = now_ms() - t0;
    cr_expect(eq(int, w.status, 408), "%s", w.body);
    cr_expect(waited < 1500, "timeout_ms=100 answered after %lld ms", (long long)waited);
    cr_expect(ping < 1500, "20 round trips took %lld ms next to the wait", (long long)ping);
    cJSON *j = cJSON_Parse(w.body);
    cr_expect(num_at(j, "limited") > 0, "the limit hits are reported: %s", w.body);
    cJSON_Delete(j);
    dw_sim_client_close(&c);
    cr_expect(eq(int, finish(), 0));
}

Test(sim_control, verify_with_a_regex_that_hits_its_limits_fails_and_says_so)
{
    start();
    dw_sim_client c;
    client(&c);
    send_hostile(&c, 5);
    cJSON *j;
    int64_t t0 = now_ms();
    cr_expect(eq(int,
                 call("POST", "/devices/default/verify",
                      "[{\"request\": {\"regex\": \"^(a|aa)+$\"}, \"count\": 0}]", &j),
                 409));
    cr_expect(now_ms() - t0 < 5000, "verify took %lld ms", (long long)(now_ms() - t0));
    const cJSON *f = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "failures"), 0);
    cr_expect(eq(i64, num_at(f, "limited"), 5));
    cr_expect(strstr(str_at(f, "message"), "match limits") != NULL, "%s", str_at(f, "message"));
    cJSON_Delete(j);
    dw_sim_ask_eq(&c, "*IDN?", "ACME,PSU");
    dw_sim_client_close(&c);
    cr_expect(eq(int, finish(), 0));
}

Test(sim_control, a_fault_whose_regex_hits_its_limits_does_not_fire_and_says_so)
{
    start();
    cr_expect(eq(int,
                 call("POST", "/devices/default/faults",
                      "{\"kind\": \"close\", \"match\": {\"regex\": \"^(a|aa)+$\"}}", NULL),
                 201));
    dw_sim_client c;
    client(&c);
    int64_t t0 = now_ms();
    send_hostile(&c, 3); /* the connection stays open: the fault did not take them */
    cr_expect(now_ms() - t0 < 5000, "3 requests took %lld ms", (long long)(now_ms() - t0));
    cJSON *j;
    cr_expect(eq(int, call("GET", "/devices/default/faults", NULL, &j), 200));
    const cJSON *f = cJSON_GetArrayItem(j, 0);
    cr_expect(eq(i64, num_at(f, "limited"), 3), "the limit hits are listed");
    cr_expect(eq(i64, num_at(f, "fired"), 0));
    cJSON_Delete(j);
    dw_sim_client_close(&c);
    cr_expect(eq(int, finish(), 0));
}
