/* Length-prefixed framing: a 1, 2 or 4 byte unsigned length, then the bytes. */
#include "marshaller_int.h"

#include <string.h>

static uint64_t header_max(unsigned hs)
{
    return hs == 4 ? 0xffffffffu : ((uint64_t)1 << (8 * hs)) - 1;
}

static int lp_marshall(const dw_marshaller *m, const uint8_t *p, size_t n, dw_buf *out,
                       dw_error *err)
{
    unsigned hs = m->header_size;
    if ((uint64_t)n > header_max(hs))
        return dw_error_set(err, DW_ETOOBIG,
                            "length-prefixed: payload of %zu bytes does not fit a %u-byte header",
                            n, hs);
    uint8_t h[4];
    for (unsigned i = 0; i < hs; i++) {
        unsigned shift = m->endian == DW_BIG_ENDIAN ? 8 * (hs - 1 - i) : 8 * i;
        h[i] = (uint8_t)((uint64_t)n >> shift);
    }
    int rc = dw_buf_reserve(out, hs + n);
    if (rc == DW_OK) {
        dw_buf_append(out, h, hs);
        dw_buf_append(out, p, n);
    }
    return rc;
}

static size_t decode(const dw_marshaller *m, const uint8_t *h)
{
    unsigned hs = m->header_size;
    uint64_t v = 0;
    for (unsigned i = 0; i < hs; i++) {
        unsigned idx = m->endian == DW_BIG_ENDIAN ? i : hs - 1 - i;
        v = (v << 8) | h[idx];
    }
    return (size_t)v;
}

/* The header is kept in the scan state, so the payload lands at the start of
 * `raw` and needs no move afterwards. */
static int lp_feed(const dw_marshaller *m, dw__scan *st, const uint8_t *d, size_t n, size_t *used,
                   dw_buf *raw, dw_error *err)
{
    unsigned hs = m->header_size;
    size_t take = 0;
    if (st->hdr_len < hs) {
        take = hs - st->hdr_len < n ? hs - st->hdr_len : n;
        memcpy(st->hdr + st->hdr_len, d, take);
        st->hdr_len += (unsigned)take;
        *used = take;
        if (st->hdr_len < hs)
            return DW_MORE;
        size_t len = decode(m, st->hdr);
        if (hs > m->max_frame || len > m->max_frame - hs)
            return dw_error_set(err, DW_ETOOBIG,
                                "length-prefixed: header announces %zu bytes, more than the "
                                "maximum frame of %zu bytes",
                                len, m->max_frame);
        /* No reserve(len) here: a 4-byte lie must not cost max_frame bytes. */
        st->need = len;
    }
    size_t body = st->need - raw->len < n - take ? st->need - raw->len : n - take;
    if (dw_buf_append(raw, d + take, body) != DW_OK)
        return DW_ENOMEM;
    *used = take + body;
    return raw->len == st->need ? DW_OK : DW_MORE;
}

static int lp_partial(const dw_marshaller *m, const dw__scan *st, dw_buf *raw)
{
    (void)m;
    if (st->hdr_len == 0)
        return DW_OK;
    if (dw_buf_reserve(raw, st->hdr_len) != DW_OK)
        return DW_ENOMEM;
    if (raw->len)
        memmove(raw->data + st->hdr_len, raw->data, raw->len);
    memcpy(raw->data, st->hdr, st->hdr_len);
    raw->len += st->hdr_len;
    return DW_OK;
}

static const dw__marshaller_ops lp_ops = {
    .name = "length-prefixed",
    .marshall = lp_marshall,
    .feed = lp_feed,
    .partial = lp_partial,
};

dw_marshaller *dw_length_prefixed_marshaller_new(unsigned header_size, dw_endian endian)
{
    if (header_size != 1 && header_size != 2 && header_size != 4)
        return NULL;
    if (endian != DW_BIG_ENDIAN && endian != DW_LITTLE_ENDIAN)
        return NULL;
    dw_marshaller *m = dw__marshaller_alloc(&lp_ops, NULL, 0);
    if (m) {
        m->header_size = header_size;
        m->endian = endian;
    }
    return m;
}
