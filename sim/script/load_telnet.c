/* devwire-sim: a Telnet device's "telnet" key at load: the options it
 * offers (WILL) and asks for (DO) on connect, by libtelnet's names or by
 * number. See docs/sim.md, "Transport". */
#include <string.h>

#include "script/load_int.h"

/* One option: a name libtelnet knows ("echo") or a number 0 to 255. */
static int parse_option(dw__load *c, const cJSON *v, int *out)
{
    if (cJSON_IsNumber(v)) {
        uint64_t n = 0;
        int rc = dw__load_uint(c, v, 0, 255, &n);
        *out = (int)n;
        return rc;
    }
    if (!cJSON_IsString(v))
        return dw__load_fail(c, v, 0, "expected an option's name (\"echo\") or number (0 to 255)");
    *out = dw_telnet_option_by_name(v->valuestring);
    if (*out >= 0)
        return DW_OK;
    const char *names[256];
    size_t n = 0;
    for (int k = 0; k < 256; k++)
        if (dw_telnet_option_name((uint8_t)k))
            names[n++] = dw_telnet_option_name((uint8_t)k);
    char buf[96];
    const char *near = dw__load_near(v->valuestring, names, n, buf, sizeof buf);
    if (*near)
        return dw__load_fail(c, v, 0, "unknown Telnet option \"%.60s\"%s", v->valuestring, near);
    return dw__load_fail(c, v, 0,
                         "unknown Telnet option \"%.60s\" (expected a name such as \"echo\", "
                         "\"sga\", \"binary\", \"ttype\", \"naws\" or \"linemode\", or a number "
                         "0 to 255)",
                         v->valuestring);
}

/* "will" or "do": an array of options, each once, into bits. */
static int parse_list(dw__load *c, const cJSON *v, uint8_t bits[32])
{
    if (!cJSON_IsArray(v))
        return dw__load_fail(c, v, 0, "expected an array of Telnet options");
    int rc = DW_OK;
    size_t i = 0;
    for (const cJSON *e = v->child; e && rc == DW_OK; e = e->next, i++) {
        size_t old = dw__load_push_index(c, i);
        int opt = 0;
        rc = parse_option(c, e, &opt);
        if (rc == DW_OK && opt == 86) /* TELNET_TELOPT_COMPRESS2 */
            rc = dw__load_fail(c, e, 0, "MCCP2 compression (compress2) is not supported");
        else if (rc == DW_OK && dw_telnet_option_isset(bits, (uint8_t)opt))
            rc = dw__load_fail(c, e, 0, "option %d is listed twice", opt);
        if (rc == DW_OK)
            dw_telnet_option_set(bits, (uint8_t)opt);
        dw__load_pop(c, old);
    }
    return rc;
}

int dw__load_telnet(dw__load *c, const cJSON *v, dw_sim_telnet_opts *out)
{
    static const char *const keys[] = {"will", "do", "description"};
    const cJSON *vals[3];
    if (!cJSON_IsObject(v))
        return dw__load_fail(c, v, 0, "expected object");
    int rc = dw__load_members(c, v, keys, 3, vals);
    memset(out, 0, sizeof *out);
    out->set = 1;
    for (int k = 0; k < 2 && rc == DW_OK; k++) {
        if (!vals[k])
            continue;
        size_t old = dw__load_push(c, keys[k]);
        rc = parse_list(c, vals[k], k == 0 ? out->will : out->ask);
        dw__load_pop(c, old);
    }
    if (rc == DW_OK && vals[2] && !cJSON_IsString(vals[2])) {
        size_t old = dw__load_push(c, "description");
        rc = dw__load_fail(c, vals[2], 0, "expected string");
        dw__load_pop(c, old);
    }
    return rc;
}
