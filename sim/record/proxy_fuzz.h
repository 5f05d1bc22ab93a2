/* devwire-sim's fault proxy, its frame fuzzer on a connection: what a
 * "fuzz" network fault (model/fuzz.h) makes of each frame of a direction,
 * as pieces for the leg to send, and the note of each mutation in the
 * transcript, the journal and the log. On the loop thread. */
#ifndef DW_SIM_PROXY_FUZZ_H
#define DW_SIM_PROXY_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include <devwire/devwire.h>

#include "model/fuzz.h"
#include "record/proxy_int.h"

/* One direction of one connection, as the fuzz sees it. */
typedef struct dw__sim_fuzz_leg {
    uint64_t frames; /* whole frames seen, the last one's number */
    dw_buf held;     /* a swapped frame, sent after the next */
    int holding;
    dw_buf out, release; /* a mutated frame; the swapped frame on its way out */
} dw__sim_fuzz_leg;

/* Bytes to send, `delay_ms` from now. */
typedef struct dw__sim_fuzz_piece {
    const uint8_t *p;
    size_t n;
    unsigned delay_ms;
} dw__sim_fuzz_piece;

#define DW__SIM_FUZZ_PIECES 4

/* Frame raw[0..rn) (payload[0..pn)) of direction `dir` of connection
 * `conn` through the fuzz f: the pieces to send in order (borrowed until
 * the next call on fl), their number. A mutation is noted (transcript,
 * journal, log) here. */
size_t dw__sim_fuzz_frame(dw_sim_proxy *p, dw__sim_fuzz_leg *fl, const dw_sim_fuzz *f, int dir,
                          uint64_t conn, const uint8_t *raw, size_t rn, const uint8_t *payload,
                          size_t pn, dw__sim_fuzz_piece out[DW__SIM_FUZZ_PIECES]);
/* The direction ends: a frame still held goes out (1 and *out), else 0. */
int dw__sim_fuzz_flush(dw__sim_fuzz_leg *fl, dw__sim_fuzz_piece *out);
void dw__sim_fuzz_leg_free(dw__sim_fuzz_leg *fl);

#endif
