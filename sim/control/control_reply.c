/* devwire-sim's control API: what every resource shares, below them all:
 * the request's parts (percent-decoding, the query, the JSON body, the
 * methods allowed), the reply (JSON, errors, bytes as JSON) and a call on
 * a device's loop thread. Nothing here knows a route or a resource. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_bytes.h"
#include "control/control_int.h"
#include "device/server_int.h"

void dw_sim_http_response_init(dw_sim_http_response *r)
{
    memset(r, 0, sizeof *r);
    r->status = 500;
    r->content_type = "application/json";
}

void dw_sim_http_response_free(dw_sim_http_response *r)
{
    dw_buf_free(&r->body);
    dw_sim_http_response_init(r);
}

/* Every JSON answer is written here, and is UTF-8 text whatever bytes a
 * request, a device or a script put in its strings: cJSON writes a
 * string's bytes as they are, so each byte that starts no well-formed
 * UTF-8 sequence becomes U+FFFD here, once for all (outside strings cJSON
 * writes only ASCII). Where the exact bytes matter the answer carries them
 * as {"hex": ...}, which is ASCII. */
void dw__ctl_json(dw_sim_http_response *r, int status, cJSON *body)
{
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    dw_buf_clear(&r->body);
    r->content_type = "application/json";
    if (!text || dw_buf_append_str(&r->body, text) != DW_OK ||
        dw_buf_append_byte(&r->body, '\n') != DW_OK || dw_sim_utf8_repair(&r->body) != DW_OK) {
        free(text);
        dw_buf_clear(&r->body);
        dw_buf_append_str(&r->body, "{\"error\":\"out of memory\",\"where\":\"\"}\n");
        r->status = 500;
        return;
    }
    free(text);
    r->status = status;
}

void dw__ctl_error(dw_sim_http_response *r, int status, const char *where, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    if (o && (!cJSON_AddStringToObject(o, "error", msg) ||
              !cJSON_AddStringToObject(o, "where", where ? where : ""))) {
        cJSON_Delete(o);
        o = NULL;
    }
    dw__ctl_json(r, status, o);
}

/* Bytes as JSON: a string when they are printable text, else {"hex": ...}. */
cJSON *dw__ctl_bytes_json(const uint8_t *p, size_t n)
{
    cJSON *v = NULL;
    if (dw_sim_bytes_are_text(p, n, 0)) {
        dw_buf b = DW_BUF_INIT;
        if (dw_buf_append(&b, p, n) == DW_OK && dw_buf_nul_terminate(&b) == DW_OK)
            v = cJSON_CreateString(b.data ? (const char *)b.data : "");
        dw_buf_free(&b);
        return v;
    }
    char *h = dw_sim_bytes_hex(p, n);
    if (h && (v = cJSON_CreateObject()) && !cJSON_AddStringToObject(v, "hex", h)) {
        cJSON_Delete(v);
        v = NULL;
    }
    free(h);
    return v;
}

/* ---- the request's parts --------------------------------------------------- */

static int hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int dw__ctl_decode(const char *p, size_t n, int plus, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)p[i];
        if (c == '%') {
            int hi = i + 2 < n + 1 && i + 1 < n ? hex_digit((unsigned char)p[i + 1]) : -1;
            int lo = hi >= 0 && i + 2 < n ? hex_digit((unsigned char)p[i + 2]) : -1;
            if (lo < 0)
                return -1;
            c = hi << 4 | lo;
            i += 2;
        } else if (c == '+' && plus) {
            c = ' ';
        }
        if (c == 0 || o + 1 >= size)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = 0;
    return 0;
}

int dw__ctl_query_get(const char *query, const char *key, char *out, size_t size)
{
    size_t klen = strlen(key);
    for (const char *p = query; p && *p;) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t name_len = eq ? (size_t)(eq - p) : len;
        if (name_len == klen && memcmp(p, key, klen) == 0)
            return dw__ctl_decode(eq ? eq + 1 : p + len, eq ? len - name_len - 1 : 0, 1, out,
                                  size) == 0
                       ? 1
                       : -1;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

int dw__ctl_query_number(const dw_sim_http_request *req, const char *key, long long lo,
                         long long hi, long long *v, dw_sim_http_response *r)
{
    char text[32], where[64];
    int got = dw__ctl_query_get(req->query, key, text, sizeof text);
    snprintf(where, sizeof where, "query.%s", key);
    if (got == 0)
        return 0;
    char *end = NULL;
    errno = 0;
    long long n = got > 0 ? strtoll(text, &end, 10) : 0;
    if (got < 0 || errno || end == text || *end || n < lo || n > hi) {
        dw__ctl_error(r, 422, where, "%s: expected a whole number from %lld to %lld", key, lo, hi);
        return -1;
    }
    *v = n;
    return 1;
}

cJSON *dw__ctl_parse_body(const dw_sim_http_request *req, dw_sim_http_response *r, int required)
{
    if (req->body_len == 0 && !required)
        return cJSON_CreateObject();
    const char *end = NULL;
    cJSON *v = req->body_len
                   ? cJSON_ParseWithLengthOpts((const char *)req->body, req->body_len, &end, 0)
                   : NULL;
    if (!v) {
        size_t at = end ? (size_t)(end - (const char *)req->body) : 0;
        dw__ctl_error(r, 400, "body", "the body is not JSON%s (at byte %zu)",
                      req->body_len ? "" : ": it is empty", at);
        return NULL;
    }
    return v;
}

static void not_allowed(dw_sim_http_response *r, const char *method, const char *path,
                        const char *allow)
{
    dw__ctl_error(r, 405, "method", "%s %s: method not allowed (allowed: %s)", method, path, allow);
    r->allow = allow;
}

int dw__ctl_allowed(const dw_sim_http_request *req, dw_sim_http_response *r, const char *allow)
{
    size_t n = strlen(req->method);
    for (const char *p = allow; n && (p = strstr(p, req->method)); p += n)
        if ((p == allow || p[-1] == ' ') && (p[n] == 0 || p[n] == ','))
            return 1;
    not_allowed(r, req->method, req->path, allow);
    return 0;
}

/* ---- a call on the loop thread ----------------------------------------------- */

void dw__ctl_on_loop(ctl_device *d, void (*fn)(void *), ctl_job *j)
{
    j->d = d;
    dw_sim_loop_call(d->server->loop, fn, j);
}

dw_sim_journal *dw__ctl_journal_of(const ctl_device *d)
{
    return d->dev ? dw_sim_devctl_journal(d->dev) : d->journal;
}
