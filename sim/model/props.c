/* Typed properties: see props.h. */
#include "model/props.h"

#include "model/scpi_index.h"

#include "common/memory.h"

#include <devwire/error.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int upper(int c)
{
    return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;
}

struct dw_sim_props {
    dw_sim_prop_def *defs;
    size_t n, cap;
    dw_scpi_index *index; /* the properties' headers by last word */
    size_t *ramps;        /* the properties that ramp */
    size_t nramps;
    size_t *cmds; /* the properties with a "command" */
    size_t ncmds;
};

typedef struct pval {
    double num;
    dw_buf str;
    double t; /* ramp: the time num is at; NAN before the first look */
    /* The last answer printed for a number, kept because printing a double
     * costs more than the rest of a query: valid for printed_num in the
     * profile printed_scpi (-1: none). */
    double printed_num;
    int8_t printed_scpi;
    uint8_t printed_len;
    char printed[46];
} pval;

struct dw_sim_props_state {
    const dw_sim_props *p;
    uint64_t *rng;
    pval *v;
};

/* ---- definitions ----------------------------------------------------------- */

dw_sim_props *dw_sim_props_new(void)
{
    return calloc(1, sizeof(dw_sim_props));
}

void dw_sim_props_free(dw_sim_props *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++) {
        dw_sim_prop_def *d = &p->defs[i];
        free(d->name);
        free(d->def_str);
        free(d->choices);
        free(d->format);
        free(d->command);
        free(d->ack);
        dw_scpi_pattern_free(d->scpi);
        for (size_t k = 0; k < d->nstrs; k++)
            free(d->strs[k]);
        free(d->strs);
        for (size_t k = 0; k < d->naliases; k++)
            dw_scpi_pattern_free(d->aliases[k]);
        free(d->aliases);
    }
    free(p->defs);
    dw_scpi_index_free(p->index);
    free(p->ramps);
    free(p->cmds);
    free(p);
}

dw_sim_prop_def *dw_sim_props_add(dw_sim_props *p)
{
    dw_sim_prop_def *grown = dw_sim_grow(p->defs, p->n, &p->cap, sizeof *grown, 8);
    if (!grown)
        return NULL;
    p->defs = grown;
    dw_sim_prop_def *d = &p->defs[p->n++];
    memset(d, 0, sizeof *d);
    d->ramp_to = SIZE_MAX;
    d->min = -INFINITY;
    d->max = INFINITY;
    return d;
}

size_t dw_sim_props_count(const dw_sim_props *p)
{
    return p ? p->n : 0;
}

const dw_sim_prop_def *dw_sim_props_def(const dw_sim_props *p, size_t i)
{
    return &p->defs[i];
}

size_t dw_sim_prop_find(const dw_sim_props *p, const char *name, size_t len)
{
    for (size_t i = 0; p && i < p->n; i++)
        if (strncmp(p->defs[i].name, name, len) == 0 && p->defs[i].name[len] == 0)
            return i;
    return SIZE_MAX;
}

int dw_sim_props_timed(const dw_sim_props *p)
{
    return p && p->nramps > 0;
}

int dw_sim_props_finish(dw_sim_props *p)
{
    p->index = dw_scpi_index_new();
    p->ramps = calloc(p->n ? p->n : 1, sizeof *p->ramps);
    p->cmds = calloc(p->n ? p->n : 1, sizeof *p->cmds);
    if (!p->index || !p->ramps || !p->cmds)
        return DW_ENOMEM;
    for (size_t i = 0; i < p->n; i++) {
        if (p->defs[i].scpi && dw_scpi_index_add(p->index, p->defs[i].scpi, i) != DW_OK)
            return DW_ENOMEM;
        for (size_t k = 0; k < p->defs[i].naliases; k++)
            if (dw_scpi_index_add(p->index, p->defs[i].aliases[k], i) != DW_OK)
                return DW_ENOMEM;
        if (p->defs[i].ramp_to != SIZE_MAX)
            p->ramps[p->nramps++] = i;
        if (p->defs[i].command)
            p->cmds[p->ncmds++] = i;
    }
    return DW_OK;
}

/* ---- the PRNG ------------------------------------------------------------------ */

void dw_sim_noise_seed(uint64_t *rng, uint64_t seed)
{
    *rng = seed;
}

double dw_sim_noise_uniform(uint64_t *rng)
{
    const uint64_t golden = 0x9e3779b97f4a7c15ULL;
    uint64_t z = *rng += golden;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}

static double noise(const dw_sim_prop_def *d, uint64_t *rng)
{
    if (d->noise == DW_SIM_NOISE_UNIFORM)
        return d->amplitude * (2 * dw_sim_noise_uniform(rng) - 1);
    /* Box-Muller; 1 - u is in (0, 1], so the log is finite. */
    double u1 = 1 - dw_sim_noise_uniform(rng), u2 = dw_sim_noise_uniform(rng);
    double z = sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
    z = z > 4 ? 4 : z < -4 ? -4 : z;
    return d->amplitude * z;
}

/* ---- state ------------------------------------------------------------------- */

dw_sim_props_state *dw_sim_props_state_new(const dw_sim_props *p, uint64_t *rng)
{
    dw_sim_props_state *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->p = p;
    st->rng = rng;
    st->v = calloc(p->n ? p->n : 1, sizeof *st->v);
    if (!st->v || dw_sim_props_reset(st) != DW_OK) {
        dw_sim_props_state_free(st);
        return NULL;
    }
    return st;
}

void dw_sim_props_state_free(dw_sim_props_state *st)
{
    if (!st)
        return;
    for (size_t i = 0; st->v && i < st->p->n; i++)
        dw_buf_free(&st->v[i].str);
    free(st->v);
    free(st);
}

int dw_sim_props_reset(dw_sim_props_state *st)
{
    for (size_t i = 0; i < st->p->n; i++) {
        const dw_sim_prop_def *d = &st->p->defs[i];
        pval *v = &st->v[i];
        v->num = d->def;
        v->t = NAN;
        v->printed_scpi = -1;
        dw_buf_clear(&v->str);
        if (d->def_str && dw_buf_append(&v->str, d->def_str, strlen(d->def_str)) != DW_OK)
            return DW_ENOMEM;
    }
    return DW_OK;
}

/* Move ramp i on to `now`: toward its target at its rate, within its range. */
static void ramp_move(dw_sim_props_state *st, size_t i, double now)
{
    const dw_sim_prop_def *d = &st->p->defs[i];
    pval *v = &st->v[i];
    if (isnan(v->t) || !(now > v->t)) {
        v->t = isnan(v->t) || now > v->t ? now : v->t;
        return;
    }
    double target = st->v[d->ramp_to].num, step = d->rate * (now - v->t);
    if (fabs(target - v->num) <= step)
        v->num = target;
    else
        v->num += target > v->num ? step : -step;
    v->num = v->num < d->min ? d->min : v->num > d->max ? d->max : v->num;
    v->t = now;
}

int dw_sim_prop_get(dw_sim_props_state *st, size_t i, double now, dw_sim_prop_value *out)
{
    const dw_sim_prop_def *d = &st->p->defs[i];
    if (d->ramp_to != SIZE_MAX)
        ramp_move(st, i, now);
    out->type = d->type;
    out->num = st->v[i].num;
    out->str = (const char *)st->v[i].str.data;
    out->len = st->v[i].str.len;
    if (!out->str)
        out->str = "";
    if (d->noise != DW_SIM_NOISE_NONE)
        out->num += noise(d, st->rng);
    if (d->type == DW_SIM_PROP_INT || d->type == DW_SIM_PROP_BOOL)
        out->num = nearbyint(out->num);
    return DW_OK;
}

/* v->num as property d's number: 0, -104 or -222. */
static int check_number(const dw_sim_prop_def *d, const dw_sim_prop_value *v, double *out)
{
    if (v->type != DW_SIM_PROP_FLOAT && v->type != DW_SIM_PROP_INT)
        return DW_SCPI_E_DATA_TYPE;
    double x = d->type == DW_SIM_PROP_INT ? nearbyint(v->num) : v->num;
    if (!isfinite(x) || x < d->min || x > d->max)
        return DW_SCPI_E_OUT_OF_RANGE;
    *out = x;
    return 0;
}

const char *dw_sim_prop_string_choice(const dw_sim_prop_def *d, const char *s, size_t n)
{
    for (size_t k = 0; k < d->nstrs; k++) {
        const char *c = d->strs[k];
        size_t j = 0;
        while (j < n && c[j] && upper(c[j]) == upper(s[j]))
            j++;
        if (j == n && !c[j])
            return c;
    }
    return NULL;
}

/* A string property's value: any text, or one of its choices, stored as
 * the script writes it. */
static int set_string(dw_sim_props_state *st, size_t i, const dw_sim_prop_value *v)
{
    const dw_sim_prop_def *d = &st->p->defs[i];
    const char *str = v->str;
    size_t len = v->len;
    if (v->type != DW_SIM_PROP_STRING)
        return DW_SCPI_E_DATA_TYPE;
    if (d->strs) {
        if (!(str = dw_sim_prop_string_choice(d, v->str, v->len)))
            return DW_SCPI_E_ILLEGAL_VALUE;
        len = strlen(str);
    }
    dw_buf_clear(&st->v[i].str);
    return dw_buf_append(&st->v[i].str, str, len) == DW_OK ? 0 : DW_SCPI_NOMEM;
}

int dw_sim_prop_set(dw_sim_props_state *st, size_t i, const dw_sim_prop_value *v, double now)
{
    const dw_sim_prop_def *d = &st->p->defs[i];
    double x = 0;
    int rc = 0;
    switch (d->type) {
    case DW_SIM_PROP_FLOAT:
    case DW_SIM_PROP_INT:
        rc = check_number(d, v, &x);
        break;
    case DW_SIM_PROP_BOOL:
        if (v->type == DW_SIM_PROP_STRING || v->type == DW_SIM_PROP_ENUM)
            rc = DW_SCPI_E_DATA_TYPE;
        x = nearbyint(v->num) != 0;
        break;
    case DW_SIM_PROP_ENUM:
        if (v->type != DW_SIM_PROP_ENUM)
            rc = DW_SCPI_E_DATA_TYPE;
        else if (!(v->num >= 0 && v->num < (double)d->nchoices) || v->num != floor(v->num))
            rc = DW_SCPI_E_ILLEGAL_VALUE;
        x = v->num;
        break;
    case DW_SIM_PROP_STRING:
        return set_string(st, i, v);
    }
    if (rc)
        return rc;
    /* The ramps that follow this one move under the old target up to now. */
    for (size_t k = 0; k < st->p->nramps; k++)
        if (st->p->defs[st->p->ramps[k]].ramp_to == i)
            ramp_move(st, st->p->ramps[k], now);
    st->v[i].num = x;
    if (d->ramp_to != SIZE_MAX)
        st->v[i].t = now;
    return 0;
}

/* ---- text ---------------------------------------------------------------------- */

/* The index of the choice that w[0..n) names (long or short form, any
 * case), or -224. */
static int choice_index(const char *choices, const uint8_t *w, size_t n)
{
    for (int i = 0; *choices; i++) {
        size_t len = strcspn(choices, "|"), s = 0;
        while (s < len && !(choices[s] >= 'a' && choices[s] <= 'z'))
            s++;
        if (n == s || n == len) {
            size_t k = 0;
            while (k < n && upper(w[k]) == upper(choices[k]))
                k++;
            if (k == n)
                return i;
        }
        choices += len + (choices[len] == '|');
    }
    return DW_SCPI_E_ILLEGAL_VALUE;
}

static int text_is(const uint8_t *t, size_t n, const char *word)
{
    size_t k = 0;
    while (k < n && word[k] && upper(t[k]) == upper(word[k]))
        k++;
    return k == n && !word[k];
}

/* A number written in t[0..n): 0 or -104. */
static int text_number(const uint8_t *t, size_t n, double *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return DW_SCPI_E_DATA_TYPE;
    memcpy(buf, t, n);
    buf[n] = 0;
    char *end;
    *out = strtod(buf, &end);
    return *end == 0 && end != buf ? 0 : DW_SCPI_E_DATA_TYPE;
}

int dw_sim_prop_set_text(dw_sim_props_state *st, size_t i, const uint8_t *t, size_t n, double now)
{
    const dw_sim_prop_def *d = &st->p->defs[i];
    dw_sim_prop_value v = {d->type, 0, (const char *)t, n};
    int rc = 0;
    if (d->type == DW_SIM_PROP_FLOAT || d->type == DW_SIM_PROP_INT) {
        v.type = DW_SIM_PROP_FLOAT;
        rc = text_number(t, n, &v.num);
    } else if (d->type == DW_SIM_PROP_BOOL) {
        if (text_is(t, n, "ON") || text_is(t, n, "TRUE"))
            v.num = 1;
        else if (!text_is(t, n, "OFF") && !text_is(t, n, "FALSE") && text_number(t, n, &v.num))
            rc = DW_SCPI_E_ILLEGAL_VALUE;
    } else if (d->type == DW_SIM_PROP_ENUM) {
        int k = choice_index(d->choices, t, n);
        rc = k < 0 ? k : 0;
        v.num = k;
    }
    return rc ? rc : dw_sim_prop_set(st, i, &v, now);
}

int dw_sim_prop_choice(const dw_sim_prop_def *d, const char *name, size_t len)
{
    return choice_index(d->choices, (const uint8_t *)name, len);
}

int dw_sim_prop_save(const dw_sim_props_state *st, size_t i, dw_sim_prop_saved *out)
{
    const pval *v = &st->v[i];
    out->num = v->num;
    out->t = v->t;
    dw_buf_init(&out->str);
    return v->str.len ? dw_buf_append(&out->str, v->str.data, v->str.len) : DW_OK;
}

void dw_sim_prop_restore(dw_sim_props_state *st, size_t i, dw_sim_prop_saved *saved)
{
    pval *v = &st->v[i];
    v->num = saved->num;
    v->t = saved->t;
    v->printed_scpi = -1;
    dw_buf_free(&v->str);
    v->str = saved->str;
    dw_buf_init(&saved->str);
}

/* NR3 with the fewest digits that read back exactly: 1.0E+06. */
static int print_nr3(double x, dw_buf *out)
{
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*E", prec, x);
        if (strtod(buf, NULL) == x)
            break;
    }
    return dw_buf_append(out, buf, strlen(buf));
}

size_t dw_sim_prop_choice_name(const dw_sim_prop_def *d, size_t k, const char **name)
{
    const char *c = d->choices;
    for (; k > 0; k--)
        c += strcspn(c, "|") + 1;
    size_t n = 0;
    while (c[n] && c[n] != '|' && !(c[n] >= 'a' && c[n] <= 'z'))
        n++;
    *name = c;
    return n;
}

static int print_choice(const dw_sim_prop_def *d, size_t k, dw_buf *out)
{
    const char *name;
    size_t n = dw_sim_prop_choice_name(d, k, &name);
    return dw_buf_append(out, name, n);
}

static int print_string(const dw_sim_prop_value *v, int scpi, dw_buf *out)
{
    if (!scpi)
        return dw_buf_append(out, v->str, v->len);
    int rc = dw_buf_append_byte(out, '"');
    for (size_t k = 0; k < v->len && rc == DW_OK; k++) {
        if (v->str[k] == '"')
            rc = dw_buf_append_byte(out, '"');
        if (rc == DW_OK)
            rc = dw_buf_append_byte(out, (uint8_t)v->str[k]);
    }
    return rc == DW_OK ? dw_buf_append_byte(out, '"') : rc;
}

/* Value v of property d as a query answers it. The script's format is a
 * variable format, checked at load (one conversion that fits the type). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static int print_value(const dw_sim_prop_def *d, const dw_sim_prop_value *v, int scpi, dw_buf *out)
{
    char buf[128];
    int n = 0;
    switch (d->type) {
    case DW_SIM_PROP_FLOAT:
        if (!d->format)
            return scpi ? print_nr3(v->num, out) : dw_scpi_number_print(v->num, out);
        n = snprintf(buf, sizeof buf, d->format, v->num);
        break;
    case DW_SIM_PROP_INT:
        n = snprintf(buf, sizeof buf, d->format ? d->format : "%lld", (long long)v->num);
        break;
    case DW_SIM_PROP_BOOL:
        return dw_buf_append_byte(out, v->num != 0 ? '1' : '0');
    case DW_SIM_PROP_ENUM:
        return print_choice(d, (size_t)v->num, out);
    case DW_SIM_PROP_STRING:
        return print_string(v, scpi, out);
    }
    if (n < 0)
        n = 0;
    return dw_buf_append(out, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}
#pragma GCC diagnostic pop

int dw_sim_prop_print(dw_sim_props_state *st, size_t i, double now, int scpi, dw_buf *out)
{
    const dw_sim_prop_def *d = &st->p->defs[i];
    pval *pv = &st->v[i];
    dw_sim_prop_value v;
    dw_sim_prop_get(st, i, now, &v);
    if (d->type != DW_SIM_PROP_FLOAT && d->type != DW_SIM_PROP_INT)
        return print_value(d, &v, scpi, out);
    if (pv->printed_scpi == scpi && memcmp(&pv->printed_num, &v.num, sizeof v.num) == 0)
        return dw_buf_append(out, pv->printed, pv->printed_len);
    size_t start = out->len;
    int rc = print_value(d, &v, scpi, out);
    if (rc == DW_OK && out->len - start <= sizeof pv->printed) {
        pv->printed_len = (uint8_t)(out->len - start);
        memcpy(pv->printed, out->data + start, pv->printed_len);
        pv->printed_num = v.num;
        pv->printed_scpi = (int8_t)scpi;
    }
    return rc;
}

/* ---- SCPI ---------------------------------------------------------------------- */

/* MIN, MAX or DEF of a numeric property: 1 and *x, or 0 (other text). */
static int scpi_bound(const dw_sim_prop_def *d, const dw_scpi_unit *u, const dw_scpi_param *q,
                      double *x)
{
    if (q->kind != DW_SCPI_CHARS)
        return 0;
    int k = dw_scpi_param_choice(u, q, "MINimum|MAXimum|DEFault");
    if (k < 0)
        return 0;
    *x = k == 0 ? d->min : k == 1 ? d->max : d->def;
    return 1;
}

/* The value the set form's parameter q gives property d: 0 and *v, or a
 * SCPI error code. */
static int scpi_param_value(const dw_sim_prop_def *d, const dw_scpi_unit *u, const dw_scpi_param *q,
                            int bare, dw_sim_prop_value *v)
{
    v->type = d->type;
    switch (d->type) {
    case DW_SIM_PROP_FLOAT:
    case DW_SIM_PROP_INT:
        v->type = DW_SIM_PROP_FLOAT;
        if (scpi_bound(d, u, q, &v->num))
            return isfinite(v->num) ? 0 : DW_SCPI_E_ILLEGAL_VALUE;
        if (dw_scpi_param_special(u, q, &v->num))
            return 0; /* its range decides */
        if (q->kind != DW_SCPI_NUMERIC)
            return DW_SCPI_E_DATA_TYPE;
        if (q->unit[0] && strcmp(q->unit, d->unit) != 0)
            return DW_SCPI_E_INVALID_SUFFIX;
        v->num = q->value;
        return 0;
    case DW_SIM_PROP_BOOL:
    case DW_SIM_PROP_ENUM: {
        int k = d->type == DW_SIM_PROP_BOOL ? dw_scpi_param_bool(u, q)
                                            : dw_scpi_param_choice(u, q, d->choices);
        v->num = k;
        return k < 0 ? k : 0;
    }
    case DW_SIM_PROP_STRING: {
        const uint8_t *t = NULL;
        int r = dw_scpi_param_string(u, q, bare, &t, &v->len);
        v->str = (const char *)t;
        return r < 0 ? r : 0;
    }
    }
    return DW_SCPI_E_DATA_TYPE;
}

static int scpi_query(dw_sim_props_state *st, size_t i, const dw_scpi_unit *u, double now,
                      dw_buf *resp)
{
    const dw_sim_prop_def *d = &st->p->defs[i];
    if (u->nparams == 0)
        return dw_sim_prop_print(st, i, now, 1, resp) == DW_OK ? 1 : DW_SCPI_NOMEM;
    int numeric = d->type == DW_SIM_PROP_FLOAT || d->type == DW_SIM_PROP_INT;
    dw_sim_prop_value v = {d->type, 0, NULL, 0};
    if (u->nparams > 1 || !numeric)
        return DW_SCPI_E_PARAM_NOT_ALLOWED;
    if (!scpi_bound(d, u, &u->params[0], &v.num))
        return DW_SCPI_E_ILLEGAL_VALUE;
    if (!isfinite(v.num))
        return DW_SCPI_E_ILLEGAL_VALUE; /* no such bound */
    return print_value(d, &v, 1, resp) == DW_OK ? 1 : DW_SCPI_NOMEM;
}

/* Property i's set or query form for unit u, once its header fitted: 1
 * (done), 0 (no such form: a read-only property's set form, a write-only
 * one's query), a SCPI error code (refused, the value unchanged) or
 * DW_SCPI_NOMEM. */
static int scpi_apply(dw_sim_props_state *st, size_t i, const dw_scpi_unit *u, double now,
                      unsigned flags, dw_buf *resp)
{
    const dw_sim_prop_def *d = &st->p->defs[i];
    if (u->query)
        return d->access == DW_SIM_PROP_WO ? 0 : scpi_query(st, i, u, now, resp);
    if (d->access == DW_SIM_PROP_RO)
        return 0;
    if (u->nparams != 1)
        return u->nparams ? DW_SCPI_E_PARAM_NOT_ALLOWED : DW_SCPI_E_MISSING_PARAM;
    dw_sim_prop_value v;
    int rc = scpi_param_value(d, u, &u->params[0], (flags & DW_SIM_PROPS_BARE_STRINGS) != 0, &v);
    if (rc == 0)
        rc = dw_sim_prop_set(st, i, &v, now);
    return rc ? rc : 1;
}

int dw_sim_props_scpi(dw_sim_props_state *st, const dw_scpi_unit *u, double now, unsigned flags,
                      dw_buf *resp, size_t *which)
{
    const dw_sim_props *p = st->p;
    size_t n;
    if (u->common || !p->n)
        return 0;
    const size_t *ids = dw_scpi_index_find(p->index, u, &n);
    int why = 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = ids[k];
        int r = dw_scpi_pattern_match_header(p->defs[i].scpi, u);
        for (size_t a = 0; r != 1 && a < p->defs[i].naliases; a++) {
            int ra = dw_scpi_pattern_match_header(p->defs[i].aliases[a], u);
            r = ra == 1 || r == 0 ? ra : r;
        }
        if (r == 1)
            r = scpi_apply(st, i, u, now, flags, resp);
        if (r == 1 && which)
            *which = i;
        if (r == 1 || r == DW_SCPI_NOMEM)
            return r;
        why = dw_scpi_refusal_pick(why, r);
    }
    return why;
}

/* ---- other profiles -------------------------------------------------------------- */

static int is_blank(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int dw_sim_props_command(dw_sim_props_state *st, const uint8_t *req, size_t n, double now,
                         dw_buf *resp)
{
    const dw_sim_props *p = st->p;
    for (size_t k = 0; k < p->ncmds; k++) {
        size_t i = p->cmds[k];
        const dw_sim_prop_def *d = &p->defs[i];
        size_t c = strlen(d->command);
        if (n <= c || memcmp(req, d->command, c) != 0)
            continue;
        if (n == c + 1 && req[c] == '?' && d->access != DW_SIM_PROP_WO)
            return dw_sim_prop_print(st, i, now, 0, resp) == DW_OK ? 1 : DW_SCPI_NOMEM;
        if (req[c] != ' ' || d->access == DW_SIM_PROP_RO)
            continue;
        size_t a = c + 1, b = n;
        while (a < b && is_blank(req[a]))
            a++;
        while (b > a && is_blank(req[b - 1]))
            b--;
        int rc = dw_sim_prop_set_text(st, i, req + a, b - a, now);
        if (rc)
            return rc;
        if (d->ack && dw_buf_append(resp, d->ack, strlen(d->ack)) != DW_OK)
            return DW_SCPI_NOMEM;
        return 2;
    }
    return 0;
}
