/* devwire-sim's outcome player: carries out what the engine decided for a
 * request (dw_sim_outcome, engine.h) on any transport: the delay before the
 * reply, the fault (close, reset, hang, drop, garbage, duplicate), the
 * reply written whole or in pieces with pauses between them, the end of
 * the connection after it ("then": close or reset), and the transcript's
 * "fault" and "out" events. The transport supplies its
 * writing, its ending and its reactions through a small table; the delay
 * and the pauses are the transport's timer. On the loop thread only. */
#ifndef DW_SIM_OUTCOME_H
#define DW_SIM_OUTCOME_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "engine/engine.h"
#include "device/server_int.h"

typedef enum {
    DW_SIM_PLAY_IDLE,   /* no reply under way */
    DW_SIM_PLAY_DELAY,  /* waiting for the reply's delay */
    DW_SIM_PLAY_PIECES, /* writing a reply in pieces */
} dw_sim_play_phase;

typedef struct dw_sim_player dw_sim_player;

typedef struct dw_sim_player_ops {
    /* Write bytes to the peer as the transport wants them (never 0 bytes). */
    void (*write)(dw_sim_player *p, const uint8_t *d, size_t n);
    /* End the connection: cleanly, or with RST when reset. NULL: the
     * transport has no connection to end, and "close" and "reset" answer
     * nothing (as "drop"). Also called once a reply is out when the
     * outcome says "then" (dw_sim_outcome.close), before `done`: the
     * transport must keep the player alive until `done`. */
    void (*end)(dw_sim_player *p, int reset);
    /* 1 once the connection is closing: no more pieces. NULL: never. */
    int (*closing)(dw_sim_player *p);
    /* When the delay is over, before anything is done: 0 to go on, else
     * the transport refused the outcome (and dealt with it). NULL: go on. */
    int (*admit)(dw_sim_player *p);
    /* The request is over: its reply is out (replied, after the
     * transcript's "out"), or a fault answered nothing. The transport may
     * end or free the player here: the player touches nothing after. */
    void (*done)(dw_sim_player *p, int replied);
    /* After the player acted from its timer (NULL: nothing to do). */
    void (*resumed)(dw_sim_player *p);
    /* Datagrams: the fault is acted on when decided (dw__sim_play_fault,
     * before the delay), and a duplicate's copy goes out with the reply
     * only when the reply is not split (one more datagram). Otherwise the
     * fault is acted on after the delay and a duplicate's copy is written
     * first, whole, before the reply. */
    int datagrams;
} dw_sim_player_ops;

struct dw_sim_player {
    const dw_sim_player_ops *ops;
    void *owner; /* the transport's connection, peer or line */
    dw_sim_server *srv;
    uint64_t id;        /* the connection's number in the transcript */
    uv_timer_t *timer;  /* the transport's (its data must be the player); NULL
                         * when the player never waits */
    dw_sim_outcome out; /* what to carry out (the transport's engine fills it) */
    dw_sim_play_phase phase;
    size_t at, k; /* the reply in pieces: next byte, next piece */
};

/* Set up p (its outcome initialized) / release its outcome. */
void dw__sim_player_init(dw_sim_player *p, const dw_sim_player_ops *ops, void *owner,
                         dw_sim_server *s, uv_timer_t *timer);
void dw__sim_player_free(dw_sim_player *p);

/* Ask the engine of generation g about request req[0..n) (session sess,
 * connection p->id) into p->out, then what every transport does with the
 * decision: the control API's hook (with *asked_ns = now, uv_hrtime, when
 * asked_ns is not NULL) and the transcript's "in". The engine's result
 * (the outcome is usable but for DW_ENOMEM; `err` says why). */
int dw__sim_decide(dw_sim_player *p, sim_gen *g, dw_sim_session *sess, const uint8_t *req, size_t n,
                   uint64_t *asked_ns, dw_error *err);

/* Carry p->out out: after its delay (a timer), the fault and the reply. */
void dw__sim_play(dw_sim_player *p);
/* The same, always through the timer (a datagram's reply that waits). */
void dw__sim_play_later(dw_sim_player *p);
/* The fault alone (datagrams call it when the outcome is decided): the
 * transcript's "fault" event and what the fault does. 1 when the outcome
 * ends there (nothing to write), 0 when a reply follows. */
int dw__sim_play_fault(dw_sim_player *p);

#endif
