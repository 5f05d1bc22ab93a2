/* devwire-sim's Lua sandbox: conditions ("if"), computed values ({"lua": ...}
 * replies and set values) and "lua" actions, in Lua 5.4 (docs/sim.md,
 * "Conditions and computed values (Lua)").
 *
 * One sandbox per engine (device), made only when the script has Lua: a
 * script without Lua never creates a lua_State. Its chunks were checked when
 * the script was loaded (model/lua_check.h), and the sandbox compiles them
 * the same way (dw_sim_lua_compile). The sandbox has no io, no
 * os but os.time and os.clock, no require, dofile, loadfile, debug or
 * collectgarbage; load takes text only; setmetatable refuses __gc;
 * math.randomseed belongs to the engine (dw_sim_lua_seed). Every evaluation
 * runs under an instruction budget and a deadline (a count hook that, once
 * either is spent, raises at every instruction, so pcall cannot outlive
 * it; pattern matching checks the deadline too, lua_pattern.h) and the
 * whole state under a memory cap (its allocator refuses past it, so
 * string.rep('x', 1e9) fails at once); a chunk that overruns any of them
 * fails like one that raises an error, and the sandbox stays usable. The
 * libraries are read-only and the chunks' globals stay empty
 * (lua_guard.h): nothing outlives an evaluation but what it assigns to
 * variables and properties, and the SCPI errors it queues.
 *
 * Names: Lua's own libraries (math, string, table, utf8, os; scpi, whose
 * scpi.error queues a SCPI error, with the SCPI profile) and base
 * functions first; every other global a chunk reads goes through one lookup
 * function (lookup() in lua_sandbox.c): request, captures, now, state, channel
 * (unless a variable or property has that name), then the
 * state variables and the typed properties by name (one namespace). A
 * property reads as its typed value at the request's time (a ramp where it
 * is now, noise drawn): float and int as numbers, bool as a boolean, enum as
 * its choice's short form ("IMM"), string as a string. A variable reads as a boolean when its text
 * is "true" or "false", as a number when its text is a Lua number ("42",
 * "-1.5", "1e9", "0x1F"), else as a string. A "lua" action sets a variable
 * by assigning it (count = count + 1, state.mode = 'ERR', state["a-b"] = 1);
 * a property likewise (volt = 5, state.output = true, trig = 'BUS'),
 * validated as its command validates a value: a refused value is an error
 * ("property 'volt' refuses 40: Data out of range (-222)"). Elsewhere the
 * state is read-only. Reading or assigning a name that is
 * none of these is an error (a typo fails loudly instead of reading nil).
 *
 * A sandbox belongs to its engine and, like the engine, to the one thread
 * that runs it (its device's loop thread, engine.h): it has no lock. */
#ifndef DW_SIM_ENGINE_LUA_SANDBOX_H
#define DW_SIM_ENGINE_LUA_SANDBOX_H

#include <stddef.h>
#include <stdint.h>

#include <devwire/devwire.h>

#include "script/script.h"
#include "model/props.h"

/* Default instructions per evaluation and bytes per sandbox. */
#define DW_SIM_LUA_BUDGET     1000000u
#define DW_SIM_LUA_MEMORY_CAP ((size_t)16 << 20)
/* Default time per evaluation (10 ms), in nanoseconds of the monotonic clock. */
#define DW_SIM_LUA_DEADLINE_NS 10000000u

typedef struct dw_sim_lua dw_sim_lua;

/* What a chunk sees while it runs, set by the engine for each evaluation.
 * Captures: [cap_so[i], cap_eo[i]) of `request` for i = 0..9, SIZE_MAX when
 * group i is not set (cap_so NULL: no captures). */
typedef struct dw_sim_lua_scope {
    const uint8_t *request; /* NULL: no request here */
    size_t request_len;
    const size_t *cap_so, *cap_eo;
    const dw_buf *vars;        /* the state's values, in script->vars order */
    dw_sim_props_state *props; /* the properties' values (NULL: the script has none) */
    double now;                /* the request's time: `now`, and the properties' ramps */
    /* A "lua" action: set variable `var` to p[0..n) (the engine keeps the
     * old value to undo the request's changes if a later chunk fails);
     * DW_OK or DW_ENOMEM. NULL elsewhere: the state is read-only. */
    int (*assign)(void *arg, size_t var, const uint8_t *p, size_t n);
    /* A "lua" action: set property `prop` to *v (as dw_sim_prop_set, the
     * engine keeping the old value likewise): 0, a SCPI error code (the
     * value refused), DW_SCPI_NOMEM. NULL elsewhere. */
    int (*set_prop)(void *arg, size_t prop, const dw_sim_prop_value *v);
    void *arg;
    unsigned channel; /* `channel`: the channel of a SCPI match with "channels"; 0: none (nil) */
    /* A "lua" action of a SCPI script: scpi.error(code [, text]) queues
     * error `code` (checked: dw_scpi_status_error_check) with its text (NULL:
     * the standard one); the engine keeps it until the action has run
     * through, and drops it if a chunk fails. DW_OK or DW_ENOMEM. NULL
     * elsewhere: scpi.error raises. */
    int (*queue_error)(void *arg, int code, const char *text);
} dw_sim_lua_scope;

/* A sandbox with every chunk of `script` compiled (borrowed: it must outlive
 * the sandbox). DW_OK and *out, or DW_ENOMEM with `err` set. */
int dw_sim_lua_new(const dw_sim_script *script, dw_sim_lua **out, dw_error *err);
void dw_sim_lua_free(dw_sim_lua *x);

/* Limits: instructions per evaluation (at least 1) and bytes for the whole
 * state (what it already holds counts). */
void dw_sim_lua_set_limits(dw_sim_lua *x, uint32_t instructions, size_t memory);
/* Time per evaluation, in nanoseconds (at least 1): past it, the chunk fails
 * like one over its instruction budget, even inside pcall or a pattern match. */
void dw_sim_lua_set_deadline(dw_sim_lua *x, uint64_t ns);
/* Seed math.random (the engine seeds it when it makes the sandbox, with
 * the seed of its noise PRNG). Unseeded, it is Lua's own (time and address). */
void dw_sim_lua_seed(dw_sim_lua *x, uint64_t seed);
/* Bytes the state holds now. */
size_t dw_sim_lua_memory(dw_sim_lua *x);

/* Run `chunk` with `scope`. An expression's value goes to *truth (Lua's
 * truth: all but nil and false) when truth is non-NULL, and is appended to
 * `text` when text is non-NULL (a string as is, a number as Lua prints it,
 * a boolean as "true" or "false"; any other value is an error). DW_OK, or
 * DW_ESCRIPT with msg saying where and why ("rules[3].if:1: attempt to
 * compare nil with number", "rules[3].lua: instruction budget (1000000)
 * exceeded", "rules[3].reply: memory cap (16777216 bytes) reached"). */
int dw_sim_lua_eval(dw_sim_lua *x, const dw_sim_lua_chunk *chunk, const dw_sim_lua_scope *scope,
                    int *truth, dw_buf *text, char *msg, size_t cap);

#endif
