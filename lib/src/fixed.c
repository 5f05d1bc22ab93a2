/* Fixed-length framing: every frame is exactly `length` bytes. */
#include "marshaller_int.h"

static int fixed_marshall(const dw_marshaller *m, const uint8_t *p, size_t n, dw_buf *out,
                          dw_error *err)
{
    if (n != m->length)
        return dw_error_set(err, DW_EINVAL, "fixed: payload is %zu bytes, expected %zu", n,
                            m->length);
    return dw_buf_append(out, p, n);
}

static int fixed_feed(const dw_marshaller *m, dw__scan *st, const uint8_t *d, size_t n,
                      size_t *used, dw_buf *raw, dw_error *err)
{
    (void)st;
    if (m->length > m->max_frame)
        return dw_error_set(err, DW_ETOOBIG,
                            "fixed: frame length %zu exceeds the maximum of %zu bytes", m->length,
                            m->max_frame);
    size_t take = m->length - raw->len;
    if (take > n)
        take = n;
    *used = take;
    if (dw_buf_append(raw, d, take) != DW_OK)
        return DW_ENOMEM;
    return raw->len == m->length ? DW_OK : DW_MORE;
}

static const dw__marshaller_ops fixed_ops = {
    .name = "fixed",
    .marshall = fixed_marshall,
    .feed = fixed_feed,
};

dw_marshaller *dw_fixed_marshaller_new(size_t length)
{
    if (length == 0)
        return NULL;
    dw_marshaller *m = dw__marshaller_alloc(&fixed_ops, NULL, 0);
    if (m)
        m->length = length;
    return m;
}
