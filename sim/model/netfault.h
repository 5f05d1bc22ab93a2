/* devwire-sim's network faults: what a bad link does to bytes, whatever
 * they mean (Toxiproxy's "toxics"), and the random draws behind them.
 *
 * A fault list (dw_sim_netfaults) holds named faults, each on one
 * direction of a connection (requests: client to device; replies: device
 * to client): latency with jitter, a bandwidth limit, a slicer (small
 * pieces, small pauses), limit_data (close after N bytes), slow_close
 * (delay the close) and timeout (stop passing data, close after T). Each
 * has a probability: when a connection opens, each fault is drawn once for
 * it (Toxiproxy's toxicity), and a fault added at run time is drawn by the
 * open connections when it is added (dw_sim_shaper_take). Two faults
 * concern the listener: refuse new connections for a window, and drop
 * every connection at a moment.
 *
 * Scripts declare them under "network" (docs/sim.md, "Network faults");
 * dw_sim_netfaults_add and dw_sim_netfaults_remove change a list at run
 * time (by name), which is how a control interface plugs in.
 *
 * Randomness comes from a dw_sim_rng, a small seeded generator: the
 * process's --seed, mixed with the connection's number, seeds each
 * connection, so a run with the same seed and the same traffic makes the
 * same draws, however the connections interleave. Nothing here reads a
 * clock: times come in as arguments. */
#ifndef DW_SIM_NETFAULT_H
#define DW_SIM_NETFAULT_H

#include <stddef.h>
#include <stdint.h>

#include <devwire/devwire.h>

/* ---- random draws ---------------------------------------------------------- */

typedef struct dw_sim_rng {
    uint64_t s[4]; /* xoshiro256** */
} dw_sim_rng;

/* Seed from `seed` and a stream number (a connection's id): the same pair
 * gives the same sequence. */
void dw_sim_rng_seed(dw_sim_rng *r, uint64_t seed, uint64_t stream);
uint64_t dw_sim_rng_next(dw_sim_rng *r);
/* Uniform in [0, 1). */
double dw_sim_rng_unit(dw_sim_rng *r);
/* 1 with probability p (p >= 1: always, p <= 0: never; no draw is made
 * for either, so a certain fault does not shift the sequence). */
int dw_sim_rng_chance(dw_sim_rng *r, double p);
/* A seed from the system's entropy (for a run without --seed). */
uint64_t dw_sim_rng_entropy(void);

/* A delay distribution, in milliseconds. */
typedef enum dw_sim_dist {
    DW_SIM_DIST_FIXED,     /* a */
    DW_SIM_DIST_UNIFORM,   /* from a to b */
    DW_SIM_DIST_NORMAL,    /* mean a, standard deviation b (clipped at 0) */
    DW_SIM_DIST_LOGNORMAL, /* median a, sigma b (of the underlying normal) */
} dw_sim_dist;

typedef struct dw_sim_delay {
    dw_sim_dist dist;
    double a, b;
} dw_sim_delay;

/* One draw, in whole milliseconds, at most 3600000. */
unsigned dw_sim_delay_draw(const dw_sim_delay *d, dw_sim_rng *r);

/* ---- the fault list ---------------------------------------------------------- */

typedef enum dw_sim_toxic_kind {
    DW_SIM_TOXIC_LATENCY,    /* delay: each chunk waits a draw of `delay` (order kept) */
    DW_SIM_TOXIC_BANDWIDTH,  /* rate: bytes per second */
    DW_SIM_TOXIC_SLICER,     /* cut into pieces of avg_size +- size_variation bytes,
                              * pausing up to pause_ms (uniform) between them */
    DW_SIM_TOXIC_LIMIT_DATA, /* bytes: close the connection once this many passed */
    DW_SIM_TOXIC_SLOW_CLOSE, /* ms: a close in this direction waits this long */
    DW_SIM_TOXIC_TIMEOUT,    /* ms: pass no data; close after ms (0: never) */
    DW_SIM_TOXIC_RESET_PEER, /* ms: reset both sides (RST) this long after the connection opens */
    DW_SIM_TOXIC_FUZZ,       /* fuzz: mutate frames (model/fuzz.h) */
    DW_SIM_TOXIC_NKINDS
} dw_sim_toxic_kind;

/* Directions: what the client sends, what the device sends. */
#define DW_SIM_DIR_REQUEST 0
#define DW_SIM_DIR_REPLY   1

#define DW_SIM_TOXIC_NAME_MAX 48

#define DW_SIM_FUZZ_MAX_FRAMES 16

/* A "fuzz" fault's settings (docs/sim.md, "Network faults"; what it does
 * to a frame is model/fuzz.h's). */
typedef struct dw_sim_fuzz {
    unsigned mutations;       /* bit (1 << dw_sim_mutation_kind) for each kind drawn from; 0: all */
    double frame_probability; /* the chance of each frame (when every is 0) */
    uint64_t every;           /* every Nth frame (0: by frame_probability) */
    uint64_t after_frames;    /* frames passed untouched first */
    uint64_t frames[DW_SIM_FUZZ_MAX_FRAMES]; /* only these frames (nframes 0: any) */
    size_t nframes;
    uint64_t connection;     /* only this connection (0: any) */
    unsigned split_delay_ms; /* the pause of a split */
} dw_sim_fuzz;

typedef struct dw_sim_toxic {
    char name[DW_SIM_TOXIC_NAME_MAX]; /* unique in its list ("reply.latency") */
    dw_sim_toxic_kind kind;
    int direction;                   /* DW_SIM_DIR_REQUEST or DW_SIM_DIR_REPLY */
    double probability;              /* per connection, 0 to 1 (1: every connection) */
    dw_sim_delay delay;              /* LATENCY */
    uint64_t rate;                   /* BANDWIDTH, bytes per second (>= 1) */
    size_t avg_size, size_variation; /* SLICER (avg_size >= 1) */
    unsigned pause_ms;               /* SLICER */
    uint64_t bytes;                  /* LIMIT_DATA */
    unsigned ms;                     /* SLOW_CLOSE, TIMEOUT, RESET_PEER */
    dw_sim_fuzz fuzz;                /* FUZZ */
    int new_only;                    /* added at run time: connections opened afterwards only */
    /* Which fault a connection took, for its removal: numbered by whoever
     * holds the list, never twice (0: not numbered). */
    uint64_t serial;
} dw_sim_toxic;

typedef struct dw_sim_netfaults {
    dw_sim_toxic *toxics;
    size_t n, cap;
    /* "refuse_connections": refuse (accept and close at once) connections
     * that arrive from refuse_after_ms to refuse_after_ms + refuse_for_ms
     * after the start; refuse_for_ms 0: none. */
    uint64_t refuse_after_ms, refuse_for_ms;
    /* "disconnect_all": drop every open connection this long after the
     * start, and again every disconnect_every_ms (0: once); 0 for both:
     * never. */
    uint64_t disconnect_after_ms, disconnect_every_ms;
} dw_sim_netfaults;

/* Add a copy of *t. DW_OK, DW_EINVAL (its name is already in the list, or
 * its values are out of range; `err` says which) or DW_ENOMEM. */
int dw_sim_netfaults_add(dw_sim_netfaults *l, const dw_sim_toxic *t, dw_error *err);
/* Remove the fault named `name`: DW_OK or DW_ENOENT. */
int dw_sim_netfaults_remove(dw_sim_netfaults *l, const char *name);
/* The fault named `name`, or NULL. */
const dw_sim_toxic *dw_sim_netfaults_find(const dw_sim_netfaults *l, const char *name);
/* A deep copy (NULL in, NULL out); *out NULL when out of memory. */
int dw_sim_netfaults_copy(const dw_sim_netfaults *l, dw_sim_netfaults **out);
/* Free the list and its faults. Accepts NULL. */
void dw_sim_netfaults_free(dw_sim_netfaults *l);
/* "latency", "bandwidth", ... */
const char *dw_sim_toxic_kind_name(dw_sim_toxic_kind k);

/* A rule's own network keys (the rule's "direction", "probability" and
 * "delay"); a rule without any has none (NULL). */
typedef struct dw_sim_rule_net {
    int direction;      /* DW_SIM_DIR_REQUEST (default) or DW_SIM_DIR_REPLY (--proxy) */
    double probability; /* of its fault, per match; 1 by default */
    int has_delay;
    dw_sim_delay delay; /* "delay": drawn per match, in place of delay_ms */
} dw_sim_rule_net;

/* ---- the faults of one connection -------------------------------------------- */

/* What one direction of one connection does, drawn when it opens. */
typedef struct dw_sim_shaper {
    int latency, bandwidth, slicer, limit, slow_close, timeout, reset_peer, fuzz; /* drawn */
    dw_sim_delay delay;
    uint64_t rate;
    size_t avg_size, size_variation;
    unsigned pause_ms;
    uint64_t limit_bytes, passed; /* limit_data, and bytes passed so far */
    unsigned close_ms, timeout_ms, reset_ms;
    dw_sim_fuzz fz;
    uint64_t taken[DW_SIM_TOXIC_NKINDS]; /* the serial of the fault of each kind in effect */
    uint64_t last_due;                   /* microseconds: no piece leaves before the one before */
    uint64_t free_at;                    /* bandwidth: when the line is free again (microseconds) */
} dw_sim_shaper;

/* Draw direction `dir`'s faults of `l` (may be NULL) for one connection. */
void dw_sim_shaper_init(dw_sim_shaper *sh, const dw_sim_netfaults *l, int dir, dw_sim_rng *r);
/* Draw fault t for a connection whose direction t->direction has shaper
 * sh: it takes t's settings when drawn (t->probability), in place of the
 * fault of that kind it had; 1 when drawn. Faults added at run time reach
 * open connections this way (a limit_data counts from then). */
int dw_sim_shaper_take(dw_sim_shaper *sh, const dw_sim_toxic *t, dw_sim_rng *r);
/* Forget fault t (removed at run time) if it is the one of its kind in
 * effect (by its serial): 1 when it was, 0 when the shaper never took it
 * or took another of its kind since. */
int dw_sim_shaper_drop(dw_sim_shaper *sh, const dw_sim_toxic *t);
/* Whether anything acts on the bytes (latency, bandwidth, slicer, timeout,
 * limit_data): when not, they can pass as they come. */
int dw_sim_shaper_active(const dw_sim_shaper *sh);

/* Plan the n bytes that arrive at `now_us` (microseconds, any epoch):
 * emit(user, off, len, due_us) is called for each piece in order, the
 * pieces covering [0, return value) with due times that never go back.
 * The return value is less than n when limit_data is reached: *close is
 * then 1 (close once the pieces are out). Under timeout nothing passes (0;
 * the caller closes after timeout_ms). */
size_t dw_sim_shaper_plan(dw_sim_shaper *sh, dw_sim_rng *r, uint64_t now_us, size_t n,
                          void (*emit)(void *user, size_t off, size_t len, uint64_t due_us),
                          void *user, int *close);

#endif
