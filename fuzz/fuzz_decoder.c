/* The push decoder against the blocking loop: for any framing, options and
 * bytes, dw_decoder_feed at the fuzzer's cuts (and byte by byte) gives the
 * same frames, the same errors with the same messages and partial payloads,
 * after the same bytes consumed, as dw_unmarshall on the stream whole; at the
 * payload level dw_decoder_feed_payload matches dw_unmarshall_payload.
 * dw_decoder_buffered always counts the frame in progress.
 *
 * Input:
 *   byte  bits 0-2 framing (value % 5: sentinel, fixed, length-prefixed,
 *         scpi, json-lines); bit 3 payload level; bit 4 dw_decoder_shrink(0)
 *         after every chunk; bit 5 an empty feed before every chunk
 *   then the framing's own option bytes, as its target reads them
 *   (fuzz_sentinel.c, fuzz_fixed.c, ...), then the common layout of
 *   fuzz_framing.h (max frame, split, stream; the split's end-code bit is
 *   ignored: a decoder has no transport errors). So the corpus of a framing
 *   target, behind one selector byte, is a corpus here. */
#include <cjson/cJSON.h>

#include "devwire/decoder.h"
#include "fuzz_framing.h"

enum { SENTINEL, FIXED, LENGTH_PREFIXED, SCPI, JSON, NFRAMINGS };

typedef struct opts {
    int level; /* payload level */
    int shrink;
    int empty_feeds;
} opts;

/* The marshaller, from the framing target's option bytes. */
static dw_marshaller *read_marshaller(fz_reader *r, int framing)
{
    uint8_t s[80];
    size_t sl;
    uint8_t opt;
    switch (framing) {
    case SENTINEL:
        opt = fz_byte(r);
        sl = opt < 0xc0 ? (size_t)(opt & 3u) + 1 : (size_t)(opt & 0x3fu) + 17;
        for (size_t i = 0; i < sl; i++)
            s[i] = fz_byte(r);
        return dw_sentinel_marshaller_new(s, sl);
    case FIXED: {
        unsigned hi = fz_byte(r);
        return dw_fixed_marshaller_new((size_t)(((hi << 8) | fz_byte(r)) % 1024u) + 1);
    }
    case LENGTH_PREFIXED: {
        static const unsigned sizes[3] = {1, 2, 4};
        opt = fz_byte(r);
        return dw_length_prefixed_marshaller_new(sizes[(opt & 0x7fu) % 3],
                                                 (opt & 0x80u) ? DW_LITTLE_ENDIAN : DW_BIG_ENDIAN);
    }
    case SCPI:
        opt = fz_byte(r);
        if ((opt & 3u) < 2)
            return (opt & 3u) ? dw_scpi_marshaller_new("\r\n", 2) : dw_scpi_marshaller_new("\n", 1);
        sl = (size_t)((opt >> 2) & 3u) + 1;
        for (size_t i = 0; i < sl; i++)
            s[i] = fz_byte(r);
        return dw_scpi_marshaller_new(s, sl);
    default:
        return dw_json_marshaller_new();
    }
}

/* One result, either way. */
typedef struct res {
    int rc;
    size_t consumed; /* stream offset after the call */
    dw_buf payload;  /* bytes, or the printed cJSON value */
    char message[sizeof(((dw_error *)0)->message)];
} res;

typedef struct run {
    res *v;
    size_t n, cap;
} run;

static void run_free(run *r)
{
    for (size_t i = 0; i < r->n; i++)
        dw_buf_free(&r->v[i].payload);
    free(r->v);
    memset(r, 0, sizeof *r);
}

static void fail(const char *what, const dw_marshaller *m, size_t i, const res *a, const res *b)
{
    fprintf(stderr, "fuzz oracle: %s: %s (max frame %zu), result %zu\n", dw_marshaller_name(m),
            what, dw_marshaller_max_frame(m), i);
    const res *r[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        if (!r[k])
            continue;
        fprintf(stderr, "  %s: %s after %zu bytes, \"%s\", payload %zu bytes:", k ? "push" : "pull",
                dw_err_name(r[k]->rc), r[k]->consumed, r[k]->message, r[k]->payload.len);
        for (size_t j = 0; j < r[k]->payload.len && j < 64; j++)
            fprintf(stderr, " %02x", r[k]->payload.data[j]);
        fprintf(stderr, "\n");
    }
    abort();
}

/* Record a result; a payload-level value is kept as bytes (a cJSON value
 * printed) and freed. Returns the record. */
static res *add(run *r, int rc, size_t consumed, const dw_marshaller *m, const dw_buf *bytes,
                void *value, const dw_error *err)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 16;
        r->v = realloc(r->v, r->cap * sizeof *r->v);
        if (!r->v)
            abort();
    }
    res *x = &r->v[r->n++];
    x->rc = rc;
    x->consumed = consumed;
    dw_buf_init(&x->payload);
    snprintf(x->message, sizeof x->message, "%s", rc < 0 ? err->message : "");
    if (value && strcmp(dw_marshaller_name(m), "json-lines") == 0) {
        char *text = cJSON_PrintUnformatted(value);
        if (!text || dw_buf_append_str(&x->payload, text) != DW_OK)
            abort();
        cJSON_free(text);
    } else if (value) {
        bytes = value;
    }
    if (bytes && dw_buf_append(&x->payload, bytes->data, bytes->len) != DW_OK)
        abort();
    dw_payload_free(m, value);
    return x;
}

/* The blocking way, on the stream whole. */
static void pull(const dw_marshaller *m, const uint8_t *d, size_t len, const opts *o, run *out)
{
    dw_mem_iter it;
    dw_mem_iter_init(&it, d, len, NULL, 0);
    dw_buf p = DW_BUF_INIT;
    int rc = DW_OK;
    while (rc == DW_OK) {
        dw_error err;
        dw_error_clear(&err);
        void *v = NULL;
        if (o->level)
            rc = dw_unmarshall_payload(m, &it.base, &v, &err);
        else
            rc = dw_unmarshall(m, &it.base, &p, &err);
        if (o->level && (rc == DW_OK) != (v != NULL))
            abort();
        add(out, rc, it.pos - dw_iter_pending(&it.base), m, o->level ? NULL : &p, v, &err);
    }
    dw_buf_free(&p);
}

/* Feed one chunk until it is used up (0) or a result ends the stream (1). */
static int push_chunk(dw_decoder *dec, const dw_marshaller *m, const uint8_t *c, size_t n,
                      const opts *o, size_t *off, size_t *frame_start, run *out)
{
    dw_buf p = DW_BUF_INIT;
    size_t done = 0, used = 0;
    int rc = DW_MORE;
    if (o->empty_feeds && dw_decoder_feed(dec, c, 0, &used, &p, NULL) != DW_MORE)
        abort();
    while (done < n) {
        dw_error err;
        dw_error_clear(&err);
        void *v = NULL;
        if (o->level)
            rc = dw_decoder_feed_payload(dec, c + done, n - done, &used, &v, &err);
        else
            rc = dw_decoder_feed(dec, c + done, n - done, &used, &p, &err);
        done += used;
        *off += used;
        if (rc == DW_MORE) {
            if (done != n || dw_decoder_buffered(dec) != *off - *frame_start || v)
                fail("DW_MORE left bytes, a payload, or a wrong buffered count", m, out->n, NULL,
                     NULL);
            break;
        }
        res *x = add(out, rc, *off, m, o->level ? NULL : &p, v, &err);
        if (dw_decoder_buffered(dec) != 0)
            fail("a decoder holds bytes after a frame ended", m, out->n - 1, x, NULL);
        *frame_start = *off;
        if (rc != DW_OK)
            break;
    }
    dw_buf_free(&p);
    if (o->shrink)
        dw_decoder_shrink(dec, 0);
    return rc != DW_OK && rc != DW_MORE;
}

/* The push way, fed the chunks between `cuts`, then finished. */
static void push(const dw_marshaller *m, const uint8_t *d, size_t len, const size_t *cuts,
                 size_t ncuts, const opts *o, run *out)
{
    dw_decoder *dec = dw_decoder_new(m);
    if (!dec)
        abort();
    size_t start = 0, off = 0, frame_start = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        if (end <= start)
            continue;
        /* Each chunk in its own exact-size buffer: an over-read shows. */
        uint8_t *c = malloc(end - start);
        if (!c)
            abort();
        memcpy(c, d + start, end - start);
        int over = push_chunk(dec, m, c, end - start, o, &off, &frame_start, out);
        free(c);
        start = end;
        if (over) {
            dw_decoder_free(dec);
            return;
        }
    }
    dw_buf p = DW_BUF_INIT;
    dw_error err;
    dw_error_clear(&err);
    int rc = dw_decoder_finish(dec, &p, &err);
    /* The payload level drops an unfinished frame's bytes, as
     * dw_unmarshall_payload does. */
    add(out, rc, off, m, o->level ? NULL : &p, NULL, &err);
    dw_buf_free(&p);
    dw_decoder_free(dec);
}

static void compare(const dw_marshaller *m, const run *a, const run *b)
{
    size_t n = a->n < b->n ? a->n : b->n;
    for (size_t i = 0; i < n; i++) {
        const res *x = &a->v[i], *y = &b->v[i];
        if (x->rc != y->rc || x->consumed != y->consumed || strcmp(x->message, y->message) != 0 ||
            x->payload.len != y->payload.len ||
            (x->payload.len && memcmp(x->payload.data, y->payload.data, x->payload.len) != 0))
            fail("the push decoder and dw_unmarshall differ", m, i, x, y);
    }
    if (a->n != b->n)
        fail("the push decoder and dw_unmarshall give another number of results", m, n,
             n < a->n ? &a->v[n] : NULL, n < b->n ? &b->v[n] : NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_reader r = {data, size};
    uint8_t sel = fz_byte(&r);
    opts o = {(sel >> 3) & 1, (sel >> 4) & 1, (sel >> 5) & 1};
    dw_marshaller *m = read_marshaller(&r, (sel & 7) % NFRAMINGS);
    if (!m)
        abort();
    dw_marshaller_set_max_frame(m, fz_max_frame(fz_byte(&r)));
    fz_split s;
    fz_read_split(&r, &s);

    run want = {0}, got = {0};
    pull(m, r.p, r.n, &o, &want);
    size_t ncuts;
    size_t *cuts = fz_cuts(&s, r.n, &ncuts);
    push(m, r.p, r.n, cuts, ncuts, &o, &got);
    compare(m, &want, &got);
    run_free(&got);
    free(cuts);
    if (r.n <= 512) { /* byte by byte, the most adversarial cutting */
        fz_split one = {0};
        cuts = fz_cuts(&one, r.n, &ncuts);
        push(m, r.p, r.n, cuts, ncuts, &o, &got);
        compare(m, &want, &got);
        run_free(&got);
        free(cuts);
    }
    run_free(&want);
    dw_marshaller_free(m);
    return 0;
}
