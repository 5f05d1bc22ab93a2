#include "support.h"

#include <stdlib.h>
#include <string.h>

void dw_test_run(const dw_marshaller *m, const uint8_t *data, size_t len, const size_t *cuts,
                 size_t ncuts, dw_test_outcome *out)
{
    memset(out, 0, sizeof *out);
    dw_mem_iter it;
    dw_mem_iter_init(&it, data, len, cuts, ncuts);
    for (;;) {
        dw_buf *p = &out->payloads[out->count];
        int rc = dw_unmarshall(m, &it.base, p, NULL);
        if (rc != DW_OK) {
            out->end = rc;
            if (rc == DW_ETRUNCATED)
                dw_buf_append(&out->rest, p->data, p->len);
            dw_buf_free(p);
            return;
        }
        if (++out->count == sizeof out->payloads / sizeof out->payloads[0]) {
            out->end = DW_ENOMEM;
            return;
        }
    }
}

void dw_test_outcome_free(dw_test_outcome *o)
{
    for (size_t i = 0; i < o->count; i++)
        dw_buf_free(&o->payloads[i]);
    dw_buf_free(&o->rest);
    o->count = 0;
}

static int buf_eq(const dw_buf *a, const dw_buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

int dw_test_outcome_eq(const dw_test_outcome *a, const dw_test_outcome *b)
{
    if (a->count != b->count || a->end != b->end || !buf_eq(&a->rest, &b->rest))
        return 0;
    for (size_t i = 0; i < a->count; i++)
        if (!buf_eq(&a->payloads[i], &b->payloads[i]))
            return 0;
    return 1;
}

static size_t check(const dw_marshaller *m, const uint8_t *d, size_t len, const size_t *cuts,
                    size_t ncuts, const dw_test_outcome *whole)
{
    dw_test_outcome o;
    dw_test_run(m, d, len, cuts, ncuts, &o);
    size_t bad = !dw_test_outcome_eq(&o, whole);
    dw_test_outcome_free(&o);
    return bad;
}

size_t dw_test_every_split(const dw_marshaller *m, const void *data, size_t len,
                           dw_test_outcome *whole)
{
    uint8_t *d = malloc(len ? len : 1);
    memcpy(d, data, len);
    dw_test_run(m, d, len, NULL, 0, whole);
    size_t bad = 0;
    size_t *cuts = malloc((len ? len : 1) * sizeof *cuts);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    bad += check(m, d, len, cuts, len, whole);
    for (size_t a = 1; a < len; a++) {
        for (size_t b = a; b < len; b++) {
            size_t two[2] = {a, b};
            bad += check(m, d, len, two, 2, whole);
        }
    }
    free(cuts);
    free(d);
    return bad;
}
