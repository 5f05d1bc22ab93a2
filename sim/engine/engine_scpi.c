/* devwire-sim's engine: the SCPI profile's dispatch. A message is split into
 * its units; each goes to the next step, the rules, the properties'
 * commands, then the built-in commands (engine_int.h). */
#include "engine/engine_int.h"
#include "common/memory.h"

#include <stdlib.h>
#include <string.h>

/* One message's progress. */
typedef struct scpi_msg {
    dw_buf *resp; /* the responses so far, joined with ';' */
    size_t nresp;
    int undefined;  /* some unit fitted nothing */
    int stop;       /* a fault fired: the rest of the message is dropped */
    int indefinite; /* a query's response was indefinite: no query may follow */
    int lua_failed; /* the last unit fitted, but a chunk of Lua failed (so -113) */
} scpi_msg;

/* The short form of choice `k` of "IMMediate|BUS|EXTernal". */
static int choice_short(const char *choices, int k, dw_buf *out)
{
    for (; k > 0; k--)
        choices += strcspn(choices, "|") + 1;
    size_t n = 0;
    while (choices[n] && choices[n] != '|' && !(choices[n] >= 'a' && choices[n] <= 'z'))
        n++;
    return dw_buf_append(out, choices, n);
}

/* Parameter p's value as a capture, checked against its type (`bare`: a
 * "string" takes character data as written): DW_OK, or *scpi_err set. */
static int scpi_value(const dw_scpi_unit *u, const dw_scpi_param *p, const dw_sim_scpi_param *t,
                      int bare, dw_buf *buf, int *scpi_err)
{
    dw_sim_scpi_type type = t ? t->type : DW_SIM_SCPI_ANY;
    int v = 0;
    if (type == DW_SIM_SCPI_BOOL || type == DW_SIM_SCPI_CHOICE) {
        v = type == DW_SIM_SCPI_BOOL ? dw_scpi_param_bool(u, p)
                                     : dw_scpi_param_choice(u, p, t->choices);
        if (v < 0)
            return *scpi_err = v, DW_OK;
        return type == DW_SIM_SCPI_BOOL ? dw_buf_append_byte(buf, v ? '1' : '0')
                                        : choice_short(t->choices, v, buf);
    }
    if (type == DW_SIM_SCPI_STRING) {
        const uint8_t *text = NULL;
        size_t len = 0;
        if ((v = dw_scpi_param_string(u, p, bare, &text, &len)) < 0)
            return *scpi_err = v, DW_OK;
        return dw_buf_append(buf, text, len);
    }
    if ((type == DW_SIM_SCPI_NUMERIC && p->kind != DW_SCPI_NUMERIC &&
         dw_scpi_param_choice(u, p, "MINimum|MAXimum|DEFault|INF|NINF|NAN") < 0) ||
        (type == DW_SIM_SCPI_BLOCK && p->kind != DW_SCPI_BLOCK))
        return *scpi_err = DW_SCPI_E_DATA_TYPE, DW_OK;
    if (p->kind == DW_SCPI_NUMERIC)
        return dw_scpi_number_print(p->value, buf);
    return dw_buf_append(buf, u->text + p->off, p->len);
}

/* Captures of unit u in `buf`: $0 the unit as written, $n the nth
 * parameter's value, typed by m's "params" if any. */
static int scpi_captures(const dw_scpi_unit *u, const dw_sim_match *m, int bare, dw_buf *buf,
                         captures *c, int *scpi_err)
{
    dw_buf_clear(buf);
    dw__engine_captures_whole(c, u->raw_len);
    int rc = dw_buf_append(buf, u->raw, u->raw_len);
    if (m && m->has_params && u->nparams != m->nparams)
        *scpi_err = u->nparams < m->nparams ? DW_SCPI_E_MISSING_PARAM : DW_SCPI_E_PARAM_NOT_ALLOWED;
    for (size_t i = 0; i < u->nparams && i + 1 < NCAP && rc == DW_OK && !*scpi_err; i++) {
        size_t start = buf->len;
        rc = scpi_value(u, &u->params[i], m && m->has_params ? &m->params[i] : NULL, bare, buf,
                        scpi_err);
        c->so[i + 1] = start;
        c->eo[i + 1] = buf->len;
    }
    return rc;
}

/* Does match m take unit u? MATCHED (captures in buf / c; *scpi_err set if
 * its parameters are wrong), NO_MATCH, LIMITED (a regex), or -114 (the
 * header but for its suffix). */
static int scpi_match(dw_sim_session *ss, const dw_sim_match *m, const dw_scpi_unit *u, captures *c,
                      int *scpi_err, int *rc)
{
    dw_buf *buf = &ss->scpi_caps;
    int bare = ss->e->script->scpi_bare_strings;
    if (m->kind == DW_SIM_MATCH_SCPI) {
        size_t k = 0; /* with "channels": the channel whose header fits */
        int r = m->nchannels ? dw_scpi_pattern_match_any(m->chan_scpi, m->nchannels, u, &k)
                             : dw_scpi_pattern_match(m->scpi, u);
        if (r == 1)
            *rc = scpi_captures(u, m, bare, buf, c, scpi_err);
        c->channel = m->nchannels ? m->channels[k] : 0;
        c->chan_pos = k;
        return r;
    }
    if ((*rc = scpi_captures(u, NULL, bare, buf, c, scpi_err)) != DW_OK)
        return MATCHED;
    static const uint8_t none[1] = {0};
    return dw__engine_match(ss, m, buf->data ? buf->data : none, u->raw_len, c);
}

/* Add a response unit to the message's responses. */
static int scpi_respond(scpi_msg *msg, const uint8_t *p, size_t n)
{
    int rc = msg->nresp ? dw_buf_append_byte(msg->resp, ';') : DW_OK;
    msg->nresp++;
    return rc == DW_OK ? dw_buf_append(msg->resp, p, n) : rc;
}

/* Carry out a rule's or step's action for one unit. When a chunk of Lua
 * fails (LUA_FAILED) its reply turn and match count are as before. */
static int scpi_act(dw_sim_session *ss, size_t id, const dw_sim_action *a, uint64_t *hits,
                    const captures *c, scpi_msg *msg, dw_sim_outcome *out, lua_call *lc)
{
    uint64_t nth = ++*hits;
    unsigned delay = dw__engine_action_delay(ss->e, a);
    out->delay_ms = delay > UINT32_MAX - out->delay_ms ? UINT32_MAX : out->delay_ms + delay;
    if (a->then) /* "then": end the connection after the whole answer */
        out->close = a->then;
    if (a->nsplit) {
        out->split = a->split;
        out->nsplit = a->nsplit;
        out->split_delay_ms = a->split_delay_ms;
    }
    if (dw__engine_faults(ss->e, a, nth)) {
        out->fault = a->fault;
        msg->stop = 1;
        if (a->fault == DW_SIM_FAULT_GARBAGE)
            return dw_buf_append(&out->bytes, a->garbage.data, a->garbage.len);
        return DW_OK;
    }
    const uint8_t *req = ss->scpi_caps.data;
    size_t turn = ss->st->turns[id];
    if (lc) { /* the unit's captures may have moved since lc was made */
        lc->req = req;
        lc->n = c->eo[0];
    }
    int rc = dw__engine_apply_sets(ss->st, a, req, c, lc, id);
    if (rc == DW_OK && a->lua)
        rc = dw__engine_lua_eval(lc, id, a->lua, NULL, NULL);
    size_t pick = rc == DW_OK ? dw__engine_pick_reply(ss->st, id, a) : SIZE_MAX;
    for (size_t f = 0; pick != SIZE_MAX && f < a->nframes[pick] && rc == DW_OK; f++) {
        dw_buf_clear(&ss->scratch);
        rc = dw__engine_render_value(lc, id, &a->replies[pick][f], ss->st, req, c, &ss->scratch);
        if (rc == DW_OK && ss->scratch.len)
            rc = scpi_respond(msg, ss->scratch.data, ss->scratch.len);
    }
    if (rc == DW_OK)
        dw__engine_busy_start(ss->st, a->busy_ms);
    if (rc == DW_OK && ss->nqueued) /* its Lua's errors (scpi.error), then its own */
        msg->stop |= dw__engine_errors_commit(ss, ss->st);
    if (rc == DW_OK && a->scpi_error) { /* the action's own error: a command error drops the rest */
        dw_scpi_status_error_text(ss->st->scpi, a->scpi_error, a->scpi_error_text);
        msg->stop |= a->scpi_error <= -100 && a->scpi_error > -200;
    }
    if (rc == LUA_FAILED) {
        ss->st->turns[id] = turn;
        (*hits)--;
    }
    return rc;
}

/* Where a match is: a step or rule, for a regex limit's note. */
typedef struct scpi_site {
    dw_sim_engine *e;
    dw_sim_outcome *out;
    dw_sim_source src;
    size_t index;
} scpi_site;

/* Does m take u? 1 if its header and parameters fit (or *rc is an
 * error); else 0, with *why the most specific refusal so far
 * (dw_scpi_refusal_pick). A regex cut short by a limit does not fit. */
static int scpi_fits(dw_sim_session *ss, const dw_sim_match *m, const dw_scpi_unit *u, captures *c,
                     int *why, int *rc, const scpi_site *at)
{
    int err = 0;
    int r = scpi_match(ss, m, u, c, &err, rc);
    if (*rc != DW_OK || (r == MATCHED && !err))
        return 1;
    if (r == LIMITED)
        return (*rc = dw__engine_note_limit(at->e, at->out, at->src, at->index)) != DW_OK;
    *why = dw_scpi_refusal_pick(*why, r == MATCHED ? err : r < 0 ? r : 0);
    return 0;
}

/* The "if" of action `id` for unit u, once m fitted it: 1 if it holds or
 * *rc is an error (LUA_FAILED included). */
static int scpi_cond(lua_call *lc, const dw_scpi_unit *u, size_t id, const dw_sim_lua_chunk *cond,
                     int *rc)
{
    if (*rc != DW_OK || !cond)
        return 1;
    lc->req = lc->ss->scpi_caps.data;
    lc->n = u->raw_len;
    return dw__engine_cond_holds(lc, id, cond, rc) || *rc != DW_OK;
}

/* The script's next step, then its rules, for unit u: 1 if one took it
 * (the first whose header and parameters fit), else 0 and *why the most
 * specific refusal (0: no header fitted). */
static int scpi_script(dw_sim_engine *e, dw_sim_session *ss, const dw_scpi_unit *u, scpi_msg *msg,
                       dw_sim_outcome *out, int *why, int *rc)
{
    const dw_sim_script *s = e->script;
    sim_state *st = ss->st;
    captures c;
    lua_call lcs = {e, ss, st, ss->scpi_caps.data, u->raw_len, &c, out};
    lua_call *lc = e->lua ? &lcs : NULL;
    scpi_site at = {e, out, DW_SIM_BY_STEP, st->step};
    if (st->step < s->nsteps && scpi_fits(ss, &s->steps[st->step].expect, u, &c, why, rc, &at) &&
        scpi_cond(lc, u, st->step, s->steps[st->step].cond, rc)) {
        size_t i = st->step++;
        out->source = DW_SIM_BY_STEP;
        out->index = i;
        out->name = s->steps[i].name ? s->steps[i].name : "step";
        if (*rc == DW_OK)
            *rc = scpi_act(ss, i, &s->steps[i].action, &e->step_hits[i], &c, msg, out, lc);
        if (*rc == LUA_FAILED)
            st->step = i;
        return 1;
    }
    at.src = DW_SIM_BY_RULE;
    for (size_t i = 0; i < s->nrules; i++) {
        at.index = i;
        if (!scpi_fits(ss, &s->rules[i].when, u, &c, why, rc, &at) ||
            !scpi_cond(lc, u, s->nsteps + i, s->rules[i].cond, rc))
            continue;
        out->source = DW_SIM_BY_RULE;
        out->index = i;
        out->name = s->rules[i].name ? s->rules[i].name : "rule";
        if (*rc == DW_OK)
            *rc = scpi_act(ss, s->nsteps + i, &s->rules[i].action, &e->rule_hits[i], &c, msg, out,
                           lc);
        return 1;
    }
    return 0;
}

/* The properties' headers for unit u (after the script's steps and rules):
 * 1 if a property took it, else 0 and *why the most specific refusal so
 * far. */
static int scpi_props(dw_sim_session *ss, const dw_scpi_unit *u, scpi_msg *msg, dw_sim_outcome *out,
                      int *why, int *rc)
{
    sim_state *st = ss->st;
    size_t before = msg->resp->len;
    if (!st->props)
        return 0;
    if (msg->nresp && (*rc = dw_buf_append_byte(msg->resp, ';')) != DW_OK)
        return 1;
    size_t which = 0;
    unsigned flags = ss->e->script->scpi_bare_strings ? DW_SIM_PROPS_BARE_STRINGS : 0;
    int r = dw_sim_props_scpi(st->props, u, st->now, flags, msg->resp, &which);
    if (r == 1 && !u->query)
        dw__engine_busy_start(st, dw_sim_props_def(ss->e->script->props, which)->busy_ms);
    if (r == 1 && msg->resp->len > before + (msg->nresp > 0))
        msg->nresp++;
    else
        dw_buf_truncate(msg->resp, before);
    if (r == DW_SCPI_NOMEM) {
        *rc = DW_ENOMEM;
        return 1;
    }
    if (r != 1) {
        *why = dw_scpi_refusal_pick(*why, r);
        return 0;
    }
    out->source = DW_SIM_BY_PROFILE;
    out->name = "properties";
    return 1;
}

/* The built-in commands for unit u (after the script and the properties):
 * as dw_scpi_builtin, and what their events ask of the engine done. */
static int scpi_builtin(dw_sim_engine *e, dw_sim_session *ss, const dw_scpi_unit *u, scpi_msg *msg,
                        dw_sim_outcome *out, int *rc)
{
    const dw_sim_script *s = e->script;
    sim_state *st = ss->st;
    dw_scpi_context ctx = {s->idn ? s->idn : s->name, msg->nresp > 0, s->scpi_version,
                           dw__engine_busy(st)};
    size_t before = msg->resp->len;
    unsigned events = 0;
    if (msg->nresp && (*rc = dw_buf_append_byte(msg->resp, ';')) != DW_OK)
        return 1;
    int b = dw_scpi_builtin(e->builtins, st->scpi, &ctx, u, msg->resp, &events);
    if (b == 1 && msg->resp->len > before + (msg->nresp > 0))
        msg->nresp++;
    else
        dw_buf_truncate(msg->resp, before);
    if (b != 1)
        return b;
    out->source = DW_SIM_BY_PROFILE;
    out->name = "scpi";
    if (events & DW_SCPI_EVENT_OPC)
        st->opc_armed = 1;
    if (events & DW_SCPI_EVENT_WAIT) { /* the rest of the message, and its answer, wait */
        unsigned wait = dw__engine_wait(st);
        out->delay_ms = wait > UINT32_MAX - out->delay_ms ? UINT32_MAX : out->delay_ms + wait;
    }
    if (events & DW_SCPI_EVENT_RST) {
        dw__engine_busy_clear(st);
        *rc = dw__engine_state_reset(s, st);
    }
    return 1;
}

/* One program message unit: its candidates in order (the next step, the
 * rules, the properties, the built-in commands); the first that accepts
 * it handles it, and only that one's errors are queued. When none does,
 * the most specific refusal of those whose header fitted, else -113.
 * DW_OK (any SCPI error in *scpi_err) or DW_ENOMEM / DW_EINVAL. */
static int scpi_unit(dw_sim_engine *e, dw_sim_session *ss, const dw_scpi_unit *u, scpi_msg *msg,
                     dw_sim_outcome *out, int *scpi_err)
{
    int rc = DW_OK;
    *scpi_err = 0;
    size_t resp_len = msg->resp->len, nresp = msg->nresp;
    unsigned delay_ms = out->delay_ms;
    int why = 0; /* the most specific refusal so far */
    msg->lua_failed = 0;
    if (scpi_script(e, ss, u, msg, out, &why, &rc)) {
        if (rc != LUA_FAILED)
            return rc;
        /* A chunk of Lua failed: undo the unit, which fits nothing. */
        dw__engine_undo_all(ss, ss->st);
        dw_buf_truncate(msg->resp, resp_len);
        msg->nresp = nresp;
        out->delay_ms = delay_ms;
        *scpi_err = DW_SCPI_E_UNDEFINED_HEADER;
        msg->undefined = 1;
        msg->lua_failed = 1;
        return DW_OK;
    }
    if (scpi_props(ss, u, msg, out, &why, &rc))
        return rc;
    int b = scpi_builtin(e, ss, u, msg, out, &rc);
    if (b == 1 || rc != DW_OK)
        return rc;
    if (b == DW_SCPI_NOMEM)
        return DW_ENOMEM;
    why = dw_scpi_refusal_pick(why, b);
    *scpi_err = why ? why : DW_SCPI_E_UNDEFINED_HEADER;
    msg->undefined |= *scpi_err == DW_SCPI_E_UNDEFINED_HEADER;
    return DW_OK;
}

/* scpi_unit, and with "path": "lenient" (non-standard) a unit whose header
 * fitted nothing under the current path (not one whose Lua failed) tried
 * again from the root; if that one fits, the parser's path goes on from
 * it. */
static int scpi_unit_path(dw_sim_engine *e, dw_sim_session *ss, dw_scpi_parser *p,
                          const dw_scpi_unit *u, scpi_msg *msg, dw_sim_outcome *out, int *scpi_err)
{
    int undefined = msg->undefined;
    int rc = scpi_unit(e, ss, u, msg, out, scpi_err);
    dw_scpi_unit root;
    if (rc != DW_OK || *scpi_err != DW_SCPI_E_UNDEFINED_HEADER || msg->lua_failed ||
        !e->script->scpi_lenient_path || !dw_scpi_unit_from_root(u, &root))
        return rc;
    msg->undefined = undefined;
    rc = scpi_unit(e, ss, &root, msg, out, scpi_err);
    if (rc == DW_OK && *scpi_err != DW_SCPI_E_UNDEFINED_HEADER)
        dw_scpi_parser_path_after(p, &root);
    return rc;
}

/* Is the response of query u indefinite (IEEE 488.2 8.7.11 and 8.7.10),
 * so that no query may follow it in the message? *IDN? (arbitrary ASCII
 * response data, whoever answers it) and a response that is an indefinite
 * block (#0...). The response starts at `at` of the joined responses, if
 * it added one. */
static int scpi_indefinite(const dw_scpi_unit *u, const scpi_msg *msg, size_t at, size_t nresp)
{
    if (u->common && strcmp(u->nodes[0], "IDN") == 0)
        return 1;
    at += nresp > 0; /* the ';' before it */
    const uint8_t *r = msg->resp->data;
    return msg->nresp > nresp && msg->resp->len >= at + 2 && r[at] == '#' && r[at + 1] == '0';
}

/* Frame the joined responses as one response message, then the prompt. */
static int scpi_finish(dw_sim_engine *e, scpi_msg *msg, dw_sim_outcome *out, dw_error *err)
{
    int rc = DW_OK;
    if (msg->nresp) {
        dw_error merr;
        dw_error_clear(&merr);
        rc = dw_marshall(e->resp_m, msg->resp->data, msg->resp->len, &out->bytes, &merr);
        if (rc != DW_OK && rc != DW_ENOMEM)
            return dw_error_set(err, DW_EINVAL, "%s: the response cannot be framed: %s", out->name,
                                dw_error_message(&merr));
        out->nframes = 1;
    }
    if (rc == DW_OK && e->script->prompt.len && !out->close)
        rc = dw_buf_append(&out->bytes, e->script->prompt.data, e->script->prompt.len);
    return rc;
}

int dw__engine_scpi_handle(dw_sim_engine *e, dw_sim_session *ss, const uint8_t *req, size_t n,
                           dw_sim_outcome *out, dw_error *err)
{
    sim_state *st = ss->st;
    dw_scpi_parser p;
    dw_scpi_unit u;
    scpi_msg msg = {&ss->scpi_resp, 0, 0, 0, 0, 0};
    dw_buf_clear(msg.resp);
    out->source = DW_SIM_BY_PROFILE;
    out->name = "scpi";
    dw_scpi_parser_init(&p, req, n);
    int status = e->script->nstatus || e->script->has_busy;
    if (status) /* time has passed since the last message */
        dw__engine_status_update(e, st);
    int rc = DW_OK, r;
    while (rc == DW_OK && !msg.stop && (r = dw_scpi_parser_next(&p, &u)) != 0) {
        int scpi_err = r;
        size_t at = msg.resp->len, nresp = msg.nresp;
        if (r == DW_SCPI_NOMEM)
            rc = DW_ENOMEM;
        else if (r == 1 && u.query && msg.indefinite)
            scpi_err = DW_SCPI_E_QUERY_AFTER_INDEFINITE; /* not carried out */
        else if (r == 1)
            rc = scpi_unit_path(e, ss, &p, &u, &msg, out, &scpi_err);
        if (r == 1 && u.query && rc == DW_OK && scpi_indefinite(&u, &msg, at, nresp))
            msg.indefinite = 1;
        if (e->lua)
            dw__engine_undo_forget(ss);
        if (status)
            dw__engine_status_update(e, st);
        if (rc == DW_OK && scpi_err < 0) {
            dw_scpi_status_error(st->scpi, scpi_err);
            /* A command error, or a query after an indefinite response,
             * drops the rest. */
            msg.stop = scpi_err > -200 || scpi_err == DW_SCPI_E_QUERY_AFTER_INDEFINITE;
        }
    }
    dw_scpi_parser_free(&p);
    if (rc == DW_OK && out->fault == DW_SIM_FAULT_NONE)
        rc = scpi_finish(e, &msg, out, err);
    if (msg.undefined) { /* dw_sim_engine_handle_at keeps its sample */
        e->unmatched++;
        out->source = DW_SIM_BY_UNMATCHED;
        out->index = SIZE_MAX;
        out->name = "unmatched";
    }
    return rc;
}
