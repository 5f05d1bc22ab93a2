/* devwire-sim: a VXI-11 device's "vxi11" key at load: the device names
 * create_link accepts and the maxRecvSize it announces. See docs/sim.md,
 * "VXI-11". */
#include <stdlib.h>
#include <string.h>

#include "script/load_int.h"

/* A device name as VXI-11 clients send it: "inst0", "gpib0,5", "hislip0"
 * would be another protocol; printable, no spaces, at most 64 bytes. */
static int name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 64)
        return 0;
    for (; *n; n++)
        if (*n <= ' ' || *n > '~')
            return 0;
    return 1;
}

static int parse_devices(dw__load *c, const cJSON *v)
{
    dw_sim_script *s = c->s;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0)
        return dw__load_fail(c, v, 0, "expected a non-empty list of device names");
    size_t n = (size_t)cJSON_GetArraySize(v);
    if (!(s->vxi11_devices = calloc(n, sizeof *s->vxi11_devices)))
        return dw__load_oom(c);
    const cJSON *item;
    int rc = DW_OK;
    cJSON_ArrayForEach(item, v)
    {
        size_t old = dw__load_push_index(c, s->nvxi11_devices);
        if (!cJSON_IsString(item) || !name_ok(item->valuestring))
            rc = dw__load_fail(c, item, 0,
                               "expected a device name such as \"inst0\" (1 to 64 printable "
                               "characters, no spaces)");
        for (size_t i = 0; rc == DW_OK && i < s->nvxi11_devices; i++)
            if (strcmp(s->vxi11_devices[i], item->valuestring) == 0)
                rc = dw__load_fail(c, item, 0, "\"%s\" is listed twice", item->valuestring);
        if (rc == DW_OK && !(s->vxi11_devices[s->nvxi11_devices] = strdup(item->valuestring)))
            rc = dw__load_oom(c);
        dw__load_pop(c, old);
        if (rc != DW_OK)
            return rc;
        s->nvxi11_devices++;
    }
    return DW_OK;
}

int dw__load_vxi11(dw__load *c, const cJSON *v)
{
    static const char *const keys[] = {"devices", "max_recv_size"};
    const cJSON *vals[2];
    if (!cJSON_IsObject(v))
        return dw__load_fail(c, v, 0, "expected object");
    int rc = dw__load_members(c, v, keys, 2, vals);
    if (rc == DW_OK && vals[0]) {
        size_t old = dw__load_push(c, "devices");
        rc = parse_devices(c, vals[0]);
        dw__load_pop(c, old);
    }
    if (rc == DW_OK && vals[1]) {
        size_t old = dw__load_push(c, "max_recv_size");
        uint64_t u = 0;
        rc = dw__load_uint(c, vals[1], DW_SIM_VXI11_MAX_RECV_MIN, DW_SIM_VXI11_MAX_RECV_MAX, &u);
        c->s->vxi11_max_recv = (uint32_t)u;
        dw__load_pop(c, old);
    }
    return rc;
}
