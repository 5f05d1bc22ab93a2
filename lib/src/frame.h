/* Internal: the steps of one frame, shared by the two drivers that move a
 * frame through a framing's feed(): the blocking dw_unmarshall (marshaller.c:
 * a loop pulling from an iterator) and the push decoder (decoder.c: the
 * caller hands in what it received). The steps that are not inline live in
 * frame.c. */
#ifndef DW_FRAME_H
#define DW_FRAME_H

#include "marshaller_int.h"

#include <string.h>

/* One frame in progress, as both drivers keep it; its bytes go to a raw
 * frame buffer that the driver owns and that is empty when the frame begins. */
typedef struct dw__frame {
    const dw_marshaller *m;
    dw__scan st;
    size_t consumed; /* bytes of this frame consumed so far */
} dw__frame;

static inline void dw__frame_begin(dw__frame *f, const dw_marshaller *m)
{
    memset(f, 0, sizeof *f);
    f->m = m;
}

/* The frame ended early: make `raw` hold every byte consumed, as received,
 * and return `rc` (DW_ENOMEM if that fails). */
int dw__frame_fail(dw__frame *f, dw_buf *raw, int rc);

/* Feed d[0..n) (n >= 1) to the frame: DW_OK (the raw frame is complete, not
 * yet finished), DW_MORE (*used == n) or an error (then `raw` holds the
 * partial frame). Inline: the blocking loop calls it once per chunk. */
static inline int dw__frame_feed(dw__frame *f, const uint8_t *d, size_t n, size_t *used,
                                 dw_buf *raw, dw_error *err)
{
    *used = 0;
    int rc = f->m->ops->feed(f->m, &f->st, d, n, used, raw, err);
    f->consumed += *used;
    if (rc == DW_OK || rc == DW_MORE)
        return rc;
    return dw__frame_fail(f, raw, rc);
}

/* The stream ended inside the frame: DW_ETRUNCATED with its message, `raw`
 * holding the partial frame. */
int dw__frame_truncated(dw__frame *f, dw_buf *raw, dw_error *err);

/* A complete raw frame becomes the byte payload, in place. */
static inline int dw__frame_finish(dw__frame *f, dw_buf *raw, dw_error *err)
{
    return f->m->ops->finish ? f->m->ops->finish(f->m, &f->st, raw, err) : DW_OK;
}

/* A complete raw frame becomes a payload-level value in *payload (a new
 * dw_buf that takes raw's storage, or the framing's decoded value), freed
 * with dw_payload_free; `raw` is left empty. *payload is NULL on error. */
int dw__frame_payload(dw__frame *f, dw_buf *raw, void **payload, dw_error *err);

#endif
