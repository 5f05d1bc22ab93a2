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

/* One call of scan: what it was given, and what its searches found. */
typedef struct scanner {
    const dw_marshaller *m;
    dw__scan *st;
    const uint8_t *prev, *d; /* the frame so far: prev[0..r), then d[0..n) */
    size_t r, n, limit;
    uint8_t last; /* the sentinel's last byte */
    finder f_last, f_quote, f_hash;
} scanner;

/* The steps of the scan below, one per phase. Each looks at d[i] (frame
 * offset pos) and on, and returns DW_MORE to go on, or how the scan ends. */

/* After a '#' in text: a digit 1-9 counts the length digits of a definite
 * block, '0' starts an indefinite one, anything else is a non-decimal number
 * ("#H1F", "#B101"): text again, from that byte. The next index. */
static inline size_t hash_step(dw__scan *st, uint8_t c, size_t i)
{
    if (c >= '1' && c <= '9') {
        st->phase = DIGITS;
        st->count = (size_t)(c - '0');
        st->value = 0;
        return i + 1;
    }
    if (c == '0') {
        st->phase = INDEF;
        return i + 1;
    }
    st->phase = TEXT;
    return i;
}

/* One length digit c of a block header, at frame offset pos: DW_MORE,
 * DW_EPROTO (not a digit) or DW_ETOOBIG. */
static inline int digit_step(const scanner *s, uint8_t c, size_t pos, dw_error *err)
{
    dw__scan *st = s->st;
    if (c < '0' || c > '9')
        return dw_error_set(err, DW_EPROTO,
                            "scpi: arbitrary block header at byte %zu: expected a length "
                            "digit, got byte 0x%02x (%zu digit(s) still expected)",
                            pos, c, st->count);
    st->value = st->value * 10 + (size_t)(c - '0'); /* <= 9 digits: no overflow */
    if (--st->count)
        return DW_MORE;
    /* Refuse before reading the block: its bytes and at least the sentinel
     * must fit in the frame. */
    size_t room = s->limit - (pos + 1);
    if (st->value > room || s->m->sentinel_len > room - st->value)
        return dw_error_set(err, DW_ETOOBIG,
                            "scpi: arbitrary block of %zu bytes exceeds the maximum frame of "
                            "%zu bytes",
                            st->value, s->limit);
    st->count = st->value;
    st->phase = st->count ? BODY : TEXT;
    st->text_start = pos + 1;
    return DW_MORE;
}

/* A block's bytes, skipped as far as the chunk holds them. The next index. */
static inline size_t body_step(dw__scan *st, size_t r, size_t i, size_t n)
{
    size_t skip = st->count < n - i ? st->count : n - i;
    i += skip;
    st->count -= skip;
    if (st->count == 0) {
        st->phase = TEXT;
        st->text_start = r + i;
    }
    return i;
}

/* Text, a string or an indefinite block: on to the next byte that matters
 * (a possible sentinel end, and in text a quote or a '#', in a string the
 * closing quote), *i past it. DW_OK if a sentinel ends there, else DW_MORE. */
static inline int text_step(scanner *s, size_t *i, size_t pos)
{
    dw__scan *st = s->st;
    size_t end = s->limit - pos < s->n - *i ? *i + (s->limit - pos) : s->n;
    size_t j = find_next(&s->f_last, s->d, s->last, *i, end);
    if (st->phase != INDEF)
        j = find_next(&s->f_quote, s->d, '"', *i, j);
    if (st->phase == TEXT)
        j = find_next(&s->f_hash, s->d, '#', *i, j);
    if (j == end) {
        *i = end;
        return DW_MORE;
    }
    uint8_t c = s->d[j];
    *i = j + 1;
    if (c == s->last && sentinel_ends_at(s->m, st, s->prev, s->r, s->d, s->r + *i))
        return DW_OK;
    if (st->phase == TEXT && c == '#')
        st->phase = HASH;
    else if (st->phase == TEXT && c == '"')
        st->phase = QUOTE;
    else if (st->phase == QUOTE && c == '"')
        st->phase = TEXT;
    return DW_MORE;
}

/* The framing core, a pure function of (state, bytes): scan d[0..n), which
 * continues a frame whose first r bytes are prev[0..r), allowing at most
 * `limit` frame bytes. Returns DW_OK when a sentinel ends the frame (*used:
 * bytes up to and including it), DW_MORE (*used = n), DW_ETOOBIG, or
 * DW_EPROTO for a malformed block header (*used includes the bad byte). */
static int scan(const dw_marshaller *m, dw__scan *st, const uint8_t *prev, size_t r,
                const uint8_t *d, size_t n, size_t limit, size_t *used, dw_error *err)
{
    scanner s = {.m = m,
                 .st = st,
                 .prev = prev,
                 .d = d,
                 .r = r,
                 .n = n,
                 .limit = limit,
                 .last = m->sentinel[m->sentinel_len - 1]};
    size_t i = 0;
    int rc = DW_MORE;
    while (rc == DW_MORE) {
        size_t pos = r + i; /* frame offset of d[i] */
        if (pos >= limit) {
            /* The frame fills the maximum and has not ended: refused now,
             * not after another chunk (like the sentinel framing). */
            rc = too_big(err, limit);
            break;
        }
        if (i == n)
            break;
        switch (st->phase) {
        case HASH:
            i = hash_step(st, d[i], i);
            break;
        case DIGITS:
            rc = digit_step(&s, d[i], pos, err);
            i++;
            break;
        case BODY:
            i = body_step(st, r, i, n);
            break;
        default: /* TEXT, QUOTE, INDEF */
            rc = text_step(&s, &i, pos);
            break;
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
