/* devwire-sim: the script loader. It checks a script completely before
 * anything uses it: every error is reported as FILE:LINE:COL: PATH: message
 * and nothing is half-loaded. Positions come from json_pos.c, which scans
 * the text strictly; the tree itself is cJSON's. */
#include "script/script.h"

#include "script/json_pos.h"
#include "model/lua_check.h"
#include "common/net.h"
#include "script/script_int.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DELAY_MS  3600000u    /* delays: at most an hour */
#define MAX_PERIOD_MS 86400000u   /* periodic sends: at most a day apart */
#define MAX_FILE_SIZE (64u << 20) /* scripts: at most 64 MiB */
#define MAX_CAPTURE   9

/* Capture context of a template: which of $0..$9 make sense. */
#define CAP_NONE (-1) /* no request (banner, periodic sends) */

struct var_ref {
    const char *name;
    size_t idx;
};

typedef struct dw__load {
    const char *name;
    const char *text;
    size_t len;
    dw__json_pos *pos;
    dw_error *err;
    char path[256];
    size_t plen;
    dw_sim_script *s;
    struct var_ref *var_order; /* s->vars sorted by name */
    size_t *var_mark;          /* duplicate detection in "set" objects */
    size_t mark_gen;
    dw_marshaller *req_m, *resp_m;
    dw_sim_lua_checker *lua; /* made at the first chunk of Lua */
    size_t lua_cap;          /* room in s->lua */
    int no_lua;              /* parsing a place where Lua may not run */
} ctx;

/* ---- errors and paths ---------------------------------------------------- */

static int vfail_at(ctx *c, size_t off, const char *fmt, va_list ap)
{
    char msg[400];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t line, col;
    dw__json_line_col(c->text, c->len, off, &line, &col);
    if (c->plen)
        dw_error_set(c->err, DW_ESCRIPT, "%s:%zu:%zu: %s: %s", c->name, line, col, c->path, msg);
    else
        dw_error_set(c->err, DW_ESCRIPT, "%s:%zu:%zu: %s", c->name, line, col, msg);
    return DW_ESCRIPT;
}

static int fail_at(ctx *c, size_t off, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_at(ctx *c, size_t off, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail_at(c, off, fmt, ap);
    va_end(ap);
    return rc;
}

/* An error about node's value. */
static int fail(ctx *c, const cJSON *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(ctx *c, const cJSON *node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail_at(c, dw__json_pos_of(c->pos, node, 0), fmt, ap);
    va_end(ap);
    return rc;
}

/* An error about node's key (an object member). */
static int fail_key(ctx *c, const cJSON *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_key(ctx *c, const cJSON *node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail_at(c, dw__json_pos_of(c->pos, node, 1), fmt, ap);
    va_end(ap);
    return rc;
}

static int oom(ctx *c)
{
    return dw_error_set(c->err, DW_ENOMEM, "%s: out of memory loading the script", c->name);
}

static void path_append(ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void path_append(ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(c->path + c->plen, sizeof c->path - c->plen, fmt, ap);
    va_end(ap);
    if (w > 0)
        c->plen = c->plen + (size_t)w >= sizeof c->path ? sizeof c->path - 1 : c->plen + (size_t)w;
}

static int plain_key(const char *k)
{
    if (!*k)
        return 0;
    for (const char *p = k; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '$'))
            return 0;
    }
    return 1;
}

/* Path segments: push returns the old length for pop. Keys that are not
 * plain words are shown as ["key"]. */
static size_t push_key(ctx *c, const char *key)
{
    size_t old = c->plen;
    if (plain_key(key))
        path_append(c, "%s%.60s", c->plen ? "." : "", key);
    else
        path_append(c, "[\"%.60s\"]", key);
    return old;
}

static size_t push_index(ctx *c, size_t i)
{
    size_t old = c->plen;
    path_append(c, "[%zu]", i);
    return old;
}

static void pop(ctx *c, size_t old)
{
    c->plen = old;
    c->path[old] = '\0';
}

/* ---- "did you mean" ------------------------------------------------------ */

static int lower(int ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

/* Optimal string alignment distance, case-insensitive; words of at most 63
 * characters (longer ones get SIZE_MAX). */
static size_t osa(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return SIZE_MAX;
    size_t d[64][64];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
            size_t v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
                lower(a[i - 2]) == lower(b[j - 1]) && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[la][lb];
}

typedef struct near {
    const char *best;
    size_t dist;
} near;

static void near_init(near *n)
{
    n->best = NULL;
    n->dist = SIZE_MAX;
}

static void near_consider(near *n, const char *word, const char *cand)
{
    size_t d = osa(word, cand);
    size_t limit = strlen(word) <= 5 ? 1 : 2;
    if (d <= limit && d < n->dist) {
        n->best = cand;
        n->dist = d;
    }
}

/* " (did you mean "x"?)" or "" in buf. */
static const char *near_text(const near *n, char *buf, size_t cap)
{
    if (!n->best)
        return "";
    snprintf(buf, cap, " (did you mean \"%s\"?)", n->best);
    return buf;
}

/* ---- object members ------------------------------------------------------ */

static size_t key_index(const char *const *keys, size_t n, const char *k)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i], k) == 0)
            return i;
    return n;
}

/* Check obj's keys against keys[0..n): an unknown or repeated key fails (at
 * the key). vals[i] is the member for keys[i], or NULL. */
static int members(ctx *c, const cJSON *obj, const char *const *keys, size_t n, const cJSON **vals)
{
    for (size_t i = 0; i < n; i++)
        vals[i] = NULL;
    for (const cJSON *m = obj->child; m; m = m->next) {
        size_t k = key_index(keys, n, m->string);
        if (k == n || vals[k]) {
            size_t old = push_key(c, m->string);
            int rc;
            if (k == n) {
                near nr;
                char buf[96];
                near_init(&nr);
                for (size_t i = 0; i < n; i++)
                    near_consider(&nr, m->string, keys[i]);
                rc = fail_key(c, m, "unknown key%s", near_text(&nr, buf, sizeof buf));
            } else {
                rc = fail_key(c, m, "duplicate key");
            }
            pop(c, old);
            return rc;
        }
        vals[k] = m;
    }
    return DW_OK;
}

/* ---- scalars ------------------------------------------------------------- */

static int get_uint(ctx *c, const cJSON *v, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!cJSON_IsNumber(v))
        return fail(c, v, min ? "expected positive integer" : "expected non-negative integer");
    double d = v->valuedouble;
    if (d < 0)
        return fail(c, v, "must not be negative (got %.15g)", d);
    if (d > (double)max)
        return fail(c, v, "must be at most %llu (got %.15g)", (unsigned long long)max, d);
    uint64_t u = (uint64_t)d;
    if ((double)u != d)
        return fail(c, v, "expected an integer (got %.15g)", d);
    if (u < min)
        return fail(c, v, "must be at least %llu (got %llu)", (unsigned long long)min,
                    (unsigned long long)u);
    *out = u;
    return DW_OK;
}

/* A serial line's rate in bits per second. */
static int get_baud(ctx *c, const cJSON *v, uint32_t *out)
{
    uint64_t u = 0;
    int rc = get_uint(c, v, DW_SIM_BAUD_MIN, DW_SIM_BAUD_MAX, &u);
    if (rc == DW_OK)
        *out = (uint32_t)u;
    return rc;
}

static int get_string(ctx *c, const cJSON *v, char **out)
{
    if (!cJSON_IsString(v))
        return fail(c, v, "expected string");
    char *s = strdup(v->valuestring);
    if (!s)
        return oom(c);
    free(*out);
    *out = s;
    return DW_OK;
}

/* v must be one of names[0..n): *out is its index. */
static int get_enum(ctx *c, const cJSON *v, const char *const *names, size_t n, int *out)
{
    if (!cJSON_IsString(v))
        return fail(c, v, "expected string");
    size_t k = key_index(names, n, v->valuestring);
    if (k < n) {
        *out = (int)k;
        return DW_OK;
    }
    near nr;
    near_init(&nr);
    for (size_t i = 0; i < n; i++)
        near_consider(&nr, v->valuestring, names[i]);
    if (nr.best)
        return fail(c, v, "unknown value \"%.60s\" (did you mean \"%s\"?)", v->valuestring,
                    nr.best);
    char list[200];
    size_t len = 0;
    list[0] = '\0';
    for (size_t i = 0; i < n && len < sizeof list; i++) {
        int w = snprintf(list + len, sizeof list - len, "%s\"%s\"",
                         i == 0       ? ""
                         : i + 1 == n ? " or "
                                      : ", ",
                         names[i]);
        if (w > 0)
            len += (size_t)w;
    }
    return fail(c, v, "unknown value \"%.60s\" (expected %s)", v->valuestring, list);
}

/* ---- bytes: strings, {"hex": ...}, {"base64": ...} ------------------------ */

static int bytes_set(ctx *c, dw_sim_bytes *b, const void *data, size_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    if (!p)
        return oom(c);
    if (len)
        memcpy(p, data, len);
    free(b->data);
    b->data = p;
    b->len = len;
    return DW_OK;
}

static int is_space(int ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* The position in the text of byte i of string node v's value. */
static size_t str_pos(ctx *c, const cJSON *v, size_t i)
{
    return dw__json_string_offset(c->text, c->len, dw__json_pos_of(c->pos, v, 0), i);
}

static int hex_digit(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static int printable(int ch)
{
    return ch > 0x20 && ch < 0x7f ? ch : '?';
}

/* Hex digits in pairs; white space between pairs is allowed. */
static int decode_hex(ctx *c, const cJSON *v, dw_sim_bytes *out)
{
    if (!cJSON_IsString(v))
        return fail(c, v, "expected string");
    const char *s = v->valuestring;
    size_t n = strlen(s);
    uint8_t *p = malloc(n / 2 + 1);
    if (!p)
        return oom(c);
    size_t len = 0;
    int hi = -1;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)s[i];
        if (is_space(ch)) {
            if (hi >= 0) {
                free(p);
                return fail_at(c, str_pos(c, v, i), "hex digits come in pairs (one byte each)");
            }
            continue;
        }
        int h = hex_digit(ch);
        if (h < 0) {
            free(p);
            return fail_at(c, str_pos(c, v, i), "invalid hex digit '%c'", printable(ch));
        }
        if (hi < 0) {
            hi = h;
        } else {
            p[len++] = (uint8_t)(hi * 16 + h);
            hi = -1;
        }
    }
    if (hi >= 0) {
        free(p);
        return fail(c, v, "odd number of hex digits");
    }
    free(out->data);
    out->data = p;
    out->len = len;
    return DW_OK;
}

static int b64_value(int ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

/* Standard base64 (RFC 4648 section 4) with padding; white space ignored. */
static int decode_base64(ctx *c, const cJSON *v, dw_sim_bytes *out)
{
    if (!cJSON_IsString(v))
        return fail(c, v, "expected string");
    const char *s = v->valuestring;
    size_t n = strlen(s);
    uint8_t *p = malloc(n / 4 * 3 + 3);
    if (!p)
        return oom(c);
    size_t len = 0, count = 0, pad = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)s[i];
        if (is_space(ch))
            continue;
        if (ch == '=') {
            if (count % 4 < 2 || pad == 2) {
                free(p);
                return fail_at(c, str_pos(c, v, i), "misplaced '=' in base64");
            }
            pad++;
            count++;
            continue;
        }
        int b = b64_value(ch);
        if (pad) {
            free(p);
            return fail_at(c, str_pos(c, v, i), "base64 data after the '=' padding");
        }
        if (b < 0) {
            free(p);
            return fail_at(c, str_pos(c, v, i), "invalid base64 character '%c'", printable(ch));
        }
        acc = acc << 6 | (uint32_t)b;
        count++;
        if (count % 4 == 0) {
            p[len++] = (uint8_t)(acc >> 16);
            p[len++] = (uint8_t)(acc >> 8);
            p[len++] = (uint8_t)acc;
            acc = 0;
        }
    }
    if (count % 4 != 0) {
        free(p);
        return fail(c, v, "base64 length is not a multiple of 4 (missing '=' padding?)");
    }
    if (pad) {
        /* The last group was shifted in with the pad positions as zero bits. */
        acc <<= 6 * pad;
        p[len++] = (uint8_t)(acc >> 16);
        if (pad == 1)
            p[len++] = (uint8_t)(acc >> 8);
    }
    free(out->data);
    out->data = p;
    out->len = len;
    return DW_OK;
}

static const char *const binary_keys[] = {"hex", "base64"};

/* {"hex": ...} or {"base64": ...}. */
static int parse_binary(ctx *c, const cJSON *v, dw_sim_bytes *out)
{
    const cJSON *vals[2];
    int rc = members(c, v, binary_keys, 2, vals);
    if (rc != DW_OK)
        return rc;
    if (!vals[0] && !vals[1])
        return fail(c, v, "expected \"hex\" or \"base64\"");
    if (vals[0] && vals[1]) {
        size_t old = push_key(c, "base64");
        rc = fail_key(c, vals[1], "give \"hex\" or \"base64\", not both");
        pop(c, old);
        return rc;
    }
    const cJSON *b = vals[0] ? vals[0] : vals[1];
    size_t old = push_key(c, b->string);
    rc = vals[0] ? decode_hex(c, b, out) : decode_base64(c, b, out);
    pop(c, old);
    return rc;
}

/* A string or a binary object. */
static int parse_bytes(ctx *c, const cJSON *v, dw_sim_bytes *out)
{
    if (cJSON_IsString(v))
        return bytes_set(c, out, v->valuestring, strlen(v->valuestring));
    if (cJSON_IsObject(v))
        return parse_binary(c, v, out);
    return fail(c, v, "expected string or object");
}

/* ---- variables ----------------------------------------------------------- */

static size_t find_var(const ctx *c, const char *name, size_t len)
{
    const dw_sim_script *s = c->s;
    size_t lo = 0, hi = s->nvars;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *v = c->var_order[mid].name;
        int cmp = strncmp(v, name, len);
        if (cmp == 0)
            cmp = v[len] == '\0' ? 0 : 1;
        if (cmp == 0)
            return c->var_order[mid].idx;
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return SIZE_MAX;
}

static int unknown_var(ctx *c, size_t off, const char *name, size_t len, int in_template)
{
    char word[64];
    snprintf(word, sizeof word, "%.*s", len > 60 ? 60 : (int)len, name);
    near nr;
    near_init(&nr);
    for (size_t i = 0; i < c->s->nvars; i++)
        near_consider(&nr, word, c->s->vars[i].name);
    for (size_t i = 0; i < dw_sim_props_count(c->s->props); i++)
        near_consider(&nr, word, dw_sim_props_def(c->s->props, i)->name);
    if (nr.best)
        return fail_at(c, off,
                       in_template ? "unknown variable \"${%s}\" (did you mean \"${%s}\"?)"
                                   : "unknown variable \"%s\" (did you mean \"%s\"?)",
                       word, nr.best);
    return fail_at(c, off,
                   in_template
                       ? "unknown variable \"${%s}\" (declare it in \"state\" or \"properties\")"
                       : "unknown variable \"%s\" (declare it in \"state\" or \"properties\")",
                   word);
}

/* ---- templates ----------------------------------------------------------- */

static void template_free(dw_sim_template *t)
{
    for (size_t i = 0; i < t->nsegs; i++)
        free(t->segs[i].literal.data);
    free(t->segs);
    t->segs = NULL;
    t->nsegs = 0;
}

static int add_seg(ctx *c, dw_sim_template *t, size_t *cap, dw_sim_seg seg)
{
    if (t->nsegs == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        dw_sim_seg *g = realloc(t->segs, ncap * sizeof *g);
        if (!g) {
            free(seg.literal.data);
            return oom(c);
        }
        t->segs = g;
        *cap = ncap;
    }
    t->segs[t->nsegs++] = seg;
    return DW_OK;
}

static int flush_literal(ctx *c, dw_sim_template *t, size_t *cap, dw_buf *lit)
{
    if (lit->len == 0)
        return DW_OK;
    dw_sim_seg seg = {DW_SIM_SEG_LITERAL, {NULL, 0}, 0, 0, NULL};
    seg.literal.data = malloc(lit->len);
    if (!seg.literal.data)
        return oom(c);
    memcpy(seg.literal.data, lit->data, lit->len);
    seg.literal.len = lit->len;
    dw_buf_clear(lit);
    return add_seg(c, t, cap, seg);
}

static int capture_check(ctx *c, size_t off, unsigned n, int cap, const char *as_written)
{
    if (cap == CAP_NONE)
        return fail_at(c, off, "\"%s\": there is no request here", as_written);
    if (n == 0 || (int)n <= cap)
        return DW_OK;
    if (cap == 0)
        return fail_at(c, off, "\"%s\": captures need a regex match", as_written);
    return fail_at(c, off, "\"%s\": the regex has only %d group%s", as_written, cap,
                   cap == 1 ? "" : "s");
}

/* Parse str[0..len) into t. Errors point into the string with TPL_IN_STRING
 * (str is node's own value), else at node. With TPL_HEX the literal parts
 * are hex digits: {"hex": "aa 81 ${r1} 55"}. */
#define TPL_IN_STRING 1
#define TPL_HEX       2
/* Where byte i of a template's text is, for messages. */
static size_t tpl_off(ctx *c, const cJSON *node, int flags, size_t i)
{
    return flags & TPL_IN_STRING ? str_pos(c, node, i) : dw__json_pos_of(c->pos, node, 0);
}

static int parse_template_text(ctx *c, const cJSON *node, const char *str, size_t len, int flags,
                               int cap, dw_sim_template *t)
{
    size_t segcap = 0;
    dw_buf lit = DW_BUF_INIT;
    int rc = DW_OK;
    int hi = -1; /* hex: the pending high nibble */
    template_free(t);
    for (size_t i = 0; i < len && rc == DW_OK;) {
        if (str[i] != '$' && !(flags & TPL_HEX)) {
            size_t j = i;
            while (j < len && str[j] != '$')
                j++;
            if (dw_buf_append(&lit, str + i, j - i) != DW_OK)
                rc = oom(c);
            i = j;
            continue;
        }
        if (str[i] != '$' || hi >= 0) {
            /* Hex digits in pairs, white space between pairs. */
            int ch = (unsigned char)str[i];
            int h = hex_digit(ch);
            if (hi >= 0 && (is_space(ch) || ch == '$'))
                rc = fail_at(c, tpl_off(c, node, flags, i),
                             "hex digits come in pairs (one byte each)");
            else if (is_space(ch))
                hi = -1; /* white space between pairs */
            else if (h < 0)
                rc =
                    fail_at(c, tpl_off(c, node, flags, i), "invalid hex digit '%c'", printable(ch));
            else if (hi < 0)
                hi = h;
            else if (dw_buf_append_byte(&lit, (uint8_t)(hi * 16 + h)) != DW_OK)
                rc = oom(c);
            else
                hi = -1;
            i++;
            continue;
        }
        char next = i + 1 < len ? str[i + 1] : '\0';
        if (next == '$') {
            if (dw_buf_append_byte(&lit, '$') != DW_OK)
                rc = oom(c);
            i += 2;
        } else if (next == '{') {
            const char *end = memchr(str + i + 2, '}', len - i - 2);
            if (!end) {
                rc = fail_at(c, tpl_off(c, node, flags, i),
                             "unterminated \"${\" (write \"$$\" for a literal '$')");
                break;
            }
            const char *name = str + i + 2;
            size_t nlen = (size_t)(end - name);
            dw_sim_seg seg = {DW_SIM_SEG_VAR, {NULL, 0}, 0, 0, NULL};
            if (nlen == 0) {
                rc = fail_at(c, tpl_off(c, node, flags, i), "empty variable name in \"${}\"");
            } else if (nlen == 7 && memcmp(name, "request", 7) == 0) {
                rc = capture_check(c, tpl_off(c, node, flags, i), 0, cap, "${request}");
                seg.kind = DW_SIM_SEG_CAPTURE;
                seg.capture = 0;
            } else {
                seg.var = find_var(c, name, nlen);
                if (seg.var == SIZE_MAX) {
                    seg.kind = DW_SIM_SEG_PROP;
                    seg.var = dw_sim_prop_find(c->s->props, name, nlen);
                }
                if (seg.var == SIZE_MAX)
                    rc = unknown_var(c, tpl_off(c, node, flags, i), name, nlen, 1);
            }
            if (rc == DW_OK)
                rc = flush_literal(c, t, &segcap, &lit);
            if (rc == DW_OK)
                rc = add_seg(c, t, &segcap, seg);
            i = (size_t)(end - str) + 1;
        } else if (next >= '0' && next <= '9') {
            char w[3] = {'$', next, '\0'};
            unsigned n = (unsigned)(next - '0');
            rc = capture_check(c, tpl_off(c, node, flags, i), n, cap, w);
            dw_sim_seg seg = {DW_SIM_SEG_CAPTURE, {NULL, 0}, 0, n, NULL};
            if (rc == DW_OK)
                rc = flush_literal(c, t, &segcap, &lit);
            if (rc == DW_OK)
                rc = add_seg(c, t, &segcap, seg);
            i += 2;
        } else {
            rc = fail_at(c, tpl_off(c, node, flags, i),
                         "'$' starts no placeholder (write \"${name}\" for a variable, \"$1\" "
                         "for a capture or \"$$\" for a literal '$')");
        }
    }
    if (rc == DW_OK && hi >= 0)
        rc = fail(c, node, "odd number of hex digits");
    if (rc == DW_OK)
        rc = flush_literal(c, t, &segcap, &lit);
    dw_buf_free(&lit);
    if (rc != DW_OK)
        template_free(t);
    return rc;
}

static int template_literal(dw_sim_template *t, ctx *c, const dw_sim_bytes *b)
{
    template_free(t);
    if (b->len == 0)
        return DW_OK;
    dw_sim_seg seg = {DW_SIM_SEG_LITERAL, {NULL, 0}, 0, 0, NULL};
    if (bytes_set(c, &seg.literal, b->data, b->len) != DW_OK)
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

static int parse_template_string(ctx *c, const cJSON *v, int cap, dw_sim_template *t)
{
    return parse_template_text(c, v, v->valuestring, strlen(v->valuestring), TPL_IN_STRING, cap, t);
}

/* ---- Lua ------------------------------------------------------------------ */

/* Where line `line` (1-based) of string v's value starts in the text. */
static size_t lua_line_pos(ctx *c, const cJSON *v, unsigned line)
{
    const char *s = v->valuestring;
    size_t i = 0;
    for (unsigned l = 1; l < line && s[i]; i++)
        if (s[i] == '\n')
            l++;
    return str_pos(c, v, i);
}

static int add_chunk(ctx *c, dw_sim_lua_chunk *ch)
{
    dw_sim_script *s = c->s;
    if (s->nlua == c->lua_cap) {
        size_t ncap = c->lua_cap ? 2 * c->lua_cap : 4;
        dw_sim_lua_chunk **l = realloc(s->lua, ncap * sizeof *l);
        if (!l)
            return oom(c);
        s->lua = l;
        c->lua_cap = ncap;
    }
    ch->id = s->nlua;
    s->lua[s->nlua++] = ch;
    return DW_OK;
}

static void chunk_free(dw_sim_lua_chunk *ch)
{
    if (!ch)
        return;
    free(ch->source);
    free(ch->where);
    free(ch);
}

/* A chunk of Lua at v (the current path): an expression, or statements.
 * Its syntax is checked now; an error points at the line of the string
 * where Lua found it. */
static int parse_lua(ctx *c, const cJSON *v, int statements, const dw_sim_lua_chunk **out)
{
    if (!cJSON_IsString(v))
        return fail(c, v, "expected string (Lua %s)", statements ? "statements" : "expression");
    if (c->no_lua)
        return fail(c, v, "Lua runs only in rules and steps");
    if (!v->valuestring[strspn(v->valuestring, " \t\r\n")])
        return fail(c, v, "empty Lua %s", statements ? "statements" : "expression");
    if (!c->lua && !(c->lua = dw_sim_lua_checker_new()))
        return oom(c);
    char msg[300];
    unsigned line = 1;
    int rc = dw_sim_lua_check(c->lua, v->valuestring, statements, &line, msg, sizeof msg);
    if (rc == DW_ENOMEM)
        return oom(c);
    if (rc != DW_OK)
        return fail_at(c, lua_line_pos(c, v, line), "%s", msg);
    dw_sim_lua_chunk *ch = calloc(1, sizeof *ch);
    if (!ch || !(ch->source = strdup(v->valuestring)) || !(ch->where = strdup(c->path))) {
        chunk_free(ch);
        return oom(c);
    }
    ch->statements = statements;
    if (add_chunk(c, ch) != DW_OK) {
        chunk_free(ch);
        return DW_ENOMEM;
    }
    *out = ch;
    return DW_OK;
}

/* {"lua": "expression"}: a computed reply frame or set value. */
static int parse_lua_template(ctx *c, const cJSON *v, const cJSON *lua, dw_sim_template *t)
{
    if (cJSON_GetArraySize(v) != 1)
        return fail(c, v, "{\"lua\": ...} takes no other key");
    dw_sim_seg seg = {DW_SIM_SEG_LUA, {NULL, 0}, 0, 0, NULL};
    size_t old = push_key(c, "lua");
    int rc = parse_lua(c, lua, 0, &seg.lua);
    pop(c, old);
    size_t cap = 0;
    template_free(t);
    return rc == DW_OK ? add_seg(c, t, &cap, seg) : rc;
}

/* A value: a template string, a binary object, a number or a boolean (as
 * its JSON text), or {"lua": ...}. Used by "set". */
static int parse_value_template(ctx *c, const cJSON *v, int cap, dw_sim_template *t)
{
    if (cJSON_IsString(v))
        return parse_template_string(c, v, cap, t);
    if (cJSON_IsNumber(v) || cJSON_IsBool(v)) {
        char *text = cJSON_PrintUnformatted(v);
        if (!text)
            return oom(c);
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
            size_t old = push_key(c, "hex");
            int rc = parse_template_text(c, hex, hex->valuestring, strlen(hex->valuestring),
                                         TPL_IN_STRING | TPL_HEX, cap, t);
            pop(c, old);
            return rc;
        }
        dw_sim_bytes b = {NULL, 0};
        int rc = parse_binary(c, v, &b);
        if (rc == DW_OK)
            rc = template_literal(t, c, &b);
        free(b.data);
        return rc;
    }
    return fail(c, v, "expected string, number, boolean or object");
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
static int parse_frame(ctx *c, const cJSON *v, int cap, dw_sim_template *t)
{
    if (cJSON_IsString(v))
        return parse_template_string(c, v, cap, t);
    if (!cJSON_IsObject(v))
        return fail(c, v, "expected string or object");
    const cJSON *vals[4];
    int rc = members(c, v, frame_keys, 4, vals);
    if (rc != DW_OK)
        return rc;
    if (!vals[2])
        return parse_value_template(c, v, cap, t);
    if (vals[0] || vals[1] || vals[3]) {
        size_t old = push_key(c, "json");
        rc = fail_key(c, vals[2], "give one of \"hex\", \"base64\", \"json\" or \"lua\"");
        pop(c, old);
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
        return oom(c);
    size_t old = push_key(c, "json");
    rc = parse_template_text(c, vals[2], text, strlen(text), 0, cap, t);
    pop(c, old);
    free(text);
    return rc;
}

/* A literal frame must fit the response framing (templates are checked when
 * they are rendered). */
static int check_frame(ctx *c, const cJSON *v, const dw_sim_template *t)
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
        return oom(c);
    if (rc != DW_OK)
        return fail(c, v, "cannot be framed: %s", dw_error_message(&e));
    return DW_OK;
}

/* ---- matching ------------------------------------------------------------ */

static void match_free(dw_sim_match *m)
{
    pcre2_code_free(m->re);
    m->re = NULL;
    dw_scpi_pattern_free(m->scpi);
    m->scpi = NULL;
    for (size_t i = 0; i < m->nparams; i++)
        free(m->params[i].choices);
    free(m->params);
    m->params = NULL;
    m->nparams = 0;
    m->kind = DW_SIM_MATCH_EXACT;
    free(m->bytes.data);
    m->bytes.data = NULL;
    free(m->source);
    m->source = NULL;
}

/* An exact or prefix match that no request can satisfy is a mistake. */
static int check_request(ctx *c, const cJSON *v, const dw_sim_match *m)
{
    const dw_sim_framing *f = &c->s->request_framing;
    if (!c->req_m || m->kind == DW_SIM_MATCH_REGEX)
        return DW_OK;
    if (m->kind == DW_SIM_MATCH_PREFIX) {
        if (f->type == DW_SIM_FRAMING_FIXED && m->bytes.len > f->length)
            return fail(c, v,
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
        return oom(c);
    if (rc != DW_OK)
        return fail(c, v, "never matches: %s", dw_error_message(&e));
    return DW_OK;
}

/* Compile a regex once, at load. Matching is bounded by the engine's limits
 * (match, depth, heap, JIT stack), which is what makes any pattern safe to
 * serve, back-references and nested quantifiers included: no pattern is
 * refused for its shape. Patterns are bytes (UTF is refused), '.' matches
 * any byte and '$' only the very end, as POSIX EREs did. PCRE2 itself
 * refuses a compiled pattern past its size limit. */
static int regex_compile(ctx *c, const cJSON *v, int icase, dw_sim_match *m)
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
            return oom(c);
        if (pcre2_get_error_message(code, msg, sizeof msg) < 0)
            snprintf((char *)msg, sizeof msg, "error %d", code);
        return fail(c, v, "%s at offset %zu", (const char *)msg, (size_t)at);
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

static int set_source(ctx *c, dw_sim_match *m, const cJSON *v)
{
    free(m->source);
    m->source = cJSON_IsString(v) ? strdup(v->valuestring) : cJSON_PrintUnformatted(v);
    return m->source ? DW_OK : oom(c);
}

/* ---- SCPI header patterns ------------------------------------------------ */

static const char *const scpi_types[] = {"any", "numeric", "bool", "string", "block"};

/* Choices "IMMediate|BUS|EXTernal": each a mnemonic, upper case first. */
static int scpi_choices_check(ctx *c, const cJSON *v)
{
    const char *t = v->valuestring;
    size_t i = 0;
    for (;;) {
        size_t start = i;
        int lower = 0;
        if (t[i] >= 'a' && t[i] <= 'z')
            return fail_at(c, str_pos(c, v, i),
                           "a choice starts with its short form in upper case");
        while ((t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= 'a' && t[i] <= 'z') ||
               (i > start && ((t[i] >= '0' && t[i] <= '9') || t[i] == '_'))) {
            if (t[i] >= 'a' && t[i] <= 'z')
                lower = 1;
            else if (lower && t[i] >= 'A' && t[i] <= 'Z')
                return fail_at(c, str_pos(c, v, i),
                               "upper case marks the short form: it must come first");
            i++;
        }
        if (i == start || i - start > DW_SCPI_MAX_MNEMONIC)
            return fail_at(c, str_pos(c, v, start),
                           "expected \"any\", \"numeric\", \"bool\", \"string\", \"block\" "
                           "or choices such as \"IMMediate|BUS\"");
        if (t[i] == 0)
            return DW_OK;
        if (t[i] != '|')
            return fail_at(c, str_pos(c, v, i), "expected '|' between choices");
        i++;
    }
}

static int parse_scpi_params(ctx *c, const cJSON *v, dw_sim_match *m)
{
    if (!cJSON_IsArray(v))
        return fail(c, v, "expected array");
    size_t n = (size_t)cJSON_GetArraySize(v);
    if (n > MAX_CAPTURE)
        return fail(c, v, "at most %d parameters ($1..$%d)", MAX_CAPTURE, MAX_CAPTURE);
    m->has_params = 1;
    if (n && !(m->params = calloc(n, sizeof *m->params)))
        return oom(c);
    size_t i = 0;
    int rc = DW_OK;
    for (const cJSON *e = v->child; e && rc == DW_OK; e = e->next, i++) {
        size_t old = push_index(c, i);
        m->nparams = i + 1;
        if (!cJSON_IsString(e)) {
            rc = fail(c, e, "expected string");
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
                    rc = oom(c);
            }
        }
        pop(c, old);
    }
    return rc;
}

/* {"scpi": "[SOURce:]FREQuency[:CW]?", "params": [...]}. */
static int parse_scpi_match(ctx *c, const cJSON *v, dw_sim_match *m, int *cap)
{
    static const char *const keys[] = {"scpi", "params"};
    const cJSON *vals[2];
    int rc = members(c, v, keys, 2, vals);
    if (rc != DW_OK)
        return rc;
    size_t old = push_key(c, "scpi");
    if (c->s->profile != DW_SIM_PROFILE_SCPI)
        rc = fail_key(c, vals[0], "a SCPI header needs \"profile\": \"scpi\"");
    else if (!cJSON_IsString(vals[0]))
        rc = fail(c, vals[0], "expected string");
    if (rc == DW_OK) {
        size_t where;
        const char *why;
        rc = dw_scpi_pattern_compile(vals[0]->valuestring, &m->scpi, &where, &why);
        if (rc == DW_ENOMEM)
            rc = oom(c);
        else if (rc != DW_OK)
            rc = fail_at(c, str_pos(c, vals[0], where), "bad SCPI header: %s", why);
    }
    if (rc == DW_OK)
        rc = set_source(c, m, vals[0]);
    pop(c, old);
    m->kind = DW_SIM_MATCH_SCPI;
    if (rc == DW_OK && vals[1]) {
        old = push_key(c, "params");
        rc = parse_scpi_params(c, vals[1], m);
        pop(c, old);
    }
    *cap = m->has_params ? (int)m->nparams : MAX_CAPTURE;
    return rc;
}

/* "when" / "expect". *cap gets the number of capture groups usable in
 * templates (0 unless a regex or a SCPI header). */
static int parse_match(ctx *c, const cJSON *v, dw_sim_match *m, int *cap)
{
    *cap = 0;
    if (cJSON_IsObject(v) && cJSON_GetObjectItemCaseSensitive(v, "scpi"))
        return parse_scpi_match(c, v, m, cap);
    if (cJSON_IsString(v)) {
        m->kind = DW_SIM_MATCH_EXACT;
        int rc = bytes_set(c, &m->bytes, v->valuestring, strlen(v->valuestring));
        if (rc == DW_OK)
            rc = set_source(c, m, v);
        return rc == DW_OK ? check_request(c, v, m) : rc;
    }
    if (!cJSON_IsObject(v))
        return fail(c, v, "expected string or object");
    const cJSON *vals[M_N];
    int rc = members(c, v, match_keys, M_N, vals);
    if (rc != DW_OK)
        return rc;
    const cJSON *how = NULL;
    for (int k = M_EXACT; k <= M_BASE64; k++) {
        if (!vals[k])
            continue;
        if (how) {
            size_t old = push_key(c, vals[k]->string);
            rc = fail_key(c, vals[k],
                          "give one of \"exact\", \"prefix\", \"regex\", \"hex\" or \"base64\"");
            pop(c, old);
            return rc;
        }
        how = vals[k];
    }
    if (!how)
        return fail(c, v, "expected \"exact\", \"prefix\", \"regex\", \"hex\" or \"base64\"");
    int icase = 0;
    if (vals[M_ICASE]) {
        size_t old = push_key(c, "icase");
        if (!vals[M_REGEX])
            rc = fail_key(c, vals[M_ICASE], "only with \"regex\"");
        else if (!cJSON_IsBool(vals[M_ICASE]))
            rc = fail(c, vals[M_ICASE], "expected boolean");
        else
            icase = cJSON_IsTrue(vals[M_ICASE]);
        pop(c, old);
        if (rc != DW_OK)
            return rc;
    }
    size_t old = push_key(c, how->string);
    if (how == vals[M_EXACT] || how == vals[M_PREFIX]) {
        m->kind = how == vals[M_EXACT] ? DW_SIM_MATCH_EXACT : DW_SIM_MATCH_PREFIX;
        rc = parse_bytes(c, how, &m->bytes);
    } else if (how == vals[M_HEX]) {
        rc = decode_hex(c, how, &m->bytes);
    } else if (how == vals[M_BASE64]) {
        rc = decode_base64(c, how, &m->bytes);
    } else if (!cJSON_IsString(how)) {
        rc = fail(c, how, "expected string");
    } else if ((rc = regex_compile(c, how, icase, m)) == DW_OK) {
        *cap = m->groups > MAX_CAPTURE ? MAX_CAPTURE : (int)m->groups;
    }
    if (rc == DW_OK)
        rc = set_source(c, m, cJSON_IsString(how) ? how : v);
    if (rc == DW_OK)
        rc = check_request(c, how, m);
    pop(c, old);
    return rc;
}

/* ---- actions ------------------------------------------------------------- */

static void action_free(dw_sim_action *a)
{
    for (size_t i = 0; i < a->nreplies; i++) {
        if (a->replies[i])
            for (size_t f = 0; f < a->nframes[i]; f++)
                template_free(&a->replies[i][f]);
        free(a->replies[i]);
    }
    free(a->replies);
    free(a->nframes);
    for (size_t i = 0; i < a->nsets; i++)
        template_free(&a->sets[i].value);
    free(a->sets);
    free(a->split);
    free(a->garbage.data);
    memset(a, 0, sizeof *a);
}

/* One reply of a list: null (no reply), a frame, or {"frames": [...]}. */
static int parse_reply_item(ctx *c, const cJSON *v, int cap, dw_sim_template **frames,
                            size_t *nframes)
{
    if (cJSON_IsNull(v))
        return DW_OK;
    const cJSON *list = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "frames") : NULL;
    if (!list) {
        if (!cJSON_IsString(v) && !cJSON_IsObject(v))
            return fail(c, v, "expected string, object or null");
        *frames = calloc(1, sizeof **frames);
        if (!*frames)
            return oom(c);
        *nframes = 1;
        int rc = parse_frame(c, v, cap, &(*frames)[0]);
        return rc == DW_OK ? check_frame(c, v, &(*frames)[0]) : rc;
    }
    static const char *const keys[] = {"frames"};
    const cJSON *vals[1];
    int rc = members(c, v, keys, 1, vals);
    if (rc != DW_OK)
        return rc;
    size_t old = push_key(c, "frames");
    size_t n = cJSON_IsArray(list) ? (size_t)cJSON_GetArraySize(list) : 0;
    if (!cJSON_IsArray(list))
        rc = fail(c, list, "expected array");
    else if (n == 0)
        rc = fail(c, list, "expected at least one frame");
    else if (!(*frames = calloc(n, sizeof **frames)))
        rc = oom(c);
    else
        *nframes = n;
    size_t i = 0;
    for (const cJSON *f = list->child; f && rc == DW_OK; f = f->next, i++) {
        size_t o2 = push_index(c, i);
        rc = parse_frame(c, f, cap, &(*frames)[i]);
        if (rc == DW_OK)
            rc = check_frame(c, f, &(*frames)[i]);
        pop(c, o2);
    }
    pop(c, old);
    return rc;
}

static int parse_replies(ctx *c, const cJSON *v, int cap, dw_sim_action *a)
{
    if (cJSON_IsNull(v))
        return DW_OK;
    if (!cJSON_IsArray(v) && !cJSON_IsString(v) && !cJSON_IsObject(v))
        return fail(c, v, "expected string, object, array or null");
    size_t n = cJSON_IsArray(v) ? (size_t)cJSON_GetArraySize(v) : 1;
    if (n == 0)
        return fail(c, v, "expected at least one reply (write null for no reply)");
    a->replies = calloc(n, sizeof *a->replies);
    a->nframes = calloc(n, sizeof *a->nframes);
    if (!a->replies || !a->nframes)
        return oom(c);
    a->nreplies = n;
    if (!cJSON_IsArray(v))
        return parse_reply_item(c, v, cap, &a->replies[0], &a->nframes[0]);
    size_t i = 0;
    for (const cJSON *r = v->child; r; r = r->next, i++) {
        size_t old = push_index(c, i);
        int rc = parse_reply_item(c, r, cap, &a->replies[i], &a->nframes[i]);
        pop(c, old);
        if (rc != DW_OK)
            return rc;
    }
    return DW_OK;
}

static int parse_sets(ctx *c, const cJSON *v, int cap, dw_sim_action *a)
{
    if (!cJSON_IsObject(v))
        return fail(c, v, "expected object");
    size_t n = (size_t)cJSON_GetArraySize(v);
    if (n == 0)
        return DW_OK;
    a->sets = calloc(n, sizeof *a->sets);
    if (!a->sets)
        return oom(c);
    a->nsets = n;
    c->mark_gen++;
    size_t i = 0;
    int rc = DW_OK;
    for (const cJSON *m = v->child; m && rc == DW_OK; m = m->next, i++) {
        size_t old = push_key(c, m->string);
        size_t var = find_var(c, m->string, strlen(m->string));
        if (var == SIZE_MAX &&
            (var = dw_sim_prop_find(c->s->props, m->string, strlen(m->string))) != SIZE_MAX) {
            a->sets[i].prop = 1; /* a property: set at run time, validated */
            a->sets[i].var = var;
            rc = parse_value_template(c, m, cap, &a->sets[i].value);
        } else if (var == SIZE_MAX) {
            rc = unknown_var(c, dw__json_pos_of(c->pos, m, 1), m->string, strlen(m->string), 0);
        } else if (c->var_mark[var] == c->mark_gen) {
            rc = fail_key(c, m, "duplicate key");
        } else {
            c->var_mark[var] = c->mark_gen;
            a->sets[i].var = var;
            rc = parse_value_template(c, m, cap, &a->sets[i].value);
        }
        pop(c, old);
    }
    return rc;
}

enum {
    A_REPLY,
    A_AFTER_LAST,
    A_SET,
    A_DELAY,
    A_SPLIT,
    A_SPLIT_DELAY,
    A_FAULT,
    A_FAULT_ON,
    A_GARBAGE,
    A_LUA,
    A_N
};
#define ACTION_KEYS                                                                                \
    "reply", "after_last", "set", "delay_ms", "split", "split_delay_ms", "fault", "fault_on",      \
        "garbage", "lua"

static const char *const after_last_names[] = {"repeat_last", "cycle", "silent"};
static const char *const fault_names[] = {"none",    "close", "reset",    "hang",
                                          "garbage", "drop",  "duplicate"};

/* The action keys of a rule, step or "unmatched", already separated by
 * members(): av[A_...]. */
static int parse_action(ctx *c, const cJSON *const *av, int cap, dw_sim_action *a)
{
    int rc = DW_OK;
    uint64_t u;
    for (int k = 0; k < A_N && rc == DW_OK; k++) {
        const cJSON *v = av[k];
        if (!v)
            continue;
        size_t old = push_key(c, v->string);
        switch (k) {
        case A_REPLY:
            rc = parse_replies(c, v, cap, a);
            break;
        case A_AFTER_LAST: {
            int e = 0;
            if (!av[A_REPLY] || !cJSON_IsArray(av[A_REPLY]))
                rc = fail_key(c, v, "only with a list of replies");
            else if ((rc = get_enum(c, v, after_last_names, 3, &e)) == DW_OK)
                a->after_last = (dw_sim_after_last)e;
            break;
        }
        case A_SET:
            rc = parse_sets(c, v, cap, a);
            break;
        case A_DELAY:
            if ((rc = get_uint(c, v, 0, MAX_DELAY_MS, &u)) == DW_OK)
                a->delay_ms = (unsigned)u;
            break;
        case A_SPLIT: {
            size_t n = cJSON_IsArray(v) ? (size_t)cJSON_GetArraySize(v) : 0;
            if (!cJSON_IsArray(v)) {
                rc = fail(c, v, "expected array");
            } else if (n == 0) {
                rc = fail(c, v, "expected at least one size");
            } else if (!(a->split = calloc(n, sizeof *a->split))) {
                rc = oom(c);
            } else {
                a->nsplit = n;
                size_t i = 0;
                for (const cJSON *e = v->child; e && rc == DW_OK; e = e->next, i++) {
                    size_t o2 = push_index(c, i);
                    if ((rc = get_uint(c, e, 1, DW_SIM_MAX_FRAME_LIMIT, &u)) == DW_OK)
                        a->split[i] = (size_t)u;
                    pop(c, o2);
                }
            }
            break;
        }
        case A_SPLIT_DELAY:
            if (!av[A_SPLIT])
                rc = fail_key(c, v, "only with \"split\"");
            else if ((rc = get_uint(c, v, 0, MAX_DELAY_MS, &u)) == DW_OK)
                a->split_delay_ms = (unsigned)u;
            break;
        case A_FAULT: {
            int e = 0;
            if ((rc = get_enum(c, v, fault_names + 1, 6, &e)) == DW_OK)
                a->fault = (dw_sim_fault)(e + 1);
            if (rc == DW_OK && a->fault == DW_SIM_FAULT_GARBAGE && !av[A_GARBAGE])
                rc = fail(c, v, "fault \"garbage\" needs \"garbage\": the bytes to send");
            break;
        }
        case A_FAULT_ON:
            if (!av[A_FAULT])
                rc = fail_key(c, v, "only with \"fault\"");
            else if ((rc = get_uint(c, v, 1, UINT32_MAX, &u)) == DW_OK)
                a->fault_on = (unsigned)u;
            break;
        case A_GARBAGE:
            if (!av[A_FAULT] || !cJSON_IsString(av[A_FAULT]) ||
                strcmp(av[A_FAULT]->valuestring, "garbage") != 0)
                rc = fail_key(c, v, "only with \"fault\": \"garbage\"");
            else if ((rc = parse_bytes(c, v, &a->garbage)) == DW_OK && a->garbage.len == 0)
                rc = fail(c, v, "must not be empty");
            break;
        case A_LUA:
            rc = parse_lua(c, v, 1, &a->lua);
            break;
        }
        pop(c, old);
    }
    return rc;
}

/* ---- rules, steps, unmatched, periodic ----------------------------------- */

#define ENTRY_KEYS 4 /* keys before the action's */
/* A rule's own network keys follow its action keys (netfault_load.c). */
#define RULE_NET_KEYS 3
static const char *const rule_keys[] = {"when",      "name",      "description", "if",
                                        ACTION_KEYS, "direction", "probability", "delay"};
static const char *const step_keys[] = {"expect", "name", "description", "if", ACTION_KEYS};

/* "if": a Lua expression. */
static int parse_cond(ctx *c, const cJSON *v, const dw_sim_lua_chunk **cond)
{
    if (!v)
        return DW_OK;
    size_t old = push_key(c, "if");
    int rc = parse_lua(c, v, 0, cond);
    pop(c, old);
    return rc;
}

/* A rule or a step: keys[0] is "when" or "expect"; a rule (net not NULL)
 * also has its network keys. */
static int parse_entry(ctx *c, const cJSON *v, const char *const *keys, const char *list,
                       size_t index, char **name, dw_sim_match *m, const dw_sim_lua_chunk **cond,
                       dw_sim_action *a, dw_sim_rule_net **net)
{
    if (!cJSON_IsObject(v))
        return fail(c, v, "expected object");
    const cJSON *vals[ENTRY_KEYS + A_N + RULE_NET_KEYS];
    size_t nkeys = ENTRY_KEYS + A_N + (net ? RULE_NET_KEYS : 0);
    const char *other = strcmp(keys[0], "when") == 0 ? "expect" : "when";
    const cJSON *wrong = cJSON_GetObjectItemCaseSensitive(v, other);
    if (wrong) {
        size_t old = push_key(c, other);
        int rc = fail_key(c, wrong, "unknown key (%s match with \"%s\")", list, keys[0]);
        pop(c, old);
        return rc;
    }
    int rc = members(c, v, keys, nkeys, vals);
    if (rc != DW_OK)
        return rc;
    if (!vals[0])
        return fail(c, v, "missing \"%s\"", keys[0]);
    if (vals[1]) {
        size_t old = push_key(c, "name");
        rc = get_string(c, vals[1], name);
        pop(c, old);
    } else {
        char buf[48];
        snprintf(buf, sizeof buf, "%s[%zu]", list, index);
        *name = strdup(buf);
        if (!*name)
            rc = oom(c);
    }
    if (rc == DW_OK && vals[2] && !cJSON_IsString(vals[2])) {
        size_t old = push_key(c, "description");
        rc = fail(c, vals[2], "expected string");
        pop(c, old);
    }
    if (rc != DW_OK)
        return rc;
    int cap = 0;
    size_t old = push_key(c, keys[0]);
    rc = parse_match(c, vals[0], m, &cap);
    pop(c, old);
    if (rc == DW_OK)
        rc = parse_cond(c, vals[3], cond);
    if (rc != DW_OK)
        return rc;
    rc = parse_action(c, vals + ENTRY_KEYS, cap, a);
    if (rc == DW_OK && net)
        rc = dw__load_rule_net(c, vals + ENTRY_KEYS + A_N, vals[ENTRY_KEYS + A_FAULT] != NULL, net);
    if (rc == DW_OK && net)
        a->net = *net;
    return rc;
}

static int parse_list(ctx *c, const cJSON *v, int rules)
{
    if (!cJSON_IsArray(v))
        return fail(c, v, "expected array");
    dw_sim_script *s = c->s;
    size_t n = (size_t)cJSON_GetArraySize(v);
    if (n == 0)
        return DW_OK;
    if (rules) {
        if (!(s->rules = calloc(n, sizeof *s->rules)))
            return oom(c);
        s->nrules = n;
    } else {
        if (!(s->steps = calloc(n, sizeof *s->steps)))
            return oom(c);
        s->nsteps = n;
    }
    size_t i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        size_t old = push_index(c, i);
        int rc =
            rules ? parse_entry(c, e, rule_keys, "rules", i, &s->rules[i].name, &s->rules[i].when,
                                &s->rules[i].cond, &s->rules[i].action, &s->rules[i].net)
                  : parse_entry(c, e, step_keys, "steps", i, &s->steps[i].name, &s->steps[i].expect,
                                &s->steps[i].cond, &s->steps[i].action, NULL);
        pop(c, old);
        if (rc != DW_OK)
            return rc;
    }
    return DW_OK;
}

static const char *const unmatched_keys[] = {"close", ACTION_KEYS};

static int parse_unmatched(ctx *c, const cJSON *v)
{
    if (!cJSON_IsObject(v))
        return fail(c, v, "expected object");
    const cJSON *vals[1 + A_N];
    int rc = members(c, v, unmatched_keys, 1 + A_N, vals);
    if (rc != DW_OK)
        return rc;
    if (vals[0]) {
        size_t old = push_key(c, "close");
        if (!cJSON_IsBool(vals[0]))
            rc = fail(c, vals[0], "expected boolean");
        c->s->unmatched_close = cJSON_IsTrue(vals[0]);
        pop(c, old);
        if (rc != DW_OK)
            return rc;
    }
    return parse_action(c, vals + 1, 0, &c->s->unmatched);
}

/* "on_error": what a property's command does with a value it refuses. */
static int parse_on_error(ctx *c, const cJSON *v)
{
    if (c->s->profile == DW_SIM_PROFILE_SCPI)
        return fail_key(c, v, "not with the SCPI profile (a refused value queues its error)");
    if (!cJSON_IsObject(v))
        return fail(c, v, "expected object");
    const cJSON *vals[A_N];
    int rc = members(c, v, unmatched_keys + 1, A_N, vals);
    c->s->has_on_error = 1;
    return rc == DW_OK ? parse_action(c, vals, 0, &c->s->on_error) : rc;
}

static int parse_periodic(ctx *c, const cJSON *v)
{
    static const char *const keys[] = {"every_ms", "send", "description"};
    if (!cJSON_IsArray(v))
        return fail(c, v, "expected array");
    size_t n = (size_t)cJSON_GetArraySize(v);
    if (n == 0)
        return DW_OK;
    dw_sim_script *s = c->s;
    if (!(s->periodic = calloc(n, sizeof *s->periodic)))
        return oom(c);
    s->nperiodic = n;
    size_t i = 0;
    int rc = DW_OK;
    for (const cJSON *e = v->child; e && rc == DW_OK; e = e->next, i++) {
        size_t old = push_index(c, i);
        const cJSON *vals[3];
        uint64_t u = 0;
        if (!cJSON_IsObject(e))
            rc = fail(c, e, "expected object");
        if (rc == DW_OK)
            rc = members(c, e, keys, 3, vals);
        if (rc == DW_OK && !vals[0])
            rc = fail(c, e, "missing \"every_ms\"");
        if (rc == DW_OK && !vals[1])
            rc = fail(c, e, "missing \"send\"");
        if (rc == DW_OK) {
            size_t o2 = push_key(c, "every_ms");
            rc = get_uint(c, vals[0], 1, MAX_PERIOD_MS, &u);
            s->periodic[i].every_ms = (unsigned)u;
            pop(c, o2);
        }
        if (rc == DW_OK) {
            size_t o2 = push_key(c, "send");
            rc = parse_frame(c, vals[1], CAP_NONE, &s->periodic[i].send);
            if (rc == DW_OK)
                rc = check_frame(c, vals[1], &s->periodic[i].send);
            pop(c, o2);
        }
        if (rc == DW_OK && vals[2] && !cJSON_IsString(vals[2])) {
            size_t o2 = push_key(c, "description");
            rc = fail(c, vals[2], "expected string");
            pop(c, o2);
        }
        pop(c, old);
    }
    return rc;
}

/* ---- state --------------------------------------------------------------- */

static int var_name_ok(const char *n)
{
    if (!((*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z') || *n == '_'))
        return 0;
    for (const char *p = n + 1; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return 0;
    return 1;
}

/* By name, then by position in the document. */
static int cmp_var(const void *a, const void *b)
{
    const struct var_ref *x = a, *y = b;
    int cmp = strcmp(x->name, y->name);
    return cmp ? cmp : (x->idx > y->idx) - (x->idx < y->idx);
}

/* A variable's initial value: a string, a binary object, or a number or a
 * boolean as its JSON text. */
static int parse_initial(ctx *c, const cJSON *m, dw_sim_bytes *out)
{
    if (cJSON_IsString(m) || cJSON_IsObject(m))
        return parse_bytes(c, m, out);
    if (!cJSON_IsNumber(m) && !cJSON_IsBool(m))
        return fail(c, m, "expected string, number, boolean or object");
    char *text = cJSON_PrintUnformatted(m);
    if (!text)
        return oom(c);
    *out = (dw_sim_bytes){(uint8_t *)text, strlen(text)};
    return DW_OK;
}

static int parse_state(ctx *c, const cJSON *v)
{
    if (!cJSON_IsObject(v))
        return fail(c, v, "expected object");
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
        return oom(c);
    }
    s->nvars = n;
    size_t i = 0;
    int rc = DW_OK;
    for (const cJSON *m = v->child; m && rc == DW_OK; m = m->next, i++) {
        nodes[i] = m;
        size_t old = push_key(c, m->string);
        if (!var_name_ok(m->string))
            rc = fail_key(c, m,
                          "invalid variable name (use letters, digits, '_', '-' and '.', "
                          "starting with a letter or '_')");
        else if (strcmp(m->string, "request") == 0)
            rc = fail_key(c, m, "\"request\" is reserved: \"${request}\" is the whole request");
        else if (!(s->vars[i].name = strdup(m->string)))
            rc = oom(c);
        else
            rc = parse_initial(c, m, &s->vars[i].initial);
        if (s->vars[i].name)
            c->var_order[i] = (struct var_ref){s->vars[i].name, i};
        pop(c, old);
    }
    if (rc == DW_OK && n) {
        qsort(c->var_order, n, sizeof *c->var_order, cmp_var);
        /* Report the first repeated name in document order: the second of
         * each run of equal names, the earliest of those. */
        size_t first = SIZE_MAX;
        for (size_t k = 1; k < n; k++) {
            const struct var_ref *a = &c->var_order[k - 1], *b = &c->var_order[k];
            if (strcmp(a->name, b->name) == 0 &&
                (k < 2 || strcmp(c->var_order[k - 2].name, a->name) != 0) && b->idx < first)
                first = b->idx;
        }
        if (first != SIZE_MAX) {
            size_t old = push_key(c, s->vars[first].name);
            rc = fail_key(c, nodes[first], "duplicate variable");
            pop(c, old);
        }
    }
    free(nodes);
    return rc;
}

/* ---- framing ------------------------------------------------------------- */

enum { F_TYPE, F_SENTINEL, F_LENGTH, F_HEADER, F_ENDIAN, F_MAX, F_N };
static const char *const framing_keys[] = {"type",        "sentinel", "length",
                                           "header_size", "endian",   "max_frame"};
static const char *const framing_names[] = {"sentinel", "fixed", "length-prefixed", "scpi",
                                            "json-lines"};
/* Which options each framing type takes (bit F_x). */
static const unsigned framing_options[] = {
    1u << F_SENTINEL | 1u << F_MAX,                /* sentinel */
    1u << F_LENGTH | 1u << F_MAX,                  /* fixed */
    1u << F_HEADER | 1u << F_ENDIAN | 1u << F_MAX, /* length-prefixed */
    1u << F_SENTINEL | 1u << F_MAX,                /* scpi */
    1u << F_MAX,                                   /* json-lines */
};
static const char *const endian_names[] = {"big", "little"};

static int framing_default(ctx *c, dw_sim_framing *f)
{
    memset(f, 0, sizeof *f);
    f->type = DW_SIM_FRAMING_SENTINEL;
    f->max_frame = DW_DEFAULT_MAX_FRAME;
    f->endian = DW_BIG_ENDIAN;
    return bytes_set(c, &f->sentinel, "\n", 1);
}

static int parse_framing_spec(ctx *c, const cJSON *v, dw_sim_framing *f)
{
    if (!cJSON_IsObject(v))
        return fail(c, v, "expected object");
    const cJSON *vals[F_N];
    int rc = members(c, v, framing_keys, F_N, vals);
    if (rc != DW_OK)
        return rc;
    if (!vals[F_TYPE])
        return fail(c, v, "missing \"type\"");
    int type = 0;
    size_t old = push_key(c, "type");
    rc = get_enum(c, vals[F_TYPE], framing_names, 5, &type);
    pop(c, old);
    if (rc != DW_OK)
        return rc;
    f->type = (dw_sim_framing_type)type;
    for (int k = F_SENTINEL; k < F_N; k++) {
        if (vals[k] && !(framing_options[type] & (1u << k))) {
            old = push_key(c, framing_keys[k]);
            rc = fail_key(c, vals[k], "not an option of %s framing", framing_names[type]);
            pop(c, old);
            return rc;
        }
    }
    uint64_t u = 0;
    for (int k = F_SENTINEL; k < F_N && rc == DW_OK; k++) {
        const cJSON *o = vals[k];
        if (!o)
            continue;
        old = push_key(c, framing_keys[k]);
        switch (k) {
        case F_SENTINEL:
            if ((rc = parse_bytes(c, o, &f->sentinel)) == DW_OK && f->sentinel.len == 0)
                rc = fail(c, o, "must not be empty");
            break;
        case F_LENGTH:
            if ((rc = get_uint(c, o, 1, DW_SIM_MAX_FRAME_LIMIT, &u)) == DW_OK)
                f->length = (size_t)u;
            break;
        case F_HEADER:
            if ((rc = get_uint(c, o, 1, 4, &u)) == DW_OK && u == 3)
                rc = fail(c, o, "expected 1, 2 or 4");
            f->header_size = (unsigned)u;
            break;
        case F_ENDIAN: {
            int e = 0;
            if ((rc = get_enum(c, o, endian_names, 2, &e)) == DW_OK)
                f->endian = e ? DW_LITTLE_ENDIAN : DW_BIG_ENDIAN;
            break;
        }
        case F_MAX:
            if ((rc = get_uint(c, o, 1, DW_SIM_MAX_FRAME_LIMIT, &u)) == DW_OK)
                f->max_frame = (size_t)u;
            break;
        }
        pop(c, old);
    }
    if (rc != DW_OK)
        return rc;
    if (f->type == DW_SIM_FRAMING_FIXED) {
        if (!vals[F_LENGTH])
            return fail(c, v, "fixed framing needs \"length\"");
        if (f->length > f->max_frame) {
            old = push_key(c, "length");
            rc = fail(c, vals[F_LENGTH], "larger than max_frame (%zu)", f->max_frame);
            pop(c, old);
            return rc;
        }
    }
    if (f->type == DW_SIM_FRAMING_LENGTH_PREFIXED && !vals[F_HEADER])
        return fail(c, v, "length-prefixed framing needs \"header_size\"");
    if (f->type != DW_SIM_FRAMING_SENTINEL && f->type != DW_SIM_FRAMING_SCPI) {
        free(f->sentinel.data);
        f->sentinel = (dw_sim_bytes){NULL, 0};
    }
    return DW_OK;
}

static int parse_framing(ctx *c, const cJSON *v)
{
    dw_sim_script *s = c->s;
    if (cJSON_IsObject(v) && (cJSON_GetObjectItemCaseSensitive(v, "request") ||
                              cJSON_GetObjectItemCaseSensitive(v, "response"))) {
        static const char *const keys[] = {"request", "response"};
        const cJSON *vals[2];
        int rc = members(c, v, keys, 2, vals);
        if (rc != DW_OK)
            return rc;
        if (!vals[0] || !vals[1])
            return fail(c, v, "missing \"%s\"", vals[0] ? "response" : "request");
        size_t old = push_key(c, "request");
        rc = parse_framing_spec(c, vals[0], &s->request_framing);
        pop(c, old);
        if (rc != DW_OK)
            return rc;
        old = push_key(c, "response");
        rc = parse_framing_spec(c, vals[1], &s->response_framing);
        pop(c, old);
        return rc;
    }
    int rc = parse_framing_spec(c, v, &s->request_framing);
    if (rc != DW_OK)
        return rc;
    dw_sim_bytes sent = s->response_framing.sentinel;
    s->response_framing = s->request_framing;
    s->response_framing.sentinel = sent;
    if (s->request_framing.sentinel.len)
        return bytes_set(c, &s->response_framing.sentinel, s->request_framing.sentinel.data,
                         s->request_framing.sentinel.len);
    free(sent.data);
    s->response_framing.sentinel = (dw_sim_bytes){NULL, 0};
    return DW_OK;
}

dw_marshaller *dw_sim_framing_marshaller(const dw_sim_framing *f)
{
    dw_marshaller *m = NULL;
    switch (f->type) {
    case DW_SIM_FRAMING_SENTINEL:
        m = dw_sentinel_marshaller_new(f->sentinel.data, f->sentinel.len);
        break;
    case DW_SIM_FRAMING_FIXED:
        m = dw_fixed_marshaller_new(f->length);
        break;
    case DW_SIM_FRAMING_LENGTH_PREFIXED:
        m = dw_length_prefixed_marshaller_new(f->header_size, f->endian);
        break;
    case DW_SIM_FRAMING_SCPI:
        m = dw_scpi_marshaller_new(f->sentinel.data, f->sentinel.len);
        break;
    case DW_SIM_FRAMING_JSON_LINES:
        m = dw_json_marshaller_new();
        break;
    }
    if (m)
        dw_marshaller_set_max_frame(m, f->max_frame ? f->max_frame : DW_DEFAULT_MAX_FRAME);
    return m;
}

int dw_sim_script_cap_frames(dw_sim_script *s, size_t max, dw_error *err)
{
    dw_sim_framing *f[2] = {&s->request_framing, &s->response_framing};
    static const char *const which[2] = {"request", "response"};
    for (int i = 0; max && i < 2; i++)
        if (f[i]->type == DW_SIM_FRAMING_FIXED && f[i]->length > max)
            return dw_error_set(err, DW_ESCRIPT,
                                "%s: the %s framing's fixed length %zu is larger than "
                                "--max-frame %zu",
                                s->path ? s->path : "script", which[i], f[i]->length, max);
    for (int i = 0; max && i < 2; i++)
        if (f[i]->max_frame > max)
            f[i]->max_frame = max;
    return DW_OK;
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
    T_N
};
static const char *const top_keys[] = {
    "$schema",   "name",       "description", "transport", "framing", "state", "scope",
    "profile",   "properties", "idn",         "banner",    "prompt",  "steps", "rules",
    "unmatched", "on_error",   "periodic",    "baud",      "network"};
static const char *const profile_names[] = {"none", "scpi"};
static const char *const transport_names[] = {"tcp", "telnet", "udp", "serial"};
#define NTRANSPORTS 4
static const char *const scope_names[] = {"shared", "connection"};

/* "profile": "scpi" or {"type": "scpi", "error_queue": N}. */
static int parse_profile(ctx *c, const cJSON *v)
{
    static const char *const keys[] = {"type", "error_queue"};
    const cJSON *vals[2] = {v, NULL};
    int rc = DW_OK, e = 0;
    if (cJSON_IsObject(v)) {
        if ((rc = members(c, v, keys, 2, vals)) != DW_OK)
            return rc;
        if (!vals[0])
            return fail(c, v, "missing \"type\"");
    }
    size_t old = cJSON_IsObject(v) ? push_key(c, "type") : c->plen;
    rc = get_enum(c, vals[0], profile_names, 2, &e);
    pop(c, old);
    c->s->profile = e ? DW_SIM_PROFILE_SCPI : DW_SIM_PROFILE_NONE;
    c->s->error_queue = 20;
    if (rc == DW_OK && vals[1]) {
        uint64_t depth = 0;
        old = push_key(c, "error_queue");
        rc = get_uint(c, vals[1], 2, 1000, &depth);
        pop(c, old);
        c->s->error_queue = (size_t)depth;
    }
    return rc;
}

static int parse_script(ctx *c, const cJSON *root)
{
    dw_sim_script *s = c->s;
    if (!cJSON_IsObject(root))
        return fail(c, root, "expected object (a script is one JSON object)");
    const cJSON *vals[T_N];
    int rc = members(c, root, top_keys, T_N, vals);
    if (rc != DW_OK)
        return rc;
    rc = framing_default(c, &s->request_framing);
    if (rc == DW_OK)
        rc = framing_default(c, &s->response_framing);
    /* An empty variable index until "state" fills it. */
    c->var_order = calloc(1, sizeof *c->var_order);
    c->var_mark = calloc(1, sizeof *c->var_mark);
    if (!c->var_order || !c->var_mark)
        return oom(c);
    for (int k = 0; k < T_N && rc == DW_OK; k++) {
        const cJSON *v = vals[k];
        if (k == T_STATE) {
            /* Literal requests and replies are checked against the framing. */
            c->req_m = dw_sim_framing_marshaller(&s->request_framing);
            c->resp_m = dw_sim_framing_marshaller(&s->response_framing);
            if (!c->req_m || !c->resp_m)
                return oom(c);
        }
        if (!v)
            continue;
        size_t old = push_key(c, v->string);
        int e = 0;
        c->no_lua = k == T_BANNER || k == T_UNMATCHED || k == T_PERIODIC;
        switch (k) {
        case T_SCHEMA:
        case T_DESCRIPTION:
            if (!cJSON_IsString(v))
                rc = fail(c, v, "expected string");
            break;
        case T_NAME:
            rc = get_string(c, v, &s->name);
            break;
        case T_TRANSPORT:
            if ((rc = get_enum(c, v, transport_names, NTRANSPORTS, &e)) == DW_OK)
                s->transport = (dw_sim_transport)e;
            break;
        case T_FRAMING:
            rc = parse_framing(c, v);
            break;
        case T_BANNER:
            /* Banner: may use variables; it is sent before any request. */
            if (cJSON_IsString(v))
                rc = parse_template_string(c, v, CAP_NONE, &s->banner);
            else if (cJSON_IsObject(v))
                rc = parse_value_template(c, v, CAP_NONE, &s->banner);
            else
                rc = fail(c, v, "expected string or object");
            break;
        case T_PROMPT:
            rc = parse_bytes(c, v, &s->prompt);
            break;
        case T_STATE:
            rc = parse_state(c, v);
            break;
        case T_SCOPE:
            if ((rc = get_enum(c, v, scope_names, 2, &e)) == DW_OK)
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
                rc = fail_key(c, v, "only with \"profile\": \"scpi\"");
            else
                rc = get_string(c, v, &s->idn);
            break;
        case T_STEPS:
            rc = parse_list(c, v, 0);
            break;
        case T_RULES:
            rc = parse_list(c, v, 1);
            break;
        case T_UNMATCHED:
            if (s->profile == DW_SIM_PROFILE_SCPI)
                rc = fail_key(c, v, "not with the SCPI profile (an undefined header queues -113)");
            else
                rc = parse_unmatched(c, v);
            break;
        case T_ON_ERROR:
            rc = parse_on_error(c, v);
            break;
        case T_PERIODIC:
            rc = parse_periodic(c, v);
            break;
        case T_BAUD:
            rc = get_baud(c, v, &s->baud);
            break;
        case T_NETWORK:
            rc = dw__load_network(c, v, &s->network);
            break;
        }
        pop(c, old);
    }
    if (rc == DW_OK && vals[T_BAUD] && s->transport != DW_SIM_SERIAL) {
        size_t old = push_key(c, "baud");
        rc = fail(c, vals[T_BAUD], "only for \"transport\": \"serial\"");
        pop(c, old);
    }
    if (rc == DW_OK && !s->name) {
        /* Default name: the file's base name. */
        const char *base = strrchr(c->name, '/');
        s->name = strdup(base ? base + 1 : c->name);
        if (!s->name)
            rc = oom(c);
    }
    return rc;
}

/* Scan text[0..len) strictly and parse it: DW_OK with the tree in *root
 * and the positions in c->pos (the caller frees both), or a located error. */
static int doc_open(ctx *c, const char *name, const char *text, size_t len, dw_error *err,
                    cJSON **root)
{
    memset(c, 0, sizeof *c);
    c->name = name;
    c->text = text ? text : "";
    c->len = len;
    c->err = err;

    dw__json_syntax syn;
    int rc = dw__json_pos_scan(c->text, len, &c->pos, &syn);
    if (rc == DW_ENOMEM)
        return oom(c);
    if (rc != DW_OK) {
        size_t line, col;
        dw__json_line_col(c->text, len, syn.offset, &line, &col);
        if (syn.path[0])
            return dw_error_set(err, DW_ESCRIPT, "%s:%zu:%zu: %s: JSON syntax error: %s", name,
                                line, col, syn.path, syn.message);
        return dw_error_set(err, DW_ESCRIPT, "%s:%zu:%zu: JSON syntax error: %s", name, line, col,
                            syn.message);
    }

    /* The strict scan passed, so cJSON should too; if it does not, its end
     * pointer (never the global error pointer) says where. */
    const char *end = NULL;
    *root = cJSON_ParseWithLengthOpts(c->text, len, &end, 0);
    if (!*root) {
        size_t off = end && end >= c->text && end <= c->text + len ? (size_t)(end - c->text) : 0;
        size_t line, col;
        dw__json_line_col(c->text, len, off, &line, &col);
        dw__json_pos_free(c->pos);
        return dw_error_set(err, DW_ESCRIPT, "%s:%zu:%zu: JSON syntax error (or out of memory)",
                            name, line, col);
    }
    return DW_OK;
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
    ctx c;
    cJSON *root = NULL;
    int rc = doc_open(&c, name, text, len, err, &root);
    if (rc != DW_OK)
        return rc;
    rc = dw__json_pos_bind(c.pos, root);
    if (rc == DW_ENOMEM) {
        rc = oom(&c);
    } else {
        /* DW_EINVAL (cannot happen for text both parsers accept): errors are
         * still reported, at 1:1. */
        c.s = calloc(1, sizeof *c.s);
        if (!c.s)
            rc = oom(&c);
        else if (!(c.s->path = strdup(name)))
            rc = oom(&c);
        else
            rc = parse_script(&c, root);
    }
    cJSON_Delete(root);
    dw__json_pos_free(c.pos);
    free(c.var_order);
    free(c.var_mark);
    dw_marshaller_free(c.req_m);
    dw_marshaller_free(c.resp_m);
    dw_sim_lua_checker_free(c.lua);
    if (rc != DW_OK) {
        dw_sim_script_free(c.s);
        return rc;
    }
    *out = c.s;
    return DW_OK;
}

/* The whole file (at most MAX_FILE_SIZE bytes) into b. */
static int read_file(const char *path, dw_buf *b, dw_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return dw_error_set(err, DW_ENOENT, "%s: %s", path, strerror(errno));
    int rc = DW_OK;
    for (;;) {
        if (dw_buf_reserve(b, 65536) != DW_OK) {
            rc = dw_error_set(err, DW_ENOMEM, "%s: out of memory reading it", path);
            break;
        }
        size_t n = fread(b->data + b->len, 1, b->cap - b->len, f);
        b->len += n;
        if (n == 0) {
            if (ferror(f))
                rc = dw_error_set(err, DW_ENOENT, "%s: %s", path, strerror(errno));
            break;
        }
        if (b->len > MAX_FILE_SIZE) {
            rc = dw_error_set(err, DW_ESCRIPT, "%s: larger than %u bytes", path, MAX_FILE_SIZE);
            break;
        }
    }
    fclose(f);
    return rc;
}

int dw_sim_script_load_file(const char *path, dw_sim_script **out, dw_error *err)
{
    *out = NULL;
    dw_buf b = DW_BUF_INIT;
    int rc = read_file(path, &b, err);
    if (rc == DW_OK)
        rc = dw_sim_script_load_buffer(path, (const char *)b.data, b.len, out, err);
    dw_buf_free(&b);
    return rc;
}

static void framing_free(dw_sim_framing *f)
{
    free(f->sentinel.data);
}

void dw_sim_script_free(dw_sim_script *s)
{
    if (!s)
        return;
    free(s->path);
    free(s->name);
    free(s->idn);
    framing_free(&s->request_framing);
    framing_free(&s->response_framing);
    template_free(&s->banner);
    free(s->prompt.data);
    for (size_t i = 0; i < s->nvars; i++) {
        free(s->vars[i].name);
        free(s->vars[i].initial.data);
    }
    free(s->vars);
    for (size_t i = 0; i < s->nsteps; i++) {
        free(s->steps[i].name);
        match_free(&s->steps[i].expect);
        action_free(&s->steps[i].action);
    }
    free(s->steps);
    for (size_t i = 0; i < s->nrules; i++) {
        free(s->rules[i].name);
        match_free(&s->rules[i].when);
        action_free(&s->rules[i].action);
        free(s->rules[i].net);
    }
    free(s->rules);
    dw_sim_netfaults_free(s->network);
    action_free(&s->unmatched);
    action_free(&s->on_error);
    dw_sim_props_free(s->props);
    for (size_t i = 0; i < s->nperiodic; i++)
        template_free(&s->periodic[i].send);
    free(s->periodic);
    for (size_t i = 0; i < s->nlua; i++)
        chunk_free(s->lua[i]);
    free(s->lua);
    free(s);
}

/* ---- helpers for the other loader files (script_int.h) ------------------- */

dw_sim_script *dw__load_script(dw__load *c)
{
    return c->s;
}

int dw__load_fail(dw__load *c, const cJSON *node, int key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail_at(c, dw__json_pos_of(c->pos, node, key), fmt, ap);
    va_end(ap);
    return rc;
}

int dw__load_fail_in(dw__load *c, const cJSON *node, size_t i, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail_at(c, str_pos(c, node, i), fmt, ap);
    va_end(ap);
    return rc;
}

int dw__load_oom(dw__load *c)
{
    return oom(c);
}

size_t dw__load_push(dw__load *c, const char *key)
{
    return push_key(c, key);
}

size_t dw__load_push_index(dw__load *c, size_t i)
{
    return push_index(c, i);
}

void dw__load_pop(dw__load *c, size_t old)
{
    pop(c, old);
}

int dw__load_members(dw__load *c, const cJSON *obj, const char *const *keys, size_t n,
                     const cJSON **vals)
{
    return members(c, obj, keys, n, vals);
}

int dw__load_uint(dw__load *c, const cJSON *v, uint64_t min, uint64_t max, uint64_t *out)
{
    return get_uint(c, v, min, max, out);
}

int dw__load_enum(dw__load *c, const cJSON *v, const char *const *names, size_t n, int *out)
{
    return get_enum(c, v, names, n, out);
}

int dw__load_name_ok(const char *n)
{
    return var_name_ok(n);
}

size_t dw__load_find_var(dw__load *c, const char *name, size_t len)
{
    return find_var(c, name, len);
}

const char *dw__load_near(const char *word, const char *const *cands, size_t n, char *buf,
                          size_t cap)
{
    near nr;
    near_init(&nr);
    for (size_t i = 0; i < n; i++)
        near_consider(&nr, word, cands[i]);
    return near_text(&nr, buf, cap);
}

/* ---- bench files ------------------------------------------------------------ */

static const char *const device_keys[] = {"name",        "script", "listen", "transport",
                                          "description", "link",   "baud"};
enum { D_NAME, D_SCRIPT, D_LISTEN, D_TRANSPORT, D_DESCRIPTION, D_LINK, D_BAUD, D_NKEYS };

/* The script's path as the bench names it: relative to the bench's directory. */
static int device_script(ctx *c, const cJSON *v, dw_sim_device_spec *d)
{
    if (!cJSON_IsString(v) || !v->valuestring[0])
        return fail(c, v, "expected the script's file name");
    const char *slash = strrchr(c->name, '/');
    int dir = v->valuestring[0] != '/' && slash ? (int)(slash - c->name) : -1;
    int w = dir >= 0 ? asprintf(&d->script, "%.*s/%s", dir, c->name, v->valuestring)
                     : asprintf(&d->script, "%s", v->valuestring);
    return w < 0 ? oom(c) : DW_OK;
}

/* "link": where to put a symbolic link to the serial line's terminal. */
static int device_link(ctx *c, const cJSON *v, dw_sim_device_spec *d)
{
    if (!cJSON_IsString(v) || !v->valuestring[0])
        return fail(c, v, "expected a path for the link (\"/tmp/ttyUSB-sim\")");
    if (v->valuestring[strlen(v->valuestring) - 1] == '/')
        return fail(c, v, "expected a path for the link, not a directory (\"%.60s\")",
                    v->valuestring);
    return get_string(c, v, &d->link);
}

static int parse_device(ctx *c, const cJSON *v, dw_sim_bench *b, dw_sim_device_spec *d)
{
    if (!cJSON_IsObject(v))
        return fail(c, v, "expected object (a device: name, script, listen)");
    const cJSON *m[D_NKEYS];
    int rc = members(c, v, device_keys, D_NKEYS, m);
    if (rc == DW_OK && (!m[D_NAME] || !m[D_SCRIPT]))
        return fail(c, v, "a device needs \"%s\"", m[D_NAME] ? "script" : "name");
    d->transport = -1;
    for (int k = 0; rc == DW_OK && k < D_NKEYS; k++) {
        if (!m[k])
            continue;
        size_t old = push_key(c, device_keys[k]);
        int e;
        if (k == D_NAME && (rc = get_string(c, m[k], &d->name)) == DW_OK && !d->name[0])
            rc = fail(c, m[k], "must not be empty");
        for (const dw_sim_device_spec *o = b->devices; rc == DW_OK && k == D_NAME && o < d; o++)
            if (strcmp(o->name, d->name) == 0)
                rc = fail(c, m[k], "another device is named \"%.60s\"", d->name);
        if (k == D_SCRIPT)
            rc = device_script(c, m[k], d);
        if (k == D_LISTEN && (!cJSON_IsString(m[k]) ||
                              dw_sim_parse_hostport(m[k]->valuestring, &d->host, &d->port) != 0))
            rc = fail(c, m[k], "expected \"HOST:PORT\" (\"127.0.0.1:5025\", \"[::1]:0\")");
        if (k == D_TRANSPORT && (rc = get_enum(c, m[k], transport_names, NTRANSPORTS, &e)) == DW_OK)
            d->transport = e;
        if (k == D_DESCRIPTION && !cJSON_IsString(m[k]))
            rc = fail(c, m[k], "expected string");
        if (k == D_LINK)
            rc = device_link(c, m[k], d);
        if (k == D_BAUD)
            rc = get_baud(c, m[k], &d->baud);
        pop(c, old);
    }
    if (rc == DW_OK && d->transport >= 0 && d->transport != DW_SIM_SERIAL &&
        (m[D_LINK] || m[D_BAUD])) {
        int k = m[D_LINK] ? D_LINK : D_BAUD;
        size_t old = push_key(c, device_keys[k]);
        rc = fail(c, m[k], "only for a serial device (\"transport\": \"serial\")");
        pop(c, old);
    }
    if (rc == DW_OK && !d->host && !(d->host = strdup("127.0.0.1")))
        rc = oom(c);
    return rc;
}

static int parse_bench(ctx *c, const cJSON *root, dw_sim_bench *b)
{
    if (!cJSON_IsArray(root))
        return fail(c, root, "expected a list of devices ([{\"name\": ..., \"script\": ...}])");
    size_t n = (size_t)cJSON_GetArraySize(root);
    if (n == 0)
        return fail(c, root, "a bench lists at least one device");
    b->devices = calloc(n, sizeof *b->devices);
    if (!b->devices)
        return oom(c);
    int rc = DW_OK;
    for (const cJSON *v = root->child; v && rc == DW_OK; v = v->next) {
        size_t old = push_index(c, b->ndevices);
        rc = parse_device(c, v, b, &b->devices[b->ndevices++]);
        pop(c, old);
    }
    return rc;
}

int dw_sim_bench_load_buffer(const char *name, const char *text, size_t len, dw_sim_bench **out,
                             dw_error *err)
{
    dw_error local;
    if (!err)
        err = &local;
    dw_error_clear(err);
    *out = NULL;
    ctx c;
    cJSON *root = NULL;
    int rc = doc_open(&c, name ? name : "<bench>", text, text ? len : 0, err, &root);
    if (rc != DW_OK)
        return rc;
    dw_sim_bench *b = calloc(1, sizeof *b);
    rc = dw__json_pos_bind(c.pos, root);
    if (rc == DW_ENOMEM || !b)
        rc = oom(&c);
    else
        rc = parse_bench(&c, root, b);
    cJSON_Delete(root);
    dw__json_pos_free(c.pos);
    if (rc != DW_OK) {
        dw_sim_bench_free(b);
        return rc;
    }
    *out = b;
    return DW_OK;
}

int dw_sim_bench_load_file(const char *path, dw_sim_bench **out, dw_error *err)
{
    *out = NULL;
    dw_buf b = DW_BUF_INIT;
    int rc = read_file(path, &b, err);
    if (rc == DW_OK)
        rc = dw_sim_bench_load_buffer(path, (const char *)b.data, b.len, out, err);
    dw_buf_free(&b);
    return rc;
}

void dw_sim_bench_free(dw_sim_bench *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->ndevices; i++) {
        free(b->devices[i].name);
        free(b->devices[i].script);
        free(b->devices[i].host);
        free(b->devices[i].link);
    }
    free(b->devices);
    free(b);
}
