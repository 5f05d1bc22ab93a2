/* devwire-sim's control API: the routes (control.h). Each handler reads
 * the request, hands what touches a device to the loop thread in one short
 * call and answers from what that call found. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/control_int.h"
#include "device/server_int.h"

#define JOURNAL_LIMIT 10000 /* entries in one answer at most */
#define DEFAULT_LIMIT 100
#define DEFAULT_WAIT  5000

/* Split the path into decoded segments: their number, or -1. */
static int split_path(const char *path, char seg[MAX_SEGMENTS][MAX_SEGMENT])
{
    int n = 0;
    if (!path || *path != '/')
        return -1;
    for (const char *p = path + 1; *p;) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (n == MAX_SEGMENTS || dw__ctl_decode(p, len, 0, seg[n], MAX_SEGMENT) != 0)
            return -1;
        n++;
        if (!end)
            break;
        p = end + 1;
        if (!*p) /* a trailing slash */
            break;
    }
    return n;
}

static const char *transport_name(const dw_sim_script *s)
{
    static const char *const names[] = {"tcp", "telnet", "udp", "serial"};
    return names[s->transport];
}

/* On the loop: the device's summary line for /devices. */
static void device_info(void *arg)
{
    ctl_job *j = arg;
    dw_sim_server *s = j->d->server;
    const dw_sim_script *script = s->gen->script;
    dw_sim_devctl_counts c;
    dw_sim_devctl_counts_get(s, &c);
    cJSON *o = j->out = cJSON_CreateObject();
    if (!o)
        return;
    cJSON_AddStringToObject(o, "name", j->d->name);
    cJSON_AddStringToObject(o, "address", s->addr);
    cJSON_AddStringToObject(o, "transport", transport_name(script));
    cJSON_AddStringToObject(o, "script", script->name ? script->name : "");
    cJSON_AddNumberToObject(o, "requests", (double)c.requests);
    cJSON_AddNumberToObject(o, "replies", (double)c.replies);
    cJSON_AddNumberToObject(o, "unmatched", (double)c.unmatched);
    cJSON_AddNumberToObject(o, "faults", (double)c.faults);
    cJSON_AddNumberToObject(o, "connections_open", (double)c.connections_open);
    cJSON_AddNumberToObject(o, "connections_total", (double)c.connections_total);
    cJSON_AddNumberToObject(o, "bytes_in", (double)c.bytes_in);
    cJSON_AddNumberToObject(o, "bytes_out", (double)c.bytes_out);
    cJSON_AddNumberToObject(o, "listening", s->listening || s->udp || s->serial);
}

static cJSON *device_json(ctl_device *d)
{
    if (d->proxy)
        return dw__ctl_proxy_json(d);
    ctl_job j = {0};
    dw__ctl_on_loop(d, device_info, &j);
    return j.out;
}

static void get_devices(dw_sim_control *c, dw_sim_http_response *r)
{
    cJSON *list = cJSON_CreateArray();
    for (size_t i = 0; list && i < c->n; i++) {
        cJSON *o = device_json(&c->devs[i]);
        if (!o) {
            cJSON_Delete(list);
            list = NULL;
            break;
        }
        cJSON_AddItemToArray(list, o);
    }
    dw__ctl_json(r, 200, list);
}

/* ---- state ------------------------------------------------------------------- */

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

static void state_route(ctl_device *d, const dw_sim_http_request *req, dw_sim_http_response *r)
{
    ctl_job j = {0};
    if (strcmp(req->method, "GET") == 0) {
        dw__ctl_on_loop(d, state_get, &j);
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
        dw__ctl_on_loop(d, state_patch, &j);
        if (j.status == 200)
            dw__ctl_json(r, 200, j.out);
        else
            dw__ctl_error(r, j.status, j.where, "%s", j.error[0] ? j.error : "out of memory");
        if (j.status != 200)
            cJSON_Delete(j.out);
    }
    cJSON_Delete(body);
}

/* ---- reset --------------------------------------------------------------------- */

static void reset_session(dw_sim_session *ss, void *arg)
{
    (void)arg;
    dw_sim_session_reset(ss);
}

static void device_reset(void *arg)
{
    ctl_job *j = arg;
    dw_sim_server *s = j->d->server;
    int keep = j->flag;
    dw_sim_engine_reset(s->gen->engine, keep);
    dw__sim_each_session(s, reset_session, NULL);
    dw_sim_devctl_reset(s, keep);
    if (!keep) {
        s->accepted = s->nconns;
        s->retired_requests = s->retired_unmatched = s->retired_limit_hits = 0;
        s->bytes_in = s->bytes_out = 0;
    }
    j->status = 200;
}

static void reset_route(ctl_device *d, const dw_sim_http_request *req, dw_sim_http_response *r)
{
    cJSON *body = dw__ctl_parse_body(req, r, 0);
    if (!body)
        return;
    const cJSON *keep = cJSON_GetObjectItemCaseSensitive(body, "keep_counters");
    if (!cJSON_IsObject(body) || (keep && !cJSON_IsBool(keep))) {
        dw__ctl_error(r, 422, keep ? "body.keep_counters" : "body",
                      keep ? "keep_counters: expected true or false"
                           : "expected {} or {\"keep_counters\": true}");
    } else {
        ctl_job j = {0};
        j.flag = cJSON_IsTrue(keep);
        dw__ctl_on_loop(d, device_reset, &j);
        cJSON *o = cJSON_CreateObject();
        if (o)
            cJSON_AddBoolToObject(o, "reset", 1);
        dw__ctl_json(r, 200, o);
    }
    cJSON_Delete(body);
}

/* ---- faults -------------------------------------------------------------------- */

/* A whole number field in [lo, hi]: 1 set, 0 absent, -1 wrong (j filled). */
static int field_number(ctl_job *j, const cJSON *body, const char *key, double lo, double hi,
                        int whole, double *v)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(body, key);
    if (!f)
        return 0;
    double x = cJSON_IsNumber(f) ? f->valuedouble : -1e308;
    if (!cJSON_IsNumber(f) || !(x >= lo && x <= hi) || (whole && x != (double)(long long)x)) {
        snprintf(j->where, sizeof j->where, "body.%s", key);
        snprintf(j->error, sizeof j->error, "%s: expected %s from %g to %g", key,
                 whole ? "a whole number" : "a number", lo, hi);
        return -1;
    }
    *v = x;
    return 1;
}

static int fault_check_keys(ctl_job *j, const cJSON *body)
{
    static const char *const known[] = {"kind",        "match",    "count",  "duration_ms",
                                        "probability", "delay_ms", "garbage"};
    for (const cJSON *f = body->child; f; f = f->next) {
        size_t k = 0;
        while (k < sizeof known / sizeof known[0] && strcmp(known[k], f->string) != 0)
            k++;
        if (k == sizeof known / sizeof known[0]) {
            snprintf(j->where, sizeof j->where, "body.%s", f->string);
            snprintf(j->error, sizeof j->error,
                     "unknown field \"%s\" (expected kind, match, count, duration_ms, "
                     "probability, delay_ms, garbage)",
                     f->string);
            return -1;
        }
    }
    return 0;
}

/* The body of POST .../faults into f: 0, or -1 with j->where and j->error. */
static int fault_parse(ctl_job *j, const cJSON *body, dw_sim_fault_spec *f)
{
    if (!cJSON_IsObject(body))
        return snprintf(j->where, sizeof j->where, "body"),
               snprintf(j->error, sizeof j->error, "expected an object"), -1;
    if (fault_check_keys(j, body) != 0)
        return -1;
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(body, "kind");
    int k = cJSON_IsString(kind) ? dw_sim_ctl_fault_parse(kind->valuestring) : -1;
    if (k < 0)
        return snprintf(j->where, sizeof j->where, "body.kind"),
               snprintf(j->error, sizeof j->error,
                        "kind: expected close, reset, hang, garbage, delay, drop, "
                        "refuse_connections or disconnect_all"),
               -1;
    f->kind = (dw_sim_ctl_fault)k;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, "match");
    dw_error err;
    dw_error_clear(&err);
    if (m && dw_sim_pattern_from_json(&f->match, m, &err) != DW_OK)
        return snprintf(j->where, sizeof j->where, "body.match"),
               snprintf(j->error, sizeof j->error, "match: %s", dw_error_message(&err)), -1;
    double count = 0, duration = 0, p = 1, delay = 0;
    if (field_number(j, body, "count", 1, 1e12, 1, &count) < 0 ||
        field_number(j, body, "duration_ms", 1, 86400000, 1, &duration) < 0 ||
        field_number(j, body, "probability", 1e-9, 1, 0, &p) < 0 ||
        field_number(j, body, "delay_ms", 1, 3600000, 1, &delay) < 0)
        return -1;
    if (f->kind == DW_SIM_CTL_DELAY && delay == 0)
        return snprintf(j->where, sizeof j->where, "body.delay_ms"),
               snprintf(j->error, sizeof j->error, "delay_ms: a delay fault needs it"), -1;
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(body, "garbage");
    if (g && (f->kind != DW_SIM_CTL_GARBAGE || dw_sim_json_bytes(g, &f->garbage, &err) != DW_OK ||
              !f->garbage.len))
        return snprintf(j->where, sizeof j->where, "body.garbage"),
               snprintf(j->error, sizeof j->error,
                        "garbage: expected non-empty bytes (a string or {\"hex\": ...}) with "
                        "kind \"garbage\""),
               -1;
    f->count = (uint64_t)count;
    f->duration_ms = (uint64_t)duration;
    f->probability = p;
    f->delay_ms = (unsigned)delay;
    return 0;
}

static void fault_add(void *arg)
{
    ctl_job *j = arg;
    dw_sim_fault_spec *f = (dw_sim_fault_spec *)(void *)j->out; /* passed through */
    j->out = NULL;
    dw_error err;
    dw_error_clear(&err);
    uint64_t id = 0;
    if (dw_sim_devctl_fault_add(j->d->server, f, &id, &err) != DW_OK) {
        j->status = err.code == DW_ENOMEM ? 500 : 422;
        snprintf(j->where, sizeof j->where, "body.kind");
        snprintf(j->error, sizeof j->error, "%s", dw_error_message(&err));
        return;
    }
    j->status = 201;
    j->num = (long long)id;
}

static void faults_list(void *arg)
{
    ctl_job *j = arg;
    j->out = dw_sim_devctl_faults_json(j->d->server);
}

static void fault_remove(void *arg)
{
    ctl_job *j = arg;
    if (j->flag) {
        dw_sim_devctl_faults_clear(j->d->server);
        j->status = 200;
        return;
    }
    j->status = dw_sim_devctl_fault_remove(j->d->server, (uint64_t)j->num) == DW_OK ? 200 : 404;
}

static void fault_post(ctl_device *d, const dw_sim_http_request *req, dw_sim_http_response *r)
{
    cJSON *body = dw__ctl_parse_body(req, r, 1);
    if (!body)
        return;
    ctl_job j = {0};
    dw_sim_fault_spec f;
    dw_sim_fault_spec_init(&f);
    if (fault_parse(&j, body, &f) != 0) {
        dw__ctl_error(r, 422, j.where, "%s", j.error);
    } else {
        const char *kind = dw_sim_ctl_fault_name(f.kind);
        j.out = (cJSON *)(void *)&f;
        dw__ctl_on_loop(d, fault_add, &j);
        if (j.status != 201) {
            dw__ctl_error(r, j.status, j.where, "%s", j.error);
        } else {
            cJSON *o = cJSON_CreateObject();
            if (o) {
                cJSON_AddNumberToObject(o, "id", (double)j.num);
                cJSON_AddStringToObject(o, "kind", kind);
            }
            dw__ctl_json(r, 201, o);
        }
    }
    dw_sim_fault_spec_free(&f);
    cJSON_Delete(body);
}

static void faults_route(ctl_device *d, const char *id, const dw_sim_http_request *req,
                         dw_sim_http_response *r)
{
    ctl_job j = {0};
    if (strcmp(req->method, "GET") == 0 && !id) {
        dw__ctl_on_loop(d, faults_list, &j);
        dw__ctl_json(r, 200, j.out);
        return;
    }
    if (strcmp(req->method, "POST") == 0 && !id) {
        fault_post(d, req, r);
        return;
    }
    char *end = NULL;
    j.flag = !id;
    j.num = id ? strtoll(id, &end, 10) : 0;
    if (id && (end == id || *end || j.num <= 0)) {
        dw__ctl_error(r, 404, "path", "no fault \"%s\" on device %s", id, d->name);
        return;
    }
    dw__ctl_on_loop(d, fault_remove, &j);
    if (j.status == 404) {
        dw__ctl_error(r, 404, "path", "no fault %lld on device %s", j.num, d->name);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    if (o)
        cJSON_AddBoolToObject(o, "removed", 1);
    dw__ctl_json(r, 200, o);
}

/* ---- the journal ------------------------------------------------------------------ */

static void journal_get(ctl_device *d, const dw_sim_http_request *req, dw_sim_http_response *r)
{
    long long since = 1, limit = DEFAULT_LIMIT, tail = 0;
    if (dw__ctl_query_number(req, "since", 0, (long long)1 << 53, &since, r) < 0 ||
        dw__ctl_query_number(req, "limit", 1, JOURNAL_LIMIT, &limit, r) < 0 ||
        dw__ctl_query_number(req, "tail", 1, JOURNAL_LIMIT, &tail, r) < 0)
        return;
    dw_sim_journal *jn = dw_sim_devctl_journal(d->dev);
    if (tail) { /* the last `tail` entries */
        long long next = (long long)dw_sim_journal_next_seq(jn);
        since = next - tail > 1 ? next - tail : 1;
        limit = tail;
    }
    uint64_t dropped = dw_sim_journal_dropped(jn), first = 0;
    dw_sim_journal_entry *e = NULL;
    size_t n = 0;
    int rc = dw_sim_journal_read(jn, (uint64_t)since, (size_t)limit, &e, &n, &first);
    cJSON *o = cJSON_CreateObject(), *list = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON *item = rc == DW_OK && list ? dw_sim_journal_entry_json(&e[i]) : NULL;
        if (!item)
            rc = DW_ENOMEM;
        else
            cJSON_AddItemToArray(list, item);
        dw_sim_journal_entry_free(&e[i]);
    }
    free(e);
    if (rc != DW_OK || !o || !list) {
        cJSON_Delete(o);
        cJSON_Delete(list);
        dw__ctl_json(r, 500, NULL);
        return;
    }
    cJSON *last = cJSON_GetArrayItem(list, (int)n - 1);
    uint64_t next = last ? (uint64_t)cJSON_GetObjectItem(last, "seq")->valuedouble + 1
                         : dw_sim_journal_next_seq(jn);
    if (!last && (uint64_t)since > next)
        next = (uint64_t)since;
    cJSON_AddItemToObject(o, "entries", list);
    cJSON_AddNumberToObject(o, "next", (double)next);
    cJSON_AddNumberToObject(o, "dropped", (double)dropped);
    /* Entries between `since` and the first one held were dropped. */
    if (!first)
        first = dw_sim_journal_next_seq(jn);
    cJSON_AddBoolToObject(o, "missed", dropped && (uint64_t)since < first);
    dw__ctl_json(r, 200, o);
}

static int wait_pred(const dw_sim_journal_entry *e, void *arg)
{
    return dw_sim_pattern_match(arg, e->req, e->req_len, e->match);
}

/* The wait's pattern from match=, rule=, request=, prefix= or regex=:
 * 0 (ANY when none), or -1 after answering 422. */
static int query_pattern(const dw_sim_http_request *req, dw_sim_pattern *p, dw_sim_http_response *r)
{
    static const char *const keys[] = {"match", "rule", "request", "prefix", "regex"};
    char text[MAX_SEGMENT * 4], where[32];
    memset(p, 0, sizeof *p);
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        int got = dw__ctl_query_get(req->query, keys[k], text, sizeof text);
        snprintf(where, sizeof where, "query.%s", keys[k]);
        if (got < 0) {
            dw__ctl_error(r, 422, where, "%s: badly encoded or too long", keys[k]);
            return -1;
        }
        if (got == 0)
            continue;
        dw_error err;
        dw_error_clear(&err);
        if (dw_sim_pattern_make(p, keys[k], (const uint8_t *)text, strlen(text), &err) != DW_OK) {
            dw__ctl_error(r, 422, where, "%s", dw_error_message(&err));
            return -1;
        }
        return 0;
    }
    return 0;
}

static void journal_wait(dw_sim_control *c, ctl_device *d, const dw_sim_http_request *req,
                         dw_sim_http_response *r)
{
    long long since = 1,
              timeout = DEFAULT_WAIT < c->o.max_wait_ms ? DEFAULT_WAIT : c->o.max_wait_ms;
    if (dw__ctl_query_number(req, "since", 0, (long long)1 << 53, &since, r) < 0 ||
        dw__ctl_query_number(req, "timeout_ms", 0, c->o.max_wait_ms, &timeout, r) < 0)
        return;
    dw_sim_pattern p;
    if (query_pattern(req, &p, r) != 0)
        return;
    dw_sim_journal_entry e;
    memset(&e, 0, sizeof e);
    int rc = dw_sim_journal_wait(dw_sim_devctl_journal(d->dev), (uint64_t)since, wait_pred, &p,
                                 (int)timeout, &e);
    if (rc == DW_OK)
        dw__ctl_json(r, 200, dw_sim_journal_entry_json(&e));
    else if (rc == DW_ETIMEDOUT)
        dw__ctl_error(r, 408, "query", "no request matching %s on device %s within %lld ms",
                      p.bytes ? (const char *)p.bytes : "anything", d->name, timeout);
    else
        dw__ctl_error(r, rc == DW_ECANCELED ? 503 : 500, "", "the wait ended: %s", dw_strerror(rc));
    dw_sim_journal_entry_free(&e);
    dw_sim_pattern_free(&p);
}

/* ---- the script ------------------------------------------------------------------- */

static void script_put(ctl_device *d, const dw_sim_http_request *req, dw_sim_http_response *r)
{
    char name[MAX_SEGMENT + 32];
    snprintf(name, sizeof name, "devices/%s/script", d->name);
    dw_sim_script *s = NULL;
    dw_error err;
    dw_error_clear(&err);
    if (dw_sim_script_load_buffer(name, req->body ? (const char *)req->body : "", req->body_len, &s,
                                  &err) != DW_OK) {
        /* "devices/sg/script:3:9: rules[0].when: ..." -> where "devices/sg/script:3:9" */
        const char *msg = dw_error_message(&err);
        const char *at = msg + strlen(name);
        size_t len = strlen(name);
        for (int colons = 0; *at && colons < 3; at++, len++)
            if (*at == ':' && ++colons == 3)
                break;
        char where[MAX_SEGMENT + 64];
        snprintf(where, sizeof where, "%.*s", (int)len, msg);
        dw__ctl_error(r, err.code == DW_ENOMEM ? 500 : 400, where, "%s", msg);
        return;
    }
    if (d->transport >= 0)
        s->transport = (dw_sim_transport)d->transport;
    dw_sim_server *srv = d->server;
    int datagram = s->transport == DW_SIM_UDP, serial = s->transport == DW_SIM_SERIAL;
    if (datagram != (srv->udp != NULL) || serial != (srv->serial != NULL)) {
        dw__ctl_error(r, 422, "body.transport",
                      "transport: device %s cannot change between connections, datagrams and a "
                      "serial line while it runs",
                      d->name);
        dw_sim_script_free(s);
        return;
    }
    size_t nsteps = s->nsteps, nrules = s->nrules;
    if (dw_sim_server_reload(srv, s, &err) != DW_OK) {
        dw__ctl_error(r, 400, name, "%s", dw_error_message(&err));
        dw_sim_script_free(s);
        return;
    }
    dw__sim_log(srv, DW_LOG_WARN, "script replaced through the control API");
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddNumberToObject(o, "steps", (double)nsteps);
        cJSON_AddNumberToObject(o, "rules", (double)nrules);
    }
    dw__ctl_json(r, 200, o);
}

/* ---- metrics --------------------------------------------------------------------- */

typedef struct metrics_job {
    ctl_device *d;
    dw_buf *fam;
    int rc;
} metrics_job;

static void metrics_one(void *arg)
{
    metrics_job *m = arg;
    m->rc = dw_sim_devctl_metrics(m->d->server, m->d->name, m->fam);
}

static void get_metrics(dw_sim_control *c, dw_sim_http_response *r)
{
    dw_buf fam[DW_SIM_METRIC_FAMILIES];
    for (size_t i = 0; i < DW_SIM_METRIC_FAMILIES; i++)
        dw_buf_init(&fam[i]);
    int rc = DW_OK;
    for (size_t i = 0; i < c->n && rc == DW_OK; i++) {
        if (c->devs[i].proxy)
            continue;
        metrics_job m = {&c->devs[i], fam, DW_OK};
        dw_sim_loop_call(c->devs[i].server->loop, metrics_one, &m);
        rc = m.rc;
    }
    dw_buf_clear(&r->body);
    for (size_t i = 0; i < DW_SIM_METRIC_FAMILIES && rc == DW_OK; i++) {
        const char *name, *type, *help;
        dw_sim_metric_family(i, &name, &type, &help);
        rc = dw_buf_printf(&r->body, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
        if (rc == DW_OK)
            rc = dw_buf_append(&r->body, fam[i].data, fam[i].len);
    }
    for (size_t i = 0; i < DW_SIM_METRIC_FAMILIES; i++)
        dw_buf_free(&fam[i]);
    if (rc != DW_OK) {
        dw__ctl_json(r, 500, NULL);
        return;
    }
    r->status = 200;
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

/* ---- verify ------------------------------------------------------------------------ */

typedef struct text_job {
    ctl_device *d;
    const char *name;
    char *text;
} text_job;

static void find_rule_text(void *arg)
{
    text_job *t = arg;
    const dw_sim_script *s = t->d->server->gen->script;
    const dw_sim_match *m = NULL;
    for (size_t i = 0; !m && i < s->nrules; i++)
        if (s->rules[i].name && strcmp(s->rules[i].name, t->name) == 0)
            m = &s->rules[i].when;
    for (size_t i = 0; !m && i < s->nsteps; i++)
        if (s->steps[i].name && strcmp(s->steps[i].name, t->name) == 0)
            m = &s->steps[i].expect;
    t->text = m && m->source ? strdup(m->source) : NULL;
}

static char *rule_text(const char *name, void *arg)
{
    text_job t = {arg, name, NULL};
    dw_sim_loop_call(t.d->server->loop, find_rule_text, &t);
    return t.text;
}

/* ---- routing ------------------------------------------------------------------------- */

static ctl_device *find_device(dw_sim_control *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->devs[i].name, name) == 0)
            return &c->devs[i];
    return NULL;
}

static void device_route(dw_sim_control *c, ctl_device *d, char seg[MAX_SEGMENTS][MAX_SEGMENT],
                         int n, const dw_sim_http_request *req, dw_sim_http_response *r)
{
    const char *what = n > 2 ? seg[2] : "";
    if (n == 2) {
        if (dw__ctl_allowed(req, r, "GET"))
            dw__ctl_json(r, 200, device_json(d));
    } else if (strcmp(what, "state") == 0 && n == 3) {
        if (dw__ctl_allowed(req, r, "GET, PATCH"))
            state_route(d, req, r);
    } else if (strcmp(what, "reset") == 0 && n == 3) {
        if (dw__ctl_allowed(req, r, "POST"))
            reset_route(d, req, r);
    } else if (strcmp(what, "faults") == 0 && n == 3) {
        if (dw__ctl_allowed(req, r, "GET, POST, DELETE"))
            faults_route(d, NULL, req, r);
    } else if (strcmp(what, "faults") == 0 && n == 4) {
        if (dw__ctl_allowed(req, r, "DELETE"))
            faults_route(d, seg[3], req, r);
    } else if (strcmp(what, "journal") == 0 && n == 3) {
        if (dw__ctl_allowed(req, r, "GET"))
            journal_get(d, req, r);
    } else if (strcmp(what, "journal") == 0 && n == 4 && strcmp(seg[3], "wait") == 0) {
        if (dw__ctl_allowed(req, r, "GET"))
            journal_wait(c, d, req, r);
    } else if (strcmp(what, "verify") == 0 && n == 3) {
        cJSON *body = dw__ctl_allowed(req, r, "POST") ? dw__ctl_parse_body(req, r, 1) : NULL;
        if (body)
            dw__ctl_verify(dw_sim_devctl_journal(d->dev), body, rule_text, d, r);
        cJSON_Delete(body);
    } else if (strcmp(what, "script") == 0 && n == 3) {
        if (dw__ctl_allowed(req, r, "PUT"))
            script_put(d, req, r);
    } else {
        dw__ctl_error(r, 404, "path", "%s: no such endpoint", req->path);
    }
}

/* The bearer token, compared in constant time: from the Authorization
 * header, or the access_token query parameter (the status page's fetches
 * carry it so, as a browser cannot add a header to the page itself). */
static int authorized(const dw_sim_control *c, const dw_sim_http_request *req)
{
    if (!c->token)
        return 1;
    static const char scheme[] = "Bearer ";
    const char *header = req->authorization;
    char query[MAX_SEGMENT];
    const char *given = NULL;
    if (header && strncmp(header, scheme, sizeof scheme - 1) == 0)
        given = header + sizeof scheme - 1;
    else if (dw__ctl_query_get(req->query, "access_token", query, sizeof query) == 1)
        given = query;
    if (!given)
        return 0;
    size_t n = strlen(c->token), m = strlen(given);
    unsigned char diff = (unsigned char)(n != m);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(c->token[i] ^ (i < m ? given[i] : 0));
    return diff == 0;
}

static void route(dw_sim_control *c, const dw_sim_http_request *req, dw_sim_http_response *r)
{
    char seg[MAX_SEGMENTS][MAX_SEGMENT];
    int n = split_path(req->path, seg);
    if (n < 0) {
        dw__ctl_error(r, 404, "path", "%.200s: no such endpoint", req->path ? req->path : "");
    } else if (n == 0) {
        if (dw__ctl_allowed(req, r, "GET"))
            dw__ctl_page(r);
    } else if (n == 1 && strcmp(seg[0], "health") == 0) {
        cJSON *o = dw__ctl_allowed(req, r, "GET") ? cJSON_CreateObject() : NULL;
        if (o) {
            cJSON_AddStringToObject(o, "status", "ok");
            cJSON_AddNumberToObject(o, "devices", (double)c->n);
            dw__ctl_json(r, 200, o);
        }
    } else if (n == 1 && strcmp(seg[0], "metrics") == 0) {
        if (dw__ctl_allowed(req, r, "GET"))
            get_metrics(c, r);
    } else if (n == 1 && strcmp(seg[0], "devices") == 0) {
        if (dw__ctl_allowed(req, r, "GET"))
            get_devices(c, r);
    } else if (n == 2 && strcmp(seg[0], "record") == 0 && strcmp(seg[1], "stop") == 0 &&
               c->o.record_stop) {
        if (dw__ctl_allowed(req, r, "POST"))
            dw__ctl_record_stop(c, req, r);
    } else if (n >= 2 && strcmp(seg[0], "devices") == 0) {
        ctl_device *d = find_device(c, seg[1]);
        if (d && d->proxy)
            dw__ctl_proxy_route(c, d, seg, n, req, r);
        else if (d)
            device_route(c, d, seg, n, req, r);
        else
            dw__ctl_error(r, 404, "path", "no device named \"%s\"", seg[1]);
    } else {
        dw__ctl_error(r, 404, "path", "%.200s: no such endpoint", req->path);
    }
}

void dw_sim_control_handle(dw_sim_control *c, const dw_sim_http_request *req,
                           dw_sim_http_response *r)
{
    dw_sim_http_response_init(r);
    if (!authorized(c, req)) {
        dw__ctl_error(r, 401, "authorization",
                      "this control API needs \"Authorization: Bearer TOKEN\" (--control-token)");
        return;
    }
    if (req->body_len > c->o.max_body) {
        dw__ctl_error(r, 413, "body", "the body is %zu bytes; at most %zu are accepted",
                      req->body_len, c->o.max_body);
        return;
    }
    if (!req->method || !req->path) {
        dw__ctl_error(r, 400, "", "no method or path");
        return;
    }
    route(c, req, r);
}
