/* devwire-sim's frame fuzzer: which frames of a connection to mutate, how,
 * and the mutated bytes. Pure: no I/O, no clock.
 *
 * A frame's fate is a function of the seed, the direction, the
 * connection's number, the frame's number on that connection (from 1) and
 * the frame's bytes alone: each frame draws from a generator seeded with
 * those numbers, never from a sequence shared with other frames. So a run
 * with the same seed and the same traffic mutates the same frames the same
 * way, and a mutation seen in a transcript ("frame 17") is played again by
 * itself with "frames": [17] and the same seed.
 *
 * The mutations (dw_sim_mutation_kind): truncate the frame's bytes, flip
 * bytes of the payload, replace a number of the payload by a boundary
 * value, split the frame's bytes in two with a pause, send it twice, swap
 * it with the next frame, and give a SCPI definite-length block (#<d><len>)
 * a wrong length. A mutation that cannot apply to a frame (no number, no
 * block, too short) is not drawn for it. */
#ifndef DW_SIM_FUZZ_H
#define DW_SIM_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include <devwire/devwire.h>

#include "model/netfault.h" /* dw_sim_fuzz, the settings; dw_sim_rng */

typedef enum dw_sim_mutation_kind {
    DW_SIM_MUT_TRUNCATE,     /* the frame's bytes cut at `at` (the rest is lost) */
    DW_SIM_MUT_FLIP,         /* nflip payload bytes XORed with a non-zero byte */
    DW_SIM_MUT_NUMBER,       /* the number at [at, at + len) of the payload replaced */
    DW_SIM_MUT_SPLIT,        /* the frame's bytes in two pieces, cut at `at`, with a pause */
    DW_SIM_MUT_DUPLICATE,    /* the frame twice */
    DW_SIM_MUT_SWAP,         /* the frame held and sent after the next one */
    DW_SIM_MUT_BLOCK_LENGTH, /* a block's length digits at [at, at + len) replaced */
    DW_SIM_MUT_NKINDS
} dw_sim_mutation_kind;

#define DW_SIM_FUZZ_MAX_FLIPS 4

/* What is done to one frame. */
typedef struct dw_sim_mutation {
    dw_sim_mutation_kind kind;
    uint64_t frame;
    size_t at, len; /* where (see the kinds) */
    size_t nflip;
    size_t flip_at[DW_SIM_FUZZ_MAX_FLIPS];
    uint8_t flip_xor[DW_SIM_FUZZ_MAX_FLIPS];
    char value[32]; /* number, block_length: the text put in (a long digit string is "9" x 400) */
    char what[200]; /* "frame 17: number \"1.000\" at 0 -> \"NaN\"" */
} dw_sim_mutation;

/* "truncate", "flip", ...; NULL for another value. */
const char *dw_sim_mutation_name(dw_sim_mutation_kind k);
/* The kind named `name` (n bytes), or -1. */
int dw_sim_mutation_kind_of(const char *name, size_t n);

/* Decide frame `frame` (from 1) of connection `conn` in direction `dir`,
 * whose bytes as framed are raw_len long and whose payload is p[0..n):
 * 1 and *m when it is mutated, else 0. */
int dw_sim_fuzz_decide(const dw_sim_fuzz *f, uint64_t seed, int dir, uint64_t conn, uint64_t frame,
                       const uint8_t *p, size_t n, size_t raw_len, dw_sim_mutation *m);

/* The payload with mutation m (flip, number or block_length) applied, into
 * out (cleared first). DW_OK or DW_ENOMEM; other kinds copy p. */
int dw_sim_fuzz_apply(const dw_sim_mutation *m, const uint8_t *p, size_t n, dw_buf *out);

/* The numbers of p[0..n) (an optional sign, digits with an optional
 * fraction, an optional exponent; not part of a word): up to max of them,
 * their starts and lengths; returns how many were found (at most max). */
size_t dw_sim_fuzz_numbers(const uint8_t *p, size_t n, size_t *starts, size_t *lens, size_t max);
/* The first definite-length block of p[0..n) (#, a digit 1 to 9 saying how
 * many length digits follow, the digits), outside double quotes: 1 with
 * the length digits at [*at, *at + *len), or 0. */
int dw_sim_fuzz_block(const uint8_t *p, size_t n, size_t *at, size_t *len);

#endif
