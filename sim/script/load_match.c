/* devwire-sim: how a rule or step matches a request, at load (load_int.h):
 * exact or prefix bytes, a regex compiled once, or a SCPI header pattern.
 * A literal match that no request could satisfy under the request framing
 * is refused here. */
#include "script/load_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An exact or prefix match that no request can satisfy is a mistake. */
static int check_request(dw__load *c, const cJSON *v, const dw_sim_match *m)
{
    const dw_sim_framing *f = &c->s->request_framing;
    if (!c->req_m || m->kind == DW_SIM_MATCH_REGEX)
        return DW_OK;
    if (m->kind == DW_SIM_MATCH_PREFIX) {
        if (f->type == DW_SIM_FRAMING_FIXED && m->bytes.len > f->length)
            return dw__load_fail(
                c, v, 0,
                "never matches: the prefix is %zu bytes, requests are fixed-length "
                "frames of %zu",
                m->bytes.len, f->length);
        if (f->type != DW_SIM_FRAMING_SENTINEL)
            return DW_OK;
    }
    dw_buf out = DW_BUF_INIT;
    dw_error e;
    dw_error_clear(&e);
    int rc = dw_marshall(c->req_m, m->bytes.data, m->bytes.len, &out, &e);
    dw_buf_free(&out);
    if (rc == DW_ENOMEM)
        return dw__load_oom(c);
    if (rc != DW_OK)
        return dw__load_fail(c, v, 0, "never matches: %s", dw_error_message(&e));
    return DW_OK;
}

/* Compile a regex once, at load. Matching is bounded by the engine's limits
 * (match, depth, heap, JIT stack), which is what makes any pattern safe to
 * serve, back-references and nested quantifiers included: no pattern is
 * refused for its shape. Patterns are bytes (UTF is refused), '.' matches
 * any byte and '$' only the very end, as POSIX EREs did. PCRE2 itself
 * refuses a compiled pattern past its size limit. */
static int regex_compile(dw__load *c, const cJSON *v, int icase, dw_sim_match *m)
{
    uint32_t opts = PCRE2_DOTALL | PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_UTF;
    if (icase)
        opts |= PCRE2_CASELESS;
    int code;
    PCRE2_SIZE at;
    m->re =
        pcre2_compile((PCRE2_SPTR)v->valuestring, strlen(v->valuestring), opts, &code, &at, NULL);
    if (!m->re) {
        PCRE2_UCHAR msg[256];
        if (code == PCRE2_ERROR_NOMEMORY)
            return dw__load_oom(c);
        if (pcre2_get_error_message(code, msg, sizeof msg) < 0)
            snprintf((char *)msg, sizeof msg, "error %d", code);
        return dw__load_fail(c, v, 0, "%s at offset %zu", (const char *)msg, (size_t)at);
    }
    uint32_t all = 0;
    pcre2_pattern_info(m->re, PCRE2_INFO_CAPTURECOUNT, &m->groups);
    pcre2_pattern_info(m->re, PCRE2_INFO_ALLOPTIONS, &all);
    m->anchored = (all & PCRE2_ANCHORED) != 0;
    /* Without JIT (a platform sljit does not support, or no executable
     * memory) the interpreter matches, under the same limits. */
    m->jit = pcre2_jit_compile(m->re, PCRE2_JIT_COMPLETE) == 0;
    m->kind = DW_SIM_MATCH_REGEX;
    return DW_OK;
}

enum { M_EXACT, M_PREFIX, M_REGEX, M_HEX, M_BASE64, M_ICASE, M_N };
static const char *const match_keys[] = {"exact", "prefix", "regex", "hex", "base64", "icase"};

static int set_source(dw__load *c, dw_sim_match *m, const cJSON *v)
{
    free(m->source);
    m->source = cJSON_IsString(v) ? strdup(v->valuestring) : cJSON_PrintUnformatted(v);
    return m->source ? DW_OK : dw__load_oom(c);
}

/* ---- SCPI header patterns ------------------------------------------------ */

static const char *const scpi_types[] = {"any", "numeric", "bool", "string", "block"};

/* Choices "IMMediate|BUS|EXTernal": each a mnemonic, upper case first. */
static int scpi_choices_check(dw__load *c, const cJSON *v)
{
    const char *t = v->valuestring;
    size_t i = 0;
    for (;;) {
        size_t start = i;
        int lower = 0;
        if (t[i] >= 'a' && t[i] <= 'z')
            return dw__load_fail_in(c, v, i, "a choice starts with its short form in upper case");
        while ((t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= 'a' && t[i] <= 'z') ||
               (i > start && ((t[i] >= '0' && t[i] <= '9') || t[i] == '_'))) {
            if (t[i] >= 'a' && t[i] <= 'z')
                lower = 1;
            else if (lower && t[i] >= 'A' && t[i] <= 'Z')
                return dw__load_fail_in(c, v, i,
                                        "upper case marks the short form: it must come first");
            i++;
        }
        if (i == start || i - start > DW_SCPI_MAX_MNEMONIC)
            return dw__load_fail_in(
                c, v, start,
                "expected \"any\", \"numeric\", \"bool\", \"string\", \"block\" "
                "or choices such as \"IMMediate|BUS\"");
        if (t[i] == 0)
            return DW_OK;
        if (t[i] != '|')
            return dw__load_fail_in(c, v, i, "expected '|' between choices");
        i++;
    }
}

static int parse_scpi_params(dw__load *c, const cJSON *v, dw_sim_match *m)
{
    if (!cJSON_IsArray(v))
        return dw__load_fail(c, v, 0, "expected array");
    size_t n = (size_t)cJSON_GetArraySize(v);
    if (n > DW__LOAD_MAX_CAPTURE)
        return dw__load_fail(c, v, 0, "at most %d parameters ($1..$%d)", DW__LOAD_MAX_CAPTURE,
                             DW__LOAD_MAX_CAPTURE);
    m->has_params = 1;
    if (n && !(m->params = calloc(n, sizeof *m->params)))
        return dw__load_oom(c);
    size_t i = 0;
    int rc = DW_OK;
    for (const cJSON *e = v->child; e && rc == DW_OK; e = e->next, i++) {
        size_t old = dw__load_push_index(c, i);
        m->nparams = i + 1;
        if (!cJSON_IsString(e)) {
            rc = dw__load_fail(c, e, 0, "expected string");
        } else {
            size_t k = 0;
            while (k < sizeof scpi_types / sizeof scpi_types[0] &&
                   strcmp(e->valuestring, scpi_types[k]) != 0)
                k++;
            if (k < sizeof scpi_types / sizeof scpi_types[0])
                m->params[i].type = (dw_sim_scpi_type)k;
            else if ((rc = scpi_choices_check(c, e)) == DW_OK) {
                m->params[i].type = DW_SIM_SCPI_CHOICE;
                if (!(m->params[i].choices = strdup(e->valuestring)))
                    rc = dw__load_oom(c);
            }
        }
        dw__load_pop(c, old);
    }
    return rc;
}

/* {"scpi": "[SOURce:]FREQuency[:CW]?", "params": [...]}. */
static int parse_scpi_match(dw__load *c, const cJSON *v, dw_sim_match *m, int *cap)
{
    static const char *const keys[] = {"scpi", "params", "channels"};
    const cJSON *vals[3];
    int rc = dw__load_members(c, v, keys, 3, vals);
    if (rc != DW_OK)
        return rc;
    size_t old = dw__load_push(c, "scpi");
    if (c->s->profile != DW_SIM_PROFILE_SCPI)
        rc = dw__load_fail(c, vals[0], 1, "a SCPI header needs \"profile\": \"scpi\"");
    else if (!cJSON_IsString(vals[0]))
        rc = dw__load_fail(c, vals[0], 0, "expected string");
    if (rc == DW_OK)
        rc = set_source(c, m, vals[0]);
    dw__load_pop(c, old);
    if (rc == DW_OK)
        rc = dw__load_match_channels(c, vals[0], vals[2], m);
    m->kind = DW_SIM_MATCH_SCPI;
    if (rc == DW_OK && vals[1]) {
        old = dw__load_push(c, "params");
        rc = parse_scpi_params(c, vals[1], m);
        dw__load_pop(c, old);
    }
    *cap = m->has_params ? (int)m->nparams : DW__LOAD_MAX_CAPTURE;
    return rc;
}

/* "when" / "expect". *cap gets the number of capture groups usable in
 * templates (0 unless a regex or a SCPI header). */
int dw__load_match(dw__load *c, const cJSON *v, dw_sim_match *m, int *cap)
{
    *cap = 0;
    if (cJSON_IsObject(v) && cJSON_GetObjectItemCaseSensitive(v, "scpi"))
        return parse_scpi_match(c, v, m, cap);
    if (cJSON_IsString(v)) {
        m->kind = DW_SIM_MATCH_EXACT;
        int rc = dw__load_bytes_set(c, &m->bytes, v->valuestring, strlen(v->valuestring));
        if (rc == DW_OK)
            rc = set_source(c, m, v);
        return rc == DW_OK ? check_request(c, v, m) : rc;
    }
    if (!cJSON_IsObject(v))
        return dw__load_fail(c, v, 0, "expected string or object");
    const cJSON *vals[M_N];
    int rc = dw__load_members(c, v, match_keys, M_N, vals);
    if (rc != DW_OK)
        return rc;
    const cJSON *how = NULL;
    for (int k = M_EXACT; k <= M_BASE64; k++) {
        if (!vals[k])
            continue;
        if (how) {
            size_t old = dw__load_push(c, vals[k]->string);
            rc = dw__load_fail(
                c, vals[k], 1,
                "give one of \"exact\", \"prefix\", \"regex\", \"hex\" or \"base64\"");
            dw__load_pop(c, old);
            return rc;
        }
        how = vals[k];
    }
    if (!how)
        return dw__load_fail(c, v, 0,
                             "expected \"exact\", \"prefix\", \"regex\", \"hex\" or \"base64\"");
    int icase = 0;
    if (vals[M_ICASE]) {
        size_t old = dw__load_push(c, "icase");
        if (!vals[M_REGEX])
            rc = dw__load_fail(c, vals[M_ICASE], 1, "only with \"regex\"");
        else if (!cJSON_IsBool(vals[M_ICASE]))
            rc = dw__load_fail(c, vals[M_ICASE], 0, "expected boolean");
        else
            icase = cJSON_IsTrue(vals[M_ICASE]);
        dw__load_pop(c, old);
        if (rc != DW_OK)
            return rc;
    }
    size_t old = dw__load_push(c, how->string);
    if (how == vals[M_EXACT] || how == vals[M_PREFIX]) {
        m->kind = how == vals[M_EXACT] ? DW_SIM_MATCH_EXACT : DW_SIM_MATCH_PREFIX;
        rc = dw__load_bytes(c, how, &m->bytes);
    } else if (how == vals[M_HEX]) {
        rc = dw__load_hex(c, how, &m->bytes);
    } else if (how == vals[M_BASE64]) {
        rc = dw__load_base64(c, how, &m->bytes);
    } else if (!cJSON_IsString(how)) {
        rc = dw__load_fail(c, how, 0, "expected string");
    } else if ((rc = regex_compile(c, how, icase, m)) == DW_OK) {
        *cap = m->groups > DW__LOAD_MAX_CAPTURE ? DW__LOAD_MAX_CAPTURE : (int)m->groups;
    }
    if (rc == DW_OK)
        rc = set_source(c, m, cJSON_IsString(how) ? how : v);
    if (rc == DW_OK)
        rc = check_request(c, how, m);
    dw__load_pop(c, old);
    return rc;
}
