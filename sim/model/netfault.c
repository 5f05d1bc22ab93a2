/* devwire-sim's network faults: see netfault.h. */
#include "model/netfault.h"

#include "common/memory.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define MAX_DELAY_MS 3600000.0

/* ---- random draws ---------------------------------------------------------- */

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void dw_sim_rng_seed(dw_sim_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t dw_sim_rng_next(dw_sim_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double dw_sim_rng_unit(dw_sim_rng *r)
{
    return (double)(dw_sim_rng_next(r) >> 11) * 0x1.0p-53;
}

int dw_sim_rng_chance(dw_sim_rng *r, double p)
{
    if (p >= 1)
        return 1;
    if (p <= 0)
        return 0;
    return dw_sim_rng_unit(r) < p;
}

uint64_t dw_sim_rng_entropy(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) == (ssize_t)sizeof v)
        return v;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
}

/* A standard normal draw (Box-Muller). */
static double normal(dw_sim_rng *r)
{
    double u = dw_sim_rng_unit(r), v = dw_sim_rng_unit(r);
    return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

unsigned dw_sim_delay_draw(const dw_sim_delay *d, dw_sim_rng *r)
{
    double ms = d->a;
    switch (d->dist) {
    case DW_SIM_DIST_FIXED:
        break;
    case DW_SIM_DIST_UNIFORM:
        ms = d->a + (d->b - d->a) * dw_sim_rng_unit(r);
        break;
    case DW_SIM_DIST_NORMAL:
        ms = d->a + d->b * normal(r);
        break;
    case DW_SIM_DIST_LOGNORMAL:
        ms = d->a * exp(d->b * normal(r));
        break;
    }
    if (!(ms > 0))
        return 0;
    return ms > MAX_DELAY_MS ? (unsigned)MAX_DELAY_MS : (unsigned)(ms + 0.5);
}

/* ---- the fault list ---------------------------------------------------------- */

static const char *const kind_names[DW_SIM_TOXIC_NKINDS] = {
    "latency", "bandwidth", "slicer", "limit_data", "slow_close", "timeout", "reset_peer", "fuzz"};

const char *dw_sim_toxic_kind_name(dw_sim_toxic_kind k)
{
    return (unsigned)k < DW_SIM_TOXIC_NKINDS ? kind_names[k] : "?";
}

const dw_sim_toxic *dw_sim_netfaults_find(const dw_sim_netfaults *l, const char *name)
{
    for (size_t i = 0; l && i < l->n; i++)
        if (strcmp(l->toxics[i].name, name) == 0)
            return &l->toxics[i];
    return NULL;
}

int dw_sim_netfaults_add(dw_sim_netfaults *l, const dw_sim_toxic *t, dw_error *err)
{
    if (dw_sim_netfaults_find(l, t->name))
        return dw_error_set(err, DW_EINVAL, "network fault \"%s\": already there", t->name);
    if ((unsigned)t->kind >= DW_SIM_TOXIC_NKINDS ||
        (t->direction != DW_SIM_DIR_REQUEST && t->direction != DW_SIM_DIR_REPLY) ||
        !(t->probability >= 0 && t->probability <= 1) ||
        (t->kind == DW_SIM_TOXIC_BANDWIDTH && t->rate == 0) ||
        (t->kind == DW_SIM_TOXIC_SLICER && t->avg_size == 0) ||
        (t->kind == DW_SIM_TOXIC_FUZZ &&
         (t->fuzz.nframes > DW_SIM_FUZZ_MAX_FRAMES ||
          !(t->fuzz.frame_probability >= 0 && t->fuzz.frame_probability <= 1))))
        return dw_error_set(err, DW_EINVAL, "network fault \"%s\": invalid values", t->name);
    dw_sim_toxic *grown = dw_sim_grow(l->toxics, l->n, &l->cap, sizeof *grown, 4);
    if (!grown)
        return dw_error_set(err, DW_ENOMEM, "out of memory");
    l->toxics = grown;
    l->toxics[l->n++] = *t;
    return DW_OK;
}

int dw_sim_netfaults_remove(dw_sim_netfaults *l, const char *name)
{
    const dw_sim_toxic *t = dw_sim_netfaults_find(l, name);
    if (!t)
        return DW_ENOENT;
    size_t i = (size_t)(t - l->toxics);
    memmove(&l->toxics[i], &l->toxics[i + 1], (l->n - i - 1) * sizeof *l->toxics);
    l->n--;
    return DW_OK;
}

int dw_sim_netfaults_copy(const dw_sim_netfaults *l, dw_sim_netfaults **out)
{
    *out = NULL;
    if (!l)
        return DW_OK;
    dw_sim_netfaults *c = calloc(1, sizeof *c);
    if (!c)
        return DW_ENOMEM;
    *c = *l;
    c->toxics = l->n ? malloc(l->n * sizeof *c->toxics) : NULL;
    if (l->n && !c->toxics) {
        free(c);
        return DW_ENOMEM;
    }
    if (l->n)
        memcpy(c->toxics, l->toxics, l->n * sizeof *c->toxics);
    c->cap = l->n;
    *out = c;
    return DW_OK;
}

void dw_sim_netfaults_free(dw_sim_netfaults *l)
{
    if (!l)
        return;
    free(l->toxics);
    free(l);
}

/* ---- the faults of one connection -------------------------------------------- */

static void shaper_take(dw_sim_shaper *sh, const dw_sim_toxic *t)
{
    if ((unsigned)t->kind < DW_SIM_TOXIC_NKINDS)
        sh->taken[t->kind] = t->serial;
    switch (t->kind) {
    case DW_SIM_TOXIC_LATENCY:
        sh->latency = 1;
        sh->delay = t->delay;
        break;
    case DW_SIM_TOXIC_BANDWIDTH:
        sh->bandwidth = 1;
        sh->rate = t->rate;
        break;
    case DW_SIM_TOXIC_SLICER:
        sh->slicer = 1;
        sh->avg_size = t->avg_size;
        sh->size_variation = t->size_variation < t->avg_size ? t->size_variation : t->avg_size - 1;
        sh->pause_ms = t->pause_ms;
        break;
    case DW_SIM_TOXIC_LIMIT_DATA:
        sh->limit = 1;
        sh->limit_bytes = t->bytes;
        sh->passed = 0;
        break;
    case DW_SIM_TOXIC_SLOW_CLOSE:
        sh->slow_close = 1;
        sh->close_ms = t->ms;
        break;
    case DW_SIM_TOXIC_TIMEOUT:
        sh->timeout = 1;
        sh->timeout_ms = t->ms;
        break;
    case DW_SIM_TOXIC_RESET_PEER:
        sh->reset_peer = 1;
        sh->reset_ms = t->ms;
        break;
    case DW_SIM_TOXIC_FUZZ:
        sh->fuzz = 1;
        sh->fz = t->fuzz;
        break;
    default:
        break;
    }
}

int dw_sim_shaper_take(dw_sim_shaper *sh, const dw_sim_toxic *t, dw_sim_rng *r)
{
    if (!dw_sim_rng_chance(r, t->probability))
        return 0;
    shaper_take(sh, t);
    return 1;
}

int dw_sim_shaper_drop(dw_sim_shaper *sh, const dw_sim_toxic *t)
{
    int *flags[DW_SIM_TOXIC_NKINDS] = {&sh->latency,    &sh->bandwidth, &sh->slicer,     &sh->limit,
                                       &sh->slow_close, &sh->timeout,   &sh->reset_peer, &sh->fuzz};
    dw_sim_toxic_kind k = t->kind;
    if ((unsigned)k >= DW_SIM_TOXIC_NKINDS || !*flags[k] || sh->taken[k] != t->serial)
        return 0;
    *flags[k] = 0;
    sh->taken[k] = 0;
    return 1;
}

void dw_sim_shaper_init(dw_sim_shaper *sh, const dw_sim_netfaults *l, int dir, dw_sim_rng *r)
{
    memset(sh, 0, sizeof *sh);
    for (size_t i = 0; l && i < l->n; i++) {
        const dw_sim_toxic *t = &l->toxics[i];
        if (t->direction == dir && dw_sim_rng_chance(r, t->probability))
            shaper_take(sh, t);
    }
}

int dw_sim_shaper_active(const dw_sim_shaper *sh)
{
    return sh->latency || sh->bandwidth || sh->slicer || sh->limit || sh->timeout;
}

/* The size of the next slice: avg_size +- size_variation, at least 1. */
static size_t slice_size(const dw_sim_shaper *sh, dw_sim_rng *r)
{
    if (!sh->size_variation)
        return sh->avg_size;
    uint64_t span = 2 * (uint64_t)sh->size_variation + 1;
    return sh->avg_size - sh->size_variation + (size_t)(dw_sim_rng_next(r) % span);
}

size_t dw_sim_shaper_plan(dw_sim_shaper *sh, dw_sim_rng *r, uint64_t now_us, size_t n,
                          void (*emit)(void *user, size_t off, size_t len, uint64_t due_us),
                          void *user, int *close)
{
    *close = 0;
    if (sh->timeout)
        return 0;
    if (sh->limit) {
        uint64_t left = sh->limit_bytes > sh->passed ? sh->limit_bytes - sh->passed : 0;
        if (n >= left) {
            n = (size_t)left;
            *close = 1;
        }
        sh->passed += n;
    }
    uint64_t due = now_us;
    if (sh->latency)
        due += (uint64_t)dw_sim_delay_draw(&sh->delay, r) * 1000;
    for (size_t off = 0; off < n;) {
        size_t len = sh->slicer ? slice_size(sh, r) : n - off;
        if (sh->bandwidth && !sh->slicer && len > sh->rate / 100) /* 10 ms of the line */
            len = sh->rate / 100 ? (size_t)(sh->rate / 100) : 1;
        if (len > n - off)
            len = n - off;
        if (due < sh->last_due)
            due = sh->last_due;
        if (sh->bandwidth) {
            if (due < sh->free_at)
                due = sh->free_at;
            sh->free_at = due + (uint64_t)len * 1000000 / sh->rate;
        }
        emit(user, off, len, due);
        sh->last_due = due;
        off += len;
        if (sh->slicer && sh->pause_ms && off < n)
            due += (uint64_t)(dw_sim_rng_unit(r) * sh->pause_ms * 1000.0);
    }
    return n;
}
