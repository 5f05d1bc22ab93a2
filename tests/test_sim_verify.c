/* devwire-sim's POST /devices/NAME/verify beyond its first answer: waiting
 * for requests still on their way (?wait_ms=), which side a failure is on,
 * and a journal that dropped entries (?allow_dropped=). A simulator as a
 * subprocess, driven over TCP and over HTTP. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <devwire/devwire.h>

#include "http_client.h"
#include "sim_fixture.h"

TestSuite(sim_verify, .init = dw_sim_fixture_init, .fini = dw_sim_fixture_fini, .timeout = 120);

#define LF      dw_sentinel_marshaller_new("\n", 1)
#define TIMEOUT 20000

static const char psu[] =
    "{\"name\": \"psu\", \"state\": {\"output\": \"OFF\"},\n"
    " \"rules\": [{\"name\": \"idn\", \"when\": \"*IDN?\", \"reply\": \"ACME,PSU\"},\n"
    "  {\"name\": \"rst\", \"when\": \"*RST\", \"set\": {\"output\": \"OFF\"}},\n"
    "  {\"name\": \"outp\", \"when\": {\"regex\": \"^OUTP (ON|OFF)$\"}, \"set\": {\"output\": "
    "\"$1\"}},\n"
    "  {\"name\": \"outp?\", \"when\": \"OUTP?\", \"reply\": \"${output}\"}]}\n";

static void start_with(const char *const *extra)
{
    const char *args[16] = {"--control", "127.0.0.1:0"};
    size_t n = 2;
    for (size_t i = 0; extra && extra[i]; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    dw_sim_control_of(dw_sim_serve("verify", psu, args), TIMEOUT);
}

/* An HTTP request; the body parsed as JSON into *json. */
static int call(const char *method, const char *target, const char *body, cJSON **json)
{
    dw_test_http_reply r;
    int status = dw_test_http(dw_sim_fixture.control, method, target, NULL, body,
                              body ? strlen(body) : 0, 60000, &r);
    cr_assert(status != 0, "%s %s: %s", method, target, r.error);
    *json = cJSON_Parse(r.body);
    cr_assert(json[0] != NULL, "%s %s: not JSON: %s", method, target, r.body);
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

static void client(dw_sim_client *c)
{
    int rc = dw_sim_client_open(c, dw_sim_fixture.proc.port, LF, TIMEOUT);
    cr_assert(eq(int, rc, DW_OK), "connect: %s", dw_error_message(&c->err));
}

static void send_line(dw_sim_client *c, const char *req)
{
    cr_assert(eq(int, dw_sim_client_send(c, req, strlen(req)), DW_OK), "send %s", req);
}

/* The side of failure i of a verification's answer. */
static const char *side_of(const cJSON *j, int i)
{
    return str_at(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "failures"), i), "side");
}

/* A verification on a thread of its own, while the test sends requests. */
typedef struct verifier {
    const char *target, *body;
    int status;
    cJSON *json;
} verifier;

static void *verify_thread(void *arg)
{
    verifier *v = arg;
    dw_test_http_reply r;
    v->status = dw_test_http(dw_sim_fixture.control, "POST", v->target, NULL, v->body,
                             strlen(v->body), 60000, &r);
    v->json = cJSON_Parse(r.body ? r.body : "null");
    dw_test_http_reply_free(&r);
    return NULL;
}

Test(sim_verify, a_wait_sees_a_request_that_comes_after_the_call)
{
    start_with(NULL);
    verifier v = {"/devices/default/verify?wait_ms=30000",
                  "[{\"request\": \"*RST\", \"count\": 1, \"in_order\": true},"
                  " {\"request\": \"OUTP ON\", \"count\": 1, \"in_order\": true}]",
                  0, NULL};
    pthread_t t;
    pthread_create(&t, NULL, verify_thread, &v);
    usleep(300 * 1000); /* the verification is under way (if not, it finds them at once) */
    dw_sim_client c;
    client(&c);
    send_line(&c, "*RST");
    send_line(&c, "OUTP ON"); /* no replies: nothing tells the driver they arrived */
    pthread_join(t, NULL);
    char *text = cJSON_PrintUnformatted(v.json);
    cr_expect(eq(int, v.status, 200), "%s", text);
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(v.json, "ok")), "%s", text);
    cr_expect(num_at(v.json, "waited_ms") >= 0, "%s", text);
    free(text);
    cJSON_Delete(v.json);
    dw_sim_client_close(&c);
}

Test(sim_verify, a_count_already_exceeded_fails_at_once_without_waiting)
{
    start_with(NULL);
    dw_sim_client c;
    client(&c);
    send_line(&c, "OUTP ON");
    send_line(&c, "OUTP ON");
    dw_sim_ask_eq(&c, "OUTP?", "ON"); /* both are in the journal */
    cJSON *j;
    cr_expect(eq(int,
                 call("POST", "/devices/default/verify?wait_ms=600000",
                      "[{\"request\": \"OUTP ON\", \"count\": 1}, {\"request\": \"NEVER\"}]", &j),
                 409));
    char *text = cJSON_PrintUnformatted(j);
    cr_expect(eq(i64, num_at(j, "waited_ms"), 0), "no wait could make it hold: %s", text);
    cr_expect(eq(str, (char *)side_of(j, 0), "too_many"), "%s", text);
    cr_expect(eq(str, (char *)side_of(j, 1), "too_few"), "%s", text);
    free(text);
    cJSON_Delete(j);
    dw_sim_client_close(&c);
}

Test(sim_verify, a_wait_ends_when_a_count_is_exceeded_meanwhile)
{
    start_with(NULL);
    verifier v = {"/devices/default/verify?wait_ms=600000",
                  "[{\"request\": \"OUTP ON\", \"at_most\": 1}, {\"request\": \"NEVER\"}]", 0,
                  NULL};
    pthread_t t;
    pthread_create(&t, NULL, verify_thread, &v);
    usleep(300 * 1000);
    dw_sim_client c;
    client(&c);
    send_line(&c, "OUTP ON");
    send_line(&c, "OUTP ON");
    pthread_join(t, NULL); /* long before 600 s: the suite's timeout says so */
    char *text = cJSON_PrintUnformatted(v.json);
    cr_expect(eq(int, v.status, 409), "%s", text);
    cr_expect(eq(str, (char *)side_of(v.json, 0), "too_many"), "%s", text);
    cr_expect(eq(i64,
                 num_at(cJSON_GetArrayItem(cJSON_GetObjectItem(v.json, "failures"), 0), "actual"),
                 2),
              "%s", text);
    free(text);
    cJSON_Delete(v.json);
    dw_sim_client_close(&c);
}

Test(sim_verify, a_wait_that_runs_out_says_what_is_missing_and_how_long_it_waited)
{
    start_with(NULL);
    dw_sim_client c;
    client(&c);
    send_line(&c, "OUTP ON");
    send_line(&c, "*RST");
    dw_sim_ask_eq(&c, "OUTP?", "OFF");
    cJSON *j;
    cr_expect(eq(int,
                 call("POST", "/devices/default/verify?wait_ms=200",
                      "[{\"request\": \"*RST\", \"in_order\": true},"
                      " {\"request\": \"OUTP ON\", \"in_order\": true},"
                      " {\"request\": \"OUTP OFF\", \"at_least\": 1}]",
                      &j),
                 409));
    char *text = cJSON_PrintUnformatted(j);
    cr_expect(eq(str, (char *)side_of(j, 0), "order"), "%s", text);
    cr_expect(eq(str, (char *)side_of(j, 1), "too_few"), "%s", text);
    cr_expect(num_at(j, "waited_ms") > 0, "%s", text);
    cr_expect(eq(str, (char *)str_at(j, "where"), "body"), "%s", text);
    free(text);
    cJSON_Delete(j);
    cr_expect(eq(int, call("POST", "/devices/default/verify?wait_ms=-1", "[]", &j), 422));
    cr_expect(eq(str, (char *)str_at(j, "where"), "query.wait_ms"));
    cJSON_Delete(j);
    cr_expect(eq(int, call("POST", "/devices/default/verify?wait_ms=600001", "[]", &j), 422));
    cJSON_Delete(j);
    cr_expect(eq(int, call("POST", "/devices/default/verify?allow_dropped=2", "[]", &j), 422));
    cr_expect(eq(str, (char *)str_at(j, "where"), "query.allow_dropped"));
    cJSON_Delete(j);
    dw_sim_client_close(&c);
}

Test(sim_verify, a_journal_that_dropped_entries_fails_unless_allowed)
{
    const char *extra[] = {"--journal", "2", NULL};
    start_with(extra);
    dw_sim_client c;
    client(&c);
    send_line(&c, "*RST"); /* dropped from the ring by what follows */
    send_line(&c, "OUTP ON");
    dw_sim_ask_eq(&c, "OUTP?", "ON");
    dw_sim_ask_eq(&c, "*IDN?", "ACME,PSU");
    const char *body = "[{\"request\": \"*RST\", \"count\": 0}]";
    cJSON *j;
    cr_expect(eq(int, call("POST", "/devices/default/verify", body, &j), 409));
    char *text = cJSON_PrintUnformatted(j);
    cr_expect(eq(i64, num_at(j, "journal_dropped"), 2), "%s", text);
    cr_expect(strstr(str_at(j, "error"), "dropped 2 entries") != NULL, "%s", text);
    cr_expect(eq(str, (char *)str_at(j, "where"), "journal"), "%s", text);
    cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(j, "ok")), "%s", text);
    free(text);
    cJSON_Delete(j);
    cr_expect(eq(int, call("POST", "/devices/default/verify?allow_dropped=1", body, &j), 200));
    cr_expect(eq(i64, num_at(j, "journal_dropped"), 2));
    cJSON_Delete(j);
    /* A reset forgets the journal and what it dropped. */
    cr_expect(eq(int, call("POST", "/devices/default/reset", NULL, &j), 200));
    cJSON_Delete(j);
    send_line(&c, "OUTP OFF");
    dw_sim_ask_eq(&c, "OUTP?", "OFF");
    cr_expect(eq(int,
                 call("POST", "/devices/default/verify",
                      "[{\"request\": \"OUTP OFF\", \"count\": 1}, {\"request\": \"*RST\", "
                      "\"count\": 0}]",
                      &j),
                 200));
    cr_expect(eq(i64, num_at(j, "journal_dropped"), 0));
    cJSON_Delete(j);
    dw_sim_client_close(&c);
}
