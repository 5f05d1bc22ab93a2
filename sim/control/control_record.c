/* devwire-sim's control API: POST /record/stop (--record) writes the
 * recording now, answers with what it holds, and once the answer was sent
 * ends the run (the options' record_stop and record_stopped). */
#include "control/control_int.h"

void dw__ctl_record_stop(const ctl_call *call)
{
    const dw_sim_control *c = call->c;
    dw_sim_http_response *r = call->r;
    cJSON *o = NULL;
    dw_error err;
    dw_error_clear(&err);
    if (c->o.record_stop(c->o.record_arg, &o, &err) != DW_OK)
        dw__ctl_error(r, err.code == DW_ENOMEM ? 500 : 409, "record", "%s", dw_error_message(&err));
    else
        dw__ctl_json(r, 200, o);
    if (r->status == 200 && c->o.record_stopped) {
        r->then = c->o.record_stopped;
        r->then_arg = c->o.record_arg;
    }
}
