/* SCPI / IEEE 488.2 response framing: sentinel-terminated text in which a
 * definite-length arbitrary block "#<d><d digits><bytes>" is skipped over
 * (it may hold the sentinel) and "#0" starts an indefinite block that ends
 * at the sentinel. */
#include "marshaller_int.h"

#include <stdio.h>
#include <string.h>

enum { TEXT, QUOTE, HASH, DIGITS, BODY, INDEF };

/* Whether a sentinel ends at position `end` (exclusive) of raw || d, with
 * raw holding r bytes; it must lie after text_start (not inside a block). */
static int sentinel_ends_at(const dw_marshaller *m, const dw__scan *st, const dw_buf *raw,
                            const uint8_t *d, size_t end)
{
    size_t sl = m->sentinel_len;
    size_t r = raw->len;
    if (end < sl || end - sl < st->text_start)
        return 0;
    for (size_t j = 0; j < sl; j++) {
        size_t pos = end - sl + j;
        uint8_t c = pos < r ? raw->data[pos] : d[pos - r];
        if (c != m->sentinel[j])
            return 0;
    }
    return 1;
}

static int bad_header(const dw_marshaller *m, dw__scan *st, uint8_t c, dw_error *err)
{
    (void)m;
    return dw_error_set(err, DW_EPROTO,
                        "scpi: arbitrary block header: expected a length digit, got byte 0x%02x "
                        "(%zu digit(s) still expected)",
                        c, st->count);
}

/* Advance over one byte of text; returns 1 at the frame's end. */
static int text_byte(const dw_marshaller *m, dw__scan *st, const dw_buf *raw, const uint8_t *d,
                     size_t i)
{
    uint8_t c = d[i];
    if (st->phase == TEXT && c == '#')
        st->phase = HASH;
    else if (st->phase == TEXT && c == '"')
        st->phase = QUOTE;
    else if (st->phase == QUOTE && c == '"')
        st->phase = TEXT;
    return c == m->sentinel[m->sentinel_len - 1] &&
           sentinel_ends_at(m, st, raw, d, raw->len + i + 1);
}

static int scpi_feed(const dw_marshaller *m, dw__scan *st, const uint8_t *d, size_t n,
                     size_t *used, dw_buf *raw, dw_error *err)
{
    size_t r = raw->len;
    size_t i = 0;
    int rc = DW__MORE;
    while (i < n && rc == DW__MORE) {
        if (r + i >= m->max_frame) {
            rc = dw_error_set(err, DW_ETOOBIG, "scpi: frame exceeds the maximum of %zu bytes",
                              m->max_frame);
            break;
        }
        uint8_t c = d[i];
        switch (st->phase) {
        case HASH:
            if (c >= '1' && c <= '9') {
                st->phase = DIGITS;
                st->count = (size_t)(c - '0');
                st->value = 0;
                i++;
            } else if (c == '0') {
                st->phase = INDEF;
                i++;
            } else {
                st->phase = TEXT; /* "#H1F", "#B101": a non-decimal number */
            }
            break;
        case DIGITS:
            if (c < '0' || c > '9') {
                rc = bad_header(m, st, c, err);
                break;
            }
            st->value = st->value * 10 + (size_t)(c - '0');
            i++;
            if (st->value > m->max_frame) {
                rc = dw_error_set(err, DW_ETOOBIG,
                                  "scpi: arbitrary block longer than the maximum frame of %zu "
                                  "bytes",
                                  m->max_frame);
            } else if (--st->count == 0) {
                st->count = st->value;
                st->phase = st->count ? BODY : TEXT;
                st->text_start = r + i;
            }
            break;
        case BODY: {
            size_t skip = st->count < n - i ? st->count : n - i;
            i += skip;
            st->count -= skip;
            if (st->count == 0) {
                st->phase = TEXT;
                st->text_start = r + i;
            }
            break;
        }
        default: /* TEXT, QUOTE, INDEF */
            if (text_byte(m, st, raw, d, i))
                rc = DW_OK;
            i++;
            break;
        }
    }
    *used = i;
    if (dw_buf_append(raw, d, i) != DW_OK)
        return DW_ENOMEM;
    if (rc == DW_OK)
        dw_buf_truncate(raw, raw->len - m->sentinel_len);
    return rc;
}

static int scpi_marshall(const dw_marshaller *m, const uint8_t *p, size_t n, dw_buf *out,
                         dw_error *err)
{
    (void)err;
    /* Requests are free text: a block in them may hold the sentinel. */
    int rc = dw_buf_reserve(out, n + m->sentinel_len);
    if (rc == DW_OK) {
        dw_buf_append(out, p, n);
        dw_buf_append(out, m->sentinel, m->sentinel_len);
    }
    return rc;
}

static const dw__marshaller_ops scpi_ops = {
    .name = "scpi",
    .marshall = scpi_marshall,
    .feed = scpi_feed,
};

dw_marshaller *dw_scpi_marshaller_new(const void *sentinel, size_t len)
{
    if (!sentinel || len == 0)
        return NULL;
    return dw__marshaller_alloc(&scpi_ops, sentinel, len);
}

int dw_scpi_block_parse(const uint8_t *p, size_t n, const uint8_t **data, size_t *len)
{
    const uint8_t *hash = memchr(p, '#', n);
    while (hash && (size_t)(hash - p) + 1 < n && !(hash[1] >= '1' && hash[1] <= '9')) {
        size_t off = (size_t)(hash - p) + 1;
        hash = memchr(p + off, '#', n - off);
    }
    if (!hash || (size_t)(hash - p) + 1 >= n)
        return DW_ENOENT;
    size_t pos = (size_t)(hash - p) + 1;
    size_t digits = (size_t)(p[pos++] - '0');
    size_t v = 0;
    for (size_t j = 0; j < digits; j++, pos++) {
        if (pos >= n || p[pos] < '0' || p[pos] > '9')
            return DW_EPROTO;
        v = v * 10 + (size_t)(p[pos] - '0');
    }
    if (v > n - pos)
        return DW_EPROTO;
    *data = p + pos;
    *len = v;
    return DW_OK;
}

int dw_scpi_block_append(dw_buf *out, const uint8_t *data, size_t len)
{
    char digits[32];
    int nd = snprintf(digits, sizeof digits, "%zu", len);
    int rc = dw_buf_printf(out, "#%d%s", nd, digits);
    if (rc == DW_OK)
        rc = dw_buf_append(out, data, len);
    return rc;
}
