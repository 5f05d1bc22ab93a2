/* devwire-sim: the script's network faults at load ("network", and a
 * rule's "direction", "probability" and "delay") and its TCP options
 * ("tcp"), located like every other loader error. See docs/sim.md,
 * "Network faults" and "TCP acknowledgements". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/netfault.h"
#include "script/load_int.h"

#define MAX_MS    3600000u
#define MAX_BYTES ((uint64_t)1 << 40)

/* A member of an object, its path pushed while `fn` reads it. */
#define WITH_KEY(c, v, expr)                                                                       \
    do {                                                                                           \
        size_t old_ = dw__load_push((c), (v)->string);                                             \
        rc = (expr);                                                                               \
        dw__load_pop((c), old_);                                                                   \
    } while (0)

static int get_number(dw__load *c, const cJSON *v, double lo, double hi, double *out)
{
    if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi)
        return dw__load_fail(c, v, 0, "expected a number from %g to %g", lo, hi);
    *out = v->valuedouble;
    return DW_OK;
}

static int get_ms(dw__load *c, const cJSON *v, unsigned *out)
{
    uint64_t u = 0;
    int rc = dw__load_uint(c, v, 0, MAX_MS, &u);
    *out = (unsigned)u;
    return rc;
}

static int get_ms_double(dw__load *c, const cJSON *v, double *out)
{
    return get_number(c, v, 0, MAX_MS, out);
}

static const char *const dist_names[] = {"fixed", "uniform", "normal", "lognormal"};

/* {"distribution": ..., and its parameters}: a rule's "delay". */
static int parse_delay(dw__load *c, const cJSON *v, dw_sim_delay *d)
{
    static const char *const keys[] = {"distribution", "ms",        "min_ms",    "max_ms",
                                       "mean_ms",      "stddev_ms", "median_ms", "sigma"};
    /* The parameters each distribution takes, as indexes into keys. */
    static const int need[4][2] = {{1, -1}, {2, 3}, {4, 5}, {6, 7}};
    const cJSON *vals[8];
    if (!cJSON_IsObject(v))
        return dw__load_fail(c, v, 0, "expected object");
    int rc = dw__load_members(c, v, keys, 8, vals);
    if (rc != DW_OK)
        return rc;
    if (!vals[0])
        return dw__load_fail(c, v, 0, "missing \"distribution\"");
    int e = 0;
    WITH_KEY(c, vals[0], dw__load_enum(c, vals[0], dist_names, 4, &e));
    if (rc != DW_OK)
        return rc;
    d->dist = (dw_sim_dist)e;
    for (int k = 1; k < 8 && rc == DW_OK; k++) {
        int mine = need[e][0] == k || need[e][1] == k;
        if (vals[k] && !mine)
            rc = dw__load_fail(c, vals[k], 1, "not a parameter of the %s distribution",
                               dist_names[e]);
        else if (!vals[k] && mine)
            rc = dw__load_fail(c, v, 0, "missing \"%s\" (the %s distribution)", keys[k],
                               dist_names[e]);
    }
    double *slot[2] = {&d->a, &d->b};
    for (int i = 0; i < 2 && rc == DW_OK && need[e][i] >= 0; i++) {
        const cJSON *p = vals[need[e][i]];
        if (need[e][i] == 7)
            WITH_KEY(c, p, get_number(c, p, 0, 10, slot[i]));
        else
            WITH_KEY(c, p, get_ms_double(c, p, slot[i]));
    }
    if (rc == DW_OK && e == DW_SIM_DIST_UNIFORM && d->b < d->a)
        rc = dw__load_fail(c, vals[3], 0, "must be at least min_ms");
    return rc;
}

static const char *const direction_names[] = {"request", "reply"};

int dw__load_rule_net(dw__load *c, const cJSON *const *vals, int has_fault, dw_sim_rule_net **out)
{
    if (!vals[0] && !vals[1] && !vals[2])
        return DW_OK;
    dw_sim_rule_net *n = calloc(1, sizeof *n);
    if (!n)
        return dw__load_oom(c);
    *out = n;
    n->probability = 1;
    int rc = DW_OK;
    if (vals[0])
        WITH_KEY(c, vals[0], dw__load_enum(c, vals[0], direction_names, 2, &n->direction));
    if (rc == DW_OK && vals[1]) {
        if (!has_fault)
            WITH_KEY(c, vals[1], dw__load_fail(c, vals[1], 1, "only with \"fault\""));
        else
            WITH_KEY(c, vals[1], get_number(c, vals[1], 0, 1, &n->probability));
    }
    if (rc == DW_OK && vals[2]) {
        n->has_delay = 1;
        WITH_KEY(c, vals[2], parse_delay(c, vals[2], &n->delay));
    }
    return rc;
}

/* ---- "network" ------------------------------------------------------------- */

/* One toxic's parameters: keys[0..n) after "probability". */
typedef struct toxic_spec {
    const char *name;
    dw_sim_toxic_kind kind;
    const char *keys[7];
    size_t nkeys;
} toxic_spec;

static const toxic_spec specs[] = {
    {"latency", DW_SIM_TOXIC_LATENCY, {"ms", "jitter_ms", "distribution"}, 3},
    {"bandwidth", DW_SIM_TOXIC_BANDWIDTH, {"bytes_per_second", "baud"}, 2},
    {"slicer", DW_SIM_TOXIC_SLICER, {"average_size", "size_variation", "delay_ms"}, 3},
    {"limit_data", DW_SIM_TOXIC_LIMIT_DATA, {"bytes"}, 1},
    {"slow_close", DW_SIM_TOXIC_SLOW_CLOSE, {"delay_ms"}, 1},
    {"timeout", DW_SIM_TOXIC_TIMEOUT, {"ms"}, 1},
    {"reset_peer", DW_SIM_TOXIC_RESET_PEER, {"after_ms"}, 1},
    {"fuzz",
     DW_SIM_TOXIC_FUZZ,
     {"mutations", "frame_probability", "every", "after_frames", "frames", "connection",
      "split_delay_ms"},
     7},
};
#define NSPECS (sizeof specs / sizeof specs[0])

static int latency(dw__load *c, const cJSON *obj, const cJSON **p, dw_sim_toxic *t)
{
    double ms = 0, jitter = 0;
    int rc = DW_OK, e = 0;
    static const char *const jitter_names[] = {"uniform", "normal"};
    if (!p[0])
        return dw__load_fail(c, obj, 0, "missing \"ms\"");
    WITH_KEY(c, p[0], get_ms_double(c, p[0], &ms));
    if (rc == DW_OK && p[1])
        WITH_KEY(c, p[1], get_ms_double(c, p[1], &jitter));
    if (rc == DW_OK && p[2] && !p[1])
        WITH_KEY(c, p[2], dw__load_fail(c, p[2], 1, "only with \"jitter_ms\""));
    else if (rc == DW_OK && p[2])
        WITH_KEY(c, p[2], dw__load_enum(c, p[2], jitter_names, 2, &e));
    if (rc != DW_OK)
        return rc;
    if (jitter == 0)
        t->delay = (dw_sim_delay){DW_SIM_DIST_FIXED, ms, 0};
    else if (e == 0)
        t->delay = (dw_sim_delay){DW_SIM_DIST_UNIFORM, ms > jitter ? ms - jitter : 0, ms + jitter};
    else
        t->delay = (dw_sim_delay){DW_SIM_DIST_NORMAL, ms, jitter};
    return DW_OK;
}

static int bandwidth(dw__load *c, const cJSON *obj, const cJSON **p, dw_sim_toxic *t)
{
    uint64_t u = 0;
    int rc = DW_OK;
    if (!p[0] == !p[1])
        return dw__load_fail(c, obj, 0, "expected one of \"bytes_per_second\" and \"baud\"");
    const cJSON *v = p[0] ? p[0] : p[1];
    WITH_KEY(c, v, dw__load_uint(c, v, p[0] ? 1 : 10, MAX_BYTES, &u));
    t->rate = p[0] ? u : u / 10; /* a serial line: 10 bits a byte */
    return rc;
}

static int slicer(dw__load *c, const cJSON *obj, const cJSON **p, dw_sim_toxic *t)
{
    uint64_t avg = 0, var = 0;
    int rc = DW_OK;
    if (!p[0])
        return dw__load_fail(c, obj, 0, "missing \"average_size\"");
    WITH_KEY(c, p[0], dw__load_uint(c, p[0], 1, 1u << 30, &avg));
    if (rc == DW_OK && p[1])
        WITH_KEY(c, p[1], dw__load_uint(c, p[1], 0, avg - 1, &var));
    if (rc == DW_OK && p[2])
        WITH_KEY(c, p[2], get_ms(c, p[2], &t->pause_ms));
    t->avg_size = (size_t)avg;
    t->size_variation = (size_t)var;
    return rc;
}

/* limit_data, slow_close, timeout: one required number; reset_peer: one
 * optional number. */
static int single(dw__load *c, const cJSON *obj, const cJSON **p, dw_sim_toxic *t, const char *key)
{
    int rc = DW_OK;
    uint64_t u = 0;
    if (!p[0] && t->kind == DW_SIM_TOXIC_RESET_PEER)
        return DW_OK;
    if (!p[0])
        return dw__load_fail(c, obj, 0, "missing \"%s\"", key);
    if (t->kind == DW_SIM_TOXIC_LIMIT_DATA)
        WITH_KEY(c, p[0], dw__load_uint(c, p[0], 0, MAX_BYTES, &t->bytes));
    else
        WITH_KEY(c, p[0], dw__load_uint(c, p[0], 0, MAX_MS, &u));
    t->ms = (unsigned)u;
    return rc;
}

static int parse_toxic(dw__load *c, const cJSON *v, const toxic_spec *sp, int dir,
                       dw_sim_netfaults *l)
{
    if (!cJSON_IsObject(v))
        return dw__load_fail(c, v, 0, "expected object");
    const char *keys[9] = {"probability", "new_connections_only"};
    for (size_t i = 0; i < sp->nkeys; i++)
        keys[i + 2] = sp->keys[i];
    const cJSON *vals[9];
    int rc = dw__load_members(c, v, keys, sp->nkeys + 2, vals);
    if (rc != DW_OK)
        return rc;
    dw_sim_toxic t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "%s.%s", direction_names[dir], sp->name);
    t.kind = sp->kind;
    t.direction = dir;
    t.probability = 1;
    if (vals[0])
        WITH_KEY(c, vals[0], get_number(c, vals[0], 0, 1, &t.probability));
    if (rc == DW_OK && vals[1] && !cJSON_IsBool(vals[1]))
        WITH_KEY(c, vals[1], dw__load_fail(c, vals[1], 0, "expected true or false"));
    t.new_only = cJSON_IsTrue(vals[1]);
    if (rc != DW_OK)
        return rc;
    const cJSON **p = vals + 2;
    switch (sp->kind) {
    case DW_SIM_TOXIC_LATENCY:
        rc = latency(c, v, p, &t);
        break;
    case DW_SIM_TOXIC_BANDWIDTH:
        rc = bandwidth(c, v, p, &t);
        break;
    case DW_SIM_TOXIC_SLICER:
        rc = slicer(c, v, p, &t);
        break;
    case DW_SIM_TOXIC_FUZZ:
        rc = dw__load_fuzz(c, v, p, &t.fuzz);
        break;
    default:
        rc = single(c, v, p, &t, sp->keys[0]);
        break;
    }
    if (rc != DW_OK)
        return rc;
    dw_error err;
    dw_error_clear(&err);
    rc = dw_sim_netfaults_add(l, &t, &err);
    return rc == DW_ENOMEM ? dw__load_oom(c)
           : rc            ? dw__load_fail(c, v, 0, "%s", dw_error_message(&err))
                           : DW_OK;
}

static int parse_direction(dw__load *c, const cJSON *v, int dir, dw_sim_netfaults *l)
{
    const char *keys[NSPECS + 1];
    const cJSON *vals[NSPECS + 1];
    for (size_t i = 0; i < NSPECS; i++)
        keys[i] = specs[i].name;
    keys[NSPECS] = "description";
    if (!cJSON_IsObject(v))
        return dw__load_fail(c, v, 0, "expected object");
    int rc = dw__load_members(c, v, keys, NSPECS + 1, vals);
    for (size_t i = 0; i < NSPECS && rc == DW_OK; i++)
        if (vals[i])
            WITH_KEY(c, vals[i], parse_toxic(c, vals[i], &specs[i], dir, l));
    return rc;
}

/* {"after_ms": A, "for_ms"/"every_ms": B}. */
static int parse_window(dw__load *c, const cJSON *v, const char *second, uint64_t *after,
                        uint64_t *then, int then_required)
{
    const char *keys[2] = {"after_ms", second};
    const cJSON *vals[2];
    if (!cJSON_IsObject(v))
        return dw__load_fail(c, v, 0, "expected object");
    int rc = dw__load_members(c, v, keys, 2, vals);
    if (rc == DW_OK && then_required && !vals[1])
        rc = dw__load_fail(c, v, 0, "missing \"%s\"", second);
    if (rc == DW_OK && vals[0])
        WITH_KEY(c, vals[0], dw__load_uint(c, vals[0], 0, 86400000, after));
    if (rc == DW_OK && vals[1])
        WITH_KEY(c, vals[1], dw__load_uint(c, vals[1], 1, 86400000, then));
    return rc;
}

int dw__load_network(dw__load *c, const cJSON *v, dw_sim_netfaults **out)
{
    static const char *const keys[] = {"request", "reply", "refuse_connections", "disconnect_all",
                                       "description"};
    const cJSON *vals[5];
    if (!cJSON_IsObject(v))
        return dw__load_fail(c, v, 0, "expected object");
    int rc = dw__load_members(c, v, keys, 5, vals);
    if (rc != DW_OK)
        return rc;
    dw_sim_netfaults *l = calloc(1, sizeof *l);
    if (!l)
        return dw__load_oom(c);
    *out = l;
    for (int dir = 0; dir < 2 && rc == DW_OK; dir++)
        if (vals[dir])
            WITH_KEY(c, vals[dir], parse_direction(c, vals[dir], dir, l));
    if (rc == DW_OK && vals[2])
        WITH_KEY(c, vals[2],
                 parse_window(c, vals[2], "for_ms", &l->refuse_after_ms, &l->refuse_for_ms, 1));
    if (rc == DW_OK && vals[3]) {
        WITH_KEY(c, vals[3],
                 parse_window(c, vals[3], "every_ms", &l->disconnect_after_ms,
                              &l->disconnect_every_ms, 0));
        if (rc == DW_OK && !l->disconnect_after_ms && !l->disconnect_every_ms)
            WITH_KEY(c, vals[3],
                     dw__load_fail(c, vals[3], 0,
                                   "expected \"after_ms\" above 0 "
                                   "or \"every_ms\""));
    }
    return rc;
}

int dw__load_tcp(dw__load *c, const cJSON *v, dw_sim_tcp_ack *out)
{
    static const char *const keys[] = {"quickack", "description"};
    const cJSON *vals[2];
    if (!cJSON_IsObject(v))
        return dw__load_fail(c, v, 0, "expected object");
    int rc = dw__load_members(c, v, keys, 2, vals);
    if (rc != DW_OK || !vals[0])
        return rc;
    if (!cJSON_IsBool(vals[0]))
        WITH_KEY(c, vals[0], dw__load_fail(c, vals[0], 0, "expected true or false"));
    else
        *out = cJSON_IsTrue(vals[0]) ? DW_SIM_TCP_ACK_QUICK : DW_SIM_TCP_ACK_DELAYED;
    return rc;
}
