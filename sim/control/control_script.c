/* devwire-sim's control API: PUT /devices/NAME/script serves another
 * script, loaded and checked as at the start; the device keeps its
 * transport (connections, datagrams or a serial line) and its address.
 * Everything in the script applies: its "network" replaces the faults of
 * the proxy in front of the device (run/serve.c puts one there when the
 * device starts with "network"); what cannot apply is refused (422) and
 * the old script keeps serving. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/control_int.h"
#include "device/server_int.h"
#include "record/proxy.h"
#include "script/script.h"

/* What of s device d cannot serve while it runs: 0, or -1 after answering
 * 422 with what and why. */
static int refuse_unservable(const ctl_device *d, const dw_sim_script *s, dw_sim_http_response *r)
{
    const dw_sim_server *srv = d->server;
    int datagram = s->transport == DW_SIM_UDP, serial = s->transport == DW_SIM_SERIAL;
    if (datagram != (srv->udp != NULL) || serial != (srv->serial != NULL)) {
        dw__ctl_error(r, 422, "body.transport",
                      "transport: device %s cannot change between connections, datagrams and a "
                      "serial line while it runs",
                      d->name);
        return -1;
    }
    if (s->network && !d->front) {
        dw__ctl_error(r, 422, "body.network",
                      "network: device %s started without \"network\", so its clients connect "
                      "to it directly and there is no proxy in front of it to apply network "
                      "faults; start it with a script that has \"network\" (an empty {} will "
                      "do) to change them at run time",
                      d->name);
        return -1;
    }
    for (size_t i = 0; i < s->nrules; i++)
        if (s->rules[i].net && s->rules[i].net->direction == DW_SIM_DIR_REPLY) {
            dw__ctl_error(r, 422, "body.rules",
                          "rules[%zu]: \"direction\": \"reply\" matches a device's replies: "
                          "only devwire-sim --proxy serves it",
                          i);
            return -1;
        }
    return 0;
}

/* Serve s on d (taken on success), its "network" through d's front proxy:
 * 0, or -1 after answering (the caller keeps s). */
static int apply(ctl_device *d, dw_sim_script *s, const char *name, dw_sim_http_response *r)
{
    dw_error err;
    dw_error_clear(&err);
    dw_sim_netfaults *net = NULL;
    dw_sim_tcp_ack ack = s->tcp_ack;
    if (dw_sim_netfaults_copy(s->network, &net) != DW_OK) {
        dw__ctl_json(r, 500, NULL);
        return -1;
    }
    if (dw_sim_server_reload(d->server, s, &err) != DW_OK) {
        dw__ctl_error(r, 400, name, "%s", dw_error_message(&err));
        dw_sim_netfaults_free(net);
        return -1;
    }
    /* The device serves s now; a script without "network" has none. */
    int rc = d->front ? dw_sim_proxy_set_network(d->front, net, ack, &err) : DW_OK;
    dw_sim_netfaults_free(net);
    if (rc != DW_OK) {
        dw__ctl_error(r, 500, "body.network", "the script serves, its network faults not: %s",
                      dw_error_message(&err));
        return 1;
    }
    return 0;
}

void dw__ctl_script_put(const ctl_call *call)
{
    ctl_device *d = call->d;
    const dw_sim_http_request *req = call->req;
    dw_sim_http_response *r = call->r;
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
    size_t nsteps = s->nsteps, nrules = s->nrules;
    size_t nnet = s->network ? s->network->n : 0;
    int rc = refuse_unservable(d, s, r) == 0 ? apply(d, s, name, r) : -1;
    if (rc < 0)
        dw_sim_script_free(s);
    if (rc != 0)
        return;
    dw__sim_log(d->server, DW_LOG_WARN, "script replaced through the control API");
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddNumberToObject(o, "steps", (double)nsteps);
        cJSON_AddNumberToObject(o, "rules", (double)nrules);
        if (d->front)
            cJSON_AddNumberToObject(o, "network", (double)nnet);
    }
    dw__ctl_json(r, 200, o);
}
