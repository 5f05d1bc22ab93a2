/* The framing-independent half of the marshallers: construction, the
 * blocking unmarshall loop around the frame steps of frame.c, and the
 * payload-level calls. */
#include "frame.h"

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

/* Read one raw frame: the blocking loop around the framing's pure feed().
 * Each chunk is looked at once; what the frame does not use is unread. */
static int read_frame(const dw_marshaller *m, dw_iter *in, dw_buf *raw, dw__frame *f, dw_error *err)
{
    dw_buf_clear(raw);
    dw__frame_begin(f, m);
    for (;;) {
        const uint8_t *d;
        size_t n;
        int rc = dw_iter_next(in, &d, &n);
        if (rc == DW_EOF)
            return f->consumed ? dw__frame_truncated(f, raw, err) : DW_EOF;
        if (rc != DW_OK) {
            rc = dw_error_set(err, rc, "%s: receiving a frame (after %zu bytes): %s", m->ops->name,
                              f->consumed, dw_strerror(rc));
            return dw__frame_fail(f, raw, rc);
        }
        size_t used;
        rc = dw__frame_feed(f, d, n, &used, raw, err);
        dw_iter_unread(in, n - used);
        if (rc != DW_MORE)
            return rc;
    }
}

int dw_unmarshall(const dw_marshaller *m, dw_iter *in, dw_buf *payload, dw_error *err)
{
    dw__frame f;
    int rc = read_frame(m, in, payload, &f, err);
    return rc == DW_OK ? dw__frame_finish(&f, payload, err) : rc;
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
    dw_buf raw = DW_BUF_INIT;
    dw__frame f;
    int rc = read_frame(m, in, &raw, &f, err);
    if (rc == DW_OK)
        rc = dw__frame_payload(&f, &raw, payload, err);
    dw_buf_free(&raw);
    return rc;
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
