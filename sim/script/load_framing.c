/* devwire-sim: a script's "framing", at load (load_int.h): one spec for both
 * directions or {"request": spec, "response": spec}; each type takes only
 * its own options. */
#include "script/load_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { F_TYPE, F_SENTINEL, F_LENGTH, F_HEADER, F_ENDIAN, F_MAX, F_N };
static const char *const framing_keys[] = {"type",        "sentinel", "length",
                                           "header_size", "endian",   "max_frame"};
static const char *const framing_names[] = {"sentinel", "fixed", "length-prefixed", "scpi",
                                            "json-lines"};
/* Which options each framing type takes (bit F_x). */
static const unsigned framing_options[] = {
    1u << F_SENTINEL | 1u << F_MAX,                /* sentinel */
    1u << F_LENGTH | 1u << F_MAX,                  /* fixed */
    1u << F_HEADER | 1u << F_ENDIAN | 1u << F_MAX, /* length-prefixed */
    1u << F_SENTINEL | 1u << F_MAX,                /* scpi */
    1u << F_MAX,                                   /* json-lines */
};
static const char *const endian_names[] = {"big", "little"};

int dw__load_framing_default(dw__load *c, dw_sim_framing *f)
{
    memset(f, 0, sizeof *f);
    f->type = DW_SIM_FRAMING_SENTINEL;
    f->max_frame = DW_DEFAULT_MAX_FRAME;
    f->endian = DW_BIG_ENDIAN;
    return dw__load_bytes_set(c, &f->sentinel, "\n", 1);
}

static int parse_framing_spec(dw__load *c, const cJSON *v, dw_sim_framing *f)
{
    if (!cJSON_IsObject(v))
        return dw__load_fail(c, v, 0, "expected object");
    const cJSON *vals[F_N];
    int rc = dw__load_members(c, v, framing_keys, F_N, vals);
    if (rc != DW_OK)
        return rc;
    if (!vals[F_TYPE])
        return dw__load_fail(c, v, 0, "missing \"type\"");
    int type = 0;
    size_t old = dw__load_push(c, "type");
    rc = dw__load_enum(c, vals[F_TYPE], framing_names, 5, &type);
    dw__load_pop(c, old);
    if (rc != DW_OK)
        return rc;
    f->type = (dw_sim_framing_type)type;
    for (int k = F_SENTINEL; k < F_N; k++) {
        if (vals[k] && !(framing_options[type] & (1u << k))) {
            old = dw__load_push(c, framing_keys[k]);
            rc = dw__load_fail(c, vals[k], 1, "not an option of %s framing", framing_names[type]);
            dw__load_pop(c, old);
            return rc;
        }
    }
    uint64_t u = 0;
    for (int k = F_SENTINEL; k < F_N && rc == DW_OK; k++) {
        const cJSON *o = vals[k];
        if (!o)
            continue;
        old = dw__load_push(c, framing_keys[k]);
        switch (k) {
        case F_SENTINEL:
            if ((rc = dw__load_bytes(c, o, &f->sentinel)) == DW_OK && f->sentinel.len == 0)
                rc = dw__load_fail(c, o, 0, "must not be empty");
            break;
        case F_LENGTH:
            if ((rc = dw__load_uint(c, o, 1, DW_SIM_MAX_FRAME_LIMIT, &u)) == DW_OK)
                f->length = (size_t)u;
            break;
        case F_HEADER:
            if ((rc = dw__load_uint(c, o, 1, 4, &u)) == DW_OK && u == 3)
                rc = dw__load_fail(c, o, 0, "expected 1, 2 or 4");
            f->header_size = (unsigned)u;
            break;
        case F_ENDIAN: {
            int e = 0;
            if ((rc = dw__load_enum(c, o, endian_names, 2, &e)) == DW_OK)
                f->endian = e ? DW_LITTLE_ENDIAN : DW_BIG_ENDIAN;
            break;
        }
        case F_MAX:
            if ((rc = dw__load_uint(c, o, 1, DW_SIM_MAX_FRAME_LIMIT, &u)) == DW_OK)
                f->max_frame = (size_t)u;
            break;
        }
        dw__load_pop(c, old);
    }
    if (rc != DW_OK)
        return rc;
    if (f->type == DW_SIM_FRAMING_FIXED) {
        if (!vals[F_LENGTH])
            return dw__load_fail(c, v, 0, "fixed framing needs \"length\"");
        if (f->length > f->max_frame) {
            old = dw__load_push(c, "length");
            rc = dw__load_fail(c, vals[F_LENGTH], 0, "larger than max_frame (%zu)", f->max_frame);
            dw__load_pop(c, old);
            return rc;
        }
    }
    if (f->type == DW_SIM_FRAMING_LENGTH_PREFIXED && !vals[F_HEADER])
        return dw__load_fail(c, v, 0, "length-prefixed framing needs \"header_size\"");
    if (f->type != DW_SIM_FRAMING_SENTINEL && f->type != DW_SIM_FRAMING_SCPI) {
        free(f->sentinel.data);
        f->sentinel = (dw_sim_bytes){NULL, 0};
    }
    return DW_OK;
}

int dw__load_framing(dw__load *c, const cJSON *v)
{
    dw_sim_script *s = c->s;
    if (cJSON_IsObject(v) && (cJSON_GetObjectItemCaseSensitive(v, "request") ||
                              cJSON_GetObjectItemCaseSensitive(v, "response"))) {
        static const char *const keys[] = {"request", "response"};
        const cJSON *vals[2];
        int rc = dw__load_members(c, v, keys, 2, vals);
        if (rc != DW_OK)
            return rc;
        if (!vals[0] || !vals[1])
            return dw__load_fail(c, v, 0, "missing \"%s\"", vals[0] ? "response" : "request");
        size_t old = dw__load_push(c, "request");
        rc = parse_framing_spec(c, vals[0], &s->request_framing);
        dw__load_pop(c, old);
        if (rc != DW_OK)
            return rc;
        old = dw__load_push(c, "response");
        rc = parse_framing_spec(c, vals[1], &s->response_framing);
        dw__load_pop(c, old);
        return rc;
    }
    int rc = parse_framing_spec(c, v, &s->request_framing);
    if (rc != DW_OK)
        return rc;
    dw_sim_bytes sent = s->response_framing.sentinel;
    s->response_framing = s->request_framing;
    s->response_framing.sentinel = sent;
    if (s->request_framing.sentinel.len)
        return dw__load_bytes_set(c, &s->response_framing.sentinel,
                                  s->request_framing.sentinel.data,
                                  s->request_framing.sentinel.len);
    free(sent.data);
    s->response_framing.sentinel = (dw_sim_bytes){NULL, 0};
    return DW_OK;
}
