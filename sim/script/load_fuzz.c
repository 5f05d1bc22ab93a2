/* devwire-sim: a "fuzz" network fault at load (docs/sim.md, "Network
 * faults"): which mutations, which frames. */
#include <string.h>

#include "model/fuzz.h"
#include "script/load_int.h"

#define WITH_KEY(c, v, expr)                                                                       \
    do {                                                                                           \
        size_t old_ = dw__load_push((c), (v)->string);                                             \
        rc = (expr);                                                                               \
        dw__load_pop((c), old_);                                                                   \
    } while (0)

/* "mutations": ["truncate", "number", ...], each at most once. */
static int mutations(dw__load *c, const cJSON *v, unsigned *out)
{
    if (!cJSON_IsArray(v) || !cJSON_GetArraySize(v))
        return dw__load_fail(c, v, 0, "expected a non-empty array of mutation names");
    static const char *const names[DW_SIM_MUT_NKINDS] = {
        "truncate", "flip", "number", "split", "duplicate", "swap", "block_length"};
    size_t i = 0;
    int rc = DW_OK;
    for (const cJSON *e = v->child; e && rc == DW_OK; e = e->next, i++) {
        int k = 0;
        size_t old = dw__load_push_index(c, i);
        rc = dw__load_enum(c, e, names, DW_SIM_MUT_NKINDS, &k);
        if (rc == DW_OK && (*out & (1u << k)))
            rc = dw__load_fail(c, e, 0, "\"%s\" is listed twice", names[k]);
        *out |= 1u << k;
        dw__load_pop(c, old);
    }
    return rc;
}

/* "frames": [N, ...], frame numbers from 1. */
static int frames(dw__load *c, const cJSON *v, dw_sim_fuzz *f)
{
    int n = cJSON_GetArraySize(v);
    if (!cJSON_IsArray(v) || n < 1 || n > DW_SIM_FUZZ_MAX_FRAMES)
        return dw__load_fail(c, v, 0, "expected an array of 1 to %d frame numbers",
                             DW_SIM_FUZZ_MAX_FRAMES);
    size_t i = 0;
    int rc = DW_OK;
    for (const cJSON *e = v->child; e && rc == DW_OK; e = e->next, i++) {
        size_t old = dw__load_push_index(c, i);
        rc = dw__load_uint(c, e, 1, UINT64_C(1) << 53, &f->frames[i]);
        dw__load_pop(c, old);
    }
    f->nframes = i;
    return rc;
}

int dw__load_fuzz(dw__load *c, const cJSON *obj, const cJSON **p, dw_sim_fuzz *f)
{
    int rc = DW_OK;
    uint64_t u = 20; /* split_delay_ms */
    memset(f, 0, sizeof *f);
    f->frame_probability = 1;
    if (p[0])
        WITH_KEY(c, p[0], mutations(c, p[0], &f->mutations));
    if (rc == DW_OK && p[1] && p[2])
        return dw__load_fail(c, p[2], 1, "expected one of \"frame_probability\" and \"every\"");
    if (rc == DW_OK && p[1]) {
        if (!cJSON_IsNumber(p[1]) || !(p[1]->valuedouble >= 0 && p[1]->valuedouble <= 1))
            WITH_KEY(c, p[1], dw__load_fail(c, p[1], 0, "expected a number from 0 to 1"));
        else
            f->frame_probability = p[1]->valuedouble;
    }
    if (rc == DW_OK && p[2])
        WITH_KEY(c, p[2], dw__load_uint(c, p[2], 1, UINT64_C(1) << 53, &f->every));
    if (rc == DW_OK && p[3])
        WITH_KEY(c, p[3], dw__load_uint(c, p[3], 0, UINT64_C(1) << 53, &f->after_frames));
    if (rc == DW_OK && p[4])
        WITH_KEY(c, p[4], frames(c, p[4], f));
    if (rc == DW_OK && p[5])
        WITH_KEY(c, p[5], dw__load_uint(c, p[5], 1, UINT64_C(1) << 53, &f->connection));
    if (rc == DW_OK && p[6])
        WITH_KEY(c, p[6], dw__load_uint(c, p[6], 0, 3600000, &u));
    f->split_delay_ms = (unsigned)u;
    (void)obj;
    return rc;
}
