/* devwire-sim's control API: GET and PATCH /devices/NAME/state, the
 * script's variables and its typed properties. A PATCH is checked whole on
 * the device's loop, then applied: to the shared state, and to every
 * connection's when the scope is per connection.
 *
 * Properties' values are typed JSON: numbers, booleans, an enum's short
 * form, strings. They are validated as the instrument validates a set
 * (dw_sim_prop_set) and applied all or nothing: each value is saved before
 * it is set and put back if a later one is refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/control_int.h"
#include "device/server_int.h"
#include "engine/engine.h"
#include "model/props.h"
#include "observe/pattern.h"
#include "common/json_bytes.h"

/* A PATCH's properties, checked then applied all or nothing: _new for at
 * most `max` fields (NULL when out of memory); _add takes field f when it
 * names a property: 1, 0 (not a property), or -1 with `error` saying why
 * it is refused (read-only, a JSON type it cannot take, no such choice);
 * _apply sets them in a session's state (ss NULL: the shared state)
 * through dw_sim_prop_set: 0, or 422 (a value refused: out of range...) or
 * 500 (out of memory) with `where` and `error` naming the property and the
 * reason, nothing changed. */
typedef struct prop_patch {
    const dw_sim_props *defs;
    size_t n, max;
    size_t *index;
    dw_sim_prop_value *value;
    dw_sim_prop_saved *saved;
    dw_buf *bytes; /* a string's bytes given as {"hex"} or {"base64"} */
    size_t bad;    /* the field refused by the last apply */
} prop_patch;

/* ---- the properties, read ---------------------------------------------------- */

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
        /* Bytes a JSON string cannot carry whole are shown as {"hex": ...},
         * as a PATCH may set them. */
        if (memchr(v->str, 0, v->len) || !dw_sim_utf8_valid((const uint8_t *)v->str, v->len))
            return dw__ctl_bytes_json((const uint8_t *)v->str, v->len);
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

/* The typed properties of the device's shared state, as "properties" in
 * `state` (nothing when the script has none): numbers, booleans, an enum's
 * short form, strings; a ramp where the engine's clock puts it. DW_OK or
 * DW_ENOMEM. On the loop thread. */
static int props_add(dw_sim_engine *e, const dw_sim_script *s, cJSON *state)
{
    props_read r = {s->props, cJSON_AddObjectToObject(state, "properties")};
    if (!r.out)
        return DW_ENOMEM;
    int rc = dw_sim_engine_with_props(e, NULL, read_all, &r);
    return rc == DW_ENOENT ? DW_OK : rc;
}

/* ---- the properties, a PATCH ------------------------------------------------ */

static void prop_patch_free(prop_patch *p)
{
    if (!p)
        return;
    for (size_t i = 0; p->bytes && i < p->max; i++)
        dw_buf_free(&p->bytes[i]);
    free(p->index);
    free(p->value);
    free(p->saved);
    free(p->bytes);
    free(p);
}

static prop_patch *prop_patch_new(const dw_sim_script *s, size_t max)
{
    prop_patch *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->defs = s->props;
    max = max ? max : 1;
    p->max = max;
    p->index = calloc(max, sizeof *p->index);
    p->value = calloc(max, sizeof *p->value);
    p->saved = calloc(max, sizeof *p->saved);
    p->bytes = calloc(max, sizeof *p->bytes);
    if (!p->index || !p->value || !p->saved || !p->bytes) {
        prop_patch_free(p);
        return NULL;
    }
    return p;
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

/* A string property's bytes from {"hex": ...} or {"base64": ...} into
 * `b` (kept until the patch is freed): 0, or 1 with `error` saying why. */
static int string_bytes(const cJSON *f, dw_buf *b, dw_sim_prop_value *v, char *error, size_t n)
{
    dw_error err;
    dw_error_clear(&err);
    if (dw_sim_json_bytes(f, b, &err) != DW_OK) {
        snprintf(error, n, "%s: %s", f->string, dw_error_message(&err));
        return 1;
    }
    v->type = DW_SIM_PROP_STRING;
    v->str = b->data ? (const char *)b->data : "";
    v->len = b->len;
    return 0;
}

static int prop_patch_add(prop_patch *p, const cJSON *f, char *error, size_t n)
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
    if (rc == DW_SCPI_E_DATA_TYPE && d->type == DW_SIM_PROP_STRING && cJSON_IsObject(f))
        rc = string_bytes(f, &p->bytes[p->n], &p->value[p->n], error, n);
    if (rc == 1)
        return -1;
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
    prop_patch *p = arg;
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

static int prop_patch_apply(prop_patch *p, dw_sim_engine *e, dw_sim_session *ss, char *where,
                            size_t wn, char *error, size_t en)
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

/* ---- the state ----------------------------------------------------------------- */

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
    if (props_add(e, script, o) != DW_OK) {
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
    prop_patch *props;
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
    snprintf(j->error, sizeof j->error,
             "%s: expected a string, a number, {\"hex\": ...} or {\"base64\": ...}", f->string);
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
        int prop = prop_patch_add(p->props, f, j->error, sizeof j->error);
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
    prop_patch *props;
    ctl_job *j;
} prop_set;

static void props_in_session(dw_sim_session *ss, void *arg)
{
    prop_set *v = arg;
    ctl_job *j = v->j;
    if (j->status != 200)
        return;
    int status =
        prop_patch_apply(v->props, v->e, ss, j->where, sizeof j->where, j->error, sizeof j->error);
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
    p.props = prop_patch_new(script, p.n);
    j->status = 500;
    if (p.values && p.index && p.props && state_check(j, script, &p) == 0)
        state_apply(j, s, &p);
    for (size_t k = 0; p.values && k < p.n; k++)
        dw_buf_free(&p.values[k]);
    free(p.values);
    free(p.index);
    prop_patch_free(p.props);
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
