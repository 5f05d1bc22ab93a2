/* devwire-sim's control API against bad bytes, from raw sockets: whatever
 * bytes a PATCH or a device's client sends, every answer is well-formed
 * UTF-8 JSON, the exact bytes given as {"hex": ...}. */
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
