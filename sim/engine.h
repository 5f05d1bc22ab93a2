/* devwire-sim's engine: the pure decision core, independent of sockets.
 *
 * Given a loaded script, a session (one per connection) and one request
 * payload, the engine decides what the simulated device does: the bytes to
 * write (reply frames already framed with the response framing, then the
 * prompt), a delay before writing, the pieces to write them in and the
 * delay between pieces, a fault, and the state changes (already applied).
 * The server carries the decision out on a real socket; a fuzz target or a
 * unit test calls it with no socket at all:
 *
 *     dw_sim_engine *e;  dw_sim_session *s;  dw_sim_outcome o;
 *     dw_sim_engine_new(script, &e, &err);          // script outlives e
 *     s = dw_sim_session_new(e);
 *     dw_sim_outcome_init(&o);
 *     dw_sim_engine_handle(e, s, req, req_len, &o, &err);  // o.bytes: write these
 *     dw_sim_outcome_free(&o);
 *     dw_sim_session_free(s);
 *     dw_sim_engine_free(e);
 *
 * Matching order: the next expected step is tried first (a match consumes
 * it), then the rules in script order, then the unmatched behaviour. Exact
 * rules are found through a hash table built once (so 100,000 exact rules
 * cost what 10 do); a non-exact rule (prefix, regex) is tried only if it
 * comes before the exact hit, which keeps "the first matching rule wins".
 *
 * State (variables, the step cursor, the turn of each reply list) lives in
 * the engine when the script's scope is "shared", or in each session when it
 * is "connection"; a mutex guards it. Matching reads only the immutable
 * script, so the lock is taken only with steps still to replay or for an
 * action that touches state (a "set", a list of replies, a variable in a
 * reply). A rule whose answer never changes (one literal reply, no set, no
 * fault) is framed once when the engine is built: a hit is a table lookup
 * and one copy. Hit counters for the summary are atomic and count across all
 * sessions; "fault_on": N is the Nth match of that rule or step over the
 * whole run (all connections). A regex is matched on a NUL-terminated copy
 * of the request with REG_STARTEND, so NUL bytes are fine (POSIX "." does
 * not match NUL; a bracket expression such as [^;] does). */
#ifndef DW_SIM_ENGINE_H
#define DW_SIM_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include <devwire/devwire.h>

#include "script.h"

typedef struct dw_sim_engine dw_sim_engine;
typedef struct dw_sim_session dw_sim_session;

/* Build an engine for `script` (borrowed: it must outlive the engine):
 * the exact-match table, the request and response marshallers, the shared
 * state. DW_OK and *out, or DW_ENOMEM / DW_EINVAL (a framing the library
 * cannot build) with `err` set. Free with dw_sim_engine_free (accepts
 * NULL) after every session is freed. */
int dw_sim_engine_new(const dw_sim_script *script, dw_sim_engine **out, dw_error *err);
void dw_sim_engine_free(dw_sim_engine *e);

/* The script, and the marshallers the server reads requests with and frames
 * unsolicited messages with (borrowed from the engine). Thread-safe. */
const dw_sim_script *dw_sim_engine_script(const dw_sim_engine *e);
const dw_marshaller *dw_sim_engine_request_marshaller(const dw_sim_engine *e);
const dw_marshaller *dw_sim_engine_response_marshaller(const dw_sim_engine *e);

/* A session: one connection's view (its own state when the scope is
 * "connection"). NULL when out of memory. A session is used by one request
 * at a time, but dw_sim_engine_periodic may run on it from another thread
 * concurrently (it locks). Free with dw_sim_session_free (accepts NULL). */
dw_sim_session *dw_sim_session_new(dw_sim_engine *e);
void dw_sim_session_free(dw_sim_session *s);
/* 1 once a "hang" fault fired on this session: the device reads requests
 * and never answers again (dw_sim_engine_handle then returns
 * DW_SIM_BY_HUNG with nothing to write). */
int dw_sim_session_hung(const dw_sim_session *s);

/* Who answered a request. */
typedef enum dw_sim_source {
    DW_SIM_BY_STEP,      /* index: the step */
    DW_SIM_BY_RULE,      /* index: the rule */
    DW_SIM_BY_UNMATCHED, /* neither fitted */
    DW_SIM_BY_HUNG,      /* the session hung earlier: ignored */
    DW_SIM_BY_PROFILE,   /* the profile's built-in commands ("scpi") */
} dw_sim_source;

/* What to do with one request. Strings and arrays are borrowed from the
 * script; `bytes` is owned (dw_sim_outcome_free). */
typedef struct dw_sim_outcome {
    dw_sim_source source;
    size_t index;        /* step or rule index (SIZE_MAX otherwise) */
    const char *name;    /* "steps[0]", "rules[3]" (or their "name"), "unmatched", "hung" */
    dw_buf bytes;        /* write these: the framed reply frames then the prompt;
                          * for a garbage fault, the garbage; may be empty */
    size_t nframes;      /* reply frames in `bytes` */
    unsigned delay_ms;   /* sleep this long before writing */
    const size_t *split; /* write `bytes` in pieces of these sizes, the last size
                          * repeating (nsplit == 0: all at once) */
    size_t nsplit;
    unsigned split_delay_ms; /* between pieces */
    dw_sim_fault fault;      /* NONE, CLOSE / RESET (after the delay, write nothing
                              * and close / reset), HANG (write nothing; the session
                              * is now hung), GARBAGE (bytes = the garbage) */
    int close;               /* write `bytes`, then close the connection cleanly
                              * (unmatched "close") */
} dw_sim_outcome;

void dw_sim_outcome_init(dw_sim_outcome *o);
/* Release `bytes` and reset. Accepts NULL. */
void dw_sim_outcome_free(dw_sim_outcome *o);

/* Decide what the device does with the request payload req[0..n) (may hold
 * any bytes; n may be 0). Fills `out` (whose previous contents are
 * replaced), applies "set" state changes and advances steps and reply
 * turns. Returns DW_OK, DW_ENOMEM, or DW_EINVAL when a rendered reply cannot
 * be framed with the response framing (for instance it holds the sentinel):
 * then `err` names the rule and `out` holds the frames before the bad one.
 * Thread-safe across sessions; one call at a time per session. */
int dw_sim_engine_handle(dw_sim_engine *e, dw_sim_session *s, const uint8_t *req, size_t n,
                         dw_sim_outcome *out, dw_error *err);

/* Append the script's banner (rendered with the session's state; sent raw,
 * not framed) to `out`. DW_OK (nothing appended when there is none) or
 * DW_ENOMEM. Thread-safe as dw_sim_engine_handle. */
int dw_sim_engine_banner(dw_sim_engine *e, dw_sim_session *s, dw_buf *out);

/* Append periodic message `i` (0 <= i < script->nperiodic) rendered with the
 * session's state and framed with the response framing to `out`. DW_OK,
 * DW_ENOMEM, or DW_EINVAL (cannot be framed; `err` says why). May run
 * concurrently with dw_sim_engine_handle on the same session. */
int dw_sim_engine_periodic(dw_sim_engine *e, dw_sim_session *s, size_t i, dw_buf *out,
                           dw_error *err);

/* ---- counters for the summary (thread-safe, atomic reads) --------------- */

/* Times rule `i` / step `i` answered a request. */
uint64_t dw_sim_engine_rule_hits(const dw_sim_engine *e, size_t i);
uint64_t dw_sim_engine_step_hits(const dw_sim_engine *e, size_t i);
/* Requests handled, and requests that fitted nothing. */
uint64_t dw_sim_engine_requests(const dw_sim_engine *e);
uint64_t dw_sim_engine_unmatched(const dw_sim_engine *e);
/* Steps that no session reached. */
size_t dw_sim_engine_steps_not_reached(const dw_sim_engine *e);
/* The first few unmatched requests (up to DW_SIM_UNMATCHED_KEEP), for the
 * summary: copies request k (k < the number kept) into `out` (replacing its
 * contents). DW_OK, DW_ENOENT past the end, or DW_ENOMEM. */
#define DW_SIM_UNMATCHED_KEEP 16
int dw_sim_engine_unmatched_sample(dw_sim_engine *e, size_t k, dw_buf *out);

#endif
