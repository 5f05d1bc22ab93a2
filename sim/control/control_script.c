/* devwire-sim's control API: PUT /devices/NAME/script serves another
 * script, loaded and checked as at the start; the device keeps its
 * transport (connections, datagrams or a serial line) and its address. */
#include <stdio.h>
#include <string.h>

#include "control/control_int.h"
#include "device/server_int.h"
#include "script/script.h"

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
