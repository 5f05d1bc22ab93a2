/* devwire-sim's engine: matching a request (the exact-match table, regexes
 * with their limits), rendering templates, "set", and carrying out a step's
 * or rule's action (engine_int.h). */
#include "engine/engine_int.h"
#include "common/memory.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

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

static void note_regex(dw_sim_engine *e, const dw_sim_match *m)
{
    if (m->kind != DW_SIM_MATCH_REGEX)
        return;
    e->has_regex = 1;
    e->has_jit |= m->jit;
}

/* Put exact rule i in the table, or behind the earlier rule with the same
 * bytes. */
static void index_exact(dw_sim_engine *e, size_t i)
{
    const dw_sim_match *m = &e->script->rules[i].when;
    uint64_t h = hash_bytes(m->bytes.data, m->bytes.len);
    for (size_t j = (size_t)h & e->mask;; j = (j + 1) & e->mask) {
        struct slot *sl = &e->slots[j];
        if (sl->rule == SIZE_MAX) {
            sl->hash = h;
            sl->rule = i;
            sl->len = m->bytes.len;
            sl->key = m->bytes.data;
            return;
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
            return;
        }
    }
}

/* The exact-match table and the list of non-exact rules (engine.h,
 * "Matching order"), and whether any step or rule matches with a regex.
 * DW_OK or DW_ENOMEM. */
int dw__engine_index(dw_sim_engine *e)
{
    const dw_sim_script *script = e->script;
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
    if (!e->slots)
        return DW_ENOMEM;
    e->mask = cap - 1;
    for (size_t i = 0; i < cap; i++)
        e->slots[i].rule = SIZE_MAX;
    for (size_t i = 0; i < script->nrules; i++)
        if (script->rules[i].when.kind == DW_SIM_MATCH_EXACT)
            index_exact(e, i);
    return DW_OK;
}

/* Build rule `r`'s answer now if it is fixed; leave p->data NULL if not (or
 * if it cannot be framed: handling reports that at run time). */
static void prebuild(const dw_sim_engine *e, const dw_sim_rule *r, struct prebuilt *p)
{
    const dw_sim_action *a = &r->action;
    if (a->fault != DW_SIM_FAULT_NONE || a->nsets || a->lua || a->nreplies != 1 ||
        a->after_last != DW_SIM_REPEAT_LAST || a->net || a->then)
        return;
    for (size_t f = 0; f < a->nframes[0]; f++)
        for (size_t g = 0; g < a->replies[0][f].nsegs; g++)
            if (a->replies[0][f].segs[g].kind != DW_SIM_SEG_LITERAL)
                return;
    dw_buf out = DW_BUF_INIT, payload = DW_BUF_INIT;
    int rc = DW_OK;
    for (size_t f = 0; f < a->nframes[0] && rc == DW_OK; f++) {
        dw_buf_clear(&payload);
        rc = dw__engine_render(&a->replies[0][f], NULL, NULL, NULL, &payload);
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

/* Every rule's answer that never changes, built once (prebuild). */
void dw__engine_prebuild(dw_sim_engine *e)
{
    for (size_t i = 0; i < e->script->nrules; i++)
        prebuild(e, &e->script->rules[i], &e->pre[i]);
}

/* The session's regex matching objects, limits set (see engine.h). */
int dw__engine_session_regex(dw_sim_session *s)
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

void dw__engine_captures_whole(captures *c, size_t n)
{
    for (int i = 0; i < NCAP; i++)
        c->so[i] = c->eo[i] = PCRE2_UNSET;
    c->so[0] = 0;
    c->eo[0] = n;
    c->channel = 0;
    c->chan_pos = 0;
}

static int match_regex(dw_sim_session *ss, const dw_sim_match *m, const uint8_t *req, size_t n,
                       captures *c)
{
    pcre2_set_match_limit(ss->mc, dw_sim_regex_match_limit(m->anchored, n));
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
    dw__engine_captures_whole(c, n);
    for (int i = 1; i < NCAP && i < set; i++) {
        c->so[i] = ov[2 * i];
        c->eo[i] = ov[2 * i + 1];
    }
    return MATCHED;
}

int dw__engine_match(dw_sim_session *ss, const dw_sim_match *m, const uint8_t *req, size_t n,
                     captures *c)
{
    switch (m->kind) {
    case DW_SIM_MATCH_EXACT:
        if (m->bytes.len != n || (n && memcmp(m->bytes.data, req, n) != 0))
            return NO_MATCH;
        dw__engine_captures_whole(c, n);
        return MATCHED;
    case DW_SIM_MATCH_PREFIX:
        if (m->bytes.len > n || (m->bytes.len && memcmp(m->bytes.data, req, m->bytes.len) != 0))
            return NO_MATCH;
        dw__engine_captures_whole(c, n);
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
int dw__engine_note_limit(dw_sim_engine *e, dw_sim_outcome *out, dw_sim_source src, size_t index)
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
            int m = dw__engine_match(ss, &s->rules[r].when, req, n, c);
            if (m == LIMITED && (*rc = dw__engine_note_limit(e, out, DW_SIM_BY_RULE, r)) != DW_OK)
                return SIZE_MAX;
            if (m != MATCHED)
                continue;
        } else if (exact != SIZE_MAX) {
            r = exact;
            exact = e->same_next[r];
            dw__engine_captures_whole(c, n);
        } else {
            return SIZE_MAX;
        }
        if (dw__engine_cond_holds(lc, s->nsteps + r, s->rules[r].cond, rc))
            return r;
        if (*rc != DW_OK)
            return SIZE_MAX;
    }
}

/* The first rule that matches (and whose "if" holds), or SIZE_MAX (DW_ENOMEM
 * or LUA_FAILED in *rc). */
size_t dw__engine_find_rule(dw_sim_engine *e, dw_sim_session *ss, const uint8_t *req, size_t n,
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
        int m = dw__engine_match(ss, &s->rules[e->inexact[k]].when, req, n, c);
        if (m == MATCHED)
            return e->inexact[k];
        if (m == LIMITED &&
            (*rc = dw__engine_note_limit(e, out, DW_SIM_BY_RULE, e->inexact[k])) != DW_OK)
            return SIZE_MAX;
    }
    if (exact != SIZE_MAX)
        dw__engine_captures_whole(c, n);
    return exact;
}

/* A channel number in decimal (no printf: it is on every answer). */
static int append_channel(dw_buf *out, unsigned v)
{
    char d[12];
    size_t i = sizeof d;
    do
        d[--i] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    return dw_buf_append(out, d + i, sizeof d - i);
}

int dw__engine_render(const dw_sim_template *t, const sim_state *st, const uint8_t *req,
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
        case DW_SIM_SEG_CHANNEL:
            if (c)
                rc = append_channel(out, c->channel);
            break;
        case DW_SIM_SEG_PROP_CHANNEL:
            if (c)
                rc = dw_sim_prop_print(st->props, g->by_channel[c->chan_pos], st->now, 0, out);
            break;
        case DW_SIM_SEG_LUA: /* render_value runs it */
            break;
        }
        if (rc != DW_OK)
            return rc;
    }
    return DW_OK;
}

/* A template, or a {"lua": ...} value of action `id`. */
int dw__engine_render_value(lua_call *lc, size_t id, const dw_sim_template *t, const sim_state *st,
                            const uint8_t *req, const captures *c, dw_buf *out)
{
    if (lc && t->nsegs == 1 && t->segs[0].kind == DW_SIM_SEG_LUA)
        return dw__engine_lua_eval(lc, id, t->segs[0].lua, NULL, out);
    return dw__engine_render(t, st, req, c, out);
}

/* "set" of action `id`: render every value against the old state, then
 * assign (keeping the old values when the script has Lua: see undo_all). */
int dw__engine_apply_sets(sim_state *st, const dw_sim_action *a, const uint8_t *req,
                          const captures *c, lua_call *lc, size_t id)
{
    if (!a->nsets)
        return DW_OK;
    dw_buf *vals = calloc(a->nsets, sizeof *vals);
    if (!vals)
        return DW_ENOMEM;
    int rc = DW_OK;
    for (size_t i = 0; i < a->nsets && rc == DW_OK; i++)
        rc = dw__engine_render_value(lc, id, &a->sets[i].value, st, req, c, &vals[i]);
    for (size_t i = 0; i < a->nsets; i++) {
        const dw_sim_set *set = &a->sets[i];
        if (rc == DW_OK && set->prop) {
            size_t var = set->by_channel && c ? set->by_channel[c->chan_pos] : set->var;
            rc = dw__engine_set_prop_text(lc, st, var, &vals[i]);
        } else if (rc == DW_OK && lc) {
            rc = dw__engine_state_assign(lc->ss, st, a->sets[i].var, &vals[i]);
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
int dw__engine_faults(const dw_sim_engine *e, const dw_sim_action *a, uint64_t nth)
{
    if (a->fault == DW_SIM_FAULT_NONE || (a->fault_on != 0 && nth != a->fault_on))
        return 0;
    return !a->net || !e->rng || dw_sim_rng_chance(e->rng, a->net->probability);
}

/* The delay before answering: a draw of a rule's "delay", or delay_ms. */
unsigned dw__engine_action_delay(const dw_sim_engine *e, const dw_sim_action *a)
{
    if (a->net && a->net->has_delay && e->rng)
        return dw_sim_delay_draw(&a->net->delay, e->rng);
    return a->delay_ms;
}

/* Which reply of the list, if any (SIZE_MAX: none); advances the turn. */
size_t dw__engine_pick_reply(sim_state *st, size_t action_id, const dw_sim_action *a)
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
    out->delay_ms = dw__engine_action_delay(e, a);
    out->split = a->split;
    out->nsplit = a->nsplit;
    out->split_delay_ms = a->split_delay_ms;
    out->close = a->then;

    if (dw__engine_faults(e, a, nth)) {
        out->fault = a->fault;
        if (a->fault == DW_SIM_FAULT_GARBAGE)
            return dw_buf_append(&out->bytes, a->garbage.data, a->garbage.len);
        if (a->fault != DW_SIM_FAULT_DUPLICATE) /* the reply goes out twice */
            return DW_OK;
    }
    int rc = dw__engine_apply_sets(st, a, req, c, lc, action_id);
    if (rc == DW_OK && a->lua)
        rc = dw__engine_lua_eval(lc, action_id, a->lua, NULL, NULL);
    if (rc != DW_OK)
        return rc;
    size_t pick = dw__engine_pick_reply(st, action_id, a);
    if (pick != SIZE_MAX) {
        for (size_t f = 0; f < a->nframes[pick]; f++) {
            dw_buf_clear(payload);
            rc = dw__engine_render_value(lc, action_id, &a->replies[pick][f], st, req, c, payload);
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
    if (s->prompt.len && !a->then) /* a session that ends shows no prompt */
        return dw_buf_append(&out->bytes, s->prompt.data, s->prompt.len);
    return DW_OK;
}

/* Carry out action `action_id` (its "set", "lua" and reply). When a chunk of
 * Lua fails (LUA_FAILED) its reply turn and match count are as before. */
int dw__engine_apply_action(dw_sim_engine *e, sim_state *st, size_t action_id,
                            const dw_sim_action *a, uint64_t *hits, const char *name,
                            const uint8_t *req, const captures *c, dw_sim_outcome *out,
                            dw_buf *payload, dw_error *err, lua_call *lc)
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

void dw__engine_keep_sample(dw_sim_engine *e, const uint8_t *req, size_t n)
{
    if (e->nsamples < DW_SIM_UNMATCHED_KEEP) {
        dw_buf *b = &e->samples[e->nsamples];
        dw_buf_init(b);
        if (dw_buf_append(b, req, n > 256 ? 256 : n) == DW_OK)
            e->nsamples++;
    }
}

/* Nothing fitted the request (or a chunk of Lua failed on it): the
 * "unmatched" behaviour. */
int dw__engine_answer_unmatched(dw_sim_engine *e, dw_sim_session *ss, const uint8_t *req, size_t n,
                                captures *c, dw_sim_outcome *out, dw_error *err)
{
    const dw_sim_script *s = e->script;
    dw_buf_clear(&out->bytes);
    out->nframes = 0;
    out->fault = DW_SIM_FAULT_NONE;
    out->source = DW_SIM_BY_UNMATCHED;
    out->index = SIZE_MAX;
    out->name = "unmatched";
    dw__engine_captures_whole(c, n);
    /* The unmatched counter doubles as its match count (fault_on). */
    int rc = dw__engine_apply_action(e, ss->st, s->nsteps + s->nrules, &s->unmatched, &e->unmatched,
                                     out->name, req, c, out, &ss->scratch, err, NULL);
    return rc;
}

/* The end of a request to a script with Lua. If a chunk failed (rc is
 * LUA_FAILED), undo what the request changed and answer it as unmatched.
 * Then forget the old values. */
int dw__engine_lua_finish(dw_sim_engine *e, dw_sim_session *ss, const uint8_t *req, size_t n,
                          captures *c, dw_sim_outcome *out, dw_error *err, int rc)
{
    if (rc == LUA_FAILED) {
        dw__engine_undo_all(ss, ss->st);
        rc = dw__engine_answer_unmatched(e, ss, req, n, c, out, err);
    }
    dw__engine_undo_forget(ss);
    return rc;
}

/* Answer with rule r's prebuilt bytes. */
int dw__engine_answer_prebuilt(dw_sim_engine *e, size_t r, dw_sim_outcome *out)
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
