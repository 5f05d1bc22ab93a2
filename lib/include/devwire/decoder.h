/* The push decoder: the marshallers' framings for callers that run their own
 * event loop (libuv, epoll, an asyncio binding). Where dw_unmarshall pulls
 * chunks from an iterator and blocks, a decoder is handed whatever bytes
 * arrived and says when a frame is complete. Both drive the same framing
 * code, so a stream gives the same frames, errors, messages and partial
 * payloads whichever way it is read, however it is cut.
 *
 * One decoder per connection; a marshaller may be shared by many decoders.
 *
 * Example, a libuv read callback (c->dec from dw_decoder_new, c->frame a
 * dw_buf that keeps its storage from frame to frame):
 *
 *     static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
 *     {
 *         conn *c = s->data;
 *         const uint8_t *p = (const uint8_t *)buf->base;
 *         size_t left = nread > 0 ? (size_t)nread : 0, used;
 *         dw_error err;
 *         int rc;
 *         while ((rc = dw_decoder_feed(c->dec, p, left, &used, &c->frame, &err)) == DW_OK) {
 *             handle_frame(c, &c->frame); // one whole frame; more may follow
 *             p += used;
 *             left -= used;
 *         }                               // DW_MORE: the rest comes with a later read
 *         if (nread == UV_EOF)            // DW_EOF, or DW_ETRUNCATED and the partial frame
 *             rc = dw_decoder_finish(c->dec, &c->frame, &err);
 *         free(buf->base);
 *         if (nread < 0 || rc < 0)        // the end, a read error, or a bad frame (err)
 *             uv_close((uv_handle_t *)s, on_close);
 *     }
 */
#ifndef DEVWIRE_DECODER_H
#define DEVWIRE_DECODER_H

#include <stddef.h>
#include <stdint.h>

#include "devwire/buf.h"
#include "devwire/error.h"
#include "devwire/marshaller.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dw_decoder dw_decoder;

/* A decoder for `m` (borrowed: must outlive the decoder; its maximum frame
 * size is read at each call). NULL when out of memory. */
dw_decoder *dw_decoder_new(const dw_marshaller *m);
/* Accepts NULL. */
void dw_decoder_free(dw_decoder *d);

/* Consume a prefix of data[0..n) (n may be 0; data may be NULL then).
 * Returns:
 *  DW_OK    one frame is complete: its payload is in `payload` (its previous
 *           contents replaced; the storage may be swapped with the
 *           decoder's, no copy); *used = bytes of data consumed. Call again
 *           with data + *used for the rest (more frames may be there).
 *  DW_MORE  every byte was consumed (*used == n) and the frame in progress
 *           is not complete (`payload` untouched).
 *  DW_ETOOBIG, DW_EPROTO (or DW_ENOMEM)  as dw_unmarshall, with the same
 *           messages in `err` (may be NULL); *used counts the bytes consumed
 *           including the bad one; `payload` holds every byte of the frame
 *           consumed so far, as received (for json-lines' DW_EPROTO: the
 *           line without its newline, as dw_unmarshall). The decoder is then
 *           reset to start a new frame (callers usually close the
 *           connection).
 * Cost is linear in the frame size whatever the cutting. Not thread-safe per
 * decoder. */
int dw_decoder_feed(dw_decoder *d, const uint8_t *data, size_t n, size_t *used, dw_buf *payload,
                    dw_error *err);

/* Payload level, mirroring dw_unmarshall_payload: on DW_OK *payload is a new
 * payload (a dw_buf for the byte framings, a cJSON value for json-lines)
 * that the caller frees with dw_payload_free; on any other result *payload
 * is NULL (the partial frame of an error is dropped). Otherwise as
 * dw_decoder_feed. */
int dw_decoder_feed_payload(dw_decoder *d, const uint8_t *data, size_t n, size_t *used,
                            void **payload, dw_error *err);

/* End of stream. DW_EOF when no frame is in progress (`payload` emptied),
 * else DW_ETRUNCATED with `payload` holding the partial frame as received
 * and `err` as dw_unmarshall's message. Resets the decoder. */
int dw_decoder_finish(dw_decoder *d, dw_buf *payload, dw_error *err);

/* Bytes held for the frame in progress: every byte of it consumed so far
 * (for callers that bound memory across connections). */
size_t dw_decoder_buffered(const dw_decoder *d);

/* Release storage above `cap` bytes kept from earlier large frames (keeps
 * the frame in progress). */
void dw_decoder_shrink(dw_decoder *d, size_t cap);

/* Forget the frame in progress. */
void dw_decoder_reset(dw_decoder *d);

#ifdef __cplusplus
}
#endif
#endif
