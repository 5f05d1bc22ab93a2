/* devwire-sim's control API patterns: see pattern.h. */
#include "observe/pattern.h"

#include "common/json_bytes.h"
#include "common/regex_limits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {"any", "match", "rule", "request", "prefix", "regex"};

/* The control API's bytes are the scripts' bytes: one decoder
 * (common/json_bytes), its message put in the API's words. */
int dw_sim_json_bytes(const cJSON *v, dw_buf *out, dw_error *err)
{
    dw_sim_json_bytes_error e;
    int rc = dw_sim_json_bytes_decode(v, out, &e);
    if (rc != DW_EINVAL)
        return rc;
    if (e.node == v || !e.node || !e.node->string)
        return dw_error_set(err, DW_EINVAL,
                            "expected a string, {\"hex\": \"...\"} or {\"base64\": \"...\"}");
    if (e.key || e.offset == DW_SIM_JSON_BYTES_WHOLE)
        return dw_error_set(err, DW_EINVAL, "%s: %s", e.node->string, e.message);
    return dw_error_set(err, DW_EINVAL, "%s: %s at %zu", e.node->string, e.message, e.offset);
}

static int compile(dw_sim_pattern *p, dw_error *err)
{
    int code;
    PCRE2_SIZE at;
    p->re = pcre2_compile(p->bytes, p->len, PCRE2_DOTALL | PCRE2_DOLLAR_ENDONLY, &code, &at, NULL);
    if (!p->re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(code, msg, sizeof msg);
        return dw_error_set(err, DW_EINVAL, "regex: %s at %zu", (const char *)msg, (size_t)at);
    }
    uint32_t opts = 0;
    pcre2_pattern_info(p->re, PCRE2_INFO_ALLOPTIONS, &opts);
    p->anchored = (opts & PCRE2_ANCHORED) != 0;
    p->md = pcre2_match_data_create_from_pattern(p->re, NULL);
    p->mc = pcre2_match_context_create(NULL);
    if (!p->md || !p->mc)
        return dw_error_set(err, DW_ENOMEM, "out of memory");
    pcre2_set_depth_limit(p->mc, DW_SIM_REGEX_DEPTH_LIMIT);
    pcre2_set_heap_limit(p->mc, DW_SIM_REGEX_HEAP_LIMIT_KIB);
    return DW_OK;
}

int dw_sim_pattern_make(dw_sim_pattern *p, const char *kind, const uint8_t *text, size_t len,
                        dw_error *err)
{
    memset(p, 0, sizeof *p);
    size_t k = 1;
    while (k < sizeof kind_names / sizeof kind_names[0] && strcmp(kind_names[k], kind) != 0)
        k++;
    if (k == sizeof kind_names / sizeof kind_names[0])
        return dw_error_set(err, DW_EINVAL,
                            "unknown pattern \"%s\" (expected match, rule, request, prefix or "
                            "regex)",
                            kind);
    p->kind = (dw_sim_pattern_kind)k;
    if (!(p->bytes = malloc(len + 1)))
        return dw_error_set(err, DW_ENOMEM, "out of memory");
    if (len)
        memcpy(p->bytes, text, len);
    p->bytes[len] = 0;
    p->len = len;
    int rc = p->kind == DW_SIM_PATTERN_REGEX ? compile(p, err) : DW_OK;
    if (rc != DW_OK)
        dw_sim_pattern_free(p);
    return rc;
}

int dw_sim_pattern_from_json(dw_sim_pattern *p, const cJSON *v, dw_error *err)
{
    memset(p, 0, sizeof *p);
    if (cJSON_IsString(v))
        return dw_sim_pattern_make(p, "match", (const uint8_t *)v->valuestring,
                                   strlen(v->valuestring), err);
    if (!cJSON_IsObject(v) || !v->child || v->child->next)
        return dw_error_set(err, DW_EINVAL,
                            "expected a string or an object with one of rule, request, prefix, "
                            "regex");
    const cJSON *item = v->child;
    if (strcmp(item->string, "hex") == 0 || strcmp(item->string, "base64") == 0)
        /* {"hex": ...} or {"base64": ...} alone: the exact bytes */
        item = v;
    dw_buf b = DW_BUF_INIT;
    int rc = dw_sim_json_bytes(item, &b, err);
    if (rc == DW_OK)
        rc = dw_sim_pattern_make(p, item == v ? "request" : item->string, b.data, b.len, err);
    else if (rc == DW_EINVAL) {
        char why[256];
        snprintf(why, sizeof why, "%s", dw_error_message(err));
        dw_error_set(err, DW_EINVAL, "%s: %s", item->string, why);
    }
    dw_buf_free(&b);
    return rc;
}

static int regex_match(dw_sim_pattern *p, const uint8_t *req, size_t n)
{
    pcre2_set_match_limit(p->mc, dw_sim_regex_match_limit(p->anchored, n));
    int rc = pcre2_match(p->re, req ? req : (const uint8_t *)"", n, 0, 0, p->md, p->mc);
    /* A limit (or no memory for backtracking): not known to match. */
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH)
        p->limited++;
    return rc >= 0;
}

int dw_sim_pattern_match(dw_sim_pattern *p, const uint8_t *req, size_t n, const char *name)
{
    if (p->kind == DW_SIM_PATTERN_ANY)
        return 1;
    int exact = n == p->len && (n == 0 || memcmp(req, p->bytes, n) == 0);
    int named = name && strcmp(name, (const char *)p->bytes) == 0;
    switch (p->kind) {
    case DW_SIM_PATTERN_ANY:
        return 1;
    case DW_SIM_PATTERN_EITHER:
        return exact || named;
    case DW_SIM_PATTERN_RULE:
        return named;
    case DW_SIM_PATTERN_REQUEST:
        return exact;
    case DW_SIM_PATTERN_PREFIX:
        return n >= p->len && memcmp(req, p->bytes, p->len) == 0;
    case DW_SIM_PATTERN_REGEX:
        return regex_match(p, req, n);
    }
    return 0;
}

/* The pattern's bytes as JSON: a string when they are UTF-8 text without a
 * NUL (JSON text, and a C string, carries them whole), else {"hex": ...}. */
static cJSON *pattern_bytes(const dw_sim_pattern *p)
{
    if (!memchr(p->bytes, 0, p->len) && dw_sim_utf8_valid(p->bytes, p->len))
        return cJSON_CreateString((const char *)p->bytes);
    char *h = dw_sim_bytes_hex(p->bytes, p->len);
    cJSON *o = h ? cJSON_CreateObject() : NULL;
    if (o && !cJSON_AddStringToObject(o, "hex", h)) {
        cJSON_Delete(o);
        o = NULL;
    }
    free(h);
    return o;
}

cJSON *dw_sim_pattern_json(const dw_sim_pattern *p)
{
    if (p->kind == DW_SIM_PATTERN_ANY)
        return cJSON_CreateNull();
    cJSON *b = pattern_bytes(p);
    if (!b || (p->kind == DW_SIM_PATTERN_EITHER && cJSON_IsString(b)))
        return b;
    /* {"match": {"hex": ...}} for the plain form's bytes that a string
     * cannot carry: what dw_sim_pattern_from_json reads back. */
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToObject(o, kind_names[p->kind], b)) {
        cJSON_Delete(o);
        cJSON_Delete(b);
        return NULL;
    }
    return o;
}

void dw_sim_pattern_free(dw_sim_pattern *p)
{
    if (!p)
        return;
    pcre2_match_context_free(p->mc);
    pcre2_match_data_free(p->md);
    pcre2_code_free(p->re);
    free(p->bytes);
    memset(p, 0, sizeof *p);
}
