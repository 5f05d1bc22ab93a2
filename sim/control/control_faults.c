/* devwire-sim's control API: a server's faults, injected at run time
 * (devctl.h applies them on the loop): GET lists them, POST adds one,
 * DELETE removes one (/faults/ID) or all. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/control_int.h"
#include "device/server_int.h"

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
                        "garbage: expected non-empty bytes (a string, {\"hex\": ...} or "
                        "{\"base64\": ...}) "
                        "with "
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
    dw_sim_fault_spec *f = j->arg;
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
        j.arg = &f;
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

void dw__ctl_faults(const ctl_call *call)
{
    ctl_device *d = call->d;
    const char *id = call->id;
    const dw_sim_http_request *req = call->req;
    dw_sim_http_response *r = call->r;
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
