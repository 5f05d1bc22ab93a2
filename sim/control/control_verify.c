/* devwire-sim's control API: POST /devices/NAME/verify checks what the
 * device was sent against a list of expectations, from its journal:
 *
 *   [{"request": "*RST", "count": 1, "in_order": true},
 *    {"request": "OUTP ON", "count": 1, "in_order": true},
 *    {"rule": "query-freq", "at_least": 2},
 *    {"request": {"regex": "^FREQ "}, "at_most": 3}]
 *
 * 200 when every one holds; 409 with, for each that fails, what was
 * expected, on which side it failed, what happened and the requests that
 * came nearest (by edit distance), so that a typo in the driver shows at
 * once. Items marked in_order must be met in that order: each one's first
 * match after the previous one's.
 *
 * ?wait_ms=N: a request the driver just sent may still be in the device's
 * socket, so the verification goes on as entries arrive (the journal's
 * wait, on this HTTP thread) until every expectation holds, one can no
 * longer hold (more matches than it allows), or N ms passed. A journal
 * that dropped entries cannot say what was sent: 409 unless
 * ?allow_dropped=1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control/control_int.h"
#include "device/server_int.h"

#define NEAR_KEEP  3   /* near misses reported per expectation */
#define NEAR_SCAN  500 /* the last requests looked at for near misses */
#define NEAR_BYTES 128 /* bytes of each compared */

typedef struct expectation {
    dw_sim_pattern p;
    int by_rule;
    char *near;       /* what near misses are measured against: the request
                       * pattern's text, or the rule's own "when" as written */
    long long lo, hi; /* hi < 0: no upper bound */
    int in_order;
    uint64_t count;
    uint64_t order_seq; /* in_order: the entry that met it, 0 if none */
} expectation;

typedef struct pass {
    expectation *x;
    size_t n;
    size_t next_ordered; /* the in_order expectation being looked for */
    uint64_t end;        /* the first pass counts the entries before this one */
} pass;

/* A sample of recent requests to look for near misses in. */
typedef struct sample {
    uint64_t seq;
    char match[64]; /* what answered it */
    uint8_t req[NEAR_BYTES];
    size_t len;
    int text;
} sample;

typedef struct samples {
    sample *s; /* a ring of NEAR_SCAN */
    size_t n, at;
} samples;

static int parse_bound(const cJSON *item, const char *key, long long *v, char *where,
                       size_t where_size, size_t i)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(item, key);
    if (!f)
        return 0;
    if (!cJSON_IsNumber(f) || f->valuedouble < 0 || f->valuedouble > 1e15 ||
        f->valuedouble != (double)(long long)f->valuedouble) {
        snprintf(where, where_size, "body[%zu].%s", i, key);
        return -1;
    }
    *v = (long long)f->valuedouble;
    return 1;
}

/* One expectation from body[i]: 0, or -1 with where and why. */
static int parse_one(const cJSON *item, size_t i, expectation *x, char *where, size_t ws, char *why,
                     size_t wys)
{
    snprintf(where, ws, "body[%zu]", i);
    if (!cJSON_IsObject(item))
        return snprintf(why, wys, "expected an object"), -1;
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(item, "request");
    const cJSON *rule = cJSON_GetObjectItemCaseSensitive(item, "rule");
    if (!req == !rule)
        return snprintf(why, wys, "expected one of \"request\" and \"rule\""), -1;
    dw_error err;
    dw_error_clear(&err);
    int rc;
    if (rule) {
        snprintf(where, ws, "body[%zu].rule", i);
        x->by_rule = 1;
        rc = cJSON_IsString(rule)
                 ? dw_sim_pattern_make(&x->p, "rule", (const uint8_t *)rule->valuestring,
                                       strlen(rule->valuestring), &err)
                 : dw_error_set(&err, DW_EINVAL, "expected a rule's name");
    } else if (cJSON_IsString(req)) {
        snprintf(where, ws, "body[%zu].request", i);
        rc = dw_sim_pattern_make(&x->p, "request", (const uint8_t *)req->valuestring,
                                 strlen(req->valuestring), &err);
    } else {
        snprintf(where, ws, "body[%zu].request", i);
        rc = dw_sim_pattern_from_json(&x->p, req, &err);
    }
    if (rc != DW_OK)
        return snprintf(why, wys, "%s", dw_error_message(&err)), -1;
    long long count = -1;
    int got = 0, r;
    x->lo = 1;
    x->hi = -1;
    if ((r = parse_bound(item, "count", &count, where, ws, i)) < 0)
        return snprintf(why, wys, "expected a whole number"), -1;
    if (r > 0)
        x->lo = x->hi = count, got++;
    if ((r = parse_bound(item, "at_least", &x->lo, where, ws, i)) < 0)
        return snprintf(why, wys, "expected a whole number"), -1;
    got += r;
    if ((r = parse_bound(item, "at_most", &x->hi, where, ws, i)) < 0)
        return snprintf(why, wys, "expected a whole number"), -1;
    if (r > 0 && !cJSON_GetObjectItemCaseSensitive(item, "at_least"))
        x->lo = 0;
    if (got > 1 || (count >= 0 && r > 0))
        return snprintf(where, ws, "body[%zu]", i),
               snprintf(why, wys, "count goes alone; at_least and at_most may go together"), -1;
    const cJSON *order = cJSON_GetObjectItemCaseSensitive(item, "in_order");
    if (order && !cJSON_IsBool(order))
        return snprintf(where, ws, "body[%zu].in_order", i),
               snprintf(why, wys, "expected true or false"), -1;
    x->in_order = cJSON_IsTrue(order);
    return 0;
}

static int count_one(const dw_sim_journal_entry *e, void *arg)
{
    pass *p = arg;
    for (size_t i = 0; i < p->n; i++)
        if (dw_sim_pattern_match(&p->x[i].p, e->req, e->req_len, e->match))
            p->x[i].count++;
    while (p->next_ordered < p->n && !p->x[p->next_ordered].in_order)
        p->next_ordered++;
    if (p->next_ordered < p->n) {
        expectation *x = &p->x[p->next_ordered];
        if (dw_sim_pattern_match(&x->p, e->req, e->req_len, e->match)) {
            x->order_seq = e->seq;
            p->next_ordered++;
        }
    }
    return 0;
}

static int keep_sample(const dw_sim_journal_entry *e, void *arg)
{
    samples *s = arg;
    sample *k = &s->s[s->at];
    s->at = (s->at + 1) % NEAR_SCAN;
    if (s->n < NEAR_SCAN)
        s->n++;
    k->seq = e->seq;
    snprintf(k->match, sizeof k->match, "%s", e->match ? e->match : "");
    k->len = e->req_len < NEAR_BYTES ? e->req_len : NEAR_BYTES;
    memcpy(k->req, e->req ? e->req : (const uint8_t *)"", k->len);
    return 0;
}

/* Levenshtein distance, two rows. */
static size_t distance(const uint8_t *a, size_t n, const uint8_t *b, size_t m, size_t *row)
{
    size_t *prev = row, *cur = row + m + 1;
    for (size_t j = 0; j <= m; j++)
        prev[j] = j;
    for (size_t i = 1; i <= n; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        size_t *t = prev;
        prev = cur;
        cur = t;
    }
    return prev[m];
}

/* The NEAR_KEEP samples nearest the expectation's text (not matching it,
 * each request once), as a JSON list. */
static cJSON *near_misses(expectation *x, const samples *s)
{
    cJSON *list = cJSON_CreateArray();
    const uint8_t *ref = x->near ? (const uint8_t *)x->near : x->p.bytes;
    size_t rlen = x->near ? strlen(x->near) : x->p.len;
    if (!list || !ref || !s->n)
        return list;
    size_t plen = rlen < NEAR_BYTES ? rlen : NEAR_BYTES;
    size_t *row = malloc(2 * (NEAR_BYTES + 1) * sizeof *row);
    size_t best[NEAR_KEEP], dist[NEAR_KEEP], nbest = 0;
    for (size_t k = 0; row && k < s->n; k++) {
        const sample *c = &s->s[k];
        if (dw_sim_pattern_match(&x->p, c->req, c->len, x->by_rule ? c->match : NULL))
            continue;
        int seen = 0;
        for (size_t b = 0; b < nbest; b++)
            seen |= s->s[best[b]].len == c->len && memcmp(s->s[best[b]].req, c->req, c->len) == 0;
        if (seen)
            continue;
        size_t d = distance(ref, plen, c->req, c->len, row);
        size_t at = nbest < NEAR_KEEP ? nbest++ : NEAR_KEEP;
        while (at > 0 && dist[at - 1] > d) {
            if (at < NEAR_KEEP) {
                best[at] = best[at - 1];
                dist[at] = dist[at - 1];
            }
            at--;
        }
        if (at < NEAR_KEEP) {
            best[at] = k;
            dist[at] = d;
        }
    }
    for (size_t b = 0; b < nbest; b++) {
        const sample *c = &s->s[best[b]];
        dw_sim_journal_entry e = {0};
        e.seq = c->seq;
        e.req = (uint8_t *)c->req;
        e.req_len = e.req_total = c->len;
        cJSON *o = cJSON_CreateObject(), *full = dw_sim_journal_entry_json(&e);
        if (o && full) {
            cJSON_AddNumberToObject(o, "seq", (double)c->seq);
            cJSON_AddItemToObject(o, "request", cJSON_DetachItemFromObject(full, "request"));
            cJSON_AddNumberToObject(o, "distance", (double)dist[b]);
            cJSON_AddItemToArray(list, o);
        } else {
            cJSON_Delete(o);
        }
        cJSON_Delete(full);
    }
    free(row);
    return list;
}

static const char *describe(const expectation *x, char *buf, size_t n)
{
    if (x->hi == x->lo)
        snprintf(buf, n, "exactly %lld", x->lo);
    else if (x->hi < 0)
        snprintf(buf, n, "at least %lld", x->lo);
    else if (x->lo == 0)
        snprintf(buf, n, "at most %lld", x->hi);
    else
        snprintf(buf, n, "from %lld to %lld", x->lo, x->hi);
    return buf;
}

/* 1 when x's count is known to be within its bounds: the requests on which
 * its regex hit a limit (counted as no match) might have matched, so they
 * must not be able to push the count past the upper bound either. */
static int count_holds(const expectation *x)
{
    long long most = (long long)(x->count + x->p.limited);
    return (long long)x->count >= x->lo && (x->hi < 0 || most <= x->hi);
}

/* 1 when x can no longer hold however many requests come: more matched
 * (or may have matched, past a regex's limits) than it allows. */
static int count_final(const expectation *x)
{
    return x->hi >= 0 && (long long)(x->count + x->p.limited) > x->hi;
}

/* 1 when waiting cannot change the verdict: every expectation holds (in
 * order too), or one can no longer hold. */
static int settled(const pass *p)
{
    int all = 1, broken = 0;
    for (size_t i = 0; i < p->n; i++) {
        const expectation *x = &p->x[i];
        if (count_final(x))
            return 1;
        if (x->in_order && (broken || !x->order_seq))
            broken = 1, all = 0;
        if (!count_holds(x))
            all = 0;
    }
    return all;
}

/* The first pass: the entries before p->end. */
static int count_before(const dw_sim_journal_entry *e, void *arg)
{
    const pass *p = arg;
    return e->seq >= p->end ? 1 : count_one(e, arg);
}

/* While waiting: each new entry once, in order; 1 stops the wait. */
static int count_new(const dw_sim_journal_entry *e, void *arg)
{
    count_one(e, arg);
    return settled(arg);
}

/* The failure report for x (index i), or NULL when it holds. */
static cJSON *failure(expectation *x, size_t i, const cJSON *item, int order_failed,
                      const samples *s)
{
    int count_ok = count_holds(x);
    if (count_ok && !order_failed)
        return NULL;
    char want[64];
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "index", (double)i);
    cJSON_AddItemToObject(o, "expected", cJSON_Duplicate(item, 1));
    cJSON_AddNumberToObject(o, "actual", (double)x->count);
    /* Which way it missed: below its lower bound, past its upper one
     * (counting what a regex could not decide on), or out of order. */
    cJSON_AddStringToObject(o, "side",
                            count_ok                      ? "order"
                            : (long long)x->count < x->lo ? "too_few"
                                                          : "too_many");
    char msg[300];
    if (x->p.limited)
        cJSON_AddNumberToObject(o, "limited", (double)x->p.limited);
    if (!count_ok && x->p.limited)
        snprintf(msg, sizeof msg,
                 "expected %s matching %s %s, got %llu, and the regex hit its match limits on "
                 "%llu more (counted as no match, so the count is not known)",
                 describe(x, want, sizeof want), x->by_rule ? "rule" : "request",
                 (const char *)x->p.bytes, (unsigned long long)x->count,
                 (unsigned long long)x->p.limited);
    else if (!count_ok)
        snprintf(msg, sizeof msg, "expected %s matching %s %s, got %llu",
                 describe(x, want, sizeof want), x->by_rule ? "rule" : "request",
                 (const char *)x->p.bytes, (unsigned long long)x->count);
    else
        snprintf(msg, sizeof msg, "%s %s did not come after the expectation before it",
                 x->by_rule ? "rule" : "request", (const char *)x->p.bytes);
    cJSON_AddStringToObject(o, "message", msg);
    cJSON_AddItemToObject(o, "near_misses", near_misses(x, s));
    return o;
}

typedef struct text_job {
    ctl_device *d;
    const char *name;
    char *text;
} text_job;

static void find_rule_text(void *arg)
{
    text_job *t = arg;
    const dw_sim_script *s = t->d->server->gen->script;
    const dw_sim_match *m = NULL;
    for (size_t i = 0; !m && i < s->nrules; i++)
        if (s->rules[i].name && strcmp(s->rules[i].name, t->name) == 0)
            m = &s->rules[i].when;
    for (size_t i = 0; !m && i < s->nsteps; i++)
        if (s->steps[i].name && strcmp(s->steps[i].name, t->name) == 0)
            m = &s->steps[i].expect;
    t->text = m && m->source ? strdup(m->source) : NULL;
}

/* The "when" (or "expect") as written of the rule or step named `name`, a
 * copy the caller frees, or NULL: what its near misses are measured
 * against. Read on the device's loop, as a PUT .../script may replace it. */
static char *rule_text(ctl_device *d, const char *name)
{
    text_job t = {d, name, NULL};
    dw_sim_loop_call(t.d->server->loop, find_rule_text, &t);
    return t.text;
}

/* What the verification saw besides the expectations. */
typedef struct outcome {
    uint64_t dropped; /* entries the journal dropped */
    int allow_dropped;
    long long waited_ms;
} outcome;

/* The 409 of a journal that dropped entries: what was sent is not known. */
static void dropped_error(cJSON *o, uint64_t dropped)
{
    char msg[400];
    snprintf(msg, sizeof msg,
             "the journal dropped %llu entries (since the start or the last reset), so it cannot "
             "say what the device was sent; start it with a larger --journal, reset it before "
             "the requests to verify, or pass allow_dropped=1 to verify what it holds",
             (unsigned long long)dropped);
    cJSON_DeleteItemFromObjectCaseSensitive(o, "error");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "where");
    cJSON_AddStringToObject(o, "error", msg);
    cJSON_AddStringToObject(o, "where", "journal");
    cJSON_ReplaceItemInObjectCaseSensitive(o, "ok", cJSON_CreateFalse());
}

static void report(dw_sim_journal *j, const cJSON *body, expectation *x, size_t n,
                   const outcome *how, dw_sim_http_response *r)
{
    samples s = {calloc(NEAR_SCAN, sizeof(sample)), 0, 0};
    cJSON *fails = cJSON_CreateArray();
    int ordered_broken = 0, sampled = 0;
    for (size_t i = 0; fails && i < n; i++) {
        int order_failed = x[i].in_order && (ordered_broken || !x[i].order_seq);
        if (order_failed)
            ordered_broken = 1;
        int count_ok = count_holds(&x[i]);
        if ((!count_ok || order_failed) && !sampled && s.s) {
            dw_sim_journal_each(j, 1, keep_sample, &s); /* the last NEAR_SCAN stay */
            sampled = 1;
        }
        cJSON *f = failure(&x[i], i, cJSON_GetArrayItem(body, (int)i), order_failed, &s);
        if (f)
            cJSON_AddItemToArray(fails, f);
    }
    free(s.s);
    cJSON *o = cJSON_CreateObject();
    int nfail = cJSON_GetArraySize(fails);
    int refused = how->dropped && !how->allow_dropped;
    if (o && fails) {
        cJSON_AddBoolToObject(o, "ok", nfail == 0);
        cJSON_AddNumberToObject(o, "expectations", (double)n);
        cJSON_AddNumberToObject(o, "journal_dropped", (double)how->dropped);
        cJSON_AddNumberToObject(o, "waited_ms", (double)how->waited_ms);
        if (nfail) {
            char msg[80];
            snprintf(msg, sizeof msg, "%d of %zu expectations failed", nfail, n);
            cJSON_AddStringToObject(o, "error", msg);
            cJSON_AddStringToObject(o, "where", "body");
        }
        if (refused)
            dropped_error(o, how->dropped);
        cJSON_AddItemToObject(o, "failures", fails);
        fails = NULL;
    } else {
        cJSON_Delete(o);
        o = NULL;
    }
    cJSON_Delete(fails);
    dw__ctl_json(r, nfail || refused ? 409 : 200, o);
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Count the journal's entries into x, then, for up to wait_ms, the ones
 * that come until the verdict is settled; then answer. */
static void check(dw_sim_journal *j, const cJSON *body, expectation *x, size_t n, long long wait_ms,
                  outcome *how, dw_sim_http_response *r)
{
    pass p = {x, n, 0, dw_sim_journal_next_seq(j)};
    dw_sim_journal_each(j, 1, count_before, &p);
    int rc = DW_OK;
    if (wait_ms > 0 && !settled(&p) && (how->allow_dropped || !dw_sim_journal_dropped(j))) {
        long long t0 = mono_ms();
        dw_sim_journal_entry e;
        memset(&e, 0, sizeof e);
        rc = dw_sim_journal_wait(j, p.end, NULL, count_new, &p, (int)wait_ms, &e);
        dw_sim_journal_entry_free(&e);
        how->waited_ms = mono_ms() - t0;
    }
    how->dropped = dw_sim_journal_dropped(j);
    if (rc == DW_OK || rc == DW_ETIMEDOUT)
        report(j, body, x, n, how, r);
    else
        dw__ctl_error(r, rc == DW_ECANCELED ? 503 : 500, "", "the verification's wait ended: %s",
                      dw_strerror(rc));
}

/* ?wait_ms= and ?allow_dropped=: 0, or -1 after answering 422. */
static int verify_query(const ctl_call *call, long long *wait_ms, outcome *how)
{
    long long allow = 0;
    if (dw__ctl_query_number(call->req, "wait_ms", 0, call->c->o.max_wait_ms, wait_ms, call->r) <
            0 ||
        dw__ctl_query_number(call->req, "allow_dropped", 0, 1, &allow, call->r) < 0)
        return -1;
    how->allow_dropped = allow == 1;
    return 0;
}

static void verify(const ctl_call *call, const cJSON *body)
{
    dw_sim_http_response *r = call->r;
    dw_sim_journal *j = dw_sim_devctl_journal(call->d->dev);
    long long wait_ms = 0;
    outcome how = {0, 0, 0};
    if (verify_query(call, &wait_ms, &how) != 0)
        return;
    if (!cJSON_IsArray(body)) {
        dw__ctl_error(r, 422, "body", "expected a list of expectations");
        return;
    }
    size_t n = (size_t)cJSON_GetArraySize(body);
    expectation *x = calloc(n ? n : 1, sizeof *x);
    if (!x) {
        dw__ctl_json(r, 500, NULL);
        return;
    }
    char where[64], why[300];
    size_t i = 0;
    for (const cJSON *item = body->child; item; item = item->next, i++)
        if (parse_one(item, i, &x[i], where, sizeof where, why, sizeof why) != 0) {
            dw__ctl_error(r, 422, where, "%s", why);
            break;
        }
    for (size_t k = 0; i == n && k < n; k++)
        if (x[k].by_rule)
            x[k].near = rule_text(call->d, (const char *)x[k].p.bytes);
    if (i == n)
        check(j, body, x, n, wait_ms, &how, r);
    for (size_t k = 0; k < n; k++) {
        dw_sim_pattern_free(&x[k].p);
        free(x[k].near);
    }
    free(x);
}

void dw__ctl_verify_post(const ctl_call *call)
{
    cJSON *body = dw__ctl_parse_body(call->req, call->r, 1);
    if (body)
        verify(call, body);
    cJSON_Delete(body);
}
