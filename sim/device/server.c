/* devwire-sim's server on the event loop: see server.h.
 *
 * The device's life: its script generations, opening and closing, reloads,
 * the periodic messages' schedule, the totals and the summary. Everything
 * here runs on the loop thread; the public calls that come from other
 * threads (reload, stop, totals, summary) are handed to it with
 * dw_sim_loop_call. The transport (server_tcp.c, server_udp.c,
 * server_serial.c, server_vxi11.c) is reached through its table (server_int.h), the
 * control API's side of the device through its hooks (devctl.h). */
#include "device/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "engine/engine.h"
#include "common/loop.h"
#include "device/devctl.h"
#include "device/server_int.h"
#include "device/server_serial.h"
#include "device/server_tcp.h"
#include "device/server_udp.h"
#include "device/server_vxi11.h"

/* The periodic timers of the generation serving now, in one block. */
typedef struct sim_ticks {
    dw_sim_server *srv;
    size_t n, open;
    struct sim_tick {
        uv_timer_t timer;
        struct sim_ticks *all;
        size_t index;
    } t[];
} sim_ticks;

/* ---- generations ----------------------------------------------------------- */

/* A generation for `script`, its framings capped by --max-frame. */
static int gen_new(const dw_sim_server *s, dw_sim_script *script, sim_gen **out, dw_error *err)
{
    int rc = dw_sim_script_cap_frames(script, s->max_frame, err);
    if (rc != DW_OK)
        return rc;
    sim_gen *g = calloc(1, sizeof *g);
    if (!g)
        return dw_error_set(err, DW_ENOMEM, "out of memory");
    rc = dw_sim_engine_new(script, &g->engine, err);
    if (rc != DW_OK) {
        free(g);
        return rc;
    }
    dw_sim_engine_set_rng(g->engine, (dw_sim_rng *)&s->rng);
    dw_sim_engine_seed(g->engine, s->engine_seed);
    if (s->lua_deadline_ms)
        dw_sim_engine_lua_deadline(g->engine, (uint64_t)s->lua_deadline_ms * 1000000u);
    g->script = script;
    g->refs = 1;
    *out = g;
    return DW_OK;
}

static void on_tick(uv_timer_t *t)
{
    struct sim_tick *k = t->data;
    dw_sim_server *s = k->all->srv;
    s->transport->periodic(s, k->index);
}

static void on_tick_closed(uv_handle_t *h)
{
    struct sim_tick *k = h->data;
    sim_ticks *all = k->all;
    if (--all->open == 0)
        free(all);
}

static void ticks_stop(dw_sim_server *s)
{
    sim_ticks *all = s->ticks;
    s->ticks = NULL;
    if (!all)
        return;
    for (size_t i = 0; i < all->n; i++)
        uv_close((uv_handle_t *)&all->t[i].timer, on_tick_closed);
    if (all->n == 0)
        free(all);
}

/* (Re)start the schedule of the generation serving now. */
static void ticks_start(dw_sim_server *s)
{
    ticks_stop(s);
    const dw_sim_script *script = s->gen->script;
    size_t n = script->nperiodic;
    sim_ticks *all = calloc(1, sizeof *all + n * sizeof all->t[0]);
    if (!all) {
        dw__sim_log(s, DW_LOG_ERROR, "periodic messages: out of memory");
        return;
    }
    all->srv = s;
    all->n = all->open = n;
    for (size_t i = 0; i < n; i++) {
        struct sim_tick *k = &all->t[i];
        k->all = all;
        k->index = i;
        uv_timer_init(dw_sim_loop_uv(s->loop), &k->timer);
        k->timer.data = k;
        uint64_t every = script->periodic[i].every_ms ? script->periodic[i].every_ms : 1000;
        uv_timer_start(&k->timer, on_tick, every, every);
    }
    s->ticks = all;
}

/* ---- the server ------------------------------------------------------------ */

void dw_sim_server_options_init(dw_sim_server_options *o)
{
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->max_connections = 1024;
    o->idle_timeout_ms = -1;
    o->write_timeout_ms = 10000;
    o->max_buffered = DW_SIM_MAX_BUFFERED;
    o->seed = DW_SIM_DEFAULT_SEED;
    o->portmapper = 111;
}

typedef struct open_args {
    dw_sim_server *s;
    const dw_sim_server_options *o;
    dw_error *err;
    int rc;
} open_args;

/* On the loop: the script's transport opens (binds, listens, opens the
 * line). */
static void server_open(void *arg)
{
    open_args *a = arg;
    dw_sim_server *s = a->s;
    switch (s->gen->script->transport) {
    case DW_SIM_UDP:
        s->transport = &dw__sim_udp_transport;
        break;
    case DW_SIM_SERIAL:
        s->transport = &dw__sim_serial_transport;
        break;
    case DW_SIM_VXI11:
        s->transport = &dw__sim_vxi11_transport;
        break;
    default:
        s->transport = &dw__sim_tcp_transport;
        break;
    }
    a->rc = s->transport->open(s, a->o, a->err);
}

static void server_ticks_start(void *arg)
{
    ticks_start(arg);
}

int dw_sim_server_new(const dw_sim_server_options *o, dw_sim_script *script, dw_sim_server **out,
                      dw_error *err)
{
    *out = NULL;
    dw_sim_server *s = calloc(1, sizeof *s);
    if (!s)
        return dw_error_set(err, DW_ENOMEM, "out of memory");
    s->logger = o->logger;
    s->transcript = o->transcript;
    uint64_t stream = 0;
    for (const char *k = o->name; k && *k; k++) /* each device its own draws */
        stream = stream * 131 + (unsigned char)*k;
    dw_sim_rng_seed(&s->rng, o->seed, stream);
    s->lua_deadline_ms = o->lua_deadline_ms;
    s->delayed_ack = o->delayed_ack;
    s->engine_seed = o->seed + stream * 0x9e3779b97f4a7c15u; /* the seed itself without a name */
    if (o->name && !(s->name = strdup(o->name))) {
        free(s);
        return dw_error_set(err, DW_ENOMEM, "out of memory");
    }
    s->max_connections = o->max_connections ? o->max_connections : 1024;
    s->idle_timeout_ms = o->idle_timeout_ms < 0 ? -1 : o->idle_timeout_ms;
    s->write_timeout_ms = o->write_timeout_ms < 0 ? -1 : o->write_timeout_ms;
    s->max_frame = o->max_frame;
    s->max_buffered = o->max_buffered;
    s->loop = o->loop;
    int rc = DW_OK;
    if (!s->loop) {
        s->own_loop = 1;
        rc = dw_sim_loop_new(&s->loop, err);
    }
    if (rc == DW_OK)
        rc = gen_new(s, script, &s->gen, err);
    open_args a = {s, o, err, DW_OK};
    if (rc == DW_OK) {
        dw_sim_loop_call(s->loop, server_open, &a);
        rc = a.rc;
    }
    if (rc != DW_OK) {
        if (s->gen)
            s->gen->script = NULL; /* the caller keeps it */
        dw_sim_server_free(s);
        return rc;
    }
    dw_sim_loop_call(s->loop, server_ticks_start, s);
    *out = s;
    return DW_OK;
}

int dw_sim_server_start(dw_sim_server *s, dw_error *err)
{
    if (s->started)
        return dw_error_set(err, DW_EINVAL, "serve %s: already serving", s->addr);
    s->started = 1;
    return s->own_loop ? dw_sim_loop_start(s->loop, err) : DW_OK;
}

const char *dw_sim_server_address(const dw_sim_server *s)
{
    return s->addr;
}

const char *dw_sim_server_resource(const dw_sim_server *s)
{
    return s->resource[0] ? s->resource : NULL;
}

uint16_t dw_sim_server_port(const dw_sim_server *s)
{
    return s->port;
}

typedef struct reload_args {
    dw_sim_server *s;
    sim_gen *g;
} reload_args;

static void server_reload(void *arg)
{
    reload_args *a = arg;
    dw_sim_server *s = a->s;
    sim_gen *old = s->gen;
    s->gen = a->g;
    ticks_start(s);
    dw__sim_gen_release(s, old);
}

int dw_sim_server_reload(dw_sim_server *s, dw_sim_script *script, dw_error *err)
{
    reload_args a = {s, NULL};
    int rc = gen_new(s, script, &a.g, err);
    if (rc != DW_OK)
        return rc;
    dw_sim_loop_call(s->loop, server_reload, &a);
    return DW_OK;
}

/* On the loop: stop accepting, close every connection and timer. */
static void server_close(void *arg)
{
    dw_sim_server *s = arg;
    ticks_stop(s);
    if (s->transport)
        s->transport->close(s);
}

void dw_sim_server_stop(dw_sim_server *s)
{
    if (!s || s->stopped)
        return;
    s->stopped = 1;
    dw_sim_loop_call(s->loop, server_close, s);
    if (s->own_loop)
        dw_sim_loop_stop(s->loop); /* waits for every close callback */
}

void dw_sim_server_free(dw_sim_server *s)
{
    if (!s)
        return;
    dw_sim_server_stop(s);
    if (s->own_loop)
        dw_sim_loop_free(s->loop);
    dw__sim_gen_release(s, s->gen);
    dw_buf_free(&s->scratch);
    dw_buf_free(&s->msg);
    free(s->name);
    free(s);
}

typedef struct totals_args {
    dw_sim_server *s;
    dw_sim_totals *t;
} totals_args;

static void server_totals(void *arg)
{
    totals_args *a = arg;
    const dw_sim_engine *e = a->s->gen->engine;
    a->t->connections = a->s->accepted;
    a->t->requests = a->s->retired_requests + dw_sim_engine_requests(e);
    a->t->unmatched = a->s->retired_unmatched + dw_sim_engine_unmatched(e);
    a->t->regex_limit_hits = a->s->retired_limit_hits + dw_sim_engine_regex_limit_hits(e);
    a->t->lua_errors = a->s->retired_lua_errors + dw_sim_engine_lua_errors(e);
    a->t->steps_not_reached = dw_sim_engine_steps_not_reached(e);
}

void dw_sim_server_totals(dw_sim_server *s, dw_sim_totals *t)
{
    totals_args a = {s, t};
    dw_sim_loop_call(s->loop, server_totals, &a);
}

/* Bytes for a human: printable text in quotes, otherwise hex. */
static void print_bytes(FILE *f, const uint8_t *p, size_t n)
{
    int text = 1;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] >= 0x7f)
            text = 0;
    if (text) {
        fprintf(f, "\"%.*s\"", (int)n, (const char *)p);
    } else {
        fputs("hex ", f);
        for (size_t i = 0; i < n; i++)
            fprintf(f, "%02x", p[i]);
    }
}

typedef struct summary_args {
    dw_sim_server *s;
    FILE *f;
} summary_args;

static void print_hits(FILE *f, const dw_sim_script *script, dw_sim_engine *e)
{
    for (size_t i = 0; i < script->nsteps; i++)
        if (dw_sim_engine_step_hits(e, i))
            fprintf(f, "  %s: %llu\n", script->steps[i].name ? script->steps[i].name : "step",
                    (unsigned long long)dw_sim_engine_step_hits(e, i));
    size_t silent = 0;
    for (size_t i = 0; i < script->nrules; i++) {
        uint64_t n = dw_sim_engine_rule_hits(e, i);
        if (n)
            fprintf(f, "  %s: %llu\n", script->rules[i].name ? script->rules[i].name : "rule",
                    (unsigned long long)n);
        else
            silent++;
    }
    if (silent)
        fprintf(f, "  rules never matched: %zu of %zu\n", silent, script->nrules);
}

/* Per step and rule, the non-zero counts of `count`. */
static void print_per_entry(FILE *f, const dw_sim_script *script, const dw_sim_engine *e,
                            uint64_t (*step)(const dw_sim_engine *, size_t),
                            uint64_t (*rule)(const dw_sim_engine *, size_t))
{
    for (size_t i = 0; i < script->nsteps; i++)
        if (step(e, i))
            fprintf(f, "    %s: %llu\n", script->steps[i].name ? script->steps[i].name : "step",
                    (unsigned long long)step(e, i));
    for (size_t i = 0; i < script->nrules; i++)
        if (rule(e, i))
            fprintf(f, "    %s: %llu\n", script->rules[i].name ? script->rules[i].name : "rule",
                    (unsigned long long)rule(e, i));
}

static void print_limit_hits(FILE *f, const dw_sim_totals *t, const dw_sim_script *script,
                             dw_sim_engine *e)
{
    if (t->regex_limit_hits)
        fprintf(f, "  regex match limit hits: %llu (each counted as no match)\n",
                (unsigned long long)t->regex_limit_hits);
    print_per_entry(f, script, e, dw_sim_engine_step_limit_hits, dw_sim_engine_rule_limit_hits);
    if (t->lua_errors)
        fprintf(f, "  lua errors: %llu (each request handled as unmatched)\n",
                (unsigned long long)t->lua_errors);
    print_per_entry(f, script, e, dw_sim_engine_step_lua_errors, dw_sim_engine_rule_lua_errors);
}

static void server_summary(void *arg)
{
    summary_args *a = arg;
    FILE *f = a->f;
    dw_sim_totals t;
    totals_args ta = {a->s, &t};
    server_totals(&ta);
    const dw_sim_script *script = a->s->gen->script;
    dw_sim_engine *e = a->s->gen->engine;
    fprintf(f, "summary: %s%s%s (%s)\n", a->s->name ? a->s->name : "", a->s->name ? ": " : "",
            script->name ? script->name : "script", script->path ? script->path : "-");
    fprintf(f, "  connections: %llu\n", (unsigned long long)t.connections);
    fprintf(f, "  requests: %llu\n", (unsigned long long)t.requests);
    print_hits(f, script, e);
    fprintf(f, "  unmatched requests: %llu\n", (unsigned long long)t.unmatched);
    dw_buf b = DW_BUF_INIT;
    for (size_t k = 0; dw_sim_engine_unmatched_sample(e, k, &b) == DW_OK; k++) {
        fputs("    ", f);
        print_bytes(f, b.data, b.len);
        fputc('\n', f);
    }
    dw_buf_free(&b);
    print_limit_hits(f, &t, script, e);
    fprintf(f, "  steps not reached: %zu of %zu\n", t.steps_not_reached, script->nsteps);
    for (size_t i = 0; i < script->nsteps; i++)
        if (!dw_sim_engine_step_hits(e, i))
            fprintf(f, "    %s: expects %s\n",
                    script->steps[i].name ? script->steps[i].name : "step",
                    script->steps[i].expect.source ? script->steps[i].expect.source : "?");
    if (a->s->ctl)
        dw__sim_ctl_summary(a->s, f);
    fflush(f);
}

void dw_sim_server_summary(dw_sim_server *s, FILE *f)
{
    summary_args a = {s, f};
    dw_sim_loop_call(s->loop, server_summary, &a);
}
