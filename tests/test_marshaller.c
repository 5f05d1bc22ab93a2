/* Framing: every vector at every split, the Python original's bugs, bad input. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <string.h>

#include "support.h"

#define S(lit) (const uint8_t *)(lit), sizeof(lit) - 1

static void expect_payloads(const dw_marshaller *m, const uint8_t *d, size_t n, int end,
                            const char *const *want, size_t nwant)
{
    dw_test_outcome whole;
    size_t bad = dw_test_every_split(m, d, n, &whole);
    cr_expect(eq(sz, bad, 0), "%zu split(s) disagree with the whole stream", bad);
    cr_assert(eq(sz, whole.count, nwant));
    for (size_t i = 0; i < nwant; i++) {
        cr_expect(eq(sz, whole.payloads[i].len, strlen(want[i])), "payload %zu length", i);
        cr_expect(whole.payloads[i].len == 0 ||
                      memcmp(whole.payloads[i].data, want[i], strlen(want[i])) == 0,
                  "payload %zu", i);
    }
    cr_expect(eq(int, whole.end, end), "ended with %s, expected %s", dw_err_name(whole.end),
              dw_err_name(end));
    dw_test_outcome_free(&whole);
}

Test(sentinel, python_bug_split_sentinel)
{
    dw_marshaller *m = dw_sentinel_marshaller_new("\r\n", 2);
    const char *want[] = {"abc"};
    size_t cuts[] = {4};
    dw_test_outcome o;
    dw_test_run(m, S("abc\r\n"), cuts, 1, &o);
    cr_assert(eq(sz, o.count, 1));
    cr_assert(eq(sz, o.payloads[0].len, 3));
    cr_assert(eq(int, memcmp(o.payloads[0].data, "abc", 3), 0));
    dw_test_outcome_free(&o);
    expect_payloads(m, S("abc\r\n"), DW_EOF, want, 1);
    dw_marshaller_free(m);
}

Test(sentinel, python_bug_two_lines_one_chunk)
{
    dw_marshaller *m = dw_sentinel_marshaller_new("\r\n", 2);
    const char *want[] = {"one", "two"};
    expect_payloads(m, S("one\r\ntwo\r\n"), DW_EOF, want, 2);
    dw_marshaller_free(m);
}

Test(fixed, python_bug_two_frames_one_chunk)
{
    dw_marshaller *m = dw_fixed_marshaller_new(4);
    const char *want[] = {"abcd", "efgh"};
    expect_payloads(m, S("abcdefgh"), DW_EOF, want, 2);
    dw_marshaller_free(m);
}

Test(sentinel, overlapping_sentinel)
{
    dw_marshaller *m = dw_sentinel_marshaller_new("aab", 3);
    const char *want[] = {"xa", "", "q"};
    expect_payloads(m, S("xaaabaabqaab"), DW_EOF, want, 3);
    dw_marshaller_free(m);
}

Test(sentinel, truncated_keeps_partial)
{
    dw_marshaller *m = dw_sentinel_marshaller_new("\n", 1);
    const char *want[] = {"ok"};
    dw_test_outcome o;
    expect_payloads(m, S("ok\npart"), DW_ETRUNCATED, want, 1);
    dw_test_run(m, S("ok\npart"), NULL, 0, &o);
    cr_assert(eq(sz, o.rest.len, 4));
    cr_assert(eq(int, memcmp(o.rest.data, "part", 4), 0));
    dw_test_outcome_free(&o);
    dw_marshaller_free(m);
}

Test(sentinel, too_big)
{
    dw_marshaller *m = dw_sentinel_marshaller_new("\n", 1);
    dw_marshaller_set_max_frame(m, 4);
    const char *want[] = {"abc"};
    expect_payloads(m, S("abc\nabcd\n"), DW_ETOOBIG, want, 1);
    dw_marshaller_free(m);
}

Test(sentinel, marshall_refuses_sentinel)
{
    dw_marshaller *m = dw_sentinel_marshaller_new("aa", 2);
    dw_buf out = DW_BUF_INIT;
    dw_error err;
    cr_expect(eq(int, dw_marshall(m, S("xaay"), &out, &err), DW_EINVAL));
    cr_expect(eq(int, dw_marshall(m, S("xa"), &out, &err), DW_EINVAL), "xa+aa reads as x");
    cr_expect(eq(sz, out.len, 0));
    cr_expect(eq(int, dw_marshall(m, S("xy"), &out, &err), DW_OK));
    cr_expect(eq(sz, out.len, 4));
    dw_buf_free(&out);
    dw_marshaller_free(m);
}

Test(length_prefixed, pipelined_both_endians)
{
    dw_marshaller *be = dw_length_prefixed_marshaller_new(2, DW_BIG_ENDIAN);
    dw_marshaller *le = dw_length_prefixed_marshaller_new(2, DW_LITTLE_ENDIAN);
    const char *want[] = {"hi", "", "abc"};
    expect_payloads(be, S("\0\2hi\0\0\0\3abc"), DW_EOF, want, 3);
    expect_payloads(le, S("\2\0hi\0\0\3\0abc"), DW_EOF, want, 3);
    dw_marshaller_free(be);
    dw_marshaller_free(le);
}

Test(scpi, block_holding_sentinel)
{
    dw_marshaller *m = dw_scpi_marshaller_new("\n", 1);
    const char *want[] = {"#14a\nb\n", "1.0", "#0xy"};
    expect_payloads(m, S("#14a\nb\n\n1.0\n#0xy\n"), DW_EOF, want, 3);
    dw_marshaller_free(m);
}

Test(scpi, bad_block_header)
{
    dw_marshaller *m = dw_scpi_marshaller_new("\n", 1);
    const char *want[] = {"OK"};
    expect_payloads(m, S("OK\n#3x1\n"), DW_EPROTO, want, 1);
    dw_marshaller_free(m);
}

Test(json_lines, values_and_garbage)
{
    dw_marshaller *m = dw_json_marshaller_new();
    const char *want[] = {"{\"a\":1}", "[1,2]"};
    expect_payloads(m, S("{\"a\":1}\n[1,2]\n{oops\n"), DW_EPROTO, want, 2);
    dw_marshaller_free(m);
}
