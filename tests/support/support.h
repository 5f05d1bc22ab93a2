/* Shared test helpers. */
#ifndef DW_TEST_SUPPORT_H
#define DW_TEST_SUPPORT_H

#include <devwire/devwire.h>

/* A strict in-memory iterator for framing tests: it replays `data` cut at
 * `cuts` (as dw_mem_iter) but hands out every chunk in its own heap buffer of
 * exactly the chunk's size, freed at the next pull, so an unmarshaller that
 * reads past a chunk or keeps a pointer into an old one is caught by the
 * sanitizers. It also checks the iterator contract from the outside (no
 * empty DW_OK chunk). Not thread-safe. */
typedef struct dw_test_iter {
    dw_iter base; /* pass &it.base to the API */
    dw_mem_iter inner;
    uint8_t *copy; /* the chunk handed out last */
    size_t pulls;  /* chunks handed out */
} dw_test_iter;

void dw_test_iter_init(dw_test_iter *it, const uint8_t *data, size_t len, const size_t *cuts,
                       size_t ncuts);
/* What the iterator returns once the data is used up (DW_EOF by default;
 * e.g. DW_ETIMEDOUT to simulate a transport error). */
void dw_test_iter_set_end(dw_test_iter *it, int end_code);
/* Stream offset of the next byte dw_iter_next will return. */
size_t dw_test_iter_offset(const dw_test_iter *it);
void dw_test_iter_free(dw_test_iter *it);

#define DW_TEST_MAX_PAYLOADS 64

/* The outcome of unmarshalling a whole stream: every payload in order, then
 * the code that ended it (DW_EOF or an error). */
typedef struct dw_test_outcome {
    size_t count;
    dw_buf payloads[DW_TEST_MAX_PAYLOADS];
    size_t offsets[DW_TEST_MAX_PAYLOADS]; /* stream offset after each payload */
    int end;                              /* DW_EOF or the error that stopped it */
    dw_buf rest;                          /* on an error: what dw_unmarshall left in its payload */
    size_t end_offset;                    /* stream offset after the call that ended it */
    char message[512];                    /* on an error: the dw_error message */
} dw_test_outcome;

/* A way to read a whole stream: `data` cut at `cuts`, until EOF or an
 * error. */
typedef void (*dw_test_runner)(const dw_marshaller *m, const uint8_t *data, size_t len,
                               const size_t *cuts, size_t ncuts, dw_test_outcome *out);
/* The blocking way: dw_unmarshall on a dw_test_iter. */
void dw_test_run(const dw_marshaller *m, const uint8_t *data, size_t len, const size_t *cuts,
                 size_t ncuts, dw_test_outcome *out);
/* The push way: each chunk (in its own exact-size heap buffer) fed to a
 * dw_decoder until it is used up, then dw_decoder_finish. Offsets count the
 * bytes the decoder consumed. */
void dw_test_decode_run(const dw_marshaller *m, const uint8_t *data, size_t len, const size_t *cuts,
                        size_t ncuts, dw_test_outcome *out);
void dw_test_outcome_free(dw_test_outcome *o);
/* 1 if both outcomes are the same sequence of payloads, at the same stream
 * offsets, ended by the same code with the same rest (messages may differ). */
int dw_test_outcome_eq(const dw_test_outcome *a, const dw_test_outcome *b);

/* Check that `data` gives the same outcome as delivered whole: one byte at a
 * time, and for every pair of cut points (which includes every single cut).
 * Returns the number of splits that differed (0 = all agree) and fills
 * *whole with the whole-stream outcome. `data` is copied into a buffer of
 * exactly `len` bytes first, and each chunk into its own exact buffer, so an
 * over-read is caught by the sanitizers. */
size_t dw_test_every_split(const dw_marshaller *m, const void *data, size_t len,
                           dw_test_outcome *whole);
/* The same through `run`. */
size_t dw_test_every_split_with(dw_test_runner run, const dw_marshaller *m, const void *data,
                                size_t len, dw_test_outcome *whole);

/* Render bytes for an assertion message: printable ASCII as is, the rest as
 * \xNN, cut with "..." after `max` input bytes. Returns `out`. */
const char *dw_test_escape(const void *p, size_t n, char *out, size_t outsize);
/* The same into one of 4 static buffers used in turn (for up to 4 in one
 * message). Not thread-safe. */
const char *dw_test_esc(const void *p, size_t n);

#endif
