/* SCPI / IEEE 488.2 response framing: sentinel-terminated text in which a
 * definite-length arbitrary block "#<d><d digits><bytes>" is skipped over
 * (it may hold the sentinel) and "#0" starts an indefinite block that ends
 * at the sentinel. */
#include "marshaller_int.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum { TEXT, QUOTE, HASH, DIGITS, BODY, INDEF };

/* Whether a sentinel ends at frame offset `end` (exclusive). The frame so far
 * is prev[0..r) followed by d; the sentinel must lie in text, at or after
 * text_start (a block's bytes never end a frame). */
static int sentinel_ends_at(const dw_marshaller *m, const dw__scan *st, const uint8_t *prev,
                            size_t r, const uint8_t *d, size_t end)
{
    size_t sl = m->sentinel_len;
    if (end < sl || end - sl < st->text_start)
        return 0;
    for (size_t j = 0; j < sl; j++) {
        size_t pos = end - sl + j;
        uint8_t c = pos < r ? prev[pos] : d[pos - r];
        if (c != m->sentinel[j])
            return 0;
    }
    return 1;
}

/* Where the next byte `c` is in a chunk, remembered across the steps of one
 * scan so that no byte is searched twice for the same value (a text full of
 * '#' must not make the scan quadratic). pos < upto: d[pos] == c, and no c in
 * [i, pos); pos == upto: no c in [i, upto). */
typedef struct finder {
    size_t pos, upto;
} finder;

/* The first c in d[i..bound), or bound. */
static size_t find_next(finder *f, const uint8_t *d, uint8_t c, size_t i, size_t bound)
{
    if (f->pos < i) /* the hit was consumed, or nothing is known from i on */
        f->pos = f->upto = i;
    if (f->pos < f->upto)
        return f->pos < bound ? f->pos : bound;
    if (f->upto >= bound)
        return bound;
    const uint8_t *hit = memchr(d + f->upto, c, bound - f->upto);
    if (hit) {
        f->pos = (size_t)(hit - d);
        f->upto = f->pos + 1;
    } else {
        f->pos = f->upto = bound;
    }
    return f->pos;
}

static int too_big(dw_error *err, size_t limit)
{
    return dw_error_set(err, DW_ETOOBIG, "scpi: frame exceeds the maximum of %zu bytes", limit);
}

/* The framing core, a pure function of (state, bytes): scan d[0..n), which
 * continues a frame whose first r bytes are prev[0..r), allowing at most
 * `limit` frame bytes. Returns DW_OK when a sentinel ends the frame (*used:
 * bytes up to and including it), DW_MORE (*used = n), DW_ETOOBIG, or
 * DW_EPROTO for a malformed block header (*used includes the bad byte). */
static int scan(const dw_marshaller *m, dw__scan *st, const uint8_t *prev, size_t r,
                const uint8_t *d, size_t n, size_t limit, size_t *used, dw_error *err)
{
    uint8_t last = m->sentinel[m->sentinel_len - 1];
    finder f_last = {0, 0}, f_quote = {0, 0}, f_hash = {0, 0};
    size_t i = 0;
    int rc = DW_MORE;
    for (;;) {
        size_t pos = r + i; /* frame offset of d[i] */
        if (pos >= limit) {
            /* The frame fills the maximum and has not ended: refused now,
             * not after another chunk (like the sentinel framing). */
            rc = too_big(err, limit);
            break;
        }
        if (i == n)
            break;
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
            continue;
        case DIGITS:
            i++;
            if (c < '0' || c > '9') {
                *used = i;
                return dw_error_set(err, DW_EPROTO,
                                    "scpi: arbitrary block header at byte %zu: expected a length "
                                    "digit, got byte 0x%02x (%zu digit(s) still expected)",
                                    pos, c, st->count);
            }
            st->value = st->value * 10 + (size_t)(c - '0'); /* <= 9 digits: no overflow */
            if (--st->count == 0) {
                /* Refuse before reading the block: its bytes and at least the
                 * sentinel must fit in the frame. */
                size_t room = limit - (r + i);
                if (st->value > room || m->sentinel_len > room - st->value) {
                    *used = i;
                    return dw_error_set(err, DW_ETOOBIG,
                                        "scpi: arbitrary block of %zu bytes exceeds the maximum "
                                        "frame of %zu bytes",
                                        st->value, limit);
                }
                st->count = st->value;
                st->phase = st->count ? BODY : TEXT;
                st->text_start = r + i;
            }
            continue;
        case BODY: {
            size_t skip = st->count < n - i ? st->count : n - i;
            i += skip;
            st->count -= skip;
            if (st->count == 0) {
                st->phase = TEXT;
                st->text_start = r + i;
            }
            continue;
        }
        default: { /* TEXT, QUOTE, INDEF */
            /* The next byte that matters: a possible sentinel end, and in
             * text a quote or a '#', in a string the closing quote. */
            size_t end = limit - pos < n - i ? i + (limit - pos) : n;
            size_t j = find_next(&f_last, d, last, i, end);
            if (st->phase != INDEF)
                j = find_next(&f_quote, d, '"', i, j);
            if (st->phase == TEXT)
                j = find_next(&f_hash, d, '#', i, j);
            if (j == end) {
                i = end;
                continue;
            }
            c = d[j];
            i = j + 1;
            if (c == last && sentinel_ends_at(m, st, prev, r, d, r + i)) {
                *used = i;
                return DW_OK;
            }
            if (st->phase == TEXT && c == '#')
                st->phase = HASH;
            else if (st->phase == TEXT && c == '"')
                st->phase = QUOTE;
            else if (st->phase == QUOTE && c == '"')
                st->phase = TEXT;
            continue;
        }
        }
    }
    *used = i;
    return rc;
}

static int scpi_feed(const dw_marshaller *m, dw__scan *st, const uint8_t *d, size_t n, size_t *used,
                     dw_buf *raw, dw_error *err)
{
    int rc = scan(m, st, raw->data, raw->len, d, n, m->max_frame, used, err);
    if (dw_buf_append(raw, d, *used) != DW_OK)
        return DW_ENOMEM;
    if (rc == DW_OK)
        dw_buf_truncate(raw, raw->len - m->sentinel_len);
    return rc;
}

/* A payload is framed only if reading the frame back gives the payload: the
 * sentinel must not appear in its text, and every block in it must be
 * complete and well-formed. */
static int scpi_marshall(const dw_marshaller *m, const uint8_t *p, size_t n, dw_buf *out,
                         dw_error *err)
{
    size_t sl = m->sentinel_len;
    dw__scan st;
    memset(&st, 0, sizeof st);
    size_t used = 0;
    int rc = n ? scan(m, &st, NULL, 0, p, n, SIZE_MAX, &used, err) : DW_MORE;
    if (rc == DW_OK)
        return dw_error_set(err, DW_EINVAL,
                            "scpi: payload holds the terminator outside a block (ending at byte "
                            "%zu); it cannot be framed",
                            used);
    if (rc == DW_EPROTO)
        return dw_error_set(err, DW_EINVAL,
                            "scpi: payload has a malformed block header at byte %zu", used - 1);
    if (rc == DW_MORE) {
        rc = scan(m, &st, p, n, m->sentinel, sl, SIZE_MAX, &used, NULL);
        if (rc != DW_OK || used != sl)
            return dw_error_set(err, DW_EINVAL,
                                "scpi: payload ends inside a block or a block header, or its "
                                "tail forms the terminator early; it cannot be framed");
    } else {
        return rc;
    }
    rc = dw_buf_reserve(out, n + sl);
    if (rc == DW_OK) {
        dw_buf_append(out, p, n);
        dw_buf_append(out, m->sentinel, sl);
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
    int quoted = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '"') {
            quoted = !quoted;
            continue;
        }
        if (quoted || p[i] != '#' || i + 1 >= n)
            continue;
        uint8_t d = p[i + 1];
        if (d == '0') { /* indefinite: the rest of the payload */
            *data = p + i + 2;
            *len = n - (i + 2);
            return DW_OK;
        }
        if (d < '1' || d > '9')
            continue; /* "#H1F": not a block */
        size_t pos = i + 2;
        size_t digits = (size_t)(d - '0');
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
    return DW_ENOENT;
}

int dw_scpi_block_append(dw_buf *out, const uint8_t *data, size_t len)
{
    if (len > 999999999u)
        return DW_EINVAL; /* the header has at most 9 length digits */
    size_t before = out->len;
    char digits[16];
    int nd = snprintf(digits, sizeof digits, "%zu", len);
    int rc = dw_buf_printf(out, "#%d%s", nd, digits);
    if (rc == DW_OK)
        rc = dw_buf_append(out, data, len);
    if (rc != DW_OK)
        out->len = before;
    return rc;
}
