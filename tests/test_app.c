/* The application layer over TCP: the original's reversing-server test,
 * many clients at once, JSON lines end to end, and failures that close one
 * connection only. Servers bind 127.0.0.1 on port 0. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static dw_buf log_text;

static void capture(void *user, dw_log_level level, const char *message)
{
    (void)user;
    pthread_mutex_lock(&log_lock);
    dw_buf_printf(&log_text, "%s: %s\n", dw_log_level_name(level), message);
    pthread_mutex_unlock(&log_lock);
}

static const dw_logger test_logger = {capture, NULL, DW_LOG_DEBUG};

static void wait_logged(const char *needle)
{
    for (;;) {
        pthread_mutex_lock(&log_lock);
        dw_buf_nul_terminate(&log_text);
        int found = log_text.data && strstr((const char *)log_text.data, needle) != NULL;
        pthread_mutex_unlock(&log_lock);
        if (found)
            return;
        usleep(2000);
    }
}

/* One server per test, with the framings and callback the test chose. */
static dw_marshaller *req_m, *resp_m;
static dw_app_server *app;
static dw_tcp_server *server;
static dw_client *transport;
static dw_app_client *client;

static void serve(dw_marshaller *request, dw_marshaller *response, dw_app_callback cb)
{
    req_m = request;
    resp_m = response;
    cr_assert(req_m && resp_m);
    app = dw_app_server_new(req_m, resp_m, cb, NULL);
    cr_assert(app != NULL);
    dw_tcp_server_options o;
    dw_tcp_server_options_init(&o);
    o.logger = &test_logger;
    dw_server_handler h = dw_app_server_handler(app);
    dw_error err;
    cr_assert(eq(int, dw_tcp_server_new(&o, &h, &server, &err), DW_OK), "%s",
              dw_error_message(&err));
    cr_assert(eq(int, dw_tcp_server_start(server, &err), DW_OK), "%s", dw_error_message(&err));

    dw_tcp_client_options co;
    dw_tcp_client_options_init(&co);
    co.host = "127.0.0.1";
    co.port = dw_tcp_server_port(server);
    co.timeout_ms = 10000;
    transport = dw_tcp_client_new(&co);
    /* The client sends what the server reads and reads what it writes. */
    client = dw_app_client_new(transport, req_m, resp_m);
    cr_assert(client != NULL);
}

static void teardown(void)
{
    dw_app_client_free(client);
    dw_client_free(transport);
    dw_tcp_server_free(server);
    dw_app_server_free(app);
    dw_marshaller_free(req_m);
    dw_marshaller_free(resp_m);
    dw_buf_free(&log_text);
}

static dw_app_session *open_session(void)
{
    dw_app_session *s = NULL;
    dw_error err;
    int rc = dw_app_client_connect(client, &s, &err);
    cr_assert(eq(int, rc, DW_OK), "connect: %s", dw_error_message(&err));
    return s;
}

TestSuite(app, .fini = teardown, .timeout = 60);

/* ---- the original's test: a reversing server ------------------------- */

#define REQUEST_LEN 10000

static int reverse(void *user, dw_conn *c, const void *request, void **response)
{
    (void)user;
    (void)c;
    const dw_buf *in = request;
    dw_buf *out = calloc(1, sizeof *out);
    if (!out || dw_buf_reserve(out, in->len) != DW_OK) {
        free(out);
        return DW_ENOMEM;
    }
    for (size_t i = 0; i < in->len; i++)
        out->data[i] = in->data[in->len - 1 - i];
    out->len = in->len;
    *response = out;
    return DW_OK;
}

Test(app, original_reversing_server)
{
    serve(dw_fixed_marshaller_new(REQUEST_LEN), dw_sentinel_marshaller_new("\n", 1), reverse);
    uint8_t *request = malloc(REQUEST_LEN);
    unsigned seed = 12345;
    for (int session = 0; session < 2; session++) {
        dw_app_session *s = open_session();
        for (int trip = 0; trip < 3; trip++) {
            for (size_t i = 0; i < REQUEST_LEN; i++) {
                seed = seed * 1103515245u + 12345u;
                request[i] = (uint8_t)('A' + (seed >> 16) % 52); /* never "\n" */
            }
            dw_buf response = DW_BUF_INIT;
            dw_error err;
            int rc = dw_app_session_send_receive_bytes(s, request, REQUEST_LEN, &response, &err);
            cr_assert(eq(int, rc, DW_OK), "session %d trip %d: %s", session, trip,
                      dw_error_message(&err));
            cr_assert(eq(sz, response.len, (size_t)REQUEST_LEN));
            for (size_t i = 0; i < REQUEST_LEN; i++)
                cr_assert(response.data[i] == request[REQUEST_LEN - 1 - i], "byte %zu is reversed",
                          i);
            dw_buf_free(&response);
        }
        dw_app_session_close(s);
    }
    free(request);
}

Test(app, payload_level_send_receive)
{
    serve(dw_fixed_marshaller_new(4), dw_sentinel_marshaller_new("\n", 1), reverse);
    dw_app_session *s = open_session();
    dw_buf request = DW_BUF_INIT;
    dw_buf_append_str(&request, "abcd");
    void *response = NULL;
    dw_error err;
    cr_assert(eq(int, dw_app_session_send_receive(s, &request, &response, &err), DW_OK), "%s",
              dw_error_message(&err));
    dw_buf *r = response;
    cr_assert(eq(sz, r->len, 4));
    cr_assert(eq(int, memcmp(r->data, "dcba", 4), 0));
    dw_payload_free(resp_m, response);
    /* A request the framing cannot carry fails before anything is sent. */
    dw_buf_append_str(&request, "e");
    response = NULL;
    int rc = dw_app_session_send_receive(s, &request, &response, &err);
    cr_assert(eq(int, rc, DW_EINVAL), "a 5-byte payload for a 4-byte framing: %s", dw_err_name(rc));
    cr_assert(response == NULL);
    dw_buf_free(&request);
    dw_app_session_close(s);
}

/* ---- many clients at once -------------------------------------------- */

static int echo_upper(void *user, dw_conn *c, const void *request, void **response)
{
    (void)user;
    (void)c;
    const dw_buf *in = request;
    dw_buf *out = calloc(1, sizeof *out);
    dw_buf_append(out, in->data, in->len);
    for (size_t i = 0; i < out->len; i++)
        if (out->data[i] >= 'a' && out->data[i] <= 'z')
            out->data[i] = (uint8_t)(out->data[i] - 'a' + 'A');
    *response = out;
    return DW_OK;
}

#define CLIENTS 64
#define TRIPS   100

typedef struct worker {
    int id;
    int ok;
    int rc;
    char message[512];
} worker;

static void *worker_main(void *p)
{
    worker *w = p;
    dw_app_session *s = NULL;
    dw_error err;
    dw_error_clear(&err);
    w->rc = dw_app_client_connect(client, &s, &err);
    dw_buf response = DW_BUF_INIT;
    for (int i = 0; w->rc == DW_OK && i < TRIPS; i++) {
        char req[64], want[64];
        int n = snprintf(req, sizeof req, "client %d request %d", w->id, i);
        snprintf(want, sizeof want, "CLIENT %d REQUEST %d", w->id, i);
        w->rc = dw_app_session_send_receive_bytes(s, req, (size_t)n, &response, &err);
        if (w->rc == DW_OK && response.len == (size_t)n &&
            memcmp(response.data, want, (size_t)n) == 0)
            w->ok++;
    }
    snprintf(w->message, sizeof w->message, "%s", dw_error_message(&err));
    dw_buf_free(&response);
    dw_app_session_close(s);
    return NULL;
}

Test(app, sixty_four_clients_at_once)
{
    serve(dw_sentinel_marshaller_new("\n", 1), dw_sentinel_marshaller_new("\n", 1), echo_upper);
    pthread_t t[CLIENTS];
    worker w[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].id = i;
        pthread_create(&t[i], NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < CLIENTS; i++) {
        cr_expect(eq(int, w[i].rc, DW_OK), "client %d: %s", i, w[i].message);
        cr_expect(eq(int, w[i].ok, TRIPS), "client %d: every response is its own, in order", i);
    }
    cr_assert(eq(u64, dw_tcp_server_accepted(server), CLIENTS));
}

Test(app, pipelined_sends_are_answered_in_order)
{
    serve(dw_sentinel_marshaller_new("\r\n", 2), dw_sentinel_marshaller_new("\r\n", 2), echo_upper);
    dw_app_session *s = open_session();
    for (int i = 0; i < 50; i++) {
        char req[32];
        int n = snprintf(req, sizeof req, "p%d", i);
        cr_assert(eq(int, dw_app_session_send_bytes(s, req, (size_t)n, NULL), DW_OK));
    }
    dw_iter *it = dw_session_iter(dw_app_session_transport(s));
    dw_buf r = DW_BUF_INIT;
    for (int i = 0; i < 50; i++) {
        cr_assert(eq(int, dw_unmarshall(resp_m, it, &r, NULL), DW_OK));
        char want[32];
        int n = snprintf(want, sizeof want, "P%d", i);
        cr_assert(eq(sz, r.len, (size_t)n));
        cr_assert(eq(int, memcmp(r.data, want, (size_t)n), 0), "response %d in order", i);
    }
    dw_buf_free(&r);
    dw_app_session_close(s);
}

/* ---- JSON lines: cJSON payloads end to end ---------------------------- */

static int json_add(void *user, dw_conn *c, const void *request, void **response)
{
    (void)user;
    (void)c;
    const cJSON *req = request;
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(req, "op");
    if (cJSON_IsString(op) && strcmp(op->valuestring, "notify") == 0)
        return DW_OK; /* no response */
    if (cJSON_IsString(op) && strcmp(op->valuestring, "fail") == 0)
        return DW_EHANDLER;
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(req, "args");
    double sum = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, args)
    {
        sum += a->valuedouble;
    }
    cJSON *resp = cJSON_CreateObject();
    cJSON_AddNumberToObject(resp, "sum", sum);
    cJSON_AddStringToObject(resp, "note", "line\nbreak \"quoted\" \xc3\xa9");
    *response = resp;
    return DW_OK;
}

static cJSON *call(dw_app_session *s, const char *text)
{
    cJSON *req = cJSON_Parse(text);
    cr_assert(req != NULL);
    void *resp = NULL;
    dw_error err;
    int rc = dw_app_session_send_receive(s, req, &resp, &err);
    cJSON_Delete(req);
    cr_assert(eq(int, rc, DW_OK), "%s", dw_error_message(&err));
    return resp;
}

Test(app, json_lines_end_to_end)
{
    serve(dw_json_marshaller_new(), dw_json_marshaller_new(), json_add);
    dw_app_session *s = open_session();
    cJSON *r = call(s, "{\"op\":\"add\",\"args\":[1,2,3.5]}");
    cr_assert(cJSON_IsObject(r));
    cr_assert(eq(dbl, cJSON_GetObjectItem(r, "sum")->valuedouble, 6.5));
    cr_assert(
        eq(str, cJSON_GetObjectItem(r, "note")->valuestring, "line\nbreak \"quoted\" \xc3\xa9"),
        "a newline inside a string survives the line framing");
    cJSON_Delete(r);

    /* No response for a notification; the next call still pairs up. */
    cJSON *note = cJSON_Parse("{\"op\":\"notify\"}");
    cr_assert(eq(int, dw_app_session_send(s, note, NULL), DW_OK));
    cJSON_Delete(note);
    r = call(s, "{\"op\":\"add\",\"args\":[40,2]}");
    cr_assert(eq(dbl, cJSON_GetObjectItem(r, "sum")->valuedouble, 42.0));
    cJSON_Delete(r);
    dw_app_session_close(s);
}

Test(app, malformed_json_closes_that_connection_only)
{
    serve(dw_json_marshaller_new(), dw_json_marshaller_new(), json_add);
    dw_app_session *good = open_session();
    dw_app_session *bad = open_session();
    dw_session *raw = dw_app_session_transport(bad);
    cr_assert(eq(int, dw_session_send(raw, "{not json\n", 10, NULL), DW_OK));
    dw_buf r = DW_BUF_INIT;
    int rc = dw_unmarshall(resp_m, dw_session_iter(raw), &r, NULL);
    cr_assert(rc == DW_EOF || rc == DW_ECONNRESET, "closed: %s", dw_err_name(rc));
    wait_logged("warn: 127.0.0.1:");
    wait_logged("closed: protocol error: malformed frame");
    cJSON *ok = call(good, "{\"op\":\"add\",\"args\":[1]}");
    cJSON_Delete(ok);
    dw_buf_free(&r);
    dw_app_session_close(bad);
    dw_app_session_close(good);
}

Test(app, callback_error_closes_that_connection_only)
{
    serve(dw_json_marshaller_new(), dw_json_marshaller_new(), json_add);
    dw_app_session *good = open_session();
    dw_app_session *bad = open_session();
    cJSON *req = cJSON_Parse("{\"op\":\"fail\"}");
    void *resp = NULL;
    dw_error err;
    int rc = dw_app_session_send_receive(bad, req, &resp, &err);
    cJSON_Delete(req);
    cr_assert(eq(int, rc, DW_EOF), "the connection was closed: %s", dw_err_name(rc));
    cr_assert(strstr(dw_error_message(&err), "connection closed before a response") != NULL, "%s",
              dw_error_message(&err));
    wait_logged("request handler failed: handler failed");
    cJSON *ok = call(good, "{\"op\":\"add\",\"args\":[1]}");
    cJSON_Delete(ok);
    dw_app_session_close(bad);
    dw_app_session_close(good);
}

Test(app, oversized_and_truncated_frames_close_one_connection)
{
    dw_marshaller *in = dw_sentinel_marshaller_new("\n", 1);
    dw_marshaller_set_max_frame(in, 100);
    serve(in, dw_sentinel_marshaller_new("\n", 1), echo_upper);
    dw_app_session *good = open_session();

    dw_app_session *big = open_session();
    char payload[200];
    memset(payload, 'b', sizeof payload);
    dw_session_send(dw_app_session_transport(big), payload, sizeof payload, NULL);
    dw_buf r = DW_BUF_INIT;
    int rc = dw_unmarshall(resp_m, dw_session_iter(dw_app_session_transport(big)), &r, NULL);
    cr_assert(rc == DW_EOF || rc == DW_ECONNRESET, "closed: %s", dw_err_name(rc));
    wait_logged("frame exceeds the maximum frame size");

    dw_app_session *cut = open_session();
    dw_session_send(dw_app_session_transport(cut), "no end", 6, NULL);
    dw_app_session_close(cut);
    wait_logged("lost: stream ended inside a frame");

    cr_assert(eq(int, dw_app_session_send_receive_bytes(good, "fine", 4, &r, NULL), DW_OK));
    cr_assert(eq(int, memcmp(r.data, "FINE", 4), 0));
    dw_buf_free(&r);
    dw_app_session_close(big);
    dw_app_session_close(good);
}
