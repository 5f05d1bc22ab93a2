#include "vectors.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define B                  DW_TB
#define SENTINEL(s)        .framing = DW_TEST_SENTINEL, .sentinel = B(s)
#define SCPI(s)            .framing = DW_TEST_SCPI, .sentinel = B(s)
#define FIXED(len)         .framing = DW_TEST_FIXED, .size = (len)
#define LP(hs, e)          .framing = DW_TEST_LENGTH_PREFIXED, .size = (hs), .endian = (e)
#define JSON               .framing = DW_TEST_JSON
#define WANT1(a)           .want = {B(a)}, .nwant = 1
#define WANT2(a, b)        .want = {B(a), B(b)}, .nwant = 2
#define WANT3(a, b, c)     .want = {B(a), B(b), B(c)}, .nwant = 3
#define CLEAN              .end = DW_EOF, .end_offset = DW_TEST_ANY_OFFSET
#define ENDS(code, r, off) .end = (code), .rest = B(r), .end_offset = (off)
#define BE                 DW_BIG_ENDIAN
#define LE                 DW_LITTLE_ENDIAN

const dw_test_vector dw_test_vectors[] = {
    /* The Python original's bugs: a sentinel split across chunks, two
     * frames in one chunk. */
    {"sentinel split across chunks", SENTINEL("\r\n"), .in = B("abc\r\n"), WANT1("abc"), CLEAN},
    {"sentinel two lines in one chunk", SENTINEL("\r\n"), .in = B("one\r\ntwo\r\n"),
     WANT2("one", "two"), CLEAN},
    {"sentinel crlf three frames", SENTINEL("\r\n"), .in = B("one\r\ntwo\r\r\n\nthree\r\n"),
     WANT3("one", "two\r", "\nthree"), CLEAN},
    {"sentinel binary payloads", SENTINEL("\n"), .in = B("a\0b\n\xff\xfe\r\n\n"),
     WANT3("a\0b", "\xff\xfe\r", ""), CLEAN},
    {"sentinel NUL", SENTINEL("\0"), .in = B("abc\0\xff\n\0\0"), WANT3("abc", "\xff\n", ""), CLEAN},
    {"sentinel 0xff pair", SENTINEL("\xff\xff"), .in = B("\0\xff\0\xff\xff\xff\xff\xfe\xff\xff"),
     WANT3("\0\xff\0", "", "\xfe"), CLEAN},
    {"sentinel overlapping", SENTINEL("aab"), .in = B("xaaabaabqaab"), WANT3("xa", "", "q"), CLEAN},
    {"sentinel self-overlapping", SENTINEL("abab"), .in = B("xabababyabababab"),
     WANT3("x", "aby", ""), CLEAN},
    {"sentinel long with near misses", SENTINEL("END!"),
     .in = B("xEND\xff"
             "END!yEN!END!EENDENDEND!"),
     WANT3("xEND\xff", "yEN!", "EENDEND"), CLEAN},
    {"sentinel empty stream", SENTINEL("\r\n"), .in = B(""), CLEAN},
    {"sentinel empty frames", SENTINEL("\r\n"), .in = B("\r\n\r\n\r\n"), WANT3("", "", ""), CLEAN},
    {"sentinel truncated keeps partial", SENTINEL("\n"), .in = B("ok\npart"), WANT1("ok"),
     ENDS(DW_ETRUNCATED, "part", 7)},
    /* A sentinel's first half at the end is part of the partial frame. */
    {"sentinel truncated in the sentinel", SENTINEL("\r\n"), .in = B("ab\r\nc\r"), WANT1("ab"),
     ENDS(DW_ETRUNCATED, "c\r", 6)},
    /* "abc\n" is exactly 4 bytes: fine. "abcd" fills the frame without a
     * terminator: refused after those 4 bytes, nothing further is read. */
    {"sentinel too big", SENTINEL("\n"), .max_frame = 4, .in = B("abc\nabcd\nxyz\n"), WANT1("abc"),
     ENDS(DW_ETOOBIG, "abcd", 8)},
    {"sentinel too big in the sentinel", SENTINEL("\r\n"), .max_frame = 5,
     .in = B("abc\r\nabcd\r\n"), WANT1("abc"), ENDS(DW_ETOOBIG, "abcd\r", 10)},

    {"fixed two frames in one chunk", FIXED(4), .in = B("abcdefgh"), WANT2("abcd", "efgh"), CLEAN},
    {"fixed binary frames", FIXED(3), .in = B("\0\xff\n\xff\0\0abc"),
     WANT3("\0\xff\n", "\xff\0\0", "abc"), CLEAN},
    {"fixed one byte frames", FIXED(1), .in = B("x\0\xff"), WANT3("x", "\0", "\xff"), CLEAN},
    {"fixed empty stream", FIXED(4), .in = B(""), CLEAN},
    {"fixed truncated", FIXED(4), .in = B("abcdefg"), WANT1("abcd"), ENDS(DW_ETRUNCATED, "efg", 7)},
    {"fixed too big reads nothing", FIXED(8), .max_frame = 4, .in = B("abcdefgh"),
     ENDS(DW_ETOOBIG, "", 0)},

    {"length-prefixed 1 BE", LP(1, BE), .in = B("\2hi\0\3\0\xff\n"), WANT3("hi", "", "\0\xff\n"),
     CLEAN},
    {"length-prefixed 1 LE", LP(1, LE), .in = B("\2hi\0\3\0\xff\n"), WANT3("hi", "", "\0\xff\n"),
     CLEAN},
    {"length-prefixed 2 BE", LP(2, BE), .in = B("\0\2hi\0\0\0\3\0\xff\n"),
     WANT3("hi", "", "\0\xff\n"), CLEAN},
    {"length-prefixed 2 LE", LP(2, LE), .in = B("\2\0hi\0\0\3\0\0\xff\n"),
     WANT3("hi", "", "\0\xff\n"), CLEAN},
    {"length-prefixed 4 BE", LP(4, BE), .in = B("\0\0\0\2hi\0\0\0\0\0\0\0\3\0\xff\n"),
     WANT3("hi", "", "\0\xff\n"), CLEAN},
    {"length-prefixed 4 LE", LP(4, LE), .in = B("\2\0\0\0hi\0\0\0\0\3\0\0\0\0\xff\n"),
     WANT3("hi", "", "\0\xff\n"), CLEAN},
    {"length-prefixed empty stream", LP(4, BE), .in = B(""), CLEAN},
    {"length-prefixed truncated in the header", LP(4, BE), .in = B("\0\0\0\2ab\0\0"), WANT1("ab"),
     ENDS(DW_ETRUNCATED, "\0\0", 8)},
    {"length-prefixed truncated in the body", LP(4, BE), .in = B("\0\0\0\2ab\0\0\0\5xyz"),
     WANT1("ab"), ENDS(DW_ETRUNCATED, "\0\0\0\5xyz", 13)},
    /* 4 payload bytes + 2 header bytes = 6: fine; 5 + 2 = 7: refused after
     * the header, before any of the body is read. */
    {"length-prefixed too big reads no body", LP(2, LE), .max_frame = 6,
     .in = B("\4\0abcd\5\0abcde"), WANT1("abcd"), ENDS(DW_ETOOBIG, "\5\0", 8)},
    {"length-prefixed 4 GiB header", LP(4, BE), .in = B("\xff\xff\xff\xffxyz"),
     ENDS(DW_ETOOBIG, "\xff\xff\xff\xff", 4)},
    /* Every header value is a valid length: garbage is just a length (here
     * 255 bytes, truncated). */
    {"length-prefixed any header is a length", LP(1, BE), .in = B("\xff\0\xff"),
     ENDS(DW_ETRUNCATED, "\xff\0\xff", 3)},

    {"scpi block holding the sentinel", SCPI("\n"), .in = B("#14a\nb\n\n1.0\n#0xy\n"),
     WANT3("#14a\nb\n", "1.0", "#0xy"), CLEAN},
    {"scpi binary block crlf", SCPI("\r\n"),
     .in = B("#213ab\r\n\0\xff\r\nxyz\r\n\r\n1,2\r\n#10\r\n"),
     WANT3("#213ab\r\n\0\xff\r\nxyz\r\n", "1,2", "#10"), CLEAN},
    {"scpi several blocks, text and quotes", SCPI("\n"),
     .in = B("#11\n,#12\n\n\n\"a#1\",#H1F\nDATA #15he\nlo;END\n"),
     WANT3("#11\n,#12\n\n", "\"a#1\",#H1F", "DATA #15he\nlo;END"), CLEAN},
    /* Quotes and '#' in every state; a terminator inside a string still
     * ends the response. */
    {"scpi quotes and hashes", SCPI("\n"), .in = B("\"#1\"#\"\n#0\"#\n#H\"x\"##\n"),
     WANT3("\"#1\"#\"", "#0\"#", "#H\"x\"##"), CLEAN},
    {"scpi empty stream", SCPI("\n"), .in = B(""), CLEAN},
    {"scpi empty frames", SCPI("\n"), .in = B("\n#\n\n"), WANT3("", "#", ""), CLEAN},
    /* The bad byte ('x') is consumed with the header; the rest is not. */
    {"scpi bad block header", SCPI("\n"), .in = B("OK\n#3x1\n"), WANT1("OK"),
     ENDS(DW_EPROTO, "#3x", 6)},
    {"scpi terminator in a block header", SCPI("\n"), .in = B("#21\nOK\n"),
     ENDS(DW_EPROTO, "#21\n", 4)},
    {"scpi truncated inside a block", SCPI("\n"), .in = B("1\n#15ab\n"), WANT1("1"),
     ENDS(DW_ETRUNCATED, "#15ab\n", 8)},
    {"scpi truncated in a block header", SCPI("\n"), .in = B("1\n#2"), WANT1("1"),
     ENDS(DW_ETRUNCATED, "#2", 4)},
    {"scpi too big text", SCPI("\n"), .max_frame = 8, .in = B("1234567\n12345678\n"),
     WANT1("1234567"), ENDS(DW_ETOOBIG, "12345678", 16)},
    /* A block announced longer than the frame allows is refused at its
     * header, before its bytes are read. */
    {"scpi too big block header", SCPI("\n"), .max_frame = 8, .in = B("#15abcde\n"),
     ENDS(DW_ETOOBIG, "#15", 3)},
    {"scpi too big after a block", SCPI("\n"), .max_frame = 8, .in = B("#14abcd\n#14abcde\n"),
     WANT1("#14abcd"), ENDS(DW_ETOOBIG, "#14abcde", 16)},
    {"scpi 9-digit block length", SCPI("\n"), .in = B("#9999999999"),
     ENDS(DW_ETOOBIG, "#9999999999", 11)},

    {"json-lines values and garbage", JSON, .in = B("{\"a\":1}\n[1,2]\n{oops\n4\n"),
     WANT2("{\"a\":1}", "[1,2]"), ENDS(DW_EPROTO, "{oops", 20)},
    {"json-lines spaces and crlf", JSON, .in = B(" 42 \r\n\"a\\nb\\u00ff\"\nnull\n"),
     WANT3(" 42 \r", "\"a\\nb\\u00ff\"", "null"), CLEAN},
    {"json-lines empty stream", JSON, .in = B(""), CLEAN},
    {"json-lines empty line", JSON, .in = B("\n1\n"), ENDS(DW_EPROTO, "", 1)},
    {"json-lines two values", JSON, .in = B("1 2\n"), ENDS(DW_EPROTO, "1 2", 4)},
    {"json-lines NUL byte", JSON, .in = B("\"a\0b\"\n"), ENDS(DW_EPROTO, "\"a\0b\"", 6)},
    {"json-lines truncated", JSON, .in = B("[1,"), ENDS(DW_ETRUNCATED, "[1,", 3)},
    {"json-lines too big", JSON, .max_frame = 4, .in = B("123\n1234\n"), WANT1("123"),
     ENDS(DW_ETOOBIG, "1234", 8)},
};
const size_t dw_test_nvectors = sizeof dw_test_vectors / sizeof dw_test_vectors[0];

dw_marshaller *dw_test_vector_marshaller(const dw_test_vector *v)
{
    dw_marshaller *m = NULL;
    switch (v->framing) {
    case DW_TEST_SENTINEL:
        m = dw_sentinel_marshaller_new(v->sentinel.p, v->sentinel.n);
        break;
    case DW_TEST_FIXED:
        m = dw_fixed_marshaller_new(v->size);
        break;
    case DW_TEST_LENGTH_PREFIXED:
        m = dw_length_prefixed_marshaller_new((unsigned)v->size, v->endian);
        break;
    case DW_TEST_SCPI:
        m = dw_scpi_marshaller_new(v->sentinel.p, v->sentinel.n);
        break;
    case DW_TEST_JSON:
        m = dw_json_marshaller_new();
        break;
    }
    if (!m)
        abort();
    if (v->max_frame)
        dw_marshaller_set_max_frame(m, v->max_frame);
    return m;
}

static int same(const dw_buf *got, dw_test_bytes want)
{
    return got->len == want.n && (want.n == 0 || memcmp(got->data, want.p, want.n) == 0);
}

/* The vector's stream at every split through `run`: the payloads, the end
 * code, what an error left in the payload and where the stream stood after
 * the ending call (a clean end is always at the end of the input). */
void dw_test_expect_vector_with(const dw_marshaller *m, const dw_test_vector *v, dw_test_runner run)
{
    dw_test_outcome whole;
    size_t bad = dw_test_every_split_with(run, m, v->in.p, v->in.n, &whole);
    cr_expect(eq(sz, bad, 0), "%s: %zu split(s) disagree with the whole stream", v->name, bad);
    cr_expect(eq(sz, whole.count, v->nwant), "%s: payload count", v->name);
    for (size_t i = 0; i < v->nwant && i < whole.count; i++)
        cr_expect(same(&whole.payloads[i], v->want[i]),
                  "%s: payload %zu is \"%s\", expected \"%s\"", v->name, i,
                  dw_test_esc(whole.payloads[i].data, whole.payloads[i].len),
                  dw_test_esc(v->want[i].p, v->want[i].n));
    cr_expect(eq(int, whole.end, v->end), "%s: ended with %s, expected %s", v->name,
              dw_err_name(whole.end), dw_err_name(v->end));
    if (v->end < 0) {
        cr_expect(same(&whole.rest, v->rest), "%s: %s left \"%s\" in the payload, expected \"%s\"",
                  v->name, dw_err_name(v->end), dw_test_esc(whole.rest.data, whole.rest.len),
                  dw_test_esc(v->rest.p, v->rest.n));
        cr_expect(strlen(whole.message) > 0, "%s: %s comes with a message", v->name,
                  dw_err_name(v->end));
    }
    size_t end_offset = v->end == DW_EOF ? v->in.n : v->end_offset;
    if (end_offset != DW_TEST_ANY_OFFSET)
        cr_expect(eq(sz, whole.end_offset, end_offset), "%s: stream offset after the ending call",
                  v->name);
    dw_test_outcome_free(&whole);
}

static void expect_vector(const dw_test_vector *v, dw_test_runner run)
{
    dw_marshaller *m = dw_test_vector_marshaller(v);
    dw_test_expect_vector_with(m, v, run);
    dw_marshaller_free(m);
}

size_t dw_test_expect_vectors(dw_test_framing framing, dw_test_runner run)
{
    size_t ran = 0;
    for (size_t i = 0; i < dw_test_nvectors; i++) {
        if (dw_test_vectors[i].framing != framing)
            continue;
        expect_vector(&dw_test_vectors[i], run);
        ran++;
    }
    return ran;
}
