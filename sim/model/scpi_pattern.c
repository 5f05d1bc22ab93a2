/* The SCPI header patterns a script writes ("[SOURce:]FREQuency[:CW]?"):
 * compiled once, matched against parsed units. See scpi_parse.h. */
#include "model/scpi_parse.h"

#include "model/scpi_chars.h"

#include <stdlib.h>
#include <string.h>

#include <devwire/error.h>

typedef struct pnode {
    char mnem[DW_SCPI_MAX_MNEMONIC + 1];  /* as written (case marks the short form) */
    char upper[DW_SCPI_MAX_MNEMONIC + 1]; /* upper-cased, as a unit's nodes are */
    size_t len, short_len;
    int suffix; /* a numeric suffix is allowed */
    long lo, hi;
    int group; /* nodes of one [..] share a group; 0: required */
} pnode;

struct dw_scpi_pattern {
    int common, query;
    pnode nodes[DW_SCPI_MAX_NODES];
    size_t n;
};

void dw_scpi_pattern_free(dw_scpi_pattern *p)
{
    free(p);
}

int dw_scpi_pattern_query(const dw_scpi_pattern *p)
{
    return p->query;
}

static int pat_fail(const char *t, const char *at, size_t *where, const char **why, const char *msg)
{
    *where = (size_t)(at - t);
    *why = msg;
    return DW_EINVAL;
}

/* One mnemonic with its suffix spec at *s. NULL on success, or the error
 * with *s at the fault. */
static const char *pat_mnemonic(const char **s, pnode *nd)
{
    const char *m = *s;
    if (!dw__scpi_is_alpha(*m))
        return "expected a mnemonic";
    size_t n = 0;
    int lower_seen = 0;
    while (dw__scpi_is_alpha(m[n]) || m[n] == '_') {
        if (m[n] >= 'a' && m[n] <= 'z')
            lower_seen = 1;
        else if (lower_seen && m[n] >= 'A' && m[n] <= 'Z') {
            *s = m + n;
            return "upper case marks the short form: it must come first";
        }
        n++;
    }
    const char *d = m + n;
    *s = d;
    if (dw__scpi_is_digit(*d)) { /* a fixed suffix: OUTPut2 */
        char *end;
        nd->lo = nd->hi = strtol(d, &end, 10);
        nd->suffix = 1;
        d = end;
    } else if (d[0] == '[' && dw__scpi_is_digit(d[1])) { /* OUTPut[1-4], SOURce[1] */
        char *end;
        nd->lo = nd->hi = strtol(d + 1, &end, 10);
        if (*end != ']' && (*end != '-' || !dw__scpi_is_digit(end[1])))
            return "expected a suffix [n] or a range [lo-hi]";
        if (*end == '-')
            nd->hi = strtol(end + 1, &end, 10);
        if (*end != ']' || nd->lo > nd->hi)
            return "expected a suffix range [lo-hi] with lo <= hi";
        nd->suffix = 1;
        d = end + 1;
    } else if (strncmp(d, "<n>", 3) == 0) {
        nd->lo = 1;
        nd->hi = 2147483647L;
        nd->suffix = 1;
        d += 3;
    }
    if (n > DW_SCPI_MNEMONIC_LIMIT) {
        *s = m;
        return "mnemonic too long (a program mnemonic has at most 12 characters)";
    }
    memcpy(nd->mnem, m, n);
    nd->mnem[n] = 0;
    nd->len = n;
    for (size_t i = 0; i < n; i++) /* compiled once, matched against every unit */
        nd->upper[i] = (char)dw__scpi_upper(m[i]);
    nd->upper[n] = 0;
    size_t k = 0;
    while (k < n && !(m[k] >= 'a' && m[k] <= 'z'))
        k++;
    nd->short_len = k;
    *s = d;
    return NULL;
}

int dw_scpi_pattern_compile(const char *text, dw_scpi_pattern **out, size_t *where,
                            const char **why)
{
    *out = NULL;
    dw_scpi_pattern *p = calloc(1, sizeof *p);
    if (!p)
        return DW_ENOMEM;
    const char *s = text, *e;
    int group = 0, open = 0;
    if (*s == '*') {
        p->common = 1;
        s++;
        if ((e = pat_mnemonic(&s, &p->nodes[0])) != NULL || p->nodes[0].suffix) {
            free(p);
            return pat_fail(text, s, where, why, e ? e : "a common command has no suffix");
        }
        p->n = 1;
    }
    while (!p->common) {
        if (*s == '[' && !open) {
            open = ++group;
            s++;
        }
        if (*s == ':')
            s++;
        if (p->n == DW_SCPI_MAX_NODES) {
            free(p);
            return pat_fail(text, s, where, why, "too many nodes");
        }
        pnode *nd = &p->nodes[p->n++];
        if ((e = pat_mnemonic(&s, nd)) != NULL) {
            free(p);
            return pat_fail(text, s, where, why, e);
        }
        nd->group = open;
        if (*s == ':' && s[1] == ']' && open)
            s++;
        int more = *s == ':' || *s == '[';
        if (*s == ']' && open) {
            open = 0;
            s++;
            more = *s == ':' || *s == '[' || dw__scpi_is_alpha(*s);
        }
        if (!more)
            break;
    }
    if (*s == '?') {
        p->query = 1;
        s++;
    }
    if (*s || open) {
        free(p);
        return pat_fail(text, s, where, why,
                        open ? "unclosed '['" : "unexpected character in a header pattern");
    }
    *out = p;
    return DW_OK;
}

/* Node nd against the mnemonic w (upper-cased, as the parser leaves it):
 * 1, 0, or -114. The rule of dw__scpi_names, on the forms kept at compile
 * time. */
static int node_match(const pnode *nd, const char *w)
{
    size_t n = strlen(w), a = n;
    while (nd->suffix && a > 0 && dw__scpi_is_digit(w[a - 1]))
        a--;
    if ((a != nd->short_len && a != nd->len) || memcmp(nd->upper, w, a) != 0)
        return 0;
    if (!nd->suffix)
        return 1;
    if (a == n)
        return nd->lo <= 1 && 1 <= nd->hi ? 1 : DW_SCPI_E_SUFFIX_RANGE;
    if (n - a > 10)
        return DW_SCPI_E_SUFFIX_RANGE;
    long v = strtol(w + a, NULL, 10);
    return v >= nd->lo && v <= nd->hi ? 1 : DW_SCPI_E_SUFFIX_RANGE;
}

/* Pattern nodes from i against unit nodes from j, skipping optional groups
 * by backtracking: 1, 0, or -114 when every node fits by name and the
 * only misfit is a numeric suffix (a node that fits by name but not by
 * suffix still has to be followed by the rest of the header: SOURce1:DATA?
 * says nothing of SOUR2:FREQ?). */
static int match_from(const dw_scpi_pattern *p, size_t i, const dw_scpi_unit *u, size_t j)
{
    if (i == p->n)
        return j == u->nnodes;
    int best = 0;
    if (p->nodes[i].group) { /* try without the group */
        size_t k = i;
        while (k < p->n && p->nodes[k].group == p->nodes[i].group)
            k++;
        best = match_from(p, k, u, j);
        if (best == 1)
            return 1;
    }
    if (j == u->nnodes)
        return best;
    int m = node_match(&p->nodes[i], u->nodes[j]);
    if (m != 0) {
        int rest = match_from(p, i + 1, u, j + 1);
        m = rest == 1 ? m : rest;
    }
    return m == 1 || best == 0 ? m : best;
}

int dw_scpi_pattern_match(const dw_scpi_pattern *p, const dw_scpi_unit *u)
{
    if (p->common != u->common || p->query != u->query)
        return 0;
    return match_from(p, 0, u, 0);
}

int dw_scpi_pattern_match_any(dw_scpi_pattern *const *p, size_t n, const dw_scpi_unit *u,
                              size_t *which)
{
    int best = 0;
    for (size_t k = 0; k < n; k++) {
        int r = dw_scpi_pattern_match(p[k], u);
        if (r == 1) {
            *which = k;
            return 1;
        }
        best = best ? best : r;
    }
    return best;
}

int dw_scpi_pattern_match_header(const dw_scpi_pattern *p, const dw_scpi_unit *u)
{
    return p->common == u->common ? match_from(p, 0, u, 0) : 0;
}

int dw_scpi_pattern_last_words(const dw_scpi_pattern *p, int (*fn)(void *arg, const char *word),
                               void *arg)
{
    size_t from = 0;
    for (size_t i = 0; i < p->n; i++)
        if (!p->nodes[i].group)
            from = i;
    for (size_t i = from; i < p->n; i++) {
        const pnode *nd = &p->nodes[i];
        char w[DW_SCPI_MAX_MNEMONIC + 1];
        size_t k = 0;
        for (; k < nd->len && !(nd->mnem[k] >= 'a' && nd->mnem[k] <= 'z'); k++)
            w[k] = nd->mnem[k];
        w[k] = 0;
        int rc = fn(arg, w);
        if (rc == 0 && k < nd->len) {
            for (k = 0; k < nd->len; k++)
                w[k] = (char)dw__scpi_upper(nd->mnem[k]);
            w[k] = 0;
            rc = fn(arg, w);
        }
        if (rc)
            return rc;
    }
    return 0;
}

void dw_scpi_unit_last_word(const dw_scpi_unit *u, char *out)
{
    const char *w = u->nnodes ? u->nodes[u->nnodes - 1] : "";
    size_t n = strlen(w);
    while (n > 0 && dw__scpi_is_digit(w[n - 1]))
        n--;
    memcpy(out, w, n);
    out[n] = 0;
}
