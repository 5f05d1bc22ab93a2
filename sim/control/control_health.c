/* devwire-sim's control API: GET /health, for a test harness waiting for
 * the simulator to be up. */
#include "control/control_int.h"

void dw__ctl_health_get(const ctl_call *call)
{
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddStringToObject(o, "status", "ok");
        cJSON_AddNumberToObject(o, "devices", (double)call->c->n);
        dw__ctl_json(call->r, 200, o);
    }
}
