/* devwire-sim's control API: GET /devices, every device's summary, and
 * GET /devices/NAME, one: a server's address, transport, script and
 * counters (read on its loop), or a proxy's upstream and connections. */
#include "control/control_int.h"
#include "device/server_int.h"
#include "record/proxy.h"

/* A proxy's summary: where it listens, what it forwards to, its counts. */
static cJSON *proxy_json(ctl_device *d)
{
    cJSON *o = cJSON_CreateObject();
    uint64_t accepted = 0, served = 0;
    dw_sim_proxy_counts(d->proxy, &accepted, &served);
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "name", d->name);
    cJSON_AddStringToObject(o, "kind", "proxy");
    cJSON_AddStringToObject(o, "mode", d->mode);
    cJSON_AddStringToObject(o, "address", dw_sim_proxy_address(d->proxy));
    cJSON_AddStringToObject(o, "upstream", d->upstream);
    cJSON_AddNumberToObject(o, "connections_total", (double)served);
    cJSON_AddNumberToObject(o, "connections_refused", (double)(accepted - served));
    return o;
}

static const char *transport_name(const dw_sim_script *s)
{
    static const char *const names[] = {"tcp", "telnet", "udp", "serial", "vxi11"};
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
        return proxy_json(d);
    ctl_job j = {0};
    dw__ctl_on_loop(d, device_info, &j);
    return j.out;
}

void dw__ctl_devices_get(const ctl_call *call)
{
    dw_sim_control *c = call->c;
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
    dw__ctl_json(call->r, 200, list);
}

void dw__ctl_device_get(const ctl_call *call)
{
    dw__ctl_json(call->r, 200, device_json(call->d));
}
