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
 * is "connection". A rule whose answer never changes (one literal reply,
 * no set, no fault) is framed once when the engine is built: a hit is a
 * table lookup and one copy. Hit counters for the summary count across all
 * sessions; "fault_on": N is the Nth match of that rule or step over the
 * whole run (all connections).
 *
 * Threads: an engine, its sessions and everything they hold (the state, the
 * counters, the unmatched sample, the Lua state, the generator's draws)
 * belong to one thread, the loop thread of its device (common/loop.h): the
 * server handles requests and sends banners and periodic messages there, and
 * the control API, the totals and the summary reach the engine through
 * dw_sim_loop_call. So the engine takes no lock: a caller on another thread
 * hands its call to the loop. Building an engine before the loop runs, or
 * freeing it after it stopped, is ordered by the hand-over itself.
 *
 * Regexes (PCRE2, compiled and JIT-compiled once at load) are matched on
 * the request's bytes and length as they are (NUL bytes included, no copy),
 * with match data and a match context that belong to the session and a
 * JIT stack that belongs to the calling thread (made at its first JIT
 * match, freed when the thread ends), so that every connection of a loop
 * shares one stack and engines on different threads (a test's, the loop's)
 * share only the immutable compiled pattern. Every match is bounded (the
 * DW_SIM_REGEX_* limits below), so no request can make a pattern backtrack
 * without end: a match cut short by a limit counts as "no match" for that
 * rule or step (matching goes on with the next rule, then the unmatched
 * behaviour), is counted (dw_sim_engine_regex_limit_hits and per rule), and
 * is listed in the outcome, flagged the first time for each rule so that
 * the server logs it once. The engine itself does no I/O. The limits count
 * backtracking, not the bytes each attempt scans: an unanchored pattern
 * that scans ahead from every position without backtracking still costs
 * time quadratic in the request's length (docs/sim.md, "Matching").
 *
 * Lua (engine/lua_sandbox.h; a script with none makes no Lua state and takes none of
 * these paths): each engine has one sandboxed Lua state. A chunk that fails (an error, its
 * instruction budget, the memory cap) makes the request unmatched: what the rule or step changed
 * (sets, assignments, its reply turn, the step cursor) is undone, its match is not counted, and the
 * failure is counted (dw_sim_engine_lua_errors and per rule) and listed in the outcome, flagged the
 * first time for each rule or step so that the server logs it once. */
#ifndef DW_SIM_ENGINE_H
#define DW_SIM_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include <devwire/devwire.h>

#include "script/script.h"

/* Bounds on one regex match: common/regex_limits.h. */
#include "common/regex_limits.h"

typedef struct dw_sim_engine dw_sim_engine;
typedef struct dw_sim_session dw_sim_session;

/* Build an engine for `script` (borrowed: it must outlive the engine):
 * the exact-match table, the request and response marshallers, the shared
 * state. DW_OK and *out, or DW_ENOMEM / DW_EINVAL (a framing the library
 * cannot build) with `err` set. Free with dw_sim_engine_free (accepts
 * NULL) after every session is freed. */
int dw_sim_engine_new(const dw_sim_script *script, dw_sim_engine **out, dw_error *err);
void dw_sim_engine_free(dw_sim_engine *e);

/* The generator for a rule's "probability" and "delay" draws (netfault.h;
 * borrowed, must outlive the engine). Without one a fault fires on every
 * match it is due and the delay is delay_ms (the proxy draws for itself).
 * The generator is not locked: draws come from one thread (the loop). */
void dw_sim_engine_set_rng(dw_sim_engine *e, dw_sim_rng *r);

/* The script, and the marshallers the server reads requests with and frames
 * unsolicited messages with (borrowed from the engine). Thread-safe. */
const dw_sim_script *dw_sim_engine_script(const dw_sim_engine *e);
const dw_marshaller *dw_sim_engine_request_marshaller(const dw_sim_engine *e);
const dw_marshaller *dw_sim_engine_response_marshaller(const dw_sim_engine *e);

/* A session: one connection's view (its own state when the scope is
 * "connection"). NULL when out of memory. Used on its engine's thread (see
 * "Threads" above). Free with dw_sim_session_free (accepts NULL). */
dw_sim_session *dw_sim_session_new(dw_sim_engine *e);
void dw_sim_session_free(dw_sim_session *s);
/* 1 once a "hang" fault fired on this session: the device reads requests
 * and never answers again (dw_sim_engine_handle then returns
 * DW_SIM_BY_HUNG with nothing to write). */
int dw_sim_session_hung(const dw_sim_session *s);

/* The SCPI status byte session s sees now, as *STB? would read it, with
 * MAV set when `mav` (a response is waiting where the transport keeps its
 * output queue): DW_OK, or DW_ENOENT when the script has no SCPI profile.
 * Reads only: no request is counted. On the engine's thread. */
int dw_sim_engine_status_byte(const dw_sim_engine *e, const dw_sim_session *s, int mav,
                              uint8_t *stb);

/* Who answered a request. */
typedef enum dw_sim_source {
    DW_SIM_BY_STEP,      /* index: the step */
    DW_SIM_BY_RULE,      /* index: the rule */
    DW_SIM_BY_UNMATCHED, /* neither fitted */
    DW_SIM_BY_HUNG,      /* the session hung earlier: ignored */
    DW_SIM_BY_PROFILE,   /* the profile's built-in commands ("scpi"), a property's
                          * command ("properties") or "on_error" */
} dw_sim_source;

/* A regex that a limit cut short on this request (it counted as no match). */
typedef struct dw_sim_limit_hit {
    dw_sim_source source; /* DW_SIM_BY_STEP or DW_SIM_BY_RULE */
    size_t index;         /* the step or rule */
    const char *name;     /* "rules[3]" (or its "name"), borrowed from the script */
    int first;            /* 1 for the first limit hit of this rule or step in the
                           * engine's life (log it; later ones are only counted) */
} dw_sim_limit_hit;

/* A chunk of Lua that failed on this request: a runtime error, or it
 * overran its instruction budget or the memory cap (engine/lua_sandbox.h). The
 * request was then handled as unmatched, and nothing the failed rule or step
 * changed is kept. */
typedef struct dw_sim_lua_failure {
    dw_sim_source source; /* DW_SIM_BY_STEP or DW_SIM_BY_RULE */
    size_t index;         /* the step or rule */
    const char *name;     /* "rules[3]" (or its "name"), borrowed from the script;
                           * NULL: no chunk failed */
    int first;            /* 1 for the first failure of this rule or step in the
                           * engine's life (log it; later ones are only counted) */
    const char *message;  /* "rules[3].if:1: instruction budget (1000000) exceeded":
                           * borrowed from the session until its next request */
} dw_sim_lua_failure;

/* What to do with one request. Strings and arrays are borrowed from the
 * script; `bytes` and `limits` are owned (dw_sim_outcome_free). */
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
    unsigned split_delay_ms;  /* between pieces */
    dw_sim_fault fault;       /* NONE, CLOSE / RESET (after the delay, write nothing
                               * and close / reset), HANG (write nothing; the session
                               * is now hung), GARBAGE (bytes = the garbage), DROP
                               * (write nothing, go on), DUPLICATE (bytes = the reply,
                               * to be written twice) */
    dw_sim_then close;        /* write `bytes`, then end the connection: cleanly
                               * (FIN) or with a reset (RST): the action's "then"
                               * (unmatched "close" is "then": "close") */
    dw_sim_limit_hit *limits; /* regexes cut short by a limit, in the order tried */
    size_t nlimits;
    size_t limits_cap;
    dw_sim_lua_failure lua; /* lua.name != NULL: a chunk of Lua failed */
} dw_sim_outcome;

void dw_sim_outcome_init(dw_sim_outcome *o);
/* Release `bytes` and `limits` and reset. Accepts NULL. */
void dw_sim_outcome_free(dw_sim_outcome *o);

/* Decide what the device does with the request payload req[0..n) (may hold
 * any bytes; n may be 0). Fills `out` (whose previous contents are
 * replaced), applies "set" state changes and advances steps and reply
 * turns. Returns DW_OK, DW_ENOMEM, or DW_EINVAL when a rendered reply cannot
 * be framed with the response framing (for instance it holds the sentinel):
 * then `err` names the rule and `out` holds the frames before the bad one.
 * On the engine's thread (see "Threads" above). */
int dw_sim_engine_handle(dw_sim_engine *e, dw_sim_session *s, const uint8_t *req, size_t n,
                         dw_sim_outcome *out, dw_error *err);

/* The same at time `now` (seconds; only differences count): the time the
 * properties' ramps move by and Lua's `now`. dw_sim_engine_handle reads the
 * engine's clock (below) when the script has a ramp or Lua, else passes 0.
 * Tests and fuzz targets call this to be deterministic. */
int dw_sim_engine_handle_at(dw_sim_engine *e, dw_sim_session *s, const uint8_t *req, size_t n,
                            double now, dw_sim_outcome *out, dw_error *err);

/* The one clock of the engine, which dw_sim_engine_handle, the banner and
 * periodic messages read: clock(arg), in seconds; NULL restores the default
 * (monotonic seconds since the engine was built). Call before serving (not
 * thread-safe). */
void dw_sim_engine_set_clock(dw_sim_engine *e, double (*clock)(void *arg), void *arg);

/* Seed the engine's randomness: the PRNG the properties' noise draws from
 * (every session of the engine) and Lua's math.random. An engine starts
 * seeded with DW_SIM_DEFAULT_SEED, so runs repeat unless a seed is given.
 * On the engine's thread. */
#define DW_SIM_DEFAULT_SEED 0x6465767769726555ULL
void dw_sim_engine_seed(dw_sim_engine *e, uint64_t seed);

/* The properties' values session s sees (NULL when the script has none),
 * for code that runs inside the engine (a script's code): read and set them by name with
 * dw_sim_prop_find, dw_sim_prop_get and dw_sim_prop_set (model/props.h), at the request's time. */
dw_sim_props_state *dw_sim_session_props(dw_sim_session *s);

/* Append the script's banner (rendered with the session's state; sent raw,
 * not framed) to `out`. DW_OK (nothing appended when there is none) or
 * DW_ENOMEM. On the engine's thread, as dw_sim_engine_handle. */
int dw_sim_engine_banner(dw_sim_engine *e, dw_sim_session *s, dw_buf *out);

/* Append periodic message `i` (0 <= i < script->nperiodic) rendered with the
 * session's state and framed with the response framing to `out`. DW_OK,
 * DW_ENOMEM, or DW_EINVAL (cannot be framed; `err` says why). On the
 * engine's thread, between two requests of the session. */
int dw_sim_engine_periodic(dw_sim_engine *e, dw_sim_session *s, size_t i, dw_buf *out,
                           dw_error *err);

/* ---- Lua (engine/lua_sandbox.h): no effect on an engine whose script has none ------ */

/* The instruction budget of one evaluation (at least 1) and the memory cap
 * of the engine's Lua state (DW_SIM_LUA_BUDGET and DW_SIM_LUA_MEMORY_CAP by
 * default). On the engine's thread. */
void dw_sim_engine_lua_limits(dw_sim_engine *e, uint32_t instructions, size_t memory);
/* The time of one evaluation in nanoseconds (at least 1; DW_SIM_LUA_DEADLINE_NS,
 * 10 ms, by default): past it the chunk fails as over its budget. On the
 * engine's thread. */
void dw_sim_engine_lua_deadline(dw_sim_engine *e, uint64_t ns);
/* Bytes the engine's Lua state holds; 0 when the script has no Lua (and no
 * Lua state was made). On the engine's thread. */
size_t dw_sim_engine_lua_memory(dw_sim_engine *e);

/* ---- counters for the summary (on the engine's thread: the summary and the
 * totals read them through dw_sim_loop_call) ------------------------------ */

/* Times rule `i` / step `i` answered a request. */
uint64_t dw_sim_engine_rule_hits(const dw_sim_engine *e, size_t i);
uint64_t dw_sim_engine_step_hits(const dw_sim_engine *e, size_t i);
/* Regex matches that a limit cut short: in all, for rule `i`, for step `i`. */
uint64_t dw_sim_engine_regex_limit_hits(const dw_sim_engine *e);
uint64_t dw_sim_engine_rule_limit_hits(const dw_sim_engine *e, size_t i);
uint64_t dw_sim_engine_step_limit_hits(const dw_sim_engine *e, size_t i);
/* Chunks of Lua that failed (each request then handled as unmatched): in
 * all, for rule `i`, for step `i`. */
uint64_t dw_sim_engine_lua_errors(const dw_sim_engine *e);
uint64_t dw_sim_engine_rule_lua_errors(const dw_sim_engine *e, size_t i);
uint64_t dw_sim_engine_step_lua_errors(const dw_sim_engine *e, size_t i);
/* Evaluations of a "status" condition whose Lua failed (the bit was then
 * false); not among the failures above. */
uint64_t dw_sim_engine_status_lua_errors(const dw_sim_engine *e);
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

/* ---- run-time control (the control API, control.h) ---------------------- */

/* Variable i (0 <= i < script->nvars) of a session's state, or of the
 * engine's shared state when ss is NULL: copy it into `out`, or replace it
 * with p[0..n). DW_OK, DW_ENOENT (no such variable) or DW_ENOMEM. On the
 * engine's thread (the control API calls them through dw_sim_loop_call). */
int dw_sim_engine_var_get(dw_sim_engine *e, dw_sim_session *ss, size_t i, dw_buf *out);
int dw_sim_engine_var_set(dw_sim_engine *e, dw_sim_session *ss, size_t i, const uint8_t *p,
                          size_t n);
/* Call fn(props, now, arg) on the properties of a session's state (ss NULL:
 * the engine's shared state), `now` read from the engine's clock: fn reads
 * and sets them with dw_sim_prop_get and dw_sim_prop_set (model/props.h)
 * and must not call back into the engine. fn's result, or DW_ENOENT when
 * the script has no properties. On the engine's thread. */
int dw_sim_engine_with_props(dw_sim_engine *e, dw_sim_session *ss,
                             int (*fn)(dw_sim_props_state *props, double now, void *arg),
                             void *arg);
/* The next expected step of a session (ss NULL: the shared state). */
size_t dw_sim_engine_next_step(dw_sim_engine *e, dw_sim_session *ss);
/* Back to the start: the shared state (variables to their initial values,
 * properties to their defaults with ramps restarted, as *RST does; the step
 * cursor, reply turns, SCPI status) and, unless keep_counters, every
 * counter and the unmatched sample. Sessions with their own state are reset with
 * dw_sim_session_reset. DW_OK or DW_ENOMEM. */
int dw_sim_engine_reset(dw_sim_engine *e, int keep_counters);
/* A session's own state (connection scope) back to the start as above, and
 * no longer hung. DW_OK or DW_ENOMEM. */
int dw_sim_session_reset(dw_sim_session *s);
/* From now on the session reads requests and never answers (a "hang"
 * fault decided outside the engine). */
void dw_sim_session_hang(dw_sim_session *s);

#endif
