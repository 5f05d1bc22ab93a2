/* The bytestring iterator: how received bytes reach the application.
 *
 * The transport never decides where a message ends. The application (its
 * unmarshaller) pulls chunks with dw_iter_next until it has a whole payload,
 * then gives back what it did not use with dw_iter_unread, so pipelined bytes
 * are never lost.
 *
 * Contract:
 *  - dw_iter_next returns DW_OK with at least one byte, DW_EOF when the peer
 *    closed cleanly, or a negative error (DW_ETIMEDOUT, DW_ECONNRESET, ...).
 *    A zero-length DW_OK never happens.
 *  - *data stays valid until the next dw_iter_next on the same iterator.
 *  - dw_iter_unread(it, n) gives back the last n bytes of the chunk just
 *    returned; the next dw_iter_next returns exactly those bytes first.
 *  - An iterator is used by one thread at a time.
 *
 * Implementations embed a dw_iter as their first member and set `pull`; the
 * unread bookkeeping lives here, once, for all of them. */
#ifndef DEVWIRE_ITER_H
#define DEVWIRE_ITER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dw_iter dw_iter;

/* An implementation's "read more": same contract as dw_iter_next, except
 * that an empty DW_OK chunk is allowed (dw_iter_next then pulls again). It is
 * never called while unread bytes are pending, so the chunk it returned last
 * stays untouched until it is called again. */
typedef int (*dw_iter_pull_fn)(dw_iter *it, const uint8_t **data, size_t *len);

struct dw_iter {
    dw_iter_pull_fn pull;
    const uint8_t *last; /* the chunk returned last */
    size_t last_len;
    size_t pending; /* unread bytes: the tail of `last` */
};

/* Set up the base part of an implementation's iterator. */
void dw_iter_init(dw_iter *it, dw_iter_pull_fn pull);

/* Pull the next chunk (see the contract above). */
int dw_iter_next(dw_iter *it, const uint8_t **data, size_t *len);

/* Give back the last n bytes of the chunk just returned (n may be 0; n larger
 * than that chunk is clamped to it). */
void dw_iter_unread(dw_iter *it, size_t n);

/* Bytes given back and not yet pulled again. */
size_t dw_iter_pending(const dw_iter *it);

/* In-memory iterator: replays a buffer cut at given points. Tests, fuzzers
 * and benchmarks use it. The data and cut arrays are borrowed and must
 * outlive the iterator. */
typedef struct dw_mem_iter {
    dw_iter base; /* pass &it.base (or (dw_iter *)&it) to the API */
    const uint8_t *data;
    size_t len;
    size_t pos;
    const size_t *cuts; /* ascending offsets where a chunk ends; may be NULL */
    size_t ncuts;
    size_t next_cut;
    size_t chunk; /* if no cuts: the largest chunk (0 = everything at once) */
    int end_code; /* returned once the data is used up: DW_EOF by default */
} dw_mem_iter;

/* Chunks end at each offset in `cuts` (ascending; out-of-range, repeated or
 * zero offsets are skipped, so no chunk is ever empty) and at the end. */
void dw_mem_iter_init(dw_mem_iter *it, const uint8_t *data, size_t len, const size_t *cuts,
                      size_t ncuts);

/* Chunks of at most `chunk` bytes (0 = the whole buffer at once). */
void dw_mem_iter_init_chunked(dw_mem_iter *it, const uint8_t *data, size_t len, size_t chunk);

#ifdef __cplusplus
}
#endif
#endif
