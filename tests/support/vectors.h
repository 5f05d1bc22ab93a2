/* The framing vectors: streams with the frames and the ending each framing
 * must read from them, shared by the blocking unmarshaller's tests
 * (test_marshaller.c) and the push decoder's (test_decoder.c). */
#ifndef DW_TEST_VECTORS_H
#define DW_TEST_VECTORS_H

#include "support.h"

/* A byte string with its exact length (NUL bytes included). */
typedef struct dw_test_bytes {
    const char *p;
    size_t n;
} dw_test_bytes;
#define DW_TB(lit)                                                                                 \
    {                                                                                              \
        (lit), sizeof(lit) - 1                                                                     \
    }

typedef enum dw_test_framing {
    DW_TEST_SENTINEL,
    DW_TEST_FIXED,
    DW_TEST_LENGTH_PREFIXED,
    DW_TEST_SCPI,
    DW_TEST_JSON,
} dw_test_framing;

#define DW_TEST_ANY_OFFSET ((size_t)-1)
#define DW_TEST_MAX_WANT   3

typedef struct dw_test_vector {
    const char *name;
    dw_test_framing framing;
    dw_test_bytes sentinel; /* sentinel, scpi */
    size_t size;            /* fixed: the length; length-prefixed: the header size */
    dw_endian endian;       /* length-prefixed */
    size_t max_frame;       /* 0: the default */
    dw_test_bytes in;       /* the stream */
    dw_test_bytes want[DW_TEST_MAX_WANT];
    size_t nwant;
    int end;            /* DW_EOF or the error that ends the stream */
    dw_test_bytes rest; /* on an error: what is left in the payload */
    size_t end_offset;  /* on an error: stream offset after the ending call (or ANY) */
} dw_test_vector;

extern const dw_test_vector dw_test_vectors[];
extern const size_t dw_test_nvectors;

/* The vector's marshaller (caller frees). Aborts if it cannot be made. */
dw_marshaller *dw_test_vector_marshaller(const dw_test_vector *v);

/* Check v's stream at every split through `run` with the marshaller `m`
 * (v's framing fields are not used): the payloads, the end code, what an
 * error left in the payload and the stream offset after the ending call. */
void dw_test_expect_vector_with(const dw_marshaller *m, const dw_test_vector *v,
                                dw_test_runner run);

/* Run every vector of `framing` through `run` at every split (as
 * dw_test_every_split_with) and check the outcome with Criterion's
 * cr_expect, naming the vector in each message. Returns how many ran. */
size_t dw_test_expect_vectors(dw_test_framing framing, dw_test_runner run);

/* One Criterion test per framing, "<framing>::vectors", running its vectors
 * through `run` (include <criterion/criterion.h> first). */
#define DW_TEST_VECTOR_SUITES(run)                                                                 \
    Test(sentinel, vectors)                                                                        \
    {                                                                                              \
        cr_expect(dw_test_expect_vectors(DW_TEST_SENTINEL, run) > 0);                              \
    }                                                                                              \
    Test(fixed, vectors)                                                                           \
    {                                                                                              \
        cr_expect(dw_test_expect_vectors(DW_TEST_FIXED, run) > 0);                                 \
    }                                                                                              \
    Test(length_prefixed, vectors)                                                                 \
    {                                                                                              \
        cr_expect(dw_test_expect_vectors(DW_TEST_LENGTH_PREFIXED, run) > 0);                       \
    }                                                                                              \
    Test(scpi, vectors)                                                                            \
    {                                                                                              \
        cr_expect(dw_test_expect_vectors(DW_TEST_SCPI, run) > 0);                                  \
    }                                                                                              \
    Test(json_lines, vectors)                                                                      \
    {                                                                                              \
        cr_expect(dw_test_expect_vectors(DW_TEST_JSON, run) > 0);                                  \
    }

#endif
