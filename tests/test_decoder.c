/* The push decoder: every framing vector at every split (the vectors of
 * tests/support/vectors.c, shared with test_marshaller.c), the same results
 * and messages as the blocking dw_unmarshall, errors and what follows them,
 * end of stream, the payload level, shrink and buffered. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "vectors.h"

#define S(lit) (const uint8_t *)(lit), sizeof(lit) - 1

static int buf_is(const dw_buf *b, const char *p, size_t n)
{
    return b->len == n && (n == 0 || memcmp(b->data, p, n) == 0);
}
#define BUF_IS(b, lit) buf_is((b), (lit), sizeof(lit) - 1)

/* ---- every vector at every split ----------------------------------------- */

DW_TEST_VECTOR_SUITES(dw_test_decode_run)

Test(decoder, same_results_and_messages_as_dw_unmarshall)
{
    /* Whole and one byte at a time, the push decoder and the blocking loop
     * agree on everything, the error message included. */
    for (size_t i = 0; i < dw_test_nvectors; i++) {
        const dw_test_vector *v = &dw_test_vectors[i];
        dw_marshaller *m = dw_test_vector_marshaller(v);
        size_t *cuts = calloc(v->in.n + 1, sizeof *cuts);
        for (size_t k = 0; k < v->in.n; k++)
            cuts[k] = k + 1;
        for (int bytewise = 0; bytewise < 2; bytewise++) {
            size_t ncuts = bytewise ? v->in.n : 0;
            dw_test_outcome pull, push;
            dw_test_run(m, (const uint8_t *)v->in.p, v->in.n, cuts, ncuts, &pull);
            dw_test_decode_run(m, (const uint8_t *)v->in.p, v->in.n, cuts, ncuts, &push);
            cr_expect(dw_test_outcome_eq(&pull, &push), "%s%s: push gives %s after %zu frames",
                      v->name, bytewise ? " (byte by byte)" : "", dw_err_name(push.end),
                      push.count);
            cr_expect(eq(str, push.message, pull.message), "%s", v->name);
            dw_test_outcome_free(&pull);
            dw_test_outcome_free(&push);
        }
        free(cuts);
        dw_marshaller_free(m);
    }
}

/* ---- errors --------------------------------------------------------------- */

static dw_marshaller *make(int k)
{
    switch (k) {
    case 0:
        return dw_sentinel_marshaller_new("\r\n", 2);
    case 1:
        return dw_fixed_marshaller_new(2);
    case 2:
        return dw_length_prefixed_marshaller_new(4, DW_BIG_ENDIAN);
    case 3:
        return dw_scpi_marshaller_new("\n", 1);
    default:
        return dw_json_marshaller_new();
    }
}
#define NKINDS 5

Test(decoder, too_big_at_max_frame_plus_one)
{
    /* A frame of exactly the maximum is fine; one byte more is refused, by
     * every framing, whatever the cutting. */
    for (int k = 0; k < NKINDS; k++) {
        dw_marshaller *m = make(k);
        dw_buf frame = DW_BUF_INIT, p = DW_BUF_INIT;
        cr_assert(eq(int, dw_marshall(m, S("12"), &frame, NULL), DW_OK));
        for (size_t chunk = 1; chunk <= frame.len; chunk++) {
            for (int over = 0; over < 2; over++) {
                dw_marshaller_set_max_frame(m, frame.len - (size_t)over);
                dw_decoder *d = dw_decoder_new(m);
                dw_error err;
                dw_error_clear(&err);
                size_t off = 0, used = 0;
                int rc = DW_MORE;
                while (rc == DW_MORE && off < frame.len) {
                    size_t n = frame.len - off < chunk ? frame.len - off : chunk;
                    rc = dw_decoder_feed(d, frame.data + off, n, &used, &p, &err);
                    off += used;
                }
                const char *name = dw_marshaller_name(m);
                if (over) {
                    cr_expect(eq(int, rc, DW_ETOOBIG), "%s, max %zu, chunks of %zu: %s", name,
                              frame.len - 1, chunk, dw_err_name(rc));
                    cr_expect(strstr(err.message, name) != NULL, "%s", err.message);
                    cr_expect(le(sz, p.len, frame.len - 1), "%s: no more than the maximum kept",
                              name);
                } else {
                    cr_expect(eq(int, rc, DW_OK), "%s, max %zu, chunks of %zu: %s", name, frame.len,
                              chunk, err.message);
                    cr_expect(BUF_IS(&p, "12"), "%s: \"%s\"", name, dw_test_esc(p.data, p.len));
                    cr_expect(eq(sz, off, frame.len));
                }
                dw_decoder_free(d);
            }
        }
        dw_buf_free(&p);
        dw_buf_free(&frame);
        dw_marshaller_free(m);
    }
}

Test(decoder, proto_error_then_reset)
{
    /* The bad byte is consumed, the message is dw_unmarshall's, the partial
     * frame is in the payload; the decoder then starts a new frame. */
    dw_marshaller *m = dw_scpi_marshaller_new("\n", 1);
    dw_decoder *d = dw_decoder_new(m);
    dw_buf p = DW_BUF_INIT;
    dw_error err;
    size_t used;
    cr_expect(eq(int, dw_decoder_feed(d, S("#3"), &used, &p, &err), DW_MORE));
    cr_expect(eq(int, dw_decoder_feed(d, S("x1\nOK\n"), &used, &p, &err), DW_EPROTO));
    cr_expect(eq(sz, used, 1), "up to and including the bad byte");
    cr_expect(BUF_IS(&p, "#3x"), "partial frame as received: \"%s\"", dw_test_esc(p.data, p.len));
    cr_expect(strstr(err.message, "block header") != NULL && strstr(err.message, "0x78") != NULL,
              "%s", err.message);
    cr_expect(eq(sz, dw_decoder_buffered(d), 0), "reset after the error");
    cr_expect(eq(int, dw_decoder_feed(d, S("1\nOK\n"), &used, &p, &err), DW_OK));
    cr_expect(eq(sz, used, 2));
    cr_expect(BUF_IS(&p, "1"));
    dw_decoder_free(d);
    dw_marshaller_free(m);

    m = dw_json_marshaller_new();
    d = dw_decoder_new(m);
    cr_expect(eq(int, dw_decoder_feed(d, S("{\"a\":}\n[1]\n"), &used, &p, &err), DW_EPROTO));
    cr_expect(eq(sz, used, 7), "the whole line");
    cr_expect(BUF_IS(&p, "{\"a\":}"), "\"%s\"", dw_test_esc(p.data, p.len));
    cr_expect(strstr(err.message, "invalid JSON at byte 5") != NULL, "%s", err.message);
    cr_expect(eq(int, dw_decoder_feed(d, S("[1]\n"), &used, &p, &err), DW_OK));
    cr_expect(BUF_IS(&p, "[1]"));
    dw_buf_free(&p);
    dw_decoder_free(d);
    dw_marshaller_free(m);
}

Test(decoder, too_big_then_reset)
{
    dw_marshaller *m = dw_length_prefixed_marshaller_new(2, DW_BIG_ENDIAN);
    dw_marshaller_set_max_frame(m, 6);
    dw_decoder *d = dw_decoder_new(m);
    dw_buf p = DW_BUF_INIT;
    dw_error err;
    size_t used;
    cr_expect(eq(int, dw_decoder_feed(d, S("\0\5abcde"), &used, &p, &err), DW_ETOOBIG));
    cr_expect(eq(sz, used, 2), "refused at the header, no body read");
    cr_expect(BUF_IS(&p, "\0\5"), "\"%s\"", dw_test_esc(p.data, p.len));
    cr_expect(strstr(err.message, "announces 5 bytes") != NULL, "%s", err.message);
    cr_expect(eq(int, dw_decoder_feed(d, S("\0\2xy"), &used, &p, &err), DW_OK));
    cr_expect(BUF_IS(&p, "xy"));
    dw_buf_free(&p);
    dw_decoder_free(d);
    dw_marshaller_free(m);
}

/* ---- end of stream -------------------------------------------------------- */

Test(decoder, finish_between_frames_is_eof)
{
    for (int k = 0; k < NKINDS; k++) {
        dw_marshaller *m = make(k);
        dw_decoder *d = dw_decoder_new(m);
        dw_buf frame = DW_BUF_INIT, p = DW_BUF_INIT;
        dw_error err;
        size_t used;
        cr_expect(eq(int, dw_decoder_finish(d, &p, &err), DW_EOF), "a fresh decoder");
        cr_assert(eq(int, dw_marshall(m, S("12"), &frame, NULL), DW_OK));
        cr_expect(eq(int, dw_decoder_feed(d, frame.data, frame.len, &used, &p, &err), DW_OK));
        cr_expect(eq(int, dw_decoder_finish(d, &p, &err), DW_EOF), "%s after a frame",
                  dw_marshaller_name(m));
        cr_expect(eq(sz, p.len, 0), "DW_EOF leaves no bytes");
        dw_buf_free(&p);
        dw_buf_free(&frame);
        dw_decoder_free(d);
        dw_marshaller_free(m);
    }
}

Test(decoder, finish_inside_a_frame_is_truncated)
{
    /* Every framing, cut after each byte of a frame: DW_ETRUNCATED with
     * every byte received and dw_unmarshall's message; then a clean start. */
    for (int k = 0; k < NKINDS; k++) {
        dw_marshaller *m = make(k);
        dw_buf frame = DW_BUF_INIT, p = DW_BUF_INIT;
        cr_assert(eq(int, dw_marshall(m, S("12"), &frame, NULL), DW_OK));
        for (size_t cut = 1; cut < frame.len; cut++) {
            dw_decoder *d = dw_decoder_new(m);
            dw_error err, want_err;
            size_t used;
            cr_expect(eq(int, dw_decoder_feed(d, frame.data, cut, &used, &p, &err), DW_MORE));
            cr_expect(eq(sz, dw_decoder_buffered(d), cut));
            cr_expect(eq(int, dw_decoder_finish(d, &p, &err), DW_ETRUNCATED));
            cr_expect(p.len == cut && memcmp(p.data, frame.data, cut) == 0, "%s cut at %zu: \"%s\"",
                      dw_marshaller_name(m), cut, dw_test_esc(p.data, p.len));
            dw_test_iter it;
            dw_test_iter_init(&it, frame.data, cut, NULL, 0);
            dw_buf q = DW_BUF_INIT;
            cr_expect(eq(int, dw_unmarshall(m, &it.base, &q, &want_err), DW_ETRUNCATED));
            cr_expect(eq(str, err.message, want_err.message));
            dw_buf_free(&q);
            dw_test_iter_free(&it);
            cr_expect(eq(sz, dw_decoder_buffered(d), 0));
            cr_expect(eq(int, dw_decoder_finish(d, &p, &err), DW_EOF), "finish resets");
            dw_decoder_free(d);
        }
        dw_buf_free(&p);
        dw_buf_free(&frame);
        dw_marshaller_free(m);
    }
}

/* ---- buffers -------------------------------------------------------------- */

Test(decoder, zero_bytes_and_payload_replaced)
{
    dw_marshaller *m = dw_sentinel_marshaller_new("\n", 1);
    dw_decoder *d = dw_decoder_new(m);
    dw_buf p = DW_BUF_INIT;
    dw_buf_append_str(&p, "old contents");
    size_t used = 99;
    cr_expect(eq(int, dw_decoder_feed(d, NULL, 0, &used, &p, NULL), DW_MORE));
    cr_expect(eq(sz, used, 0));
    cr_expect(BUF_IS(&p, "old contents"), "DW_MORE leaves the payload alone");
    cr_expect(eq(int, dw_decoder_feed(d, S("ne"), &used, &p, NULL), DW_MORE));
    cr_expect(BUF_IS(&p, "old contents"));
    cr_expect(eq(int, dw_decoder_feed(d, S("w\n"), &used, &p, NULL), DW_OK));
    cr_expect(BUF_IS(&p, "new"), "\"%s\"", dw_test_esc(p.data, p.len));
    dw_buf_free(&p);
    dw_decoder_free(d);
    dw_decoder_free(NULL);
    dw_marshaller_free(m);
}

Test(decoder, buffered_counts_the_frame_in_progress)
{
    dw_marshaller *m = dw_length_prefixed_marshaller_new(4, DW_BIG_ENDIAN);
    dw_decoder *d = dw_decoder_new(m);
    dw_buf p = DW_BUF_INIT;
    size_t used;
    cr_expect(eq(sz, dw_decoder_buffered(d), 0));
    cr_expect(eq(int, dw_decoder_feed(d, S("\0\0"), &used, &p, NULL), DW_MORE));
    cr_expect(eq(sz, dw_decoder_buffered(d), 2), "header bytes count");
    cr_expect(eq(int, dw_decoder_feed(d, S("\0\3ab"), &used, &p, NULL), DW_MORE));
    cr_expect(eq(sz, dw_decoder_buffered(d), 6));
    cr_expect(eq(int, dw_decoder_feed(d, S("c\0\0\0\1"), &used, &p, NULL), DW_OK));
    cr_expect(eq(sz, used, 1));
    cr_expect(eq(sz, dw_decoder_buffered(d), 0), "a complete frame is handed over");
    cr_expect(eq(int, dw_decoder_feed(d, S("\0\0\0\1"), &used, &p, NULL), DW_MORE));
    cr_expect(eq(sz, dw_decoder_buffered(d), 4));
    dw_decoder_reset(d);
    cr_expect(eq(sz, dw_decoder_buffered(d), 0), "reset forgets the frame");
    cr_expect(eq(int, dw_decoder_feed(d, S("\0\0\0\1z"), &used, &p, NULL), DW_OK));
    cr_expect(BUF_IS(&p, "z"));
    dw_buf_free(&p);
    dw_decoder_free(d);
    dw_marshaller_free(m);
}

/* Feed `n` bytes of 'x' and a newline as one frame; the payload is checked. */
static void feed_line(dw_decoder *d, size_t n, dw_buf *p)
{
    uint8_t *line = malloc(n + 1);
    memset(line, 'x', n);
    line[n] = '\n';
    size_t used;
    cr_assert(eq(int, dw_decoder_feed(d, line, n + 1, &used, p, NULL), DW_OK));
    cr_assert(eq(sz, p->len, n));
    free(line);
}

Test(decoder, shrink_releases_storage_of_large_frames)
{
    /* Storage moves between the caller's payload and the decoder (swapped,
     * not copied), so what the decoder keeps shows in the next payload
     * handed to a caller whose buffer is empty. */
    dw_marshaller *m = dw_sentinel_marshaller_new("\n", 1);
    for (int shrink = 0; shrink < 2; shrink++) {
        dw_decoder *d = dw_decoder_new(m);
        dw_buf a = DW_BUF_INIT, b = DW_BUF_INIT;
        feed_line(d, 100000, &a); /* a: the large storage */
        feed_line(d, 1, &a);      /* the decoder: the large storage */
        if (shrink)
            dw_decoder_shrink(d, 1024);
        feed_line(d, 1, &b);
        if (shrink)
            cr_expect(eq(sz, b.cap, 1024), "kept %zu bytes", b.cap);
        else
            cr_expect(ge(sz, b.cap, 100000), "without shrink the storage is kept");
        dw_buf_free(&a);
        dw_buf_free(&b);
        dw_decoder_free(d);
    }
    dw_marshaller_free(m);
}

Test(decoder, shrink_keeps_the_frame_in_progress)
{
    dw_marshaller *m = dw_scpi_marshaller_new("\r\n", 2);
    dw_decoder *d = dw_decoder_new(m);
    dw_buf p = DW_BUF_INIT;
    size_t used;
    cr_expect(eq(int, dw_decoder_feed(d, S("#15a\r\nb"), &used, &p, NULL), DW_MORE));
    dw_decoder_shrink(d, 0);
    cr_expect(eq(sz, dw_decoder_buffered(d), 7));
    cr_expect(eq(int, dw_decoder_feed(d, S("c\r\r\n"), &used, &p, NULL), DW_OK));
    cr_expect(BUF_IS(&p, "#15a\r\nbc\r"), "\"%s\"", dw_test_esc(p.data, p.len));
    dw_decoder_shrink(d, 0);
    cr_expect(eq(int, dw_decoder_feed(d, S("1\r\n"), &used, &p, NULL), DW_OK));
    cr_expect(BUF_IS(&p, "1"));
    dw_buf_free(&p);
    dw_decoder_free(d);
    dw_marshaller_free(m);
}

Test(decoder, many_frames_in_one_buffer)
{
    /* Pipelining: 1000 frames handed over at once come out one per call,
     * each call consuming exactly its frame, then DW_MORE with nothing
     * left. */
    for (int k = 0; k < NKINDS; k++) {
        dw_marshaller *m = make(k);
        dw_decoder *d = dw_decoder_new(m);
        dw_buf wire = DW_BUF_INIT, p = DW_BUF_INIT;
        for (int i = 0; i < 1000; i++) {
            char s[8];
            snprintf(s, sizeof s, "%02d", i % 100);
            cr_assert(eq(int, dw_marshall(m, (const uint8_t *)s, 2, &wire, NULL), DW_OK));
        }
        size_t frame = wire.len / 1000, off = 0, used;
        int count = 0, rc;
        while ((rc = dw_decoder_feed(d, wire.data + off, wire.len - off, &used, &p, NULL)) ==
               DW_OK) {
            char want[8];
            snprintf(want, sizeof want, "%02d", count++ % 100);
            cr_assert(eq(sz, used, frame), "%s frame %d", dw_marshaller_name(m), count - 1);
            cr_assert(buf_is(&p, want, 2), "%s frame %d", dw_marshaller_name(m), count - 1);
            off += used;
        }
        cr_expect(eq(int, rc, DW_MORE));
        cr_expect(eq(sz, used, 0));
        cr_expect(eq(int, count, 1000), "%s", dw_marshaller_name(m));
        dw_buf_free(&p);
        dw_buf_free(&wire);
        dw_decoder_free(d);
        dw_marshaller_free(m);
    }
}

/* ---- payload level -------------------------------------------------------- */

Test(decoder, payload_level_json)
{
    dw_marshaller *m = dw_json_marshaller_new();
    dw_decoder *d = dw_decoder_new(m);
    dw_error err;
    size_t used;
    void *v = (void *)1;
    cr_expect(eq(int, dw_decoder_feed_payload(d, S("{\"n\":"), &used, &v, &err), DW_MORE));
    cr_expect(eq(ptr, v, NULL));
    cr_expect(eq(int, dw_decoder_feed_payload(d, S("3}\n{bad}\n"), &used, &v, &err), DW_OK), "%s",
              err.message);
    cr_expect(eq(sz, used, 3));
    cr_assert(not(eq(ptr, v, NULL)));
    cr_expect(eq(int, cJSON_GetObjectItem(v, "n")->valueint, 3));
    dw_payload_free(m, v);
    v = (void *)1;
    cr_expect(eq(int, dw_decoder_feed_payload(d, S("{bad}\n"), &used, &v, &err), DW_EPROTO));
    cr_expect(eq(ptr, v, NULL));
    cr_expect(strstr(err.message, "json-lines: invalid JSON") != NULL, "%s", err.message);
    cr_expect(eq(sz, dw_decoder_buffered(d), 0));
    dw_decoder_free(d);
    dw_marshaller_free(m);
}

Test(decoder, payload_level_bytes)
{
    for (int k = 0; k < NKINDS - 1; k++) {
        dw_marshaller *m = make(k);
        dw_decoder *d = dw_decoder_new(m);
        dw_buf wire = DW_BUF_INIT;
        cr_assert(eq(int, dw_marshall(m, S("ab"), &wire, NULL), DW_OK));
        cr_assert(eq(int, dw_marshall(m, S("cd"), &wire, NULL), DW_OK));
        size_t off = 0, used;
        for (int f = 0; f < 2; f++) {
            void *v = NULL;
            int rc = DW_MORE;
            for (; rc == DW_MORE && off < wire.len; off += used) /* byte by byte */
                rc = dw_decoder_feed_payload(d, wire.data + off, 1, &used, &v, NULL);
            cr_assert(eq(int, rc, DW_OK), "%s", dw_marshaller_name(m));
            cr_expect(buf_is(v, f ? "cd" : "ab", 2), "%s", dw_marshaller_name(m));
            dw_payload_free(m, v);
        }
        cr_expect(eq(int, dw_decoder_finish(d, &wire, NULL), DW_EOF));
        dw_buf_free(&wire);
        dw_decoder_free(d);
        dw_marshaller_free(m);
    }
}
