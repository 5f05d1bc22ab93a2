/* devwire-sim's engine: a state (the variables, the step cursor, the reply
 * turns, the SCPI status, the properties), the undo list of one request's
 * changes, and running a chunk of Lua against the state (engine_int.h). */
#include "engine/engine_int.h"
#include "common/memory.h"

#include <stdlib.h>
#include <string.h>

/* Steps, rules, unmatched, on_error. */
static size_t nactions(const dw_sim_script *s)
{
    return s->nsteps + s->nrules + 2;
}

int dw__engine_state_init(sim_state *st, const dw_sim_script *s, uint64_t *rng)
{
    memset(st, 0, sizeof *st);
    st->vars = calloc(s->nvars ? s->nvars : 1, sizeof *st->vars);
    st->turns = calloc(nactions(s), sizeof *st->turns);
    if (!st->vars || !st->turns)
        return DW_ENOMEM;
    for (size_t i = 0; i < s->nvars; i++)
        if (dw_buf_append(&st->vars[i], s->vars[i].initial.data, s->vars[i].initial.len) != DW_OK)
            return DW_ENOMEM;
    if (s->profile == DW_SIM_PROFILE_SCPI && !(st->scpi = dw_scpi_status_new(s->error_queue)))
        return DW_ENOMEM;
    if (s->props && !(st->props = dw_sim_props_state_new(s->props, rng)))
        return DW_ENOMEM;
    return DW_OK;
}

void dw__engine_state_destroy(sim_state *st, const dw_sim_script *s)
{
    if (st->vars)
        for (size_t i = 0; i < s->nvars; i++)
            dw_buf_free(&st->vars[i]);
    free(st->vars);
    free(st->turns);
    dw_scpi_status_free(st->scpi);
    dw_sim_props_state_free(st->props);
}

/* Variables to their initial values, properties to their defaults. */
int dw__engine_state_reset(const dw_sim_script *s, sim_state *st)
{
    for (size_t i = 0; i < s->nvars; i++) {
        dw_buf_clear(&st->vars[i]);
        if (dw_buf_append(&st->vars[i], s->vars[i].initial.data, s->vars[i].initial.len) != DW_OK)
            return DW_ENOMEM;
    }
    return st->props ? dw_sim_props_reset(st->props) : DW_OK;
}

/* What *RST puts back (variables, properties) and also the step cursor, the
 * reply turns and the SCPI status: the script's start. */
int dw__engine_state_rewind(sim_state *st, const dw_sim_script *s)
{
    int rc = dw__engine_state_reset(s, st);
    memset(st->turns, 0, nactions(s) * sizeof *st->turns);
    st->step = 0;
    st->busy_until = 0; /* nothing pending */
    st->opc_armed = 0;
    if (st->scpi) {
        dw_scpi_status *fresh = dw_scpi_status_new(s->error_queue);
        if (fresh) {
            dw_scpi_status_free(st->scpi);
            st->scpi = fresh;
        } else {
            rc = DW_ENOMEM;
        }
    }
    return rc;
}

/* A free entry at the end of the session's undo list (not yet counted),
 * or NULL when out of memory. */
static struct undo *undo_slot(dw_sim_session *ss)
{
    struct undo *u = dw_sim_grow(ss->undo, ss->nundo, &ss->undo_cap, sizeof *u, 4);
    if (!u)
        return NULL;
    ss->undo = u;
    return memset(&ss->undo[ss->nundo], 0, sizeof *ss->undo);
}

/* Set variable `var` to *v (taken), keeping the old value in the session's
 * undo list until the request is over. */
int dw__engine_state_assign(dw_sim_session *ss, sim_state *st, size_t var, dw_buf *v)
{
    struct undo *u = undo_slot(ss);
    if (!u) {
        dw_buf_free(v);
        return DW_ENOMEM;
    }
    u->var = var;
    u->old = st->vars[var];
    ss->nundo++;
    st->vars[var] = *v;
    dw_buf_init(v);
    return DW_OK;
}

/* Keep property i's value in the session's undo list (before a change). */
static int prop_keep(dw_sim_session *ss, sim_state *st, size_t i)
{
    struct undo *u = undo_slot(ss);
    if (!u || dw_sim_prop_save(st->props, i, &u->saved) != DW_OK)
        return DW_ENOMEM;
    u->var = i;
    u->prop = 1;
    ss->nundo++;
    return DW_OK;
}

/* A "set" of property i from the text *v (freed), validated as a property's
 * command validates it: a value it refuses leaves it as it was. With Lua
 * (lc) the old value is kept for undo_all. */
int dw__engine_set_prop_text(lua_call *lc, sim_state *st, size_t i, dw_buf *v)
{
    int rc = lc ? prop_keep(lc->ss, st, i) : DW_OK;
    const uint8_t *text = v->data ? v->data : (const uint8_t *)"";
    if (rc == DW_OK && dw_sim_prop_set_text(st->props, i, text, v->len, st->now) == DW_SCPI_NOMEM)
        rc = DW_ENOMEM;
    dw_buf_free(v);
    return rc;
}

/* An assignment from a "lua" action (dw_sim_lua_scope.assign). */
static int lua_assign(void *arg, size_t var, const uint8_t *p, size_t n)
{
    lua_call *lc = arg;
    dw_buf v = DW_BUF_INIT;
    if (n && dw_buf_append(&v, p, n) != DW_OK)
        return DW_ENOMEM;
    return dw__engine_state_assign(lc->ss, lc->st, var, &v);
}

/* An assignment to a property from a "lua" action (dw_sim_lua_scope):
 * 0, or the SCPI error code of a refused value (then unchanged). */
static int lua_set_prop(void *arg, size_t i, const dw_sim_prop_value *v)
{
    lua_call *lc = arg;
    if (prop_keep(lc->ss, lc->st, i) != DW_OK)
        return DW_SCPI_NOMEM;
    return dw_sim_prop_set(lc->st->props, i, v, lc->st->now);
}

/* scpi.error from a "lua" action (dw_sim_lua_scope.queue_error): kept
 * in the session until the unit's action has run through. */
static int lua_queue_error(void *arg, int code, const char *text)
{
    dw_sim_session *ss = ((lua_call *)arg)->ss;
    struct queued_error *q = dw_sim_grow(ss->queued, ss->nqueued, &ss->queued_cap, sizeof *q, 4);
    if (!q)
        return DW_ENOMEM;
    ss->queued = q;
    q = &ss->queued[ss->nqueued];
    q->text = text ? strdup(text) : NULL;
    if (text && !q->text)
        return DW_ENOMEM;
    q->code = code;
    ss->nqueued++;
    return DW_OK;
}

/* The errors the unit's Lua queued go into the error queue, in order, as
 * the engine's own do (their ESR bits too). 1 if one is a command error
 * (the rest of the message is then dropped), else 0. */
int dw__engine_errors_commit(dw_sim_session *ss, sim_state *st)
{
    int command = 0;
    for (size_t i = 0; i < ss->nqueued; i++) {
        int code = ss->queued[i].code;
        dw_scpi_status_error_text(st->scpi, code, ss->queued[i].text);
        command |= code <= -100 && code > -200;
    }
    dw__engine_errors_drop(ss);
    return command;
}

/* Forget the errors the unit's Lua queued (a chunk failed). */
void dw__engine_errors_drop(dw_sim_session *ss)
{
    for (size_t i = 0; i < ss->nqueued; i++)
        free(ss->queued[i].text);
    ss->nqueued = 0;
}

/* The request is over: keep what it changed. */
void dw__engine_undo_forget(dw_sim_session *ss)
{
    dw__engine_errors_drop(ss);
    for (size_t i = 0; i < ss->nundo; i++) {
        dw_buf_free(&ss->undo[i].old);
        dw_buf_free(&ss->undo[i].saved.str);
    }
    ss->nundo = 0;
}

/* A chunk failed: undo what the request changed, latest first. */
void dw__engine_undo_all(dw_sim_session *ss, sim_state *st)
{
    dw__engine_errors_drop(ss);
    while (ss->nundo) {
        struct undo *u = &ss->undo[--ss->nundo];
        if (u->prop) {
            dw_sim_prop_restore(st->props, u->var, &u->saved);
            continue;
        }
        dw_buf_free(&st->vars[u->var]);
        st->vars[u->var] = u->old;
    }
}

/* Note in the outcome that a chunk of action `id` (a step's or a rule's)
 * failed, and count it; the first failure of each is flagged for the log. */
static void note_lua(dw_sim_engine *e, dw_sim_outcome *out, size_t id, const char *msg)
{
    const dw_sim_script *s = e->script;
    int step = id < s->nsteps;
    size_t i = step ? id : id - s->nsteps;
    const char *name = step ? s->steps[i].name : s->rules[i].name;
    uint64_t *count = step ? &e->step_lua_errors[i] : &e->rule_lua_errors[i];
    out->lua.source = step ? DW_SIM_BY_STEP : DW_SIM_BY_RULE;
    out->lua.index = i;
    out->lua.name = name ? name : step ? "step" : "rule";
    out->lua.first = (*count)++ == 0;
    out->lua.message = msg;
    e->lua_errors++;
}

/* Run chunk `ch` of action `id` (see dw_sim_lua_eval): DW_OK, DW_ENOMEM,
 * or LUA_FAILED (noted in the outcome). */
int dw__engine_lua_eval(lua_call *lc, size_t id, const dw_sim_lua_chunk *ch, int *truth,
                        dw_buf *text)
{
    sim_state *st = lc->st;
    int scpi = st->scpi && ch->statements;
    dw_sim_lua_scope sc = {.request = lc->req,
                           .request_len = lc->n,
                           .cap_so = lc->c->so,
                           .cap_eo = lc->c->eo,
                           .vars = st->vars,
                           .props = st->props,
                           .now = st->now,
                           .assign = ch->statements ? lua_assign : NULL,
                           .set_prop = ch->statements ? lua_set_prop : NULL,
                           .arg = lc,
                           .channel = lc->c->channel,
                           .queue_error = scpi ? lua_queue_error : NULL};
    dw_sim_session *ss = lc->ss;
    int rc = dw_sim_lua_eval(lc->e->lua, ch, &sc, truth, text, ss->lua_msg, sizeof ss->lua_msg);
    if (rc != DW_ESCRIPT)
        return rc;
    note_lua(lc->e, lc->out, id, ss->lua_msg);
    return LUA_FAILED;
}

/* Does the "if" `cond` of action `id` hold (1 or 0)? No "if" holds. 0 with
 * *rc set when the chunk failed (LUA_FAILED) or DW_ENOMEM. */
int dw__engine_cond_holds(lua_call *lc, size_t id, const dw_sim_lua_chunk *cond, int *rc)
{
    int truth = 1;
    if (cond)
        *rc = dw__engine_lua_eval(lc, id, cond, &truth, NULL);
    return *rc == DW_OK && truth;
}
