/* The push decoder: the caller's bytes stepped through the framings' feed
 * functions, one frame at a time (the same steps as the blocking loop in
 * marshaller.c). */
#include "devwire/decoder.h"

#include "frame.h"

#include <stdlib.h>

struct dw_decoder {
    dw__frame f;
    dw_buf raw; /* the frame in progress */
};

dw_decoder *dw_decoder_new(const dw_marshaller *m)
{
    dw_decoder *d = malloc(sizeof *d);
    if (!d)
        return NULL;
    dw__frame_begin(&d->f, m);
    dw_buf_init(&d->raw);
    return d;
}

void dw_decoder_free(dw_decoder *d)
{
    if (!d)
        return;
    dw_buf_free(&d->raw);
    free(d);
}

void dw_decoder_reset(dw_decoder *d)
{
    dw_buf_clear(&d->raw);
    dw__frame_begin(&d->f, d->f.m);
}

/* The frame is over: it goes to `payload` by swapping storage, and the
 * caller's old storage serves the next frame. */
static void hand_over(dw_decoder *d, dw_buf *payload)
{
    dw_buf old = *payload;
    *payload = d->raw;
    d->raw = old;
    dw_decoder_reset(d);
}

/* Feed what the caller has: DW_MORE, or the end of a frame (DW_OK: complete
 * and not yet finished; or an error). */
static int step(dw_decoder *d, const uint8_t *data, size_t n, size_t *used, dw_error *err)
{
    *used = 0;
    return n ? dw__frame_feed(&d->f, data, n, used, &d->raw, err) : DW_MORE;
}

int dw_decoder_feed(dw_decoder *d, const uint8_t *data, size_t n, size_t *used, dw_buf *payload,
                    dw_error *err)
{
    int rc = step(d, data, n, used, err);
    if (rc == DW_MORE)
        return rc;
    if (rc == DW_OK)
        rc = dw__frame_finish(&d->f, &d->raw, err);
    hand_over(d, payload);
    return rc;
}

int dw_decoder_feed_payload(dw_decoder *d, const uint8_t *data, size_t n, size_t *used,
                            void **payload, dw_error *err)
{
    *payload = NULL;
    int rc = step(d, data, n, used, err);
    if (rc == DW_MORE)
        return rc;
    if (rc == DW_OK)
        rc = dw__frame_payload(&d->f, &d->raw, payload, err);
    dw_decoder_reset(d);
    return rc;
}

int dw_decoder_finish(dw_decoder *d, dw_buf *payload, dw_error *err)
{
    int rc = d->f.consumed ? dw__frame_truncated(&d->f, &d->raw, err) : DW_EOF;
    hand_over(d, payload);
    return rc;
}

size_t dw_decoder_buffered(const dw_decoder *d)
{
    return d->f.consumed;
}

void dw_decoder_shrink(dw_decoder *d, size_t cap)
{
    dw_buf_shrink(&d->raw, cap);
}
