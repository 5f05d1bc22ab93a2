/* The framing-independent half of the marshallers: construction, the one
 * blocking unmarshall loop, and the payload-level calls. */
#include "marshaller_int.h"

#include <stdlib.h>
#include <string.h>

dw_marshaller *dw__marshaller_alloc(const dw__marshaller_ops *ops, const void *sentinel, size_t len)
{
    dw_marshaller *m = calloc(1, sizeof *m + len);
    if (!m)
        return NULL;
    m->ops = ops;
    m->max_frame = DW_DEFAULT_MAX_FRAME;
    m->sentinel_len = len;
    if (len)
        memcpy(m->sentinel, sentinel, len);
    return m;
}

void dw_marshaller_free(dw_marshaller *m)
{
    free(m);
}

void dw_marshaller_set_max_frame(dw_marshaller *m, size_t max)
{
    m->max_frame = max;
}

size_t dw_marshaller_max_frame(const dw_marshaller *m)
{
    return m->max_frame;
}

const char *dw_marshaller_name(const dw_marshaller *m)
{
    return m->ops->name;
}

int dw_marshall(const dw_marshaller *m, const uint8_t *p, size_t n, dw_buf *out, dw_error *err)
{
    size_t before = out->len;
    int rc = m->ops->marshall(m, p, n, out, err);
    if (rc != DW_OK)
        out->len = before;
    return rc;
}

/* Read one raw frame: the loop around the framing's pure feed(). Each chunk
 * is looked at once; what the frame does not use is unread. */
static int read_frame(const dw_marshaller *m, dw_iter *in, dw_buf *raw, dw__scan *st, dw_error *err)
{
    dw_buf_clear(raw);
    memset(st, 0, sizeof *st);
    size_t consumed = 0; /* bytes of this frame taken from the iterator */
    int rc;
    for (;;) {
        const uint8_t *d;
        size_t n;
        rc = dw_iter_next(in, &d, &n);
        if (rc == DW_EOF) {
            if (consumed == 0)
                return DW_EOF;
            rc = dw_error_set(err, DW_ETRUNCATED, "%s: stream ended inside a frame after %zu bytes",
                              m->ops->name, consumed);
            break;
        }
        if (rc != DW_OK) {
            rc = dw_error_set(err, rc, "%s: receiving a frame (after %zu bytes): %s", m->ops->name,
                              consumed, dw_strerror(rc));
            break;
        }
        size_t used = 0;
        rc = m->ops->feed(m, st, d, n, &used, raw, err);
        consumed += used;
        dw_iter_unread(in, n - used);
        if (rc != DW__MORE)
            break;
    }
    if (rc != DW_OK && m->ops->partial && m->ops->partial(m, st, raw) != DW_OK)
        return DW_ENOMEM;
    return rc;
}

int dw_unmarshall(const dw_marshaller *m, dw_iter *in, dw_buf *payload, dw_error *err)
{
    dw__scan st;
    int rc = read_frame(m, in, payload, &st, err);
    if (rc == DW_OK && m->ops->finish)
        rc = m->ops->finish(m, &st, payload, err);
    return rc;
}

int dw_marshall_payload(const dw_marshaller *m, const void *payload, dw_buf *out, dw_error *err)
{
    if (m->ops->marshall_payload) {
        size_t before = out->len;
        int rc = m->ops->marshall_payload(m, payload, out, err);
        if (rc != DW_OK)
            out->len = before;
        return rc;
    }
    if (!payload)
        return dw_error_set(err, DW_EINVAL, "%s: no payload (NULL dw_buf)", m->ops->name);
    const dw_buf *b = payload;
    return dw_marshall(m, b->data, b->len, out, err);
}

int dw_unmarshall_payload(const dw_marshaller *m, dw_iter *in, void **payload, dw_error *err)
{
    *payload = NULL;
    dw_buf *raw = calloc(1, sizeof *raw);
    if (!raw)
        return DW_ENOMEM;
    dw__scan st;
    int rc = read_frame(m, in, raw, &st, err);
    if (rc == DW_OK && m->ops->decode_payload) {
        rc = m->ops->decode_payload(m, raw, payload, err);
        dw_buf_free(raw);
        free(raw);
        return rc;
    }
    if (rc == DW_OK && m->ops->finish)
        rc = m->ops->finish(m, &st, raw, err);
    if (rc != DW_OK) {
        dw_buf_free(raw);
        free(raw);
        return rc;
    }
    *payload = raw;
    return DW_OK;
}

void dw_payload_free(const dw_marshaller *m, void *payload)
{
    if (!payload)
        return;
    if (m->ops->free_payload) {
        m->ops->free_payload(payload);
        return;
    }
    dw_buf_free(payload);
    free(payload);
}
