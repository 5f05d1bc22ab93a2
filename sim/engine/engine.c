/* devwire-sim's engine: see engine.h. The life of an engine and its
 * sessions, the entry of a request and the text profiles' dispatch, the
 * banner and periodic messages, counters and run-time control; the SCPI
 * profile in engine_scpi.c, matching and actions in engine_rules.c, the
 * state in engine_state.c (engine_int.h). */
#include "engine/engine_int.h"
#include "common/memory.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The Lua state and what goes with it, only for a script that has Lua. */
static int lua_init(dw_sim_engine *e, dw_error *err)
{
    const dw_sim_script *s = e->script;
    if (!s->nlua)
        return DW_OK;
    int rc = dw_sim_lua_new(s, &e->lua, err);
    if (rc != DW_OK)
        return rc;
    dw_sim_lua_seed(e->lua, DW_SIM_DEFAULT_SEED);
    for (size_t i = 0; i < s->nrules; i++)
        e->has_cond |= s->rules[i].cond != NULL;
    e->rule_lua_errors = calloc(s->nrules ? s->nrules : 1, sizeof *e->rule_lua_errors);
    e->step_lua_errors = calloc(s->nsteps ? s->nsteps : 1, sizeof *e->step_lua_errors);
    if (e->has_cond && (e->same_next = malloc(s->nrules * sizeof *e->same_next)))
        for (size_t i = 0; i < s->nrules; i++)
            e->same_next[i] = SIZE_MAX;
    if (!e->rule_lua_errors || !e->step_lua_errors || (e->has_cond && !e->same_next))
        return dw_error_set(err, DW_ENOMEM, "engine: out of memory");
    return DW_OK;
}

/* The default clock: monotonic seconds since engine e was built. */
static double since_start(void *arg)
{
    const dw_sim_engine *e = arg;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)(ts.tv_sec - e->start.tv_sec) + (double)(ts.tv_nsec - e->start.tv_nsec) / 1e9;
}

/* Everything dw_sim_engine_new builds after the clock: DW_OK, or an error
 * in `err` (the engine is then freed by the caller). */
static int engine_build(dw_sim_engine *e, dw_error *err)
{
    const dw_sim_script *script = e->script;
    int rc = dw__engine_state_init(&e->shared, script, &e->noise);
    e->rule_hits = calloc(script->nrules ? script->nrules : 1, sizeof *e->rule_hits);
    e->step_hits = calloc(script->nsteps ? script->nsteps : 1, sizeof *e->step_hits);
    e->rule_limits = calloc(script->nrules ? script->nrules : 1, sizeof *e->rule_limits);
    e->step_limits = calloc(script->nsteps ? script->nsteps : 1, sizeof *e->step_limits);
    e->inexact = calloc(script->nrules ? script->nrules : 1, sizeof *e->inexact);
    if (rc != DW_OK || !e->rule_hits || !e->step_hits || !e->rule_limits || !e->step_limits ||
        !e->inexact)
        return dw_error_set(err, DW_ENOMEM, "engine: out of memory");
    e->req_m = dw_sim_framing_marshaller(&script->request_framing);
    e->resp_m = dw_sim_framing_marshaller(&script->response_framing);
    if (!e->req_m || !e->resp_m)
        return dw_error_set(err, DW_EINVAL, "%s: cannot build the framing",
                            script->path ? script->path : "script");
    if (script->profile == DW_SIM_PROFILE_SCPI && !(e->builtins = dw_scpi_builtins_new()))
        return dw_error_set(err, DW_ENOMEM, "engine: out of memory");
    e->pre = calloc(script->nrules ? script->nrules : 1, sizeof *e->pre);
    if (!e->pre)
        return dw_error_set(err, DW_ENOMEM, "engine: out of memory");
    dw__engine_prebuild(e);
    if ((rc = lua_init(e, err)) != DW_OK)
        return rc;
    if (dw__engine_index(e) != DW_OK)
        return dw_error_set(err, DW_ENOMEM, "engine: out of memory");
    return DW_OK;
}

int dw_sim_engine_new(const dw_sim_script *script, dw_sim_engine **out, dw_error *err)
{
    *out = NULL;
    dw_sim_engine *e = calloc(1, sizeof *e);
    if (!e)
        return dw_error_set(err, DW_ENOMEM, "engine: out of memory");
    e->script = script;
    clock_gettime(CLOCK_MONOTONIC, &e->start);
    e->clock = since_start;
    e->clock_arg = e;
    dw_sim_noise_seed(&e->noise, DW_SIM_DEFAULT_SEED);
    int rc = engine_build(e, err);
    if (rc != DW_OK) {
        dw_sim_engine_free(e);
        return rc;
    }
    *out = e;
    return DW_OK;
}

void dw_sim_engine_free(dw_sim_engine *e)
{
    if (!e)
        return;
    dw_marshaller_free(e->req_m);
    dw_marshaller_free(e->resp_m);
    free(e->slots);
    free(e->inexact);
    dw_scpi_builtins_free(e->builtins);
    if (e->pre)
        for (size_t i = 0; i < e->script->nrules; i++)
            free(e->pre[i].data);
    free(e->pre);
    dw__engine_state_destroy(&e->shared, e->script);
    free(e->rule_hits);
    free(e->step_hits);
    free(e->rule_limits);
    free(e->step_limits);
    dw_sim_lua_free(e->lua);
    free(e->same_next);
    free(e->rule_lua_errors);
    free(e->step_lua_errors);
    for (size_t i = 0; i < e->nsamples; i++)
        dw_buf_free(&e->samples[i]);
    free(e);
}

const dw_sim_script *dw_sim_engine_script(const dw_sim_engine *e)
{
    return e->script;
}

const dw_marshaller *dw_sim_engine_request_marshaller(const dw_sim_engine *e)
{
    return e->req_m;
}

const dw_marshaller *dw_sim_engine_response_marshaller(const dw_sim_engine *e)
{
    return e->resp_m;
}

dw_sim_session *dw_sim_session_new(dw_sim_engine *e)
{
    dw_sim_session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->e = e;
    s->st = &e->shared;
    if (e->script->scope == DW_SIM_SCOPE_CONNECTION) {
        s->st = &s->own;
        if (dw__engine_state_init(&s->own, e->script, &e->noise) != DW_OK) {
            dw_sim_session_free(s);
            return NULL;
        }
    }
    if (dw__engine_session_regex(s) != DW_OK) {
        dw_sim_session_free(s);
        return NULL;
    }
    return s;
}

void dw_sim_session_free(dw_sim_session *s)
{
    if (!s)
        return;
    if (s->st == &s->own)
        dw__engine_state_destroy(&s->own, s->e->script);
    pcre2_match_data_free(s->md);
    pcre2_match_context_free(s->mc);
    dw_buf_free(&s->scratch);
    dw_buf_free(&s->scpi_resp);
    dw_buf_free(&s->scpi_caps);
    dw__engine_undo_forget(s);
    free(s->undo);
    free(s->queued);
    free(s);
}

int dw_sim_engine_status_byte(const dw_sim_engine *e, const dw_sim_session *ss, int mav,
                              uint8_t *stb)
{
    (void)e;
    if (!ss->st->scpi)
        return DW_ENOENT;
    *stb = dw_scpi_status_stb(ss->st->scpi, mav);
    return DW_OK;
}

int dw_sim_session_hung(const dw_sim_session *s)
{
    return s->hung;
}

void dw_sim_outcome_init(dw_sim_outcome *o)
{
    memset(o, 0, sizeof *o);
    o->index = SIZE_MAX;
}

void dw_sim_outcome_free(dw_sim_outcome *o)
{
    if (!o)
        return;
    dw_buf_free(&o->bytes);
    free(o->limits);
    dw_sim_outcome_init(o);
}

void dw_sim_engine_set_rng(dw_sim_engine *e, dw_sim_rng *r)
{
    e->rng = r;
}

/* Reset `out` for a new request, keeping the storage of its byte buffer and
 * limit list. */
static void outcome_reset(dw_sim_outcome *out)
{
    dw_buf keep = out->bytes;
    dw_sim_limit_hit *limits = out->limits;
    size_t cap = out->limits_cap;
    /* The Lua failure comes last: its name alone says there is none. */
    memset(out, 0, offsetof(dw_sim_outcome, lua));
    out->index = SIZE_MAX;
    out->lua.name = NULL;
    out->bytes = keep;
    out->limits = limits;
    out->limits_cap = cap;
    dw_buf_clear(&out->bytes);
}

int dw_sim_engine_handle(dw_sim_engine *e, dw_sim_session *ss, const uint8_t *req, size_t n,
                         dw_sim_outcome *out, dw_error *err)
{
    double now = e->lua || dw_sim_props_timed(e->script->props) || e->script->has_busy
                     ? e->clock(e->clock_arg)
                     : 0;
    return dw_sim_engine_handle_at(e, ss, req, n, now, out, err);
}

/* The properties' commands for a request no rule took (other profiles):
 * 1 if one took it (the answer, or on_error's, in `out`), else 0. */
static int text_props(dw_sim_engine *e, dw_sim_session *ss, const uint8_t *req, size_t n,
                      dw_sim_outcome *out, dw_error *err, int *rc)
{
    const dw_sim_script *s = e->script;
    sim_state *st = ss->st;
    dw_buf_clear(&ss->scratch);
    int r = dw_sim_props_command(st->props, req, n, st->now, &ss->scratch);
    if (r == 0 || (r < 0 && r != DW_SCPI_NOMEM && !s->has_on_error))
        return 0;
    out->source = DW_SIM_BY_PROFILE;
    out->name = r < 0 ? "on_error" : "properties";
    if (r == DW_SCPI_NOMEM) {
        *rc = DW_ENOMEM;
    } else if (r < 0) {
        captures c;
        dw__engine_captures_whole(&c, n);
        *rc = dw__engine_apply_action(e, st, s->nsteps + s->nrules + 1, &s->on_error, NULL,
                                      out->name, req, &c, out, &ss->scratch, err, NULL);
    } else {
        dw_error merr;
        dw_error_clear(&merr);
        *rc = r == 1 || ss->scratch.len
                  ? dw_marshall(e->resp_m, ss->scratch.data, ss->scratch.len, &out->bytes, &merr)
                  : DW_OK;
        out->nframes = r == 1 || ss->scratch.len;
        if (*rc == DW_OK && s->prompt.len)
            *rc = dw_buf_append(&out->bytes, s->prompt.data, s->prompt.len);
        if (*rc != DW_OK && *rc != DW_ENOMEM)
            *rc = dw_error_set(err, DW_EINVAL, "properties: the answer cannot be framed: %s",
                               dw_error_message(&merr));
    }
    return 1;
}

/* The next expected step, if the request is it: MATCHED (its "if" holding)
 * or not; *rc set when a limit was noted, a chunk failed (LUA_FAILED) or
 * memory ran out. */
static int match_step(dw_sim_engine *e, dw_sim_session *ss, const uint8_t *req, size_t n,
                      captures *c, dw_sim_outcome *out, lua_call *lc, int *rc)
{
    const dw_sim_script *s = e->script;
    sim_state *st = ss->st;
    if (st->step >= s->nsteps)
        return NO_MATCH;
    const dw_sim_step *sp = &s->steps[st->step];
    int step = dw__engine_match(ss, &sp->expect, req, n, c);
    if (step == LIMITED)
        *rc = dw__engine_note_limit(e, out, DW_SIM_BY_STEP, st->step);
    else if (step == MATCHED && sp->cond && !dw__engine_cond_holds(lc, st->step, sp->cond, rc))
        step = NO_MATCH;
    return step;
}

/* The next step took the request: carry out its action and move on. */
static int answer_step(dw_sim_engine *e, dw_sim_session *ss, const uint8_t *req, captures *c,
                       dw_sim_outcome *out, dw_error *err, lua_call *lc)
{
    const dw_sim_script *s = e->script;
    sim_state *st = ss->st;
    size_t i = st->step++;
    out->source = DW_SIM_BY_STEP;
    out->index = i;
    out->name = s->steps[i].name ? s->steps[i].name : "step";
    int rc = dw__engine_apply_action(e, st, i, &s->steps[i].action, &e->step_hits[i], out->name,
                                     req, c, out, &ss->scratch, err, lc);
    if (rc == LUA_FAILED)
        st->step = i;
    return rc;
}

/* No step took the request: the first rule that does, else a property's
 * command, else the unmatched behaviour. */
static int answer_rules(dw_sim_engine *e, dw_sim_session *ss, const uint8_t *req, size_t n,
                        captures *c, dw_sim_outcome *out, dw_error *err, lua_call *lc)
{
    const dw_sim_script *s = e->script;
    int rc = DW_OK;
    size_t r = dw__engine_find_rule(e, ss, req, n, c, out, &rc, lc);
    if (rc != DW_OK) {
        if (rc != LUA_FAILED) /* that is answered by lua_finish */
            out->name = "limit";
        return rc;
    }
    if (r != SIZE_MAX && e->pre[r].data)
        return dw__engine_answer_prebuilt(e, r, out);
    if (r == SIZE_MAX && ss->st->props && text_props(e, ss, req, n, out, err, &rc))
        return rc; /* a property's command */
    if (r == SIZE_MAX)
        return dw__engine_answer_unmatched(e, ss, req, n, c, out, err);
    out->source = DW_SIM_BY_RULE;
    out->index = r;
    out->name = s->rules[r].name ? s->rules[r].name : "rule";
    return dw__engine_apply_action(e, ss->st, s->nsteps + r, &s->rules[r].action, &e->rule_hits[r],
                                   out->name, req, c, out, &ss->scratch, err, lc);
}

/* A request to a script of the text profiles: the next step, then the
 * rules, then the properties' commands, then the unmatched behaviour. */
static int text_handle(dw_sim_engine *e, dw_sim_session *ss, const uint8_t *req, size_t n,
                       dw_sim_outcome *out, dw_error *err)
{
    captures c;
    lua_call lcs = {e, ss, ss->st, req, n, &c, out};
    lua_call *lc = e->lua ? &lcs : NULL;
    int rc = DW_OK;
    int step = match_step(e, ss, req, n, &c, out, lc, &rc);
    if (rc != DW_OK) {
        if (rc != LUA_FAILED) /* that is answered by lua_finish */
            out->name = "limit";
    } else if (step == MATCHED) {
        rc = answer_step(e, ss, req, &c, out, err, lc);
    } else {
        rc = answer_rules(e, ss, req, n, &c, out, err, lc);
    }
    if (lc)
        rc = dw__engine_lua_finish(e, ss, req, n, &c, out, err, rc);
    return rc;
}

int dw_sim_engine_handle_at(dw_sim_engine *e, dw_sim_session *ss, const uint8_t *req, size_t n,
                            double now, dw_sim_outcome *out, dw_error *err)
{
    static const uint8_t none[1] = {0};
    outcome_reset(out);
    if (!req)
        req = none;
    e->requests++;
    if (ss->hung) {
        out->source = DW_SIM_BY_HUNG;
        out->name = "hung";
        return DW_OK;
    }
    ss->st->now = now;
    int rc = e->script->profile == DW_SIM_PROFILE_SCPI
                 ? dw__engine_scpi_handle(e, ss, req, n, out, err)
                 : text_handle(e, ss, req, n, out, err);
    if (out->source == DW_SIM_BY_UNMATCHED)
        dw__engine_keep_sample(e, req, n);
    dw_buf *bufs[] = {&ss->scratch, &ss->scpi_resp, &ss->scpi_caps};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]->cap > DW_SIM_KEEP_BYTES) { /* after a large message (memory.h) */
            dw_buf_clear(bufs[i]);
            dw_buf_shrink(bufs[i], DW_SIM_KEEP_BYTES);
        }
    if (out->fault == DW_SIM_FAULT_HANG)
        ss->hung = 1;
    if (rc == DW_ENOMEM)
        dw_error_set(err, DW_ENOMEM, "%s: out of memory", out->name);
    return rc;
}

int dw_sim_engine_banner(dw_sim_engine *e, dw_sim_session *ss, dw_buf *out)
{
    if (e->script->banner.nsegs == 0)
        return DW_OK;
    ss->st->now = e->clock(e->clock_arg);
    return dw__engine_render(&e->script->banner, ss->st, NULL, NULL, out);
}

int dw_sim_engine_periodic(dw_sim_engine *e, dw_sim_session *ss, size_t i, dw_buf *out,
                           dw_error *err)
{
    if (i >= e->script->nperiodic)
        return dw_error_set(err, DW_EINVAL, "periodic[%zu]: no such message", i);
    dw_buf payload = DW_BUF_INIT;
    ss->st->now = e->clock(e->clock_arg);
    int rc = dw__engine_render(&e->script->periodic[i].send, ss->st, NULL, NULL, &payload);
    if (rc == DW_OK) {
        dw_error merr;
        dw_error_clear(&merr);
        rc = dw_marshall(e->resp_m, payload.data, payload.len, out, &merr);
        if (rc != DW_OK && rc != DW_ENOMEM)
            rc = dw_error_set(err, DW_EINVAL, "periodic[%zu]: cannot be framed: %s", i,
                              dw_error_message(&merr));
    }
    dw_buf_free(&payload);
    return rc;
}

uint64_t dw_sim_engine_rule_hits(const dw_sim_engine *e, size_t i)
{
    return i < e->script->nrules ? e->rule_hits[i] : 0;
}

uint64_t dw_sim_engine_step_hits(const dw_sim_engine *e, size_t i)
{
    return i < e->script->nsteps ? e->step_hits[i] : 0;
}

uint64_t dw_sim_engine_rule_limit_hits(const dw_sim_engine *e, size_t i)
{
    return i < e->script->nrules ? e->rule_limits[i] : 0;
}

uint64_t dw_sim_engine_step_limit_hits(const dw_sim_engine *e, size_t i)
{
    return i < e->script->nsteps ? e->step_limits[i] : 0;
}

uint64_t dw_sim_engine_regex_limit_hits(const dw_sim_engine *e)
{
    return e->limit_hits;
}

uint64_t dw_sim_engine_requests(const dw_sim_engine *e)
{
    return e->requests;
}

uint64_t dw_sim_engine_unmatched(const dw_sim_engine *e)
{
    return e->unmatched;
}

size_t dw_sim_engine_steps_not_reached(const dw_sim_engine *e)
{
    size_t n = 0;
    for (size_t i = 0; i < e->script->nsteps; i++)
        if (e->step_hits[i] == 0)
            n++;
    return n;
}

int dw_sim_engine_unmatched_sample(dw_sim_engine *e, size_t k, dw_buf *out)
{
    int rc = DW_ENOENT;
    if (k < e->nsamples) {
        dw_buf_clear(out);
        rc = dw_buf_append(out, e->samples[k].data, e->samples[k].len);
    }
    return rc;
}

void dw_sim_engine_lua_limits(dw_sim_engine *e, uint32_t instructions, size_t memory)
{
    if (e->lua)
        dw_sim_lua_set_limits(e->lua, instructions, memory);
}

void dw_sim_engine_lua_deadline(dw_sim_engine *e, uint64_t ns)
{
    if (e->lua)
        dw_sim_lua_set_deadline(e->lua, ns);
}

void dw_sim_engine_set_clock(dw_sim_engine *e, double (*clock)(void *arg), void *arg)
{
    e->clock = clock ? clock : since_start;
    e->clock_arg = clock ? arg : e;
}

void dw_sim_engine_seed(dw_sim_engine *e, uint64_t seed)
{
    dw_sim_noise_seed(&e->noise, seed);
    if (e->lua)
        dw_sim_lua_seed(e->lua, seed);
}

dw_sim_props_state *dw_sim_session_props(dw_sim_session *ss)
{
    return ss->st->props;
}

size_t dw_sim_engine_lua_memory(dw_sim_engine *e)
{
    return e->lua ? dw_sim_lua_memory(e->lua) : 0;
}

uint64_t dw_sim_engine_lua_errors(const dw_sim_engine *e)
{
    return e->lua_errors;
}

uint64_t dw_sim_engine_rule_lua_errors(const dw_sim_engine *e, size_t i)
{
    return e->lua && i < e->script->nrules ? e->rule_lua_errors[i] : 0;
}

uint64_t dw_sim_engine_step_lua_errors(const dw_sim_engine *e, size_t i)
{
    return e->lua && i < e->script->nsteps ? e->step_lua_errors[i] : 0;
}

/* ---- run-time control (control.h) ------------------------------------------ */

static sim_state *state_of(dw_sim_engine *e, dw_sim_session *ss)
{
    return ss ? ss->st : &e->shared;
}

int dw_sim_engine_var_get(dw_sim_engine *e, dw_sim_session *ss, size_t i, dw_buf *out)
{
    if (i >= e->script->nvars)
        return DW_ENOENT;
    sim_state *st = state_of(e, ss);
    dw_buf_clear(out);
    return dw_buf_append(out, st->vars[i].data, st->vars[i].len);
}

int dw_sim_engine_var_set(dw_sim_engine *e, dw_sim_session *ss, size_t i, const uint8_t *p,
                          size_t n)
{
    if (i >= e->script->nvars)
        return DW_ENOENT;
    dw_buf fresh = DW_BUF_INIT;
    if (dw_buf_append(&fresh, p, n) != DW_OK)
        return DW_ENOMEM;
    sim_state *st = state_of(e, ss);
    dw_buf_free(&st->vars[i]);
    st->vars[i] = fresh;
    st->now = e->clock(e->clock_arg);
    dw__engine_status_update(e, st); /* a condition may have changed */
    return DW_OK;
}

int dw_sim_engine_with_props(dw_sim_engine *e, dw_sim_session *ss,
                             int (*fn)(dw_sim_props_state *props, double now, void *arg), void *arg)
{
    sim_state *st = state_of(e, ss);
    if (!st->props)
        return DW_ENOENT;
    st->now = e->clock(e->clock_arg);
    int rc = fn(st->props, st->now, arg);
    dw__engine_status_update(e, st); /* a condition may have changed */
    return rc;
}

size_t dw_sim_engine_next_step(dw_sim_engine *e, dw_sim_session *ss)
{
    return state_of(e, ss)->step;
}

int dw_sim_engine_reset(dw_sim_engine *e, int keep_counters)
{
    int rc = dw__engine_state_rewind(&e->shared, e->script);
    dw__engine_status_update(e, &e->shared);
    if (keep_counters)
        return rc;
    const dw_sim_script *s = e->script;
    for (size_t i = 0; i < s->nrules; i++) {
        e->rule_hits[i] = 0;
        e->rule_limits[i] = 0;
        if (e->lua)
            e->rule_lua_errors[i] = 0;
    }
    for (size_t i = 0; i < s->nsteps; i++) {
        e->step_hits[i] = 0;
        e->step_limits[i] = 0;
        if (e->lua)
            e->step_lua_errors[i] = 0;
    }
    e->limit_hits = 0;
    e->lua_errors = 0;
    e->status_lua_errors = 0;
    e->requests = 0;
    e->unmatched = 0;
    for (size_t k = 0; k < e->nsamples; k++)
        dw_buf_free(&e->samples[k]);
    e->nsamples = 0;
    return rc;
}

int dw_sim_session_reset(dw_sim_session *s)
{
    s->hung = 0;
    if (s->st != &s->own)
        return DW_OK;
    int rc = dw__engine_state_rewind(&s->own, s->e->script);
    dw__engine_status_update(s->e, &s->own);
    return rc;
}

void dw_sim_session_hang(dw_sim_session *s)
{
    s->hung = 1;
}
