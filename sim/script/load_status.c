/* devwire-sim: the loader of "status" (load_int.h): bits of the SCPI
 * status registers bound to conditions, each checked where it is written
 * ("psu.json:30:40: status.questionable[0].bit: bit 15 of a SCPI register
 * is always 0 (0 to 14)"). */
#include "script/load_int.h"

#include <stdlib.h>
#include <string.h>

static const char *const reg_keys[] = {"operation", "questionable", "stb"};
static const char *const bit_keys[] = {"bit", "name", "description", "when"};
static const char *const cond_keys[] = {"lua", "busy", "state", "above", "below", "equals"};
enum { C_LUA, C_BUSY, C_STATE, C_ABOVE, C_BELOW, C_EQUALS, C_N };

/* {"state": NAME, "above" | "below" | "equals": V}: the variable or
 * property, and the comparison. */
static int parse_state_cond(dw__load *c, const cJSON *const *cv, dw_sim_status_bit *b)
{
    const cJSON *name = cv[C_STATE];
    size_t old = dw__load_push(c, "state");
    int rc = DW_OK;
    if (!cJSON_IsString(name)) {
        rc = dw__load_fail(c, name, 0, "expected the name of a variable or property");
    } else if ((b->var = dw__load_find_var(c, name->valuestring, strlen(name->valuestring))) ==
               SIZE_MAX) {
        b->prop = 1;
        b->var = dw_sim_prop_find(c->s->props, name->valuestring, strlen(name->valuestring));
        if (b->var == SIZE_MAX)
            rc = dw__load_unknown_var(c, dw__load_str_pos(c, name, 0), name->valuestring,
                                      strlen(name->valuestring), 0);
    }
    dw__load_pop(c, old);
    int ncmp = 0;
    for (int k = C_ABOVE; k <= C_EQUALS && rc == DW_OK; k++) {
        const cJSON *v = cv[k];
        if (!v)
            continue;
        old = dw__load_push(c, v->string);
        b->cmp = (dw_sim_cond_cmp)(DW_SIM_CMP_ABOVE + (k - C_ABOVE));
        if (++ncmp > 1)
            rc = dw__load_fail(c, v, 1, "one of \"above\", \"below\" and \"equals\"");
        else if (cJSON_IsNumber(v) || cJSON_IsBool(v))
            b->num = cJSON_IsNumber(v) ? v->valuedouble : cJSON_IsTrue(v);
        else if (k != C_EQUALS || !cJSON_IsString(v))
            rc = dw__load_fail(c, v, 0,
                               k == C_EQUALS ? "expected a number, boolean or string"
                                             : "expected a number");
        else if (!(b->text = strdup(v->valuestring)))
            rc = dw__load_oom(c);
        dw__load_pop(c, old);
    }
    return rc;
}

/* "when": {"lua": ...}, {"busy": true} or {"state": NAME, ...}. */
static int parse_cond(dw__load *c, const cJSON *v, dw_sim_status_bit *b)
{
    const cJSON *cv[C_N];
    if (!cJSON_IsObject(v))
        return dw__load_fail(c, v, 0,
                             "expected {\"lua\": expression}, {\"busy\": true} or "
                             "{\"state\": name}");
    int rc = dw__load_members(c, v, cond_keys, C_N, cv);
    if (rc != DW_OK)
        return rc;
    int kinds = (cv[C_LUA] != NULL) + (cv[C_BUSY] != NULL) + (cv[C_STATE] != NULL);
    if (kinds != 1)
        return dw__load_fail(c, v, 0, "expected one of \"lua\", \"busy\" and \"state\"");
    for (int k = C_ABOVE; k <= C_EQUALS && !cv[C_STATE]; k++)
        if (cv[k]) {
            dw__load_push(c, cond_keys[k]);
            return dw__load_fail(c, cv[k], 1, "only with \"state\"");
        }
    if (cv[C_LUA]) {
        b->kind = DW_SIM_COND_LUA;
        size_t old = dw__load_push(c, "lua");
        rc = dw__load_lua(c, cv[C_LUA], 0, &b->lua);
        dw__load_pop(c, old);
        return rc;
    }
    if (cv[C_BUSY]) {
        b->kind = DW_SIM_COND_BUSY;
        if (cJSON_IsTrue(cv[C_BUSY]))
            return DW_OK;
        size_t old = dw__load_push(c, "busy");
        rc = dw__load_fail(c, cv[C_BUSY], 0, "expected true");
        dw__load_pop(c, old);
        return rc;
    }
    b->kind = DW_SIM_COND_STATE;
    return parse_state_cond(c, cv, b);
}

/* The bit's number: 0..14 in a SCPI register, 0, 1 or 7 in the status
 * byte; no two bindings of one register share it. */
static int parse_bit(dw__load *c, const cJSON *v, dw_sim_status_bit *b, unsigned *used)
{
    uint64_t bit = 0;
    size_t old = dw__load_push(c, "bit");
    int rc = dw__load_uint(c, v, 0, 15, &bit);
    if (rc == DW_OK && b->reg != DW_SIM_STATUS_STB && bit == 15)
        rc = dw__load_fail(c, v, 0, "bit 15 of a SCPI register is always 0 (0 to 14)");
    else if (rc == DW_OK && b->reg == DW_SIM_STATUS_STB && bit != 0 && bit != 1 && bit != 7)
        rc = dw__load_fail(c, v, 0,
                           "the device's own status byte bits are 0, 1 and 7 (the others "
                           "are IEEE 488.2's and SCPI's)");
    else if (rc == DW_OK && (*used & 1u << bit))
        rc = dw__load_fail(c, v, 0, "bit %u is bound twice", (unsigned)bit);
    dw__load_pop(c, old);
    *used |= 1u << bit;
    b->bit = (unsigned)bit;
    return rc;
}

/* One binding, {"bit": N, "name": "...", "when": {...}}. */
static int parse_binding(dw__load *c, const cJSON *v, dw_sim_status_bit *b, unsigned *used)
{
    const cJSON *bv[4];
    if (!cJSON_IsObject(v))
        return dw__load_fail(c, v, 0, "expected {\"bit\": N, \"when\": {...}}");
    int rc = dw__load_members(c, v, bit_keys, 4, bv);
    if (rc == DW_OK && (!bv[0] || !bv[3]))
        rc = dw__load_fail(c, v, 0, "missing \"%s\"", bv[0] ? "when" : "bit");
    if (rc == DW_OK)
        rc = parse_bit(c, bv[0], b, used);
    for (int k = 1; k <= 2 && rc == DW_OK; k++) {
        if (!bv[k])
            continue;
        size_t old = dw__load_push(c, bit_keys[k]);
        if (k == 1)
            rc = dw__load_string(c, bv[k], &b->name);
        else if (!cJSON_IsString(bv[k]))
            rc = dw__load_fail(c, bv[k], 0, "expected a string");
        dw__load_pop(c, old);
    }
    if (rc == DW_OK && !b->name && !(b->name = strdup(c->path)))
        rc = dw__load_oom(c);
    if (rc == DW_OK) {
        size_t old = dw__load_push(c, "when");
        rc = parse_cond(c, bv[3], b);
        dw__load_pop(c, old);
    }
    return rc;
}

/* One register's list of bindings. */
static int parse_list(dw__load *c, const cJSON *v, dw_sim_status_reg reg)
{
    dw_sim_script *s = c->s;
    if (!cJSON_IsArray(v))
        return dw__load_fail(c, v, 0, "expected a list of {\"bit\": N, \"when\": {...}}");
    size_t n = (size_t)cJSON_GetArraySize(v), i = 0;
    dw_sim_status_bit *all = realloc(s->status, (s->nstatus + n + 1) * sizeof *all);
    if (!all)
        return dw__load_oom(c);
    s->status = all;
    unsigned used = 0;
    int rc = DW_OK;
    for (const cJSON *e = v->child; e && rc == DW_OK; e = e->next, i++) {
        dw_sim_status_bit *b = memset(&s->status[s->nstatus++], 0, sizeof *b);
        b->reg = reg;
        size_t old = dw__load_push_index(c, i);
        rc = parse_binding(c, e, b, &used);
        dw__load_pop(c, old);
    }
    return rc;
}

int dw__load_status(dw__load *c, const cJSON *v)
{
    const cJSON *rv[3];
    if (c->s->profile != DW_SIM_PROFILE_SCPI)
        return dw__load_fail(c, v, 1, "only with \"profile\": \"scpi\"");
    if (!cJSON_IsObject(v))
        return dw__load_fail(c, v, 0,
                             "expected {\"operation\": [...], \"questionable\": [...], "
                             "\"stb\": [...]}");
    int rc = dw__load_members(c, v, reg_keys, 3, rv);
    for (int k = 0; k < 3 && rc == DW_OK; k++) {
        if (!rv[k])
            continue;
        size_t old = dw__load_push(c, reg_keys[k]);
        rc = parse_list(c, rv[k], (dw_sim_status_reg)k);
        dw__load_pop(c, old);
    }
    return rc;
}
