/* Length-prefixed framing: a 1, 2 or 4 byte unsigned length, then the bytes. */
#include "marshaller_int.h"

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

static int lp_feed(const dw_marshaller *m, dw__scan *st, const uint8_t *d, size_t n, size_t *used,
                   dw_buf *raw, dw_error *err)
{
    unsigned hs = m->header_size;
    size_t take = 0;
    if (raw->len < hs) {
        take = hs - raw->len < n ? hs - raw->len : n;
        if (dw_buf_append(raw, d, take) != DW_OK)
            return DW_ENOMEM;
        *used = take;
        if (raw->len < hs)
            return DW__MORE;
        size_t len = decode(m, raw->data);
        if (len > m->max_frame || hs + len > m->max_frame)
            return dw_error_set(err, DW_ETOOBIG,
                                "length-prefixed: header announces %zu bytes, more than the "
                                "maximum frame of %zu bytes",
                                len, m->max_frame);
        st->need = hs + len;
    }
    size_t body = st->need - raw->len < n - take ? st->need - raw->len : n - take;
    if (dw_buf_append(raw, d + take, body) != DW_OK)
        return DW_ENOMEM;
    *used = take + body;
    return raw->len == st->need ? DW_OK : DW__MORE;
}

static int lp_finish(const dw_marshaller *m, dw__scan *st, dw_buf *raw, dw_error *err)
{
    (void)st;
    (void)err;
    dw_buf_consume(raw, m->header_size);
    return DW_OK;
}

static const dw__marshaller_ops lp_ops = {
    .name = "length-prefixed",
    .marshall = lp_marshall,
    .feed = lp_feed,
    .finish = lp_finish,
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
