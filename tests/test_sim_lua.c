/* devwire-sim's Lua in the engine, no sockets: "if" on rules and steps,
 * computed replies and set values, "lua" actions, errors placed at load,
 * the sandbox, the instruction budget and the memory cap (a failing chunk
 * is handled as unmatched, undone, flagged once, counted, and the device
 * goes on), the SCPI profile; then devwire-sim itself logging a failure once,
 * counting it in the summary and noting it in the transcript. Scripts are
 * written with ` for " to keep Lua's quotes readable. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <devwire/devwire.h>

#include "engine/engine.h"
#include "script/script.h"
#include "sim_fixture.h"

typedef struct fixture {
    dw_sim_script *script;
    dw_sim_engine *e;
    dw_sim_session *s;
    dw_sim_outcome o;
    char reply[512];
} fixture;

/* The script text with every ` turned into ". Caller frees. */
static char *json_of(const char *src)
{
    char *j = strdup(src);
    cr_assert(j != NULL);
    for (char *p = j; *p; p++)
        if (*p == '`')
            *p = '"';
    return j;
}

static int try_load(const char *src, dw_sim_script **out, dw_error *err)
{
    char *j = json_of(src);
    dw_error_clear(err);
    int rc = dw_sim_script_load_buffer("test.json", j, strlen(j), out, err);
    free(j);
    return rc;
}

static void load(fixture *f, const char *src)
{
    dw_error err;
    memset(f, 0, sizeof *f);
    int rc = try_load(src, &f->script, &err);
    cr_assert(eq(int, rc, DW_OK), "load: %s", dw_error_message(&err));
    rc = dw_sim_engine_new(f->script, &f->e, &err);
    cr_assert(eq(int, rc, DW_OK), "engine: %s", dw_error_message(&err));
    f->s = dw_sim_session_new(f->e);
    cr_assert(f->s != NULL);
    dw_sim_outcome_init(&f->o);
}

static void unload(fixture *f)
{
    dw_sim_outcome_free(&f->o);
    dw_sim_session_free(f->s);
    dw_sim_engine_free(f->e);
    dw_sim_script_free(f->script);
}

/* Handle `req`; the reply's text without its "\n" sentinel. */
static const char *ask(fixture *f, const char *req)
{
    dw_error err;
    dw_error_clear(&err);
    int rc = dw_sim_engine_handle(f->e, f->s, (const uint8_t *)req, strlen(req), &f->o, &err);
    cr_assert(eq(int, rc, DW_OK), "handle %s: %s", req, dw_error_message(&err));
    size_t n = f->o.bytes.len;
    if (n && f->o.bytes.data[n - 1] == '\n')
        n--;
    if (n >= sizeof f->reply)
        n = sizeof f->reply - 1;
    memcpy(f->reply, f->o.bytes.data ? (const char *)f->o.bytes.data : "", n);
    f->reply[n] = '\0';
    return f->reply;
}

/* ---- conditions ---------------------------------------------------------- */

Test(sim_lua, if_on_rules_skips_to_the_next_rule)
{
    fixture f;
    load(&f, "{`state`: {`output`: false, `freq`: 1000},"
             " `rules`: ["
             "  {`when`: `V?`, `if`: `output and freq > 1e9`, `reply`: `HIGH`},"
             "  {`when`: {`prefix`: `V`}, `if`: `output`, `reply`: `ON`},"
             "  {`when`: `V?`, `reply`: `LOW`},"
             "  {`when`: `ON`, `set`: {`output`: true}},"
             "  {`when`: {`regex`: `^F ([0-9]+)$`}, `set`: {`freq`: `$1`}}"
             " ]}");
    cr_expect(eq(str, (char *)ask(&f, "V?"), "LOW"), "both conditions false");
    cr_expect(eq(sz, f.o.index, 2));
    ask(&f, "ON");
    cr_expect(eq(str, (char *)ask(&f, "V?"), "ON"), "freq too low: the prefix rule after it");
    ask(&f, "F 2000000000");
    cr_expect(eq(str, (char *)ask(&f, "V?"), "HIGH"));
    cr_expect(eq(u64, dw_sim_engine_rule_hits(f.e, 0), 1));
    cr_expect(eq(u64, dw_sim_engine_rule_hits(f.e, 2), 1));
    cr_expect(eq(u64, dw_sim_engine_lua_errors(f.e), 0));
    unload(&f);
}

Test(sim_lua, if_sees_captures_and_the_request)
{
    fixture f;
    load(&f, "{`rules`: ["
             "  {`when`: {`regex`: `^SET ([0-9]+)$`}, `if`: `tonumber(captures[1]) <= 10`,"
             "   `reply`: `OK $1`},"
             "  {`when`: {`prefix`: `SET`}, `if`: `#request < 8`, `reply`: `RANGE`}"
             " ], `unmatched`: {`reply`: `?`}}");
    cr_expect(eq(str, (char *)ask(&f, "SET 7"), "OK 7"));
    cr_expect(eq(str, (char *)ask(&f, "SET 70"), "RANGE"));
    cr_expect(eq(str, (char *)ask(&f, "SET 7000"), "?"), "no rule's condition holds");
    cr_expect(eq(int, f.o.source, DW_SIM_BY_UNMATCHED));
    cr_expect(f.o.lua.name == NULL, "a false condition is no failure");
    unload(&f);
}

Test(sim_lua, if_on_a_step_holds_it_back)
{
    fixture f;
    load(&f, "{`state`: {`armed`: false},"
             " `steps`: [{`expect`: `FIRE`, `if`: `armed`, `reply`: `step`}],"
             " `rules`: [{`when`: `FIRE`, `reply`: `rule`},"
             "           {`when`: `ARM`, `set`: {`armed`: true}, `reply`: `armed`}]}");
    cr_expect(eq(str, (char *)ask(&f, "FIRE"), "rule"), "a false condition: the step waits");
    cr_expect(eq(u64, dw_sim_engine_steps_not_reached(f.e), 1));
    cr_expect(eq(str, (char *)ask(&f, "ARM"), "armed"));
    cr_expect(eq(str, (char *)ask(&f, "FIRE"), "step"));
    cr_expect(eq(str, (char *)ask(&f, "FIRE"), "rule"));
    cr_expect(eq(u64, dw_sim_engine_steps_not_reached(f.e), 0));
    unload(&f);
}

/* ---- computed values and actions ----------------------------------------- */

Test(sim_lua, computed_reply_and_set)
{
    fixture f;
    load(&f, "{`state`: {`count`: 0, `volt`: 5, `name`: `psu`},"
             " `rules`: ["
             "  {`when`: `MEAS?`, `reply`: {`lua`: `string.format('%.2f', volt * 2)`}},"
             "  {`when`: `INC`, `set`: {`count`: {`lua`: `count + 1`}}, `reply`: `${count}`},"
             "  {`when`: {`prefix`: `ECHO `}, `reply`: {`lua`: `request:sub(6):upper()`}},"
             "  {`when`: `NAME?`, `reply`: [{`lua`: `name .. '-1'`}, {`frames`: [`a`, "
             "{`lua`: `state.name`}]}]},"
             "  {`when`: `HALF`, `set`: {`volt`: {`lua`: `volt / 2`}}, `reply`: `${volt}`},"
             "  {`when`: `FLAG`, `set`: {`name`: {`lua`: `count > 1`}}, `reply`: `${name}`}"
             " ]}");
    cr_expect(eq(str, (char *)ask(&f, "MEAS?"), "10.00"));
    cr_expect(eq(str, (char *)ask(&f, "INC"), "1"));
    cr_expect(eq(str, (char *)ask(&f, "INC"), "2"), "an integer stays an integer");
    cr_expect(eq(str, (char *)ask(&f, "ECHO volts"), "VOLTS"));
    cr_expect(eq(str, (char *)ask(&f, "NAME?"), "psu-1"));
    cr_expect(eq(str, (char *)ask(&f, "NAME?"), "a\npsu"), "a list of replies, frames");
    cr_expect(eq(str, (char *)ask(&f, "HALF"), "2.5"));
    cr_expect(eq(str, (char *)ask(&f, "FLAG"), "true"), "a boolean is stored as its text");
    unload(&f);
}

Test(sim_lua, lua_action_changes_state)
{
    fixture f;
    load(&f, "{`state`: {`n`: 0, `mode`: `OK`, `last-cmd`: ``},"
             " `rules`: [{`when`: {`regex`: `^HIT`},"
             "   `lua`: `n = n + 1\\nif n > 3 then state.mode = 'ERR' end\\n"
             "state['last-cmd'] = request`, `reply`: `${mode} ${n} ${last-cmd}`}]}");
    cr_expect(eq(str, (char *)ask(&f, "HIT"), "OK 1 HIT"));
    cr_expect(eq(str, (char *)ask(&f, "HIT"), "OK 2 HIT"));
    cr_expect(eq(str, (char *)ask(&f, "HIT"), "OK 3 HIT"));
    cr_expect(eq(str, (char *)ask(&f, "HIT!"), "ERR 4 HIT!"));
    unload(&f);
}

Test(sim_lua, random_is_seeded_per_engine_and_now_comes_from_the_clock)
{
    fixture f;
    load(&f, "{`rules`: [{`when`: `R`, `reply`: {`lua`: `math.random(1, 1000000000)`}},"
             "            {`when`: `T`, `reply`: {`lua`: `now`}}]}");
    dw_sim_engine_seed(f.e, 42);
    char a[64], b[64];
    snprintf(a, sizeof a, "%s", ask(&f, "R"));
    snprintf(b, sizeof b, "%s", ask(&f, "R"));
    cr_expect(strcmp(a, b) != 0, "a sequence, not one number");
    dw_sim_engine_seed(f.e, 42);
    cr_expect(eq(str, (char *)ask(&f, "R"), a), "the same seed, the same sequence");
    cr_expect(eq(str, (char *)ask(&f, "R"), b));
    double t = strtod(ask(&f, "T"), NULL);
    cr_expect(t >= 0 && t < 600, "monotonic seconds since the engine started: %f", t);
    unload(&f);
}

Test(sim_lua, one_seed_drives_noise_and_math_random)
{
    const char *src = "{`properties`: {`v`: {`type`: `float`, `command`: `V`, `access`: `ro`,"
                      "  `noise`: {`amplitude`: 1}}},"
                      " `rules`: [{`when`: `R`, `reply`: {`lua`: `math.random(1, 1000000000)`}},"
                      "           {`when`: `N`, `reply`: {`lua`: `v`}}]}";
    fixture a, b;
    load(&a, src);
    load(&b, src);
    char r[64], n[64];
    snprintf(r, sizeof r, "%s", ask(&a, "R"));
    snprintf(n, sizeof n, "%s", ask(&a, "N"));
    cr_expect(eq(str, (char *)ask(&b, "R"), r), "unseeded engines repeat: a fixed default seed");
    cr_expect(eq(str, (char *)ask(&b, "N"), n));
    dw_sim_engine_seed(b.e, 99);
    cr_expect(strcmp(ask(&b, "R"), ask(&a, "R")) != 0, "another seed, another sequence");
    dw_sim_engine_seed(a.e, 99);
    dw_sim_engine_seed(b.e, 99);
    snprintf(r, sizeof r, "%s", ask(&a, "R"));
    snprintf(n, sizeof n, "%s", ask(&a, "N"));
    cr_expect(eq(str, (char *)ask(&b, "R"), r), "the same seed: math.random and ...");
    cr_expect(eq(str, (char *)ask(&b, "N"), n), "... the noise, both");
    unload(&a);
    unload(&b);
}

static double fixed_clock(void *arg)
{
    return *(const double *)arg;
}

Test(sim_lua, now_reads_the_clock_hook)
{
    fixture f;
    load(&f, "{`rules`: [{`when`: `T`, `reply`: {`lua`: `now * 2`}}]}");
    double now = 12.25;
    dw_sim_engine_set_clock(f.e, fixed_clock, &now);
    cr_expect(eq(str, (char *)ask(&f, "T"), "24.5"));
    now = 100;
    cr_expect(eq(str, (char *)ask(&f, "T"), "200.0"));
    unload(&f);
}

/* ---- errors at load ------------------------------------------------------ */

/* Load must fail with a message that starts with `want`. */
static void load_fails(const char *src, const char *want)
{
    dw_sim_script *s = NULL;
    dw_error err;
    int rc = try_load(src, &s, &err);
    cr_expect(eq(int, rc, DW_ESCRIPT), "%s", want);
    cr_expect(s == NULL);
    cr_expect(strncmp(dw_error_message(&err), want, strlen(want)) == 0, "got:  %s\nwant: %s",
              dw_error_message(&err), want);
}

Test(sim_lua, syntax_errors_are_placed_at_load)
{
    /* Column 48 is the first character of rules[1].if's Lua. */
    load_fails("{`rules`: [{`when`: `A`}, {`when`: `B`, `if`: `x ==`}]}",
               "test.json:1:48: rules[1].if: unexpected symbol near <eof>");
    /* Lua's line 2 starts after the \n escape: column 60. */
    load_fails("{`state`: {`a`: 0}, `rules`: [{`when`: `X`, `lua`: `a = 1\\nb = = 2`}]}",
               "test.json:1:60: rules[0].lua: unexpected symbol near '='");
    load_fails("{`rules`: [\n {`when`: `X`,\n  `reply`: {`lua`: `'open`}}]}",
               "test.json:3:21: rules[0].reply.lua: unfinished string");
    load_fails("{`state`: {`c`: 0}, `rules`: [{`when`: `X`, `set`: {`c`: {`lua`: `c +`}}}]}",
               "test.json:1:67: rules[0].set.c.lua: unexpected symbol near <eof>");
    load_fails("{`steps`: [{`expect`: `X`, `if`: 3}]}",
               "test.json:1:34: steps[0].if: expected string (Lua expression)");
    load_fails("{`rules`: [{`when`: `X`, `reply`: {`lua`: `1`, `hex`: `00`}}]}",
               "test.json:1:35: rules[0].reply: {\"lua\": ...} takes no other key");
    load_fails("{`unmatched`: {`reply`: {`lua`: `request`}}}",
               "test.json:1:33: unmatched.reply.lua: Lua runs only in rules and steps");
    load_fails("{`periodic`: [{`every_ms`: 10, `send`: {`lua`: `1`}}]}",
               "test.json:1:48: periodic[0].send.lua: Lua runs only in rules and steps");
    load_fails("{`rules`: [{`when`: `X`, `if`: ` `}]}",
               "test.json:1:32: rules[0].if: empty Lua expression");
    load_fails("{`rules`: [{`when`: `X`, `lua`: `x = `}]}",
               "test.json:1:34: rules[0].lua: unexpected symbol near <eof>");
}

/* ---- failures at run time: handled as unmatched -------------------------- */

#define PING_AND_UNMATCHED "{`when`: `ping`, `reply`: `pong`}], `unmatched`: {`reply`: `?`}}"

/* `req` fails in rules[0] with a message holding `what`: unmatched, flagged
 * `first`, counted; the next request is answered. */
static void fails_as_unmatched(fixture *f, const char *req, const char *what, int first)
{
    cr_expect(eq(str, (char *)ask(f, req), "?"), "%s: handled as unmatched", req);
    cr_expect(eq(int, f->o.source, DW_SIM_BY_UNMATCHED));
    cr_assert(f->o.lua.name != NULL, "%s: the failure is in the outcome", req);
    cr_expect(eq(str, (char *)f->o.lua.name, "rules[0]"));
    cr_expect(eq(int, f->o.lua.source, DW_SIM_BY_RULE));
    cr_expect(eq(int, f->o.lua.first, first));
    cr_expect(strstr(f->o.lua.message, what) != NULL, "%s: message: %s", req, f->o.lua.message);
    cr_expect(eq(str, (char *)ask(f, "ping"), "pong"), "the device goes on");
    cr_expect(f->o.lua.name == NULL);
}

Test(sim_lua, instruction_budget_overrun_is_unmatched_once_flagged_and_counted)
{
    fixture f;
    load(&f, "{`rules`: [{`when`: `LOOP`, `lua`: `while true do end`, `reply`: "
             "`never`}," PING_AND_UNMATCHED);
    dw_sim_engine_lua_deadline(f.e, (uint64_t)60 * 1000000000u); /* the budget ends it */
    fails_as_unmatched(&f, "LOOP", "rules[0].lua:1: instruction budget (1000000) exceeded", 1);
    fails_as_unmatched(&f, "LOOP", "instruction budget", 0);
    cr_expect(eq(u64, dw_sim_engine_lua_errors(f.e), 2));
    cr_expect(eq(u64, dw_sim_engine_rule_lua_errors(f.e, 0), 2));
    cr_expect(eq(u64, dw_sim_engine_rule_hits(f.e, 0), 0), "a failed rule did not answer");
    cr_expect(eq(u64, dw_sim_engine_unmatched(f.e), 2));
    /* A tighter budget: a short loop now overruns it. */
    dw_sim_engine_lua_limits(f.e, 1000, (size_t)16 << 20);
    cr_expect(eq(str, (char *)ask(&f, "ping"), "pong"));
    unload(&f);
}

Test(sim_lua, tight_budget_set_on_the_engine)
{
    fixture f;
    load(&f, "{`rules`: [{`when`: `SUM`, `reply`: {`lua`: "
             "`(function() local s = 0 for i = 1, 5000 do s = s + i end return s "
             "end)()`}}," PING_AND_UNMATCHED);
    cr_expect(eq(str, (char *)ask(&f, "SUM"), "12502500"), "within the default budget");
    dw_sim_engine_lua_limits(f.e, 1000, (size_t)16 << 20);
    fails_as_unmatched(&f, "SUM", "rules[0].reply.lua:1: instruction budget (1000) exceeded", 1);
    unload(&f);
}

Test(sim_lua, memory_cap_is_unmatched_and_the_state_recovers)
{
    fixture f;
    load(&f, "{`rules`: [{`when`: {`prefix`: `BIG`}, `if`: `request ~= 'BIG' or "
             "#string.rep('x', 1e9) > 0`, `reply`: `big`},"
             "  {`when`: `GROW`, `lua`: `local s = 'x' while true do s = s .. s "
             "end`}," PING_AND_UNMATCHED);
    size_t before = dw_sim_engine_lua_memory(f.e);
    cr_expect(before > 0 && before < ((size_t)1 << 20), "a sandbox takes little: %zu", before);
    fails_as_unmatched(&f, "BIG", "rules[0].if: memory cap (16777216 bytes) reached", 1);
    fails_as_unmatched(&f, "BIG", "memory cap", 0);
    cr_expect(eq(str, (char *)ask(&f, "GROW"), "?"), "a growing string hits the cap");
    cr_expect(strstr(f.o.lua.message, "rules[1].lua: memory cap") != NULL, "%s", f.o.lua.message);
    cr_expect(dw_sim_engine_lua_memory(f.e) <= (size_t)16 << 20);
    cr_expect(eq(str, (char *)ask(&f, "BIGGER"), "big"), "the sandbox still evaluates");
    cr_expect(eq(u64, dw_sim_engine_lua_errors(f.e), 3));
    unload(&f);
}

Test(sim_lua, a_failure_undoes_the_request)
{
    fixture f;
    load(&f, "{`state`: {`a`: `old`, `b`: `old`},"
             " `steps`: [{`expect`: `S`, `set`: {`a`: `step`}, `reply`: {`lua`: `nil`}}],"
             " `rules`: [{`when`: `X`, `set`: {`a`: `new`}, `reply`: [`one`, `two`],"
             "   `lua`: `b = 'new'; if a == 'new' then error('boom') end`},"
             "  {`when`: `GET`, `reply`: `${a} ${b}`}," PING_AND_UNMATCHED);
    cr_expect(eq(str, (char *)ask(&f, "X"), "?"));
    cr_expect(strstr(f.o.lua.message, "rules[0].lua:1: boom") != NULL, "%s", f.o.lua.message);
    cr_expect(eq(str, (char *)ask(&f, "GET"), "old old"), "set and assignments undone");
    cr_expect(eq(str, (char *)ask(&f, "S"), "?"), "a reply that is nil fails");
    cr_expect(strstr(f.o.lua.message, "steps[0].reply.lua: gave nil") != NULL, "%s",
              f.o.lua.message);
    cr_expect(eq(int, f.o.lua.source, DW_SIM_BY_STEP));
    cr_expect(eq(str, (char *)ask(&f, "GET"), "old old"));
    cr_expect(eq(u64, dw_sim_engine_steps_not_reached(f.e), 1), "the step is still expected");
    cr_expect(eq(u64, dw_sim_engine_step_lua_errors(f.e, 0), 1));
    unload(&f);
}

Test(sim_lua, reply_turns_are_kept_when_a_reply_fails)
{
    fixture f;
    load(&f, "{`state`: {`ok`: false},"
             " `rules`: [{`when`: `Q`, `reply`: [`one`, {`lua`: `ok and 'two' or nil`}, "
             "`three`], `after_last`: `cycle`},"
             "  {`when`: `OK`, `set`: {`ok`: true}, `reply`: `ok`}," PING_AND_UNMATCHED);
    cr_expect(eq(str, (char *)ask(&f, "Q"), "one"));
    cr_expect(eq(str, (char *)ask(&f, "Q"), "?"), "the second reply fails");
    ask(&f, "OK");
    cr_expect(eq(str, (char *)ask(&f, "Q"), "two"), "its turn comes again");
    cr_expect(eq(str, (char *)ask(&f, "Q"), "three"));
    unload(&f);
}

Test(sim_lua, state_is_read_only_outside_a_lua_action_and_names_are_checked)
{
    fixture f;
    load(&f, "{`state`: {`a`: 1},"
             " `rules`: [{`when`: `W`, `if`: `(function() state.a = 2 return true end)()`,"
             "   `reply`: `w`},"
             "  {`when`: `U`, `reply`: {`lua`: `nosuch + 1`}},"
             "  {`when`: `N`, `lua`: `undeclared = 1`},"
             "  {`when`: `T`, `lua`: `a = {}`},"
             "  {`when`: `A?`, `reply`: `${a}`}," PING_AND_UNMATCHED);
    ask(&f, "W");
    cr_expect(strstr(f.o.lua.message, "rules[0].if:1: cannot set 'a' here") != NULL, "%s",
              f.o.lua.message);
    ask(&f, "U");
    cr_expect(strstr(f.o.lua.message, "rules[1].reply.lua:1: unknown name 'nosuch'") != NULL, "%s",
              f.o.lua.message);
    ask(&f, "N");
    cr_expect(strstr(f.o.lua.message, "cannot set unknown variable 'undeclared'") != NULL, "%s",
              f.o.lua.message);
    ask(&f, "T");
    cr_expect(strstr(f.o.lua.message, "cannot set 'a' to that value") != NULL, "%s",
              f.o.lua.message);
    cr_expect(eq(str, (char *)ask(&f, "A?"), "1"));
    unload(&f);
}

/* ---- the sandbox --------------------------------------------------------- */

Test(sim_lua, sandbox_has_no_io_os_require_debug_or_bytecode)
{
    fixture f;
    load(&f,
         "{`rules`: ["
         "  {`when`: `IO`, `reply`: {`lua`: `io.open('/etc/passwd'):read('a')`}},"
         "  {`when`: `GONE`, `reply`: {`lua`: `rawget(_G, 'io') == nil and "
         "rawget(_G, 'debug') == nil and rawget(_G, 'require') == nil and "
         "rawget(_G, 'dofile') == nil and rawget(_G, 'loadfile') == nil and "
         "rawget(_G, 'package') == nil and os.execute == nil and os.getenv == nil and "
         "os.remove == nil and math.randomseed == nil`}},"
         "  {`when`: `OS`, `reply`: {`lua`: `type(os.time()) .. ' ' .. type(os.clock())`}},"
         "  {`when`: `BYTECODE`, `reply`: {`lua`: "
         "`select(2, load(string.dump(function() return 1 end)))`}},"
         "  {`when`: `MODE`, `reply`: {`lua`: `load('return 1', 'x', 'b')`}},"
         "  {`when`: `TEXT`, `reply`: {`lua`: `load('return 6 * 7')()`}},"
         "  {`when`: `GC`, `reply`: {`lua`: `type(collectgarbage)`}},"
         "  {`when`: `GCSTOP`, `reply`: {`lua`: `collectgarbage('stop')`}},"
         "  {`when`: `META`, `reply`: {`lua`: `getmetatable(_G) == false`}}," PING_AND_UNMATCHED);
    cr_expect(eq(str, (char *)ask(&f, "IO"), "?"));
    cr_expect(strstr(f.o.lua.message, "unknown name 'io'") != NULL, "%s", f.o.lua.message);
    cr_expect(eq(str, (char *)ask(&f, "GONE"), "true"));
    cr_expect(eq(str, (char *)ask(&f, "OS"), "number number"));
    cr_expect(strstr(ask(&f, "BYTECODE"), "binary chunk") != NULL, "load refuses bytecode: %s",
              f.reply);
    cr_expect(eq(str, (char *)ask(&f, "MODE"), "?"));
    cr_expect(strstr(f.o.lua.message, "only text chunks") != NULL, "%s", f.o.lua.message);
    cr_expect(eq(str, (char *)ask(&f, "TEXT"), "42"), "text chunks load");
    cr_expect(eq(str, (char *)ask(&f, "GC"), "?"), "no collectgarbage");
    cr_expect(eq(str, (char *)ask(&f, "GCSTOP"), "?"), "the collector cannot be stopped");
    cr_expect(eq(str, (char *)ask(&f, "META"), "true"), "the globals' metatable is hidden");
    unload(&f);
}

/* ---- hostile chunks: bounded in time, nothing outlives an evaluation ------ */

/* Each of these once held the device for seconds or for ever: a loop that
 * pcall or an xpcall handler kept alive past the budget, a finalizer, C
 * pattern matching the count hook never sees. */
#define HOSTILE_RULES                                                                              \
    "{`when`: `PCALL`, `lua`: `while true do pcall(function() while true do end end) end`},"       \
    "{`when`: `XPCALL`, `lua`: "                                                                   \
    "`while true do xpcall(error, function() while true do end end) end`},"                        \
    "{`when`: `GC`, `lua`: `setmetatable({}, {__gc = function() while true do end end})`},"        \
    "{`when`: `PATTERN`, `reply`: {`lua`: `('a'):rep(3000):find('.-.-.-.-b')`}},"                  \
    "{`when`: `TRIM`, `reply`: {`lua`: "                                                           \
    "`('x' .. (' '):rep(60000) .. 'x'):match('^%s*(.-)%s*$')`}},"                                  \
    "{`when`: `FINDS`, `reply`: {`lua`: `(function() local s = ('a'):rep(4 << 20) "                \
    "for i = 1, 150000 do s:find('b', 1, true) end return 1 end)()`}},"

static const char *const hostile[] = {"PCALL", "XPCALL", "GC", "PATTERN", "TRIM", "FINDS"};

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

Test(sim_lua, hostile_chunks_fail_within_the_deadline)
{
    fixture f;
    load(&f, "{`rules`: [" HOSTILE_RULES PING_AND_UNMATCHED);
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        for (int k = 0; k < 2; k++) {
            double t0 = seconds();
            cr_expect(eq(str, (char *)ask(&f, hostile[i]), "?"), "%s: unmatched", hostile[i]);
            double took = seconds() - t0;
            cr_expect(took < 2.0, "%s took %.3f s", hostile[i], took);
            cr_log_info("%s: %.1f ms", hostile[i], took * 1e3);
            cr_expect(f.o.lua.message != NULL, "%s: a failure", hostile[i]);
            cr_expect(eq(str, (char *)ask(&f, "ping"), "pong"), "the device goes on");
        }
    }
    cr_expect(eq(u64, dw_sim_engine_lua_errors(f.e), 12));
    unload(&f);
}

/* Fewer instructions than the count hook's step (150 calls of a few each),
 * but each a fruitless scan of 4 MiB: the scans themselves check the
 * deadline, so the chunk fails instead of running its 150 scans out. */
Test(sim_lua, a_few_long_plain_finds_meet_the_deadline)
{
    fixture f;
    load(&f, "{`rules`: [{`when`: `SCANS`, `reply`: {`lua`: `(function() "
             "local s = ('a'):rep(4 << 20) for i = 1, 150 do s:find('b', 1, true) end "
             "return 'all' end)()`}}," PING_AND_UNMATCHED);
    dw_sim_engine_lua_deadline(f.e, 1000000); /* 1 ms: far less than 150 scans */
    cr_expect(eq(str, (char *)ask(&f, "SCANS"), "?"), "the scans are cut short");
    cr_assert(f.o.lua.message != NULL);
    cr_expect(strstr(f.o.lua.message, "deadline") != NULL, "%s", f.o.lua.message);
    dw_sim_engine_lua_deadline(f.e, (uint64_t)60 * 1000000000u);
    cr_expect(eq(str, (char *)ask(&f, "SCANS"), "all"), "under a minute they finish");
    unload(&f);
}

/* string.rep and table.concat are the sandbox's bounded copies: the
 * same results as Lua's, the same errors. */
Test(sim_lua, rep_and_concat_give_luas_results)
{
    fixture f;
    load(&f, "{`rules`: [{`when`: `R`, `reply`: {`lua`: `table.concat({('ab'):rep(3, ','), "
             "('x'):rep(0), ('x'):rep(-1), (''):rep(5, '-'), ('abc'):rep(1, '|'), "
             "string.rep('a', 5), table.concat({1, 2, 3}, '-'), "
             "table.concat({'a', 'b', 'c'}, '', 2, 3), table.concat({}, 'x'), "
             "#('xyz'):rep(100000, '..')}, '/')`}},"
             "{`when`: `BAD`, `reply`: {`lua`: `table.concat({1, {}, 3})`}},"
             "{`when`: `HUGE`, `reply`: {`lua`: `('x'):rep(1 << 62, 'yy')`}}," PING_AND_UNMATCHED);
    cr_expect(eq(str, (char *)ask(&f, "R"), "ab,ab,ab///----/abc/aaaaa/1-2-3/bc//499998"));
    cr_expect(eq(str, (char *)ask(&f, "BAD"), "?"));
    cr_assert(f.o.lua.message != NULL);
    cr_expect(strstr(f.o.lua.message, "invalid value (table) at index 2 in table for 'concat'") !=
                  NULL,
              "%s", f.o.lua.message);
    cr_expect(eq(str, (char *)ask(&f, "HUGE"), "?"));
    cr_expect(strstr(f.o.lua.message, "resulting string too large") != NULL, "%s", f.o.lua.message);
    unload(&f);
}

/* A few instructions, each a long copy in C: Lua's string.rep copies once
 * per repetition (4 MiB of one byte: about 20 ms) and table.concat once
 * per field; the bounded copies check the deadline, so the chunk fails
 * near it instead of running its copies out. */
Test(sim_lua, long_reps_and_concats_meet_the_deadline)
{
    fixture f;
    load(&f, "{`rules`: [{`when`: `REPS`, `reply`: {`lua`: `(function() "
             "for i = 1, 100 do local s = ('x'):rep(4 << 20) end return 'all' end)()`}},"
             "{`when`: `CONCATS`, `reply`: {`lua`: `(function() local t = {} "
             "for i = 1, 200000 do t[i] = 'x' end "
             "for i = 1, 200 do local s = table.concat(t) end return 'all' "
             "end)()`}}," PING_AND_UNMATCHED);
    dw_sim_engine_lua_deadline(f.e, 50 * 1000000); /* 50 ms: a fraction of the copies */
    const char *req[] = {"REPS", "CONCATS"};
    for (int i = 0; i < 2; i++) {
        double t0 = seconds();
        cr_expect(eq(str, (char *)ask(&f, req[i]), "?"), "%s: cut short", req[i]);
        double ms = (seconds() - t0) * 1e3;
        cr_expect(ms < 250, "%s: failed %.0f ms after it began (deadline 50 ms)", req[i], ms);
        cr_assert(f.o.lua.message != NULL);
        cr_expect(strstr(f.o.lua.message, "deadline") != NULL, "%s", f.o.lua.message);
    }
    cr_expect(eq(str, (char *)ask(&f, "ping"), "pong"));
    unload(&f);
}

Test(sim_lua, a_finalizer_cannot_be_set)
{
    fixture f;
    load(&f, "{`rules`: [" HOSTILE_RULES PING_AND_UNMATCHED);
    cr_expect(eq(str, (char *)ask(&f, "GC"), "?"));
    cr_assert(f.o.lua.message != NULL);
    cr_expect(strstr(f.o.lua.message, "no __gc") != NULL, "%s", f.o.lua.message);
    unload(&f);
}

Test(sim_lua, libraries_and_globals_do_not_outlive_an_evaluation)
{
    fixture f;
    load(&f, "{`state`: {`n`: 0}, `rules`: ["
             "{`when`: `T1`, `lua`: `string.format = nil`},"
             "{`when`: `T2`, `lua`: `string = nil`},"
             "{`when`: `T3`, `lua`: `getmetatable('').__index.upper = nil`},"
             "{`when`: `T4`, `lua`: `_G.math = nil`},"
             "{`when`: `T5`, `lua`: `n = n + 1 _ENV.string = nil`},"
             "{`when`: `T6`, `lua`: `local t = table t.insert = nil`},"
             "{`when`: `USE`, `reply`: {`lua`: "
             "`string.format('%d', 5) .. ('x'):upper() .. math.floor(1.5) .. "
             "select('#', table.insert) .. n`}},"
             "{`when`: `PAIRS`, `reply`: {`lua`: "
             "`(function() local k = 0 for _ in pairs(math) do k = k + 1 end return k > 10 "
             "end)()`}}," PING_AND_UNMATCHED);
    const char *const t[] = {"T1", "T2", "T3", "T4", "T5", "T6"};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        cr_expect(eq(str, (char *)ask(&f, t[i]), "?"), "%s fails", t[i]);
        cr_expect(eq(str, (char *)ask(&f, "USE"), "5X110"), "after %s", t[i]);
    }
    cr_expect(eq(str, (char *)ask(&f, "PAIRS"), "true"), "pairs still walks a library");
    unload(&f);
}

/* ---- scripts without Lua, the SCPI profile -------------------------------- */

Test(sim_lua, a_script_without_lua_has_no_lua_state)
{
    fixture f;
    load(&f, "{`state`: {`v`: 1}, `rules`: [{`when`: `V?`, `reply`: `${v}`}]}");
    cr_expect(eq(sz, dw_sim_engine_lua_memory(f.e), 0));
    cr_expect(eq(str, (char *)ask(&f, "V?"), "1"));
    dw_sim_engine_seed(f.e, 1); /* no effect, no crash */
    dw_sim_engine_lua_limits(f.e, 1, 1);
    cr_expect(eq(str, (char *)ask(&f, "V?"), "1"));
    cr_expect(eq(u64, dw_sim_engine_lua_errors(f.e), 0));
    unload(&f);
}

Test(sim_lua, scpi_rules_with_conditions_and_computed_replies)
{
    fixture f;
    load(&f, "{`profile`: `scpi`, `state`: {`volt`: 0, `limit`: 10},"
             " `rules`: ["
             "  {`when`: {`scpi`: `VOLTage`, `params`: [`numeric`]},"
             "   `if`: `tonumber(captures[1]) <= limit`, `set`: {`volt`: `$1`}},"
             "  {`when`: {`scpi`: `VOLTage?`}, `reply`: {`lua`: `string.format('%.3f', volt)`}},"
             "  {`when`: {`scpi`: `BAD?`}, `reply`: {`lua`: `nil`}}"
             " ]}");
    cr_expect(eq(str, (char *)ask(&f, "VOLT 5;VOLT?"), "5.000"));
    cr_expect(eq(str, (char *)ask(&f, "VOLT 50;VOLT?"), ""), "over the limit: no rule fits");
    cr_expect(eq(str, (char *)ask(&f, "SYST:ERR?"), "-113,\"Undefined header\""));
    cr_expect(eq(str, (char *)ask(&f, "VOLT?;BAD?;VOLT?"), "5.000"), "the units before it answer");
    cr_expect(eq(str, (char *)f.o.lua.name, "rules[2]"));
    cr_expect(eq(int, f.o.source, DW_SIM_BY_UNMATCHED));
    cr_expect(eq(str, (char *)ask(&f, "SYST:ERR?"), "-113,\"Undefined header\""));
    cr_expect(eq(str, (char *)ask(&f, "VOLT?"), "5.000"));
    unload(&f);
}

/* ---- typed properties ---------------------------------------------------- */

/* A bench supply of properties (a line protocol) and one variable. */
#define PROPS_SUPPLY                                                                               \
    "`state`: {`ohms`: 10},"                                                                       \
    " `properties`: {"                                                                             \
    "  `output`: {`type`: `bool`, `command`: `OUTP`},"                                             \
    "  `freq`: {`type`: `float`, `command`: `FREQ`, `min`: 0, `max`: 6e9, `default`: 1e6},"        \
    "  `volt`: {`type`: `float`, `command`: `VOLT`, `min`: 0, `max`: 30, `default`: 5},"           \
    "  `count`: {`type`: `int`, `command`: `COUNT`, `min`: 0, `max`: 9},"                          \
    "  `trig`: {`type`: `enum`, `command`: `TRIG`, `values`: [`IMMediate`, `BUS`]},"               \
    "  `label`: {`type`: `string`, `command`: `LABEL`, `default`: `bench`}"                        \
    " }"

Test(sim_lua, if_reads_properties_as_typed_values)
{
    fixture f;
    load(&f, "{" PROPS_SUPPLY ", `rules`: ["
             "  {`when`: `V?`, `if`: `output and freq > 1e9`, `reply`: `HIGH`},"
             "  {`when`: `V?`, `reply`: `LOW`},"
             "  {`when`: `T?`, `reply`: {`lua`: `trig .. ' ' .. label .. ' ' .. math.type(count)"
             " .. ' ' .. volt / ohms`}}"
             " ]}");
    cr_expect(eq(str, (char *)ask(&f, "V?"), "LOW"), "output off");
    ask(&f, "OUTP ON");
    cr_expect(eq(str, (char *)ask(&f, "V?"), "LOW"), "freq 1e6");
    ask(&f, "FREQ 2e9");
    cr_expect(eq(str, (char *)ask(&f, "V?"), "HIGH"));
    ask(&f, "OUTP OFF");
    cr_expect(eq(str, (char *)ask(&f, "V?"), "LOW"), "a boolean false, not the string \"0\"");
    ask(&f, "TRIG bus");
    cr_expect(eq(str, (char *)ask(&f, "T?"), "BUS bench integer 0.5"),
              "an enum's short form, a string, an int, a float with a variable");
    cr_expect(eq(u64, dw_sim_engine_lua_errors(f.e), 0));
    unload(&f);
}

Test(sim_lua, lua_action_sets_properties_through_their_validation)
{
    fixture f;
    load(&f,
         "{" PROPS_SUPPLY ", `rules`: ["
         "  {`when`: {`regex`: `^SETV (.*)$`}, `lua`: `volt = tonumber(captures[1])`,"
         "   `reply`: `${volt}`},"
         "  {`when`: `BOTH`, `lua`: `ohms = 20 state.count = 3 volt = 7 state.volt = 99`},"
         "  {`when`: `KIND`, `lua`: `output = 1 trig = 'imm' label = 'x' .. volt`,"
         "   `reply`: `${output} ${trig} ${label}`},"
         "  {`when`: `TYPE`, `lua`: `volt = 'high'`},"
         "  {`when`: `TEN`, `set`: {`volt`: {`lua`: `volt * 10`}, `count`: {`lua`: `count + 1`}},"
         "   `reply`: `${volt} ${count}`},"
         "  {`when`: `RO`, `reply`: {`lua`: `(function() volt = 1 return 1 end)()`}}"
         " ], `unmatched`: {`reply`: `? ${volt} ${count} ${ohms}`}}");
    cr_expect(eq(str, (char *)ask(&f, "SETV 12.5"), "12.5"), "accepted");
    cr_expect(eq(str, (char *)ask(&f, "VOLT?"), "12.5"), "the property's own command reads it");
    cr_expect(eq(str, (char *)ask(&f, "SETV 40"), "? 12.5 0 10"), "out of range: unmatched");
    cr_expect(eq(int, f.o.source, DW_SIM_BY_UNMATCHED));
    cr_expect(eq(str, (char *)f.o.lua.name, "rules[0]"));
    cr_expect(strstr(f.o.lua.message, "rules[0].lua:1: property 'volt' refuses 40") != NULL, "%s",
              f.o.lua.message);
    cr_expect(strstr(f.o.lua.message, "out of range") != NULL, "%s", f.o.lua.message);
    cr_expect(eq(str, (char *)ask(&f, "BOTH"), "? 12.5 0 10"),
              "a refused value undoes the variable and the properties set before it");
    cr_expect(eq(str, (char *)ask(&f, "KIND"), "1 IMM x12.5"), "a number to a bool, a choice");
    cr_expect(eq(str, (char *)ask(&f, "TYPE"), "? 12.5 0 10"));
    cr_expect(strstr(f.o.lua.message, "property 'volt' refuses high: Data type error") != NULL,
              "%s", f.o.lua.message);
    cr_expect(eq(str, (char *)ask(&f, "TEN"), "12.5 1"),
              "a computed set value the property refuses leaves it as a text set does");
    cr_expect(eq(str, (char *)ask(&f, "RO"), "? 12.5 1 10"), "properties are read-only there");
    cr_expect(strstr(f.o.lua.message, "cannot set 'volt' here") != NULL, "%s", f.o.lua.message);
    unload(&f);
}

Test(sim_lua, a_ramping_property_reads_where_it_is_now)
{
    fixture f;
    load(&f,
         "{`properties`: {"
         "  `volt`: {`type`: `float`, `command`: `VOLT`, `min`: 0, `max`: 30, `default`: 10},"
         "  `vout`: {`type`: `float`, `command`: `VOUT`, `access`: `ro`, `min`: 0, `max`: 30,"
         "   `ramp`: {`to`: `volt`, `rate`: 2}}},"
         " `rules`: [{`when`: `V?`, `reply`: {`lua`: `string.format('%.1f at %g', vout, now)`}},"
         "           {`when`: `UP`, `if`: `vout < volt`, `reply`: `rising`}]}");
    double now = 100;
    dw_sim_engine_set_clock(f.e, fixed_clock, &now);
    cr_expect(eq(str, (char *)ask(&f, "V?"), "0.0 at 100"), "the ramp starts at its first read");
    now = 102;
    cr_expect(eq(str, (char *)ask(&f, "V?"), "4.0 at 102"), "2 V/s for 2 s");
    cr_expect(eq(str, (char *)ask(&f, "UP"), "rising"));
    now = 110;
    cr_expect(eq(str, (char *)ask(&f, "V?"), "10.0 at 110"), "at its target");
    cr_expect(eq(str, (char *)ask(&f, "UP"), ""), "no rule: the ramp is done");
    unload(&f);
}

Test(sim_lua, properties_and_variables_share_one_namespace)
{
    dw_sim_script *s = NULL;
    dw_error err;
    int rc = try_load("{`state`: {`volt`: 1},"
                      " `properties`: {`volt`: {`type`: `float`, `command`: `VOLT`}},"
                      " `rules`: [{`when`: `V?`, `reply`: {`lua`: `volt`}}]}",
                      &s, &err);
    cr_expect(eq(int, rc, DW_ESCRIPT));
    cr_expect(strstr(dw_error_message(&err), "properties.volt: \"volt\" is also a variable") !=
                  NULL,
              "%s", dw_error_message(&err));
    dw_sim_script_free(s);
}

/* ---- devwire-sim: logged once, summary, transcript ------------------------ */

Test(sim_lua, devwire_sim_answers_a_neighbour_while_chunks_misbehave, .init = dw_sim_fixture_init,
     .fini = dw_sim_fixture_fini, .timeout = 120)
{
    char *script = json_of("{`rules`: [" HOSTILE_RULES PING_AND_UNMATCHED);
    int rc = dw_sim_proc_serve(&dw_sim_fixture.proc, "lua", script, NULL, &dw_sim_fixture.script);
    free(script);
    cr_assert(eq(int, rc, DW_OK), "devwire-sim did not start (%s)", dw_strerror(rc));
    dw_sim_client bad, good;
    rc = dw_sim_client_open(&bad, dw_sim_fixture.proc.port, dw_sentinel_marshaller_new("\n", 1),
                            10000);
    cr_assert(eq(int, rc, DW_OK), "connect: %s", dw_error_message(&bad.err));
    rc = dw_sim_client_open(&good, dw_sim_fixture.proc.port, dw_sentinel_marshaller_new("\n", 1),
                            10000);
    cr_assert(eq(int, rc, DW_OK), "connect: %s", dw_error_message(&good.err));
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        double t0 = seconds();
        const char *got = dw_sim_client_ask(&bad, hostile[i]);
        double took = seconds() - t0;
        cr_expect(got && strcmp(got, "?") == 0, "%s: unmatched", hostile[i]);
        cr_expect(took < 2.0, "%s took %.3f s", hostile[i], took);
        t0 = seconds();
        got = dw_sim_client_ask(&good, "ping");
        took = seconds() - t0;
        cr_expect(got && strcmp(got, "pong") == 0, "the neighbour is answered");
        cr_expect(took < 2.0, "the neighbour waited %.3f s", took);
    }
    dw_sim_client_close(&bad);
    dw_sim_client_close(&good);
    cr_expect(eq(int, dw_sim_proc_stop(&dw_sim_fixture.proc, 5000), 0), "SIGTERM works");
}

Test(sim_lua, devwire_sim_logs_a_failure_once_and_counts_it, .init = dw_sim_fixture_init,
     .fini = dw_sim_fixture_fini, .timeout = 120)
{
    dw_sim_fixture.transcript = dw_sim_temp_file("lua-transcript", "");
    cr_assert(dw_sim_fixture.transcript != NULL);
    const char *const args[] = {"--transcript", dw_sim_fixture.transcript, NULL};
    char *script =
        json_of("{`rules`: [{`when`: `LOOP`, `lua`: `while true do end`}," PING_AND_UNMATCHED);
    int rc = dw_sim_proc_serve(&dw_sim_fixture.proc, "lua", script, args, &dw_sim_fixture.script);
    free(script);
    cr_assert(eq(int, rc, DW_OK), "devwire-sim did not start (%s)", dw_strerror(rc));
    dw_sim_client c;
    rc = dw_sim_client_open(&c, dw_sim_fixture.proc.port, dw_sentinel_marshaller_new("\n", 1),
                            10000);
    cr_assert(eq(int, rc, DW_OK), "connect: %s", dw_error_message(&c.err));
    for (int i = 0; i < 2; i++) {
        const char *got = dw_sim_client_ask(&c, "LOOP");
        cr_assert(got != NULL, "%s", dw_error_message(&c.err));
        cr_expect(eq(str, (char *)got, "?"));
    }
    const char *got = dw_sim_client_ask(&c, "ping");
    cr_expect(got && strcmp(got, "pong") == 0, "the device goes on");
    dw_sim_client_close(&c);
    cr_expect(eq(int, dw_sim_proc_stop(&dw_sim_fixture.proc, 5000), 0));
    const char *out = dw_sim_out_of(&dw_sim_fixture.proc);
    const char *err = dw_sim_err_of(&dw_sim_fixture.proc);
    cr_expect(eq(sz, dw_sim_count(err, "lua error"), 1), "logged once, stderr:\n%s", err);
    /* The instruction budget or the 10 ms deadline, whichever comes first. */
    cr_expect(strstr(err, "rules[0]: lua error: rules[0].lua:1: ") != NULL &&
                  strstr(err, " exceeded; handled as unmatched") != NULL,
              "stderr:\n%s", err);
    cr_expect(strstr(out, "lua errors: 2 (each request handled as unmatched)\n    rules[0]: 2\n") !=
                  NULL,
              "summary:\n%s", out);
    cr_expect(strstr(out, "unmatched requests: 2") != NULL, "summary:\n%s", out);
    char *t = dw_sim_read_file(dw_sim_fixture.transcript, NULL);
    cr_assert(t != NULL);
    cr_expect(eq(sz, dw_sim_count(t, "\"dir\":\"note\",\"text\":\"lua error: rules[0].lua:1: "), 2),
              "transcript:\n%s", t);
    free(t);
}
