/* Internal: what every framing implements. Each framing core is a pure
 * function of (state, chunk) that appends the bytes belonging to the current
 * frame to the raw frame buffer and says whether the frame is complete. Two
 * drivers step a frame through them with the dw__frame_* calls below: the
 * blocking dw_unmarshall (marshaller.c: a loop pulling from an iterator) and
 * the push decoder (decoder.c: the caller hands in what it received). */
#ifndef DW_MARSHALLER_INT_H
#define DW_MARSHALLER_INT_H

#include "devwire/marshaller.h"

#include <string.h>

/* Scan state of one frame in progress; zeroed at the start of a frame. */
typedef struct dw__scan {
    size_t need;       /* length-prefixed: payload length once the header is in */
    size_t text_start; /* scpi: frame offset where the current text run starts */
    size_t count;      /* scpi: block digits or body bytes still expected */
    size_t value;      /* scpi: block length being read */
    int phase;         /* framing-specific */
    unsigned hdr_len;  /* length-prefixed: header bytes received so far */
    uint8_t hdr[4];    /* length-prefixed: the header (kept out of the payload) */
} dw__scan;

typedef struct dw__marshaller_ops {
    const char *name;
    int (*marshall)(const dw_marshaller *m, const uint8_t *p, size_t n, dw_buf *out, dw_error *err);
    /* Consume a prefix of d[0..n) (n >= 1): append the frame's bytes to `raw`,
     * set *used, and return DW_OK (frame complete), DW_MORE (then *used must
     * be n), or an error (*used: the bytes consumed, including a bad one). It
     * never looks at bytes beyond what the maximum frame size allows. */
    int (*feed)(const dw_marshaller *m, dw__scan *st, const uint8_t *d, size_t n, size_t *used,
                dw_buf *raw, dw_error *err);
    /* Turn a complete raw frame into the byte payload, in place (NULL: the
     * raw frame is the payload). */
    int (*finish)(const dw_marshaller *m, dw__scan *st, dw_buf *raw, dw_error *err);
    /* The frame ended early (end of stream or an error): make `raw` hold every
     * byte consumed so far, as received (NULL: it already does). */
    int (*partial)(const dw_marshaller *m, const dw__scan *st, dw_buf *raw);
    /* Payload level; NULL for byte framings (payload is a dw_buf). */
    int (*marshall_payload)(const dw_marshaller *m, const void *payload, dw_buf *out,
                            dw_error *err);
    int (*decode_payload)(const dw_marshaller *m, const dw_buf *raw, void **payload, dw_error *err);
    void (*free_payload)(void *payload);
} dw__marshaller_ops;

struct dw_marshaller {
    const dw__marshaller_ops *ops;
    size_t max_frame;
    size_t length;        /* fixed */
    unsigned header_size; /* length-prefixed */
    dw_endian endian;     /* length-prefixed */
    size_t sentinel_len;  /* sentinel, scpi, json-lines */
    uint8_t sentinel[];   /* flexible: sentinel bytes */
};

dw_marshaller *dw__marshaller_alloc(const dw__marshaller_ops *ops, const void *sentinel,
                                    size_t len);

/* Sentinel search helpers shared by the sentinel and JSON-lines framings. */
int dw__sentinel_marshall(const dw_marshaller *m, const uint8_t *p, size_t n, dw_buf *out,
                          dw_error *err);
int dw__sentinel_feed(const dw_marshaller *m, dw__scan *st, const uint8_t *d, size_t n,
                      size_t *used, dw_buf *raw, dw_error *err);

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
