/* devwire-sim's engine, inside: what engine.c, engine_scpi.c,
 * engine_rules.c, engine_status.c and engine_state.c share. Not part of
 * the engine's API (engine.h).
 *
 * The files call downwards only: engine.c (life, sessions, the entry of a
 * request and the text profiles' dispatch, run-time control) calls
 * engine_scpi.c (the SCPI profile's dispatch), both call engine_rules.c
 * (matching, templates, sets, carrying out an action) and engine_status.c
 * (overlapped commands, the status bindings), and all of them call
 * engine_state.c (a state, one request's undo list, running a chunk of Lua
 * against it). Every function here is defined in the file its group names
 * and described there. */
#ifndef DW_SIM_ENGINE_INT_H
#define DW_SIM_ENGINE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "engine/engine.h"
#include "engine/lua_sandbox.h"
#include "model/props.h"
#include "model/scpi_status.h"

#define NCAP 10 /* $0..$9 */

/* An internal result: a chunk of Lua failed (out->lua says which and why);
 * the request is handled as unmatched. */
#define LUA_FAILED 1

/* Mutable state: the variables, the step cursor and each action's reply
 * turn. One lives in the engine (shared scope) or in each session. */
typedef struct sim_state {
    dw_buf *vars;              /* script->nvars */
    size_t *turns;             /* one per action: steps, then rules, then unmatched */
    size_t step;               /* the next expected step */
    dw_scpi_status *scpi;      /* the SCPI profile's error queue and registers */
    dw_sim_props_state *props; /* the properties' values, or NULL */
    double now;                /* the time of the request being handled */
    double busy_until;         /* overlapped commands are pending until then */
    int opc_armed;             /* an *OPC waits for them to complete */
} sim_state;

struct dw_sim_engine {
    const dw_sim_script *script;
    dw_sim_rng *rng; /* a rule's "probability" and "delay"; NULL: faults always, delay_ms */
    dw_marshaller *req_m;
    dw_marshaller *resp_m;
    /* Exact-match rules: open addressing, power-of-two size; each slot holds
     * the lowest rule index with those bytes (SIZE_MAX: empty) and what a
     * lookup compares, so that a probe touches one slot, not the rule. */
    struct slot {
        uint64_t hash;
        size_t rule;
        size_t len;
        const uint8_t *key;
    } * slots;
    size_t mask;
    /* Non-exact rules in script order. */
    size_t *inexact;
    size_t ninexact;
    int has_regex; /* some step or rule matches with a regex */
    int has_jit;   /* and one of them is JIT-compiled */
    /* Per rule: its answer built once at load when it can never change (one
     * literal reply, no set, no fault), so that a hit costs a lookup and a
     * copy from one place, not a walk over the rule's templates. */
    struct prebuilt {
        uint8_t *data; /* framed frames then the prompt; NULL: not prebuilt */
        size_t len;
        size_t nframes;
        const char *name;
        unsigned delay_ms;
        const size_t *split;
        size_t nsplit;
        unsigned split_delay_ms;
    } * pre;
    uint64_t noise;             /* the properties' noise (model/props.h) */
    double (*clock)(void *arg); /* `now` of a request: ramps, Lua */
    void *clock_arg;
    struct timespec start;
    sim_state shared;           /* used when scope is shared */
    dw_scpi_builtins *builtins; /* the SCPI profile's own commands */
    uint64_t *rule_hits;
    uint64_t *step_hits;
    /* Regex matches cut short by a limit, per rule and per step; the first
     * of each is flagged in the outcome so that the server logs it once. */
    uint64_t *rule_limits;
    uint64_t *step_limits;
    uint64_t limit_hits;
    /* Lua: NULL when the script has none (and none of what follows is made). */
    dw_sim_lua *lua;
    int has_cond;              /* some rule has an "if" */
    size_t *same_next;         /* has_cond: per exact rule, the next rule with the
                                * same bytes (SIZE_MAX: none) */
    uint64_t *rule_lua_errors; /* chunks that failed, per rule and step */
    uint64_t *step_lua_errors;
    uint64_t lua_errors;
    uint64_t status_lua_errors; /* "status" conditions whose Lua failed */
    uint64_t requests;
    uint64_t unmatched;
    dw_buf samples[DW_SIM_UNMATCHED_KEEP];
    size_t nsamples;
};

struct dw_sim_session {
    dw_sim_engine *e;
    sim_state own; /* used when scope is per connection */
    sim_state *st;
    int hung;
    dw_buf scratch;   /* a rendered payload before framing, reused */
    dw_buf scpi_resp; /* SCPI: the message's responses joined with ';' */
    dw_buf scpi_caps; /* SCPI: a unit as written, then its parameters' values */
    /* Regex matching: the session's own match data and match context (the
     * limits), so that sessions share nothing but the immutable compiled
     * patterns; JIT matches run on their thread's JIT stack
     * (thread_jit_stack). NULL when the script has no regex. */
    pcre2_match_data *md;
    pcre2_match_context *mc;
    /* Lua: the old values of the variables and properties this request
     * set, to undo its changes if a chunk fails; the last failure's message. */
    struct undo {
        size_t var;              /* the variable or property */
        int prop;                /* 1: a property, its value in saved */
        dw_buf old;              /* a variable's value */
        dw_sim_prop_saved saved; /* a property's */
    } * undo;
    size_t nundo, undo_cap;
    /* SCPI errors a "lua" action queued (scpi.error), kept until the unit's
     * action has run through: a failed chunk keeps none. */
    struct queued_error {
        int code;
        char *text; /* NULL: the standard one */
    } * queued;
    size_t nqueued, queued_cap;
    char lua_msg[256];
};

/* Captures of the request: [so, eo), or so == PCRE2_UNSET (no group). */
typedef struct captures {
    PCRE2_SIZE so[NCAP];
    PCRE2_SIZE eo[NCAP];
    unsigned channel; /* a SCPI match with "channels": the unit's channel (0: none) */
    size_t chan_pos;  /* and its place in the match's list */
} captures;

/* dw__engine_match(): the request matched, did not, or a limit cut the match short. */
enum { NO_MATCH = 0, MATCHED = 1, LIMITED = 2 };

/* One request's Lua: what its chunks see, and where a failure is noted. A
 * script without Lua has none (NULL), and nothing below runs for it. */
typedef struct lua_call {
    dw_sim_engine *e;
    dw_sim_session *ss;
    sim_state *st;
    const uint8_t *req;
    size_t n;
    const captures *c;
    dw_sim_outcome *out;
} lua_call;

/* ---- engine_state.c: a state, the undo list, Lua --------------------------- */

int dw__engine_state_init(sim_state *st, const dw_sim_script *s, uint64_t *rng);
void dw__engine_state_destroy(sim_state *st, const dw_sim_script *s);
int dw__engine_state_reset(const dw_sim_script *s, sim_state *st);
int dw__engine_state_rewind(sim_state *st, const dw_sim_script *s);
int dw__engine_state_assign(dw_sim_session *ss, sim_state *st, size_t var, dw_buf *v);
int dw__engine_set_prop_text(lua_call *lc, sim_state *st, size_t i, dw_buf *v);
void dw__engine_undo_forget(dw_sim_session *ss);
void dw__engine_undo_all(dw_sim_session *ss, sim_state *st);
int dw__engine_lua_eval(lua_call *lc, size_t id, const dw_sim_lua_chunk *ch, int *truth,
                        dw_buf *text);
int dw__engine_cond_holds(lua_call *lc, size_t id, const dw_sim_lua_chunk *cond, int *rc);
int dw__engine_errors_commit(dw_sim_session *ss, sim_state *st);
void dw__engine_errors_drop(dw_sim_session *ss);

/* ---- engine_rules.c: matching, templates, sets, actions -------------------- */

int dw__engine_index(dw_sim_engine *e);
void dw__engine_prebuild(dw_sim_engine *e);
int dw__engine_session_regex(dw_sim_session *s);
void dw__engine_captures_whole(captures *c, size_t n);
int dw__engine_match(dw_sim_session *ss, const dw_sim_match *m, const uint8_t *req, size_t n,
                     captures *c);
int dw__engine_note_limit(dw_sim_engine *e, dw_sim_outcome *out, dw_sim_source src, size_t index);
size_t dw__engine_find_rule(dw_sim_engine *e, dw_sim_session *ss, const uint8_t *req, size_t n,
                            captures *c, dw_sim_outcome *out, int *rc, lua_call *lc);
int dw__engine_render(const dw_sim_template *t, const sim_state *st, const uint8_t *req,
                      const captures *c, dw_buf *out);
int dw__engine_render_value(lua_call *lc, size_t id, const dw_sim_template *t, const sim_state *st,
                            const uint8_t *req, const captures *c, dw_buf *out);
int dw__engine_apply_sets(sim_state *st, const dw_sim_action *a, const uint8_t *req,
                          const captures *c, lua_call *lc, size_t id);
int dw__engine_faults(const dw_sim_engine *e, const dw_sim_action *a, uint64_t nth);
unsigned dw__engine_action_delay(const dw_sim_engine *e, const dw_sim_action *a);
size_t dw__engine_pick_reply(sim_state *st, size_t action_id, const dw_sim_action *a);
int dw__engine_apply_action(dw_sim_engine *e, sim_state *st, size_t action_id,
                            const dw_sim_action *a, uint64_t *hits, const char *name,
                            const uint8_t *req, const captures *c, dw_sim_outcome *out,
                            dw_buf *payload, dw_error *err, lua_call *lc);
void dw__engine_keep_sample(dw_sim_engine *e, const uint8_t *req, size_t n);
int dw__engine_answer_unmatched(dw_sim_engine *e, dw_sim_session *ss, const uint8_t *req, size_t n,
                                captures *c, dw_sim_outcome *out, dw_error *err);
int dw__engine_lua_finish(dw_sim_engine *e, dw_sim_session *ss, const uint8_t *req, size_t n,
                          captures *c, dw_sim_outcome *out, dw_error *err, int rc);
int dw__engine_answer_prebuilt(dw_sim_engine *e, size_t r, dw_sim_outcome *out);

/* ---- engine_status.c: overlapped commands, the status bindings ----------- */

/* An overlapped command that completes `ms` after the state's time. */
void dw__engine_busy_start(sim_state *st, unsigned ms);
/* 1 while some overlapped command is pending (at the state's time). */
int dw__engine_busy(const sim_state *st);
/* *WAI, *OPC?: the milliseconds until every pending command completes (0:
 * none pending); the state's time moves on to then. */
unsigned dw__engine_wait(sim_state *st);
/* *RST, a reset: nothing pending, no *OPC waiting. */
void dw__engine_busy_clear(sim_state *st);
/* After a message unit or a change of state: an *OPC whose commands have
 * completed sets OPC; the script's "status" conditions are evaluated at
 * the state's time into the OPERation and QUEStionable condition
 * registers (through their transition filters) and the status byte. */
void dw__engine_status_update(dw_sim_engine *e, sim_state *st);

/* ---- engine_scpi.c: the SCPI profile --------------------------------------- */

int dw__engine_scpi_handle(dw_sim_engine *e, dw_sim_session *ss, const uint8_t *req, size_t n,
                           dw_sim_outcome *out, dw_error *err);

#endif
