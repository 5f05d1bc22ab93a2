/* devwire-sim's control API against web browsers and bad bytes, from raw
 * sockets: without a token, a request a web page could send (a foreign
 * Host after DNS rebinding, a foreign Origin, Sec-Fetch-Site cross-site, a
 * body that is not declared JSON) is refused; with one, the token is
 * checked whole, in any scheme case, and never taken from the URL; the
 * API listens without a token only where its host resolves to loopback;
 * and whatever bytes a PATCH or a device's client sends, every answer is
 * well-formed UTF-8 JSON, the exact bytes given as {"hex": ...}. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <devwire/devwire.h>

#include "common/json_bytes.h"
#include "http_client.h"
#include "sim_fixture.h"

TestSuite(sim_control_guard, .init = dw_sim_fixture_init, .fini = dw_sim_fixture_fini,
          .timeout = 120);

#define LF      dw_sentinel_marshaller_new("\n", 1)
#define TIMEOUT 20000

static const char script[] =
    "{\"name\": \"g\", \"state\": {\"v\": \"0\"},\n"
    " \"properties\": {\"label\": {\"type\": \"string\", \"command\": \"LBL\"}},\n"
    " \"rules\": [{\"name\": \"echo\", \"when\": {\"regex\": \"^ECHO (.*)$\"}, \"reply\": "
    "\"$1\"},\n"
    "  {\"name\": \"idn\", \"when\": \"*IDN?\", \"reply\": \"ACME\"}]}\n";

static void start_with(const char *const *extra)
{
    const char *args[16] = {"--control", "127.0.0.1:0"};
    size_t n = 2;
    for (size_t i = 0; extra && extra[i]; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    dw_sim_control_of(dw_sim_serve("guard", script, args), TIMEOUT);
}

/* ---- a strict UTF-8 check, written apart from the simulator's ------------------ */

/* 1 when p[0..n) is well-formed UTF-8 (RFC 3629: no overlong form, no
 * surrogate, nothing above U+10FFFF). */
static int utf8_ok(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        unsigned long cp;
        size_t len;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + len > n)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        static const unsigned long least[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < least[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

/* A request with `headers` (may be NULL) and `body` (may be NULL): the
 * status; the body checked to be UTF-8 and JSON, parsed into *json (may be
 * NULL). */
static int request(const char *method, const char *target, const char *headers, const char *body,
                   size_t len, cJSON **json)
{
    dw_test_http_reply r;
    int status =
        dw_test_http(dw_sim_fixture.control, method, target, headers, body, len, TIMEOUT, &r);
    cr_assert(status != 0, "%s %s: %s", method, target, r.error);
    cr_assert(utf8_ok((const unsigned char *)r.body, r.body_len),
              "%s %s: %d, the answer is not UTF-8: %s", method, target, status, r.body);
    cJSON *j = cJSON_ParseWithLength(r.body, r.body_len);
    cr_assert(j != NULL, "%s %s: %d, not JSON: %s", method, target, status, r.body);
    if (json)
        *json = j;
    else
        cJSON_Delete(j);
    dw_test_http_reply_free(&r);
    return status;
}

static int call(const char *method, const char *target, const char *headers, const char *body,
                cJSON **json)
{
    return request(method, target, headers, body, body ? strlen(body) : 0, json);
}

static const char *str_at(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* A request that must be refused with `want`, its error's where `where`. */
static void refused(const char *method, const char *target, const char *headers, const char *body,
                    int want, const char *where)
{
    cJSON *j = NULL;
    int status = call(method, target, headers, body, &j);
    cr_expect(eq(int, status, want), "%s %s (%s): %s", method, target, headers ? headers : "",
              str_at(j, "error"));
    cr_expect(eq(str, (char *)str_at(j, "where"), (char *)where), "%s %s: %s", method, target,
              str_at(j, "error"));
    cJSON_Delete(j);
}

static int faults_count(void)
{
    cJSON *j = NULL;
    cr_assert(eq(int, call("GET", "/devices/default/faults", NULL, NULL, &j), 200));
    int n = cJSON_GetArraySize(j);
    cJSON_Delete(j);
    return n;
}

/* ---- without a token: what a web page could send is refused --------------------- */

Test(sim_control_guard, a_cross_site_fault_is_refused)
{
    start_with(NULL);
    /* What a page on evil.example can send: a "simple" POST, no preflight. */
    char head[512];
    int n = snprintf(head, sizeof head,
                     "POST /devices/default/faults HTTP/1.1\r\nHost: evil.example\r\n"
                     "Origin: http://evil.example\r\nContent-Type: text/plain\r\n"
                     "Connection: close\r\nContent-Length: 25\r\n\r\n");
    dw_test_http_reply r;
    int status = dw_test_http_raw(dw_sim_fixture.control, head, (size_t)n,
                                  "{\"kind\":\"disconnect_all\"}", 25, TIMEOUT, &r);
    cr_expect(eq(int, status, 403), "%s", r.body ? r.body : r.error);
    cr_expect(strstr(r.body ? r.body : "", "\"where\":\"header.Host\"") != NULL, "%s", r.body);
    dw_test_http_reply_free(&r);
    /* Each of the three alone is enough. */
    const char *body = "{\"kind\": \"disconnect_all\"}";
    refused("POST", "/devices/default/faults", "Origin: http://evil.example\r\n", body, 403,
            "header.Origin");
    refused("POST", "/devices/default/faults", "Content-Type: text/plain\r\n", body, 415,
            "header.Content-Type");
    refused("POST", "/devices/default/faults",
            "Content-Type: application/x-www-form-urlencoded\r\n", body, 415,
            "header.Content-Type");
    refused("POST", "/devices/default/faults", "Sec-Fetch-Site: cross-site\r\n", body, 403,
            "header.Sec-Fetch-Site");
    refused("POST", "/devices/default/faults", "Sec-Fetch-Site: same-site\r\n", body, 403,
            "header.Sec-Fetch-Site");
    refused("POST", "/devices/default/faults", "Origin: null\r\n", body, 403, "header.Origin");
    refused("POST", "/devices/default/faults", "Origin: https://127.0.0.1\r\n", body, 403,
            "header.Origin");
    cr_expect(eq(int, faults_count(), 0), "no fault was injected");
    /* The same request from the API's own origin, JSON declared. */
    char own[160];
    snprintf(own, sizeof own,
             "Origin: http://127.0.0.1:%u\r\nSec-Fetch-Site: same-origin\r\n"
             "Content-Type: application/json; charset=utf-8\r\n",
             dw_sim_fixture.control);
    cr_expect(eq(int, call("POST", "/devices/default/faults", own, body, NULL), 201));
    cr_expect(eq(int, call("POST", "/devices/default/reset", NULL, NULL, NULL), 200),
              "no body, no Content-Type needed");
    cr_expect(eq(int, dw_sim_stop(&dw_sim_fixture.proc, 10000, NULL), 0));
}

Test(sim_control_guard, a_foreign_host_reads_nothing)
{
    start_with(NULL);
    dw_sim_client c;
    cr_assert(eq(int, dw_sim_client_open(&c, dw_sim_fixture.proc.port, LF, TIMEOUT), DW_OK));
    dw_sim_ask_eq(&c, "*IDN?", "ACME");
    dw_sim_client_close(&c);
    /* DNS rebinding: evil.example now resolves to 127.0.0.1. */
    refused("GET", "/devices/default/journal", "Host: evil.example\r\n", NULL, 403, "header.Host");
    char host[96];
    snprintf(host, sizeof host, "Host: evil.example:%u\r\n", dw_sim_fixture.control);
    refused("GET", "/devices/default/journal", host, NULL, 403, "header.Host");
    refused("GET", "/health", "Host: 127.0.0.1\r\n", NULL, 403, "header.Host"); /* no port */
    refused("GET", "/health", "Host: localhost:1\r\n", NULL, 403, "header.Host");
    refused("GET", "/health", "Host: 127.0.0.2\r\n", NULL, 403, "header.Host");
    refused("GET", "/health", "Host: localhost.\r\n", NULL, 403, "header.Host");
    /* The forms that name this API are accepted. */
    static const char *const ok[] = {"localhost", "LocalHost", "127.0.0.1", "[::1]"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        snprintf(host, sizeof host, "Host: %s:%u\r\nOrigin: http://%s:%u\r\n", ok[i],
                 dw_sim_fixture.control, ok[i], dw_sim_fixture.control);
        cr_expect(eq(int, call("GET", "/devices/default/journal", host, NULL, NULL), 200), "%s",
                  ok[i]);
    }
    cr_expect(eq(int, dw_sim_stop(&dw_sim_fixture.proc, 10000, NULL), 0));
}

/* ---- with a token ------------------------------------------------------------------ */

Test(sim_control_guard, a_long_token_is_compared_whole)
{
    char token[2001];
    for (size_t i = 0; i < 2000; i++)
        token[i] = (char)('a' + i % 26);
    token[2000] = 0;
    char file[2100];
    snprintf(file, sizeof file, "%s\n", token);
    const char *extra[] = {"--control-token", dw_sim_fixture_file("token", file), NULL};
    start_with(extra);
    char *header = malloc(2100);
    cr_assert(header != NULL);
    snprintf(header, 2100, "Authorization: Bearer %s\r\n", token);
    cr_expect(eq(int, call("GET", "/health", header, NULL, NULL), 200));
    /* The scheme in any case (RFC 9110). */
    snprintf(header, 2100, "Authorization: bearer %s\r\n", token);
    cr_expect(eq(int, call("GET", "/health", header, NULL, NULL), 200), "lower-case bearer");
    snprintf(header, 2100, "Authorization: BEARER  %s\r\n", token);
    cr_expect(eq(int, call("GET", "/health", header, NULL, NULL), 200), "upper-case BEARER");
    /* One character off at the end, one short, one long: all refused. */
    token[1999] = 'Z';
    snprintf(header, 2100, "Authorization: Bearer %s\r\n", token);
    refused("GET", "/health", header, NULL, 401, "authorization");
    snprintf(header, 2100, "Authorization: Bearer %.1999s\r\n", token);
    refused("GET", "/health", header, NULL, 401, "authorization");
    token[1999] = (char)('a' + 1999 % 26);
    snprintf(header, 2100, "Authorization: Bearer %sx\r\n", token);
    refused("GET", "/health", header, NULL, 401, "authorization");
    snprintf(header, 2100, "Authorization: Basic %s\r\n", token);
    refused("GET", "/health", header, NULL, 401, "authorization");
    free(header);
    cr_expect(eq(int, dw_sim_stop(&dw_sim_fixture.proc, 10000, NULL), 0));
}

Test(sim_control_guard, a_token_in_the_url_is_refused)
{
    const char *extra[] = {"--control-token", dw_sim_fixture_file("token", "s3cret\n"), NULL};
    start_with(extra);
    refused("GET", "/health?access_token=s3cret", NULL, NULL, 400, "query.access_token");
    refused("GET", "/devices/default/journal?limit=1&access_token=s3cret", NULL, NULL, 400,
            "query.access_token");
    refused("GET", "/health?access_token=s3cret", "Authorization: Bearer s3cret\r\n", NULL, 400,
            "query.access_token");
    /* With the token, Host and Origin are the token's business: a proxy in
     * front may rewrite them. */
    cr_expect(eq(int,
                 call("GET", "/health",
                      "Authorization: Bearer s3cret\r\nHost: sim.example\r\n"
                      "Origin: https://sim.example\r\n",
                      NULL, NULL),
                 200));
    refused("GET", "/health", "Host: sim.example\r\n", NULL, 401, "authorization");
    /* The status page holds no data: it opens without the token, and its
     * script sends the one given in the URL's fragment. */
    dw_test_http_reply r;
    cr_expect(
        eq(int, dw_test_http(dw_sim_fixture.control, "GET", "/", NULL, NULL, 0, TIMEOUT, &r), 200));
    cr_expect(strstr(r.body ? r.body : "", "Authorization") != NULL, "the page sends the header");
    dw_test_http_reply_free(&r);
    cr_expect(eq(int, dw_sim_stop(&dw_sim_fixture.proc, 10000, NULL), 0));
}

/* ---- where it listens without a token ------------------------------------------------ */

static void refused_at_start(const char *control, const char *needle)
{
    dw_sim_proc p;
    const char *path = dw_sim_fixture_file("s", script);
    const char *args[] = {"--script", path, "--listen", "127.0.0.1:0", "--control", control, NULL};
    cr_expect(eq(int, dw_sim_proc_run(&p, args, TIMEOUT), 2), "--control %s", control);
    const char *err = p.err.data ? (const char *)p.err.data : "";
    cr_expect(strstr(err, needle) != NULL, "--control %s: %s", control, err);
    cr_expect(strstr(err, "--control-token") != NULL, "--control %s: %s", control, err);
    dw_sim_proc_free(&p);
}

Test(sim_control_guard, loopback_is_what_the_host_resolves_to)
{
    refused_at_start("127.qa.invalid:0", "127.qa.invalid");
    refused_at_start("0.0.0.0:0", "0.0.0.0");
    /* An IPv4-mapped loopback address is loopback. */
    const char *extra[] = {"--control", "[::ffff:127.0.0.1]:0", NULL};
    dw_sim_control_of(dw_sim_serve("guard", script, extra), TIMEOUT);
    cr_expect(strstr(dw_sim_out_of(&dw_sim_fixture.proc),
                     "control on http://[::ffff:127.0.0.1]:") != NULL,
              "%s", dw_sim_out_of(&dw_sim_fixture.proc));
    char host[96];
    snprintf(host, sizeof host, "Host: [::ffff:127.0.0.1]:%u\r\n", dw_sim_fixture.control);
    cr_expect(eq(int, call("GET", "/health", host, NULL, NULL), 200));
    cr_expect(eq(int, dw_sim_stop(&dw_sim_fixture.proc, 10000, NULL), 0));
    /* glibc reads 0177.0.0.1 as octal: 127.0.0.1. */
    const char *octal[] = {"--control", "0177.0.0.1:0", NULL};
    dw_sim_control_of(dw_sim_serve("guard", script, octal), TIMEOUT);
    cr_expect(eq(int, call("GET", "/health", NULL, NULL, NULL), 200));
    cr_expect(eq(int, dw_sim_stop(&dw_sim_fixture.proc, 10000, NULL), 0));
}

/* ---- bytes that are not UTF-8 ----------------------------------------------------------- */

/* GET target: every answer is checked by request(); *json gets it. */
static cJSON *get(const char *target, int want)
{
    cJSON *j = NULL;
    cr_expect(eq(int, call("GET", target, NULL, NULL, &j), want), "GET %s", target);
    return j;
}

static const char *hex_at(const cJSON *o, const char *key)
{
    return str_at(cJSON_GetObjectItemCaseSensitive(o, key), "hex");
}

Test(sim_control_guard, a_patch_with_bad_utf8_answers_utf8)
{
    start_with(NULL);
    static const char patch[] = "{\"v\": \"a\xff"
                                "b\", \"label\": \"x\xc0\xafy\"}";
    cJSON *j = NULL;
    cr_expect(eq(int, request("PATCH", "/devices/default/state", NULL, patch, sizeof patch - 1, &j),
                 200));
    cJSON_Delete(j);
    /* The exact bytes come back as hex, the variable's and the property's. */
    j = get("/devices/default/state", 200);
    cr_expect(eq(str, (char *)hex_at(cJSON_GetObjectItem(j, "vars"), "v"), "61ff62"));
    cr_expect(eq(str, (char *)hex_at(cJSON_GetObjectItem(j, "properties"), "label"), "78c0af79"));
    cJSON_Delete(j);
    /* And go back in as hex. */
    cr_expect(eq(int,
                 call("PATCH", "/devices/default/state", NULL,
                      "{\"label\": {\"hex\": \"ceb1ff\"}, \"v\": {\"base64\": \"/w==\"}}", &j),
                 200));
    cr_expect(eq(str, (char *)hex_at(cJSON_GetObjectItem(j, "properties"), "label"), "ceb1ff"));
    cr_expect(eq(str, (char *)hex_at(cJSON_GetObjectItem(j, "vars"), "v"), "ff"));
    cJSON_Delete(j);
    /* A name that is not UTF-8, in a 422's message and where. */
    static const char bad_name[] = "{\"w\xfe\": 1}";
    cr_expect(
        eq(int, request("PATCH", "/devices/default/state", NULL, bad_name, sizeof bad_name - 1, &j),
           422));
    cr_expect(strstr(str_at(j, "where"), "body.w\xef\xbf\xbd") != NULL, "U+FFFD for the byte: %s",
              str_at(j, "where"));
    cJSON_Delete(j);
    cr_expect(eq(int, dw_sim_stop(&dw_sim_fixture.proc, 10000, NULL), 0));
}

Test(sim_control_guard, a_device_request_with_bad_utf8_answers_utf8)
{
    start_with(NULL);
    dw_sim_client c;
    cr_assert(eq(int, dw_sim_client_open(&c, dw_sim_fixture.proc.port, LF, TIMEOUT), DW_OK));
    cr_assert(eq(int, dw_sim_client_send(&c, "ECHO \xff\xfe", 7), DW_OK));
    cr_assert(eq(int, dw_sim_client_send(&c, "LBL \"\xed\xa0\x80\"", 9), DW_OK));
    cr_assert(eq(int, dw_sim_client_send(&c, "\xc3", 1), DW_OK));
    /* The journal's entries: the exact bytes as hex. */
    cJSON *j = get("/devices/default/journal/wait?request=%C3&timeout_ms=10000", 200);
    cr_expect(eq(str, (char *)hex_at(j, "request"), "c3"));
    cJSON_Delete(j);
    j = get("/devices/default/journal", 200);
    const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "entries"), 0);
    cr_expect(eq(str, (char *)hex_at(first, "request"), "4543484f20fffe"));
    cr_expect(eq(str, (char *)hex_at(first, "reply"), "fffe0a"));
    cJSON_Delete(j);
    j = get("/devices/default/state", 200);
    cr_expect(eq(str, (char *)hex_at(cJSON_GetObjectItem(j, "properties"), "label"), "22eda08022"),
              "the bytes as stored, in their quotes");
    cJSON_Delete(j);
    /* A wait's 408, a 404 naming a device, a 422 quoting a pattern. */
    cJSON_Delete(get("/devices/default/journal/wait?match=%FF%FE&timeout_ms=10", 408));
    cJSON_Delete(get("/devices/%FF%C0/state", 404));
    cJSON_Delete(get("/devices/default/journal/wait?regex=%FF(&timeout_ms=10", 422));
    /* Faults: their patterns listed as they were given, the bytes as hex. */
    static const char raw[] = "{\"kind\": \"drop\", \"match\": \"\xff\"}";
    cr_expect(
        eq(int, request("POST", "/devices/default/faults", NULL, raw, sizeof raw - 1, NULL), 201));
    cr_expect(
        eq(int,
           call("POST", "/devices/default/faults", NULL,
                "{\"kind\": \"drop\", \"match\": {\"prefix\": {\"hex\": \"41004200\"}}}", NULL),
           201));
    j = get("/devices/default/faults", 200);
    const cJSON *m0 = cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "match");
    const cJSON *m1 = cJSON_GetObjectItem(cJSON_GetArrayItem(j, 1), "match");
    cr_expect(eq(str, (char *)hex_at(m0, "match"), "ff"));
    cr_expect(eq(str, (char *)hex_at(m1, "prefix"), "41004200"));
    cJSON_Delete(j);
    dw_sim_client_close(&c);
    cr_expect(eq(int, dw_sim_stop(&dw_sim_fixture.proc, 10000, NULL), 0));
}

/* The rule itself: each byte that starts no well-formed sequence is one
 * U+FFFD; well-formed sequences are kept as they are. */
Test(sim_control_guard, bad_bytes_become_one_replacement_each)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"plain", "plain"},
        {"\xce\xb1\xe2\x82\xac\xf0\x9f\x98\x80", "\xce\xb1\xe2\x82\xac\xf0\x9f\x98\x80"},
        {"a\xffz", "a\xef\xbf\xbdz"},
        {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},                 /* overlong '/' */
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* a surrogate */
        {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"x\xe2\x82", "x\xef\xbf\xbd\xef\xbf\xbd"}, /* cut short at the end */
        {"\x80", "\xef\xbf\xbd"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i].in);
        dw_buf b = DW_BUF_INIT;
        cr_assert(eq(int, dw_buf_append(&b, cases[i].in, n), DW_OK));
        cr_expect(eq(int, dw_sim_utf8_valid(b.data, b.len), strcmp(cases[i].in, cases[i].out) == 0),
                  "case %zu", i);
        cr_assert(eq(int, dw_sim_utf8_repair(&b), DW_OK));
        cr_expect(b.len == strlen(cases[i].out) && memcmp(b.data, cases[i].out, b.len) == 0,
                  "case %zu: %.*s", i, (int)b.len, (char *)b.data);
        cr_expect(utf8_ok(b.data, b.len), "case %zu", i);
        dw_buf_free(&b);
    }
}
