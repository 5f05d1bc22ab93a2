/* devwire-sim's engine: overlapped commands (a rule's or property's
 * "busy_ms": pending until a time; *OPC, *OPC? and *WAI wait for them) and
 * the script's "status" bindings, evaluated into the SCPI status registers
 * (engine_int.h). */
#include "engine/engine_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void dw__engine_busy_start(sim_state *st, unsigned ms)
{
    double until = st->now + ms / 1000.0;
    if (ms && until > st->busy_until)
        st->busy_until = until;
}

int dw__engine_busy(const sim_state *st)
{
    return st->now < st->busy_until;
}

unsigned dw__engine_wait(sim_state *st)
{
    if (!dw__engine_busy(st))
        return 0;
    /* Whole milliseconds, rounding up but for the error of the sum, and 2
     * more: the device's timer counts from the loop's cached, whole-ms
     * clock and may fire that much early, and a request that follows the
     * answer at once must find the operation complete. */
    double ms = ceil((st->busy_until - st->now) * 1000.0 - 1e-6) + 2;
    st->now = st->busy_until;
    return ms > UINT32_MAX ? UINT32_MAX : (unsigned)ms;
}

void dw__engine_busy_clear(sim_state *st)
{
    st->busy_until = 0;
    st->opc_armed = 0;
}

/* A value as a "state" condition sees it: a number when it has one, and
 * its text. */
typedef struct cond_value {
    int has_num;
    double num;
    const char *text;
    size_t len;
} cond_value;

/* A variable's text as a number: a number, true/false, ON/OFF. */
static void var_value(const dw_buf *b, cond_value *v)
{
    char tmp[64];
    v->text = b->data ? (const char *)b->data : "";
    v->len = b->len;
    if (b->len == 0 || b->len >= sizeof tmp)
        return;
    memcpy(tmp, b->data, b->len);
    tmp[b->len] = 0;
    char *end;
    v->num = strtod(tmp, &end);
    v->has_num = *end == 0 && end != tmp;
    if (!v->has_num && (strcasecmp(tmp, "true") == 0 || strcasecmp(tmp, "on") == 0))
        v->has_num = 1, v->num = 1;
    else if (!v->has_num && (strcasecmp(tmp, "false") == 0 || strcasecmp(tmp, "off") == 0))
        v->has_num = 1, v->num = 0;
}

/* Property i's value at the state's time. */
static void prop_value(const dw_sim_props *defs, sim_state *st, size_t i, cond_value *v)
{
    dw_sim_prop_value pv;
    dw_sim_prop_get(st->props, i, st->now, &pv);
    const dw_sim_prop_def *d = dw_sim_props_def(defs, i);
    v->num = pv.num;
    v->has_num = pv.type != DW_SIM_PROP_STRING && pv.type != DW_SIM_PROP_ENUM;
    if (pv.type == DW_SIM_PROP_STRING) {
        v->text = pv.str;
        v->len = pv.len;
    } else if (pv.type == DW_SIM_PROP_ENUM) {
        v->len = dw_sim_prop_choice_name(d, (size_t)pv.num, &v->text);
    }
}

/* Does a "state" condition hold? */
static int state_holds(const dw_sim_props *defs, sim_state *st, const dw_sim_status_bit *b)
{
    cond_value v = {0, 0, "", 0};
    if (b->prop)
        prop_value(defs, st, b->var, &v);
    else
        var_value(&st->vars[b->var], &v);
    switch (b->cmp) {
    case DW_SIM_CMP_TRUE:
        return v.has_num ? v.num != 0 : v.len > 0;
    case DW_SIM_CMP_ABOVE:
        return v.has_num && v.num > b->num;
    case DW_SIM_CMP_BELOW:
        return v.has_num && v.num < b->num;
    case DW_SIM_CMP_EQUALS:
        break;
    }
    if (!b->text)
        return v.has_num && v.num == b->num;
    if (b->prop) {
        const dw_sim_prop_def *d = dw_sim_props_def(defs, b->var);
        if (d->type == DW_SIM_PROP_ENUM)
            return dw_sim_prop_choice(d, b->text, strlen(b->text)) == (int)v.num;
    }
    return strlen(b->text) == v.len && strncasecmp(b->text, v.text, v.len) == 0;
}

/* Does binding b's condition hold? A chunk of Lua that fails is false (and
 * counted apart from the rules' and steps' failures). */
static int holds(dw_sim_engine *e, sim_state *st, const dw_sim_status_bit *b)
{
    if (b->kind == DW_SIM_COND_BUSY)
        return dw__engine_busy(st);
    if (b->kind == DW_SIM_COND_STATE)
        return state_holds(e->script->props, st, b);
    dw_sim_lua_scope sc = {.vars = st->vars, .props = st->props, .now = st->now};
    char msg[256];
    int truth = 0;
    int rc = dw_sim_lua_eval(e->lua, b->lua, &sc, &truth, NULL, msg, sizeof msg);
    if (rc == DW_ESCRIPT)
        e->status_lua_errors++;
    return rc == DW_OK && truth;
}

void dw__engine_status_update(dw_sim_engine *e, sim_state *st)
{
    const dw_sim_script *s = e->script;
    if (!st->scpi)
        return;
    if (st->opc_armed && !dw__engine_busy(st)) { /* *OPC: its operations are complete */
        dw_scpi_status_opc(st->scpi);
        st->opc_armed = 0;
    }
    if (!s->nstatus)
        return;
    unsigned reg[3] = {0, 0, 0};
    for (size_t i = 0; i < s->nstatus; i++)
        if (holds(e, st, &s->status[i]))
            reg[s->status[i].reg] |= 1u << s->status[i].bit;
    dw_scpi_status_condition(st->scpi, DW_SCPI_REG_OPER, (uint16_t)reg[DW_SIM_STATUS_OPER]);
    dw_scpi_status_condition(st->scpi, DW_SCPI_REG_QUES, (uint16_t)reg[DW_SIM_STATUS_QUES]);
    dw_scpi_status_stb_bits(st->scpi, (uint8_t)reg[DW_SIM_STATUS_STB]);
}

uint64_t dw_sim_engine_status_lua_errors(const dw_sim_engine *e)
{
    return e->status_lua_errors;
}
