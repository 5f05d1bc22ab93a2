/* devwire-sim's engine: see engine.h. */
#include "engine/engine.h"
#include "common/memory.h"

#include "engine/lua.h"
#include "model/props.h"
#include "model/scpi_status.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NCAP 10 /* $0..$9 */

/* An internal result: a chunk of Lua failed (out->lua says which and why);
 * the request is handled as unmatched. */
#define LUA_FAILED 1

/* Mutable state: the variables, the step cursor and each action's reply
 * turn. One lives in the engine (shared scope) or in each session. */
typedef struct sim_state {
    dw_buf *vars;              /* script->nvars */
    size_t *turns;             /* one per action: steps, then rules, then unmatched */
    size_t step;               /* the next expected step */
    dw_scpi_status *scpi;      /* the SCPI profile's error queue and registers */
    dw_sim_props_state *props; /* the properties' values, or NULL */
    double now;                /* the time of the request being handled */
} sim_state;

struct dw_sim_engine {
    const dw_sim_script *script;
    dw_sim_rng *rng; /* a rule's "probability" and "delay"; NULL: faults always, delay_ms */
    dw_marshaller *req_m;
    dw_marshaller *resp_m;
    /* Exact-match rules: open addressing, power-of-two size; each slot holds
     * the lowest rule index with those bytes (SIZE_MAX: empty) and what a
     * lookup compares, so that a probe touches one slot, not the rule. */
    struct slot {
        uint64_t hash;
        size_t rule;
        size_t len;
        const uint8_t *key;
    } * slots;
    size_t mask;
    /* Non-exact rules in script order. */
    size_t *inexact;
    size_t ninexact;
    int has_regex; /* some step or rule matches with a regex */
    int has_jit;   /* and one of them is JIT-compiled */
    /* Per rule: its answer built once at load when it can never change (one
     * literal reply, no set, no fault), so that a hit costs a lookup and a
     * copy from one place, not a walk over the rule's templates. */
    struct prebuilt {
        uint8_t *data; /* framed frames then the prompt; NULL: not prebuilt */
        size_t len;
        size_t nframes;
        const char *name;
        unsigned delay_ms;
        const size_t *split;
        size_t nsplit;
        unsigned split_delay_ms;
    } * pre;
    _Atomic uint64_t noise;     /* the properties' noise (model/props.h takes it atomic) */
    double (*clock)(void *arg); /* `now` of a request: ramps, Lua */
    void *clock_arg;
    struct timespec start;
    sim_state shared;           /* used when scope is shared */
    dw_scpi_builtins *builtins; /* the SCPI profile's own commands */
    uint64_t *rule_hits;
    uint64_t *step_hits;
    /* Regex matches cut short by a limit, per rule and per step; the first
     * of each is flagged in the outcome so that the server logs it once. */
    uint64_t *rule_limits;
    uint64_t *step_limits;
    uint64_t limit_hits;
    /* Lua: NULL when the script has none (and none of what follows is made). */
    dw_sim_lua *lua;
    int has_cond;              /* some rule has an "if" */
    size_t *same_next;         /* has_cond: per exact rule, the next rule with the
                                * same bytes (SIZE_MAX: none) */
    uint64_t *rule_lua_errors; /* chunks that failed, per rule and step */
    uint64_t *step_lua_errors;
    uint64_t lua_errors;
    uint64_t requests;
    uint64_t unmatched;
    dw_buf samples[DW_SIM_UNMATCHED_KEEP];
    size_t nsamples;
};

struct dw_sim_session {
    dw_sim_engine *e;
    sim_state own; /* used when scope is per connection */
    sim_state *st;
    int hung;
    dw_buf scratch;   /* a rendered payload before framing, reused */
    dw_buf scpi_resp; /* SCPI: the message's responses joined with ';' */
    dw_buf scpi_caps; /* SCPI: a unit as written, then its parameters' values */
    /* Regex matching: the session's own match data and match context (the
     * limits), so that concurrent sessions share nothing but the immutable
     * compiled patterns; JIT matches run on their thread's JIT stack
     * (thread_jit_stack). NULL when the script has no regex. */
    pcre2_match_data *md;
    pcre2_match_context *mc;
    /* Lua: the old values of the variables and properties this request
     * set, to undo its changes if a chunk fails; the last failure's message. */
    struct undo {
        size_t var;              /* the variable or property */
        int prop;                /* 1: a property, its value in saved */
        dw_buf old;              /* a variable's value */
        dw_sim_prop_saved saved; /* a property's */
    } * undo;
    size_t nundo, undo_cap;
    char lua_msg[256];
};

/* One JIT stack per thread, made at its first JIT match and freed when the
 * thread ends: a thread runs one match at a time, so the sessions it serves
 * (every connection of an event loop) share one stack instead of keeping
 * one each (a few KiB resident per idle connection). */
static pthread_key_t jit_key;
static pthread_once_t jit_once = PTHREAD_ONCE_INIT;
static int jit_key_ok;

static void jit_stack_free(void *js)
{
    pcre2_jit_stack_free(js);
}

static void jit_key_create(void)
{
    jit_key_ok = pthread_key_create(&jit_key, jit_stack_free) == 0;
}

/* pcre2's JIT stack callback: this thread's stack, or NULL (out of memory:
 * pcre2 then falls back to 32 KiB of the machine stack). */
static pcre2_jit_stack *thread_jit_stack(void *unused)
{
    (void)unused;
    pthread_once(&jit_once, jit_key_create);
    if (!jit_key_ok)
        return NULL;
    pcre2_jit_stack *js = pthread_getspecific(jit_key);
    if (!js) {
        js = pcre2_jit_stack_create(32 * 1024, DW_SIM_REGEX_JIT_STACK_KIB * 1024, NULL);
        if (js && pthread_setspecific(jit_key, js) != 0) {
            pcre2_jit_stack_free(js);
            js = NULL;
        }
    }
    return js;
}

static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    /* FNV's low bits (the ones the table mask keeps) mix poorly: finish
     * with a full avalanche (murmur3's fmix64). */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* Steps, rules, unmatched, on_error. */
static size_t nactions(const dw_sim_script *s)
{
    return s->nsteps + s->nrules + 2;
}

static int state_init(sim_state *st, const dw_sim_script *s, _Atomic uint64_t *rng)
{
    memset(st, 0, sizeof *st);
    st->vars = calloc(s->nvars ? s->nvars : 1, sizeof *st->vars);
    st->turns = calloc(nactions(s), sizeof *st->turns);
    if (!st->vars || !st->turns)
        return DW_ENOMEM;
    for (size_t i = 0; i < s->nvars; i++)
        if (dw_buf_append(&st->vars[i], s->vars[i].initial.data, s->vars[i].initial.len) != DW_OK)
            return DW_ENOMEM;
    if (s->profile == DW_SIM_PROFILE_SCPI && !(st->scpi = dw_scpi_status_new(s->error_queue)))
        return DW_ENOMEM;
    if (s->props && !(st->props = dw_sim_props_state_new(s->props, rng)))
        return DW_ENOMEM;
    return DW_OK;
}

static void state_destroy(sim_state *st, const dw_sim_script *s)
{
    if (st->vars)
        for (size_t i = 0; i < s->nvars; i++)
            dw_buf_free(&st->vars[i]);
    free(st->vars);
    free(st->turns);
    dw_scpi_status_free(st->scpi);
    dw_sim_props_state_free(st->props);
}

typedef struct captures captures;
static int render(const dw_sim_template *t, const sim_state *st, const uint8_t *req,
                  const captures *c, dw_buf *out);

/* Build rule `r`'s answer now if it is fixed; leave p->data NULL if not (or
 * if it cannot be framed: handling reports that at run time). */
static void prebuild(const dw_sim_engine *e, const dw_sim_rule *r, struct prebuilt *p)
{
    const dw_sim_action *a = &r->action;
    if (a->fault != DW_SIM_FAULT_NONE || a->nsets || a->lua || a->nreplies != 1 ||
        a->after_last != DW_SIM_REPEAT_LAST || a->net)
        return;
    for (size_t f = 0; f < a->nframes[0]; f++)
        for (size_t g = 0; g < a->replies[0][f].nsegs; g++)
            if (a->replies[0][f].segs[g].kind != DW_SIM_SEG_LITERAL)
                return;
    dw_buf out = DW_BUF_INIT, payload = DW_BUF_INIT;
    int rc = DW_OK;
    for (size_t f = 0; f < a->nframes[0] && rc == DW_OK; f++) {
        dw_buf_clear(&payload);
        rc = render(&a->replies[0][f], NULL, NULL, NULL, &payload);
        if (rc == DW_OK)
            rc = dw_marshall(e->resp_m, payload.data, payload.len, &out, NULL);
    }
    if (rc == DW_OK)
        rc = dw_buf_append(&out, e->script->prompt.data, e->script->prompt.len);
    dw_buf_free(&payload);
    if (rc != DW_OK || !(out.data || dw_buf_reserve(&out, 1) == DW_OK)) {
        dw_buf_free(&out);
        return;
    }
    p->data = out.data;
    p->len = out.len;
    p->nframes = a->nframes[0];
    p->name = r->name ? r->name : "rule";
    p->delay_ms = a->delay_ms;
    p->split = a->split;
    p->nsplit = a->nsplit;
    p->split_delay_ms = a->split_delay_ms;
}

/* The Lua state and what goes with it, only for a script that has Lua. */
static int lua_init(dw_sim_engine *e, dw_error *err)
{
    const dw_sim_script *s = e->script;
    if (!s->nlua)
        return DW_OK;
    int rc = dw_sim_lua_new(s, &e->lua, err);
    if (rc != DW_OK)
        return rc;
    dw_sim_lua_seed(e->lua, DW_SIM_DEFAULT_SEED);
    for (size_t i = 0; i < s->nrules; i++)
        e->has_cond |= s->rules[i].cond != NULL;
    e->rule_lua_errors = calloc(s->nrules ? s->nrules : 1, sizeof *e->rule_lua_errors);
    e->step_lua_errors = calloc(s->nsteps ? s->nsteps : 1, sizeof *e->step_lua_errors);
    if (e->has_cond && (e->same_next = malloc(s->nrules * sizeof *e->same_next)))
        for (size_t i = 0; i < s->nrules; i++)
            e->same_next[i] = SIZE_MAX;
    if (!e->rule_lua_errors || !e->step_lua_errors || (e->has_cond && !e->same_next))
        return dw_error_set(err, DW_ENOMEM, "engine: out of memory");
    return DW_OK;
}

static void note_regex(dw_sim_engine *e, const dw_sim_match *m)
{
    if (m->kind != DW_SIM_MATCH_REGEX)
        return;
    e->has_regex = 1;
    e->has_jit |= m->jit;
}

/* The default clock: monotonic seconds since engine e was built. */
static double since_start(void *arg)
{
    const dw_sim_engine *e = arg;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)(ts.tv_sec - e->start.tv_sec) + (double)(ts.tv_nsec - e->start.tv_nsec) / 1e9;
}

int dw_sim_engine_new(const dw_sim_script *script, dw_sim_engine **out, dw_error *err)
{
    *out = NULL;
    dw_sim_engine *e = calloc(1, sizeof *e);
    if (!e)
        return dw_error_set(err, DW_ENOMEM, "engine: out of memory");
    e->script = script;
    clock_gettime(CLOCK_MONOTONIC, &e->start);
    e->clock = since_start;
    e->clock_arg = e;
    dw_sim_noise_seed(&e->noise, DW_SIM_DEFAULT_SEED);
    int rc = state_init(&e->shared, script, &e->noise);
    e->rule_hits = calloc(script->nrules ? script->nrules : 1, sizeof *e->rule_hits);
    e->step_hits = calloc(script->nsteps ? script->nsteps : 1, sizeof *e->step_hits);
    e->rule_limits = calloc(script->nrules ? script->nrules : 1, sizeof *e->rule_limits);
    e->step_limits = calloc(script->nsteps ? script->nsteps : 1, sizeof *e->step_limits);
    e->inexact = calloc(script->nrules ? script->nrules : 1, sizeof *e->inexact);
    if (rc != DW_OK || !e->rule_hits || !e->step_hits || !e->rule_limits || !e->step_limits ||
        !e->inexact) {
        dw_sim_engine_free(e);
        return dw_error_set(err, DW_ENOMEM, "engine: out of memory");
    }
    e->req_m = dw_sim_framing_marshaller(&script->request_framing);
    e->resp_m = dw_sim_framing_marshaller(&script->response_framing);
    if (!e->req_m || !e->resp_m) {
        dw_sim_engine_free(e);
        return dw_error_set(err, DW_EINVAL, "%s: cannot build the framing",
                            script->path ? script->path : "script");
    }

    if (script->profile == DW_SIM_PROFILE_SCPI && !(e->builtins = dw_scpi_builtins_new())) {
        dw_sim_engine_free(e);
        return dw_error_set(err, DW_ENOMEM, "engine: out of memory");
    }
    e->pre = calloc(script->nrules ? script->nrules : 1, sizeof *e->pre);
    if (!e->pre) {
        dw_sim_engine_free(e);
        return dw_error_set(err, DW_ENOMEM, "engine: out of memory");
    }
    for (size_t i = 0; i < script->nrules; i++)
        prebuild(e, &script->rules[i], &e->pre[i]);
    if ((rc = lua_init(e, err)) != DW_OK) {
        dw_sim_engine_free(e);
        return rc;
    }

    size_t nexact = 0;
    for (size_t i = 0; i < script->nsteps; i++)
        note_regex(e, &script->steps[i].expect);
    for (size_t i = 0; i < script->nrules; i++)
        note_regex(e, &script->rules[i].when);
    for (size_t i = 0; i < script->nrules; i++) {
        if (script->rules[i].when.kind == DW_SIM_MATCH_EXACT)
            nexact++;
        else
            e->inexact[e->ninexact++] = i;
    }
    size_t cap = 16;
    while (cap < 2 * nexact)
        cap *= 2;
    e->slots = malloc(cap * sizeof *e->slots);
    if (!e->slots) {
        dw_sim_engine_free(e);
        return dw_error_set(err, DW_ENOMEM, "engine: out of memory");
    }
    e->mask = cap - 1;
    for (size_t i = 0; i < cap; i++)
        e->slots[i].rule = SIZE_MAX;
    for (size_t i = 0; i < script->nrules; i++) {
        const dw_sim_match *m = &script->rules[i].when;
        if (m->kind != DW_SIM_MATCH_EXACT)
            continue;
        uint64_t h = hash_bytes(m->bytes.data, m->bytes.len);
        for (size_t j = (size_t)h & e->mask;; j = (j + 1) & e->mask) {
            struct slot *sl = &e->slots[j];
            if (sl->rule == SIZE_MAX) {
                sl->hash = h;
                sl->rule = i;
                sl->len = m->bytes.len;
                sl->key = m->bytes.data;
                break;
            }
            if (sl->hash == h && sl->len == m->bytes.len &&
                (sl->len == 0 || memcmp(sl->key, m->bytes.data, sl->len) == 0)) {
                /* An earlier rule has the same bytes: it wins, unless its
                 * "if" is false; then the next one with these bytes. */
                size_t k = sl->rule;
                while (e->same_next && e->same_next[k] != SIZE_MAX)
                    k = e->same_next[k];
                if (e->same_next)
                    e->same_next[k] = i;
                break;
            }
        }
    }
    *out = e;
    return DW_OK;
}

void dw_sim_engine_free(dw_sim_engine *e)
{
    if (!e)
        return;
    dw_marshaller_free(e->req_m);
    dw_marshaller_free(e->resp_m);
    free(e->slots);
    free(e->inexact);
    dw_scpi_builtins_free(e->builtins);
    if (e->pre)
        for (size_t i = 0; i < e->script->nrules; i++)
            free(e->pre[i].data);
    free(e->pre);
    state_destroy(&e->shared, e->script);
    free(e->rule_hits);
    free(e->step_hits);
    free(e->rule_limits);
    free(e->step_limits);
    dw_sim_lua_free(e->lua);
    free(e->same_next);
    free(e->rule_lua_errors);
    free(e->step_lua_errors);
    for (size_t i = 0; i < e->nsamples; i++)
        dw_buf_free(&e->samples[i]);
    free(e);
}

const dw_sim_script *dw_sim_engine_script(const dw_sim_engine *e)
{
    return e->script;
}

const dw_marshaller *dw_sim_engine_request_marshaller(const dw_sim_engine *e)
{
    return e->req_m;
}

const dw_marshaller *dw_sim_engine_response_marshaller(const dw_sim_engine *e)
{
    return e->resp_m;
}

/* The session's regex matching objects, limits set (see engine.h). */
static void undo_forget(dw_sim_session *ss);

static int regex_init(dw_sim_session *s)
{
    if (!s->e->has_regex)
        return DW_OK;
    s->md = pcre2_match_data_create(NCAP, NULL);
    s->mc = pcre2_match_context_create(NULL);
    if (!s->md || !s->mc)
        return DW_ENOMEM;
    pcre2_set_depth_limit(s->mc, DW_SIM_REGEX_DEPTH_LIMIT);
    pcre2_set_heap_limit(s->mc, DW_SIM_REGEX_HEAP_LIMIT_KIB);
    if (s->e->has_jit)
        pcre2_jit_stack_assign(s->mc, thread_jit_stack, NULL);
    return DW_OK;
}

dw_sim_session *dw_sim_session_new(dw_sim_engine *e)
{
    dw_sim_session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->e = e;
    s->st = &e->shared;
    if (e->script->scope == DW_SIM_SCOPE_CONNECTION) {
        s->st = &s->own;
        if (state_init(&s->own, e->script, &e->noise) != DW_OK) {
            dw_sim_session_free(s);
            return NULL;
        }
    }
    if (regex_init(s) != DW_OK) {
        dw_sim_session_free(s);
        return NULL;
    }
    return s;
}

void dw_sim_session_free(dw_sim_session *s)
{
    if (!s)
        return;
    if (s->st == &s->own)
        state_destroy(&s->own, s->e->script);
    pcre2_match_data_free(s->md);
    pcre2_match_context_free(s->mc);
    dw_buf_free(&s->scratch);
    dw_buf_free(&s->scpi_resp);
    dw_buf_free(&s->scpi_caps);
    undo_forget(s);
    free(s->undo);
    free(s);
}

int dw_sim_session_hung(const dw_sim_session *s)
{
    return s->hung;
}

void dw_sim_outcome_init(dw_sim_outcome *o)
{
    memset(o, 0, sizeof *o);
    o->index = SIZE_MAX;
}

void dw_sim_outcome_free(dw_sim_outcome *o)
{
    if (!o)
        return;
    dw_buf_free(&o->bytes);
    free(o->limits);
    dw_sim_outcome_init(o);
}

/* ---- matching ------------------------------------------------------------ */

/* Captures of the request: [so, eo), or so == PCRE2_UNSET (no group). */
struct captures {
    PCRE2_SIZE so[NCAP];
    PCRE2_SIZE eo[NCAP];
};

static void captures_whole(captures *c, size_t n)
{
    for (int i = 0; i < NCAP; i++)
        c->so[i] = c->eo[i] = PCRE2_UNSET;
    c->so[0] = 0;
    c->eo[0] = n;
}

/* match(): the request matched, did not, or a limit cut the match short. */
enum { NO_MATCH = 0, MATCHED = 1, LIMITED = 2 };

/* The match limit of one pcre2_match call. PCRE2 counts it afresh at each
 * start position, so an unanchored pattern gets the budget shared out over
 * the n + 1 positions it may try (never less than a floor that ordinary
 * unanchored patterns need at one position): the whole call then costs at
 * most about max(budget, floor * (n + 1)) steps. */
static uint32_t match_limit(const dw_sim_match *m, size_t n)
{
    if (m->anchored)
        return DW_SIM_REGEX_MATCH_BUDGET;
    size_t per = DW_SIM_REGEX_MATCH_BUDGET / (n + 1);
    return per < DW_SIM_REGEX_START_MIN ? DW_SIM_REGEX_START_MIN : (uint32_t)per;
}

static int match_regex(dw_sim_session *ss, const dw_sim_match *m, const uint8_t *req, size_t n,
                       captures *c)
{
    pcre2_set_match_limit(ss->mc, match_limit(m, n));
    int rc = pcre2_match(m->re, req, n, 0, 0, ss->md, ss->mc);
    if (rc == PCRE2_ERROR_NOMATCH)
        return NO_MATCH;
    /* The match, depth, heap or JIT stack limit (or no memory for the
     * backtracking frames): the request is not known to match. */
    if (rc < 0)
        return LIMITED;
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(ss->md);
    /* rc: one more than the highest group set; 0: more groups than NCAP. */
    int set = rc == 0 ? NCAP : rc;
    captures_whole(c, n);
    for (int i = 1; i < NCAP && i < set; i++) {
        c->so[i] = ov[2 * i];
        c->eo[i] = ov[2 * i + 1];
    }
    return MATCHED;
}

static int match(dw_sim_session *ss, const dw_sim_match *m, const uint8_t *req, size_t n,
                 captures *c)
{
    switch (m->kind) {
    case DW_SIM_MATCH_EXACT:
        if (m->bytes.len != n || (n && memcmp(m->bytes.data, req, n) != 0))
            return NO_MATCH;
        captures_whole(c, n);
        return MATCHED;
    case DW_SIM_MATCH_PREFIX:
        if (m->bytes.len > n || (m->bytes.len && memcmp(m->bytes.data, req, m->bytes.len) != 0))
            return NO_MATCH;
        captures_whole(c, n);
        return MATCHED;
    case DW_SIM_MATCH_REGEX:
        return match_regex(ss, m, req, n, c);
    case DW_SIM_MATCH_SCPI: /* only in the SCPI profile (scpi_match) */
        return NO_MATCH;
    }
    return NO_MATCH;
}

/* Note in the outcome that a regex of step or rule `index` hit a limit, and
 * count it; the first hit of each is flagged for the log. */
static int note_limit(dw_sim_engine *e, dw_sim_outcome *out, dw_sim_source src, size_t index)
{
    const dw_sim_script *s = e->script;
    uint64_t *count = src == DW_SIM_BY_STEP ? &e->step_limits[index] : &e->rule_limits[index];
    int first = (*count)++ == 0;
    e->limit_hits++;
    dw_sim_limit_hit *l = dw_sim_grow(out->limits, out->nlimits, &out->limits_cap, sizeof *l, 4);
    if (!l)
        return DW_ENOMEM;
    out->limits = l;
    const char *name = src == DW_SIM_BY_STEP ? s->steps[index].name : s->rules[index].name;
    dw_sim_limit_hit h = {src, index, name ? name : src == DW_SIM_BY_STEP ? "step" : "rule", first};
    out->limits[out->nlimits++] = h;
    return DW_OK;
}

typedef struct lua_call lua_call;
static int cond_holds(lua_call *lc, size_t id, const dw_sim_lua_chunk *cond, int *rc);

/* The first rule whose "if" holds among those that match (has_cond): the
 * candidates in script order, inexact ones and the exact ones with the
 * request's bytes. SIZE_MAX with DW_ENOMEM or LUA_FAILED in *rc, or none. */
static size_t find_rule_cond(dw_sim_engine *e, dw_sim_session *ss, const uint8_t *req, size_t n,
                             captures *c, dw_sim_outcome *out, int *rc, lua_call *lc, size_t exact)
{
    const dw_sim_script *s = e->script;
    for (size_t k = 0;;) {
        size_t r;
        if (k < e->ninexact && e->inexact[k] < exact) {
            r = e->inexact[k++];
            int m = match(ss, &s->rules[r].when, req, n, c);
            if (m == LIMITED && (*rc = note_limit(e, out, DW_SIM_BY_RULE, r)) != DW_OK)
                return SIZE_MAX;
            if (m != MATCHED)
                continue;
        } else if (exact != SIZE_MAX) {
            r = exact;
            exact = e->same_next[r];
            captures_whole(c, n);
        } else {
            return SIZE_MAX;
        }
        if (cond_holds(lc, s->nsteps + r, s->rules[r].cond, rc))
            return r;
        if (*rc != DW_OK)
            return SIZE_MAX;
    }
}

/* The first rule that matches (and whose "if" holds), or SIZE_MAX (DW_ENOMEM
 * or LUA_FAILED in *rc). */
static size_t find_rule(dw_sim_engine *e, dw_sim_session *ss, const uint8_t *req, size_t n,
                        captures *c, dw_sim_outcome *out, int *rc, lua_call *lc)
{
    const dw_sim_script *s = e->script;
    size_t exact = SIZE_MAX;
    uint64_t h = hash_bytes(req, n);
    for (size_t j = (size_t)h & e->mask; e->slots[j].rule != SIZE_MAX; j = (j + 1) & e->mask) {
        const struct slot *sl = &e->slots[j];
        if (sl->hash == h && sl->len == n && (n == 0 || memcmp(sl->key, req, n) == 0)) {
            exact = sl->rule;
            break;
        }
    }
    if (e->has_cond)
        return find_rule_cond(e, ss, req, n, c, out, rc, lc, exact);
    for (size_t k = 0; k < e->ninexact && e->inexact[k] < exact; k++) {
        int m = match(ss, &s->rules[e->inexact[k]].when, req, n, c);
        if (m == MATCHED)
            return e->inexact[k];
        if (m == LIMITED && (*rc = note_limit(e, out, DW_SIM_BY_RULE, e->inexact[k])) != DW_OK)
            return SIZE_MAX;
    }
    if (exact != SIZE_MAX)
        captures_whole(c, n);
    return exact;
}

/* ---- templates ----------------------------------------------------------- */

static int render(const dw_sim_template *t, const sim_state *st, const uint8_t *req,
                  const captures *c, dw_buf *out)
{
    for (size_t i = 0; i < t->nsegs; i++) {
        const dw_sim_seg *g = &t->segs[i];
        int rc = DW_OK;
        switch (g->kind) {
        case DW_SIM_SEG_LITERAL:
            rc = dw_buf_append(out, g->literal.data, g->literal.len);
            break;
        case DW_SIM_SEG_VAR:
            rc = dw_buf_append(out, st->vars[g->var].data, st->vars[g->var].len);
            break;
        case DW_SIM_SEG_PROP:
            rc = dw_sim_prop_print(st->props, g->var, st->now, 0, out);
            break;
        case DW_SIM_SEG_CAPTURE:
            if (c && req && g->capture < NCAP && c->so[g->capture] != PCRE2_UNSET &&
                c->eo[g->capture] >= c->so[g->capture])
                rc = dw_buf_append(out, req + c->so[g->capture],
                                   c->eo[g->capture] - c->so[g->capture]);
            break;
        case DW_SIM_SEG_LUA: /* render_value runs it */
            break;
        }
        if (rc != DW_OK)
            return rc;
    }
    return DW_OK;
}

/* ---- Lua ----------------------------------------------------------------- */

/* One request's Lua: what its chunks see, and where a failure is noted. A
 * script without Lua has none (NULL), and nothing below runs for it. */
struct lua_call {
    dw_sim_engine *e;
    dw_sim_session *ss;
    sim_state *st;
    const uint8_t *req;
    size_t n;
    const captures *c;
    dw_sim_outcome *out;
};

/* A free entry at the end of the session's undo list (not yet counted),
 * or NULL when out of memory. */
static struct undo *undo_slot(dw_sim_session *ss)
{
    struct undo *u = dw_sim_grow(ss->undo, ss->nundo, &ss->undo_cap, sizeof *u, 4);
    if (!u)
        return NULL;
    ss->undo = u;
    return memset(&ss->undo[ss->nundo], 0, sizeof *ss->undo);
}

/* Set variable `var` to *v (taken), keeping the old value in the session's
 * undo list until the request is over. */
static int state_assign(dw_sim_session *ss, sim_state *st, size_t var, dw_buf *v)
{
    struct undo *u = undo_slot(ss);
    if (!u) {
        dw_buf_free(v);
        return DW_ENOMEM;
    }
    u->var = var;
    u->old = st->vars[var];
    ss->nundo++;
    st->vars[var] = *v;
    dw_buf_init(v);
    return DW_OK;
}

/* Keep property i's value in the session's undo list (before a change). */
static int prop_keep(dw_sim_session *ss, sim_state *st, size_t i)
{
    struct undo *u = undo_slot(ss);
    if (!u || dw_sim_prop_save(st->props, i, &u->saved) != DW_OK)
        return DW_ENOMEM;
    u->var = i;
    u->prop = 1;
    ss->nundo++;
    return DW_OK;
}

/* A "set" of property i from the text *v (freed), validated as a property's
 * command validates it: a value it refuses leaves it as it was. With Lua
 * (lc) the old value is kept for undo_all. */
static int set_prop_text(lua_call *lc, sim_state *st, size_t i, dw_buf *v)
{
    int rc = lc ? prop_keep(lc->ss, st, i) : DW_OK;
    const uint8_t *text = v->data ? v->data : (const uint8_t *)"";
    if (rc == DW_OK && dw_sim_prop_set_text(st->props, i, text, v->len, st->now) == DW_SCPI_NOMEM)
        rc = DW_ENOMEM;
    dw_buf_free(v);
    return rc;
}

/* An assignment from a "lua" action (dw_sim_lua_scope.assign). */
static int lua_assign(void *arg, size_t var, const uint8_t *p, size_t n)
{
    lua_call *lc = arg;
    dw_buf v = DW_BUF_INIT;
    if (n && dw_buf_append(&v, p, n) != DW_OK)
        return DW_ENOMEM;
    return state_assign(lc->ss, lc->st, var, &v);
}

/* An assignment to a property from a "lua" action (dw_sim_lua_scope):
 * 0, or the SCPI error code of a refused value (then unchanged). */
static int lua_set_prop(void *arg, size_t i, const dw_sim_prop_value *v)
{
    lua_call *lc = arg;
    if (prop_keep(lc->ss, lc->st, i) != DW_OK)
        return DW_SCPI_NOMEM;
    return dw_sim_prop_set(lc->st->props, i, v, lc->st->now);
}

/* The request is over: keep what it changed. */
static void undo_forget(dw_sim_session *ss)
{
    for (size_t i = 0; i < ss->nundo; i++) {
        dw_buf_free(&ss->undo[i].old);
        dw_buf_free(&ss->undo[i].saved.str);
    }
    ss->nundo = 0;
}

/* A chunk failed: undo what the request changed, latest first. */
static void undo_all(dw_sim_session *ss, sim_state *st)
{
    while (ss->nundo) {
        struct undo *u = &ss->undo[--ss->nundo];
        if (u->prop) {
            dw_sim_prop_restore(st->props, u->var, &u->saved);
            continue;
        }
        dw_buf_free(&st->vars[u->var]);
        st->vars[u->var] = u->old;
    }
}

/* Note in the outcome that a chunk of action `id` (a step's or a rule's)
 * failed, and count it; the first failure of each is flagged for the log. */
static void note_lua(dw_sim_engine *e, dw_sim_outcome *out, size_t id, const char *msg)
{
    const dw_sim_script *s = e->script;
    int step = id < s->nsteps;
    size_t i = step ? id : id - s->nsteps;
    const char *name = step ? s->steps[i].name : s->rules[i].name;
    uint64_t *count = step ? &e->step_lua_errors[i] : &e->rule_lua_errors[i];
    out->lua.source = step ? DW_SIM_BY_STEP : DW_SIM_BY_RULE;
    out->lua.index = i;
    out->lua.name = name ? name : step ? "step" : "rule";
    out->lua.first = (*count)++ == 0;
    out->lua.message = msg;
    e->lua_errors++;
}

/* Run chunk `ch` of action `id` (see dw_sim_lua_eval): DW_OK, DW_ENOMEM,
 * or LUA_FAILED (noted in the outcome). */
static int lua_eval(lua_call *lc, size_t id, const dw_sim_lua_chunk *ch, int *truth, dw_buf *text)
{
    sim_state *st = lc->st;
    dw_sim_lua_scope sc = {lc->req,
                           lc->n,
                           lc->c->so,
                           lc->c->eo,
                           st->vars,
                           st->props,
                           st->now,
                           ch->statements ? lua_assign : NULL,
                           ch->statements ? lua_set_prop : NULL,
                           lc};
    dw_sim_session *ss = lc->ss;
    int rc = dw_sim_lua_eval(lc->e->lua, ch, &sc, truth, text, ss->lua_msg, sizeof ss->lua_msg);
    if (rc != DW_ESCRIPT)
        return rc;
    note_lua(lc->e, lc->out, id, ss->lua_msg);
    return LUA_FAILED;
}

/* Does the "if" `cond` of action `id` hold (1 or 0)? No "if" holds. 0 with
 * *rc set when the chunk failed (LUA_FAILED) or DW_ENOMEM. */
static int cond_holds(lua_call *lc, size_t id, const dw_sim_lua_chunk *cond, int *rc)
{
    int truth = 1;
    if (cond)
        *rc = lua_eval(lc, id, cond, &truth, NULL);
    return *rc == DW_OK && truth;
}

/* A template, or a {"lua": ...} value of action `id`. */
static int render_value(lua_call *lc, size_t id, const dw_sim_template *t, const sim_state *st,
                        const uint8_t *req, const captures *c, dw_buf *out)
{
    if (lc && t->nsegs == 1 && t->segs[0].kind == DW_SIM_SEG_LUA)
        return lua_eval(lc, id, t->segs[0].lua, NULL, out);
    return render(t, st, req, c, out);
}

/* ---- handling ------------------------------------------------------------ */

/* "set" of action `id`: render every value against the old state, then
 * assign (keeping the old values when the script has Lua: see undo_all). */
static int apply_sets(sim_state *st, const dw_sim_action *a, const uint8_t *req, const captures *c,
                      lua_call *lc, size_t id)
{
    if (!a->nsets)
        return DW_OK;
    dw_buf *vals = calloc(a->nsets, sizeof *vals);
    if (!vals)
        return DW_ENOMEM;
    int rc = DW_OK;
    for (size_t i = 0; i < a->nsets && rc == DW_OK; i++)
        rc = render_value(lc, id, &a->sets[i].value, st, req, c, &vals[i]);
    for (size_t i = 0; i < a->nsets; i++) {
        if (rc == DW_OK && a->sets[i].prop) {
            rc = set_prop_text(lc, st, a->sets[i].var, &vals[i]);
        } else if (rc == DW_OK && lc) {
            rc = state_assign(lc->ss, st, a->sets[i].var, &vals[i]);
        } else if (rc == DW_OK) {
            dw_buf_free(&st->vars[a->sets[i].var]);
            st->vars[a->sets[i].var] = vals[i];
        } else {
            dw_buf_free(&vals[i]);
        }
    }
    free(vals);
    return rc;
}

/* Whether the action's fault fires on its nth match: "fault_on", then a
 * rule's "probability" (netfault.h) when the engine has a generator. */
static int faults(const dw_sim_engine *e, const dw_sim_action *a, uint64_t nth)
{
    if (a->fault == DW_SIM_FAULT_NONE || (a->fault_on != 0 && nth != a->fault_on))
        return 0;
    return !a->net || !e->rng || dw_sim_rng_chance(e->rng, a->net->probability);
}

/* The delay before answering: a draw of a rule's "delay", or delay_ms. */
static unsigned action_delay(const dw_sim_engine *e, const dw_sim_action *a)
{
    if (a->net && a->net->has_delay && e->rng)
        return dw_sim_delay_draw(&a->net->delay, e->rng);
    return a->delay_ms;
}

void dw_sim_engine_set_rng(dw_sim_engine *e, dw_sim_rng *r)
{
    e->rng = r;
}

/* Which reply of the list, if any (SIZE_MAX: none); advances the turn. */
static size_t pick_reply(sim_state *st, size_t action_id, const dw_sim_action *a)
{
    if (a->nreplies == 1 && a->after_last == DW_SIM_REPEAT_LAST)
        return 0; /* no turns to keep */
    if (!a->nreplies)
        return SIZE_MAX;
    size_t t = st->turns[action_id];
    if (t < a->nreplies) {
        st->turns[action_id] = t + 1;
        return t;
    }
    if (a->after_last == DW_SIM_CYCLE) {
        st->turns[action_id] = t + 1 == SIZE_MAX ? a->nreplies : t + 1;
        return t % a->nreplies;
    }
    return a->after_last == DW_SIM_REPEAT_LAST ? a->nreplies - 1 : SIZE_MAX;
}

static int act(dw_sim_engine *e, sim_state *st, size_t action_id, const dw_sim_action *a,
               uint64_t *hits, const char *name, const uint8_t *req, const captures *c,
               dw_sim_outcome *out, dw_buf *payload, dw_error *err, lua_call *lc)
{
    const dw_sim_script *s = e->script;
    uint64_t nth = hits ? ++*hits : 0;
    out->delay_ms = action_delay(e, a);
    out->split = a->split;
    out->nsplit = a->nsplit;
    out->split_delay_ms = a->split_delay_ms;

    if (faults(e, a, nth)) {
        out->fault = a->fault;
        if (a->fault == DW_SIM_FAULT_GARBAGE)
            return dw_buf_append(&out->bytes, a->garbage.data, a->garbage.len);
        if (a->fault != DW_SIM_FAULT_DUPLICATE) /* the reply goes out twice */
            return DW_OK;
    }
    int rc = apply_sets(st, a, req, c, lc, action_id);
    if (rc == DW_OK && a->lua)
        rc = lua_eval(lc, action_id, a->lua, NULL, NULL);
    if (rc != DW_OK)
        return rc;
    size_t pick = pick_reply(st, action_id, a);
    if (pick != SIZE_MAX) {
        for (size_t f = 0; f < a->nframes[pick]; f++) {
            dw_buf_clear(payload);
            rc = render_value(lc, action_id, &a->replies[pick][f], st, req, c, payload);
            if (rc == DW_OK) {
                dw_error merr;
                merr.code = DW_OK;
                merr.message[0] = 0;
                rc = dw_marshall(e->resp_m, payload->data, payload->len, &out->bytes, &merr);
                if (rc != DW_OK && rc != DW_ENOMEM) {
                    dw_error_set(err, DW_EINVAL, "%s: reply %zu frame %zu cannot be framed: %s",
                                 name, pick, f, dw_error_message(&merr));
                    rc = DW_EINVAL;
                }
            }
            if (rc != DW_OK)
                return rc;
            out->nframes++;
        }
    }
    if (s->prompt.len)
        return dw_buf_append(&out->bytes, s->prompt.data, s->prompt.len);
    return DW_OK;
}

/* Carry out action `action_id` (its "set", "lua" and reply). When a chunk of
 * Lua fails (LUA_FAILED) its reply turn and match count are as before. */
static int apply_action(dw_sim_engine *e, sim_state *st, size_t action_id, const dw_sim_action *a,
                        uint64_t *hits, const char *name, const uint8_t *req, const captures *c,
                        dw_sim_outcome *out, dw_buf *payload, dw_error *err, lua_call *lc)
{
    if (!lc)
        return act(e, st, action_id, a, hits, name, req, c, out, payload, err, NULL);
    size_t turn = st->turns[action_id];
    int rc = act(e, st, action_id, a, hits, name, req, c, out, payload, err, lc);
    if (rc == LUA_FAILED) {
        st->turns[action_id] = turn;
        if (hits)
            (*hits)--;
    }
    return rc;
}

static void keep_sample(dw_sim_engine *e, const uint8_t *req, size_t n)
{
    if (e->nsamples < DW_SIM_UNMATCHED_KEEP) {
        dw_buf *b = &e->samples[e->nsamples];
        dw_buf_init(b);
        if (dw_buf_append(b, req, n > 256 ? 256 : n) == DW_OK)
            e->nsamples++;
    }
}

/* Reset `out` for a new request, keeping the storage of its byte buffer and
 * limit list. */
static void outcome_reset(dw_sim_outcome *out)
{
    dw_buf keep = out->bytes;
    dw_sim_limit_hit *limits = out->limits;
    size_t cap = out->limits_cap;
    /* The Lua failure comes last: its name alone says there is none. */
    memset(out, 0, offsetof(dw_sim_outcome, lua));
    out->index = SIZE_MAX;
    out->lua.name = NULL;
    out->bytes = keep;
    out->limits = limits;
    out->limits_cap = cap;
    dw_buf_clear(&out->bytes);
}

/* Nothing fitted the request (or a chunk of Lua failed on it): the
 * "unmatched" behaviour. */
static int answer_unmatched(dw_sim_engine *e, dw_sim_session *ss, const uint8_t *req, size_t n,
                            captures *c, dw_sim_outcome *out, dw_error *err)
{
    const dw_sim_script *s = e->script;
    dw_buf_clear(&out->bytes);
    out->nframes = 0;
    out->fault = DW_SIM_FAULT_NONE;
    out->source = DW_SIM_BY_UNMATCHED;
    out->index = SIZE_MAX;
    out->name = "unmatched";
    captures_whole(c, n);
    /* The unmatched counter doubles as its match count (fault_on). */
    int rc = apply_action(e, ss->st, s->nsteps + s->nrules, &s->unmatched, &e->unmatched, out->name,
                          req, c, out, &ss->scratch, err, NULL);
    out->close = s->unmatched_close;
    return rc;
}

/* The end of a request to a script with Lua. If a chunk failed (rc is
 * LUA_FAILED), undo what the request changed and answer it as unmatched.
 * Then forget the old values. */
static int lua_finish(dw_sim_engine *e, dw_sim_session *ss, const uint8_t *req, size_t n,
                      captures *c, dw_sim_outcome *out, dw_error *err, int rc)
{
    if (rc == LUA_FAILED) {
        undo_all(ss, ss->st);
        rc = answer_unmatched(e, ss, req, n, c, out, err);
    }
    undo_forget(ss);
    return rc;
}

/* Answer with rule r's prebuilt bytes. */
static int answer_prebuilt(dw_sim_engine *e, size_t r, dw_sim_outcome *out)
{
    const struct prebuilt *p = &e->pre[r];
    e->rule_hits[r]++;
    out->source = DW_SIM_BY_RULE;
    out->index = r;
    out->name = p->name;
    out->nframes = p->nframes;
    out->delay_ms = p->delay_ms;
    out->split = p->split;
    out->nsplit = p->nsplit;
    out->split_delay_ms = p->split_delay_ms;
    return dw_buf_append(&out->bytes, p->data, p->len);
}

/* ---- the SCPI profile ---------------------------------------------------- */

/* One message's progress. */
typedef struct scpi_msg {
    dw_buf *resp; /* the responses so far, joined with ';' */
    size_t nresp;
    int undefined; /* some unit fitted nothing */
    int stop;      /* a fault fired: the rest of the message is dropped */
} scpi_msg;

/* The short form of choice `k` of "IMMediate|BUS|EXTernal". */
static int choice_short(const char *choices, int k, dw_buf *out)
{
    for (; k > 0; k--)
        choices += strcspn(choices, "|") + 1;
    size_t n = 0;
    while (choices[n] && choices[n] != '|' && !(choices[n] >= 'a' && choices[n] <= 'z'))
        n++;
    return dw_buf_append(out, choices, n);
}

/* Parameter p's value as a capture, checked against its type: DW_OK, or
 * *scpi_err set. */
static int scpi_value(const dw_scpi_unit *u, const dw_scpi_param *p, const dw_sim_scpi_param *t,
                      dw_buf *buf, int *scpi_err)
{
    dw_sim_scpi_type type = t ? t->type : DW_SIM_SCPI_ANY;
    int v = 0;
    if (type == DW_SIM_SCPI_BOOL || type == DW_SIM_SCPI_CHOICE) {
        v = type == DW_SIM_SCPI_BOOL ? dw_scpi_param_bool(u, p)
                                     : dw_scpi_param_choice(u, p, t->choices);
        if (v < 0)
            return *scpi_err = v, DW_OK;
        return type == DW_SIM_SCPI_BOOL ? dw_buf_append_byte(buf, v ? '1' : '0')
                                        : choice_short(t->choices, v, buf);
    }
    if ((type == DW_SIM_SCPI_NUMERIC && p->kind != DW_SCPI_NUMERIC &&
         dw_scpi_param_choice(u, p, "MINimum|MAXimum|DEFault") < 0) ||
        (type == DW_SIM_SCPI_STRING && p->kind != DW_SCPI_STRING) ||
        (type == DW_SIM_SCPI_BLOCK && p->kind != DW_SCPI_BLOCK))
        return *scpi_err = DW_SCPI_E_DATA_TYPE, DW_OK;
    if (p->kind == DW_SCPI_NUMERIC)
        return dw_scpi_number_print(p->value, buf);
    return dw_buf_append(buf, u->text + p->off, p->len);
}

/* Captures of unit u in `buf`: $0 the unit as written, $n the nth
 * parameter's value, typed by m's "params" if any. */
static int scpi_captures(const dw_scpi_unit *u, const dw_sim_match *m, dw_buf *buf, captures *c,
                         int *scpi_err)
{
    dw_buf_clear(buf);
    captures_whole(c, u->raw_len);
    int rc = dw_buf_append(buf, u->raw, u->raw_len);
    if (m && m->has_params && u->nparams != m->nparams)
        *scpi_err = u->nparams < m->nparams ? DW_SCPI_E_MISSING_PARAM : DW_SCPI_E_PARAM_NOT_ALLOWED;
    for (size_t i = 0; i < u->nparams && i + 1 < NCAP && rc == DW_OK && !*scpi_err; i++) {
        size_t start = buf->len;
        rc = scpi_value(u, &u->params[i], m && m->has_params ? &m->params[i] : NULL, buf, scpi_err);
        c->so[i + 1] = start;
        c->eo[i + 1] = buf->len;
    }
    return rc;
}

/* Does match m take unit u? MATCHED (captures in buf / c; *scpi_err set if
 * its parameters are wrong), NO_MATCH, LIMITED (a regex), or -114 (the
 * header but for its suffix). */
static int scpi_match(dw_sim_session *ss, const dw_sim_match *m, const dw_scpi_unit *u, captures *c,
                      int *scpi_err, int *rc)
{
    dw_buf *buf = &ss->scpi_caps;
    if (m->kind == DW_SIM_MATCH_SCPI) {
        int r = dw_scpi_pattern_match(m->scpi, u);
        if (r == 1)
            *rc = scpi_captures(u, m, buf, c, scpi_err);
        return r;
    }
    if ((*rc = scpi_captures(u, NULL, buf, c, scpi_err)) != DW_OK)
        return MATCHED;
    static const uint8_t none[1] = {0};
    return match(ss, m, buf->data ? buf->data : none, u->raw_len, c);
}

/* Add a response unit to the message's responses. */
static int scpi_respond(scpi_msg *msg, const uint8_t *p, size_t n)
{
    int rc = msg->nresp ? dw_buf_append_byte(msg->resp, ';') : DW_OK;
    msg->nresp++;
    return rc == DW_OK ? dw_buf_append(msg->resp, p, n) : rc;
}

/* Carry out a rule's or step's action for one unit. When a chunk of Lua
 * fails (LUA_FAILED) its reply turn and match count are as before. */
static int scpi_act(dw_sim_session *ss, size_t id, const dw_sim_action *a, uint64_t *hits,
                    const captures *c, scpi_msg *msg, dw_sim_outcome *out, lua_call *lc)
{
    uint64_t nth = ++*hits;
    unsigned delay = action_delay(ss->e, a);
    out->delay_ms = delay > UINT32_MAX - out->delay_ms ? UINT32_MAX : out->delay_ms + delay;
    if (a->nsplit) {
        out->split = a->split;
        out->nsplit = a->nsplit;
        out->split_delay_ms = a->split_delay_ms;
    }
    if (faults(ss->e, a, nth)) {
        out->fault = a->fault;
        msg->stop = 1;
        if (a->fault == DW_SIM_FAULT_GARBAGE)
            return dw_buf_append(&out->bytes, a->garbage.data, a->garbage.len);
        return DW_OK;
    }
    const uint8_t *req = ss->scpi_caps.data;
    size_t turn = ss->st->turns[id];
    if (lc) { /* the unit's captures may have moved since lc was made */
        lc->req = req;
        lc->n = c->eo[0];
    }
    int rc = apply_sets(ss->st, a, req, c, lc, id);
    if (rc == DW_OK && a->lua)
        rc = lua_eval(lc, id, a->lua, NULL, NULL);
    size_t pick = rc == DW_OK ? pick_reply(ss->st, id, a) : SIZE_MAX;
    for (size_t f = 0; pick != SIZE_MAX && f < a->nframes[pick] && rc == DW_OK; f++) {
        dw_buf_clear(&ss->scratch);
        rc = render_value(lc, id, &a->replies[pick][f], ss->st, req, c, &ss->scratch);
        if (rc == DW_OK && ss->scratch.len)
            rc = scpi_respond(msg, ss->scratch.data, ss->scratch.len);
    }
    if (rc == LUA_FAILED) {
        ss->st->turns[id] = turn;
        (*hits)--;
    }
    return rc;
}

/* Where a match is: a step or rule, for a regex limit's note. */
typedef struct scpi_site {
    dw_sim_engine *e;
    dw_sim_outcome *out;
    dw_sim_source src;
    size_t index;
} scpi_site;

/* Does m take u? 1 if its header and parameters fit (or *rc is an
 * error); else 0, with *why the most telling reason so far: the first
 * parameter error, else -114. A regex cut short by a limit does not fit. */
static int scpi_fits(dw_sim_session *ss, const dw_sim_match *m, const dw_scpi_unit *u, captures *c,
                     int *why, int *rc, const scpi_site *at)
{
    int err = 0;
    int r = scpi_match(ss, m, u, c, &err, rc);
    if (*rc != DW_OK || (r == MATCHED && !err))
        return 1;
    if (r == LIMITED)
        return (*rc = note_limit(at->e, at->out, at->src, at->index)) != DW_OK;
    if (r == MATCHED && (!*why || *why == DW_SCPI_E_SUFFIX_RANGE))
        *why = err;
    else if (r < 0 && !*why)
        *why = r;
    return 0;
}

/* The script's next step, then its rules, for unit u: 1 if one took it
 * (the first whose header and parameters fit), else 0 and *scpi_err why
 * not (0: no header fitted). */
/* The "if" of action `id` for unit u, once m fitted it: 1 if it holds or
 * *rc is an error (LUA_FAILED included). */
static int scpi_cond(lua_call *lc, const dw_scpi_unit *u, size_t id, const dw_sim_lua_chunk *cond,
                     int *rc)
{
    if (*rc != DW_OK || !cond)
        return 1;
    lc->req = lc->ss->scpi_caps.data;
    lc->n = u->raw_len;
    return cond_holds(lc, id, cond, rc) || *rc != DW_OK;
}

static int scpi_script(dw_sim_engine *e, dw_sim_session *ss, const dw_scpi_unit *u, scpi_msg *msg,
                       dw_sim_outcome *out, int *scpi_err, int *rc)
{
    const dw_sim_script *s = e->script;
    sim_state *st = ss->st;
    captures c;
    lua_call lcs = {e, ss, st, ss->scpi_caps.data, u->raw_len, &c, out};
    lua_call *lc = e->lua ? &lcs : NULL;
    scpi_site at = {e, out, DW_SIM_BY_STEP, st->step};
    if (st->step < s->nsteps &&
        scpi_fits(ss, &s->steps[st->step].expect, u, &c, scpi_err, rc, &at) &&
        scpi_cond(lc, u, st->step, s->steps[st->step].cond, rc)) {
        size_t i = st->step++;
        *scpi_err = 0;
        out->source = DW_SIM_BY_STEP;
        out->index = i;
        out->name = s->steps[i].name ? s->steps[i].name : "step";
        if (*rc == DW_OK)
            *rc = scpi_act(ss, i, &s->steps[i].action, &e->step_hits[i], &c, msg, out, lc);
        if (*rc == LUA_FAILED)
            st->step = i;
        return 1;
    }
    at.src = DW_SIM_BY_RULE;
    for (size_t i = 0; i < s->nrules; i++) {
        at.index = i;
        if (!scpi_fits(ss, &s->rules[i].when, u, &c, scpi_err, rc, &at) ||
            !scpi_cond(lc, u, s->nsteps + i, s->rules[i].cond, rc))
            continue;
        *scpi_err = 0;
        out->source = DW_SIM_BY_RULE;
        out->index = i;
        out->name = s->rules[i].name ? s->rules[i].name : "rule";
        if (*rc == DW_OK)
            *rc = scpi_act(ss, s->nsteps + i, &s->rules[i].action, &e->rule_hits[i], &c, msg, out,
                           lc);
        return 1;
    }
    return 0;
}

/* Variables to their initial values, properties to their defaults. */
static int reset_state(const dw_sim_script *s, sim_state *st)
{
    for (size_t i = 0; i < s->nvars; i++) {
        dw_buf_clear(&st->vars[i]);
        if (dw_buf_append(&st->vars[i], s->vars[i].initial.data, s->vars[i].initial.len) != DW_OK)
            return DW_ENOMEM;
    }
    return st->props ? dw_sim_props_reset(st->props) : DW_OK;
}

/* The properties' headers for unit u (after the script's steps and rules):
 * 1 if a property took it (*scpi_err set if its value was refused), else
 * 0 (*why -114 if a header fitted but for its suffix). */
static int scpi_props(dw_sim_session *ss, const dw_scpi_unit *u, scpi_msg *msg, dw_sim_outcome *out,
                      int *scpi_err, int *why, int *rc)
{
    sim_state *st = ss->st;
    size_t before = msg->resp->len;
    if (!st->props)
        return 0;
    if (msg->nresp && (*rc = dw_buf_append_byte(msg->resp, ';')) != DW_OK)
        return 1;
    int r = dw_sim_props_scpi(st->props, u, st->now, msg->resp);
    if (r == 1 && msg->resp->len > before + (msg->nresp > 0))
        msg->nresp++;
    else
        dw_buf_truncate(msg->resp, before);
    if (r == 0 || r == DW_SCPI_E_SUFFIX_RANGE) {
        *why = *why ? *why : r;
        return 0;
    }
    out->source = DW_SIM_BY_PROFILE;
    out->name = "properties";
    if (r == DW_SCPI_NOMEM)
        *rc = DW_ENOMEM;
    else if (r < 0)
        *scpi_err = r;
    return 1;
}

/* One program message unit: the script first, then the built-in commands,
 * else -113. DW_OK (any SCPI error in *scpi_err) or DW_ENOMEM / DW_EINVAL. */
static int scpi_unit(dw_sim_engine *e, dw_sim_session *ss, const dw_scpi_unit *u, scpi_msg *msg,
                     dw_sim_outcome *out, int *scpi_err)
{
    int rc = DW_OK;
    *scpi_err = 0;
    size_t resp_len = msg->resp->len, nresp = msg->nresp;
    unsigned delay_ms = out->delay_ms;
    if (scpi_script(e, ss, u, msg, out, scpi_err, &rc)) {
        if (rc != LUA_FAILED)
            return rc;
        /* A chunk of Lua failed: undo the unit, which fits nothing. */
        undo_all(ss, ss->st);
        dw_buf_truncate(msg->resp, resp_len);
        msg->nresp = nresp;
        out->delay_ms = delay_ms;
        *scpi_err = DW_SCPI_E_UNDEFINED_HEADER;
        msg->undefined = 1;
        return DW_OK;
    }
    int why = *scpi_err; /* a parameter error or -114 from the script */
    if (scpi_props(ss, u, msg, out, scpi_err, &why, &rc))
        return rc;
    dw_scpi_context ctx = {e->script->idn ? e->script->idn : e->script->name, msg->nresp > 0};
    size_t before = msg->resp->len;
    unsigned events = 0;
    if (msg->nresp && (rc = dw_buf_append_byte(msg->resp, ';')) != DW_OK)
        return rc;
    int b = dw_scpi_builtin(e->builtins, ss->st->scpi, &ctx, u, msg->resp, &events);
    if (b == 1 && msg->resp->len > before + (msg->nresp > 0))
        msg->nresp++;
    else
        dw_buf_truncate(msg->resp, before);
    if (b == 1) {
        out->source = DW_SIM_BY_PROFILE;
        out->name = "scpi";
        return events & DW_SCPI_EVENT_RST ? reset_state(e->script, ss->st) : DW_OK;
    }
    if (b == DW_SCPI_NOMEM)
        return DW_ENOMEM;
    *scpi_err = b < 0 ? b : why ? why : DW_SCPI_E_UNDEFINED_HEADER;
    msg->undefined |= *scpi_err == DW_SCPI_E_UNDEFINED_HEADER;
    return DW_OK;
}

/* Frame the joined responses as one response message, then the prompt. */
static int scpi_finish(dw_sim_engine *e, scpi_msg *msg, dw_sim_outcome *out, dw_error *err)
{
    int rc = DW_OK;
    if (msg->nresp) {
        dw_error merr;
        dw_error_clear(&merr);
        rc = dw_marshall(e->resp_m, msg->resp->data, msg->resp->len, &out->bytes, &merr);
        if (rc != DW_OK && rc != DW_ENOMEM)
            return dw_error_set(err, DW_EINVAL, "%s: the response cannot be framed: %s", out->name,
                                dw_error_message(&merr));
        out->nframes = 1;
    }
    if (rc == DW_OK && e->script->prompt.len)
        rc = dw_buf_append(&out->bytes, e->script->prompt.data, e->script->prompt.len);
    return rc;
}

static int scpi_handle(dw_sim_engine *e, dw_sim_session *ss, const uint8_t *req, size_t n,
                       dw_sim_outcome *out, dw_error *err)
{
    sim_state *st = ss->st;
    dw_scpi_parser p;
    dw_scpi_unit u;
    scpi_msg msg = {&ss->scpi_resp, 0, 0, 0};
    dw_buf_clear(msg.resp);
    out->source = DW_SIM_BY_PROFILE;
    out->name = "scpi";
    dw_scpi_parser_init(&p, req, n);
    int rc = DW_OK, r;
    while (rc == DW_OK && !msg.stop && (r = dw_scpi_parser_next(&p, &u)) != 0) {
        int scpi_err = r;
        if (r == DW_SCPI_NOMEM)
            rc = DW_ENOMEM;
        else if (r == 1)
            rc = scpi_unit(e, ss, &u, &msg, out, &scpi_err);
        if (e->lua)
            undo_forget(ss);
        if (rc == DW_OK && scpi_err < 0) {
            dw_scpi_status_error(st->scpi, scpi_err);
            msg.stop = scpi_err > -200; /* a command error drops the rest */
        }
    }
    dw_scpi_parser_free(&p);
    if (rc == DW_OK && out->fault == DW_SIM_FAULT_NONE)
        rc = scpi_finish(e, &msg, out, err);
    if (msg.undefined) { /* dw_sim_engine_handle_at keeps its sample */
        e->unmatched++;
        out->source = DW_SIM_BY_UNMATCHED;
        out->index = SIZE_MAX;
        out->name = "unmatched";
    }
    return rc;
}

int dw_sim_engine_handle(dw_sim_engine *e, dw_sim_session *ss, const uint8_t *req, size_t n,
                         dw_sim_outcome *out, dw_error *err)
{
    double now = e->lua || dw_sim_props_timed(e->script->props) ? e->clock(e->clock_arg) : 0;
    return dw_sim_engine_handle_at(e, ss, req, n, now, out, err);
}

/* The properties' commands for a request no rule took (other profiles):
 * 1 if one took it (the answer, or on_error's, in `out`), else 0. */
static int text_props(dw_sim_engine *e, dw_sim_session *ss, const uint8_t *req, size_t n,
                      dw_sim_outcome *out, dw_error *err, int *rc)
{
    const dw_sim_script *s = e->script;
    sim_state *st = ss->st;
    dw_buf_clear(&ss->scratch);
    int r = dw_sim_props_command(st->props, req, n, st->now, &ss->scratch);
    if (r == 0 || (r < 0 && r != DW_SCPI_NOMEM && !s->has_on_error))
        return 0;
    out->source = DW_SIM_BY_PROFILE;
    out->name = r < 0 ? "on_error" : "properties";
    if (r == DW_SCPI_NOMEM) {
        *rc = DW_ENOMEM;
    } else if (r < 0) {
        captures c;
        captures_whole(&c, n);
        *rc = apply_action(e, st, s->nsteps + s->nrules + 1, &s->on_error, NULL, out->name, req, &c,
                           out, &ss->scratch, err, NULL);
    } else {
        dw_error merr;
        dw_error_clear(&merr);
        *rc = r == 1 || ss->scratch.len
                  ? dw_marshall(e->resp_m, ss->scratch.data, ss->scratch.len, &out->bytes, &merr)
                  : DW_OK;
        out->nframes = r == 1 || ss->scratch.len;
        if (*rc == DW_OK && s->prompt.len)
            *rc = dw_buf_append(&out->bytes, s->prompt.data, s->prompt.len);
        if (*rc != DW_OK && *rc != DW_ENOMEM)
            *rc = dw_error_set(err, DW_EINVAL, "properties: the answer cannot be framed: %s",
                               dw_error_message(&merr));
    }
    return 1;
}

/* The next expected step, if the request is it: MATCHED (its "if" holding)
 * or not; *rc set when a limit was noted, a chunk failed (LUA_FAILED) or
 * memory ran out. */
static int match_step(dw_sim_engine *e, dw_sim_session *ss, const uint8_t *req, size_t n,
                      captures *c, dw_sim_outcome *out, lua_call *lc, int *rc)
{
    const dw_sim_script *s = e->script;
    sim_state *st = ss->st;
    if (st->step >= s->nsteps)
        return NO_MATCH;
    const dw_sim_step *sp = &s->steps[st->step];
    int step = match(ss, &sp->expect, req, n, c);
    if (step == LIMITED)
        *rc = note_limit(e, out, DW_SIM_BY_STEP, st->step);
    else if (step == MATCHED && sp->cond && !cond_holds(lc, st->step, sp->cond, rc))
        step = NO_MATCH;
    return step;
}

/* The next step took the request: carry out its action and move on. */
static int answer_step(dw_sim_engine *e, dw_sim_session *ss, const uint8_t *req, captures *c,
                       dw_sim_outcome *out, dw_error *err, lua_call *lc)
{
    const dw_sim_script *s = e->script;
    sim_state *st = ss->st;
    size_t i = st->step++;
    out->source = DW_SIM_BY_STEP;
    out->index = i;
    out->name = s->steps[i].name ? s->steps[i].name : "step";
    int rc = apply_action(e, st, i, &s->steps[i].action, &e->step_hits[i], out->name, req, c, out,
                          &ss->scratch, err, lc);
    if (rc == LUA_FAILED)
        st->step = i;
    return rc;
}

/* No step took the request: the first rule that does, else a property's
 * command, else the unmatched behaviour. */
static int answer_rules(dw_sim_engine *e, dw_sim_session *ss, const uint8_t *req, size_t n,
                        captures *c, dw_sim_outcome *out, dw_error *err, lua_call *lc)
{
    const dw_sim_script *s = e->script;
    int rc = DW_OK;
    size_t r = find_rule(e, ss, req, n, c, out, &rc, lc);
    if (rc != DW_OK) {
        if (rc != LUA_FAILED) /* that is answered by lua_finish */
            out->name = "limit";
        return rc;
    }
    if (r != SIZE_MAX && e->pre[r].data)
        return answer_prebuilt(e, r, out);
    if (r == SIZE_MAX && ss->st->props && text_props(e, ss, req, n, out, err, &rc))
        return rc; /* a property's command */
    if (r == SIZE_MAX)
        return answer_unmatched(e, ss, req, n, c, out, err);
    out->source = DW_SIM_BY_RULE;
    out->index = r;
    out->name = s->rules[r].name ? s->rules[r].name : "rule";
    return apply_action(e, ss->st, s->nsteps + r, &s->rules[r].action, &e->rule_hits[r], out->name,
                        req, c, out, &ss->scratch, err, lc);
}

/* A request to a script of the text profiles: the next step, then the
 * rules, then the properties' commands, then the unmatched behaviour. */
static int text_handle(dw_sim_engine *e, dw_sim_session *ss, const uint8_t *req, size_t n,
                       dw_sim_outcome *out, dw_error *err)
{
    captures c;
    lua_call lcs = {e, ss, ss->st, req, n, &c, out};
    lua_call *lc = e->lua ? &lcs : NULL;
    int rc = DW_OK;
    int step = match_step(e, ss, req, n, &c, out, lc, &rc);
    if (rc != DW_OK) {
        if (rc != LUA_FAILED) /* that is answered by lua_finish */
            out->name = "limit";
    } else if (step == MATCHED) {
        rc = answer_step(e, ss, req, &c, out, err, lc);
    } else {
        rc = answer_rules(e, ss, req, n, &c, out, err, lc);
    }
    if (lc)
        rc = lua_finish(e, ss, req, n, &c, out, err, rc);
    return rc;
}

int dw_sim_engine_handle_at(dw_sim_engine *e, dw_sim_session *ss, const uint8_t *req, size_t n,
                            double now, dw_sim_outcome *out, dw_error *err)
{
    static const uint8_t none[1] = {0};
    outcome_reset(out);
    if (!req)
        req = none;
    e->requests++;
    if (ss->hung) {
        out->source = DW_SIM_BY_HUNG;
        out->name = "hung";
        return DW_OK;
    }
    ss->st->now = now;
    int rc = e->script->profile == DW_SIM_PROFILE_SCPI ? scpi_handle(e, ss, req, n, out, err)
                                                       : text_handle(e, ss, req, n, out, err);
    if (out->source == DW_SIM_BY_UNMATCHED)
        keep_sample(e, req, n);
    dw_buf *bufs[] = {&ss->scratch, &ss->scpi_resp, &ss->scpi_caps};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]->cap > DW_SIM_KEEP_BYTES) { /* after a large message (memory.h) */
            dw_buf_clear(bufs[i]);
            dw_buf_shrink(bufs[i], DW_SIM_KEEP_BYTES);
        }
    if (out->fault == DW_SIM_FAULT_HANG)
        ss->hung = 1;
    if (rc == DW_ENOMEM)
        dw_error_set(err, DW_ENOMEM, "%s: out of memory", out->name);
    return rc;
}

int dw_sim_engine_banner(dw_sim_engine *e, dw_sim_session *ss, dw_buf *out)
{
    if (e->script->banner.nsegs == 0)
        return DW_OK;
    ss->st->now = e->clock(e->clock_arg);
    return render(&e->script->banner, ss->st, NULL, NULL, out);
}

int dw_sim_engine_periodic(dw_sim_engine *e, dw_sim_session *ss, size_t i, dw_buf *out,
                           dw_error *err)
{
    if (i >= e->script->nperiodic)
        return dw_error_set(err, DW_EINVAL, "periodic[%zu]: no such message", i);
    dw_buf payload = DW_BUF_INIT;
    ss->st->now = e->clock(e->clock_arg);
    int rc = render(&e->script->periodic[i].send, ss->st, NULL, NULL, &payload);
    if (rc == DW_OK) {
        dw_error merr;
        dw_error_clear(&merr);
        rc = dw_marshall(e->resp_m, payload.data, payload.len, out, &merr);
        if (rc != DW_OK && rc != DW_ENOMEM)
            rc = dw_error_set(err, DW_EINVAL, "periodic[%zu]: cannot be framed: %s", i,
                              dw_error_message(&merr));
    }
    dw_buf_free(&payload);
    return rc;
}

uint64_t dw_sim_engine_rule_hits(const dw_sim_engine *e, size_t i)
{
    return i < e->script->nrules ? e->rule_hits[i] : 0;
}

uint64_t dw_sim_engine_step_hits(const dw_sim_engine *e, size_t i)
{
    return i < e->script->nsteps ? e->step_hits[i] : 0;
}

uint64_t dw_sim_engine_rule_limit_hits(const dw_sim_engine *e, size_t i)
{
    return i < e->script->nrules ? e->rule_limits[i] : 0;
}

uint64_t dw_sim_engine_step_limit_hits(const dw_sim_engine *e, size_t i)
{
    return i < e->script->nsteps ? e->step_limits[i] : 0;
}

uint64_t dw_sim_engine_regex_limit_hits(const dw_sim_engine *e)
{
    return e->limit_hits;
}

uint64_t dw_sim_engine_requests(const dw_sim_engine *e)
{
    return e->requests;
}

uint64_t dw_sim_engine_unmatched(const dw_sim_engine *e)
{
    return e->unmatched;
}

size_t dw_sim_engine_steps_not_reached(const dw_sim_engine *e)
{
    size_t n = 0;
    for (size_t i = 0; i < e->script->nsteps; i++)
        if (e->step_hits[i] == 0)
            n++;
    return n;
}

int dw_sim_engine_unmatched_sample(dw_sim_engine *e, size_t k, dw_buf *out)
{
    int rc = DW_ENOENT;
    if (k < e->nsamples) {
        dw_buf_clear(out);
        rc = dw_buf_append(out, e->samples[k].data, e->samples[k].len);
    }
    return rc;
}

void dw_sim_engine_lua_limits(dw_sim_engine *e, uint32_t instructions, size_t memory)
{
    if (e->lua)
        dw_sim_lua_set_limits(e->lua, instructions, memory);
}

void dw_sim_engine_set_clock(dw_sim_engine *e, double (*clock)(void *arg), void *arg)
{
    e->clock = clock ? clock : since_start;
    e->clock_arg = clock ? arg : e;
}

void dw_sim_engine_seed(dw_sim_engine *e, uint64_t seed)
{
    dw_sim_noise_seed(&e->noise, seed);
    if (e->lua)
        dw_sim_lua_seed(e->lua, seed);
}

dw_sim_props_state *dw_sim_session_props(dw_sim_session *ss)
{
    return ss->st->props;
}

size_t dw_sim_engine_lua_memory(dw_sim_engine *e)
{
    return e->lua ? dw_sim_lua_memory(e->lua) : 0;
}

uint64_t dw_sim_engine_lua_errors(const dw_sim_engine *e)
{
    return e->lua_errors;
}

uint64_t dw_sim_engine_rule_lua_errors(const dw_sim_engine *e, size_t i)
{
    return e->lua && i < e->script->nrules ? e->rule_lua_errors[i] : 0;
}

uint64_t dw_sim_engine_step_lua_errors(const dw_sim_engine *e, size_t i)
{
    return e->lua && i < e->script->nsteps ? e->step_lua_errors[i] : 0;
}

/* ---- run-time control (control.h) ------------------------------------------ */

static sim_state *state_of(dw_sim_engine *e, dw_sim_session *ss)
{
    return ss ? ss->st : &e->shared;
}

int dw_sim_engine_var_get(dw_sim_engine *e, dw_sim_session *ss, size_t i, dw_buf *out)
{
    if (i >= e->script->nvars)
        return DW_ENOENT;
    sim_state *st = state_of(e, ss);
    dw_buf_clear(out);
    return dw_buf_append(out, st->vars[i].data, st->vars[i].len);
}

int dw_sim_engine_var_set(dw_sim_engine *e, dw_sim_session *ss, size_t i, const uint8_t *p,
                          size_t n)
{
    if (i >= e->script->nvars)
        return DW_ENOENT;
    dw_buf fresh = DW_BUF_INIT;
    if (dw_buf_append(&fresh, p, n) != DW_OK)
        return DW_ENOMEM;
    sim_state *st = state_of(e, ss);
    dw_buf_free(&st->vars[i]);
    st->vars[i] = fresh;
    return DW_OK;
}

int dw_sim_engine_with_props(dw_sim_engine *e, dw_sim_session *ss,
                             int (*fn)(dw_sim_props_state *props, double now, void *arg), void *arg)
{
    sim_state *st = state_of(e, ss);
    if (!st->props)
        return DW_ENOENT;
    st->now = e->clock(e->clock_arg);
    return fn(st->props, st->now, arg);
}

size_t dw_sim_engine_next_step(dw_sim_engine *e, dw_sim_session *ss)
{
    return state_of(e, ss)->step;
}

/* What *RST puts back (variables, properties) and also the step cursor, the
 * reply turns and the SCPI status: the script's start. */
static int state_rewind(sim_state *st, const dw_sim_script *s)
{
    int rc = reset_state(s, st);
    memset(st->turns, 0, nactions(s) * sizeof *st->turns);
    st->step = 0;
    if (st->scpi) {
        dw_scpi_status *fresh = dw_scpi_status_new(s->error_queue);
        if (fresh) {
            dw_scpi_status_free(st->scpi);
            st->scpi = fresh;
        } else {
            rc = DW_ENOMEM;
        }
    }
    return rc;
}

int dw_sim_engine_reset(dw_sim_engine *e, int keep_counters)
{
    int rc = state_rewind(&e->shared, e->script);
    if (keep_counters)
        return rc;
    const dw_sim_script *s = e->script;
    for (size_t i = 0; i < s->nrules; i++) {
        e->rule_hits[i] = 0;
        e->rule_limits[i] = 0;
        if (e->lua)
            e->rule_lua_errors[i] = 0;
    }
    for (size_t i = 0; i < s->nsteps; i++) {
        e->step_hits[i] = 0;
        e->step_limits[i] = 0;
        if (e->lua)
            e->step_lua_errors[i] = 0;
    }
    e->limit_hits = 0;
    e->lua_errors = 0;
    e->requests = 0;
    e->unmatched = 0;
    for (size_t k = 0; k < e->nsamples; k++)
        dw_buf_free(&e->samples[k]);
    e->nsamples = 0;
    return rc;
}

int dw_sim_session_reset(dw_sim_session *s)
{
    s->hung = 0;
    return s->st == &s->own ? state_rewind(&s->own, s->e->script) : DW_OK;
}

void dw_sim_session_hang(dw_sim_session *s)
{
    s->hung = 1;
}
