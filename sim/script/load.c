/* devwire-sim: the script loader. It checks a script completely before
 * anything uses it: every error is reported as FILE:LINE:COL: PATH: message
 * and nothing is half-loaded. This file reads the document's top keys,
 * "state", the rules and steps, "unmatched", "on_error" and "periodic"; the
 * other parts have their own files below it (load_int.h). */
#include "script/script.h"

#include "script/load_int.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PERIOD_MS 86400000u /* periodic sends: at most a day apart */

/* ---- rules, steps, unmatched, periodic ----------------------------------- */

#define ENTRY_KEYS 4 /* keys before the action's */
/* A rule's own network keys follow its action keys (load_network.c). */
#define RULE_NET_KEYS 3
static const char *const rule_keys[] = {"when",          "name",      "description", "if",
                                        DW__ACTION_KEYS, "direction", "probability", "delay"};
static const char *const step_keys[] = {"expect", "name", "description", "if", DW__ACTION_KEYS};

/* "if": a Lua expression. */
static int parse_cond(dw__load *c, const cJSON *v, const dw_sim_lua_chunk **cond)
{
    if (!v)
        return DW_OK;
    size_t old = dw__load_push(c, "if");
    int rc = dw__load_lua(c, v, 0, cond);
    dw__load_pop(c, old);
    return rc;
}

/* A rule or a step: keys[0] is "when" or "expect"; a rule (net not NULL)
 * also has its network keys. */
static int parse_entry(dw__load *c, const cJSON *v, const char *const *keys, const char *list,
                       size_t index, char **name, dw_sim_match *m, const dw_sim_lua_chunk **cond,
                       dw_sim_action *a, dw_sim_rule_net **net)
{
    if (!cJSON_IsObject(v))
        return dw__load_fail(c, v, 0, "expected object");
    const cJSON *vals[ENTRY_KEYS + DW__ACTION_N + RULE_NET_KEYS];
    size_t nkeys = ENTRY_KEYS + DW__ACTION_N + (net ? RULE_NET_KEYS : 0);
    const char *other = strcmp(keys[0], "when") == 0 ? "expect" : "when";
    const cJSON *wrong = cJSON_GetObjectItemCaseSensitive(v, other);
    if (wrong) {
        size_t old = dw__load_push(c, other);
        int rc = dw__load_fail(c, wrong, 1, "unknown key (%s match with \"%s\")", list, keys[0]);
        dw__load_pop(c, old);
        return rc;
    }
    int rc = dw__load_members(c, v, keys, nkeys, vals);
    if (rc != DW_OK)
        return rc;
    if (!vals[0])
        return dw__load_fail(c, v, 0, "missing \"%s\"", keys[0]);
    if (vals[1]) {
        size_t old = dw__load_push(c, "name");
        rc = dw__load_string(c, vals[1], name);
        dw__load_pop(c, old);
    } else {
        char buf[48];
        snprintf(buf, sizeof buf, "%s[%zu]", list, index);
        *name = strdup(buf);
        if (!*name)
            rc = dw__load_oom(c);
    }
    if (rc == DW_OK && vals[2] && !cJSON_IsString(vals[2])) {
        size_t old = dw__load_push(c, "description");
        rc = dw__load_fail(c, vals[2], 0, "expected string");
        dw__load_pop(c, old);
    }
    if (rc != DW_OK)
        return rc;
    int cap = 0;
    size_t old = dw__load_push(c, keys[0]);
    rc = dw__load_match(c, vals[0], m, &cap);
    dw__load_pop(c, old);
    if (rc == DW_OK)
        rc = parse_cond(c, vals[3], cond);
    if (rc != DW_OK)
        return rc;
    c->chans = m->channels; /* "${channel}", "${freq[channel]}" */
    c->nchans = m->nchannels;
    rc = dw__load_action(c, vals + ENTRY_KEYS, cap, a);
    c->nchans = 0;
    if (rc == DW_OK && net)
        rc = dw__load_rule_net(c, vals + ENTRY_KEYS + DW__ACTION_N,
                               vals[ENTRY_KEYS + DW__ACTION_FAULT] != NULL, net);
    if (rc == DW_OK && net)
        a->net = *net;
    return rc;
}

static int parse_list(dw__load *c, const cJSON *v, int rules)
{
    if (!cJSON_IsArray(v))
        return dw__load_fail(c, v, 0, "expected array");
    dw_sim_script *s = c->s;
    size_t n = (size_t)cJSON_GetArraySize(v);
    if (n == 0)
        return DW_OK;
    if (rules) {
        if (!(s->rules = calloc(n, sizeof *s->rules)))
            return dw__load_oom(c);
        s->nrules = n;
    } else {
        if (!(s->steps = calloc(n, sizeof *s->steps)))
            return dw__load_oom(c);
        s->nsteps = n;
    }
    size_t i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        size_t old = dw__load_push_index(c, i);
        int rc =
            rules ? parse_entry(c, e, rule_keys, "rules", i, &s->rules[i].name, &s->rules[i].when,
                                &s->rules[i].cond, &s->rules[i].action, &s->rules[i].net)
                  : parse_entry(c, e, step_keys, "steps", i, &s->steps[i].name, &s->steps[i].expect,
                                &s->steps[i].cond, &s->steps[i].action, NULL);
        dw__load_pop(c, old);
        if (rc != DW_OK)
            return rc;
    }
    return DW_OK;
}

static const char *const unmatched_keys[] = {"close", DW__ACTION_KEYS};

static int parse_unmatched(dw__load *c, const cJSON *v)
{
    if (!cJSON_IsObject(v))
        return dw__load_fail(c, v, 0, "expected object");
    const cJSON *vals[1 + DW__ACTION_N];
    int rc = dw__load_members(c, v, unmatched_keys, 1 + DW__ACTION_N, vals);
    if (rc != DW_OK)
        return rc;
    if (vals[0]) {
        size_t old = dw__load_push(c, "close");
        if (!cJSON_IsBool(vals[0]))
            rc = dw__load_fail(c, vals[0], 0, "expected boolean");
        else if (vals[1 + DW__ACTION_THEN])
            rc = dw__load_fail(c, vals[0], 1, "give \"then\" or \"close\", not both");
        if (cJSON_IsTrue(vals[0]))
            c->s->unmatched.then = DW_SIM_THEN_CLOSE;
        dw__load_pop(c, old);
        if (rc != DW_OK)
            return rc;
    }
    return dw__load_action(c, vals + 1, 0, &c->s->unmatched);
}

/* "on_error": what a property's command does with a value it refuses. */
static int parse_on_error(dw__load *c, const cJSON *v)
{
    if (c->s->profile == DW_SIM_PROFILE_SCPI)
        return dw__load_fail(c, v, 1,
                             "not with the SCPI profile (a refused value queues its error)");
    if (!cJSON_IsObject(v))
        return dw__load_fail(c, v, 0, "expected object");
    const cJSON *vals[DW__ACTION_N];
    int rc = dw__load_members(c, v, unmatched_keys + 1, DW__ACTION_N, vals);
    c->s->has_on_error = 1;
    return rc == DW_OK ? dw__load_action(c, vals, 0, &c->s->on_error) : rc;
}

static int parse_periodic(dw__load *c, const cJSON *v)
{
    static const char *const keys[] = {"every_ms", "send", "description"};
    if (!cJSON_IsArray(v))
        return dw__load_fail(c, v, 0, "expected array");
    size_t n = (size_t)cJSON_GetArraySize(v);
    if (n == 0)
        return DW_OK;
    dw_sim_script *s = c->s;
    if (!(s->periodic = calloc(n, sizeof *s->periodic)))
        return dw__load_oom(c);
    s->nperiodic = n;
    size_t i = 0;
    int rc = DW_OK;
    for (const cJSON *e = v->child; e && rc == DW_OK; e = e->next, i++) {
        size_t old = dw__load_push_index(c, i);
        const cJSON *vals[3];
        uint64_t u = 0;
        if (!cJSON_IsObject(e))
            rc = dw__load_fail(c, e, 0, "expected object");
        if (rc == DW_OK)
            rc = dw__load_members(c, e, keys, 3, vals);
        if (rc == DW_OK && !vals[0])
            rc = dw__load_fail(c, e, 0, "missing \"every_ms\"");
        if (rc == DW_OK && !vals[1])
            rc = dw__load_fail(c, e, 0, "missing \"send\"");
        if (rc == DW_OK) {
            size_t o2 = dw__load_push(c, "every_ms");
            rc = dw__load_uint(c, vals[0], 1, MAX_PERIOD_MS, &u);
            s->periodic[i].every_ms = (unsigned)u;
            dw__load_pop(c, o2);
        }
        if (rc == DW_OK) {
            size_t o2 = dw__load_push(c, "send");
            rc = dw__load_frame(c, vals[1], DW__LOAD_CAP_NONE, &s->periodic[i].send);
            if (rc == DW_OK)
                rc = dw__load_check_frame(c, vals[1], &s->periodic[i].send);
            dw__load_pop(c, o2);
        }
        if (rc == DW_OK && vals[2] && !cJSON_IsString(vals[2])) {
            size_t o2 = dw__load_push(c, "description");
            rc = dw__load_fail(c, vals[2], 0, "expected string");
            dw__load_pop(c, o2);
        }
        dw__load_pop(c, old);
    }
    return rc;
}

/* ---- state --------------------------------------------------------------- */

/* By name, then by position in the document. */
static int cmp_var(const void *a, const void *b)
{
    const struct dw__load_var *x = a, *y = b;
    int cmp = strcmp(x->name, y->name);
    return cmp ? cmp : (x->idx > y->idx) - (x->idx < y->idx);
}

/* A variable's initial value: a string, a binary object, or a number or a
 * boolean as its JSON text. */
static int parse_initial(dw__load *c, const cJSON *m, dw_sim_bytes *out)
{
    if (cJSON_IsString(m) || cJSON_IsObject(m))
        return dw__load_bytes(c, m, out);
    if (!cJSON_IsNumber(m) && !cJSON_IsBool(m))
        return dw__load_fail(c, m, 0, "expected string, number, boolean or object");
    char *text = cJSON_PrintUnformatted(m);
    if (!text)
        return dw__load_oom(c);
    *out = (dw_sim_bytes){(uint8_t *)text, strlen(text)};
    return DW_OK;
}

static int parse_state(dw__load *c, const cJSON *v)
{
    if (!cJSON_IsObject(v))
        return dw__load_fail(c, v, 0, "expected object");
    dw_sim_script *s = c->s;
    size_t n = (size_t)cJSON_GetArraySize(v);
    const cJSON **nodes = calloc(n ? n : 1, sizeof *nodes);
    free(c->var_order);
    free(c->var_mark);
    s->vars = calloc(n ? n : 1, sizeof *s->vars);
    c->var_order = calloc(n ? n : 1, sizeof *c->var_order);
    c->var_mark = calloc(n ? n : 1, sizeof *c->var_mark);
    if (!nodes || !s->vars || !c->var_order || !c->var_mark) {
        free(nodes);
        return dw__load_oom(c);
    }
    s->nvars = n;
    size_t i = 0;
    int rc = DW_OK;
    for (const cJSON *m = v->child; m && rc == DW_OK; m = m->next, i++) {
        nodes[i] = m;
        size_t old = dw__load_push(c, m->string);
        if (!dw__load_name_ok(m->string))
            rc = dw__load_fail(c, m, 1,
                               "invalid variable name (use letters, digits, '_', '-' and '.', "
                               "starting with a letter or '_')");
        else if (strcmp(m->string, "request") == 0)
            rc = dw__load_fail(c, m, 1,
                               "\"request\" is reserved: \"${request}\" is the whole request");
        else if (!(s->vars[i].name = strdup(m->string)))
            rc = dw__load_oom(c);
        else
            rc = parse_initial(c, m, &s->vars[i].initial);
        if (s->vars[i].name)
            c->var_order[i] = (struct dw__load_var){s->vars[i].name, i};
        dw__load_pop(c, old);
    }
    if (rc == DW_OK && n) {
        qsort(c->var_order, n, sizeof *c->var_order, cmp_var);
        /* Report the first repeated name in document order: the second of
         * each run of equal names, the earliest of those. */
        size_t first = SIZE_MAX;
        for (size_t k = 1; k < n; k++) {
            const struct dw__load_var *a = &c->var_order[k - 1], *b = &c->var_order[k];
            if (strcmp(a->name, b->name) == 0 &&
                (k < 2 || strcmp(c->var_order[k - 2].name, a->name) != 0) && b->idx < first)
                first = b->idx;
        }
        if (first != SIZE_MAX) {
            size_t old = dw__load_push(c, s->vars[first].name);
            rc = dw__load_fail(c, nodes[first], 1, "duplicate variable");
            dw__load_pop(c, old);
        }
    }
    free(nodes);
    return rc;
}

/* ---- the script ---------------------------------------------------------- */

/* In the order they are processed: framing and state first, since the
 * templates and literal frames below depend on them. */
enum {
    T_SCHEMA,
    T_NAME,
    T_DESCRIPTION,
    T_TRANSPORT,
    T_FRAMING,
    T_STATE,
    T_SCOPE,
    T_PROFILE,
    T_PROPERTIES,
    T_IDN,
    T_BANNER,
    T_PROMPT,
    T_STEPS,
    T_RULES,
    T_UNMATCHED,
    T_ON_ERROR,
    T_PERIODIC,
    T_BAUD,
    T_NETWORK,
    T_TCP,
    T_VXI11,
    T_STATUS,
    T_TELNET,
    T_N
};
static const char *const top_keys[] = {
    "$schema",    "name", "description", "transport", "framing", "state",  "scope",     "profile",
    "properties", "idn",  "banner",      "prompt",    "steps",   "rules",  "unmatched", "on_error",
    "periodic",   "baud", "network",     "tcp",       "vxi11",   "status", "telnet"};
static const char *const profile_names[] = {"none", "scpi"};
static const char *const scope_names[] = {"shared", "connection"};

/* "version": SYSTem:VERSion?'s answer, YYYY.V. */
static int parse_version(dw__load *c, const cJSON *v)
{
    const char *t = cJSON_IsString(v) ? v->valuestring : "";
    size_t old = dw__load_push(c, "version");
    int rc = DW_OK;
    if (strlen(t) != 6 || strspn(t, "0123456789") != 4 || t[4] != '.' || t[5] < '0' || t[5] > '9')
        rc = dw__load_fail(c, v, 0, "expected a SCPI version YYYY.V, such as \"1999.0\"");
    else if (c->s->profile != DW_SIM_PROFILE_SCPI)
        rc = dw__load_fail(c, v, 1, "only with \"type\": \"scpi\"");
    else
        rc = dw__load_string(c, v, &c->s->scpi_version);
    dw__load_pop(c, old);
    return rc;
}

/* "strings": "quoted" | "bare", "path": "standard" | "lenient" (both
 * non-standard when not the first): *out 0 or 1. */
static int parse_leniency(dw__load *c, const cJSON *v, const char *key, const char *const *names,
                          int *out)
{
    size_t old = dw__load_push(c, key);
    int rc = dw__load_enum(c, v, names, 2, out);
    if (rc == DW_OK && c->s->profile != DW_SIM_PROFILE_SCPI)
        rc = dw__load_fail(c, v, 1, "only with \"type\": \"scpi\"");
    dw__load_pop(c, old);
    return rc;
}

/* "profile": "scpi" or {"type": "scpi", "error_queue": N, "version": V,
 * "strings": "quoted" | "bare", "path": "standard" | "lenient"}. */
static int parse_profile(dw__load *c, const cJSON *v)
{
    static const char *const keys[] = {"type", "error_queue", "version", "strings", "path"};
    static const char *const strings[] = {"quoted", "bare"};
    static const char *const paths[] = {"standard", "lenient"};
    const cJSON *vals[5] = {v, NULL, NULL, NULL, NULL};
    int rc = DW_OK, e = 0;
    if (cJSON_IsObject(v)) {
        if ((rc = dw__load_members(c, v, keys, 5, vals)) != DW_OK)
            return rc;
        if (!vals[0])
            return dw__load_fail(c, v, 0, "missing \"type\"");
    }
    size_t old = cJSON_IsObject(v) ? dw__load_push(c, "type") : c->plen;
    rc = dw__load_enum(c, vals[0], profile_names, 2, &e);
    dw__load_pop(c, old);
    c->s->profile = e ? DW_SIM_PROFILE_SCPI : DW_SIM_PROFILE_NONE;
    c->s->error_queue = 20;
    if (rc == DW_OK && vals[1]) {
        uint64_t depth = 0;
        old = dw__load_push(c, "error_queue");
        rc = dw__load_uint(c, vals[1], 2, 1000, &depth);
        dw__load_pop(c, old);
        c->s->error_queue = (size_t)depth;
    }
    if (rc == DW_OK && vals[2])
        rc = parse_version(c, vals[2]);
    if (rc == DW_OK && vals[3])
        rc = parse_leniency(c, vals[3], "strings", strings, &c->s->scpi_bare_strings);
    if (rc == DW_OK && vals[4])
        rc = parse_leniency(c, vals[4], "path", paths, &c->s->scpi_lenient_path);
    return rc;
}

/* The banner: may use variables; it is sent before any request. */
static int parse_banner(dw__load *c, const cJSON *v)
{
    if (cJSON_IsString(v))
        return dw__load_template(c, v, DW__LOAD_CAP_NONE, &c->s->banner);
    if (cJSON_IsObject(v))
        return dw__load_value_template(c, v, DW__LOAD_CAP_NONE, &c->s->banner);
    return dw__load_fail(c, v, 0, "expected string or object");
}

/* A top-level key about the link (T_BAUD, T_NETWORK, T_TCP, T_VXI11,
 * T_TELNET). */
static int parse_top_link(dw__load *c, int k, const cJSON *v)
{
    dw_sim_script *s = c->s;
    switch (k) {
    case T_BAUD:
        return dw__load_baud(c, v, &s->baud);
    case T_NETWORK:
        return dw__load_network(c, v, &s->network);
    case T_TCP:
        return dw__load_tcp(c, v, &s->tcp_ack);
    case T_VXI11:
        return dw__load_vxi11(c, v);
    case T_TELNET:
        return dw__load_telnet(c, v, &s->telnet);
    default:
        return DW_OK;
    }
}

/* One top-level key, k (T_...), its path pushed. */
static int parse_top(dw__load *c, int k, const cJSON *v)
{
    dw_sim_script *s = c->s;
    int rc = DW_OK, e = 0;
    switch (k) {
    case T_SCHEMA:
    case T_DESCRIPTION:
        if (!cJSON_IsString(v))
            rc = dw__load_fail(c, v, 0, "expected string");
        break;
    case T_NAME:
        rc = dw__load_string(c, v, &s->name);
        break;
    case T_TRANSPORT:
        if ((rc = dw__load_enum(c, v, dw__load_transports, DW__LOAD_NTRANSPORTS, &e)) == DW_OK)
            s->transport = (dw_sim_transport)e;
        break;
    case T_FRAMING:
        rc = dw__load_framing(c, v);
        break;
    case T_BANNER:
        rc = parse_banner(c, v);
        break;
    case T_PROMPT:
        rc = dw__load_bytes(c, v, &s->prompt);
        break;
    case T_STATE:
        rc = parse_state(c, v);
        break;
    case T_SCOPE:
        if ((rc = dw__load_enum(c, v, scope_names, 2, &e)) == DW_OK)
            s->scope = e ? DW_SIM_SCOPE_CONNECTION : DW_SIM_SCOPE_SHARED;
        break;
    case T_PROFILE:
        rc = parse_profile(c, v);
        break;
    case T_PROPERTIES:
        rc = dw__load_properties(c, v);
        break;
    case T_IDN:
        if (s->profile != DW_SIM_PROFILE_SCPI)
            rc = dw__load_fail(c, v, 1, "only with \"profile\": \"scpi\"");
        else
            rc = dw__load_string(c, v, &s->idn);
        break;
    case T_STEPS:
        rc = parse_list(c, v, 0);
        break;
    case T_RULES:
        rc = parse_list(c, v, 1);
        break;
    case T_UNMATCHED:
        if (s->profile == DW_SIM_PROFILE_SCPI)
            rc = dw__load_fail(c, v, 1,
                               "not with the SCPI profile (an undefined header queues -113)");
        else
            rc = parse_unmatched(c, v);
        break;
    case T_ON_ERROR:
        rc = parse_on_error(c, v);
        break;
    case T_PERIODIC:
        rc = parse_periodic(c, v);
        break;
    case T_STATUS:
        rc = dw__load_status(c, v);
        break;
    default:
        rc = parse_top_link(c, k, v);
        break;
    }
    return rc;
}

static int parse_script(dw__load *c, const cJSON *root)
{
    dw_sim_script *s = c->s;
    if (!cJSON_IsObject(root))
        return dw__load_fail(c, root, 0, "expected object (a script is one JSON object)");
    const cJSON *vals[T_N];
    int rc = dw__load_members(c, root, top_keys, T_N, vals);
    if (rc != DW_OK)
        return rc;
    rc = dw__load_framing_default(c, &s->request_framing);
    if (rc == DW_OK)
        rc = dw__load_framing_default(c, &s->response_framing);
    /* An empty variable index until "state" fills it. */
    c->var_order = calloc(1, sizeof *c->var_order);
    c->var_mark = calloc(1, sizeof *c->var_mark);
    if (!c->var_order || !c->var_mark)
        return dw__load_oom(c);
    for (int k = 0; k < T_N && rc == DW_OK; k++) {
        const cJSON *v = vals[k];
        if (k == T_STATE) {
            /* Literal requests and replies are checked against the framing. */
            c->req_m = dw_sim_framing_marshaller(&s->request_framing);
            c->resp_m = dw_sim_framing_marshaller(&s->response_framing);
            if (!c->req_m || !c->resp_m)
                return dw__load_oom(c);
        }
        if (!v)
            continue;
        size_t old = dw__load_push(c, v->string);
        c->no_lua = k == T_BANNER || k == T_UNMATCHED || k == T_PERIODIC;
        rc = parse_top(c, k, v);
        dw__load_pop(c, old);
    }
    if (rc == DW_OK && vals[T_BAUD] && s->transport != DW_SIM_SERIAL) {
        size_t old = dw__load_push(c, "baud");
        rc = dw__load_fail(c, vals[T_BAUD], 0, "only for \"transport\": \"serial\"");
        dw__load_pop(c, old);
    }
    if (rc == DW_OK && vals[T_VXI11] && s->transport != DW_SIM_VXI11) {
        size_t old = dw__load_push(c, "vxi11");
        rc = dw__load_fail(c, vals[T_VXI11], 0, "only for \"transport\": \"vxi11\"");
        dw__load_pop(c, old);
    }
    if (rc == DW_OK && vals[T_TELNET] && s->transport != DW_SIM_TELNET) {
        size_t old = dw__load_push(c, "telnet");
        rc = dw__load_fail(c, vals[T_TELNET], 0, "only for \"transport\": \"telnet\"");
        dw__load_pop(c, old);
    }
    if (!s->vxi11_max_recv)
        s->vxi11_max_recv = DW_SIM_VXI11_MAX_RECV;
    if (rc == DW_OK && !s->name) {
        /* Default name: the file's base name. */
        const char *base = strrchr(c->name, '/');
        s->name = strdup(base ? base + 1 : c->name);
        if (!s->name)
            rc = dw__load_oom(c);
    }
    return rc;
}

int dw_sim_script_load_buffer(const char *name, const char *text, size_t len, dw_sim_script **out,
                              dw_error *err)
{
    dw_error local;
    if (!err)
        err = &local;
    dw_error_clear(err);
    *out = NULL;
    if (!name)
        name = "<script>";
    if (!text)
        len = 0;
    dw__load c;
    cJSON *root = NULL;
    int rc = dw__load_open(&c, name, text, len, err, &root);
    if (rc != DW_OK)
        return rc;
    rc = dw__json_pos_bind(c.pos, root);
    if (rc == DW_ENOMEM) {
        rc = dw__load_oom(&c);
    } else {
        /* DW_EINVAL (cannot happen for text both parsers accept): errors are
         * still reported, at 1:1. */
        c.s = calloc(1, sizeof *c.s);
        if (!c.s)
            rc = dw__load_oom(&c);
        else if (!(c.s->path = strdup(name)))
            rc = dw__load_oom(&c);
        else
            rc = parse_script(&c, root);
    }
    dw__load_lua_done(&c);
    dw__load_close(&c, root);
    if (rc != DW_OK) {
        dw_sim_script_free(c.s);
        return rc;
    }
    *out = c.s;
    return DW_OK;
}

int dw_sim_script_load_file(const char *path, dw_sim_script **out, dw_error *err)
{
    *out = NULL;
    dw_buf b = DW_BUF_INIT;
    int rc = dw__load_read_file(path, &b, err);
    if (rc == DW_OK)
        rc = dw_sim_script_load_buffer(path, (const char *)b.data, b.len, out, err);
    dw_buf_free(&b);
    return rc;
}
