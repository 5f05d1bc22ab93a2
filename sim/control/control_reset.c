/* devwire-sim's control API: POST /devices/NAME/reset puts the device back
 * to its start (variables, steps, faults, the journal), and its counters
 * too unless {"keep_counters": true}. */
#include "control/control_int.h"
#include "device/server_int.h"
#include "engine/engine.h"

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

void dw__ctl_reset_post(const ctl_call *call)
{
    const dw_sim_http_request *req = call->req;
    dw_sim_http_response *r = call->r;
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
        dw__ctl_on_loop(call->d, device_reset, &j);
        cJSON *o = cJSON_CreateObject();
        if (o)
            cJSON_AddBoolToObject(o, "reset", 1);
        dw__ctl_json(r, 200, o);
    }
    cJSON_Delete(body);
}
