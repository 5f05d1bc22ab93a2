/* Shared test helpers. */
#ifndef DW_TEST_SUPPORT_H
#define DW_TEST_SUPPORT_H

#include <devwire/devwire.h>

/* The outcome of unmarshalling a whole stream: every payload in order, then
 * the code that ended it (DW_EOF or an error). */
typedef struct dw_test_outcome {
    size_t count;
    dw_buf payloads[64];
    int end; /* DW_EOF or the error that stopped it */
    dw_buf rest; /* on DW_ETRUNCATED: the partial frame */
} dw_test_outcome;

/* Unmarshall `data` cut at `cuts` until EOF or an error. */
void dw_test_run(const dw_marshaller *m, const uint8_t *data, size_t len, const size_t *cuts,
                 size_t ncuts, dw_test_outcome *out);
void dw_test_outcome_free(dw_test_outcome *o);
/* 1 if both outcomes are the same sequence. */
int dw_test_outcome_eq(const dw_test_outcome *a, const dw_test_outcome *b);

/* Check that `data` gives the same outcome as delivered whole: one byte at a
 * time, and for every pair of cut points. Returns the number of splits that
 * differed (0 = all agree) and fills *whole with the whole-stream outcome.
 * `data` is copied into a buffer of exactly `len` bytes first, so an
 * over-read is caught by the sanitizers. */
size_t dw_test_every_split(const dw_marshaller *m, const void *data, size_t len,
                           dw_test_outcome *whole);

#endif
