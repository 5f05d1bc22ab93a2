/* Telnet: the filter at every split, 0xFF both ways, option negotiation,
 * garbage; the client against devwire's own Telnet server (banner modes);
 * interop with inetutils-telnetd. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support.h"

#define S(lit) (const uint8_t *)(lit), sizeof(lit) - 1

enum { IAC = 255, DONT = 254, DO = 253, WONT = 252, WILL = 251, SB = 250, GA = 249, SE = 240 };
enum { O_BINARY = 0, O_ECHO = 1, O_SGA = 3, O_TM = 6, O_TTYPE = 24, O_NAWS = 31, O_COMPRESS2 = 86 };

/* Bytes for an assertion message: printable ASCII as is, the rest \xNN. */
static const char *show(const void *p, size_t n, char *out, size_t size)
{
    const uint8_t *b = p;
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < size; i++) {
        if (b[i] >= 0x20 && b[i] < 0x7f && b[i] != '\\')
            out[o++] = (char)b[i];
        else
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", b[i]);
    }
    out[o] = 0;
    return out;
}

/* ---- the filter over an in-memory stream ------------------------------ */

/* What the filter wrote: every write call's bytes, and how many calls. */
typedef struct sink {
    dw_buf bytes;
    size_t writes;
    int fail_with; /* nonzero: every write fails with it */
} sink;

static int sink_write(void *user, const uint8_t *p, size_t n)
{
    sink *k = user;
    if (k->fail_with)
        return k->fail_with;
    k->writes++;
    return dw_buf_append(&k->bytes, p, n);
}

/* The outcome of reading a whole stream through a filter. */
typedef struct run {
    dw_buf data;    /* data bytes, in order */
    dw_buf written; /* negotiation answers */
    int end;        /* DW_EOF or the error that ended it */
    char message[256];
    int empty_chunk; /* the contract was broken: DW_OK with 0 bytes */
} run;

static void run_free(run *r)
{
    dw_buf_free(&r->data);
    dw_buf_free(&r->written);
}

static void run_filter(const dw_telnet_options *o, const uint8_t *data, size_t len,
                       const size_t *cuts, size_t ncuts, run *r)
{
    memset(r, 0, sizeof *r);
    /* The input sits in a buffer of exactly its size: an over-read shows. */
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, data, len);
    dw_mem_iter mem;
    dw_mem_iter_init(&mem, copy, len, cuts, ncuts);
    sink k = {0};
    dw_telnet *t = dw_telnet_new(o, &mem.base, sink_write, &k);
    cr_assert(not(eq(ptr, t, NULL)));
    dw_iter *it = dw_telnet_iter(t);
    const uint8_t *p;
    size_t n;
    int rc;
    size_t guard = 0;
    while ((rc = dw_iter_next(it, &p, &n)) == DW_OK) {
        if (n == 0)
            r->empty_chunk = 1;
        dw_buf_append(&r->data, p, n);
        cr_assert(lt(sz, ++guard, len + 2), "more chunks than input bytes: the filter loops");
    }
    r->end = rc;
    snprintf(r->message, sizeof r->message, "%s", dw_telnet_error_message(t));
    r->written = k.bytes;
    dw_telnet_free(t);
    free(copy);
}

static int run_eq(const run *a, const run *b)
{
    return a->end == b->end && a->data.len == b->data.len && a->written.len == b->written.len &&
           (a->data.len == 0 || memcmp(a->data.data, b->data.data, a->data.len) == 0) &&
           (a->written.len == 0 || memcmp(a->written.data, b->written.data, a->written.len) == 0) &&
           !a->empty_chunk && !b->empty_chunk;
}

/* Read `data` whole, one byte at a time, and cut at every pair of points;
 * return how many splits disagreed with the whole read, and the whole read
 * in *whole. Data, answers and the ending must not depend on the cuts. */
static size_t every_split(const dw_telnet_options *o, const uint8_t *data, size_t len, run *whole)
{
    size_t bad = 0;
    run_filter(o, data, len, NULL, 0, whole);
    bad += whole->empty_chunk;
    size_t *ones = malloc((len ? len : 1) * sizeof *ones);
    for (size_t i = 0; i < len; i++)
        ones[i] = i + 1;
    run r;
    run_filter(o, data, len, ones, len, &r);
    bad += !run_eq(whole, &r);
    run_free(&r);
    free(ones);
    for (size_t i = 1; i < len; i++) {
        for (size_t j = i; j < len; j++) {
            size_t cuts[2] = {i, j};
            run_filter(o, data, len, cuts, 2, &r);
            bad += !run_eq(whole, &r);
            run_free(&r);
        }
    }
    return bad;
}

static const char *esc(const dw_buf *b, char *out, size_t n)
{
    return show(b->data, b->len, out, n);
}

/* Check the data and the answers of a stream at every split. */
static void expect_filter(const dw_telnet_options *o, const uint8_t *in, size_t len,
                          const uint8_t *want, size_t wlen, const uint8_t *answers, size_t alen,
                          int end)
{
    run whole;
    size_t bad = every_split(o, in, len, &whole);
    char g[512];
    cr_expect(eq(sz, bad, 0), "%zu split(s) gave other data, answers or ending than whole", bad);
    cr_expect(whole.data.len == wlen && (wlen == 0 || memcmp(whole.data.data, want, wlen) == 0),
              "data: got \"%s\"", esc(&whole.data, g, sizeof g));
    cr_expect(whole.written.len == alen &&
                  (alen == 0 || memcmp(whole.written.data, answers, alen) == 0),
              "answers: got \"%s\"", esc(&whole.written, g, sizeof g));
    cr_expect(eq(int, whole.end, end), "ended with %s (%s), expected %s", dw_err_name(whole.end),
              whole.message, dw_err_name(end));
    run_free(&whole);
}

static dw_telnet_options client_opts(void)
{
    dw_telnet_options o;
    dw_telnet_options_init(&o);
    return o;
}

static dw_telnet_options server_opts(int echo)
{
    dw_telnet_options o;
    dw_telnet_options_init(&o);
    o.server = 1;
    o.echo = echo;
    return o;
}

Test(telnet_filter, plain_data_passes_unchanged)
{
    dw_telnet_options o = client_opts();
    expect_filter(&o, S("hello\r\nworld\n"), S("hello\r\nworld\n"), NULL, 0, DW_EOF);
}

Test(telnet_filter, iac_iac_is_one_0xff)
{
    dw_telnet_options o = client_opts();
    expect_filter(&o,
                  S("a\xff\xff"
                    "b\xff\xff\xff\xff"
                    "c"),
                  S("a\xff"
                    "b\xff\xff"
                    "c"),
                  NULL, 0, DW_EOF);
}

Test(telnet_filter, commands_are_stripped)
{
    /* NOP, GA, AYT, DM, EOR and an unknown command between data bytes. */
    dw_telnet_options o = client_opts();
    expect_filter(&o,
                  S("a\xff\xf1"
                    "b\xff\xf9"
                    "c\xff\xf6"
                    "d\xff\xf2"
                    "e\xff\xef"
                    "f\xff\x05"
                    "g"),
                  S("abcdefg"), NULL, 0, DW_EOF);
}

Test(telnet_filter, client_option_table)
{
    /* Accepted: remote ECHO, SGA and BINARY both ways. Refused: our ECHO,
     * TTYPE, NAWS, TIMING-MARK, COMPRESS2 and an unknown option. */
    dw_telnet_options o = client_opts();
    const uint8_t in[] = {IAC, WILL, O_ECHO,      IAC, DO,   O_ECHO,   IAC, WILL, O_SGA,
                          IAC, DO,   O_SGA,       IAC, DO,   O_BINARY, IAC, WILL, O_BINARY,
                          IAC, DO,   O_TTYPE,     IAC, DO,   O_NAWS,   IAC, DO,   O_TM,
                          IAC, WILL, O_COMPRESS2, IAC, WILL, 200,      'x'};
    const uint8_t answers[] = {IAC, DO,   O_ECHO,      IAC, WONT, O_ECHO,   IAC, DO,   O_SGA,
                               IAC, WILL, O_SGA,       IAC, WILL, O_BINARY, IAC, DO,   O_BINARY,
                               IAC, WONT, O_TTYPE,     IAC, WONT, O_NAWS,   IAC, WONT, O_TM,
                               IAC, DONT, O_COMPRESS2, IAC, DONT, 200};
    expect_filter(&o, in, sizeof in, S("x"), answers, sizeof answers, DW_EOF);
}

Test(telnet_filter, client_option_state)
{
    dw_telnet_options o = client_opts();
    const uint8_t in[] = {IAC, WILL, O_ECHO, IAC, DO, O_SGA, IAC, DO, O_TTYPE, 'x'};
    dw_mem_iter mem;
    dw_mem_iter_init(&mem, in, sizeof in, NULL, 0);
    sink k = {0};
    dw_telnet *t = dw_telnet_new(&o, &mem.base, sink_write, &k);
    const uint8_t *p;
    size_t n;
    cr_assert(eq(int, dw_iter_next(dw_telnet_iter(t), &p, &n), DW_OK));
    cr_expect(eq(int, dw_telnet_remote_enabled(t, O_ECHO), 1), "the server may echo");
    cr_expect(eq(int, dw_telnet_local_enabled(t, O_ECHO), 0), "we never echo");
    cr_expect(eq(int, dw_telnet_local_enabled(t, O_SGA), 1));
    cr_expect(eq(int, dw_telnet_local_enabled(t, O_TTYPE), 0), "TTYPE is refused");
    dw_telnet_free(t);
    dw_buf_free(&k.bytes);
}

Test(telnet_filter, switched_off_options_are_refused)
{
    dw_telnet_options o = client_opts();
    o.echo = 0;
    o.sga = 0;
    o.binary = 0;
    const uint8_t in[] = {IAC, WILL, O_ECHO, IAC, WILL, O_SGA, IAC, DO, O_BINARY};
    const uint8_t answers[] = {IAC, DONT, O_ECHO, IAC, DONT, O_SGA, IAC, WONT, O_BINARY};
    expect_filter(&o, in, sizeof in, NULL, 0, answers, sizeof answers, DW_EOF);
}

Test(telnet_filter, negotiation_does_not_loop)
{
    /* RFC 1143: a repeated WILL of an option in effect gets no answer; WONT
     * turns it off once; a refused option asked again is refused again, one
     * answer per request (the answers never outgrow the input). */
    dw_telnet_options o = client_opts();
    const uint8_t in[] = {IAC, WILL, O_ECHO, IAC, WILL, O_ECHO,  IAC, WONT, O_ECHO,
                          IAC, WONT, O_ECHO, IAC, DO,   O_TTYPE, IAC, DO,   O_TTYPE};
    const uint8_t answers[] = {IAC, DO,   O_ECHO,  IAC, DONT, O_ECHO,
                               IAC, WONT, O_TTYPE, IAC, WONT, O_TTYPE};
    expect_filter(&o, in, sizeof in, NULL, 0, answers, sizeof answers, DW_EOF);
}

Test(telnet_filter, server_offers_and_confirmations)
{
    sink k = {0};
    dw_telnet_options o = server_opts(1);
    dw_mem_iter mem;
    /* The client confirms our offers (no answer due), asks us for BINARY
     * (accepted), offers TTYPE and NAWS (refused) and to echo (refused). */
    const uint8_t in[] = {IAC,  DO,      O_SGA, IAC,  DO,     O_ECHO, IAC,  DO,     O_BINARY, IAC,
                          WILL, O_TTYPE, IAC,   WILL, O_NAWS, IAC,    WILL, O_ECHO, 'h',      'i'};
    dw_mem_iter_init(&mem, in, sizeof in, NULL, 0);
    dw_telnet *t = dw_telnet_new(&o, &mem.base, sink_write, &k);
    cr_assert(eq(int, dw_telnet_start(t), DW_OK));
    const uint8_t offers[] = {IAC, WILL, O_SGA, IAC, WILL, O_ECHO};
    cr_assert(eq(sz, k.bytes.len, sizeof offers));
    cr_assert(eq(int, memcmp(k.bytes.data, offers, sizeof offers), 0), "WILL SGA, WILL ECHO");
    dw_buf_clear(&k.bytes);
    const uint8_t *p;
    size_t n;
    cr_assert(eq(int, dw_iter_next(dw_telnet_iter(t), &p, &n), DW_OK));
    cr_assert(eq(sz, n, 2));
    cr_assert(eq(int, memcmp(p, "hi", 2), 0));
    const uint8_t answers[] = {IAC, WILL, O_BINARY, IAC, DONT, O_TTYPE,
                               IAC, DONT, O_NAWS,   IAC, DONT, O_ECHO};
    char g[256];
    cr_expect(k.bytes.len == sizeof answers && memcmp(k.bytes.data, answers, sizeof answers) == 0,
              "answers: %s", esc(&k.bytes, g, sizeof g));
    cr_expect(eq(int, dw_telnet_local_enabled(t, O_ECHO), 1), "we echo: the client agreed");
    cr_expect(eq(int, dw_telnet_local_enabled(t, O_SGA), 1));
    cr_expect(eq(int, dw_telnet_remote_enabled(t, O_ECHO), 0));
    dw_telnet_free(t);
    dw_buf_free(&k.bytes);
}

Test(telnet_filter, server_without_echo_offers_sga_only)
{
    sink k = {0};
    dw_telnet_options o = server_opts(0);
    dw_telnet *t = dw_telnet_new(&o, NULL, sink_write, &k);
    cr_assert(eq(int, dw_telnet_start(t), DW_OK));
    const uint8_t offers[] = {IAC, WILL, O_SGA};
    cr_assert(k.bytes.len == sizeof offers && memcmp(k.bytes.data, offers, sizeof offers) == 0);
    dw_telnet_free(t);
    dw_buf_free(&k.bytes);

    dw_telnet_options c = client_opts();
    sink k2 = {0};
    t = dw_telnet_new(&c, NULL, sink_write, &k2);
    cr_assert(eq(int, dw_telnet_start(t), DW_OK));
    cr_expect(eq(sz, k2.bytes.len, 0), "a client offers nothing");
    dw_telnet_free(t);
}

Test(telnet_filter, subnegotiations_are_stripped)
{
    /* TTYPE SEND, NAWS with an escaped 0xFF inside, ENVIRON: none answered
     * (the options were refused), none reaches the data. */
    dw_telnet_options o = client_opts();
    const uint8_t in[] = {'a', IAC, SB,  O_TTYPE, 1,   IAC, SE,  'b', IAC, SB,  O_NAWS,
                          0,   80,  IAC, IAC,     0,   24,  IAC, SE,  'c', IAC, SB,
                          39,  1,   0,   'U',     'S', 'E', 'R', IAC, SE,  'd'};
    expect_filter(&o, in, sizeof in, S("abcd"), NULL, 0, DW_EOF);
}

Test(telnet_filter, all_negotiation_chunks_are_not_returned_empty)
{
    /* The first chunk is all negotiation: the first DW_OK holds "x". */
    dw_telnet_options o = client_opts();
    const uint8_t s[] = {IAC, WILL, O_ECHO, IAC, 241, 'x'};
    size_t cuts[] = {3, 5};
    dw_mem_iter mem;
    dw_mem_iter_init(&mem, s, sizeof s, cuts, 2);
    sink k = {0};
    dw_telnet *t = dw_telnet_new(&o, &mem.base, sink_write, &k);
    const uint8_t *p;
    size_t n;
    cr_assert(eq(int, dw_iter_next(dw_telnet_iter(t), &p, &n), DW_OK));
    cr_assert(eq(sz, n, 1));
    cr_assert(eq(u8, p[0], 'x'));
    cr_assert(eq(int, dw_iter_next(dw_telnet_iter(t), &p, &n), DW_EOF));
    dw_telnet_free(t);
    dw_buf_free(&k.bytes);
    /* A stream of negotiation only ends without any data. */
    expect_filter(&o, s, 5, NULL, 0, (const uint8_t[]){IAC, DO, O_ECHO}, 3, DW_EOF);
}

Test(telnet_filter, unread_stays_in_the_filter)
{
    dw_telnet_options o = client_opts();
    const uint8_t s[] = {'h', 'e', IAC, IAC, 'l', 'o', IAC, 241, 'w'};
    size_t cuts[] = {7};
    dw_mem_iter mem;
    dw_mem_iter_init(&mem, s, sizeof s, cuts, 1);
    sink k = {0};
    dw_iter *inner = &mem.base;
    dw_telnet *t = dw_telnet_new(&o, NULL, sink_write, &k);
    dw_iter *it = dw_telnet_wrap(t, inner);
    const uint8_t *p;
    size_t n;
    cr_assert(eq(int, dw_iter_next(it, &p, &n), DW_OK));
    cr_assert(eq(sz, n, 5), "\"he\\xfflo\"");
    dw_iter_unread(it, 3);
    /* Re-wrapping (a server's next request) keeps the unread bytes. */
    it = dw_telnet_wrap(t, inner);
    cr_assert(eq(int, dw_iter_next(it, &p, &n), DW_OK));
    cr_assert(eq(sz, n, 3));
    cr_assert(eq(int, memcmp(p, "\xfflo", 3), 0));
    cr_assert(eq(int, dw_iter_next(it, &p, &n), DW_OK));
    cr_assert(eq(sz, n, 1));
    cr_assert(eq(u8, p[0], 'w'));
    dw_telnet_free(t);
}

Test(telnet_filter, truncated_commands_at_the_end)
{
    dw_telnet_options o = client_opts();
    expect_filter(&o, S("ab\xff"), S("ab"), NULL, 0, DW_EOF);
    expect_filter(&o, S("ab\xff\xfb"), S("ab"), NULL, 0, DW_EOF);
    expect_filter(&o, S("ab\xff\xfa\x18\x01"), S("ab"), NULL, 0, DW_EOF);
    expect_filter(&o, S("ab\xff\xfa\x18\x01\xff"), S("ab"), NULL, 0, DW_EOF);
}

Test(telnet_filter, malformed_subnegotiation_recovers)
{
    /* IAC inside SB followed by neither SE nor IAC: libtelnet ends the
     * subnegotiation and takes the byte as a command (here NOP). Data on
     * both sides survives. */
    dw_telnet_options o = client_opts();
    const uint8_t in[] = {'a', IAC, SB, O_TTYPE, 1, IAC, 241, 'b', 'c'};
    expect_filter(&o, in, sizeof in, S("abc"), NULL, 0, DW_EOF);
    /* SB whose terminating command is a negotiation: it is answered. */
    const uint8_t in2[] = {'a', IAC, SB, O_NAWS, 1, IAC, DO, O_TTYPE, 'b'};
    const uint8_t ans2[] = {IAC, WONT, O_TTYPE};
    expect_filter(&o, in2, sizeof in2, S("ab"), ans2, sizeof ans2, DW_EOF);
}

Test(telnet_filter, inner_errors_pass_through)
{
    dw_telnet_options o = client_opts();
    const uint8_t s[] = {'a', IAC, WILL, O_ECHO};
    dw_mem_iter mem;
    dw_mem_iter_init(&mem, s, sizeof s, NULL, 0);
    mem.end_code = DW_ETIMEDOUT;
    sink k = {0};
    dw_telnet *t = dw_telnet_new(&o, &mem.base, sink_write, &k);
    const uint8_t *p;
    size_t n;
    cr_assert(eq(int, dw_iter_next(dw_telnet_iter(t), &p, &n), DW_OK));
    cr_assert(eq(int, dw_iter_next(dw_telnet_iter(t), &p, &n), DW_ETIMEDOUT));
    cr_expect(eq(str, (char *)dw_telnet_error_message(t), ""), "not a filter failure");
    dw_telnet_free(t);
    dw_buf_free(&k.bytes);
}

Test(telnet_filter, unnegotiated_compression_is_a_protocol_error)
{
    /* A peer that starts MCCP2 although we refused it: the data before it
     * is delivered, then DW_EPROTO, and it stays failed. */
    dw_telnet_options o = client_opts();
    const uint8_t in[] = {'o', 'k', IAC, SB, O_COMPRESS2, IAC, SE, 'x', 'y', 'z'};
    expect_filter(&o, in, sizeof in, S("ok"), NULL, 0, DW_EPROTO);

    dw_mem_iter mem;
    dw_mem_iter_init(&mem, in, sizeof in, NULL, 0);
    sink k = {0};
    dw_telnet *t = dw_telnet_new(&o, &mem.base, sink_write, &k);
    const uint8_t *p;
    size_t n;
    dw_iter *it = dw_telnet_iter(t);
    cr_assert(eq(int, dw_iter_next(it, &p, &n), DW_OK));
    cr_assert(eq(sz, n, 2));
    cr_assert(eq(int, dw_iter_next(it, &p, &n), DW_EPROTO));
    cr_expect(not(eq(ptr, strstr(dw_telnet_error_message(t), "MCCP2"), NULL)), "message: %s",
              dw_telnet_error_message(t));
    cr_expect(eq(int, dw_iter_next(it, &p, &n), DW_EPROTO), "the failure is sticky");
    cr_expect(eq(int, dw_telnet_send(t, "a", 1), DW_EPROTO), "sending after it fails too");
    dw_telnet_free(t);
    dw_buf_free(&k.bytes);
}

Test(telnet_filter, failed_answer_fails_the_read)
{
    dw_telnet_options o = client_opts();
    const uint8_t s[] = {'a', IAC, WILL, O_ECHO, 'b'};
    dw_mem_iter mem;
    dw_mem_iter_init(&mem, s, sizeof s, NULL, 0);
    sink k = {.fail_with = DW_EPIPE};
    dw_telnet *t = dw_telnet_new(&o, &mem.base, sink_write, &k);
    const uint8_t *p;
    size_t n;
    dw_iter *it = dw_telnet_iter(t);
    cr_assert(eq(int, dw_iter_next(it, &p, &n), DW_OK), "data before the failure first");
    cr_assert(eq(sz, n, 2));
    cr_assert(eq(int, dw_iter_next(it, &p, &n), DW_EPIPE));
    cr_expect(not(eq(ptr, strstr(dw_telnet_error_message(t), "broken pipe"), NULL)), "message: %s",
              dw_telnet_error_message(t));
    dw_telnet_free(t);
}

Test(telnet_filter, send_escapes_0xff_in_one_write)
{
    dw_telnet_options o = client_opts();
    sink k = {0};
    dw_telnet *t = dw_telnet_new(&o, NULL, sink_write, &k);
    cr_assert(eq(int,
                 dw_telnet_send(t,
                                "a\xff"
                                "b\xff\xff",
                                5),
                 DW_OK));
    cr_expect(eq(sz, k.writes, 1), "one write, got %zu", k.writes);
    cr_assert(eq(sz, k.bytes.len, 8));
    cr_assert(eq(int,
                 memcmp(k.bytes.data,
                        "a\xff\xff"
                        "b\xff\xff\xff\xff",
                        8),
                 0));
    cr_assert(eq(int, dw_telnet_send(t, "plain", 5), DW_OK));
    cr_expect(eq(sz, k.writes, 2));
    cr_assert(eq(int, dw_telnet_send(t, "", 0), DW_OK));
    cr_expect(eq(sz, k.writes, 2), "nothing to send: no write");
    k.fail_with = DW_ECONNRESET;
    cr_expect(eq(int, dw_telnet_send(t, "x", 1), DW_ECONNRESET));
    dw_telnet_free(t);
    dw_buf_free(&k.bytes);
}

Test(telnet_filter, every_byte_value_round_trips)
{
    uint8_t all[512];
    for (size_t i = 0; i < sizeof all; i++)
        all[i] = (uint8_t)(i * 7 + (i >> 8));
    dw_buf wire = DW_BUF_INIT;
    cr_assert(eq(int, dw_telnet_escape(all, sizeof all, &wire), DW_OK));
    size_t ff = 0;
    for (size_t i = 0; i < sizeof all; i++)
        ff += all[i] == 0xff;
    cr_assert(eq(sz, wire.len, sizeof all + ff));
    dw_telnet_options o = server_opts(0);
    run r;
    size_t cuts[64];
    for (size_t i = 0; i < 64; i++)
        cuts[i] = i * (wire.len / 64) + (i % 3);
    run_filter(&o, wire.data, wire.len, cuts, 64, &r);
    cr_assert(eq(int, r.end, DW_EOF));
    cr_assert(eq(sz, r.data.len, sizeof all));
    cr_assert(eq(int, memcmp(r.data.data, all, sizeof all), 0));
    run_free(&r);
    dw_buf_free(&wire);
}

/* A small deterministic generator for garbage streams. */
static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

Test(telnet_filter, garbage_at_every_split)
{
    /* Streams dense in IAC, negotiation and SB bytes. Whatever they hold,
     * the filter ends, answers a bounded amount and gives the same result
     * at every split. */
    static const uint8_t alphabet[] = {IAC,     IAC,  IAC, SB,   SE,     WILL,  WONT,
                                       DO,      DONT, 241, 249,  O_ECHO, O_SGA, O_BINARY,
                                       O_TTYPE, 39,   'a', '\r', 0};
    uint32_t seed = 0x1234567u;
    dw_telnet_options opts[2] = {client_opts(), server_opts(1)};
    for (int k = 0; k < 40; k++) {
        uint8_t s[40];
        size_t len = 8 + rnd(&seed) % (sizeof s - 8);
        for (size_t i = 0; i < len; i++)
            s[i] = alphabet[rnd(&seed) % sizeof alphabet];
        /* Never let MCCP2 in by accident: 86 is not in the alphabet. */
        run whole;
        size_t bad = every_split(&opts[k % 2], s, len, &whole);
        char g[256];
        cr_assert(eq(sz, bad, 0), "stream %d \"%s\": %zu split(s) disagree", k,
                  show(s, len, g, sizeof g), bad);
        cr_assert(eq(int, whole.end, DW_EOF), "stream %d: %s", k, whole.message);
        cr_assert(le(sz, whole.written.len, 3 * len), "answers outgrow the input");
        run_free(&whole);
    }
}

Test(telnet_filter, oversized_subnegotiation)
{
    /* libtelnet keeps at most 16 KiB of a subnegotiation; past that it
     * gives up on it. Whatever it does, it is the same at every chunking. */
    size_t len = 20000;
    uint8_t *s = malloc(len);
    s[0] = IAC;
    s[1] = SB;
    s[2] = O_TTYPE;
    memset(s + 3, 'z', len - 3);
    dw_telnet_options o = client_opts();
    run whole, r;
    run_filter(&o, s, len, NULL, 0, &whole);
    cr_assert(eq(int, whole.end, DW_EOF));
    size_t chunks[] = {1, 7, 4096};
    for (size_t c = 0; c < 3; c++) {
        size_t ncuts = len / chunks[c];
        size_t *cuts = malloc(ncuts * sizeof *cuts);
        for (size_t i = 0; i < ncuts; i++)
            cuts[i] = (i + 1) * chunks[c];
        run_filter(&o, s, len, cuts, ncuts, &r);
        cr_expect(run_eq(&whole, &r), "chunks of %zu differ from whole", chunks[c]);
        run_free(&r);
        free(cuts);
    }
    run_free(&whole);
    free(s);
}
