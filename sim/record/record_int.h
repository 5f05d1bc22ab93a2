/* devwire-sim --record, internal: the recorded streams, which record.c
 * (recording, pairing), record_prompt.c (prompt inference),
 * record_periodic.c (periodic frames inside answers) and record_batch.c
 * (pipelined answers) share. On the loop thread, or after it stopped. */
#ifndef DW_SIM_RECORD_INT_H
#define DW_SIM_RECORD_INT_H

#include <stddef.h>
#include <stdint.h>

#include <devwire/devwire.h>
#include <devwire/telnet.h>

#include "record/record.h"

/* A piece of bytes as it arrived: after it, stream[dir] is `end` long. */
typedef struct rec_event {
    uint64_t t_us;
    size_t end;
    int dir;
} rec_event;

typedef struct rec_conn {
    uint64_t id;
    dw_telnet *tn[2]; /* Telnet scripts: commands leave, data stays */
    dw_buf stream[2]; /* data bytes of each direction */
    rec_event *ev;
    size_t nev, evcap;
    int ended[2];       /* each direction's sender ended its side: 1 FIN, 2 RST */
    int first_end;      /* the direction that ended first, or -1 */
    uint64_t end_us[2]; /* when */
} rec_conn;

/* One frame of a stream: its payload, the event that completed it, its
 * bytes in the stream. */
typedef struct rframe {
    dw_sim_bytes payload;
    size_t ev;         /* index of the event that completed it */
    size_t start, end; /* [start, end) of the stream */
    int is_prompt;     /* not a frame: the prompt, which ends an answer */
} rframe;

typedef struct rframes {
    rframe *f;
    size_t n, cap;
    int prompts; /* prompts skipped */
} rframes;

/* ---- record_prompt.c ---- */

/* The device's stream length when event `ev` arrived (bytes of events
 * before it). */
size_t dw__rec_reply_at(const rec_conn *c, size_t ev);

/* p[0..n) for a message: in double quotes, C escapes (\r \n \t \" \\ \xNN),
 * cut after `max` bytes with "..." after the quote; NUL-terminated in
 * out[0..outlen). */
void dw__rec_escape(const uint8_t *p, size_t n, size_t max, char *out, size_t outlen);

/* A console's prompt from the recorded streams (rq[i]:
 * connection i's request frames): the text the device left without a line
 * end each time it waited for the client, the same every time. DW_OK with
 * *out set (len 0: none; then `why`, if not empty, says why none could be
 * inferred), or DW_ENOMEM. Only for a sentinel response framing. */
int dw__rec_infer_prompt(rec_conn *const *conns, size_t n, const rframes *rq,
                         const dw_sim_framing *resp, dw_sim_bytes *out, char *why, size_t whylen);

/* ---- record_periodic.c ---- */

/* What a device frame of a connection is, once paired: part of an answer,
 * unsolicited (no answer open), or a frame of a periodic series (part of
 * no answer, whenever it came). */
enum { DW__REC_ANSWER, DW__REC_UNSOLICITED, DW__REC_PERIODIC };

/* Regular intervals: each of iv[0..n) (sorted here) within a quarter of
 * their median, or DW__REC_REGULAR_MIN_MS, of it. 1 when they are (and
 * the median, *period, is 1 ms or more), else 0. */
#define DW__REC_REGULAR_MIN_MS 20
int dw__rec_regular(uint64_t *iv, size_t n, uint64_t *period);

/* Bytes in order: by content, then length (memcmp's sign). */
int dw__rec_cmp_bytes(const dw_sim_bytes *a, const dw_sim_bytes *b);

/* Connection c's device frames rp (its requests rq), with kind[i] from a
 * first pairing (DW__REC_ANSWER or DW__REC_UNSOLICITED): the frames of
 * each periodic series (record_periodic.c says which), unsolicited or
 * inside answers, become DW__REC_PERIODIC. DW_OK or DW_ENOMEM. */
int dw__rec_periodic_in_answers(const rec_conn *c, const rframes *rq, const rframes *rp,
                                unsigned char *kind);

/* ---- record_batch.c ---- */

/* The answer frames of a batch of requests the client sent without waiting
 * (no prompt): exchanges [first, first + n) of the conversation, m frames
 * given to the last one while pairing, their times in t_us (n >= 2). */
typedef struct rec_batch {
    size_t first, n, m;
    uint64_t *t_us;
} rec_batch;

typedef struct rec_batches {
    rec_batch *b;
    size_t n, cap;
} rec_batches;

/* Note a batch whose m frames (times t[0..m)) all went to its last
 * exchange. DW_OK or DW_ENOMEM. */
int dw__rec_batch_add(rec_batches *bs, size_t first, size_t n, const uint64_t *t, size_t m);

/* Once every connection is paired (cv->ex not yet sorted): the frames of
 * each batch of two or more requests go to its requests by arrival order
 * where the counts of frames can be decided (record_batch.c says how),
 * else they stay with its last request. DW_OK or DW_ENOMEM. */
int dw__rec_batches_settle(const rec_batches *bs, dw_sim_conversation *cv);
void dw__rec_batches_free(rec_batches *bs);

#endif
