/* The SCPI program message parser, printer and typed reads: see
 * scpi_parse.h (the header patterns are in scpi_pattern.c). */
#include "model/scpi_parse.h"

#include "model/scpi_chars.h"

#include "common/memory.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <devwire/error.h>

const char *dw_scpi_strerror(int code)
{
    switch (code) {
#define DW_SCPI_CASE(c, name, text)                                                                \
    case c:                                                                                        \
        return text;
        DW_SCPI_ERROR_MAP(DW_SCPI_CASE)
#undef DW_SCPI_CASE
    }
    return "Unknown error";
}

int dw_scpi_error_standard(int code)
{
    switch (code) {
#define DW_SCPI_KNOWN(c, name, text)                                                               \
    case c:                                                                                        \
        return 1;
        DW_SCPI_ERROR_MAP(DW_SCPI_KNOWN)
#undef DW_SCPI_KNOWN
    }
    return 0;
}

static int refusal_rank(int code)
{
    if (code == 0)
        return 0;
    if (code == DW_SCPI_E_SUFFIX_RANGE)
        return 1;
    if (code == DW_SCPI_E_MISSING_PARAM || code == DW_SCPI_E_PARAM_NOT_ALLOWED)
        return 2;
    return code > -200 ? 3 : 4;
}

int dw_scpi_refusal_pick(int kept, int code)
{
    return refusal_rank(code) > refusal_rank(kept) ? code : kept;
}

/* IEEE 488.2 white space: control bytes and space, except the newline
 * (the terminator, removed before parsing, and never white space inside). */
static int is_space(int c)
{
    return c <= ' ' && c != '\n';
}

/* ---- the parser ---------------------------------------------------------- */

void dw_scpi_parser_init(dw_scpi_parser *p, const uint8_t *msg, size_t len)
{
    memset(p, 0, sizeof *p); /* trailing white space is skipped as it comes: a
                              * block's last bytes may look like white space */
    p->msg = msg;
    p->len = len;
}

void dw_scpi_parser_free(dw_scpi_parser *p)
{
    free(p->params);
    dw_buf_free(&p->text);
    memset(p, 0, sizeof *p);
}

static int peek(const dw_scpi_parser *p)
{
    return p->pos < p->len ? p->msg[p->pos] : -1;
}

static void skip_space(dw_scpi_parser *p)
{
    while (p->pos < p->len && is_space(p->msg[p->pos]))
        p->pos++;
}

/* A mnemonic of at most `limit` characters into out (upper-cased). 0 or
 * -112 / -102. */
static int mnemonic(dw_scpi_parser *p, char *out, size_t limit)
{
    size_t n = 0;
    if (!dw__scpi_is_alpha(peek(p)))
        return DW_SCPI_E_SYNTAX;
    while (p->pos < p->len) {
        int c = p->msg[p->pos];
        if (!dw__scpi_is_alpha(c) && !dw__scpi_is_digit(c) && c != '_')
            break;
        if (n == limit)
            return DW_SCPI_E_MNEMONIC_TOO_LONG;
        out[n++] = (char)dw__scpi_upper(c);
        p->pos++;
    }
    out[n] = 0;
    return 0;
}

/* The header: common or compound, with the path rule. */
static int header(dw_scpi_parser *p, dw_scpi_unit *u)
{
    if (peek(p) == '*') {
        p->pos++;
        u->common = 1;
        u->nnodes = 1;
        return mnemonic(p, u->nodes[0], DW_SCPI_MNEMONIC_LIMIT);
    }
    int rooted = peek(p) == ':';
    if (rooted) {
        p->pos++;
        p->npath = 0;
    }
    memcpy(u->nodes, p->path, p->npath * sizeof p->path[0]);
    u->nnodes = p->npath;
    u->inherited = p->npath;
    for (;;) {
        if (u->nnodes == DW_SCPI_MAX_NODES)
            return DW_SCPI_E_SYNTAX;
        int rc = mnemonic(p, u->nodes[u->nnodes], DW_SCPI_MNEMONIC_LIMIT);
        if (rc)
            return rc;
        u->nnodes++;
        if (peek(p) != ':')
            break;
        p->pos++;
    }
    p->npath = u->nnodes - 1;
    memcpy(p->path, u->nodes, p->npath * sizeof p->path[0]);
    return 0;
}

static int add_text(dw_scpi_parser *p, dw_scpi_param *q, const void *data, size_t n)
{
    q->off = p->text.len;
    q->len = n;
    return dw_buf_append(&p->text, data, n) == DW_OK ? 0 : DW_SCPI_NOMEM;
}

/* Suffix multipliers (IEEE 488.2 7.7.3.3) as powers of ten, longest first. */
static const struct mult {
    const char *name;
    int exp;
} mults[] = {{"EX", 18}, {"PE", 15}, {"MA", 6}, {"T", 12},  {"G", 9},   {"K", 3},
             {"M", -3},  {"U", -6},  {"N", -9}, {"P", -12}, {"F", -15}, {"A", -18}};

/* Base units a suffix may name (SCPI-99 volume 1, 7.3). */
static const char *const units[] = {"HZ",  "V",   "A",    "S",    "OHM", "W",   "DB",
                                    "DBM", "DBW", "DBUV", "DBMV", "DEG", "RAD", "PCT",
                                    "CEL", "J",   "F",    "H",    "C",   "K",   "BPS"};

static int known_unit(const char *s)
{
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(s, units[i]) == 0)
            return 1;
    return 0;
}

/* Split suffix s (upper-cased) into a factor and a base unit. MHZ and MOHM
 * are mega by the standard's rule (M alone is milli); a bare multiplier
 * without a unit is not a suffix. 0 or -131. */
static int suffix_unit(const char *s, int *exp, char *unit)
{
    *exp = 0;
    if (strcmp(s, "MHZ") == 0 || strcmp(s, "MOHM") == 0) {
        *exp = 6;
        s++;
    } else if (!known_unit(s)) {
        size_t i = 0;
        for (; i < sizeof mults / sizeof mults[0]; i++) {
            size_t n = strlen(mults[i].name);
            if (strncmp(s, mults[i].name, n) == 0 && known_unit(s + n)) {
                *exp = mults[i].exp;
                s += n;
                break;
            }
        }
        if (i == sizeof mults / sizeof mults[0])
            return DW_SCPI_E_INVALID_SUFFIX;
    }
    strcpy(unit, s);
    return 0;
}

/* Right after a parameter: white space, ',' ';' or the end (anything else
 * is the parameter's own error; after white space, a separator error). */
static int at_param_end(const dw_scpi_parser *p)
{
    int c = peek(p);
    return c == -1 || c == ',' || c == ';' || is_space(c);
}

/* #H1F, #Q17, #B101. */
static int nondecimal(dw_scpi_parser *p, dw_scpi_param *q)
{
    int base = dw__scpi_upper(p->msg[p->pos + 1]);
    int radix = base == 'H' ? 16 : base == 'Q' ? 8 : 2;
    p->pos += 2;
    double v = 0;
    size_t n = 0;
    for (; p->pos < p->len; p->pos++, n++) {
        int c = dw__scpi_upper(p->msg[p->pos]);
        int d = dw__scpi_is_digit(c) ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : 99;
        if (d >= radix)
            break;
        v = v * radix + d;
    }
    if (n == 0 || !at_param_end(p))
        return DW_SCPI_E_NUMBER_CHAR;
    if (!isfinite(v))
        return DW_SCPI_E_OUT_OF_RANGE;
    q->kind = DW_SCPI_NUMERIC;
    q->value = v;
    return add_text(p, q, p->msg, 0);
}

static size_t digits(dw_scpi_parser *p)
{
    size_t n = 0;
    while (p->pos < p->len && dw__scpi_is_digit(p->msg[p->pos]))
        p->pos++, n++;
    return n;
}

/* An exponent's digits, saturated: "1E99999999999" is simply too large. */
static long exponent(const uint8_t *d, size_t n)
{
    long v = 0;
    int neg = n && d[0] == '-';
    for (size_t i = n && (d[0] == '-' || d[0] == '+'); i < n; i++)
        v = v > 100000 ? v : v * 10 + (d[i] - '0');
    return neg ? -v : v;
}

/* A suffix after a number: its unit into q, its multiplier's power of ten
 * into *exp. 0 or -131. */
static int number_suffix(dw_scpi_parser *p, dw_scpi_param *q, int *exp)
{
    char s[sizeof q->unit + 4];
    size_t n = 0;
    while (p->pos < p->len && dw__scpi_is_alpha(p->msg[p->pos])) {
        if (n + 1 == sizeof s)
            return DW_SCPI_E_INVALID_SUFFIX;
        s[n++] = (char)dw__scpi_upper(p->msg[p->pos++]);
    }
    s[n] = 0;
    int rc = suffix_unit(s, exp, q->unit);
    return rc ? rc : at_param_end(p) ? 0 : DW_SCPI_E_INVALID_SUFFIX;
}

/* NR1/NR2/NR3 and an optional suffix. The multiplier joins the exponent
 * before conversion, so 20us is exactly the double nearest 2e-05. */
static int number(dw_scpi_parser *p, dw_scpi_param *q)
{
    size_t start = p->pos;
    if (peek(p) == '+' || peek(p) == '-')
        p->pos++;
    size_t nd = digits(p);
    if (peek(p) == '.') {
        p->pos++;
        nd += digits(p);
    }
    if (nd == 0)
        return DW_SCPI_E_NUMBER_CHAR;
    size_t mant_end = p->pos, save = p->pos;
    long exp = 0;
    skip_space(p);
    if (dw__scpi_upper(peek(p)) == 'E') {
        p->pos++;
        skip_space(p);
        size_t sign = p->pos;
        if (peek(p) == '+' || peek(p) == '-')
            p->pos++;
        if (digits(p) == 0)
            p->pos = save; /* not an exponent: maybe a suffix such as "EX" */
        else
            exp = exponent(p->msg + sign, p->pos - sign);
    } else {
        p->pos = save;
    }
    q->kind = DW_SCPI_NUMERIC;
    q->unit[0] = 0;
    save = p->pos;
    skip_space(p);
    if (dw__scpi_is_alpha(peek(p))) {
        int mexp, rc = number_suffix(p, q, &mexp);
        if (rc)
            return rc;
        exp += mexp;
    } else {
        p->pos = save;
        if (!at_param_end(p))
            return DW_SCPI_E_NUMBER_CHAR;
    }
    if (mant_end - start > 400)
        return DW_SCPI_E_NUMBER_CHAR;
    char buf[440];
    snprintf(buf, sizeof buf, "%.*se%ld", (int)(mant_end - start), (const char *)p->msg + start,
             exp);
    q->value = strtod(buf, NULL);
    if (!isfinite(q->value))
        return DW_SCPI_E_OUT_OF_RANGE;
    return add_text(p, q, p->msg, 0);
}

static int string(dw_scpi_parser *p, dw_scpi_param *q)
{
    int quote = p->msg[p->pos++];
    q->kind = DW_SCPI_STRING;
    q->off = p->text.len;
    for (;;) {
        if (p->pos >= p->len)
            return DW_SCPI_E_STRING_DATA;
        uint8_t c = p->msg[p->pos++];
        if (c == quote) {
            if (peek(p) != quote)
                break;
            p->pos++;
        }
        if (dw_buf_append_byte(&p->text, c) != DW_OK)
            return DW_SCPI_NOMEM;
    }
    q->len = p->text.len - q->off;
    return at_param_end(p) ? 0 : DW_SCPI_E_STRING_DATA;
}

static int block(dw_scpi_parser *p, dw_scpi_param *q)
{
    int d = p->msg[p->pos + 1] - '0';
    p->pos += 2;
    q->kind = DW_SCPI_BLOCK;
    if (d == 0) { /* indefinite: up to the end of the message */
        int rc = add_text(p, q, p->msg + p->pos, p->len - p->pos);
        p->pos = p->len;
        return rc;
    }
    if (p->len - p->pos < (size_t)d)
        return DW_SCPI_E_BLOCK_DATA;
    size_t n = 0;
    for (int i = 0; i < d; i++) {
        int c = p->msg[p->pos++];
        if (!dw__scpi_is_digit(c))
            return DW_SCPI_E_BLOCK_DATA;
        n = n * 10 + (size_t)(c - '0');
    }
    if (p->len - p->pos < n)
        return DW_SCPI_E_BLOCK_DATA;
    int rc = add_text(p, q, p->msg + p->pos, n);
    p->pos += n;
    if (rc == 0 && !at_param_end(p))
        return DW_SCPI_E_BLOCK_DATA;
    return rc;
}

static int expression(dw_scpi_parser *p, dw_scpi_param *q)
{
    size_t start = p->pos, depth = 0;
    do {
        if (p->pos >= p->len)
            return DW_SCPI_E_SYNTAX;
        int c = p->msg[p->pos++];
        depth += c == '(';
        depth -= c == ')';
    } while (depth);
    q->kind = DW_SCPI_EXPR;
    int rc = add_text(p, q, p->msg + start, p->pos - start);
    return rc == 0 && !at_param_end(p) ? DW_SCPI_E_SYNTAX : rc;
}

static int chars(dw_scpi_parser *p, dw_scpi_param *q)
{
    char s[DW_SCPI_MAX_MNEMONIC + 1];
    int rc = mnemonic(p, s, DW_SCPI_MAX_MNEMONIC);
    if (rc == DW_SCPI_E_MNEMONIC_TOO_LONG || (rc == 0 && !at_param_end(p)))
        return DW_SCPI_E_CHAR_DATA;
    q->kind = DW_SCPI_CHARS;
    return add_text(p, q, s, strlen(s));
}

static int param(dw_scpi_parser *p, dw_scpi_param *q)
{
    memset(q, 0, sizeof *q);
    q->at = p->pos; /* made relative to the unit once it is read */
    int c = peek(p);
    int next = p->pos + 1 < p->len ? dw__scpi_upper(p->msg[p->pos + 1]) : -1;
    if (c == '\'' || c == '"')
        return string(p, q);
    if (c == '#' && dw__scpi_is_digit(next))
        return block(p, q);
    if (c == '#' && (next == 'H' || next == 'Q' || next == 'B'))
        return nondecimal(p, q);
    if (c == '#')
        return DW_SCPI_E_BLOCK_DATA;
    if (c == '(')
        return expression(p, q);
    if (dw__scpi_is_alpha(c))
        return chars(p, q);
    if (dw__scpi_is_digit(c) || c == '+' || c == '-' || c == '.')
        return number(p, q);
    return c == ',' || c == ';' || c == -1 ? DW_SCPI_E_SYNTAX : DW_SCPI_E_DATA_TYPE;
}

static int params(dw_scpi_parser *p, dw_scpi_unit *u)
{
    for (;;) {
        skip_space(p);
        dw_scpi_param *np = dw_sim_grow(p->params, u->nparams, &p->cap, sizeof *np, 4);
        if (!np)
            return DW_SCPI_NOMEM;
        p->params = np;
        int rc = param(p, &p->params[u->nparams]);
        if (rc)
            return rc;
        u->nparams++;
        skip_space(p);
        if (peek(p) != ',')
            return 0;
        p->pos++;
    }
}

static int unit(dw_scpi_parser *p, dw_scpi_unit *u)
{
    skip_space(p);
    size_t start = p->pos;
    int rc = header(p, u);
    if (rc)
        return rc;
    if (peek(p) == '?') {
        p->pos++;
        u->query = 1;
    }
    int c = peek(p);
    if (c != -1 && c != ';' && !is_space(c))
        return c == ',' ? DW_SCPI_E_SEPARATOR : DW_SCPI_E_SYNTAX;
    skip_space(p);
    if (peek(p) != -1 && peek(p) != ';' && (rc = params(p, u)) != 0)
        return rc;
    size_t end = p->pos;
    while (end > start && is_space(p->msg[end - 1]))
        end--;
    u->raw = p->msg + start;
    u->raw_len = end - start;
    for (size_t i = 0; i < u->nparams; i++)
        p->params[i].at -= start;
    c = peek(p);
    if (c == ';')
        p->pos++;
    else if (c != -1)
        return DW_SCPI_E_SEPARATOR;
    return 0;
}

int dw_scpi_parser_next(dw_scpi_parser *p, dw_scpi_unit *u)
{
    memset(u, 0, sizeof *u);
    if (p->done)
        return 0;
    skip_space(p);
    if (p->pos >= p->len) {
        p->done = 1;
        return 0;
    }
    dw_buf_clear(&p->text);
    int rc = unit(p, u);
    u->params = p->params;
    u->text = p->text.data ? p->text.data : (const uint8_t *)""; /* never NULL + offset */
    if (rc) {
        p->done = 1;
        return rc;
    }
    if (p->pos >= p->len)
        p->done = 1;
    return 1;
}

int dw_scpi_unit_from_root(const dw_scpi_unit *u, dw_scpi_unit *out)
{
    if (u->common || u->inherited == 0)
        return 0;
    *out = *u;
    out->nnodes = u->nnodes - u->inherited;
    memmove(out->nodes, u->nodes + u->inherited, out->nnodes * sizeof u->nodes[0]);
    out->inherited = 0;
    return 1;
}

void dw_scpi_parser_path_after(dw_scpi_parser *p, const dw_scpi_unit *u)
{
    if (u->common || u->nnodes == 0)
        return;
    p->npath = u->nnodes - 1;
    memcpy(p->path, u->nodes, p->npath * sizeof p->path[0]);
}

/* ---- printing and typed reads --------------------------------------------- */

int dw_scpi_number_print(double v, dw_buf *out)
{
    char buf[40];
    snprintf(buf, sizeof buf, "%.15g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, sizeof buf, "%.17g", v);
    return dw_buf_append_str(out, buf);
}

int dw_scpi_param_print(const dw_scpi_unit *u, const dw_scpi_param *p, dw_buf *out)
{
    const uint8_t *t = u->text + p->off;
    int rc = DW_OK;
    switch (p->kind) {
    case DW_SCPI_NUMERIC:
        rc = dw_scpi_number_print(p->value, out);
        return rc == DW_OK ? dw_buf_append_str(out, p->unit) : rc;
    case DW_SCPI_CHARS:
    case DW_SCPI_EXPR:
        return dw_buf_append(out, t, p->len);
    case DW_SCPI_STRING:
        rc = dw_buf_append_byte(out, '"');
        for (size_t i = 0; i < p->len && rc == DW_OK; i++)
            rc = t[i] == '"' ? dw_buf_append(out, "\"\"", 2) : dw_buf_append_byte(out, t[i]);
        return rc == DW_OK ? dw_buf_append_byte(out, '"') : rc;
    case DW_SCPI_BLOCK: {
        char len[24];
        int n = snprintf(len, sizeof len, "%zu", p->len);
        rc = dw_buf_printf(out, "#%d%s", n, len);
        return rc == DW_OK ? dw_buf_append(out, t, p->len) : rc;
    }
    }
    return rc;
}

int dw_scpi_unit_print(const dw_scpi_unit *u, dw_buf *out)
{
    int rc = DW_OK;
    for (size_t i = 0; i < u->nnodes && rc == DW_OK; i++)
        rc = dw_buf_printf(out, "%s%s", u->common ? "*" : ":", u->nodes[i]);
    if (rc == DW_OK && u->query)
        rc = dw_buf_append_byte(out, '?');
    for (size_t i = 0; i < u->nparams && rc == DW_OK; i++) {
        rc = dw_buf_append_byte(out, i ? ',' : ' ');
        if (rc == DW_OK)
            rc = dw_scpi_param_print(u, &u->params[i], out);
    }
    return rc;
}

int dw_scpi_param_bool(const dw_scpi_unit *u, const dw_scpi_param *p)
{
    if (p->kind == DW_SCPI_NUMERIC)
        return p->unit[0] ? DW_SCPI_E_INVALID_SUFFIX : (p->value >= 0.5 || p->value <= -0.5);
    if (p->kind != DW_SCPI_CHARS)
        return DW_SCPI_E_DATA_TYPE;
    char w[DW_SCPI_MAX_MNEMONIC + 1];
    memcpy(w, u->text + p->off, p->len);
    w[p->len] = 0;
    if (strcmp(w, "ON") == 0)
        return 1;
    return strcmp(w, "OFF") == 0 ? 0 : DW_SCPI_E_ILLEGAL_VALUE;
}

int dw_scpi_param_string(const dw_scpi_unit *u, const dw_scpi_param *p, int bare,
                         const uint8_t **text, size_t *len)
{
    if (p->kind == DW_SCPI_STRING) {
        *text = u->text + p->off;
        *len = p->len;
        return 1;
    }
    if (p->kind != DW_SCPI_CHARS || !bare)
        return DW_SCPI_E_DATA_TYPE;
    *text = u->raw + p->at; /* as written: character data is p->len bytes there too */
    *len = p->len;
    return 1;
}

int dw_scpi_param_special(const dw_scpi_unit *u, const dw_scpi_param *p, double *value)
{
    static const double values[] = {DW_SCPI_INF, -DW_SCPI_INF, DW_SCPI_NAN};
    int k = dw_scpi_param_choice(u, p, "INF|NINF|NAN");
    if (k < 0)
        return 0;
    *value = values[k];
    return 1;
}

int dw_scpi_param_choice(const dw_scpi_unit *u, const dw_scpi_param *p, const char *choices)
{
    if (p->kind != DW_SCPI_CHARS)
        return DW_SCPI_E_DATA_TYPE;
    char w[DW_SCPI_MAX_MNEMONIC + 1];
    memcpy(w, u->text + p->off, p->len);
    w[p->len] = 0;
    for (int i = 0; *choices; i++) {
        size_t n = strcspn(choices, "|");
        if (dw__scpi_names(choices, n, w))
            return i;
        choices += n + (choices[n] == '|');
    }
    return DW_SCPI_E_ILLEGAL_VALUE;
}
