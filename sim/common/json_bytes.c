/* devwire-sim: bytes written in JSON (see json_bytes.h). */
#include "common/json_bytes.h"

#include <stdlib.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int set_error(dw_sim_json_bytes_error *e, const cJSON *node, int key, size_t offset,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int set_error(dw_sim_json_bytes_error *e, const cJSON *node, int key, size_t offset,
                     const char *fmt, ...)
{
    if (!e)
        return DW_EINVAL;
    e->node = node;
    e->key = key;
    e->offset = offset;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return DW_EINVAL;
}

int dw_sim_hex_digit(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

int dw_sim_json_bytes_space(int ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

int dw_sim_json_bytes_printable(int ch)
{
    return ch > 0x20 && ch < 0x7f ? ch : '?';
}

/* On an error `out` goes back to its length on entry: nothing half-decoded
 * is left for the caller. */
static int drop_from(dw_buf *out, size_t start, int rc)
{
    dw_buf_truncate(out, start);
    return rc;
}

int dw_sim_hex_decode(const char *text, size_t len, dw_buf *out, dw_sim_json_bytes_error *e)
{
    size_t start = out->len;
    if (dw_buf_reserve(out, len / 2 + 1) != DW_OK)
        return DW_ENOMEM;
    int hi = -1;
    for (size_t i = 0; i < len; i++) {
        int ch = (unsigned char)text[i];
        if (dw_sim_json_bytes_space(ch)) {
            if (hi >= 0)
                return drop_from(
                    out, start,
                    set_error(e, NULL, 0, i, "hex digits come in pairs (one byte each)"));
            continue;
        }
        int h = dw_sim_hex_digit(ch);
        if (h < 0)
            return drop_from(out, start,
                             set_error(e, NULL, 0, i, "invalid hex digit '%c'",
                                       dw_sim_json_bytes_printable(ch)));
        if (hi < 0) {
            hi = h;
        } else {
            out->data[out->len++] = (uint8_t)(hi * 16 + h);
            hi = -1;
        }
    }
    if (hi >= 0)
        return drop_from(
            out, start, set_error(e, NULL, 0, DW_SIM_JSON_BYTES_WHOLE, "odd number of hex digits"));
    return DW_OK;
}

static int b64_value(int ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

/* One character of base64 at text[i] into *acc: DW_OK or DW_EINVAL. */
static int b64_char(const char *text, size_t i, size_t *count, size_t *pad, uint32_t *acc,
                    dw_sim_json_bytes_error *e)
{
    int ch = (unsigned char)text[i];
    if (ch == '=') {
        if (*count % 4 < 2 || *pad == 2)
            return set_error(e, NULL, 0, i, "misplaced '=' in base64");
        ++*pad;
        ++*count;
        return DW_OK;
    }
    int b = b64_value(ch);
    if (*pad)
        return set_error(e, NULL, 0, i, "base64 data after the '=' padding");
    if (b < 0)
        return set_error(e, NULL, 0, i, "invalid base64 character '%c'",
                         dw_sim_json_bytes_printable(ch));
    *acc = *acc << 6 | (uint32_t)b;
    ++*count;
    return DW_OK;
}

int dw_sim_base64_decode(const char *text, size_t len, dw_buf *out, dw_sim_json_bytes_error *e)
{
    size_t start = out->len;
    if (dw_buf_reserve(out, len / 4 * 3 + 3) != DW_OK)
        return DW_ENOMEM;
    size_t count = 0, pad = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < len; i++) {
        if (dw_sim_json_bytes_space((unsigned char)text[i]))
            continue;
        int rc = b64_char(text, i, &count, &pad, &acc, e);
        if (rc != DW_OK)
            return drop_from(out, start, rc);
        if (count % 4 == 0 && !pad) {
            out->data[out->len++] = (uint8_t)(acc >> 16);
            out->data[out->len++] = (uint8_t)(acc >> 8);
            out->data[out->len++] = (uint8_t)acc;
            acc = 0;
        }
    }
    if (count % 4 != 0)
        return drop_from(out, start,
                         set_error(e, NULL, 0, DW_SIM_JSON_BYTES_WHOLE,
                                   "base64 length is not a multiple of 4 (missing '=' padding?)"));
    if (pad) {
        /* The last group was shifted in with the pad positions as zero bits. */
        acc <<= 6 * pad;
        out->data[out->len++] = (uint8_t)(acc >> 16);
        if (pad == 1)
            out->data[out->len++] = (uint8_t)(acc >> 8);
    }
    return DW_OK;
}

int dw_sim_json_bytes_decode_as(const cJSON *v, dw_sim_json_bytes_form form, dw_buf *out,
                                dw_sim_json_bytes_error *e)
{
    if (!cJSON_IsString(v))
        return set_error(e, v, 0, DW_SIM_JSON_BYTES_WHOLE, "expected string");
    const char *s = v->valuestring;
    size_t n = strlen(s);
    int rc = form == DW_SIM_JSON_BYTES_HEX      ? dw_sim_hex_decode(s, n, out, e)
             : form == DW_SIM_JSON_BYTES_BASE64 ? dw_sim_base64_decode(s, n, out, e)
                                                : dw_buf_append(out, s, n);
    if (rc == DW_EINVAL && e)
        e->node = v;
    return rc;
}

int dw_sim_json_bytes_decode(const cJSON *v, dw_buf *out, dw_sim_json_bytes_error *e)
{
    if (cJSON_IsString(v))
        return dw_sim_json_bytes_decode_as(v, DW_SIM_JSON_BYTES_TEXT, out, e);
    if (!cJSON_IsObject(v))
        return set_error(e, v, 0, DW_SIM_JSON_BYTES_WHOLE, "expected string or object");
    const cJSON *hex = NULL, *b64 = NULL;
    for (const cJSON *m = v->child; m; m = m->next) {
        const cJSON **slot = strcmp(m->string, "hex") == 0      ? &hex
                             : strcmp(m->string, "base64") == 0 ? &b64
                                                                : NULL;
        if (!slot)
            return set_error(e, m, 1, DW_SIM_JSON_BYTES_WHOLE, "unknown key");
        if (*slot)
            return set_error(e, m, 1, DW_SIM_JSON_BYTES_WHOLE, "duplicate key");
        *slot = m;
    }
    if (!hex && !b64)
        return set_error(e, v, 0, DW_SIM_JSON_BYTES_WHOLE, "expected \"hex\" or \"base64\"");
    if (hex && b64)
        return set_error(e, b64, 1, DW_SIM_JSON_BYTES_WHOLE,
                         "give \"hex\" or \"base64\", not both");
    return hex ? dw_sim_json_bytes_decode_as(hex, DW_SIM_JSON_BYTES_HEX, out, e)
               : dw_sim_json_bytes_decode_as(b64, DW_SIM_JSON_BYTES_BASE64, out, e);
}

int dw_sim_bytes_are_text(const uint8_t *p, size_t n, int controls)
{
    for (size_t i = 0; i < n; i++) {
        int control = p[i] == '\t' || p[i] == '\r' || p[i] == '\n';
        if ((p[i] < 0x20 && !(controls && control)) || p[i] >= 0x7f)
            return 0;
    }
    return 1;
}

char *dw_sim_bytes_hex(const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char *h = malloc(2 * n + 1);
    if (!h)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        h[2 * i] = digits[p[i] >> 4];
        h[2 * i + 1] = digits[p[i] & 15];
    }
    h[2 * n] = 0;
    return h;
}

size_t dw_sim_utf8_sequence(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    if (c < 0x80)
        return 1;
    /* The second byte's range rules out overlong forms (E0, F0), the
     * surrogates (ED) and what lies above U+10FFFF (F4). */
    size_t len = c >= 0xc2 && c <= 0xdf   ? 2
                 : c >= 0xe0 && c <= 0xef ? 3
                 : c >= 0xf0 && c <= 0xf4 ? 4
                                          : 0;
    if (!len || n < len)
        return 0;
    uint8_t lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
    uint8_t hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

int dw_sim_utf8_valid(const uint8_t *p, size_t n)
{
    for (size_t i = 0, k; i < n; i += k)
        if (!(k = dw_sim_utf8_sequence(p + i, n - i)))
            return 0;
    return 1;
}

int dw_sim_utf8_repair(dw_buf *b)
{
    size_t i = 0, k;
    while (i < b->len && (k = dw_sim_utf8_sequence(b->data + i, b->len - i)))
        i += k;
    if (i == b->len)
        return DW_OK;
    dw_buf out = DW_BUF_INIT;
    int rc = dw_buf_reserve(&out, b->len + 16);
    if (rc == DW_OK)
        rc = dw_buf_append(&out, b->data, i);
    while (rc == DW_OK && i < b->len) {
        k = dw_sim_utf8_sequence(b->data + i, b->len - i);
        rc = k ? dw_buf_append(&out, b->data + i, k) : dw_buf_append(&out, "\xef\xbf\xbd", 3);
        i += k ? k : 1;
    }
    if (rc != DW_OK) {
        dw_buf_free(&out);
        return rc;
    }
    dw_buf_free(b);
    *b = out;
    return DW_OK;
}
