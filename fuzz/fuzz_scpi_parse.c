/* The SCPI program message parser (sim/model/scpi_parse.h).
 * Input: [flags] then a program message (terminator removed). Flag bit 0:
 * the message up to its first '\n' is also compiled as a header pattern
 * and matched against every unit; the parameters are read as booleans and
 * choices too.
 * Oracle: no crash, no leak, no over-read (the message sits in a buffer of
 * its size); and the round trip: the units parsed before the end or the
 * first error, printed canonically and joined with ';', parse to the same
 * units with no error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <devwire/devwire.h>

#include "model/scpi_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct kept {
    dw_buf printed; /* each unit's canonical text, joined with ';' */
    size_t nunits;
} kept;

static int same_unit(const dw_scpi_unit *a, const dw_scpi_unit *b)
{
    if (a->common != b->common || a->query != b->query || a->nnodes != b->nnodes ||
        a->nparams != b->nparams)
        return 0;
    for (size_t i = 0; i < a->nnodes; i++)
        if (strcmp(a->nodes[i], b->nodes[i]) != 0)
            return 0;
    for (size_t i = 0; i < a->nparams; i++) {
        const dw_scpi_param *p = &a->params[i], *q = &b->params[i];
        if (p->kind != q->kind || p->len != q->len ||
            (p->len && memcmp(a->text + p->off, b->text + q->off, p->len) != 0))
            return 0;
        if (p->kind == DW_SCPI_NUMERIC && (p->value != q->value || strcmp(p->unit, q->unit) != 0))
            return 0;
    }
    return 1;
}

static void exercise(const dw_scpi_pattern *pat, const dw_scpi_unit *u)
{
    if (pat && dw_scpi_pattern_match(pat, u) > 1)
        abort();
    for (size_t i = 0; i < u->nparams; i++) {
        int b = dw_scpi_param_bool(u, &u->params[i]);
        int c = dw_scpi_param_choice(u, &u->params[i], "IMMediate|BUS|EXTernal|ON");
        if (b > 1 || c > 3)
            abort();
    }
}

/* Parse msg[0..n), keeping each unit's canonical print. */
static void first_pass(const uint8_t *msg, size_t n, const dw_scpi_pattern *pat, kept *k)
{
    dw_scpi_parser p;
    dw_scpi_unit u;
    dw_scpi_parser_init(&p, msg, n);
    int rc;
    while ((rc = dw_scpi_parser_next(&p, &u)) == 1) {
        exercise(pat, &u);
        if (k->nunits++ && dw_buf_append_byte(&k->printed, ';') != DW_OK)
            abort();
        if (dw_scpi_unit_print(&u, &k->printed) != DW_OK)
            abort();
    }
    if (rc != 0 && (rc > -100 || rc < -999) && rc != DW_SCPI_NOMEM)
        abort(); /* only SCPI error codes */
    if (dw_scpi_parser_next(&p, &u) != 0)
        abort(); /* after the end or an error: nothing more */
    dw_scpi_parser_free(&p);
}

/* The printed units parse back to what printed them. */
static void round_trip(const uint8_t *msg, size_t n, const kept *k)
{
    dw_scpi_parser a, b;
    dw_scpi_unit ua, ub;
    dw_scpi_parser_init(&a, msg, n);
    dw_scpi_parser_init(&b, k->printed.data, k->printed.len);
    for (size_t i = 0; i < k->nunits; i++) {
        if (dw_scpi_parser_next(&a, &ua) != 1 || dw_scpi_parser_next(&b, &ub) != 1)
            abort();
        if (!same_unit(&ua, &ub))
            abort();
    }
    if (dw_scpi_parser_next(&b, &ub) != 0)
        abort();
    dw_scpi_parser_free(&a);
    dw_scpi_parser_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    size_t n = size - 1;
    uint8_t *msg = malloc(n ? n : 1);
    if (!msg)
        return 0;
    memcpy(msg, data + 1, n);

    dw_scpi_pattern *pat = NULL;
    if (flags & 1) {
        const uint8_t *nl = memchr(msg, '\n', n);
        size_t plen = nl ? (size_t)(nl - msg) : n;
        char *text = malloc(plen + 1);
        if (text) {
            memcpy(text, msg, plen);
            text[plen] = 0;
            size_t where;
            const char *why;
            if (dw_scpi_pattern_compile(text, &pat, &where, &why) == DW_EINVAL &&
                (where > plen || !why))
                abort();
            free(text);
        }
    }
    kept k = {DW_BUF_INIT, 0};
    first_pass(msg, n, pat, &k);
    round_trip(msg, n, &k);
    dw_buf_free(&k.printed);
    dw_scpi_pattern_free(pat);
    free(msg);
    return 0;
}
