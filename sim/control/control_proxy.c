/* devwire-sim's control API on a proxy (--proxy, --record): the proxy is a
 * device whose faults are network faults (netfault.h), written as a
 * script's "network" object, plus refuse_connections and disconnect_all
 * now. The proxy's own calls go through its loop (proxy.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/control_int.h"
#include "record/proxy.h"
#include "script/script.h"

/* The network faults of `net` (a script's "network" object), through the
 * script loader: DW_OK and *out, or 422 with the loader's message. */
static int load_network(const cJSON *net, dw_sim_script **out, dw_sim_http_response *r)
{
    char *text = cJSON_PrintUnformatted(net);
    char *doc = NULL;
    if (!text || asprintf(&doc, "{\"network\": %s}", text) < 0) {
        free(text);
        dw__ctl_json(r, 500, NULL);
        return -1;
    }
    dw_error err;
    dw_error_clear(&err);
    int rc = dw_sim_script_load_buffer("body", doc, strlen(doc), out, &err);
    free(text);
    free(doc);
    if (rc != DW_OK)
        dw__ctl_error(r, 422, "body", "%s", dw_error_message(&err));
    return rc == DW_OK ? 0 : -1;
}

static void add_listed(dw_sim_control *c, ctl_device *d, cJSON *ids, const char *id,
                       const char *kind)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return;
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "kind", kind);
    pthread_mutex_lock(&c->fault_lock);
    cJSON_AddItemToArray(d->faults, o);
    pthread_mutex_unlock(&c->fault_lock);
    cJSON_AddItemToArray(ids, cJSON_CreateString(id));
}

/* The toxics of `net`, added to the proxy; 0, or -1 after answering. */
static int add_toxics(dw_sim_control *c, ctl_device *d, const dw_sim_netfaults *net, cJSON *ids,
                      dw_sim_http_response *r)
{
    for (size_t i = 0; net && i < net->n; i++) {
        const dw_sim_toxic *t = &net->toxics[i];
        dw_error err;
        dw_error_clear(&err);
        if (dw_sim_proxy_add_fault(d->proxy, t, &err) != DW_OK) {
            dw__ctl_error(r, err.code == DW_ENOMEM ? 500 : 422, "body", "%s",
                          dw_error_message(&err));
            return -1;
        }
        add_listed(c, d, ids, t->name, dw_sim_toxic_kind_name(t->kind));
    }
    return 0;
}

/* "refuse_connections": {"duration_ms": N} and "disconnect_all": {} act
 * now; they are taken out of `body`. 0, or -1 after answering. */
static int listener_faults(ctl_device *d, cJSON *body, cJSON *ids, dw_sim_http_response *r)
{
    cJSON *refuse = cJSON_DetachItemFromObjectCaseSensitive(body, "refuse_connections");
    cJSON *drop = cJSON_DetachItemFromObjectCaseSensitive(body, "disconnect_all");
    int rc = 0;
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(refuse, "duration_ms");
    if (refuse && (!cJSON_IsNumber(ms) || ms->valuedouble < 1 || ms->valuedouble > 86400000)) {
        dw__ctl_error(r, 422, "body.refuse_connections.duration_ms",
                      "expected milliseconds from 1 to 86400000");
        rc = -1;
    } else if (refuse) {
        dw_sim_proxy_refuse_for(d->proxy, (uint64_t)ms->valuedouble);
        cJSON_AddItemToArray(ids, cJSON_CreateString("refuse_connections"));
    }
    if (rc == 0 && drop) {
        dw_sim_proxy_disconnect_all(d->proxy);
        cJSON_AddItemToArray(ids, cJSON_CreateString("disconnect_all"));
    }
    cJSON_Delete(refuse);
    cJSON_Delete(drop);
    return rc;
}

static void fault_post(dw_sim_control *c, ctl_device *d, const dw_sim_http_request *req,
                       dw_sim_http_response *r)
{
    cJSON *body = dw__ctl_parse_body(req, r, 1);
    if (!body)
        return;
    cJSON *ids = cJSON_CreateArray();
    dw_sim_script *s = NULL;
    if (!cJSON_IsObject(body))
        dw__ctl_error(r, 422, "body", "expected an object, as a script's \"network\"");
    else if (listener_faults(d, body, ids, r) == 0 && load_network(body, &s, r) == 0 &&
             add_toxics(c, d, s->network, ids, r) == 0) {
        cJSON *o = cJSON_CreateObject();
        if (o) {
            cJSON_AddItemToObject(o, "ids", ids);
            ids = NULL;
        }
        dw__ctl_json(r, 201, o);
    }
    dw_sim_script_free(s);
    cJSON_Delete(ids);
    cJSON_Delete(body);
}

static void faults_get(dw_sim_control *c, ctl_device *d, dw_sim_http_response *r)
{
    pthread_mutex_lock(&c->fault_lock);
    cJSON *list = cJSON_Duplicate(d->faults, 1);
    pthread_mutex_unlock(&c->fault_lock);
    dw__ctl_json(r, 200, list);
}

/* Remove fault `id`, or all of them (id NULL): the number removed. */
static int faults_remove(dw_sim_control *c, ctl_device *d, const char *id)
{
    int removed = 0;
    pthread_mutex_lock(&c->fault_lock);
    for (cJSON *f = d->faults->child, *next; f; f = next) {
        next = f->next;
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(f, "id"));
        if (id && strcmp(name, id) != 0)
            continue;
        dw_sim_proxy_remove_fault(d->proxy, name);
        cJSON_Delete(cJSON_DetachItemViaPointer(d->faults, f));
        removed++;
    }
    pthread_mutex_unlock(&c->fault_lock);
    return removed;
}

void dw__ctl_proxy_faults(const ctl_call *call)
{
    dw_sim_control *c = call->c;
    ctl_device *d = call->d;
    const char *id = call->id;
    const dw_sim_http_request *req = call->req;
    dw_sim_http_response *r = call->r;
    if (strcmp(req->method, "GET") == 0 && !id) {
        faults_get(c, d, r);
    } else if (strcmp(req->method, "POST") == 0 && !id) {
        fault_post(c, d, req, r);
    } else if (faults_remove(c, d, id) == 0 && id) {
        dw__ctl_error(r, 404, "path", "no fault \"%s\" on device %s", id, d->name);
    } else {
        cJSON *o = cJSON_CreateObject();
        if (o)
            cJSON_AddBoolToObject(o, "removed", 1);
        dw__ctl_json(r, 200, o);
    }
}
