/* The steps of a frame that are not inline: the blocking loop
 * (marshaller.c) and the push decoder (decoder.c) end a frame, early or
 * complete, through these. */
#include "frame.h"

#include <stdlib.h>

int dw__frame_fail(dw__frame *f, dw_buf *raw, int rc)
{
    if (f->m->ops->partial && f->m->ops->partial(f->m, &f->st, raw) != DW_OK)
        return DW_ENOMEM;
    return rc;
}

int dw__frame_truncated(dw__frame *f, dw_buf *raw, dw_error *err)
{
    int rc = dw_error_set(err, DW_ETRUNCATED, "%s: stream ended inside a frame after %zu bytes",
                          f->m->ops->name, f->consumed);
    return dw__frame_fail(f, raw, rc);
}

int dw__frame_payload(dw__frame *f, dw_buf *raw, void **payload, dw_error *err)
{
    const dw__marshaller_ops *ops = f->m->ops;
    *payload = NULL;
    if (ops->decode_payload) {
        int rc = ops->decode_payload(f->m, raw, payload, err);
        dw_buf_clear(raw);
        return rc;
    }
    int rc = dw__frame_finish(f, raw, err);
    dw_buf *b = rc == DW_OK ? malloc(sizeof *b) : NULL;
    if (rc == DW_OK && !b)
        rc = DW_ENOMEM;
    if (rc != DW_OK) {
        dw_buf_clear(raw);
        return rc;
    }
    *b = *raw; /* the payload takes the storage: no copy */
    dw_buf_init(raw);
    *payload = b;
    return DW_OK;
}
