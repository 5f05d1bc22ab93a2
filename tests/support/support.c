#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_pull(dw_iter *base, const uint8_t **data, size_t *len)
{
    dw_test_iter *it = (dw_test_iter *)base;
    free(it->copy);
    it->copy = NULL;
    const uint8_t *d;
    size_t n;
    int rc = dw_iter_next(&it->inner.base, &d, &n);
    if (rc != DW_OK)
        return rc;
    if (n == 0)
        abort(); /* the in-memory iterator broke the contract */
    it->copy = malloc(n);
    if (!it->copy)
        return DW_ENOMEM;
    memcpy(it->copy, d, n);
    it->pulls++;
    *data = it->copy;
    *len = n;
    return DW_OK;
}

void dw_test_iter_init(dw_test_iter *it, const uint8_t *data, size_t len, const size_t *cuts,
                       size_t ncuts)
{
    dw_iter_init(&it->base, test_pull);
    dw_mem_iter_init(&it->inner, data, len, cuts, ncuts);
    it->copy = NULL;
    it->pulls = 0;
}

void dw_test_iter_set_end(dw_test_iter *it, int end_code)
{
    it->inner.end_code = end_code;
}

size_t dw_test_iter_offset(const dw_test_iter *it)
{
    return it->inner.pos - dw_iter_pending(&it->base);
}

void dw_test_iter_free(dw_test_iter *it)
{
    free(it->copy);
    it->copy = NULL;
}

/* Record the result of the call that ended a stream. */
static void record_end(dw_test_outcome *out, int rc, const dw_buf *p, const dw_error *err,
                       size_t offset)
{
    out->end = rc;
    out->end_offset = offset;
    if (rc < 0 && p) {
        dw_buf_append(&out->rest, p->data, p->len);
        snprintf(out->message, sizeof out->message, "%s", err->message);
    }
}

void dw_test_run(const dw_marshaller *m, const uint8_t *data, size_t len, const size_t *cuts,
                 size_t ncuts, dw_test_outcome *out)
{
    memset(out, 0, sizeof *out);
    dw_test_iter it;
    dw_test_iter_init(&it, data, len, cuts, ncuts);
    for (;;) {
        dw_buf *p = &out->payloads[out->count];
        dw_error err;
        dw_error_clear(&err);
        int rc = dw_unmarshall(m, &it.base, p, &err);
        if (rc != DW_OK) {
            record_end(out, rc, p, &err, dw_test_iter_offset(&it));
            dw_buf_free(p);
            break;
        }
        out->offsets[out->count] = dw_test_iter_offset(&it);
        if (++out->count == DW_TEST_MAX_PAYLOADS) {
            record_end(out, DW_ENOMEM, NULL, NULL, dw_test_iter_offset(&it));
            break;
        }
    }
    dw_test_iter_free(&it);
}

/* Feed one chunk to the decoder until it is used up or a frame ends the
 * stream. Returns 0 to go on, 1 when the stream ended. */
static int feed_chunk(dw_decoder *d, const uint8_t *chunk, size_t n, size_t *offset,
                      dw_test_outcome *out)
{
    size_t done = 0;
    while (done < n) {
        dw_buf *p = &out->payloads[out->count];
        dw_error err;
        dw_error_clear(&err);
        size_t used = 0;
        int rc = dw_decoder_feed(d, chunk + done, n - done, &used, p, &err);
        done += used;
        *offset += used;
        if (rc == DW_MORE) {
            if (done != n)
                abort(); /* DW_MORE always takes every byte */
            return 0;
        }
        if (rc != DW_OK) {
            record_end(out, rc, p, &err, *offset);
            dw_buf_free(p);
            return 1;
        }
        out->offsets[out->count] = *offset;
        if (++out->count == DW_TEST_MAX_PAYLOADS) {
            record_end(out, DW_ENOMEM, NULL, NULL, *offset);
            return 1;
        }
    }
    return 0;
}

void dw_test_decode_run(const dw_marshaller *m, const uint8_t *data, size_t len, const size_t *cuts,
                        size_t ncuts, dw_test_outcome *out)
{
    memset(out, 0, sizeof *out);
    dw_decoder *d = dw_decoder_new(m);
    if (!d)
        abort();
    size_t offset = 0, start = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        if (end <= start || end > len)
            continue;
        uint8_t *chunk = malloc(end - start);
        if (!chunk)
            abort();
        memcpy(chunk, data + start, end - start);
        int over = feed_chunk(d, chunk, end - start, &offset, out);
        free(chunk);
        if (over) {
            dw_decoder_free(d);
            return;
        }
        start = end;
    }
    dw_buf p = DW_BUF_INIT;
    dw_error err;
    dw_error_clear(&err);
    record_end(out, dw_decoder_finish(d, &p, &err), &p, &err, offset);
    dw_buf_free(&p);
    dw_decoder_free(d);
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
    if (a->count != b->count || a->end != b->end || a->end_offset != b->end_offset ||
        !buf_eq(&a->rest, &b->rest))
        return 0;
    for (size_t i = 0; i < a->count; i++)
        if (!buf_eq(&a->payloads[i], &b->payloads[i]) || a->offsets[i] != b->offsets[i])
            return 0;
    return 1;
}

static size_t check(dw_test_runner run, const dw_marshaller *m, const uint8_t *d, size_t len,
                    const size_t *cuts, size_t ncuts, const dw_test_outcome *whole)
{
    dw_test_outcome o;
    run(m, d, len, cuts, ncuts, &o);
    size_t bad = !dw_test_outcome_eq(&o, whole);
    dw_test_outcome_free(&o);
    return bad;
}

size_t dw_test_every_split(const dw_marshaller *m, const void *data, size_t len,
                           dw_test_outcome *whole)
{
    return dw_test_every_split_with(dw_test_run, m, data, len, whole);
}

size_t dw_test_every_split_with(dw_test_runner run, const dw_marshaller *m, const void *data,
                                size_t len, dw_test_outcome *whole)
{
    uint8_t *d = calloc(len ? len : 1, 1);
    if (!d)
        abort();
    if (len)
        memcpy(d, data, len);
    run(m, d, len, NULL, 0, whole);
    size_t bad = 0;
    size_t *cuts = calloc(len ? len : 1, sizeof *cuts);
    if (!cuts)
        abort();
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    bad += check(run, m, d, len, cuts, len, whole);
    for (size_t a = 1; a < len; a++) {
        for (size_t b = a; b < len; b++) {
            size_t two[2] = {a, b};
            bad += check(run, m, d, len, two, 2, whole);
        }
    }
    free(cuts);
    free(d);
    return bad;
}

const char *dw_test_escape(const void *p, size_t n, char *out, size_t outsize)
{
    const uint8_t *s = p;
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char tmp[8];
        if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\')
            snprintf(tmp, sizeof tmp, "%c", s[i]);
        else
            snprintf(tmp, sizeof tmp, "\\x%02x", s[i]);
        size_t tl = strlen(tmp);
        if (o + tl + 4 >= outsize) {
            snprintf(out + o, outsize - o, "...");
            return out;
        }
        memcpy(out + o, tmp, tl + 1);
        o += tl;
    }
    return out;
}

const char *dw_test_esc(const void *p, size_t n)
{
    static char out[4][256];
    static int k;
    k = (k + 1) % 4;
    return dw_test_escape(p, n, out[k], sizeof out[k]);
}
