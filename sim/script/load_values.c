/* devwire-sim: the script loader's context and the values every part of a
 * script is made of (load_int.h): errors located at FILE:LINE:COL with the
 * JSON path, object members with "did you mean", numbers, names, bytes, and
 * opening the document. Positions come from json_pos.c, which scans the
 * text strictly; the tree itself is cJSON's. */
#include "script/load_int.h"

#include "common/json_bytes.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_FILE_SIZE (64u << 20) /* scripts: at most 64 MiB */

/* ---- errors and paths ---------------------------------------------------- */

__attribute__((format(printf, 3, 0))) static int vfail_at(dw__load *c, size_t off, const char *fmt,
                                                          va_list ap)
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

int dw__load_fail_at(dw__load *c, size_t off, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail_at(c, off, fmt, ap);
    va_end(ap);
    return rc;
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
    int rc = vfail_at(c, dw__load_str_pos(c, node, i), fmt, ap);
    va_end(ap);
    return rc;
}

int dw__load_oom(dw__load *c)
{
    return dw_error_set(c->err, DW_ENOMEM, "%s: out of memory loading the script", c->name);
}

static void path_append(dw__load *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void path_append(dw__load *c, const char *fmt, ...)
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
size_t dw__load_push(dw__load *c, const char *key)
{
    size_t old = c->plen;
    if (plain_key(key))
        path_append(c, "%s%.60s", c->plen ? "." : "", key);
    else
        path_append(c, "[\"%.60s\"]", key);
    return old;
}

size_t dw__load_push_index(dw__load *c, size_t i)
{
    size_t old = c->plen;
    path_append(c, "[%zu]", i);
    return old;
}

void dw__load_pop(dw__load *c, size_t old)
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
int dw__load_members(dw__load *c, const cJSON *obj, const char *const *keys, size_t n,
                     const cJSON **vals)
{
    for (size_t i = 0; i < n; i++)
        vals[i] = NULL;
    for (const cJSON *m = obj->child; m; m = m->next) {
        size_t k = key_index(keys, n, m->string);
        if (k == n || vals[k]) {
            size_t old = dw__load_push(c, m->string);
            int rc;
            if (k == n) {
                near nr;
                char buf[96];
                near_init(&nr);
                for (size_t i = 0; i < n; i++)
                    near_consider(&nr, m->string, keys[i]);
                rc = dw__load_fail(c, m, 1, "unknown key%s", near_text(&nr, buf, sizeof buf));
            } else {
                rc = dw__load_fail(c, m, 1, "duplicate key");
            }
            dw__load_pop(c, old);
            return rc;
        }
        vals[k] = m;
    }
    return DW_OK;
}

/* ---- scalars ------------------------------------------------------------- */

int dw__load_uint(dw__load *c, const cJSON *v, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!cJSON_IsNumber(v))
        return dw__load_fail(c, v, 0,
                             min ? "expected positive integer" : "expected non-negative integer");
    double d = v->valuedouble;
    if (d < 0)
        return dw__load_fail(c, v, 0, "must not be negative (got %.15g)", d);
    if (d > (double)max)
        return dw__load_fail(c, v, 0, "must be at most %llu (got %.15g)", (unsigned long long)max,
                             d);
    uint64_t u = (uint64_t)d;
    if ((double)u != d)
        return dw__load_fail(c, v, 0, "expected an integer (got %.15g)", d);
    if (u < min)
        return dw__load_fail(c, v, 0, "must be at least %llu (got %llu)", (unsigned long long)min,
                             (unsigned long long)u);
    *out = u;
    return DW_OK;
}

/* A serial line's rate in bits per second. */
int dw__load_baud(dw__load *c, const cJSON *v, uint32_t *out)
{
    uint64_t u = 0;
    int rc = dw__load_uint(c, v, DW_SIM_BAUD_MIN, DW_SIM_BAUD_MAX, &u);
    if (rc == DW_OK)
        *out = (uint32_t)u;
    return rc;
}

int dw__load_string(dw__load *c, const cJSON *v, char **out)
{
    if (!cJSON_IsString(v))
        return dw__load_fail(c, v, 0, "expected string");
    char *s = strdup(v->valuestring);
    if (!s)
        return dw__load_oom(c);
    free(*out);
    *out = s;
    return DW_OK;
}

/* v must be one of names[0..n): *out is its index. */
int dw__load_enum(dw__load *c, const cJSON *v, const char *const *names, size_t n, int *out)
{
    if (!cJSON_IsString(v))
        return dw__load_fail(c, v, 0, "expected string");
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
        return dw__load_fail(c, v, 0, "unknown value \"%.60s\" (did you mean \"%s\"?)",
                             v->valuestring, nr.best);
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
    return dw__load_fail(c, v, 0, "unknown value \"%.60s\" (expected %s)", v->valuestring, list);
}

/* ---- bytes: strings, {"hex": ...}, {"base64": ...} ------------------------ */

int dw__load_bytes_set(dw__load *c, dw_sim_bytes *b, const void *data, size_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    if (!p)
        return dw__load_oom(c);
    if (len)
        memcpy(p, data, len);
    free(b->data);
    b->data = p;
    b->len = len;
    return DW_OK;
}

size_t dw__load_str_pos(dw__load *c, const cJSON *v, size_t i)
{
    return dw__json_string_offset(c->text, c->len, dw__json_pos_of(c->pos, v, 0), i);
}

/* A decoding error at its place: the node's key or value, or a byte of its
 * string; a member's key is on the path while it is reported. */
static int bytes_fail(dw__load *c, const cJSON *v, const dw_sim_json_bytes_error *e)
{
    size_t old = e->node != v ? dw__load_push(c, e->node->string) : c->plen;
    int rc = e->offset == DW_SIM_JSON_BYTES_WHOLE
                 ? dw__load_fail(c, e->node, e->key, "%s", e->message)
                 : dw__load_fail_in(c, e->node, e->offset, "%s", e->message);
    dw__load_pop(c, old);
    return rc;
}

/* The decoded bytes into *out, or the error located. */
static int bytes_done(dw__load *c, const cJSON *v, int rc, dw_buf *b,
                      const dw_sim_json_bytes_error *e, dw_sim_bytes *out)
{
    if (rc == DW_OK)
        rc = dw__load_bytes_set(c, out, b->data, b->len);
    else if (rc == DW_ENOMEM)
        rc = dw__load_oom(c);
    else
        rc = bytes_fail(c, v, e);
    dw_buf_free(b);
    return rc;
}

static int decode_as(dw__load *c, const cJSON *v, dw_sim_json_bytes_form form, dw_sim_bytes *out)
{
    dw_buf b = DW_BUF_INIT;
    dw_sim_json_bytes_error e;
    int rc = dw_sim_json_bytes_decode_as(v, form, &b, &e);
    return bytes_done(c, v, rc, &b, &e, out);
}

int dw__load_hex(dw__load *c, const cJSON *v, dw_sim_bytes *out)
{
    return decode_as(c, v, DW_SIM_JSON_BYTES_HEX, out);
}

int dw__load_base64(dw__load *c, const cJSON *v, dw_sim_bytes *out)
{
    return decode_as(c, v, DW_SIM_JSON_BYTES_BASE64, out);
}

static const char *const binary_keys[] = {"hex", "base64"};

int dw__load_bytes(dw__load *c, const cJSON *v, dw_sim_bytes *out)
{
    /* The members first, for "did you mean" on an unknown key. */
    const cJSON *vals[2];
    if (cJSON_IsObject(v)) {
        int rc = dw__load_members(c, v, binary_keys, 2, vals);
        if (rc != DW_OK)
            return rc;
    }
    dw_buf b = DW_BUF_INIT;
    dw_sim_json_bytes_error e;
    int rc = dw_sim_json_bytes_decode(v, &b, &e);
    return bytes_done(c, v, rc, &b, &e, out);
}

/* ---- variables ----------------------------------------------------------- */

size_t dw__load_find_var(const dw__load *c, const char *name, size_t len)
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

int dw__load_unknown_var(dw__load *c, size_t off, const char *name, size_t len, int in_template)
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
        return dw__load_fail_at(c, off,
                                in_template ? "unknown variable \"${%s}\" (did you mean \"${%s}\"?)"
                                            : "unknown variable \"%s\" (did you mean \"%s\"?)",
                                word, nr.best);
    return dw__load_fail_at(
        c, off,
        in_template ? "unknown variable \"${%s}\" (declare it in \"state\" or \"properties\")"
                    : "unknown variable \"%s\" (declare it in \"state\" or \"properties\")",
        word);
}

/* ---- names ----------------------------------------------------------------- */

int dw__load_name_ok(const char *n)
{
    if (!((*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z') || *n == '_'))
        return 0;
    for (const char *p = n + 1; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return 0;
    return 1;
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

const char *const dw__load_transports[DW__LOAD_NTRANSPORTS] = {"tcp", "telnet", "udp", "serial",
                                                               "vxi11"};

/* ---- the document -------------------------------------------------------- */

int dw__load_open(dw__load *c, const char *name, const char *text, size_t len, dw_error *err,
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
        return dw__load_oom(c);
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

void dw__load_close(dw__load *c, cJSON *root)
{
    cJSON_Delete(root);
    dw__json_pos_free(c->pos);
    c->pos = NULL;
    free(c->var_order);
    free(c->var_mark);
    dw_marshaller_free(c->req_m);
    dw_marshaller_free(c->resp_m);
}

int dw__load_read_file(const char *path, dw_buf *b, dw_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return dw_error_set(err, DW_ENOENT, "%s: %s", path, strerror(errno));
    /* The file's size (and a byte to see its end) in one buffer: a bench
     * of thousands of devices reads as many scripts. */
    struct stat st;
    size_t chunk = fstat(fileno(f), &st) == 0 && st.st_size >= 0 && st.st_size < MAX_FILE_SIZE
                       ? (size_t)st.st_size + 1
                       : 65536;
    int rc = DW_OK;
    for (;;) {
        if (dw_buf_reserve(b, b->len < chunk ? chunk - b->len : 65536) != DW_OK) {
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
