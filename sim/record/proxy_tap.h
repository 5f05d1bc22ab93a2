/* devwire-sim's fault proxy, the frames of its transcript: a copy of one
 * direction's bytes read with the faults script's framing by a decoder of
 * its own, only to write each frame's payload to the transcript ("in" for
 * the client's requests, "out" for the device's replies). The bytes
 * themselves go on as they came, at once: a tap never holds them back.
 * On the loop thread. */
#ifndef DW_SIM_PROXY_TAP_H
#define DW_SIM_PROXY_TAP_H

#include <stddef.h>
#include <stdint.h>

#include <devwire/devwire.h>

#include "observe/transcript.h"
#include "script/script.h"

typedef struct dw__sim_tap {
    dw_decoder *dec; /* NULL: no transcript, the tap does nothing */
    dw_sim_transcript *tr;
    const dw_sim_bytes *prompt; /* between frames, an event of its own; NULL: none */
    size_t pmatch;              /* the prompt's bytes seen so far, between frames */
    uint64_t conn;
    const char *dir; /* "in" or "out" */
    dw_buf frame;
} dw__sim_tap;

/* Tap with framing `m` (borrowed, must outlive the tap) into `tr` (NULL:
 * the tap does nothing), as events `dir` of connection `conn`. DW_OK or
 * DW_ENOMEM. */
int dw__sim_tap_init(dw__sim_tap *t, const dw_marshaller *m, dw_sim_transcript *tr,
                     const dw_sim_bytes *prompt, uint64_t conn, const char *dir);
/* The next bytes of the direction: an event per frame they complete; a
 * frame the framing refuses is written as it came, with a "note" saying
 * why, and framing starts again after it. */
void dw__sim_tap_feed(dw__sim_tap *t, const uint8_t *p, size_t n);
/* The direction ended cleanly: a frame under way is written as it came,
 * with a "note". */
void dw__sim_tap_finish(dw__sim_tap *t);
void dw__sim_tap_free(dw__sim_tap *t);

#endif
