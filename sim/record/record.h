/* devwire-sim --record: what a client and a device said to each other,
 * turned into a script that plays the device.
 *
 * The proxy (proxy.h) hands the recorder every piece of bytes it forwards,
 * with the connection, the direction and the time. At the end the recorder
 * reads each connection's two byte streams with the base script's framing
 * (Telnet commands removed first, for a Telnet script) and builds a
 * conversation (dw_sim_conversation):
 *
 *  - the banner: what the device sent on connect, before the client's
 *    first byte;
 *  - the prompt: the base script's "prompt", or else the text the device
 *    left after its last line end each time the client waited to send its
 *    next request, when it is the same every time (record_prompt.c);
 *  - exchanges: each request frame and the reply frames that came after it
 *    and before the next request was complete; a frame that comes more
 *    than DW_SIM_RECORD_REPLY_GAP_MS after the previous frame of the same
 *    answer (or after the answer's end) is unsolicited, as is one that
 *    comes before any request; the frames of a pipelined batch go to its
 *    requests in order where the number of frames of each can be told
 *    (record_batch.c), else to its last request;
 *  - unsolicited frames, with their times, and the frames of a periodic
 *    series that came while an answer was open (record_periodic.c);
 *  - closes: the device ending the connection right after an answer.
 *
 * dw_sim_record_write (record_write.c) writes a conversation as a script:
 * rules (or steps) from requests to replies, periodic messages, the
 * banner and prompt, the base script's transport and framing. */
#ifndef DW_SIM_RECORD_H
#define DW_SIM_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include <devwire/devwire.h>

#include "script/script.h"

#define DW_SIM_RECORD_REPLY_GAP_MS 100
/* A close (or reset) of the device this soon after the last request's
 * answer (or the request, when unanswered) ends that answer ("then"). */
#define DW_SIM_RECORD_CLOSE_GAP_MS 1000

typedef struct dw_sim_recorder dw_sim_recorder;

/* One request and what answered it. */
typedef struct dw_sim_exchange {
    uint64_t conn;
    uint64_t t_us;         /* when the request was complete */
    uint64_t seq;          /* order of recording (ties in time) */
    dw_sim_bytes request;  /* its payload */
    dw_sim_bytes *replies; /* reply frame payloads, in order */
    size_t nreplies;
    int64_t delay_us; /* from the request to the first reply frame; -1: none */
    size_t stream;    /* its connection's index in dw_sim_conversation.streams */
    size_t out_at;    /* where its answer starts in the device's stream (the bytes
                       * the device had sent when the request was complete; when
                       * it began, if what came in between was its echo) */
    size_t out_end;   /* and where it ends: the device's bytes when the next
                       * request was complete, or the stream's end */
    dw_sim_then then; /* the device ended the connection right after this answer */
    int waited;       /* the client waited before sending it: its first byte came
                       * after the previous request of the connection was complete
                       * (not with it: pipelined) */
} dw_sim_exchange;

/* What the device sent on one connection, for the replay check
 * (dw_sim_record_check). */
typedef struct dw_sim_rec_stream {
    uint64_t conn;
    const uint8_t *data; /* the device's data bytes (borrowed from the recorder) */
    size_t len;
    size_t banner_len; /* bytes before the client's first */
    size_t *skip;      /* unsolicited frames' bytes: [skip[2i], skip[2i+1]) */
    size_t nskip, skipcap;
} dw_sim_rec_stream;

/* A frame the device sent that answered no request. */
typedef struct dw_sim_unsolicited {
    uint64_t conn;
    uint64_t t_us;
    dw_sim_bytes frame;
} dw_sim_unsolicited;

typedef struct dw_sim_conversation {
    dw_sim_bytes banner; /* len 0: none */
    dw_sim_bytes prompt; /* len 0: none */
    dw_sim_exchange *ex; /* in time order, all connections */
    size_t nex, excap;
    dw_sim_unsolicited *un; /* in time order */
    size_t nun, uncap;
    size_t connections;
    char notes[1024];           /* what could not be read (a bad frame), for the description */
    dw_sim_rec_stream *streams; /* one per connection, in order of opening */
    size_t nstreams;
    char prompt_note[512];     /* without a prompt: why none was inferred ("" when no text
                                * was left waiting without a line end) */
    char eol_note[384];        /* a Telnet client ended its lines with CR NUL or a bare CR,
                                * not the base script's request sentinel ("" otherwise) */
    dw_sim_telnet_opts telnet; /* a Telnet device's options: what it said WILL and DO
                                * to last on any connection (set: Telnet) */
} dw_sim_conversation;

void dw_sim_conversation_free(dw_sim_conversation *c);

/* How to write the script. */
typedef struct dw_sim_record_options {
    int as_steps;         /* the ordered conversation as "steps", not "rules" */
    int keep_timing;      /* each rule's (step's) median reply delay as "delay_ms" */
    const char *upstream; /* "HOST:PORT", for the description; may be NULL */
} dw_sim_record_options;

/* A recorder for devices framed as `base` says (borrowed: it must outlive
 * the recorder). NULL when out of memory. */
dw_sim_recorder *dw_sim_recorder_new(const dw_sim_script *base);
/* Accepts NULL. */
void dw_sim_recorder_free(dw_sim_recorder *r);

/* On the loop thread: a connection opened; n bytes went in direction `dir`
 * (DW_SIM_DIR_REQUEST or DW_SIM_DIR_REPLY) as they were on the wire; the
 * connection ended. Times in microseconds, any fixed epoch. Out of memory,
 * the recording stops growing (and says so in the script's description). */
void dw_sim_recorder_open(dw_sim_recorder *r, uint64_t conn, uint64_t now_us);
void dw_sim_recorder_bytes(dw_sim_recorder *r, uint64_t conn, int dir, const uint8_t *p, size_t n,
                           uint64_t now_us);
void dw_sim_recorder_close(dw_sim_recorder *r, uint64_t conn, uint64_t now_us);
/* On the loop thread: direction `dir`'s sender ended its side, cleanly
 * (FIN) or with a reset when `reset` is 1; only the first end of each
 * direction counts. */
void dw_sim_recorder_end(dw_sim_recorder *r, uint64_t conn, int dir, int reset, uint64_t now_us);

/* Once traffic has stopped: the conversation (free it with
 * dw_sim_conversation_free; its streams borrow the recorder's bytes, so
 * free it before the recorder). DW_OK or DW_ENOMEM. */
int dw_sim_recorder_conversation(dw_sim_recorder *r, dw_sim_conversation *out);

/* The script for a conversation, as JSON text formatted for people, into
 * `out` (appended). `base` gives transport and framing. DW_OK or
 * DW_ENOMEM. */
int dw_sim_record_write(const dw_sim_conversation *c, const dw_sim_script *base,
                        const dw_sim_record_options *o, dw_buf *out);

/* The replay check (record_check.c): build an engine from `text` (the
 * script dw_sim_record_write wrote for c), feed it every recorded request
 * in order (one session per connection) and compare what it writes on
 * each connection (banner, answers and prompt, an end after an answer)
 * with what the device sent, unsolicited frames left out. Each mismatch
 * is a line appended to `report` ("exchange 3 (connection 1, request
 * \"GET k\"): the device sent \"...\", the replay sends \"...\"\n"), at most
 * DW_SIM_RECORD_CHECK_LINES of them and then a count; *mismatches gets
 * their number. DW_OK (whatever the verdict), DW_ENOMEM, or DW_ESCRIPT
 * when `text` does not load (the reason in `report`). */
#define DW_SIM_RECORD_CHECK_LINES 10
int dw_sim_record_check(const dw_sim_conversation *c, const char *text, size_t len, dw_buf *report,
                        size_t *mismatches);

#endif
