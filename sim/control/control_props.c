/* devwire-sim's control API: a device's typed properties in its state
 * (GET and PATCH /devices/NAME/state). Values are typed JSON: numbers,
 * booleans, an enum's short form, strings. A PATCH is validated as the
 * instrument validates a set (dw_sim_prop_set) and applied all or nothing:
 * each value is saved before it is set and put back if a later one is
 * refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/control_int.h"
#include "engine/engine.h"
#include "model/props.h"

struct dw__ctl_prop_patch {
    const dw_sim_props *defs;
    size_t n;
    size_t *index;
    dw_sim_prop_value *value;
    dw_sim_prop_saved *saved;
    size_t bad; /* the field refused by the last apply */
};

/* ---- reading ----------------------------------------------------------------- */

typedef struct props_read {
    const dw_sim_props *defs;
    cJSON *out;
} props_read;

static cJSON *value_json(const dw_sim_prop_def *d, const dw_sim_prop_value *v)
{
    const char *name;
    size_t n;
    char choice[80];
    switch (v->type) {
    case DW_SIM_PROP_BOOL:
        return cJSON_CreateBool(v->num != 0);
    case DW_SIM_PROP_ENUM:
        n = dw_sim_prop_choice_name(d, (size_t)v->num, &name);
        snprintf(choice, sizeof choice, "%.*s", (int)n, name);
        return cJSON_CreateString(choice);
    case DW_SIM_PROP_STRING: {
        /* v->str holds len bytes and no NUL after them. */
        char *s = malloc(v->len + 1);
        if (!s)
            return NULL;
        if (v->len)
            memcpy(s, v->str, v->len);
        s[v->len] = '\0';
        cJSON *j = cJSON_CreateString(s);
        free(s);
        return j;
    }
    default:
        return cJSON_CreateNumber(v->num);
    }
}

static int read_all(dw_sim_props_state *props, double now, void *arg)
{
    props_read *r = arg;
    for (size_t i = 0; i < dw_sim_props_count(r->defs); i++) {
        const dw_sim_prop_def *d = dw_sim_props_def(r->defs, i);
        dw_sim_prop_value v;
        dw_sim_prop_get(props, i, now, &v);
        cJSON *j = value_json(d, &v);
        if (!j || !cJSON_AddItemToObject(r->out, d->name, j)) {
            cJSON_Delete(j);
            return DW_ENOMEM;
        }
    }
    return DW_OK;
}

int dw__ctl_props_add(dw_sim_engine *e, const dw_sim_script *s, cJSON *state)
{
    props_read r = {s->props, cJSON_AddObjectToObject(state, "properties")};
    if (!r.out)
        return DW_ENOMEM;
    int rc = dw_sim_engine_with_props(e, NULL, read_all, &r);
    return rc == DW_ENOENT ? DW_OK : rc;
}

/* ---- a PATCH --------------------------------------------------------------------- */

dw__ctl_prop_patch *dw__ctl_prop_patch_new(const dw_sim_script *s, size_t max)
{
    dw__ctl_prop_patch *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->defs = s->props;
    max = max ? max : 1;
    p->index = calloc(max, sizeof *p->index);
    p->value = calloc(max, sizeof *p->value);
    p->saved = calloc(max, sizeof *p->saved);
    if (!p->index || !p->value || !p->saved) {
        dw__ctl_prop_patch_free(p);
        return NULL;
    }
    return p;
}

void dw__ctl_prop_patch_free(dw__ctl_prop_patch *p)
{
    if (!p)
        return;
    free(p->index);
    free(p->value);
    free(p->saved);
    free(p);
}

static const char *const expected[] = {
    [DW_SIM_PROP_FLOAT] = "a number",     [DW_SIM_PROP_INT] = "a number",
    [DW_SIM_PROP_BOOL] = "true or false", [DW_SIM_PROP_ENUM] = "one of",
    [DW_SIM_PROP_STRING] = "a string",
};

/* JSON f as a value for property d (an enum's choice by its long or short
 * form): 0, or a SCPI error code (-104 for a JSON type the property cannot
 * take, -224 for no such choice). */
static int json_value(const dw_sim_prop_def *d, const cJSON *f, dw_sim_prop_value *v)
{
    memset(v, 0, sizeof *v);
    if (cJSON_IsBool(f)) {
        v->type = DW_SIM_PROP_BOOL;
        v->num = cJSON_IsTrue(f);
    } else if (cJSON_IsNumber(f)) {
        v->type = DW_SIM_PROP_FLOAT;
        v->num = f->valuedouble;
    } else if (cJSON_IsString(f)) {
        v->type = DW_SIM_PROP_STRING;
        v->str = f->valuestring;
        v->len = strlen(f->valuestring);
        if (d->type == DW_SIM_PROP_ENUM) {
            int k = dw_sim_prop_choice(d, v->str, v->len);
            v->type = DW_SIM_PROP_ENUM;
            v->num = k;
            return k < 0 ? k : 0;
        }
    } else {
        return DW_SCPI_E_DATA_TYPE;
    }
    /* dw_sim_prop_set converts between numbers; any other mismatch is
     * refused here, so that a string never passes for an enum's index. */
    int numeric = d->type == DW_SIM_PROP_FLOAT || d->type == DW_SIM_PROP_INT;
    if (numeric ? v->type != DW_SIM_PROP_FLOAT : v->type != d->type)
        return DW_SCPI_E_DATA_TYPE;
    return 0;
}

static void refusal(const dw_sim_prop_def *d, int code, char *error, size_t n)
{
    int len = snprintf(error, n, "%s: %s (%d)", d->name, dw_scpi_strerror(code), code);
    if (len < 0 || (size_t)len >= n ||
        (code != DW_SCPI_E_DATA_TYPE && code != DW_SCPI_E_ILLEGAL_VALUE))
        return;
    snprintf(error + len, n - (size_t)len, ": expected %s%s%s", expected[d->type],
             d->type == DW_SIM_PROP_ENUM ? " " : "", d->type == DW_SIM_PROP_ENUM ? d->choices : "");
}

int dw__ctl_prop_patch_add(dw__ctl_prop_patch *p, const cJSON *f, char *error, size_t n)
{
    size_t i = p->defs ? dw_sim_prop_find(p->defs, f->string, strlen(f->string)) : SIZE_MAX;
    if (i == SIZE_MAX)
        return 0;
    const dw_sim_prop_def *d = dw_sim_props_def(p->defs, i);
    if (d->access == DW_SIM_PROP_RO) {
        snprintf(error, n, "%s: read-only (the instrument sets it)", d->name);
        return -1;
    }
    int rc = json_value(d, f, &p->value[p->n]);
    if (rc != 0) {
        refusal(d, rc, error, n);
        return -1;
    }
    p->index[p->n++] = i;
    return 1;
}

/* Set every value of the patch, or none: on a refusal the ones already set
 * are put back, last first (a name may come twice). */
static int set_all(dw_sim_props_state *props, double now, void *arg)
{
    dw__ctl_prop_patch *p = arg;
    size_t k = 0;
    int rc = 0;
    for (; k < p->n; k++) {
        if (dw_sim_prop_save(props, p->index[k], &p->saved[k]) != DW_OK) {
            dw_buf_free(&p->saved[k].str);
            rc = DW_SCPI_NOMEM;
            break;
        }
        if ((rc = dw_sim_prop_set(props, p->index[k], &p->value[k], now)) != 0) {
            dw_buf_free(&p->saved[k].str);
            break;
        }
    }
    p->bad = k;
    for (size_t u = k; u-- > 0;) {
        if (rc != 0)
            dw_sim_prop_restore(props, p->index[u], &p->saved[u]);
        else
            dw_buf_free(&p->saved[u].str);
    }
    return rc;
}

int dw__ctl_prop_patch_apply(dw__ctl_prop_patch *p, dw_sim_engine *e, dw_sim_session *ss,
                             char *where, size_t wn, char *error, size_t en)
{
    if (p->n == 0)
        return 0;
    int rc = dw_sim_engine_with_props(e, ss, set_all, p);
    if (rc == 0)
        return 0;
    const dw_sim_prop_def *d = dw_sim_props_def(p->defs, p->index[p->bad]);
    snprintf(where, wn, "body.%s", d->name);
    if (rc == DW_SCPI_NOMEM)
        snprintf(error, en, "%s: out of memory", d->name);
    else
        refusal(d, rc, error, en);
    return rc == DW_SCPI_NOMEM ? 500 : 422;
}
