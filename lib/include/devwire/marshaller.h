/* Marshallers: the framings that turn payloads into bytes and a stream of
 * arbitrarily cut chunks back into payloads.
 *
 * Every unmarshaller consumes exactly one frame from the iterator and gives
 * the rest back with dw_iter_unread, so pipelined frames are never lost. Its
 * cost is linear in the frame size whatever the chunking.
 *
 * A marshaller is immutable once configured: one instance may serve many
 * connections on many threads at once (set the maximum frame size before
 * sharing it). */
#ifndef DEVWIRE_MARSHALLER_H
#define DEVWIRE_MARSHALLER_H

#include <stddef.h>
#include <stdint.h>

#include "devwire/buf.h"
#include "devwire/error.h"
#include "devwire/iter.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dw_marshaller dw_marshaller;

#define DW_DEFAULT_MAX_FRAME ((size_t)16 * 1024 * 1024)

typedef enum dw_endian { DW_BIG_ENDIAN = 0, DW_LITTLE_ENDIAN = 1 } dw_endian;

/* Constructors. Each returns NULL for invalid arguments (an empty sentinel,
 * length 0, a header size other than 1, 2 or 4) or when out of memory.
 * Free with dw_marshaller_free. */

/* Payload followed by `sentinel` (any non-empty byte sequence, copied):
 * "\r\n", "\n", "\0"... */
dw_marshaller *dw_sentinel_marshaller_new(const void *sentinel, size_t len);
/* Exactly `length` bytes, no delimiter. */
dw_marshaller *dw_fixed_marshaller_new(size_t length);
/* A 1, 2 or 4 byte unsigned length header, then that many bytes. */
dw_marshaller *dw_length_prefixed_marshaller_new(unsigned header_size, dw_endian endian);
/* SCPI / IEEE 488.2 responses: terminated by `sentinel` (usually "\n"), but a
 * definite-length arbitrary block "#<d><d digits><bytes>" may contain the
 * sentinel and is skipped over; an indefinite block "#0..." ends at the
 * sentinel. A '#' inside a double-quoted string starts no block. The payload
 * is the response without its terminator, blocks included as received (see
 * dw_scpi_block_parse). */
dw_marshaller *dw_scpi_marshaller_new(const void *sentinel, size_t len);
/* JSON lines: one JSON value per "\n"-terminated line. At the byte level the
 * payload is the line's text (validated); at the payload level it is a
 * cJSON value (see dw_marshall_payload). */
dw_marshaller *dw_json_marshaller_new(void);

/* Accepts NULL. */
void dw_marshaller_free(dw_marshaller *m);

/* The largest frame an unmarshaller accepts (default DW_DEFAULT_MAX_FRAME,
 * payload bytes plus any header and terminator). Not thread-safe: set before
 * the marshaller is shared. */
void dw_marshaller_set_max_frame(dw_marshaller *m, size_t max);
size_t dw_marshaller_max_frame(const dw_marshaller *m);

/* "sentinel", "fixed", "length-prefixed", "scpi" or "json-lines". */
const char *dw_marshaller_name(const dw_marshaller *m);

/* Append the frame for payload p[0..n) to `out` (p may be NULL when n is 0).
 * DW_OK, or a refusal when the frame would not read back as the payload:
 *  sentinel     DW_EINVAL: the payload holds the sentinel, or its tail and
 *               the sentinel's head form an earlier one ("xa" + "aa");
 *  fixed        DW_EINVAL: the payload has another length;
 *  length-pref. DW_ETOOBIG: too long for the header (> 255, 65535, 2^32-1);
 *  scpi         DW_EINVAL: the sentinel outside a block, an incomplete
 *               block or a malformed block header;
 *  json-lines   DW_EINVAL: not exactly one JSON value, or a newline or NUL
 *               byte in it.
 * `err` (may be NULL) says what was wrong. `out` is unchanged on error.
 * Thread-safe for a shared marshaller. */
int dw_marshall(const dw_marshaller *m, const uint8_t *p, size_t n, dw_buf *out, dw_error *err);

/* Read exactly one frame from `in` and put its payload in `payload`
 * (replacing what was there; the caller owns and frees it). Bytes after the
 * frame are unread, so the next call starts at the next frame.
 * Returns:
 *  DW_OK         a payload (possibly empty) is in `payload`;
 *  DW_EOF        the stream ended cleanly before any byte of a frame;
 *  DW_ETRUNCATED the stream ended inside a frame;
 *  DW_ETOOBIG    the frame exceeds the maximum frame size: reading stops as
 *                soon as that is known (a length header or block header is
 *                refused before its body is read; a frame that has reached
 *                the maximum without its terminator is refused then, without
 *                waiting for another byte), so memory stays bounded. A frame
 *                of exactly the maximum is accepted;
 *  DW_EPROTO     a malformed frame (bad SCPI block header, invalid JSON);
 *                bytes up to and including the bad one are consumed (for
 *                JSON the whole line);
 *  another negative code from the iterator (DW_ETIMEDOUT, ...).
 * On every error after the frame began, `payload` holds every byte of the
 * frame consumed so far, as received (length header and partial sentinel
 * included): nothing is silently dropped.
 * `err` (may be NULL) gets a message naming the framing and the problem.
 * Cost is linear in the frame size whatever the chunking. Thread-safe for a
 * shared marshaller (one iterator per thread). */
int dw_unmarshall(const dw_marshaller *m, dw_iter *in, dw_buf *payload, dw_error *err);

/* Payload level, what the application layer calls. The payload's type
 * depends on the marshaller: a `dw_buf` for the byte framings (sentinel,
 * fixed, length-prefixed, scpi), a `cJSON` value for json-lines.
 * dw_marshall_payload reads `payload` (borrowed) and appends its frame.
 * dw_unmarshall_payload returns a new payload in *payload on DW_OK, which the
 * caller frees with dw_payload_free; other return values as dw_unmarshall
 * (*payload is NULL then). */
int dw_marshall_payload(const dw_marshaller *m, const void *payload, dw_buf *out, dw_error *err);
int dw_unmarshall_payload(const dw_marshaller *m, dw_iter *in, void **payload, dw_error *err);
/* Free a payload made by dw_unmarshall_payload on `m`. Accepts NULL. */
void dw_payload_free(const dw_marshaller *m, void *payload);

/* Find the first arbitrary block in an SCPI payload (a '#' inside a
 * double-quoted string or followed by a non-digit, "#H1F", starts none).
 * For a definite block "#<d><digits><bytes>", *data/ *len are its bytes;
 * for an indefinite block "#0<bytes>", the rest of the payload. They point
 * into `p`. DW_ENOENT when there is no block, DW_EPROTO when the header is
 * malformed or the block is longer than the payload. Thread-safe. */
int dw_scpi_block_parse(const uint8_t *p, size_t n, const uint8_t **data, size_t *len);
/* Append the definite block "#<d><len><bytes>" for data[0..len) to `out`.
 * DW_OK, DW_EINVAL when len has more than 9 digits, or DW_ENOMEM (`out`
 * unchanged on error). */
int dw_scpi_block_append(dw_buf *out, const uint8_t *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif
