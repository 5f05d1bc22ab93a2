/* devwire-sim internal: a strict JSON scanner that records where values are
 * (see json_pos.h). One pass over the text, no allocation per byte; it runs
 * before cJSON so that syntax errors are reported with a precise message
 * and the JSON path where they happen. */
#include "script/json_pos.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <devwire/error.h>

#define MAX_DEPTH 128
#define NO_KEY    SIZE_MAX

enum { K_OBJECT, K_ARRAY, K_STRING, K_NUMBER, K_TRUE, K_FALSE, K_NULL };

typedef struct rec {
    size_t val;
    size_t key; /* NO_KEY unless an object member */
    int kind;
} rec;

struct dw__json_pos {
    rec *recs;
    size_t nrecs, cap;
    /* After binding: cJSON node -> record index (open addressing). */
    const cJSON **slot_node;
    size_t *slot_rec;
    size_t mask;
};

typedef struct frame {
    int is_object;
    size_t index;   /* arrays: element being scanned */
    size_t key_off; /* objects: current key's text (inside the quotes) */
    size_t key_len; /* 0 and key_off == NO_KEY: no key yet */
} frame;

typedef struct scanner {
    const unsigned char *s;
    size_t n, i;
    dw__json_pos *p;
    dw__json_syntax *syn;
    frame stack[MAX_DEPTH];
    int depth;
    int nomem;
} scanner;

static void append_path(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append_path(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    /* Whole segments only; a path that does not fit ends in "...". */
    char seg[80];
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(seg, sizeof seg, fmt, ap);
    va_end(ap);
    if (w < 0 || strcmp(buf + (*len >= 3 ? *len - 3 : 0), "...") == 0)
        return;
    if (*len + (size_t)w + 4 > cap) {
        memcpy(buf + *len, "...", 4);
        *len += 3;
        return;
    }
    memcpy(buf + *len, seg, (size_t)w + 1);
    *len += (size_t)w;
}

static int fail(scanner *sc, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(scanner *sc, size_t off, const char *fmt, ...)
{
    dw__json_syntax *syn = sc->syn;
    syn->offset = off;
    size_t len = 0;
    syn->path[0] = '\0';
    for (int d = 0; d < sc->depth; d++) {
        const frame *f = &sc->stack[d];
        if (!f->is_object) {
            append_path(syn->path, sizeof syn->path, &len, "[%zu]", f->index);
        } else if (f->key_off != NO_KEY) {
            /* As the loader writes paths: plain keys after a dot, others
             * (shown as written, escapes and all) in ["..."]. */
            int klen = f->key_len > 60 ? 60 : (int)f->key_len;
            const char *k = (const char *)sc->s + f->key_off;
            int plain = klen > 0;
            for (int j = 0; j < klen && plain; j++)
                plain = (k[j] >= 'a' && k[j] <= 'z') || (k[j] >= 'A' && k[j] <= 'Z') ||
                        (k[j] >= '0' && k[j] <= '9') || k[j] == '_' || k[j] == '-' || k[j] == '$';
            if (plain)
                append_path(syn->path, sizeof syn->path, &len, "%s%.*s", len ? "." : "", klen, k);
            else
                append_path(syn->path, sizeof syn->path, &len, "[\"%.*s\"]", klen, k);
        }
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(syn->message, sizeof syn->message, fmt, ap);
    va_end(ap);
    return DW_ESCRIPT;
}

static int add_rec(scanner *sc, size_t val, size_t key, int kind)
{
    dw__json_pos *p = sc->p;
    if (p->nrecs == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        rec *r = realloc(p->recs, cap * sizeof *r);
        if (!r) {
            sc->nomem = 1;
            return DW_ENOMEM;
        }
        p->recs = r;
        p->cap = cap;
    }
    p->recs[p->nrecs++] = (rec){val, key, kind};
    return DW_OK;
}

static void skip_ws(scanner *sc)
{
    while (sc->i < sc->n) {
        unsigned char c = sc->s[sc->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        sc->i++;
    }
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Four hex digits at s[i..]; -1 if there are not. */
static long hex4(const unsigned char *s, size_t n, size_t i)
{
    if (n - i < 4)
        return -1;
    long v = 0;
    for (size_t k = 0; k < 4; k++) {
        int h = hexval(s[i + k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Length of the valid UTF-8 sequence at s[i..n), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t i)
{
    unsigned char c = s[i];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n - i <= need)
        return 0;
    for (size_t k = 1; k <= need; k++) {
        unsigned char b = s[i + k];
        if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF))
            return 0;
    }
    return need + 1;
}

/* At an opening quote: scan the string, leave sc->i after the closing one. */
static int scan_string(scanner *sc)
{
    const unsigned char *s = sc->s;
    size_t start = sc->i++;
    while (sc->i < sc->n) {
        unsigned char c = s[sc->i];
        if (c == '"') {
            sc->i++;
            return DW_OK;
        }
        if (c == '\\') {
            if (sc->i + 1 >= sc->n)
                break;
            unsigned char e = s[sc->i + 1];
            if (e != 'u') {
                if (!strchr("\"\\/bfnrt", e) || e == '\0')
                    return fail(sc, sc->i, "invalid escape '\\%c' in a string",
                                e >= 0x20 && e < 0x7f ? e : '?');
                sc->i += 2;
                continue;
            }
            long u = hex4(s, sc->n, sc->i + 2);
            if (u < 0)
                return fail(sc, sc->i, "invalid \\u escape (expected four hex digits)");
            if (u == 0)
                return fail(sc, sc->i,
                            "\\u0000 in a string: write bytes that include NUL as "
                            "{\"hex\": ...} or {\"base64\": ...}");
            if (u >= 0xDC00 && u <= 0xDFFF)
                return fail(sc, sc->i, "unpaired surrogate \\u%04lX in a string", (unsigned long)u);
            if (u >= 0xD800 && u <= 0xDBFF) {
                long lo = -1;
                if (sc->i + 7 < sc->n && s[sc->i + 6] == '\\' && s[sc->i + 7] == 'u')
                    lo = hex4(s, sc->n, sc->i + 8);
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return fail(sc, sc->i, "unpaired surrogate \\u%04lX in a string",
                                (unsigned long)u);
                sc->i += 12;
                continue;
            }
            sc->i += 6;
            continue;
        }
        if (c < 0x20)
            return fail(sc, sc->i,
                        "control character 0x%02X in a string (write it as \\n, \\t or \\u00XX)",
                        c);
        size_t k = utf8_seq(s, sc->n, sc->i);
        if (k == 0)
            return fail(sc, sc->i, "invalid UTF-8 byte 0x%02X in a string", c);
        sc->i += k;
    }
    return fail(sc, start, "unterminated string");
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int scan_number(scanner *sc)
{
    const unsigned char *s = sc->s;
    size_t n = sc->n;
    size_t start = sc->i;
    if (s[sc->i] == '-')
        sc->i++;
    if (sc->i < n && s[sc->i] == '0') {
        sc->i++;
        if (sc->i < n && is_digit(s[sc->i]))
            return fail(sc, start, "invalid number: leading zeros are not allowed");
    } else if (sc->i < n && is_digit(s[sc->i])) {
        while (sc->i < n && is_digit(s[sc->i]))
            sc->i++;
    } else {
        return fail(sc, start, "invalid number");
    }
    if (sc->i < n && s[sc->i] == '.') {
        sc->i++;
        if (sc->i >= n || !is_digit(s[sc->i]))
            return fail(sc, start, "invalid number: expected a digit after '.'");
        while (sc->i < n && is_digit(s[sc->i]))
            sc->i++;
    }
    if (sc->i < n && (s[sc->i] == 'e' || s[sc->i] == 'E')) {
        sc->i++;
        if (sc->i < n && (s[sc->i] == '+' || s[sc->i] == '-'))
            sc->i++;
        if (sc->i >= n || !is_digit(s[sc->i]))
            return fail(sc, start, "invalid number: expected a digit in the exponent");
        while (sc->i < n && is_digit(s[sc->i]))
            sc->i++;
    }
    return DW_OK;
}

static int unexpected(scanner *sc, const char *expected)
{
    if (sc->i >= sc->n)
        return fail(sc, sc->i, "unexpected end of text, expected %s", expected);
    unsigned char c = sc->s[sc->i];
    if (c >= 0x21 && c < 0x7f)
        return fail(sc, sc->i, "unexpected '%c', expected %s", c, expected);
    return fail(sc, sc->i, "unexpected byte 0x%02X, expected %s", c, expected);
}

static int scan_value(scanner *sc, size_t key);

static int scan_object(scanner *sc)
{
    frame *f = &sc->stack[sc->depth++];
    *f = (frame){1, 0, NO_KEY, 0};
    sc->i++; /* '{' */
    skip_ws(sc);
    if (sc->i < sc->n && sc->s[sc->i] == '}') {
        sc->i++;
        sc->depth--;
        return DW_OK;
    }
    for (;;) {
        skip_ws(sc);
        if (sc->i >= sc->n || sc->s[sc->i] != '"')
            return unexpected(sc, "a key in double quotes");
        size_t key = sc->i;
        int rc = scan_string(sc);
        if (rc != DW_OK)
            return rc;
        f->key_off = key + 1;
        f->key_len = sc->i - key - 2;
        skip_ws(sc);
        if (sc->i >= sc->n || sc->s[sc->i] != ':')
            return unexpected(sc, "':' after the key");
        sc->i++;
        rc = scan_value(sc, key);
        if (rc != DW_OK)
            return rc;
        skip_ws(sc);
        if (sc->i < sc->n && sc->s[sc->i] == ',') {
            sc->i++;
            f->key_off = NO_KEY;
            continue;
        }
        if (sc->i < sc->n && sc->s[sc->i] == '}') {
            sc->i++;
            sc->depth--;
            return DW_OK;
        }
        return unexpected(sc, "',' or '}' after an object member");
    }
}

static int scan_array(scanner *sc)
{
    frame *f = &sc->stack[sc->depth++];
    *f = (frame){0, 0, NO_KEY, 0};
    sc->i++; /* '[' */
    skip_ws(sc);
    if (sc->i < sc->n && sc->s[sc->i] == ']') {
        sc->i++;
        sc->depth--;
        return DW_OK;
    }
    for (;;) {
        int rc = scan_value(sc, NO_KEY);
        if (rc != DW_OK)
            return rc;
        skip_ws(sc);
        if (sc->i < sc->n && sc->s[sc->i] == ',') {
            sc->i++;
            f->index++;
            continue;
        }
        if (sc->i < sc->n && sc->s[sc->i] == ']') {
            sc->i++;
            sc->depth--;
            return DW_OK;
        }
        return unexpected(sc, "',' or ']' after an array element");
    }
}

static int scan_literal(scanner *sc, const char *word)
{
    size_t len = strlen(word);
    if (sc->n - sc->i < len || memcmp(sc->s + sc->i, word, len) != 0)
        return fail(sc, sc->i, "invalid literal (expected true, false or null)");
    sc->i += len;
    return DW_OK;
}

static int scan_value(scanner *sc, size_t key)
{
    skip_ws(sc);
    if (sc->i >= sc->n)
        return unexpected(sc, "a value");
    unsigned char c = sc->s[sc->i];
    int kind;
    switch (c) {
    case '{':
        kind = K_OBJECT;
        break;
    case '[':
        kind = K_ARRAY;
        break;
    case '"':
        kind = K_STRING;
        break;
    case 't':
        kind = K_TRUE;
        break;
    case 'f':
        kind = K_FALSE;
        break;
    case 'n':
        kind = K_NULL;
        break;
    default:
        if (c == '-' || is_digit(c)) {
            kind = K_NUMBER;
            break;
        }
        return unexpected(sc, "a value");
    }
    if ((kind == K_OBJECT || kind == K_ARRAY) && sc->depth >= MAX_DEPTH)
        return fail(sc, sc->i, "nested deeper than %d levels", MAX_DEPTH);
    if (add_rec(sc, sc->i, key, kind) != DW_OK)
        return DW_ENOMEM;
    switch (kind) {
    case K_OBJECT:
        return scan_object(sc);
    case K_ARRAY:
        return scan_array(sc);
    case K_STRING:
        return scan_string(sc);
    case K_NUMBER:
        return scan_number(sc);
    case K_TRUE:
        return scan_literal(sc, "true");
    case K_FALSE:
        return scan_literal(sc, "false");
    default:
        return scan_literal(sc, "null");
    }
}

int dw__json_pos_scan(const char *text, size_t len, dw__json_pos **out, dw__json_syntax *syn)
{
    *out = NULL;
    dw__json_pos *p = calloc(1, sizeof *p);
    scanner *sc = calloc(1, sizeof *sc);
    if (!p || !sc) {
        free(p);
        free(sc);
        return DW_ENOMEM;
    }
    sc->s = (const unsigned char *)text;
    sc->n = len;
    sc->p = p;
    sc->syn = syn;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        sc->i = 3;
    skip_ws(sc);
    int rc;
    if (sc->i >= len) {
        rc = fail(sc, sc->i, "empty document, expected a JSON value");
    } else {
        rc = scan_value(sc, NO_KEY);
        if (rc == DW_OK) {
            skip_ws(sc);
            if (sc->i < len)
                rc = fail(sc, sc->i, "unexpected text after the JSON document");
        }
    }
    if (sc->nomem)
        rc = DW_ENOMEM;
    free(sc);
    if (rc != DW_OK) {
        dw__json_pos_free(p);
        return rc;
    }
    *out = p;
    return DW_OK;
}

static size_t hash_ptr(const void *ptr)
{
    uint64_t h = (uint64_t)(uintptr_t)ptr;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (size_t)h;
}

static int kind_of(const cJSON *node)
{
    if (cJSON_IsObject(node))
        return K_OBJECT;
    if (cJSON_IsArray(node))
        return K_ARRAY;
    if (cJSON_IsString(node))
        return K_STRING;
    if (cJSON_IsNumber(node))
        return K_NUMBER;
    if (cJSON_IsTrue(node))
        return K_TRUE;
    if (cJSON_IsFalse(node))
        return K_FALSE;
    return K_NULL;
}

/* Pre-order walk of the tree, zipped with the pre-order records. Depth is
 * bounded by the scanner's MAX_DEPTH (same text). */
static int bind_node(dw__json_pos *p, const cJSON *node, size_t *k, int member)
{
    if (*k >= p->nrecs || p->recs[*k].kind != kind_of(node) ||
        (member != 0) != (p->recs[*k].key != NO_KEY))
        return DW_EINVAL;
    size_t j = hash_ptr(node) & p->mask;
    while (p->slot_node[j])
        j = (j + 1) & p->mask;
    p->slot_node[j] = node;
    p->slot_rec[j] = (*k)++;
    if (cJSON_IsObject(node) || cJSON_IsArray(node)) {
        for (const cJSON *c = node->child; c; c = c->next) {
            int rc = bind_node(p, c, k, cJSON_IsObject(node));
            if (rc != DW_OK)
                return rc;
        }
    }
    return DW_OK;
}

int dw__json_pos_bind(dw__json_pos *p, const cJSON *root)
{
    size_t cap = 16;
    while (cap < p->nrecs * 2)
        cap *= 2;
    p->slot_node = calloc(cap, sizeof *p->slot_node);
    p->slot_rec = calloc(cap, sizeof *p->slot_rec);
    if (!p->slot_node || !p->slot_rec) {
        free(p->slot_node);
        free(p->slot_rec);
        p->slot_node = NULL;
        p->slot_rec = NULL;
        return DW_ENOMEM;
    }
    p->mask = cap - 1;
    size_t k = 0;
    int rc = bind_node(p, root, &k, 0);
    if (rc == DW_OK && k != p->nrecs)
        rc = DW_EINVAL;
    if (rc != DW_OK) {
        /* A partial map would give wrong positions: give none. */
        memset(p->slot_node, 0, cap * sizeof *p->slot_node);
    }
    return rc;
}

size_t dw__json_pos_of(const dw__json_pos *p, const cJSON *node, int key)
{
    if (!p || !p->slot_node || !node)
        return 0;
    for (size_t j = hash_ptr(node) & p->mask; p->slot_node[j]; j = (j + 1) & p->mask) {
        if (p->slot_node[j] == node) {
            const rec *r = &p->recs[p->slot_rec[j]];
            return key && r->key != NO_KEY ? r->key : r->val;
        }
    }
    return 0;
}

void dw__json_pos_free(dw__json_pos *p)
{
    if (!p)
        return;
    free(p->recs);
    free(p->slot_node);
    free(p->slot_rec);
    free(p);
}

void dw__json_line_col(const char *text, size_t len, size_t offset, size_t *line, size_t *col)
{
    size_t l = 1, c = 1;
    if (offset > len)
        offset = len;
    for (size_t i = 0; i < offset; i++) {
        unsigned char b = (unsigned char)text[i];
        if (b == '\n') {
            l++;
            c = 1;
        } else if ((b & 0xC0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

static size_t utf8_len(long cp)
{
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

size_t dw__json_string_offset(const char *text, size_t len, size_t str_offset, size_t index)
{
    const unsigned char *s = (const unsigned char *)text;
    if (str_offset >= len || s[str_offset] != '"')
        return str_offset;
    size_t i = str_offset + 1, d = 0;
    while (i < len && s[i] != '"') {
        size_t raw = 1, dec = 1;
        if (s[i] == '\\' && i + 1 < len) {
            raw = 2;
            if (s[i + 1] == 'u') {
                long u = hex4(s, len, i + 2);
                raw = 6;
                dec = utf8_len(u < 0 ? 0 : u);
                if (u >= 0xD800 && u <= 0xDBFF) {
                    raw = 12;
                    dec = 4;
                }
            }
        } else if (s[i] >= 0x80) {
            raw = utf8_seq(s, len, i);
            if (raw == 0)
                raw = 1;
            dec = raw;
        }
        if (index < d + dec)
            return i;
        d += dec;
        i += raw;
    }
    return i < len ? i : str_offset;
}
