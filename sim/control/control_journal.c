/* devwire-sim's control API: a server's journal, the requests it was sent
 * and what answered them: GET /devices/NAME/journal?since=&limit=&tail=
 * reads it, GET .../journal/wait?since=&timeout_ms=&match= waits (on this
 * HTTP thread, never the loop) for a request matching a pattern. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/control_int.h"
#include "observe/journal.h"
#include "observe/pattern.h"

#define JOURNAL_LIMIT 10000 /* entries in one answer at most */
#define DEFAULT_LIMIT 100
#define DEFAULT_WAIT  5000

void dw__ctl_journal_get(const ctl_call *call)
{
    const dw_sim_http_request *req = call->req;
    dw_sim_http_response *r = call->r;
    long long since = 1, limit = DEFAULT_LIMIT, tail = 0;
    if (dw__ctl_query_number(req, "since", 0, (long long)1 << 53, &since, r) < 0 ||
        dw__ctl_query_number(req, "limit", 1, JOURNAL_LIMIT, &limit, r) < 0 ||
        dw__ctl_query_number(req, "tail", 1, JOURNAL_LIMIT, &tail, r) < 0)
        return;
    dw_sim_journal *jn = dw__ctl_journal_of(call->d);
    if (tail) { /* the last `tail` entries */
        long long next = (long long)dw_sim_journal_next_seq(jn);
        since = next - tail > 1 ? next - tail : 1;
        limit = tail;
    }
    uint64_t dropped = dw_sim_journal_dropped(jn), first = 0;
    dw_sim_journal_entry *e = NULL;
    size_t n = 0;
    int rc = dw_sim_journal_read(jn, (uint64_t)since, (size_t)limit, &e, &n, &first);
    cJSON *o = cJSON_CreateObject(), *list = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON *item = rc == DW_OK && list ? dw_sim_journal_entry_json(&e[i]) : NULL;
        if (!item)
            rc = DW_ENOMEM;
        else
            cJSON_AddItemToArray(list, item);
        dw_sim_journal_entry_free(&e[i]);
    }
    free(e);
    if (rc != DW_OK || !o || !list) {
        cJSON_Delete(o);
        cJSON_Delete(list);
        dw__ctl_json(r, 500, NULL);
        return;
    }
    cJSON *last = cJSON_GetArrayItem(list, (int)n - 1);
    uint64_t next = last ? (uint64_t)cJSON_GetObjectItem(last, "seq")->valuedouble + 1
                         : dw_sim_journal_next_seq(jn);
    if (!last && (uint64_t)since > next)
        next = (uint64_t)since;
    cJSON_AddItemToObject(o, "entries", list);
    cJSON_AddNumberToObject(o, "next", (double)next);
    cJSON_AddNumberToObject(o, "dropped", (double)dropped);
    /* Entries between `since` and the first one held were dropped. */
    if (!first)
        first = dw_sim_journal_next_seq(jn);
    cJSON_AddBoolToObject(o, "missed", dropped && (uint64_t)since < first);
    dw__ctl_json(r, 200, o);
}

static int wait_pred(const dw_sim_journal_entry *e, void *arg)
{
    return dw_sim_pattern_match(arg, e->req, e->req_len, e->match);
}

/* The wait's pattern from match=, rule=, request=, prefix= or regex=, and
 * its text as "kind=text" in key (waits with the same key share their
 * tests): 0 (ANY, key "" when none), or -1 after answering 422. */
static int query_pattern(const dw_sim_http_request *req, dw_sim_pattern *p, char *key, size_t size,
                         dw_sim_http_response *r)
{
    static const char *const keys[] = {"match", "rule", "request", "prefix", "regex"};
    char text[MAX_SEGMENT * 4], where[32];
    memset(p, 0, sizeof *p);
    *key = 0;
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        int got = dw__ctl_query_get(req->query, keys[k], text, sizeof text);
        snprintf(where, sizeof where, "query.%s", keys[k]);
        if (got < 0) {
            dw__ctl_error(r, 422, where, "%s: badly encoded or too long", keys[k]);
            return -1;
        }
        if (got == 0)
            continue;
        dw_error err;
        dw_error_clear(&err);
        if (dw_sim_pattern_make(p, keys[k], (const uint8_t *)text, strlen(text), &err) != DW_OK) {
            dw__ctl_error(r, 422, where, "%s", dw_error_message(&err));
            return -1;
        }
        snprintf(key, size, "%s=%s", keys[k], text);
        return 0;
    }
    return 0;
}

/* What an exact pattern can match, for the journal's index: the request's
 * bytes, the name of what answered, or either. */
static void want_exact(const dw_sim_pattern *p, dw_sim_journal_want *want)
{
    int request = p->kind == DW_SIM_PATTERN_EITHER || p->kind == DW_SIM_PATTERN_REQUEST;
    int name = p->kind == DW_SIM_PATTERN_EITHER || p->kind == DW_SIM_PATTERN_RULE;
    if (request) {
        want->request = p->bytes;
        want->request_len = p->len;
    }
    if (name)
        want->name = (const char *)p->bytes;
}

/* 408, saying how many requests the regex could not decide on (it hit its
 * match limits: counted as no match) in "limited". */
static void timed_out(dw_sim_http_response *r, const dw_sim_pattern *p, const char *device,
                      long long timeout)
{
    char msg[600], extra[160] = "";
    if (p->limited)
        snprintf(extra, sizeof extra,
                 "; the regex hit its match limits on %llu request(s), counted as no match",
                 (unsigned long long)p->limited);
    snprintf(msg, sizeof msg, "no request matching %s on device %s within %lld ms%s",
             p->bytes ? (const char *)p->bytes : "anything", device, timeout, extra);
    cJSON *o = cJSON_CreateObject();
    if (o && (!cJSON_AddStringToObject(o, "error", msg) ||
              !cJSON_AddStringToObject(o, "where", "query") ||
              !cJSON_AddNumberToObject(o, "limited", (double)p->limited))) {
        cJSON_Delete(o);
        o = NULL;
    }
    dw__ctl_json(r, 408, o);
}

void dw__ctl_journal_wait(const ctl_call *call)
{
    const dw_sim_control *c = call->c;
    const ctl_device *d = call->d;
    const dw_sim_http_request *req = call->req;
    dw_sim_http_response *r = call->r;
    long long since = 1,
              timeout = DEFAULT_WAIT < c->o.max_wait_ms ? DEFAULT_WAIT : c->o.max_wait_ms;
    if (dw__ctl_query_number(req, "since", 0, (long long)1 << 53, &since, r) < 0 ||
        dw__ctl_query_number(req, "timeout_ms", 0, c->o.max_wait_ms, &timeout, r) < 0)
        return;
    dw_sim_pattern p;
    char key[MAX_SEGMENT * 4 + 16];
    if (query_pattern(req, &p, key, sizeof key, r) != 0)
        return;
    dw_sim_journal_entry e;
    memset(&e, 0, sizeof e);
    dw_sim_journal_want want = {.key = key, .pred = wait_pred, .arg = &p};
    want_exact(&p, &want);
    int rc =
        dw_sim_journal_wait_for(dw__ctl_journal_of(d), (uint64_t)since, &want, (int)timeout, &e);
    if (rc == DW_OK)
        dw__ctl_json(r, 200, dw_sim_journal_entry_json(&e));
    else if (rc == DW_ETIMEDOUT)
        timed_out(r, &p, d->name, timeout);
    else
        dw__ctl_error(r, rc == DW_ECANCELED ? 503 : 500, "", "the wait ended: %s", dw_strerror(rc));
    dw_sim_journal_entry_free(&e);
    dw_sim_pattern_free(&p);
}
