/* devwire-sim: the script loader's templates and frames (load_int.h): text
 * with placeholders ("${freq}", "$1", "$$"), {"hex": ...} with placeholders
 * between byte pairs, {"base64": ...}, {"json": value} and {"lua": ...}. A
 * placeholder is checked at load: its variable or property exists, its
 * capture is possible where the template is used. */
#include "script/load_int.h"

#include "common/json_bytes.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int add_seg(dw__load *c, dw_sim_template *t, size_t *cap, dw_sim_seg seg)
{
    if (t->nsegs == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        dw_sim_seg *g = realloc(t->segs, ncap * sizeof *g);
        if (!g) {
            free(seg.literal.data);
            free(seg.by_channel);
            return dw__load_oom(c);
        }
        t->segs = g;
        *cap = ncap;
    }
    t->segs[t->nsegs++] = seg;
    return DW_OK;
}

static int flush_literal(dw__load *c, dw_sim_template *t, size_t *cap, dw_buf *lit)
{
    if (lit->len == 0)
        return DW_OK;
    dw_sim_seg seg = {.kind = DW_SIM_SEG_LITERAL};
    seg.literal.data = malloc(lit->len);
    if (!seg.literal.data)
        return dw__load_oom(c);
    memcpy(seg.literal.data, lit->data, lit->len);
    seg.literal.len = lit->len;
    dw_buf_clear(lit);
    return add_seg(c, t, cap, seg);
}

static int capture_check(dw__load *c, size_t off, unsigned n, int cap, const char *as_written)
{
    if (cap == DW__LOAD_CAP_NONE)
        return dw__load_fail_at(c, off, "\"%s\": there is no request here", as_written);
    if (n == 0 || (int)n <= cap)
        return DW_OK;
    if (cap == 0)
        return dw__load_fail_at(c, off, "\"%s\": captures need a regex match", as_written);
    return dw__load_fail_at(c, off, "\"%s\": the regex has only %d group%s", as_written, cap,
                            cap == 1 ? "" : "s");
}

/* A template being parsed from str[0..len), written at node. Errors point
 * into the string with TPL_IN_STRING (str is node's own value), else at
 * node. With TPL_HEX the literal parts are hex digits:
 * {"hex": "aa 81 ${r1} 55"}. */
#define TPL_IN_STRING 1
#define TPL_HEX       2
typedef struct tpl {
    dw__load *c;
    const cJSON *node;
    const char *str;
    size_t len;
    int flags;
    int cap; /* the captures that make sense (DW__LOAD_DW__LOAD_CAP_NONE, 0, n) */
    dw_sim_template *t;
    size_t segcap; /* room in t->segs */
    dw_buf lit;    /* literal bytes not yet made a segment */
} tpl;

/* Where byte i of the template's text is, for messages. */
static size_t tpl_off(const tpl *p, size_t i)
{
    return p->flags & TPL_IN_STRING ? dw__load_str_pos(p->c, p->node, i)
                                    : dw__json_pos_of(p->c->pos, p->node, 0);
}

static int tpl_seg(tpl *p, dw_sim_seg seg)
{
    int rc = flush_literal(p->c, p->t, &p->segcap, &p->lit);
    if (rc != DW_OK)
        free(seg.by_channel);
    return rc == DW_OK ? add_seg(p->c, p->t, &p->segcap, seg) : rc;
}

/* The literal run str[i..j), up to a placeholder or the end: text as it is,
 * or hex digits in pairs. */
static int literal_run(tpl *p, size_t i, size_t j)
{
    dw__load *c = p->c;
    if (!(p->flags & TPL_HEX))
        return dw_buf_append(&p->lit, p->str + i, j - i) == DW_OK ? DW_OK : dw__load_oom(c);
    dw_sim_json_bytes_error e;
    int rc = dw_sim_hex_decode(p->str + i, j - i, &p->lit, &e);
    if (rc == DW_ENOMEM)
        return dw__load_oom(c);
    if (rc == DW_OK)
        return DW_OK;
    if (e.offset != DW_SIM_JSON_BYTES_WHOLE)
        return dw__load_fail_at(c, tpl_off(p, i + e.offset), "%s", e.message);
    /* A digit left over: a placeholder splits a pair, or the end leaves one
     * half. */
    if (j < p->len)
        return dw__load_fail_at(c, tpl_off(p, j), "hex digits come in pairs (one byte each)");
    return dw__load_fail(c, p->node, 0, "%s", e.message);
}

/* "${name}" at str[i], name = str[i+2..end): a variable, a property or the
 * request. */
static int var_placeholder(tpl *p, size_t i, const char *end)
{
    dw__load *c = p->c;
    const char *name = p->str + i + 2;
    size_t nlen = (size_t)(end - name);
    dw_sim_seg seg = {.kind = DW_SIM_SEG_VAR};
    int rc = DW_OK;
    if (nlen == 0) {
        rc = dw__load_fail_at(c, tpl_off(p, i), "empty variable name in \"${}\"");
    } else if (nlen == 7 && memcmp(name, "request", 7) == 0) {
        rc = capture_check(c, tpl_off(p, i), 0, p->cap, "${request}");
        seg.kind = DW_SIM_SEG_CAPTURE;
        seg.capture = 0;
    } else if (nlen == 7 && memcmp(name, "channel", 7) == 0 && c->nchans) {
        seg.kind = DW_SIM_SEG_CHANNEL;
    } else if (dw__load_channel_ref(name, nlen)) {
        seg.kind = DW_SIM_SEG_PROP_CHANNEL;
        rc = dw__load_channel_props(c, tpl_off(p, i), name, nlen, &seg.by_channel);
    } else {
        seg.var = dw__load_find_var(c, name, nlen);
        if (seg.var == SIZE_MAX) {
            seg.kind = DW_SIM_SEG_PROP;
            seg.var = dw_sim_prop_find(c->s->props, name, nlen);
        }
        if (seg.var == SIZE_MAX && nlen == 7 && memcmp(name, "channel", 7) == 0)
            rc = dw__load_fail_at(c, tpl_off(p, i),
                                  "\"${channel}\": only in a rule or step with \"channels\"");
        else if (seg.var == SIZE_MAX)
            rc = dw__load_unknown_var(c, tpl_off(p, i), name, nlen, 1);
    }
    return rc == DW_OK ? tpl_seg(p, seg) : rc;
}

/* The placeholder at str[i] ('$'): "$$", "${name}" or "$0".."$9". *next is
 * where the text goes on. */
static int placeholder(tpl *p, size_t i, size_t *next)
{
    dw__load *c = p->c;
    const char *str = p->str;
    char nx = i + 1 < p->len ? str[i + 1] : '\0';
    *next = i + 2;
    if (nx == '$')
        return dw_buf_append_byte(&p->lit, '$') == DW_OK ? DW_OK : dw__load_oom(c);
    if (nx == '{') {
        const char *end = memchr(str + i + 2, '}', p->len - i - 2);
        if (!end)
            return dw__load_fail_at(c, tpl_off(p, i),
                                    "unterminated \"${\" (write \"$$\" for a literal '$')");
        *next = (size_t)(end - str) + 1;
        return var_placeholder(p, i, end);
    }
    if (nx >= '0' && nx <= '9') {
        char w[3] = {'$', nx, '\0'};
        unsigned n = (unsigned)(nx - '0');
        int rc = capture_check(c, tpl_off(p, i), n, p->cap, w);
        dw_sim_seg seg = {.kind = DW_SIM_SEG_CAPTURE, .capture = n};
        return rc == DW_OK ? tpl_seg(p, seg) : rc;
    }
    return dw__load_fail_at(c, tpl_off(p, i),
                            "'$' starts no placeholder (write \"${name}\" for a variable, \"$1\" "
                            "for a capture or \"$$\" for a literal '$')");
}

/* Parse str[0..len) into t (see tpl). */
static int parse_template_text(dw__load *c, const cJSON *node, const char *str, size_t len,
                               int flags, int cap, dw_sim_template *t)
{
    tpl p = {c, node, str, len, flags, cap, t, 0, DW_BUF_INIT};
    int rc = DW_OK;
    dw__sim_template_free(t);
    for (size_t i = 0; i < len && rc == DW_OK;) {
        if (str[i] == '$') {
            rc = placeholder(&p, i, &i);
            continue;
        }
        const char *d = memchr(str + i, '$', len - i);
        size_t j = d ? (size_t)(d - str) : len;
        rc = literal_run(&p, i, j);
        i = j;
    }
    if (rc == DW_OK)
        rc = flush_literal(c, t, &p.segcap, &p.lit);
    dw_buf_free(&p.lit);
    if (rc != DW_OK)
        dw__sim_template_free(t);
    return rc;
}

static int template_literal(dw_sim_template *t, dw__load *c, const dw_sim_bytes *b)
{
    dw__sim_template_free(t);
    if (b->len == 0)
        return DW_OK;
    dw_sim_seg seg = {.kind = DW_SIM_SEG_LITERAL};
    if (dw__load_bytes_set(c, &seg.literal, b->data, b->len) != DW_OK)
        return DW_ENOMEM;
    size_t cap = 0;
    return add_seg(c, t, &cap, seg);
}

/* The template's bytes if it has no placeholders. */
static int template_is_literal(const dw_sim_template *t, const uint8_t **data, size_t *len)
{
    static const uint8_t none[1];
    if (t->nsegs == 0) {
        *data = none;
        *len = 0;
        return 1;
    }
    if (t->nsegs == 1 && t->segs[0].kind == DW_SIM_SEG_LITERAL) {
        *data = t->segs[0].literal.data;
        *len = t->segs[0].literal.len;
        return 1;
    }
    return 0;
}

int dw__load_template(dw__load *c, const cJSON *v, int cap, dw_sim_template *t)
{
    return parse_template_text(c, v, v->valuestring, strlen(v->valuestring), TPL_IN_STRING, cap, t);
}

/* {"lua": "expression"}: a computed reply frame or set value. */
static int parse_lua_template(dw__load *c, const cJSON *v, const cJSON *lua, dw_sim_template *t)
{
    if (cJSON_GetArraySize(v) != 1)
        return dw__load_fail(c, v, 0, "{\"lua\": ...} takes no other key");
    dw_sim_seg seg = {.kind = DW_SIM_SEG_LUA};
    size_t old = dw__load_push(c, "lua");
    int rc = dw__load_lua(c, lua, 0, &seg.lua);
    dw__load_pop(c, old);
    size_t cap = 0;
    dw__sim_template_free(t);
    return rc == DW_OK ? add_seg(c, t, &cap, seg) : rc;
}

/* A value: a template string, a binary object, a number or a boolean (as
 * its JSON text), or {"lua": ...}. Used by "set". */
int dw__load_value_template(dw__load *c, const cJSON *v, int cap, dw_sim_template *t)
{
    if (cJSON_IsString(v))
        return dw__load_template(c, v, cap, t);
    if (cJSON_IsNumber(v) || cJSON_IsBool(v)) {
        char *text = cJSON_PrintUnformatted(v);
        if (!text)
            return dw__load_oom(c);
        dw_sim_bytes b = {(uint8_t *)text, strlen(text)};
        int rc = template_literal(t, c, &b);
        free(text);
        return rc;
    }
    if (cJSON_IsObject(v)) {
        const cJSON *lua = cJSON_GetObjectItemCaseSensitive(v, "lua");
        if (lua)
            return parse_lua_template(c, v, lua, t);
        /* {"hex": ...} may hold placeholders; {"base64": ...} is literal. */
        const cJSON *hex = cJSON_GetObjectItemCaseSensitive(v, "hex");
        if (hex && cJSON_IsString(hex) && !cJSON_GetObjectItemCaseSensitive(v, "base64") &&
            cJSON_GetArraySize(v) == 1) {
            size_t old = dw__load_push(c, "hex");
            int rc = parse_template_text(c, hex, hex->valuestring, strlen(hex->valuestring),
                                         TPL_IN_STRING | TPL_HEX, cap, t);
            dw__load_pop(c, old);
            return rc;
        }
        dw_sim_bytes b = {NULL, 0};
        int rc = dw__load_bytes(c, v, &b);
        if (rc == DW_OK)
            rc = template_literal(t, c, &b);
        free(b.data);
        return rc;
    }
    return dw__load_fail(c, v, 0, "expected string, number, boolean or object");
}

/* In {"json": value}, a string that is one placeholder and nothing else
 * ("${on}", "$1") stands for JSON text and is printed unquoted:
 * {"on": "${on}"} with on = false gives {"on":false}. */
static int whole_placeholder(const char *s)
{
    size_t n = strlen(s);
    if (n == 2 && s[0] == '$' && s[1] >= '0' && s[1] <= '9')
        return 1;
    return n >= 3 && s[0] == '$' && s[1] == '{' && s[n - 1] == '}' && !memchr(s + 2, '}', n - 3);
}

static void json_placeholders_raw(cJSON *v)
{
    if (cJSON_IsString(v) && whole_placeholder(v->valuestring))
        v->type = cJSON_Raw | (v->type & cJSON_StringIsConst);
    for (cJSON *k = v->child; k; k = k->next)
        json_placeholders_raw(k);
}

static const char *const frame_keys[] = {"hex", "base64", "json", "lua"};

/* One frame: a template string, {"hex": ...}, {"base64": ...},
 * {"json": value} (the value's compact JSON text, as a template) or
 * {"lua": expression} (computed). */
int dw__load_frame(dw__load *c, const cJSON *v, int cap, dw_sim_template *t)
{
    if (cJSON_IsString(v))
        return dw__load_template(c, v, cap, t);
    if (!cJSON_IsObject(v))
        return dw__load_fail(c, v, 0, "expected string or object");
    const cJSON *vals[4];
    int rc = dw__load_members(c, v, frame_keys, 4, vals);
    if (rc != DW_OK)
        return rc;
    if (!vals[2])
        return dw__load_value_template(c, v, cap, t);
    if (vals[0] || vals[1] || vals[3]) {
        size_t old = dw__load_push(c, "json");
        rc = dw__load_fail(c, vals[2], 1, "give one of \"hex\", \"base64\", \"json\" or \"lua\"");
        dw__load_pop(c, old);
        return rc;
    }
    cJSON *copy = cJSON_Duplicate(vals[2], 1);
    char *text = NULL;
    if (copy) {
        json_placeholders_raw(copy);
        text = cJSON_PrintUnformatted(copy);
        cJSON_Delete(copy);
    }
    if (!text)
        return dw__load_oom(c);
    size_t old = dw__load_push(c, "json");
    rc = parse_template_text(c, vals[2], text, strlen(text), 0, cap, t);
    dw__load_pop(c, old);
    free(text);
    return rc;
}

/* A literal frame must fit the response framing (templates are checked when
 * they are rendered). */
int dw__load_check_frame(dw__load *c, const cJSON *v, const dw_sim_template *t)
{
    const uint8_t *data;
    size_t len;
    if (!c->resp_m || !template_is_literal(t, &data, &len))
        return DW_OK;
    dw_buf out = DW_BUF_INIT;
    dw_error e;
    dw_error_clear(&e);
    int rc = dw_marshall(c->resp_m, data, len, &out, &e);
    dw_buf_free(&out);
    if (rc == DW_ENOMEM)
        return dw__load_oom(c);
    if (rc != DW_OK)
        return dw__load_fail(c, v, 0, "cannot be framed: %s", dw_error_message(&e));
    return DW_OK;
}
