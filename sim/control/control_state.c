/* devwire-sim's control API: GET and PATCH /devices/NAME/state, the
 * script's variables and typed properties (control_props.c). A PATCH is
 * checked whole on the device's loop, then applied: to the shared state,
 * and to every connection's when the scope is per connection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/control_int.h"
#include "device/server_int.h"
#include "engine/engine.h"
#include "model/props.h"

static void state_get(void *arg)
{
    ctl_job *j = arg;
    dw_sim_server *s = j->d->server;
    const dw_sim_script *script = s->gen->script;
    dw_sim_engine *e = s->gen->engine;
    cJSON *o = j->out = cJSON_CreateObject();
    cJSON *vars = o ? cJSON_AddObjectToObject(o, "vars") : NULL;
    dw_buf b = DW_BUF_INIT;
    for (size_t i = 0; vars && i < script->nvars; i++)
        if (dw_sim_engine_var_get(e, NULL, i, &b) == DW_OK)
            cJSON_AddItemToObject(vars, script->vars[i].name, dw__ctl_bytes_json(b.data, b.len));
    dw_buf_free(&b);
    if (!o)
        return;
    if (dw__ctl_props_add(e, script, o) != DW_OK) {
        cJSON_Delete(o);
        j->out = NULL;
        return;
    }
    cJSON_AddStringToObject(o, "scope",
                            script->scope == DW_SIM_SCOPE_SHARED ? "shared" : "connection");
    cJSON_AddNumberToObject(o, "next_step", (double)dw_sim_engine_next_step(e, NULL));
    cJSON_AddNumberToObject(o, "steps", (double)script->nsteps);
}

/* The variable named `name`, or SIZE_MAX. */
static size_t var_index(const dw_sim_script *s, const char *name)
{
    for (size_t i = 0; i < s->nvars; i++)
        if (strcmp(s->vars[i].name, name) == 0)
            return i;
    return SIZE_MAX;
}

typedef struct var_set {
    dw_sim_engine *e;
    size_t var;
    const dw_buf *value;
    int rc;
} var_set;

static void set_in_session(dw_sim_session *ss, void *arg)
{
    var_set *v = arg;
    if (v->rc == DW_OK)
        v->rc = dw_sim_engine_var_set(v->e, ss, v->var, v->value->data, v->value->len);
}

/* One PATCH: the variables' new values (index[k] SIZE_MAX for a field that
 * is a property) and the properties'. */
typedef struct patch {
    size_t n;
    dw_buf *values;
    size_t *index;
    dw__ctl_prop_patch *props;
} patch;

/* A variable's value from JSON field f into *out: 0, or -1 with j set. */
static int var_value(ctl_job *j, const cJSON *f, dw_buf *out)
{
    dw_error err;
    dw_error_clear(&err);
    if (cJSON_IsNumber(f)) {
        char *t = cJSON_PrintUnformatted(f);
        int rc = t ? dw_buf_append_str(out, t) : DW_ENOMEM;
        free(t);
        return rc == DW_OK ? 0 : (j->status = 500, -1);
    }
    if (dw_sim_json_bytes(f, out, &err) == DW_OK)
        return 0;
    snprintf(j->error, sizeof j->error, "%s: expected a string, a number or {\"hex\": ...}",
             f->string);
    j->status = 422;
    return -1;
}

static int unknown_field(ctl_job *j, const dw_sim_script *script, const char *name)
{
    size_t nprops = script->props ? dw_sim_props_count(script->props) : 0;
    snprintf(j->error, sizeof j->error,
             "unknown variable or property \"%s\" (%s declares %zu variable%s, %zu propert%s)",
             name, script->path ? script->path : "the script", script->nvars,
             script->nvars == 1 ? "" : "s", nprops, nprops == 1 ? "y" : "ies");
    j->status = 422;
    return -1;
}

/* Check every field of the PATCH body into p (nothing is applied unless
 * all are right): 0, or -1 with j->status, where and error set. */
static int state_check(ctl_job *j, const dw_sim_script *script, patch *p)
{
    size_t k = 0;
    for (const cJSON *f = j->in->child; f; f = f->next, k++) {
        snprintf(j->where, sizeof j->where, "body.%s", f->string);
        p->index[k] = SIZE_MAX;
        int prop = dw__ctl_prop_patch_add(p->props, f, j->error, sizeof j->error);
        if (prop < 0)
            return j->status = 422, -1;
        if (prop)
            continue;
        if ((p->index[k] = var_index(script, f->string)) == SIZE_MAX)
            return unknown_field(j, script, f->string);
        if (var_value(j, f, &p->values[k]) != 0)
            return -1;
    }
    return 0;
}

typedef struct prop_set {
    dw_sim_engine *e;
    dw__ctl_prop_patch *props;
    ctl_job *j;
} prop_set;

static void props_in_session(dw_sim_session *ss, void *arg)
{
    prop_set *v = arg;
    ctl_job *j = v->j;
    if (j->status != 200)
        return;
    int status = dw__ctl_prop_patch_apply(v->props, v->e, ss, j->where, sizeof j->where, j->error,
                                          sizeof j->error);
    if (status)
        j->status = status;
}

/* The checked patch p, properties first (the only values that can still be
 * refused, and then nothing has changed): j->status 200, or why not. */
static void state_apply(ctl_job *j, dw_sim_server *s, patch *p)
{
    int connection = s->gen->script->scope == DW_SIM_SCOPE_CONNECTION;
    prop_set ps = {s->gen->engine, p->props, j};
    j->status = 200;
    props_in_session(NULL, &ps);
    if (connection)
        dw__sim_each_session(s, props_in_session, &ps);
    int rc = j->status == 200 ? DW_OK : DW_EINVAL;
    for (size_t k = 0; k < p->n && rc == DW_OK; k++) {
        if (p->index[k] == SIZE_MAX)
            continue;
        var_set v = {ps.e, p->index[k], &p->values[k], DW_OK};
        rc = dw_sim_engine_var_set(v.e, NULL, v.var, p->values[k].data, p->values[k].len);
        if (connection) {
            dw__sim_each_session(s, set_in_session, &v);
            rc = v.rc;
        }
        if (rc != DW_OK)
            j->status = 500;
    }
}

static void state_patch(void *arg)
{
    ctl_job *j = arg;
    dw_sim_server *s = j->d->server;
    const dw_sim_script *script = s->gen->script;
    patch p = {(size_t)cJSON_GetArraySize(j->in), NULL, NULL, NULL};
    p.values = calloc(p.n ? p.n : 1, sizeof *p.values);
    p.index = calloc(p.n ? p.n : 1, sizeof *p.index);
    p.props = dw__ctl_prop_patch_new(script, p.n);
    j->status = 500;
    if (p.values && p.index && p.props && state_check(j, script, &p) == 0)
        state_apply(j, s, &p);
    for (size_t k = 0; p.values && k < p.n; k++)
        dw_buf_free(&p.values[k]);
    free(p.values);
    free(p.index);
    dw__ctl_prop_patch_free(p.props);
    if (j->status == 200)
        state_get(j);
}

void dw__ctl_state(const ctl_call *call)
{
    const dw_sim_http_request *req = call->req;
    dw_sim_http_response *r = call->r;
    ctl_job j = {0};
    if (strcmp(req->method, "GET") == 0) {
        dw__ctl_on_loop(call->d, state_get, &j);
        dw__ctl_json(r, 200, j.out);
        return;
    }
    cJSON *body = dw__ctl_parse_body(req, r, 1);
    if (!body)
        return;
    if (!cJSON_IsObject(body)) {
        dw__ctl_error(r, 422, "body",
                      "expected an object of variables and properties and their values");
    } else {
        j.in = body;
        dw__ctl_on_loop(call->d, state_patch, &j);
        if (j.status == 200)
            dw__ctl_json(r, 200, j.out);
        else
            dw__ctl_error(r, j.status, j.where, "%s", j.error[0] ? j.error : "out of memory");
        if (j.status != 200)
            cJSON_Delete(j.out);
    }
    cJSON_Delete(body);
}
