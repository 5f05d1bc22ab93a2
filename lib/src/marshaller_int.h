/* Internal: what every framing implements. Each framing core is a pure
 * function of (state, chunk) that appends the bytes belonging to the current
 * frame to the raw frame buffer and says whether the frame is complete. The
 * framings fill a dw__marshaller_ops table and build their marshaller with
 * dw__marshaller_alloc (marshaller.c); the drivers step a frame through the
 * table with the calls of frame.h. */
#ifndef DW_MARSHALLER_INT_H
#define DW_MARSHALLER_INT_H

#include "devwire/marshaller.h"

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

/* A marshaller of the given framing with the default maximum frame and a
 * copy of the sentinel bytes (len 0: none); NULL when out of memory. */
dw_marshaller *dw__marshaller_alloc(const dw__marshaller_ops *ops, const void *sentinel,
                                    size_t len);

/* Sentinel search helpers shared by the sentinel and JSON-lines framings. */
int dw__sentinel_marshall(const dw_marshaller *m, const uint8_t *p, size_t n, dw_buf *out,
                          dw_error *err);
int dw__sentinel_feed(const dw_marshaller *m, dw__scan *st, const uint8_t *d, size_t n,
                      size_t *used, dw_buf *raw, dw_error *err);

#endif
