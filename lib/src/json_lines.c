/* JSON lines: one JSON value per "\n"-terminated line; the payload-level
 * value is a cJSON tree. */
#include "marshaller_int.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* Parse one JSON value that fills text[0..n) but for white space. */
static cJSON *parse_line(const uint8_t *text, size_t n, size_t *bad_at)
{
    /* JSON text never holds a raw NUL, but cJSON would end a string there
     * and silently return a shorter value. */
    const uint8_t *nul = n ? memchr(text, 0, n) : NULL;
    if (nul) {
        *bad_at = (size_t)(nul - text);
        return NULL;
    }
    if (n == 0) {
        *bad_at = 0;
        return NULL;
    }
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts((const char *)text, n, &end, 0);
    if (!v) {
        *bad_at = end ? (size_t)(end - (const char *)text) : 0;
        return NULL;
    }
    size_t pos = (size_t)(end - (const char *)text);
    while (pos < n && (text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\r'))
        pos++;
    if (pos < n) {
        cJSON_Delete(v);
        *bad_at = pos;
        return NULL;
    }
    return v;
}

static int invalid(dw_error *err, int code, size_t n, size_t at)
{
    if (n == 0)
        return dw_error_set(err, code, "json-lines: empty line, expected a JSON value");
    return dw_error_set(err, code, "json-lines: invalid JSON at byte %zu of a %zu-byte line", at,
                        n);
}

static int json_marshall(const dw_marshaller *m, const uint8_t *p, size_t n, dw_buf *out,
                         dw_error *err)
{
    const uint8_t *nl = n ? memchr(p, '\n', n) : NULL;
    if (nl)
        return dw_error_set(err, DW_EINVAL,
                            "json-lines: payload holds a newline at byte %zu; send it compact",
                            (size_t)(nl - p));
    size_t at = 0;
    cJSON *v = parse_line(p, n, &at);
    if (!v)
        return invalid(err, DW_EINVAL, n, at);
    cJSON_Delete(v);
    return dw__sentinel_marshall(m, p, n, out, err);
}

static int json_finish(const dw_marshaller *m, dw__scan *st, dw_buf *raw, dw_error *err)
{
    (void)m;
    (void)st;
    size_t at = 0;
    cJSON *v = parse_line(raw->data, raw->len, &at);
    if (!v)
        return invalid(err, DW_EPROTO, raw->len, at);
    cJSON_Delete(v);
    return DW_OK;
}

static int json_marshall_payload(const dw_marshaller *m, const void *payload, dw_buf *out,
                                 dw_error *err)
{
    (void)m;
    if (!payload)
        return dw_error_set(err, DW_EINVAL, "json-lines: no payload (NULL cJSON value)");
    char *text = cJSON_PrintUnformatted(payload);
    if (!text)
        return dw_error_set(err, DW_ENOMEM, "json-lines: cannot print the payload");
    int rc = dw_buf_append_str(out, text);
    if (rc == DW_OK)
        rc = dw_buf_append_byte(out, '\n');
    cJSON_free(text);
    return rc;
}

static int json_decode(const dw_marshaller *m, const dw_buf *raw, void **payload, dw_error *err)
{
    (void)m;
    size_t at = 0;
    cJSON *v = parse_line(raw->data, raw->len, &at);
    if (!v)
        return invalid(err, DW_EPROTO, raw->len, at);
    *payload = v;
    return DW_OK;
}

static void json_free(void *payload)
{
    cJSON_Delete(payload);
}

static const dw__marshaller_ops json_ops = {
    .name = "json-lines",
    .marshall = json_marshall,
    .feed = dw__sentinel_feed,
    .finish = json_finish,
    .marshall_payload = json_marshall_payload,
    .decode_payload = json_decode,
    .free_payload = json_free,
};

dw_marshaller *dw_json_marshaller_new(void)
{
    return dw__marshaller_alloc(&json_ops, "\n", 1);
}
