/* Framing through the blocking dw_unmarshall: every vector at every split
 * (whole, one byte at a time, every pair of cut points over pipelined
 * frames; the vectors live in tests/support/vectors.c, shared with
 * test_decoder.c), the Python original's bugs, bad input for every
 * marshaller, marshall-side refusals and the payload-level API. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "vectors.h"

typedef dw_test_bytes bytes;
#define B(lit) ((bytes)DW_TB(lit))
#define S(lit) (const uint8_t *)(lit), sizeof(lit) - 1
#define N(arr) (sizeof(arr) / sizeof(arr)[0])

/* ---- the framing vectors (tests/support/vectors.c) at every split -------- */

DW_TEST_VECTOR_SUITES(dw_test_run)

Test(all, clean_vectors_marshall_back_to_their_stream)
{
    /* Marshalling the payloads a clean stream gives yields exactly that
     * stream: the framings read and write the same bytes. */
    for (size_t i = 0; i < dw_test_nvectors; i++) {
        const dw_test_vector *v = &dw_test_vectors[i];
        if (v->end != DW_EOF)
            continue;
        dw_marshaller *m = dw_test_vector_marshaller(v);
        dw_buf out = DW_BUF_INIT;
        dw_error err;
        for (size_t k = 0; k < v->nwant; k++)
            cr_expect(eq(int,
                         dw_marshall(m, (const uint8_t *)v->want[k].p, v->want[k].n, &out, &err),
                         DW_OK),
                      "%s: payload %zu: %s", v->name, k, err.message);
        cr_expect(out.len == v->in.n && (out.len == 0 || memcmp(out.data, v->in.p, out.len) == 0),
                  "%s: marshalled \"%s\"", v->name, dw_test_esc(out.data, out.len));
        dw_buf_free(&out);
        dw_marshaller_free(m);
    }
}

/* ---- the Python original's framing bugs --------------------------------- */

Test(regression, sentinel_split_across_chunks)
{
    dw_marshaller *m = dw_sentinel_marshaller_new("\r\n", 2);
    size_t cuts[] = {4};
    dw_test_outcome o;
    dw_test_run(m, S("abc\r\n"), cuts, 1, &o);
    cr_assert(eq(sz, o.count, 1), "\"abc\\r\" + \"\\n\" is one frame");
    cr_assert(eq(sz, o.payloads[0].len, 3));
    cr_assert(eq(int, memcmp(o.payloads[0].data, "abc", 3), 0));
    cr_assert(eq(int, o.end, DW_EOF));
    dw_test_outcome_free(&o);
    dw_marshaller_free(m);
}

Test(regression, two_lines_in_one_chunk)
{
    dw_marshaller *m = dw_sentinel_marshaller_new("\r\n", 2);
    dw_test_outcome o;
    dw_test_run(m, S("one\r\ntwo\r\n"), NULL, 0, &o);
    cr_assert(eq(sz, o.count, 2), "one chunk \"one\\r\\ntwo\\r\\n\" holds two frames");
    cr_assert(eq(int, memcmp(o.payloads[0].data, "one", 3), 0));
    cr_assert(eq(int, memcmp(o.payloads[1].data, "two", 3), 0));
    dw_test_outcome_free(&o);
    dw_marshaller_free(m);
}

/* ---- sentinel ------------------------------------------------------------ */

Test(sentinel, too_big_does_not_read_on)
{
    /* A huge stream without a terminator: the unmarshaller stops after the
     * maximum frame, whatever the chunking. */
    size_t n = 1 << 20;
    uint8_t *d = malloc(n);
    memset(d, 'x', n);
    dw_marshaller *m = dw_sentinel_marshaller_new("\n", 1);
    dw_marshaller_set_max_frame(m, 100);
    size_t chunks[] = {0, 1, 7, 4096};
    for (size_t c = 0; c < N(chunks); c++) {
        dw_test_iter it;
        dw_test_iter_init(&it, d, n, NULL, 0);
        it.inner.chunk = chunks[c];
        dw_buf p = DW_BUF_INIT;
        dw_error err;
        int rc = dw_unmarshall(m, &it.base, &p, &err);
        cr_expect(eq(int, rc, DW_ETOOBIG), "chunk %zu: %s", chunks[c], dw_err_name(rc));
        cr_expect(eq(sz, dw_test_iter_offset(&it), 100), "chunk %zu: consumed exactly the maximum",
                  chunks[c]);
        cr_expect(eq(sz, p.len, 100), "chunk %zu: what was read is kept", chunks[c]);
        if (chunks[c])
            cr_expect(le(sz, it.inner.pos, 100 + chunks[c]),
                      "chunk %zu: pulled no chunk beyond the one that overflowed", chunks[c]);
        dw_buf_free(&p);
        dw_test_iter_free(&it);
    }
    dw_marshaller_free(m);
    free(d);
}

Test(sentinel, every_byte_value_is_payload)
{
    /* Sentinel framing has no malformed frame: any byte but the sentinel is
     * payload. */
    uint8_t all[256 + 1];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)(i == '\n' ? 0xff : i);
    all[256] = '\n';
    dw_marshaller *m = dw_sentinel_marshaller_new("\n", 1);
    dw_test_outcome o;
    dw_test_run(m, all, sizeof all, NULL, 0, &o);
    cr_assert(eq(sz, o.count, 1));
    cr_assert(eq(sz, o.payloads[0].len, 256));
    cr_assert(eq(int, memcmp(o.payloads[0].data, all, 256), 0));
    dw_test_outcome_free(&o);
    dw_marshaller_free(m);
}

Test(sentinel, constructor_refuses_empty)
{
    cr_expect(dw_sentinel_marshaller_new("", 0) == NULL);
    cr_expect(dw_sentinel_marshaller_new(NULL, 1) == NULL);
    dw_marshaller_free(NULL);
}

Test(sentinel, marshall_refuses_sentinel)
{
    dw_marshaller *m = dw_sentinel_marshaller_new("aa", 2);
    dw_buf out = DW_BUF_INIT;
    dw_error err;
    dw_buf_append_str(&out, "keep");
    cr_expect(eq(int, dw_marshall(m, S("xaay"), &out, &err), DW_EINVAL));
    cr_expect(strstr(err.message, "sentinel") != NULL, "message says why: %s", err.message);
    cr_expect(eq(int, dw_marshall(m, S("xa"), &out, &err), DW_EINVAL),
              "\"xa\" + \"aa\" would read back as \"x\"");
    cr_expect(eq(sz, out.len, 4), "out is unchanged on refusal");
    cr_expect(eq(int, dw_marshall(m, S("xy"), &out, &err), DW_OK));
    cr_expect(eq(sz, out.len, 8));
    cr_expect(eq(int, memcmp(out.data, "keepxyaa", 8), 0));
    cr_expect(eq(int, dw_marshall(m, NULL, 0, &out, &err), DW_OK), "empty payload");
    cr_expect(eq(sz, out.len, 10));
    dw_buf_free(&out);
    dw_marshaller_free(m);
}

/* ---- fixed --------------------------------------------------------------- */

Test(fixed, marshall_refuses_other_lengths)
{
    dw_marshaller *m = dw_fixed_marshaller_new(4);
    dw_buf out = DW_BUF_INIT;
    dw_error err;
    cr_expect(eq(int, dw_marshall(m, S("abc"), &out, &err), DW_EINVAL));
    cr_expect(strstr(err.message, "expected 4") != NULL, "%s", err.message);
    cr_expect(eq(int, dw_marshall(m, S("abcde"), &out, &err), DW_EINVAL));
    cr_expect(eq(int, dw_marshall(m, NULL, 0, &out, &err), DW_EINVAL));
    cr_expect(eq(sz, out.len, 0));
    cr_expect(eq(int, dw_marshall(m, S("\0\0\0\0"), &out, &err), DW_OK));
    cr_expect(eq(sz, out.len, 4));
    dw_buf_free(&out);
    dw_marshaller_free(m);
    cr_expect(dw_fixed_marshaller_new(0) == NULL);
}

/* ---- length-prefixed ----------------------------------------------------- */

Test(length_prefixed, multi_byte_lengths)
{
    /* 258 = 0x0102: both header bytes matter, in the right order. */
    uint8_t body[258];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (uint8_t)(i * 7);
    dw_endian ends[] = {DW_BIG_ENDIAN, DW_LITTLE_ENDIAN};
    unsigned sizes[] = {2, 4};
    for (size_t e = 0; e < 2; e++) {
        for (size_t s = 0; s < 2; s++) {
            dw_marshaller *m = dw_length_prefixed_marshaller_new(sizes[s], ends[e]);
            dw_buf in = DW_BUF_INIT;
            cr_assert(eq(int, dw_marshall(m, body, sizeof body, &in, NULL), DW_OK));
            cr_assert(eq(int, dw_marshall(m, S("z"), &in, NULL), DW_OK));
            const uint8_t *h = in.data;
            if (ends[e] == DW_BIG_ENDIAN)
                cr_expect(h[sizes[s] - 2] == 1 && h[sizes[s] - 1] == 2, "big endian 0x0102");
            else
                cr_expect(h[0] == 2 && h[1] == 1, "little endian 0x0102");
            dw_test_outcome whole;
            size_t bad = dw_test_every_split(m, in.data, in.len, &whole);
            cr_expect(eq(sz, bad, 0));
            cr_expect(eq(sz, whole.count, 2));
            cr_expect(eq(sz, whole.payloads[0].len, sizeof body));
            cr_expect(eq(int, memcmp(whole.payloads[0].data, body, sizeof body), 0));
            cr_expect(eq(int, whole.end, DW_EOF));
            dw_test_outcome_free(&whole);
            dw_buf_free(&in);
            dw_marshaller_free(m);
        }
    }
}

Test(length_prefixed, marshall_refuses_long_payloads)
{
    uint8_t *big = calloc(1, 65536);
    dw_buf out = DW_BUF_INIT;
    dw_error err;
    dw_marshaller *m1 = dw_length_prefixed_marshaller_new(1, DW_BIG_ENDIAN);
    dw_marshaller *m2 = dw_length_prefixed_marshaller_new(2, DW_LITTLE_ENDIAN);
    cr_expect(eq(int, dw_marshall(m1, big, 255, &out, &err), DW_OK));
    cr_expect(eq(int, dw_marshall(m1, big, 256, &out, &err), DW_ETOOBIG));
    cr_expect(strstr(err.message, "header") != NULL, "%s", err.message);
    cr_expect(eq(int, dw_marshall(m2, big, 65535, &out, &err), DW_OK));
    cr_expect(eq(int, dw_marshall(m2, big, 65536, &out, &err), DW_ETOOBIG));
    cr_expect(eq(sz, out.len, 256 + 65537), "refusals leave out unchanged");
    cr_expect(eq(int, dw_marshall(m2, NULL, 0, &out, &err), DW_OK));
    dw_buf_free(&out);
    dw_marshaller_free(m1);
    dw_marshaller_free(m2);
    free(big);
    cr_expect(dw_length_prefixed_marshaller_new(3, DW_BIG_ENDIAN) == NULL);
    cr_expect(dw_length_prefixed_marshaller_new(0, DW_BIG_ENDIAN) == NULL);
    cr_expect(dw_length_prefixed_marshaller_new(2, (dw_endian)7) == NULL);
}

/* ---- SCPI ---------------------------------------------------------------- */

Test(scpi, bad_block_header_message)
{
    dw_error err;
    dw_test_iter it;
    dw_test_iter_init(&it, S("#3x1\n"), NULL, 0);
    dw_buf p = DW_BUF_INIT;
    dw_marshaller *m = dw_scpi_marshaller_new("\n", 1);
    cr_expect(eq(int, dw_unmarshall(m, &it.base, &p, &err), DW_EPROTO));
    cr_expect(strstr(err.message, "block header") != NULL && strstr(err.message, "0x78") != NULL,
              "the message says what was wrong: %s", err.message);
    dw_buf_free(&p);
    dw_test_iter_free(&it);
    dw_marshaller_free(m);
}

Test(scpi, marshall_refusals)
{
    dw_marshaller *m = dw_scpi_marshaller_new("\n", 1);
    dw_buf out = DW_BUF_INIT;
    dw_error err;
    cr_expect(eq(int, dw_marshall(m, S("A\nB"), &out, &err), DW_EINVAL), "terminator in text");
    cr_expect(strstr(err.message, "terminator") != NULL, "%s", err.message);
    cr_expect(eq(int, dw_marshall(m, S("#15ab"), &out, &err), DW_EINVAL), "incomplete block");
    cr_expect(eq(int, dw_marshall(m, S("#2x"), &out, &err), DW_EINVAL), "bad block header");
    cr_expect(eq(int, dw_marshall(m, S("#2"), &out, &err), DW_EINVAL), "cut block header");
    cr_expect(eq(sz, out.len, 0));
    cr_expect(eq(int, dw_marshall(m, S("#14a\nb\n"), &out, &err), DW_OK), "%s", err.message);
    cr_expect(eq(int, dw_marshall(m, S("\"#\""), &out, &err), DW_OK), "%s", err.message);
    cr_expect(eq(int, dw_marshall(m, NULL, 0, &out, &err), DW_OK));
    cr_expect(eq(sz, out.len, 8 + 4 + 1));
    dw_buf_free(&out);
    dw_marshaller_free(m);
    m = dw_scpi_marshaller_new("\n\n", 2);
    cr_expect(eq(int, dw_marshall(m, S("x\n"), &out, &err), DW_EINVAL),
              "\"x\\n\" + \"\\n\\n\" would read back as \"x\"");
    cr_expect(eq(int, dw_marshall(m, S("x\r"), &out, &err), DW_OK));
    dw_buf_free(&out);
    dw_marshaller_free(m);
}

Test(scpi, block_parse_and_append)
{
    const uint8_t *data;
    size_t len;
    cr_expect(eq(int, dw_scpi_block_parse(S("#15hello"), &data, &len), DW_OK));
    cr_expect(eq(sz, len, 5));
    cr_expect(eq(int, memcmp(data, "hello", 5), 0));
    cr_expect(eq(int, dw_scpi_block_parse(S("CURV #13\0\xff\n,1"), &data, &len), DW_OK));
    cr_expect(eq(sz, len, 3));
    cr_expect(eq(int, memcmp(data, "\0\xff\n", 3), 0));
    cr_expect(eq(int, dw_scpi_block_parse(S("#0raw\ntail"), &data, &len), DW_OK));
    cr_expect(eq(sz, len, 8), "an indefinite block runs to the end");
    cr_expect(eq(int, dw_scpi_block_parse(S("#10"), &data, &len), DW_OK));
    cr_expect(eq(sz, len, 0));
    cr_expect(eq(int, dw_scpi_block_parse(S("\"#15hello\" #H1F 1.0"), &data, &len), DW_ENOENT),
              "'#' in a string or a hex number is not a block");
    cr_expect(eq(int, dw_scpi_block_parse(NULL, 0, &data, &len), DW_ENOENT));
    cr_expect(eq(int, dw_scpi_block_parse(S("#"), &data, &len), DW_ENOENT));
    cr_expect(eq(int, dw_scpi_block_parse(S("#16hello"), &data, &len), DW_EPROTO),
              "longer than the payload");
    cr_expect(eq(int, dw_scpi_block_parse(S("#2x5hello"), &data, &len), DW_EPROTO));
    cr_expect(eq(int, dw_scpi_block_parse(S("#9123"), &data, &len), DW_EPROTO));

    dw_buf out = DW_BUF_INIT;
    cr_assert(eq(int, dw_scpi_block_append(&out, (const uint8_t *)"ab\0", 3), DW_OK));
    cr_expect(out.len == 6 && memcmp(out.data, "#13ab\0", 6) == 0, "%s",
              dw_test_esc(out.data, out.len));
    dw_buf_clear(&out);
    cr_assert(eq(int, dw_scpi_block_append(&out, NULL, 0), DW_OK));
    cr_expect(out.len == 3 && memcmp(out.data, "#10", 3) == 0);
    dw_buf_clear(&out);
    uint8_t big[1234];
    memset(big, '\n', sizeof big);
    cr_assert(eq(int, dw_scpi_block_append(&out, big, sizeof big), DW_OK));
    cr_expect(eq(int, memcmp(out.data, "#41234", 6), 0));
    cr_expect(eq(int, dw_scpi_block_parse(out.data, out.len, &data, &len), DW_OK));
    cr_expect(eq(sz, len, sizeof big));
    cr_expect(eq(ptr, (void *)data, (void *)(out.data + 6)));
    /* A block holding the terminator survives a marshall/unmarshall trip. */
    dw_marshaller *m = dw_scpi_marshaller_new("\n", 1);
    dw_buf frame = DW_BUF_INIT;
    cr_assert(eq(int, dw_marshall(m, out.data, out.len, &frame, NULL), DW_OK));
    dw_test_iter it;
    dw_test_iter_init(&it, frame.data, frame.len, NULL, 0);
    it.inner.chunk = 100;
    dw_buf back = DW_BUF_INIT;
    cr_expect(eq(int, dw_unmarshall(m, &it.base, &back, NULL), DW_OK));
    cr_expect(back.len == out.len && memcmp(back.data, out.data, out.len) == 0);
    dw_buf_free(&back);
    dw_buf_free(&frame);
    dw_test_iter_free(&it);
    dw_marshaller_free(m);
    dw_buf_free(&out);
}

/* ---- JSON lines ---------------------------------------------------------- */

Test(json_lines, bad_input_message)
{
    dw_error err;
    dw_test_iter it;
    dw_test_iter_init(&it, S("{\"a\":}\n"), NULL, 0);
    dw_buf p = DW_BUF_INIT;
    dw_marshaller *m = dw_json_marshaller_new();
    cr_expect(eq(int, dw_unmarshall(m, &it.base, &p, &err), DW_EPROTO));
    cr_expect(strstr(err.message, "invalid JSON at byte 5") != NULL, "%s", err.message);
    dw_buf_free(&p);
    dw_test_iter_free(&it);
    dw_marshaller_free(m);
}

Test(json_lines, marshall_refusals)
{
    dw_marshaller *m = dw_json_marshaller_new();
    dw_buf out = DW_BUF_INIT;
    dw_error err;
    cr_expect(eq(int, dw_marshall(m, S("{\"a\":\n1}"), &out, &err), DW_EINVAL));
    cr_expect(strstr(err.message, "newline") != NULL, "%s", err.message);
    cr_expect(eq(int, dw_marshall(m, S("{oops"), &out, &err), DW_EINVAL));
    cr_expect(eq(int, dw_marshall(m, S("1 2"), &out, &err), DW_EINVAL));
    cr_expect(eq(int, dw_marshall(m, S("\"\0\""), &out, &err), DW_EINVAL));
    cr_expect(eq(int, dw_marshall(m, NULL, 0, &out, &err), DW_EINVAL));
    cr_expect(eq(sz, out.len, 0));
    cr_expect(eq(int, dw_marshall(m, S("[1, 2]"), &out, &err), DW_OK));
    cr_expect(out.len == 7 && memcmp(out.data, "[1, 2]\n", 7) == 0);
    dw_buf_free(&out);
    dw_marshaller_free(m);
}

Test(json_lines, payload_api_cjson)
{
    dw_marshaller *m = dw_json_marshaller_new();
    cJSON *v = cJSON_CreateObject();
    cJSON_AddStringToObject(v, "cmd", "line1\nline2");
    cJSON_AddNumberToObject(v, "n", 3);
    dw_buf wire = DW_BUF_INIT;
    dw_error err;
    cr_assert(eq(int, dw_marshall_payload(m, v, &wire, &err), DW_OK), "%s", err.message);
    cr_assert(eq(int, dw_marshall_payload(m, v, &wire, &err), DW_OK));
    cr_expect(eq(int, dw_marshall_payload(m, NULL, &wire, &err), DW_EINVAL));
    cr_expect(eq(ptr, memchr(wire.data, '\n', wire.len), wire.data + wire.len / 2 - 1),
              "a string's newline is escaped: one line per value");

    dw_test_iter it;
    dw_test_iter_init(&it, wire.data, wire.len, NULL, 0);
    it.inner.chunk = 3;
    for (int k = 0; k < 2; k++) {
        void *got = NULL;
        cr_assert(eq(int, dw_unmarshall_payload(m, &it.base, &got, &err), DW_OK), "%s",
                  err.message);
        cr_expect(cJSON_Compare(got, v, 1), "value %d round-trips", k);
        dw_payload_free(m, got);
    }
    void *none = (void *)1;
    cr_expect(eq(int, dw_unmarshall_payload(m, &it.base, &none, &err), DW_EOF));
    cr_expect(eq(ptr, none, NULL));
    dw_test_iter_free(&it);

    dw_test_iter_init(&it, S("{bad}\n"), NULL, 0);
    none = (void *)1;
    cr_expect(eq(int, dw_unmarshall_payload(m, &it.base, &none, &err), DW_EPROTO));
    cr_expect(eq(ptr, none, NULL));
    cr_expect(strstr(err.message, "json-lines") != NULL, "%s", err.message);
    dw_test_iter_free(&it);
    dw_payload_free(m, NULL);
    cJSON_Delete(v);
    dw_buf_free(&wire);
    dw_marshaller_free(m);
}

/* ---- payload-level API for byte framings, round trips --------------------- */

static dw_marshaller *make(int k)
{
    switch (k) {
    case 0:
        return dw_sentinel_marshaller_new("\r\n", 2);
    case 1:
        return dw_fixed_marshaller_new(5);
    case 2:
        return dw_length_prefixed_marshaller_new(2, DW_BIG_ENDIAN);
    case 3:
        return dw_length_prefixed_marshaller_new(4, DW_LITTLE_ENDIAN);
    case 4:
        return dw_scpi_marshaller_new("\n", 1);
    default:
        return dw_json_marshaller_new();
    }
}

Test(payload, byte_framings_round_trip)
{
    const char *names[] = {"sentinel", "fixed", "length-prefixed", "length-prefixed", "scpi"};
    for (int k = 0; k < 5; k++) {
        dw_marshaller *m = make(k);
        cr_expect(eq(str, (char *)dw_marshaller_name(m), (char *)names[k]));
        cr_expect(eq(sz, dw_marshaller_max_frame(m), DW_DEFAULT_MAX_FRAME));
        dw_buf in = DW_BUF_INIT, wire = DW_BUF_INIT;
        /* "#9" would start a block header in SCPI text (refused, see
         * scpi.marshall_refusals); "#H" does not. */
        dw_buf_append(&in, k == 4 ? "\0\xff\x01#H" : "\0\xff\x01#9", 5);
        dw_error err;
        for (int f = 0; f < 2; f++)
            cr_assert(eq(int, dw_marshall_payload(m, &in, &wire, &err), DW_OK), "%s: %s", names[k],
                      err.message);
        dw_test_iter it;
        dw_test_iter_init(&it, wire.data, wire.len, NULL, 0);
        it.inner.chunk = 1;
        for (int f = 0; f < 2; f++) {
            void *got = NULL;
            cr_assert(eq(int, dw_unmarshall_payload(m, &it.base, &got, &err), DW_OK), "%s: %s",
                      names[k], err.message);
            const dw_buf *b = got;
            cr_expect(b->len == in.len && memcmp(b->data, in.data, in.len) == 0, "%s: %s", names[k],
                      dw_test_esc(b->data, b->len));
            dw_payload_free(m, got);
        }
        void *got = (void *)1;
        cr_expect(eq(int, dw_unmarshall_payload(m, &it.base, &got, &err), DW_EOF));
        cr_expect(eq(ptr, got, NULL));
        cr_expect(eq(int, dw_marshall_payload(m, NULL, &wire, &err), DW_EINVAL));
        dw_test_iter_free(&it);
        dw_buf_free(&in);
        dw_buf_free(&wire);
        dw_marshaller_free(m);
    }
}

Test(payload, truncated_payload_is_null)
{
    dw_marshaller *m = dw_length_prefixed_marshaller_new(1, DW_BIG_ENDIAN);
    dw_test_iter it;
    dw_test_iter_init(&it, S("\5ab"), NULL, 0);
    void *got = (void *)1;
    dw_error err;
    cr_expect(eq(int, dw_unmarshall_payload(m, &it.base, &got, &err), DW_ETRUNCATED));
    cr_expect(eq(ptr, got, NULL));
    dw_test_iter_free(&it);
    dw_marshaller_free(m);
}

/* ---- the maximum frame, at its boundary ---------------------------------- */

/* The maximum counts the whole frame: payload, header and terminator. Each
 * framing gets frames of max - 1, max and max + 1 bytes, and a frame that
 * stops (end of stream) one byte short of the maximum and at it: a frame of
 * exactly the maximum is accepted; one byte more is refused with DW_ETOOBIG as
 * soon as that is known (at the header, or once the maximum is reached without
 * the end), never a byte later. */

/* One stream through dw_unmarshall at every split (see vectors.h). */
static void expect_stream_at(const dw_marshaller *m, bytes in, const bytes *want, size_t nwant,
                             int end, bytes rest, size_t end_offset)
{
    dw_test_vector v = {.name = dw_marshaller_name(m),
                        .in = in,
                        .nwant = nwant,
                        .end = end,
                        .rest = rest,
                        .end_offset = end_offset};
    cr_assert(le(sz, nwant, DW_TEST_MAX_WANT));
    for (size_t i = 0; i < nwant; i++)
        v.want[i] = want[i];
    dw_test_expect_vector_with(m, &v, dw_test_run);
}

#define NONE B("")

/* A scan that stops advancing at the maximum would loop for ever: fail it. */
TestSuite(max_frame, .timeout = 120);

typedef struct limit_case {
    bytes in;
    bytes want[2];
    size_t nwant;
    int end;
    bytes rest;
    size_t end_offset;
} limit_case;

static void expect_limits(dw_marshaller *m, size_t max, const limit_case *v, size_t n)
{
    dw_marshaller_set_max_frame(m, max);
    for (size_t i = 0; i < n; i++)
        expect_stream_at(m, v[i].in, v[i].want, v[i].nwant, v[i].end, v[i].rest, v[i].end_offset);
    dw_marshaller_free(m);
}

Test(max_frame, sentinel)
{
    /* max 6 with "\n": "abcde\n" is the largest frame. */
    const limit_case lf[] = {
        {B("abcd\nabcde\nabcdef\n"), {B("abcd"), B("abcde")}, 2, DW_ETOOBIG, B("abcdef"), 17},
        {B("abcd\nabcde"), {B("abcd")}, 1, DW_ETRUNCATED, B("abcde"), 10},
        {B("abcd\nabcdef"), {B("abcd")}, 1, DW_ETOOBIG, B("abcdef"), 11},
    };
    expect_limits(dw_sentinel_marshaller_new("\n", 1), 6, lf, N(lf));
    /* "\r\n": cut between '\r' and '\n', the frame of max ends in the next
     * chunk's first byte. */
    const limit_case crlf[] = {
        {B("abc\r\nabcd\r\nabcde\r\n"), {B("abc"), B("abcd")}, 2, DW_ETOOBIG, B("abcde\r"), 17},
        {B("abcd\r"), {B("")}, 0, DW_ETRUNCATED, B("abcd\r"), 5},
        {B("abcde\r"), {B("")}, 0, DW_ETOOBIG, B("abcde\r"), 6},
    };
    expect_limits(dw_sentinel_marshaller_new("\r\n", 2), 6, crlf, N(crlf));
    /* A long sentinel (searched another way): max 20 = 3 + 17. */
#define END17 "<end-of-record>\r\n"
    const limit_case long_s[] = {
        {B("ab" END17 "abc" END17 "abcd" END17),
         {B("ab"), B("abc")},
         2,
         DW_ETOOBIG,
         B("abcd<end-of-record>\r"),
         59},
        {B("abc<end-of-record>\r"), {B("")}, 0, DW_ETRUNCATED, B("abc<end-of-record>\r"), 19},
        {B("abcd<end-of-record>\r"), {B("")}, 0, DW_ETOOBIG, B("abcd<end-of-record>\r"), 20},
    };
#undef END17
    expect_limits(dw_sentinel_marshaller_new("<end-of-record>\r\n", 17), 20, long_s, N(long_s));
}

Test(max_frame, fixed)
{
    const limit_case below[] = {{B("abcdeABCDE"), {B("abcde"), B("ABCDE")}, 2, DW_EOF, NONE, 10}};
    expect_limits(dw_fixed_marshaller_new(5), 6, below, N(below));
    const limit_case at[] = {
        {B("abcdefABCDEF"), {B("abcdef"), B("ABCDEF")}, 2, DW_EOF, NONE, 12},
        {B("abcdefABC"), {B("abcdef")}, 1, DW_ETRUNCATED, B("ABC"), 9},
    };
    expect_limits(dw_fixed_marshaller_new(6), 6, at, N(at));
    const limit_case above[] = {{B("abcdefg"), {B("")}, 0, DW_ETOOBIG, NONE, 0}};
    expect_limits(dw_fixed_marshaller_new(7), 6, above, N(above));
}

/* Frames of payloads p[0..n) back to back, framed by m (any maximum). */
static size_t frame_into(const dw_marshaller *m, dw_buf *wire, const char *p, size_t n)
{
    size_t before = wire->len;
    cr_assert(eq(int, dw_marshall(m, (const uint8_t *)p, n, wire, NULL), DW_OK));
    return wire->len - before;
}

Test(max_frame, length_prefixed)
{
    /* Every header size and byte order, max 6: payloads of 6 - header - 1,
     * 6 - header and 6 - header + 1 bytes. */
    static const unsigned sizes[] = {1, 2, 4};
    for (size_t s = 0; s < N(sizes); s++) {
        for (int e = 0; e < 2; e++) {
            unsigned hs = sizes[s];
            dw_marshaller *m = dw_length_prefixed_marshaller_new(hs, (dw_endian)e);
            dw_buf wire = DW_BUF_INIT;
            size_t p = 6 - hs;
            size_t f1 = frame_into(m, &wire, "abcdef", p - 1);
            size_t f2 = frame_into(m, &wire, "abcdef", p);
            frame_into(m, &wire, "abcdef", p + 1);
            limit_case v = {{(const char *)wire.data, wire.len},
                            {{"abcdef", p - 1}, {"abcdef", p}},
                            2,
                            DW_ETOOBIG,
                            {(const char *)wire.data + f1 + f2, hs},
                            f1 + f2 + hs};
            expect_limits(m, 6, &v, 1);
            dw_buf_free(&wire);
        }
    }
}

Test(max_frame, length_prefixed_header_only)
{
    /* A maximum of just the header allows the empty payload only; one below
     * it allows nothing. */
    static const unsigned sizes[] = {1, 2, 4};
    for (size_t s = 0; s < N(sizes); s++) {
        unsigned hs = sizes[s];
        dw_marshaller *m = dw_length_prefixed_marshaller_new(hs, DW_BIG_ENDIAN);
        dw_buf wire = DW_BUF_INIT;
        frame_into(m, &wire, "", 0);
        frame_into(m, &wire, "a", 1);
        limit_case at = {{(const char *)wire.data, wire.len}, {B("")}, 1, DW_ETOOBIG,
                         {(const char *)wire.data + hs, hs},  2 * hs};
        expect_limits(m, hs, &at, 1);
        m = dw_length_prefixed_marshaller_new(hs, DW_BIG_ENDIAN);
        limit_case below = {{(const char *)wire.data, hs}, {B("")}, 0, DW_ETOOBIG,
                            {(const char *)wire.data, hs}, hs};
        expect_limits(m, hs - 1, &below, 1);
        dw_buf_free(&wire);
    }
}

Test(max_frame, scpi_text)
{
    /* max 8 with "\n": "1234567\n" is the largest frame. */
    const limit_case lf[] = {
        {B("123456\n1234567\n12345678\n"),
         {B("123456"), B("1234567")},
         2,
         DW_ETOOBIG,
         B("12345678"),
         23},
        {B("1234567"), {B("")}, 0, DW_ETRUNCATED, B("1234567"), 7},
        {B("12345678"), {B("")}, 0, DW_ETOOBIG, B("12345678"), 8},
        /* An indefinite block ends at the terminator like text. */
        {B("#0abcde\n#0abcdef\n"), {B("#0abcde")}, 1, DW_ETOOBIG, B("#0abcdef"), 16},
    };
    expect_limits(dw_scpi_marshaller_new("\n", 1), 8, lf, N(lf));
    const limit_case crlf[] = {
        {B("123456\r\n1234567\r\n"), {B("123456")}, 1, DW_ETOOBIG, B("1234567\r"), 16},
        {B("123456\r"), {B("")}, 0, DW_ETRUNCATED, B("123456\r"), 7},
    };
    expect_limits(dw_scpi_marshaller_new("\r\n", 2), 8, crlf, N(crlf));
}

Test(max_frame, scpi_block)
{
    /* Definite blocks holding the terminator, max 8: the block and the
     * terminator must fit, checked at the block's header. */
    const limit_case lf[] = {
        {B("#13a\nb\n#14a\nbc\n#15a\nbcd\n"),
         {B("#13a\nb"), B("#14a\nbc")},
         2,
         DW_ETOOBIG,
         B("#15"),
         18},
        /* Text after a block that fits: the limit still counts it. */
        {B("#12ab;x\n#12ab;xy\n"), {B("#12ab;x")}, 1, DW_ETOOBIG, B("#12ab;xy"), 16},
        {B("#14a\nbc"), {B("")}, 0, DW_ETRUNCATED, B("#14a\nbc"), 7},
    };
    expect_limits(dw_scpi_marshaller_new("\n", 1), 8, lf, N(lf));
    const limit_case crlf[] = {
        {B("#13a\r\n\r\n#14a\r\nb\r\n"), {B("#13a\r\n")}, 1, DW_ETOOBIG, B("#14"), 11},
    };
    expect_limits(dw_scpi_marshaller_new("\r\n", 2), 8, crlf, N(crlf));
}

Test(max_frame, json_lines)
{
    /* max 6: "12345\n" is the largest line, valid or not. */
    const limit_case v[] = {
        {B("1234\n12345\n123456\n"), {B("1234"), B("12345")}, 2, DW_ETOOBIG, B("123456"), 17},
        {B("12345"), {B("")}, 0, DW_ETRUNCATED, B("12345"), 5},
        {B("123456"), {B("")}, 0, DW_ETOOBIG, B("123456"), 6},
        {B("{oops\n"), {B("")}, 0, DW_EPROTO, B("{oops"), 6},
        {B("{oopss\n"), {B("")}, 0, DW_ETOOBIG, B("{oopss"), 6},
    };
    expect_limits(dw_json_marshaller_new(), 6, v, N(v));
}

/* ---- behaviour every framing shares -------------------------------------- */

Test(all, transport_error_mid_frame)
{
    /* The iterator fails inside a frame: the error is passed on with what
     * was received of the frame, and a frame before it is intact. */
    struct {
        int k;
        bytes in;
        bytes want;
        bytes partial;
    } v[] = {
        {0, B("ab\r\ncd\r"), B("ab"), B("cd\r")},   {1, B("abcdeab"), B("abcde"), B("ab")},
        {2, B("\0\1x\0\5ab"), B("x"), B("\0\5ab")}, {4, B("1\n#15a"), B("1"), B("#15a")},
        {5, B("1\n[1"), B("1"), B("[1")},
    };
    for (size_t i = 0; i < N(v); i++) {
        dw_marshaller *m = make(v[i].k);
        dw_test_iter it;
        dw_test_iter_init(&it, (const uint8_t *)v[i].in.p, v[i].in.n, NULL, 0);
        dw_test_iter_set_end(&it, DW_ETIMEDOUT);
        dw_buf p = DW_BUF_INIT;
        dw_error err;
        cr_assert(eq(int, dw_unmarshall(m, &it.base, &p, &err), DW_OK));
        cr_expect(p.len == v[i].want.n && memcmp(p.data, v[i].want.p, p.len) == 0);
        cr_expect(eq(int, dw_unmarshall(m, &it.base, &p, &err), DW_ETIMEDOUT), "%s",
                  dw_marshaller_name(m));
        cr_expect(strstr(err.message, "timed out") != NULL, "%s", err.message);
        cr_expect(p.len == v[i].partial.n && memcmp(p.data, v[i].partial.p, p.len) == 0,
                  "%s: partial \"%s\"", dw_marshaller_name(m), dw_test_esc(p.data, p.len));
        dw_buf_free(&p);
        dw_test_iter_free(&it);
        dw_marshaller_free(m);
    }
}

Test(all, many_small_frames_in_one_chunk_pull_once)
{
    /* Pipelining: 1000 frames delivered as one chunk are all unmarshalled
     * from that one chunk (the rest is unread each time, never re-pulled or
     * re-copied), and end exactly at the end. */
    for (int k = 0; k < 6; k++) {
        dw_marshaller *m = make(k);
        dw_buf wire = DW_BUF_INIT;
        for (int i = 0; i < 1000; i++) {
            char p[16]; /* a JSON string, 5 bytes, valid in every framing */
            snprintf(p, sizeof p, "\"%03d\"", i);
            cr_assert(eq(int, dw_marshall(m, (const uint8_t *)p, 5, &wire, NULL), DW_OK));
        }
        dw_test_iter it;
        dw_test_iter_init(&it, wire.data, wire.len, NULL, 0);
        dw_buf p = DW_BUF_INIT;
        int rc, count = 0;
        while ((rc = dw_unmarshall(m, &it.base, &p, NULL)) == DW_OK) {
            char want[16];
            snprintf(want, sizeof want, "\"%03d\"", count++);
            cr_assert(p.len == 5 && memcmp(p.data, want, 5) == 0, "%s frame %d",
                      dw_marshaller_name(m), count - 1);
        }
        cr_expect(eq(int, rc, DW_EOF));
        cr_expect(eq(int, count, 1000), "%s", dw_marshaller_name(m));
        cr_expect(eq(sz, it.pulls, 1), "%s: one chunk pulled once", dw_marshaller_name(m));
        dw_buf_free(&p);
        dw_buf_free(&wire);
        dw_test_iter_free(&it);
        dw_marshaller_free(m);
    }
}

Test(all, payload_buffer_is_replaced)
{
    dw_marshaller *m = dw_sentinel_marshaller_new("\n", 1);
    dw_test_iter it;
    dw_test_iter_init(&it, S("new\n"), NULL, 0);
    dw_buf p = DW_BUF_INIT;
    dw_buf_append_str(&p, "old contents");
    cr_expect(eq(int, dw_unmarshall(m, &it.base, &p, NULL), DW_OK));
    cr_expect(p.len == 3 && memcmp(p.data, "new", 3) == 0);
    dw_buf_free(&p);
    dw_test_iter_free(&it);
    dw_marshaller_free(m);
}
