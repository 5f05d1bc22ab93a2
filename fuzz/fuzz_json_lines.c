/* JSON-lines framing under arbitrary cuts, at the byte and payload levels.
 * Input: the common layout of fuzz_framing.h (max frame, split, stream). */
#include <cjson/cJSON.h>

#include "fuzz_framing.h"

/* A line is the bytes before the first newline, and holds no newline. A line
 * that reaches the maximum (newline included) without its newline is refused
 * there, even if the stream ends right after. */
static const char *check(const dw_marshaller *m, const uint8_t *stream, size_t len, const fz_rec *r)
{
    size_t max = dw_marshaller_max_frame(m);
    size_t left = len - r->start;
    const uint8_t *rest = stream + r->start;
    const uint8_t *nl = memchr(rest, '\n', left);
    if (r->rc == DW_ETRUNCATED)
        return nl            ? "DW_ETRUNCATED although a newline follows"
               : left >= max ? "DW_ETRUNCATED for a line that reached the maximum"
                             : NULL;
    if (r->rc == DW_ETOOBIG)
        return nl && (size_t)(nl - rest) + 1 <= max ? "DW_ETOOBIG for a line within the maximum"
               : left < max ? "DW_ETOOBIG for a line that did not reach the maximum"
                            : NULL;
    if (r->rc == DW_EPROTO)
        return nl && (size_t)(nl - rest) + 1 <= max ? NULL : "DW_EPROTO without a whole line";
    if (r->rc != DW_OK)
        return "an unexpected error";
    size_t n = r->payload.len;
    if (r->consumed - r->start != n + 1 || stream[r->start + n] != '\n')
        return "frame is not the payload and a newline";
    if (n + 1 > max)
        return "frame larger than the maximum accepted";
    if (n &&
        (memcmp(stream + r->start, r->payload.data, n) != 0 || memchr(r->payload.data, '\n', n)))
        return "payload differs from the stream's line";
    return NULL;
}

/* Whether two values print the same (cJSON_Compare cannot be used: it
 * finds inf unequal to itself and mismatches objects with duplicate keys). */
static int same_value(const cJSON *a, const cJSON *b)
{
    char *x = cJSON_PrintUnformatted(a), *y = cJSON_PrintUnformatted(b);
    if (!x || !y)
        abort();
    int same = strcmp(x, y) == 0;
    cJSON_free(x);
    cJSON_free(y);
    return same;
}

static cJSON *parse(const dw_buf *b)
{
    return cJSON_ParseWithLength(b->data ? (const char *)b->data : "", b->len);
}

static void fail(const char *what, size_t i)
{
    fprintf(stderr, "fuzz oracle: json-lines: %s (result %zu)\n", what, i);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_reader r = {data, size};
    size_t max = fz_max_frame(fz_byte(&r));
    fz_split s;
    fz_read_split(&r, &s);

    dw_marshaller *m = dw_json_marshaller_new();
    if (!m)
        abort();
    dw_marshaller_set_max_frame(m, max);
    fz_recs whole;
    fz_differential(m, r.p, r.n, &s, check, 1, &whole);
    for (size_t i = 0; i < whole.n; i++) {
        const fz_rec *w = &whole.v[i];
        if (w->rc == DW_EPROTO &&
            (w->consumed - w->start != w->payload.len + 1 ||
             r.p[w->start + w->payload.len] != '\n' ||
             (w->payload.len && memcmp(r.p + w->start, w->payload.data, w->payload.len) != 0)))
            fail("DW_EPROTO without the whole line in the payload", i);
    }

    /* Payload level, through cuts: the same results as the byte level, and
     * each value is the parse of the byte payload. */
    size_t ncuts;
    size_t *cuts = fz_cuts(&s, r.n, &ncuts);
    dw_mem_iter it;
    dw_mem_iter_init(&it, r.p, r.n, cuts, ncuts);
    it.end_code = s.end_code;
    for (size_t i = 0; i < whole.n; i++) {
        void *v = NULL;
        int rc = dw_unmarshall_payload(m, &it.base, &v, NULL);
        if (rc != whole.v[i].rc)
            fail("payload level gives another result than the byte level", i);
        if (rc != DW_OK) {
            if (v)
                fail("a payload with an error", i);
            break;
        }
        cJSON *want = parse(&whole.v[i].payload);
        if (!want || !v || !same_value(want, v))
            fail("payload level value differs from the parsed line", i);
        /* Payload-level round trip of the value. */
        dw_buf wire = DW_BUF_INIT;
        if (dw_marshall_payload(m, want, &wire, NULL) != DW_OK)
            fail("a parsed value cannot be marshalled", i);
        dw_mem_iter one;
        dw_mem_iter_init_chunked(&one, wire.data, wire.len, (size_t)s.param + 1);
        size_t keep = dw_marshaller_max_frame(m);
        void *back = NULL;
        dw_marshaller_set_max_frame(m, DW_DEFAULT_MAX_FRAME);
        if (dw_unmarshall_payload(m, &one.base, &back, NULL) != DW_OK || !same_value(want, back))
            fail("value does not survive marshall_payload + unmarshall_payload", i);
        dw_marshaller_set_max_frame(m, keep);
        dw_payload_free(m, back);
        dw_buf_free(&wire);
        cJSON_Delete(want);
        dw_payload_free(m, v);
    }
    free(cuts);

    fz_payloads cand = {0};
    fz_candidates(&cand, r.p, r.n, &s, &whole);
    dw_marshaller_set_max_frame(m, DW_DEFAULT_MAX_FRAME);
    fz_round_trip(m, &cand, &s);

    fz_payloads_free(&cand);
    fz_recs_free(&whole);
    dw_marshaller_free(m);
    return 0;
}
